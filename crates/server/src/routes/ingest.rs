//! `POST /ingest` starts syncing a server-side folder into a collection; `GET /jobs/{id}` follows
//! it; `DELETE /jobs/{id}` stops it at a consistent point. Only folders inside the configured
//! `--ingest-root`s are accepted, and a job never reads outside its root: links that lead out
//! are reported and skipped, files are opened through a handle that cannot leave the root, and
//! hidden or git-ignored files stay out unless the operator allows them (`--ingest-hidden`).
//! Source ids start with the root's name, so two roots never delete each other's files.

use std::path::{Path as FsPath, PathBuf};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use fathom_ingest::{FolderOptions, WalkOptions};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::config::IngestRoot;
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::jobs::JobStatus;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
pub struct IngestRequest {
    /// A folder on the server, inside one of its ingest roots.
    pub path: String,
    pub collection: Option<String>,
    /// Which served embedder builds a new collection (default: the first); an existing one keeps
    /// the embedder that built it.
    pub model: Option<String>,
    /// Globs of files to take (default: all) and to leave out. They choose among the files the
    /// job may read; they never bring in hidden or git-ignored ones.
    #[serde(default)]
    pub include: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
}

/// A folder accepted for ingest: where it is, and the source-id prefix of its files (the root's
/// name and the folder's path under it, so ids never reveal where the root is on the server and
/// never collide between roots).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct IngestFolder {
    pub dir: PathBuf,
    pub prefix: String,
}

/// `path` resolved (symlinks and `..` included) if it is a folder inside one of `roots`.
pub(crate) fn resolve_under_roots(
    path: &str,
    roots: &[IngestRoot],
) -> Result<IngestFolder, ApiError> {
    if roots.is_empty() {
        return Err(ApiError::Validation(
            "this server ingests no folders (start it with --ingest-root DIR)".into(),
        ));
    }
    let outside = || {
        ApiError::Validation(format!(
            "`{path}` is not a folder inside the ingest roots ({})",
            roots
                .iter()
                .map(|r| r.path.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    };
    let requested = FsPath::new(path);
    // Relative paths are taken relative to the first root, never to the server's cwd.
    let joined = if requested.is_absolute() {
        requested.to_path_buf()
    } else {
        roots[0].path.join(requested)
    };
    let resolved = joined.canonicalize().map_err(|_| outside())?;
    if !resolved.is_dir() {
        return Err(outside());
    }
    for root in roots {
        let Ok(canonical) = root.path.canonicalize() else {
            continue;
        };
        if let Ok(relative) = resolved.strip_prefix(&canonical) {
            let prefix = format!("{}/{}", root.name, fathom_ingest::source_prefix(relative));
            return Ok(IngestFolder {
                dir: resolved,
                prefix,
            });
        }
    }
    Err(outside())
}

/// Start ingesting a folder; answers 202 with the job to follow.
#[utoipa::path(post, path = "/ingest", request_body = IngestRequest, tag = "ingest",
    responses(
        (status = 202, body = JobStatus),
        (status = 409, description = "The collection was written by another model", body = ErrorBody),
        (status = 429, description = "Too many ingest jobs queued or running", body = ErrorBody),
        (status = 422, description = "Not a folder inside the ingest roots", body = ErrorBody),
    ))]
pub async fn start(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<IngestRequest>,
) -> Result<(StatusCode, Json<JobStatus>), ApiError> {
    let folder = resolve_under_roots(&req.path, &state.config.ingest_roots)?;
    let (collection, _) = state
        .collection_with(req.collection.as_deref(), req.model.as_deref())
        .await?;
    let status = start_job(
        &state,
        req.path.clone(),
        folder,
        collection,
        req.include,
        req.exclude,
    )?;
    Ok((StatusCode::ACCEPTED, Json(status)))
}

/// Starts a job syncing `folder` into `collection` through the model's queue (as bulk work), with
/// the server's walk rules: confined to the folder, hidden and ignored files out unless the
/// operator allows them. `label` is what the job's status shows as its path.
pub(crate) fn start_job(
    state: &AppState,
    label: String,
    folder: IngestFolder,
    collection: std::sync::Arc<fathom_store::Collection>,
    include: Vec<String>,
    exclude: Vec<String>,
) -> Result<JobStatus, ApiError> {
    // The embedder that wrote the collection (new ones: the default).
    let engine = state.engine_for(&collection)?;
    let model = std::sync::Arc::new(crate::batcher::BulkEmbed {
        model: engine.model.clone(),
        batcher: engine.batcher.clone(),
    });
    let options = FolderOptions {
        walk: WalkOptions {
            include,
            exclude,
            source_prefix: Some(folder.prefix.clone()),
            confine: true,
            hidden: state.config.ingest_hidden,
            no_ignore: state.config.ingest_hidden,
            ..WalkOptions::default()
        },
        parse: state.config.parse.clone(),
        ..FolderOptions::default()
    };
    let root = folder.dir;
    state
        .jobs
        .start(
            label,
            collection.name().to_string(),
            move |job| async move {
                let cancel = job.cancel_flag();
                let on_event = |e| job.on_event(e);
                let outcome = fathom_ingest::sync_folder(
                    model,
                    &collection,
                    &root,
                    &options,
                    &on_event,
                    &cancel,
                )
                .await;
                if let Err(e) = &outcome {
                    tracing::warn!(error = %e, "ingest job failed");
                }
                job.finish(outcome);
            },
        )
        .map_err(|full| ApiError::TooManyJobs(full.0))
}

/// Progress of an ingest job, and its summary once finished.
#[utoipa::path(get, path = "/jobs/{id}", tag = "ingest",
    params(("id" = String, Path, description = "Job id from POST /ingest")),
    responses((status = 200, body = JobStatus), (status = 404, body = ErrorBody)))]
pub async fn status(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobStatus>, ApiError> {
    state
        .jobs
        .status(&id)
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no job `{id}`")))
}

/// Every ingest job this server has (the last 100 finished ones, and all queued or running),
/// newest first.
#[utoipa::path(get, path = "/jobs", tag = "ingest", responses((status = 200, body = JobList)))]
pub async fn list(State(state): State<AppState>) -> Json<JobList> {
    Json(JobList {
        jobs: state.jobs.list(),
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobList {
    pub jobs: Vec<JobStatus>,
}

/// Stop an ingest job after the sources in flight (the store stays consistent; ingesting the
/// folder again finishes the work).
#[utoipa::path(delete, path = "/jobs/{id}", tag = "ingest",
    params(("id" = String, Path, description = "Job id from POST /ingest")),
    responses((status = 202, body = JobStatus), (status = 404, body = ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<JobStatus>), ApiError> {
    let Some(status) = state.jobs.cancel(&id) else {
        return Err(ApiError::NotFound(format!("no job `{id}`")));
    };
    Ok((StatusCode::ACCEPTED, Json(status)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_folders_inside_a_root_are_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("docs")).unwrap();
        std::fs::create_dir_all(dir.path().join("secret")).unwrap();
        std::fs::write(root.join("file.txt"), "x").unwrap();
        let roots = vec![IngestRoot {
            name: "kb".into(),
            path: root.clone(),
        }];
        let docs = IngestFolder {
            dir: root.join("docs").canonicalize().unwrap(),
            prefix: "kb/docs/".into(),
        };
        assert_eq!(resolve_under_roots("docs", &roots).unwrap(), docs);
        assert_eq!(
            resolve_under_roots(docs.dir.to_str().unwrap(), &roots).unwrap(),
            docs
        );
        assert_eq!(resolve_under_roots(".", &roots).unwrap().prefix, "kb/");
        for bad in [
            "../secret",
            "docs/../../secret",
            "/etc",
            "file.txt",
            "missing",
        ] {
            let err = resolve_under_roots(bad, &roots).unwrap_err();
            assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path().join("secret"), root.join("link")).unwrap();
            assert!(resolve_under_roots("link", &roots).is_err());
        }
        assert!(resolve_under_roots("docs", &[]).is_err());
    }
}
