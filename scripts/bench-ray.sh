#!/usr/bin/env bash
# fathom.ray's throughput against `fathom ingest` on the same folder and machine, with one and
# with two Ray workers, and one worker's cost (model load, RSS). See scripts/bench_ray.py.
#
#   scripts/bench-ray.sh [--limit N]      (default 1000 SciFact documents; 0: all 5,183)
#
# Needs the Python package in the test venv (scripts/test-python.sh installs it, with ray and
# pylance from scripts/requirements-test.txt).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
limit=1000
[ "${1:-}" = "--limit" ] && limit="$2"
corpus="${FATHOM_SHARED:-$root/../shared}/data/scifact/corpus.jsonl"
venv="${FATHOM_TEST_VENV:-$HOME/.cache/fathom/test-venv}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fathom/target}"
scripts/fetch-model.sh >&2
cargo build --release -q
"$venv/bin/python" -c 'import fathom.ray' || {
  echo "bench-ray: the fathom package is not in $venv: run scripts/test-python.sh first" >&2
  exit 1
}
"$venv/bin/python" scripts/bench_ray.py "$CARGO_TARGET_DIR/release/fathom" "$corpus" "$limit" \
  "$root/models/all-MiniLM-L6-v2"
