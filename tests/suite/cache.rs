//! The build cache end to end: what a rebuild reuses after each kind of change, the
//! reason it gives for each miss, parallel stages, a build killed half-way, `lade cache`
//! and pruning, and a cache carried to another store with --cache-to/--cache-from.

use crate::common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Context, Lade};

/// What the plain log says of each step, by its label (`[stage n/t] TEXT`).
#[derive(Debug, Clone, PartialEq)]
enum Status {
    Cached,
    Miss(String),
    /// Config-only steps and FROM lines with nothing to say.
    Plain,
}

fn statuses(log: &str) -> Vec<(String, Status)> {
    let mut labels: BTreeMap<String, usize> = BTreeMap::new();
    let mut out: Vec<(String, Status)> = Vec::new();
    for line in log.lines() {
        let Some((number, rest)) = line.split_once(' ') else {
            continue;
        };
        if !number.starts_with('#') {
            continue;
        }
        if rest.starts_with('[') {
            labels.insert(number.to_string(), out.len());
            out.push((rest.to_string(), Status::Plain));
        } else if let Some(&i) = labels.get(number) {
            if rest == "CACHED" {
                out[i].1 = Status::Cached;
            } else if let Some(reason) = rest.strip_prefix("cache miss: ") {
                out[i].1 = Status::Miss(reason.to_string());
            }
        }
    }
    out
}

/// The status of the one step whose label contains `needle`.
fn status_of(log: &str, needle: &str) -> Status {
    let matching: Vec<(String, Status)> = statuses(log)
        .into_iter()
        .filter(|(label, _)| label.contains(needle))
        .collect();
    assert_eq!(matching.len(), 1, "one step matching {needle:?} in:\n{log}");
    matching[0].1.clone()
}

fn assert_cached(log: &str, needle: &str) {
    assert_eq!(
        status_of(log, needle),
        Status::Cached,
        "{needle} cached:\n{log}"
    );
}

fn assert_miss(log: &str, needle: &str, reason: &str) {
    match status_of(log, needle) {
        Status::Miss(text) => assert!(
            text.contains(reason),
            "{needle}: the reason should say {reason:?}, it says {text:?}\n{log}"
        ),
        other => panic!("{needle} should miss ({reason}), it is {other:?}:\n{log}"),
    }
}

/// The steps that can change files and were not restored.
fn misses(log: &str) -> Vec<String> {
    statuses(log)
        .into_iter()
        .filter(|(label, s)| matches!(s, Status::Miss(_)) && !label.contains("] FROM "))
        .map(|(label, _)| label)
        .collect()
}

const MULTI_STAGE: &str = "\
FROM busybox AS tools
RUN echo tool > /tool
COPY tool.txt /tool.txt

FROM busybox AS build
WORKDIR /src
COPY a.txt /src/
RUN cat a.txt > /a-copy
COPY b.txt /src/
RUN cat b.txt > /b-copy
COPY . /all
RUN ls /all > /listing

FROM busybox
COPY --from=tools /tool /tool
COPY --from=build /a-copy /b-copy /listing /out/
CMD [\"cat\", \"/out/listing\"]
";

fn multi_stage() -> Context {
    let context = Context::new(MULTI_STAGE);
    context
        .file("a.txt", "a\n")
        .file("b.txt", "b\n")
        .file("tool.txt", "tool\n")
        .file("ignored.log", "noise\n")
        .file(".dockerignore", "*.log\n");
    context
}

#[test]
fn a_no_op_rebuild_reuses_every_step_and_gives_the_same_image() {
    let lade = Lade::new();
    lade.busybox();
    let context = multi_stage();
    let (first, log) = lade.build_log(context.path(), &["-t", "app"]);
    assert_miss(&log, "RUN echo tool", "not built before");
    let (second, log) = lade.build_log(context.path(), &["-t", "app"]);
    assert_eq!(first, second, "a no-op rebuild gives the same image id");
    assert!(misses(&log).is_empty(), "nothing reruns:\n{log}");
    let cached = statuses(&log)
        .iter()
        .filter(|(_, s)| *s == Status::Cached)
        .count();
    assert_eq!(
        cached, 11,
        "every step that makes a layer is cached:\n{log}"
    );
    let explain = lade.ok(&["build", "--explain", context.path().to_str().unwrap()]);
    assert!(
        explain.contains("11 step(s) cached, 0 would run"),
        "{explain}"
    );
}

#[test]
fn one_changed_file_reruns_from_the_first_copy_that_includes_it() {
    let lade = Lade::new();
    lade.busybox();
    let context = multi_stage();
    lade.build_log(context.path(), &["-t", "app"]);
    context.file("b.txt", "b changed\n");
    let (_, log) = lade.build_log(context.path(), &["-t", "app"]);
    assert_cached(&log, "COPY a.txt");
    assert_cached(&log, "RUN cat a.txt");
    assert_miss(&log, "COPY b.txt", "1 file changed (b.txt)");
    assert_miss(&log, "RUN cat b.txt", "an earlier step changed (step 5)");
    assert_miss(&log, "COPY . /all", "an earlier step changed (step 5)");
    assert_miss(&log, "RUN ls /all", "an earlier step changed (step 5)");
    assert_cached(&log, "COPY --from=tools");
    assert_miss(&log, "COPY --from=build", "stage build changed");
    assert_eq!(misses(&log).len(), 5, "exactly these rerun:\n{log}");
    assert_eq!(
        lade.ok(&["run", "--rm", "app", "cat", "/out/b-copy"]),
        "b changed\n"
    );

    // A file only `COPY .` takes: the first step to include it is that one.
    context.file("new.txt", "new\n");
    let (_, log) = lade.build_log(context.path(), &["-t", "app"]);
    assert_miss(&log, "COPY . /all", "1 added (new.txt)");
    assert_eq!(misses(&log).len(), 3, "{log}");
}

#[test]
fn a_change_to_an_ignored_file_reruns_nothing() {
    let lade = Lade::new();
    lade.busybox();
    let context = multi_stage();
    let (first, _) = lade.build_log(context.path(), &["-t", "app"]);
    context.file("ignored.log", "other noise\n");
    context.file("more.log", "new noise\n");
    let (second, log) = lade.build_log(context.path(), &["-t", "app"]);
    assert!(misses(&log).is_empty(), "{log}");
    assert_eq!(first, second);
}

#[test]
fn touching_files_without_changing_them_reruns_nothing() {
    let lade = Lade::new();
    lade.busybox();
    let context = multi_stage();
    let (first, _) = lade.build_log(context.path(), &["-t", "app"]);
    for name in ["a.txt", "b.txt", "tool.txt"] {
        let path = context.path().join(name);
        let content = std::fs::read(&path).unwrap();
        std::fs::write(&path, content).unwrap();
        // Touched: a new mtime, whatever the clock's granularity.
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        let later = file.metadata().unwrap().modified().unwrap() + Duration::from_secs(5);
        file.set_modified(later).unwrap();
    }
    let (second, log) = lade.build_log(context.path(), &["-t", "app"]);
    assert!(misses(&log).is_empty(), "{log}");
    assert_eq!(first, second);
}

#[test]
fn a_changed_arg_reruns_from_the_run_that_sees_it() {
    let lade = Lade::new();
    lade.busybox();
    let context = Context::new(
        "FROM busybox\nCOPY a.txt /a.txt\nARG VERSION=1.0\nCOPY a.txt /again.txt\nRUN echo $VERSION > /v\nRUN cat /v > /w\n",
    );
    context.file("a.txt", "a\n");
    lade.build_log(context.path(), &["-t", "app"]);
    let (_, log) = lade.build_log(context.path(), &["-t", "app", "--build-arg", "VERSION=1.1"]);
    assert_cached(&log, "COPY a.txt /a.txt");
    assert_cached(&log, "COPY a.txt /again.txt");
    assert_miss(&log, "RUN echo", "ARG VERSION changed 1.0 -> 1.1");
    assert_miss(&log, "RUN cat /v", "an earlier step changed (step 5)");
    assert_eq!(lade.ok(&["run", "--rm", "app", "cat", "/w"]), "1.1\n");
    // Back to the first value: both versions are in the cache.
    let (_, log) = lade.build_log(context.path(), &["-t", "app"]);
    assert!(misses(&log).is_empty(), "{log}");
}

#[test]
fn each_kind_of_miss_is_explained() {
    let lade = Lade::new();
    lade.busybox();
    let context = Context::new(
        "FROM busybox AS base\nRUN cat /proc/sys/kernel/random/uuid > /base\n\nFROM busybox\nENV MODE=fast\nCOPY --from=base /base /base\nCOPY files/ /files/\nRUN echo $MODE > /mode\n",
    );
    context.file("files/one", "1\n").file("files/two", "2\n");
    let (_, log) = lade.build_log(context.path(), &[]);
    assert_miss(&log, "RUN echo $MODE", "not built before");

    let (_, log) = lade.build_log(context.path(), &["--no-cache"]);
    assert_miss(&log, "RUN cat /proc", "--no-cache");
    assert_miss(&log, "RUN echo $MODE", "--no-cache");

    let (_, log) = lade.build_log(context.path(), &["--no-cache-filter", "base"]);
    assert_miss(&log, "RUN cat /proc", "--no-cache-filter base");
    assert_miss(&log, "COPY --from=base", "stage base changed");

    std::fs::remove_file(context.path().join("files/two")).unwrap();
    context
        .file("files/one", "one\n")
        .file("files/three", "3\n");
    let (_, log) = lade.build_log(context.path(), &[]);
    assert_miss(
        &log,
        "COPY files/",
        "1 file changed (files/one), 1 added (files/three), 1 removed (files/two)",
    );

    std::fs::write(
        context.path().join("Dockerfile"),
        "FROM busybox AS base\nRUN cat /proc/sys/kernel/random/uuid > /base\n\nFROM busybox\nENV MODE=slow\nCOPY --from=base /base /base\nCOPY files/ /files/\nRUN echo $MODE > /mode\n",
    )
    .unwrap();
    let (_, log) = lade.build_log(context.path(), &[]);
    assert_miss(&log, "RUN echo $MODE", "ENV MODE changed fast -> slow");

    std::fs::write(
        context.path().join("Dockerfile"),
        "FROM busybox AS base\nRUN cat /proc/sys/kernel/random/uuid > /base\n\nFROM busybox\nENV MODE=slow\nCOPY --from=base /base /base\nCOPY files/ /files/\nRUN echo $MODE > /mode2\n",
    )
    .unwrap();
    let (_, log) = lade.build_log(context.path(), &[]);
    assert_miss(&log, "RUN echo $MODE", "the command changed");

    lade.ok(&["cache", "prune", "--all", "-f"]);
    let (_, log) = lade.build_log(context.path(), &[]);
    assert_miss(
        &log,
        "RUN cat /proc",
        "its cached result was removed (pruned)",
    );

    // The same busybox stored with other layer compression has a new manifest but the
    // same content: the base is named by content, so nothing reruns.
    let manifest =
        |lade: &Lade| lade.ok(&["inspect", "--format", "{{.Manifest.Digest}}", "busybox"]);
    let before = manifest(&lade);
    lade.busybox_with("--compression zstd");
    assert_ne!(before, manifest(&lade));
    let (_, log) = lade.build_log(context.path(), &[]);
    assert_cached(&log, "RUN cat /proc");
    assert_cached(&log, "RUN echo $MODE");

    // A new base image: another config on the same layers.
    let relabel = Context::new("FROM busybox\nLABEL rebuilt=yes\n");
    lade.build(relabel.path(), &["-t", "busybox:latest"]);
    let (_, log) = lade.build_log(context.path(), &[]);
    assert_miss(
        &log,
        "] FROM busybox AS base",
        "base image changed (sha256:",
    );
    assert_miss(&log, "RUN cat /proc", "base image changed (sha256:");
    assert_miss(&log, "RUN echo $MODE", "base image changed (sha256:");
}

#[test]
fn no_cache_filter_reruns_a_stage_and_keeps_what_comes_out_the_same() {
    let lade = Lade::new();
    lade.busybox();
    let context = Context::new(
        "FROM busybox AS gen\nRUN echo same > /out\n\nFROM busybox\nCOPY --from=gen /out /out\nRUN cat /out > /seen\n",
    );
    let epoch = ["--build-arg", "UNUSED=1"];
    let build = |extra: &[&str]| {
        let mut args = vec!["build", "--progress", "plain"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&epoch);
        args.push(context.path().to_str().unwrap());
        let output = lade
            .cmd()
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .args(&args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    build(&[]);
    let log = build(&["--no-cache-filter", "gen"]);
    assert_miss(&log, "RUN echo same", "--no-cache-filter gen");
    // With SOURCE_DATE_EPOCH the rerun makes the same layer: what uses it stays cached.
    assert_cached(&log, "COPY --from=gen");
    assert_cached(&log, "RUN cat /out");
    let error = lade.fails(&[
        "build",
        "--no-cache-filter",
        "nope",
        context.path().to_str().unwrap(),
    ]);
    assert!(error.contains("--no-cache-filter nope"), "{error}");
}

/// What each of two independent stages saw of the other while its RUN step ran:
/// `met` when the other stage's step was running at the same time, `alone` when it was
/// not. The steps meet at a FIFO in a shared cache mount: opening it blocks until the
/// other side opens it too (a handshake, no timing compared); `timeout` bounds the wait
/// at `patience` seconds, which is how long `alone` takes to conclude.
fn stage_meetings(lade: &Lade, jobs: &str, patience: u32) -> (String, String) {
    let mount = format!("--mount=type=cache,id=meet{jobs},target=/h,sharing=shared");
    let step = |side: &str| {
        format!(
            "RUN {mount} (mkfifo /h/meet 2>/dev/null || true) && \\\n\
             if timeout {patience} sh -c '{side}'; then echo met; else echo alone; fi > /seen\n"
        )
    };
    let context = Context::new(&format!(
        "FROM busybox AS a\n{}\nFROM busybox AS b\n{}\n\
         FROM busybox\nCOPY --from=a /seen /a\nCOPY --from=b /seen /b\n",
        step("echo a > /h/meet"),
        step("read other < /h/meet"),
    ));
    let tag = format!("par{jobs}");
    lade.build_log(context.path(), &["-t", &tag, "--jobs", jobs]);
    let seen = lade.ok(&["run", "--rm", &tag, "cat", "/a", "/b"]);
    let seen: Vec<&str> = seen.split_whitespace().collect();
    assert_eq!(seen.len(), 2, "{seen:?}");
    (seen[0].to_string(), seen[1].to_string())
}

#[test]
fn independent_stages_run_at_the_same_time() {
    let lade = Lade::new();
    lade.busybox();
    // With two jobs each step waits as long as it takes (up to a minute) for the other.
    let (a, b) = stage_meetings(&lade, "2", 60);
    assert_eq!(
        (a.as_str(), b.as_str()),
        ("met", "met"),
        "with --jobs 2 the stages overlap"
    );
    // With one, each waits two seconds for the other and must not see it.
    let (a, b) = stage_meetings(&lade, "1", 2);
    assert_eq!(
        (a.as_str(), b.as_str()),
        ("alone", "alone"),
        "with --jobs 1 they do not"
    );
}

#[test]
fn a_failing_stage_stops_the_others() {
    let lade = Lade::new();
    lade.busybox();
    let context = Context::new(
        "FROM busybox AS slow\nRUN sleep 4321\n\nFROM busybox AS broken\nRUN sleep 1 && exit 3\n\nFROM busybox\nCOPY --from=slow /bin/sh /a\nCOPY --from=broken /bin/sh /b\n",
    );
    let started = Instant::now();
    let error = lade.fails(&["build", "--jobs", "2", context.path().to_str().unwrap()]);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the slow stage was stopped"
    );
    assert!(
        error.contains("exit code 3"),
        "the first failure is reported:\n{error}"
    );
    assert!(error.contains("exit 3"), "{error}");
    let left = std::process::Command::new("pgrep")
        .args(["-f", "sleep 4321"])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "no process of the slow stage is left"
    );
}

/// Starts `lade build --progress plain` of `context` and reads its log until a line
/// ends with `marker` (a step's own output: its sandbox runs); the build, still running
/// (killed when dropped), and the log so far.
fn build_until(lade: &Lade, context: &Context, marker: &str) -> (common::Killed, String) {
    let mut child = common::Killed(
        lade.process()
            .args([
                "build",
                "--progress",
                "plain",
                context.path().to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = child.0.stderr.take().unwrap();
    let mut seen = String::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.ends_with(marker) {
            break;
        }
    }
    (child, seen)
}

/// Waits until no process runs `command` (a killed build's sandbox dies with it).
fn wait_gone(command: &str) {
    common::wait_until(&format!("`{command}` to be gone"), || {
        std::process::Command::new("pgrep")
            .args(["-f", command])
            .output()
            .unwrap()
            .stdout
            .is_empty()
    });
}

#[test]
fn a_build_killed_half_way_keeps_the_steps_it_finished() {
    let lade = Lade::new();
    lade.busybox();
    let context = Context::new(
        "FROM busybox\nRUN echo one > /one\nRUN echo two > /two\nARG WAIT=3456\nRUN echo sleeping && sleep $WAIT\n",
    );
    // The step's own output: its sandbox runs.
    let (child, seen) = build_until(&lade, &context, " sleeping");
    assert!(
        seen.contains("RUN echo sleeping && sleep $WAIT"),
        "the last step started:\n{seen}"
    );
    drop(child);
    // The sandbox dies with the build.
    wait_gone("sleep 3456");
    let (_, log) = lade.build_log(context.path(), &["--build-arg", "WAIT=0"]);
    assert_cached(&log, "RUN echo one");
    assert_cached(&log, "RUN echo two");
    assert!(
        matches!(status_of(&log, "RUN echo sleeping"), Status::Miss(_)),
        "{log}"
    );
}

#[test]
fn explain_says_why_without_building() {
    let lade = Lade::new();
    lade.busybox();
    let context = multi_stage();
    lade.build_log(context.path(), &["-t", "app"]);
    context.file("a.txt", "a changed\n");
    let records = lade.ok(&["cache", "ls", "--format", "json"]);
    let images = lade.ok(&["images", "-q"]);
    let json = lade.ok(&[
        "build",
        "--explain",
        "--format",
        "json",
        context.path().to_str().unwrap(),
    ]);
    let steps: serde_json::Value = serde_json::from_str(&json).unwrap();
    let find = |needle: &str| {
        steps
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["instruction"].as_str().unwrap().contains(needle))
            .unwrap_or_else(|| panic!("{needle} in {json}"))
            .clone()
    };
    assert_eq!(find("RUN echo tool")["status"], "cached");
    assert_eq!(find("COPY a.txt")["status"], "runs");
    assert_eq!(find("COPY a.txt")["reason"], "1 file changed (a.txt)");
    assert_eq!(find("RUN cat a.txt")["status"], "runs");
    assert_eq!(
        find("COPY --from=build")["reason"],
        "stage build will be rebuilt"
    );
    assert_eq!(find("CMD")["status"], "config only");
    // Nothing was built or recorded.
    assert_eq!(lade.ok(&["cache", "ls", "--format", "json"]), records);
    assert_eq!(lade.ok(&["images", "-q"]), images);
}

#[test]
fn cache_ls_inspect_and_du() {
    let lade = Lade::new();
    lade.busybox();
    let context = multi_stage();
    lade.build_log(context.path(), &["-t", "app", "--build-arg", "UNUSED=x"]);
    let records: serde_json::Value =
        serde_json::from_str(&lade.ok(&["cache", "ls", "--format", "json"])).unwrap();
    let records = records.as_array().unwrap();
    assert_eq!(records.len(), 11);
    let copy = records
        .iter()
        .find(|r| r["step"] == "COPY . /all")
        .expect("the COPY . record");
    assert_eq!(copy["stage"], "Dockerfile:build");
    let key = copy["key"].as_str().unwrap();
    let inspected: serde_json::Value =
        serde_json::from_str(&lade.ok(&["cache", "inspect", &key[..10]])).unwrap();
    let files = &inspected["inputs"]["files"];
    for name in ["a.txt", "b.txt", "Dockerfile", ".dockerignore"] {
        assert!(files.get(name).is_some(), "{name} in {files}");
    }
    assert!(
        files.get("ignored.log").is_none(),
        "ignored files are not inputs"
    );
    let run = records
        .iter()
        .find(|r| r["step"] == "RUN cat a.txt > /a-copy")
        .unwrap();
    let inspected: serde_json::Value =
        serde_json::from_str(&lade.ok(&["cache", "inspect", run["key"].as_str().unwrap()]))
            .unwrap();
    assert_eq!(
        inspected["inputs"]["step"]["run"],
        serde_json::json!(["/bin/sh", "-c", "cat a.txt > /a-copy"])
    );
    let image: serde_json::Value =
        serde_json::from_str(&lade.ok(&["cache", "inspect", "app"])).unwrap();
    let steps = image["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 3, "{image}");
    assert_eq!(steps[0]["step"], "COPY --from=tools /tool /tool");
    assert_eq!(steps[0]["cached"], true);
    assert!(steps[2]["cached"].as_str().unwrap().contains("config only"));

    let du: serde_json::Value =
        serde_json::from_str(&lade.ok(&["cache", "du", "--format", "json"])).unwrap();
    assert_eq!(du["records"], 11);
    assert!(du["layers"]["count"].as_u64().unwrap() >= 7, "{du}");
    assert_eq!(du["layers_shared_with_images"]["count"], 2, "{du}");
    let text = lade.ok(&["cache", "du"]);
    assert!(text.contains("cache mounts"), "{text}");
    let error = lade.fails(&["cache", "inspect", "nothing-like-this"]);
    assert!(
        error.contains("neither a cache key nor an image"),
        "{error}"
    );
}

/// The diff_ids of the cached steps' layers.
fn kept_layers(lade: &Lade) -> Vec<String> {
    let records: serde_json::Value =
        serde_json::from_str(&lade.ok(&["cache", "ls", "--format", "json"])).unwrap();
    let mut layers: Vec<String> = records
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["layer"]["diff_id"].as_str().map(str::to_string))
        .collect();
    layers.sort();
    layers
}

fn image_layers(lade: &Lade, image: &str) -> Vec<String> {
    let inspect: serde_json::Value = serde_json::from_str(&lade.ok(&["inspect", image])).unwrap();
    inspect[0]["RootFS"]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn pruning_with_any_filter_leaves_tagged_images_runnable() {
    let lade = Lade::new();
    lade.busybox();
    let context = multi_stage();
    lade.build_log(context.path(), &["-t", "app"]);
    let count = |lade: &Lade| -> usize {
        let records: serde_json::Value =
            serde_json::from_str(&lade.ok(&["cache", "ls", "--format", "json"])).unwrap();
        records.as_array().unwrap().len()
    };
    let runs = |lade: &Lade| {
        let listing = lade.ok(&["run", "--rm", "app"]);
        assert!(listing.contains("a.txt"), "{listing}");
    };
    assert_eq!(count(&lade), 11);

    lade.ok(&["cache", "prune", "-f", "--filter", "until=1h"]);
    assert_eq!(count(&lade), 11, "everything was used within the hour");
    runs(&lade);

    let out = lade.ok(&["cache", "prune", "-f"]);
    let kept = kept_layers(&lade);
    let first_layers = image_layers(&lade, "app");
    assert!(kept.len() >= 2, "the final image's own steps are kept");
    assert!(
        kept.iter().all(|l| first_layers.contains(l)),
        "only steps whose layers the image uses are kept: {kept:?} vs {first_layers:?}"
    );
    assert!(
        out.contains(&format!("removed {} cached step(s)", 11 - kept.len())),
        "{out}"
    );
    runs(&lade);
    let (_, log) = lade.build_log(context.path(), &["-t", "app"]);
    assert_miss(
        &log,
        "WORKDIR /src",
        "its cached result was removed (pruned)",
    );
    // The rerun WORKDIR makes its directory with a new time (unless within the same
    // second): either way, the COPY after it misses too.
    assert!(
        matches!(status_of(&log, "COPY a.txt"), Status::Miss(_)),
        "{log}"
    );

    lade.ok(&["cache", "prune", "-f", "--keep-storage", "0"]);
    let now_layers = image_layers(&lade, "app");
    let kept = kept_layers(&lade);
    assert!(kept.len() >= 2, "the new image's own steps are kept");
    assert!(
        kept.iter()
            .all(|l| now_layers.contains(l) || first_layers.contains(l)),
        "only steps whose layers an image uses are kept (the untagged old image still counts)"
    );
    runs(&lade);

    lade.build_log(context.path(), &["-t", "app"]);
    lade.ok(&["cache", "prune", "--all", "--force"]);
    assert_eq!(count(&lade), 0);
    runs(&lade);
    lade.ok(&["run", "--rm", "busybox", "true"]);
    let listing = lade.ok(&["images"]);
    assert!(
        listing.contains("app") && listing.contains("busybox"),
        "{listing}"
    );

    let error = lade.fails(&["cache", "prune", "--filter", "until=soon"]);
    assert!(error.contains("until=DURATION"), "{error}");
}

#[test]
fn a_cache_exported_to_a_directory_is_reused_by_another_store() {
    let first = Lade::new();
    first.busybox();
    let context = multi_stage();
    let cache_dir = tempfile::tempdir().unwrap();
    let dest = format!("type=local,dest={}", cache_dir.path().display());
    let (built, log) = first.build_log(context.path(), &["-t", "app", "--cache-to", &dest]);
    assert!(log.contains("exported 11 cache record(s)"), "{log}");
    assert!(cache_dir.path().join("index.json").exists());

    // Another machine: a fresh store with the same base image.
    let second = Lade::new();
    second.busybox();
    let src = format!("type=local,src={}", cache_dir.path().display());
    let (rebuilt, log) = second.build_log(context.path(), &["-t", "app", "--cache-from", &src]);
    assert!(
        misses(&log).is_empty(),
        "every step comes from the cache:\n{log}"
    );
    assert_eq!(built, rebuilt, "the same image");
    let listing = second.ok(&["run", "--rm", "app"]);
    assert!(listing.contains("b.txt"), "{listing}");

    let error = second.fails(&[
        "build",
        "--cache-from",
        "type=s3,bucket=x",
        context.path().to_str().unwrap(),
    ]);
    assert!(
        error.contains("type=local") && error.contains("type=registry"),
        "{error}"
    );

    // The first build of a pipeline has no cache to import yet: it says so and builds.
    let empty = tempfile::tempdir().unwrap();
    let missing = empty.path().join("not-yet");
    let (_, log) = second.build_log(context.path(), &["--cache-from", missing.to_str().unwrap()]);
    assert!(
        log.contains(&format!(
            "--cache-from {}: no cache there",
            missing.display()
        )),
        "{log}"
    );
}

#[test]
fn run_steps_are_keyed_on_the_files_a_bind_mount_brings_in() {
    let lade = Lade::new();
    lade.busybox();
    let context = Context::new(
        "FROM busybox\nRUN --mount=type=bind,source=src,target=/src cat /src/x > /out\nRUN echo after > /after\n",
    );
    context
        .file("src/x", "one\n")
        .file("other.txt", "unrelated\n");
    lade.build_log(context.path(), &["-t", "app"]);
    context.file("other.txt", "still unrelated\n");
    let (_, log) = lade.build_log(context.path(), &["-t", "app"]);
    assert!(
        misses(&log).is_empty(),
        "files outside the mount do not count:\n{log}"
    );
    context.file("src/x", "two\n");
    let (_, log) = lade.build_log(context.path(), &["-t", "app"]);
    assert_miss(&log, "RUN --mount", "files mounted at /src changed");
    assert_miss(&log, "RUN echo after", "an earlier step changed (step 2)");
    assert_eq!(lade.ok(&["run", "--rm", "app", "cat", "/out"]), "two\n");
}

#[test]
fn run_steps_write_on_a_volatile_overlay_and_a_build_killed_in_one_leaves_a_clean_store() {
    let lade = Lade::new();
    lade.busybox();
    // The step shows its root mount, writes files, says so, then waits to be killed.
    let context = Context::new(
        "FROM busybox\nRUN echo base > /base\nARG WAIT=5678\n\
         RUN grep ' / / ' /proc/self/mountinfo; i=0; while [ $i -lt 300 ]; do echo $i > /f$i; i=$((i+1)); done; \
         sync; echo written && sleep $WAIT\n",
    );
    let (child, seen) = build_until(&lade, &context, " written");
    let root_mount = seen
        .lines()
        .find(|l| l.contains(" - overlay "))
        .unwrap_or_else(|| panic!("the step showed its root mount:\n{seen}"));
    assert!(
        // Newer kernels show the option as `fsync=volatile`.
        root_mount
            .split([' ', ','])
            .any(|o| o == "volatile" || o == "fsync=volatile"),
        "the RUN step's overlay is volatile (kernel {}): {root_mount}",
        common::run("uname", &["-r"]).trim()
    );
    // Killed mid-step, with no chance to clean up.
    drop(child);
    wait_gone("sleep 5678");
    let check = lade.cmd().args(["system", "check"]).output().unwrap();
    let report = String::from_utf8_lossy(&check.stderr);
    assert!(
        check.status.success() && report.contains("no problems"),
        "{report}{}",
        String::from_utf8_lossy(&check.stdout)
    );
    // The rebuild reruns the step that died and gives all its files.
    let (_, log) = lade.build_log(context.path(), &["-t", "after", "--build-arg", "WAIT=0"]);
    assert_cached(&log, "RUN echo base");
    let files = lade.ok(&[
        "run",
        "--rm",
        "after",
        "sh",
        "-c",
        "cat /base /f0 /f299; ls / | grep -c '^f'",
    ]);
    assert_eq!(
        files.split_whitespace().collect::<Vec<_>>(),
        ["base", "0", "299", "300"]
    );
}

/// Sets the extended attribute `name` of `path` (not following symlinks).
fn set_xattr(path: &std::path::Path, name: &str, value: &[u8]) {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let c_name = std::ffi::CString::new(name).unwrap();
    // SAFETY: both strings are NUL-terminated and live across the call; the value
    // pointer and length describe a live slice.
    let rc = unsafe {
        libc::lsetxattr(
            c_path.as_ptr(),
            c_name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(
        rc,
        0,
        "{}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

/// The line `tests/fixtures/xattr-probe.c` prints for `path` in the image: its inode and
/// extended attributes.
fn probe(lade: &Lade, image: &str, paths: &[&str]) -> Vec<String> {
    let mut args = vec!["run", "--rm", image, "/probe"];
    args.extend_from_slice(paths);
    lade.ok(&args).lines().map(str::to_string).collect()
}

/// COPY keeps `user.*` attributes and file capabilities (as podman does), in the layer
/// and the snapshot the container runs on; a changed attribute is a changed file to the
/// cache.
#[test]
fn copy_keeps_extended_attributes_and_a_changed_one_misses() {
    common::require_tool("setcap");
    let lade = Lade::new();
    lade.busybox();
    let context = Context::new("FROM busybox\nCOPY probe /probe\nCOPY files/ /files/\n");
    context.file("files/plain", "x\n").file("files/bind", "b\n");
    common::compile_fixture("xattr-probe", &context.path().join("probe"));
    set_xattr(&context.path().join("files/plain"), "user.x", b"1");
    let bind = context.path().join("files/bind");
    common::run(
        "setcap",
        &["cap_net_bind_service+ep", bind.to_str().unwrap()],
    );

    let (image, _) = lade.build_log(context.path(), &[]);
    let seen = probe(&lade, &image, &["/files/plain", "/files/bind"]);
    assert!(seen[0].ends_with(" user.x=31"), "{seen:?}");
    // VFS_CAP_REVISION_2, effective, CAP_NET_BIND_SERVICE (bit 10) permitted.
    assert!(
        seen[1].ends_with(" security.capability=0100000200040000000000000000000000000000"),
        "{seen:?}"
    );

    let (again, log) = lade.build_log(context.path(), &[]);
    assert_cached(&log, "COPY files/");
    assert_eq!(image, again);

    set_xattr(&context.path().join("files/plain"), "user.x", b"2");
    let (changed, log) = lade.build_log(context.path(), &[]);
    assert_cached(&log, "COPY probe");
    assert_miss(&log, "COPY files/", "1 file changed (files/plain)");
    let seen = probe(&lade, &changed, &["/files/plain"]);
    assert!(seen[0].ends_with(" user.x=32"), "{seen:?}");
}

/// Hard links among a COPY's files stay one file in the image (as in Docker): one inode
/// in the container, one copy of the bytes in the layer, the same digests each time. A
/// link turned into a copy is a changed file to the cache.
#[test]
fn copy_keeps_hard_links_and_a_broken_link_misses() {
    let lade = Lade::new();
    lade.busybox();
    let context = Context::new("FROM busybox\nCOPY probe /probe\nCOPY files/ /files/\n");
    context.file("files/a", "same\n").file("files/c", "same\n");
    common::compile_fixture("xattr-probe", &context.path().join("probe"));
    let files = context.path().join("files");
    std::fs::hard_link(files.join("a"), files.join("b")).unwrap();
    set_xattr(&files.join("a"), "user.x", b"1");

    // With SOURCE_DATE_EPOCH a rebuild from scratch makes the same image.
    let build = |extra: &[&str]| {
        let mut args = vec!["build", "--progress", "plain"];
        args.extend_from_slice(extra);
        args.push(context.path().to_str().unwrap());
        let output = lade
            .cmd()
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .args(&args)
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{log}");
        let image = String::from_utf8_lossy(&output.stdout).trim().to_string();
        (image, log)
    };
    let (image, _) = build(&[]);
    let seen = probe(&lade, &image, &["/files/a", "/files/b", "/files/c"]);
    let inode = |line: &str| line.split(' ').nth(1).unwrap_or_default().to_string();
    assert_eq!(inode(&seen[0]), inode(&seen[1]), "{seen:?}");
    assert_ne!(inode(&seen[0]), inode(&seen[2]), "{seen:?}");
    // One inode: the second name has the first's attributes.
    assert!(seen[1].ends_with(" user.x=31"), "{seen:?}");
    assert_eq!(build(&["--no-cache"]).0, image, "the same layers and image");

    std::fs::remove_file(files.join("b")).unwrap();
    context.file("files/b", "same\n");
    let (copied, log) = build(&[]);
    assert_cached(&log, "COPY probe");
    assert_miss(&log, "COPY files/", "1 file changed (files/b)");
    let seen = probe(&lade, &copied, &["/files/a", "/files/b"]);
    assert_ne!(inode(&seen[0]), inode(&seen[1]), "{seen:?}");
}
