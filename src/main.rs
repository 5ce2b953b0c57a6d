//! The `fathom` binary: parses arguments and hands them to [`fathom::run`].

use clap::Parser;

fn main() -> std::process::ExitCode {
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
