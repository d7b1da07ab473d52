//! The `lade` binary: parses the command line and hands it to `lade::cli`.

use clap::Parser;

fn main() -> std::process::ExitCode {
    // Started as a container's init (by lade itself): that is all this process does.
    if let Some(code) = lade::exec::maybe_run_init() {
        std::process::exit(code);
    }
    lade::cli::run(lade::cli::Cli::parse())
}
