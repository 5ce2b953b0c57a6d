//! BERT (`model_type: bert`): all-MiniLM, bge, e5, gte-base classic and the like.
//!
//! Post-layer-norm encoder with absolute position embeddings. Q, K and V are fused into one linear
//! at load time, and every layer runs on packed sequences, so padding costs nothing.

use candle_core::Tensor;
use candle_nn::{Embedding, Module, VarBuilder};

use super::{config_f64, config_str, config_usize, weight_prefix, Encoder, PackedBatch};
use crate::error::{ModelError, Result};
use crate::ops::{packed_attention, HiddenAct, LayerNorm, Linear};

#[derive(Debug)]
struct Layer {
    qkv: Linear,
    attn_out: Linear,
    attn_norm: LayerNorm,
    ffn_up: Linear,
    ffn_down: Linear,
    ffn_norm: LayerNorm,
}

#[derive(Debug)]
pub struct Bert {
    word: Embedding,
    position: Embedding,
    token_type: Option<Embedding>,
    embed_norm: LayerNorm,
    layers: Vec<Layer>,
    num_heads: usize,
    head_dim: usize,
    act: HiddenAct,
    max_positions: usize,
}

impl Bert {
    pub fn load(config: &serde_json::Value, vb: VarBuilder) -> Result<Self> {
        let hidden = config_usize(config, "hidden_size")?;
        let num_heads = config_usize(config, "num_attention_heads")?;
        let intermediate = config_usize(config, "intermediate_size")?;
        let num_layers = config_usize(config, "num_hidden_layers")?;
        let vocab = config_usize(config, "vocab_size")?;
        let max_positions = config_usize(config, "max_position_embeddings")?;
        let type_vocab = config
            .get("type_vocab_size")
            .and_then(|v| v.as_u64())
            .unwrap_or(2) as usize;
        let eps = config_f64(config, "layer_norm_eps", 1e-12);
        let act_name = config_str(config, "hidden_act").unwrap_or("gelu");
        let act = HiddenAct::parse(act_name).ok_or_else(|| {
            ModelError::Unsupported(format!(
                "BERT hidden_act `{act_name}` (supported: gelu, gelu_new, relu, silu)"
            ))
        })?;
        if let Some(kind) = config_str(config, "position_embedding_type") {
            if kind != "absolute" {
                return Err(ModelError::Unsupported(format!(
                    "BERT position_embedding_type `{kind}` (only `absolute` is supported)"
                )));
            }
        }
        if hidden % num_heads != 0 {
            return Err(ModelError::Unsupported(format!(
                "hidden_size {hidden} is not a multiple of num_attention_heads {num_heads}"
            )));
        }

        let prefix = weight_prefix(
            &vb,
            "embeddings.word_embeddings.weight",
            &["bert.", "model."],
        )
        .ok_or_else(|| {
            ModelError::Unsupported(
                "the weights have no embeddings.word_embeddings.weight: not a BERT checkpoint"
                    .into(),
            )
        })?;
        let vb = if prefix.is_empty() {
            vb
        } else {
            vb.pp(prefix.trim_end_matches('.'))
        };
        let emb = vb.pp("embeddings");
        let word = candle_nn::embedding(vocab, hidden, emb.pp("word_embeddings"))?;
        let position = candle_nn::embedding(max_positions, hidden, emb.pp("position_embeddings"))?;
        let token_type = if type_vocab > 0 && emb.contains_tensor("token_type_embeddings.weight") {
            Some(candle_nn::embedding(
                type_vocab,
                hidden,
                emb.pp("token_type_embeddings"),
            )?)
        } else {
            None
        };
        let embed_norm = LayerNorm::load(emb.pp("LayerNorm"), hidden, eps)?;

        let mut layers = Vec::with_capacity(num_layers);
        for i in 0..num_layers {
            let l = vb.pp(format!("encoder.layer.{i}"));
            let att = l.pp("attention");
            let q = Linear::load(att.pp("self.query"), hidden, hidden, true)?;
            let k = Linear::load(att.pp("self.key"), hidden, hidden, true)?;
            let v = Linear::load(att.pp("self.value"), hidden, hidden, true)?;
            layers.push(Layer {
                qkv: Linear::concat(&[q, k, v])?.named("qkv"),
                attn_out: Linear::load(att.pp("output.dense"), hidden, hidden, true)?
                    .named("attn_out"),
                attn_norm: LayerNorm::load(att.pp("output.LayerNorm"), hidden, eps)?,
                ffn_up: Linear::load(l.pp("intermediate.dense"), hidden, intermediate, true)?
                    .named("ffn_up+act"),
                ffn_down: Linear::load(l.pp("output.dense"), intermediate, hidden, true)?
                    .named("ffn_down"),
                ffn_norm: LayerNorm::load(l.pp("output.LayerNorm"), hidden, eps)?,
            });
        }
        Ok(Self {
            word,
            position,
            token_type,
            embed_norm,
            layers,
            num_heads,
            head_dim: hidden / num_heads,
            act,
            max_positions,
        })
    }
}

impl Encoder for Bert {
    fn linears_mut(&mut self) -> Vec<&mut Linear> {
        self.layers
            .iter_mut()
            .flat_map(|l| [&mut l.qkv, &mut l.attn_out, &mut l.ffn_up, &mut l.ffn_down])
            .collect()
    }

    fn forward(&self, batch: &PackedBatch) -> Result<Tensor> {
        let embed_span = crate::profile::span("embeddings");
        let device = self.word.embeddings().device();
        let tokens = batch.tokens();
        let positions: Vec<u32> = batch
            .seq_lens
            .iter()
            .flat_map(|&len| 0..len as u32)
            .collect();
        if let Some(&longest) = batch.seq_lens.iter().max() {
            if longest > self.max_positions {
                return Err(ModelError::Unsupported(format!(
                    "a sequence of {longest} tokens exceeds max_position_embeddings {}",
                    self.max_positions
                )));
            }
        }
        let ids = Tensor::from_vec(batch.input_ids.clone(), tokens, device)?;
        let pos = Tensor::from_vec(positions, tokens, device)?;
        let mut x = (self.word.forward(&ids)? + self.position.forward(&pos)?)?;
        if let Some(tt) = &self.token_type {
            let types = Tensor::from_vec(batch.type_ids.clone(), tokens, device)?;
            x = (x + tt.forward(&types)?)?;
        }
        let mut x = self.embed_norm.forward(&x)?;
        drop(embed_span);
        for layer in &self.layers {
            let qkv = layer.qkv.forward(&x, None)?;
            let ctx =
                packed_attention(&qkv, &batch.seq_lens, self.num_heads, self.head_dim, false)?;
            let attn = layer.attn_out.forward(&ctx, None)?;
            x = layer.attn_norm.forward_residual(&attn, &x)?;
            let h = layer.ffn_up.forward(&x, Some(self.act))?;
            let out = layer.ffn_down.forward(&h, None)?;
            x = layer.ffn_norm.forward_residual(&out, &x)?;
        }
        Ok(x)
    }
}
