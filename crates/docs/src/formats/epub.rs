//! EPUB: META-INF/container.xml names the package (OPF); its spine lists the chapters in
//! reading order; each chapter's XHTML becomes one [`Location::Chapter`] section, titled by its
//! first h1/h2 (else its `<title>`). The EPUB 3 navigation document (the manifest item with
//! `properties="nav"`) is left out even when the spine lists it, as ebooklib's own example and
//! many tools do: it is a generated table of contents that repeats the chapters' titles, and
//! counting it would make the first real chapter "chapter 2".
//!
//! XHTML goes through the bounded XML walker in its lenient mode (mismatched end tags and stray
//! `&` accepted), not html2text: html2text's layout recurses over the DOM, so a chapter nested
//! 100,000 deep could overflow the stack.

use super::container::{attr, local, resolve, walk_xml, Container, Xml};
use super::{Budget, Builder, Location, ReadResult};

/// Reads an .epub.
pub fn read(bytes: &[u8], budget: &Budget) -> ReadResult {
    let mut c = Container::open(bytes, budget, "EPUB book")?;
    let container = c.require_text("META-INF/container.xml")?;
    let mut opf_path = None;
    walk_xml(&container, budget.max_depth, false, |ev| {
        if let Xml::Start(e) = ev {
            if local(e) == "rootfile" && opf_path.is_none() {
                opf_path = attr(e, "full-path");
            }
        }
        Ok(())
    })
    .map_err(|e| c.part_error("META-INF/container.xml", e))?;
    let opf_path = opf_path.ok_or_else(|| c.unreadable("no rootfile in META-INF/container.xml"))?;
    let opf_path = resolve("", &opf_path);
    let opf = c.require_text(&opf_path)?;
    // (id, path, media type, is the navigation document)
    let mut manifest: Vec<(String, String, String, bool)> = Vec::new();
    let mut spine: Vec<String> = Vec::new();
    walk_xml(&opf, budget.max_depth, false, |ev| {
        if let Xml::Start(e) = ev {
            match local(e) {
                "item" => {
                    if let (Some(id), Some(href)) = (attr(e, "id"), attr(e, "href")) {
                        let media = attr(e, "media-type").unwrap_or_default();
                        let nav = attr(e, "properties")
                            .is_some_and(|p| p.split_ascii_whitespace().any(|p| p == "nav"));
                        manifest.push((id, resolve(&opf_path, &href), media, nav));
                    }
                }
                "itemref" => {
                    if let Some(id) = attr(e, "idref") {
                        spine.push(id);
                    }
                }
                _ => {}
            }
        }
        Ok(())
    })
    .map_err(|e| c.part_error(&opf_path, e))?;

    let mut b = Builder::new(budget);
    // Chapters are numbered by their place in the spine, the navigation document not counted.
    let mut chapter: u32 = 0;
    for idref in &spine {
        let item = manifest.iter().find(|(id, _, _, _)| id == idref);
        if item.is_some_and(|(_, _, _, nav)| *nav) {
            continue;
        }
        chapter = chapter.saturating_add(1);
        let Some((_, path, media, _)) = item else {
            continue;
        };
        if !(media.contains("html") || media.contains("xml") || media.is_empty()) {
            continue;
        }
        let Some(xhtml) = c.read_text(path)? else {
            continue;
        };
        let title = xhtml_text(&xhtml, &mut b).map_err(|e| c.part_error(path, e))?;
        b.end_section(Some(Location::Chapter { chapter, title }))?;
    }
    b.finish()
}

/// Writes an XHTML document's visible text into the current section: blocks on their own
/// lines, whitespace collapsed outside `pre`, head, scripts and styles left out. Returns the
/// chapter's title: its first h1/h2, else its `<title>`.
fn xhtml_text(xhtml: &str, b: &mut Builder<'_>) -> Result<Option<String>, String> {
    let max_depth = b.budget().max_depth;
    let mut skip = 0usize;
    let mut in_title = false;
    let mut in_heading = false;
    let mut pre = 0usize;
    let mut title = String::new();
    let mut heading: Option<String> = None;
    let mut heading_buf = String::new();
    let mut cell_in_row = 0usize;
    walk_xml(xhtml, max_depth, true, |ev| {
        match ev {
            Xml::Start(e) => match local(e) {
                "script" | "style" | "svg" | "math" | "noscript" | "template" => skip += 1,
                "head" => skip += 1,
                "title" => in_title = true,
                _ if skip > 0 => {}
                "h1" | "h2" if heading.is_none() => {
                    b.line_break();
                    in_heading = true;
                }
                "br" => b.put("\n")?,
                "pre" => {
                    b.line_break();
                    pre += 1;
                }
                "tr" => {
                    b.line_break();
                    cell_in_row = 0;
                }
                "td" | "th" => {
                    if cell_in_row > 0 {
                        b.put(" | ")?;
                    }
                    cell_in_row += 1;
                }
                "img" => {
                    if let Some(alt) = attr(e, "alt").filter(|a| !a.trim().is_empty()) {
                        b.put(alt.trim())?;
                    }
                }
                name if is_block(name) => b.line_break(),
                _ => {}
            },
            Xml::End(name) => match name {
                "script" | "style" | "svg" | "math" | "noscript" | "template" | "head" => {
                    skip = skip.saturating_sub(1)
                }
                "title" => in_title = false,
                _ if skip > 0 => {}
                "h1" | "h2" if in_heading => {
                    in_heading = false;
                    let h = heading_buf.split_whitespace().collect::<Vec<_>>().join(" ");
                    if !h.is_empty() {
                        heading = Some(h);
                    }
                    b.line_break();
                }
                "pre" => {
                    pre = pre.saturating_sub(1);
                    b.line_break();
                }
                name if is_block(name) || name == "tr" => b.line_break(),
                _ => {}
            },
            Xml::Text(t) => {
                if in_title && title.len() < 1000 {
                    title.push_str(t);
                }
                if skip > 0 {
                    return Ok(());
                }
                if in_heading && heading_buf.len() < 1000 {
                    heading_buf.push_str(t);
                }
                if pre > 0 {
                    b.put(t)?;
                } else {
                    put_collapsed(b, t)?;
                }
            }
        }
        Ok(())
    })?;
    let title = title.split_whitespace().collect::<Vec<_>>().join(" ");
    Ok(heading.or((!title.is_empty()).then_some(title)))
}

/// Appends `t` with runs of whitespace as one space and no space at a line's start.
fn put_collapsed(b: &mut Builder<'_>, t: &str) -> Result<(), String> {
    // ASCII whitespace only: a no-break space (&nbsp;) is kept.
    let mut first = true;
    let lead = t.starts_with(|c: char| c.is_ascii_whitespace());
    let trail = t.ends_with(|c: char| c.is_ascii_whitespace());
    for word in t
        .split(|c: char| c.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
    {
        let cur = b.current();
        let at_line_start = cur.is_empty() || cur.ends_with(char::is_whitespace);
        if (!first || lead) && !at_line_start {
            b.put(" ")?;
        }
        b.put(word)?;
        first = false;
    }
    if trail && !first {
        b.put(" ")?;
    } else if first && (lead || trail) {
        let cur = b.current();
        if !cur.is_empty() && !cur.ends_with(char::is_whitespace) {
            b.put(" ")?;
        }
    }
    Ok(())
}

fn is_block(name: &str) -> bool {
    matches!(
        name,
        "p" | "div"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "li"
            | "ul"
            | "ol"
            | "dl"
            | "dt"
            | "dd"
            | "blockquote"
            | "section"
            | "article"
            | "aside"
            | "header"
            | "footer"
            | "nav"
            | "figure"
            | "figcaption"
            | "table"
            | "hr"
            | "body"
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::container::testzip;
    use super::*;

    const CONTAINER: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles></container>"#;

    const OPF: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="uid"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>The Book</dc:title><dc:identifier id="uid">urn:uuid:1</dc:identifier></metadata>
<manifest><item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/><item id="c2" href="Text/chapter%202.xhtml" media-type="application/xhtml+xml"/><item id="c1" href="Text/ch1.xhtml" media-type="application/xhtml+xml"/><item id="css" href="style.css" media-type="text/css"/></manifest>
<spine toc="ncx"><itemref idref="c1"/><itemref idref="c2"/><itemref idref="missing"/></spine></package>"#;

    fn xhtml(title: &str, body: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE html>
<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops" lang="en"><head><title>{title}</title><link rel="stylesheet" href="../style.css"/><style>p {{ margin: 0 }}</style></head>
<body>{body}</body></html>"#
        )
    }

    pub(crate) fn sample_epub() -> Vec<u8> {
        let ch1 = xhtml(
            "The Book",
            r#"<section epub:type="chapter"><h1 class="t">Chapter   One</h1>
<p>It was a <em>dark</em> and
   stormy night&#8212;the rain&nbsp;fell.</p>
<p>Second<br/>line.</p><script>var x = 1;</script>
<pre>  code
  block</pre><table><tr><th>k</th><th>v</th></tr><tr><td>a</td><td>1</td></tr></table></section>"#,
        );
        let ch2 = xhtml("Epilogue", "<div><p>The end.</p></div>");
        testzip::zip(&[
            ("mimetype", b"application/epub+zip"),
            ("META-INF/container.xml", CONTAINER.as_bytes()),
            ("OEBPS/content.opf", OPF.as_bytes()),
            ("OEBPS/Text/ch1.xhtml", ch1.as_bytes()),
            ("OEBPS/Text/chapter 2.xhtml", ch2.as_bytes()),
            (
                "OEBPS/nav.xhtml",
                xhtml("Contents", "<nav><ol><li>One</li></ol></nav>").as_bytes(),
            ),
        ])
    }

    #[test]
    fn reads_spine_in_order() {
        let doc = read(&sample_epub(), &Budget::default()).unwrap();
        let got = super::super::testutil::located(&doc);
        assert_eq!(
            got,
            vec![
                (
                    Location::Chapter {
                        chapter: 1,
                        title: Some("Chapter One".into())
                    },
                    "Chapter One\nIt was a dark and stormy night\u{2014}the rain\u{a0}fell.\nSecond\nline.\n  code\n  block\nk | v\na | 1"
                ),
                (
                    Location::Chapter {
                        chapter: 2,
                        title: Some("Epilogue".into())
                    },
                    "The end."
                ),
            ]
        );
    }

    /// ebooklib (and others) put the navigation document first in the spine: it is left out
    /// and not counted, so the first chapter is still chapter 1.
    #[test]
    fn nav_document_in_spine_is_skipped() {
        let opf = OPF.replace(
            r#"<itemref idref="c1"/>"#,
            r#"<itemref idref="nav"/><itemref idref="c1"/>"#,
        );
        let bytes = testzip::zip(&[
            ("META-INF/container.xml", CONTAINER.as_bytes()),
            ("OEBPS/content.opf", opf.as_bytes()),
            (
                "OEBPS/nav.xhtml",
                xhtml("Contents", "<nav><ol><li>One</li></ol></nav>").as_bytes(),
            ),
            (
                "OEBPS/Text/ch1.xhtml",
                xhtml("T", "<h1>One</h1><p>a</p>").as_bytes(),
            ),
            (
                "OEBPS/Text/chapter 2.xhtml",
                xhtml("Two", "<p>b</p>").as_bytes(),
            ),
        ]);
        let doc = read(&bytes, &Budget::default()).unwrap();
        let got: Vec<_> = doc
            .sections
            .iter()
            .map(|s| (s.location.as_ref().unwrap().label(), s.text.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("chapter 1: One".to_string(), "One\na"),
                ("chapter 2: Two".to_string(), "b"),
            ]
        );
    }

    #[test]
    fn malformed_xhtml_is_read_leniently() {
        let ch = "<html><body><p>One &amp two</p></div><p>Three</body></html>";
        let bytes = testzip::zip(&[
            ("META-INF/container.xml", CONTAINER.as_bytes()),
            ("OEBPS/content.opf", OPF.as_bytes()),
            ("OEBPS/Text/ch1.xhtml", ch.as_bytes()),
        ]);
        let doc = read(&bytes, &Budget::default()).unwrap();
        assert_eq!(doc.joined(), "One &amp two\nThree");
    }

    #[test]
    fn hostile_epubs() {
        let deep = format!("<html><body>{}x</body></html>", "<div>".repeat(100_000));
        let bytes = testzip::zip(&[
            ("META-INF/container.xml", CONTAINER.as_bytes()),
            ("OEBPS/content.opf", OPF.as_bytes()),
            ("OEBPS/Text/ch1.xhtml", deep.as_bytes()),
        ]);
        let err = read(&bytes, &Budget::default()).unwrap_err();
        assert!(err.contains("nested more than 256"), "{err}");
        let bytes = testzip::bomb(
            "OEBPS/Text/ch1.xhtml",
            8 << 20,
            &[
                ("META-INF/container.xml", CONTAINER.as_bytes()),
                ("OEBPS/content.opf", OPF.as_bytes()),
            ],
        );
        let budget = Budget {
            max_entry_bytes: 1 << 20,
            ..Budget::default()
        };
        let err = read(&bytes, &budget).unwrap_err();
        assert!(err.contains("inflated from one zip entry"), "{err}");
        let err = read(&testzip::zip(&[("mimetype", b"x")]), &budget).unwrap_err();
        assert!(err.contains("no META-INF/container.xml"), "{err}");
    }
}
