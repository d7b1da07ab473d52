//! The monitor: one small process per detached container (lade re-executed, as podman's
//! conmon), in a session of its own. It owns the container's output and writes it to
//! the container's log in Docker's json-file format, waits for the container, records
//! its exit code and time, applies the restart policy, and removes an `--rm` container
//! when it is done. It lives exactly as long as its container: no daemon.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::FromRawFd;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::lifecycle::settings;
use super::{auto_remove, now_rfc3339, ContainerError, Result};
use crate::exec::{self, Io, Output, ProcessId, Spec, Stream};
use crate::store::Store;

/// The environment variable that makes lade's binary a container's monitor (its value:
/// the container id; the store is `LADE_ROOT`).
pub(crate) const MONITOR_ENV: &str = "_LADE_MONITOR";

/// The descriptor on which the monitor says `ok` once the container runs, or
/// `<code> <message>` when it could not start it.
pub(crate) const READY_FD: i32 = 3;

/// The container's log, as Docker's json-file driver writes it.
pub fn log_path(store: &Store, id: &str) -> PathBuf {
    store.root().join("containers").join(id).join("log")
}

/// Where the monitor says what went wrong after it could no longer tell its starter.
pub(crate) fn monitor_log(store: &Store, id: &str) -> PathBuf {
    store.root().join("containers").join(id).join("monitor.log")
}

#[derive(Serialize)]
struct LogLine<'a> {
    log: &'a str,
    stream: &'a str,
    time: String,
}

/// If this process was started as a monitor, runs it: returns its exit code.
pub fn maybe_run_monitor() -> Option<i32> {
    let id = std::env::var(MONITOR_ENV).ok()?;
    let root = std::env::var_os("LADE_ROOT").map(PathBuf::from)?;
    // SAFETY: the starter put the ready pipe at READY_FD for this process alone.
    let ready = unsafe { File::from_raw_fd(READY_FD) };
    // Close-on-exec: the container must not inherit it.
    let _ = nix::fcntl::fcntl(
        &ready,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    );
    let mut ready = Some(ready);
    let result = Store::open(&root)
        .map_err(ContainerError::from)
        .and_then(|store| {
            monitor(&store, &id, &mut ready).inspect_err(|e| {
                let _ = fs::write(monitor_log(&store, &id), format!("{e}\n"));
            })
        });
    match (result, ready.take()) {
        (Ok(()), _) => Some(0),
        (Err(err), Some(mut ready)) => {
            let code = err.exit_code();
            let _ = writeln!(ready, "{code} {err}");
            Some(code)
        }
        (Err(err), None) => Some(err.exit_code()),
    }
}

fn monitor(store: &Store, id: &str, ready: &mut Option<File>) -> Result<()> {
    loop {
        let record = store.container(id)?;
        let spec: Spec = serde_json::from_str(&record.spec)
            .map_err(|e| ContainerError::Invalid(format!("container {id}: its spec: {e}")))?;
        let settings = settings(&record);
        let log_file = log_path(store, id);
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_file)
            .map_err(|source| ContainerError::Io {
                path: log_file.clone(),
                source,
            })?;
        let write_line = move |stream: Stream, line: &[u8]| {
            let entry = LogLine {
                log: &String::from_utf8_lossy(line),
                stream: match stream {
                    Stream::Stdout => "stdout",
                    Stream::Stderr => "stderr",
                },
                time: now_rfc3339(),
            };
            if let Ok(mut json) = serde_json::to_vec(&entry) {
                json.push(b'\n');
                let _ = log.write_all(&json);
            }
        };
        let mut started = |init: ProcessId| {
            let _ = store.set_container_running(
                id,
                i64::from(init.pid),
                init.start as i64,
                &now_rfc3339(),
            );
            if let Some(mut file) = ready.take() {
                let _ = file.write_all(b"ok\n");
            }
        };
        let result = exec::run(
            &spec,
            Io {
                stdin: false,
                terminal: false,
                output: Output::Streams(Box::new(write_line)),
                cancel: None,
                started: Some(&mut started),
            },
        );
        let code = match &result {
            Ok(exit) => exit.code,
            Err(exec::ExecError::Setup { code, .. }) => *code,
            Err(_) => 125,
        };
        if !store.set_container_exited(id, i64::from(code), &now_rfc3339())? {
            return Ok(()); // removed meanwhile (rm -f): nothing left to watch
        }
        if ready.is_some() {
            // It never started: the starter hears why.
            result?;
        }
        let stopped = store
            .root()
            .join("containers")
            .join(id)
            .join("stopped")
            .exists();
        let record = store.container(id)?;
        if stopped || !settings.restart.restarts(code, record.restarts) {
            if settings.auto_remove {
                auto_remove(store, id)?;
            }
            return Ok(());
        }
        store.count_container_restart(id)?;
        store.set_container_state(id, "restarting")?;
        // Docker waits 100 ms before the first restart, doubling each time.
        let delay = 100u64 << record.restarts.clamp(0, 6);
        std::thread::sleep(Duration::from_millis(delay));
    }
}
