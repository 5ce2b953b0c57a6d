//! `fathom-ingest` turns documents into embedded chunks in a collection, touching only what
//! changed, and trusting nothing it reads.
//!
//! A folder is walked ([`walk`]: .gitignore and hidden files respected, links out of a confined
//! root refused), each file hashed (blake3) and a [`SyncPlan`] made against what the collection
//! holds: unchanged files are skipped, new and changed ones are read (text, Markdown, code,
//! HTML, PDF in a bounded child process, JSON/JSONL by a named field), chunked in the model's
//! tokens in linear time and embedded, and files that are gone have their chunks deleted — only
//! after the whole plan was carried out, and never for a file or folder that could not be read.
//! Reading, embedding and writing run at the same time (the `pipeline` module); each commit holds whole
//! sources, and commits come every few seconds, so a crash or Ctrl-C leaves the store consistent,
//! loses little, and the next run finishes the job. Progress is reported as [`Event`]s, the
//! outcome as a [`Summary`].
//!
//! It leaves storage and search to `fathom-store`, and the model to whatever implements
//! [`Embed`] (`fathom_model::Embedder`, or a server's queue in front of it).
//!
//! ```no_run
//! # async fn demo(model: std::sync::Arc<fathom_model::Embedder>, c: &fathom_store::Collection) {
//! use fathom_ingest::{sync_folder, FolderOptions};
//! let summary = sync_folder(model, c, "docs".as_ref(), &FolderOptions::default(), &|_| {}, &Default::default())
//!     .await
//!     .unwrap();
//! println!("{} added, {} unchanged", summary.added, summary.unchanged);
//! # }
//! ```

#![forbid(unsafe_code)]

mod embed;
mod error;
mod pipeline;
mod report;
mod watch;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fathom_store::Collection;

pub use embed::{Embed, Embedded};
pub use error::{EmbedError, IngestError, Result};
pub use fathom_docs::{
    chunk, chunk_document, formats, ocr, parse_document, parse_helper_main, source_hash, walk,
    ChunkError, ChunkSize, ChunkTokenizer, Chunked, FileEntry, Format, OcrMode, ParseLimits,
    ParserIsolation, ReadOutcome, Seen, Shard, SyncPlan, TextChunk, ToEmbed, WalkOptions, Walked,
    BLOCK_BYTES,
};
pub use fathom_docs::{looks_binary, read, source_prefix};
pub use report::{Event, FileProblem, FormatCounts, ProblemKind, Summary};
pub use watch::{is_scratch, watch_folder, FolderWatch, DEFAULT_QUIET};

use fathom_docs::Files;
use pipeline::{Input, Outcome, Reader, Work};

/// A document given directly (not read from a file): eval corpora, the HTTP API.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub id: String,
    pub text: String,
    pub metadata: Option<serde_json::Value>,
    pub format: Format,
}

/// Options of an ingest.
#[derive(Debug, Clone)]
pub struct FolderOptions {
    pub walk: WalkOptions,
    /// Chunk size in tokens; `None`: the model's max_seq_length less its special tokens.
    pub chunk_tokens: Option<usize>,
    /// Tokens shared by consecutive chunks; `None`: a quarter of the chunk size.
    pub overlap: Option<usize>,
    /// Chunks one file may have; the rest of a longer file is left out and reported.
    pub max_chunks_per_file: usize,
    /// For JSON/JSONL files: the field holding the text (others are skipped without it).
    pub json_field: Option<String>,
    /// Where and within what budget PDFs are parsed.
    pub parse: ParseLimits,
    /// Chunks per embedding call.
    pub embed_batch: usize,
    /// Chunks per store commit (whole sources are never split across commits)...
    pub write_batch: usize,
    /// ...and at least one commit this often while there is something to write, so that a crash
    /// loses at most this much work.
    pub commit_every: Duration,
}

impl Default for FolderOptions {
    fn default() -> Self {
        Self {
            walk: WalkOptions::default(),
            chunk_tokens: None,
            overlap: None,
            // ~2.5 M tokens: an 8 MB text file whole; a 20 MB log is cut rather than starving
            // every other file of the run.
            max_chunks_per_file: 10_000,
            json_field: None,
            parse: ParseLimits::default(),
            // About one forward pass of 8k tokens: Ctrl-C is noticed between calls, so it takes
            // effect within a second or so instead of after a long batch.
            embed_batch: 32,
            write_batch: 2048,
            commit_every: Duration::from_secs(10),
        }
    }
}

/// Cancelled to stop an ingest at the next source boundary (and a watch at once).
pub use tokio_util::sync::CancellationToken;

/// Syncs the collection with the folder `root`: embeds new and changed files, skips unchanged
/// ones, and — once every file was handled — deletes the chunks of files that are gone (only
/// among sources under this root's prefix, and never under a folder that could not be listed).
///
/// A file that fails is reported in the summary and keeps what was stored for it. If the run
/// cannot finish (the embedding service is gone, a write fails), the whole sources done so far
/// stay committed, nothing is deleted, and [`IngestError::Incomplete`] says why.
pub async fn sync_folder(
    model: Arc<dyn Embed>,
    collection: &Collection,
    root: &Path,
    options: &FolderOptions,
    on_event: &(dyn Fn(Event) + Sync),
    cancel: &CancellationToken,
) -> Result<Summary> {
    let start = Instant::now();
    let size = chunk_size(model.as_ref(), options)?;
    let mut stored = stored_hashes(collection, &options.walk.prefix_for(root)).await?;
    if let Some(shard) = options.walk.shard {
        // Another shard's sources are neither this run's to update nor to delete.
        stored.retain(|id, _| shard.owns(id));
    }
    let (walk_options, root_owned) = (options.walk.clone(), root.to_path_buf());
    let (walked, seen, files) = tokio::task::spawn_blocking(move || {
        let walked = walk(&root_owned, &walk_options)?;
        let files = Files::new(
            &root_owned,
            walk_options.confine,
            walk_options.max_file_size,
        )
        .map_err(|_| fathom_docs::WalkError::NotAFolder {
            path: root_owned.clone(),
        })?;
        let seen = hash_walked(&walked, &files, size);
        Ok::<_, IngestError>((walked, seen, files))
    })
    .await
    .expect("the walk does not panic")?;
    let mut summary = Summary {
        skipped_too_large: walked.too_large.len(),
        errors: walked.problems.clone(),
        ..Summary::default()
    };
    for (seen, problem) in &seen {
        if let (Seen::Unreadable { .. }, Some(p)) = (seen, problem) {
            summary.errors.push(p.clone());
        }
    }
    let plan = SyncPlan::new(
        &stored,
        seen.into_iter().map(|(s, _)| s).collect(),
        walked.complete,
    );
    on_event(Event::Planned {
        to_read: plan.embed.len(),
        files: walked.files.len(),
    });
    summary.unchanged = plan.unchanged.len();
    summary.kept = plan.keep.len();
    let work = plan
        .embed
        .iter()
        .map(|e| Work {
            source_id: e.entry.source_id.clone(),
            is_new: e.is_new,
            metadata: None,
            input: Input::File(e.entry.clone()),
        })
        .collect();
    let reader = Reader::new(model, Some(files), options, size);
    let outcome = pipeline::run(
        reader,
        work,
        collection,
        options,
        on_event,
        cancel,
        &mut summary,
    )
    .await;
    finish(outcome, collection, &plan.delete, summary, start).await
}

/// The hashes of the collection's sources whose ids start with `prefix`.
async fn stored_hashes(collection: &Collection, prefix: &str) -> Result<HashMap<String, String>> {
    Ok(collection
        .sources()
        .await?
        .into_iter()
        .filter(|s| s.source_id.starts_with(prefix))
        .map(|s| (s.source_id, s.source_hash))
        .collect())
}

/// Reads and hashes each walked file for the plan. Blocking (reads every file).
fn hash_walked(
    walked: &Walked,
    files: &Files,
    size: ChunkSize,
) -> Vec<(Seen, Option<FileProblem>)> {
    let mut seen = Vec::with_capacity(walked.files.len());
    for entry in &walked.files {
        seen.push(match files.read(entry) {
            Ok(bytes) => (
                Seen::File {
                    entry: entry.clone(),
                    hash: source_hash(&bytes, size),
                },
                None,
            ),
            Err(e) => (
                Seen::Unreadable {
                    source_id: entry.source_id.clone(),
                },
                Some(FileProblem {
                    path: entry.source_id.clone(),
                    message: e.to_string(),
                    kind: ProblemKind::Error,
                }),
            ),
        });
    }
    for id in walked.too_large.iter().chain(&walked.outside) {
        seen.push((
            Seen::Excluded {
                source_id: id.clone(),
            },
            None,
        ));
    }
    for id in &walked.unreadable {
        seen.push((
            Seen::Unreadable {
                source_id: id.clone(),
            },
            None,
        ));
    }
    seen
}

/// Upserts documents given directly: each replaces the chunks stored under its id; documents
/// whose text is unchanged are skipped. Never deletes other sources.
pub async fn upsert_documents(
    model: Arc<dyn Embed>,
    collection: &Collection,
    documents: Vec<Document>,
    options: &FolderOptions,
    on_event: &(dyn Fn(Event) + Sync),
    cancel: &CancellationToken,
) -> Result<Summary> {
    let start = Instant::now();
    let size = chunk_size(model.as_ref(), options)?;
    let stored = stored_hashes(collection, "").await?;
    let mut summary = Summary::default();
    let mut work = Vec::with_capacity(documents.len());
    for doc in documents {
        let old = stored.get(&doc.id);
        if old == Some(&source_hash(doc.text.as_bytes(), size)) {
            summary.unchanged += 1;
            continue;
        }
        work.push(Work {
            source_id: doc.id,
            is_new: old.is_none(),
            metadata: doc.metadata.map(|m| m.to_string()),
            input: Input::Text {
                text: doc.text,
                format: doc.format,
            },
        });
    }
    on_event(Event::Planned {
        to_read: work.len(),
        files: work.len() + summary.unchanged,
    });
    let reader = Reader::new(model, None, options, size);
    let outcome = pipeline::run(
        reader,
        work,
        collection,
        options,
        on_event,
        cancel,
        &mut summary,
    )
    .await;
    finish(outcome, collection, &[], summary, start).await
}

/// Applies the plan's deletes once everything else was done, and settles the summary.
async fn finish(
    outcome: Outcome,
    collection: &Collection,
    delete: &[String],
    mut summary: Summary,
    start: Instant,
) -> Result<Summary> {
    match outcome {
        Outcome::Completed => {
            if !delete.is_empty() {
                collection.delete_sources(delete).await?;
                summary.deleted += delete.len();
            }
            collection.update_indexes().await?;
            // Checkpoint commits add versions and small fragments: fold them when they pile up.
            if let Err(e) = collection.maybe_optimize().await {
                tracing::warn!(collection = collection.name(), error = %e, "store upkeep failed; the next write retries it");
            }
        }
        Outcome::Cancelled => summary.interrupted = true,
        Outcome::Stopped(reason) => {
            summary.seconds = start.elapsed().as_secs_f64();
            return Err(IngestError::Incomplete {
                reason,
                summary: Box::new(summary),
            });
        }
    }
    summary.seconds = start.elapsed().as_secs_f64();
    Ok(summary)
}

/// The chunking for `model` and `options`.
pub fn chunk_size(model: &dyn Embed, options: &FolderOptions) -> Result<ChunkSize> {
    let default = ChunkSize::for_max_seq_length(model.max_seq_length());
    let tokens = options.chunk_tokens.unwrap_or(default.tokens);
    let size = ChunkSize {
        tokens,
        overlap: options
            .overlap
            .unwrap_or_else(|| ChunkSize::default_overlap(tokens)),
    };
    if size.tokens == 0 || size.overlap >= size.tokens {
        return Err(IngestError::BadChunkSize {
            tokens: size.tokens,
            overlap: size.overlap,
        });
    }
    if size.tokens > default.tokens {
        tracing::warn!(
            "chunks of {} tokens exceed the model's {} and will be truncated when embedded",
            size.tokens,
            default.tokens
        );
    }
    Ok(size)
}
