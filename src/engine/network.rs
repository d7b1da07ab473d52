//! `lade network`: networks made, listed, inspected, removed and pruned (the network
//! module's), and containers connected to and disconnected from them, which changes
//! both the container's record (its plan, its address) and, when it runs, its live
//! namespace; the order of those steps, and the address given back when one fails, are
//! here.

use super::{EngineError, Result};
use crate::container::{self, validate, Container};
use crate::network::{
    self, DnsUnavailable, Driver, NetworkDefinition, NetworkInspect, NetworkOptions,
};
use crate::store::Store;

/// What `lade network connect` asks for.
#[derive(Debug, Clone, Default)]
pub struct ConnectRequest {
    /// The network's name or id (`bridge` for the default network).
    pub network: String,
    /// The container's name or id.
    pub container: String,
    /// `--alias`: more names the container answers to on the network.
    pub aliases: Vec<String>,
    /// `--ip`: its IPv4 address there.
    pub ip: Option<String>,
}

/// What `lade network disconnect` asks for.
#[derive(Debug, Clone, Default)]
pub struct DisconnectRequest {
    pub network: String,
    pub container: String,
}

/// `lade network create`.
pub fn create_network(store: &Store, options: &NetworkOptions) -> Result<NetworkDefinition> {
    for key in options.labels.keys() {
        validate::label_key(key).map_err(container::ContainerError::from)?;
    }
    Ok(network::create(store, options)?)
}

/// One `network ls --filter`.
#[derive(Debug, Clone)]
pub enum NetworkFilter {
    /// `name=REGEX`: names it matches anywhere.
    Name(regex::Regex),
    /// `id=PREFIX`.
    Id(String),
    /// `label=KEY` or `label=KEY=VALUE`.
    Label { key: String, value: Option<String> },
    /// `driver=NAME` (lade's networks are all `bridge`).
    Driver(String),
    /// `type=builtin` (the default network) or `type=custom`.
    Builtin(bool),
}

impl NetworkFilter {
    pub fn parse(text: &str) -> Result<NetworkFilter> {
        let bad = |expected: String| EngineError::BadValue {
            what: "--filter",
            value: text.to_string(),
            expected,
        };
        match text.split_once('=') {
            Some(("name", pattern)) => regex::Regex::new(pattern)
                .map(NetworkFilter::Name)
                .map_err(|e| bad(format!("not a regular expression: {e}"))),
            Some(("id", prefix)) => Ok(NetworkFilter::Id(prefix.to_string())),
            Some(("driver", driver)) => Ok(NetworkFilter::Driver(driver.to_string())),
            Some(("type", "builtin")) => Ok(NetworkFilter::Builtin(true)),
            Some(("type", "custom")) => Ok(NetworkFilter::Builtin(false)),
            Some(("type", _)) => Err(bad("type= takes custom or builtin".into())),
            Some(("label", label)) if !label.is_empty() => {
                let (key, value) = match label.split_once('=') {
                    Some((key, value)) => (key.to_string(), Some(value.to_string())),
                    None => (label.to_string(), None),
                };
                Ok(NetworkFilter::Label { key, value })
            }
            _ => Err(bad(
                "lade knows name=, id=, label=, driver= and type=".into()
            )),
        }
    }

    fn keeps(&self, network: &NetworkInspect) -> bool {
        match self {
            NetworkFilter::Name(pattern) => pattern.is_match(&network.name),
            NetworkFilter::Id(prefix) => network.id.starts_with(prefix.as_str()),
            NetworkFilter::Driver(driver) => network.driver == driver,
            NetworkFilter::Builtin(builtin) => (network.name == "bridge") == *builtin,
            NetworkFilter::Label { key, value } => match (network.labels.get(key), value) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(found), Some(wanted)) => found == wanted,
            },
        }
    }
}

/// Makes the default network if it is not there yet: Docker always has its `bridge`,
/// and scripts look it up.
pub fn ensure_default_network(store: &Store) -> Result<()> {
    network::default_network(store)?;
    Ok(())
}

/// Whether the default network is made yet: once it is, listing and inspecting
/// networks only read the store.
pub fn has_default_network(store: &Store) -> Result<bool> {
    Ok(store.network(network::DEFAULT_NETWORK)?.is_some())
}

/// `lade network ls`: the networks every filter keeps, by name.
pub fn list_networks(store: &Store, filters: &[NetworkFilter]) -> Result<Vec<NetworkInspect>> {
    let mut networks = network::list(store)?;
    networks.retain(|n| filters.iter().all(|f| f.keeps(n)));
    for network in &mut networks {
        only_running(store, network);
    }
    Ok(networks)
}

/// `lade network inspect`, for one network (`bridge` is the default network).
pub fn inspect_network(store: &Store, reference: &str) -> Result<NetworkInspect> {
    let mut network = network::inspect(store, reference)?;
    only_running(store, &mut network);
    Ok(network)
}

/// As Docker's, a network's `Containers` are those running on it: a stopped
/// container keeps its address claim, not an endpoint.
fn only_running(store: &Store, network: &mut NetworkInspect) {
    network.containers.retain(|id, _| {
        store
            .container(id)
            .ok()
            .and_then(|record| container::ContainerState::current(&record).ok())
            .is_some_and(|state| state.is_up())
    });
}

/// `lade network rm`, for one network: its name.
pub fn remove_network(store: &Store, reference: &str) -> Result<String> {
    Ok(network::remove(
        store,
        reference,
        crate::exec::mounts::host_mount_namespace,
    )?)
}

/// `lade network prune`: the names of the networks removed.
pub fn prune_networks(store: &Store, filters: &super::PruneFilters) -> Result<Vec<String>> {
    Ok(network::prune(
        store,
        &|created, labels| {
            let created = created
                .parse::<jiff::Timestamp>()
                .ok()
                .map(|t| t.as_second());
            filters.pass(created, labels)
        },
        crate::exec::mounts::host_mount_namespace,
    )?)
}

/// `lade network connect`: the container joins the network at once when it runs (on a
/// bridge network of its own), else at its next start. Returns what the network lacks
/// when joined at once (names that will not resolve).
pub fn connect_network(store: &Store, request: &ConnectRequest) -> Result<Option<DnsUnavailable>> {
    let (target, _change) = Container::load_for_change(store, &request.container)?;
    let running = target.running_init().is_some();
    let network = network::find_or_default(store, &request.network)?;
    let (mut plan, attachment) = container::plan_join(
        store,
        &target,
        &network,
        &request.aliases,
        request.ip.as_deref(),
    )?;
    let joined = attachment.network.name.clone();
    let joined_id = attachment.network.id.clone();
    let rest = || -> Result<Option<DnsUnavailable>> {
        let mut dns_unavailable = None;
        if running {
            // Connected now, in the namespace it runs in: that network alone, no ports.
            let file = container::live_namespace(&target)?;
            dns_unavailable = Driver::for_store(store, crate::exec::mounts::host_mount_namespace)
                .connect(&file, &plan.alone(&attachment))?;
        }
        plan.attachments.push(attachment);
        container::set_network_plan(store, &target, plan)?;
        let id = Some(target.record.id.as_str());
        network::record_event(store, &joined_id, &joined, "connect", id);
        Ok(dns_unavailable)
    };
    rest().inspect_err(|_| {
        let _ = network::release_addresses(store, &target.record.id, Some(&joined));
    })
}

/// `lade network disconnect`: the container leaves the network (at once when it runs).
pub fn disconnect_network(store: &Store, request: &DisconnectRequest) -> Result<()> {
    let (target, _change) = Container::load_for_change(store, &request.container)?;
    let running = target.running_init().is_some();
    let name = network::name_of(store, &request.network)?;
    let (mut plan, leaving) = container::plan_leave(&target, &name)?;
    let left_id = leaving.network.id.clone();
    if running {
        let file = container::live_namespace(&target)?;
        Driver::for_store(store, crate::exec::mounts::host_mount_namespace)
            .disconnect(&file, &plan.alone(&leaving))?;
    }
    plan.leave(&name, !running);
    network::release_addresses(store, &target.record.id, Some(&name))?;
    container::set_network_plan(store, &target, plan)?;
    let id = Some(target.record.id.as_str());
    network::record_event(store, &left_id, &name, "disconnect", id);
    Ok(())
}
