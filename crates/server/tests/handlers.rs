//! Every route through `app()` with `oneshot` (no socket), with the real model
//! (models/all-MiniLM-L6-v2) and a real lance store in a temp folder.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use base64::Engine as _;
use fathom_model::{EmbedOptions, Embedder, LoadOptions};
use fathom_server::{app, AppState, ServerConfig};
use serde_json::{json, Value};
use tower::ServiceExt;

fn model() -> Arc<Embedder> {
    static MODEL: OnceLock<Arc<Embedder>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let dir = fathom_testkit::minilm();
            Arc::new(Embedder::load(dir.to_str().unwrap(), &LoadOptions::default()).unwrap())
        })
        .clone()
}

struct TestServer {
    router: Router,
    state: AppState,
    dir: tempfile::TempDir,
}

fn server_with(configure: impl FnOnce(&mut ServerConfig, &Path)) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig {
        store: dir.path().join("store").display().to_string(),
        ..ServerConfig::default()
    };
    configure(&mut config, dir.path());
    let state = AppState::new(config);
    state.install_model(model()).unwrap();
    TestServer {
        router: app(state.clone()),
        state,
        dir,
    }
}

fn server() -> TestServer {
    server_with(|_, _| {})
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// Asserts the JSON error shape and returns the message.
    fn error(&self, status: StatusCode, kind: &str) -> String {
        let body = self.json();
        assert_eq!(self.status, status, "{body}");
        assert_eq!(body["type"], kind, "{body}");
        body["error"].as_str().unwrap().to_string()
    }
}

async fn call(router: &Router, method: Method, uri: &str, body: Option<Value>) -> Answer {
    call_raw(
        router,
        method,
        uri,
        body.map(|b| b.to_string().into_bytes()),
        &[],
    )
    .await
}

async fn call_raw(
    router: &Router,
    method: Method,
    uri: &str,
    body: Option<Vec<u8>>,
    headers: &[(&str, &str)],
) -> Answer {
    let mut request = Request::builder().method(method).uri(uri);
    if body.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let request = request
        .body(body.map(Body::from).unwrap_or_else(Body::empty))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn vectors(v: &Value) -> Vec<Vec<f32>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn health_is_503_until_the_model_is_installed() {
    let dir = tempfile::tempdir().unwrap();
    let state = AppState::new(ServerConfig {
        store: dir.path().display().to_string(),
        ..ServerConfig::default()
    });
    let router = app(state.clone());
    let answer = call(&router, Method::GET, "/health", None).await;
    answer.error(StatusCode::SERVICE_UNAVAILABLE, "not_ready");
    assert_eq!(answer.headers[header::RETRY_AFTER], "1");
    call(
        &router,
        Method::POST,
        "/embed",
        Some(json!({"inputs": "x"})),
    )
    .await
    .error(StatusCode::SERVICE_UNAVAILABLE, "not_ready");
    state.install_model(model()).unwrap();
    let answer = call(&router, Method::GET, "/health", None).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json(), json!({"status": "ok"}));
}

#[tokio::test]
async fn embed_matches_the_model_for_one_text_and_many() {
    let s = server();
    let texts = [
        "The cat sits on the mat.",
        "Rust is a systems language.",
        "x",
    ];
    let expected = model().embed(&texts, &EmbedOptions::default()).unwrap();

    let one = call(
        &s.router,
        Method::POST,
        "/embed",
        Some(json!({"inputs": texts[0]})),
    )
    .await;
    assert_eq!(one.status, StatusCode::OK);
    let got = vectors(&one.json());
    assert_eq!(got.len(), 1);
    assert!(max_abs_diff(&got[0], &expected[0]) < 1e-5);

    let many = call(
        &s.router,
        Method::POST,
        "/embed",
        Some(json!({"inputs": texts})),
    )
    .await;
    let got = vectors(&many.json());
    assert_eq!(got.len(), 3);
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g.len(), 384);
        assert!(max_abs_diff(g, e) < 1e-5);
    }

    // Options: no normalization, Matryoshka dimensions, left truncation.
    let raw = call(
        &s.router,
        Method::POST,
        "/embed",
        Some(
            json!({"inputs": texts[0], "normalize": false, "dimensions": 64,
                    "truncation_direction": "Left", "truncate": true}),
        ),
    )
    .await;
    let raw = vectors(&raw.json()).remove(0);
    let expected_raw = model()
        .embed(
            &texts[..1],
            &EmbedOptions {
                normalize: Some(false),
                dimensions: Some(64),
                truncation_direction: fathom_model::Truncation::Left,
                ..EmbedOptions::default()
            },
        )
        .unwrap()
        .remove(0);
    assert_eq!(raw.len(), 64);
    assert!(max_abs_diff(&raw, &expected_raw) < 1e-5);
    let norm: f32 = raw.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() > 1e-3, "normalize: false was ignored");
}

#[tokio::test]
async fn embed_refuses_bad_input_with_json_errors() {
    let s = server_with(|c, _| {
        c.max_inputs = 2;
        c.max_body_bytes = 4096;
    });
    let r = &s.router;
    let msg = call(r, Method::POST, "/embed", Some(json!({"inputs": []})))
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert!(msg.contains("empty"), "{msg}");
    let msg = call(
        r,
        Method::POST,
        "/embed",
        Some(json!({"inputs": ["a", "b", "c"]})),
    )
    .await
    .error(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert!(msg.contains("at most 2"), "{msg}");
    let long = "word ".repeat(400);
    let msg = call(
        r,
        Method::POST,
        "/embed",
        Some(json!({"inputs": long, "truncate": false})),
    )
    .await
    .error(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert!(msg.contains("more than the 256 this model takes"), "{msg}");
    let msg = call(
        r,
        Method::POST,
        "/embed",
        Some(json!({"inputs": "x", "prompt_name": "nope"})),
    )
    .await
    .error(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert!(msg.contains("nope"), "{msg}");
    call(
        r,
        Method::POST,
        "/embed",
        Some(json!({"inputs": "x", "dimensions": 0})),
    )
    .await
    .error(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    call(r, Method::POST, "/embed", Some(json!({"inputs": 42})))
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    call_raw(
        r,
        Method::POST,
        "/embed",
        Some(b"{\"inputs\": ".to_vec()),
        &[],
    )
    .await
    .error(StatusCode::BAD_REQUEST, "validation");
    call_raw(r, Method::POST, "/embed", Some(vec![0xff, 0xfe, b'{']), &[])
        .await
        .error(StatusCode::BAD_REQUEST, "validation");
    let huge = json!({"inputs": "a".repeat(10_000)});
    let msg = call(r, Method::POST, "/embed", Some(huge))
        .await
        .error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert!(msg.contains("max_body_bytes"), "{msg}");
    call(r, Method::GET, "/nowhere", None)
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
    call(r, Method::GET, "/embed", None)
        .await
        .error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    // One bad request batched with good ones fails alone.
    let good = call(
        r,
        Method::POST,
        "/embed",
        Some(json!({"inputs": "still fine"})),
    )
    .await;
    assert_eq!(good.status, StatusCode::OK);
}

#[tokio::test]
async fn openai_route_answers_floats_and_base64_with_usage() {
    let s = server();
    let body = json!({"input": ["hello world", "a second text"], "model": "anything"});
    let floats = call(&s.router, Method::POST, "/v1/embeddings", Some(body)).await;
    assert_eq!(floats.status, StatusCode::OK);
    let floats = floats.json();
    assert_eq!(floats["object"], "list");
    assert_eq!(floats["model"], "all-MiniLM-L6-v2");
    assert_eq!(floats["data"][1]["index"], 1);
    assert_eq!(floats["data"][1]["object"], "embedding");
    // "hello world" is 2 tokens + CLS/SEP; "a second text" 3 + 2.
    assert_eq!(floats["usage"]["prompt_tokens"], 9);
    assert_eq!(floats["usage"]["total_tokens"], 9);

    let body = json!({"input": ["hello world", "a second text"], "model": "x", "encoding_format": "base64"});
    let b64 = call(&s.router, Method::POST, "/v1/embeddings", Some(body))
        .await
        .json();
    for i in 0..2 {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64["data"][i]["embedding"].as_str().unwrap())
            .unwrap();
        let decoded: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let float: Vec<f32> = floats["data"][i]["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(decoded.len(), 384);
        assert!(max_abs_diff(&decoded, &float) < 1e-6);
    }
    let dims = call(
        &s.router,
        Method::POST,
        "/v1/embeddings",
        Some(json!({"input": "x", "model": "m", "dimensions": 128})),
    )
    .await
    .json();
    assert_eq!(dims["data"][0]["embedding"].as_array().unwrap().len(), 128);
    let msg = call(
        &s.router,
        Method::POST,
        "/v1/embeddings",
        Some(json!({"input": [1, 2, 3], "model": "m"})),
    )
    .await
    .error(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert!(msg.contains("token-id"), "{msg}");
}

#[tokio::test]
async fn api_key_protects_everything_but_health() {
    let s = server_with(|c, _| c.api_key = Some("s3cret".into()));
    let r = &s.router;
    assert_eq!(
        call(r, Method::GET, "/health", None).await.status,
        StatusCode::OK
    );
    let body = Some(br#"{"inputs": "x"}"#.to_vec());
    call_raw(r, Method::POST, "/embed", body.clone(), &[])
        .await
        .error(StatusCode::UNAUTHORIZED, "unauthorized");
    call_raw(
        r,
        Method::POST,
        "/embed",
        body.clone(),
        &[("authorization", "Bearer wrong")],
    )
    .await
    .error(StatusCode::UNAUTHORIZED, "unauthorized");
    call_raw(r, Method::GET, "/info", None, &[])
        .await
        .error(StatusCode::UNAUTHORIZED, "unauthorized");
    let ok = call_raw(
        r,
        Method::POST,
        "/embed",
        body,
        &[("authorization", "Bearer s3cret")],
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);
}

#[tokio::test]
async fn concurrent_requests_are_merged_into_fewer_model_calls() {
    let s = server();
    let texts: Vec<String> = (0..24)
        .map(|i| format!("request number {i} about topic {}", i * 7))
        .collect();
    let answers = futures::future::join_all(texts.iter().map(|t| {
        call(
            &s.router,
            Method::POST,
            "/embed",
            Some(json!({"inputs": t})),
        )
    }))
    .await;
    let expected = model().embed(&texts, &EmbedOptions::default()).unwrap();
    for (answer, e) in answers.iter().zip(&expected) {
        assert_eq!(answer.status, StatusCode::OK);
        assert!(max_abs_diff(&vectors(&answer.json())[0], e) < 1e-5);
    }
    let metrics =
        String::from_utf8(call(&s.router, Method::GET, "/metrics", None).await.body).unwrap();
    let batches: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("fathom_embed_batch_inputs_count "))
        .expect("batch histogram in /metrics")
        .trim()
        .parse()
        .unwrap();
    let inputs: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("fathom_embed_batch_inputs_sum "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The warm-up runs outside the queue; every request went through it.
    assert_eq!(inputs, 24.0);
    assert!(
        batches < 24.0,
        "{batches} model calls for 24 concurrent requests"
    );
}

#[tokio::test]
async fn a_full_queue_answers_429_and_a_slow_request_times_out() {
    let s = server_with(|c, _| c.queue_capacity = 1);
    let long = "a fairly long sentence that keeps the model busy for a while ".repeat(20);
    let body = json!({"inputs": vec![long.clone(); 64]});
    let answers = futures::future::join_all(
        (0..8).map(|_| call(&s.router, Method::POST, "/embed", Some(body.clone()))),
    )
    .await;
    let overloaded: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.status == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert!(
        !overloaded.is_empty(),
        "no 429 with a queue of 1 and 8 requests"
    );
    for a in &overloaded {
        a.error(StatusCode::TOO_MANY_REQUESTS, "overloaded");
        assert_eq!(a.headers[header::RETRY_AFTER], "1");
    }
    assert!(answers.iter().any(|a| a.status == StatusCode::OK));
    assert!(answers
        .iter()
        .all(|a| matches!(a.status, StatusCode::OK | StatusCode::TOO_MANY_REQUESTS)));

    let s = server_with(|c, _| c.request_timeout = Duration::from_millis(1));
    call(&s.router, Method::POST, "/embed", Some(body))
        .await
        .error(StatusCode::SERVICE_UNAVAILABLE, "timeout");
}

#[tokio::test]
async fn documents_search_delete_and_collections() {
    let s = server();
    let r = &s.router;
    let docs = json!({"documents": [
        {"id": "cats", "text": "Cats are small domesticated felines that purr and chase mice.", "metadata": {"lang": "en", "year": 2024}},
        {"id": "rust", "text": "Rust is a programming language focused on memory safety without garbage collection.", "metadata": {"lang": "en", "year": 2015}},
        {"id": "notes/pasta", "text": "Boil the pasta in salted water for nine minutes, then drain.", "metadata": {"lang": "it"}},
    ]});
    let up = call(r, Method::POST, "/documents", Some(docs.clone())).await;
    assert_eq!(up.status, StatusCode::OK, "{}", up.json());
    let up = up.json();
    assert_eq!(up["added"], 3);
    assert_eq!(up["chunks"], 3);
    let again = call(r, Method::POST, "/documents", Some(docs)).await.json();
    assert_eq!(again["unchanged"], 3);
    assert_eq!(again["added"], 0);

    for mode in ["vector", "text", "hybrid"] {
        let hits = call(
            r,
            Method::POST,
            "/search",
            Some(json!({"query": "memory safe programming language", "k": 2, "mode": mode})),
        )
        .await;
        assert_eq!(hits.status, StatusCode::OK, "{mode}: {}", hits.json());
        let hits = hits.json();
        assert_eq!(hits["hits"][0]["source"], "rust", "{mode}: {hits}");
        assert!(hits["hits"].as_array().unwrap().len() <= 2);
        assert_eq!(hits["hits"][0]["metadata"]["year"], 2015);
        assert_eq!(hits["hits"][0]["byte_start"], 0);
    }
    let filtered = call(
        r,
        Method::POST,
        "/search",
        Some(json!({"query": "programming language", "k": 5, "filter": "source:notes/"})),
    )
    .await
    .json();
    assert_eq!(filtered["hits"].as_array().unwrap().len(), 1);
    assert_eq!(filtered["hits"][0]["source"], "notes/pasta");
    let by_meta = call(
        r,
        Method::POST,
        "/search",
        Some(json!({"query": "animals", "k": 5, "filter": ["meta.lang=en", "meta.year=2024"]})),
    )
    .await
    .json();
    let sources: Vec<&str> = by_meta["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["source"].as_str().unwrap())
        .collect();
    assert_eq!(sources, vec!["cats"]);

    // Requests refused as invalid, each with an error naming its fault.
    for (path, body) in [
        ("/search", json!({"query": "x", "mode": "fuzzy"})),
        ("/search", json!({"query": "x", "k": 0})),
        ("/search", json!({"query": "x", "filter": "author:me"})),
        ("/search", json!({"query": "x", "collection": "../etc"})),
        (
            "/documents",
            json!({"documents": [{"id": "e", "text": "  "}]}),
        ),
        (
            "/documents",
            json!({"documents": [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]}),
        ),
    ] {
        call(r, Method::POST, path, Some(body))
            .await
            .error(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    }
    let missing = json!({"query": "x", "collection": "missing"});
    call(r, Method::POST, "/search", Some(missing))
        .await
        .error(StatusCode::NOT_FOUND, "not_found");

    let collections = call(r, Method::GET, "/collections", None).await.json();
    assert_eq!(collections[0]["name"], "default");
    assert_eq!(collections[0]["chunks"], 3);
    assert_eq!(collections[0]["dimension"], 384);
    let sources = call(r, Method::GET, "/collections/default/sources", None)
        .await
        .json();
    assert_eq!(sources.as_array().unwrap().len(), 3);

    let deleted = call(r, Method::DELETE, "/documents/notes/pasta", None).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.json());
    assert_eq!(deleted.json()["deleted_chunks"], 1);
    call(r, Method::DELETE, "/documents/notes/pasta", None)
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
    call(r, Method::GET, "/collections/missing/sources", None)
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
    let sources = call(r, Method::GET, "/collections/default/sources", None)
        .await
        .json();
    assert_eq!(sources.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_collection_of_another_model_is_a_409() {
    let s = server();
    let other = fathom_store::ModelSpec {
        model: "other/model".into(),
        dimension: 8,
        normalized: true,
    };
    let c = s.state.store.collection("theirs", &other).await.unwrap();
    c.replace_sources(&[fathom_store::SourceChunks {
        source_id: "a".into(),
        source_hash: "h".into(),
        metadata: None,
        chunks: vec![fathom_store::ChunkRecord {
            chunk_index: 0,
            byte_start: 0,
            byte_end: 1,
            char_start: 0,
            char_end: 1,
            text: "a".into(),
            location: None,
            vector: vec![0.5; 8],
        }],
    }])
    .await
    .unwrap();
    let msg = call(
        &s.router,
        Method::POST,
        "/documents",
        Some(json!({"collection": "theirs", "documents": [{"id": "x", "text": "hello"}]})),
    )
    .await
    .error(StatusCode::CONFLICT, "conflict");
    assert!(msg.contains("other/model"), "{msg}");
}

#[tokio::test]
async fn ingest_jobs_run_inside_the_roots_only() {
    let s = server_with(|c, dir| {
        let root = dir.join("root");
        std::fs::create_dir_all(root.join("docs/sub")).unwrap();
        std::fs::write(
            root.join("docs/a.md"),
            "# Tea\n\nGreen tea is steeped at 80 degrees.",
        )
        .unwrap();
        std::fs::write(root.join("docs/sub/b.txt"), "Coffee beans are roasted.").unwrap();
        std::fs::create_dir_all(dir.join("outside")).unwrap();
        c.ingest_roots = vec![fathom_server::IngestRoot {
            name: "kb".into(),
            path: root,
        }];
    });
    let r = &s.router;
    let status = run_job(r, json!({"path": "docs", "collection": "kb"})).await;
    assert_eq!(status["state"], "done", "{status}");
    assert_eq!(status["summary"]["added"], 2, "{status}");
    assert_eq!(status["files_read"], 2, "{status}");
    let hits = call(
        r,
        Method::POST,
        "/search",
        Some(json!({"query": "how hot should the water be for tea", "collection": "kb", "k": 1})),
    )
    .await
    .json();
    assert_eq!(hits["hits"][0]["source"], "kb/docs/a.md", "{hits}");

    for bad in ["../outside", "docs/../../outside", "/etc", "missing"] {
        call(r, Method::POST, "/ingest", Some(json!({"path": bad})))
            .await
            .error(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    }
    call(r, Method::GET, "/jobs/job-999", None)
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
    let none = server();
    let msg = call(
        &none.router,
        Method::POST,
        "/ingest",
        Some(json!({"path": "."})),
    )
    .await
    .error(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert!(msg.contains("--ingest-root"), "{msg}");
}

/// Starts an ingest job and waits for it to end; its last status.
async fn run_job(r: &Router, request: Value) -> Value {
    let started = call(r, Method::POST, "/ingest", Some(request)).await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.json());
    let id = started.json()["id"].as_str().unwrap().to_string();
    for _ in 0..1200 {
        let status = call(r, Method::GET, &format!("/jobs/{id}"), None)
            .await
            .json();
        if status["state"] != "running" && status["state"] != "queued" {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {id} still running after a minute");
}

/// Links out of the root (a file and a folder), a hidden `.env` asked for by glob, and a second
/// root ingested into the same collection: nothing outside is read, nothing hidden is taken,
/// and neither root deletes the other's files.
#[cfg(unix)]
#[tokio::test]
async fn ingest_jobs_never_leave_their_root_and_roots_never_share_ids() {
    use fathom_testkit::write;
    let s = server_with(|c, dir| {
        let (a, b) = (dir.join("a"), dir.join("b"));
        write(&a, "docs/ok.txt", "Lighthouses guide ships at night.");
        write(&a, "docs/.env", "API_KEY=hunter2 and the vault code");
        write(
            &dir.join("outside"),
            "secret.txt",
            "The vault code is 4417.",
        );
        std::os::unix::fs::symlink(dir.join("outside/secret.txt"), a.join("docs/passwd.txt"))
            .unwrap();
        std::os::unix::fs::symlink("../../outside", a.join("docs/mnt")).unwrap();
        write(&b, "other.txt", "Bees make honey in hives.");
        c.ingest_roots = vec![
            fathom_server::IngestRoot {
                name: "a".into(),
                path: a,
            },
            fathom_server::IngestRoot {
                name: "b".into(),
                path: b,
            },
        ];
    });
    let r = &s.router;
    let first = run_job(
        r,
        json!({"path": "docs", "collection": "kb", "include": ["**/.env", "**/*.txt", "**"]}),
    )
    .await;
    assert_eq!(first["state"], "done", "{first}");
    assert_eq!(first["summary"]["added"], 1, "{first}");
    let errors = first["summary"]["errors"].to_string();
    assert!(
        errors.contains("a/docs/passwd.txt") && errors.contains("a/docs/mnt"),
        "{errors}"
    );
    let b = s.dir.path().join("b");
    let second = run_job(r, json!({"path": b.to_str().unwrap(), "collection": "kb"})).await;
    assert_eq!(second["summary"]["added"], 1, "{second}");
    assert_eq!(second["summary"]["deleted"], 0, "{second}");
    let sources = call(r, Method::GET, "/collections/kb/sources", None)
        .await
        .json();
    let ids: Vec<&str> = sources["sources"]
        .as_array()
        .unwrap_or_else(|| sources.as_array().unwrap())
        .iter()
        .map(|s| s["source"].as_str().or(s["source_id"].as_str()).unwrap())
        .collect();
    assert_eq!(ids, ["a/docs/ok.txt", "b/other.txt"], "{sources}");
    let hits = call(
        r,
        Method::POST,
        "/search",
        Some(json!({"query": "what is the vault code", "collection": "kb", "k": 10})),
    )
    .await
    .json();
    assert!(
        !hits.to_string().contains("4417") && !hits.to_string().contains("hunter2"),
        "{hits}"
    );
}

#[tokio::test]
async fn info_metrics_and_openapi() {
    let s = server();
    let info = call(&s.router, Method::GET, "/info", None).await.json();
    assert_eq!(info["model"], "all-MiniLM-L6-v2");
    assert_eq!(info["architecture"], "bert");
    assert_eq!(info["dimension"], 384);
    assert_eq!(info["max_seq_length"], 256);
    assert_eq!(info["normalize"], true);
    assert_eq!(info["device"], "cpu");
    assert_eq!(info["limits"]["max_inputs"], 512);
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));

    call(
        &s.router,
        Method::POST,
        "/embed",
        Some(json!({"inputs": "x"})),
    )
    .await;
    let metrics = call(&s.router, Method::GET, "/metrics", None).await;
    assert!(metrics.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let metrics = String::from_utf8(metrics.body).unwrap();
    for needle in [
        r#"fathom_http_requests_total{route="/embed",method="POST",status="200"} 1"#,
        "fathom_http_request_duration_seconds_bucket",
        "fathom_embed_queue_depth 0",
        "fathom_embed_batch_inputs_count 1",
        "fathom_embed_tokens_total 3",
        "fathom_embed_tokens_per_second",
    ] {
        assert!(metrics.contains(needle), "{needle} missing from\n{metrics}");
    }

    let doc = call(&s.router, Method::GET, "/openapi.json", None)
        .await
        .json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/embed",
        "/v1/embeddings",
        "/search",
        "/documents",
        "/documents/{id}",
        "/collections",
        "/collections/{name}/sources",
        "/ingest",
        "/jobs/{id}",
        "/health",
        "/info",
        "/metrics",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
    assert!(doc["components"]["schemas"].get("EmbedRequest").is_some());
}

/// The error body of every status the API answers with, as clients see it: one snapshot, so a
/// change to any message or `type` is a reviewed change.
#[tokio::test]
async fn error_bodies_of_every_status_are_snapshotted() {
    let s = server_with(|c, _| {
        c.api_key = Some("k".into());
        c.max_body_bytes = 64 * 1024;
    });
    let auth = [("authorization", "Bearer k")];
    let r = &s.router;
    let mut bodies = serde_json::Map::new();
    let mut record = |name: &str, a: Answer| {
        bodies.insert(
            format!("{} {name}", a.status.as_u16()),
            serde_json::from_slice(&a.body).unwrap(),
        );
    };
    let post = |uri: &'static str, body: Vec<u8>| call_raw(r, Method::POST, uri, Some(body), &auth);
    record(
        "malformed JSON",
        post("/search", b"{\"query\": ".to_vec()).await,
    );
    record(
        "unknown field",
        post("/search", br#"{"query": "x", "top_k": 3}"#.to_vec()).await,
    );
    record(
        "missing key",
        call_raw(r, Method::GET, "/collections", None, &[]).await,
    );
    record(
        "no such route",
        call_raw(r, Method::GET, "/nope", None, &auth).await,
    );
    record(
        "no such collection",
        post(
            "/search",
            br#"{"query": "x", "collection": "missing"}"#.to_vec(),
        )
        .await,
    );
    record(
        "wrong method",
        call_raw(r, Method::DELETE, "/search", None, &auth).await,
    );
    record(
        "body too large",
        post("/embed", vec![b' '; 65 * 1024]).await,
    );
    record(
        "bad k",
        post("/search", br#"{"query": "x", "k": 0}"#.to_vec()).await,
    );
    record(
        "bad filter",
        post(
            "/search",
            br#"{"query": "x", "filter": "colour=red"}"#.to_vec(),
        )
        .await,
    );
    let other = fathom_store::ModelSpec {
        model: "other/model".into(),
        dimension: 8,
        normalized: true,
    };
    let theirs = s.state.store.collection("theirs", &other).await.unwrap();
    theirs
        .replace_sources(&[fathom_store::SourceChunks {
            source_id: "a".into(),
            source_hash: "h".into(),
            metadata: None,
            chunks: vec![fathom_store::ChunkRecord {
                chunk_index: 0,
                byte_start: 0,
                byte_end: 1,
                char_start: 0,
                char_end: 1,
                text: "a".into(),
                location: None,
                vector: vec![0.5; 8],
            }],
        }])
        .await
        .unwrap();
    record(
        "another model's collection",
        post(
            "/documents",
            br#"{"collection": "theirs", "documents": [{"id": "x", "text": "hello"}]}"#.to_vec(),
        )
        .await,
    );
    let loading = app(AppState::new(ServerConfig::default()));
    record(
        "model loading",
        call(
            &loading,
            Method::POST,
            "/embed",
            Some(json!({"inputs": "x"})),
        )
        .await,
    );
    let store = s.dir.path().join("store").display().to_string();
    let model = fathom_testkit::minilm().display().to_string();
    let text = serde_json::to_string_pretty(&bodies)
        .unwrap()
        .replace(&store, "[store]")
        .replace(&model, "[model]");
    insta::assert_snapshot!(text);
}

/// The two lanes in front of the model: while a large upload (bulk work) is being embedded,
/// `/embed` and `/search` requests are answered as they come, not after it; and a client that
/// never stops sending `/embed` requests does not starve the upload.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn interactive_requests_pass_bulk_work_and_bulk_work_still_finishes() {
    let s = server();
    let prose = "The model thread embeds every chunk of every document in slices, and answers \
                 interactive requests between them. "
        .repeat(12);
    let documents: Vec<Value> = (0..40)
        .map(|i| json!({"id": format!("doc-{i}"), "text": format!("document {i}. {prose}")}))
        .collect();
    let router = s.router.clone();
    let upload = tokio::spawn(async move {
        let answer = call(
            &router,
            Method::POST,
            "/documents",
            Some(json!({"collection": "bulk", "documents": documents})),
        )
        .await;
        (answer.status, answer.json())
    });
    // Closed-loop interactive traffic for as long as the upload runs.
    let mut answered_during_upload = 0;
    while !upload.is_finished() {
        let embed = call(
            &s.router,
            Method::POST,
            "/embed",
            Some(json!({"inputs": "a short query"})),
        )
        .await;
        assert_eq!(embed.status, StatusCode::OK);
        let search = call(
            &s.router,
            Method::POST,
            "/search",
            Some(json!({"query": "model thread", "collection": "default", "mode": "text"})),
        )
        .await;
        assert!(
            [StatusCode::OK, StatusCode::NOT_FOUND].contains(&search.status),
            "{}",
            String::from_utf8_lossy(&search.body)
        );
        answered_during_upload += 1;
    }
    let (status, body) = tokio::time::timeout(Duration::from_secs(600), upload)
        .await
        .expect("the upload finishes under constant interactive load")
        .unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["added"], 40, "{body}");
    // Behind a first-come queue they would wait for the whole upload: at most one round trip.
    assert!(
        answered_during_upload >= 5,
        "{answered_during_upload} interactive round trips answered while the upload ran"
    );
}
