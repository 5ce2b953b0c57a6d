//! The ingest's steps for Python, with the CLI's own code (fathom-docs): walk a folder, read a
//! file into located text, chunk it in the model's tokens, hash it, plan a sync, and turn files
//! into rows of a collection. `fathom.ray` runs these in Ray workers; nothing here touches a
//! store (the rows are written by pylance), so the wheel still links no lance.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fathom_docs::row::{self, ColumnType};
use fathom_docs::{
    read_file, source_hash, walk, Body, ChunkSize, ChunkTokenizer, FileEntry, FileProblem,
    FileText, Files, Format, OcrMode, ParseLimits, ParserIsolation, Seen, SyncPlan, TextChunk,
    WalkOptions,
};
use fathom_model::Embedder;
use numpy::PyArray1;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::errors::run_detached;
use crate::model::SentenceTransformer;

/// The columns of a collection, in order: `(name, type, nullable)`, type one of "utf8",
/// "uint32", "uint64", "vector" (a fixed-size list of float32 of the model's dimension).
#[pyfunction]
pub fn collection_columns() -> Vec<(&'static str, &'static str, bool)> {
    row::COLUMNS
        .iter()
        .map(|c| {
            let kind = match c.kind {
                ColumnType::Utf8 => "utf8",
                ColumnType::UInt32 => "uint32",
                ColumnType::UInt64 => "uint64",
                ColumnType::Vector => "vector",
            };
            (c.name, kind, c.nullable)
        })
        .collect()
}

/// The dataset metadata keys that record a collection's model: (model, dimension, normalized).
#[pyfunction]
pub fn collection_metadata_keys() -> (&'static str, &'static str, &'static str) {
    (row::META_MODEL, row::META_DIMENSION, row::META_NORMALIZED)
}

/// The indexes a collection keeps, as the store builds them: `(text index name, vector index
/// name, rows from which the vector index is built)`.
#[pyfunction]
pub fn collection_indexes() -> (&'static str, &'static str, usize) {
    (row::TEXT_INDEX, row::VECTOR_INDEX, row::ANN_THRESHOLD)
}

/// The vector index's IVF partitions and PQ sub-vectors for `rows` vectors of `dimension`, as
/// the store chooses them.
#[pyfunction]
pub fn vector_index_params(dimension: usize, rows: usize) -> (usize, usize) {
    (row::ivf_partitions(rows), row::pq_sub_vectors(dimension))
}

/// Whether a file name is an editor's swap, backup or lock file or a partial download, which
/// the walk leaves out.
#[pyfunction]
pub fn is_scratch_name(name: &str) -> bool {
    fathom_docs::is_scratch_name(name)
}

/// A source's hash as the CLI stores it: blake3 of the bytes and the chunking.
#[pyfunction]
pub fn source_hash_of(data: &[u8], chunk_tokens: usize, overlap: usize) -> String {
    source_hash(
        data,
        ChunkSize {
            tokens: chunk_tokens,
            overlap,
        },
    )
}

/// A problem kind's name as the CLI's JSON summary spells it ("binary", "no_text"…).
fn kind_name(kind: fathom_docs::ProblemKind) -> Option<String> {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
}

fn problem_dict<'py>(py: Python<'py>, p: &FileProblem) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("source_id", &p.path)?;
    d.set_item("message", &p.message)?;
    d.set_item("kind", kind_name(p.kind))?;
    Ok(d)
}

/// Walks a folder as `fathom ingest` does (.gitignore and hidden files respected, links out of
/// the root refused unless `follow_links`, files over `max_file_size` left out). Returns a dict:
/// `files` (a list of `(source_id, relative path, size)`), `too_large`, `outside` and
/// `unreadable` (source ids), `prefix` (what the source ids start with), `complete` (false when an error could not be placed: then a sync
/// deletes nothing) and `problems`.
#[pyfunction]
#[pyo3(signature = (root, *, include=Vec::new(), exclude=Vec::new(), max_file_size=20 * 1024 * 1024, hidden=false, no_ignore=false, follow_links=false, source_prefix=None))]
#[allow(clippy::too_many_arguments)]
pub fn walk_folder<'py>(
    py: Python<'py>,
    root: PathBuf,
    include: Vec<String>,
    exclude: Vec<String>,
    max_file_size: u64,
    hidden: bool,
    no_ignore: bool,
    follow_links: bool,
    source_prefix: Option<String>,
) -> PyResult<Bound<'py, PyDict>> {
    let options = WalkOptions {
        include,
        exclude,
        max_file_size,
        hidden,
        no_ignore,
        confine: !follow_links,
        source_prefix,
        shard: None,
    };
    let walked = run_detached(py, || {
        walk(&root, &options).map_err(|e| PyValueError::new_err(e.to_string()))
    })?;
    let d = PyDict::new(py);
    let files: Vec<(String, String, u64)> = walked
        .files
        .iter()
        .map(|f| {
            (
                f.source_id.clone(),
                f.rel.to_string_lossy().into_owned(),
                f.size,
            )
        })
        .collect();
    d.set_item("files", files)?;
    d.set_item("too_large", &walked.too_large)?;
    d.set_item("outside", &walked.outside)?;
    d.set_item("unreadable", &walked.unreadable)?;
    d.set_item("complete", walked.complete)?;
    d.set_item("prefix", options.prefix_for(&root))?;
    let problems = PyList::empty(py);
    for p in &walked.problems {
        problems.append(problem_dict(py, p)?)?;
    }
    d.set_item("problems", problems)?;
    Ok(d)
}

/// What a sync does, from what the collection holds (`stored`: source id → hash, only sources
/// under the folder's prefix) and what the walk and the workers saw: `hashed` (source id → hash
/// of each file read), `excluded` (too large, outside the root) and `unreadable` source ids, and
/// whether the walk was `complete`. Returns a dict of lists: `embed`, `unchanged`, `keep`,
/// `delete` — the CLI's own rules: nothing under an unreadable folder, and nothing at all after an
/// incomplete walk, is deleted.
#[pyfunction]
pub fn sync_plan(
    stored: HashMap<String, String>,
    hashed: Vec<(String, String)>,
    excluded: Vec<String>,
    unreadable: Vec<String>,
    complete: bool,
) -> HashMap<&'static str, Vec<String>> {
    let mut seen: Vec<Seen> = hashed
        .into_iter()
        .map(|(source_id, hash)| Seen::File {
            entry: FileEntry {
                path: PathBuf::new(),
                rel: PathBuf::new(),
                source_id,
                size: 0,
            },
            hash,
        })
        .collect();
    seen.extend(
        excluded
            .into_iter()
            .map(|source_id| Seen::Excluded { source_id }),
    );
    seen.extend(
        unreadable
            .into_iter()
            .map(|source_id| Seen::Unreadable { source_id }),
    );
    let plan = SyncPlan::new(&stored, seen, complete);
    HashMap::from([
        (
            "embed",
            plan.embed.into_iter().map(|e| e.entry.source_id).collect(),
        ),
        ("unchanged", plan.unchanged),
        ("keep", plan.keep),
        ("delete", plan.delete),
    ])
}

fn parse_ocr(ocr: &str) -> PyResult<OcrMode> {
    ocr.parse()
        .map_err(|e: String| PyValueError::new_err(format!("ocr: {e}")))
}

/// The parse budget: `isolate` runs parsers in a child process (`python -m fathom._parse`) that
/// is killed past `timeout` seconds or `max_memory` bytes, as the CLI does.
fn parse_limits(
    py: Python<'_>,
    ocr: &str,
    isolate: bool,
    timeout: f64,
    max_memory: u64,
) -> PyResult<ParseLimits> {
    if !(timeout.is_finite() && timeout > 0.0) {
        return Err(PyValueError::new_err(
            "timeout must be a positive number of seconds",
        ));
    }
    let isolation = if isolate {
        let python: PathBuf = py.import("sys")?.getattr("executable")?.extract()?;
        ParserIsolation::Subprocess {
            program: python,
            args: vec!["-m".into(), "fathom._parse".into()],
        }
    } else {
        ParserIsolation::InProcess
    };
    Ok(ParseLimits {
        isolation,
        timeout: Duration::from_secs_f64(timeout),
        max_memory,
        ocr: parse_ocr(ocr)?,
        ..ParseLimits::default()
    })
}

/// The child's side of `isolate=True`: parses stdin as `format`, writes the document as JSON.
#[pyfunction]
pub fn _parse_helper(py: Python<'_>, format: String) -> u8 {
    py.detach(|| fathom_docs::parse_helper(&format))
}

fn body_sections(body: &Body) -> Vec<(String, Option<String>)> {
    match body {
        Body::Text(text, _) => vec![(text.clone(), None)],
        Body::Located(doc) => doc
            .sections
            .iter()
            .map(|s| (s.text.clone(), s.location.as_ref().map(location_json)))
            .collect(),
    }
}

fn location_json(l: &fathom_docs::Location) -> String {
    serde_json::to_string(l).expect("a location serializes")
}

/// Reads one file as `fathom ingest` would (by `path`'s extension; `data` is its bytes, read
/// from `path` when not given). Returns a dict: `format`, `status` ("text", "skipped" or
/// "failed"), `sections` (a list of `(text, location JSON or None)`), `lossy`, `message`.
#[pyfunction]
#[pyo3(signature = (path, data=None, *, json_field=None, ocr="auto", isolate=true, timeout=60.0, max_memory=1 << 30))]
#[allow(clippy::too_many_arguments)]
pub fn read_document<'py>(
    py: Python<'py>,
    path: PathBuf,
    data: Option<Vec<u8>>,
    json_field: Option<String>,
    ocr: &str,
    isolate: bool,
    timeout: f64,
    max_memory: u64,
) -> PyResult<Bound<'py, PyDict>> {
    let limits = parse_limits(py, ocr, isolate, timeout, max_memory)?;
    let read = run_detached(py, || {
        let bytes = match data {
            Some(d) => d,
            None => std::fs::read(&path)?,
        };
        Ok(read_file(&path, &bytes, json_field.as_deref(), &limits))
    })?;
    let d = PyDict::new(py);
    d.set_item("format", Format::of(&path).name())?;
    match read {
        FileText::Body { body, lossy } => {
            d.set_item("status", "text")?;
            d.set_item("sections", body_sections(&body))?;
            d.set_item("lossy", lossy)?;
            d.set_item("message", None::<String>)?;
        }
        FileText::Skipped { message, .. } => {
            d.set_item("status", "skipped")?;
            d.set_item("sections", PyList::empty(py))?;
            d.set_item("lossy", false)?;
            d.set_item("message", message)?;
        }
        FileText::Failed(message) => {
            d.set_item("status", "failed")?;
            d.set_item("sections", PyList::empty(py))?;
            d.set_item("lossy", false)?;
            d.set_item("message", message)?;
        }
    }
    Ok(d)
}

/// One source a worker handles: its id, its path under the root, and the hash stored for it.
type Item = (String, String, Option<String>);

/// An item's source id.
trait ItemId {
    fn source_id(&self) -> &str;
}

impl ItemId for Item {
    fn source_id(&self) -> &str {
        &self.0
    }
}

impl ItemId for (String, String, Vec<u8>, Option<String>) {
    fn source_id(&self) -> &str {
        &self.0
    }
}

/// What happened to one source in [`Ingestor::process`].
#[derive(Debug, Default)]
struct Status {
    source_id: String,
    status: &'static str,
    hash: Option<String>,
    chunks: usize,
    kind: Option<String>,
    message: Option<String>,
    warnings: Vec<String>,
}

/// A source read and chunked, waiting for its vectors.
struct Ready {
    status: usize,
    source_id: String,
    hash: String,
    chunks: Vec<TextChunk>,
}

/// The rows of a batch of sources, column by column.
#[derive(Default)]
struct Rows {
    chunk_id: Vec<String>,
    source_id: Vec<String>,
    source_hash: Vec<String>,
    chunk_index: Vec<u32>,
    byte_start: Vec<u64>,
    byte_end: Vec<u64>,
    char_start: Vec<u64>,
    char_end: Vec<u64>,
    text: Vec<String>,
    location: Vec<Option<String>>,
    vector: Vec<f32>,
}

/// Files to rows of a collection, with one model and the CLI's chunking: what a Ray worker holds.
///
/// `Ingestor(model, chunk_tokens=None, overlap=None, ...)`: `model` is a loaded
/// `SentenceTransformer`; chunk size and overlap default to the CLI's (the model's window less its
/// special tokens, and a quarter of that).
#[pyclass(frozen, module = "fathom")]
#[derive(Debug)]
pub struct Ingestor {
    model: Arc<Embedder>,
    /// The model's tokenizer, prepared for chunking once.
    tokens: ChunkTokenizer,
    name: String,
    size: ChunkSize,
    max_chunks: usize,
    json_field: Option<String>,
    limits: ParseLimits,
    max_file_size: u64,
    confine: bool,
}

impl Ingestor {
    /// Reads one file under `root` (confined to it, as the CLI reads), then [`Self::prepare`].
    fn prepare_file(
        &self,
        files: &Files,
        root: &Path,
        item: &Item,
        status: &mut Status,
    ) -> Option<Ready> {
        let (source_id, rel, stored) = item;
        let entry = FileEntry {
            path: root.join(rel),
            rel: PathBuf::from(rel),
            source_id: source_id.clone(),
            size: 0,
        };
        match files.read(&entry) {
            Ok(bytes) => self.prepare(source_id, &entry.path, &bytes, stored.as_deref(), status),
            Err(e) => {
                status.status = "unreadable";
                status.kind = Some("error".into());
                status.message = Some(e.to_string());
                None
            }
        }
    }

    /// Hashes, reads (by `path`'s extension) and chunks one source's bytes; `None` when it is
    /// unchanged (`stored` is its hash) or has nothing to embed (`status` says why).
    fn prepare(
        &self,
        source_id: &str,
        path: &Path,
        bytes: &[u8],
        stored: Option<&str>,
        status: &mut Status,
    ) -> Option<Ready> {
        let hash = source_hash(bytes, self.size);
        status.hash = Some(hash.clone());
        if stored == Some(hash.as_str()) {
            status.status = "unchanged";
            return None;
        }
        let body = match read_file(path, bytes, self.json_field.as_deref(), &self.limits) {
            FileText::Body { body, lossy } => {
                if lossy {
                    status.warnings.push(fathom_docs::LOSSY_UTF8.into());
                }
                body
            }
            FileText::Skipped { kind, message } => {
                status.status = "skipped";
                status.kind = kind_name(kind);
                status.message = Some(message);
                return None;
            }
            FileText::Failed(message) => {
                status.status = "failed";
                status.kind = Some("error".into());
                status.message = Some(message);
                return None;
            }
        };
        match body.chunk(&self.tokens, self.size, self.max_chunks) {
            Ok(chunked) => {
                if chunked.truncated {
                    status
                        .warnings
                        .push(fathom_docs::truncated_message(self.max_chunks));
                }
                Some(Ready {
                    status: 0,
                    source_id: source_id.to_string(),
                    hash,
                    chunks: chunked.chunks,
                })
            }
            Err(e) => {
                status.status = "failed";
                status.kind = Some("error".into());
                status.message = Some(e.to_string());
                None
            }
        }
    }

    /// Embeds the ready sources, a group of chunks at a time; a group that fails is retried one
    /// source at a time so that one bad source fails alone (as the CLI does).
    fn embed(&self, ready: Vec<Ready>, statuses: &mut [Status], rows: &mut Rows) {
        let mut group: Vec<Ready> = Vec::new();
        let mut in_group = 0;
        let flush = |group: &mut Vec<Ready>, statuses: &mut [Status], rows: &mut Rows| {
            if group.is_empty() {
                return;
            }
            let sources = std::mem::take(group);
            match self.vectors(&sources) {
                Ok(vectors) => self.emit(sources, vectors, statuses, rows),
                Err(_) if sources.len() > 1 => {
                    for one in sources {
                        let one = vec![one];
                        match self.vectors(&one) {
                            Ok(v) => self.emit(one, v, statuses, rows),
                            Err(e) => fail(&mut statuses[one[0].status], e),
                        }
                    }
                }
                Err(e) => fail(&mut statuses[sources[0].status], e),
            }
        };
        for r in ready {
            in_group += r.chunks.len();
            group.push(r);
            if in_group >= 256 {
                flush(&mut group, statuses, rows);
                in_group = 0;
            }
        }
        flush(&mut group, statuses, rows);
    }

    /// The vectors of the sources' chunks, in order; a panic in the model is an error (for
    /// these sources only), as in the CLI's embedding stage.
    fn vectors(&self, sources: &[Ready]) -> Result<Vec<Vec<f32>>, String> {
        let (texts, ids) = fathom_docs::model_inputs(sources.iter().flat_map(|s| &s.chunks));
        let vectors = fathom_docs::catch_panic("model", || self.model.embed_chunks(&texts, &ids))?
            .map_err(|e| e.to_string())?
            .0;
        if vectors.len() != texts.len() {
            return Err(format!(
                "the model returned {} vectors for {} chunks",
                vectors.len(),
                texts.len()
            ));
        }
        Ok(vectors)
    }

    fn emit(
        &self,
        sources: Vec<Ready>,
        vectors: Vec<Vec<f32>>,
        statuses: &mut [Status],
        rows: &mut Rows,
    ) {
        let mut vectors = vectors.into_iter();
        for source in sources {
            let status = &mut statuses[source.status];
            status.status = "embedded";
            status.chunks = source.chunks.len();
            for (i, chunk) in source.chunks.into_iter().enumerate() {
                let index = i as u32;
                rows.chunk_id
                    .push(row::chunk_id(&source.source_id, &source.hash, index));
                rows.source_id.push(source.source_id.clone());
                rows.source_hash.push(source.hash.clone());
                rows.chunk_index.push(index);
                rows.byte_start.push(chunk.byte_start as u64);
                rows.byte_end.push(chunk.byte_end as u64);
                rows.char_start.push(chunk.char_start as u64);
                rows.char_end.push(chunk.char_end as u64);
                rows.location
                    .push(chunk.location.as_ref().map(location_json));
                rows.text.push(chunk.text);
                rows.vector
                    .extend(vectors.next().expect("one vector per chunk"));
            }
        }
    }
}

fn fail(status: &mut Status, e: String) {
    status.status = "failed";
    status.kind = Some("error".into());
    status.message = Some(format!("embedding failed: {e}"));
}

#[pymethods]
impl Ingestor {
    #[new]
    #[pyo3(signature = (model, *, chunk_tokens=None, overlap=None, max_chunks_per_file=10_000, json_field=None, ocr="auto", isolate=true, timeout=60.0, max_memory=1 << 30, max_file_size=20 * 1024 * 1024, follow_links=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        model: &SentenceTransformer,
        chunk_tokens: Option<usize>,
        overlap: Option<usize>,
        max_chunks_per_file: usize,
        json_field: Option<String>,
        ocr: &str,
        isolate: bool,
        timeout: f64,
        max_memory: u64,
        max_file_size: u64,
        follow_links: bool,
    ) -> PyResult<Self> {
        let embedder = model.embedder();
        let default = ChunkSize::for_max_seq_length(embedder.max_seq_length());
        let tokens = chunk_tokens.unwrap_or(default.tokens);
        let size = ChunkSize {
            tokens,
            overlap: overlap.unwrap_or_else(|| ChunkSize::default_overlap(tokens)),
        };
        if size.tokens == 0 || size.overlap >= size.tokens {
            return Err(PyValueError::new_err(format!(
                "chunk size {} with overlap {}: the overlap must be smaller than the chunk size",
                size.tokens, size.overlap
            )));
        }
        Ok(Self {
            name: embedder.layout().name.clone(),
            tokens: ChunkTokenizer::new(embedder.tokenizer()),
            model: embedder,
            size,
            max_chunks: max_chunks_per_file.max(1),
            json_field,
            limits: parse_limits(py, ocr, isolate, timeout, max_memory)?,
            max_file_size,
            confine: !follow_links,
        })
    }

    /// Chunk size in tokens.
    #[getter]
    fn chunk_tokens(&self) -> usize {
        self.size.tokens
    }

    /// The size limit of one file, in bytes.
    #[getter]
    fn max_file_size(&self) -> u64 {
        self.max_file_size
    }

    /// Tokens shared by consecutive chunks.
    #[getter]
    fn overlap(&self) -> usize {
        self.size.overlap
    }

    /// The collection's model record, as the CLI writes it into the dataset's metadata:
    /// `(model name, dimension, normalized)`.
    #[getter]
    fn model_spec(&self) -> (String, usize, bool) {
        (
            self.name.clone(),
            self.model.dimension(),
            self.model.layout().normalize,
        )
    }

    /// The hash the CLI stores for a source with these bytes and this chunking.
    fn source_hash(&self, data: &[u8]) -> String {
        source_hash(data, self.size)
    }

    /// Chunks text as the CLI chunks a file of `format` ("text", "markdown"…): a list of dicts
    /// with `text`, `byte_start`, `byte_end`, `char_start`, `char_end`.
    #[pyo3(signature = (text, format="text"))]
    fn chunk<'py>(
        &self,
        py: Python<'py>,
        text: String,
        format: &str,
    ) -> PyResult<Bound<'py, PyList>> {
        let format = match format {
            "markdown" => Format::Markdown,
            "text" => Format::Text,
            other => {
                return Err(PyValueError::new_err(format!(
                    "format '{other}' is not one of 'text', 'markdown'"
                )))
            }
        };
        let chunked = run_detached(py, || {
            Body::Text(text, format)
                .chunk(&self.tokens, self.size, self.max_chunks)
                .map_err(|e| PyValueError::new_err(e.to_string()))
        })?;
        let out = PyList::empty(py);
        for c in chunked.chunks {
            let d = PyDict::new(py);
            d.set_item("text", c.text)?;
            d.set_item("byte_start", c.byte_start)?;
            d.set_item("byte_end", c.byte_end)?;
            d.set_item("char_start", c.char_start)?;
            d.set_item("char_end", c.char_end)?;
            out.append(d)?;
        }
        Ok(out)
    }

    /// Reads, hashes, chunks and embeds files under `root`: `items` is a list of
    /// `(source_id, relative path, stored hash or None)`. A file whose hash equals the stored
    /// one is not read further. Returns `(columns, statuses)`: the rows of every embedded source
    /// as a dict of columns (`vector` a flat float32 array, `dimension` values a row), and one
    /// dict per item with `source_id`, `status` ("embedded", "unchanged", "skipped", "failed",
    /// "unreadable"; from `process_bytes` also "too_large"), `hash`, `chunks`, `kind`, `message`
    /// and `warnings`.
    fn process<'py>(
        &self,
        py: Python<'py>,
        root: PathBuf,
        items: Vec<Item>,
    ) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyList>)> {
        let (rows, statuses) = run_detached(py, || {
            let files = Files::new(&root, self.confine, self.max_file_size).map_err(|e| {
                PyValueError::new_err(format!("cannot open `{}`: {e}", root.display()))
            })?;
            Ok(self.run(&items, |item, status| {
                self.prepare_file(&files, &root, item, status)
            }))
        })?;
        self.output(py, rows, statuses)
    }

    /// [`Ingestor::process`] for sources whose bytes the caller read (from object storage, a
    /// database…): `items` is a list of `(source_id, name, bytes, stored hash or None)`; the
    /// name's extension picks the reader, as a file's does.
    fn process_bytes<'py>(
        &self,
        py: Python<'py>,
        items: Vec<(String, String, Vec<u8>, Option<String>)>,
    ) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyList>)> {
        let (rows, statuses) = run_detached(py, || {
            Ok(self.run(&items, |(id, name, bytes, stored), status| {
                if bytes.len() as u64 > self.max_file_size {
                    status.status = "too_large";
                    status.kind = Some("error".into());
                    status.message = Some(format!(
                        "larger than the size limit of {} bytes",
                        self.max_file_size
                    ));
                    return None;
                }
                self.prepare(id, Path::new(name), bytes, stored.as_deref(), status)
            }))
        })?;
        self.output(py, rows, statuses)
    }
}

impl Ingestor {
    /// Prepares each item (a panic caught per item), then embeds what is ready.
    /// Prepares the items on the model's thread pool, in order (a panic caught per item), then
    /// embeds what is ready: reading and tokenizing for chunk sizes is most of a fast model's
    /// work, and one thread of it would leave a worker's other cores idle (as in the CLI).
    fn run<T>(
        &self,
        items: &[T],
        prepare: impl Fn(&T, &mut Status) -> Option<Ready> + Sync,
    ) -> (Rows, Vec<Status>)
    where
        T: ItemId + Sync,
    {
        use rayon::prelude::*;
        let prepared: Vec<(Status, Option<Ready>)> = items
            .par_iter()
            .map(|item| {
                let mut status = Status {
                    source_id: item.source_id().to_string(),
                    ..Status::default()
                };
                match fathom_docs::catch_panic("reader", || prepare(item, &mut status)) {
                    Ok(ready) => (status, ready),
                    Err(message) => {
                        status.status = "failed";
                        status.kind = Some("error".into());
                        status.message = Some(message);
                        (status, None)
                    }
                }
            })
            .collect();
        let mut statuses: Vec<Status> = Vec::with_capacity(items.len());
        let mut ready = Vec::new();
        for (status, r) in prepared {
            if let Some(mut r) = r {
                r.status = statuses.len();
                ready.push(r);
            }
            statuses.push(status);
        }
        let mut rows = Rows::default();
        self.embed(ready, &mut statuses, &mut rows);
        (rows, statuses)
    }

    fn output<'py>(
        &self,
        py: Python<'py>,
        rows: Rows,
        statuses: Vec<Status>,
    ) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyList>)> {
        let columns = PyDict::new(py);
        columns.set_item(row::CHUNK_ID, rows.chunk_id)?;
        columns.set_item(row::SOURCE_ID, rows.source_id)?;
        columns.set_item(row::SOURCE_HASH, rows.source_hash)?;
        columns.set_item(row::CHUNK_INDEX, rows.chunk_index)?;
        columns.set_item(row::BYTE_START, rows.byte_start)?;
        columns.set_item(row::BYTE_END, rows.byte_end)?;
        columns.set_item(row::CHAR_START, rows.char_start)?;
        columns.set_item(row::CHAR_END, rows.char_end)?;
        let n = rows.text.len();
        columns.set_item(row::TEXT, rows.text)?;
        columns.set_item(row::METADATA, vec![None::<String>; n])?;
        columns.set_item(row::LOCATION, rows.location)?;
        if rows.vector.len() != n * self.model.dimension() {
            return Err(PyRuntimeError::new_err(
                "vectors and chunks differ in number",
            ));
        }
        columns.set_item(row::VECTOR, PyArray1::from_vec(py, rows.vector))?;
        let out = PyList::empty(py);
        for s in statuses {
            let d = PyDict::new(py);
            d.set_item("source_id", s.source_id)?;
            d.set_item("status", s.status)?;
            d.set_item("hash", s.hash)?;
            d.set_item("chunks", s.chunks)?;
            d.set_item("kind", s.kind)?;
            d.set_item("message", s.message)?;
            d.set_item("warnings", s.warnings)?;
            out.append(d)?;
        }
        Ok((columns, out))
    }
}
