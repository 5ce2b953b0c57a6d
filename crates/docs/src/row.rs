//! A collection's rows as every writer makes them: the columns (names, types, nullability), the
//! dataset metadata that records the model, a chunk's id and a source's hash. `fathom-store`
//! builds its Arrow schema from [`COLUMNS`]; the Python package builds the same schema from them
//! for writers outside the CLI (Ray workers), so both write one layout.

use crate::chunk::ChunkSize;

pub const CHUNK_ID: &str = "chunk_id";
pub const SOURCE_ID: &str = "source_id";
pub const SOURCE_HASH: &str = "source_hash";
pub const CHUNK_INDEX: &str = "chunk_index";
pub const BYTE_START: &str = "byte_start";
pub const BYTE_END: &str = "byte_end";
pub const CHAR_START: &str = "char_start";
pub const CHAR_END: &str = "char_end";
pub const TEXT: &str = "text";
pub const METADATA: &str = "metadata";
/// Where in its document a chunk is (a page, a slide, a row…): a
/// [`Location`](crate::Location) as JSON, or null. Collections written before it have no such
/// column until their next write adds it (as nulls).
pub const LOCATION: &str = "location";
pub const VECTOR: &str = "vector";

/// The dataset metadata keys that record the model a collection's vectors come from.
pub const META_MODEL: &str = "fathom.model";
pub const META_DIMENSION: &str = "fathom.dimension";
pub const META_NORMALIZED: &str = "fathom.normalized";

/// The indexes every writer of a collection keeps: BM25 on `text` always, IVF_PQ on `vector`
/// from [`ANN_THRESHOLD`] rows, under these names.
pub const TEXT_INDEX: &str = "text_fts";
pub const VECTOR_INDEX: &str = "vector_ann";
/// Below this many chunks, vector search is exact; from it on, an IVF_PQ index is built.
pub const ANN_THRESHOLD: usize = 100_000;

/// IVF partitions of the vector index over `rows` rows: about √rows, 1 to 4,096.
pub fn ivf_partitions(rows: usize) -> usize {
    ((rows as f64).sqrt() as usize).clamp(1, 4096)
}

/// PQ sub-vectors: 8 dimensions each where that divides the dimension, else the largest divisor
/// of the dimension that keeps sub-vectors at least 4 wide.
pub fn pq_sub_vectors(dimension: usize) -> usize {
    if dimension.is_multiple_of(8) {
        return dimension / 8;
    }
    (1..=dimension / 4)
        .rev()
        .find(|n| dimension.is_multiple_of(*n))
        .unwrap_or(1)
}

/// A column's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Utf8,
    UInt32,
    UInt64,
    /// A fixed-size list of the model's dimension of (nullable) f32 items named `item`.
    Vector,
}

/// One column of a collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub kind: ColumnType,
    pub nullable: bool,
}

const fn column(name: &'static str, kind: ColumnType, nullable: bool) -> Column {
    Column {
        name,
        kind,
        nullable,
    }
}

/// A collection's columns, in order.
pub const COLUMNS: [Column; 12] = [
    column(CHUNK_ID, ColumnType::Utf8, false),
    column(SOURCE_ID, ColumnType::Utf8, false),
    column(SOURCE_HASH, ColumnType::Utf8, false),
    column(CHUNK_INDEX, ColumnType::UInt32, false),
    column(BYTE_START, ColumnType::UInt64, false),
    column(BYTE_END, ColumnType::UInt64, false),
    column(CHAR_START, ColumnType::UInt64, false),
    column(CHAR_END, ColumnType::UInt64, false),
    column(TEXT, ColumnType::Utf8, false),
    column(METADATA, ColumnType::Utf8, true),
    column(LOCATION, ColumnType::Utf8, true),
    column(VECTOR, ColumnType::Vector, false),
];

/// A chunk id that stays the same as long as the source's path, content and chunking do.
pub fn chunk_id(source_id: &str, source_hash: &str, index: u32) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(source_id.as_bytes());
    hasher.update(&[0]);
    hasher.update(source_hash.as_bytes());
    hasher.update(&[0]);
    hasher.update(&index.to_le_bytes());
    hasher.finalize().to_hex()[..32].to_string()
}

/// What a source is stored under: the blake3 of its bytes and the chunking it was split with, so
/// that changing the chunk size or overlap re-chunks it on the next run.
pub fn source_hash(bytes: &[u8], size: ChunkSize) -> String {
    format!(
        "{}:{}/{}",
        blake3::hash(bytes).to_hex(),
        size.tokens,
        size.overlap
    )
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
        // The id of a chunk of a stored collection never changes (a change re-embeds everything).
        assert_eq!(chunk_id("a.md", "h", 0).len(), 32);
    }

    #[test]
    fn pq_sub_vectors_divide_the_dimension() {
        assert_eq!(pq_sub_vectors(384), 48);
        assert_eq!(pq_sub_vectors(1024), 128);
        assert_eq!(pq_sub_vectors(30), 6);
        assert_eq!(30 % pq_sub_vectors(30), 0);
    }

    #[test]
    fn a_source_hash_names_its_chunking() {
        let size = ChunkSize {
            tokens: 254,
            overlap: 63,
        };
        let hash = source_hash(b"hello", size);
        assert!(hash.ends_with(":254/63"), "{hash}");
        assert_eq!(
            hash.split(':').next().unwrap(),
            blake3::hash(b"hello").to_hex().as_str()
        );
    }
}
