//! What the ingest needs of a model: its tokenizer and window (to chunk), its document prompt,
//! and a blocking `embed_documents`. The CLI hands it the model itself ([`Embedder`]); a server
//! hands it its queue, so that one owner runs the model for every caller.

use std::sync::Arc;

use fathom_docs::ChunkTokenizer;
use fathom_model::{EmbedOptions, Embedder};

use crate::error::EmbedError;

/// Vectors for a batch of documents, and the tokens the model ran for them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Embedded {
    pub vectors: Vec<Vec<f32>>,
    pub tokens: usize,
}

/// A model as the ingest sees it.
pub trait Embed: Send + Sync {
    /// The model's tokenizer, without truncation or padding (chunks are sized with it).
    fn tokenizer(&self) -> &tokenizers::Tokenizer;
    /// [`Embed::tokenizer`] prepared for chunking. Preparing takes milliseconds (the vocabulary
    /// is copied into a faster map): a model that serves many small ingests (a server's
    /// document upserts) keeps one; by default each run prepares its own.
    fn chunk_tokenizer(&self) -> Arc<ChunkTokenizer> {
        Arc::new(ChunkTokenizer::new(self.tokenizer()))
    }
    /// The longest input, in tokens with special tokens, the model embeds without truncating.
    fn max_seq_length(&self) -> usize;
    /// Embeds documents (with the model's document prompt, if it has one), one vector per text
    /// in order. Blocks for the model's forward passes.
    fn embed_documents(&self, texts: &[&str]) -> Result<Embedded, EmbedError>;
    /// [`Embed::embed_documents`] for chunks whose tokens chunking already has (`token_ids[i]`,
    /// no special tokens): a model that can use them skips tokenizing again.
    fn embed_chunks(
        &self,
        texts: &[&str],
        token_ids: &[Option<&[u32]>],
    ) -> Result<Embedded, EmbedError> {
        let _ = token_ids;
        self.embed_documents(texts)
    }
}

impl Embed for Embedder {
    fn tokenizer(&self) -> &tokenizers::Tokenizer {
        Embedder::tokenizer(self)
    }

    fn max_seq_length(&self) -> usize {
        Embedder::max_seq_length(self)
    }

    fn embed_documents(&self, texts: &[&str]) -> Result<Embedded, EmbedError> {
        let options = EmbedOptions {
            prompt_name: self.document_prompt().map(str::to_string),
            ..EmbedOptions::default()
        };
        let (vectors, counts) = self.embed_counting(texts, &options)?;
        Ok(Embedded {
            vectors,
            tokens: counts.iter().sum(),
        })
    }

    fn embed_chunks(
        &self,
        texts: &[&str],
        token_ids: &[Option<&[u32]>],
    ) -> Result<Embedded, EmbedError> {
        let (vectors, counts) = Embedder::embed_chunks(self, texts, token_ids)?;
        Ok(Embedded {
            vectors,
            tokens: counts.iter().sum(),
        })
    }
}
