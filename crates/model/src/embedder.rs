//! [`Embedder`]: a loaded model and the whole text → vector path of sentence-transformers.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};
use tokenizers::{Encoding, PostProcessor, Tokenizer, TruncationDirection};

use crate::arch::{self, Encoder, PackedBatch};
use crate::device::DeviceSpec;
use crate::error::{ModelError, Result};
use crate::layout::{ModelKind, ModelLayout};
use crate::lookup::StaticTable;
use crate::ops::{LinearPrecision, Pass};
use crate::pooling::{normalize_in_place, pool, Dense};

/// The precision a model computes in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// Full precision everywhere (the default; matches sentence-transformers to 1e-4).
    #[default]
    F32,
    /// Half precision weights and activations (CUDA only).
    F16,
    /// bf16: on CUDA, bf16 weights and activations; on CPU, the matrix products in bf16 with f32
    /// accumulation (CPUs with AVX512-BF16), everything else f32.
    Bf16,
    /// int8 matrix products on CPU: weights quantized per output channel at load, activations
    /// per token per call, everything else f32. Cosine ≥ 0.99 to f32 embeddings; retrieval
    /// quality measured in the README.
    Int8,
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::Bf16 => "bf16",
            Self::Int8 => "int8",
        })
    }
}

impl std::str::FromStr for Precision {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "float32" => Ok(Self::F32),
            "f16" | "float16" | "half" => Ok(Self::F16),
            "bf16" | "bfloat16" => Ok(Self::Bf16),
            "int8" | "i8" | "qint8" => Ok(Self::Int8),
            _ => Err(ModelError::BadPrecision(s.to_string())),
        }
    }
}

/// How to load a model.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub device: DeviceSpec,
    pub precision: Precision,
    /// Upper bound on the tokens of one forward pass; a call's inputs are split into passes of at
    /// most this many tokens (a single longer input still runs alone).
    pub max_batch_tokens: usize,
    /// A cap on the model's max_seq_length (`None`: the model's own). A long-context model's
    /// window costs memory quadratic in it; a server caps it (`--max-input-tokens`).
    pub max_input_tokens: Option<usize>,
    /// `true`: run this model on plain candle ops even on CPU, with fathom's CPU kernels off: the
    /// path CUDA and f16 take, slower on CPU. For checking one path against the other; other
    /// models in the process keep their own setting.
    pub generic_ops: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            device: DeviceSpec::Cpu,
            precision: Precision::F32,
            max_batch_tokens: 8192,
            max_input_tokens: None,
            generic_ops: false,
        }
    }
}

/// Which end an over-long input is cut from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Truncation {
    #[default]
    Right,
    Left,
}

/// Options of one embed call. The defaults are the model's own (what sentence-transformers does).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmbedOptions {
    /// `None`: normalize when the model has a Normalize module.
    pub normalize: Option<bool>,
    /// `false`: an input longer than max_seq_length is an error instead of being cut.
    pub truncate: Option<bool>,
    pub truncation_direction: Truncation,
    /// A prompt of the model's `config_sentence_transformers.json`, by name.
    pub prompt_name: Option<String>,
    /// A raw prompt put before every input (wins over `prompt_name`).
    pub prompt: Option<String>,
    /// Matryoshka truncation to the first `dimensions` values (renormalized when normalizing).
    pub dimensions: Option<usize>,
}

/// Vectors, and the tokens each input ran.
pub type Counted = (Vec<Vec<f32>>, Vec<usize>);

/// What turns tokens into one vector per text.
#[derive(Debug)]
enum Body {
    /// A transformer, then the model's pooling.
    Transformer(Box<dyn Encoder>),
    /// A static-embedding table: the mean of the tokens' rows.
    Static(StaticTable),
}

/// A loaded sentence-transformers model.
#[derive(Debug)]
pub struct Embedder {
    layout: ModelLayout,
    tokenizer: Tokenizer,
    body: Body,
    dense: Vec<Dense>,
    device: Device,
    max_batch_tokens: usize,
    precision: Precision,
    /// How every forward pass computes ([`LoadOptions::generic_ops`]; bf16 attention in the
    /// reduced precisions, whose products are already 8- or 16-bit).
    pass: Pass,
}

/// One tokenized input, ready to pack.
struct Prepared {
    ids: Vec<u32>,
    type_ids: Vec<u32>,
}

/// A model's safetensors files as a [`VarBuilder`] whose tensors are read from disk when the model
/// asks for each (converted to `dtype` on the CPU, then moved to `device`), not all up front: with
/// [`LinearPrecision`] applied as each layer is read, a model loaded as int8 or bf16 never holds
/// its whole f32 copy (the peak is the converted model plus one layer's f32 weights).
pub(crate) fn load_weights(
    paths: &[std::path::PathBuf],
    dtype: DType,
    device: &Device,
) -> Result<VarBuilder<'static>> {
    let mut files = Vec::with_capacity(paths.len());
    let mut tensors = HashMap::new();
    for path in paths {
        use std::io::Seek;
        let (metadata, mut file) = read_safetensors_header(path)?;
        let data_start = file.stream_position().map_err(|e| ModelError::BadWeights {
            path: path.clone(),
            message: e.to_string(),
        })?;
        for name in metadata.offset_keys() {
            let info = metadata
                .info(&name)
                .expect("offset_keys lists the metadata's own tensors")
                .clone();
            tensors.insert(name, (files.len(), info));
        }
        files.push((path.clone(), std::sync::Mutex::new(file), data_start));
    }
    Ok(VarBuilder::from_backend(
        Box::new(WeightFiles { files, tensors }),
        dtype,
        device.clone(),
    ))
}

/// The backend of [`load_weights`]: each file open with its header read, and where each tensor
/// lies. Reads go through `seek` + `read_exact` under a lock per file (portable; a load reads one
/// tensor at a time anyway).
struct WeightFiles {
    /// Each file's path (for errors), the open file (seeked and read under its lock), and where
    /// its tensor bytes start.
    files: Vec<(std::path::PathBuf, std::sync::Mutex<std::fs::File>, u64)>,
    /// Each tensor's file (an index into `files`) and its dtype, shape and offsets.
    tensors: HashMap<String, (usize, safetensors::tensor::TensorInfo)>,
}

impl WeightFiles {
    fn read(&self, name: &str) -> candle_core::Result<Tensor> {
        use std::io::{Read, Seek, SeekFrom};
        let (file, info) = self.tensors.get(name).ok_or_else(|| {
            candle_core::Error::CannotFindTensor {
                path: name.to_string(),
            }
            .bt()
        })?;
        let (path, file, data_start) = &self.files[*file];
        let bad = |message: String| {
            candle_core::Error::Msg(format!(
                "`{}` is not a readable safetensors file: `{name}`: {message}",
                path.display()
            ))
        };
        let (start, end) = info.data_offsets;
        let mut bytes = vec![0u8; end - start];
        {
            let mut file = file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            file.seek(SeekFrom::Start(data_start + start as u64))
                .and_then(|_| file.read_exact(&mut bytes))
                .map_err(|e| bad(e.to_string()))?;
        }
        let view = safetensors::tensor::TensorView::new(info.dtype, info.shape.clone(), &bytes)
            .map_err(|e| bad(e.to_string()))?;
        candle_core::safetensors::Load::load(&view, &Device::Cpu).map_err(|e| bad(e.to_string()))
    }
}

impl candle_nn::var_builder::SimpleBackend for WeightFiles {
    fn get(
        &self,
        shape: candle_core::Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        let tensor = self.get_unchecked(name, dtype, device)?;
        if tensor.shape() != &shape {
            return Err(candle_core::Error::UnexpectedShape {
                msg: format!("shape mismatch for {name}"),
                expected: shape,
                got: tensor.shape().clone(),
            }
            .bt());
        }
        Ok(tensor)
    }

    fn get_unchecked(
        &self,
        name: &str,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        // Converted on the CPU, once, then moved.
        self.read(name)?.to_dtype(dtype)?.to_device(device)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }
}

/// A safetensors file's header (every tensor's dtype, shape and offsets, checked against the
/// file's length), and the file positioned at its first tensor's bytes.
pub(crate) fn read_safetensors_header(
    path: &std::path::Path,
) -> Result<(safetensors::tensor::Metadata, std::fs::File)> {
    use std::io::Read;
    let bad = |message: String| ModelError::BadWeights {
        path: path.to_path_buf(),
        message,
    };
    let mut file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
    let file_len = file.metadata().map_err(|e| bad(e.to_string()))?.len();
    let mut n = [0u8; 8];
    file.read_exact(&mut n)
        .map_err(|e| bad(format!("reading the header length: {e}")))?;
    // The same bound as the safetensors crate's (100 MB): a header is a JSON index, not data.
    let n = u64::from_le_bytes(n);
    if n > 100_000_000 || 8 + n > file_len {
        return Err(bad(format!(
            "header length {n} does not fit a {file_len}-byte file"
        )));
    }
    let mut header = vec![0u8; n as usize];
    file.read_exact(&mut header)
        .map_err(|e| bad(format!("reading the header: {e}")))?;
    // Deserializing checks every tensor's offsets: contiguous, in order, sized for its shape.
    let metadata: safetensors::tensor::Metadata =
        serde_json::from_slice(&header).map_err(|e| bad(format!("header: {e}")))?;
    let data_start = 8 + n;
    if data_start + metadata.data_len() as u64 != file_len {
        return Err(bad(format!(
            "the header describes {} bytes of tensors, the file holds {} (truncated or corrupt?)",
            metadata.data_len(),
            file_len - data_start
        )));
    }
    Ok((metadata, file))
}

/// Reads a safetensors file tensor by tensor: the header first, then each tensor's bytes,
/// handed to `each` before the next is read. candle's own loader reads the whole file into memory
/// and then copies every tensor out of it, so a load peaked at twice the file's size (3.7 GB for
/// a 1.8 GB model) before any weight was converted or quantized.
pub(crate) fn read_safetensors(
    path: &std::path::Path,
    mut each: impl FnMut(String, Tensor) -> Result<()>,
) -> Result<()> {
    use std::io::Read;
    let bad = |message: String| ModelError::BadWeights {
        path: path.to_path_buf(),
        message,
    };
    let (metadata, mut file) = read_safetensors_header(path)?;
    let mut bytes = Vec::new();
    for name in metadata.offset_keys() {
        let info = metadata
            .info(&name)
            .expect("offset_keys lists the metadata's own tensors");
        // Offsets are contiguous and in this order (checked above), so the reads are sequential.
        let (start, end) = info.data_offsets;
        bytes.clear();
        bytes.resize(end - start, 0);
        file.read_exact(&mut bytes)
            .map_err(|e| bad(format!("reading `{name}`: {e}")))?;
        let view = safetensors::tensor::TensorView::new(info.dtype, info.shape.clone(), &bytes)
            .map_err(|e| bad(format!("`{name}`: {e}")))?;
        let tensor = candle_core::safetensors::Load::load(&view, &Device::Cpu)
            .map_err(|e| bad(format!("`{name}`: {e}")))?;
        each(name, tensor)?;
    }
    Ok(())
}

/// What every kind of model loads the same way: the device, the transformer with its precision
/// applied, the weights (for the task head to read its own tensors from), the tokenizer.
pub(crate) struct Parts {
    pub device: Device,
    pub encoder: Box<dyn Encoder>,
    pub vb: VarBuilder<'static>,
    pub tokenizer: Tokenizer,
    /// How the model's forward passes compute.
    pub pass: Pass,
    /// What the linears compute in (for a head's own linears).
    pub linears: LinearPrecision,
}

/// Checks the precision against the device, loads the transformer and the tokenizer (without
/// truncation or padding), and applies `max_input_tokens` to `layout.max_seq_length`.
pub(crate) fn load_parts(layout: &mut ModelLayout, options: &LoadOptions) -> Result<Parts> {
    let device = options.device.resolve()?;
    let dtype = match (options.precision, device.is_cpu()) {
        (Precision::F32, _) | (Precision::Bf16 | Precision::Int8, true) => DType::F32,
        (Precision::Int8, false) => {
            return Err(ModelError::PrecisionUnavailable(
                "int8 runs on the CPU only; on CUDA use f16 or bf16",
            ))
        }
        (Precision::F16, false) => DType::F16,
        (Precision::Bf16, false) => DType::BF16,
        (Precision::F16, true) => {
            return Err(ModelError::PrecisionUnavailable(
                "f16 runs on CUDA only; on CPU use f32, or bf16 for reduced precision",
            ))
        }
    };
    if options.precision == Precision::Int8 && options.generic_ops {
        return Err(ModelError::PrecisionUnavailable(
            "int8 runs on fathom's CPU kernels, which `generic_ops` turns off; \
             use f32, or leave generic_ops off",
        ));
    }
    if options.precision == Precision::Bf16 && device.is_cpu() {
        if options.generic_ops {
            return Err(ModelError::PrecisionUnavailable(
                "bf16 on CPU runs on fathom's CPU kernels, which `generic_ops` turns off; \
                 use f32, or leave generic_ops off",
            ));
        }
        if !crate::kernels::bf16::supported() {
            return Err(ModelError::PrecisionUnavailable(
                "bf16 on CPU needs the AVX512-BF16 instructions, which this CPU lacks (or FATHOM_CPU turns off); use f32",
            ));
        }
    }
    // Architecture first: an unsupported model_type is reported before reading weights.
    if !arch::SUPPORTED.contains(&layout.model_type.as_str()) {
        return Err(ModelError::UnsupportedArchitecture {
            model_type: if layout.model_type.is_empty() {
                "(none)".into()
            } else {
                layout.model_type.clone()
            },
            path: layout.config_path.clone(),
            supported: arch::SUPPORTED.join(", "),
        });
    }
    let vb = load_weights(&layout.weights, dtype, &device)?;
    let linears = match options.precision {
        Precision::Int8 => LinearPrecision::Int8,
        Precision::Bf16 if device.is_cpu() => LinearPrecision::Bf16,
        _ => LinearPrecision::AsRead,
    };
    let encoder = arch::load(layout, vb.clone(), linears)?;
    let tokenizer = load_tokenizer(layout)?;
    if let Some(cap) = options.max_input_tokens {
        if cap < 2 {
            return Err(ModelError::BadMaxSeqLength(cap));
        }
        layout.max_seq_length = layout.max_seq_length.min(cap);
    }
    let bf16_attention =
        device.is_cpu() && matches!(options.precision, Precision::Int8 | Precision::Bf16);
    Ok(Parts {
        device,
        encoder,
        vb,
        tokenizer,
        pass: Pass {
            generic_ops: options.generic_ops,
            bf16_attention,
        },
        linears,
    })
}

/// The model's tokenizer without truncation or padding (inputs are cut and packed here).
fn load_tokenizer(layout: &ModelLayout) -> Result<Tokenizer> {
    let mut tokenizer = Tokenizer::from_file(&layout.tokenizer_path).map_err(|e| {
        ModelError::Tokenizer(format!("`{}`: {e}", layout.tokenizer_path.display()))
    })?;
    tokenizer
        .with_truncation(None)
        .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
    tokenizer.with_padding(None);
    Ok(tokenizer)
}

/// The model's Dense modules, in f32.
fn load_dense(layout: &ModelLayout, device: &Device) -> Result<Vec<Dense>> {
    layout
        .dense
        .iter()
        .map(|d| {
            let vb = load_weights(std::slice::from_ref(&d.weights), DType::F32, device)?;
            Dense::load(d, vb)
        })
        .collect()
}

/// Runs one forward pass the way every model kind runs it: on the CPU from a thread of rayon's pool, so that the kernels'
/// parallel loops (a few per layer) start from inside the pool: a push onto this thread's own
/// queue that an idle thread steals. From any other thread each loop is handed to the pool and
/// waited for, two cross-thread wake-ups apiece, which cost more than the arithmetic of a short
/// query (FATHOM_DTYPE=int8 cargo run --release -p fathom-model --example short_queries: see the
/// README's Speed section).
pub(crate) fn run_pass<T: Send>(
    device: &Device,
    forward: impl FnOnce() -> Result<T> + Send,
) -> Result<T> {
    if !device.is_cpu() {
        return forward();
    }
    rayon::scope(|_| forward())
}

/// Groups inputs of the given token lengths into passes of at most `max_tokens` tokens (a longer
/// input alone), longest first: passes of similar lengths keep the attention work balanced.
pub(crate) fn length_batches(lengths: &[usize], max_tokens: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
    let mut batches = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let mut end = start;
        let mut tokens = 0;
        while end < order.len() && (end == start || tokens + lengths[order[end]] <= max_tokens) {
            tokens += lengths[order[end]];
            end += 1;
        }
        batches.push(order[start..end].to_vec());
        start = end;
    }
    batches
}

impl Embedder {
    /// Loads a model from a folder or hub id (`org/name[@revision]`), fetching hub files through
    /// the local cache. Reads files and, for hub ids, does network I/O.
    pub fn load(model: &str, options: &LoadOptions) -> Result<Self> {
        Self::from_layout(ModelLayout::open(model)?, options)
    }

    /// Builds the model from a layout already read (weights and tokenizer are local files).
    pub fn from_layout(layout: ModelLayout, options: &LoadOptions) -> Result<Self> {
        if layout.kind != ModelKind::Embedder {
            return Err(ModelError::WrongKind {
                name: layout.name.clone(),
                kind: layout.kind,
                wanted: ModelKind::Embedder,
            });
        }
        let mut layout = layout;
        if layout.static_model.is_some() {
            return Self::load_static(layout, options);
        }
        let parts = load_parts(&mut layout, options)?;
        let dense = load_dense(&layout, &parts.device)?;
        Ok(Self {
            layout,
            tokenizer: parts.tokenizer,
            body: Body::Transformer(parts.encoder),
            dense,
            device: parts.device,
            max_batch_tokens: options.max_batch_tokens.max(1),
            precision: options.precision,
            pass: parts.pass,
        })
    }

    /// A static-embedding model: its table, the tokenizer as it is (no special tokens are
    /// added, nothing is padded), on the CPU in f32 whatever the options ask (a lookup and a sum
    /// per token gain nothing from lower precision or a GPU).
    fn load_static(layout: ModelLayout, options: &LoadOptions) -> Result<Self> {
        let Some(table_layout) = layout.static_model.as_ref() else {
            return Err(ModelError::Unsupported(
                "not a static-embedding model".into(),
            ));
        };
        let tokenizer = load_tokenizer(&layout)?;
        let table = StaticTable::load(table_layout, &tokenizer)?;
        if table.dim() != layout.hidden_size {
            return Err(ModelError::Unsupported(format!(
                "the static table is {} wide, its header said {}",
                table.dim(),
                layout.hidden_size
            )));
        }
        let device = Device::Cpu;
        let dense = load_dense(&layout, &device)?;
        Ok(Self {
            layout,
            tokenizer,
            body: Body::Static(table),
            dense,
            device,
            max_batch_tokens: options.max_batch_tokens.max(1),
            precision: Precision::F32,
            pass: Pass {
                generic_ops: options.generic_ops,
                bf16_attention: false,
            },
        })
    }

    /// The precision this model computes in.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// What was read from the model folder: architecture, dimension, pooling, prompts...
    pub fn layout(&self) -> &ModelLayout {
        &self.layout
    }

    /// `cpu` or `cuda:N`.
    pub fn device_name(&self) -> String {
        match self.device.location() {
            candle_core::DeviceLocation::Cpu => "cpu".to_string(),
            candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
            candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
        }
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Width of the vectors this model returns (before any `dimensions` truncation).
    pub fn dimension(&self) -> usize {
        self.layout.dimension
    }

    pub fn max_seq_length(&self) -> usize {
        self.layout.max_seq_length
    }

    /// Cuts (or, with truncation off, refuses) inputs beyond `tokens`, special tokens included,
    /// from now on: sentence-transformers' settable `max_seq_length`, and the server's per-input
    /// token cap for long-context models. Values past the model's position limit fail at run
    /// time the way they do in sentence-transformers.
    pub fn set_max_seq_length(&mut self, tokens: usize) -> Result<()> {
        if tokens < 2 {
            return Err(ModelError::BadMaxSeqLength(tokens));
        }
        self.layout.max_seq_length = tokens;
        Ok(())
    }

    /// The model's tokenizer, without truncation or padding (for chunking by tokens).
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The prompt text an options set asks for, if any.
    fn resolve_prompt(&self, options: &EmbedOptions) -> Result<Option<String>> {
        if let Some(prompt) = &options.prompt {
            return Ok(Some(prompt.clone()));
        }
        let name = options
            .prompt_name
            .as_ref()
            .or(self.layout.default_prompt_name.as_ref());
        match name {
            None => Ok(None),
            Some(name) => match self.layout.prompts.get(name) {
                Some(p) => Ok(Some(p.clone())),
                None => Err(ModelError::UnknownPrompt {
                    name: name.clone(),
                    available: if self.layout.prompts.is_empty() {
                        "no prompts".into()
                    } else {
                        self.layout
                            .prompts
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    },
                }),
            },
        }
    }

    fn prepare_text(&self, prompt: Option<&str>, text: &str) -> String {
        let joined = match prompt {
            Some(p) => format!("{p}{text}"),
            None => text.to_string(),
        };
        // sentence-transformers 6 hands the text to the tokenizer as is (older versions
        // stripped it); with sentencepiece tokenizers the surrounding whitespace is a token.
        if self.layout.do_lower_case {
            joined.to_lowercase()
        } else {
            joined
        }
    }

    /// Tokenizes with special tokens, cutting (or refusing) what exceeds max_seq_length.
    fn tokenize(
        &self,
        texts: Vec<String>,
        truncate: bool,
        direction: Truncation,
    ) -> Result<Vec<Prepared>> {
        let max = self.layout.max_seq_length;
        let specials = self
            .tokenizer
            .get_post_processor()
            .map_or(0, |p| p.added_tokens(false));
        let budget = max.saturating_sub(specials).max(1);
        let encodings = self
            .tokenizer
            .encode_batch_fast(texts, false)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        encodings
            .into_iter()
            .enumerate()
            .map(|(index, mut enc): (usize, Encoding)| {
                if enc.len() > budget {
                    if !truncate {
                        return Err(ModelError::InputTooLong {
                            index,
                            tokens: enc.len() + specials,
                            max,
                        });
                    }
                    let dir = match direction {
                        Truncation::Right => TruncationDirection::Right,
                        Truncation::Left => TruncationDirection::Left,
                    };
                    enc.truncate(budget, 0, dir);
                }
                let enc = self
                    .tokenizer
                    .post_process(enc, None, true)
                    .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
                Ok(Prepared {
                    ids: enc.get_ids().to_vec(),
                    type_ids: enc.get_type_ids().to_vec(),
                })
            })
            .collect()
    }

    /// Number of tokens `text` has for this model, special tokens included, without truncation.
    pub fn count_tokens(&self, text: &str) -> Result<usize> {
        let specials = matches!(self.body, Body::Transformer(_));
        let enc = self
            .tokenizer
            .encode_fast(text, specials)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        Ok(enc.len())
    }

    /// Embeds `texts`, one vector per text in the same order. Runs the model (CPU or GPU work
    /// proportional to the total tokens); inputs are sorted by length and packed into passes of at
    /// most `max_batch_tokens` tokens, with no padding.
    pub fn embed<S: AsRef<str>>(
        &self,
        texts: &[S],
        options: &EmbedOptions,
    ) -> Result<Vec<Vec<f32>>> {
        self.embed_counting(texts, options)
            .map(|(vectors, _)| vectors)
    }

    /// [`Embedder::embed`], also returning how many tokens the model ran for each text (after
    /// truncation, special tokens included): the figure behind tokens/s and API usage reports.
    pub fn embed_counting<S: AsRef<str>>(
        &self,
        texts: &[S],
        options: &EmbedOptions,
    ) -> Result<(Vec<Vec<f32>>, Vec<usize>)> {
        if let Some(d) = options.dimensions {
            if d == 0 || d > self.layout.dimension {
                return Err(ModelError::BadDimensions {
                    got: d,
                    max: self.layout.dimension,
                });
            }
        }
        if texts.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let prompt = self.resolve_prompt(options)?;
        let skip = match (&prompt, self.layout.pooling.include_prompt) {
            (Some(p), false) if !p.is_empty() => {
                // sentence-transformers masks the prompt's tokens minus one (its trailing special).
                self.count_tokens(&self.prepare_text(None, p))?
                    .saturating_sub(1)
            }
            _ => 0,
        };
        let prepared_texts: Vec<String> = texts
            .iter()
            .map(|t| self.prepare_text(prompt.as_deref(), t.as_ref()))
            .collect();
        if let Body::Static(table) = &self.body {
            let (mut results, token_counts) = table.embed(&self.tokenizer, prepared_texts)?;
            if !self.dense.is_empty() {
                results = self.dense_only(results)?;
            }
            self.finish(&mut results, options);
            return Ok((results, token_counts));
        }
        let tokenize_span = crate::profile::span("tokenize");
        let prepared = self.tokenize(
            prepared_texts,
            options.truncate.unwrap_or(true),
            options.truncation_direction,
        )?;

        drop(tokenize_span);

        let token_counts: Vec<usize> = prepared.iter().map(|p| p.ids.len()).collect();

        let lengths: Vec<usize> = prepared.iter().map(|p| p.ids.len()).collect();
        let mut results: Vec<Vec<f32>> = vec![Vec::new(); prepared.len()];
        for members in length_batches(&lengths, self.max_batch_tokens) {
            let mut batch = PackedBatch::default();
            for &i in &members {
                batch.input_ids.extend_from_slice(&prepared[i].ids);
                batch.type_ids.extend_from_slice(&prepared[i].type_ids);
                batch.seq_lens.push(prepared[i].ids.len());
            }
            let vectors = self.forward_pooled(&batch, skip)?;
            for (&i, v) in members.iter().zip(vectors) {
                results[i] = v;
            }
        }

        self.finish(&mut results, options);
        Ok((results, token_counts))
    }

    /// Embeds texts already tokenized without special tokens (`token_ids[i]` for `texts[i]`, as
    /// chunking tokenized them) with the default options, when this model can use the tokens
    /// as they are: a static-embedding model, every text's tokens given. `None`: it cannot; call
    /// [`Embedder::embed`].
    pub fn embed_token_ids(
        &self,
        texts: &[&str],
        token_ids: &[Option<&[u32]>],
    ) -> Option<Result<Counted>> {
        let Body::Static(table) = &self.body else {
            return None;
        };
        if texts.len() != token_ids.len()
            || self.layout.do_lower_case
            || self.layout.default_prompt_name.is_some()
        {
            return None;
        }
        let ids: Vec<&[u32]> = token_ids.iter().copied().collect::<Option<_>>()?;
        Some((|| {
            let (mut vectors, counts) = table.embed_ids(&self.tokenizer, texts, &ids)?;
            if !self.dense.is_empty() {
                vectors = self.dense_only(vectors)?;
            }
            self.finish(&mut vectors, &EmbedOptions::default());
            Ok((vectors, counts))
        })())
    }

    /// Embeds a document's chunks as an ingest stores them: with the model's document prompt when
    /// it has one, and from the tokens chunking already has (`token_ids[i]`, no special tokens)
    /// when the model can use them as they are ([`Embedder::embed_token_ids`]).
    pub fn embed_chunks(&self, texts: &[&str], token_ids: &[Option<&[u32]>]) -> Result<Counted> {
        if self.document_prompt().is_none() {
            if let Some(result) = self.embed_token_ids(texts, token_ids) {
                return result;
            }
        }
        let options = EmbedOptions {
            prompt_name: self.document_prompt().map(str::to_string),
            ..EmbedOptions::default()
        };
        self.embed_counting(texts, &options)
    }

    /// Matryoshka truncation and normalization, as the options and the model ask.
    fn finish(&self, results: &mut [Vec<f32>], options: &EmbedOptions) {
        let normalize = options.normalize.unwrap_or(self.layout.normalize);
        for v in results {
            if let Some(d) = options.dimensions {
                v.truncate(d);
            }
            if normalize {
                normalize_in_place(v);
            }
        }
    }

    /// The Dense modules over vectors already pooled.
    fn dense_only(&self, vectors: Vec<Vec<f32>>) -> Result<Vec<Vec<f32>>> {
        let rows = vectors.len();
        let width = self.layout.hidden_size;
        let flat: Vec<f32> = vectors.into_iter().flatten().collect();
        let mut x = Tensor::from_vec(flat, (rows, width), &self.device)?;
        for dense in &self.dense {
            x = dense.forward(self.pass, &x)?;
        }
        Ok(x.to_dtype(DType::F32)?.to_vec2()?)
    }

    /// The prompt name this model uses for documents (`document` or `passage`), if it has one.
    pub fn document_prompt(&self) -> Option<&str> {
        ["document", "passage"]
            .into_iter()
            .find(|n| self.layout.prompts.get(*n).is_some_and(|p| !p.is_empty()))
    }

    /// The prompt name this model uses for queries (`query`), if it has one.
    pub fn query_prompt(&self) -> Option<&str> {
        ["query"]
            .into_iter()
            .find(|n| self.layout.prompts.get(*n).is_some_and(|p| !p.is_empty()))
    }

    /// One forward pass: transformer, pooling, dense layers.
    fn forward_pooled(&self, batch: &PackedBatch, skip: usize) -> Result<Vec<Vec<f32>>> {
        let Body::Transformer(encoder) = &self.body else {
            return Err(ModelError::Unsupported(
                "a static-embedding model has no transformer pass".into(),
            ));
        };
        run_pass(&self.device, || {
            let hidden = encoder.forward(batch, self.pass)?;
            let _span = crate::profile::span("pooling+dense");
            let mut x: Tensor = pool(&hidden, &batch.seq_lens, &self.layout.pooling, skip)?;
            for dense in &self.dense {
                x = dense.forward(self.pass, &x)?;
            }
            Ok(x.to_dtype(DType::F32)?.to_vec2()?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every tensor `read_safetensors` hands out, by name.
    fn read_all(path: &std::path::Path) -> Result<HashMap<String, Tensor>> {
        let mut all = HashMap::new();
        read_safetensors(path, |name, t| {
            all.insert(name, t);
            Ok(())
        })?;
        Ok(all)
    }

    #[test]
    fn read_safetensors_gives_what_candles_loader_gives_and_refuses_broken_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        let dev = Device::Cpu;
        let base = Tensor::arange(0f32, 24.0, &dev)
            .unwrap()
            .affine(0.37, -3.0)
            .unwrap();
        let saved: HashMap<String, Tensor> = [
            ("a.f32", base.reshape((4, 6)).unwrap()),
            ("b.bf16", base.to_dtype(DType::BF16).unwrap()),
            (
                "c.f16",
                base.reshape((2, 3, 4))
                    .unwrap()
                    .to_dtype(DType::F16)
                    .unwrap(),
            ),
            ("d.i64", Tensor::arange(-5i64, 5, &dev).unwrap()),
            ("e.u8", Tensor::arange(0u8, 7, &dev).unwrap()),
            ("f.scalar", Tensor::new(2.5f32, &dev).unwrap()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        candle_core::safetensors::save(&saved, &path).unwrap();

        let want = candle_core::safetensors::load(&path, &dev).unwrap();
        let got = read_all(&path).unwrap();
        assert_eq!(got.len(), want.len());
        let as_f64 = |t: &Tensor| -> Vec<f64> {
            t.to_dtype(DType::F64)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap()
        };
        for (name, w) in &want {
            let g = &got[name];
            assert_eq!((g.dtype(), g.dims()), (w.dtype(), w.dims()), "{name}");
            assert_eq!(as_f64(g), as_f64(w), "{name}");
        }

        // `load_weights` reads the same tensors from disk as they are asked for, over several
        // files, each converted to the model's dtype.
        let second = dir.path().join("second.safetensors");
        let extra = HashMap::from([("g.second".to_string(), base.clone())]);
        candle_core::safetensors::save(&extra, &second).unwrap();
        let vb = load_weights(&[path.clone(), second], DType::F32, &dev).unwrap();
        for (name, w) in want.iter().chain(&extra) {
            assert!(vb.contains_tensor(name), "{name}");
            let g = vb.get(w.dims(), name).unwrap();
            assert_eq!(g.dtype(), DType::F32, "{name}");
            assert_eq!(
                as_f64(&g),
                as_f64(&w.to_dtype(DType::F32).unwrap()),
                "{name}"
            );
        }
        assert!(!vb.contains_tensor("missing"));
        assert!(vb.get(4, "missing").is_err());
        let wrong_shape = vb.get((6, 4), "a.f32").unwrap_err().to_string();
        assert!(wrong_shape.contains("shape mismatch"), "{wrong_shape}");

        let bytes = std::fs::read(&path).unwrap();
        let broken = dir.path().join("broken.safetensors");
        let message = |data: &[u8]| {
            std::fs::write(&broken, data).unwrap();
            read_all(&broken).unwrap_err().to_string()
        };
        // Cut short: the header promises more bytes than the file holds.
        let cut = message(&bytes[..bytes.len() - 10]);
        assert!(cut.contains("truncated or corrupt"), "{cut}");
        // Trailing bytes past the last tensor.
        let long = message(&[bytes.as_slice(), b"xx"].concat());
        assert!(long.contains("truncated or corrupt"), "{long}");
        // A header length larger than the file.
        let huge = message(&u64::MAX.to_le_bytes());
        assert!(huge.contains("does not fit"), "{huge}");
        // A header whose offsets overlap: the safetensors crate's validation refuses it.
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
        assert!(header.contains("\"data_offsets\":[0,"), "{header}");
        let overlapping = header.replacen("\"data_offsets\":[0,", "\"data_offsets\":[1,", 1);
        let bad = message(&[&bytes[..8], overlapping.as_bytes(), &bytes[8 + n..]].concat());
        assert!(bad.contains("header"), "{bad}");
        for m in [cut, long, huge, bad] {
            assert!(m.contains("is not a readable safetensors file"), "{m}");
        }
    }
}
