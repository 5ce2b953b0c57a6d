//! `fathom-docs` turns files into the chunks a collection stores, without a store or a model
//! runtime: walking a folder ([`walk`]: .gitignore and hidden files respected, links out of a
//! confined root refused), reading each file ([`read_file`]: text, Markdown, code, JSON, and
//! every document format of [`formats`], in a bounded child process, with OCR for scans),
//! chunking in the model's tokens ([`chunk`]), hashing ([`row::source_hash`]), deciding what a
//! sync does ([`SyncPlan`]), and the row layout every writer of a collection uses ([`row`]).
//!
//! `fathom-ingest` runs these stages against a `fathom-store` collection; the Python package
//! runs the same code in Ray workers. Neither links anything here to lance.

#![forbid(unsafe_code)]

mod chunk;
mod extract;
mod fastbert;
mod files;
pub mod formats;
mod location;
pub mod ocr;
mod plan;
mod prepare;
mod problem;
mod read;
pub mod row;
mod walk;

pub use chunk::{
    chunk, chunk_document, model_inputs, ChunkError, ChunkSize, ChunkTokenizer, Chunked, TextChunk,
    BLOCK_BYTES,
};
pub use extract::{
    catch_panic, parse_document, parse_helper, parse_helper_main, ParseLimits, ParserIsolation,
};
pub use files::{Files, ReadError};
pub use location::Location;
pub use ocr::OcrMode;
pub use plan::{Seen, SyncPlan, ToEmbed};
pub use prepare::{read_file, truncated_message, Body, FileText, LOSSY_UTF8};
pub use problem::{FileProblem, ProblemKind};
pub use read::{looks_binary, read, Format, ReadOutcome};
pub use row::source_hash;
pub use walk::{
    is_scratch_name, source_prefix, walk, FileEntry, Shard, WalkError, WalkOptions, Walked,
};
