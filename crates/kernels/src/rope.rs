//! Rotary position embeddings (the `rotate_half` form of Llama, Qwen and ModernBERT) over packed
//! rows, in one pass.

use multiversion::multiversion;
use rayon::prelude::*;

/// Rotates columns `column..column + heads·head_dim` of the packed `rows × stride` matrix `x`
/// (Q or K inside a fused QKV projection, say), each sequence of `seq_lens` from position 0, and
/// returns them as a contiguous `rows × heads·head_dim` matrix. `cos` and `sin` are
/// `positions × head_dim/2` tables. For each head, with `h` = head_dim/2:
/// `out[i] = x[i]·cos[i] − x[i + h]·sin[i]` and `out[i + h] = x[i + h]·cos[i] + x[i]·sin[i]`.
/// With `head_norm` (`gamma` of head_dim, `eps`), each head is RMS-normalized first (Qwen3's
/// q_norm and k_norm).
///
/// Replaces a column copy, two gathers of the tables by position and candle's rotation (and a
/// norm pass): one read of the columns, one write of the result.
#[allow(clippy::too_many_arguments)]
pub fn rope(
    x: &[f32],
    stride: usize,
    column: usize,
    (heads, head_dim): (usize, usize),
    seq_lens: &[usize],
    (cos, sin): (&[f32], &[f32]),
    head_norm: Option<(&[f32], f32)>,
) -> Vec<f32> {
    let width = heads * head_dim;
    let half = head_dim / 2;
    assert!(head_dim % 2 == 0, "rope: head_dim is odd");
    assert!(column + width <= stride, "rope: columns past the row");
    let rows: usize = seq_lens.iter().sum();
    assert_eq!(x.len(), rows * stride, "rope: x is not rows × stride");
    assert_eq!(cos.len(), sin.len(), "rope: cos and sin differ");
    if let Some((gamma, _)) = head_norm {
        assert_eq!(
            gamma.len(),
            head_dim,
            "rope: the head norm is not head_dim wide"
        );
    }
    let longest = seq_lens.iter().copied().max().unwrap_or(0);
    assert!(
        longest * half <= cos.len(),
        "rope: a sequence is longer than the tables"
    );
    let positions: Vec<usize> = seq_lens.iter().flat_map(|&len| 0..len).collect();
    let mut out = vec![0f32; rows * width];
    if width == 0 {
        return out;
    }
    out.par_chunks_mut(width * 32)
        .enumerate()
        .for_each(|(chunk, out)| {
            for (r, out) in out.chunks_exact_mut(width).enumerate() {
                let row = chunk * 32 + r;
                let src = &x[row * stride + column..row * stride + column + width];
                let at = positions[row] * half;
                let tables = (&cos[at..at + half], &sin[at..at + half]);
                match head_norm {
                    Some((gamma, eps)) => rotate_row_normed(src, out, tables, gamma, eps),
                    None => rotate_row(src, out, tables),
                }
            }
        });
    out
}

/// One row's heads (`src`, `out`: heads × head_dim) rotated by one position's tables.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl+avx2+fma",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
fn rotate_row(src: &[f32], out: &mut [f32], (cos, sin): (&[f32], &[f32])) {
    let half = cos.len();
    for (o, s) in out
        .chunks_exact_mut(2 * half)
        .zip(src.chunks_exact(2 * half))
    {
        let (lo, hi) = s.split_at(half);
        let (out_lo, out_hi) = o.split_at_mut(half);
        for ((((ol, oh), (l, h)), c), s) in out_lo
            .iter_mut()
            .zip(out_hi.iter_mut())
            .zip(lo.iter().zip(hi))
            .zip(cos)
            .zip(sin)
        {
            *ol = l * c - h * s;
            *oh = h * c + l * s;
        }
    }
}

/// [`rotate_row`] after an RMS norm of each head (`gamma`, `eps`).
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl+avx2+fma",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
fn rotate_row_normed(
    src: &[f32],
    out: &mut [f32],
    (cos, sin): (&[f32], &[f32]),
    gamma: &[f32],
    eps: f32,
) {
    let half = cos.len();
    let (g_lo, g_hi) = gamma.split_at(half);
    for (o, s) in out
        .chunks_exact_mut(2 * half)
        .zip(src.chunks_exact(2 * half))
    {
        let squares: f32 = s.iter().map(|v| v * v).sum();
        let inv = 1.0 / (squares / (2 * half) as f32 + eps).sqrt();
        let (lo, hi) = s.split_at(half);
        let (out_lo, out_hi) = o.split_at_mut(half);
        for ((((ol, oh), (l, h)), (c, s)), (gl, gh)) in out_lo
            .iter_mut()
            .zip(out_hi.iter_mut())
            .zip(lo.iter().zip(hi))
            .zip(cos.iter().zip(sin))
            .zip(g_lo.iter().zip(g_hi))
        {
            let (l, h) = (l * inv * gl, h * inv * gh);
            *ol = l * c - h * s;
            *oh = h * c + l * s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::pseudo_random;
    use super::*;

    #[test]
    fn rope_matches_the_definition_on_a_column_slice_of_packed_sequences() {
        let (heads, head_dim) = (3, 8);
        let half = head_dim / 2;
        let width = heads * head_dim;
        let stride = 3 * width + 5;
        let seq_lens = [5, 1, 40];
        let rows: usize = seq_lens.iter().sum();
        let x = pseudo_random(rows * stride, 5);
        let positions = 64;
        let angle =
            |p: usize, i: usize| p as f64 / 10_000f64.powf(2.0 * i as f64 / head_dim as f64);
        let cos: Vec<f32> = (0..positions * half)
            .map(|a| angle(a / half, a % half).cos() as f32)
            .collect();
        let sin: Vec<f32> = (0..positions * half)
            .map(|a| angle(a / half, a % half).sin() as f32)
            .collect();
        let gamma = pseudo_random(head_dim, 9);
        let eps = 1e-6;
        for (column, normed) in [
            (0, false),
            (width, false),
            (stride - width, false),
            (width, true),
        ] {
            let head_norm = normed.then_some((&gamma[..], eps));
            let out = rope(
                &x,
                stride,
                column,
                (heads, head_dim),
                &seq_lens,
                (&cos, &sin),
                head_norm,
            );
            assert_eq!(out.len(), rows * width);
            let mut row = 0;
            for &len in &seq_lens {
                for p in 0..len {
                    for h in 0..heads {
                        for i in 0..head_dim {
                            let raw = |j: usize| x[row * stride + column + h * head_dim + j] as f64;
                            let inv = if normed {
                                let ms = (0..head_dim).map(|j| raw(j).powi(2)).sum::<f64>()
                                    / head_dim as f64;
                                1.0 / (ms + eps as f64).sqrt()
                            } else {
                                1.0
                            };
                            let v = |j: usize| {
                                raw(j) * inv * if normed { gamma[j] as f64 } else { 1.0 }
                            };
                            let (c, s) = (angle(p, i % half).cos(), angle(p, i % half).sin());
                            let want = if i < half {
                                v(i) * c - v(i + half) * s
                            } else {
                                v(i) * c + v(i - half) * s
                            };
                            let got = out[row * width + h * head_dim + i] as f64;
                            assert!(
                                (got - want).abs() < 1e-5,
                                "row {row} head {h} {i}: {got} vs {want}"
                            );
                        }
                    }
                    row += 1;
                }
            }
        }
    }
}
