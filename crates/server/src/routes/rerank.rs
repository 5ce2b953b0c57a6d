//! The second stage and the sparse model: `POST /rerank` (text-embeddings-inference),
//! `POST /v1/rerank` (Cohere's and Jina's shape, which LangChain's and LlamaIndex's rerankers
//! call), `POST /embed_sparse` (text-embeddings-inference), TEI's root route `POST /` (which
//! Hugging Face's `InferenceClient` posts to) and `GET /v1/models`.

use axum::extract::State;
use axum::Json;
use fathom_model::{EmbedOptions, RerankOptions, Truncation};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::routes::embed::{EmbedRequest, TruncationDirection};
use crate::service::models::{check_inputs, embed_queued, rerank_scores};
use crate::side::{estimate_tokens, run_sliced};
use crate::state::AppState;

/// The body of `POST /rerank`, as text-embeddings-inference takes it.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RerankRequest {
    pub query: String,
    pub texts: Vec<String>,
    /// `true`: the model's logits, without its activation (Sigmoid for most rerankers).
    #[serde(default)]
    pub raw_scores: bool,
    /// `true`: each result carries its text.
    #[serde(default)]
    pub return_text: bool,
    /// Default `true`: cut pairs longer than the model's max length (`longest_first`, as
    /// sentence-transformers cuts them; TEI's `truncation_direction` is accepted and ignored);
    /// `false`: 422 instead.
    pub truncate: Option<bool>,
    /// Which reranker (`GET /v1/models`) when the server runs several; default: the first.
    pub model: Option<String>,
}

/// One text's score.
#[derive(Debug, Serialize, ToSchema)]
pub struct Rank {
    /// The text's position in the request.
    pub index: usize,
    pub score: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// Indices sorted by score, highest first (ties keep request order).
fn ranked(scores: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order
}

/// Rerank texts against a query with the server's cross-encoder (text-embeddings-inference
/// compatible).
#[utoipa::path(post, path = "/rerank", request_body = RerankRequest, tag = "rerank",
    responses(
        (status = 200, description = "Every text with its score, highest first", body = Vec<Rank>),
        (status = 404, description = "This server runs no reranker (`--reranker`), or none of the `model` named", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 422, description = "Empty query or texts, too many texts, a too long pair with truncate false", body = ErrorBody),
        (status = 429, body = ErrorBody),
    ))]
pub async fn rerank(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RerankRequest>,
) -> Result<Json<Vec<Rank>>, ApiError> {
    let options = RerankOptions {
        truncate: req.truncate.unwrap_or(true),
        raw_scores: req.raw_scores,
    };
    let reranker = state.rerankers().get(req.model.as_deref())?;
    let texts = req.texts;
    let (scores, _) = rerank_scores(&state, &reranker, req.query, texts.clone(), options).await?;
    Ok(Json(
        ranked(&scores)
            .into_iter()
            .map(|index| Rank {
                index,
                score: scores[index],
                text: req.return_text.then(|| texts[index].clone()),
            })
            .collect(),
    ))
}

/// A document of `POST /v1/rerank`: a string, or an object with `text` (Cohere's and Jina's
/// structured form).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum RerankDocument {
    Text(String),
    Object { text: String },
}

/// The body of `POST /v1/rerank`, as Cohere's and Jina's rerank APIs take it.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CohereRerankRequest {
    /// Which reranker (`GET /v1/models`); default: the first. A name the server does not run is
    /// a 404.
    pub model: Option<String>,
    pub query: String,
    pub documents: Vec<RerankDocument>,
    /// Return only the best `top_n` (default: all).
    pub top_n: Option<usize>,
    /// Include each document's text (default `false` as in Cohere's API).
    #[serde(default)]
    pub return_documents: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CohereDocument {
    pub text: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CohereResult {
    pub index: usize,
    pub relevance_score: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<CohereDocument>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RerankUsage {
    pub total_tokens: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CohereRerankResponse {
    pub id: String,
    pub model: String,
    pub results: Vec<CohereResult>,
    pub usage: RerankUsage,
}

/// Rerank documents against a query (Cohere / Jina compatible: LangChain's `CohereRerank` and
/// LlamaIndex's rerankers pointed at this server work unchanged).
#[utoipa::path(post, path = "/v1/rerank", request_body = CohereRerankRequest, tag = "rerank",
    responses(
        (status = 200, body = CohereRerankResponse),
        (status = 404, description = "No reranker, or `model` names one this server does not run", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody),
    ))]
pub async fn cohere_rerank(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<CohereRerankRequest>,
) -> Result<Json<CohereRerankResponse>, ApiError> {
    let reranker = state.rerankers().get(req.model.as_deref())?;
    let name = reranker.name.clone();
    if req.top_n == Some(0) {
        return Err(ApiError::Validation("`top_n` must be at least 1".into()));
    }
    let texts: Vec<String> = req
        .documents
        .into_iter()
        .map(|d| match d {
            RerankDocument::Text(t) | RerankDocument::Object { text: t } => t,
        })
        .collect();
    let (scores, tokens) = rerank_scores(
        &state,
        &reranker,
        req.query,
        texts.clone(),
        RerankOptions::default(),
    )
    .await?;
    let results = ranked(&scores)
        .into_iter()
        .take(req.top_n.unwrap_or(usize::MAX))
        .map(|index| CohereResult {
            index,
            relevance_score: scores[index],
            document: req.return_documents.then(|| CohereDocument {
                text: texts[index].clone(),
            }),
        })
        .collect();
    Ok(Json(CohereRerankResponse {
        id: response_id(),
        model: name,
        results,
        usage: RerankUsage {
            total_tokens: tokens,
        },
    }))
}

/// The body of `POST /embed_sparse`, as text-embeddings-inference takes it.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SparseRequest {
    pub inputs: crate::routes::embed::Inputs,
    /// Default `true`: cut inputs longer than the model's max length; `false`: 422 instead.
    pub truncate: Option<bool>,
    /// Which sparse model (`GET /v1/models`) when the server runs several; default: the first.
    pub model: Option<String>,
}

/// One non-zero weight of a sparse vector.
#[derive(Debug, Serialize, ToSchema)]
pub struct SparseValue {
    /// The vocabulary token's id.
    pub index: u32,
    pub value: f32,
}

/// Embed texts with the server's SPLADE model (text-embeddings-inference compatible).
#[utoipa::path(post, path = "/embed_sparse", request_body = SparseRequest, tag = "embed",
    responses(
        (status = 200, description = "The non-zero weights of each input, by token id", body = Vec<Vec<SparseValue>>),
        (status = 404, description = "This server runs no sparse model (`--sparse-model`), or none of the `model` named", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody),
    ))]
pub async fn embed_sparse(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<SparseRequest>,
) -> Result<Json<Vec<Vec<SparseValue>>>, ApiError> {
    let sparse = state.sparse_models().get(req.model.as_deref())?;
    let texts = req.inputs.into_vec();
    check_inputs(&texts, state.config.max_inputs)?;
    let truncate = req.truncate.unwrap_or(true);
    let timeout = state.config.request_timeout;
    let batcher = state.engine().ok().map(|e| e.batcher.clone());
    let vectors = tokio::time::timeout(
        timeout,
        sparse.run(move |model| {
            let max = model.max_seq_length();
            let estimates: Vec<usize> = texts
                .iter()
                .map(|t| estimate_tokens(t.len(), max))
                .collect();
            run_sliced(&estimates, batcher.as_ref(), |range| {
                model.encode(&texts[range], truncate)
            })
        }),
    )
    .await
    .map_err(|_| ApiError::Timeout(timeout))??;
    Ok(Json(
        vectors
            .into_iter()
            .map(|v| {
                v.indices
                    .into_iter()
                    .zip(v.values)
                    .map(|(index, value)| SparseValue { index, value })
                    .collect()
            })
            .collect(),
    ))
}

/// The body of text-embeddings-inference's root route: an embed body, or a rerank body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum PredictRequest {
    Rerank(RerankRequest),
    Embed(EmbedRequest),
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum PredictResponse {
    Vectors(Vec<Vec<f32>>),
    Ranks(Vec<Rank>),
}

/// text-embeddings-inference's root route: `{"inputs"}` embeds (as `POST /embed`), `{"query",
/// "texts"}` reranks (as `POST /rerank`). Hugging Face's `InferenceClient(model=URL)` posts here.
#[utoipa::path(post, path = "/", request_body = PredictRequest, tag = "embed",
    responses(
        (status = 200, body = PredictResponse),
        (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody),
    ))]
pub async fn predict(
    state: State<AppState>,
    ApiJson(req): ApiJson<PredictRequest>,
) -> Result<Json<PredictResponse>, ApiError> {
    match req {
        PredictRequest::Rerank(r) => Ok(Json(PredictResponse::Ranks(
            rerank(state, ApiJson(r)).await?.0,
        ))),
        PredictRequest::Embed(e) => {
            let State(state) = state;
            let texts = e.inputs.into_vec();
            check_inputs(&texts, state.config.max_inputs)?;
            let options = EmbedOptions {
                normalize: e.normalize,
                truncate: e.truncate,
                truncation_direction: match e.truncation_direction.unwrap_or_default() {
                    TruncationDirection::Left => Truncation::Left,
                    TruncationDirection::Right => Truncation::Right,
                },
                prompt_name: e.prompt_name,
                prompt: None,
                dimensions: e.dimensions,
            };
            Ok(Json(PredictResponse::Vectors(
                embed_queued(&state, texts, options).await?.vectors,
            )))
        }
    }
}

/// A model this server runs (OpenAI's model object).
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelObject {
    pub id: String,
    /// Always `model`.
    pub object: &'static str,
    /// Always `fathom`.
    pub owned_by: &'static str,
    /// `embedder`, `reranker` or `sparse`.
    pub kind: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelList {
    /// Always `list`.
    pub object: &'static str,
    pub data: Vec<ModelObject>,
}

/// The models this server runs (OpenAI compatible).
#[utoipa::path(get, path = "/v1/models", tag = "service",
    responses((status = 200, body = ModelList), (status = 503, body = ErrorBody)))]
pub async fn models(State(state): State<AppState>) -> Result<Json<ModelList>, ApiError> {
    let object = |id: String, kind: &'static str| ModelObject {
        id,
        object: "model",
        owned_by: "fathom",
        kind,
    };
    state.engine()?;
    let mut data: Vec<ModelObject> = state
        .embedder_names()
        .into_iter()
        .map(|n| object(n, "embedder"))
        .collect();
    for r in state.rerankers().all() {
        data.push(object(r.name.clone(), "reranker"));
    }
    for s in state.sparse_models().all() {
        data.push(object(s.name.clone(), "sparse"));
    }
    Ok(Json(ModelList {
        object: "list",
        data,
    }))
}

/// A unique id per response (Cohere's clients read one): the time and a process-wide counter.
fn response_id() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("rerank-{nanos:x}-{n}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranked_is_highest_first_and_stable() {
        assert_eq!(ranked(&[0.1, 0.9, 0.5, 0.9]), vec![1, 3, 2, 0]);
    }

    #[test]
    fn the_root_route_tells_rerank_from_embed_bodies() {
        let r: PredictRequest = serde_json::from_str(r#"{"query": "q", "texts": ["a"]}"#).unwrap();
        assert!(matches!(r, PredictRequest::Rerank(_)));
        let e: PredictRequest = serde_json::from_str(r#"{"inputs": "a"}"#).unwrap();
        assert!(matches!(e, PredictRequest::Embed(_)));
        let docs: CohereRerankRequest = serde_json::from_str(
            r#"{"query": "q", "documents": ["a", {"text": "b"}], "top_n": 1}"#,
        )
        .unwrap();
        assert_eq!(docs.documents.len(), 2);
    }
}
