//! IPv4 subnets: the few operations networks need (containment, overlap, the gateway
//! and host addresses), and choosing a private subnet that clashes with none of the
//! host's routes nor any subnet already taken.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An IPv4 subnet in CIDR form (`10.89.0.0/24`), kept with its host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subnet {
    address: Ipv4Addr,
    prefix: u8,
}

impl Subnet {
    pub fn new(address: Ipv4Addr, prefix: u8) -> Option<Subnet> {
        (prefix <= 32).then(|| Subnet {
            address: Ipv4Addr::from(u32::from(address) & mask(prefix)),
            prefix,
        })
    }

    pub fn address(&self) -> Ipv4Addr {
        self.address
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == u32::from(self.address)
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        let prefix = self.prefix.min(other.prefix);
        u32::from(self.address) & mask(prefix) == u32::from(other.address) & mask(prefix)
    }

    /// The first host address: the bridge's, by convention.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.address) + 1)
    }

    /// The addresses containers may have: all but the network, the gateway and the
    /// broadcast addresses.
    pub fn hosts(&self) -> impl Iterator<Item = Ipv4Addr> {
        let first = u32::from(self.address) + 2;
        let broadcast = u32::from(self.address) | !mask(self.prefix);
        (first..broadcast).map(Ipv4Addr::from)
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

/// Why a text is not a subnet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubnetError {
    #[error("{0:?} is not a subnet in CIDR form (10.89.0.0/24)")]
    NotCidr(String),
    #[error("{text:?}: {address:?} is not an IPv4 address")]
    Address { text: String, address: String },
    #[error("{0:?}: the prefix must be between 8 and 30")]
    Prefix(String),
}

impl FromStr for Subnet {
    type Err = SubnetError;

    fn from_str(text: &str) -> Result<Subnet, SubnetError> {
        let (address, prefix) = text
            .split_once('/')
            .ok_or_else(|| SubnetError::NotCidr(text.to_string()))?;
        let parsed: Ipv4Addr = address.parse().map_err(|_| SubnetError::Address {
            text: text.to_string(),
            address: address.to_string(),
        })?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| (8..=30).contains(p))
            .ok_or_else(|| SubnetError::Prefix(text.to_string()))?;
        Subnet::new(parsed, prefix).ok_or_else(|| SubnetError::Prefix(text.to_string()))
    }
}

impl TryFrom<String> for Subnet {
    type Error = SubnetError;

    fn try_from(text: String) -> Result<Subnet, SubnetError> {
        text.parse()
    }
}

impl From<Subnet> for String {
    fn from(subnet: Subnet) -> String {
        subnet.to_string()
    }
}

/// The host's IPv4 routes but the default one, from `/proc/net/route`.
pub fn host_routes() -> Vec<Subnet> {
    let Ok(table) = std::fs::read_to_string("/proc/net/route") else {
        return Vec::new();
    };
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // Little-endian hex, as the kernel prints them.
            let destination = u32::from_str_radix(fields.get(1)?, 16).ok()?.swap_bytes();
            let mask = u32::from_str_radix(fields.get(7)?, 16).ok()?.swap_bytes();
            let prefix = mask.leading_ones() as u8;
            (prefix > 0).then(|| Subnet::new(Ipv4Addr::from(destination), prefix))?
        })
        .collect()
}

/// The first of 10.89.0.0/24, 10.89.1.0/24, ... 10.99.255.0/24 that overlaps nothing in
/// `taken`.
pub fn free_subnet(taken: &[Subnet]) -> Option<Subnet> {
    (89u8..100)
        .flat_map(|second| (0u8..=255).map(move |third| Ipv4Addr::new(10, second, third, 0)))
        .filter_map(|address| Subnet::new(address, 24))
        .find(|candidate| !taken.iter().any(|t| t.overlaps(candidate)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_parse_contain_and_overlap() {
        let net: Subnet = "10.89.3.7/24".parse().unwrap();
        assert_eq!(net.to_string(), "10.89.3.0/24");
        assert_eq!(net.gateway(), Ipv4Addr::new(10, 89, 3, 1));
        assert!(net.contains(Ipv4Addr::new(10, 89, 3, 200)));
        assert!(!net.contains(Ipv4Addr::new(10, 89, 4, 1)));
        assert_eq!(net.hosts().next(), Some(Ipv4Addr::new(10, 89, 3, 2)));
        assert_eq!(net.hosts().last(), Some(Ipv4Addr::new(10, 89, 3, 254)));
        assert!(net.overlaps(&"10.0.0.0/8".parse().unwrap()));
        assert!(!net.overlaps(&"10.89.4.0/24".parse().unwrap()));
        assert!("10.89.0.0".parse::<Subnet>().is_err());
        assert!("10.89.0.0/31".parse::<Subnet>().is_err());
    }

    #[test]
    fn a_free_subnet_avoids_what_is_taken() {
        let taken: Vec<Subnet> = vec![
            "10.89.0.0/24".parse().unwrap(),
            "10.89.1.0/25".parse().unwrap(),
        ];
        assert_eq!(free_subnet(&taken).unwrap().to_string(), "10.89.2.0/24");
        assert_eq!(free_subnet(&["10.0.0.0/8".parse().unwrap()]), None);
    }
}
