//! `POST /ingest` starts syncing a server-side folder into a collection; `GET /jobs/{id}` follows
//! it; `DELETE /jobs/{id}` stops it at a consistent point. Only folders inside the configured
//! `--ingest-root`s are accepted, and a job never reads outside its root: links that lead out
//! are reported and skipped, files are opened through a handle that cannot leave the root, and
//! hidden or git-ignored files stay out unless the operator allows them (`--ingest-hidden`).
//! Source ids start with the root's name, so two roots never delete each other's files.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::jobs::JobStatus;
use crate::service::ingest::{resolve_under_roots, start_job};
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
