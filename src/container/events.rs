//! The events containers, networks and volumes give (`lade events`): their Docker names
//! and attributes, recorded in the store's event log. Recording never fails the
//! operation that made the event.

use std::collections::BTreeMap;

use crate::exec::{Mount, Spec};
use crate::store::events::{record, Event};
use crate::store::{ContainerRecord, Store};

/// A container event, with Docker's attributes: `image`, `name`, its labels, and
/// `extra` (`exitCode`, `signal`, `oldName`).
pub(crate) fn container_event(
    store: &Store,
    container: &ContainerRecord,
    action: &str,
    extra: BTreeMap<String, String>,
) {
    let labels = super::record::settings_of(container)
        .map(|settings| settings.labels)
        .unwrap_or_default();
    container_event_labelled(store, container, labels, action, extra);
}

/// [`container_event`] for a caller that holds the container's labels already (its
/// settings read): the record's settings are not parsed again.
pub(crate) fn container_event_labelled(
    store: &Store,
    container: &ContainerRecord,
    labels: BTreeMap<String, String>,
    action: &str,
    extra: BTreeMap<String, String>,
) {
    let mut attributes = labels;
    attributes.insert("image".into(), container.image_name.clone());
    attributes.insert("name".into(), container.name.clone());
    attributes.extend(extra);
    record(
        store,
        Event::new("container", action, &container.id, attributes),
    );
}

/// A container event for container `id`, read from the store (nothing when it is gone).
pub(crate) fn container_event_by_id(
    store: &Store,
    id: &str,
    action: &str,
    extra: BTreeMap<String, String>,
) {
    if let Ok(container) = store.container(id) {
        container_event(store, &container, action, extra);
    }
}

/// One attribute.
pub(crate) fn attribute(key: &str, value: impl ToString) -> BTreeMap<String, String> {
    BTreeMap::from([(key.to_string(), value.to_string())])
}

/// A volume event (`create`, `destroy`, `mount`): the actor is the volume by name.
pub(crate) fn volume_event(
    store: &Store,
    name: &str,
    action: &str,
    extra: BTreeMap<String, String>,
) {
    let mut attributes = attribute("driver", "local");
    attributes.extend(extra);
    record(store, Event::new("volume", action, name, attributes));
}

/// Docker's `mount` events of a starting container: one per volume it mounts.
pub(crate) fn volume_mounts(store: &Store, container: &ContainerRecord, spec: &Spec) {
    let volumes = store.root().join("volumes");
    for mount in &spec.mounts {
        let Mount::Bind {
            source,
            target,
            readonly,
        } = mount
        else {
            continue;
        };
        let Some(name) = source
            .strip_prefix(&volumes)
            .ok()
            .and_then(|rest| rest.iter().next())
        else {
            continue;
        };
        let mut extra = attribute("container", &container.id);
        extra.insert("destination".into(), target.clone());
        extra.insert("read/write".into(), (!readonly).to_string());
        extra.insert("propagation".into(), String::new());
        volume_event(store, &name.to_string_lossy(), "mount", extra);
    }
}
