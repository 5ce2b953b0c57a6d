//! The row layout of a collection and the conversion of chunks to Arrow batches.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{
    Array, FixedSizeListArray, Float32Array, RecordBatch, StringArray, UInt32Array, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema};

use crate::error::{Result, StoreError};

pub(crate) use fathom_docs::row::{
    chunk_id, ColumnType, BYTE_END, BYTE_START, CHAR_END, CHAR_START, CHUNK_ID, CHUNK_INDEX,
    COLUMNS, LOCATION, METADATA, META_DIMENSION, META_MODEL, META_NORMALIZED, SOURCE_HASH,
    SOURCE_ID, TEXT, VECTOR,
};
pub use fathom_docs::Location;

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

pub(crate) fn arrow_schema(spec: &ModelSpec) -> Arc<Schema> {
    let fields: Vec<Field> = COLUMNS
        .iter()
        .map(|c| {
            let kind = match c.kind {
                ColumnType::Utf8 => DataType::Utf8,
                ColumnType::UInt32 => DataType::UInt32,
                ColumnType::UInt64 => DataType::UInt64,
                ColumnType::Vector => DataType::FixedSizeList(
                    Arc::new(Field::new("item", DataType::Float32, true)),
                    spec.dimension as i32,
                ),
            };
            Field::new(c.name, kind, c.nullable)
        })
        .collect();
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
