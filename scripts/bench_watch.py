#!/usr/bin/env python3
"""Save-to-searchable latency of `fathom serve --watch` (run through scripts/bench-watch.sh).

A folder of 50 notes is watched; each edit rewrites one note with a fresh marker word, and the
clock runs from the write until `POST /search` returns the note's chunk holding the marker.
"""

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FATHOM = os.environ.get("FATHOM_BIN", os.path.join(
    os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "fathom"))


def post(base, path, body):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--edits", type=int, default=20)
    p.add_argument("--quiet", type=float, default=0.75, help="--watch-quiet of the server")
    a = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="fathom-watch-")
    notes = os.path.join(tmp, "notes")
    os.makedirs(notes)
    for i in range(50):
        with open(os.path.join(notes, f"note{i:02d}.md"), "w") as f:
            f.write(f"# Note {i}\n\nSome everyday text about topic number {i}.\n")
    server = subprocess.Popen(
        [FATHOM, "serve", "--port", "0", "--store", os.path.join(tmp, "store"),
         "--model", os.path.join(ROOT, "models/all-MiniLM-L6-v2"),
         "--watch", f"{notes}:notes", "--watch-quiet", str(a.quiet)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        base = server.stdout.readline().strip().removeprefix("fathom listening on ")

        def holds(source, marker):
            try:
                hits = post(base, "/search", {"query": marker, "mode": "vector", "k": 1,
                                              "collection": "notes",
                                              "filter": f"source={source}"})["hits"]
            except OSError:
                return False
            return bool(hits) and marker in hits[0]["text"]

        deadline = time.monotonic() + 120
        while not holds("notes/note49.md", "topic number 49"):
            assert time.monotonic() < deadline, "the first sync never finished"
            time.sleep(0.1)
        latencies = []
        for e in range(a.edits):
            i = e % 50
            marker = f"marker{e}x{os.getpid()}"
            started = time.monotonic()
            with open(os.path.join(notes, f"note{i:02d}.md"), "w") as f:
                f.write(f"# Note {i}\n\nEdited: {marker} and more text.\n")
            while not holds(f"notes/note{i:02d}.md", marker):
                assert time.monotonic() - started < 60, f"edit {e} never became searchable"
                time.sleep(0.02)
            latencies.append(time.monotonic() - started)
            time.sleep(0.2)
        latencies.sort()
        print(f"save -> searchable over {a.edits} edits (--watch-quiet {a.quiet}, 50 notes): "
              f"p50 {statistics.median(latencies):.2f} s, "
              f"p90 {latencies[int(0.9 * (len(latencies) - 1))]:.2f} s, max {latencies[-1]:.2f} s")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
