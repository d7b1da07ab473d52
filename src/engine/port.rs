//! `lade port`: a running container's published ports.

use super::{EngineError, Result};
use crate::container;
use crate::network::PortMapping;
use crate::store::Store;

/// `lade port`.
#[derive(Debug, Clone)]
pub struct PortRequest {
    pub container: String,
    /// Only this port (`80/tcp`).
    pub port: Option<String>,
}

impl PortRequest {
    /// A port without a protocol (`80`) is a TCP port, as Docker reads it.
    pub fn new(container: String, port: Option<String>) -> PortRequest {
        let port = port.map(|p| {
            if p.contains('/') {
                p
            } else {
                format!("{p}/tcp")
            }
        });
        PortRequest { container, port }
    }
}

/// One published port: `80/tcp` on `0.0.0.0:18080`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedPort {
    pub container_port: String,
    pub host: String,
}

/// `lade port`: the container's published ports (those asked for); none asked for and
/// none published is an error.
pub fn port(store: &Store, request: &PortRequest) -> Result<Vec<PublishedPort>> {
    let record = store.container(&request.container)?;
    let ports: Vec<PublishedPort> = container::published_ports(store, &record)
        .iter()
        .flat_map(PortMapping::docker_lines)
        .filter(|(container_port, _)| request.port.as_ref().is_none_or(|w| w == container_port))
        .map(|(container_port, host)| PublishedPort {
            container_port,
            host,
        })
        .collect();
    if let (Some(port), true) = (&request.port, ports.is_empty()) {
        return Err(EngineError::NoPublicPort {
            port: port.clone(),
            container: record.name,
        });
    }
    Ok(ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_is_tcp_unless_it_says() {
        assert_eq!(
            PortRequest::new("web".into(), Some("80".into()))
                .port
                .as_deref(),
            Some("80/tcp")
        );
        assert_eq!(
            PortRequest::new("web".into(), Some("53/udp".into()))
                .port
                .as_deref(),
            Some("53/udp")
        );
        assert_eq!(PortRequest::new("web".into(), None).port, None);
    }
}
