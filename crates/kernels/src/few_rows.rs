//! `x · wᵀ` for a handful of rows (a short query): dot products straight off the weight rows.
//!
//! A blocked sgemm packs its operands first: for 10 rows it copies the whole weight matrix
//! (MiniLM: 42 MB a forward pass) to multiply it a few times, and a short query spent 8 of its
//! 10 ms in the linears (`FATHOM_PROFILE=1`). Here each weight row (`w` is `n × k`, PyTorch's
//! layout, so a row is one output column) is read once, from memory, and dotted with up to
//! [`ROWS_AT_ONCE`] input rows held in cache; the output columns are split across the rayon
//! threads. The cost is the weights' bytes once, what the memory system gives.

use multiversion::multiversion;
use rayon::prelude::*;

use super::math::dot;

/// Up to this many rows take this path: beyond it sgemm's packing pays off (measured against
/// OpenBLAS on 2 cores: this path 1.3–2.5× faster at 4–9 rows, even at 16, behind from 24).
pub(super) const FEW_ROWS: usize = 16;

/// Input rows dotted with one weight row at a time (their accumulators stay in registers).
const ROWS_AT_ONCE: usize = 4;

/// Output columns a rayon task takes: enough to amortize the task, small enough to balance.
const COLUMNS_PER_TASK: usize = 64;

/// `out[r·n + j] = beta · out[r·n + j] + x[r] · w[j]` for `rows ≤ FEW_ROWS` (`beta` 0 or 1).
pub(super) fn linear_few_rows(
    x: &[f32],
    rows: usize,
    k: usize,
    w: &[f32],
    n: usize,
    beta: f32,
    out: &mut [f32],
) {
    debug_assert!(rows <= FEW_ROWS);
    debug_assert_eq!(x.len(), rows * k);
    debug_assert_eq!(w.len(), n * k);
    let starts: Vec<usize> = (0..n).step_by(COLUMNS_PER_TASK).collect();
    // Each task returns its columns' dot products (column-major, `nb × rows`); written back
    // after, so no two tasks ever hold the same output.
    let blocks: Vec<Vec<f32>> = starts
        .par_iter()
        .map(|&j0| {
            let nb = COLUMNS_PER_TASK.min(n - j0);
            let mut dots = vec![0f32; nb * rows];
            let block = &w[j0 * k..(j0 + nb) * k];
            #[cfg(target_arch = "x86_64")]
            if avx2::supported() {
                avx2::block_dots(x, rows, k, block, &mut dots);
                return dots;
            }
            block_dots(x, rows, k, block, &mut dots);
            dots
        })
        .collect();
    for (&j0, dots) in starts.iter().zip(&blocks) {
        for (jj, column) in dots.chunks_exact(rows).enumerate() {
            for (r, &d) in column.iter().enumerate() {
                let o = &mut out[r * n + j0 + jj];
                *o = beta * *o + d;
            }
        }
    }
}

/// `dots[jj·rows + r] = x[r] · w[jj]` for every weight row `jj` of the block `w`, in portable
/// code (CPUs without AVX2 and FMA; the compiler vectorizes one row at a time well, several
/// rows sharing loads badly, so one row at a time).
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl+avx2+fma",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
fn block_dots(x: &[f32], rows: usize, k: usize, w: &[f32], dots: &mut [f32]) {
    const FMA: bool = multiversion::target::target_cfg_f!(target_feature = "fma");
    for (wj, column) in w.chunks_exact(k).zip(dots.chunks_exact_mut(rows)) {
        for (xr, d) in x.chunks_exact(k).zip(column.iter_mut()) {
            *d = dot::<FMA>(xr, wj);
        }
    }
}

/// The AVX2 + FMA micro-kernel: tiles of up to 4 input rows × up to 8 weight rows, one
/// 8-lane accumulator per pair.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::ROWS_AT_ONCE;

    /// Whether this kernel runs here ([`crate::cpu::enabled`]).
    pub(super) fn supported() -> bool {
        crate::cpu::enabled().avx2
    }

    /// [`super::block_dots`] with AVX2 and FMA; call only where [`supported`] holds.
    pub(super) fn block_dots(x: &[f32], rows: usize, k: usize, w: &[f32], dots: &mut [f32]) {
        assert!(
            crate::cpu::detected().avx2,
            "avx2::block_dots on a CPU without AVX2/FMA"
        );
        assert_eq!(x.len(), rows * k);
        assert_eq!(w.len() % k.max(1), 0);
        assert_eq!(dots.len(), w.len() / k.max(1) * rows);
        if k == 0 {
            dots.fill(0.0);
            return;
        }
        // SAFETY: AVX2 and FMA are present (asserted above); the slice lengths the kernel
        // relies on are asserted above too.
        unsafe { block_dots_avx2(x, rows, k, w, dots) }
    }

    /// Most weight rows a tile takes at once (with one input row).
    const MAX_J: usize = 8;

    /// The loop of [`block_dots`] over blocks of rows and weight rows.
    ///
    /// # Safety
    /// The CPU runs AVX2 and FMA; `x` holds `rows · k` values, `w` whole rows of `k` (`k > 0`)
    /// and `dots` `rows` values per weight row (the checks [`block_dots`] makes).
    #[target_feature(enable = "avx2,fma")]
    unsafe fn block_dots_avx2(x: &[f32], rows: usize, k: usize, w: &[f32], dots: &mut [f32]) {
        let n = w.len() / k;
        let mut r0 = 0;
        while r0 < rows {
            let rs = ROWS_AT_ONCE.min(rows - r0);
            // Weight rows per tile for this many input rows: about 12 accumulators in the 16
            // vector registers, enough to hide the FMA latency.
            let step = match rs {
                4 => 3,
                3 => 4,
                2 => 6,
                _ => MAX_J,
            };
            let mut j = 0;
            while j < n {
                let js = if j + step <= n { step } else { 1 };
                let mut out = [[0f32; MAX_J]; ROWS_AT_ONCE];
                // SAFETY: rows r0..r0+rs lie in `x` (rows × k) and weight rows j..j+js in
                // `w` (n × k); the caller has AVX2 and FMA (this fn's target features).
                unsafe {
                    match (rs, js) {
                        (4, 3) => tile::<4, 3>(x, r0, w, j, k, &mut out),
                        (3, 4) => tile::<3, 4>(x, r0, w, j, k, &mut out),
                        (2, 6) => tile::<2, 6>(x, r0, w, j, k, &mut out),
                        (1, 8) => tile::<1, 8>(x, r0, w, j, k, &mut out),
                        (4, _) => tile::<4, 1>(x, r0, w, j, k, &mut out),
                        (3, _) => tile::<3, 1>(x, r0, w, j, k, &mut out),
                        (2, _) => tile::<2, 1>(x, r0, w, j, k, &mut out),
                        _ => tile::<1, 1>(x, r0, w, j, k, &mut out),
                    }
                }
                for (r, o) in out.iter().enumerate().take(rs) {
                    for (jj, &v) in o.iter().enumerate().take(js) {
                        dots[(j + jj) * rows + r0 + r] = v;
                    }
                }
                j += js;
            }
            r0 += rs;
        }
    }

    /// `out[r][jj] = x[r0 + r] · w[j + jj]` for r < R, jj < J.
    ///
    /// # Safety
    /// AVX2 and FMA; rows `r0..r0 + R` of `x` and rows `j..j + J` of `w` exist (both `k` wide).
    #[inline(always)]
    unsafe fn tile<const R: usize, const J: usize>(
        x: &[f32],
        r0: usize,
        w: &[f32],
        j: usize,
        k: usize,
        out: &mut [[f32; MAX_J]; ROWS_AT_ONCE],
    ) {
        debug_assert!((r0 + R) * k <= x.len() && (j + J) * k <= w.len());
        let xp = x.as_ptr();
        let wp = w.as_ptr();
        let whole = k - k % 8;
        // SAFETY: the caller runs on a CPU with AVX (this module's precondition); no memory.
        let mut acc = [[unsafe { _mm256_setzero_ps() }; J]; R];
        let mut c = 0;
        while c < whole {
            // SAFETY: as above.
            let mut wv = [unsafe { _mm256_setzero_ps() }; J];
            for (jj, v) in wv.iter_mut().enumerate() {
                // SAFETY: weight row j + jj < j + J exists (caller), and c + 8 <= whole <= k, so
                // the 8 floats read lie inside it; an unaligned load.
                *v = unsafe { _mm256_loadu_ps(wp.add((j + jj) * k + c)) };
            }
            for (r, a) in acc.iter_mut().enumerate() {
                // SAFETY: input row r0 + r < r0 + R exists (caller), and c + 8 <= k as above.
                let xv = unsafe { _mm256_loadu_ps(xp.add((r0 + r) * k + c)) };
                for (jj, acc) in a.iter_mut().enumerate() {
                    // SAFETY: register-only arithmetic; the caller has FMA.
                    *acc = unsafe { _mm256_fmadd_ps(xv, wv[jj], *acc) };
                }
            }
            c += 8;
        }
        for (r, a) in acc.iter().enumerate() {
            for (jj, v) in a.iter().enumerate() {
                let mut lanes = [0f32; 8];
                // SAFETY: `lanes` is 8 floats; an unaligned store.
                unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), *v) };
                let mut sum = lanes.iter().sum::<f32>();
                for i in whole..k {
                    sum += x[(r0 + r) * k + i] * w[(j + jj) * k + i];
                }
                out[r][jj] = sum;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::pseudo_random;
    use super::*;

    #[test]
    fn few_rows_match_naive_for_every_row_count_and_ragged_sizes() {
        // k not a multiple of dot's 16 lanes, n not a multiple of COLUMNS_PER_TASK, every row count.
        let (k, n) = (37, 150);
        let w = pseudo_random(n * k, 7);
        for rows in 1..=FEW_ROWS {
            let x = pseudo_random(rows * k, rows as u32);
            let start = pseudo_random(rows * n, 99);
            for beta in [0.0, 1.0] {
                let mut out = start.clone();
                linear_few_rows(&x, rows, k, &w, n, beta, &mut out);
                for r in 0..rows {
                    for j in 0..n {
                        let mut want = beta as f64 * start[r * n + j] as f64;
                        for i in 0..k {
                            want += x[r * k + i] as f64 * w[j * k + i] as f64;
                        }
                        let got = out[r * n + j] as f64;
                        assert!(
                            (got - want).abs() < 1e-4,
                            "rows {rows} ({r}, {j}): {got} vs {want}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn portable_block_kernel_matches_naive() {
        check_block_kernel("portable", block_dots);
    }

    #[test]
    #[cfg_attr(
        not(fathom_built_on = "avx2"),
        ignore = "needs AVX2 and FMA, which the CPU these tests were built on lacks"
    )]
    fn avx2_block_kernel_matches_naive() {
        crate::cpu::require(|c| c.avx2, "AVX2 few-rows");
        #[cfg(target_arch = "x86_64")]
        check_block_kernel("avx2", avx2::block_dots);
    }

    /// One block kernel (not only the one `linear_few_rows` picks) for every row count, k
    /// below, at and past a vector's lanes, and weight counts that leave tails.
    fn check_block_kernel(name: &str, kernel: fn(&[f32], usize, usize, &[f32], &mut [f32])) {
        {
            for k in [1, 7, 8, 9, 40, 389] {
                for n in [1, 7, 13, 37] {
                    let w = pseudo_random(n * k, k as u32);
                    for rows in 1..=FEW_ROWS {
                        let x = pseudo_random(rows * k, 1000 + rows as u32);
                        let mut dots = vec![f32::NAN; n * rows];
                        kernel(&x, rows, k, &w, &mut dots);
                        for j in 0..n {
                            for r in 0..rows {
                                let want: f64 = (0..k)
                                    .map(|i| x[r * k + i] as f64 * w[j * k + i] as f64)
                                    .sum();
                                let got = dots[j * rows + r] as f64;
                                assert!(
                                    (got - want).abs() < 1e-4 * (k as f64).sqrt(),
                                    "{name}: k {k} n {n} rows {rows} ({r}, {j}): {got} vs {want}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}
