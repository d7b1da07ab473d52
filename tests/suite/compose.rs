//! `lade compose`: compose files read as the compose-spec says (schema, interpolation,
//! merging, profiles, names), and projects run on busybox through the real CLI.

use std::io::{Read, Write};
use std::path::Path;

use crate::common::{self, Lade};

/// A project directory with these files.
fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

fn compose_args<'a>(dir: &'a Path, rest: &[&'a str]) -> Vec<String> {
    let mut args = vec![
        "compose".to_string(),
        "-f".to_string(),
        dir.join("compose.yaml").display().to_string(),
    ];
    args.extend(rest.iter().map(|s| s.to_string()));
    args
}

fn ok(lade: &Lade, dir: &Path, rest: &[&str]) -> String {
    let args = compose_args(dir, rest);
    lade.ok(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn fails(lade: &Lade, dir: &Path, rest: &[&str]) -> String {
    let args = compose_args(dir, rest);
    lade.fails(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// A port no one listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The body of `GET /` on a local port, or None while nothing answers.
fn http_get(port: u16) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.").then(|| body.to_string())
}

#[test]
fn config_prints_the_normalised_model() {
    let lade = Lade::new();
    let dir = project(&[
        (
            "compose.yaml",
            "name: demo\nservices:\n  web:\n    image: busybox\n    command: sh -c 'echo \"$$HOME\" ${GREETING:-hi}'\n    ports: ['${PORT}:80', '9000-9001:90-91/udp']\n    environment: [A=1, B]\n    volumes: [data:/data, ./site:/site:ro]\n    depends_on: [db]\n  db:\n    image: busybox\n    healthcheck:\n      test: 'true'\n  debug:\n    image: busybox\n    profiles: [tools]\nvolumes:\n  data:\n",
        ),
        (
            "compose.override.yaml",
            "services:\n  web:\n    environment: {A: '2'}\n    ports: !override ['${PORT}:80']\n",
        ),
        (".env", "PORT=8080\nB=from-dotenv\n"),
    ]);
    let files = [
        "compose",
        "-f",
        &dir.path().join("compose.yaml").display().to_string(),
        "-f",
        &dir.path()
            .join("compose.override.yaml")
            .display()
            .to_string(),
        "config",
    ]
    .map(str::to_string);
    let config = lade.ok(&files.iter().map(String::as_str).collect::<Vec<_>>());
    let expected = format!(
        "name: demo\nservices:\n  db:\n    healthcheck:\n      test:\n      - CMD-SHELL\n      - 'true'\n    image: busybox\n    networks:\n      default: null\n  web:\n    command:\n    - sh\n    - -c\n    - echo \"$HOME\" hi\n    depends_on:\n      db:\n        condition: service_started\n        required: true\n    environment:\n      A: '2'\n      B: from-dotenv\n    image: busybox\n    networks:\n      default: null\n    ports:\n    - mode: ingress\n      target: 80\n      published: '8080'\n      protocol: tcp\n    volumes:\n    - type: volume\n      source: data\n      target: /data\n      volume: {{}}\n    - type: bind\n      source: {}/site\n      target: /site\n      read_only: true\n      bind:\n        create_host_path: true\nnetworks:\n  default:\n    name: demo_default\nvolumes:\n  data:\n    name: demo_data\n",
        dir.path().display()
    );
    assert_eq!(config, expected);
    // A profile turns its services on; the environment wins over .env.
    let args = compose_args(dir.path(), &["--profile", "tools", "config", "--services"]);
    let services = lade.ok_with_env(
        &[("PORT", "7070")],
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_eq!(services, "db\ndebug\nweb\n");
}

#[test]
fn project_names_come_from_the_flag_the_environment_the_file_or_the_directory() {
    let lade = Lade::new();
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("My.App_2");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        "services:\n  a:\n    image: busybox\n",
    )
    .unwrap();
    let first_line = |text: String| text.lines().next().unwrap_or_default().to_string();
    assert_eq!(first_line(ok(&lade, &dir, &["config"])), "name: myapp_2");
    let args = compose_args(&dir, &["config"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(
        first_line(lade.ok_with_env(&[("COMPOSE_PROJECT_NAME", "fromenv")], &args)),
        "name: fromenv"
    );
    let mut with_flag = vec!["compose", "-p", "flagged"];
    with_flag.extend(&args[1..]);
    assert_eq!(first_line(lade.ok(&with_flag)), "name: flagged");
    std::fs::write(
        dir.join("compose.yaml"),
        "name: named\nservices:\n  a:\n    image: busybox\n",
    )
    .unwrap();
    assert_eq!(first_line(ok(&lade, &dir, &["config"])), "name: named");
}

#[test]
fn bad_files_are_refused_with_the_path_and_the_reason() {
    let lade = Lade::new();
    let cases = [
        (
            "services:\n  web:\n    image: busybox\n    ports: [{target: 80, published: [1]}]\n",
            "compose.yaml: services.web.ports.0",
        ),
        (
            "services:\n  web:\n    image: busybox\n    cpu_shares: 4\n",
            "compose.yaml: services.web.cpu_shares: lade does not support this field",
        ),
        (
            "services:\n  a:\n    image: busybox\n    depends_on: [b]\n  b:\n    image: busybox\n    depends_on: [a]\n",
            "depends_on has a cycle: a -> b -> a",
        ),
        (
            "services:\n  a:\n    image: ${IMAGE:?set IMAGE to the image}\n",
            "compose.yaml: services.a.image: required variable IMAGE is missing a value: set IMAGE to the image",
        ),
        (
            "services:\n  a:\n    image: busybox\n    volumes: [nowhere:/x]\n",
            "service \"a\" refers to undefined volume \"nowhere\"",
        ),
    ];
    for (text, wanted) in cases {
        let dir = project(&[("compose.yaml", text)]);
        let err = fails(&lade, dir.path(), &["config"]);
        assert!(err.contains(wanted), "{text}\nwanted {wanted:?} in:\n{err}");
    }
}

#[test]
fn down_of_a_project_that_does_not_exist_does_nothing() {
    let lade = Lade::new();
    let dir = project(&[(
        "compose.yaml",
        "name: ghost\nservices:\n  a:\n    image: busybox\n",
    )]);
    assert_eq!(ok(&lade, dir.path(), &["down", "-v"]), "");
    assert_eq!(ok(&lade, dir.path(), &["ps", "-q"]), "");
}

/// The app: a web service built from a Dockerfile behind a published port,
/// depending on a healthy second service reached by its name, with a named volume and
/// an env default; `up -d`, fetched, `ps`, `logs`, `exec`, and `down -v` leaves nothing.
#[test]
fn a_built_web_service_behind_a_port_with_a_healthy_dependency() {
    crate::network::require_network_tools();
    let lade = Lade::new();
    lade.busybox();
    let port = free_port();
    let dir = project(&[
        (
            "compose.yaml",
            &format!(
                "name: shop\nservices:\n  web:\n    build: ./web\n    ports: ['127.0.0.1:{port}:80']\n    environment:\n      GREETING: ${{GREETING:-hello from the default}}\n    depends_on:\n      db:\n        condition: service_healthy\n    volumes: [pages:/www]\n  db:\n    image: busybox\n    command: sh -c 'mkdir -p /srv && echo from-db > /srv/x && exec httpd -f -p 8000 -h /srv'\n    healthcheck:\n      test: wget -qO- http://127.0.0.1:8000/x\n      interval: 1s\n      start_interval: 200ms\n      start_period: 30s\nvolumes:\n  pages:\n"
            ),
        ),
        (
            "web/Dockerfile",
            "FROM busybox\nCOPY start.sh /start.sh\nCMD [\"sh\", \"/start.sh\"]\n",
        ),
        (
            "web/start.sh",
            "wget -qO- http://db:8000/x > /www/index.html || exit 1\necho \"$GREETING\" >> /www/index.html\necho web is ready\nexec httpd -f -p 80 -h /www\n",
        ),
    ]);
    common::step("up -d");
    let up = ok(&lade, dir.path(), &["up", "-d"]);
    assert_eq!(up, "");
    common::wait_until("the web service to answer", || http_get(port).is_some());
    let body = http_get(port).unwrap();
    assert_eq!(body, "from-db\nhello from the default\n");

    common::step("ps, labels");
    let ps = ok(&lade, dir.path(), &["ps"]);
    assert!(
        ps.contains("shop-web-1") && ps.contains("shop-db-1"),
        "{ps}"
    );
    assert!(ps.contains("(healthy)"), "{ps}");
    let labelled = lade.ok(&[
        "ps",
        "--filter",
        "label=com.docker.compose.service=web",
        "--format",
        "{{.Names}} {{.Label \"com.docker.compose.project\"}} {{.Label \"com.docker.compose.container-number\"}} {{.Label \"com.docker.compose.oneoff\"}}",
    ]);
    assert_eq!(labelled, "shop-web-1 shop 1 False\n");

    common::step("logs, exec");
    let logs = ok(&lade, dir.path(), &["logs", "web"]);
    assert_eq!(logs, "web-1  | web is ready\n");
    let exec = ok(
        &lade,
        dir.path(),
        &["exec", "-T", "web", "cat", "/www/index.html"],
    );
    assert_eq!(exec, "from-db\nhello from the default\n");

    common::step("up again: nothing changed, nothing made again");
    let id_before = lade.ok(&["inspect", "--format", "{{.Id}}", "shop-web-1"]);
    ok(&lade, dir.path(), &["up", "-d"]);
    assert_eq!(
        lade.ok(&["inspect", "--format", "{{.Id}}", "shop-web-1"]),
        id_before
    );
    let ls = ok(&lade, dir.path(), &["ls"]);
    let compose_file = dir.path().join("compose.yaml").display().to_string();
    assert!(
        ls.lines().any(|l| l.starts_with("shop ")
            && l.contains("running(2)")
            && l.ends_with(&compose_file)),
        "{ls}"
    );

    common::step("down -v");
    ok(&lade, dir.path(), &["down", "-v"]);
    assert_eq!(lade.ok(&["ps", "-a", "-q"]), "");
    let networks = lade.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!networks.contains("shop"), "{networks}");
    let volumes = lade.ok(&["volume", "ls", "-q"]);
    assert!(!volumes.contains("shop"), "{volumes}");
}

#[test]
fn an_unhealthy_dependency_stops_up_with_its_last_check() {
    crate::network::require_network_tools();
    let lade = Lade::new();
    lade.busybox();
    let dir = project(&[(
        "compose.yaml",
        "name: sick\nservices:\n  app:\n    image: busybox\n    command: sleep 100\n    depends_on:\n      db: {condition: service_healthy}\n  db:\n    image: busybox\n    command: sleep 100\n    healthcheck:\n      test: echo no database here; exit 1\n      interval: 200ms\n      retries: 2\n",
    )]);
    let err = fails(&lade, dir.path(), &["up", "-d"]);
    assert!(
        err.contains(
            "dependency \"db\" is unhealthy: its last health check said: no database here"
        ),
        "{err}"
    );
    // app was never made.
    let names = lade.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(names, "sick-db-1\n");
    ok(&lade, dir.path(), &["down"]);
    assert_eq!(lade.ok(&["ps", "-a", "-q"]), "");
}

#[test]
fn a_changed_service_is_made_again_and_replicas_follow_deploy() {
    crate::network::require_network_tools();
    let lade = Lade::new();
    lade.busybox();
    let write = |dir: &Path, replicas: u32, command: &str| {
        std::fs::write(
            dir.join("compose.yaml"),
            format!("name: scale\nservices:\n  worker:\n    image: busybox\n    command: {command}\n    volumes: ['./made-by-up:/shared']\n    deploy:\n      replicas: {replicas}\n      resources:\n        limits: {{memory: 64m, pids: 50, cpus: '0.5'}}\n"),
        )
        .unwrap();
    };
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 2, "sleep 100");
    ok(&lade, dir.path(), &["up", "-d"]);
    let names = || lade.ok(&["ps", "--format", "{{.Names}}"]);
    let mut listed: Vec<String> = names().lines().map(str::to_string).collect();
    listed.sort();
    assert_eq!(listed, ["scale-worker-1", "scale-worker-2"]);
    let first = lade.ok(&["inspect", "--format", "{{.Id}}", "scale-worker-1"]);
    let limits = lade.ok(&[
        "inspect",
        "--format",
        "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.HostConfig.NanoCpus}}",
        "scale-worker-2",
    ]);
    assert_eq!(limits, "67108864 50 500000000\n");
    assert!(dir.path().join("made-by-up").is_dir());
    write(dir.path(), 1, "sleep 200");
    ok(&lade, dir.path(), &["up", "-d"]);
    assert_eq!(names(), "scale-worker-1\n");
    assert_ne!(
        lade.ok(&["inspect", "--format", "{{.Id}}", "scale-worker-1"]),
        first
    );
    ok(&lade, dir.path(), &["down"]);
}

#[test]
fn a_foreground_up_shows_prefixed_logs_and_ctrl_c_stops_what_it_started() {
    crate::network::require_network_tools();
    let lade = Lade::new();
    lade.busybox();
    let dir = project(&[(
        "compose.yaml",
        "name: fg\nservices:\n  talker:\n    image: busybox\n    command: sh -c 'echo talking; exec sleep 100'\n",
    )]);
    let args = compose_args(dir.path(), &["up"]);
    let mut child = lade
        .process()
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert_eq!(line, "talker-1  | talking\n");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Gracefully stopping"), "{stderr}");
    assert!(
        stderr.contains("Container fg-talker-1  Stopped"),
        "{stderr}"
    );
    let state = lade.ok(&["inspect", "--format", "{{.State.Status}}", "fg-talker-1"]);
    assert_eq!(state, "exited\n");
    ok(&lade, dir.path(), &["down"]);
}

#[test]
fn run_makes_a_one_off_container_and_removes_it() {
    crate::network::require_network_tools();
    let lade = Lade::new();
    lade.busybox();
    let dir = project(&[(
        "compose.yaml",
        "name: once\nservices:\n  tool:\n    image: busybox\n    environment: [WHO=compose]\n",
    )]);
    let out = ok(
        &lade,
        dir.path(),
        &["run", "--rm", "-T", "tool", "sh", "-c", "echo hello $WHO"],
    );
    assert_eq!(out, "hello compose\n");
    assert_eq!(lade.ok(&["ps", "-a", "-q"]), "");
    ok(&lade, dir.path(), &["down"]);
}

/// Compose files from docker's awesome-compose (tests/fixtures/awesome-compose, every
/// sample of the collection): those that use only what lade supports load; the others
/// are refused with the unsupported field named.
#[test]
fn awesome_compose_samples_load_or_name_what_lade_lacks() {
    let lade = Lade::new();
    let samples = common::repo().join("tests/fixtures/awesome-compose");
    let refused = [
        (
            "wasmedge-mysql-nginx",
            "compose.yaml: services.backend.runtime: lade does not support this field",
        ),
        (
            "wasmedge-kafka-mysql",
            "compose.yaml: services.etl.runtime: lade does not support this field",
        ),
    ];
    let mut loaded = 0;
    for entry in std::fs::read_dir(&samples).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        match refused.iter().find(|(n, _)| *n == name) {
            Some((_, reason)) => {
                let err = fails(&lade, &dir, &["config"]);
                assert!(err.contains(reason), "{name}: {err}");
            }
            None => {
                let config = ok(&lade, &dir, &["config"]);
                let name = normalised(&name);
                assert!(
                    config.starts_with(&format!("name: {name}\nservices:\n")),
                    "{name}:\n{config}"
                );
                loaded += 1;
            }
        }
    }
    assert_eq!(loaded, 37);
}

/// A directory's name as compose makes a project name of it.
fn normalised(name: &str) -> String {
    name.to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'))
        .collect()
}

#[test]
fn services_stop_start_restart_and_follow_their_logs() {
    crate::network::require_network_tools();
    let lade = Lade::new();
    lade.busybox();
    let dir = project(&[(
        "compose.yaml",
        "name: cycle\nservices:\n  counter:\n    image: busybox\n    command: sh -c 'echo started; exec sleep 100'\n    init: true\n    stop_grace_period: 2s\n  helper:\n    image: busybox\n    command: sleep 100\n    init: true\n    depends_on: [counter]\n",
    )]);
    ok(&lade, dir.path(), &["up", "-d"]);
    let state = |name: &str| lade.ok(&["inspect", "--format", "{{.State.Status}}", name]);
    ok(&lade, dir.path(), &["stop"]);
    assert_eq!(state("cycle-counter-1"), "exited\n");
    assert_eq!(state("cycle-helper-1"), "exited\n");
    ok(&lade, dir.path(), &["start", "counter"]);
    assert_eq!(state("cycle-counter-1"), "running\n");
    assert_eq!(state("cycle-helper-1"), "exited\n");
    ok(&lade, dir.path(), &["restart"]);
    assert_eq!(state("cycle-helper-1"), "running\n");
    let logs = ok(&lade, dir.path(), &["logs", "--no-log-prefix", "counter"]);
    assert_eq!(logs, "started\nstarted\nstarted\n");
    let tail = ok(&lade, dir.path(), &["logs", "--tail", "1"]);
    assert_eq!(tail, "counter-1  | started\n");

    common::step("logs -f ends when the containers stop");
    let args = compose_args(dir.path(), &["logs", "-f", "counter"]);
    let follower = lade
        .process()
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let follower = common::Killed(follower);
    ok(&lade, dir.path(), &["stop", "counter"]);
    let mut follower = follower;
    let status = follower.0.wait().unwrap();
    assert!(status.success());
    let mut out = String::new();
    follower
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(
        out,
        "counter-1  | started\ncounter-1  | started\ncounter-1  | started\n"
    );
    ok(&lade, dir.path(), &["down"]);
}

/// Several networks with aliases and a fixed address; `up SERVICE --no-deps` makes that
/// service alone; `build` builds what has a build section.
#[test]
fn networks_aliases_and_addresses_and_no_deps() {
    crate::network::require_network_tools();
    let lade = Lade::new();
    lade.busybox();
    let dir = project(&[
        (
            "compose.yaml",
            "name: nets\nservices:\n  api:\n    build:\n      context: ./api\n      args: [MESSAGE=built-with-arg]\n    command: sleep 100\n    hostname: api-host\n    extra_hosts: ['extra.example:10.1.2.3']\n    networks:\n      front:\n        aliases: [api-alias]\n        ipv4_address: 10.89.77.20\n      back: {}\n  client:\n    image: busybox\n    command: sleep 100\n    depends_on: [api]\n    networks: [front]\nnetworks:\n  front:\n    ipam:\n      config:\n        - subnet: 10.89.77.0/24\n  back:\n",
        ),
        (
            "api/Dockerfile",
            "FROM busybox\nARG MESSAGE\nRUN echo $MESSAGE > /message\n",
        ),
    ]);
    ok(&lade, dir.path(), &["build"]);
    ok(&lade, dir.path(), &["up", "-d", "--no-deps", "client"]);
    let names = lade.ok(&["ps", "--format", "{{.Names}}"]);
    assert_eq!(names, "nets-client-1\n");
    ok(&lade, dir.path(), &["up", "-d"]);
    let exec = |service: &str, command: &str| {
        ok(
            &lade,
            dir.path(),
            &["exec", "-T", service, "sh", "-c", command],
        )
    };
    assert_eq!(
        exec("api", "cat /message; hostname"),
        "built-with-arg\napi-host\n"
    );
    assert!(exec("api", "cat /etc/hosts").contains("10.1.2.3\textra.example"));
    let resolved = exec("client", "nslookup api-alias 2>&1; nslookup api 2>&1");
    assert!(resolved.matches("10.89.77.20").count() >= 2, "{resolved}");
    let api_networks = lade.ok(&[
        "inspect",
        "--format",
        "{{range $name, $n := .NetworkSettings.Networks}}{{$name}} {{end}}",
        "nets-api-1",
    ]);
    assert_eq!(api_networks.trim(), "nets_back nets_front");
    common::step("a rebuilt image makes its service's container again");
    let before = lade.ok(&["inspect", "--format", "{{.Id}}", "nets-api-1"]);
    let client_before = lade.ok(&["inspect", "--format", "{{.Id}}", "nets-client-1"]);
    std::fs::write(
        dir.path().join("api/Dockerfile"),
        "FROM busybox\nARG MESSAGE\nRUN echo rebuilt $MESSAGE > /message\n",
    )
    .unwrap();
    ok(&lade, dir.path(), &["up", "-d", "--build"]);
    assert_ne!(
        lade.ok(&["inspect", "--format", "{{.Id}}", "nets-api-1"]),
        before
    );
    assert_eq!(
        lade.ok(&["inspect", "--format", "{{.Id}}", "nets-client-1"]),
        client_before
    );
    assert_eq!(exec("api", "cat /message"), "rebuilt built-with-arg\n");
    ok(&lade, dir.path(), &["down", "--rmi", "local"]);
    let images = lade.ok(&["images", "--format", "{{.Repository}}"]);
    assert!(!images.contains("nets-api"), "{images}");
}

/// `build` and `push` the image a service builds and names; another store's `pull`
/// of a service that only names it fetches it, and `run` runs it.
#[test]
fn build_push_and_pull_through_a_registry() {
    let registry = crate::registry::Registry::start(None);
    let image = format!("{}/compose-app:1", registry.host());
    let lade = Lade::new();
    lade.busybox();
    let dir = project(&[
        (
            "compose.yaml",
            &format!("name: shipped\nservices:\n  app:\n    image: {image}\n    build: ./app\n"),
        ),
        ("app/Dockerfile", "FROM busybox\nRUN echo shipped > /what\n"),
    ]);
    ok(&lade, dir.path(), &["build"]);
    ok(&lade, dir.path(), &["push"]);

    let other = Lade::new();
    let pulling = project(&[(
        "compose.yaml",
        &format!("name: pulled\nservices:\n  app:\n    image: {image}\n    network_mode: none\n"),
    )]);
    ok(&other, pulling.path(), &["pull"]);
    let out = ok(
        &other,
        pulling.path(),
        &["run", "--rm", "-T", "app", "cat", "/what"],
    );
    assert_eq!(out, "shipped\n");
    ok(&other, pulling.path(), &["down"]);
}

/// Ctrl-C while `up` waits for a dependency's health: what it started is stopped, and
/// it says so.
#[test]
fn ctrl_c_while_up_waits_stops_what_it_started() {
    crate::network::require_network_tools();
    let lade = Lade::new();
    lade.busybox();
    let dir = project(&[(
        "compose.yaml",
        "name: waiting\nservices:\n  app:\n    image: busybox\n    command: sleep 100\n    depends_on:\n      slow: {condition: service_healthy}\n  slow:\n    image: busybox\n    command: sleep 100\n    init: true\n    healthcheck:\n      test: exit 1\n      interval: 1h\n      start_period: 1h\n",
    )]);
    let args = compose_args(dir.path(), &["up", "-d"]);
    let child = lade
        .process()
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let state = || {
        lade.output(&["inspect", "--format", "{{.State.Status}}", "waiting-slow-1"])
            .stdout
    };
    common::wait_until("the dependency to run", || state() == b"running\n");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Gracefully stopping"), "{stderr}");
    assert!(
        stderr.contains("Container waiting-slow-1  Stopped"),
        "{stderr}"
    );
    assert_eq!(state(), b"exited\n");
    let names = lade.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(names, "waiting-slow-1\n");
    ok(&lade, dir.path(), &["down"]);
}

/// Each document of `kube generate`'s output read back through k8s-openapi's types and
/// written again unchanged: it is what the Kubernetes API's types hold, with nothing
/// they would drop. Returns the documents by kind.
fn kube_round_trip(yaml: &str) -> Vec<(String, serde_json::Value)> {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Service};
    fn again<T: serde::de::DeserializeOwned + serde::Serialize>(
        value: &serde_json::Value,
    ) -> serde_json::Value {
        let typed: T = serde_json::from_value(value.clone()).expect("a valid Kubernetes object");
        serde_json::to_value(&typed).unwrap()
    }
    let mut out = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(yaml) {
        let value: serde_json::Value = serde::Deserialize::deserialize(document).unwrap();
        let kind = value["kind"].as_str().unwrap().to_string();
        let written = match kind.as_str() {
            "Pod" => again::<Pod>(&value),
            "Deployment" => again::<Deployment>(&value),
            "Service" => again::<Service>(&value),
            "PersistentVolumeClaim" => again::<PersistentVolumeClaim>(&value),
            other => panic!("unexpected kind {other}"),
        };
        assert_eq!(written, value, "{kind} changed through k8s-openapi");
        out.push((kind, value));
    }
    out
}

#[test]
fn kube_generate_writes_what_the_kubernetes_api_accepts() {
    let lade = Lade::new();
    let dir = project(&[(
        "compose.yaml",
        "name: shop\nservices:\n  web:\n    image: busybox\n    command: [httpd, -f, -p, '80']\n    ports: ['8080:80']\n    environment: {GREETING: hi}\n    volumes: [pages:/www, ./conf:/conf:ro]\n    depends_on: [db]\n    deploy:\n      replicas: 2\n      resources:\n        limits: {memory: 64m, cpus: '0.5'}\n  db:\n    image: busybox\n    command: sleep 1000\n    healthcheck:\n      test: [CMD, 'true']\n      interval: 5s\n      retries: 3\nvolumes:\n  pages:\n",
    )]);
    let file = dir.path().join("compose.yaml").display().to_string();
    let out = lade.output(&["kube", "generate", "--compose", &file]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("services.web.deploy.replicas: a Pod runs one of each container"),
        "{stderr}"
    );
    let documents = kube_round_trip(&String::from_utf8_lossy(&out.stdout));
    let kinds: Vec<&str> = documents.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["PersistentVolumeClaim", "Pod"]);
    let pod = &documents[1].1;
    assert_eq!(pod["metadata"]["name"], "shop");
    let web = &pod["spec"]["containers"][1];
    assert_eq!(web["name"], "web");
    assert_eq!(web["args"], serde_json::json!(["httpd", "-f", "-p", "80"]));
    assert_eq!(
        web["ports"][0],
        serde_json::json!({"containerPort": 80, "hostPort": 8080, "protocol": "TCP"})
    );
    assert_eq!(
        web["resources"]["limits"],
        serde_json::json!({"cpu": "500m", "memory": "67108864"})
    );
    assert_eq!(
        web["env"],
        serde_json::json!([{"name": "GREETING", "value": "hi"}])
    );
    let db = &pod["spec"]["containers"][0];
    assert_eq!(
        db["livenessProbe"]["exec"]["command"],
        serde_json::json!(["true"])
    );
    assert_eq!(db["livenessProbe"]["periodSeconds"], 5);
    assert_eq!(
        pod["spec"]["hostAliases"][0]["hostnames"],
        serde_json::json!(["db", "web"])
    );
    let volumes = &pod["spec"]["volumes"];
    assert!(volumes
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["persistentVolumeClaim"]["claimName"] == "shop-pages"));
    assert!(volumes
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["hostPath"]["path"] == format!("{}/conf", dir.path().display())));

    let out = lade.ok(&[
        "kube",
        "generate",
        "--compose",
        &file,
        "--type",
        "deployment",
    ]);
    let documents = kube_round_trip(&out);
    let kinds: Vec<&str> = documents.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "PersistentVolumeClaim",
            "Deployment",
            "Deployment",
            "Service"
        ]
    );
    let web = &documents[2].1;
    assert_eq!(web["metadata"]["name"], "web");
    assert_eq!(web["spec"]["replicas"], 2);
    let service = &documents[3].1;
    assert_eq!(service["metadata"]["name"], "web");
    assert_eq!(service["spec"]["ports"][0]["port"], 80);
}

/// The Pod `kube generate` writes for a project, run again by `kube play`: its
/// containers share the pod's network (the web container reaches `db` on it through
/// the pod's host aliases) and its host port serves the same page; `kube down` removes
/// it.
#[test]
fn kube_play_runs_the_generated_pod_and_kube_down_removes_it() {
    crate::network::require_network_tools();
    let lade = Lade::new();
    lade.busybox();
    let port = free_port();
    let dir = project(&[(
        "compose.yaml",
        &format!(
            "name: podapp\nservices:\n  db:\n    image: busybox\n    command: sh -c 'mkdir -p /srv && echo from-db > /srv/x && exec httpd -f -p 8000 -h /srv'\n  web:\n    image: busybox\n    command: sh -c 'mkdir -p /www; until wget -qO- http://db:8000/x > /www/index.html; do sleep 0.1; done; exec httpd -f -p 80 -h /www'\n    ports: ['127.0.0.1:{port}:80']\n"
        ),
    )]);
    let pod_file = dir.path().join("pod.yaml").display().to_string();
    let compose_file = dir.path().join("compose.yaml").display().to_string();
    lade.ok(&[
        "kube",
        "generate",
        "--compose",
        &compose_file,
        "-f",
        &pod_file,
    ]);
    lade.ok(&["kube", "play", &pod_file]);
    let names = lade.ok(&["ps", "--format", "{{.Names}}"]);
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    assert_eq!(names, ["podapp-db", "podapp-web"]);
    common::wait_until("the pod to serve its page", || {
        http_get(port).as_deref() == Some("from-db\n")
    });
    lade.ok(&["kube", "down", &pod_file]);
    assert_eq!(lade.ok(&["ps", "-a", "-q"]), "");
}

/// `kube generate` of a running container: its pod carries only what the container sets
/// beyond its image (the environment it was given, not the image's PATH), its published
/// port as a hostPort, its named volume as a claim, its healthcheck as a probe and its
/// limit; the YAML is what the API accepts, and `kube play` of it serves the same page
/// again from the same volume. The played pod is then named to `kube generate` again.
#[test]
fn kube_generate_of_a_container_and_play_of_it_serve_the_same_app() {
    crate::network::require_network_tools();
    let lade = Lade::new();
    lade.busybox();
    let port = free_port();
    let published = format!("127.0.0.1:{port}:80");
    lade.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &published,
        "-e",
        "GREETING=hello from web",
        "-v",
        "pages:/www",
        "--memory",
        "64m",
        "--health-cmd",
        "true",
        "--health-interval",
        "5s",
        "busybox",
        "sh",
        "-c",
        "echo $GREETING > /www/index.html; exec httpd -f -p 80 -h /www",
    ]);
    common::wait_until("the container to serve", || http_get(port).is_some());
    let documents = kube_round_trip(&lade.ok(&["kube", "generate", "web"]));
    let kinds: Vec<&str> = documents.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["PersistentVolumeClaim", "Pod"]);
    assert_eq!(documents[0].1["metadata"]["name"], "pages");
    let pod = &documents[1].1;
    assert_eq!(pod["metadata"]["name"], "web-pod");
    let web = &pod["spec"]["containers"][0];
    assert_eq!(web["name"], "web");
    assert_eq!(
        web["env"],
        serde_json::json!([{"name": "GREETING", "value": "hello from web"}])
    );
    assert_eq!(
        web["ports"][0],
        serde_json::json!({"containerPort": 80, "hostIP": "127.0.0.1", "hostPort": port, "protocol": "TCP"})
    );
    assert_eq!(
        web["livenessProbe"],
        serde_json::json!({"exec": {"command": ["/bin/sh", "-c", "true"]}, "periodSeconds": 5})
    );
    assert_eq!(
        web["resources"]["limits"],
        serde_json::json!({"memory": "67108864"})
    );
    assert_eq!(
        pod["spec"]["volumes"],
        serde_json::json!([{"name": "pages", "persistentVolumeClaim": {"claimName": "pages"}}])
    );
    let deployment =
        kube_round_trip(&lade.ok(&["kube", "generate", "--type", "deployment", "web"]));
    let kinds: Vec<&str> = deployment.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["PersistentVolumeClaim", "Deployment", "Service"]);
    assert_eq!(deployment[2].1["spec"]["ports"][0]["port"], 80);

    common::step("the generated pod played again");
    let dir = tempfile::tempdir().unwrap();
    let pod_file = dir.path().join("web.yaml").display().to_string();
    lade.ok(&["kube", "generate", "web", "-f", &pod_file]);
    lade.ok(&["rm", "-f", "web"]);
    lade.ok(&["kube", "play", &pod_file]);
    assert_eq!(lade.ok(&["ps", "--format", "{{.Names}}"]), "web-pod-web\n");
    common::wait_until("the played pod to serve", || {
        http_get(port).as_deref() == Some("hello from web\n")
    });
    // The played pod, named by its pod name, gives the same pod.
    let again = kube_round_trip(&lade.ok(&["kube", "generate", "web-pod"]));
    assert_eq!(again[1].1["metadata"]["name"], "web-pod");
    assert_eq!(again[1].1["spec"]["containers"][0]["name"], "web");
    let missing = lade.fails(&["kube", "generate", "nothing-here"]);
    assert!(
        missing.contains("no such container or pod: nothing-here"),
        "{missing}"
    );
    lade.ok(&["kube", "down", &pod_file]);
    assert_eq!(lade.ok(&["ps", "-a", "-q"]), "");
}

/// `kube play` of ConfigMaps and Secrets in the same file as the Deployment using them:
/// as files (all keys, or chosen items at their paths with their modes, read-only) and
/// as environment (`envFrom` with a prefix, `valueFrom` key references, `env` winning);
/// `replicas: 2` runs two pods named as podman names them; `kube down` removes the
/// containers and the volumes the files were written to.
#[test]
fn kube_play_mounts_config_maps_and_secrets_and_runs_replicas() {
    crate::network::require_network_tools();
    let lade = Lade::new();
    lade.busybox();
    let dir = project(&[(
        "app.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata:\n  GREETING: hello from a map\n  LEVEL: low\n  app.conf: |\n    port=80\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: creds}\ntype: Opaque\ndata: {password: czNjcjN0}\nstringData: {user: admin}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app}\nspec:\n  replicas: 2\n  selector: {matchLabels: {app: app}}\n  template:\n    metadata: {labels: {app: app}}\n    spec:\n      containers:\n      - name: main\n        image: busybox\n        command: [sleep, '1000']\n        envFrom:\n        - configMapRef: {name: settings}\n          prefix: CFG_\n        env:\n        - {name: CFG_LEVEL, value: high}\n        - name: PASSWORD\n          valueFrom: {secretKeyRef: {name: creds, key: password}}\n        volumeMounts:\n        - {name: conf, mountPath: /etc/app}\n        - {name: secret, mountPath: /run/creds}\n      volumes:\n      - name: conf\n        configMap:\n          name: settings\n          items: [{key: app.conf, path: sub/app.conf, mode: 256}]\n      - name: secret\n        secret: {secretName: creds, defaultMode: 384}\n",
    )]);
    let file = dir.path().join("app.yaml").display().to_string();
    lade.ok(&["kube", "play", &file]);
    let mut names: Vec<String> = lade
        .ok(&["ps", "--format", "{{.Names}}"])
        .lines()
        .map(str::to_string)
        .collect();
    names.sort();
    assert_eq!(names, ["app-pod-0-main", "app-pod-1-main"]);
    for name in &names {
        let env = lade.ok(&[
            "exec",
            name,
            "sh",
            "-c",
            "echo $CFG_GREETING/$CFG_LEVEL/$PASSWORD",
        ]);
        assert_eq!(env, "hello from a map/high/s3cr3t\n");
    }
    let files = lade.ok(&[
        "exec",
        "app-pod-1-main",
        "sh",
        "-c",
        "ls /etc/app; cat /etc/app/sub/app.conf; stat -c '%a %n' /etc/app/sub/app.conf /run/creds/*; cat /run/creds/user; echo; touch /etc/app/x 2>&1 || true",
    ]);
    assert_eq!(
        files,
        "sub\nport=80\n400 /etc/app/sub/app.conf\n600 /run/creds/password\n600 /run/creds/user\nadmin\ntouch: /etc/app/x: Read-only file system\n"
    );
    lade.ok(&["kube", "down", &file]);
    assert_eq!(lade.ok(&["ps", "-a", "-q"]), "");
    assert_eq!(lade.ok(&["volume", "ls", "-q"]), "");
}

/// `include` brings another file's services and volumes, its relative paths and `.env`
/// its own; `extends` builds a service on one of the same or another file (merged as
/// files merge, relative paths kept to their file); a name defined twice and cycles are
/// refused by name. `ps` shows compose's columns, CREATED as Docker says it.
#[test]
fn include_and_extends_and_ps_created() {
    crate::network::require_network_tools();
    let lade = Lade::new();
    lade.busybox();
    let dir = project(&[
        (
            "common/compose.yaml",
            "services:\n  db:\n    image: busybox\n    command: sleep ${DB_SLEEP}\n    volumes: [./data:/data]\n  base:\n    image: busybox\n    environment: {FROM_BASE: '1', LEVEL: base}\n    volumes: ['./conf:/conf:ro']\nvolumes:\n  shared: {}\n",
        ),
        ("common/.env", "DB_SLEEP=77\n"),
        (
            "compose.yaml",
            "name: inc\ninclude:\n  - common/compose.yaml\nservices:\n  web:\n    extends:\n      file: common/compose.yaml\n      service: base\n    environment: {LEVEL: web}\n    command: sleep 100\n  worker:\n    extends: web\n    command: sleep 200\n",
        ),
        (
            "twice.yaml",
            "include: [common/compose.yaml]\nservices:\n  db:\n    image: busybox\n",
        ),
        (
            "cycle.yaml",
            "services:\n  a:\n    extends: b\n    image: busybox\n  b:\n    extends: a\n",
        ),
    ]);
    let root = dir.path().display().to_string();
    let services = ok(&lade, dir.path(), &["config", "--services"]);
    assert_eq!(services, "base\ndb\nweb\nworker\n");
    let config: serde_json::Value =
        serde_yaml_ng::from_str(&ok(&lade, dir.path(), &["config"])).unwrap();
    let services = &config["services"];
    assert_eq!(
        services["db"]["command"],
        serde_json::json!(["sleep", "77"])
    );
    assert_eq!(
        services["db"]["volumes"][0]["source"],
        format!("{root}/common/data")
    );
    for (name, command) in [("web", "100"), ("worker", "200")] {
        let service = &services[name];
        assert_eq!(service["command"], serde_json::json!(["sleep", command]));
        assert_eq!(
            service["environment"],
            serde_json::json!({"FROM_BASE": "1", "LEVEL": "web"})
        );
        assert_eq!(
            service["volumes"][0]["source"],
            format!("{root}/common/conf"),
            "{name}"
        );
    }
    assert_eq!(config["volumes"]["shared"]["name"], "inc_shared");
    let twice = lade.fails(&["compose", "-f", &format!("{root}/twice.yaml"), "config"]);
    assert!(
        twice.contains("services.db: defined here and in the file include.0 includes"),
        "{twice}"
    );
    let cycle = lade.fails(&["compose", "-f", &format!("{root}/cycle.yaml"), "config"]);
    assert!(
        cycle.contains(&format!(
            "extends has a cycle: {root}/cycle.yaml:a -> {root}/cycle.yaml:b -> {root}/cycle.yaml:a"
        )),
        "{cycle}"
    );

    common::step("up, ps with CREATED");
    ok(&lade, dir.path(), &["up", "-d", "worker"]);
    let ps = ok(&lade, dir.path(), &["ps"]);
    let mut lines = ps.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"]
    );
    let row = lines.next().unwrap();
    assert!(
        row.starts_with("inc-worker-1 ") && row.contains("\"sleep 200\"") && row.contains(" ago "),
        "{ps}"
    );
    ok(&lade, dir.path(), &["down"]);
}

/// The compose-spec's own example files (tests/fixtures/compose-spec): each `config`s
/// as the spec says (YAML anchors and `<<` merge keys, profiles, the project name in
/// `COMPOSE_PROJECT_NAME`), or is refused with every unsupported key named.
#[test]
fn compose_spec_examples_load_or_name_every_unsupported_key() {
    let lade = Lade::new();
    let samples = common::repo().join("tests/fixtures/compose-spec");
    let refused = [
        ("02-model-0", "configs.httpd-config.external: lade does not support this field; secrets.server-certificate.external: lade does not support this field; volumes.db-data.driver: lade has the local volume driver only, not \"flocker\""),
        ("05-services-2", "services.foo.blkio_config: lade does not support this field"),
        ("05-services-16", "services.myservice.credential_spec: lade does not support this field"),
        ("06-networks-1", "networks.backend.driver: lade makes bridge networks only, not \"custom-driver-2\"; networks.backend.driver_opts: lade does not support this field; networks.frontend.driver: lade makes bridge networks only, not \"custom-driver-1\""),
        ("10-fragments-2", "volumes.db-data.driver: lade has the local volume driver only, not \"default\"; volumes.metrics.driver: lade has the local volume driver only, not \"default\""),
        ("11-extension-3", "services.echoit.deploy.placement: lade does not support this field; services.nodeinfo.deploy.placement: lade does not support this field"),
        ("deploy-6", "services.frontend.deploy.resources.reservations: lade does not support this field"),
        ("develop-0", "services.backend.develop: lade does not support this field; services.frontend.develop: lade does not support this field"),
        ("models-0", "models: lade does not support this field; services.app.models: lade does not support this field"),
    ];
    let config = |name: &str| {
        let file = samples.join(format!("{name}.yaml")).display().to_string();
        lade.output(&["compose", "-p", "spec", "-f", &file, "config"])
    };
    let mut loaded = 0;
    for entry in std::fs::read_dir(&samples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let out = config(&name);
        let stderr = String::from_utf8_lossy(&out.stderr);
        match refused.iter().find(|(n, _)| *n == name) {
            Some((_, reasons)) => {
                assert!(!out.status.success(), "{name} loaded");
                assert!(
                    stderr.contains(&format!("{name}.yaml: {reasons}\n")),
                    "{name}:\n{stderr}"
                );
            }
            None => {
                assert!(out.status.success(), "{name}:\n{stderr}");
                loaded += 1;
            }
        }
    }
    assert_eq!(loaded, 20);
    let model = |name: &str| -> serde_json::Value {
        serde_yaml_ng::from_slice(&config(name).stdout).unwrap()
    };
    // The project's name is there for interpolation and for `environment`.
    let named = model("04-version-and-name-0");
    assert_eq!(
        named["services"]["foo"]["command"],
        serde_json::json!(["echo", "I'm running spec"])
    );
    assert_eq!(
        named["services"]["foo"]["environment"]["COMPOSE_PROJECT_NAME"],
        "spec"
    );
    // Anchors, and `<<` merge keys of one mapping or of several.
    assert_eq!(
        model("10-fragments-3")["services"]["second"]["environment"],
        serde_json::json!({"FOO": "BAR", "ZOT": "QUIX", "YET_ANOTHER": "VARIABLE"})
    );
    assert_eq!(
        model("11-extension-4")["services"]["frontend"]["environment"],
        serde_json::json!({"FOO": "BAR", "ZOT": "QUIX", "KEY": "VALUE", "YET_ANOTHER": "VARIABLE"})
    );
    let shared = model("11-extension-2");
    for service in ["first", "second"] {
        assert_eq!(
            shared["services"][service]["environment"],
            serde_json::json!({"CONFIG_KEY": null, "EXAMPLE_KEY": null}),
            "{service}"
        );
    }
    // Services of an inactive profile are left out.
    let file = samples.join("15-profiles-0.yaml").display().to_string();
    assert_eq!(
        lade.ok(&["compose", "-f", &file, "config", "--services"]),
        "foo\n"
    );
}

/// `build.secrets` from a file and from a variable reach the build's `RUN
/// --mount=type=secret` steps under their names (or `target`), and their values are
/// nowhere in the store.
#[test]
fn build_secrets_from_a_file_and_the_environment_reach_the_build_only() {
    let lade = Lade::new();
    lade.busybox();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let file_value = format!("compose-file-secret-{nanos:x}");
    let env_value = format!("compose-env-secret-{nanos:x}");
    let dir = project(&[
        (
            "compose.yaml",
            "name: secretbuild\nservices:\n  app:\n    image: secretbuild-app:1\n    build:\n      context: ./app\n      secrets:\n        - tok\n        - source: fromenv\n          target: envtok\n          mode: 0400\nsecrets:\n  tok:\n    file: ./token.txt\n  fromenv:\n    environment: LADE_COMPOSE_SECRET\n",
        ),
        ("token.txt", &file_value),
        (
            "app/Dockerfile",
            "FROM busybox\nRUN --mount=type=secret,id=tok sha256sum /run/secrets/tok | cut -d' ' -f1 > /tok.sha\nRUN --mount=type=secret,id=envtok,required=true sha256sum /run/secrets/envtok | cut -d' ' -f1 > /env.sha\n",
        ),
    ]);
    let config = ok(&lade, dir.path(), &["config"]);
    assert!(
        config.contains("target: envtok") && config.contains("environment: LADE_COMPOSE_SECRET"),
        "{config}"
    );
    let args = compose_args(dir.path(), &["build"]);
    let output = lade
        .cmd()
        .env("LADE_COMPOSE_SECRET", &env_value)
        .args(&args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("uid, gid and mode are ignored"), "{stderr}");
    let hashes = lade.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "secretbuild-app:1",
        "cat",
        "/tok.sha",
        "/env.sha",
    ]);
    assert_eq!(
        hashes,
        format!(
            "{}\n{}\n",
            crate::build_secrets::sha256_hex(file_value.as_bytes()),
            crate::build_secrets::sha256_hex(env_value.as_bytes())
        )
    );
    for value in [&file_value, &env_value] {
        let holding = crate::build_secrets::files_holding(&lade.root(), value);
        assert!(holding.is_empty(), "{value} is in {holding:?}");
    }

    // Without the variable the build stops, naming it; an undefined secret is named too.
    let missing = fails(&lade, dir.path(), &["build"]);
    assert!(missing.contains("LADE_COMPOSE_SECRET"), "{missing}");
    let undefined = project(&[(
        "compose.yaml",
        "services:\n  app:\n    build:\n      context: .\n      secrets: [nosuch]\n",
    )]);
    let refused = fails(&lade, undefined.path(), &["config"]);
    assert!(refused.contains("nosuch"), "{refused}");
}
