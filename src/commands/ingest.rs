//! `fathom ingest DIR`: sync a folder into a collection, with a progress bar and a summary.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use fathom_ingest::{Event, FolderOptions, WalkOptions};
use fathom_store::Store;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::IngestArgs;

pub fn run(args: IngestArgs) -> anyhow::Result<()> {
    if !args.dir.is_dir() {
        anyhow::bail!("`{}` is not a folder", args.dir.display());
    }
    let model = Arc::new(super::load_model(&args.model)?);
    let rt = super::runtime()?;
    let cancel = super::cancel_on_ctrl_c(&rt);
    tracing::info!(dir = %args.dir.display(), collection = %args.target.collection, "ingesting (Ctrl-C stops after the sources in flight)");
    let options = FolderOptions {
        walk: WalkOptions {
            include: args.include.clone(),
            exclude: args.exclude.clone(),
            max_file_size: args.max_file_size,
            hidden: args.hidden,
            no_ignore: args.no_ignore,
            source_prefix: None,
        },
        chunk_tokens: args.chunk_tokens,
        overlap: args.overlap,
        json_field: args.json_field.clone(),
        ..FolderOptions::default()
    };
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} files  {msg}",
        )
        .expect("valid template"),
    );
    let started = Instant::now();
    let counters = std::sync::Mutex::new((0usize, 0usize));
    let on_event = |event: Event| match event {
        Event::Planned { to_read, .. } => bar.set_length(to_read as u64),
        Event::Read { .. } => bar.inc(1),
        Event::Embedded { chunks, tokens } => {
            let mut c = counters.lock().expect("counter lock");
            c.0 += chunks;
            c.1 += tokens;
            let rate = c.1 as f64 / started.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(format!("{} chunks, {:.0} tokens/s", c.0, rate));
        }
        Event::Written { .. } => {}
        Event::Warning { source_id, message } => {
            bar.println(format!("warning: {source_id}: {message}"))
        }
    };
    let summary = rt.block_on(async {
        let store = Store::new(&args.target.store.store);
        let collection = store
            .collection(&args.target.collection, &super::model_spec(&model))
            .await?;
        fathom_ingest::sync_folder(
            model.clone(),
            &collection,
            &args.dir,
            &options,
            &on_event,
            &cancel,
        )
        .await
        .map_err(anyhow::Error::from)
    });
    bar.finish_and_clear();
    let summary = summary.with_context(|| format!("ingesting {}", args.dir.display()))?;
    if args.target.store.json {
        println!(
            "{}",
            serde_json::json!({
                "added": summary.added, "updated": summary.updated, "deleted": summary.deleted,
                "unchanged": summary.unchanged, "skipped_binary": summary.skipped_binary,
                "skipped_too_large": summary.skipped_too_large, "skipped_no_text": summary.skipped_no_text,
                "errors": summary.errors.iter().map(|e| serde_json::json!({"source": e.path, "error": e.message})).collect::<Vec<_>>(),
                "chunks": summary.chunks, "tokens": summary.tokens, "seconds": summary.seconds,
                "interrupted": summary.interrupted,
            })
        );
    } else {
        for e in &summary.errors {
            eprintln!("error: {}: {}", e.path, e.message);
        }
        println!(
            "{} added, {} updated, {} deleted, {} unchanged, {} skipped ({} binary, {} too large, {} without text), {} errors; {} chunks, {} tokens in {:.1} s ({:.0} tokens/s){}",
            summary.added,
            summary.updated,
            summary.deleted,
            summary.unchanged,
            summary.skipped_binary + summary.skipped_too_large + summary.skipped_no_text,
            summary.skipped_binary,
            summary.skipped_too_large,
            summary.skipped_no_text,
            summary.errors.len(),
            summary.chunks,
            summary.tokens,
            summary.seconds,
            summary.tokens as f64 / summary.seconds.max(1e-3),
            if summary.interrupted { " — interrupted: run again to finish" } else { "" }
        );
    }
    Ok(())
}
