//! The CUDA checks, as one self-contained binary for a GPU machine that has no Rust toolchain
//! (`scripts/build-cuda.sh` builds it, `scripts/gpu-check.sh` runs it there).
//!
//! ```text
//! gpu_check fidelity [--generic] [--device cuda] [--dtype f32|f16] [--min-cos X] MODEL_DIR[=REFERENCE]...
//! gpu_check bench --corpus FILE --model DIR [--limit N] [--batch B] [--device cuda] [--dtype f32|f16]
//! ```
//!
//! `fidelity` embeds every text of each model's reference (`MODEL_DIR/reference.jsonl` unless
//! named: `{"text","embedding"}` lines from sentence-transformers) on the device, in one batch and
//! one at a time, prints the worst cosine per model as a JSON line and exits 1 if any falls below
//! `--min-cos` (default 0.9999, the f32 bar; 0.999 for f16) or a model fails to load or run.
//! `bench` prints one JSON line with docs/s for SciFact-style JSONL documents.

use std::path::{Path, PathBuf};
use std::time::Instant;

use fathom_model::{DeviceSpec, EmbedOptions, Embedder, LoadOptions, Precision};

struct Args {
    command: String,
    /// `fidelity`'s models: folder and reference file.
    cases: Vec<(PathBuf, PathBuf)>,
    model: String,
    corpus: PathBuf,
    limit: usize,
    batch: usize,
    device: DeviceSpec,
    precision: Precision,
    min_cos: f64,
    /// Plain candle ops on the CPU too (what CUDA runs), to try that path without a GPU.
    generic: bool,
}

fn parse_args() -> Args {
    let mut it = std::env::args().skip(1);
    let command = it.next().unwrap_or_default();
    let mut args = Args {
        command,
        cases: Vec::new(),
        model: "models/all-MiniLM-L6-v2".into(),
        corpus: PathBuf::from("scifact/corpus.jsonl"),
        limit: 2000,
        batch: 32,
        device: "cuda".parse().expect("device"),
        precision: Precision::F32,
        min_cos: 0.9999,
        generic: false,
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => args.model = value(),
            "--corpus" => args.corpus = value().into(),
            "--limit" => args.limit = value().parse().expect("--limit N"),
            "--batch" => args.batch = value().parse().expect("--batch N"),
            "--device" => args.device = value().parse().expect("--device cpu|cuda|cuda:N"),
            "--dtype" => args.precision = value().parse().expect("--dtype f32|f16|bf16"),
            "--min-cos" => args.min_cos = value().parse().expect("--min-cos X"),
            "--generic" => args.generic = true,
            other if !other.starts_with("--") => {
                let (dir, reference) = match other.split_once('=') {
                    Some((dir, reference)) => (PathBuf::from(dir), PathBuf::from(reference)),
                    None => (
                        PathBuf::from(other),
                        Path::new(other).join("reference.jsonl"),
                    ),
                };
                args.cases.push((dir, reference));
            }
            other => panic!("unknown argument {other}"),
        }
    }
    args
}

fn load(model: &str, args: &Args) -> Embedder {
    let options = LoadOptions {
        device: args.device,
        precision: args.precision,
        // A whole batch in one pass, as a padded framework runs it.
        max_batch_tokens: args.batch.max(1) * 8192,
        generic_ops: args.generic,
        ..LoadOptions::default()
    };
    Embedder::load(model, &options).unwrap_or_else(|e| panic!("loading {model}: {e}"))
}

fn read_reference(path: &Path) -> (Vec<String>, Vec<Vec<f32>>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("JSON line");
            let embedding = v["embedding"]
                .as_array()
                .expect("embedding array")
                .iter()
                .map(|x| x.as_f64().expect("number") as f32)
                .collect();
            (v["text"].as_str().expect("text").to_string(), embedding)
        })
        .unzip()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb).max(1e-30)
}

fn fidelity(args: &Args) -> bool {
    if args.cases.is_empty() {
        eprintln!("fidelity: name at least one model folder");
        return false;
    }
    let mut ok = true;
    for (dir, reference) in &args.cases {
        let name = dir.display().to_string();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            check_model(dir, reference, args)
        }));
        let report = match outcome {
            Ok(Ok(report)) => report,
            Ok(Err(error)) => serde_json::json!({"model": name, "pass": false, "error": error}),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                serde_json::json!({"model": name, "pass": false, "error": format!("panicked: {message}")})
            }
        };
        ok &= report["pass"].as_bool() == Some(true);
        println!("{report}");
    }
    ok
}

/// One model against its reference: worst cosine of the batch to the reference and of each
/// text alone to its batched vector.
fn check_model(dir: &Path, reference: &Path, args: &Args) -> Result<serde_json::Value, String> {
    let (texts, want) = read_reference(reference);
    let options = LoadOptions {
        device: args.device,
        precision: args.precision,
        generic_ops: args.generic,
        ..LoadOptions::default()
    };
    let model = Embedder::load(&dir.display().to_string(), &options).map_err(|e| e.to_string())?;
    let got = model
        .embed(&texts, &EmbedOptions::default())
        .map_err(|e| e.to_string())?;
    let mut single = Vec::with_capacity(texts.len());
    for t in &texts {
        let mut one = model
            .embed(&[t], &EmbedOptions::default())
            .map_err(|e| e.to_string())?;
        single.push(one.remove(0));
    }
    let worst = got
        .iter()
        .zip(&want)
        .map(|(g, w)| cosine(g, w))
        .fold(1.0, f64::min);
    let worst_single = single
        .iter()
        .zip(&got)
        .map(|(s, g)| cosine(s, g))
        .fold(1.0, f64::min);
    let pass = got.len() == want.len() && worst >= args.min_cos && worst_single >= args.min_cos;
    Ok(serde_json::json!({
        "model": dir.display().to_string(), "device": model.device_name(),
        "dtype": args.precision.to_string(), "texts": texts.len(),
        "worst_cosine_vs_reference": worst, "worst_cosine_single_vs_batch": worst_single,
        "min_cos": args.min_cos, "pass": pass,
    }))
}

fn bench(args: &Args) {
    let text = std::fs::read_to_string(&args.corpus)
        .unwrap_or_else(|e| panic!("{}: {e}", args.corpus.display()));
    let docs: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(args.limit)
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("JSON line");
            format!(
                "{} {}",
                v["title"].as_str().unwrap_or(""),
                v["text"].as_str().unwrap_or("")
            )
        })
        .collect();
    let model = load(&args.model, args);
    let options = EmbedOptions::default();
    // sentence-transformers' encode sorts all its inputs by length before it cuts batches; so
    // does this (by characters, as it does), and each batch is one forward pass.
    let mut docs = docs;
    docs.sort_by_key(|d| std::cmp::Reverse(d.chars().count()));
    model
        .embed(&docs[..args.batch.min(docs.len())], &options)
        .expect("warm-up");
    // The profile covers the timed passes only: a first pass also loads (JIT-compiles) kernels.
    fathom_model::profile::reset();
    let started = Instant::now();
    let mut tokens = 0;
    for batch in docs.chunks(args.batch.max(1)) {
        let (_, counts) = model.embed_counting(batch, &options).expect("embed");
        tokens += counts.iter().sum::<usize>();
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "tool": "fathom", "device": model.device_name(), "dtype": args.precision.to_string(),
            "batch": args.batch, "docs": docs.len(), "seconds": seconds,
            "docs_per_s": docs.len() as f64 / seconds, "tokens_per_s": tokens as f64 / seconds,
        })
    );
    // FATHOM_PROFILE=1 (with CUDA_LAUNCH_BLOCKING=1 on a GPU, so that an op's time is its
    // kernels' and not only their launch): seconds per op of the timed passes, on stderr.
    for (op, secs, calls) in fathom_model::profile::report() {
        eprintln!("profile {op:<22} {secs:>8.3} s {calls:>7} calls");
    }
}

fn main() {
    let args = parse_args();
    match args.command.as_str() {
        "fidelity" => {
            if !fidelity(&args) {
                std::process::exit(1);
            }
        }
        "bench" => bench(&args),
        _ => {
            eprintln!("usage: gpu_check fidelity|bench [options] (see the source header)");
            std::process::exit(2);
        }
    }
}
