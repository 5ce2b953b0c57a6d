//! HTML as the text a browser shows (`html2text`), one section. It runs in the parser child like
//! every other format: html2text lays out the DOM recursively and slowly on deep nesting (a 1 MB
//! page of 100,000 nested `div`s took 43 s in the ingest's own process), so it needs the child's
//! time and memory budget.

use super::{Budget, Document, ReadResult, Section};

pub fn read(bytes: &[u8], budget: &Budget) -> ReadResult {
    let text = html2text::from_read(bytes, 100).map_err(|e| format!("not readable HTML: {e}"))?;
    if text.len() > budget.max_text_bytes {
        return Err(super::text_over(budget));
    }
    Ok(Document {
        sections: vec![Section {
            location: None,
            text,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_not_the_markup() {
        let doc = read(
            b"<html><body><h1>Title</h1><p>Hello <b>world</b></p><script>x()</script></body></html>",
            &Budget::default(),
        )
        .unwrap();
        let text = &doc.sections[0].text;
        assert!(
            text.contains("Title") && text.contains("Hello") && !text.contains("<p>"),
            "{text}"
        );
    }
}
