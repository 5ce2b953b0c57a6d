//! One file's bytes to the text to chunk, and that text to chunks: the reading stage of every
//! ingest (the CLI's pipeline and the Python package's Ray workers run this same code).

use std::path::Path;

use crate::chunk::{chunk, chunk_document, ChunkError, ChunkSize, ChunkTokenizer, Chunked};
use crate::extract::ParseLimits;
use crate::formats::Document;
use crate::problem::ProblemKind;
use crate::read::{read, Format, ReadOutcome};

/// A source's text as read: plain (in a format that says how to chunk it), or located sections
/// of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Text(String, Format),
    Located(Document),
}

impl Body {
    /// The body's chunks in the model's tokens, at most `max_chunks` of them.
    pub fn chunk(
        &self,
        tokenizer: &ChunkTokenizer,
        size: ChunkSize,
        max_chunks: usize,
    ) -> Result<Chunked, ChunkError> {
        match self {
            Body::Text(text, format) => chunk(tokenizer, text, *format, size, max_chunks),
            Body::Located(doc) => chunk_document(tokenizer, doc, size, max_chunks),
        }
    }
}

/// What reading one file gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileText {
    /// Text to chunk; `lossy` when invalid UTF-8 was replaced.
    Body { body: Body, lossy: bool },
    /// Nothing to keep (a binary file, an image without OCR, JSON without the text field, a
    /// scan without a text layer): not part of the collection, and why.
    Skipped { kind: ProblemKind, message: String },
    /// The file failed to parse: an error for this file only; what is stored for it stays.
    Failed(String),
}

/// Reads a file's bytes as its format (by `path`'s extension) into the text to chunk. Blocking;
/// documents run their parser, and images their OCR, within `limits`.
pub fn read_file(
    path: &Path,
    bytes: &[u8],
    json_field: Option<&str>,
    limits: &ParseLimits,
) -> FileText {
    match read(path, bytes, json_field, limits) {
        ReadOutcome::Text { text, lossy } => FileText::Body {
            body: Body::Text(text, Format::of(path)),
            lossy,
        },
        ReadOutcome::Located(doc) => FileText::Body {
            body: Body::Located(doc),
            lossy: false,
        },
        ReadOutcome::Binary => FileText::Skipped {
            kind: ProblemKind::Binary,
            message: "binary file: skipped".into(),
        },
        ReadOutcome::Image(message) => FileText::Skipped {
            kind: ProblemKind::Binary,
            message,
        },
        ReadOutcome::NoText(message) => FileText::Skipped {
            kind: ProblemKind::NoText,
            message,
        },
        ReadOutcome::Failed(message) => FileText::Failed(message),
    }
}

/// The warning for a file whose invalid UTF-8 was replaced.
pub const LOSSY_UTF8: &str = "invalid UTF-8, decoded with replacement characters";

/// The warning for a file cut at `max_chunks` chunks.
pub fn truncated_message(max_chunks: usize) -> String {
    format!(
        "more than {max_chunks} chunks: only the first {max_chunks} are ingested (raise --max-chunks-per-file)"
    )
}
