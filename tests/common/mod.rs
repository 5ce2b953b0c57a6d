//! Helpers shared by the end-to-end tests: where the repository and the real model are.
#![allow(dead_code)]

use std::path::PathBuf;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The real all-MiniLM-L6-v2 folder (scripts/fetch-model.sh). Missing is a failure, never a skip.
pub fn minilm() -> PathBuf {
    let dir = repo_root().join("models/all-MiniLM-L6-v2");
    assert!(
        dir.join("model.safetensors").is_file(),
        "run scripts/fetch-model.sh first"
    );
    dir
}

/// `../shared/fixtures` beside the repository (`FATHOM_SHARED` overrides `../shared`).
pub fn fixtures() -> PathBuf {
    let shared = std::env::var_os("FATHOM_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared"));
    let dir = shared.join("fixtures");
    assert!(
        dir.is_dir(),
        "fixtures not found at {} (set FATHOM_SHARED to the shared folder)",
        dir.display()
    );
    dir
}
