//! What the service is configured with. The CLI (`fathom serve`) fills this from flags and
//! `FATHOM_*` variables; tests build it directly.

use std::path::PathBuf;
use std::time::Duration;

/// Limits and switches of one server. [`ServerConfig::default`] is what `fathom serve` runs with.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The store folder (or object-store URI) holding the collections.
    pub store: String,
    /// Storage options and read consistency for the store.
    pub store_options: fathom_store::StoreOptions,
    /// The collection used when a request names none.
    pub default_collection: String,
    /// `Some`: every route but `/health` needs `Authorization: Bearer <key>`.
    pub api_key: Option<String>,
    /// Folders that `POST /ingest` may read (a requested path must lie inside one of them).
    /// Empty: `POST /ingest` is refused.
    pub ingest_roots: Vec<IngestRoot>,
    /// Let ingest jobs read hidden and git-ignored files (off: a request's globs cannot reach
    /// `.env` or what `.gitignore` keeps out).
    pub ingest_hidden: bool,
    /// Ingest jobs that run at once; more wait in a queue of `max_queued_jobs`, and beyond that
    /// `POST /ingest` is 429.
    pub max_ingest_jobs: usize,
    pub max_queued_jobs: usize,
    /// Where and within what budget ingest jobs parse PDFs.
    pub parse: fathom_ingest::ParseLimits,
    /// Largest request body accepted (413 beyond it).
    pub max_body_bytes: usize,
    /// Most inputs in one embed request, or documents in one upsert (422 beyond it).
    pub max_inputs: usize,
    /// Bytes of text in one document of `POST /documents` (413 beyond it).
    pub max_document_bytes: usize,
    /// Bytes of one document's metadata as JSON (413 beyond it). Each chunk row carries it while
    /// a write is under way (on disk, lance keeps one copy per document), so this bounds a write's memory.
    pub max_metadata_bytes: usize,
    /// Filters in one search, and bytes in one filter (422 beyond them).
    pub max_filters: usize,
    pub max_filter_bytes: usize,
    /// How long a client may take to send a request body.
    pub read_timeout: Duration,
    /// How long shutdown waits for requests in flight before it drops their connections.
    pub shutdown_deadline: Duration,
    /// Requests that may wait for the model at once (429 with `Retry-After` beyond it).
    pub queue_capacity: usize,
    /// Token budget of the batches the queue hands to the model.
    pub batch_tokens: usize,
    /// How long a request may wait for the model or the store (503 `timeout` beyond it).
    pub request_timeout: Duration,
    /// Origins allowed by CORS; empty: no CORS headers; `*`: any origin.
    pub cors_origins: Vec<String>,
    /// Folders kept in step with a collection (`--watch`).
    pub watches: Vec<WatchedFolder>,
    /// How long a watched folder must be quiet after a change before it is synced.
    pub watch_quiet: Duration,
    /// `/mcp` answers requests whatever their `Host` header (the server listens beyond
    /// loopback); otherwise only to localhost names, against DNS rebinding.
    pub mcp_any_host: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            store: fathom_store::DEFAULT_STORE.to_string(),
            store_options: fathom_store::StoreOptions::default(),
            default_collection: fathom_store::DEFAULT_COLLECTION.to_string(),
            api_key: None,
            ingest_roots: Vec::new(),
            ingest_hidden: false,
            max_ingest_jobs: 2,
            max_queued_jobs: 16,
            parse: fathom_ingest::ParseLimits::default(),
            max_body_bytes: 2 * 1024 * 1024,
            max_inputs: 512,
            max_document_bytes: 1024 * 1024,
            max_metadata_bytes: 8 * 1024,
            max_filters: 16,
            max_filter_bytes: 1024,
            shutdown_deadline: Duration::from_secs(30),
            read_timeout: Duration::from_secs(30),
            queue_capacity: 1024,
            batch_tokens: 16_384,
            request_timeout: Duration::from_secs(60),
            cors_origins: Vec::new(),
            watches: Vec::new(),
            watch_quiet: fathom_ingest::DEFAULT_QUIET,
            mcp_any_host: false,
        }
    }
}

/// A folder `POST /ingest` may read, and the name its files' source ids start with (`name/…`),
/// so that two roots never share an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestRoot {
    pub name: String,
    pub path: PathBuf,
}

impl IngestRoot {
    /// `NAME=DIR`, or `DIR` (named by its last component).
    pub fn parse(spec: &str) -> Result<Self, String> {
        Self::parse_for(spec, "--ingest-root")
    }

    /// [`IngestRoot::parse`] for another flag with the same `[NAME=]DIR` form (`--watch`), which
    /// errors name.
    pub fn parse_for(spec: &str, flag: &str) -> Result<Self, String> {
        let (name, path) = match spec.split_once('=') {
            Some((name, path)) if !name.is_empty() && !name.contains('/') => {
                (name.to_string(), PathBuf::from(path))
            }
            _ => {
                let path = PathBuf::from(spec);
                let name = std::path::absolute(&path)
                    .ok()
                    .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .ok_or_else(|| format!("{flag} `{spec}` has no name: give one as NAME=DIR"))?;
                (name, path)
            }
        };
        Ok(Self { name, path })
    }

    /// Checks that the roots are folders with distinct names.
    pub fn check_all(roots: &[IngestRoot]) -> Result<(), String> {
        Self::check_all_for(roots, "--ingest-root")
    }

    /// [`IngestRoot::check_all`] for the folders of another flag (`--watch`), which errors name.
    pub fn check_all_for(roots: &[IngestRoot], flag: &str) -> Result<(), String> {
        let mut names = std::collections::HashSet::new();
        for root in roots {
            if !root.path.is_dir() {
                return Err(format!("{flag} `{}` is not a folder", root.path.display()));
            }
            if !names.insert(root.name.as_str()) {
                return Err(format!(
                    "two {flag} folders are named `{}`: name them apart with NAME=DIR",
                    root.name
                ));
            }
        }
        Ok(())
    }
}

/// Whether `name` can name a collection or a served model on the command line: not empty, ASCII
/// letters, digits, `-`, `_` and `.` only (so never part of a path or a hub id).
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// A folder the server watches, and the collection it goes to (the default one when `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedFolder {
    pub root: IngestRoot,
    pub collection: Option<String>,
}

impl WatchedFolder {
    /// `[NAME=]DIR[:COLLECTION]`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let (folder, collection) = match spec.rsplit_once(':') {
            Some((dir, name)) if !dir.is_empty() && is_plain_name(name) => {
                (dir, Some(name.to_string()))
            }
            _ => (spec, None),
        };
        let root = IngestRoot::parse_for(folder, "--watch")?;
        Ok(Self { root, collection })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_name_a_folder_and_maybe_a_collection() {
        let w = WatchedFolder::parse("notes=/srv/notes:kb").unwrap();
        assert_eq!(w.root.name, "notes");
        assert_eq!(w.root.path, PathBuf::from("/srv/notes"));
        assert_eq!(w.collection.as_deref(), Some("kb"));
        let w = WatchedFolder::parse("/srv/notes").unwrap();
        assert_eq!(w.root.name, "notes");
        assert_eq!(w.collection, None);
        // A colon followed by something that cannot be a collection name stays in the path.
        let w = WatchedFolder::parse("/srv/a:b/c").unwrap();
        assert_eq!(w.root.path, PathBuf::from("/srv/a:b/c"));
        assert_eq!(w.collection, None);
    }
}
