//! The verbs on a container that exists: `stop`, `restart`, `kill`, `pause` and
//! `unpause`, `wait`. Each acts on one container and returns its name (or exit code);
//! `cli` loops over the names it is given, so that each is reported as it is done.

use nix::sys::signal::Signal;

use super::{start, Reporter, Result};
use crate::container;
use crate::store::Store;

/// `stop` and `restart`.
#[derive(Debug, Clone)]
pub struct StopRequest {
    /// The container's name or id.
    pub container: String,
    /// `-t`: seconds between the stop signal and SIGKILL [default: the container's
    /// `--stop-timeout`, else 10].
    pub timeout: Option<u64>,
}

/// `kill`.
#[derive(Debug, Clone)]
pub struct KillRequest {
    pub container: String,
    /// As [`parse_signal`](crate::engine::parse_signal) reads it.
    pub signal: Signal,
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
    Ok(container::stop(store, &request.container, request.timeout)?)
}

/// `lade restart`: stopped as by `stop`, then started detached. Returns its id.
pub fn restart(store: &Store, request: &StopRequest, reporter: &dyn Reporter) -> Result<String> {
    container::stop(store, &request.container, request.timeout)?;
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
