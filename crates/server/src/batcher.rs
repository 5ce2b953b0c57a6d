//! The queue in front of the model. Requests wait in a bounded channel; one thread takes as many
//! as fit a token budget, runs them through the model together (the embedder sorts all their
//! inputs by length and packs them without padding) and answers each on its oneshot channel. The
//! async runtime never runs the model; a full queue is answered at once with 429.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use fathom_model::{EmbedOptions, Embedder, ModelError};
use tokio::sync::{mpsc, oneshot};

use crate::error::ApiError;
use crate::metrics::Metrics;

/// Vectors of one request, with the tokens the model ran for each input.
#[derive(Debug)]
pub struct Embedded {
    pub vectors: Vec<Vec<f32>>,
    pub tokens: Vec<usize>,
}

struct Job {
    texts: Vec<String>,
    options: EmbedOptions,
    reply: oneshot::Sender<Result<Embedded, ModelError>>,
}

/// A handle to the model thread; cheap to clone.
#[derive(Debug, Clone)]
pub struct Batcher {
    tx: mpsc::Sender<Job>,
    depth: Arc<AtomicUsize>,
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

impl Batcher {
    /// Starts the model thread. `capacity` requests may wait; a batch holds about `batch_tokens`
    /// tokens (estimated from text length before tokenizing).
    pub fn start(
        model: Arc<Embedder>,
        capacity: usize,
        batch_tokens: usize,
        metrics: Arc<Metrics>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let depth = Arc::new(AtomicUsize::new(0));
        let worker_depth = depth.clone();
        let worker_metrics = metrics.clone();
        std::thread::Builder::new()
            .name("fathom-embed".into())
            .spawn(move || run_worker(model, rx, batch_tokens, worker_depth, worker_metrics))
            .expect("spawning the embedding thread");
        Self {
            tx,
            depth,
            capacity,
            metrics,
        }
    }

    /// Requests waiting for the model now.
    pub fn depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }

    /// Queues `texts` and waits for their vectors. Never blocks the runtime: a full queue is
    /// [`ApiError::Overloaded`] at once.
    pub async fn embed(
        &self,
        texts: Vec<String>,
        options: EmbedOptions,
    ) -> Result<Embedded, ApiError> {
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
                    ApiError::Overloaded(self.capacity)
                }
                mpsc::error::TrySendError::Closed(_) => ApiError::ShuttingDown,
            });
        }
        self.metrics.queue_depth.set(self.depth() as i64);
        match answer.await {
            Ok(result) => result.map_err(ApiError::from),
            Err(_) => Err(ApiError::Internal(
                "the embedding thread dropped a request".into(),
            )),
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

fn run_worker(
    model: Arc<Embedder>,
    mut rx: mpsc::Receiver<Job>,
    batch_tokens: usize,
    depth: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
) {
    let max_seq = model.max_seq_length();
    let take = |job: &Job| {
        depth.fetch_sub(1, Ordering::Relaxed);
        estimated_tokens(&job.texts, max_seq)
    };
    while let Some(first) = rx.blocking_recv() {
        let mut budget = take(&first);
        let mut jobs = vec![first];
        while budget < batch_tokens {
            match rx.try_recv() {
                Ok(job) => {
                    budget += take(&job);
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        metrics
            .queue_depth
            .set(depth.load(Ordering::Relaxed) as i64);
        // A request whose client is gone (timeout, disconnect) is not worth running.
        jobs.retain(|j| !j.reply.is_closed());
        for group in group_by_options(jobs) {
            run_group(&model, group, &metrics);
        }
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

fn run_group(model: &Embedder, group: Vec<Job>, metrics: &Metrics) {
    let texts: Vec<&str> = group
        .iter()
        .flat_map(|j| j.texts.iter().map(String::as_str))
        .collect();
    let started = Instant::now();
    match model.embed_counting(&texts, &group[0].options) {
        Ok((vectors, tokens)) => {
            metrics.record_batch(texts.len(), tokens.iter().sum(), started.elapsed());
            let mut vectors = vectors.into_iter();
            let mut tokens = tokens.into_iter();
            for job in group {
                let n = job.texts.len();
                let answer = Embedded {
                    vectors: vectors.by_ref().take(n).collect(),
                    tokens: tokens.by_ref().take(n).collect(),
                };
                let _ = job.reply.send(Ok(answer));
            }
        }
        // One bad request (an over-long input with truncation off, an unknown prompt) must not
        // fail the others it was batched with: run each alone so each gets its own answer.
        Err(_) if group.len() > 1 => {
            for job in group {
                run_group(model, vec![job], metrics);
            }
        }
        Err(e) => {
            let job = group.into_iter().next().expect("a group is never empty");
            let _ = job.reply.send(Err(e));
        }
    }
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
