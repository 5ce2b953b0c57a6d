//! The building blocks every architecture shares, each with two implementations: the CPU `f32`
//! fast path in [`crate::kernels`] and plain candle ops for every other device and dtype (CUDA,
//! f16). Architectures call these and never branch on the device themselves, so a speed change
//! here serves them all. A model loaded with [`crate::LoadOptions::generic_ops`] takes the plain
//! candle path on CPU too (tests compare the two).

use std::cell::Cell;

use candle_core::{DType, Device, Storage, Tensor};
use candle_nn::VarBuilder;

use crate::error::{ModelError, Result};
use crate::kernels::{self, bf16::PackedWeight, int8::QuantizedWeight, Epilogue};
use crate::profile;

thread_local! {
    /// `true` while a forward pass of a model loaded with `generic_ops` runs on this thread.
    static GENERIC_OPS: Cell<bool> = const { Cell::new(false) };
}

/// Runs `forward` (one forward pass of a model) with the CPU kernels off (`generic`: plain candle
/// ops everywhere) or on, and restores the previous setting afterwards, also on panic.
///
/// The choice belongs to the model ([`crate::LoadOptions::generic_ops`]); it reaches the ops
/// through this thread for the span of the pass because they are called from the architectures,
/// which carry no load options. Only the thread running the pass reads it (the kernels' rayon
/// tasks never do), so models with different settings can run side by side on other threads.
pub(crate) fn with_generic_ops<R>(generic: bool, forward: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            GENERIC_OPS.set(self.0);
        }
    }
    let _restore = Restore(GENERIC_OPS.replace(generic));
    forward()
}

/// Whether the CPU kernels may be used: not inside [`with_generic_ops`]`(true, ..)`.
fn fast_path_enabled() -> bool {
    !GENERIC_OPS.get()
}

/// Runs `f` on the contiguous `f32` data of a CPU tensor; `None` when the tensor is not one.
fn with_cpu_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Option<R> {
    if !fast_path_enabled() || !t.device().is_cpu() || t.dtype() != DType::F32 {
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
}

impl Linear {
    pub fn load(vb: VarBuilder, in_dim: usize, out_dim: usize, bias: bool) -> Result<Self> {
        let weight = vb.get((out_dim, in_dim), "weight")?;
        let bias = if bias {
            Some(vb.get(out_dim, "bias")?)
        } else {
            None
        };
        Ok(Self {
            weight,
            bias,
            label: "linear",
            packed_bf16: None,
            int8: None,
        })
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
        })
    }

    /// Computes this linear's products in bf16 from now on (CPU with AVX512-BF16 only).
    pub fn use_bf16(&mut self) -> Result<()> {
        let (n, k) = self.weight.dims2()?;
        let packed = with_cpu_f32(&self.weight, |w| PackedWeight::pack(w, n, k));
        self.packed_bf16 = packed.map(std::sync::Arc::new);
        Ok(())
    }

    /// Computes this linear's products in int8 from now on (CPU only): the weight is quantized
    /// once, here, and its f32 copy dropped.
    pub fn use_int8(&mut self) -> Result<()> {
        let (n, k) = self.weight.dims2()?;
        let quantized = with_cpu_f32(&self.weight, |w| QuantizedWeight::quantize(w, n, k)).ok_or(
            ModelError::PrecisionUnavailable(
                "int8 runs on fathom's CPU kernels: an f32 model on the CPU",
            ),
        )?;
        self.int8 = Some(std::sync::Arc::new(quantized));
        self.weight = Tensor::zeros((n, 0), DType::F32, self.weight.device())?;
        Ok(())
    }

    pub fn out_dim(&self) -> usize {
        self.weight.dims()[0]
    }

    pub fn forward(&self, x: &Tensor, act: Option<HiddenAct>) -> Result<Tensor> {
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
                Some(packed) => Some(kernels::linear_bf16(xs, rows, packed, n, bias, epilogue)),
                None => with_cpu_f32(&self.weight, |ws| {
                    kernels::linear(xs, rows, k, ws, n, bias, epilogue)
                }),
            }
        };
        let fast = with_cpu_f32(x, |xs| match &self.bias {
            Some(b) => with_cpu_f32(b, |bs| product(xs, Some(bs))).flatten(),
            None => product(xs, None),
        })
        .flatten();
        if fast.is_none() && self.int8.is_some() {
            // Loading refuses int8 with generic ops or off the CPU, so this is a bug, not input.
            return Err(ModelError::PrecisionUnavailable(
                "an int8 linear was called outside fathom's CPU kernels",
            ));
        }
        if let Some(out) = fast {
            let out = cpu_tensor(out, rows, n)?;
            return match act {
                Some(a) if epilogue == Epilogue::None => a.apply(&out),
                _ => Ok(out),
            };
        }
        let mut out = x.matmul(&self.weight.t()?)?;
        if let Some(b) = &self.bias {
            out = out.broadcast_add(b)?;
        }
        match act {
            Some(a) => a.apply(&out),
            None => Ok(out),
        }
    }
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

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let _span = profile::span("layer_norm");
        Ok(candle_nn::ops::layer_norm(
            x,
            &self.gamma,
            &self.beta,
            self.eps as f32,
        )?)
    }

    /// `layer_norm(x + residual)`, fused into one pass on CPU.
    pub fn forward_residual(&self, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        let _span = profile::span("residual+layer_norm");
        let (rows, cols) = x.dims2()?;
        let fast = with_cpu_f32(x, |xs| {
            with_cpu_f32(residual, |rs| {
                with_cpu_f32(&self.gamma, |gs| {
                    with_cpu_f32(&self.beta, |bs| {
                        let mut out = xs.to_vec();
                        kernels::add_layer_norm(&mut out, rs, gs, bs, self.eps as f32);
                        out
                    })
                })
            })
        })
        .flatten()
        .flatten()
        .flatten();
        match fast {
            Some(out) => cpu_tensor(out, rows, cols),
            None => self.forward(&(x + residual)?),
        }
    }
}

/// Self-attention over packed sequences: `qkv` is `tokens × 3·hidden`, `seq_lens` the lengths
/// of the sequences packed in it. Each sequence attends only to itself (no padding, no mask);
/// `causal` limits each token to itself and earlier ones.
pub fn packed_attention(
    qkv: &Tensor,
    seq_lens: &[usize],
    num_heads: usize,
    head_dim: usize,
    causal: bool,
) -> Result<Tensor> {
    let _span = profile::span("attention");
    let hidden = num_heads * head_dim;
    let tokens: usize = seq_lens.iter().sum();
    if let Some(out) = with_cpu_f32(qkv, |data| {
        kernels::varlen_attention(data, seq_lens, num_heads, head_dim, causal)
    }) {
        return cpu_tensor(out, tokens, hidden);
    }
    let scale = 1.0 / (head_dim as f64).sqrt();
    let mut outputs = Vec::with_capacity(seq_lens.len());
    let mut start = 0;
    for &len in seq_lens {
        let rows = qkv.narrow(0, start, len)?;
        let split = |i: usize| -> Result<Tensor> {
            Ok(rows
                .narrow(1, i * hidden, hidden)?
                .reshape((len, num_heads, head_dim))?
                .transpose(0, 1)?
                .contiguous()?)
        };
        let (q, k, v) = (split(0)?, split(1)?, split(2)?);
        let mut scores = (q.matmul(&k.t()?)? * scale)?;
        if causal {
            scores = scores.broadcast_add(&causal_mask(len, scores.dtype(), qkv.device())?)?;
        }
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let out = probs.matmul(&v)?.transpose(0, 1)?.reshape((len, hidden))?;
        outputs.push(out);
        start += len;
    }
    Ok(Tensor::cat(&outputs, 0)?)
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
pub fn packed_attention_general(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    seq_lens: &[usize],
    shape: AttentionShape,
    mask: AttentionMask,
    bias: Option<&dyn Fn(usize) -> Result<Tensor>>,
) -> Result<Tensor> {
    let _span = profile::span("attention");
    let AttentionShape {
        heads,
        kv_heads,
        head_dim,
    } = shape;
    if let Some(out) = general_attention_on_cpu(q, k, v, seq_lens, shape, mask, bias) {
        let tokens: usize = seq_lens.iter().sum();
        return cpu_tensor(out?, tokens, heads * head_dim);
    }
    let scale = 1.0 / (head_dim as f64).sqrt();
    let group = heads / kv_heads;
    let mut outputs = Vec::with_capacity(seq_lens.len());
    let mut start = 0;
    for &len in seq_lens {
        let split = |t: &Tensor, n: usize| -> Result<Tensor> {
            Ok(t.narrow(0, start, len)?
                .reshape((len, n, head_dim))?
                .transpose(0, 1)?
                .contiguous()?)
        };
        let qs = split(q, heads)?;
        let mut ks = split(k, kv_heads)?;
        let mut vs = split(v, kv_heads)?;
        if group > 1 {
            // Query head h reads key/value head h / group.
            let repeat = |t: Tensor| -> Result<Tensor> {
                Ok(t.unsqueeze(1)?
                    .expand((kv_heads, group, len, head_dim))?
                    .contiguous()?
                    .reshape((heads, len, head_dim))?)
            };
            ks = repeat(ks)?;
            vs = repeat(vs)?;
        }
        let mut scores = (qs.matmul(&ks.t()?)? * scale)?;
        if let Some(bias) = bias {
            scores = scores.broadcast_add(&bias(len)?.to_dtype(scores.dtype())?)?;
        }
        let additive = match mask {
            AttentionMask::Full => None,
            AttentionMask::Causal => Some(causal_mask(len, scores.dtype(), q.device())?),
            AttentionMask::Window(w) => Some(window_mask(len, w, scores.dtype(), q.device())?),
        };
        if let Some(m) = additive {
            scores = scores.broadcast_add(&m)?;
        }
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let out = probs
            .matmul(&vs)?
            .transpose(0, 1)?
            .reshape((len, heads * head_dim))?;
        outputs.push(out);
        start += len;
    }
    Ok(Tensor::cat(&outputs, 0)?)
}

/// [`packed_attention_general`] on the CPU kernel (f32 tensors in CPU memory, kernels on):
/// `None` where it does not apply.
fn general_attention_on_cpu(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    seq_lens: &[usize],
    shape: AttentionShape,
    mask: AttentionMask,
    bias: Option<&dyn Fn(usize) -> Result<Tensor>>,
) -> Option<Result<Vec<f32>>> {
    if !fast_path_enabled() || !q.device().is_cpu() || q.dtype() != DType::F32 {
        return None;
    }
    let AttentionShape {
        heads,
        kv_heads,
        head_dim,
    } = shape;
    // The bias of each sequence, computed once per distinct length.
    let biases: Option<Vec<std::sync::Arc<Vec<f32>>>> = match bias {
        None => None,
        Some(bias) => {
            let mut by_len: std::collections::HashMap<usize, std::sync::Arc<Vec<f32>>> =
                std::collections::HashMap::new();
            let mut per_seq = Vec::with_capacity(seq_lens.len());
            for &len in seq_lens {
                if let std::collections::hash_map::Entry::Vacant(e) = by_len.entry(len) {
                    let values = bias(len).and_then(|t| {
                        Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
                    });
                    match values {
                        Ok(values) => e.insert(std::sync::Arc::new(values)),
                        Err(err) => return Some(Err(err)),
                    };
                }
                per_seq.push(by_len[&len].clone());
            }
            Some(per_seq)
        }
    };
    with_cpu_f32(q, |qd| {
        with_cpu_f32(k, |kd| {
            with_cpu_f32(v, |vd| {
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

    /// Rotates a packed `tokens × heads·head_dim` tensor, each sequence from position 0.
    pub fn apply(&self, x: &Tensor, seq_lens: &[usize], heads: usize) -> Result<Tensor> {
        let (tokens, width) = x.dims2()?;
        let head_dim = width / heads;
        let max = self.cos.dims()[0];
        let mut parts = Vec::with_capacity(seq_lens.len());
        let mut start = 0;
        for &len in seq_lens {
            if len > max {
                return Err(crate::error::ModelError::Unsupported(format!(
                    "a sequence of {len} tokens exceeds max_position_embeddings {max}"
                )));
            }
            let xs = x
                .narrow(0, start, len)?
                .reshape((1, len, heads, head_dim))?
                .transpose(1, 2)?
                .contiguous()?;
            let rotated = candle_nn::rotary_emb::rope(
                &xs,
                &self.cos.narrow(0, 0, len)?,
                &self.sin.narrow(0, 0, len)?,
            )?;
            parts.push(rotated.transpose(1, 2)?.reshape((len, width))?);
            start += len;
        }
        debug_assert_eq!(start, tokens);
        Ok(Tensor::cat(&parts, 0)?)
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

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let _span = profile::span("rms_norm");
        Ok(candle_nn::ops::rms_norm(
            &x.contiguous()?,
            &self.weight,
            self.eps,
        )?)
    }
}
