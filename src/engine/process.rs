//! Process set-up that whole commands need before they do anything: for an ordinary
//! user, the rootless user namespace (so that the command acts as root over its own
//! files and the subordinate ids); then a private mount namespace, so that what they
//! mount (a container's root, an image's view) vanishes with the process whatever
//! happens, even after `kill -9`.

use std::path::PathBuf;

use super::{EngineError, Result};
use crate::exec::rootless;

/// Moves lade into a mount namespace of its own. The command-line entry calls it once,
/// before any thread starts (the kernel refuses after), for the operations that mount:
/// `run`, `create`, `start -a`, `build`, `cp`, `export`.
pub fn private_mount_namespace() -> Result<()> {
    crate::exec::mounts::private_mount_namespace().map_err(EngineError::Process)
}

/// What entering the rootless namespace did, for a note.
pub use rootless::Entered;

/// Whether lade runs for an ordinary user (before or after entering its namespace).
pub fn is_rootless() -> bool {
    rootless::is_rootless()
}

/// Whether this process is already in a rootless namespace (a monitor, or a command run
/// inside one).
pub fn in_rootless_namespace() -> bool {
    rootless::outside_ids().is_some()
}

/// The directory of files that last as long as the machine runs: `/run/lade` for root,
/// `$XDG_RUNTIME_DIR/lade` (or `/tmp/lade-run-UID`) for a user.
pub fn runtime_dir() -> PathBuf {
    rootless::runtime_dir()
}

/// Moves an ordinary user's lade into its user namespace (made by the first command,
/// joined by the others). Before any thread starts.
pub fn enter_rootless() -> Result<Entered> {
    Ok(rootless::enter()?)
}

/// `--storage-driver`: the overlay driver this command uses (checked when first
/// needed).
pub fn force_storage_driver(name: String) {
    crate::exec::overlay::force(name);
}
