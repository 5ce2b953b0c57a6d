#!/usr/bin/env bash
# Builds fathom's CUDA code on a machine with no GPU and no CUDA install, from package registries
# only, and packs what a GPU machine needs to check it (scripts/gpu-check.sh) into one archive.
#
#   scripts/build-cuda.sh            # -> dist/fathom-gpu-check/
#   CUDA_COMPUTE_CAP=80 scripts/build-cuda.sh   # another GPU generation (default 90: H100/H200)
#
# What it does:
#   1. NVIDIA's CUDA 13.0 toolkit pieces from PyPI (nvcc, nvvm, crt, runtime headers, CCCL, cuBLAS,
#      cuRAND, NVRTC), unpacked once under ~/.cache/fathom/cuda-13.0 as a CUDA_HOME.
#   2. A stub libcuda.so.1: the driver library exists only where a GPU driver is installed, but
#      candle links it (cudarc's dynamic-linking), so the build links a stub that defines every
#      driver entry point cudarc declares; at run time the real driver's libcuda.so.1 is loaded.
#   3. `cargo build --profile dist -p fathom-model --no-default-features --features cuda
#      --example gpu_check`: the model crate with candle's CUDA backend and its kernels compiled
#      for CUDA_COMPUTE_CAP, stripped (the full CLI with lance is not needed on the GPU machine).
#   4. dist/fathom-gpu-check/: the binary, scripts/gpu-check.sh and the Python it runs, the default
#      model's config and tokenizer (not its weights: gpu-check.sh builds full-size models with
#      random weights there), the fixtures and the SciFact corpus, about 40 MB in all: within the
#      64 MiB that travels to a lent GPU machine with the `device` tool.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
shared="${FATHOM_SHARED:-$root/../shared}"
cache="$HOME/.cache/fathom"
cuda="$cache/cuda-13.0"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
export CARGO_TARGET_DIR="${FATHOM_CUDA_TARGET_DIR:-$cache/target-cuda}"

wheels=(
  "nvidia-cuda-nvcc==13.0.88" "nvidia-nvvm==13.0.88" "nvidia-cuda-crt==13.0.88"
  "nvidia-cuda-runtime==13.0.96" "nvidia-cuda-cccl==13.0.85" "nvidia-cuda-nvrtc==13.0.88"
  "nvidia-cublas==13.0.2.14" "nvidia-curand==10.4.0.35"
)
if [ ! -x "$cuda/bin/nvcc" ]; then
  echo "build-cuda: fetching the CUDA 13.0 toolkit pieces from PyPI" >&2
  python3 -m venv "$cache/cuda-venv"
  "$cache/cuda-venv/bin/pip" download -q --disable-pip-version-check --no-deps \
    -d "$cache/cuda-wheels" "${wheels[@]}"
  rm -rf "$cuda.tmp" && mkdir -p "$cuda.tmp"
  for w in "${wheels[@]}"; do
    name="$(echo "${w%%==*}" | tr - _)"
    version="${w##*==}"
    unzip -q -o "$cache/cuda-wheels/${name}-${version}-"*.whl 'nvidia/*' -d "$cuda.tmp"
  done
  mv "$cuda.tmp/nvidia/cu13" "$cuda.tmp/cuda" && rm -rf "$cuda"
  mv "$cuda.tmp/cuda" "$cuda" && rm -rf "$cuda.tmp"
  chmod +x "$cuda"/bin/* "$cuda"/nvvm/bin/*
  # The names linkers look for (the wheels carry only versioned sonames).
  for lib in "$cuda"/lib/lib*.so.*; do
    base="${lib%%.so.*}.so"
    [ -e "$base" ] || ln -s "$(basename "$lib")" "$base"
  done
  ln -sfn lib "$cuda/lib64"
  # CCCL (libcu++, CUB, Thrust) headers live one level down in the wheel.
  for d in "$cuda"/include/cccl/*; do ln -sfn "cccl/$(basename "$d")" "$cuda/include/$(basename "$d")"; done
fi
export CUDA_HOME="$cuda" CUDA_PATH="$cuda" CUDA_ROOT="$cuda"
export PATH="$cuda/bin:$PATH"
export LIBRARY_PATH="$cuda/lib:$cuda/lib/stubs:${LIBRARY_PATH:-}"
nvcc --version | tail -2

# The driver stub: every cu* function cudarc's driver bindings declare, as an empty symbol.
stub="$cuda/lib/stubs/libcuda.so"
if [ ! -e "$stub" ]; then
  mkdir -p "$cuda/lib/stubs"
  cargo fetch -q
  cudarc="$(find "$HOME/.cargo/registry/src" -maxdepth 1 -type d -name 'index.crates.io-*' -exec find {} -maxdepth 1 -type d -name 'cudarc-*' \; | sort -V | tail -1)"
  grep -rhoE 'pub unsafe fn cu[A-Za-z0-9_]+\(' "$cudarc/src/driver/sys" \
    | sed -E 's/pub unsafe fn (cu[A-Za-z0-9_]+)\(/\1/' | sort -u \
    | awk '{print "void " $1 "(void) {}"}' > "$cuda/lib/stubs/libcuda_stub.c"
  cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$stub" "$cuda/lib/stubs/libcuda_stub.c"
  echo "build-cuda: stub libcuda.so with $(wc -l < "$cuda/lib/stubs/libcuda_stub.c") driver symbols" >&2
fi

cargo build --profile dist -p fathom-model --no-default-features --features cuda --example gpu_check
bin="$CARGO_TARGET_DIR/dist/examples/gpu_check"
echo "build-cuda: $(du -h "$bin" | cut -f1) $bin" >&2
echo "build-cuda: needs at run time: $(objdump -p "$bin" | awk '/NEEDED/ {print $2}' | tr '\n' ' ')" >&2

stage=dist/fathom-gpu-check
rm -rf "$stage"
mkdir -p "$stage/scripts" "$stage/models/all-MiniLM-L6-v2" "$stage/scifact"
cp "$bin" "$stage/fathom-gpu-check"
cp scripts/gpu-check.sh scripts/bench_st.py scripts/bench_common.py scripts/make_random_models.py "$stage/scripts/"
(cd models/all-MiniLM-L6-v2 && tar --exclude=model.safetensors --exclude='*.bin' --exclude='*.onnx' -cf - .) \
  | tar -C "$stage/models/all-MiniLM-L6-v2" -xf -
cp -r "$shared/fixtures" "$stage/fixtures"
chmod -R u+w "$stage"
cp "$shared/data/scifact/corpus.jsonl" "$stage/scifact/"
echo "build-cuda: $stage ($(du -sh "$stage" | cut -f1)); on the GPU machine: $stage/scripts/gpu-check.sh" >&2
