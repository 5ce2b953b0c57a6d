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

use rustc_hash::FxHashMap;
use tokenizers::{Model, ModelWrapper, NormalizerWrapper, PreTokenizerWrapper, Tokenizer};

/// Token ids, and each token's byte span in the text (empty unless asked for).
pub(crate) type Encoded = (Vec<u32>, Vec<(usize, usize)>);

/// Where [`FastBert::wordpiece`] appends: the ids, and the spans when they are asked for.
struct Out<'a> {
    ids: &'a mut Vec<u32>,
    spans: Option<&'a mut Vec<(usize, usize)>>,
}

/// What the fast path needs of one tokenizer, prepared once (see [`FastBert::new`]).
#[derive(Debug, Clone)]
pub(crate) struct FastBert {
    lowercase: bool,
    /// Each added token and its lowercase form: a text holding one takes the general path.
    added: Vec<(String, String)>,
    /// WordPiece's vocabulary, and its pieces that follow the continuing-subword prefix keyed
    /// without it (so a candidate is looked up without building the prefixed string).
    vocab: FxHashMap<Box<str>, u32>,
    continuing: FxHashMap<Box<str>, u32>,
    /// The longest key (bytes) of each map: longer candidates cannot match and are not tried.
    longest: usize,
    longest_continuing: usize,
    unk: Option<u32>,
    max_word_chars: usize,
}

impl FastBert {
    /// The fast path for `tokenizer`, or `None` where it does not apply: other than a
    /// `BertNormalizer` → `BertPreTokenizer` → `WordPiece` tokenizer, truncation or padding set, or
    /// an added token outside ASCII.
    pub(crate) fn new(tokenizer: &Tokenizer) -> Option<Self> {
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
        let mut added = Vec::new();
        for t in tokenizer.get_added_vocabulary().get_vocab().keys() {
            if !t.is_ascii() {
                return None;
            }
            if !t.is_empty() {
                added.push((t.clone(), t.to_ascii_lowercase()));
            }
        }
        let prefix = model.continuing_subword_prefix.as_str();
        let mut vocab = FxHashMap::default();
        let mut continuing = FxHashMap::default();
        for (token, id) in model.get_vocab() {
            if let Some(rest) = token.strip_prefix(prefix).filter(|_| !prefix.is_empty()) {
                continuing.insert(rest.into(), id);
            }
            vocab.insert(token.into_boxed_str(), id);
        }
        if prefix.is_empty() {
            continuing = vocab.clone();
        }
        let longest_key = |m: &FxHashMap<Box<str>, u32>| m.keys().map(|k| k.len()).max();
        Some(Self {
            lowercase,
            added,
            longest: longest_key(&vocab).unwrap_or(0),
            longest_continuing: longest_key(&continuing).unwrap_or(0),
            vocab,
            continuing,
            unk: model.token_to_id(&model.unk_token),
            max_word_chars: model.max_input_chars_per_word,
        })
    }

    /// Ids, and with `offsets` each token's byte span in `text`, as `tokenizer.encode(text,
    /// false)` gives them, for the `tokenizer` this was prepared from; `None` where the text needs
    /// the general path (it holds an added token).
    pub(crate) fn encode(
        &self,
        tokenizer: &Tokenizer,
        text: &str,
        offsets: bool,
    ) -> Option<Encoded> {
        // Added tokens are matched in the text before (or, when normalized, after)
        // normalization: the general path handles text that holds one.
        let lower = text.to_ascii_lowercase();
        if self
            .added
            .iter()
            .any(|(t, l)| text.contains(t.as_str()) || lower.contains(l.as_str()))
        {
            return None;
        }
        let mut ids = Vec::with_capacity(text.len() / 4);
        let mut spans = Vec::with_capacity(if offsets { text.len() / 4 } else { 0 });
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
            // Whitespace-separated pieces tokenize independently: every step of BERT's
            // tokenization is local to them (the normalizer maps each character on its own, the
            // pre-tokenizer splits at whitespace, WordPiece works word by word).
            let piece = &text[start..i];
            if piece.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
                // ASCII lowercasing keeps every byte where it was: the piece's span in `lower`.
                let piece = if self.lowercase {
                    &lower[start..i]
                } else {
                    piece
                };
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
                    let out = Out {
                        ids: &mut ids,
                        spans: offsets.then_some(&mut spans),
                    };
                    self.wordpiece(&piece[w..j], start + w, out)?;
                }
            } else if offsets {
                // Anything else in the piece (accents, other scripts, control characters,
                // Unicode spaces and punctuation): `tokenizers` itself, on the piece alone.
                let e = tokenizer.encode(piece, false).ok()?;
                ids.extend_from_slice(e.get_ids());
                spans.extend(e.get_offsets().iter().map(|&(a, b)| (start + a, start + b)));
            } else {
                ids.extend_from_slice(tokenizer.encode_fast(piece, false).ok()?.get_ids());
            }
        }
        Some((ids, spans))
    }

    /// WordPiece of one ASCII word, as `WordPiece::tokenize` gives it: greedy longest match from
    /// the left, later pieces looked up with the continuing-subword prefix, the whole word
    /// unknown when a piece has no match or the word is too long. Without its allocations
    /// (`tokenize` builds a `String` for every candidate and every token) and without trying
    /// candidates longer than the vocabulary's longest piece (a word of 100 letters that only
    /// single letters match cost `tokenize` 5,050 lookups; here at most 100 × the longest).
    /// Appends to `out`, spans shifted by `at`. `None` where the vocabulary has no unknown token
    /// (`tokenize` fails there too).
    fn wordpiece(&self, word: &str, at: usize, out: Out<'_>) -> Option<()> {
        let Out { ids, mut spans } = out;
        let first = ids.len();
        let mut start = 0;
        if word.len() <= self.max_word_chars {
            while start < word.len() {
                let (map, longest) = if start == 0 {
                    (&self.vocab, self.longest)
                } else {
                    (&self.continuing, self.longest_continuing)
                };
                let mut end = word.len().min(start + longest);
                let id = loop {
                    if end <= start {
                        break None;
                    }
                    if let Some(&id) = map.get(&word[start..end]) {
                        break Some(id);
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
        ids.push(self.unk?);
        if let Some(spans) = spans {
            spans.truncate(first);
            spans.push((at, at + word.len()));
        }
        Some(())
    }
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

    /// The fast path prepared for [`tokenizer`], once.
    fn encode(text: &str, offsets: bool) -> Option<Encoded> {
        static FAST: std::sync::OnceLock<FastBert> = std::sync::OnceLock::new();
        FAST.get_or_init(|| FastBert::new(tokenizer()).expect("MiniLM's is a BERT tokenizer"))
            .encode(tokenizer(), text, offsets)
    }

    fn reference(t: &Tokenizer, text: &str) -> (Vec<u32>, Vec<(usize, usize)>) {
        let e = t.encode(text, false).unwrap();
        (e.get_ids().to_vec(), e.get_offsets().to_vec())
    }

    /// Each of `texts` takes the fast path (`why` says why it should) and gives `tokenizers`'
    /// ids and offsets.
    fn assert_fast_equals_tokenizers(texts: &[&str], why: &str) {
        for text in texts {
            let fast = encode(text, true).expect(why);
            assert_eq!(fast, reference(tokenizer(), text), "{text:?}");
        }
    }

    #[test]
    fn plain_text_takes_the_fast_path_and_equals_tokenizers() {
        assert_fast_equals_tokenizers(
            &[
                "",
                "Hello, World! It's 3.14 -- e.g. (see fig. 2a) #tag @user a_b",
                "  leading\tand\r\ntrailing   ",
                "unaffable antidisestablishmentarianism hyper-parameter",
                &"x".repeat(150),
                // WordPiece's word-length cap (100 characters) on either side.
                &"ab".repeat(50),
                &format!("{}c and {}", "ab".repeat(50), "zq".repeat(49)),
                // Words only single letters match: every candidate length is tried down to one.
                "bcdfghjklmnpqrstvwxzbcdfghjklmnpqrstvwxz qxzqxzqxzqxzqxzqxzqxzqxzqxzqxzqxzqxzqxzqx",
                "Quoted \"text\" [with] {braces} and ~tilde~ `code` 100% $5 a+b=c <tag> x|y ^z",
            ],
            "plain ASCII takes the fast path",
        );
    }

    #[test]
    fn other_characters_go_to_tokenizers_piece_by_piece() {
        assert_fast_equals_tokenizers(
            &[
                "café au lait",
                "a\u{7}bell and form\x0cfeed, tab\x0bbed",
                "naïve résumé – “quotes” ≥ 5 µm β-cells 東京タワー x\u{a0}y ｆｕｌｌ！",
                "\u{301}accent first, then\u{fffd}replacement \u{0}nul",
            ],
            "pieces other than ASCII go to tokenizers",
        );
    }

    #[test]
    fn added_tokens_and_truncation_leave_the_fast_path() {
        for text in ["end [SEP] of", "the [mask] token"] {
            assert!(encode(text, true).is_none(), "{text:?}");
        }
        let mut truncating = tokenizer().clone();
        truncating
            .with_truncation(Some(tokenizers::TruncationParams::default()))
            .unwrap();
        assert!(FastBert::new(&truncating).is_none());
    }

    /// The fast path takes `text` (unless it spells out an added token, which needs a `[`) and
    /// gives `tokenizers`' ids and offsets.
    fn equals_tokenizers(text: &str) -> Result<(), TestCaseError> {
        let t = tokenizer();
        match encode(text, true) {
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
