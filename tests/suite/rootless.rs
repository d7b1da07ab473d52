//! Rootless lade: an ordinary user, made for these tests with a subordinate id range
//! (`laderootless`), runs lade in its own user namespace with a store under its
//! `$HOME` and runtime files under its `$XDG_RUNTIME_DIR` (both temporary): builds with
//! a second user inside, files of that user through run, save and load, detached
//! containers with `exec`, `cp` and `commit`, volumes, pasta's published ports reached
//! from the host, names on a user network, a user network's way out to the host and
//! its published ports, a compose project, cache mounts, a push and pull round trip,
//! exec after the pause process is killed, `info`, the security settings inside, and the
//! refusals of what needs root or a cgroup. Containers' cgroups go under a cgroup v2
//! directory delegated to the user as systemd's `Delegate=yes` leaves one (made by hand
//! here: this machine has no systemd, and its v2 tree no controllers), and a monitor
//! outside one asks the user's systemd for a delegated scope (a stand-in `systemd-run`
//! here).

use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::common;

const USER: &str = "laderootless";
const NOBODY: u32 = 65534;

/// The test user and its subordinate range.
struct TestUser {
    uid: u32,
    gid: u32,
    /// The first id outside that ids from 1 inside map to.
    range_start: u32,
}

fn id_of(flag: &str) -> Option<u32> {
    let output = std::process::Command::new("id")
        .args([flag, USER])
        .output()
        .ok()?;
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}

fn range_of(file: &str) -> Option<u32> {
    std::fs::read_to_string(file)
        .ok()?
        .lines()
        .find_map(|line| {
            let mut fields = line.split(':');
            (fields.next()? == USER).then_some(())?;
            fields.next()?.parse().ok()
        })
}

/// Makes the test user once per test process (idempotent across runs: an existing
/// user and range are kept), with Debian's `uidmap` and `passt` present, and
/// `/dev/net/tun` open to users as Debian's udev rules make it (pasta needs it; a VM
/// without udev leaves it 0600).
fn test_user() -> &'static TestUser {
    static USER_MADE: OnceLock<TestUser> = OnceLock::new();
    USER_MADE.get_or_init(|| {
        common::require_root();
        for tool in [
            "newuidmap",
            "newgidmap",
            "pasta",
            "useradd",
            "usermod",
            "curl",
        ] {
            common::require_tool(tool);
        }
        if id_of("-u").is_none() {
            // Another test process may make it at the same moment: its result counts.
            let _ = std::process::Command::new("useradd")
                .args(["--no-create-home", "--shell", "/usr/sbin/nologin", USER])
                .status();
        }
        if range_of("/etc/subuid").is_none() || range_of("/etc/subgid").is_none() {
            common::run(
                "usermod",
                &[
                    "--add-subuids",
                    "200000-265535",
                    "--add-subgids",
                    "200000-265535",
                    USER,
                ],
            );
        }
        let tun = Path::new("/dev/net/tun");
        if tun.exists() && std::fs::metadata(tun).unwrap().mode() & 0o006 != 0o006 {
            std::fs::set_permissions(tun, std::fs::Permissions::from_mode(0o666)).unwrap();
        }
        // fuse-overlayfs needs it, as Debian's udev rules leave it (0666).
        let fuse = Path::new("/dev/fuse");
        if fuse.exists() && std::fs::metadata(fuse).unwrap().mode() & 0o006 != 0o006 {
            std::fs::set_permissions(fuse, std::fs::Permissions::from_mode(0o666)).unwrap();
        }
        TestUser {
            uid: id_of("-u").expect("the test user exists"),
            gid: id_of("-g").expect("the test user has a group"),
            range_start: range_of("/etc/subuid").expect("the test user has a range"),
        }
    })
}

/// lade for an ordinary user: a temporary home (the store goes to its
/// `.local/share/lade`), runtime directory and working directory, all the user's.
/// Dropping it removes the user's containers and ends its namespace's pause process.
struct RootlessLade {
    dir: tempfile::TempDir,
    uid: u32,
    gid: u32,
}

impl RootlessLade {
    fn new() -> RootlessLade {
        let user = test_user();
        RootlessLade::for_ids(user.uid, user.gid)
    }

    fn for_ids(uid: u32, gid: u32) -> RootlessLade {
        let dir = tempfile::tempdir().expect("a temporary directory");
        // The user must reach its own directories below this one (root's).
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        for (name, mode) in [("home", 0o755), ("run", 0o700), ("work", 0o755)] {
            let path = dir.path().join(name);
            std::fs::create_dir(&path).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
        }
        RootlessLade { dir, uid, gid }
    }

    fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("home/.local/share/lade")
    }

    fn as_user(&self, program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
        let mut cmd = std::process::Command::new(program);
        cmd.uid(self.uid)
            .gid(self.gid)
            .current_dir(self.work())
            .env("HOME", self.dir.path().join("home"))
            .env("XDG_RUNTIME_DIR", self.dir.path().join("run"))
            .env("USER", USER)
            .env_remove("XDG_DATA_HOME")
            .env_remove("LADE_ROOT")
            .env_remove("SOURCE_DATE_EPOCH")
            // No user manager of the caller's: whether one is reachable is set per test.
            .env_remove("DBUS_SESSION_BUS_ADDRESS");
        cmd
    }

    fn cmd(&self) -> std::process::Command {
        self.as_user(assert_cmd::cargo::cargo_bin("lade"))
    }

    fn output(&self, args: &[&str]) -> std::process::Output {
        self.cmd().args(args).output().expect("lade runs")
    }

    /// Runs lade as the user; its stdout, or a failure with its stderr.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.output(args);
        assert!(
            output.status.success(),
            "rootless lade {args:?} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs lade as the user expecting a failure; its stderr.
    fn fails(&self, args: &[&str]) -> String {
        let output = self.output(args);
        assert!(
            !output.status.success(),
            "rootless lade {args:?} should have failed:\n{}",
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    }

    /// `busybox:latest` imported by the user (scripts/busybox-image.sh).
    fn busybox(&self) {
        common::require_tool("busybox");
        let status = self
            .as_user(common::repo().join("scripts/busybox-image.sh"))
            .arg(assert_cmd::cargo::cargo_bin("lade"))
            .stdout(std::process::Stdio::null())
            .status()
            .expect("scripts/busybox-image.sh runs");
        assert!(
            status.success(),
            "scripts/busybox-image.sh as the user failed"
        );
    }

    /// A file in the working directory, readable by the user.
    fn file(&self, relative: &str, content: &str) -> PathBuf {
        let path = self.work().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        path
    }
}

impl Drop for RootlessLade {
    fn drop(&mut self) {
        // Containers first (their monitors, pasta), then the namespace's pause process.
        if let Ok(output) = self.cmd().args(["ps", "-aq"]).output() {
            let ids = String::from_utf8_lossy(&output.stdout).into_owned();
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let _ = self.cmd().args(["rm", "-f"]).args(&ids).output();
            }
        }
        // The way out of its user networks' namespace (pasta, or slirp4netns) too.
        for (file, names) in [
            ("run/lade/pause.pid", &["lade-pause"][..]),
            (
                "run/lade/rootless-netns.pid",
                &["pasta", "pasta.avx2", "passt", "passt.avx2", "slirp4netns"][..],
            ),
        ] {
            let Some(pid) = std::fs::read_to_string(self.dir.path().join(file))
                .ok()
                .and_then(|text| text.trim().parse::<i32>().ok())
            else {
                continue;
            };
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if names.contains(&comm.trim()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

/// The file at `relative` in whichever of the store's snapshots holds it.
fn in_snapshots(store: &Path, relative: &str) -> PathBuf {
    for entry in std::fs::read_dir(store.join("snapshots")).unwrap() {
        let candidate = entry.unwrap().path().join(relative);
        if candidate.symlink_metadata().is_ok() {
            return candidate;
        }
    }
    panic!("no snapshot holds {relative}");
}

/// The `(uid, gid, mode)` of `wanted` in the layers of a docker-archive.
fn owner_in_archive(archive: &Path, wanted: &str) -> Option<(u64, u64, u32)> {
    let mut outer = tar::Archive::new(std::fs::File::open(archive).unwrap());
    for entry in outer.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        let mut inner = tar::Archive::new(bytes.as_slice());
        let Ok(entries) = inner.entries() else {
            continue;
        };
        for layer_entry in entries.flatten() {
            let path = layer_entry.path().ok()?.to_string_lossy().into_owned();
            if path.trim_start_matches("./") == wanted {
                let header = layer_entry.header();
                return Some((header.uid().ok()?, header.gid().ok()?, header.mode().ok()?));
            }
        }
    }
    None
}

const SECOND_USER_DOCKERFILE: &str = "FROM busybox\n\
RUN echo 'bob:x:1000:1000::/home/bob:/bin/sh' >> /etc/passwd \\\n\
 && echo 'bob:x:1000:' >> /etc/group \\\n\
 && mkdir -p /home/bob && echo hi > /home/bob/f \\\n\
 && chown -R bob:bob /home/bob && chmod 0640 /home/bob/f \\\n\
 && mkdir /gone && touch /gone/x\n\
RUN rm -r /gone /bin/vi && mkdir /opaque && touch /opaque/kept\n\
USER bob\n";

#[test]
fn a_build_with_a_second_user_keeps_its_owners_through_save_and_load() {
    let lade = RootlessLade::new();
    lade.busybox();
    lade.file("ctx/Dockerfile", SECOND_USER_DOCKERFILE);
    lade.ok(&["build", "--progress", "plain", "-t", "second:1", "ctx"]);
    let shown =
        "id -u; stat -c %u:%g:%a /home/bob/f; test -e /gone || test -e /bin/vi || echo gone";
    let check = |lade: &RootlessLade| {
        assert_eq!(
            lade.ok(&[
                "run",
                "--rm",
                "--network",
                "none",
                "second:1",
                "sh",
                "-c",
                shown
            ]),
            "1000\n1000:1000:640\ngone\n"
        );
    };
    check(&lade);
    // Outside, the second user's file lands on the subordinate range.
    let on_host = in_snapshots(&lade.store(), "home/bob/f");
    let meta = std::fs::metadata(&on_host).unwrap();
    let start = test_user().range_start;
    assert_eq!(
        (meta.uid(), meta.gid()),
        (start + 999, start + 999),
        "{}",
        on_host.display()
    );
    // save writes the image's own ids back.
    lade.ok(&["save", "-o", "second.tar", "second:1"]);
    assert_eq!(
        owner_in_archive(&lade.work().join("second.tar"), "home/bob/f"),
        Some((1000, 1000, 0o640))
    );
    let other = RootlessLade::new();
    std::fs::rename(
        lade.work().join("second.tar"),
        other.work().join("second.tar"),
    )
    .unwrap();
    other.ok(&["load", "-i", "second.tar"]);
    check(&other);
}

#[test]
fn a_detached_container_takes_exec_cp_and_commit() {
    let lade = RootlessLade::new();
    lade.busybox();
    lade.ok(&[
        "run",
        "-d",
        "--name",
        "held",
        "--network",
        "none",
        "busybox",
        "sleep",
        "300",
    ]);
    assert_eq!(lade.ok(&["exec", "held", "id", "-u"]), "0\n");
    assert_eq!(
        lade.ok(&["exec", "-u", "1000", "held", "id", "-u"]),
        "1000\n"
    );
    lade.file("in.txt", "carried in\n");
    lade.ok(&["cp", "in.txt", "held:/tmp/in.txt"]);
    lade.ok(&["exec", "held", "chown", "1000:1000", "/tmp/in.txt"]);
    lade.ok(&["cp", "held:/tmp/in.txt", "out.txt"]);
    assert_eq!(
        std::fs::read_to_string(lade.work().join("out.txt")).unwrap(),
        "carried in\n"
    );
    // What cp wrote out is the user's own file.
    assert_eq!(
        std::fs::metadata(lade.work().join("out.txt"))
            .unwrap()
            .uid(),
        test_user().uid
    );
    lade.ok(&["commit", "held", "held:committed"]);
    lade.ok(&["rm", "-f", "held"]);
    assert_eq!(
        lade.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "held:committed",
            "stat",
            "-c",
            "%u:%g",
            "/tmp/in.txt",
        ]),
        "1000:1000\n"
    );
}

#[test]
fn a_volume_keeps_files_of_other_owners() {
    let lade = RootlessLade::new();
    lade.busybox();
    lade.ok(&["volume", "create", "kept"]);
    lade.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "kept:/data",
        "busybox",
        "sh",
        "-c",
        "echo vol > /data/x && chown 1000:1000 /data/x",
    ]);
    assert_eq!(
        lade.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            "kept:/data",
            "busybox",
            "stat",
            "-c",
            "%u:%g %s",
            "/data/x",
        ]),
        "1000:1000 4\n"
    );
    // A bind mount of the user's own directory: root inside writes as the user outside.
    std::fs::create_dir(lade.work().join("bound")).unwrap();
    std::os::unix::fs::chown(lade.work().join("bound"), Some(lade.uid), Some(lade.gid)).unwrap();
    let bound = format!("{}:/bound", lade.work().join("bound").display());
    lade.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &bound,
        "busybox",
        "sh",
        "-c",
        "echo out > /bound/made",
    ]);
    assert_eq!(
        std::fs::metadata(lade.work().join("bound/made"))
            .unwrap()
            .uid(),
        test_user().uid
    );
    lade.ok(&["volume", "rm", "kept"]);
}

/// Runs a web server published on a free host port with `network` (none: the default)
/// and fetches its page from the host with curl; the port is free again after `rm -f`.
fn serve_and_fetch(lade: &RootlessLade, network: Option<&str>) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let publish = format!("{port}:80");
    let mut args = vec!["run", "-d", "--name", "web", "-p", &publish];
    if let Some(network) = network {
        args.extend(["--network", network]);
    }
    args.extend([
        "busybox",
        "sh",
        "-c",
        "mkdir /www && echo served-rootless > /www/index.html && exec httpd -f -p 80 -h /www",
    ]);
    lade.ok(&args);
    assert_eq!(
        lade.ok(&["port", "web"]),
        format!("80/tcp -> 0.0.0.0:{port}\n")
    );
    let url = format!("http://127.0.0.1:{port}/index.html");
    let mut body = String::new();
    common::wait_until(
        "the container's web server behind the user-mode network",
        || {
            let output = std::process::Command::new("curl")
                .args(["-s", "--max-time", "2", &url])
                .output()
                .unwrap();
            body = String::from_utf8_lossy(&output.stdout).into_owned();
            output.status.success() && !body.is_empty()
        },
    );
    assert_eq!(body, "served-rootless\n", "{network:?}");
    lade.ok(&["rm", "-f", "web"]);
    // The network's helper went with the container: the port is free again.
    common::wait_until("the published port to be let go", || {
        common::listener_on(port).is_none()
    });
}

#[test]
fn published_ports_are_reached_from_the_host_through_pasta() {
    let lade = RootlessLade::new();
    lade.busybox();
    serve_and_fetch(&lade, None);
    let inspected = lade.ok(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "ip route | grep -c default",
    ]);
    assert_eq!(inspected, "1\n");
}

#[test]
fn slirp4netns_serves_as_pastas_alternative() {
    common::require_tool("slirp4netns");
    let lade = RootlessLade::new();
    lade.busybox();
    serve_and_fetch(&lade, Some("slirp4netns"));
    assert_eq!(
        lade.ok(&[
            "run",
            "--rm",
            "--network",
            "slirp4netns",
            "busybox",
            "cat",
            "/etc/resolv.conf",
        ]),
        "nameserver 10.0.2.3\n"
    );
}

#[test]
fn what_needs_root_or_a_cgroup_is_refused_with_the_reason() {
    let lade = RootlessLade::new();
    lade.busybox();
    for flag in [["--memory", "10m"], ["--cpus", "1"], ["--pids-limit", "10"]] {
        let stderr = lade.fails(&[
            "run",
            "--rm",
            "--network",
            "none",
            flag[0],
            flag[1],
            "busybox",
            "true",
        ]);
        assert!(
            stderr.contains(&format!("{} needs a cgroup", flag[0]))
                && stderr.contains("cgroup v1")
                && stderr.contains("in no subtree delegated to the user"),
            "{stderr}"
        );
    }
    let stderr = lade.fails(&["run", "--rm", "-p", "80:80", "busybox", "true"]);
    assert!(
        stderr.contains("net.ipv4.ip_unprivileged_port_start"),
        "{stderr}"
    );
    // On a user network as on the default one: the port's sysctl, and sctp, which no
    // rootless path carries.
    lade.ok(&["network", "create", "mine"]);
    for (publish, said) in [
        ("80:80", "net.ipv4.ip_unprivileged_port_start"),
        ("8080:80/sctp", "tcp and udp only"),
    ] {
        let stderr = lade.fails(&[
            "run",
            "--rm",
            "--network",
            "mine",
            "-p",
            publish,
            "busybox",
            "true",
        ]);
        assert!(stderr.contains(said), "{publish}: {stderr}");
    }
    let stderr = lade.fails(&["run", "--rm", "-p", "8080:80/sctp", "busybox", "true"]);
    assert!(stderr.contains("tcp and udp only"), "{stderr}");
    // A user network may not take the subnet of the namespace's own way out.
    let stderr = lade.fails(&["network", "create", "--subnet", "10.0.0.0/16", "clash"]);
    assert!(
        stderr.contains("overlaps 10.0.2.0/24, rootless lade's way out"),
        "{stderr}"
    );
    lade.ok(&["network", "create", "--subnet", "10.0.3.0/24", "beside"]);
    lade.ok(&[
        "run",
        "-d",
        "--name",
        "still",
        "--network",
        "none",
        "busybox",
        "sleep",
        "300",
    ]);
    let stderr = lade.fails(&["pause", "still"]);
    assert!(
        stderr.contains("cannot be paused: it was made without a cgroup"),
        "{stderr}"
    );
}

#[test]
fn containers_on_a_user_network_resolve_and_reach_each_other_by_name() {
    let lade = RootlessLade::new();
    lade.busybox();
    lade.ok(&["network", "create", "inner"]);
    lade.ok(&[
        "run",
        "-d",
        "--name",
        "server",
        "--network",
        "inner",
        "busybox",
        "sh",
        "-c",
        "echo served-by-name > /index.html && exec httpd -f -p 8000 -h /",
    ]);
    // httpd may bind after the client starts: the client asks until it answers. (The
    // address is looked up by nslookup: busybox-static's wget and nc crash on a name.)
    let fetched = lade.ok(&[
        "run",
        "--rm",
        "--name",
        "client",
        "--network",
        "inner",
        "busybox",
        "sh",
        "-c",
        "nslookup server >&2 && ping -c1 -W5 server >&2 \
         && addr=$(nslookup server | sed -n 's/^Address: //p' | tail -n1) \
         && for i in $(seq 100); do \
         printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 2 $addr 8000 \
         | grep served && exit 0; usleep 100000; done; exit 1",
    ]);
    assert_eq!(fetched.trim(), "served-by-name", "{fetched}");
    // The network stays usable after its containers leave, and goes with `network rm`.
    lade.ok(&["rm", "-f", "server"]);
    lade.ok(&["network", "rm", "inner"]);
}

/// The host's own address towards its default route (no packet is sent: a UDP
/// socket's connect only picks the route). pasta gives rootless lade's namespace
/// addresses of its own, so this address is the host's from there too.
fn host_address() -> std::net::Ipv4Addr {
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    // TEST-NET-3 (RFC 5737): routed by the default route, never answered.
    probe
        .connect("203.0.113.1:9")
        .expect("the host has a default route (pasta needs one)");
    match probe.local_addr().unwrap().ip() {
        std::net::IpAddr::V4(address) => address,
        other => panic!("the default route's address is not IPv4: {other}"),
    }
}

/// A one-page HTTP server of the test's on `address`: it answers every connection with
/// `body`. Returns its port.
fn serve_page_on_host(address: std::net::Ipv4Addr, body: &'static str) -> u16 {
    use std::io::Write;
    let listener = std::net::TcpListener::bind((address, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                request.push(byte[0]);
            }
            let _ = write!(
                stream,
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

/// The processes of this test's user namespace other than its pause process and the
/// way out of its network namespace (told apart from other tests' processes of the
/// same user by their runtime directory).
fn strays(lade: &RootlessLade) -> Vec<String> {
    let runtime = lade.dir.path().join("run");
    let marker = format!("XDG_RUNTIME_DIR={}", runtime.display());
    let kept: Vec<String> = ["run/lade/pause.pid", "run/lade/rootless-netns.pid"]
        .iter()
        .filter_map(|file| std::fs::read_to_string(lade.dir.path().join(file)).ok())
        .map(|pid| pid.trim().to_string())
        .collect();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) || kept.contains(&pid) {
            continue;
        }
        let Ok(meta) = std::fs::metadata(entry.path()) else {
            continue;
        };
        if meta.uid() != lade.uid {
            continue;
        }
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        let ours = environ
            .split(|b| *b == 0)
            .any(|variable| variable == marker.as_bytes());
        let state = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let zombie = state
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
        if ours && !zombie {
            let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            found.push(format!("{pid} {}", comm.trim()));
        }
    }
    found
}

/// The pids of this test's processes named `comm` (its runtime directory in their
/// environment tells them from other tests' of the same user).
fn ours_named(lade: &RootlessLade, names: &[&str]) -> Vec<i32> {
    let marker = format!("XDG_RUNTIME_DIR={}", lade.dir.path().join("run").display());
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let pid: i32 = entry.file_name().to_string_lossy().parse().ok()?;
            let comm = std::fs::read_to_string(entry.path().join("comm")).ok()?;
            let state = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let zombie = state
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
            let environ = std::fs::read(entry.path().join("environ")).ok()?;
            let ours = environ
                .split(|b| *b == 0)
                .any(|variable| variable == marker.as_bytes());
            (ours && !zombie && names.contains(&comm.trim())).then_some(pid)
        })
        .collect()
}

#[test]
fn the_way_out_comes_back_after_its_helper_or_the_pause_process_is_killed() {
    let lade = RootlessLade::new();
    lade.busybox();
    lade.ok(&["network", "create", "back"]);
    let address = host_address();
    let port = serve_page_on_host(address, "still-out\n");
    let url = format!("http://{address}:{port}/");
    let fetch = || {
        lade.ok(&[
            "run",
            "--rm",
            "--network",
            "back",
            "busybox",
            "wget",
            "-q",
            "-O",
            "-",
            &url,
        ])
    };
    let helpers = || ours_named(&lade, &["pasta", "pasta.avx2", "passt", "passt.avx2"]);
    assert_eq!(fetch(), "still-out\n");
    let first = helpers();
    assert_eq!(first.len(), 1, "one pasta for the namespace: {first:?}");
    // Its pasta killed: the next command attaches a new one. The test goes on as soon
    // as the killed pasta has lost its memory (its environment is unreadable), which is
    // before it has closed its files: the next command meets a helper still exiting,
    // its tap device still there, and must wait for it rather than take it for running.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    common::wait_until("the killed pasta to lose its memory", || {
        helpers().is_empty()
    });
    assert_eq!(fetch(), "still-out\n");
    let second = helpers();
    assert_eq!(second.len(), 1, "{second:?}");
    assert_ne!(second, first);
    // The pause process killed: its mount namespace, where the namespace was mounted,
    // goes; the next command makes the namespace anew and stops the old pasta.
    let pause: i32 = std::fs::read_to_string(lade.dir.path().join("run/lade/pause.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pause),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    common::wait_until("the killed pause process to end", || {
        ours_named(&lade, &["lade-pause"]).is_empty()
    });
    assert_eq!(fetch(), "still-out\n");
    common::wait_until("one pasta left for the namespace", || helpers().len() == 1);
    lade.ok(&["network", "rm", "back"]);
}

#[test]
fn a_container_on_a_user_network_reaches_the_host_and_names_outside() {
    let lade = RootlessLade::new();
    lade.busybox();
    lade.ok(&["network", "create", "outward"]);
    let address = host_address();
    let port = serve_page_on_host(address, "from-the-host\n");
    // The listener is bound before the container starts: no wait.
    let fetched = lade.ok(&[
        "run",
        "--rm",
        "--network",
        "outward",
        "busybox",
        "wget",
        "-q",
        "-O",
        "-",
        &format!("http://{address}:{port}/"),
    ]);
    assert_eq!(fetched, "from-the-host\n");
    // The host's loopback stays closed: pasta's gateway (10.0.2.2) is not mapped onto
    // it, so a page served on 127.0.0.1 is not fetched through it (the connection goes
    // to whatever 10.0.2.2 is on the host's network, bounded by a timeout).
    let loopback_port = serve_page_on_host(std::net::Ipv4Addr::LOCALHOST, "from-loopback\n");
    let loopback = lade.ok(&[
        "run",
        "--rm",
        "--network",
        "outward",
        "busybox",
        "sh",
        "-c",
        &format!("timeout 5 wget -q -O - http://10.0.2.2:{loopback_port}/ || echo not-reached"),
    ]);
    assert_eq!(loopback.trim(), "not-reached");
    // A name outside: aardvark-dns forwards it through pasta to the host's resolver,
    // which must know it for the answer to be compared.
    let name = "deb.debian.org";
    let on_host = std::process::Command::new("busybox")
        .args(["nslookup", name])
        .output()
        .unwrap();
    let addresses = |text: &str| -> Vec<String> {
        let mut found: Vec<String> = text
            .split("Name:")
            .skip(1)
            .flat_map(|answer| {
                answer
                    .lines()
                    .filter_map(|line| line.strip_prefix("Address: "))
                    .map(|a| a.trim().to_string())
                    .collect::<Vec<_>>()
            })
            .filter(|a| a.parse::<std::net::Ipv4Addr>().is_ok())
            .collect();
        found.sort();
        found
    };
    let expected = addresses(&String::from_utf8_lossy(&on_host.stdout));
    if expected.is_empty() {
        eprintln!("skipped the name outside: the host's resolver does not answer {name}");
    } else {
        let inside = lade.ok(&[
            "run",
            "--rm",
            "--network",
            "outward",
            "busybox",
            "nslookup",
            name,
        ]);
        assert_eq!(addresses(&inside), expected, "{inside}");
    }
    lade.ok(&["network", "rm", "outward"]);
}

#[test]
fn published_ports_on_a_user_network_are_reached_from_the_host_and_let_go_at_stop_or_monitor_death()
{
    let lade = RootlessLade::new();
    lade.busybox();
    lade.ok(&["network", "create", "published"]);
    let port = std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    lade.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &format!("{port}:80"),
        "--network",
        "published",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /www && echo served-from-a-user-network > /www/index.html && exec httpd -f -p 80 -h /www",
    ]);
    assert_eq!(
        lade.ok(&["port", "web"]),
        format!("80/tcp -> 0.0.0.0:{port}\n")
    );
    // The host port listens from the start; httpd may bind after: ask until it answers.
    let url = format!("http://127.0.0.1:{port}/index.html");
    let mut body = String::new();
    common::wait_until("the container's web server behind the user network", || {
        let output = std::process::Command::new("curl")
            .args(["-s", "--max-time", "2", &url])
            .output()
            .unwrap();
        body = String::from_utf8_lossy(&output.stdout).into_owned();
        output.status.success() && !body.is_empty()
    });
    assert_eq!(body, "served-from-a-user-network\n");
    // The host's other addresses too.
    let other = format!("http://{}:{port}/index.html", host_address());
    let output = std::process::Command::new("curl")
        .args(["-s", "--max-time", "5", &other])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "served-from-a-user-network\n"
    );
    // The network goes before the exit is recorded, which `stop` waits for.
    lade.ok(&["stop", "web"]);
    if let Some(holder) = common::listener_on(port) {
        panic!("port {port} is still held after stop: {holder}");
    }
    // It comes back at the next start.
    lade.ok(&["start", "web"]);
    common::wait_until("the container's web server after its restart", || {
        std::process::Command::new("curl")
            .args(["-s", "--max-time", "2", &url])
            .output()
            .is_ok_and(|output| output.stdout == b"served-from-a-user-network\n")
    });
    // A monitor killed with -9 takes the forwarder, and so its port, with it.
    let init: i32 = lade
        .ok(&["inspect", "-f", "{{.State.Pid}}", "web"])
        .trim()
        .parse()
        .unwrap();
    common::kill_monitor_of(init);
    if let Some(holder) = common::listener_on(port) {
        panic!("port {port} is still held after the monitor was killed: {holder}");
    }
    lade.ok(&["ps", "-a"]);
    lade.ok(&["rm", "-f", "web"]);
    lade.ok(&["network", "rm", "published"]);
}

#[test]
fn a_compose_project_runs_rootless_and_down_leaves_nothing() {
    let lade = RootlessLade::new();
    lade.busybox();
    let port = std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The client starts once `web` is healthy (its check fetched the page), finds it
    // by name (nslookup: busybox-static's wget crashes on a name) and fetches the page.
    let compose = lade.file(
        "app/compose.yaml",
        &format!(
            "name: rlapp\nservices:\n  web:\n    image: busybox\n    command: sh -c 'mkdir -p /www && echo served-to-compose > /www/index.html && exec httpd -f -p 80 -h /www'\n    ports: ['{port}:80']\n    healthcheck:\n      test: wget -q -O /dev/null http://127.0.0.1/index.html\n      interval: 1s\n      start_interval: 200ms\n      start_period: 30s\n  client:\n    image: busybox\n    depends_on:\n      web: {{condition: service_healthy}}\n    command:\n      - sh\n      - -c\n      - |\n        addr=$$(nslookup web | sed -n 's/^Address: //p' | tail -n1)\n        wget -q -O - http://$$addr/index.html\n"
        ),
    );
    let file = compose.display().to_string();
    lade.ok(&["compose", "-f", &file, "up", "-d"]);
    let url = format!("http://127.0.0.1:{port}/index.html");
    common::wait_until("the project's web server from the host", || {
        std::process::Command::new("curl")
            .args(["-s", "--max-time", "2", &url])
            .output()
            .is_ok_and(|output| output.stdout == b"served-to-compose\n")
    });
    let client = lade.ok(&[
        "ps",
        "-aq",
        "--filter",
        "label=com.docker.compose.service=client",
    ]);
    let client = client.trim().to_string();
    assert!(!client.is_empty(), "no client container");
    assert_eq!(lade.ok(&["wait", &client]).trim(), "0");
    assert_eq!(lade.ok(&["logs", &client]), "served-to-compose\n");
    lade.ok(&["compose", "-f", &file, "down"]);
    assert_eq!(lade.ok(&["ps", "-aq"]), "");
    if let Some(holder) = common::listener_on(port) {
        panic!("port {port} is still held after down: {holder}");
    }
    let left = strays(&lade);
    assert!(left.is_empty(), "processes left after down: {left:?}");
    // The namespace's way out is still there, for the next project.
    let helper = std::fs::read_to_string(lade.dir.path().join("run/lade/rootless-netns.pid"))
        .expect("the rootless network namespace's helper's pid file");
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", helper.trim())).unwrap();
    assert!(comm.starts_with("pas"), "{comm}");
}

#[test]
fn exec_reaches_a_running_container_after_the_pause_process_is_killed() {
    let lade = RootlessLade::new();
    lade.busybox();
    lade.ok(&["run", "-d", "--name", "lasting", "busybox", "sleep", "300"]);
    let pid_file = lade.dir.path().join("run/lade/pause.pid");
    let pause: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // What tells its user namespace from a later one with the same inode number.
    let recorded = std::fs::read_to_string(lade.dir.path().join("run/lade/pause.ns")).unwrap();
    let identity = recorded.lines().nth(2).unwrap_or_default();
    assert!(
        identity.starts_with("boot ") && identity.contains(&format!(" uids 0 {} 1 ", lade.uid)),
        "{recorded}"
    );
    let pause = nix::unistd::Pid::from_raw(pause);
    nix::sys::signal::kill(pause, nix::sys::signal::Signal::SIGKILL).unwrap();
    // Reaped by init once it is gone: until then its pid names a zombie.
    common::wait_until("the pause process to end", || {
        std::fs::read_to_string(format!("/proc/{pause}/stat"))
            .map_or(true, |stat| stat.contains(") Z") || stat.contains(") X"))
    });
    assert_eq!(
        lade.ok(&["exec", "lasting", "echo", "still-here"]).trim(),
        "still-here"
    );
    let adopted = std::fs::read_to_string(&pid_file).unwrap();
    assert_ne!(
        adopted.trim(),
        pause.to_string(),
        "a new pause process holds the namespace"
    );
    lade.ok(&["rm", "-f", "lasting"]);
}

#[test]
fn a_cache_mount_keeps_files_of_other_owners_between_builds() {
    let lade = RootlessLade::new();
    lade.busybox();
    lade.file(
        "ctx/Dockerfile",
        "FROM busybox\nARG RUN_ID\n\
         RUN --mount=type=cache,target=/cache,id=kept \\\n\
         ls -n /cache | awk 'NR > 1 {print $3, $9}' > /seen \\\n\
         && touch /cache/$RUN_ID && chown 1000:1000 /cache/$RUN_ID\n\
         CMD [\"cat\", \"/seen\"]\n",
    );
    for run in ["first", "second"] {
        let arg = format!("RUN_ID={run}");
        lade.ok(&["build", "-q", "--build-arg", &arg, "-t", run, "ctx"]);
    }
    assert_eq!(lade.ok(&["run", "--rm", "--network", "none", "first"]), "");
    assert_eq!(
        lade.ok(&["run", "--rm", "--network", "none", "second"]),
        "1000 first\n"
    );
}

#[test]
fn push_then_pull_into_a_fresh_store_keeps_owners() {
    common::require_tool("docker-registry");
    let registry = crate::registry::Registry::start(None);
    let lade = RootlessLade::new();
    lade.busybox();
    lade.file("ctx/Dockerfile", SECOND_USER_DOCKERFILE);
    lade.ok(&["build", "-q", "-t", "second:1", "ctx"]);
    let name = format!("{}/rootless/second:1", registry.host());
    lade.ok(&["push", "-q", "second:1", &name]);
    let other = RootlessLade::new();
    other.ok(&["pull", "-q", &name]);
    assert_eq!(
        other.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            &name,
            "stat",
            "-c",
            "%u:%g:%a",
            "/home/bob/f",
        ]),
        "1000:1000:640\n"
    );
    // In the fresh store too the file lands on the range.
    let meta = std::fs::metadata(in_snapshots(&other.store(), "home/bob/f")).unwrap();
    let start = test_user().range_start;
    assert_eq!((meta.uid(), meta.gid()), (start + 999, start + 999));
}

#[test]
fn system_migrate_ends_the_namespace_once_containers_stop() {
    let lade = RootlessLade::new();
    lade.busybox();
    lade.ok(&[
        "run",
        "-d",
        "--name",
        "busy",
        "--network",
        "none",
        "busybox",
        "sleep",
        "300",
    ]);
    let stderr = lade.fails(&["system", "migrate"]);
    assert!(
        stderr.contains("containers still run") && stderr.contains("busy"),
        "{stderr}"
    );
    lade.ok(&["rm", "-f", "busy"]);
    let pid_file = lade.dir.path().join("run/lade/pause.pid");
    let namespace = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/user")).unwrap();
    let old_pid = std::fs::read_to_string(&pid_file).unwrap();
    let old = namespace(old_pid.trim());
    lade.ok(&["system", "migrate"]);
    lade.ok(&["run", "--rm", "--network", "none", "busybox", "true"]);
    let new_pid = std::fs::read_to_string(&pid_file).unwrap();
    assert_ne!(namespace(new_pid.trim()), old, "a new user namespace");
}

#[test]
fn info_shows_rootless_the_mapping_and_the_driver() {
    let lade = RootlessLade::new();
    let info: serde_json::Value =
        serde_json::from_str(&lade.ok(&["info", "--format", "json"])).unwrap();
    let user = test_user();
    assert_eq!(info["Rootless"], true);
    assert_eq!(info["Driver"], "overlay");
    assert_eq!(
        info["DockerRootDir"].as_str().unwrap(),
        lade.store().to_str().unwrap()
    );
    let uid_map = &info["RootlessIDMappings"]["UIDMap"];
    assert_eq!(uid_map[0]["ContainerID"], 0);
    assert_eq!(uid_map[0]["HostID"], user.uid);
    assert_eq!(uid_map[1]["ContainerID"], 1);
    assert_eq!(uid_map[1]["HostID"], user.range_start);
    assert!(
        info["RootlessNetworkTool"]
            .as_str()
            .unwrap()
            .starts_with("pasta"),
        "{info}"
    );
    // The test process is in no delegated cgroup v2 subtree: limits are off, and why.
    assert_eq!(info["RootlessCgroup"]["Limits"], "off", "{info}");
    assert!(
        info["RootlessCgroup"]["Reason"]
            .as_str()
            .unwrap()
            .contains("delegated"),
        "{info}"
    );
    // Root's lade says it is not rootless.
    let root = common::Lade::new();
    let info: serde_json::Value =
        serde_json::from_str(&root.ok(&["info", "--format", "json"])).unwrap();
    assert_eq!(info["Rootless"], false);
}

#[test]
fn security_settings_hold_inside_the_user_namespace() {
    let lade = RootlessLade::new();
    lade.busybox();
    let status = lade.ok(&[
        "run", "--rm", "--network", "none", "busybox", "sh", "-c",
        "grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; wc -c < /proc/keys; mount -t tmpfs none /mnt 2>/dev/null || echo no-mount",
    ]);
    // Docker's default capabilities, as for root's containers.
    assert_eq!(
        status,
        "CapEff:\t00000000a80425fb\nNoNewPrivs:\t1\nSeccomp:\t2\n0\nno-mount\n"
    );
}

#[test]
fn a_build_runs_steps_with_the_hosts_network_view() {
    let lade = RootlessLade::new();
    lade.busybox();
    lade.file(
        "ctx/Dockerfile",
        // The host's cgroup tree (where the user's own cgroups are the namespace
        // root's to write) is hidden under an empty read-only tmpfs.
        "FROM busybox\nRUN ls /sys/class/net > /nets && test -s /nets && ! touch /sys/x 2>/dev/null \
         && test -z \"$(ls /sys/fs/cgroup)\" && ! mkdir /sys/fs/cgroup/x 2>/dev/null\n",
    );
    lade.ok(&["build", "--progress", "plain", "-t", "nets:1", "ctx"]);
}

#[test]
fn without_a_range_only_the_users_own_id_is_mapped() {
    common::require_root();
    let lade = RootlessLade::for_ids(NOBODY, NOBODY);
    let output = lade.output(&["info", "--format", "json"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("only your own id is mapped") && stderr.contains("usermod --add-subuids"),
        "{stderr}"
    );
    let info: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        info["RootlessIDMappings"]["UIDMap"],
        serde_json::json!([{"ContainerID": 0, "HostID": NOBODY, "Size": 1}])
    );
}

#[test]
fn a_missing_newuidmap_names_the_package() {
    let lade = RootlessLade::new();
    let output = lade
        .cmd()
        .env("PATH", "/nonexistent")
        .arg("images")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("newuidmap is not installed") && stderr.contains("apt-get install uidmap"),
        "{stderr}"
    );
}

/// A root file system tarball with the device node `dev/mynull` and a file `kept`.
fn tar_with_a_device_node() -> Vec<u8> {
    let mut archive = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind: tar::EntryType, data: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        if kind == tar::EntryType::Char {
            header.set_device_major(1).unwrap();
            header.set_device_minor(3).unwrap();
        }
        archive.append_data(&mut header, path, data).unwrap();
    };
    add("bin/", tar::EntryType::Directory, b"");
    add("dev/", tar::EntryType::Directory, b"");
    add("dev/mynull", tar::EntryType::Char, b"");
    add("kept", tar::EntryType::Regular, b"kept\n");
    archive.into_inner().unwrap()
}

#[test]
fn device_nodes_in_an_image_are_left_out() {
    let lade = RootlessLade::new();
    let image = lade.work().join("devices.tar");
    std::fs::write(&image, tar_with_a_device_node()).unwrap();
    let output = lade.output(&["import", "--progress", "quiet", "devices.tar", "devices:1"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("left out 1 device node(s)") && stderr.contains("dev/mynull"),
        "{stderr}"
    );
    let exported = lade.ok(&["create", "--name", "dev", "devices:1", "/none"]);
    assert!(!exported.trim().is_empty());
    lade.ok(&["cp", "dev:/kept", "kept.out"]);
    assert_eq!(
        std::fs::read_to_string(lade.work().join("kept.out")).unwrap(),
        "kept\n"
    );
    let stderr = lade.fails(&["cp", "dev:/dev/mynull", "node.out"]);
    assert!(stderr.contains("mynull"), "{stderr}");
}

/// An image root made with a device node, pushed and saved: a rootless `pull` and
/// `load` each tell of the node they leave out, as `import` does.
#[test]
fn pull_and_load_tell_of_the_device_nodes_they_leave_out() {
    common::require_tool("docker-registry");
    let registry = crate::registry::Registry::start(None);
    let root = common::Lade::new();
    let tarball = root.dir.path().join("devices.tar");
    std::fs::write(&tarball, tar_with_a_device_node()).unwrap();
    root.ok(&[
        "import",
        "--progress",
        "quiet",
        tarball.to_str().unwrap(),
        "devices:1",
    ]);
    let name = format!("{}/rootless/devices:1", registry.host());
    root.ok(&["push", "-q", "devices:1", &name]);
    let lade = RootlessLade::new();
    let saved = lade.work().join("devices-image.tar");
    root.ok(&["save", "-o", saved.to_str().unwrap(), "devices:1"]);
    std::fs::set_permissions(&saved, std::fs::Permissions::from_mode(0o644)).unwrap();
    let told = |output: std::process::Output| {
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{stderr}");
        assert!(
            stderr.contains("note: left out 1 device node(s)") && stderr.contains("dev/mynull"),
            "{stderr}"
        );
    };
    told(lade.output(&["pull", "-q", &name]));
    let other = RootlessLade::new();
    std::fs::copy(&saved, other.work().join("devices-image.tar")).unwrap();
    told(other.output(&["load", "-q", "-i", "devices-image.tar"]));
    // The rest of the image is there.
    other.ok(&["create", "--name", "dev", "devices:1", "/none"]);
    other.ok(&["cp", "dev:/kept", "kept.out"]);
    assert_eq!(
        std::fs::read_to_string(other.work().join("kept.out")).unwrap(),
        "kept\n"
    );
}

#[test]
fn an_interactive_run_gets_a_terminal() {
    let lade = RootlessLade::new();
    lade.busybox();
    common::require_tool("script");
    let command = format!(
        "{} run --rm -it --network none busybox sh -c 'tty; exit 3'",
        assert_cmd::cargo::cargo_bin("lade").display()
    );
    let output = lade
        .as_user("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("/dev/pts/"), "{stdout}");
    assert_eq!(output.status.code(), Some(3), "{stdout}");
}

#[test]
fn without_xdg_runtime_dir_runtime_files_go_to_a_private_directory_under_tmp() {
    let lade = RootlessLade::new();
    let fallback = PathBuf::from(format!("/tmp/lade-run-{}", lade.uid));
    let output = lade
        .cmd()
        .env_remove("XDG_RUNTIME_DIR")
        .arg("images")
        .output()
        .unwrap();
    let pause = std::fs::read_to_string(fallback.join("pause.pid")).unwrap_or_default();
    let meta = std::fs::metadata(&fallback);
    // Its pause process goes now, whatever the checks below say.
    if let Ok(pid) = pause.trim().parse::<i32>() {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "lade-pause" {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let meta = meta.expect("the fallback runtime directory");
    assert_eq!((meta.uid(), meta.mode() & 0o777), (lade.uid, 0o700));
    let _ = std::fs::remove_dir_all(&fallback);
}

/// A cgroup v2 directory handed to the test user as systemd's `Delegate=yes` leaves
/// one: the directory, `cgroup.procs`, `cgroup.subtree_control` and `cgroup.threads`
/// are the user's. Dropping it moves what is left in it (and below) back to the root
/// cgroup and removes it, on failure too.
struct DelegatedCgroup {
    mount: PathBuf,
    dir: PathBuf,
}

impl DelegatedCgroup {
    /// One under this machine's cgroup v2 mount.
    fn new(uid: u32, gid: u32) -> DelegatedCgroup {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let mount = mountinfo
            .lines()
            .find_map(|line| {
                let (left, right) = line.split_once(" - ")?;
                right
                    .starts_with("cgroup2 ")
                    .then(|| PathBuf::from(left.split(' ').nth(4).unwrap()))
            })
            .expect("a cgroup v2 mount (this machine's is /sys/fs/cgroup/unified)");
        let dir = mount.join(format!("lade-test-delegated-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        let delegated = DelegatedCgroup { mount, dir };
        for file in [
            "",
            "cgroup.procs",
            "cgroup.subtree_control",
            "cgroup.threads",
        ] {
            std::os::unix::fs::chown(delegated.dir.join(file), Some(uid), Some(gid)).unwrap();
        }
        delegated
    }

    /// Runs rootless lade with `args` in the delegated cgroup, as a process of a unit
    /// with `Delegate=yes` starts in its cgroup: a shell of the user waits on its stdin
    /// until root has moved it there, then becomes lade.
    fn lade(&self, lade: &RootlessLade, args: &[&str]) -> std::process::Output {
        use std::io::Write;
        let mut child = lade
            .as_user("sh")
            .args(["-c", "read _ && exec \"$@\"", "sh"])
            .arg(assert_cmd::cargo::cargo_bin("lade"))
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("sh runs");
        std::fs::write(self.dir.join("cgroup.procs"), child.id().to_string()).unwrap();
        child.stdin.take().unwrap().write_all(b"go\n").unwrap();
        child.wait_with_output().unwrap()
    }

    fn ok(&self, lade: &RootlessLade, args: &[&str]) -> String {
        let output = self.lade(lade, args);
        assert!(
            output.status.success(),
            "rootless lade {args:?} in {} failed ({}):\n{}",
            self.dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn fails(&self, lade: &RootlessLade, args: &[&str]) -> String {
        let output = self.lade(lade, args);
        assert!(
            !output.status.success(),
            "rootless lade {args:?} should have failed:\n{}",
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    }

    /// A process's cgroup v2 directory, from `/proc/PID/cgroup`.
    fn of_process(&self, pid: &str) -> PathBuf {
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        let path = text
            .lines()
            .find_map(|line| line.strip_prefix("0::"))
            .unwrap();
        self.mount.join(path.trim_start_matches('/'))
    }

    fn procs(dir: &Path) -> String {
        std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default()
    }
}

impl Drop for DelegatedCgroup {
    fn drop(&mut self) {
        // Children first: each one's processes back to the root cgroup, then rmdir.
        let mut dirs: Vec<PathBuf> = walkdir::WalkDir::new(&self.dir)
            .into_iter()
            .flatten()
            .filter(|entry| entry.file_type().is_dir())
            .map(|entry| entry.into_path())
            .collect();
        dirs.sort_by_key(|dir| std::cmp::Reverse(dir.components().count()));
        for dir in dirs {
            for _ in 0..100 {
                for pid in DelegatedCgroup::procs(&dir).split_whitespace() {
                    let _ = std::fs::write(self.mount.join("cgroup.procs"), pid);
                }
                if std::fs::remove_dir(&dir).is_ok() || !dir.exists() {
                    break;
                }
                // A process the kernel has not finished tearing down holds it a moment.
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }
}

#[test]
fn a_delegated_cgroup_v2_subtree_holds_the_containers_cgroups() {
    let user = test_user();
    let delegated = DelegatedCgroup::new(user.uid, user.gid);
    let lade = RootlessLade::new();
    lade.busybox();
    let id = delegated
        .ok(
            &lade,
            &[
                "run",
                "-d",
                "--name",
                "held",
                "--network",
                "none",
                "busybox",
                "sleep",
                "300",
            ],
        )
        .trim()
        .to_string();
    let pid = lade.ok(&["inspect", "-f", "{{.State.Pid}}", "held"]);
    let container = delegated.dir.join("lade").join(&id);
    assert_eq!(delegated.of_process(pid.trim()), container);
    // The subtree's own processes went to a leaf, as cgroup v2 asks of a cgroup that
    // hands controllers to its children.
    assert_eq!(DelegatedCgroup::procs(&delegated.dir), "");
    assert!(
        !DelegatedCgroup::procs(&delegated.dir.join("lade-leaf")).is_empty(),
        "the monitor is in the leaf"
    );
    // A command in another cgroup finds it (recorded), to pause and list it.
    lade.ok(&["pause", "held"]);
    let events = std::fs::read_to_string(container.join("cgroup.events")).unwrap();
    assert!(events.lines().any(|l| l == "frozen 1"), "{events}");
    lade.ok(&["unpause", "held"]);
    let events = std::fs::read_to_string(container.join("cgroup.events")).unwrap();
    assert!(events.lines().any(|l| l == "frozen 0"), "{events}");
    assert!(lade.ok(&["top", "held"]).contains("sleep"));
    // A process entered from a shell in the subtree joins the container's cgroup.
    let entered = delegated.ok(&lade, &["exec", "held", "cat", "/proc/self/cgroup"]);
    // (Seen from the container's cgroup namespace, rooted at its cgroup.)
    assert!(entered.lines().any(|l| l == "0::/"), "{entered}");
    // One from a shell outside it cannot join it (the kernel wants the user to own the
    // cgroup both share): it runs in the caller's, as with runc and crun.
    let outside = lade.ok(&["exec", "held", "cat", "/proc/self/cgroup"]);
    assert!(
        outside.lines().any(|l| l.starts_with("0::/..")),
        "{outside}"
    );
    // This machine's v2 tree has no controllers to delegate: limits name the one missing.
    let stderr = delegated.fails(
        &lade,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--memory",
            "10m",
            "busybox",
            "true",
        ],
    );
    assert!(
        stderr.contains("--memory needs the memory cgroup controller")
            && stderr.contains(delegated.dir.to_str().unwrap())
            && stderr.contains("Delegate=cpu cpuset io memory pids"),
        "{stderr}"
    );
    let stderr = lade.fails(&["update", "--pids-limit", "10", "held"]);
    assert!(
        stderr.contains("--pids-limit needs the pids cgroup controller"),
        "{stderr}"
    );
    let info: serde_json::Value =
        serde_json::from_str(&delegated.ok(&lade, &["info", "--format", "json"])).unwrap();
    assert_eq!(
        info["RootlessCgroup"]["Delegated"].as_str(),
        delegated.dir.to_str(),
        "{info}"
    );
    lade.ok(&["rm", "-f", "held"]);
    assert!(!container.exists(), "the container's cgroup went with it");
}

#[test]
fn a_monitor_outside_a_delegated_subtree_asks_the_users_systemd_for_a_scope() {
    let lade = RootlessLade::new();
    lade.busybox();
    // A user manager's socket, and a `systemd-run` that records how it was asked and
    // runs the command where it is (this machine has no systemd to make the scope).
    let systemd = lade.dir.path().join("run/systemd");
    std::fs::create_dir(&systemd).unwrap();
    std::fs::write(systemd.join("private"), "").unwrap();
    let bin = lade.work().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let asked = lade.work().join("systemd-run.args");
    lade.file(
        "bin/systemd-run",
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > {}\n\
             while [ \"$1\" != -- ]; do shift; done\nshift\nexec \"$@\"\n",
            asked.display()
        ),
    );
    std::fs::set_permissions(
        bin.join("systemd-run"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let run = |args: &[&str]| lade.cmd().env("PATH", &path).args(args).output().unwrap();
    // Without limits no scope is asked for.
    let output = run(&["run", "-d", "--network", "none", "busybox", "sleep", "300"]);
    assert!(output.status.success(), "{output:?}");
    assert!(!asked.exists(), "a container without limits needs no scope");
    let output = run(&[
        "run",
        "-d",
        "--network",
        "none",
        "--pids-limit",
        "5",
        "busybox",
        "sleep",
        "300",
    ]);
    let args = std::fs::read_to_string(&asked).unwrap();
    assert!(
        args.starts_with("--user\n--scope\n") && args.contains("-p\nDelegate=yes\n--\n"),
        "{args}"
    );
    // The stand-in made no delegated scope: the monitor says so.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success()
            && stderr.contains("no pids cgroup controller for rootless lade")
            && stderr.contains("no subtree delegated to the user"),
        "{stderr}"
    );
    // A systemd-run that cannot make the scope: what it says is in the monitor's log.
    lade.file(
        "bin/systemd-run",
        "#!/bin/sh\necho 'Failed to connect to bus: No medium found' >&2\nexit 1\n",
    );
    let output = run(&[
        "run",
        "-d",
        "--name",
        "unscoped",
        "--network",
        "none",
        "--pids-limit",
        "5",
        "busybox",
        "true",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("ended before the container started"),
        "{stderr}"
    );
    let id = lade.ok(&["inspect", "-f", "{{.Id}}", "unscoped"]);
    let log = lade
        .store()
        .join("containers")
        .join(id.trim())
        .join("monitor.log");
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("Failed to connect to bus"), "{log}");
}

/// The user's fuse-overlayfs processes (none must outlive a command).
fn fuse_overlayfs_processes(lade: &RootlessLade) -> Vec<String> {
    let home = lade.dir.path().to_string_lossy().into_owned();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains("fuse-overlayfs") && cmdline.contains(&home) {
            found.push(cmdline);
        }
    }
    found
}

#[test]
fn fuse_overlayfs_serves_builds_runs_commits_and_leaves_no_process() {
    common::require_tool("fuse-overlayfs");
    let lade = RootlessLade::new();
    lade.busybox();
    let with_fuse = |args: &[&str]| -> String {
        let output = lade
            .cmd()
            .env("LADE_STORAGE_DRIVER", "fuse-overlayfs")
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "lade {args:?} with fuse-overlayfs failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let info: serde_json::Value =
        serde_json::from_str(&with_fuse(&["info", "--format", "json"])).unwrap();
    assert_eq!(info["Driver"], "fuse-overlayfs", "{info}");
    lade.file(
        "ctx/Dockerfile",
        "FROM busybox\nRUN mkdir -p /data/old && echo a > /data/old/f && echo gone > /gone\n\
         RUN rm /gone && rm -rf /data && mkdir /data && echo new > /data/new\n",
    );
    with_fuse(&["build", "--progress", "plain", "-t", "fused:1", "ctx"]);
    let listing =
        "ls -A /data; test -e /gone && echo gone-is-there; ps | grep -c [f]use-overlayfs; true";
    let check = |image: &str| {
        let shown = with_fuse(&["run", "--rm", image, "sh", "-c", listing]);
        // The file is gone, the directory holds only what the step put there, and the
        // fuse-overlayfs process is not among the container's.
        assert_eq!(shown, "new\n0\n", "{image}");
    };
    check("fused:1");
    with_fuse(&[
        "run",
        "--name",
        "changer",
        "fused:1",
        "sh",
        "-c",
        "echo more > /data/more",
    ]);
    with_fuse(&["commit", "changer", "fused:2"]);
    assert_eq!(
        with_fuse(&["run", "--rm", "fused:2", "ls", "-A", "/data"]),
        "more\nnew\n"
    );
    with_fuse(&["save", "-o", "fused.tar", "fused:1"]);
    with_fuse(&["rm", "changer"]);
    with_fuse(&["rmi", "fused:1", "fused:2"]);
    with_fuse(&["load", "-i", "fused.tar"]);
    check("fused:1");
    assert_eq!(fuse_overlayfs_processes(&lade), Vec::<String>::new());
}
