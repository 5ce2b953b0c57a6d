use std::path::PathBuf;

/// Everything that can go wrong in the store. Messages say what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("collection `{name}` was written with model `{stored_model}` ({stored_dim} dimensions{stored_norm}); it cannot take vectors from `{model}` ({dim} dimensions{norm}). Use --collection to pick another collection, or the same model")]
    ModelMismatch {
        name: String,
        stored_model: String,
        stored_dim: usize,
        stored_norm: &'static str,
        model: String,
        dim: usize,
        norm: &'static str,
    },

    #[error("collection `{name}` does not exist in `{store}` (run `fathom ingest` first, or see `fathom collections`)")]
    NoSuchCollection { name: String, store: String },

    #[error("collection name `{0}` is not allowed (use letters, digits, '-', '_' and '.')")]
    BadCollectionName(String),

    #[error("`{path}` is a lance dataset that fathom did not write (no fathom metadata); pick another --collection")]
    NotFathom { path: String },

    #[error("vector of {got} dimensions for a collection of {want}")]
    BadVector { got: usize, want: usize },

    #[error("bad filter `{0}` (use source:PREFIX, source:GLOB with * and ?, source=ID, or meta.KEY=VALUE)")]
    BadFilter(String),

    #[error("{mode} search needs {needs}")]
    MissingQuery {
        mode: &'static str,
        needs: &'static str,
    },

    #[error("column `{column}` is not {expected} as fathom writes it; the collection was changed by another tool")]
    Schema {
        column: String,
        expected: &'static str,
    },

    #[error("full-text search needs the text index; run `fathom ingest` again to build it")]
    NoTextIndex,

    #[error("I/O on `{path}`: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("store `{uri}`: {hint}: {source}")]
    Storage {
        uri: String,
        hint: &'static str,
        #[source]
        source: lance::Error,
    },

    #[error("creating collection `{name}` committed version {version} instead of 1, over another writer's; their data is in the earlier versions (kept for a week), tell the fathom developers")]
    CreatedOver { name: String, version: u64 },

    #[error("lance: {0}")]
    Lance(#[from] lance::Error),

    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
