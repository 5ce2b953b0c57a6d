//! `SentenceTransformer.tokenizer`: the model's own tokenizer (its `tokenizer.json`), with the small
//! part of the Hugging Face tokenizer API that sentence-transformers users reach for: calling it,
//! `encode`, `decode`, `tokenize` and token/id lookups.

use std::sync::Arc;

use fathom_model::Embedder;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use tokenizers::{Encoding, TruncationDirection};

use crate::errors::run_detached;

/// The tokenizer of a loaded model. Get it from `SentenceTransformer.tokenizer`.
#[pyclass(frozen, module = "fathom")]
#[derive(Debug)]
pub struct Tokenizer {
    embedder: Arc<Embedder>,
}

impl Tokenizer {
    pub fn new(embedder: Arc<Embedder>) -> Self {
        Self { embedder }
    }

    fn inner(&self) -> &tokenizers::Tokenizer {
        self.embedder.tokenizer()
    }

    /// Encodes `texts` (tokenizer work: the GIL is released meanwhile); with `max_length`, cut
    /// from the right so that the result, special tokens included, fits.
    fn encode_many(
        &self,
        py: Python<'_>,
        texts: Vec<String>,
        add_special_tokens: bool,
        max_length: Option<usize>,
    ) -> PyResult<Vec<Encoding>> {
        let tokenizer = self.inner();
        run_detached(py, move || {
            let specials = if add_special_tokens {
                tokenizer
                    .get_post_processor()
                    .map_or(0, |p| tokenizers::PostProcessor::added_tokens(p, false))
            } else {
                0
            };
            let encodings = tokenizer
                .encode_batch(texts, false)
                .map_err(|e| PyValueError::new_err(format!("tokenizer: {e}")))?;
            encodings
                .into_iter()
                .map(|mut enc| {
                    if let Some(max) = max_length {
                        let budget = max.saturating_sub(specials);
                        if enc.len() > budget {
                            enc.truncate(budget, 0, TruncationDirection::Right);
                        }
                    }
                    tokenizer
                        .post_process(enc, None, add_special_tokens)
                        .map_err(|e| PyValueError::new_err(format!("tokenizer: {e}")))
                })
                .collect()
        })
    }
}

/// One per-token list of an [`Encoding`] (ids, attention mask, type ids).
type Column = fn(&Encoding) -> &[u32];

/// `text` as one string or a list of strings; `true` when it was a single string.
fn texts_of(text: &Bound<'_, PyAny>) -> PyResult<(Vec<String>, bool)> {
    if let Ok(s) = text.cast::<PyString>() {
        return Ok((vec![s.to_cow()?.into_owned()], true));
    }
    let texts = crate::model::extract_texts(text)?;
    Ok((texts, false))
}

#[pymethods]
impl Tokenizer {
    /// Tokenizes a string or a list of strings: a dict with `input_ids`, `attention_mask` and
    /// `token_type_ids` (lists of ints, or lists of such lists for a list input; no padding).
    /// `truncation=True` cuts each input to `max_length` tokens (default: the model's
    /// max_seq_length).
    #[pyo3(signature = (text, add_special_tokens=true, truncation=false, max_length=None))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        text: &Bound<'py, PyAny>,
        add_special_tokens: bool,
        truncation: bool,
        max_length: Option<usize>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let (texts, single) = texts_of(text)?;
        let limit = truncation.then(|| max_length.unwrap_or(self.embedder.max_seq_length()));
        let encodings = self.encode_many(py, texts, add_special_tokens, limit)?;
        let out = PyDict::new(py);
        let columns: [(&str, Column); 3] = [
            ("input_ids", Encoding::get_ids),
            ("attention_mask", Encoding::get_attention_mask),
            ("token_type_ids", Encoding::get_type_ids),
        ];
        for (key, column) in columns {
            if single {
                out.set_item(key, column(&encodings[0]).to_vec())?;
            } else {
                let rows: Vec<Vec<u32>> = encodings.iter().map(|e| column(e).to_vec()).collect();
                out.set_item(key, rows)?;
            }
        }
        Ok(out)
    }

    /// Token ids of one string (with the model's special tokens unless told otherwise).
    #[pyo3(signature = (text, add_special_tokens=true))]
    fn encode(&self, py: Python<'_>, text: String, add_special_tokens: bool) -> PyResult<Vec<u32>> {
        let enc = self.encode_many(py, vec![text], add_special_tokens, None)?;
        Ok(enc[0].get_ids().to_vec())
    }

    /// The token strings of one string, without special tokens (as `tokenizer.tokenize` in
    /// transformers).
    fn tokenize(&self, py: Python<'_>, text: String) -> PyResult<Vec<String>> {
        let enc = self.encode_many(py, vec![text], false, None)?;
        Ok(enc[0].get_tokens().to_vec())
    }

    /// The text of a list of token ids.
    #[pyo3(signature = (ids, skip_special_tokens=true))]
    fn decode(&self, ids: Vec<u32>, skip_special_tokens: bool) -> PyResult<String> {
        self.inner()
            .decode(&ids, skip_special_tokens)
            .map_err(|e| PyValueError::new_err(format!("tokenizer: {e}")))
    }

    /// Ids of token strings (one string gives one id); unknown tokens give the unknown token's id,
    /// or `None` when the vocabulary has none.
    fn convert_tokens_to_ids<'py>(
        &self,
        py: Python<'py>,
        tokens: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tokenizer = self.inner();
        let unknown = ["[UNK]", "<unk>"]
            .iter()
            .find_map(|t| tokenizer.token_to_id(t));
        let id = |t: &str| tokenizer.token_to_id(t).or(unknown);
        if let Ok(s) = tokens.cast::<PyString>() {
            return Ok(id(&s.to_cow()?).into_pyobject(py)?);
        }
        let list: Vec<String> = tokens.extract().map_err(|_| {
            PyTypeError::new_err("convert_tokens_to_ids expects a str or a list of str")
        })?;
        let ids: Vec<Option<u32>> = list.iter().map(|t| id(t)).collect();
        Ok(PyList::new(py, ids)?.into_any())
    }

    /// Token strings of ids (`None` for an id outside the vocabulary).
    fn convert_ids_to_tokens(&self, ids: Vec<u32>) -> Vec<Option<String>> {
        ids.iter().map(|&i| self.inner().id_to_token(i)).collect()
    }

    /// Size of the vocabulary, added tokens included (`len(tokenizer)` in transformers).
    #[getter]
    fn vocab_size(&self) -> usize {
        self.inner().get_vocab_size(true)
    }

    fn __len__(&self) -> usize {
        self.vocab_size()
    }

    /// The longest input the model reads, special tokens included.
    #[getter]
    fn model_max_length(&self) -> usize {
        self.embedder.max_seq_length()
    }

    fn __repr__(&self) -> String {
        format!(
            "Tokenizer(vocab_size={}, model_max_length={})",
            self.vocab_size(),
            self.model_max_length()
        )
    }
}
