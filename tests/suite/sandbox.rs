//! `lade run` in real sandboxes: isolation, Docker's capabilities and seccomp refusals,
//! cgroup limits, networking, exit codes, signals, terminals, and the run options.

use crate::common;

use std::process::Stdio;

use common::{require_tool, Lade};

/// A store with the busybox base.
fn lade() -> Lade {
    let lade = Lade::new();
    lade.busybox();
    lade
}

/// Runs `sh -c script` in a busybox container; returns (exit code, stdout, stderr).
fn sh(lade: &Lade, flags: &[&str], script: &str) -> (i32, String, String) {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["busybox", "sh", "-c", script]);
    let output = lade.output(&args);
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn ok(lade: &Lade, flags: &[&str], script: &str) -> String {
    let (code, out, err) = sh(lade, flags, script);
    assert_eq!(code, 0, "{script}: exit {code}\n{err}");
    out
}

#[test]
fn the_process_is_pid_1_with_its_own_hostname() {
    let lade = lade();
    let out = ok(
        &lade,
        &[],
        "echo $$; hostname; cat /etc/hostname; echo $HOSTNAME",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1");
    let host = nix::unistd::gethostname()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert_ne!(lines[1], host);
    assert_eq!(lines[1].len(), 12, "the container id's prefix: {out}");
    assert_eq!(lines[1], lines[2]);
    assert_eq!(lines[1], lines[3]);
    let out = ok(&lade, &["--hostname", "chosen"], "hostname");
    assert_eq!(out.trim(), "chosen");
    let out = ok(&lade, &[], "ls -d /proc/[0-9]* | wc -l");
    assert!(
        out.trim().parse::<u32>().unwrap() <= 3,
        "only the container's processes: {out}"
    );
}

#[test]
fn host_files_are_invisible() {
    let lade = lade();
    let secret = lade.dir.path().join("host-only-secret");
    std::fs::write(&secret, "secret").unwrap();
    let (code, _, _) = sh(&lade, &[], &format!("test -e {}", secret.display()));
    assert_eq!(code, 1, "a host file is visible in the container");
    let out = ok(&lade, &[], "cat /proc/1/cmdline | tr '\\0' ' '; ls /");
    assert!(out.starts_with("sh -c"), "{out}");
    assert!(
        !out.contains("work\n"),
        "the host's /work is not there: {out}"
    );
}

#[test]
fn proc_is_masked_and_read_only_where_docker_masks_it() {
    let lade = lade();
    // /proc/kcore is empty or absent (this kernel may not have it); where the host has
    // the file, the container sees /dev/null over it.
    let out = ok(
        &lade,
        &[],
        "cat /proc/kcore 2>/dev/null | wc -c; cat /proc/keys 2>/dev/null | wc -c",
    );
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        vec!["0", "0"],
        "{out}"
    );
    if std::path::Path::new("/proc/kcore").exists() {
        let out = ok(&lade, &[], "stat -c %t:%T /proc/kcore");
        assert_eq!(out.trim(), "1:3", "kcore is /dev/null");
    }
    if std::path::Path::new("/proc/timer_list").exists() {
        let out = ok(&lade, &[], "stat -c %t:%T /proc/timer_list");
        assert_eq!(out.trim(), "1:3");
    }
    let (code, _, err) = sh(&lade, &[], "echo 1 > /proc/sys/kernel/ns_last_pid");
    assert_ne!(code, 0, "/proc/sys is read-only");
    assert!(err.contains("Read-only file system"), "{err}");
    let (code, _, _) = sh(&lade, &[], "touch /sys/kernel/x");
    assert_ne!(code, 0, "/sys is read-only");
}

#[test]
fn mount_and_unshare_fail_even_as_root() {
    let lade = lade();
    let (code, out, err) = sh(&lade, &[], "id -u; mount -t tmpfs none /mnt; echo mount=$?; unshare -U true; echo unshare=$?; unshare -n true; echo netns=$?");
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0");
    assert!(
        lines[1] != "mount=0" && lines[2] != "unshare=0" && lines[3] != "netns=0",
        "{out}\n{err}"
    );
    assert!(
        err.contains("Operation not permitted") || err.contains("permission denied"),
        "{err}"
    );
}

#[test]
fn capabilities_are_dockers_default_set() {
    let lade = lade();
    let status = ok(
        &lade,
        &[],
        "grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status",
    );
    let field = |name: &str| -> String {
        status
            .lines()
            .find(|l| l.starts_with(&format!("{name}:")))
            .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
            .unwrap_or_else(|| panic!("no {name} in {status}"))
    };
    // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE NET_RAW
    // SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP: Docker's 14.
    const DOCKER: &str = "00000000a80425fb";
    assert_eq!(field("CapEff"), DOCKER);
    assert_eq!(field("CapPrm"), DOCKER);
    assert_eq!(field("CapBnd"), DOCKER);
    assert_eq!(field("CapInh"), "0000000000000000");
    assert_eq!(field("NoNewPrivs"), "1");
    assert_eq!(field("Seccomp"), "2");
    let status = ok(
        &lade,
        &["-u", "nobody"],
        "id -u; grep -E '^Cap(Eff|Prm|Bnd)' /proc/self/status",
    );
    assert!(status.starts_with("65534\n"), "{status}");
    assert!(
        status.contains("CapEff:\t0000000000000000")
            && status.contains(&format!("CapBnd:\t{DOCKER}")),
        "{status}"
    );
}

#[test]
fn memory_limit_kills_with_137() {
    let lade = lade();
    let (code, _, _) = sh(
        &lade,
        &["--memory", "32m"],
        "dd if=/dev/zero of=/dev/null bs=200M count=1",
    );
    assert_eq!(code, 137, "the OOM killer ends it");
    let (code, _, err) = sh(
        &lade,
        &["--memory", "128m"],
        "dd if=/dev/zero of=/dev/null bs=16M count=1",
    );
    assert_eq!(code, 0, "{err}");
}

#[test]
fn pids_limit_stops_fork_bombs_and_the_host_is_fine() {
    let lade = lade();
    let sleepers = "i=0; while [ $i -lt 100 ]; do sleep 2 & i=$((i+1)); done; echo started all";
    let (code, out, _) = sh(&lade, &[], sleepers);
    assert_eq!(
        (code, out.trim()),
        (0, "started all"),
        "without a limit 100 processes start"
    );
    let (code, out, err) = sh(&lade, &["--pids-limit", "50"], sleepers);
    assert_ne!(code, 0, "with --pids-limit 50 they cannot");
    assert!(out.is_empty() && err.contains("can't fork"), "{out}{err}");

    let before = std::fs::read_dir("/proc").unwrap().count();
    let (_, out, _) = sh(
        &lade,
        &["--pids-limit", "50"],
        "f(){ f|f & }; f 2>/dev/null; sleep 2; echo done",
    );
    assert_eq!(out.trim(), "done");
    common::wait_until("the fork bomb's processes to be gone from the host", || {
        std::fs::read_dir("/proc").unwrap().count() < before + 10
    });
    assert!(std::process::Command::new("true")
        .status()
        .unwrap()
        .success());
    let leftover = std::path::Path::new("/sys/fs/cgroup/pids/lade");
    if leftover.is_dir() {
        let dirs = std::fs::read_dir(leftover)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_type().unwrap().is_dir())
            .count();
        assert_eq!(dirs, 0, "a container's cgroup outlived it");
    }
}

#[test]
fn network_none_has_only_loopback() {
    let lade = lade();
    let out = ok(
        &lade,
        &["--network", "none"],
        "ls /sys/class/net; ping -c1 -W1 127.0.0.1 >/dev/null && echo lo-up",
    );
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        vec!["lo", "lo-up"]
    );
    // The default: lade's bridge network (eth0), as Docker's.
    let out = ok(&lade, &[], "ls /sys/class/net");
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        vec!["eth0", "lo"]
    );
    // Other tests' containers come and go meanwhile: their veths and lade's bridges
    // are left out, and the listing only reads the directory (no stat of an entry that
    // may be gone by then).
    let host: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with("veth") && !name.starts_with("lade"))
        .collect();
    let out = ok(&lade, &["--network", "host"], "echo /sys/class/net/*");
    for iface in &host {
        assert!(
            out.contains(iface.as_str()),
            "host network shows {iface}: {out}"
        );
    }
}

#[test]
fn exit_codes_are_dockers() {
    let lade = lade();
    assert_eq!(sh(&lade, &[], "exit 0").0, 0);
    assert_eq!(sh(&lade, &[], "exit 7").0, 7);
    let out = lade.output(&["run", "--rm", "busybox", "/etc/passwd"]);
    assert_eq!(out.status.code(), Some(126));
    assert!(String::from_utf8_lossy(&out.stderr).contains("permission denied"));
    let out = lade.output(&["run", "--rm", "busybox", "no-such-command"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&out.stderr).contains("executable file not found"));
    let out = lade.output(&["run", "--rm", "no-such-image"]);
    assert_eq!(out.status.code(), Some(125));
    let out = lade.output(&["run", "--rm", "-u", "nosuchuser", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unable to find user nosuchuser"));
}

/// Starts `lade run` in the background, sends `signal` once the container has printed
/// `ready` (after its traps are set), returns the exit code and what it printed after.
fn signalled(lade: &Lade, args: &[&str], signal: nix::sys::signal::Signal) -> (i32, String) {
    use std::io::{BufRead, Read};
    let mut child = lade
        .process()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert_eq!(first.trim(), "ready", "the container started");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    (status.code().unwrap_or(-1), rest)
}

#[test]
fn signals_reach_the_container() {
    use nix::sys::signal::Signal;
    let lade = lade();
    let (code, out) = signalled(
        &lade,
        &[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "trap 'echo got TERM; exit 3' TERM; echo ready; sleep 30 & wait",
        ],
        Signal::SIGTERM,
    );
    assert_eq!((code, out.trim()), (3, "got TERM"));
    // Under --init the signal reaches the process through the init: 128 + the signal.
    let sleeper = "echo ready; exec sleep 30";
    for (signal, expected) in [(Signal::SIGTERM, 143), (Signal::SIGINT, 130)] {
        let args = ["run", "--rm", "--init", "busybox", "sh", "-c", sleeper];
        let (code, _) = signalled(&lade, &args, signal);
        assert_eq!(code, expected, "{signal}");
    }
    let (code, out) = signalled(
        &lade,
        &[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "trap 'echo got HUP; exit 4' HUP; echo ready; sleep 30 & wait",
        ],
        Signal::SIGHUP,
    );
    assert_eq!((code, out.trim()), (4, "got HUP"));
}

#[test]
fn init_reaps_zombies() {
    let lade = lade();
    let out = lade.ok(&[
        "run",
        "--rm",
        "--init",
        "busybox",
        "sh",
        "-c",
        "echo $$; (sleep 0.1 &); sleep 0.5; ps -o stat | grep -c Z || true",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "2", "under --init the command is PID 2");
    assert_eq!(lines[1], "0", "no zombies");
}

#[test]
fn terminal_with_t() {
    require_tool("script");
    let lade = lade();
    let lade_bin = assert_cmd::cargo::cargo_bin("lade");
    let output = std::process::Command::new("script")
        .args(["-qec"])
        .arg(format!(
            "stty cols 101 rows 33; {} run --rm -t -u nobody busybox sh -c 'stty size; tty; ls -l $(tty); echo $TERM'",
            lade_bin.display()
        ))
        .arg("/dev/null")
        .env("LADE_ROOT", lade.root())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout).replace('\r', "");
    assert!(output.status.success(), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    // First thing the process does: the size is set before it starts.
    assert_eq!(lines[0], "33 101", "the window size follows ours");
    assert!(lines[1].starts_with("/dev/pts/"), "{out}");
    assert!(
        lines[2].contains("nobody"),
        "the pty belongs to the user: {out}"
    );
    assert_eq!(lines[3], "xterm");
}

#[test]
fn run_options() {
    let lade = lade();
    let out = lade.output(&["run", "--rm", "-w", "relative", "busybox", "pwd"]);
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("must be an absolute path"), "{err}");
    let env_file = lade.dir.path().join("env");
    std::fs::write(&env_file, "# comment\nFROM_FILE=file\nBOTH=file\n").unwrap();
    let env_file = env_file.to_string_lossy().into_owned();
    let out = lade.ok_with_env(
        &[("PASSED", "through")],
        &[
            "run",
            "--rm",
            "-e",
            "A=1",
            "-e",
            "BOTH=cli",
            "-e",
            "PASSED",
            "--env-file",
            &env_file,
            "-w",
            "/made/by/workdir",
            "-u",
            "daemon",
            "busybox",
            "sh",
            "-c",
            "echo $A $BOTH $FROM_FILE $PASSED; pwd; id -u; echo $HOME",
        ],
    );
    assert_eq!(out, "1 cli file through\n/made/by/workdir\n1\n/usr/sbin\n");
    let out = lade.ok(&["run", "--rm", "--entrypoint", "echo", "busybox", "replaced"]);
    assert_eq!(out, "replaced\n");

    let host_dir = lade.dir.path().join("shared");
    std::fs::create_dir(&host_dir).unwrap();
    std::fs::write(host_dir.join("in.txt"), "from host").unwrap();
    let volume = format!("{}:/shared", host_dir.display());
    let out = ok(
        &lade,
        &["-v", &volume],
        "cat /shared/in.txt; echo written > /shared/out.txt",
    );
    assert_eq!(out, "from host");
    assert_eq!(
        std::fs::read_to_string(host_dir.join("out.txt")).unwrap(),
        "written\n"
    );
    let read_only = format!("{}:/shared:ro", host_dir.display());
    let (code, _, _) = sh(&lade, &["-v", &read_only], "echo x > /shared/nope");
    assert_ne!(code, 0);
    ok(&lade, &["-v", "named:/data"], "echo kept > /data/file");
    assert_eq!(
        ok(&lade, &["-v", "named:/data"], "cat /data/file"),
        "kept\n"
    );
    let (code, _, err) = sh(&lade, &["--read-only"], "touch /x");
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("Read-only file system"), "{err}");
    // Volumes on paths the image lacks: their mount points are made before the root
    // becomes read-only, as Docker makes them.
    let shared = tempfile::tempdir().unwrap();
    std::fs::write(shared.path().join("f"), "shared\n").unwrap();
    let bind = format!("{}:/new/shared:ro", shared.path().display());
    let out = ok(
        &lade,
        &[
            "--read-only",
            "-v",
            &bind,
            "-v",
            "named:/data",
            "--tmpfs",
            "/scratch",
        ],
        "cat /new/shared/f /data/file; touch /scratch/ok; touch /y || echo refused",
    );
    assert_eq!(out, "shared\nkept\nrefused\n");
}

#[test]
fn containers_are_recorded_and_removed() {
    let lade = lade();
    let out = lade.output(&[
        "run",
        "--name",
        "kept",
        "busybox",
        "sh",
        "-c",
        "echo hi > /left-behind; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let ps = lade.ok(&["ps", "-a"]);
    assert!(ps.contains("kept") && ps.contains("Exited (3)"), "{ps}");
    let err = lade.fails(&["run", "--name", "kept", "busybox", "true"]);
    assert!(err.contains("already in use"), "{err}");
    let err = lade.fails(&["rmi", "busybox"]);
    assert!(err.contains("used by container(s) kept"), "{err}");
    assert_eq!(lade.ok(&["rm", "kept"]).trim(), "kept");
    assert!(lade.ok(&["ps", "-a", "-q"]).trim().is_empty());
    let containers = std::fs::read_dir(lade.root().join("containers"))
        .unwrap()
        .count();
    assert_eq!(containers, 0, "rm removes the container's files");
    lade.ok(&["run", "--rm", "busybox", "true"]);
    assert!(
        lade.ok(&["ps", "-a", "-q"]).trim().is_empty(),
        "--rm leaves nothing"
    );
    assert_eq!(
        std::fs::read_dir(lade.root().join("containers"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn demo_builds_and_runs() {
    let lade = lade();
    let examples = common::repo().join("examples");
    lade.ok(&[
        "build",
        "--progress",
        "plain",
        "-t",
        "demo:latest",
        "-f",
        &examples.join("Dockerfile.demo").to_string_lossy(),
        &examples.to_string_lossy(),
    ]);
    let out = lade.ok(&["run", "--rm", "demo:latest"]);
    assert!(
        out.starts_with("Hello from lade-demo, built and run by lade."),
        "{out}"
    );
    assert!(
        out.contains("pid:        1 ") && out.contains("network:    eth0 lo"),
        "{out}"
    );
}

/// A container's process starts with no signal ignored or blocked, as under Docker,
/// though lade itself ignores SIGPIPE and blocks every signal around the clone: an
/// ignored signal and the mask would stay so across the init's exec (and
/// `yes | head -1` would then never end `yes` with SIGPIPE).
#[test]
fn no_signal_is_ignored_or_blocked_in_the_container() {
    let lade = lade();
    let signals = |output: std::process::Output| {
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    };
    let nothing = "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000";
    let grep = ["grep", "-E", "SigBlk|SigIgn", "/proc/self/status"];
    for flags in [&[][..], &["--init"][..]] {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.push("busybox");
        args.extend_from_slice(&grep);
        assert_eq!(signals(lade.output(&args)), nothing, "run {flags:?}");
    }
    lade.ok(&["run", "-d", "--name", "signals", "busybox", "sleep", "600"]);
    let mut args = vec!["exec", "signals"];
    args.extend_from_slice(&grep);
    let exec = lade.output(&args);
    lade.ok(&["rm", "-f", "signals"]);
    assert_eq!(signals(exec), nothing, "exec");
}

/// The container's init, `lade-init`, is looked for beside lade's real binary: a symbolic
/// link to lade from elsewhere finds it, and a lade without one says which file is
/// missing (exit 125, as for any sandbox that cannot be set up).
#[test]
fn the_init_is_found_beside_lade_and_named_when_missing() {
    let lade = lade();
    let real = assert_cmd::cargo::cargo_bin("lade");
    let run = |binary: &std::path::Path| {
        std::process::Command::new(binary)
            .args(["run", "--rm", "--network", "none", "busybox", "true"])
            .env("LADE_ROOT", lade.root())
            .output()
            .unwrap()
    };
    let linked = lade.dir.path().join("linked");
    std::fs::create_dir(&linked).unwrap();
    std::os::unix::fs::symlink(&real, linked.join("lade")).unwrap();
    let output = run(&linked.join("lade"));
    assert!(output.status.success(), "through a link: {output:?}");

    // A directory beside the build's, so that lade can be hard-linked (not copied).
    let alone = tempfile::tempdir_in(real.parent().unwrap()).unwrap();
    let lone = alone.path().join("lade");
    if std::fs::hard_link(&real, &lone).is_err() {
        std::fs::copy(&real, &lone).unwrap();
    }
    let output = run(&lone);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(125), "{stderr}");
    let missing = alone.path().join("lade-init");
    assert!(
        stderr.contains(&format!("{}: No such file", missing.display())),
        "names the missing init: {stderr}"
    );
}

/// A detached container's monitor keeps the init it found first: its restarts start
/// even once `lade-init` is gone from beside lade (as when an upgrade replaces both), so
/// the spec it sends is always read by the init of its own build.
#[test]
fn a_monitor_restarts_its_container_with_the_init_it_started_with() {
    let lade = lade();
    let real = assert_cmd::cargo::cargo_bin("lade");
    // A directory beside the build's, so that the binaries can be hard-linked.
    let install = tempfile::tempdir_in(real.parent().unwrap()).unwrap();
    for name in ["lade", "lade-init"] {
        let from = real.with_file_name(name);
        let to = install.path().join(name);
        if std::fs::hard_link(&from, &to).is_err() {
            std::fs::copy(&from, &to).unwrap();
        }
    }
    let shared = tempfile::tempdir().unwrap();
    let fifo = shared.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let volume = format!("{}:/shared", shared.path().display());
    // The first run waits on the fifo until lade-init is gone; the restarts do not wait.
    let started = std::process::Command::new(install.path().join("lade"))
        .args([
            "run",
            "-d",
            "--name",
            "pinned",
            "--restart",
            "on-failure:2",
            "-v",
        ])
        .args([&volume, "busybox", "sh", "-c"])
        .arg("echo run >> /shared/runs; [ $(wc -l < /shared/runs) -gt 1 ] || read x < /shared/fifo; exit 1")
        .env("LADE_ROOT", lade.root())
        .output()
        .unwrap();
    assert!(started.status.success(), "{started:?}");
    std::fs::remove_file(install.path().join("lade-init")).unwrap();
    std::fs::write(&fifo, "go\n").unwrap();
    assert_eq!(lade.ok(&["wait", "pinned"]).trim(), "1");
    common::wait_until("the last run to be recorded", || {
        lade.ok(&[
            "inspect",
            "--format",
            "{{.RestartCount}} {{.State.Status}}",
            "pinned",
        ])
        .trim()
            == "2 exited"
    });
    let runs = std::fs::read_to_string(shared.path().join("runs")).unwrap();
    assert_eq!(
        runs.lines().count(),
        3,
        "the first run and two restarts: {runs}"
    );
    lade.ok(&["rm", "pinned"]);
}
