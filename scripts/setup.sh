#!/usr/bin/env bash
# Installs what building and testing fathom needs and a fresh machine may lack, then fetches the
# default model. Safe to run again: it only installs what is missing.
#
#   - OpenBLAS (libopenblas-dev): the CPU matrix products (default `openblas` feature)
#   - protoc (protobuf-compiler, libprotobuf-dev): needed by lance, the embedded store
#   - python3-venv: the tests' Python venv (~/.cache/fathom/test-venv, scripts/requirements-test.txt)
#   - chromium, chromium-driver: the real browser the search page is tested in
#   - tesseract-ocr (+ English data) and poppler-utils (pdftoppm): OCR of images and scanned PDF
#     pages (`--ocr auto` uses them when present; fathom builds and runs without them)
#   - models/all-MiniLM-L6-v2 (scripts/fetch-model.sh)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

missing=()
have_openblas() {
  for d in /usr/lib/x86_64-linux-gnu/openblas-pthread /usr/lib/aarch64-linux-gnu/openblas-pthread /usr/lib64 /usr/local/lib /usr/lib "${FATHOM_OPENBLAS_LIB_DIR:-/nonexistent}"; do
    [ -f "$d/libopenblas.a" ] && return 0
  done
  return 1
}
have_openblas || missing+=(libopenblas-dev)
command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler libprotobuf-dev)
command -v cc >/dev/null 2>&1 || missing+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
# The search page's browser test drives Debian's Chromium through its WebDriver.
command -v chromium >/dev/null 2>&1 || missing+=(chromium fonts-dejavu-core)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
command -v tesseract >/dev/null 2>&1 || missing+=(tesseract-ocr tesseract-ocr-eng)
command -v pdftoppm >/dev/null 2>&1 || missing+=(poppler-utils)

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: please install ${missing[*]} with your package manager" >&2
    exit 1
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" libprotobuf-dev >/dev/null
fi

# The official OpenAI client for the end-to-end test of /v1/embeddings.
venv="${FATHOM_TEST_VENV:-$HOME/.cache/fathom/test-venv}"
stamp="$venv/.requirements"
if ! cmp -s "$root/scripts/requirements-test.txt" "$stamp" 2>/dev/null; then
  echo "setup: creating the test venv at $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$root/scripts/requirements-test.txt"
  cp "$root/scripts/requirements-test.txt" "$stamp"
fi

"$root/scripts/fetch-model.sh"

# What the user sees while waiting: the first `cargo build --release` compiles ~800 crates (lance
# and datafusion, the store's engine, are most of it) before it prints anything of fathom's own.
target="${CARGO_TARGET_DIR:-$root/target}"
if [ ! -x "$target/release/fathom" ]; then
  echo "setup: done. The first build compiles about 800 crates (lance and datafusion, the embedded" >&2
  echo "setup: store's engine, are most of it): about 40 minutes on 2 cores. Later builds take" >&2
  echo "setup: seconds to a couple of minutes." >&2
fi
