#!/usr/bin/env python3
"""The store on S3 (moto's server on loopback) against a local folder, same data, same run.

    scripts/bench-object-store.sh [--docs N]

- ingest throughput (docs/s) and search p50/p99 (hybrid, 100 SciFact queries) for each store;
- two `--shard I/2` processes at once against one process, both on S3;
- how long a write through one `fathom serve` takes to be found through a second replica
  (`--read-consistency 1`), p50 over 10 writes.
"""

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_server import BINARY, MODEL, Server, corpus, pct, queries  # noqa: E402

VENV = os.environ.get("FATHOM_TEST_VENV", os.path.expanduser("~/.cache/fathom/test-venv"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_moto():
    port = free_port()
    proc = subprocess.Popen([os.path.join(VENV, "bin", "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    import urllib.request
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/bench", method="PUT")).read()
    return proc, endpoint


def fathom(args, env, **kw):
    return subprocess.run([BINARY, *args], env=env, check=True, capture_output=True, text=True, **kw)


def timed_ingest(folder, store, collection, env, extra=()):
    t = time.perf_counter()
    out = fathom(["ingest", folder, "--store", store, "--collection", collection, "--model", MODEL, "--json",
                  *extra], env)
    return time.perf_counter() - t, json.loads(out.stdout)


def search_times(store, collection, qs, env):
    # One process answers every query (the CLI would reload the model per query): a server.
    lat = []
    srv = ServerOn(store, env)
    try:
        for q in qs[:5]:
            srv.json("POST", "/search", {"query": q, "collection": collection, "k": 10})
        for q in qs:
            t = time.perf_counter()
            srv.json("POST", "/search", {"query": q, "collection": collection, "k": 10})
            lat.append(time.perf_counter() - t)
    finally:
        srv.stop()
    return lat


class ServerOn(Server):
    """A `fathom serve` on an existing store URI."""

    def __init__(self, store, env, *extra):
        log_dir = tempfile.mkdtemp()
        self.store = store
        args = [BINARY, "serve", "--port", "0", "--model", MODEL, "--store", store, *extra]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=open(os.path.join(log_dir, "log"), "ab"),
                                     env={**env, "RUST_LOG": "warn"}, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"http://([\d.]+):(\d+)", line)
        self.host, self.port = m.group(1), int(m.group(2))
        for _ in range(1200):
            try:
                if self.request("GET", "/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server not ready")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=1000)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="fathom-bench-s3-")
    moto, endpoint = start_moto()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1",
           "AWS_ENDPOINT": endpoint, "AWS_ALLOW_HTTP": "true", "HF_HUB_OFFLINE": "1"}
    try:
        folder = os.path.join(work, "scifact")
        os.makedirs(folder)
        for d in corpus(args.docs):
            with open(os.path.join(folder, f"{d['id']}.txt"), "w") as f:
                f.write(d["text"])
        qs = queries(100)
        local = os.path.join(work, "local")
        s3 = "s3://bench/fathom"
        print(f"binary {BINARY}; {os.cpu_count()} CPUs; {args.docs} SciFact documents; moto {endpoint}")
        rows = []
        for name, store in (("local folder", local), ("S3 (moto)", s3)):
            took, summary = timed_ingest(folder, store, "c", env)
            lat = search_times(store, "c", qs, env)
            rows.append((name, took, summary["added"], lat))
        print("\n| store | ingest s | docs/s | search p50 ms | search p99 ms |")
        print("|---|---|---|---|---|")
        for name, took, added, lat in rows:
            print(f"| {name} | {took:.1f} | {added / took:.1f} | {pct(lat, 50) * 1000:.1f} | {pct(lat, 99) * 1000:.1f} |")
        print(f"ratio S3/local: ingest time {rows[1][1] / rows[0][1]:.2f}, search p50 {pct(rows[1][3], 50) / pct(rows[0][3], 50):.2f}, "
              f"p99 {pct(rows[1][3], 99) / pct(rows[0][3], 99):.2f}")

        # Two shards at once against one process.
        t = time.perf_counter()
        procs = [subprocess.Popen([BINARY, "ingest", folder, "--store", s3, "--collection", "sharded", "--model", MODEL,
                                   "--json", "--shard", f"{i}/2"], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for i in range(2)]
        outs = [p.communicate() for p in procs]
        two = time.perf_counter() - t
        assert all(p.returncode == 0 for p in procs), outs
        added = sum(json.loads(o)["added"] for o, _ in outs)
        one = rows[1][1]
        print(f"\ntwo --shard processes on S3: {two:.1f} s for {added} docs vs one process {one:.1f} s "
              f"(speed-up {one / two:.2f} on {os.cpu_count()} cores)")

        # Visibility on a second replica.
        a = ServerOn(s3, env, "--read-consistency", "1")
        b = ServerOn(s3, env, "--read-consistency", "1")
        seen = []
        try:
            for i in range(10):
                doc = f"replica-{i}"
                a.json("POST", "/documents", {"collection": "rep", "documents": [
                    {"id": doc, "text": f"zebra{i} crossing number {i}"}]})
                t = time.perf_counter()
                while True:
                    status, body = b.request("POST", "/search", {"query": f"zebra{i}", "collection": "rep",
                                                                 "k": 3, "mode": "text"})
                    if status == 200 and any(h["source"] == doc for h in json.loads(body)["hits"]):
                        break
                    time.sleep(0.05)
                seen.append(time.perf_counter() - t)
        finally:
            a.stop()
            b.stop()
        print(f"\nwrite through replica a -> found through replica b (--read-consistency 1): "
              f"p50 {pct(seen, 50):.2f} s, max {max(seen):.2f} s over {len(seen)} writes")
    finally:
        moto.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
