//! `GET /health`, `GET /info`, `GET /metrics`, `GET /openapi.json`.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use fathom_model::Precision;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`
    pub status: &'static str,
}

/// 200 once the model is loaded and warmed up; 503 before.
#[utoipa::path(get, path = "/health", tag = "service",
    responses((status = 200, body = Health), (status = 503, body = ErrorBody)))]
pub async fn health(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    if !state.engine()?.batcher.is_alive() {
        return Err(ApiError::Unavailable(
            "the model thread has stopped; restart the server".into(),
        ));
    }
    Ok(Json(Health { status: "ok" }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_inputs: usize,
    pub queue_capacity: usize,
    pub batch_tokens: usize,
    pub request_timeout_seconds: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Info {
    /// Hub id or folder name of the model.
    pub model: String,
    pub architecture: String,
    pub dimension: usize,
    pub max_seq_length: usize,
    pub normalize: bool,
    pub device: String,
    pub dtype: String,
    /// Prompt names of the model (use with `prompt_name`).
    pub prompts: Vec<String>,
    pub default_collection: String,
    /// Every embedder served, the default (`model`) first; the OpenAI route picks one by name.
    pub embedders: Vec<String>,
    /// The default cross-encoder (`--reranker`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reranker: Option<SideInfo>,
    /// Every cross-encoder served, the default first; requests pick one by `model`.
    pub rerankers: Vec<SideInfo>,
    /// The default SPLADE model (`--sparse-model`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sparse_model: Option<SideInfo>,
    /// Every SPLADE model served, the default first.
    pub sparse_models: Vec<SideInfo>,
    pub limits: Limits,
    pub version: &'static str,
}

impl SideInfo {
    fn of(name: &str, layout: &fathom_model::ModelLayout, precision: Precision) -> Self {
        Self {
            model: name.to_string(),
            architecture: layout.model_type.clone(),
            max_seq_length: layout.max_seq_length,
            dimension: layout.dimension,
            dtype: precision.to_string(),
        }
    }
}

/// A model served beside the embedder.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SideInfo {
    pub model: String,
    pub architecture: String,
    pub max_seq_length: usize,
    /// A reranker's labels (1 for relevance), a sparse model's vocabulary size.
    pub dimension: usize,
    pub dtype: String,
}

/// The model, limits and version of this server.
#[utoipa::path(get, path = "/info", tag = "service",
    responses((status = 200, body = Info), (status = 503, body = ErrorBody)))]
pub async fn info(State(state): State<AppState>) -> Result<Json<Info>, ApiError> {
    let engine = state.engine()?;
    let layout = engine.model.layout();
    let c = &state.config;
    let rerankers: Vec<SideInfo> = state
        .rerankers()
        .all()
        .iter()
        .map(|r| SideInfo::of(&r.name, r.model.layout(), r.model.precision()))
        .collect();
    let sparse_models: Vec<SideInfo> = state
        .sparse_models()
        .all()
        .iter()
        .map(|s| SideInfo::of(&s.name, s.model.layout(), s.model.precision()))
        .collect();
    let mut prompts: Vec<String> = layout.prompts.keys().cloned().collect();
    prompts.sort();
    Ok(Json(Info {
        model: engine.name.clone(),
        architecture: layout.model_type.clone(),
        dimension: engine.model.dimension(),
        max_seq_length: engine.model.max_seq_length(),
        normalize: layout.normalize,
        device: engine.model.device_name(),
        dtype: engine.model.precision().to_string(),
        prompts,
        default_collection: c.default_collection.clone(),
        embedders: state.embedder_names(),
        reranker: rerankers.first().cloned(),
        rerankers,
        sparse_model: sparse_models.first().cloned(),
        sparse_models,
        limits: Limits {
            max_body_bytes: c.max_body_bytes,
            max_inputs: c.max_inputs,
            queue_capacity: c.queue_capacity,
            batch_tokens: c.batch_tokens,
            request_timeout_seconds: c.request_timeout.as_secs_f64(),
        },
        version: env!("CARGO_PKG_VERSION"),
    }))
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "service",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    if let Ok(engine) = state.engine() {
        state.metrics.queue_depth.set(engine.batcher.depth() as i64);
    }
    for collection in state.open_collections().await {
        // A collection this server opened but nothing wrote yet has no dataset to describe.
        if !collection.exists() {
            continue;
        }
        match tokio::time::timeout(state.config.request_timeout, collection.storage_stats()).await {
            Ok(Ok(stats)) => state.metrics.record_store(collection.name(), &stats),
            Ok(Err(e)) => {
                tracing::warn!(collection = collection.name(), error = %e, "reading store stats for /metrics")
            }
            Err(_) => tracing::warn!(
                collection = collection.name(),
                "reading store stats for /metrics timed out"
            ),
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// This API as an OpenAPI 3.1 document.
pub async fn openapi() -> impl IntoResponse {
    use utoipa::OpenApi;
    Json(crate::ApiDoc::openapi())
}
