//! `lade network`: networks made, listed, inspected, removed and pruned (the network
//! module's), and containers connected to and disconnected from them, which changes
//! both the container's record (its plan, its address) and, when it runs, its live
//! namespace; the order of those steps, and the address given back when one fails, are
//! here.

use super::Result;
use crate::container::{self, validate, Container};
use crate::network::{
    self, DnsUnavailable, Netavark, NetworkDefinition, NetworkInspect, NetworkOptions,
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

/// `lade network ls`.
pub fn list_networks(store: &Store) -> Result<Vec<NetworkInspect>> {
    Ok(network::list(store)?)
}

/// `lade network inspect`, for one network.
pub fn inspect_network(store: &Store, reference: &str) -> Result<NetworkInspect> {
    Ok(network::inspect(store, reference)?)
}

/// `lade network rm`, for one network: its name.
pub fn remove_network(store: &Store, reference: &str) -> Result<String> {
    Ok(network::remove(store, reference)?)
}

/// `lade network prune`: the names of the networks removed.
pub fn prune_networks(store: &Store) -> Result<Vec<String>> {
    Ok(network::prune(store)?)
}

/// `lade network connect`: the container joins the network at once when it runs (on a
/// bridge network of its own), else at its next start. Returns what the network lacks
/// when joined at once (names that will not resolve).
pub fn connect_network(store: &Store, request: &ConnectRequest) -> Result<Option<DnsUnavailable>> {
    let target = Container::load(store, &request.container)?;
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
            dns_unavailable = Netavark::for_store(store)?.setup(&file, &plan.alone(&attachment))?;
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
    let target = Container::load(store, &request.container)?;
    let running = target.running_init().is_some();
    let name = network::name_of(store, &request.network)?;
    let (mut plan, leaving) = container::plan_leave(&target, &name)?;
    let left_id = leaving.network.id.clone();
    if running {
        let file = container::live_namespace(&target)?;
        Netavark::for_store(store)?.teardown(&file, &plan.alone(&leaving))?;
    }
    plan.leave(&name, !running);
    network::release_addresses(store, &target.record.id, Some(&name))?;
    container::set_network_plan(store, &target, plan)?;
    let id = Some(target.record.id.as_str());
    network::record_event(store, &left_id, &name, "disconnect", id);
    Ok(())
}
