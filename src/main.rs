//! The `lade` binary: parses the command line and hands it to `lade::cli`.

use clap::Parser;

fn main() -> std::process::ExitCode {
    lade::cli::run(lade::cli::Cli::parse())
}
