use std::path::PathBuf;

/// Everything that can go wrong loading or running a model. Messages name the offending value and
/// the way out.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model folder `{dir}` has no {file} ({hint})")]
    MissingFile {
        dir: PathBuf,
        file: String,
        hint: String,
    },

    #[error("could not read `{path}`: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("`{path}` is not valid JSON for a {what}: {source}")]
    Json {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },

    #[error("unsupported model_type `{model_type}` in `{path}` (supported: {supported})")]
    UnsupportedArchitecture {
        model_type: String,
        path: PathBuf,
        supported: String,
    },

    #[error("unsupported model: {0}")]
    Unsupported(String),

    #[error("{arch} config.json: {message}")]
    BadConfig { arch: &'static str, message: String },

    #[error("`{}` is not a readable safetensors file: {message}", path.display())]
    BadWeights { path: PathBuf, message: String },

    #[error("unknown precision `{0}` (use f32, f16, bf16 or int8)")]
    BadPrecision(String),

    /// A precision this CPU, device or build cannot run (bf16 without AVX512-BF16, f16 on CPU).
    #[error("{0}")]
    PrecisionUnavailable(&'static str),

    #[error("model folder `{0}` does not exist (run scripts/fetch-model.sh for the default model, or pass a hub id like sentence-transformers/all-MiniLM-L6-v2)")]
    NoSuchFolder(PathBuf),

    #[error("`{0}` is neither a model folder nor a hub id like `sentence-transformers/all-MiniLM-L6-v2`")]
    BadModelId(String),

    #[error("could not fetch {what} of `{repo}` from the Hugging Face hub: {reason} (check the id and revision, the network or HF_ENDPOINT, HF_TOKEN for gated models; or pass a local folder)")]
    Hub {
        repo: String,
        what: String,
        reason: String,
    },

    #[error("`{file}` of `{repo}` is not in the local hub cache and HF_HUB_OFFLINE is set (unset HF_HUB_OFFLINE to download it, or pass a local folder)")]
    OfflineMiss { repo: String, file: String },

    #[error("`{name}` is a {kind} model, not a{} {wanted} (fathom reads the kind from the model's files: a cross-encoder's `…ForSequenceClassification` architecture, a SPLADE model's `SpladePooling` module){}", if matches!(wanted, crate::ModelKind::Embedder) { "n" } else { "" }, kind_hint(*kind))]
    WrongKind {
        name: String,
        kind: crate::ModelKind,
        wanted: crate::ModelKind,
    },

    #[error("tokenizer: {0}")]
    Tokenizer(String),

    #[error("input {index} has {tokens} tokens, more than the {max} this model takes (its max_seq_length, capped by a server's --max-input-tokens); shorten it, or allow truncation")]
    InputTooLong {
        index: usize,
        tokens: usize,
        max: usize,
    },

    #[error("max_seq_length must be at least 2 tokens (room for the special tokens), got {0}")]
    BadMaxSeqLength(usize),

    #[error("unknown prompt name `{name}` (this model has: {available})")]
    UnknownPrompt { name: String, available: String },

    #[error("dimensions must be between 1 and {max}, got {got}")]
    BadDimensions { got: usize, max: usize },

    #[error("unknown device `{0}` (use cpu, cuda, cuda:N or auto)")]
    BadDevice(String),

    #[error("{0}")]
    DeviceUnavailable(String),

    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

pub type Result<T, E = ModelError> = std::result::Result<T, E>;

impl ModelError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// How to use a model of `kind` instead.
fn kind_hint(kind: crate::ModelKind) -> &'static str {
    match kind {
        crate::ModelKind::Reranker => {
            "; use it with `fathom serve --reranker`, `fathom search --rerank` or `fathom rerank`"
        }
        crate::ModelKind::Sparse => {
            "; serve it with `fathom serve --sparse-model` (POST /embed_sparse)"
        }
        crate::ModelKind::Embedder => "",
    }
}
