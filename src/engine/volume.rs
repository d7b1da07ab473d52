//! `lade volume`: named and anonymous volumes made, listed (with Docker's filters),
//! inspected, removed and pruned.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{EngineError, Result};
use crate::container::{self, ContainerError};
use crate::store::{Store, VolumeRecord};

/// `volume create`.
#[derive(Debug, Clone, Default)]
pub struct VolumeCreateRequest {
    /// A random name when none is given.
    pub name: Option<String>,
    /// As [`parse_labels`](crate::engine::parse_labels) reads them.
    pub labels: BTreeMap<String, String>,
}

/// One `volume ls --filter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeFilter {
    /// `dangling=true`: only volumes no container uses (`false`: only used ones).
    Dangling(bool),
    /// `name=PART`: names that contain it.
    Name(String),
}

impl VolumeFilter {
    pub fn parse(text: &str) -> Result<VolumeFilter> {
        match text.split_once('=') {
            Some(("dangling", value)) => Ok(VolumeFilter::Dangling(matches!(value, "true" | "1"))),
            Some(("name", part)) => Ok(VolumeFilter::Name(part.to_string())),
            _ => Err(EngineError::BadValue {
                what: "--filter",
                value: text.to_string(),
                expected: "lade knows dangling= and name=".into(),
            }),
        }
    }
}

/// A volume as `volume ls` and `volume inspect` show it.
#[derive(Debug, Clone)]
pub struct Volume {
    pub name: String,
    /// Docker's `volume inspect` object (also each row of `ls --format`).
    pub details: Value,
}

/// `volume rm`, for one volume.
#[derive(Debug, Clone)]
pub struct VolumeRemoveRequest {
    pub name: String,
    /// Removed even when a stopped container still names it.
    pub force: bool,
}

/// `lade volume create`: returns its name.
pub fn create_volume(store: &Store, request: &VolumeCreateRequest) -> Result<String> {
    Ok(container::create_volume(
        store,
        request.name.as_deref(),
        &request.labels,
    )?)
}

/// `lade volume ls`: the volumes every filter keeps, in the store's order.
pub fn list_volumes(store: &Store, filters: &[VolumeFilter]) -> Result<Vec<Volume>> {
    let mut kept = Vec::new();
    for record in store.volumes()? {
        let mut keep = true;
        for filter in filters {
            keep &= match filter {
                VolumeFilter::Dangling(dangling) => {
                    container::volume_users(store, &record.name)?.is_empty() == *dangling
                }
                VolumeFilter::Name(part) => record.name.contains(part.as_str()),
            };
        }
        if keep {
            kept.push(volume(store, &record));
        }
    }
    Ok(kept)
}

/// `lade volume inspect`, for one volume.
pub fn inspect_volume(store: &Store, name: &str) -> Result<Volume> {
    let record = store
        .volume(name)?
        .ok_or_else(|| ContainerError::NoSuchVolume(name.to_string()))?;
    Ok(volume(store, &record))
}

/// `lade volume rm`, for one volume.
pub fn remove_volume(store: &Store, request: &VolumeRemoveRequest) -> Result<()> {
    Ok(container::remove_volume(
        store,
        &request.name,
        request.force,
    )?)
}

/// `lade volume prune`: unused anonymous volumes go (every unused one with `all`);
/// returns their names.
pub fn prune_volumes(store: &Store, all: bool) -> Result<Vec<String>> {
    Ok(container::prune_volumes(store, all)?)
}

fn volume(store: &Store, record: &VolumeRecord) -> Volume {
    Volume {
        name: record.name.clone(),
        details: container::volume_json(store, record),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_filters() {
        assert_eq!(
            VolumeFilter::parse("dangling=true").unwrap(),
            VolumeFilter::Dangling(true)
        );
        assert_eq!(
            VolumeFilter::parse("dangling=no").unwrap(),
            VolumeFilter::Dangling(false)
        );
        assert_eq!(
            VolumeFilter::parse("name=web").unwrap(),
            VolumeFilter::Name("web".into())
        );
        assert_eq!(
            VolumeFilter::parse("driver=local").unwrap_err().to_string(),
            "invalid --filter \"driver=local\": lade knows dangling= and name="
        );
    }
}
