//! Search latency on the SciFact collection built by `fathom eval ../shared/data/scifact`:
//! p50 and p99 of k=10 searches over the 300 test queries, with and without the query embedding.
//! Prints one JSON line; timings are never asserted.
//!
//! cargo bench --bench search_scifact -- [--store fathom-data] [--collection eval-scifact]
//!     [--queries ../shared/data/scifact/queries.jsonl] [--mode vector|text|hybrid]

use std::time::Instant;

use fathom_model::{EmbedOptions, Embedder, LoadOptions};
use fathom_store::{SearchMode, SearchQuery, Store};

mod common;
use common::quantile as percentile;

fn main() {
    fathom::allocator::small_pages();
    fathom::allocator::keep_freed_memory();
    let mut store = "fathom-data".to_string();
    let mut collection = "eval-scifact".to_string();
    let mut queries = "../shared/data/scifact/queries.jsonl".to_string();
    let mut mode = SearchMode::Vector;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--store" => store = value(),
            "--collection" => collection = value(),
            "--queries" => queries = value(),
            "--mode" => mode = value().parse().expect("vector|text|hybrid"),
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    let texts: Vec<String> = std::fs::read_to_string(&queries)
        .expect("queries.jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["text"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .take(300)
        .collect();
    let model =
        Embedder::load(&fathom_model::default_model(), &LoadOptions::default()).expect("model");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let c = rt
        .block_on(Store::new(&store).existing_collection(&collection))
        .expect("run `fathom eval ../shared/data/scifact` first to build the collection");
    let chunks = rt.block_on(c.stats()).unwrap().chunks;
    let options = EmbedOptions::default();
    let mut with_embed = Vec::new();
    let mut search_only = Vec::new();
    for (round, text) in texts.iter().enumerate() {
        let start = Instant::now();
        let vector = model.embed(&[text.as_str()], &options).unwrap().remove(0);
        let embedded = Instant::now();
        let query = SearchQuery {
            vector: Some(vector),
            text: Some(text.clone()),
            mode,
            k: 10,
            filters: Vec::new(),
        };
        let hits = rt.block_on(c.search(&query)).unwrap();
        assert!(!hits.is_empty());
        if round >= 5 {
            // The first few warm caches up.
            search_only.push(embedded.elapsed().as_secs_f64() * 1e3);
            with_embed.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    with_embed.sort_by(f64::total_cmp);
    search_only.sort_by(f64::total_cmp);
    println!(
        "{}",
        serde_json::json!({
            "collection": collection, "chunks": chunks, "mode": format!("{mode:?}").to_lowercase(),
            "queries": search_only.len(), "k": 10,
            "search_ms_p50": percentile(&search_only, 0.5), "search_ms_p99": percentile(&search_only, 0.99),
            "embed_and_search_ms_p50": percentile(&with_embed, 0.5), "embed_and_search_ms_p99": percentile(&with_embed, 0.99),
        })
    );
}
