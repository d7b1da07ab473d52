//! aardvark-dns, which answers container names on user networks, driven as netavark
//! 1.4 drives it: a file per network in its config directory (named after the network's
//! bridge, unique on the host), with the gateway on its first line and a line per
//! container (`ID IPV4S IPV6S NAMES[ DNS_SERVERS]`); SIGHUP when they change; started
//! with `--config DIR -p 53 run` when it does not run (it forks its server, writes its
//! pid file, and its first process returns). It exits by itself once no file is left.
//! lade starts it itself, never through systemd-run.

use std::fs;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::DnsError;

/// aardvark-dns and its files.
#[derive(Debug, Clone)]
pub struct Aardvark {
    binary: PathBuf,
    /// Its `--config`.
    dir: PathBuf,
}

/// One container on one network, as aardvark-dns reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The network's name in aardvark-dns's directory (its bridge).
    pub network: &'a str,
    pub gateway: Ipv4Addr,
    pub container_id: &'a str,
    pub ip: Ipv4Addr,
    /// The container's name and its aliases.
    pub names: Vec<&'a str>,
    /// `--dns`: where it forwards the container's other questions.
    pub dns_servers: &'a [Ipv4Addr],
}

fn join<T: ToString>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// A network file's first line.
fn header_line(gateway: Ipv4Addr) -> String {
    format!("{gateway}\n")
}

/// A container's line (no IPv6 address: an empty third field).
fn entry_line(entry: &Entry) -> String {
    let servers = if entry.dns_servers.is_empty() {
        String::new()
    } else {
        format!(" {}", join(entry.dns_servers))
    };
    format!(
        "{} {} {} {}{servers}\n",
        entry.container_id,
        entry.ip,
        "",
        entry.names.join(",")
    )
}

/// A network file without the container `id`'s lines; `None` when only its first line
/// is left (the file goes).
fn without_container(text: &str, id: &str) -> Option<String> {
    let mut lines = text.lines();
    let header = lines.next()?;
    let kept: Vec<&str> = lines
        .filter(|line| line.split(' ').next() != Some(id) && !line.is_empty())
        .collect();
    if kept.is_empty() {
        return None;
    }
    Some(format!("{header}\n{}\n", kept.join("\n")))
}

/// Where podman's helpers are: Debian's, and the other usual places.
const HELPER_DIRS: [&str; 4] = [
    "/usr/lib/podman",
    "/usr/libexec/podman",
    "/usr/local/libexec/podman",
    "/usr/local/lib/podman",
];

impl Aardvark {
    /// aardvark-dns as `$LADE_AARDVARK_DNS` names it, else in podman's helper
    /// directories or on `$PATH`; its files in `dir`.
    pub fn locate(dir: PathBuf) -> Aardvark {
        let binary = std::env::var_os("LADE_AARDVARK_DNS")
            .map(PathBuf::from)
            .or_else(|| {
                let path_dirs = std::env::var_os("PATH")
                    .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
                    .unwrap_or_default();
                HELPER_DIRS
                    .iter()
                    .map(PathBuf::from)
                    .chain(path_dirs)
                    .map(|dir| dir.join("aardvark-dns"))
                    .find(|candidate| candidate.is_file())
            })
            .unwrap_or_else(|| PathBuf::from("/usr/lib/podman/aardvark-dns"));
        Aardvark { binary, dir }
    }

    pub fn binary(&self) -> &Path {
        &self.binary
    }

    fn io_error(&self, path: &Path, source: io::Error) -> io::Error {
        io::Error::new(source.kind(), format!("{}: {source}", path.display()))
    }

    /// netavark's lock on the files, beside their directory.
    fn lock(&self) -> io::Result<nix::fcntl::Flock<fs::File>> {
        fs::create_dir_all(&self.dir).map_err(|e| self.io_error(&self.dir, e))?;
        let path = self.dir.parent().unwrap_or(&self.dir).join("aardvark.lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| self.io_error(&path, e))?;
        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| self.io_error(&path, e.into()))
    }

    /// Writes the entries (each network's file made with its gateway line if new).
    pub fn add(&self, entries: &[Entry]) -> io::Result<()> {
        let _lock = self.lock()?;
        for entry in entries {
            let path = self.dir.join(entry.network);
            let mut text = match fs::read_to_string(&path) {
                Ok(text) => without_container(&text, entry.container_id)
                    .unwrap_or_else(|| header_line(entry.gateway)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => header_line(entry.gateway),
                Err(e) => return Err(self.io_error(&path, e)),
            };
            text.push_str(&entry_line(entry));
            fs::write(&path, text).map_err(|e| self.io_error(&path, e))?;
        }
        Ok(())
    }

    /// Removes the container's entries on `networks`; says whether any was there.
    pub fn remove(&self, container_id: &str, networks: &[&str]) -> io::Result<bool> {
        let _lock = self.lock()?;
        let mut changed = false;
        for network in networks {
            let path = self.dir.join(network);
            let text = match fs::read_to_string(&path) {
                Ok(text) => text,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(self.io_error(&path, e)),
            };
            let written = match without_container(&text, container_id) {
                Some(rest) if rest == text => continue,
                Some(rest) => fs::write(&path, rest),
                None => fs::remove_file(&path),
            };
            written.map_err(|e| self.io_error(&path, e))?;
            changed = true;
        }
        Ok(changed)
    }

    /// The running aardvark-dns (the one in its pid file).
    fn pid(&self) -> Option<i32> {
        fs::read_to_string(self.dir.join("aardvark.pid"))
            .ok()
            .and_then(|pid| pid.trim().parse::<i32>().ok())
            .filter(|pid| {
                fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|comm| comm.trim_end() == "aardvark-dns")
            })
    }

    /// A pidfd for the running aardvark-dns, checked after it is opened, so that it
    /// cannot name a newer process that took its pid.
    pub fn process(&self) -> Option<OwnedFd> {
        let pid = self.pid()?;
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            return None;
        }
        // SAFETY: the kernel just returned this descriptor; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        (self.pid() == Some(pid)).then_some(fd)
    }

    /// Whether it has names to answer: a file per network, beside its pid.
    pub fn has_names(&self) -> bool {
        fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .any(|e| e.file_name() != "aardvark.pid")
            })
            .unwrap_or(false)
    }

    /// Tells a running aardvark-dns to read its files again; says whether one ran.
    pub fn reload(&self) -> bool {
        match self.pid() {
            Some(pid) => nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGHUP,
            )
            .is_ok(),
            None => false,
        }
    }

    /// Tells aardvark-dns of new files, starting it when it does not run; says why it
    /// cannot.
    pub fn reload_or_start(&self) -> Result<(), DnsError> {
        if self.reload() {
            return Ok(());
        }
        let path = self.binary.clone();
        if !path.is_file() {
            return Err(DnsError::NotInstalled { path });
        }
        // aardvark-dns forks its server, which lets go of our pipes before its parent
        // returns, once its pid file is written.
        let output = Command::new(&path)
            .arg("--config")
            .arg(&self.dir)
            .args(["-p", "53", "run"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|source| DnsError::CannotRun {
                path: path.clone(),
                source,
            })?;
        if !output.status.success() {
            return Err(DnsError::Failed {
                path,
                status: output.status,
                said: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        if self.pid().is_none() {
            return Err(DnsError::NotRunning {
                path,
                pid_file: self.dir.join("aardvark.pid"),
            });
        }
        Ok(())
    }

    /// Stops a running aardvark-dns and waits for it (`system reset`).
    pub fn stop(&self) {
        if let (Some(process), Some(pid)) = (self.process(), self.pid()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
            exits_within(&process, AARDVARK_EXIT);
        }
    }
}

/// How long aardvark-dns is given to leave once it has no names to answer.
pub const AARDVARK_EXIT: Duration = Duration::from_secs(10);

/// Whether the pidfd's process exits within `timeout` (a pidfd becomes readable then).
pub fn exits_within(process: &OwnedFd, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut fds = [PollFd::new(process.as_fd(), PollFlags::POLLIN)];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let millis = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        match poll(&mut fds, PollTimeout::from(millis)) {
            Ok(n) if n > 0 => return true,
            Ok(_) if left.is_zero() || millis < u16::MAX => return false,
            Ok(_) | Err(nix::Error::EINTR) => continue,
            Err(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_written_as_aardvark_dns_1_4_reads_them() {
        let servers = [Ipv4Addr::new(9, 9, 9, 9), Ipv4Addr::new(1, 1, 1, 1)];
        let entry = Entry {
            network: "lade2",
            gateway: Ipv4Addr::new(10, 89, 2, 1),
            container_id: "abc",
            ip: Ipv4Addr::new(10, 89, 2, 2),
            names: vec!["web", "svc", "abc"],
            dns_servers: &[],
        };
        assert_eq!(header_line(entry.gateway), "10.89.2.1\n");
        assert_eq!(entry_line(&entry), "abc 10.89.2.2  web,svc,abc\n");
        let forwarded = Entry {
            dns_servers: &servers,
            ..entry
        };
        assert_eq!(
            entry_line(&forwarded),
            "abc 10.89.2.2  web,svc,abc 9.9.9.9,1.1.1.1\n"
        );
    }

    #[test]
    fn a_container_leaves_its_lines_and_an_empty_file_goes() {
        let text = "10.89.2.1\nabc 10.89.2.2  web\nabcd 10.89.2.3  db\n";
        assert_eq!(
            without_container(text, "abc").as_deref(),
            Some("10.89.2.1\nabcd 10.89.2.3  db\n")
        );
        assert_eq!(
            without_container("10.89.2.1\nabc 10.89.2.2  web\n", "abc"),
            None
        );
        assert_eq!(without_container(text, "xyz").as_deref(), Some(text));
    }

    #[test]
    fn entries_are_added_and_removed_in_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let aardvark = Aardvark {
            binary: "/nonexistent".into(),
            dir: dir.path().join("aardvark-dns"),
        };
        let entry = Entry {
            network: "lade7",
            gateway: Ipv4Addr::new(10, 89, 7, 1),
            container_id: "c1",
            ip: Ipv4Addr::new(10, 89, 7, 2),
            names: vec!["one"],
            dns_servers: &[],
        };
        aardvark.add(std::slice::from_ref(&entry)).unwrap();
        aardvark
            .add(&[Entry {
                container_id: "c2",
                ip: Ipv4Addr::new(10, 89, 7, 3),
                names: vec!["two"],
                ..entry
            }])
            .unwrap();
        let file = dir.path().join("aardvark-dns/lade7");
        assert_eq!(
            fs::read_to_string(&file).unwrap(),
            "10.89.7.1\nc1 10.89.7.2  one\nc2 10.89.7.3  two\n"
        );
        assert!(aardvark.has_names());
        assert!(aardvark.remove("c1", &["lade7"]).unwrap());
        assert!(!aardvark.remove("c1", &["lade7"]).unwrap());
        assert!(aardvark.remove("c2", &["lade7"]).unwrap());
        assert!(!file.exists());
        assert!(!aardvark.has_names());
    }
}
