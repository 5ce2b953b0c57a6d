//! OpenDocument text (.odt) and presentations (.odp), from content.xml.

use super::container::{attr, local, walk_xml, Container, Xml};
use super::{Budget, Builder, Location, ReadResult};

/// Reads an .odt: headings, paragraphs, lists, tables (cells joined by " | "), text boxes, as one
/// unlocated section; footnotes and endnotes come last, after a blank line.
pub fn read_odt(bytes: &[u8], budget: &Budget) -> ReadResult {
    let mut c = Container::open(bytes, budget, "OpenDocument text")?;
    let xml = c.require_text("content.xml")?;
    let mut b = Builder::new(budget);
    let mut notes = String::new();
    {
        let mut out = Out::new(&mut b);
        walk_xml(&xml, budget.max_depth, false, |ev| {
            match ev {
                Xml::Start(e) => match local(e) {
                    "note-body" => {
                        out.side_line_break();
                        out.in_side += 1;
                    }
                    name => out.start(name, e)?,
                },
                Xml::End(name) => match name {
                    "note-body" => {
                        out.in_side = out.in_side.saturating_sub(1);
                        out.side_line_break();
                    }
                    name => out.end(name),
                },
                Xml::Text(t) => out.text(t)?,
            }
            Ok(())
        })
        .map_err(|e| c.part_error("content.xml", e))?;
        std::mem::swap(&mut notes, &mut out.side);
    }
    if !notes.trim().is_empty() {
        b.blank_line();
        b.put_charged(&notes);
    }
    b.end_section(None)?;
    b.finish()
}

/// Reads an .odp: one [`Location::Slide`] section per `draw:page`, its speaker notes
/// (`presentation:notes`) after "Notes:".
pub fn read_odp(bytes: &[u8], budget: &Budget) -> ReadResult {
    let mut c = Container::open(bytes, budget, "OpenDocument presentation")?;
    let xml = c.require_text("content.xml")?;
    let mut b = Builder::new(budget);
    let mut slide = 0u32;
    let mut in_page = 0usize;
    {
        let mut out = Out::new(&mut b);
        walk_xml(&xml, budget.max_depth, false, |ev| {
            match ev {
                Xml::Start(e) => match local(e) {
                    "page" if in_page == 0 => {
                        in_page += 1;
                        slide = slide.saturating_add(1);
                    }
                    "notes" if in_page > 0 => out.in_side += 1,
                    // Thumbnails and page-number/date placeholders carry no slide text.
                    "page-thumbnail" => out.skip += 1,
                    name => out.start(name, e)?,
                },
                Xml::End(name) => match name {
                    "page" if in_page > 0 => {
                        in_page -= 1;
                        let notes = std::mem::take(&mut out.side);
                        if !notes.trim().is_empty() {
                            out.b.blank_line();
                            out.b.put("Notes:\n")?;
                            out.b.put_charged(notes.trim());
                        }
                        out.b.end_section(Some(Location::Slide { slide }))?;
                    }
                    "notes" if in_page > 0 => out.in_side = out.in_side.saturating_sub(1),
                    "page-thumbnail" => out.skip = out.skip.saturating_sub(1),
                    name => out.end(name),
                },
                Xml::Text(t) => out.text(t)?,
            }
            Ok(())
        })
        .map_err(|e| c.part_error("content.xml", e))?;
    }
    b.finish()
}

/// Where ODF text goes: the builder's section, or (inside `in_side`) a side buffer for notes.
struct Out<'o, 'b> {
    b: &'o mut Builder<'b>,
    side: String,
    in_side: usize,
    skip: usize,
    in_p: usize,
    in_cell: usize,
    cells: Vec<usize>,
    pending_space: bool,
}

impl std::fmt::Debug for Out<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Out")
            .field("in_side", &self.in_side)
            .finish()
    }
}

impl<'o, 'b> Out<'o, 'b> {
    fn new(b: &'o mut Builder<'b>) -> Self {
        Out {
            b,
            side: String::new(),
            in_side: 0,
            skip: 0,
            in_p: 0,
            in_cell: 0,
            cells: Vec::new(),
            pending_space: false,
        }
    }

    fn current_ends_with_space(&self) -> bool {
        let cur = if self.in_side > 0 {
            self.side.as_str()
        } else {
            self.b.current()
        };
        cur.is_empty() || cur.ends_with(char::is_whitespace)
    }

    fn put(&mut self, s: &str) -> Result<(), String> {
        if self.skip > 0 {
            return Ok(());
        }
        if self.pending_space {
            self.pending_space = false;
            if !self.current_ends_with_space() {
                self.put(" ")?;
            }
        }
        if self.in_side > 0 {
            self.b.charge(s.len())?;
            self.side.push_str(s);
            Ok(())
        } else {
            self.b.put(s)
        }
    }

    fn line_break(&mut self) {
        if self.skip > 0 {
            return;
        }
        if self.in_side > 0 {
            self.side_line_break();
        } else {
            self.b.line_break();
        }
    }

    fn side_line_break(&mut self) {
        if !self.side.is_empty() && !self.side.ends_with('\n') {
            self.side.push('\n');
        }
    }

    fn start(&mut self, name: &str, e: &quick_xml::events::BytesStart<'_>) -> Result<(), String> {
        match name {
            "annotation" | "tracked-changes" | "note-citation" | "frame-thumbnail" => {
                self.skip += 1
            }
            _ if self.skip > 0 => {}
            "p" | "h" => self.in_p += 1,
            "s" if self.in_p > 0 => {
                let n = attr(e, "c")
                    .and_then(|c| c.parse::<usize>().ok())
                    .unwrap_or(1);
                self.put(&" ".repeat(n.clamp(1, 64)))?;
            }
            "tab" if self.in_p > 0 => self.put("\t")?,
            "line-break" if self.in_cell > 0 => self.pending_space = true,
            "line-break" => self.put("\n")?,
            "table-row" => {
                self.cells.push(0);
                self.line_break();
            }
            "table-cell" | "covered-table-cell" => {
                if let Some(n) = self.cells.last_mut() {
                    let first = *n == 0;
                    *n += 1;
                    if !first {
                        self.pending_space = false;
                        self.put(" | ")?;
                    }
                }
                self.in_cell += 1;
                self.pending_space = false;
            }
            _ => {}
        }
        Ok(())
    }

    fn end(&mut self, name: &str) {
        match name {
            "annotation" | "tracked-changes" | "note-citation" | "frame-thumbnail" => {
                self.skip = self.skip.saturating_sub(1)
            }
            _ if self.skip > 0 => {}
            "p" | "h" => {
                self.in_p = self.in_p.saturating_sub(1);
                if self.in_cell > 0 {
                    self.pending_space = true;
                } else {
                    self.line_break();
                }
            }
            "table-row" => {
                self.cells.pop();
                self.pending_space = false;
                self.line_break();
            }
            "table-cell" | "covered-table-cell" => self.in_cell = self.in_cell.saturating_sub(1),
            _ => {}
        }
    }

    fn text(&mut self, t: &str) -> Result<(), String> {
        if self.in_p > 0 {
            self.put(t)?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::container::testzip;
    use super::*;

    const NS: &str = r#"xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" xmlns:presentation="urn:oasis:names:tc:opendocument:xmlns:presentation:1.0" xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0" xmlns:dc="http://purl.org/dc/elements/1.1/" office:version="1.3""#;

    fn odf(mimetype: &str, body: &str) -> Vec<u8> {
        let content = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<office:document-content {NS}><office:automatic-styles><style:style style:name="P1" style:family="paragraph"/></office:automatic-styles><office:body>{body}</office:body></office:document-content>"#
        );
        testzip::zip(&[
            ("mimetype", mimetype.as_bytes()),
            ("content.xml", content.as_bytes()),
            ("styles.xml", b"<office:document-styles/>"),
        ])
    }

    pub(crate) fn sample_odt() -> Vec<u8> {
        odf(
            "application/vnd.oasis.opendocument.text",
            concat!(
                r#"<office:text><text:sequence-decls/>"#,
                r#"<text:h text:style-name="Heading_1" text:outline-level="1">Annual <text:span text:style-name="T1">summary</text:span></text:h>"#,
                r#"<text:p text:style-name="P1">Revenue<text:s text:c="2"/>grew<text:tab/>fast.<text:note text:id="ftn1" text:note-class="footnote"><text:note-citation>1</text:note-citation><text:note-body><text:p text:style-name="Footnote">Audited figures.</text:p></text:note-body></text:note></text:p>"#,
                r#"<text:list text:style-name="L1"><text:list-item><text:p>One</text:p></text:list-item><text:list-item><text:p>Two<text:line-break/>lines</text:p></text:list-item></text:list>"#,
                r#"<table:table table:name="Table1"><table:table-column table:number-columns-repeated="2"/><table:table-row><table:table-cell office:value-type="string"><text:p>A</text:p></table:table-cell><table:table-cell office:value-type="string"><text:p>B</text:p><text:p>b2</text:p></table:table-cell></table:table-row><table:table-row><table:table-cell><text:p>1</text:p></table:table-cell><table:table-cell><text:p>2</text:p></table:table-cell></table:table-row></table:table>"#,
                r#"<text:p><office:annotation><dc:creator>Ann</dc:creator><text:p>a comment</text:p></office:annotation>Last &amp; final.</text:p>"#,
                r#"</office:text>"#
            ),
        )
    }

    pub(crate) fn sample_odp() -> Vec<u8> {
        let frame = |t: &str| {
            format!(
                r#"<draw:frame presentation:style-name="pr1" svg:width="25cm"><draw:text-box><text:p>{t}</text:p></draw:text-box></draw:frame>"#
            )
        };
        let page = |name: &str, frames: &str, notes: &str| {
            format!(
                r#"<draw:page draw:name="{name}" draw:master-page-name="Default">{frames}<presentation:notes><draw:page-thumbnail draw:page="1"/><draw:frame presentation:class="notes"><draw:text-box>{notes}</draw:text-box></draw:frame></presentation:notes></draw:page>"#
            )
        };
        odf(
            "application/vnd.oasis.opendocument.presentation",
            &format!(
                "<office:presentation>{}{}</office:presentation>",
                page(
                    "page1",
                    &format!("{}{}", frame("Title slide"), frame("Subtitle")),
                    "<text:p>Speak slowly.</text:p>"
                ),
                page("page2", &frame("Second"), ""),
            ),
        )
    }

    #[test]
    fn reads_odt() {
        let doc = read_odt(&sample_odt(), &Budget::default()).unwrap();
        assert_eq!(doc.sections.len(), 1);
        assert_eq!(
            doc.sections[0].text,
            "Annual summary\n\
             Revenue  grew\tfast.\n\
             One\n\
             Two\nlines\n\
             A | B b2\n\
             1 | 2\n\
             Last & final.\n\n\
             Audited figures."
        );
    }

    #[test]
    fn reads_odp() {
        let doc = read_odp(&sample_odp(), &Budget::default()).unwrap();
        let got = super::super::testutil::located(&doc);
        assert_eq!(
            got,
            vec![
                (
                    Location::Slide { slide: 1 },
                    "Title slide\nSubtitle\n\nNotes:\nSpeak slowly."
                ),
                (Location::Slide { slide: 2 }, "Second"),
            ]
        );
    }

    #[test]
    fn odt_deep_nesting_and_bombs() {
        let deep = format!(
            "<office:text>{}{}</office:text>",
            "<text:section>".repeat(100_000),
            "</text:section>".repeat(100_000)
        );
        let err = read_odt(&odf("x", &deep), &Budget::default()).unwrap_err();
        assert!(err.contains("nested more than 256"), "{err}");
        let bytes = testzip::bomb("content.xml", 8 << 20, &[]);
        let budget = Budget {
            max_entry_bytes: 1 << 20,
            ..Budget::default()
        };
        let err = read_odp(&bytes, &budget).unwrap_err();
        assert!(err.contains("inflated from one zip entry"), "{err}");
        let err = read_odt(b"PK\x03\x04junk", &budget).unwrap_err();
        assert!(err.starts_with("not a readable OpenDocument text"), "{err}");
    }
}
