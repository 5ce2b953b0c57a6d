//! The shared zip container (docx, pptx, xlsx, odt, odp, ods, epub) and XML walker.
//!
//! Entries are read by streaming them through [`Read::take`] and counting the bytes that come
//! out: the sizes an archive declares are never trusted. The XML walker, on quick-xml, bounds
//! nesting, resolves only the five predefined entities and character references (a custom
//! entity, such as a "billion laughs" DOCTYPE declares, is dropped, never expanded), and
//! leaves text accounting to the reader through [`crate::formats::Builder`].

use std::borrow::Cow;
use std::io::{Cursor, Read};

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::{human_bytes, Budget};

/// An opened zip archive whose reads are bounded by a [`Budget`].
pub(crate) struct Container<'a> {
    archive: ::zip::ZipArchive<Cursor<&'a [u8]>>,
    budget: &'a Budget,
    inflated: u64,
    /// "Word document", "EPUB book", …: for messages.
    what: &'static str,
}

impl std::fmt::Debug for Container<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Container")
            .field("entries", &self.archive.len())
            .field("inflated", &self.inflated)
            .field("what", &self.what)
            .finish()
    }
}

impl<'a> Container<'a> {
    /// Opens `bytes` as a zip archive of at most `budget.max_entries` entries.
    pub(crate) fn open(
        bytes: &'a [u8],
        budget: &'a Budget,
        what: &'static str,
    ) -> Result<Self, String> {
        let archive = ::zip::ZipArchive::new(Cursor::new(bytes))
            .map_err(|e| format!("not a readable {what}: {e}"))?;
        if archive.len() > budget.max_entries {
            return Err(format!(
                "over the parse budget: more than {} entries in the zip",
                budget.max_entries
            ));
        }
        Ok(Container {
            archive,
            budget,
            inflated: 0,
            what,
        })
    }

    /// A "not a readable …" message.
    pub(crate) fn unreadable(&self, why: impl std::fmt::Display) -> String {
        format!("not a readable {}: {why}", self.what)
    }

    /// An error met in entry `part`: budget errors as they are, others as "not a readable …".
    pub(crate) fn part_error(&self, part: &str, e: String) -> String {
        if e.starts_with("over the parse budget") || e.starts_with("not a readable") {
            e
        } else {
            self.unreadable(format!("{part}: {e}"))
        }
    }

    /// The entries' names, in archive order.
    pub(crate) fn names(&self) -> Vec<String> {
        self.archive
            .file_names()
            .filter_map(|n| n.ok().map(|n| n.into_owned()))
            .collect()
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.archive.index_for_name(name).is_some()
    }

    /// The bytes of entry `name`, `None` when there is no such entry.
    pub(crate) fn read(&mut self, name: &str) -> Result<Option<Vec<u8>>, String> {
        let Some(index) = self.archive.index_for_name(name) else {
            return Ok(None);
        };
        let mut out = Vec::new();
        self.read_index(index, &mut out)?;
        Ok(Some(out))
    }

    /// The text of entry `name` (UTF-8, invalid bytes replaced, BOM dropped), `None` when there
    /// is no such entry.
    pub(crate) fn read_text(&mut self, name: &str) -> Result<Option<String>, String> {
        Ok(self.read(name)?.map(bytes_to_string))
    }

    /// Like [`Container::read_text`], an error when the entry is missing.
    pub(crate) fn require_text(&mut self, name: &str) -> Result<String, String> {
        self.read_text(name)?
            .ok_or_else(|| self.unreadable(format!("no {name} in the zip")))
    }

    /// Inflates every entry into nothing, within the budget: for a zip another crate will read
    /// (calamine does not bound what it inflates).
    pub(crate) fn check_all(&mut self) -> Result<(), String> {
        for index in 0..self.archive.len() {
            self.read_index(index, &mut std::io::sink())?;
        }
        Ok(())
    }

    /// Streams entry `index` into `out`, counting inflated bytes against the budget.
    fn read_index<W: std::io::Write>(&mut self, index: usize, out: &mut W) -> Result<(), String> {
        let what = self.what;
        let left_total = self.budget.max_inflated_bytes.saturating_sub(self.inflated);
        let limit = self.budget.max_entry_bytes.min(left_total);
        let mut entry = self
            .archive
            .by_index(index)
            .map_err(|e| format!("not a readable {what}: {e}"))?;
        let name = entry.name().map(|n| n.into_owned()).unwrap_or_default();
        let mut limited = (&mut entry).take(limit.saturating_add(1));
        let n = std::io::copy(&mut limited, out)
            .map_err(|e| format!("not a readable {what}: {name}: {e}"))?;
        drop(entry);
        self.inflated = self.inflated.saturating_add(n);
        if n > limit {
            return Err(if limit == self.budget.max_entry_bytes {
                format!(
                    "over the parse budget: more than {} inflated from one zip entry ({name})",
                    human_bytes(self.budget.max_entry_bytes)
                )
            } else {
                format!(
                    "over the parse budget: more than {} inflated from the zip",
                    human_bytes(self.budget.max_inflated_bytes)
                )
            });
        }
        Ok(())
    }
}

/// UTF-8 (lossy) without a byte-order mark; UTF-16 with a BOM is decoded too.
pub(crate) fn bytes_to_string(bytes: Vec<u8>) -> String {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return String::from_utf8_lossy(rest).into_owned();
    }
    let utf16 = |rest: &[u8], le: bool| {
        let units = rest.chunks_exact(2).map(|c| {
            if le {
                u16::from_le_bytes([c[0], c[1]])
            } else {
                u16::from_be_bytes([c[0], c[1]])
            }
        });
        char::decode_utf16(units)
            .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect::<String>()
    };
    if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        return utf16(rest, true);
    }
    if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        return utf16(rest, false);
    }
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// Resolves a relative `target` (a relationship target, an OPF href) against the folder of
/// `base` (an entry name): "ppt/slides/slide1.xml" + "../notesSlides/notesSlide1.xml" is
/// "ppt/notesSlides/notesSlide1.xml". A leading "/" is the archive's root. Fragments and
/// queries are dropped; percent-escapes are decoded.
pub(crate) fn resolve(base: &str, target: &str) -> String {
    let target = target.split(['#', '?']).next().unwrap_or("");
    let target = percent_decode(target);
    let mut parts: Vec<&str> = Vec::new();
    if !target.starts_with('/') {
        if let Some((dir, _)) = base.rsplit_once('/') {
            parts.extend(dir.split('/').filter(|p| !p.is_empty()));
        }
    }
    for p in target.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

fn percent_decode(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// One event of [`walk_xml`]. An empty element (`<a/>`) comes as a `Start` and an `End`.
#[derive(Debug)]
pub(crate) enum Xml<'x> {
    Start(&'x BytesStart<'x>),
    /// The local name (no prefix) of the element that ends.
    End(&'x str),
    /// Text (entities resolved, CDATA included).
    Text(&'x str),
}

/// The local name (no namespace prefix) of an element.
pub(crate) fn local<'x>(e: &'x BytesStart<'_>) -> &'x str {
    let name = e.name().0;
    name.rsplit_once(':').map_or(name, |(_, l)| l)
}

/// The value of the attribute whose local name is `name`, entities resolved.
pub(crate) fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    for a in e.attributes().with_checks(false).flatten() {
        let key = a.key.0;
        let key_local = key.rsplit_once(':').map_or(key, |(_, l)| l);
        if key_local == name {
            return Some(unescape_lenient(&a.value));
        }
    }
    None
}

/// The value of the attribute with exactly the qualified name `qname` ("r:id").
pub(crate) fn attr_q(e: &BytesStart<'_>, qname: &str) -> Option<String> {
    for a in e.attributes().with_checks(false).flatten() {
        if a.key.0 == qname {
            return Some(unescape_lenient(&a.value));
        }
    }
    None
}

fn unescape_lenient(raw: &str) -> String {
    quick_xml::escape::unescape_with(raw, entity)
        .map(Cow::into_owned)
        .unwrap_or_else(|_| raw.to_string())
}

/// The predefined XML entities and the common HTML ones XHTML books use. Anything else
/// (including what a DOCTYPE declares) resolves to nothing.
fn entity(name: &str) -> Option<&'static str> {
    Some(match name {
        "lt" => "<",
        "gt" => ">",
        "amp" => "&",
        "apos" => "'",
        "quot" => "\"",
        "nbsp" => "\u{a0}",
        "ndash" => "\u{2013}",
        "mdash" => "\u{2014}",
        "hellip" => "\u{2026}",
        "lsquo" => "\u{2018}",
        "rsquo" => "\u{2019}",
        "ldquo" => "\u{201c}",
        "rdquo" => "\u{201d}",
        "laquo" => "\u{ab}",
        "raquo" => "\u{bb}",
        "copy" => "\u{a9}",
        "reg" => "\u{ae}",
        "trade" => "\u{2122}",
        "shy" => "\u{ad}",
        "bull" => "\u{2022}",
        "middot" => "\u{b7}",
        "deg" => "\u{b0}",
        "eacute" => "\u{e9}",
        "egrave" => "\u{e8}",
        "agrave" => "\u{e0}",
        "ccedil" => "\u{e7}",
        "uuml" => "\u{fc}",
        "ouml" => "\u{f6}",
        "auml" => "\u{e4}",
        "szlig" => "\u{df}",
        _ => return None,
    })
}

/// Walks `xml`'s elements and text in document order, calling `f` for each. Fails when
/// elements nest deeper than `max_depth`, on malformed XML, or when `f` fails. With `lenient`
/// (XHTML from books), mismatched end tags and stray `&` are accepted.
pub(crate) fn walk_xml(
    xml: &str,
    max_depth: usize,
    lenient: bool,
    mut f: impl FnMut(Xml<'_>) -> Result<(), String>,
) -> Result<(), String> {
    let mut reader = Reader::from_str(xml);
    {
        let c = reader.config_mut();
        c.expand_empty_elements = true;
        c.check_end_names = !lenient;
        c.allow_unmatched_ends = lenient;
        c.allow_dangling_amp = lenient;
    }
    let mut depth = 0usize;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("malformed XML at byte {}: {e}", reader.error_position()))?;
        match event {
            Event::Start(e) => {
                depth += 1;
                if depth > max_depth {
                    return Err(format!(
                        "over the parse budget: XML nested more than {max_depth} deep"
                    ));
                }
                f(Xml::Start(&e))?;
            }
            Event::End(e) => {
                depth = depth.saturating_sub(1);
                let name = e.name().0;
                f(Xml::End(name.rsplit_once(':').map_or(name, |(_, l)| l)))?;
            }
            Event::Text(t) => {
                let t = t.xml10_content();
                if !t.is_empty() {
                    f(Xml::Text(&t))?;
                }
            }
            Event::CData(t) => {
                let t = t.xml10_content();
                if !t.is_empty() {
                    f(Xml::Text(&t))?;
                }
            }
            Event::GeneralRef(r) => {
                if r.is_char_ref() {
                    if let Ok(Some(c)) = r.resolve_char_ref() {
                        let mut b = [0u8; 4];
                        f(Xml::Text(c.encode_utf8(&mut b)))?;
                    }
                } else if let Some(s) = entity(&r.into_inner()) {
                    f(Xml::Text(s))?;
                }
            }
            Event::Eof => return Ok(()),
            Event::Empty(_)
            | Event::Comment(_)
            | Event::Decl(_)
            | Event::PI(_)
            | Event::DocType(_) => {}
        }
    }
}

/// An OPC relationship (`*.rels`): id, type (its last path segment, "slide", "notesSlide"),
/// and target resolved against the part it belongs to.
#[derive(Debug, Clone)]
pub(crate) struct Rel {
    pub id: String,
    pub kind: String,
    pub target: String,
}

/// The relationships of `part` ("ppt/slides/slide1.xml" → "ppt/slides/_rels/slide1.xml.rels"),
/// empty when it has none. External targets are left out.
pub(crate) fn rels(
    c: &mut Container<'_>,
    part: &str,
    max_depth: usize,
) -> Result<Vec<Rel>, String> {
    let (dir, file) = part.rsplit_once('/').unwrap_or(("", part));
    let rels_name = if dir.is_empty() {
        format!("_rels/{file}.rels")
    } else {
        format!("{dir}/_rels/{file}.rels")
    };
    let Some(xml) = c.read_text(&rels_name)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    walk_xml(&xml, max_depth, false, |ev| {
        if let Xml::Start(e) = ev {
            if local(e) == "Relationship" {
                if attr(e, "TargetMode").as_deref() == Some("External") {
                    return Ok(());
                }
                if let (Some(id), Some(kind), Some(target)) =
                    (attr(e, "Id"), attr(e, "Type"), attr(e, "Target"))
                {
                    let kind = kind.rsplit('/').next().unwrap_or("").to_string();
                    out.push(Rel {
                        id,
                        kind,
                        target: resolve(part, &target),
                    });
                }
            }
        }
        Ok(())
    })
    .map_err(|e| c.part_error(&rels_name, e))?;
    Ok(out)
}

/// Test helpers: zips built in memory.
#[cfg(test)]
pub(crate) mod testzip {
    use std::io::Write;

    /// A zip of `(name, content)` entries, deflated (stored when large).
    pub fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = ::zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, content) in entries {
            // Large fixtures are stored: deflating megabytes is slow in debug builds.
            let method = if content.len() > 256 << 10 {
                ::zip::CompressionMethod::Stored
            } else {
                ::zip::CompressionMethod::Deflated
            };
            let opts = ::zip::write::SimpleFileOptions::default().compression_method(method);
            w.start_file(*name, opts).unwrap();
            w.write_all(content).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    /// A zip whose entry `name` inflates to `size` zero bytes (written by streaming), next to
    /// `others`.
    pub fn bomb(name: &str, size: u64, others: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = ::zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = ::zip::write::SimpleFileOptions::default()
            .compression_method(::zip::CompressionMethod::Deflated)
            .large_file(size >= u32::MAX as u64);
        for (n, content) in others {
            w.start_file(*n, opts).unwrap();
            w.write_all(content).unwrap();
        }
        w.start_file(name, opts).unwrap();
        let zeros = vec![0u8; 1 << 20];
        let mut left = size;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            w.write_all(&zeros[..n]).unwrap();
            left -= n as u64;
        }
        w.finish().unwrap().into_inner()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_relative_targets() {
        assert_eq!(
            resolve("ppt/slides/slide1.xml", "../notesSlides/notesSlide1.xml"),
            "ppt/notesSlides/notesSlide1.xml"
        );
        assert_eq!(
            resolve("word/document.xml", "header1.xml"),
            "word/header1.xml"
        );
        assert_eq!(resolve("a/b.xml", "/c/d.xml"), "c/d.xml");
        assert_eq!(
            resolve("OEBPS/content.opf", "Text/ch%201.xhtml#x"),
            "OEBPS/Text/ch 1.xhtml"
        );
        assert_eq!(resolve("x.opf", "../../../etc/passwd"), "etc/passwd");
    }

    #[test]
    fn entities_are_never_expanded() {
        let mut laughs =
            String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol \"lol\">\n");
        laughs.push_str("<!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n");
        for i in 2..10 {
            let prev = format!("&lol{};", i - 1);
            laughs.push_str(&format!("<!ENTITY lol{i} \"{}\">\n", prev.repeat(10)));
        }
        laughs.push_str("]>\n<lolz>a &lol9; b &amp; &#x41;</lolz>");
        let mut text = String::new();
        walk_xml(&laughs, 16, false, |ev| {
            if let Xml::Text(t) = ev {
                text.push_str(t);
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(text.trim(), "a  b & A");
    }

    #[test]
    fn deep_nesting_is_an_error() {
        let xml = format!("{}{}", "<a>".repeat(100_000), "</a>".repeat(100_000));
        let err = walk_xml(&xml, 256, false, |_| Ok(())).unwrap_err();
        assert!(err.contains("nested more than 256"), "{err}");
    }

    #[test]
    fn bomb_entry_stops_at_the_cap() {
        let bytes = testzip::bomb("big.xml", 64 << 20, &[("small.xml", b"<a/>")]);
        assert!(bytes.len() < 1 << 20, "{}", bytes.len());
        let budget = Budget {
            max_entry_bytes: 1 << 20,
            ..Budget::default()
        };
        let mut c = Container::open(&bytes, &budget, "test zip").unwrap();
        assert!(c.read("small.xml").unwrap().is_some());
        let err = c.read("big.xml").unwrap_err();
        assert!(
            err.contains("more than 1 MiB inflated from one zip entry (big.xml)"),
            "{err}"
        );
        let budget = Budget {
            max_inflated_bytes: 2 << 20,
            ..Budget::default()
        };
        let mut c = Container::open(&bytes, &budget, "test zip").unwrap();
        let err = c.check_all().unwrap_err();
        assert!(
            err.contains("more than 2 MiB inflated from the zip"),
            "{err}"
        );
    }

    #[test]
    fn too_many_entries() {
        let names: Vec<String> = (0..20).map(|i| format!("f{i}")).collect();
        let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
        let bytes = testzip::zip(&entries);
        let budget = Budget {
            max_entries: 10,
            ..Budget::default()
        };
        let err = Container::open(&bytes, &budget, "test zip").unwrap_err();
        assert!(err.contains("more than 10 entries"), "{err}");
    }
}
