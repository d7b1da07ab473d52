//! Processes known for sure: a pid with its start time, so that a pid the kernel gave
//! to another process since cannot be mistaken for the one recorded, and signals sent
//! through a pidfd, which cannot reach a process that took a dead one's pid.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;

/// A signal by its number. nix's `Signal` has no real-time signals (`RTMIN+3`), which
/// Docker's `kill -s` and `--stop-signal` accept, so commands carry the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignalNumber(i32);

impl SignalNumber {
    pub const KILL: SignalNumber = SignalNumber(libc::SIGKILL);
    pub const TERM: SignalNumber = SignalNumber(libc::SIGTERM);

    /// The first and last real-time signals as Docker names them (glibc keeps 32 and
    /// 33 for itself; moby/sys/signal counts `RTMIN` from 34 too).
    pub const RTMIN: i32 = 34;
    pub const RTMAX: i32 = 64;

    /// The signal numbered `number`, if Linux has one (1 to 64).
    pub fn new(number: i32) -> Option<SignalNumber> {
        (1..=Self::RTMAX)
            .contains(&number)
            .then_some(SignalNumber(number))
    }

    pub fn number(self) -> i32 {
        self.0
    }
}

impl From<Signal> for SignalNumber {
    fn from(signal: Signal) -> SignalNumber {
        SignalNumber(signal as i32)
    }
}

/// A process: its pid (in lade's pid namespace) and its start time in clock ticks since
/// boot (field 22 of `/proc/<pid>/stat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessId {
    pub pid: i32,
    pub start: u64,
}

/// The start time of `pid`, or `None` when there is no such process or it has exited
/// (a zombie counts as gone).
fn start_time(pid: i32) -> Option<u64> {
    use std::io::Read;
    // `ps` asks this of every container, several times: one open and a read or two
    // into a buffer larger than the file can be (52 numbers and a 16-byte name), where
    // `read_to_string` would stat the file, which tells no size, then read it in growing
    // pieces: ten calls where four do.
    let mut file = std::fs::File::open(format!("/proc/{pid}/stat")).ok()?;
    let mut buf = [0u8; 4096];
    let mut len = 0;
    loop {
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
        if len == buf.len() {
            return None;
        }
    }
    let stat = &buf[..len];
    // The command name may hold spaces, parentheses and bytes that are not UTF-8:
    // fields count from the last ')'.
    let rest = std::str::from_utf8(&stat[stat.iter().rposition(|&b| b == b')')? + 1..]).ok()?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

impl ProcessId {
    /// The process running as `pid` now.
    pub fn of(pid: i32) -> Option<ProcessId> {
        start_time(pid).map(|start| ProcessId { pid, start })
    }

    /// Whether this very process still runs.
    pub fn is_alive(&self) -> bool {
        start_time(self.pid) == Some(self.start)
    }

    /// A pidfd for this process, if it still runs: checked after opening, so the
    /// descriptor cannot name a newer process with the same pid.
    fn pidfd(&self) -> Option<OwnedFd> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, self.pid, 0) };
        if fd < 0 {
            return None;
        }
        // SAFETY: the kernel just returned this descriptor; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        self.is_alive().then_some(fd)
    }

    /// Sends `signal`; false when the process is gone.
    pub fn signal(&self, signal: SignalNumber) -> bool {
        let Some(fd) = self.pidfd() else {
            return false;
        };
        send(&fd, signal)
    }

    /// Kills the process and waits, up to `timeout`, until it has exited. True when it
    /// is gone.
    pub fn kill_and_wait(&self, timeout: Duration) -> bool {
        let Some(fd) = self.pidfd() else {
            return true;
        };
        send(&fd, SignalNumber::KILL);
        exited_within(&fd, timeout) || !self.is_alive()
    }

    /// Waits, up to `timeout`, for the process to exit. True when it is gone.
    pub fn wait_exit(&self, timeout: Duration) -> bool {
        match self.pidfd() {
            Some(fd) => exited_within(&fd, timeout) || !self.is_alive(),
            None => true,
        }
    }
}

/// Whether the pidfd's process exits within `timeout` (a pidfd becomes readable then).
fn exited_within(fd: &OwnedFd, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let millis = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        match poll(&mut fds, PollTimeout::from(millis)) {
            Ok(n) if n > 0 => return true,
            Ok(_) if left.is_zero() || millis < u16::MAX => return false,
            Ok(_) | Err(nix::Error::EINTR) => continue,
            Err(_) => return false,
        }
    }
}

fn send(fd: &OwnedFd, signal: SignalNumber) -> bool {
    // SAFETY: pidfd_send_signal reads the descriptor and the signal number; the info
    // pointer is null, which the kernel accepts.
    let sent = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            signal.number(),
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    sent == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_is_known_by_pid_and_start_time() {
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let id = ProcessId::of(child.id() as i32).expect("the child runs");
        assert!(id.is_alive());
        let impostor = ProcessId {
            start: id.start + 1,
            ..id
        };
        assert!(
            !impostor.is_alive(),
            "another start time is another process"
        );
        assert!(!impostor.signal(SignalNumber::TERM));
        assert!(id.kill_and_wait(Duration::from_secs(10)));
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        assert!(ProcessId::of(child.id() as i32).is_none_or(|p| p != id));
    }
}
