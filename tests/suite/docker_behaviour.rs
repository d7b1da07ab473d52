//! Docker's behaviour and exit codes for the container verbs, through the real CLI:
//! `rm -f` of a missing container, `kill` and the status `ps` shows after it, every
//! signal `kill -s` and `stop -s` take, `start` of a running container, verbs on
//! several containers at once, the log a foreground run keeps, `logs --since/--until`,
//! `ps`'s format fields, `run -a stdin`'s printed id, and `rmi -f` of an image a container uses. Every wait is for
//! something the container or lade does, bounded, never a fixed sleep.

use crate::common;

use std::process::Stdio;

use common::{wait_until, Lade};

fn status(lade: &Lade, name: &str) -> String {
    lade.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"])
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")).map(str::to_string))
        .unwrap_or_default()
}

fn logs(lade: &Lade, args: &[&str]) -> String {
    let mut all = vec!["logs"];
    all.extend_from_slice(args);
    lade.ok(&all)
}

#[test]
fn rm_f_of_a_missing_container_is_no_error() {
    let lade = Lade::new();
    let out = lade.output(&["rm", "-f", "nosuch"]);
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");
    let out = lade.output(&["rm", "nosuch"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no such container: nosuch"), "{stderr}");
}

#[test]
fn a_killed_container_has_exited_137_detached_or_foreground() {
    let lade = Lade::new();
    lade.busybox();
    lade.ok(&["run", "-d", "--name", "bg", "busybox", "sleep", "100"]);
    assert_eq!(lade.ok(&["kill", "bg"]).trim(), "bg");
    // Right after: kill waits for the exit to be recorded, as Docker's does.
    let shown = status(&lade, "bg");
    assert!(shown.starts_with("Exited (137) "), "{shown}");
    assert!(shown.ends_with(" ago"), "{shown}");
    assert_eq!(
        lade.ok(&["inspect", "-f", "{{.State.ExitCode}}", "bg"])
            .trim(),
        "137"
    );

    let mut foreground = lade
        .process()
        .args(["run", "--name", "fg", "busybox", "sleep", "100"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("fg runs", || status(&lade, "fg").starts_with("Up "));
    lade.ok(&["kill", "fg"]);
    assert_eq!(foreground.wait().unwrap().code(), Some(137));
    let shown = status(&lade, "fg");
    assert!(shown.starts_with("Exited (137) "), "{shown}");
}

#[test]
fn kill_s_takes_every_signal_name_and_number() {
    let lade = Lade::new();
    lade.busybox();
    // sh as the container's first process: signals it has no trap for are ignored.
    lade.ok(&[
        "run",
        "-d",
        "--name",
        "sig",
        "busybox",
        "sh",
        "-c",
        "trap 'echo got usr1' USR1; trap 'echo got 37' 37; trap 'echo got 62' 62; \
         trap 'echo got 64' 64; trap 'echo got hup' HUP; echo ready; \
         while true; do sleep 0.05; done",
    ]);
    wait_until("ready", || logs(&lade, &["sig"]).contains("ready"));
    let sent = [
        ("usr1", "got usr1"),
        ("RTMIN+3", "got 37"),
        ("sigrtmax-2", "got 62"),
        ("64", "got 64"),
        ("SIGhup", "got hup"),
    ];
    for (signal, seen) in sent {
        assert_eq!(lade.ok(&["kill", "-s", signal, "sig"]).trim(), "sig");
        wait_until(seen, || logs(&lade, &["sig"]).contains(seen));
    }
    for bad in ["RTMIN+16", "0", "65", "NOPE"] {
        let err = lade.fails(&["kill", "-s", bad, "sig"]);
        assert!(err.contains(&format!("invalid signal: {bad}")), "{err}");
    }
    assert!(status(&lade, "sig").starts_with("Up "));
    lade.ok(&["rm", "-f", "sig"]);
}

#[test]
fn start_of_a_running_container_does_nothing() {
    let lade = Lade::new();
    lade.busybox();
    let id = lade.ok(&["run", "-d", "--name", "up", "busybox", "sleep", "100"]);
    let pid = lade.ok(&["inspect", "-f", "{{.State.Pid}}", "up"]);
    let out = lade.output(&["start", "up"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "up\n");
    assert_eq!(lade.ok(&["inspect", "-f", "{{.State.Pid}}", "up"]), pid);
    assert!(!id.is_empty());
    lade.ok(&["rm", "-f", "up"]);
}

#[test]
fn stop_takes_a_signal_and_a_timeout_and_stops_containers_at_once() {
    let lade = Lade::new();
    lade.busybox();
    // Eight that ignore SIGTERM: each ends by SIGKILL after the timeout. Stopped one
    // after the other they would take eight timeouts; Docker's client stops them at once
    // (what `engine::each_container` does, tested there), so the eight names come back
    // and all eight exited with 137.
    let names: Vec<String> = (0..8).map(|i| format!("deaf{i}")).collect();
    for name in &names {
        lade.ok(&[
            "run",
            "-d",
            "--name",
            name,
            "busybox",
            "sh",
            "-c",
            "trap '' TERM; while true; do sleep 0.05; done",
        ]);
    }
    let mut args = vec!["stop", "-t", "1"];
    args.extend(names.iter().map(String::as_str));
    let out = lade.ok(&args);
    let mut stopped: Vec<&str> = out.lines().collect();
    stopped.sort();
    assert_eq!(
        stopped,
        names.iter().map(String::as_str).collect::<Vec<_>>()
    );
    for name in &names {
        assert!(status(&lade, name).starts_with("Exited (137)"), "{name}");
    }

    // `-s` and `--timeout`: the signal given, not the container's.
    lade.ok(&[
        "run",
        "-d",
        "--name",
        "usr",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 7' USR1; echo ready; while true; do sleep 0.05; done",
    ]);
    wait_until("ready", || logs(&lade, &["usr"]).contains("ready"));
    assert_eq!(
        lade.ok(&["stop", "-s", "USR1", "--timeout", "30", "usr"])
            .trim(),
        "usr"
    );
    assert!(status(&lade, "usr").starts_with("Exited (7)"));

    // One that fails makes the exit code 1; the others are still stopped.
    lade.ok(&["start", "usr"]);
    let out = lade.output(&["stop", "-t", "5", "nosuch", "usr"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "usr\n");
    let err = lade.fails(&["stop", "-s", "RTMIN+99", "usr"]);
    assert!(err.contains("invalid signal: RTMIN+99"), "{err}");
}

#[test]
fn a_foreground_run_keeps_its_log() {
    let lade = Lade::new();
    lade.busybox();
    let out = lade.output(&[
        "run",
        "--name",
        "fg",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; printf end",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\nend");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    let logged = lade.output(&["logs", "fg"]);
    assert_eq!(String::from_utf8_lossy(&logged.stdout), "out\nend");
    assert_eq!(String::from_utf8_lossy(&logged.stderr), "err\n");
    // --log-driver none keeps nothing, as a detached run's.
    lade.ok(&[
        "run",
        "--name",
        "quiet",
        "--log-driver",
        "none",
        "busybox",
        "echo",
        "hi",
    ]);
    assert!(lade.fails(&["logs", "quiet"]).contains("quiet"));
}

/// `-it` when stdin is not a terminal is refused before anything runs, in Docker's words
/// and with its exit code 1 (docker/cli streams.In.CheckTty), for run and exec; `-t`
/// alone, or `-d`, needs no terminal.
#[test]
fn a_terminal_with_stdin_needs_stdin_to_be_one() {
    let lade = Lade::new();
    lade.busybox();
    let refused = |args: &[&str]| {
        let out = lade.output(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "lade: cannot attach stdin to a TTY-enabled container because stdin is not a terminal\n"
        );
    };
    refused(&["run", "-it", "--name", "never", "busybox", "true"]);
    assert!(lade.fails(&["inspect", "never"]).contains("never"));
    assert_eq!(
        lade.ok(&["run", "--rm", "-t", "busybox", "echo", "hi"]),
        "hi\r\n"
    );
    lade.ok(&["run", "-dit", "--name", "up", "busybox", "sh"]);
    refused(&["exec", "-it", "up", "true"]);
    lade.ok(&["exec", "-t", "up", "true"]);
    lade.ok(&["rm", "-f", "up"]);
}

/// `run -a stdin` attaches neither output: the container's output goes to its log only,
/// and the run prints the container's id instead, as Docker's (docker/cli runContainer:
/// "!config.AttachStdout && !config.AttachStderr" prints the id).
#[test]
fn run_attached_to_stdin_alone_prints_the_id() {
    let lade = Lade::new();
    lade.busybox();
    let out = lade.output(&[
        "run", "--name", "in", "-a", "stdin", "busybox", "echo", "hello",
    ]);
    assert!(out.status.success(), "{out:?}");
    let id = lade.ok(&["inspect", "--format", "{{.Id}}", "in"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), id);
    assert_eq!(lade.ok(&["logs", "in"]), "hello\n");
    // -a stdout keeps the output and prints no id.
    let out = lade.ok(&["run", "--rm", "-a", "stdout", "busybox", "echo", "hi"]);
    assert_eq!(out, "hi\n");
}

#[test]
fn logs_since_and_until_take_dockers_times() {
    let lade = Lade::new();
    lade.busybox();
    lade.ok(&["run", "--name", "said", "busybox", "echo", "hello"]);
    let shown = |since: &str, until: &str| {
        let mut args = vec!["said"];
        if !since.is_empty() {
            args.extend(["--since", since]);
        }
        if !until.is_empty() {
            args.extend(["--until", until]);
        }
        logs(&lade, &args)
    };
    let now = jiff::Timestamp::now();
    let later = now + jiff::SignedDuration::from_secs(3600);
    let fraction = format!("{}.5", later.as_second());
    for since in [
        "2000-01-02",
        "2000-01-02T03:04:05Z",
        "946782245.25",
        "1h",
        "1h30m",
        "10m",
    ] {
        assert_eq!(shown(since, ""), "hello\n", "--since {since}");
    }
    for until in ["2000-01-02", "2000-01-02T03:04", "946782245.25", "1h"] {
        assert_eq!(shown("", until), "", "--until {until}");
    }
    assert_eq!(shown(&fraction, ""), "", "--since {fraction}");
    assert_eq!(shown("-1h", ""), "", "--since -1h is in an hour");
    assert_eq!(shown("", "-1h"), "hello\n");
    let err = lade.fails(&["logs", "--since", "5y", "said"]);
    assert!(err.contains("5y"), "{err}");

    // -f --until: returns once that time has passed, though the container runs on.
    lade.ok(&[
        "run",
        "-d",
        "--name",
        "ticks",
        "busybox",
        "sh",
        "-c",
        "while true; do echo tick; sleep 0.1; done",
    ]);
    let until = (jiff::Timestamp::now() + jiff::SignedDuration::from_secs(2)).to_string();
    let mut follow = lade
        .process()
        .args(["logs", "-f", "--until", &until, "ticks"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("logs -f --until to return", || {
        follow.try_wait().unwrap().is_some()
    });
    let out = follow.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("tick\n"));
    assert!(status(&lade, "ticks").starts_with("Up "));
    lade.ok(&["rm", "-f", "ticks"]);
}

#[test]
fn ps_has_dockers_format_fields() {
    let lade = Lade::new();
    lade.busybox();
    lade.ok(&["volume", "create", "data"]);
    let host = tempfile::tempdir().unwrap();
    let bind = format!("{}:/host", host.path().display());
    let id = lade
        .ok(&[
            "run",
            "-d",
            "--name",
            "web",
            "-l",
            "com.example=yes",
            "-l",
            "b=2",
            "-v",
            "data:/data",
            "-v",
            &bind,
            "busybox",
            "sh",
            "-c",
            "echo \"a quoted word\"; sleep 100",
        ])
        .trim()
        .to_string();
    let field = |format: &str, extra: &[&str]| {
        let mut args = vec!["ps", "--filter", "name=web", "--format", format];
        args.extend_from_slice(extra);
        lade.ok(&args).trim_end().to_string()
    };
    assert_eq!(field("{{.ID}}", &[]), id[..12]);
    assert_eq!(field("{{.ID}}", &["--no-trunc"]), id);
    assert_eq!(
        field("{{.Image}}|{{.Names}}|{{.State}}", &[]),
        "busybox|web|running"
    );
    assert_eq!(field("{{.Command}}", &[]), r#""sh -c echo \"a quote…""#);
    assert_eq!(
        field("{{.Command}}", &["--no-trunc"]),
        r#""sh -c echo \"a quoted word\"; sleep 100""#
    );
    let created = field("{{.CreatedAt}}", &[]);
    let parts: Vec<&str> = created.split(' ').collect();
    assert_eq!(parts.len(), 4, "{created}");
    assert!(
        parts[2].starts_with(['+', '-']) && parts[2].len() == 5,
        "{created}"
    );
    assert!(jiff::civil::DateTime::strptime(
        "%Y-%m-%d %H:%M:%S",
        format!("{} {}", parts[0], parts[1])
    )
    .is_ok());
    assert!(field("{{.RunningFor}}", &[]).ends_with(" ago"));
    assert!(field("{{.Status}}", &[]).starts_with("Up "));
    assert_eq!(field("{{.Labels}}", &[]), "b=2,com.example=yes");
    assert_eq!(
        field(r#"{{.Label "com.example"}}|{{.Label "nope"}}|"#, &[]),
        "yes||"
    );
    let mounts = field("{{.Mounts}}", &["--no-trunc"]);
    assert_eq!(mounts, format!("data,{}", host.path().display()));
    assert_eq!(field("{{.LocalVolumes}}", &[]), "1");
    assert_eq!(field("{{.Networks}}", &[]), "bridge");
    assert_eq!(field("{{.Ports}}|{{.Size}}", &[]), "|0B");
    let table = field(r"table {{.ID}}\t{{.Names}}\t{{.Networks}}", &[]);
    let header = table.lines().next().unwrap();
    assert!(header.starts_with("CONTAINER ID   NAMES"), "{table}");
    assert!(header.ends_with("NETWORKS"), "{table}");

    let json: serde_json::Value = serde_json::from_str(&field("json", &[])).unwrap();
    for (key, value) in [
        ("ID", &id[..12]),
        ("Labels", "b=2,com.example=yes"),
        ("LocalVolumes", "1"),
        ("Networks", "bridge"),
        ("State", "running"),
    ] {
        assert_eq!(json[key], value, "{json}");
    }
    for key in [
        "Command",
        "CreatedAt",
        "RunningFor",
        "Mounts",
        "Ports",
        "Size",
        "Status",
    ] {
        assert!(json[key].is_string(), "{key}: {json}");
    }
    assert!(json.get("Label").is_none(), "{json}");
    assert!(
        !field("{{json .}}", &[]).contains("labels\""),
        "no hidden fields"
    );
    lade.ok(&["rm", "-f", "web"]);
}

#[test]
fn rmi_f_of_an_image_a_container_uses_untags_it() {
    let lade = Lade::new();
    lade.busybox();
    lade.ok(&["create", "--name", "user", "busybox", "echo", "still here"]);
    let out = lade.ok(&["rmi", "-f", "busybox"]);
    assert_eq!(out, "Untagged: busybox:latest\n");
    // The container's layers are kept: it still runs.
    assert_eq!(lade.ok(&["start", "-a", "user"]), "still here\n");
    assert!(lade.ok(&["images"]).contains("<none>"));
}

#[test]
fn wait_answers_at_once_for_a_container_that_is_not_running() {
    let lade = Lade::new();
    lade.busybox();
    lade.ok(&["create", "--name", "broken", "busybox", "/no/such/command"]);
    let out = lade.output(&["start", "broken"]);
    assert!(!out.status.success(), "{out:?}");
    // Docker's default condition is "not running": the failed start's code, at once.
    assert_eq!(lade.ok(&["wait", "broken"]).trim(), "127");
    // And it stays `created`, as Docker keeps a container whose start failed.
    let status = lade.ok(&[
        "ps",
        "-a",
        "--filter",
        "name=broken",
        "--format",
        "{{.Status}}",
    ]);
    assert_eq!(status.trim(), "Created");
    let state = lade.ok(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}}",
        "broken",
    ]);
    assert_eq!(state.trim(), "created 127");
    // Never started: 0, at once, as Docker's `wait` answers.
    lade.ok(&["create", "--name", "idle", "busybox", "true"]);
    assert_eq!(lade.ok(&["wait", "idle"]).trim(), "0");
}

#[test]
fn cp_as_docker_takes_its_arguments_and_destinations() {
    let lade = Lade::new();
    lade.busybox();
    lade.ok(&[
        "run",
        "-d",
        "--name",
        "box",
        "-v",
        "data:/data",
        "busybox",
        "sh",
        "-c",
        "echo a > /tmp/a; echo b > /tmp/b; touch /tmp/ready; sleep 100",
    ]);
    wait_until("the files are written", || {
        lade.output(&["exec", "box", "test", "-e", "/tmp/ready"])
            .status
            .success()
    });
    let host = tempfile::tempdir().unwrap();
    let at = |name: &str| host.path().join(name).to_string_lossy().into_owned();

    // Go's boolean flags take `=false`; alone, or grouped, they are on.
    lade.ok(&["cp", "-a=false", "box:/tmp/a", &at("plain")]);
    lade.ok(&[
        "cp",
        "--archive=true",
        "-L=false",
        "box:/tmp/a",
        &at("kept"),
    ]);
    lade.ok(&["cp", "-aL", "box:/tmp/a", &at("grouped")]);
    for name in ["plain", "kept", "grouped"] {
        assert_eq!(std::fs::read_to_string(at(name)).unwrap(), "a\n", "{name}");
    }

    // No pattern is expanded: `/tmp/*` is a name the container does not have.
    let out = lade.output(&["cp", "box:/tmp/*", &at("")]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Could not find the file /tmp/* in container box"),
        "{stderr}"
    );

    // A device or a pipe is refused, never replaced by a file; `-` is the stream.
    let fifo = at("fifo");
    common::run("mkfifo", &[&fifo]);
    for special in ["/dev/null", fifo.as_str()] {
        let out = lade.output(&["cp", "box:/tmp/a", special]);
        assert!(!out.status.success(), "{special}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("must be a directory or a regular file"),
            "{stderr}"
        );
    }
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    let tar = lade.cmd().args(["cp", "box:/tmp/a", "-"]).output().unwrap();
    assert!(tar.status.success());
    assert_eq!(&tar.stdout[..1], b"a", "a tar whose first entry is `a`");

    // A link named as destination is followed: its target gets the copy.
    std::fs::write(at("target"), "old").unwrap();
    std::os::unix::fs::symlink("target", at("link")).unwrap();
    lade.ok(&["cp", "box:/tmp/b", &at("link")]);
    assert!(std::fs::symlink_metadata(at("link"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read_to_string(at("target")).unwrap(), "b\n");

    // Into the volume of the running container: the volume has it.
    std::fs::write(at("note"), "in the volume").unwrap();
    lade.ok(&["cp", &at("note"), "box:/data/note"]);
    let volume = lade.ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", "data"]);
    assert_eq!(
        std::fs::read_to_string(std::path::Path::new(volume.trim()).join("note")).unwrap(),
        "in the volume"
    );
    lade.ok(&["rm", "-f", "box"]);
}

#[test]
fn inspect_shows_the_log_config_and_restart_policy() {
    let lade = Lade::new();
    lade.busybox();
    lade.ok(&[
        "create",
        "--name",
        "logged",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=2",
        "--restart",
        "on-failure:2",
        "busybox",
        "true",
    ]);
    let host: serde_json::Value =
        serde_json::from_str(&lade.ok(&["inspect", "-f", "{{json .HostConfig}}", "logged"]))
            .unwrap();
    assert_eq!(
        host["LogConfig"],
        serde_json::json!({"Type": "json-file", "Config": {"max-size": "1k", "max-file": "2"}})
    );
    assert_eq!(
        host["RestartPolicy"],
        serde_json::json!({"Name": "on-failure", "MaximumRetryCount": 2})
    );
    lade.ok(&[
        "create",
        "--name",
        "quiet",
        "--log-driver",
        "none",
        "busybox",
        "true",
    ]);
    let log = lade.ok(&["inspect", "-f", "{{json .HostConfig.LogConfig}}", "quiet"]);
    assert_eq!(log.trim(), r#"{"Config":{},"Type":"none"}"#);
}

#[test]
fn stop_with_a_negative_timeout_waits_for_the_stop_signal_alone() {
    let lade = Lade::new();
    lade.busybox();
    lade.ok(&[
        "run",
        "-d",
        "--name",
        "patient",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "trap 'sleep 1; exit 7' TERM; echo ready; while true; do sleep 0.1; done",
    ]);
    wait_until("the trap to be set", || {
        lade.ok(&["logs", "patient"]).contains("ready")
    });
    // -t 0 would kill it at once (137); -t -1 lets its trap finish.
    lade.ok(&["stop", "-t", "-1", "patient"]);
    let code = lade.ok(&["inspect", "-f", "{{.State.ExitCode}}", "patient"]);
    assert_eq!(code.trim(), "7");
    lade.ok(&["rm", "patient"]);
}

#[test]
fn exec_privileged_gives_that_process_every_capability() {
    let lade = Lade::new();
    lade.busybox();
    lade.ok(&[
        "run",
        "-d",
        "--name",
        "capped",
        "--network",
        "none",
        "busybox",
        "sleep",
        "60",
    ]);
    let caps = |extra: &[&str]| {
        let mut args = vec!["exec"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["capped", "grep", "CapEff", "/proc/self/status"]);
        lade.ok(&args)
    };
    let plain = caps(&[]);
    let privileged = caps(&["--privileged"]);
    // Docker's 14 capabilities, against all that lade holds.
    assert_ne!(plain, privileged);
    let bits = |line: &str| {
        u64::from_str_radix(line.split_whitespace().last().unwrap(), 16)
            .unwrap()
            .count_ones()
    };
    assert_eq!(bits(&plain), 14, "{plain}");
    assert!(bits(&privileged) > 30, "{privileged}");
    lade.ok(&["rm", "-f", "capped"]);
}

/// `cp` into a container keeps the owners of what it copies (a host file's, a tar
/// stream's), as Docker's daemon unpacks it; `-a` gives it to the container's user
/// when it has one (docker/daemon: applyTarCopyUserOptions), and keeps the owners when
/// it runs as root by default.
#[test]
fn cp_into_a_container_keeps_owners_and_a_gives_them_to_its_user() {
    let lade = Lade::new();
    lade.busybox();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("owned");
    std::fs::write(&file, "x").unwrap();
    std::os::unix::fs::chown(&file, Some(1042), Some(1043)).unwrap();
    let tar = std::process::Command::new("tar")
        .args(["-C", work.path().to_str().unwrap(), "-cf", "-", "owned"])
        .output()
        .unwrap();
    lade.ok(&["run", "-d", "--name", "plain", "busybox", "sleep", "300"]);
    lade.ok(&[
        "run",
        "-d",
        "--name",
        "user",
        "--user",
        "1000:1001",
        "busybox",
        "sleep",
        "300",
    ]);
    let owner = |container: &str, path: &str| {
        lade.ok(&["exec", container, "stat", "-c", "%u:%g", path])
            .trim()
            .to_string()
    };
    let file = file.to_str().unwrap();
    lade.ok(&["cp", file, "plain:/tmp/host"]);
    assert_eq!(owner("plain", "/tmp/host"), "1042:1043");
    let mut streamed = lade
        .process()
        .args(["cp", "-", "plain:/root"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    streamed
        .stdin
        .take()
        .unwrap()
        .write_all(&tar.stdout)
        .unwrap();
    assert!(streamed.wait().unwrap().success());
    assert_eq!(owner("plain", "/root/owned"), "1042:1043");
    // -a: the container's user, if it has one.
    lade.ok(&["cp", "-a", file, "plain:/tmp/kept"]);
    assert_eq!(owner("plain", "/tmp/kept"), "1042:1043");
    lade.ok(&["cp", "-a", file, "user:/tmp/theirs"]);
    assert_eq!(owner("user", "/tmp/theirs"), "1000:1001");
    lade.ok(&["cp", file, "user:/tmp/kept"]);
    assert_eq!(owner("user", "/tmp/kept"), "1042:1043");
    lade.ok(&["rm", "-f", "plain", "user"]);
}

/// Docker logs every container that is not `--rm`, a foreground one with a terminal too.
#[test]
fn a_foreground_run_with_a_terminal_is_logged() {
    let lade = Lade::new();
    lade.busybox();
    let output = lade.output(&[
        "run",
        "--name",
        "termed",
        "-t",
        "busybox",
        "sh",
        "-c",
        "echo on-the-terminal; exit 3",
    ]);
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("on-the-terminal"));
    let logged = lade.ok(&["logs", "termed"]);
    assert!(logged.contains("on-the-terminal"), "{logged:?}");
}
