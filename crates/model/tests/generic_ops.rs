//! The plain candle path (what CUDA and f16 use) must agree with the references too. Each model
//! is loaded twice in this one process, once with `generic_ops` (CPU kernels off) and once
//! without: the switch belongs to the loaded model, so both run side by side and must agree with
//! the references and with each other.

mod common;

use std::path::Path;

use common::*;
use fathom_model::{EmbedOptions, Embedder, LoadOptions};

fn load_with(dir: &Path, generic_ops: bool) -> Embedder {
    let options = LoadOptions {
        generic_ops,
        ..LoadOptions::default()
    };
    Embedder::load(dir.to_str().unwrap(), &options)
        .unwrap_or_else(|e| panic!("loading {} (generic_ops {generic_ops}): {e}", dir.display()))
}

/// Embeds the references with a generic and a fast instance of the model in `dir`, checks both
/// against the references and against each other, and returns (generic, fast).
fn generic_and_fast(
    label: &str,
    dir: &Path,
    reference: &Reference,
) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let generic = load_with(dir, true);
    let fast = load_with(dir, false);
    let normalized = generic.layout().normalize;
    let options = EmbedOptions::default();
    let from_generic = generic.embed(&reference.texts, &options).unwrap();
    let from_fast = fast.embed(&reference.texts, &options).unwrap();
    let texts = &reference.texts;
    let want = &reference.embeddings;
    assert_close(
        &format!("generic {label}"),
        texts,
        &from_generic,
        want,
        normalized,
        0.9999,
    );
    assert_close(
        &format!("fast {label}"),
        texts,
        &from_fast,
        want,
        normalized,
        0.9999,
    );
    assert_close(
        &format!("generic vs fast {label}"),
        texts,
        &from_generic,
        &from_fast,
        normalized,
        0.9999,
    );
    (from_generic, from_fast)
}

#[test]
fn generic_candle_ops_match_references_and_the_cpu_kernels() {
    let reference = read_reference(&fixtures().join("reference/all-MiniLM-L6-v2.jsonl"));
    let (generic, fast) = generic_and_fast("all-MiniLM-L6-v2", &minilm_dir(), &reference);
    // Proof that each model kept its own path: the kernels' GELU and softmax use their own erf
    // and exp approximations, so the two differ in the last bits somewhere.
    let differ = generic
        .iter()
        .zip(&fast)
        .map(|(g, f)| max_abs_diff(g, f))
        .fold(0.0, f64::max);
    assert!(
        differ > 0.0,
        "generic and fast all-MiniLM-L6-v2 are bit-identical: generic_ops had no effect"
    );
    for name in fathom_testkit::TINY_MODELS {
        let dir = fixtures().join("tiny").join(name);
        let reference = read_reference(&dir.join("reference.jsonl"));
        generic_and_fast(name, &dir, &reference);
    }
}

#[test]
fn generic_ops_and_bf16_or_int8_on_cpu_are_refused() {
    for precision in [fathom_model::Precision::Bf16, fathom_model::Precision::Int8] {
        let options = LoadOptions {
            generic_ops: true,
            precision,
            ..LoadOptions::default()
        };
        let err = Embedder::load(minilm_dir().to_str().unwrap(), &options)
            .unwrap_err()
            .to_string();
        assert!(err.contains("generic_ops"), "{precision}: {err}");
    }
}
