//! Container networks, on podman's network stack rather than one of our own: netavark
//! makes the bridge, the veth pair, addresses, NAT and port forwarding, and aardvark-dns
//! answers container names on user networks. This module owns netavark's JSON and
//! running it, subnets, published-port syntax and host-port reservations, and the
//! persistent network namespaces containers join. It knows nothing of the store: its
//! callers keep the definitions and addresses it works with.
//!
//! Rootless networking (pasta) is not here: lade's containers need root.

mod namespace;
mod ports;
mod subnet;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};
use serde_json::json;

pub use namespace::{namespace_dir, remove_namespace, NetNamespace};
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

    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// Connects the namespace at `netns` to the container's networks.
    pub fn setup(&self, netns: &Path, network: &ContainerNetwork) -> Result<()> {
        self.call("setup", netns, network)
    }

    /// Undoes [`Netavark::setup`]; the namespace may be empty by now (its container
    /// gone), which leaves only the host's side to undo.
    pub fn teardown(&self, netns: &Path, network: &ContainerNetwork) -> Result<()> {
        self.call("teardown", netns, network)
    }

    fn call(&self, command: &'static str, netns: &Path, network: &ContainerNetwork) -> Result<()> {
        let failed = |message: String| NetworkError::Netavark { command, message };
        // One netavark at a time on this host: it edits the host's firewall tables and
        // bridges, which other stores' containers share.
        let _lock = host_lock().map_err(|e| failed(format!("its lock: {e}")))?;
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
