//! fathom's tokenizers use the pure-Rust regex backend (`fancy-regex`) instead of Oniguruma, a
//! C library that cost the build a C compile (issue 29). The pre-tokenizer patterns of the
//! architectures fathom serves (BERT's, GPT-2's byte-level pattern in Qwen3 and ModernBERT,
//! Metaspace in XLM-R) must split text exactly as Oniguruma does, so every tokenizer here is run
//! on every fixture text by Hugging Face's own Python `tokenizers` (built with Oniguruma) and by
//! fathom's, and the ids and (character) offsets must be identical.

mod common;

use std::process::Command;

use common::{fixtures, minilm, test_python};

#[test]
fn token_ids_and_offsets_equal_the_oniguruma_build_on_every_fixture() {
    let texts_path = fixtures().join("texts.json");
    let texts: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(&texts_path).unwrap()).unwrap();
    // Long texts as well: the fixture texts repeated, so that every pattern sees long runs.
    let mut all = texts.clone();
    all.push(texts.join(" \n\t "));
    all.push("a".repeat(5000) + " " + &"1".repeat(300) + "   \u{3000}\u{a0} end");
    let mut tokenizers = vec![minilm().join("tokenizer.json")];
    for arch in fathom_testkit::TINY_MODELS {
        tokenizers.push(fixtures().join("tiny").join(arch).join("tokenizer.json"));
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("texts.json");
    std::fs::write(&input, serde_json::to_string(&all).unwrap()).unwrap();
    for path in &tokenizers {
        let script = r#"
import json, sys
from tokenizers import Tokenizer
tok = Tokenizer.from_file(sys.argv[1])
texts = json.load(open(sys.argv[2]))
out = [{"ids": e.ids, "offsets": e.offsets} for e in (tok.encode(t) for t in texts)]
print(json.dumps(out))
"#;
        let output = Command::new(test_python())
            .args(["-c", script])
            .arg(path)
            .arg(&input)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "python tokenizers on {}: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        let reference: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
        let tokenizer = tokenizers::Tokenizer::from_file(path).unwrap();
        assert_eq!(reference.len(), all.len());
        for (text, want) in all.iter().zip(&reference) {
            let got = tokenizer.encode_char_offsets(text.as_str(), true).unwrap();
            let ids: Vec<u64> = got.get_ids().iter().map(|&i| i as u64).collect();
            let want_ids: Vec<u64> = serde_json::from_value(want["ids"].clone()).unwrap();
            assert_eq!(
                ids,
                want_ids,
                "{}: ids differ for {:?}",
                path.display(),
                text.chars().take(80).collect::<String>()
            );
            let offsets: Vec<(usize, usize)> = got.get_offsets().to_vec();
            let want_offsets: Vec<(usize, usize)> =
                serde_json::from_value(want["offsets"].clone()).unwrap();
            assert_eq!(offsets, want_offsets, "{}: offsets differ", path.display());
        }
    }
}
