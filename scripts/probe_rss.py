#!/usr/bin/env python3
"""Server RSS over N single-document upserts, after idle, and during one batched upsert of the
same N documents. Run from the repo root with CARGO_TARGET_DIR set.

    python3 scripts/probe_rss.py [N (600)] [IDLE_SECONDS (20)]
"""
import sys, os, time, tempfile, threading
sys.path.insert(0, "scripts")
import bench_server as b
work = tempfile.mkdtemp()
N = int(sys.argv[1]) if len(sys.argv) > 1 else 600
IDLE = int(sys.argv[2]) if len(sys.argv) > 2 else 20
docs = b.corpus(N)
s = b.Server(os.path.join(work, "store"), "--max-inputs", str(max(N, 512)), "--max-body-bytes", str(64 << 20))
try:
    print(f"start rss {s.rss_mb():.0f} MB")
    for i, d in enumerate(docs):
        s.json("POST", "/documents", {"collection": "single", "documents": [d]})
        if (i + 1) % max(N // 10, 1) == 0:
            print(f"after {i+1} single upserts: rss {s.rss_mb():.0f} MB, peak {s.rss_peak_mb():.0f} MB")
    time.sleep(IDLE)
    print(f"after {IDLE} s idle: rss {s.rss_mb():.0f} MB, peak {s.rss_peak_mb():.0f} MB")
    peak = [0]
    stop = threading.Event()
    def watch():
        while not stop.is_set():
            peak[0] = max(peak[0], s.rss_mb()); time.sleep(0.05)
    t = threading.Thread(target=watch); t.start()
    s.json("POST", "/documents", {"collection": "batched", "documents": docs})
    stop.set(); t.join()
    print(f"during one batched upsert of {N}: max sampled rss {peak[0]:.0f} MB; after: {s.rss_mb():.0f} MB, peak {s.rss_peak_mb():.0f} MB")
finally:
    s.stop()
