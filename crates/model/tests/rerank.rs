//! Cross-encoders and SPLADE models against sentence-transformers' own output on the tiny
//! random-weight fixtures (tests/fixtures/rerank, tests/fixtures/sparse; written by
//! scripts/make_rerank_fixtures.py with `CrossEncoder.predict` and `SparseEncoder.encode`).

use std::path::PathBuf;

use fathom_model::{
    Embedder, LoadOptions, ModelError, ModelKind, Precision, RerankOptions, Reranker, SparseEncoder,
};

fn repo_fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

struct PairReference {
    pairs: Vec<(String, String)>,
    scores: Vec<Vec<f32>>,
    logits: Vec<Vec<f32>>,
    activation: String,
}

fn as_row(v: &serde_json::Value) -> Vec<f32> {
    match v {
        serde_json::Value::Array(a) => a.iter().map(|x| x.as_f64().unwrap() as f32).collect(),
        x => vec![x.as_f64().unwrap() as f32],
    }
}

fn read_pairs(name: &str) -> PairReference {
    let path = repo_fixtures()
        .join("rerank")
        .join(name)
        .join("reference.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    let mut r = PairReference {
        pairs: Vec::new(),
        scores: Vec::new(),
        logits: Vec::new(),
        activation: header["activation"].as_str().unwrap().to_string(),
    };
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        r.pairs.push((
            v["query"].as_str().unwrap().to_string(),
            v["document"].as_str().unwrap().to_string(),
        ));
        r.scores.push(as_row(&v["score"]));
        r.logits.push(as_row(&v["logits"]));
    }
    assert!(r.pairs.len() > 50, "{} has too few pairs", path.display());
    r
}

fn max_diff(got: &[Vec<f32>], want: &[Vec<f32>]) -> f32 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .flat_map(|(g, w)| {
            assert_eq!(g.len(), w.len());
            g.iter().zip(w).map(|(a, b)| (a - b).abs())
        })
        .fold(0.0, f32::max)
}

const RERANKERS: &[&str] = &[
    "bert",
    "bert-generic-tokenizer",
    "xlm-roberta",
    "modernbert",
    "distilbert",
    "bert-3labels",
    // Qwen3-Reranker's kind: a causal LM scored by "yes" against "no" after its chat template.
    "qwen3",
    // A Qwen3 with a classification head on its last token.
    "qwen3-seq-cls",
];

fn load(name: &str, precision: Precision, max_batch_tokens: usize) -> Reranker {
    let dir = repo_fixtures().join("rerank").join(name);
    Reranker::load(
        dir.to_str().unwrap(),
        &LoadOptions {
            precision,
            max_batch_tokens,
            ..LoadOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_cross_encoder_scores_as_sentence_transformers_does() {
    for name in RERANKERS {
        let want = read_pairs(name);
        let model = load(name, Precision::F32, 8192);
        assert_eq!(
            format!("{:?}", model.activation()),
            want.activation,
            "{name}"
        );
        let scores = model.score(&want.pairs, &RerankOptions::default()).unwrap();
        let d = max_diff(&scores, &want.scores);
        assert!(
            d <= 1e-4,
            "{name}: scores differ from sentence-transformers by {d}"
        );
        let raw = RerankOptions {
            raw_scores: true,
            ..RerankOptions::default()
        };
        let logits = model.score(&want.pairs, &raw).unwrap();
        let d = max_diff(&logits, &want.logits);
        assert!(
            d <= 1e-4,
            "{name}: logits differ from sentence-transformers by {d}"
        );
        // The random weights still give scores that differ pair to pair, so the comparison above
        // checks a ranking, not a constant.
        let spread = logits.iter().map(|r| r[0]).fold(f32::MIN, f32::max)
            - logits.iter().map(|r| r[0]).fold(f32::MAX, f32::min);
        assert!(spread > 0.05, "{name}: logits barely vary ({spread})");
    }
}

fn copy_files(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

#[test]
fn a_bare_qwen3_reranker_checkpoint_scores_with_the_model_cards_prompt() {
    // Qwen3-Reranker as first uploaded: config, weights and tokenizer, no sentence-transformers
    // files, and Qwen3's conversational chat template (no query or document role).
    // sentence-transformers' CrossEncoder takes such a causal LM as "yes" against "no"; the
    // prompt is the model card's, which the fixture's template renders too, so the scores must
    // equal the reference.
    let want = read_pairs("qwen3");
    let bare = tempfile::tempdir().unwrap();
    let fixture = repo_fixtures().join("rerank/qwen3");
    for name in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(fixture.join(name), bare.path().join(name)).unwrap();
    }
    let mut tokenizer_config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture.join("tokenizer_config.json")).unwrap(),
    )
    .unwrap();
    tokenizer_config["chat_template"] = serde_json::json!(
        "{% for m in messages %}{% if m.role in ['system', 'user', 'assistant'] %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endif %}{% endfor %}"
    );
    std::fs::write(
        bare.path().join("tokenizer_config.json"),
        tokenizer_config.to_string(),
    )
    .unwrap();
    let model = Reranker::load(bare.path().to_str().unwrap(), &LoadOptions::default()).unwrap();
    assert_eq!(model.num_labels(), 1);
    let scores = model.score(&want.pairs, &RerankOptions::default()).unwrap();
    let d = max_diff(&scores, &want.scores);
    assert!(d <= 1e-4, "bare Qwen3 reranker differs by {d}");

    // Without truncation, a pair past the max length is refused, not cut.
    let strict = RerankOptions {
        truncate: false,
        ..RerankOptions::default()
    };
    let long = "yes ".repeat(400);
    let err = model.score(&[("q", long.as_str())], &strict).unwrap_err();
    assert!(
        matches!(err, ModelError::InputTooLong { index: 0, .. }),
        "{err}"
    );
}

#[test]
fn batching_and_rerank_give_the_same_scores_as_one_pair_at_a_time() {
    let want = read_pairs("bert");
    // A batch budget of 40 tokens: most passes hold one or two pairs.
    let small = load("bert", Precision::F32, 40);
    let one_by_one: Vec<Vec<f32>> = want
        .pairs
        .iter()
        .map(|p| {
            small
                .score(std::slice::from_ref(p), &RerankOptions::default())
                .unwrap()[0]
                .clone()
        })
        .collect();
    let d = max_diff(&one_by_one, &want.scores);
    assert!(d <= 1e-4, "one pair per call differs by {d}");
    let query = &want.pairs[0].0;
    let docs: Vec<&str> = want
        .pairs
        .iter()
        .filter(|(q, _)| q == query)
        .map(|(_, d)| d.as_str())
        .collect();
    let ranked = small
        .rerank(query, &docs, &RerankOptions::default())
        .unwrap();
    let expected: Vec<f32> = want
        .pairs
        .iter()
        .zip(&want.scores)
        .filter(|((q, _), _)| q == query)
        .map(|(_, s)| s[0])
        .collect();
    assert!(max_diff(&[ranked], &[expected]) <= 1e-4);
}

#[test]
fn int8_keeps_the_ranking_close() {
    for name in ["bert", "xlm-roberta", "qwen3"] {
        let want = read_pairs(name);
        let model = load(name, Precision::Int8, 8192);
        let scores = model.score(&want.pairs, &RerankOptions::default()).unwrap();
        let d = max_diff(&scores, &want.scores);
        assert!(
            d <= 0.03,
            "{name}: int8 scores differ from f32 sentence-transformers by {d}"
        );
    }
}

#[test]
fn too_long_pairs_are_cut_or_refused_and_kinds_are_checked() {
    let model = load("bert", Precision::F32, 8192);
    let long = "word ".repeat(500);
    let strict = RerankOptions {
        truncate: false,
        ..RerankOptions::default()
    };
    let err = model
        .score(&[("query", long.as_str())], &strict)
        .unwrap_err();
    assert!(
        matches!(err, ModelError::InputTooLong { index: 0, .. }),
        "{err}"
    );
    assert_eq!(
        model
            .score(&[("query", long.as_str())], &RerankOptions::default())
            .unwrap()
            .len(),
        1
    );

    let reranker_dir = repo_fixtures().join("rerank/bert");
    let err = Embedder::load(reranker_dir.to_str().unwrap(), &LoadOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            ModelError::WrongKind {
                kind: ModelKind::Reranker,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("reranker"), "{err}");
    let embedder_dir = fathom_testkit::fixtures().join("tiny/bert");
    let err = Reranker::load(embedder_dir.to_str().unwrap(), &LoadOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            ModelError::WrongKind {
                kind: ModelKind::Embedder,
                ..
            }
        ),
        "{err}"
    );
    // A causal LM whose tokenizer has no "yes" and "no" cannot be scored as a reranker.
    let qwen3 = tempfile::tempdir().unwrap();
    let tiny = fathom_testkit::fixtures().join("tiny/qwen3");
    copy_files(&tiny, qwen3.path());
    let config = std::fs::read_to_string(tiny.join("config.json"))
        .unwrap()
        .replace("\"Qwen3Model\"", "\"Qwen3ForCausalLM\"");
    assert!(config.contains("Qwen3ForCausalLM"));
    std::fs::write(qwen3.path().join("config.json"), config).unwrap();
    let err = Reranker::load(qwen3.path().to_str().unwrap(), &LoadOptions::default()).unwrap_err();
    assert!(err.to_string().contains("`yes` and `no`"), "{err}");
    let err =
        SparseEncoder::load(reranker_dir.to_str().unwrap(), &LoadOptions::default()).unwrap_err();
    assert!(matches!(err, ModelError::WrongKind { .. }), "{err}");
}

#[test]
fn splade_matches_sentence_transformers_sparse_encoder() {
    let dir = repo_fixtures().join("sparse/bert");
    let path = dir.join("reference.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines = text.lines();
    let header: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    let rows: Vec<serde_json::Value> = lines.map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(rows.len() >= 30);
    let texts: Vec<&str> = rows.iter().map(|r| r["text"].as_str().unwrap()).collect();
    for precision in [Precision::F32, Precision::Int8] {
        let model = SparseEncoder::load(
            dir.to_str().unwrap(),
            &LoadOptions {
                precision,
                ..LoadOptions::default()
            },
        )
        .unwrap();
        assert_eq!(
            model.dimension() as u64,
            header["vocab_size"].as_u64().unwrap()
        );
        let got = model.encode(&texts, true).unwrap();
        for (g, want) in got.iter().zip(&rows) {
            let mut dense_want = vec![0f32; model.dimension()];
            for (i, v) in want["indices"]
                .as_array()
                .unwrap()
                .iter()
                .zip(want["values"].as_array().unwrap())
            {
                dense_want[i.as_u64().unwrap() as usize] = v.as_f64().unwrap() as f32;
            }
            let mut dense_got = vec![0f32; model.dimension()];
            for (&i, &v) in g.indices.iter().zip(&g.values) {
                dense_got[i as usize] = v;
            }
            if precision == Precision::F32 {
                let d = max_diff(&[dense_got], &[dense_want]);
                assert!(
                    d <= 1e-4,
                    "{:?}: differs from SparseEncoder by {d}",
                    want["text"]
                );
            } else {
                // int8 (weights per channel, activations per token): what retrieval sees is the
                // dot product, so the vector's direction is what must hold.
                let dot: f64 = dense_got
                    .iter()
                    .zip(&dense_want)
                    .map(|(a, b)| (*a * *b) as f64)
                    .sum();
                let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
                let cos = dot / (norm(&dense_got) * norm(&dense_want)).max(1e-30);
                assert!(
                    cos >= 0.99,
                    "int8: {:?}: cosine {cos} to SparseEncoder",
                    want["text"]
                );
            }
            if precision == Precision::F32 {
                let want_indices: Vec<u32> = want["indices"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i.as_u64().unwrap() as u32)
                    .collect();
                assert_eq!(g.indices, want_indices, "{:?}", want["text"]);
            }
        }
    }
}
