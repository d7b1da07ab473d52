//! Docker's command line as lade takes it: the management forms (`container ls`,
//! `image ls`, `system df`, `builder prune`), `-h` as run's --hostname, the global
//! options shown once, and Docker's names lade lacks refused in one line with exit code
//! 125 (never clap's usage error, never ignored).

use crate::common;

use common::Lade;

/// The exit code and stderr of a refused command line.
fn refused(lade: &Lade, args: &[&str]) -> String {
    let output = lade.output(args);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(125), "lade {args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "lade {args:?}: {stderr}");
    stderr
}

#[test]
fn run_h_is_the_hostname() {
    let lade = Lade::new();
    lade.busybox();
    assert_eq!(
        lade.ok(&["run", "--rm", "-h", "myhost", "busybox", "hostname"]),
        "myhost\n"
    );
    assert!(lade.ok(&["run", "--help"]).contains("-h, --hostname"));
}

#[test]
fn management_forms_are_the_top_level_commands() {
    let lade = Lade::new();
    lade.busybox();
    assert_eq!(lade.ok(&["image", "ls"]), lade.ok(&["images"]));
    assert!(lade.ok(&["image", "list", "-q"]).lines().count() == 1);
    lade.ok(&["create", "--name", "made", "busybox", "true"]);
    let listed = lade.ok(&["container", "ls", "-a"]);
    assert!(listed.contains("made"), "{listed}");
    assert_eq!(listed, lade.ok(&["ps", "-a"]));
    assert_eq!(
        lade.ok(&["container", "inspect", "-f", "{{.Name}}", "made"]),
        "/made\n"
    );
    // Each inspects its own kind only.
    lade.fails(&["container", "inspect", "busybox"]);
    lade.fails(&["image", "inspect", "made"]);
    assert!(lade.ok(&["image", "inspect", "busybox"]).contains("RootFS"));
    assert!(lade.ok(&["system", "df"]).starts_with("TYPE"));
    assert!(lade.ok(&["system", "info", "-f", "json"]).starts_with('{'));
    lade.ok(&["builder", "prune", "-f"]);
    lade.ok(&["container", "rm", "made"]);
    assert!(lade
        .ok(&["container", "prune", "-f"])
        .contains("Total reclaimed"));
    assert!(lade
        .ok(&["image", "prune", "-f"])
        .contains("Total reclaimed images: 0"));
}

#[test]
fn docker_names_lade_lacks_are_refused_in_one_line() {
    let lade = Lade::new();
    let stderr = refused(&lade, &["run", "--gpus", "all", "busybox", "true"]);
    assert_eq!(
        stderr,
        "lade: --gpus is not supported by lade run: no GPU support\n"
    );
    let stderr = refused(&lade, &["swarm", "init"]);
    assert!(stderr.contains("swarm mode"), "{stderr}");
    let stderr = refused(&lade, &["-H", "tcp://x", "ps"]);
    assert!(stderr.starts_with("lade: lade has no daemon: "), "{stderr}");
    refused(&lade, &["run", "--link", "other:alias", "busybox", "true"]);
    refused(&lade, &["create", "-c", "512", "busybox"]);
    let stderr = refused(&lade, &["container", "update", "--cpu-shares", "512", "x"]);
    assert_eq!(
        stderr,
        "lade: --cpu-shares is not supported by lade container update: CPU is limited by --cpus only\n"
    );
}

#[test]
fn global_options_are_shown_once() {
    let lade = Lade::new();
    let top = lade.ok(&["--help"]);
    assert_eq!(top.matches("--root").count(), 1, "{top}");
    assert!(top.contains("Global options"), "{top}");
    let run = lade.ok(&["run", "--help"]);
    assert!(!run.contains("--root"), "{run}");
    // Still taken after a command, as before.
    lade.ok(&["ps", "--root", lade.root().to_str().unwrap()]);
}

#[test]
fn boolean_flags_take_go_s_values_after_an_equals_sign() {
    let lade = Lade::new();
    lade.busybox();
    // `-d=false`: in the foreground after all, its output ours; `--rm=true` removes it.
    assert_eq!(
        lade.ok(&[
            "run",
            "-d=false",
            "--rm=true",
            "-i=false",
            "busybox",
            "echo",
            "hi"
        ]),
        "hi\n"
    );
    assert!(lade.ok(&["ps", "-a", "-q"]).trim().is_empty());
    // `--rm=false` keeps it; `--read-only=0` is Go's false too, `--init=T` true.
    lade.ok(&[
        "run",
        "--name",
        "kept",
        "--rm=false",
        "--read-only=0",
        "--init=T",
        "busybox",
        "true",
    ]);
    let full = lade.ok(&["ps", "-a", "-q", "--no-trunc=true"]);
    assert_eq!(full.trim().len(), 64, "{full}");
    let short = lade.ok(&["ps", "-a", "-q", "--no-trunc=false"]);
    assert_eq!(short.trim().len(), 12, "{short}");
    assert!(lade.ok(&["ps", "-q", "-a=false"]).trim().is_empty());
    assert_eq!(
        lade.ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.AutoRemove}} {{.HostConfig.ReadonlyRootfs}} {{.HostConfig.Init}}",
            "kept"
        ]),
        "false false true\n"
    );
    // Alone, a flag is true and never takes the next word; short ones still cluster.
    lade.ok(&["create", "--name", "cluster", "-it", "busybox", "sh"]);
    assert_eq!(
        lade.ok(&["inspect", "-f", "{{.Config.Tty}}", "cluster"]),
        "true\n"
    );
    lade.ok(&[
        "create", "--name", "told", "-i", "-t=false", "busybox", "sh",
    ]);
    assert_eq!(
        lade.ok(&["inspect", "-f", "{{.Config.Tty}}", "told"]),
        "false\n"
    );
    assert!(lade
        .ok(&["image", "ls", "--no-trunc=true", "-q"])
        .starts_with("sha256:"));
    let output = lade.output(&["run", "--rm=maybe", "busybox", "true"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--rm") && stderr.contains("maybe"),
        "{stderr}"
    );
}

/// The manifest digest the store's OCI index gives `busybox:latest`.
fn busybox_manifest(lade: &Lade) -> String {
    let index = std::fs::read_to_string(lade.root().join("oci/index.json")).unwrap();
    let index: serde_json::Value = serde_json::from_str(&index).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .is_some_and(|name| name.ends_with("busybox:latest"))
        })
        .and_then(|m| m["digest"].as_str())
        .expect("busybox:latest in the index")
        .to_string()
}

#[test]
fn ps_shows_the_image_as_docker_does() {
    let lade = Lade::new();
    lade.busybox();
    let id = lade.ok(&["inspect", "-f", "{{.Id}}", "busybox"]);
    let id = id.trim();
    let by_digest = format!("busybox@{}", busybox_manifest(&lade));
    for (name, image) in [
        ("by-name", "busybox"),
        ("by-id", id),
        ("by-digest", by_digest.as_str()),
        ("by-full-name", "docker.io/library/busybox:latest"),
    ] {
        lade.ok(&["create", "--name", name, image, "true"]);
    }
    let shown = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["ps", "-a", "--format", "{{.Names}} {{.Image}}"];
        args.extend_from_slice(extra);
        let mut lines: Vec<String> = lade.ok(&args).lines().map(str::to_string).collect();
        lines.sort();
        lines
    };
    let short_id = &id.strip_prefix("sha256:").unwrap()[..12];
    assert_eq!(
        shown(&[]),
        [
            "by-digest busybox".to_string(),
            "by-full-name busybox:latest".to_string(),
            format!("by-id {short_id}"),
            "by-name busybox".to_string(),
        ]
    );
    assert_eq!(
        shown(&["--no-trunc"]),
        [
            format!("by-digest {by_digest}"),
            "by-full-name docker.io/library/busybox:latest".to_string(),
            format!("by-id {id}"),
            "by-name busybox".to_string(),
        ]
    );
    // The table's IMAGE column is the same.
    let table = lade.ok(&["ps", "-a"]);
    assert!(
        table
            .lines()
            .any(|l| l.contains(short_id) && l.trim_end().ends_with("by-id")),
        "{table}"
    );
}

/// The exit code of a command line lade cannot read is Docker's: 125 for an option
/// Docker's flag parser rejects (unknown, bad value, value missing), 1 for the argument
/// checks and unknown commands, and a bad logging level its own line with 1
/// (docker/cli: cli.FlagErrorFunc, cli.RequiresMinArgs, flags.SetLogLevel).
#[test]
fn usage_errors_exit_as_docker_does() {
    let lade = Lade::new();
    let code = |args: &[&str]| lade.output(args).status.code();
    assert_eq!(code(&["ps", "--no-such-flag"]), Some(125));
    assert_eq!(code(&["run", "-h"]), Some(125));
    assert_eq!(code(&["ps", "--last", "many"]), Some(125));
    assert_eq!(code(&["tag", "busybox"]), Some(1));
    assert_eq!(code(&["logs", "one", "two"]), Some(1));
    assert_eq!(code(&["no-such-command"]), Some(1));
    let output = lade.output(&["--log-level=telepathic", "info"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "Unable to parse logging level: telepathic\n"
    );
    assert_eq!(code(&["--help"]), Some(0));
    assert_eq!(code(&["ps", "--help"]), Some(0));
}
