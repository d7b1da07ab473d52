//! `start`: a created or exited container runs again under its monitor, detached, or
//! with the user attached until it exits (or the detach keys leave it running); and
//! `attach`, the user attached to a container that runs already.

use super::{Reporter, Result};
use crate::container::{self, AttachOptions, Attached};
use crate::store::Store;

/// `start -a`: one container, attached.
#[derive(Debug, Clone)]
pub struct StartAttached {
    /// The container's name or id.
    pub container: String,
    /// `-i`: our standard input goes to the container.
    pub stdin: bool,
    /// The keys that detach from it (it runs on), as `container::parse_detach_keys`
    /// reads them.
    pub detach_keys: Vec<u8>,
}

/// `attach`: the user joins a running container through its monitor.
#[derive(Debug, Clone)]
pub struct AttachRequest {
    /// The container's name or id.
    pub container: String,
    /// Our standard input goes to the container (when it keeps its own open).
    pub stdin: bool,
    /// The signals lade receives go to the container (unless it has a terminal).
    pub sig_proxy: bool,
    /// As `container::parse_detach_keys` reads them.
    pub detach_keys: Vec<u8>,
}

/// Starts `reference` detached; returns its id once its process runs. A container
/// that runs already is left as it is, as Docker's `start` leaves it (the daemon
/// answers "not modified", which its client counts as done); a paused one is refused.
pub fn start_detached(store: &Store, reference: &str, reporter: &dyn Reporter) -> Result<String> {
    let found = container::Container::load(store, reference)?;
    if found.current_state() == container::ContainerState::Running {
        return Ok(found.record.id);
    }
    Ok(container::start_detached(store, reference, &|text| {
        reporter.warning(text)
    })?)
}

/// Starts a container with the user attached; returns its exit code, or 0 once
/// detached from it.
pub fn start_attached(
    store: &Store,
    request: &StartAttached,
    reporter: &dyn Reporter,
) -> Result<i32> {
    let attached = container::start_attached(
        store,
        &request.container,
        &AttachOptions {
            stdin: request.stdin,
            detach_keys: request.detach_keys.clone(),
            // The signals lade receives go to the container, as `docker start -a`'s do.
            sig_proxy: true,
        },
        &|text| reporter.warning(text),
    )?;
    Ok(exit_code(attached))
}

/// `lade attach`: returns the container's exit code, or 0 once detached from it.
pub fn attach(store: &Store, request: &AttachRequest) -> Result<i32> {
    let attached = container::attach(
        store,
        &request.container,
        &AttachOptions {
            stdin: request.stdin,
            detach_keys: request.detach_keys.clone(),
            sig_proxy: request.sig_proxy,
        },
    )?;
    Ok(exit_code(attached))
}

/// The exit code of an attached client: the container's, or 0 when it runs on.
fn exit_code(attached: Attached) -> i32 {
    match attached {
        Attached::Exited(code) => code,
        Attached::Detached => 0,
    }
}
