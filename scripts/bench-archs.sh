#!/usr/bin/env bash
# Embed throughput per architecture: fathom vs sentence-transformers on the same SciFact documents
# and the same model files, in one run. all-MiniLM-L6-v2 (BERT) with its real weights; DistilBERT,
# XLM-RoBERTa, MPNet, ModernBERT and Qwen3 at their base/0.6B sizes with random weights built by
# `transformers` (scripts/make_random_models.py; real weights are not downloadable here).
#
#   scripts/bench-archs.sh [--cpu avx2] [ARCH ...]   (default: all; ARCH is minilm or a name above,
#                                                    lower case; --cpu: see scripts/bench-embed.sh)
#
# Each architecture gets its own table from scripts/bench-embed.sh: fathom f32 and int8,
# sentence-transformers, ONNX Runtime f32 and int8 where the model exports (docs/s, tokens/s,
# peak RSS, ratios, lowest cosine to fathom f32). Fewer documents for bigger models so each
# run takes about a minute on two cores.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="${FATHOM_BENCH_VENV:-$HOME/.cache/fathom/bench-venv}"
models="${FATHOM_RANDOM_MODELS:-$HOME/.cache/fathom/random-models}"
shared="${FATHOM_SHARED:-$root/../shared}"
cpu=()
if [ "${1:-}" = --cpu ]; then
  cpu=(--cpu "$2")
  shift 2
fi
archs=("$@")
[ ${#archs[@]} -gt 0 ] || archs=(minilm distilbert xlm-roberta mpnet modernbert qwen3)

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import sentence_transformers" 2>/dev/null; then
  echo "bench-archs: installing sentence-transformers into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check sentence-transformers >&2
fi

for arch in "${archs[@]}"; do
  case "$arch" in
    minilm) limit=400; model="" ;;
    distilbert) limit=200 ;;
    xlm-roberta|mpnet|modernbert) limit=100 ;;
    qwen3) limit=20 ;;
    *) echo "bench-archs: unknown architecture $arch" >&2; exit 2 ;;
  esac
  if [ "$arch" != minilm ]; then
    "$venv/bin/python" scripts/make_random_models.py "$models" "$arch" --shared "$shared" \
      2>&1 | grep -v -i 'warn\|shards' >&2 || true
    model="$models/$arch"
  fi
  echo "## $arch ($limit documents)"
  scripts/bench-embed.sh --limit "$limit" ${model:+--model "$model"} "${cpu[@]}"
  echo
done
