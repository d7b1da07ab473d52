//! Smaller holes an attacker's trial of lade found, each attacked through the real CLI:
//! `cp` into a read-only place, `--mount` options taken loosely, a password on the
//! command line, the runtime directory open to every user, a published address the host
//! lacks.

use crate::common;

use std::os::unix::fs::PermissionsExt;

use common::Lade;

/// A port on 127.0.0.1 where nothing listens (just bound and let go).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn login_with_a_password_on_the_command_line_is_warned_against() {
    let lade = Lade::new();
    let registry = format!("127.0.0.1:{}", closed_port());
    let output = lade.output(&["login", "-u", "someone", "-p", "secret", &registry]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("WARNING! Using --password via the CLI is insecure. Use --password-stdin."),
        "no warning about -p:\n{stderr}"
    );
}

#[test]
fn the_runtime_directory_is_closed_to_other_users() {
    let lade = Lade::new();
    lade.busybox();
    // An older lade left it open: a run must close it again.
    if std::path::Path::new("/run/lade").exists() {
        std::fs::set_permissions("/run/lade", std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    lade.ok(&["run", "-d", "--name", "idle", "busybox", "sleep", "1000"]);
    for dir in ["/run/lade", "/run/lade/netns"] {
        let mode = std::fs::metadata(dir)
            .unwrap_or_else(|e| panic!("{dir}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "{dir} is mode {:o}", mode & 0o777);
    }
}

#[test]
fn publishing_on_an_address_the_host_lacks_says_so() {
    let lade = Lade::new();
    lade.busybox();
    let stderr = lade.fails(&["run", "--rm", "-p", "192.0.2.1:18080:80", "busybox", "true"]);
    assert!(
        stderr.contains("cannot publish 192.0.2.1:18080")
            && stderr.contains("the host has no address 192.0.2.1")
            && !stderr.contains("in use"),
        "{stderr}"
    );
}

#[test]
fn mount_options_lade_cannot_honour_are_refused_not_ignored() {
    let lade = Lade::new();
    lade.busybox();
    let host = tempfile::tempdir().unwrap();
    let written = host.path().join("written");
    // "maybe" was taken as read-write: the container wrote to the host directory.
    let mount = format!(
        "type=bind,source={},target=/m,readonly=maybe",
        host.path().display()
    );
    let stderr = lade.fails(&[
        "run",
        "--rm",
        "--mount",
        &mount,
        "busybox",
        "sh",
        "-c",
        "echo x > /m/written",
    ]);
    assert!(stderr.contains("readonly=maybe"), "{stderr}");
    assert!(
        !written.exists(),
        "the container wrote through readonly=maybe"
    );
    // volume-subpath was ignored: the container got the whole volume.
    lade.ok(&["volume", "create", "data"]);
    let stderr = lade.fails(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,source=data,target=/m,volume-subpath=sub",
        "busybox",
        "true",
    ]);
    assert!(stderr.contains("volume-subpath"), "{stderr}");
    // volume-nocopy is honoured: a new volume over /etc stays empty.
    let listing = |mount: &str| {
        lade.ok(&[
            "run", "--rm", "--mount", mount, "busybox", "ls", "-A", "/etc",
        ])
    };
    assert_eq!(
        listing("type=volume,source=bare,target=/etc,volume-nocopy"),
        ""
    );
    assert!(listing("type=volume,source=filled,target=/etc").contains("passwd"));
}

/// `lade cp` of a file larger than a pipe's buffer into a read-only place: the archiving
/// side wrote into a pipe the failed extraction had closed, and lade died of SIGPIPE
/// (exit 141) without a word.
#[test]
fn copying_into_a_read_only_place_fails_with_a_message() {
    let lade = Lade::new();
    lade.busybox();
    let host = tempfile::tempdir().unwrap();
    let shared = tempfile::tempdir().unwrap();
    let big = host.path().join("big");
    std::fs::write(&big, vec![b'x'; 1 << 20]).unwrap();
    let volume = format!("{}:/shared:ro", shared.path().display());
    lade.ok(&[
        "run",
        "-d",
        "--read-only",
        "--name",
        "sealed",
        "busybox",
        "sleep",
        "1000",
    ]);
    lade.ok(&[
        "run", "-d", "--name", "bound", "-v", &volume, "busybox", "sleep", "1000",
    ]);
    let source = big.to_str().unwrap();
    for (destination, named) in [("sealed:/etc/", "/etc"), ("bound:/shared/", "/shared")] {
        let output = lade.output(&["cp", source, destination]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(1),
            "lade cp {destination}: {:?}\n{stderr}",
            output.status
        );
        assert!(
            stderr.contains(named) && stderr.to_lowercase().contains("read-only"),
            "lade cp {destination} should name the read-only destination:\n{stderr}"
        );
    }
    assert!(!shared.path().join("big").exists());
}
