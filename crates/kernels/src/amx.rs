//! Intel AMX (Advanced Matrix Extensions: Sapphire Rapids and later Xeons): eight tile
//! registers of 16 rows × 64 bytes and one instruction that multiplies two of them into a third —
//! `tdpbusd` (u8 × i8 → i32, 16 × 16 × 64 products) for [`int8`](super::int8) and `tdpbf16ps`
//! (bf16 × bf16 → f32, 16 × 16 × 32) for [`bf16`](super::bf16). One such instruction does the
//! work of 16 AVX-512 VNNI ones; on a 2-core Xeon VM a loop of them ran ~670 G int8
//! multiply-adds per second per core from L1, where the VNNI kernel's linears averaged ~55 G in a
//! forward pass (all-MiniLM-L6-v2 on SciFact, `FATHOM_PROFILE=1`).
//!
//! Rust has no stable AMX intrinsics, so the instructions used (`ldtilecfg`, `tilezero`,
//! `tileloadd`, the two products, `tilestored`, `tilerelease`) are inline assembly (stable
//! `asm!`); the tile registers are named in the instruction text, invisible to the compiler,
//! which is sound because no compiled code uses them.
//!
//! Linux hands out tile state only on request (`arch_prctl(ARCH_REQ_XCOMP_PERM,
//! XFEATURE_XTILEDATA)`, kernel 5.16+); [`crate::cpu`] asks once per process, and [`int8`] and
//! [`bf16`] say no where the CPU, the kernel or `FATHOM_AMX=0` / `FATHOM_CPU` says no. Elsewhere the callers keep
//! their AVX-512 and AVX2 kernels.
//!
//! Every kernel here computes one block of 32 rows × 32 columns: four accumulator tiles
//! (tmm0..tmm3), two tiles of rows (tmm4, tmm5) and two of columns (tmm6, tmm7) loaded per step
//! of 64 bytes along k. Operands are padded by the callers to whole blocks and steps, so the
//! tile shape never changes and is configured once per [`Tiles`] guard.

use std::mem::MaybeUninit;
use std::ops::Range;

use rayon::prelude::*;

/// Rows (and columns) of one tile; a block is two tiles of rows by two of columns.
pub(super) const TILE: usize = 16;
/// Bytes of one tile row: one step along k (64 int8 values, or 32 bf16).
pub(super) const STEP_BYTES: usize = 64;
/// Rows and columns of one block.
pub(super) const BLOCK: usize = 2 * TILE;

/// Runs `product(rows, blocks, out, ldc)` in parallel over a rows × n output: `rows` (whole
/// blocks of 32, but for the last) against the column blocks `blocks` (32 columns each, the last
/// ragged), `out` starting at the first of those rows and columns with row stride `ldc`. The
/// rows are split across the threads where there are enough of them, else the columns (a short
/// query: each task then writes its own buffer, copied into `out` after). Every (row, column)
/// goes to exactly one call.
pub(super) fn for_blocks(
    rows: usize,
    n: usize,
    out: &mut [MaybeUninit<f32>],
    product: impl Fn(Range<usize>, Range<usize>, &mut [MaybeUninit<f32>], usize) + Sync,
) {
    assert_eq!(out.len(), rows * n, "amx: output is not rows × n");
    let threads = rayon::current_num_threads().max(1);
    let column_blocks = n.div_ceil(BLOCK);
    let row_blocks = rows.div_ceil(BLOCK);
    if row_blocks >= 2 * threads {
        let per_task = row_blocks.div_ceil(threads) * BLOCK;
        out.par_chunks_mut(per_task * n)
            .enumerate()
            .for_each(|(i, dst)| {
                let r0 = i * per_task;
                product(r0..r0 + dst.len() / n, 0..column_blocks, dst, n);
            });
    } else {
        let per_task = column_blocks.div_ceil(threads * 2).max(1) * BLOCK;
        let starts: Vec<usize> = (0..n).step_by(per_task).collect();
        let parts: Vec<Vec<MaybeUninit<f32>>> = starts
            .par_iter()
            .map(|&j0| {
                let width = per_task.min(n - j0);
                let mut dst = vec![MaybeUninit::new(0f32); rows * width];
                let blocks = j0 / BLOCK..(j0 + width).div_ceil(BLOCK);
                product(0..rows, blocks, &mut dst, width);
                dst
            })
            .collect();
        for (&j0, dst) in starts.iter().zip(&parts) {
            let width = dst.len() / rows.max(1);
            for (r, src) in dst.chunks(width.max(1)).enumerate() {
                out[r * n + j0..r * n + j0 + width].copy_from_slice(src);
            }
        }
    }
}

/// Weight bytes a task keeps in its core's L2 (2 MB a core on Sapphire Rapids) while it sweeps
/// them over its rows: the rest holds the rows and the output.
const L2_WEIGHT_BYTES: usize = 1 << 20;

/// Calls `f(r0, block)` for every 32-row block `r0` below `rows` and every column block in
/// `blocks`, in an order that reads each weight once from memory: the column blocks in groups
/// of about [`L2_WEIGHT_BYTES`] of weights (`block_bytes` each), each group swept over all the
/// rows before the next. Row block by row block over all the columns, a 768 × 3072 bf16 weight
/// (4.7 MB, more than L2) came from L3 again for every 32 rows.
pub(super) fn in_cache_order(
    rows: usize,
    blocks: Range<usize>,
    block_bytes: usize,
    mut f: impl FnMut(usize, usize),
) {
    let group = (L2_WEIGHT_BYTES / block_bytes.max(1)).max(1);
    let mut start = blocks.start;
    while start < blocks.end {
        let end = (start + group).min(blocks.end);
        for r0 in (0..rows).step_by(BLOCK) {
            for block in start..end {
                f(r0, block);
            }
        }
        start = end;
    }
}

/// What an AMX epilogue does besides finishing the products: each output is written once, as
/// `bias + value` (so whatever the output held is overwritten), then the activation.
#[derive(Clone, Copy)]
pub(super) struct Fused<'a> {
    pub(super) bias: Option<&'a [f32]>,
    pub(super) gelu: bool,
}

impl Fused<'_> {
    /// No bias, no activation.
    pub(super) const NONE: Self = Self {
        bias: None,
        gelu: false,
    };
}

/// A rows × n output written by `write`, which must initialize every value (unchecked: hence
/// `unsafe`).
///
/// # Safety
/// `write` initializes all `rows · n` values of the slice it is given.
pub(super) unsafe fn written_by(
    rows: usize,
    n: usize,
    write: impl FnOnce(&mut [MaybeUninit<f32>]),
) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows * n);
    write(&mut out.spare_capacity_mut()[..rows * n]);
    // SAFETY: the caller guarantees `write` initialized all rows × n values.
    unsafe { out.set_len(rows * n) };
    out
}

/// GELU over the block an epilogue has just written: rows `rows` of `out` (row stride `ldc`),
/// output columns `j..j + 32` below `n`, which sit at `j − first` in `out`.
///
/// # Safety
/// Those values are initialized.
pub(super) unsafe fn gelu_block(
    out: &mut [MaybeUninit<f32>],
    rows: Range<usize>,
    (j, n, first): (usize, usize, usize),
    ldc: usize,
) {
    if j >= n {
        return;
    }
    let cols = (n - j).min(BLOCK);
    for r in rows {
        let values = &mut out[r * ldc + j - first..r * ldc + j - first + cols];
        // SAFETY: initialized (the caller's contract); `MaybeUninit<f32>` has the layout of
        // `f32`.
        let values = unsafe { &mut *(values as *mut [MaybeUninit<f32>] as *mut [f32]) };
        super::math::gelu_erf(values);
    }
}

/// Whether the AMX int8 kernel runs here ([`crate::cpu::enabled`]).
pub(super) fn int8() -> bool {
    crate::cpu::enabled().amx_int8
}

/// Whether the AMX bf16 kernel runs here ([`crate::cpu::enabled`]).
pub(super) fn bf16() -> bool {
    crate::cpu::enabled().amx_bf16
}

/// The tiles configured on this thread for as long as the guard lives (released on drop). Not
/// `Send`: the configuration belongs to the thread that loaded it. Hold it only inside one
/// parallel task that does not itself wait on other tasks (rayon could otherwise run another
/// task on this thread in between).
pub(super) struct Tiles {
    /// Which products this CPU runs: each block function checks its own.
    int8: bool,
    bf16: bool,
    _not_send: std::marker::PhantomData<*const ()>,
}

/// `c` of one block: 32 × 32, row-major.
pub(super) type Block<T> = [T; BLOCK * BLOCK];

impl Tiles {
    /// Configures the tiles on this thread; `None` where neither AMX kernel runs.
    pub(super) fn new() -> Option<Self> {
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        {
            let cpu = crate::cpu::detected();
            if cpu.amx_int8 || cpu.amx_bf16 {
                x86::configure();
                return Some(Self {
                    int8: cpu.amx_int8,
                    bf16: cpu.amx_bf16,
                    _not_send: std::marker::PhantomData,
                });
            }
        }
        None
    }

    /// `c = a · b` over `steps` steps of 64 k's, u8 × i8 into i32 (`tdpbusd`). `a`: 32 rows of
    /// quads (four u8 of consecutive k's in a lane, the first in the low byte), row r at
    /// `a[r · lda ..]`. `b`: the block's two column tiles, each `steps` tiles of 16 rows
    /// (k-quads) × 16 columns (a lane of four i8 each), one after the other.
    pub(super) fn int8_block(
        &self,
        a: &[u32],
        lda: usize,
        b: [&[u32]; 2],
        steps: usize,
        c: &mut Block<i32>,
    ) {
        assert!(self.int8, "amx: tdpbusd on a CPU without AMX-INT8");
        self.block::<false>(a, lda, b, steps, c.as_mut_ptr().cast(), BLOCK);
    }

    /// `c = a · b` over `steps` steps of 32 k's, bf16 × bf16 into f32 (`tdpbf16ps`). `a`: 32
    /// rows of pairs (two bf16 of consecutive k's in a lane, the first in the low half), row r
    /// at `a[r · lda ..]`. `b`: the block's two column tiles, each `steps` tiles of 16 rows
    /// (k-pairs) × 16 columns (a lane of two bf16 each), one after the other. `c`: 32 rows of
    /// 32 values at row stride `ldc`.
    pub(super) fn bf16_block(
        &self,
        a: &[u32],
        lda: usize,
        b: [&[u32]; 2],
        steps: usize,
        c: &mut [f32],
        ldc: usize,
    ) {
        assert!(self.bf16, "amx: tdpbf16ps on a CPU without AMX-BF16");
        assert!(
            ldc >= BLOCK && c.len() >= (BLOCK - 1) * ldc + BLOCK,
            "amx: output shorter than a block at stride {ldc}"
        );
        self.block::<true>(a, lda, b, steps, c.as_mut_ptr().cast(), ldc);
    }

    /// Either product into 32 rows of 32 4-byte values at `c`, row stride `ldc` values.
    fn block<const BF16: bool>(
        &self,
        a: &[u32],
        lda: usize,
        b: [&[u32]; 2],
        steps: usize,
        c: *mut u8,
        ldc: usize,
    ) {
        let lanes = STEP_BYTES / 4;
        if steps > 0 {
            assert!(lda >= steps * lanes, "amx: row stride below {steps} steps");
            assert!(
                a.len() >= (BLOCK - 1) * lda + steps * lanes,
                "amx: rows shorter than {steps} steps"
            );
            assert!(
                b.iter().all(|b| b.len() >= steps * TILE * lanes),
                "amx: column tiles shorter than {steps} steps"
            );
        }
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        // SAFETY: the guard exists, so this thread's tiles are configured as `configure` sets
        // them (16 rows × 64 bytes each); every row the kernel loads lies inside `a` and the
        // two column slices (asserted above); both callers pass 32 rows of 32 4-byte values at
        // `c` with row stride `ldc` (a whole `Block`, or asserted in `bf16_block`).
        unsafe {
            x86::block::<BF16>(
                a.as_ptr().cast(),
                4 * lda,
                [b[0].as_ptr().cast(), b[1].as_ptr().cast()],
                steps,
                c,
                4 * ldc,
            )
        }
        #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
        let _ = (a, b, c, ldc);
    }
}

impl Drop for Tiles {
    fn drop(&mut self) {
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        x86::release();
    }
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod x86 {
    use std::arch::asm;

    use super::{STEP_BYTES, TILE};

    /// The one tile configuration (palette 1): tmm0..tmm7 all 16 rows × 64 bytes.
    #[repr(C, align(64))]
    struct Config {
        palette: u8,
        start_row: u8,
        reserved: [u8; 14],
        colsb: [u16; 16],
        rows: [u8; 16],
    }

    const CONFIG: Config = {
        let mut colsb = [0u16; 16];
        let mut rows = [0u8; 16];
        let mut t = 0;
        while t < 8 {
            colsb[t] = STEP_BYTES as u16;
            rows[t] = TILE as u8;
            t += 1;
        }
        Config {
            palette: 1,
            start_row: 0,
            reserved: [0; 14],
            colsb,
            rows,
        }
    };

    pub(super) fn configure() {
        // SAFETY: only called once `cpu::detected` found AMX-TILE and the kernel granted tile data;
        // `ldtilecfg` reads the 64 bytes of a valid palette-1 configuration.
        unsafe { asm!("ldtilecfg [{}]", in(reg) &CONFIG, options(nostack, readonly)) };
    }

    pub(super) fn release() {
        // SAFETY: `tilerelease` only returns the tile state to its initial (unconfigured) state.
        unsafe { asm!("tilerelease", options(nostack, nomem)) };
    }

    /// One block (see [`super::Tiles::int8_block`]); `BF16` picks `tdpbf16ps` over `tdpbusd`.
    ///
    /// # Safety
    /// Tiles configured by [`configure`] on this thread; 32 rows of `steps` · 64 bytes at
    /// stride `lda` from `a`, `steps` · 1024 bytes from each of `b`, and 32 rows of 128 bytes
    /// at stride `ldc` (bytes) at `c`.
    pub(super) unsafe fn block<const BF16: bool>(
        a: *const u8,
        lda: usize,
        b: [*const u8; 2],
        steps: usize,
        c: *mut u8,
        ldc: usize,
    ) {
        // SAFETY: tilezero writes tiles only.
        unsafe {
            asm!(
                "tilezero tmm0",
                "tilezero tmm1",
                "tilezero tmm2",
                "tilezero tmm3",
                options(nostack, nomem)
            )
        };
        let second_rows = a.wrapping_add(TILE * lda);
        let tile = TILE * STEP_BYTES;
        for s in 0..steps {
            let (a0, a1) = (
                a.wrapping_add(s * STEP_BYTES),
                second_rows.wrapping_add(s * STEP_BYTES),
            );
            let (b0, b1) = (b[0].wrapping_add(s * tile), b[1].wrapping_add(s * tile));
            // The step: two tiles of rows, two of columns, four products (`$product`).
            macro_rules! step {
                ($product:literal) => {
                    asm!(
                        "tileloadd tmm4, [{a0} + {lda}*1]",
                        "tileloadd tmm5, [{a1} + {lda}*1]",
                        "tileloadd tmm6, [{b0} + {ldb}*1]",
                        "tileloadd tmm7, [{b1} + {ldb}*1]",
                        concat!($product, " tmm0, tmm4, tmm6"),
                        concat!($product, " tmm1, tmm4, tmm7"),
                        concat!($product, " tmm2, tmm5, tmm6"),
                        concat!($product, " tmm3, tmm5, tmm7"),
                        a0 = in(reg) a0, a1 = in(reg) a1, lda = in(reg) lda,
                        b0 = in(reg) b0, b1 = in(reg) b1, ldb = in(reg) STEP_BYTES,
                        options(nostack, readonly)
                    )
                };
            }
            // SAFETY: the caller guarantees rows 0..32 of step s (64 bytes each, stride lda)
            // from `a` and tile s (16 rows of 64 bytes, stride 64) of each `b` are readable.
            unsafe {
                if BF16 {
                    step!("tdpbf16ps");
                } else {
                    step!("tdpbusd");
                }
            }
        }
        // SAFETY: the caller guarantees 32 rows of 128 bytes at stride `ldc` from `c`: the four
        // tiles (16 rows of 64 bytes each) are its quarters.
        unsafe {
            asm!(
                "tilestored [{c0} + {ldc}*1], tmm0",
                "tilestored [{c1} + {ldc}*1], tmm1",
                "tilestored [{c2} + {ldc}*1], tmm2",
                "tilestored [{c3} + {ldc}*1], tmm3",
                c0 = in(reg) c,
                c1 = in(reg) c.wrapping_add(STEP_BYTES),
                c2 = in(reg) c.wrapping_add(TILE * ldc),
                c3 = in(reg) c.wrapping_add(TILE * ldc + STEP_BYTES),
                ldc = in(reg) ldc,
                options(nostack)
            )
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_cache_order_visits_every_block_once_a_group_at_a_time() {
        // 70 rows: 3 row blocks; weights of 3 column blocks per group (and a ragged last one).
        let block_bytes = L2_WEIGHT_BYTES / 3;
        let mut seen = Vec::new();
        in_cache_order(70, 2..9, block_bytes, |r0, block| seen.push((r0, block)));
        let mut want = Vec::new();
        for group in [2..5, 5..8, 8..9] {
            for r0 in [0, 32, 64] {
                for block in group.clone() {
                    want.push((r0, block));
                }
            }
        }
        assert_eq!(seen, want);
    }
}
