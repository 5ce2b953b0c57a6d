//! The `fathom` binary: parses arguments and hands them to [`fathom::run`].

use clap::Parser;

fn main() -> std::process::ExitCode {
    // The PDF parser's child process (see fathom_ingest::ParserIsolation): no CLI, no logging.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == fathom::PDF_HELPER_ARG)
    {
        return fathom_ingest::pdf_helper_main();
    }
    fathom::allocator::keep_freed_memory();
    let cli = fathom::cli::Cli::parse();
    fathom::init_logging(cli.verbose);
    match fathom::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
