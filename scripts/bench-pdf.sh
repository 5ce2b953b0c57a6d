#!/usr/bin/env bash
# How fathom's PDF reader does on real PDFs: the share it reads, how fast (MB of PDF per
# second), why the others fail, and how close its words are to Poppler's `pdftotext` (word-level
# F1 over the multiset of words, per PDF, then the mean and median). Each file goes through
# exactly what an ingest runs: the `fathom __parse-document pdf` child process, with the default
# budget (60 s, 1 GiB); OCR is not part of this (pages without text stay empty).
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
import collections, json, pathlib, re, shutil, statistics, subprocess, sys, time
fathom, folder = sys.argv[1], pathlib.Path(sys.argv[2])
poppler = shutil.which("pdftotext")
WORD = re.compile(r"\w+")

def words(text):
    # Ligatures as the letters they stand for; words case-folded.
    text = text.replace("\ufb01", "fi").replace("\ufb02", "fl").replace("\ufb00", "ff")
    return collections.Counter(w.casefold() for w in WORD.findall(text))

def f1(got, want):
    common = sum((got & want).values())
    if not got or not want or not common:
        return 0.0
    p, r = common / sum(got.values()), common / sum(want.values())
    return 2 * p * r / (p + r)

f1s = []
files = sorted(p for p in folder.rglob("*.pdf") if p.is_file())
ok = failed = 0
mb_ok = seconds_ok = 0.0
reasons = {}
for p in files:
    data = p.read_bytes()
    start = time.monotonic()
    try:
        r = subprocess.run([fathom, "__parse-document", "pdf"], input=data, capture_output=True, timeout=60)
        code, err = r.returncode, r.stderr.decode(errors="replace").strip()
        text = ("\n\n".join(s["text"] for s in json.loads(r.stdout)["sections"]) if code == 0 else "").encode()
    except subprocess.TimeoutExpired:
        code, err, text = -1, "timeout", b""
    took = time.monotonic() - start
    if code == 0 and text.strip():
        ok += 1
        mb_ok += len(data) / 1e6
        seconds_ok += took
        if poppler:
            ref = subprocess.run([poppler, str(p), "-"], capture_output=True, timeout=120).stdout
            want = words(ref.decode(errors="replace"))
            if want:
                f1s.append(f1(words(text.decode(errors="replace")), want))
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
    "word_f1_vs_pdftotext": {"pdfs": len(f1s),
                             "mean": round(statistics.mean(f1s), 4) if f1s else None,
                             "median": round(statistics.median(f1s), 4) if f1s else None,
                             "under_0.9": sum(1 for x in f1s if x < 0.9)},
}))
PY
