//! One module per transformer architecture, all behind [`Encoder`]: packed token ids in, packed
//! token embeddings out. Adding an architecture means adding a module and a line in [`load`].

use candle_nn::VarBuilder;

use crate::error::{ModelError, Result};
use crate::layout::ModelLayout;
use crate::ops::LinearPrecision;

pub mod bert;
pub mod modernbert;
pub mod qwen3;

/// The sequences of one forward pass, packed end to end with no padding.
#[derive(Debug, Clone, Default)]
pub struct PackedBatch {
    pub input_ids: Vec<u32>,
    pub type_ids: Vec<u32>,
    /// Length of each sequence, in packing order; they sum to `input_ids.len()`.
    pub seq_lens: Vec<usize>,
}

impl PackedBatch {
    pub fn tokens(&self) -> usize {
        self.input_ids.len()
    }
}

/// A transformer that turns packed token ids into packed token embeddings (`tokens × hidden`).
pub trait Encoder: Send + Sync + std::fmt::Debug {
    /// One forward pass, computed as `pass` says (the model's load options).
    fn forward(&self, batch: &PackedBatch, pass: crate::ops::Pass) -> Result<candle_core::Tensor>;

    /// The input embeddings (`vocab × hidden`), which a masked-LM head's decoder or a causal
    /// LM's head is often tied to.
    fn word_embeddings(&self) -> &candle_core::Tensor;
}

/// The `model_type` values this build can run, for error messages and `fathom model info`.
pub const SUPPORTED: &[&str] = &[
    "bert",
    "camembert",
    "distilbert",
    "modernbert",
    "mpnet",
    "qwen3",
    "roberta",
    "xlm-roberta",
];

/// Loads the transformer, each layer's linears converted to `precision` as the layer is read.
pub fn load(
    layout: &ModelLayout,
    vb: VarBuilder,
    precision: LinearPrecision,
) -> Result<Box<dyn Encoder>> {
    let config = &layout.config;
    let p = precision;
    match layout.model_type.as_str() {
        "bert" => Ok(Box::new(bert::Bert::load(config, vb, false, p)?)),
        "roberta" | "xlm-roberta" | "camembert" => {
            Ok(Box::new(bert::Bert::load(config, vb, true, p)?))
        }
        "distilbert" => Ok(Box::new(bert::Bert::load_distilbert(config, vb, p)?)),
        "mpnet" => Ok(Box::new(bert::Bert::load_mpnet(config, vb, p)?)),
        "modernbert" => Ok(Box::new(modernbert::ModernBert::load(config, vb, p)?)),
        "qwen3" => Ok(Box::new(qwen3::Qwen3::load(config, vb, p)?)),
        other => Err(ModelError::UnsupportedArchitecture {
            model_type: if other.is_empty() {
                "(none)".into()
            } else {
                other.into()
            },
            path: layout.config_path.clone(),
            supported: SUPPORTED.join(", "),
        }),
    }
}

/// Reads the fields an architecture needs from a transformers `config.json` into its typed config
/// (unknown keys ignored, a missing or mistyped required key named in the error).
pub(crate) fn parse_config<T: serde::de::DeserializeOwned>(
    config: &serde_json::Value,
    arch: &'static str,
) -> Result<T> {
    T::deserialize(config).map_err(|e| ModelError::BadConfig {
        arch,
        message: e.to_string(),
    })
}

/// A transformers activation name, parsed.
pub(crate) fn activation(name: &str) -> Result<crate::ops::HiddenAct> {
    crate::ops::HiddenAct::parse(name).ok_or_else(|| {
        ModelError::Unsupported(format!(
            "activation `{name}` (supported: gelu, gelu_new, relu, silu)"
        ))
    })
}

/// The prefix under which a checkpoint stores the base model's tensors: none for a plain
/// `BertModel`, `bert.` (or the like) for one saved from a task head.
pub(crate) fn weight_prefix(vb: &VarBuilder, probe: &str, candidates: &[&str]) -> Option<String> {
    std::iter::once("")
        .chain(candidates.iter().copied())
        .find(|p| vb.contains_tensor(&format!("{p}{probe}")))
        .map(str::to_string)
}
