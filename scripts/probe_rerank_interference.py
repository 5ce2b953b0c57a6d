#!/usr/bin/env python3
"""`/embed` latency on a `fathom serve` that also runs a reranker: a short query's p50/p99 alone,
then while another client keeps the reranker busy (one query against 50 SciFact abstracts, back
to back). The reranker is the ms-marco-MiniLM-L6-v2-shaped random-weight model that
scripts/bench-rerank.sh writes (run that first). Run from the repo root with CARGO_TARGET_DIR set.

    python3 scripts/probe_rerank_interference.py [N]
"""
import http.client, json, os, sys, tempfile, threading, time
sys.path.insert(0, "scripts")
import bench_server as b

N = int(sys.argv[1]) if len(sys.argv) > 1 else 300
QUERY = "what causes the seasons on earth"
RERANKER = os.path.expanduser("~/.cache/fathom/bench-rerank/minilm-ce")
assert os.path.isfile(os.path.join(RERANKER, "model.safetensors")), "run scripts/bench-rerank.sh first"
DOCS = [d for d in b.corpus(50)]


def latencies(s, n):
    conn = http.client.HTTPConnection(s.host, s.port, timeout=60)
    body = json.dumps({"inputs": QUERY}).encode()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        conn.request("POST", "/embed", body=body, headers={"content-type": "application/json"})
        r = conn.getresponse(); r.read()
        assert r.status == 200, r.status
        out.append(time.perf_counter() - t)
    out.sort()
    return out


work = tempfile.mkdtemp()
s = b.Server(os.path.join(work, "store"), "--reranker", RERANKER)
try:
    latencies(s, 50)
    alone = latencies(s, N)
    stop = threading.Event()
    reranks = []

    def busy():
        conn = http.client.HTTPConnection(s.host, s.port, timeout=120)
        texts = [d["text"] if isinstance(d, dict) else d for d in DOCS]
        body = json.dumps({"query": "antibiotic resistance in bacteria", "texts": texts}).encode()
        while not stop.is_set():
            t = time.perf_counter()
            conn.request("POST", "/rerank", body=body, headers={"content-type": "application/json"})
            r = conn.getresponse(); r.read()
            assert r.status == 200, r.status
            reranks.append(time.perf_counter() - t)

    thread = threading.Thread(target=busy)
    thread.start()
    time.sleep(1.0)
    loaded = latencies(s, N)
    stop.set()
    thread.join()
    result = {
        "embed_alone_ms": {"p50": b.pct(alone, 50) * 1000, "p99": b.pct(alone, 99) * 1000},
        "embed_with_reranker_busy_ms": {"p50": b.pct(loaded, 50) * 1000, "p99": b.pct(loaded, 99) * 1000},
        "p99_ratio": b.pct(loaded, 99) / b.pct(alone, 99),
        "reranks_meanwhile": len(reranks),
        "rerank_mean_s": sum(reranks) / max(len(reranks), 1),
    }
    print(json.dumps(result))
finally:
    s.stop()
