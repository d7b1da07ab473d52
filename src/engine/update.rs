//! `update`: a container's limits and restart policy, changed after it was made.

use super::Result;
use crate::container::{self, RestartPolicy};
use crate::exec::LimitsUpdate;
use crate::store::Store;

/// `lade update`, for one container.
#[derive(Debug, Clone, Default)]
pub struct UpdateRequest {
    /// The container's name or id.
    pub container: String,
    /// `--memory`, `--cpus`, `--pids-limit`: what changes.
    pub limits: LimitsUpdate,
    /// `--restart`, when given.
    pub restart: Option<RestartPolicy>,
}

/// `lade update`: recorded for the container's next start, and written to its cgroups
/// at once when it runs. Returns its name.
pub fn update(store: &Store, request: &UpdateRequest) -> Result<String> {
    Ok(container::update(
        store,
        &request.container,
        &request.limits,
        request.restart,
    )?)
}
