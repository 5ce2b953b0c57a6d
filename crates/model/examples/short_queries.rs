//! Forward time of single short queries, one model call each (what an idle server does for a
//! search), with the per-op split under `FATHOM_PROFILE=1`.
//!
//! ```text
//! cargo run --release -p fathom-model --example short_queries -- [MODEL] [N]
//! ```
//! MODEL defaults to `models/all-MiniLM-L6-v2` (scripts/fetch-model.sh), N to 500;
//! `FATHOM_DTYPE=int8` (or bf16) for a reduced precision.

use std::time::Instant;

use fathom_model::{EmbedOptions, Embedder, LoadOptions, Precision};

const QUERIES: [&str; 4] = [
    "what causes the seasons on earth",
    "how do vaccines train the immune system",
    "which proteins bind to dna",
    "effects of sleep loss on memory",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let model = args
        .next()
        .unwrap_or_else(|| "models/all-MiniLM-L6-v2".into());
    let n: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(500);
    let precision: Precision = match std::env::var("FATHOM_DTYPE") {
        Ok(d) => d.parse()?,
        Err(_) => Precision::F32,
    };
    let options = LoadOptions {
        precision,
        ..LoadOptions::default()
    };
    let embedder = Embedder::load(&model, &options)?;
    let options = EmbedOptions::default();
    for q in QUERIES {
        embedder.embed(&[q], &options)?;
    }
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let started = Instant::now();
        embedder.embed(&[QUERIES[i % QUERIES.len()]], &options)?;
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() - 1) as f64 * p / 100.0).round() as usize];
    println!(
        "{n} single queries ({precision}): p50 {:.3} ms, p99 {:.3} ms, {} threads",
        pct(50.0),
        pct(99.0),
        rayon::current_num_threads()
    );
    for (op, secs, calls) in fathom_model::profile::report() {
        println!(
            "profile {op:<24} {:>8.3} ms/query {calls:>8} calls",
            secs * 1e3 / n as f64
        );
    }
    Ok(())
}
