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
# The README's run command builds these units (`cargo run --release`); the test build below must
# reuse them. A change that makes the tests compile lance a second time (a dev-dependency that
# turns on another feature of a crate under lance) would double a cold CI run: that fails here.
cargo build --release
log="$(mktemp)"
cargo test --release --workspace --all-targets --no-run 2>&1 | tee "$log"
if grep -E '^\s+Compiling (lance|lance-[a-z-]+|datafusion|datafusion-[a-z-]+|arrow-[a-z-]+) v' "$log"; then
  echo "test: the test build compiled the crates above again after the run command's build:" >&2
  echo "test: a dev-dependency changed their features; keep the test build on the same units" >&2
  exit 1
fi
rm -f "$log"
cargo test --release --workspace
# The pure-Rust matrix-product path (fathom-kernels and fathom-model without the default
# `openblas` feature).
cargo test --release -p fathom-kernels -p fathom-model --lib
# The Python package (crates/python: PyO3 + maturin, model only) in its own target directory, so
# it neither waits for nor rebuilds lance: wheel, install into the test venv, pytest.
unset RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS
# fathom.ray's tests compare what Ray builds with what this build's `fathom ingest` builds.
export FATHOM_BIN="${CARGO_TARGET_DIR:-$root/target}/release/fathom"
CARGO_TARGET_DIR="${FATHOM_PY_TARGET_DIR:-$HOME/.cache/fathom/py-target}" scripts/test-python.sh
