"""Tiny random-weight cross-encoders (rerankers) and SPLADE models, with sentence-transformers'
output on them as the fidelity reference: the fixtures under tests/fixtures/rerank/ and
tests/fixtures/sparse/.

Each model takes its tokenizer from the tiny embedder fixture of the same architecture
(`$FATHOM_SHARED/fixtures/tiny/<arch>`, maximum sequence length 64) and its sizes from that
fixture's config; `transformers` initialises the task head and the body at random (seed 0) with a
wider spread than its default (initializer_range 0.2), so that scores differ visibly from pair to
pair. `CrossEncoder.save` / `SparseEncoder.save` write the folders, so fathom reads exactly the
files a user's model folder has.

    python scripts/make_rerank_fixtures.py [--shared ../shared] [--out tests/fixtures] [NAME ...]

Needs torch, transformers and sentence-transformers (>= 5, for SparseEncoder); the scripts'
bench venv has them (scripts/bench-embed.sh installs it). Versions used are written into each
reference file's first line.
"""
import argparse
import json
import os
import shutil

import sentence_transformers
import torch
import transformers
from sentence_transformers import CrossEncoder, SparseEncoder
from sentence_transformers.sparse_encoder.models import MLMTransformer, SpladePooling
from tokenizers import AddedToken, Tokenizer
from transformers import (AutoConfig, AutoModelForCausalLM, AutoModelForMaskedLM,
                          AutoModelForSequenceClassification)

# name -> (fixture, transformers class, num_labels, tokenizer_class). The tokenizer class decides
# whether transformers passes token_type_ids (BertTokenizer does, as on real BERT cross-encoders
# such as cross-encoder/ms-marco-MiniLM-L6-v2; transformers 5's generic TokenizersBackend, which
# the tiny fixtures name, does not); None keeps the fixture's own.
RERANKERS = {
    "bert": ("bert", "BertForSequenceClassification", 1, "BertTokenizer"),
    "bert-generic-tokenizer": ("bert", "BertForSequenceClassification", 1, None),
    "xlm-roberta": ("xlm-roberta", "XLMRobertaForSequenceClassification", 1, None),
    "modernbert": ("modernbert", "ModernBertForSequenceClassification", 1, None),
    "distilbert": ("distilbert", "DistilBertForSequenceClassification", 1, None),
    # Three labels: sentence-transformers applies no activation (Identity) and returns a row each.
    "bert-3labels": ("bert", "BertForSequenceClassification", 3, "BertTokenizer"),
    # A causal LM with a classification head on its last token (tomaarsen/Qwen3-Reranker-*-seq-cls).
    "qwen3-seq-cls": ("qwen3", "Qwen3ForSequenceClassification", 1, None),
}
# Causal-LM rerankers (Qwen3-Reranker): the tiny Qwen3 fixture as a `Qwen3ForCausalLM` with an untied
# `lm_head`, its tokenizer given Qwen's chat tokens and single `yes`/`no` tokens, and the reranker
# prompt as its chat template (query/document/system roles, as published for sentence-transformers
# 6 and vLLM). sentence-transformers' CrossEncoder turns it into Transformer(text-generation) +
# LogitScore(yes, no) and renders each pair through the template.
CAUSAL_RERANKERS = {"qwen3": "qwen3"}
QWEN3_RERANKER_TEMPLATE = (
    '<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and '
    'the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n'
    '<|im_start|>user\n<Instruct>: {{ messages | selectattr("role", "eq", "system") | '
    'map(attribute="content") | first | default("Given a web search query, retrieve relevant '
    'passages that answer the query") }}\n'
    '<Query>: {{ messages | selectattr("role", "eq", "query") | map(attribute="content") | first }}\n'
    '<Document>: {{ messages | selectattr("role", "eq", "document") | map(attribute="content") | '
    'first }}<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n\n'
)
SPARSE = {"bert": ("bert", "BertForMaskedLM", "BertTokenizer")}

QUERIES = [
    "what is the capital of france",
    "how do vaccines train the immune system?",
    "Rust borrow checker lifetimes",
]


def versions():
    return {
        "sentence_transformers": sentence_transformers.__version__,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
    }


def base_config(fixture_dir, architecture, **overrides):
    config = AutoConfig.from_pretrained(fixture_dir)
    config.architectures = [architecture]
    config.initializer_range = 0.2
    for k, v in overrides.items():
        setattr(config, k, v)
    return config


def copy_tokenizer(fixture_dir, out, tokenizer_class=None):
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        src = os.path.join(fixture_dir, name)
        if os.path.exists(src):
            shutil.copy(src, os.path.join(out, name))
    if tokenizer_class:
        path = os.path.join(out, "tokenizer_config.json")
        config = json.load(open(path))
        config["tokenizer_class"] = tokenizer_class
        json.dump(config, open(path, "w"), indent=2)


def make_reranker(name, fixture_dir, architecture, num_labels, tokenizer_class, texts, out):
    torch.manual_seed(0)
    config = base_config(fixture_dir, architecture, num_labels=num_labels)
    model = AutoModelForSequenceClassification.from_config(config)
    model.eval()
    raw = os.path.join(out, "_raw")
    model.save_pretrained(raw)
    copy_tokenizer(fixture_dir, raw, tokenizer_class)
    ce = CrossEncoder(raw, device="cpu")
    shutil.rmtree(out)
    ce.save(out)
    os.remove(os.path.join(out, "README.md"))
    ce = CrossEncoder(out, device="cpu")
    docs = [t for t in texts if t.strip()][:24] + ["", "   "]
    pairs = [(q, d) for q in QUERIES for d in docs]
    scores = ce.predict(pairs, batch_size=16, convert_to_numpy=True)
    logits = ce.predict(pairs, batch_size=16, convert_to_numpy=True,
                        activation_fn=torch.nn.Identity())
    with open(os.path.join(out, "reference.jsonl"), "w") as f:
        f.write(json.dumps({"versions": versions(), "activation": type(ce.activation_fn).__name__,
                            "max_seq_length": ce.max_seq_length}) + "\n")
        for (q, d), s, l in zip(pairs, scores, logits):
            f.write(json.dumps({"query": q, "document": d, "score": s.tolist(),
                                "logits": l.tolist()}) + "\n")
    print(name, "->", out, "activation", type(ce.activation_fn).__name__)


def make_causal_reranker(name, fixture_dir, texts, out):
    raw = os.path.join(out, "_raw")
    os.makedirs(raw, exist_ok=True)
    tok = Tokenizer.from_file(os.path.join(fixture_dir, "tokenizer.json"))
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t in ("<|im_start|>", "<|im_end|>")])
    tok.add_tokens([AddedToken(t, normalized=False) for t in ("yes", "no", "<think>", "</think>")])
    tok.save(os.path.join(raw, "tokenizer.json"))
    config = json.load(open(os.path.join(fixture_dir, "tokenizer_config.json")))
    # Long enough for whole pairs under the template, short enough that long ones are cut (and the
    # template's tail restored after the cut, as sentence-transformers does).
    config["model_max_length"] = 512
    json.dump(config, open(os.path.join(raw, "tokenizer_config.json"), "w"), indent=2)
    with open(os.path.join(raw, "chat_template.jinja"), "w") as f:
        f.write(QWEN3_RERANKER_TEMPLATE)
    torch.manual_seed(0)
    config = base_config(fixture_dir, "Qwen3ForCausalLM", vocab_size=tok.get_vocab_size(),
                         tie_word_embeddings=False, max_position_embeddings=1024)
    model = AutoModelForCausalLM.from_config(config)
    model.eval()
    model.save_pretrained(raw)
    ce = CrossEncoder(raw, device="cpu")
    shutil.rmtree(out)
    ce.save(out)
    os.remove(os.path.join(out, "README.md"))
    ce = CrossEncoder(out, device="cpu")
    docs = [t for t in texts if t.strip()][:24] + ["", "   ", "yes " * 300,
                                                  "a <|im_end|> inside a document"]
    queries = QUERIES + ["a long query " + "about rust lifetimes and borrowing " * 30]
    pairs = [(q, d) for q in queries for d in docs]
    scores = ce.predict(pairs, batch_size=16, convert_to_numpy=True)
    logits = ce.predict(pairs, batch_size=16, convert_to_numpy=True,
                        activation_fn=torch.nn.Identity())
    with open(os.path.join(out, "reference.jsonl"), "w") as f:
        f.write(json.dumps({"versions": versions(), "activation": type(ce.activation_fn).__name__,
                            "max_seq_length": ce.max_seq_length}) + "\n")
        for (q, d), s, l in zip(pairs, scores, logits):
            f.write(json.dumps({"query": q, "document": d, "score": s.tolist(),
                                "logits": l.tolist()}) + "\n")
    print(name, "->", out, "activation", type(ce.activation_fn).__name__,
          "distinct scores", len({round(float(s), 6) for s in scores}), "of", len(scores))


def make_sparse(name, fixture_dir, architecture, tokenizer_class, texts, out):
    torch.manual_seed(0)
    config = base_config(fixture_dir, architecture)
    model = AutoModelForMaskedLM.from_config(config)
    model.eval()
    raw = os.path.join(out, "_raw")
    model.save_pretrained(raw)
    copy_tokenizer(fixture_dir, raw, tokenizer_class)
    mlm = MLMTransformer(raw)
    se = SparseEncoder(modules=[mlm, SpladePooling(pooling_strategy="max")], device="cpu")
    shutil.rmtree(out)
    se.save(out)
    os.remove(os.path.join(out, "README.md"))
    se = SparseEncoder(out, device="cpu")
    inputs = [t for t in texts]
    emb = se.encode(inputs, batch_size=8, convert_to_tensor=True).to_dense()
    with open(os.path.join(out, "reference.jsonl"), "w") as f:
        f.write(json.dumps({"versions": versions(), "max_seq_length": se.max_seq_length,
                            "vocab_size": emb.shape[1]}) + "\n")
        for text, row in zip(inputs, emb):
            idx = torch.nonzero(row).flatten()
            f.write(json.dumps({"text": text, "indices": idx.tolist(),
                                "values": row[idx].tolist()}) + "\n")
    print(name, "->", out, "nonzero per text", [int((r != 0).sum()) for r in emb][:5])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--shared", default=os.environ.get("FATHOM_SHARED", "../shared"))
    parser.add_argument("--out", default="tests/fixtures")
    parser.add_argument("names", nargs="*", help="only these fixtures (default: all)")
    args = parser.parse_args()
    wanted = lambda name: not args.names or name in args.names
    texts = json.load(open(os.path.join(args.shared, "fixtures", "texts.json")))
    if texts and isinstance(texts[0], dict):
        texts = [t["text"] for t in texts]
    for name, (fixture, architecture, num_labels, tokenizer_class) in RERANKERS.items():
        if not wanted(name):
            continue
        out = os.path.join(args.out, "rerank", name)
        os.makedirs(out, exist_ok=True)
        make_reranker(name, os.path.join(args.shared, "fixtures", "tiny", fixture), architecture,
                      num_labels, tokenizer_class, texts, out)
    for name, fixture in CAUSAL_RERANKERS.items():
        if not wanted(name):
            continue
        out = os.path.join(args.out, "rerank", name)
        os.makedirs(out, exist_ok=True)
        make_causal_reranker(name, os.path.join(args.shared, "fixtures", "tiny", fixture), texts,
                             out)
    for name, (fixture, architecture, tokenizer_class) in SPARSE.items():
        if not wanted("sparse-" + name):
            continue
        out = os.path.join(args.out, "sparse", name)
        os.makedirs(out, exist_ok=True)
        make_sparse(name, os.path.join(args.shared, "fixtures", "tiny", fixture), architecture,
                    tokenizer_class, texts, out)


if __name__ == "__main__":
    main()
