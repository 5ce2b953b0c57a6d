"""bfloat16: fathom's CPU path (matrix products in bf16, AVX512-BF16), close to float32."""

import numpy as np
import pytest

from conftest import cosines


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
