//! Containers' addresses on networks: each one claimed in the store (in a transaction,
//! so two containers made at once never get the same one) and given back when the
//! container leaves the network or is removed.

use std::net::Ipv4Addr;

use super::{NetworkDefinition, NetworkError, Result};
use crate::store::Store;

/// Takes an address on `network` for `container`: `requested` (`--ip`), or the first
/// free one.
pub fn allocate_address(
    store: &Store,
    network: &NetworkDefinition,
    container: &str,
    requested: Option<Ipv4Addr>,
) -> Result<Ipv4Addr> {
    let subnet = network.subnet;
    if let Some(ip) = requested {
        if !subnet.hosts().any(|h| h == ip) {
            return Err(NetworkError::AddressOutside {
                ip,
                network: network.name.clone(),
                subnet: subnet.to_string(),
            });
        }
    }
    let address = store
        .allocate_address(&network.name, container, |taken| match requested {
            Some(ip) => (!taken.contains(&ip.to_string())).then(|| ip.to_string()),
            None => subnet
                .hosts()
                .map(|h| h.to_string())
                .find(|h| !taken.contains(h)),
        })?
        .ok_or_else(|| match requested {
            Some(ip) => NetworkError::AddressTaken {
                ip,
                network: network.name.clone(),
            },
            None => NetworkError::NoAddressLeft {
                network: network.name.clone(),
                subnet: subnet.to_string(),
            },
        })?;
    address
        .parse()
        .map_err(|_| NetworkError::StoredAddress(address.to_string()))
}

/// Gives back a container's addresses: on one network, or on all of them.
pub fn release_addresses(store: &Store, container: &str, network: Option<&str>) -> Result<()> {
    Ok(store.release_addresses(container, network)?)
}
