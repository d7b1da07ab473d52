//! Docker's behaviour for `images`, `history`, `build` from standard input, `login`
//! and build progress, through the binary.

use std::io::{Read, Write};
use std::process::Stdio;

use serde_json::Value;

use crate::common::{Context, Lade};

fn lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.is_empty()).collect()
}

/// Runs lade with `input` on standard input.
fn with_stdin(lade: &Lade, args: &[&str], input: &[u8]) -> std::process::Output {
    let mut child = lade
        .process()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lade runs");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let output = child.wait_with_output().expect("lade finishes");
    writer.join().unwrap();
    output
}

#[test]
fn images_lists_filters_and_formats_as_docker() {
    let lade = Lade::new();
    lade.busybox();
    let base = Context::new("FROM busybox\nLABEL team=x\nRUN echo one > /a\n");
    let old_base = lade.build(base.path(), &["-t", "base"]);
    let child = Context::new("FROM base\nRUN echo two > /b\n");
    let child_id = lade.build(child.path(), &["-t", "child"]);
    // The tag moves on: the old base is untagged, and the child is built on it.
    let base = Context::new("FROM busybox\nLABEL team=x\nRUN echo other > /a\n");
    let new_base = lade.build(base.path(), &["-t", "base"]);
    let short = |id: &str| id[7..19].to_string();

    let listed = lade.ok(&["images", "-q"]);
    assert!(!listed.contains(&short(&old_base)), "{listed}");
    assert!(listed.contains(&short(&child_id)), "{listed}");
    let all = lade.ok(&["images", "-a", "-q"]);
    assert!(
        all.contains(&short(&old_base)),
        "-a shows intermediate images:\n{all}"
    );

    let dangling = lade.ok(&["images", "-a", "-q", "--filter", "dangling=true"]);
    assert_eq!(lines(&dangling), [short(&old_base)], "{dangling}");
    let named = lade.ok(&["images", "-a", "--filter", "dangling=false"]);
    assert!(!named.contains("<none>"), "{named}");

    let labelled = lade.ok(&["images", "-q", "-f", "label=team=x"]);
    let mut labelled = lines(&labelled);
    labelled.sort();
    let mut want = vec![short(&new_base), short(&child_id)];
    want.sort();
    assert_eq!(labelled, want);
    assert!(lade
        .ok(&["images", "-q", "-f", "label=team=y"])
        .trim()
        .is_empty());
    let keyed = lade.ok(&["images", "-q", "-f", "label=team"]);
    assert_eq!(lines(&keyed).len(), 2, "{keyed}");

    let referenced = lade.ok(&[
        "images",
        "--format",
        "{{.Repository}}",
        "-f",
        "reference=bas*",
    ]);
    assert_eq!(lines(&referenced), ["base"], "{referenced}");
    let tagged = lade.ok(&[
        "images",
        "--format",
        "{{.Repository}}:{{.Tag}}",
        "-f",
        "reference=*:latest",
    ]);
    assert_eq!(lines(&tagged).len(), 3, "{tagged}");

    // busybox is dated by SOURCE_DATE_EPOCH, long before these builds.
    let since = lade.ok(&[
        "images",
        "--format",
        "{{.Repository}}",
        "-f",
        "since=busybox",
    ]);
    assert!(
        !since.contains("busybox") && since.contains("child"),
        "{since}"
    );
    let before = lade.ok(&[
        "images",
        "--format",
        "{{.Repository}}",
        "-f",
        "before=child",
    ]);
    assert_eq!(lines(&before), ["busybox"], "{before}");

    let refused = lade.fails(&["images", "-f", "colour=red"]);
    assert!(refused.contains("colour"), "{refused}");
    let refused = lade.fails(&["images", "-f", "dangling=maybe"]);
    assert!(refused.contains("dangling"), "{refused}");

    let full = lade.ok(&["images", "-q", "--no-trunc", "child"]);
    assert_eq!(full.trim(), child_id);

    let row = lade.ok(&[
        "images",
        "--format",
        "{{.ID}}|{{.Repository}}|{{.Tag}}|{{.Digest}}|{{.CreatedSince}}|{{.CreatedAt}}|{{.Size}}|{{.Containers}}|{{.SharedSize}}|{{.UniqueSize}}|{{.VirtualSize}}",
        "child",
    ]);
    let fields: Vec<&str> = row.trim().split('|').collect();
    assert_eq!(fields.len(), 11, "{row}");
    assert_eq!(fields[0], short(&child_id));
    assert_eq!(&fields[1..4], ["child", "latest", "<none>"]);
    assert!(fields[4].ends_with(" ago"), "{row}");
    let created_at = fields[5].split(' ').collect::<Vec<_>>();
    assert_eq!(created_at.len(), 4, "Go's time format: {row}");
    assert!(
        created_at[0].len() == 10 && created_at[1].len() == 8,
        "{row}"
    );
    assert!(created_at[2].starts_with(['+', '-']), "{row}");
    assert!(
        fields[6].ends_with("MB") || fields[6].ends_with("kB"),
        "{row}"
    );
    assert_eq!(&fields[7..10], ["N/A", "N/A", "N/A"]);
    assert_eq!(fields[10], fields[6]);

    let no_trunc = lade.ok(&["images", "--no-trunc", "--format", "{{.ID}}", "child"]);
    assert_eq!(no_trunc.trim(), child_id);

    let table = lade.ok(&["images", "--format", "table {{.ID}}\t{{.Tag}}", "child"]);
    assert!(table.starts_with("IMAGE ID"), "{table}");
    assert!(table.lines().next().unwrap().contains("TAG"), "{table}");

    let json = lade.ok(&["images", "--format", "json"]);
    for line in lines(&json) {
        let row: Value = serde_json::from_str(line).unwrap();
        for key in [
            "ID",
            "Repository",
            "Tag",
            "Digest",
            "CreatedSince",
            "CreatedAt",
            "Size",
            "Containers",
            "SharedSize",
            "UniqueSize",
            "VirtualSize",
        ] {
            assert!(row.get(key).is_some(), "{key} missing: {line}");
        }
        assert_eq!(row["ID"].as_str().unwrap().len(), 12, "{line}");
    }

    let digests = lade.ok(&["images", "--digests", "child"]);
    assert!(
        digests.lines().next().unwrap().contains("DIGEST"),
        "{digests}"
    );
}

#[test]
fn history_takes_dockers_flags_and_fields() {
    let lade = Lade::new();
    lade.busybox();
    let context = Context::new("FROM busybox\nRUN echo hello > /hello\nENV A=1\n");
    let id = lade.build(context.path(), &["-t", "hist"]);

    let raw = lade.ok(&["history", "-H=false", "hist"]);
    let header = raw.lines().next().unwrap();
    assert!(header.contains("CREATED AT"), "{raw}");
    for line in raw.lines().skip(1) {
        let cells: Vec<&str> = line
            .split("   ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        let time = cells[1];
        time.parse::<jiff::Timestamp>()
            .unwrap_or_else(|e| panic!("{time} is not RFC 3339 ({e}): {raw}"));
        assert!(time.contains('T'), "{raw}");
        assert!(
            cells
                .iter()
                .any(|c| c.chars().all(|ch| ch.is_ascii_digit())),
            "raw sizes in bytes: {line}"
        );
    }

    let quiet = lade.ok(&["history", "-q", "hist"]);
    let ids = lines(&quiet);
    assert_eq!(ids[0], &id[7..19]);
    assert!(ids[1..].iter().all(|i| *i == "<missing>"), "{quiet}");
    let full = lade.ok(&["history", "-q", "--no-trunc", "hist"]);
    assert_eq!(lines(&full)[0], id);

    let formatted = lade.ok(&[
        "history",
        "--format",
        "{{.ID}}|{{.CreatedSince}}|{{.CreatedAt}}|{{.CreatedBy}}|{{.Size}}|{{.Comment}}",
        "hist",
    ]);
    let rows: Vec<Vec<&str>> = lines(&formatted)
        .iter()
        .map(|l| l.split('|').collect())
        .collect();
    assert_eq!(rows.len(), ids.len(), "{formatted}");
    assert_eq!(rows[0][0], &id[7..19]);
    assert_eq!(rows[0][3], "ENV A=1");
    assert!(
        rows[1][3].starts_with("RUN /bin/sh -c echo hello"),
        "{formatted}"
    );
    assert!(rows[0][1].ends_with(" ago"), "{formatted}");
    rows[0][2].parse::<jiff::Timestamp>().unwrap();
    assert!(rows[1][4].ends_with('B'), "human sizes: {formatted}");
    assert_eq!(rows[0][5], "buildkit.dockerfile.v0");

    let raw_size = lade.ok(&[
        "history",
        "-H=false",
        "--format",
        "{{.Size}}|{{.CreatedSince}}",
        "hist",
    ]);
    let second: Vec<&str> = lines(&raw_size)[1].split('|').collect();
    assert!(second[0].parse::<u64>().is_ok(), "{raw_size}");
    second[1].parse::<jiff::Timestamp>().unwrap();

    let table = lade.ok(&[
        "history",
        "--format",
        "table {{.ID}}\t{{.CreatedBy}}\t{{.Comment}}",
        "hist",
    ]);
    let header = table.lines().next().unwrap();
    assert!(
        header.starts_with("IMAGE") && header.contains("CREATED BY") && header.contains("COMMENT"),
        "{table}"
    );

    let long = Context::new(&format!("FROM busybox\nRUN echo {} > /x\n", "y".repeat(60)));
    lade.build(long.path(), &["-t", "long"]);
    let by = lade.ok(&["history", "--format", "{{.CreatedBy}}", "long"]);
    let first = lines(&by)[0];
    assert_eq!(first.chars().count(), 45, "{by}");
    assert!(first.ends_with('…'), "{by}");
    let by = lade.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "long",
    ]);
    assert!(lines(&by)[0].contains(&"y".repeat(60)), "{by}");
}

#[test]
fn build_reads_a_dockerfile_or_a_context_from_standard_input() {
    let lade = Lade::new();
    lade.busybox();

    // A Dockerfile: -q prints the id alone.
    let output = with_stdin(
        &lade,
        &["build", "-q", "-t", "piped", "-"],
        b"FROM busybox\nRUN echo piped > /p\n",
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(lines(&stdout).len(), 1, "{stdout}");
    assert!(
        stdout.trim().starts_with("sha256:") && stdout.trim().len() == 71,
        "{stdout}"
    );
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(lade.ok(&["run", "--rm", "piped", "cat", "/p"]), "piped\n");

    // Without a context, COPY finds nothing.
    let output = with_stdin(
        &lade,
        &["build", "--quiet", "-"],
        b"FROM busybox\nCOPY x /x\n",
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("COPY x /x") && stderr.contains("not found"),
        "{stderr}"
    );

    // A tar, compressed or not, is the context, Dockerfile and all.
    let context = Context::new("FROM busybox\nCOPY x /x\nRUN cat /x > /y\n");
    context.file("x", "from the tar\n");
    for flags in ["-cf", "-czf"] {
        let tar = std::process::Command::new("tar")
            .args(["-C", context.path().to_str().unwrap(), flags, "-", "."])
            .output()
            .unwrap();
        assert!(tar.status.success());
        let output = with_stdin(&lade, &["build", "-q", "-t", "tarred", "-"], &tar.stdout);
        assert!(
            output.status.success(),
            "{flags}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            lade.ok(&["run", "--rm", "tarred", "cat", "/y"]),
            "from the tar\n"
        );
    }

    // -f - : the Dockerfile from standard input, the context a directory.
    let output = with_stdin(
        &lade,
        &[
            "build",
            "-q",
            "-t",
            "dashf",
            "-f",
            "-",
            context.path().to_str().unwrap(),
        ],
        b"FROM busybox\nCOPY x /z\n",
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        lade.ok(&["run", "--rm", "dashf", "cat", "/z"]),
        "from the tar\n"
    );
    let refused = lade.fails(&["build", "-f", "-", "-"]);
    assert!(refused.contains("stdin for both"), "{refused}");
}

#[test]
fn login_asks_on_a_terminal_and_refuses_without_one() {
    let lade = Lade::new();
    // Port 1 refuses connections: every login here fails after its arguments are read.
    let registry = "127.0.0.1:1";

    let output = with_stdin(&lade, &["login", registry], b"");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("non-TTY"), "{stderr}");

    let refused = lade.fails(&["login", "--password-stdin", registry]);
    assert!(refused.contains("requires --username"), "{refused}");
    let refused = lade.fails(&["login", "-u", "a", "-p", "x", "--password-stdin", registry]);
    assert!(refused.contains("cannot specify both"), "{refused}");

    let warned = lade.fails(&["login", "-u", "a", "-p", "secret", registry]);
    assert!(
        warned.contains("WARNING! Using --password via the CLI is insecure. Use --password-stdin."),
        "{warned}"
    );
    let output = with_stdin(
        &lade,
        &["login", "-u", "a", "--password-stdin", registry],
        b"secret\n",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        !stderr.contains("WARNING") && !stderr.contains("non-TTY"),
        "{stderr}"
    );

    // On a terminal: both asked for, the password not echoed.
    let pty = nix::pty::openpty(None, None).unwrap();
    let slave = std::fs::File::from(pty.slave);
    let mut child = lade
        .process()
        .args(["login", registry])
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave)
        .spawn()
        .unwrap();
    let mut master = std::fs::File::from(pty.master);
    let reader = master.try_clone().unwrap();
    let (sender, received) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut reader = reader;
        let mut buffer = [0u8; 1024];
        while let Ok(n) = reader.read(&mut buffer) {
            if n == 0 || sender.send(buffer[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = String::new();
    let wait_for = |text: &str, seen: &mut String| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !seen.contains(text) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match received.recv_timeout(left) {
                Ok(bytes) => seen.push_str(&String::from_utf8_lossy(&bytes)),
                Err(_) => panic!("no {text:?} on the terminal: {seen:?}"),
            }
        }
    };
    wait_for("Username: ", &mut seen);
    master.write_all(b"alice\n").unwrap();
    wait_for("Password: ", &mut seen);
    master.write_all(b"hunter2\n").unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "nothing listens on {registry}");
    wait_for(registry, &mut seen);
    assert!(seen.contains("alice"), "the user name echoes: {seen:?}");
    assert!(
        !seen.contains("hunter2"),
        "the password must not echo: {seen:?}"
    );
}

#[test]
fn a_base_without_path_gets_dockers_default_path() {
    let lade = Lade::new();
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("file"), "x").unwrap();
    let tar = std::process::Command::new("tar")
        .args(["-C", root.path().to_str().unwrap(), "-cf", "-", "."])
        .output()
        .unwrap();
    let output = with_stdin(&lade, &["import", "-", "nopath"], &tar.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        lade.ok(&["inspect", "--format", "{{json .Config.Env}}", "nopath"])
            .trim(),
        "null"
    );
    let context = Context::new("FROM nopath\nENV PATH=$PATH:/opt/bin\n");
    lade.build(context.path(), &["-t", "withpath"]);
    let env = lade.ok(&["inspect", "--format", "{{json .Config.Env}}", "withpath"]);
    assert_eq!(
        env.trim(),
        r#"["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/opt/bin"]"#
    );
    let context = Context::new("FROM nopath\nLABEL a=b\n");
    lade.build(context.path(), &["-t", "plain"]);
    let env = lade.ok(&["inspect", "--format", "{{json .Config.Env}}", "plain"]);
    assert_eq!(
        env.trim(),
        r#"["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]"#
    );
}

/// `build --ulimit` sets the RUN steps' limits, as `run --ulimit` a container's
/// (Docker's build flag); a bad one is refused before anything runs.
#[test]
fn build_ulimit_limits_the_run_steps() {
    let lade = Lade::new();
    lade.busybox();
    let context = Context::new("FROM busybox\nRUN ulimit -n > /soft && ulimit -Hn > /hard\n");
    lade.build(
        context.path(),
        &["-t", "limited", "--ulimit", "nofile=101:102"],
    );
    assert_eq!(
        lade.ok(&["run", "--rm", "limited", "cat", "/soft", "/hard"]),
        "101\n102\n"
    );
    let error = lade.fails(&[
        "build",
        "--ulimit",
        "nofiles=1",
        context.path().to_str().unwrap(),
    ]);
    assert!(error.contains("--ulimit \"nofiles=1\""), "{error}");
}

/// `[stage n/m] TEXT` of a plain progress line `#k [stage n/m] TEXT`.
fn label(line: &str) -> Option<(String, usize, usize, String)> {
    let open = line.find('[')?;
    let close = line[open..].find(']')? + open;
    let inside = &line[open + 1..close];
    let (stage, place) = match inside.rsplit_once(' ') {
        Some((stage, place)) => (stage.to_string(), place),
        None => (String::new(), inside),
    };
    let (n, m) = place.split_once('/')?;
    Some((
        stage,
        n.parse().ok()?,
        m.parse().ok()?,
        line[close + 1..].trim().to_string(),
    ))
}

#[test]
fn build_progress_numbers_steps_one_way() {
    let lade = Lade::new();
    lade.busybox();
    let context = Context::new(
        "FROM busybox AS one\nRUN echo one > /one\n\nFROM busybox AS two\nCOPY x /x\nRUN cat /x > /y\n\nFROM busybox\nCOPY --from=one /one /one\nCOPY --from=two /y /y\nCMD [\"cat\", \"/y\"]\n",
    );
    context.file("x", "first\n");
    let (_, log) = lade.build_log(context.path(), &[]);
    let total: usize = log
        .lines()
        .find_map(|l| l.strip_prefix("building "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no step count: {log}"));
    let labels: Vec<(String, usize, usize, String)> = log.lines().filter_map(label).collect();
    assert_eq!(labels.len(), total, "one label a step:\n{log}");
    let mut stages = std::collections::BTreeMap::new();
    for (stage, n, m, _) in &labels {
        let (count, of) = stages.entry(stage.clone()).or_insert((0, *m));
        assert_eq!(*of, *m, "{log}");
        *count += 1;
        assert!(*n >= 1 && *n <= *m, "{log}");
    }
    assert_eq!(stages.len(), 3, "{log}");
    for (stage, (count, of)) in &stages {
        assert_eq!(
            count, of,
            "stage {stage} shows each of its steps once:\n{log}"
        );
    }
    assert_eq!(total, stages.values().map(|(_, m)| m).sum::<usize>());
    // `#k` numbers the same steps.
    let numbered: std::collections::BTreeSet<&str> = log
        .lines()
        .filter(|l| label(l).is_some())
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert_eq!(numbered.len(), total, "{log}");

    // A miss's "(step n)" names the step the label calls n.
    context.file("x", "second\n");
    let (_, log) = lade.build_log(context.path(), &[]);
    let miss = log
        .lines()
        .find(|l| l.contains("RUN cat /x > /y: an earlier step changed (step "))
        .unwrap_or_else(|| panic!("no miss for RUN cat:\n{log}"));
    let n: usize = miss
        .rsplit("(step ")
        .next()
        .and_then(|rest| rest.trim_end_matches(')').parse().ok())
        .unwrap_or_else(|| panic!("{miss}"));
    let named = log
        .lines()
        .filter_map(label)
        .find(|(stage, number, _, _)| stage == "two" && *number == n)
        .unwrap_or_else(|| panic!("no step {n} in stage two:\n{log}"));
    assert_eq!(named.3, "COPY x /x", "{log}");
}
