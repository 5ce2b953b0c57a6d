#!/usr/bin/env bash
# Runs chosen tests N times in a row with every core kept busy by a CPU burner, to show that they
# wait on events rather than on guesses of how long something takes.
#
#   scripts/repeat-under-load.sh [-n N] [TEST-BINARY:FILTER ...]
#
# TEST-BINARY is a `cargo test --test` name (`cli`, `watch`, `store`, ...) or `server-lib` (the
# libraries' unit tests); FILTER picks tests within it. The last run's output is kept in $log
# (default /tmp/repeat-under-load.log). Without arguments, the
# tests that used to sleep to synchronize. Build first (scripts/test.sh or cargo test --no-run).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
n=10
if [ "${1:-}" = "-n" ]; then n="$2"; shift 2; fi
specs=("$@")
if [ ${#specs[@]} -eq 0 ]; then
  specs=(
    "cli:sigint_mid_ingest"
    "ingest_trust:kill_9"
    "watch:"
    "object_store:"
    "store:upkeep_compacts"
    "server-lib:jobs::"
  )
fi
cores="$(nproc)"
burners=()
for _ in $(seq "$cores"); do
  ( while :; do :; done ) &
  burners+=($!)
done
trap 'kill "${burners[@]}" 2>/dev/null || true' EXIT
echo "load: $cores busy loops on $cores cores"
failed=0
for spec in "${specs[@]}"; do
  binary="${spec%%:*}" filter="${spec#*:}"
  case "$binary" in
    # --workspace, never -p: a package on its own builds lance again with other features.
    server-lib) args=(--workspace --lib) ;;
    *) args=(--workspace --test "$binary") ;;
  esac
  start=$(date +%s)
  for i in $(seq "$n"); do
    if ! cargo test --release -q "${args[@]}" -- "$filter" >"${log:-/tmp/repeat-under-load.log}" 2>&1; then
      echo "FAILED: $spec, run $i of $n (log: ${log:-/tmp/repeat-under-load.log})"
      failed=1
      break
    fi
  done
  echo "$spec: $n runs, $(( $(date +%s) - start )) s"
done
exit "$failed"
