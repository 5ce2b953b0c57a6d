//! Turning a file's bytes into text: plain text, Markdown and source code as they are,
//! JSON/JSONL through a named text field, and every document format of [`crate::formats`] (PDF,
//! HTML, Word, PowerPoint, spreadsheets, OpenDocument, EPUB, RTF, mail, notebooks, CSV) as
//! located sections, in a child process within a [`ParseLimits`] budget.
//! Images, and PDF pages without a text layer, go through OCR ([`crate::ocr`]). Other binary
//! files are recognized and skipped; invalid UTF-8 is decoded lossily and reported.

use std::path::Path;

use crate::extract::{parse_document, ParseLimits};
use crate::formats::{Document, Kind, Section};
use crate::ocr;

/// What a file is read as, by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Markdown,
    Json,
    JsonLines,
    /// A structured document, parsed by its reader in [`crate::formats`].
    Document(Kind),
    /// A picture (`.png`, `.jpg`, `.tiff`…): its text through OCR.
    Image,
}

impl Format {
    pub fn of(path: &Path) -> Self {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
            .unwrap_or_default();
        if let Some(kind) = Kind::of_extension(&ext) {
            return Self::Document(kind);
        }
        match ext.as_str() {
            "md" | "markdown" | "mdx" => Self::Markdown,
            "json" => Self::Json,
            "jsonl" | "ndjson" => Self::JsonLines,
            "png" | "jpg" | "jpeg" | "tif" | "tiff" | "bmp" | "gif" | "webp" | "pnm" | "pbm"
            | "pgm" | "ppm" => Self::Image,
            _ => Self::Text,
        }
    }

    /// The format's name in per-format counts: "text", "markdown", "pdf", "docx", "image"…
    pub fn name(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Markdown => "markdown",
            Self::Json => "json",
            Self::JsonLines => "jsonl",
            Self::Document(kind) => kind.name(),
            Self::Image => "image",
        }
    }
}

/// The outcome of reading one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Text to chunk; `lossy` when invalid UTF-8 was replaced.
    Text { text: String, lossy: bool },
    /// A parsed document: sections of text, each with where it is (page, slide, row…).
    Located(Document),
    /// Not text (binary content): skipped and counted.
    Binary,
    /// An image, and OCR is off (or Tesseract is missing): skipped and counted, with the reason.
    Image(String),
    /// JSON without the configured text field, or with no text field configured, or a document
    /// with no text at all (a scan with OCR off): skipped, with the reason.
    NoText(String),
    /// A format that failed to parse (a broken PDF, malformed JSON): an error for this file only.
    Failed(String),
}

/// Whether bytes look binary: a NUL byte in the first 8 KiB (what git and ripgrep check).
pub fn looks_binary(bytes: &[u8]) -> bool {
    bytes.iter().take(8192).any(|&b| b == 0)
}

const JSON_NO_FIELD: &str = "JSON without the --json-field text field: skipped";

/// Reads a file's bytes as its format (by `path`'s extension). Blocking; documents run their
/// parser, and images their OCR, within `limits`.
pub fn read(
    path: &Path,
    bytes: &[u8],
    json_field: Option<&str>,
    limits: &ParseLimits,
) -> ReadOutcome {
    let format = Format::of(path);
    match format {
        Format::Document(kind) => return read_document(kind, bytes, limits),
        Format::Image => return read_image(bytes, limits),
        _ => {}
    }
    if looks_binary(bytes) {
        return ReadOutcome::Binary;
    }
    let (text, lossy) = match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_string(), false),
        Err(_) => (String::from_utf8_lossy(bytes).into_owned(), true),
    };
    match format {
        Format::Json | Format::JsonLines => {
            let Some(field) = json_field else {
                return ReadOutcome::NoText(JSON_NO_FIELD.into());
            };
            let values: Result<Vec<serde_json::Value>, String> = if format == Format::Json {
                match serde_json::from_str::<serde_json::Value>(&text) {
                    Ok(serde_json::Value::Array(items)) => Ok(items),
                    Ok(v) => Ok(vec![v]),
                    Err(e) => Err(format!("malformed JSON: {e}")),
                }
            } else {
                text.lines()
                    .enumerate()
                    .filter(|(_, l)| !l.trim().is_empty())
                    .map(|(n, l)| {
                        serde_json::from_str(l)
                            .map_err(|e| format!("line {}: malformed JSON: {e}", n + 1))
                    })
                    .collect()
            };
            match values {
                Err(e) => ReadOutcome::Failed(e),
                Ok(values) => {
                    let texts: Vec<&str> = values
                        .iter()
                        .filter_map(|v| v.get(field)?.as_str())
                        .collect();
                    if texts.is_empty() {
                        ReadOutcome::NoText(JSON_NO_FIELD.into())
                    } else {
                        ReadOutcome::Text {
                            text: texts.join("\n\n"),
                            lossy,
                        }
                    }
                }
            }
        }
        _ => ReadOutcome::Text { text, lossy },
    }
}

fn read_document(kind: Kind, bytes: &[u8], limits: &ParseLimits) -> ReadOutcome {
    let mut doc = match parse_document(kind, bytes, limits) {
        Ok(doc) => doc,
        Err(e) => return ReadOutcome::Failed(e),
    };
    if kind == Kind::Pdf {
        if let Err(e) = ocr_scanned_pages(&mut doc, bytes, limits) {
            return ReadOutcome::Failed(e);
        }
    }
    doc.sections.retain(|s| !s.text.trim().is_empty());
    if doc.sections.is_empty() {
        let why = if kind == Kind::Pdf {
            match ocr::enabled(limits.ocr) {
                Ok(true) => "no text: no text layer, and OCR found none".to_string(),
                Ok(false) => "no text layer (a scan?) and OCR is off: skipped (install tesseract-ocr and poppler-utils, or --ocr auto)".to_string(),
                Err(e) => e,
            }
        } else {
            format!("no text in this {} file: skipped", kind.name())
        };
        return ReadOutcome::NoText(why);
    }
    ReadOutcome::Located(doc)
}

/// A page with fewer visible characters than this has no usable text layer.
const SCANNED_PAGE_CHARS: usize = 16;

/// Runs OCR on the pages of a PDF that have no text layer, each page within the parse budget.
/// With OCR off, the pages stay empty.
fn ocr_scanned_pages(doc: &mut Document, pdf: &[u8], limits: &ParseLimits) -> Result<(), String> {
    let scanned: Vec<usize> = doc
        .sections
        .iter()
        .enumerate()
        .filter(|(_, s)| s.text.chars().filter(|c| !c.is_whitespace()).count() < SCANNED_PAGE_CHARS)
        .map(|(i, _)| i)
        .collect();
    if scanned.is_empty() || !ocr::enabled(limits.ocr)? {
        return Ok(());
    }
    let file = TempFile::with_bytes(pdf).map_err(|e| format!("OCR: a scratch file: {e}"))?;
    for i in scanned {
        let page = match &doc.sections[i].location {
            Some(crate::formats::Location::Page { page }) => *page,
            _ => i as u32 + 1,
        };
        // Each page within the budget of one parse: a long scan takes as long as its pages,
        // and no single page (a poster at 300 dpi, a hostile image) takes longer.
        let text = ocr::pdf_page_text(file.path(), page, limits)
            .map_err(|e| format!("OCR of page {page}: {e}"))?;
        doc.sections[i].text = text;
    }
    Ok(())
}

fn read_image(bytes: &[u8], limits: &ParseLimits) -> ReadOutcome {
    match ocr::enabled(limits.ocr) {
        Ok(true) => match ocr::image_text(bytes, limits) {
            Ok(text) if text.trim().is_empty() => {
                ReadOutcome::NoText("no text found in this image by OCR".into())
            }
            Ok(text) => ReadOutcome::Located(Document {
                sections: vec![Section {
                    location: None,
                    text,
                }],
            }),
            Err(e) => ReadOutcome::Failed(e),
        },
        Ok(false) => ReadOutcome::Image(match limits.ocr {
            ocr::OcrMode::Never => "image: skipped (--ocr never)".into(),
            _ => "image: skipped (OCR needs tesseract-ocr installed)".into(),
        }),
        Err(e) => ReadOutcome::Failed(e),
    }
}

/// A file in the temporary folder holding some bytes, removed when dropped.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn with_bytes(bytes: &[u8]) -> std::io::Result<Self> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "fathom-ocr-{}-{}.pdf",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        std::io::Write::write_all(&mut options.open(&path)?, bytes)?;
        Ok(Self(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &Path, bytes: &[u8], json_field: Option<&str>) -> ReadOutcome {
        super::read(path, bytes, json_field, &ParseLimits::default())
    }

    #[test]
    fn formats_by_extension() {
        assert_eq!(Format::of(Path::new("a/B.MD")), Format::Markdown);
        assert_eq!(Format::of(Path::new("x.rs")), Format::Text);
        assert_eq!(Format::of(Path::new("x.jsonl")), Format::JsonLines);
        assert_eq!(
            Format::of(Path::new("r.DOCX")),
            Format::Document(Kind::Docx)
        );
        assert_eq!(Format::of(Path::new("s.pdf")), Format::Document(Kind::Pdf));
        assert_eq!(Format::of(Path::new("scan.jpeg")), Format::Image);
    }

    #[test]
    fn binary_lossy_html_and_json() {
        assert_eq!(
            read(Path::new("a.bin"), b"ab\0cd", None),
            ReadOutcome::Binary
        );
        assert_eq!(
            read(Path::new("a.txt"), b"caf\xe9 ok", None),
            ReadOutcome::Text {
                text: "caf\u{fffd} ok".into(),
                lossy: true
            }
        );
        let ReadOutcome::Located(doc) =
            read(Path::new("a.html"), b"<html><body><h1>Title</h1><p>Hello <b>world</b></p><script>x()</script></body></html>", None)
        else {
            panic!("html is text")
        };
        let text = doc.joined();
        assert!(
            text.contains("Title") && text.contains("Hello") && !text.contains("<p>"),
            "{text}"
        );
        assert_eq!(
            read(
                Path::new("d.jsonl"),
                b"{\"body\": \"one\"}\n{\"body\": \"two\"}\n",
                Some("body")
            ),
            ReadOutcome::Text {
                text: "one\n\ntwo".into(),
                lossy: false
            }
        );
        assert_eq!(
            read(Path::new("d.json"), b"{\"x\": 1}", Some("body")),
            ReadOutcome::NoText(JSON_NO_FIELD.into())
        );
        assert_eq!(
            read(Path::new("d.json"), b"{\"x\": 1}", None),
            ReadOutcome::NoText(JSON_NO_FIELD.into())
        );
        assert!(matches!(
            read(Path::new("d.json"), b"{oops", Some("body")),
            ReadOutcome::Failed(_)
        ));
        assert!(matches!(
            read(Path::new("d.pdf"), b"%PDF-broken", None),
            ReadOutcome::Failed(_)
        ));
    }
}

#[cfg(test)]
mod fuzz {
    //! Reading arbitrary bytes as each format: an outcome, never a panic (a PDF parser's panic
    //! is caught and reported as a failed file).
    use super::*;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        #[test]
        fn any_bytes_in_any_format_give_an_outcome(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2048),
            ext in proptest::sample::select(vec![
                "txt", "md", "html", "json", "jsonl", "pdf", "docx", "pptx", "xlsx", "xls", "ods",
                "odt", "odp", "epub", "rtf", "eml", "mbox", "ipynb", "csv", "tsv",
            ]),
            pdf_header in proptest::bool::ANY,
        ) {
            let mut bytes = bytes;
            if pdf_header {
                bytes.splice(0..0, b"%PDF-1.4\n".iter().copied());
            }
            let path = format!("f.{ext}");
            let _ = read(Path::new(&path), &bytes, Some("text"), &ParseLimits::default());
        }
    }
}
