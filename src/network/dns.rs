//! Whether aardvark-dns answers a container's names yet. The driver tells a running
//! aardvark-dns of a new container with SIGHUP, which returns at once; aardvark-dns then
//! stops its servers, reads its files again and binds anew, and a container that asks
//! in between (its first command often does) is refused. Setup therefore waits until
//! aardvark-dns answers the new container's own name, asked from inside the container's
//! network namespace (aardvark-dns answers by the asker's address), which also tells an
//! aardvark-dns that runs but could not bind (port 53 taken) from one that serves.

use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sched::{setns, CloneFlags};

/// How long one question waits for its answer before it is asked again.
const RETRY: Duration = Duration::from_millis(100);

/// Why a DNS server did not answer a name.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{name:?} is no DNS name")]
    NotAName { name: String },
    #[error("entering {}: {source}", netns.display())]
    Namespace { netns: PathBuf, source: io::Error },
    #[error("asking {server}:53: {source}")]
    Ask { server: Ipv4Addr, source: io::Error },
    #[error("the DNS probe's thread panicked")]
    Panicked,
}

/// Waits, up to `timeout`, until the DNS server at `server`:53 answers `name` with an
/// address to a question asked from the network namespace at `netns`. Says why not.
pub fn wait_until_answered(
    netns: &Path,
    server: Ipv4Addr,
    name: &str,
    timeout: Duration,
) -> Result<(), ProbeError> {
    let question = query(0x1ade, name).ok_or_else(|| ProbeError::NotAName {
        name: name.to_string(),
    })?;
    let netns: PathBuf = netns.to_path_buf();
    // Namespaces belong to threads: a helper thread asks from the container's.
    std::thread::spawn(move || -> Result<(), ProbeError> {
        let entered = File::open(&netns).and_then(|namespace| {
            setns(&namespace, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)
        });
        if let Err(source) = entered {
            return Err(ProbeError::Namespace { netns, source });
        }
        ask(server, &question, timeout).map_err(|source| ProbeError::Ask { server, source })
    })
    .join()
    .map_err(|_| ProbeError::Panicked)?
}

fn ask(server: Ipv4Addr, question: &[u8], timeout: Duration) -> io::Result<()> {
    let socket = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))?;
    // Connected, so that a refusal (nothing bound yet) is seen rather than waited out.
    socket.connect(SocketAddrV4::new(server, 53))?;
    let deadline = Instant::now() + timeout;
    let mut last = String::from("no answer");
    let mut buffer = [0u8; 512];
    while Instant::now() < deadline {
        socket.send(question)?;
        let round = (Instant::now() + RETRY).min(deadline);
        loop {
            let left = round.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            socket.set_read_timeout(Some(left))?;
            match socket.recv(&mut buffer) {
                Ok(n) => match answer(&buffer[..n], question) {
                    Answer::Address => return Ok(()),
                    Answer::Other(what) => last = what,
                    Answer::NotOurs => {}
                },
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    last = "refused (nothing bound to the port)".into();
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        format!("no address within {} s ({last})", timeout.as_secs()),
    ))
}

/// A recursive question for `name`'s IPv4 address; `None` for a name DNS cannot carry.
fn query(id: u16, name: &str) -> Option<Vec<u8>> {
    let mut packet = Vec::with_capacity(18 + name.len());
    packet.extend_from_slice(&id.to_be_bytes());
    packet.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return None;
        }
        packet.push(label.len() as u8);
        packet.extend_from_slice(label.as_bytes());
    }
    packet.push(0);
    packet.extend_from_slice(&[0, 1, 0, 1]);
    Some(packet)
}

#[derive(Debug, PartialEq, Eq)]
enum Answer {
    /// A reply to the question with at least one record.
    Address,
    /// A reply to the question without one: what it said.
    Other(String),
    /// Not a reply to the question (an earlier one's, or noise).
    NotOurs,
}

fn answer(reply: &[u8], question: &[u8]) -> Answer {
    if reply.len() < 12 || reply[..2] != question[..2] || reply[2] & 0x80 == 0 {
        return Answer::NotOurs;
    }
    let code = reply[3] & 0x0f;
    let records = u16::from_be_bytes([reply[6], reply[7]]);
    match (code, records) {
        (0, 0) => Answer::Other("an answer without an address".into()),
        (0, _) => Answer::Address,
        (3, _) => Answer::Other("the name is unknown".into()),
        (code, _) => Answer::Other(format!("DNS error code {code}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_question_is_encoded_as_dns_carries_it() {
        let packet = query(0x1234, "abc.de").unwrap();
        assert_eq!(
            packet,
            [
                0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 3, b'a', b'b', b'c', 2, b'd', b'e',
                0, 0, 1, 0, 1
            ]
        );
        assert_eq!(query(1, "a..b"), None);
        assert_eq!(query(1, &"x".repeat(64)), None);
    }

    #[test]
    fn only_a_reply_to_the_question_with_a_record_counts() {
        let question = query(7, "web").unwrap();
        let mut reply = question.clone();
        reply[2] |= 0x80;
        assert_eq!(
            answer(&reply, &question),
            Answer::Other("an answer without an address".into())
        );
        reply[7] = 1;
        assert_eq!(answer(&reply, &question), Answer::Address);
        reply[3] |= 3;
        assert_eq!(
            answer(&reply, &question),
            Answer::Other("the name is unknown".into())
        );
        assert_eq!(answer(&question, &question), Answer::NotOurs);
        reply[1] ^= 1;
        assert_eq!(answer(&reply, &question), Answer::NotOurs);
        assert_eq!(answer(&[0; 4], &question), Answer::NotOurs);
    }
}
