//! The building blocks every architecture shares, each with two implementations: the CPU `f32`
//! fast path in [`crate::kernels`] and plain candle ops for every other device and dtype (CUDA,
//! f16). Architectures call these and never branch on the device themselves, so a speed change
//! here serves them all. A model loaded with [`crate::LoadOptions::generic_ops`] takes the plain
//! candle path on CPU too (tests compare the two).

use candle_core::{DType, Device, Storage, Tensor};
use candle_nn::VarBuilder;

use crate::error::{ModelError, Result};
use crate::kernels::{self, bf16::PackedWeight, int8::QuantizedWeight, Epilogue, RowNorm};
use crate::profile;

/// How one forward pass computes, chosen when the model was loaded and handed to every op of the
/// pass. Models with different settings can run side by side: nothing is kept per thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    /// Plain candle ops everywhere, fathom's CPU kernels off ([`crate::LoadOptions::generic_ops`]:
    /// tests compare the two).
    pub generic_ops: bool,
    /// The CPU attention may run in bf16 ([`kernels::attention`]): a model loaded in a reduced
    /// precision (int8, bf16).
    pub bf16_attention: bool,
}

impl Pass {
    /// Plain candle ops, for tests that hold the kernels to them.
    #[cfg(test)]
    pub(crate) const GENERIC: Pass = Pass {
        generic_ops: true,
        bf16_attention: false,
    };

    /// Runs `f` on the contiguous `f32` data of a CPU tensor when this pass may use fathom's CPU
    /// kernels; `None` when it may not or the tensor is not one.
    fn cpu_f32<R>(self, t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Option<R> {
        if self.generic_ops {
            return None;
        }
        with_cpu_f32(t, f)
    }

    /// Whether the CPU kernels apply to `t` in this pass.
    fn kernels_apply(self, t: &Tensor) -> bool {
        !self.generic_ops && t.device().is_cpu() && t.dtype() == DType::F32
    }
}

/// Runs `f` on the contiguous `f32` data of a CPU tensor; `None` when the tensor is not one.
fn with_cpu_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Option<R> {
    if !t.device().is_cpu() || t.dtype() != DType::F32 {
        return None;
    }
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        return None;
    };
    let (start, end) = layout.contiguous_offsets()?;
    let data = cpu.as_slice::<f32>().ok()?;
    Some(f(&data[start..end]))
}

fn cpu_tensor(data: Vec<f32>, rows: usize, cols: usize) -> Result<Tensor> {
    Ok(Tensor::from_vec(data, (rows, cols), &Device::Cpu)?)
}

/// The activation inside a feed-forward block (`hidden_act` in transformers configs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HiddenAct {
    GeluErf,
    GeluTanh,
    Relu,
    Silu,
}

impl HiddenAct {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "gelu" | "gelu_python" => Self::GeluErf,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Self::GeluTanh,
            "relu" => Self::Relu,
            "silu" | "swish" => Self::Silu,
            _ => return None,
        })
    }

    pub fn apply(self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Self::GeluErf => x.gelu_erf()?,
            Self::GeluTanh => x.gelu()?,
            Self::Relu => x.relu()?,
            Self::Silu => x.silu()?,
        })
    }
}

/// A gated MLP's middle: `act(h[:, ..inter]) · h[:, inter..]` for `h` = tokens × 2·`inter`
/// (one linear's `input ‖ gate`); on CPU in one pass for GELU (ModernBERT's GeGLU) and SiLU
/// (Qwen3's SwiGLU), else candle ops.
pub fn gated(pass: Pass, h: &Tensor, inter: usize, act: HiddenAct) -> Result<Tensor> {
    let kernel = match act {
        HiddenAct::GeluErf => Some(kernels::GateAct::GeluErf),
        HiddenAct::Silu => Some(kernels::GateAct::Silu),
        HiddenAct::GeluTanh | HiddenAct::Relu => None,
    };
    if let Some(kernel) = kernel.filter(|_| h.dims().get(1) == Some(&(2 * inter))) {
        let rows = h.dim(0)?;
        if let Some(out) = pass.cpu_f32(h, |data| kernels::gated(data, rows, inter, kernel)) {
            return cpu_tensor(out, rows, inter);
        }
    }
    let input = h.narrow(1, 0, inter)?;
    let gate = h.narrow(1, inter, inter)?;
    Ok((act.apply(&input.contiguous()?)? * gate)?)
}

/// What a model's linears compute in on the CPU. A loader applies it to each linear as soon as
/// that linear is read, so a model loaded as int8 or bf16 never holds all its f32 weights at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinearPrecision {
    /// f32 (or the device's dtype): the weight as read.
    AsRead,
    /// [`Linear::use_bf16`].
    Bf16,
    /// [`Linear::use_int8`].
    Int8,
}

impl LinearPrecision {
    pub fn apply(self, linear: &mut Linear) -> Result<()> {
        match self {
            Self::AsRead => Ok(()),
            Self::Bf16 => linear.use_bf16(),
            Self::Int8 => linear.use_int8(),
        }
    }
}

/// `x · Wᵀ + b` over a packed `tokens × in` matrix, optionally followed by an activation.
#[derive(Debug, Clone)]
pub struct Linear {
    /// `out × in`; `out × 0` once [`Linear::use_int8`] replaced it by its quantized form.
    weight: Tensor,
    bias: Option<Tensor>,
    /// The weight packed for the bf16 kernels, once [`Linear::use_bf16`] was called.
    packed_bf16: Option<std::sync::Arc<PackedWeight>>,
    /// The weight quantized to int8, once [`Linear::use_int8`] was called.
    int8: Option<std::sync::Arc<QuantizedWeight>>,
    /// What `FATHOM_PROFILE` reports this linear's time under.
    label: &'static str,
    /// `[W | b | 0…]` (`out × in + FOLD`), made on the first product off the CPU kernels.
    folded: std::sync::OnceLock<Tensor>,
}

/// Columns a [`Linear`]'s bias adds to its folded weight: the bias and zeros, keeping the inner
/// dimension a multiple of 8 (tensor-core friendly) where it was one.
const FOLD: usize = 8;

impl Linear {
    pub fn load(vb: VarBuilder, in_dim: usize, out_dim: usize, bias: bool) -> Result<Self> {
        let weight = vb.get((out_dim, in_dim), "weight")?;
        let bias = if bias {
            Some(vb.get(out_dim, "bias")?)
        } else {
            None
        };
        Ok(Self::from_weight(weight, bias))
    }

    /// A linear over a weight already read (`out × in`), such as one tied to the embeddings.
    pub fn from_weight(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self {
            weight,
            bias,
            label: "linear",
            packed_bf16: None,
            int8: None,
            folded: std::sync::OnceLock::new(),
        }
    }

    /// Names this linear in `FATHOM_PROFILE` reports.
    pub fn named(mut self, label: &'static str) -> Self {
        self.label = label;
        self
    }

    /// Several linears over the same input fused into one (Q, K and V): one gemm instead of three.
    pub fn concat(parts: &[Linear]) -> Result<Self> {
        let weights: Vec<&Tensor> = parts.iter().map(|p| &p.weight).collect();
        let weight = Tensor::cat(&weights, 0)?;
        let bias = if parts.iter().all(|p| p.bias.is_some()) {
            let biases: Vec<&Tensor> = parts.iter().filter_map(|p| p.bias.as_ref()).collect();
            Some(Tensor::cat(&biases, 0)?)
        } else {
            None
        };
        Ok(Self {
            weight,
            bias,
            label: "linear",
            packed_bf16: None,
            int8: None,
            folded: std::sync::OnceLock::new(),
        })
    }

    /// Computes this linear's products in bf16 from now on (CPU with AVX512-BF16 only): the
    /// weight is packed once, here, and its f32 copy dropped (half the weight bytes held).
    pub fn use_bf16(&mut self) -> Result<()> {
        let packed = self.convert_weight(
            PackedWeight::pack,
            "bf16 on CPU runs on fathom's CPU kernels: an f32 model on the CPU",
        )?;
        self.packed_bf16 = Some(std::sync::Arc::new(packed));
        Ok(())
    }

    /// Computes this linear's products in int8 from now on (CPU only): the weight is quantized
    /// once, here, and its f32 copy dropped.
    pub fn use_int8(&mut self) -> Result<()> {
        let quantized = self.convert_weight(
            QuantizedWeight::quantize,
            "int8 runs on fathom's CPU kernels: an f32 model on the CPU",
        )?;
        self.int8 = Some(std::sync::Arc::new(quantized));
        Ok(())
    }

    /// The weight (`n × k`) converted by `convert` for fathom's CPU kernels, its f32 copy then
    /// replaced by an `n × 0` tensor; `unavailable` is the error off those kernels.
    fn convert_weight<T>(
        &mut self,
        convert: impl FnOnce(&[f32], usize, usize) -> T,
        unavailable: &'static str,
    ) -> Result<T> {
        let (n, k) = self.weight.dims2()?;
        let converted = with_cpu_f32(&self.weight, |w| convert(w, n, k))
            .ok_or(ModelError::PrecisionUnavailable(unavailable))?;
        self.weight = Tensor::zeros((n, 0), DType::F32, self.weight.device())?;
        Ok(converted)
    }

    pub fn out_dim(&self) -> usize {
        self.weight.dims()[0]
    }

    pub fn forward(&self, pass: Pass, x: &Tensor, act: Option<HiddenAct>) -> Result<Tensor> {
        let _span = profile::span(self.label);
        let (rows, k) = x.dims2()?;
        let n = self.out_dim();
        let epilogue = match act {
            None => Epilogue::None,
            Some(HiddenAct::GeluErf) => Epilogue::GeluErf,
            Some(_) => Epilogue::None,
        };
        let product = |xs: &[f32], bias: Option<&[f32]>| {
            if let Some(q) = &self.int8 {
                return Some(kernels::linear_int8(xs, rows, q, bias, epilogue));
            }
            match &self.packed_bf16 {
                Some(packed) => Some(kernels::linear_bf16(xs, rows, packed, bias, epilogue)),
                None => pass.cpu_f32(&self.weight, |ws| {
                    kernels::linear(xs, rows, k, ws, n, bias, epilogue)
                }),
            }
        };
        let fast = pass
            .cpu_f32(x, |xs| match &self.bias {
                Some(b) => pass.cpu_f32(b, |bs| product(xs, Some(bs))).flatten(),
                None => product(xs, None),
            })
            .flatten();
        if fast.is_none() && (self.int8.is_some() || self.packed_bf16.is_some()) {
            // Loading refuses int8 and CPU bf16 with generic ops or off the CPU, and drops
            // their f32 weights, so this is a bug, not input.
            return Err(ModelError::PrecisionUnavailable(
                "an int8 or bf16 linear was called outside fathom's CPU kernels",
            ));
        }
        if let Some(out) = fast {
            let out = cpu_tensor(out, rows, n)?;
            return match act {
                Some(a) if epilogue == Epilogue::None => a.apply(&out),
                _ => Ok(out),
            };
        }
        let out = match &self.bias {
            None => x.matmul(&self.weight.t()?)?,
            Some(bias) => {
                // x·Wᵀ + b as one product, [x | 1 | 0…]·[W | b | 0…]ᵀ: adding b afterwards is a
                // broadcast add, which on a GPU runs candle's strided kernel (divisions by every
                // dimension of every element), slower than the product it follows.
                let folded = match self.folded.get() {
                    Some(w) => w,
                    None => {
                        let (n, k) = self.weight.dims2()?;
                        let pad = Tensor::zeros(
                            (n, FOLD - 1),
                            self.weight.dtype(),
                            self.weight.device(),
                        )?;
                        let w = Tensor::cat(&[&self.weight, &bias.reshape((n, 1))?, &pad], 1)?;
                        debug_assert_eq!(w.dims2()?, (n, k + FOLD));
                        let _ = self.folded.set(w);
                        self.folded.get().expect("just set")
                    }
                };
                let ones = Tensor::ones((rows, 1), x.dtype(), x.device())?;
                let zeros = Tensor::zeros((rows, FOLD - 1), x.dtype(), x.device())?;
                Tensor::cat(&[x, &ones, &zeros], 1)?.matmul(&folded.t()?)?
            }
        };
        match act {
            Some(a) => a.apply(&out),
            None => Ok(out),
        }
    }
}

/// [`kernels::residual_norm`] on tensors: `None` where `x` or `delta` is not a contiguous f32
/// tensor on the CPU (the caller then runs candle's ops). Without `keep_sum` the sum returned is
/// `x` (the caller only wants the norm).
fn residual_norm_cpu(
    pass: Pass,
    x: &Tensor,
    delta: Option<&Tensor>,
    norm: RowNorm<'_>,
    keep_sum: bool,
) -> Option<Result<(Tensor, Tensor)>> {
    if x.dims().last() != Some(&norm.width()) || delta.is_some_and(|d| d.shape() != x.shape()) {
        return None;
    }
    let shape = x.shape().clone();
    let tensor = |data: Vec<f32>| -> Result<Tensor> {
        Ok(Tensor::from_vec(data, shape.clone(), &Device::Cpu)?)
    };
    let (sum, normed) = pass
        .cpu_f32(x, |xs| match delta {
            Some(d) => pass.cpu_f32(d, |ds| kernels::residual_norm(xs, Some(ds), norm, keep_sum)),
            None => Some(kernels::residual_norm(xs, None, norm, keep_sum)),
        })
        .flatten()?;
    Some((|| {
        let sum = match sum {
            Some(sum) => tensor(sum)?,
            None => x.clone(),
        };
        Ok((sum, tensor(normed)?))
    })())
}

/// Layer norm with weight and bias (BERT's `LayerNorm`).
#[derive(Debug, Clone)]
pub struct LayerNorm {
    gamma: Tensor,
    beta: Tensor,
    eps: f64,
}

impl LayerNorm {
    /// Reads `weight`/`bias`, or the older `gamma`/`beta` names. A norm stored without a bias
    /// (ModernBERT's `norm_bias: false`) gets a zero one.
    pub fn load(vb: VarBuilder, dim: usize, eps: f64) -> Result<Self> {
        let (gamma, beta) = if vb.contains_tensor("weight") {
            let gamma = vb.get(dim, "weight")?;
            let beta = if vb.contains_tensor("bias") {
                vb.get(dim, "bias")?
            } else {
                gamma.zeros_like()?
            };
            (gamma, beta)
        } else {
            (vb.get(dim, "gamma")?, vb.get(dim, "beta")?)
        };
        Ok(Self { gamma, beta, eps })
    }

    pub fn forward(&self, pass: Pass, x: &Tensor) -> Result<Tensor> {
        self.norm(pass, x, None, false).map(|(_, normed)| normed)
    }

    /// `layer_norm(x + residual)` (post-norm blocks: BERT's), in one pass on CPU.
    pub fn forward_residual(&self, pass: Pass, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        self.norm(pass, x, Some(residual), false)
            .map(|(_, normed)| normed)
    }

    /// For pre-norm blocks: `(x + delta, layer_norm(x + delta))` (`x` and its norm without a
    /// `delta`), in one pass on CPU.
    pub fn add_forward(
        &self,
        pass: Pass,
        x: &Tensor,
        delta: Option<&Tensor>,
    ) -> Result<(Tensor, Tensor)> {
        self.norm(pass, x, delta, true)
    }

    fn norm(
        &self,
        pass: Pass,
        x: &Tensor,
        delta: Option<&Tensor>,
        keep_sum: bool,
    ) -> Result<(Tensor, Tensor)> {
        let _span = profile::span("layer_norm");
        let eps = self.eps as f32;
        let fast = pass.cpu_f32(&self.gamma, |gamma| {
            pass.cpu_f32(&self.beta, |beta| {
                residual_norm_cpu(
                    pass,
                    x,
                    delta,
                    RowNorm::Layer { gamma, beta, eps },
                    keep_sum,
                )
            })
        });
        if let Some(Some(Some(done))) = fast {
            return done;
        }
        let x = match delta {
            Some(d) => (x + d)?,
            None => x.clone(),
        };
        let normed = candle_nn::ops::layer_norm(&x, &self.gamma, &self.beta, eps)?;
        Ok((x, normed))
    }
}

/// Self-attention over packed sequences: `qkv` is `tokens × 3·hidden` (BERT's fused projection),
/// `seq_lens` the lengths of the sequences packed in it. Each sequence attends only to itself (no
/// padding, no mask); `causal` limits each token to itself and earlier ones; `bias(len)` is an
/// additive `heads × len × len` bias (MPNet's relative positions), as in
/// [`packed_attention_general`].
pub fn packed_attention(
    pass: Pass,
    qkv: &Tensor,
    seq_lens: &[usize],
    (num_heads, head_dim): (usize, usize),
    causal: bool,
    bias: Option<&dyn Fn(usize) -> Result<Tensor>>,
    cache: &AttentionCache,
) -> Result<Tensor> {
    let _span = profile::span("attention");
    let hidden = num_heads * head_dim;
    let tokens: usize = seq_lens.iter().sum();
    let heads = (num_heads, head_dim);
    let on_cpu: Option<Result<Vec<f32>>> = match bias {
        None => pass.cpu_f32(qkv, |data| {
            let bf16 = pass.bf16_attention;
            Ok(kernels::varlen_attention(
                data, seq_lens, heads, causal, None, bf16,
            ))
        }),
        Some(bias) => cache
            .cpu_biases(pass, qkv, seq_lens, bias)
            .and_then(|biases| {
                pass.cpu_f32(qkv, |data| {
                    let biases = biases?;
                    let bias_of: Vec<&[f32]> = biases.iter().map(|b| b.as_slice()).collect();
                    let bf16 = pass.bf16_attention;
                    let bias_of = Some(bias_of.as_slice());
                    Ok(kernels::varlen_attention(
                        data, seq_lens, heads, causal, bias_of, bf16,
                    ))
                })
            }),
    };
    if let Some(out) = on_cpu {
        return cpu_tensor(out?, tokens, hidden);
    }
    let shape = AttentionShape {
        heads: num_heads,
        kv_heads: num_heads,
        head_dim,
    };
    let mask = if causal {
        AttentionMask::Causal
    } else {
        AttentionMask::Full
    };
    padded_attention(&[qkv], seq_lens, shape, mask, bias, cache)
}

/// What the attention of every layer in one forward pass shares, made by the first layer that
/// needs it and reused by the others: on the CPU the bias values of each sequence; elsewhere the
/// padded blocks' gather indices and one additive tensor per block (bias, positional mask and
/// padded keys summed and laid out as `batch × heads × len × len`), so that a layer adds it to its
/// scores as two same-shaped tensors. (A broadcast add over the scores runs candle's strided GPU
/// kernel, which divides by every dimension of every element: per layer that was the slow part.)
///
/// The architectures make one per pass; every layer of the pass must give the same sequence
/// lengths and bias (MPNet's relative bias is one table for all its layers).
#[derive(Default)]
pub struct AttentionCache {
    cpu_biases: std::cell::RefCell<Option<Vec<std::sync::Arc<Vec<f32>>>>>,
    blocks: std::cell::RefCell<std::collections::HashMap<AttentionMask, Vec<PaddedBlock>>>,
}

impl AttentionCache {
    /// [`compute_cpu_biases`], once per pass.
    fn cpu_biases(
        &self,
        pass: Pass,
        t: &Tensor,
        seq_lens: &[usize],
        bias: &dyn Fn(usize) -> Result<Tensor>,
    ) -> Option<Result<Vec<std::sync::Arc<Vec<f32>>>>> {
        if let Some(cached) = self.cpu_biases.borrow().as_ref() {
            if cached.len() == seq_lens.len() {
                return Some(Ok(cached.clone()));
            }
        }
        let computed = compute_cpu_biases(pass, t, seq_lens, bias)?;
        if let Ok(values) = &computed {
            *self.cpu_biases.borrow_mut() = Some(values.clone());
        }
        Some(computed)
    }
}

/// The bias of each sequence as `f32` values for the CPU kernel, computed once per distinct
/// length; `None` where the CPU kernel does not apply to `t`.
fn compute_cpu_biases(
    pass: Pass,
    t: &Tensor,
    seq_lens: &[usize],
    bias: &dyn Fn(usize) -> Result<Tensor>,
) -> Option<Result<Vec<std::sync::Arc<Vec<f32>>>>> {
    if !pass.kernels_apply(t) {
        return None;
    }
    let mut by_len: std::collections::HashMap<usize, std::sync::Arc<Vec<f32>>> =
        std::collections::HashMap::new();
    let mut per_seq = Vec::with_capacity(seq_lens.len());
    for &len in seq_lens {
        if let std::collections::hash_map::Entry::Vacant(e) = by_len.entry(len) {
            let values = bias(len)
                .and_then(|t| Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?));
            match values {
                Ok(values) => e.insert(std::sync::Arc::new(values)),
                Err(err) => return Some(Err(err)),
            };
        }
        per_seq.push(by_len[&len].clone());
    }
    Some(Ok(per_seq))
}

fn causal_mask(len: usize, dtype: DType, device: &Device) -> Result<Tensor> {
    let mask: Vec<f32> = (0..len)
        .flat_map(|i| (0..len).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Ok(Tensor::from_vec(mask, (len, len), device)?.to_dtype(dtype)?)
}

pub use crate::kernels::AttentionMask;

/// Head counts of an attention layer; `kv_heads < heads` is grouped-query attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttentionShape {
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
}

/// Attention over packed sequences with separate `q` (`tokens × heads·head_dim`) and `k`, `v`
/// (`tokens × kv_heads·head_dim`), an optional additive bias per sequence length (`heads × len ×
/// len`, MPNet's relative positions) and a mask. On CPU (f32) it runs the attention kernel, as
/// [`packed_attention`] does; elsewhere plain candle ops.
#[allow(clippy::too_many_arguments)]
pub fn packed_attention_general(
    pass: Pass,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    seq_lens: &[usize],
    shape: AttentionShape,
    mask: AttentionMask,
    bias: Option<&dyn Fn(usize) -> Result<Tensor>>,
    cache: &AttentionCache,
) -> Result<Tensor> {
    let _span = profile::span("attention");
    if let Some(out) = general_attention_on_cpu(pass, q, k, v, seq_lens, shape, mask, bias, cache) {
        let tokens: usize = seq_lens.iter().sum();
        return cpu_tensor(out?, tokens, shape.heads * shape.head_dim);
    }
    padded_attention(&[q, k, v], seq_lens, shape, mask, bias, cache)
}

/// At most this many attention scores (`sequences × heads × longest² `) per padded group.
const PADDED_SCORES: usize = 1 << 27;

/// The sequences of one padded group: `count` of them from `first`, the longest `longest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PaddedGroup {
    pub first: usize,
    pub count: usize,
    pub longest: usize,
}

/// Consecutive sequences gathered into padded groups: a group grows while padding would add at
/// most a quarter to its real tokens and its scores stay under `max_scores` (a sequence alone
/// always makes a group). Length-sorted input (as `Embedder` packs it) gives few, full groups.
pub(crate) fn padded_groups(
    seq_lens: &[usize],
    heads: usize,
    max_scores: usize,
) -> Vec<PaddedGroup> {
    let mut groups: Vec<PaddedGroup> = Vec::new();
    let mut tokens = 0;
    for (i, &len) in seq_lens.iter().enumerate() {
        if let Some(g) = groups.last_mut() {
            let longest = g.longest.max(len);
            let padded = (g.count + 1) * longest;
            if 4 * padded <= 5 * (tokens + len) && padded * longest * heads <= max_scores {
                g.count += 1;
                g.longest = longest;
                tokens += len;
                continue;
            }
        }
        groups.push(PaddedGroup {
            first: i,
            count: 1,
            longest: len,
        });
        tokens = len;
    }
    groups
}

/// Attention over packed sequences with plain candle ops, the way batched frameworks run it:
/// the sequences of each [`padded_groups`] group are gathered into one padded `batch × heads ×
/// longest × head_dim` block, attend with padded keys masked out, and the real rows are gathered
/// back. That is a fixed number of device operations per group rather than per sequence, which on
/// a GPU is the difference between a few kernel launches and thousands.
///
/// `parts` is `[qkv]` (`tokens × 3·heads·head_dim`, BERT's fused projection) or `[q, k, v]`.
/// `bias(len)` (`heads × len × len`) is asked for once per group and pass (the blocks live in
/// `cache`) at the group's longest length and must depend only on positions (MPNet's relative
/// buckets do), as must `mask`: a shorter sequence uses the top-left corner.
fn padded_attention(
    parts: &[&Tensor],
    seq_lens: &[usize],
    shape: AttentionShape,
    mask: AttentionMask,
    bias: Option<&dyn Fn(usize) -> Result<Tensor>>,
    cache: &AttentionCache,
) -> Result<Tensor> {
    let AttentionShape {
        heads,
        kv_heads,
        head_dim,
    } = shape;
    let device = parts[0].device();
    let dtype = parts[0].dtype();
    if seq_lens.iter().sum::<usize>() == 0 {
        return Ok(Tensor::zeros((0, heads * head_dim), dtype, device)?);
    }
    let blocks = {
        let mut cached = cache.blocks.borrow_mut();
        match cached.get(&mask) {
            Some(blocks) => blocks.clone(),
            None => {
                let blocks = padded_blocks(seq_lens, heads, mask, bias, dtype, device)?;
                cached.insert(mask, blocks.clone());
                blocks
            }
        }
    };
    let scale = 1.0 / (head_dim as f64).sqrt();
    // Each operand as rows of `head_dim` values: row `token · width + head`.
    let as_head_rows = |t: &Tensor| -> Result<(Tensor, usize)> {
        let width = t.dim(1)? / head_dim;
        Ok((
            t.contiguous()?.reshape((t.dim(0)? * width, head_dim))?,
            width,
        ))
    };
    let operands: Vec<(Tensor, usize, usize)> = match parts {
        // (head rows, heads per token row, first head of q / k / v)
        [qkv] => {
            let (rows, width) = as_head_rows(qkv)?;
            vec![
                (rows.clone(), width, 0),
                (rows.clone(), width, heads),
                (rows, width, heads + kv_heads),
            ]
        }
        [q, k, v] => {
            let (q, wq) = as_head_rows(q)?;
            let (k, wk) = as_head_rows(k)?;
            let (v, wv) = as_head_rows(v)?;
            vec![(q, wq, 0), (k, wk, 0), (v, wv, 0)]
        }
        _ => unreachable!("padded_attention takes [qkv] or [q, k, v]"),
    };
    let mut outputs = Vec::with_capacity(blocks.len());
    for block in &blocks {
        let (b, l) = (block.count, block.longest);
        // `b × heads × l × head_dim`, gathered straight from the head rows (grouped-query heads
        // read their key/value head's rows): no transposing copies.
        let gathered = |i: usize, n: usize| -> Result<Tensor> {
            let (rows, width, at) = &operands[i];
            let index = block.head_index(*width, *at, n, heads, device)?;
            Ok(rows
                .index_select(&index, 0)?
                .reshape((b, heads, l, head_dim))?)
        };
        let q = gathered(0, heads)?;
        let k = gathered(1, kv_heads)?;
        let v = gathered(2, kv_heads)?;
        // Scaling q (l × head_dim per head) costs a pass over far less than the scores (l × l).
        let mut scores = (q * scale)?.matmul(&k.t()?)?;
        if let Some(additive) = &block.additive {
            scores = (scores + additive)?;
        }
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let out = probs
            .matmul(&v)?
            .reshape((b * heads * l, head_dim))?
            .index_select(&block.back, 0)?;
        outputs.push(out.reshape((block.tokens, heads * head_dim))?);
    }
    Ok(Tensor::cat(&outputs, 0)?)
}

/// [`PaddedBlock::head_index`]'s indices by (heads per token row, first head, source heads).
type HeadIndices = std::collections::HashMap<(usize, usize, usize), Tensor>;

/// One padded block of [`padded_attention`]: `count` sequences padded to `longest`.
#[derive(Debug, Clone)]
struct PaddedBlock {
    count: usize,
    longest: usize,
    /// Real tokens in the block.
    tokens: usize,
    /// `count·longest`: the packed token each padded slot reads (a padding slot repeats its
    /// sequence's last token).
    slot_tokens: std::sync::Arc<Vec<u32>>,
    /// For each real token (packed order) and head, its row in the `count·heads·longest ×
    /// head_dim` output.
    back: Tensor,
    /// `count × heads × longest × longest`: bias + positional mask + padded keys, or `None` when
    /// all three are zero.
    additive: Option<Tensor>,
    /// Head-row gather indices by (heads per token row, first head, source heads).
    indices: std::rc::Rc<std::cell::RefCell<HeadIndices>>,
}

impl PaddedBlock {
    /// The rows (`token · width + at + head`) that lay `n` source heads out as `count × heads ×
    /// longest`, query head `h` reading source head `h / (heads / n)`.
    fn head_index(
        &self,
        width: usize,
        at: usize,
        n: usize,
        heads: usize,
        device: &Device,
    ) -> Result<Tensor> {
        let key = (width, at, n);
        if let Some(index) = self.indices.borrow().get(&key) {
            return Ok(index.clone());
        }
        let (b, l) = (self.count, self.longest);
        let group = heads / n;
        let mut rows = Vec::with_capacity(b * heads * l);
        for s in 0..b {
            for h in 0..heads {
                for p in 0..l {
                    let token = self.slot_tokens[s * l + p] as usize;
                    rows.push((token * width + at + h / group) as u32);
                }
            }
        }
        let index = Tensor::from_vec(rows, b * heads * l, device)?;
        self.indices.borrow_mut().insert(key, index.clone());
        Ok(index)
    }
}

/// The padded blocks of one pass's sequences (see [`padded_groups`]); groups of empty sequences
/// only are left out (they have no rows).
fn padded_blocks(
    seq_lens: &[usize],
    heads: usize,
    mask: AttentionMask,
    bias: Option<&dyn Fn(usize) -> Result<Tensor>>,
    dtype: DType,
    device: &Device,
) -> Result<Vec<PaddedBlock>> {
    let starts = kernels::seq_starts(seq_lens);
    let mut blocks = Vec::new();
    for g in padded_groups(seq_lens, heads, PADDED_SCORES) {
        let (b, l) = (g.count, g.longest);
        if l == 0 {
            continue; // only empty sequences: no rows to attend or to return
        }
        let lens = &seq_lens[g.first..g.first + g.count];
        let mut slot_tokens = Vec::with_capacity(b * l);
        let mut back = Vec::new();
        let mut key_mask = vec![0f32; b * l];
        for (s, &len) in lens.iter().enumerate() {
            let start = starts[g.first + s];
            for p in 0..l {
                // (An empty sequence reads token 0: it has no real rows to keep.)
                slot_tokens.push(if len == 0 {
                    0
                } else {
                    (start + p.min(len - 1)) as u32
                });
                if p >= len {
                    key_mask[s * l + p] = f32::NEG_INFINITY;
                }
            }
            for p in 0..len {
                for h in 0..heads {
                    back.push(((s * heads + h) * l + p) as u32);
                }
            }
        }
        let mut additive: Option<Tensor> = None;
        let mut add = |t: Tensor| -> Result<()> {
            additive = Some(match additive.take() {
                None => t,
                Some(a) => a.broadcast_add(&t)?,
            });
            Ok(())
        };
        if let Some(bias) = bias {
            add(bias(l)?.to_dtype(dtype)?.unsqueeze(0)?)?;
        }
        match mask {
            AttentionMask::Full => {}
            AttentionMask::Causal => add(causal_mask(l, dtype, device)?.reshape((1, 1, l, l))?)?,
            AttentionMask::Window(w) => {
                add(window_mask(l, w, dtype, device)?.reshape((1, 1, l, l))?)?
            }
        }
        if lens.iter().any(|&len| len < l) {
            add(Tensor::from_vec(key_mask, (b, 1, 1, l), device)?.to_dtype(dtype)?)?;
        }
        let additive = additive
            .map(|a| -> Result<Tensor> { Ok(a.broadcast_as((b, heads, l, l))?.contiguous()?) })
            .transpose()?;
        let back_len = back.len();
        blocks.push(PaddedBlock {
            count: b,
            longest: l,
            tokens: back_len / heads,
            slot_tokens: std::sync::Arc::new(slot_tokens),
            back: Tensor::from_vec(back, back_len, device)?,
            additive,
            indices: Default::default(),
        });
    }
    Ok(blocks)
}

/// [`packed_attention_general`] on the CPU kernel (f32 tensors in CPU memory, kernels on):
/// `None` where it does not apply.
#[allow(clippy::too_many_arguments)]
fn general_attention_on_cpu(
    pass: Pass,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    seq_lens: &[usize],
    shape: AttentionShape,
    mask: AttentionMask,
    bias: Option<&dyn Fn(usize) -> Result<Tensor>>,
    cache: &AttentionCache,
) -> Option<Result<Vec<f32>>> {
    if !pass.kernels_apply(q) {
        return None;
    }
    let AttentionShape {
        heads,
        kv_heads,
        head_dim,
    } = shape;
    let biases = match bias.map(|bias| cache.cpu_biases(pass, q, seq_lens, bias)) {
        None => None,
        Some(Some(Ok(biases))) => Some(biases),
        Some(Some(Err(err))) => return Some(Err(err)),
        Some(None) => return None,
    };
    pass.cpu_f32(q, |qd| {
        pass.cpu_f32(k, |kd| {
            pass.cpu_f32(v, |vd| {
                let bias_of: Option<Vec<&[f32]>> = biases
                    .as_ref()
                    .map(|b| b.iter().map(|v| v.as_slice()).collect());
                kernels::attention(
                    kernels::Heads {
                        data: qd,
                        ld: heads * head_dim,
                        heads,
                    },
                    kernels::Heads {
                        data: kd,
                        ld: kv_heads * head_dim,
                        heads: kv_heads,
                    },
                    kernels::Heads {
                        data: vd,
                        ld: kv_heads * head_dim,
                        heads: kv_heads,
                    },
                    seq_lens,
                    head_dim,
                    mask,
                    bias_of.as_deref(),
                    pass.bf16_attention,
                )
            })
        })
        .flatten()
    })
    .flatten()
    .map(Ok)
}

fn window_mask(len: usize, window: usize, dtype: DType, device: &Device) -> Result<Tensor> {
    let mask: Vec<f32> = (0..len)
        .flat_map(|i| {
            (0..len).map(move |j| {
                if i.abs_diff(j) > window {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
        })
        .collect();
    Ok(Tensor::from_vec(mask, (len, len), device)?.to_dtype(dtype)?)
}

/// Rotary position embeddings (the `rotate_half` form of Llama, Qwen and ModernBERT).
#[derive(Debug, Clone)]
pub struct Rope {
    /// `max_positions × head_dim/2` tables.
    cos: Tensor,
    sin: Tensor,
}

impl Rope {
    pub fn new(
        head_dim: usize,
        theta: f64,
        max_positions: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let half = head_dim / 2;
        let inv_freq: Vec<f64> = (0..half)
            .map(|i| 1.0 / theta.powf(2.0 * i as f64 / head_dim as f64))
            .collect();
        let mut cos = Vec::with_capacity(max_positions * half);
        let mut sin = Vec::with_capacity(max_positions * half);
        for p in 0..max_positions {
            for f in &inv_freq {
                let angle = p as f64 * f;
                cos.push(angle.cos() as f32);
                sin.push(angle.sin() as f32);
            }
        }
        let table = |v: Vec<f32>| -> Result<Tensor> {
            Ok(Tensor::from_vec(v, (max_positions, half), device)?.to_dtype(dtype)?)
        };
        Ok(Self {
            cos: table(cos)?,
            sin: table(sin)?,
        })
    }

    /// Rotates columns `column..column + heads·head_dim` of a packed `tokens × stride` tensor
    /// (Q or K inside a fused QKV projection), each sequence from position 0, into a contiguous
    /// `tokens × heads·head_dim` tensor; with `head_norm`, each head RMS-normalized first
    /// (Qwen3's q_norm and k_norm). In one pass on CPU ([`kernels::rope`]), else through
    /// candle's ops and [`Rope::apply`].
    pub fn apply_columns(
        &self,
        pass: Pass,
        x: &Tensor,
        column: usize,
        (heads, head_dim): (usize, usize),
        seq_lens: &[usize],
        head_norm: Option<&RmsNorm>,
    ) -> Result<Tensor> {
        let _span = profile::span("rope");
        self.check(seq_lens)?;
        let (tokens, stride) = x.dims2()?;
        let width = heads * head_dim;
        if column + width > stride || head_dim != 2 * self.cos.dims()[1] {
            return Err(crate::error::ModelError::Unsupported(format!(
                "rotary embeddings over columns {column}..{} of {stride}, head_dim {head_dim}",
                column + width
            )));
        }
        let rotate = |gamma: Option<&[f32]>| {
            pass.cpu_f32(x, |xs| {
                pass.cpu_f32(&self.cos, |cos| {
                    pass.cpu_f32(&self.sin, |sin| {
                        let norm = head_norm.zip(gamma).map(|(n, g)| (g, n.eps));
                        let heads = (heads, head_dim);
                        kernels::rope(xs, stride, column, heads, seq_lens, (cos, sin), norm)
                    })
                })
            })
            .flatten()
            .flatten()
        };
        let fast = match head_norm {
            Some(norm) if norm.weight.dims() == [head_dim] => {
                pass.cpu_f32(&norm.weight, |g| rotate(Some(g))).flatten()
            }
            Some(_) => None,
            None => rotate(None),
        };
        if let Some(out) = fast {
            return cpu_tensor(out, tokens, width);
        }
        let mut part = x.narrow(1, column, width)?.contiguous()?;
        if let Some(norm) = head_norm {
            part = norm
                .forward(pass, &part.reshape((tokens, heads, head_dim))?)?
                .reshape((tokens, width))?;
        }
        self.apply(&part, seq_lens, heads)
    }

    /// Errs if a sequence is longer than the tables.
    fn check(&self, seq_lens: &[usize]) -> Result<()> {
        let max = self.cos.dims()[0];
        match seq_lens.iter().find(|&&len| len > max) {
            Some(&len) => Err(crate::error::ModelError::Unsupported(format!(
                "a sequence of {len} tokens exceeds max_position_embeddings {max}"
            ))),
            None => Ok(()),
        }
    }

    /// Rotates a packed `tokens × heads·head_dim` tensor, each sequence from position 0: every
    /// token's row of the tables is gathered by its position, then one rotation runs over all
    /// (candle's ops: any device and dtype).
    pub fn apply(&self, x: &Tensor, seq_lens: &[usize], heads: usize) -> Result<Tensor> {
        let (tokens, width) = x.dims2()?;
        let head_dim = width / heads;
        self.check(seq_lens)?;
        let positions: Vec<u32> = seq_lens.iter().flat_map(|&len| 0..len as u32).collect();
        debug_assert_eq!(positions.len(), tokens);
        let positions = Tensor::from_vec(positions, tokens, x.device())?;
        let cos = self.cos.index_select(&positions, 0)?;
        let sin = self.sin.index_select(&positions, 0)?;
        let xs = x.contiguous()?.reshape((1, tokens, heads, head_dim))?;
        Ok(candle_nn::rotary_emb::rope_thd(&xs, &cos, &sin)?.reshape((tokens, width))?)
    }
}

/// RMS norm over the last dimension (`x / rms(x) · weight`), as Qwen and Llama use it.
#[derive(Debug, Clone)]
pub struct RmsNorm {
    weight: Tensor,
    eps: f32,
}

impl RmsNorm {
    pub fn load(vb: VarBuilder, dim: usize, eps: f64) -> Result<Self> {
        Ok(Self {
            weight: vb.get(dim, "weight")?,
            eps: eps as f32,
        })
    }

    pub fn forward(&self, pass: Pass, x: &Tensor) -> Result<Tensor> {
        Ok(self.add_forward(pass, x, None)?.1)
    }

    /// For pre-norm blocks: `(x + delta, rms_norm(x + delta))` (`x` and its norm without a
    /// `delta`), in one pass on CPU.
    pub fn add_forward(
        &self,
        pass: Pass,
        x: &Tensor,
        delta: Option<&Tensor>,
    ) -> Result<(Tensor, Tensor)> {
        let _span = profile::span("rms_norm");
        let eps = self.eps;
        let fast = pass.cpu_f32(&self.weight, |gamma| {
            residual_norm_cpu(pass, x, delta, RowNorm::Rms { gamma, eps }, true)
        });
        if let Some(Some(done)) = fast {
            return done;
        }
        let x = match delta {
            Some(d) => (x + d)?,
            None => x.clone(),
        };
        let normed = candle_nn::ops::rms_norm(&x.contiguous()?, &self.weight, eps)?;
        Ok((x, normed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(rows: usize, cols: usize, seed: u64) -> Tensor {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let data: Vec<f32> = (0..rows * cols)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
            })
            .collect();
        Tensor::from_vec(data, (rows, cols), &Device::Cpu).unwrap()
    }

    #[test]
    fn padded_groups_bound_padding_and_scores() {
        let whole = |lens: &[usize], max| {
            padded_groups(lens, 2, max)
                .iter()
                .map(|g| (g.first, g.count, g.longest))
                .collect::<Vec<_>>()
        };
        // Sorted, similar lengths: one group.
        assert_eq!(whole(&[10, 10, 9, 9, 8], usize::MAX), vec![(0, 5, 10)]);
        // A long one then short ones: padding would triple the tokens, so they split.
        assert_eq!(
            whole(&[100, 3, 3, 2], usize::MAX),
            vec![(0, 1, 100), (1, 3, 3)]
        );
        // The score bound (2 sequences × 2 heads × 10² = 400) splits equal lengths too.
        assert_eq!(whole(&[10, 10, 10, 10], 400), vec![(0, 2, 10), (2, 2, 10)]);
        // A sequence alone is a group even over the bound.
        assert_eq!(whole(&[50], 10), vec![(0, 1, 50)]);
    }

    /// The padded candle path (what CUDA runs) against the CPU kernel, for every mask, a bias,
    /// grouped-query heads and lengths that make several groups (and an empty sequence).
    #[test]
    fn padded_attention_equals_the_cpu_kernel() {
        let seq_lens = [9, 9, 8, 1, 30, 0, 4, 4, 3, 17];
        let tokens: usize = seq_lens.iter().sum();
        for (shape, mask, with_bias) in [
            (
                AttentionShape {
                    heads: 4,
                    kv_heads: 4,
                    head_dim: 8,
                },
                AttentionMask::Full,
                true,
            ),
            (
                AttentionShape {
                    heads: 4,
                    kv_heads: 2,
                    head_dim: 8,
                },
                AttentionMask::Causal,
                false,
            ),
            (
                AttentionShape {
                    heads: 2,
                    kv_heads: 2,
                    head_dim: 16,
                },
                AttentionMask::Window(3),
                false,
            ),
        ] {
            let q = random(tokens, shape.heads * shape.head_dim, 1);
            let k = random(tokens, shape.kv_heads * shape.head_dim, 2);
            let v = random(tokens, shape.kv_heads * shape.head_dim, 3);
            let heads = shape.heads;
            // Depends only on i - j, as MPNet's relative buckets do.
            let bias = move |len: usize| -> Result<Tensor> {
                let values: Vec<f32> = (0..heads * len * len)
                    .map(|x| {
                        let (h, i, j) = (x / (len * len), x / len % len, x % len);
                        ((i as f32 - j as f32) * 0.1 + h as f32).sin()
                    })
                    .collect();
                Ok(Tensor::from_vec(values, (heads, len, len), &Device::Cpu)?)
            };
            let bias: Option<&dyn Fn(usize) -> Result<Tensor>> =
                if with_bias { Some(&bias) } else { None };
            let fresh = AttentionCache::default;
            let kernel = packed_attention_general(
                Pass::default(),
                &q,
                &k,
                &v,
                &seq_lens,
                shape,
                mask,
                bias,
                &fresh(),
            )
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
            let padded = (|| {
                // Twice with one cache: the second call (a later layer) reuses the blocks.
                let cache = fresh();
                let generic = Pass::GENERIC;
                let first = packed_attention_general(
                    generic, &q, &k, &v, &seq_lens, shape, mask, bias, &cache,
                )?;
                let again = packed_attention_general(
                    generic, &q, &k, &v, &seq_lens, shape, mask, bias, &cache,
                )?;
                assert_eq!(first.to_vec2::<f32>()?, again.to_vec2::<f32>()?);
                Ok::<_, ModelError>(first)
            })()
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
            assert_eq!(padded.len(), tokens);
            for (row, (a, b)) in kernel.iter().zip(&padded).enumerate() {
                for (x, y) in a.iter().zip(b) {
                    assert!((x - y).abs() < 1e-5, "{mask:?} row {row}: {x} vs {y}");
                }
            }
        }
        // The fused-qkv form (BERT) gives the same as separate q, k, v.
        let shape = AttentionShape {
            heads: 4,
            kv_heads: 4,
            head_dim: 8,
        };
        let qkv = random(tokens, 3 * 32, 4);
        let fused = packed_attention(
            Pass::GENERIC,
            &qkv,
            &seq_lens,
            (4, 8),
            false,
            None,
            &AttentionCache::default(),
        )
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
        let part = |i: usize| qkv.narrow(1, i * 32, 32).unwrap().contiguous().unwrap();
        let separate = packed_attention_general(
            Pass::default(),
            &part(0),
            &part(1),
            &part(2),
            &seq_lens,
            shape,
            AttentionMask::Full,
            None,
            &AttentionCache::default(),
        )
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
        for (a, b) in fused.iter().zip(&separate) {
            for (x, y) in a.iter().zip(b) {
                assert!((x - y).abs() < 1e-5, "{x} vs {y}");
            }
        }
    }
}
