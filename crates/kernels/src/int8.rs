//! Opt-in int8 on CPU: matrix products on 8-bit integers, everything around them in f32.
//!
//! Weights are quantized once at load, symmetrically per output channel (`w ≈ s_w[j] · q`,
//! `q ∈ [-127, 127]`); activations per call, per row (per token), asymmetrically (`x ≈ s_x ·
//! (q − z)`, `q ∈ [0, 255]`, zero exact). One row times one column is then an exact integer sum,
//! `Σ q_x · q_w − z · Σ q_w`, scaled back by `s_x · s_w[j]` and added to the bias.
//!
//! Every kernel takes the same operands: weights as `i8` (a quarter of f32's bytes: what a short
//! query reads from memory) in panels of [`PANEL`] columns, four k's of a column in one `u32`
//! lane ("quads"), and activations as `u8`, four k's to a lane. Each sums the same way — exact
//! integer dot products, then one float epilogue — so kernels given the same weights give the same
//! bits (the unit tests check it):
//! - AVX-512 VNNI: `vpdpbusd`, 64 u8 × i8 products an instruction summed by fours into `i32`;
//! - AMX-INT8 (Sapphire Rapids and later): [`super::amx`] tiles do the same sums 16 × 16 × 64 at
//!   a time, on the same quads padded to whole tiles (k to 64, columns to 32, rows to 32: the
//!   padding is zeros and changes no sum);
//! - AVX2 without VNNI: `vpmaddubsw` (32 u8 × i8 products, summed in pairs into `i16`), then
//!   `vpmaddwd` by ones into `i32`, `vpdpbusd`'s sum in two instructions. A pair sum saturates
//!   past 32,767 (2 · 255 · 127 would), so weights for this kernel are quantized to ±64 instead of
//!   ±127 (2 · 255 · 64 = 32,640): one bit less on the weights, for half again the products a
//!   cycle. On a Zen 4 core held to AVX2, `vpmaddwd` on widened `i16` pairs with its `vpaddd` —
//!   the kernel this replaced, full 8-bit weights — retired 71–84 GMAC/s, this mix 117
//!   (`examples/roofline.rs`). On all-MiniLM-L6-v2 the lowest cosine to f32 over 400 SciFact
//!   documents went from 0.998 to 0.996, and SciFact nDCG@10 stayed within 0.004 of f32;
//! - elsewhere a portable kernel computes the same sums one output at a time.

use std::mem::MaybeUninit;

use multiversion::multiversion;
use rayon::prelude::*;

use super::amx::{self, Fused};
use super::linear::by_column_blocks;
use super::Epilogue;

/// Columns per packed panel: two 8-lane vectors.
const PANEL: usize = 16;
/// Rows per micro-kernel call: 6 rows × 2 vectors = 12 accumulators, with the two weight
/// vectors and the broadcast activation inside 16 AVX2 registers.
const MR: usize = 6;
/// Largest magnitude of a quantized weight (symmetric, so -128 is never used).
const W_MAX: f32 = 127.0;
/// The same for the AVX2 kernel, whose `vpmaddubsw` pair sums must stay within `i16`:
/// 2 · 255 · 64 = 32,640 ≤ 32,767.
const W_MAX_AVX2: f32 = 64.0;
/// Largest quantized activation (8 bits, unsigned).
const A_MAX: f32 = 255.0;

/// A weight matrix `w` (n × k, PyTorch layout) quantized to int8 and packed for [`matmul_bt`].
#[derive(Debug, Clone)]
pub struct QuantizedWeight {
    n: usize,
    k: usize,
    /// Per output column: `w[j][i] ≈ scales[j] · q[j][i]`.
    scales: Vec<f32>,
    /// Per output column (padded with zeros to whole panels): `Σ_i q[j][i]`.
    sums: Vec<i32>,
    /// Which kernel the weight is quantized and packed for (and so runs on).
    kernel: Kernel,
    /// `quads[(panel · k_quads + q) · PANEL + c]` = q[panel·16 + c][4q .. 4q + 4] as four `i8`
    /// (first in the low byte); columns past `n` and k past the end are zero. For AMX, `k_quads`
    /// and the panels are padded (with zeros) to whole tiles.
    quads: Vec<u32>,
    /// Quads per column in `quads`.
    k_quads: usize,
}

/// The integer kernels, all computing the same sums (so, given the same weights, the same
/// outputs to the bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    /// Plain loops, for CPUs without AVX2.
    Portable,
    /// AVX2 `vpmaddubsw` + `vpmaddwd`, on weights quantized to ±[`W_MAX_AVX2`].
    Avx2,
    /// AVX-512 VNNI `vpdpbusd`.
    Vnni,
    /// AMX tiles (`tdpbusd`).
    Amx,
}

impl Kernel {
    /// The fastest kernel this CPU runs.
    fn best() -> Self {
        if super::amx::int8() {
            Self::Amx
        } else if vnni() {
            Self::Vnni
        } else if avx2() {
            Self::Avx2
        } else {
            Self::Portable
        }
    }

    /// The largest magnitude of a weight quantized for this kernel.
    fn w_max(self) -> f32 {
        match self {
            Self::Avx2 => W_MAX_AVX2,
            _ => W_MAX,
        }
    }
}

/// Adding then subtracting 1.5 · 2²³ rounds a float of magnitude below 2²² to the nearest
/// integer, ties to even (the FPU's default rounding), in two instructions that vectorize.
const ROUNDER: f32 = 12_582_912.0;

/// `v` rounded to the nearest integer, ties to even; `|v|` must be below 2²² (every caller
/// scales onto a few hundred), NaN stays NaN.
#[inline(always)]
fn round(v: f32) -> f32 {
    (v + ROUNDER) - ROUNDER
}

/// The smallest and largest value in `values` (NaN ignored), over independent lanes that
/// vectorize.
#[multiversion(targets("x86_64+avx2+fma", "aarch64+neon"))]
fn min_max(values: &[f32]) -> (f32, f32) {
    let mut lo = [0f32; 8];
    let mut hi = [0f32; 8];
    let chunks = values.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..8 {
            lo[i] = if c[i] < lo[i] { c[i] } else { lo[i] };
            hi[i] = if c[i] > hi[i] { c[i] } else { hi[i] };
        }
    }
    let lo = tail
        .iter()
        .chain(&lo)
        .fold(0f32, |m, &v| if v < m { v } else { m });
    let hi = tail
        .iter()
        .chain(&hi)
        .fold(0f32, |m, &v| if v > m { v } else { m });
    (lo, hi)
}

/// How a row of activations maps onto [0, 255]: `x ≈ scale · (q − zero)`; `inv` = 1 / scale.
#[derive(Debug, Clone, Copy, PartialEq)]
struct RowScale {
    scale: f32,
    inv: f32,
    zero: i32,
}

impl RowScale {
    /// The range always holds 0 (so zero padding and exact zeros stay exact); a row of zeros or
    /// with an infinity gets scale 0 (all quantized values 0, its products 0).
    fn of(values: &[f32]) -> Self {
        let (lo, hi) = min_max(values);
        let range = hi - lo;
        if range > 0.0 && range.is_finite() {
            let inv = A_MAX / range;
            let zero = round(-lo * inv).clamp(0.0, A_MAX) as i32;
            Self {
                scale: range / A_MAX,
                inv,
                zero,
            }
        } else {
            Self {
                scale: 0.0,
                inv: 0.0,
                zero: 0,
            }
        }
    }

    /// `v` on [0, 255] (NaN to 0). The integer is read from the bits of `x + 2²³`, whose low
    /// mantissa bits hold it, instead of a saturating float-to-int cast, which does not vectorize.
    #[inline(always)]
    #[allow(clippy::manual_clamp)] // `max`/`min`, unlike `clamp`, take a NaN to 0
    fn quantize(self, v: f32) -> u32 {
        let x = (round(v * self.inv) + self.zero as f32).max(0.0).min(A_MAX);
        (x + 8_388_608.0).to_bits() & 0xFF
    }
}

impl QuantizedWeight {
    pub fn quantize(w: &[f32], n: usize, k: usize) -> Self {
        Self::quantize_for(w, n, k, Kernel::best())
    }

    fn quantize_for(w: &[f32], n: usize, k: usize, kernel: Kernel) -> Self {
        assert_eq!(w.len(), n * k, "int8: weight is not n × k");
        let w_max = kernel.w_max();
        let mut panels = n.div_ceil(PANEL);
        let mut k_quads = k.div_ceil(4);
        if kernel == Kernel::Amx {
            panels = panels.next_multiple_of(amx::BLOCK / PANEL);
            k_quads = k_quads.next_multiple_of(amx::STEP_BYTES / 4);
        }
        let mut scales = vec![0f32; n];
        let mut sums = vec![0i32; panels * PANEL];
        let mut q = vec![0i8; n * k];
        scales
            .par_iter_mut()
            .zip(&mut sums[..n])
            .zip(q.par_chunks_mut(k.max(1)))
            .zip(w.par_chunks(k.max(1)))
            .for_each(|(((scale, sum), q), row)| {
                let amax = row.iter().fold(0f32, |m, v| m.max(v.abs()));
                let (s, inv) = if amax > 0.0 && amax.is_finite() {
                    (amax / w_max, w_max / amax)
                } else {
                    (0.0, 0.0)
                };
                *scale = s;
                for (q, &v) in q.iter_mut().zip(row) {
                    *q = round(v * inv).clamp(-w_max, w_max) as i8;
                }
                *sum = q.iter().map(|&v| v as i32).sum();
            });
        Self {
            n,
            k,
            scales,
            sums,
            kernel,
            quads: pack_quads(&q, n, k, panels, k_quads),
            k_quads,
        }
    }
}

/// Whether the AVX-512 VNNI kernel runs here.
fn vnni() -> bool {
    crate::cpu::enabled().avx512_vnni
}

/// Whether the AVX2 kernel runs here.
fn avx2() -> bool {
    crate::cpu::enabled().avx2
}

/// `q` (n × k, i8) packed in `panels` panels of [`PANEL`] columns, `k_quads` quads of four
/// k's of a column in one `u32`; columns past `n` and k past the end are zero.
fn pack_quads(q: &[i8], n: usize, k: usize, panels: usize, k_quads: usize) -> Vec<u32> {
    let mut quads = vec![0u32; panels * k_quads * PANEL];
    for (idx, slot) in quads.iter_mut().enumerate() {
        let c = idx % PANEL;
        let qi = (idx / PANEL) % k_quads;
        let col = idx / (PANEL * k_quads) * PANEL + c;
        if col < n {
            let row = &q[col * k..(col + 1) * k];
            let byte = |i: usize| row.get(4 * qi + i).copied().unwrap_or(0) as u8;
            *slot = u32::from_le_bytes([byte(0), byte(1), byte(2), byte(3)]);
        }
    }
    quads
}

/// One row quantized into lanes of four `u8` (the first in the low byte; k past the end 0).
#[multiversion(targets("x86_64+avx512f+avx512bw", "x86_64+avx2+fma", "aarch64+neon"))]
fn quantize_row_quads(src: &[f32], s: RowScale, dst: &mut [u32]) {
    let quads = src.chunks_exact(4);
    let tail = quads.remainder();
    for (d, q) in dst.iter_mut().zip(quads) {
        *d = s.quantize(q[0])
            | s.quantize(q[1]) << 8
            | s.quantize(q[2]) << 16
            | s.quantize(q[3]) << 24;
    }
    if !tail.is_empty() {
        dst[src.len() / 4] = tail
            .iter()
            .enumerate()
            .fold(0, |d, (i, &v)| d | s.quantize(v) << (8 * i));
    }
}

/// Rows of activations quantized into lanes of four `u8`, `k_quads` lanes a row, with their
/// scales; the rows padded with zero rows to a multiple of `row_multiple`.
fn quantize_rows_quads(
    x: &[f32],
    rows: usize,
    k: usize,
    k_quads: usize,
    row_multiple: usize,
) -> (Vec<RowScale>, Vec<u32>) {
    let mut scales = vec![
        RowScale {
            scale: 0.0,
            inv: 0.0,
            zero: 0
        };
        rows
    ];
    let mut data = vec![0u32; rows.next_multiple_of(row_multiple) * k_quads];
    data.par_chunks_mut(k_quads.max(1))
        .zip(scales.par_iter_mut())
        .zip(x.par_chunks(k.max(1)))
        .with_min_len(16)
        .for_each(|((dst, scale), src)| {
            *scale = RowScale::of(src);
            quantize_row_quads(src, *scale, dst);
        });
    (scales, data)
}

/// `out += x · wᵀ` for row-major `x` (rows × k) and a quantized `w`; `out` is rows × n, already
/// holding the bias (or zeros).
pub fn matmul_bt(x: &[f32], rows: usize, w: &QuantizedWeight, out: &mut [f32]) {
    let (n, k) = (w.n, w.k);
    assert_eq!(x.len(), rows * k, "int8: input is not rows × k");
    assert_eq!(out.len(), rows * n, "int8: output is not rows × n");
    if rows == 0 || n == 0 || k == 0 {
        return;
    }
    if w.kernel == Kernel::Amx {
        // The tiles' epilogue writes rather than adds (see [`linear`], which fuses the bias).
        let product = linear(x, rows, w, None, Epilogue::None);
        out.iter_mut().zip(&product).for_each(|(o, p)| *o += p);
        return;
    }
    let (scales, a) = quantize_rows_quads(x, rows, k, w.k_quads, 1);
    if rows < 32 * rayon::current_num_threads().max(1) {
        return by_panels(&a, &scales, w, Fused::NONE, out);
    }
    // SAFETY: `out` is initialized (a `&mut [f32]`), as `as_uninit` and `Add` need.
    unsafe { by_rows(&a, &scales, w, Start::Add, Fused::NONE, as_uninit(out)) }
}

/// The row split (enough rows for every thread): each thread takes a block of rows against
/// every panel of `w`, `out` being rows × n.
///
/// # Safety
/// As [`product`]: with [`Start::Add`], `out` is initialized; with [`Start::Write`] every value
/// of it is written.
unsafe fn by_rows(
    a: &[u32],
    scales: &[RowScale],
    w: &QuantizedWeight,
    start: Start,
    fused: Fused,
    out: &mut [MaybeUninit<f32>],
) {
    let (rows, n) = (scales.len(), w.n);
    let threads = rayon::current_num_threads().max(1);
    let block = rows.div_ceil(threads).div_ceil(MR) * MR;
    out.par_chunks_mut(block * n)
        .zip(scales.par_chunks(block))
        .zip(a.par_chunks(block * w.k_quads))
        .for_each(|((dst, scales), a)| {
            let panels = 0..n.div_ceil(PANEL);
            // SAFETY: the caller's contract, for these rows (the three chunkings give the same
            // number of blocks, each of the same rows).
            unsafe { product(a, scales, w, start, fused, panels, dst, n) }
        });
}

/// The few-rows split (a short query): the panels shared out among the threads, each product
/// added to `out` (which holds the bias or zeros), then the GELU where `fused` asks for it.
fn by_panels(a: &[u32], scales: &[RowScale], w: &QuantizedWeight, fused: Fused, out: &mut [f32]) {
    let (rows, n) = (scales.len(), w.n);
    let panels = n.div_ceil(PANEL);
    let threads = rayon::current_num_threads().max(1);
    let per_task = panels.div_ceil(threads * 2).max(1);
    let gelu = Fused {
        gelu: fused.gelu,
        ..Fused::NONE
    };
    by_column_blocks(rows, n, per_task * PANEL, out, |j0, width, dst| {
        let p0 = j0 / PANEL;
        let p1 = (j0 + width).div_ceil(PANEL);
        // SAFETY: `dst` is initialized (by_column_blocks copies `out` into it), as `as_uninit`
        // and `Add` need.
        unsafe {
            product(
                a,
                scales,
                w,
                Start::Add,
                gelu,
                p0..p1,
                as_uninit(dst),
                width,
            )
        };
    });
}

/// An initialized slice seen as possibly uninitialized, for [`product`] in [`Start::Add`] mode.
///
/// # Safety
/// Nothing may write an uninitialized value through the result (the kernels only ever store
/// finished floats), or `values` would hold one afterwards.
unsafe fn as_uninit(values: &mut [f32]) -> &mut [MaybeUninit<f32>] {
    // SAFETY: `MaybeUninit<f32>` has the layout of `f32`; the caller keeps every value
    // initialized.
    unsafe { &mut *(values as *mut [f32] as *mut [MaybeUninit<f32>]) }
}

/// What a tile's product starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// The output already holds values (the bias, zeros, or a sum): the product is added.
    Add,
    /// The output holds nothing yet: the product plus the bias (or zero) is written.
    Write,
}

/// `x · wᵀ + bias` for row-major `x` (rows × k), then the epilogue: rows × n, row-major.
pub fn linear(
    x: &[f32],
    rows: usize,
    w: &QuantizedWeight,
    bias: Option<&[f32]>,
    epilogue: Epilogue,
) -> Vec<f32> {
    let (n, k) = (w.n, w.k);
    if let Some(b) = bias {
        assert_eq!(b.len(), n, "int8: bias is not n long");
    }
    let fused = Fused {
        bias,
        gelu: epilogue == Epilogue::GeluErf,
    };
    if rows == 0 || n == 0 || k == 0 {
        return super::linear::with_bias_and_epilogue(rows, n, bias, epilogue, |_| {});
    }
    assert_eq!(x.len(), rows * k, "int8: input is not rows × k");
    if w.kernel != Kernel::Amx {
        let (scales, a) = quantize_rows_quads(x, rows, k, w.k_quads, 1);
        if rows < 32 * rayon::current_num_threads().max(1) {
            return super::linear::with_bias_and_epilogue(rows, n, bias, Epilogue::None, |out| {
                by_panels(&a, &scales, w, fused, out)
            });
        }
        // Enough rows for every thread: each output is written once (bias added in the tiles'
        // epilogue, GELU per group of rows while in cache): no pass to fill the buffer first,
        // none for the activation after.
        let write = |out: &mut [MaybeUninit<f32>]| {
            // SAFETY: `Write` needs nothing of `out`.
            unsafe { by_rows(&a, &scales, w, Start::Write, fused, out) }
        };
        // SAFETY: `by_rows` in `Write` mode writes every value of the rows × n it is given.
        return unsafe { amx::written_by(rows, n, write) };
    }
    let (scales, quads) = quantize_rows_quads(x, rows, k, w.k_quads, amx::BLOCK);
    // The tiles' epilogue writes every value once, bias and activation included, while its
    // block is in cache: the buffer is neither zeroed nor filled first.
    // SAFETY: `for_blocks` hands every (row, column) to exactly one `product_amx`, which writes
    // each value of its rows and blocks.
    unsafe {
        amx::written_by(rows, n, |out| {
            amx::for_blocks(rows, n, out, |rows, blocks, dst, ldc| {
                let a = &quads[rows.start * w.k_quads..];
                product_amx(a, &scales[rows], w, fused, blocks, dst, ldc);
            })
        })
    }
}

/// Column blocks `blocks` of `w` (32 columns each) against every row of `a` (k_quads quads a
/// row, rows padded to whole blocks): `out[r][j − j0] = …` with the [`Fused`] epilogue,
/// where `j0` is the first block's first column and `ldc` the stride of `out`'s rows.
fn product_amx(
    a: &[u32],
    a_scales: &[RowScale],
    w: &QuantizedWeight,
    fused: Fused,
    blocks: std::ops::Range<usize>,
    out: &mut [MaybeUninit<f32>],
    ldc: usize,
) {
    let tiles = amx::Tiles::new().expect("int8: weight packed for AMX on a CPU without it");
    let lda = w.k_quads;
    let steps = 4 * lda / amx::STEP_BYTES;
    let b = &w.quads;
    let panel_lanes = lda * PANEL;
    let first = blocks.start * amx::BLOCK;
    let mut c: amx::Block<i32> = [0; amx::BLOCK * amx::BLOCK];
    amx::in_cache_order(a_scales.len(), blocks, 2 * panel_lanes * 4, |r0, block| {
        let a_rows = &a[r0 * lda..(r0 + amx::BLOCK) * lda];
        let p0 = 2 * block;
        let b0 = &b[p0 * panel_lanes..(p0 + 1) * panel_lanes];
        let b1 = &b[(p0 + 1) * panel_lanes..(p0 + 2) * panel_lanes];
        tiles.int8_block(a_rows, lda, [b0, b1], steps, &mut c);
        for t in 0..4 {
            let (tr, tc) = (amx::TILE * (t / 2), amx::TILE * (t % 2));
            let tile = &c[tr * amx::BLOCK + tc..];
            let r = r0 + tr;
            let j = (p0 + t % 2) * PANEL;
            if r >= a_scales.len() || j >= w.n {
                continue;
            }
            let m = (a_scales.len() - r).min(amx::TILE);
            let cols = (w.n - j).min(PANEL);
            let dst = &mut out[r * ldc + (j - first)..];
            dequantize_tile(
                tile,
                &a_scales[r..r + m],
                &w.scales[j..j + cols],
                &w.sums[j..j + PANEL],
                fused.bias.map(|b| &b[j..j + cols]),
                dst,
                ldc,
            );
        }
        if fused.gelu {
            let rows = r0..(r0 + amx::BLOCK).min(a_scales.len());
            // SAFETY: the block's four tiles just wrote these rows' columns below n.
            unsafe { amx::gelu_block(out, rows, (block * amx::BLOCK, w.n, first), ldc) };
        }
    });
}

/// `out[r][c] = bias[c] + dequantize(tile[r][c], …)` (bias 0 where there is none) for the
/// tile's first `a_scales.len()` rows and `w_scales.len()` columns (row stride
/// [`amx::BLOCK`] in `tile`, `ldc` in `out`).
fn dequantize_tile(
    tile: &[i32],
    a_scales: &[RowScale],
    w_scales: &[f32],
    w_sums: &[i32],
    bias: Option<&[f32]>,
    out: &mut [MaybeUninit<f32>],
    ldc: usize,
) {
    let mut b = [0f32; PANEL];
    if let Some(bias) = bias {
        b[..bias.len()].copy_from_slice(bias);
    }
    #[cfg(target_arch = "x86_64")]
    if x86::avx512() {
        x86::dequantize_tile(tile, a_scales, w_scales, w_sums, &b, out, ldc);
        return;
    }
    for (r, &s) in a_scales.iter().enumerate() {
        let row = &mut out[r * ldc..r * ldc + w_scales.len()];
        for (c, o) in row.iter_mut().enumerate() {
            o.write(b[c] + dequantize(tile[r * amx::BLOCK + c], s, w_sums[c], w_scales[c]));
        }
    }
}

/// Panels `panels` of `w` against every row of `a` (`k_quads` lanes a row): `out[r][j − j0]`
/// gets the product (added to what it holds, or written with the [`Fused`] bias, as `start`
/// says), where `j0` is the first panel's first column and `ldc` the stride of `out`'s rows; with
/// `fused.gelu`, then the GELU of those columns, a group of rows at a time while in cache.
///
/// # Safety
/// With [`Start::Add`], those values of `out` are initialized. With [`Start::Write`] they need
/// not be, and all of them are written.
#[allow(clippy::too_many_arguments)]
unsafe fn product(
    a: &[u32],
    a_scales: &[RowScale],
    w: &QuantizedWeight,
    start: Start,
    fused: Fused,
    panels: std::ops::Range<usize>,
    out: &mut [MaybeUninit<f32>],
    ldc: usize,
) {
    let rows = a_scales.len();
    let first = panels.start;
    let k_quads = w.k_quads;
    // Rows walked in groups whose activations stay in L2 while each panel is reused across them.
    let group = (128 * 1024 / (4 * k_quads.max(1))).max(MR) / MR * MR;
    let mut r0 = 0;
    while r0 < rows {
        let r1 = (r0 + group).min(rows);
        for panel in panels.clone() {
            let j = panel * PANEL;
            let cols = (w.n - j).min(PANEL);
            let b = &w.quads[panel * k_quads * PANEL..(panel + 1) * k_quads * PANEL];
            let mut bias = [0f32; PANEL];
            if let Some(all) = fused.bias {
                bias[..cols].copy_from_slice(&all[j..j + cols]);
            }
            let mut r = r0;
            while r < r1 {
                let m = (r1 - r).min(MR);
                let tile = Tile {
                    a: &a[r * k_quads..(r + m) * k_quads],
                    a_scales: &a_scales[r..r + m],
                    k_quads,
                    b,
                    w_scales: &w.scales[j..j + cols],
                    w_sums: &w.sums[j..j + PANEL],
                    start,
                    bias: &bias,
                };
                let c = &mut out[r * ldc + (j - first * PANEL)..];
                // SAFETY: with `Add`, the tile's outputs are initialized (this function's
                // contract).
                unsafe {
                    match w.kernel {
                        #[cfg(target_arch = "x86_64")]
                        Kernel::Avx2 | Kernel::Vnni => x86::tile(w.kernel, &tile, c, ldc),
                        _ => portable_tile(&tile, c, ldc),
                    }
                }
                r += m;
            }
        }
        if fused.gelu {
            let width = (panels.end * PANEL).min(w.n) - first * PANEL;
            for r in r0..r1 {
                let row = &mut out[r * ldc..r * ldc + width];
                // SAFETY: every panel has just written (or added to) these columns of the
                // group's rows; `MaybeUninit<f32>` has the layout of `f32`.
                let row = unsafe { &mut *(row as *mut [MaybeUninit<f32>] as *mut [f32]) };
                super::math::gelu_erf(row);
            }
        }
        r0 = r1;
    }
}

/// Up to [`MR`] rows of quantized activations against one panel.
struct Tile<'a> {
    /// rows × `k_quads` lanes of four `u8`.
    a: &'a [u32],
    a_scales: &'a [RowScale],
    k_quads: usize,
    /// `k_quads` × [`PANEL`] lanes of four `i8`.
    b: &'a [u32],
    /// The panel's column scales, one per real column (`cols` = its length).
    w_scales: &'a [f32],
    /// The panel's column sums, [`PANEL`] of them.
    w_sums: &'a [i32],
    /// Whether the product is added to the output or written (with `bias`).
    start: Start,
    /// The panel's bias (zeros past its columns, or all zeros without one), for [`Start::Write`].
    bias: &'a [f32; PANEL],
}

/// One output value from its exact integer sum: the same operations, in the same order, as the
/// SIMD epilogue (an integer correction for the zero point, then two float multiplies; no FMA).
#[inline(always)]
fn dequantize(acc: i32, a: RowScale, w_sum: i32, w_scale: f32) -> f32 {
    let exact = acc.wrapping_sub(a.zero.wrapping_mul(w_sum));
    exact as f32 * (a.scale * w_scale)
}

/// The portable kernel: the same integer sums as the SIMD ones, one output at a time.
///
/// # Safety
/// With [`Start::Add`], the tile's outputs in `c` are initialized.
unsafe fn portable_tile(t: &Tile, c: &mut [MaybeUninit<f32>], ldc: usize) {
    for (r, &scale) in t.a_scales.iter().enumerate() {
        let a = &t.a[r * t.k_quads..(r + 1) * t.k_quads];
        for (col, &w_scale) in t.w_scales.iter().enumerate() {
            let mut acc = 0i32;
            for (p, &av) in a.iter().enumerate() {
                let w = t.b[p * PANEL + col].to_le_bytes();
                let x = av.to_le_bytes();
                for (x, w) in x.into_iter().zip(w) {
                    acc += x as i32 * w as i8 as i32;
                }
            }
            let value = dequantize(acc, scale, t.w_sums[col], w_scale);
            let o = &mut c[r * ldc + col];
            let old = match t.start {
                // SAFETY: initialized (this function's contract).
                Start::Add => unsafe { o.assume_init() },
                Start::Write => t.bias[col],
            };
            o.write(old + value);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use std::mem::MaybeUninit;

    use super::{Kernel, RowScale, Start, Tile, MR, PANEL};

    /// Row stride of the AMX block the epilogue reads.
    const TILE_STRIDE: usize = super::amx::BLOCK;

    /// Whether the AVX-512 epilogue of the VNNI and AMX kernels runs here.
    pub(super) fn avx512() -> bool {
        crate::cpu::enabled().avx512
    }

    /// [`super::dequantize_tile`] 16 lanes at a time: the operations of [`kernel_vnni`]'s
    /// epilogue (the bias its `old`), so the same bits.
    pub(super) fn dequantize_tile(
        tile: &[i32],
        a_scales: &[RowScale],
        w_scales: &[f32],
        w_sums: &[i32],
        bias: &[f32; PANEL],
        out: &mut [MaybeUninit<f32>],
        ldc: usize,
    ) {
        let (m, cols) = (a_scales.len(), w_scales.len());
        assert!(
            crate::cpu::detected().avx512,
            "int8 AVX-512 epilogue on a CPU without AVX-512"
        );
        assert!(m <= 16 && cols <= PANEL && w_sums.len() >= PANEL);
        assert!(m == 0 || out.len() >= (m - 1) * ldc + cols);
        assert!(m == 0 || tile.len() >= (m - 1) * TILE_STRIDE + PANEL);
        // SAFETY: AVX-512 F is present and the bounds hold (asserted above).
        unsafe { dequantize_tile_avx512(tile, a_scales, w_scales, w_sums, bias, out, ldc) }
    }

    /// # Safety
    /// AVX-512 F; `a_scales.len()` ≤ 16, `w_scales.len()` ≤ 16 ≤ `w_sums.len()`, `tile`
    /// reaches (rows − 1) · [`TILE_STRIDE`] + 16 and `out` (rows − 1) · ldc + cols.
    #[target_feature(enable = "avx512f")]
    unsafe fn dequantize_tile_avx512(
        tile: &[i32],
        a_scales: &[RowScale],
        w_scales: &[f32],
        w_sums: &[i32],
        bias: &[f32; PANEL],
        out: &mut [MaybeUninit<f32>],
        ldc: usize,
    ) {
        let panel = Panel16::new(w_scales, w_sums);
        // SAFETY: `bias` holds 16 floats; an unaligned load.
        let b = unsafe { _mm512_loadu_ps(bias.as_ptr()) };
        for (r, &s) in a_scales.iter().enumerate() {
            // SAFETY: row r < m of the tile: 16 ints inside `tile` (the caller's contract).
            let sum = unsafe { _mm512_loadu_si512(tile.as_ptr().add(r * TILE_STRIDE).cast()) };
            let value = panel.dequantize(sum, s);
            let row = out[r * ldc..r * ldc + panel.cols]
                .as_mut_ptr()
                .cast::<f32>();
            // SAFETY: the mask covers the row's `cols` values only (masked lanes are not
            // written); `MaybeUninit<f32>` has the layout of `f32`.
            unsafe { _mm512_mask_storeu_ps(row, panel.mask, _mm512_add_ps(b, value)) };
        }
    }

    /// The bounds every kernel's raw loads and stores rely on, checked once per tile.
    fn check(t: &Tile, c: &[MaybeUninit<f32>], ldc: usize) -> usize {
        let m = t.a_scales.len();
        let cols = t.w_scales.len();
        assert!((1..=MR).contains(&m) && (1..=PANEL).contains(&cols));
        assert!(t.w_sums.len() >= PANEL && c.len() >= (m - 1) * ldc + cols);
        assert!(t.a.len() >= m * t.k_quads && t.b.len() >= t.k_quads * PANEL);
        m
    }

    /// [`super::portable_tile`] on AVX2 (`kernel` Avx2, for weights quantized to ±64) or on
    /// AVX-512 VNNI (`kernel` Vnni).
    ///
    /// # Safety
    /// With [`Start::Add`], the tile's outputs in `c` are initialized.
    pub(super) unsafe fn tile(kernel: Kernel, t: &Tile, c: &mut [MaybeUninit<f32>], ldc: usize) {
        let detected = crate::cpu::detected();
        let m = check(t, c, ldc);
        // Each arm: the kernel's instructions are present (asserted), `check` asserted the
        // bounds it relies on, and initialization is the caller's contract.
        macro_rules! rows {
            ($kernel:ident) => {
                // SAFETY: as said above.
                unsafe {
                    match m {
                        6 => $kernel::<6>(t, c, ldc),
                        5 => $kernel::<5>(t, c, ldc),
                        4 => $kernel::<4>(t, c, ldc),
                        3 => $kernel::<3>(t, c, ldc),
                        2 => $kernel::<2>(t, c, ldc),
                        _ => $kernel::<1>(t, c, ldc),
                    }
                }
            };
        }
        match kernel {
            Kernel::Avx2 => {
                assert!(detected.avx2, "int8 AVX2 kernel on a CPU without AVX2");
                rows!(kernel_avx2)
            }
            Kernel::Vnni => {
                assert!(
                    detected.avx512_vnni,
                    "int8 VNNI kernel on a CPU without AVX-512 VNNI"
                );
                rows!(kernel_vnni)
            }
            other => unreachable!("no x86 tile kernel for {other:?}"),
        }
    }

    /// Prefetches the output lines a tile ends on while it computes: otherwise the epilogue
    /// waits on memory for each of them (a fifth of the time, measured with perf).
    #[inline(always)]
    fn prefetch_rows<const R: usize>(c: &[MaybeUninit<f32>], ldc: usize) {
        for r in 0..R {
            let row = c[r * ldc..].as_ptr();
            // A prefetch is only a hint and never faults, whatever the address. Row r starts
            // inside `c`; its 16th value may lie past a ragged panel's end, so that address is
            // computed with `wrapping_add`, which is defined for any offset.
            // SAFETY: SSE is part of x86-64; a prefetch reads nothing.
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(row.cast());
                _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(15).cast());
            }
        }
    }

    /// R rows × one panel on AVX-512 VNNI: per k-quad one `vpdpbusd` per row (u8 activations ×
    /// i8 weights, 64 products summed by fours into the panel's 16 i32 lanes, no saturation), then
    /// the epilogue of [`kernel`] on 16 lanes: the same operations, so the same bits.
    ///
    /// # Safety
    /// AVX-512 F, BW and VNNI; the bounds of [`check`] for R rows; with [`Start::Add`], the
    /// tile's outputs initialized.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn kernel_vnni<const R: usize>(t: &Tile, c: &mut [MaybeUninit<f32>], ldc: usize) {
        let k_quads = t.k_quads;
        let ap = t.a.as_ptr();
        let bp = t.b.as_ptr();
        prefetch_rows::<R>(c, ldc);
        let mut acc = [_mm512_setzero_si512(); R];
        for p in 0..k_quads {
            // SAFETY: p < k_quads: the 16 lanes (64 bytes) from p·16 lie inside `b`.
            let b = unsafe { _mm512_loadu_si512(bp.add(p * PANEL).cast()) };
            for (r, acc_r) in acc.iter_mut().enumerate() {
                // SAFETY: r < R and p < k_quads: the lane lies inside `a`.
                let lane = unsafe { *ap.add(r * k_quads + p) } as i32;
                *acc_r = _mm512_dpbusd_epi32(*acc_r, _mm512_set1_epi32(lane), b);
            }
        }
        let panel = Panel16::new(t.w_scales, t.w_sums);
        // SAFETY: `t.bias` holds 16 floats; an unaligned load.
        let bias = unsafe { _mm512_loadu_ps(t.bias.as_ptr()) };
        for (r, &sum) in acc.iter().enumerate() {
            let value = panel.dequantize(sum, t.a_scales[r]);
            let row = c[r * ldc..r * ldc + panel.cols].as_mut_ptr().cast::<f32>();
            // SAFETY: the mask covers the row's `cols` floats only; masked lanes are neither read
            // nor written; with `Add` those floats are initialized (the caller's contract).
            unsafe {
                let old = match t.start {
                    Start::Add => _mm512_maskz_loadu_ps(panel.mask, row),
                    Start::Write => bias,
                };
                _mm512_mask_storeu_ps(row, panel.mask, _mm512_add_ps(old, value));
            }
        }
    }

    /// One panel's column constants for the AVX-512 epilogues (VNNI's and the AMX tiles'), which
    /// must compute the same bits.
    struct Panel16 {
        cols: usize,
        scales: __m512,
        sums: __m512i,
        mask: __mmask16,
    }

    impl Panel16 {
        /// `w_scales`: the panel's real columns (at most 16); `w_sums`: at least 16.
        #[target_feature(enable = "avx512f")]
        fn new(w_scales: &[f32], w_sums: &[i32]) -> Self {
            let cols = w_scales.len();
            assert!(cols <= PANEL && w_sums.len() >= PANEL);
            let mut scales = [0f32; PANEL];
            scales[..cols].copy_from_slice(w_scales);
            let mut sums = [0i32; PANEL];
            sums.copy_from_slice(&w_sums[..PANEL]);
            Self {
                cols,
                // SAFETY: both arrays hold 16 values; unaligned loads.
                scales: unsafe { _mm512_loadu_ps(scales.as_ptr()) },
                // SAFETY: as above.
                sums: unsafe { _mm512_loadu_si512(sums.as_ptr().cast()) },
                mask: if cols == PANEL {
                    !0
                } else {
                    (1u16 << cols) - 1
                },
            }
        }

        /// 16 outputs from their exact integer sums: [`super::dequantize`] lane-wise (an
        /// integer correction for the zero point, then two float multiplies; no FMA).
        #[target_feature(enable = "avx512f")]
        fn dequantize(&self, sum: __m512i, s: RowScale) -> __m512 {
            let zero = _mm512_mullo_epi32(_mm512_set1_epi32(s.zero), self.sums);
            let exact = _mm512_sub_epi32(sum, zero);
            _mm512_mul_ps(
                _mm512_cvtepi32_ps(exact),
                _mm512_mul_ps(_mm512_set1_ps(s.scale), self.scales),
            )
        }
    }

    /// R rows × one panel on AVX2: per k-quad, per row, `vpmaddubsw` (u8 activations × i8
    /// weights of at most 64 in magnitude: each i16 pair sum at most 2 · 255 · 64 = 32,640, so
    /// none saturates) then `vpmaddwd` by ones (the pairs summed into the quad's `i32`): the sums
    /// of `vpdpbusd`. Then the epilogue, the same operations as [`super::dequantize`].
    ///
    /// # Safety
    /// AVX2; the bounds of [`check`] for R rows; with [`Start::Add`], the tile's outputs
    /// initialized.
    #[target_feature(enable = "avx2")]
    unsafe fn kernel_avx2<const R: usize>(t: &Tile, c: &mut [MaybeUninit<f32>], ldc: usize) {
        let k_quads = t.k_quads;
        let ap = t.a.as_ptr();
        let bp = t.b.as_ptr();
        prefetch_rows::<R>(c, ldc);
        let ones = _mm256_set1_epi16(1);
        let mut acc = [[_mm256_setzero_si256(); 2]; R];
        for p in 0..k_quads {
            // SAFETY: p < k_quads, so the 16 lanes (64 bytes) from p·16 lie inside `b`
            // (k_quads × 16 lanes); unaligned loads of 8 columns' quads each.
            let (b0, b1) = unsafe {
                let base = bp.add(p * PANEL);
                (
                    _mm256_loadu_si256(base.cast()),
                    _mm256_loadu_si256(base.add(8).cast()),
                )
            };
            for (r, acc_r) in acc.iter_mut().enumerate() {
                // SAFETY: r < R and p < k_quads: the lane lies inside `a` (R × k_quads lanes).
                let lane = unsafe { *ap.add(r * k_quads + p) } as i32;
                let av = _mm256_set1_epi32(lane);
                let s0 = _mm256_madd_epi16(_mm256_maddubs_epi16(av, b0), ones);
                let s1 = _mm256_madd_epi16(_mm256_maddubs_epi16(av, b1), ones);
                acc_r[0] = _mm256_add_epi32(acc_r[0], s0);
                acc_r[1] = _mm256_add_epi32(acc_r[1], s1);
            }
        }
        let cols = t.w_scales.len();
        let mut w_scales = [0f32; PANEL];
        w_scales[..cols].copy_from_slice(t.w_scales);
        for (r, acc_r) in acc.iter().enumerate() {
            let s = t.a_scales[r];
            let a_scale = _mm256_set1_ps(s.scale);
            let zero = _mm256_set1_epi32(s.zero);
            for (v, &sum) in acc_r.iter().enumerate() {
                let c0 = v * 8;
                if c0 >= cols {
                    break;
                }
                // SAFETY: `w_scales` and `t.bias` hold 16 floats and `t.w_sums` at least 16 ints
                // (checked), and c0 + 8 <= 16; unaligned loads.
                let (ws, w_sum, bias) = unsafe {
                    (
                        _mm256_loadu_ps(w_scales.as_ptr().add(c0)),
                        _mm256_loadu_si256(t.w_sums.as_ptr().add(c0).cast()),
                        _mm256_loadu_ps(t.bias.as_ptr().add(c0)),
                    )
                };
                let exact = _mm256_sub_epi32(sum, _mm256_mullo_epi32(zero, w_sum));
                let value = _mm256_mul_ps(_mm256_cvtepi32_ps(exact), _mm256_mul_ps(a_scale, ws));
                let valid = (cols - c0).min(8);
                let row = &mut c[r * ldc + c0..r * ldc + c0 + valid];
                if valid == 8 {
                    let row = row.as_mut_ptr().cast::<f32>();
                    // SAFETY: `row` is exactly 8 floats (`MaybeUninit<f32>` has the layout of
                    // `f32`); unaligned load and store; with `Add` they are initialized (the
                    // caller's contract).
                    unsafe {
                        let old = match t.start {
                            Start::Add => _mm256_loadu_ps(row),
                            Start::Write => bias,
                        };
                        _mm256_storeu_ps(row, _mm256_add_ps(old, value));
                    }
                } else {
                    let mut lanes = [0f32; 8];
                    // SAFETY: `lanes` is 8 floats; an unaligned store.
                    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), value) };
                    for (i, (o, l)) in row.iter_mut().zip(lanes).enumerate() {
                        let old = match t.start {
                            // SAFETY: initialized (the caller's contract).
                            Start::Add => unsafe { o.assume_init() },
                            Start::Write => t.bias[c0 + i],
                        };
                        o.write(old + l);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::pseudo_random;
    use super::*;

    /// The product through the portable kernel only, on weights quantized for any kernel.
    fn portable_matmul(x: &[f32], rows: usize, w: &QuantizedWeight, out: &mut [f32]) {
        let portable = QuantizedWeight {
            kernel: Kernel::Portable,
            ..w.clone()
        };
        let (scales, a) = quantize_rows_quads(x, rows, w.k, w.k_quads, 1);
        let nothing = Fused::NONE;
        let panels = 0..w.n.div_ceil(PANEL);
        // SAFETY: `out` is initialized, as `Add` needs.
        unsafe {
            product(
                &a,
                &scales,
                &portable,
                Start::Add,
                nothing,
                panels,
                as_uninit(out),
                w.n,
            )
        };
    }

    #[test]
    fn quantization_rounds_to_nearest_even_and_keeps_zero_exact() {
        assert_eq!(round(2.5), 2.0);
        assert_eq!(round(3.5), 4.0);
        assert_eq!(round(-1.4), -1.0);
        // [-1, 1.55]: 255 steps of 0.01, zero point 100.
        let s = RowScale::of(&[0.5, -1.0, 1.55]);
        assert!((s.scale - 0.01).abs() < 1e-7, "{s:?}");
        assert_eq!(s.zero, 100);
        assert_eq!(s.quantize(-1.0), 0);
        assert_eq!(s.quantize(1.55), 255);
        assert_eq!(s.quantize(0.0), 100);
        assert_eq!(s.quantize(0.5), 150);
        // An all-positive row still holds 0 in its range.
        assert_eq!(RowScale::of(&[2.0, 4.0]).zero, 0);
        // Rows of zeros, or with an infinity, quantize to nothing rather than to NaN.
        assert_eq!(RowScale::of(&[0.0, 0.0]).scale, 0.0);
        assert_eq!(RowScale::of(&[1.0, f32::INFINITY]).scale, 0.0);
        let w = QuantizedWeight::quantize(&[0.0; 6], 2, 3);
        let mut out = vec![1.0; 2];
        matmul_bt(&[1.0, 2.0, 3.0], 1, &w, &mut out);
        assert_eq!(out, vec![1.0, 1.0]);
    }

    /// The int8 product by its definition, in f64 from the quantized integers: each row of `x`
    /// quantized by [`RowScale`] (its rule is tested above), each weight row symmetric to
    /// ±`w_max` (written out here), the integer dot products exact, then scaled back and the
    /// bias added.
    /// Returns each output and the size of its terms (`|bias| + Σ |products|`), which bounds
    /// the f32 rounding a kernel's scale-back may add.
    fn naive(
        x: &[f32],
        rows: usize,
        w: &[f32],
        (n, k): (usize, usize),
        bias: Option<&[f32]>,
        w_max: f32,
    ) -> Vec<(f64, f64)> {
        let weights: Vec<(f64, Vec<i64>)> = w
            .chunks(k)
            .map(|row| {
                let amax = row.iter().fold(0f32, |m, v| m.max(v.abs()));
                if amax == 0.0 {
                    return (0.0, vec![0; k]);
                }
                let q = row
                    .iter()
                    .map(|&v| (v * (w_max / amax)).round_ties_even().clamp(-w_max, w_max) as i64)
                    .collect();
                ((amax / w_max) as f64, q)
            })
            .collect();
        let mut out = Vec::with_capacity(rows * n);
        for xr in x.chunks(k).take(rows) {
            let s = RowScale::of(xr);
            let qa: Vec<i64> = xr
                .iter()
                .map(|&v| s.quantize(v) as i64 - s.zero as i64)
                .collect();
            for (j, (w_scale, qw)) in weights.iter().enumerate() {
                let dot: i64 = qa.iter().zip(qw).map(|(a, b)| a * b).sum();
                let size: i64 = qa.iter().zip(qw).map(|(a, b)| (a * b).abs()).sum();
                let b = bias.map_or(0.0, |b| b[j] as f64);
                let scale = s.scale as f64 * w_scale;
                out.push((b + scale * dot as f64, b.abs() + scale * size as f64));
            }
        }
        out
    }

    fn gelu(x: f64) -> f64 {
        0.5 * x * (1.0 + candle_core::cpu::erf::erf_f64(x / std::f64::consts::SQRT_2))
    }

    /// One kernel against [`naive`]: ragged panels and blocks, odd k, every row count up to past
    /// [`MR`], row counts on both sides of the AMX row split, weights past the L2 share (AMX
    /// takes them in groups), with and without bias and fused GELU, and accumulating into `out`
    /// ([`matmul_bt`]).
    fn check_against_naive(kernel: Kernel) {
        // Two threads, whatever the machine: rows from 64 up take the row split (written once
        // by `linear`, added by `matmul_bt`), fewer the column split.
        on_two_threads(|| check_against_naive_here(kernel));
    }

    /// `f` on a pool of two threads.
    fn on_two_threads(f: impl FnOnce() + Send) {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        pool.install(f);
    }

    fn check_against_naive_here(kernel: Kernel) {
        for (rows, k, n) in [
            (1, 5, 1),
            (3, 37, 70),
            (7, 64, 16),
            (13, 383, 33),
            (200, 96, 50),
            (70, 385, 100),
            (70, 768, 1400),
        ] {
            // Skewed activations (as after a GELU) exercise the zero point.
            let x: Vec<f32> = pseudo_random(rows * k, rows as u32)
                .iter()
                .map(|v| v * 2.0 + 0.7)
                .collect();
            let w = pseudo_random(n * k, k as u32);
            let bias = pseudo_random(n, 3);
            let q = QuantizedWeight::quantize_for(&w, n, k, kernel);
            for (bias, epilogue) in [(Some(&bias[..]), Epilogue::GeluErf), (None, Epilogue::None)] {
                let want = naive(&x, rows, &w, (n, k), bias, kernel.w_max());
                let got = linear(&x, rows, &q, bias, epilogue);
                for (i, (g, &(v, size))) in got.iter().zip(&want).enumerate() {
                    let (v, slack) = match epilogue {
                        Epilogue::GeluErf => (gelu(v), 2e-5 * size + 1e-6),
                        Epilogue::None => (v, 1e-5 * size + 1e-6),
                    };
                    assert!(
                        (*g as f64 - v).abs() <= slack,
                        "{kernel:?} ({rows},{k},{n}) {epilogue:?} [{i}]: {g} vs {v}"
                    );
                }
            }
            // matmul_bt adds the product to what `out` holds.
            let want = naive(&x, rows, &w, (n, k), Some(&bias), kernel.w_max());
            let mut got: Vec<f32> = (0..rows).flat_map(|_| bias.clone()).collect();
            matmul_bt(&x, rows, &q, &mut got);
            for (i, (g, &(v, size))) in got.iter().zip(&want).enumerate() {
                assert!(
                    (*g as f64 - v).abs() <= 1e-5 * size + 1e-6,
                    "{kernel:?} ({rows},{k},{n}) accumulating [{i}]: {g} vs {v}"
                );
            }
        }
    }

    #[test]
    fn portable_kernel_matches_naive() {
        check_against_naive(Kernel::Portable);
    }

    #[test]
    #[cfg_attr(
        not(fathom_built_on = "avx2"),
        ignore = "needs AVX2 and FMA, which the CPU these tests were built on lacks"
    )]
    fn avx2_kernel_matches_naive() {
        crate::cpu::require(|c| c.avx2, "AVX2 int8");
        check_against_naive(Kernel::Avx2);
    }

    #[test]
    #[cfg_attr(
        not(fathom_built_on = "avx512_vnni"),
        ignore = "needs AVX512-VNNI, which the CPU these tests were built on lacks"
    )]
    fn vnni_kernel_matches_naive() {
        crate::cpu::require(|c| c.avx512_vnni, "AVX512-VNNI int8");
        check_against_naive(Kernel::Vnni);
    }

    #[test]
    #[cfg_attr(
        not(fathom_built_on = "amx_int8"),
        ignore = "needs AMX-INT8, which the CPU these tests were built on lacks"
    )]
    fn amx_kernel_matches_naive() {
        crate::cpu::require(|c| c.amx_int8, "AMX int8");
        check_against_naive(Kernel::Amx);
    }

    /// The kernels this CPU runs.
    fn kernels() -> Vec<Kernel> {
        [
            (Kernel::Portable, true),
            (Kernel::Avx2, avx2()),
            (Kernel::Vnni, vnni()),
            (Kernel::Amx, amx::int8()),
        ]
        .into_iter()
        .filter_map(|(kernel, runs)| runs.then_some(kernel))
        .collect()
    }

    #[test]
    fn fused_bias_and_gelu_give_the_same_bits_on_every_kernel() {
        on_two_threads(fused_bias_and_gelu_give_the_same_bits_on_every_kernel_here);
    }

    fn fused_bias_and_gelu_give_the_same_bits_on_every_kernel_here() {
        // Row counts on both sides of the AMX row split, ragged blocks, odd k, and weights over
        // the L2 share, which AMX takes in more than one group of column blocks.
        for (rows, k, n) in [(3, 37, 70), (200, 96, 50), (70, 385, 100), (70, 768, 1400)] {
            let x: Vec<f32> = pseudo_random(rows * k, 9).iter().map(|v| v + 0.3).collect();
            let w = pseudo_random(n * k, 10);
            let bias = pseudo_random(n, 11);
            for (bias, epilogue) in [(Some(&bias[..]), Epilogue::GeluErf), (None, Epilogue::None)] {
                // Each kernel against the portable one on the same weights (the AVX2 kernel's
                // are quantized to ±64, the others' to ±127).
                let portable = QuantizedWeight::quantize_for(&w, n, k, Kernel::Portable);
                let want = linear(&x, rows, &portable, bias, epilogue);
                let avx2_weights = QuantizedWeight::quantize_for(&w, n, k, Kernel::Avx2);
                let want_avx2 = linear(
                    &x,
                    rows,
                    &QuantizedWeight {
                        kernel: Kernel::Portable,
                        ..avx2_weights
                    },
                    bias,
                    epilogue,
                );
                for kernel in kernels() {
                    let q = QuantizedWeight::quantize_for(&w, n, k, kernel);
                    let got = linear(&x, rows, &q, bias, epilogue);
                    let want = if kernel == Kernel::Avx2 {
                        &want_avx2
                    } else {
                        &want
                    };
                    assert_eq!(&got, want, "({rows},{k},{n}) {kernel:?} {epilogue:?}");
                }
            }
        }
        eprintln!("int8 kernels on this CPU: {:?}", kernels());
    }

    #[test]
    fn int8_matmul_is_within_quantization_error_and_simd_equals_portable() {
        on_two_threads(int8_matmul_is_within_quantization_error_and_simd_equals_portable_here);
    }

    fn int8_matmul_is_within_quantization_error_and_simd_equals_portable_here() {
        // Odd k (a half-empty last pair), ragged panels, every row count up
        // to past MR, and enough rows to take the row split as well as the column split.
        for (rows, k, n) in [
            (1, 5, 1),
            (3, 37, 70),
            (7, 64, 16),
            (13, 383, 33),
            (200, 96, 50),
            (70, 1536, 100),
        ] {
            // Skewed activations (as after a GELU) exercise the zero point.
            let x: Vec<f32> = pseudo_random(rows * k, rows as u32)
                .iter()
                .map(|v| v * 2.0 + 0.7)
                .collect();
            let w = pseudo_random(n * k, k as u32);
            let bias = pseudo_random(n, 3);
            let start: Vec<f32> = (0..rows).flat_map(|_| bias.clone()).collect();
            let best = QuantizedWeight::quantize(&w, n, k);
            let mut got = start.clone();
            matmul_bt(&x, rows, &best, &mut got);
            // Every kernel this CPU runs gives the portable kernel's bits on its weights.
            for kernel in kernels() {
                let q = QuantizedWeight::quantize_for(&w, n, k, kernel);
                let mut other = start.clone();
                matmul_bt(&x, rows, &q, &mut other);
                let mut portable = start.clone();
                portable_matmul(&x, rows, &q, &mut portable);
                assert_eq!(
                    other, portable,
                    "({rows},{k},{n}): {kernel:?} and portable differ"
                );
                if kernel == best.kernel {
                    assert_eq!(got, other, "({rows},{k},{n}): best is not {kernel:?}");
                }
            }
            for r in 0..rows {
                let xr = &x[r * k..(r + 1) * k];
                let (lo, hi) = xr
                    .iter()
                    .fold((0f32, 0f32), |(l, h), &v| (l.min(v), h.max(v)));
                let x_step = (hi - lo) as f64 / 255.0;
                for j in 0..n {
                    let wj = &w[j * k..(j + 1) * k];
                    let w_step = wj.iter().fold(0f32, |m, v| m.max(v.abs())) as f64
                        / best.kernel.w_max() as f64;
                    let exact: f64 = bias[j] as f64
                        + xr.iter()
                            .zip(wj)
                            .map(|(a, b)| *a as f64 * *b as f64)
                            .sum::<f64>();
                    // Each product is off by at most half a step of either factor (times the
                    // other; the zero point's rounding adds up to half a step more to x),
                    // summed over k: the bound of round-to-nearest quantization.
                    let bound: f64 = xr
                        .iter()
                        .zip(wj)
                        .map(|(a, b)| {
                            x_step * (*b as f64).abs() + 0.5 * w_step * ((*a as f64).abs() + x_step)
                        })
                        .sum::<f64>();
                    let err = (got[r * n + j] as f64 - exact).abs();
                    assert!(
                        err <= bound + 1e-5,
                        "({rows},{k},{n}) [{r},{j}]: {} vs {exact} (bound {bound})",
                        got[r * n + j]
                    );
                    // And far inside it on average: a loose bound cannot hide a wrong sum.
                    assert!(err <= 0.05 * xr.iter().map(|v| v.abs()).sum::<f32>() as f64 + 1e-3);
                }
            }
        }
    }
}
