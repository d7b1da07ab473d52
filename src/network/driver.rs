//! lade's bridge driver: what a container's start, its end, `network connect` and
//! `disconnect` do to the host, and what a network's removal undoes.
//!
//! A network's state lives while the network exists, as Docker's does: its bridge (with
//! the gateway's address and `route_localnet`) and its firewall rules are made when a
//! container first needs them, and stay after the last container leaves, until `network
//! rm`, `network prune` or `system reset`. Its rules are checked at each use, and made
//! again when a firewall flush took them. Per container there is only a veth pair, made
//! with its peer directly in the container's namespace (where it gets its address, and
//! the default route through the first network that has one), the DNAT rules of its
//! published ports, and its names in aardvark-dns's files. Its veth goes when its
//! namespace goes (the kernel removes a namespace's links as it frees it).

use std::fs::File;
use std::io::Read;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

use super::aardvark::{self, Aardvark, Entry};
use super::forward;
use super::netlink::Netlink;
use super::{
    dns, firewall, host_lock, rootless_netns, Attachment, ContainerNetwork, DnsError,
    DnsUnavailable, NetworkDefinition, NetworkError, Reservation, Result,
};

/// A running container's published ports, carried to it until this is dropped.
#[derive(Debug)]
pub enum Published {
    /// Root: the host ports held while the firewall's rules forward them.
    Held(Reservation),
    /// Rootless: lade's own forwarder, listening on them.
    Forwarded(forward::Forwarder),
}
use crate::store::Store;

/// How long a new container's names may take to be answered (aardvark-dns reads its
/// files again and binds anew after each change).
const DNS_READY: Duration = Duration::from_secs(5);

fn link_error(what: String) -> impl FnOnce(std::io::Error) -> NetworkError {
    move |source| NetworkError::Link { what, source }
}

fn locked() -> Result<nix::fcntl::Flock<File>> {
    host_lock().map_err(|source| NetworkError::Io {
        path: super::runtime_dir().join("network.lock"),
        source,
    })
}

/// Writes a sysctl under `/proc/sys` unless it has the value already.
fn sysctl(path: &str, value: &str) -> Result<()> {
    if std::fs::read_to_string(path).is_ok_and(|now| now.trim() == value) {
        return Ok(());
    }
    std::fs::write(path, value).map_err(|source| NetworkError::Io {
        path: path.into(),
        source,
    })
}

/// Makes sure `network`'s rules and bridge are there; returns the bridge's index.
fn ensure_bridge(host: &mut Netlink, network: &NetworkDefinition) -> Result<u32> {
    // Rules first: the loopback guard is there before anything can cross the bridge.
    firewall::ensure_network(network)?;
    let bridge = &network.bridge;
    if let Some(index) = host
        .link_index(bridge)
        .map_err(link_error(format!("look up bridge {bridge}")))?
    {
        return Ok(index);
    }
    let index = host
        .add_bridge(bridge)
        .map_err(link_error(format!("make bridge {bridge}")))?;
    sysctl(
        &format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet"),
        "1",
    )?;
    host.add_address(index, network.gateway, network.subnet.prefix())
        .map_err(link_error(format!("give bridge {bridge} its address")))?;
    sysctl("/proc/sys/net/ipv4/ip_forward", "1")?;
    Ok(index)
}

/// A host end's name no other link has: `veth` and 8 random hex digits.
fn host_end_name() -> Result<String> {
    let mut bytes = [0u8; 4];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|source| NetworkError::Io {
            path: "/dev/urandom".into(),
            source,
        })?;
    Ok(format!("veth{:08x}", u32::from_ne_bytes(bytes)))
}

/// The mount namespace lade's next commands see, where namespaces are bind-mounted.
pub type HostMounts = fn() -> std::io::Result<File>;

/// Runs `work` where the driver's bridges are: the host's network namespace for root,
/// rootless lade's own for an ordinary user.
fn in_bridges_namespace<T: Send>(
    host_mounts: HostMounts,
    work: impl FnOnce() -> Result<T> + Send,
) -> Result<T> {
    rootless_netns::within(host_mounts, work)?
}

/// The bridge driver for a store's containers (the store keeps aardvark-dns's files).
#[derive(Debug, Clone)]
pub struct Driver {
    aardvark: Aardvark,
    host_mounts: HostMounts,
}

impl Driver {
    pub fn for_store(store: &Store, host_mounts: HostMounts) -> Driver {
        Driver {
            aardvark: Aardvark::locate(store.root().join("networks").join("aardvark-dns")),
            host_mounts,
        }
    }

    /// Connects the namespace at `netns` to the container's networks (made or mended
    /// first), with its published ports. Names are answered on its DNS-enabled networks
    /// unless the returned warning says why not.
    pub fn setup(
        &self,
        netns: &Path,
        network: &ContainerNetwork,
    ) -> Result<Option<DnsUnavailable>> {
        in_bridges_namespace(self.host_mounts, || self.setup_here(netns, network))
    }

    fn setup_here(
        &self,
        netns: &Path,
        network: &ContainerNetwork,
    ) -> Result<Option<DnsUnavailable>> {
        let lock = locked()?;
        let namespace = File::open(netns).map_err(|source| NetworkError::Io {
            path: netns.to_path_buf(),
            source,
        })?;
        let in_namespace = || link_error(format!("configure {}", netns.display()));
        let mut host = Netlink::open().map_err(link_error("open a netlink socket".into()))?;
        let mut inside = Netlink::open_in(netns).map_err(in_namespace())?;
        if let Some(lo) = inside.link_index("lo").map_err(in_namespace())? {
            inside.set_up(lo).map_err(in_namespace())?;
        }
        let mut routed = false;
        for attachment in &network.attachments {
            let bridge = ensure_bridge(&mut host, &attachment.network)?;
            let route = !attachment.network.internal && !routed;
            attach(
                &mut host,
                &mut inside,
                &namespace,
                bridge,
                attachment,
                route,
            )?;
            routed |= route;
        }
        if let Some(exit) = network.attachments.iter().find(|a| !a.network.internal) {
            if !network.ports.is_empty() {
                firewall::add_ports(&network.container_id, exit.ip, &network.ports)?;
            }
        }
        let named: Vec<&Attachment> = network
            .attachments
            .iter()
            .filter(|a| a.network.dns_enabled)
            .collect();
        if named.is_empty() {
            return Ok(None);
        }
        let unavailable = |cause| {
            Some(DnsUnavailable {
                networks: named.iter().map(|a| a.network.name.clone()).collect(),
                cause,
            })
        };
        // Rootless, what is no container's name goes out through the namespace's way
        // out, which answers DNS on its own address (the host's resolver may be on the
        // host's loopback, which the namespace cannot reach).
        let rootless_upstream = [rootless_netns::WAY_OUT.dns];
        let dns_servers: &[std::net::Ipv4Addr] =
            if network.dns_servers.is_empty() && super::is_rootless() {
                &rootless_upstream
            } else {
                &network.dns_servers
            };
        let entries: Vec<Entry> = named
            .iter()
            .map(|a| Entry {
                network: &a.network.bridge,
                gateway: a.network.gateway,
                container_id: &network.container_id,
                ip: a.ip,
                names: std::iter::once(network.container_name.as_str())
                    .chain(a.aliases.iter().map(String::as_str))
                    .collect(),
                dns_servers,
            })
            .collect();
        if let Err(source) = self.aardvark.add(&entries) {
            return Ok(unavailable(DnsError::Files { source }));
        }
        if let Err(cause) = self.aardvark.reload_or_start() {
            return Ok(unavailable(cause));
        }
        // The waits below need nothing of the host's: other containers' setups go on.
        drop(lock);
        // Its short id, which every lade container answers to (plain DNS labels,
        // whatever its name).
        let own_name = network
            .container_id
            .get(..12)
            .unwrap_or(&network.container_name);
        let mut silent: Option<DnsUnavailable> = None;
        for attachment in named {
            let gateway = attachment.network.gateway;
            if let Err(source) = dns::wait_until_answered(netns, gateway, own_name, DNS_READY) {
                let name = attachment.network.name.clone();
                match &mut silent {
                    Some(silent) => silent.networks.push(name),
                    None => {
                        silent = Some(DnsUnavailable {
                            networks: vec![name],
                            cause: DnsError::NoAnswer {
                                path: self.aardvark.binary().to_path_buf(),
                                source,
                            },
                        })
                    }
                }
            }
        }
        Ok(silent)
    }

    /// Undoes what [`Driver::setup`] made for the container on the host (its ports'
    /// rules, its names). Its veth pairs go with its namespace: the kernel dismantles a
    /// namespace on a work queue of its own, a moment after its last holder lets go.
    /// Deleting them here instead would make them go before this returns, but each
    /// deletion waits for an RCU grace period (a bridged `run --rm` measured 39 ms
    /// against 14 ms).
    pub fn teardown(&self, network: &ContainerNetwork) -> Result<()> {
        in_bridges_namespace(self.host_mounts, || self.teardown_here(network))
    }

    fn teardown_here(&self, network: &ContainerNetwork) -> Result<()> {
        let _lock = locked()?;
        let mut result = Ok(());
        if let Some(exit) = network.attachments.iter().find(|a| !a.network.internal) {
            if !network.ports.is_empty() {
                result = firewall::remove_ports(&network.container_id, exit.ip, &network.ports)
                    .map_err(NetworkError::from);
            }
        }
        let named: Vec<&str> = network
            .attachments
            .iter()
            .filter(|a| a.network.dns_enabled)
            .map(|a| a.network.bridge.as_str())
            .collect();
        if named.is_empty() {
            return result;
        }
        // Held before it is told of the removal: the wait below cannot name a newer
        // process with its pid.
        let process = self.aardvark.process();
        match self.aardvark.remove(&network.container_id, &named) {
            Ok(true) => {
                self.aardvark.reload();
            }
            Ok(false) => {}
            Err(source) => return Err(NetworkError::Dns(DnsError::Files { source })),
        }
        // With no names left it exits (its pid file and its sockets gone) once it has
        // read its files again: waited for, so that the host is as it was when this
        // returns, and the next setup starts a new one rather than tell one that leaves.
        if let Some(process) = process {
            if !self.aardvark.has_names() {
                aardvark::exits_within(&process, aardvark::AARDVARK_EXIT);
            }
        }
        result
    }

    /// Connects a running container's namespace to one more network (`network`
    /// holds that attachment alone).
    pub fn connect(
        &self,
        netns: &Path,
        network: &ContainerNetwork,
    ) -> Result<Option<DnsUnavailable>> {
        self.setup(netns, network)
    }

    /// Takes a running container off a network (`network` holds that attachment
    /// alone): its interface there, and its names.
    pub fn disconnect(&self, netns: &Path, network: &ContainerNetwork) -> Result<()> {
        {
            let _lock = locked()?;
            let in_namespace = || link_error(format!("configure {}", netns.display()));
            let mut inside = Netlink::open_in(netns).map_err(in_namespace())?;
            for attachment in &network.attachments {
                if let Some(index) = inside
                    .link_index(&attachment.interface)
                    .map_err(in_namespace())?
                {
                    inside.delete_link(index).map_err(in_namespace())?;
                }
            }
        }
        self.teardown(network)
    }

    /// Tears down what a container nobody runs any more left of its networks: its
    /// namespace (unmounted in `host_mounts`, where it was mounted) and the host's side
    /// of it. What cannot be undone is left for the next try.
    pub fn reap(
        &self,
        container_id: &str,
        plan: &ContainerNetwork,
        host_mounts: impl FnOnce() -> std::io::Result<File>,
    ) {
        let file = super::namespace_file(container_id);
        if file.exists() {
            let _ = self.teardown(plan);
            let _ = host_mounts().and_then(|host| super::remove_namespace(&file, host));
        }
    }

    /// Carries the container's published ports, held in `reservation`, to it: for root
    /// the firewall's rules made by [`Driver::setup`] do, and the reservation is only
    /// held; rootless, a forwarder listens on them and connects to the container from
    /// inside rootless lade's namespace. Either ends when the returned value is dropped.
    pub fn publish(
        &self,
        reservation: Reservation,
        network: &ContainerNetwork,
    ) -> Result<Published> {
        if !super::is_rootless() || network.ports.is_empty() {
            return Ok(Published::Held(reservation));
        }
        let Some(exit) = network.attachments.iter().find(|a| !a.network.internal) else {
            return Ok(Published::Held(reservation));
        };
        let Some(namespace) = rootless_netns::existing(self.host_mounts)? else {
            return Err(NetworkError::Io {
                path: rootless_netns::namespace_file(),
                source: std::io::Error::from_raw_os_error(libc::ENOENT),
            });
        };
        let forwarder =
            forward::Forwarder::start(reservation, exit.ip, namespace).map_err(|source| {
                NetworkError::Link {
                    what: "start the published ports' forwarder".into(),
                    source,
                }
            })?;
        Ok(Published::Forwarded(forwarder))
    }

    /// Stops the store's aardvark-dns (`system reset`).
    pub fn stop_dns(&self) {
        self.aardvark.stop();
    }
}

/// Puts the container on one network: a veth pair from the bridge into its namespace,
/// named and addressed there, with the default route when `route`.
fn attach(
    host: &mut Netlink,
    inside: &mut Netlink,
    namespace: &File,
    bridge: u32,
    attachment: &Attachment,
    route: bool,
) -> Result<()> {
    let interface = &attachment.interface;
    let host_end = host_end_name()?;
    host.add_veth(
        &host_end,
        bridge,
        interface,
        attachment.mac(),
        namespace.as_fd(),
    )
    .map_err(link_error(format!(
        "make the veth pair {host_end}/{interface} on {}",
        attachment.network.bridge
    )))?;
    let configure = || link_error(format!("configure {interface} in the container"));
    let index = inside
        .link_index(interface)
        .map_err(configure())?
        .ok_or_else(|| configure()(std::io::Error::from_raw_os_error(libc::ENODEV)))?;
    inside
        .add_address(index, attachment.ip, attachment.network.subnet.prefix())
        .map_err(configure())?;
    inside.set_up(index).map_err(configure())?;
    if route {
        match inside.add_default_route(index, attachment.network.gateway) {
            // A container connected to one more network keeps the route it has.
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
            other => other.map_err(configure())?,
        }
    }
    Ok(())
}

/// Removes a network's bridge and rules from the host (its containers gone); rootless,
/// from rootless lade's namespace when it has one (without it there is nothing to
/// remove).
pub fn remove_bridge(network: &NetworkDefinition, host_mounts: HostMounts) -> Result<()> {
    remove_bridge_named(&network.bridge, host_mounts)
}

/// Removes bridge `bridge` and its rules, as [`remove_bridge`] does, by a caller that
/// holds the host's network lock already.
pub(crate) fn remove_bridge_holding_lock(bridge: &str, host_mounts: HostMounts) -> Result<()> {
    in_bridges_namespace_if_any(host_mounts, || remove_bridge_unlocked(bridge))
}

fn remove_bridge_named(bridge: &str, host_mounts: HostMounts) -> Result<()> {
    in_bridges_namespace_if_any(host_mounts, || {
        let _lock = locked()?;
        remove_bridge_unlocked(bridge)
    })
}

/// Runs `work` where the bridges are, if anywhere (rootless lade without its namespace
/// has made none).
fn in_bridges_namespace_if_any(
    host_mounts: HostMounts,
    work: impl FnOnce() -> Result<()> + Send,
) -> Result<()> {
    match rootless_netns::within_existing(host_mounts, work) {
        Ok(Some(done)) => done,
        Ok(None) => Ok(()),
        Err(source) => Err(NetworkError::Io {
            path: rootless_netns::namespace_file(),
            source,
        }),
    }
}

fn remove_bridge_unlocked(bridge: &str) -> Result<()> {
    let mut host = Netlink::open().map_err(link_error("open a netlink socket".into()))?;
    if let Some(index) = host
        .link_index(bridge)
        .map_err(link_error(format!("look up bridge {bridge}")))?
    {
        host.delete_link(index)
            .map_err(link_error(format!("remove bridge {bridge}")))?;
    }
    // After the bridge: no packet crosses it unguarded.
    Ok(firewall::remove_network(bridge)?)
}
