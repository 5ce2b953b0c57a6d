"""Where the fixtures and the real model are, and helpers shared by the tests.

A missing fixture or model is a failure, never a skip: run scripts/fetch-model.sh (or
scripts/setup.sh) first, and set FATHOM_SHARED when shared/ is not beside the repository.
"""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import fathom

REPO_ROOT = Path(__file__).resolve().parents[3]
SHARED = Path(os.environ.get("FATHOM_SHARED", REPO_ROOT.parent / "shared"))
FIXTURES = SHARED / "fixtures"
MINILM = REPO_ROOT / "models" / "all-MiniLM-L6-v2"
TINY_MODELS = ["bert", "bert-cls", "distilbert", "xlm-roberta", "mpnet", "modernbert", "qwen3"]


def fixtures() -> Path:
    assert FIXTURES.is_dir(), f"fixtures not found at {FIXTURES} (set FATHOM_SHARED)"
    return FIXTURES


def minilm_dir() -> Path:
    assert (MINILM / "model.safetensors").is_file(), f"{MINILM} is missing: run scripts/fetch-model.sh first"
    return MINILM


def read_reference(path: Path):
    texts, embeddings = [], []
    with open(path) as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                texts.append(row["text"])
                embeddings.append(row["embedding"])
    assert texts, f"{path} has no references"
    return texts, np.asarray(embeddings, dtype=np.float32)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    return (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-30)


def assert_close(label, texts, got, want, normalized, min_cos=0.9999):
    """Every vector within cosine `min_cos` of its reference; normalized ones also within 1e-4."""
    assert got.shape == want.shape, f"{label}: shape {got.shape} vs {want.shape}"
    cos = cosines(got, want)
    worst = int(cos.argmin())
    assert cos.min() >= min_cos, f"{label}: text {worst} {texts[worst]!r}: cosine {cos.min()} < {min_cos}"
    if normalized:
        diff = np.abs(got.astype(np.float64) - want).max(axis=1)
        worst = int(diff.argmax())
        assert diff.max() <= 1e-4, f"{label}: text {worst} {texts[worst]!r}: max abs diff {diff.max()}"


def overlay(base: Path, variant: Path, dest: Path) -> Path:
    """The base model folder with the variant's files copied over it (as the Rust tests do)."""
    shutil.copytree(base, dest)
    shutil.copytree(variant, dest, dirs_exist_ok=True)
    return dest


def variant_names():
    names = sorted(p.name for p in (fixtures() / "variants").iterdir() if p.is_dir())
    assert len(names) >= 8, f"expected the 8 variants, found {names}"
    return names


@pytest.fixture(scope="session")
def model():
    return fathom.SentenceTransformer(str(minilm_dir()))


@pytest.fixture(scope="session")
def reference():
    return read_reference(fixtures() / "reference" / "all-MiniLM-L6-v2.jsonl")


@pytest.fixture(scope="session")
def variant_dir(tmp_path_factory):
    """A function: variant name -> an overlaid model folder (made once per name)."""
    made = {}

    def make(name):
        if name not in made:
            dest = tmp_path_factory.mktemp("variant") / name
            made[name] = overlay(minilm_dir(), fixtures() / "variants" / name, dest)
        return made[name]

    return make
