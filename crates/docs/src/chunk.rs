//! Chunking in the model's own tokens, in time linear in the text.
//!
//! `text-splitter` (Markdown-aware for Markdown) cuts prose at the best semantic boundary, but
//! it sizes candidate pieces by tokenizing them, so one long run with no sentence or line break
//! costs it quadratic time (a 2.4 MB single-line file took over 10 minutes). So the text is first
//! cut into blocks at line breaks (at most [`BLOCK_BYTES`], at a blank line where there is one),
//! each block goes to `text-splitter` on its own, and a single line too long for that is
//! tokenized once and cut into windows of tokens by their offsets, at word boundaries where it
//! can. Every chunk keeps its byte and character offsets into the whole text.

use std::ops::Range;

use text_splitter::{ChunkConfig, ChunkSizer, MarkdownSplitter, TextSplitter};
use tokenizers::Tokenizer;

use crate::fastbert;
use crate::formats::{Document, Location, SECTION_SEPARATOR};
use crate::read::Format;

/// Why a text could not be chunked (reported for its file; the ingest goes on).
#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    #[error("overlap ({overlap}) must be smaller than the chunk size ({tokens})")]
    BadSize { tokens: usize, overlap: usize },
    #[error("tokenizing: {0}")]
    Tokenizer(tokenizers::Error),
}

/// Prose is handed to `text-splitter` in blocks of at most this many bytes.
pub const BLOCK_BYTES: usize = 64 * 1024;

/// A piece of a source's text with its offsets into that text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextChunk {
    pub text: String,
    pub byte_start: usize,
    pub byte_end: usize,
    pub char_start: usize,
    pub char_end: usize,
    /// Where in its document the chunk is (its section's page, slide, row…), if it has places.
    pub location: Option<Location>,
    /// The chunk's tokens (no special tokens), when sizing it tokenized exactly its text: a
    /// model that needs nothing else (a static-embedding table) embeds from these.
    pub token_ids: Option<Vec<u32>>,
}

/// What a model is given for `chunks`: their texts, and the tokens chunking already has for each
/// (what `Embedder::embed_chunks` takes).
pub fn model_inputs<'a>(
    chunks: impl IntoIterator<Item = &'a TextChunk>,
) -> (Vec<&'a str>, Vec<Option<&'a [u32]>>) {
    chunks
        .into_iter()
        .map(|c| (c.text.as_str(), c.token_ids.as_deref()))
        .unzip()
}

/// Chunks of one text, and whether the per-file cap cut them short.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chunked {
    pub chunks: Vec<TextChunk>,
    pub truncated: bool,
}

/// A model's tokenizer as chunking uses it: the tokenizer (without truncation or padding), and
/// BERT's fast path prepared from it once where it applies ([`crate::fastbert`]).
#[derive(Debug, Clone)]
pub struct ChunkTokenizer {
    tokenizer: Tokenizer,
    fast: Option<fastbert::FastBert>,
}

impl ChunkTokenizer {
    /// Prepares `tokenizer` (copied) for chunking: once per model, not per text.
    pub fn new(tokenizer: &Tokenizer) -> Self {
        Self {
            fast: fastbert::FastBert::new(tokenizer),
            tokenizer: tokenizer.clone(),
        }
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The ids of `text` as the model sees them (without its special tokens) and, with
    /// `offsets`, each token's byte span: BERT's fast path where it is exact, else `tokenizers`.
    fn tokenize(&self, text: &str, offsets: bool) -> Result<fastbert::Encoded, ChunkError> {
        if let Some(encoded) = self
            .fast
            .as_ref()
            .and_then(|f| f.encode(&self.tokenizer, text, offsets))
        {
            return Ok(encoded);
        }
        let e = if offsets {
            self.tokenizer.encode(text, false)
        } else {
            self.tokenizer.encode_fast(text, false)
        }
        .map_err(ChunkError::Tokenizer)?;
        let spans = if offsets {
            e.get_offsets().to_vec()
        } else {
            Vec::new()
        };
        Ok((e.get_ids().to_vec(), spans))
    }
}

fn token_ids(tokenizer: &ChunkTokenizer, text: &str) -> Result<Vec<u32>, ChunkError> {
    Ok(tokenizer.tokenize(text, false)?.0)
}

fn token_spans(tokenizer: &ChunkTokenizer, text: &str) -> Result<Vec<(usize, usize)>, ChunkError> {
    Ok(tokenizer.tokenize(text, true)?.1)
}

/// Counts tokens as the model will see them (without its special tokens).
struct ModelTokens<'a>(&'a ChunkTokenizer);

impl ChunkSizer for ModelTokens<'_> {
    fn size(&self, chunk: &str) -> usize {
        token_ids(self.0, chunk).map_or(chunk.len(), |ids| ids.len())
    }
}

/// Counts the tokens of a piece of one block from the block's own tokenization: the tokens
/// whose spans overlap the piece (found by its position in the block), instead of tokenizing the
/// piece again. `text-splitter` sizes dozens of candidate pieces per chunk, each a tokenization
/// of up to the whole block; this makes its search one tokenization of the block. At a piece's
/// edges a word cut in two may tokenize to more pieces than the tokens it overlaps, so every
/// chunk is counted again exactly afterwards (`split_prose`).
struct BlockTokens<'a> {
    tokenizer: &'a ChunkTokenizer,
    block: &'a str,
    starts: Vec<usize>,
    ends: Vec<usize>,
}

impl ChunkSizer for BlockTokens<'_> {
    fn size(&self, piece: &str) -> usize {
        let base = self.block.as_ptr() as usize;
        let at = piece.as_ptr() as usize;
        if at < base || at + piece.len() > base + self.block.len() {
            return ModelTokens(self.tokenizer).size(piece);
        }
        let (a, b) = (at - base, at - base + piece.len());
        let first = self.ends.partition_point(|&end| end <= a);
        let last = self.starts.partition_point(|&start| start < b);
        last.saturating_sub(first)
    }
}

/// Chunk size and overlap, in tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkSize {
    pub tokens: usize,
    pub overlap: usize,
}

impl ChunkSize {
    /// The model's max_seq_length less its special tokens, so a chunk is embedded whole, and a
    /// quarter of that shared with the next chunk (a passage cut at a boundary is still whole in
    /// one of the two: on SciFact it lifts nDCG@10 from 0.644 to 0.654, see `fathom eval`).
    pub fn for_max_seq_length(max_seq_length: usize) -> Self {
        let tokens = max_seq_length.saturating_sub(2).max(8);
        Self {
            tokens,
            overlap: Self::default_overlap(tokens),
        }
    }

    /// The overlap used when none is given: a quarter of the chunk.
    pub fn default_overlap(tokens: usize) -> usize {
        tokens / 4
    }

    /// Lines longer than this (bytes) are cut by token windows rather than by `text-splitter`.
    fn long_line_bytes(self) -> usize {
        (self.tokens * 32).clamp(1024, BLOCK_BYTES)
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Block {
    Prose(Range<usize>),
    LongLine(Range<usize>),
}

/// Cuts `text` at line breaks into prose blocks of at most [`BLOCK_BYTES`] (at the last blank
/// line in the second half of a block where there is one) and single lines over `long_line`.
fn blocks(text: &str, long_line: usize) -> Vec<Block> {
    let mut out = Vec::new();
    let (mut start, mut pos) = (0, 0);
    let mut last_blank_end: Option<usize> = None;
    for line in text.split_inclusive('\n') {
        let end = pos + line.len();
        if line.len() > long_line {
            if pos > start {
                out.push(Block::Prose(start..pos));
            }
            out.push(Block::LongLine(pos..end));
            start = end;
        } else if end - start > BLOCK_BYTES {
            let cut = last_blank_end
                .filter(|&b| b > start + BLOCK_BYTES / 2 && b <= pos)
                .unwrap_or(pos);
            if cut > start {
                out.push(Block::Prose(start..cut));
                start = cut;
            }
        }
        if line.trim().is_empty() {
            last_blank_end = Some(end);
        }
        pos = end;
    }
    if pos > start {
        out.push(Block::Prose(start..pos));
    }
    out
}

/// Splits `text` into chunks of at most `size.tokens` tokens, trimmed, with their offsets; at
/// most `max_chunks` of them (the rest is left out and `truncated` set). CPU work linear in the
/// text (it tokenizes it).
pub fn chunk(
    tokenizer: &ChunkTokenizer,
    text: &str,
    format: Format,
    size: ChunkSize,
    max_chunks: usize,
) -> Result<Chunked, ChunkError> {
    if size.tokens == 0 || size.overlap >= size.tokens {
        return Err(ChunkError::BadSize {
            tokens: size.tokens,
            overlap: size.overlap,
        });
    }
    let mut out = Chunked::default();
    let mut chars_before = 0; // characters of `text` before `counted`
    let mut counted = 0;
    for block in blocks(text, size.long_line_bytes()) {
        let range = match &block {
            Block::Prose(r) | Block::LongLine(r) => r.clone(),
        };
        chars_before += text[counted..range.start].chars().count();
        counted = range.start;
        let base = (range.start, chars_before);
        let piece = &text[range];
        let room = max_chunks - out.chunks.len();
        let (chunks, cut) = match block {
            Block::Prose(_) => split_prose(tokenizer, piece, format, size, base, room)?,
            Block::LongLine(_) => split_by_tokens(tokenizer, piece, size, base, room)?,
        };
        out.chunks.extend(chunks);
        if cut {
            out.truncated = true;
            break;
        }
    }
    Ok(out)
}

/// Chunks a located document section by section, so that no chunk spans two pages (slides,
/// messages…) and each carries its section's location. Offsets are into the document's whole
/// text, its sections joined by [`SECTION_SEPARATOR`] ([`Document::joined`]).
pub fn chunk_document(
    tokenizer: &ChunkTokenizer,
    doc: &Document,
    size: ChunkSize,
    max_chunks: usize,
) -> Result<Chunked, ChunkError> {
    let mut out = Chunked::default();
    let (mut bytes_before, mut chars_before) = (0, 0);
    for (i, section) in doc.sections.iter().enumerate() {
        if i > 0 {
            bytes_before += SECTION_SEPARATOR.len();
            chars_before += SECTION_SEPARATOR.chars().count();
        }
        let room = max_chunks - out.chunks.len();
        let mut part = chunk(tokenizer, &section.text, Format::Text, size, room)?;
        for c in &mut part.chunks {
            c.byte_start += bytes_before;
            c.byte_end += bytes_before;
            c.char_start += chars_before;
            c.char_end += chars_before;
            c.location = section.location.clone();
        }
        out.chunks.append(&mut part.chunks);
        if part.truncated || (out.chunks.len() == max_chunks && i + 1 < doc.sections.len()) {
            out.truncated = true;
            break;
        }
        bytes_before += section.text.len();
        chars_before += section.text.chars().count();
    }
    Ok(out)
}

/// `text-splitter` over one block; offsets shifted by `base` (bytes, chars).
fn split_prose(
    tokenizer: &ChunkTokenizer,
    block: &str,
    format: Format,
    size: ChunkSize,
    base: (usize, usize),
    room: usize,
) -> Result<(Vec<TextChunk>, bool), ChunkError> {
    if format != Format::Markdown {
        if let Some(whole) = whole_block(tokenizer, block, size, base)? {
            return Ok(cap(whole.into_iter().collect(), room));
        }
    }
    let spans = token_spans(tokenizer, block)?;
    let fast = BlockTokens {
        tokenizer,
        block,
        starts: spans.iter().map(|o| o.0).collect(),
        ends: spans.iter().map(|o| o.1).collect(),
    };
    let mut chunks = split_with(block, format, size, base, room, fast)?;
    // Each chunk counted exactly; one the estimate let past the size sends the block through
    // the exact (slow) search instead.
    for c in &mut chunks {
        let ids = token_ids(tokenizer, c.text.as_str())?;
        if ids.len() > size.tokens {
            let exact = split_with(block, format, size, base, room, ModelTokens(tokenizer))?;
            return Ok(cap(exact, room));
        }
        c.token_ids = Some(ids);
    }
    Ok(cap(chunks, room))
}

/// `text-splitter` over one block with a sizer; one more chunk than there is `room` for, if the
/// block has it (which tells that the cap cut the text short).
fn split_with(
    block: &str,
    format: Format,
    size: ChunkSize,
    base: (usize, usize),
    room: usize,
    sizer: impl ChunkSizer,
) -> Result<Vec<TextChunk>, ChunkError> {
    let config = ChunkConfig::new(size.tokens)
        .with_overlap(size.overlap)
        .map_err(|_| ChunkError::BadSize {
            tokens: size.tokens,
            overlap: size.overlap,
        })?
        .with_sizer(sizer);
    let to_chunk = |c: text_splitter::ChunkCharIndex<'_>| TextChunk {
        text: c.chunk.to_string(),
        byte_start: base.0 + c.byte_offset,
        byte_end: base.0 + c.byte_offset + c.chunk.len(),
        char_start: base.1 + c.char_offset,
        char_end: base.1 + c.char_offset + c.chunk.chars().count(),
        location: None,
        token_ids: None,
    };
    Ok(match format {
        Format::Markdown => MarkdownSplitter::new(config)
            .chunk_char_indices(block)
            .take(room.saturating_add(1))
            .map(to_chunk)
            .collect(),
        _ => TextSplitter::new(config)
            .chunk_char_indices(block)
            .take(room.saturating_add(1))
            .map(to_chunk)
            .collect(),
    })
}

/// A block that fits in one chunk, as that chunk (`Some(None)`: a block of whitespace, no
/// chunk), found with one tokenization: what `TextSplitter` returns for it, trimmed, without its
/// search over candidate chunks (a dozen tokenizations of the whole block and more, the cost that
/// dominated ingesting a folder of abstracts with a fast model). `None`: it does not fit.
fn whole_block(
    tokenizer: &ChunkTokenizer,
    block: &str,
    size: ChunkSize,
    base: (usize, usize),
) -> Result<Option<Option<TextChunk>>, ChunkError> {
    let trimmed = block.trim();
    if trimmed.is_empty() {
        return Ok(Some(None));
    }
    let ids = token_ids(tokenizer, trimmed)?;
    if ids.len() > size.tokens {
        return Ok(None);
    }
    let start = trimmed.as_ptr() as usize - block.as_ptr() as usize;
    let char_start = base.1 + block[..start].chars().count();
    Ok(Some(Some(TextChunk {
        text: trimmed.to_string(),
        byte_start: base.0 + start,
        byte_end: base.0 + start + trimmed.len(),
        char_start,
        char_end: char_start + trimmed.chars().count(),
        location: None,
        token_ids: Some(ids),
    })))
}

fn cap(mut chunks: Vec<TextChunk>, room: usize) -> (Vec<TextChunk>, bool) {
    let cut = chunks.len() > room;
    chunks.truncate(room);
    (chunks, cut)
}

/// One long line, tokenized once, cut into windows of `size.tokens` tokens sharing
/// `size.overlap`, each ending at a word boundary where one is near.
fn split_by_tokens(
    tokenizer: &ChunkTokenizer,
    line: &str,
    size: ChunkSize,
    base: (usize, usize),
    room: usize,
) -> Result<(Vec<TextChunk>, bool), ChunkError> {
    let offsets = token_spans(tokenizer, line)?;
    let n = offsets.len();
    // Two tokens touching (no space between) may be pieces of one word.
    let joined = |j: usize| j > 0 && j < n && offsets[j].0 == offsets[j - 1].1;
    let slack = size.tokens / 4;
    let mut chunks = Vec::new();
    let mut chars_done = (0usize, base.1); // (byte in line, chars before it)
    let mut start = 0;
    while start < n && chunks.len() <= room {
        let mut end = (start + size.tokens).min(n);
        let mut back = end;
        while back > start + 1 && end - back < slack && joined(back) {
            back -= 1;
        }
        if !joined(back) {
            end = back;
        }
        // The slice can come out as more tokens than the window it was cut from (a word cut in
        // the middle starts over as a word, and its pieces differ), so the window shrinks until
        // the slice itself fits. One or two tokenizations of a chunk: still linear.
        loop {
            let slice = &line[offsets[start].0..offsets[end - 1].1];
            let count = token_ids(tokenizer, slice)?.len();
            if count <= size.tokens || end == start + 1 {
                break;
            }
            end = (end - (count - size.tokens)).max(start + 1);
        }
        let (b0, b1) = (offsets[start].0, offsets[end - 1].1);
        let char_start = chars_done.1 + line[chars_done.0..b0].chars().count();
        let text = &line[b0..b1];
        let char_end = char_start + text.chars().count();
        chars_done = (b0, char_start);
        chunks.push(TextChunk {
            text: text.to_string(),
            byte_start: base.0 + b0,
            byte_end: base.0 + b1,
            char_start,
            char_end,
            location: None,
            token_ids: None,
        });
        if end == n {
            break;
        }
        let mut next = end.saturating_sub(size.overlap).max(start + 1);
        while next < end && joined(next) {
            next += 1;
        }
        start = next;
    }
    Ok(cap(chunks, room))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_cut_at_line_breaks_and_isolate_long_lines() {
        let long = "x".repeat(5000);
        let text = format!("a\nb\n{long}\nc\n");
        let b = blocks(&text, 1024);
        assert_eq!(
            b,
            [
                Block::Prose(0..4),
                Block::LongLine(4..5005),
                Block::Prose(5005..5007)
            ]
        );
        // Prose longer than a block is cut, preferably at a blank line in its second half.
        let para = format!("{}\n", "word ".repeat(100));
        let mut text = String::new();
        while text.len() < BLOCK_BYTES * 3 {
            text.push_str(&para);
            if text.len().is_multiple_of(7) {
                text.push('\n');
            }
        }
        let b = blocks(&text, 4096);
        let mut covered = 0;
        for block in &b {
            let Block::Prose(r) = block else {
                panic!("no long lines here")
            };
            assert_eq!(r.start, covered);
            assert!(r.len() <= BLOCK_BYTES, "{}", r.len());
            assert!(text[..r.end].ends_with('\n'));
            covered = r.end;
        }
        assert_eq!(covered, text.len());
    }
}

#[cfg(test)]
mod fuzz {
    //! Chunking of arbitrary text with a real (tiny) tokenizer: never a panic, every chunk is the
    //! slice of the text its offsets name, within the size, and in order.
    use super::*;

    fn tokenizer() -> ChunkTokenizer {
        let path = fathom_testkit::fixtures().join("tiny/bert/tokenizer.json");
        ChunkTokenizer::new(&Tokenizer::from_file(&path).expect("the tiny BERT tokenizer"))
    }

    fn check(tokenizer: &ChunkTokenizer, text: &str, size: ChunkSize) -> Result<(), String> {
        let chunked =
            chunk(tokenizer, text, Format::Text, size, 10_000).map_err(|e| e.to_string())?;
        let mut last_start = 0;
        for c in &chunked.chunks {
            if text[c.byte_start..c.byte_end] != c.text {
                return Err(format!(
                    "offsets {}..{} do not name {:?}",
                    c.byte_start, c.byte_end, c.text
                ));
            }
            if text[..c.byte_start].chars().count() != c.char_start
                || c.char_end - c.char_start != c.text.chars().count()
            {
                return Err(format!("char offsets of {:?} are wrong", c.text));
            }
            if c.byte_start < last_start {
                return Err("chunks out of order".into());
            }
            last_start = c.byte_start;
            let encoding = tokenizer
                .tokenizer()
                .encode(c.text.as_str(), false)
                .unwrap();
            if c.token_ids
                .as_deref()
                .is_some_and(|ids| ids != encoding.get_ids())
            {
                return Err(format!("the token ids of {:?} are not its tokens", c.text));
            }
            let tokens = encoding.len();
            if tokens > size.tokens {
                return Err(format!(
                    "{tokens} tokens in a chunk of at most {}",
                    size.tokens
                ));
            }
        }
        Ok(())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// A block that fits whole comes out as `TextSplitter` cuts it (the shortcut in
        /// `split_prose` must change nothing but the time it takes).
        #[test]
        fn a_block_that_fits_is_the_chunk_text_splitter_makes(
            text in "(\\PC{0,20}|[a-z]{1,12} | |\n|\t|é|日本|🙂){0,30}",
        ) {
            let tokenizer = tokenizer();
            let size = ChunkSize { tokens: 64, overlap: 16 };
            if let Some(whole) = whole_block(&tokenizer, &text, size, (7, 3)).unwrap() {
                let config = ChunkConfig::new(size.tokens)
                    .with_overlap(size.overlap)
                    .unwrap()
                    .with_sizer(ModelTokens(&tokenizer));
                let theirs: Vec<(String, usize, usize)> = TextSplitter::new(config)
                    .chunk_char_indices(&text)
                    .map(|c| (c.chunk.to_string(), 7 + c.byte_offset, 3 + c.char_offset))
                    .collect();
                let ours: Vec<(String, usize, usize)> = whole
                    .into_iter()
                    .map(|c| (c.text, c.byte_start, c.char_start))
                    .collect();
                proptest::prop_assert_eq!(ours, theirs);
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn any_text_chunks_into_valid_slices(
            text in "(\\PC{0,40}|[a-z]{1,12} |\n|\n\n|é|日本|🙂){0,400}",
            long_run in 0usize..3000,
        ) {
            let tokenizer = tokenizer();
            let size = ChunkSize { tokens: 16, overlap: 4 };
            // Sometimes one long line with no break, the input that was quadratic.
            let text = format!("{text}{}", "word".repeat(long_run));
            if let Err(e) = check(&tokenizer, &text, size) {
                return Err(proptest::test_runner::TestCaseError::fail(e));
            }
        }
    }
}
