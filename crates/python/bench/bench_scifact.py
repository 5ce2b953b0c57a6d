"""fathom (Python package) vs sentence-transformers, in one process, on the first SciFact documents.

Run by scripts/bench-python.sh; prints a table and one JSON line with every figure.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from importlib import metadata

COLD_START = {
    "fathom": (
        "import time; t0 = time.perf_counter(); import fathom; t1 = time.perf_counter(); "
        "m = fathom.SentenceTransformer(MODEL); t2 = time.perf_counter(); m.encode(['hello world']); "
        "t3 = time.perf_counter()"
    ),
    "sentence-transformers": (
        "import time; t0 = time.perf_counter(); import sentence_transformers; t1 = time.perf_counter(); "
        "m = sentence_transformers.SentenceTransformer(MODEL, device='cpu'); t2 = time.perf_counter(); "
        "m.encode(['hello world']); t3 = time.perf_counter()"
    ),
}


def cold_start(tool, model):
    """Seconds to import, load the model and encode one text, in a fresh interpreter."""
    code = COLD_START[tool].replace("MODEL", repr(model)) + "; print(t1 - t0, t2 - t1, t3 - t2)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    imp, load, first = (float(x) for x in out.split()[-3:])
    return {"import_s": imp, "load_s": load, "first_encode_s": first, "total_s": imp + load + first}


def footprint_mb(root, skip=()):
    """MB on disk of distribution `root` and everything it requires, transitively (files listed in
    each distribution's RECORD), leaving out distributions whose name starts with one of `skip`."""
    seen, todo, total = set(), [root], 0
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen or name.startswith(tuple(skip)):
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen.add(name)
        for f in dist.files or []:
            try:
                total += os.path.getsize(f.locate())
            except OSError:
                pass
        for req in dist.requires or []:
            if "extra ==" in req:
                continue
            if ";" in req:
                from packaging.markers import Marker

                if not Marker(req.split(";", 1)[1]).evaluate():
                    continue
            dep = req.split(";")[0].strip()
            for sep in "<>=!~[( ":
                dep = dep.split(sep)[0]
            todo.append(dep)
    return total / 1e6, sorted(seen)


def cpu_seconds():
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--limit", type=int, default=400)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    docs = []
    with open(args.corpus) as f:
        for line in f:
            if line.strip():
                d = json.loads(line)
                docs.append(d.get("title", "") + " " + d.get("text", ""))
            if len(docs) >= args.limit:
                break

    load_before = open("/proc/loadavg").read().split()[0]
    # Twice each, alternating, keeping the faster: the first run also pays for reading the model
    # files into the page cache, which would otherwise count against whichever tool goes first.
    cold = {}
    for _ in range(2):
        for tool in COLD_START:
            c = cold_start(tool, args.model)
            if tool not in cold or c["total_s"] < cold[tool]["total_s"]:
                cold[tool] = c

    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer as STModel

    import fathom

    torch.set_num_threads(args.threads)
    st = STModel(args.model, device="cpu")
    fa = fathom.SentenceTransformer(args.model)
    fa8 = fathom.SentenceTransformer(args.model, dtype="int8")
    tokens = sum(len(ids) for ids in fa.tokenizer(docs, truncation=True)["input_ids"])

    def min_cos(a, b):
        a, b = a.astype(np.float64), b.astype(np.float64)
        return float(((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))).min())

    runs = {
        ("sentence-transformers", "float32"): lambda d: st.encode(d, batch_size=args.batch_size),
        ("fathom", "float32"): lambda d: fa.encode(d, batch_size=args.batch_size),
        ("fathom", "int8"): lambda d: fa8.encode(d, batch_size=args.batch_size),
    }
    try:
        fa.encode(docs[:1], precision="bfloat16")
    except RuntimeError as e:
        bf16_note = str(e)
    else:
        bf16_note = None
        runs[("fathom", "bfloat16")] = lambda d: fa.encode(d, batch_size=args.batch_size, precision="bfloat16")
    for encode in runs.values():
        encode(docs[:16])  # warm-up
    # Rounds alternate the tools, so that a change in the machine's load hits them alike; each
    # keeps its best round.
    # CPU seconds (all threads, user + system) are shown too: on a shared machine they move less
    # than wall time.
    best = {key: float("inf") for key in runs}
    best_cpu = dict(best)
    vectors = {}
    for _ in range(max(1, args.repeat)):
        for key, encode in runs.items():
            cpu0, start = cpu_seconds(), time.perf_counter()
            vectors[key] = encode(docs)
            best[key] = min(best[key], time.perf_counter() - start)
            best_cpu[key] = min(best_cpu[key], cpu_seconds() - cpu0)
    rows = [{"tool": tool, "precision": precision, "seconds": best[(tool, precision)],
             "cpu_seconds": best_cpu[(tool, precision)],
             "docs_per_s": len(docs) / best[(tool, precision)], "tokens_per_s": tokens / best[(tool, precision)]}
            for tool, precision in runs]
    st_vectors = vectors[("sentence-transformers", "float32")]
    checks = {"min_cosine_fathom_f32_vs_st": min_cos(vectors[("fathom", "float32")], st_vectors)}
    checks["min_cosine_fathom_int8_vs_st"] = min_cos(vectors[("fathom", "int8")], st_vectors)
    if ("fathom", "bfloat16") in vectors:
        checks["min_cosine_fathom_bf16_vs_st"] = min_cos(vectors[("fathom", "bfloat16")], st_vectors)

    st_rate = rows[0]["docs_per_s"]
    for r in rows:
        r["ratio_vs_st"] = r["docs_per_s"] / st_rate

    fathom_mb, fathom_dists = footprint_mb("fathom-embed")
    st_mb, st_dists = footprint_mb("sentence-transformers")
    # PyPI's Linux torch is the CUDA build; without its CUDA libraries it is roughly the CPU wheel.
    st_cpu_mb, _ = footprint_mb("sentence-transformers", skip=("nvidia-", "triton", "cuda-"))

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"{len(docs)} SciFact documents ({tokens} tokens after truncation), {args.threads} threads, "
          f"batch {args.batch_size}, best of {args.repeat} alternating rounds; {os.cpu_count()} cores, {cpu}; "
          f"load average before: {load_before}")
    print(f"sentence-transformers {metadata.version('sentence-transformers')}, torch {torch.__version__}, "
          f"fathom {fathom.__version__}")
    print(f"{'tool':<24}{'precision':>10}{'seconds':>9}{'docs/s':>9}{'tokens/s':>10}{'vs ST':>7}{'CPU s':>8}")
    for r in rows:
        print(f"{r['tool']:<24}{r['precision']:>10}{r['seconds']:>9.2f}{r['docs_per_s']:>9.1f}"
              f"{r['tokens_per_s']:>10.0f}{r['ratio_vs_st']:>7.2f}{r['cpu_seconds']:>8.1f}")
    if bf16_note:
        print(f"fathom bfloat16: not run: {bf16_note}")
    for k, v in checks.items():
        print(f"{k}: {v:.6f}")
    print(f"{'cold start':<24}{'import':>9}{'load':>9}{'1st enc':>9}{'total':>9}")
    for tool, c in cold.items():
        print(f"{tool:<24}{c['import_s']:>9.2f}{c['load_s']:>9.2f}{c['first_encode_s']:>9.2f}{c['total_s']:>9.2f}")
    print(f"install footprint: fathom-embed + deps {fathom_mb:.0f} MB ({', '.join(fathom_dists)}); "
          f"sentence-transformers + deps {st_mb:.0f} MB ({len(st_dists)} distributions), "
          f"{st_cpu_mb:.0f} MB without the CUDA libraries (nvidia-*, triton)")
    print(json.dumps({"rows": rows, "checks": checks, "cold_start": cold, "bf16_note": bf16_note,
                      "footprint_mb": {"fathom": fathom_mb, "sentence_transformers": st_mb,
                                       "sentence_transformers_without_cuda_libs": st_cpu_mb},
                      "threads": args.threads, "docs": len(docs), "tokens": tokens}))


if __name__ == "__main__":
    main()
