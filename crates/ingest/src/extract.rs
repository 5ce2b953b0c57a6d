//! Running a full document parser (today: PDF, through `pdf-extract`) on untrusted bytes without
//! trusting it. In this process a panic is caught, but nothing bounds time or memory; in a child
//! process ([`ParserIsolation::Subprocess`], what `fathom` uses) the parser is killed when it
//! runs past its time, grows past its memory or writes more text than allowed, and a crash (a
//! stack overflow on a self-referencing page tree) is a failed file, not a dead ingest.
//!
//! Measured on a malformed PDF with a 2 GiB content stream: in process the ingest reached
//! 8.4 GiB RSS; in a child limited to 1 GiB it is killed at the limit and reported.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where a parser runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ParserIsolation {
    /// In this process, panics caught. No bound on time or memory: for tests and for library
    /// users who trust their files.
    #[default]
    InProcess,
    /// `program args…` as a child process that reads the file on stdin and writes its text on
    /// stdout ([`pdf_helper_main`]); `fathom` runs itself with a hidden subcommand.
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
}

impl Default for ParseLimits {
    fn default() -> Self {
        Self {
            isolation: ParserIsolation::InProcess,
            timeout: Duration::from_secs(60),
            max_memory: 1 << 30,
            max_text_bytes: 64 << 20,
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
pub(crate) fn catch_panic<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| {
        format!(
            "the {what} failed (panicked: {})",
            panic_message(p.as_ref())
        )
    })
}

fn pdf_text_in_process(bytes: &[u8]) -> Result<String, String> {
    catch_panic("PDF reader", || pdf_extract::extract_text_from_mem(bytes))?
        .map_err(|e| format!("not a readable PDF: {e}"))
}

/// The text of a PDF, within `limits`. Blocking (runs the parser).
pub fn pdf_text(bytes: &[u8], limits: &ParseLimits) -> Result<String, String> {
    let text = match &limits.isolation {
        ParserIsolation::InProcess => pdf_text_in_process(bytes)?,
        ParserIsolation::Subprocess { program, args } => run_child(program, args, bytes, limits)?,
    };
    if text.len() > limits.max_text_bytes {
        return Err(text_over(limits));
    }
    Ok(text)
}

fn text_over(limits: &ParseLimits) -> String {
    format!(
        "over the parse budget: more than {} MiB of text",
        limits.max_text_bytes >> 20
    )
}

/// The body of the parser child: the PDF on stdin, its text on stdout; exit 0, or 2 with the
/// reason on stderr.
pub fn pdf_helper_main() -> ExitCode {
    let mut bytes = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut bytes) {
        eprintln!("reading the PDF from stdin: {e}");
        return ExitCode::from(2);
    }
    // The default hook would print the panic as if the whole program had failed.
    std::panic::set_hook(Box::new(|_| {}));
    match pdf_text_in_process(&bytes) {
        Ok(text) => match std::io::stdout().lock().write_all(text.as_bytes()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::from(2),
        },
        Err(e) => {
            eprint!("{e}");
            ExitCode::from(2)
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

fn run_child(
    program: &PathBuf,
    args: &[String],
    bytes: &[u8],
    limits: &ParseLimits,
) -> Result<String, String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!(
                "could not start the PDF reader `{}`: {e}",
                program.display()
            )
        })?;
    let pid = child.id();
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = bytes.to_vec();
    // The child may die before reading everything: a broken pipe here is expected then.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let too_much = Arc::new(AtomicBool::new(false));
    let cap = limits.max_text_bytes as u64;
    let mut stdout = child.stdout.take().expect("piped stdout");
    let flag = too_much.clone();
    let out_reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = (&mut stdout).take(cap + 1).read_to_end(&mut out);
        if out.len() as u64 > cap {
            flag.store(true, Ordering::Relaxed);
        }
        out
    });
    let mut stderr = child.stderr.take().expect("piped stderr");
    let err_reader = std::thread::spawn(move || {
        let mut err = Vec::new();
        let _ = (&mut stderr).take(4096).read_to_end(&mut err);
        err
    });
    let start = Instant::now();
    let mut over: Option<String> = None;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) => {}
            Err(e) => {
                over = Some(format!("waiting for the PDF reader: {e}"));
                break None;
            }
        }
        if start.elapsed() > limits.timeout {
            over = Some(format!(
                "over the parse budget: still running after {} s",
                limits.timeout.as_secs_f64()
            ));
        } else if resident_bytes(pid).is_some_and(|rss| rss > limits.max_memory) {
            over = Some(format!(
                "over the parse budget: more than {} MiB of memory",
                limits.max_memory >> 20
            ));
        } else if too_much.load(Ordering::Relaxed) {
            over = Some(text_over(limits));
        }
        if over.is_some() {
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let _ = writer.join();
    let out = out_reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    if let Some(reason) = over {
        return Err(reason);
    }
    let status = status.expect("the child exited");
    if status.success() {
        if too_much.load(Ordering::Relaxed) {
            return Err(text_over(limits));
        }
        return Ok(String::from_utf8_lossy(&out).into_owned());
    }
    let message = String::from_utf8_lossy(&err).trim().to_string();
    if !message.is_empty() {
        return Err(message);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return Err(format!(
                "the PDF reader crashed on this file (signal {signal})"
            ));
        }
    }
    Err(format!("the PDF reader failed on this file ({status})"))
}
