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
    refused(&lade, &["container", "update", "--memory", "1g", "x"]);
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
