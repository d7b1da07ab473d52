//! `rm` (one container, killed first with `force`) and `container prune` (every
//! container that does not run).

use super::{PruneFilters, Result};
use crate::container;
use crate::store::Store;

/// `lade rm`, for one container.
#[derive(Debug, Clone)]
pub struct RemoveRequest {
    /// The container's name or id.
    pub container: String,
    /// `-f`: a running container is killed, then removed.
    pub force: bool,
    /// `-v`: its anonymous volumes go too.
    pub volumes: bool,
}

/// `lade rm`: returns the removed container's name.
pub fn remove(store: &Store, request: &RemoveRequest) -> Result<String> {
    Ok(container::remove(
        store,
        &request.container,
        request.force,
        request.volumes,
    )?)
}

/// `lade container prune`: the stopped containers `filters` keep go; returns their
/// ids.
pub fn prune_containers(store: &Store, filters: &PruneFilters) -> Result<Vec<String>> {
    Ok(container::prune(store, &|created, labels| {
        filters.pass(Some(created), labels)
    })?)
}
