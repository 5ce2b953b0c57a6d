//! HTTP load on `fathom serve`'s embed route: single-text requests at several concurrencies,
//! against in-process embed throughput of the same texts in the same run. The server runs in this
//! process on a real socket (so RSS is the server's), clients are reqwest on the same runtime.
//! Prints one JSON line per measurement; timings are never asserted.
//!
//! cargo bench --bench http_load -- [--corpus FILE] [--limit N] [--model M]
//!     [--concurrency 1,8,32,128] [--soak SECONDS]

use std::sync::Arc;
use std::time::{Duration, Instant};

use fathom_model::{EmbedOptions, Embedder, LoadOptions};
use fathom_server::{AppState, ServerConfig};

mod common;

struct Args {
    corpus: String,
    limit: usize,
    model: String,
    concurrency: Vec<usize>,
    soak: Option<u64>,
}

fn parse_args() -> Args {
    let mut args = Args {
        corpus: "../shared/data/scifact/corpus.jsonl".into(),
        limit: 512,
        model: fathom_model::default_model(),
        concurrency: vec![1, 8, 32, 128],
        soak: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--corpus" => args.corpus = value(),
            "--limit" => args.limit = value().parse().expect("--limit N"),
            "--model" => args.model = value(),
            "--concurrency" => {
                args.concurrency = value()
                    .split(',')
                    .map(|c| c.trim().parse().expect("--concurrency 1,8,32"))
                    .collect()
            }
            "--soak" => args.soak = Some(value().parse().expect("--soak SECONDS")),
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    args
}

/// Sends every text once as its own request, `concurrency` at a time; returns wall seconds and
/// sorted latencies in ms.
async fn load(url: &str, texts: Arc<Vec<String>>, concurrency: usize) -> (f64, Vec<f64>) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, texts, next, url) =
                (client.clone(), texts.clone(), next.clone(), url.to_string());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= texts.len() {
                        break latencies;
                    }
                    let t = Instant::now();
                    let r = client
                        .post(&url)
                        .json(&serde_json::json!({"inputs": texts[i]}))
                        .send()
                        .await
                        .expect("request");
                    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
                    r.bytes().await.unwrap();
                    latencies.push(t.elapsed().as_secs_f64() * 1e3);
                }
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for w in workers {
        latencies.extend(w.await.unwrap());
    }
    let wall = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    (wall, latencies)
}

fn main() {
    fathom::allocator::small_pages();
    fathom::allocator::keep_freed_memory();
    let args = parse_args();
    let texts = Arc::new(common::read_scifact_docs(&args.corpus, args.limit));
    let model = Arc::new(Embedder::load(&args.model, &LoadOptions::default()).expect("load model"));

    // In-process: the same texts, batches of 32 straight into the model.
    model
        .embed(&texts[..8.min(texts.len())], &EmbedOptions::default())
        .unwrap();
    let started = Instant::now();
    for batch in texts.chunks(32) {
        model.embed(batch, &EmbedOptions::default()).unwrap();
    }
    let in_process = texts.len() as f64 / started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({"mode": "in_process", "batch": 32, "texts": texts.len(), "docs_per_s": in_process})
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = tempfile::tempdir().unwrap();
        let state = AppState::new(ServerConfig {
            store: store.path().display().to_string(),
            ..ServerConfig::default()
        });
        let installing = state.clone();
        let m = model.clone();
        tokio::task::spawn_blocking(move || installing.install_model(m).unwrap())
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/embed", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(fathom_server::serve(listener, state, async {
            let _ = stopped.await;
        }));

        for &c in &args.concurrency {
            let (wall, lat) = load(&url, texts.clone(), c).await;
            let throughput = texts.len() as f64 / wall;
            println!(
                "{}",
                serde_json::json!({
                    "mode": "http", "concurrency": c, "requests": lat.len(),
                    "docs_per_s": throughput, "ratio_to_in_process": throughput / in_process,
                    "p50_ms": common::quantile(&lat, 0.5), "p99_ms": common::quantile(&lat, 0.99),
                    "rss_mib": common::rss_mib(),
                })
            );
        }

        if let Some(seconds) = args.soak {
            let rss_start = common::rss_mib();
            let until = Instant::now() + Duration::from_secs(seconds);
            let mut rounds = 0;
            let mut requests = 0;
            while Instant::now() < until {
                let (_, lat) = load(&url, texts.clone(), 32).await;
                rounds += 1;
                requests += lat.len();
                eprintln!(
                    "soak: round {rounds}, {requests} requests, rss {:?} MiB",
                    common::rss_mib()
                );
            }
            println!(
                "{}",
                serde_json::json!({
                    "mode": "soak", "seconds": seconds, "concurrency": 32, "requests": requests,
                    "rss_start_mib": rss_start, "rss_end_mib": common::rss_mib(),
                    "peak_rss_mib": common::peak_rss_mib(),
                })
            );
        }
        let _ = stop.send(());
        server.await.unwrap().unwrap();
    });
}
