//! What `network inspect` and `network ls` show of a network, in Docker's shape: its
//! definition, and the containers that have an address on it (as the store's address
//! claims have them).

use std::collections::BTreeMap;

use serde::Serialize;

use super::manage::{definition, record};
use super::Result;
use crate::store::{NetworkRecord, Store};

/// A network as Docker's `network inspect` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkInspect {
    pub name: String,
    /// 64 hex digits.
    pub id: String,
    /// RFC 3339.
    pub created: String,
    pub scope: &'static str,
    pub driver: &'static str,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    #[serde(rename = "IPAM")]
    pub ipam: Ipam,
    pub internal: bool,
    pub attachable: bool,
    pub ingress: bool,
    /// By container id.
    pub containers: BTreeMap<String, Endpoint>,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    #[serde(rename = "DNSEnabled")]
    pub dns_enabled: bool,
}

/// Docker's address management section: one IPv4 subnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ipam {
    pub driver: &'static str,
    pub options: BTreeMap<String, String>,
    pub config: Vec<IpamConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpamConfig {
    pub subnet: String,
    pub gateway: String,
}

/// A container on the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    #[serde(rename = "Name")]
    pub name: String,
    /// `ADDRESS/PREFIX`.
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
    #[serde(rename = "IPv6Address")]
    pub ipv6_address: String,
}

/// A network by name, full id or unique id prefix, as `network inspect` shows it.
/// `bridge`, Docker's name for the default network, names lade's.
pub fn inspect(store: &Store, reference: &str) -> Result<NetworkInspect> {
    let name = super::manage::name_of(store, reference)?;
    of_record(store, &record(store, &name)?)
}

/// Every network of the store, by the name it shows.
pub fn list(store: &Store) -> Result<Vec<NetworkInspect>> {
    let mut networks = store
        .networks()?
        .iter()
        .map(|record| of_record(store, record))
        .collect::<Result<Vec<_>>>()?;
    networks.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(networks)
}

fn of_record(store: &Store, record: &NetworkRecord) -> Result<NetworkInspect> {
    let network = definition(record)?;
    let mut containers = BTreeMap::new();
    for (id, address) in store.network_addresses(&record.name)? {
        let Ok(container) = store.container(&id) else {
            continue; // removed meanwhile
        };
        containers.insert(
            id,
            Endpoint {
                name: container.name,
                ipv4_address: format!("{address}/{}", network.subnet.prefix()),
                ipv6_address: String::new(),
            },
        );
    }
    // Docker's scripts know the default network as `bridge`.
    let name = if network.name == super::DEFAULT_NETWORK {
        super::manage::DOCKER_DEFAULT.to_string()
    } else {
        network.name
    };
    Ok(NetworkInspect {
        name,
        id: network.id,
        created: network.created,
        scope: "local",
        driver: "bridge",
        enable_ipv6: false,
        ipam: Ipam {
            driver: "default",
            options: BTreeMap::new(),
            config: vec![IpamConfig {
                subnet: network.subnet.to_string(),
                gateway: network.gateway.to_string(),
            }],
        },
        internal: network.internal,
        attachable: false,
        ingress: false,
        containers,
        options: BTreeMap::from([("com.docker.network.bridge.name".to_string(), network.bridge)]),
        labels: network.labels,
        dns_enabled: network.dns_enabled,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_has_dockers_field_names() {
        let shown = NetworkInspect {
            name: "front".into(),
            id: "ab".repeat(32),
            created: "2024-01-01T00:00:00Z".into(),
            scope: "local",
            driver: "bridge",
            enable_ipv6: false,
            ipam: Ipam {
                driver: "default",
                options: BTreeMap::new(),
                config: vec![IpamConfig {
                    subnet: "10.89.0.0/24".into(),
                    gateway: "10.89.0.1".into(),
                }],
            },
            internal: false,
            attachable: false,
            ingress: false,
            containers: BTreeMap::from([(
                "cd".repeat(32),
                Endpoint {
                    name: "web".into(),
                    ipv4_address: "10.89.0.2/24".into(),
                    ipv6_address: String::new(),
                },
            )]),
            options: BTreeMap::new(),
            labels: BTreeMap::new(),
            dns_enabled: true,
        };
        let json = serde_json::to_value(&shown).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(
            keys,
            [
                "Attachable",
                "Containers",
                "Created",
                "DNSEnabled",
                "Driver",
                "EnableIPv6",
                "IPAM",
                "Id",
                "Ingress",
                "Internal",
                "Labels",
                "Name",
                "Options",
                "Scope"
            ]
        );
        assert_eq!(json["IPAM"]["Config"][0]["Gateway"], "10.89.0.1");
        assert_eq!(
            json["Containers"]["cd".repeat(32)]["IPv4Address"],
            "10.89.0.2/24"
        );
        assert_eq!(json["Containers"]["cd".repeat(32)]["IPv6Address"], "");
    }
}
