//! `--format` templates an attacker writes, through the real CLI: each one must end in
//! bounded time with a one-line error and lade's usual exit code for a bad template,
//! never hang while memory grows, panic, or overflow the stack.

use crate::common;

use std::path::Path;
use std::process::Stdio;

use common::{wait_until, Killed, Lade};

/// What a run of lade left: its exit code (None when a signal ended it) and stderr.
struct Ended {
    code: Option<i32>,
    stderr: String,
}

/// Runs lade with `args`, failing the test and killing lade when it has not ended within
/// [`wait_until`]'s limit (far more than any of these templates needs once bounded;
/// before, some hung for good). Output goes to files, so that a template printing a
/// lot cannot block on a full pipe.
fn run_bounded(lade: &Lade, args: &[&str]) -> Ended {
    let out = lade.dir.path().join("template-stdout");
    let err = lade.dir.path().join("template-stderr");
    let mut child = Killed(
        lade.process()
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .expect("lade starts"),
    );
    let mut status = None;
    wait_until(&format!("lade {args:?} to end"), || {
        status = child.0.try_wait().expect("lade can be waited for");
        status.is_some()
    });
    let status = status.expect("lade ended");
    Ended {
        code: status.code(),
        stderr: read(&err),
    }
}

fn read(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned()
}

/// Templates that hung (lexer looping at the end of input), panicked (printf widths),
/// or crashed on the stack (recursion, nesting), and others of their kinds.
const HOSTILE: &[&str] = &[
    "{{.",
    "{{ .",
    "{{- .",
    "{{$",
    r#"{{printf "%999999999d" 1}}"#,
    r#"{{printf "%.999999999f" 1.5}}"#,
    r#"{{printf "%*d" 999999999 1}}"#,
    r#"{{printf "%[0]d" 1}}"#,
    r#"{{define "x"}}{{template "x"}}{{end}}{{template "x"}}"#,
    r#"{{define "x"}}{{if lt (len .) 40}}{{template "x" (print . "a")}}{{template "x" (print . "a")}}{{end}}{{end}}{{template "x" ""}}"#,
    r#"{{define "d"}}{{template "d" (print . .)}}{{end}}{{template "d" "xxxxxxxx"}}"#,
    r#"{{define "x"}}{{if lt (len .) 40}}{{printf "%65535d" 1}}{{template "x" (print . "a")}}{{template "x" (print . "a")}}{{end}}{{end}}{{template "x" ""}}"#,
];

/// The exit code lade gives for a template it refuses, as for any other failed command.
const TEMPLATE_ERROR: i32 = 1;

fn assert_refused(ended: &Ended, args: &[&str]) {
    assert_eq!(
        ended.code,
        Some(TEMPLATE_ERROR),
        "lade {args:?} should fail with {TEMPLATE_ERROR}, not a signal or a panic:\n{}",
        ended.stderr
    );
    let lines: Vec<&str> = ended.stderr.lines().collect();
    assert!(
        lines.len() == 1 && lines[0].starts_with("lade: ") && lines[0].len() < 1000,
        "lade {args:?} should say what is wrong in one line:\n{}",
        ended.stderr
    );
}

#[test]
fn hostile_templates_end_with_one_line_errors() {
    let lade = Lade::new();
    lade.busybox();
    // A container so that ps has a row to render, and an object for inspect.
    lade.ok(&["create", "--name", "web", "busybox", "true"]);
    for template in HOSTILE {
        for args in [
            ["ps", "-a", "--format", template].as_slice(),
            ["inspect", "-f", template, "web"].as_slice(),
        ] {
            let ended = run_bounded(&lade, args);
            assert_refused(&ended, args);
        }
    }
    // Bounded, not broken: a real template still renders.
    assert_eq!(
        lade.ok(&["ps", "-a", "--format", r#"{{.Names}} {{printf "%3d" 7}}"#])
            .trim(),
        "web   7"
    );
}

/// `--format` prints what Docker's prints: values as Go prints them, `table` with a
/// header row and aligned columns, `json` one object a line.
#[test]
fn formats_print_what_dockers_print() {
    let lade = Lade::new();
    lade.busybox();
    lade.ok(&["run", "--name", "web", "-e", "A=1", "busybox", "true"]);
    assert_eq!(
        lade.ok(&["inspect", "-f", "{{.Config.Env}}", "web"]),
        "[PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin A=1]\n"
    );
    assert_eq!(
        lade.ok(&[
            "inspect",
            "-f",
            r#"{{join .Config.Cmd ","}}|{{.Config.Missing}}"#,
            "web"
        ]),
        "true|<no value>\n"
    );

    let table = lade.ok(&["ps", "-a", "--format", r"table {{.Names}}\t{{.Status}}"]);
    let lines: Vec<&str> = table.lines().collect();
    // NAMES is padded to Docker's least column width (10) and 3 spaces past its widest.
    assert_eq!(lines[0], "NAMES     STATUS", "{table}");
    assert_eq!(lines.len(), 2, "{table}");
    assert!(lines[1].starts_with("web       Exited (0)"), "{table}");

    lade.ok(&["create", "--name", "db", "busybox", "true"]);
    let json = lade.ok(&["ps", "-a", "--format", "json"]);
    let rows: Vec<serde_json::Value> = json
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")))
        .collect();
    assert_eq!(rows.len(), 2, "{json}");
    let mut names: Vec<&str> = rows.iter().map(|r| r["Names"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["db", "web"]);
    // inspect keeps its pretty array.
    let inspected: serde_json::Value =
        serde_json::from_str(&lade.ok(&["inspect", "web", "db"])).unwrap();
    assert_eq!(inspected.as_array().unwrap().len(), 2);
}
