//! What an ingest tells its caller: progress [`Event`]s as they happen, and a [`Summary`] with
//! every file that was skipped or failed, and why ([`FileProblem`] with a typed [`ProblemKind`]).

use serde::Serialize;

pub use fathom_docs::{FileProblem, ProblemKind};

/// What happened, as it happens.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The plan is made: how many files will be read (new or changed) out of how many seen.
    Planned { to_read: usize, files: usize },
    /// A file or document was read and chunked (or failed, or was skipped).
    Read { source_id: String },
    /// A batch was embedded.
    Embedded { chunks: usize, tokens: usize },
    /// A batch of sources was committed.
    Written { sources: usize, chunks: usize },
    /// Something about one file that did not stop the ingest.
    Warning { source_id: String, message: String },
}

/// The outcome of an ingest. Its JSON field names are the ones the CLI (`--json`) and the HTTP
/// API both print.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub added: usize,
    pub updated: usize,
    pub deleted: usize,
    pub unchanged: usize,
    pub skipped_binary: usize,
    pub skipped_too_large: usize,
    pub skipped_no_text: usize,
    /// Sources not deleted although the walk did not see them, because the folder they are in
    /// could not be listed (or the walk did not finish).
    pub kept: usize,
    /// Files that failed and files with a warning; failed files keep what was stored for them.
    pub errors: Vec<FileProblem>,
    pub chunks: usize,
    pub tokens: usize,
    pub seconds: f64,
    /// Stopped by the cancel flag; what was written is consistent and a re-run completes it.
    pub interrupted: bool,
    /// Per format ("pdf", "docx", "text"…): files read, skipped and failed in this run (files
    /// left unchanged are not read, so not counted).
    pub formats: std::collections::BTreeMap<String, FormatCounts>,
}

/// How the files of one format fared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FormatCounts {
    pub read: usize,
    pub skipped: usize,
    pub failed: usize,
}

impl Summary {
    pub fn skipped(&self) -> usize {
        self.skipped_binary + self.skipped_too_large + self.skipped_no_text
    }

    /// Files that failed (not counting warnings about files that were ingested).
    pub fn failed(&self) -> usize {
        self.errors.iter().filter(|e| !e.kind.is_warning()).count()
    }
}
