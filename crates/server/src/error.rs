//! One error type for every route: a status, a machine-readable `type` and a message, sent as
//! `{"error": "...", "type": "..."}`. Internal errors are logged and answered with a generic text.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong and what to do about it.
    pub error: String,
    /// `validation`, `payload_too_large`, `unauthorized`, `not_found`, `method_not_allowed`,
    /// `conflict`, `overloaded`, `timeout`, `not_ready` or `internal`.
    #[serde(rename = "type")]
    pub kind: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("missing or wrong API key (send `Authorization: Bearer <key>`)")]
    Unauthorized,
    #[error("{0}")]
    NotFound(String),
    #[error("the embedding queue is full ({0} requests waiting); retry shortly")]
    Overloaded(usize),
    #[error("{0} ingest jobs are queued or running already (the limit, --max-ingest-jobs plus --max-queued-jobs); retry when one has finished")]
    TooManyJobs(usize),
    #[error("the request took longer than {0:?}; retry, or send fewer or shorter inputs")]
    Timeout(std::time::Duration),
    #[error("the model is still loading; retry when GET /health answers 200")]
    NotReady,
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The model thread failed; the server answers 503 until it is healthy again.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Conflict(String),
    #[error("this route does not take that method (see GET /openapi.json)")]
    MethodNotAllowed,
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Overloaded(_) | Self::TooManyJobs(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Timeout(_) | Self::NotReady | Self::ShuttingDown | Self::Unavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::BadRequest(_) | Self::Validation(_) => "validation",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::Unauthorized => "unauthorized",
            Self::NotFound(_) => "not_found",
            Self::Overloaded(_) | Self::TooManyJobs(_) => "overloaded",
            Self::Timeout(_) => "timeout",
            Self::NotReady | Self::ShuttingDown => "not_ready",
            Self::Unavailable(_) => "unavailable",
            Self::Conflict(_) => "conflict",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Internal(_) => "internal",
        }
    }
}

impl ApiError {
    /// What a client (HTTP or MCP) is told: the error itself, except an internal one, which is
    /// logged in full and answered with a generic text (its detail can name files, URIs or
    /// library internals).
    pub fn public_message(&self) -> String {
        if let Self::Internal(detail) = self {
            tracing::error!(%detail, "internal error");
            "internal error (see the server log)".to_string()
        } else {
            self.to_string()
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let error = self.public_message();
        let body = ErrorBody {
            error,
            kind: self.kind(),
        };
        let mut response = (status, axum::Json(body)).into_response();
        if matches!(
            self,
            Self::Overloaded(_) | Self::Timeout(_) | Self::NotReady
        ) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<crate::batcher::QueueError> for ApiError {
    fn from(e: crate::batcher::QueueError) -> Self {
        use crate::batcher::QueueError as Q;
        match e {
            Q::Full(capacity) => Self::Overloaded(capacity),
            Q::Closed => Self::ShuttingDown,
            Q::Panicked(_) => Self::Unavailable(e.to_string()),
            Q::Model(m) => m.into(),
        }
    }
}

/// Every variant is named (no fallback arm), so a new error kind needs a decision on its status.
impl From<fathom_model::ModelError> for ApiError {
    fn from(e: fathom_model::ModelError) -> Self {
        use fathom_model::ModelError as M;
        match e {
            // What a request asked for that this model cannot do.
            M::InputTooLong { .. }
            | M::UnknownPrompt { .. }
            | M::BadDimensions { .. }
            | M::Tokenizer(_) => Self::Validation(e.to_string()),
            // Loading and running the model: the server's own configuration or a fault.
            M::MissingFile { .. }
            | M::Io { .. }
            | M::Json { .. }
            | M::UnsupportedArchitecture { .. }
            | M::Unsupported(_)
            | M::BadConfig { .. }
            | M::BadWeights { .. }
            | M::BadPrecision(_)
            | M::PrecisionUnavailable(_)
            | M::NoSuchFolder(_)
            | M::BadModelId(_)
            | M::Hub { .. }
            | M::OfflineMiss { .. }
            | M::BadMaxSeqLength(_)
            | M::BadDevice(_)
            | M::DeviceUnavailable(_)
            | M::WrongKind { .. }
            | M::Candle(_) => Self::Internal(e.to_string()),
        }
    }
}

impl From<fathom_store::StoreError> for ApiError {
    fn from(e: fathom_store::StoreError) -> Self {
        use fathom_store::StoreError as S;
        match e {
            S::NoSuchCollection { .. } => Self::NotFound(e.to_string()),
            S::BadCollectionName(_)
            | S::BadFilter(_)
            | S::BadVector { .. }
            | S::MissingQuery { .. }
            | S::NoTextIndex => Self::Validation(e.to_string()),
            S::ModelMismatch { .. } | S::NotFathom { .. } | S::Schema { .. } => {
                Self::Conflict(e.to_string())
            }
            // The store itself (object storage unreachable, no permission): try again later.
            S::Storage { .. } => Self::Unavailable(e.to_string()),
            S::Io { .. } | S::CreatedOver { .. } | S::Lance(_) | S::Arrow(_) => {
                Self::Internal(e.to_string())
            }
        }
    }
}

impl From<fathom_ingest::IngestError> for ApiError {
    fn from(e: fathom_ingest::IngestError) -> Self {
        use fathom_ingest::{EmbedError, IngestError as I};
        match e {
            I::Embed(EmbedError::Model(m)) => m.into(),
            I::Embed(EmbedError::Unavailable(_)) => Self::Unavailable(e.to_string()),
            I::Store(s) => s.into(),
            I::Walk(_) | I::BadChunkSize { .. } => Self::Validation(e.to_string()),
            I::Watch { .. } | I::Incomplete { .. } => Self::Internal(e.to_string()),
        }
    }
}

/// JSON bodies whose rejections (bad syntax, wrong fields, too large) are [`ApiError`]s, so that
/// they too answer `{"error", "type"}`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::rejection::JsonRejection;
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(match &rejection {
                JsonRejection::BytesRejection(_)
                    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE =>
                {
                    ApiError::PayloadTooLarge(
                        "the request body is larger than this server accepts (see `limits.max_body_bytes` in GET /info); send fewer or shorter inputs".to_string(),
                    )
                }
                JsonRejection::JsonDataError(_) => ApiError::Validation(rejection.body_text()),
                _ => ApiError::BadRequest(rejection.body_text()),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_details_never_reach_a_client() {
        let secret = ApiError::Internal("lance: /srv/private/store/_versions/3.manifest".into());
        let shown = secret.public_message();
        assert!(!shown.contains("/srv/private"), "{shown}");
        assert_eq!(shown, "internal error (see the server log)");
        // The MCP tools answer with the same text as HTTP.
        assert_eq!(crate::mcp::tool_error(secret), shown);
        let bad = ApiError::BadRequest("`k` must be at least 1".into());
        assert_eq!(bad.public_message(), bad.to_string());
    }
}
