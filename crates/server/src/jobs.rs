//! Ingest jobs started by `POST /ingest`: each runs `fathom_ingest::sync_folder` on the runtime,
//! reports progress through `GET /jobs/{id}`, and stops at a source boundary when cancelled
//! (`DELETE /jobs/{id}` or server shutdown), so the store stays consistent.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use fathom_ingest::{CancelFlag, Event, Summary};
use serde::Serialize;
use tokio::task::JoinHandle;
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Running,
    Done,
    Cancelled,
    Failed,
}

/// Progress and outcome of one ingest job.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobStatus {
    pub id: String,
    pub state: JobState,
    pub path: String,
    pub collection: String,
    /// Files to read (new or changed) once the walk is done.
    pub files_to_read: usize,
    pub files_read: usize,
    pub chunks_embedded: usize,
    pub tokens_embedded: usize,
    /// Set when the job has finished (done or cancelled).
    pub summary: Option<JobSummary>,
    /// Set when the job failed.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobSummary {
    pub added: usize,
    pub updated: usize,
    pub deleted: usize,
    pub unchanged: usize,
    pub skipped: usize,
    pub errors: Vec<String>,
    pub chunks: usize,
    pub tokens: usize,
    pub seconds: f64,
}

impl From<&Summary> for JobSummary {
    fn from(s: &Summary) -> Self {
        Self {
            added: s.added,
            updated: s.updated,
            deleted: s.deleted,
            unchanged: s.unchanged,
            skipped: s.skipped_binary + s.skipped_too_large + s.skipped_no_text,
            errors: s
                .errors
                .iter()
                .map(|e| format!("{}: {}", e.path, e.message))
                .collect(),
            chunks: s.chunks,
            tokens: s.tokens,
            seconds: s.seconds,
        }
    }
}

#[derive(Debug)]
struct Job {
    status: Mutex<JobStatus>,
    cancel: CancelFlag,
}

/// All jobs of this server (finished ones stay listed).
#[derive(Debug, Clone, Default)]
pub struct Jobs {
    next: Arc<AtomicU64>,
    jobs: Arc<Mutex<HashMap<String, Arc<Job>>>>,
    running: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

/// What a running job reports through.
#[derive(Debug, Clone)]
pub struct JobHandle {
    job: Arc<Job>,
}

impl JobHandle {
    pub fn cancel_flag(&self) -> CancelFlag {
        self.job.cancel.clone()
    }

    pub fn on_event(&self, event: Event) {
        let mut s = self.job.status.lock().expect("job lock");
        match event {
            Event::Planned { to_read, .. } => s.files_to_read = to_read,
            Event::Read { .. } => s.files_read += 1,
            Event::Embedded { chunks, tokens } => {
                s.chunks_embedded += chunks;
                s.tokens_embedded += tokens;
            }
            Event::Written { .. } | Event::Warning { .. } => {}
        }
    }

    pub fn finish(&self, outcome: Result<Summary, String>) {
        let mut s = self.job.status.lock().expect("job lock");
        match outcome {
            Ok(summary) => {
                s.state = if summary.interrupted {
                    JobState::Cancelled
                } else {
                    JobState::Done
                };
                s.summary = Some(JobSummary::from(&summary));
            }
            Err(e) => {
                s.state = JobState::Failed;
                s.error = Some(e);
            }
        }
    }
}

impl Jobs {
    /// Registers a job and runs `work` for it on the runtime.
    pub fn start<F, Fut>(&self, path: String, collection: String, work: F) -> JobStatus
    where
        F: FnOnce(JobHandle) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let id = format!("job-{}", self.next.fetch_add(1, Ordering::Relaxed) + 1);
        let status = JobStatus {
            id: id.clone(),
            state: JobState::Running,
            path,
            collection,
            files_to_read: 0,
            files_read: 0,
            chunks_embedded: 0,
            tokens_embedded: 0,
            summary: None,
            error: None,
        };
        let job = Arc::new(Job {
            status: Mutex::new(status.clone()),
            cancel: CancelFlag::default(),
        });
        self.jobs.lock().expect("jobs lock").insert(id, job.clone());
        let task = tokio::spawn(work(JobHandle { job }));
        let mut running = self.running.lock().expect("jobs lock");
        running.retain(|h| !h.is_finished());
        running.push(task);
        status
    }

    pub fn status(&self, id: &str) -> Option<JobStatus> {
        let jobs = self.jobs.lock().expect("jobs lock");
        jobs.get(id)
            .map(|j| j.status.lock().expect("job lock").clone())
    }

    /// Asks one job to stop at the next source boundary; `false` when there is no such job.
    pub fn cancel(&self, id: &str) -> bool {
        let jobs = self.jobs.lock().expect("jobs lock");
        match jobs.get(id) {
            Some(j) => {
                j.cancel.store(true, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// Asks every job to stop at the next source boundary.
    pub fn cancel_all(&self) {
        for j in self.jobs.lock().expect("jobs lock").values() {
            j.cancel.store(true, Ordering::Relaxed);
        }
    }

    /// Waits until every job has stopped.
    pub async fn wait_all(&self) {
        let handles: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.running.lock().expect("jobs lock"));
        for h in handles {
            let _ = h.await;
        }
    }
}
