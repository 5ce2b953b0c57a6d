//! What the server does, free of any transport: HTTP routes (`routes/`) and the MCP tools
//! (`mcp.rs`) turn their requests into these calls and their results into responses, and the
//! folder watch (`watch.rs`) calls them too. Nothing here knows of axum or rmcp; errors are
//! [`ApiError`](crate::error::ApiError)s, which each transport maps once (HTTP statuses, MCP
//! tool errors).

pub mod ingest;
pub mod models;
pub mod search;
