//! The container commands: `run` and `create`, the listings (`ps`, `port`, `top`,
//! `stats`), the verbs on containers that live on (`start`, `attach`, `stop`,
//! `restart`, `kill`, `wait`, `pause`, `unpause`, `rm`, `rename`, `update`,
//! `container prune`), `exec` and `logs`, their files (`cp`, `export`, `diff`,
//! `commit`), and `volume`.
//! Each turns its arguments into an engine request and renders what comes back.

mod exec;
mod files;
mod lifecycle;
mod list;
pub(crate) use list::{docker_command_and_created, docker_ports, docker_status};
mod run;
mod update;
mod volume;

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use super::{
    describe, each_item, human_age, human_duration, human_size, open_store, open_store_read_only,
    print_table, printable, report_item_error, source_date_epoch, template, ListFormat,
    StoreConfig,
};
use crate::engine::{self, EngineError, Store};

pub use exec::{exec, logs, ExecArgs, LogsArgs};
pub use files::{commit, cp, diff, export, CommitArgs, CpArgs, ExportArgs};
pub use lifecycle::{
    attach, kill, pause, prune, rename, restart, rm, start, stop, wait, AttachArgs, KillArgs,
    PruneArgs, RenameArgs, RmArgs, StartArgs, StopArgs,
};
pub use list::{port, ps, stats, top, PortArgs, PsArgs, StatsArgs, TopArgs};
pub use run::{create, run, RunArgs};
pub use update::{update, UpdateArgs};
pub use volume::{volume, VolumeCommand};

#[derive(Debug, Args)]
pub struct OneContainer {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Debug, Args)]
pub struct ContainersArgs {
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

/// What the engine tells the user as container commands go: on stderr, so that a
/// container's output stays its own (Docker's wording).
struct Tell;

impl engine::Reporter for Tell {
    fn warning(&self, text: &str) {
        warn(text);
    }

    fn image_not_found(&self, image: &str) {
        eprintln!("Unable to find image '{image}' locally");
    }

    fn unattached(&self, id: &str) {
        println!("{id}");
    }

    fn after_exit(&self, error: &EngineError) {
        eprintln!("lade: after the container exited: {error}");
    }

    fn network_teardown_failed(&self, error: &EngineError) {
        eprintln!("lade: tearing down the network of a dead container: {error}");
    }
}

/// What a container lacks that it asked for (names that will not resolve), on stderr so
/// that its output stays its own.
pub(crate) fn warn(text: &str) {
    eprintln!("warning: {text}");
}

/// Docker's default detach keys.
const DEFAULT_DETACH_KEYS: &str = "ctrl-p,ctrl-q";

fn detach_keys(text: &str) -> Result<Vec<u8>> {
    engine::parse_detach_keys(text).ok_or_else(|| {
        anyhow::anyhow!(
            "invalid --detach-keys {text:?}: expected keys such as ctrl-p,ctrl-q (ctrl-<letter>, or one character each)"
        )
    })
}

/// Does `act` to the containers named, all at once as Docker's client does, printing
/// each name as it is done; the exit code says whether any failed. `rm -f` passes
/// over containers that do not exist (`skip_missing`).
fn each_container(
    store_config: &StoreConfig,
    containers: &[String],
    skip_missing: bool,
    act: impl Fn(&Store, &str) -> engine::Result<()> + Sync,
) -> Result<ExitCode> {
    let store = open_store(store_config)?;
    let mut failed = false;
    engine::each_container(
        containers,
        |reference| act(&store, reference),
        |reference, outcome| match outcome {
            Ok(()) => println!("{reference}"),
            Err(err) if skip_missing && err.is_no_such_container() => {}
            Err(err) => {
                report_item_error(reference, &err);
                failed = true;
            }
        },
    );
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// An error tagged with the exit code it stands for (Docker's 125/126/127).
fn exit_with(e: impl Into<EngineError>) -> anyhow::Error {
    let e = e.into();
    let code = e.exit_code();
    anyhow::Error::new(e).context(ExitWith(code))
}

/// The exit code of `run`, `exec` or an attached client: the process's, or the error's
/// (125 when lade itself failed), with the error reported.
fn container_exit(result: Result<i32>) -> ExitCode {
    let code = match result {
        Ok(code) => code,
        Err(err) => {
            let code = err.downcast_ref::<ExitWith>().map_or(125, |c| c.0);
            eprintln!("lade: {}", without_exit_code(&err, code));
            code
        }
    };
    ExitCode::from(code.clamp(0, 255) as u8)
}

/// The error and its causes (`describe`), without the exit code it was tagged with.
fn without_exit_code(err: &anyhow::Error, code: i32) -> String {
    let text = describe(err);
    text.strip_prefix(&format!("exit code {code}: "))
        .map(str::to_string)
        .unwrap_or(text)
}

/// Docker's check before it attaches stdin to a container with a terminal
/// (docker/cli: streams.In.CheckTty, for run, exec and attach): stdin must be a terminal
/// too. Docker's words, and its exit code 1.
fn check_tty(attach_stdin: bool, tty: bool) -> Result<()> {
    use std::io::IsTerminal;
    if tty && attach_stdin && !std::io::stdin().is_terminal() {
        return Err(anyhow::anyhow!(
            "cannot attach stdin to a TTY-enabled container because stdin is not a terminal"
        )
        .context(ExitWith(1)));
    }
    Ok(())
}

/// The exit code an error stands for.
#[derive(Debug)]
struct ExitWith(i32);

impl std::fmt::Display for ExitWith {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit code {}", self.0)
    }
}
