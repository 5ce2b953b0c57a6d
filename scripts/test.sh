#!/usr/bin/env bash
# Runs every test: formatting, clippy (warnings are errors), and the whole workspace's tests with the
# real model. Everything builds once, with the release profile.
#
# Clippy runs inside that one build: cargo's RUSTC_WORKSPACE_WRAPPER hands the workspace's own
# crates to clippy-driver (what `cargo clippy` itself does), so the large dependency tree (lance,
# datafusion, candle) is not compiled a second time in check mode just for linting.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# The target directory is the one `cargo run` uses (./target unless CARGO_TARGET_DIR says
# otherwise), so that running the README's run command and this compiles everything once.

scripts/setup.sh
cargo fmt --all -- --check
# Unused dependencies stay out: cargo-machete reads each crate's sources for its dependencies.
command -v cargo-machete >/dev/null 2>&1 || cargo install --locked --quiet cargo-machete@0.9.2
cargo machete

clippy_driver="$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver || true)"
if [ -n "$clippy_driver" ]; then
  export RUSTC_WORKSPACE_WRAPPER="$clippy_driver"
  export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
else
  echo "test: clippy-driver not found; building without lints" >&2
fi
cargo test --release --workspace --all-targets --no-run
cargo test --release --workspace
# The pure-Rust matrix-product path (fathom-model without the default `openblas` feature).
cargo test --release -p fathom-model --lib
# The Python package (crates/python: PyO3 + maturin, model only) in its own target directory, so
# it neither waits for nor rebuilds lance: wheel, install into the test venv, pytest.
unset RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS
CARGO_TARGET_DIR="${FATHOM_PY_TARGET_DIR:-$HOME/.cache/fathom/py-target}" scripts/test-python.sh
