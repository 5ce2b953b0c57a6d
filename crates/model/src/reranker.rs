//! [`Reranker`]: a cross-encoder scoring (query, document) pairs, as sentence-transformers'
//! `CrossEncoder.predict` does: the pair tokenized together and cut `longest_first` to the
//! model's max length, the architecture's sequence-classification head, then the model's
//! activation (Sigmoid for one label unless the model names another).
//!
//! A causal-LM reranker (Qwen3-Reranker; sentence-transformers' `LogitScore`) instead renders
//! each pair through its chat template into one prompt, tokenizes that, cuts it to the max length
//! keeping the template's tail (the assistant turn the score is read after), and scores the
//! next-token logit of "yes" against "no".

use candle_core::{DType, Device};
use std::collections::HashMap;

use tokenizers::{
    Encoding, PostProcessor, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy,
};

use crate::arch::{Encoder, PackedBatch};
use crate::chat::{PairTemplate, QWEN3_RERANKER_TEMPLATE};
use crate::embedder::{length_batches, load_parts, run_pass, LoadOptions, Precision};
use crate::error::{ModelError, Result};
use crate::heads::Classifier;
use crate::layout::{Activation, LogitScore, ModelKind, ModelLayout};
use crate::ops::Pass;

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
    form: QueryForm,
    /// Its whole length, for refusing over-long pairs when truncation is off.
    tokens: usize,
}

#[derive(Debug, Clone)]
enum QueryForm {
    /// For the tokenizer's pair template: the query's tokens.
    Tokens(Box<Encoding>),
    /// For a chat template: the query's text, cut a little past the longest prefix a prompt
    /// can keep.
    Text(String),
}

/// How a pair becomes one sequence of tokens.
#[derive(Debug)]
enum PairInput {
    /// Tokenized together, the tokenizer's pair template around them (BERT-style models).
    Tokenizer,
    /// Rendered through the chat template; `suffix`: the template's tail tokens, restored after
    /// a cut (sentence-transformers' `restore_suffix`).
    Chat {
        template: Box<PairTemplate>,
        suffix: Vec<u32>,
    },
}

/// Tokens of a text past the longest prefix a pair can keep, before the text is cut: context
/// changes how a text splits into tokens only near where it starts and ends.
const CUT_MARGIN: usize = 16;

/// A loaded cross-encoder.
#[derive(Debug)]
pub struct Reranker {
    layout: ModelLayout,
    tokenizer: Tokenizer,
    encoder: Box<dyn Encoder>,
    head: Classifier,
    input: PairInput,
    device: Device,
    max_batch_tokens: usize,
    precision: Precision,
    /// How every forward pass computes.
    pass: Pass,
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
        if layout.kind == ModelKind::Embedder && causal && layout.logit_score.is_none() {
            // What `CrossEncoder(model)` makes of a bare causal LM: "yes" against "no".
            as_causal_reranker(&mut layout)?;
        }
        if layout.kind != ModelKind::Reranker {
            return Err(ModelError::WrongKind {
                name: layout.name.clone(),
                kind: layout.kind,
                wanted: ModelKind::Reranker,
            });
        }
        let mut parts = load_parts(&mut layout, options)?;
        let head = Classifier::load(&layout, &parts.vb, parts.encoder.word_embeddings())?;
        let input = match layout.logit_score {
            None => PairInput::Tokenizer,
            Some(_) => {
                let template = pair_template(&layout)?;
                let suffix = template_suffix(&template, &parts.tokenizer)?;
                PairInput::Chat {
                    template: Box::new(template),
                    suffix,
                }
            }
        };
        if let PairInput::Tokenizer = input {
            // Pairs are cut by the tokenizer; a rendered prompt is cut here, keeping its tail.
            parts
                .tokenizer
                .with_truncation(Some(TruncationParams {
                    max_length: layout.max_seq_length,
                    strategy: TruncationStrategy::LongestFirst,
                    stride: 0,
                    direction: TruncationDirection::Right,
                }))
                .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        }
        Ok(Self {
            layout,
            tokenizer: parts.tokenizer,
            encoder: parts.encoder,
            head,
            input,
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
        if let PairInput::Chat { .. } = self.input {
            let (text, tokens) = self.cut_text(query)?;
            return Ok(PreparedQuery {
                form: QueryForm::Text(text),
                tokens,
            });
        }
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
        Ok(PreparedQuery {
            form: QueryForm::Tokens(Box::new(encoding)),
            tokens,
        })
    }

    /// A text cut to a little more than a prompt can keep of it, with its length in tokens: so
    /// that a huge query or document costs one tokenization, not one per pair.
    fn cut_text(&self, text: &str) -> Result<(String, usize)> {
        let encoding = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        Ok((
            cut_at_token(text, &encoding, self.layout.max_seq_length + CUT_MARGIN),
            encoding.len(),
        ))
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
        let encodings = match &self.input {
            PairInput::Tokenizer => self.tokenize_pairs(&query, documents, options)?,
            PairInput::Chat { template, suffix } => {
                self.render_pairs(&query, documents, options, template, suffix)?
            }
        };
        self.run(encodings, options)
    }

    /// Pairs through the tokenizer's own `post_process` (`longest_first` truncation and the pair
    /// template, exactly what encoding the pair in one call does).
    fn tokenize_pairs<'q>(
        &self,
        query: &impl Fn(usize) -> &'q PreparedQuery,
        documents: &[&str],
        options: &RerankOptions,
    ) -> Result<Vec<(Vec<u32>, Vec<u32>)>> {
        let _span = crate::profile::span("tokenize");
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
            let QueryForm::Tokens(encoding) = &q.form else {
                return Err(foreign_query());
            };
            let tokens = q.tokens + document.len() + specials;
            if !options.truncate && tokens > max {
                return Err(ModelError::InputTooLong { index, tokens, max });
            }
            let pair = self
                .tokenizer
                .post_process(encoding.as_ref().clone(), Some(document), true)
                .map_err(tokenizer_error)?;
            if self.layout.token_type_ids {
                encodings.push((pair.get_ids().to_vec(), pair.get_type_ids().to_vec()));
            } else {
                encodings.push((pair.get_ids().to_vec(), Vec::new()));
            }
        }
        Ok(encodings)
    }

    /// Pairs rendered through the chat template, tokenized as `apply_chat_template` tokenizes
    /// (no special tokens added: the template has them), cut to the max length from the right
    /// with the template's tail written back over the last tokens, as sentence-transformers does.
    fn render_pairs<'q>(
        &self,
        query: &impl Fn(usize) -> &'q PreparedQuery,
        documents: &[&str],
        options: &RerankOptions,
        template: &PairTemplate,
        suffix: &[u32],
    ) -> Result<Vec<(Vec<u32>, Vec<u32>)>> {
        let _span = crate::profile::span("tokenize");
        let tokenizer_error = |e: tokenizers::Error| ModelError::Tokenizer(e.to_string());
        let max = self.layout.max_seq_length;
        let cut: Vec<String> = self
            .tokenizer
            .encode_batch(documents.to_vec(), false)
            .map_err(tokenizer_error)?
            .iter()
            .zip(documents)
            .map(|(e, d)| cut_at_token(d, e, max + CUT_MARGIN))
            .collect();
        let prompts = cut
            .iter()
            .enumerate()
            .map(|(i, document)| {
                let QueryForm::Text(q) = &query(i).form else {
                    return Err(foreign_query());
                };
                template.render(q, document)
            })
            .collect::<Result<Vec<String>>>()?;
        let encoded = self
            .tokenizer
            .encode_batch(prompts, false)
            .map_err(tokenizer_error)?;
        let mut encodings = Vec::with_capacity(encoded.len());
        for (index, prompt) in encoded.into_iter().enumerate() {
            let mut ids = prompt.get_ids().to_vec();
            if ids.len() > max {
                if !options.truncate {
                    return Err(ModelError::InputTooLong {
                        index,
                        tokens: ids.len(),
                        max,
                    });
                }
                ids.truncate(max);
                let keep = suffix.len().min(max);
                ids[max - keep..].copy_from_slice(&suffix[suffix.len() - keep..]);
            }
            encodings.push((ids, Vec::new()));
        }
        Ok(encodings)
    }

    /// The model over pairs already tokenized (ids, and type ids or none), in passes packed by
    /// length; the activation unless `raw_scores`.
    fn run(
        &self,
        encodings: Vec<(Vec<u32>, Vec<u32>)>,
        options: &RerankOptions,
    ) -> Result<(Vec<Vec<f32>>, Vec<usize>)> {
        let lengths: Vec<usize> = encodings.iter().map(|(ids, _)| ids.len()).collect();
        let mut scores = vec![Vec::new(); encodings.len()];
        for members in length_batches(&lengths, self.max_batch_tokens) {
            let mut batch = PackedBatch::default();
            for &i in &members {
                let (ids, type_ids) = &encodings[i];
                batch.input_ids.extend_from_slice(ids);
                if type_ids.is_empty() {
                    batch.type_ids.resize(batch.input_ids.len(), 0);
                } else {
                    batch.type_ids.extend_from_slice(type_ids);
                }
                batch.seq_lens.push(lengths[i]);
            }
            let logits = run_pass(&self.device, || {
                let hidden = self.encoder.forward(&batch, self.pass)?;
                let _span = crate::profile::span("classifier");
                Ok(self
                    .head
                    .forward(self.pass, &hidden, &batch.seq_lens)?
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

/// A query prepared by a reranker of the other input kind.
fn foreign_query() -> ModelError {
    ModelError::Unsupported("a query prepared by another reranker; prepare it with this one".into())
}

/// `text` up to where its token `n` starts (all of it when it has no more than `n` tokens).
fn cut_at_token(text: &str, encoding: &Encoding, n: usize) -> String {
    let end = encoding
        .get_offsets()
        .get(n)
        .map_or(text.len(), |&(start, _)| start);
    // Offsets are byte positions of the original text; fall back to it whole if one is not on a
    // character boundary.
    text.get(..end).unwrap_or(text).to_string()
}

/// The template a causal-LM reranker renders pairs with: its own, or — for a Qwen3 checkpoint
/// whose template is only conversational, as Qwen3-Reranker's original upload is — the prompt of
/// Qwen3-Reranker's model card.
fn pair_template(layout: &ModelLayout) -> Result<PairTemplate> {
    let own = layout.chat_template.as_deref().map(|source| {
        PairTemplate::new(
            source,
            layout.structured_messages,
            layout.special_tokens.clone(),
        )
    });
    match own {
        Some(Ok(template)) => Ok(template),
        Some(Err(_)) | None if layout.model_type == "qwen3" => PairTemplate::new(
            QWEN3_RERANKER_TEMPLATE,
            false,
            layout.special_tokens.clone(),
        ),
        Some(Err(e)) => Err(e),
        None => Err(ModelError::Unsupported(format!(
            "`{}` is a causal-LM reranker without a chat template (chat_template.jinja) to render \
             its query/document pairs",
            layout.name
        ))),
    }
}

/// The template's tail: the tokens two renders with different contents end with (as
/// sentence-transformers derives it, with the same fillers), or none when they never differ.
fn template_suffix(template: &PairTemplate, tokenizer: &Tokenizer) -> Result<Vec<u32>> {
    let ids = |filler: &str| -> Result<Vec<u32>> {
        Ok(tokenizer
            .encode(template.render(filler, filler)?, false)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?
            .get_ids()
            .to_vec())
    };
    let (first, second) = (ids("0")?, ids("1 2 3 4")?);
    let common = first
        .iter()
        .rev()
        .zip(second.iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    Ok(if common > 0 && common < first.len().min(second.len()) {
        first[first.len() - common..].to_vec()
    } else {
        Vec::new()
    })
}

/// A bare causal LM loaded as a reranker, as `CrossEncoder(model)` takes one: scored by the
/// logit of "yes" minus that of "no", through a sigmoid.
fn as_causal_reranker(layout: &mut ModelLayout) -> Result<()> {
    let tokenizer = Tokenizer::from_file(&layout.tokenizer_path)
        .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
    let (Some(yes), Some(no)) = (tokenizer.token_to_id("yes"), tokenizer.token_to_id("no")) else {
        return Err(ModelError::Unsupported(format!(
            "`{}` is a causal language model whose tokenizer has no single `yes` and `no` tokens, \
             which a causal-LM reranker is scored by",
            layout.name
        )));
    };
    layout.logit_score = Some(LogitScore {
        true_token_id: yes,
        false_token_id: Some(no),
    });
    layout.kind = ModelKind::Reranker;
    layout.dimension = 1;
    layout.score_activation = Activation::Sigmoid;
    Ok(())
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
