#!/usr/bin/env bash
# The CUDA checks, on a machine with an NVIDIA GPU, its driver, and Python with PyTorch,
# transformers and sentence-transformers (no Rust, no network). Run from the folder that
# scripts/build-cuda.sh stages (dist/fathom-gpu-check):
#
#   dist/fathom-gpu-check/scripts/gpu-check.sh [--limit N]
#
# 0. Builds the full-size models there, with random weights (scripts/make_random_models.py): an
#    all-MiniLM-L6-v2-shaped BERT with MiniLM's own tokenizer and an all-mpnet-base-v2-shaped
#    MPNet; sentence-transformers computes each one's reference on the CPU in float32.
# 1. Fidelity on CUDA: those two and every tiny fixture model (fixtures/tiny: BERT, BERT-CLS,
#    DistilBERT, XLM-R, MPNet, ModernBERT, Qwen3), f32 cosine >= 0.9999 and f16 >= 0.999 to the
#    reference, and each text alone equal to its batched row. Where the real all-MiniLM-L6-v2
#    weights are there too, against the fixtures' reference for it.
# 2. Throughput on SciFact documents, fathom against sentence-transformers on the same GPU,
#    f32 and f16, batch 32 and 256, both full-size models: docs/s and the ratio.
# Exit status 1 when any fidelity check fails.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
limit=2000
[ "${1:-}" = "--limit" ] && limit="$2"
python="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
# FATHOM_CHECK_DEVICE=cpu FATHOM_CHECK_DTYPES=f32 tries the whole script on a machine without a GPU.
device="${FATHOM_CHECK_DEVICE:-cuda}"
dtypes="${FATHOM_CHECK_DTYPES:-f32 f16}"

# cuBLAS, cuRAND and NVRTC: from the CUDA install, or from PyTorch's nvidia wheels.
torch_libs="$("$python" - <<'PY' 2>/dev/null || true
import glob, os, site
dirs = set()
for sp in site.getsitepackages():
    for lib in glob.glob(os.path.join(sp, "nvidia", "**", "lib"), recursive=True):
        dirs.add(lib)
print(":".join(sorted(dirs)))
PY
)"
export LD_LIBRARY_PATH="/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:$torch_libs:${LD_LIBRARY_PATH:-}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
"$python" -c 'import torch, transformers, sentence_transformers as st; print("torch", torch.__version__, "transformers", transformers.__version__, "sentence-transformers", st.__version__)'

echo "== full-size models with random weights, references from sentence-transformers (CPU, float32)"
"$python" scripts/make_random_models.py random minilm mpnet --shared . --minilm models/all-MiniLM-L6-v2 \
  --reference fixtures/texts.json || exit 1

models=(random/minilm random/mpnet)
for d in fixtures/tiny/*/; do models+=("${d%/}"); done
[ -f models/all-MiniLM-L6-v2/model.safetensors ] \
  && models+=("models/all-MiniLM-L6-v2=fixtures/reference/all-MiniLM-L6-v2.jsonl")

status=0
for dtype in $dtypes; do
  min_cos=0.9999
  [ "$dtype" = f32 ] || min_cos=0.999
  echo "== fidelity, $device $dtype (cosine >= $min_cos)"
  ./fathom-gpu-check fidelity --device "$device" --dtype "$dtype" --min-cos "$min_cos" "${models[@]}" || status=1
done

echo "== throughput, SciFact ($limit documents)"
for model in random/minilm random/mpnet; do
  for dtype in $dtypes; do
    for batch in 32 256; do
      ours="$(./fathom-gpu-check bench --corpus scifact/corpus.jsonl --model "$model" --device "$device" --dtype "$dtype" --batch "$batch" --limit "$limit")" || { status=1; continue; }
      theirs="$("$python" scripts/bench_st.py --corpus scifact/corpus.jsonl --model "$model" --device "$device" --precision "$dtype" --batch-size "$batch" --limit "$limit" | tail -1)" || { status=1; continue; }
      echo "$ours"
      echo "$theirs"
      "$python" - "$model" "$ours" "$theirs" <<'PY'
import json, sys
ours, theirs = json.loads(sys.argv[2]), json.loads(sys.argv[3])
print(f"{sys.argv[1]} {ours['dtype']} batch {ours['batch']}: fathom {ours['docs_per_s']:.1f} docs/s, "
      f"sentence-transformers {theirs['docs_per_s']:.1f} docs/s, ratio {ours['docs_per_s'] / theirs['docs_per_s']:.2f}")
PY
    done
  done
done
echo "== where fathom's time goes: random/mpnet, ${dtypes##* }, batch 256, $((limit / 4)) documents (FATHOM_PROFILE=1, CUDA_LAUNCH_BLOCKING=1)"
FATHOM_PROFILE=1 CUDA_LAUNCH_BLOCKING=1 ./fathom-gpu-check bench --corpus scifact/corpus.jsonl \
  --model random/mpnet --device "$device" --dtype "${dtypes##* }" --batch 256 --limit $((limit / 4)) 2>&1 || status=1
exit $status
