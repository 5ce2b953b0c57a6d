"""fathom.CrossEncoder and fathom.SparseEncoder against sentence-transformers' own output on the tiny
random-weight fixtures in tests/fixtures (scripts/make_rerank_fixtures.py)."""

import json

import numpy as np
import pytest

import fathom
from conftest import REPO_ROOT

RERANK = REPO_ROOT / "tests" / "fixtures" / "rerank"
SPARSE = REPO_ROOT / "tests" / "fixtures" / "sparse" / "bert"


def pairs_reference(name):
    lines = (RERANK / name / "reference.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines[1:]]
    assert len(rows) > 50
    return rows


@pytest.mark.parametrize(
    "name", ["bert", "xlm-roberta", "modernbert", "distilbert", "qwen3", "qwen3-seq-cls"]
)
def test_predict_equals_cross_encoder_predict(name):
    rows = pairs_reference(name)
    model = fathom.CrossEncoder(str(RERANK / name))
    pairs = [(r["query"], r["document"]) for r in rows]
    scores = model.predict(pairs)
    assert scores.dtype == np.float32 and scores.shape == (len(pairs),)
    np.testing.assert_allclose(scores, [r["score"] for r in rows], atol=1e-4)
    # One pair gives a float; activation_fn=Identity gives the logits.
    single = model.predict(pairs[0])
    assert isinstance(single, float) and abs(single - rows[0]["score"]) <= 1e-4

    class Identity:  # what torch.nn.Identity() is called
        pass

    logits = model.predict(pairs, activation_fn=Identity())
    np.testing.assert_allclose(logits, [r["logits"] for r in rows], atol=1e-4)


def test_several_labels_and_softmax():
    rows = pairs_reference("bert-3labels")
    model = fathom.CrossEncoder(str(RERANK / "bert-3labels"))
    assert model.num_labels == 3
    pairs = [(r["query"], r["document"]) for r in rows]
    scores = model.predict(pairs)
    assert scores.shape == (len(pairs), 3)
    np.testing.assert_allclose(scores, [r["score"] for r in rows], atol=1e-4)
    soft = model.predict(pairs, apply_softmax=True)
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, atol=1e-5)


def test_rank_orders_documents_by_score():
    rows = pairs_reference("bert")
    query = rows[0]["query"]
    docs = [r["document"] for r in rows if r["query"] == query][:6]
    want = [r["score"] for r in rows if r["query"] == query][:6]
    model = fathom.CrossEncoder(str(RERANK / "bert"))
    ranked = model.rank(query, docs, top_k=3, return_documents=True)
    assert [r["corpus_id"] for r in ranked] == list(np.argsort(want)[::-1][:3])
    for r in ranked:
        assert abs(r["score"] - want[r["corpus_id"]]) <= 1e-4
        assert r["text"] == docs[r["corpus_id"]]


def test_bad_inputs_are_clear_errors():
    model = fathom.CrossEncoder(str(RERANK / "bert"))
    with pytest.raises(TypeError, match="pairs"):
        model.predict([("only one",)])
    with pytest.raises(ValueError, match="PyTorch"):
        model.predict([("a", "b")], convert_to_tensor=True)
    with pytest.raises(ValueError, match="embedder"):
        fathom.CrossEncoder(str(REPO_ROOT / "models" / "all-MiniLM-L6-v2"))


def test_sparse_encoder_equals_sentence_transformers():
    lines = (SPARSE / "reference.jsonl").read_text().splitlines()
    header, rows = json.loads(lines[0]), [json.loads(line) for line in lines[1:]]
    model = fathom.SparseEncoder(str(SPARSE))
    assert model.get_sentence_embedding_dimension() == header["vocab_size"]
    got = model.encode([r["text"] for r in rows])
    assert got.shape == (len(rows), header["vocab_size"])
    want = np.zeros_like(got)
    for i, r in enumerate(rows):
        want[i, r["indices"]] = r["values"]
    np.testing.assert_allclose(got, want, atol=1e-4)
    top = model.decode(got[0], top_k=3)
    assert len(top) == 3 and top[0][1] >= top[1][1] >= top[2][1] > 0
