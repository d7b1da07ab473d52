//! `lade update` (Docker's `container update`): limits and the restart policy changed
//! after a container was made, kept for its next start, written at once to the cgroups
//! of one that runs (proven by what the host's cgroup files say), and shown by
//! `inspect`.

use std::path::{Path, PathBuf};

use crate::common::{self, Lade};

fn lade() -> Lade {
    let lade = Lade::new();
    lade.busybox();
    lade
}

/// The file of container `id`'s cgroup for a limit: `v1` (controller, file) where this
/// machine has that v1 controller, else `v2_file` in the unified tree.
fn cgroup_file(id: &str, v1: (&str, &str), v2_file: &str) -> PathBuf {
    let (controller, file) = v1;
    let root = Path::new("/sys/fs/cgroup");
    let v1_dir = root.join(controller);
    if v1_dir.join("cgroup.procs").exists() && !v1_dir.join("cgroup.controllers").exists() {
        v1_dir.join("lade").join(id).join(file)
    } else {
        root.join("lade").join(id).join(v2_file)
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

/// The memory limit, CPU quota and process limit of container `id`'s cgroups, as the
/// kernel holds them (v1 files; v2's `memory.max`, `cpu.max`'s quota, `pids.max`).
fn cgroup_limits(id: &str) -> (String, String, String) {
    let memory = read(&cgroup_file(
        id,
        ("memory", "memory.limit_in_bytes"),
        "memory.max",
    ));
    let cpu = read(&cgroup_file(id, ("cpu", "cpu.cfs_quota_us"), "cpu.max"));
    let quota = cpu.split(' ').next().unwrap_or_default().to_string();
    let pids = read(&cgroup_file(id, ("pids", "pids.max"), "pids.max"));
    (memory, quota, pids)
}

fn inspect(lade: &Lade, container: &str, format: &str) -> String {
    lade.ok(&["inspect", "-f", format, container])
        .trim()
        .to_string()
}

const LIMITS: &str = "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}}";

#[test]
fn a_running_container_gets_its_new_limits_at_once() {
    let lade = lade();
    // Started without limits: its memory, CPU and pids cgroups are made by the update.
    let id = lade.ok(&[
        "run",
        "-d",
        "--name",
        "box",
        "--network",
        "none",
        "busybox",
        "sleep",
        "300",
    ]);
    let id = id.trim();
    let output = lade.output(&[
        "update",
        "--memory",
        "64m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "50",
        "box",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "box\n");
    assert_eq!(
        cgroup_limits(id),
        ("67108864".into(), "50000".into(), "50".into())
    );
    // The container's processes are in the cgroup now limiting them.
    let pid = inspect(&lade, "box", "{{.State.Pid}}");
    let procs = read(&cgroup_file(id, ("memory", "cgroup.procs"), "cgroup.procs"));
    assert!(procs.lines().any(|l| l == pid), "{pid} not in {procs}");
    assert_eq!(inspect(&lade, "box", LIMITS), "67108864 500000000 50");

    // -1 lifts the process limit; what is not named stays.
    lade.ok(&["container", "update", "--pids-limit", "-1", id]);
    assert_eq!(
        read(&cgroup_file(id, ("pids", "pids.max"), "pids.max")),
        "max"
    );
    assert_eq!(inspect(&lade, "box", LIMITS), "67108864 500000000 <nil>");
    // The cgroups the update made go when the container ends, as those of its start.
    let memory_cgroup = cgroup_file(id, ("memory", ""), "");
    lade.ok(&["stop", "-t", "0", "box"]);
    common::wait_until("the memory cgroup to be removed", || {
        !memory_cgroup.exists()
    });
    lade.ok(&["rm", "box"]);
}

#[test]
fn a_memory_limit_below_what_a_running_container_uses_is_the_kernel_s_refusal() {
    // Without swap, the pages of a tmpfs file cannot be reclaimed: the kernel refuses.
    let swap = std::fs::read_to_string("/proc/swaps").unwrap_or_default();
    if swap.lines().count() > 1 {
        return;
    }
    let lade = lade();
    let id = lade.ok(&[
        "run",
        "-d",
        "--name",
        "full",
        "--network",
        "none",
        "-m",
        "128m",
        "busybox",
        "sh",
        "-c",
        "dd if=/dev/zero of=/dev/shm/fill bs=1M count=24 2>/dev/null; exec sleep 300",
    ]);
    let id = id.trim();
    let usage = cgroup_file(id, ("memory", "memory.usage_in_bytes"), "memory.current");
    common::wait_until("the container to hold 24 MiB", || {
        read(&usage).parse::<u64>().unwrap_or(0) >= 24 << 20
    });
    let output = lade.output(&["update", "-m", "8m", "full"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot update container full")
            && stderr.contains("Device or resource busy"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
    // Nothing is recorded of a refused update.
    assert_eq!(
        inspect(&lade, "full", "{{.HostConfig.Memory}}"),
        "134217728"
    );
    lade.ok(&["rm", "-f", "full"]);
}

#[test]
fn a_stopped_container_gets_its_new_limits_when_it_starts() {
    let lade = lade();
    let id = lade.ok(&[
        "create",
        "--name",
        "later",
        "--network",
        "none",
        "busybox",
        "sleep",
        "300",
    ]);
    let id = id.trim();
    assert_eq!(
        lade.ok(&[
            "update",
            "-m",
            "32m",
            "--cpus",
            "1.5",
            "--pids-limit",
            "20",
            "later"
        ]),
        "later\n"
    );
    assert_eq!(inspect(&lade, "later", LIMITS), "33554432 1500000000 20");
    lade.ok(&["start", "later"]);
    assert_eq!(
        cgroup_limits(id),
        ("33554432".into(), "150000".into(), "20".into())
    );
    lade.ok(&["rm", "-f", "later"]);
}

#[test]
fn the_restart_policy_changes_and_the_monitor_follows_it() {
    let lade = lade();
    lade.ok(&["create", "--name", "policy", "busybox", "true"]);
    lade.ok(&["update", "--restart", "on-failure:3", "policy"]);
    assert_eq!(
        inspect(
            &lade,
            "policy",
            "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}"
        ),
        "on-failure:3"
    );

    // A running container's monitor reads the policy when the container exits: this
    // one was started with none, and fails once /tmp/go exists.
    lade.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "while [ ! -e /tmp/go ]; do sleep 0.1; done; exit 3",
    ]);
    lade.ok(&["update", "--restart", "on-failure:1", "flaky"]);
    lade.ok(&["exec", "flaky", "touch", "/tmp/go"]);
    common::wait_until("flaky to be restarted once and to exit", || {
        inspect(&lade, "flaky", "{{.RestartCount}} {{.State.Status}}") == "1 exited"
    });

    // Docker's rule: a container removed when it exits is never restarted.
    lade.ok(&["create", "--rm", "--name", "gone", "busybox", "true"]);
    let output = lade.output(&["update", "--restart", "always", "gone"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Restart policy cannot be updated because AutoRemove is enabled"),
        "{stderr}"
    );
    lade.ok(&["update", "--restart", "no", "gone"]);
}

#[test]
fn unknown_containers_missing_flags_and_refused_flags() {
    let lade = lade();
    lade.ok(&["create", "--name", "known", "busybox", "true"]);
    // Each container on its own: the known one is updated and printed, the unknown one
    // is an error, and the exit code says one failed.
    let output = lade.output(&["update", "--memory", "16m", "nosuch", "known"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "known\n");
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "lade: no such container: nosuch\n"
    );
    let output = lade.output(&["update", "known"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "lade: you must provide one or more flags when using this command\n"
    );
    for refused in [
        &["update", "--cpu-shares", "512", "known"][..],
        &["update", "--memory-swap", "1g", "known"],
        &["container", "update", "--cpuset-cpus", "0", "known"],
    ] {
        let output = lade.output(refused);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(125), "{refused:?}: {stderr}");
        assert!(
            stderr.starts_with(&format!(
                "lade: {} is not supported by lade",
                refused[refused.len() - 3]
            )),
            "{stderr}"
        );
    }
    assert_eq!(
        inspect(&lade, "known", "{{.HostConfig.Memory}}"),
        "16777216"
    );
}

/// `update` and `network connect` read a container's settings, change them and write
/// them back: made at once, each keeps what the others wrote (none is lost).
#[test]
fn changes_made_at_once_all_land() {
    let lade = lade();
    lade.ok(&["create", "--name", "target", "busybox", "true"]);
    let networks: Vec<String> = (0..4).map(|n| format!("side{n}")).collect();
    for network in &networks {
        lade.ok(&["network", "create", network]);
    }
    let mut changes: Vec<std::process::Child> = networks
        .iter()
        .map(|network| {
            lade.process()
                .args(["network", "connect", network, "target"])
                .spawn()
                .unwrap()
        })
        .collect();
    changes.push(
        lade.process()
            .args(["update", "--restart", "on-failure:3", "target"])
            .spawn()
            .unwrap(),
    );
    for mut change in changes {
        assert!(change.wait().unwrap().success());
    }
    let inspect: serde_json::Value =
        serde_json::from_str(&lade.ok(&["inspect", "target"])).unwrap();
    let joined = inspect[0]["NetworkSettings"]["Networks"]
        .as_object()
        .unwrap();
    for network in &networks {
        assert!(joined.contains_key(network), "{network} lost: {joined:?}");
    }
    assert_eq!(
        inspect[0]["HostConfig"]["RestartPolicy"]["Name"], "on-failure",
        "{inspect}"
    );
    assert_eq!(
        inspect[0]["HostConfig"]["RestartPolicy"]["MaximumRetryCount"],
        3
    );
}
