//! A work folder as people have them — Word, PowerPoint, Excel (xlsx and xls), OpenDocument text,
//! sheets and slides, EPUB, RTF, a mail and a mailbox, a notebook, CSV and TSV, a paged PDF, a
//! scanned PDF and a photo of a whiteboard — through the real `fathom` binary: every file is read
//! (the office files are written by the libraries people's files come from:
//! `scripts/make_docs_folder.py`), each unique word finds its file first, and each hit says where
//! in its document it is, in the CLI's JSON and over HTTP. Hostile documents (zip bombs, entity
//! expansion, deep nesting, a giant image) each fail alone within the budget.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use fathom_testkit::{pdf, write};
use serde_json::{json, Value};

use common::{repo_root, test_python, Server};

fn fathom() -> Command {
    common::fathom_command()
}

fn json_of(out: &Output) -> Value {
    common::stdout_json(out)
}

/// Runs `program args` and returns its stdout, failing the test with its stderr.
fn tool(program: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (scripts/setup.sh installs it)"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A page of text rendered to pixels by Poppler: `(width, height, 8-bit grey pixels)`.
fn rendered_page(dir: &Path, text: &str) -> (usize, usize, Vec<u8>) {
    let source = dir.join("page.pdf");
    std::fs::write(&source, pdf::with_text(text)).unwrap();
    let pgm = tool(
        "pdftoppm",
        &[
            "-gray",
            "-r",
            "200",
            "-singlefile",
            source.to_str().unwrap(),
        ],
    );
    // Binary PGM: "P5\n<w> <h>\n255\n" then the pixels.
    let mut fields = Vec::new();
    let mut pos = 0;
    while fields.len() < 4 {
        while pgm[pos].is_ascii_whitespace() {
            pos += 1;
        }
        let start = pos;
        while !pgm[pos].is_ascii_whitespace() {
            pos += 1;
        }
        fields.push(String::from_utf8_lossy(&pgm[start..pos]).into_owned());
    }
    assert_eq!(fields[0], "P5", "pdftoppm -gray writes binary PGM");
    let (w, h): (usize, usize) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    let pixels = pgm[pos + 1..].to_vec();
    assert_eq!(pixels.len(), w * h);
    (w, h, pixels)
}

/// The folder: the office files from the real writers, plus PDFs and pictures made here.
fn work_folder(root: &Path) {
    let out = Command::new(test_python())
        .arg(repo_root().join("scripts/make_docs_folder.py"))
        .arg(root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "make_docs_folder.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    write(
        root,
        "paper.pdf",
        pdf::with_pages(&[
            "Abstract: a study of coastal erosion.",
            "Methods: we sampled the sediment with a gravimeter at low tide.",
            "Results: erosion doubled in a decade.",
        ]),
    );
    let scratch = tempfile::tempdir().unwrap();
    let (w, h, pixels) = rendered_page(
        scratch.path(),
        "Scanned invoice: forty crates of cardamom delivered on Tuesday.",
    );
    write(root, "scan.pdf", pdf::image_only(w, h, &pixels));
    let source = scratch.path().join("board.pdf");
    std::fs::write(
        &source,
        pdf::with_text("Whiteboard: saffron harvest schedule for the autumn."),
    )
    .unwrap();
    let png = tool(
        "pdftoppm",
        &["-png", "-r", "200", "-singlefile", source.to_str().unwrap()],
    );
    write(root, "whiteboard.png", png);
}

/// Each unique word, the file it is in, and where in that file (`None`: a document without
/// places, such as a Word report).
const EXPECTED: &[(&str, &str, Option<&str>)] = &[
    ("marmalade", "report.docx", None),
    (
        "tangerine",
        "deck.pptx",
        Some(r#"{"kind":"slide","slide":2}"#),
    ),
    ("kumquat", "sheet.xlsx", Some("sheet Q3")),
    ("persimmon", "legacy.xls", Some("sheet")),
    ("quince", "letter.odt", None),
    ("mulberry", "sheet.ods", Some("sheet")),
    (
        "gooseberry",
        "slides.odp",
        Some(r#"{"kind":"slide","slide":2}"#),
    ),
    ("elderflower", "book.epub", Some("chapter 3")),
    ("rhubarb", "note.eml", Some("message 1: Budget review")),
    ("apricot", "box.mbox", Some("message 4: Travel plans")),
    (
        "lychee",
        "notebook.ipynb",
        Some(r#"{"kind":"cell","cell":3}"#),
    ),
    ("Wollongong", "data.csv", Some("row")),
    ("damson", "letter.rtf", None),
    (
        "gravimeter",
        "paper.pdf",
        Some(r#"{"kind":"page","page":2}"#),
    ),
    ("cardamom", "scan.pdf", Some(r#"{"kind":"page","page":1}"#)),
    ("saffron", "whiteboard.png", None),
];

fn label(location: &Value) -> String {
    let loc: fathom_store::Location = serde_json::from_value(location.clone()).unwrap();
    loc.label()
}

/// Checks one hit against the expected location: an exact JSON location, or a label prefix.
fn check_location(word: &str, hit: &Value, want: Option<&str>) {
    let got = &hit["location"];
    match want {
        None => assert!(
            got.is_null(),
            "{word}: {} has no places, got {got}",
            hit["source"]
        ),
        Some(w) if w.starts_with('{') => {
            let want: Value = serde_json::from_str(w).unwrap();
            assert_eq!(got, &want, "{word}: location of {}", hit["source"]);
        }
        Some(prefix) => {
            assert!(!got.is_null(), "{word}: {} has no location", hit["source"]);
            assert!(
                label(got).starts_with(prefix),
                "{word}: {} is at {:?}, expected {prefix}…",
                hit["source"],
                label(got)
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_work_folder_of_every_format_is_read_found_and_cited_by_place() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    work_folder(&docs);
    let store = dir.path().join("store");
    let summary = json_of(
        &fathom()
            .args(["ingest", "--json", "--store"])
            .arg(&store)
            .arg(&docs)
            .output()
            .unwrap(),
    );
    assert_eq!(summary["errors"], json!([]), "{summary:#}");
    let files = std::fs::read_dir(&docs).unwrap().count();
    assert_eq!(
        summary["added"], files,
        "every file is a source: {summary:#}"
    );
    assert_eq!(summary["skipped_binary"], 0, "{summary:#}");
    for (format, n) in [
        ("docx", 1),
        ("pptx", 1),
        ("xlsx", 1),
        ("xls", 1),
        ("odt", 1),
        ("ods", 1),
        ("odp", 1),
        ("epub", 1),
        ("rtf", 1),
        ("eml", 1),
        ("mbox", 1),
        ("ipynb", 1),
        ("csv", 1),
        ("tsv", 1),
        ("pdf", 2),
        ("image", 1),
    ] {
        assert_eq!(
            summary["formats"][format],
            json!({"read": n, "skipped": 0, "failed": 0}),
            "{format}: {summary:#}"
        );
    }

    let search = |word: &str| {
        json_of(
            &fathom()
                .args(["search", "--json", "-k", "3", "--store"])
                .arg(&store)
                .arg(word)
                .output()
                .unwrap(),
        )
    };
    for (word, file, want) in EXPECTED {
        let hits = search(word);
        let top = &hits[0];
        assert_eq!(
            top["source"].as_str().unwrap().rsplit('/').next().unwrap(),
            *file,
            "{word}: {hits:#}"
        );
        assert!(
            top["text"].as_str().unwrap().contains(word),
            "{word} is in the passage found: {top:#}"
        );
        check_location(word, top, *want);
    }

    // Over HTTP: the same locations in /search.
    let server = Server::start(&["--store", store.to_str().unwrap()], &[]).await;
    for (word, file, want) in EXPECTED {
        let (status, body) = server.post("/search", json!({"query": word, "k": 3})).await;
        assert_eq!(status, 200, "{body}");
        let top = &body["hits"][0];
        assert!(
            top["source"].as_str().unwrap().ends_with(file),
            "{word} over HTTP: {body:#}"
        );
        check_location(word, top, *want);
    }
}

#[test]
fn hostile_documents_fail_alone_within_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    write(
        &docs,
        "fine.txt",
        "The lighthouse keeper logs every passing ship.",
    );
    // A Word file whose document.xml inflates to 2 GiB of zeros (a few MB on disk).
    write(
        &docs,
        "bomb.docx",
        fathom_testkit::docs::zip_bomb("word/document.xml", 2 << 30),
    );
    // Entity expansion ("billion laughs") in the document XML.
    write(
        &docs,
        "laughs.docx",
        fathom_testkit::docs::billion_laughs_docx(),
    );
    // 100,000 nested elements.
    write(&docs, "deep.docx", fathom_testkit::docs::deep_docx(100_000));
    // A notebook nested 100,000 deep, an RTF with 100,000 open groups.
    write(&docs, "deep.ipynb", "[".repeat(100_000));
    write(
        &docs,
        "deep.rtf",
        "{\\rtf1 ".to_string() + &"{".repeat(100_000),
    );
    // HTML nested 100,000 elements deep: html2text took 43 s on it when it ran in the ingest's
    // own process; in the parser child the time budget stops it.
    write(
        &docs,
        "deep.html",
        "<div>".repeat(100_000) + "deep" + &"</div>".repeat(100_000),
    );
    // A PNG that declares 100,000 × 100,000 pixels.
    write(&docs, "giant.png", fathom_testkit::docs::giant_png_header());
    let store = dir.path().join("store");
    let started = std::time::Instant::now();
    let summary = json_of(
        &fathom()
            .args(["ingest", "--json", "--parse-timeout", "20", "--store"])
            .arg(&store)
            .arg(&docs)
            .output()
            .unwrap(),
    );
    assert!(started.elapsed().as_secs() < 120, "{:?}", started.elapsed());
    assert_eq!(
        summary["added"], 1,
        "the good file is ingested: {summary:#}"
    );
    let errors = common::errors_by_file(&summary);
    let error_of = |file: &str| {
        errors
            .iter()
            .find(|(f, _)| f == file)
            .map(|(_, e)| e.clone())
            .unwrap_or_else(|| panic!("{file} is reported: {summary:#}"))
    };
    assert!(
        error_of("bomb.docx").contains("over the parse budget"),
        "{errors:?}"
    );
    assert!(error_of("deep.docx").contains("nest"), "{errors:?}");
    assert!(error_of("giant.png").contains("megapixels"), "{errors:?}");
    for file in ["deep.ipynb", "deep.rtf", "deep.html"] {
        error_of(file);
    }
    // Entity expansion is never done: the file fails or reads without the expansion.
    match errors.iter().find(|(f, _)| f == "laughs.docx") {
        Some((_, e)) => assert!(!e.contains("memory"), "{e}"),
        None => {
            let hits = json_of(
                &fathom()
                    .args(["search", "--json", "--mode", "text", "--store"])
                    .arg(&store)
                    .arg("lol")
                    .output()
                    .unwrap(),
            );
            for hit in hits.as_array().unwrap() {
                assert!(hit["text"].as_str().unwrap().len() < 10_000, "{hit}");
            }
        }
    }
    assert!(
        summary["formats"]["docx"]["failed"].as_u64().unwrap() >= 2,
        "{summary:#}"
    );
}
