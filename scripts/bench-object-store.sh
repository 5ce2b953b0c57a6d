#!/usr/bin/env bash
# The store on S3 (moto's server from the test venv, on loopback) against a local folder: ingest
# throughput and search latency, two --shard processes against one, replica visibility.
#
#   scripts/bench-object-store.sh [--docs N]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
scripts/setup.sh >&2
cargo build --release --bin fathom >&2
exec python3 scripts/bench_object_store.py "$@"
