//! `fathom.CrossEncoder` and `fathom.SparseEncoder`: rerankers and SPLADE models with
//! sentence-transformers' signatures and defaults.

use std::path::PathBuf;
use std::sync::Arc;

use fathom_model::{Activation, RerankOptions, Reranker, SparseEncoder as Sparse};
use numpy::ndarray::Array2;
use numpy::IntoPyArray;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use crate::errors::{model_error, run_detached};
use crate::model::{extract_texts, load_options, resolve_model};

/// `(query, document)` pairs: one pair (a 2-tuple or 2-list of str) or a list of them. Returns
/// the pairs and whether a single pair was given.
fn extract_pairs(obj: &Bound<'_, PyAny>) -> PyResult<(Vec<(String, String)>, bool)> {
    let pair = |item: &Bound<'_, PyAny>| -> Option<(String, String)> {
        let seq: Vec<Bound<'_, PyAny>> = if let Ok(t) = item.cast::<PyTuple>() {
            t.iter().collect()
        } else if let Ok(l) = item.cast::<PyList>() {
            l.iter().collect()
        } else {
            return None;
        };
        match seq.as_slice() {
            [a, b] => Some((
                a.cast::<PyString>().ok()?.to_cow().ok()?.into_owned(),
                b.cast::<PyString>().ok()?.to_cow().ok()?.into_owned(),
            )),
            _ => None,
        }
    };
    if let Some(p) = pair(obj) {
        return Ok((vec![p], true));
    }
    let items: Vec<Bound<'_, PyAny>> = obj
        .try_iter()
        .map_err(|_| PyTypeError::new_err("expected a (query, document) pair or a list of pairs"))?
        .collect::<PyResult<_>>()?;
    let pairs = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            pair(item).ok_or_else(|| {
                PyTypeError::new_err(format!(
                    "expected a list of (query, document) pairs of str: item {i} is not one"
                ))
            })
        })
        .collect::<PyResult<Vec<_>>>()?;
    Ok((pairs, false))
}

/// Resolves a folder or hub id (through `cache_folder` when given) and loads it with `load`,
/// the GIL released.
fn load_detached<M: Send + Sync>(
    py: Python<'_>,
    model_name_or_path: &str,
    revision: Option<String>,
    cache_folder: Option<PathBuf>,
    load: impl FnOnce(&str) -> fathom_model::Result<M> + Send,
) -> PyResult<Arc<M>> {
    run_detached(py, move || {
        let model = resolve_model(
            model_name_or_path,
            revision.as_deref(),
            cache_folder.as_deref(),
        )?;
        load(&model).map(Arc::new).map_err(model_error)
    })
}

/// `activation_fn`: `None` (the model's own), or a torch-style activation object, recognised by
/// its class name (`Identity`, `Sigmoid`, `Tanh`, `ReLU`, `GELU`, `SiLU`).
fn activation_of(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Activation>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    let name = obj.get_type().name()?.to_string();
    Activation::parse(&name).map(Some).ok_or_else(|| {
        PyValueError::new_err(format!(
            "activation_fn {name} is not supported: pass None (the model's own), or \
             torch.nn.Identity(), Sigmoid(), Tanh(), ReLU(), GELU() or SiLU()"
        ))
    })
}

/// A cross-encoder (reranker), as `sentence_transformers.CrossEncoder`: `predict` scores
/// (query, document) pairs, `rank` orders documents for a query, with the same scores
/// (sentence-transformers' tokenization, truncation and default activation), in Rust.
///
/// `dtype` is `"float32"` (default), `"int8"` (CPU) or `"bfloat16"`; `max_length` caps the pair
/// length (default: the model's).
#[pyclass(frozen, module = "fathom")]
#[derive(Debug)]
pub struct CrossEncoder {
    model: Arc<Reranker>,
    name: String,
}

#[pymethods]
impl CrossEncoder {
    #[new]
    #[pyo3(signature = (model_name_or_path, device=Some("cpu"), revision=None, cache_folder=None, max_length=None, dtype="float32"))]
    fn new(
        py: Python<'_>,
        model_name_or_path: &str,
        device: Option<&str>,
        revision: Option<String>,
        cache_folder: Option<PathBuf>,
        max_length: Option<usize>,
        dtype: &str,
    ) -> PyResult<Self> {
        let options = load_options(device, dtype, max_length)?;
        Ok(Self {
            model: load_detached(py, model_name_or_path, revision, cache_folder, |m| {
                Reranker::load(m, &options)
            })?,
            name: model_name_or_path.to_string(),
        })
    }

    /// Scores of (query, document) pairs: a float for one pair, a 1-d float32 array for a list
    /// (a 2-d one for models with several labels). `activation_fn` (None: the model's own, Sigmoid
    /// for one label) and `apply_softmax` (over the labels) as in sentence-transformers;
    /// `batch_size` and `show_progress_bar` are accepted and ignored (fathom packs by tokens).
    #[pyo3(signature = (sentences, batch_size=32, show_progress_bar=None, activation_fn=None, apply_softmax=false, convert_to_numpy=true, convert_to_tensor=false))]
    #[allow(clippy::too_many_arguments)]
    fn predict<'py>(
        &self,
        py: Python<'py>,
        sentences: &Bound<'py, PyAny>,
        batch_size: usize,
        show_progress_bar: Option<bool>,
        activation_fn: Option<&Bound<'py, PyAny>>,
        apply_softmax: bool,
        convert_to_numpy: bool,
        convert_to_tensor: bool,
    ) -> PyResult<Py<PyAny>> {
        let _ = (batch_size, show_progress_bar, convert_to_numpy);
        if convert_to_tensor {
            return Err(PyValueError::new_err(
                "convert_to_tensor=True needs PyTorch, which fathom does not use; scores come as numpy arrays",
            ));
        }
        let (pairs, single) = extract_pairs(sentences)?;
        let scores = self.scores(py, pairs, activation_fn, apply_softmax)?;
        let labels = self.model.num_labels();
        if single {
            return Ok(if labels == 1 {
                scores[0][0].into_pyobject(py)?.into_any().unbind()
            } else {
                scores[0].clone().into_pyarray(py).into_any().unbind()
            });
        }
        if labels == 1 {
            let flat: Vec<f32> = scores.into_iter().map(|r| r[0]).collect();
            return Ok(flat.into_pyarray(py).into_any().unbind());
        }
        let n = scores.len();
        let flat: Vec<f32> = scores.into_iter().flatten().collect();
        let array = Array2::from_shape_vec((n, labels), flat)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(array.into_pyarray(py).into_any().unbind())
    }

    /// The documents ordered by their score against `query`, best first, as
    /// sentence-transformers returns them: `[{"corpus_id", "score"[, "text"]}]`, the best `top_k`
    /// (default all).
    #[pyo3(signature = (query, documents, top_k=None, return_documents=false, batch_size=32, show_progress_bar=None, activation_fn=None, apply_softmax=false, convert_to_numpy=true, convert_to_tensor=false))]
    #[allow(clippy::too_many_arguments)]
    fn rank<'py>(
        &self,
        py: Python<'py>,
        query: String,
        documents: &Bound<'py, PyAny>,
        top_k: Option<usize>,
        return_documents: bool,
        batch_size: usize,
        show_progress_bar: Option<bool>,
        activation_fn: Option<&Bound<'py, PyAny>>,
        apply_softmax: bool,
        convert_to_numpy: bool,
        convert_to_tensor: bool,
    ) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let _ = (
            batch_size,
            show_progress_bar,
            convert_to_numpy,
            convert_to_tensor,
        );
        let documents = extract_texts(documents)?;
        let pairs: Vec<(String, String)> = documents
            .iter()
            .map(|d| (query.clone(), d.clone()))
            .collect();
        let scores = self.scores(py, pairs, activation_fn, apply_softmax)?;
        let mut order: Vec<usize> = (0..documents.len()).collect();
        order.sort_by(|&a, &b| scores[b][0].total_cmp(&scores[a][0]));
        order
            .into_iter()
            .take(top_k.unwrap_or(usize::MAX))
            .map(|i| {
                let d = PyDict::new(py);
                d.set_item("corpus_id", i)?;
                d.set_item("score", scores[i][0])?;
                if return_documents {
                    d.set_item("text", &documents[i])?;
                }
                Ok(d)
            })
            .collect()
    }

    #[getter]
    fn num_labels(&self) -> usize {
        self.model.num_labels()
    }

    #[getter]
    fn max_length(&self) -> usize {
        self.model.max_seq_length()
    }

    fn __repr__(&self) -> String {
        format!(
            "CrossEncoder({:?}, num_labels={}, max_length={}, dtype={:?})",
            self.name,
            self.model.num_labels(),
            self.model.max_seq_length(),
            self.model.precision().to_string()
        )
    }
}

impl CrossEncoder {
    fn scores(
        &self,
        py: Python<'_>,
        pairs: Vec<(String, String)>,
        activation_fn: Option<&Bound<'_, PyAny>>,
        apply_softmax: bool,
    ) -> PyResult<Vec<Vec<f32>>> {
        let activation = activation_of(activation_fn)?.unwrap_or(self.model.activation());
        let model = self.model.clone();
        let raw = RerankOptions {
            raw_scores: true,
            ..RerankOptions::default()
        };
        let mut scores = run_detached(py, move || model.score(&pairs, &raw).map_err(model_error))?;
        for row in &mut scores {
            for v in row.iter_mut() {
                *v = activation.apply(*v);
            }
            if apply_softmax && row.len() > 1 {
                let max = row.iter().copied().fold(f32::MIN, f32::max);
                let sum: f32 = row.iter().map(|v| (v - max).exp()).sum();
                for v in row.iter_mut() {
                    *v = (*v - max).exp() / sum;
                }
            }
        }
        Ok(scores)
    }
}

/// A SPLADE model, as `sentence_transformers.SparseEncoder`: `encode` gives one weight per
/// vocabulary token (a dense float32 array, `texts × vocabulary`, zeros where the model puts
/// none), `decode` the tokens behind a vector.
#[pyclass(frozen, module = "fathom")]
#[derive(Debug)]
pub struct SparseEncoder {
    model: Arc<Sparse>,
    name: String,
}

#[pymethods]
impl SparseEncoder {
    #[new]
    #[pyo3(signature = (model_name_or_path, device=Some("cpu"), revision=None, cache_folder=None, dtype="float32"))]
    fn new(
        py: Python<'_>,
        model_name_or_path: &str,
        device: Option<&str>,
        revision: Option<String>,
        cache_folder: Option<PathBuf>,
        dtype: &str,
    ) -> PyResult<Self> {
        let options = load_options(device, dtype, None)?;
        Ok(Self {
            model: load_detached(py, model_name_or_path, revision, cache_folder, |m| {
                Sparse::load(m, &options)
            })?,
            name: model_name_or_path.to_string(),
        })
    }

    /// Sparse vectors of a string (1-d) or a list of strings (2-d), as dense float32 arrays of
    /// the vocabulary's width. `batch_size` and `show_progress_bar` are accepted and ignored.
    #[pyo3(signature = (sentences, batch_size=32, show_progress_bar=None, convert_to_tensor=false, convert_to_sparse_tensor=false))]
    fn encode<'py>(
        &self,
        py: Python<'py>,
        sentences: &Bound<'py, PyAny>,
        batch_size: usize,
        show_progress_bar: Option<bool>,
        convert_to_tensor: bool,
        convert_to_sparse_tensor: bool,
    ) -> PyResult<Py<PyAny>> {
        let _ = (batch_size, show_progress_bar);
        if convert_to_tensor || convert_to_sparse_tensor {
            return Err(PyValueError::new_err(
                "convert_to_tensor / convert_to_sparse_tensor need PyTorch, which fathom does not \
                 use; vectors come as dense numpy arrays",
            ));
        }
        let single = sentences.is_instance_of::<PyString>();
        let texts = if single {
            vec![sentences.cast::<PyString>()?.to_cow()?.into_owned()]
        } else {
            extract_texts(sentences)?
        };
        let model = self.model.clone();
        let vectors = run_detached(py, move || model.encode(&texts, true).map_err(model_error))?;
        let width = self.model.dimension();
        let mut dense = Array2::<f32>::zeros((vectors.len(), width));
        for (row, v) in vectors.iter().enumerate() {
            for (&i, &x) in v.indices.iter().zip(&v.values) {
                dense[[row, i as usize]] = x;
            }
        }
        if single {
            let row = dense.row(0).to_owned();
            return Ok(row.into_pyarray(py).into_any().unbind());
        }
        Ok(dense.into_pyarray(py).into_any().unbind())
    }

    /// The (token, weight) pairs of one vector, heaviest first (the best `top_k`, default all).
    #[pyo3(signature = (embedding, top_k=None))]
    fn decode(
        &self,
        embedding: numpy::PyReadonlyArray1<'_, f32>,
        top_k: Option<usize>,
    ) -> PyResult<Vec<(String, f32)>> {
        let values = embedding.as_slice()?;
        let mut pairs: Vec<(usize, f32)> = values
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, v)| *v != 0.0)
            .collect();
        pairs.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(pairs
            .into_iter()
            .take(top_k.unwrap_or(usize::MAX))
            .map(|(i, v)| (self.model.token(i as u32).unwrap_or_default(), v))
            .collect())
    }

    #[getter]
    fn max_seq_length(&self) -> usize {
        self.model.max_seq_length()
    }

    fn get_sentence_embedding_dimension(&self) -> usize {
        self.model.dimension()
    }

    fn __repr__(&self) -> String {
        format!(
            "SparseEncoder({:?}, vocabulary={}, dtype={:?})",
            self.name,
            self.model.dimension(),
            self.model.precision().to_string()
        )
    }
}
