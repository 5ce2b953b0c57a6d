//! The models behind the routes: texts checked against the limits, then embedded or scored
//! through their queues, each wait bounded by the request timeout.

use fathom_model::{EmbedOptions, RerankOptions, Reranker};

use crate::batcher::Embedded;
use crate::error::ApiError;
use crate::side::{estimate_tokens, run_sliced, SideModel};
use crate::state::AppState;

/// Checks what every embed route refuses before queueing.
pub fn check_inputs(texts: &[String], max_inputs: usize) -> Result<(), ApiError> {
    if texts.is_empty() {
        return Err(ApiError::Validation(
            "`inputs` is empty; send at least one text".into(),
        ));
    }
    if texts.len() > max_inputs {
        return Err(ApiError::Validation(format!(
            "{} inputs in one request; at most {max_inputs} are accepted (split the request)",
            texts.len()
        )));
    }
    Ok(())
}

/// Queues `texts` for the default embedder and waits for them, at most the configured request
/// timeout.
pub async fn embed_queued(
    state: &AppState,
    texts: Vec<String>,
    options: EmbedOptions,
) -> Result<Embedded, ApiError> {
    embed_queued_with(state, state.engine()?, texts, options).await
}

/// [`embed_queued`] with a given embedder.
pub async fn embed_queued_with(
    state: &AppState,
    engine: &crate::state::Engine,
    texts: Vec<String>,
    options: EmbedOptions,
) -> Result<Embedded, ApiError> {
    let timeout = state.config.request_timeout;
    tokio::time::timeout(timeout, engine.batcher.embed(texts, options))
        .await
        .map_err(|_| ApiError::Timeout(timeout))?
        .map_err(ApiError::from)
}

/// Scores each text against the query with `reranker`, in the texts' order, and the tokens run.
pub async fn rerank_scores(
    state: &AppState,
    reranker: &SideModel<Reranker>,
    query: String,
    texts: Vec<String>,
    options: RerankOptions,
) -> Result<(Vec<f32>, usize), ApiError> {
    if query.is_empty() {
        return Err(ApiError::Validation("`query` is empty".into()));
    }
    check_inputs(&texts, state.config.max_inputs)?;
    let timeout = state.config.request_timeout;
    let batcher = state.engine().ok().map(|e| e.batcher.clone());
    let work = reranker.run(move |model| {
        let max = model.max_seq_length();
        let estimates: Vec<usize> = texts
            .iter()
            .map(|t| estimate_tokens(query.len() + t.len(), max))
            .collect();
        // The query is tokenized once for all slices.
        let prepared = model.prepare_query(&query)?;
        run_sliced(&estimates, batcher.as_ref(), |range| {
            let (scores, tokens) = model.rerank_prepared(&prepared, &texts[range], &options)?;
            Ok(scores.into_iter().zip(tokens).collect())
        })
    });
    let scored = tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| ApiError::Timeout(timeout))??;
    let tokens = scored.iter().map(|(_, t)| t).sum();
    Ok((scored.into_iter().map(|(score, _)| score).collect(), tokens))
}
