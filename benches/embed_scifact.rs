//! Embed throughput on SciFact documents (`title + " " + text`), as `scripts/bench-embed.sh`
//! compares it with sentence-transformers. Prints one JSON line; timings are never asserted.
//!
//! cargo bench --bench embed_scifact -- [--corpus FILE] [--limit N] [--model M]
//!     [--max-batch-tokens N] [--vectors-out FILE] [--repeat N] [--dtype f32|int8|bf16]

use std::io::Write;
use std::time::Instant;

use fathom_model::{EmbedOptions, Embedder, LoadOptions, Precision};

mod common;

struct Args {
    corpus: String,
    limit: usize,
    model: String,
    max_batch_tokens: usize,
    vectors_out: Option<String>,
    repeat: usize,
    precision: Precision,
}

fn parse_args() -> Args {
    let mut args = Args {
        corpus: "../shared/data/scifact/corpus.jsonl".into(),
        limit: 400,
        model: fathom_model::default_model(),
        max_batch_tokens: LoadOptions::default().max_batch_tokens,
        vectors_out: None,
        repeat: 1,
        precision: Precision::F32,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--corpus" => args.corpus = value(),
            "--limit" => args.limit = value().parse().expect("--limit N (0 = all)"),
            "--model" => args.model = value(),
            "--max-batch-tokens" => {
                args.max_batch_tokens = value().parse().expect("--max-batch-tokens N")
            }
            "--vectors-out" => args.vectors_out = Some(value()),
            "--repeat" => args.repeat = value().parse().expect("--repeat N"),
            "--dtype" => args.precision = value().parse().expect("--dtype f32|int8|bf16"),
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    args
}

fn main() {
    fathom::allocator::small_pages();
    fathom::allocator::keep_freed_memory();
    let args = parse_args();
    let docs = common::read_scifact_docs(&args.corpus, args.limit);
    let options = LoadOptions {
        max_batch_tokens: args.max_batch_tokens,
        precision: args.precision,
        ..LoadOptions::default()
    };
    let model = Embedder::load(&args.model, &options).expect("load model");
    let max = model.max_seq_length();
    let tokens: usize = docs
        .iter()
        .map(|d| model.count_tokens(d).expect("tokenize").min(max))
        .sum();
    let embed_options = EmbedOptions::default();
    model
        .embed(&docs[..docs.len().min(16)], &embed_options)
        .expect("warm-up");

    let mut best = f64::INFINITY;
    let mut vectors = Vec::new();
    for _ in 0..args.repeat.max(1) {
        let start = Instant::now();
        vectors = model.embed(&docs, &embed_options).expect("embed");
        best = best.min(start.elapsed().as_secs_f64());
    }
    if let Some(path) = &args.vectors_out {
        let mut f =
            std::io::BufWriter::new(std::fs::File::create(path).expect("create vectors-out"));
        for v in &vectors {
            writeln!(f, "{}", serde_json::to_string(v).unwrap()).unwrap();
        }
    }
    for (op, secs, calls) in fathom_model::profile::report() {
        eprintln!("profile {op:<22} {secs:>8.3} s  {calls:>6} calls");
    }
    println!(
        "{}",
        serde_json::json!({
            "tool": "fathom",
            "precision": format!("{:?}", args.precision).to_lowercase(),
            "threads": rayon_threads(),
            "kernel_paths": fathom_model::kernel_paths(),
            "docs": docs.len(),
            "tokens": tokens,
            "seconds": best,
            "docs_per_s": docs.len() as f64 / best,
            "tokens_per_s": tokens as f64 / best,
            "peak_rss_mib": common::peak_rss_mib(),
        })
    );
}

fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
