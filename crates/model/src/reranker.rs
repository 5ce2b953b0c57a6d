//! [`Reranker`]: a cross-encoder scoring (query, document) pairs, as sentence-transformers'
//! `CrossEncoder.predict` does: the pair tokenized together and cut `longest_first` to the
//! model's max length, the architecture's sequence-classification head, then the model's
//! activation (Sigmoid for one label unless the model names another).

use candle_core::{DType, Device};
use std::collections::HashMap;

use tokenizers::{
    Encoding, PostProcessor, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy,
};

use crate::arch::{Encoder, PackedBatch};
use crate::embedder::{length_batches, load_parts, run_pass, LoadOptions, Precision};
use crate::error::{ModelError, Result};
use crate::heads::Classifier;
use crate::layout::{Activation, ModelKind, ModelLayout};

/// Options of one scoring call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RerankOptions {
    /// `false`: a pair longer than the model's max length is an error instead of being cut.
    pub truncate: bool,
    /// `true`: the logits as they are, without the model's activation (TEI's `raw_scores`).
    pub raw_scores: bool,
}

impl Default for RerankOptions {
    fn default() -> Self {
        Self {
            truncate: true,
            raw_scores: false,
        }
    }
}

/// A query tokenized once ([`Reranker::prepare_query`]), cut to what any pair can keep of it.
#[derive(Debug, Clone)]
pub struct PreparedQuery {
    encoding: Encoding,
    /// Its whole length, for refusing over-long pairs when truncation is off.
    tokens: usize,
}

/// A loaded cross-encoder.
#[derive(Debug)]
pub struct Reranker {
    layout: ModelLayout,
    tokenizer: Tokenizer,
    encoder: Box<dyn Encoder>,
    head: Classifier,
    device: Device,
    max_batch_tokens: usize,
    precision: Precision,
    generic_ops: bool,
    bf16_attention: bool,
}

impl Reranker {
    /// Loads a cross-encoder from a folder or hub id (`org/name[@revision]`).
    pub fn load(model: &str, options: &LoadOptions) -> Result<Self> {
        Self::from_layout(ModelLayout::open(model)?, options)
    }

    pub fn from_layout(mut layout: ModelLayout, options: &LoadOptions) -> Result<Self> {
        let causal = layout
            .config
            .get("architectures")
            .and_then(|a| a.as_array())
            .is_some_and(|a| {
                a.iter()
                    .filter_map(|v| v.as_str())
                    .any(|n| n.ends_with("ForCausalLM"))
            });
        if layout.kind == ModelKind::Embedder && causal {
            return Err(ModelError::Unsupported(format!(
                "`{}` is a causal language model; rerankers built on one (Qwen3-Reranker and the \
                 like, scored by their yes/no logits) are not supported yet. fathom runs BERT, \
                 XLM-RoBERTa, DistilBERT, MPNet and ModernBERT cross-encoders",
                layout.name
            )));
        }
        if layout.kind != ModelKind::Reranker {
            return Err(ModelError::WrongKind {
                name: layout.name.clone(),
                kind: layout.kind,
                wanted: ModelKind::Reranker,
            });
        }
        let mut parts = load_parts(&mut layout, options)?;
        let head = Classifier::load(&layout, &parts.vb)?;
        parts
            .tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: layout.max_seq_length,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        Ok(Self {
            layout,
            tokenizer: parts.tokenizer,
            encoder: parts.encoder,
            head,
            device: parts.device,
            max_batch_tokens: options.max_batch_tokens.max(1),
            precision: options.precision,
            generic_ops: options.generic_ops,
            bf16_attention: parts.bf16_attention,
        })
    }

    pub fn layout(&self) -> &ModelLayout {
        &self.layout
    }

    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Values per pair: 1 for a relevance model.
    pub fn num_labels(&self) -> usize {
        self.layout.dimension
    }

    /// Tokens of a pair, special tokens included: longer pairs are cut (or refused).
    pub fn max_seq_length(&self) -> usize {
        self.layout.max_seq_length
    }

    /// The activation [`Reranker::score`] applies unless `raw_scores` is set.
    pub fn activation(&self) -> Activation {
        self.layout.score_activation
    }

    /// Scores each (query, document) pair: one row of [`Reranker::num_labels`] values per pair,
    /// in order. Runs the model (work proportional to the tokens); pairs are sorted by length and
    /// packed into passes of at most `max_batch_tokens` tokens.
    pub fn score<Q: AsRef<str>, D: AsRef<str>>(
        &self,
        pairs: &[(Q, D)],
        options: &RerankOptions,
    ) -> Result<Vec<Vec<f32>>> {
        self.score_counting(pairs, options).map(|(s, _)| s)
    }

    /// [`Reranker::score`], also returning the tokens the model ran for each pair.
    pub fn score_counting<Q: AsRef<str>, D: AsRef<str>>(
        &self,
        pairs: &[(Q, D)],
        options: &RerankOptions,
    ) -> Result<(Vec<Vec<f32>>, Vec<usize>)> {
        // Each distinct query is tokenized once, not once per document.
        let mut queries: HashMap<&str, PreparedQuery> = HashMap::new();
        for (q, _) in pairs {
            if !queries.contains_key(q.as_ref()) {
                queries.insert(q.as_ref(), self.prepare_query(q.as_ref())?);
            }
        }
        let documents: Vec<&str> = pairs.iter().map(|(_, d)| d.as_ref()).collect();
        self.score_documents(|i| &queries[pairs[i].0.as_ref()], &documents, options)
    }

    /// A query tokenized once, for [`Reranker::rerank_prepared`] over any number of documents.
    pub fn prepare_query(&self, query: &str) -> Result<PreparedQuery> {
        let _span = crate::profile::span("tokenize");
        let mut encoding = self
            .tokenizer
            .encode(self.lowered(query), false)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        let tokens = encoding.len();
        // `longest_first` never keeps more of the query than the whole budget, and what it keeps
        // of a longer one depends only on the document's length: cutting the query to the budget
        // first gives the same pairs, and each pair then copies at most that many tokens.
        let budget = self
            .layout
            .max_seq_length
            .saturating_sub(self.pair_specials());
        if encoding.len() > budget {
            encoding.truncate(budget, 0, TruncationDirection::Right);
            drop(encoding.take_overflowing());
        }
        Ok(PreparedQuery { encoding, tokens })
    }

    /// [`Reranker::rerank`] with a query already tokenized, also returning the tokens the model
    /// ran for each pair.
    pub fn rerank_prepared<D: AsRef<str>>(
        &self,
        query: &PreparedQuery,
        documents: &[D],
        options: &RerankOptions,
    ) -> Result<(Vec<f32>, Vec<usize>)> {
        let documents: Vec<&str> = documents.iter().map(|d| d.as_ref()).collect();
        let (scores, tokens) = self.score_documents(|_| query, &documents, options)?;
        Ok((
            scores
                .into_iter()
                .map(|row| row.first().copied().unwrap_or(f32::NAN))
                .collect(),
            tokens,
        ))
    }

    fn lowered(&self, text: &str) -> String {
        if self.layout.do_lower_case {
            text.to_lowercase()
        } else {
            text.to_string()
        }
    }

    /// The special tokens the pair template adds.
    fn pair_specials(&self) -> usize {
        self.tokenizer
            .get_post_processor()
            .map_or(0, |p| p.added_tokens(true))
    }

    /// Scores `documents[i]` against `query(i)`: each pair goes through the tokenizer's own
    /// `post_process` (`longest_first` truncation and the pair template, exactly what encoding
    /// the pair in one call does), then the model in passes packed by length.
    fn score_documents<'q>(
        &self,
        query: impl Fn(usize) -> &'q PreparedQuery,
        documents: &[&str],
        options: &RerankOptions,
    ) -> Result<(Vec<Vec<f32>>, Vec<usize>)> {
        if documents.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let tokenize_span = crate::profile::span("tokenize");
        let tokenizer_error = |e: tokenizers::Error| ModelError::Tokenizer(e.to_string());
        let encoded = self
            .tokenizer
            .encode_batch(documents.iter().map(|d| self.lowered(d)).collect(), false)
            .map_err(tokenizer_error)?;
        let specials = self.pair_specials();
        let max = self.layout.max_seq_length;
        let mut encodings = Vec::with_capacity(documents.len());
        for (index, document) in encoded.into_iter().enumerate() {
            let q = query(index);
            let tokens = q.tokens + document.len() + specials;
            if !options.truncate && tokens > max {
                return Err(ModelError::InputTooLong { index, tokens, max });
            }
            encodings.push(
                self.tokenizer
                    .post_process(q.encoding.clone(), Some(document), true)
                    .map_err(tokenizer_error)?,
            );
        }
        drop(tokenize_span);
        let lengths: Vec<usize> = encodings.iter().map(|e| e.len()).collect();
        let mut scores = vec![Vec::new(); encodings.len()];
        for members in length_batches(&lengths, self.max_batch_tokens) {
            let mut batch = PackedBatch::default();
            for &i in &members {
                batch.input_ids.extend_from_slice(encodings[i].get_ids());
                if self.layout.token_type_ids {
                    batch
                        .type_ids
                        .extend_from_slice(encodings[i].get_type_ids());
                } else {
                    batch.type_ids.resize(batch.input_ids.len(), 0);
                }
                batch.seq_lens.push(lengths[i]);
            }
            let logits = run_pass(&self.device, self.generic_ops, self.bf16_attention, || {
                let hidden = self.encoder.forward(&batch)?;
                let _span = crate::profile::span("classifier");
                Ok(self
                    .head
                    .forward(&hidden, &batch.seq_lens)?
                    .to_dtype(DType::F32)?
                    .to_vec2::<f32>()?)
            })?;
            for (&i, row) in members.iter().zip(logits) {
                scores[i] = row;
            }
        }
        if !options.raw_scores {
            let activation = self.layout.score_activation;
            for v in scores.iter_mut().flatten() {
                *v = activation.apply(*v);
            }
        }
        Ok((scores, lengths))
    }

    /// Scores every document against one query: the first label's score per document, in order.
    pub fn rerank<D: AsRef<str>>(
        &self,
        query: &str,
        documents: &[D],
        options: &RerankOptions,
    ) -> Result<Vec<f32>> {
        let query = self.prepare_query(query)?;
        Ok(self.rerank_prepared(&query, documents, options)?.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activations_match_torch() {
        assert_eq!(Activation::Identity.apply(-1.5), -1.5);
        assert!((Activation::Sigmoid.apply(0.0) - 0.5).abs() < 1e-7);
        // torch.sigmoid(torch.tensor(2.0)) = 0.8807971
        assert!((Activation::Sigmoid.apply(2.0) - 0.880_797_1).abs() < 1e-6);
        // torch.nn.functional.gelu(torch.tensor(1.0)) = 0.8413447
        assert!((Activation::Gelu.apply(1.0) - 0.841_344_7).abs() < 1e-6);
        assert_eq!(Activation::Relu.apply(-3.0), 0.0);
    }
}
