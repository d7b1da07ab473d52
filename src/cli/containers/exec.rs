//! `lade exec` and `lade logs`: a process in a running container, and what a
//! container wrote.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use super::{
    check_tty, container_exit, detach_keys, exit_with, open_store, open_store_read_only,
    StoreConfig, DEFAULT_DETACH_KEYS,
};
use crate::engine::{self, ExecOptions, ExecRequest, LogsRequest};

#[derive(Debug, Args)]
#[command(trailing_var_arg = true)]
pub struct ExecArgs {
    /// Run the command in the background (its output is discarded, as Docker's is)
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Set an environment variable (NAME=VALUE, or NAME to take it from lade's environment)
    #[arg(short = 'e', long = "env", value_name = "NAME[=VALUE]")]
    pub env: Vec<String>,
    /// Read environment variables from a file (NAME=VALUE lines)
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_files: Vec<PathBuf>,
    /// Keep standard input open
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Give the process a terminal
    #[arg(short = 't', long)]
    pub tty: bool,
    /// With -it: keys that detach from the process, which runs on
    #[arg(long, value_name = "KEYS", default_value = DEFAULT_DETACH_KEYS)]
    pub detach_keys: String,
    /// Every capability lade holds and no seccomp filter for this process (the
    /// container's mounts and devices stay as they are, as with Docker)
    #[arg(long)]
    pub privileged: bool,
    /// User to run as (NAME, UID, NAME:GROUP or UID:GID) [default: the container's]
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Working directory (an absolute path) [default: the container's]
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// The command and its arguments
    #[arg(value_name = "COMMAND", required = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// `lade exec`: the exit code is the process's (125 when lade fails, 126 not
/// executable, 127 not found).
pub fn exec(store_config: &StoreConfig, args: ExecArgs) -> Result<ExitCode> {
    let request = ExecRequest {
        container: args.container,
        options: ExecOptions {
            args: args.command,
            env: args.env,
            env_files: args.env_files,
            user: args.user,
            workdir: args.workdir,
            interactive: args.interactive,
            tty: args.tty,
            privileged: args.privileged,
        },
        detach: args.detach,
        detach_keys: detach_keys(&args.detach_keys)?,
    };
    let result = (|| -> Result<i32> {
        if !request.detach {
            check_tty(request.options.interactive, request.options.tty)?;
        }
        let store = open_store(store_config)?;
        engine::exec(&store, &request).map_err(exit_with)
    })();
    Ok(container_exit(result))
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep printing what the container writes until it stops
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines ("all" for every line)
    #[arg(short = 'n', long, value_name = "N", default_value = "all")]
    pub tail: String,
    /// Only lines written since TIME: RFC 3339 or a part of it (2006-01-02), Unix
    /// seconds (1136214245.5), or a duration before now (10m, 1h30m; -1s is after)
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub since: Option<String>,
    /// Only lines written before TIME (as --since); with -f, follow until then
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub until: Option<String>,
    /// Prefix each line with its time
    #[arg(short, long)]
    pub timestamps: bool,
    /// Prefix each line with the attributes `--log-opt labels=,env=` asked for
    #[arg(long)]
    pub details: bool,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

pub fn logs(store_config: &StoreConfig, args: LogsArgs) -> Result<ExitCode> {
    let request = LogsRequest {
        tail: engine::parse_tail(&args.tail)?,
        since: args
            .since
            .as_deref()
            .map(engine::parse_log_time)
            .transpose()?,
        until: args
            .until
            .as_deref()
            .map(engine::parse_log_time)
            .transpose()?,
        container: args.container,
        follow: args.follow,
        timestamps: args.timestamps,
        details: args.details,
    };
    let store = open_store_read_only(store_config)?;
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    engine::logs(&store, &request, &mut stdout, &mut stderr)?;
    Ok(ExitCode::SUCCESS)
}
