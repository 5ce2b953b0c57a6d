//! `--watch` end to end with real file operations: `fathom ingest DIR --watch` and
//! `fathom serve --watch`, against the real model and store.

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::{minilm, write, Server};
use serde_json::{json, Value};

/// Long enough for a sync of a few small files on a busy 2-core machine.
const WITHIN: Duration = Duration::from_secs(30);

fn fathom() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fathom"));
    // The tests read log lines that -v asks for: no level from the environment.
    cmd.env("HF_HUB_OFFLINE", "1")
        .env_remove("RUST_LOG")
        .env_remove("FATHOM_LOG");
    cmd
}

/// The collection's sources and their hashes, read by a separate `fathom sources` process.
fn sources(store: &str, collection: &str) -> BTreeMap<String, String> {
    let out = fathom()
        .args([
            "sources",
            "--store",
            store,
            "--collection",
            collection,
            "--json",
        ])
        .output()
        .unwrap();
    if !out.status.success() {
        eprintln!("sources: {}", String::from_utf8_lossy(&out.stderr));
        return BTreeMap::new(); // not created yet
    }
    let listed: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    listed
        .into_iter()
        .map(|s| {
            (
                s["source"].as_str().unwrap().to_string(),
                s["hash"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Polls `check` until it holds; panics with `what` after [`WITHIN`].
fn eventually(what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < WITHIN, "not within {WITHIN:?}: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
    started.elapsed()
}

struct Watching(Child);

impl Drop for Watching {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn terminate(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn ingest_watch_applies_creates_edits_renames_and_deletes_and_ignores_scratch_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("notes");
    let store = tmp.path().join("store").to_str().unwrap().to_string();
    write(
        &dir,
        "a.md",
        "Alpha notes about sourdough starters and flour.\n",
    );
    write(
        &dir,
        "sub/b.md",
        "Bravo notes about bicycle gears and chains.\n",
    );
    let log = tmp.path().join("watch.log");
    let log_file = std::fs::File::create(&log).unwrap();
    let mut watching = Watching(
        // From the temp folder with a relative path: source ids are `notes/...`.
        fathom()
            .current_dir(tmp.path())
            .args(["ingest", "notes"])
            .args([
                "--store",
                &store,
                "--watch",
                "--watch-quiet",
                "0.3",
                "--model",
            ])
            .arg(minilm())
            .args(["-v", "--json"])
            // One open file for both (one write position): each sync's summary (stdout,
            // JSON) and the watch's log (stderr), in the order they happened.
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap(),
    );
    let listed = |store: &str| sources(store, "default");
    eventually("the first sync", || listed(&store).len() == 2);

    // Created.
    write(
        &dir,
        "c.md",
        "Charlie notes about comets and their tails.\n",
    );
    eventually("a new file is added", || {
        listed(&store).contains_key("notes/c.md")
    });
    // Changed.
    let before = listed(&store)["notes/a.md"].clone();
    write(
        &dir,
        "a.md",
        "Alpha notes, rewritten: rye bread and hydration.\n",
    );
    eventually("an edit is applied", || {
        listed(&store)["notes/a.md"] != before
    });
    // Renamed: the old id goes, the new one comes, in one sync.
    std::fs::rename(dir.join("sub/b.md"), dir.join("sub/bravo.md")).unwrap();
    eventually("a rename is applied", || {
        let now = listed(&store);
        now.contains_key("notes/sub/bravo.md") && !now.contains_key("notes/sub/b.md")
    });
    // Deleted.
    std::fs::remove_file(dir.join("c.md")).unwrap();
    eventually("a delete is applied", || {
        !listed(&store).contains_key("notes/c.md")
    });
    let expected: Vec<&str> = vec!["notes/a.md", "notes/sub/bravo.md"];
    assert_eq!(listed(&store).keys().collect::<Vec<_>>(), expected);

    // A burst of saves of two files, with an editor's swap and backup files around them, is
    // synced once (twice at most, when a sync starts while the burst is still going on): the
    // watch prints one summary line per sync that changed something.
    let lines = || -> Vec<String> {
        let text = std::fs::read_to_string(&log).unwrap();
        text.lines().map(str::to_string).collect()
    };
    let syncs = || lines().iter().filter(|l| l.starts_with('{')).count();
    let before_burst = syncs();
    // The watch says when every change it has seen is synced. The burst is done when the log's
    // last line says so, written after the burst's last save and after a sync of the burst.
    let up_to_date_after = |mark: usize| {
        let lines = lines();
        let last = lines.iter().rposition(|l| !l.trim().is_empty());
        last.is_some_and(|i| i >= mark && lines[i].contains("up to date; watching for changes"))
            && syncs() > before_burst
    };
    let hashes = listed(&store);
    for i in 0..10 {
        write(&dir, ".a.md.swp", format!("swap {i}"));
        write(&dir, "a.md~", format!("backup {i}"));
        write(&dir, "a.md", format!("Alpha, burst save {i}: barley.\n"));
        write(
            &dir,
            "sub/bravo.md",
            format!("Bravo, burst save {i}: derailleurs.\n"),
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let burst_written = lines().len();
    eventually("the burst's last saves, and the watch up to date", || {
        let now = listed(&store);
        now.len() == 2
            && now["notes/a.md"] != hashes["notes/a.md"]
            && now["notes/sub/bravo.md"] != hashes["notes/sub/bravo.md"]
            && up_to_date_after(burst_written)
    });
    let burst = syncs() - before_burst;
    assert!(
        (1..=2).contains(&burst),
        "a burst of saves made {burst} syncs"
    );
    let after = listed(&store);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        expected,
        "scratch files stay out"
    );

    // SIGTERM stops the watch cleanly.
    terminate(&watching.0);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = watching.0.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_watch_syncs_a_folder_as_jobs_and_leaves_posted_documents_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("handbook");
    write(
        &dir,
        "leave.md",
        "Employees get twenty-five days of paid leave a year.\n",
    );
    let store = tmp.path().join("store").to_str().unwrap().to_string();
    let spec = format!("hb={}:team", dir.display());
    let log = tmp.path().join("serve.log");
    let server = Server::start_logging(
        &[
            "-v",
            "--store",
            &store,
            "--watch",
            &spec,
            "--watch-quiet",
            "0.3",
        ],
        &[],
        &log,
    )
    .await;
    // The watch logs each sync that changed something, and "up to date" once every change it
    // has seen is synced; `since` counts the syncs after line `mark`.
    let log_lines = || -> Vec<String> {
        let text = std::fs::read_to_string(&log).unwrap();
        text.lines().map(str::to_string).collect()
    };
    let up_to_date_after_a_sync = |mark: usize| {
        let lines = log_lines();
        let last = |what: &str| lines.iter().rposition(|l| l.contains(what));
        let synced = last("watched folder synced");
        synced.is_some_and(|s| s >= mark)
            && last("up to date; watching for changes").is_some_and(|u| u > synced.unwrap())
    };
    let search = |query: &'static str| {
        let server = &server;
        async move {
            let (status, body) = server
                .post(
                    "/search",
                    json!({"query": query, "collection": "team", "k": 3}),
                )
                .await;
            if status != 200 {
                return Vec::new();
            }
            body["hits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["source"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    let started = Instant::now();
    while !search("paid leave")
        .await
        .contains(&"hb/leave.md".to_string())
    {
        assert!(started.elapsed() < WITHIN, "the first sync");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A document posted to the same collection is not the folder's to delete.
    let (status, _) = server
        .post(
            "/documents",
            json!({"collection": "team", "documents": [{"id": "posted/faq", "text": "The office opens at eight."}]}),
        )
        .await;
    assert_eq!(status, 200);

    let jobs_before = server.get("/jobs").await.1["jobs"]
        .as_array()
        .unwrap()
        .len();
    // The first sync's job has ended and said so before the burst begins.
    let started = Instant::now();
    while !up_to_date_after_a_sync(0) {
        assert!(
            started.elapsed() < WITHIN,
            "the first sync never said it was up to date"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mark = log_lines().len();
    for i in 0..8 {
        write(
            &dir,
            "expenses.md",
            format!("Expenses are refunded within {i} weeks of the receipt.\n"),
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    std::fs::remove_file(dir.join("leave.md")).unwrap();
    let started = Instant::now();
    loop {
        let found = search("refund of expenses receipt").await;
        let gone = !search("paid leave days")
            .await
            .contains(&"hb/leave.md".to_string());
        if found.contains(&"hb/expenses.md".to_string()) && gone && up_to_date_after_a_sync(mark) {
            break;
        }
        assert!(
            started.elapsed() < WITHIN,
            "the burst was not synced: {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, jobs) = server.get("/jobs").await;
    let jobs = jobs["jobs"].as_array().unwrap();
    let new: Vec<&Value> = jobs[..jobs.len() - jobs_before].iter().collect();
    assert!(
        !new.is_empty() && new.len() <= 2,
        "a burst of saves and a delete made {} sync jobs: {new:?}",
        new.len()
    );
    assert!(new
        .iter()
        .all(|j| j["path"] == "watch:hb" && j["state"] == "done"));
    assert!(search("office opens")
        .await
        .contains(&"posted/faq".to_string()));
}
