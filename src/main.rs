//! The `fathom` binary: parses arguments and hands them to [`fathom::run`].

use clap::Parser;

fn main() -> std::process::ExitCode {
    fathom::allocator::small_pages();
    fathom::size_lance_cpu_pool();
    // The document parser's child process (see fathom_ingest::ParserIsolation): no CLI, no
    // logging.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == fathom::PARSER_HELPER_ARG)
    {
        return fathom_ingest::parse_helper_main();
    }
    let cli = fathom::cli::Cli::parse();
    // Checks across flags, refused as clap refuses a bad flag: a usage error, exit code 2.
    if let Err(message) = cli.check() {
        use clap::CommandFactory;
        fathom::cli::Cli::command()
            .error(clap::error::ErrorKind::ArgumentConflict, message)
            .exit();
    }
    // One-shot commands keep freed memory (buffers reused, never re-faulted); a long-running
    // server returns what it has not reused for 5 s: its ingest threads come and go, and with
    // purging off their memory stayed committed (RSS 257 -> 1,016 MB over 1,000 single-document
    // upserts, never returned), while purging sooner re-faults the model's buffers between
    // batches (/embed 176 -> 130 req/s).
    if matches!(
        cli.command,
        fathom::cli::Command::Serve(_) | fathom::cli::Command::Mcp(_)
    ) {
        fathom::allocator::purge_freed_memory_after(5_000);
    } else {
        fathom::allocator::keep_freed_memory();
    }
    fathom::init_logging(cli.verbose);
    match fathom::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
