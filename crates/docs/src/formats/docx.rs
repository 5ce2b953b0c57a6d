//! Word (.docx): the body's paragraphs and tables, headers and footers, footnotes and endnotes,
//! as one unlocated section. The OOXML text walker here is shared with [`super::pptx`].

use super::container::{attr, local, rels, walk_xml, Container, Xml};
use super::{Budget, Builder, ReadResult};

/// Reads a .docx: headers, then the body, then footnotes and endnotes, then footers, each part
/// after a blank line. Headers and footers that repeat (first page, even pages) appear once.
pub fn read(bytes: &[u8], budget: &Budget) -> ReadResult {
    let mut c = Container::open(bytes, budget, "Word document")?;
    let main = main_part(&mut c, budget)?.unwrap_or_else(|| "word/document.xml".to_string());
    if !c.has(&main) {
        return Err(c.unreadable(format!("no {main} in the zip")));
    }
    let dir = main.rsplit_once('/').map_or("", |(d, _)| d).to_string();
    let names = c.names();
    let numbered = |stem: &str| {
        let prefix = if dir.is_empty() {
            stem.to_string()
        } else {
            format!("{dir}/{stem}")
        };
        let mut v: Vec<(u64, String)> = names
            .iter()
            .filter_map(|n| {
                let num = n.strip_prefix(&prefix)?.strip_suffix(".xml")?;
                if !num.chars().all(|c| c.is_ascii_digit()) {
                    return None;
                }
                Some((num.parse().unwrap_or(0), n.clone()))
            })
            .collect();
        v.sort();
        v.into_iter().map(|(_, n)| n).collect::<Vec<_>>()
    };
    let mut parts: Vec<(String, bool)> = Vec::new();
    parts.extend(numbered("header").into_iter().map(|n| (n, true)));
    parts.push((main.clone(), false));
    parts.push((format!("{dir}/footnotes.xml"), false));
    parts.push((format!("{dir}/endnotes.xml"), false));
    parts.extend(numbered("footer").into_iter().map(|n| (n, true)));

    let mut b = Builder::new(budget);
    let mut seen: Vec<String> = Vec::new();
    for (part, repeats) in parts {
        let Some(xml) = c.read_text(&part)? else {
            continue;
        };
        let start = b.current().len();
        ooxml_text(&xml, &mut b, &|_| true).map_err(|e| c.part_error(&part, e))?;
        if repeats {
            let text = b.current()[start..].trim().to_string();
            if text.is_empty() || seen.contains(&text) {
                b.truncate_current(start);
                continue;
            }
            seen.push(text);
        }
        b.blank_line();
    }
    b.end_section(None)?;
    b.finish()
}

/// The main document part named by the package relationships (`_rels/.rels`), if any.
pub(crate) fn main_part(c: &mut Container<'_>, budget: &Budget) -> Result<Option<String>, String> {
    Ok(rels(c, "", budget.max_depth)?
        .into_iter()
        .find(|r| r.kind == "officeDocument")
        .map(|r| r.target))
}

/// Walks WordprocessingML or DrawingML and writes what a reader sees: `t` text, one line per
/// paragraph (`p`), `tab` within a run as a tab, `br`/`cr` as a line break, table rows one per
/// line with cells joined by " | ". A shape (`sp`) whose placeholder type (`ph`'s `type`,
/// "obj" when absent, `None` for no placeholder) `keep_shape` refuses is dropped. Deleted
/// text, field codes and the fallback copy of alternate content are left out.
pub(crate) fn ooxml_text(
    xml: &str,
    b: &mut Builder<'_>,
    keep_shape: &dyn Fn(Option<&str>) -> bool,
) -> Result<(), String> {
    let max_depth = b.budget().max_depth;
    let mut in_t = 0usize;
    let mut in_r = 0usize;
    let mut skip = 0usize;
    let mut in_cell = 0usize;
    let mut cells: Vec<usize> = Vec::new();
    let mut pending_space = false;
    let mut shape: Option<(usize, Option<String>)> = None;
    walk_xml(xml, max_depth, false, |ev| {
        match ev {
            Xml::Start(e) => match local(e) {
                "Fallback" | "delText" | "instrText" => skip += 1,
                _ if skip > 0 => {}
                "t" => in_t += 1,
                "r" => in_r += 1,
                "tab" if in_r > 0 => b.put("\t")?,
                "br" | "cr" if in_cell > 0 => pending_space = true,
                "br" | "cr" => {
                    b.put("\n")?;
                }
                "noBreakHyphen" if in_r > 0 => b.put("-")?,
                "tr" => {
                    cells.push(0);
                    b.line_break();
                }
                "tc" => {
                    if let Some(n) = cells.last_mut() {
                        if *n > 0 {
                            b.put(" | ")?;
                        }
                        *n += 1;
                    }
                    in_cell += 1;
                    pending_space = false;
                }
                "sp" => shape = Some((b.current().len(), None)),
                "ph" => {
                    if let Some((_, ph)) = shape.as_mut() {
                        *ph = Some(attr(e, "type").unwrap_or_else(|| "obj".to_string()));
                    }
                }
                _ => {}
            },
            Xml::End(name) => match name {
                "Fallback" | "delText" | "instrText" => skip = skip.saturating_sub(1),
                _ if skip > 0 => {}
                "t" => in_t = in_t.saturating_sub(1),
                "r" => in_r = in_r.saturating_sub(1),
                "p" if in_cell > 0 => pending_space = true,
                "p" => b.line_break(),
                "tr" => {
                    cells.pop();
                    b.line_break();
                }
                "tc" => in_cell = in_cell.saturating_sub(1),
                "sp" => {
                    if let Some((start, ph)) = shape.take() {
                        if !keep_shape(ph.as_deref()) {
                            b.truncate_current(start);
                        }
                    }
                    b.line_break();
                }
                _ => {}
            },
            Xml::Text(t) if in_t > 0 && skip == 0 => {
                if pending_space {
                    pending_space = false;
                    let cur = b.current();
                    if !cur.is_empty() && !cur.ends_with(char::is_whitespace) {
                        b.put(" ")?;
                    }
                }
                b.put(t)?;
            }
            Xml::Text(_) => {}
        }
        Ok(())
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::container::testzip;
    use super::*;

    const W: &str = r#"xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape""#;

    const CONTENT_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#;

    const ROOT_RELS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId3" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="docProps/core.xml"/><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#;

    pub(crate) fn document_xml(body: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document {W} mc:Ignorable="w14"><w:body>{body}<w:sectPr><w:headerReference w:type="default" r:id="rId8"/><w:pgSz w:w="12240" w:h="15840"/></w:sectPr></w:body></w:document>"#
        )
    }

    fn body() -> String {
        let p = |t: &str| {
            format!(
                r#"<w:p w:rsidR="00A1"><w:pPr><w:pStyle w:val="Normal"/><w:tabs><w:tab w:val="left" w:pos="720"/></w:tabs></w:pPr><w:r><w:rPr><w:b/></w:rPr><w:t xml:space="preserve">{t}</w:t></w:r></w:p>"#
            )
        };
        let cell = |t: &str| {
            format!(
                r#"<w:tc><w:tcPr><w:tcW w:w="4675" w:type="dxa"/></w:tcPr>{}</w:tc>"#,
                p(t)
            )
        };
        format!(
            concat!(
                r#"<w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>Quarterly </w:t></w:r><w:r><w:rPr><w:i/></w:rPr><w:t>report</w:t></w:r></w:p>"#,
                "{}",
                r#"<w:p><w:r><w:t>Name</w:t></w:r><w:r><w:tab/></w:r><w:r><w:t>Value</w:t></w:r><w:r><w:br/></w:r><w:r><w:t>second line</w:t></w:r><w:r><w:delText>deleted</w:delText></w:r></w:p>"#,
                r#"<w:tbl><w:tblPr><w:tblW w:w="0" w:type="auto"/></w:tblPr><w:tblGrid><w:gridCol w:w="4675"/></w:tblGrid><w:tr>{}{}</w:tr><w:tr>{}<w:tc><w:p><w:r><w:t>b</w:t></w:r></w:p><w:p><w:r><w:t>c</w:t></w:r></w:p></w:tc></w:tr></w:tbl>"#,
                r#"<w:p><w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText xml:space="preserve"> PAGE </w:instrText></w:r><w:r><w:t>Sales &amp; costs</w:t></w:r><w:r><w:footnoteReference w:id="1"/></w:r></w:p>"#,
                r#"<w:p><w:r><mc:AlternateContent><mc:Choice Requires="wps"><w:drawing><wps:txbx><w:txbxContent><w:p><w:r><w:t>Box text</w:t></w:r></w:p></w:txbxContent></wps:txbx></w:drawing></mc:Choice><mc:Fallback><w:pict><w:txbxContent><w:p><w:r><w:t>Box text</w:t></w:r></w:p></w:txbxContent></w:pict></mc:Fallback></mc:AlternateContent></w:r></w:p>"#,
            ),
            p("First paragraph."),
            cell("Region"),
            cell("Total"),
            cell("North"),
        )
    }

    pub(crate) fn sample_docx() -> Vec<u8> {
        let header = format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:hdr {W}><w:p><w:r><w:t>ACME Confidential</w:t></w:r></w:p></w:hdr>"#
        );
        let footer = format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:ftr {W}><w:p><w:r><w:t>Page footer</w:t></w:r></w:p></w:ftr>"#
        );
        let footnotes = format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:footnotes {W}><w:footnote w:type="separator" w:id="-1"><w:p><w:r><w:separator/></w:r></w:p></w:footnote><w:footnote w:id="1"><w:p><w:r><w:t>A footnote.</w:t></w:r></w:p></w:footnote></w:footnotes>"#
        );
        testzip::zip(&[
            ("[Content_Types].xml", CONTENT_TYPES.as_bytes()),
            ("_rels/.rels", ROOT_RELS.as_bytes()),
            ("word/document.xml", document_xml(&body()).as_bytes()),
            ("word/header1.xml", header.as_bytes()),
            ("word/header2.xml", header.as_bytes()),
            ("word/footer1.xml", footer.as_bytes()),
            ("word/footnotes.xml", footnotes.as_bytes()),
        ])
    }

    #[test]
    fn reads_paragraphs_tables_headers_notes() {
        let doc = read(&sample_docx(), &Budget::default()).unwrap();
        assert_eq!(doc.sections.len(), 1);
        assert_eq!(doc.sections[0].location, None);
        assert_eq!(
            doc.sections[0].text,
            "ACME Confidential\n\n\
             Quarterly report\n\
             First paragraph.\n\
             Name\tValue\n\
             second line\n\
             Region | Total\n\
             North | b c\n\
             Sales & costs\n\
             Box text\n\n\
             A footnote.\n\n\
             Page footer"
        );
    }

    #[test]
    fn not_a_zip() {
        let err = read(b"hello", &Budget::default()).unwrap_err();
        assert!(err.starts_with("not a readable Word document"), "{err}");
    }

    #[test]
    fn zip_bomb_is_refused() {
        let bytes = testzip::bomb(
            "word/document.xml",
            8 << 20,
            &[("_rels/.rels", ROOT_RELS.as_bytes())],
        );
        let budget = Budget {
            max_entry_bytes: 1 << 20,
            ..Budget::default()
        };
        let t = std::time::Instant::now();
        let err = read(&bytes, &budget).unwrap_err();
        assert!(
            err.contains("more than 1 MiB inflated from one zip entry"),
            "{err}"
        );
        assert!(t.elapsed().as_secs() < 10);
    }

    #[test]
    fn billion_laughs_is_not_expanded() {
        let mut dtd = String::from("<!DOCTYPE w:document [<!ENTITY lol \"lol\">");
        dtd.push_str("<!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">");
        for i in 2..10 {
            dtd.push_str(&format!(
                "<!ENTITY lol{i} \"{}\">",
                format!("&lol{};", i - 1).repeat(10)
            ));
        }
        dtd.push_str("]>");
        let xml = document_xml(r#"<w:p><w:r><w:t>before &lol9; after</w:t></w:r></w:p>"#).replacen(
            "?>\n",
            &format!("?>\n{dtd}\n"),
            1,
        );
        let bytes = testzip::zip(&[("word/document.xml", xml.as_bytes())]);
        let doc = read(&bytes, &Budget::default()).unwrap();
        assert_eq!(doc.joined(), "before  after");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = format!(
            "{}{}",
            "<w:sdt><w:sdtContent>".repeat(50_000),
            "</w:sdtContent></w:sdt>".repeat(50_000)
        );
        let bytes = testzip::zip(&[("word/document.xml", document_xml(&deep).as_bytes())]);
        let err = read(&bytes, &Budget::default()).unwrap_err();
        assert!(err.contains("nested more than 256"), "{err}");
    }

    #[test]
    fn text_budget_stops() {
        let body = r#"<w:p><w:r><w:t>0123456789</w:t></w:r></w:p>"#.repeat(1000);
        let bytes = testzip::zip(&[("word/document.xml", document_xml(&body).as_bytes())]);
        let budget = Budget {
            max_text_bytes: 1000,
            ..Budget::default()
        };
        let err = read(&bytes, &budget).unwrap_err();
        assert!(err.contains("more than 1000 bytes of text"), "{err}");
    }

    /// Mutated document.xml inside a well-formed zip: Ok or Err, never a panic.
    #[test]
    fn fuzz_document_xml() {
        let mut rng = super::super::testutil::XorShift(7);
        let xml = document_xml(&body()).into_bytes();
        for _ in 0..200 {
            let m = rng.mutate(&xml);
            let bytes = testzip::zip(&[("word/document.xml", &m)]);
            let _ = read(&bytes, &Budget::default());
        }
    }
}
