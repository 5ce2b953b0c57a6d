//! `fathom embed`: texts in, vectors out as JSON.

use std::io::{BufRead, BufWriter, Write};

use anyhow::Context;
use fathom_model::EmbedOptions;

use crate::cli::EmbedArgs;

/// Inputs embedded per call when reading stdin, so output starts before all input is read.
const STDIN_CHUNK: usize = 1024;

pub fn run(args: EmbedArgs) -> anyhow::Result<()> {
    let model = super::load_model(&args.model)?;
    let options = EmbedOptions {
        normalize: args.no_normalize.then_some(false),
        truncate: args.no_truncate.then_some(false),
        prompt_name: args.prompt_name.clone(),
        prompt: args.prompt.clone(),
        dimensions: args.dimensions,
        ..EmbedOptions::default()
    };
    let stdout = std::io::stdout();
    let mut out = JsonOut::new(BufWriter::new(stdout.lock()), args.jsonl);
    if !args.texts.is_empty() {
        let vectors = model.embed(&args.texts, &options)?;
        out.write_all(&vectors)?;
    } else {
        let stdin = std::io::stdin();
        let mut reader = stdin.lock();
        let mut chunk = Vec::with_capacity(STDIN_CHUNK);
        let mut line_no = 0usize;
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let n = reader
                .read_until(b'\n', &mut buf)
                .context("reading stdin")?;
            if n > 0 {
                line_no += 1;
                let line = String::from_utf8(std::mem::take(&mut buf)).map_err(|_| {
                    anyhow::anyhow!("stdin line {line_no} is not valid UTF-8 (fathom embed reads UTF-8 text, one input per line)")
                })?;
                let line = line.strip_suffix('\n').unwrap_or(&line);
                let line = line.strip_suffix('\r').unwrap_or(line);
                chunk.push(line.to_string());
            }
            if chunk.len() == STDIN_CHUNK || (n == 0 && !chunk.is_empty()) {
                let first = line_no - chunk.len() + usize::from(n == 0);
                let vectors = model
                    .embed(&chunk, &options)
                    .with_context(|| format!("embedding stdin lines from {first}"))?;
                out.write_all(&vectors)?;
                chunk.clear();
            }
            if n == 0 {
                break;
            }
        }
    }
    out.finish()?;
    Ok(())
}

/// Writes vectors either as one JSON array of arrays (one inner array per line) or as JSONL.
struct JsonOut<W: Write> {
    writer: W,
    jsonl: bool,
    written: usize,
}

impl<W: Write> JsonOut<W> {
    fn new(writer: W, jsonl: bool) -> Self {
        Self {
            writer,
            jsonl,
            written: 0,
        }
    }

    fn write_all(&mut self, vectors: &[Vec<f32>]) -> anyhow::Result<()> {
        for v in vectors {
            let line = serde_json::to_string(v)?;
            if self.jsonl {
                writeln!(self.writer, "{line}")?;
            } else {
                let sep = if self.written == 0 { "[\n" } else { ",\n" };
                write!(self.writer, "{sep}{line}")?;
            }
            self.written += 1;
        }
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<()> {
        if !self.jsonl {
            let end = if self.written == 0 { "[]\n" } else { "\n]\n" };
            write!(self.writer, "{end}")?;
        }
        self.writer.flush()?;
        Ok(())
    }
}
