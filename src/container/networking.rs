//! A container's networks: what `--network`, `-p`, `-P`, `--network-alias`, `--ip`,
//! `--dns` and `--add-host` make of it when it is created (its addresses, taken through
//! the network module, its `/etc/hosts` and `/etc/resolv.conf`), and at each start a
//! session that reserves its host ports, makes its network namespace and has the
//! network module's driver connect it; the session's end, or the next lade command that finds the container
//! dead, tears it all down. It also keeps the steps of `network connect` and
//! `network disconnect` that are the container's (its plan, its live namespace), which
//! the engine puts together. Networks themselves are the network module's.
//!
//! A lock file in the container's directory is held by whoever runs the container (its
//! monitor, or a foreground `run`): a command that can take it knows nobody will tear
//! the network down after it, and does so itself.

use std::fs;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::record::write_settings;
use super::{running_init, validate, Container, ContainerError, Result};
use crate::exec;
use crate::network::{
    self, Attachment, ContainerNetwork, DnsUnavailable, Driver, NetNamespace, NetworkDefinition,
    PortMapping, Published, DEFAULT_NETWORK,
};
use crate::oci::ImageConfig;
use crate::store::{ContainerRecord, Store};

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
    /// A namespace of its own connected to the host's sockets by pasta: rootless lade's
    /// default network (`--network pasta`).
    Pasta,
    /// The same through slirp4netns (`--network slirp4netns`): the default when pasta
    /// is not installed.
    Slirp4netns,
}

impl NetworkMode {
    /// Whether this is one of rootless lade's user-mode networks.
    pub fn is_user_mode(&self) -> bool {
        matches!(self, NetworkMode::Pasta | NetworkMode::Slirp4netns)
    }
}

impl NetworkMode {
    /// Docker's `--network` values.
    pub fn parse(text: &str) -> NetworkMode {
        match text {
            "none" => NetworkMode::None,
            "host" => NetworkMode::Host,
            "pasta" => NetworkMode::Pasta,
            "slirp4netns" => NetworkMode::Slirp4netns,
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
            NetworkMode::Pasta => "pasta".into(),
            NetworkMode::Slirp4netns => "slirp4netns".into(),
        }
    }
}

/// What `run` and `create` ask of the network.
#[derive(Debug, Clone, Default)]
pub struct NetworkRequest {
    pub mode: NetworkMode,
    pub aliases: Vec<String>,
    pub ip: Option<String>,
    /// `--mac-address`: the MAC address on its (first) network.
    pub mac_address: Option<String>,
    /// `-p`.
    pub publish: Vec<String>,
    /// `-P`: every exposed port (the image's EXPOSE and `--expose`) to a free one.
    pub publish_all: bool,
    pub expose: Vec<String>,
    pub dns: Vec<String>,
    /// `--dns-search`: the search domains of resolv.conf (`.` for none).
    pub dns_search: Vec<String>,
    /// `--dns-option`: its `options`.
    pub dns_options: Vec<String>,
    /// `--add-host NAME:IP`.
    pub add_hosts: Vec<String>,
}

/// `resolv` with its `search` (and `domain`) lines replaced when `search` is given,
/// and its `options` lines when `options` is, as Docker writes them.
fn resolv_with(resolv: &str, search: &[String], options: &[String]) -> String {
    let mut lines: Vec<&str> = resolv
        .lines()
        .filter(|line| {
            let key = line.split_whitespace().next().unwrap_or("");
            !((!search.is_empty() && (key == "search" || key == "domain"))
                || (!options.is_empty() && key == "options"))
        })
        .collect();
    let search_line;
    let domains: Vec<&str> = search
        .iter()
        .map(String::as_str)
        .filter(|d| *d != ".")
        .collect();
    if !domains.is_empty() {
        search_line = format!("search {}", domains.join(" "));
        lines.push(&search_line);
    }
    let options_line;
    if !options.is_empty() {
        options_line = format!("options {}", options.join(" "));
        lines.push(&options_line);
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// What a container keeps of its networks.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NetworkSettings {
    pub mode: NetworkMode,
    /// For a bridge network: what the driver is given.
    pub plan: Option<ContainerNetwork>,
    /// `--expose` and the image's EXPOSE (for `-P` and `inspect`).
    #[serde(default)]
    pub exposed: Vec<String>,
    /// For pasta: the published ports (a host port of 0 is chosen at each start).
    #[serde(default)]
    pub pasta_ports: Vec<PortMapping>,
}

/// The network rootless lade gives for `mode`: pasta for the default network, the
/// bridge driver in rootless lade's own network namespace for user networks.
fn rootless_mode(mode: &NetworkMode) -> Result<NetworkMode> {
    if !exec::rootless::is_rootless() {
        if mode.is_user_mode() {
            return Err(ContainerError::PastaNeedsRootless(mode.docker_name()));
        }
        return Ok(mode.clone());
    }
    match mode {
        NetworkMode::Bridge(name) if name == DEFAULT_NETWORK => {
            let pasta = network::pasta::pasta_binary().is_some();
            let slirp = network::pasta::slirp4netns_binary().is_some();
            Ok(if !pasta && slirp {
                NetworkMode::Slirp4netns
            } else {
                NetworkMode::Pasta
            })
        }
        other => Ok(other.clone()),
    }
}

/// The ports `-p` and `-P` ask for, parsed (host ports of 0 chosen at each start).
fn requested_ports(request: &NetworkRequest, exposed: &[String]) -> Result<Vec<PortMapping>> {
    let mut ports = Vec::new();
    for text in &request.publish {
        ports.push(network::parse_publish(text)?);
    }
    if request.publish_all {
        for port in exposed {
            let (number, protocol) = port.split_once('/').unwrap_or((port, "tcp"));
            let mapping = network::parse_publish(&format!("{number}/{protocol}"))?;
            if !ports.iter().any(|p: &PortMapping| {
                p.container_port == mapping.container_port && p.protocol == mapping.protocol
            }) {
                ports.push(mapping);
            }
        }
    }
    Ok(ports)
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
    for domain in request.dns_search.iter().filter(|d| *d != ".") {
        validate::dns_name("--dns-search", domain.trim_end_matches('.'))?;
    }
    for option in &request.dns_options {
        if option.is_empty() || option.contains(char::is_whitespace) {
            return Err(validate::invalid(
                "--dns-option",
                option,
                "a resolv.conf option is one word, such as ndots:2 or edns0",
            )
            .into());
        }
    }
    for server in &request.dns {
        validate::dns_server(server)?;
    }
    if let Some(ip) = &request.ip {
        parse_ip(ip)?;
    }
    if let Some(mac) = &request.mac_address {
        validate::mac_address(mac)?;
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
    let mode = rootless_mode(&request.mode)?;
    if mode.is_user_mode() {
        if request.ip.is_some() || request.mac_address.is_some() || !request.aliases.is_empty() {
            return Err(ContainerError::AddressNeedsBridge);
        }
        let pasta_ports = requested_ports(request, &exposed)?;
        network::pasta::check_rootless_ports(&pasta_ports)?;
        hosts.push_str(&format!("127.0.1.1\t{hostname} {name}\n"));
        hosts.push_str(&extra_hosts);
        let resolv = if dns_servers.is_empty() && mode == NetworkMode::Slirp4netns {
            // slirp4netns answers DNS on its own address and asks the host's servers.
            format!("nameserver {}\n", network::slirp::DNS_SERVER)
        } else if dns_servers.is_empty() {
            host_resolv
        } else {
            own_resolv(&dns_servers)
        };
        let resolv = resolv_with(&resolv, &request.dns_search, &request.dns_options);
        let settings = NetworkSettings {
            mode,
            plan: None,
            exposed,
            pasta_ports,
        };
        return Ok((settings, EtcFiles { hosts, resolv }));
    }
    let NetworkMode::Bridge(network_name) = &request.mode else {
        if published {
            return Err(ContainerError::PublishNeedsBridge(
                request.mode.docker_name(),
            ));
        }
        if request.ip.is_some() || request.mac_address.is_some() || !request.aliases.is_empty() {
            return Err(ContainerError::AddressNeedsBridge);
        }
        hosts.push_str(&format!("127.0.1.1\t{hostname}\n"));
        hosts.push_str(&extra_hosts);
        let resolv = if dns_servers.is_empty() {
            host_resolv
        } else {
            own_resolv(&dns_servers)
        };
        let resolv = resolv_with(&resolv, &request.dns_search, &request.dns_options);
        let settings = NetworkSettings {
            mode: request.mode.clone(),
            plan: None,
            exposed,
            pasta_ports: Vec::new(),
        };
        return Ok((settings, EtcFiles { hosts, resolv }));
    };
    let network = if network_name == DEFAULT_NETWORK {
        network::default_network(store)?
    } else {
        network::find(store, network_name)?
    };
    let requested = request.ip.as_deref().map(parse_ip).transpose()?;
    let ports = requested_ports(request, &exposed)?;
    if exec::rootless::is_rootless() {
        network::pasta::check_rootless_ports(&ports)?;
    }
    let ip = network::allocate_address(store, &network, id, requested)?;
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
    let resolv = resolv_with(&resolv, &request.dns_search, &request.dns_options);
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
            mac_address: request
                .mac_address
                .as_deref()
                .map(validate::mac_address)
                .transpose()?,
        }],
        ports,
        dns_servers,
    };
    let settings = NetworkSettings {
        mode: request.mode.clone(),
        plan: Some(plan),
        exposed,
        pasta_ports: Vec::new(),
    };
    Ok((settings, EtcFiles { hosts, resolv }))
}

fn container_dir(store: &Store, id: &str) -> PathBuf {
    store.root().join("containers").join(id)
}

fn ports_file(store: &Store, id: &str) -> PathBuf {
    container_dir(store, id).join("ports.json")
}

fn driver(store: &Store) -> Driver {
    Driver::for_store(store, exec::mounts::host_mount_namespace)
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
pub(crate) enum Session {
    Bridge(Box<BridgeSession>),
    Pasta(PastaSession),
}

/// A rootless container's network while it runs: its namespace, which pasta connects.
pub(crate) struct PastaSession {
    /// slirp4netns, when it connects the namespace instead of pasta: it ends when this
    /// goes.
    slirp: Option<network::slirp::Slirp>,
    namespace: NetNamespace,
    pid_file: PathBuf,
    ports_file: PathBuf,
    _lock: Lock,
}

/// A container's bridge networks while it runs.
pub(crate) struct BridgeSession {
    plan: ContainerNetwork,
    namespace: NetNamespace,
    driver: Driver,
    /// The published ports, carried to the container while it runs.
    _published: Published,
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
        NetworkMode::Pasta | NetworkMode::Slirp4netns => {
            let slirp = network_settings.mode == NetworkMode::Slirp4netns;
            let (session, join) =
                start_pasta(store, container, network_settings.pasta_ports, slirp)?;
            return Ok((Some(Session::Pasta(session)), join));
        }
        NetworkMode::Bridge(_) => {}
    }
    let Some(mut plan) = network_settings.plan else {
        return Ok((None, exec::Network::Isolated));
    };
    let lock = lock(store, &record.id, true)?
        .ok_or_else(|| ContainerError::NetworkBusy(record.name.clone()))?;
    let driver = driver(store);
    // What a run that was killed left.
    teardown_leftovers(store, &record.id, &plan, &driver);
    let reservation = network::reserve(&mut plan.ports)?;
    let file = network::namespace_file(&record.id);
    let namespace = host_mounts()
        .and_then(|host| NetNamespace::create(&file, host))
        .map_err(|source| ContainerError::Io {
            path: file.clone(),
            source,
        })?;
    let dns_unavailable = match driver.setup(&namespace.path(), &plan) {
        Ok(warning) => warning,
        Err(err) => {
            let _ = driver.teardown(&plan);
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
        let _ = driver.teardown(&plan);
        let _ = remove_namespace(&file);
        return Err(ContainerError::Io {
            path: ports_file,
            source,
        });
    }
    let published = match driver.publish(reservation, &plan) {
        Ok(published) => published,
        Err(err) => {
            let _ = driver.teardown(&plan);
            let _ = fs::remove_file(&ports_file);
            let _ = remove_namespace(&file);
            return Err(err.into());
        }
    };
    let join = exec::Network::Join(namespace.path());
    Ok((
        Some(Session::Bridge(Box::new(BridgeSession {
            plan,
            namespace,
            driver,
            _published: published,
            _lock: lock,
            ports_file,
            dns_unavailable,
        }))),
        join,
    ))
}

fn pasta_pid_file(store: &Store, id: &str) -> PathBuf {
    container_dir(store, id).join("pasta.pid")
}

/// A rootless start's network: a namespace of its own (a file under the runtime
/// directory, so that the next command can tear it down after a `kill -9`), connected
/// by pasta with the published ports.
fn start_pasta(
    store: &Store,
    container: &Container,
    mut ports: Vec<PortMapping>,
    with_slirp: bool,
) -> Result<(PastaSession, exec::Network)> {
    let record = &container.record;
    let lock = lock(store, &record.id, true)?
        .ok_or_else(|| ContainerError::NetworkBusy(record.name.clone()))?;
    let pid_file = pasta_pid_file(store, &record.id);
    let file = network::namespace_file(&record.id);
    // What a run that was killed left.
    network::pasta::stop(&pid_file);
    let _ = remove_namespace(&file);
    // Host ports of 0 are chosen now; pasta binds them as soon as the reservation goes.
    drop(network::reserve(&mut ports)?);
    let namespace = host_mounts()
        .and_then(|host| NetNamespace::create(&file, host))
        .map_err(|source| ContainerError::Io {
            path: file.clone(),
            source,
        })?;
    let ports_file = ports_file(store, &record.id);
    let mut slirp = None;
    let started = host_mounts()
        .map_err(|source| ContainerError::Io {
            path: file.clone(),
            source,
        })
        .and_then(|host| {
            if with_slirp {
                // Under the runtime directory: a socket's path must stay under 108 bytes.
                let dir = network::runtime_dir().join("slirp");
                network::private_runtime_dir(&dir).map_err(|source| ContainerError::Io {
                    path: dir.clone(),
                    source,
                })?;
                let socket = dir.join(format!("{}.sock", &record.id[..12]));
                slirp = Some(network::slirp::start(&file, host, &ports, &socket)?);
                Ok(())
            } else {
                network::pasta::start(&file, host, &ports, &pid_file).map_err(ContainerError::from)
            }
        })
        .and_then(|()| {
            let json = serde_json::to_vec(&ports).map_err(|e| ContainerError::Json {
                what: "the published ports".into(),
                source: e,
            })?;
            fs::write(&ports_file, json).map_err(|source| ContainerError::Io {
                path: ports_file.clone(),
                source,
            })
        });
    if let Err(err) = started {
        drop(slirp);
        network::pasta::stop(&pid_file);
        let _ = remove_namespace(&file);
        return Err(err);
    }
    let join = exec::Network::Join(namespace.path());
    Ok((
        PastaSession {
            slirp,
            namespace,
            pid_file,
            ports_file,
            _lock: lock,
        },
        join,
    ))
}

impl Session {
    /// What the container's networks lack (names that will not resolve), to be told
    /// before it runs.
    pub(crate) fn warning(&self) -> Option<&DnsUnavailable> {
        match self {
            Session::Bridge(session) => session.dns_unavailable.as_ref(),
            Session::Pasta(_) => None,
        }
    }

    /// Tears the container's network down.
    pub(crate) fn finish(self, store: &Store) -> Result<()> {
        match self {
            Session::Bridge(session) => session.finish(store),
            Session::Pasta(mut session) => {
                drop(session.slirp.take());
                network::pasta::stop(&session.pid_file);
                let _ = fs::remove_file(&session.ports_file);
                remove_namespace(&session.namespace.file).map_err(|source| ContainerError::Io {
                    path: session.namespace.file.clone(),
                    source,
                })
            }
        }
    }
}

impl BridgeSession {
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
        let torn = self.driver.teardown(&plan);
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

fn teardown_leftovers(store: &Store, id: &str, plan: &ContainerNetwork, driver: &Driver) {
    driver.reap(id, plan, host_mounts);
    let _ = fs::remove_file(ports_file(store, id));
}

/// Tears down the network of a container nobody runs any more (its monitor killed):
/// what `ps`, `rm` and `start` do when they find one. With `wait`, waits for whoever
/// still runs it to finish (`rm -f`, after the kill).
pub(crate) fn reap(store: &Store, container: &Container, wait: bool) -> Result<()> {
    let record = &container.record;
    if container.settings.network.mode.is_user_mode() {
        let pid_file = pasta_pid_file(store, &record.id);
        if !pid_file.exists() && !network::namespace_file(&record.id).exists() {
            return Ok(());
        }
        let Some(_lock) = lock(store, &record.id, wait)? else {
            return Ok(());
        };
        network::pasta::stop(&pid_file);
        let _ = fs::remove_file(ports_file(store, &record.id));
        let _ = remove_namespace(&network::namespace_file(&record.id));
        return Ok(());
    }
    let Some(plan) = &container.settings.network.plan else {
        return Ok(());
    };
    if !network::namespace_file(&record.id).exists() && !ports_file(store, &record.id).exists() {
        return Ok(());
    }
    if !container_dir(store, &record.id).is_dir() {
        return Ok(());
    }
    let Some(_lock) = lock(store, &record.id, wait)? else {
        return Ok(()); // its runner is alive and will do it
    };
    teardown_leftovers(store, &record.id, plan, &driver(store));
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

/// The first step of `network connect`: the container's plan as it is, and its
/// attachment to `network` (`aliases`, `ip` as `--alias` and `--ip` give them), its
/// address there already taken. The caller gives the address back if the join goes no
/// further.
pub fn plan_join(
    store: &Store,
    container: &Container,
    network: &NetworkDefinition,
    aliases: &[String],
    ip: Option<&str>,
) -> Result<(ContainerNetwork, Attachment)> {
    let record = &container.record;
    let settings = &container.settings.network;
    let current = match (&settings.mode, settings.plan.clone()) {
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
    if current
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
    let (planned, _) = plan(
        store,
        &record.id,
        &record.name,
        &container.spec.hostname,
        &request,
        &ImageConfig::default(),
    )?;
    let mut attachment = planned
        .plan
        .and_then(|p| p.attachments.into_iter().next())
        .ok_or(ContainerError::NoNetworkPlanned)?;
    attachment.interface = format!("eth{}", current.attachments.len());
    Ok((current, attachment))
}

/// The first step of `network disconnect`: the container's plan as it is, and its
/// attachment to the network named `network`.
pub fn plan_leave(container: &Container, network: &str) -> Result<(ContainerNetwork, Attachment)> {
    let not_on = || ContainerError::NotOnNetwork {
        name: container.record.name.clone(),
        network: network.to_string(),
    };
    let plan = container.settings.network.plan.clone().ok_or_else(not_on)?;
    let leaving = plan
        .attachments
        .iter()
        .find(|a| a.network.name == network)
        .cloned()
        .ok_or_else(not_on)?;
    Ok((plan, leaving))
}

/// The network namespace file of a running container on a bridge network, which
/// `network connect` and `disconnect` change at once.
pub fn live_namespace(container: &Container) -> Result<PathBuf> {
    let file = network::namespace_file(&container.record.id);
    if !file.exists() {
        return Err(ContainerError::CannotConnectLive {
            name: container.record.name.clone(),
            mode: container.settings.network.mode.docker_name(),
        });
    }
    Ok(file)
}

/// Keeps `plan` as the container's networks: its mode is its first network's, or
/// `none` when it has none left.
pub fn set_network_plan(
    store: &Store,
    container: &Container,
    plan: ContainerNetwork,
) -> Result<()> {
    let mut settings = container.settings.clone();
    settings.network.mode = match plan.attachments.first() {
        Some(first) => NetworkMode::Bridge(first.network.name.clone()),
        None => NetworkMode::None,
    };
    settings.network.plan = (!plan.attachments.is_empty()).then_some(plan);
    write_settings(store, &container.record, &settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_search_and_options_replace_their_lines() {
        let host = "nameserver 10.0.0.1\nsearch corp.example\noptions ndots:1\n";
        assert_eq!(resolv_with(host, &[], &[]), host);
        let text = resolv_with(
            host,
            &["a.example".into(), "b.example".into()],
            &["ndots:2".into(), "edns0".into()],
        );
        assert_eq!(
            text,
            "nameserver 10.0.0.1\nsearch a.example b.example\noptions ndots:2 edns0\n"
        );
        assert_eq!(
            resolv_with(host, &[".".into()], &[]),
            "nameserver 10.0.0.1\noptions ndots:1\n"
        );
    }
}
