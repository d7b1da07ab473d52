//! Published ports: Docker's `-p` syntax, port mappings, Docker's way of
//! showing them, and the reservation of host ports. The driver forwards with NAT rules
//! and binds nothing, so lade binds each host port itself for as long as the container
//! runs (as podman's conmon does): a port another program or container holds is refused
//! with its number, and `-p 80` gets a free port from the kernel. Rootless, the
//! reserved ports are the very sockets lade's forwarder (`forward`) serves.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};

use serde::{Deserialize, Serialize};

use super::NetworkError;

/// One `-p`: `range` ports from `host_port` to `container_port`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    pub container_port: u16,
    /// Empty for every address.
    pub host_ip: String,
    /// 0 until a free one is chosen.
    pub host_port: u16,
    pub protocol: String,
    pub range: u16,
}

impl PortMapping {
    /// Docker's `80/tcp -> 0.0.0.0:18080` lines, one per port.
    pub fn docker_lines(&self) -> Vec<(String, String)> {
        let ip = if self.host_ip.is_empty() {
            "0.0.0.0"
        } else {
            &self.host_ip
        };
        (0..self.range)
            .map(|i| {
                (
                    format!("{}/{}", self.container_port + i, self.protocol),
                    format!("{ip}:{}", self.host_port + i),
                )
            })
            .collect()
    }
}

/// Parses one `-p [IP:][HOST_PORT[-END]:]CONTAINER_PORT[-END][/PROTOCOL]`.
pub fn parse_publish(text: &str) -> Result<PortMapping, NetworkError> {
    let bad = |reason: &str| NetworkError::Publish {
        text: text.to_string(),
        reason: reason.to_string(),
    };
    let (ports, protocol) = match text.rsplit_once('/') {
        Some((ports, protocol)) => (ports, protocol.to_ascii_lowercase()),
        None => (text, "tcp".to_string()),
    };
    if !matches!(protocol.as_str(), "tcp" | "udp" | "sctp") {
        return Err(bad("the protocol is tcp, udp or sctp"));
    }
    let parts: Vec<&str> = ports.split(':').collect();
    let (host_ip, host, container) = match parts.as_slice() {
        [container] => ("", "", *container),
        [host, container] => ("", *host, *container),
        [ip, host, container] => (*ip, *host, *container),
        _ => return Err(bad("expected [IP:][HOST_PORT:]CONTAINER_PORT")),
    };
    if !host_ip.is_empty() && host_ip.parse::<Ipv4Addr>().is_err() {
        return Err(bad("the host address must be an IPv4 address"));
    }
    let (container_port, container_end) =
        port_range(container).ok_or_else(|| bad("bad container port"))?;
    let range = container_end - container_port + 1;
    let host_port = if host.is_empty() {
        0
    } else {
        let (start, end) = port_range(host).ok_or_else(|| bad("bad host port"))?;
        if end - start + 1 != range {
            return Err(bad("the host and container ranges differ in length"));
        }
        start
    };
    if host_port == 0 && range > 1 {
        return Err(bad(
            "a range of container ports needs a range of host ports",
        ));
    }
    Ok(PortMapping {
        container_port,
        host_ip: if host_ip == "0.0.0.0" {
            String::new()
        } else {
            host_ip.to_string()
        },
        host_port,
        protocol,
        range,
    })
}

fn port_range(text: &str) -> Option<(u16, u16)> {
    let (start, end) = match text.split_once('-') {
        Some((start, end)) => (start.parse().ok()?, end.parse().ok()?),
        None => {
            let port = text.parse().ok()?;
            (port, port)
        }
    };
    (start > 0 && end >= start).then_some((start, end))
}

/// Host ports held for a running container; released when dropped.
#[derive(Debug, Default)]
pub struct Reservation {
    pub(super) held: Vec<HeldPort>,
}

/// One host port of a reservation, and the container's port behind it.
#[derive(Debug)]
pub(super) struct HeldPort {
    pub(super) socket: HeldSocket,
    pub(super) container_port: u16,
}

#[derive(Debug)]
pub(super) enum HeldSocket {
    /// Bound (and listening, rootless, where lade's forwarder accepts on it).
    Tcp(std::os::fd::OwnedFd),
    Udp(UdpSocket),
}

/// Binds every host port of `mappings` (choosing one where it is 0, written back).
/// Rootless, TCP ports listen at once (lade's forwarder accepts on them), with
/// `SO_REUSEADDR` as any server's: connections it closed last do not keep the port from
/// the container's next start.
pub fn reserve(mappings: &mut [PortMapping]) -> Result<Reservation, NetworkError> {
    reserve_for(mappings, super::is_rootless())
}

/// [`reserve`], with TCP ports `listening` or only bound.
pub(super) fn reserve_for(
    mappings: &mut [PortMapping],
    listening: bool,
) -> Result<Reservation, NetworkError> {
    let mut reservation = Reservation::default();
    for mapping in mappings.iter_mut() {
        let ip: Ipv4Addr = if mapping.host_ip.is_empty() {
            Ipv4Addr::UNSPECIFIED
        } else {
            mapping.host_ip.parse().unwrap_or(Ipv4Addr::UNSPECIFIED)
        };
        for offset in 0..mapping.range {
            let port = if mapping.host_port == 0 {
                0
            } else {
                mapping.host_port + offset
            };
            // Binding says why it failed: the port taken, or an address this host
            // does not have (EADDRNOTAVAIL), which is no matter of the port at all.
            let in_use = |source: std::io::Error| {
                let address = format!("{ip}:{port}/{}", mapping.protocol);
                match source.raw_os_error() {
                    Some(libc::EADDRINUSE) => NetworkError::PortInUse { address, source },
                    Some(libc::EADDRNOTAVAIL) => NetworkError::NoSuchHostAddress { address, ip },
                    _ => NetworkError::CannotPublish { address, source },
                }
            };
            let address = SocketAddrV4::new(ip, port);
            let (socket, bound) = match mapping.protocol.as_str() {
                "udp" => {
                    let socket = UdpSocket::bind(address).map_err(in_use)?;
                    let bound = socket.local_addr().map_err(in_use)?.port();
                    (HeldSocket::Udp(socket), bound)
                }
                _ => {
                    // Bound, not listening (root): the port is ours and nothing answers
                    // on it but the container behind the driver's forwarding.
                    use nix::sys::socket::{
                        bind, getsockname, listen, setsockopt, socket, sockopt, AddressFamily,
                        Backlog, SockFlag, SockType, SockaddrIn,
                    };
                    use std::os::fd::AsRawFd;
                    let socket = socket(
                        AddressFamily::Inet,
                        SockType::Stream,
                        SockFlag::SOCK_CLOEXEC,
                        None,
                    )
                    .map_err(|e| in_use(e.into()))?;
                    if listening {
                        setsockopt(&socket, sockopt::ReuseAddr, &true)
                            .map_err(|e| in_use(e.into()))?;
                    }
                    bind(socket.as_raw_fd(), &SockaddrIn::from(address))
                        .map_err(|e| in_use(e.into()))?;
                    if listening {
                        listen(&socket, Backlog::new(128).unwrap_or(Backlog::MAXCONN))
                            .map_err(|e| in_use(e.into()))?;
                    }
                    let bound =
                        getsockname::<SockaddrIn>(socket.as_raw_fd()).map_or(0, |a| a.port());
                    (HeldSocket::Tcp(socket), bound)
                }
            };
            reservation.held.push(HeldPort {
                socket,
                container_port: mapping.container_port + offset,
            });
            if mapping.host_port == 0 {
                mapping.host_port = bound;
            }
        }
    }
    Ok(reservation)
}

/// Whether a TCP port of this host is free now (for `-P`'s choices, which are then
/// reserved like any other).
pub fn tcp_port_free(port: u16) -> bool {
    TcpListener::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_specs_as_docker_writes_them() {
        let p = parse_publish("18080:80").unwrap();
        assert_eq!(
            (p.host_port, p.container_port, p.range, p.protocol.as_str()),
            (18080, 80, 1, "tcp")
        );
        let p = parse_publish("127.0.0.1:9000-9002:7000-7002/udp").unwrap();
        assert_eq!(
            (p.host_ip.as_str(), p.host_port, p.container_port, p.range),
            ("127.0.0.1", 9000, 7000, 3)
        );
        assert_eq!(
            p.docker_lines()[2],
            ("7002/udp".to_string(), "127.0.0.1:9002".to_string())
        );
        let p = parse_publish("80").unwrap();
        assert_eq!((p.host_port, p.container_port), (0, 80));
        let p = parse_publish("0.0.0.0::53/udp").unwrap();
        assert_eq!((p.host_ip.as_str(), p.host_port), ("", 0));
        for bad in ["x:80", "80/icmp", "1-3:80", "80-81", "1:2:3:4", "0:80"] {
            assert!(parse_publish(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_held_port_is_refused_with_its_number() {
        let mut first = vec![parse_publish("127.0.0.1::8080").unwrap()];
        let _held = reserve(&mut first).unwrap();
        let port = first[0].host_port;
        assert_ne!(port, 0);
        let mut second = vec![parse_publish(&format!("127.0.0.1:{port}:80")).unwrap()];
        let err = reserve(&mut second).unwrap_err().to_string();
        assert!(err.contains(&format!("127.0.0.1:{port}/tcp")), "{err}");
    }

    #[test]
    fn an_address_the_host_lacks_is_named_as_such() {
        // TEST-NET-1 (RFC 5737): documentation only, on no host.
        for spec in ["192.0.2.1:18080:80", "192.0.2.1:18080:80/udp"] {
            let mut mappings = vec![parse_publish(spec).unwrap()];
            let err = reserve(&mut mappings).unwrap_err().to_string();
            assert!(
                err.contains("the host has no address 192.0.2.1") && !err.contains("in use"),
                "{err}"
            );
        }
    }
}
