#!/usr/bin/env bash
# Embed throughput on SciFact: fathom vs sentence-transformers, same documents, same model folder,
# same machine, in one run. Prints docs/s, tokens/s and the ratio fathom / sentence-transformers.
#
#   scripts/bench-embed.sh [--limit N] [--threads N] [--repeat N]     (N=0: the whole corpus)
#
# sentence-transformers (PyTorch, CPU) is installed from PyPI into a virtualenv under
# ${FATHOM_BENCH_VENV:-$HOME/.cache/fathom/bench-venv} the first time.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
limit=400
threads=2
repeat=1
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
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fathom/target}"

scripts/fetch-model.sh >&2
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import sentence_transformers" 2>/dev/null; then
  echo "bench-embed: installing sentence-transformers into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check sentence-transformers >&2
fi
cargo bench --bench embed_scifact --no-run -q >&2 2>/dev/null || cargo bench --bench embed_scifact --no-run >&2

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "bench-embed: $(nproc) cores, $threads threads, limit $limit docs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))" >&2
RAYON_NUM_THREADS="$threads" cargo bench -q --bench embed_scifact -- \
  --corpus "$corpus" --limit "$limit" --model "$model" --repeat "$repeat" --vectors-out "$tmp/fathom.jsonl" \
  | tail -n1 > "$tmp/fathom.json"
OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads" "$venv/bin/python" scripts/bench_st.py \
  --corpus "$corpus" --limit "$limit" --model "$model" --threads "$threads" --batch-size 32 \
  --repeat "$repeat" --compare "$tmp/fathom.jsonl" > "$tmp/st.json"

python3 - "$tmp/fathom.json" "$tmp/st.json" <<'PY'
import json, sys
f = json.load(open(sys.argv[1])); s = json.load(open(sys.argv[2]))
print(f"{'tool':<24}{'precision':>10}{'docs':>7}{'tokens':>9}{'seconds':>10}{'docs/s':>9}{'tokens/s':>10}")
for r in (f, s):
    print(f"{r['tool']:<24}{r['precision']:>10}{r['docs']:>7}{r['tokens']:>9}{r['seconds']:>10.2f}{r['docs_per_s']:>9.2f}{r['tokens_per_s']:>10.0f}")
print(f"ratio fathom / sentence-transformers (docs/s): {f['docs_per_s'] / s['docs_per_s']:.2f}")
print(f"lowest cosine between the two tools' vectors: {s['min_cosine_vs_fathom']:.6f}")
PY
