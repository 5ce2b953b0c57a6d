#!/usr/bin/env bash
# How long from a file save to the change being searchable, with `fathom serve --watch`: p50 and
# max over 20 edits. See scripts/bench_watch.py.
#
#   scripts/bench-watch.sh [--edits N] [--quiet SECONDS]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
scripts/fetch-model.sh >&2
cargo build --release --bin fathom >&2
exec python3 scripts/bench_watch.py "$@"
