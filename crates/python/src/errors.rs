//! fathom-model's errors as the Python exceptions a sentence-transformers user expects, and the
//! one place model code runs: with the GIL released and panics caught.

use std::panic::{catch_unwind, AssertUnwindSafe};

use fathom_model::ModelError;
use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;

/// Missing folders and files are `FileNotFoundError`, hub trouble `OSError` (what
/// sentence-transformers raises through huggingface_hub), bad models and arguments `ValueError`,
/// what this build or machine cannot run `RuntimeError`.
pub fn model_error(err: ModelError) -> PyErr {
    let message = err.to_string();
    match err {
        ModelError::NoSuchFolder(_) | ModelError::MissingFile { .. } => {
            PyFileNotFoundError::new_err(message)
        }
        ModelError::Io { ref source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            PyFileNotFoundError::new_err(message)
        }
        ModelError::Io { .. }
        | ModelError::Hub { .. }
        | ModelError::OfflineMiss { .. }
        | ModelError::BadModelId(_) => PyOSError::new_err(message),
        ModelError::DeviceUnavailable(_)
        | ModelError::PrecisionUnavailable(_)
        | ModelError::Candle(_) => PyRuntimeError::new_err(message),
        ModelError::Json { .. }
        | ModelError::UnsupportedArchitecture { .. }
        | ModelError::Unsupported(_)
        | ModelError::BadConfig { .. }
        | ModelError::BadWeights { .. }
        | ModelError::BadPrecision(_)
        | ModelError::Tokenizer(_)
        | ModelError::InputTooLong { .. }
        | ModelError::BadMaxSeqLength(_)
        | ModelError::UnknownPrompt { .. }
        | ModelError::BadDimensions { .. }
        | ModelError::BadDevice(_)
        | ModelError::WrongKind { .. } => PyValueError::new_err(message),
        // A variant added to fathom-model later still reaches Python (as a RuntimeError) instead of
        // breaking this crate's build, which the root workspace does not run.
        #[allow(unreachable_patterns)]
        _ => PyRuntimeError::new_err(message),
    }
}

/// Runs `work` (tokenization, forward passes, weight loading) with the GIL released, so other
/// Python threads run meanwhile, and turns a panic into a `RuntimeError` instead of letting it
/// cross into Python.
pub fn run_detached<T, F>(py: Python<'_>, work: F) -> PyResult<T>
where
    F: FnOnce() -> PyResult<T> + Send,
    T: Send,
{
    py.detach(|| catch_unwind(AssertUnwindSafe(work)))
        .unwrap_or_else(|panic| Err(panic_error(panic)))
}

fn panic_error(panic: Box<dyn std::any::Any + Send>) -> PyErr {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string());
    PyRuntimeError::new_err(format!(
        "fathom failed internally (a bug; please report it with the input that caused it): {what}"
    ))
}
