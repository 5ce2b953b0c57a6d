//! Ingestion with the real model (models/all-MiniLM-L6-v2) into a real lance store in a temp folder.

use std::path::Path;
use std::sync::Arc;

use fathom_ingest::{
    sync_folder, upsert_documents, CancellationToken, Document, FolderOptions, Format, Summary,
};
use fathom_model::{EmbedOptions, Embedder, LoadOptions};
use fathom_store::{Collection, ModelSpec, SearchMode, SearchQuery, Store};

fn model() -> Arc<Embedder> {
    let dir = fathom_testkit::minilm();
    Arc::new(Embedder::load(dir.to_str().unwrap(), &LoadOptions::default()).unwrap())
}

fn spec(model: &Embedder) -> ModelSpec {
    ModelSpec {
        model: model.layout().name.clone(),
        dimension: model.dimension(),
        normalized: model.layout().normalize,
    }
}

async fn sync(model: &Arc<Embedder>, c: &Collection, root: &Path) -> Summary {
    sync_folder(
        model.clone(),
        c,
        root,
        &FolderOptions::default(),
        &|_| {},
        &CancellationToken::new(),
    )
    .await
    .unwrap()
}

use fathom_testkit::write;

async fn search(model: &Embedder, c: &Collection, text: &str, k: usize) -> Vec<fathom_store::Hit> {
    let vector = model
        .embed(&[text], &EmbedOptions::default())
        .unwrap()
        .remove(0);
    c.search(&SearchQuery {
        vector: Some(vector),
        text: Some(text.into()),
        mode: SearchMode::Vector,
        k,
        filters: Vec::new(),
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reingest_touches_only_what_changed() {
    let model = model();
    let docs = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let root = docs.path();
    write(
        root,
        "rust.md",
        "# Rust\n\nRust has ownership and a borrow checker that prevents data races.",
    );
    write(
        root,
        "cooking/pasta.txt",
        "Boil the pasta in salted water for nine minutes, then drain it.",
    );
    write(
        root,
        "space.html",
        "<html><body><h1>Mars</h1><p>Mars is the fourth planet from the Sun.</p></body></html>",
    );
    // Binary data of no known format: skipped and counted (an image would go to OCR).
    write(root, "archive.bin", b"\x89PK\x03\x04\0\0\0\rIHDR binary");
    write(root, "broken.pdf", b"%PDF-1.7 this is not a real pdf");
    write(root, "long-line.txt", "tokens ".repeat(20_000));
    let c = Store::new(data.path().to_str().unwrap())
        .collection("default", &spec(&model))
        .await
        .unwrap();

    let first = sync(&model, &c, root).await;
    assert_eq!(
        (first.added, first.updated, first.deleted, first.unchanged),
        (4, 0, 0, 0),
        "{first:?}"
    );
    assert_eq!(first.skipped_binary, 1);
    assert_eq!(first.errors.len(), 1, "the broken PDF: {:?}", first.errors);
    assert!(first.errors[0].message.contains("PDF"));
    // The 20,000-word line was cut into chunks of at most the model's window.
    let long = c
        .sources()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.source_id.ends_with("long-line.txt"))
        .unwrap();
    assert!(long.chunks >= 20_000 / 254, "{long:?}");

    let hits = search(&model, &c, "which planet is fourth from the sun", 1).await;
    assert!(hits[0].source_id.ends_with("space.html"), "{hits:?}");
    let hits = search(&model, &c, "how long to cook spaghetti", 1).await;
    assert!(hits[0].source_id.ends_with("cooking/pasta.txt"));
    let original = std::fs::read_to_string(root.join("cooking/pasta.txt")).unwrap();
    assert_eq!(
        &original[hits[0].byte_start as usize..hits[0].byte_end as usize],
        hits[0].text
    );

    // Nothing changed: nothing is embedded.
    let second = sync(&model, &c, root).await;
    assert_eq!(
        (
            second.added,
            second.updated,
            second.deleted,
            second.unchanged,
            second.tokens
        ),
        (0, 0, 0, 4, 0),
        "{second:?}"
    );

    // Edit one, add one, delete one.
    write(
        root,
        "rust.md",
        "# Rust\n\nCargo is Rust's build tool and package manager.",
    );
    write(
        root,
        "new.md",
        "Photosynthesis turns light into chemical energy in plants.",
    );
    std::fs::remove_file(root.join("space.html")).unwrap();
    let third = sync(&model, &c, root).await;
    assert_eq!(
        (third.added, third.updated, third.deleted, third.unchanged),
        (1, 1, 1, 2),
        "{third:?}"
    );
    let ids: Vec<String> = c
        .sources()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.source_id)
        .collect();
    assert!(!ids.iter().any(|id| id.ends_with("space.html")));
    let hits = search(&model, &c, "package manager for rust", 1).await;
    assert!(
        hits[0].source_id.ends_with("rust.md") && hits[0].text.contains("Cargo"),
        "{hits:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_keep_working_during_an_ingest() {
    let model = model();
    let docs = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    write(
        docs.path(),
        "seed.txt",
        "The seed document is about lighthouses on rocky coasts.",
    );
    let store = Store::new(data.path().to_str().unwrap());
    let c = Arc::new(store.collection("default", &spec(&model)).await.unwrap());
    sync(&model, &c, docs.path()).await;
    for i in 0..60 {
        write(
            docs.path(),
            &format!("batch/{i}.txt"),
            format!("Document {i} talks about topic number {i} in some detail."),
        );
    }
    let options = FolderOptions {
        write_batch: 8,
        embed_batch: 8,
        ..FolderOptions::default()
    };
    let ingest = {
        let (model, c, root) = (model.clone(), c.clone(), docs.path().to_path_buf());
        tokio::spawn(async move {
            sync_folder(
                model,
                &c,
                &root,
                &options,
                &|_| {},
                &CancellationToken::new(),
            )
            .await
            .unwrap()
        })
    };
    let reader = store.existing_collection("default").await.unwrap();
    let mut searches = 0;
    while !ingest.is_finished() {
        let hits = search(&model, &reader, "lighthouse on the coast", 1).await;
        assert!(hits[0].source_id.ends_with("seed.txt"));
        searches += 1;
    }
    let summary = ingest.await.unwrap();
    assert_eq!(summary.added, 60);
    assert!(searches > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_ingest_leaves_whole_sources_and_the_next_run_finishes() {
    let model = model();
    let docs = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    for i in 0..40 {
        write(
            docs.path(),
            &format!("{i:02}.txt"),
            format!("Paragraph {i}. ").repeat(30),
        );
    }
    let c = Store::new(data.path().to_str().unwrap())
        .collection("default", &spec(&model))
        .await
        .unwrap();
    let cancel = CancellationToken::new();
    let options = FolderOptions {
        write_batch: 4,
        embed_batch: 4,
        ..FolderOptions::default()
    };
    let stop = cancel.clone();
    let on_event = move |e: fathom_ingest::Event| {
        if matches!(e, fathom_ingest::Event::Written { .. }) {
            stop.cancel();
        }
    };
    let partial = sync_folder(model.clone(), &c, docs.path(), &options, &on_event, &cancel)
        .await
        .unwrap();
    assert!(partial.interrupted);
    let stored = c.sources().await.unwrap();
    assert!(
        !stored.is_empty() && stored.len() < 40,
        "{} sources",
        stored.len()
    );
    let rest = sync(&model, &c, docs.path()).await;
    assert_eq!(rest.added + stored.len(), 40);
    assert_eq!(rest.unchanged, stored.len());
    assert_eq!(c.sources().await.unwrap().len(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_upsert_and_skip_unchanged() {
    let model = model();
    let data = tempfile::tempdir().unwrap();
    let c = Store::new(data.path().to_str().unwrap())
        .collection("docs", &spec(&model))
        .await
        .unwrap();
    let doc = |id: &str, text: &str| Document {
        id: id.into(),
        text: text.into(),
        metadata: Some(serde_json::json!({"lang": "en"})),
        format: Format::Text,
    };
    let run = |docs: Vec<Document>| {
        let model = model.clone();
        let c = &c;
        async move {
            upsert_documents(
                model,
                c,
                docs,
                &FolderOptions::default(),
                &|_| {},
                &CancellationToken::new(),
            )
            .await
            .unwrap()
        }
    };
    let s = run(vec![
        doc("1", "Whales are mammals."),
        doc("2", "Granite is an igneous rock."),
    ])
    .await;
    assert_eq!((s.added, s.unchanged), (2, 0));
    let s = run(vec![
        doc("1", "Whales are mammals."),
        doc("2", "Basalt is volcanic."),
    ])
    .await;
    assert_eq!((s.added, s.updated, s.unchanged), (0, 1, 1));
    let hits = search(&model, &c, "volcanic rock", 1).await;
    assert_eq!(hits[0].source_id, "2");
    assert_eq!(hits[0].metadata, Some(serde_json::json!({"lang": "en"})));
}
