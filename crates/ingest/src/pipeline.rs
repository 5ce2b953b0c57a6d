//! The three stages that carry out a plan, each on its own thread or task, connected by bounded
//! channels: reading (read, parse, chunk — one source at a time, a panic caught per source),
//! embedding (batches of chunks through [`Embed`]) and writing (commits of whole sources, by size
//! and by time, so a crash loses at most a few seconds of work).
//!
//! Each stage ends its stream with an explicit `Done`; a stream that ends without it means the
//! stage before stopped early, and the run is reported as stopped, never as complete — so its
//! caller deletes nothing.

use std::sync::{mpsc, Arc};
use std::time::Instant;

use fathom_store::{ChunkRecord, Collection, SourceChunks};

use fathom_docs::{
    catch_panic, read_file, source_hash, truncated_message, Body, ChunkSize, ChunkTokenizer,
    FileEntry, FileText, Files, Format, ParseLimits, TextChunk, LOSSY_UTF8,
};

use crate::embed::Embed;
use crate::error::EmbedError;
use crate::report::{Event, FileProblem, ProblemKind, Summary};
use crate::{CancellationToken, FolderOptions};

/// One source to read, chunk, embed and write.
#[derive(Debug)]
pub(crate) struct Work {
    pub source_id: String,
    pub is_new: bool,
    pub metadata: Option<String>,
    pub input: Input,
}

#[derive(Debug)]
pub(crate) enum Input {
    File(FileEntry),
    Text { text: String, format: Format },
}

/// How a file of some format fared in the reading stage (for the per-format counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tallied {
    Read,
    Skipped,
    Failed,
}

/// A source read and chunked.
struct Prepared {
    source_id: String,
    hash: String,
    metadata: Option<String>,
    chunks: Vec<TextChunk>,
    is_new: bool,
}

/// What the reading stage hands on, in order.
enum Staged {
    Source(Prepared),
    /// No text to keep (binary, JSON without the text field): not part of the collection.
    Empty {
        source_id: String,
        is_new: bool,
        problem: FileProblem,
    },
    /// Failed to read, parse or chunk: what is stored for it stays.
    Failed(FileProblem),
    /// A caveat about a source that is still ingested.
    Warning(FileProblem),
    /// A file of this format was read, skipped or failed to parse.
    Tally {
        format: &'static str,
        outcome: Tallied,
    },
    /// Every source was handed on.
    Done,
}

/// What the embedding stage hands on, in order.
enum Embedded {
    Batch {
        sources: Vec<(SourceChunks, bool)>,
        tokens: usize,
        /// Sources left out or failed since the last batch, and warnings.
        notes: Vec<Staged>,
    },
    /// The stage cannot go on (the embedding service is gone, the reader stopped early).
    Stop(String),
    Done,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Completed,
    Cancelled,
    Stopped(String),
}

/// Reads and chunks one source at a time (stage 1).
pub(crate) struct Reader {
    pub model: Arc<dyn Embed>,
    /// The model's tokenizer, prepared for chunking once per run.
    pub tokens: Arc<ChunkTokenizer>,
    pub files: Option<Files>,
    pub json_field: Option<String>,
    pub parse: ParseLimits,
    pub size: ChunkSize,
    pub max_chunks: usize,
}

impl Reader {
    /// A reader for `options`; `files` is the folder's, `None` for documents given as text.
    pub fn new(
        model: Arc<dyn Embed>,
        files: Option<Files>,
        options: &FolderOptions,
        size: ChunkSize,
    ) -> Self {
        Self {
            tokens: model.chunk_tokenizer(),
            model,
            files,
            json_field: options.json_field.clone(),
            parse: options.parse.clone(),
            size,
            max_chunks: options.max_chunks_per_file.max(1),
        }
    }

    /// Reads, parses and chunks one source. Blocking (file I/O, parsing, tokenizing).
    fn prepare(&self, work: Work) -> Vec<Staged> {
        let id = work.source_id.clone();
        let problem = |kind, message: String| FileProblem {
            path: id.clone(),
            message,
            kind,
        };
        let mut out = Vec::new();
        let (body, hash) = match work.input {
            Input::Text { text, format } => {
                let hash = source_hash(text.as_bytes(), self.size);
                (Body::Text(text, format), hash)
            }
            Input::File(file) => {
                let bytes = match self.files.as_ref().map(|f| f.read(&file)) {
                    Some(Ok(bytes)) => bytes,
                    Some(Err(e)) => {
                        return vec![Staged::Failed(problem(ProblemKind::Error, e.to_string()))]
                    }
                    None => unreachable!("a folder's reader has its files"),
                };
                let hash = source_hash(&bytes, self.size);
                let format = Format::of(&file.path);
                let tally = |outcome| Staged::Tally {
                    format: format.name(),
                    outcome,
                };
                match read_file(&file.path, &bytes, self.json_field.as_deref(), &self.parse) {
                    FileText::Body { body, lossy } => {
                        if lossy {
                            out.push(Staged::Warning(problem(
                                ProblemKind::LossyUtf8,
                                LOSSY_UTF8.into(),
                            )));
                        }
                        out.push(tally(Tallied::Read));
                        (body, hash)
                    }
                    FileText::Skipped { kind, message } => {
                        return vec![
                            tally(Tallied::Skipped),
                            Staged::Empty {
                                source_id: id.clone(),
                                is_new: work.is_new,
                                problem: problem(kind, message),
                            },
                        ]
                    }
                    FileText::Failed(message) => {
                        return vec![
                            tally(Tallied::Failed),
                            Staged::Failed(problem(ProblemKind::Error, message)),
                        ]
                    }
                }
            }
        };
        let chunked = body.chunk(&self.tokens, self.size, self.max_chunks);
        match chunked {
            Ok(chunked) => {
                if chunked.truncated {
                    out.push(Staged::Warning(problem(
                        ProblemKind::Truncated,
                        truncated_message(self.max_chunks),
                    )));
                }
                out.push(Staged::Source(Prepared {
                    source_id: work.source_id,
                    hash,
                    metadata: work.metadata,
                    chunks: chunked.chunks,
                    is_new: work.is_new,
                }));
            }
            Err(e) => out.push(Staged::Failed(problem(ProblemKind::Error, e.to_string()))),
        }
        out
    }
}

/// Runs the three stages over `work`, adding what happened to `summary`.
pub(crate) async fn run(
    reader: Reader,
    work: Vec<Work>,
    collection: &Collection,
    options: &FolderOptions,
    on_event: &(dyn Fn(Event) + Sync),
    cancel: &CancellationToken,
    summary: &mut Summary,
) -> Outcome {
    let model = reader.model.clone();
    let (staged_tx, staged_rx) = mpsc::sync_channel::<Staged>(64);
    let reader_cancel = cancel.clone();
    let reading = std::thread::spawn(move || {
        // Sources are read and chunked a few at a time on the model's thread pool, in order:
        // tokenizing for chunk sizes is most of a fast model's ingest, and one thread of it left
        // the other core idle. A window of two per thread bounds what is held at once.
        use rayon::prelude::*;
        let window = 2 * rayon::current_num_threads().max(1);
        let mut work = work.into_iter();
        loop {
            let batch: Vec<Work> = work.by_ref().take(window).collect();
            if batch.is_empty() || reader_cancel.is_cancelled() {
                break;
            }
            let staged: Vec<Vec<Staged>> = batch
                .into_par_iter()
                .map(|item| {
                    let id = item.source_id.clone();
                    catch_panic("reader", || reader.prepare(item)).unwrap_or_else(|message| {
                        vec![Staged::Failed(FileProblem {
                            path: id,
                            message,
                            kind: ProblemKind::Error,
                        })]
                    })
                })
                .collect();
            for s in staged.into_iter().flatten() {
                if staged_tx.send(s).is_err() {
                    return;
                }
            }
        }
        if !reader_cancel.is_cancelled() {
            let _ = staged_tx.send(Staged::Done);
        }
    });
    let (embedded_tx, embedded_rx) = tokio::sync::mpsc::channel::<Embedded>(4);
    let embed_batch = options.embed_batch.max(1);
    let embed_cancel = cancel.clone();
    let embedding = std::thread::spawn(move || {
        embed_stage(
            model.as_ref(),
            staged_rx,
            &embedded_tx,
            embed_batch,
            &embed_cancel,
        )
    });
    let outcome = write_stage(collection, embedded_rx, options, on_event, cancel, summary).await;
    // Both threads end once the channels they write to are closed.
    let _ = reading.join();
    let _ = embedding.join();
    outcome
}

/// Stage 2: batches of sources through the model. A batch that fails is retried one source at a
/// time, so one bad source fails alone; an unavailable embedding service stops the run.
fn embed_stage(
    model: &dyn Embed,
    input: mpsc::Receiver<Staged>,
    output: &tokio::sync::mpsc::Sender<Embedded>,
    embed_batch: usize,
    cancel: &CancellationToken,
) {
    let mut pending: Vec<Prepared> = Vec::new();
    let mut pending_chunks = 0;
    let mut notes: Vec<Staged> = Vec::new();
    let mut done = false;
    for staged in input.iter() {
        match staged {
            Staged::Source(p) => {
                pending_chunks += p.chunks.len();
                pending.push(p);
            }
            Staged::Done => {
                done = true;
                break;
            }
            other => notes.push(other),
        }
        if pending_chunks >= embed_batch || notes.len() >= 256 {
            match embed_pending(model, &mut pending, &mut notes) {
                Ok(batch) => {
                    if output.blocking_send(batch).is_err() {
                        return;
                    }
                }
                Err(reason) => {
                    let _ = output.blocking_send(Embedded::Stop(reason));
                    return;
                }
            }
            pending_chunks = 0;
        }
        if cancel.is_cancelled() {
            return;
        }
    }
    if !done {
        if !cancel.is_cancelled() {
            let _ = output.blocking_send(Embedded::Stop("the reader stopped unexpectedly".into()));
        }
        return;
    }
    match embed_pending(model, &mut pending, &mut notes) {
        Ok(batch) => {
            if output.blocking_send(batch).is_ok() {
                let _ = output.blocking_send(Embedded::Done);
            }
        }
        Err(reason) => {
            let _ = output.blocking_send(Embedded::Stop(reason));
        }
    }
}

/// Why an embedding call gave no vectors.
enum EmbedFailure {
    /// The embedding service is gone: the run cannot go on.
    Gone(String),
    /// These texts failed (a model error, a panic): retried alone, then reported per source.
    Failed(String),
}

fn embed_texts(
    model: &dyn Embed,
    texts: &[&str],
    token_ids: &[Option<&[u32]>],
) -> Result<crate::Embedded, EmbedFailure> {
    let embedded = match catch_panic("embedding model", || model.embed_chunks(texts, token_ids)) {
        Err(panic) => return Err(EmbedFailure::Failed(panic)),
        Ok(Err(EmbedError::Unavailable(reason))) => return Err(EmbedFailure::Gone(reason)),
        Ok(Err(e)) => return Err(EmbedFailure::Failed(e.to_string())),
        Ok(Ok(e)) => e,
    };
    if embedded.vectors.len() != texts.len() {
        return Err(EmbedFailure::Gone(format!(
            "the model returned {} vectors for {} texts",
            embedded.vectors.len(),
            texts.len()
        )));
    }
    Ok(embedded)
}

/// Embeds the pending sources; `Err` only when the embedding service is gone.
fn embed_pending(
    model: &dyn Embed,
    pending: &mut Vec<Prepared>,
    notes: &mut Vec<Staged>,
) -> Result<Embedded, String> {
    let sources = std::mem::take(pending);
    let (texts, ids) = fathom_docs::model_inputs(sources.iter().flat_map(|p| &p.chunks));
    let mut out = Vec::with_capacity(sources.len());
    let mut tokens = 0;
    match embed_texts(model, &texts, &ids) {
        Ok(e) => {
            tokens = e.tokens;
            let mut vectors = e.vectors.into_iter();
            for p in sources {
                let v: Vec<Vec<f32>> = vectors.by_ref().take(p.chunks.len()).collect();
                out.push(with_vectors(p, v));
            }
        }
        Err(EmbedFailure::Gone(reason)) => return Err(reason),
        Err(EmbedFailure::Failed(_)) => {
            for p in sources {
                let (texts, ids) = fathom_docs::model_inputs(&p.chunks);
                match embed_texts(model, &texts, &ids) {
                    Ok(e) => {
                        tokens += e.tokens;
                        out.push(with_vectors(p, e.vectors));
                    }
                    Err(EmbedFailure::Gone(reason)) => return Err(reason),
                    Err(EmbedFailure::Failed(message)) => notes.push(Staged::Failed(FileProblem {
                        path: p.source_id,
                        message: format!("embedding failed: {message}"),
                        kind: ProblemKind::Error,
                    })),
                }
            }
        }
    }
    Ok(Embedded::Batch {
        sources: out,
        tokens,
        notes: std::mem::take(notes),
    })
}

fn with_vectors(p: Prepared, vectors: Vec<Vec<f32>>) -> (SourceChunks, bool) {
    let chunks = p
        .chunks
        .into_iter()
        .zip(vectors)
        .enumerate()
        .map(|(i, (c, vector))| ChunkRecord {
            chunk_index: i as u32,
            byte_start: c.byte_start as u64,
            byte_end: c.byte_end as u64,
            char_start: c.char_start as u64,
            char_end: c.char_end as u64,
            text: c.text,
            location: c.location,
            vector,
        })
        .collect();
    (
        SourceChunks {
            source_id: p.source_id,
            source_hash: p.hash,
            metadata: p.metadata,
            chunks,
        },
        p.is_new,
    )
}

/// Stage 3: commits of whole sources, every `write_batch` chunks or `commit_every`, whichever
/// comes first.
async fn write_stage(
    collection: &Collection,
    mut input: tokio::sync::mpsc::Receiver<Embedded>,
    options: &FolderOptions,
    on_event: &(dyn Fn(Event) + Sync),
    cancel: &CancellationToken,
    summary: &mut Summary,
) -> Outcome {
    let mut buffer: Vec<(SourceChunks, bool)> = Vec::new();
    let mut buffered_chunks = 0;
    let mut last_commit = Instant::now();
    let mut end: Option<Outcome> = None;
    while let Some(message) = input.recv().await {
        let (sources, tokens, notes) = match message {
            Embedded::Batch {
                sources,
                tokens,
                notes,
            } => (sources, tokens, notes),
            Embedded::Stop(reason) => {
                end = Some(Outcome::Stopped(reason));
                break;
            }
            Embedded::Done => {
                end = Some(Outcome::Completed);
                break;
            }
        };
        for note in notes {
            if let Some(gone) = tally(note, summary, on_event) {
                // Stored before, no text now: its chunks go with the next commit.
                buffer.push((gone, false));
            }
        }
        let chunks: usize = sources.iter().map(|(s, _)| s.chunks.len()).sum();
        if !sources.is_empty() {
            on_event(Event::Embedded { chunks, tokens });
        }
        summary.tokens += tokens;
        for (s, _) in &sources {
            on_event(Event::Read {
                source_id: s.source_id.clone(),
            });
        }
        buffered_chunks += chunks;
        buffer.extend(sources);
        if buffered_chunks >= options.write_batch
            || (!buffer.is_empty() && last_commit.elapsed() >= options.commit_every)
        {
            if let Err(e) = commit(collection, &mut buffer, summary, on_event).await {
                return Outcome::Stopped(format!("writing to the store: {e}"));
            }
            buffered_chunks = 0;
            last_commit = Instant::now();
        }
    }
    // Whole sources embedded so far are kept, however the run ends.
    if let Err(e) = commit(collection, &mut buffer, summary, on_event).await {
        return Outcome::Stopped(format!("writing to the store: {e}"));
    }
    match end {
        Some(outcome) => outcome,
        None if cancel.is_cancelled() => Outcome::Cancelled,
        None => Outcome::Stopped("the embedder stopped unexpectedly".into()),
    }
}

/// Counts what the embed stage noted about a source that brought no chunks (empty, failed, a
/// warning, its format's tally) into `summary`, with its events; a source stored before that has
/// no text now comes back, as the empty replacement that removes its chunks.
fn tally(
    note: Staged,
    summary: &mut Summary,
    on_event: &(dyn Fn(Event) + Sync),
) -> Option<SourceChunks> {
    match note {
        Staged::Empty {
            source_id,
            is_new,
            problem,
        } => {
            on_event(Event::Read {
                source_id: source_id.clone(),
            });
            match problem.kind {
                ProblemKind::Binary => summary.skipped_binary += 1,
                _ => summary.skipped_no_text += 1,
            }
            if !is_new {
                summary.deleted += 1;
                return Some(SourceChunks {
                    source_id,
                    source_hash: String::new(),
                    metadata: None,
                    chunks: Vec::new(),
                });
            }
        }
        Staged::Failed(problem) => {
            on_event(Event::Read {
                source_id: problem.path.clone(),
            });
            on_event(Event::Warning {
                source_id: problem.path.clone(),
                message: problem.message.clone(),
            });
            summary.errors.push(problem);
        }
        Staged::Warning(problem) => {
            on_event(Event::Warning {
                source_id: problem.path.clone(),
                message: problem.message.clone(),
            });
            summary.errors.push(problem);
        }
        Staged::Tally { format, outcome } => {
            let counts = summary.formats.entry(format.to_string()).or_default();
            match outcome {
                Tallied::Read => counts.read += 1,
                Tallied::Skipped => counts.skipped += 1,
                Tallied::Failed => counts.failed += 1,
            }
        }
        Staged::Source(_) | Staged::Done => {}
    }
    None
}

async fn commit(
    collection: &Collection,
    buffer: &mut Vec<(SourceChunks, bool)>,
    summary: &mut Summary,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<(), fathom_store::StoreError> {
    if buffer.is_empty() {
        return Ok(());
    }
    let (sources, new_flags): (Vec<SourceChunks>, Vec<bool>) =
        std::mem::take(buffer).into_iter().unzip();
    tracing::debug!(sources = sources.len(), "committing");
    collection.replace_sources(&sources).await?;
    let chunks: usize = sources.iter().map(|s| s.chunks.len()).sum();
    summary.chunks += chunks;
    for (s, is_new) in sources.iter().zip(new_flags) {
        if s.chunks.is_empty() {
            continue;
        }
        if is_new {
            summary.added += 1;
        } else {
            summary.updated += 1;
        }
    }
    on_event(Event::Written {
        sources: sources.len(),
        chunks,
    });
    Ok(())
}
