//! End-to-end tests of `fathom serve`: the real binary on a real socket, the real model, a real
//! lance store in a temp folder, and the official OpenAI Python client.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;
use common::{client, get, post, repo_root, test_python, Server, KEY};

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_every_route_over_a_socket() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    write(
        &root.join("kb/tea.md"),
        "# Tea\n\nGreen tea is steeped at 80 degrees for two minutes.",
    );
    write(
        &root.join("kb/coffee.txt"),
        "Espresso is brewed by forcing hot water through ground coffee.",
    );
    let store = dir.path().join("store");
    let server = Server::start(
        &[
            "--store",
            store.to_str().unwrap(),
            "--ingest-root",
            root.to_str().unwrap(),
        ],
        &[("FATHOM_API_KEY", KEY)],
    )
    .await;

    // Auth: everything but /health needs the key (set through FATHOM_API_KEY).
    let r = client()
        .post(server.url("/embed"))
        .json(&json!({"inputs": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["type"], "unauthorized");

    // TEI route.
    let texts = ["The quick brown fox", "jumps over the lazy dog"];
    let (status, tei) = post(&server, "/embed", json!({"inputs": texts})).await;
    assert_eq!(status, 200, "{tei}");
    let tei: Vec<Vec<f32>> = tei.as_array().unwrap().iter().map(floats).collect();
    assert_eq!(tei.len(), 2);
    assert_eq!(tei[0].len(), 384);

    // OpenAI route through the official Python client (base64 by default, then float).
    let out = Command::new(test_python())
        .arg(repo_root().join("scripts/openai_client_check.py"))
        .arg(server.url("/v1"))
        .arg(KEY)
        .args(texts)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openai client: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let openai: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(openai["model"], "all-MiniLM-L6-v2");
    assert_eq!(openai["indexes"], json!([0, 1]));
    assert_eq!(openai["short_len"], 64);
    assert!(openai["prompt_tokens"].as_u64().unwrap() > 4);
    for (i, t) in tei.iter().enumerate() {
        let c = cosine(&floats(&openai["vectors"][i]), t);
        assert!(c > 0.99999, "openai client vector {i}: cosine {c}");
    }
    assert!(cosine(&floats(&openai["float_vector"]), &tei[0]) > 0.99999);

    // Concurrent clients: 32 at once, each its own text; each answer is its text's vector.
    let expected: Vec<String> = (0..32)
        .map(|i| format!("concurrent client {i} asks about {}", i * 13))
        .collect();
    let answers = futures::future::join_all(expected.iter().map(|t| {
        let s = &server;
        async move { post(s, "/embed", json!({"inputs": t})).await }
    }))
    .await;
    let (_, all) = post(&server, "/embed", json!({"inputs": expected})).await;
    for (i, (status, v)) in answers.iter().enumerate() {
        assert_eq!(*status, 200);
        let c = cosine(&floats(&v[0]), &floats(&all[i]));
        assert!(c > 0.99999, "client {i}: cosine {c}");
    }

    // Documents, search, collections, sources, delete.
    let (status, up) = post(&server, "/documents", json!({"collection": "notes", "documents": [
        {"id": "n1", "text": "The meeting moved to Thursday at noon.", "metadata": {"team": "ops"}},
        {"id": "n2", "text": "Bread needs flour, water, salt and yeast.", "metadata": {"team": "kitchen"}},
    ]}))
    .await;
    assert_eq!(status, 200, "{up}");
    let (status, hits) = post(
        &server,
        "/search",
        json!({"query": "what goes into bread", "collection": "notes", "k": 1, "mode": "hybrid"}),
    )
    .await;
    assert_eq!(status, 200, "{hits}");
    assert_eq!(hits["hits"][0]["source"], "n2");
    let (_, hits) = post(
        &server,
        "/search",
        json!({"query": "schedule", "collection": "notes", "filter": "meta.team=kitchen"}),
    )
    .await;
    assert_eq!(hits["hits"].as_array().unwrap().len(), 1);
    let (_, cols) = get(&server, "/collections").await;
    assert!(cols
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"] == "notes"));
    let (status, sources) = get(&server, "/collections/notes/sources").await;
    assert_eq!(status, 200);
    assert_eq!(sources.as_array().unwrap().len(), 2);
    let r = client()
        .delete(server.url("/documents/n1?collection=notes"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Ingest job inside the root; traversal refused.
    let (status, job) = post(
        &server,
        "/ingest",
        json!({"path": "kb", "collection": "kb"}),
    )
    .await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    let started = Instant::now();
    let job = loop {
        let (_, job) = get(&server, &format!("/jobs/{id}")).await;
        if job["state"] != "running" && job["state"] != "queued" {
            break job;
        }
        assert!(started.elapsed() < Duration::from_secs(60));
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["summary"]["added"], 2);
    let (_, hits) = post(
        &server,
        "/search",
        json!({"query": "tea temperature", "collection": "kb", "k": 1}),
    )
    .await;
    // Source ids start with the ingest root's name (`root`, the folder's own name).
    assert_eq!(hits["hits"][0]["source"], "root/kb/tea.md");
    let (status, _) = post(&server, "/ingest", json!({"path": "../"})).await;
    assert_eq!(status, 422);

    // Info, metrics, OpenAPI.
    let (_, info) = get(&server, "/info").await;
    assert_eq!(info["dimension"], 384);
    let metrics = server.metrics().await;
    assert!(metrics.contains("fathom_embed_batch_inputs_count"));
    let (_, doc) = get(&server, "/openapi.json").await;
    for route in [
        "/v1/embeddings",
        "/rerank",
        "/v1/rerank",
        "/embed_sparse",
        "/v1/models",
    ] {
        assert!(
            doc["paths"].get(route).is_some(),
            "{route} not in the OpenAPI document"
        );
    }

    // Without --reranker or --sparse-model: their routes say how to get one, searches too.
    let (status, e) = post(&server, "/rerank", json!({"query": "q", "texts": ["a"]})).await;
    assert_eq!(status, 404, "{e}");
    assert!(e["error"].as_str().unwrap().contains("--reranker"), "{e}");
    let (status, e) = post(&server, "/embed_sparse", json!({"inputs": "a"})).await;
    assert_eq!(status, 404, "{e}");
    let (status, e) = post(&server, "/search", json!({"query": "tea", "rerank": true})).await;
    assert_eq!(status, 422, "{e}");
    let (_, models) = get(&server, "/v1/models").await;
    assert_eq!(models["data"].as_array().unwrap().len(), 1, "{models}");

    // Error statuses over the socket: 400, 404, 405, 413, 422.
    let r = client()
        .post(server.url("/embed"))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["type"], "validation");
    let (status, _) = get(&server, "/nope").await;
    assert_eq!(status, 404);
    let (status, _) = get(&server, "/embed").await;
    assert_eq!(status, 405);
    // Just over the 2 MiB default: the server refuses once it has read past the limit and then
    // closes the connection; a body much larger than that would still be being written by the
    // client at that moment, which then fails with a broken pipe instead of reading the 413 (a
    // race this test lost now and then). scripts/bench_server.py --only abuse sends 200 MB.
    let (status, body) = post(
        &server,
        "/embed",
        json!({"inputs": "b".repeat(2 * 1024 * 1024 + 1024)}),
    )
    .await;
    assert_eq!(status, 413, "{body}");
    let (status, body) = post(
        &server,
        "/embed",
        json!({"inputs": "word ".repeat(600), "truncate": false}),
    )
    .await;
    assert_eq!(status, 422, "{body}");

    // Graceful shutdown: a request in flight when SIGTERM arrives still gets its answer.
    let long = "a long sentence to keep the model busy for a moment ".repeat(24);
    let inflight = {
        let url = server.url("/embed");
        let body = json!({"inputs": vec![long; 256]});
        tokio::spawn(async move { client().post(url).bearer_auth(KEY).json(&body).send().await })
    };
    // SIGTERM once the model has finished a first batch of it (a fixed sleep is too short on a
    // loaded machine: a request not yet accepted at SIGTERM is rightly refused).
    let batches = || async {
        let text = server.metrics().await;
        text.lines()
            .find_map(|l| l.strip_prefix("fathom_embed_batch_inputs_count "))
            .map_or(0, |n| n.trim().parse::<u64>().unwrap())
    };
    let before = batches().await;
    let waiting = Instant::now();
    while batches().await == before {
        assert!(
            waiting.elapsed() < Duration::from_secs(60),
            "the request never reached the model"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.terminate();
    let answer = inflight
        .await
        .unwrap()
        .expect("the in-flight request was answered");
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer
            .json::<Value>()
            .await
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        256
    );
    let base = server.base.clone();
    let status = server.wait_exit();
    assert!(status.success(), "exit status {status}");
    assert!(
        reqwest::get(format!("{base}/health")).await.is_err(),
        "still serving after shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overload_answers_429_and_slow_requests_503() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        &[
            "--store",
            dir.path().to_str().unwrap(),
            "--queue-capacity",
            "1",
        ],
        &[("FATHOM_REQUEST_TIMEOUT", "0.05"), ("FATHOM_API_KEY", KEY)],
    )
    .await;
    let body = json!({"inputs": vec!["several words to embed in a somewhat long input text ".repeat(20); 128]});
    let answers =
        futures::future::join_all((0..8).map(|_| post(&server, "/embed", body.clone()))).await;
    let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(statuses.contains(&503), "{statuses:?}");
    for (status, body) in &answers {
        let kind = body["type"].as_str().unwrap();
        match status {
            429 => assert_eq!(kind, "overloaded"),
            503 => assert_eq!(kind, "timeout"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
}

/// The tiny random-weight cross-encoder's reference: (query, document, score, logit) per pair,
/// sentence-transformers' `CrossEncoder.predict` (scripts/make_rerank_fixtures.py).
fn rerank_reference() -> Vec<(String, String, f32, f32)> {
    rerank_reference_of("bert")
}

fn rerank_reference_of(fixture: &str) -> Vec<(String, String, f32, f32)> {
    let path = repo_root()
        .join("tests/fixtures/rerank")
        .join(fixture)
        .join("reference.jsonl");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["query"].as_str().unwrap().to_string(),
                v["document"].as_str().unwrap().to_string(),
                v["score"].as_f64().unwrap() as f32,
                v["logits"].as_f64().unwrap() as f32,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rerank_and_sparse_routes_beside_the_embedder() {
    let dir = tempfile::tempdir().unwrap();
    let reranker = repo_root().join("tests/fixtures/rerank/bert");
    let sparse = repo_root().join("tests/fixtures/sparse/bert");
    let server = Server::start(
        &[
            "--store",
            dir.path().join("store").to_str().unwrap(),
            "--reranker",
            reranker.to_str().unwrap(),
            // A second reranker, named, of the causal-LM kind (Qwen3-Reranker's): requests pick
            // it by `model`.
            "--reranker",
            &format!(
                "qwen={}",
                repo_root().join("tests/fixtures/rerank/qwen3").display()
            ),
            "--sparse-model",
            sparse.to_str().unwrap(),
            "--max-inputs",
            "64",
            // A second embedder, named: the OpenAI route picks it by `model`.
            "--model",
            &format!("tiny={}", common::fixtures().join("tiny/bert").display()),
            // A third, a static-embedding (Model2Vec) model.
            "--model",
            &format!(
                "m2v={}",
                repo_root()
                    .join("tests/fixtures/static/model2vec")
                    .display()
            ),
        ],
        &[("FATHOM_API_KEY", KEY)],
    )
    .await;

    // What the server runs: /info and OpenAI's /v1/models name all three, never a path.
    let (status, info) = get(&server, "/info").await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["reranker"]["model"], "bert", "{info}");
    assert_eq!(info["reranker"]["dimension"], 1);
    assert_eq!(info["rerankers"][1]["model"], "qwen", "{info}");
    assert_eq!(info["rerankers"][1]["architecture"], "qwen3", "{info}");
    assert_eq!(info["sparse_model"]["dimension"], 600);
    let (_, models) = get(&server, "/v1/models").await;
    let kinds: Vec<(String, String)> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap().to_string(),
                m["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(kinds.len(), 6, "{models}");
    assert_eq!(
        kinds[0],
        ("all-MiniLM-L6-v2".into(), "embedder".into()),
        "{models}"
    );
    assert!(
        kinds.contains(&("tiny".into(), "embedder".into())),
        "{models}"
    );
    assert_eq!(
        info["embedders"],
        json!(["all-MiniLM-L6-v2", "tiny", "m2v"]),
        "{info}"
    );

    // A collection another served embedder wrote is searched with that embedder; one that no
    // served embedder wrote is a 409 naming its model.
    let docs = dir.path().join("docs");
    write(&docs.join("a.txt"), "Green tea is steeped at 80 degrees.");
    write(&docs.join("b.txt"), "Espresso is brewed under pressure.");
    for (model, collection) in [
        ("tiny/bert", "tiny-docs"),
        ("tiny/xlm-roberta", "other-docs"),
    ] {
        let out = common::fathom_command()
            .arg("ingest")
            .arg(&docs)
            .arg("--store")
            .arg(dir.path().join("store"))
            .args(["--collection", collection, "--model"])
            .arg(common::fixtures().join(model))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (status, found) = post(
        &server,
        "/search",
        json!({"query": "tea", "collection": "tiny-docs", "mode": "vector"}),
    )
    .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["hits"].as_array().unwrap().len(), 2, "{found}");
    let (status, e) = post(
        &server,
        "/search",
        json!({"query": "tea", "collection": "other-docs", "mode": "vector"}),
    )
    .await;
    assert_eq!(status, 409, "{e}");
    assert!(e["error"].as_str().unwrap().contains("xlm-roberta"), "{e}");
    // Writes too go through the embedder that wrote the collection.
    let (status, up) = post(
        &server,
        "/documents",
        json!({"collection": "tiny-docs", "documents": [{"id": "c", "text": "Oolong is half oxidised."}]}),
    )
    .await;
    assert_eq!(status, 200, "{up}");
    let (_, found) = post(
        &server,
        "/search",
        json!({"query": "tea", "collection": "tiny-docs", "mode": "vector"}),
    )
    .await;
    assert_eq!(found["hits"].as_array().unwrap().len(), 3, "{found}");
    let (status, e) = post(
        &server,
        "/documents",
        json!({"collection": "other-docs", "documents": [{"id": "c", "text": "x"}]}),
    )
    .await;
    assert_eq!(status, 409, "{e}");

    // A new collection built with a named embedder; naming another for it later is a 409, and
    // naming one not served a 404.
    let doc = json!([{"id": "n", "text": "Matcha is powdered green tea."}]);
    let (status, up) = post(
        &server,
        "/documents",
        json!({"collection": "tiny-new", "model": "tiny", "documents": doc}),
    )
    .await;
    assert_eq!(status, 200, "{up}");
    let (_, found) = post(
        &server,
        "/search",
        json!({"query": "tea", "collection": "tiny-new", "mode": "vector"}),
    )
    .await;
    assert_eq!(found["hits"].as_array().unwrap().len(), 1, "{found}");
    let (status, e) = post(
        &server,
        "/documents",
        json!({"collection": "tiny-new", "model": "all-MiniLM-L6-v2", "documents": doc}),
    )
    .await;
    assert_eq!(status, 409, "{e}");
    let (status, e) = post(
        &server,
        "/documents",
        json!({"collection": "x", "model": "nope", "documents": doc}),
    )
    .await;
    assert_eq!(status, 404, "{e}");

    // Several embedders: the OpenAI route picks by `model`, the default answers without one,
    // and an unknown name is a 404 naming those served.
    let tiny_reference: Value = serde_json::from_str(
        std::fs::read_to_string(common::fixtures().join("tiny/bert/reference.jsonl"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let (status, tiny) = post(
        &server,
        "/v1/embeddings",
        json!({"model": "tiny", "input": tiny_reference["text"], "encoding_format": "float"}),
    )
    .await;
    assert_eq!(status, 200, "{tiny}");
    assert_eq!(tiny["model"], "tiny");
    let got = floats(&tiny["data"][0]["embedding"]);
    assert_eq!(got.len(), 32);
    assert!(cosine(&got, &floats(&tiny_reference["embedding"])) > 0.9999);
    // The static model by name: Model2Vec's own vectors.
    let m2v_reference: Value = serde_json::from_str(
        std::fs::read_to_string(
            repo_root().join("tests/fixtures/static/model2vec/reference.jsonl"),
        )
        .unwrap()
        .lines()
        .nth(1)
        .unwrap(),
    )
    .unwrap();
    let (status, m2v) = post(
        &server,
        "/v1/embeddings",
        json!({"model": "m2v", "input": m2v_reference["text"], "encoding_format": "float"}),
    )
    .await;
    assert_eq!(status, 200, "{m2v}");
    let got = floats(&m2v["data"][0]["embedding"]);
    let want = floats(&m2v_reference["embedding"]);
    assert_eq!(got.len(), 24);
    assert!(
        got.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-5),
        "{m2v}"
    );
    let (_, default) = post(
        &server,
        "/v1/embeddings",
        json!({"input": "x", "encoding_format": "float"}),
    )
    .await;
    assert_eq!(default["model"], "all-MiniLM-L6-v2");
    assert_eq!(floats(&default["data"][0]["embedding"]).len(), 384);
    let (status, e) = post(
        &server,
        "/v1/embeddings",
        json!({"model": "text-embedding-3-small", "input": "x"}),
    )
    .await;
    assert_eq!(status, 404, "{e}");
    let message = e["error"].as_str().unwrap();
    assert!(
        message.contains("`all-MiniLM-L6-v2`") && message.contains("`tiny`"),
        "{e}"
    );
    assert!(
        kinds.contains(&("bert".into(), "reranker".into())),
        "{models}"
    );
    assert!(kinds.iter().any(|(_, k)| k == "sparse"), "{models}");

    // TEI's /rerank: every text, highest score first, scores equal sentence-transformers'.
    let reference = rerank_reference();
    let query = reference[0].0.clone();
    let pairs: Vec<&(String, String, f32, f32)> =
        reference.iter().filter(|p| p.0 == query).take(8).collect();
    let texts: Vec<&str> = pairs.iter().map(|p| p.1.as_str()).collect();
    let (status, ranks) = post(
        &server,
        "/rerank",
        json!({"query": query, "texts": texts, "return_text": true}),
    )
    .await;
    assert_eq!(status, 200, "{ranks}");
    let ranks = ranks.as_array().unwrap();
    assert_eq!(ranks.len(), texts.len());
    let mut previous = f32::INFINITY;
    for r in ranks {
        let index = r["index"].as_u64().unwrap() as usize;
        let score = r["score"].as_f64().unwrap() as f32;
        assert!(
            (score - pairs[index].2).abs() <= 1e-4,
            "{r} vs {}",
            pairs[index].2
        );
        assert_eq!(r["text"], texts[index]);
        assert!(score <= previous, "not sorted: {ranks:?}");
        previous = score;
    }
    let (_, raw) = post(
        &server,
        "/rerank",
        json!({"query": query, "texts": texts, "raw_scores": true}),
    )
    .await;
    for r in raw.as_array().unwrap() {
        let index = r["index"].as_u64().unwrap() as usize;
        assert!(
            (r["score"].as_f64().unwrap() as f32 - pairs[index].3).abs() <= 1e-4,
            "{r}"
        );
        assert!(r.get("text").is_none(), "{r}");
    }

    // Cohere's /v1/rerank shape, and the model check.
    let (status, cohere) = post(
        &server,
        "/v1/rerank",
        json!({"model": "bert", "query": query, "documents": [texts[0], {"text": texts[1]}, texts[2]], "top_n": 2}),
    )
    .await;
    assert_eq!(status, 200, "{cohere}");
    let results = cohere["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    let best = (0..3)
        .max_by(|&a, &b| pairs[a].2.total_cmp(&pairs[b].2))
        .unwrap();
    assert_eq!(results[0]["index"], best);
    assert!(cohere["usage"]["total_tokens"].as_u64().unwrap() > 3);
    let (status, wrong) = post(
        &server,
        "/v1/rerank",
        json!({"model": "rerank-english-v3.0", "query": "q", "documents": ["a"]}),
    )
    .await;
    assert_eq!(status, 404, "{wrong}");
    let message = wrong["error"].as_str().unwrap();
    assert!(
        message.contains("`bert`") && message.contains("`qwen`"),
        "{wrong}"
    );

    // The second reranker, by name, on both routes and in a search: its scores are
    // sentence-transformers' for the Qwen3 fixture.
    let qwen = rerank_reference_of("qwen3");
    let qwen_query = qwen[0].0.clone();
    let qwen_pairs: Vec<&(String, String, f32, f32)> =
        qwen.iter().filter(|p| p.0 == qwen_query).take(6).collect();
    let qwen_texts: Vec<&str> = qwen_pairs.iter().map(|p| p.1.as_str()).collect();
    let (status, ranks) = post(
        &server,
        "/rerank",
        json!({"query": qwen_query, "texts": qwen_texts, "model": "qwen"}),
    )
    .await;
    assert_eq!(status, 200, "{ranks}");
    for r in ranks.as_array().unwrap() {
        let want = qwen_pairs[r["index"].as_u64().unwrap() as usize].2;
        let got = r["score"].as_f64().unwrap() as f32;
        assert!((got - want).abs() <= 1e-4, "{r}: want {want}");
    }
    let (status, cohere) = post(
        &server,
        "/v1/rerank",
        json!({"model": "qwen", "query": qwen_query, "documents": qwen_texts}),
    )
    .await;
    assert_eq!(status, 200, "{cohere}");
    assert_eq!(cohere["model"], "qwen");
    let best = (0..qwen_pairs.len())
        .max_by(|&a, &b| qwen_pairs[a].2.total_cmp(&qwen_pairs[b].2))
        .unwrap();
    assert_eq!(cohere["results"][0]["index"], best, "{cohere}");
    let (status, e) = post(
        &server,
        "/rerank",
        json!({"query": "q", "texts": ["a"], "model": "nope"}),
    )
    .await;
    assert_eq!(status, 404, "{e}");

    // Refusals: empty texts, an empty query, too many texts, a pair too long with truncate off.
    for (body, what) in [
        (json!({"query": "q", "texts": []}), "empty texts"),
        (json!({"query": "", "texts": ["a"]}), "empty query"),
        (json!({"query": "q", "texts": vec!["a"; 65]}), "65 texts"),
        (
            json!({"query": "q", "texts": ["word ".repeat(400)], "truncate": false}),
            "too long",
        ),
        (json!({"query": "q"}), "no texts"),
    ] {
        let (status, e) = post(&server, "/rerank", body).await;
        assert_eq!(status, 422, "{what}: {e}");
        assert_eq!(e["type"], "validation", "{what}: {e}");
    }
    // Scored in slices, a refused text is still named by its place in the request.
    let (status, e) = post(
        &server,
        "/rerank",
        json!({"query": "q", "texts": ["a", "b", "word ".repeat(400)], "truncate": false}),
    )
    .await;
    assert_eq!(status, 422, "{e}");
    assert!(e["error"].as_str().unwrap().contains("input 2 "), "{e}");
    // Cut by default: a long text still gets a score.
    let (status, _) = post(
        &server,
        "/rerank",
        json!({"query": "q", "texts": ["word ".repeat(400)]}),
    )
    .await;
    assert_eq!(status, 200);

    // TEI's root route tells the two bodies apart.
    let (status, root_rank) = post(&server, "/", json!({"query": query, "texts": texts})).await;
    assert_eq!(status, 200, "{root_rank}");
    assert_eq!(root_rank.as_array().unwrap().len(), texts.len());
    let (_, root_vectors) = post(&server, "/", json!({"inputs": ["a man eating"]})).await;
    let (_, embedded) = post(&server, "/embed", json!({"inputs": ["a man eating"]})).await;
    assert_eq!(root_vectors, embedded);

    // /embed_sparse: equal to SparseEncoder's output.
    let sparse_reference: Vec<Value> =
        std::fs::read_to_string(repo_root().join("tests/fixtures/sparse/bert/reference.jsonl"))
            .unwrap()
            .lines()
            .skip(1)
            .take(3)
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    let inputs: Vec<&str> = sparse_reference
        .iter()
        .map(|r| r["text"].as_str().unwrap())
        .collect();
    let (status, sparse_out) = post(&server, "/embed_sparse", json!({"inputs": inputs})).await;
    assert_eq!(status, 200, "{sparse_out}");
    for (got, want) in sparse_out.as_array().unwrap().iter().zip(&sparse_reference) {
        let got = got.as_array().unwrap();
        let indices = want["indices"].as_array().unwrap();
        let values = want["values"].as_array().unwrap();
        assert_eq!(got.len(), indices.len());
        for ((g, i), v) in got.iter().zip(indices).zip(values) {
            assert_eq!(g["index"], *i);
            assert!((g["value"].as_f64().unwrap() - v.as_f64().unwrap()).abs() <= 1e-4);
        }
    }

    // Two models at once: interleaved /embed and /rerank requests give what each gives alone.
    let mut calls = Vec::new();
    for i in 0..12 {
        let server_url = server.base.clone();
        let query = query.clone();
        let texts: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
        calls.push(tokio::spawn(async move {
            let (path, body) = if i % 2 == 0 {
                ("/rerank", json!({"query": query, "texts": texts}))
            } else {
                ("/embed", json!({"inputs": ["a man eating"]}))
            };
            let r = client()
                .post(format!("{server_url}{path}"))
                .bearer_auth(KEY)
                .json(&body)
                .send()
                .await
                .unwrap();
            (i, r.status().as_u16(), r.json::<Value>().await.unwrap())
        }));
    }
    for call in calls {
        let (i, status, body) = call.await.unwrap();
        assert_eq!(status, 200, "{body}");
        if i % 2 == 1 {
            let got = floats(&body[0]);
            let want = floats(&embedded[0]);
            assert!(cosine(&got, &want) > 0.99999);
        } else {
            for r in body.as_array().unwrap() {
                let index = r["index"].as_u64().unwrap() as usize;
                assert!((r["score"].as_f64().unwrap() as f32 - pairs[index].2).abs() <= 1e-4);
            }
        }
    }

    // Reranked search: the best k of the candidates by the reranker's score.
    let documents: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"id": format!("doc{i}"), "text": t}))
        .collect();
    let (status, up) = post(&server, "/documents", json!({"documents": documents})).await;
    assert_eq!(status, 200, "{up}");
    let (status, found) = post(
        &server,
        "/search",
        json!({"query": query, "k": 2, "rerank": true, "candidates": 20}),
    )
    .await;
    assert_eq!(status, 200, "{found}");
    let hits = found["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 2, "{found}");
    let mut want: Vec<(f32, &str)> = pairs.iter().map(|p| (p.2, p.1.as_str())).collect();
    want.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (hit, (score, text)) in hits.iter().zip(&want) {
        assert!(
            (hit["score"].as_f64().unwrap() as f32 - score).abs() <= 1e-4,
            "{hit}"
        );
        assert_eq!(hit["text"].as_str().unwrap().trim(), text.trim(), "{hit}");
    }
    // Naming the second reranker reranks with it (the fixtures share queries and documents).
    let (status, found) = post(
        &server,
        "/search",
        json!({"query": query, "k": 2, "reranker": "qwen", "candidates": 20}),
    )
    .await;
    assert_eq!(status, 200, "{found}");
    let mut want_qwen: Vec<(f32, &str)> = rerank_reference_of("qwen3")
        .iter()
        .filter(|p| p.0 == query && texts.contains(&p.1.as_str()))
        .map(|p| (p.2, texts[texts.iter().position(|t| *t == p.1).unwrap()]))
        .collect();
    assert_eq!(want_qwen.len(), texts.len());
    want_qwen.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (hit, (score, text)) in found["hits"].as_array().unwrap().iter().zip(&want_qwen) {
        assert!(
            (hit["score"].as_f64().unwrap() as f32 - score).abs() <= 1e-4,
            "{hit}"
        );
        assert_eq!(hit["text"].as_str().unwrap().trim(), text.trim(), "{hit}");
    }
    let (status, e) = post(
        &server,
        "/search",
        json!({"query": query, "candidates": 20}),
    )
    .await;
    assert_eq!(status, 422, "{e}");

    // The clients people use: Cohere's SDK on /v1/rerank, Hugging Face's InferenceClient on /.
    let out = Command::new(test_python())
        .arg(repo_root().join("scripts/rerank_client_check.py"))
        .arg(&server.base)
        .arg(KEY)
        .arg("bert")
        .arg(&query)
        .args(&texts)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let clients: Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = clients["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{clients}");
    let first = results[0]["index"].as_u64().unwrap() as usize;
    assert_eq!(results[0]["text"], texts[first]);
    assert!((results[0]["relevance_score"].as_f64().unwrap() as f32 - want[0].0).abs() <= 1e-4);
    let hf = floats(&clients["feature_extraction"]);
    let tei = floats(&post(&server, "/embed", json!({"inputs": texts[0]})).await.1[0]);
    assert!(cosine(&hf, &tei) > 0.99999, "{clients}");
}
