//! The residual add and layer norm after each attention and feed-forward block, in one pass.

use multiversion::multiversion;
use rayon::prelude::*;

use super::math::sum_lanes;

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
    use super::super::pseudo_random;
    use super::*;

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
