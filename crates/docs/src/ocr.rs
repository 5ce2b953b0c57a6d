//! Text from pictures of text: images (`.png`, `.jpg`, `.tiff`…) and PDF pages without a text
//! layer (scans), through Tesseract's command-line program (Debian's `tesseract-ocr`, English
//! data) and, for PDF pages, Poppler's `pdftoppm` to render the page first. Both run as child
//! processes within the file's parse budget (time, memory, output), like the document parsers.
//!
//! Why the programs and not a binding: a binding links Tesseract and Leptonica (C++) into every
//! build of fathom, while the programs are an optional package; a machine without them still
//! builds and ingests everything else, and says what it skipped.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::extract::{run_child, ParseLimits};

/// Whether images and scanned PDF pages go through OCR.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OcrMode {
    /// When Tesseract is installed; otherwise images are skipped (and counted) with a hint.
    #[default]
    Auto,
    /// Always: a missing Tesseract is an error for each file that needs it.
    Always,
    /// Never: images are skipped, scanned PDF pages give no text.
    Never,
}

impl std::str::FromStr for OcrMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "always" => Ok(Self::Always),
            "never" => Ok(Self::Never),
            _ => Err(format!(
                "unknown OCR mode `{s}` (use auto, always or never)"
            )),
        }
    }
}

/// Images larger than this many pixels are not handed to OCR (a 100-megapixel page is a poster
/// at 600 dpi; a decompression bomb declares billions).
pub const MAX_OCR_PIXELS: u64 = 100_000_000;

/// Resolution PDF pages are rendered at for OCR: Tesseract's documented sweet spot.
const PDF_DPI: u32 = 300;

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The `tesseract` program, if installed (looked up once).
pub fn tesseract() -> Option<&'static Path> {
    static FOUND: OnceLock<Option<PathBuf>> = OnceLock::new();
    FOUND.get_or_init(|| find_program("tesseract")).as_deref()
}

fn pdftoppm() -> Option<&'static Path> {
    static FOUND: OnceLock<Option<PathBuf>> = OnceLock::new();
    FOUND.get_or_init(|| find_program("pdftoppm")).as_deref()
}

/// Whether OCR runs under `mode`: `Ok(false)` to skip, an error when it must run but cannot.
pub fn enabled(mode: OcrMode) -> Result<bool, String> {
    match mode {
        OcrMode::Never => Ok(false),
        OcrMode::Auto => Ok(tesseract().is_some()),
        OcrMode::Always if tesseract().is_some() => Ok(true),
        OcrMode::Always => Err(
            "OCR needs the `tesseract` program (apt-get install tesseract-ocr), or --ocr never"
                .into(),
        ),
    }
}

/// The width and height an image declares in its header, if its format is known.
pub fn image_size(bytes: &[u8]) -> Option<(u64, u64)> {
    imagesize::blob_size(bytes)
        .ok()
        .map(|s| (s.width as u64, s.height as u64))
}

/// Runs Tesseract on an image's bytes (any format Leptonica reads: PNG, JPEG, TIFF, BMP, GIF,
/// WebP, PNM). Blocking.
pub fn image_text(bytes: &[u8], limits: &ParseLimits) -> Result<String, String> {
    match image_size(bytes) {
        None => return Err("not a readable image".into()),
        Some((w, h)) if w.saturating_mul(h) > MAX_OCR_PIXELS => {
            return Err(format!(
                "over the parse budget: a {w}×{h} image is more than {} megapixels to OCR",
                MAX_OCR_PIXELS / 1_000_000
            ))
        }
        Some(_) => {}
    }
    let Some(program) = tesseract() else {
        return Err("OCR needs the `tesseract` program (apt-get install tesseract-ocr)".into());
    };
    // `stdin stdout`: the image on stdin, the text on stdout; --psm 3: automatic page layout.
    let args: Vec<String> = ["stdin", "stdout", "-l", "eng", "--psm", "3", "quiet"]
        .map(String::from)
        .to_vec();
    // One thread: Tesseract's OpenMP threads spin against each other and the ingest's own
    // (9.1 s for a 1271×1644 page with them on 2 cores, 1.2 s without).
    let out = run_child(
        program,
        &args,
        &[("OMP_THREAD_LIMIT", "1")],
        bytes,
        limits,
        "OCR (tesseract)",
    )?;
    Ok(clean(&String::from_utf8_lossy(&out)))
}

/// Renders one page of a PDF (1-based) to PNG with `pdftoppm` and runs Tesseract on it.
/// `pdf` is the path of the PDF's bytes on disk (pdftoppm reads files, not pipes). Blocking.
pub fn pdf_page_text(pdf: &Path, page: u32, limits: &ParseLimits) -> Result<String, String> {
    let Some(program) = pdftoppm() else {
        return Err(
            "OCR of a scanned PDF page needs `pdftoppm` (apt-get install poppler-utils)".into(),
        );
    };
    let page_arg = page.to_string();
    let args: Vec<String> = vec![
        "-png".into(),
        "-r".into(),
        PDF_DPI.to_string(),
        "-f".into(),
        page_arg.clone(),
        "-l".into(),
        page_arg,
        // Pages of a poster-sized PDF are scaled down to at most this many pixels a side.
        "-scale-to".into(),
        "6000".into(),
        "-singlefile".into(),
        pdf.display().to_string(),
    ];
    // pdftoppm writes the PNG to stdout when no output name is given.
    let image_limits = ParseLimits {
        max_text_bytes: 256 << 20,
        ..limits.clone()
    };
    let png = run_child(
        program,
        &args,
        &[],
        &[],
        &image_limits,
        "PDF page renderer (pdftoppm)",
    )?;
    image_text(&png, limits)
}

/// Tesseract's output with form feeds gone and runs of blank lines collapsed.
fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.replace('\u{c}', "\n").lines() {
        let line = line.trim_end();
        if line.is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
        } else {
            blank = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_clean_collapses_blank_lines() {
        assert_eq!("auto".parse::<OcrMode>(), Ok(OcrMode::Auto));
        assert_eq!("never".parse::<OcrMode>(), Ok(OcrMode::Never));
        assert!("sometimes".parse::<OcrMode>().is_err());
        assert_eq!(clean("a\n\n\n\nb  \n\u{c}"), "a\n\nb");
        assert_eq!(enabled(OcrMode::Never), Ok(false));
    }

    #[test]
    fn a_declared_giant_image_is_refused_before_ocr() {
        let png = fathom_testkit::docs::giant_png_header();
        assert_eq!(image_size(&png), Some((100_000, 100_000)));
        let err = image_text(&png, &ParseLimits::default()).unwrap_err();
        assert!(err.contains("megapixels"), "{err}");
    }
}
