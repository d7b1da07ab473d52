//! Health checks, restart counts and the event log, through the real CLI on real
//! sandboxes: a failing check makes a container unhealthy (ps, inspect, the filter), a
//! passing one healthy, `on-failure:2` restarts twice and stops, and `lade events`
//! lists a run's events between two times and streams them to a follower as they
//! happen. Every wait polls a state or reads a line, bounded, never a fixed sleep.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{wait_until, Killed, Lade};

fn inspect(lade: &Lade, name: &str) -> serde_json::Value {
    let text = lade.ok(&["inspect", name]);
    let json: serde_json::Value = serde_json::from_str(&text).expect("inspect prints JSON");
    match json {
        serde_json::Value::Array(mut items) => items.remove(0),
        other => other,
    }
}

fn ps_line(lade: &Lade, name: &str) -> String {
    lade.ok(&[
        "ps",
        "-a",
        "--filter",
        &format!("name={name}"),
        "--format",
        "{{.Status}}",
    ])
    .trim()
    .to_string()
}

/// Now, as `--since`/`--until` take it (Unix seconds with nanoseconds).
fn now() -> String {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970");
    format!("{}.{:09}", t.as_secs(), t.subsec_nanos())
}

#[test]
fn a_failing_check_makes_the_container_unhealthy() {
    let lade = Lade::new();
    lade.busybox();
    lade.ok(&[
        "run",
        "-d",
        "--name",
        "sick",
        "--health-cmd",
        "echo down; exit 1",
        "--health-interval",
        "200ms",
        "--health-retries",
        "1",
        "busybox",
        "sleep",
        "60",
    ]);
    wait_until("the container to be unhealthy", || {
        inspect(&lade, "sick")["State"]["Health"]["Status"] == "unhealthy"
    });
    let state = &inspect(&lade, "sick")["State"];
    let health = &state["Health"];
    assert!(
        health["FailingStreak"].as_u64().unwrap_or(0) >= 1,
        "{health}"
    );
    let last = health["Log"]
        .as_array()
        .and_then(|l| l.last())
        .expect("a probe in the log");
    assert_eq!(last["ExitCode"], 1, "{last}");
    assert_eq!(last["Output"], "down\n", "{last}");
    assert!(
        last["Start"].is_string() && last["End"].is_string(),
        "{last}"
    );
    let status = ps_line(&lade, "sick");
    assert!(
        status.starts_with("Up ") && status.ends_with("(unhealthy)"),
        "{status}"
    );
    let listed = lade.ok(&[
        "ps",
        "--filter",
        "health=unhealthy",
        "--format",
        "{{.Names}}",
    ]);
    assert_eq!(listed.trim(), "sick");
    assert!(lade
        .ok(&["ps", "--filter", "health=healthy", "-q"])
        .trim()
        .is_empty());
    let events = lade.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &now(),
        "--filter",
        "event=health_status",
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}}",
    ]);
    assert_eq!(events.trim(), "health_status: unhealthy sick");
    lade.ok(&["rm", "-f", "sick"]);
}

#[test]
fn a_passing_check_makes_it_healthy_and_a_slow_one_is_starting() {
    let lade = Lade::new();
    lade.busybox();
    lade.ok(&[
        "run",
        "-d",
        "--name",
        "fine",
        "--health-cmd",
        "true",
        "--health-interval",
        "200ms",
        "--health-retries",
        "1",
        "busybox",
        "sleep",
        "60",
    ]);
    lade.ok(&[
        "run",
        "-d",
        "--name",
        "later",
        "--health-cmd",
        "true",
        "--health-interval",
        "1h",
        "busybox",
        "sleep",
        "60",
    ]);
    lade.ok(&["run", "-d", "--name", "plain", "busybox", "sleep", "60"]);
    wait_until("the container to be healthy", || {
        inspect(&lade, "fine")["State"]["Health"]["Status"] == "healthy"
    });
    let health = &inspect(&lade, "fine")["State"]["Health"];
    assert_eq!(health["FailingStreak"], 0, "{health}");
    assert!(ps_line(&lade, "fine").ends_with("(healthy)"));
    assert!(ps_line(&lade, "later").ends_with("(health: starting)"));
    let plain = ps_line(&lade, "plain");
    assert!(!plain.contains('('), "{plain}");
    assert!(inspect(&lade, "plain")["State"].get("Health").is_none());
    let none = lade.ok(&["ps", "--filter", "health=none", "--format", "{{.Names}}"]);
    assert_eq!(none.trim(), "plain");
    assert_eq!(
        inspect(&lade, "later")["Config"]["Healthcheck"]["Test"],
        serde_json::json!(["CMD-SHELL", "true"])
    );
    let conflict = lade.fails(&["run", "--no-healthcheck", "--health-cmd", "true", "busybox"]);
    assert!(
        conflict.contains("--no-healthcheck conflicts"),
        "{conflict}"
    );
    lade.ok(&["rm", "-f", "fine", "later", "plain"]);
}

#[test]
fn on_failure_2_restarts_twice_then_stops() {
    let lade = Lade::new();
    lade.busybox();
    let since = now();
    lade.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "exit 3",
    ]);
    wait_until("the restarts to end", || {
        let c = inspect(&lade, "flaky");
        c["State"]["Status"] == "exited" && c["RestartCount"] == 2
    });
    let c = inspect(&lade, "flaky");
    assert_eq!(c["State"]["ExitCode"], 3);
    assert_eq!(c["HostConfig"]["RestartPolicy"]["MaximumRetryCount"], 2);
    let events = lade.ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &now(),
        "--filter",
        "container=flaky",
        "--filter",
        "event=die",
        "--format",
        "{{.Action}} {{.Actor.Attributes.exitCode}}",
    ]);
    assert_eq!(
        events.lines().collect::<Vec<_>>(),
        ["die 3", "die 3", "die 3"]
    );
    // A start by hand begins the count anew, as Docker's does.
    let first_round = c["State"]["StartedAt"].clone();
    lade.ok(&["start", "flaky"]);
    wait_until("the second round of restarts to end", || {
        let c = inspect(&lade, "flaky");
        c["State"]["Status"] == "exited"
            && c["RestartCount"] == 2
            && c["State"]["StartedAt"] != first_round
    });
}

#[test]
fn events_between_two_times_list_a_run() {
    let lade = Lade::new();
    lade.busybox();
    let since = now();
    lade.ok(&[
        "run", "--name", "once", "--label", "tier=web", "busybox", "true",
    ]);
    let until = now();
    let out = lade.ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "type=container",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.Attributes.tier}}",
    ]);
    // Each event carries the container's labels, as Docker's do.
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "container create web",
            "container start web",
            "container die web"
        ],
        "{out}"
    );
    let json = lade.ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "event=die",
        "--format",
        "{{json .}}",
    ]);
    let die: serde_json::Value = serde_json::from_str(json.trim()).expect("one JSON event");
    assert_eq!(die["Actor"]["Attributes"]["exitCode"], "0");
    assert_eq!(die["Actor"]["Attributes"]["name"], "once");
    assert_eq!(die["scope"], "local");
    assert_eq!(die["status"], "die");
    assert_eq!(die["from"], "busybox");
    assert!(
        die["timeNano"].as_i64().unwrap_or(0) / 1_000_000_000 == die["time"].as_i64().unwrap_or(-1)
    );
    // Nothing after --until.
    let later = lade.ok(&[
        "events",
        "--since",
        &until,
        "--until",
        &now(),
        "--filter",
        "type=container",
    ]);
    assert!(later.trim().is_empty(), "{later}");
}

#[test]
fn a_follower_sees_events_as_they_happen() {
    let lade = Lade::new();
    lade.busybox();
    // From a time before the run: nothing is missed however soon the follower starts.
    let since = now();
    let mut follower = Killed(
        lade.process()
            .args([
                "events",
                "--since",
                &since,
                "--filter",
                "container=live",
                "--format",
                "{{.Type}} {{.Action}}",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("lade events starts"),
    );
    let stdout = follower.0.stdout.take().expect("its stdout");
    let (lines, seen) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    lade.ok(&["run", "-d", "--name", "live", "busybox", "sleep", "60"]);
    let next = || {
        seen.recv_timeout(Duration::from_secs(60))
            .expect("the follower prints the next event")
    };
    assert_eq!(next(), "container create");
    assert_eq!(next(), "container start");
    lade.ok(&["kill", "live"]);
    assert_eq!(next(), "container kill");
    assert_eq!(next(), "container die");
    lade.ok(&["rm", "live"]);
    assert_eq!(next(), "container destroy");
    // It follows until it is stopped.
    assert!(follower
        .0
        .try_wait()
        .expect("it can be waited for")
        .is_none());
}

#[test]
fn a_foreground_run_keeps_its_health_check_and_restart_policy() {
    let lade = Lade::new();
    lade.busybox();
    // Checked in the foreground too, as Docker checks every container.
    let mut running = std::process::Command::new(assert_cmd::cargo::cargo_bin("lade"))
        .env("LADE_ROOT", lade.root())
        .args(["run", "--name", "fg-health", "--network", "none"])
        .args(["--health-cmd", "false", "--health-interval", "100ms"])
        .args(["--health-retries", "1", "busybox", "sleep", "60"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the foreground container to be unhealthy", || {
        lade.output(&["inspect", "-f", "{{.State.Health.Status}}", "fg-health"])
            .stdout
            .starts_with(b"unhealthy")
    });
    lade.ok(&["kill", "fg-health"]);
    running.wait().unwrap();

    // --restart without -d, as Docker allows it: the first exit is this run's code,
    // and the policy restarts it after.
    let ran = lade.output(&[
        "run",
        "--name",
        "fg-restart",
        "--network",
        "none",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(ran.status.code(), Some(3), "{ran:?}");
    wait_until("the restarts to end", || {
        lade.ok(&[
            "inspect",
            "-f",
            "{{.RestartCount}} {{.State.Status}}",
            "fg-restart",
        ])
        .trim()
            == "2 exited"
    });
    let refused = lade.output(&["run", "--rm", "--restart", "always", "busybox", "true"]);
    assert_eq!(refused.status.code(), Some(125));
}
