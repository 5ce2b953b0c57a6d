//! The `fathom` command line: configuration resolution and one module per command. The work itself
//! lives in the `fathom-*` crates.

pub mod allocator;
pub mod cli;
mod commands;

use cli::{Cli, Command, ModelCommand};

/// The hidden first argument that makes `fathom` the document parser's child process (the
/// format's name follows it).
pub const PARSER_HELPER_ARG: &str = "__parse-document";

/// Runs one parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Embed(args) => commands::embed::run(args),
        Command::Ingest(args) => commands::ingest::run(args),
        Command::Search(args) => commands::search::run(args),
        Command::Rerank(args) => commands::search::rerank(args),
        Command::Sources(args) => commands::store::sources(args),
        Command::Collections(args) => commands::store::collections(args),
        Command::Delete(args) => commands::store::delete(args),
        Command::Optimize(args) => commands::store::optimize(args),
        Command::Eval(args) => commands::eval::run(args),
        Command::Serve(args) => commands::serve::run(args),
        Command::Mcp(args) => commands::serve::mcp(args),
        Command::Model(ModelCommand::Pull(args)) => commands::model::pull(args),
        Command::Model(ModelCommand::Info(args)) => commands::model::info(args),
    }
}

/// Gives lance's CPU pool every core on machines with few of them (call first thing in `main`,
/// before any other thread reads the environment). `LANCE_CPU_THREADS`, when set, wins.
///
/// lance sizes that pool (column encoding at each commit, parts of index builds) as the cores
/// less two it reserves for I/O, and at least one: one thread on a 2-core machine, where
/// fathom's commits then encoded on one core. fathom's reads and object-store requests run on
/// tokio's threads, not that pool. A static-model ingest of SciFact's 5,183 files went from a
/// median 4,922 to 5,170 docs/s with two (6 runs each, alternating, 2-core EPYC).
pub fn size_lance_cpu_pool() {
    if std::env::var_os("LANCE_CPU_THREADS").is_some() {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores <= 4 {
        std::env::set_var("LANCE_CPU_THREADS", cores.to_string());
    }
}

/// Logs to stderr; `RUST_LOG` (or `FATHOM_LOG`) overrides the level chosen by `-v`.
pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = std::env::var("FATHOM_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| default.to_string());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .try_init();
}
