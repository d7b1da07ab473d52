//! The parent's side of a sandbox: clone into new namespaces, have the child execute
//! the container init (`lade-init`), put it in its cgroup, send it the spec, learn whether the
//! process started, forward signals, wait, and report the exit code as Docker does.

use std::ffi::CString;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, OnceLock};

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::socket::{
    recvmsg, socketpair, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType,
};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{pipe2, Pid};

use super::cgroups::{Cgroup, CgroupLayout};
use super::process::ProcessId;
use super::{io_err, pty, sys_err, EnterSpec, ExecError, Launch, Network, Result, Share, Spec};

/// How the sandbox's standard streams connect to ours, and who may stop it.
pub struct Io<'a> {
    /// Keep our standard input connected (`-i`); otherwise it reads `/dev/null`.
    pub stdin: bool,
    /// A pty (`-t`).
    pub terminal: bool,
    pub output: Output,
    /// The work this sandbox is part of (a build): cancelling it kills the sandbox, and
    /// signals to lade are its owner's to handle. Without one, SIGINT, SIGTERM and the
    /// other signals lade receives are forwarded to the sandbox, as `docker run` does.
    pub cancel: Option<&'a Cancel>,
    /// Told the sandbox's init once its process has started (exec'd), before it is
    /// waited for; not told when the process could not start.
    pub started: Option<&'a mut dyn FnMut(ProcessId)>,
    /// Given a second handle on the pty's main side with `terminal`, for whoever sets
    /// its window size (an attached client's).
    pub on_terminal: Option<&'a mut dyn FnMut(File)>,
}

/// Stops the sandboxes of one piece of work (a build): cancelling kills those running
/// and any started with it afterwards. Each build has its own, so a cancel never
/// outlives the work it was for.
#[derive(Debug, Default)]
pub struct Cancel {
    state: Mutex<CancelState>,
}

#[derive(Debug, Default)]
struct CancelState {
    cancelled: bool,
    /// The signal that asked for the cancel, when one did.
    signal: Option<i32>,
    pids: Vec<i32>,
}

impl Cancel {
    pub fn new() -> Cancel {
        Cancel::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, CancelState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Kills every sandbox started with this handle, now and later.
    pub fn cancel(&self) {
        let mut state = self.state();
        state.cancelled = true;
        for &pid in &state.pids {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }

    /// Cancels because lade received `signal` (SIGINT, SIGTERM).
    pub fn interrupt(&self, signal: i32) {
        self.state().signal.get_or_insert(signal);
        self.cancel();
    }

    pub fn is_cancelled(&self) -> bool {
        self.state().cancelled
    }

    /// The signal that interrupted the work, if one did.
    pub fn interrupted_by(&self) -> Option<i32> {
        self.state().signal
    }

    /// Registers a sandbox; kills it at once when the work is already cancelled.
    fn register(&self, pid: Pid) {
        let mut state = self.state();
        if state.cancelled {
            let _ = kill(pid, Signal::SIGKILL);
        }
        state.pids.push(pid.as_raw());
    }

    fn unregister(&self, pid: Pid) {
        self.state().pids.retain(|p| *p != pid.as_raw());
    }
}

/// Where the sandbox's stdout and stderr go.
pub enum Output {
    /// Straight to ours.
    Inherit,
    /// Merged and cut into lines, each given to the callback.
    Lines(Box<dyn FnMut(&str) + Send>),
    /// Each stream cut into lines (the newline kept, when there was one), each given
    /// to the callback with the stream it came from: a container's log. With a
    /// terminal, the pty's output as it comes, as stdout, not cut into lines.
    Streams(StreamSink),
}

/// Where [`Output::Streams`] sends each line.
pub type StreamSink = Box<dyn FnMut(Stream, &[u8]) + Send>;

/// Which of the sandbox's output streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// How the process ended, as Docker reports it: its exit code, or 128 + the signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub code: i32,
}

/// The environment variable that hands `lade-init` its descriptors (spec, status, console).
pub(crate) const INIT_ENV: &str = "_LADE_INIT";

/// The sandboxes that lade's signals are forwarded to (those run without a [`Cancel`]),
/// and the pty whose size follows ours.
struct Forwarded {
    pids: Vec<i32>,
    pty: Option<RawFd>,
}

/// Static because signal dispositions belong to the process, not to a caller: the one
/// forwarding thread serves every sandbox this process runs, and this is its only way
/// to find them.
static FORWARDED: Mutex<Forwarded> = Mutex::new(Forwarded {
    pids: Vec::new(),
    pty: None,
});

/// Whether the forwarding thread has taken over the signals: a second one would race
/// the first for each signal, so this is once per process, not once per caller.
static FORWARDER: OnceLock<()> = OnceLock::new();

/// Once per process: SIGINT, SIGTERM, SIGHUP, SIGQUIT and the user signals go to the
/// running sandboxes; with none running they do what they would have done to lade.
fn install_forwarder() {
    FORWARDER.get_or_init(|| {
        use signal_hook::consts::*;
        let Ok(mut signals) = signal_hook::iterator::Signals::new([
            SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH,
        ]) else {
            return;
        };
        std::thread::spawn(move || {
            for signal in signals.forever() {
                let running = FORWARDED.lock().unwrap_or_else(|e| e.into_inner());
                if signal == SIGWINCH {
                    if let Some(fd) = running.pty {
                        // SAFETY: the pty stays open while it is registered here.
                        pty::resize(unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) });
                    }
                    continue;
                }
                if running.pids.is_empty() {
                    drop(running);
                    let _ = signal_hook::low_level::emulate_default_handler(signal);
                    continue;
                }
                for &pid in &running.pids {
                    if let Ok(sig) = Signal::try_from(signal) {
                        let _ = kill(Pid::from_raw(pid), sig);
                    }
                }
            }
        });
    });
}

/// The name of the container init's binary, which lade looks for beside its own.
pub const INIT_BINARY: &str = "lade-init";

/// The container init's binary: `lade-init` in the directory of the running lade binary
/// (the real file, whatever link it was started through). A binary of its own because
/// it starts once per container: it holds only the init's code, so its start costs a
/// fraction of lade's (fewer pages mapped, far fewer relocations).
///
/// Opened once per process and kept: a monitor that lives as long as its container
/// starts each restart's init from the file it first found, even when a newer lade and
/// lade-init are installed in its place (`install` and the linker write a new file),
/// so the spec it sends is read by the init of its own build, as when lade re-executed
/// itself.
fn init_binary() -> Result<&'static File> {
    static INIT: OnceLock<File> = OnceLock::new();
    if let Some(file) = INIT.get() {
        return Ok(file);
    }
    let file = open_init_binary()?;
    Ok(INIT.get_or_init(|| file))
}

fn open_init_binary() -> Result<File> {
    static PATH: OnceLock<std::io::Result<std::path::PathBuf>> = OnceLock::new();
    let path = PATH.get_or_init(|| {
        let exe = std::env::current_exe()?;
        let dir = exe.parent().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "lade's binary has no directory",
            )
        })?;
        Ok(dir.join(INIT_BINARY))
    });
    let path = match path {
        Ok(path) => path,
        Err(e) => {
            return Err(ExecError::InitBinary {
                path: INIT_BINARY.into(),
                source: std::io::Error::new(e.kind(), format!("finding lade's own binary: {e}")),
            })
        }
    };
    File::open(path).map_err(|source| ExecError::InitBinary {
        path: path.clone(),
        source,
    })
}

/// The init's binary copied into a memfd and sealed against every change: what stays of
/// lade inside a container runs from it, never from the file on the host.
fn sealed_copy(init: &File) -> Result<OwnedFd> {
    use nix::fcntl::{fcntl, FcntlArg, SealFlag};
    use nix::sys::memfd::{memfd_create, MFdFlags};
    let fd = memfd_create(
        INIT_BINARY,
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )
    .map_err(sys_err("memfd_create"))?;
    let mut copy = File::from(fd);
    // By offset: the file is shared by every sandbox this process starts, perhaps at
    // once (a build's parallel RUN steps), so its own position is nobody's.
    let mut buffer = vec![0u8; 1 << 16];
    let mut offset = 0u64;
    loop {
        let read = match std::os::unix::fs::FileExt::read_at(init, &mut buffer, offset) {
            Ok(0) => break,
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err("reading lade-init's binary")(e)),
        };
        copy.write_all(&buffer[..read])
            .map_err(io_err("copying lade-init's binary to a memfd"))?;
        offset += read as u64;
    }
    let seals = SealFlag::F_SEAL_SEAL
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_WRITE;
    fcntl(&copy, FcntlArg::F_ADD_SEALS(seals)).map_err(sys_err("sealing the memfd"))?;
    Ok(OwnedFd::from(copy))
}

/// Receives one descriptor sent with SCM_RIGHTS, or `None` when the peer closed first.
fn receive_fd(socket: &OwnedFd) -> Option<OwnedFd> {
    let mut data = [0u8; 1];
    let mut iov = [std::io::IoSliceMut::new(&mut data)];
    let mut space = nix::cmsg_space!(RawFd);
    let message = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .ok()?;
    for cmsg in message.cmsgs().ok()? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just gave us this descriptor; nothing else owns it.
                return Some(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    None
}

/// Runs `spec` to completion.
pub fn run(spec: &Spec, io: Io<'_>) -> Result<Exit> {
    if io.cancel.is_none() {
        install_forwarder();
    }
    let cgroup = match &spec.cgroup {
        Some(name) if spec.pausable || !spec.limits.is_empty() => Some(Cgroup::create(
            &CgroupLayout::for_containers(),
            name,
            &spec.limits,
            spec.pausable,
        )?),
        _ => None,
    };
    // fuse-overlayfs mounts made here live until the container has stopped.
    let (started, fuse_mounts) = super::mounts::premount_fuse(spec)
        .map_err(io_err("mounting the root file system with fuse-overlayfs"))?;
    let result = run_in(&Launch::Create(Box::new(started)), io, cgroup.as_ref());
    drop(fuse_mounts);
    if let (Some(cgroup), Some(name)) = (cgroup, &spec.cgroup) {
        cgroup.remove();
        // What `update` made while it ran (another controller's cgroup) goes too.
        Cgroup::existing(name).remove();
    }
    result
}

/// Runs a process in a running container (`lade exec`): in its namespaces and its
/// cgroup `lade/<cgroup>`, with Docker's capabilities, `no_new_privs` and seccomp
/// filter. Returns how the process ended.
pub fn enter(spec: &EnterSpec, cgroup: &str, io: Io<'_>) -> Result<Exit> {
    if io.cancel.is_none() {
        install_forwarder();
    }
    run_in(
        &Launch::Enter(Box::new(spec.clone())),
        io,
        Some(&Cgroup::existing(cgroup)),
    )
}

fn run_in(launch: &Launch, io: Io<'_>, cgroup: Option<&Cgroup>) -> Result<Exit> {
    let (spec_read, spec_write) = pipe2(OFlag::O_CLOEXEC).map_err(sys_err("pipe"))?;
    let (status_read, status_write) = pipe2(OFlag::O_CLOEXEC).map_err(sys_err("pipe"))?;

    // The child's stdio. With a terminal the init makes the pty inside the container's
    // own devpts (so it is a terminal there too) and sends us its main side over a
    // socket; until then the child's stdio is /dev/null.
    let dev_null = File::open("/dev/null").map_err(io_err("/dev/null"))?;
    let mut output_read: Option<OwnedFd> = None;
    let mut error_read: Option<OwnedFd> = None;
    let mut keep_for_child: Vec<OwnedFd> = Vec::new();
    let mut console: Option<OwnedFd> = None;
    let mut console_fd: RawFd = -1;
    let (stdin_fd, stdout_fd, stderr_fd): (RawFd, RawFd, RawFd) = if io.terminal {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(sys_err("socketpair"))?;
        console_fd = theirs.as_raw_fd();
        console = Some(ours);
        keep_for_child.push(theirs);
        let null = dev_null.as_raw_fd();
        (null, null, null)
    } else {
        let stdin = if io.stdin { 0 } else { dev_null.as_raw_fd() };
        match &io.output {
            Output::Inherit => (stdin, 1, 2),
            Output::Lines(_) => {
                let (read, write) = pipe2(OFlag::O_CLOEXEC).map_err(sys_err("pipe"))?;
                let fd = write.as_raw_fd();
                output_read = Some(read);
                keep_for_child.push(write);
                (stdin, fd, fd)
            }
            Output::Streams(_) => {
                let (out_read, out_write) = pipe2(OFlag::O_CLOEXEC).map_err(sys_err("pipe"))?;
                let (err_read, err_write) = pipe2(OFlag::O_CLOEXEC).map_err(sys_err("pipe"))?;
                let fds = (stdin, out_write.as_raw_fd(), err_write.as_raw_fd());
                output_read = Some(out_read);
                error_read = Some(err_read);
                keep_for_child.push(out_write);
                keep_for_child.push(err_write);
                fds
            }
        }
    };

    // Under --init the init stays in the container as PID 1: it runs from a sealed
    // in-memory copy, so that the container cannot reach the host's file through
    // /proc/1/exe (CVE-2019-5736). Otherwise the init replaces itself with the
    // container's process before anything of the container runs beside it.
    // The process entering for `exec` is the init's binary until it execs, inside the
    // container's PID namespace: it too runs from the sealed copy.
    let stays_inside = match launch {
        Launch::Create(spec) => spec.init,
        Launch::Enter(_) => true,
    };
    let init_binary = init_binary()?;
    let sealed_init = if stays_inside {
        Some(sealed_copy(init_binary)?)
    } else {
        None
    };
    let init_exe_fd: RawFd = sealed_init
        .as_ref()
        .map_or(init_binary.as_raw_fd(), |fd| fd.as_raw_fd());
    // Everything the child needs is built now: between clone and exec it may only make
    // async-signal-safe calls.
    let empty_path = CString::default();
    let arg0 = CString::new(INIT_BINARY).expect("no NUL");
    let argv: Vec<*const libc::c_char> = vec![arg0.as_ptr(), std::ptr::null()];
    let (spec_fd, status_fd) = (spec_read.as_raw_fd(), status_write.as_raw_fd());
    // The init's environment is its hand-off alone: it stays as PID 1 with `--init`
    // (and until its exec otherwise), where the container reads /proc/1/environ, and
    // lade's own environment (the caller's tokens, `build --secret env=` values, agent
    // sockets) is not the container's to see.
    let env: Vec<CString> =
        vec![
            CString::new(format!("{INIT_ENV}={spec_fd}:{status_fd}:{console_fd}")).expect("no NUL"),
        ];
    let envp: Vec<*const libc::c_char> = env
        .iter()
        .map(|e| e.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let failure = b"125 cannot start the container init\n";

    let flags = match launch {
        Launch::Create(spec) => {
            let mut flags = CloneFlags::CLONE_NEWNS;
            let sandbox = &spec.sandbox;
            // A namespace to join is joined by the init, from the host's.
            if sandbox.pid == Share::Private {
                flags |= CloneFlags::CLONE_NEWPID;
            }
            if sandbox.ipc == Share::Private {
                flags |= CloneFlags::CLONE_NEWIPC;
            }
            if !sandbox.uts_host {
                flags |= CloneFlags::CLONE_NEWUTS;
            }
            if spec.network == Network::Isolated {
                flags |= CloneFlags::CLONE_NEWNET;
            }
            flags
        }
        // The init joins the container's namespaces itself.
        Launch::Enter(_) => CloneFlags::empty(),
    };
    let mut stack = vec![0u8; 64 * 1024];
    let child = Box::new(|| -> isize {
        // SAFETY: only async-signal-safe calls (prctl, dup2, fcntl, execve(at), write, _exit)
        // on descriptors and strings prepared before the clone.
        unsafe {
            // The sandbox dies with the thread that waits for it, even on a SIGKILL of lade.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            for (fd, target) in [(stdin_fd, 0), (stdout_fd, 1), (stderr_fd, 2)] {
                if fd != target {
                    libc::dup2(fd, target);
                }
            }
            libc::fcntl(spec_fd, libc::F_SETFD, 0);
            libc::fcntl(status_fd, libc::F_SETFD, 0);
            if console_fd >= 0 {
                libc::fcntl(console_fd, libc::F_SETFD, 0);
            }
            libc::syscall(
                libc::SYS_execveat,
                init_exe_fd,
                empty_path.as_ptr(),
                argv.as_ptr(),
                envp.as_ptr(),
                libc::AT_EMPTY_PATH,
            );
            libc::write(status_fd, failure.as_ptr().cast(), failure.len());
            libc::_exit(125)
        }
    });
    // The child shares our memory until its exec (CLONE_VM), as posix_spawn's does, and
    // this thread waits for that exec (CLONE_VFORK): no copy of lade's page tables for
    // a child that only execs, and none of the copy-on-write faults lade's threads would
    // then take on every page they write. Every signal stays blocked in this thread
    // until the child has exec'd, so no handler of lade's runs in the child, on memory
    // it shares with us; the child keeps the mask through its exec, and the init
    // unblocks the signals once their handlers are gone.
    let mut blocked = nix::sys::signal::SigSet::empty();
    nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::all()),
        Some(&mut blocked),
    )
    .map_err(sys_err("blocking signals for the clone"))?;
    let flags = flags | CloneFlags::CLONE_VM | CloneFlags::CLONE_VFORK;
    // SAFETY: the child runs the closure above on its own stack and only execs or exits,
    // with every signal blocked; this thread is suspended until then, so the memory the
    // child reads (the closure's strings and descriptors) stays as it was. SIGCHLD makes
    // it a normal child we can wait for.
    let cloned = unsafe { nix::sched::clone(child, &mut stack, flags, Some(libc::SIGCHLD)) };
    let _ = nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&blocked),
        None,
    );
    let pid = cloned.map_err(sys_err(
        "cannot create the sandbox's namespaces (lade needs root)",
    ))?;
    drop((
        spec_read,
        status_write,
        keep_for_child,
        dev_null,
        sealed_init,
    ));

    let started = (|| -> Result<()> {
        match (cgroup, launch) {
            (Some(cgroup), Launch::Enter(_)) => cgroup.join(pid.as_raw())?,
            (Some(cgroup), _) => cgroup.add(pid.as_raw())?,
            (None, _) => {}
        }
        let json = serde_json::to_vec(launch).map_err(ExecError::Spec)?;
        let mut pipe = File::from(spec_write);
        pipe.write_all(&json)
            .map_err(io_err("sending the spec to the init"))?;
        Ok(())
    })();
    if let Err(err) = started {
        let _ = kill(pid, Signal::SIGKILL);
        let _ = waitpid(pid, None);
        return Err(err);
    }
    // The pty's main side, once the init has made it.
    let mut on_terminal = io.on_terminal;
    let pty_master: Option<OwnedFd> = console.and_then(|socket| {
        let master = receive_fd(&socket)?;
        pty::resize(master.as_fd());
        // Before the process starts too: whoever is given the terminal may size it.
        if let (Some(on_terminal), Ok(handle)) = (on_terminal.take(), master.try_clone()) {
            on_terminal(File::from(handle));
        }
        // The init waits for this byte before it starts the process, so that the
        // process finds the terminal's size set (`stty size` read 0 rows before).
        let _ = nix::unistd::write(&socket, b"s");
        Some(master)
    });
    match io.cancel {
        Some(cancel) => cancel.register(pid),
        None => {
            let mut forwarded = FORWARDED.lock().unwrap_or_else(|e| e.into_inner());
            forwarded.pids.push(pid.as_raw());
            if let Some(master) = &pty_master {
                forwarded.pty = Some(master.as_raw_fd());
            }
        }
    }
    let process_id = ProcessId::of(pid.as_raw());

    let mut output_threads = Vec::new();
    // With a terminal, a stream sink gets the pty's output as it comes.
    let mut terminal_sink: Option<StreamSink> = None;
    match (io.output, output_read, error_read) {
        (Output::Streams(callback), None, None) if io.terminal => terminal_sink = Some(callback),
        (Output::Lines(mut callback), Some(read), _) => {
            output_threads.push(std::thread::spawn(move || {
                let reader = BufReader::new(File::from(read));
                for line in reader.split(b'\n').map_while(|l| l.ok()) {
                    callback(String::from_utf8_lossy(&line).trim_end_matches('\r'));
                }
            }))
        }
        (Output::Streams(callback), Some(out), Some(err)) => {
            let callback = std::sync::Arc::new(Mutex::new(callback));
            for (fd, stream) in [(out, Stream::Stdout), (err, Stream::Stderr)] {
                let callback = callback.clone();
                output_threads.push(std::thread::spawn(move || {
                    let mut reader = BufReader::new(File::from(fd));
                    let mut line = Vec::new();
                    while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                        let mut callback = callback.lock().unwrap_or_else(|e| e.into_inner());
                        callback(stream, &line);
                        line.clear();
                    }
                }));
            }
        }
        _ => {}
    }
    let raw_mode = (io.terminal && io.stdin && std::io::IsTerminal::is_terminal(&std::io::stdin()))
        .then(pty::RawMode::enter);
    let relay_thread = pty_master.map(|master| {
        let forward = io.stdin;
        std::thread::spawn(move || pty::relay(master, forward, terminal_sink))
    });

    // The init reports a setup failure here; success closes the pipe at exec.
    let mut message = String::new();
    let _ = File::from(status_read).read_to_string(&mut message);
    if let (Some(started), Some(id), true) = (io.started, process_id, message.is_empty()) {
        started(id);
    }
    let status = loop {
        match waitpid(pid, None) {
            Err(nix::Error::EINTR) => continue,
            other => break other,
        }
    };
    match io.cancel {
        Some(cancel) => cancel.unregister(pid),
        None => {
            let mut forwarded = FORWARDED.lock().unwrap_or_else(|e| e.into_inner());
            forwarded.pids.retain(|p| *p != pid.as_raw());
            if relay_thread.is_some() {
                forwarded.pty = None;
            }
        }
    }
    if let Some(thread) = relay_thread {
        let _ = thread.join();
    }
    drop(raw_mode);
    for thread in output_threads {
        let _ = thread.join();
    }
    let code = match status.map_err(sys_err("waiting for the sandbox"))? {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, signal, _) => 128 + signal as i32,
        other => return Err(ExecError::WaitStatus(format!("{other:?}"))),
    };
    let message = message.trim();
    if !message.is_empty() {
        let (code, text) = match message.split_once(' ') {
            Some((c, t)) => (c.parse().unwrap_or(125), t.to_string()),
            None => (125, message.to_string()),
        };
        return Err(ExecError::Setup {
            code,
            message: text,
        });
    }
    Ok(Exit { code })
}
