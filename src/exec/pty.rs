//! Terminals for `-t`: a pty whose secondary side is the container's stdio, the host
//! terminal in raw mode while the container runs, bytes copied both ways, and the
//! window size kept in step.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::pty::Winsize;
use nix::sys::termios::{self, SetArg, Termios};

/// Makes a pty in the current mount namespace (the container's devpts): returns the
/// main side and the path of the secondary side.
pub(crate) fn open_inside() -> io::Result<(OwnedFd, std::path::PathBuf)> {
    use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
    let master = posix_openpt(
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_NOCTTY | nix::fcntl::OFlag::O_CLOEXEC,
    )
    .map_err(io::Error::from)?;
    grantpt(&master).map_err(io::Error::from)?;
    unlockpt(&master).map_err(io::Error::from)?;
    let name = ptsname_r(&master).map_err(io::Error::from)?;
    Ok((OwnedFd::from(master), name.into()))
}

fn window_size(fd: BorrowedFd<'_>) -> Option<Winsize> {
    let mut size = Winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ fills the `Winsize` we own; the descriptor is borrowed and live.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut size) };
    (rc == 0 && size.ws_row > 0).then_some(size)
}

/// A terminal's size (rows, columns), when `fd` is one.
pub fn terminal_size(fd: BorrowedFd<'_>) -> Option<(u16, u16)> {
    window_size(fd).map(|size| (size.ws_row, size.ws_col))
}

/// Sets a pty's window size (an attached client's terminal).
pub fn set_terminal_size(master: BorrowedFd<'_>, rows: u16, columns: u16) {
    let size = Winsize {
        ws_row: rows,
        ws_col: columns,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads the `Winsize` we own; the descriptor is borrowed and live.
    unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
}

/// Copies the host terminal's size to the pty.
pub(crate) fn resize(master: BorrowedFd<'_>) {
    if let Some(size) = window_size(io::stdout().as_fd()) {
        // SAFETY: TIOCSWINSZ reads the `Winsize` we own; the descriptor is live.
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
    }
}

/// Puts the host terminal in raw mode until dropped.
pub struct RawMode {
    saved: Option<Termios>,
}

impl RawMode {
    pub fn enter() -> RawMode {
        let stdin = io::stdin();
        let Ok(saved) = termios::tcgetattr(stdin.as_fd()) else {
            return RawMode { saved: None };
        };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        RawMode { saved: Some(saved) }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = termios::tcsetattr(io::stdin().as_fd(), SetArg::TCSANOW, saved);
        }
    }
}

/// Copies the pty's output to our stdout (or to `sink`) until it closes; our stdin to
/// the pty in the background. Returns when the container's side is closed.
pub(crate) fn relay(master: OwnedFd, forward_stdin: bool, mut sink: Option<super::StreamSink>) {
    let master = File::from(master);
    if forward_stdin {
        if let Ok(mut to_container) = master.try_clone() {
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut stdin = io::stdin();
                while let Ok(n) = stdin.read(&mut buf) {
                    if n == 0 || to_container.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    }
    let mut from_container = master;
    let mut stdout = io::stdout();
    let mut buf = [0u8; 8192];
    loop {
        match from_container.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if let Some(sink) = &mut sink {
                    sink(super::Stream::Stdout, &buf[..n]);
                    continue;
                }
                if stdout.write_all(&buf[..n]).is_err() {
                    break;
                }
                let _ = stdout.flush();
            }
        }
    }
}
