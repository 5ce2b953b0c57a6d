//! The models a server runs beside its embedder: a cross-encoder (`--reranker`, for `/rerank`,
//! `/v1/rerank` and reranked search) and a SPLADE model (`--sparse-model`, for `/embed_sparse`).
//!
//! Each has a lane of its own: one call at a time runs on a blocking thread (its kernels use the
//! same rayon pool as the embedder's, so passes of different models interleave on the cores), and
//! at most `--queue-capacity` more wait; beyond that a request is answered 429 at once, as the
//! embedder's queue answers it. A model that panics on one request answers it 503 and keeps
//! serving the next.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use fathom_model::ModelError;
use tokio::sync::Semaphore;

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
