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
