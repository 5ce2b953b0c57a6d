//! RTF: the text a reader sees, not the control words. A small state machine of our own (no
//! RTF crate: the candidates build a full document model, ship JavaScript bindings by default,
//! and do not bound nesting). Handled: groups, `\par`/`\line`/`\sect`/`\page` as line breaks,
//! `\tab`, `\cell`/`\row` tables, `\'hh` bytes in the document's code page (`\ansicpgN`,
//! windows-1252 by default; double-byte code pages too), `\uN` with the `\ucN` fallback skip,
//! `\bin` data, symbol words (`\emdash`, `\lquote`, …), and skipped destinations (`{\*\…}`,
//! font/colour/style tables, info, pictures, objects, headers and footers, field instructions).
//! Group nesting is bounded by [`Budget::max_depth`].

use encoding_rs::Encoding;

use super::{text_over, Budget, Builder, ReadResult};

/// Reads an .rtf document as one unlocated section.
pub fn read(bytes: &[u8], budget: &Budget) -> ReadResult {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let body = &bytes[start..];
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if !body.starts_with(b"{\\rtf") {
        return Err("not a readable RTF document: no {\\rtf header".to_string());
    }
    let text = rtf_text(body, budget)?;
    let mut b = Builder::new(budget);
    b.push(None, text)?;
    b.finish()
}

#[derive(Debug, Clone, Copy)]
struct Group {
    skip: bool,
    uc: usize,
}

#[derive(Debug)]
struct State<'b> {
    out: String,
    /// `\'hh` bytes waiting to be decoded together (double-byte code pages).
    bytes: Vec<u8>,
    encoding: &'static Encoding,
    /// Fallback characters still to skip after a `\uN`.
    to_skip: usize,
    /// A high surrogate from `\uN`, waiting for its low half.
    high: Option<u16>,
    budget: &'b Budget,
}

impl State<'_> {
    fn flush_bytes(&mut self) -> Result<(), String> {
        if self.bytes.is_empty() {
            return Ok(());
        }
        let (text, _) = self.encoding.decode_without_bom_handling(&self.bytes);
        let text = text.into_owned();
        self.bytes.clear();
        self.push_str(&text)
    }

    fn push_str(&mut self, s: &str) -> Result<(), String> {
        if self.out.len() + s.len() > self.budget.max_text_bytes {
            return Err(text_over(self.budget));
        }
        self.out.push_str(s);
        Ok(())
    }

    fn push(&mut self, c: char) -> Result<(), String> {
        let mut buf = [0u8; 4];
        self.push_str(c.encode_utf8(&mut buf))
    }

    /// Text from the document (not from a skipped group): the `\uN` fallback eats it first.
    fn text(&mut self, c: char) -> Result<(), String> {
        if self.to_skip > 0 {
            self.to_skip -= 1;
            return Ok(());
        }
        self.flush_bytes()?;
        self.push(c)
    }
}

/// Destinations whose content is not document text.
fn skipped_destination(word: &[u8]) -> bool {
    matches!(
        word,
        b"fonttbl"
            | b"colortbl"
            | b"stylesheet"
            | b"info"
            | b"pict"
            | b"object"
            | b"objdata"
            | b"header"
            | b"headerl"
            | b"headerr"
            | b"headerf"
            | b"footer"
            | b"footerl"
            | b"footerr"
            | b"footerf"
            | b"fldinst"
            | b"themedata"
            | b"colorschememapping"
            | b"datastore"
            | b"latentstyles"
            | b"listtable"
            | b"listoverridetable"
            | b"revtbl"
            | b"rsidtbl"
            | b"filetbl"
            | b"generator"
            | b"xmlnstbl"
            | b"mmathPr"
            | b"pgdsctbl"
            | b"nonshppict"
            | b"shpinst"
            | b"template"
            | b"docvar"
            | b"userprops"
            | b"bkmkstart"
            | b"bkmkend"
            | b"listtext"
            | b"pntext"
            | b"pntxta"
            | b"pntxtb"
            | b"xe"
            | b"tc"
    )
}

fn rtf_text(input: &[u8], budget: &Budget) -> Result<String, String> {
    let mut st = State {
        out: String::new(),
        bytes: Vec::new(),
        encoding: encoding_rs::WINDOWS_1252,
        to_skip: 0,
        high: None,
        budget,
    };
    let mut stack: Vec<Group> = Vec::new();
    let mut cur = Group { skip: false, uc: 1 };
    let mut i = 0usize;
    while i < input.len() {
        let c = input[i];
        match c {
            b'{' => {
                st.flush_bytes()?;
                stack.push(cur);
                if stack.len() > budget.max_depth {
                    return Err(format!(
                        "over the parse budget: RTF groups nested more than {} deep",
                        budget.max_depth
                    ));
                }
                i += 1;
            }
            b'}' => {
                st.flush_bytes()?;
                st.to_skip = 0;
                if let Some(g) = stack.pop() {
                    cur = g;
                }
                i += 1;
                if stack.is_empty() {
                    // The document's outer group ended: anything after it is not RTF.
                    break;
                }
            }
            b'\r' | b'\n' => i += 1,
            b'\\' => {
                i += 1;
                let Some(&next) = input.get(i) else { break };
                if next.is_ascii_alphabetic() {
                    let w0 = i;
                    while i < input.len() && input[i].is_ascii_alphabetic() && i - w0 < 32 {
                        i += 1;
                    }
                    let word = &input[w0..i];
                    let mut param: Option<i64> = None;
                    let p0 = i;
                    if i < input.len() && (input[i] == b'-' || input[i].is_ascii_digit()) {
                        i += 1;
                        while i < input.len() && input[i].is_ascii_digit() && i - p0 < 11 {
                            i += 1;
                        }
                        param = std::str::from_utf8(&input[p0..i])
                            .ok()
                            .and_then(|s| s.parse().ok());
                    }
                    if i < input.len() && input[i] == b' ' {
                        i += 1;
                    }
                    if word == b"bin" {
                        let n = usize::try_from(param.unwrap_or(0).max(0)).unwrap_or(usize::MAX);
                        i = i.saturating_add(n).min(input.len());
                        continue;
                    }
                    control_word(&mut st, &mut cur, word, param)?;
                } else {
                    i += 1;
                    match next {
                        b'\'' => {
                            let hex = input.get(i..i + 2).and_then(|h| {
                                std::str::from_utf8(h)
                                    .ok()
                                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                            });
                            if let Some(byte) = hex {
                                i += 2;
                                if !cur.skip {
                                    if st.to_skip > 0 {
                                        st.to_skip -= 1;
                                    } else {
                                        st.bytes.push(byte);
                                    }
                                }
                            }
                        }
                        b'*' => cur.skip = true,
                        b'\\' | b'{' | b'}' if !cur.skip => st.text(next as char)?,
                        b'~' if !cur.skip => st.text('\u{a0}')?,
                        b'_' if !cur.skip => st.text('\u{2011}')?,
                        b'\r' | b'\n' if !cur.skip => {
                            st.flush_bytes()?;
                            st.push('\n')?;
                        }
                        _ => {}
                    }
                }
            }
            _ => {
                i += 1;
                if cur.skip {
                    continue;
                }
                if st.to_skip > 0 {
                    st.to_skip -= 1;
                    continue;
                }
                if c < 0x80 {
                    st.text(c as char)?;
                } else {
                    st.bytes.push(c);
                }
            }
        }
    }
    st.flush_bytes()?;
    Ok(st.out)
}

fn control_word(
    st: &mut State<'_>,
    cur: &mut Group,
    word: &[u8],
    param: Option<i64>,
) -> Result<(), String> {
    if skipped_destination(word) {
        cur.skip = true;
        return Ok(());
    }
    match word {
        b"ansicpg" => {
            let cp = param.and_then(|p| u16::try_from(p).ok());
            if let Some(enc) = cp.and_then(codepage::to_encoding) {
                st.encoding = enc;
            }
            return Ok(());
        }
        b"uc" => {
            cur.uc = usize::try_from(param.unwrap_or(1)).unwrap_or(1).min(16);
            return Ok(());
        }
        _ => {}
    }
    if cur.skip {
        return Ok(());
    }
    let sym = match word {
        b"par" | b"line" | b"sect" | b"page" | b"row" => Some("\n"),
        b"tab" => Some("\t"),
        b"cell" | b"nestcell" => Some(" | "),
        b"emdash" => Some("\u{2014}"),
        b"endash" => Some("\u{2013}"),
        b"emspace" | b"enspace" | b"qmspace" => Some(" "),
        b"bullet" => Some("\u{2022}"),
        b"lquote" => Some("\u{2018}"),
        b"rquote" => Some("\u{2019}"),
        b"ldblquote" => Some("\u{201c}"),
        b"rdblquote" => Some("\u{201d}"),
        _ => None,
    };
    if let Some(s) = sym {
        st.flush_bytes()?;
        if word == b"row" && st.out.ends_with(" | ") {
            st.out.truncate(st.out.len() - 3);
        }
        st.to_skip = 0;
        return st.push_str(s);
    }
    if word == b"u" {
        st.flush_bytes()?;
        let mut n = param.unwrap_or(0);
        if n < 0 {
            n += 65_536;
        }
        let unit = u16::try_from(n).unwrap_or(0xFFFD);
        let c = match (st.high.take(), unit) {
            (_, 0xD800..=0xDBFF) => {
                st.high = Some(unit);
                None
            }
            (Some(h), 0xDC00..=0xDFFF) => char::decode_utf16([h, unit]).next().and_then(Result::ok),
            (_, 0xDC00..=0xDFFF) => Some('\u{FFFD}'),
            (_, u) => char::from_u32(u32::from(u)),
        };
        if let Some(c) = c {
            st.push(c)?;
        }
        st.to_skip = cur.uc;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const SAMPLE: &str = r#"{\rtf1\ansi\ansicpg1252\deff0\nouicompat{\fonttbl{\f0\fnil\fcharset0 Calibri;}{\f1\fswiss Arial;}}
{\colortbl ;\red255\green0\blue0;}
{\*\generator Riched20 10.0.19041}{\info{\title Secret title}{\author Someone}}\viewkind4\uc1
{\header \pard Running header\par}
\pard\sa200\sl276\slmult1\f0\fs22\lang9 Hello, \b world\b0 !\par
Caf\'e9 \'93quoted\'94\tab tabbed\line next line\par
Unicode: \u8364? euro, \u-3913? dingbat, \uc2\u20320\'c4\'e3 ni\par
{\*\fldinst HYPERLINK "http://example.com"}{\fldrslt link text}\par
\trowd\cellx1000\cellx2000 A\cell B\cell\row
Braces \{ and \} and backslash \\.\par
{\pict\pngblip 89504e470d0a1a0a}\emdash end\par
}"#;

    #[test]
    fn reads_text_not_control_words() {
        let doc = read(SAMPLE.as_bytes(), &Budget::default()).unwrap();
        assert_eq!(
            doc.joined(),
            "Hello, world!\n\
             Café \u{201c}quoted\u{201d}\ttabbed\n\
             next line\n\
             Unicode: € euro, \u{f0b7} dingbat, \u{4f60} ni\n\
             link text\n\
             A | B\n\
             Braces { and } and backslash \\.\n\
             \u{2014}end"
        );
    }

    #[test]
    fn double_byte_code_page() {
        let rtf = br"{\rtf1\ansi\ansicpg932 \'82\'a0\'82\'a2\par}";
        assert_eq!(
            read(rtf, &Budget::default()).unwrap().joined(),
            "\u{3042}\u{3044}"
        );
    }

    #[test]
    fn surrogate_pairs() {
        let rtf = br"{\rtf1 \u-10179?\u-8704?!}";
        assert_eq!(
            read(rtf, &Budget::default()).unwrap().joined(),
            "\u{1F600}!"
        );
    }

    #[test]
    fn deep_groups_are_refused() {
        let rtf = format!("{{\\rtf1 {}x{}}}", "{".repeat(100_000), "}".repeat(100_000));
        let err = read(rtf.as_bytes(), &Budget::default()).unwrap_err();
        assert!(err.contains("nested more than 256"), "{err}");
    }

    #[test]
    fn text_budget() {
        let rtf = format!("{{\\rtf1 {}}}", "abcdefghij".repeat(1000));
        let budget = Budget {
            max_text_bytes: 100,
            ..Budget::default()
        };
        let err = read(rtf.as_bytes(), &budget).unwrap_err();
        assert!(err.contains("more than 100 bytes of text"), "{err}");
    }

    #[test]
    fn not_rtf() {
        let err = read(b"hello", &Budget::default()).unwrap_err();
        assert!(err.starts_with("not a readable RTF document"), "{err}");
    }
}
