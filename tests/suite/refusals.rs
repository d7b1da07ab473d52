//! Requests lade must refuse, and what a refusal must leave: nothing. Names and host
//! values reach aardvark-dns's configuration, `/etc/hosts` and `/etc/hostname` as lines,
//! so a newline or a comma in one would write records of the caller's choosing; every
//! refused `run`, `create` or `network connect` must leave no container directory, no
//! record and no reserved address behind (a few hundred would exhaust a network); and
//! `system check` finds what an older lade or a crash left, and `--repair` removes it.

use crate::common;

use common::Lade;

/// What a refusal must not change: the containers' records and directories, the
/// addresses taken on `network`, the volumes.
#[derive(Debug, PartialEq, Eq)]
struct Made {
    records: Vec<String>,
    directories: Vec<String>,
    addresses: Vec<String>,
    volumes: Vec<String>,
}

fn made(lade: &Lade, network: &str) -> Made {
    let lines = |text: String| -> Vec<String> {
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        lines.sort();
        lines
    };
    let mut directories: Vec<String> = std::fs::read_dir(lade.root().join("containers"))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    directories.sort();
    // From the store itself: `network inspect` shows only the addresses of containers
    // that exist, and a leaked one belongs to none.
    let db = rusqlite::Connection::open(lade.root().join("lade.db")).unwrap();
    let mut addresses: Vec<String> = db
        .prepare("SELECT address FROM network_addresses WHERE network = ?1")
        .unwrap()
        .query_map([network], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    addresses.sort();
    Made {
        records: lines(lade.ok(&["ps", "-aq", "--no-trunc"])),
        directories,
        addresses,
        volumes: lines(lade.ok(&["volume", "ls", "-q"])),
    }
}

/// `lade args` fails with `message` in its stderr and changes nothing.
fn refused(lade: &Lade, network: &str, args: &[&str], message: &str) {
    let before = made(lade, network);
    let output = lade.output(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "lade {args:?} was accepted:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(
        stderr.contains(message),
        "lade {args:?} was refused without saying {message:?}:\n{stderr}"
    );
    assert_eq!(
        made(lade, network),
        before,
        "lade {args:?} was refused but left something behind"
    );
}

/// A user network on a /29 of its own (5 addresses for containers), chosen at random
/// in a range automatic subnets never use, again while it clashes with another's.
fn small_network(lade: &Lade, name: &str) -> String {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        ^ std::process::id();
    for attempt in 0..64u32 {
        let n = seed.wrapping_add(attempt.wrapping_mul(2_654_435_761)) % (256 * 32);
        let subnet = format!("10.250.{}.{}/29", n / 32, (n % 32) * 8);
        let output = lade.output(&["network", "create", "--subnet", &subnet, name]);
        if output.status.success() {
            return subnet;
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("overlaps"),
            "network create failed: {stderr}"
        );
    }
    panic!("no free /29 in 10.250.0.0/16");
}

#[test]
fn names_and_host_values_that_would_write_dns_or_hosts_records_are_refused_and_make_nothing() {
    crate::network::require_network_tools();
    let lade = Lade::new();
    lade.busybox();
    lade.ok(&["network", "create", "front"]);
    lade.ok(&["network", "create", "side"]);
    lade.ok(&[
        "create",
        "--name",
        "api",
        "--network",
        "front",
        "busybox",
        "true",
    ]);
    let injected = "a\ngithub.com 10.0.0.1";
    let run = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["run", "-d", "--network", "front"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["busybox", "sleep", "300"]);
        args.iter().map(|a| a.to_string()).collect()
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (run(&["--name", injected]), "Invalid container name"),
        (
            run(&["--name", "x/bad"]),
            "Invalid container name (x/bad), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
        ),
        (run(&["--name", "a,github.com"]), "Invalid container name"),
        (run(&["--name=-lead"]), "Invalid container name"),
        (run(&["--network-alias", injected]), "--network-alias"),
        (
            run(&["--network-alias", "svc,github.com"]),
            "--network-alias",
        ),
        (
            run(&["--network-alias", "svc github.com"]),
            "--network-alias",
        ),
        (run(&["--network-alias=-svc"]), "--network-alias"),
        (
            run(&["--network-alias", &"a".repeat(64)]),
            "--network-alias",
        ),
        (run(&["--hostname", "h\n10.0.0.1 github.com"]), "--hostname"),
        (run(&["--hostname", "h.-bad"]), "--hostname"),
        (
            run(&["--add-host", "github.com\n10.0.0.1:10.0.0.2"]),
            "--add-host",
        ),
        (
            run(&["--add-host", "github.com 10.0.0.1:10.0.0.2"]),
            "--add-host",
        ),
        (run(&["--add-host", "db:not-an-address"]), "--add-host"),
        (run(&["--label", "a\nb=c"]), "--label"),
        (run(&["--label", "=value"]), "--label"),
        (run(&["--dns", "9.9.9.9\nnameserver 10.0.0.1"]), "--dns"),
    ];
    for (args, message) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(&lade, "front", &args, message);
        let mut create = args.clone();
        create[0] = "create";
        create.remove(1);
        refused(&lade, "front", &create, message);
    }
    refused(
        &lade,
        "front",
        &["network", "connect", "--alias", injected, "side", "api"],
        "--alias",
    );
    refused(
        &lade,
        "front",
        &["rename", "api", injected],
        "Invalid container name",
    );
    refused(
        &lade,
        "front",
        &["volume", "create", injected],
        "volume name",
    );
    refused(
        &lade,
        "front",
        &["network", "create", injected],
        "network name",
    );
    refused(
        &lade,
        "front",
        &["network", "create", "--label", "a\nb=c", "other"],
        "--label",
    );
    refused(
        &lade,
        "front",
        &["volume", "create", "--label", "a\nb=c", "other"],
        "--label",
    );

    // A container with good names runs, and its network's DNS records are its own.
    lade.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "front",
        "--network-alias",
        "www",
        "busybox",
        "sleep",
        "300",
    ]);
    // aardvark-dns keeps one file of records per network (named after its bridge).
    let records: String = std::fs::read_dir(lade.root().join("networks/aardvark-dns"))
        .expect("aardvark-dns's records")
        .flatten()
        .filter(|e| e.file_name() != "aardvark.pid")
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(
        records.contains("web") && records.contains("www"),
        "{records}"
    );
    assert!(!records.contains("github"), "{records}");
    lade.ok(&["rm", "-f", "web"]);
}

#[test]
fn refused_runs_leave_no_directory_record_or_address_behind() {
    crate::network::require_network_tools();
    let lade = Lade::new();
    lade.busybox();
    small_network(&lade, "tiny");
    lade.ok(&[
        "create",
        "--name",
        "taken",
        "--network",
        "tiny",
        "busybox",
        "true",
    ]);
    let env_file = lade.dir.path().join("missing.env");
    let env_file = env_file.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["-v", "relative:dir"],
            "the container path must be absolute",
        ),
        (&["-v", "data:/data:rx"], "expected ro, rw"),
        (
            &["--mount", "type=bind,source=/nonexistent-lade,target=/x"],
            "the host path does not exist",
        ),
        (&["--tmpfs", "/t:size=lots"], "size=lots"),
        (&["--env-file", env_file], "--env-file"),
        (&["-p", "abc"], "invalid -p"),
        (&["-p", "80:80/quic"], "invalid -p"),
        (&["--expose", "http", "-P"], "--expose"),
        (&["--name", "taken"], "already in use"),
        (&["--ip", "10.0.0.300"], "--ip"),
        (&["--ip", "192.0.2.1"], "not an address of network tiny"),
        (&["--dns", "resolver"], "--dns"),
        (&["--add-host", "db"], "--add-host"),
        (&["-w", "relative"], "working directory"),
        (
            &["--volumes-from", "nobody-has-this-name"],
            "nobody-has-this-name",
        ),
    ];
    // More refused runs than the network has addresses.
    for round in 0..2 {
        for (extra, message) in cases {
            let command = if round == 0 { "run" } else { "create" };
            let mut args = vec![command, "--network", "tiny"];
            args.extend_from_slice(extra);
            args.extend_from_slice(&["busybox", "true"]);
            refused(&lade, "tiny", &args, message);
        }
    }
    // The rest of the network is free: four more containers get an address each.
    for n in 0..4 {
        lade.ok(&[
            "create",
            "--name",
            &format!("real{n}"),
            "--network",
            "tiny",
            "busybox",
            "true",
        ]);
    }
    let after = made(&lade, "tiny");
    assert_eq!(after.records.len(), 5, "{after:?}");
    assert_eq!(after.directories, after.records, "{after:?}");
    assert_eq!(after.addresses.len(), 5, "{after:?}");
}

#[test]
fn system_check_reports_orphans_and_repair_removes_them() {
    let lade = Lade::new();
    lade.busybox();
    lade.ok(&[
        "create",
        "--name",
        "kept",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    let kept = lade.ok(&["inspect", "-f", "{{.Id}}", "kept"]);
    let kept = kept.trim();
    let clean = lade.output(&["system", "check"]);
    assert!(clean.status.success(), "{clean:?}");

    let orphan = "0123456789abcdef".repeat(4);
    let orphan_dir = lade.root().join("containers").join(&orphan);
    std::fs::create_dir_all(orphan_dir.join("upper/etc")).unwrap();
    std::fs::write(orphan_dir.join("upper/etc/leftover"), "x").unwrap();
    let ghost = "fedcba9876543210".repeat(4);
    {
        let db = rusqlite::Connection::open(lade.root().join("lade.db")).unwrap();
        db.execute(
            "INSERT INTO network_addresses (network, address, container) VALUES ('lade', '10.88.0.9', ?1)",
            [&ghost],
        )
        .unwrap();
    }

    let found = lade.output(&["system", "check"]);
    let stdout = String::from_utf8_lossy(&found.stdout);
    assert!(
        !found.status.success(),
        "orphans were not reported:\n{stdout}"
    );
    assert!(
        stdout.contains(&orphan) && stdout.contains("no record"),
        "{stdout}"
    );
    assert!(
        stdout.contains("10.88.0.9") && stdout.contains(&ghost),
        "{stdout}"
    );

    let repaired = lade.ok(&["system", "check", "--repair"]);
    assert!(repaired.contains("repaired"), "{repaired}");
    assert!(
        !orphan_dir.exists(),
        "--repair left {}",
        orphan_dir.display()
    );
    assert!(lade.root().join("containers").join(kept).is_dir());
    let again = lade.output(&["system", "check"]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
    lade.ok(&["start", "-a", "kept"]);
}
