//! What an attacker or a careless user could do to lade, and what must hold: the store
//! is closed to other users, bind mounts stay inside the context, closed pipes end
//! quietly, other users are told whose store it is.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use common::{Context, Lade};

const NOBODY: u32 = 65534;

/// A command that runs as uid/gid 65534 with no supplementary groups (std drops them
/// when it changes the uid) and no capabilities (they go with the uid change).
fn as_nobody(program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
    let mut cmd = std::process::Command::new(program);
    cmd.uid(NOBODY).gid(NOBODY).current_dir("/");
    cmd
}

/// A lade whose store lies under a directory every user may enter, as `/var/lib` is.
fn lade_under_open_dir() -> Lade {
    let lade = Lade::new();
    std::fs::set_permissions(lade.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    lade
}

fn find_in_snapshots(root: &Path, name: &str) -> PathBuf {
    for entry in std::fs::read_dir(root.join("snapshots")).unwrap() {
        let candidate = entry.unwrap().path().join(name);
        if candidate.symlink_metadata().is_ok() {
            return candidate;
        }
    }
    panic!("no snapshot holds {name}");
}

#[test]
fn setuid_files_and_device_nodes_in_the_store_are_out_of_other_users_reach() {
    let lade = lade_under_open_dir();
    lade.busybox();
    let context = Context::new(
        "FROM busybox\nRUN cp /bin/busybox /suid && chmod 4755 /suid && mknod /blk b 7 0\n",
    );
    lade.build(context.path(), &["-t", "suid:1"]);
    let suid = find_in_snapshots(&lade.root(), "suid");
    let blk = find_in_snapshots(&lade.root(), "blk");
    assert_eq!(
        std::fs::metadata(&suid).unwrap().permissions().mode() & 0o4000,
        0o4000,
        "the image's setuid bit is kept in its snapshot (this test relies on it)"
    );

    let ran = as_nobody("/bin/sh")
        .arg("-c")
        .arg(format!("exec '{}' id -u", suid.display()))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&ran.stdout);
    assert!(
        !ran.status.success() && !stdout.contains('0'),
        "uid 65534 ran the image's setuid binary from the store: {stdout}"
    );
    let probe = as_nobody("/bin/sh")
        .arg("-c")
        .arg(format!(
            "test -e '{}' && echo reached-blk; test -e '{}' && echo reached-suid; ls '{}' && echo listed",
            blk.display(),
            suid.display(),
            lade.root().display()
        ))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&probe.stdout);
    assert!(
        !out.contains("reached") && !out.contains("listed"),
        "another user reached the store: {out}"
    );
    let mode = std::fs::metadata(lade.root()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "the store root is mode {mode:o}");
}

#[test]
fn an_existing_open_store_is_closed_when_lade_opens_it() {
    let lade = lade_under_open_dir();
    lade.ok(&["images"]);
    std::fs::set_permissions(lade.root(), std::fs::Permissions::from_mode(0o755)).unwrap();
    lade.ok(&["images"]);
    let mode = std::fs::metadata(lade.root()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "the store root was left at {mode:o}");
}

#[test]
fn another_user_is_told_whose_store_it_is() {
    let lade = lade_under_open_dir();
    lade.ok(&["images"]);
    let output = as_nobody(assert_cmd::cargo::cargo_bin("lade"))
        .env("LADE_ROOT", lade.root())
        .arg("images")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("belongs to root") && stderr.contains("--root"),
        "{stderr}"
    );
}

#[test]
fn bind_mounts_of_a_relative_context_stay_in_the_context() {
    let lade = Lade::new();
    lade.busybox();
    let context = Context::new(
        "FROM busybox\n\
         RUN --mount=type=bind,target=/h ls /h > /from-default\n\
         RUN --mount=type=bind,source=.,target=/h ls /h > /from-dot\n\
         RUN --mount=type=bind,source=/,target=/h ls /h > /from-slash\n\
         RUN --mount=type=bind,source=ctxfile,target=/h3 cat /h3 > /from-file\n\
         CMD cat /from-default /from-dot /from-slash /from-file\n",
    );
    context.file("ctxfile", "the context's file\n");
    let output = lade
        .cmd()
        .current_dir(context.path())
        .args(["build", "--progress", "plain", "-t", "bind:1", "."])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listing = lade.ok(&["run", "--rm", "bind:1"]);
    assert_eq!(
        listing,
        "Dockerfile\nctxfile\n".repeat(3) + "the context's file\n",
        "a bind mount showed something other than the context"
    );
}

#[test]
fn closed_pipes_end_quietly() {
    let lade = Lade::new();
    lade.busybox();
    for args in [
        &["images"][..],
        &["history", "busybox"],
        &["cache", "ls", "--format", "json"],
        &["inspect", "busybox"],
    ] {
        // The reader is gone before lade writes a byte, as after `| head -c 0`.
        let (read, write) = nix::unistd::pipe().unwrap();
        drop(read);
        let output = lade
            .process()
            .args(args)
            .stdout(std::process::Stdio::from(write))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        use std::os::unix::process::ExitStatusExt;
        let quiet = output.status.success()
            || output.status.signal() == Some(nix::sys::signal::Signal::SIGPIPE as i32);
        assert!(quiet, "lade {args:?}: {}: {stderr}", output.status);
        assert!(stderr.is_empty(), "lade {args:?} printed: {stderr}");
    }
}
