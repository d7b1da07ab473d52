//! The container's file system, built by the init inside its new mount namespace (so
//! it all disappears with the container): overlay root, `/proc`, a `/dev` tmpfs with the
//! usual devices, `/sys` read-only, the caller's mounts, Docker's masked and read-only
//! paths, then `pivot_root` with the old root detached.
//!
//! The root file system and `/dev` are `nodev`: device nodes an image ships, or one the
//! container makes with `CAP_MKNOD`, cannot be opened. The devices containers need are
//! bind mounts of the host's, whose mount keeps them usable.

use std::io;
use std::path::Path;

use nix::mount::MsFlags;

use super::overlay::{self, OverlayDriver, OverlayLayers};
use super::sys::Sys;
use super::{Mount, Rootfs, Spec};

/// Docker's masked paths: hidden (files by `/dev/null`, directories by an empty tmpfs).
pub(crate) const MASKED: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's read-only paths.
pub(crate) const READ_ONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Docker's `/dev/shm` size when `--shm-size` does not say: 64 MiB.
pub(crate) const DEFAULT_SHM_SIZE: u64 = 64 << 20;

/// Devices a container gets, bind-mounted from the host.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

type Result<T> = std::result::Result<T, (String, io::Error)>;

fn at<T>(what: impl Into<String>, result: io::Result<T>) -> Result<T> {
    result.map_err(|e| (what.into(), e))
}

/// The kernel overlay's options for the root: relative lower names (the caller changes
/// to `layers_dir`).
#[cfg(test)]
pub(crate) fn overlay_options(rootfs: &Rootfs) -> String {
    super::overlay::kernel_options(&rootfs.overlay_layers())
}

/// Builds the container's file system and makes it the root.
pub(crate) fn setup(sys: &mut dyn Sys, spec: &Spec) -> Result<()> {
    let root = spec.rootfs.target.clone();
    at(
        "making mounts private",
        sys.mount(
            None,
            Path::new("/"),
            None,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None,
        ),
    )?;
    mount_root(sys, &spec.rootfs)?;
    let sandbox = &spec.sandbox;
    mount_system(sys, &root, sandbox)?;
    for mount in &spec.mounts {
        mount_user(sys, &root, mount)?;
    }
    for device in &sandbox.devices {
        mount_device(sys, &root, device)?;
    }
    // Docker's --privileged leaves /proc and /sys as the kernel shows them.
    let (masked, read_only): (&[&str], &[&str]) = if sandbox.privileged {
        (&[], &[])
    } else {
        (&MASKED, &READ_ONLY)
    };
    for &path in masked {
        // Resolved inside the root, as the container will see it: `/proc` is the
        // sandbox's own by now, so this is the kernel's file.
        let Some(target) = at(format!("masking {path}"), sys.open_in_root(&root, path))? else {
            continue;
        };
        let (source, fstype, data) = if target.is_dir {
            (Path::new("tmpfs"), Some("tmpfs"), Some("size=0"))
        } else {
            (Path::new("/dev/null"), None, None)
        };
        let flags = if target.is_dir {
            MsFlags::MS_RDONLY
        } else {
            MsFlags::MS_BIND
        };
        at(
            format!("masking {path}"),
            sys.mount(Some(source), &target.handle, fstype, flags, data),
        )?;
    }
    for &path in read_only {
        let what = format!("making {path} read-only");
        let Some(target) = at(what.clone(), sys.open_in_root(&root, path))? else {
            continue;
        };
        at(
            what.clone(),
            sys.mount(
                Some(&target.handle),
                &target.handle,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            ),
        )?;
        let proc_flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        restrict_bind(
            sys,
            &root,
            path,
            &target.resolved,
            MsFlags::MS_RDONLY | proc_flags,
            what,
        )?;
    }
    if spec.rootfs.readonly {
        at(
            "making the root read-only",
            sys.mount(
                None,
                &root,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NODEV,
                None,
            ),
        )?;
    }
    at("entering the root", sys.chdir(&root))?;
    at("pivot_root", sys.pivot_root(Path::new("."), Path::new(".")))?;
    at("detaching the old root", sys.umount_detach(Path::new(".")))?;
    at("entering /", sys.chdir(Path::new("/")))
}

/// Sets the flags of the bind mount just made at `path` (its target resolved to
/// `made_at`). The path is opened anew, since a handle from before the mount names what
/// the mount covers; it must still resolve to where the mount was made, or a path
/// swapped meanwhile in a shared volume would leave the bind as it was made.
fn restrict_bind(
    sys: &mut dyn Sys,
    root: &Path,
    path: &str,
    made_at: &Path,
    flags: MsFlags,
    what: String,
) -> Result<()> {
    let target = at(what.clone(), sys.open_in_root(root, path))?
        .ok_or_else(|| (what.clone(), io::Error::other("it vanished once mounted")))?;
    if target.resolved != made_at {
        return Err((
            what,
            io::Error::other(format!(
                "it moved to {} while it was mounted",
                target.resolved.display()
            )),
        ));
    }
    at(
        what,
        sys.mount(
            None,
            &target.handle,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags,
            None,
        ),
    )
}

fn bind_readonly(sys: &mut dyn Sys, source: &Path, target: &Path, what: String) -> Result<()> {
    at(
        what.clone(),
        sys.mount(
            Some(source),
            target,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        ),
    )?;
    at(
        what,
        sys.mount(
            None,
            target,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None,
        ),
    )
}

fn mount_root(sys: &mut dyn Sys, rootfs: &Rootfs) -> Result<()> {
    let target = &rootfs.target;
    let writable = rootfs.upper.is_some();
    match (rootfs.lowers.as_slice(), writable) {
        ([only], false) => {
            bind_readonly(
                sys,
                &rootfs.layers_dir.join(only),
                target,
                "mounting the root".into(),
            )?;
        }
        _ => {
            // Overlay reads relative lower names from the working directory.
            at(
                "entering the layers directory",
                sys.chdir(&rootfs.layers_dir),
            )?;
            let mut flags = MsFlags::MS_NODEV;
            if !writable {
                flags |= MsFlags::MS_RDONLY;
            }
            // A volatile overlay leaves a mark in its work directory
            // (`work/incompat/volatile`), and the kernel refuses to mount that
            // directory again while the mark is there. A container mounted volatile is
            // one whose upper directory is disposable (it goes with the container), so
            // on a restart the mark goes, and the container goes on with its upper
            // directory as it was left.
            if rootfs.volatile && rootfs.driver == OverlayDriver::Kernel {
                if let Some(work) = &rootfs.work {
                    let mark = work.join("work").join("incompat");
                    at(
                        format!("removing {}", mark.display()),
                        sys.remove_tree(&mark),
                    )?;
                }
            }
            if rootfs.driver == OverlayDriver::Fuse {
                // Mounted by whoever started the container, before its init: see
                // `overlay::mount`.
                return Ok(());
            }
            let mounted = overlay::mount(
                sys,
                OverlayDriver::Kernel,
                &rootfs.overlay_layers(),
                target,
                flags,
            );
            at("mounting the root overlay", mounted)?;
        }
    }
    Ok(())
}

/// A mount point inside the root: resolved there by the kernel, created when missing (a
/// directory, or a file when `file`). Returns the opened target's handle, to mount on.
fn mount_point(sys: &mut dyn Sys, root: &Path, path: &str, file: bool) -> Result<PinnedTarget> {
    let opened = at(format!("mount point {path}"), sys.open_in_root(root, path))?;
    let target = match opened {
        Some(target) => target,
        None => {
            at(
                format!("creating {path}"),
                sys.create_in_root(root, path, file),
            )?;
            at(format!("mount point {path}"), sys.open_in_root(root, path))?.ok_or_else(|| {
                (
                    format!("mount point {path}"),
                    io::Error::other("it vanished as it was made"),
                )
            })?
        }
    };
    if !target.resolved.starts_with(root) {
        return Err((
            format!("mount point {path}"),
            io::Error::other("outside the root"),
        ));
    }
    Ok(target)
}

type PinnedTarget = super::sys::Pinned;

/// The directory the sandbox mounts a system file system on (`/proc`, `/dev`, `/sys`):
/// it must be that directory itself. An image that makes it a symlink (or a file) would
/// have the file system mounted where the link points, out of reach of the masks laid
/// on the path: such an image is refused, as runc refuses it.
fn system_mount_point(sys: &mut dyn Sys, root: &Path, path: &str) -> Result<PinnedTarget> {
    let expected = root.join(&path[1..]);
    if sys.exists(&expected) && !sys.is_dir(&expected) {
        return Err((
            format!("mounting {path}"),
            io::Error::other(format!(
                "the image's {path} is not a directory (a symlink or a file): the sandbox mounts its own {path} there"
            )),
        ));
    }
    let target = mount_point(sys, root, path, false)?;
    if target.resolved != expected || !target.is_dir {
        return Err((
            format!("mounting {path}"),
            io::Error::other(format!(
                "the image's {path} resolves to {}, not to {path} itself",
                target.resolved.display()
            )),
        ));
    }
    Ok(target)
}

/// `--device`: the host's node bound at its path in the container. A bind keeps the
/// node usable on the `nodev` root and `/dev`, as the default devices are.
fn mount_device(sys: &mut dyn Sys, root: &Path, device: &super::Device) -> Result<()> {
    let what = format!("--device {}:{}", device.source.display(), device.target);
    let point = mount_point(sys, root, &device.target, true)?;
    let proc = root.join("proc");
    if point.resolved == root || point.resolved.starts_with(&proc) {
        return Err((
            what,
            io::Error::other("its target resolves to / or /proc in the container"),
        ));
    }
    at(
        what,
        sys.mount(
            Some(&device.source),
            &point.handle,
            None,
            MsFlags::MS_BIND,
            None,
        ),
    )
}

/// Every device node of the host's `/dev` (not its pseudo-terminals, shared memory or
/// message queues, which the container has its own of), with its path under `/dev`:
/// what Docker's --privileged gives a container.
fn host_devices() -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![std::path::PathBuf::from("/dev")];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let relative = path.strip_prefix("/dev").unwrap_or(&path).to_path_buf();
            let name = relative.to_string_lossy().into_owned();
            if kind.is_dir() {
                if !["pts", "shm", "mqueue", "fd", ".lxc", ".lxd-mounts", ".udev"]
                    .contains(&name.as_str())
                {
                    pending.push(path);
                }
                continue;
            }
            use std::os::unix::fs::FileTypeExt;
            let device = kind.is_char_device() || kind.is_block_device();
            if device && name != "console" && name != "ptmx" && !DEVICES.contains(&name.as_str()) {
                found.push(name);
            }
        }
    }
    found.sort();
    found
}

fn mount_system(sys: &mut dyn Sys, root: &Path, sandbox: &super::SandboxOptions) -> Result<()> {
    let nosuid_noexec_nodev = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV;
    let proc = system_mount_point(sys, root, "/proc")?;
    at(
        "mounting /proc",
        sys.mount(
            Some(Path::new("proc")),
            &proc.handle,
            Some("proc"),
            nosuid_noexec_nodev,
            None,
        ),
    )?;

    let dev_target = system_mount_point(sys, root, "/dev")?;
    at(
        "mounting /dev",
        sys.mount(
            Some(Path::new("tmpfs")),
            &dev_target.handle,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_STRICTATIME,
            Some("mode=755,size=65536k"),
        ),
    )?;
    // The fresh tmpfs holds nothing of the image's: paths in it are what they say.
    let dev = dev_target.resolved;
    for device in DEVICES {
        let target = dev.join(device);
        at(format!("creating /dev/{device}"), sys.touch(&target))?;
        at(
            format!("mounting /dev/{device}"),
            sys.mount(
                Some(&Path::new("/dev").join(device)),
                &target,
                None,
                MsFlags::MS_BIND,
                None,
            ),
        )?;
    }
    if sandbox.privileged {
        for name in host_devices() {
            let target = dev.join(&name);
            if let Some(parent) = target.parent() {
                at(
                    format!("creating /dev/{name}"),
                    sys.mkdir_all(parent, 0o755),
                )?;
            }
            at(format!("creating /dev/{name}"), sys.touch(&target))?;
            at(
                format!("mounting /dev/{name}"),
                sys.mount(
                    Some(&Path::new("/dev").join(&name)),
                    &target,
                    None,
                    MsFlags::MS_BIND,
                    None,
                ),
            )?;
        }
    }
    let pts = dev.join("pts");
    at("creating /dev/pts", sys.mkdir_all(&pts, 0o755))?;
    at(
        "mounting /dev/pts",
        sys.mount(
            Some(Path::new("devpts")),
            &pts,
            Some("devpts"),
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
        ),
    )?;
    at(
        "linking /dev/ptmx",
        sys.symlink("pts/ptmx", &dev.join("ptmx")),
    )?;
    // `--ipc none`: no /dev/shm at all, as Docker's.
    if let Some(source) = &sandbox.shm_from {
        let shm = dev.join("shm");
        at("creating /dev/shm", sys.mkdir_all(&shm, 0o1777))?;
        at(
            format!("mounting {} at /dev/shm", source.display()),
            sys.mount(
                Some(source),
                &shm,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            ),
        )?;
    } else if !sandbox.no_shm {
        let shm = dev.join("shm");
        at("creating /dev/shm", sys.mkdir_all(&shm, 0o1777))?;
        let size = sandbox.shm_size.unwrap_or(DEFAULT_SHM_SIZE);
        at(
            "mounting /dev/shm",
            sys.mount(
                Some(Path::new("shm")),
                &shm,
                Some("tmpfs"),
                nosuid_noexec_nodev,
                Some(&format!("mode=1777,size={size}")),
            ),
        )?;
    }
    let mqueue = dev.join("mqueue");
    at("creating /dev/mqueue", sys.mkdir_all(&mqueue, 0o755))?;
    at(
        "mounting /dev/mqueue",
        sys.mount(
            Some(Path::new("mqueue")),
            &mqueue,
            Some("mqueue"),
            nosuid_noexec_nodev,
            None,
        ),
    )?;
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        at(
            format!("linking /dev/{name}"),
            sys.symlink(target, &dev.join(name)),
        )?;
    }

    // sysfs shows the network namespace it is mounted from: with the host's network it
    // is the host's view, read-only as always.
    // --privileged: writable, as Docker's.
    let sys_dir = system_mount_point(sys, root, "/sys")?;
    let read_only = if sandbox.privileged {
        MsFlags::empty()
    } else {
        MsFlags::MS_RDONLY
    };
    let mounted = sys.mount(
        Some(Path::new("sysfs")),
        &sys_dir.handle,
        Some("sysfs"),
        nosuid_noexec_nodev | read_only,
        None,
    );
    let mounted = match mounted {
        // A new sysfs needs a network namespace of the user namespace's own: with the
        // host's network (a build's RUN) rootless lade binds the host's /sys instead,
        // read-only, as runc does for rootless containers.
        Err(e)
            if e.raw_os_error() == Some(libc::EPERM)
                && super::rootless::outside_ids().is_some() =>
        {
            sys.mount(
                Some(Path::new("/sys")),
                &sys_dir.handle,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )
            .and_then(|()| {
                // The handle still names the directory under the new mount.
                sys.mount(
                    None,
                    &sys_dir.resolved,
                    None,
                    MsFlags::MS_BIND | MsFlags::MS_REMOUNT | nosuid_noexec_nodev | read_only,
                    None,
                )
            })
            .and_then(|()| {
                // The remount made the top read-only, not the mounts under it: the
                // host's cgroup tree would stay writable, and the user's own cgroups
                // there are the namespace root's to write. An empty read-only tmpfs
                // hides it, as runc mounts its own cgroup file system there.
                let cgroup = sys_dir.resolved.join("fs/cgroup");
                match sys.mount(
                    Some(Path::new("tmpfs")),
                    &cgroup,
                    Some("tmpfs"),
                    nosuid_noexec_nodev | read_only,
                    Some("mode=755"),
                ) {
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
                    other => other,
                }
            })
        }
        other => other,
    };
    at("mounting /sys", mounted)
}

/// A caller's mount target: never the root itself or the sandbox's `/proc`, however the
/// image's symlinks spell the path (`/rootl/proc` with `/rootl` a link to `/`).
fn user_mount_point(
    sys: &mut dyn Sys,
    root: &Path,
    path: &str,
    file: bool,
) -> Result<PinnedTarget> {
    let target = mount_point(sys, root, path, file)?;
    let proc = root.join("proc");
    if target.resolved == root || target.resolved.starts_with(&proc) {
        let owned = if target.resolved == root {
            "/"
        } else {
            "/proc"
        };
        return Err((
            format!("mounting at {path}"),
            io::Error::other(format!(
                "it resolves to {owned} in the container, which the sandbox owns"
            )),
        ));
    }
    Ok(target)
}

/// The bind mounts of `mounts` on a root mounted outside a sandbox (`lade cp` into a
/// container that is not running): resolved inside the root and read-only where they
/// are, as at start. Tmpfs and overlay mounts exist only while the container runs, and
/// what sits under `/proc`, `/dev` or `/sys` lands on the sandbox's own file systems,
/// which a stopped container does not have: those are left out.
pub(crate) fn mount_binds(sys: &mut dyn Sys, root: &Path, mounts: &[Mount]) -> Result<()> {
    for mount in mounts {
        let Mount::Bind { target, .. } = mount else {
            continue;
        };
        // Compared by components: `/device` is not under `/dev`.
        let on_system = ["/proc", "/dev", "/sys"]
            .iter()
            .any(|system| Path::new(target).starts_with(system));
        if !on_system {
            mount_user(sys, root, mount)?;
        }
    }
    Ok(())
}

fn mount_user(sys: &mut dyn Sys, root: &Path, mount: &Mount) -> Result<()> {
    match mount {
        Mount::Bind {
            source,
            target,
            readonly,
        } => {
            let is_file = !source.is_dir();
            let point = user_mount_point(sys, root, target, is_file)?;
            at(
                format!("mounting {} at {target}", source.display()),
                sys.mount(
                    Some(source),
                    &point.handle,
                    None,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None,
                ),
            )?;
            // nodev always: lade has no device cgroup, so this is what keeps a device
            // node the container makes in a volume (it has CAP_MKNOD) from opening.
            let flags = if *readonly {
                MsFlags::MS_NODEV | MsFlags::MS_RDONLY
            } else {
                MsFlags::MS_NODEV
            };
            restrict_bind(
                sys,
                root,
                target,
                &point.resolved,
                flags,
                format!("mounting {} at {target}", source.display()),
            )?;
        }
        Mount::Tmpfs { target, size } => {
            let target_path = user_mount_point(sys, root, target, false)?.handle;
            let options = match size {
                Some(bytes) => format!("mode=1777,size={bytes}"),
                None => "mode=1777".to_string(),
            };
            at(
                format!("mounting a tmpfs at {target}"),
                sys.mount(
                    Some(Path::new("tmpfs")),
                    &target_path,
                    Some("tmpfs"),
                    MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                    Some(&options),
                ),
            )?;
        }
        Mount::Filesystem {
            source,
            fstype,
            options,
            target,
            readonly,
        } => {
            let target_path = user_mount_point(sys, root, target, false)?.handle;
            let (mut flags, data) = mount_options(options);
            // nodev always, as for binds: lade has no device cgroup.
            flags |= MsFlags::MS_NODEV;
            if *readonly {
                flags |= MsFlags::MS_RDONLY;
            }
            at(
                format!("mounting {source} ({fstype}) at {target}"),
                sys.mount(
                    Some(Path::new(source)),
                    &target_path,
                    Some(fstype),
                    flags,
                    (!data.is_empty()).then_some(data.as_str()),
                ),
            )?;
        }
        Mount::Overlay {
            lower,
            upper,
            work,
            target,
        } => {
            let target_path = user_mount_point(sys, root, target, false)?.handle;
            let lowers = [lower.display().to_string()];
            let layers = OverlayLayers {
                lowers: &lowers,
                upper: Some((upper.as_path(), work.as_path())),
                volatile: false,
            };
            // With fuse-overlayfs the starter mounted the view, and this is a bind.
            at(
                format!("mounting a writable view at {target}"),
                overlay::mount(
                    sys,
                    OverlayDriver::Kernel,
                    &layers,
                    &target_path,
                    MsFlags::MS_NODEV,
                ),
            )?;
        }
    }
    Ok(())
}

/// mount(8)'s option list split as moby's `mount.Mount` splits it: the flag words
/// become flags, the rest (`size=10m`, `uid=1000`, `addr=...`) the file system's data.
fn mount_options(options: &str) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for option in options.split(',').filter(|o| !o.is_empty()) {
        let (set, clear) = match option {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "nodev" | "dev" => (MsFlags::empty(), MsFlags::empty()),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            other => {
                data.push(other);
                continue;
            }
        };
        flags = (flags | set) & !clear;
    }
    (flags, data.join(","))
}

#[cfg(test)]
mod tests {
    #[test]
    fn mount_options_split_as_moby_does() {
        let (flags, data) = super::mount_options("size=10m,uid=1000,ro,noexec");
        assert_eq!(data, "size=10m,uid=1000");
        assert!(flags.contains(super::MsFlags::MS_RDONLY | super::MsFlags::MS_NOEXEC));
        let (flags, data) = super::mount_options("ro,rw,defaults");
        assert!(flags.is_empty() && data.is_empty());
    }

    use super::*;
    use crate::exec::sys::{Call, Recorder};
    use crate::exec::{Limits, Network, Process};

    fn spec() -> Spec {
        Spec {
            rootfs: Rootfs {
                layers_dir: "/store/snapshots".into(),
                lowers: vec!["b".into(), "a".into()],
                upper: Some("/store/c/upper".into()),
                work: Some("/store/c/work".into()),
                target: "/store/c/rootfs".into(),
                readonly: false,
                volatile: false,
                driver: Default::default(),
            },
            process: Process {
                args: vec!["sh".into()],
                env: Vec::new(),
                cwd: "/".into(),
                user: String::new(),
                terminal: false,
            },
            hostname: "h".into(),
            mounts: vec![Mount::Tmpfs {
                target: "/cache".into(),
                size: None,
            }],
            network: Network::Isolated,
            limits: Limits::default(),
            cgroup: None,
            insecure: false,
            init: false,
            pausable: false,
            privileges: Default::default(),
            sandbox: Default::default(),
        }
    }

    fn mounted(calls: &[Call]) -> Vec<(String, Option<String>)> {
        calls
            .iter()
            .filter_map(|c| match c {
                Call::Mount { target, fstype, .. } => {
                    Some((target.display().to_string(), fstype.clone()))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_volatile_overlay_falls_back_where_the_kernel_lacks_the_option() {
        let volatile = |options: &str| options.split(',').any(|o| o == "volatile");
        let mut rootfs = spec().rootfs;
        assert!(!volatile(&overlay_options(&rootfs)));
        rootfs.volatile = true;
        assert!(volatile(&overlay_options(&rootfs)));

        let mut sys = Recorder {
            refuse_option: Some("volatile".into()),
            ..Recorder::default()
        };
        mount_root(&mut sys, &rootfs).unwrap();
        let options: Vec<String> = sys
            .calls
            .iter()
            .filter_map(|c| match c {
                Call::Mount { data, .. } => data.clone(),
                _ => None,
            })
            .collect();
        assert_eq!(options.len(), 2, "{options:?}");
        assert!(volatile(&options[0]) && !volatile(&options[1]));
    }

    #[test]
    fn a_volatile_overlay_mounts_again_without_its_last_mark() {
        let mut rootfs = spec().rootfs;
        rootfs.volatile = true;
        let work = rootfs.work.clone().unwrap();
        let mut sys = Recorder::default();
        mount_root(&mut sys, &rootfs).unwrap();
        let removed = sys
            .calls
            .iter()
            .position(|c| *c == Call::RemoveTree(work.join("work/incompat")));
        let mounted = sys
            .calls
            .iter()
            .position(|c| matches!(c, Call::Mount { .. }));
        assert!(removed.is_some() && removed < mounted, "{:?}", sys.calls);

        rootfs.volatile = false;
        let mut sys = Recorder::default();
        mount_root(&mut sys, &rootfs).unwrap();
        assert!(
            !sys.calls.iter().any(|c| matches!(c, Call::RemoveTree(_))),
            "a durable overlay keeps its work directory: {:?}",
            sys.calls
        );
    }

    #[test]
    fn builds_the_root_then_pivots() {
        let mut sys = Recorder::default();
        let spec = spec();
        sys.existing.push("/store/c/rootfs/proc/kcore".into());
        sys.existing.push("/store/c/rootfs/proc/sys".into());
        sys.dirs.push("/store/c/rootfs/proc/acpi".into());
        sys.existing.push("/store/c/rootfs/proc/acpi".into());
        setup(&mut sys, &spec).unwrap();
        let mounts = mounted(&sys.calls);
        let targets: Vec<&str> = mounts.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(targets[0], "/");
        assert_eq!(
            mounts[1],
            ("/store/c/rootfs".to_string(), Some("overlay".to_string()))
        );
        for expected in [
            "/proc",
            "/dev",
            "/dev/null",
            "/dev/pts",
            "/dev/shm",
            "/dev/mqueue",
            "/sys",
            "/cache",
        ] {
            assert!(
                targets.contains(&format!("/store/c/rootfs{expected}").as_str()),
                "{expected} not mounted: {targets:?}"
            );
        }
        assert!(
            targets.contains(&"/store/c/rootfs/proc/kcore"),
            "kcore is masked"
        );
        assert!(
            targets.contains(&"/store/c/rootfs/proc/acpi"),
            "acpi is masked"
        );
        assert!(
            targets
                .iter()
                .filter(|t| **t == "/store/c/rootfs/proc/sys")
                .count()
                == 2,
            "bind, then read-only"
        );
        let pivot = sys
            .calls
            .iter()
            .position(|c| matches!(c, Call::PivotRoot(_)))
            .unwrap();
        let last_mount = sys
            .calls
            .iter()
            .rposition(|c| matches!(c, Call::Mount { .. }))
            .unwrap();
        assert!(
            pivot > last_mount,
            "everything is mounted before pivot_root"
        );
        assert!(
            matches!(sys.calls[pivot + 1], Call::Umount(_)),
            "the old root is detached"
        );
        let overlay = sys
            .calls
            .iter()
            .position(|c| matches!(c, Call::Mount { fstype: Some(t), .. } if t == "overlay"))
            .unwrap();
        assert_eq!(
            sys.calls[overlay - 1],
            Call::Chdir("/store/snapshots".into()),
            "lower names are relative"
        );
        let Call::Mount { data, flags, .. } = &sys.calls[overlay] else {
            unreachable!()
        };
        assert_eq!(
            data.as_deref(),
            Some("lowerdir=b:a,upperdir=/store/c/upper,workdir=/store/c/work,index=off,redirect_dir=off,metacopy=off")
        );
        assert!(flags.contains(MsFlags::MS_NODEV));
    }

    #[test]
    fn single_read_only_layer_is_a_read_only_bind() {
        let mut sys = Recorder::default();
        let mut spec = spec();
        spec.rootfs.lowers = vec!["only".into()];
        spec.rootfs.upper = None;
        spec.rootfs.work = None;
        setup(&mut sys, &spec).unwrap();
        let Call::Mount { source, flags, .. } = &sys.calls[1] else {
            panic!()
        };
        assert_eq!(source.as_deref(), Some(Path::new("/store/snapshots/only")));
        assert!(flags.contains(MsFlags::MS_BIND));
    }
}
