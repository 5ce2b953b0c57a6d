//! End-to-end tests of the `fathom` binary with the real model (models/all-MiniLM-L6-v2, fetched by
//! scripts/fetch-model.sh) and the fixtures in ../shared.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

mod common;
use common::{fixtures, minilm, repo_root};

/// The binary, run from the repository root (where the default model folder is).
fn fathom() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fathom"));
    cmd.current_dir(repo_root())
        .env_remove("FATHOM_MODEL")
        .env_remove("FATHOM_DEVICE")
        .env_remove("RUST_LOG")
        .env_remove("FATHOM_LOG")
        .env("HF_HUB_OFFLINE", "1");
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run fathom")
}

fn run_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn fathom");
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "fathom failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn failure(out: &Output) -> String {
    assert!(!out.status.success(), "fathom should have failed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn reference_first() -> (String, Vec<f64>) {
    let text =
        std::fs::read_to_string(fixtures().join("reference/all-MiniLM-L6-v2.jsonl")).unwrap();
    let v: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let emb = v["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    (v["text"].as_str().unwrap().to_string(), emb)
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

#[test]
fn embed_arguments_prints_one_array_per_text_matching_sentence_transformers() {
    let (text, want) = reference_first();
    let out = stdout(&run(fathom().args(["embed", &text, "second text"])));
    let vectors: Vec<Vec<f64>> = serde_json::from_str(&out).unwrap();
    assert_eq!(vectors.len(), 2);
    assert_eq!(vectors[0].len(), 384);
    let diff = vectors[0]
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(diff < 1e-4, "max abs diff {diff}");
    assert!((norm(&vectors[1]) - 1.0).abs() < 1e-5);
}

#[test]
fn embed_int8_is_close_to_sentence_transformers_but_not_f32_itself() {
    let (text, want) = reference_first();
    let out = stdout(&run(fathom().args(["embed", "--dtype", "int8", &text])));
    let vectors: Vec<Vec<f64>> = serde_json::from_str(&out).unwrap();
    let got = &vectors[0];
    let cos = got.iter().zip(&want).map(|(a, b)| a * b).sum::<f64>() / (norm(got) * norm(&want));
    assert!(cos >= 0.98, "int8 cosine to sentence-transformers {cos}");
    let diff = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(
        diff > 1e-4,
        "int8 gave f32's vector (max abs diff {diff}): not quantized"
    );
}

#[test]
fn embed_stdin_jsonl_dimensions_and_no_normalize() {
    let out = stdout(&run_stdin(
        fathom().args(["embed", "--jsonl", "--dimensions", "8"]),
        b"first line\nsecond line\r\n\nlast without newline",
    ));
    let lines: Vec<Vec<f64>> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "an empty line is an input too");
    for v in &lines {
        assert_eq!(v.len(), 8);
        assert!(
            (norm(v) - 1.0).abs() < 1e-5,
            "renormalized after truncation"
        );
    }
    let out = stdout(&run(fathom().args([
        "embed",
        "--no-normalize",
        "some text",
    ])));
    let v: Vec<Vec<f64>> = serde_json::from_str(&out).unwrap();
    assert!(
        (norm(&v[0]) - 1.0).abs() > 1e-3,
        "--no-normalize keeps the raw length"
    );
    let out = stdout(&run_stdin(fathom().arg("embed"), b""));
    assert_eq!(out.trim(), "[]");
}

#[test]
fn prompts_by_name_and_raw_prompts_agree() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&minilm(), dir.path());
    copy_dir(&fixtures().join("variants/prompt-query"), dir.path());
    let model = dir.path().to_str().unwrap();
    let by_name = stdout(&run(fathom().args([
        "embed",
        "--model",
        model,
        "--prompt-name",
        "query",
        "rust",
    ])));
    let raw =
        stdout(&run(fathom().args([
            "embed", "--model", model, "--prompt", "query: ", "rust",
        ])));
    let plain = stdout(&run(fathom().args([
        "embed",
        "--model",
        model,
        "query: rust",
    ])));
    assert_eq!(by_name, raw);
    assert_eq!(by_name, plain);
    let err = failure(&run(fathom().args([
        "embed",
        "--model",
        model,
        "--prompt-name",
        "nope",
        "x",
    ])));
    assert!(
        err.contains("unknown prompt name `nope` (this model has: passage, query)"),
        "{err}"
    );
}

#[test]
fn bad_inputs_get_clear_errors() {
    let err = failure(&run(fathom().args([
        "embed",
        "--model",
        "./models/none",
        "x",
    ])));
    assert!(
        err.contains("does not exist") && err.contains("scripts/fetch-model.sh"),
        "{err}"
    );

    let long = "word ".repeat(400);
    let err = failure(&run(fathom().args([
        "embed",
        "--no-truncate",
        "short",
        &long,
    ])));
    assert!(
        err.contains("input 1 has 402 tokens, more than the 256 this model takes"),
        "{err}"
    );
    // Truncation is the default: the same input embeds.
    stdout(&run(fathom().args(["embed", &long])));

    let err = failure(&run_stdin(
        fathom().arg("embed"),
        b"fine\n\xff\xfe broken\n",
    ));
    assert!(err.contains("stdin line 2 is not valid UTF-8"), "{err}");

    let err = failure(&run(fathom().args(["embed", "--dimensions", "1000", "x"])));
    assert!(
        err.contains("dimensions must be between 1 and 384, got 1000"),
        "{err}"
    );

    let err = failure(&run(fathom().args(["embed", "--dtype", "f16", "x"])));
    assert!(err.contains("f16 runs on CUDA only"), "{err}");

    let err = failure(&run(fathom().args(["embed", "--device", "tpu", "x"])));
    assert!(err.contains("unknown device `tpu`"), "{err}");
}

/// A way to break a model folder: its name, what it does to the folder, what the error must say.
type Breakage<'a> = (&'a str, &'a dyn Fn(&Path), &'a [&'a str]);

#[test]
fn broken_model_folders_are_reported_with_the_way_out() {
    let tiny = fixtures().join("tiny/bert");
    let edit_config = |dir: &Path, from: &str, to: &str| {
        let config = std::fs::read_to_string(dir.join("config.json")).unwrap();
        assert!(config.contains(from), "the fixture's config has {from}");
        std::fs::write(dir.join("config.json"), config.replace(from, to)).unwrap();
    };
    // Each way to break a copy of the tiny BERT folder, and what the error must say.
    let cases: [Breakage; 6] = [
        (
            "no tokenizer",
            &|d| std::fs::remove_file(d.join("tokenizer.json")).unwrap(),
            &["has no tokenizer.json"],
        ),
        (
            "pickle weights",
            &|d| std::fs::rename(d.join("model.safetensors"), d.join("pytorch_model.bin")).unwrap(),
            &["has only pytorch_model.bin; convert it to model.safetensors"],
        ),
        (
            "garbage weights",
            &|d| std::fs::write(d.join("model.safetensors"), b"not safetensors").unwrap(),
            &["is not a readable safetensors file"],
        ),
        (
            "config not JSON",
            &|d| std::fs::write(d.join("config.json"), b"{ not json").unwrap(),
            &["is not valid JSON for a transformers config.json"],
        ),
        (
            "unknown architecture",
            &|d| edit_config(d, "\"bert\"", "\"t5\""),
            &["unsupported model_type `t5`", "supported: bert"],
        ),
        (
            "config without a required size",
            &|d| edit_config(d, "\"num_attention_heads\"", "\"heads\""),
            &["BERT config.json: missing field `num_attention_heads`"],
        ),
    ];
    for (what, breaks, says) in cases {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&tiny, dir.path());
        breaks(dir.path());
        let model = dir.path().to_str().unwrap();
        let err = failure(&run(fathom().args(["embed", "--model", model, "x"])));
        for needle in says {
            assert!(err.contains(needle), "{what}: {err}");
        }
    }
}

#[test]
fn bare_transformers_folder_gets_mean_pooling() {
    // No modules.json: sentence-transformers' defaults (mean pooling, no normalization).
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&minilm(), dir.path());
    std::fs::remove_file(dir.path().join("modules.json")).unwrap();
    std::fs::remove_dir_all(dir.path().join("1_Pooling")).unwrap();
    let model = dir.path().to_str().unwrap();
    let info = stdout(&run(fathom().args(["model", "info", model, "--json"])));
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["pooling"]["modes"], serde_json::json!(["mean"]));
    assert_eq!(info["normalize"], false);
    let raw = stdout(&run(fathom().args([
        "embed",
        "--model",
        model,
        "A man is eating food.",
    ])));
    let normalized = stdout(&run(fathom().args(["embed", "A man is eating food."])));
    let raw: Vec<Vec<f64>> = serde_json::from_str(&raw).unwrap();
    let normalized: Vec<Vec<f64>> = serde_json::from_str(&normalized).unwrap();
    let n = norm(&raw[0]);
    for (a, b) in raw[0].iter().zip(&normalized[0]) {
        assert!((a / n - b).abs() < 1e-5);
    }
}

#[test]
fn model_info_describes_the_model() {
    let out = stdout(&run(fathom().args(["model", "info"])));
    assert_eq!(
        out,
        "model           models/all-MiniLM-L6-v2\n\
         architecture    bert\n\
         kind            embedder\n\
         dimension       384\n\
         hidden size     384\n\
         max_seq_length  256\n\
         pooling         mean\n\
         normalize       true\n\
         prompts         none\n"
    );
    // A cross-encoder says what it is and how its scores come out.
    let reranker = repo_root().join("tests/fixtures/rerank/bert");
    let out = stdout(&run(fathom().args(["model", "info"]).arg(&reranker)));
    assert!(out.contains("kind            reranker\n"), "{out}");
    assert!(
        out.contains("labels          1 (scores through Sigmoid)"),
        "{out}"
    );
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&minilm(), dir.path());
    copy_dir(&fixtures().join("variants/dense-tanh-128"), dir.path());
    let out = stdout(&run(fathom().args([
        "model",
        "info",
        dir.path().to_str().unwrap(),
        "--json",
    ])));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["dimension"], 128);
    assert_eq!(v["dense"][0]["activation"], "tanh");
    assert_eq!(v["supported"], true);

    let out = stdout(&run(fathom().args([
        "model",
        "info",
        fixtures().join("tiny/qwen3").to_str().unwrap(),
    ])));
    assert!(out.contains("pooling         lasttoken"), "{out}");
    assert!(out.contains("max_seq_length  64"), "{out}");
}

/// Lays a model folder out as the Hugging Face hub cache does (`$HF_HOME/hub/models--org--name`).
fn fake_hub_cache(model: &Path, id: &str) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let repo = home
        .path()
        .join("hub")
        .join(format!("models--{}", id.replace('/', "--")));
    let commit = "0123456789abcdef0123456789abcdef01234567";
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), commit).unwrap();
    copy_dir(model, &repo.join("snapshots").join(commit));
    home
}

#[test]
fn hub_ids_resolve_through_the_hf_cache_offline() {
    let home = fake_hub_cache(&fixtures().join("tiny/bert"), "fathom-test/tiny-bert");
    let by_id = stdout(&run(fathom().env("HF_HOME", home.path()).args([
        "embed",
        "--model",
        "fathom-test/tiny-bert",
        "hello",
    ])));
    let by_dir = stdout(&run(fathom().args([
        "embed",
        "--model",
        fixtures().join("tiny/bert").to_str().unwrap(),
        "hello",
    ])));
    assert_eq!(by_id, by_dir);

    let dest = tempfile::tempdir().unwrap();
    let target = dest.path().join("copy");
    stdout(&run(fathom().env("HF_HOME", home.path()).args([
        "model",
        "pull",
        "fathom-test/tiny-bert",
        "--to",
        target.to_str().unwrap(),
    ])));
    for file in [
        "config.json",
        "tokenizer.json",
        "model.safetensors",
        "modules.json",
        "1_Pooling/config.json",
    ] {
        assert!(target.join(file).is_file(), "{file} not copied");
    }

    let err = failure(&run(fathom().env("HF_HOME", home.path()).args([
        "embed",
        "--model",
        "fathom-test/not-cached",
        "x",
    ])));
    assert!(
        err.contains("not in the local hub cache and HF_HUB_OFFLINE is set"),
        "{err}"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
            let mut perms = std::fs::metadata(&target).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perms.set_readonly(false);
            std::fs::set_permissions(&target, perms).unwrap();
        }
    }
}

#[test]
fn sigint_mid_ingest_keeps_whole_files_and_the_next_run_finishes() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    let files = 80;
    for i in 0..files {
        let text: String = (0..40)
            .map(|s| format!("File {i}, sentence {s}: the tide tables list high and low water for each harbour. "))
            .collect();
        std::fs::write(docs.join(format!("f{i:03}.txt")), text).unwrap();
    }
    let store = dir.path().join("store");
    let mut child = fathom()
        .args(["-v", "ingest", "--json", "--commit-every", "0", "--store"])
        .arg(&store)
        .arg(&docs)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the first sources are committed (the Ctrl-C handler is installed before
    // the ingest starts): the rest of the 80 files still have to be embedded.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("committed") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "fathom ended before its first commit"
        );
    }
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    let out = child.wait_with_output().unwrap();
    let first: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(first["interrupted"], true, "{first}");
    let written = first["added"].as_u64().unwrap();
    assert!(written < files, "{first}");

    // What the first run wrote is whole files: the second run leaves them as they are and adds
    // exactly the rest.
    let out = run(fathom()
        .args(["ingest", "--json", "--store"])
        .arg(&store)
        .arg(&docs));
    let second: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(second["interrupted"], false);
    assert_eq!(second["unchanged"].as_u64().unwrap(), written, "{second}");
    assert_eq!(
        second["added"].as_u64().unwrap(),
        files - written,
        "{second}"
    );
    // The interrupted-then-finished store holds exactly what one uninterrupted run writes.
    let clean = dir.path().join("clean");
    stdout(&run(fathom()
        .args(["ingest", "--json", "--store"])
        .arg(&clean)
        .arg(&docs)));
    let sources = |store: &Path| -> serde_json::Value {
        let out = run(fathom().args(["sources", "--json", "--store"]).arg(store));
        serde_json::from_str(&stdout(&out)).unwrap()
    };
    let resumed = sources(&store);
    assert_eq!(resumed.as_array().unwrap().len() as u64, files);
    assert_eq!(resumed, sources(&clean));
}

/// `scripts/fetch-model.sh` (run by setup) also puts the model in the Hugging Face cache under
/// its hub id, so the default model resolves from any folder, with no network.
#[test]
fn the_default_model_is_found_from_any_folder_offline() {
    let elsewhere = tempfile::tempdir().unwrap();
    let from_repo = stdout(&run(fathom().args(["embed", "lighthouse"])));
    let from_elsewhere = stdout(&run(fathom()
        .current_dir(elsewhere.path())
        .env("HF_HUB_OFFLINE", "1")
        .args(["embed", "lighthouse"])));
    assert_eq!(from_repo, from_elsewhere);
}

/// What scripts parse, snapshotted: `fathom model info --json`, `fathom sources --json` and
/// `fathom search --json` (scores rounded to 3 places, the rest exact), so that a change to any
/// field name or shape is a reviewed change.
#[test]
fn json_outputs_for_scripts_are_snapshotted() {
    let info = stdout(&run(fathom().args(["model", "info", "--json"])));
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    insta::assert_json_snapshot!("model_info", info);

    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    common::write(
        &docs,
        "bread.md",
        "# Bread\n\nBake the loaf in a hot oven for forty minutes.\n",
    );
    common::write(
        &docs,
        "orbits/leo.txt",
        "A satellite in low Earth orbit circles the planet every ninety minutes.\n",
    );
    let store = dir.path().join("store");
    let store = store.to_str().unwrap();
    // From the temp folder with a relative path: source ids are `docs/...` on every machine.
    stdout(&run(fathom()
        .current_dir(dir.path())
        .args(["ingest", "docs", "--store", store])
        .arg("--model")
        .arg(minilm())));
    let sources = stdout(&run(fathom().args(["sources", "--store", store, "--json"])));
    let sources: serde_json::Value = serde_json::from_str(&sources).unwrap();
    insta::assert_json_snapshot!("sources", sources);

    let found = stdout(&run(fathom()
        .args(["search", "how long to bake bread", "-k", "2", "--json"])
        .args(["--store", store, "--model"])
        .arg(minilm())));
    let mut found: serde_json::Value = serde_json::from_str(&found).unwrap();
    for hit in found.as_array_mut().expect("an array of hits") {
        let score = hit["score"].as_f64().unwrap();
        hit["score"] = serde_json::json!((score * 1000.0).round() / 1000.0);
    }
    insta::assert_json_snapshot!("search", found);
}

/// Nonsense flag values are usage errors (exit code 2, the flag named), never a panic: times that
/// are infinite, NaN, negative or centuries long, and counts of zero.
#[test]
fn bad_flag_values_are_usage_errors_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["serve", "--read-timeout", "inf"], "--read-timeout"),
        (&["serve", "--read-timeout", "0"], "--read-timeout"),
        (
            &["serve", "--shutdown-deadline", "NaN"],
            "--shutdown-deadline",
        ),
        (
            &["serve", "--request-timeout", "1e300"],
            "--request-timeout",
        ),
        (&["serve", "--watch-quiet", "2h"], "--watch-quiet"),
        (&["ingest", folder, "--commit-every=-1"], "--commit-every"),
        (
            &["ingest", folder, "--parse-timeout", "inf"],
            "--parse-timeout",
        ),
        (
            &["ingest", folder, "--parse-timeout", "forever"],
            "--parse-timeout",
        ),
        (&["ingest", folder, "--chunk-tokens", "0"], "--chunk-tokens"),
        (
            &["ingest", folder, "--chunk-tokens", "64", "--overlap", "64"],
            "--overlap",
        ),
        (
            &["ingest", folder, "--max-chunks-per-file", "0"],
            "--max-chunks-per-file",
        ),
        (&["ingest", folder, "--ocr", "sometimes"], "--ocr"),
        (&["search", "x", "-k", "0"], "-k"),
        (
            &["search", "x", "--read-consistency", "inf"],
            "--read-consistency",
        ),
        (&["embed", "x", "--dimensions", "0"], "--dimensions"),
    ];
    for (args, flag) in cases {
        let out = run(fathom().args(*args));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(flag), "{args:?} names {flag}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    // Times with units are accepted where plain seconds are.
    let out = run(fathom().args(["ingest", "--help"]));
    assert!(out.status.success());
    for good in ["500ms", "30s", "2m", "1.5"] {
        let t: fathom::cli::Seconds = good.parse().unwrap();
        assert!(!t.0.is_zero(), "{good}");
    }
    assert_eq!(
        "2m".parse::<fathom::cli::Seconds>().unwrap().0,
        std::time::Duration::from_secs(120)
    );
}

/// `fathom rerank QUERY TEXTS... --json --model DIR` for the first query of a reranker fixture
/// and five of its documents: each score equals sentence-transformers' (1e-4), best first.
/// Returns the fixture folder, the query, the (text, score) pairs and the ranking printed.
type RerankRun = (PathBuf, String, Vec<(String, f64)>, Vec<serde_json::Value>);

fn rerank_matches_reference(name: &str) -> RerankRun {
    let reranker = repo_root().join("tests/fixtures/rerank").join(name);
    let reference: Vec<serde_json::Value> =
        std::fs::read_to_string(reranker.join("reference.jsonl"))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    let query = reference[0]["query"].as_str().unwrap().to_string();
    let pairs: Vec<(String, f64)> = reference
        .iter()
        .filter(|r| r["query"] == query.as_str())
        .take(5)
        .map(|r| {
            (
                r["document"].as_str().unwrap().to_string(),
                r["score"].as_f64().unwrap(),
            )
        })
        .collect();
    let texts: Vec<String> = pairs.iter().map(|p| p.0.clone()).collect();
    let out = stdout(&run(fathom()
        .args(["rerank", &query, "--json", "--model"])
        .arg(&reranker)
        .args(&texts)));
    let ranked: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(ranked.len(), texts.len());
    let mut previous = f64::INFINITY;
    for r in &ranked {
        let i = r["index"].as_u64().unwrap() as usize;
        let score = r["score"].as_f64().unwrap();
        assert!(
            (score - pairs[i].1).abs() <= 1e-4,
            "{name} {r}: want {}",
            pairs[i].1
        );
        assert!(score <= previous);
        previous = score;
    }
    (reranker, query, pairs, ranked)
}

#[test]
fn rerank_command_runs_a_qwen3_reranker_through_its_chat_template() {
    rerank_matches_reference("qwen3");
}

/// `fathom rerank` and `fathom search --rerank` with the tiny cross-encoder: scores equal
/// sentence-transformers' `CrossEncoder.predict` (tests/fixtures/rerank/bert/reference.jsonl), and a
/// reranked search returns the best k of its candidates by that score.
#[test]
fn rerank_command_and_reranked_search() {
    // Texts as arguments, JSON out, best first.
    let (reranker, query, pairs, ranked) = rerank_matches_reference("bert");
    let texts: Vec<&str> = pairs.iter().map(|p| p.0.as_str()).collect();
    // Texts on stdin, one per line: the same order.
    let out = stdout(&run_stdin(
        fathom()
            .args(["rerank", &query, "--json", "--model"])
            .arg(&reranker),
        texts.join("\n").as_bytes(),
    ));
    let from_stdin: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let order = |v: &[serde_json::Value]| v.iter().map(|r| r["index"].clone()).collect::<Vec<_>>();
    assert_eq!(order(&from_stdin), order(&ranked));
    // Several models are for the server only.
    let err = failure(&run(fathom()
        .args(["embed", "x", "--model"])
        .arg(minilm())
        .arg("--model")
        .arg(minilm())));
    assert!(
        err.contains("only `fathom serve` and `fathom mcp`"),
        "{err}"
    );
    // An embedder is not a reranker: the error says what the model is.
    let err = failure(&run(fathom()
        .args(["rerank", "q", "a", "--model"])
        .arg(minilm())));
    assert!(err.contains("embedder"), "{err}");

    // Reranked search over an ingested folder of those texts.
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    for (i, t) in texts.iter().enumerate() {
        common::write(&docs, &format!("d{i}.txt"), t);
    }
    let store = dir.path().join("store");
    stdout(&run(fathom()
        .args(["ingest"])
        .arg(&docs)
        .arg("--store")
        .arg(&store)
        .arg("--model")
        .arg(minilm())));
    let out = stdout(&run(fathom()
        .args([
            "search",
            &query,
            "-k",
            "2",
            "--json",
            "--candidates",
            "10",
            "--rerank",
        ])
        .arg(&reranker)
        .arg("--store")
        .arg(&store)
        .arg("--model")
        .arg(minilm())));
    let hits: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(hits.len(), 2);
    let mut best: Vec<(f64, &str)> = pairs.iter().map(|p| (p.1, p.0.as_str())).collect();
    best.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (hit, (score, text)) in hits.iter().zip(&best) {
        assert!(
            (hit["score"].as_f64().unwrap() - score).abs() <= 1e-4,
            "{hit}"
        );
        assert_eq!(hit["text"].as_str().unwrap().trim(), text.trim());
    }
}

/// `fathom eval --rerank`: on a small BEIR folder whose one relevant document per query is the one
/// the cross-encoder scores highest (sentence-transformers' scores in the fixture's reference),
/// reranking puts it first, so the reranked nDCG@10 and MRR@10 are exactly 1.
#[test]
fn eval_with_a_reranker_reports_both_rankings() {
    let reranker = repo_root().join("tests/fixtures/rerank/bert");
    let reference: Vec<serde_json::Value> =
        std::fs::read_to_string(reranker.join("reference.jsonl"))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    let dir = tempfile::tempdir().unwrap();
    let beir = dir.path().join("beir");
    let mut corpus = String::new();
    let mut queries = String::new();
    let mut qrels = String::from("query-id\tcorpus-id\tscore\n");
    let mut ids = std::collections::HashMap::new();
    let mut best: std::collections::HashMap<String, (f64, String)> = Default::default();
    for r in &reference {
        let (q, d, s) = (
            r["query"].as_str().unwrap(),
            r["document"].as_str().unwrap(),
            r["score"].as_f64().unwrap(),
        );
        if d.trim().is_empty() {
            continue;
        }
        let n = ids.len();
        let id = ids
            .entry(d.to_string())
            .or_insert_with(|| format!("d{n}"))
            .clone();
        if n < ids.len() {
            corpus.push_str(&serde_json::json!({"_id": id, "title": "", "text": d}).to_string());
            corpus.push('\n');
        }
        let entry = best
            .entry(q.to_string())
            .or_insert((f64::MIN, String::new()));
        if s > entry.0 {
            *entry = (s, id);
        }
    }
    for (i, (q, (_, id))) in best.iter().enumerate() {
        queries.push_str(&serde_json::json!({"_id": format!("q{i}"), "text": q}).to_string());
        queries.push('\n');
        qrels.push_str(&format!("q{i}\t{id}\t1\n"));
    }
    common::write(&beir, "corpus.jsonl", corpus);
    common::write(&beir, "queries.jsonl", queries);
    common::write(&beir, "qrels/test.tsv", qrels);
    let out = stdout(&run(fathom()
        .arg("eval")
        .arg(&beir)
        .args(["--json", "--candidates", "100", "--rerank"])
        .arg(&reranker)
        .arg("--store")
        .arg(dir.path().join("store"))
        .arg("--model")
        .arg(minilm())));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let reranked = &report["reranked"];
    assert_eq!(reranked["ndcg@10"].as_f64(), Some(1.0), "{report}");
    assert_eq!(reranked["mrr@10"].as_f64(), Some(1.0), "{report}");
    assert!(report["ndcg@10"].as_f64().unwrap() <= 1.0, "{report}");
    assert_eq!(report["queries"].as_u64(), Some(best.len() as u64));
}

/// A static-embedding model through the CLI: `fathom embed` gives Model2Vec's own vectors (the
/// fixture's reference, `StaticModel.encode`), and `fathom ingest` + `fathom search` with it find
/// a document by its own text.
#[test]
fn static_models_embed_ingest_and_search() {
    let model = repo_root().join("tests/fixtures/static/model2vec");
    let reference: Vec<serde_json::Value> = std::fs::read_to_string(model.join("reference.jsonl"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let texts: Vec<&str> = reference
        .iter()
        .map(|r| r["text"].as_str().unwrap())
        .filter(|t| !t.trim().is_empty())
        .take(6)
        .collect();
    let out = stdout(&run(fathom()
        .args(["embed", "--model"])
        .arg(&model)
        .args(&texts)));
    let vectors: Vec<Vec<f64>> = serde_json::from_str(&out).unwrap();
    assert_eq!(vectors.len(), texts.len());
    for (v, text) in vectors.iter().zip(&texts) {
        let want = reference.iter().find(|r| r["text"] == *text).unwrap()["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect::<Vec<_>>();
        let diff = v
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(diff < 1e-5, "{text:?}: max abs diff {diff}");
    }

    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    for (i, t) in texts.iter().enumerate() {
        std::fs::write(docs.join(format!("doc{i}.txt")), t).unwrap();
    }
    let store = dir.path().join("store");
    run(fathom()
        .arg("ingest")
        .arg(&docs)
        .arg("--store")
        .arg(&store)
        .arg("--model")
        .arg(&model));
    let out = stdout(&run(fathom()
        .args(["search", texts[2], "-k", "1", "--json", "--mode", "vector"])
        .arg("--store")
        .arg(&store)
        .arg("--model")
        .arg(&model)));
    let hits: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert!(
        hits[0]["source"].as_str().unwrap().ends_with("/doc2.txt"),
        "{out}"
    );
    let info = stdout(&run(fathom().args(["model", "info"]).arg(&model)));
    assert!(
        info.contains("static") && info.contains("Model2Vec"),
        "{info}"
    );
    assert!(!info.contains("not supported"), "{info}");
}
