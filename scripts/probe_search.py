#!/usr/bin/env python3
"""The slowest searches while a writer commits every 2 s, with the commit windows they fall in. Run from the repo root."""
import sys, os, time, threading, tempfile
sys.path.insert(0, "scripts")
import bench_server as b
work = tempfile.mkdtemp()
docs = b.corpus(2000); qs = b.queries(300)
s = b.Server(os.path.join(work, "store"))
try:
    for i in range(0, len(docs), 500):
        s.json("POST", "/documents", {"collection": "c", "documents": docs[i:i + 500]})
    b.search_latencies(s, "c", qs[:20])
    events = []
    stop = threading.Event()
    extra = b.corpus(3000)[2000:]
    def writer():
        i = 0
        while not stop.is_set():
            batch = [{"id": f"w{i}-{d['id']}", "text": d["text"]} for d in extra[(i*20) % 1000:(i*20) % 1000 + 20]]
            t0 = time.perf_counter()
            s.json("POST", "/documents", {"collection": "c", "documents": batch})
            events.append(("commit", t0, time.perf_counter()))
            i += 1
            stop.wait(2)
    w = threading.Thread(target=writer); w.start()
    lat = []
    for q in qs + qs:
        t = time.perf_counter()
        s.json("POST", "/search", {"query": q, "collection": "c", "k": 10})
        lat.append((t, time.perf_counter() - t))
    stop.set(); w.join()
    worst = sorted(lat, key=lambda x: -x[1])[:12]
    base = lat[0][0]
    for t, d in sorted(worst):
        near = [(round(a - base, 2), round(e - base, 2)) for _, a, e in events if a - 0.1 <= t <= e + 0.3]
        print(f"t={t-base:7.2f}s {d*1000:6.1f} ms  commits around: {near}")
    print("commits:", [(round(a-base,2), round(e-base,2)) for _, a, e in events])
finally:
    s.stop()
