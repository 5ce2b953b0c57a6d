//! Scaled dot-product attention over packed sequences: one Q·Kᵀ gemm, one softmax pass and one
//! P·V gemm per sequence and head, in parallel.

use multiversion::multiversion;
use rayon::prelude::*;

use super::gemm::{sgemm, sgemm_raw, Mat};
use super::math::{exp_approx, max_lanes, sum_lanes};

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

// SAFETY: the only `SharedOut` is built in `varlen_attention` over its `out` buffer, which is
// neither read, moved nor dropped until the parallel loop that uses the pointer has returned, and
// every task writes through it only its own block (rows of one sequence, columns of one head), so
// moving it to another thread cannot create overlapping writes.
unsafe impl Send for SharedOut {}
// SAFETY: shared access only copies the pointer out; the writes it leads to are disjoint per task
// (see the `Send` impl above).
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
            // SAFETY: this task writes rows start..start+len, columns h·d..(h+1)·d of `out` (row
            // stride `hidden`). In bounds: start+len <= tokens (the starts are prefix sums of
            // `seq_lens`, whose total is `tokens`, and `out` is tokens × hidden) and h < num_heads.
            // Exclusive: each (sequence, head) pair is exactly one task, so no other task writes
            // these elements, and nothing else touches `out` until the loop returns.
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

#[cfg(test)]
mod tests {
    use super::super::pseudo_random;
    use super::*;

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
}
