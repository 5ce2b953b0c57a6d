//! The handlers, one file per area of the API.

pub mod documents;
pub mod embed;
pub mod info;
pub mod ingest;
pub mod page;
pub mod rerank;
pub mod search;
