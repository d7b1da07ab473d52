//! `lade logs`: a container's log (Docker's json-file lines: `log`, `stream`, `time`)
//! read back, filtered by time, cut to its last lines, and followed while the container
//! runs. Each line goes back to the stream it came from.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};

use serde::Deserialize;

use super::{current_state, log_path, ContainerError, Result};
use crate::store::Store;

/// What `lade logs` asks for.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    /// Keep printing what the container writes until it stops.
    pub follow: bool,
    /// Only the last N lines (of those the time filters keep).
    pub tail: Option<usize>,
    /// Only lines written at or after / before these times.
    pub since: Option<jiff::Timestamp>,
    pub until: Option<jiff::Timestamp>,
    /// Each line prefixed with its time (RFC 3339).
    pub timestamps: bool,
}

#[derive(Deserialize)]
struct Entry {
    log: String,
    stream: String,
    time: String,
}

/// Writes the container's log to `stdout` and `stderr`, as they were written.
pub fn logs(
    store: &Store,
    reference: &str,
    options: &LogOptions,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<()> {
    let record = store.container(reference)?;
    let path = log_path(store, &record.id);
    let file = match File::open(&path) {
        Ok(file) => file,
        // A container that never ran detached has no log.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(ContainerError::Io { path, source }),
    };
    let io = |source| ContainerError::Io {
        path: path.clone(),
        source,
    };
    let mut reader = BufReader::new(file);
    let mut kept: std::collections::VecDeque<Entry> = std::collections::VecDeque::new();
    let mut line = String::new();
    let mut position = 0u64;
    loop {
        line.clear();
        let n = reader.read_line(&mut line).map_err(io)?;
        if n == 0 || !line.ends_with('\n') {
            break;
        }
        position += n as u64;
        if let Some(entry) = parse(&line, options) {
            kept.push_back(entry);
            if options.tail.is_some_and(|t| kept.len() > t) {
                kept.pop_front();
            }
        }
    }
    for entry in &kept {
        emit(entry, options, stdout, stderr).map_err(io)?;
    }
    if !options.follow {
        return Ok(());
    }
    // Follow: read what is appended until the container no longer runs and nothing
    // more is left.
    let mut reader = reader.into_inner();
    reader.seek(SeekFrom::Start(position)).map_err(io)?;
    let mut reader = BufReader::new(reader);
    // Woken when the monitor appends to the log; the timeout only bounds how long a
    // container that stopped without writing goes unnoticed.
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).map_err(|e| {
        ContainerError::Io {
            path: path.clone(),
            source: e.into(),
        }
    })?;
    inotify
        .add_watch(&path, AddWatchFlags::IN_MODIFY)
        .map_err(|e| ContainerError::Io {
            path: path.clone(),
            source: e.into(),
        })?;
    loop {
        let running = store
            .container(&record.id)
            .is_ok_and(|r| matches!(current_state(&r), "running" | "paused" | "restarting"));
        let mut any = false;
        loop {
            line.clear();
            let n = reader.read_line(&mut line).map_err(io)?;
            if n == 0 {
                break;
            }
            if !line.ends_with('\n') {
                // A line still being written: read it whole next time.
                reader.seek_relative(-(n as i64)).map_err(io)?;
                break;
            }
            any = true;
            if let Some(entry) = parse(&line, options) {
                emit(&entry, options, stdout, stderr).map_err(io)?;
            }
        }
        if !running && !any {
            return Ok(());
        }
        if !any {
            use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
            use std::os::fd::AsFd;
            let mut fds = [PollFd::new(inotify.as_fd(), PollFlags::POLLIN)];
            let _ = poll(&mut fds, PollTimeout::from(STATE_CHECK_MS));
            let _ = inotify.read_events();
        }
    }
}

/// How long `logs -f` waits for new lines before it looks whether the container still
/// runs.
const STATE_CHECK_MS: u16 = 500;

fn parse(line: &str, options: &LogOptions) -> Option<Entry> {
    let entry: Entry = serde_json::from_str(line).ok()?;
    let time: jiff::Timestamp = entry.time.parse().ok()?;
    if options.since.is_some_and(|since| time < since)
        || options.until.is_some_and(|until| time >= until)
    {
        return None;
    }
    Some(entry)
}

fn emit(
    entry: &Entry,
    options: &LogOptions,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> std::io::Result<()> {
    let out: &mut dyn Write = if entry.stream == "stderr" {
        stderr
    } else {
        stdout
    };
    if options.timestamps {
        write!(out, "{} ", entry.time)?;
    }
    out.write_all(entry.log.as_bytes())?;
    out.flush()
}
