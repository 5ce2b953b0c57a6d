//! PowerPoint (.pptx): one section per slide, in presentation order, with the slide's speaker
//! notes after "Notes:".

use super::container::{attr_q, local, rels, walk_xml, Container, Xml};
use super::docx::{main_part, ooxml_text};
use super::{Budget, Builder, Location, ReadResult};

/// Reads a .pptx: slides in the order of `ppt/presentation.xml`'s slide list (by file number
/// when that list cannot be read), each a [`Location::Slide`] section; date, footer and slide
/// number placeholders are left out; notes keep only their body placeholder.
pub fn read(bytes: &[u8], budget: &Budget) -> ReadResult {
    let mut c = Container::open(bytes, budget, "PowerPoint presentation")?;
    let presentation =
        main_part(&mut c, budget)?.unwrap_or_else(|| "ppt/presentation.xml".to_string());
    let mut slides = slide_order(&mut c, &presentation, budget)?;
    if slides.is_empty() {
        slides = numbered_slides(&c);
    }
    if slides.is_empty() && !c.has(&presentation) {
        return Err(c.unreadable("no ppt/presentation.xml in the zip"));
    }
    let mut b = Builder::new(budget);
    for (i, slide) in slides.iter().enumerate() {
        let Some(xml) = c.read_text(slide)? else {
            continue;
        };
        ooxml_text(&xml, &mut b, &|ph| {
            !matches!(ph, Some("sldNum" | "dt" | "ftr" | "hdr"))
        })
        .map_err(|e| c.part_error(slide, e))?;
        let notes = rels(&mut c, slide, budget.max_depth)?
            .into_iter()
            .find(|r| r.kind == "notesSlide");
        if let Some(notes) = notes {
            if let Some(xml) = c.read_text(&notes.target)? {
                b.blank_line();
                let start = b.current().len();
                b.put("Notes:\n")?;
                let body = b.current().len();
                ooxml_text(&xml, &mut b, &|ph| ph == Some("body"))
                    .map_err(|e| c.part_error(&notes.target, e))?;
                if b.current()[body..].trim().is_empty() {
                    b.truncate_current(start);
                }
            }
        }
        let slide_no = u32::try_from(i + 1).unwrap_or(u32::MAX);
        b.end_section(Some(Location::Slide { slide: slide_no }))?;
    }
    b.finish()
}

/// The slides named by the presentation's `sldIdLst`, in order.
fn slide_order(
    c: &mut Container<'_>,
    presentation: &str,
    budget: &Budget,
) -> Result<Vec<String>, String> {
    let Some(xml) = c.read_text(presentation)? else {
        return Ok(Vec::new());
    };
    let mut ids = Vec::new();
    walk_xml(&xml, budget.max_depth, false, |ev| {
        if let Xml::Start(e) = ev {
            if local(e) == "sldId" {
                if let Some(id) = attr_q(e, "r:id") {
                    ids.push(id);
                }
            }
        }
        Ok(())
    })
    .map_err(|e| c.part_error(presentation, e))?;
    let rels = rels(c, presentation, budget.max_depth)?;
    Ok(ids
        .iter()
        .filter_map(|id| rels.iter().find(|r| &r.id == id && r.kind == "slide"))
        .map(|r| r.target.clone())
        .collect())
}

/// `ppt/slides/slideN.xml`, ordered by N.
fn numbered_slides(c: &Container<'_>) -> Vec<String> {
    let mut v: Vec<(u64, String)> = c
        .names()
        .into_iter()
        .filter_map(|n| {
            let num = n.strip_prefix("ppt/slides/slide")?.strip_suffix(".xml")?;
            let num = num.parse().ok()?;
            Some((num, n))
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, n)| n).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::container::testzip;
    use super::*;

    const NS: &str = r#"xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main""#;

    fn sp(ph: Option<&str>, paras: &[&str]) -> String {
        let ph = match ph {
            Some(t) => format!(r#"<p:ph type="{t}" idx="1"/>"#),
            None => String::new(),
        };
        let paras: String = paras
            .iter()
            .map(|t| {
                format!(r#"<a:p><a:pPr><a:tabLst><a:tab pos="0"/></a:tabLst></a:pPr><a:r><a:rPr lang="en-US" dirty="0"/><a:t>{t}</a:t></a:r></a:p>"#)
            })
            .collect();
        format!(
            r#"<p:sp><p:nvSpPr><p:cNvPr id="2" name="Shape"/><p:cNvSpPr><a:spLocks noGrp="1"/></p:cNvSpPr><p:nvPr>{ph}</p:nvPr></p:nvSpPr><p:spPr/><p:txBody><a:bodyPr/><a:lstStyle/>{paras}</p:txBody></p:sp>"#
        )
    }

    fn slide(shapes: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<p:sld {NS}><p:cSld><p:spTree><p:nvGrpSpPr><p:cNvPr id="1" name=""/><p:cNvGrpSpPr/><p:nvPr/></p:nvGrpSpPr><p:grpSpPr/>{shapes}</p:spTree></p:cSld><p:clrMapOvr><a:masterClrMapping/></p:clrMapOvr></p:sld>"#
        )
    }

    fn notes(text: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<p:notes {NS}><p:cSld><p:spTree>{}{}{}</p:spTree></p:cSld></p:notes>"#,
            sp(Some("sldImg"), &[]),
            sp(Some("body"), &[text]),
            r#"<p:sp><p:nvSpPr><p:nvPr><p:ph type="sldNum" idx="5"/></p:nvPr></p:nvSpPr><p:txBody><a:p><a:fld id="{1}" type="slidenum"><a:t>2</a:t></a:fld></a:p></p:txBody></p:sp>"#,
        )
    }

    fn slide_rels(notes: Option<u32>) -> String {
        let n = notes.map_or(String::new(), |n| {
            format!(r#"<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/notesSlide" Target="../notesSlides/notesSlide{n}.xml"/>"#)
        });
        format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/slideLayout" Target="../slideLayouts/slideLayout1.xml"/>{n}</Relationships>"#
        )
    }

    pub(crate) fn sample_pptx() -> Vec<u8> {
        let presentation = format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<p:presentation {NS} saveSubsetFonts="1"><p:sldMasterIdLst><p:sldMasterId id="2147483648" r:id="rId1"/></p:sldMasterIdLst><p:sldIdLst><p:sldId id="256" r:id="rId3"/><p:sldId id="257" r:id="rId2"/></p:sldIdLst><p:sldSz cx="12192000" cy="6858000"/></p:presentation>"#
        );
        let pres_rels = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/slideMaster" Target="slideMasters/slideMaster1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/slide" Target="slides/slide10.xml"/><Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/slide" Target="slides/slide2.xml"/></Relationships>"#;
        let root_rels = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="ppt/presentation.xml"/></Relationships>"#;
        let s1 = slide(&format!(
            "{}{}{}",
            sp(Some("title"), &["Welcome"]),
            sp(None, &["First point", "Second point"]),
            sp(Some("sldNum"), &["1"])
        ));
        let s2 = slide(&format!(
            r#"{}<p:graphicFrame><a:graphic><a:graphicData><a:tbl><a:tr h="370840"><a:tc><a:txBody><a:p><a:r><a:t>Q1</a:t></a:r></a:p></a:txBody></a:tc><a:tc><a:txBody><a:p><a:r><a:t>10</a:t></a:r></a:p></a:txBody></a:tc></a:tr></a:tbl></a:graphicData></a:graphic></p:graphicFrame>"#,
            sp(Some("title"), &["Numbers"])
        ));
        testzip::zip(&[
            ("_rels/.rels", root_rels.as_bytes()),
            ("ppt/presentation.xml", presentation.as_bytes()),
            ("ppt/_rels/presentation.xml.rels", pres_rels.as_bytes()),
            ("ppt/slides/slide2.xml", s1.as_bytes()),
            (
                "ppt/slides/_rels/slide2.xml.rels",
                slide_rels(Some(1)).as_bytes(),
            ),
            ("ppt/slides/slide10.xml", s2.as_bytes()),
            (
                "ppt/slides/_rels/slide10.xml.rels",
                slide_rels(None).as_bytes(),
            ),
            (
                "ppt/notesSlides/notesSlide1.xml",
                notes("Say hello &amp; smile").as_bytes(),
            ),
        ])
    }

    #[test]
    fn reads_slides_in_order_with_notes() {
        let doc = read(&sample_pptx(), &Budget::default()).unwrap();
        let got: Vec<(Option<Location>, &str)> = doc
            .sections
            .iter()
            .map(|s| (s.location.clone(), s.text.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    Some(Location::Slide { slide: 1 }),
                    "Welcome\nFirst point\nSecond point\n\nNotes:\nSay hello & smile"
                ),
                (Some(Location::Slide { slide: 2 }), "Numbers\nQ1 | 10"),
            ]
        );
    }

    #[test]
    fn slides_by_number_without_presentation_list() {
        let s = |t: &str| slide(&sp(None, &[t]));
        let bytes = testzip::zip(&[
            ("ppt/slides/slide10.xml", s("ten").as_bytes()),
            ("ppt/slides/slide9.xml", s("nine").as_bytes()),
        ]);
        let doc = read(&bytes, &Budget::default()).unwrap();
        assert_eq!(doc.joined(), "nine\n\nten");
    }

    #[test]
    fn zip_bomb_is_refused() {
        let bytes = testzip::bomb("ppt/slides/slide1.xml", 8 << 20, &[]);
        let budget = Budget {
            max_entry_bytes: 1 << 20,
            ..Budget::default()
        };
        let err = read(&bytes, &budget).unwrap_err();
        assert!(err.contains("over the parse budget"), "{err}");
    }

    #[test]
    fn too_many_slides() {
        let s = slide(&sp(None, &["x"]));
        let names: Vec<String> = (1..=20)
            .map(|i| format!("ppt/slides/slide{i}.xml"))
            .collect();
        let entries: Vec<(&str, &[u8])> =
            names.iter().map(|n| (n.as_str(), s.as_bytes())).collect();
        let budget = Budget {
            max_sections: 5,
            ..Budget::default()
        };
        let err = read(&testzip::zip(&entries), &budget).unwrap_err();
        assert!(err.contains("more than 5 sections"), "{err}");
    }
}
