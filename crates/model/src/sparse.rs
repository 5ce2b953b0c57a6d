//! [`SparseEncoder`]: SPLADE models, as sentence-transformers' `SparseEncoder` runs them: the
//! masked-LM head's vocabulary logits per token, `log1p(relu(·))` (and a second `log1p` for
//! OpenSearch's `log1p_relu` models), reduced over the tokens by max (or sum). What comes out is
//! one weight per vocabulary token, almost all zero, kept as (index, value) pairs.

use candle_core::{DType, Device, Tensor};
use serde::Serialize;
use tokenizers::Tokenizer;

use crate::arch::{Encoder, PackedBatch};
use crate::embedder::{length_batches, load_parts, run_pass, LoadOptions, Precision};
use crate::error::{ModelError, Result};
use crate::heads::MaskedLmHead;
use crate::layout::{ModelKind, ModelLayout, SparsePooling};
use crate::ops::Pass;

/// Token rows whose vocabulary logits are computed at once (rows × vocabulary floats: 128 rows of
/// a 30,522-token vocabulary are 15.6 MB), so a long input never holds its whole logit matrix.
const LOGIT_ROWS: usize = 128;

/// One text's sparse vector: vocabulary indices in increasing order, each with its weight (> 0).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SparseEmbedding {
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

/// A loaded SPLADE model.
#[derive(Debug)]
pub struct SparseEncoder {
    layout: ModelLayout,
    tokenizer: Tokenizer,
    encoder: Box<dyn Encoder>,
    head: MaskedLmHead,
    pooling: SparsePooling,
    device: Device,
    max_batch_tokens: usize,
    precision: Precision,
    /// How every forward pass computes.
    pass: Pass,
}

impl SparseEncoder {
    /// Loads a SPLADE model from a folder or hub id (`org/name[@revision]`).
    pub fn load(model: &str, options: &LoadOptions) -> Result<Self> {
        Self::from_layout(ModelLayout::open(model)?, options)
    }

    pub fn from_layout(mut layout: ModelLayout, options: &LoadOptions) -> Result<Self> {
        let pooling = match (layout.kind, layout.sparse) {
            (ModelKind::Sparse, Some(p)) => p,
            (kind, _) => {
                return Err(ModelError::WrongKind {
                    name: layout.name.clone(),
                    kind,
                    wanted: ModelKind::Sparse,
                })
            }
        };
        let parts = load_parts(&mut layout, options)?;
        let mut head = MaskedLmHead::load(&layout, &parts.vb, parts.encoder.word_embeddings())?;
        head.linears_mut()
            .into_iter()
            .try_for_each(|l| parts.linears.apply(l))?;
        Ok(Self {
            layout,
            tokenizer: parts.tokenizer,
            encoder: parts.encoder,
            head,
            pooling,
            device: parts.device,
            max_batch_tokens: options.max_batch_tokens.max(1),
            precision: options.precision,
            pass: parts.pass,
        })
    }

    pub fn layout(&self) -> &ModelLayout {
        &self.layout
    }

    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The vocabulary size: the width of the (sparse) vectors.
    pub fn dimension(&self) -> usize {
        self.layout.dimension
    }

    pub fn max_seq_length(&self) -> usize {
        self.layout.max_seq_length
    }

    /// The vocabulary token an index stands for.
    pub fn token(&self, index: u32) -> Option<String> {
        self.tokenizer.id_to_token(index)
    }

    /// One sparse vector per text, in order; `truncate: false` refuses texts longer than the
    /// model's max length instead of cutting them.
    pub fn encode<S: AsRef<str>>(
        &self,
        texts: &[S],
        truncate: bool,
    ) -> Result<Vec<SparseEmbedding>> {
        self.encode_counting(texts, truncate).map(|(v, _)| v)
    }

    /// [`SparseEncoder::encode`], also returning the tokens the model ran for each text.
    pub fn encode_counting<S: AsRef<str>>(
        &self,
        texts: &[S],
        truncate: bool,
    ) -> Result<(Vec<SparseEmbedding>, Vec<usize>)> {
        if texts.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let max = self.layout.max_seq_length;
        let specials = self
            .tokenizer
            .get_post_processor()
            .map_or(0, |p| tokenizers::PostProcessor::added_tokens(p, false));
        let budget = max.saturating_sub(specials).max(1);
        let inputs: Vec<String> = texts
            .iter()
            .map(|t| {
                if self.layout.do_lower_case {
                    t.as_ref().to_lowercase()
                } else {
                    t.as_ref().to_string()
                }
            })
            .collect();
        let encodings = self
            .tokenizer
            .encode_batch(inputs, false)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        let mut ids = Vec::with_capacity(encodings.len());
        for (index, mut enc) in encodings.into_iter().enumerate() {
            if enc.len() > budget {
                if !truncate {
                    return Err(ModelError::InputTooLong {
                        index,
                        tokens: enc.len() + specials,
                        max,
                    });
                }
                enc.truncate(budget, 0, tokenizers::TruncationDirection::Right);
            }
            let enc = self
                .tokenizer
                .post_process(enc, None, true)
                .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
            ids.push((enc.get_ids().to_vec(), enc.get_type_ids().to_vec()));
        }
        let lengths: Vec<usize> = ids.iter().map(|(i, _)| i.len()).collect();
        let mut out = vec![
            SparseEmbedding {
                indices: Vec::new(),
                values: Vec::new()
            };
            ids.len()
        ];
        for members in length_batches(&lengths, self.max_batch_tokens) {
            let mut batch = PackedBatch::default();
            for &i in &members {
                batch.input_ids.extend_from_slice(&ids[i].0);
                batch.type_ids.extend_from_slice(&ids[i].1);
                batch.seq_lens.push(lengths[i]);
            }
            let pooled = run_pass(&self.device, || {
                let hidden = self
                    .encoder
                    .forward(&batch, self.pass)?
                    .to_dtype(DType::F32)?;
                let _span = crate::profile::span("splade");
                let mut start = 0;
                let mut rows = Vec::with_capacity(batch.seq_lens.len());
                for &len in &batch.seq_lens {
                    rows.push(self.pool_sequence(&hidden.narrow(0, start, len)?)?);
                    start += len;
                }
                Ok(rows)
            })?;
            for (&i, v) in members.iter().zip(pooled) {
                out[i] = v;
            }
        }
        Ok((out, lengths))
    }

    /// One sequence's token states (`len × hidden`) to its sparse vector.
    fn pool_sequence(&self, hidden: &Tensor) -> Result<SparseEmbedding> {
        let len = hidden.dim(0)?;
        let mut pooled: Option<Tensor> = None;
        let mut start = 0;
        while start < len {
            let rows = LOGIT_ROWS.min(len - start);
            let logits = self
                .head
                .forward(self.pass, &hidden.narrow(0, start, rows)?)?;
            let mut x = logits.relu()?.affine(1.0, 1.0)?.log()?;
            if self.pooling.log1p_relu {
                x = x.affine(1.0, 1.0)?.log()?;
            }
            let reduced = if self.pooling.sum {
                x.sum(0)?
            } else {
                x.max(0)?
            };
            pooled = Some(match pooled {
                None => reduced,
                Some(p) if self.pooling.sum => (p + reduced)?,
                Some(p) => p.maximum(&reduced)?,
            });
            start += rows;
        }
        let dense: Vec<f32> = match pooled {
            Some(p) => p.to_vec1()?,
            None => Vec::new(),
        };
        let mut embedding = SparseEmbedding {
            indices: Vec::new(),
            values: Vec::new(),
        };
        for (i, v) in dense.into_iter().enumerate() {
            if v > 0.0 {
                embedding.indices.push(i as u32);
                embedding.values.push(v);
            }
        }
        Ok(embedding)
    }
}
