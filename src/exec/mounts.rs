//! Mounts: a private mount namespace for lade itself (so whatever it mounts disappears
//! with it, even after `kill -9`), read-only overlay views of stacked directories, and
//! private tmpfs scratch space.

use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

use super::overlay::{self, FuseKeeper, OverlayDriver, OverlayLayers};

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

/// A mount that is detached when dropped (and its fuse-overlayfs process ended).
#[derive(Debug)]
pub struct Mounted {
    target: PathBuf,
    fuse: Option<FuseKeeper>,
}

impl Mounted {
    pub fn path(&self) -> &Path {
        &self.target
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = umount2(&self.target, MntFlags::MNT_DETACH);
        if let Some(fuse) = &self.fuse {
            fuse.stop();
        }
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
        fuse: None,
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
                fuse: None,
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
            let layers = OverlayLayers {
                lowers: layers,
                upper: None,
                volatile: false,
            };
            let fuse = mount_overlay_from(
                overlay::current(),
                base,
                &layers,
                target,
                MsFlags::MS_RDONLY,
            )?;
            Ok(Some(Mounted {
                target: target.to_path_buf(),
                fuse,
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
        let fuse = mount_overlay_from(
            rootfs.driver,
            &rootfs.layers_dir,
            &rootfs.overlay_layers(),
            target,
            MsFlags::MS_NODEV,
        )?;
        Mounted {
            target: target.to_path_buf(),
            fuse,
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

/// Mounts an overlay of `layers` (names relative to `base`) at `target` with the
/// driver given, from a helper thread that changes its own working directory alone
/// (so the options stay short however deep `base` is).
fn mount_overlay_from(
    driver: OverlayDriver,
    base: &Path,
    layers: &OverlayLayers<'_>,
    target: &Path,
    flags: MsFlags,
) -> io::Result<Option<FuseKeeper>> {
    let base = base.to_path_buf();
    let target = target.to_path_buf();
    let lowers = layers.lowers.to_vec();
    let upper = layers
        .upper
        .map(|(upper, work)| (upper.to_path_buf(), work.to_path_buf()));
    let volatile = layers.volatile;
    std::thread::spawn(move || -> io::Result<Option<FuseKeeper>> {
        unshare(CloneFlags::CLONE_FS)?;
        std::env::set_current_dir(&base)?;
        let layers = OverlayLayers {
            lowers: &lowers,
            upper: upper
                .as_ref()
                .map(|(upper, work)| (upper.as_path(), work.as_path())),
            volatile,
        };
        let mut sys = super::sys::Linux::default();
        overlay::mount(&mut sys, driver, &layers, &target, flags)
    })
    .join()
    .map_err(|_| io::Error::other("the mount helper thread panicked"))?
}

/// What a container started with fuse-overlayfs needs mounted before its init runs
/// (see [`overlay::mount`]): its root at its target, and each writable view, which
/// the returned spec binds from where it is mounted instead. Dropping the mounts ends
/// their processes.
pub(crate) fn premount_fuse(spec: &super::Spec) -> io::Result<(super::Spec, Vec<Mounted>)> {
    let mut spec = spec.clone();
    let mut held = Vec::new();
    let rootfs = &spec.rootfs;
    if rootfs.driver != OverlayDriver::Fuse {
        return Ok((spec, held));
    }
    if rootfs.upper.is_some() || rootfs.lowers.len() > 1 {
        let flags = if rootfs.upper.is_some() {
            MsFlags::MS_NODEV
        } else {
            MsFlags::MS_RDONLY | MsFlags::MS_NODEV
        };
        let fuse = mount_overlay_from(
            OverlayDriver::Fuse,
            &rootfs.layers_dir,
            &rootfs.overlay_layers(),
            &rootfs.target,
            flags,
        )?;
        held.push(Mounted {
            target: rootfs.target.clone(),
            fuse,
        });
    }
    for mount in &mut spec.mounts {
        let super::Mount::Overlay {
            lower,
            upper,
            work,
            target,
        } = mount
        else {
            continue;
        };
        let mut name = upper.file_name().unwrap_or_default().to_os_string();
        name.push("-view");
        let view = upper.with_file_name(name);
        std::fs::create_dir_all(&view)?;
        let lowers = [lower.display().to_string()];
        let layers = OverlayLayers {
            lowers: &lowers,
            upper: Some((upper.as_path(), work.as_path())),
            volatile: false,
        };
        let fuse = mount_overlay_from(
            OverlayDriver::Fuse,
            Path::new("/"),
            &layers,
            &view,
            MsFlags::MS_NODEV,
        )?;
        held.push(Mounted {
            target: view.clone(),
            fuse,
        });
        *mount = super::Mount::Bind {
            source: view,
            target: target.clone(),
            readonly: false,
        };
    }
    Ok((spec, held))
}
