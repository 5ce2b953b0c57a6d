//! Chunking speed in tokens/s (the real all-MiniLM-L6-v2 tokenizer, 254-token chunks with the
//! default overlap): ~2 MB of prose (SciFact abstracts, one per line) against ~2 MB of one word
//! repeated on a single line — the input that made `text-splitter` alone quadratic — and, for
//! contrast, `text-splitter` alone on a 100 KB single line. Prints one JSON line; timings are
//! never asserted.
//!
//! cargo bench --bench chunking -- [--bytes 2000000] [--corpus ../shared/data/scifact/corpus.jsonl]

use std::time::Instant;

use fathom_ingest::{chunk, ChunkSize, ChunkTokenizer, Format};
use fathom_model::{Embedder, LoadOptions};
use text_splitter::{ChunkConfig, ChunkSizer, TextSplitter};

struct Tokens<'a>(&'a tokenizers::Tokenizer);

impl ChunkSizer for Tokens<'_> {
    fn size(&self, chunk: &str) -> usize {
        self.0.encode(chunk, false).map(|e| e.len()).unwrap_or(0)
    }
}

fn main() {
    let mut bytes = 2_000_000usize;
    let mut corpus = "../shared/data/scifact/corpus.jsonl".to_string();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--bytes" => bytes = value().parse().expect("a number"),
            "--corpus" => corpus = value(),
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    let model = Embedder::load("models/all-MiniLM-L6-v2", &LoadOptions::default())
        .expect("models/all-MiniLM-L6-v2 (scripts/fetch-model.sh)");
    let tokenizer = model.tokenizer();
    let prepared = ChunkTokenizer::new(tokenizer);
    let size = ChunkSize::for_max_seq_length(model.max_seq_length());
    let mut prose = String::new();
    for line in std::fs::read_to_string(&corpus)
        .expect("the SciFact corpus")
        .lines()
    {
        let doc: serde_json::Value = serde_json::from_str(line).unwrap();
        prose.push_str(doc["text"].as_str().unwrap_or_default());
        prose.push('\n');
        if prose.len() >= bytes {
            break;
        }
    }
    let single_line = "tokens ".repeat(prose.len() / 7);
    let measure = |text: &str| {
        let tokens = tokenizer.encode(text, false).unwrap().len();
        let start = Instant::now();
        let chunked = chunk(&prepared, text, Format::Text, size, usize::MAX).unwrap();
        let seconds = start.elapsed().as_secs_f64();
        (
            tokens as f64 / seconds,
            chunked.chunks.len(),
            text.len(),
            seconds,
        )
    };
    let (prose_rate, prose_chunks, prose_bytes, prose_s) = measure(&prose);
    let (line_rate, line_chunks, line_bytes, line_s) = measure(&single_line);
    // text-splitter alone, on a line twenty times shorter.
    let short_line = "tokens ".repeat(100_000 / 7);
    let config = ChunkConfig::new(size.tokens)
        .with_overlap(size.overlap)
        .unwrap()
        .with_sizer(Tokens(tokenizer));
    let start = Instant::now();
    let n = TextSplitter::new(config).chunks(&short_line).count();
    let splitter_s = start.elapsed().as_secs_f64();
    let splitter_tokens = tokenizer.encode(short_line.as_str(), false).unwrap().len();
    println!(
        "{}",
        serde_json::json!({
            "prose": {"bytes": prose_bytes, "chunks": prose_chunks, "seconds": prose_s, "tokens_per_s": prose_rate},
            "single_line": {"bytes": line_bytes, "chunks": line_chunks, "seconds": line_s, "tokens_per_s": line_rate},
            "ratio_single_line_to_prose": line_rate / prose_rate,
            "text_splitter_alone_100kb_line": {"chunks": n, "seconds": splitter_s, "tokens_per_s": splitter_tokens as f64 / splitter_s},
        })
    );
}
