#!/usr/bin/env bash
# Embed throughput on SciFact: fathom vs sentence-transformers, same documents, same model folder,
# same machine, in one run. Prints docs/s, tokens/s and the ratio fathom / sentence-transformers.
#
#   scripts/bench-embed.sh [--limit N] [--threads N] [--repeat N] [--model DIR]
#                                                        (--limit 0: the whole corpus)
# --model: any sentence-transformers folder (default: all-MiniLM-L6-v2 from scripts/fetch-model.sh);
# scripts/bench-archs.sh runs this once per architecture.
#
# sentence-transformers (PyTorch, CPU) is installed from PyPI into a virtualenv under
# ${FATHOM_BENCH_VENV:-$HOME/.cache/fathom/bench-venv} the first time.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
limit=400
threads=2
model=""
repeat=1
while [ $# -gt 0 ]; do
  case "$1" in
    --limit) limit="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --repeat) repeat="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
corpus="${FATHOM_SHARED:-$root/../shared}/data/scifact/corpus.jsonl"
model="${model:-$root/models/all-MiniLM-L6-v2}"
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
echo "bench-embed: $model, $(nproc) cores, $threads threads, limit $limit docs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))" >&2
for dtype in f32 bf16; do
  if [ "$dtype" = bf16 ] && ! grep -q avx512_bf16 /proc/cpuinfo; then
    echo "bench-embed: this CPU has no AVX512-BF16; skipping the bf16 run" >&2
    continue
  fi
  RAYON_NUM_THREADS="$threads" cargo bench -q --bench embed_scifact -- \
    --corpus "$corpus" --limit "$limit" --model "$model" --repeat "$repeat" --dtype "$dtype" \
    --vectors-out "$tmp/fathom-$dtype.jsonl" | tail -n1 > "$tmp/fathom-$dtype.json"
done
OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads" "$venv/bin/python" scripts/bench_st.py \
  --corpus "$corpus" --limit "$limit" --model "$model" --threads "$threads" --batch-size 32 \
  --repeat "$repeat" --compare "$tmp/fathom-f32.jsonl" > "$tmp/st.json"

python3 - "$tmp" <<'PY'
import json, math, os, sys
tmp = sys.argv[1]
st = json.load(open(f"{tmp}/st.json"))
rows = [json.load(open(f"{tmp}/fathom-{d}.json")) for d in ("f32", "bf16") if os.path.exists(f"{tmp}/fathom-{d}.json")]
print(f"{'tool':<24}{'precision':>10}{'docs':>7}{'tokens':>9}{'seconds':>10}{'docs/s':>9}{'tokens/s':>10}{'peak RSS':>10}{'ratio':>7}")
for r in rows + [st]:
    rss = f"{r['peak_rss_mib']:.0f} MiB" if r.get("peak_rss_mib") else "-"
    print(f"{r['tool']:<24}{r['precision']:>10}{r['docs']:>7}{r['tokens']:>9}{r['seconds']:>10.2f}{r['docs_per_s']:>9.2f}"
          f"{r['tokens_per_s']:>10.0f}{rss:>10}{r['docs_per_s'] / st['docs_per_s']:>7.2f}")
print("ratio = docs/s over sentence-transformers' docs/s (f32, batch 32) in this run")
print(f"lowest cosine, sentence-transformers vs fathom f32: {st['min_cosine_vs_fathom']:.6f}")
if os.path.exists(f"{tmp}/fathom-bf16.jsonl"):
    a = [json.loads(l) for l in open(f"{tmp}/fathom-f32.jsonl")]
    b = [json.loads(l) for l in open(f"{tmp}/fathom-bf16.jsonl")]
    cos = min(sum(x * y for x, y in zip(u, v)) / math.sqrt(sum(x * x for x in u) * sum(y * y for y in v)) for u, v in zip(a, b))
    print(f"lowest cosine, fathom bf16 vs fathom f32: {cos:.6f}")
PY
