//! `fathom eval BEIR_DIR`: ingest a BEIR corpus (`title + " " + text` per document, chunked like
//! any document), run the test queries, score each document by its best chunk, and report
//! nDCG@10, recall@100 and MRR@10.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use fathom_ingest::{Document, FolderOptions, Format};
use fathom_model::EmbedOptions;
use fathom_store::{SearchMode, SearchQuery};

use crate::cli::EvalArgs;

pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    let beir = Beir::read(&args.dir)?;
    let name = args
        .collection
        .clone()
        .unwrap_or_else(|| collection_name(&args));
    let model = Arc::new(super::load_model(&args.model)?);
    let reranker = super::load_rerank_flag(args.rerank.as_deref(), &args.model)?;
    let rt = super::runtime()?;
    let cancel = super::cancel_on_ctrl_c(&rt);
    let scores = rt.block_on(async {
        let store = fathom_store::Store::with_options(&args.store, args.access.options()?);
        let collection = store.collection(&name, &super::model_spec(&model)).await?;
        let options = FolderOptions {
            chunk_tokens: args.chunking.chunk_tokens,
            overlap: args.chunking.overlap,
            ..FolderOptions::default()
        };
        let ingest = fathom_ingest::upsert_documents(
            model.clone(),
            &collection,
            beir.documents(),
            &options,
            &|_| {},
            &cancel,
        )
        .await?;
        if ingest.interrupted {
            anyhow::bail!("interrupted while ingesting the corpus; run again to finish");
        }
        let ranker = Ranker {
            model: &model,
            reranker: reranker.as_ref(),
            candidates: args.candidates,
            mode: args.mode,
        };
        let (plain, reranked) = ranker.score(&collection, &beir).await?;
        Ok::<_, anyhow::Error>(Scores {
            plain,
            reranked,
            ingest,
        })
    })?;
    print_report(&args, &name, beir.queries.len(), &scores);
    Ok(())
}

/// The collection an evaluation writes when `-c` names none: one per corpus, model (other than
/// the default), chunking and precision, since a collection keeps the model and chunking that
/// built it and f32 vectors would score f32, not what was asked.
fn collection_name(args: &EvalArgs) -> String {
    let corpus = args
        .dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "beir".into());
    let mut name = format!("eval-{corpus}");
    let model = (args.model.single().ok().flatten()).unwrap_or_else(fathom_model::default_model);
    if model != fathom_model::default_model() {
        let tag: String = model
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or("model")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        name.push('-');
        name.push_str(&tag);
    }
    if let Some(tokens) = args.chunking.chunk_tokens {
        name.push_str(&format!("-c{tokens}"));
    }
    if let Some(overlap) = args.chunking.overlap {
        name.push_str(&format!("-o{overlap}"));
    }
    let precision = fathom_model::Precision::from(args.model.dtype);
    if precision != fathom_model::Precision::F32 {
        name.push_str(&format!("-{precision}"));
    }
    name
}

/// A BEIR folder: the corpus, and the test queries that have judgements, in id order.
struct Beir {
    corpus: Vec<serde_json::Value>,
    /// (id, text) of each judged query.
    queries: Vec<(String, String)>,
    qrels: HashMap<String, HashMap<String, f64>>,
}

impl Beir {
    /// Reads `corpus.jsonl`, `queries.jsonl` and `qrels/test.tsv` (whole files).
    fn read(dir: &Path) -> anyhow::Result<Self> {
        let corpus = read_jsonl(&dir.join("corpus.jsonl"))?;
        let qrels = read_qrels(&dir.join("qrels/test.tsv"))?;
        // By id (a repeated id: its last line), the judged ones in id order.
        let text: HashMap<String, String> = read_jsonl(&dir.join("queries.jsonl"))?
            .iter()
            .map(|q| (string_field(q, "_id"), string_field(q, "text")))
            .collect();
        let mut queries: Vec<(String, String)> = text
            .into_iter()
            .filter(|(id, _)| qrels.contains_key(id))
            .collect();
        queries.sort();
        if queries.is_empty() {
            anyhow::bail!("no query of qrels/test.tsv is in queries.jsonl");
        }
        Ok(Self {
            corpus,
            queries,
            qrels,
        })
    }

    /// Each corpus entry as a document: `title + " " + text`, under its `_id`.
    fn documents(&self) -> Vec<Document> {
        self.corpus
            .iter()
            .map(|d| Document {
                id: string_field(d, "_id"),
                text: format!("{} {}", string_field(d, "title"), string_field(d, "text")),
                metadata: None,
                format: Format::Text,
            })
            .collect()
    }
}

/// How the queries are run: the search mode, and the cross-encoder that reorders the first
/// `candidates` hits when there is one.
struct Ranker<'a> {
    model: &'a fathom_model::Embedder,
    reranker: Option<&'a fathom_model::Reranker>,
    candidates: usize,
    mode: SearchMode,
}

impl Ranker<'_> {
    /// Embeds every judged query (in one call), searches for each and scores the documents
    /// found; the reranked scores too when there is a reranker.
    async fn score(
        &self,
        collection: &fathom_store::Collection,
        beir: &Beir,
    ) -> anyhow::Result<(Metrics, Option<Metrics>)> {
        let texts: Vec<&str> = beir.queries.iter().map(|(_, t)| t.as_str()).collect();
        let vectors = if self.mode == SearchMode::Text {
            vec![Vec::new(); texts.len()]
        } else {
            let options = EmbedOptions {
                prompt_name: self.model.query_prompt().map(str::to_string),
                ..EmbedOptions::default()
            };
            self.model.embed(&texts, &options)?
        };
        let mut plain = Metrics::default();
        let mut reranked = Metrics::default();
        for ((id, text), vector) in beir.queries.iter().zip(vectors) {
            // Enough chunks that 100 distinct documents come back.
            let query = SearchQuery {
                vector: (self.mode != SearchMode::Text).then_some(vector),
                text: Some(text.clone()),
                mode: self.mode,
                k: 300,
                filters: Vec::new(),
            };
            let hits = collection.search(&query).await?;
            if let Some(reranker) = self.reranker {
                reranked.add(
                    &distinct_sources(self.rerank(reranker, text, &hits)?),
                    &beir.qrels[id],
                );
            }
            plain.add(&distinct_sources(hits), &beir.qrels[id]);
        }
        let reranked = self.reranker.is_some().then(|| reranked.mean());
        Ok((plain.mean(), reranked))
    }

    /// The best candidates reordered by the cross-encoder, the rest after them as they were:
    /// recall@100 can only change within the candidates.
    fn rerank(
        &self,
        reranker: &fathom_model::Reranker,
        query: &str,
        hits: &[fathom_store::Hit],
    ) -> anyhow::Result<Vec<fathom_store::Hit>> {
        let n = self.candidates.min(hits.len());
        let texts: Vec<&str> = hits[..n].iter().map(|h| h.text.as_str()).collect();
        let scores = reranker.rerank(query, &texts, &fathom_model::RerankOptions::default())?;
        let mut reordered = fathom_store::rerank_hits(hits[..n].to_vec(), &scores, n);
        reordered.extend(hits[n..].iter().cloned());
        Ok(reordered)
    }
}

/// What an evaluation measured.
struct Scores {
    plain: Metrics,
    reranked: Option<Metrics>,
    ingest: fathom_ingest::Summary,
}

fn print_report(args: &EvalArgs, name: &str, queries: usize, s: &Scores) {
    let (m, ingest) = (&s.plain, &s.ingest);
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "collection": name, "mode": args.mode, "queries": queries,
                "ndcg@10": m.ndcg10, "recall@100": m.recall100, "mrr@10": m.mrr10,
                "reranked": s.reranked.as_ref().map(|r| serde_json::json!({
                    "reranker": args.rerank, "candidates": args.candidates,
                    "ndcg@10": r.ndcg10, "recall@100": r.recall100, "mrr@10": r.mrr10,
                })),
                "ingest": {"added": ingest.added, "unchanged": ingest.unchanged, "seconds": ingest.seconds},
            })
        );
        return;
    }
    println!(
        "{} ({} queries, mode {}): nDCG@10 {:.4}  recall@100 {:.4}  MRR@10 {:.4}",
        args.dir.display(),
        queries,
        args.mode,
        m.ndcg10,
        m.recall100,
        m.mrr10
    );
    if let Some(r) = &s.reranked {
        println!(
            "  reranked ({}, {} candidates): nDCG@10 {:.4}  recall@100 {:.4}  MRR@10 {:.4}",
            args.rerank.as_deref().unwrap_or_default(),
            args.candidates,
            r.ndcg10,
            r.recall100,
            r.mrr10
        );
    }
}

fn distinct_sources(hits: Vec<fathom_store::Hit>) -> Vec<String> {
    let mut seen = HashSet::new();
    hits.into_iter()
        .filter(|h| seen.insert(h.source_id.clone()))
        .map(|h| h.source_id)
        .collect()
}

fn read_jsonl(path: &Path) -> anyhow::Result<Vec<serde_json::Value>> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "reading {} (a BEIR folder has corpus.jsonl, queries.jsonl, qrels/test.tsv)",
            path.display()
        )
    })?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| {
            serde_json::from_str(l).with_context(|| format!("{} line {}", path.display(), n + 1))
        })
        .collect()
}

fn string_field(v: &serde_json::Value, key: &str) -> String {
    match v.get(key) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// query id → (document id → relevance), from a BEIR qrels TSV with a header line.
fn read_qrels(path: &Path) -> anyhow::Result<HashMap<String, HashMap<String, f64>>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut qrels: HashMap<String, HashMap<String, f64>> = HashMap::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 3 {
            continue;
        }
        let score: f64 = cols[2]
            .trim()
            .parse()
            .with_context(|| format!("{} line {}: bad score", path.display(), n + 1))?;
        if score > 0.0 {
            qrels
                .entry(cols[0].to_string())
                .or_default()
                .insert(cols[1].to_string(), score);
        }
    }
    Ok(qrels)
}

#[derive(Debug, Default, Clone, Copy)]
struct Metrics {
    ndcg10: f64,
    recall100: f64,
    mrr10: f64,
    queries: usize,
}

impl Metrics {
    /// Adds one query's ranking (as pytrec_eval scores it: gain = relevance, log2 discount).
    fn add(&mut self, ranked: &[String], relevant: &HashMap<String, f64>) {
        let dcg: f64 = ranked
            .iter()
            .take(10)
            .enumerate()
            .map(|(i, d)| relevant.get(d).copied().unwrap_or(0.0) / ((i + 2) as f64).log2())
            .sum();
        let mut ideal: Vec<f64> = relevant.values().copied().collect();
        ideal.sort_by(|a, b| b.total_cmp(a));
        let idcg: f64 = ideal
            .iter()
            .take(10)
            .enumerate()
            .map(|(i, r)| r / ((i + 2) as f64).log2())
            .sum();
        self.ndcg10 += if idcg > 0.0 { dcg / idcg } else { 0.0 };
        let found = ranked
            .iter()
            .take(100)
            .filter(|d| relevant.contains_key(*d))
            .count();
        self.recall100 += found as f64 / relevant.len().max(1) as f64;
        self.mrr10 += ranked
            .iter()
            .take(10)
            .position(|d| relevant.contains_key(d))
            .map_or(0.0, |p| 1.0 / (p + 1) as f64);
        self.queries += 1;
    }

    fn mean(self) -> Self {
        let n = self.queries.max(1) as f64;
        Self {
            ndcg10: self.ndcg10 / n,
            recall100: self.recall100 / n,
            mrr10: self.mrr10 / n,
            queries: self.queries,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_match_hand_computed_values() {
        let relevant: HashMap<String, f64> =
            [("a".to_string(), 1.0), ("b".to_string(), 1.0)].into();
        let mut m = Metrics::default();
        // Relevant at ranks 2 and 4: DCG = 1/log2(3) + 1/log2(5); IDCG = 1 + 1/log2(3).
        m.add(&["x".into(), "a".into(), "y".into(), "b".into()], &relevant);
        let m = m.mean();
        let want = (1.0 / 3f64.log2() + 1.0 / 5f64.log2()) / (1.0 + 1.0 / 3f64.log2());
        assert!((m.ndcg10 - want).abs() < 1e-12);
        assert_eq!(m.recall100, 1.0);
        assert_eq!(m.mrr10, 0.5);
    }
}
