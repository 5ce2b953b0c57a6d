//! `fathom-model` runs sentence-transformer models with candle, exactly as sentence-transformers
//! does: the same tokenization and truncation, pooling, `Dense` layers, normalization, prompts and
//! Matryoshka `dimensions`.
//!
//! It reads a model from a local folder or a Hugging Face hub id (through `hf-hub` and its cache;
//! local folders never touch the network), picks the architecture from `model_type` (one module
//! per architecture behind [`arch::Encoder`]), and embeds batches of texts on CPU or CUDA. Inputs
//! of one call are sorted by length and packed without padding.
//!
//! It owns nothing about queues, HTTP or document files: the server and ingest crates call
//! [`Embedder::embed`] from their own worker threads.
//!
//! The CPU arithmetic itself, and with it every `unsafe` block, is `fathom-kernels`'.
//!
//! ```no_run
//! use fathom_model::{EmbedOptions, Embedder, LoadOptions};
//!
//! let model = Embedder::load("models/all-MiniLM-L6-v2", &LoadOptions::default())?;
//! let vectors = model.embed(&["A man is eating food."], &EmbedOptions::default())?;
//! assert_eq!(vectors[0].len(), model.dimension());
//! # Ok::<(), fathom_model::ModelError>(())
//! ```

#![forbid(unsafe_code)]

/// The CPU kernels, adapted to candle tensors in [`ops`].
use fathom_kernels as kernels;

pub mod arch;
mod chat;
mod device;
mod embedder;
mod error;
mod files;
mod heads;
mod layout;
mod lookup;
mod ops;
mod pooling;
pub mod profile;
mod reranker;
mod sparse;

pub use device::DeviceSpec;
pub use embedder::{EmbedOptions, Embedder, LoadOptions, Precision, Truncation};
pub use error::{ModelError, Result};
pub use files::{ModelFiles, ModelSource};
pub use layout::{
    Activation, DenseLayout, LogitScore, ModelKind, ModelLayout, PoolingConfig, PoolingMode,
    SparsePooling, StaticLayout,
};
pub use reranker::{PreparedQuery, RerankOptions, Reranker};
pub use sparse::{SparseEmbedding, SparseEncoder};

/// The model every command uses when none is given: the fetched folder when it is there
/// (scripts/fetch-model.sh), else the hub id.
pub const DEFAULT_MODEL_DIR: &str = "models/all-MiniLM-L6-v2";
pub const DEFAULT_MODEL_ID: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// The kernel paths this process dispatches to (`avx2`, `avx512-vnni`, `amx-int8`, …): what the
/// CPU has, less what `FATHOM_CPU` turns off. Benchmarks print it beside their figures.
pub fn kernel_paths() -> Vec<&'static str> {
    kernels::cpu::enabled().names()
}

/// [`DEFAULT_MODEL_DIR`] if it exists under the current directory, else [`DEFAULT_MODEL_ID`].
pub fn default_model() -> String {
    if std::path::Path::new(DEFAULT_MODEL_DIR)
        .join("config.json")
        .is_file()
    {
        DEFAULT_MODEL_DIR.to_string()
    } else {
        DEFAULT_MODEL_ID.to_string()
    }
}
