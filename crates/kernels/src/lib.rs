//! fathom's CPU kernels for the hot path, on plain `f32` slices: the crate knows nothing of
//! tensors, models or files (`fathom-model` adapts candle tensors to these slices and keeps the
//! candle ops for other devices), and it holds all of fathom's `unsafe` code.
//!
//! ```
//! // y = x·Wᵀ + b for 2 rows, k = 3, n = 2, with no activation.
//! let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
//! let w = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0];
//! let y = fathom_kernels::linear(&x, 2, 3, &w, 2, Some(&[0.5, 0.5]), fathom_kernels::Epilogue::None);
//! assert_eq!(y, [1.5, 2.5, 4.5, 5.5]);
//! ```
//!
//! Why these exist (measured in this crate's `PROFILE.md`): on CPU, stock candle spends twice as long
//! around the big matrix products as in them — an erf GELU that does not vectorize, a generic
//! softmax, separate mask and scale passes over padded L×L scores, and small batched attention
//! matmuls. Here:
//! - [`linear`] multiplies with `gemm` straight into a buffer pre-filled with the bias and applies
//!   the activation in the same pass while the rows are still in cache;
//! - [`gelu_erf`](math::gelu_erf) uses a rational erf approximation (max error ~1e-7, far inside
//!   the fidelity tolerances) that the compiler vectorizes, compiled for AVX-512, AVX2 and baseline
//!   x86-64 and picked at run time;
//! - [`attention`] works on packed sequences (no padding at all): per sequence and head one Q·Kᵀ
//!   gemm with the 1/√d scale folded in, one softmax pass with a vectorized exp over the keys the
//!   mask leaves visible (causal, sliding window) after an optional bias (MPNet), one P·V gemm
//!   written straight into the output columns of that head; grouped-query heads read their
//!   shared K/V in place. Every architecture runs on it ([`varlen_attention`] for packed QKV);
//! - a few rows (a short query) skip sgemm's packing: `few_rows` reads each weight row once and
//!   dots it with every input row, the output columns split across the threads;
//! - [`bf16`] computes the products of [`linear_bf16`] in bf16 (opt-in, AVX512-BF16 CPUs only);
//! - [`int8`] computes the products of [`linear_int8`] on 8-bit integers (opt-in, any CPU; AVX2
//!   kernels where present): 8-bit weights per output channel, 8-bit activations per token;
//! - `amx` runs the int8 and bf16 products, and in those precisions attention, on AMX tiles
//!   (Sapphire Rapids and later Xeons), through inline assembly.
//!
//! One file per concern: `cpu` (what this CPU runs, and `FATHOM_CPU` to run less), `gemm` (the
//! single-threaded sgemm over OpenBLAS or `gemm`), `linear`, `few_rows`, `math` (erf, GELU, exp,
//! lane-wise sums), `attention`, `norm`, `rope`, `bf16`, `int8`, `amx`.
//!
//! Each SIMD or tile path has its own test against a plain reference. A test of a path the CPU
//! lacks is marked ignored, with the path in its reason (`build.rs` looks at the CPU the tests
//! are built on), so `cargo test` lists what it did not run. No emulator available here helps:
//! QEMU 7.2 (Debian 12's) runs AVX2 but neither AVX-512 nor AMX, and Intel's SDE is not in any
//! package registry. An AVX-512 machine runs the AVX2 paths too (each is tested directly).
//!
//! `unsafe` is confined to the calls into OpenBLAS or `gemm` (raw pointers and strides), to handing
//! each parallel attention task its own disjoint columns of the output, to the SIMD intrinsics
//! (AVX2, FMA, AVX512-BF16) and the AMX inline assembly, and to outputs the AMX epilogues write
//! once without zeroing first. It is allowed in this module only (the workspace denies it
//! elsewhere), every unsafe operation sits in its own `unsafe` block even inside an `unsafe fn`,
//! and every block says in a `// SAFETY:` comment which checked invariant makes it sound; the two
//! lints below enforce that. Every other crate of the workspace forbids `unsafe` (the two
//! global-allocator shims aside).
#![allow(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod amx;
mod attention;
pub mod bf16;
pub mod cpu;
mod few_rows;
mod gemm;
pub mod int8;
mod linear;
mod math;
mod norm;
pub mod roofline;
mod rope;

pub use attention::{attention, varlen_attention, AttentionMask, Heads};
pub use bf16::linear as linear_bf16;
pub use int8::linear as linear_int8;
pub use linear::{gated, linear, GateAct};
pub use norm::{residual_norm, RowNorm};
pub use rope::rope;

/// Activation applied in the epilogue of [`linear`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Epilogue {
    None,
    GeluErf,
}

/// Deterministic inputs in [-1, 1) for the kernels' unit tests and examples (xorshift).
#[doc(hidden)]
pub fn pseudo_random(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s as f32 / u32::MAX as f32) * 2.0 - 1.0
        })
        .collect()
}

/// Where each packed sequence starts: the running sum of `seq_lens` before it.
pub fn seq_starts(seq_lens: &[usize]) -> Vec<usize> {
    seq_lens
        .iter()
        .scan(0, |at, &len| {
            let start = *at;
            *at += len;
            Some(start)
        })
        .collect()
}
