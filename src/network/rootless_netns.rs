//! Rootless lade's network namespace for user networks, as podman 4+ keeps one per
//! user: the bridge driver works in it as it works on the host for root (the user is
//! root there, so bridges, veth pairs, sysctls, iptables and aardvark-dns's port 53 are
//! its own), and containers on user networks reach each other through its bridges. It
//! is bind-mounted on a file of the runtime directory in the user's mount namespace (the
//! pause process's), so it lives as long as that namespace does; one whose mount namespace
//! went (the pause process killed) is made anew, and its bridges with it.
//!
//! Its way out to the host's network is pasta (slirp4netns where pasta is not
//! installed), attached when the namespace is made, as podman 5 does: the bridges'
//! masquerade sends containers' connections out through its interface, and DNS
//! questions to [`WAY_OUT`]'s DNS address are answered by the host's resolver (aardvark-dns
//! forwards there what is no container's name). The helper runs in a session of its
//! own, so that it outlives the command that made it, with its pid in a file beside
//! the namespace's: it lives as long as the namespace. It is stopped when the
//! namespace is made anew or removed (`system migrate`); pasta also quits by itself
//! when the namespace's file goes. A namespace whose helper died (killed) gets a new
//! one at the next command that uses it. The host's loopback stays closed to it (no
//! gateway mapped there). Published ports come in through lade's own forwarder
//! (`forward`), which connects to containers from inside this namespace.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::statfs::{statfs, FsType};

use super::namespace::NetNamespace;
use super::{HostMounts, NetworkError, Result};

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

/// The addresses the namespace gets from its way out: slirp4netns's own, which pasta
/// is told to give too, so that both answer DNS at the same address and neither takes
/// the host's addresses (which stay the host's, reached through the helper).
pub const WAY_OUT: super::pasta::WayOut = super::slirp::WAY_OUT;

/// The file with the pid of the namespace's way out (pasta or slirp4netns).
fn helper_pid_file() -> PathBuf {
    super::runtime_dir().join("rootless-netns.pid")
}

fn lock_file() -> Result<nix::fcntl::Flock<File>> {
    let dir = super::runtime_dir();
    let path = dir.join("rootless-netns.lock");
    let failed = |source: io::Error| NetworkError::Io {
        path: path.clone(),
        source,
    };
    super::private_runtime_dir(&dir).map_err(failed)?;
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(failed)?;
    nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| failed(io::Error::from(e)))
}

fn io_error(source: io::Error) -> NetworkError {
    NetworkError::Io {
        path: namespace_file(),
        source,
    }
}

/// The namespace, made (under its own lock) when no earlier command made it, with its
/// way out running.
fn open(host_mounts: HostMounts) -> Result<File> {
    let host = || host_mounts().map_err(io_error);
    if let Some(namespace) = open_existing(host()?).map_err(io_error)? {
        if super::pasta::running_helper(&helper_pid_file()).is_some() {
            return Ok(namespace);
        }
    }
    let _lock = lock_file()?;
    let file = namespace_file();
    if let Some(namespace) = open_existing(host()?).map_err(io_error)? {
        if super::pasta::running_helper(&helper_pid_file()).is_none() {
            connect_out(&file, host()?)?;
        }
        return Ok(namespace);
    }
    // The helper of a namespace whose mounts went, which holds it still.
    super::pasta::stop(&helper_pid_file());
    // A file left by a namespace whose mounts went (it is no mount point anywhere now).
    match std::fs::remove_file(&file) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_error(e)),
        _ => {}
    }
    let made = NetNamespace::create(&file, host()?).map_err(io_error)?;
    let connected = bring_loopback_up(&made.path())
        .map_err(io_error)
        .and_then(|()| connect_out(&file, host()?))
        .and_then(|()| File::open(made.path()).map_err(io_error));
    if connected.is_err() {
        super::pasta::stop(&helper_pid_file());
        if let Ok(host) = host_mounts() {
            let _ = super::remove_namespace(&file, host);
        }
    }
    connected
}

/// Attaches the way out to the namespace mounted at `file`: pasta, or slirp4netns where
/// pasta is not installed.
fn connect_out(file: &Path, host_mounts: File) -> Result<()> {
    let pid_file = helper_pid_file();
    // A helper killed a moment ago may still hold its tap device's name.
    super::pasta::wait_for_exiting_helper(&pid_file);
    let _ = std::fs::remove_file(&pid_file);
    if super::pasta::pasta_binary().is_none() && super::pasta::slirp4netns_binary().is_some() {
        super::slirp::start_for_bridges(file, host_mounts, &pid_file)
    } else {
        super::pasta::start_for_bridges(file, host_mounts, &WAY_OUT, &pid_file)
    }
}

/// Removes the namespace and stops its way out (`system migrate`): the next command
/// that needs it makes a new one. Nothing to do for root, or when there is none.
pub fn remove(host_mounts: HostMounts) -> Result<()> {
    if !super::is_rootless() {
        return Ok(());
    }
    let _lock = lock_file()?;
    super::pasta::stop(&helper_pid_file());
    let host = host_mounts().map_err(io_error)?;
    super::remove_namespace(&namespace_file(), host).map_err(io_error)
}

/// A descriptor of the namespace when it exists (rootless lade's forwarder connects to
/// containers from inside it).
pub fn existing(host_mounts: HostMounts) -> Result<Option<File>> {
    open_existing(host_mounts().map_err(io_error)?).map_err(io_error)
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
pub fn within<T: Send>(host_mounts: HostMounts, work: impl FnOnce() -> T + Send) -> Result<T> {
    if !super::is_rootless() {
        return Ok(work());
    }
    let namespace = open(host_mounts)?;
    in_namespace(&namespace, work).map_err(io_error)
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
