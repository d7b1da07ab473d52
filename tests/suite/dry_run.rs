//! `lade build --dry-run` through the real binary: the plan as text and JSON, located
//! errors with a non-zero exit, and nothing written anywhere.

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;

fn lade() -> Command {
    Command::cargo_bin("lade").unwrap()
}

fn examples() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples"))
}

#[test]
fn demo_plan_as_text() {
    lade()
        .args(["build", "--dry-run", "-f"])
        .arg(examples().join("Dockerfile.demo"))
        .arg(examples())
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "stage 0 \"build\": FROM busybox:latest AS build",
        ))
        .stdout(predicate::str::contains("needs: build"))
        .stdout(predicate::str::contains(
            "ENV APP_NAME=lade-demo APP_HOME=/app",
        ))
        .stdout(predicate::str::contains("COPY --from=build /out/ ./"))
        .stdout(predicate::str::contains("Run order"));
}

#[test]
fn demo_plan_as_json_with_build_args() {
    let output = lade()
        .args([
            "build",
            "--dry-run",
            "--format",
            "json",
            "--build-arg",
            "APP_NAME=other",
            "-f",
        ])
        .arg(examples().join("Dockerfile.demo"))
        .arg(examples())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(plan["parallel_groups"], serde_json::json!([[0], [1]]));
    assert_eq!(plan["stages"][1]["needs"], serde_json::json!([0]));
    let env = &plan["stages"][1]["config"]["Env"];
    assert!(
        env.as_array()
            .unwrap()
            .iter()
            .any(|e| e == "APP_NAME=other"),
        "{env}"
    );
    // After the PATH every stage has.
    let run_env = &plan["stages"][0]["steps"][3]["step"]["Run"]["env"];
    assert!(
        run_env
            .as_array()
            .unwrap()
            .contains(&serde_json::json!(["APP_NAME", "other"])),
        "{run_env}"
    );
}

#[test]
fn independent_stages_are_grouped_for_parallel_runs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM busybox AS a\nRUN sleep 3\nFROM busybox AS b\nRUN sleep 3\nFROM busybox\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n",
    )
    .unwrap();
    lade()
        .args(["build", "--dry-run"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("  1. a, b\n  2. 2\n"));
}

#[test]
fn broken_dockerfile_exits_non_zero_with_a_located_message() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM busybox\nRUN true\nFORM busybox\n",
    )
    .unwrap();
    lade()
        .args(["build", "--dry-run"])
        .arg(dir.path())
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "Dockerfile:3:1: unknown instruction FORM (did you mean FROM?)",
        ))
        .stderr(predicate::str::contains(" 3 | FORM busybox\n   | ^"));
}

#[test]
fn graph_errors_are_located_too() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM busybox\nCOPY --from=7 /a /b\n",
    )
    .unwrap();
    lade()
        .args(["build", "--dry-run"])
        .arg(dir.path())
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "Dockerfile:2:1: --from=7 refers to the current or a later stage",
        ));
}

#[test]
fn missing_dockerfile_is_named() {
    let dir = tempfile::tempdir().unwrap();
    lade()
        .args(["build", "--dry-run"])
        .arg(dir.path())
        .assert()
        .failure()
        .stderr(predicate::str::contains("cannot read the Dockerfile"));
}

#[test]
fn dry_run_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let context = dir.path().join("context");
    std::fs::create_dir(&context).unwrap();
    std::fs::write(
        context.join("Dockerfile"),
        "FROM busybox\nCOPY . /app\nRUN make\n",
    )
    .unwrap();
    let before: Vec<_> = walkdir::WalkDir::new(dir.path())
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .collect();
    lade()
        .arg("--root")
        .arg(&root)
        .args(["build", "--dry-run"])
        .arg(&context)
        .env("LADE_ROOT", &root)
        .assert()
        .success();
    let after: Vec<_> = walkdir::WalkDir::new(dir.path())
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .collect();
    assert_eq!(before, after);
    assert!(!root.exists());
}

#[test]
fn help_lists_only_working_verbs() {
    lade()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("build"));
}
