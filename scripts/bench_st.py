"""sentence-transformers side of scripts/bench-embed.sh: same documents, same model folder.

Prints one JSON line like the Rust bench; with --compare FILE (fathom's vectors, JSONL) it also
reports the lowest cosine between the two tools' vectors, as a check that both did the same work.
"""
import argparse
import json
import time

import torch
from sentence_transformers import SentenceTransformer


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
    docs = []
    with open(args.corpus) as f:
        for line in f:
            if line.strip():
                d = json.loads(line)
                docs.append(d.get("title", "") + " " + d.get("text", ""))
            if args.limit and len(docs) >= args.limit:
                break
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
        import numpy as np

        other = np.array([json.loads(l) for l in open(args.compare) if l.strip()], dtype=np.float64)
        ours = vectors.astype(np.float64)
        cos = (other * ours).sum(1) / (np.linalg.norm(other, axis=1) * np.linalg.norm(ours, axis=1))
        result["min_cosine_vs_fathom"] = float(cos.min())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
