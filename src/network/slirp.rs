//! Rootless networking through `slirp4netns`, pasta's older alternative (podman's
//! default before version 5): `--network slirp4netns`, and the fall-back when pasta is
//! not installed. slirp4netns stays in the foreground for as long as the container's
//! network lives: it says it is ready on one pipe and ends when the other closes (held by
//! whoever runs the container, so it also ends when that process is killed). Published
//! ports are added through its API socket.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::{NetworkError, PortMapping, Result};

/// The address slirp4netns gives the container, where published ports go.
const GUEST_ADDRESS: &str = "10.0.2.100";

/// The DNS server slirp4netns answers on inside the container.
pub const DNS_SERVER: &str = "10.0.2.3";

/// A running slirp4netns: it ends when this is dropped.
#[derive(Debug)]
pub struct Slirp {
    child: Child,
    /// Closing it tells slirp4netns to end.
    exit: Option<OwnedFd>,
    api_socket: PathBuf,
}

impl Drop for Slirp {
    fn drop(&mut self) {
        drop(self.exit.take());
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.api_socket);
    }
}

fn failed(detail: impl Into<String>) -> NetworkError {
    NetworkError::Pasta(format!("slirp4netns: {}", detail.into()))
}

/// Connects the network namespace bind-mounted at `namespace` (in `host_mounts`) to the
/// host through slirp4netns and publishes `ports`; returns once it is configured.
pub fn start(
    namespace: &Path,
    host_mounts: File,
    ports: &[PortMapping],
    api_socket: &Path,
) -> Result<Slirp> {
    use std::os::unix::process::CommandExt;
    let Some(binary) = super::pasta::slirp4netns_binary() else {
        return Err(failed(
            "not installed: rootless networking needs pasta (apt-get install passt) or slirp4netns (apt-get install slirp4netns)",
        ));
    };
    let pipe = || nix::unistd::pipe().map_err(|e| failed(format!("making a pipe: {e}")));
    let (ready_read, ready_write) = pipe()?;
    let (exit_read, exit_write) = pipe()?;
    let _ = std::fs::remove_file(api_socket);
    let mount_namespace = host_mounts.as_raw_fd();
    let (ready_fd, exit_fd) = (ready_write.as_raw_fd(), exit_read.as_raw_fd());
    // The parent's ends must not reach the child: slirp4netns would hold its own exit
    // pipe open and never see it close.
    for kept in [&ready_read, &exit_write] {
        nix::fcntl::fcntl(
            kept,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .map_err(|e| failed(format!("{e}")))?;
    }
    // Its messages go to a file beside the socket: a pipe nobody reads would fill up.
    let log_path = api_socket.with_extension("log");
    let log = File::create(&log_path).map_err(|source| NetworkError::Io {
        path: log_path.clone(),
        source,
    })?;
    let mut command = Command::new(&binary);
    command
        .args([
            "--configure".to_string(),
            "--mtu=65520".into(),
            "--disable-host-loopback".into(),
            "--netns-type=path".into(),
            format!("--ready-fd={ready_fd}"),
            format!("--exit-fd={exit_fd}"),
            format!("--api-socket={}", api_socket.display()),
            namespace.display().to_string(),
            "tap0".into(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    // SAFETY: setns is a plain system call, async-signal-safe; the descriptors stay open
    // in the parent until the child has been spawned.
    unsafe {
        command.pre_exec(move || {
            if libc::setns(mount_namespace, libc::CLONE_NEWNS) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|source| NetworkError::Io {
        path: binary.clone(),
        source,
    })?;
    drop((ready_write, exit_read, host_mounts));
    let mut ready = [0u8; 1];
    let configured = File::from(ready_read).read(&mut ready).unwrap_or(0) == 1;
    if !configured {
        drop(exit_write);
        let _ = child.wait();
        let said = std::fs::read_to_string(&log_path).unwrap_or_default();
        return Err(failed(format!("it failed: {}", said.trim())));
    }
    let slirp = Slirp {
        child,
        exit: Some(exit_write),
        api_socket: api_socket.to_path_buf(),
    };
    for mapping in ports {
        for offset in 0..mapping.range {
            add_port(api_socket, mapping, offset)?;
        }
    }
    Ok(slirp)
}

/// Publishes one port through slirp4netns's API socket.
fn add_port(api_socket: &Path, mapping: &PortMapping, offset: u16) -> Result<()> {
    let host_address = if mapping.host_ip.is_empty() {
        "0.0.0.0"
    } else {
        mapping.host_ip.as_str()
    };
    let request = serde_json::json!({
        "execute": "add_hostfwd",
        "arguments": {
            "proto": mapping.protocol,
            "host_addr": host_address,
            "host_port": mapping.host_port + offset,
            "guest_addr": GUEST_ADDRESS,
            "guest_port": mapping.container_port + offset,
        }
    });
    let mut stream =
        UnixStream::connect(api_socket).map_err(|e| failed(format!("its API socket: {e}")))?;
    stream
        .write_all(request.to_string().as_bytes())
        .and_then(|()| stream.shutdown(std::net::Shutdown::Write))
        .map_err(|e| failed(format!("its API socket: {e}")))?;
    let mut answer = String::new();
    BufReader::new(stream)
        .read_line(&mut answer)
        .map_err(|e| failed(format!("its API socket: {e}")))?;
    if answer.contains("\"error\"") {
        return Err(failed(format!(
            "cannot publish {host_address}:{}: {}",
            mapping.host_port + offset,
            answer.trim()
        )));
    }
    Ok(())
}
