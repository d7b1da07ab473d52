//! The sandbox: "run this spec" with namespaces, overlayfs, `pivot_root`, cgroups,
//! capabilities, seccomp, a pty and signal forwarding. It knows nothing of images:
//! callers give it directories and a process to run.
//!
//! A sandbox is started by cloning straight into new namespaces; the child at once
//! re-executes lade's own binary as the container's init (as runc does), so nothing
//! unsafe happens between the clone and a clean, single-threaded process. The init
//! reads the spec from a pipe, builds the root filesystem, drops privileges and execs
//! the process, which stays PID 1 (or becomes PID 2 under `--init`).

mod cgroups;
mod init;
pub mod mounts;
mod network;
pub mod paths;
mod process;
mod pty;
mod rootfs;
mod security;
mod spawn;
pub mod sys;
pub mod users;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use cgroups::{cgroup_procs, freeze, remove_cgroup, CgroupLayout, Limits};
pub use init::maybe_run_init;
pub use process::{ProcessId, SignalNumber};
pub use pty::{set_terminal_size, terminal_size, RawMode};
pub use spawn::{enter, run, Cancel, Exit, Io, Output, Stream, StreamSink};

/// Everything the sandbox needs, sent to the init as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spec {
    pub rootfs: Rootfs,
    pub process: Process,
    pub hostname: String,
    /// Mounts on top of the root filesystem, in order.
    pub mounts: Vec<Mount>,
    pub network: Network,
    pub limits: Limits,
    /// The cgroup's name (under `lade/`) when there are limits.
    pub cgroup: Option<String>,
    /// `RUN --security=insecure`: every capability and no seccomp filter.
    pub insecure: bool,
    /// Run a tiny reaper as PID 1 and the process as its child.
    pub init: bool,
    /// Give it a freezer cgroup even without limits, so that it can be paused. Costs a
    /// cgroup per start, which a short-lived foreground `run` does without.
    #[serde(default)]
    pub pausable: bool,
}

/// A process to run in a running container (`lade exec`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnterSpec {
    /// The container's init, known by pid and start time.
    pub pid: i32,
    pub pid_start: u64,
    pub process: Process,
    /// The container's hostname (the process's `HOSTNAME`).
    pub hostname: String,
}

/// What the init is started for: a new container, or a process in a running one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Launch {
    Create(Box<Spec>),
    Enter(EnterSpec),
}

/// The root filesystem: overlay of `lowers` (topmost first, names relative to
/// `layers_dir`) with `upper`/`work` when writable, mounted at `target`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rootfs {
    pub layers_dir: PathBuf,
    pub lowers: Vec<String>,
    pub upper: Option<PathBuf>,
    pub work: Option<PathBuf>,
    pub target: PathBuf,
    pub readonly: bool,
    /// Mount the overlay `volatile` (kernel 5.10 and later): the sandbox's fsyncs cost
    /// nothing, and a crash may lose what the upper directory holds. For a build step,
    /// whose result counts only once its layer is committed. Where the kernel lacks the
    /// option the overlay is mounted without it.
    #[serde(default)]
    pub volatile: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Process {
    pub args: Vec<String>,
    /// `NAME=VALUE` entries.
    pub env: Vec<String>,
    /// Absolute, inside the root filesystem.
    pub cwd: String,
    /// `user[:group]`, names resolved in the root filesystem's passwd and group files.
    pub user: String,
    pub terminal: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum Mount {
    /// A host path (file or directory) at `target`.
    Bind {
        source: PathBuf,
        target: String,
        readonly: bool,
    },
    Tmpfs {
        target: String,
        size: Option<u64>,
    },
    /// A writable view of `lower` whose changes land in `upper` (and are discarded by
    /// whoever deletes it).
    Overlay {
        lower: PathBuf,
        upper: PathBuf,
        work: PathBuf,
        target: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Network {
    /// A network namespace of its own, with only loopback.
    #[default]
    Isolated,
    /// The host's network.
    Host,
    /// The network namespace at this path (made and configured by the caller, or
    /// another container's): the init joins it before it builds the file system.
    Join(PathBuf),
}

/// What went wrong before the process could start.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("{what}: {source}")]
    Sys {
        what: String,
        source: std::io::Error,
    },
    /// The init failed to set up the sandbox (its message), with the exit code Docker
    /// gives: 125 for the runtime, 126 not executable, 127 not found.
    #[error("{message}")]
    Setup { code: i32, message: String },
    /// The spec could not be written for the init.
    #[error("cannot encode the sandbox's spec: {0}")]
    Spec(#[source] serde_json::Error),
    #[error("unexpected wait status of the sandbox: {0}")]
    WaitStatus(String),
    /// A limit asks for a cgroup controller (`memory`, `pids`, `cpu`, `freezer`) this
    /// machine does not have.
    #[error("this machine has no {controller} cgroup controller: {consequence}")]
    NoController {
        controller: &'static str,
        consequence: &'static str,
    },
}

pub type Result<T, E = ExecError> = std::result::Result<T, E>;

pub(crate) fn sys_err(what: impl Into<String>) -> impl FnOnce(nix::Error) -> ExecError {
    let what = what.into();
    move |e| ExecError::Sys {
        what,
        source: e.into(),
    }
}

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ExecError {
    let what = what.into();
    move |source| ExecError::Sys { what, source }
}
