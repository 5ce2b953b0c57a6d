//! Task heads over a transformer's packed token states, as transformers defines them for each
//! architecture: the sequence classifiers of cross-encoders (rerankers) and the masked-LM head
//! that SPLADE models pool.

use candle_core::Tensor;
use candle_nn::VarBuilder;

use crate::arch::weight_prefix;
use crate::error::{ModelError, Result};
use crate::layout::{LogitScore, ModelLayout, PoolingConfig, PoolingMode};
use crate::ops::{HiddenAct, LayerNorm, Linear, Pass};
use crate::pooling::pool;

/// `…ForSequenceClassification`'s head: token states in, `sequences × num_labels` logits out.
#[derive(Debug)]
pub(crate) enum Classifier {
    /// BERT: the pooler (`pooler.dense`, tanh) on the first token, then `classifier`.
    Bert { pooler: Linear, out: Linear },
    /// RoBERTa, XLM-RoBERTa, CamemBERT and MPNet: `classifier.dense`, tanh, `classifier.out_proj`
    /// on the first token.
    Roberta { dense: Linear, out: Linear },
    /// DistilBERT: `pre_classifier`, ReLU, `classifier` on the first token.
    DistilBert { pre: Linear, out: Linear },
    /// ModernBERT: the first token or the mean of all (`classifier_pooling`), then `head.dense`,
    /// `classifier_activation`, `head.norm`, and `classifier`.
    ModernBert {
        mean: bool,
        dense: Linear,
        act: HiddenAct,
        norm: LayerNorm,
        out: Linear,
    },
    /// Qwen3 (`Qwen3ForSequenceClassification`): `score` on the last token.
    LastToken { out: Linear },
    /// A causal LM scored by its next-token logits (sentence-transformers' `LogitScore`:
    /// Qwen3-Reranker): the last token through the rows of `lm_head` for the "yes" token (and
    /// the "no" token), the score being their difference.
    NextToken { rows: Linear, difference: bool },
}

fn config_str<'a>(config: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    config.get(key).and_then(|v| v.as_str())
}

fn missing(what: &str, model_type: &str) -> ModelError {
    ModelError::Unsupported(format!(
        "the weights have no {what}: not a {model_type} sequence-classification checkpoint"
    ))
}

impl Classifier {
    /// The head of a sequence-classification checkpoint, or of a causal LM scored on its next
    /// token; `embeddings` are the encoder's input embeddings, which such an LM's head is often
    /// tied to (shared, not read a second time).
    pub fn load(layout: &ModelLayout, vb: &VarBuilder, embeddings: &Tensor) -> Result<Self> {
        let hidden = layout.hidden_size;
        let labels = layout.dimension;
        let model_type = layout.model_type.as_str();
        let linear = |name: &str, out_dim: usize, bias: bool| -> Result<Linear> {
            if !vb.contains_tensor(&format!("{name}.weight")) {
                return Err(missing(&format!("`{name}.weight`"), model_type));
            }
            Linear::load(vb.pp(name), hidden, out_dim, bias)
        };
        if let Some(score) = layout.logit_score {
            return Self::next_token(layout, vb, embeddings, score);
        }
        Ok(match model_type {
            "qwen3" => Self::LastToken {
                out: linear("score", labels, false)?,
            },
            "bert" => {
                let prefix = weight_prefix(vb, "pooler.dense.weight", &["bert."])
                    .ok_or_else(|| missing("BERT pooler (`bert.pooler.dense`)", model_type))?;
                Self::Bert {
                    pooler: linear(&format!("{prefix}pooler.dense"), hidden, true)?,
                    out: linear("classifier", labels, true)?,
                }
            }
            "roberta" | "xlm-roberta" | "camembert" | "mpnet" => Self::Roberta {
                dense: linear("classifier.dense", hidden, true)?,
                out: linear("classifier.out_proj", labels, true)?,
            },
            "distilbert" => Self::DistilBert {
                pre: linear("pre_classifier", hidden, true)?,
                out: linear("classifier", labels, true)?,
            },
            "modernbert" => {
                let config = &layout.config;
                let mean = match config_str(config, "classifier_pooling").unwrap_or("cls") {
                    "cls" => false,
                    "mean" => true,
                    other => {
                        return Err(ModelError::Unsupported(format!(
                            "ModernBERT classifier_pooling `{other}` (supported: cls, mean)"
                        )))
                    }
                };
                let act_name = config_str(config, "classifier_activation").unwrap_or("gelu");
                let act = crate::arch::activation(act_name)?;
                let bias = config
                    .get("classifier_bias")
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false);
                let eps = config
                    .get("norm_eps")
                    .and_then(|v| v.as_f64())
                    .unwrap_or(1e-5);
                if !vb.contains_tensor("head.norm.weight") {
                    return Err(missing("`head.norm.weight`", model_type));
                }
                Self::ModernBert {
                    mean,
                    dense: linear("head.dense", hidden, bias)?,
                    act,
                    norm: LayerNorm::load(vb.pp("head.norm"), hidden, eps)?,
                    out: linear("classifier", labels, true)?,
                }
            }
            other => {
                return Err(ModelError::Unsupported(format!(
                "cross-encoders of model_type `{other}` are not supported yet (supported: bert, \
                     roberta, xlm-roberta, camembert, mpnet, distilbert, modernbert, qwen3)"
            )))
            }
        })
    }

    /// The rows of the language-model head (`lm_head`, or the word embeddings it is tied to)
    /// for the scored tokens: two rows of a vocabulary-wide matrix are all a score needs.
    fn next_token(
        layout: &ModelLayout,
        vb: &VarBuilder,
        embeddings: &Tensor,
        score: LogitScore,
    ) -> Result<Self> {
        if layout.model_type != "qwen3" {
            return Err(ModelError::Unsupported(format!(
                "causal-LM rerankers of model_type `{}` are not supported yet (supported: qwen3)",
                layout.model_type
            )));
        }
        let vocab = layout
            .config
            .get("vocab_size")
            .and_then(|v| v.as_u64())
            .unwrap_or(0) as usize;
        let name = [
            "lm_head.weight",
            "model.embed_tokens.weight",
            "embed_tokens.weight",
        ]
        .into_iter()
        .find(|name| vb.contains_tensor(name))
        .ok_or_else(|| {
            ModelError::Unsupported(
                "the weights have neither `lm_head.weight` nor the word embeddings it is tied to"
                    .into(),
            )
        })?;
        let ids: Vec<u32> = std::iter::once(score.true_token_id)
            .chain(score.false_token_id)
            .collect();
        if let Some(bad) = ids.iter().find(|&&id| id as usize >= vocab) {
            return Err(ModelError::Unsupported(format!(
                "LogitScore token id {bad} is outside the vocabulary ({vocab} tokens)"
            )));
        }
        let shape = (vocab, layout.hidden_size);
        let table = if name != "lm_head.weight" && embeddings.dims() == [shape.0, shape.1] {
            embeddings.clone()
        } else {
            vb.get(shape, name)?
        };
        let index = Tensor::new(ids.as_slice(), table.device())?;
        let rows = table.index_select(&index, 0)?.contiguous()?;
        Ok(Self::NextToken {
            rows: Linear::from_weight(rows, None),
            difference: score.false_token_id.is_some(),
        })
    }

    /// Logits, `sequences × num_labels`, for packed token states `tokens × hidden`.
    pub fn forward(&self, pass: Pass, hidden: &Tensor, seq_lens: &[usize]) -> Result<Tensor> {
        let first = |h: &Tensor| pool(h, seq_lens, &pooling(PoolingMode::Cls), 0);
        let last = |h: &Tensor| pool(h, seq_lens, &pooling(PoolingMode::LastToken), 0);
        match self {
            Self::LastToken { out } => out.forward(pass, &last(hidden)?, None),
            Self::NextToken { rows, difference } => {
                let logits = rows.forward(pass, &last(hidden)?, None)?;
                if *difference {
                    Ok(logits.narrow(1, 0, 1)?.sub(&logits.narrow(1, 1, 1)?)?)
                } else {
                    Ok(logits)
                }
            }
            Self::Bert { pooler, out } => {
                let pooled = pooler.forward(pass, &first(hidden)?, None)?;
                out.forward(pass, &pooled.tanh()?, None)
            }
            Self::Roberta { dense, out } => {
                let pooled = dense.forward(pass, &first(hidden)?, None)?;
                out.forward(pass, &pooled.tanh()?, None)
            }
            Self::DistilBert { pre, out } => {
                let pooled = pre.forward(pass, &first(hidden)?, None)?;
                out.forward(pass, &pooled.relu()?, None)
            }
            Self::ModernBert {
                mean,
                dense,
                act,
                norm,
                out,
            } => {
                let pooled = if *mean {
                    pool(hidden, seq_lens, &pooling(PoolingMode::Mean), 0)?
                } else {
                    first(hidden)?
                };
                let x = act.apply(&dense.forward(pass, &pooled, None)?)?;
                out.forward(pass, &norm.forward(pass, &x)?, None)
            }
        }
    }
}

fn pooling(mode: PoolingMode) -> PoolingConfig {
    PoolingConfig {
        modes: vec![mode],
        include_prompt: true,
    }
}

/// `…ForMaskedLM`'s head: token states in, vocabulary logits out (`transform` then a decoder
/// tied to the word embeddings).
#[derive(Debug)]
pub(crate) struct MaskedLmHead {
    transform: Linear,
    act: HiddenAct,
    norm: LayerNorm,
    decoder: Linear,
}

impl MaskedLmHead {
    /// The head of a masked-LM checkpoint; a decoder not stored on its own is tied to
    /// `embeddings` (the encoder's input embeddings: shared, not read a second time).
    pub fn load(layout: &ModelLayout, vb: &VarBuilder, embeddings: &Tensor) -> Result<Self> {
        let hidden = layout.hidden_size;
        let vocab = layout.dimension;
        let config = &layout.config;
        let model_type = layout.model_type.as_str();
        let need = |name: &str| -> Result<()> {
            if vb.contains_tensor(name) {
                Ok(())
            } else {
                Err(ModelError::Unsupported(format!(
                    "the weights have no `{name}`: not a {model_type} masked-LM (SPLADE) checkpoint"
                )))
            }
        };
        // The decoder is usually tied to the input embeddings and not stored again.
        let tied = |stored: &str, names: &[&str]| -> Result<Tensor> {
            if vb.contains_tensor(stored) {
                return Ok(vb.get((vocab, hidden), stored)?);
            }
            if !names.iter().any(|name| vb.contains_tensor(name)) {
                return Err(ModelError::Unsupported(format!(
                    "the weights have neither `{stored}` nor the word embeddings to tie it to"
                )));
            }
            if embeddings.dims() != [vocab, hidden] {
                return Err(ModelError::Unsupported(format!(
                    "the word embeddings `{stored}` is tied to are {:?}, not {vocab} × {hidden}",
                    embeddings.dims()
                )));
            }
            Ok(embeddings.clone())
        };
        match model_type {
            "bert" => {
                let t = "cls.predictions.transform";
                need(&format!("{t}.dense.weight"))?;
                need("cls.predictions.bias")?;
                let act_name = config_str(config, "hidden_act").unwrap_or("gelu");
                let eps = config
                    .get("layer_norm_eps")
                    .and_then(|v| v.as_f64())
                    .unwrap_or(1e-12);
                let weight = tied(
                    "cls.predictions.decoder.weight",
                    &[
                        "bert.embeddings.word_embeddings.weight",
                        "embeddings.word_embeddings.weight",
                    ],
                )?;
                let bias = vb.get(vocab, "cls.predictions.bias")?;
                Ok(Self {
                    transform: Linear::load(vb.pp(format!("{t}.dense")), hidden, hidden, true)?,
                    act: crate::arch::activation(act_name)?,
                    norm: LayerNorm::load(vb.pp(format!("{t}.LayerNorm")), hidden, eps)?,
                    decoder: Linear::from_weight(weight, Some(bias)),
                })
            }
            "distilbert" => {
                need("vocab_transform.weight")?;
                need("vocab_projector.bias")?;
                let act_name = config_str(config, "activation").unwrap_or("gelu");
                let weight = tied(
                    "vocab_projector.weight",
                    &["distilbert.embeddings.word_embeddings.weight"],
                )?;
                let bias = vb.get(vocab, "vocab_projector.bias")?;
                Ok(Self {
                    transform: Linear::load(vb.pp("vocab_transform"), hidden, hidden, true)?,
                    act: crate::arch::activation(act_name)?,
                    norm: LayerNorm::load(vb.pp("vocab_layer_norm"), hidden, 1e-12)?,
                    decoder: Linear::from_weight(weight, Some(bias)),
                })
            }
            other => Err(ModelError::Unsupported(format!(
                "SPLADE models of model_type `{other}` are not supported yet (supported: bert, distilbert)"
            ))),
        }
    }

    /// Vocabulary logits (`rows × vocab`) for token states (`rows × hidden`).
    pub fn forward(&self, pass: Pass, hidden: &Tensor) -> Result<Tensor> {
        let x = self
            .act
            .apply(&self.transform.forward(pass, hidden, None)?)?;
        self.decoder
            .forward(pass, &self.norm.forward(pass, &x)?, None)
    }

    /// The linears a precision setting reaches (the decoder is the largest product of a SPLADE
    /// pass: vocabulary × hidden per token).
    pub fn linears_mut(&mut self) -> Vec<&mut Linear> {
        vec![&mut self.transform, &mut self.decoder]
    }
}
