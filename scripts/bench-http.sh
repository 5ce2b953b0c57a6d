#!/usr/bin/env bash
# HTTP load bench of `fathom serve`: single-text POST /embed requests (SciFact documents) at
# concurrency 1, 8, 32 and 128 against in-process embed throughput of the same texts, same run.
# Add `--soak 600` for the 10-minute memory soak (RSS at start and end).
#
#   scripts/bench-http.sh [--limit N] [--concurrency 1,8,32,128] [--soak SECONDS]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fathom/target}"
scripts/fetch-model.sh >/dev/null
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
cargo bench --bench http_load -- "$@"
