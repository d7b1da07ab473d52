//! The command line: clap types, turning arguments into the library's option structs,
//! rendering tables, progress and JSON, and exit codes. Library code never sees a clap
//! type, and everything that prints lives here.

mod build;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// A daemonless, Docker-compatible container tool.
#[derive(Debug, Parser)]
#[command(name = "lade", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Store directory [default: $LADE_ROOT, else /var/lib/lade as root, else $XDG_DATA_HOME/lade]
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build an image from a Dockerfile
    Build(build::BuildArgs),
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Progress {
    /// Bars on a terminal, plain lines otherwise
    Auto,
    /// One line per event, for logs and CI
    Plain,
    /// Bars, even when not on a terminal
    Tty,
    /// Only errors
    Quiet,
}

/// Output for people or for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Runs a parsed command line; the exit code is the command's.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Build(args) => build::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("lade: {err:#}");
            ExitCode::FAILURE
        }
    }
}
