"""Static-embedding models through fathom.SentenceTransformer, against the libraries that define
them on the fixtures in tests/fixtures/static (scripts/make_static_fixtures.py): Model2Vec's
`StaticModel.encode` and sentence-transformers' `StaticEmbedding`."""

import json

import numpy as np
import pytest

import fathom
from conftest import REPO_ROOT

STATIC = REPO_ROOT / "tests" / "fixtures" / "static"


@pytest.mark.parametrize("name", ["model2vec", "st-static"])
def test_encode_equals_the_reference(name):
    lines = (STATIC / name / "reference.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines[1:]]
    model = fathom.SentenceTransformer(str(STATIC / name))
    got = model.encode([r["text"] for r in rows])
    want = np.array([r["embedding"] for r in rows], dtype=np.float32)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert model.get_sentence_embedding_dimension() == want.shape[1]
