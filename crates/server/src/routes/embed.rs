//! `POST /embed` (text-embeddings-inference compatible) and `POST /v1/embeddings` (OpenAI
//! compatible). Both go through the batching queue.

use axum::extract::State;
use axum::Json;
use base64::Engine as _;
use fathom_model::{EmbedOptions, Truncation};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::batcher::Embedded;
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::service::models::{check_inputs, embed_queued, embed_queued_with};
use crate::state::AppState;

/// One text or several.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Inputs {
    One(String),
    Many(Vec<String>),
}

impl Inputs {
    pub(crate) fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s],
            Self::Many(v) => v,
        }
    }
}

/// Which end of an over-long input is cut (TEI spells them `Left` and `Right`).
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
pub enum TruncationDirection {
    #[serde(alias = "left")]
    Left,
    #[default]
    #[serde(alias = "right")]
    Right,
}

/// The body of `POST /embed`, as text-embeddings-inference takes it.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EmbedRequest {
    pub inputs: Inputs,
    /// Default: the model's own (sentence-transformers' Normalize module).
    pub normalize: Option<bool>,
    /// Default `true`: cut inputs longer than the model's max_seq_length; `false`: 422 instead.
    pub truncate: Option<bool>,
    pub truncation_direction: Option<TruncationDirection>,
    /// A prompt of the model's `config_sentence_transformers.json`, by name (e.g. `query`).
    pub prompt_name: Option<String>,
    /// Keep the first `dimensions` values (Matryoshka), renormalized when normalizing.
    pub dimensions: Option<usize>,
}

/// Embed texts (text-embeddings-inference compatible).
#[utoipa::path(post, path = "/embed", request_body = EmbedRequest, tag = "embed",
    responses(
        (status = 200, description = "One vector per input, in order", body = Vec<Vec<f32>>),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 422, description = "Empty, too many or too long inputs; bad options", body = ErrorBody),
        (status = 429, description = "Queue full; retry after `Retry-After` seconds", body = ErrorBody),
    ))]
pub async fn embed(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<EmbedRequest>,
) -> Result<Json<Vec<Vec<f32>>>, ApiError> {
    let texts = req.inputs.into_vec();
    check_inputs(&texts, state.config.max_inputs)?;
    let options = EmbedOptions {
        normalize: req.normalize,
        truncate: req.truncate,
        truncation_direction: match req.truncation_direction.unwrap_or_default() {
            TruncationDirection::Left => Truncation::Left,
            TruncationDirection::Right => Truncation::Right,
        },
        prompt_name: req.prompt_name,
        prompt: None,
        dimensions: req.dimensions,
    };
    Ok(Json(embed_queued(&state, texts, options).await?.vectors))
}

/// `input` of the OpenAI API: text, texts, or token ids (which this server refuses: they would
/// be ids of OpenAI's tokenizer, not this model's).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum OpenAiInput {
    One(String),
    Many(Vec<String>),
    Tokens(Vec<u32>),
    ManyTokens(Vec<Vec<u32>>),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EncodingFormat {
    #[default]
    Float,
    /// Little-endian f32 bytes, base64 (what the official clients ask for by default).
    Base64,
}

/// The body of `POST /v1/embeddings`, as OpenAI's API takes it.
#[derive(Debug, Deserialize, ToSchema)]
pub struct OpenAiRequest {
    pub input: OpenAiInput,
    /// Which embedder (`GET /v1/models`); with one embedder served, any name is accepted.
    pub model: Option<String>,
    pub encoding_format: Option<EncodingFormat>,
    pub dimensions: Option<usize>,
    pub user: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum OpenAiVector {
    Float(Vec<f32>),
    Base64(String),
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiEmbedding {
    /// Always `embedding`.
    pub object: &'static str,
    pub embedding: OpenAiVector,
    pub index: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiUsage {
    pub prompt_tokens: usize,
    pub total_tokens: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiResponse {
    /// Always `list`.
    pub object: &'static str,
    pub data: Vec<OpenAiEmbedding>,
    pub model: String,
    pub usage: OpenAiUsage,
}

fn base64_f32(v: &[f32]) -> String {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Embed texts (OpenAI compatible: the official clients work unchanged).
#[utoipa::path(post, path = "/v1/embeddings", request_body = OpenAiRequest, tag = "embed",
    responses(
        (status = 200, body = OpenAiResponse),
        (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody),
    ))]
pub async fn openai_embeddings(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<OpenAiRequest>,
) -> Result<Json<OpenAiResponse>, ApiError> {
    tracing::debug!(model = ?req.model, user = ?req.user, "OpenAI embeddings request");
    let token_inputs = |count: usize| {
        ApiError::Validation(format!(
            "token-id inputs ({count} given) are not supported: they would be ids of another tokenizer; send text"
        ))
    };
    let texts = match req.input {
        OpenAiInput::One(s) => vec![s],
        OpenAiInput::Many(v) => v,
        OpenAiInput::Tokens(ids) => return Err(token_inputs(ids.len())),
        OpenAiInput::ManyTokens(lists) => return Err(token_inputs(lists.len())),
    };
    check_inputs(&texts, state.config.max_inputs)?;
    let engine = state.engine_named(req.model.as_deref())?;
    let options = EmbedOptions {
        dimensions: req.dimensions,
        ..EmbedOptions::default()
    };
    let Embedded { vectors, tokens } = embed_queued_with(&state, &engine, texts, options).await?;
    let format = req.encoding_format.unwrap_or_default();
    let data = vectors
        .into_iter()
        .enumerate()
        .map(|(index, v)| OpenAiEmbedding {
            object: "embedding",
            embedding: match format {
                EncodingFormat::Float => OpenAiVector::Float(v),
                EncodingFormat::Base64 => OpenAiVector::Base64(base64_f32(&v)),
            },
            index,
        })
        .collect();
    let total: usize = tokens.iter().sum();
    Ok(Json(OpenAiResponse {
        object: "list",
        data,
        model: engine.name.clone(),
        usage: OpenAiUsage {
            prompt_tokens: total,
            total_tokens: total,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_holds_little_endian_f32() {
        let encoded = base64_f32(&[1.0, -2.5]);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        let back: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(back, vec![1.0, -2.5]);
    }

    #[test]
    fn inputs_take_a_string_or_a_list() {
        let one: EmbedRequest = serde_json::from_str(r#"{"inputs": "a"}"#).unwrap();
        let many: EmbedRequest = serde_json::from_str(r#"{"inputs": ["a", "b"]}"#).unwrap();
        assert_eq!(one.inputs.into_vec(), vec!["a"]);
        assert_eq!(many.inputs.into_vec(), vec!["a", "b"]);
        let tei: EmbedRequest =
            serde_json::from_str(r#"{"inputs": "a", "truncation_direction": "Left"}"#).unwrap();
        assert!(matches!(
            tei.truncation_direction,
            Some(TruncationDirection::Left)
        ));
    }
}
