//! Prometheus metrics (`GET /metrics`): requests, latencies, queue depth, batch sizes, tokens.
//! Each server owns its registry (no process-wide recorder), so tests can run several servers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct CollectionLabels {
    pub(crate) collection: String,
}

/// The store's shape per open collection, refreshed when `/metrics` is read.
#[derive(Debug, Default)]
pub(crate) struct StoreGauges {
    pub(crate) chunks: Family<CollectionLabels, Gauge>,
    pub(crate) versions: Family<CollectionLabels, Gauge>,
    pub(crate) fragments: Family<CollectionLabels, Gauge>,
    pub(crate) unindexed_rows: Family<CollectionLabels, Gauge>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.5 ms .. ~16 s
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily<RouteLabels>,
    pub(crate) queue_depth: Gauge,
    pub(crate) rejected_overloaded: Counter,
    batch_inputs: Histogram,
    batch_seconds: Histogram,
    tokens: Counter,
    tokens_per_second: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub(crate) store: StoreGauges,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("fathom");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        let latency: HistogramFamily<RouteLabels> =
            Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "embed_queue_depth",
            "Embed requests waiting for the model",
            queue_depth.clone(),
        );
        let rejected_overloaded = Counter::default();
        registry.register(
            "embed_rejected_overloaded",
            "Embed requests refused with 429 because the queue was full",
            rejected_overloaded.clone(),
        );
        let batch_inputs = Histogram::new(exponential_buckets(1.0, 2.0, 12));
        registry.register(
            "embed_batch_inputs",
            "Inputs per model call (after merging concurrent requests)",
            batch_inputs.clone(),
        );
        let batch_seconds = latency_histogram();
        registry.register(
            "embed_batch_duration_seconds",
            "Time of one model call",
            batch_seconds.clone(),
        );
        let tokens = Counter::default();
        registry.register(
            "embed_tokens",
            "Tokens run through the model",
            tokens.clone(),
        );
        let tokens_per_second = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "embed_tokens_per_second",
            "Throughput of the last model call",
            tokens_per_second.clone(),
        );
        let store = StoreGauges::default();
        registry.register(
            "store_chunks",
            "Chunks in each open collection",
            store.chunks.clone(),
        );
        registry.register(
            "store_versions",
            "Lance versions kept on disk per collection (upkeep removes old ones)",
            store.versions.clone(),
        );
        registry.register(
            "store_fragments",
            "Data fragments per collection (upkeep compacts small ones)",
            store.fragments.clone(),
        );
        registry.register(
            "store_unindexed_rows",
            "Rows not yet in the vector index (searched exactly until upkeep indexes them)",
            store.unindexed_rows.clone(),
        );
        Self {
            registry,
            store,
            requests,
            latency,
            queue_depth,
            rejected_overloaded,
            batch_inputs,
            batch_seconds,
            tokens,
            tokens_per_second,
        }
    }
}

impl Metrics {
    pub(crate) fn record_batch(&self, inputs: usize, tokens: usize, took: Duration) {
        self.batch_inputs.observe(inputs as f64);
        self.batch_seconds.observe(took.as_secs_f64());
        self.tokens.inc_by(tokens as u64);
        self.tokens_per_second
            .set(tokens as f64 / took.as_secs_f64().max(1e-9));
    }

    pub(crate) fn record_store(&self, collection: &str, stats: &fathom_store::Stats) {
        let labels = CollectionLabels {
            collection: collection.to_string(),
        };
        let set = |family: &Family<CollectionLabels, Gauge>, v: usize| {
            family
                .get_or_create(&labels)
                .set(i64::try_from(v).unwrap_or(i64::MAX));
        };
        set(&self.store.chunks, stats.chunks);
        set(&self.store.versions, stats.versions);
        set(&self.store.fragments, stats.fragments);
        set(&self.store.unindexed_rows, stats.unindexed_rows);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// Middleware: counts every request and observes its latency under its route pattern.
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    // Any string is a valid HTTP method: only the standard ones become labels, so a client
    // cannot grow the registry without bound.
    let method = match request.method().as_str() {
        m @ ("GET" | "POST" | "PUT" | "DELETE" | "PATCH" | "HEAD" | "OPTIONS") => m.to_string(),
        _ => "other".to_string(),
    };
    let started = Instant::now();
    let response = next.run(request).await;
    metrics
        .latency
        .get_or_create(&RouteLabels {
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .get_or_create(&RequestLabels {
            route,
            method,
            status: response.status().as_u16(),
        })
        .inc();
    response
}
