//! The models a server runs beside its embedders: cross-encoders (`--reranker`, for `/rerank`,
//! `/v1/rerank` and reranked search) and SPLADE models (`--sparse-model`, for `/embed_sparse`),
//! any number of each; the first of a kind answers requests that name none.
//!
//! Each has a lane of its own: one call at a time runs on a blocking thread (its kernels use the
//! same rayon pool as the embedder's), and at most `--queue-capacity` more wait; beyond that a
//! request is answered 429 at once, as the embedder's queue answers it. A call runs in slices of
//! about [`BULK_SLICE_TOKENS`] tokens, and before each slice it yields to the embedder's
//! interactive requests as bulk work does ([`Batcher::yield_to_interactive`]): a short `/embed`
//! shares the cores with at most one slice of a reranking, not with the whole of it. A model that
//! panics on one request answers it 503 and keeps serving the next.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use fathom_model::ModelError;
use tokio::sync::Semaphore;

use crate::batcher::{Batcher, BULK_SLICE_TOKENS};
use crate::error::ApiError;

/// A loaded model with its lane.
#[derive(Debug)]
pub struct SideModel<M> {
    pub model: Arc<M>,
    /// What responses call the model: its hub id, or a local folder's name (never a server path).
    pub name: String,
    running: Semaphore,
    waiting: AtomicUsize,
    capacity: usize,
}

impl<M: Send + Sync + 'static> SideModel<M> {
    pub fn new(model: Arc<M>, name: String, capacity: usize) -> Self {
        Self {
            model,
            name,
            running: Semaphore::new(1),
            waiting: AtomicUsize::new(0),
            capacity: capacity.max(1),
        }
    }

    /// Runs `work` on the model when its turn comes: 429 when the lane is full, 503 if it panics.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&M) -> Result<T, ModelError> + Send + 'static,
    ) -> Result<T, ApiError> {
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(ApiError::Overloaded(self.capacity));
        }
        let permit = self.running.acquire().await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        let _permit = permit.map_err(|_| ApiError::ShuttingDown)?;
        let model = self.model.clone();
        match tokio::task::spawn_blocking(move || work(&model)).await {
            Ok(result) => result.map_err(ApiError::from),
            Err(e) => Err(ApiError::Unavailable(format!(
                "the model failed on this request ({}); retry, or send other inputs",
                if e.is_panic() {
                    "it panicked"
                } else {
                    "cancelled"
                }
            ))),
        }
    }
}

/// The models of one kind a server runs beside its embedders (`--reranker`, `--sparse-model`,
/// or `--model` entries of that kind), each with its own lane; the first is the default, a
/// request may name another (`model`).
#[derive(Debug)]
pub struct SideModels<M> {
    /// `reranker` or `sparse model`, for messages.
    kind: &'static str,
    /// The flag that starts one, for the 404 of a server without any.
    flag: &'static str,
    models: std::sync::RwLock<Vec<Arc<SideModel<M>>>>,
}

impl<M: Send + Sync + 'static> SideModels<M> {
    pub fn new(kind: &'static str, flag: &'static str) -> Self {
        Self {
            kind,
            flag,
            models: std::sync::RwLock::new(Vec::new()),
        }
    }

    pub(crate) fn push(&self, model: SideModel<M>) {
        self.models
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(model));
    }

    /// Every one, the default first.
    pub fn all(&self) -> Vec<Arc<SideModel<M>>> {
        self.models
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The default one, if the server runs any.
    pub fn first(&self) -> Option<Arc<SideModel<M>>> {
        self.all().into_iter().next()
    }

    /// The one a request names (`None`: the default): 404 when the server runs none, or none of
    /// that name (naming the ones it runs).
    pub fn get(&self, name: Option<&str>) -> Result<Arc<SideModel<M>>, ApiError> {
        let all = self.all();
        if all.is_empty() {
            return Err(ApiError::NotFound(format!(
                "this server runs no {}; start it with `fathom serve {}`",
                self.kind, self.flag
            )));
        }
        let Some(name) = name else {
            return Ok(all[0].clone());
        };
        all.iter().find(|m| m.name == name).cloned().ok_or_else(|| {
            let served: Vec<String> = all.iter().map(|m| format!("`{}`", m.name)).collect();
            let (noun, verb) = if all.len() == 1 {
                (self.kind.to_string(), "is")
            } else {
                (format!("{}s", self.kind), "are")
            };
            ApiError::NotFound(format!(
                "model `{name}` is not served here; the {noun} {verb} {} (GET /v1/models)",
                served.join(", ")
            ))
        })
    }
}

/// Runs `work` over `items` slice by slice (consecutive ranges of about [`BULK_SLICE_TOKENS`]
/// estimated tokens each, at least one item), yielding to the embedder's interactive requests
/// before each slice when there is an embedder, and concatenates the results. An error's input
/// index is made relative to all `items` again.
pub(crate) fn run_sliced<T>(
    estimates: &[usize],
    yield_to: Option<&Batcher>,
    mut work: impl FnMut(Range<usize>) -> Result<Vec<T>, ModelError>,
) -> Result<Vec<T>, ModelError> {
    let mut out = Vec::with_capacity(estimates.len());
    for range in slices(estimates, BULK_SLICE_TOKENS) {
        if let Some(batcher) = yield_to {
            batcher.yield_to_interactive();
        }
        let start = range.start;
        match work(range) {
            Ok(part) => out.extend(part),
            Err(ModelError::InputTooLong { index, tokens, max }) => {
                return Err(ModelError::InputTooLong {
                    index: index + start,
                    tokens,
                    max,
                })
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Consecutive ranges of `estimates` summing to at most `budget` each (one item at least).
fn slices(estimates: &[usize], budget: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < estimates.len() {
        let mut end = start + 1;
        let mut sum = estimates[start];
        while end < estimates.len() && sum + estimates[end] <= budget {
            sum += estimates[end];
            end += 1;
        }
        out.push(start..end);
        start = end;
    }
    out
}

/// A rough token count of a text (about four bytes a token), capped at the model's window.
pub(crate) fn estimate_tokens(bytes: usize, max_seq_length: usize) -> usize {
    (bytes / 4 + 3).min(max_seq_length)
}

/// A folder's name or the hub id, never a server path: what responses and `/info` show.
pub(crate) fn public_name(given: &str) -> String {
    let path = std::path::Path::new(given);
    if path.exists() {
        path.canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "model".to_string())
    } else {
        given.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_cover_everything_in_order_within_the_budget() {
        assert_eq!(slices(&[], 256), Vec::<Range<usize>>::new());
        assert_eq!(slices(&[100, 100, 100], 256), vec![0..2, 2..3]);
        // An item over the budget is a slice of its own.
        assert_eq!(slices(&[300, 10, 10], 256), vec![0..1, 1..3]);
        assert_eq!(slices(&[256, 256], 256), vec![0..1, 1..2]);
    }

    #[test]
    fn an_error_names_the_input_among_all_of_them() {
        let err = run_sliced(&[200, 200, 200], None, |range| {
            if range.start == 2 {
                Err(ModelError::InputTooLong {
                    index: 0,
                    tokens: 900,
                    max: 512,
                })
            } else {
                Ok(range.collect::<Vec<usize>>())
            }
        })
        .unwrap_err();
        assert!(
            matches!(err, ModelError::InputTooLong { index: 2, .. }),
            "{err}"
        );
        let all = run_sliced(&[200, 30, 200], None, |range| Ok(range.collect::<Vec<_>>())).unwrap();
        assert_eq!(all, vec![0, 1, 2]);
    }
}
