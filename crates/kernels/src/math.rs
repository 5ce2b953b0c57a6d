//! Scalar math written to vectorize: erf and GELU, exp, and lane-wise sum and max.

use multiversion::multiversion;

/// a · b + c, in one fused instruction where `FMA` says the caller's code is compiled for a
/// target with it (`target_cfg_f!(target_feature = "fma")` in a multiversioned function: the
/// compiler does not fuse a multiply and an add by itself), else as a multiply and an add:
/// `f32::mul_add` without the instruction is a library call, far slower than both.
#[inline(always)]
pub(super) fn mul_add<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// erf(x) for f32 as a rational function of x (odd numerator, even denominator); inputs are
/// clamped to ±4, past which erf is ±1 in single precision. `FMA`: as in [`mul_add`].
#[inline(always)]
fn erf_rational<const FMA: bool>(x: f32) -> f32 {
    let fma = mul_add::<FMA>;
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = fma(x2, -2.726_142_3e-10, 2.770_681_4e-8);
    p = fma(x2, p, -2.101_024e-6);
    p = fma(x2, p, -5.692_506_4e-5);
    p = fma(x2, p, -7.349_906_3e-4);
    p = fma(x2, p, -2.954_6e-3);
    p = fma(x2, p, -1.609_603_3e-2);
    p *= x;
    let mut q = fma(x2, -1.456_607_2e-5, -2.133_740_6e-4);
    q = fma(x2, q, -1.682_827e-3);
    q = fma(x2, q, -7.373_329_3e-3);
    q = fma(x2, q, -1.426_474e-2);
    p / q
}

/// Exact (erf) GELU in place: x · ½ · (1 + erf(x / √2)).
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl+avx2+fma",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
pub fn gelu_erf(xs: &mut [f32]) {
    const FMA: bool = multiversion::target::target_cfg_f!(target_feature = "fma");
    for v in xs.iter_mut() {
        let x = *v;
        *v = 0.5 * x * (1.0 + erf_rational::<FMA>(x * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// SiLU (swish) in place: x · σ(x) = x / (1 + e⁻ˣ).
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl+avx2+fma",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
pub fn silu(xs: &mut [f32]) {
    const FMA: bool = multiversion::target::target_cfg_f!(target_feature = "fma");
    for v in xs.iter_mut() {
        *v /= 1.0 + exp_approx::<FMA>(-*v);
    }
}

/// e^x for f32 (Cephes' polynomial after range reduction), ~1 ulp, written so that it vectorizes:
/// round-to-nearest by the 1.5·2²³ trick and 2ⁿ by building the exponent bits. `FMA`: as in
/// [`mul_add`].
#[inline(always)]
pub(super) fn exp_approx<const FMA: bool>(x: f32) -> f32 {
    let fma = mul_add::<FMA>;
    let x = x.clamp(-87.0, 88.0);
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23
    let shifted = fma(x, std::f32::consts::LOG2_E, MAGIC);
    let n = shifted - MAGIC;
    let r = fma(n, 2.121_944_4e-4, fma(n, -0.693_359_4, x));
    let mut p = fma(1.987_569_1e-4, r, 1.398_2e-3);
    p = fma(p, r, 8.333_452e-3);
    p = fma(p, r, 4.166_579_6e-2);
    p = fma(p, r, 1.666_666_5e-1);
    p = fma(p, r, 0.5);
    let e = fma(p * r, r, r) + 1.0;
    // `shifted`'s bits are MAGIC's plus n (|n| ≤ 127 < 2²²), so 2ⁿ's exponent field is those
    // bits minus MAGIC's plus the bias: integer lane arithmetic, where `n as i32` (a saturating
    // cast) would compile to one scalar conversion per element.
    let bits = shifted
        .to_bits()
        .wrapping_sub(MAGIC.to_bits())
        .wrapping_add(127)
        << 23;
    e * f32::from_bits(bits)
}

/// Dot product of two equal-length slices over 16 independent accumulators (so that it
/// vectorizes; see [`sum_lanes`]). `FMA`: as in [`mul_add`].
#[inline(always)]
pub(super) fn dot<const FMA: bool>(x: &[f32], w: &[f32]) -> f32 {
    const LANES: usize = 16;
    let k = w.len();
    let whole = k - k % LANES;
    let mut acc = [0f32; LANES];
    for (xc, wc) in x[..whole]
        .chunks_exact(LANES)
        .zip(w[..whole].chunks_exact(LANES))
    {
        for i in 0..LANES {
            acc[i] = mul_add::<FMA>(xc[i], wc[i], acc[i]);
        }
    }
    let tail: f32 = (whole..k).map(|i| x[i] * w[i]).sum();
    acc.iter().sum::<f32>() + tail
}

/// Sum of a slice with 16 independent accumulators: float addition is not reassociated by the
/// compiler, so a plain `.sum()` stays scalar; 16 lanes vectorize.
#[inline(always)]
pub(super) fn sum_lanes(xs: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let chunks = xs.chunks_exact(16);
    let rest: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for i in 0..16 {
            acc[i] += c[i];
        }
    }
    acc.iter().sum::<f32>() + rest
}

#[inline(always)]
pub(super) fn max_lanes(xs: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 16];
    let chunks = xs.chunks_exact(16);
    let rest = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
    for c in chunks {
        for i in 0..16 {
            acc[i] = if c[i] > acc[i] { c[i] } else { acc[i] };
        }
    }
    acc.iter().fold(rest, |m, &v| if v > m { v } else { m })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_reference_everywhere() {
        let mut worst = 0f64;
        for i in -60_000..=60_000 {
            let x = i as f32 * 1e-4;
            let want = candle_core::cpu::erf::erf_f64(x as f64);
            for got in [erf_rational::<false>(x), erf_rational::<true>(x)] {
                worst = worst.max((got as f64 - want).abs());
            }
        }
        assert!(worst < 5e-7, "max erf error {worst}");
    }

    #[test]
    fn exp_matches_std() {
        let mut worst = 0f32;
        // The whole unclamped range: 2ⁿ's exponent bits for n from -126 to 127.
        for i in -8_700..=8_800 {
            let x = i as f32 * 0.01;
            let want = x.exp();
            for got in [exp_approx::<false>(x), exp_approx::<true>(x)] {
                worst = worst.max(((got - want) / want).abs());
            }
        }
        assert!(worst < 3e-7, "max relative exp error {worst}");
    }
}
