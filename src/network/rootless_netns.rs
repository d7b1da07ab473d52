//! Rootless lade's network namespace for user networks, as podman 4+ keeps one per
//! user: the bridge driver works in it as it works on the host for root (the user is
//! root there, so bridges, veth pairs, sysctls, iptables and aardvark-dns's port 53 are
//! its own), and containers on user networks reach each other through its bridges. It
//! is bind-mounted on a file of the runtime directory in the user's mount namespace (the
//! pause process's), so it lives as long as that namespace does; one whose mount namespace
//! went (the pause process killed) is made anew, and its bridges with it. It has no way
//! out to the host's network: containers on user networks reach each other, not the
//! outside, and publish no ports.

use std::fs::File;
use std::io;
use std::path::PathBuf;

use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::statfs::{statfs, FsType};

use super::namespace::NetNamespace;
use super::HostMounts;

/// The file the namespace is mounted on.
pub fn namespace_file() -> PathBuf {
    super::runtime_dir().join("rootless-netns")
}

/// Whether `path` is a mounted namespace (an empty file once its mount is gone).
fn is_namespace(path: &std::path::Path) -> bool {
    statfs(path).is_ok_and(|fs| fs.filesystem_type() == FsType(libc::NSFS_MAGIC))
}

/// The namespace, opened where it is mounted (the mount namespace lade's next commands
/// see, not this command's private one); `None` when it is not there.
fn open_existing(host_mounts: File) -> io::Result<Option<File>> {
    std::thread::spawn(move || -> io::Result<Option<File>> {
        unshare(CloneFlags::CLONE_FS)?;
        setns(&host_mounts, CloneFlags::CLONE_NEWNS)?;
        let file = namespace_file();
        if !is_namespace(&file) {
            return Ok(None);
        }
        File::open(&file).map(Some)
    })
    .join()
    .map_err(|_| io::Error::other("the mount namespace's thread panicked"))?
}

/// The namespace, made (under its own lock) when no earlier command made it.
fn open(host_mounts: HostMounts) -> io::Result<File> {
    if let Some(namespace) = open_existing(host_mounts()?)? {
        return Ok(namespace);
    }
    let dir = super::runtime_dir();
    super::private_runtime_dir(&dir)?;
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("rootless-netns.lock"))?;
    let _lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| io::Error::from(e))?;
    if let Some(namespace) = open_existing(host_mounts()?)? {
        return Ok(namespace);
    }
    // A file left by a namespace whose mounts went (it is no mount point anywhere now).
    let file = namespace_file();
    match std::fs::remove_file(&file) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let made = NetNamespace::create(&file, host_mounts()?)?;
    bring_loopback_up(&made.path())?;
    File::open(made.path())
}

fn bring_loopback_up(netns: &std::path::Path) -> io::Result<()> {
    let mut inside = super::netlink::Netlink::open_in(netns)?;
    if let Some(lo) = inside.link_index("lo")? {
        inside.set_up(lo)?;
    }
    Ok(())
}

/// Runs `work` in the network namespace the bridge driver is to change: the host's for
/// root, rootless lade's own for an ordinary user (on a thread of its own that joins
/// it, so that the rest of the process, and pasta, keep the host's network; processes
/// `work` starts, aardvark-dns and iptables, are in that namespace too).
pub fn within<T: Send>(host_mounts: HostMounts, work: impl FnOnce() -> T + Send) -> io::Result<T> {
    if !super::is_rootless() {
        return Ok(work());
    }
    let namespace = open(host_mounts)?;
    in_namespace(&namespace, work)
}

/// Runs `work` as [`within`] does, but only where the namespace exists already (rootless
/// lade without one has made no bridges): `None` when it does not.
pub fn within_existing<T: Send>(
    host_mounts: HostMounts,
    work: impl FnOnce() -> T + Send,
) -> io::Result<Option<T>> {
    if !super::is_rootless() {
        return Ok(Some(work()));
    }
    match open_existing(host_mounts()?)? {
        Some(namespace) => in_namespace(&namespace, work).map(Some),
        None => Ok(None),
    }
}

fn in_namespace<T: Send>(namespace: &File, work: impl FnOnce() -> T + Send) -> io::Result<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| -> io::Result<T> {
                setns(namespace, CloneFlags::CLONE_NEWNET)?;
                Ok(work())
            })
            .join()
            .map_err(|_| io::Error::other("the rootless network namespace's thread panicked"))?
    })
}
