//! The sentence-transformers folder layout: `modules.json` and what each module reads
//! (`config.json`, `tokenizer.json`, weights, `1_Pooling/config.json` in its older boolean form and
//! newer `pooling_mode` form, `2_Dense`, Normalize, `sentence_bert_config.json`,
//! `config_sentence_transformers.json`, `tokenizer_config.json`). A folder without `modules.json` is
//! a bare transformers model and gets the sentence-transformers defaults (mean pooling).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};
use crate::files::ModelFiles;

/// How token embeddings become one sentence embedding. Several modes concatenate, in the order
/// sentence-transformers uses: cls, max, mean, mean_sqrt_len, weighted mean, last token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PoolingMode {
    Cls,
    Max,
    Mean,
    MeanSqrtLen,
    WeightedMean,
    LastToken,
}

impl PoolingMode {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "cls" | "cls_token" => Self::Cls,
            "max" | "max_tokens" => Self::Max,
            "mean" | "mean_tokens" => Self::Mean,
            "mean_sqrt_len_tokens" | "mean_sqrt_len" => Self::MeanSqrtLen,
            "weightedmean" | "weighted_mean" | "weightedmean_tokens" => Self::WeightedMean,
            "lasttoken" | "last_token" => Self::LastToken,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Cls => "cls",
            Self::Max => "max",
            Self::Mean => "mean",
            Self::MeanSqrtLen => "mean_sqrt_len_tokens",
            Self::WeightedMean => "weightedmean",
            Self::LastToken => "lasttoken",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolingConfig {
    pub modes: Vec<PoolingMode>,
    /// When false, prompt tokens are left out of the pooled tokens (as sentence-transformers does).
    pub include_prompt: bool,
}

impl Default for PoolingConfig {
    fn default() -> Self {
        Self {
            modes: vec![PoolingMode::Mean],
            include_prompt: true,
        }
    }
}

/// The activation of a `Dense` module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Identity,
    Tanh,
    Relu,
    Gelu,
    Sigmoid,
    Silu,
}

impl Activation {
    fn parse(name: &str) -> Option<Self> {
        let short = name.rsplit('.').next().unwrap_or(name);
        Some(match short.to_ascii_lowercase().as_str() {
            "identity" => Self::Identity,
            "tanh" => Self::Tanh,
            "relu" => Self::Relu,
            "gelu" => Self::Gelu,
            "sigmoid" => Self::Sigmoid,
            "silu" | "swish" => Self::Silu,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DenseLayout {
    pub dir: String,
    pub in_features: usize,
    pub out_features: usize,
    pub bias: bool,
    pub activation: Activation,
    #[serde(skip)]
    pub weights: PathBuf,
}

/// Everything read from a model folder, before any weights are loaded.
#[derive(Debug, Clone, Serialize)]
pub struct ModelLayout {
    pub name: String,
    pub model_type: String,
    #[serde(skip)]
    pub config: serde_json::Value,
    #[serde(skip)]
    pub config_path: PathBuf,
    #[serde(skip)]
    pub tokenizer_path: PathBuf,
    #[serde(skip)]
    pub weights: Vec<PathBuf>,
    /// Width of the transformer's token embeddings.
    pub hidden_size: usize,
    pub max_seq_length: usize,
    pub do_lower_case: bool,
    pub pooling: PoolingConfig,
    pub dense: Vec<DenseLayout>,
    pub normalize: bool,
    pub prompts: BTreeMap<String, String>,
    pub default_prompt_name: Option<String>,
    /// Width of the final sentence embedding.
    pub dimension: usize,
}

#[derive(Deserialize)]
struct ModuleEntry {
    path: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize, Default)]
struct SentenceBertConfig {
    max_seq_length: Option<usize>,
    #[serde(default)]
    do_lower_case: bool,
}

#[derive(Deserialize, Default)]
struct SentenceTransformersConfig {
    #[serde(default)]
    prompts: BTreeMap<String, String>,
    default_prompt_name: Option<String>,
}

/// What every architecture's `config.json` says about its shape (the rest is read by the
/// architecture's own config type in `arch`).
#[derive(Deserialize)]
struct TransformerConfig {
    #[serde(default)]
    model_type: String,
    hidden_size: Option<usize>,
    /// DistilBERT's name for `hidden_size`.
    dim: Option<usize>,
    /// T5-style name for `hidden_size`.
    d_model: Option<usize>,
    max_position_embeddings: Option<usize>,
}

/// `tokenizer_config.json`: only the length limit is read.
#[derive(Deserialize)]
struct TokenizerConfig {
    /// transformers writes a huge float (1e30) for "no limit".
    model_max_length: Option<f64>,
}

#[derive(Deserialize)]
struct DenseConfig {
    in_features: usize,
    out_features: usize,
    #[serde(default = "default_true")]
    bias: bool,
    #[serde(default)]
    activation_function: Option<String>,
}

fn default_true() -> bool {
    true
}

pub(crate) fn read_json<T: DeserializeOwned>(path: &Path, what: &'static str) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
    serde_json::from_str(&text).map_err(|source| ModelError::Json {
        path: path.to_path_buf(),
        what,
        source,
    })
}

fn join(dir: &str, file: &str) -> String {
    if dir.is_empty() {
        file.to_string()
    } else {
        format!("{}/{file}", dir.trim_end_matches('/'))
    }
}

impl ModelLayout {
    /// Reads every configuration file of the model and fetches (for hub models) the tokenizer and
    /// the weights, so that loading afterwards reads only local files.
    pub fn read(files: &mut ModelFiles) -> Result<Self> {
        Self::read_with(files, true)
    }

    /// Like [`ModelLayout::read`], but leaves the weights where they are (`weights` stays empty):
    /// enough to describe a model without downloading it.
    pub fn read_config_only(files: &mut ModelFiles) -> Result<Self> {
        Self::read_with(files, false)
    }

    fn read_with(files: &mut ModelFiles, fetch_weights: bool) -> Result<Self> {
        let modules: Vec<ModuleEntry> = match files.optional("modules.json")? {
            Some(path) => read_json(&path, "sentence-transformers modules.json")?,
            None => vec![
                ModuleEntry {
                    path: String::new(),
                    kind: "Transformer".into(),
                },
                ModuleEntry {
                    path: "1_Pooling".into(),
                    kind: "Pooling".into(),
                },
            ],
        };

        let mut transformer_dir = None;
        let mut pooling = None;
        let mut dense = Vec::new();
        let mut normalize = false;
        for module in &modules {
            let kind = module.kind.rsplit('.').next().unwrap_or(&module.kind);
            match kind {
                "Transformer" if transformer_dir.is_none() => {
                    transformer_dir = Some(module.path.clone())
                }
                "Pooling" => {
                    pooling = Some(match files.optional(&join(&module.path, "config.json"))? {
                        Some(path) => parse_pooling(&read_json(&path, "pooling config")?, &path)?,
                        None => PoolingConfig::default(),
                    })
                }
                "Dense" => dense.push(read_dense(files, &module.path, fetch_weights)?),
                "Normalize" => normalize = true,
                other => {
                    return Err(ModelError::Unsupported(format!(
                        "sentence-transformers module `{other}` ({}) is not supported; fathom runs Transformer, Pooling, Dense and Normalize modules",
                        module.kind
                    )))
                }
            }
        }
        let tdir = transformer_dir.ok_or_else(|| {
            ModelError::Unsupported("modules.json names no Transformer module".into())
        })?;

        let config_path = files.required(&join(&tdir, "config.json"))?;
        let config: serde_json::Value = read_json(&config_path, "transformers config.json")?;
        let shape = TransformerConfig::deserialize(&config).map_err(|source| ModelError::Json {
            path: config_path.clone(),
            what: "transformers config.json",
            source,
        })?;
        let model_type = shape.model_type;
        let hidden_size = shape
            .hidden_size
            .or(shape.dim)
            .or(shape.d_model)
            .ok_or_else(|| {
                ModelError::Unsupported(format!("`{}` has no hidden_size", config_path.display()))
            })?;

        let tokenizer_path = files.required(&join(&tdir, "tokenizer.json"))?;
        let weights = if fetch_weights {
            transformer_weights(files, &tdir)?
        } else {
            Vec::new()
        };

        let sbert: SentenceBertConfig =
            match files.optional(&join(&tdir, "sentence_bert_config.json"))? {
                Some(path) => read_json(&path, "sentence_bert_config.json")?,
                None => SentenceBertConfig::default(),
            };
        let model_max_length = match files.optional(&join(&tdir, "tokenizer_config.json"))? {
            Some(path) => read_json::<TokenizerConfig>(&path, "tokenizer_config.json")?
                .model_max_length
                .filter(|v| *v >= 1.0 && *v < 1e9)
                .map(|v| v as usize),
            None => None,
        };
        let max_positions = shape.max_position_embeddings;
        // sentence-transformers: the explicit max_seq_length, else the smaller of the tokenizer's
        // model_max_length and the model's position table.
        let max_seq_length = sbert
            .max_seq_length
            .or(match (model_max_length, max_positions) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            })
            .unwrap_or(512);

        let st_config: SentenceTransformersConfig =
            match files.optional(&join(&tdir, "config_sentence_transformers.json"))? {
                Some(path) => read_json(&path, "config_sentence_transformers.json")?,
                None => SentenceTransformersConfig::default(),
            };

        let pooling = pooling.unwrap_or_default();
        let pooled_width = hidden_size * pooling.modes.len();
        let mut width = pooled_width;
        for d in &dense {
            if d.in_features != width {
                return Err(ModelError::Unsupported(format!(
                    "Dense module `{}` takes {} features but receives {width}",
                    d.dir, d.in_features
                )));
            }
            width = d.out_features;
        }

        Ok(Self {
            name: files.source().display_name(),
            model_type,
            config,
            config_path,
            tokenizer_path,
            weights,
            hidden_size,
            max_seq_length,
            do_lower_case: sbert.do_lower_case,
            pooling,
            dense,
            normalize,
            prompts: st_config.prompts,
            default_prompt_name: st_config.default_prompt_name.filter(|n| !n.is_empty()),
            dimension: width,
        })
    }
}

fn parse_pooling(value: &serde_json::Value, path: &Path) -> Result<PoolingConfig> {
    let bad = |msg: String| ModelError::Unsupported(format!("`{}`: {msg}", path.display()));
    let include_prompt = value
        .get("include_prompt")
        .and_then(|v| v.as_bool())
        .unwrap_or(true);
    let mut modes = Vec::new();
    match value.get("pooling_mode") {
        Some(serde_json::Value::String(name)) => modes.push(
            PoolingMode::parse(name)
                .ok_or_else(|| bad(format!("unknown pooling_mode `{name}`")))?,
        ),
        Some(serde_json::Value::Array(names)) => {
            for name in names {
                let name = name.as_str().unwrap_or_default();
                modes.push(
                    PoolingMode::parse(name)
                        .ok_or_else(|| bad(format!("unknown pooling_mode `{name}`")))?,
                );
            }
        }
        Some(other) => return Err(bad(format!("pooling_mode must be a string, got {other}"))),
        None => {
            // The older form: one boolean per mode, concatenated in this order when several are set.
            for (key, mode) in [
                ("pooling_mode_cls_token", PoolingMode::Cls),
                ("pooling_mode_max_tokens", PoolingMode::Max),
                ("pooling_mode_mean_tokens", PoolingMode::Mean),
                (
                    "pooling_mode_mean_sqrt_len_tokens",
                    PoolingMode::MeanSqrtLen,
                ),
                (
                    "pooling_mode_weightedmean_tokens",
                    PoolingMode::WeightedMean,
                ),
                ("pooling_mode_lasttoken", PoolingMode::LastToken),
            ] {
                if value.get(key).and_then(|v| v.as_bool()) == Some(true) {
                    modes.push(mode);
                }
            }
        }
    }
    if modes.is_empty() {
        return Err(bad("no pooling mode is set".into()));
    }
    Ok(PoolingConfig {
        modes,
        include_prompt,
    })
}

fn read_dense(files: &mut ModelFiles, dir: &str, fetch_weights: bool) -> Result<DenseLayout> {
    let config_path = files.required(&join(dir, "config.json"))?;
    let config: DenseConfig = read_json(&config_path, "Dense config")?;
    let activation_name = config
        .activation_function
        .unwrap_or_else(|| "torch.nn.modules.linear.Identity".into());
    let activation = Activation::parse(&activation_name).ok_or_else(|| {
        ModelError::Unsupported(format!(
            "Dense activation `{activation_name}` in `{}` (supported: Identity, Tanh, ReLU, GELU, Sigmoid, SiLU)",
            config_path.display()
        ))
    })?;
    let weights = if !fetch_weights {
        PathBuf::new()
    } else {
        match files.optional(&join(dir, "model.safetensors"))? {
            Some(path) => path,
            None => return Err(no_safetensors(files, dir)),
        }
    };
    Ok(DenseLayout {
        dir: dir.to_string(),
        in_features: config.in_features,
        out_features: config.out_features,
        bias: config.bias,
        activation,
        weights,
    })
}

fn no_safetensors(files: &ModelFiles, dir: &str) -> ModelError {
    let name = files.source().display_name();
    let where_ = if dir.is_empty() {
        format!("`{name}`")
    } else {
        format!("`{name}/{dir}`")
    };
    if files.has(&join(dir, "pytorch_model.bin")) {
        ModelError::Unsupported(format!(
            "{where_} has only pytorch_model.bin; convert it to model.safetensors first (e.g. with the `safetensors` convert script, or `model.save_pretrained(..., safe_serialization=True)` in Python)"
        ))
    } else {
        ModelError::MissingFile {
            dir: PathBuf::from(name),
            file: join(dir, "model.safetensors"),
            hint: "copy the complete model folder, run scripts/fetch-model.sh, or pass --model <hub id>".into(),
        }
    }
}

fn transformer_weights(files: &mut ModelFiles, dir: &str) -> Result<Vec<PathBuf>> {
    if let Some(path) = files.optional(&join(dir, "model.safetensors"))? {
        return Ok(vec![path]);
    }
    if let Some(index) = files.optional(&join(dir, "model.safetensors.index.json"))? {
        let value: serde_json::Value = read_json(&index, "safetensors index")?;
        let mut shards: Vec<String> = value
            .get("weight_map")
            .and_then(|m| m.as_object())
            .map(|m| {
                m.values()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        shards.sort();
        shards.dedup();
        if shards.is_empty() {
            return Err(ModelError::Unsupported(format!(
                "`{}` lists no shards",
                index.display()
            )));
        }
        return shards
            .iter()
            .map(|shard| files.required(&join(dir, shard)))
            .collect();
    }
    Err(no_safetensors(files, dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pooling_both_forms() {
        let p = Path::new("x");
        let new = parse_pooling(
            &json!({"pooling_mode": "lasttoken", "include_prompt": false}),
            p,
        )
        .unwrap();
        assert_eq!(new.modes, vec![PoolingMode::LastToken]);
        assert!(!new.include_prompt);
        let old = parse_pooling(
            &json!({"pooling_mode_mean_tokens": true, "pooling_mode_cls_token": true}),
            p,
        )
        .unwrap();
        assert_eq!(old.modes, vec![PoolingMode::Cls, PoolingMode::Mean]);
        assert!(old.include_prompt);
        let err = parse_pooling(&json!({"pooling_mode": "median"}), p).unwrap_err();
        assert!(err.to_string().contains("unknown pooling_mode `median`"));
        assert!(parse_pooling(&json!({}), p).is_err());
    }

    #[test]
    fn activations_from_torch_names() {
        assert_eq!(
            Activation::parse("torch.nn.modules.activation.Tanh"),
            Some(Activation::Tanh)
        );
        assert_eq!(
            Activation::parse("torch.nn.modules.linear.Identity"),
            Some(Activation::Identity)
        );
        assert_eq!(Activation::parse("torch.nn.Mish"), None);
    }
}
