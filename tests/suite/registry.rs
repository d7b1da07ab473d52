//! Registries through the real CLI against Debian's `docker-registry` (CNCF distribution)
//! started by the test on 127.0.0.1: push then `skopeo inspect` and a pull into another
//! store that runs it; an image skopeo copied in Docker's format pulled and run; basic
//! auth with `login`/`logout` (the credentials file 0600, never a password printed); a
//! blob corrupted in the registry refused with nothing stored; TLS trusted through
//! certs.d (a CA, a self-signed certificate as Docker's docs make it, a client
//! certificate for a registry that asks for one) and refused in one sentence otherwise.

use crate::common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::Lade;

/// A registry on a free port of 127.0.0.1, stopped when dropped.
pub(crate) struct Registry {
    child: Child,
    port: u16,
    data: tempfile::TempDir,
}

impl Registry {
    pub(crate) fn start(htpasswd: Option<&Path>) -> Registry {
        Registry::start_with(htpasswd, None)
    }

    fn start_with_auth(auth: &str) -> Registry {
        Registry::launch(auth.to_string(), None)
    }

    fn start_with(htpasswd: Option<&Path>, tls: Option<(&Path, &Path)>) -> Registry {
        let auth = match htpasswd {
            Some(path) => format!(
                "auth:\n  htpasswd:\n    realm: lade-test\n    path: {}\n",
                path.display()
            ),
            None => String::new(),
        };
        Registry::launch(auth, tls)
    }

    fn launch(auth: String, tls: Option<(&Path, &Path)>) -> Registry {
        Registry::launch_tls(auth, tls, None)
    }

    /// A registry serving TLS with `cert` and `key`; with `client_ca`, one that asks
    /// every client for a certificate signed by it (mutual TLS).
    fn start_tls(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Registry {
        Registry::launch_tls(String::new(), Some((cert, key)), client_ca)
    }

    fn launch_tls(auth: String, tls: Option<(&Path, &Path)>, client_ca: Option<&Path>) -> Registry {
        common::require_tool("docker-registry");
        let data = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client_cas = match client_ca {
            Some(ca) => format!("    clientcas:\n      - {}\n", ca.display()),
            None => String::new(),
        };
        let tls = match tls {
            Some((cert, key)) => format!(
                "  tls:\n    certificate: {}\n    key: {}\n{client_cas}",
                cert.display(),
                key.display()
            ),
            None => String::new(),
        };
        let config = data.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{tls}{auth}",
                data.path().join("store").display()
            ),
        )
        .unwrap();
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("docker-registry starts");
        // Ready when it says it listens (its log at info level, on stderr); the rest of
        // its log is drained so that it never blocks on a full pipe.
        let (ready_send, ready) = std::sync::mpsc::channel();
        let log = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(log).lines().map_while(|l| l.ok()) {
                if line.contains("listening on") {
                    let _ = ready_send.send(());
                }
            }
        });
        let registry = Registry { child, port, data };
        ready
            .recv_timeout(Duration::from_secs(30))
            .expect("the registry did not say it listens");
        registry
    }

    pub(crate) fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The registry's stored blob files.
    fn blob_files(&self) -> Vec<PathBuf> {
        walkdir::WalkDir::new(self.data.path().join("store"))
            .into_iter()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name() == "data" && e.path().to_string_lossy().contains("/blobs/"))
            .map(|e| e.path().to_path_buf())
            .collect()
    }
}

/// A CA and a certificate for 127.0.0.1 it signed, made with openssl.
fn make_certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    common::require_tool("openssl");
    let ca_key = dir.join("ca.key");
    let ca = dir.join("ca.crt");
    let key = dir.join("server.key");
    let csr = dir.join("server.csr");
    let cert = dir.join("server.crt");
    let ext = dir.join("san.ext");
    std::fs::write(&ext, "subjectAltName=IP:127.0.0.1\n").unwrap();
    let p = |path: &PathBuf| path.to_str().unwrap().to_string();
    common::run(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=lade test CA",
            "-keyout",
            &p(&ca_key),
            "-out",
            &p(&ca),
        ],
    );
    common::run(
        "openssl",
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            &p(&key),
            "-out",
            &p(&csr),
        ],
    );
    common::run(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            &p(&csr),
            "-CA",
            &p(&ca),
            "-CAkey",
            &p(&ca_key),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &p(&ext),
            "-out",
            &p(&cert),
        ],
    );
    (ca, cert, key)
}

/// A registry holding busybox (pushed by a store that has it) at `repository:1`.
fn registry_with_busybox(repository: &str) -> (Registry, Lade, String) {
    let registry = Registry::start(None);
    let lade = Lade::new();
    lade.busybox();
    let name = format!("{}/{repository}:1", registry.host());
    lade.ok(&["push", "busybox", &name]);
    (registry, lade, name)
}

/// What `lade run --rm --network none NAME ARGS...` prints in `lade`'s store.
fn run_offline(lade: &Lade, name: &str, args: &[&str]) -> String {
    let mut argv = vec!["run", "--rm", "--network", "none", name];
    argv.extend_from_slice(args);
    lade.ok(&argv)
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn push_then_skopeo_reads_it_and_another_store_pulls_and_runs_it() {
    common::require_tool("skopeo");
    let registry = Registry::start(None);
    let lade = Lade::new();
    lade.busybox();
    let name = format!("{}/tools/busybox:1", registry.host());
    let pushed = lade.ok(&["push", "-q", "busybox", &name]);
    let digest = pushed.trim();
    assert!(digest.starts_with("sha256:"), "{pushed}");
    let inspect = common::run(
        "skopeo",
        &["inspect", "--tls-verify=false", &format!("docker://{name}")],
    );
    let inspect: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(inspect["Digest"], digest);
    // In chunks of 100 kB (the layer is about 1 MB): the same image arrives.
    // (From a store that knows no other repository to mount the blobs from.)
    let chunked = format!("{}/tools/chunked:1", registry.host());
    let chunker = Lade::new();
    chunker.busybox();
    let pushed = chunker
        .cmd()
        .env("LADE_UPLOAD_CHUNK_SIZE", "100000")
        .args(["push", "busybox", &chunked])
        .output()
        .unwrap();
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    let pushed = String::from_utf8_lossy(&pushed.stdout);
    assert!(
        pushed.contains(": pushed") && !pushed.contains("mounted"),
        "{pushed}"
    );
    let chunked_inspect = common::run(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{chunked}"),
        ],
    );
    assert!(chunked_inspect.contains(digest), "{chunked_inspect}");
    let copied = tempfile::tempdir().unwrap();
    common::run(
        "skopeo",
        &[
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{name}"),
            &format!("oci:{}:copied", copied.path().display()),
        ],
    );
    // Pushed again: every blob is there already; to another repository: mounted.
    let again = lade.ok(&["push", "busybox", &name]);
    assert!(again.contains("already in the registry"), "{again}");
    let elsewhere = lade.ok(&[
        "push",
        "busybox",
        &format!("{}/more/busybox:1", registry.host()),
    ]);
    assert!(
        elsewhere.contains("mounted from tools/busybox"),
        "{elsewhere}"
    );
    assert!(!elsewhere.contains(": pushed"), "{elsewhere}");

    let other = Lade::new();
    let pulled = other.ok(&["pull", &name]);
    assert!(pulled.contains("Pull complete"), "{pulled}");
    assert_eq!(run_offline(&other, &name, &["echo", "pulled"]), "pulled\n");
    let same = other.ok(&["inspect", "-f", "{{.Id}}", &name]);
    let original = lade.ok(&["inspect", "-f", "{{.Id}}", "busybox"]);
    assert_eq!(same, original, "the image id travels with the image");
    let again = other.ok(&["pull", &name]);
    assert!(again.contains("Already exists"), "{again}");
    // The registry's digest, as `images --digests` and `inspect` show it.
    let listed = other.ok(&["images", "--digests"]);
    assert!(
        listed.lines().next().unwrap().contains("DIGEST"),
        "{listed}"
    );
    assert!(listed.contains(digest), "{listed}");
    let repo_digests = other.ok(&["inspect", "-f", "{{json .RepoDigests}}", &name]);
    assert!(
        repo_digests.contains(&format!("{}/tools/busybox@{digest}", registry.host())),
        "{repo_digests}"
    );
    // --compression gzip: the same image (same id), its layers gzip for older clients.
    let gzip_name = format!("{}/tools/busybox:gzip", registry.host());
    lade.ok(&["push", "--compression", "gzip", "busybox", &gzip_name]);
    let raw = common::run(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{gzip_name}"),
        ],
    );
    assert!(raw.contains("tar+gzip") && !raw.contains("zstd"), "{raw}");
    let gzipped = Lade::new();
    gzipped.ok(&["pull", &gzip_name]);
    assert_eq!(
        gzipped.ok(&["inspect", "-f", "{{.Id}}", &gzip_name]),
        lade.ok(&["inspect", "-f", "{{.Id}}", "busybox"])
    );

    // FROM and run pull what the store lacks.
    let third = Lade::new();
    let context = common::Context::new(&format!(
        "FROM {name}\nRUN echo built-on-pulled > /f\nCMD [\"cat\", \"/f\"]\n"
    ));
    third.build(context.path(), &["-t", "app:1"]);
    assert_eq!(
        third.ok(&["run", "--rm", "--network", "none", "app:1"]),
        "built-on-pulled\n"
    );
    let fourth = Lade::new();
    let run = fourth.output(&[
        "run",
        "--rm",
        "--network",
        "none",
        &name,
        "echo",
        "run-pulled",
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&run.stdout), "run-pulled\n");
    assert!(String::from_utf8_lossy(&run.stderr).contains("Unable to find image"));
    let never = Lade::new().fails(&["run", "--rm", "--pull", "never", &name, "true"]);
    assert!(never.contains("not in the store"), "{never}");
    let missing = other.fails(&["pull", &format!("{}/tools/nothing:1", registry.host())]);
    assert!(
        missing.contains(&registry.host()) && missing.contains("404"),
        "{missing}"
    );
}

#[test]
fn an_image_skopeo_copied_in_dockers_format_is_pulled_and_runs() {
    common::require_tool("skopeo");
    let registry = Registry::start(None);
    let lade = Lade::new();
    lade.busybox();
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("busybox.tar");
    lade.ok(&["save", "-o", archive.to_str().unwrap(), "busybox"]);
    let name = format!("{}/library/docker-format:latest", registry.host());
    common::run(
        "skopeo",
        &[
            "copy",
            "--dest-tls-verify=false",
            "--format",
            "v2s2",
            &format!("docker-archive:{}", archive.display()),
            &format!("docker://{name}"),
        ],
    );
    let other = Lade::new();
    other.ok(&["pull", &name]);
    assert_eq!(
        run_offline(&other, &name, &["echo", "from", "docker"]),
        "from docker\n"
    );
}

#[test]
fn basic_auth_login_logout_and_nothing_printed() {
    common::require_tool("htpasswd");
    let work = tempfile::tempdir().unwrap();
    let htpasswd = work.path().join("htpasswd");
    common::run(
        "htpasswd",
        &["-Bbc", htpasswd.to_str().unwrap(), "tester", "s3cret-pass"],
    );
    let registry = Registry::start(Some(&htpasswd));
    let lade = Lade::new();
    lade.busybox();
    let auth_file = work.path().join("auth.json");
    let with_auth = |args: &[&str]| {
        let mut command = lade.cmd();
        command.env("LADE_AUTH_FILE", &auth_file).args(args);
        command.output().unwrap()
    };
    let name = format!("{}/private/busybox:1", registry.host());
    let refused = with_auth(&["push", "busybox", &name]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("lade login"), "{stderr}");

    let wrong = with_auth(&["login", "-u", "tester", "-p", "nope", &registry.host()]);
    assert!(!wrong.status.success());
    assert!(!auth_file.exists(), "wrong credentials were saved");
    let mut login = lade.cmd();
    login
        .env("LADE_AUTH_FILE", &auth_file)
        .args([
            "login",
            "-u",
            "tester",
            "--password-stdin",
            &registry.host(),
        ])
        .write_stdin("s3cret-pass\n");
    let login = login.output().unwrap();
    assert!(
        login.status.success(),
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );
    let shown = String::from_utf8_lossy(&login.stdout).to_string()
        + &String::from_utf8_lossy(&login.stderr);
    assert!(!shown.contains("s3cret-pass"), "{shown}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&auth_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let pushed = with_auth(&["push", "busybox", &name]);
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    let pulled = with_auth(&["pull", &name]);
    assert!(
        pulled.status.success(),
        "{}",
        String::from_utf8_lossy(&pulled.stderr)
    );
    let out = with_auth(&["logout", &registry.host()]);
    assert!(out.status.success());
    let after = with_auth(&["pull", &name]);
    assert!(!after.status.success(), "pulled after logout");
}

/// A Docker credential helper for tests, `docker-credential-test`: the
/// docker-credential-helpers protocol, its logins kept in `helper-store` beside it
/// (a line `SERVER-URL JSON` each) and its actions logged in `helper-log`.
const TEST_HELPER: &str = r#"#!/bin/sh
dir=$(dirname "$0")
store="$dir/helper-store"
touch "$store"
echo "$1" >> "$dir/helper-log"
has() { awk -v u="$1" 'index($0, u " ") == 1 { found = 1 } END { exit !found }' "$store"; }
drop() { awk -v u="$1" 'index($0, u " ") != 1' "$store" > "$store.new" && mv "$store.new" "$store"; }
case "$1" in
get)
    read -r url
    if has "$url"; then
        awk -v u="$url" 'index($0, u " ") == 1 { print substr($0, length(u) + 2) }' "$store"
    else
        echo "credentials not found in native keychain"; exit 1
    fi ;;
store)
    json=$(cat)
    url=$(printf '%s' "$json" | sed -n 's/.*"ServerURL" *: *"\([^"]*\)".*/\1/p')
    drop "$url"
    printf '%s %s\n' "$url" "$json" >> "$store" ;;
erase)
    read -r url
    if has "$url"; then drop "$url"; else echo "credentials not found in native keychain"; exit 1; fi ;;
*)
    echo "unknown action $1" >&2; exit 1 ;;
esac
"#;

/// A directory holding `docker-credential-NAME` scripts, and a PATH that finds it first.
fn helper_bin(dir: &Path, helpers: &[(&str, &str)]) -> String {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).unwrap();
    for (name, script) in helpers {
        let path = dir.join(format!("docker-credential-{name}"));
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// An htpasswd-protected registry whose user is `tester`, password `s3cret-pass`.
fn registry_with_htpasswd(work: &Path) -> Registry {
    common::require_tool("htpasswd");
    let htpasswd = work.join("htpasswd");
    common::run(
        "htpasswd",
        &["-Bbc", htpasswd.to_str().unwrap(), "tester", "s3cret-pass"],
    );
    Registry::start(Some(&htpasswd))
}

#[test]
fn credential_helpers_get_store_and_erase_logins() {
    let work = tempfile::tempdir().unwrap();
    let registry = registry_with_htpasswd(work.path());
    let bin = work.path().join("bin");
    let broken = "#!/bin/sh\necho 'the keychain is locked' >&2\nexit 1\n";
    let path = helper_bin(&bin, &[("test", TEST_HELPER), ("broken", broken)]);
    let docker_config = work.path().join("docker");
    std::fs::create_dir_all(&docker_config).unwrap();
    let config = docker_config.join("config.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"credHelpers":{{"{}":"test"}},"credsStore":"broken"}}"#,
            registry.host()
        ),
    )
    .unwrap();
    let auth_file = work.path().join("auth.json");
    let with_helper = |lade: &Lade, args: &[&str]| {
        let mut command = lade.cmd();
        command
            .env("PATH", &path)
            .env("DOCKER_CONFIG", &docker_config)
            .env("LADE_AUTH_FILE", &auth_file)
            .args(args);
        command
    };
    let lade = Lade::new();
    lade.busybox();
    let name = format!("{}/helped/busybox:1", registry.host());
    let refused = with_helper(&lade, &["push", "busybox", &name])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("authentication required"), "{stderr}");

    let login = with_helper(
        &lade,
        &[
            "login",
            "-u",
            "tester",
            "--password-stdin",
            &registry.host(),
        ],
    )
    .write_stdin("s3cret-pass\n")
    .output()
    .unwrap();
    let shown = String::from_utf8_lossy(&login.stdout).to_string()
        + &String::from_utf8_lossy(&login.stderr);
    assert!(login.status.success(), "{shown}");
    assert!(shown.contains("docker-credential-test"), "{shown}");
    assert!(!shown.contains("s3cret-pass"), "{shown}");
    // credHelpers wins over credsStore: the broken store was never asked.
    let store = std::fs::read_to_string(bin.join("helper-store")).unwrap();
    assert!(
        store.contains(&format!(r#""ServerURL":"{}""#, registry.host()))
            && store.contains(r#""Username":"tester""#)
            && store.contains(r#""Secret":"s3cret-pass""#),
        "{store}"
    );
    let own = std::fs::read_to_string(&auth_file).unwrap_or_default();
    assert!(!own.contains(&registry.host()), "lade's file has it: {own}");

    let pushed = with_helper(&lade, &["push", "busybox", &name])
        .output()
        .unwrap();
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    let other = Lade::new();
    let pulled = with_helper(&other, &["pull", &name]).output().unwrap();
    assert!(
        pulled.status.success(),
        "{}",
        String::from_utf8_lossy(&pulled.stderr)
    );
    let log = std::fs::read_to_string(bin.join("helper-log")).unwrap();
    assert!(log.lines().any(|l| l == "get"), "{log}");

    let out = with_helper(&lade, &["logout", &registry.host()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "Removing login credentials for {}",
            registry.host()
        )),
        "{stdout}"
    );
    let store = std::fs::read_to_string(bin.join("helper-store")).unwrap();
    assert!(!store.contains(&registry.host()), "{store}");
    let after = with_helper(&Lade::new(), &["pull", &name])
        .output()
        .unwrap();
    assert!(!after.status.success(), "pulled after logout");
    let stderr = String::from_utf8_lossy(&after.stderr);
    assert!(stderr.contains("authentication required"), "{stderr}");

    // A helper that fails is named, with what it said; one that is missing too.
    std::fs::write(
        &config,
        format!(r#"{{"credHelpers":{{"{}":"broken"}}}}"#, registry.host()),
    )
    .unwrap();
    let failed = with_helper(&Lade::new(), &["pull", &name])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success());
    assert!(
        stderr.contains("docker-credential-broken") && stderr.contains("the keychain is locked"),
        "{stderr}"
    );
    std::fs::write(&config, r#"{"credsStore":"absent"}"#).unwrap();
    let missing = with_helper(&Lade::new(), &["pull", &name])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("docker-credential-absent") && stderr.contains("PATH"),
        "{stderr}"
    );
}

#[test]
fn logout_removes_a_login_from_dockers_config() {
    use base64::Engine as _;
    let work = tempfile::tempdir().unwrap();
    let registry = registry_with_htpasswd(work.path());
    let docker_config = work.path().join("docker");
    std::fs::create_dir_all(&docker_config).unwrap();
    let config = docker_config.join("config.json");
    let auth = base64::engine::general_purpose::STANDARD.encode("tester:s3cret-pass");
    std::fs::write(
        &config,
        format!(
            r#"{{"auths":{{"{}":{{"auth":"{auth}"}},"other.example":{{"auth":"eDp5"}}}},"psFormat":"table {{{{.ID}}}}"}}"#,
            registry.host()
        ),
    )
    .unwrap();
    let auth_file = work.path().join("auth.json");
    let with_docker = |lade: &Lade, args: &[&str]| {
        lade.cmd()
            .env("DOCKER_CONFIG", &docker_config)
            .env("LADE_AUTH_FILE", &auth_file)
            .args(args)
            .output()
            .unwrap()
    };
    let lade = Lade::new();
    lade.busybox();
    let name = format!("{}/docker-login/busybox:1", registry.host());
    let pushed = with_docker(&lade, &["push", "busybox", &name]);
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    let out = with_docker(&lade, &["logout", &registry.host()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "Removing login credentials for {}",
            registry.host()
        )),
        "{stdout}"
    );
    let kept: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    assert!(kept["auths"].get(registry.host()).is_none(), "{kept}");
    assert_eq!(kept["auths"]["other.example"]["auth"], "eDp5", "{kept}");
    assert_eq!(kept["psFormat"], "table {{.ID}}", "{kept}");
    let after = with_docker(&Lade::new(), &["pull", &name]);
    assert!(!after.status.success(), "pulled after logout");
    let stderr = String::from_utf8_lossy(&after.stderr);
    assert!(stderr.contains("authentication required"), "{stderr}");
    let again = with_docker(&lade, &["logout", &registry.host()]);
    // Docker's answer: said, and not a failure.
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("Not logged in to"));
}

#[test]
fn a_corrupted_blob_is_refused_and_nothing_is_stored() {
    let (registry, _lade, name) = registry_with_busybox("tampered/busybox");
    // Flip a byte in the biggest blob (the layer) in the registry's own storage.
    let layer = registry
        .blob_files()
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .unwrap();
    let mut bytes = std::fs::read(&layer).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&layer, &bytes).unwrap();
    let other = Lade::new();
    let refused = other.fails(&["pull", &name]);
    assert!(
        refused.contains("digest") || refused.contains("unpacks to") || refused.contains("failed"),
        "{refused}"
    );
    let images = other.ok(&["images", "-q"]);
    assert!(images.trim().is_empty(), "an image was stored: {images}");
    let check = other.ok(&["system", "check"]);
    let _ = check;
}

#[test]
fn tls_with_a_ca_from_certs_d() {
    let work = tempfile::tempdir().unwrap();
    let (ca, cert, key) = make_certificates(work.path());
    let registry = Registry::start_with(None, Some((&cert, &key)));
    let lade = Lade::new();
    lade.busybox();
    let name = format!("{}/secure/busybox:1", registry.host());
    // Without its CA: refused, and not quietly over plain HTTP.
    let refused = lade.fails(&["push", "busybox", &name]);
    assert!(refused.contains(&registry.host()), "{refused}");
    let certs = work.path().join("certs.d").join(registry.host());
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(&ca, certs.join("ca.crt")).unwrap();
    let with_ca = |lade: &Lade, args: &[&str]| {
        let output = lade
            .cmd()
            .env("LADE_CERTS_DIR", work.path().join("certs.d"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    with_ca(&lade, &["push", "busybox", &name]);
    let other = Lade::new();
    with_ca(&other, &["pull", &name]);
    // --tls-verify=false takes any certificate; so does a registry registries.conf
    // marks insecure.
    let third = Lade::new();
    third.ok(&["pull", "--tls-verify=false", &name]);
    let conf = work.path().join("registries.conf");
    std::fs::write(
        &conf,
        format!(
            "[[registry]]\nlocation = \"{}\"\ninsecure = true\n",
            registry.host()
        ),
    )
    .unwrap();
    let fourth = Lade::new();
    let pulled = fourth
        .cmd()
        .env("CONTAINERS_REGISTRIES_CONF", &conf)
        .args(["pull", &name])
        .output()
        .unwrap();
    assert!(
        pulled.status.success(),
        "{}",
        String::from_utf8_lossy(&pulled.stderr)
    );
}

/// A self-signed certificate and its key, made as Docker's documentation makes a
/// registry's (`openssl req -x509`, which marks it a CA too), named `name.crt` and
/// `name.key` (or `name.cert` for a client's, as certs.d names those).
fn self_signed(dir: &Path, name: &str, subject: &str, san: Option<&str>) -> (PathBuf, PathBuf) {
    common::require_tool("openssl");
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    let subj = format!("/CN={subject}");
    let mut args = vec![
        "req".to_string(),
        "-newkey".into(),
        "rsa:2048".into(),
        "-nodes".into(),
        "-sha256".into(),
        "-keyout".into(),
        key.to_str().unwrap().into(),
        "-x509".into(),
        "-days".into(),
        "2".into(),
        "-out".into(),
        cert.to_str().unwrap().into(),
        "-subj".into(),
        subj,
    ];
    if let Some(san) = san {
        args.extend(["-addext".to_string(), format!("subjectAltName={san}")]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    common::run("openssl", &args);
    (cert, key)
}

/// Runs lade with `certs` as `$LADE_CERTS_DIR`; its status and stderr.
fn with_certs_dir(lade: &Lade, certs: &Path, args: &[&str]) -> (bool, String) {
    let output = lade
        .cmd()
        .env("LADE_CERTS_DIR", certs)
        .args(args)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A TLS refusal is one line that names the registry and the three ways past it.
fn assert_tls_advice(stderr: &str, host: &str) {
    let message = stderr.trim();
    assert_eq!(message.lines().count(), 1, "{message}");
    for part in [
        host,
        &format!("/etc/containers/certs.d/{host}/ca.crt"),
        "--tls-verify=false",
        "insecure = true",
    ] {
        assert!(message.contains(part), "{part:?} missing from: {message}");
    }
    assert!(!message.contains("Other("), "{message}");
}

#[test]
fn a_self_signed_certificate_in_certs_d_is_trusted_as_docker_trusts_it() {
    let work = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(work.path(), "domain", "127.0.0.1", Some("IP:127.0.0.1"));
    let registry = Registry::start_tls(&cert, &key, None);
    let host = registry.host();
    let name = format!("{host}/pinned/busybox:1");
    let lade = Lade::new();
    lade.busybox();

    // The registry's own certificate as its ca.crt: trusted, verification on.
    let certs = work.path().join("certs.d");
    std::fs::create_dir_all(certs.join(&host)).unwrap();
    std::fs::copy(&cert, certs.join(&host).join("ca.crt")).unwrap();
    let (pushed, stderr) = with_certs_dir(&lade, &certs, &["push", "busybox", &name]);
    assert!(pushed, "push: {stderr}");
    let other = Lade::new();
    let (pulled, stderr) = with_certs_dir(&other, &certs, &["pull", &name]);
    assert!(pulled, "pull: {stderr}");
    assert!(other.ok(&["images"]).contains("pinned/busybox"));

    // Another self-signed certificate for the same address: refused, in one sentence.
    let wrong_dir = work.path().join("wrong");
    std::fs::create_dir_all(&wrong_dir).unwrap();
    let (wrong, _) = self_signed(&wrong_dir, "domain", "127.0.0.1", Some("IP:127.0.0.1"));
    let wrong_certs = wrong_dir.join("certs.d");
    std::fs::create_dir_all(wrong_certs.join(&host)).unwrap();
    std::fs::copy(&wrong, wrong_certs.join(&host).join("ca.crt")).unwrap();
    let (ok, stderr) = with_certs_dir(&Lade::new(), &wrong_certs, &["pull", &name]);
    assert!(!ok, "a wrong certificate was accepted");
    assert_tls_advice(&stderr, &host);

    // The right certificate for another name: the name is still checked.
    let named_dir = work.path().join("named");
    std::fs::create_dir_all(&named_dir).unwrap();
    let (named, named_key) = self_signed(
        &named_dir,
        "domain",
        "registry.test",
        Some("DNS:registry.test"),
    );
    let misnamed = Registry::start_tls(&named, &named_key, None);
    let named_certs = named_dir.join("certs.d");
    std::fs::create_dir_all(named_certs.join(misnamed.host())).unwrap();
    std::fs::copy(&named, named_certs.join(misnamed.host()).join("ca.crt")).unwrap();
    let misnamed_image = format!("{}/pinned/busybox:1", misnamed.host());
    let (ok, stderr) = with_certs_dir(&lade, &named_certs, &["push", "busybox", &misnamed_image]);
    assert!(!ok, "a certificate for another name was accepted");
    assert_tls_advice(&stderr, &misnamed.host());

    // A ca.crt that is not PEM is an error naming it, not a silent skip.
    let bad_certs = work.path().join("bad.d");
    std::fs::create_dir_all(bad_certs.join(&host)).unwrap();
    std::fs::write(bad_certs.join(&host).join("ca.crt"), "not a certificate\n").unwrap();
    let (ok, stderr) = with_certs_dir(&Lade::new(), &bad_certs, &["pull", &name]);
    assert!(!ok);
    assert!(stderr.contains("ca.crt"), "{stderr}");
}

#[test]
fn a_registry_that_asks_for_a_client_certificate_gets_the_one_in_certs_d() {
    let work = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(work.path(), "domain", "127.0.0.1", Some("IP:127.0.0.1"));
    let (client_cert, client_key) = self_signed(work.path(), "client", "lade client", None);
    let registry = Registry::start_tls(&cert, &key, Some(&client_cert));
    let host = registry.host();
    let name = format!("{host}/mutual/busybox:1");
    let lade = Lade::new();
    lade.busybox();
    let certs = work.path().join("certs.d");
    let dir = certs.join(&host);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&cert, dir.join("ca.crt")).unwrap();

    // Without a client certificate: refused, and told where one goes.
    let (ok, stderr) = with_certs_dir(&lade, &certs, &["push", "busybox", &name]);
    assert!(!ok, "the registry took a client without a certificate");
    assert!(stderr.contains(&host), "{stderr}");
    assert!(stderr.contains("client.cert"), "{stderr}");

    // A key without its certificate is an error naming it.
    std::fs::copy(&client_key, dir.join("client.key")).unwrap();
    let (ok, stderr) = with_certs_dir(&lade, &certs, &["push", "busybox", &name]);
    assert!(!ok);
    assert!(stderr.contains("client.key"), "{stderr}");

    std::fs::copy(&client_cert, dir.join("client.cert")).unwrap();
    let (ok, stderr) = with_certs_dir(&lade, &certs, &["push", "busybox", &name]);
    assert!(ok, "push with a client certificate: {stderr}");
    let (ok, stderr) = with_certs_dir(&Lade::new(), &certs, &["pull", &name]);
    assert!(ok, "pull with a client certificate: {stderr}");
}

#[test]
fn podman_runs_what_lade_pushed_and_lade_picks_its_platform_from_an_index() {
    let registry = Registry::start(None);
    let lade = Lade::new();
    lade.busybox();
    let context = common::Context::new("FROM busybox\nRUN echo other > /other\n");
    lade.build(context.path(), &["-t", "other:1"]);
    let host = registry.host();
    let plain = format!("{host}/interop/busybox:1");
    let other = format!("{host}/interop/other:1");
    lade.ok(&["push", "busybox", &plain]);
    lade.ok(&["push", "other:1", &other]);
    lade.ok(&["push", "other:1", &format!("{host}/interop/busybox:2")]);

    // podman pulls and runs what lade pushed.
    let podman = common::Podman::new();
    podman.ok(&["pull", "-q", "--tls-verify=false", &plain]);
    let out = podman.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--runtime",
        "runc",
        &plain,
        "echo",
        "podman-ran-it",
    ]);
    assert_eq!(out, "podman-ran-it\n");
    // An image in podman's storage, copied to the registry by skopeo, runs under lade.
    podman.ok(&["tag", &plain, "localhost/from-podman:1"]);
    let from_podman = format!("{host}/interop/from-podman:1");
    common::run(
        "skopeo",
        &[
            "copy",
            "--dest-tls-verify=false",
            &format!(
                "containers-storage:{}localhost/from-podman:1",
                podman.storage()
            ),
            &format!("docker://{from_podman}"),
        ],
    );
    assert_eq!(
        Lade::new().ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            &from_podman,
            "echo",
            "from-podman"
        ]),
        "from-podman\n"
    );

    // An index with the busybox image for this machine and another for arm64.
    let list = format!("{host}/interop/multi:1");
    podman.ok(&["manifest", "create", "lade-multi"]);
    podman.ok(&[
        "manifest",
        "add",
        "--tls-verify=false",
        "lade-multi",
        &format!("docker://{plain}"),
    ]);
    podman.ok(&[
        "manifest",
        "add",
        "--tls-verify=false",
        "--arch",
        "arm64",
        "--variant",
        "v8",
        "lade-multi",
        &format!("docker://{other}"),
    ]);
    podman.ok(&[
        "manifest",
        "push",
        "--all",
        "--tls-verify=false",
        "lade-multi",
        &format!("docker://{list}"),
    ]);
    let puller = Lade::new();
    puller.ok(&["pull", &list]);
    let id = |lade: &Lade, name: &str| lade.ok(&["inspect", "-f", "{{.Id}}", name]);
    assert_eq!(
        id(&puller, &list),
        id(&lade, "busybox"),
        "the host's platform"
    );
    let arm = Lade::new();
    arm.ok(&["pull", "--platform", "linux/arm64", &list]);
    assert_eq!(
        id(&arm, &list),
        id(&lade, "other:1"),
        "--platform linux/arm64"
    );
    let none = Lade::new().fails(&["pull", "--platform", "linux/s390x", &list]);
    assert!(none.contains("no manifest for linux/s390x"), "{none}");

    // -a: every tag of a repository.
    let all = Lade::new();
    all.ok(&["pull", "-a", &format!("{host}/interop/busybox")]);
    let tags = all.ok(&["images", "--format", "{{.Tag}}"]);
    let mut tags: Vec<&str> = tags.lines().collect();
    tags.sort();
    assert_eq!(tags, vec!["1", "2"]);
}

/// What a test proxy does with a chunk it carries.
enum Verdict {
    Forward,
    /// Answer the client with this instead, and close the connection.
    Answer(&'static str),
    /// Forward only the first bytes of the chunk, then close the connection.
    CutAt(usize),
    /// Forward these bytes instead of the chunk (answers only).
    Replace(Vec<u8>),
}

/// A TCP proxy to a registry on `target`, deciding for each chunk of a request
/// (`on_request(chunk)`) and of an answer (`on_answer(carried so far on this
/// connection, chunk)`).
struct Proxy {
    port: u16,
}

impl Proxy {
    fn start(
        target: u16,
        on_request: impl Fn(&[u8]) -> Verdict + Send + Sync + 'static,
        on_answer: impl Fn(usize, &[u8]) -> Verdict + Send + Sync + 'static,
    ) -> Proxy {
        use std::io::{Read, Write};
        use std::sync::Arc;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (on_request, on_answer) = (Arc::new(on_request), Arc::new(on_answer));
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(|c| c.ok()) {
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let close = |a: &TcpStream, b: &TcpStream| {
                    let _ = a.shutdown(std::net::Shutdown::Both);
                    let _ = b.shutdown(std::net::Shutdown::Both);
                };
                let (mut client_in, mut server_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let on_request = on_request.clone();
                std::thread::spawn(move || {
                    let mut buffer = [0u8; 16384];
                    while let Ok(n) = client_in.read(&mut buffer) {
                        if n == 0 {
                            break;
                        }
                        match on_request(&buffer[..n]) {
                            Verdict::Forward => {
                                if server_out.write_all(&buffer[..n]).is_err() {
                                    break;
                                }
                            }
                            Verdict::Answer(answer) => {
                                let _ = client_in.write_all(answer.as_bytes());
                                return close(&client_in, &server_out);
                            }
                            Verdict::CutAt(keep) => {
                                let _ = server_out.write_all(&buffer[..keep.min(n)]);
                                return close(&client_in, &server_out);
                            }
                            Verdict::Replace(_) => unreachable!("requests are never replaced"),
                        }
                    }
                    let _ = server_out.shutdown(std::net::Shutdown::Write);
                });
                let (mut server_in, mut client_out) = (server, client);
                let on_answer = on_answer.clone();
                std::thread::spawn(move || {
                    let mut buffer = [0u8; 16384];
                    let mut carried = 0usize;
                    while let Ok(n) = server_in.read(&mut buffer) {
                        if n == 0 {
                            break;
                        }
                        let replaced = match on_answer(carried, &buffer[..n]) {
                            Verdict::CutAt(keep) => {
                                let _ = client_out.write_all(&buffer[..keep.min(n)]);
                                return close(&client_out, &server_in);
                            }
                            Verdict::Replace(bytes) => Some(bytes),
                            Verdict::Answer(_) | Verdict::Forward => None,
                        };
                        carried += n;
                        let out = replaced.as_deref().unwrap_or(&buffer[..n]);
                        if client_out.write_all(out).is_err() {
                            break;
                        }
                    }
                    let _ = client_out.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        Proxy { port }
    }
}

#[test]
fn a_layer_cut_mid_download_is_resumed_with_a_range() {
    let (registry, _lade, _) = registry_with_busybox("cut/busybox");
    // The first connection to carry more than 200 kB is cut there, once; a range
    // request is noted.
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let (cut, ranged) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let (cut_flag, ranged_flag) = (cut.clone(), ranged.clone());
    let proxy = Proxy::start(
        registry.port,
        move |chunk| {
            if String::from_utf8_lossy(chunk)
                .to_ascii_lowercase()
                .contains("range: bytes=")
            {
                ranged_flag.store(true, Ordering::SeqCst);
            }
            Verdict::Forward
        },
        move |carried, chunk: &[u8]| {
            let n = chunk.len();
            if carried + n > 200_000 && !cut_flag.swap(true, Ordering::SeqCst) {
                Verdict::CutAt(200_000 - carried)
            } else {
                Verdict::Forward
            }
        },
    );
    let through = format!("127.0.0.1:{}/cut/busybox:1", proxy.port);
    let other = Lade::new();
    other.ok(&["pull", &through]);
    assert!(cut.load(Ordering::SeqCst), "the proxy never cut");
    assert!(ranged.load(Ordering::SeqCst), "no range request");
    assert_eq!(
        other.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            &through,
            "echo",
            "whole"
        ]),
        "whole\n"
    );
    other.ok(&["system", "check"]);
}

/// A token service as Docker Hub's: answers `GET /token?scope=...&service=...` with a
/// JWT (RS256, its certificate in the `x5c` header) granting what the scope asks, to
/// anyone presenting the right Basic credentials (or to anyone at all for `pull`).
struct TokenServer {
    port: u16,
    asked_with_credentials: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

fn base64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl TokenServer {
    fn start(key: PathBuf, cert_der: Vec<u8>) -> TokenServer {
        use std::io::{BufRead, BufReader, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let asked = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let asked_flag = asked.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(|s| s.ok()) {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                let _ = reader.read_line(&mut request_line);
                let mut authorized = false;
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                        break;
                    }
                    // tester:s3cret as Basic credentials.
                    if header
                        .to_ascii_lowercase()
                        .starts_with("authorization: basic dgvzdgvyonmzy3jlda")
                    {
                        authorized = true;
                    }
                }
                if authorized {
                    asked_flag.store(true, Ordering::SeqCst);
                }
                let query = request_line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("")
                    .to_string();
                let param = |name: &str| {
                    query
                        .split(['?', '&'])
                        .find_map(|p| p.strip_prefix(&format!("{name}=")))
                        .map(|v| {
                            v.replace("%3A", ":")
                                .replace("%2C", ",")
                                .replace("%2F", "/")
                        })
                        .unwrap_or_default()
                };
                let scope = param("scope");
                let mut parts = scope.splitn(3, ':');
                let (kind, name, actions) = (
                    parts.next().unwrap_or(""),
                    parts.next().unwrap_or(""),
                    parts.next().unwrap_or(""),
                );
                let granted: Vec<&str> = actions
                    .split(',')
                    .filter(|a| authorized || *a == "pull")
                    .collect();
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                let chain = {
                    use base64::Engine as _;
                    base64::engine::general_purpose::STANDARD.encode(&cert_der)
                };
                let header = serde_json::json!({ "typ": "JWT", "alg": "RS256", "x5c": [chain] });
                let claims = serde_json::json!({
                    "iss": "lade-test-issuer", "sub": "tester", "aud": "lade-test",
                    "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("{now}-{port}"),
                    "access": [{ "type": kind, "name": name, "actions": granted }],
                });
                let signing_input = format!(
                    "{}.{}",
                    base64url(header.to_string().as_bytes()),
                    base64url(claims.to_string().as_bytes())
                );
                let mut openssl = Command::new("openssl")
                    .args(["dgst", "-sha256", "-sign", key.to_str().unwrap()])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap();
                openssl
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(signing_input.as_bytes())
                    .unwrap();
                let signature = openssl.wait_with_output().unwrap().stdout;
                let token = format!("{signing_input}.{}", base64url(&signature));
                let body = serde_json::json!({ "token": token }).to_string();
                let mut out = stream;
                let _ = write!(
                    out,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        TokenServer {
            port,
            asked_with_credentials: asked,
        }
    }
}

#[test]
fn bearer_tokens_from_a_token_service() {
    let work = tempfile::tempdir().unwrap();
    let (_, cert, key) = make_certificates(work.path());
    let der = work.path().join("server.der");
    common::run(
        "openssl",
        &[
            "x509",
            "-in",
            cert.to_str().unwrap(),
            "-outform",
            "DER",
            "-out",
            der.to_str().unwrap(),
        ],
    );
    let tokens = TokenServer::start(key, std::fs::read(&der).unwrap());
    let registry = Registry::start_with_auth(&format!(
        "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: lade-test\n    issuer: lade-test-issuer\n    rootcertbundle: {}\n",
        tokens.port,
        cert.display()
    ));
    let lade = Lade::new();
    lade.busybox();
    let auth_file = work.path().join("auth.json");
    let with_auth = |lade: &Lade, args: &[&str]| {
        lade.cmd()
            .env("LADE_AUTH_FILE", &auth_file)
            .args(args)
            .output()
            .unwrap()
    };
    let name = format!("{}/tokens/busybox:1", registry.host());
    // Anonymous: the token grants pull only, so the push is refused.
    let refused = with_auth(&lade, &["push", "busybox", &name]);
    assert!(!refused.status.success());
    let login = with_auth(
        &lade,
        &["login", "-u", "tester", "-p", "s3cret", &registry.host()],
    );
    assert!(
        login.status.success(),
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );
    let pushed = with_auth(&lade, &["push", "busybox", &name]);
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    assert!(tokens
        .asked_with_credentials
        .load(std::sync::atomic::Ordering::SeqCst));
    // Pull needs no credentials here: an anonymous token grants it.
    let other = Lade::new();
    other.ok(&["pull", &name]);
}

#[test]
fn the_build_cache_moves_between_two_stores_through_a_registry() {
    let registry = Registry::start(None);
    let cache = format!("type=registry,ref={}/cache/app:buildcache", registry.host());
    let context =
        common::Context::new("FROM busybox\nRUN date +%s%N > /stamp\nRUN echo second >> /stamp\n");
    let first = Lade::new();
    first.busybox();
    let (_, log) = first.build_log(context.path(), &["-t", "app:1", "--cache-to", &cache]);
    assert!(log.contains("exported"), "{log}");
    let stamp = first.ok(&["run", "--rm", "--network", "none", "app:1", "cat", "/stamp"]);

    let second = Lade::new();
    second.busybox();
    // --explain reads the registry's cache as the build does.
    let explained = second.ok(&[
        "build",
        "--explain",
        "--cache-from",
        &cache,
        &context.path().to_string_lossy(),
    ]);
    assert!(explained.contains("2 step(s) cached"), "{explained}");
    let (_, log) = second.build_log(context.path(), &["-t", "app:1", "--cache-from", &cache]);
    assert!(log.matches("CACHED").count() >= 2, "{log}");
    assert_eq!(
        second.ok(&["run", "--rm", "--network", "none", "app:1", "cat", "/stamp"]),
        stamp,
        "the cached layer came from the registry"
    );
    // A cache that is not there yet is a warning.
    let missing = format!("type=registry,ref={}/cache/none:1", registry.host());
    let third = Lade::new();
    third.busybox();
    let (_, log) = third.build_log(context.path(), &["--cache-from", &missing]);
    assert!(log.contains("warning: no build cache from"), "{log}");
}

/// A proxy to a registry that answers the first `failures` manifest requests itself,
/// with 503 and then 429 (Retry-After: 1); returns it and the count of manifest requests.
fn flaky_front(
    target: u16,
    failures: usize,
) -> (Proxy, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::Ordering;
    let counter = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = counter.clone();
    let proxy = Proxy::start(
        target,
        move |chunk| {
            let text = String::from_utf8_lossy(chunk);
            let first_line = text.lines().next().unwrap_or("");
            if !(first_line.starts_with("GET /v2/") && first_line.contains("/manifests/")) {
                return Verdict::Forward;
            }
            match seen.fetch_add(1, Ordering::SeqCst) {
                done if done >= failures => Verdict::Forward,
                done if done.is_multiple_of(2) => Verdict::Answer(
                    "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                ),
                _ => Verdict::Answer(
                    "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                ),
            }
        },
        |_, _| Verdict::Forward,
    );
    (proxy, counter)
}

#[test]
fn busy_and_failing_registries_are_retried() {
    let (registry, _lade, _) = registry_with_busybox("busy/busybox");
    let (front, refused) = flaky_front(registry.port, 2);
    let through = format!("127.0.0.1:{}/busy/busybox:1", front.port);
    let other = Lade::new();
    other.ok(&["pull", &through]);
    assert_eq!(
        refused.load(std::sync::atomic::Ordering::SeqCst),
        3,
        "two refusals, then the answer"
    );
    // Failing for good: one line naming the registry, and nothing stored.
    let (down, _) = flaky_front(registry.port, 100);
    let failing = Lade::new();
    let message = failing.fails(&["pull", &format!("127.0.0.1:{}/busy/busybox:1", down.port)]);
    assert!(
        message.contains(&format!("127.0.0.1:{}", down.port)) && message.contains("503"),
        "{message}"
    );
    assert_eq!(message.trim().lines().count(), 1, "{message}");
    assert!(failing.ok(&["images", "-q"]).trim().is_empty());
}

#[test]
fn a_build_keeps_layers_uncompressed_and_push_compresses_them_the_same_each_time() {
    common::require_tool("skopeo");
    let registry = Registry::start(None);
    let lade = Lade::new();
    lade.busybox();
    let context = common::Context::new(
        "FROM busybox\nCOPY greeting.txt /srv/\nRUN echo built > /srv/run.txt\n",
    );
    context.file("greeting.txt", "hello\n");
    lade.build(context.path(), &["-t", "app:1"]);
    let stored = common::run(
        "skopeo",
        &[
            "inspect",
            "--raw",
            &format!("oci:{}/oci:app:1", lade.root().display()),
        ],
    );
    let stored: serde_json::Value = serde_json::from_str(&stored).unwrap();
    let media_types: Vec<&str> = stored["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap())
        .collect();
    assert_eq!(
        media_types[1..],
        ["application/vnd.oci.image.layer.v1.tar"; 2],
        "the build's layers are stored uncompressed"
    );

    let name = format!("{}/apps/app:1", registry.host());
    let first = lade.ok(&["push", "-q", "app:1", &name]);
    let raw = common::run(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{name}"),
        ],
    );
    let manifest: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3, "{raw}");
    // gzip by default, which every client reads (Docker 20.10 cannot read zstd).
    for layer in layers {
        assert_eq!(
            layer["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
    }
    // zstd when asked: a build's layers go zstd, the gzip base stays as it is unless
    // forced.
    let zstd_name = format!("{}/apps/app:zstd", registry.host());
    let zstd_digest = lade.ok(&["push", "-q", "--compression", "zstd", "app:1", &zstd_name]);
    let forced_name = format!("{}/apps/app:forced", registry.host());
    let forced_digest = lade.ok(&[
        "push",
        "-q",
        "--compression-format",
        "zstd",
        "--force-compression",
        "app:1",
        &forced_name,
    ]);
    // Each manifest the repository serves the image as is kept, as Docker keeps them,
    // and the registry answers each.
    let repo_digests = lade.ok(&["inspect", "-f", "{{json .RepoDigests}}", "app:1"]);
    let repository = format!("{}/apps/app", registry.host());
    for digest in [first.trim(), zstd_digest.trim(), forced_digest.trim()] {
        let pinned = format!("{repository}@{digest}");
        assert!(repo_digests.contains(&pinned), "{pinned}: {repo_digests}");
        common::run(
            "skopeo",
            &[
                "inspect",
                "--raw",
                "--tls-verify=false",
                &format!("docker://{pinned}"),
            ],
        );
    }
    for (pushed, expected) in [
        (&zstd_name, ["tar+gzip", "tar+zstd", "tar+zstd"]),
        (&forced_name, ["tar+zstd", "tar+zstd", "tar+zstd"]),
    ] {
        let raw = common::run(
            "skopeo",
            &[
                "inspect",
                "--raw",
                "--tls-verify=false",
                &format!("docker://{pushed}"),
            ],
        );
        let manifest: serde_json::Value = serde_json::from_str(&raw).unwrap();
        let types: Vec<String> = manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                l["mediaType"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("application/vnd.oci.image.layer.v1.")
                    .to_string()
            })
            .collect();
        assert_eq!(types, expected, "{pushed}: {raw}");
    }
    // Compressed again, the layers are the same bytes: a second push sends nothing.
    let again = lade.ok(&["push", "app:1", &name]);
    assert!(!again.contains(": pushed"), "{again}");
    assert_eq!(lade.ok(&["push", "-q", "app:1", &name]), first);

    let other = Lade::new();
    other.ok(&["pull", &name]);
    assert_eq!(
        other.ok(&["inspect", "-f", "{{.Id}}", &name]),
        lade.ok(&["inspect", "-f", "{{.Id}}", "app:1"]),
        "the image id does not depend on compression"
    );
    assert_eq!(
        run_offline(&other, &name, &["cat", "/srv/greeting.txt", "/srv/run.txt"]),
        "hello\nbuilt\n"
    );
}

#[test]
fn a_manifest_whose_docker_content_digest_header_lies_is_refused() {
    let (registry, _lade, _) = registry_with_busybox("forged/busybox");
    let forged = lade::oci::Digest::of(b"not the manifest").to_string();
    let real = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
    let seen = real.clone();
    // The manifest's answer keeps its body but names another digest in its header.
    let forged_header = forged.clone();
    let proxy = Proxy::start(
        registry.port,
        |_| Verdict::Forward,
        move |_, chunk: &[u8]| {
            let text = String::from_utf8_lossy(chunk);
            if !text.starts_with("HTTP/1.1 200")
                || !text.contains("application/vnd.oci.image.manifest.v1+json")
            {
                return Verdict::Forward;
            }
            let Some(start) = text.find("Docker-Content-Digest: ") else {
                return Verdict::Forward;
            };
            let value = start + "Docker-Content-Digest: ".len();
            let end = value + forged_header.len();
            *seen.lock().unwrap() = Some(text[value..end].to_string());
            let mut replaced = chunk.to_vec();
            replaced[value..end].copy_from_slice(forged_header.as_bytes());
            Verdict::Replace(replaced)
        },
    );
    let through = format!("127.0.0.1:{}/forged/busybox:1", proxy.port);
    let other = Lade::new();
    let refused = other.fails(&["pull", &through]);
    let real = real
        .lock()
        .unwrap()
        .clone()
        .expect("the proxy saw the manifest's answer");
    assert!(
        refused.contains("forged/busybox:1")
            && refused.contains(&forged)
            && refused.contains(&real),
        "{refused}"
    );
    assert!(other.ok(&["images", "-q"]).trim().is_empty());
}

/// How the fake registry answers a request.
#[derive(Clone, Copy)]
enum Reply {
    /// 200 with this JSON body, at once.
    Json(&'static str),
    /// 200 with these bytes, at once.
    Bytes(&'static [u8]),
    /// Response headers one byte each `interval`, forever.
    TrickledHeaders(Duration),
    /// 200 with a Content-Length of `length`, then one byte of body each `interval`,
    /// forever.
    TrickledBody(u64, Duration),
    /// 200 with a Content-Length of `length`, then nothing.
    StalledBody(u64),
    /// 200 with no Content-Length (the body ends when the connection does), then
    /// zeros as fast as they are taken, forever.
    EndlessBody,
    /// Nothing at all: the request is read and the connection held.
    Silent,
}

/// A plain-HTTP registry of the test's own on 127.0.0.1, answering each request as
/// `route(path)` says (a TLS hello gets the 400 an HTTP server gives it), keeping the
/// request lines it saw.
struct FakeRegistry {
    port: u16,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl FakeRegistry {
    fn start(route: impl Fn(&str) -> Reply + Send + Sync + 'static) -> FakeRegistry {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (route, seen) = (std::sync::Arc::new(route), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(|s| s.ok()) {
                let (route, seen) = (route.clone(), seen.clone());
                std::thread::spawn(move || {
                    let mut out = stream.try_clone().unwrap();
                    let mut reader = BufReader::new(stream);
                    // One request after another on a kept-alive connection.
                    loop {
                        if reader.fill_buf().map_or(true, |b| b.is_empty()) {
                            return;
                        }
                        if reader.buffer()[0] == 0x16 {
                            let _ = out.write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
                            return;
                        }
                        let mut request_line = String::new();
                        let _ = reader.read_line(&mut request_line);
                        loop {
                            let mut header = String::new();
                            if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                                break;
                            }
                        }
                        seen.lock().unwrap().push(request_line.trim().to_string());
                        let path = request_line.split_whitespace().nth(1).unwrap_or("");
                        let whole = |body: &[u8], out: &mut TcpStream| {
                            let _ = write!(
                                out,
                                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                                body.len()
                            );
                            let _ = out.write_all(body);
                        };
                        let trickle = |bytes: &mut dyn Iterator<Item = u8>,
                                       interval: Duration,
                                       out: &mut TcpStream| {
                            for byte in bytes {
                                if out.write_all(&[byte]).is_err() {
                                    return;
                                }
                                std::thread::sleep(interval);
                            }
                        };
                        match route(path) {
                            Reply::Json(body) => whole(body.as_bytes(), &mut out),
                            Reply::Bytes(body) => whole(body, &mut out),
                            Reply::TrickledHeaders(interval) => {
                                let start = b"HTTP/1.1 200 OK\r\nX-Slow: ".iter().copied();
                                return trickle(
                                    &mut start.chain(std::iter::repeat(b'a')),
                                    interval,
                                    &mut out,
                                );
                            }
                            Reply::TrickledBody(length, interval) => {
                                let _ = write!(
                                    out,
                                    "HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n\r\n"
                                );
                                return trickle(&mut std::iter::repeat(0u8), interval, &mut out);
                            }
                            Reply::StalledBody(length) => {
                                let _ = write!(
                                    out,
                                    "HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n\r\n"
                                );
                                // Held open, silent, until lade hangs up.
                                let _ = std::io::copy(&mut reader, &mut std::io::sink());
                                return;
                            }
                            Reply::EndlessBody => {
                                let _ = write!(out, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
                                let zeros = [0u8; 64 << 10];
                                while out.write_all(&zeros).is_ok() {}
                                return;
                            }
                            Reply::Silent => {
                                let _ = std::io::copy(&mut reader, &mut std::io::sink());
                                return;
                            }
                        }
                    }
                });
            }
        });
        FakeRegistry { port, requests }
    }

    /// How many requests so far had `part` in their request line.
    fn count(&self, part: &str) -> usize {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|line| line.contains(part))
            .count()
    }
}

/// Runs `lade pull NAME` with `LADE_REGISTRY_TIMEOUT=timeout` (seconds), expecting it
/// to fail: returns its stderr and how long it ran. Past `watchdog` it is killed and the
/// test fails: the timeouts did not hold.
fn pull_failing_within(lade: &Lade, name: &str, timeout: &str, watchdog: Duration) -> String {
    let started = std::time::Instant::now();
    let child = lade
        .process()
        .env("LADE_REGISTRY_TIMEOUT", timeout)
        .args(["pull", name])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lade starts");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (done_send, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_send.send(child.wait_with_output());
    });
    let output = match done.recv_timeout(watchdog) {
        Ok(output) => output.expect("lade runs"),
        Err(_) => {
            // Not reaped yet (its waiter still waits), so the pid is still lade's.
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = done.recv();
            panic!(
                "lade pull {name} still ran after {watchdog:?} with LADE_REGISTRY_TIMEOUT={timeout}"
            );
        }
    };
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "lade pull {name} succeeded");
    eprintln!("{name}: failed after {:?}: {stderr}", started.elapsed());
    stderr
}

#[test]
fn a_registry_that_never_answers_fails_the_pull_in_bounded_time() {
    // Accepts connections and never answers (nor reads).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
    std::thread::spawn(move || {
        let held: Vec<TcpStream> = listener.incoming().map_while(|s| s.ok()).collect();
        drop(held);
    });
    let lade = Lade::new();
    let message = pull_failing_within(
        &lade,
        &format!("{host}/silent/busybox:1"),
        "2",
        Duration::from_secs(30),
    );
    assert!(
        message.contains(&format!("registry {host}")) && message.contains("within 2s"),
        "{message}"
    );
    assert_eq!(message.trim().lines().count(), 1, "{message}");

    // A registry that answers /v2/ but never a manifest request: retried, then the
    // message names the stage.
    let fake = FakeRegistry::start(|path| match path {
        "/v2/" => Reply::Json("{}"),
        _ => Reply::Silent,
    });
    let host = format!("127.0.0.1:{}", fake.port);
    let message = pull_failing_within(
        &lade,
        &format!("{host}/silent/busybox:1"),
        "1",
        Duration::from_secs(30),
    );
    assert!(
        message.contains(&format!(
            "registry {host} sent no response headers within 1s while fetching the manifest of {host}/silent/busybox:1"
        )),
        "{message}"
    );
    assert!(
        fake.count("/manifests/") >= 2,
        "the manifest fetch was not retried"
    );
    assert!(lade.ok(&["images", "-q"]).trim().is_empty());
}

/// A manifest of one layer of `LAYER_SIZE` bytes (never sent whole) and its config.
const FAKE_CONFIG: &str = r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:0000000000000000000000000000000000000000000000000000000000000000"]}}"#;
const LAYER_SIZE: u64 = 1_000_000;

fn fake_manifest() -> (String, String) {
    let config = lade::oci::Digest::of(FAKE_CONFIG.as_bytes());
    let layer = lade::oci::Digest::of(b"a layer never sent whole");
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.to_string(), "size": FAKE_CONFIG.len() },
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer.to_string(), "size": LAYER_SIZE }],
    });
    (manifest.to_string(), layer.to_string())
}

/// A fake registry serving [`fake_manifest`] and its config, the layer as `layer` says.
fn fake_with_layer(layer: Reply) -> (FakeRegistry, String) {
    let (manifest, layer_digest) = fake_manifest();
    let manifest: &'static str = Box::leak(manifest.into_boxed_str());
    let config = format!("/blobs/{}", lade::oci::Digest::of(FAKE_CONFIG.as_bytes()));
    let fake = FakeRegistry::start(move |path| {
        if path == "/v2/" {
            Reply::Json("{}")
        } else if path.contains("/manifests/") {
            Reply::Json(manifest)
        } else if path.ends_with(&config) {
            Reply::Bytes(FAKE_CONFIG.as_bytes())
        } else {
            layer
        }
    });
    (fake, layer_digest)
}

#[test]
fn a_slow_loris_registry_fails_the_pull_in_bounded_time() {
    let lade = Lade::new();
    // Response headers a byte at a time, never ending.
    let fake = FakeRegistry::start(|path| match path {
        "/v2/" => Reply::Json("{}"),
        _ => Reply::TrickledHeaders(Duration::from_millis(250)),
    });
    let host = format!("127.0.0.1:{}", fake.port);
    let message = pull_failing_within(
        &lade,
        &format!("{host}/slow/busybox:1"),
        "1",
        Duration::from_secs(40),
    );
    assert!(
        message.contains(&format!(
            "registry {host} sent no response headers within 1s while fetching the manifest"
        )),
        "{message}"
    );

    // A layer's body a byte at a time: each read brings data, so only a floor on the
    // rate ends it, after the bounded retries (each restarts it: no range support).
    let (fake, layer) =
        fake_with_layer(Reply::TrickledBody(LAYER_SIZE, Duration::from_millis(250)));
    let host = format!("127.0.0.1:{}", fake.port);
    let message = pull_failing_within(
        &lade,
        &format!("{host}/slow/busybox:1"),
        "1",
        Duration::from_secs(60),
    );
    assert!(
        message.contains(&format!("registry {host}"))
            && message.contains("trickled")
            && message.contains(&layer),
        "{message}"
    );
    let fetches = fake.count(&format!("/blobs/{layer}"));
    assert!((2..=6).contains(&fetches), "{fetches} fetches of the layer");

    // A layer's body that stops: cut after a second without data, retried, bounded.
    let (fake, layer) = fake_with_layer(Reply::StalledBody(LAYER_SIZE));
    let host = format!("127.0.0.1:{}", fake.port);
    let message = pull_failing_within(
        &lade,
        &format!("{host}/slow/busybox:1"),
        "1",
        Duration::from_secs(60),
    );
    assert!(
        message.contains(&format!(
            "registry {host} stalled: no data for 1s while fetching layer {layer}"
        )),
        "{message}"
    );
    let fetches = fake.count(&format!("/blobs/{layer}"));
    assert!((2..=6).contains(&fetches), "{fetches} fetches of the layer");
    assert!(lade.ok(&["images", "-q"]).trim().is_empty());
    lade.ok(&["system", "check"]);
}

#[test]
fn a_layer_body_longer_than_its_descriptor_fails_the_pull_at_once_and_stores_nothing() {
    let lade = Lade::new();
    // Fast enough for any rate floor: only the descriptor's size can end it.
    let (fake, layer) = fake_with_layer(Reply::EndlessBody);
    let host = format!("127.0.0.1:{}", fake.port);
    let message = pull_failing_within(
        &lade,
        &format!("{host}/endless/busybox:1"),
        "30",
        Duration::from_secs(20),
    );
    assert!(
        message.contains(&format!(
            "{host}: blob {layer}: the registry sent more than the {LAYER_SIZE} bytes its descriptor gives"
        )),
        "{message}"
    );
    // Refused, not resumed: more of the same would not make it right.
    assert_eq!(fake.count(&format!("/blobs/{layer}")), 1);
    assert!(lade.ok(&["images", "-q"]).trim().is_empty());
    let hex = layer.trim_start_matches("sha256:");
    let largest = walkdir::WalkDir::new(lade.root())
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .inspect(|e| assert_ne!(e.file_name().to_string_lossy(), hex, "the layer was stored"))
        .map(|e| e.metadata().map_or(0, |m| m.len()))
        .max()
        .unwrap_or(0);
    assert!(
        largest < LAYER_SIZE,
        "a file of {largest} bytes was left in the store"
    );
    lade.ok(&["system", "check"]);
}

/// `--config DIR` (Docker's configuration directory) lends its saved login to every
/// pull and push a command makes, not only to `pull` and `push`: `run` and `create`
/// pulling a missing image, `build`'s FROM, and its registry cache both ways.
#[test]
fn the_config_directory_reaches_the_pulls_of_run_create_and_build() {
    use base64::Engine as _;
    let work = tempfile::tempdir().unwrap();
    let registry = registry_with_htpasswd(work.path());
    let config = work.path().join("docker");
    std::fs::create_dir_all(&config).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode("tester:s3cret-pass");
    std::fs::write(
        config.join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#,
            registry.host()
        ),
    )
    .unwrap();
    let config = config.to_string_lossy().into_owned();
    let home = work.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    // No other saved login may answer for the registry.
    let run = |lade: &Lade, args: &[&str]| {
        lade.cmd()
            .env("LADE_AUTH_FILE", work.path().join("no-auth.json"))
            .env("HOME", &home)
            .env_remove("DOCKER_CONFIG")
            .args(args)
            .output()
            .unwrap()
    };
    let ok = |lade: &Lade, args: &[&str]| {
        let out = run(lade, args);
        assert!(
            out.status.success(),
            "lade {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let name = format!("{}/private/busybox:1", registry.host());
    let source = Lade::new();
    source.busybox();
    ok(&source, &["--config", &config, "push", "busybox", &name]);

    let fresh = Lade::new();
    let refused = run(&fresh, &["run", "--rm", "--network", "none", &name, "true"]);
    assert!(!refused.status.success(), "pulled without credentials");
    ok(
        &fresh,
        &[
            "--config",
            &config,
            "run",
            "--rm",
            "--network",
            "none",
            &name,
            "true",
        ],
    );
    let other = Lade::new();
    ok(
        &other,
        &["--config", &config, "create", "--name", "made", &name],
    );

    let context = common::Context::new(&format!("FROM {name}\nRUN echo built > /built\n"));
    let cache = format!("type=registry,ref={}/private/cache:1", registry.host());
    let builder = Lade::new();
    let path = context.path().to_string_lossy().into_owned();
    let log = ok(
        &builder,
        &[
            "--config",
            &config,
            "build",
            "--progress",
            "plain",
            "--cache-to",
            &cache,
            &path,
        ],
    );
    assert!(log.contains("exported"), "{log}");
    let reader = Lade::new();
    let log = ok(
        &reader,
        &[
            "--config",
            &config,
            "build",
            "--progress",
            "plain",
            "--cache-from",
            &cache,
            &path,
        ],
    );
    assert!(!log.contains("no build cache from"), "{log}");
    assert!(log.contains("CACHED"), "{log}");
}
