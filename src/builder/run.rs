//! RUN steps: the command runs in the sandbox on an overlay of the stage's layers with a
//! private upper directory; the upper directory (whiteouts and opaque directories
//! already in overlay's form) becomes the step's layer and, by rename, its snapshot.
//! `--mount`s are bind mounts from the context, a stage or an image, cache directories
//! kept in the store, tmpfs, secrets (files on a private tmpfs bound in, or environment
//! variables of the step alone) and ssh agents (a proxy socket bound in). Every mount
//! point the sandbox made is taken out of the upper directory before it becomes the
//! layer, so nothing a mount showed the step is in it.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::secrets::{Secrets, MAX_SECRET_SIZE};
use super::ssh::{AgentProxy, SshAgents};
use super::view::{resolve_in_root, RootView};
use super::{step_failure, BuildError, Event, Reporter, StepFailure, StepRef};
use crate::exec::mounts::{mount_private_tmpfs, Mounted};
use crate::exec::{self, Io, Mount, Network, Output, Process, Rootfs, Spec};
use crate::graph::{CopyFrom, Mount as StepMount, RunNetwork, RunStep, Sharing, Step};
use crate::layers::{self, Compression, LayerWriter};
use crate::store::{LayerInfo, Staging, Store};

/// The mount points the sandbox always makes.
const SYSTEM_MOUNT_POINTS: [&str; 6] = [
    "proc",
    "dev",
    "sys",
    "etc/hosts",
    "etc/resolv.conf",
    "etc/hostname",
];

/// How much of a failing step's output the error shows.
const TAIL_LINES: usize = 12;

/// What a RUN step needs from the build.
pub(crate) struct RunContext<'a> {
    pub store: &'a Store,
    pub layers: &'a [LayerInfo],
    pub context_root: &'a Path,
    pub compression: Compression,
    pub source_date_epoch: Option<i64>,
    pub reporter: &'a dyn Reporter,
    pub step_ref: StepRef,
    pub cancel: &'a exec::Cancel,
    /// `build --ulimit`.
    pub rlimits: &'a [exec::Rlimit],
    /// `build --add-host` and `--shm-size`.
    pub settings: &'a super::StepSettings,
    /// `build --secret`'s values, for secret mounts.
    pub secrets: &'a Secrets,
    /// `build --ssh`'s agents, for ssh mounts.
    pub agents: &'a SshAgents,
    /// Views of stages and images for `--mount=from=...`.
    pub open_view: &'a mut dyn FnMut(&CopyFrom) -> Result<Option<RootView>, BuildError>,
}

/// Why a RUN step's `--mount` cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("--mount from={from} has no files")]
    NoFiles { from: String },
    #[error("--mount source {0:?} does not exist")]
    NoSource(String),
    #[error("cache mounts seeded `from` a stage or image are not supported")]
    SeededCache,
    #[error("the secret {id:?} is required but was not given: pass it with --secret id={id},src=FILE (or env=VARIABLE)")]
    SecretNotGiven { id: String },
    #[error("the ssh agent {id:?} is required but was not given: pass it with --ssh {id} (the agent at $SSH_AUTH_SOCK) or --ssh {id}=SOCKET|KEY")]
    SshNotGiven { id: String },
    #[error("the secret {id:?} cannot be the environment variable {variable}: its value holds a NUL byte or is not UTF-8")]
    SecretNotText { id: String, variable: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The stage or image to mount could not be opened.
    #[error(transparent)]
    View(Box<BuildError>),
}

/// A command as a failed step shows it: its argv as JSON, as BuildKit does.
pub(super) fn shown_argv(argv: &[String]) -> String {
    serde_json::to_string(argv).unwrap_or_else(|_| format!("{argv:?}"))
}

/// The last lines a failed command wrote, indented, after its message.
pub(super) fn output_tail(lines: &[String]) -> String {
    if lines.is_empty() {
        return String::new();
    }
    let mut text = String::from("\nlast lines of its output:");
    for line in lines {
        text.push_str("\n  ");
        text.push_str(line.trim_end());
    }
    text
}

/// Runs the step; returns its layer, or `None` when it changed nothing.
pub(crate) fn run(
    mut cx: RunContext<'_>,
    step: &Step,
    run: &RunStep,
) -> Result<Option<LayerInfo>, BuildError> {
    let store = cx.store;
    let snapshots = store.snapshots_dir();
    let mut lowers = layers::overlay_lowers(store, cx.layers)?;
    if lowers.is_empty() {
        // Overlay needs a lower directory: an empty one for a stage that has none yet.
        let empty = snapshots.join("empty");
        fs::create_dir_all(&empty).map_err(|source| BuildError::Io {
            path: empty,
            source,
        })?;
        lowers.push("empty".into());
    }
    let lower_dirs: Vec<PathBuf> = lowers.iter().map(|l| snapshots.join(l)).collect();
    let driver = crate::exec::overlay::choose()
        .map_err(|e| step_failure(step, StepFailure::Exec(e.into())))?;
    let staging = store.staging_dir("run")?;
    let upper = staging.path().join("upper");
    for sub in ["upper", "work", "rootfs", "files"] {
        let path = staging.path().join(sub);
        fs::create_dir(&path).map_err(|source| BuildError::Io { path, source })?;
    }

    let mut views: Vec<RootView> = Vec::new();
    let mut locks: Vec<File> = Vec::new();
    let mut private = PrivateMounts::default();
    let mut mounts: Vec<Mount> = Vec::new();
    for (index, mount) in run.mounts.iter().enumerate() {
        if let Some(m) = step_mount(
            &mut cx,
            &staging,
            index,
            mount,
            &mut views,
            &mut locks,
            &mut private,
        )
        .map_err(|e| step_failure(step, e))?
        {
            mounts.push(m);
        }
    }
    // As BuildKit: the first ssh mount is the step's agent, unless it names its own.
    let first_ssh = run.mounts.iter().find_map(|m| match m {
        StepMount::Ssh { target, .. } => Some(target),
        _ => None,
    });
    if let Some(target) = first_ssh {
        if !run
            .env
            .entries()
            .iter()
            .any(|(k, _)| &**k == "SSH_AUTH_SOCK")
        {
            private
                .env
                .push(("SSH_AUTH_SOCK".to_string(), target.clone()));
        }
    }
    for script in &run.script_files {
        let name = script.path.rsplit('/').next().unwrap_or("script");
        let file = staging.path().join("files").join(name);
        fs::write(&file, &script.content).map_err(|source| BuildError::Io {
            path: file.clone(),
            source,
        })?;
        fs::set_permissions(&file, fs::Permissions::from_mode(script.mode)).map_err(|source| {
            BuildError::Io {
                path: file.clone(),
                source,
            }
        })?;
        mounts.push(Mount::Bind {
            source: file,
            target: script.path.clone(),
            readonly: true,
        });
    }
    // `--add-host`: the hosts file the step would have, and the build's names after it
    // (as BuildKit adds them, whatever the network).
    if !cx.settings.extra_hosts.is_empty() {
        let file = staging.path().join("files").join("hosts");
        fs::write(&file, hosts_file(run.network, &cx.settings.extra_hosts)).map_err(|source| {
            BuildError::Io {
                path: file.clone(),
                source,
            }
        })?;
        mounts.push(Mount::Bind {
            source: file,
            target: "/etc/hosts".into(),
            readonly: true,
        });
    }
    // Name resolution for the host network, where the image has the files to mount on.
    if run.network != RunNetwork::None {
        for (path, host) in [
            ("etc/resolv.conf", "/etc/resolv.conf"),
            ("etc/hosts", "/etc/hosts"),
        ] {
            if path == "etc/hosts" && !cx.settings.extra_hosts.is_empty() {
                continue;
            }
            if exists_in(&lower_dirs, path) && Path::new(host).exists() {
                mounts.push(Mount::Bind {
                    source: host.into(),
                    target: format!("/{path}"),
                    readonly: true,
                });
            }
        }
    }

    let spec = Spec {
        rootfs: Rootfs {
            layers_dir: snapshots.clone(),
            lowers,
            upper: Some(upper.clone()),
            work: Some(staging.path().join("work")),
            target: staging.path().join("rootfs"),
            readonly: false,
            // fsync inside a step (dpkg does one per file) is free: a step that dies
            // leaves nothing used, since its layer counts once committed.
            volatile: true,
            driver,
        },
        process: Process {
            args: run.argv.clone(),
            env: run
                .env
                .entries()
                .iter()
                .filter(|(k, _)| !private.env.iter().any(|(name, _)| name == &**k))
                .map(|(k, v)| format!("{k}={v}"))
                .chain(private.env.iter().map(|(k, v)| format!("{k}={v}")))
                .collect(),
            cwd: run.workdir.clone(),
            user: run.user.clone(),
            terminal: false,
        },
        hostname: "lade".into(),
        mounts: mounts.clone(),
        network: match run.network {
            RunNetwork::None => Network::Isolated,
            RunNetwork::Default | RunNetwork::Host => Network::Host,
        },
        limits: Default::default(),
        cgroup: None,
        insecure: run.insecure,
        init: false,
        pausable: false,
        privileges: exec::Privileges {
            rlimits: cx.rlimits.to_vec(),
            ..Default::default()
        },
        sandbox: exec::SandboxOptions {
            shm_size: cx.settings.shm_size,
            ..Default::default()
        },
    };
    // Output lines arrive on the sandbox's reader thread; they reach the reporter (only
    // borrowed here) through a channel read on a scoped thread.
    let tail: Arc<Mutex<VecDeque<String>>> = Arc::new(Mutex::new(VecDeque::new()));
    let (lines, received) = std::sync::mpsc::channel::<String>();
    let callback = {
        let tail = tail.clone();
        move |line: &str| {
            let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
            tail.push_back(line.to_string());
            if tail.len() > TAIL_LINES {
                tail.pop_front();
            }
            let _ = lines.send(line.to_string());
        }
    };
    let reporter = cx.reporter;
    let step_ref = cx.step_ref.clone();
    let result = std::thread::scope(|scope| {
        scope.spawn(move || {
            for line in received {
                reporter.report(Event::StepOutput {
                    step: step_ref.clone(),
                    line,
                });
            }
        });
        exec::run(
            &spec,
            Io {
                stdin: false,
                terminal: false,
                output: Output::Lines(Box::new(callback)),
                cancel: Some(cx.cancel),
                started: None,
                on_terminal: None,
            },
        )
    });
    drop(views);
    drop(locks);
    // The secrets' tmpfs and the agents' proxies go as soon as the command ends.
    drop(private);
    let output = || -> Vec<String> {
        let tail = tail.lock().unwrap_or_else(|e| e.into_inner());
        tail.iter().cloned().collect()
    };
    // A build being stopped never records a step whose sandbox it was killing, however
    // the step ended: a command whose child the signal reached may go on and exit 0
    // having done half its work.
    if cx.cancel.is_cancelled() {
        return Err(BuildError::Cancelled);
    }
    match result {
        Ok(exit) if exit.code == 0 => {}
        Ok(exit) => {
            return Err(step_failure(
                step,
                StepFailure::CommandFailed {
                    argv: run.argv.clone(),
                    code: exit.code,
                    output: output(),
                },
            ))
        }
        Err(exec::ExecError::Setup { message, .. }) => {
            return Err(step_failure(
                step,
                StepFailure::CommandNotStarted {
                    message,
                    output: output(),
                },
            ))
        }
        Err(other) => return Err(step_failure(step, StepFailure::Exec(other))),
    }

    if driver == crate::exec::overlay::OverlayDriver::Fuse {
        layers::adopt_fuse_overlay_marks(&upper)?;
    }
    // Mount points the sandbox made are not the step's changes.
    let mut points: Vec<String> = SYSTEM_MOUNT_POINTS.iter().map(|p| p.to_string()).collect();
    points.extend(mounts.iter().map(|m| match m {
        Mount::Bind { target, .. }
        | Mount::Tmpfs { target, .. }
        | Mount::Filesystem { target, .. }
        | Mount::Overlay { target, .. } => target.trim_start_matches('/').to_string(),
    }));
    for point in points {
        remove_mount_point(&upper, &lower_dirs, &point);
    }

    let entries = layers::dir_entries(&upper, true)?;
    if entries.is_empty() {
        return Ok(None);
    }
    let mut writer =
        LayerWriter::new(store, cx.compression, cx.source_date_epoch, None)?.remembering_contents();
    for walked in &entries {
        writer.add_walked(walked)?;
    }
    Ok(Some(writer.finish_with_walked_snapshot(store, &upper)?))
}

/// A step's `/etc/hosts` with `--add-host`'s names: the host's on its network, else
/// loopback's names alone, then one line per name.
fn hosts_file(network: RunNetwork, extra: &[(String, std::net::IpAddr)]) -> String {
    let mut text = match network {
        RunNetwork::None => String::new(),
        RunNetwork::Default | RunNetwork::Host => {
            fs::read_to_string("/etc/hosts").unwrap_or_default()
        }
    };
    if text.is_empty() {
        text = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n".into();
    }
    if !text.ends_with('\n') {
        text.push('\n');
    }
    for (name, ip) in extra {
        text.push_str(&format!("{ip}\t{name}\n"));
    }
    text
}

/// `base/relative` when no directory on the way is a symbolic link, else None. The
/// step wrote the upper directory (and an image the layers): a link there must not
/// lead lade's own removals and checks out to the host. The step has ended, so nothing
/// changes the directories between this check and their use.
fn without_links(base: &Path, relative: &Path) -> Option<PathBuf> {
    let mut path = base.to_path_buf();
    let mut components = relative.components().peekable();
    while let Some(component) = components.next() {
        match component {
            std::path::Component::Normal(name) => path.push(name),
            _ => return None,
        }
        if components.peek().is_some()
            && fs::symlink_metadata(&path).is_ok_and(|meta| meta.file_type().is_symlink())
        {
            return None;
        }
    }
    Some(path)
}

/// Whether `path` (relative) is in the merged view of `lowers` (topmost first).
fn exists_in(lowers: &[PathBuf], path: &str) -> bool {
    for lower in lowers {
        let Some(at) = without_links(lower, Path::new(path)) else {
            // A link on the way: the view shows something there.
            return true;
        };
        if let Ok(meta) = fs::symlink_metadata(at) {
            let whiteout = meta.file_type().is_char_device() && meta.rdev() == 0;
            return !whiteout;
        }
    }
    false
}

/// Removes a mount point the sandbox created in the upper directory, if the image did
/// not have it and nothing was written to it.
fn remove_mount_point(upper: &Path, lowers: &[PathBuf], point: &str) {
    if point.is_empty() || exists_in(lowers, point) {
        return;
    }
    let Some(path) = without_links(upper, Path::new(point)) else {
        return;
    };
    match fs::symlink_metadata(&path) {
        Ok(meta) if meta.is_dir() => {
            let _ = fs::remove_dir(&path);
        }
        Ok(meta) if meta.is_file() && meta.len() == 0 => {
            let _ = fs::remove_file(&path);
        }
        _ => return,
    }
    // Parents made only to hold the mount point go too, and so do directories of the
    // image that overlay copied up only to make it (empty in the upper, their owner and
    // mode unchanged): the step did not change them.
    let mut parent = Path::new(point).parent();
    while let Some(dir) = parent.filter(|d| !d.as_os_str().is_empty()) {
        let Some(in_upper) = without_links(upper, dir) else {
            break;
        };
        if let Some(lower) = lower_metadata(lowers, &dir.to_string_lossy()) {
            let unchanged = fs::symlink_metadata(&in_upper).is_ok_and(|meta| {
                meta.is_dir()
                    && lower.is_dir()
                    && meta.mode() == lower.mode()
                    && meta.uid() == lower.uid()
                    && meta.gid() == lower.gid()
            }) && layers::has_only_copy_up_xattrs(&in_upper);
            if !unchanged {
                break;
            }
        }
        if fs::remove_dir(&in_upper).is_err() {
            break;
        }
        parent = dir.parent();
    }
}

/// The metadata of `path` (relative) in the merged view of `lowers` (topmost first).
fn lower_metadata(lowers: &[PathBuf], path: &str) -> Option<fs::Metadata> {
    for lower in lowers {
        let at = without_links(lower, Path::new(path))?;
        if let Ok(meta) = fs::symlink_metadata(at) {
            let whiteout = meta.file_type().is_char_device() && meta.rdev() == 0;
            return (!whiteout).then_some(meta);
        }
    }
    None
}

fn mount_io(path: &Path) -> impl FnOnce(std::io::Error) -> MountError + '_ {
    move |source| MountError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What a step's secret and ssh mounts are made of while it runs: a tmpfs (in lade's
/// private mount namespace) holding the secrets' files and the proxies' sockets, which
/// are bound into the sandbox; and the secrets' environment variables, given to the
/// step's process alone (never part of the step's recorded environment).
#[derive(Default)]
struct PrivateMounts {
    // Declared first: the proxies stop, and their sockets go, before the tmpfs under
    // them is unmounted.
    proxies: Vec<AgentProxy>,
    tmpfs: Option<(Mounted, PathBuf)>,
    env: Vec<(String, String)>,
}

impl PrivateMounts {
    /// The tmpfs directory, mounted under the step's staging directory the first time.
    fn dir(&mut self, staging: &Staging) -> Result<PathBuf, MountError> {
        if let Some((_, dir)) = &self.tmpfs {
            return Ok(dir.clone());
        }
        let dir = staging.path().join("private");
        fs::create_dir(&dir).map_err(mount_io(&dir))?;
        // Room for a step that mounts many secrets: tmpfs pages are used as written.
        let mounted = mount_private_tmpfs(&dir, 64 * MAX_SECRET_SIZE).map_err(mount_io(&dir))?;
        self.tmpfs = Some((mounted, dir.clone()));
        Ok(dir)
    }
}

/// Writes a secret's file on the private tmpfs, as the step is to see it.
fn write_secret(path: &Path, value: &[u8], mode: u32, uid: u32, gid: u32) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(value)?;
    drop(file);
    std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

/// One `--mount` as a sandbox mount (or nothing, for an optional secret or agent that
/// was not given, or a secret that is only an environment variable).
fn step_mount(
    cx: &mut RunContext<'_>,
    staging: &Staging,
    index: usize,
    mount: &StepMount,
    views: &mut Vec<RootView>,
    locks: &mut Vec<File>,
    private: &mut PrivateMounts,
) -> Result<Option<Mount>, MountError> {
    Ok(Some(match mount {
        StepMount::Bind {
            target,
            from,
            source,
            readwrite,
        } => {
            let root = match from {
                CopyFrom::Context => cx.context_root.to_path_buf(),
                other => {
                    let view = (cx.open_view)(other)
                        .map_err(|e| MountError::View(Box::new(e)))?
                        .ok_or_else(|| MountError::NoFiles {
                            from: match other {
                                CopyFrom::Stage(i) => format!("stage {i}"),
                                CopyFrom::Image(r) => r.familiar(),
                                CopyFrom::Context => "context".into(),
                            },
                        })?;
                    let root = view.root().to_path_buf();
                    views.push(view);
                    root
                }
            };
            let path = resolve_in_root(&root, source, true);
            if !path.exists() {
                return Err(MountError::NoSource(source.clone()));
            }
            if *readwrite && path.is_dir() {
                let upper = staging.path().join(format!("mount{index}-upper"));
                let work = staging.path().join(format!("mount{index}-work"));
                for dir in [&upper, &work] {
                    fs::create_dir_all(dir).map_err(mount_io(dir))?;
                }
                Mount::Overlay {
                    lower: path,
                    upper,
                    work,
                    target: target.clone(),
                }
            } else {
                Mount::Bind {
                    source: path,
                    target: target.clone(),
                    readonly: !readwrite,
                }
            }
        }
        StepMount::Cache {
            target,
            id,
            sharing,
            from,
            readonly,
            mode,
            uid,
            gid,
            ..
        } => {
            if from.is_some() {
                return Err(MountError::SeededCache);
            }
            let base = cx.store.cache_mounts_dir();
            let key = &crate::oci::Digest::of(id.as_bytes()).hex()[..16];
            let mut dir = base.join(key);
            let lock_path = base.join(format!("{key}.lock"));
            match sharing {
                Sharing::Shared => {}
                Sharing::Locked | Sharing::Private => {
                    let lock = File::options()
                        .create(true)
                        .truncate(false)
                        .write(true)
                        .open(&lock_path)
                        .map_err(mount_io(&lock_path))?;
                    if *sharing == Sharing::Locked {
                        lock.lock().map_err(mount_io(&lock_path))?;
                        locks.push(lock);
                    } else if lock.try_lock().is_ok() {
                        locks.push(lock);
                    } else {
                        // Another build has it: this one gets a cache of its own.
                        dir = staging.path().join(format!("cache{index}"));
                    }
                }
            }
            if !dir.exists() {
                fs::create_dir_all(&dir).map_err(mount_io(&dir))?;
                fs::set_permissions(&dir, fs::Permissions::from_mode(*mode))
                    .map_err(mount_io(&dir))?;
                std::os::unix::fs::chown(&dir, Some(*uid), Some(*gid)).map_err(mount_io(&dir))?;
            }
            Mount::Bind {
                source: dir,
                target: target.clone(),
                readonly: *readonly,
            }
        }
        StepMount::Tmpfs { target, size } => Mount::Tmpfs {
            target: target.clone(),
            size: *size,
        },
        StepMount::Secret {
            target,
            id,
            required,
            env,
            mode,
            uid,
            gid,
        } => {
            let Some(value) = cx.secrets.get(id) else {
                if *required {
                    return Err(MountError::SecretNotGiven { id: id.clone() });
                }
                // As BuildKit does: an optional secret that is not given is not mounted.
                return Ok(None);
            };
            if let Some(variable) = env {
                let text = std::str::from_utf8(value)
                    .ok()
                    .filter(|text| !text.contains('\0'))
                    .ok_or_else(|| MountError::SecretNotText {
                        id: id.clone(),
                        variable: variable.clone(),
                    })?;
                private.env.push((variable.clone(), text.to_string()));
            }
            let Some(target) = target else {
                return Ok(None);
            };
            let file = private.dir(staging)?.join(format!("secret{index}"));
            write_secret(&file, value, *mode, *uid, *gid).map_err(mount_io(&file))?;
            Mount::Bind {
                source: file,
                target: target.clone(),
                readonly: true,
            }
        }
        StepMount::Ssh {
            target,
            id,
            required,
            mode,
            uid,
            gid,
        } => {
            let Some(agent) = cx.agents.socket(id) else {
                if *required {
                    return Err(MountError::SshNotGiven { id: id.clone() });
                }
                return Ok(None);
            };
            let socket = private.dir(staging)?.join(format!("ssh{index}.sock"));
            let proxy =
                AgentProxy::start(&socket, agent, *mode, *uid, *gid).map_err(mount_io(&socket))?;
            private.proxies.push(proxy);
            Mount::Bind {
                source: socket,
                target: target.clone(),
                readonly: true,
            }
        }
    }))
}
