#!/usr/bin/env python3
"""Commit rate on S3 (moto): one fathom serve writing single documents, then two servers writing one collection at once; counts errors. Run from the repo root with CARGO_TARGET_DIR set like scripts/bench-server.sh."""
import sys, os, time, tempfile, threading
sys.path.insert(0, "scripts")
import bench_object_store as o
from bench_server import pct
moto, endpoint = o.start_moto()
env = {**os.environ, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1",
       "AWS_ENDPOINT": endpoint, "AWS_ALLOW_HTTP": "true", "HF_HUB_OFFLINE": "1"}
try:
    s3 = "s3://bench/probe"
    a = o.ServerOn(s3, env)
    b = o.ServerOn(s3, env)
    try:
        a.json("POST", "/documents", {"collection": "c", "documents": [{"id": "seed", "text": "seed"}]})
        b.json("POST", "/search", {"query": "seed", "collection": "c", "k": 1})
        # one writer, 30 single-document commits
        lat = []
        for i in range(30):
            t = time.perf_counter()
            a.json("POST", "/documents", {"collection": "c", "documents": [{"id": f"a{i}", "text": f"alpha {i}"}]})
            lat.append(time.perf_counter() - t)
        print(f"one writer on S3 (moto): upsert of one document p50 {pct(lat,50)*1000:.0f} ms, p99 {pct(lat,99)*1000:.0f} ms -> {1/pct(lat,50):.1f} commits/s")
        # two writers at once, 30 each
        res = {}
        def w(srv, tag):
            l = []
            res[tag + "err"] = []
            for i in range(30):
              try:
                t = time.perf_counter()
                srv.json("POST", "/documents", {"collection": "c", "documents": [{"id": f"{tag}{i}", "text": f"{tag} text {i}"}]})
                l.append(time.perf_counter() - t)
              except Exception as e:
                res[tag + "err"].append(str(e)[:400])
            res[tag] = l
        t0 = time.perf_counter()
        ts = [threading.Thread(target=w, args=(a, "x")), threading.Thread(target=w, args=(b, "y"))]
        [t.start() for t in ts]; [t.join() for t in ts]
        took = time.perf_counter() - t0
        print("errors x:", len(res["xerr"]), res["xerr"][:2]); print("errors y:", len(res["yerr"]), res["yerr"][:2])
        both = res["x"] + res["y"]
        print(f"two writers (two servers) at once: 60 commits in {took:.1f} s = {60/took:.1f} commits/s; upsert p50 {pct(both,50)*1000:.0f} ms p99 {pct(both,99)*1000:.0f} ms")
        n = len(a.json("GET", "/collections/c/sources"))
        print(f"sources after: {n} (expected 91)")
    finally:
        a.stop(); b.stop()
finally:
    moto.kill()
