//! `fathom serve --watch [NAME=]DIR[:COLLECTION]`: the server keeps a collection in step with a
//! folder. Each burst of changes becomes one ingest job (listed under `GET /jobs`, run through
//! the model's queue as bulk work, with the same rules as `POST /ingest`: confined to the folder,
//! whole-file commits, deletes of files that are gone — only among this folder's sources, whose
//! ids start with `NAME/`, so documents posted to the same collection are never touched).

use std::path::PathBuf;
use std::time::Duration;

use crate::config::WatchedFolder;
use crate::error::ApiError;
use crate::jobs::JobState;
use crate::service::ingest::{start_job, IngestFolder};
use crate::state::AppState;

/// Starts watching every `--watch` folder once the model is loaded; the watches stop when the
/// server shuts down.
pub fn spawn_watches(state: &AppState) {
    for folder in state.config.watches.clone() {
        let state = state.clone();
        tokio::spawn(async move {
            let stopping = state.jobs.stopping().clone();
            tokio::select! {
                _ = state.ready() => {}
                _ = stopping.cancelled() => return,
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
        if stopping.is_cancelled() {
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
            // Every job slot is taken: try again in a second (a back-off, not a wait for an
            // event: the slot may go to a request first), or stop with the server.
            Err(ApiError::TooManyJobs(_)) => tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stopping.cancelled() => return,
            },
            Err(e) => {
                tracing::warn!(folder = %folder.root.name, error = %e, "cannot sync a watched folder; the next change retries");
                return;
            }
        }
    }
}
