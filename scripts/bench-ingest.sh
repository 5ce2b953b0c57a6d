#!/usr/bin/env bash
# Ingest throughput vs raw embedding throughput, same machine, same run.
#
# Writes the SciFact corpus out as one file per document (`title + " " + text`), ingests the folder
# into a fresh store with `fathom ingest`, and compares its tokens/s with the raw embed tokens/s
# of the same documents (benches/embed_scifact). Ingest embeds every chunk of every document;
# the raw bench embeds each document truncated to the model's window, so tokens/s (not docs/s) is
# the comparable figure: it is the model's throughput in both, and the ratio is what the pipeline
# (walking, hashing, reading, chunking, writing to lance) costs.
#
#   scripts/bench-ingest.sh [--limit N]      (default: the whole corpus)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
limit=0
[ "${1:-}" = "--limit" ] && limit="$2"
corpus="${FATHOM_SHARED:-$root/../shared}/data/scifact/corpus.jsonl"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fathom/target}"
scripts/fetch-model.sh >&2
cargo build --release -q
cargo bench --bench embed_scifact --no-run -q 2>/dev/null
fathom="$CARGO_TARGET_DIR/release/fathom"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 - "$corpus" "$tmp/docs" "$limit" <<'PY'
import json, os, sys
corpus, out, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(out)
for n, line in enumerate(open(corpus)):
    if limit and n >= limit:
        break
    d = json.loads(line)
    with open(os.path.join(out, f"{d['_id']}.txt"), "w") as f:
        f.write(d.get("title", "") + " " + d.get("text", ""))
PY
echo "bench-ingest: $(ls "$tmp/docs" | wc -l) files" >&2
"$fathom" ingest "$tmp/docs" --store "$tmp/store" --json > "$tmp/ingest.json"
cargo bench -q --bench embed_scifact -- --corpus "$corpus" --limit "$limit" | tail -n1 > "$tmp/embed.json"
python3 - "$tmp/ingest.json" "$tmp/embed.json" <<'PY'
import json, sys
i = json.load(open(sys.argv[1])); e = json.load(open(sys.argv[2]))
ingest_tps = i["tokens"] / i["seconds"]
print(f"ingest: {i['added']} files, {i['chunks']} chunks, {i['tokens']} tokens in {i['seconds']:.1f} s = {ingest_tps:.0f} tokens/s")
print(f"raw embed: {e['docs']} docs, {e['tokens']} tokens in {e['seconds']:.1f} s = {e['tokens_per_s']:.0f} tokens/s, peak RSS {e['peak_rss_mib']:.0f} MiB")
print(f"ingest / raw embed throughput: {ingest_tps / e['tokens_per_s']:.2f}")
PY
