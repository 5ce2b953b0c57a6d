//! Mail: .eml (one message) and .mbox (many), through mail-parser. Each message is a
//! [`Location::Message`] section: "Subject: …", "From: …", "Date: …", a blank line, and the
//! decoded body (text/plain parts, else text/html as text; attachments left out).
//!
//! An mbox is split on "From " at the start of a line (mboxo/mboxrd), in one pass over the
//! bytes without copying them; ">From " quoting is undone per message (mboxrd).

use std::borrow::Cow;

use mail_parser::{Address, MessageParser};

use super::{Budget, Builder, Location, ReadResult};

/// Reads an .eml: one message.
pub fn read_eml(bytes: &[u8], budget: &Budget) -> ReadResult {
    let mut b = Builder::new(budget);
    let parser = MessageParser::default();
    let Some(message) = parser.parse(bytes) else {
        return Err("not a readable email message".to_string());
    };
    let (subject, text) = message_text(&message);
    b.push(
        Some(Location::Message {
            message: 1,
            subject,
        }),
        text,
    )?;
    b.finish()
}

/// Reads an .mbox: messages in order, numbered from 1.
pub fn read_mbox(bytes: &[u8], budget: &Budget) -> ReadResult {
    let mut b = Builder::new(budget);
    let parser = MessageParser::default();
    let mut number = 0u32;
    for raw in split_mbox(bytes) {
        number = number.saturating_add(1);
        if number as usize > budget.max_sections {
            return Err(format!(
                "over the parse budget: more than {} sections",
                budget.max_sections
            ));
        }
        let raw = unquote_from(raw);
        let Some(message) = parser.parse(raw.as_ref()) else {
            continue;
        };
        let (subject, text) = message_text(&message);
        b.push(
            Some(Location::Message {
                message: number,
                subject,
            }),
            text,
        )?;
    }
    if number == 0 && !bytes.iter().all(u8::is_ascii_whitespace) {
        return Err("not a readable mbox mailbox: no messages".to_string());
    }
    b.finish()
}

/// The messages of an mbox: the bytes after each "From " line up to the next one. Text before
/// the first "From " line, if any, is a message too (an .eml saved as .mbox).
pub(crate) fn split_mbox(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut pos = 0usize;
    let mut first = true;
    std::iter::from_fn(move || loop {
        if pos >= bytes.len() {
            return None;
        }
        let at_from = bytes[pos..].starts_with(b"From ");
        let body_start = if at_from {
            match memchr_nl(&bytes[pos..]) {
                Some(n) => pos + n + 1,
                None => bytes.len(),
            }
        } else {
            pos
        };
        // The next "From " at a line start.
        let rest = &bytes[body_start..];
        let end = if rest.starts_with(b"From ") {
            body_start
        } else {
            find_from_line(rest).map_or(bytes.len(), |n| body_start + n)
        };
        let was_first = first;
        first = false;
        pos = end;
        let message = &bytes[body_start..end];
        if !at_from && was_first && message.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        return Some(message);
    })
}

fn memchr_nl(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

/// The offset of the first "From " at a line start in `b` (just after a '\n'), if any.
fn find_from_line(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(n) = memchr_nl(&b[i..]) {
        let line = i + n + 1;
        if b[line..].starts_with(b"From ") {
            return Some(line);
        }
        i = line;
    }
    None
}

/// Undoes mboxrd quoting: a line ">From ", ">>From ", … loses one '>'.
fn unquote_from(raw: &[u8]) -> Cow<'_, [u8]> {
    let quoted = |line: &[u8]| {
        let n = line.iter().take_while(|&&c| c == b'>').count();
        n > 0 && line[n..].starts_with(b"From ")
    };
    if !raw.split(|&c| c == b'\n').any(quoted) {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    for (i, line) in raw.split(|&c| c == b'\n').enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        if quoted(line) {
            out.extend_from_slice(&line[1..]);
        } else {
            out.extend_from_slice(line);
        }
    }
    Cow::Owned(out)
}

/// A message's subject and its text: headers, a blank line, the body.
fn message_text(m: &mail_parser::Message<'_>) -> (Option<String>, String) {
    let subject = m
        .subject()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let mut text = String::new();
    if let Some(s) = &subject {
        text.push_str("Subject: ");
        text.push_str(s);
        text.push('\n');
    }
    if let Some(from) = m.from().map(addresses).filter(|f| !f.is_empty()) {
        text.push_str("From: ");
        text.push_str(&from);
        text.push('\n');
    }
    if let Some(date) = m.header_raw("Date") {
        let date = date.split_whitespace().collect::<Vec<_>>().join(" ");
        if !date.is_empty() {
            text.push_str("Date: ");
            text.push_str(&date);
            text.push('\n');
        }
    }
    let mut body = String::new();
    for i in 0..m.text_body_count() {
        if let Some(part) = m.body_text(i) {
            let part = part.trim();
            if !part.is_empty() {
                if !body.is_empty() {
                    body.push_str("\n\n");
                }
                body.push_str(part);
            }
        }
    }
    if !body.is_empty() {
        text.push('\n');
        text.push_str(&body.replace("\r\n", "\n"));
    }
    (subject, text)
}

/// "Name <address>, other@example.com".
fn addresses(a: &Address<'_>) -> String {
    a.iter()
        .map(|addr| match (addr.name(), addr.address()) {
            (Some(n), Some(e)) => format!("{n} <{e}>"),
            (Some(n), None) => n.to_string(),
            (None, Some(e)) => e.to_string(),
            (None, None) => String::new(),
        })
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const SAMPLE_EML: &str = "From: \"Ann Example\" <ann@example.com>\r\n\
To: bob@example.com\r\n\
Subject: =?UTF-8?Q?Caf=C3=A9_plans?=\r\n\
Date: Tue, 4 Mar 2025 10:00:00 +0000\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"outer\"\r\n\
\r\n\
--outer\r\n\
Content-Type: multipart/alternative; boundary=\"alt\"\r\n\
\r\n\
--alt\r\n\
Content-Type: text/plain; charset=iso-8859-1\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Let's meet at the caf=E9 at 10. =\r\n\
See you.\r\n\
--alt\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<p>Let's meet at the <b>caf\u{e9}</b>.</p>\r\n\
--alt--\r\n\
--outer\r\n\
Content-Type: application/pdf; name=\"agenda.pdf\"\r\n\
Content-Disposition: attachment; filename=\"agenda.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
JVBERi0xLjQKJcfsj6IKNSAwIG9iago=\r\n\
--outer--\r\n";

    #[test]
    fn reads_eml() {
        let doc = read_eml(SAMPLE_EML.as_bytes(), &Budget::default()).unwrap();
        assert_eq!(doc.sections.len(), 1);
        assert_eq!(
            doc.sections[0].location,
            Some(Location::Message {
                message: 1,
                subject: Some("Café plans".into())
            })
        );
        assert_eq!(
            doc.sections[0].text,
            "Subject: Café plans\n\
             From: Ann Example <ann@example.com>\n\
             Date: Tue, 4 Mar 2025 10:00:00 +0000\n\n\
             Let's meet at the café at 10. See you."
        );
    }

    #[test]
    fn html_only_and_base64() {
        let eml = "Subject: Hi\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nPGgxPkhlbGxvPC9oMT48cD5Xb3JsZDwvcD4=\r\n";
        let doc = read_eml(eml.as_bytes(), &Budget::default()).unwrap();
        let text = &doc.sections[0].text;
        assert!(text.starts_with("Subject: Hi\n\n"), "{text}");
        assert!(
            text.contains("Hello") && text.contains("World") && !text.contains('<'),
            "{text}"
        );
    }

    pub(crate) fn sample_mbox() -> String {
        concat!(
            "From ann@example.com Tue Mar  4 10:00:00 2025\n",
            "From: ann@example.com\nSubject: First\n\nHello.\n>From the archive.\n>>From deeper.\n\n",
            "From bob@example.com Tue Mar  4 11:00:00 2025\n",
            "From: Bob <bob@example.com>\nSubject: Second\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\nU2Vjb25kIGJvZHku\n",
        )
        .to_string()
    }

    #[test]
    fn reads_mbox() {
        let doc = read_mbox(sample_mbox().as_bytes(), &Budget::default()).unwrap();
        let got = super::super::testutil::located(&doc);
        assert_eq!(
            got,
            vec![
                (
                    Location::Message {
                        message: 1,
                        subject: Some("First".into())
                    },
                    "Subject: First\nFrom: ann@example.com\n\nHello.\nFrom the archive.\n>From deeper."
                ),
                (
                    Location::Message {
                        message: 2,
                        subject: Some("Second".into())
                    },
                    "Subject: Second\nFrom: Bob <bob@example.com>\n\nSecond body."
                ),
            ]
        );
    }

    fn tiny_mbox(n: usize) -> Vec<u8> {
        let mut s = String::with_capacity(n * 80);
        for i in 0..n {
            s.push_str(&format!(
                "From x@example.com Thu Jan  1 00:00:00 2025\nSubject: m{i}\n\nbody {i}\n\n"
            ));
        }
        s.into_bytes()
    }

    #[test]
    fn hundred_thousand_messages_split_linearly() {
        let bytes = tiny_mbox(100_000);
        let t = std::time::Instant::now();
        assert_eq!(split_mbox(&bytes).count(), 100_000);
        assert!(t.elapsed().as_millis() < 2000, "{:?}", t.elapsed());
        let budget = Budget {
            max_sections: 1000,
            ..Budget::default()
        };
        let t = std::time::Instant::now();
        let err = read_mbox(&bytes, &budget).unwrap_err();
        assert!(err.contains("more than 1000 sections"), "{err}");
        assert!(t.elapsed().as_millis() < 2000, "{:?}", t.elapsed());
    }

    #[test]
    fn hundred_thousand_messages_parse() {
        let bytes = tiny_mbox(100_000);
        let t = std::time::Instant::now();
        let doc = read_mbox(&bytes, &Budget::default()).unwrap();
        eprintln!("100,000 messages read in {:?}", t.elapsed());
        assert_eq!(doc.sections.len(), 100_000);
        assert_eq!(doc.sections[99_999].text, "Subject: m99999\n\nbody 99999");
    }

    #[test]
    fn deep_mime_nesting_does_not_overflow() {
        let mut eml = String::from("Subject: deep\r\n");
        for i in 0..100_000 {
            eml.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n"
            ));
        }
        eml.push_str("Content-Type: text/plain\r\n\r\ninner\r\n");
        let t = std::time::Instant::now();
        let r = read_eml(eml.as_bytes(), &Budget::default());
        assert!(t.elapsed().as_secs() < 10, "{:?}", t.elapsed());
        if let Ok(doc) = r {
            assert!(doc.text_len() < eml.len());
        }
    }

    #[test]
    fn not_mail() {
        assert!(read_mbox(b"", &Budget::default())
            .unwrap()
            .sections
            .is_empty());
    }
}
