//! Helpers shared by the end-to-end tests: where the repository, the real model and the fixtures
//! are (one definition, in `fathom-testkit`).
#![allow(dead_code, unused_imports)]

pub use fathom_testkit::{fixtures, minilm, repo_root, write};

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const KEY: &str = "test-key";

/// The Python of the test venv that scripts/setup.sh makes (with the `openai` package).
pub fn test_python() -> PathBuf {
    let python = std::env::var_os("FATHOM_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME"))
                .join(".cache/fathom/test-venv/bin/python")
        });
    assert!(
        python.is_file(),
        "{} is missing: run scripts/setup.sh (it installs the OpenAI client the tests use)",
        python.display()
    );
    python
}

pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Server {
    /// Starts `fathom serve --port 0 ARGS`, reads the address it prints, waits for /health.
    pub async fn start(args: &[&str], envs: &[(&str, &str)]) -> Self {
        Self::start_with_stderr(args, envs, Stdio::inherit()).await
    }

    /// [`Server::start`] with the server's log (stderr) written to `log`.
    #[allow(dead_code)] // not every test binary reads the log
    pub async fn start_logging(args: &[&str], envs: &[(&str, &str)], log: &Path) -> Self {
        let file = std::fs::File::create(log).expect("create the server's log");
        Self::start_with_stderr(args, envs, file.into()).await
    }

    async fn start_with_stderr(args: &[&str], envs: &[(&str, &str)], stderr: Stdio) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fathom"));
        cmd.current_dir(repo_root())
            .args(["serve", "--port", "0", "--model"])
            .arg(minilm())
            .args(args)
            .env_remove("FATHOM_API_KEY")
            .env_remove("RUST_LOG")
            .env_remove("FATHOM_LOG")
            .env("HF_HUB_OFFLINE", "1")
            .stdout(Stdio::piped())
            .stderr(stderr);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn fathom serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .trim()
            .strip_prefix("fathom listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        let server = Self { child, base };
        let started = Instant::now();
        loop {
            match reqwest::get(format!("{}/health", server.base)).await {
                Ok(r) if r.status() == 200 => break,
                Ok(r) => assert_eq!(r.status(), 503, "health before ready"),
                Err(e) => panic!("connecting to {}: {e}", server.base),
            }
            assert!(started.elapsed() < Duration::from_secs(120), "never ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends SIGTERM (what `docker stop` and systemd send).
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub fn wait_exit(mut self) -> std::process::ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Server {
    /// POST a JSON body with the tests' API key.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        post(self, path, body).await
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        client()
            .get(self.url("/metrics"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// GET with the tests' API key.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        get(self, path).await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::new()
}

pub async fn post(server: &Server, path: &str, body: Value) -> (u16, Value) {
    let r = client()
        .post(server.url(path))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

pub async fn get(server: &Server, path: &str) -> (u16, Value) {
    let r = client()
        .get(server.url(path))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// An ingest summary's errors as (file name, message) pairs.
pub fn errors_by_file(summary: &Value) -> Vec<(String, String)> {
    summary["errors"]
        .as_array()
        .expect("errors is a list")
        .iter()
        .map(|e| {
            let source = e["source"].as_str().expect("a source");
            (
                source.rsplit('/').next().unwrap_or(source).to_string(),
                e["error"].as_str().expect("an error").to_string(),
            )
        })
        .collect()
}

/// The `fathom` binary, run from the repository root (where the default model folder is),
/// offline, with no `FATHOM_*` settings from the caller's environment.
pub fn fathom_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fathom"));
    cmd.current_dir(repo_root())
        .env_remove("FATHOM_MODEL")
        .env_remove("FATHOM_STORE")
        .env_remove("FATHOM_OCR")
        // Tests read log lines that -v asks for: no level from the environment.
        .env_remove("RUST_LOG")
        .env_remove("FATHOM_LOG")
        .env("HF_HUB_OFFLINE", "1");
    cmd
}

/// A run's stdout as JSON, failing the test with its stderr when it did not succeed.
pub fn stdout_json(out: &std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "fathom failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}
