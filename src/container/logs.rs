//! A container's log, in Docker's json-file format (`log`, `stream`, `time`, and `attrs`
//! when `--log-opt labels=`/`env=` ask for them): written by the monitor and rotated by
//! `--log-opt max-size=,max-file=` as Docker rotates it (`log`, `log.1`, ...), read back by
//! `lade logs`, filtered by time, cut to its last lines, and followed (across rotations)
//! while the container runs. Each line goes back to the stream it came from.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{log_path, now_rfc3339, Container, ContainerError, ContainerState, Result};
use crate::exec::Stream;
use crate::store::Store;

/// `--log-driver` and `--log-opt`, as kept with the container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogConfig {
    /// `--log-driver none`: nothing is kept, and `lade logs` says so.
    pub disabled: bool,
    /// `max-size`: the log is rotated when it reaches this many bytes.
    pub max_size: Option<u64>,
    /// `max-file`: how many files are kept, the current one included (Docker's default 1:
    /// the log starts over when full).
    pub max_file: u32,
    /// `labels=` and `env=`: the container labels and variables named, put in each line's
    /// `attrs` (resolved when the container is made).
    pub label_keys: Vec<String>,
    pub env_names: Vec<String>,
    pub attrs: BTreeMap<String, String>,
    /// Every `--log-opt` as given, which `inspect` shows as Docker's `LogConfig.Config`.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LogConfigError {
    #[error("unknown log driver {0:?}: lade keeps json-file logs, or none")]
    Driver(String),
    #[error("invalid --log-opt {0:?}: expected KEY=VALUE")]
    Syntax(String),
    #[error("invalid --log-opt {option}: {reason}")]
    Value {
        option: String,
        reason: &'static str,
    },
    #[error("unknown --log-opt {0:?} for the json-file driver (max-size, max-file, labels, env, compress)")]
    Unknown(String),
}

impl LogConfig {
    pub fn parse(
        driver: Option<&str>,
        options: &[String],
    ) -> std::result::Result<LogConfig, LogConfigError> {
        let mut config = LogConfig {
            disabled: match driver.unwrap_or("json-file") {
                "json-file" | "k8s-file" => false,
                "none" => true,
                other => return Err(LogConfigError::Driver(other.to_string())),
            },
            max_file: 1,
            ..LogConfig::default()
        };
        for option in options {
            let (key, value) = option
                .split_once('=')
                .ok_or_else(|| LogConfigError::Syntax(option.clone()))?;
            config.options.insert(key.to_string(), value.to_string());
            let bad = |reason| LogConfigError::Value {
                option: option.clone(),
                reason,
            };
            match key {
                "max-size" => {
                    config.max_size = Some(
                        crate::oci::parse_size(value)
                            .filter(|n| *n > 0)
                            .ok_or_else(|| bad("a size such as 10m"))?,
                    )
                }
                "max-file" => {
                    config.max_file = value
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| bad("a number of files, at least 1"))?
                }
                "labels" => config.label_keys = split_list(value),
                "env" => config.env_names = split_list(value),
                "compress" if value == "false" => {}
                "compress" => return Err(bad("lade keeps rotated logs uncompressed")),
                _ => return Err(LogConfigError::Unknown(key.to_string())),
            }
        }
        if config.max_file > 1 && config.max_size.is_none() {
            return Err(LogConfigError::Value {
                option: format!("max-file={}", config.max_file),
                reason: "it needs max-size",
            });
        }
        Ok(config)
    }

    /// Docker's `HostConfig.LogConfig`: the driver and its options.
    pub fn docker_shape(&self) -> serde_json::Value {
        serde_json::json!({
            "Type": if self.disabled { "none" } else { "json-file" },
            "Config": self.options,
        })
    }

    /// Fills `attrs` from the container's labels and environment.
    pub(crate) fn resolve_attrs(&mut self, labels: &BTreeMap<String, String>, env: &[String]) {
        for key in &self.label_keys {
            if let Some(value) = labels.get(key) {
                self.attrs.insert(key.clone(), value.clone());
            }
        }
        for name in &self.env_names {
            let prefix = format!("{name}=");
            if let Some(value) = env.iter().find_map(|e| e.strip_prefix(&prefix)) {
                self.attrs.insert(name.clone(), value.to_string());
            }
        }
    }
}

fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect()
}

#[derive(Serialize)]
struct LogLine<'a> {
    log: &'a str,
    stream: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    attrs: &'a BTreeMap<String, String>,
    time: String,
}

/// The monitor's end of the log: appends lines, rotates when full.
pub(crate) struct LogWriter {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    config: LogConfig,
}

impl LogWriter {
    pub(crate) fn open(path: PathBuf, config: LogConfig) -> Result<LogWriter> {
        if config.disabled {
            return Ok(LogWriter {
                path,
                file: None,
                size: 0,
                config,
            });
        }
        let file = append(&path)?;
        let size = file.metadata().map_or(0, |m| m.len());
        Ok(LogWriter {
            path,
            file: Some(file),
            size,
            config,
        })
    }

    /// Writes one line; a write that fails (a full disk) is dropped rather than stopping
    /// the container, as Docker's json-file driver drops it.
    pub(crate) fn write(&mut self, stream: Stream, line: &[u8]) {
        let Some(file) = &mut self.file else {
            return;
        };
        let entry = LogLine {
            log: &String::from_utf8_lossy(line),
            stream: match stream {
                Stream::Stdout => "stdout",
                Stream::Stderr => "stderr",
            },
            attrs: &self.config.attrs,
            time: now_rfc3339(),
        };
        let Ok(mut json) = serde_json::to_vec(&entry) else {
            return;
        };
        json.push(b'\n');
        if file.write_all(&json).is_ok() {
            self.size += json.len() as u64;
        }
        if self.config.max_size.is_some_and(|max| self.size >= max) {
            let _ = self.rotate();
        }
    }

    /// `log` becomes `log.1` (and `log.N` becomes `log.N+1`, the oldest dropped); with
    /// one file, the log starts over.
    fn rotate(&mut self) -> Result<()> {
        if self.config.max_file <= 1 {
            if let Some(file) = &self.file {
                file.set_len(0).map_err(|source| ContainerError::Io {
                    path: self.path.clone(),
                    source,
                })?;
            }
            self.size = 0;
            return Ok(());
        }
        for n in (1..self.config.max_file - 1).rev() {
            let _ = fs::rename(rotated(&self.path, n), rotated(&self.path, n + 1));
        }
        fs::rename(&self.path, rotated(&self.path, 1)).map_err(|source| ContainerError::Io {
            path: self.path.clone(),
            source,
        })?;
        self.file = Some(append(&self.path)?);
        self.size = 0;
        Ok(())
    }
}

fn append(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| ContainerError::Io {
            path: path.to_path_buf(),
            source,
        })
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// The log's files, oldest first: `log.N` ... `log.1`, then `log`.
fn log_files(path: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = (1..)
        .map(|n| rotated(path, n))
        .take_while(|p| p.exists())
        .collect();
    files.reverse();
    files.push(path.to_path_buf());
    files
}

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
    /// Each line prefixed with its `attrs` (`k=v,k2=v2 `), as Docker's `--details`.
    pub details: bool,
}

#[derive(Deserialize)]
struct Entry {
    log: String,
    stream: String,
    time: String,
    #[serde(default)]
    attrs: BTreeMap<String, String>,
}

/// Writes the container's log to `stdout` and `stderr`, as they were written.
pub fn logs(
    store: &Store,
    reference: &str,
    options: &LogOptions,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<()> {
    let Container {
        record, settings, ..
    } = Container::load(store, reference)?;
    if settings.log.disabled {
        return Err(ContainerError::NoLog(record.name.clone()));
    }
    let path = log_path(store, &record.id);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ContainerError::Io { path, source }
    };
    let mut kept: std::collections::VecDeque<Entry> = std::collections::VecDeque::new();
    let mut line = String::new();
    // The current file, and where its whole lines end.
    let mut current: Option<(File, u64)> = None;
    for file_path in log_files(&path) {
        let file = match File::open(&file_path) {
            Ok(file) => file,
            // A container that never ran detached has no log; a rotation may be under way.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(ContainerError::Io {
                    path: file_path,
                    source,
                })
            }
        };
        let mut reader = BufReader::new(file);
        let mut position = 0u64;
        loop {
            line.clear();
            let n = reader.read_line(&mut line).map_err(io(&file_path))?;
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
        if file_path == path {
            current = Some((reader.into_inner(), position));
        }
    }
    for entry in &kept {
        emit(entry, options, stdout, stderr).map_err(io(&path))?;
    }
    if !options.follow {
        return Ok(());
    }
    // Follow: read what is appended until the container no longer runs and nothing
    // more is left; when the log is rotated, finish the old file and go on in the new.
    let directory = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    // Woken when the monitor appends to or rotates the log; the timeout only bounds how
    // long a container that stopped without writing goes unnoticed.
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
        .map_err(|e| io(&directory)(e.into()))?;
    inotify
        .add_watch(
            &directory,
            AddWatchFlags::IN_MODIFY | AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO,
        )
        .map_err(|e| io(&directory)(e.into()))?;
    let mut reader: Option<BufReader<File>> = match current {
        Some((mut file, position)) => {
            file.seek(SeekFrom::Start(position)).map_err(io(&path))?;
            Some(BufReader::new(file))
        }
        None => None,
    };
    loop {
        let running = store
            .container(&record.id)
            .ok()
            .and_then(|r| ContainerState::current(&r).ok())
            .is_some_and(ContainerState::is_active);
        let mut any = false;
        if let Some(open) = &mut reader {
            any = read_appended(open, &mut line, options, stdout, stderr).map_err(io(&path))?;
        }
        // Rotated (or made) since it was opened: what the old file still had was read
        // just above; the new one is read from its start.
        let replaced = match (&reader, fs::metadata(&path)) {
            (Some(open), Ok(now)) => open
                .get_ref()
                .metadata()
                .is_ok_and(|was| was.ino() != now.ino()),
            (None, Ok(_)) => true,
            (_, Err(_)) => false,
        };
        if replaced {
            if let Some(open) = &mut reader {
                read_appended(open, &mut line, options, stdout, stderr).map_err(io(&path))?;
            }
            reader = File::open(&path).ok().map(BufReader::new);
            continue;
        }
        // `--until` ends following once it has passed, as Docker's does.
        let until_left = options
            .until
            .map(|until| until.duration_since(jiff::Timestamp::now()));
        let until_passed = until_left.is_some_and(|left| !left.is_positive());
        if (!running || until_passed) && !any {
            return Ok(());
        }
        if !any {
            use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
            use std::os::fd::AsFd;
            let mut fds = [PollFd::new(inotify.as_fd(), PollFlags::POLLIN)];
            let wait = until_left.map_or(STATE_CHECK_MS, |left| {
                let millis = left.as_millis().clamp(0, i128::from(STATE_CHECK_MS)) as u16;
                // Wake a little after `until`, not before it.
                millis.saturating_add(1)
            });
            let _ = poll(&mut fds, PollTimeout::from(wait));
            let _ = inotify.read_events();
        }
    }
}

/// Prints the whole lines appended to `reader`; whether there were any.
fn read_appended(
    reader: &mut BufReader<File>,
    line: &mut String,
    options: &LogOptions,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> std::io::Result<bool> {
    let mut any = false;
    loop {
        line.clear();
        let n = reader.read_line(line)?;
        if n == 0 {
            return Ok(any);
        }
        if !line.ends_with('\n') {
            // A line still being written: read it whole next time.
            reader.seek_relative(-(n as i64))?;
            return Ok(any);
        }
        any = true;
        if let Some(entry) = parse(line, options) {
            emit(&entry, options, stdout, stderr)?;
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
    if options.details {
        let attrs: Vec<String> = entry
            .attrs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        write!(out, "{} ", attrs.join(","))?;
    }
    out.write_all(entry.log.as_bytes())?;
    out.flush()
}
