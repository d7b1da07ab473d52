//! What an attacker or a careless user could do to lade, and what must hold: the store
//! is closed to other users, bind mounts stay inside the context, closed pipes end
//! quietly, other users are told whose store it is.

use crate::common;

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
    lade.ok(&["system", "check"]);
    std::fs::set_permissions(lade.root(), std::fs::Permissions::from_mode(0o755)).unwrap();
    lade.ok(&["images"]);
    let mode = std::fs::metadata(lade.root()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "the store root was left at {mode:o}");
}

#[test]
fn another_user_is_told_whose_store_it_is() {
    let lade = lade_under_open_dir();
    lade.ok(&["system", "check"]);
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

/// The pids of processes whose command line is `command` (words joined by spaces).
fn processes_running(command: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let words: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|w| !w.is_empty())
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect();
        if words.join(" ") == command {
            found.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    found
}

/// Reads `child`'s stderr until a line contains `marker`; returns what was read.
fn read_stderr_until(child: &mut std::process::Child, marker: &str) -> String {
    use std::io::BufRead;
    let stderr = child.stderr.as_mut().expect("stderr is piped");
    let mut reader = std::io::BufReader::new(stderr);
    let mut seen = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).unwrap();
        assert!(n > 0, "lade ended before printing {marker:?}:\n{seen}");
        seen.push_str(&line);
        if line.contains(marker) {
            return seen;
        }
    }
}

/// Waits for a child with a generous bound, killing it (and failing) past it.
fn wait_bounded(child: &mut std::process::Child, what: &str) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} did not end");
        }
        std::thread::park_timeout(std::time::Duration::from_millis(20));
    }
}

#[test]
fn ctrl_c_and_sigterm_cancel_a_build() {
    let lade = Lade::new();
    lade.busybox();
    for (signal, code) in [
        (nix::sys::signal::Signal::SIGINT, 130),
        (nix::sys::signal::Signal::SIGTERM, 143),
    ] {
        let context = Context::new(&format!(
            "FROM busybox\nRUN echo {signal}-ready && sleep 30{code}\nRUN touch /after\n"
        ));
        let mut child = lade
            .process()
            .args(["build", "--progress", "plain", "-t", "cancelled:1"])
            .arg(context.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let seen = read_stderr_until(&mut child, &format!("{signal}-ready"));
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
        let status = wait_bounded(&mut child, "the interrupted build");
        let mut rest = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut rest).unwrap();
        assert_eq!(status.code(), Some(code), "{seen}{rest}");
        assert!(rest.contains("interrupted"), "{rest}");
        assert!(
            !lade.ok(&["images"]).contains("cancelled"),
            "an interrupted build tagged its image"
        );
        let sleepers = processes_running(&format!("sleep 30{code}"));
        assert!(
            sleepers.is_empty(),
            "the step's sandbox lives on: {sleepers:?}"
        );
    }
    // The store works and the step reruns: nothing of it was recorded.
    let context = Context::new("FROM busybox\nRUN echo again\n");
    lade.build(context.path(), &["-t", "after:1"]);
}

#[test]
fn a_build_stopped_as_timeout_stops_it_never_caches_the_step_it_was_running() {
    use std::os::unix::process::CommandExt;
    let lade = Lade::new();
    lade.busybox();
    // `timeout -s TERM` signals lade, then its whole process group: the step's sleep
    // must not die of it and let the rest of the command run to a clean exit.
    for round in 0..3 {
        // A duration no other test's process has.
        let sleep = format!("{}{round}", std::process::id());
        let context = Context::new(&format!(
            "FROM busybox\nRUN sleep {sleep} & echo round{round}-ready; wait; echo done > /two\n"
        ));
        let child = lade
            .process()
            .args(["build", "--progress", "plain"])
            .arg(context.path())
            .process_group(0)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut child = common::Killed(child);
        let child = &mut child.0;
        let seen = read_stderr_until(child, &format!("round{round}-ready"));
        // The step's processes are out of reach of what is sent to lade's group or
        // session (a terminal's job control, timeout).
        let mut sleeper = Vec::new();
        common::wait_until("the step's sleep starts", || {
            sleeper = processes_running(&format!("sleep {sleep}"));
            !sleeper.is_empty()
        });
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", sleeper[0])).unwrap();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        let (group_of_step, session_of_step) = (fields[2], fields[3]);
        let lade_pid = child.id().to_string();
        assert_ne!(
            group_of_step, lade_pid,
            "the step is in lade's process group"
        );
        assert_ne!(
            session_of_step,
            nix::unistd::getsid(None).unwrap().to_string(),
            "the step is in the caller's session"
        );
        let group = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGTERM).unwrap();
        nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGTERM).unwrap();
        let status = wait_bounded(child, "the stopped build");
        let mut rest = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut rest).unwrap();
        assert_eq!(status.code(), Some(143), "{seen}{rest}");
        assert!(!rest.contains("#2 DONE"), "the step was done: {seen}{rest}");
        let explain = lade.ok(&["build", "--explain", context.path().to_str().unwrap()]);
        assert!(
            explain.contains("0 step(s) cached"),
            "round {round}: the stopped step was recorded:\n{explain}\n{seen}{rest}"
        );
    }
}

#[test]
fn rm_refuses_a_running_container_and_rm_f_kills_it() {
    let lade = Lade::new();
    lade.busybox();
    let shared = tempfile::tempdir().unwrap();
    let volume = format!("{}:/handshake", shared.path().display());
    let mut run = lade
        .process()
        .args(["run", "--name", "longrun", "--memory", "64m", "-v", &volume])
        .args([
            "busybox",
            "sh",
            "-c",
            "touch /handshake/ready; exec sleep 299",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let ready = shared.path().join("ready");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !ready.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the container never started"
        );
        std::thread::park_timeout(std::time::Duration::from_millis(20));
    }
    let ps = lade.ok(&["ps"]);
    assert!(ps.contains("longrun") && ps.contains("Up "), "{ps}");

    let refused = lade.fails(&["rm", "longrun"]);
    assert!(refused.contains("is running"), "{refused}");
    assert!(lade.ok(&["ps"]).contains("longrun"));

    let id = lade.ok(&["ps", "-q", "--no-trunc"]).trim().to_string();
    lade.ok(&["rm", "-f", "longrun"]);
    let status = wait_bounded(&mut run, "lade run of the removed container");
    assert_eq!(status.code(), Some(137));
    assert!(!lade.ok(&["ps", "-a"]).contains("longrun"));
    let sleepers = processes_running("sleep 299");
    assert!(sleepers.is_empty(), "the container lives on: {sleepers:?}");
    let cgroups = common::run(
        "sh",
        &[
            "-c",
            &format!("find /sys/fs/cgroup -path '*lade/{id}' -type d 2>/dev/null || true"),
        ],
    );
    assert!(cgroups.trim().is_empty(), "cgroups left: {cgroups}");
}

#[test]
fn the_host_binary_is_never_visible_inside_a_container() {
    let lade = Lade::new();
    lade.busybox();
    let binary = assert_cmd::cargo::cargo_bin("lade");
    use std::os::unix::fs::MetadataExt;
    let host_inode = std::fs::metadata(&binary).unwrap().ino();
    let out = lade.ok(&[
        "run",
        "--rm",
        "--init",
        "busybox",
        "sh",
        "-c",
        "readlink /proc/1/exe; stat -L -c %i /proc/1/exe; (echo x >> /proc/1/exe && echo written) 2>/dev/null; true",
    ]);
    let mut lines = out.lines();
    let link = lines.next().unwrap_or_default();
    let inode: u64 = lines.next().unwrap_or_default().trim().parse().unwrap_or(0);
    assert!(
        !link.contains(binary.to_str().unwrap()) && !link.contains("target/"),
        "PID 1 shows the host binary: {link}"
    );
    assert_ne!(inode, host_inode, "PID 1 is the host binary's inode");
    assert!(
        !out.contains("written"),
        "PID 1's binary was writable: {out}"
    );
}

/// What Docker's default seccomp profile answers, for each probe of
/// `tests/fixtures/syscall-probe.c`.
const SECCOMP_EXPECTED: &[(&str, &str)] = &[
    ("getpid", "ok"),
    ("clone", "ok"),
    ("clone_newuser", "EPERM"),
    ("clone_newns", "EPERM"),
    ("clone_newnet", "EPERM"),
    ("clone3", "ENOSYS"),
    ("unshare", "EPERM"),
    ("setns", "EPERM"),
    ("keyctl", "EPERM"),
    ("add_key", "EPERM"),
    ("bpf", "EPERM"),
    ("userfaultfd", "EPERM"),
    ("mount", "EPERM"),
    ("perf_event_open", "EPERM"),
    ("socket_inet", "ok"),
    ("socket_vsock", "EPERM"),
    ("personality_linux", "ok"),
    ("personality_bsd", "EPERM"),
    ("memfd_create", "ok"),
    ("chroot", "ok"),
    ("open_by_handle_at", "EPERM"),
    ("kexec_load", "EPERM"),
    ("io_uring_setup", "EPERM"),
    ("io_uring_enter", "EPERM"),
    ("io_uring_register", "EPERM"),
];

#[test]
fn seccomp_allows_and_refuses_what_dockers_default_profile_does() {
    let lade = Lade::new();
    lade.busybox();
    let context = Context::new(
        "FROM busybox\nCOPY probe /probe\nRUN /probe > /during-build\nCMD [\"/probe\"]\n",
    );
    common::compile_fixture("syscall-probe", &context.path().join("probe"));
    lade.build(context.path(), &["-t", "probe:1"]);
    let expected: String = SECCOMP_EXPECTED
        .iter()
        .map(|(name, result)| format!("{name}={result}\n"))
        .collect();
    assert_eq!(lade.ok(&["run", "--rm", "probe:1"]), expected, "lade run");
    assert_eq!(
        lade.ok(&["run", "--rm", "probe:1", "cat", "/during-build"]),
        expected,
        "a RUN step"
    );
}

#[test]
fn docker_commands_and_options_lade_lacks_are_refused() {
    let lade = Lade::new();
    let output = lade.output(&["swarm", "init"]);
    assert_eq!(output.status.code(), Some(125));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("lade swarm is not supported"), "{stderr}");
    let output = lade.output(&["run", "--gpus", "all", "busybox"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--gpus is not supported by lade run"),
        "{stderr}"
    );
    assert!(!stderr.contains("--root"), "{stderr}");
}

#[test]
fn paths_through_symlinks_in_the_image_are_followed_inside_it() {
    let lade = Lade::new();
    lade.busybox();
    let context = Context::new(
        "FROM busybox\n\
         RUN mkdir -p /opt/app && ln -s /opt/app /app && ln -s /not-yet /later\n\
         COPY f /app/\n\
         WORKDIR /app\n\
         RUN pwd > /opt/app/pwd\n",
    );
    context.file("f", "through the link\n");
    lade.build(context.path(), &["-t", "links:1"]);
    let out = lade.ok(&[
        "run",
        "--rm",
        "links:1",
        "sh",
        "-c",
        "readlink /app; cat /opt/app/f /opt/app/pwd",
    ]);
    assert_eq!(out, "/opt/app\nthrough the link\n/opt/app\n");
    // -w through a link whose target does not exist yet makes the target.
    assert_eq!(
        lade.ok(&["run", "--rm", "-w", "/later", "links:1", "pwd"]),
        "/not-yet\n"
    );
}

#[test]
fn run_refuses_volumes_over_the_sandboxs_own_mounts_and_names_missing_images() {
    let lade = Lade::new();
    lade.busybox();
    for target in ["/proc", "/proc/sys", "/", "/x/../proc"] {
        let err = lade.fails(&[
            "run",
            "--rm",
            "-v",
            &format!("/tmp:{target}"),
            "busybox",
            "true",
        ]);
        assert!(err.contains("invalid mount"), "{target}: {err}");
    }
    let err = lade.fails(&["run", "--rm", "--pull", "never", "nosuch:1"]);
    assert!(
        err.contains("image nosuch:1 is not in the store") && err.contains("lade load"),
        "{err}"
    );
    // By default the store's lack is a pull, whose failure names the image.
    let err = lade.fails(&["run", "--rm", "nosuch:1"]);
    assert!(
        err.contains("Unable to find image 'nosuch:1' locally")
            && err.contains("cannot pull nosuch:1"),
        "{err}"
    );
}

#[test]
fn add_of_a_url_is_bounded_by_the_stores_reserve() {
    let lade = Lade::new();
    lade.busybox();
    // A server that claims a body of 16 TiB.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        if let Ok((mut stream, _)) = listener.accept() {
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let _ =
                stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 17592186044416\r\n\r\nzzzz");
        }
    });
    let context = Context::new(&format!(
        "FROM busybox\nADD http://127.0.0.1:{port}/huge /huge\n"
    ));
    let err = lade.fails(&[
        "build",
        "--progress",
        "plain",
        context.path().to_str().unwrap(),
    ]);
    assert!(err.contains("reserve"), "{err}");
    server.join().unwrap();
}

/// Imports a root of busybox alone with `tweak` applied to it, as image `name`.
fn import_busybox_root(lade: &Lade, name: &str, tweak: impl FnOnce(&Path)) {
    common::require_tool("busybox");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rootfs");
    for sub in ["bin", "dev", "sys", "etc", "tmp"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    for applet in ["sh", "cat", "echo", "ls", "true", "wc"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    tweak(&root);
    let tarball = dir.path().join("rootfs.tar");
    common::run(
        "tar",
        &[
            "-C",
            root.to_str().unwrap(),
            "-cf",
            tarball.to_str().unwrap(),
            ".",
        ],
    );
    lade.ok(&[
        "import",
        "--progress",
        "quiet",
        "--change",
        "ENV PATH=/bin",
        tarball.to_str().unwrap(),
        name,
    ]);
}

#[test]
fn an_image_whose_proc_is_a_symlink_gets_no_unmasked_proc() {
    let lade = Lade::new();
    import_busybox_root(&lade, "proclink:1", |root| {
        std::fs::create_dir(root.join("elsewhere")).unwrap();
        std::os::unix::fs::symlink("/elsewhere", root.join("proc")).unwrap();
    });
    // What it prints is not in its text, which a build's log repeats.
    let attack = "cat /proc/sys/kernel/core_pattern > /proc/sys/kernel/core_pattern && echo WROTE-$((6*7)); cat /proc/keys && echo KEYS-$((6*7))";
    let output = lade.output(&["run", "--rm", "proclink:1", "sh", "-c", attack]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stdout.contains("WROTE-42") && !stdout.contains("KEYS-42"),
        "the container reached an unmasked proc:\n{stdout}\n{stderr}"
    );
    assert!(!output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("/proc is not a directory"),
        "the refusal names /proc: {stderr}"
    );
    // A build's RUN goes through the same sandbox.
    let context = Context::new(&format!("FROM proclink:1\nRUN {attack}\n"));
    let output = lade.output(&[
        "build",
        "--progress",
        "plain",
        context.path().to_str().unwrap(),
    ]);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && !log.contains("WROTE-42") && !log.contains("KEYS-42"),
        "{log}"
    );
    assert!(log.contains("/proc is not a directory"), "{log}");

    // Mount targets that reach / or /proc through an image's symlink are refused too.
    import_busybox_root(&lade, "rootlink:1", |root| {
        std::fs::create_dir(root.join("proc")).unwrap();
        std::os::unix::fs::symlink("/", root.join("rootl")).unwrap();
    });
    for target in ["/rootl", "/rootl/proc", "/rootl/proc/sys"] {
        let output = lade.output(&[
            "run",
            "--rm",
            "-v",
            &format!("/tmp:{target}"),
            "rootlink:1",
            "sh",
            "-c",
            "echo RAN",
        ]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success() && !String::from_utf8_lossy(&output.stdout).contains("RAN"),
            "{target} was mounted: {stderr}"
        );
        assert!(
            stderr.contains("which the sandbox owns"),
            "{target}: {stderr}"
        );
    }
    // The masks hold on an ordinary image.
    let out = lade.ok(&[
        "run",
        "--rm",
        "rootlink:1",
        "sh",
        "-c",
        "cat /proc/keys | wc -c; echo x > /proc/sys/kernel/core_pattern || echo REFUSED",
    ]);
    assert!(out.starts_with("0\n") && out.contains("REFUSED"), "{out}");
}

#[test]
fn steps_that_leave_the_sandbox_need_the_builds_entitlement() {
    let lade = Lade::new();
    lade.busybox();
    // With every capability and no seccomp filter, a step could open host files by
    // handle: it runs only when the build was started with --allow.
    let context = Context::new(
        "FROM busybox\nRUN --security=insecure grep CapEff /proc/self/status > /caps\n",
    );
    let output = lade.output(&[
        "build",
        "--progress",
        "plain",
        context.path().to_str().unwrap(),
    ]);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{log}");
    assert!(
        log.contains("--allow security.insecure") && !log.contains("#2 DONE"),
        "refused before it runs, naming the flag: {log}"
    );
    lade.build(
        context.path(),
        &["--allow", "security.insecure", "-t", "insecure:1"],
    );
    let caps = lade.ok(&["run", "--rm", "insecure:1", "cat", "/caps"]);
    let effective = u64::from_str_radix(caps.trim().trim_start_matches("CapEff:").trim(), 16)
        .unwrap_or_else(|e| panic!("{caps}: {e}"));
    const CAP_SYS_ADMIN: u32 = 21;
    assert!(effective & (1 << CAP_SYS_ADMIN) != 0, "{caps}");

    let context = Context::new("FROM busybox\nRUN --network=host true\n");
    let err = lade.fails(&[
        "build",
        "--progress",
        "plain",
        context.path().to_str().unwrap(),
    ]);
    assert!(err.contains("--allow network.host"), "{err}");
    lade.build(context.path(), &["--allow", "network.host"]);
    let err = lade.fails(&[
        "build",
        "--allow",
        "root.everything",
        context.path().to_str().unwrap(),
    ]);
    assert!(err.contains("unknown entitlement"), "{err}");
}

/// Runs lade with `args` as a terminal's shell would: in a session whose controlling
/// terminal is a new pty, which is also lade's standard input. Returns stdout.
fn lade_from_a_terminal(lade: &Lade, args: &[&str]) -> String {
    let pty = nix::pty::openpty(None, None).expect("a pty");
    // The main side stays open while lade runs, or the terminal hangs up.
    let _main_side = pty.master;
    let terminal = std::fs::File::from(pty.slave);
    let mut command = lade.process();
    command
        .args(args)
        .stdin(terminal)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    // SAFETY: between fork and exec only setsid and ioctl, both async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let output = command.output().expect("lade runs");
    assert!(
        output.status.success(),
        "lade {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_container_cannot_type_into_the_terminal_that_started_it() {
    let lade = Lade::new();
    lade.busybox();
    let context = Context::new("FROM busybox\nCOPY tiocsti /tiocsti\n");
    common::compile_fixture("tiocsti", &context.path().join("tiocsti"));
    lade.build(context.path(), &["-t", "tiocsti:1"]);
    // Without -t the container must not share the caller's session, whose controlling
    // terminal /dev/tty opens.
    let out = lade_from_a_terminal(&lade, &["run", "--rm", "tiocsti:1", "/tiocsti"]);
    assert!(!out.contains("=ok"), "lade run: {out}");
    assert!(
        out.contains("devtty=ENXIO"),
        "no controlling terminal: {out}"
    );
    lade.ok(&["run", "-d", "--name", "idle", "tiocsti:1", "sleep", "600"]);
    let out = lade_from_a_terminal(&lade, &["exec", "idle", "/tiocsti"]);
    assert!(!out.contains("=ok"), "lade exec: {out}");
    assert!(
        out.contains("devtty=ENXIO"),
        "no controlling terminal: {out}"
    );
}

#[test]
fn root_refuses_a_store_another_user_could_have_changed() {
    let lade = Lade::new();
    lade.busybox();
    // A user's own store, used with sudo: its owner could have edited the database.
    nix::unistd::chown(&lade.root(), Some(nix::unistd::Uid::from_raw(NOBODY)), None).unwrap();
    let err = lade.fails(&["run", "--rm", "busybox", "true"]);
    assert!(
        err.contains("belongs to nobody (uid 65534)") && err.contains("--root"),
        "{err}"
    );
    let err = lade.fails(&["images"]);
    assert!(
        err.contains("belongs to nobody"),
        "read-only commands too: {err}"
    );
    nix::unistd::chown(&lade.root(), Some(nix::unistd::Uid::from_raw(0)), None).unwrap();
    lade.ok(&["images"]);

    // Its database, made by the user before the store was closed.
    let db = lade.root().join("lade.db");
    nix::unistd::chown(&db, Some(nix::unistd::Uid::from_raw(NOBODY)), None).unwrap();
    let err = lade.fails(&["images"]);
    assert!(err.contains("lade.db belongs to nobody"), "{err}");
    nix::unistd::chown(&db, Some(nix::unistd::Uid::from_raw(0)), None).unwrap();

    // Its staging or snapshot directory turned into a symlink.
    let tmp = lade.root().join("tmp");
    std::fs::remove_dir_all(&tmp).unwrap();
    std::os::unix::fs::symlink("/etc", &tmp).unwrap();
    let err = lade.fails(&["run", "--rm", "busybox", "true"]);
    assert!(err.contains("tmp is a symlink"), "{err}");
    assert!(
        std::fs::metadata("/etc/passwd").is_ok(),
        "the symlink's target is untouched"
    );
    std::fs::remove_file(&tmp).unwrap();
    lade.ok(&["run", "--rm", "busybox", "true"]);
}

#[test]
fn device_nodes_made_in_a_volume_or_bind_cannot_be_opened() {
    let lade = Lade::new();
    lade.busybox();
    // A container keeps CAP_MKNOD (Docker's set); lade has no device cgroup, so nodev on
    // every mount it can write is what keeps a node it makes from reaching the host's
    // devices (block 254:0 would be the host's disk).
    let host = tempfile::tempdir().unwrap();
    let bind = format!("{}:/bound", host.path().display());
    for target in ["/data", "/bound", "/scratch"] {
        let out = lade.ok(&[
            "run",
            "--rm",
            "-v",
            "devices:/data",
            "-v",
            &bind,
            "--tmpfs",
            "/scratch",
            "busybox",
            "sh",
            "-c",
            &format!(
                "mknod {target}/null c 1 3 && echo made; echo x > {target}/null && echo OPENED-$((6*7)); true"
            ),
        ]);
        assert!(out.contains("made"), "{target}: {out}");
        assert!(
            !out.contains("OPENED-42"),
            "{target}: a device node opened: {out}"
        );
    }
}

#[test]
fn mount_targets_through_dangling_links_are_made_inside_the_image() {
    let lade = Lade::new();
    // As systemd images ship it: a link to a file that exists only on a booted system.
    import_busybox_root(&lade, "stub:1", |root| {
        std::fs::create_dir(root.join("proc")).unwrap();
        std::os::unix::fs::symlink(
            "../run/systemd/resolve/stub-resolv.conf",
            root.join("etc/resolv.conf"),
        )
        .unwrap();
        std::os::unix::fs::symlink("/nowhere/data", root.join("data")).unwrap();
    });
    let out = lade.ok(&[
        "run",
        "--rm",
        "--dns",
        "192.0.2.53",
        "-v",
        "kept:/data",
        "stub:1",
        "sh",
        "-c",
        "cat /etc/resolv.conf; echo x > /data/f && cat /nowhere/data/f",
    ]);
    assert!(out.contains("192.0.2.53") && out.ends_with("x\n"), "{out}");
}

#[test]
fn a_store_under_a_directory_another_user_controls_is_refused() {
    let lade = Lade::new();
    // lade.dir is root's; the store goes one level further down.
    let between = lade.dir.path().join("between");
    std::fs::create_dir(&between).unwrap();
    let store = between.join("store");
    lade.cmd()
        .env("LADE_ROOT", &store)
        .args(["volume", "create", "made"])
        .assert()
        .success();
    let run = |expect_ok: bool| {
        let output = lade
            .cmd()
            .env("LADE_ROOT", &store)
            .args(["images"])
            .output()
            .unwrap();
        assert_eq!(
            output.status.success(),
            expect_ok,
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    run(true);
    // Its owner could rename the store away and put their own in its place.
    nix::unistd::chown(&between, Some(nix::unistd::Uid::from_raw(NOBODY)), None).unwrap();
    let err = run(false);
    assert!(err.contains("between belongs to nobody"), "{err}");
    nix::unistd::chown(&between, Some(nix::unistd::Uid::from_raw(0)), None).unwrap();
    std::fs::set_permissions(&between, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = run(false);
    assert!(err.contains("between is writable by other users"), "{err}");
    // Sticky, as /tmp: others may not rename what is not theirs.
    std::fs::set_permissions(&between, std::fs::Permissions::from_mode(0o1777)).unwrap();
    run(true);
    // Reached through a symlink: the link's directory and the real path both count.
    std::fs::set_permissions(&between, std::fs::Permissions::from_mode(0o755)).unwrap();
    let open = lade.dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::os::unix::fs::symlink(&store, open.join("link")).unwrap();
    let output = lade
        .cmd()
        .env("LADE_ROOT", open.join("link"))
        .args(["images"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && err.contains("open is writable"),
        "{err}"
    );
}

/// The init that stays as PID 1 with `--init` carries none of lade's own environment
/// (the caller's tokens would be the container's to read in /proc/1/environ).
#[test]
fn the_init_does_not_carry_lades_environment() {
    let lade = Lade::new();
    lade.busybox();
    let out = lade
        .cmd()
        .env("LADE_TEST_HOST_TOKEN", "host-only-value")
        .args([
            "run",
            "--rm",
            "--init",
            "busybox",
            "sh",
            "-c",
            "tr '\\0' '\\n' < /proc/1/environ; echo; env",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("PATH="),
        "the container's own environment: {stdout}"
    );
    assert!(!stdout.contains("host-only-value"), "{stdout}");
}
