//! The store on object storage: the real `fathom` binary against a real S3-compatible server
//! (moto's, from the test venv that scripts/setup.sh makes), on the loopback address, with a
//! bucket made by the test.
//!
//! Why moto rather than radosgw: it installs from PyPI in seconds into the venv the tests already
//! have, starts in about a second, and implements the conditional put (`If-None-Match: *`) that
//! lance's commits on S3 rely on; radosgw's standalone `dbstore` needs Ceph's packages and a
//! configured cluster skeleton for a fraction of what is tested here.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;
use common::{minilm, repo_root, test_python, write, Server};

/// A moto S3 server on a free loopback port, killed on drop.
struct S3 {
    child: Child,
    endpoint: String,
}

impl S3 {
    fn start(envs: &[(&str, &str)]) -> Self {
        let moto = test_python().with_file_name("moto_server");
        assert!(
            moto.is_file(),
            "{} is missing: run scripts/setup.sh (it installs moto[server] into the test venv)",
            moto.display()
        );
        // Port 0: the server binds a free port itself and names it in its first log line
        // (werkzeug logs " * Running on http://127.0.0.1:PORT" once it is listening), so no
        // other process can take the port between choosing and binding it.
        let mut cmd = Command::new(moto);
        cmd.args(["-H", "127.0.0.1", "-p", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start moto_server");
        let mut log = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let endpoint = loop {
            line.clear();
            assert!(
                log.read_line(&mut line).unwrap() > 0,
                "moto_server ended before it listened"
            );
            if let Some(at) = line.find("Running on http://") {
                break line[at + "Running on ".len()..].trim().to_string();
            }
        };
        // Its request log goes on; keep reading it so the server never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut log, &mut std::io::sink()));
        Self { child, endpoint }
    }

    /// Creates a bucket (moto takes the unsigned S3 CreateBucket request).
    fn bucket(&self, name: &str) {
        // Its own thread: the async tests call this from inside their runtime.
        let url = format!("{}/{name}", self.endpoint);
        let status = std::thread::spawn(move || http_put(&url)).join().unwrap();
        assert!(status < 300, "creating bucket {name}: HTTP {status}");
    }

    /// What every fathom process gets: the endpoint, and credentials the standard AWS way.
    fn envs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
    }

    fn pause(&self) {
        signal(&self.child, "-STOP");
    }

    fn resume(&self) {
        signal(&self.child, "-CONT");
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        signal(&self.child, "-CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(child: &Child, sig: &str) {
    Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
}

/// A bare HTTP PUT with no body; returns the status. Retried while the server starts (it
/// accepts connections a moment before it answers them).
fn http_put(url: &str) -> u16 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let started = Instant::now();
        loop {
            match reqwest::Client::new().put(url).send().await {
                Ok(r) => return r.status().as_u16(),
                Err(e) if started.elapsed() < Duration::from_secs(30) => {
                    eprintln!("PUT {url}: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("PUT {url}: {e}"),
            }
        }
    })
}

fn fathom(s3: &S3, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fathom"));
    cmd.current_dir(repo_root())
        .args(args)
        .env("HF_HUB_OFFLINE", "1")
        .env_remove("FATHOM_STORE");
    for (k, v) in s3.envs() {
        cmd.env(k, v);
    }
    cmd
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

/// `fathom ingest` of `dir` named from its parent folder, so source ids are `<dir name>/<file>`.
fn ingest(s3: &S3, store: &str, dir: &Path, collection: &str) -> Command {
    let mut cmd = fathom(
        s3,
        &[
            "ingest",
            dir.file_name().unwrap().to_str().unwrap(),
            "--store",
            store,
            "--collection",
            collection,
            "--json",
            "--model",
        ],
    );
    cmd.arg(minilm()).current_dir(dir.parent().unwrap());
    cmd
}

fn sources(s3: &S3, store: &str, collection: &str) -> BTreeMap<String, (String, u64)> {
    let out = run_ok(&mut fathom(
        s3,
        &[
            "sources",
            "--store",
            store,
            "--collection",
            collection,
            "--json",
        ],
    ));
    let rows: Vec<Value> = serde_json::from_str(&out).unwrap();
    rows.into_iter()
        .map(|r| {
            (
                r["source"].as_str().unwrap().to_string(),
                (
                    r["hash"].as_str().unwrap().to_string(),
                    r["chunks"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

fn search(s3: &S3, store: &str, collection: &str, query: &str, mode: &str) -> Vec<Value> {
    let mut cmd = fathom(
        s3,
        &[
            "search",
            query,
            "--store",
            store,
            "--collection",
            collection,
            "--mode",
            mode,
            "--json",
            "-k",
            "3",
            "--model",
        ],
    );
    cmd.arg(minilm());
    serde_json::from_str(&run_ok(&mut cmd)).unwrap()
}

/// A folder of `n` small distinct documents.
fn corpus(dir: &Path, n: usize) {
    for i in 0..n {
        write(
            dir,
            &format!("doc{i:03}.txt"),
            format!(
                "Document number {i} is about topic {} and nothing else.",
                i * 7919 % 1000
            ),
        );
    }
}

#[test]
fn ingest_search_delete_and_sync_on_s3() {
    let s3 = S3::start(&[]);
    s3.bucket("fathom");
    let store = "s3://fathom/stores/main";
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("notes");
    write(
        &root,
        "tea.md",
        "# Tea\n\nGreen tea is steeped at 80 degrees for two minutes.",
    );
    write(
        &root,
        "bread.txt",
        "Bread rises because yeast ferments the sugars in the dough.",
    );
    write(
        &root,
        "rust.txt",
        "Rust is a memory safe systems programming language.",
    );

    let summary: Value =
        serde_json::from_str(&run_ok(&mut ingest(&s3, store, &root, "notes"))).unwrap();
    assert_eq!(summary["added"], 3, "{summary}");
    for mode in ["vector", "text", "hybrid"] {
        let hits = search(&s3, store, "notes", "what makes bread rise", mode);
        assert_eq!(hits[0]["source"], "notes/bread.txt", "{mode}: {hits:?}");
    }
    let listed = run_ok(&mut fathom(
        &s3,
        &["collections", "--store", store, "--json"],
    ));
    let listed: Vec<Value> = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["name"], "notes");
    assert_eq!(listed[0]["sources"], 3);

    // Delete one, change one, remove one from the folder: a re-ingest syncs.
    run_ok(&mut fathom(
        &s3,
        &[
            "delete",
            "notes/tea.md",
            "--store",
            store,
            "--collection",
            "notes",
        ],
    ));
    assert!(!sources(&s3, store, "notes").contains_key("notes/tea.md"));
    write(
        &root,
        "rust.txt",
        "Rust has no garbage collector; ownership frees memory.",
    );
    std::fs::remove_file(root.join("bread.txt")).unwrap();
    let summary: Value =
        serde_json::from_str(&run_ok(&mut ingest(&s3, store, &root, "notes"))).unwrap();
    assert_eq!(
        (
            summary["added"].as_u64(),
            summary["updated"].as_u64(),
            summary["deleted"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "{summary}"
    );
    let now = sources(&s3, store, "notes");
    assert_eq!(
        now.keys().map(String::as_str).collect::<Vec<_>>(),
        ["notes/rust.txt", "notes/tea.md"]
    );
    let hits = search(&s3, store, "notes", "garbage collector", "text");
    assert_eq!(hits[0]["source"], "notes/rust.txt");

    // Upkeep works on object storage too.
    let out = run_ok(&mut fathom(
        &s3,
        &[
            "optimize",
            "--store",
            store,
            "--collection",
            "notes",
            "--json",
        ],
    ));
    let upkeep: Value = serde_json::from_str(&out).unwrap();
    assert!(
        upkeep["stats"]["fragments"].as_u64().unwrap() <= 1,
        "{upkeep}"
    );
    assert_eq!(sources(&s3, store, "notes"), now);
}

#[test]
fn concurrent_writers_and_shards_lose_and_duplicate_nothing() {
    let s3 = S3::start(&[]);
    s3.bucket("fathom");
    let store = "s3://fathom/shared";
    let dir = tempfile::tempdir().unwrap();
    let corpus_dir = dir.path().join("corpus");
    corpus(&corpus_dir, 60);

    // The reference: one process, the whole folder.
    run_ok(&mut ingest(&s3, store, &corpus_dir, "whole"));
    let whole = sources(&s3, store, "whole");
    assert_eq!(whole.len(), 60);

    // Two processes at once, each its own share, one collection.
    let mut shard0 = ingest(&s3, store, &corpus_dir, "sharded");
    shard0.args(["--shard", "0/2"]);
    let mut shard1 = ingest(&s3, store, &corpus_dir, "sharded");
    shard1.args(["--shard", "1/2"]);
    let a = shard0
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let b = shard1
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    for out in [&a, &b] {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let added = |o: &Output| -> u64 {
        serde_json::from_slice::<Value>(&o.stdout).unwrap()["added"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(added(&a) + added(&b), 60);
    assert!(added(&a) > 0 && added(&b) > 0, "both shards got work");
    assert_eq!(
        sources(&s3, store, "sharded"),
        whole,
        "two shards equal one full ingest"
    );

    // A re-run of one shard deletes nothing of the other's share.
    write(
        &corpus_dir,
        "doc000.txt",
        "Changed text for the first document.",
    );
    std::fs::remove_file(corpus_dir.join("doc001.txt")).unwrap();
    let mut again = ingest(&s3, store, &corpus_dir, "sharded");
    again.args(["--shard", "0/2"]);
    let summary: Value = serde_json::from_str(&run_ok(&mut again)).unwrap();
    let mut rest = ingest(&s3, store, &corpus_dir, "sharded");
    rest.args(["--shard", "1/2"]);
    let rest: Value = serde_json::from_str(&run_ok(&mut rest)).unwrap();
    assert_eq!(
        summary["updated"].as_u64().unwrap() + rest["updated"].as_u64().unwrap(),
        1
    );
    assert_eq!(
        summary["deleted"].as_u64().unwrap() + rest["deleted"].as_u64().unwrap(),
        1
    );
    assert_eq!(sources(&s3, store, "sharded").len(), 59);

    // Two unsharded writers on disjoint folders into one collection at once.
    let left = dir.path().join("left");
    let right = dir.path().join("right");
    for (d, tag) in [(&left, "left"), (&right, "right")] {
        for i in 0..25 {
            write(
                d,
                &format!("{tag}{i:02}.txt"),
                format!("The {tag} side, note {i}."),
            );
        }
    }
    let p = ingest(&s3, store, &left, "both")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let q = ingest(&s3, store, &right, "both")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for out in [p.wait_with_output().unwrap(), q.wait_with_output().unwrap()] {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let both = sources(&s3, store, "both");
    assert_eq!(both.len(), 50, "{both:?}");
    assert!(
        both.values().all(|(_, chunks)| *chunks == 1),
        "no duplicated chunks: {both:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_over_one_store_see_each_others_writes() {
    let s3 = S3::start(&[]);
    s3.bucket("fathom");
    let envs = s3.envs();
    let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let args = [
        "--store",
        "s3://fathom/replicated",
        "--read-consistency",
        "1",
    ];
    let a = Server::start(&args, &envs).await;
    let b = Server::start(&args, &envs).await;

    let (status, body) = a
        .post(
            "/documents",
            json!({"collection": "c", "documents": [
            {"id": "first", "text": "Sourdough needs a starter of wild yeast."}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // The collection did not exist when b started: b finds it.
    let found_after = wait_for_hit(&b, "first").await;
    eprintln!("replica b saw a's first write after {found_after:?}");

    let (status, body) = b
        .post(
            "/documents",
            json!({"collection": "c", "documents": [
            {"id": "second", "text": "Espresso is brewed under pressure."}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let found_after = wait_for_hit(&a, "second").await;
    eprintln!("replica a saw b's write after {found_after:?}");
    assert!(found_after < Duration::from_secs(10));
    let (_, sources) = a.get("/collections/c/sources").await;
    assert_eq!(sources.as_array().unwrap().len(), 2, "{sources}");

    // Both replicas writing one collection at once, one document per request (a commit and an
    // index update each): every write answered 200, none lost.
    tokio::join!(one_by_one(&a, "a", 15), one_by_one(&b, "b", 15));
    let (_, sources) = b.get("/collections/c/sources").await;
    assert_eq!(sources.as_array().unwrap().len(), 32, "{sources}");
}

/// Upserts `n` documents into collection `c`, one per request; each must be answered 200.
async fn one_by_one(server: &Server, tag: &str, n: usize) {
    for i in 0..n {
        let doc = json!({"collection": "c", "documents": [
            {"id": format!("{tag}{i}"), "text": format!("{tag} note number {i}")}]});
        let (status, body) = server.post("/documents", doc).await;
        assert_eq!(status, 200, "{tag}{i}: {body}");
    }
}

async fn wait_for_hit(server: &Server, id: &str) -> Duration {
    let started = Instant::now();
    loop {
        let (status, body) = server
            .post(
                "/search",
                json!({"collection": "c", "query": "yeast or espresso", "k": 5, "mode": "text"}),
            )
            .await;
        if status == 200
            && body["hits"]
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h["source"] == id)
        {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "`{id}` not visible after 20 s: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn a_missing_bucket_bad_credentials_and_a_vanishing_server_are_clear_errors() {
    let s3 = S3::start(&[]);
    s3.bucket("fathom");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("notes");
    corpus(&root, 40);

    // No such bucket.
    let out = run(&mut ingest(&s3, "s3://no-such-bucket/x", &root, "notes"));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("s3://no-such-bucket/x"),
        "names the store: {err}"
    );
    assert!(
        err.to_lowercase().contains("bucket"),
        "says what is missing: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    // Credentials the server refuses (a second moto that checks them).
    let strict = S3::start(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")]);
    let mut cmd = ingest(&strict, "s3://fathom/x", &root, "notes");
    let out = run(&mut cmd);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("s3://fathom/x"), "names the store: {err}");
    assert!(
        err.to_lowercase().contains("credential")
            || err.contains("403")
            || err.contains("InvalidAccessKeyId"),
        "says the credentials were refused: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    // The server stops answering mid-ingest: a clear error, and what was committed is whole.
    let store = "s3://fathom/flaky";
    let mut cmd = ingest(&s3, store, &root, "notes");
    cmd.args([
        "--commit-every",
        "0.2",
        "--store-option",
        "timeout=2s",
        "--store-option",
        "client_max_retries=1",
        "--store-option",
        "client_retry_timeout=4",
    ]);
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pause_at = Instant::now();
    // Pause the S3 server once the first commit has landed.
    loop {
        let listed = run(&mut fathom(
            &s3,
            &[
                "sources",
                "--store",
                store,
                "--collection",
                "notes",
                "--json",
            ],
        ));
        if listed.status.success()
            && serde_json::from_slice::<Vec<Value>>(&listed.stdout).is_ok_and(|v| !v.is_empty())
        {
            break;
        }
        assert!(
            pause_at.elapsed() < Duration::from_secs(60),
            "no commit landed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    s3.pause();
    let out = child.wait_with_output().unwrap();
    s3.resume();
    let err = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        // The ingest may have finished before the pause: then it is simply complete.
        assert_eq!(sources(&s3, store, "notes").len(), 40);
    } else {
        assert!(
            err.contains(store) || err.contains("fathom/flaky"),
            "names the store: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    // Whatever was committed is consistent: a re-run completes it, every source has one chunk.
    let summary: Value =
        serde_json::from_str(&run_ok(&mut ingest(&s3, store, &root, "notes"))).unwrap();
    let now = sources(&s3, store, "notes");
    assert_eq!(now.len(), 40, "{summary}");
    assert!(now.values().all(|(_, chunks)| *chunks == 1), "{now:?}");
}
