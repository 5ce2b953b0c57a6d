//! `fathom search QUERY`.

use std::io::BufRead;

use fathom_model::{EmbedOptions, RerankOptions};
use fathom_store::{Filter, SearchMode, SearchQuery};

use crate::cli::{RerankArgs, SearchArgs};

pub fn run(args: SearchArgs) -> anyhow::Result<()> {
    let mode = args.mode;
    let filters = args
        .filter
        .iter()
        .map(|f| Filter::parse(f))
        .collect::<Result<Vec<_>, _>>()?;
    let model = super::load_model(&args.model)?;
    let reranker = super::load_rerank_flag(args.rerank.as_deref(), &args.model)?;
    let vector = if mode == SearchMode::Text {
        None
    } else {
        let options = EmbedOptions {
            prompt_name: model.query_prompt().map(str::to_string),
            ..EmbedOptions::default()
        };
        Some(model.embed(&[args.query.as_str()], &options)?.remove(0))
    };
    let rt = super::runtime()?;
    let hits = rt.block_on(async {
        let store = args.target.store.open()?;
        let collection = store.existing_collection(&args.target.collection).await?;
        let spec = super::model_spec(&model);
        if mode != SearchMode::Text && !collection.spec().compatible(&spec) {
            anyhow::bail!(
                "collection `{}` holds vectors of `{}`; search it with that model (--model), not `{}`",
                args.target.collection,
                collection.spec().model,
                spec.model
            );
        }
        let query = SearchQuery {
            vector,
            text: Some(args.query.clone()),
            mode,
            k: if reranker.is_some() {
                args.candidates.max(args.k)
            } else {
                args.k
            },
            filters,
        };
        Ok(collection.search(&query).await?)
    })?;
    let hits = match &reranker {
        Some(reranker) => {
            let texts: Vec<&str> = hits.iter().map(|h| h.text.as_str()).collect();
            let scores = reranker.rerank(&args.query, &texts, &RerankOptions::default())?;
            fathom_store::rerank_hits(hits, &scores, args.k)
        }
        None => hits,
    };
    if args.target.store.json {
        println!("{}", serde_json::to_string_pretty(&hits)?);
        return Ok(());
    }
    if hits.is_empty() {
        println!("no results");
    }
    for (rank, hit) in hits.iter().enumerate() {
        let place = hit
            .location
            .as_ref()
            .map(|l| format!(" ({l})"))
            .unwrap_or_default();
        println!(
            "{:>2}. {:.4}  {}{place}  [chunk {}, bytes {}..{}]",
            rank + 1,
            hit.score,
            hit.source_id,
            hit.chunk_index,
            hit.byte_start,
            hit.byte_end
        );
        println!("    {}", snippet(&hit.text, 200));
    }
    Ok(())
}

/// The first `max` characters of a chunk on one line.
fn snippet(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        format!("{}…", flat.chars().take(max).collect::<String>())
    }
}

/// `fathom rerank QUERY [TEXT...]`: every text's score against the query, best first.
pub fn rerank(args: RerankArgs) -> anyhow::Result<()> {
    let texts = if args.texts.is_empty() {
        std::io::stdin()
            .lock()
            .lines()
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .filter(|l| !l.trim().is_empty())
            .collect()
    } else {
        args.texts.clone()
    };
    if texts.is_empty() {
        anyhow::bail!("no texts to rerank: give them as arguments or one per line on stdin");
    }
    let model = super::load_reranker(&args.model, &args.device, args.dtype, 8192)?;
    let options = RerankOptions {
        raw_scores: args.raw_scores,
        ..RerankOptions::default()
    };
    let scores = model.rerank(&args.query, &texts, &options)?;
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    if args.json {
        let ranked: Vec<serde_json::Value> = order
            .iter()
            .map(|&i| serde_json::json!({"index": i, "score": scores[i], "text": texts[i]}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&ranked)?);
        return Ok(());
    }
    for (rank, &i) in order.iter().enumerate() {
        println!(
            "{:>2}. {:.4}  {}",
            rank + 1,
            scores[i],
            snippet(&texts[i], 200)
        );
    }
    Ok(())
}
