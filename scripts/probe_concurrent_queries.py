#!/usr/bin/env python3
"""Short queries at concurrency 32 against `fathom serve` (one server per precision, 15 s each):
requests/s and client latency. The clients are Python threads on the same machine, so on a small
machine they take CPU from the server: compare precisions within one run, not with other tools.

    python3 scripts/probe_concurrent_queries.py [f32 int8 ...]
"""
import http.client
import json
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_server as b  # noqa: E402
QUERIES = ["what causes the seasons on earth", "how do vaccines train the immune system", "which proteins bind to dna", "effects of sleep loss on memory"]
for dtype in sys.argv[1:] or ["f32", "int8"]:
    d = tempfile.mkdtemp()
    s = b.Server(os.path.join(d, "store"), env={"FATHOM_DTYPE": dtype})
    try:
        stop = time.time() + 15
        counts = []
        lat = []
        def worker(i):
            c = http.client.HTTPConnection(s.host, s.port, timeout=60)
            n = 0
            while time.time() < stop:
                body = json.dumps({"inputs": QUERIES[(i + n) % 4]})
                t = time.perf_counter()
                c.request("POST", "/embed", body=body, headers={"content-type": "application/json"})
                r = c.getresponse(); r.read(); assert r.status == 200
                lat.append(time.perf_counter() - t); n += 1
            counts.append(n)
        ts = [threading.Thread(target=worker, args=(i,)) for i in range(32)]
        t0 = time.time(); [t.start() for t in ts]; [t.join() for t in ts]
        wall = time.time() - t0
        print(f"{dtype}: concurrency 32, short queries: {sum(counts)/wall:.0f} req/s, {b.ms(lat)}")
    finally:
        s.stop()
