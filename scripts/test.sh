#!/usr/bin/env bash
# Runs every test: formatting, clippy (warnings are errors), and the whole workspace's tests with the
# real model. Everything builds with the release profile, so the dependency tree compiles once.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fathom/target}"

scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --release --workspace --all-targets -- -D warnings
cargo test --release --workspace
# The pure-Rust matrix-product path (builds without the default `openblas` feature).
cargo test --release -p fathom-model --lib
