//! The `fathom` binary against hostile folders and crashes: PDFs that crash, hang or inflate
//! without end (parsed in a bounded child process), `kill -9` in the middle of an ingest, and
//! three processes writing one collection at once. Real model, real lance store.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use fathom_testkit::{pdf, write};

mod common;

fn fathom() -> Command {
    common::fathom_command()
}

fn json(out: &Output) -> serde_json::Value {
    common::stdout_json(out)
}

fn ingest(store: &Path, dir: &Path, extra: &[&str]) -> Output {
    fathom()
        .args(["ingest", "--json", "--store"])
        .arg(store)
        .args(extra)
        .arg(dir)
        .output()
        .unwrap()
}

fn sources(store: &Path) -> serde_json::Value {
    json(
        &fathom()
            .args(["sources", "--json", "--store"])
            .arg(store)
            .output()
            .unwrap(),
    )
}

#[test]
fn hostile_pdfs_are_reported_within_their_budget_and_never_stop_the_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    write(
        &docs,
        "notes.txt",
        "The harbour master keeps the tide tables.",
    );
    write(
        &docs,
        "tea.pdf",
        pdf::with_text("Green tea is steeped at 80 degrees."),
    );
    write(
        &docs,
        "no-media-box.pdf",
        pdf::without_media_box("panics the parser"),
    );
    write(&docs, "cyclic.pdf", pdf::cyclic_page_tree());
    // 3 MB on disk, 3 GiB once inflated.
    write(&docs, "bomb.pdf", pdf::deflate_bomb(3 << 30));
    let store = dir.path().join("store");
    let started = Instant::now();
    let out = ingest(
        &store,
        &docs,
        &["--parse-timeout", "5", "--parse-max-memory-mb", "256"],
    );
    let summary = json(&out);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(summary["added"], 2, "{summary}");
    let errors = common::errors_by_file(&summary);
    let reason = |name: &str| {
        errors
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{name} not reported: {errors:?}"))
            .1
            .clone()
    };
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(
        reason("no-media-box.pdf").contains("panicked"),
        "{errors:?}"
    );
    assert!(
        reason("bomb.pdf").contains("256 MiB of memory"),
        "{errors:?}"
    );
    let cyclic = reason("cyclic.pdf");
    assert!(
        cyclic.contains("still running after 5 s")
            || cyclic.contains("crashed")
            || cyclic.contains("not a readable PDF"),
        "{cyclic}"
    );
    let stored = sources(&store);
    let ids: Vec<&str> = stored
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["source"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
}

/// A link dropped into a folder must not pull in a file from elsewhere: the CLI reports and
/// skips links that resolve outside the folder unless `--follow-links` is given.
#[cfg(unix)]
#[test]
fn links_out_of_the_folder_are_skipped_unless_follow_links() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    write(
        &docs,
        "notes.txt",
        "The harbour master keeps the tide tables.",
    );
    write(&docs, "inner/deep.txt", "Gulls nest on the breakwater.");
    write(
        &dir.path().join("private"),
        "secret.txt",
        "The vault code is 4417.",
    );
    std::os::unix::fs::symlink(
        dir.path().join("private/secret.txt"),
        docs.join("passwd.txt"),
    )
    .unwrap();
    std::os::unix::fs::symlink("../private", docs.join("mnt")).unwrap();
    std::os::unix::fs::symlink("inner", docs.join("alias")).unwrap();
    let names = |store: &Path| -> Vec<String> {
        let mut ids: Vec<String> = sources(store)
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let id = s["source"].as_str().unwrap();
                id.strip_prefix(&format!("{}/", docs.display()))
                    .unwrap_or(id)
                    .to_string()
            })
            .collect();
        ids.sort();
        ids
    };

    let store = dir.path().join("store");
    let out = ingest(&store, &docs, &[]);
    let summary = json(&out);
    let mut outside: Vec<&str> = summary["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["error"].as_str().unwrap().contains("outside the folder"))
        .map(|e| e["source"].as_str().unwrap().rsplit('/').next().unwrap())
        .collect();
    outside.sort();
    assert_eq!(outside, ["mnt", "passwd.txt"], "{summary}");
    assert_eq!(
        names(&store),
        ["alias/deep.txt", "inner/deep.txt", "notes.txt"]
    );
    // Without --json the user is told how to read them anyway.
    let out = fathom()
        .args(["ingest", "--store"])
        .arg(&store)
        .arg(&docs)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--follow-links"), "{stderr}");

    let followed = dir.path().join("followed");
    json(&ingest(&followed, &docs, &["--follow-links"]));
    assert_eq!(
        names(&followed),
        [
            "alias/deep.txt",
            "inner/deep.txt",
            "mnt/secret.txt",
            "notes.txt",
            "passwd.txt"
        ]
    );
}

fn corpus(docs: &Path, files: usize) {
    for i in 0..files {
        let text: String = (0..12)
            .map(|s| {
                format!(
                    "File {i}, line {s}: the tide tables list high and low water for harbour {i}. "
                )
            })
            .collect();
        write(docs, &format!("f{i:03}.txt"), text);
    }
}

/// `kill -9` at several points of a real ingest: the store always opens, every stored source is
/// whole, and the next run ends with exactly what one clean run writes.
#[test]
fn kill_9_mid_ingest_keeps_whole_sources_and_a_rerun_equals_a_clean_run() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    corpus(&docs, 240);
    let clean = dir.path().join("clean");
    json(&ingest(&clean, &docs, &[]));
    let want = sources(&clean);
    let want_chunks: std::collections::HashMap<String, u64> = want
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["source"].as_str().unwrap().to_string(),
                s["chunks"].as_u64().unwrap(),
            )
        })
        .collect();
    // Killed as soon as it says it is ingesting (before any commit), right after its first
    // commit, and inside its third (as it logs that the commit starts, the lance write follows).
    for (n, (marker, count)) in [("ingesting", 1), ("committed", 1), ("committing", 3)]
        .into_iter()
        .enumerate()
    {
        let store = dir.path().join(format!("store-{n}"));
        let mut child = fathom()
            .args(["ingest", "--json", "--commit-every", "0", "--store"])
            .arg(&store)
            .arg(&docs)
            .env("FATHOM_LOG", "info,fathom_ingest=debug")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut seen = 0;
        let mut line = String::new();
        while seen < count {
            line.clear();
            assert!(
                stderr.read_line(&mut line).unwrap() > 0,
                "the ingest ended before `{marker}` number {}",
                seen + 1
            );
            seen += usize::from(line.contains(marker));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let point = format!("at `{marker}` number {count}");
        // Commits known to have finished before the kill.
        let commits = match marker {
            "committed" => count,
            "committing" => count - 1,
            _ => 0,
        };
        // Killed at its start, the store may not exist yet.
        let partial = if store.exists() {
            sources(&store)
        } else {
            serde_json::json!([])
        };
        if commits > 0 {
            assert!(
                !partial.as_array().unwrap().is_empty(),
                "{commits} commits were reported, yet the store lists no source"
            );
        }
        for s in partial.as_array().unwrap() {
            let id = s["source"].as_str().unwrap();
            assert_eq!(
                Some(&s["chunks"].as_u64().unwrap()),
                want_chunks.get(id),
                "source {id} is not whole after kill -9 {point}"
            );
        }
        eprintln!(
            "kill -9 {point}: {} of {} sources committed",
            partial.as_array().unwrap().len(),
            want_chunks.len()
        );
        let rest = json(&ingest(&store, &docs, &[]));
        assert_eq!(rest["deleted"], 0, "{rest}");
        assert_eq!(sources(&store), want, "after kill -9 {point} and a re-run");
    }
}

/// Three processes ingest three folders into one collection at the same moment: every chunk is
/// there once.
#[test]
fn three_concurrent_writers_on_one_collection_lose_and_duplicate_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let names = ["a", "b", "c"];
    for name in names {
        corpus(&dir.path().join(name), 30);
    }
    let children: Vec<_> = names
        .iter()
        .map(|name| {
            fathom()
                .current_dir(dir.path())
                .args(["ingest", "--json", "--commit-every", "0", "--store"])
                .arg(&store)
                .arg(name)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let summary = json(&child.wait_with_output().unwrap());
        assert_eq!(summary["added"], 30, "{summary}");
    }
    let clean = dir.path().join("clean");
    for name in names {
        json(
            &fathom()
                .current_dir(dir.path())
                .args(["ingest", "--json", "--store"])
                .arg(&clean)
                .arg(name)
                .output()
                .unwrap(),
        );
    }
    let got = sources(&store);
    assert_eq!(got.as_array().unwrap().len(), 90);
    assert_eq!(got, sources(&clean));
    // Search sees each chunk once: the hits for a query are distinct chunks.
    let out = fathom()
        .args(["search", "--json", "-k", "50", "--store"])
        .arg(&store)
        .arg("high water at harbour 7")
        .output()
        .unwrap();
    let hits = json(&out);
    let mut keys: Vec<(String, u64)> = hits
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["source_id"]
                    .as_str()
                    .or(h["source"].as_str())
                    .unwrap()
                    .to_string(),
                h["byte_start"].as_u64().unwrap(),
            )
        })
        .collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n, "duplicate chunks in {hits}");
}
