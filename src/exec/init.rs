//! The container's init: the `lade-init` binary (installed beside `lade`), executed by
//! the child of the clone. It reads the spec, builds the root file system, becomes the container's user with
//! Docker's capabilities, `no_new_privs` and the seccomp filter, and execs the process.
//! Under `--init` it forks the process instead, and stays PID 1 to reap zombies and
//! forward signals.
//!
//! Failures go back to the parent on the status pipe as `CODE message`, with Docker's
//! codes: 125 the sandbox could not be set up, 126 the command cannot be run, 127 it
//! does not exist.

use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use caps::CapsHashSet;
use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, setgroups, setresgid, setresuid, ForkResult, Gid, Pid, Uid};

use super::spawn::INIT_ENV;
use super::sys::Linux;
use super::{network, rootfs, security, users, Launch, Network};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

type Failure = (i32, String);

/// Runs this process as a container's init (the `lade-init` binary's whole work):
/// returns the exit code when setting up failed; on success it never returns (the
/// process image is replaced).
pub fn run_init() -> i32 {
    let Ok(value) = std::env::var(INIT_ENV) else {
        eprintln!(
            "lade-init: this is lade's container init, which lade starts in a new sandbox \
             ({INIT_ENV} is not set): run containers with `lade run`"
        );
        return 125;
    };
    default_signal_dispositions();
    // lade blocks every signal around the clone (see `spawn`), and a mask survives
    // exec: the container's process starts with none blocked, as under Docker.
    let _ = nix::sys::signal::SigSet::empty().thread_set_mask();
    let mut parts = value.split(':').map(|p| p.parse::<i32>().ok());
    let (Some(Some(spec_fd)), Some(Some(status_fd)), Some(Some(console_fd))) =
        (parts.next(), parts.next(), parts.next())
    else {
        eprintln!("lade-init: {INIT_ENV} is set but malformed");
        return 125;
    };
    // SAFETY: the parent handed this process these descriptors, open and for it alone;
    // each becomes owned here, once, and nothing else refers to it by number.
    let (spec, status, console) = unsafe {
        (
            OwnedFd::from_raw_fd(spec_fd),
            OwnedFd::from_raw_fd(status_fd),
            (console_fd >= 0).then(|| OwnedFd::from_raw_fd(console_fd)),
        )
    };
    let mut status = Some(File::from(status));
    let (code, message) = match run(spec, &mut status, console) {
        Ok(never) => match never {},
        Err(failure) => failure,
    };
    // A reaper gave its copy of the pipe away (its process reports by exiting).
    if let Some(mut status) = status {
        let _ = write!(status, "{code} {message}");
    }
    code
}

/// Every signal back to its default action. An ignored signal stays ignored across
/// exec, and lade ignores SIGPIPE (as a shell ignores SIGINT and SIGQUIT for a job it
/// starts in the background, and as some callers leave real-time signals ignored): the
/// container's process starts as under Docker, with nothing ignored, so that
/// `yes | head -1` ends `yes` with SIGPIPE. The system call itself, not libc's
/// `sigaction`, which refuses the two real-time signals glibc keeps for itself.
fn default_signal_dispositions() {
    // An all-zero `struct sigaction` is SIG_DFL with no flags and an empty mask, whatever
    // the order of its fields on this architecture; 64 bytes hold it everywhere.
    let default = [0u64; 8];
    let signal_set_size = std::mem::size_of::<u64>();
    for signal in 1..=64 {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction reads the zeroed buffer (SIG_DFL: no handler of ours can
        // run) and writes nothing back (a null old action).
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                signal,
                default.as_ptr(),
                std::ptr::null_mut::<u64>(),
                signal_set_size,
            )
        };
    }
}

enum Never {}

fn fail<T>(code: i32, message: impl Into<String>) -> Result<T, Failure> {
    Err((code, message.into()))
}

fn run(
    spec: OwnedFd,
    status: &mut Option<File>,
    console: Option<OwnedFd>,
) -> Result<Never, Failure> {
    let mut json = Vec::new();
    let mut pipe = File::from(spec);
    pipe.read_to_end(&mut json)
        .or_else(|e| fail(125, format!("reading the spec: {e}")))?;
    drop(pipe);
    let launch: Launch =
        serde_json::from_slice(&json).or_else(|e| fail(125, format!("reading the spec: {e}")))?;
    // The final exec closes the status pipe: that is how the parent learns it worked.
    if let Some(pipe) = status.as_ref() {
        nix::fcntl::fcntl(
            pipe,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .or_else(|e| fail(125, format!("the status pipe: {e}")))?;
    }
    let spec = match launch {
        Launch::Create(spec) => *spec,
        Launch::Enter(enter) => return enter_container(&enter, status, console),
    };

    let sandbox = &spec.sandbox;
    if let super::Share::Join(path) = &sandbox.pid {
        join_pid_namespace(path, status)?;
    }
    // The parent has put us in our cgroup by now: it becomes our cgroup namespace's root.
    if !sandbox.cgroupns_host {
        unshare(CloneFlags::CLONE_NEWCGROUP)
            .or_else(|e| fail(125, format!("cgroup namespace: {e}")))?;
    }
    if !sandbox.uts_host {
        nix::unistd::sethostname(&spec.hostname)
            .or_else(|e| fail(125, format!("setting the hostname: {e}")))?;
        if let Some(domain) = &sandbox.domainname {
            set_domainname(domain)?;
        }
    }
    if let super::Share::Join(path) = &sandbox.ipc {
        let file = File::open(path).or_else(|e| fail(125, format!("{}: {e}", path.display())))?;
        nix::sched::setns(&file, CloneFlags::CLONE_NEWIPC)
            .or_else(|e| fail(125, format!("joining the IPC namespace of --ipc: {e}")))?;
    }
    match &spec.network {
        Network::Isolated => network::loopback_up().or_else(|e| fail(125, e.to_string()))?,
        Network::Join(path) => network::join(path).or_else(|e| fail(125, e.to_string()))?,
        Network::Host => {}
    }
    // The kernel shows a namespaced parameter of the writer's own namespace, whichever
    // /proc it is written through: these land in the container's.
    for (name, value) in &sandbox.sysctls {
        let path = Path::new("/proc/sys").join(name.replace('.', "/"));
        std::fs::write(&path, value)
            .or_else(|e| fail(125, format!("--sysctl {name}={value}: {e}")))?;
    }
    rootfs::setup(&mut Linux::default(), &spec)
        .or_else(|(what, e)| fail(125, format!("{what}: {e}")))?;

    let (program, env, filters) = become_process(
        &spec.process,
        &spec.hostname,
        &Confinement {
            insecure: spec.insecure,
            privileges: &spec.privileges,
        },
        console,
        CreateWorkdir::Yes,
    )?;
    if spec.init {
        // SAFETY: this process is single-threaded (a fresh exec of lade-init), so fork is safe.
        match unsafe { fork() }.or_else(|e| fail(125, format!("fork: {e}")))? {
            ForkResult::Child => exec(&program, &spec.process.args, &env, &filters),
            ForkResult::Parent { child } => reap(child, status),
        }
    } else {
        exec(&program, &spec.process.args, &env, &filters)
    }
}

/// `--pid container:NAME`: a process enters a PID namespace only through a fork, so the
/// init joins it and forks; the child goes on as the container's init, and this process
/// stays outside, waiting for it, forwarding signals and exiting as it does.
fn join_pid_namespace(path: &Path, status: &mut Option<File>) -> Result<(), Failure> {
    let file = File::open(path).or_else(|e| fail(125, format!("{}: {e}", path.display())))?;
    nix::sched::setns(&file, CloneFlags::CLONE_NEWPID)
        .or_else(|e| fail(125, format!("joining the PID namespace of --pid: {e}")))?;
    drop(file);
    // SAFETY: this process is single-threaded (a fresh exec of lade-init), so fork is safe.
    match unsafe { fork() }.or_else(|e| fail(125, format!("fork: {e}")))? {
        ForkResult::Child => {
            // SAFETY: prctl with integer arguments only.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
            Ok(())
        }
        ForkResult::Parent { child } => match reap(child, status)? {},
    }
}

fn set_domainname(domain: &str) -> Result<(), Failure> {
    // SAFETY: the pointer and length describe `domain`'s bytes, which outlive the call.
    let done = unsafe { libc::setdomainname(domain.as_ptr().cast(), domain.len()) };
    if done != 0 {
        return fail(
            125,
            format!("--domainname {domain}: {}", std::io::Error::last_os_error()),
        );
    }
    Ok(())
}

/// How a process is confined: `RUN --security=insecure` (every capability, no
/// seccomp filter), else what its container's flags say.
struct Confinement<'a> {
    insecure: bool,
    privileges: &'a super::Privileges,
}

/// Whether a missing working directory is made (as for a container's process, like
/// Docker) or is an error (as for `exec -w`).
#[derive(PartialEq, Eq)]
enum CreateWorkdir {
    Yes,
    No,
}

/// Inside the container's namespaces and root: becomes its user with Docker's
/// capabilities and `no_new_privs`, enters the working directory, and finds the
/// program. Returns what the final exec needs (the seccomp filter is installed last,
/// right before it).
fn become_process(
    process: &super::Process,
    hostname: &str,
    confinement: &Confinement<'_>,
    console: Option<OwnedFd>,
    create_workdir: CreateWorkdir,
) -> Result<(PathBuf, Vec<String>, Vec<seccompiler::BpfProgram>), Failure> {
    let terminal = console.is_some();
    let identity =
        users::resolve_in(Path::new("/"), &process.user).or_else(|e| fail(125, e.to_string()))?;
    match console {
        Some(socket) => attach_terminal(socket, identity.uid, identity.gid)?,
        // A session of its own, as runc and crun give: the caller's terminal (its stdio
        // may be one) is then not the container's controlling terminal, so TIOCSTI cannot
        // type into the shell that started lade, nor can the caller's job control reach in.
        None => {
            nix::unistd::setsid().or_else(|e| fail(125, format!("setsid: {e}")))?;
        }
    }
    let mut env = process.env.clone();
    let has = |env: &[String], name: &str| env.iter().any(|e| e.split('=').next() == Some(name));
    if !has(&env, "PATH") {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }
    if !has(&env, "HOSTNAME") {
        env.push(format!("HOSTNAME={}", hostname));
    }
    if !has(&env, "HOME") {
        env.push(format!(
            "HOME={}",
            identity
                .home
                .clone()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "/".into())
        ));
    }
    if terminal && !has(&env, "TERM") {
        env.push("TERM=xterm".into());
    }
    let cwd = if process.cwd.is_empty() {
        "/".to_string()
    } else {
        process.cwd.clone()
    };
    if !Path::new(&cwd).is_dir() && create_workdir == CreateWorkdir::No {
        return fail(126, format!("the working directory {cwd} does not exist"));
    }
    if !Path::new(&cwd).is_dir() {
        // A symlink whose target is missing gets its target made, as the path says.
        let target = working_dir_target(Path::new(&cwd));
        std::fs::create_dir_all(&target)
            .or_else(|e| fail(125, format!("creating the working directory {cwd}: {e}")))?;
    }

    let privileges = confinement.privileges;
    security::set_rlimits(&privileges.rlimits).or_else(|e| fail(125, e))?;
    if let Some(score) = privileges.oom_score_adj {
        std::fs::write("/proc/self/oom_score_adj", score.to_string()).or_else(|e| {
            fail(
                125,
                format!("--oom-score-adj {score}: {e} (lowering it needs CAP_SYS_RESOURCE)"),
            )
        })?;
    }
    // Every capability lade itself holds is the most it can give: the host's root may
    // lack some (one without CAP_SYS_RESOURCE is common in containers), and asking for
    // more fails.
    let held = caps::read(None, caps::CapSet::Permitted)
        .or_else(|e| fail(125, format!("reading this process's capabilities: {e}")))?;
    let keep: CapsHashSet = if confinement.insecure {
        held
    } else {
        security::capabilities_for(privileges, &held).or_else(|e| fail(125, e.to_string()))?
    };
    let unconfined = confinement.insecure || privileges.privileged;
    let mut filters = match &privileges.seccomp {
        _ if unconfined => Vec::new(),
        super::Seccomp::Unconfined => Vec::new(),
        super::Seccomp::Default => {
            security::seccomp_filters().or_else(|e| fail(125, e.to_string()))?
        }
        super::Seccomp::Profile(profile) => profile
            .filters(&keep)
            .or_else(|e| fail(125, e.to_string()))?,
    };
    if privileges.new_privileges && !filters.is_empty() {
        // Without no_new_privs only CAP_SYS_ADMIN may install a filter, so it goes on
        // now, while this process still holds it, as runc does: what the init does from
        // here on passes through it.
        security::apply_keeping_new_privileges(&filters).or_else(|e| fail(125, e.to_string()))?;
        filters.clear();
    }
    security::limit_bounding_set(&keep).or_else(|e| fail(125, e.to_string()))?;
    let extra = users::group_ids_in(Path::new("/"), &privileges.groups)
        .or_else(|e| fail(125, format!("--group-add: {e}")))?;
    let mut gids: Vec<Gid> = identity
        .additional_gids
        .iter()
        .chain(&extra)
        .map(|g| Gid::from_raw(*g))
        .collect();
    gids.dedup();
    setgroups(&gids).or_else(|e| fail(125, format!("setgroups: {e}")))?;
    let gid = Gid::from_raw(identity.gid);
    setresgid(gid, gid, gid).or_else(|e| fail(125, format!("setgid {}: {e}", identity.gid)))?;
    let uid = Uid::from_raw(identity.uid);
    setresuid(uid, uid, uid).or_else(|e| fail(125, format!("setuid {}: {e}", identity.uid)))?;
    security::set_process_caps(&keep, identity.uid == 0).or_else(|e| fail(125, e.to_string()))?;
    if !privileges.new_privileges {
        security::no_new_privs().or_else(|e| fail(125, e.to_string()))?;
    }

    std::env::set_current_dir(&cwd).or_else(|e| fail(125, format!("entering {cwd}: {e}")))?;
    // CVE-2024-21626: the working directory must be inside the new root, not a leaked
    // descriptor's view of the host.
    let here = nix::unistd::getcwd().or_else(|e| fail(125, format!("getcwd: {e}")))?;
    if !here.is_absolute() || here.as_os_str().as_bytes().starts_with(b"(unreachable)") {
        return fail(
            125,
            format!(
                "the working directory {} is outside the container",
                here.display()
            ),
        );
    }
    // Only stdio (and the status pipe until exec) survive the exec.
    // SAFETY: close_range marks descriptors close-on-exec; no memory is involved.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };

    let program = find_program(&process.args, &env)?;
    Ok((program, env, filters))
}

/// `lade exec`: joins the namespaces of a running container's init (opened first, then
/// checked to still be that init), then forks so that the process is in its PID
/// namespace; this process waits for it and exits as it does. It runs from a sealed
/// copy of lade-init, so the container never sees the host's binary.
fn enter_container(
    enter: &super::EnterSpec,
    status: &mut Option<File>,
    console: Option<OwnedFd>,
) -> Result<Never, Failure> {
    let target = super::ProcessId {
        pid: enter.pid,
        start: enter.pid_start,
    };
    let mut namespaces = Vec::new();
    for name in ["ipc", "uts", "net", "cgroup", "pid", "mnt"] {
        let path = format!("/proc/{}/ns/{name}", enter.pid);
        let file = File::open(&path).or_else(|e| fail(125, format!("{path}: {e}")))?;
        namespaces.push((name, file));
    }
    if !target.is_alive() {
        return fail(125, "the container stopped");
    }
    for (name, file) in &namespaces {
        nix::sched::setns(file, CloneFlags::empty()).or_else(|e| {
            fail(
                125,
                format!("joining the container's {name} namespace: {e}"),
            )
        })?;
    }
    drop(namespaces);
    // SAFETY: this process is single-threaded (a fresh exec of lade-init), so fork is safe.
    match unsafe { fork() }.or_else(|e| fail(125, format!("fork: {e}")))? {
        ForkResult::Child => {
            let (program, env, filters) = become_process(
                &enter.process,
                &enter.hostname,
                &Confinement {
                    insecure: false,
                    privileges: &enter.privileges,
                },
                console,
                CreateWorkdir::No,
            )?;
            exec(&program, &enter.process.args, &env, &filters)
        }
        ForkResult::Parent { child } => reap(child, status),
    }
}

/// Where a missing working directory is to be made: the path itself, or for a symlink
/// (a chain of them) whose target is missing, that target. This runs after `pivot_root`,
/// so an absolute target is inside the container.
fn working_dir_target(path: &Path) -> std::path::PathBuf {
    let mut current = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::read_link(&current) {
            Ok(target) => {
                current = match current.parent() {
                    Some(parent) if target.is_relative() => parent.join(target),
                    _ => target,
                };
            }
            Err(_) => break,
        }
    }
    current
}

/// Makes a pty in the container's devpts, sends its main side to the parent, and makes
/// the secondary side our controlling terminal and stdio.
fn attach_terminal(socket: OwnedFd, uid: u32, gid: u32) -> Result<(), Failure> {
    use std::os::fd::AsRawFd;
    let (master, path) =
        super::pty::open_inside().or_else(|e| fail(125, format!("opening a pty: {e}")))?;
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(&path)
        .or_else(|e| fail(125, format!("opening {}: {e}", path.display())))?;
    std::os::unix::fs::fchown(&slave, Some(uid), Some(gid))
        .or_else(|e| fail(125, format!("chown of the pty: {e}")))?;
    let fds = [master.as_raw_fd()];
    let control = [nix::sys::socket::ControlMessage::ScmRights(&fds)];
    nix::sys::socket::sendmsg::<()>(
        socket.as_raw_fd(),
        &[std::io::IoSlice::new(b"t")],
        &control,
        nix::sys::socket::MsgFlags::empty(),
        None,
    )
    .or_else(|e| fail(125, format!("sending the pty: {e}")))?;
    // The parent sets the window size, then says so (or closes the socket: either way
    // the read returns).
    let mut sized = [0u8; 1];
    let _ = nix::unistd::read(&socket, &mut sized);
    drop(master);
    drop(socket);
    nix::unistd::setsid().or_else(|e| fail(125, format!("setsid: {e}")))?;
    for target in 0..3 {
        // SAFETY: dup2 onto stdio of a descriptor we hold.
        if unsafe { libc::dup2(slave.as_raw_fd(), target) } < 0 {
            return fail(
                125,
                format!("attaching the pty: {}", std::io::Error::last_os_error()),
            );
        }
    }
    // SAFETY: TIOCSCTTY on our stdin (the pty's secondary side) takes no pointer.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } != 0 {
        return fail(
            125,
            format!(
                "setting the controlling terminal: {}",
                std::io::Error::last_os_error()
            ),
        );
    }
    Ok(())
}

/// Finds the program as `execvp` would, using the container's PATH.
fn find_program(args: &[String], env: &[String]) -> Result<PathBuf, Failure> {
    let Some(name) = args.first() else {
        return fail(125, "no command specified");
    };
    let executable =
        |path: &Path| nix::unistd::access(path, nix::unistd::AccessFlags::X_OK).is_ok();
    if name.contains('/') {
        let path = PathBuf::from(name);
        if !path.exists() {
            return fail(127, format!("exec: {name:?}: no such file or directory"));
        }
        if path.is_dir() || !executable(&path) {
            return fail(126, format!("exec: {name:?}: permission denied"));
        }
        return Ok(path);
    }
    let path_var = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    let mut denied = None;
    for dir in path_var.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(name);
        if candidate.is_file() {
            if executable(&candidate) {
                return Ok(candidate);
            }
            denied.get_or_insert(candidate);
        }
    }
    match denied {
        Some(path) => fail(
            126,
            format!("exec: {:?}: permission denied", path.display()),
        ),
        None => fail(
            127,
            format!("exec: {name:?}: executable file not found in $PATH"),
        ),
    }
}

fn exec(
    program: &Path,
    args: &[String],
    env: &[String],
    filters: &[seccompiler::BpfProgram],
) -> Result<Never, Failure> {
    let to_c = |s: &[u8]| {
        CString::new(s).or_else(|_| fail(125, "a NUL byte in the command or environment"))
    };
    let program_c = to_c(program.as_os_str().as_bytes())?;
    let args_c = args
        .iter()
        .map(|a| to_c(a.as_bytes()))
        .collect::<Result<Vec<_>, _>>()?;
    let env_c = env
        .iter()
        .map(|e| to_c(e.as_bytes()))
        .collect::<Result<Vec<_>, _>>()?;
    security::apply(filters).or_else(|e| fail(125, e.to_string()))?;
    let error = nix::unistd::execve(&program_c, &args_c, &env_c).unwrap_err();
    let code = if error == nix::Error::ENOENT {
        127
    } else {
        126
    };
    fail(code, format!("exec {}: {error}", program.display()))
}

/// The process signals are forwarded to, for [`forward_signal`].
static FORWARD_TO: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn forward_signal(signal: libc::c_int) {
    let pid = FORWARD_TO.load(std::sync::atomic::Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe and takes plain integers.
        unsafe { libc::kill(pid, signal) };
    }
}

/// PID 1 under `--init` (and the process that waits for `exec`'s): forwards signals
/// to the process, reaps every child, and exits as the process did.
fn reap(child: Pid, status: &mut Option<File>) -> Result<Never, Failure> {
    // Our copy of the status pipe goes: the child keeps its own, which its exec closes.
    drop(status.take());
    // Signals are forwarded from a handler, not a thread: after joining a PID
    // namespace (`exec`) this process may not start threads.
    FORWARD_TO.store(child.as_raw(), std::sync::atomic::Ordering::SeqCst);
    for signal in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
    ] {
        let action = nix::sys::signal::SigAction::new(
            nix::sys::signal::SigHandler::Handler(forward_signal),
            nix::sys::signal::SaFlags::SA_RESTART,
            nix::sys::signal::SigSet::empty(),
        );
        // SAFETY: the handler only calls kill(2), which is async-signal-safe, with a
        // pid read from an atomic.
        let _ = unsafe { nix::sys::signal::sigaction(signal, &action) };
    }
    loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == child => std::process::exit(code),
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == child => {
                std::process::exit(128 + signal as i32)
            }
            Ok(_) | Err(nix::Error::EINTR) => continue,
            Err(e) => std::process::exit(if e == nix::Error::ECHILD { 0 } else { 125 }),
        }
    }
}
