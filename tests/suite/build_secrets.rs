//! Build secrets (`build --secret`, `RUN --mount=type=secret`) and SSH agents (`build
//! --ssh`, `RUN --mount=type=ssh`): the value reaches the step and nothing else (not the
//! saved image, the store's files and database, nor the build's output); the cache
//! keeps a step whose secret's value changed and misses one whose mount's options did;
//! an agent is reachable from a step, whether the user's or one the build starts for
//! key files. Then buildah's own secret and SSH build cases (`tests/bud/`, with the
//! flags of its `bud.bats` and `ssh.bats`), copied under tests/fixtures/buildah-bud.

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use common::{Context, Killed, Lade};
use sha2::Digest;

/// A value found nowhere by chance: the test's name for it, the process and the time.
fn unique(label: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{label}-{}-{nanos:x}", std::process::id())
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every regular file under `root` (the store: blobs, snapshots, the database and its
/// write-ahead log, caches) that holds `needle`.
pub(crate) fn files_holding(root: &Path, needle: &str) -> Vec<PathBuf> {
    walkdir::WalkDir::new(root)
        .follow_links(false)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter(|e| std::fs::read(e.path()).is_ok_and(|bytes| contains(&bytes, needle.as_bytes())))
        .map(|e| e.path().to_path_buf())
        .collect()
}

/// `lade build --progress plain` with `env` set and `args` before the context.
fn build(lade: &Lade, env: &[(&str, &str)], args: &[&str], context: &Path) -> Output {
    lade.cmd()
        .envs(env.iter().copied())
        .args(["build", "--progress", "plain"])
        .args(args)
        .arg(context)
        .output()
        .expect("lade runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn succeeded(output: Output) -> String {
    let all = text(&output);
    assert!(output.status.success(), "the build failed:\n{all}");
    all
}

/// The plain log's line of the one step whose label contains `needle` that starts
/// with `word` (`DONE`, `CACHED`...).
fn step_line(log: &str, needle: &str, word: &str) -> String {
    let number = log
        .lines()
        .filter_map(|line| line.split_once(' '))
        .find(|(number, rest)| {
            number.starts_with('#') && rest.starts_with('[') && rest.contains(needle)
        })
        .map(|(number, _)| number.to_string())
        .unwrap_or_else(|| panic!("no step {needle:?} in:\n{log}"));
    log.lines()
        .filter_map(|line| line.strip_prefix(&format!("{number} ")))
        .find(|rest| rest.starts_with(word))
        .unwrap_or_else(|| panic!("no {word} line for {needle:?} in:\n{log}"))
        .to_string()
}

/// The plain log's status line of the one step whose label contains `needle`:
/// `CACHED`, or `cache miss: ...`.
fn cache_status(log: &str, needle: &str) -> String {
    let number = log
        .lines()
        .filter_map(|line| line.split_once(' '))
        .find(|(number, rest)| {
            number.starts_with('#') && rest.starts_with('[') && rest.contains(needle)
        })
        .map(|(number, _)| number.to_string())
        .unwrap_or_else(|| panic!("no step {needle:?} in:\n{log}"));
    log.lines()
        .filter_map(|line| line.strip_prefix(&format!("{number} ")))
        .find(|rest| *rest == "CACHED" || rest.starts_with("cache miss: "))
        .unwrap_or_else(|| panic!("no cache status for {needle:?} in:\n{log}"))
        .to_string()
}

#[test]
fn secrets_from_a_file_and_the_environment_reach_run_and_appear_nowhere_else() {
    let lade = Lade::new();
    lade.busybox();
    let file_value = unique("file-secret");
    let env_value = unique("env-secret");
    let short_value = unique("short-form-secret");
    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("token");
    std::fs::write(&secret_file, &file_value).unwrap();
    let context = Context::new(
        r#"FROM busybox
RUN --mount=type=secret,id=tok cat /run/secrets/tok > /dev/null && test -s /run/secrets/tok && sha256sum /run/secrets/tok | cut -d' ' -f1 > /tok.sha && stat -c '%a %u' /run/secrets/tok > /tok.mode
RUN --mount=type=secret,id=envtok,env=ENVTOK test -n "$ENVTOK" && test ! -e /run/secrets/envtok && printf %s "$ENVTOK" | sha256sum | cut -d' ' -f1 > /env.sha
RUN --mount=type=secret,id=envtok,target=/etc/tok,mode=0440,uid=12,gid=13 stat -c '%a %u %g' /etc/tok > /options
RUN --mount=type=secret,id=LADE_SHORT_SECRET sha256sum /run/secrets/LADE_SHORT_SECRET | cut -d' ' -f1 > /short.sha
RUN echo "${ENVTOK:-unset}" > /later-env
RUN --mount=type=secret,id=tok,target=/run/secrets/only test -s /run/secrets/only
"#,
    );
    let file_spec = format!("id=tok,src={}", secret_file.display());
    let output = build(
        &lade,
        &[
            ("LADE_ENV_SECRET", &env_value),
            ("LADE_SHORT_SECRET", &short_value),
        ],
        &[
            "-t",
            "secrets:1",
            "--secret",
            &file_spec,
            "--secret",
            "id=envtok,env=LADE_ENV_SECRET",
            "--secret",
            "id=LADE_SHORT_SECRET",
        ],
        context.path(),
    );
    let log = succeeded(output);

    // Each step saw its secret: the image holds the hashes of what they read.
    let seen = lade.ok(&[
        "run",
        "--rm",
        "secrets:1",
        "cat",
        "/tok.sha",
        "/tok.mode",
        "/env.sha",
        "/options",
        "/short.sha",
        "/later-env",
    ]);
    assert_eq!(
        seen,
        format!(
            "{}\n400 0\n{}\n440 12 13\n{}\nunset\n",
            sha256_hex(file_value.as_bytes()),
            sha256_hex(env_value.as_bytes()),
            sha256_hex(short_value.as_bytes()),
        )
    );
    let left = lade.ok(&[
        "run",
        "--rm",
        "secrets:1",
        "sh",
        "-c",
        "ls /run/secrets /etc/tok 2>&1; true",
    ]);
    assert!(
        left.matches("No such file or directory").count() == 2,
        "no mount point is left in the image: {left}"
    );

    // A step that only read its secret changed nothing: its mount point, and /run
    // that overlay copied up to make it, are not a layer.
    let done = step_line(&log, "target=/run/secrets/only", "DONE");
    assert!(!done.contains("layer"), "{done}\n{log}");

    // And nothing else did.
    let saved = lade.dir.path().join("saved.tar");
    lade.ok(&["save", "-o", saved.to_str().unwrap(), "secrets:1"]);
    let saved = std::fs::read(&saved).unwrap();
    let inspect = lade.ok(&["inspect", "secrets:1"]);
    let history = lade.ok(&["history", "--no-trunc", "secrets:1"]);
    let explain = lade
        .cmd()
        .env("LADE_ENV_SECRET", &env_value)
        .env("LADE_SHORT_SECRET", &short_value)
        .args(["build", "--explain", "--secret", &file_spec])
        .args(["--secret", "id=envtok,env=LADE_ENV_SECRET"])
        .arg(context.path())
        .output()
        .unwrap();
    let explain = succeeded(explain);
    for value in [&file_value, &env_value, &short_value] {
        assert!(
            !log.contains(value.as_str()),
            "the build's output shows {value}:\n{log}"
        );
        assert!(
            !contains(&saved, value.as_bytes()),
            "lade save's archive holds {value}"
        );
        assert!(!inspect.contains(value.as_str()), "inspect shows {value}");
        assert!(!history.contains(value.as_str()), "history shows {value}");
        assert!(!explain.contains(value.as_str()), "--explain shows {value}");
        let found = files_holding(&lade.root(), value);
        assert!(
            found.is_empty(),
            "the store's files hold {value}: {found:?}"
        );
    }
}

#[test]
fn a_new_value_keeps_the_cache_and_new_mount_options_miss_it() {
    let lade = Lade::new();
    lade.busybox();
    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("token");
    let spec = format!("id=tok,src={}", secret_file.display());
    let dockerfile = |target: &str| {
        format!("FROM busybox\nRUN --mount=type=secret,id=tok,required,target={target} sh -c 'test -s /run/secrets/tok || test -s /other/tok' && echo ran > /ran\n")
    };
    let context = Context::new(&dockerfile("/run/secrets/tok"));

    std::fs::write(&secret_file, "first value").unwrap();
    let log = succeeded(build(&lade, &[], &["--secret", &spec], context.path()));
    assert!(
        cache_status(&log, "RUN --mount").starts_with("cache miss"),
        "{log}"
    );

    // BuildKit's rule: the value is not part of the step's key.
    std::fs::write(&secret_file, "second value").unwrap();
    let log = succeeded(build(&lade, &[], &["--secret", &spec], context.path()));
    assert_eq!(cache_status(&log, "RUN --mount"), "CACHED", "{log}");

    // The mount's options are.
    context.file("Dockerfile", &dockerfile("/other/tok"));
    let log = succeeded(build(&lade, &[], &["--secret", &spec], context.path()));
    let status = cache_status(&log, "RUN --mount");
    assert!(status.contains("its mounts changed"), "{status}\n{log}");
}

#[test]
fn a_missing_required_secret_or_agent_fails_its_step_naming_it() {
    let lade = Lade::new();
    lade.busybox();
    let context = Context::new(
        "FROM busybox\nRUN --mount=type=secret,id=npmrc,required=true cat /run/secrets/npmrc\n",
    );
    let output = build(&lade, &[], &[], context.path());
    assert!(!output.status.success());
    let err = text(&output);
    assert!(
        err.contains("Dockerfile:2:1")
            && err.contains("the secret \"npmrc\" is required but was not given"),
        "{err}"
    );

    let output = build(
        &lade,
        &[],
        &["--secret", "id=npmrc,src=/nonexistent/npmrc"],
        context.path(),
    );
    let err = text(&output);
    assert!(
        !output.status.success()
            && err.contains("--secret id=npmrc: cannot read /nonexistent/npmrc"),
        "{err}"
    );
    let output = build(&lade, &[], &["--secret", "src=/a"], context.path());
    assert!(
        !output.status.success() && text(&output).contains("invalid --secret \"src=/a\""),
        "{}",
        text(&output)
    );

    context.file(
        "Dockerfile",
        "FROM busybox\nRUN --mount=type=ssh,id=git,required true\n",
    );
    let output = build(&lade, &[], &[], context.path());
    let err = text(&output);
    assert!(
        !output.status.success()
            && err.contains("the ssh agent \"git\" is required but was not given"),
        "{err}"
    );
}

/// An `ssh-agent` of the test's own, listening at `socket`, stopped with the test.
struct TestAgent {
    _process: Killed,
    socket: PathBuf,
}

impl TestAgent {
    fn start(dir: &Path) -> TestAgent {
        common::require_tool("ssh-agent");
        let socket = dir.join("agent.sock");
        let mut child = std::process::Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ssh-agent starts");
        // The handshake: with -D it prints its socket once it listens.
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(
            line.starts_with("SSH_AUTH_SOCK="),
            "ssh-agent said {line:?}"
        );
        TestAgent {
            _process: Killed(child),
            socket,
        }
    }

    fn add(&self, key: &Path) {
        let status = std::process::Command::new("ssh-add")
            .arg("-q")
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.socket)
            .status()
            .unwrap();
        assert!(status.success(), "ssh-add {}", key.display());
    }
}

/// A new ed25519 key without passphrase at `dir/name`; its MD5 fingerprint.
fn new_key(dir: &Path, name: &str) -> (PathBuf, String) {
    common::require_tool("ssh-keygen");
    let key = dir.join(name);
    common::run(
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-N", "", "-f", key.to_str().unwrap()],
    );
    let listed = common::run(
        "ssh-keygen",
        &["-l", "-E", "md5", "-f", key.to_str().unwrap()],
    );
    let fingerprint = listed.split_whitespace().nth(1).unwrap().to_string();
    (key, fingerprint)
}

/// `tag`: busybox with Debian's `ssh-add` (openssh-client, as installed here) and the
/// libraries it links, so a step can talk to its agent.
fn ssh_tools_image(lade: &Lade, tag: &str) {
    common::require_tool("ssh-add");
    let context = Context::new("FROM busybox\nCOPY root/ /\n");
    let libraries = common::run("ldd", &["/usr/bin/ssh-add"]);
    let files = std::iter::once("/usr/bin/ssh-add").chain(
        libraries
            .split_whitespace()
            .filter(|word| word.starts_with('/')),
    );
    for file in files {
        let copy = context
            .path()
            .join("root")
            .join(file.trim_start_matches('/'));
        std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
        std::fs::copy(file, &copy).unwrap();
    }
    lade.build(context.path(), &["-t", tag]);
}

#[test]
fn the_users_agent_is_reachable_from_a_step_and_left_nowhere() {
    let lade = Lade::new();
    lade.busybox();
    ssh_tools_image(&lade, "sshtools");
    let dir = tempfile::tempdir().unwrap();
    let (key, fingerprint) = new_key(dir.path(), "id_ed25519");
    let agent = TestAgent::start(dir.path());
    agent.add(&key);
    let context = Context::new(
        r#"FROM sshtools
RUN --mount=type=ssh test -S "$SSH_AUTH_SOCK" && echo "$SSH_AUTH_SOCK" > /sock
RUN --mount=type=ssh ssh-add -l -E md5 > /keys && ! ssh-add -D 2>/dev/null && ssh-add -l -E md5 > /keys-after
RUN --mount=type=ssh,id=default,dst=/dstsock,uid=1000,gid=1001,mode=0444 stat -c '%a %u %g %F' /dstsock > /options
RUN echo "${SSH_AUTH_SOCK:-unset}" > /later
"#,
    );
    let socket = agent.socket.to_str().unwrap();
    succeeded(build(
        &lade,
        &[("SSH_AUTH_SOCK", socket)],
        &["-t", "ssh:1", "--ssh", "default"],
        context.path(),
    ));
    let seen = lade.ok(&[
        "run",
        "--rm",
        "ssh:1",
        "cat",
        "/sock",
        "/keys",
        "/keys-after",
        "/options",
        "/later",
    ]);
    let lines: Vec<&str> = seen.lines().collect();
    assert_eq!(lines[0], "/run/buildkit/ssh_agent.0", "{seen}");
    // The step listed the key, and could not remove it (the proxy lists and signs only).
    assert!(
        lines[1].contains(&fingerprint) && lines[2].contains(&fingerprint),
        "{seen}"
    );
    assert_eq!(lines[3], "444 1000 1001 socket", "{seen}");
    assert_eq!(lines[4], "unset", "{seen}");
    let left = lade.ok(&[
        "run",
        "--rm",
        "ssh:1",
        "sh",
        "-c",
        "ls /run/buildkit /dstsock 2>&1; true",
    ]);
    assert_eq!(
        left.matches("No such file or directory").count(),
        2,
        "{left}"
    );
}

#[test]
fn key_files_are_loaded_into_an_agent_of_the_builds_own() {
    let lade = Lade::new();
    lade.busybox();
    ssh_tools_image(&lade, "sshtools");
    let dir = tempfile::tempdir().unwrap();
    let (key, fingerprint) = new_key(dir.path(), "deploy_key");
    // A key others may read: ssh-add would refuse the file, BuildKit takes it.
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let context =
        Context::new("FROM sshtools\nRUN --mount=type=ssh,required ssh-add -l -E md5 > /keys\n");
    let spec = format!("default={}", key.display());
    let output = lade
        .cmd()
        .env_remove("SSH_AUTH_SOCK")
        .args([
            "build",
            "--progress",
            "plain",
            "-t",
            "ssh:2",
            "--ssh",
            &spec,
        ])
        .arg(context.path())
        .output()
        .unwrap();
    succeeded(output);
    let keys = lade.ok(&["run", "--rm", "ssh:2", "cat", "/keys"]);
    assert!(keys.contains(&fingerprint), "{keys}");
    // The agent is gone with the build, and its socket's directory with it.
    let root = lade.root().display().to_string();
    let agents: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|cmdline| String::from_utf8_lossy(&cmdline).replace('\0', " "))
        .filter(|cmdline| cmdline.starts_with("ssh-agent") && cmdline.contains(&root))
        .collect();
    assert!(
        agents.is_empty(),
        "ssh-agent outlived the build: {agents:?}"
    );
    let staged: Vec<_> = std::fs::read_dir(lade.root().join("tmp"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name())
                .collect()
        })
        .unwrap_or_default();
    assert!(staged.is_empty(), "left in the store's tmp: {staged:?}");

    let output = lade
        .cmd()
        .env_remove("SSH_AUTH_SOCK")
        .args(["build", "--progress", "plain", "--ssh", "default"])
        .arg(context.path())
        .output()
        .unwrap();
    assert!(
        !output.status.success()
            && text(&output).contains("--ssh default: SSH_AUTH_SOCK is not set"),
        "{}",
        text(&output)
    );
}

/// buildah's secret and SSH build tests (`tests/bud.bats`, `tests/ssh.bats` of
/// containers/buildah), run with lade on the same Dockerfiles and flags, checking what
/// buildah's tests check. `alpine` and `ubuntu` are busybox here, and buildah's git
/// image (for `ssh-add`) is busybox with Debian's ssh-add.
#[test]
fn buildahs_secret_and_ssh_cases_build() {
    let lade = Lade::new();
    lade.busybox();
    for name in ["alpine", "ubuntu"] {
        lade.ok(&["tag", "busybox", name]);
    }
    ssh_tools_image(&lade, "quay.io/hummingbird/git");
    let bud = common::repo().join("tests/fixtures/buildah-bud");
    let mounts = bud.join("run-mounts");
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("mysecret");
    std::fs::write(&secret, "SOMESECRETDATA\n").unwrap();
    let src = format!("id=mysecret,src={}", secret.display());
    let file = |name: &str| mounts.join(name).to_string_lossy().into_owned();
    // buildah builds without a cache unless given --layers; so do these.
    let run = |env: &[(&str, &str)], args: &[&str], context: &Path| {
        let mut args = args.to_vec();
        args.push("--no-cache");
        let output = build(&lade, env, &args, context);
        (output.status.success(), text(&output))
    };

    common::step("bud with containerfile secret");
    let (ok, out) = run(
        &[],
        &[
            "--secret",
            &src,
            "-t",
            "secretimg",
            "-f",
            &file("Dockerfile.secret"),
        ],
        &mounts,
    );
    assert!(ok && out.contains("SOMESECRETDATA"), "{out}");
    let left = lade.output(&["run", "--rm", "secretimg", "cat", "/run/secrets/mysecret"]);
    assert!(
        String::from_utf8_lossy(&left.stderr)
            .contains("can't open '/run/secrets/mysecret': No such file or directory"),
        "{left:?}"
    );

    common::step("secret accessed twice");
    let twice = Context::new(
        "FROM alpine\n\nRUN --mount=type=secret,id=mysecret,dst=/home/root/mysecret cat /home/root/mysecret\n\nRUN --mount=type=secret,id=mysecret,dst=/home/root/mysecret2 echo hello && cat /home/root/mysecret2\n",
    );
    let (ok, out) = run(&[], &["--secret", &src, "-t", "secretimg"], twice.path());
    assert!(
        ok && out.contains("hello") && out.contains("SOMESECRETDATA"),
        "{out}"
    );

    common::step("secret accessed on a second RUN");
    // bud.bats builds it twice, the second time with --no-cache --layers: both run it.
    for _ in 0..2 {
        let (ok, out) = run(
            &[],
            &["--secret", &src, "-f", &file("Dockerfile.secret-access")],
            &mounts,
        );
        assert!(
            !ok && out.contains("SOMESECRETDATA")
                && out.contains("cat: can't open '/mysecret': No such file or directory"),
            "{out}"
        );
    }

    common::step("default mode, and options");
    let typed = format!("{src},type=file");
    let (ok, out) = run(
        &[],
        &["--secret", &typed, "-f", &file("Dockerfile.secret-mode")],
        &mounts,
    );
    assert!(ok && out.contains("400"), "{out}");
    let (ok, out) = run(
        &[],
        &["--secret", &src, "-f", &file("Dockerfile.secret-options")],
        &mounts,
    );
    assert!(
        ok && out.contains("444") && out.contains("1000") && out.contains("1001"),
        "{out}"
    );

    common::step("secret not required, and required");
    let (ok, out) = run(
        &[],
        &["-f", &file("Dockerfile.secret-not-required")],
        &mounts,
    );
    assert!(ok, "{out}");
    let (ok, out) = run(
        &[],
        &["-f", &file("Dockerfile.secret-required-false")],
        &mounts,
    );
    assert!(
        !ok && out.contains("No such file or directory") && !out.contains("is required"),
        "{out}"
    );
    for name in [
        "Dockerfile.secret-required",
        "Dockerfile.secret-required-wo-value",
    ] {
        let (ok, out) = run(&[], &["-f", &file(name)], &mounts);
        assert!(
            !ok && out.contains("the secret \"mysecret\" is required but was not given"),
            "{out}"
        );
    }

    common::step("environment secrets");
    let env = [("MYSECRET", "SOMESECRETDATA")];
    for spec in [
        "id=mysecret,src=MYSECRET,type=env",
        "id=mysecret,env=MYSECRET",
    ] {
        let (ok, out) = run(
            &env,
            &[
                "--secret",
                spec,
                "-t",
                "secretimg",
                "-f",
                &file("Dockerfile.secret"),
            ],
            &mounts,
        );
        assert!(ok && out.contains("SOMESECRETDATA"), "{spec}: {out}");
    }
    let (ok, out) = run(
        &env,
        &[
            "--secret",
            "id=mysecret2,env=MYSECRET,true=false",
            "-f",
            &file("Dockerfile.secret"),
        ],
        &mounts,
    );
    assert!(!ok && out.contains("invalid --secret"), "{out}");
    let (ok, out) = run(
        &[("mysecret", "ENVDATA")],
        &["--secret", "id=mysecret", "-f", &file("Dockerfile.secret")],
        &mounts,
    );
    assert!(
        ok && out.contains("ENVDATA"),
        "the variable wins over a file: {out}"
    );
    let (ok, out) = run(
        &env,
        &[
            "--secret",
            "id=MYSECRET",
            "-f",
            &bud.join("secret-env/Dockerfile").to_string_lossy(),
        ],
        &bud.join("secret-env"),
    );
    assert!(ok && out.contains("SOMESECRETDATA"), "{out}");

    common::step("malformed --secret flags");
    for spec in ["id=,src", "id=mysecret,src", "src", "id"] {
        let (ok, out) = run(
            &[],
            &["--secret", spec, "-f", &file("Dockerfile.secret")],
            &mounts,
        );
        assert!(!ok && out.contains("invalid --secret"), "{spec}: {out}");
    }

    common::step("secret targets relative to the working directory");
    let relative = bud.join("secret-relative");
    let foo = format!(
        "id=secret-foo,src={}",
        relative.join("secret1.txt").display()
    );
    let bar = format!(
        "id=secret-bar,src={}",
        relative.join("secret2.txt").display()
    );
    let (ok, out) = run(
        &[],
        &["--secret", &foo, "--secret", &bar, "-t", "test"],
        &relative,
    );
    assert!(
        ok && out.contains("secret:foo") && out.contains("secret:bar"),
        "{out}"
    );

    common::step("secret readable as an unprivileged user");
    let secret_txt = dir.path().join("secret.txt");
    std::fs::write(&secret_txt, "hidingInPlainSight").unwrap();
    let spec = format!("id=theSecret,type=file,src={}", secret_txt.display());
    for target in ["/var/not/already/there", "/top/var/tmp/there"] {
        let context = Context::new(&format!(
            "  FROM busybox\n  USER 1000:1000\n  RUN --mount=type=secret,id=theSecret,target={target},uid=1000,gid=1000 wc -c {target}\n"
        ));
        let (ok, out) = run(&[], &["--secret", &spec], context.path());
        assert!(ok && out.contains("18"), "{out}");
    }

    common::step("verify-cleanup: refused, as BuildKit refuses its `z` bind option");
    let cleanup = bud.join("verify-cleanup");
    let foo = format!(
        "id=secret-foo,src={}",
        cleanup.join("secret1.txt").display()
    );
    let (ok, out) = run(&[], &["-t", "testbud", "--secret", &foo], &cleanup);
    assert!(!ok && out.contains("unexpected key \"z\""), "{out}");

    common::step("ssh.bats: a key file");
    let (key, fingerprint) = {
        let key = dir.path().join("sshkey");
        common::run(
            "ssh-keygen",
            &[
                "-b",
                "2048",
                "-t",
                "rsa",
                "-f",
                key.to_str().unwrap(),
                "-q",
                "-N",
                "",
            ],
        );
        let listed = common::run(
            "ssh-keygen",
            &["-l", "-f", key.to_str().unwrap(), "-E", "md5"],
        );
        (key, listed.split_whitespace().nth(1).unwrap().to_string())
    };
    let ssh = format!("default={}", key.display());
    let (ok, out) = run(
        &[],
        &["--ssh", &ssh, "-t", "sshimg", "-f", &file("Dockerfile.ssh")],
        &mounts,
    );
    assert!(ok && out.contains(&fingerprint), "{out}");
    let left = lade.output(&["run", "--rm", "sshimg", "cat", "/run/buildkit/ssh_agent.0"]);
    assert!(
        String::from_utf8_lossy(&left.stderr)
            .contains("cat: can't open '/run/buildkit/ssh_agent.0': No such file or directory"),
        "{left:?}"
    );
    let (ok, out) = run(
        &[],
        &["--ssh", &ssh, "-f", &file("Dockerfile.ssh_access")],
        &mounts,
    );
    assert!(
        !ok && out.contains("Could not open a connection to your authentication agent."),
        "{out}"
    );
    let (ok, out) = run(
        &[],
        &["--ssh", &ssh, "-f", &file("Dockerfile.ssh_options")],
        &mounts,
    );
    assert!(
        ok && out.contains("444") && out.contains("1000") && out.contains("1001"),
        "{out}"
    );

    common::step("ssh.bats: with an agent running too");
    let agent = TestAgent::start(dir.path());
    agent.add(&key);
    let socket = agent.socket.to_string_lossy().into_owned();
    let (ok, out) = run(
        &[("SSH_AUTH_SOCK", &socket)],
        &["--ssh", &ssh, "-f", &file("Dockerfile.ssh")],
        &mounts,
    );
    assert!(ok && out.contains(&fingerprint), "{out}");
}
