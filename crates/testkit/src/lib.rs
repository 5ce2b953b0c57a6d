//! What fathom's tests share, so no test carries its own copy: where the real model and the
//! shared fixtures are (a missing one fails the test with the way out, never skips it), and
//! documents an attacker would drop in a folder — malformed, self-referencing and
//! decompression-bomb PDFs, built byte by byte with a correct cross-reference table so that a
//! parser reaches the part that is wrong.
//!
//! ```
//! let pdf = fathom_testkit::pdf::with_text("Green tea is steeped at 80 degrees.");
//! assert!(pdf.starts_with(b"%PDF-1.4"));
//! ```

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The real all-MiniLM-L6-v2 folder (scripts/fetch-model.sh). Missing is a failure, never a skip.
pub fn minilm() -> PathBuf {
    let dir = repo_root().join("models/all-MiniLM-L6-v2");
    assert!(
        dir.join("model.safetensors").is_file(),
        "the model is missing at {}: run scripts/fetch-model.sh first",
        dir.display()
    );
    dir
}

/// `../shared/fixtures` beside the repository (`FATHOM_SHARED` overrides `../shared`).
pub fn fixtures() -> PathBuf {
    let shared = std::env::var_os("FATHOM_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared"));
    let dir = shared.join("fixtures");
    assert!(
        dir.is_dir(),
        "fixtures not found at {} (set FATHOM_SHARED to the shared folder)",
        dir.display()
    );
    dir
}

/// Every tiny model of `../shared/fixtures/tiny`, one per architecture (BERT twice).
pub const TINY_MODELS: [&str; 7] = [
    "bert",
    "bert-cls",
    "distilbert",
    "xlm-roberta",
    "mpnet",
    "modernbert",
    "qwen3",
];

/// Writes `content` at `root/rel`, creating folders.
pub fn write(root: &Path, rel: &str, content: impl AsRef<[u8]>) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("a file in a folder")).expect("mkdir");
    std::fs::write(path, content).expect("write");
}

/// PDFs, well-formed and hostile.
pub mod pdf {
    use std::io::Write;

    /// A PDF of these objects (numbered from 1; object 1 is the catalog) with a correct xref.
    pub fn build(objects: &[Vec<u8>]) -> Vec<u8> {
        let mut out = b"%PDF-1.4\n".to_vec();
        let mut offsets = Vec::new();
        for (i, body) in objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
            out.extend_from_slice(body);
            out.extend_from_slice(b"\nendobj\n");
        }
        let xref = out.len();
        out.extend_from_slice(
            format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
        );
        for o in offsets {
            out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
        }
        out.extend_from_slice(
            format!(
                "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
                objects.len() + 1
            )
            .as_bytes(),
        );
        out
    }

    fn stream(dict: &str, data: &[u8]) -> Vec<u8> {
        let mut s = format!("<< {dict} /Length {} >>\nstream\n", data.len()).into_bytes();
        s.extend_from_slice(data);
        s.extend_from_slice(b"\nendstream");
        s
    }

    fn page_objects(page: &str, content: Vec<u8>) -> Vec<Vec<u8>> {
        vec![
            b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
            page.as_bytes().to_vec(),
            content,
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
                .to_vec(),
        ]
    }

    const PAGE: &str = "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>";

    fn text_content(text: &str) -> Vec<u8> {
        let escaped = text
            .replace('\\', "\\\\")
            .replace('(', "\\(")
            .replace(')', "\\)");
        stream(
            "",
            format!("BT /F1 12 Tf 72 720 Td ({escaped}) Tj ET").as_bytes(),
        )
    }

    /// One page showing `text` (ASCII).
    pub fn with_text(text: &str) -> Vec<u8> {
        build(&page_objects(PAGE, text_content(text)))
    }

    /// One page per text (ASCII), in order.
    pub fn with_pages(texts: &[&str]) -> Vec<u8> {
        let n = texts.len();
        // 1 catalog, 2 pages, 3 font, then per page: the page and its content stream.
        let kids: Vec<String> = (0..n).map(|i| format!("{} 0 R", 4 + 2 * i)).collect();
        let mut objects = vec![
            b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
            format!("<< /Type /Pages /Kids [{}] /Count {n} >>", kids.join(" ")).into_bytes(),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
                .to_vec(),
        ];
        for (i, text) in texts.iter().enumerate() {
            objects.push(format!("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {} 0 R /Resources << /Font << /F1 3 0 R >> >> >>", 5 + 2 * i).into_bytes());
            objects.push(text_content(text));
        }
        build(&objects)
    }

    /// One page that is only a picture (a scan): an 8-bit grey image of `width` × `height`
    /// pixels (row by row, `pixels.len() == width * height`) filling a US Letter page. No text
    /// layer.
    pub fn image_only(width: usize, height: usize, pixels: &[u8]) -> Vec<u8> {
        assert_eq!(pixels.len(), width * height, "one byte per pixel");
        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(pixels).expect("deflate in memory");
        let data = encoder.finish().expect("deflate in memory");
        build(&[
            b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /XObject << /Im1 5 0 R >> >> >>".to_vec(),
            stream("", b"q 612 0 0 792 0 0 cm /Im1 Do Q"),
            stream(
                &format!("/Type /XObject /Subtype /Image /Width {width} /Height {height} /ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /FlateDecode"),
                &data,
            ),
        ])
    }

    /// A page without a `MediaBox` anywhere in its tree (pdf-extract panics on it).
    pub fn without_media_box(text: &str) -> Vec<u8> {
        let page = PAGE.replace("/MediaBox [0 0 612 792] ", "");
        build(&page_objects(&page, text_content(text)))
    }

    /// A page tree whose root is its own parent, and a page that inherits its `MediaBox`: the
    /// lookup up the parents never ends (pdf-extract spins on it).
    pub fn cyclic_page_tree() -> Vec<u8> {
        build(&[
            b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 /Parent 2 0 R >>".to_vec(),
            b"<< /Type /Page /Parent 2 0 R /Contents 4 0 R >>".to_vec(),
            stream("", b"BT ET"),
        ])
    }

    /// A page whose content stream is small compressed and `inflated_bytes` once inflated.
    pub fn deflate_bomb(inflated_bytes: usize) -> Vec<u8> {
        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        let block = vec![b' '; 1 << 20];
        let mut left = inflated_bytes;
        while left > 0 {
            let n = left.min(block.len());
            encoder.write_all(&block[..n]).expect("deflate");
            left -= n;
        }
        let compressed = encoder.finish().expect("deflate");
        build(&page_objects(
            PAGE,
            stream("/Filter /FlateDecode", &compressed),
        ))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_xref_points_at_each_object() {
        let pdf = super::pdf::with_text("tea");
        let text = String::from_utf8(pdf).unwrap();
        let start: usize = text
            .rsplit("startxref\n")
            .next()
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(text[start..].starts_with("xref"));
        for (i, line) in text[start..].lines().skip(3).take(5).enumerate() {
            let offset: usize = line[..10].parse().unwrap();
            assert!(text[offset..].starts_with(&format!("{} 0 obj", i + 1)));
        }
    }
}

/// Office documents and pictures an attacker would drop in a folder: zip bombs, entity
/// expansion, deep nesting, an image header declaring billions of pixels.
pub mod docs {
    use std::io::Write;

    const CONTENT_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#;
    const ROOT_RELS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#;
    const W: &str = r#"xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main""#;

    fn options() -> zip::write::SimpleFileOptions {
        zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(true)
    }

    /// A Word package whose `word/document.xml` is `document`.
    pub fn docx(document: &str) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, body) in [
            ("[Content_Types].xml", CONTENT_TYPES),
            ("_rels/.rels", ROOT_RELS),
            ("word/document.xml", document),
        ] {
            zip.start_file(name, options()).expect("zip in memory");
            zip.write_all(body.as_bytes()).expect("zip in memory");
        }
        zip.finish().expect("zip in memory").into_inner()
    }

    /// A Word package whose `entry` inflates to `inflated` bytes of spaces (a few MB on disk).
    pub fn zip_bomb(entry: &str, inflated: u64) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, body) in [
            ("[Content_Types].xml", CONTENT_TYPES),
            ("_rels/.rels", ROOT_RELS),
        ] {
            zip.start_file(name, options()).expect("zip in memory");
            zip.write_all(body.as_bytes()).expect("zip in memory");
        }
        zip.start_file(entry, options()).expect("zip in memory");
        let block = vec![b' '; 1 << 20];
        let mut left = inflated;
        while left > 0 {
            let n = left.min(block.len() as u64) as usize;
            zip.write_all(&block[..n]).expect("zip in memory");
            left -= n as u64;
        }
        zip.finish().expect("zip in memory").into_inner()
    }

    /// `document.xml` with the "billion laughs" DOCTYPE: ten levels of ten references each.
    pub fn billion_laughs_docx() -> Vec<u8> {
        let mut dtd = String::from("<!ENTITY lol0 \"lol\">");
        for i in 1..10 {
            let refs = format!("&lol{};", i - 1).repeat(10);
            dtd.push_str(&format!("<!ENTITY lol{i} \"{refs}\">"));
        }
        docx(&format!(
            r#"<?xml version="1.0"?><!DOCTYPE w:document [{dtd}]><w:document {W}><w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>"#
        ))
    }

    /// `document.xml` with `depth` nested paragraphs-in-runs.
    pub fn deep_docx(depth: usize) -> Vec<u8> {
        docx(&format!(
            r#"<?xml version="1.0"?><w:document {W}><w:body>{}deep{}</w:body></w:document>"#,
            "<w:r>".repeat(depth),
            "</w:r>".repeat(depth)
        ))
    }

    /// The start of a PNG that declares 100,000 × 100,000 pixels (and holds none).
    pub fn giant_png_header() -> Vec<u8> {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend_from_slice(&100_000u32.to_be_bytes());
        png.extend_from_slice(&100_000u32.to_be_bytes());
        png.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
        png
    }
}
