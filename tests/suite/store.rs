//! The store under concurrent use and after `kill -9`: several lade processes on one
//! store all succeed, and a process killed at any moment leaves a store the next command
//! opens and uses, with no blob that does not match its name.

use crate::common;

use std::io::Read;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::{run, Context, Lade};
use sha2::{Digest as _, Sha256};

/// Every blob's content hashes to its file name.
fn assert_blobs_intact(lade: &Lade) {
    let dir = lade.root().join("oci/blobs/sha256");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let entry = entry.unwrap();
        let mut hasher = Sha256::new();
        let mut file = std::fs::File::open(entry.path()).unwrap();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        let hex: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            entry.file_name().to_string_lossy(),
            "a blob does not match its name"
        );
    }
}

fn big_context(tag: &str, megabytes: usize) -> Context {
    let context = Context::new(&format!(
        "FROM busybox\nCOPY big.bin /big.bin\nCOPY small.txt /{tag}.txt\nLABEL which={tag}\n"
    ));
    context.file("small.txt", tag);
    run(
        "sh",
        &[
            "-c",
            &format!(
                "head -c {megabytes}M /dev/urandom > {}",
                context.path().join("big.bin").display()
            ),
        ],
    );
    context
}

fn spawn_build(lade: &Lade, context: &Context, tag: &str) -> Child {
    lade.process()
        .args(["build", "--progress", "quiet", "-t", tag])
        .arg(context.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lade starts")
}

fn wait_ok(child: Child) -> String {
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "a concurrent build failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[test]
fn concurrent_builds_on_one_store_all_succeed() {
    let lade = Lade::new();
    lade.busybox();
    let a = big_context("a", 24);
    let b = big_context("b", 24);
    let children = vec![
        spawn_build(&lade, &a, "a:1"),
        spawn_build(&lade, &b, "b:1"),
        // The same context twice at once: same blobs and snapshots, written by both.
        spawn_build(&lade, &a, "a:2"),
        spawn_build(&lade, &a, "a:3"),
    ];
    let ids: Vec<String> = children.into_iter().map(wait_ok).collect();
    assert_ne!(ids[0], ids[1]);
    let images = lade.ok(&["images"]);
    for tag in ["a ", "b "] {
        assert!(images.contains(tag), "{images}");
    }
    for tag in ["a:1", "a:2", "a:3", "b:1"] {
        lade.ok(&["inspect", tag]);
    }
    assert_blobs_intact(&lade);
}

#[test]
fn kill_9_at_any_moment_leaves_a_usable_store() {
    let lade = Lade::new();
    lade.busybox();
    let context = big_context("k", 96);
    for delay_ms in [20, 80, 160, 320, 640] {
        let mut child = spawn_build(&lade, &context, "k:1");
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        // The next command opens the store, cleans what the dead process left, and works.
        lade.ok(&["images"]);
        assert_blobs_intact(&lade);
    }
    let id = lade.build(context.path(), &["-t", "k:1"]);
    assert!(lade
        .ok(&["images", "-q", "--no-trunc", "k:1"])
        .contains(&id));
    let leftovers: Vec<String> = std::fs::read_dir(lade.root().join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        leftovers.is_empty(),
        "staging files of dead processes remain: {leftovers:?}"
    );
    assert_blobs_intact(&lade);
}
