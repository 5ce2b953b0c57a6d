//! Command-line arguments (clap derive). Doc comments are the `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use fathom_store::SearchMode;

#[derive(Debug, Parser)]
#[command(name = "fathom", version, about = "Local embeddings and semantic search", long_about = None)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Embed texts given as arguments, or one per line on stdin, and print the vectors as JSON.
    Embed(EmbedArgs),
    /// Chunk, embed and store a folder's documents; a re-run only touches what changed.
    Ingest(IngestArgs),
    /// Nearest chunks to a query, with their file, offsets and score.
    Search(SearchArgs),
    /// Score texts against a query with a cross-encoder (reranker), best first.
    Rerank(RerankArgs),
    /// List the sources (files, documents) of a collection with their chunk counts.
    Sources(CollectionArgs),
    /// List the collections of the store.
    Collections(StoreArgs),
    /// Delete sources (by id, or every source under a prefix) from a collection.
    Delete(DeleteArgs),
    /// Compact a collection's small fragments, refresh its indexes and remove versions older
    /// than a minute (the server and `ingest` also do this on their own as writes pile up).
    Optimize(CollectionArgs),
    /// Retrieval quality on a BEIR-format folder: nDCG@10, recall@100, MRR@10.
    Eval(EvalArgs),
    /// Serve embeddings, search and ingestion over HTTP (TEI- and OpenAI-compatible embed routes).
    Serve(ServeArgs),
    /// Serve search tools to an AI agent over the Model Context Protocol on stdin/stdout.
    Mcp(McpArgs),
    /// Fetch or describe models.
    #[command(subcommand)]
    Model(ModelCommand),
}

/// Where the store is.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// The store: a folder (created when needed), or object storage (`s3://bucket/prefix`,
    /// `gs://bucket/prefix`, `az://container/prefix`), holding one lance dataset per collection.
    #[arg(long, env = "FATHOM_STORE", default_value = "fathom-data")]
    pub store: String,

    #[command(flatten)]
    pub access: StoreAccessArgs,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// How to reach an object store; credentials come from the cloud's own variables and profiles.
#[derive(Debug, Clone, Args)]
pub struct StoreAccessArgs {
    /// A lance storage option as KEY=VALUE (repeat, or comma-separate in FATHOM_STORE_OPTIONS):
    /// endpoint=http://127.0.0.1:9000, region=eu-west-1, allow_http=true, timeout=30s...
    #[arg(long = "store-option", env = "FATHOM_STORE_OPTIONS", value_delimiter = ',', value_parser = fathom_store::StoreOptions::parse_option)]
    pub store_options: Vec<(String, String)>,

    /// Seconds a reader may answer from its snapshot before looking for other processes'
    /// commits (default: 0 for a folder, 2 for object storage).
    #[arg(long, env = "FATHOM_READ_CONSISTENCY")]
    pub read_consistency: Option<Seconds>,
}

impl StoreAccessArgs {
    pub fn options(&self) -> anyhow::Result<fathom_store::StoreOptions> {
        Ok(fathom_store::StoreOptions {
            storage: self.store_options.iter().cloned().collect(),
            read_consistency: self.read_consistency.map(|s| s.0),
        })
    }
}

impl Cli {
    /// Checks that need more than one flag (a usage error when they fail).
    pub fn check(&self) -> Result<(), String> {
        match &self.command {
            Command::Ingest(args) => args.chunking.check(),
            Command::Eval(args) => args.chunking.check(),
            _ => Ok(()),
        }
    }
}

impl ChunkArgs {
    /// An overlap as large as the chunk would never move forward: a usage error.
    pub fn check(&self) -> Result<(), String> {
        match (self.chunk_tokens, self.overlap) {
            (Some(tokens), Some(overlap)) if overlap >= tokens => Err(format!(
                "--overlap ({overlap}) must be smaller than --chunk-tokens ({tokens})"
            )),
            _ => Ok(()),
        }
    }
}

impl StoreArgs {
    /// The store these arguments name.
    pub fn open(&self) -> anyhow::Result<fathom_store::Store> {
        Ok(fathom_store::Store::with_options(
            &self.store,
            self.access.options()?,
        ))
    }
}

/// Which collection of which store.
#[derive(Debug, Clone, Args)]
pub struct CollectionArgs {
    #[command(flatten)]
    pub store: StoreArgs,

    /// The collection (one lance dataset).
    #[arg(
        long,
        short = 'c',
        env = "FATHOM_COLLECTION",
        default_value = "default"
    )]
    pub collection: String,
}

/// How documents are cut into chunks.
#[derive(Debug, Clone, Args)]
pub struct ChunkArgs {
    /// Chunk size in tokens (default: the model's max_seq_length less its special tokens).
    #[arg(long, value_parser = at_least_one)]
    pub chunk_tokens: Option<usize>,

    /// Tokens shared by consecutive chunks of a document (default: a quarter of the chunk size).
    #[arg(long)]
    pub overlap: Option<usize>,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// The folder to ingest. Source ids are paths as seen from here (`docs/a.md`).
    pub dir: PathBuf,

    #[command(flatten)]
    pub target: CollectionArgs,

    #[command(flatten)]
    pub model: ModelArgs,

    #[command(flatten)]
    pub chunking: ChunkArgs,

    /// Only files matching this glob (repeatable), relative to DIR.
    #[arg(long)]
    pub include: Vec<String>,

    /// Leave out files matching this glob (repeatable).
    #[arg(long)]
    pub exclude: Vec<String>,

    /// Skip files larger than this many bytes.
    #[arg(long, default_value_t = 20 * 1024 * 1024)]
    pub max_file_size: u64,

    /// Include hidden files and folders.
    #[arg(long)]
    pub hidden: bool,

    /// Do not read .gitignore / .ignore files.
    #[arg(long)]
    pub no_ignore: bool,

    /// Follow symbolic links that resolve outside DIR. Without it such links are reported and
    /// skipped, so a link dropped into the folder cannot pull in a file from elsewhere.
    #[arg(long)]
    pub follow_links: bool,

    /// Take only share I of N of the files (by a hash of their source ids), and delete only
    /// within it: N processes or machines, each with its own I, ingest one folder into one
    /// collection. Without it, a run owns the whole folder.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<fathom_ingest::Shard>,

    /// For .json/.jsonl files: the field that holds the text.
    #[arg(long)]
    pub json_field: Option<String>,

    /// Chunks one file may have; the rest of a longer file is left out and reported.
    #[arg(long, default_value_t = 10_000, value_parser = at_least_one)]
    pub max_chunks_per_file: usize,

    /// Commit what is embedded at least this often (seconds), so that a crash loses little.
    #[arg(long, default_value = "10")]
    pub commit_every: Seconds,

    /// After the ingest, keep watching the folder and sync every change (new, changed, renamed
    /// and deleted files) until Ctrl-C.
    #[arg(long)]
    pub watch: bool,

    /// With --watch: seconds the folder must be quiet after a change before it is synced (a
    /// burst of saves makes one sync).
    #[arg(long, default_value = "0.75", requires = "watch", value_parser = quiet_period)]
    pub watch_quiet: Seconds,

    #[command(flatten)]
    pub parse: ParseArgs,
}

/// The budget of a document parser (PDF, Office, e-books, mail…), which runs in a child process,
/// and of OCR.
#[derive(Debug, Clone, Args)]
pub struct ParseArgs {
    /// Seconds one document (PDF, Word, mailbox…) may take to parse, and each scanned page or
    /// image its OCR; a slower one is skipped and reported.
    #[arg(long, env = "FATHOM_PARSE_TIMEOUT", default_value = "60", value_parser = positive_seconds)]
    pub parse_timeout: Seconds,

    /// MiB of memory one document's parser (or OCR) may use; a hungrier one is skipped and
    /// reported.
    #[arg(long, env = "FATHOM_PARSE_MAX_MEMORY_MB", default_value_t = 1024)]
    pub parse_max_memory_mb: u64,

    /// OCR for images (.png, .jpg, .tiff…) and PDF pages without a text layer (scans), through
    /// Tesseract: `auto` when `tesseract` is installed, `always` (an error without it), `never`.
    /// It costs a few seconds of CPU per page.
    #[arg(long, env = "FATHOM_OCR", default_value = "auto")]
    pub ocr: fathom_ingest::OcrMode,
}

impl ParseArgs {
    /// The limits, with PDFs parsed by this same binary in a child process.
    pub fn limits(&self) -> anyhow::Result<fathom_ingest::ParseLimits> {
        let isolation = match std::env::current_exe() {
            Ok(program) => fathom_ingest::ParserIsolation::Subprocess {
                program,
                args: vec![crate::PARSER_HELPER_ARG.to_string()],
            },
            Err(e) => {
                tracing::warn!("cannot find this program ({e}): documents are parsed in process, without time or memory limits");
                fathom_ingest::ParserIsolation::InProcess
            }
        };
        Ok(fathom_ingest::ParseLimits {
            isolation,
            timeout: self.parse_timeout.0,
            max_memory: self.parse_max_memory_mb << 20,
            ocr: self.ocr,
            ..fathom_ingest::ParseLimits::default()
        })
    }
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// What to look for.
    pub query: String,

    #[command(flatten)]
    pub target: CollectionArgs,

    #[command(flatten)]
    pub model: ModelArgs,

    /// Number of results.
    #[arg(short, long, default_value_t = 10, value_parser = at_least_one)]
    pub k: usize,

    /// hybrid (reciprocal rank fusion of both), vector (embedding cosine) or text (BM25).
    #[arg(long, default_value_t = SearchMode::default(), value_parser = search_mode())]
    pub mode: SearchMode,

    /// Restrict results: `source:PREFIX`, `source:GLOB` (with * or ?), `source=ID`, or
    /// `meta.KEY=VALUE` on the documents' JSON metadata. Repeatable (all must match).
    #[arg(long)]
    pub filter: Vec<String>,

    /// Rerank the best --candidates hits with a cross-encoder (folder or hub id; alone:
    /// cross-encoder/ms-marco-MiniLM-L6-v2) and print the best k of them by its score.
    #[arg(long, num_args = 0..=1, default_missing_value = DEFAULT_RERANKER)]
    pub rerank: Option<String>,

    /// Hits retrieved for --rerank to reorder.
    #[arg(long, default_value_t = 50, value_parser = at_least_one)]
    pub candidates: usize,
}

/// The cross-encoder `--rerank` uses when it names none.
pub const DEFAULT_RERANKER: &str = "cross-encoder/ms-marco-MiniLM-L6-v2";

/// `fathom rerank`.
#[derive(Debug, Args)]
pub struct RerankArgs {
    /// The query.
    pub query: String,

    /// The texts to score against it (default: one per line of standard input).
    pub texts: Vec<String>,

    /// A cross-encoder folder or hub id (default: cross-encoder/ms-marco-MiniLM-L6-v2).
    #[arg(long, short = 'm', env = "FATHOM_RERANKER", default_value = DEFAULT_RERANKER)]
    pub model: String,

    /// cpu, cuda, cuda:N, or auto (CUDA when available).
    #[arg(long, env = "FATHOM_DEVICE", default_value = "cpu")]
    pub device: String,

    /// Compute precision (as for `fathom embed`).
    #[arg(long, env = "FATHOM_DTYPE", value_enum, default_value_t = Precision::F32)]
    pub dtype: Precision,

    /// The model's logits, without its activation.
    #[arg(long)]
    pub raw_scores: bool,

    /// Print JSON (`[{"index", "score", "text"}]`, best first).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Source ids to delete.
    pub sources: Vec<String>,

    #[command(flatten)]
    pub target: CollectionArgs,

    /// Delete every source whose id starts with this prefix.
    #[arg(long)]
    pub prefix: Option<String>,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A BEIR-format folder: corpus.jsonl, queries.jsonl, qrels/test.tsv.
    pub dir: PathBuf,

    #[command(flatten)]
    pub model: ModelArgs,

    /// hybrid, vector or text.
    #[arg(long, default_value_t = SearchMode::default(), value_parser = search_mode())]
    pub mode: SearchMode,

    /// The store to ingest the corpus into (reused on later runs: unchanged documents are skipped).
    #[arg(long, env = "FATHOM_STORE", default_value = "fathom-data")]
    pub store: String,

    #[command(flatten)]
    pub access: StoreAccessArgs,

    /// Collection name (default: eval-<folder name>, plus the chunking when not the default).
    #[arg(long, short = 'c')]
    pub collection: Option<String>,

    #[command(flatten)]
    pub chunking: ChunkArgs,

    /// Also score with the best --candidates chunks of each query reranked by a cross-encoder
    /// (folder or hub id; alone: cross-encoder/ms-marco-MiniLM-L6-v2): both are printed.
    #[arg(long, num_args = 0..=1, default_missing_value = DEFAULT_RERANKER)]
    pub rerank: Option<String>,

    /// Chunks per query the reranker reorders.
    #[arg(long, default_value_t = 100, value_parser = at_least_one)]
    pub candidates: usize,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `fathom mcp`.
#[derive(Debug, Clone, Args)]
pub struct McpArgs {
    #[command(flatten)]
    pub service: ServiceArgs,
}

/// What `fathom serve` and `fathom mcp` share: the model, the store, the default collection, the
/// folders an ingest may read and the cap on input tokens.
#[derive(Debug, Clone, Args)]
pub struct ServiceArgs {
    #[command(flatten)]
    pub model: ModelArgs,

    /// The store: a folder (created when needed) or object storage (`s3://bucket/prefix`, ...),
    /// one lance dataset per collection.
    #[arg(long, env = "FATHOM_STORE", default_value = "fathom-data")]
    pub store: String,

    #[command(flatten)]
    pub access: StoreAccessArgs,

    /// The collection used when a request or tool call names none.
    #[arg(
        long,
        short = 'c',
        env = "FATHOM_COLLECTION",
        default_value = "default"
    )]
    pub collection: String,

    /// Folders POST /ingest and the MCP `ingest` tool may read, as DIR or NAME=DIR (repeat, or
    /// comma-separate in FATHOM_INGEST_ROOT). Source ids start with the root's name (`NAME/…`, by
    /// default the folder's own name). Without one, ingesting a path is refused.
    #[arg(long, env = "FATHOM_INGEST_ROOT", value_delimiter = ',', value_parser = parse_ingest_root)]
    pub ingest_root: Vec<fathom_server::IngestRoot>,

    /// Tokens of one input the model runs (longer inputs are cut, or refused with
    /// `truncate: false`): caps a long-context model's window, whose memory grows with its
    /// square. Models with a shorter max_seq_length keep theirs.
    #[arg(long, env = "FATHOM_MAX_INPUT_TOKENS", default_value_t = 2048)]
    pub max_input_tokens: usize,

    /// A cross-encoder to serve beside the embedder (folder or hub id, e.g.
    /// cross-encoder/ms-marco-MiniLM-L6-v2, Qwen/Qwen3-Reranker-0.6B; NAME=MODEL to name it):
    /// POST /rerank, /v1/rerank, and `rerank` in searches. Repeatable: the first is the default,
    /// requests pick another by `model`. Runs on --device and --dtype.
    #[arg(long, env = "FATHOM_RERANKER")]
    pub reranker: Vec<String>,

    /// A SPLADE model to serve beside the embedder (folder or hub id, e.g. naver/splade-v3;
    /// NAME=MODEL to name it): POST /embed_sparse. Repeatable, as --reranker. Runs on --device
    /// and --dtype.
    #[arg(long, env = "FATHOM_SPARSE_MODEL")]
    pub sparse_model: Vec<String>,
}

/// `fathom serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "FATHOM_HOST", default_value = "127.0.0.1")]
    pub host: String,

    /// Port to listen on (0: any free port; the address is printed on stdout).
    #[arg(long, short = 'p', env = "FATHOM_PORT", default_value_t = 8080)]
    pub port: u16,

    #[command(flatten)]
    pub service: ServiceArgs,

    /// Require `Authorization: Bearer <key>` on every route but /health.
    #[arg(long, env = "FATHOM_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,

    /// Let ingest jobs read hidden and git-ignored files (by default they stay out, whatever a
    /// request's globs say).
    #[arg(long, env = "FATHOM_INGEST_HIDDEN")]
    pub ingest_hidden: bool,

    #[command(flatten)]
    pub parse: ParseArgs,

    /// Ingest jobs that run at once (more wait in a queue).
    #[arg(long, env = "FATHOM_MAX_INGEST_JOBS", default_value_t = 2)]
    pub max_ingest_jobs: usize,

    /// Ingest jobs that may wait for a slot (POST /ingest is 429 beyond it).
    #[arg(long, env = "FATHOM_MAX_QUEUED_JOBS", default_value_t = 16)]
    pub max_queued_jobs: usize,

    /// Largest request body in bytes (413 beyond it).
    #[arg(long, env = "FATHOM_MAX_BODY_BYTES", default_value_t = 2 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Most inputs (or documents) in one request (422 beyond it).
    #[arg(long, env = "FATHOM_MAX_INPUTS", default_value_t = 512)]
    pub max_inputs: usize,

    /// Bytes of text in one document of POST /documents (413 beyond it).
    #[arg(long, env = "FATHOM_MAX_DOCUMENT_BYTES", default_value_t = 1024 * 1024)]
    pub max_document_bytes: usize,

    /// Bytes of one document's JSON metadata (413 beyond it). Every chunk row carries it while a
    /// write is under way, so this bounds a write's memory; on disk it is stored once per document.
    #[arg(long, env = "FATHOM_MAX_METADATA_BYTES", default_value_t = 8 * 1024)]
    pub max_metadata_bytes: usize,

    /// Filters in one search (422 beyond it).
    #[arg(long, env = "FATHOM_MAX_FILTERS", default_value_t = 16)]
    pub max_filters: usize,

    /// Bytes in one search filter (422 beyond it).
    #[arg(long, env = "FATHOM_MAX_FILTER_BYTES", default_value_t = 1024)]
    pub max_filter_bytes: usize,

    /// Seconds a client may take to send a request body (408 beyond it).
    #[arg(long, env = "FATHOM_READ_TIMEOUT", default_value = "30", value_parser = positive_seconds)]
    pub read_timeout: Seconds,

    /// Seconds shutdown waits for requests in flight (a slow client included) before it drops
    /// their connections.
    #[arg(long, env = "FATHOM_SHUTDOWN_DEADLINE", default_value = "30")]
    pub shutdown_deadline: Seconds,

    /// Requests that may wait for the model (429 with Retry-After beyond it).
    #[arg(long, env = "FATHOM_QUEUE_CAPACITY", default_value_t = 1024)]
    pub queue_capacity: usize,

    /// Token budget of one batch of merged requests.
    #[arg(long, env = "FATHOM_BATCH_TOKENS", default_value_t = 16384)]
    pub batch_tokens: usize,

    /// Seconds a request may wait for the model or the store (503 beyond it).
    #[arg(long, env = "FATHOM_REQUEST_TIMEOUT", default_value = "60", value_parser = positive_seconds)]
    pub request_timeout: Seconds,

    /// Origins allowed by CORS (repeat or comma-separate; `*` for any). Default: CORS off.
    #[arg(long, env = "FATHOM_CORS_ORIGIN", value_delimiter = ',')]
    pub cors_origin: Vec<String>,

    /// Keep a collection in step with a folder, as [NAME=]DIR[:COLLECTION] (repeat, or
    /// comma-separate in FATHOM_WATCH): every change is synced as an ingest job. Source ids start
    /// with NAME/ (the folder's name by default); deletes stay among them.
    #[arg(long, env = "FATHOM_WATCH", value_delimiter = ',', value_parser = parse_watch)]
    pub watch: Vec<fathom_server::WatchedFolder>,

    /// Seconds a watched folder must be quiet after a change before it is synced.
    #[arg(long, env = "FATHOM_WATCH_QUIET", default_value = "0.75", value_parser = quiet_period)]
    pub watch_quiet: Seconds,
}

/// Which model and where to run it; shared by every command that embeds.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// A sentence-transformers folder or a Hugging Face hub id (`org/name[@revision]`).
    /// Default: models/all-MiniLM-L6-v2 when present, else sentence-transformers/all-MiniLM-L6-v2.
    /// `fathom serve` and `fathom mcp` take it more than once, each as MODEL or NAME=MODEL:
    /// several embedders (the first is the default; the OpenAI route picks one by `model`),
    /// rerankers and SPLADE models (the kind is read from the model's files).
    #[arg(long, short = 'm', env = "FATHOM_MODEL")]
    pub model: Vec<String>,

    /// cpu, cuda, cuda:N, or auto (CUDA when available).
    #[arg(long, env = "FATHOM_DEVICE", default_value = "cpu")]
    pub device: String,

    /// Compute precision: f32 (exact), f16 (CUDA only), bf16 (CUDA; on CPUs with AVX512-BF16
    /// the matrix products run in bf16, and with AMX attention too: cosine > 0.999 to f32,
    /// SciFact nDCG@10 unchanged; ~2.9-4x sentence-transformers with AMX, slower than f32
    /// without), or int8 (CPU: weights quantized per channel at load, activations per token;
    /// cosine ~0.99 to f32, SciFact nDCG@10 0.002-0.004 lower; ~3.4-5.7x sentence-transformers
    /// with AMX, ~2.1-2.5x with AVX2 only). Figures in the README.
    #[arg(long, env = "FATHOM_DTYPE", value_enum, default_value_t = Precision::F32)]
    pub dtype: Precision,

    /// Most tokens in one forward pass (inputs are packed without padding up to this).
    #[arg(long, env = "FATHOM_MAX_BATCH_TOKENS", default_value_t = 8192)]
    pub max_batch_tokens: usize,
}

impl ModelArgs {
    /// The one model a command other than `serve` and `mcp` runs (`None`: the default).
    pub fn single(&self) -> anyhow::Result<Option<String>> {
        match self.model.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one.clone())),
            many => anyhow::bail!(
                "--model is given {} times; only `fathom serve` and `fathom mcp` run several models",
                many.len()
            ),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Precision {
    F32,
    F16,
    Bf16,
    Int8,
}

impl From<Precision> for fathom_model::Precision {
    fn from(p: Precision) -> Self {
        match p {
            Precision::F32 => Self::F32,
            Precision::F16 => Self::F16,
            Precision::Bf16 => Self::Bf16,
            Precision::Int8 => Self::Int8,
        }
    }
}

#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// Texts to embed; without any, one text per line is read from stdin.
    pub texts: Vec<String>,

    #[command(flatten)]
    pub model: ModelArgs,

    /// Print one JSON array per line instead of one JSON array of arrays.
    #[arg(long)]
    pub jsonl: bool,

    /// Do not normalize to unit length (default: the model's own setting).
    #[arg(long)]
    pub no_normalize: bool,

    /// Refuse inputs longer than the model's max_seq_length instead of cutting them.
    #[arg(long)]
    pub no_truncate: bool,

    /// Use a prompt of the model's config_sentence_transformers.json, e.g. `query`.
    #[arg(long, conflicts_with = "prompt")]
    pub prompt_name: Option<String>,

    /// Put this raw text before every input.
    #[arg(long)]
    pub prompt: Option<String>,

    /// Keep only the first N dimensions (Matryoshka), renormalized when normalizing.
    #[arg(long, value_parser = at_least_one)]
    pub dimensions: Option<usize>,
}

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Download a model from the Hugging Face hub into the local cache (HF_HOME), optionally
    /// copying its files into a folder.
    Pull(PullArgs),
    /// Show a model's architecture, dimension, max_seq_length, pooling and prompts.
    Info(InfoArgs),
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Hub id, `org/name[@revision]`.
    pub id: String,

    /// Also copy the model's files into this folder (a complete sentence-transformers folder).
    #[arg(long)]
    pub to: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// A folder or hub id (default: the default model).
    pub model: Option<String>,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// A span of time on the command line: plain seconds (`30`, `0.75`) or with a unit (`500ms`,
/// `30s`, `2m`, `1h`); at most a year, never negative, NaN or infinite (which would panic when
/// turned into a `Duration`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seconds(pub std::time::Duration);

impl std::str::FromStr for Seconds {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let (number, scale) = [("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)]
            .into_iter()
            .find_map(|(unit, scale)| t.strip_suffix(unit).map(|n| (n, scale)))
            .unwrap_or((t, 1.0));
        let value: f64 = number
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not a time (use seconds, or 500ms, 30s, 2m, 1h)"))?;
        let seconds = value * scale;
        if !(seconds.is_finite() && seconds >= 0.0) {
            return Err(format!("`{s}` is not a time of 0 or more seconds"));
        }
        if seconds > 365.0 * 86_400.0 {
            return Err(format!("`{s}` is more than a year"));
        }
        Ok(Self(std::time::Duration::from_secs_f64(seconds)))
    }
}

/// A time that must be more than zero.
fn positive_seconds(s: &str) -> Result<Seconds, String> {
    let t: Seconds = s.parse()?;
    if t.0.is_zero() {
        return Err("must be more than 0 seconds".into());
    }
    Ok(t)
}

/// A quiet period of a folder watch: more than 0, at most an hour.
fn quiet_period(s: &str) -> Result<Seconds, String> {
    let t = positive_seconds(s)?;
    if t.0 > std::time::Duration::from_secs(3600) {
        return Err("must be at most an hour (3600 seconds)".into());
    }
    Ok(t)
}

/// A count that must be at least 1.
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{s}` is not a whole number")),
    }
}

fn parse_watch(spec: &str) -> Result<fathom_server::WatchedFolder, String> {
    fathom_server::WatchedFolder::parse(spec)
}

fn parse_ingest_root(spec: &str) -> Result<fathom_server::IngestRoot, String> {
    fathom_server::IngestRoot::parse(spec)
}

/// `--mode`: the store's search modes, listed in `--help` and checked by clap.
fn search_mode() -> impl clap::builder::TypedValueParser<Value = SearchMode> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(SearchMode::ALL.map(SearchMode::as_str))
        .map(|s| s.parse().expect("clap admitted only the listed modes"))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap's own consistency checks over every subcommand: no two flags share a name or a short
    /// letter (`-c`, `-m`, `-k`, `-p`), defaults parse, and so on.
    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
