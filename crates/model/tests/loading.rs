//! Loading paths the fixtures do not cover on their own: sharded safetensors, a checkpoint saved
//! with a `bert.` prefix, and `include_prompt: false`.

mod common;

use std::collections::HashMap;

use common::*;
use fathom_model::EmbedOptions;

fn texts() -> Vec<String> {
    read_reference(&fixtures().join("reference/all-MiniLM-L6-v2.jsonl")).texts
}

#[test]
fn sharded_safetensors_load_like_one_file() {
    let base = minilm_dir();
    let dir = overlay(&base, &fixtures().join("variants/cls"));
    let tensors = candle_core::safetensors::load(
        dir.path().join("model.safetensors"),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let mut names: Vec<&String> = tensors.keys().collect();
    names.sort();
    let (first, second) = names.split_at(names.len() / 2);
    let mut weight_map = serde_json::Map::new();
    for (shard, part) in [
        ("model-00001-of-00002.safetensors", first),
        ("model-00002-of-00002.safetensors", second),
    ] {
        let map: HashMap<String, candle_core::Tensor> = part
            .iter()
            .map(|n| ((*n).clone(), tensors[*n].clone()))
            .collect();
        candle_core::safetensors::save(&map, dir.path().join(shard)).unwrap();
        for n in part {
            weight_map.insert((*n).clone(), shard.into());
        }
    }
    std::fs::write(
        dir.path().join("model.safetensors.index.json"),
        serde_json::json!({"metadata": {}, "weight_map": weight_map}).to_string(),
    )
    .unwrap();
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();

    let reference = read_reference(&dir.path().join("reference.jsonl"));
    let got = load(dir.path())
        .embed(&reference.texts, &EmbedOptions::default())
        .unwrap();
    assert_close(
        "sharded",
        &reference.texts,
        &got,
        &reference.embeddings,
        true,
        0.9999,
    );
}

#[test]
fn checkpoints_with_a_bert_prefix_load() {
    let dir = overlay(&fixtures().join("tiny/bert"), &fixtures().join("tiny/bert"));
    let tensors = candle_core::safetensors::load(
        dir.path().join("model.safetensors"),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let prefixed: HashMap<String, candle_core::Tensor> = tensors
        .into_iter()
        .map(|(k, v)| (format!("bert.{k}"), v))
        .collect();
    candle_core::safetensors::save(&prefixed, dir.path().join("model.safetensors")).unwrap();
    let reference = read_reference(&dir.path().join("reference.jsonl"));
    let got = load(dir.path())
        .embed(&reference.texts, &EmbedOptions::default())
        .unwrap();
    assert_close(
        "bert.-prefixed",
        &reference.texts,
        &got,
        &reference.embeddings,
        true,
        0.9999,
    );
}

#[test]
fn include_prompt_false_leaves_prompt_tokens_out_of_the_mean() {
    // With include_prompt false, "query: " + text pools over the text's tokens only (plus [SEP]),
    // which differs from pooling over everything; with no prompt the two configs agree.
    let with = overlay(&minilm_dir(), &fixtures().join("variants/prompt-query"));
    let without = overlay(&minilm_dir(), &fixtures().join("variants/prompt-query"));
    std::fs::write(
        without.path().join("1_Pooling/config.json"),
        r#"{"word_embedding_dimension": 384, "pooling_mode": "mean", "include_prompt": false}"#,
    )
    .unwrap();
    let a = load(with.path());
    let b = load(without.path());
    let texts = texts();
    let plain = EmbedOptions::default();
    let query = EmbedOptions {
        prompt_name: Some("query".into()),
        ..Default::default()
    };
    let (pa, pb) = (
        a.embed(&texts, &plain).unwrap(),
        b.embed(&texts, &plain).unwrap(),
    );
    for (x, y) in pa.iter().zip(&pb) {
        assert!(max_abs_diff(x, y) < 1e-6);
    }
    let (qa, qb) = (
        a.embed(&texts[..5], &query).unwrap(),
        b.embed(&texts[..5], &query).unwrap(),
    );
    for (x, y) in qa.iter().zip(&qb) {
        assert!(cosine(x, y) < 0.9999, "prompt tokens must be left out");
    }
}

/// Rewrites the `config.json` of a copy of the tiny model `name` and checks it still gives the
/// references: configs on the hub come in older shapes than the fixtures' transformers 5 ones.
fn assert_config_variant_matches(name: &str, edit: impl FnOnce(&mut serde_json::Value)) {
    let dir = overlay(
        &fixtures().join("tiny").join(name),
        &fixtures().join("tiny").join(name),
    );
    let path = dir.path().join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut config);
    std::fs::write(&path, config.to_string()).unwrap();
    let model = load(dir.path());
    let reference = read_reference(&dir.path().join("reference.jsonl"));
    let got = model
        .embed(&reference.texts, &EmbedOptions::default())
        .unwrap();
    assert_close(
        &format!("{name} (older config)"),
        &reference.texts,
        &got,
        &reference.embeddings,
        model.layout().normalize,
        0.9999,
    );
}

#[test]
fn modernbert_reads_the_older_config_keys() {
    // Before transformers 5: global_attn_every_n_layers and global/local_rope_theta instead of
    // layer_types and rope_parameters. The tiny model alternates global and local layers.
    assert_config_variant_matches("modernbert", |c| {
        let o = c.as_object_mut().unwrap();
        o.remove("layer_types");
        o.remove("rope_parameters");
        o.insert("global_attn_every_n_layers".into(), 2.into());
        o.insert("global_rope_theta".into(), 160_000.0.into());
        o.insert("local_rope_theta".into(), 10_000.0.into());
    });
}

#[test]
fn qwen3_reads_the_older_rope_theta_key_and_a_model_prefix() {
    assert_config_variant_matches("qwen3", |c| {
        let o = c.as_object_mut().unwrap();
        let theta = o["rope_parameters"]["rope_theta"].clone();
        o.remove("rope_parameters");
        o.insert("rope_theta".into(), theta);
    });
}

#[test]
fn a_wrong_local_window_changes_modernbert_vectors() {
    // The tiny texts are longer than the local window, so the window is really exercised:
    // widening it to cover every position must move some vector away from the reference.
    let dir = overlay(
        &fixtures().join("tiny/modernbert"),
        &fixtures().join("tiny/modernbert"),
    );
    let path = dir.path().join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["local_attention"] = 1024.into();
    std::fs::write(&path, config.to_string()).unwrap();
    let reference = read_reference(&dir.path().join("reference.jsonl"));
    let got = load(dir.path())
        .embed(&reference.texts, &EmbedOptions::default())
        .unwrap();
    let worst = got
        .iter()
        .zip(&reference.embeddings)
        .map(|(g, w)| cosine(g, w))
        .fold(1.0, f64::min);
    assert!(
        worst < 0.9999,
        "the local window made no difference (worst cosine {worst})"
    );
}

#[test]
fn unsupported_architectures_name_the_supported_ones() {
    let dir = overlay(&fixtures().join("tiny/bert"), &fixtures().join("tiny/bert"));
    let path = dir.path().join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["model_type"] = "gpt_neox".into();
    std::fs::write(&path, config.to_string()).unwrap();
    let err = fathom_model::Embedder::load(
        dir.path().to_str().unwrap(),
        &fathom_model::LoadOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("gpt_neox"), "{err}");
    for arch in [
        "bert",
        "distilbert",
        "xlm-roberta",
        "mpnet",
        "modernbert",
        "qwen3",
    ] {
        assert!(err.contains(arch), "{arch} missing from: {err}");
    }
}
