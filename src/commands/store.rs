//! `fathom sources`, `fathom collections`, `fathom delete`, `fathom optimize`.

use crate::cli::{CollectionArgs, DeleteArgs, StoreArgs};

pub fn sources(args: CollectionArgs) -> anyhow::Result<()> {
    let rt = super::runtime()?;
    let store = args.store.open()?;
    let sources = rt.block_on(async {
        store
            .existing_collection(&args.collection)
            .await?
            .sources()
            .await
    })?;
    if args.store.json {
        println!("{}", serde_json::to_string_pretty(&sources)?);
    } else {
        for s in &sources {
            println!("{:>6}  {}", s.chunks, s.source_id);
        }
        println!(
            "{} sources, {} chunks",
            sources.len(),
            sources.iter().map(|s| s.chunks).sum::<usize>()
        );
    }
    Ok(())
}

pub fn collections(args: StoreArgs) -> anyhow::Result<()> {
    let rt = super::runtime()?;
    let infos = rt.block_on(args.open()?.collections())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&infos)?);
    } else if infos.is_empty() {
        println!("no collections in {}", args.store);
    } else {
        for c in &infos {
            println!(
                "{}  {} sources, {} chunks  ({}, {} dimensions{})  {} versions, {} fragments{}",
                c.name,
                c.stats.sources,
                c.stats.chunks,
                c.model.model,
                c.model.dimension,
                if c.stats.vector_index {
                    ", ANN index"
                } else {
                    ""
                },
                c.stats.versions,
                c.stats.fragments,
                if c.stats.unindexed_rows > 0 {
                    format!(", {} rows not in the ANN index yet", c.stats.unindexed_rows)
                } else {
                    String::new()
                }
            );
        }
    }
    Ok(())
}

pub fn delete(args: DeleteArgs) -> anyhow::Result<()> {
    if args.sources.is_empty() && args.prefix.is_none() {
        anyhow::bail!("name the sources to delete, or --prefix");
    }
    let rt = super::runtime()?;
    let store = args.target.store.open()?;
    let deleted = rt.block_on(async {
        let collection = store.existing_collection(&args.target.collection).await?;
        let mut ids = args.sources.clone();
        if let Some(prefix) = &args.prefix {
            ids.extend(
                collection
                    .sources()
                    .await?
                    .into_iter()
                    .map(|s| s.source_id)
                    .filter(|id| id.starts_with(prefix.as_str())),
            );
        }
        collection.delete_sources(&ids).await
    })?;
    println!("deleted {deleted} chunks");
    Ok(())
}

/// Compacts a collection's fragments, refreshes its indexes and removes old versions.
pub fn optimize(args: CollectionArgs) -> anyhow::Result<()> {
    let rt = super::runtime()?;
    let (upkeep, stats) = rt.block_on(async {
        let store = args.store.open()?;
        let collection = store.existing_collection(&args.collection).await?;
        let upkeep = collection.optimize().await?;
        Ok::<_, anyhow::Error>((upkeep, collection.stats().await?))
    })?;
    if args.store.json {
        println!("{}", serde_json::json!({"upkeep": upkeep, "stats": stats}));
    } else {
        println!(
            "{} fragments -> {}; {} old versions removed ({} bytes); {} versions kept (younger than a minute, or current)",
            upkeep.fragments_before,
            upkeep.fragments_after,
            upkeep.versions_removed,
            upkeep.bytes_removed,
            stats.versions
        );
    }
    Ok(())
}
