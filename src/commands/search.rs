//! `fathom search QUERY`.

use fathom_model::EmbedOptions;
use fathom_store::{Filter, SearchMode, SearchQuery};

use crate::cli::SearchArgs;

pub fn run(args: SearchArgs) -> anyhow::Result<()> {
    let mode = args.mode;
    let filters = args
        .filter
        .iter()
        .map(|f| Filter::parse(f))
        .collect::<Result<Vec<_>, _>>()?;
    let model = super::load_model(&args.model)?;
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
            k: args.k,
            filters,
        };
        Ok(collection.search(&query).await?)
    })?;
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
