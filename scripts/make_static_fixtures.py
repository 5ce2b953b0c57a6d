"""Tiny random-weight static-embedding models, with the vectors of the libraries that define them
as the fidelity reference: tests/fixtures/static/.

- `model2vec`: a Model2Vec model (minishlab/potion-base-8M's format) saved by model2vec's own
  `StaticModel.save_pretrained` (model.safetensors with `embeddings`, config.json, tokenizer.json,
  and the modules.json that makes sentence-transformers load it too), vocabulary-quantized
  (`mapping`) with per-token `weights` as model2vec's quantized models are; the reference is `StaticModel.encode` (which cuts
  texts at `max_length` tokens and drops unknown tokens) and, separately, sentence-transformers'
  `SentenceTransformer.encode` of the same folder (which does neither).
- `st-static`: a sentence-transformers `StaticEmbedding` model
  (sentence-transformers/static-retrieval-mrl-en-v1's format: `0_StaticEmbedding/` with
  `embedding.weight`), saved by `SentenceTransformer.save`; the reference is its `encode`.

Both take the tiny BERT fixture's WordPiece tokenizer (`$FATHOM_SHARED/fixtures/tiny/bert`), whose
small vocabulary makes unknown tokens and long token sequences easy to reach.

    python scripts/make_static_fixtures.py [--shared ../shared] [--out tests/fixtures/static]

Needs numpy, torch, sentence-transformers and model2vec.
"""
import argparse
import json
import os
import shutil

import model2vec
import numpy as np
import sentence_transformers
from model2vec import StaticModel
from sentence_transformers import SentenceTransformer
from sentence_transformers.models import Normalize, StaticEmbedding
from tokenizers import Tokenizer

EXTRA_TEXTS = [
    "",
    "   ",
    "emoji and symbols the vocabulary lacks: \U0001F600 \u2603 \u4e2d\u6587",
    # Far past model2vec's 512-token default once the small vocabulary splits it into pieces.
    "a long text about lifetimes and borrowing in rust " * 80,
]


def write_reference(path, texts, vectors, **header):
    with open(path, "w") as f:
        f.write(json.dumps(header) + "\n")
        for text, v in zip(texts, vectors):
            f.write(json.dumps({"text": text, "embedding": [float(x) for x in v]}) + "\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--shared", default=os.environ.get("FATHOM_SHARED", "../shared"))
    parser.add_argument("--out", default="tests/fixtures/static")
    args = parser.parse_args()
    texts = json.load(open(os.path.join(args.shared, "fixtures", "texts.json")))
    if texts and isinstance(texts[0], dict):
        texts = [t["text"] for t in texts]
    texts = texts + EXTRA_TEXTS
    tokenizer_path = os.path.join(args.shared, "fixtures", "tiny", "bert", "tokenizer.json")
    tokenizer = Tokenizer.from_file(tokenizer_path)
    tokenizer.no_truncation()
    tokenizer.no_padding()
    vocab = tokenizer.get_vocab_size()
    rng = np.random.default_rng(0)
    versions = {"model2vec": model2vec.__version__,
                "sentence_transformers": sentence_transformers.__version__}

    # model2vec, normalized, vocabulary-quantized (a token's row is `embeddings[mapping[id]]`)
    # with per-token weights.
    out = os.path.join(args.out, "model2vec")
    shutil.rmtree(out, ignore_errors=True)
    vectors = rng.normal(size=(200, 24)).astype(np.float32)
    mapping = rng.integers(0, 200, size=vocab).astype(np.int64)
    weights = rng.uniform(0.2, 2.0, size=vocab).astype(np.float32)
    model = StaticModel(vectors=vectors, tokenizer=tokenizer, normalize=True, weights=weights,
                        token_mapping=mapping)
    model.save_pretrained(out)
    for name in ("README.md",):
        if os.path.exists(os.path.join(out, name)):
            os.remove(os.path.join(out, name))
    model = StaticModel.from_pretrained(out)
    write_reference(os.path.join(out, "reference.jsonl"), texts, model.encode(texts),
                    versions=versions, library="model2vec", max_length=model.max_length)
    st = SentenceTransformer(out, device="cpu")
    write_reference(os.path.join(out, "reference-st.jsonl"), texts,
                    st.encode(texts, convert_to_numpy=True), versions=versions,
                    library="sentence-transformers")
    print("model2vec ->", out, "max_length", model.max_length)

    # sentence-transformers' StaticEmbedding, not normalized.
    out = os.path.join(args.out, "st-static")
    shutil.rmtree(out, ignore_errors=True)
    static = StaticEmbedding(tokenizer, embedding_weights=rng.normal(size=(vocab, 32)).astype(np.float32))
    SentenceTransformer(modules=[static], device="cpu").save(out)
    if os.path.exists(os.path.join(out, "README.md")):
        os.remove(os.path.join(out, "README.md"))
    st = SentenceTransformer(out, device="cpu")
    write_reference(os.path.join(out, "reference.jsonl"), texts,
                    st.encode(texts, convert_to_numpy=True), versions=versions,
                    library="sentence-transformers")
    print("st-static ->", out)


if __name__ == "__main__":
    main()
