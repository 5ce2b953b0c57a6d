#!/usr/bin/env python3
"""Where a short query's time goes on an idle `fathom serve`: client round trip over a kept-alive
connection, the server's own time for the route, and the model call, from /metrics' histograms
(sum / count over the timed requests). Run from the repo root with CARGO_TARGET_DIR set.

    python3 scripts/probe_query_latency.py [N]
"""
import http.client, json, os, re, sys, tempfile, time
sys.path.insert(0, "scripts")
import bench_server as b

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
QUERY = "what causes the seasons on earth"  # 9 tokens with [CLS]/[SEP]


def sums(server):
    _, text = server.request("GET", "/metrics")
    text = text.decode()
    def metric(pattern):
        m = re.search(pattern, text, re.M)
        return float(m.group(1)) if m else 0.0
    return {
        "route_sum": metric(r'^fathom_http_request_duration_seconds_sum\{route="/embed"\} ([\d.e+-]+)'),
        "route_count": metric(r'^fathom_http_request_duration_seconds_count\{route="/embed"\} ([\d.e+-]+)'),
        "model_sum": metric(r"^fathom_embed_batch_duration_seconds_sum ([\d.e+-]+)"),
        "model_count": metric(r"^fathom_embed_batch_duration_seconds_count ([\d.e+-]+)"),
    }


work = tempfile.mkdtemp()
s = b.Server(os.path.join(work, "store"))
try:
    conn = http.client.HTTPConnection(s.host, s.port, timeout=30)
    body = json.dumps({"inputs": QUERY}).encode()
    def once():
        conn.request("POST", "/embed", body=body, headers={"content-type": "application/json"})
        r = conn.getresponse(); r.read()
        assert r.status == 200, r.status
    for _ in range(100):
        once()
    before = sums(s)
    lat = []
    for _ in range(N):
        t = time.perf_counter(); once(); lat.append(time.perf_counter() - t)
    after = sums(s)
    d = {k: after[k] - before[k] for k in after}
    lat.sort()
    print(f"client round trip: p50 {b.pct(lat, 50)*1000:.2f} ms, p99 {b.pct(lat, 99)*1000:.2f} ms, "
          f"mean {sum(lat) / len(lat) * 1000:.2f} ms (n={N})")
    print(f"server route mean: {d['route_sum'] / max(d['route_count'], 1) * 1000:.2f} ms")
    print(f"model call mean:   {d['model_sum'] / max(d['model_count'], 1) * 1000:.2f} ms ({int(d['model_count'])} calls)")
finally:
    s.stop()
