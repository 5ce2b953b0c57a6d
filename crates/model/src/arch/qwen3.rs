//! Qwen3 (`model_type: qwen3`: Qwen3-Embedding), a decoder used as an embedder with last-token
//! pooling.
//!
//! Config fields and what they mean here:
//! - causal attention: a token sees itself and earlier tokens only, so the last token carries the
//!   sequence (the pooling module says `lasttoken`);
//! - grouped-query attention: `num_key_value_heads` K/V heads shared by `num_attention_heads`
//!   query heads (head `h` reads K/V head `h / (heads / kv_heads)`), `head_dim` given explicitly;
//! - RMS norms (`rms_norm_eps`) before attention and MLP, on each head's queries and keys
//!   (`q_norm`, `k_norm`) and after the last layer;
//! - rotary position embeddings (`rope_parameters.rope_theta` or the older `rope_theta`);
//! - a SwiGLU MLP: `down(silu(gate(x)) · up(x))`.
//!
//! sentence-transformers pads Qwen3 on the left; here every sequence is packed on its own with
//! positions from 0 and no state is kept between calls, which is what left padding achieves
//! (rotary attention depends only on relative positions), so a text's vector does not depend on
//! what it is batched with.

use candle_core::Tensor;
use candle_nn::{Embedding, Module, VarBuilder};

use serde::Deserialize;

use super::{parse_config, weight_prefix, Encoder, PackedBatch};
use crate::error::{ModelError, Result};
use crate::ops::{
    packed_attention_general, AttentionCache, AttentionMask, AttentionShape, HiddenAct, Linear,
    LinearPrecision, Pass, RmsNorm, Rope,
};

#[derive(Debug)]
struct Layer {
    input_norm: RmsNorm,
    /// Q, K and V in one product.
    qkv: Linear,
    o: Linear,
    q_norm: RmsNorm,
    k_norm: RmsNorm,
    post_norm: RmsNorm,
    /// The gate and up projections in one product (`gate ‖ up`).
    gate_up: Linear,
    down: Linear,
}

impl Layer {
    fn linears_mut(&mut self) -> [&mut Linear; 4] {
        [
            &mut self.qkv,
            &mut self.o,
            &mut self.gate_up,
            &mut self.down,
        ]
    }
}

/// Qwen3's `config.json` fields.
#[derive(Debug, Deserialize)]
struct Qwen3Config {
    hidden_size: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    intermediate_size: usize,
    num_hidden_layers: usize,
    vocab_size: usize,
    max_position_embeddings: usize,
    rms_norm_eps: Option<f64>,
    attention_bias: Option<bool>,
    /// transformers ≥ 5: `{"rope_theta": …, "rope_type": …}`.
    rope_parameters: Option<RopeParameters>,
    rope_theta: Option<f64>,
    hidden_act: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RopeParameters {
    rope_theta: Option<f64>,
}

#[derive(Debug)]
pub struct Qwen3 {
    embeddings: Embedding,
    layers: Vec<Layer>,
    norm: RmsNorm,
    rope: Rope,
    shape: AttentionShape,
    act: HiddenAct,
    intermediate: usize,
}

impl Qwen3 {
    pub fn load(
        config: &serde_json::Value,
        vb: VarBuilder,
        precision: LinearPrecision,
    ) -> Result<Self> {
        let config: Qwen3Config = parse_config(config, "Qwen3")?;
        let hidden = config.hidden_size;
        let heads = config.num_attention_heads;
        if heads == 0 {
            return Err(ModelError::Unsupported(
                "Qwen3 config.json: num_attention_heads is 0".into(),
            ));
        }
        let kv_heads = config.num_key_value_heads.unwrap_or(heads);
        let head_dim = config.head_dim.unwrap_or(hidden / heads);
        let intermediate = config.intermediate_size;
        let num_layers = config.num_hidden_layers;
        let vocab = config.vocab_size;
        let max_positions = config.max_position_embeddings;
        let eps = config.rms_norm_eps.unwrap_or(1e-6);
        let bias = config.attention_bias.unwrap_or(false);
        let theta = config
            .rope_parameters
            .as_ref()
            .and_then(|p| p.rope_theta)
            .or(config.rope_theta)
            .unwrap_or(1_000_000.0);
        let act_name = config.hidden_act.as_deref().unwrap_or("silu");
        let act = HiddenAct::parse(act_name)
            .ok_or_else(|| ModelError::Unsupported(format!("Qwen3 hidden_act `{act_name}`")))?;
        if kv_heads == 0 || !heads.is_multiple_of(kv_heads) {
            return Err(ModelError::Unsupported(format!(
                "num_attention_heads {heads} is not a multiple of num_key_value_heads {kv_heads}"
            )));
        }
        let prefix = weight_prefix(&vb, "embed_tokens.weight", &["model."]).ok_or_else(|| {
            ModelError::Unsupported(
                "the weights have no embed_tokens.weight: not a Qwen3 checkpoint".into(),
            )
        })?;
        let vb = if prefix.is_empty() {
            vb
        } else {
            vb.pp(prefix.trim_end_matches('.'))
        };
        let embeddings = candle_nn::embedding(vocab, hidden, vb.pp("embed_tokens"))?;
        let mut layers = Vec::with_capacity(num_layers);
        for i in 0..num_layers {
            let l = vb.pp(format!("layers.{i}"));
            let a = l.pp("self_attn");
            let m = l.pp("mlp");
            let qkv = Linear::concat(&[
                Linear::load(a.pp("q_proj"), hidden, heads * head_dim, bias)?,
                Linear::load(a.pp("k_proj"), hidden, kv_heads * head_dim, bias)?,
                Linear::load(a.pp("v_proj"), hidden, kv_heads * head_dim, bias)?,
            ])?
            .named("qkv");
            let gate_up = Linear::concat(&[
                Linear::load(m.pp("gate_proj"), hidden, intermediate, false)?,
                Linear::load(m.pp("up_proj"), hidden, intermediate, false)?,
            ])?
            .named("ffn_up");
            let mut layer = Layer {
                input_norm: RmsNorm::load(l.pp("input_layernorm"), hidden, eps)?,
                qkv,
                o: Linear::load(a.pp("o_proj"), heads * head_dim, hidden, false)?.named("attn_out"),
                q_norm: RmsNorm::load(a.pp("q_norm"), head_dim, eps)?,
                k_norm: RmsNorm::load(a.pp("k_norm"), head_dim, eps)?,
                post_norm: RmsNorm::load(l.pp("post_attention_layernorm"), hidden, eps)?,
                gate_up,
                down: Linear::load(m.pp("down_proj"), intermediate, hidden, false)?
                    .named("ffn_down"),
            };
            layer
                .linears_mut()
                .into_iter()
                .try_for_each(|l| precision.apply(l))?;
            layers.push(layer);
        }
        let norm = RmsNorm::load(vb.pp("norm"), hidden, eps)?;
        let rope = Rope::new(head_dim, theta, max_positions, vb.dtype(), vb.device())?;
        Ok(Self {
            embeddings,
            layers,
            norm,
            rope,
            shape: AttentionShape {
                heads,
                kv_heads,
                head_dim,
            },
            act,
            intermediate,
        })
    }
}

impl Encoder for Qwen3 {
    fn word_embeddings(&self) -> &Tensor {
        self.embeddings.embeddings()
    }

    fn forward(&self, batch: &PackedBatch, pass: Pass) -> Result<Tensor> {
        let device = self.embeddings.embeddings().device();
        let ids = Tensor::from_vec(batch.input_ids.clone(), batch.tokens(), device)?;
        let mut x = self.embeddings.forward(&ids)?;
        let AttentionShape {
            heads, kv_heads, ..
        } = self.shape;
        let cache = AttentionCache::default();
        // The last sublayer's output, not yet added to `x`: the next norm adds it in its pass.
        let mut delta: Option<Tensor> = None;
        for layer in &self.layers {
            let (sum, h) = layer
                .input_norm
                .add_forward(pass, &x, delta.take().as_ref())?;
            x = sum;
            let qkv = layer.qkv.forward(pass, &h, None)?;
            let head_dim = self.shape.head_dim;
            let (q_width, kv_width) = (heads * head_dim, kv_heads * head_dim);
            let rope = |column, heads, norm| {
                self.rope.apply_columns(
                    pass,
                    &qkv,
                    column,
                    (heads, head_dim),
                    &batch.seq_lens,
                    Some(norm),
                )
            };
            let q = rope(0, heads, &layer.q_norm)?;
            let k = rope(q_width, kv_heads, &layer.k_norm)?;
            let v = qkv.narrow(1, q_width + kv_width, kv_width)?.contiguous()?;
            let ctx = packed_attention_general(
                pass,
                &q,
                &k,
                &v,
                &batch.seq_lens,
                self.shape,
                AttentionMask::Causal,
                None,
                &cache,
            )?;
            let attended = layer.o.forward(pass, &ctx, None)?;
            let (sum, h) = layer.post_norm.add_forward(pass, &x, Some(&attended))?;
            x = sum;
            let gated = crate::ops::gated(
                pass,
                &layer.gate_up.forward(pass, &h, None)?,
                self.intermediate,
                self.act,
            )?;
            delta = Some(layer.down.forward(pass, &gated, None)?);
        }
        Ok(self.norm.add_forward(pass, &x, delta.as_ref())?.1)
    }
}
