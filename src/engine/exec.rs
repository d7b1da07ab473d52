//! `exec`: a process in a running container, in its namespaces and cgroup with its
//! confinement, in the foreground or detached.

use std::path::PathBuf;

use super::Result;
use crate::container::{self, ExecOptions};
use crate::store::Store;

/// What `lade exec` is asked for.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    /// The container's name or id.
    pub container: String,
    /// The command and its arguments.
    pub command: Vec<String>,
    /// `NAME=VALUE`, or `NAME` to take the value from lade's environment.
    pub env: Vec<String>,
    pub env_files: Vec<PathBuf>,
    /// [default: the container's]
    pub user: Option<String>,
    /// [default: the container's]
    pub workdir: Option<String>,
    pub interactive: bool,
    pub tty: bool,
    /// `-d`: the process runs on, its output discarded (as Docker's).
    pub detach: bool,
    /// `--privileged`: every capability, no seccomp filter, for this process.
    pub privileged: bool,
}

/// `lade exec`: returns the process's exit code (0 once a detached one has started).
pub fn exec(store: &Store, request: &ExecRequest) -> Result<i32> {
    let options = ExecOptions {
        args: request.command.clone(),
        env: request.env.clone(),
        env_files: request.env_files.clone(),
        user: request.user.clone(),
        workdir: request.workdir.clone(),
        interactive: request.interactive,
        tty: request.tty,
        privileged: request.privileged,
    };
    if request.detach {
        container::exec_detached(store, &request.container, &options)?;
        return Ok(0);
    }
    Ok(container::exec_in(store, &request.container, &options)?)
}
