#!/usr/bin/env bash
# Embed throughput on SciFact: fathom (f32, int8, and bf16 where the CPU has AVX512-BF16) vs
# sentence-transformers and ONNX Runtime (f32, and its dynamic int8 quantization), same documents,
# same model folder, same machine, in one run. Prints docs/s, tokens/s, peak RSS, the ratio to
# sentence-transformers and to ONNX Runtime at the same precision, and each vector set's lowest
# cosine to fathom f32.
#
#   scripts/bench-embed.sh [--limit N] [--threads N] [--repeat N] [--model DIR] [--cpu avx2]
#                                                        (--limit 0: the whole corpus)
# --cpu avx2: every tool held to AVX2/FMA on a machine that has more, to measure what an AVX2-only
# CPU gets. Each measured process runs with scripts/cpuid-avx2.c preloaded, which answers CPUID
# with the AVX-512, AMX and VNNI bits cleared, so every library picks the kernels it would pick on
# such a CPU: fathom's (and Rust's `is_x86_feature_detected!`), OpenBLAS, PyTorch, oneDNN, MKL and
# ONNX Runtime's MLAS, which has no switch of its own. The script stops if the shim cannot take
# effect here (it needs CPUID faulting: Intel CPUs, KVM and Firecracker guests). The tools' own
# switches are set as well: FATHOM_CPU, OPENBLAS_CORETYPE=Haswell, ATEN_CPU_CAPABILITY,
# ONEDNN_MAX_CPU_ISA, MKL_ENABLE_INSTRUCTIONS, and GLIBC_TUNABLES for glibc's string functions.
# --model: any sentence-transformers folder (default: all-MiniLM-L6-v2 from scripts/fetch-model.sh);
# scripts/bench-archs.sh runs this once per architecture.
#
# sentence-transformers (PyTorch, CPU), onnxruntime and onnx are installed from PyPI into a
# virtualenv under ${FATHOM_BENCH_VENV:-$HOME/.cache/fathom/bench-venv} the first time; the ONNX
# export of a model folder is cached under ~/.cache/fathom/onnx (scripts/bench_onnx.py).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
limit=400
threads=2
hold=""
model=""
repeat=1
while [ $# -gt 0 ]; do
  case "$1" in
    --limit) limit="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --repeat) repeat="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    --cpu)
      [ "$2" = avx2 ] || { echo "bench-embed: --cpu takes avx2" >&2; exit 2; }
      hold=avx2
      shift 2 ;;
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
if ! "$venv/bin/python" -c "import onnxruntime, onnx, onnxscript" 2>/dev/null; then
  echo "bench-embed: installing onnxruntime and onnx into $venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check onnxruntime onnx onnxscript >&2
fi
mkdir -p "$HOME/.cache/fathom/onnx"
onnx_dir="$HOME/.cache/fathom/onnx/$(printf '%s' "$(cd "$model" && pwd)" | sha256sum | cut -c1-16)"
if [ ! -f "$onnx_dir/model.int8.onnx" ] || [ "$model/config.json" -nt "$onnx_dir/model.int8.onnx" ]; then
  echo "bench-embed: exporting $model to ONNX (f32, and quantize_dynamic int8) in $onnx_dir" >&2
  if ! "$venv/bin/python" scripts/bench_onnx.py export --model "$model" --out "$onnx_dir" > "$onnx_dir.log" 2>&1; then
    tail -n 5 "$onnx_dir.log" >&2
    echo "bench-embed: the ONNX export of $model failed (above); no ONNX Runtime rows" >&2
    rm -f "$onnx_dir/model.int8.onnx"
  fi
fi
cargo bench --bench embed_scifact --no-run -q >&2 2>/dev/null || cargo bench --bench embed_scifact --no-run >&2

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# The measured commands run through `held`: as they are, or as on an AVX2-only CPU (--cpu avx2).
held() { "$@"; }
if [ "$hold" = avx2 ]; then
  shim="$HOME/.cache/fathom/bin/cpuid-avx2.so"
  mkdir -p "$(dirname "$shim")"
  cc -O2 -shared -fPIC -o "$shim" scripts/cpuid-avx2.c
  check="$(LD_PRELOAD="$shim" CPUID_AVX2_CHECK=1 /bin/true 2>&1)"
  if [ "$check" != "cpuid-avx2: avx2 yes, avx512f no" ]; then
    echo "bench-embed: cannot hold this CPU to AVX2 (${check:-no answer from the shim}); stopping" >&2
    exit 1
  fi
  export FATHOM_CPU=avx2 OPENBLAS_CORETYPE=Haswell ATEN_CPU_CAPABILITY=avx2 \
    ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 \
    GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX512F,-AVX512CD,-AVX512BW,-AVX512DQ,-AVX512VL,-AVX512_VNNI
  held() { LD_PRELOAD="$shim${LD_PRELOAD:+:$LD_PRELOAD}" "$@"; }
  echo "bench-embed: every tool held to AVX2/FMA: CPUID answered without AVX-512, AMX or VNNI ($shim)" >&2
  echo "bench-embed: PyTorch sees $(held "$venv/bin/python" -c 'import torch; print(torch.backends.cpu.get_cpu_capability())')" >&2
fi
echo "bench-embed: $model, $(nproc) cores, $threads threads, limit $limit docs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))" >&2
for dtype in f32 int8 bf16; do
  if [ "$dtype" = bf16 ] && { ! grep -q avx512_bf16 /proc/cpuinfo || [ -n "$hold" ]; }; then
    echo "bench-embed: no AVX512-BF16 (on this CPU, or under --cpu); skipping the bf16 run" >&2
    continue
  fi
  RAYON_NUM_THREADS="$threads" held cargo bench -q --bench embed_scifact -- \
    --corpus "$corpus" --limit "$limit" --model "$model" --repeat "$repeat" --dtype "$dtype" \
    --vectors-out "$tmp/fathom-$dtype.jsonl" | tail -n1 > "$tmp/fathom-$dtype.json"
done
OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads" held "$venv/bin/python" scripts/bench_st.py \
  --corpus "$corpus" --limit "$limit" --model "$model" --threads "$threads" --batch-size 32 \
  --repeat "$repeat" --compare "$tmp/fathom-f32.jsonl" > "$tmp/st.json"
for dtype in f32 int8; do
  [ -f "$onnx_dir/model.int8.onnx" ] || break
  file=model.onnx
  [ "$dtype" = int8 ] && file=model.int8.onnx
  OMP_NUM_THREADS="$threads" held "$venv/bin/python" scripts/bench_onnx.py run --onnx "$onnx_dir/$file" \
    --model "$model" --corpus "$corpus" --limit "$limit" --threads "$threads" --repeat "$repeat" \
    --compare "$tmp/fathom-f32.jsonl" > "$tmp/onnx-$dtype.json"
done

python3 - "$tmp" <<'PY'
import json, math, os, sys
tmp = sys.argv[1]
load = lambda name: json.load(open(f"{tmp}/{name}.json")) if os.path.exists(f"{tmp}/{name}.json") else None
st = load("st")
fathom = [r for r in (load(f"fathom-{d}") for d in ("f32", "int8", "bf16")) if r]
for r in fathom:
    print(f"fathom {r['precision']}: kernel paths {', '.join(r.get('kernel_paths', [])) or 'portable'}")
onnx = {d: load(f"onnx-{d}") for d in ("f32", "int8")}
vectors = lambda d: [json.loads(l) for l in open(f"{tmp}/fathom-{d}.jsonl")]
def min_cos(a, b):
    return min(sum(x * y for x, y in zip(u, v)) / math.sqrt(sum(x * x for x in u) * sum(y * y for y in v)) for u, v in zip(a, b))
base = vectors("f32")
for r in fathom:
    r["min_cosine_vs_fathom"] = min_cos(base, vectors(r["precision"]))
print(f"{'tool':<24}{'precision':>10}{'docs':>7}{'tokens':>9}{'seconds':>10}{'docs/s':>9}{'tokens/s':>10}{'peak RSS':>10}{'vs ST':>7}{'vs ORT':>8}{'min cos':>9}")
for r in fathom + [st] + [r for r in onnx.values() if r]:
    rss = f"{r['peak_rss_mib']:.0f} MiB" if r.get("peak_rss_mib") else "-"
    ort = onnx.get(r["precision"])
    vs_ort = f"{r['docs_per_s'] / ort['docs_per_s']:.2f}" if ort and r["tool"] == "fathom" else "-"
    print(f"{r['tool']:<24}{r['precision']:>10}{r['docs']:>7}{r['tokens']:>9}{r['seconds']:>10.2f}{r['docs_per_s']:>9.2f}"
          f"{r['tokens_per_s']:>10.0f}{rss:>10}{r['docs_per_s'] / st['docs_per_s']:>7.2f}{vs_ort:>8}{r['min_cosine_vs_fathom']:>9.5f}")
print("vs ST = docs/s over sentence-transformers' (f32, batch 32); vs ORT = over ONNX Runtime's at the same")
print("precision (f32; int8 = quantize_dynamic); min cos = lowest cosine of a document's vector to fathom f32's")
PY
