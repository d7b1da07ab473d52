//! The monitor: one small process per detached container (lade re-executed, as podman's
//! conmon), in a session of its own. It owns the container's output and writes it to
//! the container's log in Docker's json-file format, waits for the container, records
//! its exit code and time, applies the restart policy, and removes an `--rm` container
//! when it is done. It lives exactly as long as its container: no daemon.

use std::fs::{self, File};
use std::io::Write;
use std::os::fd::FromRawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::attach::AttachServer;
use super::health::Watcher;
use super::lifecycle::restart_delay;
use super::logs::LogWriter;
use super::record::{write_exited, write_start_failed, write_started};
use super::{
    auto_remove, now_rfc3339, Container, ContainerError, ContainerState, ExecOptions, Result,
};
use crate::exec::{self, Io, Output, ProcessId, Stream};
use crate::store::Store;

/// The environment variable that makes lade's binary a container's monitor (its value:
/// the container id; the store is `LADE_ROOT`).
pub(crate) const MONITOR_ENV: &str = "_LADE_MONITOR";

/// The descriptor on which the monitor says `ok` once the container runs, or
/// `<code> <message>` when it could not start it.
pub(crate) const READY_FD: i32 = 3;

/// A line on the ready pipe before `ok` that is a warning for the starting command.
pub(crate) const WARNING_PREFIX: &str = "warning ";

/// `text` fit for one line of the ready pipe, which its reader takes line by line: a
/// message can quote another program's stderr (aardvark-dns's), whose second line would
/// otherwise be read as the status line.
fn one_line(text: &str) -> String {
    let mut line = String::with_capacity(text.len());
    for c in text.trim_end().chars() {
        if c.is_control() {
            line.extend(c.escape_default());
        } else {
            line.push(c);
        }
    }
    line
}

/// The container's log, as Docker's json-file driver writes it.
pub fn log_path(store: &Store, id: &str) -> PathBuf {
    store.root().join("containers").join(id).join("log")
}

/// Where the monitor says what went wrong after it could no longer tell its starter.
pub(crate) fn monitor_log(store: &Store, id: &str) -> PathBuf {
    store.root().join("containers").join(id).join("monitor.log")
}

/// The environment variable that makes lade's binary the holder of an `exec -d`
/// process (its value: the request as JSON).
pub(crate) const DETACHED_EXEC_ENV: &str = "_LADE_DETACHED_EXEC";

/// What `exec -d` (and `exec -it`) hands its holder.
#[derive(Serialize, Deserialize)]
pub(crate) struct DetachedExec {
    pub container: String,
    pub options: ExecOptions,
    /// `exec -it`: the socket (in the container's directory) on which the holder serves
    /// the process's terminal to its client, who may detach from it.
    #[serde(default)]
    pub attach_socket: Option<String>,
    /// With `attach_socket`: the client's window size (rows, columns), set before the
    /// process starts.
    #[serde(default)]
    pub window: Option<(u16, u16)>,
}

/// If this process was started as a monitor (or as the holder of an `exec -d`
/// process), does that: returns its exit code.
pub fn maybe_run_monitor() -> Option<i32> {
    if let Ok(id) = std::env::var(MONITOR_ENV) {
        return Some(as_helper(|store, ready| {
            monitor(store, &id, ready).inspect_err(|e| {
                let _ = fs::write(monitor_log(store, &id), format!("{e}\n"));
            })
        }));
    }
    let request = std::env::var(DETACHED_EXEC_ENV).ok()?;
    Some(as_helper(|store, ready| {
        let request: DetachedExec =
            serde_json::from_str(&request).map_err(|e| ContainerError::Json {
                what: "the exec request".into(),
                source: e,
            })?;
        if let Some(socket) = &request.attach_socket {
            return hold_attached_exec(store, &request, socket, ready);
        }
        let mut started = |_: ProcessId| {
            if let Some(mut file) = ready.take() {
                let _ = file.write_all(b"ok\n");
            }
        };
        super::exec_with(
            store,
            &request.container,
            &request.options,
            Some(&mut started),
        )
        .map(drop)
    }))
}

/// The holder of an `exec -it` process: its terminal served on `socket` to the client
/// that asked for it (who connects first, so it misses no output), and to whoever
/// attaches after; the process runs on when the client detaches.
fn hold_attached_exec(
    store: &Store,
    request: &DetachedExec,
    socket: &str,
    ready: &mut Option<File>,
) -> Result<()> {
    let stdin = if request.options.interactive {
        Some(stdin_pipe().map_err(|source| ContainerError::Io {
            path: "pipe".into(),
            source,
        })?)
    } else {
        None
    };
    let server = Arc::new(AttachServer::listen_at(
        store,
        &request.container,
        socket,
        stdin,
    )?);
    if let Some(file) = ready.as_mut() {
        let _ = file.write_all(b"listening\n");
    }
    server.wait_for_client(false);
    let sending = server.clone();
    let mut started = |_: ProcessId| {
        if let Some(mut file) = ready.take() {
            let _ = file.write_all(b"ok\n");
        }
    };
    let terminal = server.clone();
    let window = request.window;
    let mut on_terminal = move |master: File| {
        if let Some((rows, columns)) = window {
            exec::set_terminal_size(std::os::fd::AsFd::as_fd(&master), rows, columns);
        }
        terminal.set_terminal(master)
    };
    let result = super::exec_with_io(
        store,
        &request.container,
        &request.options,
        Io {
            stdin: request.options.interactive,
            terminal: request.options.tty,
            output: Output::Streams(Box::new(move |stream, bytes| sending.send(stream, bytes))),
            cancel: None,
            started: Some(&mut started),
            on_terminal: Some(&mut on_terminal),
        },
    );
    match result {
        Ok(code) => {
            server.exited(code);
            Ok(())
        }
        // Before it started, the client hears why on the ready pipe.
        Err(err) if ready.is_some() => Err(err),
        Err(err) => {
            server.send(Stream::Stderr, format!("lade: {err}\n").as_bytes());
            server.exited(err.exit_code());
            Ok(())
        }
    }
}

/// Runs `work` as a detached helper: the store from `LADE_ROOT`, the ready pipe at
/// [`READY_FD`] (told `<code> <message>` when the work fails before it says `ok`).
fn as_helper(work: impl FnOnce(&Store, &mut Option<File>) -> Result<()>) -> i32 {
    let Some(root) = std::env::var_os("LADE_ROOT").map(PathBuf::from) else {
        return 125;
    };
    // SAFETY: the starter put the ready pipe at READY_FD for this process alone.
    let ready = unsafe { File::from_raw_fd(READY_FD) };
    crate::exec::mounts::adopt_host_mount_namespace();
    // Close-on-exec: the container must not inherit it.
    let _ = nix::fcntl::fcntl(
        &ready,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    );
    let mut ready = Some(ready);
    let result = Store::open(&root)
        .map_err(ContainerError::from)
        .and_then(|store| work(&store, &mut ready));
    match (result, ready.take()) {
        (Ok(()), _) => 0,
        (Err(err), Some(mut ready)) => {
            let code = err.exit_code();
            let _ = writeln!(ready, "{code} {}", one_line(&err.to_string()));
            code
        }
        (Err(err), None) => err.exit_code(),
    }
}

fn monitor(store: &Store, id: &str, ready: &mut Option<File>) -> Result<()> {
    let first = Container::load(store, id)?;
    let terminal = first.spec.process.terminal;
    // `-i`: the container's stdin is a pipe the monitor holds open (at our fd 0, which
    // the sandbox hands on), fed by attached clients.
    let stdin = if first.settings.interactive {
        Some(stdin_pipe().map_err(|source| ContainerError::Io {
            path: "pipe".into(),
            source,
        })?)
    } else {
        None
    };
    let server = Arc::new(AttachServer::listen(store, id, stdin)?);
    if std::env::var_os(ATTACH_FIRST_ENV).is_some() {
        if let Some(file) = ready.as_mut() {
            let _ = file.write_all(b"listening\n");
        }
        server.wait_for_client(terminal);
    }
    // The restart back-off, kept between runs as Docker's restart manager keeps it.
    let mut backoff = Duration::ZERO;
    loop {
        let container = Container::load(store, id)?;
        let mut spec = container.spec.clone();
        // Before a network is made for a start that would be refused.
        super::sandbox::join_shared(store, &container.settings.shared, &mut spec)?;
        let (network, join) = super::networking::start(store, &container)?;
        let settings = container.settings;
        spec.network = join;
        // Told to the command that starts it (`run -d`, `start`), before its `ok`.
        if let (Some(file), Some(warning)) =
            (ready.as_mut(), network.as_ref().and_then(|n| n.warning()))
        {
            let _ = writeln!(file, "{WARNING_PREFIX}{}", one_line(&warning.to_string()));
        }
        let mut log = LogWriter::open(log_path(store, id), settings.log.clone())?;
        let sending = server.clone();
        // With a terminal the output comes in pieces; the log keeps whole lines.
        let mut partial: Vec<u8> = Vec::new();
        let write_output = move |stream: Stream, bytes: &[u8]| {
            sending.send(stream, bytes);
            if !terminal {
                log.write(stream, bytes);
                return;
            }
            partial.extend_from_slice(bytes);
            while let Some(end) = partial.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = partial.drain(..=end).collect();
                log.write(stream, &line);
            }
        };
        let check = settings.healthcheck.clone();
        let mut watcher = None;
        let mut ran_since = Instant::now();
        let mut started = |init: ProcessId| {
            let _ = write_started(store, id, &settings, &container.spec, init, &now_rfc3339());
            ran_since = Instant::now();
            watcher = Watcher::start(store, id, check.as_ref());
            if let Some(mut file) = ready.take() {
                let _ = file.write_all(b"ok\n");
            }
        };
        let mut on_terminal = |master: File| server.set_terminal(master);
        let result = exec::run(
            &spec,
            Io {
                stdin: settings.interactive,
                terminal: spec.process.terminal,
                output: Output::Streams(Box::new(write_output)),
                cancel: None,
                started: Some(&mut started),
                on_terminal: Some(&mut on_terminal),
            },
        );
        let code = match &result {
            Ok(exit) => exit.code,
            Err(exec::ExecError::Setup { code, .. }) => *code,
            Err(_) => 125,
        };
        if let Some(watcher) = watcher {
            watcher.stop();
        }
        // The network goes before the exit is recorded: whoever waits for the exit
        // finds the host as it was.
        let torn_down = network.map_or(Ok(()), |n| n.finish(store));
        if let Err(err) = &torn_down {
            let _ = fs::write(monitor_log(store, id), format!("{err}\n"));
        }
        let never_started = matches!(result, Err(exec::ExecError::Setup { .. }));
        let recorded = if never_started {
            write_start_failed(store, id, code, &now_rfc3339())?
        } else {
            write_exited(store, id, &settings.labels, code, &now_rfc3339())?
        };
        server.exited(code);
        if !recorded {
            return Ok(()); // removed meanwhile (rm -f): nothing left to watch
        }
        if ready.is_some() {
            // It never started: the starter hears why.
            result?;
        }
        // A start that fails is not restarted, as Docker's restart manager does not.
        if never_started {
            if settings.auto_remove {
                auto_remove(store, id)?;
            }
            return Ok(());
        }
        let stop_marker = store.root().join("containers").join(id).join("stopped");
        let record = store.container(id)?;
        // As recorded now: `update --restart` may have changed it while it ran.
        let restart = super::record::settings_of(&record).map_or(settings.restart, |s| s.restart);
        if stop_marker.exists() || !restart.restarts(code, record.restarts) {
            if settings.auto_remove {
                auto_remove(store, id)?;
            }
            return Ok(());
        }
        store.count_container_restart(id)?;
        ContainerState::Restarting.write(store, id)?;
        backoff = restart_delay(backoff, ran_since.elapsed());
        std::thread::sleep(backoff);
        // `stop` while it waited: it stays exited, as Docker's restart manager cancels.
        if stop_marker.exists() {
            ContainerState::Exited.write(store, id)?;
            if settings.auto_remove {
                auto_remove(store, id)?;
            }
            return Ok(());
        }
    }
}

/// The environment variable that makes the monitor wait for a first attached client
/// (`start -a`, `run -it`) before it starts the container; it says `listening` first.
pub(crate) const ATTACH_FIRST_ENV: &str = "_LADE_ATTACH_FIRST";

/// A pipe whose read end becomes our fd 0 (the container's stdin); returns the write end.
fn stdin_pipe() -> std::io::Result<File> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    // dup2 leaves the new fd 0 without close-on-exec: the sandbox hands it on.
    nix::unistd::dup2_stdin(&read)?;
    Ok(File::from(write))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_pipe_messages_are_one_line() {
        let cause = "aardvark-dns failed:\nError: bind 10.89.0.1:53\r\n\tin use\u{1b}[0m\n";
        let line = one_line(cause);
        assert!(!line.contains(['\n', '\r']), "{line}");
        assert_eq!(
            line,
            "aardvark-dns failed:\\nError: bind 10.89.0.1:53\\r\\n\\tin use\\u{1b}[0m"
        );
        assert_eq!(one_line("plain: köln"), "plain: köln");
    }
}
