//! PDF through its text layer (`pdf-extract`), page by page: each page a section with its page
//! number. Pages without a text layer (scans) come out empty here; `crate::read` hands them to
//! OCR.

use super::{Budget, Document, Location, ReadResult, Section};

pub fn read(bytes: &[u8], budget: &Budget) -> ReadResult {
    let pages = pdf_extract::extract_text_from_mem_by_pages(bytes)
        .map_err(|e| format!("not a readable PDF: {e}"))?;
    let mut doc = Document::default();
    let mut total = 0usize;
    for (i, text) in pages.into_iter().enumerate() {
        total += text.len();
        if total > budget.max_text_bytes {
            return Err(super::text_over(budget));
        }
        doc.sections.push(Section {
            location: Some(Location::Page { page: i as u32 + 1 }),
            text,
        });
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_page_is_a_section_with_its_number() {
        let pdf = fathom_testkit::pdf::with_pages(&["First page text.", "Second page text."]);
        let doc = read(&pdf, &Budget::default()).unwrap();
        assert_eq!(doc.sections.len(), 2);
        for (i, (section, want)) in doc
            .sections
            .iter()
            .zip(["First page text.", "Second page text."])
            .enumerate()
        {
            assert_eq!(
                section.location,
                Some(Location::Page { page: i as u32 + 1 })
            );
            assert_eq!(section.text.trim(), want);
        }
        let small = Budget {
            max_text_bytes: 8,
            ..Budget::default()
        };
        assert!(read(&pdf, &small)
            .unwrap_err()
            .contains("over the parse budget"));
    }
}
