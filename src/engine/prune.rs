//! `lade system prune` and `image prune`: stopped containers, dangling images (every unused one with
//! `--all`), optionally unused anonymous volumes, and the build cache, removed.

use std::collections::BTreeMap;

use super::{EngineError, Result};
use crate::store::{PruneOptions, PruneReport, Store};

/// The `--filter`s of Docker's prune commands: `until=` (RFC 3339, Unix seconds or a
/// duration back from now) and `label=KEY[=VALUE]`, `label!=KEY[=VALUE]`. What is pruned
/// must pass every one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneFilters {
    /// Only what was made before this time (Unix seconds).
    pub until: Option<i64>,
    pub labels: Vec<LabelFilter>,
}

/// `label=KEY[=VALUE]` (`present`), or `label!=KEY[=VALUE]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelFilter {
    pub key: String,
    pub value: Option<String>,
    pub present: bool,
}

impl PruneFilters {
    /// Each `--filter` as written; `kinds` are the filters the command takes (Docker's
    /// `volume prune` has no `until`).
    pub fn parse(filters: &[String], kinds: &[&str]) -> Result<PruneFilters> {
        let mut parsed = PruneFilters::default();
        for text in filters {
            let refused = || EngineError::BadValue {
                what: "--filter",
                value: text.to_string(),
                expected: format!(
                    "this prune takes {}",
                    kinds
                        .iter()
                        .map(|k| format!("{k}="))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            let (name, value) = text.split_once('=').ok_or_else(refused)?;
            let (name, present) = match name.strip_suffix('!') {
                Some(name) => (name, false),
                None => (name, true),
            };
            if !kinds.contains(&name) {
                return Err(refused());
            }
            match name {
                "until" if present => {
                    parsed.until = Some(super::parse_log_time(value)?.as_second());
                }
                "label" if !value.is_empty() => {
                    let (key, value) = match value.split_once('=') {
                        Some((key, value)) => (key, Some(value.to_string())),
                        None => (value, None),
                    };
                    parsed.labels.push(LabelFilter {
                        key: key.to_string(),
                        value,
                        present,
                    });
                }
                _ => return Err(refused()),
            }
        }
        Ok(parsed)
    }

    /// Whether an item made at `created` (Unix seconds, when known) with `labels`
    /// passes every filter.
    pub fn pass(&self, created: Option<i64>, labels: &BTreeMap<String, String>) -> bool {
        if let (Some(until), Some(created)) = (self.until, created) {
            if created >= until {
                return false;
            }
        }
        self.labels.iter().all(|filter| {
            let has = match (&filter.value, labels.get(&filter.key)) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(wanted), Some(value)) => wanted == value,
            };
            has == filter.present
        })
    }

    pub fn is_empty(&self) -> bool {
        self.until.is_none() && self.labels.is_empty()
    }
}

/// What `lade system prune` is asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneRequest {
    /// Every image no container uses, not only untagged ones.
    pub all: bool,
    /// Unused anonymous volumes too.
    pub volumes: bool,
    /// Applied to containers, images, networks and volumes (whose prune has no
    /// `until`).
    pub filters: PruneFilters,
}

/// How many of a kind a prune removed, told as soon as that kind is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pruned {
    Containers(usize),
    Images(usize),
    Networks(usize),
    Volumes(usize),
}

/// `lade system prune`: each kind is told to `pruned` when done; the build cache's
/// report is returned.
pub fn prune(store: &Store, request: PruneRequest, pruned: &dyn Fn(Pruned)) -> Result<PruneReport> {
    pruned(Pruned::Containers(
        super::remove::prune_containers(store, &request.filters)?.len(),
    ));
    pruned(Pruned::Images(
        prune_images(store, request.all, &request.filters)?.len(),
    ));
    pruned(Pruned::Networks(
        super::network::prune_networks(store, &request.filters)?.len(),
    ));
    if request.volumes {
        let filters = PruneFilters {
            until: None,
            ..request.filters.clone()
        };
        pruned(Pruned::Volumes(
            super::volume::prune_volumes(store, false, &filters)?.len(),
        ));
    }
    // The cache's records have no labels, so no `label=` filter keeps any of them.
    if !request.filters.labels.iter().any(|f| f.present) {
        let options = PruneOptions {
            all: request.all,
            unused_since: request.filters.until,
            keep_storage: None,
        };
        return Ok(store.prune_cache(&options)?);
    }
    Ok(PruneReport::default())
}

/// `lade image prune`: images no container uses that are untagged (every one with
/// `all`) and pass `filters` (`until` against the image's `created`, `label` against
/// its config's labels). Returns the references removed.
pub fn prune_images(store: &Store, all: bool, filters: &PruneFilters) -> Result<Vec<String>> {
    let remaining = store.containers()?;
    let mut removed = Vec::new();
    for summary in store.list_images()? {
        let dangling = summary.tag.is_none();
        let used = remaining.iter().any(|c| c.image == summary.id);
        if !(dangling || all) || used {
            continue;
        }
        if !filters.is_empty() {
            let Ok(image) = store.image_by_manifest(&summary.manifest_digest) else {
                continue;
            };
            let created = image
                .config
                .created
                .as_deref()
                .and_then(|c| c.parse::<jiff::Timestamp>().ok())
                .map(|t| t.as_second());
            let labels = image.config.config.labels.clone().unwrap_or_default();
            if !filters.pass(created, &labels) {
                continue;
            }
        }
        let reference = summary
            .tag
            .clone()
            .unwrap_or_else(|| summary.id.to_string());
        if store.remove_image(&reference, true).is_ok() {
            removed.push(reference);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(filters: &[&str], kinds: &[&str]) -> Result<PruneFilters> {
        let filters: Vec<String> = filters.iter().map(|f| f.to_string()).collect();
        PruneFilters::parse(&filters, kinds)
    }

    #[test]
    fn prune_filters_are_dockers() {
        let labels = BTreeMap::from([("team".to_string(), "a".to_string())]);
        let kinds = ["until", "label"];
        assert!(parse(&["label=team"], &kinds).unwrap().pass(None, &labels));
        assert!(parse(&["label=team=a"], &kinds)
            .unwrap()
            .pass(None, &labels));
        assert!(!parse(&["label=team=b"], &kinds)
            .unwrap()
            .pass(None, &labels));
        assert!(!parse(&["label!=team"], &kinds).unwrap().pass(None, &labels));
        assert!(parse(&["label!=team=b"], &kinds)
            .unwrap()
            .pass(None, &labels));
        let until = parse(&["until=2020-01-01T00:00:00Z"], &kinds).unwrap();
        assert!(until.pass(Some(1_000), &labels));
        assert!(!until.pass(Some(2_000_000_000), &labels));
        assert!(parse(&["until=1h"], &["label"]).is_err());
        assert!(parse(&["dangling=true"], &kinds).is_err());
        assert!(parse(&["label="], &kinds).is_err());
    }
}
