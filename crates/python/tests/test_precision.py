"""Reduced precision: int8 (the constructor's dtype) and bfloat16 (fathom's CPU path: matrix
products in bf16, AVX512-BF16), each close to float32."""

import numpy as np
import pytest

import fathom
from conftest import cosines, minilm_dir


def cpu_has_bf16():
    with open("/proc/cpuinfo") as f:
        return "avx512_bf16" in f.read()


def test_bfloat16_stays_within_cosine_0_999_or_says_why_not(model, reference):
    texts, want = reference
    if not cpu_has_bf16():
        # fathom-model's own test does the same: on such a CPU bf16 is an error that says why.
        with pytest.raises(RuntimeError, match="AVX512-BF16"):
            model.encode(texts, precision="bfloat16")
        assert model.encode(texts).shape == (len(texts), 384)
        return
    got = model.encode(texts, precision="bfloat16")
    assert got.dtype == np.float32 and got.shape == (len(texts), 384)
    assert cosines(got, want).min() >= 0.999
    assert cosines(got, model.encode(texts)).min() >= 0.999
    # The bf16 model is kept: a second call gives the same vectors.
    np.testing.assert_array_equal(model.encode(texts, precision="bfloat16"), got)
    # A single text and a list agree in bf16 too.
    assert cosines(model.encode(texts[0], precision="bfloat16")[None], got[:1]).min() >= 0.9999


@pytest.fixture(scope="module")
def int8_model():
    return fathom.SentenceTransformer(str(minilm_dir()), dtype="int8")


def test_int8_dtype_stays_within_cosine_0_99_and_is_not_float32(int8_model, model, reference):
    texts, want = reference
    assert int8_model.dtype == "int8" and model.dtype == "float32"
    assert "dtype='int8'" in repr(int8_model) or 'dtype="int8"' in repr(int8_model)
    got = int8_model.encode(texts)
    assert got.dtype == np.float32 and got.shape == (len(texts), 384)
    # The same bound as fathom-model's int8 test against sentence-transformers' vectors.
    assert cosines(got, want).min() >= 0.99
    f32 = model.encode(texts)
    # Really int8: not the float32 vectors (those match the references to 0.9999).
    assert not np.array_equal(got, f32)
    assert cosines(got, f32).min() < 0.99999
    # Each text alone gives exactly its row of the batch (activations are quantized per token).
    for i in (0, len(texts) - 1):
        np.testing.assert_array_equal(int8_model.encode(texts[i]), got[i])


def test_int8_model_encodes_float32_on_request_and_keeps_its_dtype(int8_model, model, reference):
    texts, _ = reference
    # precision="float32" on an int8 model: the float32 model's vectors exactly.
    np.testing.assert_array_equal(int8_model.encode(texts, precision="float32"), model.encode(texts))
    # Changing max_seq_length reloads the model at the same dtype.
    m = fathom.SentenceTransformer(str(minilm_dir()), dtype="int8")
    before = m.encode(texts[:3])
    m.max_seq_length = 128
    assert m.dtype == "int8" and m.max_seq_length == 128
    after = m.encode(texts[:3])
    assert cosines(after, model.encode(texts[:3])).min() >= 0.99
    assert not np.array_equal(after, model.encode(texts[:3]))
    assert before.shape == after.shape


def test_unknown_dtype_is_a_value_error_naming_the_choices():
    with pytest.raises(ValueError, match="dtype 'int4' is not supported.*'int8'"):
        fathom.SentenceTransformer(str(minilm_dir()), dtype="int4")
