//! `fathom-server` is the HTTP service: embeddings (`POST /embed`, compatible with
//! text-embeddings-inference, and `POST /v1/embeddings`, compatible with OpenAI's API), search
//! (`POST /search`), documents and collections, folder ingest jobs, health, info, Prometheus
//! metrics and an OpenAPI document.
//!
//! Requests for embeddings wait in one bounded queue in front of the model; a dedicated thread
//! merges whatever is waiting into batches under a token budget (the model sorts them by length
//! and packs them without padding), so concurrent clients share forward passes and the async
//! runtime never runs the model. A full queue answers 429 at once. Every error is JSON
//! `{"error", "type"}`.
//!
//! It leaves model internals to `fathom-model`, storage to `fathom-store` and reading folders
//! to `fathom-ingest`; the CLI (`fathom serve`) turns flags into a [`ServerConfig`].
//!
//! ```no_run
//! # async fn demo(model: std::sync::Arc<fathom_model::Embedder>) -> std::io::Result<()> {
//! use fathom_server::{serve, AppState, ServerConfig};
//! let state = AppState::new(ServerConfig::default());
//! state.install_model(model).expect("warm-up");
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! serve(listener, state, fathom_server::shutdown_signal()).await
//! # }
//! ```

#![forbid(unsafe_code)]

mod batcher;
mod config;
mod error;
mod jobs;
mod mcp;
mod metrics;
mod routes;
mod service;
mod side;
mod state;
mod watch;

use std::future::{Future, IntoFuture};

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;

pub use batcher::{Batcher, BulkEmbed, Embedded, QueueError};
pub use config::{is_plain_name, IngestRoot, ServerConfig, WatchedFolder};
pub use error::{ApiError, ErrorBody};
pub use jobs::{JobState, JobStatus};
pub use mcp::{serve_stdio as serve_mcp_stdio, FathomMcp};
pub use metrics::Metrics;
pub use side::SideModel;
pub use state::{AppState, Engine};

/// The OpenAPI description of every route (served at `/openapi.json`).
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "fathom",
        description = "Local embeddings and semantic search. Authenticate with `Authorization: Bearer <key>` when the server has an API key."
    ),
    paths(
        routes::embed::embed,
        routes::embed::openai_embeddings,
        routes::rerank::rerank,
        routes::rerank::cohere_rerank,
        routes::rerank::embed_sparse,
        routes::rerank::predict,
        routes::rerank::models,
        routes::search::search,
        routes::documents::upsert,
        routes::documents::delete,
        routes::documents::collections,
        routes::documents::sources,
        routes::ingest::start,
        routes::ingest::list,
        routes::ingest::status,
        routes::ingest::cancel,
        routes::info::health,
        routes::info::info,
        routes::info::metrics,
    )
)]
pub struct ApiDoc;

/// The router with every route and layer, for a socket ([`serve`]) or for tests (`oneshot`).
pub fn app(state: AppState) -> Router {
    let protected = Router::new()
        .route("/embed", post(routes::embed::embed))
        .route("/v1/embeddings", post(routes::embed::openai_embeddings))
        .route("/rerank", post(routes::rerank::rerank))
        .route("/v1/rerank", post(routes::rerank::cohere_rerank))
        .route("/embed_sparse", post(routes::rerank::embed_sparse))
        // text-embeddings-inference's root route (Hugging Face's InferenceClient posts there);
        // `GET /` stays the search page, outside the API key.
        .route("/", post(routes::rerank::predict))
        .route("/v1/models", get(routes::rerank::models))
        .route("/search", post(routes::search::search))
        .route("/documents", post(routes::documents::upsert))
        .route("/documents/{*id}", delete(routes::documents::delete))
        .route("/collections", get(routes::documents::collections))
        .route(
            "/collections/{name}/sources",
            get(routes::documents::sources),
        )
        .route("/ingest", post(routes::ingest::start))
        .route("/jobs", get(routes::ingest::list))
        .route(
            "/jobs/{id}",
            get(routes::ingest::status).delete(routes::ingest::cancel),
        )
        .route("/info", get(routes::info::info))
        .route("/metrics", get(routes::info::metrics))
        .route("/openapi.json", get(routes::info::openapi))
        .merge(
            Router::new()
                .nest_service(
                    "/mcp",
                    mcp::http_service(state.clone(), state.config.mcp_any_host),
                )
                .layer(middleware::from_fn_with_state(
                    state.clone(),
                    limit_raw_body,
                )),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_api_key,
        ));
    let mut router = Router::new()
        .route("/health", get(routes::info::health))
        .route("/", get(routes::page::index))
        .route("/app.js", get(routes::page::script))
        .route("/style.css", get(routes::page::style))
        .merge(protected)
        .fallback(|| async { ApiError::NotFound("no such route (see GET /openapi.json)".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track,
        ))
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        // A client that sends its body slower than this is cut off (408), not waited for.
        .layer(RequestBodyTimeoutLayer::new(state.config.read_timeout))
        .layer(CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                ApiError::Internal("a handler panicked".into()).into_response()
            },
        ))
        // Failures are logged where they happen (internal errors by ApiError); 4xx/503 answers
        // are the client's business, not error-level log lines.
        .layer(TraceLayer::new_for_http().on_failure(()));
    if let Some(cors) = cors_layer(&state.config.cors_origins) {
        router = router.layer(cors);
    }
    router.with_state(state)
}

fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods(tower_http::cors::Any)
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE]),
    )
}

/// `--max-body-bytes` for a route served by a tower service rather than axum extractors (which
/// check it through `DefaultBodyLimit`): the body is read up to the limit, and a larger one is
/// refused with 413 before the service sees it.
async fn limit_raw_body(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let limit = state.config.max_body_bytes;
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|e| {
        let e = e.into_inner();
        if e.is::<http_body_util::LengthLimitError>() {
            ApiError::PayloadTooLarge(format!(
                "the request body is larger than {limit} bytes (--max-body-bytes)"
            ))
        } else {
            ApiError::BadRequest(format!("reading the request body: {e}"))
        }
    })?;
    Ok(next
        .run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await)
}

/// With an API key configured, every route behind this needs `Authorization: Bearer <key>`.
async fn require_api_key(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if let Some(key) = &state.config.api_key {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        // blake3::Hash compares in constant time.
        if blake3::hash(given.as_bytes()) != blake3::hash(key.as_bytes()) {
            return Err(ApiError::Unauthorized);
        }
    }
    Ok(next.run(request).await)
}

/// Serves `state` on `listener` until `shutdown` completes; then stops accepting, finishes the
/// requests in flight, stops ingest jobs at a source boundary and waits for them.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let jobs = state.jobs.clone();
    let stop_jobs = jobs.clone();
    let upkeep_state = state.clone();
    let upkeep = tokio::spawn(async move {
        let mut every = tokio::time::interval(UPKEEP_EVERY);
        every.tick().await;
        loop {
            every.tick().await;
            upkeep_state.upkeep_all().await;
        }
    });
    watch::spawn_watches(&state);
    let deadline = state.config.shutdown_deadline;
    let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
    // Replies go out as soon as they are written: no Nagle delay on a small JSON answer.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY not set on a connection: {e}");
        }
    });
    let served = axum::serve(listener, app(state))
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: finishing requests in flight, stopping ingest jobs");
            stop_jobs.cancel_all();
            let _ = stopping.send(());
        })
        .into_future();
    // A slow client must not hold shutdown forever: after the deadline its connection is dropped.
    let overdue = async move {
        if stopped.await.is_ok() {
            tokio::time::sleep(deadline).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    let served = tokio::select! {
        served = served => served,
        () = overdue => {
            tracing::warn!(?deadline, "shutdown deadline passed: dropping the connections still open");
            Ok(())
        }
    };
    upkeep.abort();
    served?;
    jobs.wait_all().await;
    Ok(())
}

/// How often a server compacts and cleans up the collections written since the last round.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
