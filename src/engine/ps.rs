//! `lade ps`: the containers as rows, filtered as Docker filters them, with their
//! health, ports, mounts and sizes. `cli` renders the rows.

use std::collections::{BTreeMap, HashMap};

use super::{EngineError, Reporter, Result};
use crate::container::{self, Container, ContainerState, HealthStatus, MountName};
use crate::network::PortMapping;
use crate::oci::Digest;
use crate::store::{self, Store};

/// What `lade ps` is asked for.
#[derive(Debug, Clone, Default)]
pub struct PsRequest {
    /// `-a`: every container, not only the active ones.
    pub all: bool,
    /// `-n`: the last N created, in any state.
    pub last: Option<usize>,
    /// `-l`: the latest created, in any state.
    pub latest: bool,
    /// `-s`: each row's sizes.
    pub size: bool,
    /// All must match.
    pub filters: Vec<PsFilter>,
}

/// One `ps --filter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PsFilter {
    /// `health=starting|healthy|unhealthy`, or `none` (no check) as `None`.
    Health(Option<HealthStatus>),
    Status(ContainerState),
    /// Names that contain it.
    Name(String),
    /// `label=KEY` (any value) or `label=KEY=VALUE`.
    Label(String, Option<String>),
    /// Made from this image: its name (`:latest` implied) or an id prefix.
    Ancestor(String),
    /// Exited with this code.
    Exited(i64),
    /// Ids that start with it.
    Id(String),
}

impl PsFilter {
    pub fn parse(text: &str) -> Result<PsFilter> {
        let bad = |expected: String| EngineError::BadValue {
            what: "--filter",
            value: text.to_string(),
            expected,
        };
        let (key, value) = text
            .split_once('=')
            .ok_or_else(|| bad("expected KEY=VALUE".into()))?;
        Ok(match key {
            "status" => PsFilter::Status(ContainerState::parse(value).ok_or_else(|| {
                bad(format!(
                    "status is one of {}",
                    ContainerState::ALL.map(ContainerState::as_str).join(", ")
                ))
            })?),
            "name" => PsFilter::Name(value.into()),
            "label" => match value.split_once('=') {
                Some((k, v)) => PsFilter::Label(k.into(), Some(v.into())),
                None => PsFilter::Label(value.into(), None),
            },
            "ancestor" => PsFilter::Ancestor(value.into()),
            "exited" => PsFilter::Exited(
                value
                    .parse()
                    .map_err(|_| bad("exited takes a number".into()))?,
            ),
            "id" => PsFilter::Id(value.into()),
            "health" => match (value, HealthStatus::parse(value)) {
                ("none", _) => PsFilter::Health(None),
                (_, Some(status)) => PsFilter::Health(Some(status)),
                _ => {
                    return Err(bad(
                        "health is one of starting, healthy, unhealthy, none".into()
                    ))
                }
            },
            other => {
                return Err(bad(format!(
                    "lade knows status, name, label, ancestor, exited, id, health (not {other})"
                )))
            }
        })
    }

    fn matches(&self, store: &Store, container: &Container) -> bool {
        let c = &container.record;
        match self {
            PsFilter::Health(wanted) => health_of(store, container) == *wanted,
            PsFilter::Status(state) => container.current_state() == *state,
            PsFilter::Name(name) => c.name.contains(name.as_str()),
            PsFilter::Label(key, value) => {
                let labels = &container.settings.labels;
                match value {
                    Some(value) => labels.get(key) == Some(value),
                    None => labels.contains_key(key),
                }
            }
            PsFilter::Ancestor(image) => {
                let hex = image.strip_prefix("sha256:").unwrap_or(image);
                c.image_name == *image
                    || c.image_name == format!("{image}:latest")
                    || (hex.len() >= 4 && c.image.hex().starts_with(hex))
            }
            PsFilter::Exited(code) => {
                container.current_state() == ContainerState::Exited && c.exit_code == Some(*code)
            }
            PsFilter::Id(prefix) => c.id.starts_with(prefix.as_str()),
        }
    }
}

/// A container's health, when it has a check (`starting` until its first result).
fn health_of(store: &Store, container: &Container) -> Option<HealthStatus> {
    container.settings.healthcheck.as_ref()?;
    Some(container::health(store, container.id()).map_or(HealthStatus::Starting, |h| h.status))
}

/// One container as `ps` shows it.
#[derive(Debug, Clone)]
pub struct ContainerRow {
    pub id: String,
    pub name: String,
    /// The image's name as the container was made from it.
    pub image: String,
    pub image_id: Digest,
    /// Its process's arguments, joined by spaces.
    pub command: String,
    /// Unix seconds.
    pub created: i64,
    /// What it is doing now.
    pub state: ContainerState,
    /// When it last started and ended (RFC 3339).
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub exit_code: Option<i64>,
    /// Its init's pid while it runs.
    pub pid: Option<i32>,
    pub labels: BTreeMap<String, String>,
    /// The ports it publishes while it runs.
    pub ports: Vec<PortMapping>,
    /// Its health, when it has a check.
    pub health: Option<HealthStatus>,
    /// With `-s`: its own changes, and its image's layers.
    pub size: Option<ContainerSize>,
    /// Its volumes and bind mounts.
    pub mounts: Vec<MountName>,
    /// The networks it is on.
    pub networks: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerSize {
    /// What the container wrote (its upper directory).
    pub own: u64,
    /// Its image's layers.
    pub image: u64,
}

/// `lade ps`: the containers asked for, newest first.
pub fn ps(
    store: &Store,
    request: &PsRequest,
    reporter: &dyn Reporter,
) -> Result<Vec<ContainerRow>> {
    // A container whose monitor was killed left its network: it goes now.
    if let Err(err) = container::reap_networks(store) {
        reporter.network_teardown_failed(&err.into());
    }
    // Docker's daemon lists stopped containers with -a, -n/-l, or a `status` filter
    // (which implies -a); its other filters apply to the running ones only.
    let any_state = request.all
        || request.latest
        || request.last.is_some()
        || request
            .filters
            .iter()
            .any(|f| matches!(f, PsFilter::Status(_)));
    // Each container's init is looked at once (a read of /proc), for its state and pid.
    let mut containers: Vec<_> = Container::all(store)?
        .into_iter()
        .map(|c| {
            let init = c.running_init();
            (c, init)
        })
        .filter(|(c, init)| any_state || c.state_seen(*init).is_active())
        .filter(|(c, _)| request.filters.iter().all(|f| f.matches(store, c)))
        .collect();
    let keep = if request.latest {
        Some(1)
    } else {
        request.last
    };
    if let Some(n) = keep {
        containers.truncate(n);
    }
    let image_sizes: HashMap<Digest, u64> = if request.size {
        store
            .list_images()?
            .into_iter()
            .map(|i| (i.id, i.size))
            .collect()
    } else {
        HashMap::new()
    };
    Ok(containers
        .into_iter()
        .map(|(container, init)| {
            let size = request.size.then(|| ContainerSize {
                own: container
                    .spec
                    .rootfs
                    .upper
                    .as_deref()
                    .map_or(0, store::dir_size),
                image: image_sizes
                    .get(&container.record.image)
                    .copied()
                    .unwrap_or(0),
            });
            let state = container.state_seen(init);
            let pid = init.map(|init| init.pid);
            let ports = container::published_ports(store, &container.record);
            let health = health_of(store, &container);
            let mounts = container::mount_names(store, &container);
            let networks = container::network_names(&container);
            let Container {
                record,
                spec,
                settings,
                ..
            } = container;
            ContainerRow {
                command: spec.process.args.join(" "),
                id: record.id,
                name: record.name,
                image: record.image_name,
                image_id: record.image,
                created: record.created,
                state,
                started_at: record.started_at,
                finished_at: record.finished_at,
                exit_code: record.exit_code,
                pid,
                labels: settings.labels,
                ports,
                health,
                size,
                mounts,
                networks,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_filters() {
        assert_eq!(
            PsFilter::parse("status=exited").unwrap(),
            PsFilter::Status(ContainerState::Exited)
        );
        assert_eq!(
            PsFilter::parse("label=a=b").unwrap(),
            PsFilter::Label("a".into(), Some("b".into()))
        );
        assert_eq!(
            PsFilter::parse("label=a").unwrap(),
            PsFilter::Label("a".into(), None)
        );
        assert_eq!(
            PsFilter::parse("exited=137").unwrap(),
            PsFilter::Exited(137)
        );
        let error = |text| PsFilter::parse(text).unwrap_err().to_string();
        assert_eq!(
            error("status"),
            "invalid --filter \"status\": expected KEY=VALUE"
        );
        assert_eq!(
            error("exited=x"),
            "invalid --filter \"exited=x\": exited takes a number"
        );
        assert!(error("status=sleeping").contains("status is one of created, "));
        assert!(error("size=1").ends_with("(not size)"));
    }
}
