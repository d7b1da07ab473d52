//! Fit and finish: a build cache that follows its base image through save/load, history
//! as Docker shows it, progress labels as BuildKit prints them, one time format in JSON.

use crate::common;

use common::{Context, Lade};
use serde_json::Value;

#[test]
fn a_cache_follows_its_base_image_through_save_and_load_into_another_store() {
    let first = Lade::new();
    first.busybox();
    let context = Context::new(
        "FROM busybox AS tools\nRUN echo tool > /tool\n\nFROM busybox\nCOPY --from=tools /tool /tool\nCOPY app.txt /app.txt\nRUN cat /tool /app.txt > /both\n",
    );
    context.file("app.txt", "app\n");
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().join("cache");
    first.build(context.path(), &["--cache-to", cache_dir.to_str().unwrap()]);

    // The second store's busybox came through save | load: new manifest, stored
    // uncompressed, the same config.
    let archive = cache.path().join("busybox.tar");
    first.ok(&["save", "-o", archive.to_str().unwrap(), "busybox"]);
    let second = Lade::new();
    second.ok(&["load", "-i", archive.to_str().unwrap()]);
    let ids = |lade: &Lade| lade.ok(&["images", "-q", "--no-trunc", "busybox"]);
    assert_eq!(
        ids(&first),
        ids(&second),
        "the same image id in both stores"
    );

    let (_, log) = second.build_log(
        context.path(),
        &["--cache-from", cache_dir.to_str().unwrap()],
    );
    for step in [
        "RUN echo tool",
        "COPY --from=tools",
        "COPY app.txt",
        "RUN cat /tool",
    ] {
        let done: Vec<&str> = log.lines().filter(|l| l.contains(step)).collect();
        assert!(!done.is_empty(), "{step} not in:\n{log}");
        let number = done[0].split_whitespace().next().unwrap();
        assert!(
            log.lines().any(|l| l == format!("{number} CACHED")),
            "{step} was not taken from the cache:\n{log}"
        );
    }
}

#[test]
fn history_shows_steps_as_written_with_sensible_times() {
    let lade = Lade::new();
    lade.busybox();
    let context = Context::new(
        "FROM busybox AS build\nRUN echo built > /out\n\nFROM busybox\nENV APP=/app\nARG OWNER=1000\nCOPY --from=build --chown=${OWNER}:0 --chmod=750 /out /app/out\nCMD [\"cat\", \"/app/out\"]\n",
    );
    let id = lade.build(context.path(), &["-t", "hist:1"]);
    // One object a line, as Docker's; CREATED BY whole, as Docker's with --no-trunc.
    let rows: Vec<Value> = lade
        .ok(&["history", "--no-trunc", "--format", "json", "hist:1"])
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let by: Vec<&str> = rows
        .iter()
        .map(|r| r["CreatedBy"].as_str().unwrap())
        .collect();
    assert!(
        by.contains(&"COPY --from=build --chown=1000:0 --chmod=750 /out /app/out # buildkit"),
        "{by:?}"
    );
    // The config-only ENV right after FROM is dated like the build, not like busybox.
    let env = rows
        .iter()
        .find(|r| r["CreatedBy"].as_str().unwrap().starts_with("ENV APP="))
        .unwrap();
    let created: jiff::Timestamp = env["CreatedAt"].as_str().unwrap().parse().unwrap();
    let age = jiff::Timestamp::now().as_second() - created.as_second();
    assert!(age < 3600, "the ENV step is dated {created}");
    // And a rebuild from the cache keeps the image id.
    assert_eq!(lade.build(context.path(), &["-t", "hist:1"]), id);
}

#[test]
fn progress_labels_are_buildkits() {
    let lade = Lade::new();
    lade.busybox();
    let multi = Context::new(
        "FROM busybox AS named\nARG WHERE=/w\nWORKDIR ${WHERE}\n\nFROM busybox\nCOPY --from=named /w /w\n",
    );
    let (_, log) = lade.build_log(multi.path(), &[]);
    assert!(log.contains("[named 3/3] WORKDIR /w"), "{log}");
    assert!(log.contains("[stage-1 1/2] FROM busybox"), "{log}");
    assert!(
        log.contains("[stage-1 2/2] COPY --from=named /w /w"),
        "{log}"
    );
    let single = Context::new("FROM busybox\nRUN true\n");
    let (_, log) = lade.build_log(single.path(), &[]);
    assert!(log.contains("#2 [2/2] RUN true"), "{log}");
}

#[test]
fn json_times_are_rfc_3339_everywhere() {
    let lade = Lade::new();
    lade.busybox();
    lade.ok(&["run", "--name", "timed", "busybox", "true"]);
    // A listing's `--format json` is one object a line, as Docker's.
    let first = |args: &[&str]| -> Value {
        serde_json::from_str(lade.ok(args).lines().next().unwrap()).unwrap()
    };
    let ps = first(&["ps", "-a", "--format", "json"]);
    let images = first(&["images", "--format", "json"]);
    for created in [&ps["Created"], &images["Created"]] {
        let text = created
            .as_str()
            .unwrap_or_else(|| panic!("not a string: {created}"));
        text.parse::<jiff::Timestamp>()
            .unwrap_or_else(|e| panic!("{text}: {e}"));
    }
}

/// The README's first command, on this build: the demo builds and runs
/// examples/Dockerfile.demo, then runs it detached with a published port.
#[test]
fn the_readme_demo_runs() {
    crate::network::require_network_tools();
    // Its published port is one the network tests use too.
    let _serial = crate::network::serial();
    let lade = Lade::new();
    let output = std::process::Command::new(common::repo().join("scripts/demo.sh"))
        .env("LADE", assert_cmd::cargo::cargo_bin("lade"))
        .env("LADE_ROOT", lade.root())
        .output()
        .expect("scripts/demo.sh runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "scripts/demo.sh failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("Hello from lade-demo"), "{stdout}");
    assert!(stdout.contains("hello from lade-demo-web"), "{stdout}");
}

#[test]
fn install_gives_man_pages_and_a_bash_completion_that_completes_commands() {
    common::require_tool("bash");
    common::require_tool("man");
    let prefix = tempfile::tempdir().unwrap();
    let binary = assert_cmd::cargo::cargo_bin("lade");
    common::run(
        common::repo().join("scripts/install.sh").to_str().unwrap(),
        &[
            "--prefix",
            prefix.path().to_str().unwrap(),
            "--binary",
            binary.to_str().unwrap(),
        ],
    );
    let completion = prefix.path().join("share/bash-completion/completions/lade");
    let script = format!(
        "source '{}'; complete -p lade >/dev/null || exit 3; \
         COMP_WORDS=(lade bu); COMP_CWORD=1; COMP_LINE='lade bu'; COMP_POINT=7; \
         _lade lade bu lade; echo \"${{COMPREPLY[@]}}\"",
        completion.display()
    );
    // Docker's names: `build`, and the `builder` management command; never a refused
    // name such as `buildx`.
    assert_eq!(
        common::run("bash", &["-c", &script]).trim(),
        "build builder"
    );
    let page = std::process::Command::new("man")
        .args(["-P", "cat", "lade-build"])
        .env("MANPATH", prefix.path().join("share/man"))
        .env("MANWIDTH", "80")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&page.stdout);
    assert!(
        page.status.success(),
        "{}",
        String::from_utf8_lossy(&page.stderr)
    );
    assert!(
        text.contains("lade-build - Build an image from a Dockerfile"),
        "{text}"
    );
    assert!(text.contains("--cache-from"), "{text}");
    // The installed lade runs containers: its init was installed beside it.
    assert!(prefix.path().join("bin/lade-init").is_file());
    let lade = Lade::new();
    lade.busybox();
    let run = std::process::Command::new(prefix.path().join("bin/lade"))
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "echo",
            "installed",
        ])
        .env("LADE_ROOT", lade.root())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        "installed",
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}
