#!/usr/bin/env python3
"""Write a folder of documents made by the real writer libraries, to test fathom's readers.

The ingest readers (Word, PowerPoint, Excel, OpenDocument, EPUB, RTF, mail, Jupyter, CSV) are
unit-tested on XML their author wrote; this script makes the same formats with the libraries
people's files actually come from, so the readers meet independent output.

    python3 scripts/make_docs_folder.py OUT_DIR            # one file per format (below)
    python3 scripts/make_docs_folder.py OUT_DIR --many N   # N varied copies of each format

One file per format, each with a keyword that appears in that file only:

    report.docx    python-docx  heading, paragraphs, a 2x3 table, header and footer   "marmalade"
    deck.pptx      python-pptx  3 title+bullet slides; slide 2 has the keyword and
                                speaker notes holding "notesword"                     "tangerine"
    sheet.xlsx     openpyxl     sheet "Q3": header (Region, Product, Revenue) and 50
                                data rows, the keyword in spreadsheet row 40; a second
                                sheet "Summary" with a date cell                      "kumquat"
    legacy.xls     xlwt         a header and 10 rows (plus a date cell)               "persimmon"
    letter.odt     odfpy        heading, paragraphs, a list                           "quince"
    sheet.ods      odfpy        header row and rows; keyword in spreadsheet row 5     "mulberry"
    slides.odp     odfpy        3 slides with title and text; keyword on slide 2      "gooseberry"
    book.epub      ebooklib     3 chapters with titles (nav first in the spine, as in
                                ebooklib's own example); keyword in chapter 3         "elderflower"
    note.eml       email        multipart/mixed: multipart/alternative (quoted-printable
                                text/plain with "café", text/html) + a binary attachment;
                                subject "Budget review"                               "rhubarb"
    box.mbox       mailbox      5 messages; message 4 "Travel plans" has a base64 body
                                with the keyword; message 2's body has a line starting
                                "From " (mbox writes it as ">From ")                  "apricot"
    notebook.ipynb nbformat     4 cells (markdown, code, markdown, code); cell 3 holds
                                the keyword; cell 2 has a stream output               "lychee"
    data.csv       csv          header (id,name,city) + 200 rows; spreadsheet row 150
                                (file line 150, id 149) holds the keyword             "Wollongong"
    data.tsv       csv          header + 30 rows; spreadsheet row 20 (id 19)          "Tromsø"
    letter.rtf     by hand      RTF 1 as WordPad writes it: fonttbl, colortbl, \\par,
                                \\'e9 and \\u8212? escapes                             "damson"

With --many N, names carry a counter (report-0001.docx, ...), the text carries the counter,
paragraph and row counts vary a little with it, and each keyword becomes keyword+counter
(marmalade0001), so every file still has a word of its own.

Needs Python 3.11+ and, pinned in scripts/requirements-test.txt (the test venv scripts/setup.sh makes):
    python-docx python-pptx openpyxl xlwt odfpy ebooklib nbformat
(they pull in lxml, Pillow and rpds-py, which are binary wheels; everything else is pure Python).
The eml, mbox, csv, tsv and rtf files use only the standard library.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import mailbox
import os
import sys
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

KEYWORDS = {
    "docx": "marmalade",
    "pptx": "tangerine",
    "xlsx": "kumquat",
    "xls": "persimmon",
    "odt": "quince",
    "ods": "mulberry",
    "odp": "gooseberry",
    "epub": "elderflower",
    "eml": "rhubarb",
    "mbox": "apricot",
    "ipynb": "lychee",
    "csv": "Wollongong",
    "tsv": "Tromsø",
    "rtf": "damson",
}

REGIONS = ["North", "South", "East", "West", "Central"]
PRODUCTS = ["apples", "pears", "plums", "cherries", "figs", "grapes", "lemons", "limes"]
NAMES = ["Ada", "Brian", "Chloé", "Dmitri", "Eun-ji", "Farah", "Gustav", "Hana", "Idris", "Jonas"]
CITIES = ["Sydney", "Melbourne", "Brisbane", "Perth", "Adelaide", "Hobart", "Darwin", "Cairns"]
CITIES_NO = ["Oslo", "Bergen", "Trondheim", "Stavanger", "Bodø", "Ålesund", "Drammen"]


class Spec:
    """What varies between copies: the counter, its suffix for text and keywords."""

    def __init__(self, n: int | None):
        self.n = n
        self.tag = "" if n is None else f" (copy {n})"
        self.extra = 0 if n is None else n % 5

    def kw(self, fmt: str) -> str:
        base = KEYWORDS[fmt]
        return base if self.n is None else f"{base}{self.n:04d}"

    def name(self, stem: str, ext: str) -> str:
        return f"{stem}.{ext}" if self.n is None else f"{stem}-{self.n:04d}.{ext}"


# --- Word -------------------------------------------------------------------------------------


def make_docx(folder: str, s: Spec) -> str:
    import docx

    d = docx.Document()
    sec = d.sections[0]
    sec.header.paragraphs[0].text = f"Quarterly report header{s.tag}"
    sec.footer.paragraphs[0].text = "Confidential footer text"
    d.add_heading(f"Quarterly Report{s.tag}", level=1)
    d.add_paragraph(
        "This quarter the kitchen team tested new preserves. "
        f"The {s.kw('docx')} batch sold out in two days."
    )
    p = d.add_paragraph("A second paragraph with ")
    p.add_run("bold").bold = True
    p.add_run(" and ")
    p.add_run("italic").italic = True
    p.add_run(" runs, and a tab\there.")
    d.add_heading("Figures", level=2)
    t = d.add_table(rows=2, cols=3)
    t.style = "Table Grid"
    for i, v in enumerate(["Item", "Jars", "Price"]):
        t.cell(0, i).text = v
    for i, v in enumerate(["Jam", "120", "4.50"]):
        t.cell(1, i).text = v
    for i in range(s.extra):
        d.add_paragraph(f"Extra paragraph {i + 1}{s.tag}.", style="List Bullet")
    d.add_paragraph("Closing remarks follow the table.")
    path = os.path.join(folder, s.name("report", "docx"))
    d.save(path)
    return path


# --- PowerPoint -------------------------------------------------------------------------------


def make_pptx(folder: str, s: Spec) -> str:
    from pptx import Presentation

    prs = Presentation()
    layout = prs.slide_layouts[1]  # Title and Content
    slides = [
        (f"Welcome{s.tag}", ["Agenda for today", "Market overview", "Next steps"]),
        ("Market overview", [f"The {s.kw('pptx')} crop doubled", "Prices are stable"]),
        ("Next steps", ["Hire two pickers", "Review in March"] + [f"Item {i}" for i in range(s.extra)]),
    ]
    for i, (title, bullets) in enumerate(slides):
        slide = prs.slides.add_slide(layout)
        slide.shapes.title.text = title
        body = slide.placeholders[1].text_frame
        body.text = bullets[0]
        for b in bullets[1:]:
            para = body.add_paragraph()
            para.text = b
            para.level = 1 if b.startswith("Prices") else 0
        if i == 1:
            slide.notes_slide.notes_text_frame.text = "Speaker notes: mention the notesword figure."
    path = os.path.join(folder, s.name("deck", "pptx"))
    prs.save(path)
    return path


# --- Excel ------------------------------------------------------------------------------------


def make_xlsx(folder: str, s: Spec) -> str:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "Q3"
    ws.append(["Region", "Product", "Revenue"])
    rows = 50 + s.extra * 10
    for r in range(2, rows + 2):  # spreadsheet rows 2..51
        product = s.kw("xlsx") if r == 40 else PRODUCTS[r % len(PRODUCTS)]
        ws.append([REGIONS[r % len(REGIONS)], product, round(1000 + r * 37.25, 2)])
    summary = wb.create_sheet("Summary")
    summary.append(["Report date", dt.date(2024, 9, 30)])
    summary["B1"].number_format = "yyyy-mm-dd"
    summary.append(["Total", f"=SUM(Q3!C2:C{rows + 1})"])
    summary.append(["Note", f"Figures are provisional{s.tag}"])
    path = os.path.join(folder, s.name("sheet", "xlsx"))
    wb.save(path)
    return path


def make_xls(folder: str, s: Spec) -> str:
    import xlwt

    wb = xlwt.Workbook(encoding="utf-8")
    ws = wb.add_sheet("Orders")
    date_style = xlwt.easyxf(num_format_str="YYYY-MM-DD")
    for c, h in enumerate(["Order", "Fruit", "Quantity", "Shipped"]):
        ws.write(0, c, h)
    for r in range(1, 11 + s.extra):
        fruit = s.kw("xls") if r == 7 else PRODUCTS[r % len(PRODUCTS)]
        ws.write(r, 0, f"ORD-{r:03d}")
        ws.write(r, 1, fruit)
        ws.write(r, 2, r * 3)
        ws.write(r, 3, dt.date(2024, 1, r), date_style)
    path = os.path.join(folder, s.name("legacy", "xls"))
    wb.save(path)
    return path


# --- OpenDocument -----------------------------------------------------------------------------


def make_odt(folder: str, s: Spec) -> str:
    from odf.opendocument import OpenDocumentText
    from odf.style import Style, TextProperties
    from odf.text import H, List, ListItem, P, Span

    doc = OpenDocumentText()
    bold = Style(name="Bold", family="text")
    bold.addElement(TextProperties(fontweight="bold"))
    doc.automaticstyles.addElement(bold)
    doc.text.addElement(H(outlinelevel=1, text=f"A letter about fruit{s.tag}"))
    doc.text.addElement(P(text="Dear neighbour,"))
    p = P(text=f"The {s.kw('odt')} tree by the fence is ")
    p.addElement(Span(stylename=bold, text="ready"))
    p.addText(" to pick this week.")
    doc.text.addElement(p)
    lst = List()
    for item in ["Bring a basket", "Mind the wasps"] + [f"Extra {i}" for i in range(s.extra)]:
        li = ListItem()
        li.addElement(P(text=item))
        lst.addElement(li)
    doc.text.addElement(lst)
    doc.text.addElement(P(text="Kind regards, Sam"))
    path = os.path.join(folder, s.name("letter", "odt"))
    doc.save(path)
    return path


def make_ods(folder: str, s: Spec) -> str:
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    doc = OpenDocumentSpreadsheet()
    table = Table(name="Harvest")

    def row(values):
        tr = TableRow()
        for v in values:
            if isinstance(v, (int, float)):
                cell = TableCell(valuetype="float", value=v)
                cell.addElement(P(text=str(v)))
            else:
                cell = TableCell(valuetype="string")
                cell.addElement(P(text=v))
            tr.addElement(cell)
        table.addElement(tr)

    row(["Fruit", "Kilograms", "Picker"])
    for r in range(2, 10 + s.extra):  # spreadsheet rows 2..9
        fruit = s.kw("ods") if r == 5 else PRODUCTS[r % len(PRODUCTS)]
        row([fruit, r * 2.5, NAMES[r % len(NAMES)]])
    doc.spreadsheet.addElement(table)
    path = os.path.join(folder, s.name("sheet", "ods"))
    doc.save(path)
    return path


def make_odp(folder: str, s: Spec) -> str:
    from odf.draw import Frame, Page, TextBox
    from odf.namespaces import PRESENTATIONNS
    from odf.opendocument import OpenDocumentPresentation
    from odf.style import (
        MasterPage,
        PageLayout,
        PageLayoutProperties,
        Style,
        GraphicProperties,
    )
    from odf.text import List, ListItem, P

    doc = OpenDocumentPresentation()
    layout = PageLayout(name="PL1")
    layout.addElement(PageLayoutProperties(pagewidth="28cm", pageheight="21cm", printorientation="landscape"))
    doc.automaticstyles.addElement(layout)
    master = MasterPage(name="Default", pagelayoutname=layout)
    doc.masterstyles.addElement(master)
    frame_style = Style(name="FrameStyle", family="graphic")
    frame_style.addElement(GraphicProperties(fill="none", stroke="none"))
    doc.automaticstyles.addElement(frame_style)

    slides = [
        (f"Orchard plan{s.tag}", ["Where the trees go", "What we plant first"]),
        ("Berries", [f"The {s.kw('odp')} bushes go by the wall", "Water twice a week"]),
        ("Budget", ["Trees: 400", "Tools: 150"] + [f"Extra {i}" for i in range(s.extra)]),
    ]
    for i, (title, lines) in enumerate(slides, 1):
        page = Page(name=f"page{i}", masterpagename=master)
        tf = Frame(stylename=frame_style, width="25cm", height="3cm", x="1.5cm", y="1cm")
        tf.setAttrNS(PRESENTATIONNS, "class", "title")  # as Impress marks placeholders
        tb = TextBox()
        tb.addElement(P(text=title))
        tf.addElement(tb)
        page.addElement(tf)
        bf = Frame(stylename=frame_style, width="25cm", height="14cm", x="1.5cm", y="5cm")
        bf.setAttrNS(PRESENTATIONNS, "class", "outline")
        bb = TextBox()
        lst = List()
        for line in lines:
            li = ListItem()
            li.addElement(P(text=line))
            lst.addElement(li)
        bb.addElement(lst)
        bf.addElement(bb)
        page.addElement(bf)
        doc.presentation.addElement(page)
    path = os.path.join(folder, s.name("slides", "odp"))
    doc.save(path)
    return path


# --- EPUB -------------------------------------------------------------------------------------


def make_epub(folder: str, s: Spec) -> str:
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier(f"fathom-test-book-{s.n or 0}")
    book.set_title(f"Notes from the Garden{s.tag}")
    book.set_language("en")
    book.add_author("A. Gardener")
    chapters = []
    texts = [
        ("Spring", "<p>The first buds open in March.</p><p>Frost is still a risk.</p>"),
        ("Summer", "<p>Long evenings, much watering.</p><ul><li>Tomatoes</li><li>Beans</li></ul>"),
        ("Autumn", f"<p>We make {s.kw('epub')} cordial from the last blossoms.</p>"
                   + "".join(f"<p>Extra paragraph {i}.</p>" for i in range(s.extra))),
    ]
    for i, (title, body) in enumerate(texts, 1):
        c = epub.EpubHtml(title=title, file_name=f"chap_{i:02d}.xhtml", lang="en")
        c.content = f"<h1>{title}</h1>{body}"
        book.add_item(c)
        chapters.append(c)
    book.toc = tuple(chapters)
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    style = "body { font-family: serif; }"
    book.add_item(epub.EpubItem(uid="style_nav", file_name="style/nav.css", media_type="text/css",
                                content=style))
    book.spine = ["nav", *chapters]
    path = os.path.join(folder, s.name("book", "epub"))
    epub.write_epub(path, book, {})
    return path


# --- Mail -------------------------------------------------------------------------------------

BASE_DATE = dt.datetime(2024, 5, 6, 9, 30, tzinfo=dt.timezone.utc)


def make_eml(folder: str, s: Spec) -> str:
    kw = s.kw("eml")
    m = EmailMessage()
    m["From"] = "Zoë Example <zoe@example.org>"
    m["To"] = "team@example.org"
    m["Subject"] = "Budget review"
    m["Date"] = format_datetime(BASE_DATE)
    m["Message-ID"] = make_msgid(domain="example.org")
    m.set_content(
        f"Hi all,\n\nThe café budget is fine; the {kw} tart line is over by 12%.\n"
        "Long lines get soft-wrapped by quoted-printable encoding, so this sentence goes on for a "
        f"while to make sure it is longer than seventy-six characters.{s.tag}\n\nZoë\n",
        cte="quoted-printable",
    )
    m.add_alternative(
        "<html><body><p>Hi all,</p>"
        f"<p>The caf&eacute; budget is fine; the <b>{kw}</b> tart line is over by 12%.</p>"
        "<p>Zo&euml;</p></body></html>",
        subtype="html",
    )
    m.add_attachment(bytes(range(256)) * 4, maintype="application", subtype="octet-stream",
                     filename="figures.bin")
    path = os.path.join(folder, s.name("note", "eml"))
    with open(path, "wb") as f:
        f.write(bytes(m))
    return path


def make_mbox(folder: str, s: Spec) -> str:
    path = os.path.join(folder, s.name("box", "mbox"))
    if os.path.exists(path):
        os.remove(path)
    box = mailbox.mbox(path, create=True)
    box.lock()
    try:
        subjects = ["Hello", "Minutes", "Lunch?", "Travel plans", "Re: Lunch?"]
        bodies = [
            "Just saying hello.",
            "Minutes of the meeting are below.\n\nFrom the chair: thanks everyone.\nEnd.",
            "Lunch at noon on Friday?",
            f"The train leaves at 8. Pack an {s.kw('mbox')} or two for the trip.",
            "Friday works for me." + s.tag,
        ]
        for i, (subj, body) in enumerate(zip(subjects, bodies)):
            addr = NAMES[i].lower().encode("ascii", "ignore").decode() + "@example.org"
            m = EmailMessage()
            m["From"] = f"{NAMES[i]} <{addr}>"
            m["To"] = "me@example.org"
            m["Subject"] = subj
            m["Date"] = format_datetime(BASE_DATE + dt.timedelta(hours=i))
            if subj == "Travel plans":
                m.set_content(body + "\n", cte="base64")
            else:
                m.set_content(body + "\n")
            msg = mailbox.mboxMessage(m)
            msg.set_from(addr, (BASE_DATE + dt.timedelta(hours=i)).timetuple())
            box.add(msg)
        box.flush()
    finally:
        box.unlock()
        box.close()
    return path


# --- Jupyter ----------------------------------------------------------------------------------


def make_ipynb(folder: str, s: Spec) -> str:
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        new_markdown_cell(f"# Harvest analysis{s.tag}\n\nLoad the numbers and print a total."),
        new_code_cell(
            "weights = [2.5, 3.0, 4.25]\nprint(sum(weights))",
            execution_count=1,
            outputs=[new_output("stream", name="stdout", text="9.75\n")],
        ),
        new_markdown_cell(f"## Findings\n\nThe *{s.kw('ipynb')}* trees gave the most fruit."),
        new_code_cell("import math\nmath.sqrt(2)", execution_count=2,
                      outputs=[new_output("execute_result", data={"text/plain": "1.4142135623730951"},
                                          execution_count=2)]),
    ]
    nbformat.validate(nb)
    path = os.path.join(folder, s.name("notebook", "ipynb"))
    with open(path, "w", encoding="utf-8") as f:
        nbformat.write(nb, f)
    return path


# --- Delimited --------------------------------------------------------------------------------


def make_csv(folder: str, s: Spec) -> str:
    path = os.path.join(folder, s.name("data", "csv"))
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "name", "city"])
        for i in range(1, 201 + s.extra * 20):  # id i is on spreadsheet row i + 1
            city = s.kw("csv") if i + 1 == 150 else CITIES[i % len(CITIES)]
            name = NAMES[i % len(NAMES)]
            if i % 37 == 0:
                name = f'{name} "the {i}th", Jr.'  # quotes and a comma: csv quotes the field
            w.writerow([i, name, city])
    return path


def make_tsv(folder: str, s: Spec) -> str:
    path = os.path.join(folder, s.name("data", "tsv"))
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, dialect="excel-tab")
        w.writerow(["id", "name", "city"])
        for i in range(1, 31 + s.extra):
            city = s.kw("tsv") if i + 1 == 20 else CITIES_NO[i % len(CITIES_NO)]
            w.writerow([i, NAMES[i % len(NAMES)], city])
    return path


# --- RTF --------------------------------------------------------------------------------------


def make_rtf(folder: str, s: Spec) -> str:
    kw = s.kw("rtf")
    tag = s.tag
    # As WordPad (Windows 10) writes it: ANSI, cp1252, a font and color table, \viewkind4, \uc1.
    rtf = (
        r"{\rtf1\ansi\ansicpg1252\deff0\nouicompat\deflang2057"
        r"{\fonttbl{\f0\fnil\fcharset0 Calibri;}{\f1\fnil\fcharset2 Symbol;}}" "\r\n"
        r"{\colortbl ;\red255\green0\blue0;\red0\green0\blue255;}" "\r\n"
        r"{\*\generator Riched20 10.0.19041}\viewkind4\uc1 " "\r\n"
        r"\pard\sa200\sl276\slmult1\b\f0\fs28\lang9 Orchard letter" + tag + r"\b0\fs22\par" "\r\n"
        r"Dear Ren\'e9e,\par" "\r\n"
        r"The \cf1 " + kw + r"\cf0  plums are ripe \u8212? pick them before the birds do.\par" "\r\n"
        r"{\pntext\f1\'B7\tab}{\*\pn\pnlvlblt\pnf1\pnindent0{\pntxtb\'B7}}"
        r"\fi-360\li720 Bring a ladder\par" "\r\n"
        r"{\pntext\f1\'B7\tab}Bring \i two\i0  baskets\par" "\r\n"
        r"\pard\sa200\sl276\slmult1 See you Saturday.\par" "\r\n"
        "}\r\n\x00"  # WordPad (RichEdit) ends the file with a NUL byte after the last brace
    )
    path = os.path.join(folder, s.name("letter", "rtf"))
    with open(path, "wb") as f:
        f.write(rtf.encode("ascii"))
    return path


MAKERS = [
    make_docx, make_pptx, make_xlsx, make_xls, make_odt, make_ods, make_odp, make_epub,
    make_eml, make_mbox, make_ipynb, make_csv, make_tsv, make_rtf,
]


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", help="where to write (created if missing)")
    ap.add_argument("--many", type=int, metavar="N",
                    help="write N varied copies of each format (for throughput benchmarks)")
    args = ap.parse_args(argv)
    os.makedirs(args.folder, exist_ok=True)
    specs = [Spec(None)] if not args.many else [Spec(n) for n in range(1, args.many + 1)]
    count = 0
    for s in specs:
        for make in MAKERS:
            make(args.folder, s)
            count += 1
    print(f"wrote {count} files to {args.folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
