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
    /// A torch activation by class path or name (`torch.nn.modules.activation.Sigmoid`, `ReLU`).
    pub fn parse(name: &str) -> Option<Self> {
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

/// What a model folder computes, read from its files (see [`ModelLayout::kind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// A sentence-transformers `SentenceTransformer`: one dense vector per text.
    Embedder,
    /// A `CrossEncoder`: one relevance score (or one per label) per (query, document) pair.
    Reranker,
    /// A `SparseEncoder` (SPLADE): one weight per vocabulary token, most of them zero.
    Sparse,
}

impl ModelKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Embedder => "embedder",
            Self::Reranker => "reranker",
            Self::Sparse => "sparse",
        }
    }
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// sentence-transformers' `SpladePooling`: `activation(logits)` then `log1p`, reduced over the
/// tokens by max (or sum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SparsePooling {
    /// `true`: sum over tokens; `false`: max (every SPLADE model on the hub).
    pub sum: bool,
    /// `true`: `log1p(relu(x))` before the final `log1p` (OpenSearch's models); `false`: `relu`.
    pub log1p_relu: bool,
}

impl Activation {
    fn is_identity(&self) -> bool {
        *self == Self::Identity
    }

    /// One value through the activation, as torch defines it (GELU: the exact, erf-based one).
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Self::Identity => x,
            Self::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Self::Tanh => x.tanh(),
            Self::Relu => x.max(0.0),
            Self::Gelu => {
                let x = x as f64;
                let erf = candle_core::cpu::erf::erf_f64(x / std::f64::consts::SQRT_2);
                (0.5 * x * (1.0 + erf)) as f32
            }
            Self::Silu => x / (1.0 + (-x).exp()),
        }
    }
}

/// sentence-transformers' `LogitScore`: a causal language model (Qwen3-Reranker and the like)
/// scored by its next-token logits after the pair is rendered through its chat template: the
/// logit of `true_token_id` ("yes"), minus that of `false_token_id` ("no") when there is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LogitScore {
    pub true_token_id: u32,
    pub false_token_id: Option<u32>,
}

/// A static-embedding model's table (see the `lookup` module): sentence-transformers'
/// `StaticEmbedding` or a Model2Vec model.
#[derive(Debug, Clone, Serialize)]
pub struct StaticLayout {
    #[serde(skip)]
    pub weights: PathBuf,
    /// `true`: a Model2Vec model (its table is `embeddings`), encoded as Model2Vec's
    /// `StaticModel.encode` encodes; `false`: as sentence-transformers' `StaticEmbedding`.
    pub model2vec: bool,
    /// Model2Vec's `max_length` (tokens a text is cut to; `None`: no cut).
    pub max_length: Option<usize>,
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
    /// Width of the final sentence embedding; for a reranker its number of labels, for a sparse
    /// model its vocabulary size.
    pub dimension: usize,
    pub kind: ModelKind,
    /// A reranker's activation on its logits (`activation_fn`: Sigmoid for one label by default,
    /// else Identity), as `CrossEncoder.predict` applies it; Identity for other kinds.
    #[serde(skip_serializing_if = "Activation::is_identity")]
    pub score_activation: Activation,
    /// A sparse model's pooling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sparse: Option<SparsePooling>,
    /// Whether the model gets the tokenizer's token type ids (a text pair's second text is type
    /// 1); `false`: all zero, as transformers runs a model whose tokenizer does not return them.
    #[serde(skip)]
    pub token_type_ids: bool,
    /// A causal-LM reranker's scoring (its `LogitScore` module).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logit_score: Option<LogitScore>,
    /// The tokenizer's chat template (`chat_template.jinja`, else `tokenizer_config.json`'s
    /// `chat_template`), through which a causal-LM reranker renders each pair.
    #[serde(skip)]
    pub chat_template: Option<String>,
    /// sentence-transformers' message format for the template: `false` (flat) gives each message
    /// its text as `content`, `true` (structured) a list of `{"type": "text", "text"}` parts.
    #[serde(skip)]
    pub structured_messages: bool,
    /// The tokenizer's special tokens by name (`eos_token`, `bos_token`, ...), which chat
    /// templates may read.
    #[serde(skip)]
    pub special_tokens: BTreeMap<String, String>,
    /// A static-embedding model's table (no transformer: `model_type` is `static`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub static_model: Option<StaticLayout>,
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
    /// sentence-transformers 6: `sequence-classification` (a cross-encoder), `fill-mask` (SPLADE),
    /// `text-generation` (a causal-LM cross-encoder).
    transformer_task: Option<String>,
    /// sentence-transformers 6: per input modality, how the model is called; `message.format` is
    /// `flat` or `structured`.
    modality_config: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
struct SentenceTransformersConfig {
    #[serde(default)]
    prompts: BTreeMap<String, String>,
    default_prompt_name: Option<String>,
    /// `SentenceTransformer`, `CrossEncoder` or `SparseEncoder` (sentence-transformers 5+).
    model_type: Option<String>,
    /// A cross-encoder's activation (sentence-transformers 6), a torch class path.
    activation_fn: Option<String>,
}

#[derive(Deserialize)]
struct LogitScoreConfig {
    true_token_id: u32,
    false_token_id: Option<u32>,
    module_input_name: Option<String>,
}

#[derive(Deserialize, Default)]
struct SpladeConfig {
    pooling_strategy: Option<String>,
    activation_function: Option<String>,
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

/// `tokenizer_config.json`: the length limit, and what decides whether the model gets token
/// type ids.
#[derive(Deserialize)]
struct TokenizerConfig {
    /// transformers writes a huge float (1e30) for "no limit".
    model_max_length: Option<f64>,
    model_input_names: Option<Vec<String>>,
    tokenizer_class: Option<String>,
    /// A template string, or a list of `{"name", "template"}` (the one named `default` is used).
    chat_template: Option<serde_json::Value>,
    /// Everything else: the special tokens (`eos_token`: a string, or `{"content": ...}`).
    #[serde(flatten)]
    rest: BTreeMap<String, serde_json::Value>,
}

impl TokenizerConfig {
    /// The `…_token` entries that name a token (a string, or an added token's `content`).
    fn special_tokens(&self) -> BTreeMap<String, String> {
        self.rest
            .iter()
            .filter(|(k, _)| k.ends_with("_token"))
            .filter_map(|(k, v)| {
                let token = v
                    .as_str()
                    .or_else(|| v.get("content").and_then(|c| c.as_str()))?;
                Some((k.clone(), token.to_string()))
            })
            .collect()
    }

    /// Whether transformers hands the model `token_type_ids` (which matter for text pairs, the
    /// second text's being 1): when `model_input_names` lists them, else unless the tokenizer is
    /// transformers 5's generic `TokenizersBackend`, whose inputs are ids and mask only. Model
    /// tokenizers such as `BertTokenizer` pass them.
    fn token_type_ids(&self) -> bool {
        match &self.model_input_names {
            Some(names) => names.iter().any(|n| n == "token_type_ids"),
            None => self.tokenizer_class.as_deref() != Some("TokenizersBackend"),
        }
    }
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
    /// [`ModelLayout::read`] for a folder or hub id (`org/name[@revision]`): what every kind of
    /// model's `load` starts with, and how a caller learns a model's kind before loading it.
    pub fn open(model: &str) -> Result<Self> {
        let source = crate::files::ModelSource::parse(model)?;
        Self::read(&mut ModelFiles::open(&source)?)
    }

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
        let Modules {
            transformer_dir,
            static_dir,
            pooling,
            dense,
            normalize,
            mut sparse,
            logit_score,
        } = Modules::read(files, fetch_weights)?;
        if let Some(dir) = static_dir {
            return read_static(files, &dir, dense, normalize);
        }
        let tdir = transformer_dir.ok_or_else(|| {
            ModelError::Unsupported(
                "modules.json names no Transformer or StaticEmbedding module".into(),
            )
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
        let TokenizerFacts {
            model_max_length,
            token_type_ids,
            chat_template,
            special_tokens,
        } = TokenizerFacts::read(files, &tdir)?;
        let structured_messages = sbert
            .modality_config
            .as_ref()
            .and_then(|m| m.pointer("/message/format"))
            .and_then(|f| f.as_str())
            == Some("structured");
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

        let kind = if logit_score.is_some() {
            ModelKind::Reranker
        } else {
            model_kind(&config, &sbert, &st_config, sparse.is_some())
        };
        let num_labels = if logit_score.is_some() {
            1
        } else {
            num_labels(&config)
        };
        let score_activation = match kind {
            ModelKind::Reranker => score_activation(&config, &st_config, num_labels)?,
            _ => Activation::Identity,
        };
        if kind == ModelKind::Sparse && sparse.is_none() {
            sparse = Some(SparsePooling {
                sum: false,
                log1p_relu: false,
            });
        }

        let pooling = pooling.unwrap_or_default();
        let width = dense_width(hidden_size * pooling.modes.len(), &dense)?;

        let dimension = match kind {
            ModelKind::Embedder => width,
            ModelKind::Reranker => num_labels,
            ModelKind::Sparse => config
                .get("vocab_size")
                .and_then(|v| v.as_u64())
                .unwrap_or(0) as usize,
        };
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
            dimension,
            kind,
            score_activation,
            sparse,
            token_type_ids,
            logit_score,
            chat_template,
            structured_messages,
            special_tokens,
            static_model: None,
        })
    }
}

/// What a sentence-transformers `modules.json` lists, each module's own config read (without
/// one: a Transformer and mean Pooling, as sentence-transformers assumes).
#[derive(Default)]
struct Modules {
    transformer_dir: Option<String>,
    static_dir: Option<String>,
    pooling: Option<PoolingConfig>,
    dense: Vec<DenseLayout>,
    normalize: bool,
    sparse: Option<SparsePooling>,
    logit_score: Option<LogitScore>,
}

impl Modules {
    fn read(files: &mut ModelFiles, fetch_weights: bool) -> Result<Self> {
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

        let mut m = Modules::default();
        for module in &modules {
            let kind = module.kind.rsplit('.').next().unwrap_or(&module.kind);
            match kind {
                "Transformer" | "MLMTransformer" if m.transformer_dir.is_none() => {
                    m.transformer_dir = Some(module.path.clone())
                }
                "StaticEmbedding" if m.static_dir.is_none() && m.transformer_dir.is_none() => {
                    // Model2Vec writes its own folder as the module's path (`.`).
                    m.static_dir = Some(module.path.trim_start_matches('.').to_string())
                }
                "SpladePooling" => {
                    m.sparse = Some(match files.optional(&join(&module.path, "config.json"))? {
                        Some(path) => parse_splade(&read_json(&path, "SpladePooling config")?)?,
                        None => SparsePooling {
                            sum: false,
                            log1p_relu: false,
                        },
                    })
                }
                "LogitScore" => {
                    let path = files.required(&join(&module.path, "config.json"))?;
                    let config: LogitScoreConfig = read_json(&path, "LogitScore config")?;
                    if config
                        .module_input_name
                        .as_deref()
                        .is_some_and(|n| n != "causal_logits")
                    {
                        return Err(ModelError::Unsupported(format!(
                            "a LogitScore module reading `{}`: fathom scores the causal model's logits",
                            config.module_input_name.unwrap_or_default()
                        )));
                    }
                    m.logit_score = Some(LogitScore {
                        true_token_id: config.true_token_id,
                        false_token_id: config.false_token_id,
                    });
                }
                "Pooling" => {
                    m.pooling = Some(match files.optional(&join(&module.path, "config.json"))? {
                        Some(path) => parse_pooling(&read_json(&path, "pooling config")?, &path)?,
                        None => PoolingConfig::default(),
                    })
                }
                "Dense" => m.dense.push(read_dense(files, &module.path, fetch_weights)?),
                "Normalize" => m.normalize = true,
                other => {
                    return Err(ModelError::Unsupported(format!(
                        "sentence-transformers module `{other}` ({}) is not supported; fathom runs Transformer, Pooling, Dense, Normalize and SpladePooling modules",
                        module.kind
                    )))
                }
            }
        }
        Ok(m)
    }
}

/// What `tokenizer_config.json` (and `chat_template.jinja`) say that the tokenizer file does
/// not.
struct TokenizerFacts {
    model_max_length: Option<usize>,
    token_type_ids: bool,
    chat_template: Option<String>,
    special_tokens: BTreeMap<String, String>,
}

impl TokenizerFacts {
    fn read(files: &mut ModelFiles, tdir: &str) -> Result<Self> {
        let tokenizer_config = match files.optional(&join(tdir, "tokenizer_config.json"))? {
            Some(path) => Some(read_json::<TokenizerConfig>(
                &path,
                "tokenizer_config.json",
            )?),
            None => None,
        };
        let model_max_length = tokenizer_config
            .as_ref()
            .and_then(|t| t.model_max_length)
            .filter(|v| *v >= 1.0 && *v < 1e9)
            .map(|v| v as usize);
        let token_type_ids = tokenizer_config
            .as_ref()
            .is_none_or(TokenizerConfig::token_type_ids);
        let chat_template = match files.optional(&join(tdir, "chat_template.jinja"))? {
            Some(path) => {
                Some(std::fs::read_to_string(&path).map_err(|e| ModelError::io(&path, e))?)
            }
            None => tokenizer_config
                .as_ref()
                .and_then(|t| t.chat_template.as_ref())
                .and_then(named_template),
        };
        let special_tokens = tokenizer_config
            .as_ref()
            .map(TokenizerConfig::special_tokens)
            .unwrap_or_default();
        Ok(Self {
            model_max_length,
            token_type_ids,
            chat_template,
            special_tokens,
        })
    }
}

/// The width after the Dense modules, from the pooled width, each module checked to take what
/// the one before gives.
fn dense_width(pooled: usize, dense: &[DenseLayout]) -> Result<usize> {
    let mut width = pooled;
    for d in dense {
        if d.in_features != width {
            return Err(ModelError::Unsupported(format!(
                "Dense module `{}` takes {} features but receives {width}",
                d.dir, d.in_features
            )));
        }
        width = d.out_features;
    }
    Ok(width)
}

/// A static-embedding model's layout: its table's width from the safetensors header, Model2Vec's
/// `config.json` (`max_length`, 512 when absent as in Model2Vec) when the table is Model2Vec's.
fn read_static(
    files: &mut ModelFiles,
    dir: &str,
    dense: Vec<DenseLayout>,
    normalize: bool,
) -> Result<ModelLayout> {
    let tokenizer_path = files.required(&join(dir, "tokenizer.json"))?;
    let weights = files.required(&join(dir, "model.safetensors"))?;
    let (metadata, _) = crate::embedder::read_safetensors_header(&weights)?;
    let (model2vec, shape) = match (
        metadata.info("embedding.weight"),
        metadata.info("embeddings"),
    ) {
        (Some(info), _) => (false, info.shape.clone()),
        (None, Some(info)) => (true, info.shape.clone()),
        (None, None) => {
            return Err(ModelError::BadWeights {
                path: weights,
                message:
                    "no `embedding.weight` or `embeddings` tensor: not a static-embedding model"
                        .into(),
            })
        }
    };
    let [_, hidden_size] = shape[..] else {
        return Err(ModelError::BadWeights {
            path: weights,
            message: format!("the embedding table has shape {shape:?}, not rows × width"),
        });
    };
    let (config, config_path) = match files.optional(&join(dir, "config.json"))? {
        Some(path) => (read_json(&path, "Model2Vec config.json")?, path),
        None => (serde_json::json!({}), weights.clone()),
    };
    let max_length = if model2vec {
        match config.get("max_length") {
            Some(serde_json::Value::Null) => None,
            Some(v) => v.as_u64().map(|v| v as usize),
            None => Some(512),
        }
    } else {
        None
    };
    let st_config: SentenceTransformersConfig =
        match files.optional("config_sentence_transformers.json")? {
            Some(path) => read_json(&path, "config_sentence_transformers.json")?,
            None => SentenceTransformersConfig::default(),
        };
    let width = dense_width(hidden_size, &dense)?;
    Ok(ModelLayout {
        name: files.source().display_name(),
        model_type: "static".into(),
        config,
        config_path,
        tokenizer_path,
        weights: vec![weights.clone()],
        hidden_size,
        // What chunking sizes passages by: Model2Vec's cut, and the same for sentence-transformers'
        // tables, which average any number of tokens.
        max_seq_length: max_length.unwrap_or(512),
        do_lower_case: false,
        pooling: PoolingConfig::default(),
        dense,
        normalize,
        prompts: st_config.prompts,
        default_prompt_name: st_config.default_prompt_name.filter(|n| !n.is_empty()),
        dimension: width,
        kind: ModelKind::Embedder,
        score_activation: Activation::Identity,
        sparse: None,
        token_type_ids: false,
        logit_score: None,
        chat_template: None,
        structured_messages: false,
        special_tokens: BTreeMap::new(),
        static_model: Some(StaticLayout {
            weights,
            model2vec,
            max_length,
        }),
    })
}

/// A `chat_template` value of `tokenizer_config.json`: the string, or from a list of named
/// templates the one named `default`.
fn named_template(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(list) => list
            .iter()
            .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
            .and_then(|t| t.get("template"))
            .and_then(|t| t.as_str())
            .map(str::to_string),
        _ => None,
    }
}

/// A cross-encoder says so in `config_sentence_transformers.json` (sentence-transformers 5+), in
/// its Transformer module's task (6+), or — as most rerankers on the hub do, with no
/// sentence-transformers files at all — only by its transformers architecture
/// (`…ForSequenceClassification`). A sparse model has a `SpladePooling` module.
fn model_kind(
    config: &serde_json::Value,
    sbert: &SentenceBertConfig,
    st: &SentenceTransformersConfig,
    has_splade: bool,
) -> ModelKind {
    if has_splade
        || st.model_type.as_deref() == Some("SparseEncoder")
        || sbert.transformer_task.as_deref() == Some("fill-mask")
    {
        return ModelKind::Sparse;
    }
    if st.model_type.as_deref() == Some("CrossEncoder")
        || matches!(
            sbert.transformer_task.as_deref(),
            Some("sequence-classification" | "text-generation")
        )
    {
        return ModelKind::Reranker;
    }
    if st.model_type.is_none() {
        let classifier = config
            .get("architectures")
            .and_then(|a| a.as_array())
            .is_some_and(|a| {
                a.iter()
                    .filter_map(|v| v.as_str())
                    .any(|name| name.ends_with("ForSequenceClassification"))
            });
        if classifier {
            return ModelKind::Reranker;
        }
    }
    ModelKind::Embedder
}

/// transformers' `num_labels`: the size of `id2label`, else 2 (its default).
fn num_labels(config: &serde_json::Value) -> usize {
    config
        .get("id2label")
        .and_then(|m| m.as_object())
        .map(|m| m.len())
        .filter(|&n| n > 0)
        .or_else(|| {
            config
                .get("num_labels")
                .and_then(|v| v.as_u64())
                .map(|n| n as usize)
        })
        .unwrap_or(2)
}

/// `CrossEncoder.activation_fn`: where sentence-transformers 6, 4–5 and older versions keep it,
/// else Sigmoid for one label and Identity for several.
fn score_activation(
    config: &serde_json::Value,
    st: &SentenceTransformersConfig,
    num_labels: usize,
) -> Result<Activation> {
    let named = st
        .activation_fn
        .clone()
        .or_else(|| {
            config
                .pointer("/sentence_transformers/activation_fn")
                .and_then(|v| v.as_str())
                .map(str::to_string)
        })
        .or_else(|| {
            config
                .get("sbert_ce_default_activation_function")
                .and_then(|v| v.as_str())
                .map(str::to_string)
        });
    match named {
        Some(name) => Activation::parse(&name).ok_or_else(|| {
            ModelError::Unsupported(format!(
                "cross-encoder activation `{name}` (supported: Identity, Sigmoid, Tanh, ReLU, GELU, SiLU)"
            ))
        }),
        None if num_labels == 1 => Ok(Activation::Sigmoid),
        None => Ok(Activation::Identity),
    }
}

fn parse_splade(config: &SpladeConfig) -> Result<SparsePooling> {
    let sum = match config.pooling_strategy.as_deref() {
        None | Some("max") => false,
        Some("sum") => true,
        Some(other) => {
            return Err(ModelError::Unsupported(format!(
                "SpladePooling pooling_strategy `{other}` (supported: max, sum)"
            )))
        }
    };
    let log1p_relu = match config.activation_function.as_deref() {
        None | Some("relu") => false,
        Some("log1p_relu") => true,
        Some(other) => {
            return Err(ModelError::Unsupported(format!(
                "SpladePooling activation_function `{other}` (supported: relu, log1p_relu)"
            )))
        }
    };
    Ok(SparsePooling { sum, log1p_relu })
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
