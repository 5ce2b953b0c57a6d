#!/usr/bin/env bash
# The Python package against sentence-transformers, in one process on this machine: throughput on
# the first SciFact documents (float32 and int8; bfloat16 where the CPU has AVX512-BF16), import + load +
# first encode of each in a fresh interpreter, and the install footprint of each with its
# dependencies.
#
#   scripts/bench-python.sh [--limit N] [--threads N] [--repeat N]
#
# Uses the venv ${FATHOM_BENCH_VENV:-$HOME/.cache/fathom/bench-venv} (sentence-transformers from
# PyPI, as scripts/bench-embed.sh installs it), builds the fathom wheel like scripts/test-python.sh
# and installs it there.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
crate="$root/crates/python"
limit=400
threads="$(nproc)"
repeat=3
while [ $# -gt 0 ]; do
  case "$1" in
    --limit) limit="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --repeat) repeat="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
corpus="${FATHOM_SHARED:-$root/../shared}/data/scifact/corpus.jsonl"
model="$root/models/all-MiniLM-L6-v2"
venv="${FATHOM_BENCH_VENV:-$HOME/.cache/fathom/bench-venv}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fathom/py-target}"

"$root/scripts/fetch-model.sh" >&2
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if ! "$venv/bin/python" -c "import sentence_transformers" 2>/dev/null; then
  echo "bench-python: installing sentence-transformers into $venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check sentence-transformers >&2
fi
"$venv/bin/python" -c "import maturin" 2>/dev/null \
  || "$venv/bin/pip" install -q --disable-pip-version-check "$(grep '^maturin==' "$crate/requirements-dev.txt")" >&2

wheels="$CARGO_TARGET_DIR/wheels"
rm -f "$wheels"/fathom_embed-*.whl
(cd "$crate" && "$venv/bin/maturin" build --release --interpreter "$venv/bin/python" --out "$wheels" >&2)
"$venv/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps "$wheels"/fathom_embed-*.whl >&2

# Both libraries get the same number of threads: rayon (fathom) and torch's intra-op pool.
RAYON_NUM_THREADS="$threads" OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads" \
  "$venv/bin/python" "$crate/bench/bench_scifact.py" \
  --corpus "$corpus" --model "$model" --limit "$limit" --threads "$threads" --repeat "$repeat"
