//! `fathom ingest DIR`: sync a folder into a collection, with a progress bar and a summary.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use fathom_ingest::{Event, FolderOptions, IngestError, Summary, WalkOptions};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::IngestArgs;

pub fn run(args: IngestArgs) -> anyhow::Result<()> {
    if !args.dir.is_dir() {
        anyhow::bail!("`{}` is not a folder", args.dir.display());
    }
    if !(args.commit_every >= 0.0 && args.commit_every.is_finite()) {
        anyhow::bail!("--commit-every must be a number of seconds");
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
            confine: false,
            source_prefix: None,
            shard: args.shard,
        },
        chunk_tokens: args.chunk_tokens,
        overlap: args.overlap,
        max_chunks_per_file: args.max_chunks_per_file,
        json_field: args.json_field.clone(),
        parse: args.parse.limits()?,
        commit_every: std::time::Duration::from_secs_f64(args.commit_every),
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
        let store = args.target.store.open()?;
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
    let summary = match summary {
        Ok(summary) => summary,
        Err(e) => match e.downcast::<IngestError>() {
            // Stopped early: what was done is committed; show it, then fail.
            Ok(IngestError::Incomplete { reason, summary }) => {
                print_summary(&summary, args.target.store.json);
                anyhow::bail!(
                    "ingesting {} stopped early ({reason}); the sources done were committed and nothing was deleted: run it again to finish",
                    args.dir.display()
                );
            }
            Ok(other) => {
                return Err(anyhow::Error::from(other))
                    .with_context(|| format!("ingesting {}", args.dir.display()))
            }
            Err(other) => {
                return Err(other).with_context(|| format!("ingesting {}", args.dir.display()))
            }
        },
    };
    print_summary(&summary, args.target.store.json);
    Ok(())
}

fn print_summary(summary: &Summary, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string(summary).expect("a summary is JSON")
        );
        return;
    }
    for e in &summary.errors {
        let level = if e.kind.is_warning() {
            "warning"
        } else {
            "error"
        };
        eprintln!("{level}: {}: {}", e.path, e.message);
    }
    let kept = if summary.kept > 0 {
        format!(
            " ({} kept although not seen: their folder could not be listed)",
            summary.kept
        )
    } else {
        String::new()
    };
    println!(
        "{} added, {} updated, {} deleted{kept}, {} unchanged, {} skipped ({} binary, {} too large, {} without text), {} errors; {} chunks, {} tokens in {:.1} s ({:.0} tokens/s){}",
        summary.added,
        summary.updated,
        summary.deleted,
        summary.unchanged,
        summary.skipped(),
        summary.skipped_binary,
        summary.skipped_too_large,
        summary.skipped_no_text,
        summary.failed(),
        summary.chunks,
        summary.tokens,
        summary.seconds,
        summary.tokens as f64 / summary.seconds.max(1e-3),
        if summary.interrupted { " — interrupted: run again to finish" } else { "" }
    );
}
