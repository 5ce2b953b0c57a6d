//! CPU kernels for the hot path, on plain `f32` slices.
//!
//! Why these exist (see `shared/notes/cpu-profile.md`): on CPU, stock candle spends twice as long
//! around the big matrix products as in them — an erf GELU that does not vectorize, a generic
//! softmax, separate mask and scale passes over padded L×L scores, and small batched attention
//! matmuls. Here:
//! - [`linear`] multiplies with `gemm` straight into a buffer pre-filled with the bias and applies
//!   the activation in the same pass while the rows are still in cache;
//! - [`gelu_erf`] uses a rational erf approximation (max error ~1e-7, far inside the fidelity
//!   tolerances) that the compiler vectorizes, compiled for AVX-512, AVX2 and baseline x86-64 and
//!   picked at run time;
//! - [`varlen_attention`] works on packed sequences (no padding at all): per sequence and head one
//!   Q·Kᵀ gemm with the 1/√d scale folded in, one softmax pass with a vectorized exp, one P·V gemm
//!   written straight into the output columns of that head.
//!
//! `unsafe` is confined to the calls into `gemm` (raw pointers and strides) and to handing each
//! parallel task its own disjoint columns of the output; each block says why it is sound.
#![allow(unsafe_code)]

use multiversion::multiversion;
use rayon::prelude::*;

#[cfg(feature = "openblas")]
mod blas {
    //! The two OpenBLAS entry points used; linked by build.rs.
    use std::ffi::c_int;

    pub const ROW_MAJOR: c_int = 101;
    pub const NO_TRANS: c_int = 111;
    pub const TRANS: c_int = 112;

    extern "C" {
        pub fn cblas_sgemm(
            layout: c_int,
            trans_a: c_int,
            trans_b: c_int,
            m: c_int,
            n: c_int,
            k: c_int,
            alpha: f32,
            a: *const f32,
            lda: c_int,
            b: *const f32,
            ldb: c_int,
            beta: f32,
            c: *mut f32,
            ldc: c_int,
        );
        pub fn openblas_set_num_threads(n: c_int);
    }

    /// OpenBLAS runs single-threaded inside our rayon tasks: one thread pool, not two competing
    /// for the same cores.
    pub fn init() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        // SAFETY: a plain setter with no pointers, called once before any sgemm.
        ONCE.call_once(|| unsafe { openblas_set_num_threads(1) });
    }
}

/// A row-major matrix operand: `data[row * ld + col]`, or its transpose when `trans`.
#[derive(Clone, Copy)]
struct Mat<'a> {
    data: &'a [f32],
    ld: usize,
    trans: bool,
}

impl<'a> Mat<'a> {
    fn new(data: &'a [f32], ld: usize) -> Self {
        Self {
            data,
            ld,
            trans: false,
        }
    }

    fn t(data: &'a [f32], ld: usize) -> Self {
        Self {
            data,
            ld,
            trans: true,
        }
    }

    /// Highest index element (r, c) of the operand with `rows × cols` reads, plus one.
    fn reach(&self, rows: usize, cols: usize) -> usize {
        let (r, c) = if self.trans {
            (cols, rows)
        } else {
            (rows, cols)
        };
        (r - 1) * self.ld + c
    }
}

/// `c = alpha · a·b + beta · c` for an m×k `a`, a k×n `b` and an m×n row-major `c` with leading
/// dimension `ldc`, on the calling thread. OpenBLAS with the `openblas` feature, else `gemm`.
#[allow(clippy::too_many_arguments)]
fn sgemm(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: Mat,
    b: Mat,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
) {
    assert!(m == 0 || c.len() >= (m - 1) * ldc + n);
    // SAFETY: `c` is an exclusive slice holding every element the product writes.
    unsafe { sgemm_raw(m, n, k, alpha, a, b, beta, c.as_mut_ptr(), ldc) }
}

/// [`sgemm`] into a raw destination.
///
/// # Safety
/// `c` must be valid for reads and writes of the m×n block at row stride `ldc`, and no other
/// thread may access that block during the call.
#[allow(clippy::too_many_arguments)]
unsafe fn sgemm_raw(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: Mat,
    b: Mat,
    beta: f32,
    c: *mut f32,
    ldc: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(k > 0 && a.data.len() >= a.reach(m, k) && b.data.len() >= b.reach(k, n) && ldc >= n);
    #[cfg(feature = "openblas")]
    {
        blas::init();
        let op = |t: bool| if t { blas::TRANS } else { blas::NO_TRANS };
        // SAFETY: the asserts above bound every element OpenBLAS reads (a, b); the caller
        // guarantees the block it writes (c).
        unsafe {
            blas::cblas_sgemm(
                blas::ROW_MAJOR,
                op(a.trans),
                op(b.trans),
                m as i32,
                n as i32,
                k as i32,
                alpha,
                a.data.as_ptr(),
                a.ld as i32,
                b.data.as_ptr(),
                b.ld as i32,
                beta,
                c,
                ldc as i32,
            );
        }
    }
    #[cfg(not(feature = "openblas"))]
    {
        // gemm computes dst = alpha·dst + beta·lhs·rhs with explicit (column, row) strides.
        let strides = |m: &Mat| {
            if m.trans {
                (m.ld as isize, 1)
            } else {
                (1, m.ld as isize)
            }
        };
        let (a_cs, a_rs) = strides(&a);
        let (b_cs, b_rs) = strides(&b);
        // SAFETY: the asserts above bound every element gemm reads (a, b); the caller guarantees
        // the block it writes (c).
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                c,
                1,
                ldc as isize,
                beta != 0.0,
                a.data.as_ptr(),
                a_cs,
                a_rs,
                b.data.as_ptr(),
                b_cs,
                b_rs,
                beta,
                alpha,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    }
}

/// Activation applied in the epilogue of [`linear`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Epilogue {
    None,
    GeluErf,
}

/// `x · wᵀ + b` for row-major `x` (`rows × k`) and `w` (`n × k`, PyTorch's layout), then the
/// epilogue. Returns `rows × n`, row-major.
pub fn linear(
    x: &[f32],
    rows: usize,
    k: usize,
    w: &[f32],
    n: usize,
    bias: Option<&[f32]>,
    epilogue: Epilogue,
) -> Vec<f32> {
    assert_eq!(x.len(), rows * k, "linear: input is not rows × k");
    assert_eq!(w.len(), n * k, "linear: weight is not n × k");
    with_bias_and_epilogue(rows, n, bias, epilogue, |out| {
        // Rows split across the rayon threads; each block is one single-threaded product, so
        // only one thread pool ever runs.
        let threads = rayon::current_num_threads().max(1);
        let block = rows.div_ceil(threads).max(64);
        let beta = if bias.is_some() { 1.0 } else { 0.0 };
        out.par_chunks_mut(block * n)
            .zip(x.par_chunks(block * k))
            .for_each(|(dst, src)| {
                sgemm(
                    src.len() / k,
                    n,
                    k,
                    1.0,
                    Mat::new(src, k),
                    Mat::t(w, k),
                    beta,
                    dst,
                    n,
                );
            });
    })
}

/// [`linear`] with the weight packed for the bf16 kernels (reduced precision).
pub fn linear_bf16(
    x: &[f32],
    rows: usize,
    w: &crate::kernels_bf16::PackedWeight,
    n: usize,
    bias: Option<&[f32]>,
    epilogue: Epilogue,
) -> Vec<f32> {
    with_bias_and_epilogue(rows, n, bias, epilogue, |out| {
        crate::kernels_bf16::matmul_bt(x, rows, w, out)
    })
}

/// A rows × n buffer holding the bias (or zeros), `product` accumulated into it, then the
/// epilogue applied while the rows are still warm.
fn with_bias_and_epilogue(
    rows: usize,
    n: usize,
    bias: Option<&[f32]>,
    epilogue: Epilogue,
    product: impl FnOnce(&mut [f32]),
) -> Vec<f32> {
    let mut out = match bias {
        Some(b) => {
            assert_eq!(b.len(), n, "linear: bias is not n long");
            let mut out = Vec::with_capacity(rows * n);
            for _ in 0..rows {
                out.extend_from_slice(b);
            }
            out
        }
        None => vec![0f32; rows * n],
    };
    if rows > 0 && n > 0 {
        product(&mut out);
    }
    match epilogue {
        Epilogue::None => {}
        Epilogue::GeluErf => {
            out.par_chunks_mut(16 * 1024).for_each(gelu_erf);
        }
    }
    out
}

/// erf(x) for f32 as a rational function of x (odd numerator, even denominator); inputs are
/// clamped to ±4, past which erf is ±1 in single precision.
#[inline(always)]
fn erf_rational(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2 * -2.726_142_3e-10 + 2.770_681_4e-8;
    p = x2 * p + -2.101_024e-6;
    p = x2 * p + -5.692_506_4e-5;
    p = x2 * p + -7.349_906_3e-4;
    p = x2 * p + -2.954_6e-3;
    p = x2 * p + -1.609_603_3e-2;
    p *= x;
    let mut q = x2 * -1.456_607_2e-5 + -2.133_740_6e-4;
    q = x2 * q + -1.682_827e-3;
    q = x2 * q + -7.373_329_3e-3;
    q = x2 * q + -1.426_474e-2;
    p / q
}

/// Exact (erf) GELU in place: x · ½ · (1 + erf(x / √2)).
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl+avx2+fma",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
pub fn gelu_erf(xs: &mut [f32]) {
    for v in xs.iter_mut() {
        let x = *v;
        *v = 0.5 * x * (1.0 + erf_rational(x * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// e^x for f32 (Cephes' polynomial after range reduction), ~1 ulp, written so that it vectorizes:
/// round-to-nearest by the 1.5·2²³ trick and 2ⁿ by building the exponent bits.
#[inline(always)]
fn exp_approx(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23
    let n = (x * std::f32::consts::LOG2_E + MAGIC) - MAGIC;
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_2e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    let bits = ((n as i32 + 127) as u32) << 23;
    e * f32::from_bits(bits)
}

/// Sum of a slice with 16 independent accumulators: float addition is not reassociated by the
/// compiler, so a plain `.sum()` stays scalar; 16 lanes vectorize.
#[inline(always)]
fn sum_lanes(xs: &[f32]) -> f32 {
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
fn max_lanes(xs: &[f32]) -> f32 {
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

/// Softmax of one row in place (the scale is already folded into the row by the caller).
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl+avx2+fma",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
fn softmax_row(row: &mut [f32]) {
    let max = max_lanes(row);
    for v in row.iter_mut() {
        *v = exp_approx(*v - max);
    }
    let inv = 1.0 / sum_lanes(row);
    for v in row.iter_mut() {
        *v *= inv;
    }
}

/// A raw output pointer that parallel tasks share; each writes only its own (rows, columns).
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);

impl SharedOut {
    /// A method (not a field access) so closures capture the whole `Send` wrapper.
    fn ptr(self) -> *mut f32 {
        self.0
    }
}
// SAFETY: tasks write disjoint regions (see `varlen_attention`), and the buffer outlives them.
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

/// Scaled dot-product attention over packed sequences.
///
/// `qkv` is `tokens × 3·hidden` (Q, K, V side by side, heads contiguous inside each), `seq_lens`
/// the length of each packed sequence in order. Each sequence attends only to itself, so there is
/// no padding and no mask; `causal` restricts token i to tokens ≤ i (decoders). Returns
/// `tokens × hidden`.
pub fn varlen_attention(
    qkv: &[f32],
    seq_lens: &[usize],
    num_heads: usize,
    head_dim: usize,
    causal: bool,
) -> Vec<f32> {
    let hidden = num_heads * head_dim;
    let tokens: usize = seq_lens.iter().sum();
    assert_eq!(
        qkv.len(),
        tokens * 3 * hidden,
        "attention: qkv is not tokens × 3·hidden"
    );
    let mut out = vec![0f32; tokens * hidden];
    let starts: Vec<usize> = seq_lens
        .iter()
        .scan(0, |acc, &len| {
            let start = *acc;
            *acc += len;
            Some(start)
        })
        .collect();
    let tasks: Vec<(usize, usize, usize)> = seq_lens
        .iter()
        .zip(&starts)
        .filter(|(len, _)| **len > 0)
        .flat_map(|(&len, &start)| (0..num_heads).map(move |h| (start, len, h)))
        .collect();
    let scale = 1.0 / (head_dim as f32).sqrt();
    let row = 3 * hidden;
    let shared = SharedOut(out.as_mut_ptr());
    tasks
        .into_par_iter()
        .for_each_init(Vec::new, |scores, (start, len, h)| {
            scores.clear();
            scores.resize(len * len, 0.0);
            let q = &qkv[start * row + h * head_dim..];
            let k = &qkv[start * row + hidden + h * head_dim..];
            let v = &qkv[start * row + 2 * hidden + h * head_dim..];
            sgemm(
                len,
                len,
                head_dim,
                scale,
                Mat::new(q, row),
                Mat::t(k, row),
                0.0,
                scores,
                len,
            );
            for (i, r) in scores.chunks_exact_mut(len).enumerate() {
                if causal {
                    let (visible, future) = r.split_at_mut(i + 1);
                    softmax_row(visible);
                    future.fill(0.0);
                } else {
                    softmax_row(r);
                }
            }
            // SAFETY: this task writes rows start..start+len, columns h*d..(h+1)*d of `out` (row
            // stride `hidden`): in bounds since start+len <= tokens, and no other task writes them.
            unsafe {
                sgemm_raw(
                    len,
                    head_dim,
                    len,
                    1.0,
                    Mat::new(scores, len),
                    Mat::new(v, row),
                    0.0,
                    shared.ptr().add(start * hidden + h * head_dim),
                    hidden,
                );
            }
        });
    out
}

/// `x + residual`, then layer norm over each row of width `gamma.len()`, in place in `x`.
pub fn add_layer_norm(x: &mut [f32], residual: &[f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let width = gamma.len();
    assert_eq!(x.len(), residual.len());
    assert_eq!(beta.len(), width);
    x.par_chunks_mut(width * 64)
        .zip(residual.par_chunks(width * 64))
        .for_each(|(xs, rs)| add_layer_norm_rows(xs, rs, gamma, beta, eps));
}

#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl+avx2+fma",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
fn add_layer_norm_rows(xs: &mut [f32], rs: &[f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let width = gamma.len();
    let mut centered = vec![0f32; width];
    for (x, r) in xs.chunks_exact_mut(width).zip(rs.chunks_exact(width)) {
        for (a, b) in x.iter_mut().zip(r) {
            *a += *b;
        }
        let mean = sum_lanes(x) / width as f32;
        for (c, a) in centered.iter_mut().zip(x.iter()) {
            let d = *a - mean;
            *c = d * d;
        }
        let inv = 1.0 / (sum_lanes(&centered) / width as f32 + eps).sqrt();
        for ((a, g), b) in x.iter_mut().zip(gamma).zip(beta) {
            *a = (*a - mean) * inv * *g + *b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_linear(x: &[f32], rows: usize, k: usize, w: &[f32], n: usize, b: &[f32]) -> Vec<f32> {
        let mut out = vec![0f32; rows * n];
        for r in 0..rows {
            for j in 0..n {
                let mut acc = b[j] as f64;
                for i in 0..k {
                    acc += x[r * k + i] as f64 * w[j * k + i] as f64;
                }
                out[r * n + j] = acc as f32;
            }
        }
        out
    }

    fn pseudo_random(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn erf_matches_reference_everywhere() {
        let mut worst = 0f64;
        for i in -60_000..=60_000 {
            let x = i as f32 * 1e-4;
            let want = candle_core::cpu::erf::erf_f64(x as f64);
            worst = worst.max((erf_rational(x) as f64 - want).abs());
        }
        assert!(worst < 5e-7, "max erf error {worst}");
    }

    #[test]
    fn exp_matches_std() {
        let mut worst = 0f32;
        for i in -8_000..=800 {
            let x = i as f32 * 0.01;
            let want = x.exp();
            worst = worst.max(((exp_approx(x) - want) / want).abs());
        }
        assert!(worst < 3e-7, "max relative exp error {worst}");
    }

    #[test]
    fn linear_with_bias_and_gelu_matches_naive() {
        let (rows, k, n) = (37, 24, 19);
        let x = pseudo_random(rows * k, 1);
        let w = pseudo_random(n * k, 2);
        let b = pseudo_random(n, 3);
        let want = naive_linear(&x, rows, k, &w, n, &b);
        let got = linear(&x, rows, k, &w, n, Some(&b), Epilogue::None);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5, "{g} vs {w}");
        }
        let got = linear(&x, rows, k, &w, n, Some(&b), Epilogue::GeluErf);
        for (g, w) in got.iter().zip(&want) {
            let w = *w as f64;
            let exact = 0.5 * w * (1.0 + candle_core::cpu::erf::erf_f64(w / 2f64.sqrt()));
            assert!((*g as f64 - exact).abs() < 1e-5, "{g} vs {exact}");
        }
    }

    fn naive_attention(
        qkv: &[f32],
        lens: &[usize],
        heads: usize,
        d: usize,
        causal: bool,
    ) -> Vec<f32> {
        let hidden = heads * d;
        let row = 3 * hidden;
        let tokens: usize = lens.iter().sum();
        let mut out = vec![0f32; tokens * hidden];
        let mut start = 0;
        for &len in lens {
            for h in 0..heads {
                for i in 0..len {
                    let limit = if causal { i + 1 } else { len };
                    let q = |c: usize| qkv[(start + i) * row + h * d + c] as f64;
                    let scores: Vec<f64> = (0..limit)
                        .map(|j| {
                            (0..d)
                                .map(|c| q(c) * qkv[(start + j) * row + hidden + h * d + c] as f64)
                                .sum::<f64>()
                                / (d as f64).sqrt()
                        })
                        .collect();
                    let max = scores.iter().cloned().fold(f64::MIN, f64::max);
                    let exps: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                    let sum: f64 = exps.iter().sum();
                    for c in 0..d {
                        let v: f64 = (0..limit)
                            .map(|j| {
                                exps[j] / sum
                                    * qkv[(start + j) * row + 2 * hidden + h * d + c] as f64
                            })
                            .sum();
                        out[(start + i) * hidden + h * d + c] = v as f32;
                    }
                }
            }
            start += len;
        }
        out
    }

    #[test]
    fn varlen_attention_matches_naive_per_sequence() {
        let (heads, d) = (3, 8);
        let lens = [5, 1, 12, 7];
        let tokens: usize = lens.iter().sum();
        let qkv = pseudo_random(tokens * 3 * heads * d, 7);
        for causal in [false, true] {
            let want = naive_attention(&qkv, &lens, heads, d, causal);
            let got = varlen_attention(&qkv, &lens, heads, d, causal);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-5, "causal={causal}: {g} vs {w}");
            }
        }
    }

    #[test]
    fn add_layer_norm_matches_naive() {
        let width = 10;
        let mut x = pseudo_random(width * 3, 11);
        let r = pseudo_random(width * 3, 12);
        let g = pseudo_random(width, 13);
        let b = pseudo_random(width, 14);
        let mut want = Vec::new();
        for row in 0..3 {
            let v: Vec<f64> = (0..width)
                .map(|i| x[row * width + i] as f64 + r[row * width + i] as f64)
                .collect();
            let mean = v.iter().sum::<f64>() / width as f64;
            let var = v.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / width as f64;
            for i in 0..width {
                want.push((v[i] - mean) / (var + 1e-12).sqrt() * g[i] as f64 + b[i] as f64);
            }
        }
        add_layer_norm(&mut x, &r, &g, &b, 1e-12);
        for (g, w) in x.iter().zip(&want) {
            assert!((*g as f64 - w).abs() < 1e-5, "{g} vs {w}");
        }
    }
}
