//! Document readers: office documents, e-books, mail, notebooks and delimited text, each a pure
//! function from a file's bytes to a [`Document`] of located [`Section`]s, bounded by a
//! [`Budget`] against hostile input (zip bombs, entity expansion, deep nesting, huge sheets).
//!
//! One file per format family; [`read`] dispatches on a [`Kind`] (from a path's extension by
//! [`Kind::of_extension`]). Zip containers (docx, pptx, xlsx, odt, odp, ods, epub) go through
//! [`container`], whose reads count inflated bytes as they stream; XML goes through
//! [`container::walk_xml`], which bounds nesting and never expands entities beyond the five predefined
//! ones and character references.

pub(crate) mod container;
pub mod delimited;
pub mod docx;
pub mod epub;
pub mod html;
pub mod mail;
pub mod notebook;
pub mod odf;
pub mod pdf;
pub mod pptx;
pub mod rtf;
pub mod sheets;

/// Where in a document a piece of text is, kept with every chunk.
pub use crate::location::Location;

/// What [`Document::joined`] puts between sections: chunk offsets count it.
pub const SECTION_SEPARATOR: &str = "\n\n";

/// A piece of a document's text and where it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Section {
    pub location: Option<Location>,
    pub text: String,
}

/// A document's text, in reading order.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Document {
    pub sections: Vec<Section>,
}

impl Document {
    /// Total bytes of text over all sections.
    pub fn text_len(&self) -> usize {
        self.sections.iter().map(|s| s.text.len()).sum()
    }

    /// All sections' text joined by a blank line.
    pub fn joined(&self) -> String {
        let mut out = String::with_capacity(self.text_len() + 2 * self.sections.len());
        for (i, s) in self.sections.iter().enumerate() {
            if i > 0 {
                out.push_str(SECTION_SEPARATOR);
            }
            out.push_str(&s.text);
        }
        out
    }
}

/// Bounds for one file's parse.
#[derive(Debug, Clone)]
pub struct Budget {
    /// Total text a file may produce (default 64 MiB).
    pub max_text_bytes: usize,
    /// Total bytes decompressed from a zip container (default 256 MiB).
    pub max_inflated_bytes: u64,
    /// Bytes decompressed from one zip entry (default 64 MiB).
    pub max_entry_bytes: u64,
    /// Zip entries (default 10,000).
    pub max_entries: usize,
    /// XML/JSON/MIME/RTF nesting (default 256).
    pub max_depth: usize,
    /// Sections: row blocks, messages, cells, slides, chapters (default 1,000,000).
    pub max_sections: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_text_bytes: 64 << 20,
            max_inflated_bytes: 256 << 20,
            max_entry_bytes: 64 << 20,
            max_entries: 10_000,
            max_depth: 256,
            max_sections: 1_000_000,
        }
    }
}

/// The outcome of one file: its document, or a short, human message ("not a readable Word
/// document: …", "over the parse budget: more than 256 MiB inflated from the zip").
pub type ReadResult = Result<Document, String>;

/// Which reader a path's extension picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Pdf,
    Html,
    Docx,
    Pptx,
    Xlsx,
    Xls,
    Ods,
    Odt,
    Odp,
    Epub,
    Rtf,
    Eml,
    Mbox,
    Ipynb,
    Csv,
    Tsv,
}

impl Kind {
    /// Every kind, in declaration order.
    pub const ALL: [Kind; 16] = [
        Kind::Pdf,
        Kind::Html,
        Kind::Docx,
        Kind::Pptx,
        Kind::Xlsx,
        Kind::Xls,
        Kind::Ods,
        Kind::Odt,
        Kind::Odp,
        Kind::Epub,
        Kind::Rtf,
        Kind::Eml,
        Kind::Mbox,
        Kind::Ipynb,
        Kind::Csv,
        Kind::Tsv,
    ];

    /// The reader for a file extension (without the dot), case-insensitively.
    pub fn of_extension(ext: &str) -> Option<Kind> {
        let ext = ext.strip_prefix('.').unwrap_or(ext).to_ascii_lowercase();
        Some(match ext.as_str() {
            "pdf" => Kind::Pdf,
            "html" | "htm" | "xhtml" => Kind::Html,
            "docx" | "docm" => Kind::Docx,
            "pptx" | "pptm" => Kind::Pptx,
            "xlsx" | "xlsm" => Kind::Xlsx,
            "xls" => Kind::Xls,
            "ods" => Kind::Ods,
            "odt" => Kind::Odt,
            "odp" => Kind::Odp,
            "epub" => Kind::Epub,
            "rtf" => Kind::Rtf,
            "eml" => Kind::Eml,
            "mbox" | "mbx" => Kind::Mbox,
            "ipynb" => Kind::Ipynb,
            "csv" => Kind::Csv,
            "tsv" | "tab" => Kind::Tsv,
            _ => return None,
        })
    }

    /// The kind's usual extension: "docx", "pptx", ….
    pub fn name(self) -> &'static str {
        match self {
            Kind::Pdf => "pdf",
            Kind::Html => "html",
            Kind::Docx => "docx",
            Kind::Pptx => "pptx",
            Kind::Xlsx => "xlsx",
            Kind::Xls => "xls",
            Kind::Ods => "ods",
            Kind::Odt => "odt",
            Kind::Odp => "odp",
            Kind::Epub => "epub",
            Kind::Rtf => "rtf",
            Kind::Eml => "eml",
            Kind::Mbox => "mbox",
            Kind::Ipynb => "ipynb",
            Kind::Csv => "csv",
            Kind::Tsv => "tsv",
        }
    }

    /// The kind whose [`Kind::name`] this is.
    pub fn from_name(name: &str) -> Option<Kind> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// Reads `bytes` as `kind` within `budget`.
pub fn read(kind: Kind, bytes: &[u8], budget: &Budget) -> ReadResult {
    match kind {
        Kind::Pdf => pdf::read(bytes, budget),
        Kind::Html => html::read(bytes, budget),
        Kind::Docx => docx::read(bytes, budget),
        Kind::Pptx => pptx::read(bytes, budget),
        Kind::Xlsx => sheets::read_xlsx(bytes, budget),
        Kind::Xls => sheets::read_xls(bytes, budget),
        Kind::Ods => sheets::read_ods(bytes, budget),
        Kind::Odt => odf::read_odt(bytes, budget),
        Kind::Odp => odf::read_odp(bytes, budget),
        Kind::Epub => epub::read(bytes, budget),
        Kind::Rtf => rtf::read(bytes, budget),
        Kind::Eml => mail::read_eml(bytes, budget),
        Kind::Mbox => mail::read_mbox(bytes, budget),
        Kind::Ipynb => notebook::read(bytes, budget),
        Kind::Csv => delimited::read(bytes, b',', budget),
        Kind::Tsv => delimited::read(bytes, b'\t', budget),
    }
}

/// "64 MiB", "1.5 KiB", "12 bytes": a byte count for messages.
pub(crate) fn human_bytes(n: u64) -> String {
    const KIB: u64 = 1 << 10;
    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;
    let (unit, name) = if n >= GIB && n.is_multiple_of(GIB) {
        (GIB, "GiB")
    } else if n >= MIB {
        (MIB, "MiB")
    } else if n >= KIB {
        (KIB, "KiB")
    } else {
        return format!("{n} bytes");
    };
    if n.is_multiple_of(unit) {
        format!("{} {name}", n / unit)
    } else {
        format!("{:.1} {name}", n as f64 / unit as f64)
    }
}

/// Collects a document's sections within the budget's text and section bounds.
#[derive(Debug)]
pub(crate) struct Builder<'b> {
    budget: &'b Budget,
    used: usize,
    doc: Document,
    /// The section being written (by [`Builder::put`]).
    cur: String,
}

impl<'b> Builder<'b> {
    pub(crate) fn new(budget: &'b Budget) -> Self {
        Builder {
            budget,
            used: 0,
            doc: Document::default(),
            cur: String::new(),
        }
    }

    pub(crate) fn budget(&self) -> &'b Budget {
        self.budget
    }

    /// Appends text to the current section.
    pub(crate) fn put(&mut self, s: &str) -> Result<(), String> {
        self.charge(s.len())?;
        self.cur.push_str(s);
        Ok(())
    }

    /// Appends text already charged (through [`Builder::charge`]).
    pub(crate) fn put_charged(&mut self, s: &str) {
        self.cur.push_str(s);
    }

    /// Ends the current line, unless the section is empty or the line already ended.
    pub(crate) fn line_break(&mut self) {
        if !self.cur.is_empty() && !self.cur.ends_with('\n') {
            self.cur.push('\n');
        }
    }

    /// Ends the current paragraph with a blank line, unless the section is empty.
    pub(crate) fn blank_line(&mut self) {
        if self.cur.is_empty() {
            return;
        }
        while !self.cur.ends_with("\n\n") {
            self.cur.push('\n');
        }
    }

    /// The current section's text so far.
    pub(crate) fn current(&self) -> &str {
        &self.cur
    }

    /// Cuts the current section back to `len` bytes (text dropped after the fact).
    pub(crate) fn truncate_current(&mut self, len: usize) {
        if len <= self.cur.len() && self.cur.is_char_boundary(len) {
            self.cur.truncate(len);
        }
    }

    /// Ends the current section at `location`.
    pub(crate) fn end_section(&mut self, location: Option<Location>) -> Result<(), String> {
        let text = std::mem::take(&mut self.cur);
        self.push_charged(location, text)
    }

    /// Counts `n` more bytes of text against the budget.
    pub(crate) fn charge(&mut self, n: usize) -> Result<(), String> {
        self.used = self.used.saturating_add(n);
        if self.used > self.budget.max_text_bytes {
            return Err(text_over(self.budget));
        }
        Ok(())
    }

    /// Adds a section (its text trimmed; empty sections are dropped). The text is charged here
    /// unless it was charged while it was built ([`Builder::push_charged`]).
    pub(crate) fn push(&mut self, location: Option<Location>, text: String) -> Result<(), String> {
        self.charge(text.len())?;
        self.push_charged(location, text)
    }

    /// Adds a section whose text was already charged.
    pub(crate) fn push_charged(
        &mut self,
        location: Option<Location>,
        text: String,
    ) -> Result<(), String> {
        let text = tidy(text);
        if text.is_empty() {
            return Ok(());
        }
        if self.doc.sections.len() >= self.budget.max_sections {
            return Err(format!(
                "over the parse budget: more than {} sections",
                self.budget.max_sections
            ));
        }
        self.doc.sections.push(Section { location, text });
        Ok(())
    }

    /// The document, with what is left in the current section as a last, unlocated section.
    pub(crate) fn finish(mut self) -> Result<Document, String> {
        if !self.cur.trim().is_empty() {
            self.end_section(None)?;
        }
        Ok(self.doc)
    }
}

pub(crate) fn text_over(budget: &Budget) -> String {
    format!(
        "over the parse budget: more than {} of text",
        human_bytes(budget.max_text_bytes as u64)
    )
}

/// Trims trailing spaces on each line, collapses runs of more than one blank line and trims
/// the whole text.
pub(crate) fn tidy(text: String) -> String {
    let needs = text.lines().any(|l| l.ends_with([' ', '\t', '\r']))
        || text.contains("\n\n\n")
        || text.starts_with(char::is_whitespace)
        || text.ends_with(char::is_whitespace);
    if !needs {
        return text;
    }
    let mut out = String::with_capacity(text.len());
    let mut blank = 0usize;
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            blank += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        out.push_str(if out.is_empty() {
            line.trim_start()
        } else {
            line
        });
    }
    out
}

/// Tiny deterministic PRNG and mutators for the fuzz-ish tests.
#[cfg(test)]
pub(crate) mod testutil {
    use super::{Document, Location};

    /// Each section's location (which every section of these documents has) and text.
    pub fn located(doc: &Document) -> Vec<(Location, &str)> {
        doc.sections
            .iter()
            .map(|s| {
                (
                    s.location.clone().expect("a located section"),
                    s.text.as_str(),
                )
            })
            .collect()
    }

    #[derive(Debug)]
    pub struct XorShift(pub u64);

    impl XorShift {
        pub fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        pub fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }

        /// A mutation of `seed`: random bytes, truncation, byte flips, splices.
        pub fn mutate(&mut self, seed: &[u8]) -> Vec<u8> {
            let mut v = seed.to_vec();
            match self.below(5) {
                0 => {
                    let n = self.below(512);
                    return (0..n).map(|_| self.next() as u8).collect();
                }
                1 => v.truncate(self.below(v.len() + 1)),
                2 => {
                    for _ in 0..1 + self.below(16) {
                        if !v.is_empty() {
                            let i = self.below(v.len());
                            v[i] = self.next() as u8;
                        }
                    }
                }
                3 => {
                    if !v.is_empty() {
                        let a = self.below(v.len());
                        let b = a + self.below(v.len() - a);
                        let chunk = v[a..b].to_vec();
                        let at = self.below(v.len());
                        v.splice(at..at, chunk);
                    }
                }
                _ => {
                    for _ in 0..1 + self.below(4) {
                        if !v.is_empty() {
                            let i = self.below(v.len());
                            let byte = *b"<>{}\\&;\"'\n\0\xff".get(self.below(13)).unwrap_or(&b'<');
                            v.insert(i, byte);
                        }
                    }
                }
            }
            v
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(Location::Page { page: 12 }.label(), "p. 12");
        assert_eq!(Location::Slide { slide: 3 }.label(), "slide 3");
        let sheet = |s: &str| Location::Sheet {
            sheet: s.into(),
            row: 5000,
        };
        assert_eq!(sheet("Q3").label(), "sheet Q3, row 5000");
        assert_eq!(sheet("").label(), "row 5000");
        let m = Location::Message {
            message: 4,
            subject: Some("Subject".into()),
        };
        assert_eq!(m.label(), "message 4: Subject");
        let m = Location::Message {
            message: 4,
            subject: None,
        };
        assert_eq!(m.label(), "message 4");
        assert_eq!(Location::Cell { cell: 7 }.label(), "cell 7");
        let c = Location::Chapter {
            chapter: 2,
            title: Some("Title".into()),
        };
        assert_eq!(c.label(), "chapter 2: Title");
    }

    #[test]
    fn location_serde_is_tagged() {
        let j = serde_json::to_string(&Location::Sheet {
            sheet: "Q3".into(),
            row: 2,
        })
        .unwrap();
        assert_eq!(j, r#"{"kind":"sheet","sheet":"Q3","row":2}"#);
        let back: Location = serde_json::from_str(&j).unwrap();
        assert_eq!(back.label(), "sheet Q3, row 2");
    }

    #[test]
    fn kinds_by_extension() {
        assert_eq!(Kind::of_extension("DOCX"), Some(Kind::Docx));
        assert_eq!(Kind::of_extension("ipynb"), Some(Kind::Ipynb));
        assert_eq!(Kind::of_extension("txt"), None);
        for k in Kind::ALL {
            assert_eq!(Kind::of_extension(k.name()), Some(k));
        }
    }

    #[test]
    fn document_joins() {
        let d = Document {
            sections: vec![
                Section {
                    location: None,
                    text: "a".into(),
                },
                Section {
                    location: None,
                    text: "bc".into(),
                },
            ],
        };
        assert_eq!(d.joined(), "a\n\nbc");
        assert_eq!(d.text_len(), 3);
    }

    #[test]
    fn tidy_collapses() {
        assert_eq!(tidy("  a  \n\n\n\nb \n".into()), "a\n\nb");
        assert_eq!(tidy("a\nb".into()), "a\nb");
    }

    #[test]
    fn human() {
        assert_eq!(human_bytes(256 << 20), "256 MiB");
        assert_eq!(human_bytes(1 << 30), "1 GiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }

    /// Every reader on random and mutated bytes: Ok or Err, never a panic.
    #[test]
    fn fuzz_every_kind_never_panics() {
        let mut rng = testutil::XorShift(0x9E37_79B9_7F4A_7C15);
        let budget = Budget {
            max_text_bytes: 1 << 20,
            max_inflated_bytes: 8 << 20,
            max_entry_bytes: 4 << 20,
            max_entries: 100,
            max_depth: 64,
            max_sections: 10_000,
        };
        // PDF is fuzzed where its reader runs, with panics caught (`read.rs`): pdf-extract
        // panics on some malformed files, and the child process turns that into a failed file.
        for kind in Kind::ALL.into_iter().filter(|k| *k != Kind::Pdf) {
            let seeds = fixtures_for(kind);
            for i in 0..200 {
                let seed = &seeds[i % seeds.len()];
                let input = rng.mutate(seed);
                let _ = read(kind, &input, &budget);
            }
        }
    }

    /// Zip formats with one entry mutated inside an otherwise well-formed zip, so the XML
    /// readers (ours and calamine's) see the damage: Ok or Err, never a panic.
    #[test]
    fn fuzz_zip_entries_never_panic() {
        use std::io::Read;
        let mut rng = testutil::XorShift(0x1234_5678_9ABC_DEF1);
        let budget = Budget::default();
        for kind in [
            Kind::Docx,
            Kind::Pptx,
            Kind::Xlsx,
            Kind::Ods,
            Kind::Odt,
            Kind::Odp,
            Kind::Epub,
        ] {
            let seed = &fixtures_for(kind)[0];
            let mut archive = ::zip::ZipArchive::new(std::io::Cursor::new(&seed[..])).unwrap();
            let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
            for i in 0..archive.len() {
                let mut f = archive.by_index(i).unwrap();
                let mut data = Vec::new();
                f.read_to_end(&mut data).unwrap();
                entries.push((f.name().unwrap().into_owned(), data));
            }
            for _ in 0..100 {
                let victim = rng.below(entries.len());
                let mutated: Vec<(String, Vec<u8>)> = entries
                    .iter()
                    .enumerate()
                    .map(|(i, (n, d))| {
                        let d = if i == victim {
                            rng.mutate(d)
                        } else {
                            d.clone()
                        };
                        (n.clone(), d)
                    })
                    .collect();
                let refs: Vec<(&str, &[u8])> = mutated
                    .iter()
                    .map(|(n, d)| (n.as_str(), d.as_slice()))
                    .collect();
                let _ = read(kind, &container::testzip::zip(&refs), &budget);
            }
        }
    }

    fn fixtures_for(kind: Kind) -> Vec<Vec<u8>> {
        let mut v = match kind {
            Kind::Pdf => vec![fathom_testkit::pdf::with_pages(&["one", "two"])],
            Kind::Html => {
                vec![b"<html><body><p>a <b>b</b></p><ul><li>c</li></ul></body></html>".to_vec()]
            }
            Kind::Docx => vec![docx::tests::sample_docx()],
            Kind::Pptx => vec![pptx::tests::sample_pptx()],
            Kind::Xlsx => vec![sheets::tests::sample_xlsx()],
            Kind::Xls => vec![b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1".repeat(64)],
            Kind::Ods => vec![sheets::tests::sample_ods()],
            Kind::Odt => vec![odf::tests::sample_odt()],
            Kind::Odp => vec![odf::tests::sample_odp()],
            Kind::Epub => vec![epub::tests::sample_epub()],
            Kind::Rtf => vec![rtf::tests::SAMPLE.as_bytes().to_vec()],
            Kind::Eml => vec![mail::tests::SAMPLE_EML.as_bytes().to_vec()],
            Kind::Mbox => vec![mail::tests::sample_mbox().into_bytes()],
            Kind::Ipynb => vec![notebook::tests::SAMPLE.as_bytes().to_vec()],
            Kind::Csv | Kind::Tsv => vec![b"a,b\tc\n1,\"2\n3\"\t4\n".to_vec()],
        };
        v.push(Vec::new());
        v
    }
}
