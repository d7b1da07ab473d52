//! Rootless networking through `pasta` (Debian's `passt`), as podman 5 does by default:
//! an ordinary user cannot make bridges or firewall rules, so a container's network
//! namespace gets a tap device that pasta, a process of the user's, connects to the
//! host's own sockets. Outbound connections become the user's; published ports are
//! sockets pasta listens on in the host's namespace. pasta forks into the background
//! once the namespace is configured (its exit is the handshake), writes its pid to a
//! file, and is stopped through that file when the container ends (it also quits by
//! itself when the namespace goes). pasta is also the way out of rootless lade's own
//! namespace for user networks (`rootless_netns`), with addresses of its own there.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{NetworkError, PortMapping, Result};

/// pasta on `PATH`, when installed.
pub fn pasta_binary() -> Option<PathBuf> {
    find_on_path("pasta")
}

/// `slirp4netns` on `PATH`, when installed.
pub fn slirp4netns_binary() -> Option<PathBuf> {
    find_on_path("slirp4netns")
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The lowest port an ordinary user may bind (`net.ipv4.ip_unprivileged_port_start`).
pub fn unprivileged_port_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(1024)
}

/// Refuses published host ports an ordinary user may not bind, and protocols rootless
/// networking does not carry.
pub fn check_rootless_ports(ports: &[PortMapping]) -> Result<()> {
    let lowest = unprivileged_port_start();
    for mapping in ports {
        if mapping.protocol == "sctp" {
            return Err(NetworkError::Publish {
                text: format!("{}/sctp", mapping.container_port),
                reason: "rootless lade forwards tcp and udp only (its user-mode networking carries no sctp)".into(),
            });
        }
        if mapping.host_port != 0 && mapping.host_port < lowest {
            return Err(NetworkError::Publish {
                text: format!("{}:{}", mapping.host_port, mapping.container_port),
                reason: format!(
                    "host ports below {lowest} need root (net.ipv4.ip_unprivileged_port_start is {lowest}; lower it with `sysctl net.ipv4.ip_unprivileged_port_start=PORT` as root, or publish a higher port)"
                ),
            });
        }
    }
    Ok(())
}

/// pasta's spelling of one `-p`: `[ADDRESS/]HOST[-END]:CONTAINER[-END]`.
fn port_spec(mapping: &PortMapping) -> String {
    let span = |first: u16| {
        if mapping.range > 1 {
            format!("{first}-{}", first + (mapping.range - 1))
        } else {
            first.to_string()
        }
    };
    let address = if mapping.host_ip.is_empty() {
        String::new()
    } else {
        format!("{}/", mapping.host_ip)
    };
    format!(
        "{address}{}:{}",
        span(mapping.host_port),
        span(mapping.container_port)
    )
}

/// pasta's arguments for the namespace at `namespace` with `ports` published (their
/// host ports chosen already), its pid written to `pid_file`.
fn arguments(namespace: &Path, ports: &[PortMapping], pid_file: &Path) -> Vec<String> {
    let mut args: Vec<String> = vec!["--config-net".into(), "--quiet".into()];
    for (flag, protocol) in [("-t", "tcp"), ("-u", "udp")] {
        let chosen: Vec<_> = ports.iter().filter(|p| p.protocol == protocol).collect();
        if chosen.is_empty() {
            args.extend([flag.to_string(), "none".into()]);
        }
        for mapping in chosen {
            args.extend([flag.to_string(), port_spec(mapping)]);
        }
    }
    closed_and_placed(&mut args, namespace, pid_file);
    args
}

/// What every pasta of lade's is given last: no ports of the host forwarded into the
/// namespace unasked, the gateway's address not the host's loopback (pasta's default
/// maps it there, which would open services bound to 127.0.0.1 to every container;
/// podman turns it off too, as slirp4netns's --disable-host-loopback does), its pid
/// file and its namespace.
fn closed_and_placed(args: &mut Vec<String>, namespace: &Path, pid_file: &Path) {
    args.extend(["-T", "none", "-U", "none", "--no-map-gw"].map(String::from));
    args.extend([
        "--pid".into(),
        pid_file.display().to_string(),
        "--netns".into(),
        namespace.display().to_string(),
    ]);
}

/// pasta's arguments for rootless lade's own namespace (`rootless_netns`), the way out of
/// its bridges: addresses of its own rather than copies of the host's (so that the host's
/// addresses are the host's from there too, reached through pasta as slirp4netns's are),
/// DNS questions to `dns` answered by the host's resolver, no ports forwarded either way
/// (published ports come through lade's own forwarder), and the gateway kept off the
/// host's loopback as for containers.
fn bridges_arguments(namespace: &Path, way_out: &WayOut, pid_file: &Path) -> Vec<String> {
    let mut args: Vec<String> = vec!["--config-net".into(), "--quiet".into()];
    args.extend([
        "-a".into(),
        way_out.address.to_string(),
        "-n".into(),
        way_out.prefix.to_string(),
        "-g".into(),
        way_out.gateway.to_string(),
        "--dns-forward".into(),
        way_out.dns.to_string(),
    ]);
    args.extend(["-t", "none", "-u", "none"].map(String::from));
    closed_and_placed(&mut args, namespace, pid_file);
    args
}

/// The addresses a namespace's way out gives it: its own, its gateway's, and where DNS
/// questions are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WayOut {
    pub address: std::net::Ipv4Addr,
    pub prefix: u8,
    pub gateway: std::net::Ipv4Addr,
    pub dns: std::net::Ipv4Addr,
}

/// Connects the network namespace bind-mounted at `namespace` (in `host_mounts`, the
/// mount namespace lade's commands share) to the host through pasta, publishing
/// `ports`; returns once pasta has configured it and gone to the background. pasta runs
/// in `host_mounts`, where the file is the namespace (and where it sees the file go).
pub fn start(
    namespace: &Path,
    host_mounts: std::fs::File,
    ports: &[PortMapping],
    pid_file: &Path,
) -> Result<()> {
    run_pasta(arguments(namespace, ports, pid_file), host_mounts)
}

/// Connects rootless lade's own namespace, bind-mounted at `namespace` in `host_mounts`,
/// to the host through pasta with `way_out`'s addresses; returns once pasta has
/// configured it and gone to the background (its pid in `pid_file`). It lives until it
/// is stopped or the file is removed (pasta watches it).
pub fn start_for_bridges(
    namespace: &Path,
    host_mounts: std::fs::File,
    way_out: &WayOut,
    pid_file: &Path,
) -> Result<()> {
    run_pasta(bridges_arguments(namespace, way_out, pid_file), host_mounts)
}

fn run_pasta(args: Vec<String>, host_mounts: std::fs::File) -> Result<()> {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let Some(pasta) = pasta_binary() else {
        return Err(NetworkError::Pasta(
            "pasta is not installed: rootless networking needs it (apt-get install passt), or run with --network none or --network host".into(),
        ));
    };
    let mount_namespace = host_mounts.as_raw_fd();
    let mut command = Command::new(&pasta);
    command.args(args).stdin(std::process::Stdio::null());
    // SAFETY: setns is a plain system call, async-signal-safe; the descriptor stays open
    // in the parent until the child has been spawned.
    unsafe {
        command.pre_exec(move || {
            if libc::setns(mount_namespace, libc::CLONE_NEWNS) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let output = command.output().map_err(|source| NetworkError::Io {
        path: pasta.clone(),
        source,
    })?;
    drop(host_mounts);
    if output.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&output.stderr).trim().to_string();
    let hint = if said.contains("/dev/net/tun") {
        " (/dev/net/tun must be open to users, mode 0666 as Debian's udev makes it: `chmod 0666 /dev/net/tun` as root)"
    } else {
        ""
    };
    Err(NetworkError::Pasta(format!("pasta failed: {said}{hint}")))
}

/// The names a helper process of rootless networking goes by in `/proc/PID/comm`.
const HELPER_NAMES: [&str; 5] = ["pasta", "passt", "pasta.avx2", "passt.avx2", "slirp4netns"];

/// The helper (pasta or slirp4netns) whose pid is in `pid_file`, while it runs: one that
/// has begun to exit (killed) is no helper any more, although its files, its tap device
/// among them, may not be closed yet ([`wait_for_exiting_helper`]).
pub fn running_helper(pid_file: &Path) -> Option<i32> {
    let pid = helper_pid(pid_file)?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    (!is_exiting(&stat)).then_some(pid)
}

/// The pid in `pid_file`, when that process goes by a helper's name and its command
/// line names a file of the pid file's directory (pasta's `--pid` and `--netns`,
/// slirp4netns's namespace): a pid file left by a helper killed long ago may name
/// another program's pasta by now, which must not be stopped.
fn helper_pid(pid_file: &Path) -> Option<i32> {
    let pid = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|text| text.trim().parse::<i32>().ok())?;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    if !HELPER_NAMES.contains(&comm.trim()) {
        return None;
    }
    let directory = pid_file.parent()?.as_os_str().as_encoded_bytes();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    cmdline
        .split(|byte| *byte == 0)
        .any(|argument| argument.starts_with(directory))
        .then_some(pid)
}

/// Whether the process whose `/proc/PID/stat` is `stat` is exiting or has exited: a
/// zombie (or dead), or with the kernel's `PF_EXITING` among its flags (the ninth field),
/// which it gets as it starts to exit, before it closes its files.
fn is_exiting(stat: &str) -> bool {
    const PF_EXITING: u64 = 0x4;
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return true;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let dead = matches!(fields.first(), Some(&("Z" | "X" | "x")));
    let flags = fields
        .get(6)
        .and_then(|f| f.parse::<u64>().ok())
        .unwrap_or(0);
    dead || flags & PF_EXITING != 0
}

/// Waits (up to five seconds) for the helper in `pid_file` to finish exiting when it is
/// on its way out, so that its tap device and its pid file are gone before a new helper
/// takes their names; returns at once when none is exiting.
pub fn wait_for_exiting_helper(pid_file: &Path) {
    let Some(pid) = helper_pid(pid_file) else {
        return;
    };
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return;
    }
    // SAFETY: the kernel just returned this descriptor; nothing else owns it.
    let pidfd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
    // Checked once the descriptor is held: the pid cannot have passed to another
    // process since, so it names the helper.
    if helper_pid(pid_file) != Some(pid) {
        return;
    }
    let mut fds = [nix::poll::PollFd::new(
        std::os::fd::AsFd::as_fd(&pidfd),
        nix::poll::PollFlags::POLLIN,
    )];
    let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(5000u16));
}

/// Stops the pasta (or slirp4netns) whose pid is in `pid_file` (if it still runs) and
/// removes the file.
pub fn stop(pid_file: &Path) {
    if let Some(pid) = running_helper(pid_file) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    let _ = std::fs::remove_file(pid_file);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_exiting_or_dead_is_told_from_its_stat() {
        let running = "4720 (passt.avx2) S 1 4720 4720 0 -1 4194368 137 0 0 0";
        let exiting = "4720 (passt.avx2) R 1 4720 4720 0 -1 4194372 137 0 0 0";
        let zombie = "4720 (passt.avx2) Z 1 4720 4720 0 -1 4227076 137 0 0 0";
        assert!(!is_exiting(running));
        assert!(is_exiting(exiting));
        assert!(is_exiting(zombie));
        assert!(is_exiting(""));
        // This process runs.
        let own = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert!(!is_exiting(&own));
    }

    fn mapping(
        host_ip: &str,
        host: u16,
        container: u16,
        protocol: &str,
        range: u16,
    ) -> PortMapping {
        PortMapping {
            container_port: container,
            host_ip: host_ip.into(),
            host_port: host,
            protocol: protocol.into(),
            range,
        }
    }

    #[test]
    fn ports_are_spelled_as_pasta_reads_them() {
        assert_eq!(port_spec(&mapping("", 8080, 80, "tcp", 1)), "8080:80");
        assert_eq!(
            port_spec(&mapping("127.0.0.1", 9000, 90, "tcp", 3)),
            "127.0.0.1/9000-9002:90-92"
        );
        let args = arguments(
            Path::new("/run/n"),
            &[mapping("", 8080, 80, "tcp", 1)],
            Path::new("/run/p"),
        );
        let joined = args.join(" ");
        assert!(joined.contains("-t 8080:80"), "{joined}");
        assert!(joined.contains("-u none"), "{joined}");
        assert!(joined.contains("--no-map-gw"), "{joined}");
        assert!(joined.ends_with("--pid /run/p --netns /run/n"), "{joined}");
    }

    #[test]
    fn privileged_host_ports_are_refused_with_the_sysctl_named() {
        let lowest = unprivileged_port_start();
        if lowest == 0 {
            return;
        }
        let err = check_rootless_ports(&[mapping("", lowest - 1, 80, "tcp", 1)]).unwrap_err();
        assert!(
            err.to_string()
                .contains("net.ipv4.ip_unprivileged_port_start"),
            "{err}"
        );
        assert!(check_rootless_ports(&[mapping("", 0, 80, "tcp", 1)]).is_ok());
    }
}
