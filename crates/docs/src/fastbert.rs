//! BERT's tokenization of plain ASCII text without `tokenizers`' general machinery: the same ids
//! and offsets, several times faster. Chunking tokenizes every document at least once, and for
//! a static-embedding model that is most of an ingest: `tokenizers` tracks every character's
//! alignment through its normalizer and asks a Unicode table whether each character (each ASCII
//! letter included) is punctuation.
//!
//! It applies only where it is exact: a `BertNormalizer` → `BertPreTokenizer` → `WordPiece`
//! tokenizer without truncation or padding, and text that is all ASCII, has no control
//! characters other than tab, line feed and carriage return (which the normalizer would delete,
//! shifting offsets), and contains no added token (`[SEP]`, `[MASK]`…, which `tokenizers` matches
//! in the raw text). There, normalization is at most lowercasing one byte for one byte, the
//! pre-tokenizer splits at ASCII whitespace (dropped) and ASCII punctuation (kept alone), and
//! each word goes through the model's own WordPiece. Anything else returns `None`, and the
//! caller uses `tokenizers`. The tests hold it to `tokenizers` on random text.

use tokenizers::{Model, ModelWrapper, NormalizerWrapper, PreTokenizerWrapper, Token, Tokenizer};

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
    let bytes = text.as_bytes();
    if !bytes
        .iter()
        .all(|&b| b.is_ascii() && (b >= 0x20 || matches!(b, b'\t' | b'\n' | b'\r')) && b != 0x7f)
    {
        return None;
    }
    let normalized = if lowercase {
        std::borrow::Cow::Owned(text.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(text)
    };
    // Added tokens are matched in the text before (or, when normalized, after) normalization:
    // the general path handles text that holds one.
    let lower = text.to_ascii_lowercase();
    if tokenizer
        .get_added_vocabulary()
        .get_vocab()
        .keys()
        .any(|t| {
            !t.is_empty() && (text.contains(t.as_str()) || lower.contains(&t.to_ascii_lowercase()))
        })
    {
        return None;
    }
    let mut ids = Vec::with_capacity(text.len() / 4);
    let mut spans = Vec::with_capacity(if offsets { text.len() / 4 } else { 0 });
    let mut push = |word_start: usize, tokens: Vec<Token>| {
        for t in tokens {
            ids.push(t.id);
            if offsets {
                spans.push((word_start + t.offsets.0, word_start + t.offsets.1));
            }
        }
    };
    let n = normalized.as_bytes();
    let mut i = 0;
    while i < n.len() {
        let b = n[i];
        if b.is_ascii_whitespace() {
            i += 1;
        } else if b.is_ascii_punctuation() {
            push(i, model.tokenize(&normalized[i..i + 1]).ok()?);
            i += 1;
        } else {
            let start = i;
            while i < n.len() && !n[i].is_ascii_whitespace() && !n[i].is_ascii_punctuation() {
                i += 1;
            }
            push(start, model.tokenize(&normalized[start..i]).ok()?);
        }
    }
    Some((ids, spans))
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
            "Quoted \"text\" [with] {braces} and ~tilde~ `code` 100% $5 a+b=c <tag> x|y ^z",
        ] {
            let fast = encode(t, text, true).expect("plain ASCII takes the fast path");
            assert_eq!(fast, reference(t, text), "{text:?}");
        }
    }

    #[test]
    fn what_the_fast_path_cannot_do_exactly_goes_to_tokenizers() {
        let t = tokenizer();
        for text in [
            "café au lait",
            "a\u{7}bell",
            "end [SEP] of",
            "the [mask] token",
            "form\x0cfeed",
        ] {
            assert!(encode(t, text, true).is_none(), "{text:?}");
        }
        let mut truncating = tokenizer().clone();
        truncating
            .with_truncation(Some(tokenizers::TruncationParams::default()))
            .unwrap();
        assert!(encode(&truncating, "hello", false).is_none());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn random_ascii_equals_tokenizers(text in "[ -~\t\n\r]{0,200}") {
            let t = tokenizer();
            match encode(t, &text, true) {
                Some(fast) => prop_assert_eq!(fast, reference(t, &text)),
                None => prop_assert!(text.contains('[')),
            }
        }

        #[test]
        fn control_characters_leave_the_fast_path(text in "[ -~]{0,50}[\x00-\x08\x0b\x0c\x0e-\x1f\x7f][ -~]{0,50}") {
            prop_assert!(encode(tokenizer(), &text, true).is_none());
        }

        #[test]
        fn random_words_equal_tokenizers(words in proptest::collection::vec("[a-zA-Z0-9]{1,12}|[!-/:-@\\[-`{-~]|[ \t\n]{1,3}", 0..80)) {
            let t = tokenizer();
            let text = words.concat();
            match encode(t, &text, true) {
                Some(fast) => prop_assert_eq!(fast, reference(t, &text)),
                // Only an added token spelled out by chance ("[" "SEP" "]") leaves the fast path.
                None => prop_assert!(text.contains('[')),
            }
        }
    }
}
