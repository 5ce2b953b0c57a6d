//! Ingest under hostile input and failures, with the real model and a real lance store: a file
//! that crashes its parser, an embedder that panics or goes away midway, chunk caps, checkpoints,
//! links out of a confined root. Each case checks what the collection holds afterwards.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fathom_ingest::{
    sync_folder, CancellationToken, Embed, EmbedError, Embedded, Event, FolderOptions, IngestError,
    ProblemKind, Summary, WalkOptions,
};
use fathom_model::{Embedder, LoadOptions};
use fathom_store::{Collection, ModelSpec, Store};
use fathom_testkit::{pdf, write};

fn model() -> Arc<Embedder> {
    let dir = fathom_testkit::minilm();
    Arc::new(Embedder::load(dir.to_str().unwrap(), &LoadOptions::default()).unwrap())
}

async fn collection(model: &Embedder, dir: &Path) -> Collection {
    let spec = ModelSpec {
        model: model.layout().name.clone(),
        dimension: model.dimension(),
        normalized: model.layout().normalize,
    };
    Store::new(dir.to_str().unwrap())
        .collection("default", &spec)
        .await
        .unwrap()
}

/// Source id -> (hash, chunks).
async fn contents(c: &Collection) -> BTreeMap<String, (String, usize)> {
    c.sources()
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.source_id, (s.source_hash, s.chunks)))
        .collect()
}

async fn sync_with(
    model: Arc<dyn Embed>,
    c: &Collection,
    root: &Path,
    options: &FolderOptions,
) -> Result<Summary, IngestError> {
    sync_folder(model, c, root, options, &|_| {}, &CancellationToken::new()).await
}

fn twenty_files(root: &Path) {
    for i in 0..20 {
        write(
            root,
            &format!("notes/{i:02}.txt"),
            format!("Note {i}: the lighthouse keeper logged {i} ships passing the reef."),
        );
    }
}

/// The reported case: one PDF that makes the parser panic used to end the reader, and the run
/// then deleted every file it had not reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pdf_that_panics_its_parser_loses_nothing() {
    let model = model();
    let docs = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let c = collection(&model, data.path()).await;
    twenty_files(docs.path());
    write(
        docs.path(),
        "good.pdf",
        pdf::with_text("Green tea is steeped at 80 degrees."),
    );
    let options = FolderOptions::default();
    let first = sync_with(model.clone(), &c, docs.path(), &options)
        .await
        .unwrap();
    assert_eq!(first.added, 21, "{first:?}");
    let before = contents(&c).await;

    write(
        docs.path(),
        "a-broken.pdf",
        pdf::without_media_box("no media box"),
    );
    // A readable PDF that turns into a panicking one keeps its earlier chunks.
    write(
        docs.path(),
        "good.pdf",
        pdf::without_media_box("Green tea, revised."),
    );
    let second = sync_with(model.clone(), &c, docs.path(), &options)
        .await
        .unwrap();
    assert_eq!((second.deleted, second.unchanged), (0, 20), "{second:?}");
    let failed: Vec<(&str, ProblemKind)> = second
        .errors
        .iter()
        .map(|e| (e.path.rsplit('/').next().unwrap(), e.kind))
        .collect();
    assert_eq!(
        failed,
        [
            ("a-broken.pdf", ProblemKind::Error),
            ("good.pdf", ProblemKind::Error)
        ],
        "{:?}",
        second.errors
    );
    assert!(
        second.errors[0].message.contains("panicked"),
        "{:?}",
        second.errors
    );
    assert_eq!(contents(&c).await, before);
}

/// Picks the fault (if any) of the n-th call with these texts.
type FaultPlan = Box<dyn Fn(usize, &[&str]) -> Option<Fault> + Send + Sync>;

/// Wraps the real model; fails (or panics) on the calls a test picks.
struct Faulty {
    inner: Arc<Embedder>,
    calls: AtomicUsize,
    fail: FaultPlan,
}

enum Fault {
    Panic,
    Gone,
}

impl Embed for Faulty {
    fn tokenizer(&self) -> &tokenizers::Tokenizer {
        self.inner.tokenizer()
    }
    fn max_seq_length(&self) -> usize {
        self.inner.max_seq_length()
    }
    fn embed_documents(&self, texts: &[&str]) -> Result<Embedded, EmbedError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        match (self.fail)(call, texts) {
            Some(Fault::Panic) => panic!("injected fault in call {call}"),
            Some(Fault::Gone) => Err(EmbedError::Unavailable(
                "injected: the queue is gone".into(),
            )),
            None => self.inner.embed_documents(texts),
        }
    }
}

fn faulty(
    inner: &Arc<Embedder>,
    fail: impl Fn(usize, &[&str]) -> Option<Fault> + Send + Sync + 'static,
) -> Arc<dyn Embed> {
    Arc::new(Faulty {
        inner: inner.clone(),
        calls: AtomicUsize::new(0),
        fail: Box::new(fail),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedder_that_goes_away_midway_commits_whole_files_and_deletes_nothing() {
    let model = model();
    let docs = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let c = collection(&model, data.path()).await;
    twenty_files(docs.path());
    let options = FolderOptions {
        embed_batch: 2,
        write_batch: 2,
        ..FolderOptions::default()
    };
    sync_with(model.clone(), &c, docs.path(), &options)
        .await
        .unwrap();
    // Every file changes, and one is gone: a run that stops must not delete it.
    for i in 0..20 {
        write(
            docs.path(),
            &format!("notes/{i:02}.txt"),
            format!("Note {i}, revised: the keeper counted {} gulls.", i * 3),
        );
    }
    std::fs::remove_file(docs.path().join("notes/19.txt")).unwrap();
    let err = sync_with(
        faulty(&model, |call, _| (call >= 3).then_some(Fault::Gone)),
        &c,
        docs.path(),
        &options,
    )
    .await
    .unwrap_err();
    let IngestError::Incomplete { reason, summary } = err else {
        panic!("expected Incomplete, got {err}")
    };
    assert!(reason.contains("injected"), "{reason}");
    assert_eq!(summary.deleted, 0);
    assert_eq!(
        summary.updated, 6,
        "three calls of two files each: {summary:?}"
    );
    let after = contents(&c).await;
    assert_eq!(after.len(), 20, "nothing deleted");
    let revised = after.keys().filter(|id| {
        let path = docs.path().join(
            id.strip_prefix(&fathom_ingest::source_prefix(docs.path()))
                .unwrap(),
        );
        path.is_file()
            && after[*id].0.starts_with(
                &blake3::hash(&std::fs::read(&path).unwrap())
                    .to_hex()
                    .to_string(),
            )
    });
    assert_eq!(revised.count(), 6);

    // The next run with a working model finishes the job: the same as a clean run.
    let rest = sync_with(model.clone(), &c, docs.path(), &options)
        .await
        .unwrap();
    assert_eq!(
        (rest.updated, rest.unchanged, rest.deleted),
        (13, 6, 1),
        "{rest:?}"
    );
    let clean_data = tempfile::tempdir().unwrap();
    let clean = collection(&model, clean_data.path()).await;
    sync_with(model.clone(), &clean, docs.path(), &options)
        .await
        .unwrap();
    assert_eq!(contents(&c).await, contents(&clean).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_embedder_fails_only_the_source_it_panics_on() {
    let model = model();
    let docs = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let c = collection(&model, data.path()).await;
    twenty_files(docs.path());
    write(docs.path(), "gone.txt", "A file that will be deleted.");
    sync_with(model.clone(), &c, docs.path(), &FolderOptions::default())
        .await
        .unwrap();
    let before = contents(&c).await;
    write(
        docs.path(),
        "notes/05.txt",
        "POISON: this text makes the model panic.",
    );
    write(
        docs.path(),
        "notes/06.txt",
        "Note 6, revised: a calm night.",
    );
    std::fs::remove_file(docs.path().join("gone.txt")).unwrap();
    let options = FolderOptions {
        embed_batch: 64,
        ..FolderOptions::default()
    };
    let poisoned = faulty(&model, |_, texts| {
        texts
            .iter()
            .any(|t| t.contains("POISON"))
            .then_some(Fault::Panic)
    });
    let summary = sync_with(poisoned, &c, docs.path(), &options)
        .await
        .unwrap();
    assert_eq!((summary.updated, summary.deleted), (1, 1), "{summary:?}");
    assert_eq!(summary.errors.len(), 1);
    assert!(summary.errors[0].path.ends_with("notes/05.txt"));
    assert!(
        summary.errors[0].message.contains("panicked"),
        "{:?}",
        summary.errors
    );
    let after = contents(&c).await;
    let id5 = before.keys().find(|k| k.ends_with("notes/05.txt")).unwrap();
    assert_eq!(after[id5], before[id5], "the failed file keeps its chunks");
    assert!(!after.keys().any(|k| k.ends_with("gone.txt")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_over_the_chunk_cap_is_cut_and_reported_and_commits_come_by_time() {
    let model = model();
    let docs = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let c = collection(&model, data.path()).await;
    // One huge single line (chunked by token windows) and a few small files.
    write(docs.path(), "huge.log", "ping ".repeat(100_000));
    for i in 0..6 {
        write(
            docs.path(),
            &format!("small-{i}.txt"),
            format!("Small file {i}."),
        );
    }
    let written = Arc::new(AtomicUsize::new(0));
    let count = written.clone();
    let options = FolderOptions {
        max_chunks_per_file: 7,
        embed_batch: 2,
        write_batch: 1_000_000,
        commit_every: Duration::ZERO,
        ..FolderOptions::default()
    };
    let on_event = move |e: Event| {
        if matches!(e, Event::Written { .. }) {
            count.fetch_add(1, Ordering::SeqCst);
        }
    };
    let summary = sync_folder(
        model.clone(),
        &c,
        docs.path(),
        &options,
        &on_event,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(summary.added, 7);
    assert_eq!(summary.errors.len(), 1, "{:?}", summary.errors);
    assert_eq!(summary.errors[0].kind, ProblemKind::Truncated);
    let huge = contents(&c)
        .await
        .into_iter()
        .find(|(k, _)| k.ends_with("huge.log"))
        .unwrap();
    assert_eq!(huge.1 .1, 7);
    // Nothing waited for the size trigger: every embedded batch was committed on its own.
    assert!(
        written.load(Ordering::SeqCst) >= 4,
        "{} commits",
        written.load(Ordering::SeqCst)
    );
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confined_ingest_never_reads_outside_its_root() {
    let model = model();
    let dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let c = collection(&model, data.path()).await;
    let root = dir.path().join("root");
    write(
        &dir.path().join("outside"),
        "secret.txt",
        "The vault code is 4417.",
    );
    write(&root, "docs/ok.txt", "Lighthouses guide ships at night.");
    write(&root, "docs/.env", "API_KEY=hunter2");
    std::os::unix::fs::symlink(
        dir.path().join("outside/secret.txt"),
        root.join("docs/passwd.txt"),
    )
    .unwrap();
    std::os::unix::fs::symlink("../../outside", root.join("docs/mnt")).unwrap();
    let options = FolderOptions {
        walk: WalkOptions {
            confine: true,
            include: vec!["**/.env".into(), "**/*.txt".into()],
            source_prefix: Some("root/".into()),
            ..WalkOptions::default()
        },
        ..FolderOptions::default()
    };
    let summary = sync_with(model.clone(), &c, &root, &options).await.unwrap();
    assert_eq!(summary.added, 1, "{summary:?}");
    let ids: Vec<String> = contents(&c).await.into_keys().collect();
    assert_eq!(ids, ["root/docs/ok.txt"]);
    let mut outside: Vec<&str> = summary
        .errors
        .iter()
        .filter(|e| e.kind == ProblemKind::OutsideRoot)
        .map(|e| e.path.as_str())
        .collect();
    outside.sort();
    assert_eq!(outside, ["root/docs/mnt", "root/docs/passwd.txt"]);
}
