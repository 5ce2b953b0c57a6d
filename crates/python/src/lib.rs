//! `fathom` for Python: sentence-transformer embeddings from fathom-model (candle, in Rust) behind
//! the API of `sentence_transformers.SentenceTransformer`, built by maturin into one abi3 wheel
//! (CPython 3.9+) with OpenBLAS linked in statically.
//!
//! It owns the Python surface only: argument handling with sentence-transformers' defaults,
//! exceptions, the GIL (released while the model runs) and numpy arrays. Loading, tokenization,
//! forward passes and pooling are fathom-model's; reading, chunking and hashing files are
//! fathom-docs' (the CLI's own code, for `fathom.ray`). There is no store or server here.
//!
//! ```python
//! from fathom import SentenceTransformer
//! model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
//! embeddings = model.encode(["The weather is lovely today.", "It's so sunny outside!"])
//! print(model.similarity(embeddings, embeddings))
//! ```

mod allocator;
mod cross_encoder;
mod docs;
mod errors;
mod hub;
mod model;
mod tokenizer;

use pyo3::prelude::*;

/// mimalloc's purge delay in force: -1 (freed memory is kept) unless `MIMALLOC_PURGE_DELAY` is set.
#[pyfunction]
fn _mimalloc_purge_delay() -> i64 {
    allocator::purge_delay()
}

/// The native module; `fathom/__init__.py` re-exports it.
#[pymodule]
fn _fathom(m: &Bound<'_, PyModule>) -> PyResult<()> {
    allocator::keep_freed_memory();
    m.add_class::<model::SentenceTransformer>()?;
    m.add_class::<cross_encoder::CrossEncoder>()?;
    m.add_class::<cross_encoder::SparseEncoder>()?;
    m.add_class::<tokenizer::Tokenizer>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(_mimalloc_purge_delay, m)?)?;
    m.add_class::<docs::Ingestor>()?;
    m.add_function(wrap_pyfunction!(docs::collection_columns, m)?)?;
    m.add_function(wrap_pyfunction!(docs::collection_metadata_keys, m)?)?;
    m.add_function(wrap_pyfunction!(docs::source_hash_of, m)?)?;
    m.add_function(wrap_pyfunction!(docs::collection_indexes, m)?)?;
    m.add_function(wrap_pyfunction!(docs::vector_index_params, m)?)?;
    m.add_function(wrap_pyfunction!(docs::is_scratch_name, m)?)?;
    m.add_function(wrap_pyfunction!(docs::walk_folder, m)?)?;
    m.add_function(wrap_pyfunction!(docs::sync_plan, m)?)?;
    m.add_function(wrap_pyfunction!(docs::read_document, m)?)?;
    m.add_function(wrap_pyfunction!(docs::_parse_helper, m)?)?;
    Ok(())
}
