//! Container networks, on podman's network stack rather than one of our own: netavark
//! makes the bridge, the veth pair, addresses, NAT and port forwarding, and aardvark-dns
//! answers container names on user networks. This module owns netavark's JSON and
//! running it, subnets, published-port syntax and host-port reservations, and the
//! persistent network namespaces containers join. It also owns network management: the
//! networks a store keeps (records, definitions, create, remove, prune, inspect data,
//! the default network) and containers' addresses on them, since a network's record
//! and its address claims are stored state. What a container makes of its networks
//! (its plan at create, the session of each start) is the container module's.
//!
//! Rootless networking (pasta) is not here: lade's containers need root.

mod address;
mod dns;
mod inspect;
mod localnet;
mod manage;
mod namespace;
mod ports;
mod subnet;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::store::{Store, StoreError};

pub use address::{allocate_address, release_addresses};
pub use inspect::{inspect, list, Endpoint, Ipam, IpamConfig, NetworkInspect};
pub use localnet::GuardError;
pub use manage::{
    create, default_network, definition, find, find_or_default, name_of, prune, record_event,
    remove, NetworkOptions, DEFAULT_NETWORK,
};
pub use namespace::{namespace_dir, namespace_file, remove_namespace, NetNamespace};
pub use ports::{parse_publish, reserve, tcp_port_free, PortMapping, Reservation};
pub use subnet::{free_subnet, host_routes, Subnet, SubnetError};

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("netavark is not installed (looked in {0}): apt-get install netavark aardvark-dns, or run with --network none or host")]
    NotInstalled(String),
    #[error("netavark {command} failed: {message}")]
    Netavark {
        command: &'static str,
        message: String,
    },
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
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Guard(#[from] GuardError),
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
    #[error("cannot run {}: {source}{}", path.display(), systemd_note(*netavark_tried_systemd))]
    CannotRun {
        path: PathBuf,
        source: std::io::Error,
        netavark_tried_systemd: bool,
    },
    #[error("{} failed ({status}){}{}", path.display(), said_note(said), systemd_note(*netavark_tried_systemd))]
    Failed {
        path: PathBuf,
        status: std::process::ExitStatus,
        /// What it said on stderr.
        said: String,
        netavark_tried_systemd: bool,
    },
    #[error(
        "{} started but does not run (its pid file {} names no aardvark-dns){}",
        path.display(),
        pid_file.display(),
        systemd_note(*netavark_tried_systemd)
    )]
    NotRunning {
        path: PathBuf,
        pid_file: PathBuf,
        netavark_tried_systemd: bool,
    },
    #[error("{} does not answer the container's name: {source}", path.display())]
    NoAnswer {
        path: PathBuf,
        source: dns::ProbeError,
    },
}

fn systemd_note(tried: bool) -> &'static str {
    if tried {
        " (netavark tried systemd-run, since /run/systemd/system exists, but systemd is not PID 1)"
    } else {
        ""
    }
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

/// A bridge network, as lade keeps it and hands it to netavark.
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

impl NetworkDefinition {
    /// netavark's form. netavark names its firewall chains and aardvark-dns's files
    /// after the network's name, which must therefore be unique on the host: two stores
    /// may each have a network `lade`, so netavark is given the bridge's name (unique
    /// through the host-wide claims).
    fn netavark(&self) -> serde_json::Value {
        json!({
            "name": self.bridge,
            "id": self.id,
            "driver": "bridge",
            "network_interface": self.bridge,
            "subnets": [{ "subnet": self.subnet.to_string(), "gateway": self.gateway.to_string() }],
            "ipv6_enabled": false,
            "internal": self.internal,
            "dns_enabled": self.dns_enabled,
            // Not netavark 1.4's `isolate`: its complete teardown of one network removes
            // the jump into the isolation chains that every other network shares.
            "options": {},
            "ipam_options": { "driver": "host-local" },
        })
    }
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
    /// (`92:d0:c6:0a:29:33`, as netavark's `static_mac` takes it); none for one of the
    /// kernel's choosing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
}

/// Everything netavark needs to set up (or tear down) one container's networks.
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
    /// netavark is given to connect a running container to one more network, or to
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

    fn netavark(&self) -> serde_json::Value {
        let mut networks = serde_json::Map::new();
        let mut info = serde_json::Map::new();
        for attachment in &self.attachments {
            let name = attachment.network.bridge.clone();
            networks.insert(
                name.clone(),
                json!({
                    "interface_name": attachment.interface,
                    "static_ips": [attachment.ip.to_string()],
                    "aliases": attachment.aliases,
                }),
            );
            info.insert(name, attachment.network.netavark());
        }
        let ports: Vec<&PortMapping> = self
            .ports
            .iter()
            .filter(|_| self.attachments.iter().any(|a| !a.network.internal))
            .collect();
        json!({
            "container_id": self.container_id,
            "container_name": self.container_name,
            "networks": networks,
            "network_info": info,
            "port_mappings": ports,
            "dns_servers": self.dns_servers.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        })
    }
}

/// netavark and aardvark-dns, where Debian puts them (podman's helper directory), or
/// where `$LADE_NETAVARK` and `$LADE_AARDVARK_DNS` say.
#[derive(Debug, Clone)]
pub struct Netavark {
    binary: PathBuf,
    aardvark: PathBuf,
    /// netavark's `--config`: aardvark-dns's files.
    config_dir: PathBuf,
}

const HELPER_DIRS: [&str; 4] = [
    "/usr/lib/podman",
    "/usr/libexec/podman",
    "/usr/local/libexec/podman",
    "/usr/local/lib/podman",
];

fn find_helper(name: &str, variable: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(variable) {
        return Some(PathBuf::from(path));
    }
    let path_dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    HELPER_DIRS
        .iter()
        .map(PathBuf::from)
        .chain(path_dirs)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

impl Netavark {
    /// Finds the binaries; `config_dir` is where aardvark-dns's files go.
    pub fn locate(config_dir: PathBuf) -> Result<Netavark> {
        let binary = find_helper("netavark", "LADE_NETAVARK")
            .ok_or_else(|| NetworkError::NotInstalled(HELPER_DIRS.join(", ") + " and $PATH"))?;
        let aardvark = find_helper("aardvark-dns", "LADE_AARDVARK_DNS")
            .unwrap_or_else(|| PathBuf::from("/usr/lib/podman/aardvark-dns"));
        Ok(Netavark {
            binary,
            aardvark,
            config_dir,
        })
    }

    /// Finds the binaries for containers of `store`, which keeps aardvark-dns's files.
    pub fn for_store(store: &Store) -> Result<Netavark> {
        Netavark::locate(store.root().join("networks"))
    }

    /// Tears down what a container nobody runs any more left of its networks: its
    /// namespace (unmounted in `host_mounts`, where it was mounted) and the host's side
    /// of it. What cannot be undone is left for the next try.
    pub fn reap(
        &self,
        container_id: &str,
        plan: &ContainerNetwork,
        host_mounts: impl FnOnce() -> std::io::Result<std::fs::File>,
    ) {
        let file = namespace_file(container_id);
        if file.exists() {
            let _ = self.teardown(&file, plan);
            let _ = host_mounts().and_then(|host| remove_namespace(&file, host));
        }
    }

    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// Connects the namespace at `netns` to the container's networks, each bridge
    /// guarded first (see `localnet`). Names are answered on its DNS-enabled networks
    /// unless the returned warning says why not.
    pub fn setup(
        &self,
        netns: &Path,
        network: &ContainerNetwork,
    ) -> Result<Option<DnsUnavailable>> {
        let lock = host_lock().map_err(|e| NetworkError::Netavark {
            command: "setup",
            message: format!("its lock: {e}"),
        })?;
        let bridges: Vec<&str> = network
            .attachments
            .iter()
            .map(|a| a.network.bridge.as_str())
            .collect();
        // Before netavark makes the bridge: no packet crosses it unguarded.
        for (n, bridge) in bridges.iter().enumerate() {
            if let Err(err) = localnet::guard(bridge) {
                for made in &bridges[..n] {
                    let _ = localnet::unguard_if_gone(made);
                }
                return Err(err.into());
            }
        }
        if let Err(err) = self.call("setup", netns, network) {
            for bridge in &bridges {
                let _ = localnet::unguard_if_gone(bridge);
            }
            return Err(err);
        }
        let named: Vec<&Attachment> = network
            .attachments
            .iter()
            .filter(|a| a.network.dns_enabled)
            .collect();
        if named.is_empty() {
            return Ok(None);
        }
        if let Err(cause) = self.start_aardvark() {
            return Ok(Some(DnsUnavailable {
                networks: named.iter().map(|a| a.network.name.clone()).collect(),
                cause,
            }));
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
                                path: self.aardvark.clone(),
                                source,
                            },
                        })
                    }
                }
            }
        }
        Ok(silent)
    }

    /// Undoes [`Netavark::setup`]; the namespace may be empty by now (its container
    /// gone), which leaves only the host's side to undo.
    pub fn teardown(&self, netns: &Path, network: &ContainerNetwork) -> Result<()> {
        let _lock = host_lock().map_err(|e| NetworkError::Netavark {
            command: "teardown",
            message: format!("its lock: {e}"),
        })?;
        // Held before netavark tells it of the removal: a wait below cannot name a newer
        // process with its pid.
        let aardvark = self.aardvark_process();
        let torn = match self.call("teardown", netns, network) {
            // netavark removed the container's names, then found no aardvark-dns to
            // tell (it never started, as `setup` warned): nothing is left undone.
            Err(NetworkError::Netavark { command, message }) if !self.aardvark_running() => {
                match without_missing_aardvark(&message) {
                    None => Ok(()),
                    Some(message) => Err(NetworkError::Netavark { command, message }),
                }
            }
            other => other,
        };
        // With no names left it exits (its pid file and its sockets gone) once it has
        // read its files again: waited for, so that the host is as it was when this
        // returns, and the next setup starts a new one rather than tell one that leaves.
        if let Some(process) = aardvark {
            if !self.aardvark_has_names() {
                exits_within(&process, AARDVARK_EXIT);
            }
        }
        let mut unguarded = Ok(());
        for attachment in &network.attachments {
            if let Err(err) = localnet::unguard_if_gone(&attachment.network.bridge) {
                unguarded = Err(err);
            }
        }
        torn?;
        Ok(unguarded?)
    }

    fn aardvark_dir(&self) -> PathBuf {
        self.config_dir.join("aardvark-dns")
    }

    /// The aardvark-dns that netavark tells of changes (the one in its pid file), when
    /// it runs.
    fn aardvark_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.aardvark_dir().join("aardvark.pid"))
            .ok()
            .and_then(|pid| pid.trim().parse::<i32>().ok())
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|comm| comm.trim_end() == "aardvark-dns")
            })
    }

    fn aardvark_running(&self) -> bool {
        self.aardvark_pid().is_some()
    }

    /// A pidfd for the running aardvark-dns, checked after it is opened, so that it
    /// cannot name a newer process that took its pid.
    fn aardvark_process(&self) -> Option<OwnedFd> {
        let pid = self.aardvark_pid()?;
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            return None;
        }
        // SAFETY: the kernel just returned this descriptor; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        (self.aardvark_pid() == Some(pid)).then_some(fd)
    }

    /// Whether aardvark-dns has names to answer: a file per network, beside its pid.
    fn aardvark_has_names(&self) -> bool {
        std::fs::read_dir(self.aardvark_dir())
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .any(|e| e.file_name() != "aardvark.pid")
            })
            .unwrap_or(false)
    }

    /// Makes sure aardvark-dns runs after a setup; says why not when it cannot. netavark
    /// 1.4 starts it through `systemd-run --scope` whenever `/run/systemd/system`
    /// exists, which fails (silently) where systemd is not PID 1 (a container, WSL, a CI
    /// image, a package that made the directory); it skips it (silently) when the
    /// binary is missing. Started here as netavark starts it without systemd, it then
    /// finds it running at the next setup and teardown.
    fn start_aardvark(&self) -> std::result::Result<(), DnsError> {
        if self.aardvark_running() {
            return Ok(());
        }
        let path = self.aardvark.clone();
        if !path.is_file() {
            return Err(DnsError::NotInstalled { path });
        }
        let netavark_tried_systemd = systemd_dir_without_systemd();
        // aardvark-dns forks its server, which lets go of our pipes before its parent
        // returns, once its pid file is written.
        let output = Command::new(&path)
            .arg("--config")
            .arg(self.aardvark_dir())
            .args(["-p", "53", "run"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output();
        let output = match output {
            Ok(output) => output,
            Err(source) => {
                return Err(DnsError::CannotRun {
                    path,
                    source,
                    netavark_tried_systemd,
                })
            }
        };
        if !output.status.success() {
            return Err(DnsError::Failed {
                path,
                status: output.status,
                said: String::from_utf8_lossy(&output.stderr).trim().to_string(),
                netavark_tried_systemd,
            });
        }
        if !self.aardvark_running() {
            return Err(DnsError::NotRunning {
                path,
                pid_file: self.aardvark_dir().join("aardvark.pid"),
                netavark_tried_systemd,
            });
        }
        Ok(())
    }

    fn call(&self, command: &'static str, netns: &Path, network: &ContainerNetwork) -> Result<()> {
        let failed = |message: String| NetworkError::Netavark { command, message };
        std::fs::create_dir_all(&self.config_dir).map_err(|source| NetworkError::Io {
            path: self.config_dir.clone(),
            source,
        })?;
        let mut child = Command::new(&self.binary)
            .arg("--config")
            .arg(&self.config_dir)
            .arg("--aardvark-binary")
            .arg(&self.aardvark)
            .arg(command)
            .arg(netns)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| failed(format!("cannot run {}: {e}", self.binary.display())))?;
        let input = serde_json::to_vec(&network.netavark())
            .map_err(|e| failed(format!("its input: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(&input);
        }
        let output = child
            .wait_with_output()
            .map_err(|e| failed(format!("waiting for it: {e}")))?;
        if output.status.success() {
            return Ok(());
        }
        // netavark says what went wrong as {"error": "..."} on stdout.
        let message = serde_json::from_slice::<serde_json::Value>(&output.stdout)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&output.stderr).trim().to_string());
        Err(failed(message))
    }
}

/// lade's runtime files on this host: network namespaces, claims, the host lock.
pub const RUNTIME_DIR: &str = "/run/lade";

/// Makes `dir` and its parents up to [`RUNTIME_DIR`], each mode 0700, and closes any of
/// them an older lade left open: their names are container ids and their files show
/// which stores exist, which is no other user's business.
pub fn private_runtime_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    for made in dir
        .ancestors()
        .take_while(|made| made.starts_with(RUNTIME_DIR))
    {
        if std::fs::symlink_metadata(made)?.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(made, std::fs::Permissions::from_mode(0o700))?;
        }
    }
    Ok(())
}

/// How long a new container's names may take to be answered (aardvark-dns reads its
/// files again and binds anew after each change).
const DNS_READY: Duration = Duration::from_secs(5);

/// How long aardvark-dns is given to leave once it has no names to answer.
const AARDVARK_EXIT: Duration = Duration::from_secs(10);

/// Whether the pidfd's process exits within `timeout` (a pidfd becomes readable then).
fn exits_within(process: &OwnedFd, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut fds = [PollFd::new(process.as_fd(), PollFlags::POLLIN)];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let millis = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        match poll(&mut fds, PollTimeout::from(millis)) {
            Ok(n) if n > 0 => return true,
            Ok(_) if left.is_zero() || millis < u16::MAX => return false,
            Ok(_) | Err(nix::Error::EINTR) => continue,
            Err(_) => return false,
        }
    }
}

/// A host-wide lock (`/run/lade/network.lock`) for what several stores share: netavark's
/// changes to the host, and choosing bridge names and subnets.
pub fn host_lock() -> std::io::Result<nix::fcntl::Flock<std::fs::File>> {
    let dir = Path::new(RUNTIME_DIR);
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
/// `/run/systemd/system` exists (which netavark takes for a booted systemd, as
/// sd_booted(3) does) while PID 1 is not systemd.
fn systemd_dir_without_systemd() -> bool {
    Path::new("/run/systemd/system").exists()
        && std::fs::read_to_string("/proc/1/comm").is_ok_and(|comm| comm.trim_end() != "systemd")
}

/// netavark's error without its complaint that no aardvark-dns runs to be told of
/// removed names; `None` when nothing else is left. netavark says one error alone, or
/// several as `netavark encountered multiple errors:` and a `\n\t- ` line each.
fn without_missing_aardvark(message: &str) -> Option<String> {
    const MISSING: &str = "IO error: aardvark pid not found";
    const SEVERAL: &str = "netavark encountered multiple errors:";
    if message.trim() == MISSING {
        return None;
    }
    let Some(list) = message.strip_prefix(SEVERAL) else {
        return Some(message.to_string());
    };
    let rest: Vec<&str> = list
        .split("\n\t- ")
        .map(str::trim)
        .filter(|e| !e.is_empty() && *e != MISSING)
        .collect();
    match rest.as_slice() {
        [] => None,
        [one] => Some(one.to_string()),
        many => Some(format!("{SEVERAL}\n\t- {}", many.join("\n\t- "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_aardvark_alone_is_no_teardown_error() {
        assert_eq!(
            without_missing_aardvark("IO error: aardvark pid not found"),
            None
        );
        assert_eq!(
            without_missing_aardvark(
                "netavark encountered multiple errors:\n\t- IO error: aardvark pid not found\n\t- Netlink error: No such device"
            ),
            Some("Netlink error: No such device".to_string())
        );
        let other = "Netlink error: No such device";
        assert_eq!(without_missing_aardvark(other), Some(other.to_string()));
    }

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
