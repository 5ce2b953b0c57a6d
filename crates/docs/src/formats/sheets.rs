//! Spreadsheets: .xlsx and .xls through calamine, .ods through the XML walker. Sheet by sheet,
//! the first non-empty row is the header and each data row reads "Header1: v1; Header2: v2"
//! (empty cells skipped), rows grouped into blocks of about [`BLOCK_BYTES`], each a
//! [`Location::Sheet`] section at the block's first row.
//!
//! Bounds: an .xlsx zip is inflated once through [`Container::check_all`] before calamine opens
//! it (calamine itself does not bound what it inflates), its shared-string count is checked
//! against the part's size (calamine reserves what the file declares), and its sheets are read
//! cell by cell (calamine's `Range` is dense: a sheet with cells at A1 and XFD1048576 would be a
//! 17-billion-cell allocation). An .ods is read by our own streaming walker for the same reason
//! (calamine's ODS reader builds a dense range of up to 100 million cells). An .xls (BIFF8) sheet
//! is at most 65,536 × 256 cells, so calamine's dense range is bounded there.

use std::io::Cursor;

use calamine::{open_workbook_from_rs, Data, DataRef, Reader, Xls, Xlsx};

use super::container::{attr, local, walk_xml, Container, Xml};
use super::{Budget, Builder, Location, ReadResult};

/// About how many bytes of row text go in one section.
///
/// 600 bytes of rows are about 150–250 tokens: one chunk for a 256-token model, so a hit's row
/// (the block's first) is the row its chunk starts at. Larger blocks were cut into several
/// chunks that all said the block's first row.
pub const BLOCK_BYTES: usize = 600;

/// Cells beyond this column are read without a header name (and repeats are not expanded).
const MAX_COLUMNS: usize = 16_384;

/// Groups a sheet's rows into located blocks of text.
#[derive(Debug)]
pub(crate) struct Rows {
    sheet: String,
    header: Option<Vec<String>>,
    header_row: u32,
    header_line: String,
    block: String,
    block_row: u32,
    any_data: bool,
}

impl Rows {
    pub(crate) fn new(sheet: String) -> Self {
        Rows {
            sheet,
            header: None,
            header_row: 0,
            header_line: String::new(),
            block: String::new(),
            block_row: 0,
            any_data: false,
        }
    }

    /// One row: `row` is its 1-based number, `cells` its non-empty `(0-based column, value)`s.
    pub(crate) fn row(
        &mut self,
        b: &mut Builder<'_>,
        row: u32,
        cells: &[(usize, String)],
    ) -> Result<(), String> {
        if cells.iter().all(|(_, v)| v.trim().is_empty()) {
            return Ok(());
        }
        let Some(header) = &self.header else {
            let width = cells
                .iter()
                .map(|(c, _)| *c + 1)
                .filter(|w| *w <= MAX_COLUMNS)
                .max()
                .unwrap_or(0);
            let mut names = vec![String::new(); width];
            for (c, v) in cells {
                if let Some(n) = names.get_mut(*c) {
                    *n = one_line(v);
                }
            }
            self.header_line = names
                .iter()
                .filter(|n| !n.is_empty())
                .cloned()
                .collect::<Vec<_>>()
                .join("; ");
            self.header = Some(names);
            self.header_row = row;
            return Ok(());
        };
        let mut line = String::new();
        for (c, v) in cells {
            let v = one_line(v);
            if v.is_empty() {
                continue;
            }
            if !line.is_empty() {
                line.push_str("; ");
            }
            match header.get(*c).filter(|h| !h.is_empty()) {
                Some(h) => line.push_str(h),
                None => line.push_str(&column_name(*c)),
            }
            line.push_str(": ");
            line.push_str(&v);
        }
        b.charge(line.len() + 1)?;
        if !self.block.is_empty() && self.block.len() + line.len() + 1 > BLOCK_BYTES {
            self.flush(b)?;
        }
        if self.block.is_empty() {
            self.block_row = row;
        }
        self.block.push_str(&line);
        self.block.push('\n');
        self.any_data = true;
        Ok(())
    }

    fn flush(&mut self, b: &mut Builder<'_>) -> Result<(), String> {
        let text = std::mem::take(&mut self.block);
        b.push_charged(
            Some(Location::Sheet {
                sheet: self.sheet.clone(),
                row: self.block_row,
            }),
            text,
        )
    }

    /// Ends the sheet. A sheet with a header and no data rows reads as its header.
    pub(crate) fn finish(mut self, b: &mut Builder<'_>) -> Result<(), String> {
        if !self.any_data && !self.header_line.is_empty() {
            let line = std::mem::take(&mut self.header_line);
            return b.push(
                Some(Location::Sheet {
                    sheet: self.sheet.clone(),
                    row: self.header_row,
                }),
                line,
            );
        }
        self.flush(b)
    }
}

/// A value on one line: inner line breaks become spaces.
fn one_line(v: &str) -> String {
    let v = v.trim();
    if v.contains(['\n', '\r']) {
        v.split(['\n', '\r'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        v.to_string()
    }
}

/// "A", "B", …, "Z", "AA": a spreadsheet column's letters, for cells without a header.
pub(crate) fn column_name(col: usize) -> String {
    let mut n = col + 1;
    let mut s = Vec::new();
    while n > 0 {
        let r = (n - 1) % 26;
        s.push(b'A' + r as u8);
        n = (n - 1) / 26;
    }
    s.reverse();
    String::from_utf8(s).unwrap_or_default()
}

/// Reads an .xlsx (or .xlsm).
pub fn read_xlsx(bytes: &[u8], budget: &Budget) -> ReadResult {
    let unreadable = |e: &dyn std::fmt::Display| format!("not a readable Excel workbook: {e}");
    {
        let mut c = Container::open(bytes, budget, "Excel workbook")?;
        c.check_all()?;
        check_shared_strings(&mut c)?;
    }
    let mut wb: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes)).map_err(|e| unreadable(&e))?;
    let mut b = Builder::new(budget);
    for name in wb.sheet_names() {
        // A chart sheet or a sheet the workbook names but does not hold: nothing to read.
        let Ok(mut cells) = wb.worksheet_cells_reader(&name) else {
            continue;
        };
        let mut rows = Rows::new(name.clone());
        let mut current: Option<u32> = None;
        let mut row_cells: Vec<(usize, String)> = Vec::new();
        while let Some(cell) = cells.next_cell().map_err(|e| unreadable(&e))? {
            let (r, c) = cell.get_position();
            if current != Some(r) {
                if let Some(prev) = current {
                    rows.row(&mut b, prev.saturating_add(1), &row_cells)?;
                }
                row_cells.clear();
                current = Some(r);
            }
            let v = dataref_text(cell.get_value());
            if !v.is_empty() {
                row_cells.push((c as usize, v));
            }
        }
        if let Some(prev) = current {
            rows.row(&mut b, prev.saturating_add(1), &row_cells)?;
        }
        rows.finish(&mut b)?;
    }
    b.finish()
}

/// Refuses a shared-string table that declares more strings than its bytes could hold
/// (calamine reserves the declared count up front).
fn check_shared_strings(c: &mut Container<'_>) -> Result<(), String> {
    let Some(name) = c
        .names()
        .into_iter()
        .find(|n| n.ends_with("sharedStrings.xml"))
    else {
        return Ok(());
    };
    let Some(xml) = c.read(&name)? else {
        return Ok(());
    };
    let head = &xml[..xml.len().min(4096)];
    let head = String::from_utf8_lossy(head);
    let Some(at) = head.find("uniqueCount=") else {
        return Ok(());
    };
    let digits: String = head[at + "uniqueCount=".len()..]
        .chars()
        .skip(1)
        .take_while(|c| c.is_ascii_digit())
        .collect();
    let declared: u128 = digits.parse().unwrap_or(0);
    // The smallest shared string, "<si><t/></si>", is 13 bytes.
    if declared > (xml.len() as u128) / 8 + 16 {
        return Err(format!(
            "not a readable Excel workbook: {name} declares {declared} strings in {} bytes",
            xml.len()
        ));
    }
    Ok(())
}

/// A cell's text as the sheet shows it (dates as ISO dates).
fn dataref_text(v: &DataRef<'_>) -> String {
    match v {
        DataRef::Empty => String::new(),
        DataRef::SharedString(s) => s.to_string(),
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
        DataRef::DateTime(d) if d.is_datetime() => excel_date(d.as_f64()),
        other => Data::from(other.clone()).to_string(),
    }
}

fn data_text(v: &Data) -> String {
    match v {
        Data::DateTime(d) if d.is_datetime() => excel_date(d.as_f64()),
        other => other.to_string(),
    }
}

/// An Excel serial date (1900 system) as "YYYY-MM-DD", with " HH:MM:SS" when it has a time,
/// or just the time under one day.
fn excel_date(serial: f64) -> String {
    if !serial.is_finite() || !(0.0..3_000_000.0).contains(&serial) {
        return serial.to_string();
    }
    let days = serial.floor() as i64;
    let secs = ((serial - serial.floor()) * 86_400.0).round() as i64;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let time = format!("{h:02}:{m:02}:{s:02}");
    if days == 0 {
        return time;
    }
    // Days since 1970-01-01 (serial 25569), then Howard Hinnant's civil-from-days.
    let z = days - 25_569 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    if secs == 0 {
        format!("{y:04}-{mo:02}-{d:02}")
    } else {
        format!("{y:04}-{mo:02}-{d:02} {time}")
    }
}

/// Reads an .xls (BIFF8 and earlier, through calamine).
pub fn read_xls(bytes: &[u8], budget: &Budget) -> ReadResult {
    let unreadable =
        |e: &dyn std::fmt::Display| format!("not a readable Excel 97-2003 workbook: {e}");
    let mut wb: Xls<_> = open_workbook_from_rs(Cursor::new(bytes)).map_err(|e| unreadable(&e))?;
    let mut b = Builder::new(budget);
    for name in wb.sheet_names() {
        let Ok(range) = wb.worksheet_range(&name) else {
            continue;
        };
        let Some((r0, c0)) = range.start() else {
            continue;
        };
        let mut rows = Rows::new(name.clone());
        let mut cells = Vec::new();
        for (i, row) in range.rows().enumerate() {
            cells.clear();
            for (j, v) in row.iter().enumerate() {
                let t = data_text(v);
                if !t.is_empty() {
                    cells.push((c0 as usize + j, t));
                }
            }
            let n = u32::try_from(i).unwrap_or(u32::MAX);
            rows.row(&mut b, r0.saturating_add(n).saturating_add(1), &cells)?;
        }
        rows.finish(&mut b)?;
    }
    b.finish()
}

/// Reads an .ods (OpenDocument spreadsheet) by walking content.xml.
pub fn read_ods(bytes: &[u8], budget: &Budget) -> ReadResult {
    let mut c = Container::open(bytes, budget, "OpenDocument spreadsheet")?;
    let xml = c.require_text("content.xml")?;
    let mut b = Builder::new(budget);
    let mut sheet: Option<Rows> = None;
    let mut row_no: u32 = 0;
    let mut row_repeat: u32 = 1;
    let mut col: usize = 0;
    let mut cells: Vec<(usize, String)> = Vec::new();
    // The cell being read: its column repeat count and text.
    let mut cell: Option<(usize, String)> = None;
    let mut paras_in_cell = 0usize;
    let mut skip = 0usize;
    let r = walk_xml(&xml, budget.max_depth, false, |ev| {
        match ev {
            Xml::Start(e) => match local(e) {
                "annotation" | "shapes" | "tracked-changes" => skip += 1,
                _ if skip > 0 => {}
                "table" => {
                    let name = attr(e, "name").unwrap_or_default();
                    sheet = Some(Rows::new(name));
                    row_no = 0;
                }
                "table-row" => {
                    row_repeat = repeat(e, "number-rows-repeated");
                    row_no = row_no.saturating_add(1);
                    col = 0;
                    cells.clear();
                }
                "table-cell" | "covered-table-cell" => {
                    let n = repeat(e, "number-columns-repeated") as usize;
                    cell = Some((n, String::new()));
                    paras_in_cell = 0;
                }
                "p" | "h" if cell.is_some() => {
                    if paras_in_cell > 0 {
                        if let Some((_, t)) = cell.as_mut() {
                            t.push(' ');
                        }
                    }
                    paras_in_cell += 1;
                }
                "s" => {
                    if let Some((_, t)) = cell.as_mut() {
                        let n = attr(e, "c")
                            .and_then(|c| c.parse::<usize>().ok())
                            .unwrap_or(1);
                        t.push_str(&" ".repeat(n.min(64)));
                    }
                }
                "tab" | "line-break" => {
                    if let Some((_, t)) = cell.as_mut() {
                        t.push(' ');
                    }
                }
                _ => {}
            },
            Xml::End(name) => match name {
                "annotation" | "shapes" | "tracked-changes" => skip = skip.saturating_sub(1),
                _ if skip > 0 => {}
                "table-cell" | "covered-table-cell" => {
                    if let Some((n, t)) = cell.take() {
                        if t.trim().is_empty() || col >= MAX_COLUMNS {
                            col = col.saturating_add(n);
                        } else {
                            let k = n.min(MAX_COLUMNS - col);
                            for _ in 0..k {
                                cells.push((col, t.clone()));
                                col += 1;
                            }
                            col = col.saturating_add(n - k);
                        }
                    }
                }
                "table-row" => {
                    if let Some(rows) = sheet.as_mut() {
                        if !cells.is_empty() {
                            for k in 0..row_repeat {
                                rows.row(&mut b, row_no.saturating_add(k), &cells)?;
                            }
                        }
                    }
                    row_no = row_no.saturating_add(row_repeat - 1);
                    cells.clear();
                }
                "table" => {
                    if let Some(rows) = sheet.take() {
                        rows.finish(&mut b)?;
                    }
                }
                _ => {}
            },
            Xml::Text(t) if skip == 0 => {
                if let Some((_, s)) = cell.as_mut() {
                    if s.len() + t.len() > budget.max_text_bytes {
                        return Err(super::text_over(budget));
                    }
                    s.push_str(t);
                }
            }
            Xml::Text(_) => {}
        }
        Ok(())
    });
    r.map_err(|e| c.part_error("content.xml", e))?;
    b.finish()
}

/// A repeat count attribute, at least 1.
fn repeat(e: &quick_xml::events::BytesStart<'_>, name: &str) -> u32 {
    attr(e, name)
        .and_then(|v| v.trim().parse::<u32>().ok())
        .unwrap_or(1)
        .max(1)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::container::testzip;
    use super::*;

    fn xlsx(shared: &[&str], sheet_data: &str, dimension: &str) -> Vec<u8> {
        let ct = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>"#;
        let rels = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#;
        let workbook = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Q3" sheetId="1" r:id="rId1"/></sheets></workbook>"#;
        let wb_rels = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>"#;
        let sst: String = shared
            .iter()
            .map(|s| format!("<si><t>{s}</t></si>"))
            .collect();
        let sst = format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="{n}" uniqueCount="{n}">{sst}</sst>"#,
            n = shared.len()
        );
        let sheet = format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><dimension ref="{dimension}"/><sheetData>{sheet_data}</sheetData></worksheet>"#
        );
        testzip::zip(&[
            ("[Content_Types].xml", ct.as_bytes()),
            ("_rels/.rels", rels.as_bytes()),
            ("xl/workbook.xml", workbook.as_bytes()),
            ("xl/_rels/workbook.xml.rels", wb_rels.as_bytes()),
            ("xl/sharedStrings.xml", sst.as_bytes()),
            ("xl/worksheets/sheet1.xml", sheet.as_bytes()),
        ])
    }

    pub(crate) fn sample_xlsx() -> Vec<u8> {
        xlsx(
            &["Region", "Total", "North", "South"],
            concat!(
                r#"<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>"#,
                r#"<row r="2"><c r="A2" t="s"><v>2</v></c><c r="B2"><v>10.5</v></c><c r="D2" t="inlineStr"><is><t>extra</t></is></c></row>"#,
                r#"<row r="4"><c r="A4" t="s"><v>3</v></c><c r="B4"/></row>"#,
            ),
            "A1:D4",
        )
    }

    #[test]
    fn reads_xlsx_rows_with_headers() {
        let doc = read_xlsx(&sample_xlsx(), &Budget::default()).unwrap();
        assert_eq!(doc.sections.len(), 1);
        assert_eq!(
            doc.sections[0].location,
            Some(Location::Sheet {
                sheet: "Q3".into(),
                row: 2
            })
        );
        assert_eq!(
            doc.sections[0].text,
            "Region: North; Total: 10.5; D: extra\nRegion: South"
        );
    }

    #[test]
    fn xlsx_far_cells_do_not_allocate_a_dense_range() {
        let bytes = xlsx(
            &["h"],
            r#"<row r="1"><c r="A1" t="s"><v>0</v></c></row><row r="1048576"><c r="XFD1048576"><v>1</v></c></row>"#,
            "A1:XFD1048576",
        );
        let doc = read_xlsx(&bytes, &Budget::default()).unwrap();
        assert_eq!(doc.joined(), "XFD: 1");
        assert_eq!(
            doc.sections[0].location,
            Some(Location::Sheet {
                sheet: "Q3".into(),
                row: 1_048_576
            })
        );
    }

    #[test]
    fn xlsx_declared_string_count_is_checked() {
        let bytes = xlsx(&["a"], "", "A1").into_iter().collect::<Vec<u8>>();
        // Rebuild with a lying uniqueCount.
        let mut c = ::zip::ZipArchive::new(Cursor::new(&bytes[..])).unwrap();
        let mut entries = Vec::new();
        for i in 0..c.len() {
            let mut f = c.by_index(i).unwrap();
            let mut s = String::new();
            std::io::Read::read_to_string(&mut f, &mut s).unwrap();
            entries.push((
                f.name().unwrap().into_owned(),
                s.replace("uniqueCount=\"1\"", "uniqueCount=\"100000000000\""),
            ));
        }
        let refs: Vec<(&str, &[u8])> = entries
            .iter()
            .map(|(n, s)| (n.as_str(), s.as_bytes()))
            .collect();
        let err = read_xlsx(&testzip::zip(&refs), &Budget::default()).unwrap_err();
        assert!(err.contains("declares 100000000000 strings"), "{err}");
    }

    #[test]
    fn xlsx_zip_bomb_is_refused_before_calamine() {
        let bytes = testzip::bomb("xl/sharedStrings.xml", 8 << 20, &[]);
        let budget = Budget {
            max_entry_bytes: 1 << 20,
            ..Budget::default()
        };
        let err = read_xlsx(&bytes, &budget).unwrap_err();
        assert!(
            err.contains("more than 1 MiB inflated from one zip entry"),
            "{err}"
        );
    }

    #[test]
    fn blocks_split_near_block_bytes() {
        let mut data =
            String::from(r#"<row r="1"><c r="A1" t="inlineStr"><is><t>name</t></is></c></row>"#);
        for r in 2..=201 {
            data.push_str(&format!(
                r#"<row r="{r}"><c r="A{r}" t="inlineStr"><is><t>person number {r:04}</t></is></c></row>"#
            ));
        }
        let doc = read_xlsx(&xlsx(&[], &data, "A1:A201"), &Budget::default()).unwrap();
        assert!(doc.sections.len() > 3);
        let mut expected_row = 2;
        for s in &doc.sections {
            assert!(s.text.len() <= BLOCK_BYTES, "{}", s.text.len());
            let Some(Location::Sheet { row, .. }) = &s.location else {
                panic!("no sheet location");
            };
            assert_eq!(*row, expected_row);
            assert!(s
                .text
                .starts_with(&format!("name: person number {expected_row:04}")));
            expected_row += s.text.lines().count() as u32;
        }
        assert_eq!(expected_row, 202);
    }

    #[test]
    fn dates() {
        assert_eq!(excel_date(45_292.0), "2024-01-01");
        assert_eq!(excel_date(45_292.5), "2024-01-01 12:00:00");
        assert_eq!(excel_date(25_569.0), "1970-01-01");
        assert_eq!(excel_date(0.25), "06:00:00");
        assert_eq!(column_name(0), "A");
        assert_eq!(column_name(27), "AB");
        assert_eq!(column_name(16_383), "XFD");
    }

    const ODS_NS: &str = r#"xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.3""#;

    fn ods(tables: &str) -> Vec<u8> {
        let content = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<office:document-content {ODS_NS}><office:body><office:spreadsheet>{tables}</office:spreadsheet></office:body></office:document-content>"#
        );
        testzip::zip(&[
            (
                "mimetype",
                b"application/vnd.oasis.opendocument.spreadsheet",
            ),
            ("content.xml", content.as_bytes()),
        ])
    }

    pub(crate) fn sample_ods() -> Vec<u8> {
        ods(concat!(
            r#"<table:table table:name="Budget"><table:table-column table:number-columns-repeated="3"/>"#,
            r#"<table:table-row><table:table-cell office:value-type="string"><text:p>Item</text:p></table:table-cell><table:table-cell office:value-type="string"><text:p>Cost</text:p></table:table-cell></table:table-row>"#,
            r#"<table:table-row table:number-rows-repeated="2"><table:table-cell table:number-columns-repeated="2"/></table:table-row>"#,
            r#"<table:table-row><table:table-cell office:value-type="string"><text:p>Rent<text:s/>&amp; fees</text:p><office:annotation><text:p>a comment</text:p></office:annotation></table:table-cell><table:table-cell office:value-type="float" office:value="1200"><text:p>1,200</text:p></table:table-cell></table:table-row>"#,
            r#"<table:table-row table:number-rows-repeated="1048570"><table:table-cell table:number-columns-repeated="16384"/></table:table-row>"#,
            r#"</table:table>"#,
            r#"<table:table table:name="Empty"><table:table-row><table:table-cell/></table:table-row></table:table>"#,
        ))
    }

    #[test]
    fn reads_ods() {
        let doc = read_ods(&sample_ods(), &Budget::default()).unwrap();
        assert_eq!(doc.sections.len(), 1);
        assert_eq!(doc.sections[0].text, "Item: Rent & fees; Cost: 1,200");
        assert_eq!(
            doc.sections[0].location,
            Some(Location::Sheet {
                sheet: "Budget".into(),
                row: 4
            })
        );
    }

    #[test]
    fn ods_repeated_rows_are_bounded() {
        let bytes = ods(concat!(
            r#"<table:table table:name="S"><table:table-row><table:table-cell><text:p>h</text:p></table:table-cell></table:table-row>"#,
            r#"<table:table-row table:number-rows-repeated="1000000"><table:table-cell table:number-columns-repeated="16384"><text:p>x</text:p></table:table-cell></table:table-row></table:table>"#,
        ));
        let budget = Budget {
            max_text_bytes: 1 << 20,
            ..Budget::default()
        };
        let t = std::time::Instant::now();
        let err = read_ods(&bytes, &budget).unwrap_err();
        assert!(err.contains("over the parse budget"), "{err}");
        assert!(t.elapsed().as_secs() < 10);
    }

    #[test]
    fn xls_garbage_is_an_error() {
        let err = read_xls(
            b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1garbage",
            &Budget::default(),
        )
        .unwrap_err();
        assert!(
            err.starts_with("not a readable Excel 97-2003 workbook"),
            "{err}"
        );
    }
}
