//! The one owner of the model: a queue in front of it, with two lanes. Interactive requests
//! (`/embed`, `/v1/embeddings`, search queries) wait in a bounded lane — full is answered at
//! once (429) — and are merged into batches up to a token budget; bulk work (`POST /documents`
//! and ingest jobs, through [`BulkEmbed`], the ingest crate's `Embed`) waits in a small lane that
//! blocks its sender when full, so an ingest runs exactly as fast as the model has room for.
//!
//! Each lane has its own thread, and both run the one model (its kernels share one rayon pool,
//! where two forward passes interleave operation by operation). Interactive requests never wait
//! for bulk work: the interactive thread takes them as they come. The bulk thread runs its work
//! in slices of about [`BULK_SLICE_TOKENS`], and only while the interactive side is quiet — no
//! request waiting or running, no search in flight (an [`InteractiveScope`] from embedding the
//! query to the store's answer, so the store's part of a search has the CPU too), none answered
//! in the last [`INTERACTIVE_GRACE`] — or once it has waited [`BULK_MAX_WAIT`], so bulk work is
//! never starved and an interactive request shares the CPU with at most one slice. Errors are
//! [`QueueError`]s; what HTTP status each one is decided at the edge (`error.rs`).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use fathom_model::{EmbedOptions, Embedder, ModelError};
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;

/// The longest bulk work waits while interactive requests keep the model busy: then it runs one
/// slice (about 35 ms here) alongside them, so an ingest keeps moving under any load.
pub const BULK_MAX_WAIT: Duration = Duration::from_millis(150);

/// Bulk jobs that may wait at once (each is one ingest's batch of ~32 chunks).
const BULK_SLOTS: usize = 2;

/// Estimated tokens of one slice of bulk work (one 256-token chunk of all-MiniLM-L6-v2, about
/// 35 ms on two cores): the most bulk work an interactive request shares the CPU with. Packed
/// sequences make a forward pass cost about the same per token at any batch size, so slicing
/// costs the ingest little.
pub(crate) const BULK_SLICE_TOKENS: usize = 256;

/// How long bulk work waits after interactive requests were answered before it starts a slice:
/// clients answered a moment ago are about to send their next request.
const INTERACTIVE_GRACE: Duration = Duration::from_millis(2);

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

/// A handle to the model's threads; cheap to clone.
#[derive(Debug, Clone)]
pub struct Batcher {
    tx: mpsc::Sender<Job>,
    bulk_tx: mpsc::Sender<Job>,
    depth: Arc<AtomicUsize>,
    alive: Arc<AtomicBool>,
    activity: Arc<Activity>,
    capacity: usize,
    metrics: Arc<Metrics>,
}

/// What the bulk thread watches to know whether the interactive side is quiet.
#[derive(Debug)]
struct Activity {
    /// Searches in flight ([`InteractiveScope`]s).
    scopes: AtomicUsize,
    /// Whether the interactive thread is running requests.
    running: AtomicBool,
    /// When it last answered, in microseconds since `epoch`.
    answered_us: AtomicU64,
    epoch: Instant,
    /// Set (and the bulk thread woken) when the interactive side may have gone quiet. A plain
    /// condition variable, not the runtime's timers: the wait must work while the runtime
    /// shuts down.
    changed: Mutex<bool>,
    wake: Condvar,
}

impl Activity {
    fn new() -> Self {
        Self {
            scopes: AtomicUsize::new(0),
            running: AtomicBool::new(false),
            answered_us: AtomicU64::new(0),
            epoch: Instant::now(),
            changed: Mutex::new(false),
            wake: Condvar::new(),
        }
    }

    fn answered_now(&self) {
        let us = self.epoch.elapsed().as_micros() as u64;
        self.answered_us.store(us, Ordering::Release);
    }

    /// Tells the bulk thread (and side models between their slices) to look again; remembered
    /// if none is waiting right now.
    fn changed(&self) {
        *self.changed.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.wake.notify_all();
    }

    /// Waits at most `at_most` for [`Activity::changed`] (returns at once if it was called since
    /// the last wait).
    fn wait_for_change(&self, at_most: Duration) {
        let changed = self.changed.lock().unwrap_or_else(|e| e.into_inner());
        let (mut changed, _) = self
            .wake
            .wait_timeout_while(changed, at_most, |changed| !*changed)
            .unwrap_or_else(|e| e.into_inner());
        *changed = false;
    }

    /// What [`next_step`] decides on, for bulk work (or a side model) that has waited `waited`
    /// with `depth` interactive requests queued.
    fn lanes(&self, depth: &AtomicUsize, waited: Duration) -> Lanes {
        Lanes {
            interactive_busy: depth.load(Ordering::Acquire) > 0
                || self.running.load(Ordering::Acquire),
            scopes_open: self.scopes.load(Ordering::Acquire),
            since_answer: self.since_answer(),
            bulk_waited: waited,
        }
    }

    fn since_answer(&self) -> Duration {
        let answered = Duration::from_micros(self.answered_us.load(Ordering::Acquire));
        self.epoch.elapsed().saturating_sub(answered)
    }
}

/// Holds bulk work back while it lives (see [`Batcher::interactive_scope`]).
#[derive(Debug)]
pub struct InteractiveScope(Arc<Activity>);

impl Drop for InteractiveScope {
    fn drop(&mut self) {
        if self.0.scopes.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.changed();
        }
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("inputs", &self.texts.len())
            .finish()
    }
}

/// Marks the queue dead when either of its threads ends for any reason.
struct AliveGuard(Arc<AtomicBool>);

impl Drop for AliveGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

impl Batcher {
    /// Starts the model's two threads. `capacity` interactive requests may wait; a batch holds
    /// about `batch_tokens` tokens (estimated from text length before tokenizing). Call it within
    /// a tokio runtime (the threads wait on their lanes through the runtime's handle).
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
        let activity = Arc::new(Activity::new());
        let worker = Worker {
            model,
            batch_tokens,
            depth: depth.clone(),
            activity: activity.clone(),
            metrics: metrics.clone(),
            handle: tokio::runtime::Handle::current(),
        };
        let spawn = |name: &str, run: Box<dyn FnOnce() + Send>| {
            let guard = AliveGuard(alive.clone());
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || {
                    let _guard = guard;
                    run()
                })
                .expect("spawning an embedding thread");
        };
        let bulk_worker = worker.clone();
        spawn(
            "fathom-embed",
            Box::new(move || worker.run_interactive_lane(rx)),
        );
        spawn(
            "fathom-embed-bulk",
            Box::new(move || bulk_worker.run_bulk_lane(bulk_rx)),
        );
        Self {
            tx,
            bulk_tx,
            depth,
            alive,
            activity,
            capacity,
            metrics,
        }
    }

    /// Marks an interactive request in flight until the scope is dropped: bulk work waits
    /// (at most [`BULK_MAX_WAIT`]) while any is open. A search takes one for its whole run, so
    /// that an ingest's slices do not share the CPU with the store's part of the search.
    pub fn interactive_scope(&self) -> InteractiveScope {
        self.activity.scopes.fetch_add(1, Ordering::AcqRel);
        InteractiveScope(self.activity.clone())
    }

    /// Blocks, by the policy bulk work follows ([`next_step`]), while embed requests wait or run
    /// or a search is in flight, at most [`BULK_MAX_WAIT`]: what another model's long call (a
    /// reranker scoring 50 candidates) does before each of its slices, so that a short embed
    /// request shares the cores with at most one slice of it.
    pub fn yield_to_interactive(&self) {
        let started = Instant::now();
        loop {
            match next_step(&self.activity.lanes(&self.depth, started.elapsed())) {
                Step::BulkSlice => return,
                Step::Wait(at_most) => self.activity.wait_for_change(at_most),
            }
        }
    }

    /// Interactive requests waiting for the model now.
    pub fn depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }

    /// Whether the model's threads are running (`/health` is 503 once one is not).
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
        self.depth.fetch_add(1, Ordering::AcqRel);
        if let Err(e) = self.tx.try_send(job) {
            self.depth.fetch_sub(1, Ordering::AcqRel);
            self.activity.changed();
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
    /// The model's tokenizer prepared for chunking, once per engine.
    pub chunk_tokens: Arc<fathom_ingest::ChunkTokenizer>,
}

impl fathom_ingest::Embed for BulkEmbed {
    fn tokenizer(&self) -> &tokenizers::Tokenizer {
        self.model.tokenizer()
    }

    fn chunk_tokenizer(&self) -> Arc<fathom_ingest::ChunkTokenizer> {
        self.chunk_tokens.clone()
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

/// What both threads share: the model and the bookkeeping around it.
#[derive(Clone)]
struct Worker {
    model: Arc<Embedder>,
    batch_tokens: usize,
    depth: Arc<AtomicUsize>,
    activity: Arc<Activity>,
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
    /// The interactive thread: each request as it comes, with whatever else waits beside it.
    fn run_interactive_lane(self, mut rx: mpsc::Receiver<Job>) {
        while let Some(first) = self.handle.block_on(rx.recv()) {
            self.activity.running.store(true, Ordering::Release);
            self.run_interactive(first, &mut rx);
            self.activity.answered_now();
            self.activity.running.store(false, Ordering::Release);
            self.activity.changed();
        }
    }

    /// The bulk thread: each job a slice at a time, each slice when [`next_step`] says so.
    fn run_bulk_lane(self, mut bulk_rx: mpsc::Receiver<Job>) {
        while let Some(job) = self.handle.block_on(bulk_rx.recv()) {
            let mut work = Some(BulkWork::new(job));
            let mut waiting_since = Instant::now();
            while let Some(next) = work.take() {
                if next.job.reply.is_closed() {
                    break; // its sender is gone (a cancelled ingest): not worth waiting for
                }
                match next_step(&self.activity.lanes(&self.depth, waiting_since.elapsed())) {
                    Step::BulkSlice => {
                        work = self.run_bulk_slice(next);
                        waiting_since = Instant::now();
                    }
                    Step::Wait(at_most) => {
                        self.activity.wait_for_change(at_most);
                        work = Some(next);
                    }
                }
            }
        }
    }

    /// Runs `first` with whatever else waits in the interactive lane, up to the token budget.
    fn run_interactive(&self, first: Job, rx: &mut mpsc::Receiver<Job>) {
        let max_seq = self.model.max_seq_length();
        let take = |job: &Job| {
            // Release: a bulk thread that sees the lower depth also sees `running` set.
            self.depth.fetch_sub(1, Ordering::AcqRel);
            estimated_tokens(&job.texts, max_seq)
        };
        let mut budget = take(&first);
        let mut jobs = vec![first];
        while budget < self.batch_tokens {
            match rx.try_recv() {
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

/// What the bulk thread sees when it decides whether to run its next slice.
#[derive(Debug, Clone, Copy)]
struct Lanes {
    /// Interactive requests waiting or running.
    interactive_busy: bool,
    /// Searches in flight beyond the model (their store part).
    scopes_open: usize,
    /// Time since the interactive thread last answered.
    since_answer: Duration,
    /// How long the bulk work in hand has waited for its next slice.
    bulk_waited: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    BulkSlice,
    /// Wait (at most this long) for the interactive side to change.
    Wait(Duration),
}

/// The scheduling policy for bulk work: a slice once it has waited [`BULK_MAX_WAIT`]; before
/// that, only while the interactive side is quiet — nothing waiting or running, no search in
/// flight, nothing answered in the last [`INTERACTIVE_GRACE`] (its client is about to send the
/// next request).
fn next_step(lanes: &Lanes) -> Step {
    let overdue_in = BULK_MAX_WAIT.saturating_sub(lanes.bulk_waited);
    if overdue_in.is_zero() {
        return Step::BulkSlice;
    }
    if lanes.interactive_busy || lanes.scopes_open > 0 {
        return Step::Wait(overdue_in);
    }
    let grace_left = INTERACTIVE_GRACE.saturating_sub(lanes.since_answer);
    if grace_left.is_zero() {
        Step::BulkSlice
    } else {
        Step::Wait(grace_left.min(overdue_in))
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

    fn lanes(busy: bool, scopes: usize, since_answer_ms: u64, bulk_waited_ms: u64) -> Lanes {
        Lanes {
            interactive_busy: busy,
            scopes_open: scopes,
            since_answer: Duration::from_millis(since_answer_ms),
            bulk_waited: Duration::from_millis(bulk_waited_ms),
        }
    }

    #[test]
    fn scheduling_policy() {
        use Step::*;
        let ms = Duration::from_millis;
        let max = BULK_MAX_WAIT.as_millis() as u64;
        let grace = INTERACTIVE_GRACE.as_millis() as u64;
        let cases = [
            // (interactive busy, searches in flight, since answer, bulk waited) -> step
            (
                lanes(false, 0, 1000, 0),
                BulkSlice,
                "a quiet interactive side",
            ),
            (
                lanes(true, 0, 1000, 10),
                Wait(ms(max - 10)),
                "interactive work waits or runs",
            ),
            (
                lanes(false, 1, 1000, 10),
                Wait(ms(max - 10)),
                "a search is in flight",
            ),
            (
                lanes(false, 0, 0, 10),
                Wait(INTERACTIVE_GRACE),
                "just answered: grace",
            ),
            (lanes(false, 0, grace, 10), BulkSlice, "grace over"),
            (
                lanes(false, 0, 0, max - 1),
                Wait(ms(1)),
                "grace never past the deadline",
            ),
            (
                lanes(true, 3, 0, max),
                BulkSlice,
                "bulk that waited long enough runs anyway",
            ),
            (lanes(true, 3, 0, max + 500), BulkSlice, "and later still"),
        ];
        for (lanes, want, why) in cases {
            assert_eq!(next_step(&lanes), want, "{why}: {lanes:?}");
        }
    }

    #[test]
    fn the_last_scope_to_close_wakes_the_bulk_thread() {
        let activity = Arc::new(Activity::new());
        let open = || {
            activity.scopes.fetch_add(1, Ordering::AcqRel);
            InteractiveScope(activity.clone())
        };
        let (a, b) = (open(), open());
        drop(a);
        assert_eq!(activity.scopes.load(Ordering::Acquire), 1);
        drop(b);
        assert_eq!(activity.scopes.load(Ordering::Acquire), 0);
        // The last close is remembered: a wait that starts after it returns at once.
        let started = Instant::now();
        activity.wait_for_change(Duration::from_secs(30));
        assert!(started.elapsed() < Duration::from_secs(30));
        // And consumed: the next wait lasts its time.
        let started = Instant::now();
        activity.wait_for_change(Duration::from_millis(50));
        assert!(started.elapsed() >= Duration::from_millis(50));
    }

    #[test]
    fn token_estimate_is_capped_by_the_model_window() {
        let texts = vec!["a".repeat(4000), "abcd".into()];
        assert_eq!(estimated_tokens(&texts, 256), 256 + 3);
    }
}
