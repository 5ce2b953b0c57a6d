//! Tools for agents over the Model Context Protocol (the official Rust SDK, `rmcp`): `fathom mcp`
//! serves them over stdio, `fathom serve` at `/mcp` (streamable HTTP, stateless, behind the
//! same API key as every other route). Each tool does what the matching HTTP route does, with
//! the same limits, queue and timeouts; a failure is a tool error whose text says what to change.

use std::sync::Arc;

use fathom_store::SearchMode;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{Implementation, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{tool, tool_handler, tool_router, Json, ServerHandler, ServiceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::jobs::JobStatus;
use crate::service::ingest::{resolve_under_roots, start_job};
use crate::service::search::SearchParams;
use crate::state::AppState;

/// Most passages one `search` call returns to an agent (the HTTP route allows more).
const MAX_K: u32 = 100;
/// Most neighbours `get_chunk` returns on each side.
const MAX_NEIGHBOURS: u32 = 5;
/// Most sources `list_sources` returns in one call.
const MAX_SOURCES: usize = 1000;

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Meaning and keywords fused (reciprocal rank fusion): the best default.
    Hybrid,
    /// Meaning only: finds paraphrases and related wording.
    Vector,
    /// Exact words only (BM25): names, codes, identifiers.
    Text,
}

impl From<Mode> for SearchMode {
    fn from(mode: Mode) -> Self {
        match mode {
            Mode::Hybrid => SearchMode::Hybrid,
            Mode::Vector => SearchMode::Vector,
            Mode::Text => SearchMode::Text,
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SearchArgs {
    /// What to look for: a question or keywords, in natural language.
    pub query: String,
    /// How many passages to return, 1 to 100 (default 10).
    pub k: Option<u32>,
    /// `hybrid` (default), `vector` (meaning) or `text` (exact words).
    pub mode: Option<Mode>,
    /// Conditions every passage must meet: `source:PREFIX` (a path prefix such as `docs/`),
    /// `source:GLOB` (with * and ?), `source=ID` (one document), `meta.KEY=VALUE`.
    #[serde(default)]
    pub filters: Vec<String>,
    /// The collection to search (default: the server's default; see `list_collections`).
    pub collection: Option<String>,
    /// Reorder the candidates with the server's reranker (a cross-encoder; more precise, slower).
    /// Default: on when the server runs one.
    pub rerank: Option<bool>,
}

/// One passage found: where it is (source and offsets in its text), the text and its score.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Passage {
    /// The document id, or the file's path under the ingested folder.
    pub source: String,
    /// Position of the passage among its source's chunks (for `get_chunk`).
    pub chunk_index: u32,
    /// Character offsets of the passage in its source's text.
    pub char_start: u64,
    pub char_end: u64,
    pub text: String,
    /// Higher is better; comparable within one search only.
    pub score: f32,
    /// The document's metadata, when it was given one.
    pub metadata: Option<serde_json::Value>,
    /// Where in its document the passage is, as a person would cite it: "p. 12", "slide 3",
    /// "sheet Q3, row 40", "message 7: Subject", "cell 4", "chapter 2: Title".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

impl From<fathom_store::Hit> for Passage {
    fn from(h: fathom_store::Hit) -> Self {
        Self {
            source: h.source_id,
            chunk_index: h.chunk_index,
            char_start: h.char_start,
            char_end: h.char_end,
            text: h.text,
            score: h.score,
            metadata: h.metadata,
            location: h.location.map(|l| l.label()),
        }
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Passages {
    pub passages: Vec<Passage>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CollectionSummary {
    pub name: String,
    /// The model its vectors come from (searches embed with the server's model, which must match).
    pub model: String,
    pub chunks: usize,
    pub sources: usize,
    /// When it was last written (RFC 3339).
    pub updated_at: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Collections {
    pub collections: Vec<CollectionSummary>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListSourcesArgs {
    /// The collection (default: the server's default).
    pub collection: Option<String>,
    /// Only sources whose id starts with this (a folder such as `docs/`).
    pub prefix: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SourceSummary {
    pub source: String,
    pub chunks: usize,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Sources {
    pub sources: Vec<SourceSummary>,
    /// More sources matched than were returned (narrow with `prefix`).
    pub truncated: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GetChunkArgs {
    /// The source of a passage, as `search` returned it.
    pub source: String,
    /// The passage's `chunk_index`.
    pub chunk_index: u32,
    /// Also return this many chunks before and after it, 0 to 5 (default 0), for context.
    pub neighbours: Option<u32>,
    /// The collection (default: the server's default).
    pub collection: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct IngestArgs {
    /// A folder on the server, inside one of its ingest roots (relative paths start at the first
    /// root).
    pub path: String,
    /// The collection to write (default: the server's default).
    pub collection: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GetJobArgs {
    /// The job id `ingest` returned.
    pub id: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Job {
    pub id: String,
    /// queued, running, done, cancelled or failed.
    pub state: String,
    pub files_to_read: usize,
    pub files_read: usize,
    pub chunks_embedded: usize,
    /// Once finished: counts of added, updated, deleted and unchanged sources, and problems.
    pub summary: Option<serde_json::Value>,
    pub error: Option<String>,
}

impl From<JobStatus> for Job {
    fn from(s: JobStatus) -> Self {
        Self {
            id: s.id,
            state: serde_json::to_value(s.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            files_to_read: s.files_to_read,
            files_read: s.files_read,
            chunks_embedded: s.chunks_embedded,
            summary: s.summary.and_then(|s| serde_json::to_value(s).ok()),
            error: s.error,
        }
    }
}

/// The MCP server: the tools over one server state.
#[derive(Debug, Clone)]
pub struct FathomMcp {
    state: AppState,
    tool_router: ToolRouter<Self>,
}

/// What an agent sees of an error: the same message the HTTP API gives (internal details are
/// logged, not returned).
pub(crate) fn tool_error(e: ApiError) -> String {
    e.public_message()
}

#[tool_router(router = read_tools)]
impl FathomMcp {
    #[tool(
        description = "Search the indexed documents for passages relevant to a query. Returns the best passages with their source (file path or document id), offsets, text and score. Use this first to find information; use get_chunk to read around a passage.",
        annotations(read_only_hint = true)
    )]
    async fn search(
        &self,
        Parameters(a): Parameters<SearchArgs>,
    ) -> Result<Json<Passages>, String> {
        let k = a.k.unwrap_or(10);
        if !(1..=MAX_K).contains(&k) {
            return Err(format!("`k` must be between 1 and {MAX_K}, got {k}"));
        }
        let params = SearchParams {
            k: k as usize,
            mode: a.mode.map(SearchMode::from).unwrap_or_default(),
            filters: a.filters,
            collection: a.collection,
            rerank: a.rerank.unwrap_or(self.state.rerankers().first().is_some()),
            ..SearchParams::new(a.query)
        };
        let hits = crate::service::search::run(&self.state, params)
            .await
            .map_err(tool_error)?;
        Ok(Json(Passages {
            passages: hits.into_iter().map(Passage::from).collect(),
        }))
    }

    #[tool(
        description = "List the collections (separately indexed sets of documents) with their model, number of chunks and sources, and when each was last updated.",
        annotations(read_only_hint = true)
    )]
    async fn list_collections(&self) -> Result<Json<Collections>, String> {
        let all = self
            .state
            .store
            .collections()
            .await
            .map_err(|e| tool_error(e.into()))?;
        Ok(Json(Collections {
            collections: all
                .into_iter()
                .map(|c| CollectionSummary {
                    name: c.name,
                    model: c.model.model,
                    chunks: c.stats.chunks,
                    sources: c.stats.sources,
                    updated_at: c.stats.updated_at,
                })
                .collect(),
        }))
    }

    #[tool(
        description = "List the sources (files or documents) in a collection with their number of chunks, optionally only those under a path prefix. At most 1000 are returned.",
        annotations(read_only_hint = true)
    )]
    async fn list_sources(
        &self,
        Parameters(a): Parameters<ListSourcesArgs>,
    ) -> Result<Json<Sources>, String> {
        let collection = self
            .state
            .existing_collection(a.collection.as_deref())
            .await
            .map_err(tool_error)?;
        let all = collection
            .sources()
            .await
            .map_err(|e| tool_error(e.into()))?;
        let prefix = a.prefix.unwrap_or_default();
        let mut matching = all
            .into_iter()
            .filter(|s| s.source_id.starts_with(&prefix))
            .map(|s| SourceSummary {
                source: s.source_id,
                chunks: s.chunks,
            });
        let sources: Vec<SourceSummary> = matching.by_ref().take(MAX_SOURCES).collect();
        Ok(Json(Sources {
            sources,
            truncated: matching.next().is_some(),
        }))
    }

    #[tool(
        description = "Read one chunk of a source by its index (as search returned it), with up to 5 neighbouring chunks on each side for context.",
        annotations(read_only_hint = true)
    )]
    async fn get_chunk(
        &self,
        Parameters(a): Parameters<GetChunkArgs>,
    ) -> Result<Json<Passages>, String> {
        let around = a.neighbours.unwrap_or(0);
        if around > MAX_NEIGHBOURS {
            return Err(format!(
                "`neighbours` must be between 0 and {MAX_NEIGHBOURS}, got {around}"
            ));
        }
        let collection = self
            .state
            .existing_collection(a.collection.as_deref())
            .await
            .map_err(tool_error)?;
        let first = a.chunk_index.saturating_sub(around);
        let last = a.chunk_index.saturating_add(around);
        let chunks = collection
            .chunks(&a.source, first..=last)
            .await
            .map_err(|e| tool_error(e.into()))?;
        if !chunks.iter().any(|c| c.chunk_index == a.chunk_index) {
            return Err(format!(
                "no chunk {} in source `{}` of collection `{}` (see list_sources, or use what search returned)",
                a.chunk_index,
                a.source,
                collection.name()
            ));
        }
        Ok(Json(Passages {
            passages: chunks.into_iter().map(Passage::from).collect(),
        }))
    }
}

#[tool_router(router = ingest_tools)]
impl FathomMcp {
    #[tool(
        description = "Index (or re-sync) a folder on the server into a collection: new and changed files are embedded, deleted ones removed. Only folders inside the server's ingest roots are allowed. Returns a job; follow it with get_job."
    )]
    async fn ingest(&self, Parameters(a): Parameters<IngestArgs>) -> Result<Json<Job>, String> {
        let folder =
            resolve_under_roots(&a.path, &self.state.config.ingest_roots).map_err(tool_error)?;
        let collection = self
            .state
            .collection(a.collection.as_deref())
            .await
            .map_err(tool_error)?;
        let status = start_job(
            &self.state,
            a.path,
            folder,
            collection,
            Vec::new(),
            Vec::new(),
        )
        .map_err(tool_error)?;
        Ok(Json(status.into()))
    }

    #[tool(
        description = "Progress of an ingest job (files read, chunks embedded) and, once finished, its summary.",
        annotations(read_only_hint = true)
    )]
    async fn get_job(&self, Parameters(a): Parameters<GetJobArgs>) -> Result<Json<Job>, String> {
        self.state
            .jobs
            .status(&a.id)
            .map(|s| Json(s.into()))
            .ok_or_else(|| format!("no job `{}`", a.id))
    }
}

impl FathomMcp {
    /// The tools over `state`; `ingest` and `get_job` only when the server has ingest roots.
    pub fn new(state: AppState) -> Self {
        let mut tool_router = Self::read_tools();
        if !state.config.ingest_roots.is_empty() {
            tool_router += Self::ingest_tools();
        }
        Self { state, tool_router }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for FathomMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("fathom", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "fathom searches the user's local documents. Call `search` with a question to get \
                 relevant passages (source path, text, score); read more around a passage with \
                 `get_chunk`; see what is indexed with `list_collections` and `list_sources`.",
            )
    }
}

/// The `/mcp` route: stateless streamable HTTP with JSON answers (no session to keep, so any
/// replica can answer any request). `any_host`: accept any `Host` header (the server listens
/// beyond loopback); otherwise only localhost names, against DNS rebinding.
pub fn http_service(
    state: AppState,
    any_host: bool,
) -> StreamableHttpService<FathomMcp, LocalSessionManager> {
    let mut config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true);
    if any_host {
        config = config.disable_allowed_hosts();
    }
    StreamableHttpService::new(
        move || Ok(FathomMcp::new(state.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    )
}

/// Serves the tools over stdin/stdout until stdin closes (`fathom mcp`).
pub async fn serve_stdio(state: AppState) -> std::io::Result<()> {
    let running = FathomMcp::new(state)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(std::io::Error::other)?;
    running.waiting().await.map_err(std::io::Error::other)?;
    Ok(())
}
