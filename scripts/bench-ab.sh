#!/usr/bin/env bash
# Two (or more) fathom binaries against each other on one `fathom ingest`, runs alternating so
# that the machine's drift (±15 % from minute to minute on the 2-core VMs here) falls on all of
# them alike. Prints, per binary, the median (min, max) docs/s by the ingest's own timing (the
# summary's `seconds`) and by the wall clock (process start and model load included), and the
# median CPU seconds (user + system).
#
#   scripts/bench-ab.sh N BIN_A BIN_B [BIN ...]
#
# DOCS (required): the folder to ingest, e.g. one file per SciFact document as
# scripts/bench-static.sh writes them. MODEL: the model folder (default: the Model2Vec model that
# scripts/bench-static.sh distills, ~/.cache/fathom/bench-static/m2v-minilm).
set -euo pipefail
n="$1"; shift
model="${MODEL:-$HOME/.cache/fathom/bench-static/m2v-minilm}"
docs="${DOCS:?DOCS=a folder of files to ingest}"
count=$(find "$docs" -type f | wc -l)
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for _ in $(seq "$n"); do
  k=0
  for bin in "$@"; do
    rm -rf "$tmp/store"
    /usr/bin/time -f "%U %S %e" -o "$tmp/time" "$bin" ingest "$docs" --store "$tmp/store" \
      --model "$model" --json > "$tmp/summary.json"
    python3 - "$tmp/summary.json" "$tmp/time" >> "$tmp/runs.$k" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["seconds"]
user, system, wall = map(float, open(sys.argv[2]).read().split())
print(s, wall, user + system)
PY
    k=$((k + 1))
  done
done
k=0
for bin in "$@"; do
  python3 - "$bin" "$count" "$tmp/runs.$k" <<'PY'
import statistics as st, sys
bin, count = sys.argv[1], int(sys.argv[2])
runs = [tuple(map(float, l.split())) for l in open(sys.argv[3])]
ingest = [count / r[0] for r in runs]; wall = [count / r[1] for r in runs]; cpu = [r[2] for r in runs]
print(f"{bin}: ingest {st.median(ingest):.0f} docs/s ({min(ingest):.0f}-{max(ingest):.0f}), "
      f"wall clock {st.median(wall):.0f} ({min(wall):.0f}-{max(wall):.0f}), CPU {st.median(cpu):.2f} s; {len(runs)} runs")
PY
  k=$((k + 1))
done
