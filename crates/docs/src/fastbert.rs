//! BERT's tokenization of text without most of `tokenizers`' general machinery: the same ids
//! and offsets, several times faster. Chunking tokenizes every document at least once, and for
//! a static-embedding model that is most of an ingest: `tokenizers` tracks every character's
//! alignment through its normalizer and asks a Unicode table whether each character (each ASCII
//! letter included) is punctuation.
//!
//! It applies to a `BertNormalizer` → `BertPreTokenizer` → `WordPiece` tokenizer without
//! truncation or padding, on text that contains no added token (`[SEP]`, `[MASK]`…, which
//! `tokenizers` matches in the raw text). The text is cut at ASCII whitespace, where BERT's
//! tokenization always splits and which nothing crosses. A piece of printable ASCII is lowercased
//! byte for byte, split around ASCII punctuation and put through the model's own WordPiece; any
//! other piece (accents, other scripts, control characters, Unicode spaces) goes to `tokenizers`
//! alone, its offsets shifted. Anything else returns `None`, and the caller uses `tokenizers`
//! for the whole text. The tests hold it to `tokenizers` on random text.

use tokenizers::models::wordpiece::WordPiece;
use tokenizers::{Model, ModelWrapper, NormalizerWrapper, PreTokenizerWrapper, Tokenizer};

/// Token ids, and each token's byte span in the text (empty unless asked for).
pub(crate) type Encoded = (Vec<u32>, Vec<(usize, usize)>);

/// Ids, and with `offsets` each token's byte span in `text`, as `tokenizer.encode(text, false)`
/// gives them; `None` where this fast path does not apply (see the module).
pub(crate) fn encode(tokenizer: &Tokenizer, text: &str, offsets: bool) -> Option<Encoded> {
    let lowercase = match tokenizer.get_normalizer()? {
        NormalizerWrapper::BertNormalizer(n) => n.lowercase,
        _ => return None,
    };
    if !matches!(
        tokenizer.get_pre_tokenizer()?,
        PreTokenizerWrapper::BertPreTokenizer(_)
    ) || tokenizer.get_truncation().is_some()
        || tokenizer.get_padding().is_some()
    {
        return None;
    }
    let ModelWrapper::WordPiece(model) = tokenizer.get_model() else {
        return None;
    };
    // Added tokens are matched in the text before (or, when normalized, after) normalization:
    // the general path handles text that holds one.
    let lower = text.to_ascii_lowercase();
    if tokenizer
        .get_added_vocabulary()
        .get_vocab()
        .keys()
        .any(|t| {
            !t.is_ascii()
                || (!t.is_empty()
                    && (text.contains(t.as_str()) || lower.contains(&t.to_ascii_lowercase())))
        })
    {
        return None;
    }
    let mut ids = Vec::with_capacity(text.len() / 4);
    let mut spans = Vec::with_capacity(if offsets { text.len() / 4 } else { 0 });
    let mut scratch = String::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if is_space(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !is_space(bytes[i]) {
            i += 1;
        }
        // Whitespace-separated pieces tokenize independently: every step of BERT's tokenization
        // is local to them (the normalizer maps each character on its own, the pre-tokenizer
        // splits at whitespace, WordPiece works word by word).
        let piece = &text[start..i];
        if piece.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            // ASCII lowercasing keeps every byte where it was: the piece's span in `lower`.
            let piece = if lowercase { &lower[start..i] } else { piece };
            let p = piece.as_bytes();
            let mut j = 0;
            while j < p.len() {
                let w = j;
                if p[j].is_ascii_punctuation() {
                    j += 1;
                } else {
                    while j < p.len() && !p[j].is_ascii_punctuation() {
                        j += 1;
                    }
                }
                let out = (&mut ids, offsets.then_some(&mut spans));
                wordpiece(model, &piece[w..j], start + w, out, &mut scratch)?;
            }
        } else if offsets {
            // Anything else in the piece (accents, other scripts, control characters, Unicode
            // spaces and punctuation): `tokenizers` itself, on the piece alone.
            let e = tokenizer.encode(piece, false).ok()?;
            ids.extend_from_slice(e.get_ids());
            spans.extend(e.get_offsets().iter().map(|&(a, b)| (start + a, start + b)));
        } else {
            ids.extend_from_slice(tokenizer.encode_fast(piece, false).ok()?.get_ids());
        }
    }
    Some((ids, spans))
}

/// WordPiece of one ASCII word, as `WordPiece::tokenize` gives it (greedy longest match from the
/// left, later pieces looked up with the continuing-subword prefix, the whole word unknown when a
/// piece has no match or the word is too long), without its allocations: `tokenize` builds a
/// `String` for every candidate piece and every token. Appends the ids and, where `out.1` is
/// given, the spans shifted by `at`. `scratch` holds the prefixed candidates. `None` where the
/// vocabulary has no unknown token (`tokenize` fails there too).
fn wordpiece(
    model: &WordPiece,
    word: &str,
    at: usize,
    (ids, mut spans): (&mut Vec<u32>, Option<&mut Vec<(usize, usize)>>),
    scratch: &mut String,
) -> Option<()> {
    let first = ids.len();
    let mut start = 0;
    if word.len() <= model.max_input_chars_per_word {
        while start < word.len() {
            let mut end = word.len();
            let id = loop {
                if start == end {
                    break None;
                }
                let id = if start == 0 {
                    model.token_to_id(&word[..end])
                } else {
                    scratch.clear();
                    scratch.push_str(&model.continuing_subword_prefix);
                    scratch.push_str(&word[start..end]);
                    model.token_to_id(scratch)
                };
                if id.is_some() {
                    break id;
                }
                // ASCII: every character is one byte.
                end -= 1;
            };
            let Some(id) = id else { break };
            ids.push(id);
            if let Some(spans) = spans.as_deref_mut() {
                spans.push((at + start, at + end));
            }
            start = end;
        }
        if start == word.len() {
            return Some(());
        }
    }
    // Too long, or a piece without a match: the whole word is the unknown token.
    ids.truncate(first);
    ids.push(model.token_to_id(&model.unk_token)?);
    if let Some(spans) = spans {
        spans.truncate(first);
        spans.push((at, at + word.len()));
    }
    Some(())
}

/// The whitespace BERT's normalizer keeps as a space and its pre-tokenizer splits at. (Form feed
/// and vertical tab are control characters there: deleted, not split at.)
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// MiniLM's tokenizer without truncation or padding (as the ingest holds it), loaded once.
    fn tokenizer() -> &'static Tokenizer {
        static TOKENIZER: std::sync::OnceLock<Tokenizer> = std::sync::OnceLock::new();
        TOKENIZER.get_or_init(|| {
            let mut t =
                Tokenizer::from_file(fathom_testkit::minilm().join("tokenizer.json")).unwrap();
            t.with_truncation(None).unwrap();
            t.with_padding(None);
            t
        })
    }

    fn reference(t: &Tokenizer, text: &str) -> (Vec<u32>, Vec<(usize, usize)>) {
        let e = t.encode(text, false).unwrap();
        (e.get_ids().to_vec(), e.get_offsets().to_vec())
    }

    #[test]
    fn plain_text_takes_the_fast_path_and_equals_tokenizers() {
        let t = tokenizer();
        for text in [
            "",
            "Hello, World! It's 3.14 -- e.g. (see fig. 2a) #tag @user a_b",
            "  leading\tand\r\ntrailing   ",
            "unaffable antidisestablishmentarianism hyper-parameter",
            &"x".repeat(150),
            // WordPiece's word-length cap (100 characters) on either side.
            &"ab".repeat(50),
            &format!("{}c and {}", "ab".repeat(50), "zq".repeat(49)),
            "Quoted \"text\" [with] {braces} and ~tilde~ `code` 100% $5 a+b=c <tag> x|y ^z",
        ] {
            let fast = encode(t, text, true).expect("plain ASCII takes the fast path");
            assert_eq!(fast, reference(t, text), "{text:?}");
        }
    }

    #[test]
    fn other_characters_go_to_tokenizers_piece_by_piece() {
        let t = tokenizer();
        for text in [
            "café au lait",
            "a\u{7}bell and form\x0cfeed, tab\x0bbed",
            "naïve résumé – “quotes” ≥ 5 µm β-cells 東京タワー x\u{a0}y ｆｕｌｌ！",
            "\u{301}accent first, then\u{fffd}replacement \u{0}nul",
        ] {
            let fast = encode(t, text, true).expect("pieces other than ASCII go to tokenizers");
            assert_eq!(fast, reference(t, text), "{text:?}");
        }
    }

    #[test]
    fn added_tokens_and_truncation_leave_the_fast_path() {
        let t = tokenizer();
        for text in ["end [SEP] of", "the [mask] token"] {
            assert!(encode(t, text, true).is_none(), "{text:?}");
        }
        let mut truncating = tokenizer().clone();
        truncating
            .with_truncation(Some(tokenizers::TruncationParams::default()))
            .unwrap();
        assert!(encode(&truncating, "hello", false).is_none());
    }

    /// The fast path takes `text` (unless it spells out an added token, which needs a `[`) and
    /// gives `tokenizers`' ids and offsets.
    fn equals_tokenizers(text: &str) -> Result<(), TestCaseError> {
        let t = tokenizer();
        match encode(t, text, true) {
            Some(fast) => prop_assert_eq!(fast, reference(t, text)),
            None => prop_assert!(text.contains('['), "{text:?} left the fast path"),
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn random_ascii_equals_tokenizers(text in "[ -~\t\n\r]{0,200}") {
            equals_tokenizers(&text)?;
        }

        #[test]
        fn random_unicode_equals_tokenizers(text in "[ -~\t\n\r\x00-\x1f\x7f\u{a0}\u{301}\u{e9}\u{c9}\u{3b2}\u{2013}\u{201c}\u{6771}\u{ff01}\u{fffd}\u{2029}]{0,120}") {
            equals_tokenizers(&text)?;
        }

        #[test]
        fn random_words_equal_tokenizers(words in proptest::collection::vec("[a-zA-Z0-9]{1,12}|[!-/:-@\\[-`{-~]|[ \t\n]{1,3}", 0..80)) {
            equals_tokenizers(&words.concat())?;
        }
    }
}
