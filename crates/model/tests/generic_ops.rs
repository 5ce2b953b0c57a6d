//! The plain candle path (what CUDA and f16 use) must agree with the references too: this test
//! binary turns the CPU kernels off for its whole process.

mod common;

use common::*;
use fathom_model::EmbedOptions;

#[test]
fn generic_candle_ops_match_references() {
    // Set before any model is built; every test in this binary sees the same value.
    std::env::set_var("FATHOM_GENERIC_OPS", "1");
    let reference = read_reference(&fixtures().join("reference/all-MiniLM-L6-v2.jsonl"));
    let model = load(&minilm_dir());
    let got = model
        .embed(&reference.texts, &EmbedOptions::default())
        .unwrap();
    assert_close(
        "generic all-MiniLM-L6-v2",
        &reference.texts,
        &got,
        &reference.embeddings,
        true,
        0.9999,
    );
    for name in TINY_MODELS {
        let dir = fixtures().join("tiny").join(name);
        let model = load(&dir);
        let reference = read_reference(&dir.join("reference.jsonl"));
        let got = model
            .embed(&reference.texts, &EmbedOptions::default())
            .unwrap();
        assert_close(
            name,
            &reference.texts,
            &got,
            &reference.embeddings,
            model.layout().normalize,
            0.9999,
        );
    }
}
