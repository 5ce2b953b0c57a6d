//! CSV and TSV through the csv crate: the first non-empty row is the header; data rows read
//! "col: value; col: value", grouped into blocks of about [`super::sheets::BLOCK_BYTES`], each a
//! [`super::Location::Sheet`] section with an empty sheet name at its first row (the header is
//! row 1). Rows may have any number of fields; invalid UTF-8 is replaced. TSV has no quoting.

use super::sheets::Rows;
use super::{Budget, Builder, ReadResult};

/// Reads delimited text with `delimiter` (b',' for CSV, b'\t' for TSV).
pub fn read(bytes: &[u8], delimiter: u8, budget: &Budget) -> ReadResult {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .quoting(delimiter != b'\t')
        .from_reader(bytes);
    let what = if delimiter == b'\t' { "TSV" } else { "CSV" };
    let mut b = Builder::new(budget);
    let mut rows = Rows::new(String::new());
    let mut record = csv::ByteRecord::new();
    let mut cells: Vec<(usize, String)> = Vec::new();
    let mut row: u32 = 0;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(format!("not a readable {what} file: {e}")),
        }
        row = row.saturating_add(1);
        cells.clear();
        for (i, field) in record.iter().enumerate() {
            let v = String::from_utf8_lossy(field);
            let v = v.trim();
            if !v.is_empty() {
                cells.push((i, v.to_string()));
            }
        }
        rows.row(&mut b, row, &cells)?;
    }
    rows.finish(&mut b)?;
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::super::Location;
    use super::*;

    #[test]
    fn reads_csv_rows() {
        let csv = "\u{feff}name,city,note\nAnn,Paris,\"likes, commas\"\n\nBob,,\"two\nlines\"\nCy,Rome,x,extra\n";
        let doc = read(csv.as_bytes(), b',', &Budget::default()).unwrap();
        assert_eq!(doc.sections.len(), 1);
        assert_eq!(
            doc.sections[0].location,
            Some(Location::Sheet {
                sheet: String::new(),
                row: 2
            })
        );
        assert_eq!(doc.sections[0].location.as_ref().unwrap().label(), "row 2");
        assert_eq!(
            doc.sections[0].text,
            "name: Ann; city: Paris; note: likes, commas\n\
             name: Bob; note: two lines\n\
             name: Cy; city: Rome; note: x; D: extra"
        );
    }

    #[test]
    fn reads_tsv_without_quoting() {
        let tsv = b"a\tb\n\"1\t2\xff\n";
        let doc = read(tsv, b'\t', &Budget::default()).unwrap();
        assert_eq!(doc.joined(), "a: \"1; b: 2\u{fffd}");
    }

    #[test]
    fn header_only() {
        let doc = read(b"x,y\n", b',', &Budget::default()).unwrap();
        assert_eq!(doc.joined(), "x; y");
    }

    #[test]
    fn blocks_and_row_numbers() {
        let mut csv = String::from("id,text\n");
        for i in 0..1000 {
            csv.push_str(&format!("{i},some text for row {i}\n"));
        }
        let doc = read(csv.as_bytes(), b',', &Budget::default()).unwrap();
        let mut next = 2;
        for s in &doc.sections {
            assert!(s.text.len() <= super::super::sheets::BLOCK_BYTES);
            assert_eq!(
                s.location,
                Some(Location::Sheet {
                    sheet: String::new(),
                    row: next
                })
            );
            next += s.text.lines().count() as u32;
        }
        assert_eq!(next, 1002);
    }

    #[test]
    fn million_rows_hit_the_text_budget() {
        let mut csv = String::from("a,b\n");
        for i in 0..1_000_000 {
            csv.push_str(&format!("{i},v\n"));
        }
        let budget = Budget {
            max_text_bytes: 100_000,
            ..Budget::default()
        };
        let t = std::time::Instant::now();
        let err = read(csv.as_bytes(), b',', &budget).unwrap_err();
        assert!(err.contains("over the parse budget"), "{err}");
        assert!(t.elapsed().as_secs() < 5, "{:?}", t.elapsed());
    }
}
