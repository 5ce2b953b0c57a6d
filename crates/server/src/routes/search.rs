//! `POST /search`: vector, full-text or hybrid search in a collection.

use axum::extract::State;
use axum::Json;
use fathom_store::{Hit, SearchMode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::service::search::{run, SearchParams};
use crate::state::AppState;

/// One filter or several (all must match).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Filters {
    One(String),
    Many(Vec<String>),
}

/// Unknown fields are refused (a `top_k` would otherwise be ignored in silence).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    pub query: String,
    /// Results to return (1..=1000, default 10).
    pub k: Option<usize>,
    /// `hybrid` (default: reciprocal rank fusion of both), `vector` or `text` (BM25).
    pub mode: Option<SearchMode>,
    /// `source:PREFIX`, `source:GLOB` (with `*`, `?`), `source=ID` or `meta.KEY=VALUE`.
    pub filter: Option<Filters>,
    /// Default: the server's default collection.
    pub collection: Option<String>,
    /// `true`: retrieve `candidates` hits, rerank them with the server's cross-encoder
    /// (`--reranker`) and return the best `k` by its score (each hit's `score` is then the
    /// reranker's).
    #[serde(default)]
    pub rerank: bool,
    /// Hits the reranker reorders (default 50, at most 1000; at least `k`).
    pub candidates: Option<usize>,
    /// Which reranker (`GET /v1/models`) when the server runs several; naming one implies
    /// `rerank`. Default: the first.
    pub reranker: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResponse {
    pub hits: Vec<Hit>,
}

/// Search a collection.
#[utoipa::path(post, path = "/search", request_body = SearchRequest, tag = "search",
    responses(
        (status = 200, body = SearchResponse),
        (status = 404, description = "No such collection", body = ErrorBody),
        (status = 409, description = "The collection was written by another model", body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
pub async fn search(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<SearchRequest>,
) -> Result<Json<SearchResponse>, ApiError> {
    let hits = run(&state, req.into()).await?;
    Ok(Json(SearchResponse { hits }))
}

impl From<SearchRequest> for SearchParams {
    fn from(req: SearchRequest) -> Self {
        let defaults = SearchParams::new(req.query);
        Self {
            k: req.k.unwrap_or(defaults.k),
            mode: req.mode.unwrap_or(defaults.mode),
            filters: match req.filter {
                None => Vec::new(),
                Some(Filters::One(f)) => vec![f],
                Some(Filters::Many(v)) => v,
            },
            collection: req.collection,
            rerank: req.rerank,
            candidates: req.candidates,
            reranker: req.reranker,
            ..defaults
        }
    }
}
