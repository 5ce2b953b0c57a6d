//! Documents and collections: `POST /documents`, `DELETE /documents/{id}`, `GET /collections`,
//! `GET /collections/{name}/sources`.

use std::collections::HashSet;

use axum::extract::{Path, Query, State};
use axum::Json;
use fathom_ingest::{CancellationToken, Document, FolderOptions, Format};
use fathom_store::{CollectionInfo, SourceInfo};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::config::ServerConfig;
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
pub struct DocumentIn {
    /// Replaces whatever the collection holds under this id.
    pub id: String,
    pub text: String,
    /// A JSON object kept with the document and returned with each of its hits (filter with
    /// `meta.KEY=VALUE`).
    pub metadata: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpsertRequest {
    pub documents: Vec<DocumentIn>,
    pub collection: Option<String>,
    /// Which served embedder builds a new collection (`GET /v1/models`; default: the first). An
    /// existing collection keeps the one that built it; naming another is a 409.
    pub model: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UpsertResponse {
    pub added: usize,
    pub updated: usize,
    /// Documents whose text was already stored as is.
    pub unchanged: usize,
    pub chunks: usize,
    pub tokens: usize,
}

/// Chunk, embed and store documents (each replaces the chunks stored under its id).
#[utoipa::path(post, path = "/documents", request_body = UpsertRequest, tag = "documents",
    responses(
        (status = 200, body = UpsertResponse),
        (status = 409, description = "The collection was written by another model", body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
pub async fn upsert(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<UpsertRequest>,
) -> Result<Json<UpsertResponse>, ApiError> {
    check_documents(&req.documents, &state.config)?;
    let (collection, engine) = state
        .collection_with(req.collection.as_deref(), req.model.as_deref())
        .await?;
    let model = engine.bulk();
    let documents: Vec<Document> = req
        .documents
        .into_iter()
        .map(|d| Document {
            id: d.id,
            text: d.text,
            metadata: d.metadata,
            format: Format::Text,
        })
        .collect();
    let summary = fathom_ingest::upsert_documents(
        model,
        &collection,
        documents,
        &FolderOptions::default(),
        &|_| {},
        &CancellationToken::new(),
    )
    .await?;
    state.after_write(collection.clone());
    if let Some(problem) = summary.errors.first() {
        return Err(ApiError::Validation(format!(
            "document `{}`: {}",
            problem.path, problem.message
        )));
    }
    Ok(Json(UpsertResponse {
        added: summary.added,
        updated: summary.updated,
        unchanged: summary.unchanged,
        chunks: summary.chunks,
        tokens: summary.tokens,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct CollectionParam {
    /// Default: the server's default collection.
    pub collection: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeleteResponse {
    pub id: String,
    pub deleted_chunks: u64,
}

/// Delete a document (or ingested file) by id.
#[utoipa::path(delete, path = "/documents/{id}", tag = "documents",
    params(("id" = String, Path, description = "Document id or file path"), CollectionParam),
    responses((status = 200, body = DeleteResponse), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(param): Query<CollectionParam>,
) -> Result<Json<DeleteResponse>, ApiError> {
    let collection = state
        .existing_collection(param.collection.as_deref())
        .await?;
    let deleted_chunks = collection.delete_sources(std::slice::from_ref(&id)).await?;
    state.after_write(collection.clone());
    if deleted_chunks == 0 {
        return Err(ApiError::NotFound(format!(
            "no document `{id}` in collection `{}`",
            collection.name()
        )));
    }
    Ok(Json(DeleteResponse { id, deleted_chunks }))
}

/// Every collection in the store.
#[utoipa::path(get, path = "/collections", tag = "documents",
    responses((status = 200, body = Vec<CollectionInfo>)))]
pub async fn collections(
    State(state): State<AppState>,
) -> Result<Json<Vec<CollectionInfo>>, ApiError> {
    Ok(Json(state.store.collections().await?))
}

/// The sources (documents, files) of a collection with their chunk counts.
#[utoipa::path(get, path = "/collections/{name}/sources", tag = "documents",
    params(("name" = String, Path, description = "Collection name")),
    responses((status = 200, body = Vec<SourceInfo>), (status = 404, body = ErrorBody)))]
pub async fn sources(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Vec<SourceInfo>>, ApiError> {
    let collection = state.store.existing_collection(&name).await?;
    Ok(Json(collection.sources().await?))
}

/// What `POST /documents` refuses before any work: no documents, too many, an empty or repeated
/// id, an empty text, too much text or metadata, metadata that is not an object.
fn check_documents(documents: &[DocumentIn], limits: &ServerConfig) -> Result<(), ApiError> {
    if documents.is_empty() {
        return Err(ApiError::Validation(
            "`documents` is empty; send at least one {id, text}".into(),
        ));
    }
    if documents.len() > limits.max_inputs {
        return Err(ApiError::Validation(format!(
            "{} documents in one request; at most {} are accepted (split the request)",
            documents.len(),
            limits.max_inputs
        )));
    }
    let mut seen = HashSet::new();
    for d in documents {
        if d.id.is_empty() {
            return Err(ApiError::Validation("a document has an empty `id`".into()));
        }
        if !seen.insert(d.id.as_str()) {
            return Err(ApiError::Validation(format!(
                "document id `{}` appears twice in one request",
                d.id
            )));
        }
        if d.text.trim().is_empty() {
            return Err(ApiError::Validation(format!(
                "document `{}` has no text (to remove a document, DELETE /documents/{{id}})",
                d.id
            )));
        }
        if d.text.len() > limits.max_document_bytes {
            return Err(ApiError::PayloadTooLarge(format!(
                "document `{}` has {} bytes of text; at most {} are accepted (--max-document-bytes)",
                d.id,
                d.text.len(),
                limits.max_document_bytes
            )));
        }
        let metadata_bytes = d.metadata.as_ref().map_or(0, |m| m.to_string().len());
        if metadata_bytes > limits.max_metadata_bytes {
            return Err(ApiError::PayloadTooLarge(format!(
                "document `{}` has {metadata_bytes} bytes of metadata; at most {} are accepted (--max-metadata-bytes)",
                d.id, limits.max_metadata_bytes
            )));
        }
        if d.metadata.as_ref().is_some_and(|m| !m.is_object()) {
            return Err(ApiError::Validation(format!(
                "`metadata` of document `{}` must be a JSON object",
                d.id
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str, text: &str, metadata: Option<serde_json::Value>) -> DocumentIn {
        DocumentIn {
            id: id.into(),
            text: text.into(),
            metadata,
        }
    }

    /// Each refusal, checked without a model or a store: the error kind and the fault named.
    #[test]
    fn bad_documents_are_refused_before_any_work() {
        let limits = ServerConfig {
            max_inputs: 2,
            max_document_bytes: 10,
            max_metadata_bytes: 20,
            ..ServerConfig::default()
        };
        let fine = [
            doc("a", "some text", None),
            doc("b", "more", Some(serde_json::json!({"k": 1}))),
        ];
        assert!(check_documents(&fine, &limits).is_ok());
        let refused = |docs: &[DocumentIn], status: u16, says: &str| {
            let err = check_documents(docs, &limits).unwrap_err();
            assert_eq!(err.status().as_u16(), status, "{err}");
            assert!(err.to_string().contains(says), "{err} lacks {says:?}");
        };
        refused(&[], 422, "`documents` is empty");
        refused(
            &[
                doc("a", "x", None),
                doc("b", "x", None),
                doc("c", "x", None),
            ],
            422,
            "3 documents",
        );
        refused(&[doc("", "x", None)], 422, "empty `id`");
        refused(
            &[doc("a", "x", None), doc("a", "y", None)],
            422,
            "`a` appears twice",
        );
        refused(&[doc("a", " \n ", None)], 422, "`a` has no text");
        refused(&[doc("a", "eleven byte", None)], 413, "11 bytes of text");
        let big = serde_json::json!({"key": "a value past twenty bytes"});
        refused(&[doc("a", "x", Some(big))], 413, "bytes of metadata");
        refused(
            &[doc("a", "x", Some(serde_json::json!([1])))],
            422,
            "must be a JSON object",
        );
    }
}
