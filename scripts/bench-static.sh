#!/usr/bin/env bash
# Static-embedding models: `fathom ingest` of the SciFact corpus as files (one per document) with a
# Model2Vec model, against Model2Vec's own `StaticModel.encode` of the same documents (what a user
# would otherwise run), and fathom's raw embedding of them (benches/embed_scifact), same machine,
# same run. Prints docs/s for each and the ratios.
#
# No potion model can be fetched here, so the model is distilled from all-MiniLM-L6-v2 with
# model2vec's own `distill` (scripts/distill_static.py: how potion models start; 256 dimensions,
# float16 table), cached under ~/.cache/fathom/bench-static.
#
#   scripts/bench-static.sh
#
# Uses the venv ${FATHOM_BENCH_VENV:-$HOME/.cache/fathom/bench-venv}, installing model2vec[distill]
# (with torch, transformers) into it when missing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fathom/target}"
venv="${FATHOM_BENCH_VENV:-$HOME/.cache/fathom/bench-venv}"
cache="$HOME/.cache/fathom/bench-static"
corpus="${FATHOM_SHARED:-$root/../shared}/data/scifact/corpus.jsonl"
scripts/fetch-model.sh >&2
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if ! "$venv/bin/python" -c "import model2vec.distill" 2>/dev/null; then
  "$venv/bin/pip" install -q --disable-pip-version-check "model2vec[distill]" >&2
  # The `kernels` package it pulls in breaks `import transformers` when no hub is reachable.
  "$venv/bin/pip" uninstall -q -y kernels >&2 || true
fi
model="$cache/m2v-minilm"
HF_HUB_OFFLINE=1 "$venv/bin/python" scripts/distill_static.py "$root/models/all-MiniLM-L6-v2" "$model" >&2
cargo build --release -q
cargo bench --bench embed_scifact --no-run -q 2>/dev/null
fathom="$CARGO_TARGET_DIR/release/fathom"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 - "$corpus" "$tmp/docs" <<'PY'
import json, os, sys
corpus, out = sys.argv[1], sys.argv[2]
os.makedirs(out)
for line in open(corpus):
    d = json.loads(line)
    with open(os.path.join(out, f"{d['_id']}.txt"), "w") as f:
        f.write(d.get("title", "") + " " + d.get("text", ""))
PY
docs=$(ls "$tmp/docs" | wc -l)
best=""
for run in 1 2 3; do
  rm -rf "$tmp/store"
  "$fathom" ingest "$tmp/docs" --store "$tmp/store" --model "$model" --json > "$tmp/ingest.json"
  s=$(python3 -c "import json; print(json.load(open('$tmp/ingest.json'))['seconds'])")
  best=$(python3 -c "print(min(float(x) for x in '$best $s'.split()))")
done
cargo bench -q --bench embed_scifact -- --corpus "$corpus" --limit 0 --model "$model" | tail -n1 > "$tmp/embed.json"
"$venv/bin/python" - "$model" "$corpus" > "$tmp/m2v.json" <<'PY'
import json, sys, time
from model2vec import StaticModel
model = StaticModel.from_pretrained(sys.argv[1])
docs = [(d.get("title", "") + " " + d.get("text", "")) for d in map(json.loads, open(sys.argv[2]))]
model.encode(docs[:100])
best = min((lambda t: (model.encode(docs), time.perf_counter() - t)[1])(time.perf_counter()) for _ in range(3))
print(json.dumps({"docs": len(docs), "seconds": best}))
PY
python3 - "$docs" "$best" "$tmp/embed.json" "$tmp/m2v.json" <<'PY'
import json, sys
docs, ingest_s = int(sys.argv[1]), float(sys.argv[2])
e = json.load(open(sys.argv[3])); m = json.load(open(sys.argv[4]))
m2v = m["docs"] / m["seconds"]
print(f"fathom ingest (files -> lance, chunked, indexed): {docs} docs in {ingest_s:.2f} s = {docs / ingest_s:.0f} docs/s")
print(f"fathom embed (in memory):                         {e['docs']} docs in {e['seconds']:.2f} s = {e['docs_per_s']:.0f} docs/s")
print(f"model2vec StaticModel.encode (in memory):         {m['docs']} docs in {m['seconds']:.2f} s = {m2v:.0f} docs/s")
print(f"fathom ingest / model2vec encode: {docs / ingest_s / m2v:.2f}; fathom embed / model2vec encode: {e['docs_per_s'] / m2v:.2f}")
PY
