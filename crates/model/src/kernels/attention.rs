//! Scaled dot-product attention over packed sequences: one Q·Kᵀ gemm, one softmax pass and one
//! P·V gemm per sequence and head, in parallel.

use multiversion::multiversion;
use rayon::prelude::*;

use super::gemm::{sgemm, sgemm_raw, Mat};
use super::math::{dot, exp_approx, max_lanes, sum_lanes};

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

/// Sequences up to this many tokens skip the matrix library: their dot products are computed
/// directly (for a short query, one sgemm call's overhead is more than its arithmetic).
const SHORT: usize = 32;

/// Attention with less arithmetic than this (multiply-adds over all sequences and heads) runs on
/// the calling thread: waking the other threads costs more than the work (a short query).
const SEQUENTIAL_WORK: usize = 1 << 20;

/// The visible scores of one query row: its bias (if any) added, then softmax in place.
#[inline(always)]
fn bias_and_softmax(row: &mut [f32], bias: Option<&[f32]>) {
    if let Some(b) = bias {
        for (s, &bb) in row.iter_mut().zip(b) {
            *s += bb;
        }
    }
    softmax_row(row);
}

/// One head of one short sequence, computed directly: `out` (len × d, row-major) gets
/// softmax(scale · q·kᵀ + bias, masked) · v. `scores` is scratch.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl+avx2+fma",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
#[allow(clippy::too_many_arguments)]
fn short_head<'a>(
    (q, k, v): (Heads<'a>, Heads<'a>, Heads<'a>),
    len: usize,
    d: usize,
    scale: f32,
    mask: AttentionMask,
    bias: Option<&[f32]>,
    scores: &mut [f32],
    out: &mut [f32],
) {
    for i in 0..len {
        let (lo, hi) = mask.visible(i, len);
        let qi = &q.data[i * q.ld..i * q.ld + d];
        let row = &mut scores[lo..hi];
        for (j, s) in (lo..hi).zip(row.iter_mut()) {
            *s = dot(qi, &k.data[j * k.ld..j * k.ld + d]) * scale;
        }
        bias_and_softmax(row, bias.map(|b| &b[i * len + lo..i * len + hi]));
        let oi = &mut out[i * d..(i + 1) * d];
        oi.fill(0.0);
        for (j, &p) in (lo..hi).zip(row.iter()) {
            for (o, &x) in oi.iter_mut().zip(&v.data[j * v.ld..j * v.ld + d]) {
                *o += p * x;
            }
        }
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

// SAFETY: the only `SharedOut` is built in `attention` over its `out` buffer, which is
// neither read, moved nor dropped until the parallel loop that uses the pointer has returned, and
// every task writes through it only its own block (rows of one sequence, columns of one head), so
// moving it to another thread cannot create overlapping writes.
unsafe impl Send for SharedOut {}
// SAFETY: shared access only copies the pointer out; the writes it leads to are disjoint per task
// (see the `Send` impl above).
unsafe impl Sync for SharedOut {}

/// Which keys a token may attend to within its own sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttentionMask {
    /// Every token of the sequence (encoders).
    Full,
    /// Itself and earlier tokens (decoders).
    Causal,
    /// Tokens at most this many positions away on either side (ModernBERT's local layers).
    Window(usize),
}

impl AttentionMask {
    /// The keys `lo..hi` that query `i` of a `len`-token sequence sees.
    fn visible(self, i: usize, len: usize) -> (usize, usize) {
        match self {
            Self::Full => (0, len),
            Self::Causal => (0, i + 1),
            Self::Window(w) => (i.saturating_sub(w), (i + w + 1).min(len)),
        }
    }
}

/// One operand of [`attention`]: `data[token * ld + head * head_dim + c]`.
#[derive(Clone, Copy)]
pub struct Heads<'a> {
    pub data: &'a [f32],
    pub ld: usize,
    pub heads: usize,
}

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
    let part = |i: usize| Heads {
        data: &qkv[i * hidden..],
        ld: 3 * hidden,
        heads: num_heads,
    };
    let mask = if causal {
        AttentionMask::Causal
    } else {
        AttentionMask::Full
    };
    attention(part(0), part(1), part(2), seq_lens, head_dim, mask, None)
}

/// [`varlen_attention`] in general: separate Q, K and V (`k.heads` may divide `q.heads`:
/// grouped-query attention, query head h reading key/value head h / group), any
/// [`AttentionMask`], and an optional additive bias per sequence (`bias[s]` is
/// `heads × len × len` for sequence `s`: MPNet's relative positions). Returns
/// `tokens × q.heads·head_dim`.
pub fn attention(
    q: Heads<'_>,
    k: Heads<'_>,
    v: Heads<'_>,
    seq_lens: &[usize],
    head_dim: usize,
    mask: AttentionMask,
    bias: Option<&[&[f32]]>,
) -> Vec<f32> {
    let heads = q.heads;
    assert!(
        k.heads > 0 && v.heads == k.heads && heads.is_multiple_of(k.heads),
        "attention: {heads} query heads over {} key / {} value heads",
        k.heads,
        v.heads
    );
    let group = heads / k.heads;
    let hidden = heads * head_dim;
    let tokens: usize = seq_lens.iter().sum();
    for (name, m) in [("q", &q), ("k", &k), ("v", &v)] {
        assert!(
            m.ld >= m.heads * head_dim
                && (tokens == 0 || (tokens - 1) * m.ld + m.heads * head_dim <= m.data.len()),
            "attention: {name} is not tokens × heads·head_dim (row stride {})",
            m.ld
        );
    }
    let mut out = vec![0f32; tokens * hidden];
    let starts = super::seq_starts(seq_lens);
    let tasks: Vec<(usize, usize, usize, usize)> = seq_lens
        .iter()
        .zip(&starts)
        .enumerate()
        .filter(|(_, (len, _))| **len > 0)
        .flat_map(|(s, (&len, &start))| (0..heads).map(move |h| (s, start, len, h)))
        .collect();
    let scale = 1.0 / (head_dim as f32).sqrt();
    let shared = SharedOut(out.as_mut_ptr());
    let task = |scores: &mut Vec<f32>, (s, start, len, h): (usize, usize, usize, usize)| {
        let qh = &q.data[start * q.ld + h * head_dim..];
        let kh = &k.data[start * k.ld + (h / group) * head_dim..];
        let vh = &v.data[start * v.ld + (h / group) * head_dim..];
        let bias = bias.map(|b| {
            let b = b[s];
            assert_eq!(
                b.len(),
                heads * len * len,
                "attention: bias is not heads × len × len"
            );
            &b[h * len * len..(h + 1) * len * len]
        });
        if len <= SHORT {
            scores.clear();
            scores.resize(len + len * head_dim, 0.0);
            let (row, head_out) = scores.split_at_mut(len);
            // One head each: the slices start at this head's first column.
            let one = |data, ld| Heads { data, ld, heads: 1 };
            short_head(
                (one(qh, q.ld), one(kh, k.ld), one(vh, v.ld)),
                len,
                head_dim,
                scale,
                mask,
                bias,
                row,
                head_out,
            );
            for (i, o) in head_out.chunks_exact(head_dim).enumerate() {
                // SAFETY: writes row start + i (< start + len <= tokens), columns
                // h·d..(h+1)·d (h < heads) of `out` (tokens × hidden), from this task's own
                // scratch (another allocation, so no overlap). Exclusive: each (sequence, head)
                // pair is exactly one task, and nothing else touches `out` until the tasks end.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        o.as_ptr(),
                        shared.ptr().add((start + i) * hidden + h * head_dim),
                        head_dim,
                    );
                }
            }
            return;
        }
        scores.clear();
        scores.resize(len * len, 0.0);
        sgemm(
            len,
            len,
            head_dim,
            scale,
            Mat::new(qh, q.ld),
            Mat::t(kh, k.ld),
            0.0,
            scores,
            len,
        );
        for (i, r) in scores.chunks_exact_mut(len).enumerate() {
            let (lo, hi) = mask.visible(i, len);
            r[..lo].fill(0.0);
            bias_and_softmax(&mut r[lo..hi], bias.map(|b| &b[i * len + lo..i * len + hi]));
            r[hi..].fill(0.0);
        }
        // SAFETY: this task writes rows start..start+len, columns h·d..(h+1)·d of `out` (row
        // stride `hidden`). In bounds: start+len <= tokens (the starts are prefix sums of
        // `seq_lens`, whose total is `tokens`, and `out` is tokens × hidden) and h < heads.
        // Exclusive: each (sequence, head) pair is exactly one task, so no other task writes
        // these elements, and nothing else touches `out` until the tasks end.
        unsafe {
            sgemm_raw(
                len,
                head_dim,
                len,
                1.0,
                Mat::new(scores, len),
                Mat::new(vh, v.ld),
                0.0,
                shared.ptr().add(start * hidden + h * head_dim),
                hidden,
            );
        }
    };
    let work: usize = seq_lens.iter().map(|&len| len * len).sum::<usize>() * heads * head_dim;
    if work < SEQUENTIAL_WORK {
        let mut scores = Vec::new();
        tasks.into_iter().for_each(|t| task(&mut scores, t));
    } else {
        tasks.into_par_iter().for_each_init(Vec::new, task);
    }
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
        // Short sequences (direct path) and longer ones (sgemm path), with enough work to go parallel.
        let lens = [5, 1, 12, 7, SHORT + 1, 300];
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

    /// Naive reference for [`attention`]: grouped heads, any mask, optional bias.
    #[allow(clippy::too_many_arguments)]
    fn naive_general(
        q: &[f32],
        k: &[f32],
        v: &[f32],
        lens: &[usize],
        (heads, kv_heads, d): (usize, usize, usize),
        mask: AttentionMask,
        bias: Option<&[Vec<f32>]>,
    ) -> Vec<f32> {
        let group = heads / kv_heads;
        let tokens: usize = lens.iter().sum();
        let (qw, kw) = (heads * d, kv_heads * d);
        let mut out = vec![0f32; tokens * qw];
        let mut start = 0;
        for (s, &len) in lens.iter().enumerate() {
            for h in 0..heads {
                let kh = h / group;
                for i in 0..len {
                    let (lo, hi) = mask.visible(i, len);
                    let scores: Vec<f64> = (lo..hi)
                        .map(|j| {
                            let dot: f64 = (0..d)
                                .map(|c| {
                                    q[(start + i) * qw + h * d + c] as f64
                                        * k[(start + j) * kw + kh * d + c] as f64
                                })
                                .sum();
                            let b = bias.map_or(0.0, |b| b[s][(h * len + i) * len + j] as f64);
                            dot / (d as f64).sqrt() + b
                        })
                        .collect();
                    let max = scores.iter().cloned().fold(f64::MIN, f64::max);
                    let exps: Vec<f64> = scores.iter().map(|x| (x - max).exp()).collect();
                    let sum: f64 = exps.iter().sum();
                    for c in 0..d {
                        let val: f64 = (lo..hi)
                            .zip(&exps)
                            .map(|(j, e)| e / sum * v[(start + j) * kw + kh * d + c] as f64)
                            .sum();
                        out[(start + i) * qw + h * d + c] = val as f32;
                    }
                }
            }
            start += len;
        }
        out
    }

    #[test]
    fn grouped_heads_windows_causal_and_bias_match_naive() {
        let (heads, kv_heads, d) = (4, 2, 8);
        let lens = [6, 1, 13, 9, SHORT + 1, 300];
        let tokens: usize = lens.iter().sum();
        let q = pseudo_random(tokens * heads * d, 11);
        let k = pseudo_random(tokens * kv_heads * d, 12);
        let v = pseudo_random(tokens * kv_heads * d, 13);
        let biases: Vec<Vec<f32>> = lens
            .iter()
            .map(|&len| pseudo_random(heads * len * len, len as u32))
            .collect();
        let bias_of: Vec<&[f32]> = biases.iter().map(Vec::as_slice).collect();
        for mask in [
            AttentionMask::Full,
            AttentionMask::Causal,
            AttentionMask::Window(2),
            AttentionMask::Window(0),
        ] {
            for with_bias in [false, true] {
                let want = naive_general(
                    &q,
                    &k,
                    &v,
                    &lens,
                    (heads, kv_heads, d),
                    mask,
                    with_bias.then_some(biases.as_slice()),
                );
                let got = attention(
                    Heads {
                        data: &q,
                        ld: heads * d,
                        heads,
                    },
                    Heads {
                        data: &k,
                        ld: kv_heads * d,
                        heads: kv_heads,
                    },
                    Heads {
                        data: &v,
                        ld: kv_heads * d,
                        heads: kv_heads,
                    },
                    &lens,
                    d,
                    mask,
                    with_bias.then_some(bias_of.as_slice()),
                );
                for (g, w) in got.iter().zip(&want) {
                    assert!(
                        (g - w).abs() < 1e-5,
                        "{mask:?} bias={with_bias}: {g} vs {w}"
                    );
                }
            }
        }
    }
}
