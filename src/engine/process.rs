//! Process set-up that whole commands need before they do anything: a private mount
//! namespace, so that what they mount (a container's root, an image's view) vanishes
//! with the process whatever happens, even after `kill -9`.

use super::{EngineError, Result};

/// Moves lade into a mount namespace of its own. The command-line entry calls it once,
/// before any thread starts (the kernel refuses after), for the operations that mount:
/// `run`, `create`, `start -a`, `build`, `cp`, `export`.
pub fn private_mount_namespace() -> Result<()> {
    crate::exec::mounts::private_mount_namespace().map_err(EngineError::Process)
}
