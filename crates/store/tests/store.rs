//! The store against a real lance dataset in a temp folder, with synthetic vectors (the model is
//! exercised by the ingest and end-to-end tests).

use std::sync::Arc;
use std::time::Duration;

use fathom_store::{
    ChunkRecord, Filter, IndexPolicy, ModelSpec, SearchMode, SearchQuery, SourceChunks, Store,
    StoreError, UpkeepPolicy,
};

const DIM: usize = 16;

fn spec() -> ModelSpec {
    ModelSpec {
        model: "models/test-model".into(),
        dimension: DIM,
        normalized: true,
    }
}

/// A unit vector pointing mostly along axis `axis`.
fn unit(axis: usize, jitter: f32) -> Vec<f32> {
    let mut v: Vec<f32> = (0..DIM)
        .map(|i| {
            if i == axis % DIM {
                1.0
            } else {
                jitter * (i as f32 + 1.0) / DIM as f32
            }
        })
        .collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

fn source(id: &str, hash: &str, texts: &[(&str, usize)]) -> SourceChunks {
    let mut offset = 0;
    SourceChunks {
        source_id: id.into(),
        source_hash: hash.into(),
        metadata: None,
        chunks: texts
            .iter()
            .enumerate()
            .map(|(i, (text, axis))| {
                let c = ChunkRecord {
                    chunk_index: i as u32,
                    byte_start: offset,
                    byte_end: offset + text.len() as u64,
                    char_start: offset,
                    char_end: offset + text.chars().count() as u64,
                    text: text.to_string(),
                    location: None,
                    vector: unit(*axis, 0.01 * i as f32),
                };
                offset += text.len() as u64 + 1;
                c
            })
            .collect(),
    }
}

fn vector_query(axis: usize, k: usize) -> SearchQuery {
    SearchQuery {
        vector: Some(unit(axis, 0.0)),
        text: None,
        mode: SearchMode::Vector,
        k,
        filters: Vec::new(),
    }
}

#[tokio::test]
async fn replace_list_search_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path().to_str().unwrap());
    let c = store.collection("default", &spec()).await.unwrap();
    assert!(
        c.search(&vector_query(0, 5)).await.unwrap().is_empty(),
        "empty before the first write"
    );

    c.replace_sources(&[
        source(
            "docs/a.md",
            "h1",
            &[("alpha rust ownership", 0), ("beta borrow checker", 1)],
        ),
        source("docs/b.md", "h2", &[("gamma garbage collector", 2)]),
        source("notes/c.txt", "h3", &[("delta tokio runtime", 3)]),
    ])
    .await
    .unwrap();
    c.update_indexes().await.unwrap();
    let sources = c.sources().await.unwrap();
    let listed: Vec<(&str, usize)> = sources
        .iter()
        .map(|s| (s.source_id.as_str(), s.chunks))
        .collect();
    assert_eq!(
        listed,
        [("docs/a.md", 2), ("docs/b.md", 1), ("notes/c.txt", 1)]
    );

    // A source's chunks by index, in order; a quote in the id is data, not SQL.
    let texts = |hits: Vec<fathom_store::Hit>| -> Vec<(u32, String)> {
        hits.into_iter().map(|h| (h.chunk_index, h.text)).collect()
    };
    assert_eq!(
        texts(c.chunks("docs/a.md", 0..=5).await.unwrap()),
        [
            (0, "alpha rust ownership".to_string()),
            (1, "beta borrow checker".to_string())
        ]
    );
    assert_eq!(
        texts(c.chunks("docs/a.md", 1..=1).await.unwrap()),
        [(1, "beta borrow checker".to_string())]
    );
    assert!(c
        .chunks("docs/a.md' OR '1'='1", 0..=5)
        .await
        .unwrap()
        .is_empty());

    let hits = c.search(&vector_query(2, 2)).await.unwrap();
    assert_eq!(hits[0].source_id, "docs/b.md");
    assert!(
        (hits[0].score - 1.0).abs() < 1e-4,
        "cosine of identical direction: {}",
        hits[0].score
    );
    assert_eq!(hits.len(), 2);

    // Prefiltered: k results when k match, all from the filter.
    let mut q = vector_query(3, 2);
    q.filters = vec![Filter::parse("source:docs/").unwrap()];
    let hits = c.search(&q).await.unwrap();
    assert_eq!(hits.len(), 2);
    assert!(hits.iter().all(|h| h.source_id.starts_with("docs/")));
    q.filters = vec![Filter::parse("source:*.txt").unwrap()];
    let hits = c.search(&q).await.unwrap();
    assert_eq!(
        hits.iter()
            .map(|h| h.source_id.as_str())
            .collect::<Vec<_>>(),
        ["notes/c.txt"]
    );

    // Full text (BM25) and hybrid.
    let text = SearchQuery {
        vector: None,
        text: Some("borrow checker".into()),
        mode: SearchMode::Text,
        k: 3,
        filters: Vec::new(),
    };
    let hits = c.search(&text).await.unwrap();
    assert_eq!(
        (hits[0].source_id.as_str(), hits[0].chunk_index),
        ("docs/a.md", 1)
    );
    assert_eq!(hits[0].byte_start, 21);
    let hybrid = SearchQuery {
        vector: Some(unit(1, 0.0)),
        mode: SearchMode::Hybrid,
        ..text
    };
    let hits = c.search(&hybrid).await.unwrap();
    assert_eq!(
        (hits[0].source_id.as_str(), hits[0].chunk_index),
        ("docs/a.md", 1)
    );

    // Replacing a source swaps all of its chunks; others stay.
    c.replace_sources(&[source("docs/a.md", "h1b", &[("epsilon new text", 4)])])
        .await
        .unwrap();
    let sources = c.sources().await.unwrap();
    let a = sources.iter().find(|s| s.source_id == "docs/a.md").unwrap();
    assert_eq!((a.chunks, a.source_hash.as_str()), (1, "h1b"));
    assert_eq!(c.stats().await.unwrap().chunks, 3);

    // A source with no chunks is removed; deletes by id.
    c.replace_sources(&[source("docs/b.md", "h2b", &[])])
        .await
        .unwrap();
    assert_eq!(c.delete_sources(&["notes/c.txt".into()]).await.unwrap(), 1);
    let ids: Vec<String> = c
        .sources()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.source_id)
        .collect();
    assert_eq!(ids, ["docs/a.md"]);

    // Reopened from disk, the data and the model record are there.
    let again = Store::new(dir.path().to_str().unwrap())
        .existing_collection("default")
        .await
        .unwrap();
    assert_eq!(again.spec(), &spec());
    assert_eq!(again.stats().await.unwrap().chunks, 1);
    let infos = store.collections().await.unwrap();
    assert_eq!(infos.len(), 1);
    assert_eq!(infos[0].name, "default");
}

#[tokio::test]
async fn another_model_is_refused_and_names_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path().to_str().unwrap());
    let c = store.collection("docs", &spec()).await.unwrap();
    c.replace_sources(&[source("a", "h", &[("text", 0)])])
        .await
        .unwrap();
    // The same model under its hub id is the same model.
    let hub = ModelSpec {
        model: "org/test-model".into(),
        ..spec()
    };
    assert!(store.collection("docs", &hub).await.is_ok());
    let other = ModelSpec {
        model: "BAAI/bge-small-en-v1.5".into(),
        ..spec()
    };
    let err = store.collection("docs", &other).await.unwrap_err();
    assert!(matches!(err, StoreError::ModelMismatch { .. }));
    assert!(
        err.to_string()
            .contains("was written with model `models/test-model`"),
        "{err}"
    );
    let err = store.existing_collection("missing").await.unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(store.collection("../escape", &spec()).await.is_err());
    // A vector of the wrong width is refused before anything is written.
    let mut bad = source("b", "h", &[("x", 0)]);
    bad.chunks[0].vector.pop();
    assert!(matches!(
        c.replace_sources(&[bad]).await,
        Err(StoreError::BadVector { .. })
    ));
    assert_eq!(c.stats().await.unwrap().chunks, 1);
}

#[tokio::test]
async fn concurrent_writers_lose_nothing_and_readers_never_see_half_a_source() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap().to_string();
    let first = Store::new(&root).collection("c", &spec()).await.unwrap();
    first
        .replace_sources(&[source("seed", "h", &[("seed", 0)])])
        .await
        .unwrap();

    // Two writers (separate handles, as two processes would have) and a reader.
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let root = root.clone();
            tokio::spawn(async move {
                let c = Store::new(&root).collection("c", &spec()).await.unwrap();
                for i in 0..5 {
                    let id = format!("w{w}/doc{i}");
                    let texts: Vec<(String, usize)> =
                        (0..4).map(|j| (format!("w{w} d{i} c{j}"), j)).collect();
                    let texts: Vec<(&str, usize)> =
                        texts.iter().map(|(t, a)| (t.as_str(), *a)).collect();
                    c.replace_sources(&[source(&id, "v1", &texts)])
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    let reader = {
        let root = root.clone();
        tokio::spawn(async move {
            let c = Arc::new(Store::new(&root).existing_collection("c").await.unwrap());
            for _ in 0..10 {
                for s in c.sources().await.unwrap() {
                    assert!(
                        s.chunks == 4 || s.source_id == "seed",
                        "half a source: {s:?}"
                    );
                }
                assert!(!c.search(&vector_query(0, 3)).await.unwrap().is_empty());
            }
        })
    };
    for w in writers {
        w.await.unwrap();
    }
    reader.await.unwrap();
    let c = Store::new(&root).existing_collection("c").await.unwrap();
    let sources = c.sources().await.unwrap();
    assert_eq!(sources.len(), 11);
    assert_eq!(c.stats().await.unwrap().chunks, 41);
}

#[tokio::test]
async fn ann_index_past_the_threshold_keeps_new_rows_searchable() {
    let dir = tempfile::tempdir().unwrap();
    let c = Store::new(dir.path().to_str().unwrap())
        .collection("big", &spec())
        .await
        .unwrap()
        .with_index_policy(IndexPolicy {
            ann_threshold: 600,
            ..IndexPolicy::default()
        });
    let sources: Vec<SourceChunks> = (0..700)
        .map(|i| {
            let text = format!("doc {i}");
            source(&format!("s{i}"), "h", &[(text.as_str(), i % DIM)])
        })
        .collect();
    c.replace_sources(&sources).await.unwrap();
    c.update_indexes().await.unwrap();
    let stats = c.stats().await.unwrap();
    assert!(stats.vector_index && stats.text_index, "{stats:?}");
    // Appended after the index was built, before it is optimized: still found.
    let mut fresh = source("fresh", "h", &[("fresh", 0)]);
    fresh.chunks[0].vector = (0..DIM)
        .map(|i| if i < 2 { -(0.5f32.sqrt()) } else { 0.0 })
        .collect();
    c.replace_sources(&[fresh.clone()]).await.unwrap();
    let q = SearchQuery {
        vector: Some(fresh.chunks[0].vector.clone()),
        text: None,
        mode: SearchMode::Vector,
        k: 1,
        filters: Vec::new(),
    };
    assert_eq!(c.search(&q).await.unwrap()[0].source_id, "fresh");
    c.update_indexes().await.unwrap();
    assert_eq!(c.search(&q).await.unwrap()[0].source_id, "fresh");
}

#[tokio::test]
async fn upkeep_compacts_and_removes_versions_once_they_age() {
    // The collection's clock: the wall clock plus `ahead` seconds, moved forward below instead
    // of sleeping until the versions age.
    let ahead = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    let clock = {
        let ahead = ahead.clone();
        fathom_store::Clock::new(move || {
            chrono::Utc::now()
                + chrono::TimeDelta::seconds(ahead.load(std::sync::atomic::Ordering::SeqCst))
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let c = Store::new(dir.path().to_str().unwrap())
        .collection("c", &spec())
        .await
        .unwrap()
        .with_upkeep_policy(UpkeepPolicy {
            after_commits: 1000,
            keep_versions_for: Duration::from_secs(3600),
        })
        .with_clock(clock.clone());
    for i in 0..20 {
        let id = format!("s{i}");
        c.replace_sources(&[source(&id, "h", &[("some text", i % DIM)])])
            .await
            .unwrap();
    }
    let before = c.storage_stats().await.unwrap();
    assert!(
        before.fragments >= 20 && before.versions >= 20,
        "{before:?}"
    );
    assert!(c.needs_upkeep());
    assert_eq!(
        c.idle_upkeep().await.unwrap().map(|u| u.fragments_before),
        Some(before.fragments)
    );
    let young = c.storage_stats().await.unwrap();
    assert_eq!(young.fragments, 1, "compacted: {young:?}");
    assert!(
        young.versions > 1,
        "versions younger than the policy are kept: {young:?}"
    );
    assert!(
        c.needs_upkeep(),
        "the kept versions leave work for an idle round"
    );

    // Two hours later, the hour's policy lets every old version go.
    ahead.store(7200, std::sync::atomic::Ordering::SeqCst);
    let cleaned = c.idle_upkeep().await.unwrap().expect("an idle round ran");
    assert!(cleaned.versions_removed > 0, "{cleaned:?}");
    let after = c.storage_stats().await.unwrap();
    assert_eq!(after.versions, 1, "{after:?}");
    assert_eq!(
        after.version, young.version,
        "removing versions commits nothing"
    );
    assert!(!c.needs_upkeep());
    assert_eq!(c.idle_upkeep().await.unwrap(), None, "nothing left to do");
    assert_eq!(c.sources().await.unwrap().len(), 20);
}

/// The first write creates the dataset. When several writers make that first write at once (shard
/// processes starting together), lance's `WriteMode::Create` commits an Overwrite over a dataset
/// another writer created while it was writing files; every writer's sources must survive.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_racing_to_create_a_collection_lose_nothing() {
    for round in 0..6 {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap().to_string();
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let root = root.clone();
                tokio::spawn(async move {
                    let c = Store::new(&root).collection("c", &spec()).await.unwrap();
                    let id = format!("w{w}");
                    let texts: Vec<(String, usize)> =
                        (0..50).map(|j| (format!("w{w} c{j}"), j)).collect();
                    let texts: Vec<(&str, usize)> =
                        texts.iter().map(|(t, a)| (t.as_str(), *a)).collect();
                    c.replace_sources(&[source(&id, "v1", &texts)])
                        .await
                        .unwrap();
                    c.update_indexes().await.unwrap();
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap();
        }
        let c = Store::new(&root).existing_collection("c").await.unwrap();
        let ids: Vec<String> = c
            .sources()
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.source_id)
            .collect();
        assert_eq!(ids, ["w0", "w1", "w2", "w3"], "round {round}");
        assert_eq!(c.stats().await.unwrap().chunks, 200, "round {round}");
    }
}

/// Bytes of a local collection's data files.
fn data_bytes(root: &std::path::Path, collection: &str) -> u64 {
    let dir = root.join(format!("{collection}.lance")).join("data");
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

/// JSON metadata of `len` bytes that no compressor shrinks (a pseudo-random hex string).
fn incompressible_metadata(seed: u64, len: usize) -> String {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let hex: String = (0..len - 12)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            char::from_digit(((state >> 59) & 15) as u32, 16).unwrap()
        })
        .collect();
    let json = format!(r#"{{"blob":"{hex}"}}"#);
    assert_eq!(json.len(), len - 12 + 11);
    json
}

/// A document's metadata is written with every chunk row, but lance's encoding (dictionary and
/// block compression of the column) keeps one copy per source on disk: 8 KB of metadata on a
/// 300-chunk document costs about 8 KB, not 2.4 MB. This pins the behaviour the server's
/// `--max-metadata-bytes` relies on, should a lance upgrade change its encodings.
#[tokio::test]
async fn metadata_is_stored_once_per_source_not_once_per_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path().to_str().unwrap());
    let texts: Vec<String> = (0..340)
        .map(|i| format!("chunk number {i} of a long document"))
        .collect();
    let chunks = |from: usize, to: usize| -> Vec<(&str, usize)> {
        (from..to).map(|i| (texts[i].as_str(), i)).collect()
    };
    let (short, long) = (chunks(0, 40), chunks(40, 340));
    let meta = [
        incompressible_metadata(1, 8192),
        incompressible_metadata(2, 8192),
    ];
    let mut tagged = [
        source("short.md", "h1", &short),
        source("long.md", "h2", &long),
    ];
    tagged[0].metadata = Some(meta[0].clone());
    tagged[1].metadata = Some(meta[1].clone());
    let plain = [
        source("short.md", "h1", &short),
        source("long.md", "h2", &long),
    ];

    for (name, sources) in [("plain", &plain), ("tagged", &tagged)] {
        let c = store.collection(name, &spec()).await.unwrap();
        c.replace_sources(sources).await.unwrap();
    }
    let plain_bytes = data_bytes(dir.path(), "plain");
    let tagged_bytes = data_bytes(dir.path(), "tagged");
    let metadata_bytes = (meta[0].len() + meta[1].len()) as u64;
    let per_chunk_bytes = (40 * meta[0].len() + 300 * meta[1].len()) as u64;
    assert!(
        tagged_bytes - plain_bytes < 2 * metadata_bytes,
        "metadata cost {} bytes on disk for {metadata_bytes} bytes of metadata on two sources \
         ({per_chunk_bytes} if stored once per chunk)",
        tagged_bytes - plain_bytes
    );

    // Every chunk reads its own source's metadata back.
    let c = store.existing_collection("tagged").await.unwrap();
    for (id, count, meta) in [("short.md", 40, &meta[0]), ("long.md", 300, &meta[1])] {
        let mut query = vector_query(0, 1000);
        query.filters = vec![Filter::Source(id.into())];
        let hits = c.search(&query).await.unwrap();
        assert_eq!(hits.len(), count, "{id}");
        for hit in hits {
            assert_eq!(
                hit.metadata.unwrap().to_string(),
                *meta,
                "{id} chunk {}",
                hit.chunk_index
            );
        }
    }
}
