//! What every handler shares: the configuration, the model (once loaded), the store and its open
//! collections, the ingest jobs and the metrics.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use fathom_model::{EmbedOptions, Embedder, RerankOptions, Reranker, SparseEncoder};
use fathom_store::{Collection, ModelSpec, Store};

use crate::batcher::Batcher;
use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::jobs::Jobs;
use crate::metrics::Metrics;
use crate::side::{public_name, SideModel, SideModels};

/// The loaded model and the queue in front of it; cheap to clone.
#[derive(Debug, Clone)]
pub struct Engine {
    pub model: Arc<Embedder>,
    pub batcher: Batcher,
    /// The model's tokenizer prepared for chunking, shared by every ingest through this engine.
    pub chunk_tokens: Arc<fathom_ingest::ChunkTokenizer>,
    pub spec: ModelSpec,
    /// What responses call the model: its hub id, or a local folder's name (never a server path).
    pub name: String,
}

impl Engine {
    /// This embedder as an ingest uses it: tokenizer and window from the model, embeddings
    /// through the queue's bulk lane (so interactive requests go first).
    pub fn bulk(&self) -> Arc<crate::batcher::BulkEmbed> {
        Arc::new(crate::batcher::BulkEmbed {
            model: self.model.clone(),
            batcher: self.batcher.clone(),
            chunk_tokens: self.chunk_tokens.clone(),
        })
    }
}

/// Shared by all handlers; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub config: Arc<ServerConfig>,
    pub metrics: Arc<Metrics>,
    pub store: Store,
    pub jobs: Jobs,
    engine: Arc<OnceLock<Engine>>,
    /// Embedders served beside the default one (`--model NAME=MODEL` after the first), by name.
    others: Arc<std::sync::RwLock<Vec<Engine>>>,
    rerankers: Arc<SideModels<Reranker>>,
    sparse: Arc<SideModels<SparseEncoder>>,
    collections: Arc<tokio::sync::Mutex<HashMap<String, Arc<Collection>>>>,
    /// `true` once the default model is installed (what [`AppState::ready`] waits for).
    ready: Arc<tokio::sync::watch::Sender<bool>>,
}

/// Two models of one kind under one name.
fn twice(name: &str) -> ApiError {
    ApiError::Internal(format!(
        "two models of one kind are called `{name}`; name them with NAME=MODEL"
    ))
}

impl AppState {
    /// A server that answers 503 on model routes until [`AppState::install_model`] is called.
    pub fn new(config: ServerConfig) -> Self {
        Self {
            store: Store::with_options(config.store.clone(), config.store_options.clone()),
            jobs: Jobs::new(config.max_ingest_jobs, config.max_queued_jobs),
            config: Arc::new(config),
            metrics: Arc::new(Metrics::default()),
            engine: Arc::new(OnceLock::new()),
            others: Arc::default(),
            rerankers: Arc::new(SideModels::new(
                "reranker",
                "--reranker MODEL` (a cross-encoder such as cross-encoder/ms-marco-MiniLM-L6-v2)",
            )),
            sparse: Arc::new(SideModels::new(
                "sparse model",
                "--sparse-model MODEL` (a SPLADE model such as naver/splade-v3)",
            )),
            collections: Arc::default(),
            ready: Arc::new(tokio::sync::watch::Sender::new(false)),
        }
    }

    /// Warms the model up (one small forward pass, so the first request does not pay for
    /// allocations and lazy setup), starts its queue and makes the server ready. Blocks for the
    /// warm-up: call it from a blocking thread.
    pub fn install_model(&self, model: Arc<Embedder>) -> Result<(), ApiError> {
        self.install_model_named(model, None)
    }

    /// [`AppState::install_model`] under a name of the user's (`--model NAME=MODEL`); `None`:
    /// the hub id or the folder's name.
    pub fn install_model_named(
        &self,
        model: Arc<Embedder>,
        name: Option<String>,
    ) -> Result<(), ApiError> {
        let engine = self.start_engine(model, name)?;
        self.check_unique(&engine.name)?;
        self.engine
            .set(engine)
            .map_err(|_| ApiError::Internal("a model is already installed".into()))?;
        self.ready.send_replace(true);
        Ok(())
    }

    /// Serves another embedder beside the default one, for the OpenAI route's `model` field.
    /// Install these before the default one (that makes the server ready).
    pub fn install_embedder(
        &self,
        model: Arc<Embedder>,
        name: Option<String>,
    ) -> Result<(), ApiError> {
        let engine = self.start_engine(model, name)?;
        self.check_unique(&engine.name)?;
        self.others
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(engine);
        Ok(())
    }

    fn start_engine(&self, model: Arc<Embedder>, name: Option<String>) -> Result<Engine, ApiError> {
        model.embed(&["warm up"], &EmbedOptions::default())?;
        let spec = ModelSpec {
            model: model.layout().name.clone(),
            dimension: model.dimension(),
            normalized: model.layout().normalize,
        };
        let name = name.unwrap_or_else(|| public_name(&model.layout().name));
        let batcher = Batcher::start(
            model.clone(),
            self.config.queue_capacity,
            self.config.batch_tokens,
            self.metrics.clone(),
        );
        Ok(Engine {
            chunk_tokens: Arc::new(fathom_ingest::ChunkTokenizer::new(model.tokenizer())),
            model,
            batcher,
            spec,
            name,
        })
    }

    /// An embedder's name is its own among the embedders (the OpenAI route's `model`), as a
    /// reranker's is among the rerankers.
    fn check_unique(&self, name: &str) -> Result<(), ApiError> {
        if self.find_other(name).is_some() || self.engine.get().is_some_and(|e| e.name == name) {
            return Err(twice(name));
        }
        Ok(())
    }

    fn find_other(&self, name: &str) -> Option<Engine> {
        self.others
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|e| e.name == name)
            .cloned()
    }

    /// The embedder a request names (`None`: the default). With one embedder any name is
    /// accepted, as clients send their own defaults (`text-embedding-3-small`); with several, an
    /// unknown name is a 404 naming the ones served.
    pub fn engine_named(&self, name: Option<&str>) -> Result<Engine, ApiError> {
        let default = self.engine()?;
        let Some(name) = name.filter(|n| *n != default.name) else {
            return Ok(default.clone());
        };
        if let Some(engine) = self.find_other(name) {
            return Ok(engine);
        }
        let names = self.embedder_names();
        if names.len() == 1 {
            return Ok(default.clone());
        }
        Err(self.not_served(name))
    }

    /// The 404 for a `model` no served embedder is called.
    fn not_served(&self, name: &str) -> ApiError {
        ApiError::NotFound(format!(
            "model `{name}` is not served here; the embedders are {} (GET /v1/models)",
            self.embedder_names()
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }

    fn others_snapshot(&self) -> Vec<Engine> {
        self.others
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The embedder whose vectors `collection` holds: the default, or another one served. A
    /// collection no served embedder wrote is a 409 naming its model.
    pub fn engine_for(&self, collection: &Collection) -> Result<Engine, ApiError> {
        let default = self.engine()?;
        if collection.spec().compatible(&default.spec) {
            return Ok(default.clone());
        }
        self.others_snapshot()
            .into_iter()
            .find(|e| collection.spec().compatible(&e.spec))
            .ok_or_else(|| {
                ApiError::Conflict(format!(
                    "collection `{}` holds vectors of `{}`, which this server does not run (it runs {}); \
                     start it with --model for that model",
                    collection.name(),
                    collection.spec().model,
                    self.embedder_names().join(", ")
                ))
            })
    }

    /// The names of the embedders served, the default first.
    pub fn embedder_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .engine
            .get()
            .map(|e| e.name.clone())
            .into_iter()
            .collect();
        names.extend(
            self.others
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|e| e.name.clone()),
        );
        names
    }

    /// Warms a cross-encoder up and serves it beside the embedders (`/rerank`, `/v1/rerank`,
    /// reranked search); the first installed is the default. Blocks for the warm-up.
    pub fn install_reranker(
        &self,
        model: Arc<Reranker>,
        name: Option<String>,
    ) -> Result<(), ApiError> {
        model.score(&[("warm", "up")], &RerankOptions::default())?;
        let name = name.unwrap_or_else(|| public_name(&model.layout().name));
        if self.rerankers.all().iter().any(|m| m.name == name) {
            return Err(twice(&name));
        }
        self.rerankers
            .push(SideModel::new(model, name, self.config.queue_capacity));
        Ok(())
    }

    /// Warms a SPLADE model up and serves it beside the embedders (`/embed_sparse`).
    pub fn install_sparse(
        &self,
        model: Arc<SparseEncoder>,
        name: Option<String>,
    ) -> Result<(), ApiError> {
        model.encode(&["warm up"], true)?;
        let name = name.unwrap_or_else(|| public_name(&model.layout().name));
        if self.sparse.all().iter().any(|m| m.name == name) {
            return Err(twice(&name));
        }
        self.sparse
            .push(SideModel::new(model, name, self.config.queue_capacity));
        Ok(())
    }

    /// The cross-encoders this server runs, the default first.
    pub fn rerankers(&self) -> &SideModels<Reranker> {
        &self.rerankers
    }

    /// The SPLADE models this server runs, the default first.
    pub fn sparse_models(&self) -> &SideModels<SparseEncoder> {
        &self.sparse
    }

    /// The model, or 503 while it loads.
    pub fn engine(&self) -> Result<&Engine, ApiError> {
        self.engine.get().ok_or(ApiError::NotReady)
    }

    /// Resolves once the default model is installed (at once if it is).
    pub async fn ready(&self) {
        let mut ready = self.ready.subscribe();
        // The sender lives as long as `self`: the wait cannot fail.
        let _ = ready.wait_for(|r| *r).await;
    }

    /// The collection `name` (the default one when `None`) for this model, created on first
    /// write. A collection written by another model is a 409.
    pub async fn collection(&self, name: Option<&str>) -> Result<Arc<Collection>, ApiError> {
        let name = name.unwrap_or(&self.config.default_collection);
        let engine = self.engine()?;
        let mut open = self.collections.lock().await;
        if let Some(c) = open.get(name) {
            return Ok(c.clone());
        }
        let c = Arc::new(self.open_collection(name, &engine.spec).await?);
        open.insert(name.to_string(), c.clone());
        Ok(c)
    }

    /// The collection `name` (the default one when `None`) with the embedder that writes it: the
    /// one that built it, or for a new collection `model` (a served embedder's name; unknown is a
    /// 404) or the default. Naming a model other than the one that built it is a 409.
    pub async fn collection_with(
        &self,
        name: Option<&str>,
        model: Option<&str>,
    ) -> Result<(Arc<Collection>, Engine), ApiError> {
        let Some(model) = model else {
            let c = self.collection(name).await?;
            let engine = self.engine_for(&c)?;
            return Ok((c, engine));
        };
        let default = self.engine()?;
        let engine = if model == default.name {
            default.clone()
        } else {
            self.find_other(model)
                .ok_or_else(|| self.not_served(model))?
        };
        let name = name.unwrap_or(&self.config.default_collection);
        let mut open = self.collections.lock().await;
        let c = match open.get(name) {
            Some(c) => c.clone(),
            None => {
                let c = Arc::new(self.store.collection(name, &engine.spec).await?);
                open.insert(name.to_string(), c.clone());
                c
            }
        };
        if !c.spec().compatible(&engine.spec) {
            return Err(ApiError::Conflict(format!(
                "collection `{name}` was built with `{}`, not `{model}`; leave `model` out to write \
                 with the model that built it",
                c.spec().model
            )));
        }
        Ok((c, engine))
    }

    /// Opens `name` for the default embedder's `spec`, or — when another served embedder wrote
    /// it — for that one's, so that reads and writes use the model the collection was built with.
    async fn open_collection(
        &self,
        name: &str,
        spec: &ModelSpec,
    ) -> Result<Collection, fathom_store::StoreError> {
        match self.store.collection(name, spec).await {
            Err(e @ fathom_store::StoreError::ModelMismatch { .. }) => {
                for other in self.others_snapshot() {
                    if let Ok(c) = self.store.collection(name, &other.spec).await {
                        return Ok(c);
                    }
                }
                Err(e)
            }
            other => other,
        }
    }

    /// Store upkeep in the background once a collection's commits have piled up (see
    /// `Collection::maybe_optimize`); never delays the request that wrote.
    pub fn after_write(&self, collection: Arc<Collection>) {
        tokio::spawn(async move {
            if let Err(e) = collection.maybe_optimize().await {
                tracing::warn!(collection = collection.name(), error = %e, "store upkeep failed; retried later");
            }
        });
    }

    /// The collections this server has open (those it has read or written).
    pub async fn open_collections(&self) -> Vec<Arc<Collection>> {
        self.collections.lock().await.values().cloned().collect()
    }

    /// Upkeep of every open collection written since its last one: what a quiet server does
    /// now and then, so that versions of a burst of writes do not stay around.
    pub async fn upkeep_all(&self) {
        let open: Vec<Arc<Collection>> = self.collections.lock().await.values().cloned().collect();
        for c in open {
            if c.needs_upkeep() {
                if let Err(e) = c.idle_upkeep().await {
                    tracing::warn!(collection = c.name(), error = %e, "store upkeep failed; retried later");
                }
            }
        }
    }

    /// Like [`AppState::collection`], but a collection that was never written is a 404.
    pub async fn existing_collection(
        &self,
        name: Option<&str>,
    ) -> Result<Arc<Collection>, ApiError> {
        let name = name.unwrap_or(&self.config.default_collection);
        let spec = &self.engine()?.spec;
        let cached = self.collections.lock().await.get(name).cloned();
        if let Some(c) = cached.filter(|c| c.exists()) {
            return Ok(c);
        }
        // Not open, or opened before anything was written: another process (a CLI ingest) may
        // have created it since. A name that does not exist is not kept, so requests naming
        // random collections cannot grow the server's memory. A collection another served
        // embedder wrote opens with that embedder's spec (searches then embed with it).
        let fresh = Arc::new(self.open_collection(name, spec).await?);
        if !fresh.exists() {
            return Err(fathom_store::StoreError::NoSuchCollection {
                name: name.to_string(),
                store: self.store.root().to_string(),
            }
            .into());
        }
        self.collections
            .lock()
            .await
            .insert(name.to_string(), fresh.clone());
        Ok(fresh)
    }
}
