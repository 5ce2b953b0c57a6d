//! Turning a file's bytes into text: plain text, Markdown and source code as they are, HTML to
//! text, PDF through its text layer, JSON/JSONL through a named text field. Binary files are
//! recognized and skipped; invalid UTF-8 is decoded lossily and reported. PDF goes through
//! [`crate::extract`], within a [`ParseLimits`] budget.

use std::path::Path;

use crate::extract::{pdf_text, ParseLimits};

/// What a file is read as, by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Markdown,
    Html,
    Pdf,
    Json,
    JsonLines,
}

impl Format {
    pub fn of(path: &Path) -> Self {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
            .unwrap_or_default();
        match ext.as_str() {
            "md" | "markdown" | "mdx" => Self::Markdown,
            "html" | "htm" | "xhtml" => Self::Html,
            "pdf" => Self::Pdf,
            "json" => Self::Json,
            "jsonl" | "ndjson" => Self::JsonLines,
            _ => Self::Text,
        }
    }
}

/// The outcome of reading one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Text to chunk; `lossy` when invalid UTF-8 was replaced.
    Text { text: String, lossy: bool },
    /// Not text (binary content): skipped and counted.
    Binary,
    /// JSON without the configured text field, or with no text field configured: skipped.
    NoTextField,
    /// A format that failed to parse (a broken PDF, malformed JSON): an error for this file only.
    Failed(String),
}

/// Whether bytes look binary: a NUL byte in the first 8 KiB (what git and ripgrep check).
pub fn looks_binary(bytes: &[u8]) -> bool {
    bytes.iter().take(8192).any(|&b| b == 0)
}

/// Reads a file's bytes as its format (by `path`'s extension). Blocking; a PDF runs its parser
/// within `limits`.
pub fn read(
    path: &Path,
    bytes: &[u8],
    json_field: Option<&str>,
    limits: &ParseLimits,
) -> ReadOutcome {
    let format = Format::of(path);
    if format == Format::Pdf {
        return match pdf_text(bytes, limits) {
            Ok(text) => ReadOutcome::Text { text, lossy: false },
            Err(e) => ReadOutcome::Failed(e),
        };
    }
    if looks_binary(bytes) {
        return ReadOutcome::Binary;
    }
    let (text, lossy) = match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_string(), false),
        Err(_) => (String::from_utf8_lossy(bytes).into_owned(), true),
    };
    match format {
        Format::Html => match html2text::from_read(text.as_bytes(), 100) {
            Ok(t) => ReadOutcome::Text { text: t, lossy },
            Err(e) => ReadOutcome::Failed(format!("not readable HTML: {e}")),
        },
        Format::Json | Format::JsonLines => {
            let Some(field) = json_field else {
                return ReadOutcome::NoTextField;
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
                        ReadOutcome::NoTextField
                    } else {
                        ReadOutcome::Text {
                            text: texts.join("\n\n"),
                            lossy,
                        }
                    }
                }
            }
        }
        Format::Text | Format::Markdown | Format::Pdf => ReadOutcome::Text { text, lossy },
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
        let ReadOutcome::Text { text, .. } =
            read(Path::new("a.html"), b"<html><body><h1>Title</h1><p>Hello <b>world</b></p><script>x()</script></body></html>", None)
        else {
            panic!("html is text")
        };
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
            ReadOutcome::NoTextField
        );
        assert_eq!(
            read(Path::new("d.json"), b"{\"x\": 1}", None),
            ReadOutcome::NoTextField
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
            ext in proptest::sample::select(vec!["txt", "md", "html", "json", "jsonl", "pdf"]),
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
