//! Running a full document parser (PDF, Office, e-books, mail… see [`crate::formats`]) and OCR
//! on untrusted bytes without trusting them. In this process a panic is caught, but nothing bounds time or memory; in a child
//! process ([`ParserIsolation::Subprocess`], what `fathom` uses) the parser is killed when it
//! runs past its time, grows past its memory or writes more text than allowed, and a crash (a
//! stack overflow on a self-referencing page tree) is a failed file, not a dead ingest.
//!
//! Measured on a malformed PDF with a 2 GiB content stream: in process the ingest reached
//! 8.4 GiB RSS; in a child limited to 1 GiB it is killed at the limit and reported.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::formats::{self, Budget, Document, Kind};

/// Where a parser runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ParserIsolation {
    /// In this process, panics caught. No bound on time or memory: for tests and for library
    /// users who trust their files.
    #[default]
    InProcess,
    /// `program args… FORMAT` as a child process that reads the file on stdin and writes its
    /// located text on stdout ([`parse_helper_main`]); `fathom` runs itself with a hidden
    /// subcommand.
    Subprocess { program: PathBuf, args: Vec<String> },
}

/// The budget of one parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseLimits {
    pub isolation: ParserIsolation,
    /// Wall-clock time for one file.
    pub timeout: Duration,
    /// Resident memory of the parser process (subprocess only).
    pub max_memory: u64,
    /// Text one file may produce.
    pub max_text_bytes: usize,
    /// Whether images and PDF pages without a text layer go through OCR.
    pub ocr: crate::ocr::OcrMode,
}

impl Default for ParseLimits {
    fn default() -> Self {
        Self {
            isolation: ParserIsolation::InProcess,
            timeout: Duration::from_secs(60),
            max_memory: 1 << 30,
            max_text_bytes: 64 << 20,
            ocr: crate::ocr::OcrMode::Auto,
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Runs `f`, turning a panic into an error that carries the panic's message.
pub fn catch_panic<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| {
        format!(
            "the {what} failed (panicked: {})",
            panic_message(p.as_ref())
        )
    })
}

/// Parses `bytes` as `kind` in this process, a panic caught as a failed file.
pub(crate) fn parse_in_process(
    kind: Kind,
    bytes: &[u8],
    budget: &Budget,
) -> Result<Document, String> {
    catch_panic(&format!("{} reader", kind.name()), || {
        formats::read(kind, bytes, budget)
    })?
}

/// The located text of a document (PDF, Office, e-book, mail, notebook, spreadsheet…), within
/// `limits`. Blocking (runs the parser, in a child process where `limits` say so).
pub fn parse_document(kind: Kind, bytes: &[u8], limits: &ParseLimits) -> Result<Document, String> {
    let budget = Budget {
        max_text_bytes: limits.max_text_bytes,
        ..Budget::default()
    };
    let doc = match &limits.isolation {
        ParserIsolation::InProcess => parse_in_process(kind, bytes, &budget)?,
        ParserIsolation::Subprocess { program, args } => {
            let mut args = args.clone();
            args.push(kind.name().to_string());
            // JSON escapes add a little to the text; the text itself is checked below.
            let json_limits = ParseLimits {
                max_text_bytes: limits.max_text_bytes.saturating_mul(2),
                ..limits.clone()
            };
            let out = run_child(program, &args, &[], bytes, &json_limits, kind.name())?;
            serde_json::from_slice(&out)
                .map_err(|e| format!("the {} reader's output was unreadable: {e}", kind.name()))?
        }
    };
    if doc.text_len() > limits.max_text_bytes {
        return Err(text_over(limits));
    }
    Ok(doc)
}

fn text_over(limits: &ParseLimits) -> String {
    format!(
        "over the parse budget: more than {} MiB of text",
        limits.max_text_bytes >> 20
    )
}

/// The body of the parser child: the format's name as the last argument, the file on stdin, its
/// [`Document`] as JSON on stdout; exit 0, or 2 with the reason on stderr.
pub fn parse_helper_main() -> ExitCode {
    let Some(format) = std::env::args().next_back() else {
        eprintln!("the parser child needs a format name as its last argument");
        return ExitCode::from(2);
    };
    ExitCode::from(parse_helper(&format))
}

/// [`parse_helper_main`] with the format given: the exit status (0, or 2 with the reason on
/// stderr). The Python package's child (`python -m fathom._parse FORMAT`) runs this.
pub fn parse_helper(format: &str) -> u8 {
    let Some(kind) = Kind::from_name(format) else {
        eprintln!("the parser child needs a format name as its last argument, not `{format}`");
        return 2;
    };
    let mut bytes = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut bytes) {
        eprintln!("reading the file from stdin: {e}");
        return 2;
    }
    // The default hook would print the panic as if the whole program had failed.
    std::panic::set_hook(Box::new(|_| {}));
    match parse_in_process(kind, &bytes, &Budget::default()) {
        Ok(doc) => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            match serde_json::to_writer(&mut out, &doc).map(|()| out.flush()) {
                Ok(Ok(())) => 0,
                _ => 2,
            }
        }
        Err(e) => {
            eprint!("{e}");
            2
        }
    }
}

/// Resident memory of a process, in bytes (Linux; `None` elsewhere or once it has exited).
fn resident_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Runs `program args…` (with `env` added to its environment) with `bytes` on its stdin, within
/// `limits` (time, resident memory, output), and returns its stdout; `what` names it in errors
/// ("pdf reader", "tesseract").
pub(crate) fn run_child(
    program: &Path,
    args: &[String],
    env: &[(&str, &str)],
    bytes: &[u8],
    limits: &ParseLimits,
    what: &str,
) -> Result<Vec<u8>, String> {
    let mut child = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not start the {what} `{}`: {e}", program.display()))?;
    let pipes = Pipes::start(&mut child, bytes, limits.max_text_bytes as u64);
    let status = within_budget(&mut child, limits, &pipes.too_much, what);
    if status.is_err() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let (out, err) = pipes.finish();
    let status = status?;
    if status.success() {
        // The reader stops one byte past the budget.
        if out.len() > limits.max_text_bytes {
            return Err(text_over(limits));
        }
        return Ok(out);
    }
    Err(failure(status, &err, what))
}

/// A child's three pipes, each served by its own thread so that none can fill up and stall it:
/// the input written in, at most `cap + 1` bytes of output and 4 KiB of errors read out.
struct Pipes {
    writer: std::thread::JoinHandle<()>,
    out: std::thread::JoinHandle<Vec<u8>>,
    err: std::thread::JoinHandle<Vec<u8>>,
    /// Set once the output passed `cap`.
    too_much: Arc<AtomicBool>,
}

impl Pipes {
    fn start(child: &mut std::process::Child, bytes: &[u8], cap: u64) -> Self {
        let mut stdin = child.stdin.take().expect("piped stdin");
        let input = bytes.to_vec();
        // The child may die before reading everything: a broken pipe here is expected then.
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let too_much = Arc::new(AtomicBool::new(false));
        let mut stdout = child.stdout.take().expect("piped stdout");
        let flag = too_much.clone();
        let out = std::thread::spawn(move || {
            let mut out = Vec::new();
            let _ = (&mut stdout).take(cap + 1).read_to_end(&mut out);
            if out.len() as u64 > cap {
                flag.store(true, Ordering::Relaxed);
            }
            out
        });
        let mut stderr = child.stderr.take().expect("piped stderr");
        let err = std::thread::spawn(move || {
            let mut err = Vec::new();
            let _ = (&mut stderr).take(4096).read_to_end(&mut err);
            err
        });
        Self {
            writer,
            out,
            err,
            too_much,
        }
    }

    /// The output and errors read (the child has ended or been killed).
    fn finish(self) -> (Vec<u8>, Vec<u8>) {
        let _ = self.writer.join();
        (
            self.out.join().unwrap_or_default(),
            self.err.join().unwrap_or_default(),
        )
    }
}

/// Waits for the child to exit, checking its time, resident memory and output against the
/// budget every 5 ms (memory has no event to wait on); `Err` with the reason once it is over.
fn within_budget(
    child: &mut std::process::Child,
    limits: &ParseLimits,
    too_much: &AtomicBool,
    what: &str,
) -> Result<std::process::ExitStatus, String> {
    let pid = child.id();
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) => {}
            Err(e) => return Err(format!("waiting for the {what}: {e}")),
        }
        if start.elapsed() > limits.timeout {
            return Err(format!(
                "over the parse budget: still running after {} s",
                limits.timeout.as_secs_f64()
            ));
        }
        if resident_bytes(pid).is_some_and(|rss| rss > limits.max_memory) {
            return Err(format!(
                "over the parse budget: more than {} MiB of memory",
                limits.max_memory >> 20
            ));
        }
        if too_much.load(Ordering::Relaxed) {
            return Err(text_over(limits));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Why a child that exited unsuccessfully failed: its own words, else its signal or status.
fn failure(status: std::process::ExitStatus, err: &[u8], what: &str) -> String {
    let message = String::from_utf8_lossy(err).trim().to_string();
    if !message.is_empty() {
        return message;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("the {what} crashed on this file (signal {signal})");
        }
    }
    format!("the {what} failed on this file ({status})")
}
