#!/usr/bin/env python3
"""Writes a folder of hostile documents next to one good file, for measuring what an ingest does
with them (the README's "Hostile files" figures):

    python3 scripts/make_hostile_folder.py /tmp/bombs
    /usr/bin/time -v fathom ingest /tmp/bombs --store /tmp/bombs-store --max-file-size 300000000 --json

bomb.docx (document.xml inflates to 2 GiB), laughs.docx ("billion laughs"), deep.docx / deep.rtf /
deep.ipynb / deep.html (nested 100,000 deep), giant.png (declares 100,000 x 100,000 pixels),
big.mbox (100,000 messages), rows.csv (1 million rows), rows10m.csv (10 million rows, 188 MB) and
fine.txt. Standard library only.
"""
import os
import struct
import sys
import zipfile

CT = ('<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
      '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
      '<Default Extension="xml" ContentType="application/xml"/></Types>')
RELS = ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
        'Target="word/document.xml"/></Relationships>')
W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def docx(path, document):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", CT)
        z.writestr("_rels/.rels", RELS)
        z.writestr("word/document.xml", document)


def main(folder):
    os.makedirs(folder, exist_ok=True)
    os.chdir(folder)
    with zipfile.ZipFile("bomb.docx", "w", zipfile.ZIP_DEFLATED, allowZip64=True) as z:
        z.writestr("[Content_Types].xml", CT)
        z.writestr("_rels/.rels", RELS)
        with z.open("word/document.xml", "w", force_zip64=True) as f:
            block = b" " * (1 << 20)
            for _ in range(2048):
                f.write(block)
    dtd = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol%d;" % (i - 1)) * 10}">' for i in range(1, 10))
    docx("laughs.docx", f'<?xml version="1.0"?><!DOCTYPE w:document [{dtd}]><w:document {W}>'
                        '<w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>')
    docx("deep.docx", f'<?xml version="1.0"?><w:document {W}><w:body>'
                      + "<w:r>" * 100000 + "deep" + "</w:r>" * 100000 + "</w:body></w:document>")
    with open("deep.ipynb", "w") as f:
        f.write("[" * 100000)
    with open("deep.rtf", "w") as f:
        f.write("{\\rtf1 " + "{" * 100000)
    with open("deep.html", "w") as f:
        f.write("<div>" * 100000 + "deep" + "</div>" * 100000)
    with open("giant.png", "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + struct.pack(">II", 100000, 100000) + bytes([8, 2, 0, 0, 0, 0, 0, 0, 0]))
    with open("big.mbox", "w") as f:
        for i in range(100000):
            f.write(f"From sender@example.org Mon Jan  1 00:00:00 2024\nFrom: a{i}@example.org\nSubject: note {i}\n\nbody {i}\n\n")
    with open("rows.csv", "w") as f:
        f.write("id,name,city\n")
        for i in range(1000000):
            f.write(f"{i},name{i},city{i}\n")
    with open("rows10m.csv", "w") as f:
        f.write("id,name,city\n")
        for i in range(10000000):
            f.write(f"{i},n{i},c\n")
    with open("fine.txt", "w") as f:
        f.write("The lighthouse keeper logs every passing ship.")


if __name__ == "__main__":
    main(sys.argv[1])
