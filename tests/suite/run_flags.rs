//! Docker's `run` flags for the sandbox, each proven by what the container sees (or, for
//! a cgroup, by what the host's cgroup files say), and each bad value refused with 125
//! and a message naming the flag.

use crate::common::Lade;

fn lade() -> Lade {
    let lade = Lade::new();
    lade.busybox();
    lade
}

/// Runs `sh -c script` in a busybox container without a network of its own beyond
/// loopback; returns (exit code, stdout, stderr).
fn sh(lade: &Lade, flags: &[&str], script: &str) -> (i32, String, String) {
    let mut args = vec!["run", "--rm", "--network", "none"];
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
    assert_eq!(code, 0, "{flags:?} {script}: exit {code}\n{err}");
    out
}

/// A refused request: 125, and the message names what it should.
fn refused(lade: &Lade, flags: &[&str], names: &str) {
    let (code, _, err) = sh(lade, flags, "true");
    assert_eq!(code, 125, "{flags:?} should be refused: {err}");
    assert!(err.contains(names), "{flags:?}: {err:?} lacks {names:?}");
}

/// A field of `/proc/self/status` in the container.
fn status_field(lade: &Lade, flags: &[&str], field: &str) -> String {
    let out = ok(lade, flags, &format!("grep '^{field}:' /proc/self/status"));
    out.split(':').nth(1).unwrap_or_default().trim().to_string()
}

fn cap_eff(lade: &Lade, flags: &[&str]) -> u64 {
    u64::from_str_radix(&status_field(lade, flags, "CapEff"), 16).unwrap()
}

const CAP_CHOWN: u64 = 1 << 0;
const CAP_NET_ADMIN: u64 = 1 << 12;
const CAP_SYS_ADMIN: u64 = 1 << 21;
const CAP_SYS_TIME: u64 = 1 << 25;

fn host_link(path: &str) -> String {
    std::fs::read_link(path).unwrap().display().to_string()
}

#[test]
fn cap_add_and_cap_drop_take_any_spelling_and_all() {
    let lade = lade();
    let default = cap_eff(&lade, &[]);
    assert_eq!(default.count_ones(), 14, "Docker's 14: {default:x}");
    assert_eq!(default & CAP_NET_ADMIN, 0);
    let added = cap_eff(&lade, &["--cap-add", "NET_ADMIN"]);
    assert_ne!(added & CAP_NET_ADMIN, 0, "{added:x}");
    let both = cap_eff(&lade, &["--cap-add", "cap_sys_time", "--cap-drop", "Chown"]);
    assert_ne!(both & CAP_SYS_TIME, 0, "{both:x}");
    assert_eq!(both & CAP_CHOWN, 0, "{both:x}");
    assert_eq!(cap_eff(&lade, &["--cap-drop", "ALL"]), 0);
    assert_eq!(
        cap_eff(&lade, &["--cap-drop", "all", "--cap-add", "CAP_CHOWN"]),
        CAP_CHOWN
    );
    let all = cap_eff(&lade, &["--cap-add", "ALL"]);
    assert_ne!(all & CAP_SYS_ADMIN, 0, "{all:x}");
    refused(&lade, &["--cap-add", "FLY"], "--cap-add");
    refused(&lade, &["--cap-drop", "CAP_"], "--cap-drop");
}

#[test]
fn privileged_gives_every_capability_no_seccomp_unmasked_proc_and_host_devices() {
    let lade = lade();
    let caps = cap_eff(&lade, &["--privileged"]);
    assert_ne!(caps & CAP_SYS_ADMIN, 0, "{caps:x}");
    assert_eq!(status_field(&lade, &["--privileged"], "Seccomp"), "0");
    assert_eq!(status_field(&lade, &[], "Seccomp"), "2");
    // Docker's read-only /proc/sys is a mount of its own; --privileged has none.
    let proc_sys = "grep -c ' /proc/sys ' /proc/mounts || true";
    assert_ne!(ok(&lade, &[], proc_sys).trim(), "0");
    assert_eq!(ok(&lade, &["--privileged"], proc_sys).trim(), "0");
    let sys = "grep ' /sys sysfs ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1";
    assert_eq!(ok(&lade, &[], sys).trim(), "ro");
    assert_eq!(ok(&lade, &["--privileged"], sys).trim(), "rw");
    // A device of the host's that a plain container lacks.
    use std::os::unix::fs::FileTypeExt;
    let extra = std::fs::read_dir("/dev")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_type()
                .is_ok_and(|t| t.is_char_device() || t.is_block_device())
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| {
            ![
                "null", "zero", "full", "random", "urandom", "tty", "console", "ptmx",
            ]
            .contains(&n.as_str())
        });
    if let Some(name) = extra {
        let probe = format!("test -e /dev/{name} && echo there || echo missing");
        assert_eq!(ok(&lade, &[], &probe).trim(), "missing", "{name}");
        assert_eq!(
            ok(&lade, &["--privileged"], &probe).trim(),
            "there",
            "{name}"
        );
    }
}

#[test]
fn security_opt_sets_no_new_privileges_and_seccomp() {
    let lade = lade();
    let nnp = |flags: &[&str]| status_field(&lade, flags, "NoNewPrivs");
    assert_eq!(nnp(&["--security-opt", "no-new-privileges"]), "1");
    assert_eq!(nnp(&["--security-opt", "no-new-privileges:true"]), "1");
    assert_eq!(nnp(&["--security-opt", "no-new-privileges=false"]), "0");
    // Without no_new_privs the default filter still goes on.
    assert_eq!(
        status_field(
            &lade,
            &["--security-opt", "no-new-privileges=false"],
            "Seccomp"
        ),
        "2"
    );
    assert_eq!(
        status_field(&lade, &["--security-opt", "seccomp=unconfined"], "Seccomp"),
        "0"
    );
    // Accepted and ignored: no AppArmor or SELinux here.
    ok(
        &lade,
        &[
            "--security-opt",
            "apparmor=docker-default",
            "--security-opt",
            "label=disable",
        ],
        "true",
    );
    refused(
        &lade,
        &["--security-opt", "no-new-privileges=maybe"],
        "--security-opt",
    );
    refused(&lade, &["--security-opt", "bogus"], "--security-opt");
}

#[test]
fn a_seccomp_profile_file_in_dockers_format_is_applied() {
    let lade = lade();
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("deny-mkdir.json");
    std::fs::write(
        &profile,
        r#"{
          "defaultAction": "SCMP_ACT_ALLOW",
          "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
          ]
        }"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let (code, _, err) = sh(&lade, &["--security-opt", &opt], "mkdir /made");
    assert_ne!(code, 0);
    assert!(err.contains("Operation not permitted"), "{err}");
    // An allow list with its own errno for what it leaves out.
    let allow_list = dir.path().join("allow.json");
    std::fs::write(
        &allow_list,
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
                         {"names": ["uname"], "action": "SCMP_ACT_ALLOW"}]}"#,
    )
    .unwrap();
    let opt2 = format!("seccomp={}", allow_list.display());
    ok(&lade, &["--security-opt", &opt2], "mkdir /made && uname");

    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, r#"{"defaultAction": "SCMP_ACT_SOMETIMES"}"#).unwrap();
    let opt3 = format!("seccomp={}", broken.display());
    let (code, _, err) = sh(&lade, &["--security-opt", &opt3], "true");
    assert_eq!(code, 125);
    assert!(
        err.contains(&broken.display().to_string()) && err.contains("SCMP_ACT_SOMETIMES"),
        "{err}"
    );
    refused(
        &lade,
        &["--security-opt", "seccomp=/no/such/profile.json"],
        "/no/such/profile.json",
    );
}

#[test]
fn ulimit_sets_the_soft_and_hard_limits() {
    let lade = lade();
    let out = ok(
        &lade,
        &["--ulimit", "nofile=100:200"],
        "ulimit -n; ulimit -Hn",
    );
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["100", "200"]);
    let out = ok(&lade, &["--ulimit", "core=0"], "ulimit -c");
    assert_eq!(out.trim(), "0");
    refused(&lade, &["--ulimit", "nofile=300:200"], "--ulimit");
    refused(&lade, &["--ulimit", "files=1"], "--ulimit");
}

#[test]
fn pid_host_and_pid_container_share_the_namespace() {
    let lade = lade();
    let host = host_link("/proc/self/ns/pid");
    let out = ok(
        &lade,
        &["--pid", "host"],
        "readlink /proc/self/ns/pid; cat /proc/1/comm",
    );
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some(host.as_str()));
    let host_init = std::fs::read_to_string("/proc/1/comm").unwrap();
    assert_eq!(
        lines.next(),
        Some(host_init.trim()),
        "it sees the host's pid 1"
    );
    assert_ne!(ok(&lade, &[], "readlink /proc/self/ns/pid").trim(), host);

    lade.ok(&[
        "run",
        "-d",
        "--name",
        "holder",
        "--network",
        "none",
        "busybox",
        "sleep",
        "300",
    ]);
    let theirs = lade.ok(&["exec", "holder", "readlink", "/proc/self/ns/pid"]);
    let out = ok(
        &lade,
        &["--pid", "container:holder"],
        "readlink /proc/self/ns/pid; cat /proc/1/comm",
    );
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some(theirs.trim()));
    assert_eq!(lines.next(), Some("sleep"), "its pid 1 is the other's");
    lade.ok(&["rm", "-f", "holder"]);
    refused(&lade, &["--pid", "container:holder"], "holder");
    refused(&lade, &["--pid", "private"], "--pid");
}

#[test]
fn ipc_uts_cgroupns_and_userns_modes() {
    let lade = lade();
    let ns = |flags: &[&str], name: &str| {
        ok(&lade, flags, &format!("readlink /proc/self/ns/{name}"))
            .trim()
            .to_string()
    };
    assert_eq!(
        ns(&["--ipc", "host"], "ipc"),
        host_link("/proc/self/ns/ipc")
    );
    assert_ne!(ns(&[], "ipc"), host_link("/proc/self/ns/ipc"));
    let note = tempfile::Builder::new()
        .prefix("lade-ipc-host")
        .tempfile_in("/dev/shm")
        .unwrap();
    let name = note
        .path()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let seen = ok(
        &lade,
        &["--ipc", "host"],
        &format!("test -e /dev/shm/{name} && echo shared"),
    );
    assert_eq!(seen.trim(), "shared", "--ipc host has the host's /dev/shm");
    assert_eq!(
        ns(&["--uts", "host"], "uts"),
        host_link("/proc/self/ns/uts")
    );
    assert_eq!(
        ns(&["--cgroupns", "host"], "cgroup"),
        host_link("/proc/self/ns/cgroup")
    );
    assert_ne!(
        ns(&["--cgroupns", "private"], "cgroup"),
        host_link("/proc/self/ns/cgroup")
    );
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(
        ok(&lade, &["--uts", "host"], "hostname").trim(),
        host_name.trim()
    );
    refused(
        &lade,
        &["--uts", "host", "--hostname", "x"],
        "hostname and the UTS mode",
    );
    ok(&lade, &["--userns", "host"], "true");
    refused(&lade, &["--userns", "keep-id"], "--userns");
    refused(&lade, &["--cgroupns", "shared"], "--cgroupns");

    // none: no /dev/shm.
    assert_eq!(
        ok(
            &lade,
            &["--ipc", "none"],
            "test -e /dev/shm && echo yes || echo no"
        )
        .trim(),
        "no"
    );
    // container:NAME, of a shareable one only.
    lade.ok(&[
        "run",
        "-d",
        "--name",
        "shm-owner",
        "--ipc",
        "shareable",
        "--network",
        "none",
        "busybox",
        "sleep",
        "300",
    ]);
    lade.ok(&[
        "run",
        "-d",
        "--name",
        "private-one",
        "--network",
        "none",
        "busybox",
        "sleep",
        "300",
    ]);
    let theirs = lade.ok(&["exec", "shm-owner", "readlink", "/proc/self/ns/ipc"]);
    assert_eq!(ns(&["--ipc", "container:shm-owner"], "ipc"), theirs.trim());
    refused(
        &lade,
        &["--ipc", "container:private-one"],
        "container private-one: non-shareable IPC (hint: use IpcMode:shareable",
    );
    // On a network of its own too: refused at once (the refusal once waited forever for
    // the network lock its own run held), and `--rm` leaves nothing behind.
    let bridged = lade.output(&[
        "run",
        "--rm",
        "--name",
        "ipc-refused",
        "--ipc",
        "container:private-one",
        "busybox",
        "true",
    ]);
    assert_eq!(bridged.status.code(), Some(125), "{bridged:?}");
    let left = lade.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(!left.contains("ipc-refused"), "{left}");
    lade.ok(&["rm", "-f", "shm-owner", "private-one"]);
}

#[test]
fn group_add_oom_score_adj_and_domainname() {
    let lade = lade();
    let groups = ok(
        &lade,
        &["--group-add", "1234", "--group-add", "daemon"],
        "id -G",
    );
    let groups: Vec<&str> = groups.split_whitespace().collect();
    assert!(groups.contains(&"1234"), "{groups:?}");
    let daemon = ok(&lade, &[], "grep '^daemon:' /etc/group | cut -d: -f3");
    assert!(
        groups.contains(&daemon.trim()),
        "{groups:?} lacks daemon's gid"
    );
    let (code, _, err) = sh(&lade, &["--group-add", "no-such-group"], "true");
    assert_eq!(code, 125);
    assert!(err.contains("no-such-group"), "{err}");

    let score = ok(
        &lade,
        &["--oom-score-adj", "500"],
        "cat /proc/self/oom_score_adj",
    );
    assert_eq!(score.trim(), "500");
    refused(&lade, &["--oom-score-adj", "1001"], "--oom-score-adj");

    let domain = ok(
        &lade,
        &["--domainname", "example.org"],
        "cat /proc/sys/kernel/domainname",
    );
    assert_eq!(domain.trim(), "example.org");
    refused(&lade, &["--domainname", "bad name"], "--domainname");
}

#[test]
fn sysctl_sets_namespaced_parameters_only() {
    let lade = lade();
    let out = ok(
        &lade,
        &[
            "--sysctl",
            "net.ipv4.ip_forward=1",
            "--sysctl",
            "kernel.shmmni=2048",
        ],
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni",
    );
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["1", "2048"]);
    let (code, _, err) = {
        let output = lade.output(&[
            "run",
            "--rm",
            "--network",
            "host",
            "--sysctl",
            "net.ipv4.ip_forward=1",
            "busybox",
            "true",
        ]);
        (
            output.status.code(),
            (),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    assert_eq!(code, Some(125));
    assert!(
        err.contains("--sysctl") && err.contains("--network host"),
        "{err}"
    );
    refused(&lade, &["--sysctl", "kernel.hostname=x"], "--sysctl");
    refused(&lade, &["--sysctl", "net.ipv4.ip_forward"], "--sysctl");
}

#[test]
fn shm_size_dns_options_and_search() {
    let lade = lade();
    let size = |flags: &[&str]| {
        let out = ok(&lade, flags, "df -k /dev/shm | tail -1");
        out.split_whitespace().nth(1).unwrap().to_string()
    };
    assert_eq!(size(&[]), "65536", "Docker's 64m");
    assert_eq!(size(&["--shm-size", "1m"]), "1024");
    refused(&lade, &["--shm-size", "lots"], "--shm-size");

    let resolv = ok(
        &lade,
        &[
            "--dns-search",
            "example.com",
            "--dns-option",
            "ndots:2",
            "--dns-opt",
            "edns0",
        ],
        "cat /etc/resolv.conf",
    );
    assert!(
        resolv.lines().any(|l| l == "search example.com"),
        "{resolv}"
    );
    assert!(
        resolv.lines().any(|l| l == "options ndots:2 edns0"),
        "{resolv}"
    );
    refused(&lade, &["--dns-search", "bad domain"], "--dns-search");
}

#[test]
fn devices_are_bound_and_their_cgroup_allows_what_perms_say() {
    let lade = lade();
    let out = ok(
        &lade,
        &["--device", "/dev/null:/dev/mynull"],
        "test -c /dev/mynull && echo hi > /dev/mynull && echo written",
    );
    assert_eq!(out.trim(), "written");
    // Not among Docker's default devices: the cgroup (v1) allows what PERMS says.
    let cgroup_v1 = std::path::Path::new("/sys/fs/cgroup/devices/devices.list").exists();
    if cgroup_v1 && std::path::Path::new("/dev/loop-control").exists() {
        let open_for_write = ": > /dev/lc && echo opened";
        let out = ok(
            &lade,
            &["--device", "/dev/loop-control:/dev/lc:rw"],
            open_for_write,
        );
        assert_eq!(out.trim(), "opened");
        let (code, _, err) = sh(
            &lade,
            &["--device", "/dev/loop-control:/dev/lc:r"],
            open_for_write,
        );
        assert_ne!(code, 0, "the write is refused");
        assert!(err.contains("Operation not permitted"), "{err}");
    }
    if cgroup_v1 {
        let id = lade.ok(&[
            "run",
            "-d",
            "--network",
            "none",
            "--device-cgroup-rule",
            "c 42:* rmw",
            "busybox",
            "sleep",
            "300",
        ]);
        let list = std::fs::read_to_string(format!(
            "/sys/fs/cgroup/devices/lade/{}/devices.list",
            id.trim()
        ))
        .unwrap();
        assert!(list.lines().any(|l| l == "c 42:* rwm"), "{list}");
        assert!(!list.lines().any(|l| l == "a *:* rwm"), "{list}");
        lade.ok(&["rm", "-f", id.trim()]);
    }
    refused(&lade, &["--device", "/etc/passwd"], "not a device node");
    refused(&lade, &["--device", "/dev/null:relative"], "--device");
    refused(
        &lade,
        &["--device-cgroup-rule", "x 1:3 rw"],
        "--device-cgroup-rule",
    );
}

#[test]
fn oom_kill_disable_is_written_to_the_memory_cgroup() {
    let lade = lade();
    if !std::path::Path::new("/sys/fs/cgroup/memory/memory.oom_control").exists() {
        return;
    }
    let id = lade.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "-m",
        "64m",
        "--oom-kill-disable",
        "busybox",
        "sleep",
        "300",
    ]);
    let control = std::fs::read_to_string(format!(
        "/sys/fs/cgroup/memory/lade/{}/memory.oom_control",
        id.trim()
    ))
    .unwrap();
    assert!(
        control.lines().any(|l| l == "oom_kill_disable 1"),
        "{control}"
    );
    lade.ok(&["rm", "-f", id.trim()]);
}

#[test]
fn label_file_platform_quiet_tty_term_and_memory_zero() {
    let lade = lade();
    let dir = tempfile::tempdir().unwrap();
    let labels = dir.path().join("labels");
    std::fs::write(&labels, "# a comment\ntier=web\nowner=me\n").unwrap();
    lade.ok(&[
        "create",
        "--name",
        "labelled",
        "--label-file",
        labels.to_str().unwrap(),
        "-l",
        "owner=you",
        "busybox",
        "true",
    ]);
    let inspect = lade.ok(&["inspect", "labelled"]);
    assert!(inspect.contains("\"tier\": \"web\""), "{inspect}");
    assert!(inspect.contains("\"owner\": \"you\""), "-l wins: {inspect}");
    refused(&lade, &["--label-file", "/no/such/labels"], "--label-file");

    let host = match std::env::consts::ARCH {
        "aarch64" => "linux/arm64",
        _ => "linux/amd64",
    };
    let other = if host == "linux/amd64" {
        "linux/arm64"
    } else {
        "linux/amd64"
    };
    ok(&lade, &["--platform", host], "true");
    let (code, _, err) = sh(&lade, &["--platform", other], "true");
    assert_eq!(code, 125);
    assert!(err.contains(other) && err.contains(host), "{err}");
    refused(&lade, &["--platform", "linux"], "--platform");

    let output = lade.output(&["run", "--rm", "-q", "nosuch.invalid/image", "true"]);
    assert_ne!(output.status.code(), Some(0));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!err.contains("Unable to find image"), "{err}");
    let output = lade.output(&["run", "--rm", "nosuch.invalid/image", "true"]);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("Unable to find image"), "{err}");

    let term = ok(&lade, &["-t"], "echo $TERM");
    assert_eq!(term.trim(), "xterm");
    ok(&lade, &["-m", "0"], "true");
    // Without a network of its own there is no interface to give the address.
    refused(
        &lade,
        &["--mac-address", "02:42:ac:11:00:02"],
        "--mac-address",
    );
}

#[test]
fn mac_address_is_checked_and_kept_where_docker_shows_it() {
    let lade = lade();
    // Go's net.ParseMAC forms, kept lower-case and colon-separated.
    for (given, kept) in [
        ("92-D0-C6-0A-29-33", "92:d0:c6:0a:29:33"),
        ("92d0.c60a.2934", "92:d0:c6:0a:29:34"),
    ] {
        let id = lade.ok(&["create", "--mac-address", given, "busybox", "true"]);
        let shown = lade.ok(&[
            "inspect",
            "-f",
            "{{.Config.MacAddress}} {{.NetworkSettings.MacAddress}} \
             {{range .NetworkSettings.Networks}}{{.MacAddress}}{{end}}",
            id.trim(),
        ]);
        assert_eq!(
            shown.split_whitespace().collect::<Vec<_>>(),
            [kept, kept, kept],
            "{given}"
        );
    }
    // The interface has it.
    assert_eq!(
        lade.ok(&[
            "run",
            "--rm",
            "--mac-address",
            "92:d0:c6:0a:29:35",
            "busybox",
            "cat",
            "/sys/class/net/eth0/address"
        ]),
        "92:d0:c6:0a:29:35\n"
    );
    // Without one, Config has none.
    let id = lade.ok(&["create", "busybox", "true"]);
    let config = lade.ok(&["inspect", "-f", "{{json .Config}}", id.trim()]);
    assert!(!config.contains("MacAddress"), "{config}");
    for bad in [
        "02:42:ac:11:00",
        "02:42:ac:11:00:zz",
        "nonsense",
        "02:42:ac:11:00:02:03",
    ] {
        let output = lade.output(&["create", "--mac-address", bad, "busybox", "true"]);
        assert_eq!(output.status.code(), Some(125), "{bad}");
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(err.contains("--mac-address") && err.contains(bad), "{err}");
    }
}

/// docker/cli's run: ports with the host's network are dropped with a warning (the
/// host's ports are the container's); with no network they are refused.
#[test]
fn published_ports_with_the_host_network_are_dropped_with_docker_s_warning() {
    let lade = lade();
    let output = lade.output(&[
        "run",
        "--rm",
        "-p",
        "8080",
        "--net=host",
        "busybox",
        "echo",
        "ran",
    ]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "ran\n");
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("WARNING: Published ports are discarded when using host network mode"),
        "{output:?}"
    );
    let refused = lade.output(&[
        "run",
        "--rm",
        "-p",
        "8080",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    assert_eq!(refused.status.code(), Some(125), "{refused:?}");
}

/// Docker reads `--pids-limit -1` and `0` as no limit.
#[test]
fn pids_limit_minus_one_and_zero_are_unlimited() {
    let lade = lade();
    for unlimited in ["-1", "0"] {
        let id = lade.ok(&["create", "--pids-limit", unlimited, "busybox", "true"]);
        let shown = lade.ok(&["inspect", "-f", "{{.HostConfig.PidsLimit}}", id.trim()]);
        assert!(
            matches!(shown.trim(), "0" | "<nil>" | ""),
            "--pids-limit {unlimited}: {shown}"
        );
    }
    let id = lade.ok(&["create", "--pids-limit", "50", "busybox", "true"]);
    assert_eq!(
        lade.ok(&["inspect", "-f", "{{.HostConfig.PidsLimit}}", id.trim()]),
        "50\n"
    );
}
