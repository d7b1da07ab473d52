//! Mounts: a private mount namespace for lade itself (so whatever it mounts disappears
//! with it, even after `kill -9`), read-only overlay views of stacked directories, and
//! private tmpfs scratch space.

use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

/// Moves this process into a mount namespace of its own whose mounts do not propagate
/// back. Must run before the process starts threads (the kernel refuses otherwise).
pub fn private_mount_namespace() -> io::Result<()> {
    if HOST_MOUNTS.get().is_none() {
        if let Ok(namespace) = std::fs::File::open("/proc/self/ns/mnt") {
            let _ = HOST_MOUNTS.set(namespace.into());
        }
    }
    unshare(CloneFlags::CLONE_NEWNS).map_err(|e| {
        io::Error::new(
            io::Error::from(e).kind(),
            format!("cannot create a private mount namespace: {e} (lade needs root, and must do this before starting threads)"),
        )
    })?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(io::Error::from)
}

/// The mount namespace lade was started in, kept before it made its own private one.
/// Static because what it records is itself process-wide: the unshare above swaps the
/// mount namespace of the whole process, once, before any thread starts, so the only
/// moment to hold on to the old one is there, and every later caller (in whatever
/// module sets up a network namespace or a monitor) must see that same descriptor.
static HOST_MOUNTS: std::sync::OnceLock<std::os::fd::OwnedFd> = std::sync::OnceLock::new();

/// Where a detached helper (a monitor) finds the host's mount namespace, handed on by
/// the command that started it.
pub const HOST_MOUNTS_FD: std::os::fd::RawFd = 4;

/// The mount namespace lade was started in: where mounts that must outlive lade and be
/// seen by its next commands go (a network namespace's file). Reached through a
/// descriptor kept before lade made its private namespace, as `/proc/1/ns/mnt` may be
/// out of reach.
pub fn host_mount_namespace() -> io::Result<std::fs::File> {
    match HOST_MOUNTS.get() {
        Some(namespace) => namespace.try_clone().map(std::fs::File::from),
        None => std::fs::File::open("/proc/self/ns/mnt"),
    }
}

/// Takes the host's mount namespace from [`HOST_MOUNTS_FD`] when a starter handed it on.
pub fn adopt_host_mount_namespace() {
    use std::os::fd::FromRawFd;
    // SAFETY: F_GETFD only asks whether the descriptor is open.
    if unsafe { libc::fcntl(HOST_MOUNTS_FD, libc::F_GETFD) } < 0 {
        return;
    }
    // SAFETY: the starter put this descriptor there for this process alone; it is owned
    // from here on (and close-on-exec, so the container does not inherit it).
    let namespace = unsafe { std::os::fd::OwnedFd::from_raw_fd(HOST_MOUNTS_FD) };
    let _ = nix::fcntl::fcntl(
        &namespace,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    );
    let _ = HOST_MOUNTS.set(namespace);
}

/// A mount that is detached when dropped.
#[derive(Debug)]
pub struct Mounted {
    target: PathBuf,
}

impl Mounted {
    pub fn path(&self) -> &Path {
        &self.target
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = umount2(&self.target, MntFlags::MNT_DETACH);
    }
}

/// Mounts a tmpfs of at most `size` bytes at `target`, reachable by root alone (mode
/// 0700, no devices, no setuid, nothing executable): files that must never reach a disk,
/// such as a build's secrets, are written there and bound into a sandbox. The mount is
/// in lade's private mount namespace, so even `kill -9` leaves nothing of it behind.
pub fn mount_private_tmpfs(target: &Path, size: u64) -> io::Result<Mounted> {
    mount(
        Some("tmpfs"),
        target,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(format!("mode=0700,size={size}").as_str()),
    )?;
    Ok(Mounted {
        target: target.to_path_buf(),
    })
}

/// Mounts the directories `layers` (names relative to `base`, topmost first) read-only
/// at `target` as one merged tree. Overlay takes relative lower directory names from the
/// caller's working directory, so the options stay short however deep `base` is.
pub fn mount_readonly_view(
    base: &Path,
    layers: &[String],
    target: &Path,
) -> io::Result<Option<Mounted>> {
    match layers {
        [] => Ok(None),
        [only] => {
            let source = base.join(only);
            mount(
                Some(&source),
                target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )?;
            let mounted = Mounted {
                target: target.to_path_buf(),
            };
            mount(
                None::<&str>,
                target,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                None::<&str>,
            )?;
            Ok(Some(mounted))
        }
        _ => {
            let mut options = format!("lowerdir={}", layers.join(":"));
            if super::rootless::outside_ids().is_some() {
                // Whiteouts and opaque marks in a user namespace's snapshots.
                options.push_str(",userxattr");
            }
            mount_overlay_from(base, target, &options, MsFlags::MS_RDONLY)?;
            Ok(Some(Mounted {
                target: target.to_path_buf(),
            }))
        }
    }
}

/// Mounts a container's root file system (its image's layers, and its upper directory
/// when it has one) at `target`, writable unless the container's root is read-only, and
/// on it the container's bind mounts (its volumes, binds and `/etc` files) as its start
/// would, so that `lade cp` into a container that is not running sees what it will see.
/// The mounts live in the caller's mount namespace; dropping the result detaches them
/// all.
pub fn mount_container_root(
    rootfs: &super::Rootfs,
    mounts: &[super::Mount],
    target: &Path,
) -> io::Result<Mounted> {
    let mounted = if rootfs.upper.is_none() {
        mount_readonly_view(&rootfs.layers_dir, &rootfs.lowers, target)?.ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "the container has no layers")
        })?
    } else {
        // Writable at first even for a read-only root: a mount point the container's
        // start would create may be missing yet. The root is made read-only after.
        let options = super::rootfs::overlay_options(rootfs);
        mount_overlay_from(&rootfs.layers_dir, target, &options, MsFlags::MS_NODEV)?;
        Mounted {
            target: target.to_path_buf(),
        }
    };
    let mut sys = super::sys::Linux::default();
    super::rootfs::mount_binds(&mut sys, target, mounts)
        .map_err(|(what, e)| io::Error::new(e.kind(), format!("{what}: {e}")))?;
    if rootfs.readonly && rootfs.upper.is_some() {
        // Only the root's own mount: the binds below keep their own flags.
        mount(
            None::<&Path>,
            target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NODEV,
            None::<&str>,
        )?;
    }
    Ok(mounted)
}

/// Mounts overlay at `target` with `options` whose directory names are relative to
/// `base`. The working directory is changed only in a helper thread that has its own
/// filesystem context, so the rest of the process is unaffected.
pub fn mount_overlay_from(
    base: &Path,
    target: &Path,
    options: &str,
    flags: MsFlags,
) -> io::Result<()> {
    if options.len() >= page_size() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "overlay options are {} bytes, more than a page: too many layers",
                options.len()
            ),
        ));
    }
    let base = base.to_path_buf();
    let target = target.to_path_buf();
    let options = CString::new(options)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in options"))?;
    std::thread::spawn(move || -> io::Result<()> {
        unshare(CloneFlags::CLONE_FS)?;
        std::env::set_current_dir(&base)?;
        mount(
            Some("overlay"),
            &target,
            Some("overlay"),
            flags,
            Some(options.as_c_str()),
        )?;
        Ok(())
    })
    .join()
    .map_err(|_| io::Error::other("the mount helper thread panicked"))?
}

fn page_size() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |n| n as usize)
}
