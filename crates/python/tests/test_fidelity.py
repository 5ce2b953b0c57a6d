"""Fidelity against sentence-transformers: every reference in shared/fixtures, through the Python API."""

import json

import numpy as np
import pytest

import fathom
from conftest import TINY_MODELS, assert_close, fixtures, read_reference, variant_names


def test_all_minilm_l6_v2_matches_sentence_transformers(model, reference):
    texts, want = reference
    got = model.encode(texts)
    assert got.dtype == np.float32 and got.shape == (len(texts), 384)
    assert_close("all-MiniLM-L6-v2", texts, got, want, normalized=True)
    # One at a time gives the same vectors as the batch (packing must not leak between inputs).
    single = np.stack([model.encode(t) for t in texts])
    assert_close("all-MiniLM-L6-v2 one by one", texts, single, got, normalized=True)


@pytest.mark.parametrize("name", variant_names())
def test_every_variant_matches_its_reference(name, variant_dir):
    folder = variant_dir(name)
    texts, want = read_reference(folder / "reference.jsonl")
    kwargs = {}
    request = folder / "reference_request.json"
    if request.is_file():
        kwargs = {k: v for k, v in json.loads(request.read_text()).items() if k == "prompt_name"}
    model = fathom.SentenceTransformer(str(folder))
    got = model.encode(texts, **kwargs)
    normalized = (folder / "modules.json").is_file() and "Normalize" in (folder / "modules.json").read_text()
    assert_close(name, texts, got, want, normalized=normalized)


@pytest.mark.parametrize("name", TINY_MODELS)
def test_every_tiny_architecture_matches_its_reference(name):
    folder = fixtures() / "tiny" / name
    texts, want = read_reference(folder / "reference.jsonl")
    model = fathom.SentenceTransformer(str(folder))
    got = model.encode(texts)
    normalized = "Normalize" in (folder / "modules.json").read_text()
    assert_close(name, texts, got, want, normalized=normalized)


def test_setting_max_seq_length_matches_the_max_seq_16_variant(variant_dir):
    # max-seq-16 is the base model with max_seq_length 16 in its config; setting the property on
    # the base model must give the same vectors (sentence-transformers' `model.max_seq_length = 16`).
    texts, want = read_reference(variant_dir("max-seq-16") / "reference.jsonl")
    from conftest import minilm_dir

    model = fathom.SentenceTransformer(str(minilm_dir()))
    assert model.max_seq_length == 256
    model.max_seq_length = 16
    assert model.max_seq_length == 16
    assert model.tokenizer.model_max_length == 16
    assert_close("max_seq_length=16", texts, model.encode(texts), want, normalized=True)
