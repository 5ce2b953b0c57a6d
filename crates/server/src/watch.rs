//! `fathom serve --watch [NAME=]DIR[:COLLECTION]`: the server keeps a collection in step with a
//! folder. Each burst of changes becomes one ingest job (listed under `GET /jobs`, run through
//! the model's queue as bulk work, with the same rules as `POST /ingest`: confined to the folder,
//! whole-file commits, deletes of files that are gone — only among this folder's sources, whose
//! ids start with `NAME/`, so documents posted to the same collection are never touched).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::config::IngestRoot;
use crate::error::ApiError;
use crate::jobs::JobState;
use crate::routes::ingest::{start_job, IngestFolder};
use crate::state::AppState;

/// A folder the server watches, and the collection it goes to (the default one when `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedFolder {
    pub root: IngestRoot,
    pub collection: Option<String>,
}

impl WatchedFolder {
    /// `[NAME=]DIR[:COLLECTION]`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let (folder, collection) = match spec.rsplit_once(':') {
            Some((dir, name))
                if !dir.is_empty()
                    && !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) =>
            {
                (dir, Some(name.to_string()))
            }
            _ => (spec, None),
        };
        let root = IngestRoot::parse(folder).map_err(|e| e.replace("--ingest-root", "--watch"))?;
        Ok(Self { root, collection })
    }
}

/// Starts watching every `--watch` folder once the model is loaded; the watches stop when the
/// server shuts down.
pub fn spawn_watches(state: &AppState) {
    for folder in state.config.watches.clone() {
        let state = state.clone();
        tokio::spawn(async move {
            let stopping = state.jobs.stopping().clone();
            while !state.is_ready() {
                if stopping.load(Ordering::Relaxed) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let dir = folder.root.path.clone();
            let ignore: Vec<PathBuf> = state.store.local_folder().into_iter().collect();
            let outcome = fathom_ingest::watch_folder(
                &dir,
                state.config.watch_quiet,
                state.config.ingest_hidden,
                &ignore,
                &stopping,
                || sync(&state, &folder),
            )
            .await;
            if let Err(e) = outcome {
                tracing::error!(folder = %dir.display(), error = %e, "the folder is no longer watched");
            }
        });
    }
}

/// One sync of a watched folder as an ingest job, waiting for a job slot when all are taken.
async fn sync(state: &AppState, folder: &WatchedFolder) {
    let label = format!("watch:{}", folder.root.name);
    let stopping = state.jobs.stopping();
    loop {
        if stopping.load(Ordering::Relaxed) {
            return;
        }
        let started = async {
            let collection = state.collection(folder.collection.as_deref()).await?;
            let dir: PathBuf = folder.root.path.canonicalize().map_err(|e| {
                ApiError::Validation(format!("{}: {e}", folder.root.path.display()))
            })?;
            let prefix = format!("{}/", folder.root.name);
            start_job(
                state,
                label.clone(),
                IngestFolder { dir, prefix },
                collection,
                Vec::new(),
                Vec::new(),
            )
        }
        .await;
        match started {
            Ok(job) => {
                let Some(done) = state.jobs.wait(&job.id).await else {
                    return;
                };
                match (done.state, &done.summary) {
                    (JobState::Done, Some(s)) if s.added + s.updated + s.deleted > 0 => {
                        tracing::info!(folder = %folder.root.name, added = s.added, updated = s.updated, deleted = s.deleted, "watched folder synced")
                    }
                    (JobState::Failed, _) => {
                        tracing::warn!(folder = %folder.root.name, error = ?done.error, "syncing a watched folder failed; the next change retries")
                    }
                    _ => {}
                }
                return;
            }
            Err(ApiError::TooManyJobs(_)) => tokio::time::sleep(Duration::from_secs(1)).await,
            Err(e) => {
                tracing::warn!(folder = %folder.root.name, error = %e, "cannot sync a watched folder; the next change retries");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_name_a_folder_and_maybe_a_collection() {
        let w = WatchedFolder::parse("notes=/srv/notes:kb").unwrap();
        assert_eq!(w.root.name, "notes");
        assert_eq!(w.root.path, PathBuf::from("/srv/notes"));
        assert_eq!(w.collection.as_deref(), Some("kb"));
        let w = WatchedFolder::parse("/srv/notes").unwrap();
        assert_eq!(w.root.name, "notes");
        assert_eq!(w.collection, None);
        // A colon followed by something that cannot be a collection name stays in the path.
        let w = WatchedFolder::parse("/srv/a:b/c").unwrap();
        assert_eq!(w.root.path, PathBuf::from("/srv/a:b/c"));
        assert_eq!(w.collection, None);
    }
}
