//! The BERT family: BERT (`bert`: all-MiniLM, bge, e5, gte-base classic), RoBERTa and
//! XLM-RoBERTa (`roberta`, `xlm-roberta`, `camembert`: multilingual-e5, bge-m3), DistilBERT
//! (`distilbert`: msmarco-distilbert) and MPNet (`mpnet`: all-mpnet-base-v2).
//!
//! All four are post-layer-norm encoders with learned absolute position embeddings and the same
//! layer shape; they differ in tensor names and in two details, kept here as data:
//! - **position ids**: BERT and DistilBERT count from 0. RoBERTa-style models count from
//!   `padding_idx + 1` and give padding tokens `padding_idx` (transformers'
//!   `create_position_ids_from_input_ids`); XLM-R takes `padding_idx` from `pad_token_id`, MPNet
//!   hard-codes 1.
//! - **relative attention bias** (MPNet only): a learned bias per head for each bucket of the
//!   distance `j - i` between key and query (T5-style buckets: exact below `num_buckets/4` on each
//!   side, logarithmic up to `max_distance` 128), shared by all layers.
//!
//! Q, K and V are fused into one linear at load time, and every layer runs on packed sequences,
//! so padding costs nothing.

use candle_core::{Device, Tensor};
use candle_nn::{Embedding, Module, VarBuilder};

use serde::Deserialize;

use super::{activation, parse_config, weight_prefix, Encoder, PackedBatch};
use crate::error::{ModelError, Result};
use crate::ops::{
    packed_attention, AttentionCache, HiddenAct, LayerNorm, Linear, LinearPrecision, Pass,
};

#[derive(Debug)]
struct Layer {
    qkv: Linear,
    attn_out: Linear,
    attn_norm: LayerNorm,
    ffn_up: Linear,
    ffn_down: Linear,
    ffn_norm: LayerNorm,
}

impl Layer {
    fn linears_mut(&mut self) -> [&mut Linear; 4] {
        [
            &mut self.qkv,
            &mut self.attn_out,
            &mut self.ffn_up,
            &mut self.ffn_down,
        ]
    }
}

/// How position ids are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Positions {
    FromZero,
    /// RoBERTa-style: `padding_idx + 1 + i` for real tokens, `padding_idx` for padding ids.
    AfterPadding(u32),
}

impl Positions {
    fn ids(self, batch: &PackedBatch) -> Vec<u32> {
        let mut out = Vec::with_capacity(batch.tokens());
        let mut start = 0;
        for &len in &batch.seq_lens {
            let ids = &batch.input_ids[start..start + len];
            match self {
                Self::FromZero => out.extend(0..len as u32),
                Self::AfterPadding(pad) => {
                    let mut seen = 0;
                    out.extend(ids.iter().map(|&id| {
                        if id == pad {
                            pad
                        } else {
                            seen += 1;
                            pad + seen
                        }
                    }));
                }
            }
            start += len;
        }
        out
    }
}

/// MPNet's learned bias per head and relative-distance bucket.
#[derive(Debug)]
struct RelativeBias {
    /// `num_buckets × heads`
    table: Tensor,
    num_buckets: i64,
    max_distance: i64,
    /// The bias for the longest length asked for so far (`heads × n × n`): every shorter
    /// length's is its top-left corner, since a bias depends only on `j - i`. Every layer and
    /// pass reuses it instead of bucketing `len²` pairs again.
    longest: std::sync::Mutex<Option<Tensor>>,
}

impl RelativeBias {
    fn new(table: Tensor, num_buckets: i64, max_distance: i64) -> Self {
        Self {
            table,
            num_buckets,
            max_distance,
            longest: std::sync::Mutex::new(None),
        }
    }

    /// transformers' `MPNetEncoder.relative_position_bucket`, in the same f32 arithmetic.
    fn bucket(&self, relative_position: i64) -> i64 {
        let num_buckets = self.num_buckets / 2;
        let mut n = -relative_position;
        let mut ret = if n < 0 { num_buckets } else { 0 };
        n = n.abs();
        let max_exact = num_buckets / 2;
        if n < max_exact {
            return ret + n;
        }
        let large = max_exact
            + ((n as f32 / max_exact as f32).ln()
                / (self.max_distance as f32 / max_exact as f32).ln()
                * (num_buckets - max_exact) as f32) as i64;
        ret += large.min(num_buckets - 1);
        ret
    }

    /// `heads × len × len`: the bias of key `j` for query `i`.
    fn for_length(&self, len: usize) -> Result<Tensor> {
        let mut longest = self.longest.lock().unwrap_or_else(|e| e.into_inner());
        let cached = match longest.as_ref() {
            Some(t) if t.dim(1)? >= len => t.clone(),
            _ => {
                let t = self.compute(len)?;
                *longest = Some(t.clone());
                t
            }
        };
        Ok(cached.narrow(1, 0, len)?.narrow(2, 0, len)?)
    }

    fn compute(&self, len: usize) -> Result<Tensor> {
        let buckets: Vec<u32> = (0..len as i64)
            .flat_map(|i| (0..len as i64).map(move |j| (i, j)))
            .map(|(i, j)| self.bucket(j - i) as u32)
            .collect();
        let index = Tensor::from_vec(buckets, len * len, self.table.device())?;
        let heads = self.table.dims()[1];
        Ok(self
            .table
            .index_select(&index, 0)?
            .reshape((len, len, heads))?
            .permute((2, 0, 1))?
            .contiguous()?)
    }
}

#[derive(Debug)]
pub struct Bert {
    word: Embedding,
    position: Embedding,
    positions: Positions,
    token_type: Option<Embedding>,
    embed_norm: LayerNorm,
    layers: Vec<Layer>,
    relative_bias: Option<RelativeBias>,
    num_heads: usize,
    head_dim: usize,
    act: HiddenAct,
    max_positions: usize,
}

/// The `config.json` fields of BERT, RoBERTa / XLM-R and MPNet.
#[derive(Debug, Deserialize)]
struct BertConfig {
    hidden_size: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    vocab_size: usize,
    max_position_embeddings: usize,
    layer_norm_eps: Option<f64>,
    hidden_act: Option<String>,
    position_embedding_type: Option<String>,
    pad_token_id: Option<u32>,
    type_vocab_size: Option<usize>,
    relative_attention_num_buckets: Option<usize>,
}

/// DistilBERT's `config.json` fields (its own key names).
#[derive(Debug, Deserialize)]
struct DistilBertConfig {
    dim: usize,
    n_heads: usize,
    hidden_dim: usize,
    n_layers: usize,
    vocab_size: usize,
    max_position_embeddings: usize,
    activation: Option<String>,
}

/// The sizes every variant reads from its config (under its own key names).
struct Sizes {
    hidden: usize,
    heads: usize,
    intermediate: usize,
    layers: usize,
    vocab: usize,
    max_positions: usize,
    /// 0: no token-type embeddings.
    type_vocab: usize,
    /// MPNet's relative-attention buckets.
    relative_buckets: usize,
    eps: f64,
    act: HiddenAct,
}

/// Tensor names of one variant, relative to the model root.
struct Names {
    probe_prefixes: &'static [&'static str],
    layer: &'static str,
    q: &'static str,
    k: &'static str,
    v: &'static str,
    attn_out: &'static str,
    attn_norm: &'static str,
    ffn_up: &'static str,
    ffn_down: &'static str,
    ffn_norm: &'static str,
}

const BERT_NAMES: Names = Names {
    probe_prefixes: &["bert.", "roberta.", "model."],
    layer: "encoder.layer",
    q: "attention.self.query",
    k: "attention.self.key",
    v: "attention.self.value",
    attn_out: "attention.output.dense",
    attn_norm: "attention.output.LayerNorm",
    ffn_up: "intermediate.dense",
    ffn_down: "output.dense",
    ffn_norm: "output.LayerNorm",
};

const DISTILBERT_NAMES: Names = Names {
    probe_prefixes: &["distilbert."],
    layer: "transformer.layer",
    q: "attention.q_lin",
    k: "attention.k_lin",
    v: "attention.v_lin",
    attn_out: "attention.out_lin",
    attn_norm: "sa_layer_norm",
    ffn_up: "ffn.lin1",
    ffn_down: "ffn.lin2",
    ffn_norm: "output_layer_norm",
};

const MPNET_NAMES: Names = Names {
    probe_prefixes: &["mpnet."],
    layer: "encoder.layer",
    q: "attention.attn.q",
    k: "attention.attn.k",
    v: "attention.attn.v",
    attn_out: "attention.attn.o",
    attn_norm: "attention.LayerNorm",
    ffn_up: "intermediate.dense",
    ffn_down: "output.dense",
    ffn_norm: "output.LayerNorm",
};

impl Sizes {
    fn bert_style(config: &BertConfig) -> Result<Self> {
        Ok(Self {
            hidden: config.hidden_size,
            heads: config.num_attention_heads,
            intermediate: config.intermediate_size,
            layers: config.num_hidden_layers,
            vocab: config.vocab_size,
            max_positions: config.max_position_embeddings,
            type_vocab: config.type_vocab_size.unwrap_or(2),
            relative_buckets: config.relative_attention_num_buckets.unwrap_or(32),
            eps: config.layer_norm_eps.unwrap_or(1e-12),
            act: activation(config.hidden_act.as_deref().unwrap_or("gelu"))?,
        })
    }
}

impl Bert {
    /// BERT, and with `roberta` set, RoBERTa / XLM-RoBERTa (positions after `pad_token_id`).
    pub fn load(
        config: &serde_json::Value,
        vb: VarBuilder,
        roberta: bool,
        precision: LinearPrecision,
    ) -> Result<Self> {
        let config: BertConfig = parse_config(config, if roberta { "RoBERTa" } else { "BERT" })?;
        let sizes = Sizes::bert_style(&config)?;
        if let Some(kind) = config.position_embedding_type.as_deref() {
            if kind != "absolute" {
                return Err(ModelError::Unsupported(format!(
                    "position_embedding_type `{kind}` (only `absolute` is supported)"
                )));
            }
        }
        let positions = if roberta {
            Positions::AfterPadding(config.pad_token_id.unwrap_or(1))
        } else {
            Positions::FromZero
        };
        Self::build(vb, &sizes, &BERT_NAMES, positions, false, precision)
    }

    /// DistilBERT: BERT without token types, under other names.
    pub fn load_distilbert(
        config: &serde_json::Value,
        vb: VarBuilder,
        precision: LinearPrecision,
    ) -> Result<Self> {
        let config: DistilBertConfig = parse_config(config, "DistilBERT")?;
        let sizes = Sizes {
            hidden: config.dim,
            heads: config.n_heads,
            intermediate: config.hidden_dim,
            layers: config.n_layers,
            vocab: config.vocab_size,
            max_positions: config.max_position_embeddings,
            type_vocab: 0,
            relative_buckets: 0,
            eps: 1e-12,
            act: activation(config.activation.as_deref().unwrap_or("gelu"))?,
        };
        Self::build(
            vb,
            &sizes,
            &DISTILBERT_NAMES,
            Positions::FromZero,
            false,
            precision,
        )
    }

    /// MPNet: positions after padding index 1 and a relative attention bias.
    pub fn load_mpnet(
        config: &serde_json::Value,
        vb: VarBuilder,
        precision: LinearPrecision,
    ) -> Result<Self> {
        let config: BertConfig = parse_config(config, "MPNet")?;
        let sizes = Sizes::bert_style(&config)?;
        // transformers' MPNetEmbeddings hard-codes padding_idx = 1, whatever pad_token_id says.
        Self::build(
            vb,
            &sizes,
            &MPNET_NAMES,
            Positions::AfterPadding(1),
            true,
            precision,
        )
    }

    fn build(
        vb: VarBuilder,
        sizes: &Sizes,
        names: &Names,
        positions: Positions,
        relative: bool,
        precision: LinearPrecision,
    ) -> Result<Self> {
        let Sizes {
            hidden,
            heads,
            intermediate,
            eps,
            ..
        } = *sizes;
        if heads == 0 || !hidden.is_multiple_of(heads) {
            return Err(ModelError::Unsupported(format!(
                "hidden size {hidden} is not a multiple of the {heads} attention heads"
            )));
        }
        let prefix = weight_prefix(&vb, "embeddings.word_embeddings.weight", names.probe_prefixes)
            .ok_or_else(|| {
                ModelError::Unsupported(
                    "the weights have no embeddings.word_embeddings.weight: not a checkpoint of this architecture"
                        .into(),
                )
            })?;
        let vb = if prefix.is_empty() {
            vb
        } else {
            vb.pp(prefix.trim_end_matches('.'))
        };
        let emb = vb.pp("embeddings");
        let word = candle_nn::embedding(sizes.vocab, hidden, emb.pp("word_embeddings"))?;
        let position =
            candle_nn::embedding(sizes.max_positions, hidden, emb.pp("position_embeddings"))?;
        let type_vocab = sizes.type_vocab;
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

        let mut layers = Vec::with_capacity(sizes.layers);
        for i in 0..sizes.layers {
            let l = vb.pp(format!("{}.{i}", names.layer));
            let q = Linear::load(l.pp(names.q), hidden, hidden, true)?;
            let k = Linear::load(l.pp(names.k), hidden, hidden, true)?;
            let v = Linear::load(l.pp(names.v), hidden, hidden, true)?;
            let mut layer = Layer {
                qkv: Linear::concat(&[q, k, v])?.named("qkv"),
                attn_out: Linear::load(l.pp(names.attn_out), hidden, hidden, true)?
                    .named("attn_out"),
                attn_norm: LayerNorm::load(l.pp(names.attn_norm), hidden, eps)?,
                ffn_up: Linear::load(l.pp(names.ffn_up), hidden, intermediate, true)?
                    .named("ffn_up+act"),
                ffn_down: Linear::load(l.pp(names.ffn_down), intermediate, hidden, true)?
                    .named("ffn_down"),
                ffn_norm: LayerNorm::load(l.pp(names.ffn_norm), hidden, eps)?,
            };
            layer
                .linears_mut()
                .into_iter()
                .try_for_each(|l| precision.apply(l))?;
            layers.push(layer);
        }
        let relative_bias = if relative {
            let num_buckets = sizes.relative_buckets;
            Some(RelativeBias::new(
                vb.pp("encoder.relative_attention_bias")
                    .get((num_buckets, heads), "weight")?,
                num_buckets as i64,
                128,
            ))
        } else {
            None
        };
        Ok(Self {
            word,
            position,
            positions,
            token_type,
            embed_norm,
            layers,
            relative_bias,
            num_heads: heads,
            head_dim: hidden / heads,
            act: sizes.act,
            max_positions: sizes.max_positions,
        })
    }

    fn embed(&self, pass: Pass, batch: &PackedBatch, device: &Device) -> Result<Tensor> {
        let tokens = batch.tokens();
        let positions = self.positions.ids(batch);
        if let Some(&largest) = positions.iter().max() {
            if largest as usize >= self.max_positions {
                return Err(ModelError::Unsupported(format!(
                    "position {largest} is beyond max_position_embeddings {} (shorten the input)",
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
        self.embed_norm.forward(pass, &x)
    }

    fn attention(
        &self,
        pass: Pass,
        qkv: &Tensor,
        seq_lens: &[usize],
        cache: &AttentionCache,
    ) -> Result<Tensor> {
        let bias = self
            .relative_bias
            .as_ref()
            .map(|relative| move |len: usize| relative.for_length(len));
        packed_attention(
            pass,
            qkv,
            seq_lens,
            (self.num_heads, self.head_dim),
            false,
            bias.as_ref().map(|b| b as &dyn Fn(usize) -> Result<Tensor>),
            cache,
        )
    }
}

impl Encoder for Bert {
    fn word_embeddings(&self) -> &Tensor {
        self.word.embeddings()
    }

    fn forward(&self, batch: &PackedBatch, pass: Pass) -> Result<Tensor> {
        let embed_span = crate::profile::span("embeddings");
        let device = self.word.embeddings().device().clone();
        let mut x = self.embed(pass, batch, &device)?;
        drop(embed_span);
        let cache = AttentionCache::default();
        for layer in &self.layers {
            let qkv = layer.qkv.forward(pass, &x, None)?;
            let ctx = self.attention(pass, &qkv, &batch.seq_lens, &cache)?;
            let attn = layer.attn_out.forward(pass, &ctx, None)?;
            x = layer.attn_norm.forward_residual(pass, &attn, &x)?;
            let h = layer.ffn_up.forward(pass, &x, Some(self.act))?;
            let out = layer.ffn_down.forward(pass, &h, None)?;
            x = layer.ffn_norm.forward_residual(pass, &out, &x)?;
        }
        Ok(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roberta_positions_start_after_the_padding_index() {
        let batch = PackedBatch {
            input_ids: vec![0, 5, 6, 2, 0, 7, 2],
            type_ids: vec![0; 7],
            seq_lens: vec![4, 3],
        };
        assert_eq!(
            Positions::AfterPadding(1).ids(&batch),
            vec![2, 3, 4, 5, 2, 3, 4]
        );
        assert_eq!(Positions::FromZero.ids(&batch), vec![0, 1, 2, 3, 0, 1, 2]);
        // A padding id inside a sequence keeps the padding position and is not counted.
        let padded = PackedBatch {
            input_ids: vec![0, 1, 5],
            type_ids: vec![0; 3],
            seq_lens: vec![3],
        };
        assert_eq!(Positions::AfterPadding(1).ids(&padded), vec![2, 1, 3]);
    }

    #[test]
    fn mpnet_bias_of_a_shorter_length_is_the_corner_of_the_longest() {
        let table = Tensor::arange(0f32, 64.0, &Device::Cpu)
            .unwrap()
            .reshape((32, 2))
            .unwrap();
        let rb = RelativeBias::new(table, 32, 128);
        let long = rb.for_length(40).unwrap();
        assert_eq!(long.dims(), &[2, 40, 40]);
        for len in [1, 7, 40] {
            let got: Vec<f32> = rb
                .for_length(len)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let want: Vec<f32> = rb
                .compute(len)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            assert_eq!(got, want, "length {len}");
        }
    }

    #[test]
    fn mpnet_buckets_match_transformers() {
        let rb = RelativeBias::new(
            Tensor::zeros((32, 1), candle_core::DType::F32, &Device::Cpu).unwrap(),
            32,
            128,
        );
        // From transformers 5.24's MPNetEncoder.relative_position_bucket(rp, 32, 128).
        let cases = [
            (0, 0),
            (1, 17),
            (-1, 1),
            (7, 23),
            (-7, 7),
            (8, 24),
            (-8, 8),
            (20, 26),
            (-20, 10),
            (127, 31),
            (-127, 15),
            (500, 31),
            (-500, 15),
        ];
        for (relative, bucket) in cases {
            assert_eq!(rb.bucket(relative), bucket, "relative position {relative}");
        }
    }
}
