#!/usr/bin/env python3
"""The server under load and abuse (issue 12's figures), against a real `fathom serve`.

    scripts/bench-server.sh [--only upserts,embed,search,abuse,shutdown] [--docs N]

Every figure comes from this run on this machine. Each section starts its own server on a fresh
store under a temporary folder; nothing here is mocked.

- upserts:  N single-document POST /documents against one batched POST of the same documents:
            versions, data files, bytes on disk, search p50/p99 (right after the writes, and
            after the server's idle upkeep).
- embed:    /embed p50/p99 at concurrency 8, idle and while a 5,000-document ingest job runs,
            and the job's throughput meanwhile.
- search:   search p50/p99 idle and while a writer commits every 2 s.
- abuse:    every limit tried over its bound (status and body) and the server's peak RSS.
- shutdown: a client trickling a request body does not hold SIGTERM past --shutdown-deadline.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("FATHOM_SHARED", os.path.join(ROOT, "..", "shared"))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
BINARY = os.environ.get("FATHOM_BIN", os.path.join(TARGET, "release", "fathom"))
MODEL = os.path.join(ROOT, "models", "all-MiniLM-L6-v2")


def corpus(n):
    docs = []
    with open(os.path.join(SHARED, "data", "scifact", "corpus.jsonl")) as f:
        for line in f:
            d = json.loads(line)
            docs.append({"id": d["_id"], "text": (d["title"] + " " + d["text"]).strip()})
            if len(docs) == n:
                break
    return docs


def queries(n):
    out = []
    with open(os.path.join(SHARED, "data", "scifact", "queries.jsonl")) as f:
        for line in f:
            out.append(json.loads(line)["text"])
            if len(out) == n:
                break
    return out


def pct(values, p):
    s = sorted(values)
    if not s:
        return float("nan")
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def ms(values):
    return f"p50 {pct(values, 50) * 1000:.1f} ms, p99 {pct(values, 99) * 1000:.1f} ms (n={len(values)})"


class Server:
    def __init__(self, store, *extra, env=None):
        self.store = store
        args = [BINARY, "serve", "--port", "0", "--model", MODEL, "--store", store, *extra]
        self.proc = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=open(os.path.join(os.path.dirname(store), "server.log"), "ab"),
            env={**os.environ, "RUST_LOG": "warn", **(env or {})},
            text=True,
        )
        line = self.proc.stdout.readline()
        m = re.search(r"http://([\d.]+):(\d+)", line)
        if not m:
            raise RuntimeError(f"server did not start: {line!r}")
        self.host, self.port = m.group(1), int(m.group(2))
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if self.request("GET", "/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("server not ready in 120 s")

    def request(self, method, path, body=None, raw=None, timeout=300):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        headers = {"content-type": "application/json"} if data is not None else {}
        conn.request(method, path, body=data, headers=headers)
        r = conn.getresponse()
        payload = r.read()
        conn.close()
        return r.status, payload

    def json(self, method, path, body=None):
        status, payload = self.request(method, path, body)
        if status >= 300:
            raise RuntimeError(f"{method} {path}: {status} {payload[:300]!r}")
        return json.loads(payload) if payload else None

    def metric(self, name, collection):
        _, text = self.request("GET", "/metrics")
        m = re.search(rf'^fathom_{name}{{collection="{collection}"}} (\d+)', text.decode(), re.M)
        return int(m.group(1)) if m else None

    def rss_peak_mb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def rss_mb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def dir_size(path):
    files, total = 0, 0
    for base, _, names in os.walk(path):
        for n in names:
            total += os.path.getsize(os.path.join(base, n))
            if base.endswith("data"):
                files += 1
    return files, total


def search_latencies(server, collection, qs, rounds=1):
    out = []
    for _ in range(rounds):
        for q in qs:
            t = time.perf_counter()
            server.json("POST", "/search", {"query": q, "collection": collection, "k": 10})
            out.append(time.perf_counter() - t)
    return out


def section_upserts(work, n):
    docs = corpus(n)
    qs = queries(100)
    store = os.path.join(work, "store")
    s = Server(store, "--max-inputs", str(max(n, 512)), "--max-body-bytes", str(64 << 20))
    try:
        t = time.perf_counter()
        for d in docs:
            s.json("POST", "/documents", {"collection": "single", "documents": [d]})
        single_s = time.perf_counter() - t
        t = time.perf_counter()
        s.json("POST", "/documents", {"collection": "batched", "documents": docs})
        batched_s = time.perf_counter() - t
        search_latencies(s, "single", qs[:10])
        search_latencies(s, "batched", qs[:10])

        def shape(name):
            files, size = dir_size(os.path.join(store, f"{name}.lance"))
            return {
                "versions": s.metric("store_versions", name),
                "fragments": s.metric("store_fragments", name),
                "data_files": files,
                "mb": size / 1e6,
            }

        rows = []
        rows.append(("right after the writes", shape("single"), shape("batched"),
                     search_latencies(s, "single", qs), search_latencies(s, "batched", qs)))
        # The server's idle upkeep: every 60 s it optimizes collections written since the last
        # round; versions younger than 60 s are kept for readers on older snapshots.
        time.sleep(135)
        rows.append(("after 135 s idle (upkeep)", shape("single"), shape("batched"),
                     search_latencies(s, "single", qs), search_latencies(s, "batched", qs)))
        print(f"\n## {n} single-document upserts vs one batched upsert")
        print(f"writing: {n} single POSTs {single_s:.1f} s ({n / single_s:.1f} docs/s); one batched POST {batched_s:.1f} s")
        for label, a, b, la, lb in rows:
            print(f"\n{label}:")
            print("| | single upserts | one batch | ratio |")
            print("|---|---|---|---|")
            for key in ("versions", "fragments", "data_files", "mb"):
                ratio = a[key] / b[key] if b[key] else float("nan")
                print(f"| {key} | {a[key]:.4g} | {b[key]:.4g} | {ratio:.2f} |")
            for p in (50, 99):
                x, y = pct(la, p) * 1000, pct(lb, p) * 1000
                print(f"| search p{p} ms | {x:.1f} | {y:.1f} | {x / y:.2f} |")
        print(f"server peak RSS {s.rss_peak_mb():.0f} MB")
    finally:
        s.stop()


def hammer(server, path, body_fn, threads, seconds):
    lat, errors = [], []
    lock = threading.Lock()
    stop = time.time() + seconds

    def worker(i):
        conn = http.client.HTTPConnection(server.host, server.port, timeout=120)
        k = 0
        while time.time() < stop:
            body = json.dumps(body_fn(i, k)).encode()
            t = time.perf_counter()
            conn.request("POST", path, body=body, headers={"content-type": "application/json"})
            r = conn.getresponse()
            r.read()
            took = time.perf_counter() - t
            with lock:
                (lat if r.status == 200 else errors).append(took if r.status == 200 else r.status)
            k += 1
        conn.close()

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return lat, errors


def section_embed(work, n_docs):
    docs = corpus(n_docs)
    folder = os.path.join(work, "scifact")
    os.makedirs(folder)
    for d in docs:
        with open(os.path.join(folder, f"{d['id']}.txt"), "w") as f:
            f.write(d["text"])
    qs = queries(300)
    s = Server(os.path.join(work, "store"), "--ingest-root", folder)
    try:
        body = lambda i, k: {"inputs": qs[(i * 37 + k) % len(qs)]}
        hammer(s, "/embed", body, 8, 3)
        idle, idle_err = hammer(s, "/embed", body, 8, 20)
        job = s.json("POST", "/ingest", {"path": folder, "collection": "scifact"})
        t0 = time.time()
        time.sleep(3)
        busy, busy_err = hammer(s, "/embed", body, 8, 20)
        status = s.json("GET", f"/jobs/{job['id']}")
        during_s = time.time() - t0
        chunks_during = status["chunks_embedded"]
        files_during = status["files_read"]
        # The same job alone for as long again, then stop it (the whole corpus takes minutes here).
        time.sleep(20)
        alone = s.json("GET", f"/jobs/{job['id']}")
        alone_chunks = alone["chunks_embedded"] - chunks_during
        s.request("DELETE", f"/jobs/{job['id']}")
        print(f"\n## /embed at concurrency 8, idle vs during a {n_docs}-document ingest job")
        print(f"idle:   {ms(idle)}, {len(idle) / 20:.0f} req/s, errors {len(idle_err)}")
        print(f"ingest: {ms(busy)}, {len(busy) / 20:.0f} req/s, errors {len(busy_err)}")
        print(f"p99 ratio {pct(busy, 99) / pct(idle, 99):.2f} (goal <= 2)")
        print(f"ingest meanwhile: {files_during} files, {chunks_during} chunks in {during_s:.0f} s "
              f"({chunks_during / during_s:.1f} chunks/s); alone the next 20 s: {alone_chunks / 20:.1f} chunks/s")
        print(f"server peak RSS {s.rss_peak_mb():.0f} MB")
    finally:
        s.stop()


def section_search(work):
    docs = corpus(2000)
    qs = queries(300)
    s = Server(os.path.join(work, "store"))
    try:
        for i in range(0, len(docs), 500):
            s.json("POST", "/documents", {"collection": "c", "documents": docs[i:i + 500]})
        search_latencies(s, "c", qs[:20])
        idle = search_latencies(s, "c", qs)
        stop = threading.Event()
        commits = [0]
        extra = corpus(3000)[2000:]

        def writer():
            i = 0
            while not stop.is_set():
                batch = [{"id": f"w{i}-{d['id']}", "text": d["text"]} for d in extra[(i * 20) % 1000:(i * 20) % 1000 + 20]]
                s.json("POST", "/documents", {"collection": "c", "documents": batch})
                commits[0] += 1
                i += 1
                stop.wait(2)

        w = threading.Thread(target=writer)
        w.start()
        busy = search_latencies(s, "c", qs, rounds=2)
        stop.set()
        w.join()
        print("\n## search while a writer commits every 2 s (20 documents a commit)")
        print(f"idle:    {ms(idle)}")
        print(f"writing: {ms(busy)}; {commits[0]} commits meanwhile")
        print(f"p99 ratio {pct(busy, 99) / pct(idle, 99):.2f}, p50 ratio {pct(busy, 50) / pct(idle, 50):.2f} (goal <= 1.5)")
    finally:
        s.stop()


def section_abuse(work):
    folder = os.path.join(work, "root")
    os.makedirs(folder)
    open(os.path.join(folder, "a.txt"), "w").write("hello")
    s = Server(os.path.join(work, "store"), "--ingest-root", folder, "--max-ingest-jobs", "1",
               "--max-queued-jobs", "1")
    try:
        s.json("POST", "/documents", {"collection": "c", "documents": [{"id": "x", "text": "some text"}]})
        base = s.rss_mb()
        word = "lorem ipsum dolor sit amet "
        tries = [
            ("body over --max-body-bytes (3 MB)", "POST", "/embed", {"inputs": "x" * (3 << 20)}),
            ("inputs over --max-inputs (513)", "POST", "/embed", {"inputs": ["a"] * 513}),
            ("document over --max-document-bytes (1.5 MB)", "POST", "/documents",
             {"documents": [{"id": "d", "text": word * (1_500_000 // len(word))}]}),
            ("metadata over --max-metadata-bytes (9 KB)", "POST", "/documents",
             {"documents": [{"id": "d", "text": "t", "metadata": {"k": "v" * 9000}}]}),
            ("filters over --max-filters (17)", "POST", "/search",
             {"query": "q", "collection": "c", "filter": [f"meta.k{i}=v" for i in range(17)]}),
            ("filter over --max-filter-bytes (2 KB)", "POST", "/search",
             {"query": "q", "collection": "c", "filter": "source:" + "a" * 2048}),
            ("k over 1000", "POST", "/search", {"query": "q", "collection": "c", "k": 100000}),
            ("input over the token window with truncate: false", "POST", "/embed",
             {"inputs": word * 200, "truncate": False}),
            ("malformed JSON", "POST", "/embed", b'{"inputs": ["a", '),
            ("a collection that does not exist", "POST", "/search", {"query": "q", "collection": "nope"}),
            ("an ingest path outside the roots", "POST", "/ingest", {"path": "/etc"}),
        ]
        print("\n## each limit over its bound")
        print("| request | status | body |")
        print("|---|---|---|")
        for label, method, path, body in tries:
            if isinstance(body, bytes):
                status, payload = s.request(method, path, raw=body)
            else:
                status, payload = s.request(method, path, body)
            print(f"| {label} | {status} | `{payload.decode(errors='replace')[:160]}` |")
        # Jobs beyond --max-ingest-jobs + --max-queued-jobs.
        statuses = [s.request("POST", "/ingest", {"path": folder, "collection": f"j{i}"}) for i in range(4)]
        print(f"| 4 ingest jobs at once (1 running + 1 queued allowed) | {[st for st, _ in statuses]} | "
              f"`{statuses[-1][1].decode()[:160]}` |")
        # A method no route knows: not a new metrics label.
        conn = http.client.HTTPConnection(s.host, s.port)
        for i in range(50):
            conn.request(f"X{i}", "/embed")
            conn.getresponse().read()
        conn.close()
        _, text = s.request("GET", "/metrics")
        methods = sorted(set(re.findall(r'method="([^"]+)"', text.decode())))
        print(f"| 50 invented HTTP methods | - | metrics method labels now: {methods} |")
        # Many large valid requests at once.
        big = {"inputs": [word * 60] * 512}
        threads = [threading.Thread(target=s.request, args=("POST", "/embed", big)) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        docs = {"documents": [{"id": f"m{i}", "text": word * 300, "metadata": {"k": "v" * 8000}} for i in range(3)]}
        threads = [threading.Thread(target=s.request, args=("POST", "/documents", docs)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(f"\nRSS: {base:.0f} MB at start, peak {s.rss_peak_mb():.0f} MB after all of the above plus 16 concurrent "
              f"512-input /embed and 8 concurrent 3-document uploads with 8 KB metadata each; now {s.rss_mb():.0f} MB")
    finally:
        s.stop()


def section_shutdown(work):
    s = Server(os.path.join(work, "store"), "--shutdown-deadline", "3", "--read-timeout", "600")
    sock = socket.create_connection((s.host, s.port))
    sock.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
    stop = threading.Event()

    def trickle():
        while not stop.is_set():
            try:
                sock.sendall(b" ")
            except OSError:
                return
            stop.wait(0.5)

    t = threading.Thread(target=trickle)
    t.start()
    time.sleep(1)
    start = time.perf_counter()
    s.proc.send_signal(signal.SIGTERM)
    try:
        s.proc.wait(60)
        took = time.perf_counter() - start
        print("\n## shutdown with a client trickling a request body (deadline 3 s, read timeout 600 s)")
        print(f"SIGTERM to exit: {took:.2f} s (exit status {s.proc.returncode})")
    finally:
        stop.set()
        t.join()
        sock.close()
        s.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="upserts,embed,search,abuse,shutdown")
    ap.add_argument("--docs", type=int, default=1000, help="documents for the upserts section")
    ap.add_argument("--ingest-docs", type=int, default=5000)
    args = ap.parse_args()
    print(f"binary {BINARY}; {os.cpu_count()} CPUs; {time.strftime('%Y-%m-%d %H:%M')}")
    for name in args.only.split(","):
        work = tempfile.mkdtemp(prefix=f"fathom-bench-{name}-")
        try:
            {"upserts": lambda: section_upserts(work, args.docs),
             "embed": lambda: section_embed(work, args.ingest_docs),
             "search": lambda: section_search(work),
             "abuse": lambda: section_abuse(work),
             "shutdown": lambda: section_shutdown(work)}[name]()
            sys.stdout.flush()
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
