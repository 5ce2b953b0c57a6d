//! `POST /search`: vector, full-text or hybrid search in a collection.

use axum::extract::State;
use axum::Json;
use fathom_model::EmbedOptions;
use fathom_store::{Filter, Hit, SearchMode, SearchQuery};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::embed::embed_queued_with;
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::state::AppState;

/// Most results one search returns.
pub const MAX_K: usize = 1000;

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
    pub mode: Option<String>,
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
    let hits = run(&state, req).await?;
    Ok(Json(SearchResponse { hits }))
}

/// A search with every limit checked, the query embedded through the model's queue (as
/// interactive work) and the store's answer bounded by the request timeout: what `POST /search`
/// and the MCP `search` tool do.
pub(crate) async fn run(state: &AppState, req: SearchRequest) -> Result<Vec<Hit>, ApiError> {
    if req.query.trim().is_empty() {
        return Err(ApiError::Validation(
            "`query` is empty; send the text to search for".into(),
        ));
    }
    let k = req.k.unwrap_or(10);
    if k == 0 || k > MAX_K {
        return Err(ApiError::Validation(format!(
            "`k` must be between 1 and {MAX_K}, got {k}"
        )));
    }
    let candidates = req.candidates.unwrap_or(DEFAULT_CANDIDATES).max(k);
    let rerank = req.rerank || req.reranker.is_some();
    if req.candidates.is_some() && !rerank {
        return Err(ApiError::Validation(
            "`candidates` is the number of hits `rerank` reorders; set `rerank: true` too".into(),
        ));
    }
    if candidates > MAX_K {
        return Err(ApiError::Validation(format!(
            "`candidates` must be at most {MAX_K}, got {candidates}"
        )));
    }
    let reranker = if rerank {
        match state.rerankers().get(req.reranker.as_deref()) {
            Ok(r) => Some(r),
            Err(_) if state.rerankers().first().is_none() => {
                return Err(ApiError::Validation(
                    "`rerank` needs a reranker, and this server runs none; start it with \
                     `fathom serve --reranker MODEL`"
                        .into(),
                ))
            }
            Err(e) => return Err(e),
        }
    } else {
        None
    };
    let mode: SearchMode = match req.mode.as_deref() {
        None => SearchMode::default(),
        Some(m) => m.parse().map_err(ApiError::Validation)?,
    };
    let filters = match req.filter {
        None => Vec::new(),
        Some(Filters::One(f)) => vec![f],
        Some(Filters::Many(v)) => v,
    };
    let limits = &state.config;
    if filters.len() > limits.max_filters {
        return Err(ApiError::Validation(format!(
            "{} filters in one search; at most {} are accepted (--max-filters)",
            filters.len(),
            limits.max_filters
        )));
    }
    if let Some(long) = filters.iter().find(|f| f.len() > limits.max_filter_bytes) {
        return Err(ApiError::Validation(format!(
            "a filter of {} bytes; at most {} are accepted (--max-filter-bytes)",
            long.len(),
            limits.max_filter_bytes
        )));
    }
    let filters = filters
        .iter()
        .map(|f| Filter::parse(f))
        .collect::<Result<Vec<_>, _>>()?;
    // From here to the store's answer, bulk work (an ingest) waits for the CPU.
    let interactive = state.engine().ok().map(|e| e.batcher.interactive_scope());
    let collection = state.existing_collection(req.collection.as_deref()).await?;
    let vector = if mode == SearchMode::Text {
        None
    } else {
        // The embedder that wrote the collection (the default one, or another served one).
        let engine = state.engine_for(&collection)?;
        let options = EmbedOptions {
            prompt_name: engine.model.query_prompt().map(str::to_string),
            ..EmbedOptions::default()
        };
        let mut embedded =
            embed_queued_with(state, &engine, vec![req.query.clone()], options).await?;
        Some(embedded.vectors.remove(0))
    };
    let query = SearchQuery {
        vector,
        text: Some(req.query.clone()),
        mode,
        k: if rerank { candidates } else { k },
        filters,
    };
    let timeout = state.config.request_timeout;
    let hits = tokio::time::timeout(timeout, collection.search(&query))
        .await
        .map_err(|_| ApiError::Timeout(timeout))??;
    // The reranker yields to embed requests slice by slice; this search's own scope must not
    // hold it back.
    drop(interactive);
    let Some(reranker) = reranker.filter(|_| !hits.is_empty()) else {
        return Ok(hits);
    };
    let texts: Vec<String> = hits.iter().map(|h| h.text.clone()).collect();
    let (scores, _) = super::rerank::rerank_scores(
        state,
        &reranker,
        req.query,
        texts,
        fathom_model::RerankOptions::default(),
    )
    .await?;
    Ok(fathom_store::rerank_hits(hits, &scores, k))
}

/// Hits a reranked search reorders when the request names no `candidates`.
pub const DEFAULT_CANDIDATES: usize = 50;
