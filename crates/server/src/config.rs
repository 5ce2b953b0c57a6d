//! What the service is configured with. The CLI (`fathom serve`) fills this from flags and
//! `FATHOM_*` variables; tests build it directly.

use std::path::PathBuf;
use std::time::Duration;

/// Limits and switches of one server. [`ServerConfig::default`] is what `fathom serve` runs with.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The store folder (or object-store URI) holding the collections.
    pub store: String,
    /// The collection used when a request names none.
    pub default_collection: String,
    /// `Some`: every route but `/health` needs `Authorization: Bearer <key>`.
    pub api_key: Option<String>,
    /// Folders that `POST /ingest` may read (a requested path must lie inside one of them).
    /// Empty: `POST /ingest` is refused.
    pub ingest_roots: Vec<PathBuf>,
    /// Largest request body accepted (413 beyond it).
    pub max_body_bytes: usize,
    /// Most inputs in one embed request (422 beyond it).
    pub max_inputs: usize,
    /// Requests that may wait for the model at once (429 with `Retry-After` beyond it).
    pub queue_capacity: usize,
    /// Token budget of the batches the queue hands to the model.
    pub batch_tokens: usize,
    /// How long a request may wait for the model or the store (503 `timeout` beyond it).
    pub request_timeout: Duration,
    /// Origins allowed by CORS; empty: no CORS headers; `*`: any origin.
    pub cors_origins: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            store: fathom_store::DEFAULT_STORE.to_string(),
            default_collection: fathom_store::DEFAULT_COLLECTION.to_string(),
            api_key: None,
            ingest_roots: Vec::new(),
            max_body_bytes: 2 * 1024 * 1024,
            max_inputs: 512,
            queue_capacity: 1024,
            batch_tokens: 16_384,
            request_timeout: Duration::from_secs(60),
            cors_origins: Vec::new(),
        }
    }
}
