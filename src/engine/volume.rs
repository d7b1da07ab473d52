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
    /// `-d`: only `local` is known (empty means it).
    pub driver: String,
    /// `-o KEY=VALUE`: the local driver's `type`, `o` and `device`.
    pub options: BTreeMap<String, String>,
}

/// One `volume ls --filter`.
#[derive(Debug, Clone)]
pub enum VolumeFilter {
    /// `dangling=true`: only volumes no container uses (`false`: only used ones).
    Dangling(bool),
    /// `name=REGEX`: names it matches (anywhere, as Docker's).
    Name(regex::Regex),
    /// `label=KEY` or `label=KEY=VALUE`.
    Label { key: String, value: Option<String> },
    /// `driver=REGEX` (lade's one driver is `local`).
    Driver(regex::Regex),
}

impl PartialEq for VolumeFilter {
    fn eq(&self, other: &VolumeFilter) -> bool {
        format!("{self:?}") == format!("{other:?}")
    }
}

impl VolumeFilter {
    pub fn parse(text: &str) -> Result<VolumeFilter> {
        let bad = |expected: &str| EngineError::BadValue {
            what: "--filter",
            value: text.to_string(),
            expected: expected.into(),
        };
        let regex = |pattern: &str| {
            regex::Regex::new(pattern).map_err(|e| bad(&format!("not a regular expression: {e}")))
        };
        match text.split_once('=') {
            Some(("dangling", value)) => match value.to_ascii_lowercase().as_str() {
                "true" | "1" => Ok(VolumeFilter::Dangling(true)),
                "false" | "0" => Ok(VolumeFilter::Dangling(false)),
                _ => Err(bad("dangling= takes true, false, 1 or 0")),
            },
            Some(("name", pattern)) => Ok(VolumeFilter::Name(regex(pattern)?)),
            Some(("driver", pattern)) => Ok(VolumeFilter::Driver(regex(pattern)?)),
            Some(("label", label)) if !label.is_empty() => {
                let (key, value) = match label.split_once('=') {
                    Some((key, value)) => (key.to_string(), Some(value.to_string())),
                    None => (label.to_string(), None),
                };
                Ok(VolumeFilter::Label { key, value })
            }
            _ => Err(bad("lade knows dangling=, name=, label= and driver=")),
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
    if !matches!(request.driver.as_str(), "" | "local") {
        return Err(ContainerError::VolumeOptions(format!(
            "volume driver {} is not supported: lade has the local driver",
            request.driver
        ))
        .into());
    }
    Ok(container::create_volume(
        store,
        request.name.as_deref(),
        &request.labels,
        &request.options,
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
                VolumeFilter::Name(pattern) => pattern.is_match(&record.name),
                VolumeFilter::Driver(pattern) => pattern.is_match("local"),
                VolumeFilter::Label { key, value } => {
                    let labels: BTreeMap<String, String> =
                        serde_json::from_str(&record.labels).unwrap_or_default();
                    match (labels.get(key), value) {
                        (None, _) => false,
                        (Some(_), None) => true,
                        (Some(found), Some(wanted)) => found == wanted,
                    }
                }
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
pub fn prune_volumes(
    store: &Store,
    all: bool,
    filters: &super::PruneFilters,
) -> Result<Vec<String>> {
    Ok(container::prune_volumes(store, all, &|labels| {
        filters.pass(None, labels)
    })?)
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
            VolumeFilter::parse("dangling=0").unwrap(),
            VolumeFilter::Dangling(false)
        );
        assert!(VolumeFilter::parse("dangling=no").is_err());
        assert!(matches!(
            VolumeFilter::parse("name=^web").unwrap(),
            VolumeFilter::Name(r) if r.is_match("web1") && !r.is_match("aweb")
        ));
        assert_eq!(
            VolumeFilter::parse("label=a=b").unwrap(),
            VolumeFilter::Label {
                key: "a".into(),
                value: Some("b".into())
            }
        );
        assert!(VolumeFilter::parse("name=(").is_err());
        assert_eq!(
            VolumeFilter::parse("scope=local").unwrap_err().to_string(),
            "invalid --filter \"scope=local\": lade knows dangling=, name=, label= and driver="
        );
    }
}
