//! `fathom.SentenceTransformer`: loading, `encode` and friends, with sentence-transformers'
//! signatures and defaults.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use fathom_model::{DeviceSpec, EmbedOptions, Embedder, LoadOptions, ModelError, Precision};
use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray1, PyArrayMethods, PyReadonlyArray2};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::errors::{model_error, run_detached};
use crate::tokenizer::Tokenizer;

/// The compute precisions a model can run in, by their Python names.
const DTYPES: &str = "'float32', 'int8' (CPU), 'bfloat16' (CPUs with AVX512-BF16, or CUDA) or \
                      'float16' (CUDA)";

/// The Python name of a compute precision (`dtype`, and `precision` in errors).
fn dtype_name(precision: Precision) -> &'static str {
    match precision {
        Precision::F32 => "float32",
        Precision::Int8 => "int8",
        Precision::Bf16 => "bfloat16",
        Precision::F16 => "float16",
    }
}

/// The constructor's `dtype`: the precision the model computes in unless `encode` says otherwise.
fn parse_dtype(dtype: &str) -> PyResult<Precision> {
    match dtype {
        "float32" => Ok(Precision::F32),
        "int8" => Ok(Precision::Int8),
        "bfloat16" => Ok(Precision::Bf16),
        "float16" => Ok(Precision::F16),
        other => Err(PyValueError::new_err(format!(
            "dtype '{other}' is not supported, must be one of {DTYPES}"
        ))),
    }
}

/// `encode`'s `precision`: a compute precision. sentence-transformers' quantized *output*
/// precisions (`int8`, `uint8`, `binary`, `ubinary`) are not among them; int8 *compute* is the
/// constructor's `dtype="int8"`.
fn parse_precision(precision: &str) -> PyResult<Precision> {
    match precision {
        "float32" => Ok(Precision::F32),
        "bfloat16" => Ok(Precision::Bf16),
        "float16" => Ok(Precision::F16),
        "int8" | "uint8" | "binary" | "ubinary" => Err(PyValueError::new_err(format!(
            "precision '{precision}' (quantized embeddings) is not supported by fathom: encode with \
             precision=\"float32\" and quantize the result, e.g. with \
             sentence_transformers.quantization.quantize_embeddings (for int8 matrix products \
             inside the model, load it with SentenceTransformer(..., dtype=\"int8\"))"
        ))),
        other => Err(PyValueError::new_err(format!(
            "precision '{other}' is not supported, must be one of 'float32', 'bfloat16' \
             (CPUs with AVX512-BF16, or CUDA) or 'float16' (CUDA)"
        ))),
    }
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// The texts of a batch: a list, tuple or other iterable of `str` (a numpy array of strings too).
pub fn extract_texts(obj: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    let not_texts = || {
        PyTypeError::new_err(format!(
            "expected a str or a list of str, got {}",
            type_name(obj)
        ))
    };
    if obj.is_instance_of::<PyBytes>() || obj.is_instance_of::<PyDict>() {
        return Err(not_texts());
    }
    let items: Vec<Bound<'_, PyAny>> = if let Ok(list) = obj.cast::<PyList>() {
        list.iter().collect()
    } else if let Ok(tuple) = obj.cast::<PyTuple>() {
        tuple.iter().collect()
    } else {
        obj.try_iter()
            .map_err(|_| not_texts())?
            .collect::<PyResult<_>>()?
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item.cast::<PyString>() {
            Ok(s) => Ok(s.to_cow()?.into_owned()),
            Err(_) => Err(PyTypeError::new_err(format!(
                "expected a str or a list of str: item {i} is {}",
                type_name(item)
            ))),
        })
        .collect()
}

/// The embedders of one model: the one at the model's `dtype`, loaded up front, and those of
/// other precisions `encode` asks for, built on first use from the same layout and kept.
#[derive(Debug)]
struct Engines {
    primary: Arc<Embedder>,
    dtype: Precision,
    others: Mutex<BTreeMap<&'static str, Arc<Embedder>>>,
    device: DeviceSpec,
}

impl Engines {
    /// Loads the model's embedder at `dtype`, saying clearly when this machine cannot run it.
    fn load(layout_or_model: Source, device: DeviceSpec, dtype: Precision) -> PyResult<Self> {
        let options = LoadOptions {
            device,
            precision: dtype,
            ..LoadOptions::default()
        };
        let embedder = match layout_or_model {
            Source::Model(model) => Embedder::load(&model, &options),
            Source::Layout(layout) => Embedder::from_layout(*layout, &options),
        }
        .map_err(|e| precision_error(e, dtype))?;
        Ok(Self {
            primary: Arc::new(embedder),
            dtype,
            others: Mutex::default(),
            device,
        })
    }

    /// The embedder for `precision`, loading it the first time (reads the weights again).
    fn get(&self, precision: Precision) -> PyResult<Arc<Embedder>> {
        if precision == self.dtype {
            return Ok(self.primary.clone());
        }
        let key = dtype_name(precision);
        let mut others = self.others.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = others.get(key) {
            return Ok(e.clone());
        }
        let options = LoadOptions {
            device: self.device,
            precision,
            ..LoadOptions::default()
        };
        let embedder = Embedder::from_layout(self.primary.layout().clone(), &options)
            .map_err(|e| precision_error(e, precision))?;
        let embedder = Arc::new(embedder);
        others.insert(key, embedder.clone());
        Ok(embedder)
    }
}

/// Where [`Engines::load`] reads the model from.
enum Source {
    Model(String),
    Layout(Box<fathom_model::ModelLayout>),
}

/// A load error, saying which precision this CPU or build cannot run (bf16 without
/// AVX512-BF16, f16 on CPU, int8 on CUDA) as a RuntimeError.
fn precision_error(e: ModelError, precision: Precision) -> PyErr {
    match e {
        ModelError::PrecisionUnavailable(why) => PyRuntimeError::new_err(format!(
            "precision '{}' is not available here: {why}",
            dtype_name(precision)
        )),
        other => model_error(other),
    }
}

/// Loads a sentence-transformers model and embeds text with it, as
/// `sentence_transformers.SentenceTransformer` does (same vectors, same defaults), in Rust.
///
/// `model_name_or_path` is a local model folder or a Hugging Face hub id (`org/name`), fetched
/// through the Hugging Face cache. `device` is `"cpu"` (default), `"cuda"`, `"cuda:N"` (builds with
/// CUDA only) or `None`/`"auto"`. `dtype` is the precision the model computes in: `"float32"`
/// (default: the same vectors as sentence-transformers), `"int8"` (CPU: 8-bit matrix products,
/// ~1.2–1.4× faster, cosine ≥ 0.99 to float32), `"bfloat16"` (CPUs with AVX512-BF16, or CUDA)
/// or `"float16"` (CUDA). Methods release the GIL while the model runs, and one model may
/// be used from several threads at once.
#[pyclass(frozen, module = "fathom")]
#[derive(Debug)]
pub struct SentenceTransformer {
    /// Replaced as a whole when `max_seq_length` changes; encodes in flight keep the old one.
    engines: RwLock<Arc<Engines>>,
    truncate_dim: RwLock<Option<usize>>,
    name: String,
}

impl SentenceTransformer {
    /// The embedder at the model's `dtype`.
    pub(crate) fn embedder(&self) -> Arc<Embedder> {
        self.engines().primary.clone()
    }

    fn engines(&self) -> Arc<Engines> {
        self.engines
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// sentence-transformers' prompt resolution: `prompt` wins, then `prompt_name` (which must be
    /// a known name; `query` and `document` always are, empty unless the model sets them), then the
    /// model's default prompt name. `None`: no prompt.
    fn resolve_prompt(
        &self,
        prompt: Option<String>,
        prompt_name: Option<String>,
    ) -> PyResult<Option<String>> {
        if prompt.is_some() {
            return Ok(prompt);
        }
        let prompts = self.prompts_map();
        match prompt_name {
            Some(name) => prompts.get(&name).cloned().map(Some).ok_or_else(|| {
                PyValueError::new_err(format!(
                    "Prompt name '{name}' not found in the configured prompts dictionary with keys {:?}",
                    prompts.keys().collect::<Vec<_>>()
                ))
            }),
            None => Ok(self
                .engines()
                .primary
                .layout()
                .default_prompt_name
                .as_ref()
                .and_then(|n| prompts.get(n).cloned())),
        }
    }

    fn prompts_map(&self) -> BTreeMap<String, String> {
        let mut prompts = self.engines().primary.layout().prompts.clone();
        for name in ["query", "document"] {
            prompts.entry(name.to_string()).or_default();
        }
        prompts
    }

    #[allow(clippy::too_many_arguments)]
    fn encode_impl<'py>(
        &self,
        py: Python<'py>,
        sentences: &Bound<'py, PyAny>,
        batch_size: i64,
        normalize_embeddings: bool,
        convert_to_numpy: bool,
        convert_to_tensor: bool,
        prompt: Option<String>,
        precision: Option<&str>,
        truncate_dim: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if batch_size <= 0 {
            return Err(PyValueError::new_err(format!(
                "batch_size must be a positive integer, got {batch_size}."
            )));
        }
        if convert_to_tensor {
            return Err(PyValueError::new_err(
                "convert_to_tensor=True needs PyTorch, which fathom does not use: take the numpy \
                 array (convert_to_numpy=True) and torch.from_numpy(...) it",
            ));
        }
        if truncate_dim == Some(0) {
            return Err(PyValueError::new_err("truncate_dim must be at least 1"));
        }
        let engines = self.engines();
        let precision = precision.map_or(Ok(engines.dtype), parse_precision)?;
        let single = sentences.is_instance_of::<PyString>();
        let texts = if single {
            vec![sentences.cast::<PyString>()?.to_cow()?.into_owned()]
        } else {
            extract_texts(sentences)?
        };
        if texts.is_empty() {
            // What sentence-transformers returns for an empty batch: np.array([]) (float64,
            // shape (0,)), or an empty list without convert_to_numpy.
            return Ok(if convert_to_numpy {
                PyArray1::<f64>::zeros(py, 0, false).into_any()
            } else {
                PyList::empty(py).into_any()
            });
        }
        let truncate_dim = truncate_dim.or(*self
            .truncate_dim
            .read()
            .unwrap_or_else(PoisonError::into_inner));
        let options = EmbedOptions {
            // The model's own modules decide (a Normalize module normalizes, at full width), as in
            // sentence-transformers; `normalize_embeddings` applies after truncation, below.
            normalize: None,
            prompt: Some(prompt.unwrap_or_default()),
            ..EmbedOptions::default()
        };
        let (flat, rows, dim) = run_detached(py, move || {
            let embedder = engines.get(precision)?;
            let vectors = embedder.embed(&texts, &options).map_err(model_error)?;
            let dim = truncate_dim.map_or(embedder.dimension(), |d| d.min(embedder.dimension()));
            let mut flat = Vec::with_capacity(vectors.len() * dim);
            for v in &vectors {
                let row = &v[..dim];
                if normalize_embeddings {
                    // torch.nn.functional.normalize: x / max(||x||, 1e-12).
                    let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                    flat.extend(row.iter().map(|x| x / norm));
                } else {
                    flat.extend_from_slice(row);
                }
            }
            Ok((flat, vectors.len(), dim))
        })?;
        let matrix = Array2::from_shape_vec((rows, dim), flat)
            .map_err(|e| PyRuntimeError::new_err(e.to_string()))?
            .into_pyarray(py);
        if single {
            return Ok(matrix.reshape([dim])?.into_any());
        }
        if convert_to_numpy {
            Ok(matrix.into_any())
        } else {
            let rows: Vec<Bound<'py, PyAny>> = (0..rows)
                .map(|i| matrix.get_item(i))
                .collect::<PyResult<_>>()?;
            Ok(PyList::new(py, rows)?.into_any())
        }
    }
}

/// A float32 matrix (n, d) from an array-like of embeddings; one vector becomes (1, d).
fn as_matrix<'py>(py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<PyReadonlyArray2<'py, f32>> {
    let np = py.import("numpy")?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("dtype", np.getattr("float32")?)?;
    let array = np.call_method("asarray", (x,), Some(&kwargs))?;
    let array = match array.getattr("ndim")?.extract::<usize>()? {
        1 => array.call_method1("reshape", ((1, -1),))?,
        2 => array,
        n => {
            return Err(PyValueError::new_err(format!(
                "similarity expects 1-d or 2-d embeddings, got {n}-d"
            )))
        }
    };
    let array = np.call_method1("ascontiguousarray", (array,))?;
    array.extract::<PyReadonlyArray2<'py, f32>>()
}

/// Load options from a constructor's `device` and `dtype` (what this build can run checked), with
/// the model's window capped at `max_input_tokens`.
pub(crate) fn load_options(
    device: Option<&str>,
    dtype: &str,
    max_input_tokens: Option<usize>,
) -> PyResult<LoadOptions> {
    let device: DeviceSpec = device.unwrap_or("auto").parse().map_err(model_error)?;
    if matches!(device, DeviceSpec::Cuda(_)) && !cfg!(feature = "cuda") {
        return Err(PyRuntimeError::new_err(format!(
            "device={:?} needs fathom built with CUDA; this build is CPU-only (build \
             crates/python with `maturin build --release --features cuda` where the CUDA \
             toolkit is installed), or use device=\"cpu\"",
            device.to_string()
        )));
    }
    if max_input_tokens.is_some_and(|n| n < 2) {
        return Err(PyValueError::new_err(
            "max_length must be at least 2 tokens",
        ));
    }
    Ok(LoadOptions {
        device,
        precision: parse_dtype(dtype)?,
        max_input_tokens,
        ..LoadOptions::default()
    })
}

pub(crate) fn resolve_model(
    model_name_or_path: &str,
    revision: Option<&str>,
    cache_folder: Option<&Path>,
) -> PyResult<String> {
    if Path::new(model_name_or_path).is_dir() {
        return Ok(model_name_or_path.to_string());
    }
    if revision.is_some() && model_name_or_path.contains('@') {
        return Err(PyValueError::new_err(format!(
            "`{model_name_or_path}` already names a revision; drop it or the revision argument"
        )));
    }
    let (id, revision) = match model_name_or_path.split_once('@') {
        Some((id, rev)) => (id, Some(rev)),
        None => (model_name_or_path, revision),
    };
    // Only a valid hub id reaches the network; fathom-model says what is wrong with anything else.
    let is_hub_id = matches!(
        fathom_model::ModelSource::parse(model_name_or_path),
        Ok(fathom_model::ModelSource::Hub { .. })
    );
    match cache_folder {
        Some(cache) if is_hub_id => Ok(crate::hub::snapshot_in(cache, id, revision)?
            .to_string_lossy()
            .into_owned()),
        _ => Ok(match revision {
            Some(rev) => format!("{id}@{rev}"),
            None => id.to_string(),
        }),
    }
}

#[pymethods]
impl SentenceTransformer {
    #[new]
    #[pyo3(signature = (model_name_or_path, device=Some("cpu"), revision=None, cache_folder=None, truncate_dim=None, dtype="float32"))]
    fn new(
        py: Python<'_>,
        model_name_or_path: &str,
        device: Option<&str>,
        revision: Option<String>,
        cache_folder: Option<PathBuf>,
        truncate_dim: Option<usize>,
        dtype: &str,
    ) -> PyResult<Self> {
        let device: DeviceSpec = device.unwrap_or("auto").parse().map_err(model_error)?;
        if matches!(device, DeviceSpec::Cuda(_)) && !cfg!(feature = "cuda") {
            return Err(PyRuntimeError::new_err(format!(
                "device={:?} needs fathom built with CUDA; this build is CPU-only (build \
                 crates/python with `maturin build --release --features cuda` where the CUDA \
                 toolkit is installed), or use device=\"cpu\"",
                device.to_string()
            )));
        }
        if truncate_dim == Some(0) {
            return Err(PyValueError::new_err("truncate_dim must be at least 1"));
        }
        let dtype = parse_dtype(dtype)?;
        let name = model_name_or_path.to_string();
        let engines = run_detached(py, move || {
            let model = resolve_model(&name, revision.as_deref(), cache_folder.as_deref())?;
            Engines::load(Source::Model(model), device, dtype)
        })?;
        Ok(Self {
            engines: RwLock::new(Arc::new(engines)),
            truncate_dim: RwLock::new(truncate_dim),
            name: model_name_or_path.to_string(),
        })
    }

    /// Embeds a string (a 1-d float32 array) or a list of strings (a 2-d float32 array, one row
    /// each, in order). Runs the model with the GIL released.
    ///
    /// `normalize_embeddings` scales each vector to length 1 after any `truncate_dim` cut (models
    /// with a Normalize module are normalized anyway). `precision` is the compute precision:
    /// `None` (the model's `dtype`), "float32", "bfloat16" (CPUs with AVX512-BF16, or CUDA) or
    /// "float16" (CUDA); the output is float32 either way. `batch_size` is checked but fathom packs its own batches by tokens;
    /// `show_progress_bar` is accepted and ignored.
    #[pyo3(signature = (sentences, prompt_name=None, prompt=None, batch_size=32, show_progress_bar=None, precision=None, convert_to_numpy=true, convert_to_tensor=false, normalize_embeddings=false, truncate_dim=None))]
    #[allow(clippy::too_many_arguments)]
    fn encode<'py>(
        &self,
        py: Python<'py>,
        sentences: &Bound<'py, PyAny>,
        prompt_name: Option<String>,
        prompt: Option<String>,
        batch_size: i64,
        show_progress_bar: Option<bool>,
        precision: Option<&str>,
        convert_to_numpy: bool,
        convert_to_tensor: bool,
        normalize_embeddings: bool,
        truncate_dim: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let _ = show_progress_bar;
        let prompt = self.resolve_prompt(prompt, prompt_name)?;
        self.encode_impl(
            py,
            sentences,
            batch_size,
            normalize_embeddings,
            convert_to_numpy,
            convert_to_tensor,
            prompt,
            precision,
            truncate_dim,
        )
    }

    /// `encode` for search queries: uses the model's "query" prompt unless `prompt` or
    /// `prompt_name` says otherwise (sentence-transformers 5+).
    #[pyo3(signature = (sentences, prompt_name=None, prompt=None, batch_size=32, show_progress_bar=None, precision=None, convert_to_numpy=true, convert_to_tensor=false, normalize_embeddings=false, truncate_dim=None))]
    #[allow(clippy::too_many_arguments)]
    fn encode_query<'py>(
        &self,
        py: Python<'py>,
        sentences: &Bound<'py, PyAny>,
        prompt_name: Option<String>,
        prompt: Option<String>,
        batch_size: i64,
        show_progress_bar: Option<bool>,
        precision: Option<&str>,
        convert_to_numpy: bool,
        convert_to_tensor: bool,
        normalize_embeddings: bool,
        truncate_dim: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let prompt_name = match (&prompt, prompt_name) {
            (None, None) => Some("query".to_string()),
            (_, name) => name,
        };
        self.encode(
            py,
            sentences,
            prompt_name,
            prompt,
            batch_size,
            show_progress_bar,
            precision,
            convert_to_numpy,
            convert_to_tensor,
            normalize_embeddings,
            truncate_dim,
        )
    }

    /// `encode` for documents: uses the model's "document" prompt unless `prompt` or
    /// `prompt_name` says otherwise (sentence-transformers 5+).
    #[pyo3(signature = (sentences, prompt_name=None, prompt=None, batch_size=32, show_progress_bar=None, precision=None, convert_to_numpy=true, convert_to_tensor=false, normalize_embeddings=false, truncate_dim=None))]
    #[allow(clippy::too_many_arguments)]
    fn encode_document<'py>(
        &self,
        py: Python<'py>,
        sentences: &Bound<'py, PyAny>,
        prompt_name: Option<String>,
        prompt: Option<String>,
        batch_size: i64,
        show_progress_bar: Option<bool>,
        precision: Option<&str>,
        convert_to_numpy: bool,
        convert_to_tensor: bool,
        normalize_embeddings: bool,
        truncate_dim: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        // sentence-transformers 6 looks for "document", "passage", "corpus" in that order, and
        // "document" is always among its prompts (empty unless the model sets it).
        let prompt_name = match (&prompt, prompt_name) {
            (None, None) => Some("document".to_string()),
            (_, name) => name,
        };
        self.encode(
            py,
            sentences,
            prompt_name,
            prompt,
            batch_size,
            show_progress_bar,
            precision,
            convert_to_numpy,
            convert_to_tensor,
            normalize_embeddings,
            truncate_dim,
        )
    }

    /// Cosine similarity of every row of `embeddings1` with every row of `embeddings2` (arrays,
    /// lists or single vectors): a float32 array of shape (len(embeddings1), len(embeddings2)).
    fn similarity<'py>(
        &self,
        py: Python<'py>,
        embeddings1: &Bound<'py, PyAny>,
        embeddings2: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let a = as_matrix(py, embeddings1)?;
        let b = as_matrix(py, embeddings2)?;
        let (a, b) = (a.as_array(), b.as_array());
        if a.ncols() != b.ncols() {
            return Err(PyValueError::new_err(format!(
                "similarity needs embeddings of one width, got {} and {}",
                a.ncols(),
                b.ncols()
            )));
        }
        // torch.nn.functional.normalize, then a matrix product, as sentence_transformers.util.cos_sim.
        let unit = |m: numpy::ndarray::ArrayView2<'_, f32>| {
            let mut m = m.to_owned();
            for mut row in m.rows_mut() {
                let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                row.mapv_inplace(|x| x / norm);
            }
            m
        };
        let scores = unit(a).dot(&unit(b).t());
        Ok(scores.into_pyarray(py).into_any())
    }

    /// The name of the similarity function `similarity` uses.
    #[getter]
    fn similarity_fn_name(&self) -> &'static str {
        "cosine"
    }

    /// Width of the vectors `encode` returns (after `truncate_dim`).
    fn get_sentence_embedding_dimension(&self) -> usize {
        let dim = self.engines().primary.dimension();
        self.truncate_dim
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .map_or(dim, |d| d.min(dim))
    }

    /// Same as `get_sentence_embedding_dimension` (sentence-transformers 6's name).
    fn get_embedding_dimension(&self) -> usize {
        self.get_sentence_embedding_dimension()
    }

    /// Inputs longer than this many tokens (special tokens included) are cut. Setting it reloads
    /// the model with the new limit (it reads the weights again).
    #[getter]
    fn max_seq_length(&self) -> usize {
        self.engines().primary.max_seq_length()
    }

    #[setter]
    fn set_max_seq_length(&self, py: Python<'_>, value: usize) -> PyResult<()> {
        let current = self.engines();
        let mut layout = current.primary.layout().clone();
        let positions = layout
            .config
            .get("max_position_embeddings")
            .and_then(|v| v.as_u64());
        // At least 2: room for the special tokens.
        if value < 2 || positions.is_some_and(|p| value as u64 > p) {
            return Err(PyValueError::new_err(format!(
                "max_seq_length must be between 2 and the model's max_position_embeddings ({}), got {value}",
                positions.map_or("unknown".to_string(), |p| p.to_string())
            )));
        }
        if value == layout.max_seq_length {
            return Ok(());
        }
        layout.max_seq_length = value;
        let (device, dtype) = (current.device, current.dtype);
        let engines = run_detached(py, move || {
            Engines::load(Source::Layout(Box::new(layout)), device, dtype)
        })?;
        *self.engines.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(engines);
        Ok(())
    }

    /// Cut every vector `encode` returns to its first `truncate_dim` values (Matryoshka models);
    /// `None` keeps them whole.
    #[getter]
    fn truncate_dim(&self) -> Option<usize> {
        *self
            .truncate_dim
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    #[setter]
    fn set_truncate_dim(&self, value: Option<usize>) -> PyResult<()> {
        if value == Some(0) {
            return Err(PyValueError::new_err("truncate_dim must be at least 1"));
        }
        *self
            .truncate_dim
            .write()
            .unwrap_or_else(PoisonError::into_inner) = value;
        Ok(())
    }

    /// The model's prompts by name (from config_sentence_transformers.json); "query" and
    /// "document" are always there, empty unless the model sets them.
    #[getter]
    fn prompts(&self) -> BTreeMap<String, String> {
        self.prompts_map()
    }

    #[getter]
    fn default_prompt_name(&self) -> Option<String> {
        self.engines().primary.layout().default_prompt_name.clone()
    }

    /// The precision the model computes in unless `encode(precision=...)` says otherwise:
    /// `"float32"`, `"int8"`, `"bfloat16"` or `"float16"` (the constructor's `dtype`).
    #[getter]
    fn dtype(&self) -> &'static str {
        dtype_name(self.engines().dtype)
    }

    /// `"cpu"` or `"cuda:N"`.
    #[getter]
    fn device(&self) -> String {
        self.engines().primary.device_name()
    }

    #[getter]
    fn tokenizer(&self) -> Tokenizer {
        Tokenizer::new(self.engines().primary.clone())
    }

    fn __repr__(&self) -> String {
        let engines = self.engines();
        let layout = engines.primary.layout();
        format!(
            "SentenceTransformer({:?}, architecture={:?}, dimension={}, max_seq_length={}, pooling={:?}, normalize={}, device={:?}, dtype={:?})",
            self.name,
            layout.model_type,
            self.get_sentence_embedding_dimension(),
            layout.max_seq_length,
            layout.pooling.modes.iter().map(|m| m.name()).collect::<Vec<_>>(),
            layout.normalize,
            engines.primary.device_name(),
            dtype_name(engines.dtype),
        )
    }
}
