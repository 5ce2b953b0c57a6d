//! The ingest's errors. Problems with one file are not errors: they are reported in the
//! [`Summary`](crate::Summary) and the ingest goes on.

use std::path::PathBuf;

use crate::report::Summary;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The folder cannot be walked at all: not a folder, a bad glob.
    #[error(transparent)]
    Walk(#[from] fathom_docs::WalkError),
    #[error("chunk size {tokens} with overlap {overlap}: the overlap must be smaller than the chunk size")]
    BadChunkSize { tokens: usize, overlap: usize },
    #[error("cannot watch `{}`: {error}{}", path.display(), watch_hint(error))]
    Watch { path: PathBuf, error: notify::Error },
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error(transparent)]
    Store(#[from] fathom_store::StoreError),
    /// The reader, the embedder or a write stopped before the plan was carried out. Whole sources
    /// done before that are committed; nothing was deleted; a re-run finishes the work.
    #[error("the ingest stopped early ({reason}): {} sources committed, nothing deleted; run it again to finish", summary.added + summary.updated)]
    Incomplete {
        reason: String,
        summary: Box<Summary>,
    },
}

/// Why an embedding call failed.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error(transparent)]
    Model(#[from] fathom_model::ModelError),
    /// The service in front of the model (a queue) could not take or finish the call.
    #[error("the embedding service is unavailable: {0}")]
    Unavailable(String),
}

pub type Result<T, E = IngestError> = std::result::Result<T, E>;

/// The way out of a watch error the user can fix.
fn watch_hint(e: &notify::Error) -> &'static str {
    match e.kind {
        notify::ErrorKind::MaxFilesWatch => {
            ": the folder has more subfolders than the system lets one process watch (raise \
             fs.inotify.max_user_watches)"
        }
        _ => "",
    }
}
