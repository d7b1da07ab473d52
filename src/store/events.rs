//! The event log (`lade events`): without a daemon there is nobody to hold events in
//! memory, so every command and monitor appends what it did to one JSON-lines file in
//! the store, and `lade events` reads it back and follows it.
//!
//! Each event is one `write` on a file opened with `O_APPEND`: the kernel places each
//! such write at the end of the file as a whole, so processes writing at once never
//! interleave their lines. The log is bounded: past [`MAX_LOG_BYTES`] it becomes the
//! one previous file (`events.jsonl.1`) and a new log begins, so at most twice that is
//! kept. Readers poll for growth instead of waiting on inotify: a follower is a
//! command a person watches, 100 ms is quick enough for that, and polling needs no
//! watcher thread or extra dependency and sees a rotation the same way it sees growth.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use super::{Result, Store, StoreError};

/// The size past which the log is rotated.
pub const MAX_LOG_BYTES: u64 = 4 * 1024 * 1024;

const LOG: &str = "events.jsonl";
const PREVIOUS: &str = "events.jsonl.1";
const ROTATE_LOCK: &str = "events.lock";

/// One event, in Docker's JSON shape (`docker events --format '{{json .}}'`),
/// including the legacy `status`, `id` and `from` of container and image events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// container, image, network, volume.
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    pub scope: String,
    /// Seconds since the epoch.
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

/// What an event is about: an id (a container's, an image's name, a network's) and
/// its attributes (name, image, exitCode, signal...).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes", default)]
    pub attributes: BTreeMap<String, String>,
}

impl Event {
    /// An event that happens now.
    pub fn new(kind: &str, action: &str, id: &str, attributes: BTreeMap<String, String>) -> Event {
        let now = jiff::Timestamp::now();
        let nanos = i64::try_from(now.as_nanosecond()).unwrap_or(i64::MAX);
        // Docker kept `status`/`id`/`from` for the clients older than `Type`/`Action`,
        // only for containers and images.
        let legacy = matches!(kind, "container" | "image");
        Event {
            status: legacy.then(|| action.to_string()),
            id: legacy.then(|| id.to_string()),
            from: if kind == "container" {
                attributes.get("image").cloned()
            } else {
                None
            },
            kind: kind.to_string(),
            action: action.to_string(),
            actor: Actor {
                id: id.to_string(),
                attributes,
            },
            scope: "local".into(),
            time: now.as_second(),
            time_nano: nanos,
        }
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Store {
    /// The current event log.
    pub fn events_path(&self) -> PathBuf {
        self.root().join(LOG)
    }

    /// Appends `event` to the log (one write), rotating the log first when it is full.
    pub fn append_event(&self, event: &Event) -> Result<()> {
        let path = self.events_path();
        let mut line = serde_json::to_vec(event).map_err(|e| StoreError::Invalid {
            what: "an event".into(),
            reason: e.to_string(),
        })?;
        line.push(b'\n');
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_error(&path))?;
        if file.metadata().map_err(io_error(&path))?.len() >= MAX_LOG_BYTES {
            self.rotate_events()?;
            file = OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o600)
                .open(&path)
                .map_err(io_error(&path))?;
        }
        file.write_all(&line).map_err(io_error(&path))
    }

    /// Makes the full log the previous one. Under a lock, and only if the log is still
    /// full once the lock is held: two writers that both found it full rotate it once.
    fn rotate_events(&self) -> Result<()> {
        let lock_path = self.root().join(ROTATE_LOCK);
        let lock = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(io_error(&lock_path))?;
        lock.lock().map_err(io_error(&lock_path))?;
        let path = self.events_path();
        let full = fs::metadata(&path).is_ok_and(|m| m.len() >= MAX_LOG_BYTES);
        if full {
            fs::rename(&path, self.root().join(PREVIOUS)).map_err(io_error(&path))?;
        }
        Ok(())
    }
}

/// Whether a failure to record has been told already (once per process is enough).
static WARNED: AtomicBool = AtomicBool::new(false);

/// Records `event`. An event that cannot be recorded never fails the command that
/// made it: the first such failure is a warning on stderr, the only place a command
/// deep in the library can say it without changing what it returns.
pub fn record(store: &Store, event: Event) {
    if let Err(err) = store.append_event(&event) {
        if !WARNED.swap(true, Ordering::Relaxed) {
            eprintln!(
                "lade: warning: cannot record the {} event: {err}",
                event.action
            );
        }
    }
}

/// An image event: Docker's actor is the image (its name for pull and push, its id
/// otherwise), with the name concerned as the `name` attribute.
pub fn image_event(store: &Store, action: &str, id: &str, name: &str) {
    let attributes = BTreeMap::from([("name".to_string(), name.to_string())]);
    record(store, Event::new("image", action, id, attributes));
}

/// Every event the store keeps, oldest first (the previous log, then the current).
pub fn past_events(store: &Store) -> Result<Vec<Event>> {
    let mut events = Vec::new();
    for name in [PREVIOUS, LOG] {
        let path = store.root().join(name);
        let text = match fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_error(&path)(e)),
        };
        events.extend(parse_lines(&text).0);
    }
    Ok(events)
}

/// The events of the complete lines of `bytes`, and how many bytes those lines took
/// (a line being written is left for later). A line that is not an event is skipped:
/// one bad line must not hide the others.
fn parse_lines(bytes: &[u8]) -> (Vec<Event>, usize) {
    let mut events = Vec::new();
    let mut used = 0;
    while let Some(end) = bytes[used..].iter().position(|b| *b == b'\n') {
        let line = &bytes[used..used + end];
        if let Ok(event) = serde_json::from_slice(line) {
            events.push(event);
        }
        used += end + 1;
    }
    (events, used)
}

/// Reads the events appended to the log after it was made, across rotations.
pub struct Follower {
    path: PathBuf,
    file: Option<File>,
    /// The inode of `file`: another one at `path` means the log was rotated.
    inode: u64,
    pending: Vec<u8>,
}

impl Follower {
    /// A follower that starts at the current end of the log.
    pub fn at_end(store: &Store) -> Result<Follower> {
        let path = store.events_path();
        let mut follower = Follower {
            path,
            file: None,
            inode: 0,
            pending: Vec::new(),
        };
        if let Some(mut file) = follower.open()? {
            file.seek(SeekFrom::End(0))
                .map_err(io_error(&follower.path))?;
            follower.file = Some(file);
        }
        Ok(follower)
    }

    fn open(&mut self) -> Result<Option<File>> {
        match File::open(&self.path) {
            Ok(file) => {
                self.inode = file.metadata().map_err(io_error(&self.path))?.ino();
                Ok(Some(file))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(&self.path)(e)),
        }
    }

    /// The events appended since the last call (none when nothing was).
    pub fn read_new(&mut self) -> Result<Vec<Event>> {
        let mut events = self.drain()?;
        // Rotated (or made) meanwhile: finish the old file, then start on the new one.
        let current = fs::metadata(&self.path).ok().map(|m| m.ino());
        if current.is_some() && current != Some(self.inode).filter(|_| self.file.is_some()) {
            self.pending.clear();
            self.file = self.open()?;
            events.extend(self.drain()?);
        }
        Ok(events)
    }

    fn drain(&mut self) -> Result<Vec<Event>> {
        let Some(file) = self.file.as_mut() else {
            return Ok(Vec::new());
        };
        file.read_to_end(&mut self.pending)
            .map_err(io_error(&self.path))?;
        let (events, used) = parse_lines(&self.pending);
        self.pending.drain(..used);
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = Store::open(dir.path()).expect("a store");
        (dir, store)
    }

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn events_have_dockers_json_shape() {
        let event = Event::new(
            "container",
            "die",
            "abc",
            attrs(&[("image", "busybox"), ("exitCode", "3")]),
        );
        let json = serde_json::to_value(&event).expect("it serializes");
        assert_eq!(json["Type"], "container");
        assert_eq!(json["Action"], "die");
        assert_eq!(json["Actor"]["ID"], "abc");
        assert_eq!(json["Actor"]["Attributes"]["exitCode"], "3");
        assert_eq!(json["status"], "die");
        assert_eq!(json["from"], "busybox");
        assert_eq!(json["scope"], "local");
        assert_eq!(
            json["time"].as_i64(),
            Some(json["timeNano"].as_i64().unwrap_or(0) / 1_000_000_000)
        );
        let network = serde_json::to_value(Event::new("network", "create", "n1", attrs(&[])))
            .expect("it serializes");
        assert!(network.get("status").is_none() && network.get("from").is_none());
    }

    #[test]
    fn appended_events_are_read_back_and_followed() {
        let (_dir, store) = store();
        record(&store, Event::new("volume", "create", "v1", attrs(&[])));
        let mut follower = Follower::at_end(&store).expect("a follower");
        assert!(follower.read_new().expect("it reads").is_empty());
        record(&store, Event::new("volume", "destroy", "v1", attrs(&[])));
        let new: Vec<_> = follower
            .read_new()
            .expect("it reads")
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert_eq!(new, ["destroy"]);
        let all: Vec<_> = past_events(&store)
            .expect("it reads")
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert_eq!(all, ["create", "destroy"]);
    }

    #[test]
    fn a_line_being_written_waits_and_bad_lines_are_skipped() {
        let line = serde_json::to_string(&Event::new("image", "tag", "a:b", attrs(&[])))
            .expect("it serializes");
        let text = format!("not json\n{line}\n{}", &line[..10]);
        let (events, used) = parse_lines(text.as_bytes());
        assert_eq!(events.len(), 1);
        assert_eq!(used, text.len() - 10);
    }

    #[test]
    fn a_full_log_rotates_to_one_previous_file_and_followers_cross_it() {
        let (_dir, store) = store();
        record(&store, Event::new("volume", "create", "zero", attrs(&[])));
        let mut follower = Follower::at_end(&store).expect("a follower");
        record(&store, Event::new("volume", "create", "first", attrs(&[])));
        // Fill the log past its bound (with a line that is no event) without writing
        // megabytes of events.
        let mut padded = fs::read(store.events_path()).expect("the log");
        padded.resize(MAX_LOG_BYTES as usize + 1, b' ');
        padded.push(b'\n');
        fs::write(store.events_path(), &padded).expect("it is written");
        record(&store, Event::new("volume", "create", "second", attrs(&[])));
        assert!(store.root().join(PREVIOUS).exists());
        assert!(fs::metadata(store.events_path()).expect("a new log").len() < 1024);
        let seen: Vec<_> = follower
            .read_new()
            .expect("it reads")
            .into_iter()
            .map(|e| e.actor.id)
            .collect();
        assert_eq!(seen, ["first", "second"]);
        let all: Vec<_> = past_events(&store)
            .expect("it reads")
            .into_iter()
            .map(|e| e.actor.id)
            .collect();
        assert_eq!(all, ["zero", "first", "second"]);
    }
}
