//! Helpers shared by the end-to-end tests: where the repository, the real model and the fixtures
//! are (one definition, in `fathom-testkit`).
#![allow(dead_code, unused_imports)]

pub use fathom_testkit::{fixtures, minilm, repo_root};
