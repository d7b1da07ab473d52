//! A container's networks: what `--network`, `-p`, `-P`, `--network-alias`, `--ip`,
//! `--dns` and `--add-host` make of it when it is created (its addresses, taken in the
//! store, its `/etc/hosts` and `/etc/resolv.conf`), and at each start a session that
//! reserves its host ports, makes its network namespace and has netavark connect it;
//! the session's end, or the next lade command that finds the container dead, tears it
//! all down. Networks themselves (`lade network ...`) are made and listed here too.
//!
//! A lock file in the container's directory is held by whoever runs the container (its
//! monitor, or a foreground `run`): a command that can take it knows nobody will tear
//! the network down after it, and does so itself.

use std::collections::BTreeMap;
use std::fs;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::record::write_settings;
use super::{now_rfc3339, running_init, validate, Container, ContainerError, Result};
use crate::exec;
use crate::network::{
    self, Attachment, ContainerNetwork, DnsUnavailable, NetNamespace, Netavark, NetworkDefinition,
    PortMapping, Reservation, Subnet,
};
use crate::oci::ImageConfig;
use crate::store::{ContainerRecord, NetworkRecord, Store};

/// The network every container joins unless told otherwise (Docker's `bridge`).
pub const DEFAULT_NETWORK: &str = "lade";

/// `--network`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum NetworkMode {
    /// Only loopback.
    #[default]
    None,
    Host,
    /// A bridge network by name (`bridge` is the default network).
    Bridge(String),
    /// Another container's network namespace (`container:NAME`).
    Container(String),
}

impl NetworkMode {
    /// Docker's `--network` values.
    pub fn parse(text: &str) -> NetworkMode {
        match text {
            "none" => NetworkMode::None,
            "host" => NetworkMode::Host,
            "bridge" | "default" => NetworkMode::Bridge(DEFAULT_NETWORK.into()),
            other => match other.strip_prefix("container:") {
                Some(name) => NetworkMode::Container(name.into()),
                None => NetworkMode::Bridge(other.into()),
            },
        }
    }

    /// As `inspect` shows it.
    pub fn docker_name(&self) -> String {
        match self {
            NetworkMode::None => "none".into(),
            NetworkMode::Host => "host".into(),
            NetworkMode::Bridge(name) if name == DEFAULT_NETWORK => "bridge".into(),
            NetworkMode::Bridge(name) => name.clone(),
            NetworkMode::Container(name) => format!("container:{name}"),
        }
    }
}

/// What `run` and `create` ask of the network.
#[derive(Debug, Clone, Default)]
pub struct NetworkRequest {
    pub mode: NetworkMode,
    pub aliases: Vec<String>,
    pub ip: Option<String>,
    /// `-p`.
    pub publish: Vec<String>,
    /// `-P`: every exposed port (the image's EXPOSE and `--expose`) to a free one.
    pub publish_all: bool,
    pub expose: Vec<String>,
    pub dns: Vec<String>,
    /// `--add-host NAME:IP`.
    pub add_hosts: Vec<String>,
}

/// What a container keeps of its networks.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NetworkSettings {
    pub mode: NetworkMode,
    /// For a bridge network: what netavark is given.
    pub plan: Option<ContainerNetwork>,
    /// `--expose` and the image's EXPOSE (for `-P` and `inspect`).
    #[serde(default)]
    pub exposed: Vec<String>,
}

/// The container's `/etc/hosts` and `/etc/resolv.conf`.
pub(crate) struct EtcFiles {
    pub hosts: String,
    pub resolv: String,
}

/// `--ip`: an IPv4 address.
fn parse_ip(text: &str) -> Result<Ipv4Addr> {
    text.parse().map_err(|_| ContainerError::BadValue {
        what: "--ip",
        value: text.to_string(),
        expected: "expected an IPv4 address",
    })
}

/// `--expose PORT[/PROTOCOL]` (or a range), as `-P` publishes it.
fn exposed_port(text: &str) -> Result<String> {
    let port = if text.contains('/') {
        text.to_string()
    } else {
        format!("{text}/tcp")
    };
    network::parse_publish(&port).map_err(|_| ContainerError::BadValue {
        what: "--expose",
        value: text.to_string(),
        expected: "expected PORT[/tcp|udp|sctp] or a range",
    })?;
    Ok(port)
}

/// The network flags of a request as written, refused before anything is made.
pub(crate) fn check_request(request: &NetworkRequest) -> Result<()> {
    for alias in &request.aliases {
        validate::dns_name("--network-alias", alias)?;
    }
    for entry in &request.add_hosts {
        validate::extra_host(entry)?;
    }
    for server in &request.dns {
        validate::dns_server(server)?;
    }
    if let Some(ip) = &request.ip {
        parse_ip(ip)?;
    }
    for text in &request.publish {
        network::parse_publish(text)?;
    }
    for port in &request.expose {
        exposed_port(port)?;
    }
    Ok(())
}

/// Works out a new container's networks: its address on a bridge network (taken now,
/// after everything else in the request has been checked), its ports, and its `/etc`
/// files.
pub(crate) fn plan(
    store: &Store,
    id: &str,
    name: &str,
    hostname: &str,
    request: &NetworkRequest,
    image: &ImageConfig,
) -> Result<(NetworkSettings, EtcFiles)> {
    check_request(request)?;
    let mut hosts =
        String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    let mut extra_hosts = String::new();
    for entry in &request.add_hosts {
        let (host, ip) = validate::extra_host(entry)?;
        extra_hosts.push_str(&format!("{ip}\t{host}\n"));
    }
    let dns_servers = request
        .dns
        .iter()
        .map(|server| validate::dns_server(server))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let mut exposed: Vec<String> = image
        .config
        .exposed_ports
        .as_ref()
        .map(|ports| ports.keys().cloned().collect())
        .unwrap_or_default();
    for port in &request.expose {
        exposed.push(exposed_port(port)?);
    }
    let host_resolv = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let own_resolv = |servers: &[Ipv4Addr]| {
        servers
            .iter()
            .map(|s| format!("nameserver {s}\n"))
            .collect::<String>()
    };
    let published = !request.publish.is_empty() || request.publish_all;
    let NetworkMode::Bridge(network_name) = &request.mode else {
        if published {
            return Err(ContainerError::PublishNeedsBridge(
                request.mode.docker_name(),
            ));
        }
        if request.ip.is_some() || !request.aliases.is_empty() {
            return Err(ContainerError::AddressNeedsBridge);
        }
        hosts.push_str(&format!("127.0.1.1\t{hostname}\n"));
        hosts.push_str(&extra_hosts);
        let resolv = if dns_servers.is_empty() {
            host_resolv
        } else {
            own_resolv(&dns_servers)
        };
        let settings = NetworkSettings {
            mode: request.mode.clone(),
            plan: None,
            exposed,
        };
        return Ok((settings, EtcFiles { hosts, resolv }));
    };
    let network = if network_name == DEFAULT_NETWORK {
        default_network(store)?
    } else {
        let record = store
            .network(network_name)?
            .ok_or_else(|| ContainerError::NoSuchNetwork(network_name.clone()))?;
        definition(&record)?
    };
    let requested: Option<Ipv4Addr> = match &request.ip {
        Some(ip) => {
            let ip = parse_ip(ip)?;
            if !network.subnet.hosts().any(|h| h == ip) {
                return Err(ContainerError::AddressOutside {
                    ip,
                    network: network.name.clone(),
                    subnet: network.subnet.to_string(),
                });
            }
            Some(ip)
        }
        None => None,
    };
    let mut ports = Vec::new();
    for text in &request.publish {
        ports.push(network::parse_publish(text)?);
    }
    if request.publish_all {
        for port in &exposed {
            let (number, protocol) = port.split_once('/').unwrap_or((port, "tcp"));
            let mapping = network::parse_publish(&format!("{number}/{protocol}"))?;
            if !ports.iter().any(|p| {
                p.container_port == mapping.container_port && p.protocol == mapping.protocol
            }) {
                ports.push(mapping);
            }
        }
    }
    let subnet = network.subnet;
    let address = store
        .allocate_address(&network.name, id, |taken| match requested {
            Some(ip) => (!taken.contains(&ip.to_string())).then(|| ip.to_string()),
            None => subnet
                .hosts()
                .map(|h| h.to_string())
                .find(|h| !taken.contains(h)),
        })?
        .ok_or_else(|| match requested {
            Some(ip) => ContainerError::AddressTaken {
                ip,
                network: network.name.clone(),
            },
            None => ContainerError::NoAddressLeft {
                network: network.name.clone(),
                subnet: network.subnet.to_string(),
            },
        })?;
    let ip: Ipv4Addr = address
        .parse()
        .map_err(|_| ContainerError::StoredAddress(address.to_string()))?;
    hosts.push_str(&format!("{ip}\t{hostname} {name}\n"));
    hosts.push_str(&extra_hosts);
    let resolv = if network.dns_enabled {
        // aardvark-dns on the gateway answers container names, and forwards the rest to
        // --dns or the host's servers.
        format!("search dns.podman\nnameserver {}\n", network.gateway)
    } else if !dns_servers.is_empty() {
        own_resolv(&dns_servers)
    } else {
        host_resolv
    };
    let mut aliases = request.aliases.clone();
    aliases.push(id[..12].to_string());
    let plan = ContainerNetwork {
        container_id: id.to_string(),
        container_name: name.to_string(),
        attachments: vec![Attachment {
            network,
            ip,
            aliases,
            interface: "eth0".into(),
        }],
        ports,
        dns_servers,
    };
    let settings = NetworkSettings {
        mode: request.mode.clone(),
        plan: Some(plan),
        exposed,
    };
    Ok((settings, EtcFiles { hosts, resolv }))
}

fn container_dir(store: &Store, id: &str) -> PathBuf {
    store.root().join("containers").join(id)
}

fn namespace_file(id: &str) -> PathBuf {
    network::namespace_dir().join(id)
}

fn ports_file(store: &Store, id: &str) -> PathBuf {
    container_dir(store, id).join("ports.json")
}

fn netavark(store: &Store) -> Result<Netavark> {
    Ok(Netavark::locate(store.root().join("networks"))?)
}

type Lock = nix::fcntl::Flock<fs::File>;

/// The container's network lock; `wait` says whether to wait for it.
fn lock(store: &Store, id: &str, wait: bool) -> Result<Option<Lock>> {
    let path = container_dir(store, id).join("network.lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| ContainerError::Io {
            path: path.clone(),
            source,
        })?;
    let how = if wait {
        nix::fcntl::FlockArg::LockExclusive
    } else {
        nix::fcntl::FlockArg::LockExclusiveNonblock
    };
    match nix::fcntl::Flock::lock(file, how) {
        Ok(lock) => Ok(Some(lock)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(ContainerError::Io {
            path,
            source: e.into(),
        }),
    }
}

/// A running container's networks: held until [`Session::finish`].
pub(crate) struct Session {
    plan: ContainerNetwork,
    namespace: NetNamespace,
    netavark: Netavark,
    _reservation: Reservation,
    _lock: Lock,
    ports_file: PathBuf,
    dns_unavailable: Option<DnsUnavailable>,
}

/// Sets up what a container's start needs of the network, and says how the sandbox is to
/// join it. The session (for a bridge network) must be finished when it stops.
pub(crate) fn start(
    store: &Store,
    container: &Container,
) -> Result<(Option<Session>, exec::Network)> {
    let record = &container.record;
    let network_settings = container.settings.network.clone();
    match &network_settings.mode {
        NetworkMode::None => return Ok((None, exec::Network::Isolated)),
        NetworkMode::Host => return Ok((None, exec::Network::Host)),
        NetworkMode::Container(other) => {
            let other = store.container(other)?;
            let init = running_init(&other)
                .ok_or_else(|| ContainerError::SharedNetworkStopped(other.name.clone()))?;
            let path = PathBuf::from(format!("/proc/{}/ns/net", init.pid));
            return Ok((None, exec::Network::Join(path)));
        }
        NetworkMode::Bridge(_) => {}
    }
    let Some(mut plan) = network_settings.plan else {
        return Ok((None, exec::Network::Isolated));
    };
    let lock = lock(store, &record.id, true)?
        .ok_or_else(|| ContainerError::NetworkBusy(record.name.clone()))?;
    let netavark = netavark(store)?;
    // What a run that was killed left.
    teardown_leftovers(store, &record.id, &plan, &netavark);
    let reservation = network::reserve(&mut plan.ports)?;
    let file = namespace_file(&record.id);
    let namespace = host_mounts()
        .and_then(|host| NetNamespace::create(&file, host))
        .map_err(|source| ContainerError::Io {
            path: file.clone(),
            source,
        })?;
    let dns_unavailable = match netavark.setup(&namespace.path(), &plan) {
        Ok(warning) => warning,
        Err(err) => {
            let _ = netavark.teardown(&namespace.path(), &plan);
            let _ = remove_namespace(&file);
            return Err(err.into());
        }
    };
    let ports_file = ports_file(store, &record.id);
    let ports = serde_json::to_vec(&plan.ports).map_err(|e| ContainerError::Json {
        what: "the published ports".into(),
        source: e,
    })?;
    if let Err(source) = fs::write(&ports_file, ports) {
        let _ = netavark.teardown(&namespace.path(), &plan);
        let _ = remove_namespace(&file);
        return Err(ContainerError::Io {
            path: ports_file,
            source,
        });
    }
    let join = exec::Network::Join(namespace.path());
    Ok((
        Some(Session {
            plan,
            namespace,
            netavark,
            _reservation: reservation,
            _lock: lock,
            ports_file,
            dns_unavailable,
        }),
        join,
    ))
}

impl Session {
    /// What the container's networks lack (names that will not resolve), to be told
    /// before it runs.
    pub(crate) fn warning(&self) -> Option<&DnsUnavailable> {
        self.dns_unavailable.as_ref()
    }

    /// Tears the container's networks down (its namespace, its host side, its ports):
    /// those it started with and those `network connect` added since (as the store has
    /// them now), with the host ports it was given.
    pub(crate) fn finish(self, store: &Store) -> Result<()> {
        let mut plan = self.plan.clone();
        // A container whose settings cannot be read now keeps the networks it started
        // with: those at least are torn down.
        if let Some(now) = Container::load(store, &plan.container_id)
            .ok()
            .and_then(|container| container.settings.network.plan)
        {
            plan.attachments = now.attachments;
        }
        let torn = self.netavark.teardown(&self.namespace.path(), &plan);
        let _ = fs::remove_file(&self.ports_file);
        let removed = remove_namespace(&self.namespace.file);
        torn?;
        removed.map_err(|source| ContainerError::Io {
            path: self.namespace.file.clone(),
            source,
        })
    }
}

fn host_mounts() -> std::io::Result<fs::File> {
    exec::mounts::host_mount_namespace()
}

fn remove_namespace(file: &std::path::Path) -> std::io::Result<()> {
    network::remove_namespace(file, host_mounts()?)
}

fn teardown_leftovers(store: &Store, id: &str, plan: &ContainerNetwork, netavark: &Netavark) {
    let file = namespace_file(id);
    if file.exists() {
        let _ = netavark.teardown(&file, plan);
        let _ = remove_namespace(&file);
    }
    let _ = fs::remove_file(ports_file(store, id));
}

/// Tears down the network of a container nobody runs any more (its monitor killed):
/// what `ps`, `rm` and `start` do when they find one. With `wait`, waits for whoever
/// still runs it to finish (`rm -f`, after the kill).
pub(crate) fn reap(store: &Store, container: &Container, wait: bool) -> Result<()> {
    let record = &container.record;
    let Some(plan) = &container.settings.network.plan else {
        return Ok(());
    };
    if !namespace_file(&record.id).exists() && !ports_file(store, &record.id).exists() {
        return Ok(());
    }
    if !container_dir(store, &record.id).is_dir() {
        return Ok(());
    }
    let Some(_lock) = lock(store, &record.id, wait)? else {
        return Ok(()); // its runner is alive and will do it
    };
    teardown_leftovers(store, &record.id, plan, &netavark(store)?);
    Ok(())
}

/// Tears down the networks of every container nobody runs any more (`ps` does this, so
/// that a monitor killed with -9 leaves nothing behind for long).
pub fn reap_networks(store: &Store) -> Result<()> {
    for record in store.containers()? {
        if running_init(&record).is_none() {
            reap(store, &Container::read(record)?, false)?;
        }
    }
    Ok(())
}

/// The ports a running container publishes.
pub fn published_ports(store: &Store, record: &ContainerRecord) -> Vec<PortMapping> {
    if running_init(record).is_none() {
        return Vec::new();
    }
    fs::read(ports_file(store, &record.id))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// A network's definition, from its record.
pub fn definition(record: &NetworkRecord) -> Result<NetworkDefinition> {
    serde_json::from_str(&record.definition).map_err(|e| ContainerError::Json {
        what: format!("network {}: its definition", record.name),
        source: e,
    })
}

/// The default network, made the first time a container needs it.
pub fn default_network(store: &Store) -> Result<NetworkDefinition> {
    if let Some(record) = store.network(DEFAULT_NETWORK)? {
        return definition(&record);
    }
    match create_network(
        store,
        &NetworkOptions {
            name: DEFAULT_NETWORK.into(),
            dns: false,
            ..NetworkOptions::default()
        },
    ) {
        Ok(network) => Ok(network),
        // Made by another command meanwhile.
        Err(ContainerError::NetworkExists(_)) => store
            .network(DEFAULT_NETWORK)?
            .ok_or_else(|| ContainerError::NoSuchNetwork(DEFAULT_NETWORK.into()))
            .and_then(|r| definition(&r)),
        Err(e) => Err(e),
    }
}

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

/// The directory where bridge names and subnets are claimed for every store on this
/// host, so two stores never pick the same ones.
fn claims_dir() -> PathBuf {
    PathBuf::from(network::RUNTIME_DIR).join("claims")
}

/// Makes a bridge network: its bridge name and subnet are chosen (or checked) against
/// the host's links and routes and every store's claims.
pub fn create_network(store: &Store, options: &NetworkOptions) -> Result<NetworkDefinition> {
    validate::network_name(&options.name)?;
    for key in options.labels.keys() {
        validate::label_key(key)?;
    }
    if matches!(
        options.name.as_str(),
        "bridge" | "host" | "none" | "default"
    ) {
        return Err(ContainerError::PredefinedNetwork(options.name.clone()));
    }
    if store.network(&options.name)?.is_some() {
        return Err(ContainerError::NetworkExists(options.name.clone()));
    }
    let _host = network::host_lock().map_err(|source| ContainerError::Io {
        path: "/run/lade/network.lock".into(),
        source,
    })?;
    let claims = claims_dir();
    network::private_runtime_dir(&claims).map_err(|source| ContainerError::Io {
        path: claims.clone(),
        source,
    })?;
    let mut taken_subnets: Vec<Subnet> = network::host_routes();
    let mut taken_bridges: Vec<String> = network::host_links();
    for record in store.networks()? {
        if let Ok(existing) = definition(&record) {
            taken_subnets.push(existing.subnet);
            taken_bridges.push(existing.bridge);
        }
    }
    for claim in fs::read_dir(&claims).into_iter().flatten().flatten() {
        let text = fs::read_to_string(claim.path()).unwrap_or_default();
        let mut lines = text.lines();
        let (Some(subnet), Some(owner)) = (lines.next(), lines.next()) else {
            continue;
        };
        // A claim of a store that is gone is void.
        if !std::path::Path::new(owner).join("lade.db").exists() {
            continue;
        }
        taken_bridges.push(claim.file_name().to_string_lossy().into_owned());
        if let Ok(subnet) = subnet.parse() {
            taken_subnets.push(subnet);
        }
    }
    let subnet = match &options.subnet {
        Some(text) => {
            let subnet: Subnet = text.parse().map_err(ContainerError::BadSubnet)?;
            if let Some(clash) = taken_subnets.iter().find(|t| t.overlaps(&subnet)) {
                return Err(ContainerError::SubnetOverlap {
                    subnet: subnet.to_string(),
                    clash: clash.to_string(),
                });
            }
            subnet
        }
        None => network::free_subnet(&taken_subnets).ok_or_else(|| ContainerError::NoFreeSubnet)?,
    };
    let gateway = match &options.gateway {
        Some(text) => {
            let gateway: Ipv4Addr = text.parse().map_err(|_| ContainerError::BadValue {
                what: "--gateway",
                value: text.clone(),
                expected: "expected an IPv4 address",
            })?;
            if !subnet.contains(gateway) {
                return Err(ContainerError::GatewayOutside {
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
    let id = {
        let mut bytes = [0u8; 32];
        fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
            .map_err(|source| ContainerError::Io {
                path: "/dev/urandom".into(),
                source,
            })?;
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let network = NetworkDefinition {
        name: options.name.clone(),
        id: id.clone(),
        bridge: bridge.clone(),
        subnet,
        gateway,
        internal: options.internal,
        dns_enabled: options.dns,
        labels: options.labels.clone(),
        created: now_rfc3339(),
    };
    let definition = serde_json::to_string(&network).map_err(|e| ContainerError::Json {
        what: format!("network {}: its definition", network.name),
        source: e,
    })?;
    let claim = claims.join(&bridge);
    fs::write(&claim, format!("{subnet}\n{}\n", store.root().display())).map_err(|source| {
        ContainerError::Io {
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
            super::events::network_event(store, &network.id, &network.name, "create", None);
            Ok(network)
        }
        Ok(false) => {
            let _ = fs::remove_file(&claim);
            Err(ContainerError::NetworkExists(options.name.clone()))
        }
        Err(e) => {
            let _ = fs::remove_file(&claim);
            Err(e.into())
        }
    }
}

/// Removes a network no container uses.
pub fn remove_network(store: &Store, reference: &str) -> Result<String> {
    let record = store
        .network(reference)?
        .ok_or_else(|| ContainerError::NoSuchNetwork(reference.to_string()))?;
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
        return Err(ContainerError::NetworkInUse {
            name: record.name.clone(),
            users: names,
        });
    }
    let network = definition(&record)?;
    store.delete_network(&record.name)?;
    let claim = claims_dir().join(&network.bridge);
    let owned = fs::read_to_string(&claim)
        .is_ok_and(|text| text.lines().nth(1) == Some(&store.root().display().to_string()));
    if owned {
        let _ = fs::remove_file(claim);
    }
    super::events::network_event(store, &network.id, &network.name, "destroy", None);
    Ok(record.name)
}

/// `network inspect`: Docker's shape.
pub fn network_json(store: &Store, record: &NetworkRecord) -> Result<serde_json::Value> {
    let network = definition(record)?;
    let mut containers = serde_json::Map::new();
    for id in store.network_users(&record.name)? {
        let Ok(found) = store.container(&id) else {
            continue; // removed meanwhile
        };
        let container = Container::read(found)?;
        let attachment = container
            .settings
            .network
            .plan
            .as_ref()
            .and_then(|p| p.attachments.iter().find(|a| a.network.name == record.name));
        if let Some(attachment) = attachment {
            containers.insert(
                id.clone(),
                serde_json::json!({
                    "Name": container.record.name,
                    "IPv4Address": format!("{}/{}", attachment.ip, network.subnet.prefix()),
                    "IPv6Address": "",
                }),
            );
        }
    }
    Ok(serde_json::json!({
        "Name": network.name,
        "Id": network.id,
        "Created": network.created,
        "Scope": "local",
        "Driver": "bridge",
        "EnableIPv6": false,
        "IPAM": { "Driver": "default", "Options": {}, "Config": [{ "Subnet": network.subnet.to_string(), "Gateway": network.gateway.to_string() }] },
        "Internal": network.internal,
        "Attachable": false,
        "Ingress": false,
        "Containers": containers,
        "Options": { "com.docker.network.bridge.name": network.bridge },
        "Labels": network.labels,
        "DNSEnabled": network.dns_enabled,
    }))
}

/// `network connect`: a container joins another network: at once when it runs (on a
/// bridge network of its own), else at its next start. Returns what the network lacks
/// when joined at once (names that will not resolve).
pub fn connect(
    store: &Store,
    network_reference: &str,
    container_reference: &str,
    aliases: &[String],
    ip: Option<&str>,
) -> Result<Option<DnsUnavailable>> {
    let Container {
        record,
        spec,
        settings: mut all,
        ..
    } = Container::load(store, container_reference)?;
    let running = running_init(&record).is_some();
    let network = match store.network(network_reference)? {
        Some(found) => definition(&found)?,
        None if network_reference == "bridge" => default_network(store)?,
        None => return Err(ContainerError::NoSuchNetwork(network_reference.to_string())),
    };
    let mut plan = match (&all.network.mode, all.network.plan.take()) {
        (NetworkMode::Bridge(_), Some(plan)) => plan,
        (NetworkMode::None, _) => ContainerNetwork {
            container_id: record.id.clone(),
            container_name: record.name.clone(),
            attachments: Vec::new(),
            ports: Vec::new(),
            dns_servers: Vec::new(),
        },
        (mode, _) => {
            return Err(ContainerError::CannotJoin {
                name: record.name.clone(),
                mode: mode.docker_name(),
            })
        }
    };
    if plan
        .attachments
        .iter()
        .any(|a| a.network.name == network.name)
    {
        return Err(ContainerError::AlreadyOnNetwork {
            name: record.name.clone(),
            network: network.name.clone(),
        });
    }
    let request = NetworkRequest {
        mode: NetworkMode::Bridge(network.name.clone()),
        aliases: aliases.to_vec(),
        ip: ip.map(str::to_string),
        ..NetworkRequest::default()
    };
    let (joined, _) = plan_on(store, &record, &spec.hostname, &request)?;
    let mut attachment = joined;
    attachment.interface = format!("eth{}", plan.attachments.len());
    let mut dns_unavailable = None;
    if running {
        // Connected now, in the namespace it runs in: that network alone, no ports.
        let file = live_namespace(&record, &all)?;
        let alone = ContainerNetwork {
            attachments: vec![attachment.clone()],
            ports: Vec::new(),
            ..plan.clone()
        };
        match netavark(store)?.setup(&file, &alone) {
            Ok(warning) => dns_unavailable = warning,
            Err(err) => {
                let _ = store.release_addresses(&record.id, Some(&attachment.network.name));
                return Err(err.into());
            }
        }
    }
    let joined_network = attachment.network.name.clone();
    let joined_id = attachment.network.id.clone();
    plan.attachments.push(attachment);
    all.network.mode = NetworkMode::Bridge(plan.attachments[0].network.name.clone());
    all.network.plan = Some(plan);
    write_settings(store, &record, &all).inspect_err(|_| {
        let _ = store.release_addresses(&record.id, Some(&joined_network));
    })?;
    let container = Some(record.id.as_str());
    super::events::network_event(store, &joined_id, &joined_network, "connect", container);
    Ok(dns_unavailable)
}

/// The network namespace file of a running container on a bridge network.
fn live_namespace(record: &ContainerRecord, settings: &super::Settings) -> Result<PathBuf> {
    let file = namespace_file(&record.id);
    if !file.exists() {
        return Err(ContainerError::CannotConnectLive {
            name: record.name.clone(),
            mode: settings.network.mode.docker_name(),
        });
    }
    Ok(file)
}

fn plan_on(
    store: &Store,
    record: &ContainerRecord,
    hostname: &str,
    request: &NetworkRequest,
) -> Result<(Attachment, EtcFiles)> {
    let (settings, etc) = plan(
        store,
        &record.id,
        &record.name,
        hostname,
        request,
        &ImageConfig::default(),
    )?;
    let attachment = settings
        .plan
        .and_then(|p| p.attachments.into_iter().next())
        .ok_or(ContainerError::NoNetworkPlanned)?;
    Ok((attachment, etc))
}

/// `network disconnect`: a container leaves a network (at once when it runs).
pub fn disconnect(store: &Store, network_reference: &str, container_reference: &str) -> Result<()> {
    let Container {
        record,
        settings: mut all,
        ..
    } = Container::load(store, container_reference)?;
    let running = running_init(&record).is_some();
    let name = match store.network(network_reference)? {
        Some(found) => found.name,
        None if network_reference == "bridge" => DEFAULT_NETWORK.to_string(),
        None => return Err(ContainerError::NoSuchNetwork(network_reference.to_string())),
    };
    let Some(mut plan) = all.network.plan.take() else {
        return Err(ContainerError::NotOnNetwork {
            name: record.name.clone(),
            network: name.to_string(),
        });
    };
    let Some(leaving) = plan
        .attachments
        .iter()
        .find(|a| a.network.name == name)
        .cloned()
    else {
        return Err(ContainerError::NotOnNetwork {
            name: record.name.clone(),
            network: name.to_string(),
        });
    };
    let (left_id, left_name) = (leaving.network.id.clone(), leaving.network.name.clone());
    if running {
        let file = live_namespace(&record, &all)?;
        let alone = ContainerNetwork {
            attachments: vec![leaving],
            ports: Vec::new(),
            ..plan.clone()
        };
        netavark(store)?.teardown(&file, &alone)?;
    }
    plan.attachments.retain(|a| a.network.name != name);
    // A running container keeps its interfaces' names; its next start renumbers them.
    if !running {
        for (n, attachment) in plan.attachments.iter_mut().enumerate() {
            attachment.interface = format!("eth{n}");
        }
    }
    store.release_addresses(&record.id, Some(&name))?;
    all.network.mode = match plan.attachments.first() {
        Some(first) => NetworkMode::Bridge(first.network.name.clone()),
        None => NetworkMode::None,
    };
    all.network.plan = (!plan.attachments.is_empty()).then_some(plan);
    write_settings(store, &record, &all)?;
    super::events::network_event(store, &left_id, &left_name, "disconnect", Some(&record.id));
    Ok(())
}
