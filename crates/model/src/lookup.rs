//! Static-embedding models: a vector per vocabulary token, a text's embedding the mean of its
//! tokens' vectors. Two formats, each encoded as the library that defines it encodes:
//!
//! - sentence-transformers' `StaticEmbedding` (e.g. sentence-transformers/static-retrieval-mrl-en-v1;
//!   its table is `embedding.weight`): every token of the text, no special tokens, no cut
//!   (`nn.EmbeddingBag` in mean mode);
//! - Model2Vec (minishlab/potion-base-8M and its family; the table is `embeddings`, with an optional
//!   `mapping` from token to row, for vocabulary-quantized models, and per-token `weights`):
//!   `StaticModel.encode` cuts the text to `max_length` times the vocabulary's median token length in
//!   characters, then to `max_length` tokens, and drops unknown tokens before averaging.
//!
//! Either way there is no transformer: the work is tokenizing and summing rows, which is why these
//! models embed thousands of documents a second on a laptop's cores.

use rayon::prelude::*;
use tokenizers::Tokenizer;

use crate::error::{ModelError, Result};
use crate::layout::StaticLayout;

/// A loaded table, each token's row already scaled by its weight.
#[derive(Debug)]
pub(crate) struct StaticTable {
    rows: Vec<f32>,
    dim: usize,
    /// Model2Vec's encoding: the token cap, the text's character cap and the unknown token.
    model2vec: Option<Model2VecCut>,
}

#[derive(Debug, Clone, Copy)]
struct Model2VecCut {
    max_tokens: Option<usize>,
    max_chars: Option<usize>,
    unk: Option<u32>,
}

fn bad(path: &std::path::Path, message: String) -> ModelError {
    ModelError::BadWeights {
        path: path.to_path_buf(),
        message,
    }
}

impl StaticTable {
    pub fn load(layout: &StaticLayout, tokenizer: &Tokenizer) -> Result<Self> {
        let path = &layout.weights;
        let mut table = None;
        let mut mapping = None;
        let mut weights = None;
        crate::embedder::read_safetensors(path, |name, tensor| {
            match name.as_str() {
                "embedding.weight" | "embeddings" => table = Some(tensor),
                "mapping" => mapping = Some(tensor),
                "weights" => weights = Some(tensor),
                _ => {}
            }
            Ok(())
        })?;
        let table = table.ok_or_else(|| {
            bad(
                path,
                "no `embedding.weight` or `embeddings` tensor: not a static-embedding model".into(),
            )
        })?;
        let (rows_stored, dim) = table
            .dims2()
            .map_err(|e| bad(path, format!("the embedding table: {e}")))?;
        let table: Vec<f32> = table
            .to_dtype(candle_core::DType::F32)?
            .flatten_all()?
            .to_vec1()?;
        let vocab = tokenizer.get_vocab_size(false);
        // One row per token id: Model2Vec's `mapping` picks a shared row for each token.
        let ids: Vec<usize> = match mapping {
            Some(m) => {
                let m: Vec<i64> = m.to_dtype(candle_core::DType::I64)?.to_vec1()?;
                m.into_iter()
                    .map(|r| {
                        usize::try_from(r)
                            .ok()
                            .filter(|&r| r < rows_stored)
                            .ok_or_else(|| {
                                bad(path, format!("`mapping` names row {r} of {rows_stored}"))
                            })
                    })
                    .collect::<Result<_>>()?
            }
            None => (0..rows_stored).collect(),
        };
        let scale: Option<Vec<f32>> = match weights {
            Some(w) => {
                let w: Vec<f32> = w.to_dtype(candle_core::DType::F32)?.to_vec1()?;
                if w.len() != ids.len() {
                    return Err(bad(
                        path,
                        format!("{} `weights` for {} tokens", w.len(), ids.len()),
                    ));
                }
                Some(w)
            }
            None => None,
        };
        if ids.len() < vocab {
            return Err(bad(
                path,
                format!(
                    "{} token vectors for a tokenizer of {vocab} tokens",
                    ids.len()
                ),
            ));
        }
        let mut rows = Vec::with_capacity(ids.len() * dim);
        for (token, &row) in ids.iter().enumerate() {
            let source = &table[row * dim..(row + 1) * dim];
            match &scale {
                Some(w) => rows.extend(source.iter().map(|v| v * w[token])),
                None => rows.extend_from_slice(source),
            }
        }
        let model2vec = layout.model2vec.then(|| Model2VecCut {
            max_tokens: layout.max_length,
            max_chars: layout
                .max_length
                .map(|m| m.saturating_mul(median_token_chars(tokenizer))),
            unk: unknown_token(tokenizer),
        });
        Ok(Self {
            rows,
            dim,
            model2vec,
        })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Each text's mean token vector (zeros for a text without tokens) and its token count.
    pub fn embed(
        &self,
        tokenizer: &Tokenizer,
        texts: Vec<String>,
    ) -> Result<(Vec<Vec<f32>>, Vec<usize>)> {
        let texts: Vec<String> = texts.into_iter().map(|t| self.cut(t)).collect();
        let encodings = {
            let _span = crate::profile::span("tokenize");
            tokenizer
                .encode_batch_fast(texts, false)
                .map_err(|e| ModelError::Tokenizer(e.to_string()))?
        };
        let ids: Vec<&[u32]> = encodings.iter().map(|e| e.get_ids()).collect();
        Ok(self.pool(&ids))
    }

    /// [`StaticTable::embed`] for texts already tokenized (`ids[i]`: `texts[i]` tokenized without
    /// special tokens); a text Model2Vec would cut first is tokenized again after the cut.
    pub fn embed_ids(
        &self,
        tokenizer: &Tokenizer,
        texts: &[&str],
        ids: &[&[u32]],
    ) -> Result<(Vec<Vec<f32>>, Vec<usize>)> {
        let mut recut = Vec::new();
        for (i, text) in texts.iter().enumerate() {
            let cut = self.cut(text.to_string());
            if cut.len() != text.len() {
                recut.push((
                    i,
                    tokenizer
                        .encode_fast(cut, false)
                        .map_err(|e| ModelError::Tokenizer(e.to_string()))?,
                ));
            }
        }
        let mut all: Vec<&[u32]> = ids.to_vec();
        for (i, encoding) in &recut {
            all[*i] = encoding.get_ids();
        }
        Ok(self.pool(&all))
    }

    /// Model2Vec's cut of a text to `max_length` times the median token length, in characters.
    fn cut(&self, text: String) -> String {
        match self.model2vec.and_then(|c| c.max_chars) {
            Some(max_chars) => match text.char_indices().nth(max_chars) {
                Some((end, _)) => text[..end].to_string(),
                None => text,
            },
            None => text,
        }
    }

    /// The mean of each token list's rows, and the tokens each used.
    fn pool(&self, all: &[&[u32]]) -> (Vec<Vec<f32>>, Vec<usize>) {
        let _span = crate::profile::span("lookup");
        let rows = self.rows.len() / self.dim;
        all.par_iter()
            .map(|&ids| {
                let mut ids = ids;
                let mut sum = vec![0f32; self.dim];
                let mut count = 0usize;
                if let Some(cut) = self.model2vec {
                    if let Some(max) = cut.max_tokens {
                        ids = &ids[..ids.len().min(max)];
                    }
                    for &id in ids {
                        if Some(id) != cut.unk {
                            self.add_row(&mut sum, id, rows);
                            count += 1;
                        }
                    }
                } else {
                    for &id in ids {
                        self.add_row(&mut sum, id, rows);
                        count += 1;
                    }
                }
                if count > 0 {
                    let n = count as f32;
                    sum.iter_mut().for_each(|v| *v /= n);
                }
                (sum, ids.len())
            })
            .unzip()
    }

    fn add_row(&self, sum: &mut [f32], id: u32, rows: usize) {
        // Ids come from the model's own tokenizer, whose vocabulary the table covers (checked at
        // load); an added token past the table counts as nothing rather than reading out of it.
        let id = id as usize;
        if id < rows {
            let row = &self.rows[id * self.dim..(id + 1) * self.dim];
            sum.iter_mut().zip(row).for_each(|(s, v)| *s += v);
        }
    }
}

/// Model2Vec's `median_token_length`: the median length in characters of the vocabulary's
/// tokens (added tokens included), rounded down.
fn median_token_chars(tokenizer: &Tokenizer) -> usize {
    let mut lengths: Vec<usize> = tokenizer
        .get_vocab(true)
        .keys()
        .map(|t| t.chars().count())
        .collect();
    if lengths.is_empty() {
        return 1;
    }
    lengths.sort_unstable();
    let n = lengths.len();
    if n % 2 == 1 {
        lengths[n / 2]
    } else {
        // numpy's median of an even count is the mean of the middle two; int() rounds it down.
        (lengths[n / 2 - 1] + lengths[n / 2]) / 2
    }
}

/// The unknown token Model2Vec drops: the tokenizer model's `unk_token` (WordPiece, BPE,
/// WordLevel) or `unk_id` (Unigram).
fn unknown_token(tokenizer: &Tokenizer) -> Option<u32> {
    let json: serde_json::Value = serde_json::from_str(&tokenizer.to_string(false).ok()?).ok()?;
    let model = json.get("model")?;
    if let Some(token) = model.get("unk_token").and_then(|t| t.as_str()) {
        return tokenizer.token_to_id(token);
    }
    model
        .get("unk_id")
        .and_then(|i| i.as_u64())
        .and_then(|i| u32::try_from(i).ok())
}
