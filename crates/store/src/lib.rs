//! `fathom-store` keeps embedded chunks in lance datasets: one dataset per collection, in a folder
//! (default `./fathom-data`) or under any URI lance supports.
//!
//! It owns the schema (a row per chunk: stable chunk id, source id, source hash, chunk index, byte
//! and char offsets, text, optional JSON metadata, the vector), the atomic replacement of a
//! source's chunks (one lance commit per batch of sources, so readers never see half a file),
//! deletes, listing, and search: vector (cosine, exact or ANN), full-text (BM25 over lance's
//! inverted index) and hybrid (reciprocal rank fusion), with filters applied before the top-k.
//! A collection records the model that wrote it; opening it with another is an error.
//!
//! It does not embed or read files: callers hand it vectors and texts.
//!
//! ```no_run
//! # async fn demo() -> fathom_store::Result<()> {
//! use fathom_store::{ModelSpec, Store};
//! let store = Store::new("fathom-data");
//! let spec = ModelSpec { model: "sentence-transformers/all-MiniLM-L6-v2".into(), dimension: 384, normalized: true };
//! let collection = store.collection("default", &spec).await?;
//! println!("{} chunks", collection.stats().await?.chunks);
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod collection;
mod error;
mod filter;
mod options;
mod schema;
mod search;

pub use collection::{
    Clock, Collection, CollectionInfo, IndexPolicy, SourceInfo, Stats, Upkeep, UpkeepPolicy,
    WriteStats,
};
pub use error::{Result, StoreError};
pub use filter::Filter;
pub use options::StoreOptions;
pub use schema::{ChunkRecord, Location, ModelSpec, SourceChunks};
pub use search::{rerank_hits, Hit, SearchMode, SearchQuery};

use std::path::Path;
use std::sync::Arc;

/// The default store location, relative to the working directory.
pub const DEFAULT_STORE: &str = "fathom-data";
/// The default collection name.
pub const DEFAULT_COLLECTION: &str = "default";

/// A folder or an object-store URI (`s3://bucket/prefix`, `gs://…`, `az://…`) holding collections.
#[derive(Debug, Clone)]
pub struct Store {
    root: String,
    access: Arc<options::Access>,
}

impl Store {
    pub fn new(root: impl Into<String>) -> Self {
        Self::with_options(root, StoreOptions::default())
    }

    /// A store with lance storage options (endpoint, region, credentials…) and a read-consistency
    /// interval.
    pub fn with_options(root: impl Into<String>, options: StoreOptions) -> Self {
        let root = root.into();
        let access = Arc::new(options::Access::new(&root, options));
        Self { root, access }
    }

    pub fn options(&self) -> &StoreOptions {
        &self.access.options
    }

    pub fn root(&self) -> &str {
        &self.root
    }

    /// The local folder the store lives in; `None` on object storage.
    pub fn local_folder(&self) -> Option<std::path::PathBuf> {
        if options::is_object_store(&self.root) {
            return None;
        }
        let path = self.root.strip_prefix("file://").unwrap_or(&self.root);
        Some(std::path::PathBuf::from(path))
    }

    fn dataset_uri(&self, name: &str) -> String {
        format!("{}/{name}.lance", self.root.trim_end_matches('/'))
    }

    /// Opens (or prepares, if new) the collection `name` for the model `spec`. An existing
    /// collection written by another model, or with another dimension, is an error.
    pub async fn collection(&self, name: &str, spec: &ModelSpec) -> Result<Collection> {
        validate_name(name)?;
        Collection::open_or_prepare(name, &self.dataset_uri(name), Some(spec), &self.access).await
    }

    /// Opens an existing collection whatever model wrote it (for listing and deleting).
    pub async fn existing_collection(&self, name: &str) -> Result<Collection> {
        validate_name(name)?;
        let c =
            Collection::open_or_prepare(name, &self.dataset_uri(name), None, &self.access).await?;
        if !c.exists() {
            return Err(StoreError::NoSuchCollection {
                name: name.to_string(),
                store: self.root.clone(),
            });
        }
        Ok(c)
    }

    /// Every collection in the store, with its model and size.
    pub async fn collections(&self) -> Result<Vec<CollectionInfo>> {
        let mut names = if options::is_object_store(&self.root) {
            self.access.list(&self.root).await?
        } else {
            let dir = Path::new(&self.root);
            if !dir.exists() {
                return Ok(Vec::new());
            }
            let entries = std::fs::read_dir(dir).map_err(|source| StoreError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        };
        names.retain(|n| n.ends_with(".lance"));
        names.sort();
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let name = name.trim_end_matches(".lance");
            let c = self.existing_collection(name).await?;
            out.push(c.info().await?);
        }
        Ok(out)
    }
}

fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(StoreError::BadCollectionName(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn collection_names_are_plain() {
        assert!(super::validate_name("default").is_ok());
        assert!(super::validate_name("docs-2026_v1.2").is_ok());
        for bad in ["", "../x", "a/b", ".hidden", "sp ace"] {
            assert!(super::validate_name(bad).is_err(), "{bad}");
        }
    }
}
