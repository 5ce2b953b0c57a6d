"""Full-size sentence-transformers model folders with random weights, one per architecture, for
speed benchmarks where the real weights are not available here (scripts/bench-archs.sh).

Each folder takes its tokenizer and sentence-transformers files (pooling, normalization, padding
side) from the tiny fixture of the same architecture (`$FATHOM_SHARED/fixtures/tiny/<arch>`) and
its sizes from the public base configuration named below; `transformers` builds the model with its
own random initialisation (seed 0) and `save_pretrained` writes it, so fathom and
sentence-transformers read identical files. The fixtures' tokenizers have small vocabularies
(500-700 pieces), so a document becomes more tokens than with the real tokenizer; both tools see
the same tokens, and the bench reports tokens/s. The vocabulary (embedding table) is the only size
that differs from the real model; it costs a lookup, not compute.

    python scripts/make_random_models.py OUT_DIR [--max-seq-length 256] [--reference TEXTS] [ARCH ...]

`minilm` is all-MiniLM-L6-v2's shape with its real tokenizer, from the model folder named by
`--minilm` (default models/all-MiniLM-L6-v2; its weights are not read). With `--reference
TEXTS` (a JSON list of strings, e.g. fixtures/texts.json) each folder also gets `reference.jsonl`:
`{"text","embedding"}` per line, sentence-transformers' output on the CPU in float32, the
fidelity reference that scripts/gpu-check.sh compares fathom's CUDA output against.
"""
import argparse
import json
import os
import shutil

import torch
from transformers import AutoConfig, AutoModel

# Sizes of the public base models (their config.json on the hub).
FULL_SIZE = {
    # sentence-transformers/all-MiniLM-L6-v2: its own config.json is already full size
    "minilm": dict(),
    # distilbert-base-uncased
    "distilbert": dict(dim=768, hidden_dim=3072, n_layers=6, n_heads=12, max_position_embeddings=512),
    # xlm-roberta-base
    "xlm-roberta": dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                        num_attention_heads=12, max_position_embeddings=514),
    # microsoft/mpnet-base (all-mpnet-base-v2)
    "mpnet": dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                  num_attention_heads=12, max_position_embeddings=514),
    # answerdotai/ModernBERT-base
    "modernbert": dict(hidden_size=768, intermediate_size=1152, num_hidden_layers=22,
                       num_attention_heads=12, global_attn_every_n_layers=3, local_attention=128,
                       max_position_embeddings=8192,
                       layer_types=["full_attention" if i % 3 == 0 else "sliding_attention"
                                    for i in range(22)]),
    # Qwen/Qwen3-Embedding-0.6B
    "qwen3": dict(hidden_size=1024, intermediate_size=3072, num_hidden_layers=28,
                  num_attention_heads=16, num_key_value_heads=8, head_dim=128,
                  max_position_embeddings=32768, max_window_layers=28,
                  layer_types=["full_attention"] * 28,
                  rope_parameters={"rope_theta": 1000000.0, "rope_type": "default"}),
}


def build(arch, tiny, out, max_len):
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(tiny):
        if name in ("model.safetensors", "pytorch_model.bin", "config.json", "reference.jsonl"):
            continue
        src = os.path.join(tiny, name)
        dst = os.path.join(out, name)
        if os.path.isdir(src):
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            shutil.copy(src, dst)
    with open(os.path.join(tiny, "config.json")) as f:
        config = json.load(f)
    config.update(FULL_SIZE[arch])
    config = AutoConfig.for_model(**config)
    torch.manual_seed(0)
    model = AutoModel.from_config(config)
    model.save_pretrained(out)
    hidden = getattr(config, "hidden_size", None) or config.dim

    path = os.path.join(out, "tokenizer_config.json")
    with open(path) as f:
        tok = json.load(f)
    tok["model_max_length"] = max_len
    with open(path, "w") as f:
        json.dump(tok, f, indent=2)
    path = os.path.join(out, "1_Pooling", "config.json")
    with open(path) as f:
        pooling = json.load(f)
    pooling["embedding_dimension"] = hidden
    with open(path, "w") as f:
        json.dump(pooling, f, indent=2)
    params = sum(p.numel() for p in model.parameters())
    print(f"{arch}: {params / 1e6:.0f} M parameters, hidden {hidden}, "
          f"{config.num_hidden_layers if hasattr(config, 'num_hidden_layers') else config.n_layers} layers -> {out}")


def write_reference(out, texts):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(out, device="cpu")
    vectors = model.encode(texts, batch_size=8, convert_to_numpy=True)
    with open(os.path.join(out, "reference.jsonl"), "w") as f:
        for text, v in zip(texts, vectors):
            f.write(json.dumps({"text": text, "embedding": [float(x) for x in v]}) + "\n")
    print(f"{out}: reference.jsonl, {len(texts)} texts, sentence-transformers on the CPU, float32")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("archs", nargs="*", default=list(FULL_SIZE))
    ap.add_argument("--max-seq-length", type=int, default=256)
    ap.add_argument("--shared", default=os.environ.get("FATHOM_SHARED", "../shared"))
    ap.add_argument("--minilm", default="models/all-MiniLM-L6-v2",
                    help="the folder `minilm` takes its tokenizer and config from")
    ap.add_argument("--reference", help="JSON list of texts: also write reference.jsonl")
    args = ap.parse_args()
    texts = None
    if args.reference:
        with open(args.reference) as f:
            texts = json.load(f)
    for arch in args.archs:
        if arch not in FULL_SIZE:
            ap.error(f"unknown architecture {arch!r}; choose from {', '.join(FULL_SIZE)}")
        out = os.path.join(args.out, arch)
        if os.path.exists(os.path.join(out, "model.safetensors")):
            print(f"{arch}: {out} exists")
        else:
            source = args.minilm if arch == "minilm" else os.path.join(args.shared, "fixtures", "tiny", arch)
            build(arch, source, out, args.max_seq_length)
        if texts is not None and not os.path.exists(os.path.join(out, "reference.jsonl")):
            write_reference(out, texts)


if __name__ == "__main__":
    main()
