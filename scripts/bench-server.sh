#!/usr/bin/env bash
# The server under load and abuse: upserts vs batches, /embed during ingest, search during
# commits, every limit over its bound, shutdown with a slow client. See scripts/bench_server.py.
#
#   scripts/bench-server.sh [--only upserts,embed,search,abuse,shutdown] [--docs N]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
scripts/fetch-model.sh >&2
cargo build --release --bin fathom >&2
exec python3 scripts/bench_server.py "$@"
