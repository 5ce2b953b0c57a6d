//! The row layout of a collection and the conversion of chunks to Arrow batches.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{
    Array, FixedSizeListArray, Float32Array, RecordBatch, StringArray, UInt32Array, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema};

use crate::error::{Result, StoreError};

pub(crate) const CHUNK_ID: &str = "chunk_id";
pub(crate) const SOURCE_ID: &str = "source_id";
pub(crate) const SOURCE_HASH: &str = "source_hash";
pub(crate) const CHUNK_INDEX: &str = "chunk_index";
pub(crate) const BYTE_START: &str = "byte_start";
pub(crate) const BYTE_END: &str = "byte_end";
pub(crate) const CHAR_START: &str = "char_start";
pub(crate) const CHAR_END: &str = "char_end";
pub(crate) const TEXT: &str = "text";
pub(crate) const METADATA: &str = "metadata";
/// Where in its document a chunk is (a page, a slide, a row…): [`Location`] as JSON, or null.
/// Collections written before it have no such column until their next write adds it (as nulls).
pub(crate) const LOCATION: &str = "location";
pub(crate) const VECTOR: &str = "vector";

pub(crate) const META_MODEL: &str = "fathom.model";
pub(crate) const META_DIMENSION: &str = "fathom.dimension";
pub(crate) const META_NORMALIZED: &str = "fathom.normalized";

/// A column of a batch read back, as the array type fathom writes it; a typed error (not a panic)
/// when a collection was changed by another tool.
pub(crate) fn column<'a, T: Array + 'static>(
    batch: &'a RecordBatch,
    name: &str,
    expected: &'static str,
) -> Result<&'a T> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| StoreError::Schema {
            column: name.to_string(),
            expected,
        })
}

/// The model a collection's vectors come from: recorded on creation, checked on every open.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ModelSpec {
    pub model: String,
    pub dimension: usize,
    pub normalized: bool,
}

impl ModelSpec {
    /// The model's name without its folder or hub organisation (and revision):
    /// `models/all-MiniLM-L6-v2` and `sentence-transformers/all-MiniLM-L6-v2` are the same model.
    pub fn short_name(&self) -> &str {
        let name = self.model.trim_end_matches('/');
        let name = name.split('@').next().unwrap_or(name);
        name.rsplit(['/', '\\']).next().unwrap_or(name)
    }

    /// Whether vectors of `other` can live in a collection made for `self`.
    pub fn compatible(&self, other: &ModelSpec) -> bool {
        self.short_name() == other.short_name()
            && self.dimension == other.dimension
            && self.normalized == other.normalized
    }

    pub(crate) fn metadata(&self) -> HashMap<String, String> {
        HashMap::from([
            (META_MODEL.to_string(), self.model.clone()),
            (META_DIMENSION.to_string(), self.dimension.to_string()),
            (META_NORMALIZED.to_string(), self.normalized.to_string()),
        ])
    }

    pub(crate) fn from_metadata(meta: &HashMap<String, String>) -> Option<Self> {
        Some(Self {
            model: meta.get(META_MODEL)?.clone(),
            dimension: meta.get(META_DIMENSION)?.parse().ok()?,
            normalized: meta.get(META_NORMALIZED)?.parse().ok()?,
        })
    }
}

/// Where in its document a chunk is: what a person would cite ("p. 12", "slide 3").
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Location {
    /// A PDF page, from 1.
    Page { page: u32 },
    /// A presentation's slide, from 1.
    Slide { slide: u32 },
    /// A spreadsheet's sheet (empty for CSV/TSV) and the first row of the chunk's rows, from 1
    /// (row 1 is the header).
    Sheet { sheet: String, row: u32 },
    /// A message of a mailbox, from 1, and its subject.
    Message {
        message: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<String>,
    },
    /// A notebook's cell, from 1.
    Cell { cell: u32 },
    /// An e-book's chapter (its place in the reading order, from 1) and its title.
    Chapter {
        chapter: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
    },
}

impl Location {
    /// A short label for people: "p. 12", "slide 3", "sheet Q3, row 5000", "row 12" (CSV),
    /// "message 4: Subject", "cell 7", "chapter 2: Title".
    pub fn label(&self) -> String {
        match self {
            Self::Page { page } => format!("p. {page}"),
            Self::Slide { slide } => format!("slide {slide}"),
            Self::Sheet { sheet, row } if sheet.is_empty() => format!("row {row}"),
            Self::Sheet { sheet, row } => format!("sheet {sheet}, row {row}"),
            Self::Message { message, subject } => match subject.as_deref().map(str::trim) {
                Some(s) if !s.is_empty() => format!("message {message}: {s}"),
                _ => format!("message {message}"),
            },
            Self::Cell { cell } => format!("cell {cell}"),
            Self::Chapter { chapter, title } => match title.as_deref().map(str::trim) {
                Some(t) if !t.is_empty() => format!("chapter {chapter}: {t}"),
                _ => format!("chapter {chapter}"),
            },
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label())
    }
}

/// One chunk of a source, with its vector.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkRecord {
    pub chunk_index: u32,
    pub byte_start: u64,
    pub byte_end: u64,
    pub char_start: u64,
    pub char_end: u64,
    pub text: String,
    /// Where in its document the chunk starts, for formats that have places (pages, slides…).
    pub location: Option<Location>,
    pub vector: Vec<f32>,
}

/// All chunks of one source (a file, or a caller-given document): they replace whatever the
/// collection held for that source, atomically.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceChunks {
    pub source_id: String,
    /// Content hash of the source (blake3 hex), used to skip unchanged sources.
    pub source_hash: String,
    /// Optional JSON metadata. It is a column of every chunk row, and lance's encoding of the
    /// column (dictionary, block compression) stores it once per source on disk
    /// (`tests/store.rs` `metadata_is_stored_once_per_source…`).
    pub metadata: Option<String>,
    pub chunks: Vec<ChunkRecord>,
}

/// A chunk id that stays the same as long as the source's path, content and chunking do.
pub(crate) fn chunk_id(source_id: &str, source_hash: &str, index: u32) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(source_id.as_bytes());
    hasher.update(&[0]);
    hasher.update(source_hash.as_bytes());
    hasher.update(&[0]);
    hasher.update(&index.to_le_bytes());
    hasher.finalize().to_hex()[..32].to_string()
}

pub(crate) fn arrow_schema(spec: &ModelSpec) -> Arc<Schema> {
    let fields = vec![
        Field::new(CHUNK_ID, DataType::Utf8, false),
        Field::new(SOURCE_ID, DataType::Utf8, false),
        Field::new(SOURCE_HASH, DataType::Utf8, false),
        Field::new(CHUNK_INDEX, DataType::UInt32, false),
        Field::new(BYTE_START, DataType::UInt64, false),
        Field::new(BYTE_END, DataType::UInt64, false),
        Field::new(CHAR_START, DataType::UInt64, false),
        Field::new(CHAR_END, DataType::UInt64, false),
        Field::new(TEXT, DataType::Utf8, false),
        Field::new(METADATA, DataType::Utf8, true),
        Field::new(LOCATION, DataType::Utf8, true),
        Field::new(
            VECTOR,
            DataType::FixedSizeList(
                Arc::new(Field::new("item", DataType::Float32, true)),
                spec.dimension as i32,
            ),
            false,
        ),
    ];
    Arc::new(Schema::new_with_metadata(fields, spec.metadata()))
}

/// The rows of `sources` as one Arrow batch.
pub(crate) fn to_batch(spec: &ModelSpec, sources: &[SourceChunks]) -> Result<RecordBatch> {
    let rows: usize = sources.iter().map(|s| s.chunks.len()).sum();
    let mut chunk_ids = Vec::with_capacity(rows);
    let mut source_ids = Vec::with_capacity(rows);
    let mut hashes = Vec::with_capacity(rows);
    let mut indexes = Vec::with_capacity(rows);
    let mut offsets: [Vec<u64>; 4] = Default::default();
    let mut texts = Vec::with_capacity(rows);
    let mut metadata = Vec::with_capacity(rows);
    let mut locations: Vec<Option<String>> = Vec::with_capacity(rows);
    let mut values = Vec::with_capacity(rows * spec.dimension);
    for source in sources {
        for chunk in &source.chunks {
            if chunk.vector.len() != spec.dimension {
                return Err(StoreError::BadVector {
                    got: chunk.vector.len(),
                    want: spec.dimension,
                });
            }
            chunk_ids.push(chunk_id(
                &source.source_id,
                &source.source_hash,
                chunk.chunk_index,
            ));
            source_ids.push(source.source_id.as_str());
            hashes.push(source.source_hash.as_str());
            indexes.push(chunk.chunk_index);
            offsets[0].push(chunk.byte_start);
            offsets[1].push(chunk.byte_end);
            offsets[2].push(chunk.char_start);
            offsets[3].push(chunk.char_end);
            texts.push(chunk.text.as_str());
            metadata.push(source.metadata.as_deref());
            locations.push(
                chunk
                    .location
                    .as_ref()
                    .map(|l| serde_json::to_string(l).expect("a location serializes")),
            );
            values.extend_from_slice(&chunk.vector);
        }
    }
    let [bs, be, cs, ce] = offsets;
    let vectors = FixedSizeListArray::try_new(
        Arc::new(Field::new("item", DataType::Float32, true)),
        spec.dimension as i32,
        Arc::new(Float32Array::from(values)),
        None,
    )?;
    let columns: Vec<Arc<dyn Array>> = vec![
        Arc::new(StringArray::from(chunk_ids)),
        Arc::new(StringArray::from(source_ids)),
        Arc::new(StringArray::from(hashes)),
        Arc::new(UInt32Array::from(indexes)),
        Arc::new(UInt64Array::from(bs)),
        Arc::new(UInt64Array::from(be)),
        Arc::new(UInt64Array::from(cs)),
        Arc::new(UInt64Array::from(ce)),
        Arc::new(StringArray::from(texts)),
        Arc::new(StringArray::from(metadata)),
        Arc::new(StringArray::from(locations)),
        Arc::new(vectors),
    ];
    Ok(RecordBatch::try_new(arrow_schema(spec), columns)?)
}

/// A SQL string literal (single quotes doubled).
pub(crate) fn sql_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_ids_are_stable_and_distinct() {
        assert_eq!(chunk_id("a.md", "h", 0), chunk_id("a.md", "h", 0));
        assert_ne!(chunk_id("a.md", "h", 0), chunk_id("a.md", "h", 1));
        assert_ne!(chunk_id("a.md", "h", 0), chunk_id("b.md", "h", 0));
        assert_ne!(chunk_id("a.md", "h", 0), chunk_id("a.md", "g", 0));
    }

    #[test]
    fn model_names_compare_without_folder_or_org() {
        let spec = |m: &str| ModelSpec {
            model: m.into(),
            dimension: 384,
            normalized: true,
        };
        assert!(spec("models/all-MiniLM-L6-v2")
            .compatible(&spec("sentence-transformers/all-MiniLM-L6-v2@main")));
        assert!(!spec("models/all-MiniLM-L6-v2").compatible(&spec("BAAI/bge-small-en-v1.5")));
        let mut other = spec("all-MiniLM-L6-v2");
        other.dimension = 128;
        assert!(!spec("all-MiniLM-L6-v2").compatible(&other));
    }

    #[test]
    fn locations_are_tagged_json_with_labels() {
        let page = Location::Page { page: 12 };
        let json = serde_json::to_string(&page).unwrap();
        assert_eq!(json, r#"{"kind":"page","page":12}"#);
        assert_eq!(serde_json::from_str::<Location>(&json).unwrap(), page);
        assert_eq!(page.label(), "p. 12");
        let row = Location::Sheet {
            sheet: String::new(),
            row: 5000,
        };
        assert_eq!(row.label(), "row 5000");
        let mail = Location::Message {
            message: 4,
            subject: Some("Budget".into()),
        };
        assert_eq!(
            serde_json::to_string(&mail).unwrap(),
            r#"{"kind":"message","message":4,"subject":"Budget"}"#
        );
        assert_eq!(mail.label(), "message 4: Budget");
    }

    #[test]
    fn sql_strings_are_quoted() {
        assert_eq!(sql_str("it's"), "'it''s'");
    }
}
