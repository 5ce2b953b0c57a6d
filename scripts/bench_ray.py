"""fathom.ray against `fathom ingest` on the same folder and machine (scripts/bench-ray.sh).

Prints, for one SciFact file per document: `fathom ingest` docs/s (whole process: model load,
walk, read, chunk, embed, write, index), fathom.ray.ingest docs/s with 1 worker (both cores) and
with 2 workers (one core each) on a local Ray instance started beforehand (its start is a
cluster's, not a run's), each into a fresh store; and one worker's cost: model load time and
RSS after loading and after a batch."""

import json
import os
import resource
import subprocess
import sys
import tempfile
import time


def main():
    fathom_bin, corpus, limit, model = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    tmp = tempfile.mkdtemp()
    docs = os.path.join(tmp, "docs")
    os.makedirs(docs)
    n = 0
    for line in open(corpus):
        if limit and n >= limit:
            break
        d = json.loads(line)
        with open(os.path.join(docs, f"{d['_id']}.txt"), "w") as f:
            f.write(d.get("title", "") + " " + d.get("text", ""))
        n += 1
    print(f"bench-ray: {n} files; CPU: {cpu()}", flush=True)

    if "--worker-cost" in sys.argv:
        return worker_cost(model, docs)

    start = time.monotonic()
    out = subprocess.run([fathom_bin, "ingest", docs, "--store", os.path.join(tmp, "cli"), "--model", model,
                          "--json"], check=True, capture_output=True, text=True).stdout
    cli_s = time.monotonic() - start
    cli = json.loads(out)
    print(f"fathom ingest: {cli['added']} files, {cli['chunks']} chunks in {cli_s:.1f} s = {n / cli_s:.1f} docs/s",
          flush=True)

    import ray

    import fathom.ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    for workers, cpus in [(1, 2), (2, 1)]:
        store = os.path.join(tmp, f"ray{workers}")
        start = time.monotonic()
        s = fathom.ray.ingest(docs, store, model=model, num_workers=workers, num_cpus_per_worker=cpus)
        secs = time.monotonic() - start
        assert s["added"] == cli["added"] and s["chunks"] == cli["chunks"], (s, cli)
        print(f"fathom.ray, {workers} worker(s) x {cpus} CPU: {s['added']} files, {s['chunks']} chunks in "
              f"{secs:.1f} s = {n / secs:.1f} docs/s = {cli_s / secs:.2f}x fathom ingest", flush=True)
    ray.shutdown()
    # One worker's cost, in a fresh process (its RSS is the worker's alone).
    subprocess.run([sys.executable, *sys.argv, "--worker-cost"], check=True)


def worker_cost(model, docs):
    import ray  # noqa: F401 - imported before the clock starts, as in a Ray worker

    import fathom.ray

    start = time.monotonic()
    w = fathom.ray.Embed(model, docs)
    load = time.monotonic() - start
    rss_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    files = sorted(os.listdir(docs))[:64]
    start = time.monotonic()
    t = w({"source_id": files, "path": files})
    batch = time.monotonic() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"one worker: model load {load:.2f} s, peak RSS {rss_load:.0f} MiB after loading, {rss:.0f} MiB "
          f"after a batch of {len(files)} files ({t.num_rows} chunks in {batch:.2f} s)")


def cpu():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip() + f", {os.cpu_count()} cores"
    return "?"


if __name__ == "__main__":
    main()
