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
            location: Some(Location::Page {
                page: i as u32 + 1,
            }),
            text,
        });
    }
    Ok(doc)
}
