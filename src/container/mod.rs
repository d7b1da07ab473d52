//! Containers: an image plus run options becomes a sandbox spec (Docker's ENTRYPOINT
//! and CMD rules, environment, user, working directory, volumes, `/etc/hosts`,
//! `/etc/hostname` and `/etc/resolv.conf`), run in the sandbox with a record in the
//! store, and removed afterwards with `--rm`; `update` changes its limits and restart
//! policy later.
//!
//! A container's directory holds its overlay upper and work directories, the mount
//! point of its root, and its generated `/etc` files.

mod attach;
mod changes;
mod copy;
mod events;
mod health;
mod inspect;
mod lifecycle;
mod logs;
mod monitor;
mod networking;
mod record;
mod sandbox;
mod stats;
mod update;
pub mod validate;
mod volumes;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::exec::{
    self, Exit, Io, Limits, Mount, Network, Output, Process, ProcessId, Rootfs, Spec,
};
use crate::layers::{self, LayerError};
use crate::oci::ImageConfig;
use crate::store::{ContainerRecord, Image, Store, StoreError};

pub use crate::network::DnsUnavailable;
pub use attach::{attach, parse_detach_keys, AttachOptions, Attached};
pub use changes::{commit, diff, export, CommitOptions};
pub use copy::{copy, CopyEnd, CopyError, CopyOptions};
pub use health::{health, Health, HealthFlags, HealthStatus, HealthWatch, ProbeResult};
pub use inspect::{inspect, mount_names, network_names, MountName};
pub use lifecycle::{
    kill, parse_signal, start_attached, start_detached, stop, wait, RestartPolicy, Settings,
    DEFAULT_STOP_TIMEOUT,
};
pub use logs::{logs, LogConfig, LogConfigError, LogOptions};
pub use monitor::{log_path, maybe_run_monitor};
pub use networking::{
    live_namespace, plan_join, plan_leave, published_ports, reap_networks, set_network_plan,
    NetworkMode, NetworkRequest, NetworkSettings,
};
pub use record::{Container, ContainerState, Refused};
pub use sandbox::ulimit as parse_ulimit;
pub use sandbox::{SandboxRequest, Shared};
pub use stats::{processes, usage, Usage};
pub use update::update;
pub use volumes::{
    check_volume_name, create_volume, prune_volumes, remove_volume, volume_json, volume_users,
};

/// What `lade run` asks for.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub image: String,
    pub name: Option<String>,
    /// The arguments after the image: a command replacing CMD.
    pub args: Vec<String>,
    /// `--entrypoint`: replaces the image's ENTRYPOINT and clears its CMD.
    pub entrypoint: Option<String>,
    /// `-e NAME=VALUE`, or `-e NAME` to take the value from lade's environment.
    pub env: Vec<String>,
    pub env_files: Vec<PathBuf>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub interactive: bool,
    pub tty: bool,
    /// `-a`: the output streams a foreground run is attached to (all when `-a` is not
    /// given: None; none when `-a` names stdin alone), and whether its stdin is.
    pub attach: Option<Vec<exec::Stream>>,
    pub attach_stdin: bool,
    pub network: NetworkRequest,
    pub hostname: Option<String>,
    /// `-v HOST:CONTAINER[:ro|rw]` (a HOST without `/` names a volume in the store; a
    /// lone CONTAINER path makes an anonymous volume).
    pub volumes: Vec<String>,
    /// `--mount type=volume|bind|tmpfs,source=,target=,readonly`.
    pub mounts: Vec<String>,
    /// `--tmpfs /path[:size=N]`.
    pub tmpfs: Vec<String>,
    /// `--volumes-from CONTAINER[:ro]`.
    pub volumes_from: Vec<String>,
    pub read_only: bool,
    pub limits: Limits,
    pub init: bool,
    pub remove: bool,
    /// Started detached (`run -d`, `create`): it can be paused.
    pub detach: bool,
    /// `--privileged`, `--cap-add`, `--security-opt`, `--device`, `--ulimit`, `--pid`,
    /// `--ipc`, `--sysctl`, `--shm-size` and the rest of the sandbox's flags.
    pub sandbox: SandboxRequest,
    /// `--platform`: the image must be for it.
    pub platform: Option<crate::oci::Platform>,
}

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Exec(#[from] exec::ExecError),
    /// A flag's or a name's value that is not what it should be.
    #[error("invalid {what} {value:?}: {expected}")]
    BadValue {
        what: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("invalid environment variable {0:?}")]
    BadEnvironment(String),
    #[error("cannot read --env-file {}: {source}", path.display())]
    EnvFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Invalid(#[from] validate::InvalidValue),
    #[error("invalid mount {spec:?}: {reason}")]
    BadMount { spec: String, reason: String },
    /// A `volume create -o` the local driver refuses, in moby's words.
    #[error("{0}")]
    VolumeOptions(String),
    /// Docker's words: two of `-v`, `--mount` and `--tmpfs` on one container path.
    #[error("Duplicate mount point: {0}")]
    DuplicateMount(String),
    #[error("the working directory {0:?} is invalid: it must be an absolute path")]
    RelativeWorkdir(String),
    #[error(
        "no command: the image {0} has no ENTRYPOINT or CMD, so give one after the image name"
    )]
    NoCommand(String),
    #[error(
        "the container name {0:?} is already in use: remove that container or choose another name"
    )]
    NameInUse(String),
    #[error("no command given to run")]
    NoCommandGiven,
    #[error("the image {0} has no layers to run")]
    NoLayers(String),
    /// What lade keeps as JSON (a container's spec, its settings, a request to its
    /// monitor) could not be read or written.
    #[error("{what}: {source}")]
    Json {
        what: String,
        source: serde_json::Error,
    },
    #[error("container {name} has an unknown state {state:?} in the store")]
    UnknownState { name: String, state: String },
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("container {0} is not running: start it first (lade start -a)")]
    NotRunningToAttach(String),
    #[error("container {0} is already running")]
    AlreadyRunning(String),
    #[error("container {0} is paused: unpause it first")]
    Paused(String),
    #[error("container {0} is already paused")]
    AlreadyPaused(String),
    #[error("container {0} is not paused")]
    NotPaused(String),
    #[error(
        "container {0} runs in the foreground: lade pauses detached containers (run -d, create)"
    )]
    Foreground(String),
    /// Resource limits for an ordinary user without a delegated cgroup v2 subtree.
    #[error("{flag} needs a cgroup, and rootless lade has none it may write: {reason}")]
    RootlessLimits { flag: &'static str, reason: String },
    /// A limit whose controller the user's delegated subtree lacks.
    #[error("{flag} needs the {controller} cgroup controller, which the cgroup v2 subtree {dir} delegated to this user does not have (it has: {has}); to delegate it, {fix}", dir = dir.display(), fix = exec::delegation::DELEGATE_FIX)]
    RootlessController {
        flag: &'static str,
        controller: &'static str,
        dir: PathBuf,
        has: String,
    },
    /// `pause` of a rootless container made without a cgroup: freezing needs one.
    #[error("container {name} cannot be paused: it was made without a cgroup, as rootless lade had no cgroup v2 subtree delegated to the user ({reason})")]
    RootlessPause { name: String, reason: String },
    #[error("container {0} has a read-only root file system: it changed nothing")]
    ReadOnlyRoot(String),
    #[error("container {0} was started with --log-driver none: it keeps no log")]
    NoLog(String),
    #[error("`-` copies between a container and a tar stream")]
    StreamToStream,
    #[error("the monitor of container {0} did not listen")]
    MonitorSilent(String),
    #[error("the monitor of container {name} ended before the container started (see {})", log.display())]
    MonitorEnded { name: String, log: PathBuf },
    #[error("the detached exec in container {0} ended before its process started")]
    DetachedExecEnded(String),
    #[error("no such volume: {0}")]
    NoSuchVolume(String),
    #[error("volume {name} is in use by container(s) {}: remove them first", users.join(", "))]
    VolumeInUse { name: String, users: Vec<String> },
    #[error("copying the image's {0} into its new volume failed")]
    VolumeSeed(String),
    #[error("-p and -P need a bridge network, not --network {0}")]
    PublishNeedsBridge(String),
    #[error("--network {0} is rootless lade's network: as root, use a bridge network")]
    PastaNeedsRootless(String),
    #[error("--ip, --mac-address and --network-alias need a bridge network")]
    AddressNeedsBridge,
    #[error("container {0} is not running: --network container:{0} needs it running")]
    SharedNetworkStopped(String),
    #[error("container {0}: its network is busy")]
    NetworkBusy(String),
    #[error("container {name} uses --network {mode}: it cannot join a bridge network")]
    CannotJoin { name: String, mode: String },
    #[error("container {name} is already on network {network}")]
    AlreadyOnNetwork { name: String, network: String },
    #[error("container {name} runs without a bridge network of its own (--network {mode}): it cannot be connected while it runs")]
    CannotConnectLive { name: String, mode: String },
    #[error("container {name} is not on network {network}")]
    NotOnNetwork { name: String, network: String },
    /// A bug in lade: a network was to be set up but none was planned.
    #[error("internal error: no network was planned")]
    NoNetworkPlanned,
    #[error("image {0} is not in the store: `lade pull`, `lade import` or `lade load` it first")]
    NoSuchImage(String),
    #[error("container {0} is running: stop it first, or remove it with -f")]
    Running(String),
    #[error("container {name} did not die after SIGKILL (pid {pid})")]
    Unkillable { name: String, pid: i32 },
    #[error(transparent)]
    Copy(#[from] CopyError),
    #[error(transparent)]
    Network(#[from] crate::network::NetworkError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("conflicting options: {0}")]
    Conflicting(&'static str),
    /// `update` of a running container whose cgroup refused a limit (the kernel's
    /// words, as Docker reports them).
    #[error("cannot update container {name}: {source}")]
    Update {
        name: String,
        source: exec::ExecError,
    },
    // Docker's daemon's words (container/container_unix.go, UpdateContainer)
    #[error("cannot update container {0}: Restart policy cannot be updated because AutoRemove is enabled for the container")]
    RestartWithAutoRemove(String),
    #[error(transparent)]
    Security(#[from] exec::SecurityError),
    #[error("container {name} is not running: {flag} container:{name} needs it running")]
    SharedStopped { flag: &'static str, name: String },
    // Docker's daemon's words (daemon/container_operations_unix.go, getIPCContainer)
    #[error(
        "container {0}: non-shareable IPC (hint: use IpcMode:shareable for the donor container)"
    )]
    NotShareable(String),
    #[error(
        "image {image} is for {actual}, which does not match the --platform {wanted} asked for"
    )]
    PlatformMismatch {
        image: String,
        wanted: String,
        actual: String,
    },
}

impl ContainerError {
    /// The exit code `lade run` gives for this error, as Docker does: what the init
    /// reported (126, 127), else 125.
    pub fn exit_code(&self) -> i32 {
        match self {
            ContainerError::Exec(exec::ExecError::Setup { code, .. }) => *code,
            _ => 125,
        }
    }
}

pub type Result<T, E = ContainerError> = std::result::Result<T, E>;

fn io<T>(path: &Path, result: std::io::Result<T>) -> Result<T> {
    result.map_err(|source| ContainerError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// A new container id: 64 random hex digits.
fn new_id() -> Result<String> {
    let mut bytes = [0u8; 32];
    let path = Path::new("/dev/urandom");
    io(
        path,
        fs::File::open(path).and_then(|mut f| f.read_exact(&mut bytes)),
    )?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Docker-style `adjective_noun` names, chosen by the id.
fn generated_name(id: &str) -> String {
    const ADJECTIVES: [&str; 16] = [
        "brave", "calm", "eager", "fond", "gentle", "happy", "jolly", "keen", "lucid", "merry",
        "nifty", "proud", "quiet", "sharp", "vivid", "witty",
    ];
    const NOUNS: [&str; 16] = [
        "babbage", "curie", "dijkstra", "euler", "fermat", "gauss", "hopper", "knuth", "lamport",
        "lovelace", "noether", "pascal", "ritchie", "shannon", "thompson", "turing",
    ];
    let byte = |i: usize| u8::from_str_radix(&id[i..i + 2], 16).unwrap_or(0) as usize;
    format!(
        "{}_{}_{}",
        ADJECTIVES[byte(0) % 16],
        NOUNS[byte(2) % 16],
        &id[4..8]
    )
}

/// The command: Docker's rules for ENTRYPOINT, CMD, `--entrypoint` and arguments.
pub fn command(config: &ImageConfig, entrypoint: Option<&str>, args: &[String]) -> Vec<String> {
    let image = &config.config;
    let (entry, cmd): (Vec<String>, Vec<String>) = match entrypoint {
        Some("") => (Vec::new(), args.to_vec()),
        Some(e) => (vec![e.to_string()], args.to_vec()),
        None => (
            image.entrypoint.clone().unwrap_or_default(),
            if args.is_empty() {
                image.cmd.clone().unwrap_or_default()
            } else {
                args.to_vec()
            },
        ),
    };
    entry.into_iter().chain(cmd).collect()
}

/// The environment: the image's, then `--env-file` files, then `-e`.
fn environment(config: &ImageConfig, options: &RunOptions) -> Result<Vec<String>> {
    merge_environment(config.config.env_pairs(), &options.env_files, &options.env)
}

/// `base`, then the `NAME=VALUE` lines of `env_files`, then `env` (`NAME=VALUE`, or
/// `NAME` to take it from lade's environment); later ones win.
fn merge_environment(
    base: Vec<(String, String)>,
    env_files: &[PathBuf],
    env_args: &[String],
) -> Result<Vec<String>> {
    let mut env = base;
    let mut set = |entry: &str| {
        let (name, value) = match entry.split_once('=') {
            Some((n, v)) => (n.to_string(), v.to_string()),
            None => match std::env::var(entry) {
                Ok(v) => (entry.to_string(), v),
                Err(_) => return,
            },
        };
        match env.iter_mut().find(|(n, _)| *n == name) {
            Some(existing) => existing.1 = value,
            None => env.push((name, value)),
        }
    };
    for file in env_files {
        let text = fs::read_to_string(file).map_err(|source| ContainerError::EnvFile {
            path: file.clone(),
            source,
        })?;
        for line in text.lines() {
            let line = line.trim_start();
            if !line.is_empty() && !line.starts_with('#') {
                set(line);
            }
        }
    }
    for entry in env_args {
        if entry.starts_with('=') || entry.is_empty() {
            return Err(ContainerError::BadEnvironment(entry.to_string()));
        }
        set(entry);
    }
    Ok(env.into_iter().map(|(k, v)| format!("{k}={v}")).collect())
}

/// How a foreground run ended: the container's exit code, and what could not be undone
/// after it (its network's teardown), which does not change that code.
#[derive(Debug)]
pub struct Ran {
    pub code: i32,
    pub teardown: Option<ContainerError>,
}

/// Runs a container `create_from_image` made, in the foreground, to completion;
/// `on_warning` is told, before it runs, what it lacks that it asked for (names that
/// will not resolve on its networks).
pub fn run_created(
    store: &Store,
    id: &str,
    options: &RunOptions,
    on_warning: &dyn Fn(&str),
) -> Result<Ran> {
    let id = id.to_string();
    let container = Container::load(store, &id)?;
    let mut spec = container.spec.clone();
    // Before the network session: a refusal here must not find the container's network
    // lock held by this very process (its removal would wait for it forever).
    if let Err(err) = sandbox::join_shared(store, &container.settings.shared, &mut spec) {
        if options.remove {
            auto_remove(store, &id)?;
        }
        return Err(err);
    }
    let (network, join) = match networking::start(store, &container) {
        Ok(started) => started,
        Err(err) => {
            if options.remove {
                auto_remove(store, &id)?;
            }
            return Err(err);
        }
    };
    spec.network = join;
    if let Some(warning) = network.as_ref().and_then(|n| n.warning()) {
        on_warning(&warning.to_string());
    }
    let mut watcher = None;
    let check = container.settings.healthcheck.clone();
    let mut record_init = |init: ProcessId| {
        // Best effort: the container runs either way, and `ps` tells a missing record.
        let _ = record::write_started(
            store,
            &id,
            &container.settings,
            &container.spec,
            init,
            &now_rfc3339(),
        );
        watcher = health::Watcher::start(store, &id, check.as_ref());
    };
    // Docker logs what every container but an `--rm` one writes: the output goes
    // through us, to ours and to the log, as the monitor's does. An `--rm` run, whose
    // log goes with it, keeps our descriptors (nothing copied), and so do runs with a
    // terminal or stdin, whose output comes in pieces (a prompt without its line end)
    // that a line-by-line copy would hold back.
    let log = if options.remove
        || options.tty
        || options.interactive
        || container.settings.log.disabled
    {
        None
    } else {
        Some(logs::LogWriter::open(
            monitor::log_path(store, &id),
            container.settings.log.clone(),
        )?)
    };
    // `-a`: only the streams named reach ours (stdin only when named).
    let (stdin, output) = if (options.attach.is_none() || options.tty) && log.is_none() {
        (options.interactive, Output::Inherit)
    } else {
        let wanted = options.attach.clone();
        let mut log = log;
        let sink = move |stream: exec::Stream, line: &[u8]| {
            use std::io::Write;
            if let Some(log) = log.as_mut() {
                log.write(stream, line);
            }
            if wanted
                .as_ref()
                .is_some_and(|wanted| !wanted.contains(&stream))
            {
                return;
            }
            let _ = match stream {
                exec::Stream::Stdout => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(line).and_then(|()| out.flush())
                }
                exec::Stream::Stderr => std::io::stderr().lock().write_all(line),
            };
        };
        let stdin = if options.attach.is_none() {
            options.interactive
        } else {
            options.interactive && options.attach_stdin
        };
        (stdin, Output::Streams(Box::new(sink)))
    };
    let result = exec::run(
        &spec,
        Io {
            stdin,
            terminal: options.tty,
            output,
            cancel: None,
            started: Some(&mut record_init),
            on_terminal: None,
        },
    );
    let code = match &result {
        Ok(Exit { code }) => *code,
        Err(err) => match err {
            exec::ExecError::Setup { code, .. } => *code,
            _ => 125,
        },
    };
    if let Some(watcher) = watcher {
        watcher.stop();
    }
    let torn_down = network.map_or(Ok(()), |n| n.finish(store));
    if matches!(result, Err(exec::ExecError::Setup { .. })) {
        record::write_start_failed(store, &id, code, &now_rfc3339())?;
    } else {
        record::write_exited(store, &id, &container.settings.labels, code, &now_rfc3339())?;
    }
    if options.remove {
        auto_remove(store, &id)?;
    }
    result?;
    Ok(Ran {
        code,
        teardown: torn_down.err(),
    })
}

/// The time now, as records keep it.
pub(crate) fn now_rfc3339() -> String {
    jiff::Timestamp::now().to_string()
}

/// Everything in a `run` or `create` request that can be refused without looking at
/// the store: names and host values, `-p`, `--expose`, `-v`, `--mount`, `--tmpfs`,
/// `-e`, `--env-file`, `--dns`, `--ip`, `--add-host`, labels, the working directory.
/// `create_from_image` checks it again first; callers check it before they pull.
pub fn check_run_options(options: &RunOptions, settings: &Settings) -> Result<()> {
    if let Some(workdir) = options.workdir.as_deref().filter(|w| !w.starts_with('/')) {
        return Err(ContainerError::RelativeWorkdir(workdir.to_string()));
    }
    if let Some(name) = &options.name {
        validate::container_name(name)?;
    }
    if let Some(hostname) = &options.hostname {
        validate::hostname(hostname)?;
    }
    for key in settings.labels.keys() {
        validate::label_key(key)?;
    }
    for entry in &options.env {
        if entry.starts_with('=') || entry.is_empty() {
            return Err(ContainerError::BadEnvironment(entry.to_string()));
        }
    }
    for file in &options.env_files {
        fs::File::open(file).map_err(|source| ContainerError::EnvFile {
            path: file.clone(),
            source,
        })?;
    }
    networking::check_request(&options.network)?;
    volumes::check_flags(&options.volumes, &options.mounts, &options.tmpfs)?;
    let planned = sandbox::plan(&options.sandbox, &options.network.mode)?;
    if planned.sandbox.uts_host && options.hostname.is_some() {
        // Docker's words.
        return Err(ContainerError::Conflicting("hostname and the UTS mode"));
    }
    Ok(())
}

/// `--platform`: the image's platform must be the one asked for (the variant only when
/// both name one).
fn check_platform(options: &RunOptions, config: &ImageConfig) -> Result<()> {
    let Some(wanted) = &options.platform else {
        return Ok(());
    };
    let variant_differs = matches!(
        (&wanted.variant, &config.variant),
        (Some(w), Some(h)) if w != h
    );
    if config.os != wanted.os || config.architecture != wanted.architecture || variant_differs {
        let mut actual = format!("{}/{}", config.os, config.architecture);
        if let Some(variant) = &config.variant {
            actual.push('/');
            actual.push_str(variant);
        }
        return Err(ContainerError::PlatformMismatch {
            image: options.image.clone(),
            wanted: wanted.to_string(),
            actual,
        });
    }
    Ok(())
}

/// What a container's creation has made so far (its directory, its addresses, new
/// volumes), undone when it is dropped before the record is in: a refused or failed
/// creation leaves nothing behind.
struct Undo<'a> {
    store: &'a Store,
    id: String,
    dir: PathBuf,
    volumes: Vec<String>,
    done: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let _ = crate::network::release_addresses(self.store, &self.id, None);
        for name in &self.volumes {
            // Another container made meanwhile may have taken it up.
            if volume_users(self.store, name).is_ok_and(|users| users.is_empty()) {
                let _ = self.store.delete_volume(name);
            }
        }
        crate::store::remove_tree(&self.dir);
    }
}

/// `lade create`, and the first half of `lade run`, from `image`, which the caller has
/// found already (through its pull policy: the image named by `options.image` is not
/// looked up again): the container's directory, spec and record (state `created`).
/// Returns its id and spec.
///
/// What the request can be refused for is checked before anything is made; what can
/// fail after that (an address or a name taken meanwhile, a volume that cannot be
/// filled) undoes what was made.
pub fn create_from_image(
    store: &Store,
    image: Image,
    options: &RunOptions,
    settings: &Settings,
) -> Result<(String, Spec)> {
    check_run_options(options, settings)?;
    create_checked(store, image, options, settings)
}

/// What [`create_from_image`] makes once the request has passed its checks.
/// Refuses limits an ordinary user cannot set: they need a cgroup v2 subtree delegated
/// to the user (systemd's `Delegate=yes`) with their controllers. `container` is the
/// cgroup name of an existing container (`update`), whose subtree was recorded when it
/// was made; a new container started detached (`detach`) may get a delegated scope
/// from the user's systemd manager for its monitor.
pub(crate) fn check_rootless_limits(
    limits: &exec::Limits,
    container: Option<&str>,
    detach: bool,
) -> Result<()> {
    if !exec::rootless::is_rootless() {
        return Ok(());
    }
    if limits.oom_kill_disable {
        return Err(ContainerError::RootlessLimits {
            flag: "--oom-kill-disable",
            reason: "a user may only be delegated cgroup v2, which cannot disable the OOM killer"
                .into(),
        });
    }
    let wanted: Vec<(&'static str, &'static str)> = [
        (limits.memory.is_some(), "--memory", "memory"),
        (limits.cpus.is_some(), "--cpus", "cpu"),
        (limits.pids.is_some(), "--pids-limit", "pids"),
    ]
    .into_iter()
    .filter(|(set, _, _)| *set)
    .map(|(_, flag, controller)| (flag, controller))
    .collect();
    let Some(&(first_flag, _)) = wanted.first() else {
        return Ok(());
    };
    match exec::rootless_cgroup_subtree(container) {
        Ok(delegation) => {
            for (flag, controller) in wanted {
                if !delegation.has(controller) {
                    return Err(ContainerError::RootlessController {
                        flag,
                        controller,
                        dir: delegation.dir.clone(),
                        has: delegation.controllers_text(),
                    });
                }
            }
            Ok(())
        }
        // The monitor's scope is checked by the monitor, which reports a missing
        // controller as it makes the cgroup.
        Err(_) if container.is_none() && detach && exec::delegation::scope_possible() => Ok(()),
        Err(reason) => Err(ContainerError::RootlessLimits {
            flag: first_flag,
            reason,
        }),
    }
}

fn create_checked(
    store: &Store,
    image: Image,
    options: &RunOptions,
    settings: &Settings,
) -> Result<(String, Spec)> {
    check_platform(options, &image.config)?;
    check_rootless_limits(&options.limits, None, options.detach)?;
    let planned = sandbox::plan(&options.sandbox, &options.network.mode)?;
    let args = command(&image.config, options.entrypoint.as_deref(), &options.args);
    if args.is_empty() {
        return Err(ContainerError::NoCommand(options.image.to_string()));
    }
    // Held until the record is in: `system check --repair`, which takes this lock
    // alone, never takes a directory or an address on its way to a record for an orphan.
    let _content = store.content_guard()?;
    let lowers = layers::overlay_lowers(store, &image.layers)?;
    if lowers.is_empty() {
        return Err(ContainerError::NoLayers(options.image.to_string()));
    }
    let env = environment(&image.config, options)?;
    let config = &image.config.config;
    let mount_requests = volumes::requests(
        store,
        &volumes::MountFlags {
            volumes: &options.volumes,
            mounts: &options.mounts,
            tmpfs: &options.tmpfs,
            volumes_from: &options.volumes_from,
            image_volumes: config
                .volumes
                .as_ref()
                .map(|v| v.keys().cloned().collect())
                .unwrap_or_default(),
        },
    )?;
    let id = new_id()?;
    let name = match &options.name {
        Some(name) => validate::container_name(name)?.to_string(),
        None => generated_name(&id),
    };
    if store.container(&name).is_ok_and(|other| other.name == name) {
        return Err(ContainerError::NameInUse(name));
    }
    // With the host's UTS namespace the host's name is the container's, as in Docker.
    let host_name = || {
        nix::unistd::gethostname()
            .ok()
            .map(|h| h.to_string_lossy().into_owned())
    };
    let hostname = match (&options.hostname, planned.sandbox.uts_host) {
        (Some(name), _) => name.clone(),
        (None, true) => host_name().unwrap_or_else(|| id[..12].to_string()),
        (None, false) => id[..12].to_string(),
    };
    let dir = store.root().join("containers").join(&id);
    let mut undo = Undo {
        store,
        id: id.clone(),
        dir: dir.clone(),
        volumes: Vec::new(),
        done: false,
    };
    for sub in ["upper", "work", "rootfs"] {
        io(&dir.join(sub), fs::create_dir_all(dir.join(sub)))?;
    }
    let etc = dir.join("etc");
    io(&etc, fs::create_dir_all(&etc))?;
    let (network_settings, etc_files) = networking::plan(
        store,
        &id,
        &name,
        &hostname,
        &options.network,
        &image.config,
    )?;
    let written = fs::write(etc.join("hostname"), format!("{hostname}\n"))
        .and_then(|()| fs::write(etc.join("hosts"), &etc_files.hosts))
        .and_then(|()| fs::write(etc.join("resolv.conf"), &etc_files.resolv));
    io(&etc, written)?;

    let mut mounts = vec![
        Mount::Bind {
            source: etc.join("hostname"),
            target: "/etc/hostname".into(),
            readonly: false,
        },
        Mount::Bind {
            source: etc.join("hosts"),
            target: "/etc/hosts".into(),
            readonly: false,
        },
        Mount::Bind {
            source: etc.join("resolv.conf"),
            target: "/etc/resolv.conf".into(),
            readonly: false,
        },
    ];
    let (volume_mounts, anonymous_volumes, mounted_volumes) = volumes::apply(
        store,
        mount_requests,
        &store.snapshots_dir(),
        &lowers,
        &mut undo.volumes,
    )?;
    mounts.extend(volume_mounts);
    let spec = Spec {
        rootfs: Rootfs {
            layers_dir: store.snapshots_dir(),
            lowers,
            // A read-only root still has an upper directory, as Docker's does: the
            // mount points of its volumes are made there before the root is made
            // read-only, last.
            upper: Some(dir.join("upper")),
            work: Some(dir.join("work")),
            target: dir.join("rootfs"),
            readonly: options.read_only,
            // An `--rm` container's upper directory goes with it: its fsyncs need not
            // reach the disk, nor its overlay's unmount sync the host's whole file
            // system (several milliseconds on a busy host), as podman does for `--rm`.
            volatile: options.remove,
            driver: exec::overlay::choose().map_err(exec::ExecError::from)?,
        },
        process: Process {
            args,
            env,
            cwd: options
                .workdir
                .clone()
                .or_else(|| config.working_dir.clone())
                .filter(|w| !w.is_empty())
                .unwrap_or_else(|| "/".into()),
            user: options
                .user
                .clone()
                .or_else(|| config.user.clone())
                .unwrap_or_default(),
            terminal: options.tty,
        },
        hostname,
        mounts,
        // A bridge network's namespace is made at each start; this is its stand-in.
        network: match network_settings.mode {
            NetworkMode::Host => Network::Host,
            _ => Network::Isolated,
        },
        limits: exec::Limits {
            devices: planned.device_rules.clone(),
            oom_kill_disable: planned.oom_kill_disable,
            ..options.limits.clone()
        },
        cgroup: Some(id.clone()),
        // Pausing takes a cgroup, which rootless lade has only in a delegated subtree.
        // (A container with limits started from outside one gets a delegated scope
        // for its monitor, and so a cgroup to freeze.)
        pausable: options.detach
            && (!exec::rootless::is_rootless()
                || exec::delegation::current().is_ok()
                || (exec::delegation::scope_possible()
                    && (options.limits.memory.is_some()
                        || options.limits.cpus.is_some()
                        || options.limits.pids.is_some()))),
        insecure: false,
        init: options.init,
        privileges: planned.privileges.clone(),
        sandbox: planned.sandbox.clone(),
    };
    let record = ContainerRecord {
        id: id.clone(),
        name,
        image: image.id,
        image_name: options.image.clone(),
        created: jiff::Timestamp::now().as_second(),
        state: ContainerState::Created.as_str().into(),
        pid: None,
        pid_start: None,
        exit_code: None,
        spec: serde_json::to_string(&spec).map_err(|e| ContainerError::Json {
            what: "the container's spec".into(),
            source: e,
        })?,
        settings: Some(record::settings_json(
            &id,
            &Settings {
                network: network_settings,
                interactive: options.interactive,
                log: {
                    let mut log = settings.log.clone();
                    let mut labels = config.labels.clone().unwrap_or_default();
                    labels.extend(settings.labels.clone());
                    log.resolve_attrs(&labels, &spec.process.env);
                    log
                },
                stop_signal: settings
                    .stop_signal
                    .clone()
                    .or_else(|| config.stop_signal.clone()),
                anonymous_volumes,
                mounted_volumes,
                healthcheck: health::merge(
                    config.healthcheck.as_ref(),
                    settings.healthcheck.as_ref(),
                ),
                shared: planned.shared.clone(),
                ..settings.clone()
            },
        )?),
        started_at: None,
        finished_at: None,
        restarts: 0,
    };
    store.insert_container(&record)?;
    undo.done = true;
    events::container_event(
        store,
        &record,
        &settings.labels,
        "create",
        Default::default(),
    );
    Ok((id, spec))
}

/// Removes a container's record and files. A running one is refused unless `force`
/// (which kills it first).
pub fn remove(store: &Store, reference: &str, force: bool, volumes: bool) -> Result<String> {
    let record = store.container(reference)?;
    if let Some(init) = running_init(&record) {
        if !force {
            return Err(ContainerError::Running(record.name));
        }
        // Its monitor must not restart it, and frozen processes cannot die.
        let dir = store.root().join("containers").join(&record.id);
        let _ = fs::write(dir.join("stopped"), b"");
        if ContainerState::of(&record).ok() == Some(ContainerState::Paused) {
            let _ = exec::freeze(&record.id, false);
        }
        if !init.kill_and_wait(KILL_TIMEOUT) {
            return Err(ContainerError::Unkillable {
                name: record.name,
                pid: init.pid,
            });
        }
    }
    // The cgroup goes with its last process; the one that ran the container removes
    // it too, so whichever comes second finds nothing to do.
    exec::remove_cgroup(&record.id);
    // A record whose JSON cannot be read is still removed, as the user asked: only what
    // that JSON names (its network's leftovers, its anonymous volumes) stays behind.
    let container = Container::read(record.clone()).ok();
    remove_container(store, &record.id, container.as_ref())?;
    if let (true, Some(container)) = (volumes, &container) {
        remove_anonymous_volumes(store, &container.settings)?;
    }
    Ok(record.name)
}

/// What `lade exec` asks for.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ExecOptions {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub env_files: Vec<PathBuf>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub interactive: bool,
    pub tty: bool,
    /// `exec --privileged`: every capability lade holds and no seccomp filter for this
    /// process (the container's own mounts and devices stay as they are, as Docker's).
    #[serde(default)]
    pub privileged: bool,
}

/// Runs a process in a running container; returns its exit code (Docker's: 126 not
/// executable, 127 not found).
pub fn exec_in(store: &Store, reference: &str, options: &ExecOptions) -> Result<i32> {
    exec_with(store, reference, options, None)
}

/// `exec -d`: the process runs on, held by a detached helper, its output discarded (as
/// Docker's); returns once it has started, or with why it could not.
pub fn exec_detached(store: &Store, reference: &str, options: &ExecOptions) -> Result<()> {
    let record = store.container(reference)?;
    let request = serde_json::to_string(&monitor::DetachedExec {
        container: record.id.clone(),
        options: ExecOptions {
            interactive: false,
            tty: false,
            ..options.clone()
        },
        attach_socket: None,
        window: None,
    })
    .map_err(|e| ContainerError::Json {
        what: "the exec request".into(),
        source: e,
    })?;
    match lifecycle::spawn_detached(store, &[(monitor::DETACHED_EXEC_ENV, &request)], None)?
        .line()
        .as_str()
    {
        "ok" => Ok(()),
        "" => Err(ContainerError::DetachedExecEnded(record.name.clone())),
        failure => Err(lifecycle::setup_failure(failure)),
    }
}

/// `exec -it`: the process is held by a detached helper that serves its terminal on a
/// socket of its own, and we attach to it, so that the detach keys leave it running
/// (as Docker's daemon keeps it); returns how the attach ended.
pub fn exec_attached(
    store: &Store,
    reference: &str,
    options: &ExecOptions,
    detach_keys: &[u8],
) -> Result<Attached> {
    let record = store.container(reference)?;
    // Unique among the container's execs: this process's id and the time.
    let socket = format!(
        "exec-{}-{}",
        std::process::id(),
        jiff::Timestamp::now().as_nanosecond()
    );
    let request = serde_json::to_string(&monitor::DetachedExec {
        container: record.id.clone(),
        options: options.clone(),
        attach_socket: Some(socket.clone()),
        window: exec::terminal_size(std::os::fd::AsFd::as_fd(&std::io::stdout())),
    })
    .map_err(|e| ContainerError::Json {
        what: "the exec request".into(),
        source: e,
    })?;
    let mut helper =
        lifecycle::spawn_detached(store, &[(monitor::DETACHED_EXEC_ENV, &request)], None)?;
    let mut line = helper.line();
    let mut stream = None;
    if line == "listening" {
        stream = Some(attach::connect_to(store, &record.id, &socket)?);
        line = helper.line();
    }
    match (line.as_str(), stream) {
        ("ok", Some(stream)) => {
            let client = attach::Client {
                terminal: options.tty,
                send_input: options.interactive,
                detach_keys,
                proxy_to: None,
                socket: store
                    .root()
                    .join("containers")
                    .join(&record.id)
                    .join(&socket),
            };
            // A holder that went without a word was killed with its process.
            Ok(attach::serve_client(stream, &client)?.unwrap_or(Attached::Exited(137)))
        }
        ("" | "ok", _) => Err(ContainerError::DetachedExecEnded(record.name.clone())),
        (failure, _) => Err(lifecycle::setup_failure(failure)),
    }
}

fn exec_with(
    store: &Store,
    reference: &str,
    options: &ExecOptions,
    started: Option<&mut dyn FnMut(ProcessId)>,
) -> Result<i32> {
    exec_with_io(
        store,
        reference,
        options,
        Io {
            stdin: options.interactive,
            terminal: options.tty,
            output: Output::Inherit,
            cancel: None,
            started,
            on_terminal: None,
        },
    )
}

fn exec_with_io(store: &Store, reference: &str, options: &ExecOptions, io: Io<'_>) -> Result<i32> {
    let container = Container::load(store, reference)?;
    let enter = enter_spec(&container, options)?;
    match exec::enter(&enter, &container.record.id, io) {
        Ok(Exit { code }) => Ok(code),
        Err(err) => Err(err.into()),
    }
}

/// How `options` enters running `container` (`exec`, a health check): its process
/// with the container's environment, user and working directory unless given.
fn enter_spec(container: &Container, options: &ExecOptions) -> Result<exec::EnterSpec> {
    let record = &container.record;
    let not_running = || ContainerError::NotRunning(record.name.clone());
    let init = container.running_init().ok_or_else(not_running)?;
    if container.state == ContainerState::Paused {
        return Err(ContainerError::Paused(record.name.clone()));
    }
    if let Some(workdir) = options.workdir.as_deref().filter(|w| !w.starts_with('/')) {
        return Err(ContainerError::RelativeWorkdir(workdir.to_string()));
    }
    if options.args.is_empty() {
        return Err(ContainerError::NoCommandGiven);
    }
    let spec = &container.spec;
    let base = spec
        .process
        .env
        .iter()
        .map(|e| match e.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (e.clone(), String::new()),
        })
        .collect();
    Ok(exec::EnterSpec {
        pid: init.pid,
        pid_start: init.start,
        process: Process {
            args: options.args.clone(),
            env: merge_environment(base, &options.env_files, &options.env)?,
            cwd: options.workdir.clone().unwrap_or(spec.process.cwd.clone()),
            user: options.user.clone().unwrap_or(spec.process.user.clone()),
            terminal: options.tty,
        },
        hostname: spec.hostname.clone(),
        privileges: exec::Privileges {
            privileged: spec.privileges.privileged || options.privileged,
            ..spec.privileges.clone()
        },
    })
}

/// Gives a container another name.
pub fn rename(store: &Store, reference: &str, name: &str) -> Result<()> {
    let name = validate::container_name(name)?;
    let record = store.container(reference)?;
    store.rename_container(&record.id, name)?;
    let labels = record::settings_of(&record)
        .map(|settings| settings.labels)
        .unwrap_or_default();
    let old_name = events::attribute("oldName", &record.name);
    events::container_event_by_id(store, &record.id, &labels, "rename", old_name);
    Ok(())
}

/// Removes every container that does not run; returns their ids.
/// `pass` sees each stopped container's creation time (Unix seconds) and labels, and
/// says whether it goes.
pub fn prune(
    store: &Store,
    pass: &dyn Fn(i64, &std::collections::BTreeMap<String, String>) -> bool,
) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for record in store.containers()? {
        if ContainerState::current(&record)?.is_stopped() {
            let container = Container::read(record.clone()).ok();
            let labels = container
                .as_ref()
                .map(|c| c.settings.labels.clone())
                .unwrap_or_default();
            if !pass(record.created, &labels) {
                continue;
            }
            exec::remove_cgroup(&record.id);
            remove_container(store, &record.id, container.as_ref())?;
            removed.push(record.id);
        }
    }
    Ok(removed)
}

/// Pauses (freezes) or resumes a running container's processes, as `docker pause` does.
pub fn pause(store: &Store, reference: &str, paused: bool) -> Result<String> {
    let container = Container::load(store, reference)?;
    let state = container.current_state();
    let next = if paused {
        state.pause()
    } else {
        state.unpause()
    }
    .map_err(|refused| refused.error(container.name()))?;
    if !container.spec.pausable && exec::rootless::is_rootless() {
        return Err(ContainerError::RootlessPause {
            name: container.record.name,
            reason: exec::delegation::current()
                .err()
                .unwrap_or_else(|| "one is delegated now: recreate the container".into()),
        });
    }
    if !container.spec.pausable {
        return Err(ContainerError::Foreground(container.record.name));
    }
    exec::freeze(container.id(), paused)?;
    next.write(store, container.id())?;
    let action = if paused { "pause" } else { "unpause" };
    events::container_event(
        store,
        &container.record,
        &container.settings.labels,
        action,
        Default::default(),
    );
    Ok(container.record.name)
}

/// How long `rm -f` waits for a killed container to be gone.
const KILL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The container's init, if it still runs: the recorded pid with the recorded start
/// time, so that a pid reused by another process is never taken for it.
pub fn running_init(record: &ContainerRecord) -> Option<ProcessId> {
    let init = ProcessId {
        pid: i32::try_from(record.pid?).ok()?,
        start: u64::try_from(record.pid_start?).ok()?,
    };
    init.is_alive().then_some(init)
}

/// A removed container's anonymous volumes, unless another container (--volumes-from)
/// uses them.
fn remove_anonymous_volumes(store: &Store, settings: &Settings) -> Result<()> {
    for name in &settings.anonymous_volumes {
        if volume_users(store, name)?.is_empty() {
            store.delete_volume(name)?;
            events::volume_event(store, name, "destroy", Default::default());
        }
    }
    Ok(())
}

/// `--rm`: the container and its anonymous volumes, as Docker removes them.
fn auto_remove(store: &Store, id: &str) -> Result<()> {
    let container = Container::load(store, id)?;
    remove_container(store, id, Some(&container))?;
    remove_anonymous_volumes(store, &container.settings)
}

/// Removes container `id`'s record and files; `container` is what its record says, when
/// that can be read.
fn remove_container(store: &Store, id: &str, container: Option<&Container>) -> Result<()> {
    if let Some(container) = container {
        // Whoever ran it tears its network down; if nobody does any more, we do.
        networking::reap(store, container, true)?;
    }
    crate::network::release_addresses(store, id, None)?;
    crate::store::remove_tree_in_parallel(&store.root().join("containers").join(id));
    let record = store.container(id).ok();
    store.delete_container(id)?;
    if let Some(record) = record {
        let labels = container.map(|c| &c.settings.labels);
        events::container_event(
            store,
            &record,
            labels.unwrap_or(&Default::default()),
            "destroy",
            Default::default(),
        );
    }
    Ok(())
}

/// The snapshots each container's root file system stands on, for a store repair to
/// leave be; a container whose spec cannot be read is named, not skipped.
pub fn snapshot_users(store: &Store) -> crate::store::SnapshotUsers {
    let mut found = crate::store::SnapshotUsers::default();
    let records = match store.containers() {
        Ok(records) => records,
        Err(e) => {
            found
                .unreadable
                .push(("(all)".into(), format!("the container records: {e}")));
            return found;
        }
    };
    for record in records {
        match record::spec_of(&record) {
            Ok(spec) => {
                for lower in spec.rootfs.lowers {
                    found
                        .users
                        .entry(lower)
                        .or_default()
                        .push(record.name.clone());
                }
            }
            Err(e) => found.unreadable.push((record.name.clone(), e.to_string())),
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(entrypoint: Option<&[&str]>, cmd: Option<&[&str]>) -> ImageConfig {
        let mut c = ImageConfig::default();
        c.config.entrypoint = entrypoint.map(|e| e.iter().map(|s| s.to_string()).collect());
        c.config.cmd = cmd.map(|e| e.iter().map(|s| s.to_string()).collect());
        c
    }

    #[test]
    fn entrypoint_and_cmd_rules() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let c = config(Some(&["/bin/sh", "-c"]), Some(&["echo hi"]));
        assert_eq!(command(&c, None, &[]), args(&["/bin/sh", "-c", "echo hi"]));
        assert_eq!(
            command(&c, None, &args(&["ls"])),
            args(&["/bin/sh", "-c", "ls"])
        );
        assert_eq!(command(&c, Some("env"), &[]), args(&["env"]));
        assert_eq!(
            command(&c, Some("env"), &args(&["-i"])),
            args(&["env", "-i"])
        );
        assert_eq!(command(&c, Some(""), &args(&["true"])), args(&["true"]));
        let c = config(None, Some(&["sh"]));
        assert_eq!(command(&c, None, &args(&["true"])), args(&["true"]));
        assert_eq!(command(&c, None, &[]), args(&["sh"]));
    }

    #[test]
    fn names_are_docker_like() {
        let name = generated_name("0123456789abcdef");
        assert!(name.contains('_') && name.ends_with("4567"), "{name}");
    }
}
