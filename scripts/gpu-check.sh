#!/usr/bin/env bash
# The CUDA checks, on a machine with an NVIDIA GPU (driver + CUDA 13 + Python with PyTorch and
# sentence-transformers; no Rust, no network). Run from the unpacked dist/fathom-gpu-check.tar.gz
# that scripts/build-cuda.sh makes:
#
#   fathom-gpu-check/scripts/gpu-check.sh [--limit N]
#
# 1. Fidelity on CUDA against every reference of ../shared/fixtures: f32 cosine >= 0.9999,
#    f16 >= 0.999 (and one-at-a-time equal to batched).
# 2. Embed throughput on SciFact documents, fathom vs sentence-transformers on the same GPU,
#    batch sizes 32 and 256, f32 and f16: docs/s and the ratio.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
limit=2000
[ "${1:-}" = "--limit" ] && limit="$2"

# cuBLAS, cuRAND and NVRTC 13: from the CUDA install, or from PyTorch's nvidia wheels.
python="${PYTHON:-python3}"
libs="/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib"
torch_libs="$("$python" - <<'PY' 2>/dev/null || true
import glob, os, site
dirs = set()
for sp in site.getsitepackages():
    for lib in glob.glob(os.path.join(sp, "nvidia", "**", "lib"), recursive=True):
        dirs.add(lib)
print(":".join(sorted(dirs)))
PY
)"
export LD_LIBRARY_PATH="$libs:$torch_libs:${LD_LIBRARY_PATH:-}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true

status=0
echo "== fidelity, CUDA f32 (cosine >= 0.9999)"
./fathom-gpu-check fidelity --fixtures fixtures --model models/all-MiniLM-L6-v2 --device cuda --dtype f32 --min-cos 0.9999 || status=1
echo "== fidelity, CUDA f16 (cosine >= 0.999)"
./fathom-gpu-check fidelity --fixtures fixtures --model models/all-MiniLM-L6-v2 --device cuda --dtype f16 --min-cos 0.999 || status=1

echo "== throughput, SciFact ($limit documents)"
for dtype in f32 f16; do
  for batch in 32 256; do
    ours="$(./fathom-gpu-check bench --corpus scifact/corpus.jsonl --model models/all-MiniLM-L6-v2 --device cuda --dtype "$dtype" --batch "$batch" --limit "$limit")"
    theirs="$("$python" scripts/bench_st.py --corpus scifact/corpus.jsonl --model models/all-MiniLM-L6-v2 --device cuda --precision "$dtype" --batch-size "$batch" --limit "$limit" | tail -1)"
    echo "$ours"
    echo "$theirs"
    "$python" - "$ours" "$theirs" "$dtype" "$batch" <<'PY'
import json, sys
ours, theirs = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"{sys.argv[3]} batch {sys.argv[4]}: fathom {ours['docs_per_s']:.1f} docs/s, "
      f"sentence-transformers {theirs['docs_per_s']:.1f} docs/s, ratio {ours['docs_per_s'] / theirs['docs_per_s']:.2f}")
PY
  done
done
exit $status
