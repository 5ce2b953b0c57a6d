//! Fully connected layers: `x · wᵀ + b` with the activation applied in the same pass.

use rayon::prelude::*;

use super::few_rows::{linear_few_rows, FEW_ROWS};
use super::gemm::{sgemm, Mat};
use super::math::{gelu_erf, silu};
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
        if rows <= FEW_ROWS {
            return linear_few_rows(x, rows, k, w, n, beta, out);
        }
        if rows.div_ceil(block) < threads && n >= 2 * COLUMN_BLOCK {
            // Too few rows to give every thread a block (a short query): split the output
            // columns instead, each thread multiplying all rows by its slice of the weight.
            return linear_by_columns(x, rows, k, w, n, beta, out, threads);
        }
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

/// Column blocks are multiples of this (the micro-kernels' widths divide it).
const COLUMN_BLOCK: usize = 64;

/// `out += x · wᵀ` (or `=` when `beta` is 0) with the `n` output columns split across `threads`
/// tasks.
#[allow(clippy::too_many_arguments)]
fn linear_by_columns(
    x: &[f32],
    rows: usize,
    k: usize,
    w: &[f32],
    n: usize,
    beta: f32,
    out: &mut [f32],
    threads: usize,
) {
    let cols = n.div_ceil(threads).next_multiple_of(COLUMN_BLOCK);
    by_column_blocks(rows, n, cols, out, |j0, nb, dst| {
        sgemm(
            rows,
            nb,
            k,
            1.0,
            Mat::new(x, k),
            Mat::t(&w[j0 * k..(j0 + nb) * k], k),
            beta,
            dst,
            nb,
        );
    });
}

/// Runs `product(j0, nb, dst)` in parallel for blocks of `cols` output columns (`j0..j0 + nb`),
/// `dst` being that block of `out` (rows × n) copied into its own rows × nb buffer, and writes
/// the blocks back after: no two tasks ever hold the same output. For few rows, where the copies
/// are cheap and splitting the rows would leave threads idle.
pub(super) fn by_column_blocks(
    rows: usize,
    n: usize,
    cols: usize,
    out: &mut [f32],
    product: impl Fn(usize, usize, &mut [f32]) + Sync,
) {
    debug_assert_eq!(out.len(), rows * n);
    let starts: Vec<usize> = (0..n).step_by(cols.max(1)).collect();
    let blocks: Vec<Vec<f32>> = starts
        .par_iter()
        .map(|&j0| {
            let nb = cols.min(n - j0);
            let mut dst = Vec::with_capacity(rows * nb);
            for r in 0..rows {
                dst.extend_from_slice(&out[r * n + j0..r * n + j0 + nb]);
            }
            product(j0, nb, &mut dst);
            dst
        })
        .collect();
    for (&j0, dst) in starts.iter().zip(&blocks) {
        let nb = dst.len() / rows;
        for r in 0..rows {
            out[r * n + j0..r * n + j0 + nb].copy_from_slice(&dst[r * nb..(r + 1) * nb]);
        }
    }
}

/// The activation of a gated MLP's first half ([`gated`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateAct {
    /// Exact (erf) GELU: GeGLU, ModernBERT's.
    GeluErf,
    /// SiLU: SwiGLU, Qwen's and Llama's.
    Silu,
}

/// A gated MLP's middle: for `h` = rows × 2·`inter` (`input ‖ gate` per row, as one linear
/// gives them), `act(input) · gate`, rows × `inter`, in one pass over each row.
pub fn gated(h: &[f32], rows: usize, inter: usize, act: GateAct) -> Vec<f32> {
    assert_eq!(
        h.len(),
        rows * 2 * inter,
        "gated: input is not rows × 2·inter"
    );
    let mut out = vec![0f32; rows * inter];
    if inter == 0 {
        return out;
    }
    out.par_chunks_mut(inter * 16)
        .zip(h.par_chunks(2 * inter * 16))
        .for_each(|(out, h)| {
            for (o, row) in out.chunks_exact_mut(inter).zip(h.chunks_exact(2 * inter)) {
                let (input, gate) = row.split_at(inter);
                o.copy_from_slice(input);
                match act {
                    GateAct::GeluErf => gelu_erf(o),
                    GateAct::Silu => silu(o),
                }
                for (v, g) in o.iter_mut().zip(gate) {
                    *v *= g;
                }
            }
        });
    out
}

/// A rows × n buffer holding the bias (or zeros), `product` accumulated into it, then the
/// epilogue applied while the rows are still warm.
pub(super) fn with_bias_and_epilogue(
    rows: usize,
    n: usize,
    bias: Option<&[f32]>,
    epilogue: Epilogue,
    product: impl FnOnce(&mut [f32]),
) -> Vec<f32> {
    if let Some(b) = bias {
        assert_eq!(b.len(), n, "linear: bias is not n long");
    }
    // Filled by all threads: tens of MB for a batch's feed-forward, which one thread alone
    // used to fill while the others waited.
    // SAFETY: the chunks of n cover all rows × n values (n > 0; with n = 0 there are none), and
    // each is written in full, with the bias or zeros.
    let mut out = unsafe {
        super::amx::written_by(rows, n, |out| {
            out.par_chunks_mut(n.max(1))
                .with_min_len(64)
                .for_each(|row| match bias {
                    Some(b) => row.iter_mut().zip(b).for_each(|(o, &b)| {
                        o.write(b);
                    }),
                    None => row.iter_mut().for_each(|o| {
                        o.write(0.0);
                    }),
                })
        })
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
        check_gelu(&got, &want);
    }

    #[test]
    fn gated_is_the_activation_of_the_input_half_times_the_gate_half() {
        // Inputs up to ±8 (sigmoid's tails) and rows past one task's 16.
        let (rows, inter) = (37, 19);
        let h: Vec<f32> = pseudo_random(rows * 2 * inter, 8)
            .iter()
            .map(|v| v * 8.0)
            .collect();
        let gelu = |x: f64| 0.5 * x * (1.0 + candle_core::cpu::erf::erf_f64(x / 2f64.sqrt()));
        let silu = |x: f64| x / (1.0 + (-x).exp());
        for (act, f) in [
            (GateAct::GeluErf, &gelu as &dyn Fn(f64) -> f64),
            (GateAct::Silu, &silu),
        ] {
            let got = gated(&h, rows, inter, act);
            for r in 0..rows {
                for c in 0..inter {
                    let (x, g) = (
                        h[r * 2 * inter + c] as f64,
                        h[r * 2 * inter + inter + c] as f64,
                    );
                    let want = f(x) * g;
                    let v = got[r * inter + c] as f64;
                    assert!(
                        (v - want).abs() < 1e-5 * want.abs().max(1.0),
                        "{act:?} [{r},{c}]: {v} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn few_rows_split_by_columns_match_naive() {
        // 20 rows (more than FEW_ROWS, fewer than a block) and 200 columns take the column
        // split on a pool of 2 threads (set up here so the test does not depend on the machine).
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let (rows, k, n) = (20, 40, 200);
        let x = pseudo_random(rows * k, 4);
        let w = pseudo_random(n * k, 5);
        let b = pseudo_random(n, 6);
        let want = naive_linear(&x, rows, k, &w, n, &b);
        let got = pool.install(|| linear(&x, rows, k, &w, n, Some(&b), Epilogue::None));
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5, "{g} vs {w}");
        }
        let zero = vec![0f32; n];
        let want = naive_linear(&x, rows, k, &w, n, &zero);
        let got = pool.install(|| linear(&x, rows, k, &w, n, None, Epilogue::None));
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5, "{g} vs {w}");
        }
        let got = pool.install(|| linear(&x, rows, k, &w, n, Some(&b), Epilogue::GeluErf));
        let want = naive_linear(&x, rows, k, &w, n, &b);
        check_gelu(&got, &want);
    }

    fn check_gelu(got: &[f32], want: &[f32]) {
        for (g, w) in got.iter().zip(want) {
            let w = *w as f64;
            let exact = 0.5 * w * (1.0 + candle_core::cpu::erf::erf_f64(w / 2f64.sqrt()));
            assert!((*g as f64 - exact).abs() < 1e-5, "{g} vs {exact}");
        }
    }
}
