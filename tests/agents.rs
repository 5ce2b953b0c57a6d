//! The surfaces beyond the terminal, each with the real client: the MCP tools through the official
//! MCP Python SDK over stdio (`fathom mcp`) and streamable HTTP (`/mcp` on `fathom serve`), and the
//! search page at `/` in headless Chromium (Debian's, driven by selenium).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{minilm, repo_root, test_python, write, Server, KEY};

const QUERY: &str = "how long should bread bake in the oven";
const EXPECT: &str = "docs/cooking.md";
/// A query whose answer is on page 2 of `docs/manual.pdf`: every surface names the page.
const LOCATION_QUERY: &str = "pumpernickel rye loaves resting overnight";
const EXPECT_LOCATION: &str = "p. 2";

/// A small corpus ingested into `store` (default collection), and an ingest root holding `kb/`.
fn setup(dir: &Path) -> (String, PathBuf) {
    let docs = dir.join("docs");
    write(
        &docs,
        "cooking.md",
        "# Bread\n\nBake the loaf in a hot oven at 230 °C for about forty minutes, until the crust \
         is deep brown and the bottom sounds hollow when tapped.\n",
    );
    write(
        &docs,
        "rust.md",
        "# Ownership\n\nEvery value in Rust has one owner; when the owner goes out of scope the \
         value is dropped. Borrowing lends access without taking ownership.\n",
    );
    write(
        &docs,
        "space.md",
        "# Orbits\n\nA satellite in low Earth orbit circles the planet about every ninety minutes \
         at close to eight kilometres per second.\n",
    );
    write(
        &docs,
        "manual.pdf",
        fathom_testkit::pdf::with_pages(&[
            "Contents: an index of the chapters of this manual.",
            "Pumpernickel rye loaves rest overnight in a cool room before they are sliced.",
        ]),
    );
    let root = dir.join("root");
    write(
        &root.join("kb"),
        "baking.md",
        "Sourdough bread needs a long, slow rise before it goes into the oven.\n",
    );
    write(
        &root.join("kb"),
        "tea.md",
        "Green tea is brewed with water below boiling, for two to three minutes.\n",
    );
    let store = dir.join("store").to_str().unwrap().to_string();
    // Run from `dir` with a relative folder, so source ids are `docs/...`.
    let out = Command::new(env!("CARGO_BIN_EXE_fathom"))
        .current_dir(dir)
        .args(["ingest", "docs", "--store", &store, "--model"])
        .arg(minilm())
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "ingest: {}", text(&out));
    (store, root)
}

/// `fathom serve` on the fixture's store, behind [`KEY`], with `root` as its ingest root.
async fn serve(store: &str, root: &Path) -> Server {
    let root = root.to_str().unwrap();
    Server::start(
        &["--store", store, "--api-key", KEY, "--ingest-root", root],
        &[],
    )
    .await
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn python(script: &str) -> Command {
    let mut cmd = Command::new(test_python());
    cmd.arg(repo_root().join(script));
    cmd
}

#[tokio::test(flavor = "multi_thread")]
async fn mcp_tools_answer_the_official_client_over_stdio_and_http() {
    let dir = tempfile::tempdir().unwrap();
    let (store, root) = setup(dir.path());

    let out = tokio::task::spawn_blocking({
        let (store, root) = (store.clone(), root.clone());
        move || {
            python("tests/mcp/check_mcp.py")
                .args(["stdio", "--query", QUERY, "--expect-source", EXPECT])
                .args(["--location-query", LOCATION_QUERY])
                .args(["--expect-location", EXPECT_LOCATION])
                .args(["--ingest-path", "kb", "--ingest-collection", "agent-stdio"])
                .arg("--")
                .arg(env!("CARGO_BIN_EXE_fathom"))
                .args(["mcp", "--store", &store, "--model"])
                .arg(minilm())
                .arg("--ingest-root")
                .arg(&root)
                .env("HF_HUB_OFFLINE", "1")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    println!("{}", text(&out));
    assert!(out.status.success(), "stdio: {}", text(&out));

    let server = serve(&store, &root).await;
    let url = server.url("/mcp");
    let out = tokio::task::spawn_blocking(move || {
        python("tests/mcp/check_mcp.py")
            .args(["http", "--url", &url, "--api-key", KEY])
            .args(["--query", QUERY, "--expect-source", EXPECT])
            .args(["--location-query", LOCATION_QUERY])
            .args(["--expect-location", EXPECT_LOCATION])
            .args(["--ingest-path", "kb", "--ingest-collection", "agent-http"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    println!("{}", text(&out));
    assert!(out.status.success(), "http: {}", text(&out));
    // Still serving after every bad call.
    assert_eq!(server.get("/health").await.0, 200);
}

/// Where the page's screenshots are kept: `target/artifacts/page` (or $FATHOM_ARTIFACTS/page).
fn shots_dir(name: &str) -> PathBuf {
    let base = std::env::var_os("FATHOM_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/artifacts"));
    let dir = base.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn the_search_page_searches_switches_modes_and_runs_a_job_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let (store, root) = setup(dir.path());
    let server = serve(&store, &root).await;

    // The page and its assets load without the key (the page asks for it), typed and locked down.
    for (path, kind) in [
        ("/", "text/html"),
        ("/app.js", "text/javascript"),
        ("/style.css", "text/css"),
    ] {
        let r = reqwest::get(server.url(path)).await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let header = |name: &str| {
            r.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default()
        };
        assert!(header("content-type").starts_with(kind), "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff");
        assert!(header("content-security-policy").contains("default-src 'none'"));
    }
    // The API behind it is not open.
    assert_eq!(
        reqwest::get(server.url("/collections"))
            .await
            .unwrap()
            .status(),
        401
    );

    let shots = shots_dir("page");
    let url = server.url("/");
    let shots_arg = shots.clone();
    let out = tokio::task::spawn_blocking(move || {
        python("tests/browser/test_page.py")
            .args(["--url", &url, "--api-key", KEY])
            .arg("--shots")
            .arg(&shots_arg)
            .args(["--query", QUERY, "--expect-source", EXPECT])
            .args(["--location-query", LOCATION_QUERY])
            .args(["--expect-location", EXPECT_LOCATION])
            .args(["--ingest-path", "kb", "--collection", "page-kb"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    println!("{}", text(&out));
    assert!(out.status.success(), "page: {}", text(&out));
    let taken = std::fs::read_dir(&shots).unwrap().count();
    assert!(taken >= 8, "{taken} screenshots in {}", shots.display());
}

/// A server with a cross-encoder: the page shows the rerank toggle, on by default, and a search
/// says it was reranked (the tiny random-weight reranker of tests/fixtures: the order is not
/// judged here, the route's scores are in tests/serve.rs).
#[tokio::test(flavor = "multi_thread")]
async fn the_search_page_offers_reranking_when_the_server_has_one() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _root) = setup(dir.path());
    let reranker = repo_root().join("tests/fixtures/rerank/bert");
    let server = Server::start(
        &["--store", &store, "--reranker", reranker.to_str().unwrap()],
        &[],
    )
    .await;
    let shots = shots_dir("page-rerank");
    let url = server.url("/");
    let shots_arg = shots.clone();
    let out = tokio::task::spawn_blocking(move || {
        python("tests/browser/test_page.py")
            .args(["--url", &url, "--rerank-query", QUERY])
            .arg("--shots")
            .arg(&shots_arg)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    println!("{}", text(&out));
    assert!(out.status.success(), "page: {}", text(&out));
}
