//! A file or document that could not be used (or was used with a caveat), and why: what a walk
//! and a read report, and what an ingest's summary lists.

use serde::Serialize;

/// A file or document the ingest could not use (or used with a caveat), and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileProblem {
    /// The source id (or, for a walk error outside any source, the path on disk).
    #[serde(rename = "source")]
    pub path: String,
    #[serde(rename = "error")]
    pub message: String,
    pub kind: ProblemKind,
}

/// What kind of trouble a [`FileProblem`] is: how the summary counts it and what happens to the
/// chunks stored for it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// Could not be listed, read, parsed, chunked or embedded: an error; its stored chunks (and,
    /// for a folder, everything stored under it) are kept.
    #[default]
    Error,
    /// A binary file, skipped (not part of the collection).
    Binary,
    /// JSON without the text field, skipped.
    NoText,
    /// Invalid UTF-8, decoded with replacement characters: a warning, the file is ingested.
    LossyUtf8,
    /// More chunks than the per-file cap: a warning, the first chunks are ingested.
    Truncated,
    /// A link that leads outside the ingest root: never read (not part of the collection).
    OutsideRoot,
}

impl ProblemKind {
    /// Whether this is a warning about a file that was still ingested.
    pub fn is_warning(self) -> bool {
        matches!(self, Self::LossyUtf8 | Self::Truncated)
    }
}
