//! Rootless networking through `slirp4netns`, pasta's older alternative (podman's
//! default before version 5): `--network slirp4netns`, and the fall-back when pasta is
//! not installed, for containers and for rootless lade's own namespace of user networks.
//! slirp4netns stays in the foreground: for a container's network it says it is ready
//! on one pipe and ends when the other closes (held by whoever runs the container, so it
//! also ends when that process is killed), and published ports are added through its API
//! socket; for rootless lade's namespace it runs in a session of its own, with its pid
//! in a file, until it is stopped through that pid.

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
    // The parent's end must not reach the child: slirp4netns would hold its own exit
    // pipe open and never see it close. Both ends are made close-on-exec; the child's
    // is handed on by `launch`.
    let (exit_read, exit_write) = pipe()?;
    let _ = std::fs::remove_file(api_socket);
    let options = [
        format!("--exit-fd={}", exit_read.as_raw_fd()),
        format!("--api-socket={}", api_socket.display()),
    ];
    let log_path = api_socket.with_extension("log");
    let launched = launch(
        namespace,
        host_mounts,
        &options,
        Some(exit_read.as_raw_fd()),
        &log_path,
        false,
    );
    drop(exit_read);
    let child = launched?;
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

/// Connects rootless lade's own namespace, bind-mounted at `namespace` in `host_mounts`,
/// to the host through slirp4netns (pasta's stand-in where pasta is not installed), in
/// a session of its own so that it outlives the command that made it: it runs until it
/// is stopped through its pid, written to `pid_file`. Its addresses are always
/// [`WAY_OUT`]'s.
pub fn start_for_bridges(namespace: &Path, host_mounts: File, pid_file: &Path) -> Result<()> {
    let log_path = pid_file.with_extension("log");
    let mut child = launch(namespace, host_mounts, &[], None, &log_path, true)?;
    if let Err(source) = std::fs::write(pid_file, format!("{}\n", child.id())) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(NetworkError::Io {
            path: pid_file.to_path_buf(),
            source,
        });
    }
    // Reaped when it ends, should this process still run then.
    std::thread::spawn(move || child.wait());
    Ok(())
}

/// The addresses slirp4netns gives a namespace (`--configure`).
pub const WAY_OUT: super::pasta::WayOut = super::pasta::WayOut {
    address: std::net::Ipv4Addr::new(10, 0, 2, 100),
    prefix: 24,
    gateway: std::net::Ipv4Addr::new(10, 0, 2, 2),
    dns: std::net::Ipv4Addr::new(10, 0, 2, 3),
};

/// A pipe whose ends no child inherits, even one another thread starts meanwhile; the
/// end slirp4netns is to have is handed on in its `pre_exec`.
fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| failed(format!("making a pipe: {e}")))
}

/// Starts slirp4netns on `namespace` with `options` (which may name descriptor
/// `handed_on`, kept open across its exec) and waits until it says the namespace is
/// configured; its messages go to `log_path`. `detach` puts it in a session of its own.
fn launch(
    namespace: &Path,
    host_mounts: File,
    options: &[String],
    handed_on: Option<std::os::fd::RawFd>,
    log_path: &Path,
    detach: bool,
) -> Result<Child> {
    use std::os::unix::process::CommandExt;
    let Some(binary) = super::pasta::slirp4netns_binary() else {
        return Err(failed(
            "not installed: rootless networking needs pasta (apt-get install passt) or slirp4netns (apt-get install slirp4netns)",
        ));
    };
    let (ready_read, ready_write) = pipe()?;
    let ready_fd = ready_write.as_raw_fd();
    let mount_namespace = host_mounts.as_raw_fd();
    // Its messages go to a file: a pipe nobody reads would fill up.
    let log = File::create(log_path).map_err(|source| NetworkError::Io {
        path: log_path.to_path_buf(),
        source,
    })?;
    let mut command = Command::new(&binary);
    command
        .args([
            "--configure".to_string(),
            "--mtu=65520".into(),
            "--disable-host-loopback".into(),
            "--netns-type=path".into(),
            format!("--ready-fd={}", ready_write.as_raw_fd()),
        ])
        .args(options)
        .args([namespace.display().to_string(), "tap0".into()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    // SAFETY: fcntl, setns and setsid are plain system calls, async-signal-safe; the
    // descriptors stay open in the parent until the child has been spawned.
    unsafe {
        command.pre_exec(move || {
            for fd in std::iter::once(ready_fd).chain(handed_on) {
                if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if libc::setns(mount_namespace, libc::CLONE_NEWNS) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if detach && libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|source| NetworkError::Io {
        path: binary.clone(),
        source,
    })?;
    drop((ready_write, host_mounts));
    let mut ready = [0u8; 1];
    let configured = File::from(ready_read).read(&mut ready).unwrap_or(0) == 1;
    if !configured {
        let _ = child.kill();
        let _ = child.wait();
        let said = std::fs::read_to_string(log_path).unwrap_or_default();
        return Err(failed(format!("it failed: {}", said.trim())));
    }
    Ok(child)
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
