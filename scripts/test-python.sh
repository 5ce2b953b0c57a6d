#!/usr/bin/env bash
# Builds the Python package (crates/python: PyO3 + maturin, one abi3 wheel) and runs its tests
# against the real model and the fixtures in ../shared.
#
#   scripts/test-python.sh [VENV]        (default: ${FATHOM_TEST_VENV:-$HOME/.cache/fathom/test-venv})
#
# The venv is the one scripts/setup.sh creates; maturin, pytest and numpy (pinned in
# crates/python/requirements-dev.txt) are added when missing. crates/python is not a member of
# the root workspace: it has its own Cargo.lock and builds into
# ${CARGO_TARGET_DIR:-$HOME/.cache/fathom/py-target}, so it never waits for (or rebuilds) lance.
# Its own crate is linted as it builds (clippy, warnings are errors) and format-checked.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
crate="$root/crates/python"
venv="${1:-${FATHOM_TEST_VENV:-$HOME/.cache/fathom/test-venv}}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fathom/py-target}"

[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
stamp="$venv/.fathom-python-requirements"
if ! cmp -s "$crate/requirements-dev.txt" "$stamp" 2>/dev/null; then
  echo "test-python: installing crates/python/requirements-dev.txt into $venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$crate/requirements-dev.txt"
  cp "$crate/requirements-dev.txt" "$stamp"
fi

cargo fmt --manifest-path "$crate/Cargo.toml" -- --check

# Lint the crate inside the one release build (as scripts/test.sh does for the workspace):
# clippy-driver compiles fathom-python only, the dependencies build as usual.
clippy_driver="$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver || true)"
if [ -n "$clippy_driver" ]; then
  export RUSTC_WORKSPACE_WRAPPER="$clippy_driver"
  export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
else
  echo "test-python: clippy-driver not found; building without lints" >&2
fi

wheels="$CARGO_TARGET_DIR/wheels"
rm -f "$wheels"/fathom_embed-*.whl
start=$SECONDS
(cd "$crate" && "$venv/bin/maturin" build --release --interpreter "$venv/bin/python" --out "$wheels")
echo "test-python: wheel built in $((SECONDS - start))s" >&2
unset RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS
wheel="$(ls "$wheels"/fathom_embed-*.whl)"
"$venv/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps "$wheel"

cd "$crate"
"$venv/bin/python" -m pytest -q -p no:cacheprovider tests
