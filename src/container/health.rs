//! Health checks, as Docker's daemon runs them (moby's daemon/health.go): whoever watches
//! a container's init (its monitor, or `lade run` in the foreground) also runs its
//! check in a thread of its own, the check's command entering the running container as
//! `lade exec` does. The state (`State.Health` of inspect) is a small JSON file in the
//! container's directory, replaced whole on each result, so that `ps` and `inspect`
//! read it without asking anyone.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{Container, ContainerState, ExecOptions};
use crate::exec::{self, Cancel, Io, Output};
use crate::oci::Healthcheck;
use crate::store::Store;

/// Docker's defaults (moby's daemon/health.go).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
pub const DEFAULT_RETRIES: u64 = 3;
/// The longest output of one probe that is kept; more is cut and marked with `...`.
const MAX_OUTPUT: usize = 4096;
/// The probes kept in the log.
const MAX_LOG: usize = 5;

/// Where a container's health is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Starting,
    Healthy,
    Unhealthy,
}

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Starting => "starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }

    /// `ps --filter health=`: one of the three, or `none` (no check) as `None`.
    pub fn parse(text: &str) -> Option<HealthStatus> {
        [
            HealthStatus::Starting,
            HealthStatus::Healthy,
            HealthStatus::Unhealthy,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// What `ps` adds to `Up 3 seconds`: `healthy`, `unhealthy`, `health: starting`.
    pub fn ps_text(self) -> &'static str {
        match self {
            HealthStatus::Starting => "health: starting",
            other => other.as_str(),
        }
    }
}

/// `State.Health` of inspect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    pub status: HealthStatus,
    pub failing_streak: u64,
    pub log: Vec<ProbeResult>,
}

/// One run of the check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProbeResult {
    /// RFC 3339.
    pub start: String,
    pub end: String,
    pub exit_code: i64,
    pub output: String,
}

/// The `--health-*` flags of `run` and `create`, as given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthFlags {
    /// `--health-cmd`: run with `/bin/sh -c`.
    pub cmd: Option<String>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub start_period: Option<Duration>,
    pub start_interval: Option<Duration>,
    pub retries: Option<u64>,
    /// `--no-healthcheck`: the image's check is not run.
    pub disabled: bool,
}

fn nanos(duration: Option<Duration>) -> u64 {
    duration.map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl HealthFlags {
    /// The check as Docker's client sends it: `None` when no flag was given.
    pub fn as_config(&self) -> Option<Healthcheck> {
        if self.disabled {
            return Some(Healthcheck {
                test: vec!["NONE".into()],
                ..Healthcheck::default()
            });
        }
        if *self == HealthFlags::default() {
            return None;
        }
        Some(Healthcheck {
            test: self
                .cmd
                .iter()
                .flat_map(|cmd| ["CMD-SHELL".to_string(), cmd.clone()])
                .collect(),
            interval: nanos(self.interval),
            timeout: nanos(self.timeout),
            start_period: nanos(self.start_period),
            start_interval: nanos(self.start_interval),
            retries: self.retries.unwrap_or(0),
        })
    }
}

/// The check a container runs: what `run` asked for over the image's, field by field,
/// as Docker's daemon merges them; `None` when there is none or it is `NONE`.
pub fn merge(image: Option<&Healthcheck>, asked: Option<&Healthcheck>) -> Option<Healthcheck> {
    let merged = match (image, asked) {
        (None, None) => return None,
        (Some(one), None) | (None, Some(one)) => one.clone(),
        (Some(image), Some(asked)) => {
            let or = |a: u64, b: u64| if a == 0 { b } else { a };
            Healthcheck {
                test: if asked.test.is_empty() {
                    image.test.clone()
                } else {
                    asked.test.clone()
                },
                interval: or(asked.interval, image.interval),
                timeout: or(asked.timeout, image.timeout),
                start_period: or(asked.start_period, image.start_period),
                start_interval: or(asked.start_interval, image.start_interval),
                retries: or(asked.retries, image.retries),
            }
        }
    };
    match merged.test.first().map(String::as_str) {
        Some("CMD") | Some("CMD-SHELL") if merged.test.len() > 1 => Some(merged),
        _ => None,
    }
}

fn health_path(store: &Store, id: &str) -> PathBuf {
    store.root().join("containers").join(id).join("health.json")
}

/// The container's health, if it has a check and has been started.
pub fn health(store: &Store, id: &str) -> Option<Health> {
    let text = fs::read(health_path(store, id)).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Wakes a waiter when a container's health file is replaced (or its directory
/// otherwise changes: the monitor's socket goes when the container stops), so that
/// `compose up` waits for `service_healthy` without polling.
pub struct HealthWatch {
    inotify: nix::sys::inotify::Inotify,
}

impl HealthWatch {
    /// Watches container `id`. Made before the first look at its health, so that a
    /// change between that look and the wait is not missed.
    pub fn new(store: &Store, id: &str) -> std::io::Result<HealthWatch> {
        use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)?;
        inotify.add_watch(
            &store.root().join("containers").join(id),
            AddWatchFlags::IN_MOVED_TO | AddWatchFlags::IN_DELETE | AddWatchFlags::IN_CREATE,
        )?;
        Ok(HealthWatch { inotify })
    }

    /// Returns at the next change, when `also` becomes readable (a self-pipe that a
    /// signal handler writes to), or after `at_most`.
    pub fn wait(&self, also: std::os::fd::BorrowedFd<'_>, at_most: Duration) {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        let mut fds = [
            PollFd::new(self.inotify.as_fd(), PollFlags::POLLIN),
            PollFd::new(also, PollFlags::POLLIN),
        ];
        let millis = at_most.as_millis().min(u128::from(u16::MAX)) as u16;
        let _ = poll(&mut fds, PollTimeout::from(millis));
        let _ = self.inotify.read_events();
    }
}

/// Replaces the health file whole (a reader never sees half of it).
fn write_health(store: &Store, id: &str, health: &Health) {
    let path = health_path(store, id);
    let staged = path.with_extension("json.tmp");
    let Ok(json) = serde_json::to_vec(health) else {
        return;
    };
    if fs::write(&staged, json).is_ok() {
        let _ = fs::rename(&staged, &path);
    }
}

/// `Duration` of a Docker duration in nanoseconds, `default` when 0.
fn or_default(nanos: u64, default: Duration) -> Duration {
    if nanos == 0 {
        default
    } else {
        Duration::from_nanos(nanos)
    }
}

/// The check running for one run of a container; stopped when the container exits.
pub(crate) struct Watcher {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Starts checking container `id` of `store_root`, whose init has just started:
    /// its health becomes `starting` (its log from earlier runs is kept, as Docker
    /// keeps it). `None` when it has no check.
    pub(crate) fn start(store: &Store, id: &str, check: Option<&Healthcheck>) -> Option<Watcher> {
        let check = check?.clone();
        let mut health = health(store, id).unwrap_or(Health {
            status: HealthStatus::Starting,
            failing_streak: 0,
            log: Vec::new(),
        });
        health.status = HealthStatus::Starting;
        health.failing_streak = 0;
        write_health(store, id, &health);
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let root = store.root().to_path_buf();
        let id = id.to_string();
        let stopping = stop.clone();
        let started = Instant::now();
        let thread = std::thread::spawn(move || {
            // A store of its own: the caller's is busy with the container's record.
            let Ok(store) = Store::open(&root) else {
                return;
            };
            run_checks(&store, &id, &check, health, started, &stopping);
        });
        Some(Watcher {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the checks (a probe under way ends with the container) and waits for them.
    pub(crate) fn stop(mut self) {
        self.signal_stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    fn signal_stop(&self) {
        let (stopped, wake) = &*self.stop;
        *stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
        wake.notify_all();
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.signal_stop();
    }
}

/// Waits `delay` unless stopped first; true when stopped.
fn wait_or_stop(stop: &(Mutex<bool>, Condvar), delay: Duration) -> bool {
    let (stopped, wake) = stop;
    let guard = stopped.lock().unwrap_or_else(|e| e.into_inner());
    let (guard, _) = wake
        .wait_timeout_while(guard, delay, |stopped| !*stopped)
        .unwrap_or_else(|e| e.into_inner());
    *guard
}

/// The time to the next probe (moby's `getInterval`): within the start period, the
/// start interval while still starting, and never past the period's end.
fn next_interval(check: &Healthcheck, elapsed: Duration, status: HealthStatus) -> Duration {
    let interval = or_default(check.interval, DEFAULT_INTERVAL);
    let start_period = Duration::from_nanos(check.start_period);
    if elapsed >= start_period {
        return interval;
    }
    let remaining = start_period - elapsed;
    if remaining < interval {
        return remaining;
    }
    if status == HealthStatus::Starting {
        return or_default(check.start_interval, DEFAULT_START_INTERVAL);
    }
    interval
}

fn run_checks(
    store: &Store,
    id: &str,
    check: &Healthcheck,
    mut health: Health,
    started: Instant,
    stop: &(Mutex<bool>, Condvar),
) {
    loop {
        let delay = next_interval(check, started.elapsed(), health.status);
        if wait_or_stop(stop, delay) {
            return;
        }
        let Ok(container) = Container::load(store, id) else {
            return;
        };
        // Docker does not probe a frozen container.
        if container.state == ContainerState::Paused {
            continue;
        }
        let since_start = started.elapsed();
        let result = probe(&container, check);
        if *stop.0.lock().unwrap_or_else(|e| e.into_inner()) {
            return; // the container ended while it was probed: that result means nothing
        }
        let before = health.status;
        apply(&mut health, check, result, since_start);
        write_health(store, id, &health);
        if health.status != before {
            super::events::container_event(
                store,
                &container.record,
                &container.settings.labels,
                &format!("health_status: {}", health.status.as_str()),
                BTreeMap::new(),
            );
        }
    }
}

/// Takes a probe's result into the health (moby's `handleProbeResult`): a failure
/// within the start period does not count while the container is still starting.
fn apply(health: &mut Health, check: &Healthcheck, result: ProbeResult, since_start: Duration) {
    let retries = if check.retries == 0 {
        DEFAULT_RETRIES
    } else {
        check.retries
    };
    let passed = result.exit_code == 0;
    health.log.push(result);
    if health.log.len() > MAX_LOG {
        let extra = health.log.len() - MAX_LOG;
        health.log.drain(..extra);
    }
    if passed {
        health.failing_streak = 0;
        health.status = HealthStatus::Healthy;
        return;
    }
    let in_start_period = since_start < Duration::from_nanos(check.start_period);
    if health.status == HealthStatus::Starting && in_start_period {
        return;
    }
    health.failing_streak += 1;
    if health.failing_streak >= retries {
        health.status = HealthStatus::Unhealthy;
    }
}

/// Output kept up to [`MAX_OUTPUT`] bytes.
#[derive(Default)]
struct Limited {
    bytes: Vec<u8>,
    cut: bool,
}

impl Limited {
    fn push(&mut self, data: &[u8]) {
        let room = MAX_OUTPUT.saturating_sub(self.bytes.len());
        self.bytes.extend_from_slice(&data[..room.min(data.len())]);
        self.cut |= data.len() > room;
    }

    fn text(&self) -> String {
        let mut text = String::from_utf8_lossy(&self.bytes).into_owned();
        if self.cut {
            text.push_str("...");
        }
        text
    }
}

/// The command of a check: `CMD` as it is, `CMD-SHELL` through `/bin/sh -c`.
fn command_of(check: &Healthcheck) -> Vec<String> {
    match check.test.split_first() {
        Some((kind, rest)) if kind == "CMD-SHELL" => {
            vec!["/bin/sh".into(), "-c".into(), rest.join(" ")]
        }
        Some((_, rest)) => rest.to_vec(),
        None => Vec::new(),
    }
}

/// Runs the check once in the running container, as `lade exec` runs a process, as
/// the container's user in its working directory, its output caught.
fn probe(container: &Container, check: &Healthcheck) -> ProbeResult {
    let start = super::now_rfc3339();
    let timeout = or_default(check.timeout, DEFAULT_TIMEOUT);
    let failed = |message: String| ProbeResult {
        start: start.clone(),
        end: super::now_rfc3339(),
        exit_code: -1,
        output: message,
    };
    let options = ExecOptions {
        args: command_of(check),
        ..ExecOptions::default()
    };
    let spec = match super::enter_spec(container, &options) {
        Ok(spec) => spec,
        Err(err) => return failed(err.to_string()),
    };
    let output = Arc::new(Mutex::new(Limited::default()));
    let caught = output.clone();
    let sink = move |_: exec::Stream, data: &[u8]| {
        caught.lock().unwrap_or_else(|e| e.into_inner()).push(data);
    };
    let cancel = Cancel::new();
    let timed_out = AtomicBool::new(false);
    let (done, finished) = mpsc::channel::<()>();
    let (cancelling, timing) = (&cancel, &timed_out);
    let result = std::thread::scope(|scope| {
        scope.spawn(move || {
            if finished.recv_timeout(timeout) == Err(mpsc::RecvTimeoutError::Timeout) {
                timing.store(true, Ordering::Relaxed);
                cancelling.cancel();
            }
        });
        let result = exec::enter(
            &spec,
            container.id(),
            Io {
                stdin: false,
                terminal: false,
                output: Output::Streams(Box::new(sink)),
                cancel: Some(&cancel),
                started: None,
                on_terminal: None,
            },
        );
        drop(done);
        result
    });
    let text = output.lock().unwrap_or_else(|e| e.into_inner()).text();
    if timed_out.load(Ordering::Relaxed) {
        let limit = go_duration(timeout);
        return failed(if text.is_empty() {
            format!("Health check exceeded timeout ({limit})")
        } else {
            format!("Health check exceeded timeout ({limit}): {text}")
        });
    }
    match result {
        Ok(exit) => ProbeResult {
            start,
            end: super::now_rfc3339(),
            exit_code: i64::from(exit.code),
            output: text,
        },
        Err(err) => failed(err.to_string()),
    }
}

/// A duration as Go prints it (`200ms`, `30s`, `1m30s`), for Docker's messages.
fn go_duration(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let seconds = duration.as_secs_f64();
    if seconds < 60.0 {
        return format!("{seconds}s");
    }
    let whole = duration.as_secs();
    let (m, s) = (whole / 60, whole % 60);
    if m < 60 {
        format!("{m}m{s}s")
    } else {
        format!("{}h{}m{s}s", m / 60, m % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(test: &[&str]) -> Healthcheck {
        Healthcheck {
            test: test.iter().map(|s| s.to_string()).collect(),
            ..Healthcheck::default()
        }
    }

    fn result(code: i64) -> ProbeResult {
        ProbeResult {
            start: String::new(),
            end: String::new(),
            exit_code: code,
            output: String::new(),
        }
    }

    #[test]
    fn flags_over_the_image_field_by_field() {
        let image = Healthcheck {
            interval: 5,
            retries: 7,
            ..check(&["CMD", "true"])
        };
        let flags = HealthFlags {
            interval: Some(Duration::from_millis(200)),
            ..HealthFlags::default()
        };
        let merged = merge(Some(&image), flags.as_config().as_ref()).expect("a check");
        assert_eq!(merged.test, ["CMD", "true"]);
        assert_eq!((merged.interval, merged.retries), (200_000_000, 7));
        let cmd = HealthFlags {
            cmd: Some("exit 1".into()),
            ..HealthFlags::default()
        };
        let merged = merge(Some(&image), cmd.as_config().as_ref()).expect("a check");
        assert_eq!(merged.test, ["CMD-SHELL", "exit 1"]);
        let off = HealthFlags {
            disabled: true,
            ..HealthFlags::default()
        };
        assert_eq!(merge(Some(&image), off.as_config().as_ref()), None);
        assert_eq!(merge(Some(&check(&["NONE"])), None), None);
        assert_eq!(
            merge(None, HealthFlags::default().as_config().as_ref()),
            None
        );
    }

    #[test]
    fn streaks_and_states_as_docker_counts_them() {
        let c = Healthcheck {
            retries: 2,
            ..check(&["CMD", "x"])
        };
        let mut h = Health {
            status: HealthStatus::Starting,
            failing_streak: 0,
            log: Vec::new(),
        };
        apply(&mut h, &c, result(1), Duration::ZERO);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Starting, 1));
        apply(&mut h, &c, result(1), Duration::ZERO);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Unhealthy, 2));
        apply(&mut h, &c, result(0), Duration::ZERO);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Healthy, 0));
        for _ in 0..6 {
            apply(&mut h, &c, result(0), Duration::ZERO);
        }
        assert_eq!(h.log.len(), MAX_LOG);
        // Within the start period a failure does not count while still starting.
        let patient = Healthcheck {
            start_period: 10_000_000_000,
            ..c
        };
        let mut h = Health {
            status: HealthStatus::Starting,
            failing_streak: 0,
            log: Vec::new(),
        };
        apply(&mut h, &patient, result(1), Duration::from_secs(1));
        assert_eq!(h.failing_streak, 0);
        apply(&mut h, &patient, result(1), Duration::from_secs(11));
        assert_eq!(h.failing_streak, 1);
    }

    #[test]
    fn intervals_within_the_start_period() {
        let c = Healthcheck {
            interval: 30_000_000_000,
            start_period: 60_000_000_000,
            start_interval: 1_000_000_000,
            ..check(&["CMD", "x"])
        };
        let s = Duration::from_secs;
        assert_eq!(next_interval(&c, s(0), HealthStatus::Starting), s(1));
        assert_eq!(next_interval(&c, s(0), HealthStatus::Healthy), s(30));
        assert_eq!(next_interval(&c, s(50), HealthStatus::Starting), s(10));
        assert_eq!(next_interval(&c, s(70), HealthStatus::Starting), s(30));
        assert_eq!(
            next_interval(&check(&["CMD", "x"]), s(0), HealthStatus::Starting),
            DEFAULT_INTERVAL
        );
    }

    #[test]
    fn output_is_cut_and_commands_are_shaped() {
        let mut out = Limited::default();
        out.push(&[b'a'; 5000]);
        let text = out.text();
        assert_eq!(text.len(), MAX_OUTPUT + 3);
        assert!(text.ends_with("..."));
        assert_eq!(
            command_of(&check(&["CMD-SHELL", "curl -f x || exit 1"])),
            ["/bin/sh", "-c", "curl -f x || exit 1"]
        );
        assert_eq!(command_of(&check(&["CMD", "true", "x"])), ["true", "x"]);
        assert_eq!(go_duration(Duration::from_millis(200)), "200ms");
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
    }
}
