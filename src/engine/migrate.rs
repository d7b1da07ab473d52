//! `lade system migrate` (podman's command, for rootless lade): ends the user's
//! namespace, its pause process and what it held, so that the next command makes a new
//! one from `/etc/subuid` and `/etc/subgid` as they are now, and the network namespace
//! of its user networks with the pasta that connects it.

use super::{EngineError, Result};
use crate::container::Container;
use crate::exec::rootless;
use crate::store::Store;

/// Stops the pause process, refused while containers of the store run (their processes
/// would keep the old namespace alive). Returns the pid of the pause process stopped:
/// `None` for root, who has none, or when none ran.
pub fn migrate(store: &Store) -> Result<Option<i32>> {
    if !rootless::is_rootless() {
        return Ok(None);
    }
    let running: Vec<String> = Container::all(store)?
        .into_iter()
        .filter(|c| c.running_init().is_some())
        .map(|c| c.name().to_string())
        .collect();
    if !running.is_empty() {
        return Err(EngineError::MigrateWhileRunning(running));
    }
    // Its network namespace's way out (pasta) would otherwise hold on to it.
    crate::network::remove_rootless_namespace(crate::exec::mounts::host_mount_namespace)?;
    Ok(rootless::stop_pause()?)
}
