#!/usr/bin/env bash
# How fast fathom reads each document format, and what OCR costs, through exactly what an ingest
# runs: one `fathom __parse-document KIND` child process per file (the file on stdin, its located
# text as JSON on stdout), with the default budget.
#
#   scripts/bench-formats.sh [N]     # N files of each format (default 100), made by
#                                    # scripts/make_docs_folder.py --many N with the test venv
#
# Prints, per format: files, MB, files/s and MB/s of the parse (child start included); then OCR
# seconds per page for rendered pages (PNG, 150 dpi) and scanned PDF pages (rendered at 300 dpi by
# pdftoppm, then Tesseract), each through `fathom ingest` (embedding included, a few ms a page).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fathom="${FATHOM_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/fathom}"
python="${FATHOM_TEST_PYTHON:-$HOME/.cache/fathom/test-venv/bin/python}"
n="${1:-100}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$python" "$root/scripts/make_docs_folder.py" "$work/docs" --many "$n" >/dev/null
"$python" - "$fathom" "$work" <<'PY'
import collections, json, pathlib, subprocess, sys, time
fathom, work = sys.argv[1], pathlib.Path(sys.argv[2])
by_kind = collections.defaultdict(list)
for p in sorted((work / "docs").iterdir()):
    by_kind[p.suffix.lstrip(".")].append(p)
rows = []
for kind, files in sorted(by_kind.items()):
    size = sum(p.stat().st_size for p in files)
    failed = 0
    start = time.monotonic()
    for p in files:
        r = subprocess.run([fathom, "__parse-document", kind], input=p.read_bytes(), capture_output=True)
        if r.returncode != 0 or not json.loads(r.stdout)["sections"]:
            failed += 1
    took = time.monotonic() - start
    rows.append({"format": kind, "files": len(files), "failed": failed, "mb": round(size / 1e6, 2),
                 "files_per_s": round(len(files) / took, 1), "mb_per_s": round(size / 1e6 / took, 2)})
for r in rows:
    print(json.dumps(r))

# OCR: pages of a real PDF (Debian's shared-mime-info spec) as images, and as a scanned PDF.
src = pathlib.Path("/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf")
pages = 5
if not src.exists():
    print(json.dumps({"ocr": f"{src} missing (apt-get install shared-mime-info)"}))
    sys.exit(0)
img = work / "images"
img.mkdir()
for i in range(1, pages + 1):
    png = subprocess.run(["pdftoppm", "-png", "-r", "150", "-f", str(i), "-l", str(i), "-singlefile", str(src)],
                         capture_output=True, check=True).stdout
    (img / f"page{i}.png").write_bytes(png)
def ingest(folder, store):
    start = time.monotonic()
    r = subprocess.run([fathom, "ingest", "--json", "--ocr", "always", "--store", str(store), str(folder)],
                       capture_output=True, check=True)
    return time.monotonic() - start, json.loads(r.stdout)
took, summary = ingest(img, work / "store-img")
print(json.dumps({"ocr": "png pages (150 dpi)", "pages": pages, "seconds_per_page": round(took / pages, 2),
                  "read": summary["formats"].get("image", {})}))
# A scanned PDF: each page an image only (grey pixels from pdftoppm), no text layer.
scan = work / "scan"
scan.mkdir()
import struct, zlib
objs = [b"<< /Type /Catalog /Pages 2 0 R >>", None]
kids = []
for i in range(1, pages + 1):
    pgm = subprocess.run(["pdftoppm", "-gray", "-r", "150", "-f", str(i), "-l", str(i), "-singlefile", str(src)],
                         capture_output=True, check=True).stdout
    head = pgm.split(b"\n", 3)
    w, h = map(int, head[1].split())
    pixels = head[3]
    data = zlib.compress(pixels)
    page_no = len(objs) + 1
    kids.append(f"{page_no} 0 R")
    objs.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {page_no + 1} 0 R /Resources << /XObject << /Im1 {page_no + 2} 0 R >> >> >>".encode())
    content = b"q 612 0 0 792 0 0 cm /Im1 Do Q"
    objs.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    objs.append(b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /FlateDecode /Length %d >>\nstream\n" % (w, h, len(data)) + data + b"\nendstream")
objs[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>".encode()
out = bytearray(b"%PDF-1.4\n")
offsets = []
for i, body in enumerate(objs):
    offsets.append(len(out))
    out += b"%d 0 obj\n" % (i + 1) + body + b"\nendobj\n"
xref = len(out)
out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
for o in offsets:
    out += b"%010d 00000 n \n" % o
out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
(scan / "scan.pdf").write_bytes(out)
took, summary = ingest(scan, work / "store-scan")
print(json.dumps({"ocr": "scanned pdf pages (rendered at 300 dpi)", "pages": pages,
                  "seconds_per_page": round(took / pages, 2), "chunks": summary["chunks"],
                  "read": summary["formats"].get("pdf", {})}))
PY
