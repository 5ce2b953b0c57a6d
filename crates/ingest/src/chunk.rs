//! Chunking with `text-splitter`, sized in the model's own tokens, Markdown-aware for Markdown.

use fathom_model::Embedder;
use text_splitter::{ChunkConfig, ChunkSizer, MarkdownSplitter, TextSplitter};

use crate::read::Format;

/// A piece of a source's text with its offsets into that text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextChunk {
    pub text: String,
    pub byte_start: usize,
    pub byte_end: usize,
    pub char_start: usize,
    pub char_end: usize,
}

/// Counts tokens as the model will see them (without its special tokens).
struct ModelTokens<'a>(&'a tokenizers::Tokenizer);

impl ChunkSizer for ModelTokens<'_> {
    fn size(&self, chunk: &str) -> usize {
        self.0
            .encode(chunk, false)
            .map(|e| e.len())
            .unwrap_or(chunk.len())
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
    pub fn for_model(model: &Embedder) -> Self {
        let tokens = model.max_seq_length().saturating_sub(2).max(8);
        Self {
            tokens,
            overlap: Self::default_overlap(tokens),
        }
    }

    /// The overlap used when none is given: a quarter of the chunk.
    pub fn default_overlap(tokens: usize) -> usize {
        tokens / 4
    }
}

/// Splits `text` into chunks of at most `size.tokens` tokens, trimmed, with their offsets.
pub fn chunk(
    model: &Embedder,
    text: &str,
    format: Format,
    size: ChunkSize,
) -> Result<Vec<TextChunk>, String> {
    if size.overlap >= size.tokens {
        return Err(format!(
            "overlap ({}) must be smaller than the chunk size ({})",
            size.overlap, size.tokens
        ));
    }
    let sizer = ModelTokens(model.tokenizer());
    let config = ChunkConfig::new(size.tokens)
        .with_overlap(size.overlap)
        .map_err(|e| e.to_string())?
        .with_sizer(sizer);
    let to_chunk = |c: text_splitter::ChunkCharIndex<'_>| TextChunk {
        text: c.chunk.to_string(),
        byte_start: c.byte_offset,
        byte_end: c.byte_offset + c.chunk.len(),
        char_start: c.char_offset,
        char_end: c.char_offset + c.chunk.chars().count(),
    };
    Ok(match format {
        Format::Markdown => MarkdownSplitter::new(config)
            .chunk_char_indices(text)
            .map(to_chunk)
            .collect(),
        _ => TextSplitter::new(config)
            .chunk_char_indices(text)
            .map(to_chunk)
            .collect(),
    })
}
