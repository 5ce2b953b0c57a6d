//! A search: every limit checked, the query embedded through the model's queue (as interactive
//! work), the store's answer bounded by the request timeout, then reranked where asked.

use fathom_model::EmbedOptions;
use fathom_store::{Filter, Hit, SearchMode, SearchQuery};

use crate::error::ApiError;
use crate::state::AppState;

/// Most results one search returns.
pub const MAX_K: usize = 1000;

/// Hits a reranked search reorders when the request names no `candidates`.
pub const DEFAULT_CANDIDATES: usize = 50;

/// What a search asks for, as `POST /search` and the MCP `search` tool both hand it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchParams {
    pub query: String,
    /// Results to return (1..=[`MAX_K`]).
    pub k: usize,
    pub mode: SearchMode,
    /// Filters as the user wrote them (parsed here, so every limit is checked in one place).
    pub filters: Vec<String>,
    /// `None`: the server's default collection.
    pub collection: Option<String>,
    /// Rerank the hits (implied by naming a `reranker`).
    pub rerank: bool,
    /// Hits the reranker reorders; `None`: [`DEFAULT_CANDIDATES`] (never fewer than `k`).
    pub candidates: Option<usize>,
    /// Which reranker; `None`: the first.
    pub reranker: Option<String>,
}

impl SearchParams {
    /// A search for `query` with every default: 10 hybrid hits, no filter, the default
    /// collection, no rerank.
    pub fn new(query: impl Into<String>) -> Self {
        Self {
            query: query.into(),
            k: 10,
            mode: SearchMode::default(),
            filters: Vec::new(),
            collection: None,
            rerank: false,
            candidates: None,
            reranker: None,
        }
    }
}

/// What was asked, checked against the server's limits before any work.
struct Checked {
    k: usize,
    /// Hits the store returns: `k`, or the candidates when reranking.
    retrieve: usize,
    filters: Vec<Filter>,
    reranker: Option<std::sync::Arc<crate::side::SideModel<fathom_model::Reranker>>>,
}

fn check(state: &AppState, p: &SearchParams) -> Result<Checked, ApiError> {
    if p.query.trim().is_empty() {
        return Err(ApiError::Validation(
            "`query` is empty; send the text to search for".into(),
        ));
    }
    if p.k == 0 || p.k > MAX_K {
        return Err(ApiError::Validation(format!(
            "`k` must be between 1 and {MAX_K}, got {}",
            p.k
        )));
    }
    let rerank = p.rerank || p.reranker.is_some();
    if p.candidates.is_some() && !rerank {
        return Err(ApiError::Validation(
            "`candidates` is the number of hits `rerank` reorders; set `rerank: true` too".into(),
        ));
    }
    let candidates = p.candidates.unwrap_or(DEFAULT_CANDIDATES).max(p.k);
    if candidates > MAX_K {
        return Err(ApiError::Validation(format!(
            "`candidates` must be at most {MAX_K}, got {candidates}"
        )));
    }
    let reranker = if rerank {
        match state.rerankers().get(p.reranker.as_deref()) {
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
    let limits = &state.config;
    if p.filters.len() > limits.max_filters {
        return Err(ApiError::Validation(format!(
            "{} filters in one search; at most {} are accepted (--max-filters)",
            p.filters.len(),
            limits.max_filters
        )));
    }
    if let Some(long) = p.filters.iter().find(|f| f.len() > limits.max_filter_bytes) {
        return Err(ApiError::Validation(format!(
            "a filter of {} bytes; at most {} are accepted (--max-filter-bytes)",
            long.len(),
            limits.max_filter_bytes
        )));
    }
    let filters = p
        .filters
        .iter()
        .map(|f| Filter::parse(f))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Checked {
        k: p.k,
        retrieve: if rerank { candidates } else { p.k },
        filters,
        reranker,
    })
}

/// Runs a search: embeds the query (unless the mode is text), asks the store, reranks.
pub async fn run(state: &AppState, p: SearchParams) -> Result<Vec<Hit>, ApiError> {
    let checked = check(state, &p)?;
    // From here to the store's answer, bulk work (an ingest) waits for the CPU.
    let interactive = state.engine().ok().map(|e| e.batcher.interactive_scope());
    let collection = state.existing_collection(p.collection.as_deref()).await?;
    let vector = if p.mode == SearchMode::Text {
        None
    } else {
        // The embedder that wrote the collection (the default one, or another served one).
        let engine = state.engine_for(&collection)?;
        let options = EmbedOptions {
            prompt_name: engine.model.query_prompt().map(str::to_string),
            ..EmbedOptions::default()
        };
        let mut embedded =
            super::models::embed_queued_with(state, &engine, vec![p.query.clone()], options)
                .await?;
        Some(embedded.vectors.remove(0))
    };
    let query = SearchQuery {
        vector,
        text: Some(p.query.clone()),
        mode: p.mode,
        k: checked.retrieve,
        filters: checked.filters,
    };
    let timeout = state.config.request_timeout;
    let hits = tokio::time::timeout(timeout, collection.search(&query))
        .await
        .map_err(|_| ApiError::Timeout(timeout))??;
    // The reranker yields to embed requests slice by slice; this search's own scope must not
    // hold it back.
    drop(interactive);
    let Some(reranker) = checked.reranker.filter(|_| !hits.is_empty()) else {
        return Ok(hits);
    };
    let texts: Vec<String> = hits.iter().map(|h| h.text.clone()).collect();
    let (scores, _) = super::models::rerank_scores(
        state,
        &reranker,
        p.query,
        texts,
        fathom_model::RerankOptions::default(),
    )
    .await?;
    Ok(fathom_store::rerank_hits(hits, &scores, checked.k))
}
