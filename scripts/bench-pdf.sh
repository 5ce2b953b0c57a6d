#!/usr/bin/env bash
# How fathom's PDF reader does on real PDFs: the share it reads, how fast (MB of PDF per
# second), and why the others fail. Each file goes through exactly what an ingest runs: the
# `fathom __pdf-extract` child process, with the default budget (60 s, 1 GiB).
#
#   scripts/bench-pdf.sh [DIR]     # default: PDFs from Debian's r-doc-pdf, texlive-latex-base-doc
#                                  # and octave-doc packages, downloaded into ~/.cache/fathom/pdfs
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fathom="${FATHOM_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/fathom}"
dir="${1:-}"
if [ -z "$dir" ]; then
  dir="$HOME/.cache/fathom/pdfs"
  if [ ! -d "$dir/x" ]; then
    mkdir -p "$dir" && (cd "$dir" && apt-get download r-doc-pdf texlive-latex-base-doc octave-doc >/dev/null 2>&1 \
      && for f in *.deb; do dpkg-deb -x "$f" x; done)
  fi
  dir="$dir/x"
fi
python3 - "$fathom" "$dir" <<'PY'
import json, pathlib, subprocess, sys, time
fathom, folder = sys.argv[1], pathlib.Path(sys.argv[2])
files = sorted(p for p in folder.rglob("*.pdf") if p.is_file())
ok = failed = 0
mb_ok = seconds_ok = 0.0
reasons = {}
for p in files:
    data = p.read_bytes()
    start = time.monotonic()
    try:
        r = subprocess.run([fathom, "__pdf-extract"], input=data, capture_output=True, timeout=60)
        code, err, text = r.returncode, r.stderr.decode(errors="replace").strip(), r.stdout
    except subprocess.TimeoutExpired:
        code, err, text = -1, "timeout", b""
    took = time.monotonic() - start
    if code == 0 and text.strip():
        ok += 1
        mb_ok += len(data) / 1e6
        seconds_ok += took
    else:
        failed += 1
        key = (err or ("no text" if code == 0 else f"exit {code}")).split(":")[0][:80]
        reasons[key] = reasons.get(key, 0) + 1
print(json.dumps({
    "pdfs": len(files), "read": ok, "failed": failed,
    "success_rate": round(ok / max(len(files), 1), 3),
    "mb_read": round(mb_ok, 1), "seconds": round(seconds_ok, 1),
    "mb_per_s": round(mb_ok / max(seconds_ok, 1e-9), 2),
    "failures": reasons,
}))
PY
