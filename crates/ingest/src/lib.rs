//! `fathom-ingest` turns documents into embedded chunks in a collection, touching only what
//! changed.
//!
//! A folder is walked (`ignore`: .gitignore and hidden files respected), each file hashed
//! (blake3) and compared with what the collection holds: unchanged files are skipped, new and
//! changed ones are read (text, Markdown, code, HTML, PDF, JSON/JSONL by a named field), chunked
//! in the model's tokens (`text-splitter`) and embedded, and files that are gone have their chunks
//! deleted. Reading/chunking, embedding and writing run at the same time, connected by bounded
//! channels; each write commits whole sources, so stopping midway (Ctrl-C) leaves the store
//! consistent and the next run finishes the job. Progress is reported as [`Event`]s.
//!
//! It leaves storage and search to `fathom-store` and the model to `fathom-model`.
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

mod chunk;
mod read;
mod walk;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;

use fathom_model::{EmbedOptions, Embedder};
use fathom_store::{ChunkRecord, Collection, SourceChunks};

pub use chunk::{chunk, ChunkSize, TextChunk};
pub use read::{looks_binary, read, Format, ReadOutcome};
pub use walk::{source_prefix, walk, FileEntry, FileProblem, ProblemKind, WalkOptions, Walked};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{0}")]
    Walk(String),
    #[error("chunking: {0}")]
    Chunking(String),
    #[error(transparent)]
    Model(#[from] fathom_model::ModelError),
    #[error(transparent)]
    Store(#[from] fathom_store::StoreError),
    #[error("the embedding worker stopped unexpectedly")]
    WorkerGone,
}

pub type Result<T, E = IngestError> = std::result::Result<T, E>;

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
    /// For JSON/JSONL files: the field holding the text (others are skipped without it).
    pub json_field: Option<String>,
    /// Chunks per embedding call.
    pub embed_batch: usize,
    /// Chunks per store commit (whole sources are never split across commits).
    pub write_batch: usize,
}

impl Default for FolderOptions {
    fn default() -> Self {
        Self {
            walk: WalkOptions::default(),
            chunk_tokens: None,
            overlap: None,
            json_field: None,
            // About one forward pass of 8k tokens: Ctrl-C is noticed between calls, so it takes
            // effect within a second or so instead of after a long batch.
            embed_batch: 32,
            write_batch: 2048,
        }
    }
}

/// What happened, as it happens.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The walk is done: how many files will be read (new or changed) out of how many.
    Planned { to_read: usize, files: usize },
    /// A file or document was read and chunked (or skipped).
    Read { source_id: String },
    /// A batch was embedded.
    Embedded { chunks: usize, tokens: usize },
    /// A batch of sources was committed.
    Written { sources: usize, chunks: usize },
    /// Something about one file that did not stop the ingest.
    Warning { source_id: String, message: String },
}

/// The outcome of an ingest.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub added: usize,
    pub updated: usize,
    pub deleted: usize,
    pub unchanged: usize,
    pub skipped_binary: usize,
    pub skipped_too_large: usize,
    pub skipped_no_text: usize,
    pub errors: Vec<FileProblem>,
    pub chunks: usize,
    pub tokens: usize,
    pub seconds: f64,
    /// Stopped by the cancel flag; what was written is consistent and a re-run completes it.
    pub interrupted: bool,
}

/// Set to stop an ingest at the next source boundary.
pub type CancelFlag = Arc<AtomicBool>;

/// One source ready to embed.
struct Prepared {
    source_id: String,
    hash: String,
    metadata: Option<String>,
    chunks: Vec<TextChunk>,
    is_new: bool,
}

/// What the reading stage sends on.
enum Staged {
    Source(Prepared),
    Skipped,
}

/// What a source is stored under: the blake3 of its bytes and the chunking it was split with, so
/// that changing `--chunk-tokens` or `--overlap` re-chunks it on the next run.
pub fn source_hash(bytes: &[u8], size: ChunkSize) -> String {
    format!(
        "{}:{}/{}",
        blake3::hash(bytes).to_hex(),
        size.tokens,
        size.overlap
    )
}

/// Syncs the collection with the folder `root`: embeds new and changed files, deletes the chunks
/// of files that are gone (only among sources under this root), skips unchanged ones.
pub async fn sync_folder(
    model: Arc<Embedder>,
    collection: &Collection,
    root: &Path,
    options: &FolderOptions,
    on_event: &(dyn Fn(Event) + Sync),
    cancel: &CancelFlag,
) -> Result<Summary> {
    let start = Instant::now();
    let walk_options = options.walk.clone();
    let root_owned = root.to_path_buf();
    let walked = tokio::task::spawn_blocking(move || walk(&root_owned, &walk_options))
        .await
        .map_err(|_| IngestError::WorkerGone)?
        .map_err(IngestError::Walk)?;
    let prefix = options.walk.prefix_for(root);
    let stored: HashMap<String, String> = collection
        .sources()
        .await?
        .into_iter()
        .filter(|s| s.source_id.starts_with(&prefix))
        .map(|s| (s.source_id, s.source_hash))
        .collect();

    let mut summary = Summary {
        skipped_too_large: walked.too_large.len(),
        errors: walked.problems.clone(),
        ..Summary::default()
    };
    on_event(Event::Planned {
        to_read: walked.files.len(),
        files: walked.files.len(),
    });
    // Sources to keep even though they are not rewritten: unchanged files and files that exist
    // but could not be read this time.
    let mut keep: HashSet<String> = HashSet::new();
    for problem in &walked.problems {
        let id = problem
            .path
            .strip_prefix(&root.display().to_string())
            .map(|rel| format!("{prefix}{}", rel.trim_start_matches('/')));
        if let Some(id) = id {
            keep.insert(id);
        }
    }

    let chunk_size = chunk_size(&model, options)?;
    let json_field = options.json_field.clone();
    let files = walked.files.clone();
    let stored_for_reader = stored.clone();
    let reader_model = model.clone();
    let reader_cancel = cancel.clone();
    let (tx, rx) = mpsc::sync_channel::<(Staged, Option<FileProblem>, Option<String>)>(64);
    // Stage 1: read, hash, compare, chunk.
    let reader = std::thread::spawn(move || {
        for file in files {
            if reader_cancel.load(Ordering::Relaxed) {
                break;
            }
            let bytes = match std::fs::read(&file.path) {
                Ok(b) => b,
                Err(e) => {
                    let problem = FileProblem {
                        path: file.source_id.clone(),
                        message: format!("unreadable: {e}"),
                        kind: ProblemKind::Error,
                    };
                    if tx
                        .send((Staged::Skipped, Some(problem), Some(file.source_id)))
                        .is_err()
                    {
                        break;
                    }
                    continue;
                }
            };
            let hash = source_hash(&bytes, chunk_size);
            let previous = stored_for_reader.get(&file.source_id);
            if previous == Some(&hash) {
                if tx
                    .send((Staged::Skipped, None, Some(file.source_id)))
                    .is_err()
                {
                    break;
                }
                continue;
            }
            let staged = prepare_file(
                &reader_model,
                &file,
                &bytes,
                hash,
                previous.is_none(),
                json_field.as_deref(),
                chunk_size,
            );
            if tx.send(staged).is_err() {
                break;
            }
        }
    });

    let mut unchanged_ids = HashSet::new();
    let mut written_ids = HashSet::new();
    let pipeline = run_embed_and_write(
        model,
        collection,
        rx,
        options,
        on_event,
        cancel,
        &mut summary,
        &mut written_ids,
        |kind, id| match kind {
            SkipKind::Unchanged => {
                unchanged_ids.insert(id);
            }
            SkipKind::Kept => {
                keep.insert(id);
            }
        },
    )
    .await;
    let _ = reader.join();
    pipeline?;
    summary.unchanged = unchanged_ids.len();

    if cancel.load(Ordering::Relaxed) {
        summary.interrupted = true;
    } else {
        // Everything stored under this root that was neither rewritten, unchanged nor kept is
        // gone: deleted or now ignored files, and files now binary, too large or without text.
        let gone: Vec<String> = stored
            .keys()
            .filter(|id| {
                !written_ids.contains(*id) && !unchanged_ids.contains(*id) && !keep.contains(*id)
            })
            .cloned()
            .collect();
        if !gone.is_empty() {
            collection.delete_sources(&gone).await?;
            summary.deleted = gone.len();
        }
        collection.update_indexes().await?;
    }
    summary.seconds = start.elapsed().as_secs_f64();
    Ok(summary)
}

/// Upserts documents given directly: each replaces the chunks stored under its id; documents
/// whose text is unchanged are skipped.
pub async fn upsert_documents(
    model: Arc<Embedder>,
    collection: &Collection,
    documents: Vec<Document>,
    options: &FolderOptions,
    on_event: &(dyn Fn(Event) + Sync),
    cancel: &CancelFlag,
) -> Result<Summary> {
    let start = Instant::now();
    let chunk_size = chunk_size(&model, options)?;
    let stored: HashMap<String, String> = collection
        .sources()
        .await?
        .into_iter()
        .map(|s| (s.source_id, s.source_hash))
        .collect();
    on_event(Event::Planned {
        to_read: documents.len(),
        files: documents.len(),
    });
    let (tx, rx) = mpsc::sync_channel(64);
    let reader_model = model.clone();
    let reader_cancel = cancel.clone();
    let reader = std::thread::spawn(move || {
        for doc in documents {
            if reader_cancel.load(Ordering::Relaxed) {
                break;
            }
            let hash = source_hash(doc.text.as_bytes(), chunk_size);
            if stored.get(&doc.id) == Some(&hash) {
                if tx.send((Staged::Skipped, None, Some(doc.id))).is_err() {
                    break;
                }
                continue;
            }
            let staged = match chunk(&reader_model, &doc.text, doc.format, chunk_size) {
                Ok(chunks) => (
                    Staged::Source(Prepared {
                        is_new: !stored.contains_key(&doc.id),
                        source_id: doc.id,
                        hash,
                        metadata: doc.metadata.map(|m| m.to_string()),
                        chunks,
                    }),
                    None,
                    None,
                ),
                Err(e) => (
                    Staged::Skipped,
                    Some(FileProblem {
                        path: doc.id,
                        message: e,
                        kind: ProblemKind::Error,
                    }),
                    None,
                ),
            };
            if tx.send(staged).is_err() {
                break;
            }
        }
    });
    let mut summary = Summary::default();
    let mut written = HashSet::new();
    let mut unchanged = 0;
    let result = run_embed_and_write(
        model,
        collection,
        rx,
        options,
        on_event,
        cancel,
        &mut summary,
        &mut written,
        |kind, _| {
            if matches!(kind, SkipKind::Unchanged) {
                unchanged += 1;
            }
        },
    )
    .await;
    summary.unchanged = unchanged;
    let _ = reader.join();
    result?;
    if cancel.load(Ordering::Relaxed) {
        summary.interrupted = true;
    } else {
        collection.update_indexes().await?;
    }
    summary.seconds = start.elapsed().as_secs_f64();
    Ok(summary)
}

fn chunk_size(model: &Embedder, options: &FolderOptions) -> Result<ChunkSize> {
    let default = ChunkSize::for_model(model);
    let tokens = options.chunk_tokens.unwrap_or(default.tokens);
    let size = ChunkSize {
        tokens,
        overlap: options
            .overlap
            .unwrap_or_else(|| ChunkSize::default_overlap(tokens)),
    };
    if size.tokens == 0 || size.overlap >= size.tokens {
        return Err(IngestError::Chunking(format!(
            "chunk size {} with overlap {}: the overlap must be smaller than the chunk size",
            size.tokens, size.overlap
        )));
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

fn prepare_file(
    model: &Embedder,
    file: &FileEntry,
    bytes: &[u8],
    hash: String,
    is_new: bool,
    json_field: Option<&str>,
    size: ChunkSize,
) -> (Staged, Option<FileProblem>, Option<String>) {
    let problem = |kind: ProblemKind, message: String| FileProblem {
        path: file.source_id.clone(),
        message,
        kind,
    };
    let format = Format::of(&file.path);
    match read(&file.path, bytes, json_field) {
        ReadOutcome::Binary => (
            Staged::Skipped,
            Some(problem(ProblemKind::Binary, "binary file: skipped".into())),
            None,
        ),
        ReadOutcome::NoTextField => (
            Staged::Skipped,
            Some(problem(
                ProblemKind::NoText,
                "JSON without the --json-field text field: skipped".into(),
            )),
            None,
        ),
        ReadOutcome::Failed(message) => (
            Staged::Skipped,
            Some(problem(ProblemKind::Error, message)),
            Some(file.source_id.clone()),
        ),
        ReadOutcome::Text { text, lossy } => {
            let warning = lossy.then(|| {
                problem(
                    ProblemKind::LossyUtf8,
                    "invalid UTF-8, decoded with replacement characters".into(),
                )
            });
            match chunk(model, &text, format, size) {
                Ok(chunks) => (
                    Staged::Source(Prepared {
                        source_id: file.source_id.clone(),
                        hash,
                        metadata: None,
                        chunks,
                        is_new,
                    }),
                    warning,
                    None,
                ),
                Err(e) => (
                    Staged::Skipped,
                    Some(problem(ProblemKind::Error, e)),
                    Some(file.source_id.clone()),
                ),
            }
        }
    }
}

enum SkipKind {
    /// Content identical to what is stored.
    Unchanged,
    /// Could not be read or parsed this time: keep what is stored.
    Kept,
}

/// Stages 2 and 3: embedding (on its own thread) and writing (here), connected by a bounded
/// channel. `on_skip` learns which sources were skipped and how.
#[allow(clippy::too_many_arguments)]
async fn run_embed_and_write(
    model: Arc<Embedder>,
    collection: &Collection,
    rx: mpsc::Receiver<(Staged, Option<FileProblem>, Option<String>)>,
    options: &FolderOptions,
    on_event: &(dyn Fn(Event) + Sync),
    cancel: &CancelFlag,
    summary: &mut Summary,
    written_ids: &mut HashSet<String>,
    mut on_skip: impl FnMut(SkipKind, String),
) -> Result<()> {
    let (out_tx, mut out_rx) = tokio::sync::mpsc::channel::<EmbedOutput>(4);
    let embed_batch = options.embed_batch.max(1);
    let embed_cancel = cancel.clone();
    let embedder = std::thread::spawn(move || {
        let embed_options = EmbedOptions {
            prompt_name: model.document_prompt().map(str::to_string),
            ..EmbedOptions::default()
        };
        let mut pending: Vec<Prepared> = Vec::new();
        let mut pending_chunks = 0;
        let mut notes: Vec<Note> = Vec::new();
        let flush = |pending: &mut Vec<Prepared>, notes: &mut Vec<Note>| -> Option<EmbedOutput> {
            if pending.is_empty() && notes.is_empty() {
                return None;
            }
            let texts: Vec<&str> = pending
                .iter()
                .flat_map(|p| p.chunks.iter().map(|c| c.text.as_str()))
                .collect();
            let (vectors, tokens) = match model.embed_counting(&texts, &embed_options) {
                Ok((vectors, counts)) => (vectors, counts.iter().sum::<usize>()),
                Err(e) => return Some(Err(e.into())),
            };
            let mut vectors = vectors.into_iter();
            let mut sources = Vec::with_capacity(pending.len());
            let mut new_flags = Vec::with_capacity(pending.len());
            for p in pending.drain(..) {
                new_flags.push(p.is_new);
                let chunks = p
                    .chunks
                    .into_iter()
                    .enumerate()
                    .map(|(i, c)| ChunkRecord {
                        chunk_index: i as u32,
                        byte_start: c.byte_start as u64,
                        byte_end: c.byte_end as u64,
                        char_start: c.char_start as u64,
                        char_end: c.char_end as u64,
                        text: c.text,
                        vector: vectors.next().expect("one vector per chunk"),
                    })
                    .collect();
                sources.push(SourceChunks {
                    source_id: p.source_id,
                    source_hash: p.hash,
                    metadata: p.metadata,
                    chunks,
                });
            }
            Some(Ok((sources, new_flags, tokens, std::mem::take(notes))))
        };
        for (staged, problem, skipped_id) in rx {
            let had_problem = problem.is_some();
            if let Some(problem) = problem {
                notes.push(Note::Problem(problem, skipped_id.is_some()));
            }
            match staged {
                // Skipped without a problem: unchanged.
                Staged::Skipped => {
                    if let (false, Some(id)) = (had_problem, skipped_id) {
                        notes.push(Note::Skipped(id));
                    }
                }
                Staged::Source(p) => {
                    pending_chunks += p.chunks.len();
                    pending.push(p);
                }
            }
            if pending_chunks >= embed_batch || notes.len() >= 256 {
                if let Some(out) = flush(&mut pending, &mut notes) {
                    let failed = out.is_err();
                    if out_tx.blocking_send(out).is_err() || failed {
                        return;
                    }
                }
                pending_chunks = 0;
            }
            if embed_cancel.load(Ordering::Relaxed) {
                break;
            }
        }
        if !embed_cancel.load(Ordering::Relaxed) {
            if let Some(out) = flush(&mut pending, &mut notes) {
                let _ = out_tx.blocking_send(out);
            }
        }
    });

    let mut buffer: Vec<SourceChunks> = Vec::new();
    let mut buffer_new: Vec<bool> = Vec::new();
    let mut buffered_chunks = 0;
    let mut result = Ok(());
    while let Some(message) = out_rx.recv().await {
        let (sources, new_flags, tokens, notes) = match message {
            Ok(m) => m,
            Err(e) => {
                result = Err(e);
                break;
            }
        };
        for note in notes {
            match note {
                Note::Problem(problem, _) if problem.kind == ProblemKind::LossyUtf8 => {
                    on_event(Event::Warning {
                        source_id: problem.path.clone(),
                        message: problem.message.clone(),
                    });
                    summary.errors.push(problem);
                }
                Note::Problem(problem, keep) => {
                    on_event(Event::Read {
                        source_id: problem.path.clone(),
                    });
                    if problem.kind == ProblemKind::Binary {
                        summary.skipped_binary += 1;
                    } else if problem.kind == ProblemKind::NoText {
                        summary.skipped_no_text += 1;
                    } else {
                        if keep {
                            on_skip(SkipKind::Kept, problem.path.clone());
                        }
                        on_event(Event::Warning {
                            source_id: problem.path.clone(),
                            message: problem.message.clone(),
                        });
                        summary.errors.push(problem);
                    }
                }
                Note::Skipped(id) => {
                    // A source id with no problem attached is an unchanged file.
                    on_event(Event::Read {
                        source_id: id.clone(),
                    });
                    on_skip(SkipKind::Unchanged, id);
                }
            }
        }
        let chunks: usize = sources.iter().map(|s| s.chunks.len()).sum();
        if !sources.is_empty() {
            on_event(Event::Embedded { chunks, tokens });
        }
        summary.tokens += tokens;
        for s in &sources {
            on_event(Event::Read {
                source_id: s.source_id.clone(),
            });
        }
        buffered_chunks += chunks;
        buffer.extend(sources);
        buffer_new.extend(new_flags);
        if buffered_chunks >= options.write_batch {
            if let Err(e) = write(
                collection,
                &mut buffer,
                &mut buffer_new,
                summary,
                written_ids,
                on_event,
            )
            .await
            {
                result = Err(e);
                break;
            }
            buffered_chunks = 0;
        }
    }
    if result.is_ok() {
        result = write(
            collection,
            &mut buffer,
            &mut buffer_new,
            summary,
            written_ids,
            on_event,
        )
        .await;
    }
    drop(out_rx);
    let _ = embedder.join();
    result
}

/// One embedded batch: sources with their vectors, whether each is new, tokens run, and the
/// notes about skipped sources that arrived with it.
type EmbedOutput = Result<(Vec<SourceChunks>, Vec<bool>, usize, Vec<Note>)>;

enum Note {
    /// A problem with a source; `true` when the stored chunks must be kept.
    Problem(FileProblem, bool),
    Skipped(String),
}

async fn write(
    collection: &Collection,
    buffer: &mut Vec<SourceChunks>,
    new_flags: &mut Vec<bool>,
    summary: &mut Summary,
    written_ids: &mut HashSet<String>,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<()> {
    if buffer.is_empty() {
        return Ok(());
    }
    collection.replace_sources(buffer).await?;
    let chunks: usize = buffer.iter().map(|s| s.chunks.len()).sum();
    summary.chunks += chunks;
    for is_new in new_flags.iter() {
        if *is_new {
            summary.added += 1;
        } else {
            summary.updated += 1;
        }
    }
    on_event(Event::Written {
        sources: buffer.len(),
        chunks,
    });
    written_ids.extend(buffer.iter().map(|s| s.source_id.clone()));
    buffer.clear();
    new_flags.clear();
    Ok(())
}
