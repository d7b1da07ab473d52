//! Helpers shared by the integration tests: a lade with its own temporary store, the
//! busybox base image, peer tools (podman in a private storage root), and checks that
//! fail with a clear message when the machine lacks something CI installs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use assert_cmd::Command;

/// The repository root.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Fails (not skips) when a tool CI installs is missing.
pub fn require_tool(tool: &str) {
    let found = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{tool} is not installed: scripts/test.sh installs it (apt-get) before running the tests"
    );
}

/// Fails when not root: these tests need mounts and namespaces, which CI has.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (mounts, namespaces); CI runs the suite as root"
    );
}

/// lade with a store of its own, removed at the end.
pub struct Lade {
    pub dir: tempfile::TempDir,
}

impl Lade {
    pub fn new() -> Lade {
        require_root();
        Lade {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    pub fn cmd(&self) -> Command {
        let mut cmd = Command::cargo_bin("lade").expect("the lade binary");
        cmd.env("LADE_ROOT", self.root())
            .env_remove("SOURCE_DATE_EPOCH");
        cmd
    }

    /// A plain process command for lade with this store (to spawn in the background).
    pub fn process(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("lade"));
        cmd.env("LADE_ROOT", self.root())
            .env_remove("SOURCE_DATE_EPOCH");
        cmd
    }

    /// Runs lade and returns its output; panics with stderr when it fails.
    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_with_env(&[], args)
    }

    /// [`Lade::ok`] with these environment variables set.
    pub fn ok_with_env(&self, env: &[(&str, &str)], args: &[&str]) -> String {
        let output = self
            .cmd()
            .envs(env.iter().copied())
            .args(args)
            .output()
            .expect("lade runs");
        assert!(
            output.status.success(),
            "lade {args:?} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs lade expecting failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let output = self.cmd().args(args).output().expect("lade runs");
        assert!(
            !output.status.success(),
            "lade {args:?} should have failed:\n{}",
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    }

    pub fn output(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("lade runs")
    }

    /// Imports the busybox base as `busybox:latest` (with `flags` for `lade import`):
    /// scripts/busybox-image.sh makes its root file system and imports it. For tests
    /// that need an import's flags; the others take [`Lade::busybox`], which is cheaper.
    pub fn busybox_with(&self, flags: &str) {
        import_busybox(&self.root(), flags);
    }

    /// Gives this store the busybox base as `busybox:latest`: the image, blobs and
    /// records [`Lade::busybox_with`]`("")` makes, from the store made once for this
    /// test process ([`busybox_store`]). A store that does not exist yet starts as a
    /// copy of that one (milliseconds; a `lade load` takes 0.1 s on an idle machine and
    /// over 0.5 s on a busy one, most of it in fsync); one that exists loads the image
    /// saved from it.
    pub fn busybox(&self) {
        let base = busybox_store();
        if !self.root().exists() {
            run(
                "cp",
                &["-a", base.to_str().unwrap(), self.root().to_str().unwrap()],
            );
            return;
        }
        let mut save = self
            .process()
            .env("LADE_ROOT", base)
            .args(["save", "--format", "oci", "busybox:latest"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("lade save runs");
        let load = self
            .process()
            .args(["load", "--quiet"])
            .stdin(save.stdout.take().unwrap())
            .output()
            .expect("lade load runs");
        assert!(
            save.wait().unwrap().success(),
            "lade save of busybox failed"
        );
        assert!(
            load.status.success(),
            "lade load of busybox failed:\n{}",
            String::from_utf8_lossy(&load.stderr)
        );
    }

    /// Builds `context` with lade; returns the image id and the plain progress log.
    pub fn build_log(&self, context: &Path, extra: &[&str]) -> (String, String) {
        let mut args = vec!["build", "--progress", "plain"];
        args.extend_from_slice(extra);
        let context = context.to_string_lossy().into_owned();
        args.push(&context);
        let output = self.output(&args);
        let log = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(
            output.status.success(),
            "lade {args:?} failed ({}):\n{log}",
            output.status
        );
        (
            String::from_utf8_lossy(&output.stdout).trim().to_string(),
            log,
        )
    }

    /// Builds `context` with lade; returns the image id.
    pub fn build(&self, context: &Path, extra: &[&str]) -> String {
        let mut args = vec!["build", "--progress", "plain"];
        args.extend_from_slice(extra);
        let context = context.to_string_lossy().into_owned();
        args.push(&context);
        self.ok(&args).trim().to_string()
    }
}

/// Runs scripts/busybox-image.sh: `busybox:latest` into the store at `root`, imported
/// with `flags`.
fn import_busybox(root: &Path, flags: &str) {
    require_tool("busybox");
    let lade = assert_cmd::cargo::cargo_bin("lade");
    let status = std::process::Command::new(repo().join("scripts/busybox-image.sh"))
        .arg(&lade)
        .env("LADE_ROOT", root)
        .env("LADE_IMPORT_FLAGS", flags)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("scripts/busybox-image.sh runs");
    assert!(status.success(), "scripts/busybox-image.sh failed");
}

/// The store holding only the busybox base, made by the first test that asks for it.
static BUSYBOX_STORE: OnceLock<PathBuf> = OnceLock::new();

/// A store with the busybox base as scripts/busybox-image.sh imports it, made once for
/// this test process and never changed (tests copy it or read from it), removed when
/// the process exits.
fn busybox_store() -> &'static Path {
    BUSYBOX_STORE.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("lade-busybox-store.")
            .tempdir()
            .expect("a temporary directory");
        let store = dir.path().join("store");
        import_busybox(&store, "");
        extern "C" fn remove_busybox_store() {
            if let Some(store) = BUSYBOX_STORE.get() {
                let _ = std::fs::remove_dir_all(store.parent().unwrap());
            }
        }
        // SAFETY: the handler is a plain function; it runs once, at exit, after every
        // test has ended.
        let registered = unsafe { libc::atexit(remove_busybox_store) };
        assert_eq!(registered, 0, "atexit failed");
        let _ = dir.keep();
        store
    })
}

/// Containers a test leaves behind, even by failing, are killed and removed with their
/// store: no process, mount or cgroup outlives the test.
/// A store's containers, and its networks' bridges and rules, which outlive their
/// containers, go with it (`system reset`): the suite leaves no bridge behind. Only a
/// store with containers, or with networks (each has a host-wide claim naming the
/// store), has anything to reset.
impl Drop for Lade {
    fn drop(&mut self) {
        if !self.root().join("lade.db").exists() {
            return;
        }
        let had_containers = std::fs::read_dir(self.root().join("containers"))
            .is_ok_and(|mut entries| entries.next().is_some());
        let root = self.root().display().to_string();
        let has_networks = std::fs::read_dir("/run/lade/claims")
            .into_iter()
            .flatten()
            .flatten()
            .any(|claim| {
                std::fs::read_to_string(claim.path())
                    .is_ok_and(|text| text.lines().nth(1) == Some(root.as_str()))
            });
        if had_containers || has_networks {
            let _ = self.cmd().args(["system", "reset", "-f"]).output();
        }
    }
}

/// A build context in a temporary directory.
pub struct Context {
    pub dir: tempfile::TempDir,
}

impl Context {
    pub fn new(dockerfile: &str) -> Context {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
        Context { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self, relative: &str, content: &str) -> &Context {
        let path = self.dir.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
        self
    }
}

/// podman with a storage root of its own (vfs: nothing stays mounted), and the
/// containers.conf this machine needs (root lacks CAP_SYS_RESOURCE, so podman's default
/// rlimits cannot be set).
pub struct Podman {
    pub dir: tempfile::TempDir,
}

impl Podman {
    pub fn new() -> Podman {
        require_tool("podman");
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(
            dir.path().join("containers.conf"),
            "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
        )
        .unwrap();
        Podman { dir }
    }

    pub fn storage(&self) -> String {
        format!(
            "[vfs@{}+{}]",
            self.dir.path().join("root").display(),
            self.dir.path().join("run").display()
        )
    }

    pub fn cmd(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new("podman");
        cmd.arg("--root")
            .arg(self.dir.path().join("root"))
            .arg("--runroot")
            .arg(self.dir.path().join("run"))
            .args(["--storage-driver", "vfs"])
            .env("CONTAINERS_CONF", self.dir.path().join("containers.conf"));
        cmd
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.cmd().args(args).output().expect("podman runs");
        assert!(
            output.status.success(),
            "podman {args:?} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.cmd().args(["rm", "-af"]).output();
    }
}

/// Kills a detached container's monitor (the parent of its init `init`) with SIGKILL,
/// and waits (bounded, on pidfds) until the monitor is gone, with every descriptor it
/// held (its published ports), and the init, which dies with it, has exited.
pub fn kill_monitor_of(init: i32) {
    let stat = std::fs::read_to_string(format!("/proc/{init}/stat")).expect("the init runs");
    let monitor: i32 = stat
        .rsplit(')')
        .next()
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|ppid| ppid.parse().ok())
        .expect("a parent pid in /proc/PID/stat");
    let init = lade::exec::ProcessId::of(init).expect("the init runs");
    let monitor_process = lade::exec::ProcessId::of(monitor).expect("the monitor runs");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitor),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("the monitor can be killed");
    // Its pidfd becomes readable when it exits: no polling.
    assert!(
        monitor_process.wait_exit(std::time::Duration::from_secs(30)),
        "the monitor did not die"
    );
    assert!(
        init.wait_exit(std::time::Duration::from_secs(30)),
        "the container did not die with its monitor"
    );
}

/// Runs a command; returns stdout, panicking with stderr when it fails.
pub fn run(program: &str, args: &[&str]) -> String {
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("{program} cannot run: {e}");
        });
    assert!(
        output.status.success(),
        "{program} {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Compiles `tests/fixtures/<fixture>.c` into a static binary at `output` (static, so
/// it runs in a busybox image).
pub fn compile_fixture(fixture: &str, output: &Path) {
    require_tool("cc");
    let source = repo().join(format!("tests/fixtures/{fixture}.c"));
    run(
        "cc",
        &[
            "-static",
            "-O1",
            "-o",
            output.to_str().unwrap(),
            source.to_str().unwrap(),
        ],
    );
}

/// A tmpfs mounted for the test, unmounted (lazily, so a failing test cannot leave it
/// busy) when dropped.
pub struct Tmpfs {
    pub dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn new(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
                dir.path().to_str().unwrap(),
            ],
        );
        Tmpfs { dir }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Waits until `done` holds, looking again every 20 ms, and fails the test after 60 s:
/// for a state the test cannot be told of (a process gone, a port bound by a peer), not
/// for readiness a handshake could announce.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Says what a long test is doing, one line per step on the test process's stderr,
/// with the test's name (its thread's name): the suite runs for minutes, and a test
/// that takes more than a few of its seconds says where it is. Written to the stream
/// itself, not through `eprintln!`, which the test harness captures until the test
/// ends (and shows only when it fails or under `--nocapture`).
pub fn step(what: impl std::fmt::Display) {
    use std::io::Write;
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    let _ = writeln!(std::io::stderr().lock(), "    {test}: {what}");
}

/// A child process killed (SIGKILL) and reaped when dropped, so that a failing test
/// leaves nothing running.
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The host's listening TCP sockets on `port` (IPv4 and IPv6), as `ss` tells of them
/// with their processes; `None` when nothing listens there. Whether a port was let go
/// is asked this way, not by binding it: the suite's own outgoing connections take
/// ports of the same ephemeral range as their source, and such a connection keeps a
/// bind from succeeding although nothing serves the port.
pub fn listener_on(port: u16) -> Option<String> {
    let listening = ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
        std::fs::read_to_string(table)
            .unwrap_or_default()
            .lines()
            .skip(1)
            .any(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                // local address "ADDR:PORT" in hex, state 0A is LISTEN
                fields.len() > 3
                    && fields[3] == "0A"
                    && fields[1]
                        .rsplit(':')
                        .next()
                        .and_then(|hex| u16::from_str_radix(hex, 16).ok())
                        == Some(port)
            })
    });
    listening.then(|| {
        let ss = std::process::Command::new("ss")
            .args(["-ltnpeH", "sport", "=", &format!(":{port}")])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_else(|e| format!("(ss cannot run: {e})"));
        format!("something listens on port {port}: {ss}")
    })
}
