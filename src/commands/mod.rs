pub mod embed;
pub mod eval;
pub mod ingest;
pub mod model;
pub mod search;
pub mod serve;
pub mod store;

use anyhow::Context;
use fathom_model::{DeviceSpec, Embedder, LoadOptions};

use crate::cli::ModelArgs;

/// Loads the model the arguments name (the default model when none).
pub fn load_model(args: &ModelArgs) -> anyhow::Result<Embedder> {
    load_model_capped(args, None)
}

/// [`load_model`] with the model's window capped at `max_input_tokens` (the server's limit).
pub fn load_model_capped(
    args: &ModelArgs,
    max_input_tokens: Option<usize>,
) -> anyhow::Result<Embedder> {
    let model = args.single()?.unwrap_or_else(fathom_model::default_model);
    let device: DeviceSpec = args.device.parse()?;
    let options = LoadOptions {
        device,
        precision: args.dtype.into(),
        max_batch_tokens: args.max_batch_tokens,
        max_input_tokens,
        ..LoadOptions::default()
    };
    tracing::info!(%model, %device, "loading model");
    Embedder::load(&model, &options).with_context(|| format!("loading model `{model}`"))
}

/// The cross-encoder `--rerank` names, if any, on the device and precision of `args`.
pub fn load_rerank_flag(
    rerank: Option<&str>,
    args: &ModelArgs,
) -> anyhow::Result<Option<fathom_model::Reranker>> {
    rerank
        .map(|name| load_reranker(name, &args.device, args.dtype, args.max_batch_tokens))
        .transpose()
}

/// Loads a cross-encoder on a device and precision.
pub fn load_reranker(
    model: &str,
    device: &str,
    dtype: crate::cli::Precision,
    max_batch_tokens: usize,
) -> anyhow::Result<fathom_model::Reranker> {
    let options = LoadOptions {
        device: device.parse()?,
        precision: dtype.into(),
        max_batch_tokens,
        ..LoadOptions::default()
    };
    tracing::info!(%model, "loading reranker");
    fathom_model::Reranker::load(model, &options)
        .with_context(|| format!("loading reranker `{model}`"))
}

/// The runtime for commands that use the store (lance is async).
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// The collection's model record for a loaded model.
pub fn model_spec(model: &Embedder) -> fathom_store::ModelSpec {
    fathom_store::ModelSpec {
        model: model.layout().name.clone(),
        dimension: model.dimension(),
        normalized: model.layout().normalize,
    }
}

/// Stops an ingest at the next source boundary on Ctrl-C (a second Ctrl-C exits at once).
pub fn cancel_on_ctrl_c(rt: &tokio::runtime::Runtime) -> fathom_ingest::CancellationToken {
    let flag = fathom_ingest::CancellationToken::new();
    let set = flag.clone();
    rt.spawn(async move {
        if stop_signal().await {
            eprintln!("\nstopping after the sources in flight (Ctrl-C again to abort)...");
            set.cancel();
            if stop_signal().await {
                std::process::exit(130);
            }
        }
    });
    flag
}

/// Ctrl-C, or (on Unix) SIGTERM, as a service manager stops a `--watch`; `false` if neither
/// can be listened for.
async fn stop_signal() -> bool {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            return tokio::select! {
                c = tokio::signal::ctrl_c() => c.is_ok(),
                t = term.recv() => t.is_some(),
            };
        }
    }
    tokio::signal::ctrl_c().await.is_ok()
}
