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
            confine: !args.follow_links,
            source_prefix: None,
            shard: args.shard,
        },
        chunk_tokens: args.chunking.chunk_tokens,
        overlap: args.chunking.overlap,
        max_chunks_per_file: args.max_chunks_per_file,
        json_field: args.json_field.clone(),
        parse: args.parse.limits()?,
        commit_every: args.commit_every.0,
        ..FolderOptions::default()
    };
    rt.block_on(async {
        let store = args.target.store.open()?;
        let collection = store
            .collection(&args.target.collection, &super::model_spec(&model))
            .await?;
        if !args.watch {
            let summary = sync_once(&args, model, &collection, &options, &cancel).await?;
            print_summary(&summary, args.target.store.json);
            return Ok(());
        }
        let quiet = args.watch_quiet.0;
        let mut first = true;
        tracing::info!(dir = %args.dir.display(), "watching for changes (Ctrl-C stops)");
        // A store inside the folder must not wake the watch with its own commits.
        let ignore: Vec<std::path::PathBuf> = store.local_folder().into_iter().collect();
        fathom_ingest::watch_folder(&args.dir, quiet, args.hidden, &ignore, &cancel, || {
            let show_all = std::mem::take(&mut first);
            let model = model.clone();
            let (args, collection, options, cancel) = (&args, &collection, &options, &cancel);
            async move {
                // A failed sync is reported and the watch goes on: the next change retries it.
                match sync_once(args, model, collection, options, cancel).await {
                    Ok(summary) if show_all || changed_anything(&summary) => {
                        print_summary(&summary, args.target.store.json)
                    }
                    Ok(_) => {}
                    Err(e) => eprintln!("error: {e:#}"),
                }
            }
        })
        .await?;
        Ok(())
    })
}

/// One sync of the folder, with a progress bar; an early stop prints what was done and fails.
async fn sync_once(
    args: &IngestArgs,
    model: Arc<fathom_model::Embedder>,
    collection: &fathom_store::Collection,
    options: &FolderOptions,
    cancel: &fathom_ingest::CancellationToken,
) -> anyhow::Result<Summary> {
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
        // Each commit is a point a later run (or one after a crash) starts from; tests wait on
        // this line instead of guessing how long an ingest takes.
        Event::Written { sources, chunks } => {
            tracing::info!(sources, chunks, "committed");
        }
        Event::Warning { source_id, message } => {
            bar.println(format!("warning: {source_id}: {message}"))
        }
    };
    let outcome =
        fathom_ingest::sync_folder(model, collection, &args.dir, options, &on_event, cancel).await;
    bar.finish_and_clear();
    match outcome {
        Ok(summary) => Ok(summary),
        // Stopped early: what was done is committed; show it, then fail.
        Err(IngestError::Incomplete { reason, summary }) => {
            print_summary(&summary, args.target.store.json);
            anyhow::bail!(
                "ingesting {} stopped early ({reason}); the sources done were committed and nothing was deleted: run it again to finish",
                args.dir.display()
            );
        }
        Err(other) => Err(anyhow::Error::from(other))
            .with_context(|| format!("ingesting {}", args.dir.display())),
    }
}

fn changed_anything(s: &Summary) -> bool {
    s.added + s.updated + s.deleted + s.failed() > 0 || s.interrupted
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
    if summary
        .errors
        .iter()
        .any(|e| e.kind == fathom_ingest::ProblemKind::OutsideRoot)
    {
        eprintln!("hint: --follow-links reads links that lead outside the folder");
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
    // Per format, once more than one kind of file was read: what a mixed folder held.
    if summary.formats.len() > 1 || summary.formats.values().any(|c| c.skipped + c.failed > 0) {
        let parts: Vec<String> = summary
            .formats
            .iter()
            .map(|(name, c)| {
                let mut part = format!("{name} {}", c.read);
                if c.skipped > 0 {
                    part.push_str(&format!(" (+{} skipped)", c.skipped));
                }
                if c.failed > 0 {
                    part.push_str(&format!(" (+{} failed)", c.failed));
                }
                part
            })
            .collect();
        println!("read per format: {}", parts.join(", "));
    }
}
