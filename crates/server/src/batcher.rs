//! The one owner of the model: a queue in front of it, with two lanes. Interactive requests
//! (`/embed`, `/v1/embeddings`, search queries) wait in a bounded lane — full is answered at
//! once (429) — and are merged into batches up to a token budget; bulk work (`POST /documents`
//! and ingest jobs, through [`BulkEmbed`], the ingest crate's `Embed`) waits in a small lane that blocks its sender when
//! full, so an ingest runs exactly as fast as the model has room for. One thread takes work,
//! interactive first, but never more than [`BULK_EVERY`] interactive batches in a row while
//! bulk work waits, so bulk is never starved. Bulk work runs in slices of about
//! [`BULK_SLICE_TOKENS`], so an interactive request waits behind at most one slice, never
//! behind a whole ingest batch. It runs the model (the async runtime never does)
//! and answers each job on its oneshot channel. Errors are [`QueueError`]s; what HTTP status
//! each one is decided at the edge (`error.rs`).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use fathom_model::{EmbedOptions, Embedder, ModelError};
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;

/// Interactive batches the worker may run in a row while bulk work waits.
pub const BULK_EVERY: usize = 4;

/// Bulk jobs that may wait at once (each is one ingest's batch of ~32 chunks).
const BULK_SLOTS: usize = 2;

/// Estimated tokens of one slice of bulk work: the longest an interactive request waits behind
/// an ingest (one 256-token chunk of all-MiniLM-L6-v2, about 35 ms on two cores). Packed
/// sequences make a forward pass cost about the same per token at any batch size, so slicing
/// costs the ingest little.
const BULK_SLICE_TOKENS: usize = 256;

/// How long the worker, having just answered interactive requests, waits for more before it
/// starts a bulk slice: clients answered a moment ago are about to send their next request.
const INTERACTIVE_GRACE: std::time::Duration = std::time::Duration::from_millis(2);

/// Vectors of one request, with the tokens the model ran for each input.
#[derive(Debug)]
pub struct Embedded {
    pub vectors: Vec<Vec<f32>>,
    pub tokens: Vec<usize>,
}

/// Why the queue gave no vectors.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the embedding queue is full ({0} requests waiting); retry shortly")]
    Full(usize),
    #[error("the embedding queue is closed (the server is shutting down)")]
    Closed,
    #[error("the model failed on this request and was restarted: {0}")]
    Panicked(String),
    #[error(transparent)]
    Model(#[from] ModelError),
}

struct Job {
    texts: Vec<String>,
    options: EmbedOptions,
    reply: oneshot::Sender<Result<Embedded, QueueError>>,
}

/// A handle to the model thread; cheap to clone.
#[derive(Debug, Clone)]
pub struct Batcher {
    tx: mpsc::Sender<Job>,
    bulk_tx: mpsc::Sender<Job>,
    depth: Arc<AtomicUsize>,
    alive: Arc<AtomicBool>,
    capacity: usize,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("inputs", &self.texts.len())
            .finish()
    }
}

/// Marks the queue dead when the worker thread ends for any reason.
struct AliveGuard(Arc<AtomicBool>);

impl Drop for AliveGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

impl Batcher {
    /// Starts the model thread. `capacity` interactive requests may wait; a batch holds about
    /// `batch_tokens` tokens (estimated from text length before tokenizing). Call it within a
    /// tokio runtime (the worker waits on both lanes through the runtime's handle).
    pub fn start(
        model: Arc<Embedder>,
        capacity: usize,
        batch_tokens: usize,
        metrics: Arc<Metrics>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let (bulk_tx, bulk_rx) = mpsc::channel(BULK_SLOTS);
        let depth = Arc::new(AtomicUsize::new(0));
        let alive = Arc::new(AtomicBool::new(true));
        let worker = Worker {
            model,
            rx,
            bulk_rx,
            batch_tokens,
            depth: depth.clone(),
            metrics: metrics.clone(),
            handle: tokio::runtime::Handle::current(),
        };
        let guard = AliveGuard(alive.clone());
        std::thread::Builder::new()
            .name("fathom-embed".into())
            .spawn(move || {
                let _guard = guard;
                worker.run()
            })
            .expect("spawning the embedding thread");
        Self {
            tx,
            bulk_tx,
            depth,
            alive,
            capacity,
            metrics,
        }
    }

    /// Interactive requests waiting for the model now.
    pub fn depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }

    /// Whether the model thread is running (`/health` is 503 once it is not).
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Relaxed)
    }

    /// Queues `texts` in the interactive lane and waits for their vectors. Never blocks the
    /// runtime: a full lane is [`QueueError::Full`] at once.
    pub async fn embed(
        &self,
        texts: Vec<String>,
        options: EmbedOptions,
    ) -> Result<Embedded, QueueError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            texts,
            options,
            reply,
        };
        self.depth.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.tx.try_send(job) {
            self.depth.fetch_sub(1, Ordering::Relaxed);
            return Err(match e {
                mpsc::error::TrySendError::Full(_) => {
                    self.metrics.rejected_overloaded.inc();
                    QueueError::Full(self.capacity)
                }
                mpsc::error::TrySendError::Closed(_) => QueueError::Closed,
            });
        }
        self.metrics.queue_depth.set(self.depth() as i64);
        answer.await.unwrap_or(Err(QueueError::Closed))
    }

    /// Queues `texts` in the bulk lane and waits for their vectors. Blocking: call it from a
    /// thread outside the runtime (an ingest's embedding stage); it waits while the lane is full.
    pub fn embed_bulk_blocking(
        &self,
        texts: Vec<String>,
        options: EmbedOptions,
    ) -> Result<Embedded, QueueError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            texts,
            options,
            reply,
        };
        self.bulk_tx
            .blocking_send(job)
            .map_err(|_| QueueError::Closed)?;
        answer.blocking_recv().unwrap_or(Err(QueueError::Closed))
    }
}

/// The model as an ingest sees it inside the server: its tokenizer and window from the model,
/// its embeddings from the queue's bulk lane.
#[derive(Debug, Clone)]
pub struct BulkEmbed {
    pub model: Arc<Embedder>,
    pub batcher: Batcher,
}

impl fathom_ingest::Embed for BulkEmbed {
    fn tokenizer(&self) -> &tokenizers::Tokenizer {
        self.model.tokenizer()
    }

    fn max_seq_length(&self) -> usize {
        self.model.max_seq_length()
    }

    fn embed_documents(
        &self,
        texts: &[&str],
    ) -> Result<fathom_ingest::Embedded, fathom_ingest::EmbedError> {
        let options = EmbedOptions {
            prompt_name: self.model.document_prompt().map(str::to_string),
            ..EmbedOptions::default()
        };
        let texts = texts.iter().map(|t| t.to_string()).collect();
        match self.batcher.embed_bulk_blocking(texts, options) {
            Ok(e) => Ok(fathom_ingest::Embedded {
                vectors: e.vectors,
                tokens: e.tokens.iter().sum(),
            }),
            Err(QueueError::Model(e)) => Err(e.into()),
            Err(e) => Err(fathom_ingest::EmbedError::Unavailable(e.to_string())),
        }
    }
}

/// A rough token count used only to size batches (the embedder counts exactly).
fn estimated_tokens(texts: &[String], max_seq_length: usize) -> usize {
    texts
        .iter()
        .map(|t| (t.len() / 4 + 2).min(max_seq_length))
        .sum()
}

struct Worker {
    model: Arc<Embedder>,
    rx: mpsc::Receiver<Job>,
    bulk_rx: mpsc::Receiver<Job>,
    batch_tokens: usize,
    depth: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
    handle: tokio::runtime::Handle,
}

/// A bulk job being worked through a slice at a time.
struct BulkWork {
    job: Job,
    done: Embedded,
}

impl BulkWork {
    fn new(job: Job) -> Self {
        Self {
            job,
            done: Embedded {
                vectors: Vec::new(),
                tokens: Vec::new(),
            },
        }
    }
}

impl Worker {
    fn run(mut self) {
        let mut streak = 0;
        let mut bulk: Option<BulkWork> = None;
        loop {
            // Interactive work first, but a bulk slice after BULK_EVERY interactive batches in a
            // row while bulk work waits, so an ingest always moves.
            if streak >= BULK_EVERY {
                if bulk.is_none() {
                    bulk = self.bulk_rx.try_recv().ok().map(BulkWork::new);
                }
                if let Some(work) = bulk.take() {
                    streak = 0;
                    bulk = self.run_bulk_slice(work);
                    continue;
                }
            }
            if let Ok(first) = self.rx.try_recv() {
                streak += 1;
                self.run_interactive(first);
                continue;
            }
            if streak > 0 && (bulk.is_some() || !self.bulk_rx.is_empty()) {
                let rx = &mut self.rx;
                let soon = self
                    .handle
                    .block_on(async { tokio::time::timeout(INTERACTIVE_GRACE, rx.recv()).await });
                if let Ok(Some(first)) = soon {
                    streak += 1;
                    self.run_interactive(first);
                    continue;
                }
            }
            if let Some(work) = bulk.take() {
                streak = 0;
                bulk = self.run_bulk_slice(work);
                continue;
            }
            // Nothing in hand: wait for either lane.
            let (rx, bulk_rx) = (&mut self.rx, &mut self.bulk_rx);
            let next = self.handle.block_on(async {
                tokio::select! {
                    biased;
                    job = rx.recv() => job.map(Ok),
                    job = bulk_rx.recv() => job.map(Err),
                }
            });
            match next {
                Some(Ok(first)) => {
                    streak += 1;
                    self.run_interactive(first);
                }
                Some(Err(job)) => bulk = Some(BulkWork::new(job)),
                None => return,
            }
        }
    }

    /// Runs `first` with whatever else waits in the interactive lane, up to the token budget.
    fn run_interactive(&mut self, first: Job) {
        let max_seq = self.model.max_seq_length();
        let take = |job: &Job| {
            self.depth.fetch_sub(1, Ordering::Relaxed);
            estimated_tokens(&job.texts, max_seq)
        };
        let mut budget = take(&first);
        let mut jobs = vec![first];
        while budget < self.batch_tokens {
            match self.rx.try_recv() {
                Ok(job) => {
                    budget += take(&job);
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        self.metrics
            .queue_depth
            .set(self.depth.load(Ordering::Relaxed) as i64);
        // A request whose client is gone (timeout, disconnect) is not worth running.
        jobs.retain(|j| !j.reply.is_closed());
        for group in group_by_options(jobs) {
            self.run_group(group);
        }
    }

    /// Runs the next slice of a bulk job (about [`BULK_SLICE_TOKENS`], at least one text), so
    /// that an interactive request never waits behind more than one slice. Returns the work
    /// left, or `None` once the job is answered (done, failed, or its sender gone).
    fn run_bulk_slice(&self, mut work: BulkWork) -> Option<BulkWork> {
        if work.job.reply.is_closed() {
            return None;
        }
        let start = work.done.vectors.len();
        let max_seq = self.model.max_seq_length();
        let estimate =
            |i: usize| estimated_tokens(std::slice::from_ref(&work.job.texts[i]), max_seq);
        let mut end = start;
        let mut budget = 0;
        while end < work.job.texts.len()
            && (end == start || budget + estimate(end) <= BULK_SLICE_TOKENS)
        {
            budget += estimate(end);
            end += 1;
        }
        let slice = [work.job.texts[start..end].to_vec()];
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_texts(&self.model, &slice, &work.job.options, &self.metrics)
        }));
        let answer = match outcome {
            Ok(mut answers) => answers.pop().unwrap_or(Err(QueueError::Closed)),
            Err(_) => {
                tracing::error!("the model panicked on an ingest batch; that ingest fails");
                Err(QueueError::Panicked("a panic in the model".into()))
            }
        };
        match answer {
            Ok(part) => {
                work.done.vectors.extend(part.vectors);
                work.done.tokens.extend(part.tokens);
                if end < work.job.texts.len() {
                    return Some(work);
                }
                let _ = work.job.reply.send(Ok(work.done));
            }
            Err(e) => {
                let _ = work.job.reply.send(Err(e));
            }
        }
        None
    }

    /// Runs one group; a panic in the model fails this group's requests, not the thread.
    fn run_group(&self, group: Vec<Job>) {
        let replies: Vec<oneshot::Sender<Result<Embedded, QueueError>>>;
        let texts: Vec<Vec<String>>;
        let options = group[0].options.clone();
        (texts, replies) = group.into_iter().map(|j| (j.texts, j.reply)).unzip();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_texts(&self.model, &texts, &options, &self.metrics)
        }));
        match outcome {
            Ok(answers) => {
                for (reply, answer) in replies.into_iter().zip(answers) {
                    let _ = reply.send(answer);
                }
            }
            Err(_) => {
                tracing::error!(
                    "the model panicked on a batch; its requests fail, the queue goes on"
                );
                for reply in replies {
                    let _ = reply.send(Err(QueueError::Panicked("a panic in the model".into())));
                }
            }
        }
    }
}

/// One model call for all `texts` (one entry per request); when it fails, each request alone.
fn run_texts(
    model: &Embedder,
    requests: &[Vec<String>],
    options: &EmbedOptions,
    metrics: &Metrics,
) -> Vec<Result<Embedded, QueueError>> {
    let texts: Vec<&str> = requests
        .iter()
        .flat_map(|r| r.iter().map(String::as_str))
        .collect();
    let started = Instant::now();
    match model.embed_counting(&texts, options) {
        Ok((vectors, tokens)) => {
            metrics.record_batch(texts.len(), tokens.iter().sum(), started.elapsed());
            let mut vectors = vectors.into_iter();
            let mut tokens = tokens.into_iter();
            requests
                .iter()
                .map(|r| {
                    Ok(Embedded {
                        vectors: vectors.by_ref().take(r.len()).collect(),
                        tokens: tokens.by_ref().take(r.len()).collect(),
                    })
                })
                .collect()
        }
        // One bad request (an over-long input with truncation off, an unknown prompt) must not
        // fail the others it was batched with: run each alone so each gets its own answer.
        Err(_) if requests.len() > 1 => requests
            .iter()
            .flat_map(|r| run_texts(model, std::slice::from_ref(r), options, metrics))
            .collect(),
        Err(e) => vec![Err(e.into())],
    }
}

/// Jobs with equal options can share one model call.
fn group_by_options(jobs: Vec<Job>) -> Vec<Vec<Job>> {
    let mut groups: Vec<Vec<Job>> = Vec::new();
    for job in jobs {
        match groups.iter_mut().find(|g| g[0].options == job.options) {
            Some(g) => g.push(job),
            None => groups.push(vec![job]),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(normalize: Option<bool>) -> Job {
        let (reply, _) = oneshot::channel();
        Job {
            texts: vec!["x".into()],
            options: EmbedOptions {
                normalize,
                ..EmbedOptions::default()
            },
            reply,
        }
    }

    #[test]
    fn jobs_with_equal_options_share_a_group_in_arrival_order() {
        let groups = group_by_options(vec![job(None), job(Some(false)), job(None)]);
        let shapes: Vec<Vec<Option<bool>>> = groups
            .iter()
            .map(|g| g.iter().map(|j| j.options.normalize).collect())
            .collect();
        assert_eq!(shapes, vec![vec![None, None], vec![Some(false)]]);
    }

    #[test]
    fn token_estimate_is_capped_by_the_model_window() {
        let texts = vec!["a".repeat(4000), "abcd".into()];
        assert_eq!(estimated_tokens(&texts, 256), 256 + 3);
    }
}
