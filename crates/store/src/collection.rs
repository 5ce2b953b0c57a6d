//! One collection: a lance dataset, its writes and its indexes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{RecordBatch, StringArray};
use futures::TryStreamExt;
use lance::dataset::optimize::{compact_files, CompactionOptions};
use lance::dataset::{
    CommitBuilder, InsertBuilder, MergeInsertBuilder, WhenMatched, WhenNotMatched,
    WhenNotMatchedBySource, WriteMode, WriteParams,
};
use lance::index::vector::VectorIndexParams;
use lance::index::{DatasetIndexExt, DatasetIndexInternalExt};
use lance::Dataset;
use lance_index::optimize::OptimizeOptions;
use lance_index::scalar::InvertedIndexParams;
use lance_index::IndexType;
use lance_linalg::distance::DistanceType;
use serde::Serialize;
use tokio::sync::RwLock;
use utoipa::ToSchema;

use crate::error::{Result, StoreError};
use crate::options::{storage_error, Access};
use crate::schema::{self, sql_str, ModelSpec, SourceChunks, SOURCE_HASH, SOURCE_ID, TEXT, VECTOR};

pub(crate) use fathom_docs::row::{ivf_partitions, pq_sub_vectors, TEXT_INDEX, VECTOR_INDEX};

/// When the store builds indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexPolicy {
    /// Below this many chunks, vector search is exact; from it on, an IVF_PQ index is built (and
    /// kept up to date after each ingest; rows appended since are still searched, exactly).
    pub ann_threshold: usize,
    /// IVF partitions probed per query (at least; more is slower and finds more).
    pub nprobes: usize,
    /// Candidates re-ranked on exact distances: `refine_factor * k` (PQ distances are rough).
    pub refine_factor: u32,
}

impl Default for IndexPolicy {
    fn default() -> Self {
        Self {
            ann_threshold: fathom_docs::row::ANN_THRESHOLD,
            // Measured with `cargo bench --bench scale_ann` (1M clustered random 384-d vectors,
            // ~1,000 partitions): 20/4 gave recall@10 0.58, 100/20 0.93, 150/30 0.97 at 23 ms p50.
            nprobes: 150,
            refine_factor: 30,
        }
    }
}

/// What one write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    pub inserted: u64,
    pub deleted: u64,
}

/// A source held by a collection: one shape for the CLI's `--json` and the HTTP API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SourceInfo {
    /// The document id, or the file's path under the ingested folder.
    #[serde(rename = "source")]
    pub source_id: String,
    /// blake3 of the source's content.
    #[serde(rename = "hash")]
    pub source_hash: String,
    pub chunks: usize,
}

/// What a collection holds and the shape it is in on disk.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Stats {
    pub chunks: usize,
    pub sources: usize,
    pub version: u64,
    /// Versions still on disk (every commit makes one; upkeep removes old ones).
    pub versions: usize,
    /// Data fragments (every commit adds at least one; compaction merges them).
    pub fragments: usize,
    /// Rows not yet in the vector index (searched exactly until upkeep folds them in); 0 when
    /// there is no vector index.
    pub unindexed_rows: usize,
    pub text_index: bool,
    pub vector_index: bool,
    /// When the current version was committed (RFC 3339, UTC); absent before the first write.
    pub updated_at: Option<String>,
}

/// When a collection looks after itself, and what one round of upkeep did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpkeepPolicy {
    /// Commits since the last upkeep that make [`Collection::maybe_optimize`] run one.
    pub after_commits: usize,
    /// Versions younger than this are kept, so that a reader on a recent snapshot (here or in
    /// another process) never loses its files.
    pub keep_versions_for: Duration,
}

impl Default for UpkeepPolicy {
    fn default() -> Self {
        Self {
            after_commits: 50,
            keep_versions_for: Duration::from_secs(60),
        }
    }
}

/// What "now" is to a collection's upkeep: the wall clock, or a test's (so a test ages versions
/// by moving its clock, not by sleeping).
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> chrono::DateTime<chrono::Utc> + Send + Sync>);

impl Clock {
    pub fn new(now: impl Fn() -> chrono::DateTime<chrono::Utc> + Send + Sync + 'static) -> Self {
        Self(Arc::new(now))
    }

    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new(chrono::Utc::now)
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({})", self.now())
    }
}

/// What one round of upkeep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Upkeep {
    pub fragments_before: usize,
    pub fragments_after: usize,
    pub versions_removed: u64,
    pub bytes_removed: u64,
}

/// A collection, its model and its [`Stats`], as one flat JSON object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CollectionInfo {
    pub name: String,
    #[serde(flatten)]
    pub model: ModelSpec,
    #[serde(flatten)]
    pub stats: Stats,
}

/// A collection: a lance dataset (created by the first write) for one model.
#[derive(Debug)]
pub struct Collection {
    name: String,
    uri: String,
    spec: ModelSpec,
    /// The latest snapshot this handle knows. The lock is held only to read or swap the
    /// `Arc`, never across I/O, so searches never wait for a commit.
    dataset: RwLock<Option<Arc<Dataset>>>,
    policy: IndexPolicy,
    upkeep: UpkeepPolicy,
    commits_since_upkeep: AtomicUsize,
    /// The last upkeep kept versions because they were young: the next idle round removes them.
    versions_kept: AtomicBool,
    /// One upkeep at a time per handle.
    upkeep_running: tokio::sync::Mutex<()>,
    /// What versions' ages are measured against.
    clock: Clock,
    access: Arc<Access>,
    /// When storage was last asked for a newer version (see `StoreOptions::read_consistency`).
    last_check: std::sync::Mutex<Option<Instant>>,
}

fn is_not_found(err: &lance::Error) -> bool {
    matches!(
        err,
        lance::Error::DatasetNotFound { .. } | lance::Error::NotFound { .. }
    )
}

fn norm_label(normalized: bool) -> &'static str {
    if normalized {
        ", normalized"
    } else {
        ", not normalized"
    }
}

impl Collection {
    pub(crate) async fn open_or_prepare(
        name: &str,
        uri: &str,
        spec: Option<&ModelSpec>,
        access: &Arc<Access>,
    ) -> Result<Self> {
        let (dataset, stored) = match access.open(uri).await {
            Ok(ds) => {
                let stored = ModelSpec::from_metadata(&ds.schema().metadata).ok_or_else(|| {
                    StoreError::NotFathom {
                        path: uri.to_string(),
                    }
                })?;
                (Some(Arc::new(ds)), Some(stored))
            }
            Err(e) if is_not_found(&e) => (None, None),
            Err(e) => return Err(storage_error(uri, e)),
        };
        let spec = match (stored, spec) {
            (Some(stored), Some(wanted)) if !stored.compatible(wanted) => {
                return Err(StoreError::ModelMismatch {
                    name: name.to_string(),
                    stored_model: stored.model,
                    stored_dim: stored.dimension,
                    stored_norm: norm_label(stored.normalized),
                    model: wanted.model.clone(),
                    dim: wanted.dimension,
                    norm: norm_label(wanted.normalized),
                })
            }
            (Some(stored), _) => stored,
            (None, Some(wanted)) => wanted.clone(),
            (None, None) => ModelSpec {
                model: String::new(),
                dimension: 0,
                normalized: false,
            },
        };
        Ok(Self {
            name: name.to_string(),
            uri: uri.to_string(),
            spec,
            dataset: RwLock::new(dataset),
            policy: IndexPolicy::default(),
            upkeep: UpkeepPolicy::default(),
            commits_since_upkeep: AtomicUsize::new(0),
            versions_kept: AtomicBool::new(false),
            upkeep_running: tokio::sync::Mutex::new(()),
            clock: Clock::default(),
            access: access.clone(),
            last_check: std::sync::Mutex::new(Some(Instant::now())),
        })
    }

    pub fn with_index_policy(mut self, policy: IndexPolicy) -> Self {
        self.policy = policy;
        self
    }

    pub fn index_policy(&self) -> &IndexPolicy {
        &self.policy
    }

    pub fn with_upkeep_policy(mut self, policy: UpkeepPolicy) -> Self {
        self.upkeep = policy;
        self
    }

    /// Measures versions' ages against `clock` instead of the wall clock.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    pub fn exists(&self) -> bool {
        self.dataset.try_read().map(|d| d.is_some()).unwrap_or(true)
    }

    /// The current snapshot: this handle's own commits at once, other writers' commits once
    /// the read-consistency interval has passed since storage was last asked. Never waits for
    /// a write in progress: writers build new versions without the lock.
    /// Names the store's URI in a storage failure of `result` (not reachable, no permission,
    /// no bucket); other errors pass through. Every public operation's result goes through it.
    pub(crate) fn at_uri<T>(&self, result: Result<T>) -> Result<T> {
        result.map_err(|e| match e {
            StoreError::Lance(e) => storage_error(&self.uri, e),
            other => other,
        })
    }

    pub(crate) async fn snapshot(&self) -> Result<Option<Arc<Dataset>>> {
        let known = self.dataset.read().await.clone();
        if known.is_some() && !self.due_for_check() {
            return Ok(known);
        }
        match known {
            Some(ds) => {
                let latest = ds
                    .latest_version_id()
                    .await
                    .map_err(|e| storage_error(&self.uri, e))?;
                if latest == ds.version().version {
                    return Ok(Some(ds));
                }
                let mut fresh = (*ds).clone();
                fresh
                    .checkout_latest()
                    .await
                    .map_err(|e| storage_error(&self.uri, e))?;
                Ok(Some(self.install(fresh).await))
            }
            None => match self.access.open(&self.uri).await {
                Ok(ds) => Ok(Some(self.install(ds).await)),
                Err(e) if is_not_found(&e) => Ok(None),
                Err(e) => Err(storage_error(&self.uri, e)),
            },
        }
    }

    /// Whether the read-consistency interval has passed since storage was last asked (and if
    /// so, starts the next one).
    fn due_for_check(&self) -> bool {
        let interval = self.access.read_consistency();
        if interval.is_zero() {
            return true;
        }
        let mut last = self.last_check.lock().unwrap_or_else(|p| p.into_inner());
        match *last {
            Some(at) if at.elapsed() < interval => false,
            _ => {
                *last = Some(Instant::now());
                true
            }
        }
    }

    /// Makes `ds` the known snapshot unless a newer one is known already; returns the newer.
    async fn install(&self, ds: impl Into<Arc<Dataset>>) -> Arc<Dataset> {
        let ds = ds.into();
        let mut guard = self.dataset.write().await;
        match guard.as_ref() {
            Some(known) if known.version().version >= ds.version().version => known.clone(),
            _ => {
                *guard = Some(ds.clone());
                ds
            }
        }
    }

    /// Commits made through this handle since its last upkeep.
    pub fn pending_commits(&self) -> usize {
        self.commits_since_upkeep.load(Ordering::Relaxed)
    }

    /// Whether an idle round of upkeep has work: commits since the last one, or versions the
    /// last one kept because they were younger than `UpkeepPolicy::keep_versions_for`.
    pub fn needs_upkeep(&self) -> bool {
        self.pending_commits() > 0 || self.versions_kept.load(Ordering::Relaxed)
    }

    fn committed(&self) {
        self.commits_since_upkeep.fetch_add(1, Ordering::Relaxed);
    }

    /// Replaces every chunk of each given source by its new chunks, in one atomic commit: a reader
    /// sees all of the old chunks or all of the new ones. Sources with no chunks are deleted.
    /// Concurrent writers are retried on conflict.
    pub async fn replace_sources(&self, sources: &[SourceChunks]) -> Result<WriteStats> {
        self.at_uri(self.replace_sources_inner(sources).await)
    }

    async fn replace_sources_inner(&self, sources: &[SourceChunks]) -> Result<WriteStats> {
        if sources.is_empty() {
            return Ok(WriteStats::default());
        }
        let batch = schema::to_batch(&self.spec, sources)?;
        let ids: Vec<String> = sources.iter().map(|s| sql_str(&s.source_id)).collect();
        let predicate = format!("{SOURCE_ID} IN ({})", ids.join(", "));
        let Some(current) = self.snapshot().await? else {
            // The first write creates the dataset with the model recorded in its schema.
            let rows = batch.num_rows() as u64;
            if let Some(ds) = self.create(batch).await? {
                self.install(ds).await;
                self.committed();
                return Ok(WriteStats {
                    inserted: rows,
                    deleted: 0,
                });
            }
            // Another writer created it first: merge against theirs, which the next
            // snapshot() reads from storage.
            *self.last_check.lock().unwrap_or_else(|p| p.into_inner()) = None;
            return Box::pin(self.replace_sources(sources)).await;
        };
        if batch.num_rows() == 0 {
            let mut ds = (*current).clone();
            let result = ds
                .delete(&predicate)
                .await
                .map_err(|e| storage_error(&self.uri, e))?;
            self.install(result.new_dataset).await;
            self.committed();
            return Ok(WriteStats {
                inserted: 0,
                deleted: result.num_deleted_rows,
            });
        }
        let current = self.with_location_column(current).await?;
        let delete_if = WhenNotMatchedBySource::delete_if(&current, &predicate)?;
        let mut builder = MergeInsertBuilder::try_new(current, vec![schema::CHUNK_ID.to_string()])?;
        builder
            .when_matched(WhenMatched::UpdateAll)
            .when_not_matched(WhenNotMatched::InsertAll)
            .when_not_matched_by_source(delete_if)
            .conflict_retries(20);
        let job = builder.try_build()?;
        let (ds, stats) = job
            .execute_batches(vec![batch])
            .await
            .map_err(|e| storage_error(&self.uri, e))?;
        self.install(ds).await;
        self.committed();
        Ok(WriteStats {
            inserted: stats.num_inserted_rows + stats.num_updated_rows,
            deleted: stats.num_deleted_rows,
        })
    }

    /// A collection written before chunks had locations gains the column, as nulls for the rows
    /// it holds (a metadata-only commit), so that new rows can carry theirs.
    async fn with_location_column(&self, current: Arc<Dataset>) -> Result<Arc<Dataset>> {
        if current.schema().field(schema::LOCATION).is_some() {
            return Ok(current);
        }
        let mut ds = (*current).clone();
        let column = arrow_schema::Schema::new(vec![arrow_schema::Field::new(
            schema::LOCATION,
            arrow_schema::DataType::Utf8,
            true,
        )]);
        // Boxed: lance's schema-evolution future nests deep enough that every caller's future
        // would pass rustc's layout depth limit.
        let added = Box::pin(ds.add_columns(
            lance::dataset::NewColumnTransform::AllNulls(Arc::new(column)),
            None,
            None,
        ))
        .await;
        match added {
            Ok(()) => Ok(self.install(ds).await),
            // Another writer added it first.
            Err(_) => {
                let mut fresh = (*current).clone();
                fresh
                    .checkout_latest()
                    .await
                    .map_err(|e| storage_error(&self.uri, e))?;
                if fresh.schema().field(schema::LOCATION).is_some() {
                    Ok(self.install(fresh).await)
                } else {
                    Err(StoreError::Schema {
                        column: schema::LOCATION.to_string(),
                        expected:
                            "a nullable string column (adding it to an older collection failed)",
                    })
                }
            }
        }
    }

    /// Creates the dataset holding `batch`; `None` when another writer created it first.
    ///
    /// Not `Dataset::write(WriteMode::Create)`: lance 14 looks for an existing dataset once
    /// before writing the data files and again before committing, and when another writer
    /// created it in between, commits the creation as an Overwrite of theirs (their sources
    /// gone, their index builds refused). Committing with no retries makes lance refuse that
    /// case instead (a strict overwrite of version 0, which never exists); the data files
    /// written for the refused commit are left unreferenced.
    async fn create(&self, batch: RecordBatch) -> Result<Option<Dataset>> {
        let params = WriteParams {
            mode: WriteMode::Create,
            store_params: self.access.store_params(),
            session: Some(self.access.session.clone()),
            ..Default::default()
        };
        let transaction = match InsertBuilder::new(self.uri.as_str())
            .with_params(&params)
            .execute_uncommitted(vec![batch])
            .await
        {
            Ok(transaction) => transaction,
            Err(lance::Error::DatasetAlreadyExists { .. }) => return Ok(None),
            Err(e) => return Err(storage_error(&self.uri, e)),
        };
        let mut commit = CommitBuilder::new(self.uri.as_str())
            .with_session(self.access.session.clone())
            .with_max_retries(0);
        if let Some(store_params) = self.access.store_params() {
            commit = commit.with_store_params(store_params);
        }
        match commit.execute(transaction).await {
            Ok(ds) if ds.version().version == 1 => Ok(Some(ds)),
            Ok(ds) => Err(StoreError::CreatedOver {
                name: self.name.clone(),
                version: ds.version().version,
            }),
            Err(lance::Error::DatasetAlreadyExists { .. }) => Ok(None),
            // Refused because the dataset now exists: someone else's creation won.
            Err(e) => match self.access.open(&self.uri).await {
                Ok(_) => Ok(None),
                Err(_) => Err(storage_error(&self.uri, e)),
            },
        }
    }

    /// Deletes every chunk of these sources in one commit; returns the chunks deleted.
    pub async fn delete_sources(&self, source_ids: &[String]) -> Result<u64> {
        self.at_uri(self.delete_sources_inner(source_ids).await)
    }

    async fn delete_sources_inner(&self, source_ids: &[String]) -> Result<u64> {
        if source_ids.is_empty() {
            return Ok(0);
        }
        let Some(current) = self.snapshot().await? else {
            return Ok(0);
        };
        let ids: Vec<String> = source_ids.iter().map(|s| sql_str(s)).collect();
        let mut ds = (*current).clone();
        let result = ds
            .delete(&format!("{SOURCE_ID} IN ({})", ids.join(", ")))
            .await?;
        self.install(result.new_dataset).await;
        self.committed();
        Ok(result.num_deleted_rows)
    }

    /// Every source with its content hash and number of chunks, sorted by id.
    pub async fn sources(&self) -> Result<Vec<SourceInfo>> {
        self.at_uri(self.sources_inner().await)
    }

    async fn sources_inner(&self) -> Result<Vec<SourceInfo>> {
        let Some(ds) = self.snapshot().await? else {
            return Ok(Vec::new());
        };
        let mut scanner = ds.scan();
        scanner.project(&[SOURCE_ID, SOURCE_HASH])?;
        let mut stream = scanner.try_into_stream().await?;
        let mut map: BTreeMap<String, (String, usize)> = BTreeMap::new();
        while let Some(batch) = stream.try_next().await? {
            let ids = string_column(&batch, SOURCE_ID)?;
            let hashes = string_column(&batch, SOURCE_HASH)?;
            for i in 0..batch.num_rows() {
                let entry = map
                    .entry(ids.value(i).to_string())
                    .or_insert_with(|| (hashes.value(i).to_string(), 0));
                entry.1 += 1;
            }
        }
        Ok(map
            .into_iter()
            .map(|(source_id, (source_hash, chunks))| SourceInfo {
                source_id,
                source_hash,
                chunks,
            })
            .collect())
    }

    pub async fn stats(&self) -> Result<Stats> {
        self.at_uri(self.stats_inner().await)
    }

    async fn stats_inner(&self) -> Result<Stats> {
        let stats = self.storage_stats().await?;
        Ok(Stats {
            sources: self.sources().await?.len(),
            ..stats
        })
    }

    /// [`Stats`] without `sources` (which scans the source column): what metrics read often.
    pub async fn storage_stats(&self) -> Result<Stats> {
        self.at_uri(self.storage_stats_inner().await)
    }

    async fn storage_stats_inner(&self) -> Result<Stats> {
        let Some(ds) = self.snapshot().await? else {
            return Ok(Stats::default());
        };
        let indexes = ds.load_indices().await?;
        let vector_index = indexes.iter().any(|i| i.name == VECTOR_INDEX);
        let unindexed_rows = if vector_index {
            let mut rows = 0;
            for fragment in ds.unindexed_fragments(VECTOR_INDEX).await? {
                rows += fragment.num_rows().unwrap_or(0);
            }
            rows
        } else {
            0
        };
        Ok(Stats {
            chunks: ds.count_rows(None).await?,
            sources: 0,
            version: ds.version().version,
            updated_at: Some(
                ds.version()
                    .timestamp
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ),
            versions: ds.versions().await?.len(),
            fragments: ds.count_fragments(),
            unindexed_rows,
            text_index: indexes.iter().any(|i| i.name == TEXT_INDEX),
            vector_index,
        })
    }

    pub async fn info(&self) -> Result<CollectionInfo> {
        self.at_uri(self.info_inner().await)
    }

    async fn info_inner(&self) -> Result<CollectionInfo> {
        Ok(CollectionInfo {
            name: self.name.clone(),
            model: self.spec.clone(),
            stats: self.stats().await?,
        })
    }

    /// Builds or refreshes the indexes after writes: the full-text index always, the vector
    /// index once the collection reaches the policy's threshold. Rows written after an index was
    /// last updated stay searchable (lance searches them without the index) until this runs.
    ///
    /// Another process may build or refresh an index at the same moment (three ingests into one
    /// collection): lance then refuses one commit as a retryable conflict, and this tries again
    /// on the newer snapshot, where the other's index is already there.
    pub async fn update_indexes(&self) -> Result<()> {
        self.at_uri(self.update_indexes_inner().await)
    }

    /// Index updates are upkeep, not part of a write: the rows are committed and searchable
    /// (lance searches rows no index covers yet) before this runs. When other writers keep
    /// winning the race to commit an index change, it gives up after a few tries and leaves the
    /// work to the next write or the idle upkeep — the write itself has succeeded. Only a
    /// collection without its text index at all must get one now.
    async fn update_indexes_inner(&self) -> Result<()> {
        let mut attempt: u64 = 0;
        loop {
            match self.update_indexes_once().await {
                Err(StoreError::Lance(
                    e @ (lance::Error::RetryableCommitConflict { .. }
                    | lance::Error::CommitConflict { .. }),
                )) => {
                    attempt += 1;
                    if attempt >= 8 {
                        if self.has_text_index().await? {
                            tracing::warn!(collection = self.name(), error = %e, "index update lost to other writers {attempt} times; left for the next write or the idle upkeep");
                            return Ok(());
                        }
                        return Err(StoreError::Lance(e));
                    }
                    // Backoff with jitter, so two writers that collided do not collide again.
                    let jitter = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| u64::from(d.subsec_nanos()) % 100);
                    let wait = 50 * attempt + jitter;
                    tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                }
                other => return other,
            }
        }
    }

    async fn has_text_index(&self) -> Result<bool> {
        let Some(current) = self.snapshot().await? else {
            return Ok(false);
        };
        Ok(current
            .load_indices()
            .await?
            .iter()
            .any(|i| i.name == TEXT_INDEX))
    }

    async fn update_indexes_once(&self) -> Result<()> {
        let Some(current) = self.snapshot().await? else {
            return Ok(());
        };
        let mut ds = (*current).clone();
        let indexes = ds.load_indices().await?;
        let has_text = indexes.iter().any(|i| i.name == TEXT_INDEX);
        let has_vector = indexes.iter().any(|i| i.name == VECTOR_INDEX);
        if !has_text {
            ds.create_index(
                &[TEXT],
                IndexType::Inverted,
                Some(TEXT_INDEX.to_string()),
                &InvertedIndexParams::default(),
                true,
            )
            .await?;
        }
        let rows = ds.count_rows(None).await?;
        if !has_vector && rows >= self.policy.ann_threshold {
            let partitions = ivf_partitions(rows);
            let sub_vectors = pq_sub_vectors(self.spec.dimension);
            let params =
                VectorIndexParams::ivf_pq(partitions, 8, sub_vectors, DistanceType::Cosine, 50);
            ds.create_index(
                &[VECTOR],
                IndexType::Vector,
                Some(VECTOR_INDEX.to_string()),
                &params,
                true,
            )
            .await?;
        }
        if has_text || has_vector {
            ds.optimize_indices(&OptimizeOptions::default()).await?;
        }
        self.install(ds).await;
        Ok(())
    }

    /// Upkeep: merges small fragments into large ones (lance's `compact_files`, which also
    /// drops deleted rows and remaps the indexes), folds new rows into the indexes, and removes
    /// versions older than the policy's grace period (`cleanup_old_versions`). Readers go on
    /// reading their snapshots throughout; a writer that commits meanwhile wins and this round's
    /// compaction is retried by lance or left for the next round.
    pub async fn optimize(&self) -> Result<Upkeep> {
        self.at_uri(self.optimize_inner().await)
    }

    async fn optimize_inner(&self) -> Result<Upkeep> {
        let _one_at_a_time = self.upkeep_running.lock().await;
        self.commits_since_upkeep.store(0, Ordering::Relaxed);
        let Some(current) = self.snapshot().await? else {
            return Ok(Upkeep::default());
        };
        let mut ds = (*current).clone();
        let fragments_before = ds.count_fragments();
        compact_files(&mut ds, CompactionOptions::default(), None).await?;
        self.install(ds).await;
        self.update_indexes().await?;
        let cleaned = self.remove_old_versions().await?;
        Ok(Upkeep {
            fragments_before,
            ..cleaned
        })
    }

    /// Removes versions older than `UpkeepPolicy::keep_versions_for` (never the current one),
    /// without compacting or touching indexes: commits nothing.
    async fn remove_old_versions(&self) -> Result<Upkeep> {
        let Some(current) = self.snapshot().await? else {
            return Ok(Upkeep::default());
        };
        // A keep time too long to subtract from now keeps every version.
        let cutoff = chrono::TimeDelta::from_std(self.upkeep.keep_versions_for)
            .ok()
            .and_then(|keep| self.clock.now().checked_sub_signed(keep))
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
        let policy = lance::dataset::cleanup::CleanupPolicyBuilder::default()
            .before_timestamp(cutoff)
            .delete_unverified(false)
            .error_if_tagged_old_versions(false)
            .build();
        let removed = current.cleanup_with_policy(policy).await?;
        let versions_left = current.versions().await?.len();
        self.versions_kept
            .store(versions_left > 1, Ordering::Relaxed);
        Ok(Upkeep {
            fragments_before: current.count_fragments(),
            fragments_after: current.count_fragments(),
            versions_removed: removed.old_versions,
            bytes_removed: removed.bytes_removed,
        })
    }

    /// What a quiet server does now and then: a full [`Collection::optimize`] after commits
    /// through this handle, else only the removal of versions the last round kept because they
    /// were young. `None` when there was nothing to do.
    pub async fn idle_upkeep(&self) -> Result<Option<Upkeep>> {
        self.at_uri(self.idle_upkeep_inner().await)
    }

    async fn idle_upkeep_inner(&self) -> Result<Option<Upkeep>> {
        if self.pending_commits() > 0 {
            return self.optimize().await.map(Some);
        }
        if !self.versions_kept.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let Ok(_one_at_a_time) = self.upkeep_running.try_lock() else {
            return Ok(None);
        };
        self.remove_old_versions().await.map(Some)
    }

    /// Runs [`Collection::optimize`] when enough commits have piled up since the last one (and
    /// no upkeep is running); `None` when it did not run.
    pub async fn maybe_optimize(&self) -> Result<Option<Upkeep>> {
        self.at_uri(self.maybe_optimize_inner().await)
    }

    async fn maybe_optimize_inner(&self) -> Result<Option<Upkeep>> {
        if self.commits_since_upkeep.load(Ordering::Relaxed) < self.upkeep.after_commits
            || self.upkeep_running.try_lock().is_err()
        {
            return Ok(None);
        }
        self.optimize().await.map(Some)
    }
}

pub(crate) fn string_column<'a>(
    batch: &'a arrow_array::RecordBatch,
    name: &str,
) -> Result<&'a StringArray> {
    crate::schema::column(batch, name, "a string column")
}
