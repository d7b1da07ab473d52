//! Rootless mode: an ordinary user's lade runs as "root" in a user namespace of its own,
//! as podman does. The user's id is 0 inside, and the subordinate ranges of
//! `/etc/subuid` and `/etc/subgid` give ids 1 and up, mapped by the setuid helpers
//! `newuidmap`/`newgidmap` (Debian's `uidmap`).
//!
//! One namespace serves every command of a user: the first command forks a small
//! "pause" process that makes the user and mount namespaces and then only waits;
//! every command (this one too) joins it with `setns` before it starts any thread.
//! Containers started by one command can so be reached by the next (`exec` joins their
//! namespaces, `stop` signals processes that run as other ids), as with podman's pause
//! process. Its pid is kept in the runtime directory (`$XDG_RUNTIME_DIR/lade`).

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::sched::{setns, CloneFlags};

/// What the process's first line of `/proc/self/uid_map` (or `gid_map`) says about id 0.
fn outside_id_of_root(map: &str) -> Option<u32> {
    for line in map.lines() {
        let mut fields = line.split_whitespace().map(str::parse::<u64>);
        if let (Some(Ok(inside)), Some(Ok(outside)), Some(Ok(count))) =
            (fields.next(), fields.next(), fields.next())
        {
            if inside == 0 && count >= 1 {
                return u32::try_from(outside).ok();
            }
        }
    }
    None
}

/// The user's own ids outside when this process runs in a user namespace where id 0 is
/// an ordinary user (lade's rootless namespace, or one like it); `None` for root in the
/// initial namespace.
pub fn outside_ids() -> Option<(u32, u32)> {
    let uid_map = std::fs::read_to_string("/proc/self/uid_map").ok()?;
    let gid_map = std::fs::read_to_string("/proc/self/gid_map").ok()?;
    let uid = outside_id_of_root(&uid_map)?;
    let gid = outside_id_of_root(&gid_map)?;
    (uid != 0).then_some((uid, gid))
}

/// Whether lade runs for an ordinary user: not yet in its namespace (a non-zero
/// effective uid), or already in it.
pub fn is_rootless() -> bool {
    !nix::unistd::geteuid().is_root() || outside_ids().is_some()
}

/// The user's id outside (the real one before entering the namespace, the mapped one
/// after).
fn user_id() -> u32 {
    match outside_ids() {
        Some((uid, _)) => uid,
        None => nix::unistd::getuid().as_raw(),
    }
}

/// Where lade keeps files that live as long as the machine runs (the pause process's
/// pid, network namespaces, locks): `/run/lade` for root; for a user
/// `$XDG_RUNTIME_DIR/lade`, else `/tmp/lade-run-UID` (mode 0700), as podman does.
pub fn runtime_dir() -> PathBuf {
    if !is_rootless() {
        return PathBuf::from("/run/lade");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("lade"),
        _ => PathBuf::from(format!("/tmp/lade-run-{}", user_id())),
    }
}

/// A user's subordinate range from `/etc/subuid` or `/etc/subgid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub start: u32,
    pub count: u32,
}

/// The first range of `text` (the subuid/subgid format, `name:start:count` lines) for
/// the user named `name` or with the id `id`.
pub fn subordinate_range(text: &str, name: &str, id: u32) -> Option<IdRange> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .find_map(|line| {
            let mut fields = line.split(':');
            let owner = fields.next()?;
            let start = fields.next()?.trim().parse().ok()?;
            let count: u32 = fields.next()?.trim().parse().ok()?;
            let owner_matches = owner == name || owner.parse::<u32>().ok() == Some(id);
            (owner_matches && count > 0).then_some(IdRange { start, count })
        })
}

/// How the namespace maps ids: the user's to 0, the subordinate ranges (when the user
/// has them) from 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdMapping {
    pub uid: u32,
    pub gid: u32,
    pub uids: Option<IdRange>,
    pub gids: Option<IdRange>,
}

impl IdMapping {
    /// The mapping for the user running lade, from `/etc/subuid` and `/etc/subgid`.
    pub fn for_current_user() -> IdMapping {
        let uid = nix::unistd::getuid().as_raw();
        let gid = nix::unistd::getgid().as_raw();
        let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()
            .map(|user| user.name)
            .unwrap_or_default();
        let read = |path| std::fs::read_to_string(path).unwrap_or_default();
        IdMapping {
            uid,
            gid,
            uids: subordinate_range(&read("/etc/subuid"), &name, uid),
            gids: subordinate_range(&read("/etc/subgid"), &name, uid),
        }
    }

    /// Whether other ids than the user's own are mapped.
    pub fn has_ranges(&self) -> bool {
        self.uids.is_some() && self.gids.is_some()
    }
}

/// One line of a uid or gid map: `(inside, outside, count)`.
pub type MapLine = (u32, u32, u32);

/// The namespace as this process sees it, for `lade info`: `(inside, outside, count)`
/// lines of the uid and gid maps.
pub fn current_mapping() -> (Vec<MapLine>, Vec<MapLine>) {
    let parse = |path| {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                let mut fields = line.split_whitespace().map(str::parse::<u64>);
                match (fields.next(), fields.next(), fields.next()) {
                    (Some(Ok(a)), Some(Ok(b)), Some(Ok(c))) => Some((
                        u32::try_from(a).ok()?,
                        u32::try_from(b).ok()?,
                        u32::try_from(c).unwrap_or(u32::MAX),
                    )),
                    _ => None,
                }
            })
            .collect()
    };
    (parse("/proc/self/uid_map"), parse("/proc/self/gid_map"))
}

/// Why the rootless namespace could not be made or joined; each says how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum RootlessError {
    #[error("{tool} is not installed: rootless lade maps the user's subordinate ids with it (install Debian's `uidmap` package: apt-get install uidmap)")]
    MissingTool { tool: &'static str },
    #[error("{tool} failed to map ids for the user namespace: {detail} (check the user's lines in /etc/subuid and /etc/subgid)")]
    MapFailed { tool: &'static str, detail: String },
    #[error("the runtime directory {path} {problem} (set XDG_RUNTIME_DIR to a directory of your own, as a login session does)")]
    RuntimeDir { path: PathBuf, problem: String },
    #[error("cannot create a user namespace: {0} (is kernel.unprivileged_userns_clone or user.max_user_namespaces set to 0?)")]
    Unshare(io::Error),
    #[error("cannot join lade's user namespace (process {pid}): {source}")]
    Join { pid: i32, source: io::Error },
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
}

fn io_error(context: impl Into<String>) -> impl FnOnce(io::Error) -> RootlessError {
    let context = context.into();
    move |source| RootlessError::Io { context, source }
}

/// What [`enter`] did, for a note to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entered {
    /// Joined the namespace an earlier command made.
    Joined,
    /// Made the namespace (and its pause process) now.
    Created { single_id: bool },
}

/// The directory runtime files go in, made private (0700) and checked to be the user's.
fn private_runtime_dir(dir: &Path) -> Result<(), RootlessError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    if let Some(parent) = dir.parent() {
        if !parent.is_dir() {
            return Err(RootlessError::RuntimeDir {
                path: dir.to_path_buf(),
                problem: format!("cannot be made: {} does not exist", parent.display()),
            });
        }
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(RootlessError::RuntimeDir {
                path: dir.to_path_buf(),
                problem: format!("cannot be made: {e}"),
            })
        }
    }
    let meta = std::fs::symlink_metadata(dir).map_err(io_error(dir.display().to_string()))?;
    if !meta.is_dir() || meta.uid() != nix::unistd::getuid().as_raw() {
        return Err(RootlessError::RuntimeDir {
            path: dir.to_path_buf(),
            problem: format!("is not a directory of uid {}", nix::unistd::getuid()),
        });
    }
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io_error(dir.display().to_string()))?;
    }
    Ok(())
}

/// The name the pause process gives itself, by which a pid file's process is known to
/// be one (pids are reused).
const PAUSE_NAME: &str = "lade-pause";

/// The pause process named in `pid_file`, when it still runs for this user.
fn running_pause(pid_file: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    is_pause(pid).then_some(pid)
}

/// Whether process `pid` is this user's live pause process.
fn is_pause(pid: i32) -> bool {
    is_pause_process(pid).is_some()
}

fn is_pause_process(pid: i32) -> Option<()> {
    use std::os::unix::fs::MetadataExt;
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let comm = std::fs::read_to_string(proc_dir.join("comm")).ok()?;
    let owner = std::fs::metadata(&proc_dir).ok()?.uid();
    // A pause process killed but not yet reaped keeps its name and has no namespaces;
    // one that has begun to exit (the kernel's PF_EXITING among its flags, the ninth
    // field) is losing them.
    const PF_EXITING: u64 = 0x4;
    let stat = std::fs::read_to_string(proc_dir.join("stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let state = *fields.first()?;
    let flags: u64 = fields.get(6)?.parse().ok()?;
    let alive = state != "Z" && state != "X" && flags & PF_EXITING == 0;
    (alive && comm.trim() == PAUSE_NAME && owner == nix::unistd::getuid().as_raw()).then_some(())
}

/// Moves this process into the user's rootless namespace (user and mount), making it
/// (and its pause process) when no earlier command did. Must run before any thread
/// starts: the kernel refuses `setns` into a user namespace from a threaded process.
pub fn enter() -> Result<Entered, RootlessError> {
    let runtime = runtime_dir();
    private_runtime_dir(&runtime)?;
    let lock_path = runtime.join("pause.lock");
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io_error(lock_path.display().to_string()))?;
    lock.lock()
        .map_err(io_error(format!("locking {}", lock_path.display())))?;
    let pid_file = runtime.join("pause.pid");
    let (pid, entered, known) = match running_pause(&pid_file) {
        Some(pid) => (pid, Entered::Joined, Known::ByItsPid),
        None => {
            let namespaces_file = runtime.join("pause.ns");
            let (pid, entered) = match surviving_namespaces(&namespaces_file) {
                // Containers outlived the pause process: a new one holds their
                // namespaces, as podman's does, so that commands reach them still.
                Some((user, mount)) => (adopt_namespaces(&user, mount.as_ref())?, Entered::Joined),
                None => {
                    let mapping = IdMapping::for_current_user();
                    let pid = make_pause_process(&mapping)?;
                    let single_id = !mapping.has_ranges();
                    (pid, Entered::Created { single_id })
                }
            };
            let staged = runtime.join("pause.pid.new");
            let recorded = std::fs::write(&staged, format!("{pid}\n"))
                .and_then(|()| std::fs::rename(&staged, &pid_file))
                .map_err(io_error(pid_file.display().to_string()))
                .and_then(|()| record_namespaces(pid, &namespaces_file));
            if let Err(err) = recorded {
                // Unrecorded, no later command would find it: it goes now.
                let pause = nix::unistd::Pid::from_raw(pid);
                let _ = nix::sys::signal::kill(pause, nix::sys::signal::Signal::SIGKILL);
                let _ = nix::sys::wait::waitpid(pause, None);
                let _ = std::fs::remove_file(&pid_file);
                return Err(err);
            }
            // Our child, not yet reaped: its pid is its own until we exit.
            (pid, entered, Known::OurChild)
        }
    };
    join(pid, known)?;
    drop(lock);
    Ok(entered)
}

/// Stops the pause process (`system migrate`) and forgets its namespaces, so that the
/// next command makes new ones rather than join what is left of them. Returns its pid
/// when one ran.
pub fn stop_pause() -> Result<Option<i32>, RootlessError> {
    let runtime = runtime_dir();
    let pid_file = runtime.join("pause.pid");
    let pid = running_pause(&pid_file);
    if let Some(pid) = pid {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .map_err(|e| io_error(format!("stopping the pause process {pid}"))(e.into()))?;
    }
    for file in [pid_file, runtime.join("pause.ns")] {
        match std::fs::remove_file(&file) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(io_error(file.display().to_string())(e))
            }
            _ => {}
        }
    }
    Ok(pid)
}

/// The namespaces of process `pid` as the kernel names them (`user:[4026532001]`).
fn namespace_names(pid: i32) -> Option<(String, String)> {
    let name = |kind: &str| {
        std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
            .ok()
            .map(|link| link.to_string_lossy().into_owned())
    };
    Some((name("user")?, name("mnt")?))
}

/// Writes which user and mount namespaces the pause process `pid` holds, by which a
/// later command finds processes still in them when the pause process is gone.
fn record_namespaces(pid: i32, file: &Path) -> Result<(), RootlessError> {
    let Some((user, mount)) = namespace_names(pid) else {
        return Err(RootlessError::Join {
            pid,
            source: io::Error::other("its namespaces cannot be read"),
        });
    };
    let staged = file.with_extension("ns.new");
    let identity = namespace_identity(pid).unwrap_or_default();
    std::fs::write(&staged, format!("{user}\n{mount}\n{identity}\n"))
        .and_then(|()| std::fs::rename(&staged, file))
        .map_err(io_error(file.display().to_string()))
}

/// What tells a user namespace from another that later got the same inode number (the
/// kernel hands out freed ones again): the boot, and the id maps of process `pid`'s
/// namespace as this process sees them, on one line.
fn namespace_identity(pid: i32) -> Option<String> {
    let read = |path: String| std::fs::read_to_string(path).ok();
    let boot = read("/proc/sys/kernel/random/boot_id".into())?;
    let uid_map = read(format!("/proc/{pid}/uid_map"))?;
    let gid_map = read(format!("/proc/{pid}/gid_map"))?;
    let words = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
    Some(format!(
        "boot {} uids {} gids {}",
        boot.trim(),
        words(&uid_map),
        words(&gid_map)
    ))
}

/// The user namespace a killed pause process held, when a process of this user (a
/// container's monitor, its processes, pasta) still runs in it: opened from that
/// process, with the mount namespace too when one of them is in the pause's.
fn surviving_namespaces(file: &Path) -> Option<(OwnedFd, Option<OwnedFd>)> {
    use std::os::unix::fs::MetadataExt;
    let text = std::fs::read_to_string(file).ok()?;
    let mut lines = text.lines();
    let (user, mount) = (lines.next()?, lines.next()?);
    // Files of an older lade have no identity line; those are taken on the inode alone.
    let identity = lines.next().filter(|line| !line.is_empty());
    let uid = nix::unistd::getuid().as_raw();
    let mut in_user = None;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if entry.metadata().map(|m| m.uid()).ok() != Some(uid) {
            continue;
        }
        let Some((its_user, its_mount)) = namespace_names(pid) else {
            continue;
        };
        if its_user != user
            || identity.is_some_and(|known| namespace_identity(pid).as_deref() != Some(known))
        {
            continue;
        }
        let open = |kind: &str| {
            File::open(format!("/proc/{pid}/ns/{kind}"))
                .ok()
                .map(OwnedFd::from)
        };
        if its_mount == mount {
            if let (Some(user), Some(mount)) = (open("user"), open("mnt")) {
                return Some((user, Some(mount)));
            }
        } else if in_user.is_none() {
            in_user = open("user");
        }
    }
    in_user.map(|user| (user, None))
}

/// Forks a pause process that joins the user namespace `user` (and the mount namespace
/// `mount`, else a new one) and then only waits. Returns its pid.
fn adopt_namespaces(user: &OwnedFd, mount: Option<&OwnedFd>) -> Result<i32, RootlessError> {
    let (ready_read, ready_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| io_error("making a pipe")(e.into()))?;
    let mount_fd = mount.map_or(-1, |fd| fd.as_raw_fd());
    // SAFETY: lade has no other thread yet (the caller's contract); the child only makes
    // async-signal-safe system calls on values prepared before the fork and never
    // returns.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(io_error("forking the pause process")(
            io::Error::last_os_error(),
        ));
    }
    if child == 0 {
        // SAFETY: raw system calls only, on descriptors made before the fork.
        unsafe {
            let ready = ready_write.as_raw_fd();
            let joined = libc::setns(user.as_raw_fd(), libc::CLONE_NEWUSER) == 0
                && if mount_fd >= 0 {
                    libc::setns(mount_fd, libc::CLONE_NEWNS) == 0
                } else {
                    libc::unshare(libc::CLONE_NEWNS) == 0
                };
            if !joined {
                let errno = *libc::__errno_location();
                let byte = u8::try_from(errno).unwrap_or(u8::MAX);
                libc::write(ready, [b'e', byte].as_ptr().cast(), 2);
                libc::_exit(1);
            }
            libc::write(ready, b"r".as_ptr().cast(), 1);
            pause_forever();
        }
    }
    drop(ready_write);
    let mut answer = [0u8; 2];
    let read = File::from(ready_read).read(&mut answer).unwrap_or(0);
    if read >= 1 && answer[0] == b'r' {
        return Ok(child);
    }
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child), None);
    let source = if read == 2 && answer[0] == b'e' {
        io::Error::from_raw_os_error(i32::from(answer[1]))
    } else {
        io::Error::other("the process joining it ended")
    };
    Err(RootlessError::Join { pid: child, source })
}

/// The pause process's life once its namespaces are set: named, detached from the
/// command's session and descriptors, waiting for signals.
///
/// # Safety
/// Only in a forked child: it makes async-signal-safe system calls and never returns.
unsafe fn pause_forever() -> ! {
    // SAFETY: raw system calls on constant strings (the caller's contract).
    unsafe {
        libc::setsid();
        libc::prctl(libc::PR_SET_NAME, c"lade-pause".as_ptr());
        libc::chdir(c"/".as_ptr());
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        for fd in 0..3 {
            libc::dup2(null, fd);
        }
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
        loop {
            libc::pause();
        }
    }
}

/// How the process to join is known to be the pause process.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Known {
    /// By what its pid shows (name, owner, state): checked again once it is held.
    ByItsPid,
    /// This process forked it (it may not have named itself yet).
    OurChild,
}

/// Joins the user and mount namespaces of the pause process `pid`, keeping the working
/// directory (joining a mount namespace moves it to its root).
fn join(pid: i32, known: Known) -> Result<(), RootlessError> {
    let join_error = |source| RootlessError::Join { pid, source };
    let cwd = std::env::current_dir().ok();
    // Held open, so that a working directory the namespace cannot reach by its path
    // is still where relative paths start.
    let cwd_fd = nix::fcntl::open(
        ".",
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ok();
    // A pidfd names the process itself, not its number: checked to be the pause
    // process once it is held, the namespaces are that process's (were it gone and its
    // number reused meanwhile, setns fails rather than join another's), both at once.
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if pidfd < 0 {
        return Err(join_error(io::Error::last_os_error()));
    }
    // SAFETY: the descriptor was just returned to us and is owned here alone.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as i32) };
    if known == Known::ByItsPid && !is_pause(pid) {
        return Err(join_error(io::Error::new(
            io::ErrorKind::NotFound,
            "the pause process ended",
        )));
    }
    setns(&pidfd, CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS)
        .map_err(|e| join_error(e.into()))?;
    let by_path = cwd.is_some_and(|cwd| std::env::set_current_dir(cwd).is_ok());
    if !by_path {
        if let Some(fd) = cwd_fd {
            let _ = nix::unistd::fchdir(&fd);
        }
    }
    Ok(())
}

/// Forks the pause process: it makes a user and a mount namespace, waits until this
/// process has mapped its ids, and then only waits for signals, holding the namespaces
/// for later commands. Returns its pid.
fn make_pause_process(mapping: &IdMapping) -> Result<i32, RootlessError> {
    let pipe = || -> Result<(OwnedFd, OwnedFd), RootlessError> {
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| io_error("making a pipe")(e.into()))
    };
    let (ready_read, ready_write) = pipe()?;
    let (go_read, go_write) = pipe()?;
    let parents_ends = [ready_read.as_raw_fd(), go_write.as_raw_fd()];
    // SAFETY: lade has no other thread yet (the caller's contract); the child only makes
    // async-signal-safe system calls on values prepared before the fork and never
    // returns.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(io_error("forking the pause process")(
            io::Error::last_os_error(),
        ));
    }
    if child == 0 {
        // SAFETY: raw system calls only, on descriptors and strings made before the fork.
        unsafe {
            // The parent's ends closed here, so that the parent's death (before it
            // says go) is an end of file, not a wait without end.
            for fd in parents_ends {
                libc::close(fd);
            }
            let ready = ready_write.as_raw_fd();
            if libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) != 0 {
                let errno = *libc::__errno_location();
                let byte = u8::try_from(errno).unwrap_or(u8::MAX);
                libc::write(ready, [b'e', byte].as_ptr().cast(), 2);
                libc::_exit(1);
            }
            libc::write(ready, b"r".as_ptr().cast(), 1);
            let mut go = 0u8;
            if libc::read(go_read.as_raw_fd(), (&raw mut go).cast(), 1) != 1 || go != b'g' {
                libc::_exit(1);
            }
            pause_forever();
        }
    }
    drop((ready_write, go_read));
    let child_pid = nix::unistd::Pid::from_raw(child);
    let fail = |err: RootlessError| {
        let _ = nix::sys::signal::kill(child_pid, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(child_pid, None);
        err
    };
    let mut answer = [0u8; 2];
    let read = File::from(ready_read).read(&mut answer).unwrap_or(0);
    match (read, answer[0]) {
        (1.., b'r') => {}
        (2, b'e') => {
            let _ = nix::sys::wait::waitpid(child_pid, None);
            return Err(RootlessError::Unshare(io::Error::from_raw_os_error(
                i32::from(answer[1]),
            )));
        }
        _ => {
            return Err(fail(RootlessError::Unshare(io::Error::other(
                "the process making it ended",
            ))))
        }
    }
    if let Err(err) = write_maps(child, mapping) {
        return Err(fail(err));
    }
    if let Err(e) = File::from(go_write).write_all(b"g") {
        return Err(fail(io_error("starting the pause process")(e)));
    }
    Ok(child)
}

/// Maps ids for the namespace of process `pid`: through `newuidmap`/`newgidmap` with the
/// user's ranges, or, without ranges, the user's own id alone (which needs no helper).
fn write_maps(pid: i32, mapping: &IdMapping) -> Result<(), RootlessError> {
    match (mapping.uids, mapping.gids) {
        (Some(uids), Some(gids)) => {
            run_map_tool("newuidmap", pid, mapping.uid, uids)?;
            run_map_tool("newgidmap", pid, mapping.gid, gids)
        }
        _ => {
            let write = |file: &str, text: String| {
                std::fs::write(format!("/proc/{pid}/{file}"), text)
                    .map_err(io_error(format!("writing /proc/{pid}/{file}")))
            };
            write("uid_map", format!("0 {} 1\n", mapping.uid))?;
            write("setgroups", "deny".into())?;
            write("gid_map", format!("0 {} 1\n", mapping.gid))
        }
    }
}

fn run_map_tool(
    tool: &'static str,
    pid: i32,
    own: u32,
    range: IdRange,
) -> Result<(), RootlessError> {
    let output = Command::new(tool)
        .args([
            pid.to_string(),
            "0".into(),
            own.to_string(),
            "1".into(),
            "1".into(),
            range.start.to_string(),
            range.count.to_string(),
        ])
        .output()
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => RootlessError::MissingTool { tool },
            _ => io_error(format!("running {tool}"))(e),
        })?;
    if output.status.success() {
        return Ok(());
    }
    Err(RootlessError::MapFailed {
        tool,
        detail: String::from_utf8_lossy(&output.stderr).trim().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_range_of_the_user_by_name_or_id() {
        let text =
            "# ranges\nalice:100000:65536\nbob:165536:65536\n1003:300000:1000\nbob:500000:10\n";
        assert_eq!(
            subordinate_range(text, "bob", 1002),
            Some(IdRange {
                start: 165536,
                count: 65536
            })
        );
        assert_eq!(
            subordinate_range(text, "carol", 1003),
            Some(IdRange {
                start: 300000,
                count: 1000
            })
        );
        assert_eq!(subordinate_range(text, "dave", 1004), None);
        assert_eq!(subordinate_range("eve:1:0\neve:x:5\n", "eve", 1), None);
    }

    #[test]
    fn root_outside_is_read_from_the_map() {
        assert_eq!(
            outside_id_of_root("         0          0 4294967295\n"),
            Some(0)
        );
        assert_eq!(
            outside_id_of_root(
                "         0       1001          1\n         1     100000      65535\n"
            ),
            Some(1001)
        );
        assert_eq!(
            outside_id_of_root("      1000       1000          1\n"),
            None
        );
    }
}
