"""The ingest's single steps in the Python package (fathom-docs, the CLI's code): the walk, reading
a file (in the parser child and in process), the sync plan and `Ingestor.process`, with hostile
input: links out of the root, a broken document, a binary file, a path that climbs out."""

import os

import pytest

import fathom

from conftest import minilm_dir


@pytest.fixture(scope="module")
def ingestor():
    return fathom.Ingestor(fathom.SentenceTransformer(str(minilm_dir())))


def test_the_walk_keeps_to_the_root_and_its_rules(tmp_path):
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / "a.md").write_text("# A")
    (root / "sub" / "b.txt").write_text("b")
    (root / ".hidden").write_text("h")
    (root / ".gitignore").write_text("ignored.txt\n")
    (root / "ignored.txt").write_text("i")
    secret = tmp_path / "secret.txt"
    secret.write_text("not yours")
    os.symlink(secret, root / "link.txt")
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        w = fathom.walk_folder("docs")
    finally:
        os.chdir(old)
    assert [f[0] for f in w["files"]] == ["docs/a.md", "docs/sub/b.txt"]
    assert w["outside"] == ["docs/link.txt"] and w["prefix"] == "docs/" and w["complete"]
    with pytest.raises(ValueError, match="not a folder"):
        fathom.walk_folder(str(secret))


@pytest.mark.parametrize("isolate", [True, False])
def test_reading_a_document_in_the_parser_child_and_in_process(tmp_path, isolate):
    import docx

    d = docx.Document()
    d.add_paragraph("Tide tables for the northern harbour.")
    d.save(tmp_path / "t.docx")
    got = fathom.read_document(str(tmp_path / "t.docx"), isolate=isolate)
    assert got["status"] == "text" and got["format"] == "docx"
    assert "Tide tables" in got["sections"][0][0]
    broken = fathom.read_document("broken.docx", b"PK\x03\x04 not a zip at all", isolate=isolate)
    assert broken["status"] == "failed" and broken["message"], broken
    binary = fathom.read_document("x.bin", bytes(range(256)), isolate=isolate)
    assert binary["status"] == "skipped" and "binary" in binary["message"]
    lossy = fathom.read_document("x.txt", b"caf\xe9 au lait", isolate=isolate)
    assert lossy["status"] == "text" and lossy["lossy"] and "\ufffd" in lossy["sections"][0][0]


def test_the_sync_plan_is_the_clis():
    stored = {"d/a": "1", "d/b": "2", "d/gone": "3", "d/locked/x": "4", "d/big": "5"}
    plan = fathom.sync_plan(stored, [("d/a", "1"), ("d/b", "changed"), ("d/new", "9")], ["d/big"],
                            ["d/locked"], True)
    assert plan["unchanged"] == ["d/a"] and sorted(plan["embed"]) == ["d/b", "d/new"]
    assert sorted(plan["delete"]) == ["d/big", "d/gone"] and plan["keep"] == ["d/locked/x"]
    # A walk that could not place an error deletes nothing.
    assert fathom.sync_plan(stored, [("d/a", "1")], [], [], False)["delete"] == []


def test_process_reports_each_file_and_reads_nothing_outside_the_root(tmp_path, ingestor):
    root = tmp_path / "docs"
    root.mkdir()
    (root / "a.txt").write_text("Kelp forests grow fastest in cold, nutrient-rich water. " * 40)
    (root / "same.txt").write_text("unchanged")
    (root / "b.bin").write_bytes(b"\x00" * 100)
    (tmp_path / "outside.txt").write_text("private")
    same = ingestor.source_hash(b"unchanged")
    cols, statuses = ingestor.process(str(root), [
        ("docs/a.txt", "a.txt", None), ("docs/same.txt", "same.txt", same), ("docs/b.bin", "b.bin", None),
        ("docs/x", "../outside.txt", None), ("docs/missing", "missing.txt", None),
    ])
    by_id = {s["source_id"]: s for s in statuses}
    assert by_id["docs/a.txt"]["status"] == "embedded" and by_id["docs/a.txt"]["chunks"] > 1
    assert by_id["docs/same.txt"]["status"] == "unchanged" and by_id["docs/same.txt"]["hash"] == same
    assert by_id["docs/b.bin"]["status"] == "skipped" and by_id["docs/b.bin"]["kind"] == "binary"
    assert by_id["docs/x"]["status"] == "unreadable" and "outside" in by_id["docs/x"]["message"]
    assert by_id["docs/missing"]["status"] == "unreadable"
    n = by_id["docs/a.txt"]["chunks"]
    assert set(cols["source_id"]) == {"docs/a.txt"} and cols["chunk_index"] == list(range(n))
    assert cols["vector"].shape == (n * 384,)
    assert all("private" not in t for t in cols["text"])
    # Chunks are the CLI's: at most chunk_tokens tokens, offsets into the file's text.
    text = (root / "a.txt").read_text()
    for t, s, e in zip(cols["text"], cols["char_start"], cols["char_end"]):
        assert text[s:e] == t
    with pytest.raises(ValueError, match="overlap"):
        fathom.Ingestor(fathom.SentenceTransformer(str(minilm_dir())), chunk_tokens=10, overlap=10)
