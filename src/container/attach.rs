//! Attaching to a detached container. The monitor listens on a unix socket beside the
//! container's log: every client gets the container's output as it comes, and what a
//! client sends goes to the container's standard input (kept open for `-i`) or sets the
//! window size of its terminal (`-t`). `lade attach`, `start -a` and an interactive
//! `run -it` are clients; the detach keys (ctrl-p ctrl-q) leave the container running.
//! An `exec -it` process is served alike by its holder, on a socket of its own.
//!
//! Frames both ways are Docker's multiplexed-stream header (kind, three zero bytes, a
//! big-endian u32 length) and the payload. Kinds: 0 input, 1 stdout, 2 stderr, 3 exit
//! (an i32 code, sent before the monitor lets its clients go), 4 window size (rows and
//! columns, u16 each).
//!
//! The socket's path is reached through `/proc/self/fd/<dir>/attach`, so that a store
//! deep in the file system does not run past the 108 bytes a socket path may have.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::{running_init, Container, ContainerError, Result};
use crate::exec::Stream;
use crate::store::Store;

const INPUT: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const EXIT: u8 = 3;
const WINDOW: u8 = 4;

/// The socket's name in the container's directory.
const SOCKET: &str = "attach";

/// How long the monitor of `start -a` waits for its client before it starts anyway.
const FIRST_CLIENT_WAIT: Duration = Duration::from_secs(10);

fn container_dir(store: &Store, id: &str) -> PathBuf {
    store.root().join("containers").join(id)
}

/// A short path to socket `name` in `dir`, good while `_dir` is open.
fn short_path(dir: &Path, name: &str) -> io::Result<(OwnedFd, PathBuf)> {
    let fd: OwnedFd = File::open(dir)?.into();
    let path = PathBuf::from(format!("/proc/self/fd/{}/{name}", fd.as_raw_fd()));
    Ok((fd, path))
}

fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(8 + payload.len());
    bytes.extend_from_slice(&[kind, 0, 0, 0]);
    bytes.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// Reads one frame; `None` at the end of the stream.
fn read_frame(reader: &mut impl Read) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut header = [0u8; 8];
    match reader.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let length = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    // Input and window frames are small; a huge length is a confused peer.
    if length > 1 << 20 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "attach frame too large",
        ));
    }
    let mut payload = vec![0u8; length];
    reader.read_exact(&mut payload)?;
    Ok(Some((header[0], payload)))
}

#[derive(Default)]
struct Clients {
    streams: Vec<UnixStream>,
    /// How many have connected since the monitor started listening.
    connected: usize,
    /// How many of those have sent their first frame or gone: a terminal client's
    /// first frame is its window size, which the process must find set when it starts.
    greeted: usize,
}

/// The container's terminal while it has one, and the last window size a client sent:
/// a size that comes before the terminal is made is applied when it is.
#[derive(Default)]
struct Terminal {
    master: Option<File>,
    window: Option<(u16, u16)>,
}

impl Terminal {
    fn apply(&self) {
        if let (Some(master), Some((rows, columns))) = (&self.master, self.window) {
            crate::exec::set_terminal_size(master.as_fd(), rows, columns);
        }
    }
}

/// The monitor's end: accepts clients, sends them output, takes their input.
pub(crate) struct AttachServer {
    clients: Arc<(Mutex<Clients>, Condvar)>,
    /// The pty's main side while the container has a terminal (for window sizes).
    terminal: Arc<Mutex<Terminal>>,
    path: PathBuf,
    _dir: OwnedFd,
}

impl AttachServer {
    /// Listens beside the container's log. `stdin`: the write end of the container's
    /// standard input, when it is kept open (`-i`).
    pub(crate) fn listen(store: &Store, id: &str, stdin: Option<File>) -> Result<AttachServer> {
        Self::listen_at(store, id, SOCKET, stdin)
    }

    /// Listens on socket `name` in the container's directory (an `exec -it` process's).
    pub(crate) fn listen_at(
        store: &Store,
        id: &str,
        name: &str,
        stdin: Option<File>,
    ) -> Result<AttachServer> {
        let dir = container_dir(store, id);
        let failed = |source| ContainerError::Io {
            path: dir.join(name),
            source,
        };
        let (dir_fd, path) = short_path(&dir, name).map_err(failed)?;
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).map_err(failed)?;
        let clients: Arc<(Mutex<Clients>, Condvar)> = Arc::default();
        let terminal: Arc<Mutex<Terminal>> = Arc::default();
        let stdin = stdin.map(|f| Arc::new(Mutex::new(f)));
        {
            let clients = clients.clone();
            let terminal = terminal.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming().map_while(|s| s.ok()) {
                    let Ok(output) = stream.try_clone() else {
                        continue;
                    };
                    {
                        let (list, arrived) = &*clients;
                        let mut list = list.lock().unwrap_or_else(|e| e.into_inner());
                        list.streams.push(output);
                        list.connected += 1;
                        arrived.notify_all();
                    }
                    let stdin = stdin.clone();
                    let terminal = terminal.clone();
                    let clients = clients.clone();
                    std::thread::spawn(move || serve_input(stream, stdin, terminal, &clients));
                }
            });
        }
        Ok(AttachServer {
            clients,
            terminal,
            path,
            _dir: dir_fd,
        })
    }

    /// Waits (bounded) for a first client: `start -a` connects before its container
    /// starts, so that it misses none of its output. With a `terminal`, until that
    /// client's window size has come too, so that the process starts with it set.
    pub(crate) fn wait_for_client(&self, terminal: bool) {
        let (list, arrived) = &*self.clients;
        let list = list.lock().unwrap_or_else(|e| e.into_inner());
        let _ = arrived.wait_timeout_while(list, FIRST_CLIENT_WAIT, |l| {
            l.connected == 0 || (terminal && l.greeted == 0)
        });
    }

    /// The container's terminal, for the window sizes clients send.
    pub(crate) fn set_terminal(&self, master: File) {
        let mut terminal = self.terminal.lock().unwrap_or_else(|e| e.into_inner());
        terminal.master = Some(master);
        terminal.apply();
    }

    /// Sends output to every client; one that is gone is dropped.
    pub(crate) fn send(&self, stream: Stream, bytes: &[u8]) {
        let kind = match stream {
            Stream::Stdout => STDOUT,
            Stream::Stderr => STDERR,
        };
        self.send_frame(&frame(kind, bytes));
    }

    fn send_frame(&self, bytes: &[u8]) {
        let mut list = self.clients.0.lock().unwrap_or_else(|e| e.into_inner());
        list.streams
            .retain_mut(|client| client.write_all(bytes).is_ok());
    }

    /// Tells every client the container's exit code and lets them go.
    pub(crate) fn exited(&self, code: i32) {
        self.send_frame(&frame(EXIT, &code.to_be_bytes()));
        let mut list = self.clients.0.lock().unwrap_or_else(|e| e.into_inner());
        for client in list.streams.drain(..) {
            let _ = client.shutdown(std::net::Shutdown::Both);
        }
        self.terminal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .master = None;
    }
}

impl Drop for AttachServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One client's input: to the container's stdin, or its terminal's window size.
fn serve_input(
    mut stream: UnixStream,
    stdin: Option<Arc<Mutex<File>>>,
    terminal: Arc<Mutex<Terminal>>,
    clients: &(Mutex<Clients>, Condvar),
) {
    let mut greeted = false;
    let greet = |greeted: &mut bool| {
        if !std::mem::replace(greeted, true) {
            let (list, arrived) = clients;
            list.lock().unwrap_or_else(|e| e.into_inner()).greeted += 1;
            arrived.notify_all();
        }
    };
    while let Ok(Some((kind, payload))) = read_frame(&mut stream) {
        match kind {
            INPUT => {
                if let Some(stdin) = &stdin {
                    let mut stdin = stdin.lock().unwrap_or_else(|e| e.into_inner());
                    if stdin.write_all(&payload).is_err() {
                        return;
                    }
                }
            }
            WINDOW if payload.len() == 4 => {
                let rows = u16::from_be_bytes([payload[0], payload[1]]);
                let columns = u16::from_be_bytes([payload[2], payload[3]]);
                // Zero: the client's own output is no terminal; it has no size to give.
                if rows != 0 || columns != 0 {
                    let mut terminal = terminal.lock().unwrap_or_else(|e| e.into_inner());
                    terminal.window = Some((rows, columns));
                    terminal.apply();
                }
            }
            _ => {}
        }
        // After the frame has taken effect: the monitor may start the process now.
        greet(&mut greeted);
    }
    greet(&mut greeted);
}

/// Connects to a running container's monitor.
pub fn connect(store: &Store, id: &str) -> Result<UnixStream> {
    connect_to(store, id, SOCKET)
}

/// Connects to socket `name` in the container's directory.
pub(crate) fn connect_to(store: &Store, id: &str, name: &str) -> Result<UnixStream> {
    let dir = container_dir(store, id);
    let failed = |source| ContainerError::Io {
        path: dir.join(name),
        source,
    };
    let (_dir_fd, path) = short_path(&dir, name).map_err(failed)?;
    UnixStream::connect(&path).map_err(failed)
}

/// What `lade attach` asks for.
#[derive(Debug, Clone)]
pub struct AttachOptions {
    /// Send our standard input (when the container keeps its own open).
    pub stdin: bool,
    /// The sequence that detaches, as bytes (Docker's default: ctrl-p ctrl-q).
    pub detach_keys: Vec<u8>,
    /// Send the signals this process receives to the container (without a terminal).
    pub sig_proxy: bool,
}

/// How an attach ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attached {
    /// The container exited with this code.
    Exited(i32),
    /// The detach keys were typed: the container runs on.
    Detached,
}

/// Docker's `--detach-keys` (moby's `term.ToBytes`): `ctrl-<letter or @[\]^_>`,
/// `DEL` and single characters, comma separated.
pub fn parse_detach_keys(text: &str) -> Option<Vec<u8>> {
    text.split(',')
        .map(|key| match key.strip_prefix("ctrl-") {
            Some(rest) if rest.len() == 1 => {
                let c = rest.as_bytes()[0].to_ascii_lowercase();
                match c {
                    b'a'..=b'z' => Some(c - b'a' + 1),
                    b'@' => Some(0),
                    b'[' => Some(27),
                    b'\\' => Some(28),
                    b']' => Some(29),
                    b'^' => Some(30),
                    b'_' => Some(31),
                    _ => None,
                }
            }
            None if key.len() == 1 => Some(key.as_bytes()[0]),
            None if key == "DEL" => Some(127),
            _ => None,
        })
        .collect()
}

/// `lade attach`: the container's output to ours until it exits or the detach keys
/// are typed; our input to it when it keeps its standard input open.
pub fn attach(store: &Store, reference: &str, options: &AttachOptions) -> Result<Attached> {
    let record = store.container(reference)?;
    if running_init(&record).is_none() {
        return Err(ContainerError::NotRunningToAttach(record.name.clone()));
    }
    let stream = connect(store, &record.id)?;
    attach_stream(store, &record.id, stream, options)
}

/// Serves an open connection to a monitor (see [`attach`]).
pub(crate) fn attach_stream(
    store: &Store,
    id: &str,
    stream: UnixStream,
    options: &AttachOptions,
) -> Result<Attached> {
    let Container {
        record,
        spec,
        settings,
        ..
    } = Container::load(store, id)?;
    let client = Client {
        terminal: spec.process.terminal,
        send_input: options.stdin && settings.interactive,
        detach_keys: &options.detach_keys,
        proxy_to: options.sig_proxy.then_some(&record),
        socket: container_dir(store, id).join(SOCKET),
    };
    let exit = serve_client(stream, &client)?;
    Ok(exit.unwrap_or_else(|| {
        // The monitor went without a word (killed): what the store knows.
        Attached::Exited(
            store
                .container(id)
                .ok()
                .and_then(|r| r.exit_code)
                .map_or(125, |c| c as i32),
        )
    }))
}

/// What one attached client does.
pub(crate) struct Client<'a> {
    /// The process has a terminal: ours goes raw, and its size is sent.
    pub terminal: bool,
    /// Our standard input goes to the process.
    pub send_input: bool,
    pub detach_keys: &'a [u8],
    /// Without a terminal, the container whose init gets the signals we receive.
    pub proxy_to: Option<&'a crate::store::ContainerRecord>,
    /// The socket's path, for errors.
    pub socket: PathBuf,
}

/// Our end of an attach: the output to ours, our input (up to the detach keys) to the
/// process. `None` when the server went without telling an exit code.
pub(crate) fn serve_client(stream: UnixStream, client: &Client<'_>) -> Result<Option<Attached>> {
    let terminal = client.terminal;
    let send_input = client.send_input;
    let detached = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let failed = |source| ContainerError::Io {
        path: client.socket.clone(),
        source,
    };
    let mut writer = stream.try_clone().map_err(failed)?;
    if terminal {
        // `lade attach` is heard first here; a client attached before the start sent
        // it already, and the same size again changes nothing.
        send_window(&mut writer);
        // Later sizes follow ours, as the terminal is resized.
        if let (Ok(mut resized), Ok(mut signals)) = (
            stream.try_clone(),
            signal_hook::iterator::Signals::new([signal_hook::consts::SIGWINCH]),
        ) {
            std::thread::spawn(move || {
                for _ in signals.forever() {
                    if resized.write_all(&window_frame()).is_err() {
                        break;
                    }
                }
            });
        }
    }
    let _raw = (terminal && send_input && std::io::IsTerminal::is_terminal(&io::stdin()))
        .then(crate::exec::RawMode::enter);
    if let (Some(record), false) = (client.proxy_to, terminal) {
        proxy_signals(record);
    }
    if send_input {
        let detached = detached.clone();
        let keys = client.detach_keys.to_vec();
        let stream = stream.try_clone().map_err(failed)?;
        std::thread::spawn(move || {
            let mut stdin = io::stdin();
            let mut buffer = [0u8; 4096];
            let mut matched = 0usize;
            while let Ok(n) = stdin.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                let mut forward = Vec::with_capacity(n);
                for &byte in &buffer[..n] {
                    if !keys.is_empty() && byte == keys[matched] {
                        matched += 1;
                        if matched == keys.len() {
                            detached.store(true, std::sync::atomic::Ordering::SeqCst);
                            let _ = stream.shutdown(std::net::Shutdown::Both);
                            return;
                        }
                        continue;
                    }
                    // A partial sequence that did not complete is the container's input.
                    forward.extend_from_slice(&keys[..matched]);
                    matched = 0;
                    forward.push(byte);
                }
                if !forward.is_empty() && writer.write_all(&frame(INPUT, &forward)).is_err() {
                    break;
                }
            }
        });
    }
    let mut reader = io::BufReader::new(stream);
    let mut exit = None;
    while let Ok(Some(frame)) = read_frame(&mut reader) {
        match frame {
            (STDOUT, bytes) => {
                let mut out = io::stdout().lock();
                let _ = out.write_all(&bytes);
                let _ = out.flush();
            }
            (STDERR, bytes) => {
                let mut err = io::stderr().lock();
                let _ = err.write_all(&bytes);
                let _ = err.flush();
            }
            (EXIT, bytes) if bytes.len() == 4 => {
                exit = Some(i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]));
            }
            _ => {}
        }
    }
    if detached.load(std::sync::atomic::Ordering::SeqCst) {
        return Ok(Some(Attached::Detached));
    }
    Ok(exit.map(Attached::Exited))
}

/// Sends our terminal's size. A monitor that waits for its first client before it starts
/// a process with a terminal waits for this frame too.
pub(crate) fn send_window(stream: &mut UnixStream) {
    let _ = stream.write_all(&window_frame());
}

/// A window frame with our terminal's size (zero rows and columns without one).
fn window_frame() -> Vec<u8> {
    let (rows, columns) = crate::exec::terminal_size(io::stdout().as_fd()).unwrap_or((0, 0));
    let mut size = rows.to_be_bytes().to_vec();
    size.extend_from_slice(&columns.to_be_bytes());
    frame(WINDOW, &size)
}

/// Docker's `--sig-proxy`: the signals this process receives go to the container's
/// init instead (a thread waits for them while the attach lasts).
fn proxy_signals(record: &crate::store::ContainerRecord) {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
    let Some(init) = running_init(record) else {
        return;
    };
    let Ok(mut signals) =
        signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2])
    else {
        return;
    };
    std::thread::spawn(move || {
        for signal in signals.forever() {
            if let Some(signal) = crate::exec::SignalNumber::new(signal) {
                init.signal(signal);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_as_docker_writes_them() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q"), Some(vec![16, 17]));
        assert_eq!(parse_detach_keys("ctrl-@,a"), Some(vec![0, b'a']));
        assert_eq!(parse_detach_keys("ctrl-[,DEL"), Some(vec![27, 127]));
        assert_eq!(parse_detach_keys("ctrl-1"), None);
        assert_eq!(parse_detach_keys("ab"), None);
    }

    #[test]
    fn frames_read_back_as_written() {
        let mut bytes = frame(STDERR, b"oops\n");
        bytes.extend(frame(EXIT, &7i32.to_be_bytes()));
        let mut reader = &bytes[..];
        assert_eq!(
            read_frame(&mut reader).unwrap(),
            Some((STDERR, b"oops\n".to_vec()))
        );
        assert_eq!(
            read_frame(&mut reader).unwrap(),
            Some((EXIT, 7i32.to_be_bytes().to_vec()))
        );
        assert_eq!(read_frame(&mut reader).unwrap(), None);
    }
}
