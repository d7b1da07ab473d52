//! Persistent network namespaces, as podman keeps them: made before the container
//! starts (the driver configures it, then the container joins it) and bind-mounted on a
//! file under `/run/lade/netns` in the mount namespace lade was started in (not its
//! private one), so that it outlives a
//! monitor killed with -9 and the next lade command can still tear it down. `/run` is
//! a tmpfs: after a reboot none is left.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

/// Where the namespaces' files live.
pub fn namespace_dir() -> PathBuf {
    super::runtime_dir().join("netns")
}

/// The file of a container's namespace.
pub fn namespace_file(container_id: &str) -> PathBuf {
    namespace_dir().join(container_id)
}

/// A network namespace this process holds open.
#[derive(Debug)]
pub struct NetNamespace {
    fd: OwnedFd,
    /// The file it is bind-mounted on.
    pub file: PathBuf,
}

impl NetNamespace {
    /// Makes a new network namespace and mounts it on `file` in `host_mounts` (the
    /// mount namespace lade's next commands see).
    pub fn create(file: &Path, host_mounts: File) -> io::Result<NetNamespace> {
        if let Some(parent) = file.parent() {
            super::private_runtime_dir(parent)?;
        }
        File::create(file)?;
        let target = file.to_path_buf();
        // Namespaces belong to threads: a helper thread takes the new network namespace
        // and, with a file-system context of its own, the host's mount namespace for the
        // bind mount; the rest of the process is untouched.
        let made = std::thread::spawn(move || -> io::Result<OwnedFd> {
            unshare(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_FS)?;
            let namespace: OwnedFd = File::open("/proc/thread-self/ns/net")?.into();
            setns(&host_mounts, CloneFlags::CLONE_NEWNS)?;
            mount(
                Some("/proc/thread-self/ns/net"),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )?;
            Ok(namespace)
        })
        .join()
        .map_err(|_| io::Error::other("the namespace thread panicked"))?;
        match made {
            Ok(fd) => Ok(NetNamespace {
                fd,
                file: file.to_path_buf(),
            }),
            Err(e) => {
                let _ = std::fs::remove_file(file);
                Err(e)
            }
        }
    }

    /// A path to the namespace that works in this process and its children whatever
    /// their mount namespace: the descriptor this process holds.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            self.fd.as_raw_fd()
        ))
    }
}

/// Unmounts and removes a namespace's file (in `host_mounts`, where it was mounted). A
/// file that is not there is not an error.
pub fn remove_namespace(file: &Path, host_mounts: File) -> io::Result<()> {
    if !file.exists() {
        return Ok(());
    }
    let target = file.to_path_buf();
    std::thread::spawn(move || -> io::Result<()> {
        unshare(CloneFlags::CLONE_FS)?;
        setns(&host_mounts, CloneFlags::CLONE_NEWNS)?;
        match umount2(&target, MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
            Err(e) => return Err(e.into()),
        }
        match std::fs::remove_file(&target) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    })
    .join()
    .map_err(|_| io::Error::other("the namespace thread panicked"))?
}
