//! The verbs on a container that exists: `stop`, `restart`, `kill`, `pause` and
//! `unpause`, `wait`. Each acts on one container and returns its name (or exit code);
//! [`each_container`] runs one over several containers at once, as Docker's client
//! does, so that stopping eight containers takes one timeout, not eight.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use super::{start, Reporter, Result};
use crate::container;
use crate::exec::SignalNumber;
use crate::store::Store;

/// `stop` and `restart`.
#[derive(Debug, Clone)]
pub struct StopRequest {
    /// The container's name or id.
    pub container: String,
    /// `-t`: seconds between the stop signal and SIGKILL, negative for no SIGKILL
    /// [default: the container's `--stop-timeout`, else 10].
    pub timeout: Option<i64>,
    /// `-s`: the signal sent first [default: the container's stop signal].
    pub signal: Option<SignalNumber>,
}

/// `kill`.
#[derive(Debug, Clone)]
pub struct KillRequest {
    pub container: String,
    /// As [`parse_signal`](crate::engine::parse_signal) reads it.
    pub signal: SignalNumber,
}

/// `pause` (`paused`) and `unpause`.
#[derive(Debug, Clone)]
pub struct PauseRequest {
    pub container: String,
    pub paused: bool,
}

/// `lade stop`: the container's stop signal, then SIGKILL after the timeout; its
/// restart policy does not start it again. Returns its name.
pub fn stop(store: &Store, request: &StopRequest) -> Result<String> {
    Ok(container::stop(
        store,
        &request.container,
        request.timeout,
        request.signal,
    )?)
}

/// `lade restart`: stopped as by `stop`, then started detached. Returns its id.
pub fn restart(store: &Store, request: &StopRequest, reporter: &dyn Reporter) -> Result<String> {
    container::stop(store, &request.container, request.timeout, request.signal)?;
    start::start_detached(store, &request.container, reporter)
}

/// `lade kill`: the signal goes to the container's init.
pub fn kill(store: &Store, request: &KillRequest) -> Result<String> {
    Ok(container::kill(store, &request.container, request.signal)?)
}

/// `lade pause` and `unpause`: the container's processes frozen or thawed.
pub fn pause(store: &Store, request: &PauseRequest) -> Result<String> {
    Ok(container::pause(store, &request.container, request.paused)?)
}

/// `lade wait`: returns once the container no longer runs, with its exit code.
pub fn wait(store: &Store, reference: &str) -> Result<i64> {
    Ok(container::wait(store, reference)?)
}

/// At most this many containers are acted on at once (docker/cli's
/// `parallelOperation` allows 50 requests in flight).
const PARALLEL: usize = 50;

/// Does `act` to every container of `containers` in parallel, and tells `done` of each
/// (its reference and the outcome) as it finishes, in the order they finish.
pub fn each_container<T: Send>(
    containers: &[String],
    act: impl Fn(&str) -> Result<T> + Sync,
    mut done: impl FnMut(&str, Result<T>),
) {
    let next = AtomicUsize::new(0);
    let (sender, receiver) = mpsc::channel();
    std::thread::scope(|scope| {
        for _ in 0..containers.len().min(PARALLEL) {
            let sender = sender.clone();
            let (next, act) = (&next, &act);
            scope.spawn(move || loop {
                let Some(reference) = containers.get(next.fetch_add(1, Ordering::Relaxed)) else {
                    return;
                };
                if sender.send((reference, act(reference))).is_err() {
                    return;
                }
            });
        }
        drop(sender);
        for (reference, outcome) in receiver {
            done(reference, outcome);
        }
    });
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn containers_are_acted_on_at_once_and_reported_as_they_finish() {
        let names: Vec<String> = (0..8).map(|i| format!("c{i}")).collect();
        let (running, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let mut finished = Vec::new();
        each_container(
            &names,
            |name| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                // The first takes longest: it is reported last.
                let wait = if name == "c0" { 600 } else { 200 };
                std::thread::sleep(Duration::from_millis(wait));
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(name.len())
            },
            |name, outcome| finished.push((name.to_string(), outcome.ok())),
        );
        assert!(most.load(Ordering::SeqCst) > 1, "one at a time");
        assert_eq!(finished.len(), 8);
        assert_eq!(finished.last().map(|f| f.0.as_str()), Some("c0"));
        assert!(finished.iter().all(|(_, n)| *n == Some(2)));
    }
}
