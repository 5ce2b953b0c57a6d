//! Scale bench of the store (not run in CI): N random 384-d unit vectors (default 1,000,000),
//! drawn from a mixture of Gaussian clusters so that nearest neighbours mean something, written
//! to a lance collection in a temp folder; then the IVF_PQ index build time, recall@10 of the
//! indexed search against exact brute force, and p50/p99 query latency. Prints JSON lines;
//! timings are never asserted.
//!
//! cargo bench --bench scale_ann -- [--n 1000000] [--queries 200] [--nprobes 20] [--refine 4]
//!     [--store DIR]

use std::time::Instant;

use fathom_store::{
    ChunkRecord, IndexPolicy, ModelSpec, SearchMode, SearchQuery, SourceChunks, Store,
};

mod common;

const DIM: usize = 384;
const CHUNKS_PER_SOURCE: usize = 1000;

/// splitmix64 with Box–Muller: reproducible Gaussian samples without a dependency.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn gaussian(&mut self) -> f32 {
        let (u, v) = (self.uniform(), self.uniform());
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }
}

fn normalized(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

/// A point of the mixture: a random cluster centre plus noise of about `spread` its length.
fn sample(rng: &mut Rng, centres: &[Vec<f32>], spread: f32) -> Vec<f32> {
    let c = &centres[(rng.next_u64() % centres.len() as u64) as usize];
    let sd = spread / (DIM as f32).sqrt();
    normalized(c.iter().map(|x| x + sd * rng.gaussian()).collect())
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum()
}

/// Exact top-k ids by cosine (the vectors are unit length).
fn exact_top_k(data: &[Vec<f32>], q: &[f32], k: usize) -> Vec<usize> {
    let mut best: Vec<(f32, usize)> = Vec::with_capacity(k + 1);
    for (i, v) in data.iter().enumerate() {
        let s = dot(v, q);
        if best.len() < k || s > best[best.len() - 1].0 {
            let at = best.partition_point(|&(b, _)| b >= s);
            best.insert(at, (s, i));
            best.truncate(k);
        }
    }
    best.into_iter().map(|(_, i)| i).collect()
}

fn main() {
    let mut n = 1_000_000usize;
    let mut queries = 200usize;
    let mut policy = IndexPolicy::default();
    let mut store_dir: Option<String> = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--n" => n = value().parse().expect("--n N"),
            "--queries" => queries = value().parse().expect("--queries N"),
            "--nprobes" => policy.nprobes = value().parse().expect("--nprobes N"),
            "--refine" => policy.refine_factor = value().parse().expect("--refine N"),
            "--store" => store_dir = Some(value()),
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    let mut rng = Rng(42);
    let centres: Vec<Vec<f32>> = (0..1024)
        .map(|_| normalized((0..DIM).map(|_| rng.gaussian()).collect()))
        .collect();
    let started = Instant::now();
    let data: Vec<Vec<f32>> = (0..n).map(|_| sample(&mut rng, &centres, 0.8)).collect();
    let probes: Vec<Vec<f32>> = (0..queries)
        .map(|_| sample(&mut rng, &centres, 0.8))
        .collect();
    eprintln!(
        "generated {n} vectors in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let temp = tempfile::tempdir().unwrap();
    let root = store_dir.unwrap_or_else(|| temp.path().display().to_string());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let spec = ModelSpec {
            model: "random/mixture-384".into(),
            dimension: DIM,
            normalized: true,
        };
        let collection = Store::new(root)
            .collection("scale", &spec)
            .await
            .unwrap()
            .with_index_policy(policy);
        // With --store pointing at a folder of an earlier run, reuse its collection and index
        // (to compare search settings without rebuilding).
        let existing = collection.stats().await.map(|s| s.chunks).unwrap_or(0);
        if existing == n {
            eprintln!("reusing the {n} vectors and index in the store");
        } else {
        let started = Instant::now();
        let sources: Vec<SourceChunks> = data
            .chunks(CHUNKS_PER_SOURCE)
            .enumerate()
            .map(|(s, vectors)| SourceChunks {
                source_id: format!("s{s:05}"),
                source_hash: String::new(),
                metadata: None,
                chunks: vectors
                    .iter()
                    .enumerate()
                    .map(|(i, v)| ChunkRecord {
                        chunk_index: i as u32,
                        byte_start: 0,
                        byte_end: 0,
                        char_start: 0,
                        char_end: 0,
                        text: String::new(),
                        location: None,
                        vector: v.clone(),
                    })
                    .collect(),
            })
            .collect();
        for batch in sources.chunks(20) {
            collection.replace_sources(batch).await.unwrap();
        }
        let write_s = started.elapsed().as_secs_f64();
        drop(sources);
        let started = Instant::now();
        collection.update_indexes().await.unwrap();
        let index_s = started.elapsed().as_secs_f64();
        let stats = collection.stats().await.unwrap();
        println!(
            "{}",
            serde_json::json!({"vectors": n, "write_s": write_s, "index_build_s": index_s,
                "vector_index": stats.vector_index, "nprobes": policy.nprobes, "refine_factor": policy.refine_factor})
        );
        }

        let mut latencies = Vec::with_capacity(queries);
        let mut found = 0usize;
        let started = Instant::now();
        let exact: Vec<Vec<usize>> = probes.iter().map(|q| exact_top_k(&data, q, 10)).collect();
        let exact_s = started.elapsed().as_secs_f64();
        for (q, truth) in probes.iter().zip(&exact) {
            let query = SearchQuery {
                vector: Some(q.clone()),
                text: None,
                mode: SearchMode::Vector,
                k: 10,
                filters: Vec::new(),
            };
            let t = Instant::now();
            let hits = collection.search(&query).await.unwrap();
            latencies.push(t.elapsed().as_secs_f64() * 1e3);
            let ids: Vec<usize> = hits
                .iter()
                .map(|h| {
                    h.source_id[1..].parse::<usize>().unwrap() * CHUNKS_PER_SOURCE
                        + h.chunk_index as usize
                })
                .collect();
            found += truth.iter().filter(|t| ids.contains(t)).count();
        }
        latencies.sort_by(f64::total_cmp);
        println!(
            "{}",
            serde_json::json!({"queries": queries, "recall_at_10": found as f64 / (10 * queries) as f64,
                "p50_ms": common::quantile(&latencies, 0.5), "p99_ms": common::quantile(&latencies, 0.99),
                "exact_brute_force_ms_per_query": exact_s * 1e3 / queries as f64,
                "peak_rss_mib": common::peak_rss_mib()})
        );
    });
}
