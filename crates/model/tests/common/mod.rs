//! Shared helpers for the fidelity tests: where the fixtures and the real model are, reading
//! references, and comparing vectors.
#![allow(dead_code)]

use std::path::Path;

use fathom_model::{EmbedOptions, Embedder, LoadOptions};

pub use fathom_testkit::{fixtures, minilm as minilm_dir};

pub struct Reference {
    pub texts: Vec<String>,
    pub embeddings: Vec<Vec<f32>>,
}

pub fn read_reference(path: &Path) -> Reference {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut texts = Vec::new();
    let mut embeddings = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        texts.push(v["text"].as_str().unwrap().to_string());
        embeddings.push(
            v["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect(),
        );
    }
    assert!(!texts.is_empty(), "{} has no references", path.display());
    Reference { texts, embeddings }
}

pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "dimension mismatch");
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb).max(1e-30)
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).abs())
        .fold(0.0, f64::max)
}

/// Asserts every vector is within the fidelity tolerances of its reference: cosine ≥ `min_cos`,
/// and for normalized outputs max abs difference ≤ 1e-4.
pub fn assert_close(
    label: &str,
    texts: &[String],
    got: &[Vec<f32>],
    want: &[Vec<f32>],
    normalized: bool,
    min_cos: f64,
) {
    assert_eq!(got.len(), want.len(), "{label}: count");
    let mut worst_cos = 1.0f64;
    let mut worst_abs = 0.0f64;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let c = cosine(g, w);
        let d = max_abs_diff(g, w);
        worst_cos = worst_cos.min(c);
        worst_abs = worst_abs.max(d);
        assert!(
            c >= min_cos,
            "{label}: text {i} {:?}: cosine {c} < {min_cos}",
            texts[i]
        );
        if normalized {
            assert!(
                d <= 1e-4,
                "{label}: text {i} {:?}: max abs diff {d} > 1e-4",
                texts[i]
            );
        }
    }
    eprintln!(
        "{label}: {} texts, worst cosine {worst_cos:.7}, worst max-abs {worst_abs:.2e}",
        got.len()
    );
}

/// Copies the base model folder into a temp dir and the variant's files over it.
pub fn overlay(base: &Path, variant: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(base, dir.path());
    copy_tree(variant, dir.path());
    dir
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
            let mut perms = std::fs::metadata(&target).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perms.set_readonly(false);
            std::fs::set_permissions(&target, perms).unwrap();
        }
    }
}

pub fn load(dir: &Path) -> Embedder {
    Embedder::load(dir.to_str().unwrap(), &LoadOptions::default())
        .unwrap_or_else(|e| panic!("loading {}: {e}", dir.display()))
}

/// Embeds each text alone and checks the batched result equals it (padding must not leak).
pub fn assert_batched_equals_single(
    label: &str,
    model: &Embedder,
    texts: &[String],
    batched: &[Vec<f32>],
    options: &EmbedOptions,
) {
    for (i, text) in texts.iter().enumerate() {
        let single = model.embed(&[text.as_str()], options).unwrap();
        let c = cosine(&single[0], &batched[i]);
        let d = max_abs_diff(&single[0], &batched[i]);
        assert!(
            c >= 0.9999 && d <= 1e-4,
            "{label}: text {i}: batched vs single cosine {c}, max abs {d}"
        );
    }
}
