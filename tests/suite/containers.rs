//! Containers that live on, through the real CLI on real sandboxes: `run -d` under a
//! monitor, `ps` statuses, `logs` (`--tail`, `-t`, `--since`, `-f`), `stop` (the trap's
//! exit code, or 137 after the timeout), `start` with the files kept, `restart`,
//! `kill -s`, `wait`, `pause`/`unpause`, `--restart on-failure:N`, `rm -f`, and a
//! monitor or init killed with -9. Every wait is for a file or a log line the container
//! writes, bounded, never a fixed sleep.

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{wait_until, Lade};

/// A detached container that writes a tick a line, and a file once it runs.
fn ticker(lade: &Lade, name: &str, shared: &Path, extra: &[&str]) -> String {
    let volume = format!("{}:/shared", shared.display());
    let mut args = vec!["run", "-d", "--name", name, "-v", &volume];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        "busybox",
        "sh",
        "-c",
        "trap 'echo bye; exit 3' TERM; touch /shared/started; i=0; \
         while true; do i=$((i+1)); echo tick $i; echo err $i >&2; \
         echo $i > /shared/count; sleep 0.1; done",
    ]);
    let id = lade.ok(&args).trim().to_string();
    assert_eq!(id.len(), 64, "run -d prints the full id: {id}");
    id
}

fn count(shared: &Path) -> u64 {
    std::fs::read_to_string(shared.join("count"))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

fn ps_line(lade: &Lade, name: &str) -> String {
    lade.ok(&["ps", "-a"])
        .lines()
        .find(|l| l.ends_with(name))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_detached_container_runs_logs_stops_starts_and_is_removed() {
    let lade = Lade::new();
    lade.busybox();
    let shared = tempfile::tempdir().unwrap();
    let id = ticker(&lade, "ticks", shared.path(), &[]);
    wait_until("ticks", || count(shared.path()) >= 3);
    assert!(
        ps_line(&lade, "ticks").contains("Up "),
        "{}",
        lade.ok(&["ps"])
    );

    // Logs: each stream to its own, --tail, -t.
    let output = lade.output(&["logs", "ticks"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stdout.starts_with("tick 1\ntick 2\n"), "{stdout}");
    assert!(stderr.starts_with("err 1\n"), "{stderr}");
    assert!(!stdout.contains("err"));
    // --tail counts the lines of both streams, as Docker does.
    let tail = lade.output(&["logs", "--tail", "2", &id[..12]]);
    let lines = String::from_utf8_lossy(&tail.stdout).lines().count()
        + String::from_utf8_lossy(&tail.stderr).lines().count();
    assert_eq!(lines, 2);
    let stamped = lade.ok(&["logs", "-t", "--tail", "2", "ticks"]);
    let time = stamped.split_whitespace().next().unwrap();
    time.parse::<jiff::Timestamp>()
        .unwrap_or_else(|e| panic!("{stamped}: {e}"));
    let future = lade.ok(&["logs", "--since", "2099-01-01T00:00:00Z", "ticks"]);
    assert!(future.is_empty(), "{future}");

    // Pause stops the ticks; unpause resumes them.
    lade.ok(&["pause", "ticks"]);
    assert!(ps_line(&lade, "ticks").contains("(Paused)"));
    let state = std::fs::read_to_string(format!("/sys/fs/cgroup/freezer/lade/{id}/freezer.state"))
        .or_else(|_| std::fs::read_to_string(format!("/sys/fs/cgroup/lade/{id}/cgroup.freeze")))
        .unwrap_or_default();
    assert!(state.trim() == "FROZEN" || state.trim() == "1", "{state}");
    let frozen = count(shared.path());
    // Several commands' worth of time (ticks come every 100 ms): no tick.
    for _ in 0..5 {
        lade.ok(&["ps"]);
    }
    assert_eq!(count(shared.path()), frozen, "a paused container ticked");
    let resumed_at = frozen + 3;
    lade.ok(&["unpause", "ticks"]);
    wait_until("ticks after unpause", || count(shared.path()) >= resumed_at);

    // stop: the trap's exit code.
    lade.ok(&["stop", "ticks"]);
    assert!(
        ps_line(&lade, "ticks").contains("Exited (3)"),
        "{}",
        ps_line(&lade, "ticks")
    );
    assert!(lade.ok(&["logs", "ticks"]).contains("bye"));
    assert_eq!(lade.ok(&["wait", "ticks"]).trim(), "3");

    // start: runs again, its files kept (the upper directory).
    std::fs::remove_file(shared.path().join("started")).unwrap();
    lade.ok(&["start", "ticks"]);
    wait_until("the restart", || shared.path().join("started").exists());
    assert!(ps_line(&lade, "ticks").contains("Up "));

    // kill -s, then wait prints the code.
    lade.ok(&["kill", "-s", "KILL", "ticks"]);
    assert_eq!(lade.ok(&["wait", "ticks"]).trim(), "137");
    let err = lade.fails(&["kill", "ticks"]);
    assert!(err.contains("not running"), "{err}");

    // restart, then rm refuses and rm -f removes.
    lade.ok(&["restart", "-t", "1", "ticks"]);
    assert!(ps_line(&lade, "ticks").contains("Up "));
    let err = lade.fails(&["rm", "ticks"]);
    assert!(err.contains("is running"), "{err}");
    lade.ok(&["rm", "-f", "ticks"]);
    assert!(ps_line(&lade, "ticks").is_empty());
}

#[test]
fn stop_kills_after_the_timeout_when_the_signal_is_ignored() {
    let lade = Lade::new();
    lade.busybox();
    let shared = tempfile::tempdir().unwrap();
    let volume = format!("{}:/shared", shared.path().display());
    lade.ok(&[
        "run",
        "-d",
        "--name",
        "stubborn",
        "-v",
        &volume,
        "busybox",
        "sh",
        "-c",
        "trap '' TERM; touch /shared/started; while true; do sleep 0.1; done",
    ]);
    wait_until("start", || shared.path().join("started").exists());
    lade.ok(&["stop", "-t", "1", "stubborn"]);
    assert!(ps_line(&lade, "stubborn").contains("Exited (137)"));
    lade.ok(&["rm", "stubborn"]);
}

#[test]
fn restart_on_failure_restarts_as_often_as_asked() {
    let lade = Lade::new();
    lade.busybox();
    let shared = tempfile::tempdir().unwrap();
    let volume = format!("{}:/shared", shared.path().display());
    lade.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "-v",
        &volume,
        "busybox",
        "sh",
        "-c",
        "echo run >> /shared/runs; exit 1",
    ]);
    assert_eq!(lade.ok(&["wait", "flaky"]).trim(), "1");
    wait_until("the last run to be recorded", || {
        ps_line(&lade, "flaky").contains("Exited (1)")
    });
    let runs = std::fs::read_to_string(shared.path().join("runs")).unwrap();
    assert_eq!(
        runs.lines().count(),
        3,
        "the first run and two restarts: {runs}"
    );
}

#[test]
fn detached_rm_removes_the_container_when_it_exits() {
    let lade = Lade::new();
    lade.busybox();
    lade.ok(&["run", "-d", "--rm", "--name", "brief", "busybox", "true"]);
    wait_until("removal", || ps_line(&lade, "brief").is_empty());
}

#[test]
fn a_monitor_or_init_killed_with_9_leaves_a_right_state_and_nothing_behind() {
    let lade = Lade::new();
    lade.busybox();
    let shared = tempfile::tempdir().unwrap();
    let id = ticker(&lade, "victim", shared.path(), &[]);
    wait_until("ticks", || count(shared.path()) >= 1);
    // Kill the container's init: the monitor records how it ended.
    let record_pid = |lade: &Lade| -> i32 {
        lade.ok(&["ps", "--no-trunc", "--format", "json"])
            .lines()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
            .find(|c| c["ID"] == id.as_str())
            .and_then(|c| c["Pid"].as_i64())
            .unwrap_or(0) as i32
    };
    let init = record_pid(&lade);
    assert!(init > 0);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(init),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert_eq!(lade.ok(&["wait", "victim"]).trim(), "137");
    assert!(ps_line(&lade, "victim").contains("Exited (137)"));

    // Kill the monitor: its container dies with it (PDEATHSIG), and `ps` says Dead.
    std::fs::remove_file(shared.path().join("started")).unwrap();
    lade.ok(&["start", "victim"]);
    wait_until("the restart", || shared.path().join("started").exists());
    let init = record_pid(&lade);
    common::kill_monitor_of(init);
    assert!(
        ps_line(&lade, "victim").contains("Dead"),
        "{}",
        ps_line(&lade, "victim")
    );
    lade.ok(&["rm", "victim"]);
    let cgroups = common::run(
        "sh",
        &[
            "-c",
            &format!("find /sys/fs/cgroup -path '*lade/{id}*' 2>/dev/null || true"),
        ],
    );
    assert!(cgroups.trim().is_empty(), "cgroups left: {cgroups}");
}

#[test]
fn logs_follow_prints_as_the_container_writes_and_ends_when_it_stops() {
    use std::io::BufRead;
    let lade = Lade::new();
    lade.busybox();
    let shared = tempfile::tempdir().unwrap();
    ticker(&lade, "followed", shared.path(), &[]);
    let mut follow = lade
        .process()
        .args(["logs", "-f", "followed"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(follow.stdout.take().unwrap()).lines();
    // Lines arrive while the container runs: wait for a tick written after -f began.
    let now = count(shared.path());
    let target = format!("tick {}", now + 3);
    loop {
        let line = lines.next().expect("logs -f ended early").unwrap();
        if line == target {
            break;
        }
    }
    lade.ok(&["stop", "followed"]);
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert_eq!(rest.last().map(String::as_str), Some("bye"), "{rest:?}");
    let status = follow.wait().unwrap();
    assert!(status.success());
    lade.ok(&["rm", "followed"]);
}

#[test]
fn exec_joins_a_running_container_with_its_env_user_workdir_and_exit_codes() {
    let lade = Lade::new();
    lade.busybox();
    let shared = tempfile::tempdir().unwrap();
    ticker(&lade, "target", shared.path(), &["-e", "FROM_RUN=1"]);
    wait_until("start", || shared.path().join("started").exists());

    let out = lade.ok(&[
        "exec", "-e", "FROM_EXEC=2", "-u", "nobody", "-w", "/tmp", "target", "sh", "-c",
        "echo $FROM_RUN $FROM_EXEC; id -u; pwd; hostname; cat /shared/count >/dev/null && echo sees-volume",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1 2");
    assert_eq!(lines[1], "65534");
    assert_eq!(lines[2], "/tmp");
    assert_eq!(lines[4], "sees-volume");
    // The same PID namespace as the container's processes.
    let ps = lade.ok(&["exec", "target", "ps"]);
    assert!(
        ps.contains("sleep 0.1") || ps.contains("sh -c trap"),
        "{ps}"
    );
    // Docker's exit codes.
    assert_eq!(
        lade.output(&["exec", "target", "sh", "-c", "exit 7"])
            .status
            .code(),
        Some(7)
    );
    assert_eq!(
        lade.output(&["exec", "target", "nosuch"]).status.code(),
        Some(127)
    );
    assert_eq!(
        lade.output(&["exec", "target", "/etc/passwd"])
            .status
            .code(),
        Some(126)
    );
    // Same restrictions as the container: capabilities and seccomp.
    let status = lade.ok(&[
        "exec",
        "target",
        "grep",
        "-E",
        "NoNewPrivs|Seccomp:",
        "/proc/self/status",
    ]);
    assert!(
        status.contains("NoNewPrivs:\t1") && status.contains("Seccomp:\t2"),
        "{status}"
    );
    // Nothing in the container leads to the host's lade binary.
    let binary = assert_cmd::cargo::cargo_bin("lade");
    let exes = lade.ok(&[
        "exec",
        "target",
        "sh",
        "-c",
        "for p in /proc/[0-9]*; do readlink $p/exe; done; true",
    ]);
    assert!(!exes.contains(binary.to_str().unwrap()), "{exes}");
    // A terminal with -it, under a pty of our own (script).
    let lade_bin = binary.to_str().unwrap().to_string();
    let tty = common::run(
        "script",
        &[
            "-qec",
            &format!(
                "LADE_ROOT={} {lade_bin} exec -it target tty",
                lade.root().display()
            ),
            "/dev/null",
        ],
    );
    assert!(tty.contains("/dev/pts/"), "{tty}");
    let err = lade.fails(&["exec", "nosuchcontainer", "true"]);
    assert!(err.contains("no such container"), "{err}");
    lade.ok(&["stop", "target"]);
    let err = lade.fails(&["exec", "target", "true"]);
    assert!(err.contains("not running"), "{err}");
    lade.ok(&["rm", "target"]);
}

#[test]
fn create_rename_inspect_ps_filters_and_prune() {
    let lade = Lade::new();
    lade.busybox();
    let work = tempfile::tempdir().unwrap();
    let cidfile = work.path().join("cid");
    let id = lade
        .ok(&[
            "create",
            "--name",
            "made",
            "-l",
            "team=web",
            "--cidfile",
            cidfile.to_str().unwrap(),
            "busybox",
            "sh",
            "-c",
            "exit 4",
        ])
        .trim()
        .to_string();
    assert_eq!(std::fs::read_to_string(&cidfile).unwrap(), id);
    assert!(ps_line(&lade, "made").contains("Created"));
    assert!(
        lade.ok(&["ps"]).lines().count() == 1,
        "created containers are not running"
    );
    lade.ok(&["rename", "made", "renamed"]);
    assert_eq!(
        lade.ok(&[
            "inspect",
            "-f",
            "{{.Name}} {{.State.Status}} {{index .Config.Labels \"team\"}}",
            "renamed"
        ])
        .trim(),
        "/renamed created web"
    );
    lade.ok(&["start", "renamed"]);
    assert_eq!(lade.ok(&["wait", "renamed"]).trim(), "4");
    let inspect: serde_json::Value =
        serde_json::from_str(&lade.ok(&["inspect", "renamed"])).unwrap();
    let state = &inspect[0]["State"];
    assert_eq!(state["Status"], "exited");
    assert_eq!(state["ExitCode"], 4);
    assert_eq!(state["Running"], false);
    assert!(state["FinishedAt"]
        .as_str()
        .unwrap()
        .parse::<jiff::Timestamp>()
        .is_ok());
    assert_eq!(
        inspect[0]["Config"]["Cmd"],
        serde_json::json!(["sh", "-c", "exit 4"])
    );
    // An image by the same reference is still inspected as an image.
    assert!(lade.ok(&["inspect", "busybox"]).contains("RootFS"));

    let shared = tempfile::tempdir().unwrap();
    ticker(&lade, "alive", shared.path(), &["-l", "team=api"]);
    let names = |filter: &str| {
        lade.ok(&["ps", "-a", "--filter", filter, "--format", "{{.Names}}"])
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(names("status=exited"), ["renamed"]);
    // Without -a a filter sees the running containers only, but `status`, which implies
    // -a (Docker's daemon: daemon/list.go).
    let running = |filter: &str| {
        lade.ok(&["ps", "--filter", filter, "--format", "{{.Names}}"])
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert!(running("name=renamed").is_empty());
    assert!(running("exited=4").is_empty());
    assert_eq!(running("name=aliv"), ["alive"]);
    assert_eq!(running("status=exited"), ["renamed"]);
    assert_eq!(names("exited=4"), ["renamed"]);
    assert_eq!(names("label=team=api"), ["alive"]);
    assert_eq!(names("label=team").len(), 2);
    assert_eq!(names("name=aliv"), ["alive"]);
    assert_eq!(names("ancestor=busybox").len(), 2);
    assert_eq!(
        lade.ok(&["ps", "-l", "--format", "{{.Names}}"]).trim(),
        "alive"
    );
    assert!(lade.ok(&["ps", "-q", "--no-trunc"]).trim().len() == 64);
    let err = lade.fails(&["ps", "--filter", "colour=blue"]);
    assert!(err.contains("colour"), "{err}");

    let pruned = lade.ok(&["container", "prune", "-f"]);
    assert!(pruned.contains(&id), "{pruned}");
    assert!(ps_line(&lade, "renamed").is_empty());
    assert!(
        ps_line(&lade, "alive").contains("Up "),
        "prune keeps running containers"
    );
    lade.ok(&["rm", "-f", "alive"]);
}

#[test]
fn volumes_are_filled_from_the_image_shared_refused_in_use_and_pruned() {
    let lade = Lade::new();
    lade.busybox();
    let context = common::Context::new(
        "FROM busybox\nRUN mkdir -p /data && echo seed > /data/seed && chown -R 65534:65534 /data\nVOLUME /cache\nUSER nobody\n",
    );
    lade.build(context.path(), &["-t", "volimg:1"]);
    assert_eq!(
        lade.ok(&["volume", "create", "--label", "tier=db", "shared"])
            .trim(),
        "shared"
    );

    // Copy-up: the image's /data, its owner and mode, so USER nobody can write.
    let out = lade.ok(&[
        "run",
        "--rm",
        "-v",
        "shared:/data",
        "volimg:1",
        "sh",
        "-c",
        "cat /data/seed && echo written > /data/mine && stat -c %u /data",
    ]);
    assert_eq!(out, "seed\n65534\n");
    // Shared by two containers: one writes, the other reads.
    lade.ok(&[
        "run",
        "--name",
        "writer",
        "-v",
        "shared:/data",
        "busybox",
        "sh",
        "-c",
        "echo from-writer > /data/note",
    ]);
    assert_eq!(
        lade.ok(&[
            "run",
            "--rm",
            "-v",
            "shared:/v:ro",
            "busybox",
            "cat",
            "/v/note",
            "/v/mine"
        ]),
        "from-writer\nwritten\n"
    );
    let err = lade.fails(&[
        "run",
        "--rm",
        "-v",
        "shared:/v:ro",
        "busybox",
        "touch",
        "/v/x",
    ]);
    assert!(err.contains("Read-only"), "{err}");
    // --volumes-from and --mount.
    assert_eq!(
        lade.ok(&[
            "run",
            "--rm",
            "--volumes-from",
            "writer",
            "busybox",
            "cat",
            "/data/note"
        ]),
        "from-writer\n"
    );
    assert_eq!(
        lade.ok(&[
            "run",
            "--rm",
            "--mount",
            "type=volume,source=shared,target=/m,readonly",
            "busybox",
            "cat",
            "/m/note"
        ]),
        "from-writer\n"
    );
    let tmpfs = lade.ok(&[
        "run",
        "--rm",
        "--tmpfs",
        "/scratch:size=1m",
        "busybox",
        "sh",
        "-c",
        "mount | grep ' /scratch '",
    ]);
    assert!(
        tmpfs.contains("tmpfs") && tmpfs.contains("size=1024k"),
        "{tmpfs}"
    );

    // Inspect, ls, in-use refusal.
    let inspect = lade.ok(&[
        "volume",
        "inspect",
        "-f",
        "{{.Name}} {{.Driver}} {{index .Labels \"tier\"}}",
        "shared",
    ]);
    assert_eq!(inspect.trim(), "shared local db");
    let err = lade.fails(&["volume", "rm", "shared"]);
    assert!(err.contains("in use by container(s) writer"), "{err}");
    assert!(lade
        .ok(&["volume", "ls", "-q", "--filter", "dangling=false"])
        .contains("shared"));

    // The image's VOLUME gets an anonymous volume per container; rm -v removes it.
    lade.ok(&[
        "run",
        "--name",
        "anon",
        "-u",
        "0",
        "volimg:1",
        "sh",
        "-c",
        "echo cached > /cache/x",
    ]);
    let anonymous: serde_json::Value =
        serde_json::from_str(&lade.ok(&["inspect", "anon"])).unwrap();
    let cache_volume = anonymous[0]["Mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Destination"] == "/cache")
        .unwrap()["Name"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(lade.ok(&["volume", "ls", "-q"]).contains(&cache_volume));
    lade.ok(&["rm", "-v", "anon"]);
    assert!(!lade.ok(&["volume", "ls", "-q"]).contains(&cache_volume));

    // Prune: unused anonymous volumes; with --all every unused one.
    lade.ok(&["rm", "writer"]);
    lade.ok(&[
        "run",
        "--name",
        "other",
        "-v",
        "/anon-path",
        "busybox",
        "true",
    ]);
    lade.ok(&["rm", "other"]);
    let pruned = lade.ok(&["volume", "prune", "-f"]);
    assert!(pruned.contains("Total reclaimed volumes: 1"), "{pruned}");
    assert!(lade.ok(&["volume", "ls", "-q"]).contains("shared"));
    lade.ok(&["volume", "prune", "--all", "-f"]);
    assert!(lade.ok(&["volume", "ls", "-q"]).trim().is_empty());
}

#[test]
fn diff_export_commit_top_and_stats() {
    let lade = Lade::new();
    lade.busybox();
    let shared = tempfile::tempdir().unwrap();
    let volume = format!("{}:/shared", shared.path().display());
    lade.ok(&[
        "run", "-d", "--name", "changer", "-v", &volume, "busybox", "sh", "-c",
        "echo new > /added; echo extra >> /etc/passwd; rm /bin/ls; touch /shared/started; exec sleep 300",
    ]);
    wait_until("start", || shared.path().join("started").exists());

    let diff = lade.ok(&["diff", "changer"]);
    for line in ["A /added", "C /etc/passwd", "D /bin/ls"] {
        assert!(diff.lines().any(|l| l == line), "{line} not in:\n{diff}");
    }
    assert!(
        !diff.contains("/etc/hosts") && !diff.contains("/proc"),
        "{diff}"
    );

    let top = lade.ok(&["top", "changer"]);
    assert!(
        top.lines().count() == 2 && top.contains("sleep 300"),
        "{top}"
    );
    let stats = lade.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}}",
        "changer",
    ]);
    assert_eq!(stats.trim(), "changer 1");

    let work = tempfile::tempdir().unwrap();
    let tar_path = work.path().join("rootfs.tar");
    lade.ok(&["export", "-o", tar_path.to_str().unwrap(), "changer"]);
    let listing = common::run("tar", &["-tf", tar_path.to_str().unwrap()]);
    assert!(
        listing
            .lines()
            .any(|l| l.trim_start_matches("./") == "added"),
        "{listing}"
    );
    assert!(listing
        .lines()
        .any(|l| l.trim_start_matches("./") == "bin/sh"));
    assert!(
        !listing
            .lines()
            .any(|l| l.trim_start_matches("./") == "bin/ls"),
        "a deleted file was exported"
    );
    let added = common::run("tar", &["-xOf", tar_path.to_str().unwrap(), "added"]);
    assert_eq!(added, "new\n");

    let id = lade.ok(&[
        "commit",
        "-m",
        "snapshot",
        "-c",
        "CMD [\"cat\", \"/added\"]",
        "changer",
        "committed:1",
    ]);
    assert!(id.trim().starts_with("sha256:"));
    assert_eq!(lade.ok(&["run", "--rm", "committed:1"]), "new\n");
    let gone = lade.output(&["run", "--rm", "committed:1", "ls", "/"]);
    assert_eq!(
        gone.status.code(),
        Some(127),
        "ls was deleted in the container"
    );
    let history = lade.ok(&["history", "committed:1"]);
    assert!(history.contains("snapshot"), "{history}");
    lade.ok(&["rm", "-f", "changer"]);
}

#[test]
fn cp_copies_both_ways_on_running_and_stopped_containers_and_stays_in_the_container() {
    let lade = Lade::new();
    lade.busybox();
    let shared = tempfile::tempdir().unwrap();
    let volume = format!("{}:/shared", shared.path().display());
    // A host file the container names through its own links: cp must never reach it.
    let host_secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(host_secret.path(), "host secret").unwrap();
    let secret = host_secret.path().to_str().unwrap();
    let host_target = format!("/tmp/lade-cp-{}", std::process::id());
    let script = format!(
        "[ -e /data ] || {{ mkdir -p /data/sub && echo hello > /data/a && \
         echo deep > /data/sub/b && chown 1000:1000 /data/a && ln -s / /data/up && \
         ln -s {secret} /leak && echo inside > /data/up/marker; }}; \
         touch /shared/started; exec sleep 300"
    );
    lade.ok(&[
        "run", "-d", "--name", "box", "-v", &volume, "busybox", "sh", "-c", &script,
    ]);
    wait_until("start", || shared.path().join("started").exists());
    let work = tempfile::tempdir().unwrap();
    let at = |name: &str| work.path().join(name).to_str().unwrap().to_string();

    // Out: a directory to a new name, into an existing directory, its contents only.
    lade.ok(&["cp", "box:/data", &at("copy")]);
    assert_eq!(
        std::fs::read_to_string(work.path().join("copy/sub/b")).unwrap(),
        "deep\n"
    );
    assert_eq!(
        std::fs::read_link(work.path().join("copy/up")).unwrap(),
        Path::new("/")
    );
    std::fs::create_dir(work.path().join("into")).unwrap();
    lade.ok(&["cp", "box:/data", &at("into")]);
    assert!(work.path().join("into/data/a").is_file());
    std::fs::create_dir(work.path().join("contents")).unwrap();
    lade.ok(&["cp", "box:/data/.", &at("contents")]);
    assert!(work.path().join("contents/sub/b").is_file());
    // Owners: root's unless -a keeps them.
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(work.path().join("copy/a")).unwrap().uid(),
        0
    );
    lade.ok(&["cp", "-a", "box:/data/a", &at("kept")]);
    assert_eq!(
        std::fs::metadata(work.path().join("kept")).unwrap().uid(),
        1000
    );

    // Through the container's link to `/`: the container's files, never the host's.
    lade.ok(&["cp", "box:/data/up/marker", &at("marker")]);
    assert_eq!(
        std::fs::read_to_string(work.path().join("marker")).unwrap(),
        "inside\n"
    );
    let leak = lade.fails(&["cp", "-L", "box:/leak", &at("leaked")]);
    assert!(
        leak.contains("Could not find the file /leak in container box"),
        "{leak}"
    );
    assert!(!work.path().join("leaked").exists());
    std::fs::write(work.path().join("payload"), "payload\n").unwrap();
    let into_link = format!("box:/data/up{host_target}");
    lade.ok(&["cp", &at("payload"), &into_link]);
    assert!(
        !Path::new(&host_target).exists(),
        "cp wrote {host_target} on the host"
    );
    assert_eq!(lade.ok(&["exec", "box", "cat", &host_target]), "payload\n");
    assert_eq!(
        std::fs::read_to_string(host_secret.path()).unwrap(),
        "host secret"
    );

    // In: a directory, and a tar stream; out: a tar stream.
    std::fs::create_dir_all(work.path().join("tree/inner")).unwrap();
    std::fs::write(work.path().join("tree/inner/f"), "f\n").unwrap();
    lade.ok(&["cp", &at("tree"), "box:/srv"]);
    assert_eq!(lade.ok(&["exec", "box", "cat", "/srv/inner/f"]), "f\n");
    let stream = lade.cmd().args(["cp", "box:/data", "-"]).output().unwrap();
    assert!(stream.status.success());
    std::fs::write(work.path().join("data.tar"), &stream.stdout).unwrap();
    let listing = common::run("tar", &["-tf", &at("data.tar")]);
    assert!(listing.lines().any(|l| l == "data/sub/b"), "{listing}");
    lade.cmd()
        .args(["cp", "-", "box:/tmp"])
        .pipe_stdin(work.path().join("data.tar"))
        .unwrap()
        .assert()
        .success();
    assert_eq!(lade.ok(&["exec", "box", "cat", "/tmp/data/a"]), "hello\n");

    // Docker's refusals, with the path named.
    let onto_file = lade.fails(&["cp", "box:/data", &at("payload")]);
    assert!(
        onto_file.contains("cannot copy the directory box:/data"),
        "{onto_file}"
    );
    let missing = lade.fails(&["cp", "box:/nothing", &at("x")]);
    assert!(
        missing.contains("Could not find the file /nothing in container box"),
        "{missing}"
    );

    // Stopped: its overlay is mounted for the copy, and the files stay for its next start.
    lade.ok(&["stop", "-t", "0", "box"]);
    lade.ok(&["cp", &at("payload"), "box:/while-stopped"]);
    lade.ok(&["cp", "box:/data/a", &at("stopped-a")]);
    assert_eq!(
        std::fs::read_to_string(work.path().join("stopped-a")).unwrap(),
        "hello\n"
    );
    std::fs::remove_file(shared.path().join("started")).unwrap();
    lade.ok(&["start", "box"]);
    wait_until("restart", || shared.path().join("started").exists());
    assert_eq!(
        lade.ok(&["exec", "box", "cat", "/while-stopped"]),
        "payload\n"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(lade.root().to_str().unwrap()),
        "cp left a mount"
    );
    lade.ok(&["rm", "-f", "box"]);
}

/// `lade cp - C:DIR` takes a tar stream compressed as Docker's does (gzip, bzip2, xz,
/// zstd), and the hostile-tar extractor still judges what it decompresses to.
#[test]
fn cp_takes_a_compressed_tar_stream() {
    use std::io::Write;
    let lade = Lade::new();
    lade.busybox();
    lade.ok(&["create", "--name", "packed", "busybox", "true"]);
    let tar_of = |name: &str, contents: &[u8]| {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_size(contents.len() as u64);
        header.set_entry_type(tar::EntryType::Regular);
        {
            let old = header.as_old_mut();
            old.name[..name.len()].copy_from_slice(name.as_bytes());
        }
        header.set_cksum();
        builder.append(&header, contents).unwrap();
        builder.into_inner().unwrap()
    };
    let compress = |kind: &str, tar: &[u8]| -> Vec<u8> {
        match kind {
            "gzip" => {
                let mut e =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(tar).unwrap();
                e.finish().unwrap()
            }
            "bzip2" => {
                let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
                e.write_all(tar).unwrap();
                e.finish().unwrap()
            }
            "xz" => {
                let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
                e.write_all(tar).unwrap();
                e.finish().unwrap()
            }
            "zstd" => zstd::encode_all(tar, 3).unwrap(),
            _ => tar.to_vec(),
        }
    };
    let work = tempfile::tempdir().unwrap();
    for kind in ["gzip", "bzip2", "xz", "zstd", "none"] {
        let file = work.path().join(format!("{kind}.tar"));
        std::fs::write(
            &file,
            compress(kind, &tar_of(&format!("from-{kind}"), kind.as_bytes())),
        )
        .unwrap();
        lade.cmd()
            .args(["cp", "-", "packed:/tmp"])
            .pipe_stdin(&file)
            .unwrap()
            .assert()
            .success();
        let out = work.path().join(format!("out-{kind}"));
        lade.ok(&[
            "cp",
            &format!("packed:/tmp/from-{kind}"),
            out.to_str().unwrap(),
        ]);
        assert_eq!(std::fs::read_to_string(&out).unwrap(), kind);
    }
    let climbing = work.path().join("climbing.tar.gz");
    std::fs::write(&climbing, compress("gzip", &tar_of("../../escaped", b"x"))).unwrap();
    let output = lade
        .cmd()
        .args(["cp", "-", "packed:/tmp"])
        .pipe_stdin(&climbing)
        .unwrap()
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("refusing archive entry"),
        "{stderr}"
    );
}

/// `lade cp` into a created, never started container reaches its volumes and binds as
/// the container will see them, read-only ones refused, and leaves no mount behind.
#[test]
fn cp_into_a_created_container_reaches_its_volumes_and_binds() {
    let lade = Lade::new();
    lade.busybox();
    let bound = tempfile::tempdir().unwrap();
    let sealed = tempfile::tempdir().unwrap();
    let bind = format!("{}:/bound", bound.path().display());
    let read_only = format!("{}:/sealed:ro", sealed.path().display());
    lade.ok(&[
        "create",
        "--name",
        "fresh",
        "-v",
        "cpvol:/data",
        "-v",
        &bind,
        "-v",
        &read_only,
        "busybox",
        "true",
    ]);
    let work = tempfile::tempdir().unwrap();
    let payload = work.path().join("payload");
    std::fs::write(&payload, "payload\n").unwrap();
    let payload = payload.to_str().unwrap();
    lade.ok(&["cp", payload, "fresh:/data/"]);
    lade.ok(&["cp", payload, "fresh:/bound/"]);
    assert_eq!(
        std::fs::read_to_string(bound.path().join("payload")).unwrap(),
        "payload\n"
    );
    let refused = lade.fails(&["cp", payload, "fresh:/sealed/"]);
    assert!(
        refused.contains("/sealed") && refused.to_lowercase().contains("read-only"),
        "{refused}"
    );
    assert!(!sealed.path().join("payload").exists());
    // Out of the volume again, and in the volume as another container sees it.
    let back = work.path().join("back");
    lade.ok(&["cp", "fresh:/data/payload", back.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "payload\n");
    assert_eq!(
        lade.ok(&[
            "run",
            "--rm",
            "-v",
            "cpvol:/data",
            "busybox",
            "cat",
            "/data/payload"
        ]),
        "payload\n"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(lade.root().to_str().unwrap()),
        "cp left a mount"
    );
}

/// Reads a child's output in the background, so a test can wait (bounded) for a line.
struct Expect {
    lines: std::sync::mpsc::Receiver<u8>,
    seen: String,
}

impl Expect {
    fn new(output: impl std::io::Read + Send + 'static) -> Expect {
        let (send, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for byte in std::io::Read::bytes(output).map_while(|b| b.ok()) {
                if send.send(byte).is_err() {
                    break;
                }
            }
        });
        Expect {
            lines,
            seen: String::new(),
        }
    }

    fn until(&mut self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.seen.contains(text) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(byte) => self.seen.push(byte as char),
                Err(_) => panic!("waited for {text:?}; saw {:?}", self.seen),
            }
        }
    }
}

#[test]
fn attach_detach_keys_start_a_exec_d_log_rotation_and_sizes() {
    use std::io::Write;
    use std::process::Stdio;
    let lade = Lade::new();
    lade.busybox();

    // attach: input in, output out, and ctrl-p ctrl-q leaves the container running.
    lade.ok(&[
        "run",
        "-d",
        "-i",
        "--name",
        "echoer",
        "busybox",
        "sh",
        "-c",
        "while read l; do echo got $l; done",
    ]);
    let mut client = lade
        .process()
        .args(["attach", "echoer"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = client.stdin.take().unwrap();
    let mut output = Expect::new(client.stdout.take().unwrap());
    input.write_all(b"hello\n").unwrap();
    output.until("got hello");
    input.write_all(b"\x10\x11").unwrap();
    assert!(client.wait().unwrap().success(), "detaching exits 0");
    assert!(
        ps_line(&lade, "echoer").contains(" Up "),
        "{}",
        ps_line(&lade, "echoer")
    );

    // exec -d: runs on in the background; a command that cannot start says so.
    lade.ok(&[
        "exec",
        "-d",
        "-e",
        "X=42",
        "echoer",
        "sh",
        "-c",
        "echo $X > /done",
    ]);
    wait_until("exec -d", || {
        lade.output(&["exec", "echoer", "cat", "/done"]).stdout == b"42\n"
    });
    let missing = lade.output(&["exec", "-d", "echoer", "nosuchcommand"]);
    assert_eq!(missing.status.code(), Some(127));

    // start -a: the whole output, each stream to its own, and the exit code.
    lade.ok(&[
        "create",
        "--name",
        "once",
        "busybox",
        "sh",
        "-c",
        "echo one; echo two >&2; exit 4",
    ]);
    let started = lade.output(&["start", "-a", "once"]);
    assert_eq!(started.status.code(), Some(4));
    assert_eq!(String::from_utf8_lossy(&started.stdout), "one\n");
    assert_eq!(String::from_utf8_lossy(&started.stderr), "two\n");

    // run -it under a pty of our own: detached with the keys, attached again, exited.
    let lade_bin = assert_cmd::cargo::cargo_bin("lade");
    let terminal = |command: &str| {
        std::process::Command::new("script")
            .args(["-qec", command, "/dev/null"])
            .env("LADE_ROOT", lade.root())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("script runs")
    };
    let mut session = terminal(&format!(
        "{} run -it --name tty busybox sh -c 'tty; while read l; do echo got $l; [ $l = quit ] && exit 3; done'",
        lade_bin.display()
    ));
    let mut input = session.stdin.take().unwrap();
    let mut output = Expect::new(session.stdout.take().unwrap());
    output.until("/dev/pts/");
    input.write_all(b"first\r").unwrap();
    output.until("got first");
    input.write_all(b"\x10\x11").unwrap();
    assert!(session.wait().unwrap().success());
    assert!(
        ps_line(&lade, "tty").contains(" Up "),
        "{}",
        ps_line(&lade, "tty")
    );
    let mut session = terminal(&format!("{} attach tty", lade_bin.display()));
    let mut input = session.stdin.take().unwrap();
    let mut output = Expect::new(session.stdout.take().unwrap());
    input.write_all(b"quit\r").unwrap();
    output.until("got quit");
    assert_eq!(session.wait().unwrap().code(), Some(3));
    let logged = lade.ok(&["logs", "tty"]);
    assert!(
        logged.contains("got first") && logged.contains("got quit"),
        "{logged}"
    );

    // run -a: only the streams named.
    let only_err = lade.output(&[
        "run",
        "--rm",
        "-a",
        "stderr",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2",
    ]);
    assert!(only_err.status.success());
    assert_eq!(String::from_utf8_lossy(&only_err.stdout), "");
    assert_eq!(String::from_utf8_lossy(&only_err.stderr), "err\n");
    let conflict = lade.fails(&["run", "-d", "-a", "stdout", "busybox", "true"]);
    assert!(conflict.contains("conflicting options"), "{conflict}");

    // attach passes the signals it receives on (--sig-proxy): the trap's exit code.
    lade.ok(&[
        "run",
        "-d",
        "--name",
        "trapper",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "trap 'echo got-term; exit 7' TERM; while true; do echo tick; sleep 0.1; done",
    ]);
    let mut client = lade
        .process()
        .args(["attach", "trapper"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut output = Expect::new(client.stdout.take().unwrap());
    output.until("tick");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(client.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    output.until("got-term");
    assert_eq!(client.wait().unwrap().code(), Some(7));

    // Log rotation as Docker's json-file: two files at most, the newest lines kept.
    lade.ok(&[
        "run",
        "-d",
        "--name",
        "chatty",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=2",
        "--log-opt",
        "labels=app",
        "-l",
        "app=web",
        "busybox",
        "sh",
        "-c",
        "i=0; while [ $i -lt 300 ]; do i=$((i+1)); echo line $i; done",
    ]);
    assert_eq!(lade.ok(&["wait", "chatty"]).trim(), "0");
    let logs = lade.ok(&["logs", "chatty"]);
    let lines: Vec<&str> = logs.lines().collect();
    assert_eq!(lines.last(), Some(&"line 300"));
    assert!(
        lines.len() > 5 && lines.len() < 100,
        "{} lines kept",
        lines.len()
    );
    let id = lade.ok(&["inspect", "-f", "{{.Id}}", "chatty"]);
    let dir = lade.root().join("containers").join(id.trim());
    assert!(dir.join("log").exists() && dir.join("log.1").exists());
    assert!(!dir.join("log.2").exists(), "max-file=2 keeps two files");
    assert_eq!(
        lade.ok(&["logs", "--details", "--tail", "1", "chatty"]),
        "app=web line 300\n"
    );
    let bad = lade.fails(&["run", "--log-opt", "max-file=3", "busybox", "true"]);
    assert!(
        bad.contains("max-file=3") && bad.contains("max-size"),
        "{bad}"
    );

    // ps -s: the container's own changes, and with its image.
    lade.ok(&[
        "exec",
        "echoer",
        "sh",
        "-c",
        "head -c 3000 /dev/zero > /blob",
    ]);
    let sizes = lade.ok(&["ps", "-s"]);
    assert!(sizes.lines().next().unwrap().ends_with("SIZE"), "{sizes}");
    let echoer = sizes.lines().find(|l| l.contains("echoer")).unwrap();
    assert!(echoer.contains("kB (virtual "), "{echoer}");
    lade.ok(&["rm", "-f", "echoer", "tty", "once", "chatty", "trapper"]);
}

#[test]
fn fifty_detached_containers_at_once() {
    const COUNT: usize = 50;
    let lade = Lade::new();
    lade.busybox();
    let shared = tempfile::tempdir().unwrap();
    let volume = format!("{}:/shared", shared.path().display());
    let starts: Vec<std::process::Child> = (0..COUNT)
        .map(|i| {
            lade.process()
                .args([
                    "run",
                    "-d",
                    "--name",
                    &format!("many{i}"),
                    "-v",
                    &volume,
                    "busybox",
                    "sh",
                    "-c",
                ])
                .arg(format!(
                    "trap 'exit 0' TERM; touch /shared/up{i}; sleep 600 & wait"
                ))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in starts {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    wait_until("every container", || {
        (0..COUNT).all(|i| shared.path().join(format!("up{i}")).exists())
    });
    let running = lade.ok(&["ps", "-q"]);
    assert_eq!(running.lines().count(), COUNT, "{running}");
    let names: Vec<String> = (0..COUNT).map(|i| format!("many{i}")).collect();
    let mut args = vec!["stop", "-t", "1"];
    args.extend(names.iter().map(String::as_str));
    lade.ok(&args);
    assert_eq!(lade.ok(&["ps", "-q"]).trim(), "");
    let mut args = vec!["rm"];
    args.extend(names.iter().map(String::as_str));
    lade.ok(&args);
    assert_eq!(lade.ok(&["ps", "-aq"]).trim(), "");
}

#[test]
fn system_df_prune_info_and_version() {
    let lade = Lade::new();
    lade.busybox();
    lade.ok(&[
        "run",
        "--name",
        "done",
        "-v",
        "/anon",
        "busybox",
        "sh",
        "-c",
        "echo x > /anon/f; echo y > /f",
    ]);
    let context = common::Context::new("FROM busybox\nRUN echo z > /z\n");
    let id = lade.build(context.path(), &[]);
    let df = lade.ok(&["system", "df", "--format", "json"]);
    let kind = |name: &str| {
        df.lines()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
            .find(|r| r["Type"] == name)
            .unwrap()
    };
    assert_eq!(kind("Images")["TotalCount"], 2, "{df}");
    assert_eq!(kind("Containers")["TotalCount"], 1);
    assert_eq!(kind("Local Volumes")["TotalCount"], 1);
    assert!(lade.ok(&["system", "df", "-v"]).contains("done"));

    let info: serde_json::Value =
        serde_json::from_str(&lade.ok(&["info", "--format", "json"])).unwrap();
    assert_eq!(info["Containers"], 1);
    assert_eq!(info["ContainersStopped"], 1);
    assert_eq!(info["Driver"], "overlay");
    assert!(lade
        .ok(&["version"])
        .starts_with("Client: lade\n Version: "));
    // Docker's shape for scripts, and the reserve a writing command would keep.
    let version = lade.ok(&["version", "-f", "{{.Client.Version}} {{.Server.Version}}"]);
    let ours = env!("CARGO_PKG_VERSION");
    assert_eq!(version.trim(), format!("{ours} {ours}"));
    assert!(info["StorageReserve"].as_u64().unwrap() > 0, "{info}");

    let pruned = lade.ok(&["system", "prune", "-f", "--volumes"]);
    assert!(pruned.contains("Deleted containers: 1"), "{pruned}");
    assert!(
        pruned.contains("Deleted images: 1"),
        "the untagged build: {pruned}"
    );
    assert!(pruned.contains("Deleted volumes: 1"), "{pruned}");
    assert!(lade.fails(&["inspect", &id]).contains("no such object"));
    assert!(
        lade.ok(&["images", "-q"]).lines().count() == 1,
        "busybox stays"
    );
}

#[test]
fn exec_it_detaches_with_its_keys_and_the_process_runs_on() {
    use std::io::Write;
    use std::process::Stdio;
    let lade = Lade::new();
    lade.busybox();
    lade.ok(&["run", "-d", "--name", "host", "busybox", "sleep", "1000"]);
    let lade_bin = assert_cmd::cargo::cargo_bin("lade");
    // A pty of our own, as a user's terminal.
    let terminal = |command: &str| {
        std::process::Command::new("script")
            .args(["-qec", command, "/dev/null"])
            .env("LADE_ROOT", lade.root())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("script runs")
    };
    // Docker's syntax for other keys: ctrl-a then x.
    let mut session = terminal(&format!(
        "{} exec -it --detach-keys ctrl-a,x host sh -c \
         'tty; read l; echo got $l; n=0; while :; do n=$((n+1)); echo $n > /beat; sleep 0.1; done'",
        lade_bin.display()
    ));
    let mut input = session.stdin.take().unwrap();
    let mut output = Expect::new(session.stdout.take().unwrap());
    output.until("/dev/pts/");
    input.write_all(b"first\r").unwrap();
    output.until("got first");
    input.write_all(b"\x01x").unwrap();
    assert!(session.wait().unwrap().success(), "detaching exits 0");
    // The process runs on: its heartbeat still moves after we left.
    let beat = || lade.ok(&["exec", "host", "cat", "/beat"]);
    wait_until("a first beat", || {
        lade.output(&["exec", "host", "cat", "/beat"])
            .status
            .success()
    });
    let after_detach = beat();
    wait_until("the process to beat on after the detach", || {
        beat() != after_detach
    });

    // The process's exit code when it ends by itself; our window size, from its start.
    let mut session = terminal(&format!(
        "stty rows 33 cols 77; {} exec -it host sh -c 'stty size; tty; read l; [ $l = quit ] && exit 5'",
        lade_bin.display()
    ));
    let mut input = session.stdin.take().unwrap();
    let mut output = Expect::new(session.stdout.take().unwrap());
    output.until("/dev/pts/");
    assert!(output.seen.starts_with("33 77"), "{:?}", output.seen);
    input.write_all(b"quit\r").unwrap();
    assert_eq!(session.wait().unwrap().code(), Some(5));
    // Docker's default keys.
    let mut session = terminal(&format!(
        "{} exec -it host sh -c 'tty; sleep 1000'",
        lade_bin.display()
    ));
    let mut input = session.stdin.take().unwrap();
    let mut output = Expect::new(session.stdout.take().unwrap());
    output.until("/dev/pts/");
    input.write_all(b"\x10\x11").unwrap();
    assert!(session.wait().unwrap().success());
    let processes = lade.ok(&["exec", "host", "ps"]);
    assert!(processes.contains("sleep 1000"), "{processes}");

    // A command that cannot start says so, with Docker's code, through the holder too.
    let missing = terminal(&format!(
        "{} exec -it host nosuchcommand",
        lade_bin.display()
    ))
    .wait_with_output()
    .unwrap();
    assert_eq!(missing.status.code(), Some(127));
    let bad = lade.output(&["exec", "-it", "--detach-keys", "ctrl-1", "host", "true"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--detach-keys"));
    lade.ok(&["rm", "-f", "host"]);
}
