//! SSH agents for `RUN --mount=type=ssh` steps (`build --ssh`), as BuildKit forwards
//! them. Each `--ssh` id names an agent: the one at `$SSH_AUTH_SOCK` (`default`), a
//! socket given, or an `ssh-agent` of this build's own that holds the key files given
//! (Debian's openssh-client; killed when the build ends). A step reaches it through a
//! proxy socket on the step's private tmpfs, bound into the sandbox: the proxy passes on
//! only what signing needs (listing keys, signing), as BuildKit's read-only agent does,
//! so a step can neither add, remove nor lock keys of the user's agent. Nothing of an
//! agent is part of a step's key but the mount's options.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::Shutdown;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::store::{Staging, Store, StoreError};

/// The id of `--ssh default` and of an ssh mount that names none.
pub const DEFAULT_SSH_ID: &str = "default";

/// One `--ssh`: an id and what makes its agent (no paths: `$SSH_AUTH_SOCK`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshSource {
    pub id: String,
    pub paths: Vec<PathBuf>,
}

/// Why an `--ssh` agent cannot be provided.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("--ssh {id}: SSH_AUTH_SOCK is not set: start an ssh-agent, or give its socket or key files as --ssh {id}=PATH")]
    NoAgent { id: String },
    #[error("--ssh {id}: {}: {source}", path.display())]
    Path {
        id: String,
        path: PathBuf,
        source: io::Error,
    },
    #[error("--ssh {id}: {} and {} are both sockets: give one agent's socket, or key files", first.display(), second.display())]
    TwoSockets {
        id: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("--ssh {id}: give an agent's socket or key files, not both")]
    KeysAndSocket { id: String },
    #[error(
        "--ssh {id}: cannot start ssh-agent (Debian's openssh-client) for the key files: {message}"
    )]
    AgentNotStarted { id: String, message: String },
    #[error("--ssh {id}: ssh-add could not load the key {}: {message}", key.display())]
    KeyNotLoaded {
        id: String,
        key: PathBuf,
        message: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SshSource {
    /// BuildKit's `--ssh` syntax: `default`, `ID`, or `ID=PATH[,PATH...]`, each path an
    /// agent's socket or a private key file.
    pub fn parse(spec: &str) -> SshSource {
        let (id, paths) = match spec.split_once('=') {
            Some((id, paths)) => (
                id,
                paths
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(PathBuf::from)
                    .collect(),
            ),
            None => (spec, Vec::new()),
        };
        SshSource {
            id: if id.is_empty() { DEFAULT_SSH_ID } else { id }.to_string(),
            paths,
        }
    }
}

/// The agents of a build, by id: the sockets their proxies forward to, and the agents
/// the build started (stopped when this is dropped).
#[derive(Default)]
pub(crate) struct SshAgents {
    sockets: BTreeMap<String, PathBuf>,
    started: Vec<StartedAgent>,
}

impl SshAgents {
    /// Finds or starts the agent of each `--ssh`; a later one of the same id wins, as in
    /// BuildKit's client.
    pub(crate) fn start(store: &Store, sources: &[SshSource]) -> Result<SshAgents, SshError> {
        let mut by_id: BTreeMap<&str, &SshSource> = BTreeMap::new();
        for source in sources {
            by_id.insert(&source.id, source);
        }
        let mut agents = SshAgents::default();
        for (id, source) in by_id {
            let socket = match agent_of(id, &source.paths)? {
                AgentOf::Socket(socket) => socket,
                AgentOf::Keys(keys) => {
                    let agent = StartedAgent::start(store, id, &keys)?;
                    let socket = agent.socket.clone();
                    agents.started.push(agent);
                    socket
                }
            };
            agents.sockets.insert(id.to_string(), socket);
        }
        Ok(agents)
    }

    /// The socket of the agent `id`, if the build was given one.
    pub(crate) fn socket(&self, id: &str) -> Option<&Path> {
        self.sockets.get(id).map(PathBuf::as_path)
    }
}

#[derive(Debug)]
enum AgentOf {
    Socket(PathBuf),
    Keys(Vec<PathBuf>),
}

/// What `paths` give, as BuildKit reads them: one socket, or key files.
fn agent_of(id: &str, paths: &[PathBuf]) -> Result<AgentOf, SshError> {
    if paths.is_empty() {
        return match std::env::var_os("SSH_AUTH_SOCK").filter(|s| !s.is_empty()) {
            Some(socket) => Ok(AgentOf::Socket(socket.into())),
            None => Err(SshError::NoAgent { id: id.to_string() }),
        };
    }
    let mut socket: Option<&PathBuf> = None;
    let mut keys = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|source| SshError::Path {
            id: id.to_string(),
            path: path.clone(),
            source,
        })?;
        if meta.file_type().is_socket() {
            if let Some(first) = socket {
                return Err(SshError::TwoSockets {
                    id: id.to_string(),
                    first: first.clone(),
                    second: path.clone(),
                });
            }
            socket = Some(path);
        } else {
            keys.push(path.clone());
        }
    }
    match socket {
        Some(_) if !keys.is_empty() => Err(SshError::KeysAndSocket { id: id.to_string() }),
        Some(socket) => Ok(AgentOf::Socket(socket.clone())),
        None => Ok(AgentOf::Keys(keys)),
    }
}

/// An `ssh-agent` this build started, holding key files given to `--ssh`.
struct StartedAgent {
    child: Child,
    socket: PathBuf,
    // Its socket's directory, removed after the agent is stopped.
    _dir: Staging,
}

impl StartedAgent {
    fn start(store: &Store, id: &str, keys: &[PathBuf]) -> Result<StartedAgent, SshError> {
        let not_started = |message: String| SshError::AgentNotStarted {
            id: id.to_string(),
            message,
        };
        let dir = store.staging_dir("ssh-agent")?;
        let socket = dir.path().join("agent.sock");
        let mut command = Command::new("ssh-agent");
        command
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Read before the fork: a parent that died before the child's prctl has left the
        // child with another parent, and the death signal would never come.
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: prctl, getppid and _exit are system calls, async-signal-safe; they make
        // the agent (and the keys it holds) go when lade goes, even by `kill -9`.
        unsafe {
            command.pre_exec(move || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .map_err(|e| not_started(format!("ssh-agent: {e}")))?;
        // From here on, dropping `agent` stops it, whatever fails below.
        let mut agent = StartedAgent {
            child,
            socket,
            _dir: dir,
        };
        // The handshake: `ssh-agent -D` prints where it listens once it does.
        let mut line = String::new();
        if let Some(stdout) = agent.child.stdout.take() {
            let _ = BufReader::new(stdout).read_line(&mut line);
        }
        if !line.starts_with("SSH_AUTH_SOCK=") {
            let _ = agent.child.wait();
            let mut stderr = String::new();
            if let Some(mut err) = agent.child.stderr.take() {
                let _ = err.read_to_string(&mut stderr);
            }
            return Err(not_started(stderr.trim().to_string()));
        }
        for key in keys {
            agent.add(id, key)?;
        }
        Ok(agent)
    }

    /// Loads the key file `key` into the agent. The key goes through ssh-add's
    /// standard input, as BuildKit reads key files itself: ssh-add's refusal of a key
    /// file others may read is not BuildKit's behaviour.
    fn add(&self, id: &str, key: &Path) -> Result<(), SshError> {
        let not_loaded = |message: String| SshError::KeyNotLoaded {
            id: id.to_string(),
            key: key.to_path_buf(),
            message,
        };
        // Read through a bound: a FIFO or a growing file has no size to check first.
        let mut content = Vec::new();
        std::fs::File::open(key)
            .and_then(|file| file.take(MAX_KEY_FILE + 1).read_to_end(&mut content))
            .map_err(|source| SshError::Path {
                id: id.to_string(),
                path: key.to_path_buf(),
                source,
            })?;
        if content.len() as u64 > MAX_KEY_FILE {
            return Err(not_loaded(format!(
                "more than {MAX_KEY_FILE} bytes is too big for a private key"
            )));
        }
        let mut child = Command::new("ssh-add")
            .args(["-q", "-"])
            .env("SSH_AUTH_SOCK", &self.socket)
            .env_remove("DISPLAY")
            .env_remove("SSH_ASKPASS")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| not_loaded(format!("ssh-add: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(&content);
        }
        let output = child
            .wait_with_output()
            .map_err(|e| not_loaded(format!("ssh-add: {e}")))?;
        if output.status.success() {
            return Ok(());
        }
        // ssh-add ends its lines with CR LF; one line of them reads better.
        let message = String::from_utf8_lossy(&output.stderr)
            .lines()
            .map(|line| line.trim())
            .filter(|line| !line.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        if message.contains("passphrase") {
            return Err(not_loaded(
                "the key needs its passphrase, and there is no terminal to ask it on: add it to an ssh-agent (ssh-add) and build with --ssh default".into(),
            ));
        }
        Err(not_loaded(message))
    }
}

impl Drop for StartedAgent {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let _ = self.child.wait();
    }
}

/// The agent protocol's messages a step may send (draft-miller-ssh-agent): listing
/// keys and signing. Anything else is answered with a failure and never reaches the
/// agent.
const REQUEST_IDENTITIES: u8 = 11;
const SIGN_REQUEST: u8 = 13;
const FAILURE: u8 = 5;
/// The largest key file read, as BuildKit reads them.
const MAX_KEY_FILE: u64 = 100 * 1024;
/// OpenSSH's bound on a message.
const MAX_MESSAGE: usize = 256 * 1024;

/// A socket that forwards the allowed requests of each connection to an agent, for
/// as long as it lives.
pub(crate) struct AgentProxy {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    listener: UnixListener,
    clients: Arc<Mutex<Vec<UnixStream>>>,
    accepting: Option<JoinHandle<()>>,
}

impl AgentProxy {
    /// Listens at `path` (made with `mode`, owned by `uid`:`gid`) for connections to
    /// the agent at `agent`.
    pub(crate) fn start(
        path: &Path,
        agent: &Path,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> io::Result<AgentProxy> {
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Arc<Mutex<Vec<UnixStream>>> = Arc::new(Mutex::new(Vec::new()));
        let accepting = {
            let listener = listener.try_clone()?;
            let stop = stop.clone();
            let clients = clients.clone();
            let agent = agent.to_path_buf();
            std::thread::Builder::new()
                .name("ssh-agent-proxy".into())
                .spawn(move || {
                    for client in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(client) = client else { continue };
                        let mut held = clients.lock().unwrap_or_else(|e| e.into_inner());
                        // A thread per connection, a few at a time: a step that opens
                        // connections in a loop is refused past the cap, not given
                        // lade's threads. Ended connections make room.
                        held.retain(|c| !closed(c));
                        if held.len() >= MAX_PROXY_CLIENTS {
                            continue;
                        }
                        if let Ok(copy) = client.try_clone() {
                            held.push(copy);
                        }
                        drop(held);
                        let agent = agent.clone();
                        let _ = std::thread::Builder::new()
                            .name("ssh-agent-proxy".into())
                            .spawn(move || serve(client, &agent));
                    }
                })?
        };
        Ok(AgentProxy {
            path: path.to_path_buf(),
            stop,
            listener,
            clients,
            accepting: Some(accepting),
        })
    }
}

/// How many connections to the agent a step may hold at once.
const MAX_PROXY_CLIENTS: usize = 16;

/// Whether the other end of `client` has gone (a read would give end of file).
fn closed(client: &UnixStream) -> bool {
    let mut probe = [0u8; 1];
    matches!(
        nix::sys::socket::recv(
            std::os::fd::AsRawFd::as_raw_fd(client),
            &mut probe,
            nix::sys::socket::MsgFlags::MSG_PEEK | nix::sys::socket::MsgFlags::MSG_DONTWAIT,
        ),
        Ok(0) | Err(nix::errno::Errno::ECONNRESET)
    )
}

impl Drop for AgentProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread: shutting a listening socket down ends its accept
        // on Linux; a connection does it anywhere.
        let _ = nix::sys::socket::shutdown(
            std::os::fd::AsRawFd::as_raw_fd(&self.listener),
            nix::sys::socket::Shutdown::Both,
        );
        let _ = UnixStream::connect(&self.path);
        for client in self
            .clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            let _ = client.shutdown(Shutdown::Both);
        }
        if let Some(thread) = self.accepting.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One connection: each request read whole, passed on if allowed, its answer back.
fn serve(mut client: UnixStream, agent_path: &Path) {
    let mut agent: Option<UnixStream> = None;
    while let Ok(request) = read_message(&mut client) {
        let answer = match request.first() {
            Some(&(REQUEST_IDENTITIES | SIGN_REQUEST)) => {
                let agent = match &mut agent {
                    Some(agent) => agent,
                    None => match UnixStream::connect(agent_path) {
                        Ok(stream) => agent.insert(stream),
                        Err(_) => return,
                    },
                };
                if write_message(agent, &request).is_err() {
                    return;
                }
                match read_message(agent) {
                    Ok(answer) => answer,
                    Err(_) => return,
                }
            }
            _ => vec![FAILURE],
        };
        if write_message(&mut client, &answer).is_err() {
            return;
        }
    }
}

fn read_message(stream: &mut UnixStream) -> io::Result<Vec<u8>> {
    let mut length = [0u8; 4];
    stream.read_exact(&mut length)?;
    let length = u32::from_be_bytes(length) as usize;
    if length == 0 || length > MAX_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "an agent message of a bad length",
        ));
    }
    let mut message = vec![0u8; length];
    stream.read_exact(&mut message)?;
    Ok(message)
}

fn write_message(stream: &mut UnixStream, message: &[u8]) -> io::Result<()> {
    let mut framed = Vec::with_capacity(message.len() + 4);
    framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
    framed.extend_from_slice(message);
    stream.write_all(&framed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buildkit_forms_parse() {
        assert_eq!(
            SshSource::parse("default"),
            SshSource {
                id: "default".into(),
                paths: vec![]
            }
        );
        assert_eq!(
            SshSource::parse("git=/a/key,/b/key"),
            SshSource {
                id: "git".into(),
                paths: vec!["/a/key".into(), "/b/key".into()]
            }
        );
        assert_eq!(SshSource::parse("=/s").id, "default");
    }

    #[test]
    fn a_socket_and_keys_together_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("s");
        let _listener = UnixListener::bind(&socket).unwrap();
        let key = dir.path().join("key");
        std::fs::write(&key, "k").unwrap();
        assert!(matches!(
            agent_of("x", &[socket.clone(), key.clone()]),
            Err(SshError::KeysAndSocket { .. })
        ));
        assert!(matches!(
            agent_of("x", &[socket.clone(), socket.clone()]),
            Err(SshError::TwoSockets { .. })
        ));
        assert!(matches!(agent_of("x", &[socket]), Ok(AgentOf::Socket(_))));
        assert!(matches!(agent_of("x", &[key]), Ok(AgentOf::Keys(_))));
        let error = agent_of("x", &[dir.path().join("absent")]).unwrap_err();
        assert!(error.to_string().starts_with("--ssh x: "), "{error}");
    }

    /// A fake agent that answers every request with its type + 100, and counts them.
    fn fake_agent(path: &Path) -> Arc<Mutex<Vec<u8>>> {
        let listener = UnixListener::bind(path).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                while let Ok(request) = read_message(&mut stream) {
                    record.lock().unwrap().push(request[0]);
                    let _ = write_message(&mut stream, &[request[0] + 100]);
                }
            }
        });
        seen
    }

    #[test]
    fn the_proxy_passes_on_listing_and_signing_only() {
        let dir = tempfile::tempdir().unwrap();
        let agent = dir.path().join("agent");
        let seen = fake_agent(&agent);
        let proxy_path = dir.path().join("proxy");
        let proxy = AgentProxy::start(&proxy_path, &agent, 0o600, 0, 0).unwrap();
        assert_eq!(
            std::fs::metadata(&proxy_path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let mut client = UnixStream::connect(&proxy_path).unwrap();
        for (request, answer) in [
            (REQUEST_IDENTITIES, REQUEST_IDENTITIES + 100),
            (17, FAILURE), // add an identity
            (SIGN_REQUEST, SIGN_REQUEST + 100),
            (22, FAILURE), // lock
        ] {
            write_message(&mut client, &[request, 0]).unwrap();
            assert_eq!(read_message(&mut client).unwrap(), vec![answer]);
        }
        assert_eq!(
            *seen.lock().unwrap(),
            vec![REQUEST_IDENTITIES, SIGN_REQUEST]
        );
        drop(proxy);
        assert!(!proxy_path.exists());
        // The connection is closed with the proxy.
        assert!(read_message(&mut client).is_err());
    }
}
