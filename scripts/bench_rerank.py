"""Rerank and SPLADE latency: fathom's Python classes against sentence-transformers' CrossEncoder
and SparseEncoder, in one process on the same cores (scripts/bench-rerank.sh runs it).

The models are full-size random-weight copies of public shapes (no hub here): a
cross-encoder/ms-marco-MiniLM-L6-v2-shaped BERT (6 layers, 384 wide) with all-MiniLM-L6-v2's real
uncased tokenizer, a BAAI/bge-reranker-base-shaped XLM-R (12 layers, 768 wide; the tiny fixture's
small tokenizer), and a naver/splade-v3-shaped BERT masked-LM (12 layers, 768 wide, the real 30,522
vocabulary), and a Qwen/Qwen3-Reranker-0.6B-shaped causal LM (28 layers, 1024 wide, grouped-query
attention; tests/fixtures/rerank/qwen3's small tokenizer and reranker chat template, so every pair
is the model card's prompt, cut at 512 tokens). Random weights cost what real ones cost; scores are
compared, not judged.

    python scripts/bench_rerank.py --out DIR --minilm models/all-MiniLM-L6-v2 --shared ../shared
        [--candidates 50] [--repeat 5] [--dtypes float32,int8] [--models minilm,bge,qwen3,splade]
"""
import argparse
import json
import os
import shutil
import statistics
import time

import numpy as np
import torch
from transformers import (AutoConfig, AutoModelForCausalLM, AutoModelForMaskedLM,
                          AutoModelForSequenceClassification)

import fathom
from sentence_transformers import CrossEncoder, SparseEncoder
from sentence_transformers.sparse_encoder.models import MLMTransformer, SpladePooling


def tokenizer_from(src, out, tokenizer_class="BertTokenizer"):
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if os.path.exists(os.path.join(src, name)):
            shutil.copy(os.path.join(src, name), os.path.join(out, name))
    path = os.path.join(out, "tokenizer_config.json")
    config = json.load(open(path)) if os.path.exists(path) else {}
    if tokenizer_class:
        config["tokenizer_class"] = tokenizer_class
    config["model_max_length"] = 512
    json.dump(config, open(path, "w"))


def make_cross_encoder(out, base_config, tokenizer_dir, tokenizer_class, **sizes):
    if os.path.exists(os.path.join(out, "reference.done")):
        return out
    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(base_config)
    for k, v in sizes.items():
        setattr(config, k, v)
    config.num_labels = 1
    config.architectures = [type(AutoModelForSequenceClassification.from_config(config)).__name__]
    model = AutoModelForSequenceClassification.from_config(config).eval()
    model.save_pretrained(out)
    tokenizer_from(tokenizer_dir, out, tokenizer_class)
    open(os.path.join(out, "reference.done"), "w").close()
    return out


def make_causal_reranker(out, fixture, **sizes):
    """A causal-LM reranker of `fixture`'s tokenizer and chat template at the given sizes."""
    if os.path.exists(os.path.join(out, "reference.done")):
        return out
    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(fixture)
    for k, v in sizes.items():
        setattr(config, k, v)
    model = AutoModelForCausalLM.from_config(config).eval()
    model.save_pretrained(out)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        shutil.copy(os.path.join(fixture, name), os.path.join(out, name))
    open(os.path.join(out, "reference.done"), "w").close()
    return out


def make_splade(out, base_config, tokenizer_dir, **sizes):
    if os.path.exists(os.path.join(out, "reference.done")):
        return out
    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(base_config)
    for k, v in sizes.items():
        setattr(config, k, v)
    config.architectures = ["BertForMaskedLM"]
    raw = out + "-raw"
    AutoModelForMaskedLM.from_config(config).eval().save_pretrained(raw)
    tokenizer_from(tokenizer_dir, raw)
    se = SparseEncoder(modules=[MLMTransformer(raw), SpladePooling("max")], device="cpu")
    se.save(out)
    open(os.path.join(out, "reference.done"), "w").close()
    return out


def best_of(repeat, fn):
    times = []
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times), result


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--minilm", default="models/all-MiniLM-L6-v2")
    p.add_argument("--shared", default="../shared")
    p.add_argument("--candidates", type=int, default=50)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--dtypes", default="float32,int8")
    p.add_argument("--models", default="minilm,bge,qwen3,splade")
    args = p.parse_args()
    chosen = set(args.models.split(","))
    os.makedirs(args.out, exist_ok=True)
    tiny = os.path.join(args.shared, "fixtures", "tiny")
    docs = []
    for line in open(os.path.join(args.shared, "data", "scifact", "corpus.jsonl")):
        d = json.loads(line)
        docs.append(d["title"] + " " + d["text"])
        if len(docs) == args.candidates:
            break
    query = "What causes antibiotic resistance in bacteria?"
    results = {"threads": torch.get_num_threads(), "candidates": len(docs), "models": {}}

    models = {}
    if "minilm" in chosen:
        models["ms-marco-MiniLM-L6-shaped"] = make_cross_encoder(
            os.path.join(args.out, "minilm-ce"), args.minilm, args.minilm, "BertTokenizer")
    if "bge" in chosen:
        models["bge-reranker-base-shaped"] = make_cross_encoder(
            os.path.join(args.out, "xlmr-ce"), os.path.join(tiny, "xlm-roberta"),
            os.path.join(tiny, "xlm-roberta"), None,
            hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
            num_attention_heads=12, max_position_embeddings=514)
    if "qwen3" in chosen:
        fixture = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "rerank",
                               "qwen3")
        models["qwen3-reranker-0.6b-shaped"] = make_causal_reranker(
            os.path.join(args.out, "qwen3-reranker"), fixture,
            hidden_size=1024, intermediate_size=3072, num_hidden_layers=28,
            num_attention_heads=16, num_key_value_heads=8, head_dim=128,
            max_position_embeddings=40960, tie_word_embeddings=True,
            layer_types=["full_attention"] * 28, max_window_layers=28)
    for name, folder in models.items():
        st = CrossEncoder(folder, device="cpu", max_length=512)
        pairs = [(query, d) for d in docs]
        if st.config.architectures[0].endswith("ForCausalLM"):
            tokens = int(st[0].preprocess(pairs)["attention_mask"].sum())
        else:
            tokens = sum(len(st.tokenizer(query, d, truncation=True, max_length=512)["input_ids"])
                         for d in docs)
        st.predict(pairs[:2])
        st_best, st_median, st_scores = best_of(args.repeat, lambda: st.predict(pairs, batch_size=32))
        row = {"tokens": tokens, "sentence_transformers_s": st_best, "st_median_s": st_median}
        for dtype in args.dtypes.split(","):
            try:
                fm = fathom.CrossEncoder(folder, dtype=dtype, max_length=512)
            except RuntimeError as e:
                row[dtype] = {"unavailable": str(e)}
                continue
            fm.predict(pairs[:2])
            best, median, scores = best_of(args.repeat, lambda: fm.predict(pairs))
            row[dtype] = {
                "fathom_s": best, "median_s": median, "speedup": st_best / best,
                "max_abs_diff": float(np.abs(np.asarray(scores) - np.asarray(st_scores)).max()),
                "same_top10": list(np.argsort(-scores)[:10]) == list(np.argsort(-st_scores)[:10]),
            }
        results["models"][name] = row
        print(json.dumps({name: row}), flush=True)

    if "splade" not in chosen:
        print(json.dumps(results))
        return
    splade = make_splade(os.path.join(args.out, "splade"), args.minilm, args.minilm,
                         hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                         num_attention_heads=12)
    st = SparseEncoder(splade, device="cpu")
    st.encode(docs[:2])
    st_best, st_median, st_vectors = best_of(
        args.repeat, lambda: st.encode(docs, batch_size=32, convert_to_tensor=True).to_dense().numpy())
    row = {"sentence_transformers_s": st_best, "st_median_s": st_median}
    for dtype in args.dtypes.split(","):
        fm = fathom.SparseEncoder(splade, dtype=dtype)
        fm.encode(docs[:2])
        best, median, vectors = best_of(args.repeat, lambda: fm.encode(docs))
        dot = (vectors * st_vectors).sum(1)
        cos = dot / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(st_vectors, axis=1))
        row[dtype] = {"fathom_s": best, "median_s": median, "speedup": st_best / best,
                      "max_abs_diff": float(np.abs(vectors - st_vectors).max()),
                      "min_cosine": float(cos.min())}
    results["models"]["splade-v3-shaped"] = row
    print(json.dumps({"splade-v3-shaped": row}), flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
