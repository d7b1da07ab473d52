//! `exec`: a process in a running container, in its namespaces and cgroup with its
//! confinement, in the foreground or detached.

use super::Result;
use crate::container::{self, ExecOptions};
use crate::store::Store;

/// What `lade exec` is asked for.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    /// The container's name or id.
    pub container: String,
    /// The process: its command, environment, user, directory, terminal, privileges.
    pub options: ExecOptions,
    /// `-d`: the process runs on, its output discarded (as Docker's).
    pub detach: bool,
    /// With `-it`: the keys that detach from the process, which runs on (as
    /// `container::parse_detach_keys` reads them).
    pub detach_keys: Vec<u8>,
}

/// `lade exec`: returns the process's exit code (0 once a detached one has started,
/// or once the detach keys left an `-it` one running).
pub fn exec(store: &Store, request: &ExecRequest) -> Result<i32> {
    if request.detach {
        container::exec_detached(store, &request.container, &request.options)?;
        return Ok(0);
    }
    if request.options.tty && request.options.interactive {
        let attached = container::exec_attached(
            store,
            &request.container,
            &request.options,
            &request.detach_keys,
        )?;
        return Ok(match attached {
            container::Attached::Exited(code) => code,
            container::Attached::Detached => 0,
        });
    }
    Ok(container::exec_in(
        store,
        &request.container,
        &request.options,
    )?)
}
