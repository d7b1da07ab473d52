//! The networks a store keeps: each one's record and definition, made with a bridge
//! name and a subnet that no other network on this host has (host-wide claims, since
//! several stores share the host's links and routes), looked up, removed (with their
//! bridge and rules) and pruned, and the default network, made the first time a
//! container needs it.

use std::collections::BTreeMap;
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::{HostMounts, NetworkDefinition, NetworkError, Result, Subnet};
use crate::store::events::{self as event_log, Event};
use crate::store::{NetworkRecord, Store};

/// The network every container joins unless told otherwise (Docker's `bridge`).
pub const DEFAULT_NETWORK: &str = "lade";

/// Docker's name of its default network, which names lade's.
pub(super) const DOCKER_DEFAULT: &str = "bridge";

/// What `lade network create` asks for.
#[derive(Debug, Clone, Default)]
pub struct NetworkOptions {
    pub name: String,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    /// aardvark-dns for container names (user networks; not the default one, as Docker).
    pub dns: bool,
}

/// A network's definition, from its record.
pub fn definition(record: &NetworkRecord) -> Result<NetworkDefinition> {
    serde_json::from_str(&record.definition).map_err(|source| NetworkError::Definition {
        name: record.name.clone(),
        source,
    })
}

/// A network's record by name, full id or unique id prefix.
pub fn record(store: &Store, reference: &str) -> Result<NetworkRecord> {
    store
        .network(reference)?
        .ok_or_else(|| NetworkError::NoSuchNetwork(reference.to_string()))
}

/// A network by name, full id or unique id prefix.
pub fn find(store: &Store, reference: &str) -> Result<NetworkDefinition> {
    definition(&record(store, reference)?)
}

/// A network as `network connect` names it: `bridge` is the default network, made if
/// need be.
pub fn find_or_default(store: &Store, reference: &str) -> Result<NetworkDefinition> {
    match store.network(reference)? {
        Some(found) => definition(&found),
        None if reference == DOCKER_DEFAULT => default_network(store),
        None => Err(NetworkError::NoSuchNetwork(reference.to_string())),
    }
}

/// A network's name as `network disconnect` names it (`bridge` is the default network,
/// which need not exist yet).
pub fn name_of(store: &Store, reference: &str) -> Result<String> {
    match store.network(reference)? {
        Some(found) => Ok(found.name),
        None if reference == DOCKER_DEFAULT => Ok(DEFAULT_NETWORK.to_string()),
        None => Err(NetworkError::NoSuchNetwork(reference.to_string())),
    }
}

/// The default network, made the first time a container needs it.
pub fn default_network(store: &Store) -> Result<NetworkDefinition> {
    if let Some(record) = store.network(DEFAULT_NETWORK)? {
        return definition(&record);
    }
    let options = NetworkOptions {
        name: DEFAULT_NETWORK.into(),
        dns: false,
        ..NetworkOptions::default()
    };
    match create(store, &options) {
        Ok(network) => Ok(network),
        // Made by another command meanwhile.
        Err(NetworkError::Exists(_)) => find(store, DEFAULT_NETWORK),
        Err(e) => Err(e),
    }
}

/// A network name: Docker's characters, at most 64.
fn check_name(name: &str) -> Result<()> {
    let bad = |reason| NetworkError::BadName {
        name: name.to_string(),
        reason,
    };
    let mut chars = name.chars();
    let docker = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !docker {
        return Err(bad("only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"));
    }
    if name.len() > 64 {
        return Err(bad("at most 64 characters"));
    }
    Ok(())
}

/// The directory where bridge names and subnets are claimed for every store on this
/// host, so two stores never pick the same ones.
fn claims_dir() -> PathBuf {
    super::runtime_dir().join("claims")
}

/// The subnets and bridge names no new network may have: the host's routes and links,
/// this store's networks, and the live claims of every store on the host.
fn taken(store: &Store, claims: &Path) -> Result<(Vec<Subnet>, Vec<String>)> {
    let mut subnets: Vec<Subnet> = super::host_routes();
    let mut bridges: Vec<String> = super::host_links();
    for record in store.networks()? {
        if let Ok(existing) = definition(&record) {
            subnets.push(existing.subnet);
            bridges.push(existing.bridge);
        }
    }
    for claim in fs::read_dir(claims).into_iter().flatten().flatten() {
        let text = fs::read_to_string(claim.path()).unwrap_or_default();
        let mut lines = text.lines();
        let (Some(subnet), Some(owner)) = (lines.next(), lines.next()) else {
            continue;
        };
        // A claim of a store that is gone is void.
        if !Path::new(owner).join("lade.db").exists() {
            continue;
        }
        bridges.push(claim.file_name().to_string_lossy().into_owned());
        if let Ok(subnet) = subnet.parse() {
            subnets.push(subnet);
        }
    }
    Ok((subnets, bridges))
}

/// A bridge claimed by a store that is gone (its directory deleted without
/// `system reset`): the bridge, its rules and its claim outlived every store that could
/// remove them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrphanBridge {
    pub bridge: String,
    /// The store that claimed it.
    pub owner: String,
    /// Whether the bridge itself is still there (else only its claim is left).
    pub present: bool,
}

/// The bridges of stores that are gone, from the host's claims.
pub fn orphan_bridges() -> Vec<OrphanBridge> {
    let links = super::host_links();
    let mut orphans: Vec<OrphanBridge> = fs::read_dir(claims_dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|claim| {
            let text = fs::read_to_string(claim.path()).ok()?;
            let owner = text.lines().nth(1)?.to_string();
            if Path::new(&owner).join("lade.db").exists() {
                return None;
            }
            let bridge = claim.file_name().to_string_lossy().into_owned();
            // Rootless bridges are in lade's own namespace, not among the host's links.
            let present = super::is_rootless() || links.contains(&bridge);
            Some(OrphanBridge {
                bridge,
                owner,
                present,
            })
        })
        .collect();
    orphans.sort_by(|a, b| a.bridge.cmp(&b.bridge));
    orphans
}

/// Removes an orphan's bridge, rules and claim, under the host's network lock and only
/// if its store is still gone (a store made meanwhile at that path owns it again).
pub fn remove_orphan_bridge(orphan: &OrphanBridge, host_mounts: HostMounts) -> Result<()> {
    let _host = super::host_lock().map_err(|source| NetworkError::Io {
        path: super::runtime_dir().join("network.lock"),
        source,
    })?;
    let claim = claims_dir().join(&orphan.bridge);
    let still_orphan = fs::read_to_string(&claim).is_ok_and(|text| {
        text.lines().nth(1) == Some(orphan.owner.as_str())
            && !Path::new(&orphan.owner).join("lade.db").exists()
    });
    if !still_orphan {
        return Ok(());
    }
    super::driver::remove_bridge_holding_lock(&orphan.bridge, host_mounts)?;
    fs::remove_file(&claim).map_err(|source| NetworkError::Io {
        path: claim.clone(),
        source,
    })
}

fn new_id() -> Result<String> {
    let mut bytes = [0u8; 32];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .map_err(|source| NetworkError::Io {
            path: "/dev/urandom".into(),
            source,
        })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Makes a bridge network: its bridge name and subnet are chosen (or checked) against
/// the host's links and routes and every store's claims.
pub fn create(store: &Store, options: &NetworkOptions) -> Result<NetworkDefinition> {
    check_name(&options.name)?;
    if matches!(
        options.name.as_str(),
        DOCKER_DEFAULT | "host" | "none" | "default"
    ) {
        return Err(NetworkError::Predefined(options.name.clone()));
    }
    if store.network(&options.name)?.is_some() {
        return Err(NetworkError::Exists(options.name.clone()));
    }
    let _host = super::host_lock().map_err(|source| NetworkError::Io {
        path: super::runtime_dir().join("network.lock"),
        source,
    })?;
    let claims = claims_dir();
    super::private_runtime_dir(&claims).map_err(|source| NetworkError::Io {
        path: claims.clone(),
        source,
    })?;
    let (taken_subnets, taken_bridges) = taken(store, &claims)?;
    let subnet = match &options.subnet {
        Some(text) => {
            let subnet: Subnet = text.parse().map_err(NetworkError::BadSubnet)?;
            // Rootless, bridges live beside the namespace's own link out, whose
            // subnet would lose its route to them.
            let way_out = super::rootless_netns::WAY_OUT;
            let way_out = Subnet::new(way_out.address, way_out.prefix);
            if let Some(way_out) = way_out.filter(|w| super::is_rootless() && w.overlaps(&subnet)) {
                return Err(NetworkError::SubnetOverlapsWayOut {
                    subnet: subnet.to_string(),
                    way_out: way_out.to_string(),
                });
            }
            if let Some(clash) = taken_subnets.iter().find(|t| t.overlaps(&subnet)) {
                return Err(NetworkError::SubnetOverlap {
                    subnet: subnet.to_string(),
                    clash: clash.to_string(),
                });
            }
            subnet
        }
        None => super::free_subnet(&taken_subnets).ok_or(NetworkError::NoFreeSubnet)?,
    };
    let gateway = match &options.gateway {
        Some(text) => {
            let gateway: Ipv4Addr = text
                .parse()
                .map_err(|_| NetworkError::BadGateway(text.clone()))?;
            if !subnet.contains(gateway) {
                return Err(NetworkError::GatewayOutside {
                    gateway: gateway.to_string(),
                    subnet: subnet.to_string(),
                });
            }
            gateway
        }
        None => subnet.gateway(),
    };
    let bridge = (0..)
        .map(|n| format!("lade{n}"))
        .find(|name| !taken_bridges.contains(name))
        .unwrap_or_else(|| "lade".into());
    let id = new_id()?;
    let network = NetworkDefinition {
        name: options.name.clone(),
        id: id.clone(),
        bridge: bridge.clone(),
        subnet,
        gateway,
        internal: options.internal,
        dns_enabled: options.dns,
        labels: options.labels.clone(),
        created: jiff::Timestamp::now().to_string(),
    };
    let definition =
        serde_json::to_string(&network).map_err(|source| NetworkError::Definition {
            name: network.name.clone(),
            source,
        })?;
    let claim = claims.join(&bridge);
    fs::write(&claim, format!("{subnet}\n{}\n", store.root().display())).map_err(|source| {
        NetworkError::Io {
            path: claim.clone(),
            source,
        }
    })?;
    let inserted = store.insert_network(&NetworkRecord {
        name: network.name.clone(),
        id,
        definition,
    });
    match inserted {
        Ok(true) => {
            record_event(store, &network.id, &network.name, "create", None);
            Ok(network)
        }
        Ok(false) => {
            let _ = fs::remove_file(&claim);
            Err(NetworkError::Exists(options.name.clone()))
        }
        Err(e) => {
            let _ = fs::remove_file(&claim);
            Err(e.into())
        }
    }
}

/// Removes a network no container uses; returns its name. The default network stays.
pub fn remove(store: &Store, reference: &str, host_mounts: HostMounts) -> Result<String> {
    if reference == DOCKER_DEFAULT || reference == DEFAULT_NETWORK {
        return Err(NetworkError::DefaultKept(reference.to_string()));
    }
    remove_record(store, record(store, reference)?, host_mounts)
}

fn remove_record(store: &Store, record: NetworkRecord, host_mounts: HostMounts) -> Result<String> {
    let users = store.network_users(&record.name)?;
    if !users.is_empty() {
        let names: Vec<String> = users
            .iter()
            .map(|id| {
                store
                    .container(id)
                    .map_or_else(|_| id[..12].to_string(), |c| c.name)
            })
            .collect();
        return Err(NetworkError::InUse {
            name: record.name.clone(),
            users: names,
        });
    }
    let network = definition(&record)?;
    // Its bridge and rules first: a record is never gone while they are left.
    super::remove_bridge(&network, host_mounts)?;
    store.delete_network(&record.name)?;
    let claim = claims_dir().join(&network.bridge);
    let owned = fs::read_to_string(&claim)
        .is_ok_and(|text| text.lines().nth(1) == Some(&store.root().display().to_string()));
    if owned {
        let _ = fs::remove_file(claim);
    }
    record_event(store, &network.id, &network.name, "destroy", None);
    Ok(record.name)
}

/// Removes every network of the store, the default one too, with its bridge and rules
/// (`system reset`, once the containers are gone); returns their names. Each one is
/// tried; the first failure is returned once all were.
pub fn remove_all(store: &Store, host_mounts: HostMounts) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    let mut first_failure = None;
    for record in store.networks()? {
        match remove_record(store, record, host_mounts) {
            Ok(name) => removed.push(name),
            Err(e) => {
                first_failure.get_or_insert(e);
            }
        }
    }
    match first_failure {
        Some(error) => Err(error),
        None => Ok(removed),
    }
}

/// Removes the user networks no container is on that `pass` takes (it sees each one's
/// creation time, RFC 3339, and labels); returns their names.
pub fn prune(
    store: &Store,
    pass: &dyn Fn(&str, &BTreeMap<String, String>) -> bool,
    host_mounts: HostMounts,
) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for record in store.networks()? {
        if record.name == DEFAULT_NETWORK || !store.network_users(&record.name)?.is_empty() {
            continue;
        }
        let network = definition(&record)?;
        if !pass(&network.created, &network.labels) {
            continue;
        }
        removed.push(remove_record(store, record, host_mounts)?);
    }
    Ok(removed)
}

/// Records a network event (`create`, `destroy`, `connect`, `disconnect`) for `lade
/// events`: Docker's actor is the network, with its `name` and `type`, and the
/// container's id for (dis)connect. Recording never fails the operation.
pub fn record_event(
    store: &Store,
    network_id: &str,
    name: &str,
    action: &str,
    container: Option<&str>,
) {
    let mut attributes = BTreeMap::from([
        ("name".to_string(), name.to_string()),
        ("type".to_string(), "bridge".to_string()),
    ]);
    if let Some(container) = container {
        attributes.insert("container".into(), container.to_string());
    }
    event_log::record(store, Event::new("network", action, network_id, attributes));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_names_follow_docker() {
        assert!(check_name("front-1.a_b").is_ok());
        assert!(check_name("n").is_ok());
        assert!(check_name(&"n".repeat(65)).is_err());
        for bad in ["", "a/b", "../x", "a\nb", "-n", "a b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            check_name("a b").map_err(|e| e.to_string()),
            Err("invalid network name \"a b\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed".into())
        );
    }
}
