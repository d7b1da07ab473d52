//! The store's integrity through the real CLI: `lade system check` finds a flipped byte
//! in a blob and a changed file in a snapshot and names the images they belong to;
//! `--repair` leaves only images that run; no corrupt blob leaves the store (save,
//! cache export); commands that only read work on a full disk; and `kill -9` at any
//! moment of a build, load, rmi, cache prune or repair leaves a store the check finds
//! clean.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use common::{Context, Lade, Tmpfs};
use serde_json::Value;

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn blob_path(root: &Path, digest: &str) -> PathBuf {
    root.join("oci/blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

/// The last layer of a tagged image: (blob digest, diff_id).
fn top_layer(lade: &Lade, tag: &str) -> (String, String) {
    let root = lade.root();
    let index = read_json(&root.join("oci/index.json"));
    let manifest_digest = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no tag {tag}"))["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let manifest = read_json(&blob_path(&root, &manifest_digest));
    let config = read_json(&blob_path(
        &root,
        manifest["config"]["digest"].as_str().unwrap(),
    ));
    let blob = manifest["layers"].as_array().unwrap().last().unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let diff_id = config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    (blob, diff_id)
}

fn snapshot_dir(lade: &Lade, diff_id: &str) -> PathBuf {
    lade.root()
        .join("snapshots")
        .join(&diff_id.trim_start_matches("sha256:")[..16])
}

fn flip_a_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    // The store keeps blobs read-only for the store's owner; the test is root.
    std::fs::write(path, bytes).unwrap();
}

fn two_apps(lade: &Lade) {
    lade.busybox();
    for name in ["one", "two"] {
        let context = Context::new(&format!(
            "FROM busybox\nRUN echo {name} > /{name} && head -c 300000 /dev/urandom > /{name}.bin\n"
        ));
        lade.build(context.path(), &["-t", &format!("{name}:1")]);
    }
}

#[test]
fn system_check_finds_corruption_names_its_images_and_repair_leaves_images_that_run() {
    let lade = Lade::new();
    two_apps(&lade);
    let clean = lade.output(&["system", "check"]);
    assert!(
        clean.status.success(),
        "{}",
        String::from_utf8_lossy(&clean.stderr)
    );

    let (one_blob, _) = top_layer(&lade, "one:1");
    let (_, two_diff_id) = top_layer(&lade, "two:1");
    flip_a_byte(&blob_path(&lade.root(), &one_blob));
    std::fs::write(snapshot_dir(&lade, &two_diff_id).join("two"), "tampered\n").unwrap();

    let found = lade.output(&["system", "check"]);
    let report = String::from_utf8_lossy(&found.stdout);
    assert_eq!(found.status.code(), Some(1), "{report}");
    assert!(
        report.contains(&format!("blob {one_blob} is corrupt")) && report.contains("one:1"),
        "{report}"
    );
    let snapshot_line = report
        .lines()
        .find(|l| l.contains("snapshot"))
        .unwrap_or_default();
    assert!(
        snapshot_line.contains(&two_diff_id) && snapshot_line.contains("two:1"),
        "{report}"
    );
    let quick = lade.output(&["system", "check", "--quick"]);
    assert!(
        quick.status.success(),
        "--quick reads no content, so it finds neither"
    );

    let repaired = lade.output(&["system", "check", "--repair"]);
    assert!(
        repaired.status.success(),
        "{}",
        String::from_utf8_lossy(&repaired.stderr)
    );
    let after = lade.output(&["system", "check"]);
    assert!(
        after.status.success(),
        "{}",
        String::from_utf8_lossy(&after.stdout)
    );
    let images = lade.ok(&["images"]);
    assert!(!images.contains("one"), "{images}");
    assert_eq!(lade.ok(&["run", "--rm", "two:1", "cat", "/two"]), "two\n");
    assert_eq!(lade.ok(&["run", "--rm", "busybox", "echo", "ok"]), "ok\n");
}

#[test]
fn a_corrupt_blob_never_leaves_the_store() {
    let lade = Lade::new();
    two_apps(&lade);
    let (blob, _) = top_layer(&lade, "one:1");
    flip_a_byte(&blob_path(&lade.root(), &blob));
    let out = tempfile::tempdir().unwrap();
    for format in ["docker", "oci"] {
        let target = out.path().join(format!("{format}.tar"));
        let err = lade.fails(&[
            "save",
            "--format",
            format,
            "-o",
            target.to_str().unwrap(),
            "one:1",
        ]);
        assert!(err.contains(&blob), "save --format {format}: {err}");
        assert!(!target.exists(), "save --format {format} left {target:?}");
    }
    // The cache export reads the RUN step's blob out of the store.
    let context = Context::new(
        "FROM busybox\nRUN echo one > /one && head -c 300000 /dev/urandom > /one.bin\n",
    );
    let cache = out.path().join("cache");
    let err = lade.fails(&[
        "build",
        "--progress",
        "plain",
        "--cache-to",
        cache.to_str().unwrap(),
        context.path().to_str().unwrap(),
    ]);
    assert!(err.contains("does not match its content"), "{err}");
}

#[test]
fn reading_commands_work_on_a_full_disk_and_writes_say_the_disk_is_full() {
    common::require_root();
    let tmpfs = Tmpfs::new("24m");
    let lade = Lade::new();
    let root = tmpfs.dir.path().join("store");
    let lade_on = |args: &[&str]| {
        lade.cmd()
            .env("LADE_ROOT", &root)
            .args(args)
            .output()
            .unwrap()
    };
    common::require_tool("busybox");
    let status = std::process::Command::new(common::repo().join("scripts/busybox-image.sh"))
        .arg(assert_cmd::cargo::cargo_bin("lade"))
        .env("LADE_ROOT", &root)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    // Fill the file system to the last block.
    let _ = std::process::Command::new("dd")
        .args(["if=/dev/zero", "bs=1M"])
        .arg(format!("of={}", tmpfs.dir.path().join("filler").display()))
        .stderr(Stdio::null())
        .status();
    for args in [
        &["images"][..],
        &["history", "busybox"],
        &["inspect", "busybox"],
        &["ps", "-a"],
        &["cache", "ls"],
    ] {
        let output = lade_on(args);
        assert!(
            output.status.success(),
            "lade {args:?} on a full disk: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let output = lade_on(&["tag", "busybox", "more:1"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("no space left on the store's file system"),
        "{stderr}"
    );
    std::fs::remove_file(tmpfs.dir.path().join("filler")).unwrap();
    let output = lade_on(&["system", "check"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn read_only_commands_leave_a_path_without_a_store_alone() {
    let lade = Lade::new();
    let nowhere = lade.dir.path().join("no-store-here");
    let output = lade
        .cmd()
        .env("LADE_ROOT", &nowhere)
        .arg("images")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).lines().count(),
        1,
        "an empty store lists nothing but the header"
    );
    assert!(!nowhere.exists(), "a read-only command created a store");
}

/// Starts `lade args...` and kills it with -9 after `delay`; returns once it is gone.
fn kill_9_after(lade: &Lade, args: &[&str], delay: Duration) {
    let mut child: Child = lade
        .process()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // A moment spread over the command's run, not a wait for readiness: the point is
    // to land the kill anywhere in the middle of the work.
    std::thread::park_timeout(delay);
    let _ = child.kill();
    let _ = child.wait();
}

fn assert_check_clean(lade: &Lade, what: &str) {
    let output = lade.output(&["system", "check"]);
    assert!(
        output.status.success(),
        "after {what}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn kill_9_during_build_load_rmi_prune_and_repair_leaves_a_clean_store() {
    const TRIALS: u64 = 20;
    let lade = Lade::new();
    lade.busybox();
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("busybox.tar");
    lade.ok(&["save", "-o", archive.to_str().unwrap(), "busybox"]);
    let spread = |trial: u64, span_ms: u64| Duration::from_micros(trial * span_ms * 1000 / TRIALS);
    // This test runs for minutes: it says where it is every few trials.
    let progress = |what: &str, trial: u64| {
        if trial.is_multiple_of(5) {
            common::step(format_args!(
                "{what}, trials {} to {} of {TRIALS}",
                trial + 1,
                trial + 5
            ));
        }
    };

    for trial in 0..TRIALS {
        progress("kill -9 during a build", trial);
        let context = Context::new(&format!(
            "FROM busybox\nCOPY data /data\nRUN head -c 2000000 /dev/urandom > /r{trial} && echo {trial}\n"
        ));
        context.file("data", &"x".repeat(1 << 20));
        let path = context.path().to_str().unwrap().to_string();
        kill_9_after(
            &lade,
            &["build", "--progress", "quiet", "-t", "killed:1", &path],
            spread(trial, 1500),
        );
        assert_check_clean(&lade, &format!("build trial {trial}"));
    }
    for trial in 0..TRIALS {
        progress("kill -9 during a load", trial);
        lade.ok(&["rmi", "-f", "busybox"]);
        kill_9_after(
            &lade,
            &["load", "-i", archive.to_str().unwrap()],
            spread(trial, 400),
        );
        assert_check_clean(&lade, &format!("load trial {trial}"));
        lade.ok(&["load", "-i", archive.to_str().unwrap()]);
    }
    for trial in 0..TRIALS {
        progress("kill -9 during an rmi", trial);
        let context = Context::new(&format!(
            "FROM busybox\nRUN head -c 500000 /dev/urandom > /rmi{trial}\n"
        ));
        let tag = format!("victim:{trial}");
        lade.build(context.path(), &["-t", &tag]);
        kill_9_after(&lade, &["rmi", &tag], spread(trial, 150));
        assert_check_clean(&lade, &format!("rmi trial {trial}"));
    }
    for trial in 0..TRIALS {
        progress("kill -9 during a cache prune", trial);
        let context = Context::new(&format!(
            "FROM busybox\nRUN head -c 500000 /dev/urandom > /prune{trial}\n"
        ));
        lade.build(context.path(), &[]);
        kill_9_after(
            &lade,
            &["cache", "prune", "--all", "-f"],
            spread(trial, 150),
        );
        assert_check_clean(&lade, &format!("cache prune trial {trial}"));
    }
    // A repair killed half-way: what it had done holds, and the next repair finishes.
    lade.ok(&["load", "-i", archive.to_str().unwrap()]);
    let context = Context::new("FROM busybox\nRUN echo mended > /mended\n");
    lade.build(context.path(), &["-t", "mended:1"]);
    for trial in 0..TRIALS {
        progress("kill -9 during a repair", trial);
        let (_, diff_id) = top_layer(&lade, "mended:1");
        lade.ok(&["run", "--rm", "mended:1", "true"]);
        std::fs::write(snapshot_dir(&lade, &diff_id).join("mended"), "changed\n").unwrap();
        kill_9_after(&lade, &["system", "check", "--repair"], spread(trial, 100));
        let finish = lade.output(&["system", "check", "--repair"]);
        assert!(finish.status.success(), "repair trial {trial}");
        assert_check_clean(&lade, &format!("repair trial {trial}"));
        assert_eq!(
            lade.ok(&["run", "--rm", "mended:1", "cat", "/mended"]),
            "mended\n"
        );
    }
}

#[test]
fn repair_never_takes_a_containers_files_from_under_it() {
    let lade = Lade::new();
    two_apps(&lade);
    let (_, two_diff_id) = top_layer(&lade, "two:1");
    lade.ok(&["run", "-d", "--name", "standing", "two:1", "sleep", "600"]);
    lade.ok(&["create", "--name", "resting", "two:1", "cat", "/two"]);
    // Changed under the containers (as a careless hand or a bad disk would).
    let snapshot = snapshot_dir(&lade, &two_diff_id);
    std::fs::write(snapshot.join("extra"), "tampered\n").unwrap();

    let repaired = lade.output(&["system", "check", "--repair"]);
    let report = String::from_utf8_lossy(&repaired.stdout);
    assert!(
        snapshot.join("two").is_file(),
        "the snapshot was removed: {report}"
    );
    assert!(
        report.contains("left snapshot")
            && report.contains("standing")
            && report.contains("resting"),
        "{report}"
    );
    assert_eq!(lade.ok(&["exec", "standing", "cat", "/two"]), "two\n");
    lade.ok(&["rm", "-f", "standing"]);
    assert_eq!(lade.ok(&["start", "-a", "resting"]), "two\n");

    // A container whose snapshot went missing anyway is reported, not passed over.
    let moved = lade.dir.path().join("moved-away");
    std::fs::rename(&snapshot, &moved).unwrap();
    let found = lade.output(&["system", "check"]);
    let report = String::from_utf8_lossy(&found.stdout);
    assert!(
        !found.status.success() && report.contains("is missing: container resting"),
        "{report}"
    );
    std::fs::rename(&moved, &snapshot).unwrap();

    // A container whose spec cannot be read may stand on any snapshot: repair then
    // removes none, and says why.
    let db = rusqlite::Connection::open(lade.root().join("lade.db")).unwrap();
    db.execute(
        "UPDATE containers SET spec = '{' WHERE name = 'resting'",
        [],
    )
    .unwrap();
    drop(db);
    let repaired = lade.output(&["system", "check", "--repair"]);
    let report = String::from_utf8_lossy(&repaired.stdout);
    assert!(
        report.contains("container resting: its spec cannot be read"),
        "{report}"
    );
    assert!(
        snapshot.join("two").is_file(),
        "the snapshot was removed: {report}"
    );
}
