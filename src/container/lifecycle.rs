//! Containers that live on: their settings (restart policy, stop signal), starting one
//! detached under a monitor, and acting on a running one through its init's pidfd
//! (stop, kill, wait).

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{running_init, Container, ContainerError, ContainerState, Result};
use crate::exec::{ProcessId, SignalNumber};
use crate::store::Store;

/// When the monitor starts a container again after it exits (Docker's `--restart`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum RestartPolicy {
    #[default]
    No,
    /// After a non-zero exit, at most this many times (no bound when `None`).
    OnFailure(Option<u32>),
    Always,
    UnlessStopped,
}

impl RestartPolicy {
    /// `no`, `on-failure[:N]`, `always`, `unless-stopped`.
    pub fn parse(text: &str) -> Option<RestartPolicy> {
        Some(match text.split_once(':') {
            None if text == "no" => RestartPolicy::No,
            None if text == "on-failure" => RestartPolicy::OnFailure(None),
            None if text == "always" => RestartPolicy::Always,
            None if text == "unless-stopped" => RestartPolicy::UnlessStopped,
            Some(("on-failure", n)) => RestartPolicy::OnFailure(Some(n.parse().ok()?)),
            _ => return None,
        })
    }

    /// Whether a container that exited with `code`, restarted `restarts` times so
    /// far, and not stopped by a user, starts again.
    pub fn restarts(self, code: i32, restarts: i64) -> bool {
        match self {
            RestartPolicy::No => false,
            RestartPolicy::OnFailure(max) => {
                // Docker reads a maximum of 0 as no maximum.
                code != 0 && max.is_none_or(|max| max == 0 || restarts < i64::from(max))
            }
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
        }
    }
}

/// The wait before the next restart (moby's restart manager): 100 ms, doubling with
/// each restart up to a minute, and from 100 ms again after a run of 10 seconds or
/// more, which counts as having started well.
pub(crate) fn restart_delay(previous: Duration, ran_for: Duration) -> Duration {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(60);
    let previous = if ran_for >= Duration::from_secs(10) {
        Duration::ZERO
    } else {
        previous
    };
    if previous.is_zero() {
        FIRST
    } else {
        (previous * 2).min(MAX)
    }
}

/// What the container module keeps of a container beyond its sandbox spec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub restart: RestartPolicy,
    /// `--stop-signal`, else the image's STOPSIGNAL; SIGTERM when neither says.
    pub stop_signal: Option<String>,
    /// `--stop-timeout` in seconds (Docker's default: 10).
    pub stop_timeout: Option<u64>,
    /// `--rm` of a detached container: removed once it exits for good.
    pub auto_remove: bool,
    /// `-l KEY=VALUE`.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// The anonymous volumes made for it (`rm -v` removes them).
    #[serde(default)]
    pub anonymous_volumes: Vec<String>,
    /// The volumes with mount options (`volume create -o`) it mounts: their mounts are
    /// file systems of their own, which do not name the volume's data directory.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounted_volumes: Vec<String>,
    /// Its networks (`--network`, its address, its published ports).
    #[serde(default)]
    pub network: super::NetworkSettings,
    /// `-i`: its standard input is kept open for attached clients.
    #[serde(default)]
    pub interactive: bool,
    /// `--log-driver`, `--log-opt`.
    #[serde(default = "default_log")]
    pub log: super::LogConfig,
    /// The health check: as asked (`--health-*`) when a request carries it, merged
    /// with the image's once the container is made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<crate::oci::Healthcheck>,
    /// Namespaces taken from other containers at each start (`--pid`/`--ipc
    /// container:NAME`), and whether its own IPC namespace may be taken.
    #[serde(default)]
    pub shared: super::Shared,
}

fn default_log() -> super::LogConfig {
    super::LogConfig {
        max_file: 1,
        ..super::LogConfig::default()
    }
}

/// Docker's default time between the stop signal and SIGKILL.
pub const DEFAULT_STOP_TIMEOUT: u64 = 10;

/// How long a command waits for the monitor to record what happened.
const RECORD_WAIT: Duration = Duration::from_secs(10);

/// The signal names Linux has, as moby/sys/signal's `SignalMap` lists them (without
/// the real-time ones, which [`parse_signal`] reads as `RTMIN+N` and `RTMAX-N`).
const SIGNAL_NAMES: &[(&str, i32)] = &[
    ("ABRT", libc::SIGABRT),
    ("ALRM", libc::SIGALRM),
    ("BUS", libc::SIGBUS),
    ("CHLD", libc::SIGCHLD),
    ("CLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("FPE", libc::SIGFPE),
    ("HUP", libc::SIGHUP),
    ("ILL", libc::SIGILL),
    ("INT", libc::SIGINT),
    ("IO", libc::SIGIO),
    ("IOT", libc::SIGIOT),
    ("KILL", libc::SIGKILL),
    ("PIPE", libc::SIGPIPE),
    ("POLL", libc::SIGPOLL),
    ("PROF", libc::SIGPROF),
    ("PWR", libc::SIGPWR),
    ("QUIT", libc::SIGQUIT),
    ("SEGV", libc::SIGSEGV),
    ("STKFLT", libc::SIGSTKFLT),
    ("STOP", libc::SIGSTOP),
    ("SYS", libc::SIGSYS),
    ("TERM", libc::SIGTERM),
    ("TRAP", libc::SIGTRAP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("USR1", libc::SIGUSR1),
    ("USR2", libc::SIGUSR2),
    ("VTALRM", libc::SIGVTALRM),
    ("WINCH", libc::SIGWINCH),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
];

/// A signal as Docker's `ParseSignal` reads it: a number (1 to 64), or a name in any
/// case with or without `SIG` (`SIGTERM`, `term`), `RTMIN`, `RTMIN+N` and `RTMAX-N`
/// (N up to 15, `RTMIN+15` and `RTMAX-14` being the two halves' ends).
pub fn parse_signal(text: &str) -> Option<SignalNumber> {
    if let Ok(number) = text.parse::<i32>() {
        return SignalNumber::new(number);
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let real_time = |rest: &str, sign: i32, base: i32, max: i32| {
        let offset: i32 = match rest {
            "" => 0,
            _ => rest
                .strip_prefix(if sign > 0 { '+' } else { '-' })?
                .parse()
                .ok()?,
        };
        (0..=max).contains(&offset).then(|| base + sign * offset)
    };
    let number = if let Some(rest) = name.strip_prefix("RTMIN") {
        real_time(rest, 1, SignalNumber::RTMIN, 15)?
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        real_time(rest, -1, SignalNumber::RTMAX, 14)?
    } else {
        SIGNAL_NAMES.iter().find(|(n, _)| *n == name)?.1
    };
    SignalNumber::new(number)
}

/// Marks a container as stopped by a user, so that its monitor does not restart it.
fn stop_marker(store: &Store, id: &str) -> std::path::PathBuf {
    store.root().join("containers").join(id).join("stopped")
}

/// Starts a created or exited container under a monitor of its own (lade re-executed,
/// in a session of its own, so it outlives the terminal and the command that started
/// it). Returns once the container's process runs, or with the reason it could not;
/// what it lacks (names that will not resolve) is told to `on_warning` before.
pub fn start_detached(store: &Store, reference: &str, on_warning: &dyn Fn(&str)) -> Result<String> {
    start_monitor(store, reference, false, on_warning).map(|(id, _)| id)
}

/// `start -a`, `run -it`: starts the container with a client attached before it runs,
/// so that none of its output is missed, then serves that client.
pub fn start_attached(
    store: &Store,
    reference: &str,
    options: &super::AttachOptions,
    on_warning: &dyn Fn(&str),
) -> Result<super::Attached> {
    let (id, stream) = start_monitor(store, reference, true, on_warning)?;
    let stream = stream.ok_or_else(|| ContainerError::MonitorSilent(id.to_string()))?;
    super::attach::attach_stream(store, &id, stream, options)
}

fn start_monitor(
    store: &Store,
    reference: &str,
    attach_first: bool,
    on_warning: &dyn Fn(&str),
) -> Result<(String, Option<std::os::unix::net::UnixStream>)> {
    let container = Container::load(store, reference)?;
    container
        .current_state()
        .start()
        .map_err(|refused| refused.error(container.name()))?;
    let terminal = container.spec.process.terminal;
    // A monitor outside any delegated subtree asks the user's systemd for a scope only
    // for a container that needs a cgroup: where that fails, the others still start.
    let limits = &container.spec.limits;
    let needs_cgroup = container.spec.pausable
        || limits.memory.is_some()
        || limits.cpus.is_some()
        || limits.pids.is_some();
    let record = container.record;
    let _ = fs::remove_file(stop_marker(store, &record.id));
    // A start by hand begins the restart policy anew, as Docker's does: its count too.
    store.reset_container_restarts(&record.id)?;
    let mut env = vec![(super::monitor::MONITOR_ENV, record.id.as_str())];
    if attach_first {
        env.push((super::monitor::ATTACH_FIRST_ENV, "1"));
    }
    let scope_log = needs_cgroup.then(|| super::monitor::monitor_log(store, &record.id));
    let mut helper = spawn_detached(store, &env, scope_log.as_deref())?;
    let mut line = helper.line();
    let mut client = None;
    if attach_first && line == "listening" {
        let mut stream = super::attach::connect(store, &record.id)?;
        // The monitor starts the process once it has our window size.
        if terminal {
            super::attach::send_window(&mut stream);
        }
        client = Some(stream);
        line = helper.line();
    }
    while let Some(warning) = line.strip_prefix(super::monitor::WARNING_PREFIX) {
        on_warning(warning);
        line = helper.line();
    }
    match line.as_str() {
        "ok" => Ok((record.id, client)),
        "" => Err(ContainerError::MonitorEnded {
            name: record.name.clone(),
            log: super::monitor::monitor_log(store, &record.id),
        }),
        failure => Err(setup_failure(failure)),
    }
}

/// What a detached helper said when it could not start: `<code> <message>`.
pub(crate) fn setup_failure(line: &str) -> ContainerError {
    let (code, message) = line.split_once(' ').unwrap_or(("125", line));
    ContainerError::Exec(crate::exec::ExecError::Setup {
        code: code.parse().unwrap_or(125),
        message: message.to_string(),
    })
}

/// Starts lade's binary again as a detached helper (a monitor, or the holder of an
/// `exec -d` process) in a session of its own, with `env` added to its environment.
/// What it says on its ready pipe (`ok` once its work runs, or why it failed) is read
/// from the returned [`Helper`]. A container's monitor that asks for a scope (with
/// the log `scope_log` for what `systemd-run` says) of a rootless user outside any
/// delegated cgroup subtree starts in a scope the user's systemd manager delegates,
/// where one is reachable, so that its container gets a cgroup.
pub(crate) fn spawn_detached(
    store: &Store,
    env: &[(&str, &str)],
    scope_log: Option<&Path>,
) -> Result<Helper> {
    let (ready_read, ready_write): (OwnedFd, OwnedFd) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| ContainerError::Io {
            path: "pipe".into(),
            source: e.into(),
        })?;
    let write_fd = ready_write.as_raw_fd();
    // The host's mount namespace, for the network namespace files it mounts.
    let host_mounts = crate::exec::mounts::host_mount_namespace().ok();
    let host_fd = host_mounts.as_ref().map_or(-1, |f| f.as_raw_fd());
    let scoped = scope_log
        .filter(|_| crate::exec::rootless::is_rootless())
        .and_then(|log| {
            let exe = std::env::current_exe().ok()?;
            let command = crate::exec::delegation::scope_command(&exe)?;
            // What systemd-run says when it cannot make the scope; the monitor
            // itself writes its own errors there, after.
            let log = fs::File::create(log).ok()?;
            Some((command, log))
        });
    let (mut command, stderr) = match scoped {
        Some((command, log)) => (command, Stdio::from(log)),
        None => (Command::new("/proc/self/exe"), Stdio::null()),
    };
    command
        .envs(env.iter().copied())
        .env("LADE_ROOT", store.root())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    // SAFETY: between fork and exec only async-signal-safe calls: setsid and dup2.
    unsafe {
        command.pre_exec(move || {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            if libc::dup2(write_fd, super::monitor::READY_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if host_fd >= 0 && libc::dup2(host_fd, crate::exec::mounts::HOST_MOUNTS_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|source| ContainerError::Io {
        path: "/proc/self/exe".into(),
        source,
    })?;
    drop((ready_write, host_mounts));
    // The helper lives on by itself; reap it only if it already ended.
    let _ = child.try_wait();
    Ok(Helper {
        ready: BufReader::new(fs::File::from(ready_read)),
    })
}

/// A detached helper's ready pipe.
pub(crate) struct Helper {
    ready: BufReader<fs::File>,
}

impl Helper {
    /// Its next line (empty once it closed the pipe without a word).
    pub(crate) fn line(&mut self) -> String {
        let mut line = String::new();
        let _ = self.ready.read_line(&mut line);
        line.trim_end().to_string()
    }
}

/// Stops a container: `signal` (else its stop signal), then SIGKILL after `timeout`
/// seconds (the container's `--stop-timeout`, else 10). Its restart policy does not
/// start it again. Returns its name; stopping a container that does not run is not an
/// error.
pub fn stop(
    store: &Store,
    reference: &str,
    timeout: Option<i64>,
    signal: Option<SignalNumber>,
) -> Result<String> {
    let Container {
        record,
        settings,
        state,
        ..
    } = Container::load(store, reference)?;
    let dir = store.root().join("containers").join(&record.id);
    if dir.is_dir() {
        fs::write(stop_marker(store, &record.id), b"").map_err(|source| ContainerError::Io {
            path: stop_marker(store, &record.id),
            source,
        })?;
    }
    let Some(init) = running_init(&record) else {
        return Ok(record.name);
    };
    let signal = signal
        .or_else(|| settings.stop_signal.as_deref().and_then(parse_signal))
        .unwrap_or(SignalNumber::TERM);
    // Docker's `-t -1`: the stop signal alone, waited for as long as it takes.
    let timeout = match timeout {
        Some(seconds) if seconds < 0 => None,
        Some(seconds) => Some(Duration::from_secs(seconds.unsigned_abs())),
        None => Some(Duration::from_secs(
            settings.stop_timeout.unwrap_or(DEFAULT_STOP_TIMEOUT),
        )),
    };
    // A paused container cannot act on its signal: thaw it first.
    if let Ok(running) = state.unpause() {
        crate::exec::freeze(&record.id, false)?;
        running.write(store, &record.id)?;
    }
    init.signal(signal);
    super::events::container_event(
        store,
        &record,
        &settings.labels,
        "kill",
        super::events::attribute("signal", signal.number()),
    );
    let exited = match timeout {
        Some(timeout) => init.wait_exit(timeout),
        None => {
            while !init.wait_exit(Duration::from_secs(3600)) {}
            true
        }
    };
    if !exited {
        if !init.kill_and_wait(super::KILL_TIMEOUT) {
            return Err(ContainerError::Unkillable {
                name: record.name,
                pid: init.pid,
            });
        }
        let killed = super::events::attribute("signal", SignalNumber::KILL.number());
        super::events::container_event(store, &record, &settings.labels, "kill", killed);
    }
    wait_for_record(store, &record.id, init);
    super::events::container_event(store, &record, &settings.labels, "stop", Default::default());
    Ok(record.name)
}

/// Sends a signal to a running container's init. After SIGKILL it returns once the
/// container's exit is recorded, as Docker's `kill` waits for a killed container to
/// stop: a listing right after shows it exited (137), not running or dead.
pub fn kill(store: &Store, reference: &str, signal: SignalNumber) -> Result<String> {
    let record = store.container(reference)?;
    let init =
        running_init(&record).ok_or_else(|| ContainerError::NotRunning(record.name.clone()))?;
    if !init.signal(signal) {
        return Err(ContainerError::NotRunning(record.name.clone()));
    }
    let labels = super::record::settings_of(&record)
        .map(|settings| settings.labels)
        .unwrap_or_default();
    let number = super::events::attribute("signal", signal.number());
    super::events::container_event(store, &record, &labels, "kill", number);
    if signal == SignalNumber::KILL {
        init.wait_exit(super::KILL_TIMEOUT);
        wait_for_record(store, &record.id, init);
    }
    Ok(record.name)
}

/// Waits until a container is no longer running (at once for one never started, as
/// Docker's `wait`); returns its exit code.
pub fn wait(store: &Store, reference: &str) -> Result<i64> {
    let id = store.container(reference)?.id;
    loop {
        let record = store.container(&id)?;
        let state = ContainerState::of(&record)?;
        match running_init(&record) {
            Some(init) => {
                init.wait_exit(Duration::from_secs(3600));
                wait_for_record(store, &id, init);
            }
            None if state == ContainerState::Restarting => {
                // Between two runs, which Docker counts as running: look again shortly.
                std::thread::sleep(Duration::from_millis(50));
            }
            None if state.is_up() => {
                // Its init just ended: its monitor records the exit in a moment (unless
                // it is gone too, which the bounded wait outlasts).
                if let (Some(pid), Some(start)) = (record.pid, record.pid_start) {
                    let init = ProcessId {
                        pid: pid as i32,
                        start: start as u64,
                    };
                    wait_for_record(store, &id, init);
                }
                let record = store.container(&id)?;
                return Ok(record.exit_code.unwrap_or(-1));
            }
            // Docker's default condition is "not running": a container never started
            // (or whose start failed) answers at once, with 0 when nothing ever ran.
            None if state == ContainerState::Created => return Ok(record.exit_code.unwrap_or(0)),
            None => return Ok(record.exit_code.unwrap_or(-1)),
        }
        let record = store.container(&id)?;
        if matches!(
            ContainerState::of(&record)?,
            ContainerState::Exited | ContainerState::Dead
        ) {
            return Ok(record.exit_code.unwrap_or(-1));
        }
    }
}

/// After an init `init` ended, waits (boundedly) for whoever watched it to record it.
fn wait_for_record(store: &Store, id: &str, init: ProcessId) {
    let deadline = Instant::now() + RECORD_WAIT;
    while Instant::now() < deadline {
        match store.container(id) {
            Ok(record)
                if record.pid == Some(i64::from(init.pid))
                    && ContainerState::of(&record).ok() == Some(ContainerState::Running) =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies_as_docker_names_them() {
        assert_eq!(RestartPolicy::parse("no"), Some(RestartPolicy::No));
        assert_eq!(
            RestartPolicy::parse("on-failure:2"),
            Some(RestartPolicy::OnFailure(Some(2)))
        );
        assert_eq!(RestartPolicy::parse("always"), Some(RestartPolicy::Always));
        assert_eq!(RestartPolicy::parse("sometimes"), None);
        let twice = RestartPolicy::OnFailure(Some(2));
        assert!(twice.restarts(1, 0) && twice.restarts(1, 1) && !twice.restarts(1, 2));
        assert!(!twice.restarts(0, 0));
    }

    #[test]
    fn restart_back_off_as_dockers() {
        let ms = Duration::from_millis;
        let quick = ms(5);
        let mut delay = Duration::ZERO;
        let mut seen = Vec::new();
        for _ in 0..12 {
            delay = restart_delay(delay, quick);
            seen.push(delay);
        }
        assert_eq!(&seen[..4], [ms(100), ms(200), ms(400), ms(800)]);
        assert_eq!(seen[11], Duration::from_secs(60));
        assert_eq!(restart_delay(ms(6400), Duration::from_secs(10)), ms(100));
        let unless = RestartPolicy::UnlessStopped;
        assert!(unless.restarts(0, 100) && RestartPolicy::Always.restarts(0, 0));
        assert!(!RestartPolicy::No.restarts(1, 0));
        let unbounded = RestartPolicy::OnFailure(None);
        assert!(unbounded.restarts(1, 1000) && !unbounded.restarts(0, 0));
        assert_eq!(RestartPolicy::parse("on-failure:x"), None);
    }

    #[test]
    fn signals_by_name_or_number() {
        let number = |text| parse_signal(text).map(SignalNumber::number);
        assert_eq!(number("SIGTERM"), Some(15));
        assert_eq!(number("kill"), Some(9));
        assert_eq!(number("sigUsr1"), Some(10));
        assert_eq!(number("10"), Some(10));
        assert_eq!(number("64"), Some(64));
        assert_eq!(number("RTMIN"), Some(34));
        assert_eq!(number("RTMIN+3"), Some(37));
        assert_eq!(number("SIGRTMIN+15"), Some(49));
        assert_eq!(number("rtmax-2"), Some(62));
        assert_eq!(number("RTMAX-14"), Some(50));
        assert_eq!(number("RTMAX"), Some(64));
        assert_eq!(number("CLD"), Some(17));
        for bad in [
            "NOPE", "0", "65", "-1", "RTMIN+16", "RTMAX-15", "RTMIN-1", "SIG",
        ] {
            assert_eq!(number(bad), None, "{bad}");
        }
    }
}
