//! ModernBERT (`model_type: modernbert`: modernbert-embed, gte-modernbert).
//!
//! Config fields and what they mean here:
//! - pre-norm layers (`attn_norm` is the identity in layer 0), `final_norm` after the last one;
//!   norms without bias when `norm_bias` is false;
//! - rotary position embeddings instead of learned ones, with a different `rope_theta` for
//!   global and local layers (`rope_parameters.{full,sliding}_attention.rope_theta`, or the older
//!   `global_rope_theta` / `local_rope_theta`; 160,000 and 10,000 by default);
//! - `layer_types` (or the older `global_attn_every_n_layers`, default 3): global layers attend to
//!   the whole sequence, local ("sliding") ones only to tokens at most `local_attention / 2`
//!   positions away on either side;
//! - a gated GELU MLP: `Wi` gives `input ‖ gate`, the output is `Wo(act(input) · gate)`;
//! - no biases in the linears unless `attention_bias` / `mlp_bias`.

use candle_core::Tensor;
use candle_nn::{Embedding, Module, VarBuilder};

use std::collections::HashMap;

use serde::Deserialize;

use super::{parse_config, weight_prefix, Encoder, PackedBatch};
use crate::error::{ModelError, Result};
use crate::ops::{
    packed_attention_general, AttentionCache, AttentionMask, AttentionShape, HiddenAct, LayerNorm,
    Linear, LinearPrecision, Pass, Rope,
};

#[derive(Debug)]
struct Layer {
    attn_norm: Option<LayerNorm>,
    qkv: Linear,
    attn_out: Linear,
    mlp_norm: LayerNorm,
    mlp_in: Linear,
    mlp_out: Linear,
    global: bool,
}

impl Layer {
    fn linears_mut(&mut self) -> [&mut Linear; 4] {
        [
            &mut self.qkv,
            &mut self.attn_out,
            &mut self.mlp_in,
            &mut self.mlp_out,
        ]
    }
}

#[derive(Debug)]
pub struct ModernBert {
    embeddings: Embedding,
    embed_norm: LayerNorm,
    layers: Vec<Layer>,
    final_norm: LayerNorm,
    global_rope: Rope,
    local_rope: Rope,
    window: usize,
    heads: usize,
    head_dim: usize,
    intermediate: usize,
    act: HiddenAct,
}

/// ModernBERT's `config.json` fields.
#[derive(Debug, Deserialize)]
struct ModernBertConfig {
    hidden_size: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    vocab_size: usize,
    max_position_embeddings: usize,
    local_attention: Option<usize>,
    norm_eps: Option<f64>,
    attention_bias: Option<bool>,
    mlp_bias: Option<bool>,
    hidden_activation: Option<String>,
    global_attn_every_n_layers: Option<usize>,
    layer_types: Option<Vec<String>>,
    /// transformers ≥ 5: `{"full_attention": {"rope_theta": …}, "sliding_attention": {…}}`.
    rope_parameters: Option<HashMap<String, LayerRope>>,
    global_rope_theta: Option<f64>,
    local_rope_theta: Option<f64>,
}

/// One entry of `rope_parameters`: a layer type's settings, or a key this code does not read.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum LayerRope {
    Params { rope_theta: Option<f64> },
    Other(serde::de::IgnoredAny),
}

impl ModernBertConfig {
    fn rope_theta(&self, layer_type: &str, old: Option<f64>, default: f64) -> f64 {
        self.rope_parameters
            .as_ref()
            .and_then(|p| match p.get(layer_type) {
                Some(LayerRope::Params { rope_theta }) => *rope_theta,
                _ => None,
            })
            .or(old)
            .unwrap_or(default)
    }
}

impl ModernBert {
    pub fn load(
        config: &serde_json::Value,
        vb: VarBuilder,
        precision: LinearPrecision,
    ) -> Result<Self> {
        let config: ModernBertConfig = parse_config(config, "ModernBERT")?;
        let hidden = config.hidden_size;
        let heads = config.num_attention_heads;
        let intermediate = config.intermediate_size;
        let num_layers = config.num_hidden_layers;
        let vocab = config.vocab_size;
        let max_positions = config.max_position_embeddings;
        let local_attention = config.local_attention.unwrap_or(128);
        let eps = config.norm_eps.unwrap_or(1e-5);
        let attention_bias = config.attention_bias.unwrap_or(false);
        let mlp_bias = config.mlp_bias.unwrap_or(false);
        let act_name = config.hidden_activation.as_deref().unwrap_or("gelu");
        let act = HiddenAct::parse(act_name).ok_or_else(|| {
            ModelError::Unsupported(format!("ModernBERT hidden_activation `{act_name}`"))
        })?;
        if heads == 0 || !hidden.is_multiple_of(heads) {
            return Err(ModelError::Unsupported(format!(
                "hidden_size {hidden} is not a multiple of num_attention_heads {heads}"
            )));
        }
        let head_dim = hidden / heads;
        let every = config.global_attn_every_n_layers.unwrap_or(3).max(1);
        let layer_types: Vec<bool> = match &config.layer_types {
            Some(types) => types.iter().map(|t| t != "sliding_attention").collect(),
            None => (0..num_layers).map(|i| i % every == 0).collect(),
        };
        if layer_types.len() != num_layers {
            return Err(ModelError::Unsupported(format!(
                "layer_types has {} entries for {num_layers} layers",
                layer_types.len()
            )));
        }

        let prefix = weight_prefix(&vb, "embeddings.tok_embeddings.weight", &["model."])
            .ok_or_else(|| {
                ModelError::Unsupported(
                    "the weights have no embeddings.tok_embeddings.weight: not a ModernBERT checkpoint"
                        .into(),
                )
            })?;
        let vb = if prefix.is_empty() {
            vb
        } else {
            vb.pp(prefix.trim_end_matches('.'))
        };
        let embeddings = candle_nn::embedding(vocab, hidden, vb.pp("embeddings.tok_embeddings"))?;
        let embed_norm = LayerNorm::load(vb.pp("embeddings.norm"), hidden, eps)?;
        let mut layers = Vec::with_capacity(num_layers);
        for (i, &global) in layer_types.iter().enumerate() {
            let l = vb.pp(format!("layers.{i}"));
            let attn_norm = if l.contains_tensor("attn_norm.weight") {
                Some(LayerNorm::load(l.pp("attn_norm"), hidden, eps)?)
            } else {
                None
            };
            let mut layer = Layer {
                attn_norm,
                qkv: Linear::load(l.pp("attn.Wqkv"), hidden, 3 * hidden, attention_bias)?
                    .named("qkv"),
                attn_out: Linear::load(l.pp("attn.Wo"), hidden, hidden, attention_bias)?
                    .named("attn_out"),
                mlp_norm: LayerNorm::load(l.pp("mlp_norm"), hidden, eps)?,
                mlp_in: Linear::load(l.pp("mlp.Wi"), hidden, 2 * intermediate, mlp_bias)?
                    .named("ffn_up"),
                mlp_out: Linear::load(l.pp("mlp.Wo"), intermediate, hidden, mlp_bias)?
                    .named("ffn_down"),
                global,
            };
            layer
                .linears_mut()
                .into_iter()
                .try_for_each(|l| precision.apply(l))?;
            layers.push(layer);
        }
        let final_norm = LayerNorm::load(vb.pp("final_norm"), hidden, eps)?;
        let device = vb.device().clone();
        let dtype = vb.dtype();
        let rope = |theta: f64| Rope::new(head_dim, theta, max_positions, dtype, &device);
        Ok(Self {
            embeddings,
            embed_norm,
            layers,
            final_norm,
            global_rope: rope(config.rope_theta(
                "full_attention",
                config.global_rope_theta,
                160_000.0,
            ))?,
            local_rope: rope(config.rope_theta(
                "sliding_attention",
                config.local_rope_theta,
                10_000.0,
            ))?,
            window: local_attention / 2,
            heads,
            head_dim,
            intermediate,
            act,
        })
    }
}

impl Encoder for ModernBert {
    fn word_embeddings(&self) -> &Tensor {
        self.embeddings.embeddings()
    }

    fn forward(&self, batch: &PackedBatch, pass: Pass) -> Result<Tensor> {
        let device = self.embeddings.embeddings().device();
        let ids = Tensor::from_vec(batch.input_ids.clone(), batch.tokens(), device)?;
        let mut x = self
            .embed_norm
            .forward(pass, &self.embeddings.forward(&ids)?)?;
        let hidden = self.heads * self.head_dim;
        let shape = AttentionShape {
            heads: self.heads,
            kv_heads: self.heads,
            head_dim: self.head_dim,
        };
        let cache = AttentionCache::default();
        // The last sublayer's output, not yet added to `x`: the next norm adds it in its pass.
        let mut delta: Option<Tensor> = None;
        for layer in &self.layers {
            let normed = match &layer.attn_norm {
                Some(norm) => {
                    let (sum, normed) = norm.add_forward(pass, &x, delta.take().as_ref())?;
                    x = sum;
                    normed
                }
                None => {
                    if let Some(d) = delta.take() {
                        x = (x + d)?;
                    }
                    x.clone()
                }
            };
            let qkv = layer.qkv.forward(pass, &normed, None)?;
            let (rope, mask) = if layer.global {
                (&self.global_rope, AttentionMask::Full)
            } else {
                (&self.local_rope, AttentionMask::Window(self.window))
            };
            let heads = (self.heads, self.head_dim);
            let q = rope.apply_columns(pass, &qkv, 0, heads, &batch.seq_lens, None)?;
            let k = rope.apply_columns(pass, &qkv, hidden, heads, &batch.seq_lens, None)?;
            let v = qkv.narrow(1, 2 * hidden, hidden)?.contiguous()?;
            let ctx = packed_attention_general(
                pass,
                &q,
                &k,
                &v,
                &batch.seq_lens,
                shape,
                mask,
                None,
                &cache,
            )?;
            let attended = layer.attn_out.forward(pass, &ctx, None)?;
            let (sum, normed) = layer.mlp_norm.add_forward(pass, &x, Some(&attended))?;
            x = sum;
            let h = layer.mlp_in.forward(pass, &normed, None)?;
            let gated = crate::ops::gated(pass, &h, self.intermediate, self.act)?;
            delta = Some(layer.mlp_out.forward(pass, &gated.contiguous()?, None)?);
        }
        Ok(self.final_norm.add_forward(pass, &x, delta.as_ref())?.1)
    }
}
