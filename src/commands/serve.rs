//! `fathom serve`: binds first (so /health can answer 503 while the model loads), then loads and
//! warms up the model on a blocking thread, then serves until Ctrl-C or SIGTERM.

use std::sync::Arc;

use anyhow::Context;
use fathom_server::{AppState, ServerConfig};

use crate::cli::{McpArgs, ServeArgs, ServiceArgs};

impl ServiceArgs {
    /// The server configuration these flags give, every other setting at its default.
    fn config(&self) -> anyhow::Result<ServerConfig> {
        fathom_server::IngestRoot::check_all(&self.ingest_root).map_err(anyhow::Error::msg)?;
        Ok(ServerConfig {
            store: self.store.clone(),
            store_options: self.access.options()?,
            default_collection: self.collection.clone(),
            ingest_roots: self.ingest_root.clone(),
            ..ServerConfig::default()
        })
    }

    /// Loads every model the flags name and installs each into `state` (warming it up): the
    /// `--model` entries by the kind their files declare, `--reranker` and `--sparse-model`, and
    /// the default embedder when no `--model` is an embedder. The first embedder is installed
    /// last: that makes the server ready (GET /health 200) with every model in place. Blocks:
    /// call it from a blocking thread.
    fn load_into(&self, state: &AppState) -> anyhow::Result<()> {
        let options = fathom_model::LoadOptions {
            device: self.model.device.parse()?,
            precision: self.model.dtype.into(),
            max_batch_tokens: self.model.max_batch_tokens,
            max_input_tokens: Some(self.max_input_tokens),
            ..fathom_model::LoadOptions::default()
        };
        let mut entries: Vec<(Option<String>, String)> =
            self.model.model.iter().map(|m| named(m)).collect();
        entries.extend(self.reranker.iter().map(|m| named(m)));
        entries.extend(self.sparse_model.iter().map(|m| named(m)));
        let mut embedders = Vec::new();
        for (name, model) in entries {
            let layout = fathom_model::ModelLayout::open(&model)
                .with_context(|| format!("reading model `{model}`"))?;
            tracing::info!(%model, kind = %layout.kind, "loading model");
            let loading = || format!("loading {} `{model}`", layout.kind);
            match layout.kind {
                fathom_model::ModelKind::Embedder => {
                    let m = fathom_model::Embedder::from_layout(layout.clone(), &options)
                        .with_context(loading)?;
                    embedders.push((name, Arc::new(m)));
                }
                fathom_model::ModelKind::Reranker => {
                    let m = fathom_model::Reranker::from_layout(layout.clone(), &options)
                        .with_context(loading)?;
                    state
                        .install_reranker(Arc::new(m), name)
                        .map_err(|e| anyhow::anyhow!("installing reranker `{model}`: {e}"))?;
                }
                fathom_model::ModelKind::Sparse => {
                    let m = fathom_model::SparseEncoder::from_layout(layout.clone(), &options)
                        .with_context(loading)?;
                    state
                        .install_sparse(Arc::new(m), name)
                        .map_err(|e| anyhow::anyhow!("installing sparse model `{model}`: {e}"))?;
                }
            }
        }
        if embedders.is_empty() {
            let model = fathom_model::default_model();
            let m = fathom_model::Embedder::load(&model, &options)
                .with_context(|| format!("loading model `{model}`"))?;
            embedders.push((None, Arc::new(m)));
        }
        let (default_name, default) = embedders.remove(0);
        for (name, model) in embedders {
            state
                .install_embedder(model, name)
                .map_err(|e| anyhow::anyhow!("warming an embedder up: {e}"))?;
        }
        state
            .install_model_named(default, default_name)
            .map_err(|e| anyhow::anyhow!("warming the model up: {e}"))?;
        Ok(())
    }
}

/// `NAME=MODEL` as (name, model); a plain MODEL (a folder or hub id, which may hold `=` in a
/// path but never in a name) as (None, model).
fn named(spec: &str) -> (Option<String>, String) {
    match spec.split_once('=') {
        Some((name, model)) if !model.is_empty() && fathom_server::is_plain_name(name) => {
            (Some(name.to_string()), model.to_string())
        }
        _ => (None, spec.to_string()),
    }
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let base = args.service.config()?;
    let watched: Vec<_> = args.watch.iter().map(|w| w.root.clone()).collect();
    fathom_server::IngestRoot::check_all_for(&watched, "--watch").map_err(anyhow::Error::msg)?;
    let config = ServerConfig {
        api_key: args.api_key.clone().filter(|k| !k.is_empty()),
        ingest_hidden: args.ingest_hidden,
        max_ingest_jobs: args.max_ingest_jobs.max(1),
        max_queued_jobs: args.max_queued_jobs,
        parse: args.parse.limits()?,
        max_body_bytes: args.max_body_bytes,
        max_inputs: args.max_inputs.max(1),
        max_document_bytes: args.max_document_bytes,
        max_metadata_bytes: args.max_metadata_bytes,
        max_filters: args.max_filters,
        max_filter_bytes: args.max_filter_bytes,
        shutdown_deadline: args.shutdown_deadline.0,
        read_timeout: args.read_timeout.0,
        queue_capacity: args.queue_capacity.max(1),
        batch_tokens: args.batch_tokens.max(1),
        request_timeout: args.request_timeout.0,
        cors_origins: args.cors_origin.clone(),
        watches: args.watch.clone(),
        watch_quiet: args.watch_quiet.0,
        mcp_any_host: !is_loopback(&args.host),
        ..base
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let address = format!("{}:{}", args.host, args.port);
        let listener = tokio::net::TcpListener::bind(&address)
            .await
            .with_context(|| format!("listening on {address} (is another server using the port? pick one with --port)"))?;
        let local = listener.local_addr()?;
        println!("fathom listening on http://{local}");
        let state = AppState::new(config);
        let loading = state.clone();
        let service = args.service.clone();
        let loader = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            service.load_into(&loading)?;
            tracing::info!("models loaded; ready");
            eprintln!("fathom ready on http://{local}");
            Ok(())
        });
        let server = fathom_server::serve(listener, state, fathom_server::shutdown_signal());
        tokio::pin!(server);
        tokio::select! {
            served = &mut server => served.context("serving HTTP")?,
            loaded = loader => {
                loaded.context("the model loader stopped")??;
                server.await.context("serving HTTP")?;
            }
        }
        Ok(())
    })
}

/// Whether `host` (the --host to listen on) is reachable only from this machine.
fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `fathom mcp`: the server's state without HTTP, its MCP tools on stdin/stdout. Logs go to
/// stderr; stdout carries only the protocol.
pub fn mcp(args: McpArgs) -> anyhow::Result<()> {
    let config = args.service.config()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let state = AppState::new(config);
        let installing = state.clone();
        let service = args.service.clone();
        tokio::task::spawn_blocking(move || service.load_into(&installing))
            .await
            .context("loading the model")??;
        tracing::info!("MCP server ready on stdio");
        fathom_server::serve_mcp_stdio(state.clone())
            .await
            .context("serving MCP on stdio")?;
        state.jobs.cancel_all();
        state.jobs.wait_all().await;
        Ok(())
    })
}
