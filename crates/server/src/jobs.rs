//! Ingest jobs started by `POST /ingest`: each runs `fathom_ingest::sync_folder` on the runtime,
//! reports progress through `GET /jobs/{id}`, and stops at a source boundary when cancelled
//! (`DELETE /jobs/{id}` or server shutdown), so the store stays consistent.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use fathom_ingest::{CancellationToken, Event, IngestError, Summary};
use serde::Serialize;
use tokio::task::JoinHandle;
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for one of the `--max-ingest-jobs` slots.
    Queued,
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
    /// Set when the job has finished (done or cancelled, or failed after committing part of
    /// the work).
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
    /// Sources kept although not seen, because their folder could not be listed.
    pub kept: usize,
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
            skipped: s.skipped(),
            kept: s.kept,
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
    cancel: CancellationToken,
    /// Becomes `true` once the job's task has ended, however it ended.
    ended: tokio::sync::watch::Sender<bool>,
}

/// Finished jobs kept for `GET /jobs` and `GET /jobs/{id}`; older finished ones are forgotten.
const FINISHED_KEPT: usize = 100;

/// All jobs of this server (the last [`FINISHED_KEPT`] finished ones stay listed). At most
/// `max_running` run at once;
/// up to `max_queued` more wait for a slot; beyond that, starting one is refused.
#[derive(Debug, Clone)]
pub struct Jobs {
    next: Arc<AtomicU64>,
    jobs: Arc<Mutex<HashMap<String, Arc<Job>>>>,
    running: Arc<Mutex<Vec<JoinHandle<()>>>>,
    slots: Arc<tokio::sync::Semaphore>,
    /// Jobs queued or running now.
    open: Arc<std::sync::atomic::AtomicUsize>,
    max_open: usize,
    /// Set by [`Jobs::cancel_all`] (server shutdown): folder watches stop too.
    stopping: CancellationToken,
}

/// Starting a job was refused: this many are queued or running already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyJobs(pub usize);

/// Decrements the open-jobs count however the job's task ends.
struct OpenGuard(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Marks a job ended however its task ends.
struct EndGuard(Arc<Job>);

impl Drop for EndGuard {
    fn drop(&mut self) {
        self.0.ended.send_replace(true);
    }
}

/// What a running job reports through.
#[derive(Debug, Clone)]
pub struct JobHandle {
    job: Arc<Job>,
}

impl JobHandle {
    pub fn cancel_flag(&self) -> CancellationToken {
        self.job.cancel.clone()
    }

    pub fn on_event(&self, event: Event) {
        let mut s = lock(&self.job.status);
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

    pub fn finish(&self, outcome: Result<Summary, IngestError>) {
        let mut s = lock(&self.job.status);
        match outcome {
            Err(IngestError::Incomplete { reason, summary }) => {
                s.state = JobState::Failed;
                s.error = Some(format!(
                    "stopped early ({reason}): the sources done were committed, nothing was deleted; run it again to finish"
                ));
                s.summary = Some(JobSummary::from(summary.as_ref()));
            }
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
                s.error = Some(e.to_string());
            }
        }
    }
}

impl Jobs {
    pub fn new(max_running: usize, max_queued: usize) -> Self {
        Self {
            next: Arc::default(),
            jobs: Arc::default(),
            running: Arc::default(),
            slots: Arc::new(tokio::sync::Semaphore::new(max_running.max(1))),
            open: Arc::default(),
            max_open: max_running.max(1) + max_queued,
            stopping: CancellationToken::new(),
        }
    }

    /// Registers a job and runs `work` for it on the runtime once a slot is free.
    pub fn start<F, Fut>(
        &self,
        path: String,
        collection: String,
        work: F,
    ) -> Result<JobStatus, TooManyJobs>
    where
        F: FnOnce(JobHandle) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let open = self.open.fetch_add(1, Ordering::Relaxed);
        let guard = OpenGuard(self.open.clone());
        if open >= self.max_open {
            return Err(TooManyJobs(self.max_open));
        }
        let id = format!("job-{}", self.next.fetch_add(1, Ordering::Relaxed) + 1);
        let status = JobStatus {
            id: id.clone(),
            state: JobState::Queued,
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
            // Cancelled with the server too.
            cancel: self.stopping.child_token(),
            ended: tokio::sync::watch::Sender::new(false),
        });
        {
            let mut jobs = lock(&self.jobs);
            forget_old_finished(&mut jobs);
            jobs.insert(id, job.clone());
        }
        // A job that panics ends `failed`, never stays `running`.
        let work = work(JobHandle { job: job.clone() });
        let slots = self.slots.clone();
        let task = tokio::spawn(async move {
            let _guard = guard;
            let _ended = EndGuard(job.clone());
            let Ok(_slot) = slots.acquire_owned().await else {
                return;
            };
            {
                let mut s = lock(&job.status);
                if job.cancel.is_cancelled() {
                    s.state = JobState::Cancelled;
                    return;
                }
                s.state = JobState::Running;
            }
            if let Err(e) = tokio::spawn(work).await {
                let mut s = lock(&job.status);
                if s.state == JobState::Running {
                    s.state = JobState::Failed;
                    s.error = Some(if e.is_panic() {
                        "the job failed unexpectedly (a panic; see the server log); nothing was deleted".into()
                    } else {
                        "the job was aborted".into()
                    });
                }
            }
        });
        let mut running = lock(&self.running);
        running.retain(|h| !h.is_finished());
        running.push(task);
        Ok(status)
    }

    pub fn status(&self, id: &str) -> Option<JobStatus> {
        let jobs = lock(&self.jobs);
        jobs.get(id).map(|j| lock(&j.status).clone())
    }

    /// Every job kept, newest first.
    pub fn list(&self) -> Vec<JobStatus> {
        let jobs = lock(&self.jobs);
        let mut all: Vec<(u64, JobStatus)> = jobs
            .iter()
            .map(|(id, j)| (job_number(id), lock(&j.status).clone()))
            .collect();
        all.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
        all.into_iter().map(|(_, s)| s).collect()
    }

    /// Asks one job to stop at the next source boundary; its status as it was asked, `None`
    /// when there is no such job. Found and read under one lock, so a job forgotten meanwhile
    /// (finished jobs are dropped as new ones start) cannot turn a found job into a missing one.
    pub fn cancel(&self, id: &str) -> Option<JobStatus> {
        let jobs = lock(&self.jobs);
        let job = jobs.get(id)?;
        job.cancel.cancel();
        let status = lock(&job.status).clone();
        Some(status)
    }

    /// Waits until job `id` has ended; its final status (`None` for no such job).
    pub async fn wait(&self, id: &str) -> Option<JobStatus> {
        let job = lock(&self.jobs).get(id).cloned()?;
        let mut ended = job.ended.subscribe();
        let _ = ended.wait_for(|e| *e).await;
        let status = lock(&job.status).clone();
        Some(status)
    }

    /// Set once the server is shutting down.
    pub fn stopping(&self) -> &CancellationToken {
        &self.stopping
    }

    /// Asks every job to stop at the next source boundary (each job's token is a child of
    /// `stopping`).
    pub fn cancel_all(&self) {
        self.stopping.cancel();
    }

    /// Waits until every job has stopped.
    pub async fn wait_all(&self) {
        let handles: Vec<JoinHandle<()>> = std::mem::take(&mut *lock(&self.running));
        for h in handles {
            let _ = h.await;
        }
    }
}

fn job_number(id: &str) -> u64 {
    id.strip_prefix("job-")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn finished(state: JobState) -> bool {
    matches!(
        state,
        JobState::Done | JobState::Cancelled | JobState::Failed
    )
}

/// Keeps the job table bounded: beyond [`FINISHED_KEPT`] finished jobs, the oldest go.
/// Locks `m`, also after a holder panicked: job state stays readable, so one failed job never
/// turns every later request into a 500.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn forget_old_finished(jobs: &mut HashMap<String, Arc<Job>>) {
    let mut done: Vec<u64> = jobs
        .iter()
        .filter(|(_, j)| finished(lock(&j.status).state))
        .map(|(id, _)| job_number(id))
        .collect();
    if done.len() < FINISHED_KEPT {
        return;
    }
    done.sort_unstable();
    let forget = done.len() + 1 - FINISHED_KEPT;
    for n in &done[..forget] {
        jobs.remove(&format!("job-{n}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_beyond_the_running_limit_queue_and_beyond_the_queue_are_refused() {
        let jobs = Jobs::new(1, 1);
        let (release, released) = tokio::sync::watch::channel(false);
        // Each job says when it starts running, then waits for the release.
        let (started, mut running) = tokio::sync::mpsc::unbounded_channel::<()>();
        let blocker = |mut released: tokio::sync::watch::Receiver<bool>| {
            let started = started.clone();
            move |job: JobHandle| async move {
                let _ = started.send(());
                let _ = released.wait_for(|r| *r).await;
                job.finish(Ok(Summary::default()));
            }
        };
        let first = jobs
            .start("a".into(), "c".into(), blocker(released.clone()))
            .unwrap();
        let second = jobs
            .start("b".into(), "c".into(), blocker(released.clone()))
            .unwrap();
        assert_eq!(
            jobs.start("c".into(), "c".into(), blocker(released.clone()))
                .unwrap_err(),
            TooManyJobs(2)
        );
        running.recv().await.expect("the first job starts");
        assert_eq!(jobs.status(&first.id).unwrap().state, JobState::Running);
        assert_eq!(jobs.status(&second.id).unwrap().state, JobState::Queued);
        release.send(true).unwrap();
        jobs.wait_all().await;
        assert_eq!(jobs.status(&second.id).unwrap().state, JobState::Done);
        // Slots are free again.
        assert!(jobs
            .start("d".into(), "c".into(), blocker(released))
            .is_ok());
    }

    #[tokio::test]
    async fn jobs_are_listed_newest_first_and_old_finished_ones_are_forgotten() {
        let jobs = Jobs::new(4, 0);
        for i in 0..FINISHED_KEPT + 5 {
            jobs.start(format!("p{i}"), "c".into(), |job: JobHandle| async move {
                job.finish(Ok(Summary::default()));
            })
            .unwrap();
            jobs.wait_all().await;
        }
        let listed = jobs.list();
        assert_eq!(listed.len(), FINISHED_KEPT);
        assert_eq!(listed[0].id, format!("job-{}", FINISHED_KEPT + 5));
        assert_eq!(listed.last().unwrap().id, "job-6");
        assert!(listed.iter().all(|s| s.state == JobState::Done));
        assert!(jobs.status("job-1").is_none());
    }

    /// `cancel` races the forgetting of old finished jobs (every start forgets the oldest): it
    /// answers with the status it found, or `None`, never with a job that vanished between
    /// finding and reading it. (`DELETE /jobs/{id}` once looked the job up twice and panicked,
    /// a 500, when a start forgot it in between.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cancel_never_loses_to_forgetting_finished_jobs() {
        let jobs = Jobs::new(4, 0);
        let done = |job: JobHandle| async move {
            job.finish(Ok(Summary::default()));
        };
        let mut old = Vec::new();
        for _ in 0..FINISHED_KEPT {
            old.push(jobs.start("p".into(), "c".into(), done).unwrap().id);
            jobs.wait_all().await;
        }
        let (first_pass, passed) = std::sync::mpsc::channel();
        let canceller = {
            let (jobs, old) = (jobs.clone(), old.clone());
            std::thread::spawn(move || {
                let mut found = 0;
                for pass in 0..200 {
                    for id in &old {
                        if let Some(status) = jobs.cancel(id) {
                            assert_eq!(&status.id, id);
                            found += 1;
                        }
                    }
                    if pass == 0 {
                        let _ = first_pass.send(());
                    }
                }
                found
            })
        };
        // The later passes race the starts below, each of which forgets one old job.
        passed.recv().expect("the first pass ran");
        for _ in 0..FINISHED_KEPT {
            jobs.start("q".into(), "c".into(), done).unwrap();
            jobs.wait_all().await;
        }
        let found = canceller.join().expect("cancel never panics");
        assert!(
            found >= FINISHED_KEPT,
            "the first pass found every old job: {found}"
        );
        assert!(old.iter().all(|id| jobs.cancel(id).is_none()));
    }

    #[tokio::test]
    async fn a_job_that_panics_ends_failed() {
        let jobs = Jobs::new(1, 0);
        let status = jobs
            .start("a".into(), "c".into(), |_job: JobHandle| async move {
                panic!("injected");
            })
            .unwrap();
        jobs.wait_all().await;
        let status = jobs.status(&status.id).unwrap();
        assert_eq!(status.state, JobState::Failed);
        assert!(status.error.unwrap().contains("panic"));
    }
}
