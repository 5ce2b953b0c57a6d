//! Static-embedding models against the libraries that define them, on the tiny random-weight
//! fixtures in tests/fixtures/static (scripts/make_static_fixtures.py): a Model2Vec model against
//! `model2vec.StaticModel.encode`, a sentence-transformers `StaticEmbedding` model against
//! `SentenceTransformer.encode`.

use std::path::PathBuf;

use fathom_model::{EmbedOptions, Embedder, LoadOptions};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/static")
        .join(name)
}

fn reference(path: PathBuf) -> Vec<(String, Vec<f32>)> {
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .skip(1)
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            (
                v["text"].as_str().unwrap().to_string(),
                v["embedding"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap() as f32)
                    .collect(),
            )
        })
        .collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn check(model: &str, reference_file: &str) -> Embedder {
    let dir = fixture(model);
    let want = reference(dir.join(reference_file));
    assert!(want.len() > 20);
    let embedder = Embedder::load(dir.to_str().unwrap(), &LoadOptions::default())
        .unwrap_or_else(|e| panic!("{model}: {e}"));
    assert_eq!(embedder.layout().model_type, "static");
    let texts: Vec<&str> = want.iter().map(|(t, _)| t.as_str()).collect();
    let got = embedder.embed(&texts, &EmbedOptions::default()).unwrap();
    for ((text, want), got) in want.iter().zip(&got) {
        assert_eq!(got.len(), embedder.dimension());
        let d = max_diff(got, want);
        assert!(d <= 1e-5, "{model}: {text:?} differs by {d}");
    }
    // One at a time gives the same vectors as the batch.
    let one = embedder
        .embed(&texts[..1], &EmbedOptions::default())
        .unwrap();
    assert!(max_diff(&one[0], &got[0]) <= 1e-6);
    embedder
}

#[test]
fn model2vec_equals_model2vec_encode() {
    let embedder = check("model2vec", "reference.jsonl");
    assert!(embedder.layout().normalize);
    assert_eq!(embedder.dimension(), 24);
    // The fixture's texts reach what sets Model2Vec apart from sentence-transformers' reading of
    // the same folder (the cut at max_length tokens, unknown tokens dropped): the two references
    // differ there, so matching the first is not matching both.
    let dir = fixture("model2vec");
    let m2v = reference(dir.join("reference.jsonl"));
    let st = reference(dir.join("reference-st.jsonl"));
    let differing = m2v
        .iter()
        .zip(&st)
        .filter(|(a, b)| max_diff(&a.1, &b.1) > 1e-3)
        .count();
    assert!(differing >= 2, "only {differing} texts tell the two apart");
}

#[test]
fn sentence_transformers_static_embedding_equals_its_encode() {
    let embedder = check("st-static", "reference.jsonl");
    assert!(!embedder.layout().normalize);
    assert_eq!(embedder.dimension(), 32);
    // Token counts have no special tokens: a static model adds none.
    assert_eq!(embedder.count_tokens("").unwrap(), 0);
}

#[test]
fn tokens_from_chunking_give_the_same_vectors() {
    // Ingest hands a static model the token ids chunking computed; the vectors must be the ones
    // embedding the texts gives, including texts Model2Vec cuts first (the long one).
    for name in ["model2vec", "st-static"] {
        let dir = fixture(name);
        let want = reference(dir.join("reference.jsonl"));
        let embedder = Embedder::load(dir.to_str().unwrap(), &LoadOptions::default()).unwrap();
        let texts: Vec<&str> = want.iter().map(|(t, _)| t.as_str()).collect();
        let ids: Vec<Vec<u32>> = texts
            .iter()
            .map(|t| {
                embedder
                    .tokenizer()
                    .encode(*t, false)
                    .unwrap()
                    .get_ids()
                    .to_vec()
            })
            .collect();
        let given: Vec<Option<&[u32]>> = ids.iter().map(|i| Some(i.as_slice())).collect();
        let (got, _) = embedder
            .embed_token_ids(&texts, &given)
            .expect("a static model takes token ids")
            .unwrap();
        for ((text, want), got) in want.iter().zip(&got) {
            let d = max_diff(got, want);
            assert!(d <= 1e-5, "{name}: {text:?} differs by {d}");
        }
        // A text without its tokens means the caller must embed the texts.
        let mut partial = given.clone();
        partial[0] = None;
        assert!(embedder.embed_token_ids(&texts, &partial).is_none());
    }
}
