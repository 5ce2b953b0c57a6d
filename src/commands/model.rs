//! `fathom model pull` and `fathom model info`.

use anyhow::Context;
use fathom_model::{arch, ModelFiles, ModelLayout, ModelSource};

use crate::cli::{InfoArgs, PullArgs};

pub fn pull(args: PullArgs) -> anyhow::Result<()> {
    let source = ModelSource::parse(&args.id)?;
    if matches!(source, ModelSource::Local(_)) {
        anyhow::bail!("`{}` is a local folder; `fathom model pull` takes a hub id like sentence-transformers/all-MiniLM-L6-v2", args.id);
    }
    let mut files = ModelFiles::open(&source)?;
    let layout = ModelLayout::read(&mut files)?;
    // Optional files a complete sentence-transformers folder carries; fetched when present.
    for extra in [
        "vocab.txt",
        "special_tokens_map.json",
        "tokenizer_config.json",
        "README.md",
    ] {
        files.optional(extra)?;
    }
    eprintln!(
        "pulled {} ({}, {} files) into the hub cache",
        layout.name,
        layout.model_type,
        files.fetched().len()
    );
    if let Some(dest) = &args.to {
        files
            .copy_fetched_to(dest)
            .with_context(|| format!("copying into {}", dest.display()))?;
        eprintln!("copied into {}", dest.display());
    }
    Ok(())
}

pub fn info(args: InfoArgs) -> anyhow::Result<()> {
    let model = args.model.unwrap_or_else(fathom_model::default_model);
    let source = ModelSource::parse(&model)?;
    let mut files = ModelFiles::open(&source)?;
    let layout = ModelLayout::read_config_only(&mut files)?;
    let supported =
        layout.static_model.is_some() || arch::SUPPORTED.contains(&layout.model_type.as_str());
    if args.json {
        let mut value = serde_json::to_value(&layout)?;
        value["supported"] = serde_json::Value::Bool(supported);
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    let pooling: Vec<&str> = layout.pooling.modes.iter().map(|m| m.name()).collect();
    println!("model           {}", layout.name);
    println!(
        "architecture    {}{}",
        layout.model_type,
        if supported {
            String::new()
        } else {
            format!(
                " (not supported by this build; supported: {})",
                arch::SUPPORTED.join(", ")
            )
        }
    );
    println!("kind            {}", layout.kind);
    if let Some(table) = &layout.static_model {
        println!(
            "static table    {} ({})",
            if table.model2vec {
                "Model2Vec"
            } else {
                "sentence-transformers StaticEmbedding"
            },
            match table.max_length {
                Some(n) => format!("texts cut at {n} tokens, unknown tokens dropped"),
                None if table.model2vec => "unknown tokens dropped".to_string(),
                None => "every token".to_string(),
            }
        );
    }
    match layout.kind {
        fathom_model::ModelKind::Embedder => {
            println!("dimension       {}", layout.dimension)
        }
        fathom_model::ModelKind::Reranker => println!(
            "labels          {} (scores through {:?})",
            layout.dimension, layout.score_activation
        ),
        fathom_model::ModelKind::Sparse => println!("vocabulary      {}", layout.dimension),
    }
    println!("hidden size     {}", layout.hidden_size);
    println!("max_seq_length  {}", layout.max_seq_length);
    println!(
        "pooling         {}{}",
        pooling.join(" + "),
        if layout.pooling.include_prompt {
            ""
        } else {
            " (prompt excluded)"
        }
    );
    for d in &layout.dense {
        println!(
            "dense           {} → {} ({:?})",
            d.in_features, d.out_features, d.activation
        );
    }
    println!("normalize       {}", layout.normalize);
    if layout.prompts.is_empty() {
        println!("prompts         none");
    } else {
        for (name, text) in &layout.prompts {
            let default = if layout.default_prompt_name.as_deref() == Some(name) {
                " (default)"
            } else {
                ""
            };
            println!("prompt          {name}{default}: {text:?}");
        }
    }
    Ok(())
}
