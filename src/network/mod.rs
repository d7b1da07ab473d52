//! Container networks, on a bridge driver of lade's own (`driver`): bridges, veth
//! pairs, addresses and routes through rtnetlink (`netlink`), the network's and the
//! published ports' rules in iptables-restore transactions (`firewall`, with the
//! loopback guard of `localnet`), and aardvark-dns, podman's DNS server, for container
//! names on user networks (`aardvark`). A network's bridge and rules live as long as the
//! network. This module also owns subnets, published-port syntax and host-port
//! reservations, the persistent network namespaces containers join, and network
//! management: the networks a store keeps (records, definitions, create, remove, prune,
//! inspect data, the default network) and containers' addresses on them, since a
//! network's record and its address claims are stored state. What a container makes of
//! its networks (its plan at create, the session of each start) is the container
//! module's.
//!
//! Rootless, the bridge driver works in a network namespace of the user's own
//! (`rootless_netns`, with pasta or slirp4netns as its way out), as podman 4+ does, and
//! published ports reach its containers through lade's own forwarder (`forward`);
//! pasta and slirp4netns, also the default network of rootless containers, are in
//! `pasta` and `slirp`.

mod aardvark;
mod address;
mod dns;
mod driver;
mod firewall;
mod forward;
mod inspect;
mod localnet;
mod manage;
mod namespace;
mod netlink;
pub mod pasta;
mod ports;
mod rootless_netns;
pub mod slirp;
mod subnet;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::store::StoreError;

pub use address::{allocate_address, release_addresses};
pub use driver::{remove_bridge, Driver, HostMounts, Published};
pub use firewall::FirewallError;
pub use inspect::{inspect, list, Endpoint, Ipam, IpamConfig, NetworkInspect};
pub use manage::{
    create, default_network, definition, find, find_or_default, name_of, orphan_bridges, prune,
    record_event, remove, remove_all, remove_orphan_bridge, NetworkOptions, OrphanBridge,
    DEFAULT_NETWORK,
};
pub use namespace::{namespace_dir, namespace_file, remove_namespace, NetNamespace};
pub use netlink::mac_address;
pub use ports::{parse_publish, reserve, tcp_port_free, PortMapping, Reservation};
pub use subnet::{free_subnet, host_routes, Subnet, SubnetError};

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("cannot {what}: {source}")]
    Link {
        what: String,
        source: std::io::Error,
    },
    #[error("the firewall: {0}")]
    Firewall(#[from] FirewallError),
    #[error("container names: {0}")]
    Dns(DnsError),
    #[error("invalid -p {text:?}: {reason}")]
    Publish { text: String, reason: String },
    #[error("host port {address} is already in use: {source}")]
    PortInUse {
        address: String,
        source: std::io::Error,
    },
    #[error("cannot publish {address}: the host has no address {ip}")]
    NoSuchHostAddress { address: String, ip: Ipv4Addr },
    #[error("cannot publish {address}: {source}")]
    CannotPublish {
        address: String,
        source: std::io::Error,
    },
    /// Rootless networking through pasta failed; the message says how to fix it.
    #[error("{0}")]
    Pasta(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no such network: {0}")]
    NoSuchNetwork(String),
    #[error("network {0} already exists")]
    Exists(String),
    #[error("{0} is a predefined network name")]
    Predefined(String),
    #[error("{0} is lade's default network: it cannot be removed")]
    DefaultKept(String),
    #[error("invalid network name {name:?}: {reason}")]
    BadName { name: String, reason: &'static str },
    #[error("invalid --subnet: {0}")]
    BadSubnet(#[source] SubnetError),
    #[error("--subnet {subnet} overlaps {clash}, which a route or another network has")]
    SubnetOverlap { subnet: String, clash: String },
    #[error("--subnet {subnet} overlaps {way_out}, rootless lade's way out to the host (its network namespace's link to pasta or slirp4netns): choose another subnet")]
    SubnetOverlapsWayOut { subnet: String, way_out: String },
    #[error("no free private subnet left in 10.89.0.0-10.99.255.0")]
    NoFreeSubnet,
    #[error("invalid --gateway {0:?}: expected an IPv4 address")]
    BadGateway(String),
    #[error("--gateway {gateway} is not in --subnet {subnet}")]
    GatewayOutside { gateway: String, subnet: String },
    #[error("network {name} is in use by container(s) {}: remove them first", users.join(", "))]
    InUse { name: String, users: Vec<String> },
    #[error("--ip {ip} is not an address of network {network} ({subnet})")]
    AddressOutside {
        ip: Ipv4Addr,
        network: String,
        subnet: String,
    },
    #[error("--ip {ip} is taken on network {network}")]
    AddressTaken { ip: Ipv4Addr, network: String },
    #[error("network {network} has no address left ({subnet})")]
    NoAddressLeft { network: String, subnet: String },
    #[error("a bad address in the store: {0}")]
    StoredAddress(String),
    /// A network's record keeps a definition that cannot be read (or one that cannot be
    /// written).
    #[error("network {name}: its definition: {source}")]
    Definition {
        name: String,
        source: serde_json::Error,
    },
}

/// Container names will not resolve on these networks: aardvark-dns, which answers them,
/// does not run. The container runs all the same (Docker's names are a convenience, and
/// addresses still work), so this is told as a warning.
#[derive(Debug)]
pub struct DnsUnavailable {
    /// The networks' names, as their user knows them.
    pub networks: Vec<String>,
    pub cause: DnsError,
}

/// Why aardvark-dns does not answer a network's names.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("aardvark-dns is not installed ({}): apt-get install aardvark-dns", path.display())]
    NotInstalled { path: PathBuf },
    #[error("cannot run {}: {source}", path.display())]
    CannotRun {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} failed ({status}){}", path.display(), said_note(said))]
    Failed {
        path: PathBuf,
        status: std::process::ExitStatus,
        /// What it said on stderr.
        said: String,
    },
    #[error(
        "{} started but does not run (its pid file {} names no aardvark-dns)",
        path.display(),
        pid_file.display()
    )]
    NotRunning { path: PathBuf, pid_file: PathBuf },
    #[error("{} does not answer the container's name: {source}", path.display())]
    NoAnswer {
        path: PathBuf,
        source: dns::ProbeError,
    },
    #[error("aardvark-dns's files: {source}")]
    Files { source: std::io::Error },
}

fn said_note(said: &str) -> String {
    if said.is_empty() {
        String::new()
    } else {
        format!(": {said}")
    }
}

impl std::fmt::Display for DnsUnavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plural = if self.networks.len() == 1 { "" } else { "s" };
        write!(
            f,
            "container names will not resolve on network{plural} {}: {}",
            self.networks.join(", "),
            self.cause
        )
    }
}

pub type Result<T, E = NetworkError> = std::result::Result<T, E>;

/// A bridge network, as lade keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkDefinition {
    pub name: String,
    /// 64 hex digits.
    pub id: String,
    /// The bridge's name on the host.
    pub bridge: String,
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
    /// No route out, no NAT, no published ports.
    pub internal: bool,
    /// aardvark-dns answers the names of the containers on it (user networks).
    pub dns_enabled: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// RFC 3339.
    pub created: String,
}

/// A container on one network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub network: NetworkDefinition,
    pub ip: Ipv4Addr,
    /// `--network-alias`, and the container's short id, as Docker answers.
    pub aliases: Vec<String>,
    /// `eth0`, `eth1`, ...
    pub interface: String,
    /// `--mac-address`: the interface's fixed MAC address, lower-case and colon-separated
    /// (`92:d0:c6:0a:29:33`); none for Docker's, made from the address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
}

impl Attachment {
    /// The interface's MAC address: `--mac-address` when one was given, else Docker's
    /// (02:42 and the IPv4 address).
    pub fn mac(&self) -> [u8; 6] {
        self.mac_address
            .as_deref()
            .and_then(|text| {
                let bytes: Vec<u8> = text
                    .split(':')
                    .map(|b| u8::from_str_radix(b, 16))
                    .collect::<Result<_, _>>()
                    .ok()?;
                bytes.try_into().ok()
            })
            .unwrap_or_else(|| netlink::container_mac(self.ip))
    }

    /// [`Attachment::mac`] as Docker's `inspect` shows it.
    pub fn mac_text(&self) -> String {
        netlink::format_mac(self.mac())
    }
}

/// Everything the driver needs to set up (or tear down) one container's networks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerNetwork {
    pub container_id: String,
    pub container_name: String,
    pub attachments: Vec<Attachment>,
    pub ports: Vec<PortMapping>,
    /// `--dns`, which aardvark-dns forwards to.
    pub dns_servers: Vec<Ipv4Addr>,
}

impl ContainerNetwork {
    /// The container on `attachment`'s network alone, without published ports: what
    /// the driver is given to connect a running container to one more network, or to
    /// disconnect it from one.
    pub fn alone(&self, attachment: &Attachment) -> ContainerNetwork {
        ContainerNetwork {
            attachments: vec![attachment.clone()],
            ports: Vec::new(),
            ..self.clone()
        }
    }

    /// Takes the container off `network`. `renumber` names the interfaces left `eth0`,
    /// `eth1`, ... again: for a container that does not run (a running one keeps its
    /// interfaces' names until its next start).
    pub fn leave(&mut self, network: &str, renumber: bool) {
        self.attachments.retain(|a| a.network.name != network);
        if renumber {
            for (n, attachment) in self.attachments.iter_mut().enumerate() {
                attachment.interface = format!("eth{n}");
            }
        }
    }
}

/// Removes rootless lade's own network namespace and stops its way out (`system
/// migrate`); nothing for root.
pub fn remove_rootless_namespace(host_mounts: HostMounts) -> Result<()> {
    rootless_netns::remove(host_mounts)
}

/// lade's runtime files on this host: network namespaces, claims, the host lock.
/// `/run/lade` for root; for an ordinary user (rootless lade, root only inside its user
/// namespace) `$XDG_RUNTIME_DIR/lade`, else `/tmp/lade-run-UID`, as podman keeps them.
/// The same rule as the exec module's (which this module may not use): the line of
/// `/proc/self/uid_map` that maps id 0 names the user outside.
pub fn runtime_dir() -> PathBuf {
    let outside_uid = std::fs::read_to_string("/proc/self/uid_map")
        .ok()
        .and_then(|map| {
            map.lines().find_map(|line| {
                let fields: Vec<u64> = line
                    .split_whitespace()
                    .filter_map(|field| field.parse().ok())
                    .collect();
                match fields.as_slice() {
                    [0, outside, count] if *count >= 1 => u32::try_from(*outside).ok(),
                    _ => None,
                }
            })
        })
        .filter(|outside| *outside != 0)
        .or_else(|| {
            let uid = nix::unistd::geteuid().as_raw();
            (uid != 0).then_some(uid)
        });
    let Some(uid) = outside_uid else {
        return PathBuf::from("/run/lade");
    };
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("lade"),
        _ => PathBuf::from(format!("/tmp/lade-run-{uid}")),
    }
}

/// Whether lade runs rootless (in an ordinary user's user namespace): the bridge driver
/// is root's alone, and networks go through pasta.
pub fn is_rootless() -> bool {
    runtime_dir() != Path::new("/run/lade")
}

/// Makes `dir` and its parents up to [`runtime_dir`], each mode 0700, and closes any of
/// them an older lade left open: their names are container ids and their files show
/// which stores exist, which is no other user's business.
pub fn private_runtime_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let runtime = runtime_dir();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    for made in dir
        .ancestors()
        .take_while(|made| made.starts_with(&runtime))
    {
        if std::fs::symlink_metadata(made)?.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(made, std::fs::Permissions::from_mode(0o700))?;
        }
    }
    Ok(())
}

/// A host-wide lock (`/run/lade/network.lock`) for what several stores share: the
/// driver's changes to the host, and choosing bridge names and subnets.
pub fn host_lock() -> std::io::Result<nix::fcntl::Flock<std::fs::File>> {
    let dir = &runtime_dir();
    private_runtime_dir(dir)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("network.lock"))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| std::io::Error::from(e))
}

/// Bridges on this host now (`/sys/class/net`).
pub fn host_links() -> Vec<String> {
    std::fs::read_dir("/sys/class/net")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dns_warning_names_the_networks_and_the_cause() {
        let warning = DnsUnavailable {
            networks: vec!["front".into()],
            cause: DnsError::NotInstalled {
                path: "/usr/lib/podman/aardvark-dns".into(),
            },
        };
        assert_eq!(
            warning.to_string(),
            "container names will not resolve on network front: aardvark-dns is not installed (/usr/lib/podman/aardvark-dns): apt-get install aardvark-dns"
        );
    }
}
