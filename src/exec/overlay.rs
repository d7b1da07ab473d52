//! The overlay storage driver, and the one place every overlay is mounted.
//!
//! Root mounts the kernel's overlay. Rootless lade mounts it too where the kernel lets
//! a user namespace do so (Linux 5.11 and later); elsewhere it runs `fuse-overlayfs`
//! (Debian's package of that name), as podman does. Which one works is probed once
//! (a throwaway read-only overlay in a mount namespace of a helper thread) and the
//! answer kept in the runtime directory, which lasts as long as the running kernel:
//! later commands read it rather than probe again. `LADE_STORAGE_DRIVER` (or the
//! global `--storage-driver`) forces the choice, as podman's `STORAGE_DRIVER` does.
//!
//! fuse-overlayfs runs as a process per mount, in the foreground, started by a thread
//! of lade that holds it for as long as it is mounted and killed with it
//! (`PR_SET_PDEATHSIG`): the command or monitor that runs a container mounts its root
//! before the container's init starts, and ends it once the container has stopped.
//! Nothing is left behind even when lade or a monitor is killed (a container whose
//! monitor is killed loses its root file system with it). It reads the snapshots as the kernel's overlay leaves them
//! (0/0 character devices, `user.overlay.opaque`); what it writes in an upper
//! directory differs for opaque directories, which `layers` turns into overlay's form.

use std::ffi::CString;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::mount::MsFlags;
use serde::{Deserialize, Serialize};

use super::sys::Sys;

/// What mounts an overlay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum OverlayDriver {
    /// The kernel's overlayfs.
    #[default]
    #[serde(rename = "overlay")]
    Kernel,
    /// `fuse-overlayfs`, a process per mount.
    #[serde(rename = "fuse-overlayfs")]
    Fuse,
}

impl OverlayDriver {
    /// The name `lade info` shows and `LADE_STORAGE_DRIVER` takes (podman's names).
    pub fn name(self) -> &'static str {
        match self {
            OverlayDriver::Kernel => "overlay",
            OverlayDriver::Fuse => FUSE_PROGRAM,
        }
    }

    pub fn parse(text: &str) -> Option<OverlayDriver> {
        match text {
            "overlay" | "overlay2" => Some(OverlayDriver::Kernel),
            "fuse-overlayfs" => Some(OverlayDriver::Fuse),
            _ => None,
        }
    }
}

/// The environment variable that forces the driver.
pub const DRIVER_ENV: &str = "LADE_STORAGE_DRIVER";
const FUSE_PROGRAM: &str = "fuse-overlayfs";
/// The file in the runtime directory that keeps the probe's answer.
const PROBE_FILE: &str = "overlay-probe";

/// Why no driver can be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    #[error("{origin} {name:?} names no storage driver: expected overlay or fuse-overlayfs")]
    Unknown { origin: String, name: String },
    #[error("the storage driver fuse-overlayfs is for rootless lade: root mounts the kernel's overlay (unset {origin})")]
    FuseForRoot { origin: String },
    #[error("fuse-overlayfs cannot be used ({origin}): {reason}")]
    FuseUnusable { origin: String, reason: String },
    #[error("rootless lade cannot mount the kernel's overlay in its user namespace ({refused}; that needs Linux 5.11 or later), and fuse-overlayfs cannot be used instead: {fuse} (apt-get install fuse-overlayfs fuse3)")]
    Neither { refused: String, fuse: String },
}

/// The driver named by the command line, before anything else looks.
static FORCED: OnceLock<String> = OnceLock::new();
/// The choice made in this process.
static CHOSEN: OnceLock<Result<OverlayDriver, DriverError>> = OnceLock::new();

/// Forces the driver for this process (`--storage-driver`), ahead of the environment;
/// the name is checked when the driver is first needed.
pub fn force(name: String) {
    let _ = FORCED.set(name);
}

/// What decides the driver, gathered so the decision itself is a pure function.
struct Inputs<'a> {
    rootless: bool,
    /// `(origin, name)` of a forced choice.
    forced: Option<(String, String)>,
    /// The kernel's overlay in the user namespace: `Ok` or why it was refused.
    kernel: &'a mut dyn FnMut() -> Result<(), String>,
    /// fuse-overlayfs: `Ok` when installed and `/dev/fuse` opens.
    fuse: &'a dyn Fn() -> Result<(), String>,
}

fn decide(inputs: Inputs<'_>) -> Result<OverlayDriver, DriverError> {
    if let Some((origin, name)) = inputs.forced {
        let driver = OverlayDriver::parse(&name).ok_or_else(|| DriverError::Unknown {
            origin: origin.clone(),
            name,
        })?;
        if driver == OverlayDriver::Fuse {
            if !inputs.rootless {
                return Err(DriverError::FuseForRoot { origin });
            }
            (inputs.fuse)().map_err(|reason| DriverError::FuseUnusable { origin, reason })?;
        }
        return Ok(driver);
    }
    if !inputs.rootless {
        return Ok(OverlayDriver::Kernel);
    }
    match (inputs.kernel)() {
        Ok(()) => Ok(OverlayDriver::Kernel),
        Err(refused) => match (inputs.fuse)() {
            Ok(()) => Ok(OverlayDriver::Fuse),
            Err(fuse) => Err(DriverError::Neither { refused, fuse }),
        },
    }
}

/// The driver this process mounts overlays with: forced, else the kernel's for root,
/// else what the (remembered) probe found. Decided once per process.
pub fn choose() -> Result<OverlayDriver, DriverError> {
    CHOSEN
        .get_or_init(|| {
            let forced = match FORCED.get() {
                Some(name) => Some((format!("--storage-driver (or {DRIVER_ENV})"), name.clone())),
                None => std::env::var(DRIVER_ENV)
                    .ok()
                    .filter(|v| !v.is_empty())
                    .map(|v| (DRIVER_ENV.to_string(), v)),
            };
            let mut kernel = remembered_kernel_probe;
            decide(Inputs {
                rootless: super::rootless::is_rootless(),
                forced,
                kernel: &mut kernel,
                fuse: &fuse_usable,
            })
        })
        .clone()
}

/// The driver for mounts that have none recorded (views of snapshots, which either
/// driver reads): the chosen one, the kernel's when no choice can be made (whose mount
/// then says what is wrong).
pub fn current() -> OverlayDriver {
    choose().unwrap_or_default()
}

/// The kernel probe's answer from the runtime directory, probing when none is kept for
/// this boot (a runtime directory on disk outlives the kernel that answered).
fn remembered_kernel_probe() -> Result<(), String> {
    let file = super::rootless::runtime_dir().join(PROBE_FILE);
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|id| format!("boot={}", id.trim()))
        .unwrap_or_default();
    if let Ok(text) = std::fs::read_to_string(&file) {
        let mut words = text.trim_end().splitn(3, ' ');
        let (answer, kept_boot, why) = (words.next(), words.next(), words.next());
        if !boot.is_empty() && kept_boot == Some(boot.as_str()) {
            match answer {
                Some("works") => return Ok(()),
                Some("refused") => return Err(why.unwrap_or_default().to_string()),
                _ => {}
            }
        }
    }
    // Without an answer of the kernel's there is nothing to keep: the next command asks
    // again.
    let answer = probe_kernel_overlay(&super::rootless::runtime_dir())?;
    let text = match &answer {
        Ok(()) => format!("works {boot}\n"),
        Err(why) => format!("refused {boot} {why}\n"),
    };
    let staged = file.with_extension("new");
    // Not kept is no failure: the next command probes again.
    let _ = std::fs::write(&staged, text).and_then(|()| std::fs::rename(&staged, &file));
    answer
}

/// Mounts a read-only overlay of two directories in a throwaway mount namespace (a
/// helper thread's own) under `dir`: what the kernel allows this user namespace (the
/// inner result), or why the probe could not be made (the outer error).
fn probe_kernel_overlay(dir: &Path) -> Result<Result<(), String>, String> {
    let scratch = tempfile::Builder::new()
        .prefix("overlay-probe")
        .tempdir_in(dir)
        .map_err(|e| {
            format!(
                "cannot make a directory to probe in under {}: {e}",
                dir.display()
            )
        })?;
    let base = scratch.path().to_path_buf();
    for sub in ["a", "b", "merged"] {
        std::fs::create_dir(base.join(sub)).map_err(|e| format!("{}: {e}", base.display()))?;
    }
    std::thread::spawn(move || -> Result<Result<(), String>, String> {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS | nix::sched::CloneFlags::CLONE_NEWNS)
            .map_err(|e| format!("cannot make a mount namespace: {e}"))?;
        let mut options = format!(
            "lowerdir={}:{}",
            base.join("a").display(),
            base.join("b").display()
        );
        if super::rootless::outside_ids().is_some() {
            options.push_str(",userxattr");
        }
        let mounted = nix::mount::mount(
            Some("overlay"),
            &base.join("merged"),
            Some("overlay"),
            MsFlags::MS_RDONLY,
            Some(options.as_str()),
        );
        if mounted.is_ok() {
            let _ = nix::mount::umount2(&base.join("merged"), nix::mount::MntFlags::MNT_DETACH);
        }
        Ok(mounted.map_err(|e| format!("mounting overlay was refused: {e}")))
    })
    .join()
    .unwrap_or_else(|_| Err("the probe's thread panicked".into()))
}

/// Whether fuse-overlayfs can run here: installed, and `/dev/fuse` open to this user.
fn fuse_usable() -> Result<(), String> {
    if find_program(FUSE_PROGRAM).is_none() {
        return Err(
            "fuse-overlayfs is not installed (apt-get install fuse-overlayfs fuse3)".into(),
        );
    }
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
        .map(drop)
        .map_err(|e| {
            format!("/dev/fuse cannot be opened: {e} (it must be open to users, mode 0666, as Debian's udev rules make it)")
        })
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// An overlay to mount: lower directories (topmost first; relative names are read from
/// the working directory of whoever mounts), an upper and work directory when
/// writable.
#[derive(Debug, Clone)]
pub struct OverlayLayers<'a> {
    pub lowers: &'a [String],
    pub upper: Option<(&'a Path, &'a Path)>,
    /// Kernel overlay only: `volatile` (fuse-overlayfs never syncs anyway).
    pub volatile: bool,
}

/// `lowerdir=`, and `upperdir=`/`workdir=` when writable: the same for both drivers.
fn directory_options(layers: &OverlayLayers<'_>) -> String {
    let mut options = format!("lowerdir={}", layers.lowers.join(":"));
    if let Some((upper, work)) = layers.upper {
        options.push_str(&format!(
            ",upperdir={},workdir={}",
            upper.display(),
            work.display()
        ));
    }
    options
}

/// The kernel's options for `layers`: no index, redirects or metacopy (layers must
/// stay plain trees). In a user namespace overlay keeps its marks in `user.overlay.*`
/// attributes (only the initial namespace's root may write `trusted.*`) and then
/// follows no redirects (`redirect_dir=off` is refused beside `userxattr`).
pub(crate) fn kernel_options(layers: &OverlayLayers<'_>) -> String {
    let mut options = directory_options(layers);
    if layers.upper.is_some() && layers.volatile {
        options.push_str(",volatile");
    }
    if super::rootless::outside_ids().is_some() {
        options.push_str(",userxattr,index=off,metacopy=off");
    } else {
        options.push_str(",index=off,redirect_dir=off,metacopy=off");
    }
    options
}

/// fuse-overlayfs's options for `layers`: its names are overlay's. `allow_other` lets
/// a container's other users in; the kernel checks permissions as on any file system.
pub(crate) fn fuse_options(layers: &OverlayLayers<'_>, readonly: bool) -> String {
    let mut options = directory_options(layers);
    options.push_str(",allow_other,default_permissions");
    if readonly {
        options.push_str(",ro");
    }
    options
}

/// The one way an overlay is mounted: at `target` with `flags` (`MS_RDONLY`,
/// `MS_NODEV`), by the kernel or by fuse-overlayfs, relative lower names read from the
/// caller's working directory. fuse-overlayfs's process is returned, held by a thread
/// of its own: it must run outside the mount namespace of a container whose root it
/// serves (`pivot_root` there would move its own root into its mount, where its every
/// path would wait on itself), so a container's init never mounts it.
pub(crate) fn mount(
    sys: &mut dyn Sys,
    driver: OverlayDriver,
    layers: &OverlayLayers<'_>,
    target: &Path,
    flags: MsFlags,
) -> io::Result<Option<FuseKeeper>> {
    match driver {
        OverlayDriver::Kernel => {
            let options = kernel_options(layers);
            check_length(&options)?;
            let mounted = sys.mount(
                Some(Path::new("overlay")),
                target,
                Some("overlay"),
                flags,
                Some(&options),
            );
            match mounted {
                // A kernel before 5.10 knows no `volatile`: the overlay goes without.
                Err(e) if layers.volatile && e.raw_os_error() == Some(libc::EINVAL) => {
                    let durable = OverlayLayers {
                        volatile: false,
                        ..layers.clone()
                    };
                    let options = kernel_options(&durable);
                    sys.mount(
                        Some(Path::new("overlay")),
                        target,
                        Some("overlay"),
                        flags,
                        Some(&options),
                    )
                }
                other => other,
            }
            .map(|()| None)
        }
        OverlayDriver::Fuse => {
            let base = std::env::current_dir()?;
            let options = fuse_options(layers, flags.contains(MsFlags::MS_RDONLY));
            FuseKeeper::start(&base, options, target).map(Some)
        }
    }
}

fn check_length(options: &str) -> io::Result<()> {
    if options.len() >= page_size() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "overlay options are {} bytes, more than a page: too many layers",
                options.len()
            ),
        ));
    }
    Ok(())
}

fn page_size() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |n| n as usize)
}

/// The file system magic of FUSE mounts.
const FUSE_SUPER_MAGIC: i64 = 0x6573_5546;

/// How long fuse-overlayfs may take to mount before it is given up on.
const FUSE_START_LIMIT: Duration = Duration::from_secs(30);

/// Starts fuse-overlayfs in the foreground on `target` (relative lower names from this
/// thread's working directory), killed when the calling thread ends, and returns once
/// its mount is in place. The process is the caller's to wait for.
fn start_fuse_overlayfs(options: &str, target: &Path) -> io::Result<std::process::Child> {
    let program = find_program(FUSE_PROGRAM).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "fuse-overlayfs is not installed (apt-get install fuse-overlayfs fuse3)",
        )
    })?;
    let before = nix::sys::stat::stat(target)
        .map_err(io::Error::from)?
        .st_dev;
    let target_c = CString::new(std::os::unix::ffi::OsStrExt::as_bytes(target.as_os_str()))
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in the mount target"))?;
    let parent = std::process::id();
    let mut command = std::process::Command::new(program);
    command
        .arg("-f")
        .arg("-o")
        .arg(options)
        .arg(target)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    // SAFETY: prctl, getppid and signal are async-signal-safe; they set this child's
    // parent-death signal (and see that the parent did not die before it was set), and
    // let it write to a closed stderr pipe (its messages after the start have no
    // reader) without dying of SIGPIPE.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            if u32::try_from(libc::getppid()) != Ok(parent) {
                return Err(io::Error::other("lade ended while starting fuse-overlayfs"));
            }
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            Ok(())
        });
    }
    let mut child = command.spawn()?;
    let started = Instant::now();
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1; the
    // child is ours and not yet reaped, so its pid names it.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id() as libc::pid_t, 0) };
    let child_exit = (pidfd >= 0).then(|| {
        // SAFETY: the descriptor was just returned to us and is owned here alone.
        unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(pidfd as i32) }
    });
    loop {
        // Opened before the look: a mount made after it marks this file (POLLPRI), so
        // the wait below cannot miss it.
        let mounts = std::fs::File::open("/proc/thread-self/mountinfo")?;
        if is_fuse_mount(&target_c, before) {
            // Its later messages have no reader: with the pipe closed it writes them
            // to nothing rather than block once the pipe is full.
            drop(child.stderr.take());
            return Ok(child);
        }
        if let Some(status) = child.try_wait()? {
            let mut message = String::new();
            if let Some(mut stderr) = child.stderr.take() {
                use std::io::Read;
                let _ = stderr.read_to_string(&mut message);
            }
            return Err(io::Error::other(format!(
                "fuse-overlayfs ended ({status}) before mounting: {}",
                message.trim()
            )));
        }
        if started.elapsed() > FUSE_START_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "fuse-overlayfs did not mount within {} s",
                    FUSE_START_LIMIT.as_secs()
                ),
            ));
        }
        // The daemon says nothing when its mount is ready (it stays in the foreground
        // to die with its parent): woken when this mount namespace's mounts change, or
        // when it ends.
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        let left = FUSE_START_LIMIT.saturating_sub(started.elapsed());
        let millis = u16::try_from(left.as_millis()).unwrap_or(u16::MAX).max(1);
        let mut fds = vec![PollFd::new(mounts.as_fd(), PollFlags::POLLPRI)];
        if let Some(exit) = &child_exit {
            fds.push(PollFd::new(exit.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::from(millis)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

fn is_fuse_mount(target: &CString, before: u64) -> bool {
    let mut fs = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: statfs writes the struct it is given; the path is NUL-terminated.
    if unsafe { libc::statfs(target.as_ptr(), fs.as_mut_ptr()) } != 0 {
        return false;
    }
    // SAFETY: statfs succeeded, so it filled the struct.
    let fs = unsafe { fs.assume_init() };
    #[allow(clippy::unnecessary_cast)]
    let magic = fs.f_type as i64;
    magic == FUSE_SUPER_MAGIC
        && nix::sys::stat::stat(target.as_c_str()).is_ok_and(|st| st.st_dev != before)
}

/// A fuse-overlayfs mount held by a thread of its own, which started the process (so
/// it dies with lade, even killed) and reaps it once the mount is gone.
#[derive(Debug)]
pub(crate) struct FuseKeeper {
    process: super::ProcessId,
}

impl FuseKeeper {
    /// Mounts with fuse-overlayfs from `base` (relative lower names) at `target`.
    pub(crate) fn start(base: &Path, options: String, target: &Path) -> io::Result<FuseKeeper> {
        let (sender, receiver) = std::sync::mpsc::channel();
        let base = base.to_path_buf();
        let target = target.to_path_buf();
        std::thread::Builder::new()
            .name("fuse-overlayfs".into())
            .spawn(move || {
                let started = nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS)
                    .map_err(io::Error::from)
                    .and_then(|()| std::env::set_current_dir(&base))
                    .and_then(|()| start_fuse_overlayfs(&options, &target));
                match started {
                    Ok(mut child) => {
                        // Known by pid and start time while it is still our unreaped
                        // child, so that a later signal cannot reach another process
                        // that took its pid.
                        let process = i32::try_from(child.id())
                            .ok()
                            .and_then(super::ProcessId::of)
                            .ok_or_else(|| io::Error::other("fuse-overlayfs ended at once"));
                        let _ = sender.send(process);
                        let _ = child.wait();
                    }
                    Err(e) => {
                        let _ = sender.send(Err(e));
                    }
                }
            })?;
        let process = receiver
            .recv()
            .map_err(|_| io::Error::other("the fuse-overlayfs thread ended"))??;
        Ok(FuseKeeper { process })
    }

    /// Ends the process once its mount is detached (it would end by itself once the
    /// last user of the file system lets go; a lazily detached one may linger).
    pub(crate) fn stop(&self) {
        self.process.signal(super::SignalNumber::TERM);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide_with(
        rootless: bool,
        forced: Option<&str>,
        kernel: Result<(), &str>,
        fuse: Result<(), &str>,
    ) -> (Result<OverlayDriver, DriverError>, bool) {
        let mut probed = false;
        let mut kernel_probe = || {
            probed = true;
            kernel.map_err(str::to_string)
        };
        let fuse_probe = || fuse.map_err(str::to_string);
        let chosen = decide(Inputs {
            rootless,
            forced: forced.map(|name| (DRIVER_ENV.to_string(), name.to_string())),
            kernel: &mut kernel_probe,
            fuse: &fuse_probe,
        });
        (chosen, probed)
    }

    #[test]
    fn root_mounts_the_kernels_overlay_without_probing() {
        let (chosen, probed) = decide_with(false, None, Err("no"), Err("no"));
        assert_eq!(chosen, Ok(OverlayDriver::Kernel));
        assert!(!probed);
        assert!(matches!(
            decide_with(false, Some("fuse-overlayfs"), Ok(()), Ok(())).0,
            Err(DriverError::FuseForRoot { .. })
        ));
    }

    #[test]
    fn rootless_prefers_the_kernel_then_fuse_overlayfs() {
        assert_eq!(
            decide_with(true, None, Ok(()), Ok(())).0,
            Ok(OverlayDriver::Kernel)
        );
        assert_eq!(
            decide_with(true, None, Err("EPERM"), Ok(())).0,
            Ok(OverlayDriver::Fuse)
        );
        let neither = decide_with(true, None, Err("EPERM"), Err("not installed"))
            .0
            .unwrap_err();
        let text = neither.to_string();
        assert!(
            text.contains("5.11") && text.contains("apt-get install fuse-overlayfs"),
            "{text}"
        );
    }

    #[test]
    fn a_forced_driver_is_taken_without_probing_and_checked() {
        let (chosen, probed) = decide_with(true, Some("fuse-overlayfs"), Ok(()), Ok(()));
        assert_eq!(chosen, Ok(OverlayDriver::Fuse));
        assert!(!probed);
        let (chosen, probed) = decide_with(true, Some("overlay"), Err("EPERM"), Ok(()));
        assert_eq!(chosen, Ok(OverlayDriver::Kernel));
        assert!(!probed);
        assert!(matches!(
            decide_with(true, Some("fuse-overlayfs"), Ok(()), Err("not installed")).0,
            Err(DriverError::FuseUnusable { .. })
        ));
        assert!(matches!(
            decide_with(true, Some("btrfs"), Ok(()), Ok(())).0,
            Err(DriverError::Unknown { .. })
        ));
    }

    #[test]
    fn options_name_the_directories_for_either_driver() {
        let lowers = vec!["a".to_string(), "b".to_string()];
        let layers = OverlayLayers {
            lowers: &lowers,
            upper: Some((Path::new("/u"), Path::new("/w"))),
            volatile: true,
        };
        assert!(kernel_options(&layers).starts_with("lowerdir=a:b,upperdir=/u,workdir=/w,volatile"));
        assert_eq!(
            fuse_options(&layers, false),
            "lowerdir=a:b,upperdir=/u,workdir=/w,allow_other,default_permissions"
        );
    }
}
