//! Docker's behaviour for volumes, networks, mounts and prune, through the binary: the
//! local volume driver's `-o type=,o=,device=` mounted when a container uses the volume;
//! `volume ls` and `network ls` filters and `--format` fields; the default network
//! answering to `bridge` with only running containers in `Containers`; duplicate mount
//! points refused before anything is made; and every prune asking Docker's question
//! unless `-f`.

use crate::common;

use std::io::Write;
use std::process::{Output, Stdio};

use common::Lade;

/// Runs lade with `input` on its standard input.
fn with_input(lade: &Lade, input: &str, args: &[&str]) -> Output {
    let mut child = lade
        .process()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lade runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn volume_create_takes_the_local_driver_s_options_and_mounts_on_use() {
    let lade = Lade::new();
    lade.busybox();

    let refused = lade.output(&["volume", "create", "-d", "nfs-plugin", "x"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr)
            .contains("volume driver nfs-plugin is not supported: lade has the local driver"),
        "{}",
        text(&refused.stderr)
    );
    let missing = lade.fails(&["volume", "create", "-o", "type=tmpfs", "x"]);
    assert!(
        missing.contains(r#"missing required option: "device""#),
        "{missing}"
    );
    let unknown = lade.fails(&["volume", "create", "-o", "colour=blue", "x"]);
    assert!(unknown.contains(r#"invalid option: "colour""#), "{unknown}");
    assert_eq!(lade.ok(&["volume", "ls", "-q"]), "");

    lade.ok(&[
        "volume",
        "create",
        "-d",
        "local",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=10m,uid=1000",
        "scratch",
    ]);
    let options = lade.ok(&["volume", "inspect", "-f", "{{json .Options}}", "scratch"]);
    assert_eq!(
        options.trim(),
        r#"{"device":"tmpfs","o":"size=10m,uid=1000","type":"tmpfs"}"#
    );
    let seen = lade.ok(&[
        "run",
        "--rm",
        "-v",
        "scratch:/data",
        "busybox",
        "sh",
        "-c",
        "grep ' /data ' /proc/mounts; stat -c %u /data",
    ]);
    assert!(seen.contains("tmpfs /data tmpfs"), "{seen}");
    assert!(seen.contains("size=10240k"), "{seen}");
    assert!(seen.contains("uid=1000"), "{seen}");
    assert!(seen.lines().any(|l| l == "1000"), "{seen}");

    // type=none,o=bind,device=DIR: the host directory itself.
    let host = tempfile::tempdir().unwrap();
    let device = format!("device={}", host.path().display());
    lade.ok(&[
        "volume",
        "create",
        "-o",
        "type=none",
        "-o",
        "o=bind",
        "-o",
        &device,
        "hostdir",
    ]);
    lade.ok(&[
        "run",
        "--name",
        "writer",
        "-v",
        "hostdir:/out",
        "busybox",
        "sh",
        "-c",
        "echo hello > /out/greeting",
    ]);
    assert_eq!(
        std::fs::read_to_string(host.path().join("greeting")).unwrap(),
        "hello\n"
    );
    // The volume is in use while a container names it, as any other.
    let in_use = lade.fails(&["volume", "rm", "hostdir"]);
    assert!(in_use.contains("writer"), "{in_use}");
    lade.ok(&["rm", "writer"]);
    lade.ok(&["volume", "rm", "hostdir"]);
    assert!(host.path().join("greeting").exists(), "the device is kept");
}

#[test]
fn volume_ls_filters_and_formats_as_docker() {
    let lade = Lade::new();
    lade.busybox();
    lade.ok(&[
        "volume", "create", "--label", "team=a", "--label", "tier=db", "alpha",
    ]);
    lade.ok(&["volume", "create", "--label", "team=b", "beta"]);
    lade.ok(&["volume", "create", "gamma"]);
    lade.ok(&[
        "create", "--name", "user", "-v", "gamma:/g", "busybox", "true",
    ]);

    let names = |filters: &[&str]| {
        let mut args = vec!["volume", "ls", "-q"];
        for filter in filters {
            args.extend(["--filter", filter]);
        }
        lade.ok(&args)
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&["name=^a|ta$"]), ["alpha", "beta"]);
    assert_eq!(names(&["dangling=true"]), ["alpha", "beta"]);
    assert_eq!(names(&["dangling=false"]), ["gamma"]);
    assert_eq!(names(&["label=team"]), ["alpha", "beta"]);
    assert_eq!(names(&["label=team=b"]), ["beta"]);
    assert_eq!(names(&["label=team", "label=tier=db"]), ["alpha"]);
    assert_eq!(names(&["driver=local"]).len(), 3);
    assert!(names(&["driver=nfs"]).is_empty());
    assert!(lade
        .fails(&["volume", "ls", "--filter", "dangling=maybe"])
        .contains("dangling="));

    let table = lade.ok(&["volume", "ls"]);
    assert_eq!(
        table
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["DRIVER", "VOLUME", "NAME"]
    );
    let table = lade.ok(&[
        "volume",
        "ls",
        "--filter",
        "name=alpha",
        "--format",
        "table {{.Name}}\t{{.Driver}}\t{{.Scope}}\t{{.Labels}}\t{{.Links}}\t{{.Size}}",
    ]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["VOLUME", "NAME", "DRIVER", "SCOPE", "LABELS", "LINKS", "SIZE"]
    );
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["alpha", "local", "local", "team=a,tier=db", "N/A", "N/A"]
    );
    let mountpoint = lade.ok(&[
        "volume",
        "ls",
        "-f",
        "name=beta",
        "--format",
        "{{.Mountpoint}}",
    ]);
    assert!(
        mountpoint.trim().ends_with("/volumes/beta/_data"),
        "{mountpoint}"
    );
    let json: serde_json::Value = serde_json::from_str(
        lade.ok(&["volume", "ls", "-f", "name=beta", "--format", "json"])
            .trim(),
    )
    .unwrap();
    assert_eq!(json["Labels"], "team=b");
    assert_eq!(json["Driver"], "local");
}

#[test]
fn the_default_network_is_docker_s_bridge_and_ls_filters() {
    crate::network::require_network_tools();
    let _serial = crate::network::serial();
    let lade = Lade::new();
    lade.busybox();
    // Docker always has `bridge`; lade's default network shows as it.
    let listed = lade.ok(&["network", "ls"]);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    );
    assert!(
        lines
            .iter()
            .any(|l| l.split_whitespace().nth(1) == Some("bridge")),
        "{listed}"
    );
    let bridge: serde_json::Value =
        serde_json::from_str(&lade.ok(&["network", "inspect", "bridge"])).unwrap();
    assert_eq!(bridge[0]["Name"], "bridge");
    assert_eq!(bridge[0]["Driver"], "bridge");
    let bridge_id = bridge[0]["Id"].as_str().unwrap().to_string();

    lade.ok(&["network", "create", "--label", "team=a", "front"]);
    lade.ok(&["network", "create", "back"]);
    let names = |filters: &[&str], format: &str| {
        let mut args = vec!["network", "ls", "--format", format];
        for filter in filters {
            args.extend(["--filter", filter]);
        }
        lade.ok(&args)
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&[], "{{.Name}}"), ["back", "bridge", "front"]);
    assert_eq!(names(&["type=custom"], "{{.Name}}"), ["back", "front"]);
    assert_eq!(names(&["type=builtin"], "{{.Name}}"), ["bridge"]);
    assert_eq!(names(&["name=^fr"], "{{.Name}}"), ["front"]);
    assert_eq!(names(&["label=team=a"], "{{.Name}}"), ["front"]);
    assert_eq!(names(&["driver=bridge"], "{{.Name}}").len(), 3);
    assert_eq!(
        names(&[&format!("id={}", &bridge_id[..6])], "{{.ID}}"),
        [&bridge_id[..12]]
    );
    let row = names(
        &["name=front"],
        "{{.Name}}|{{.Driver}}|{{.Scope}}|{{.IPv6}}|{{.Internal}}|{{.Labels}}",
    );
    assert_eq!(row, ["front|bridge|local|false|false|team=a"]);
    let created = names(&["name=front"], "{{.CreatedAt}}");
    assert!(created[0].ends_with(" +0000 UTC"), "{created:?}");
    let table = lade.ok(&["network", "ls", "--format", "table {{.ID}}\t{{.Name}}"]);
    assert!(table.starts_with("NETWORK ID"), "{table}");

    // Only running containers are on a network's `Containers`.
    let id = lade.ok(&["run", "-d", "--name", "web", "busybox", "sleep", "60"]);
    let id = id.trim();
    let containers = || {
        let inspect: serde_json::Value =
            serde_json::from_str(&lade.ok(&["network", "inspect", "bridge"])).unwrap();
        inspect[0]["Containers"].as_object().unwrap().clone()
    };
    assert!(containers().contains_key(id), "{:?}", containers());
    lade.ok(&["stop", "-t", "0", "web"]);
    assert!(containers().is_empty(), "{:?}", containers());
    lade.ok(&["rm", "web"]);
    lade.ok(&["network", "rm", "front", "back"]);
}

#[test]
fn duplicate_mount_points_are_refused_before_anything_is_made() {
    let lade = Lade::new();
    lade.busybox();
    for (command, flags) in [
        ("run", vec!["-v", "va:/x", "-v", "vb:/x"]),
        (
            "create",
            vec!["-v", "va:/x", "--mount", "type=volume,src=vb,dst=/x/"],
        ),
        ("run", vec!["-v", "va:/x", "--tmpfs", "/x"]),
        (
            "create",
            vec!["--mount", "type=tmpfs,dst=/x", "-v", "/tmp:/x"],
        ),
    ] {
        let mut args = vec![command];
        args.extend(flags.iter().copied());
        args.extend(["busybox", "true"]);
        let out = lade.output(&args);
        assert_eq!(out.status.code(), Some(125), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("Duplicate mount point: /x"),
            "{args:?}: {stderr}"
        );
    }
    assert_eq!(lade.ok(&["volume", "ls", "-q"]), "");
    assert_eq!(lade.ok(&["ps", "-aq"]), "");
}

#[test]
fn prunes_ask_docker_s_question_first() {
    let lade = Lade::new();
    lade.busybox();
    lade.ok(&["create", "--name", "old", "busybox", "true"]);
    lade.ok(&[
        "create", "--name", "kept", "--label", "keep=yes", "busybox", "true",
    ]);
    lade.ok(&["volume", "create", "--label", "k=v", "vol"]);
    lade.ok(&["network", "create", "spare"]);

    let asks = [
        (
            vec!["container", "prune"],
            "WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ",
        ),
        (
            vec!["volume", "prune", "--all"],
            "WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] ",
        ),
        (
            vec!["network", "prune"],
            "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ",
        ),
        (
            vec!["image", "prune"],
            "WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] ",
        ),
        (
            vec!["builder", "prune"],
            "WARNING! This will remove all dangling build cache. Are you sure you want to continue? [y/N] ",
        ),
        (
            vec!["cache", "prune", "--all"],
            "WARNING! This will remove all build cache. Are you sure you want to continue? [y/N] ",
        ),
        (
            vec!["system", "prune", "--volumes"],
            "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n  - all anonymous volumes not used by at least one container\n  - all dangling images\n  - unused build cache\n\nAre you sure you want to continue? [y/N] ",
        ),
    ];
    for (args, question) in &asks {
        for answer in ["n\n", "", "no\n", "yess\n"] {
            let out = with_input(&lade, answer, args);
            assert_eq!(out.status.code(), Some(0), "{args:?} {answer:?}");
            assert_eq!(text(&out.stdout), *question, "{args:?} {answer:?}");
        }
    }
    assert_eq!(lade.ok(&["ps", "-aq"]).lines().count(), 2);
    assert_eq!(lade.ok(&["volume", "ls", "-q"]), "vol\n");
    assert!(lade
        .ok(&["network", "ls", "-q", "-f", "name=spare"])
        .contains(char::is_alphanumeric));

    // The filters Docker has: a label keeps what lacks it.
    let out = with_input(
        &lade,
        "y\n",
        &["container", "prune", "--filter", "label!=keep"],
    );
    assert!(
        text(&out.stdout).contains("Deleted Containers:"),
        "{}",
        text(&out.stdout)
    );
    let left = lade.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(left, "kept\n");
    let error = lade.fails(&["volume", "prune", "-f", "--filter", "until=1h"]);
    assert!(error.contains("until="), "{error}");
    let error = lade.fails(&["system", "prune", "-f", "--volumes", "--filter", "until=1h"]);
    assert!(
        error.contains(r#"The "until" filter is not supported with "--volumes""#),
        "{error}"
    );
    // A label filter narrows; YES is yes; -f asks nothing.
    lade.ok(&["volume", "prune", "-a", "-f", "--filter", "label=k=other"]);
    assert_eq!(lade.ok(&["volume", "ls", "-q"]), "vol\n");
    let out = with_input(
        &lade,
        "YES\n",
        &["volume", "prune", "-a", "--filter", "label=k"],
    );
    assert!(
        text(&out.stdout).contains("Deleted Volumes:\nvol\n"),
        "{}",
        text(&out.stdout)
    );
    let out = lade.ok(&["network", "prune", "-f"]);
    assert!(!out.contains("[y/N]"), "{out}");
    assert!(out.contains("spare"), "{out}");
    let out = lade.ok(&["system", "prune", "-f", "--filter", "label=keep"]);
    assert!(!out.contains("[y/N]"), "{out}");
    assert!(out.contains("Deleted containers: 1"), "{out}");
    assert_eq!(lade.ok(&["ps", "-aq"]), "");
}

#[test]
fn volume_modes_and_relative_host_paths_are_dockers() {
    let lade = Lade::new();
    lade.busybox();
    let project = tempfile::tempdir().unwrap();
    std::fs::create_dir(project.path().join("data")).unwrap();
    std::fs::write(project.path().join("data/note"), "from the host\n").unwrap();
    // `./data`, relative to where lade runs; z and Z are accepted (no SELinux here).
    let output = lade
        .cmd()
        .current_dir(project.path())
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            "./data:/data:z,ro",
        ])
        .args(["busybox", "cat", "/data/note"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "from the host\n");
    let refused = lade.output(&["run", "--rm", "-v", "data:/m:U", "busybox", "true"]);
    assert_eq!(refused.status.code(), Some(125));
    assert!(
        text(&refused.stderr).contains("chown"),
        "{}",
        text(&refused.stderr)
    );
    // nocopy: a new volume over the image's /etc stays empty.
    let listed = lade.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "fresh:/etc:nocopy",
        "busybox",
        "ls",
        "-A",
        "/etc",
    ]);
    assert_eq!(listed.trim(), "", "{listed}");
}

#[test]
fn volume_and_network_rows_answer_label() {
    let lade = Lade::new();
    lade.ok(&["volume", "create", "--label", "team=blue", "labelled"]);
    let shown = lade.ok(&["volume", "ls", "--format", "{{.Name}} {{.Label \"team\"}}"]);
    assert_eq!(shown.trim(), "labelled blue");
    let json = lade.ok(&["volume", "ls", "--format", "json"]);
    assert!(
        !json.contains("\\u0000"),
        "the label stand-in stays out of JSON: {json}"
    );
    let _serial = crate::network::serial();
    lade.ok(&["network", "create", "--label", "team=red", "labelled-net"]);
    let shown = lade.ok(&[
        "network",
        "ls",
        "--filter",
        "name=labelled-net",
        "--format",
        "{{.Label \"team\"}}",
    ]);
    assert_eq!(shown.trim(), "red");
    lade.ok(&["network", "rm", "labelled-net"]);
}
