//! The network of a sandbox: a namespace of its own with loopback up, or one made and
//! configured beforehand (a bridge network's, another container's) joined by the init.

use std::io;
use std::path::{Path, PathBuf};

/// What went wrong with a sandbox's network; the init reports it as its failure.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NetworkSetupError {
    #[error("socket: {0}")]
    Socket(io::Error),
    #[error("bringing up lo: {0}")]
    Loopback(io::Error),
    #[error("the network namespace {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("joining the network namespace {path}: {source}")]
    Join { path: PathBuf, source: nix::Error },
}

/// Brings `lo` up in the current network namespace.
pub(crate) fn loopback_up() -> Result<(), NetworkSetupError> {
    // SAFETY: a plain socket call; the descriptor is closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(NetworkSetupError::Socket(io::Error::last_os_error()));
    }
    // SAFETY: `ifreq` is plain old data; zeroed is a valid value for it.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(b"lo\0") {
        *slot = *byte as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads and writes the `ifreq` we own, for the socket we own.
    let result = unsafe {
        if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut request) < 0 {
            -1
        } else {
            request.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            libc::ioctl(fd, libc::SIOCSIFFLAGS, &request)
        }
    };
    let error = io::Error::last_os_error();
    // SAFETY: closing the descriptor opened above, once.
    unsafe { libc::close(fd) };
    if result < 0 {
        return Err(NetworkSetupError::Loopback(error));
    }
    Ok(())
}

/// Joins the network namespace at `path`.
pub(crate) fn join(path: &Path) -> Result<(), NetworkSetupError> {
    let namespace = std::fs::File::open(path).map_err(|source| NetworkSetupError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    nix::sched::setns(&namespace, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|source| {
        NetworkSetupError::Join {
            path: path.to_path_buf(),
            source,
        }
    })
}
