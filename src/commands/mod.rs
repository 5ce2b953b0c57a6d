pub mod embed;
pub mod model;

use anyhow::Context;
use fathom_model::{DeviceSpec, Embedder, LoadOptions};

use crate::cli::ModelArgs;

/// Loads the model the arguments name (the default model when none).
pub fn load_model(args: &ModelArgs) -> anyhow::Result<Embedder> {
    let model = args
        .model
        .clone()
        .unwrap_or_else(fathom_model::default_model);
    let device: DeviceSpec = args.device.parse()?;
    let options = LoadOptions {
        device,
        precision: args.dtype.into(),
        max_batch_tokens: args.max_batch_tokens,
    };
    tracing::info!(%model, %device, "loading model");
    Embedder::load(&model, &options).with_context(|| format!("loading model `{model}`"))
}
