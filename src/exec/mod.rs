//! The sandbox: "run this spec" with namespaces, overlayfs, `pivot_root`, cgroups,
//! capabilities, seccomp, a pty and signal forwarding. It knows nothing of images:
//! callers give it directories and a process to run.
//!
//! A sandbox is started by cloning straight into new namespaces; the child at once
//! executes the container's init, the small `lade-init` binary installed beside `lade`
//! (as runc re-executes itself), so nothing unsafe happens between the clone and a
//! clean, single-threaded process. The init
//! reads the spec from a pipe, builds the root filesystem, drops privileges and execs
//! the process, which stays PID 1 (or becomes PID 2 under `--init`).

mod cgroups;
pub mod delegation;
mod init;
pub mod mounts;
mod network;
pub mod overlay;
pub mod paths;
mod process;
mod pty;
mod rootfs;
pub mod rootless;
mod security;
mod spawn;
pub mod sys;
mod syscall_tree;
pub mod users;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use cgroups::{
    cgroup_procs, devices_controller, freeze, remove_cgroup, rootless_cgroup_subtree,
    update_limits, CgroupLayout, DeviceRule, Limits, LimitsUpdate,
};
pub use init::run_init;
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
    /// Capabilities, seccomp, `no_new_privs`, rlimits: what `run`'s flags change of
    /// Docker's defaults for every process of the container.
    #[serde(default)]
    pub privileges: Privileges,
    /// Namespaces shared with the host or another container, kernel parameters,
    /// devices, `/dev/shm`.
    #[serde(default)]
    pub sandbox: SandboxOptions,
}

/// How a container's processes are confined. The default is Docker's: its 14
/// capabilities and seccomp profile; lade adds `no_new_privs`, which Docker leaves off.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Privileges {
    /// `--privileged`: every capability lade holds, no seccomp filter (the rest of what
    /// it means is in [`SandboxOptions::privileged`]).
    pub privileged: bool,
    /// `--cap-add`/`--cap-drop`: `CAP_` names, or `ALL`.
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// `--security-opt no-new-privileges=false`: setuid binaries and file capabilities
    /// work again, as in Docker's default.
    pub new_privileges: bool,
    pub seccomp: Seccomp,
    /// `--ulimit`, set before the exec.
    pub rlimits: Vec<Rlimit>,
    /// `--oom-score-adj`.
    pub oom_score_adj: Option<i32>,
    /// `--group-add`: more supplementary groups (names resolved in the container, or
    /// numbers).
    pub groups: Vec<String>,
}

/// The seccomp filter a container's processes run under.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub enum Seccomp {
    /// Docker's default profile.
    #[default]
    Default,
    /// `seccomp=unconfined`.
    Unconfined,
    /// `seccomp=FILE`: a profile in Docker's JSON format, parsed already.
    Profile(SeccompProfile),
}

pub use security::{
    capabilities_for, parse_capability, rlimit_names, ArgOp, ProfileAction, SeccompArg,
    SeccompProfile, SeccompRuleSet, SecurityError,
};

/// `--ulimit NAME=SOFT[:HARD]`: a resource by Docker's name (`nofile`, `nproc`, ...);
/// `u64::MAX` is unlimited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

/// Whose namespace a container uses, for those `run` lets it share.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Share {
    /// A new one of its own.
    #[default]
    Private,
    /// The host's (lade's own).
    Host,
    /// The namespace at this path (another container's init's, `/proc/PID/ns/NAME`).
    Join(PathBuf),
}

/// What the sandbox around the process is made of, beyond Docker's defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SandboxOptions {
    /// `--privileged`: no masked or read-only paths, `/sys` and `/proc/sys` writable,
    /// every device of the host in `/dev`.
    pub privileged: bool,
    /// `--pid`.
    pub pid: Share,
    /// `--ipc` (`none` is a private one without `/dev/shm`).
    pub ipc: Share,
    pub no_shm: bool,
    /// `--uts host`.
    pub uts_host: bool,
    /// `--cgroupns host`.
    pub cgroupns_host: bool,
    /// `--sysctl`, written in the container's namespaces before its process starts.
    pub sysctls: std::collections::BTreeMap<String, String>,
    /// `--device`: host device nodes bound into the container.
    pub devices: Vec<Device>,
    /// `--shm-size` in bytes (Docker's default: 64 MiB).
    pub shm_size: Option<u64>,
    /// The `/dev/shm` bound in place of a tmpfs of its own: the host's with `--ipc
    /// host`, as Docker's.
    #[serde(default)]
    pub shm_from: Option<PathBuf>,
    /// `--domainname`: the NIS domain name of its UTS namespace.
    pub domainname: Option<String>,
}

/// A host device node at `target` in the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub source: PathBuf,
    pub target: String,
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
    /// The container's, so an `exec` gets what its process got.
    #[serde(default)]
    pub privileges: Privileges,
}

/// What the init is started for: a new container, or a process in a running one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Launch {
    Create(Box<Spec>),
    Enter(Box<EnterSpec>),
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
    /// What mounts the overlay: the kernel, or (rootless, where the kernel does not
    /// let a user namespace) fuse-overlayfs, whose upper directory keeps its marks in
    /// its own form. Recorded with a container, so its restarts use the same.
    #[serde(default)]
    pub driver: overlay::OverlayDriver,
}

impl Rootfs {
    /// The overlay's directories; relative lower names are read from `layers_dir`.
    pub(crate) fn overlay_layers(&self) -> overlay::OverlayLayers<'_> {
        overlay::OverlayLayers {
            lowers: &self.lowers,
            upper: match (&self.upper, &self.work) {
                (Some(upper), Some(work)) => Some((upper.as_path(), work.as_path())),
                _ => None,
            },
            volatile: self.volatile,
        }
    }
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
    /// A file system of its own (`mount -t fstype -o options source target`), as a
    /// volume of the local driver with mount options asks: `options` is mount(8)'s list,
    /// its flag words (`ro`, `nosuid`, `noexec`...) taken as flags, the rest passed on.
    Filesystem {
        source: String,
        fstype: String,
        options: String,
        target: String,
        readonly: bool,
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
    /// The container init's binary, `lade-init`, cannot be opened where it is looked
    /// for: beside the `lade` binary.
    #[error("cannot open lade's container init {}: {source} (it is installed beside the lade binary; scripts/install.sh installs both)", path.display())]
    InitBinary {
        path: PathBuf,
        source: std::io::Error,
    },
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
    /// No overlay driver can be used (rootless, where the kernel refuses its overlay and
    /// fuse-overlayfs is missing), or the one forced is unknown or unusable.
    #[error(transparent)]
    Driver(#[from] overlay::DriverError),
    /// Rootless: a limit asks for a controller the user's delegated subtree lacks.
    #[error("the cgroup v2 subtree {dir} delegated to the user has no {controller} controller: {consequence} (to delegate it, {fix})", dir = dir.display(), fix = delegation::DELEGATE_FIX)]
    DelegatedLacks {
        controller: &'static str,
        dir: PathBuf,
        consequence: &'static str,
    },
    /// Rootless: a limit, and this process in no subtree delegated to the user.
    #[error("no {controller} cgroup controller for rootless lade: {consequence}, as {reason}")]
    NotDelegated {
        controller: &'static str,
        consequence: &'static str,
        reason: String,
    },
    /// `--oom-kill-disable` on a v2 memory controller, which has no such switch.
    #[error("--oom-kill-disable needs a cgroup v1 memory controller: cgroup v2 cannot disable the OOM killer")]
    OomKillDisableOnV2,
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
