//! Fully connected layers: `x · wᵀ + b` with the activation applied in the same pass.

use rayon::prelude::*;

use super::bf16::{self, PackedWeight};
use super::gemm::{sgemm, Mat};
use super::math::gelu_erf;
use super::Epilogue;

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
    w: &PackedWeight,
    n: usize,
    bias: Option<&[f32]>,
    epilogue: Epilogue,
) -> Vec<f32> {
    with_bias_and_epilogue(rows, n, bias, epilogue, |out| {
        bf16::matmul_bt(x, rows, w, out)
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

#[cfg(test)]
mod tests {
    use super::super::pseudo_random;
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
}
