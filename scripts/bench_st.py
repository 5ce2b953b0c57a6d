"""sentence-transformers side of scripts/bench-embed.sh: same documents, same model folder.

Prints one JSON line like the Rust bench; with --compare FILE (fathom's vectors, JSONL) it also
reports the lowest cosine between the two tools' vectors, as a check that both did the same work.
"""
import argparse
import json
import time

import torch
from sentence_transformers import SentenceTransformer

from bench_common import min_cosine, read_docs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--limit", type=int, default=400)
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="f32", choices=["f32", "f16"])
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--compare")
    args = ap.parse_args()

    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    docs = read_docs(args.corpus, args.limit)
    model = SentenceTransformer(args.model, device=args.device)
    if args.precision == "f16":
        model = model.half()
    tok = model.tokenizer
    max_len = model.max_seq_length
    tokens = sum(min(len(ids), max_len) for ids in tok(docs, add_special_tokens=True)["input_ids"])
    model.encode(docs[:16], batch_size=args.batch_size)
    best = float("inf")
    for _ in range(max(1, args.repeat)):
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        vectors = model.encode(docs, batch_size=args.batch_size, convert_to_numpy=True)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    result = {
        "tool": "sentence-transformers",
        "precision": args.precision,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "batch_size": args.batch_size,
        "docs": len(docs),
        "tokens": tokens,
        "seconds": best,
        "docs_per_s": len(docs) / best,
        "tokens_per_s": tokens / best,
    }
    if args.compare:
        result["min_cosine_vs_fathom"] = min_cosine(args.compare, vectors)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
