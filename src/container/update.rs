//! `update`: a container's limits and restart policy changed after it was made. The
//! record keeps them for its next start; a running container's cgroups get the new
//! limits at once, and its monitor reads the restart policy when the container exits.

use super::events;
use super::lifecycle::RestartPolicy;
use super::record::{self, Container};
use super::{ContainerError, Result};
use crate::exec::{self, LimitsUpdate};
use crate::store::{Store, StoreError};

/// Changes the limits (`limits`) and the restart policy (`restart`, when given) of the
/// container `reference`; returns its name. Nothing is recorded when the running
/// container's cgroup refuses a limit (a memory limit below what it uses).
pub fn update(
    store: &Store,
    reference: &str,
    limits: &LimitsUpdate,
    restart: Option<RestartPolicy>,
) -> Result<String> {
    let (container, _change) = Container::load_for_change(store, reference)?;
    let name = container.name().to_string();
    // Docker's rule, as at `run`: a container removed when it exits never restarts.
    if container.settings.auto_remove && restart.is_some_and(|r| r != RestartPolicy::No) {
        return Err(ContainerError::RestartWithAutoRemove(name));
    }
    let mut spec = container.spec.clone();
    spec.limits = limits.applied_to(&spec.limits);
    let cgroup = spec
        .cgroup
        .get_or_insert_with(|| container.id().to_string())
        .clone();
    super::check_rootless_limits(&spec.limits, Some(&cgroup), false)?;
    if !limits.is_empty() {
        if let Some(init) = container.running_init() {
            exec::update_limits(&cgroup, limits, init.pid).map_err(|source| {
                ContainerError::Update {
                    name: name.clone(),
                    source,
                }
            })?;
        }
    }
    let mut settings = container.settings.clone();
    if let Some(restart) = restart {
        settings.restart = restart;
    }
    let spec_json = serde_json::to_string(&spec).map_err(|source| ContainerError::Json {
        what: format!("container {name}: its spec"),
        source,
    })?;
    let settings_json = record::settings_json(&name, &settings)?;
    if !store.set_container_spec_and_settings(container.id(), &spec_json, &settings_json)? {
        return Err(StoreError::NoSuchContainer(reference.to_string()).into());
    }
    events::container_event(
        store,
        &container.record,
        &settings.labels,
        "update",
        Default::default(),
    );
    Ok(name)
}
