//! Scaled dot-product attention over packed sequences: one Q·Kᵀ product, one softmax pass and
//! one P·V product per sequence and head, in parallel (all of a sequence's heads in one task
//! when there are enough sequences for every thread). In the reduced precisions on AMX CPUs the
//! products run on bf16 tiles ([`amx_heads`]); otherwise in f32 on sgemm.

use multiversion::multiversion;
use std::ops::Range;

use rayon::prelude::*;

use super::gemm::{sgemm, Mat};
use super::math::{dot, exp_approx, max_lanes};

/// e^(v − max) over one row in place, returning 1 / their sum: the exponentials and the sum in
/// one pass. Inlined into each clone of the two softmaxes below. `FMA`: as in
/// [`super::math::mul_add`].
#[inline(always)]
fn exp_shifted<const FMA: bool>(row: &mut [f32]) -> f32 {
    let max = max_lanes(row);
    let mut acc = [0f32; 16];
    let mut chunks = row.chunks_exact_mut(16);
    for c in &mut chunks {
        for i in 0..16 {
            c[i] = exp_approx::<FMA>(c[i] - max);
            acc[i] += c[i];
        }
    }
    let mut rest = 0.0;
    for v in chunks.into_remainder() {
        *v = exp_approx::<FMA>(*v - max);
        rest += *v;
    }
    1.0 / (acc.iter().sum::<f32>() + rest)
}

/// Softmax of one row in place (the scale is already folded into the row by the caller).
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl+avx2+fma",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
fn softmax_row(row: &mut [f32]) {
    const FMA: bool = multiversion::target::target_cfg_f!(target_feature = "fma");
    let inv = exp_shifted::<FMA>(row);
    for v in row.iter_mut() {
        *v *= inv;
    }
}

/// The unnormalized softmax of one row in place, returning 1 / Σ ([`exp_shifted`]): the division
/// is left to the caller, who applies it to the far fewer values of P·V's output row (head_dim
/// of them, not one per key).
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl+avx2+fma",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
fn exp_row(row: &mut [f32]) -> f32 {
    const FMA: bool = multiversion::target::target_cfg_f!(target_feature = "fma");
    exp_shifted::<FMA>(row)
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
    const FMA: bool = multiversion::target::target_cfg_f!(target_feature = "fma");
    for i in 0..len {
        let (lo, hi) = mask.visible(i, len);
        let qi = &q.data[i * q.ld..i * q.ld + d];
        let row = &mut scores[lo..hi];
        for (j, s) in (lo..hi).zip(row.iter_mut()) {
            *s = dot::<FMA>(qi, &k.data[j * k.ld..j * k.ld + d]) * scale;
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
#[derive(Debug, Clone, Copy)]
pub struct Heads<'a> {
    pub data: &'a [f32],
    pub ld: usize,
    pub heads: usize,
}

/// Scaled dot-product attention over packed sequences.
///
/// `qkv` is `tokens × 3·hidden` (Q, K, V side by side, heads contiguous inside each), `seq_lens`
/// the length of each packed sequence in order. Each sequence attends only to itself, so there is
/// no padding and no mask; `causal` restricts token i to tokens ≤ i (decoders), `bias` is as in
/// [`attention`]. Returns `tokens × hidden`.
pub fn varlen_attention(
    qkv: &[f32],
    seq_lens: &[usize],
    (num_heads, head_dim): (usize, usize),
    causal: bool,
    bias: Option<&[&[f32]]>,
    bf16: bool,
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
    attention(
        part(0),
        part(1),
        part(2),
        seq_lens,
        head_dim,
        mask,
        bias,
        bf16,
    )
}

/// [`varlen_attention`] in general: separate Q, K and V (`k.heads` may divide `q.heads`:
/// grouped-query attention, query head h reading key/value head h / group), any
/// [`AttentionMask`], and an optional additive bias per sequence (`bias[s]` is
/// `heads × len × len` for sequence `s`: MPNet's relative positions). Returns
/// `tokens × q.heads·head_dim`.
///
/// `bf16` (the reduced-precision modes) lets sequences longer than [`SHORT`] run on AMX tiles
/// where the CPU has AMX-BF16: Q, K, V and the probabilities rounded to bf16, the products
/// summed and the softmax computed in f32 ([`amx_heads`]).
#[allow(clippy::too_many_arguments)]
pub fn attention<'a>(
    q: Heads<'a>,
    k: Heads<'a>,
    v: Heads<'a>,
    seq_lens: &[usize],
    head_dim: usize,
    mask: AttentionMask,
    bias: Option<&[&[f32]]>,
    bf16: bool,
) -> Vec<f32> {
    let tiles = bf16 && super::amx::bf16();
    let heads = q.heads;
    assert!(
        k.heads > 0 && v.heads == k.heads && heads.is_multiple_of(k.heads),
        "attention: {heads} query heads over {} key / {} value heads",
        k.heads,
        v.heads
    );
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
    // Long sequences run all their heads in one task when there are enough of them to keep
    // every thread busy: their rows of Q, K and V are then read once, in order (one head's
    // columns at a time, a row's length apart, missed the cache); otherwise one head per task.
    let threads = rayon::current_num_threads().max(1);
    let long = seq_lens.iter().filter(|&&len| len > SHORT).count();
    let per_task = if long >= 2 * threads { heads } else { 1 };
    let tasks: Vec<(usize, usize, usize, Range<usize>)> = seq_lens
        .iter()
        .zip(&starts)
        .enumerate()
        .filter(|(_, (len, _))| **len > 0)
        .flat_map(|(s, (&len, &start))| {
            let step = if len > SHORT { per_task } else { 1 };
            (0..heads)
                .step_by(step)
                .map(move |h| (s, start, len, h..(h + step).min(heads)))
        })
        .collect();
    let scale = 1.0 / (head_dim as f32).sqrt();
    let shared = SharedOut(out.as_mut_ptr());
    let task = |scratch: &mut Scratch, (s, start, len, hs): (usize, usize, usize, Range<usize>)| {
        let bias = bias.map(|b| {
            let b = b[s];
            assert_eq!(
                b.len(),
                heads * len * len,
                "attention: bias is not heads × len × len"
            );
            b
        });
        let at = |m: &Heads<'a>| Heads {
            data: &m.data[start * m.ld..],
            ..*m
        };
        let operands = (at(&q), at(&k), at(&v));
        let shape = (len, head_dim, scale, mask);
        let width = hs.len() * head_dim;
        let values = if len <= SHORT {
            short_heads(operands, hs.clone(), shape, bias, &mut scratch.scores)
        } else if tiles {
            amx_heads(operands, hs.clone(), shape, bias, &mut scratch.amx)
        } else {
            exact_heads(operands, hs.clone(), shape, bias, &mut scratch.exact)
        };
        for (i, o) in values.chunks_exact(width).take(len).enumerate() {
            // SAFETY: writes row start + i (< start + len <= tokens: the starts are prefix sums
            // of `seq_lens`, whose total is `tokens`), columns of heads `hs` (< heads), of `out`
            // (tokens × hidden), from this task's own scratch (another allocation, so no
            // overlap). Exclusive: each (sequence, head) pair is in exactly one task, and
            // nothing else touches `out` until the tasks end.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    o.as_ptr(),
                    shared.ptr().add((start + i) * hidden + hs.start * head_dim),
                    width,
                );
            }
        }
    };
    let work: usize = seq_lens.iter().map(|&len| len * len).sum::<usize>() * heads * head_dim;
    if work < SEQUENTIAL_WORK {
        let mut scratch = Scratch::default();
        tasks.into_iter().for_each(|t| task(&mut scratch, t));
    } else {
        tasks.into_par_iter().for_each_init(Scratch::default, task);
    }
    out
}

/// One thread's buffers, reused across its tasks.
#[derive(Default)]
struct Scratch {
    scores: Vec<f32>,
    exact: ExactScratch,
    amx: AmxScratch,
}

/// [`exact_heads`]'s buffers.
#[derive(Default)]
struct ExactScratch {
    /// Q, K and V of the task's heads, each head's rows contiguous.
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    scores: Vec<f32>,
    /// Per row of one head's scores, 1 / the sum of its exponentials.
    inv: Vec<f32>,
    /// The output: rows × the heads' dims.
    out: Vec<f32>,
}

/// (len, head_dim, scale, mask) of one sequence's attention.
type Shape = (usize, usize, f32, AttentionMask);

/// The key/value heads that query heads `hs` read (grouped-query attention).
fn kv_heads(q: &Heads, k: &Heads, hs: &Range<usize>) -> Range<usize> {
    let group = q.heads / k.heads;
    hs.start / group..(hs.end - 1) / group + 1
}

/// Heads `hs` of one short sequence, directly ([`short_head`] each): `len` rows of the heads'
/// dims, in `scratch`.
fn short_heads<'a, 's>(
    (q, k, v): (Heads<'a>, Heads<'a>, Heads<'a>),
    hs: Range<usize>,
    (len, d, scale, mask): Shape,
    bias: Option<&[f32]>,
    scratch: &'s mut Vec<f32>,
) -> &'s [f32] {
    let group = q.heads / k.heads;
    let width = hs.len() * d;
    zeroed(scratch, len + len * d + len * width);
    let (row, rest) = scratch.split_at_mut(len);
    let (head_out, out) = rest.split_at_mut(len * d);
    for (i, h) in hs.enumerate() {
        let g = h / group;
        let one = |m: &Heads<'a>, head: usize| Heads {
            data: &m.data[head * d..],
            ld: m.ld,
            heads: 1,
        };
        let bias = bias.map(|b| &b[h * len * len..(h + 1) * len * len]);
        let operands = (one(&q, h), one(&k, g), one(&v, g));
        short_head(operands, len, d, scale, mask, bias, row, head_out);
        for (r, o) in head_out.chunks_exact(d).enumerate() {
            out[r * width + i * d..r * width + (i + 1) * d].copy_from_slice(o);
        }
    }
    out
}

/// Heads `hs` of one sequence in f32: per head one Q·Kᵀ product (the scale folded in), the
/// softmax, one P·V product, on copies of the heads' Q, K and V made contiguous first. Returns
/// `len` rows of the heads' dims, in `s`.
fn exact_heads<'s>(
    (q, k, v): (Heads<'_>, Heads<'_>, Heads<'_>),
    hs: Range<usize>,
    (len, d, scale, mask): Shape,
    bias: Option<&[f32]>,
    s: &'s mut ExactScratch,
) -> &'s [f32] {
    let group = q.heads / k.heads;
    let gs = kv_heads(&q, &k, &hs);
    let (nh, ng) = (hs.len(), gs.len());
    // Every value below is overwritten: the copies whole, the scores and output by the products.
    s.q.resize(nh * len * d, 0.0);
    s.k.resize(ng * len * d, 0.0);
    s.v.resize(ng * len * d, 0.0);
    for j in 0..len {
        for (i, h) in hs.clone().enumerate() {
            let src = &q.data[j * q.ld + h * d..j * q.ld + (h + 1) * d];
            s.q[(i * len + j) * d..(i * len + j + 1) * d].copy_from_slice(src);
        }
        for (i, g) in gs.clone().enumerate() {
            let at = (i * len + j) * d;
            s.k[at..at + d].copy_from_slice(&k.data[j * k.ld + g * d..j * k.ld + (g + 1) * d]);
            s.v[at..at + d].copy_from_slice(&v.data[j * v.ld + g * d..j * v.ld + (g + 1) * d]);
        }
    }
    s.scores.resize(len * len, 0.0);
    s.inv.resize(len, 0.0);
    s.out.resize(len * nh * d, 0.0);
    for (i, h) in hs.enumerate() {
        let g = h / group - gs.start;
        let (qh, kh) = (&s.q[i * len * d..], &s.k[g * len * d..]);
        sgemm(
            len,
            len,
            d,
            scale,
            Mat::new(qh, d),
            Mat::t(kh, d),
            0.0,
            &mut s.scores,
            len,
        );
        let bias = bias.map(|b| &b[h * len * len..(h + 1) * len * len]);
        for ((r, row), inv) in s.scores.chunks_exact_mut(len).enumerate().zip(&mut s.inv) {
            let (lo, hi) = mask.visible(r, len);
            row[..lo].fill(0.0);
            let visible = &mut row[lo..hi];
            if let Some(b) = bias {
                for (v, &bb) in visible.iter_mut().zip(&b[r * len + lo..r * len + hi]) {
                    *v += bb;
                }
            }
            *inv = exp_row(visible);
            row[hi..].fill(0.0);
        }
        let vh = &s.v[g * len * d..];
        let out = &mut s.out[i * d..];
        sgemm(
            len,
            d,
            len,
            1.0,
            Mat::new(&s.scores, len),
            Mat::new(vh, d),
            0.0,
            out,
            nh * d,
        );
        // The softmax's division, on this head's output (P·V of the unnormalized P).
        for (o, &inv) in out.chunks_mut(nh * d).zip(&s.inv) {
            o[..d].iter_mut().for_each(|v| *v *= inv);
        }
    }
    &s.out
}

/// [`amx_heads`]'s buffers.
#[derive(Default)]
struct AmxScratch {
    /// Q per head: rows × pairs of head dims.
    q: Vec<u32>,
    /// K per key/value head in panels of 16 keys (the tiles' column operand): pairs of head
    /// dims × 16 keys each.
    k: Vec<u32>,
    /// V per key/value head in panels of 16 head dims: pairs of keys × 16 dims each.
    v: Vec<u32>,
    /// One head's scores, then probabilities, in f32: rows × keys.
    scores: Vec<f32>,
    /// One head's probabilities as bf16: rows × pairs of keys.
    p: Vec<u32>,
    /// One head's output: rows × head dims (padded).
    head: Vec<f32>,
    /// The sequence's output: rows × heads · head dims.
    out: Vec<f32>,
    /// Two rows of bf16 pairs, for packing K and V.
    rows: Vec<u32>,
    /// One row of Q times the scale.
    scaled: Vec<f32>,
}

/// `v` as `len` zeros (its capacity kept).
fn zeroed<T: Copy + Default>(v: &mut Vec<T>, len: usize) {
    v.clear();
    v.resize(len, T::default());
}

/// Heads `hs` of one sequence on AMX tiles: per head softmax(scale · q·kᵀ + bias, masked) · v
/// with scale · q, k, v and the probabilities rounded to bf16 and every sum and the softmax in
/// f32. `q`, `k`, `v` start at the sequence's first token (grouped heads as in [`attention`]);
/// `bias` is `heads × len × len`. Rows and keys are padded with zeros to whole blocks of 32,
/// head dims too. Returns the output, `len` rows of the heads' dims, inside `s`.
fn amx_heads<'s>(
    (q, k, v): (Heads<'_>, Heads<'_>, Heads<'_>),
    hs: Range<usize>,
    (len, d, scale, mask): Shape,
    bias: Option<&[f32]>,
    s: &'s mut AmxScratch,
) -> &'s [f32] {
    use super::amx::{Tiles, BLOCK, TILE};
    use super::bf16::convert_row;
    let tiles = Tiles::new().expect("attention: AMX tiles on a CPU without them");
    let group = q.heads / k.heads;
    let gs = kv_heads(&q, &k, &hs);
    let (heads, kv_heads) = (hs.len(), gs.len());
    let lp = len.next_multiple_of(BLOCK);
    let dp = d.next_multiple_of(BLOCK);
    let (dq, kq) = (dp / 2, lp / 2);
    let half = d.div_ceil(2);
    // Every head's operands, packed from the rows read in order: Q rows × pairs of dims; K in
    // panels of 16 keys (key j is column j % 16 of its panel, its pairs 16 lanes apart); V in
    // panels of 16 dims, a lane pairing keys 2p and 2p + 1 at one dim.
    let (q_size, k_size, v_size) = (lp * dq, lp * dq, dp * kq);
    zeroed(&mut s.q, heads * q_size);
    zeroed(&mut s.k, kv_heads * k_size);
    zeroed(&mut s.v, kv_heads * v_size);
    zeroed(&mut s.rows, 2 * half);
    zeroed(&mut s.scaled, d);
    let (row0, row1) = s.rows.split_at_mut(half);
    for j in 0..len {
        for (i, h) in hs.clone().enumerate() {
            let qr = &q.data[j * q.ld + h * d..j * q.ld + (h + 1) * d];
            for (x, &y) in s.scaled.iter_mut().zip(qr) {
                *x = y * scale;
            }
            let at = i * q_size + j * dq;
            convert_row(&s.scaled, &mut s.q[at..at + half]);
        }
        for (i, g) in gs.clone().enumerate() {
            convert_row(&k.data[j * k.ld + g * d..j * k.ld + (g + 1) * d], row0);
            let base = i * k_size + (j / TILE) * dq * TILE + j % TILE;
            for (p, &lane) in row0.iter().enumerate() {
                s.k[base + p * TILE] = lane;
            }
        }
    }
    let bf16_at = |row: &[u32], c: usize| row[c / 2] >> (16 * (c % 2)) & 0xFFFF;
    for p in 0..len.div_ceil(2) {
        for (i, g) in gs.clone().enumerate() {
            let (j0, j1) = (2 * p * v.ld + g * d, (2 * p + 1) * v.ld + g * d);
            convert_row(&v.data[j0..j0 + d], row0);
            if 2 * p + 1 < len {
                convert_row(&v.data[j1..j1 + d], row1);
            } else {
                row1.fill(0);
            }
            let base = i * v_size + p * TILE;
            for c in 0..d {
                let lane = bf16_at(row0, c) | bf16_at(row1, c) << 16;
                s.v[base + (c / TILE) * kq * TILE + c % TILE] = lane;
            }
        }
    }
    s.scores.resize(lp * lp, 0.0);
    s.p.resize(lp * kq, 0);
    s.head.resize(lp * dp, 0.0);
    s.out.resize(len * heads * d, 0.0);
    for (i, h) in hs.enumerate() {
        let g = h / group - gs.start;
        let (qs, ks) = (&s.q[i * q_size..], &s.k[g * k_size..(g + 1) * k_size]);
        let vs = &s.v[g * v_size..(g + 1) * v_size];
        // Scores: every block a causal mask leaves any key visible in.
        let panel = dq * TILE;
        for r0 in (0..lp).step_by(BLOCK) {
            for kb in 0..lp / BLOCK {
                if mask == AttentionMask::Causal && kb * BLOCK > r0 + BLOCK - 1 {
                    break;
                }
                let b = [
                    &ks[2 * kb * panel..(2 * kb + 1) * panel],
                    &ks[(2 * kb + 1) * panel..(2 * kb + 2) * panel],
                ];
                let c = &mut s.scores[r0 * lp + kb * BLOCK..];
                tiles.bf16_block(&qs[r0 * dq..], dq, b, dq / TILE, c, lp);
            }
        }
        // Probabilities: rows past `len` zero, every other row written whole.
        s.p[len * kq..].fill(0);
        let bias = bias.map(|b| &b[h * len * len..(h + 1) * len * len]);
        for i in 0..len {
            let (lo, hi) = mask.visible(i, len);
            let row = &mut s.scores[i * lp..(i + 1) * lp];
            bias_and_softmax(
                &mut row[lo..hi],
                bias.map(|b| &b[i * len + lo..i * len + hi]),
            );
            let p = &mut s.p[i * kq..(i + 1) * kq];
            if lo == 0 {
                let visible = hi.div_ceil(2);
                convert_row(&row[..hi], &mut p[..visible]);
                p[visible..].fill(0);
            } else {
                row[..lo].fill(0.0);
                row[hi..].fill(0.0);
                convert_row(row, p);
            }
        }
        // Output: under a causal mask, row block r0's probabilities end at key r0 + 31.
        let panel = kq * TILE;
        for r0 in (0..lp).step_by(BLOCK) {
            let steps = match mask {
                AttentionMask::Causal => r0 / BLOCK + 1,
                _ => kq / TILE,
            };
            for db in 0..dp / BLOCK {
                let b = [
                    &vs[2 * db * panel..(2 * db + 1) * panel],
                    &vs[(2 * db + 1) * panel..(2 * db + 2) * panel],
                ];
                let c = &mut s.head[r0 * dp + db * BLOCK..];
                tiles.bf16_block(&s.p[r0 * kq..], kq, b, steps, c, dp);
            }
        }
        for (r, row) in s.head.chunks_exact(dp).take(len).enumerate() {
            let at = r * heads * d + i * d;
            s.out[at..at + d].copy_from_slice(&row[..d]);
        }
    }
    &s.out[..len * heads * d]
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
        on_both_splits(|| {
            for causal in [false, true] {
                let want = naive_attention(&qkv, &lens, heads, d, causal);
                let got = varlen_attention(&qkv, &lens, (heads, d), causal, None, false);
                for (g, w) in got.iter().zip(&want) {
                    assert!((g - w).abs() < 1e-5, "causal={causal}: {g} vs {w}");
                }
            }
        });
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

    /// `check` on a pool of 1 thread (enough long sequences to run all heads of one in a task)
    /// and of 16 (too few: one head per task).
    fn on_both_splits(check: impl Fn() + Sync) {
        for threads in [1, 16] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(&check);
        }
    }

    #[test]
    fn grouped_heads_windows_causal_and_bias_match_naive() {
        on_both_splits(|| check_general(8, false));
    }

    /// The AMX tiles in bf16: within bf16 rounding of the exact values, for head dims that fill
    /// a tile's rows partly (8), oddly (33) and exactly (64). (Without AMX, `bf16` changes
    /// nothing: the f32 test above covers that path.)
    #[test]
    #[cfg_attr(
        not(fathom_built_on = "amx_bf16"),
        ignore = "needs AMX-BF16, which the CPU these tests were built on lacks"
    )]
    fn amx_bf16_tiles_match_naive_within_bf16_rounding() {
        crate::cpu::require(|c| c.amx_bf16 && c.avx512_bf16, "AMX bf16 attention");
        on_both_splits(|| {
            for d in [8, 33, 64] {
                check_general(d, true);
            }
        });
    }

    fn check_general(d: usize, bf16: bool) {
        let (heads, kv_heads) = (4, 2);
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
                    bf16,
                );
                // bf16 keeps 8 bits of each operand: outputs (weighted means of values in
                // [-1, 1]) within a few 2⁻⁸, and far closer on average.
                let tiles = bf16 && super::super::amx::bf16();
                let (max_err, mean_err) = if tiles { (3e-2, 4e-3) } else { (1e-5, 1e-5) };
                let mut total = 0.0;
                for (g, w) in got.iter().zip(&want) {
                    assert!(
                        (g - w).abs() < max_err,
                        "d={d} {mask:?} bias={with_bias}: {g} vs {w}"
                    );
                    total += (g - w).abs() as f64;
                }
                let mean = total / got.len() as f64;
                assert!(
                    mean < mean_err,
                    "d={d} {mask:?} bias={with_bias}: mean error {mean}"
                );
            }
        }
    }
}
