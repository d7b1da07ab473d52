//! Published ports of rootless containers on user networks, as podman's `rootlessport`
//! carries them: those containers live behind rootless lade's own network namespace
//! (`rootless_netns`), which the host's connections cannot reach, so the host ports
//! reserved for the container (listening, in the host's namespace, as the user) are
//! served by a forwarder in the process that runs the container (its monitor, or a
//! foreground `run`). One thread waits on every host port; it joined the rootless
//! namespace first, so that the sockets it and its threads make to reach the container
//! are that namespace's (a socket keeps the namespace it was made in, and accepted or
//! bound host sockets stay the host's).
//!
//! TCP: each accepted connection gets a connection to the container's address and
//! port, and the bytes are copied both ways until either side closes. UDP: each client
//! address gets a socket of its own towards the container (so that answers find their
//! way back), forgotten after [`UDP_IDLE`] without traffic. Everything stops, and the
//! host ports are released, when the [`Forwarder`] is dropped; a monitor killed takes
//! its sockets with it.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, ErrorKind};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::{setns, CloneFlags};

use super::ports::{HeldSocket, Reservation};

/// How long a UDP client's way to the container is kept without a datagram either way.
pub const UDP_IDLE: Duration = Duration::from_secs(60);

/// How long a connection to the container may take to be accepted.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// At most this many TCP connections are carried at once (two threads each): a client
/// on the network opening connections without end must not use up the user's tasks.
/// Beyond it, a new connection is closed at once.
const MAX_CONNECTIONS: usize = 1024;

/// At most this many UDP clients have a relay (a socket and a thread) at once; a
/// datagram from one more is dropped, as a full network would.
const MAX_RELAYS: usize = 256;

/// Datagrams taken from one host port before the other ports and the stop are looked
/// at again, so that a flood on one port starves nothing else.
const DATAGRAMS_PER_TURN: usize = 64;

/// The stack of a thread that copies bytes (its buffer is on the heap).
const COPY_THREAD_STACK: usize = 64 * 1024;

/// A host port and where it leads.
enum Port {
    Tcp(TcpListener, SocketAddrV4),
    Udp(Arc<UdpSocket>, SocketAddrV4),
}

impl Port {
    fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match self {
            Port::Tcp(listener, _) => listener.as_fd(),
            Port::Udp(socket, _) => socket.as_fd(),
        }
    }
}

/// A running forwarder: it stops, and releases its host ports, when dropped.
#[derive(Debug)]
pub struct Forwarder {
    /// Closing it wakes the forwarder's thread to stop.
    wake: Option<OwnedFd>,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        drop(self.wake.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What the forwarder's threads share.
struct Shared {
    stopping: Arc<AtomicBool>,
    /// The host's ends of the open TCP connections, shut down when the forwarder stops.
    connections: Mutex<HashMap<u64, TcpStream>>,
    next_connection: AtomicU64,
    /// UDP relays by host port and client address.
    relays: Mutex<HashMap<(usize, SocketAddr), Arc<Relay>>>,
    relay_threads: Mutex<Vec<JoinHandle<()>>>,
    /// Readable (hung up) once [`stop`] drops its write end: it wakes the relays.
    halt: OwnedFd,
    halt_signal: Mutex<Option<OwnedFd>>,
    started: Instant,
    /// A descriptor kept in reserve: out of descriptors, it is let go for the moment it
    /// takes to accept a waiting connection and close it, so that the port does not
    /// stay readable (and the loop spin) while nothing can be accepted.
    spare: Mutex<Option<File>>,
}

/// One UDP client's way to the container.
struct Relay {
    /// Made in the rootless namespace, connected to the container's port.
    upstream: UdpSocket,
    /// Milliseconds since the forwarder started, at the last datagram either way.
    last_use: AtomicU64,
}

impl Shared {
    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

impl Forwarder {
    /// Starts forwarding the host ports of `reservation` to the same ports of the
    /// container at `container_ip`, reached from inside `namespace` (rootless lade's).
    pub fn start(
        reservation: Reservation,
        container_ip: Ipv4Addr,
        namespace: File,
    ) -> io::Result<Forwarder> {
        let mut ports = Vec::new();
        for held in reservation.held {
            let target = SocketAddrV4::new(container_ip, held.container_port);
            match held.socket {
                HeldSocket::Tcp(fd) => {
                    let listener = TcpListener::from(fd);
                    listener.set_nonblocking(true)?;
                    ports.push(Port::Tcp(listener, target));
                }
                HeldSocket::Udp(socket) => {
                    socket.set_nonblocking(true)?;
                    ports.push(Port::Udp(Arc::new(socket), target));
                }
            }
        }
        // Close-on-exec: a process the monitor starts meanwhile (fuse-overlayfs, a
        // health check) must not hold the write ends, or the stop would wait for it.
        let (wake_read, wake_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let (halt, halt_signal) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let stopping = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            stopping: stopping.clone(),
            connections: Mutex::new(HashMap::new()),
            next_connection: AtomicU64::new(0),
            relays: Mutex::new(HashMap::new()),
            relay_threads: Mutex::new(Vec::new()),
            halt,
            halt_signal: Mutex::new(Some(halt_signal)),
            started: Instant::now(),
            spare: Mutex::new(File::open("/dev/null").ok()),
        });
        let (joined_tx, joined_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("port-forwarder".into())
            .spawn(move || {
                // Sockets this thread and its threads make are the namespace's.
                if let Err(e) = setns(&namespace, CloneFlags::CLONE_NEWNET) {
                    let _ = joined_tx.send(Err(io::Error::from(e)));
                    return;
                }
                drop(namespace);
                let _ = joined_tx.send(Ok(()));
                serve(&ports, &wake_read, &shared);
                stop(&shared);
            })?;
        let forwarder = Forwarder {
            wake: Some(wake_write),
            stopping,
            thread: Some(thread),
        };
        match joined_rx.recv() {
            Ok(Ok(())) => Ok(forwarder),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::Error::other("the forwarder's thread ended at once")),
        }
    }
}

/// Waits on every host port until `wake` is closed.
fn serve(ports: &[Port], wake: &OwnedFd, shared: &Arc<Shared>) {
    loop {
        let mut fds: Vec<PollFd> = ports
            .iter()
            .map(|port| PollFd::new(port.fd(), PollFlags::POLLIN))
            .collect();
        fds.push(PollFd::new(wake.as_fd(), PollFlags::POLLIN));
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        }
        let ready: Vec<usize> = fds
            .iter()
            .enumerate()
            .filter(|(_, fd)| fd.revents().is_some_and(|r| !r.is_empty()))
            .map(|(index, _)| index)
            .collect();
        drop(fds);
        if ready.contains(&ports.len()) || shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        for index in ready {
            // A connection or datagram that cannot be served is dropped (the client
            // sees it closed, or lost), as a full server's would be; the port stays.
            let _ = match &ports[index] {
                Port::Tcp(listener, target) => accept(listener, *target, shared),
                Port::Udp(socket, target) => receive(index, socket, *target, shared),
            };
        }
    }
}

/// Takes the connection waiting on `listener` and closes it at once, when none can be
/// accepted for want of descriptors: the reserve is let go for it, then taken again.
fn refuse_waiting(listener: &TcpListener, shared: &Shared) {
    let mut spare = shared.spare.lock().unwrap_or_else(|e| e.into_inner());
    drop(spare.take());
    drop(listener.accept());
    *spare = File::open("/dev/null").ok();
}

/// Whether an error of a non-blocking socket only means "nothing now".
fn nothing_now(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::WouldBlock | ErrorKind::Interrupted | ErrorKind::ConnectionAborted
    )
}

fn accept(listener: &TcpListener, target: SocketAddrV4, shared: &Arc<Shared>) -> io::Result<()> {
    let client = match listener.accept() {
        Ok((client, _)) => client,
        Err(e) if nothing_now(&e) => return Ok(()),
        Err(e) => {
            if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) {
                refuse_waiting(listener, shared);
            }
            return Err(e);
        }
    };
    let id = shared.next_connection.fetch_add(1, Ordering::SeqCst);
    {
        let mut connections = shared.connections.lock().unwrap_or_else(|e| e.into_inner());
        if connections.len() >= MAX_CONNECTIONS {
            // Dropped: the client sees its connection closed.
            return Ok(());
        }
        connections.insert(id, client.try_clone()?);
    }
    client.set_nonblocking(false)?;
    let forget = move |shared: &Shared| {
        shared
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    };
    let shared_for_thread = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("port-connection".into())
        .stack_size(COPY_THREAD_STACK)
        .spawn(move || {
            let shared = shared_for_thread;
            carry(client, target);
            forget(&shared);
        });
    if spawned.is_err() {
        forget(shared);
    }
    spawned.map(drop)
}

/// Connects to the container (from the namespace this thread inherited) and copies
/// both ways until both are done.
fn carry(client: TcpStream, target: SocketAddrV4) {
    let Ok(upstream) = TcpStream::connect_timeout(&target.into(), CONNECT_TIMEOUT) else {
        // Nobody listens in the container: the client sees its connection closed.
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (Ok(client_reader), Ok(upstream_reader)) = (client.try_clone(), upstream.try_clone())
    else {
        return;
    };
    let back = std::thread::Builder::new()
        .name("port-connection".into())
        .stack_size(COPY_THREAD_STACK)
        .spawn(move || copy(upstream_reader, client));
    copy(client_reader, upstream);
    if let Ok(back) = back {
        let _ = back.join();
    }
}

/// Copies `from` to `to` until `from` ends, then passes the end on (or both ends
/// down, when a side failed).
fn copy(mut from: TcpStream, mut to: TcpStream) {
    match copy_all(&mut from, &mut to) {
        Ok(_) => {
            let _ = to.shutdown(Shutdown::Write);
        }
        Err(_) => {
            let _ = to.shutdown(Shutdown::Both);
            let _ = from.shutdown(Shutdown::Both);
        }
    }
}

/// Copies until `from` ends, through a buffer of 64 KiB (`io::copy`'s 8 KiB costs
/// many more system calls on a fast local connection).
fn copy_all(from: &mut TcpStream, to: &mut TcpStream) -> io::Result<()> {
    use std::io::{Read, Write};
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let length = match from.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(length) => length,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buffer[..length])?;
    }
}

fn receive(
    index: usize,
    socket: &Arc<UdpSocket>,
    target: SocketAddrV4,
    shared: &Arc<Shared>,
) -> io::Result<()> {
    let mut buffer = vec![0u8; 65536];
    for _ in 0..DATAGRAMS_PER_TURN {
        let (length, client) = match socket.recv_from(&mut buffer) {
            Ok(received) => received,
            Err(e) if nothing_now(&e) => return Ok(()),
            Err(e) => return Err(e),
        };
        let Some(relay) = relay_for(index, client, socket, target, shared)? else {
            continue;
        };
        relay.last_use.store(shared.now(), Ordering::SeqCst);
        // A datagram the container's side cannot take now is lost, as on any network.
        let _ = relay.upstream.send(&buffer[..length]);
    }
    // More may wait: poll says so at once.
    Ok(())
}

/// The relay of `client` on host port `index`, made (with its thread carrying the
/// container's answers back) when it has none; `None` when [`MAX_RELAYS`] are in use.
fn relay_for(
    index: usize,
    client: SocketAddr,
    socket: &Arc<UdpSocket>,
    target: SocketAddrV4,
    shared: &Arc<Shared>,
) -> io::Result<Option<Arc<Relay>>> {
    let mut relays = shared.relays.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(relay) = relays.get(&(index, client)) {
        return Ok(Some(relay.clone()));
    }
    if relays.len() >= MAX_RELAYS {
        return Ok(None);
    }
    let upstream = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))?;
    upstream.connect(target)?;
    upstream.set_nonblocking(true)?;
    let relay = Arc::new(Relay {
        upstream,
        last_use: AtomicU64::new(shared.now()),
    });
    relays.insert((index, client), relay.clone());
    drop(relays);
    let (host, kept, shared_for_thread) = (socket.clone(), relay.clone(), shared.clone());
    let spawned = std::thread::Builder::new()
        .name("port-udp-relay".into())
        .stack_size(COPY_THREAD_STACK)
        .spawn(move || answer(&kept, &host, client, &shared_for_thread));
    let thread = match spawned {
        Ok(thread) => thread,
        Err(e) => {
            let mut relays = shared.relays.lock().unwrap_or_else(|e| e.into_inner());
            relays.remove(&(index, client));
            return Err(e);
        }
    };
    let mut threads = shared
        .relay_threads
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    threads.retain(|t| !t.is_finished());
    threads.push(thread);
    Ok(Some(relay))
}

/// Carries the container's datagrams for `client` back to it until the relay has
/// been idle for [`UDP_IDLE`] or the forwarder stops; then forgets the relay. It sleeps
/// in poll until a datagram comes, the forwarder halts, or the idle time would be up.
fn answer(relay: &Arc<Relay>, host: &UdpSocket, client: SocketAddr, shared: &Arc<Shared>) {
    let mut buffer = vec![0u8; 65536];
    let idle = u64::try_from(UDP_IDLE.as_millis()).unwrap_or(u64::MAX);
    'relay: while !shared.stopping.load(Ordering::SeqCst) {
        let since = shared
            .now()
            .saturating_sub(relay.last_use.load(Ordering::SeqCst));
        if since >= idle {
            break;
        }
        let mut fds = [
            PollFd::new(relay.upstream.as_fd(), PollFlags::POLLIN),
            PollFd::new(shared.halt.as_fd(), PollFlags::POLLIN),
        ];
        // Rounded up, so that the wait ends at or after the idle time.
        let left = PollTimeout::try_from(idle - since + 1).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, left) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        }
        if fds[1].revents().is_some_and(|r| !r.is_empty()) {
            break;
        }
        loop {
            match relay.upstream.recv(&mut buffer) {
                Ok(length) => {
                    relay.last_use.store(shared.now(), Ordering::SeqCst);
                    let _ = host.send_to(&buffer[..length], client);
                }
                // The container's port was closed (an ICMP answer): later datagrams
                // may find it open.
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
                Err(e) if nothing_now(&e) => break,
                Err(_) => break 'relay,
            }
        }
    }
    let mut relays = shared.relays.lock().unwrap_or_else(|e| e.into_inner());
    relays.retain(|_, kept| !Arc::ptr_eq(kept, relay));
}

/// Ends the open connections and the relays (whose threads hold the host's UDP
/// sockets), so that every host port is free once the forwarder's thread is done.
fn stop(shared: &Arc<Shared>) {
    shared.stopping.store(true, Ordering::SeqCst);
    drop(
        shared
            .halt_signal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take(),
    );
    let connections: Vec<TcpStream> = shared
        .connections
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain()
        .map(|(_, stream)| stream)
        .collect();
    for stream in connections {
        let _ = stream.shutdown(Shutdown::Both);
    }
    let threads: Vec<JoinHandle<()>> = shared
        .relay_threads
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain(..)
        .collect();
    for thread in threads {
        let _ = thread.join();
    }
    shared
        .relays
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// Whether a socket of `table` (`/proc/net/tcp` or `udp`) in `state` (hex, as the
    /// table gives it: 0A is a TCP listener, 07 an unconnected UDP socket) has local
    /// port `port`.
    fn socket_on(table: &str, state: &str, port: u16) -> bool {
        std::fs::read_to_string(table)
            .unwrap()
            .lines()
            .skip(1)
            .map(|line| line.split_whitespace().collect::<Vec<_>>())
            .filter(|fields| fields.get(3) == Some(&state))
            .filter_map(|fields| fields.get(1)?.rsplit(':').next().map(str::to_string))
            .any(|hex| u16::from_str_radix(&hex, 16) == Ok(port))
    }

    /// A network namespace of its own with its loopback up, standing for a container
    /// behind rootless lade's namespace: a TCP and a UDP echo server on its 127.0.0.1.
    fn echoing_namespace() -> (File, u16, u16) {
        std::thread::spawn(|| {
            nix::sched::unshare(CloneFlags::CLONE_NEWNET).expect("a network namespace");
            let mut inside = super::super::netlink::Netlink::open().unwrap();
            let lo = inside.link_index("lo").unwrap().unwrap();
            inside.set_up(lo).unwrap();
            let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
            let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
            let ports = (
                tcp.local_addr().unwrap().port(),
                udp.local_addr().unwrap().port(),
            );
            std::thread::spawn(move || {
                for stream in tcp.incoming() {
                    let mut stream = stream.unwrap();
                    let mut text = Vec::new();
                    stream.read_to_end(&mut text).unwrap();
                    stream.write_all(&text).unwrap();
                }
            });
            std::thread::spawn(move || {
                let mut buffer = [0u8; 1500];
                loop {
                    let (length, from) = udp.recv_from(&mut buffer).unwrap();
                    udp.send_to(&buffer[..length], from).unwrap();
                }
            });
            let namespace = File::open("/proc/thread-self/ns/net").unwrap();
            (namespace, ports.0, ports.1)
        })
        .join()
        .unwrap()
    }

    #[test]
    fn tcp_and_udp_reach_the_namespace_and_the_ports_are_let_go() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: making a network namespace needs root");
            return;
        }
        let (namespace, tcp_port, udp_port) = echoing_namespace();
        let mut mappings = vec![
            super::super::parse_publish(&format!("127.0.0.1::{tcp_port}")).unwrap(),
            super::super::parse_publish(&format!("127.0.0.1::{udp_port}/udp")).unwrap(),
        ];
        let reservation = super::super::ports::reserve_for(&mut mappings, true).unwrap();
        let (host_tcp, host_udp) = (mappings[0].host_port, mappings[1].host_port);
        let forwarder = Forwarder::start(reservation, Ipv4Addr::LOCALHOST, namespace).unwrap();

        // Nothing answers on the host's 127.0.0.1 at the container's ports but the
        // namespace's servers, through the forwarder.
        let mut stream = TcpStream::connect(("127.0.0.1", host_tcp)).unwrap();
        stream.write_all(b"over tcp").unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert_eq!(answer, "over tcp");

        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        for text in ["first datagram", "second datagram"] {
            client
                .send_to(text.as_bytes(), ("127.0.0.1", host_udp))
                .unwrap();
            let mut buffer = [0u8; 100];
            let (length, from) = client.recv_from(&mut buffer).unwrap();
            assert_eq!(&buffer[..length], text.as_bytes());
            assert_eq!(from.port(), host_udp);
        }

        drop(forwarder);
        // Asked of the kernel's tables rather than by binding: another test's outgoing
        // connection may have the same port as its source.
        assert!(
            !socket_on("/proc/net/tcp", "0A", host_tcp),
            "tcp {host_tcp} held"
        );
        assert!(
            !socket_on("/proc/net/udp", "07", host_udp),
            "udp {host_udp} held"
        );
    }
}
