#!/usr/bin/env bash
# Rerank latency (one query, 50 SciFact abstracts as candidates) and SPLADE encoding: fathom's
# Python CrossEncoder / SparseEncoder against sentence-transformers' on the same cores, in one
# process, f32 and int8 (scripts/bench_rerank.py says which model shapes). Prints JSON lines.
#
#   scripts/bench-rerank.sh [--candidates N] [--repeat N] [--threads N] [--models minilm,bge,qwen3,splade]
#                            [--dtypes float32,int8,bfloat16]
#
# Uses the venv ${FATHOM_BENCH_VENV:-$HOME/.cache/fathom/bench-venv} (sentence-transformers from
# PyPI) and installs the fathom wheel built by scripts/test-python.sh into it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
threads="$(nproc)"
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads="$2"; shift 2 ;;
    --candidates|--repeat|--models|--dtypes) extra+=("$1" "$2"); shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
venv="${FATHOM_BENCH_VENV:-$HOME/.cache/fathom/bench-venv}"
"$root/scripts/fetch-model.sh" >&2
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c "import sentence_transformers" 2>/dev/null \
  || "$venv/bin/pip" install -q --disable-pip-version-check sentence-transformers >&2
wheel="$(ls "${CARGO_TARGET_DIR:-$HOME/.cache/fathom/py-target}"/wheels/fathom_embed-*.whl 2>/dev/null | head -1 || true)"
if [ -z "$wheel" ]; then
  "$root/scripts/test-python.sh" >&2
  wheel="$(ls "${CARGO_TARGET_DIR:-$HOME/.cache/fathom/py-target}"/wheels/fathom_embed-*.whl | head -1)"
fi
"$venv/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps "$wheel" >&2
cd "$root"
OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads" RAYON_NUM_THREADS="$threads" \
  "$venv/bin/python" scripts/bench_rerank.py --out "$HOME/.cache/fathom/bench-rerank" \
  --minilm "$root/models/all-MiniLM-L6-v2" --shared "${FATHOM_SHARED:-$root/../shared}" "${extra[@]}"
