"""ONNX Runtime side of scripts/bench-embed.sh: the same model folder exported to ONNX, run f32 and
with ONNX Runtime's dynamic int8 quantization, on the same documents.

    bench_onnx.py export --model DIR --out DIR          # model.onnx and model.int8.onnx
    bench_onnx.py run --onnx FILE --model DIR --corpus F [--limit N] [--threads N] [--compare F]

`export` traces the transformer (`transformers.AutoModel`, what sentence-transformers wraps) with
`torch.onnx.export` and quantizes it with `onnxruntime.quantization.quantize_dynamic` at its
defaults (int8 weights per tensor, activations u8 quantized dynamically): what a user following
ONNX Runtime's documentation gets. `run` does what sentence-transformers' `encode` does around it:
sort by length, batches of 32 padded to their longest text, truncation at max_seq_length, the
model's pooling and normalization (read from the folder's files), and prints one JSON line like
the Rust bench (peak RSS is this process's: the ONNX session, tokenizers and numpy).
"""
import argparse
import json
import os
import resource
import time

import numpy as np
from bench_common import min_cosine, read_docs


def export(args):
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel, AutoTokenizer

    os.makedirs(args.out, exist_ok=True)
    model = AutoModel.from_pretrained(args.model).eval()
    tok = AutoTokenizer.from_pretrained(args.model)
    sample = tok(["a sample text", "another, longer sample text"], padding=True, return_tensors="pt")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]

    class Wrapped(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *inputs):
            return self.inner(**dict(zip(names, inputs))).last_hidden_state

    f32 = os.path.join(args.out, "model.onnx")
    dynamic = {n: {0: "batch", 1: "seq"} for n in names}
    dynamic["last_hidden_state"] = {0: "batch", 1: "seq"}
    torch.onnx.export(
        Wrapped(model),
        tuple(sample[n] for n in names),
        f32,
        input_names=names,
        output_names=["last_hidden_state"],
        dynamic_axes=dynamic,
        opset_version=17,
        dynamo=False,
    )
    quantize_dynamic(f32, os.path.join(args.out, "model.int8.onnx"), weight_type=QuantType.QInt8)


def folder_config(model):
    """Pooling mode, normalization and max_seq_length from a sentence-transformers folder, read
    from its files (importing sentence-transformers would load torch and inflate peak RSS)."""
    modules = json.load(open(os.path.join(model, "modules.json")))
    pooling = next(m for m in modules if m["type"].endswith("Pooling"))
    config = json.load(open(os.path.join(model, pooling["path"], "config.json")))
    mode = config.get("pooling_mode") or next(
        (k[len("pooling_mode_") :] for k, v in config.items() if k.startswith("pooling_mode_") and v), ""
    )
    mode = {"mean_tokens": "mean", "cls_token": "cls"}.get(mode, mode)
    if mode not in ("mean", "cls", "lasttoken"):
        raise SystemExit(f"bench_onnx: pooling {mode} is not implemented here")
    normalize = any(m["type"].endswith("Normalize") for m in modules)
    # sentence-transformers' own order: sentence_bert_config.json, else the tokenizer's limit
    # (model_max_length), within the model's position embeddings.
    max_len = json.load(open(os.path.join(model, "sentence_bert_config.json"))).get("max_seq_length")
    if max_len is None:
        max_len = json.load(open(os.path.join(model, "tokenizer_config.json"))).get("model_max_length", 512)
        positions = json.load(open(os.path.join(model, "config.json"))).get("max_position_embeddings")
        max_len = min(max_len, positions) if positions else max_len
    return mode, normalize, max_len


def run(args):
    import onnxruntime as ort
    from tokenizers import Tokenizer

    mode, normalize, max_len = folder_config(args.model)
    tok = Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
    tok.enable_truncation(max_len)
    tok.no_padding()
    docs = read_docs(args.corpus, args.limit)
    tokens = sum(len(e.ids) for e in tok.encode_batch(docs))
    pad = json.load(open(os.path.join(args.model, "tokenizer_config.json"))).get("pad_token", "[PAD]")
    pad = pad["content"] if isinstance(pad, dict) else pad
    tok.enable_padding(pad_id=tok.token_to_id(pad), pad_token=pad)

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(args.onnx, opts, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def encode(texts):
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = [None] * len(texts)
        for start in range(0, len(texts), 32):
            idx = order[start : start + 32]
            enc = tok.encode_batch([texts[i] for i in idx])
            arrays = {
                "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64),
            }
            hidden = session.run(None, {n: arrays[n] for n in names})[0]
            mask = arrays["attention_mask"].astype(np.float32)[:, :, None]
            if mode == "mean":
                vec = (hidden * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)
            elif mode == "lasttoken":
                # Padding is on the right, so a text's last token is at its length - 1.
                last = arrays["attention_mask"].sum(1) - 1
                vec = hidden[np.arange(len(idx)), last]
            else:
                vec = hidden[:, 0]
            if normalize:
                vec = vec / np.clip(np.linalg.norm(vec, axis=1, keepdims=True), 1e-12, None)
            for i, v in zip(idx, vec):
                out[i] = v
        return np.stack(out)

    encode(docs[:16])
    best = float("inf")
    for _ in range(max(1, args.repeat)):
        start = time.perf_counter()
        vectors = encode(docs)
        best = min(best, time.perf_counter() - start)
    result = {
        "tool": "onnxruntime " + ort.__version__,
        "precision": "int8" if "int8" in os.path.basename(args.onnx) else "f32",
        "threads": args.threads,
        "docs": len(docs),
        "tokens": tokens,
        "seconds": best,
        "docs_per_s": len(docs) / best,
        "tokens_per_s": tokens / best,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if args.compare:
        result["min_cosine_vs_fathom"] = min_cosine(args.compare, vectors)
    print(json.dumps(result))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export")
    e.add_argument("--model", required=True)
    e.add_argument("--out", required=True)
    r = sub.add_parser("run")
    r.add_argument("--onnx", required=True)
    r.add_argument("--model", required=True)
    r.add_argument("--corpus", required=True)
    r.add_argument("--limit", type=int, default=400)
    r.add_argument("--threads", type=int, default=2)
    r.add_argument("--repeat", type=int, default=1)
    r.add_argument("--compare")
    args = ap.parse_args()
    export(args) if args.cmd == "export" else run(args)


if __name__ == "__main__":
    main()
