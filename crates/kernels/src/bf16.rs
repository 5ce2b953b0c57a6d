//! Opt-in reduced precision on CPU: matrix products in bf16 with f32 accumulation, on AMX tiles
//! (`tdpbf16ps`, see [`super::amx`]) where the CPU has them, else on the AVX512-BF16
//! dot-product instruction (`vdpbf16ps`: two bf16 products per f32 lane).
//!
//! Weights are packed once at load time, each k-pair of a column stored as one 32-bit lane, in
//! panels of 64 columns (or, for the tiles, 16 columns with k padded to whole tile steps);
//! activations are rounded to bf16 (nearest even) per call. Everything around the products
//! (softmax, layer norm, GELU, pooling) stays f32; attention runs on bf16 tiles on AMX CPUs
//! ([`attention`](mod@super::attention)). Used only where the CPU has AVX512-BF16 (`supported()`);
//! the caller falls back to f32 elsewhere.
//!
//! The micro-kernel reads and writes through raw pointers for speed; it asserts the bounds that
//! make that sound once per call, outside its loops.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::amx::{self, Fused};
use super::Epilogue;

/// Columns per packed panel: four 16-lane vectors.
const PANEL: usize = 64;
/// Rows per micro-kernel call: 6 rows × 4 vectors = 24 accumulators in 32 registers.
const MR: usize = 6;

/// Whether the bf16 kernels run here: AVX512-BF16, not turned off by `FATHOM_CPU`
/// ([`crate::cpu::enabled`]).
pub fn supported() -> bool {
    crate::cpu::enabled().avx512_bf16
}

/// f32 → bf16 bits, rounding to nearest even (NaN stays NaN).
fn to_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    if x.is_nan() {
        return ((bits >> 16) | 0x40) as u16;
    }
    let rounded = bits.wrapping_add(0x7FFF + ((bits >> 16) & 1));
    (rounded >> 16) as u16
}

fn pair(lo: f32, hi: f32) -> u32 {
    to_bf16(lo) as u32 | ((to_bf16(hi) as u32) << 16)
}

/// A weight matrix `w` (n × k, PyTorch layout) packed for [`matmul_bt`].
#[derive(Debug, Clone)]
pub struct PackedWeight {
    n: usize,
    k: usize,
    /// Whether packed for the AMX tiles (else for the AVX512-BF16 kernel).
    amx: bool,
    /// Pairs per column in `data` (for AMX padded with zeros to whole tile steps).
    k_pairs: usize,
    /// `data[(panel * k_pairs + p) * width + c]` = `(w[panel·width + c][2p], w[..][2p + 1])` as
    /// bf16, in panels of `width` columns: [`PANEL`], or for AMX one tile's 16 (their number
    /// padded to whole blocks of two).
    data: Vec<u32>,
}

impl PackedWeight {
    pub fn pack(w: &[f32], n: usize, k: usize) -> Self {
        Self::pack_for(w, n, k, amx::bf16())
    }

    fn pack_for(w: &[f32], n: usize, k: usize, amx: bool) -> Self {
        assert_eq!(w.len(), n * k);
        let (width, panels, k_pairs) = if amx {
            let panels = n
                .div_ceil(amx::TILE)
                .next_multiple_of(amx::BLOCK / amx::TILE);
            let k_pairs = k.div_ceil(2).next_multiple_of(amx::STEP_BYTES / 4);
            (amx::TILE, panels, k_pairs)
        } else {
            (PANEL, n.div_ceil(PANEL), k.div_ceil(2))
        };
        let mut data = vec![0u32; panels * k_pairs * width];
        data.par_chunks_mut(k_pairs * width)
            .enumerate()
            .for_each(|(panel, dst)| {
                for (idx, slot) in dst.iter_mut().enumerate() {
                    let (p, col) = (idx / width, panel * width + idx % width);
                    if col < n && 2 * p < k {
                        let row = &w[col * k..(col + 1) * k];
                        let hi = row.get(2 * p + 1).copied().unwrap_or(0.0);
                        *slot = pair(row[2 * p], hi);
                    }
                }
            });
        Self {
            n,
            k,
            amx,
            k_pairs,
            data,
        }
    }
}

/// `x · wᵀ + bias` for row-major `x` (rows × k), then the epilogue: rows × n, row-major. Panics
/// unless [`supported`].
pub fn linear(
    x: &[f32],
    rows: usize,
    w: &PackedWeight,
    bias: Option<&[f32]>,
    epilogue: Epilogue,
) -> Vec<f32> {
    let (n, k) = (w.n, w.k);
    if let Some(b) = bias {
        assert_eq!(b.len(), n, "bf16: bias is not n long");
    }
    if !w.amx || rows == 0 || n == 0 || k == 0 {
        return super::linear::with_bias_and_epilogue(rows, n, bias, epilogue, |out| {
            matmul_bt(x, rows, w, out)
        });
    }
    assert!(
        crate::cpu::detected().avx512_bf16,
        "bf16 kernels need AVX512-BF16"
    );
    assert_eq!(x.len(), rows * k, "bf16: input is not rows × k");
    let lda = w.k_pairs;
    // Activations to bf16 pairs, the rows padded with zero rows to whole blocks.
    let mut a = vec![0u32; rows.next_multiple_of(amx::BLOCK) * lda];
    a.par_chunks_mut(lda * 64)
        .zip(x.par_chunks(k * 64))
        .for_each(|(dst, src)| {
            for (d, s) in dst.chunks_mut(lda).zip(src.chunks(k)) {
                convert_row(s, &mut d[..k.div_ceil(2)]);
            }
        });
    let fused = Fused {
        bias,
        gelu: epilogue == Epilogue::GeluErf,
    };
    // SAFETY: `for_blocks` hands every (row, column) to exactly one `product_amx`, which writes
    // each value of its rows and blocks.
    unsafe {
        amx::written_by(rows, n, |out| {
            amx::for_blocks(rows, n, out, |rows, blocks, dst, ldc| {
                product_amx(
                    &a[rows.start * lda..],
                    rows.len(),
                    w,
                    fused,
                    blocks,
                    dst,
                    ldc,
                );
            })
        })
    }
}

/// Column blocks `blocks` of `w` (32 columns each) against the first `m` rows of `a` (k_pairs
/// pairs a row, rows padded to whole blocks): `out[r][j − j0] = bias[j] + …`, then the
/// activation, where `j0` is the first block's first column and `ldc` the stride of `out`.
fn product_amx(
    a: &[u32],
    m: usize,
    w: &PackedWeight,
    fused: Fused,
    blocks: std::ops::Range<usize>,
    out: &mut [MaybeUninit<f32>],
    ldc: usize,
) {
    let tiles = amx::Tiles::new().expect("bf16: weight packed for AMX on a CPU without it");
    let lda = w.k_pairs;
    let steps = 4 * lda / amx::STEP_BYTES;
    let panel = lda * amx::TILE;
    let first = blocks.start * amx::BLOCK;
    let zeros = [0f32; amx::TILE];
    let mut c: amx::Block<f32> = [0.0; amx::BLOCK * amx::BLOCK];
    amx::in_cache_order(m, blocks, 2 * panel * 4, |r0, block| {
        let a_rows = &a[r0 * lda..(r0 + amx::BLOCK) * lda];
        let p0 = 2 * block;
        let b0 = &w.data[p0 * panel..(p0 + 1) * panel];
        let b1 = &w.data[(p0 + 1) * panel..(p0 + 2) * panel];
        tiles.bf16_block(a_rows, lda, [b0, b1], steps, &mut c, amx::BLOCK);
        for t in 0..4 {
            let (tr, tc) = (amx::TILE * (t / 2), amx::TILE * (t % 2));
            let tile = &c[tr * amx::BLOCK + tc..];
            let r = r0 + tr;
            let j = (p0 + t % 2) * amx::TILE;
            if r >= m || j >= w.n {
                continue;
            }
            let cols = (w.n - j).min(amx::TILE);
            let bias = fused.bias.map_or(&zeros[..cols], |b| &b[j..j + cols]);
            for rr in 0..(m - r).min(amx::TILE) {
                let values = &tile[rr * amx::BLOCK..rr * amx::BLOCK + cols];
                let at = (r + rr) * ldc + (j - first);
                for ((o, v), b) in out[at..at + cols].iter_mut().zip(values).zip(bias) {
                    o.write(b + v);
                }
            }
        }
        if fused.gelu {
            let rows = r0..(r0 + amx::BLOCK).min(m);
            // SAFETY: the block's four tiles just wrote these rows' columns below n.
            unsafe { amx::gelu_block(out, rows, (block * amx::BLOCK, w.n, first), ldc) };
        }
    });
}

/// `out += x · wᵀ` for row-major `x` (rows × k) and a packed `w`; `out` is rows × n, already
/// holding the bias (or zeros). Panics unless [`supported`].
pub fn matmul_bt(x: &[f32], rows: usize, w: &PackedWeight, out: &mut [f32]) {
    assert!(
        crate::cpu::detected().avx512_bf16,
        "bf16 kernels need AVX512-BF16"
    );
    let (n, k) = (w.n, w.k);
    assert_eq!(x.len(), rows * k);
    assert_eq!(out.len(), rows * n);
    if rows == 0 || n == 0 {
        return;
    }
    if w.amx {
        // The tiles' epilogue writes rather than adds (see [`linear`], which fuses the bias).
        let product = linear(x, rows, w, None, Epilogue::None);
        out.iter_mut().zip(&product).for_each(|(o, p)| *o += p);
        return;
    }
    let k_pairs = k.div_ceil(2);
    // Activations to bf16 pairs, one row of k_pairs lanes per input row.
    let mut a = vec![0u32; rows * k_pairs];
    a.par_chunks_mut(k_pairs * 64)
        .zip(x.par_chunks(k * 64))
        .for_each(|(dst, src)| {
            for (d, s) in dst.chunks_mut(k_pairs).zip(src.chunks(k)) {
                convert_row(s, d);
            }
        });
    let threads = rayon::current_num_threads().max(1);
    let block = rows.div_ceil(threads).div_ceil(MR).max(1) * MR;
    out.par_chunks_mut(block * n)
        .zip(a.par_chunks(block * k_pairs))
        .for_each(|(dst, src)| {
            let m = src.len() / k_pairs;
            // SAFETY: `matmul_block` needs AVX512F and AVX512-BF16, which `cpu::detected()` confirmed
            // at the top of this function; memory safety it ensures itself (its slices are
            // bounds-checked and its micro-kernel asserts its bounds).
            #[cfg(target_arch = "x86_64")]
            unsafe {
                x86::matmul_block(src, m, k_pairs, &w.data, n, dst)
            };
            #[cfg(not(target_arch = "x86_64"))]
            let _ = (src, m, dst);
        });
}

/// One row of activations to bf16 pairs (`dst` holds `src.len()` / 2 lanes, rounded up).
pub(super) fn convert_row(src: &[f32], dst: &mut [u32]) {
    #[cfg(target_arch = "x86_64")]
    if supported() {
        let whole = src.len() / 16;
        assert!(
            dst.len() >= 8 * whole,
            "bf16: row of pairs shorter than its values"
        );
        // SAFETY: AVX512F and AVX512-BF16 are present (`supported`); `src` holds 16 · whole
        // floats and `dst` 8 · whole lanes (asserted above).
        unsafe { x86::convert_16s(src, dst, whole) };
        for (p, d) in dst.iter_mut().enumerate().skip(8 * whole) {
            let hi = src.get(2 * p + 1).copied().unwrap_or(0.0);
            *d = pair(src[2 * p], hi);
        }
        return;
    }
    for (p, d) in dst.iter_mut().enumerate() {
        let lo = src[2 * p];
        let hi = src.get(2 * p + 1).copied().unwrap_or(0.0);
        *d = pair(lo, hi);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{MR, PANEL};

    /// All panels for `m` rows. Rows are walked in groups small enough that their activations stay
    /// in L2 while each weight panel is reused across the group.
    ///
    /// `a` is m × k_pairs, `out` m × n, `w` packed for n columns and k_pairs pairs; a wrong size
    /// panics (slices here are bounds-checked, [`kernel`] asserts its own bounds). Calling it is
    /// `unsafe` from code not compiled for AVX512F and AVX512-BF16: check [`super::supported`].
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub fn matmul_block(a: &[u32], m: usize, k_pairs: usize, w: &[u32], n: usize, out: &mut [f32]) {
        let panels = n.div_ceil(PANEL);
        let group = (96 * 1024 / (4 * k_pairs)).max(MR) / MR * MR;
        let mut r0 = 0;
        while r0 < m {
            let r1 = (r0 + group).min(m);
            for panel in 0..panels {
                let b = &w[panel * k_pairs * PANEL..(panel + 1) * k_pairs * PANEL];
                let cols = (n - panel * PANEL).min(PANEL);
                let mut r = r0;
                while r < r1 {
                    let rows = (r1 - r).min(MR);
                    let a_rows = &a[r * k_pairs..(r + rows) * k_pairs];
                    let c = &mut out[r * n + panel * PANEL..];
                    match rows {
                        6 => kernel::<6>(a_rows, k_pairs, b, c, n, cols),
                        5 => kernel::<5>(a_rows, k_pairs, b, c, n, cols),
                        4 => kernel::<4>(a_rows, k_pairs, b, c, n, cols),
                        3 => kernel::<3>(a_rows, k_pairs, b, c, n, cols),
                        2 => kernel::<2>(a_rows, k_pairs, b, c, n, cols),
                        _ => kernel::<1>(a_rows, k_pairs, b, c, n, cols),
                    }
                    r += rows;
                }
            }
            r0 = r1;
        }
    }

    /// The first 16 · `whole` values of `src` to bf16 (nearest even, as [`super::to_bf16`];
    /// denormals flush to zero), two to a lane of `dst`, in order.
    ///
    /// # Safety
    /// AVX512F and AVX512-BF16; `src` holds 16 · `whole` floats, `dst` 8 · `whole` lanes.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub unsafe fn convert_16s(src: &[f32], dst: &mut [u32], whole: usize) {
        for i in 0..whole {
            // SAFETY: i < whole: floats 16i..16i + 16 of `src` and lanes 8i..8i + 8 of `dst`
            // exist (the caller's contract); unaligned load and store.
            unsafe {
                let v = _mm512_loadu_ps(src.as_ptr().add(16 * i));
                let b: __m256i = std::mem::transmute(_mm512_cvtneps_pbh(v));
                _mm256_storeu_si256(dst.as_mut_ptr().add(8 * i).cast(), b);
            }
        }
    }

    /// Reinterprets 16 lanes of two packed bf16 values each as the bf16-pair vector type.
    #[inline(always)]
    fn as_bf16_pairs(v: __m512i) -> __m512bh {
        // SAFETY: both are plain 512-bit SIMD vectors of the same size, and every bit pattern is
        // a valid value of either; each 32-bit lane already holds (lo, hi) bf16 as `pair` packs it.
        unsafe { std::mem::transmute::<__m512i, __m512bh>(v) }
    }

    /// R rows × one 64-column panel: `c[r][j] += Σ_p a[r][p] · b[p][j]` over bf16 pairs, for
    /// columns j < `cols` of rows r < R at row stride `ldc`.
    #[target_feature(enable = "avx512f,avx512bf16")]
    fn kernel<const R: usize>(
        a: &[u32],
        k_pairs: usize,
        b: &[u32],
        c: &mut [f32],
        ldc: usize,
        cols: usize,
    ) {
        // Checked once per call (R rows by one panel, over all of k), outside the loops: these
        // bounds are what keep the raw loads and stores below inside `a`, `b` and `c`.
        assert!(
            a.len() >= R * k_pairs && b.len() >= k_pairs * PANEL,
            "bf16 kernel: operands shorter than {R} rows × {k_pairs} pairs"
        );
        assert!(
            c.len() >= (R - 1) * ldc + cols,
            "bf16 kernel: output shorter than {R} rows × {cols} columns at stride {ldc}"
        );
        let mut acc = [[_mm512_setzero_ps(); 4]; R];
        let bp = b.as_ptr();
        let ap = a.as_ptr();
        for p in 0..k_pairs {
            // SAFETY: p < k_pairs, so lanes p·64..p·64+64 lie inside `b` (asserted to hold
            // k_pairs × 64 lanes); `loadu` needs no alignment.
            let bv: [__m512bh; 4] = unsafe {
                let base = bp.add(p * PANEL);
                [
                    as_bf16_pairs(_mm512_loadu_si512(base.cast())),
                    as_bf16_pairs(_mm512_loadu_si512(base.add(16).cast())),
                    as_bf16_pairs(_mm512_loadu_si512(base.add(32).cast())),
                    as_bf16_pairs(_mm512_loadu_si512(base.add(48).cast())),
                ]
            };
            for (r, acc_r) in acc.iter_mut().enumerate() {
                // SAFETY: r < R and p < k_pairs, so the index is below R × k_pairs <= a.len()
                // (asserted above).
                let lane = unsafe { *ap.add(r * k_pairs + p) } as i32;
                let av = as_bf16_pairs(_mm512_set1_epi32(lane));
                for v in 0..4 {
                    acc_r[v] = _mm512_dpbf16_ps(acc_r[v], av, bv[v]);
                }
            }
        }
        for (r, acc_r) in acc.iter().enumerate() {
            for (v, value) in acc_r.iter().enumerate() {
                let c0 = v * 16;
                if c0 >= cols {
                    break;
                }
                let valid = (cols - c0).min(16);
                let mask: __mmask16 = if valid == 16 {
                    0xFFFF
                } else {
                    (1u16 << valid) - 1
                };
                // SAFETY: the mask enables lanes 0..valid only, so this touches elements
                // r·ldc + c0 .. r·ldc + c0 + valid of `c`; with r <= R - 1 and c0 + valid <= cols
                // that ends at or before (R - 1)·ldc + cols <= c.len() (asserted above).
                // Masked-off lanes are neither read nor written.
                unsafe {
                    let dst = c.as_mut_ptr().add(r * ldc + c0);
                    let old = _mm512_maskz_loadu_ps(mask, dst);
                    _mm512_mask_storeu_ps(dst, mask, _mm512_add_ps(old, *value));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_rounding_is_nearest_even() {
        assert_eq!(to_bf16(1.0), 0x3F80);
        // 1 + 2^-8 is exactly halfway between two bf16 values: rounds to the even one (1.0).
        assert_eq!(to_bf16(1.0 + 1.0 / 256.0), 0x3F80);
        assert_eq!(to_bf16(1.0 + 3.0 / 256.0), 0x3F82);
        assert_eq!(to_bf16(-2.0), 0xC000);
    }

    /// The product by its definition: `x` and `w` rounded to bf16 (by [`to_bf16`], tested
    /// above), multiplied exactly and summed in f64, plus the bias. Returns each output and the
    /// size of its terms, which bounds the f32 rounding of a kernel's sums.
    fn naive(
        x: &[f32],
        rows: usize,
        w: &[f32],
        (n, k): (usize, usize),
        bias: &[f32],
    ) -> Vec<(f64, f64)> {
        let bf = |v: &f32| f32::from_bits((to_bf16(*v) as u32) << 16) as f64;
        let mut out = Vec::with_capacity(rows * n);
        for xr in x.chunks(k).take(rows) {
            for (j, wr) in w.chunks(k).enumerate() {
                let terms = xr.iter().zip(wr).map(|(a, b)| bf(a) * bf(b));
                let (sum, size) = terms.fold((0.0, 0.0), |(s, m), t| (s + t, m + t.abs()));
                out.push((bias[j] as f64 + sum, bias[j].abs() as f64 + size));
            }
        }
        out
    }

    /// One kernel (`amx` picks the tiles over AVX512-BF16) against [`naive`], accumulating
    /// into `out` and, through [`linear`], with the bias and GELU fused.
    fn check_against_naive(amx: bool) {
        for (rows, k, n) in [
            (13, 37, 70),
            (64, 384, 128),
            (7, 2, 16),
            (1, 5, 1),
            (150, 100, 40),
            // Over the L2 share of weights: AMX takes the columns in two groups.
            (70, 768, 700),
        ] {
            let x: Vec<f32> = (0..rows * k)
                .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
                .collect();
            let w: Vec<f32> = (0..n * k)
                .map(|i| ((i * 53 % 97) as f32 / 48.0) - 1.0)
                .collect();
            let bias: Vec<f32> = (0..n).map(|j| j as f32 * 0.01).collect();
            let packed = PackedWeight::pack_for(&w, n, k, amx);
            let want = naive(&x, rows, &w, (n, k), &bias);
            let mut sums: Vec<f32> = (0..rows).flat_map(|_| bias.clone()).collect();
            matmul_bt(&x, rows, &packed, &mut sums);
            let fused = linear(&x, rows, &packed, Some(&bias), Epilogue::GeluErf);
            for (i, ((s, f), &(v, size))) in sums.iter().zip(&fused).zip(&want).enumerate() {
                let at = format!("amx {amx} ({rows},{k},{n}) [{i}]");
                assert!(
                    (*s as f64 - v).abs() <= 1e-5 * size + 1e-6,
                    "{at}: {s} vs {v}"
                );
                let g = 0.5 * v * (1.0 + candle_core::cpu::erf::erf_f64(v / 2f64.sqrt()));
                assert!(
                    (*f as f64 - g).abs() <= 2e-5 * size + 1e-6,
                    "{at} GELU: {f} vs {g}"
                );
            }
        }
    }

    #[test]
    #[cfg_attr(
        not(fathom_built_on = "avx512_bf16"),
        ignore = "needs AVX512-BF16, which the CPU these tests were built on lacks"
    )]
    fn avx512_bf16_kernel_matches_naive() {
        crate::cpu::require(|c| c.avx512_bf16, "AVX512-BF16");
        check_against_naive(false);
    }

    #[test]
    #[cfg_attr(
        not(fathom_built_on = "amx_bf16"),
        ignore = "needs AMX-BF16, which the CPU these tests were built on lacks"
    )]
    fn amx_bf16_kernel_matches_naive() {
        crate::cpu::require(|c| c.amx_bf16 && c.avx512_bf16, "AMX bf16");
        check_against_naive(true);
    }
}
