//! `lade run`, `ps`, `rm`, and the commands on containers that live on: `start`,
//! `stop`, `restart`, `kill`, `wait`, `logs`, `pause`, `unpause`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;
use serde_json::json;

use super::StoreConfig;
use super::{human_age, open_store, print_table};
use crate::container::{self, Container, ContainerState, RunOptions};
use crate::engine::{
    self, ContainerRequest, EngineError, ImageName, RunOutcome, RunRequest, StartAttached,
};
use crate::exec::Limits;
use crate::oci::parse_size;
use crate::registry::PullPolicy;

#[derive(Debug, Args)]
#[command(trailing_var_arg = true)]
pub struct RunArgs {
    /// Run in the background under a monitor of its own, and print the container's id
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Set by `lade create`: make the container, do not start it
    #[arg(skip)]
    pub create_only: bool,
    /// Restart policy of a detached container: no, on-failure[:N], always, unless-stopped
    #[arg(long, value_name = "POLICY", default_value = "no")]
    pub restart: String,
    /// Signal that `lade stop` sends first [default: the image's STOPSIGNAL, else SIGTERM]
    #[arg(long, value_name = "SIGNAL")]
    pub stop_signal: Option<String>,
    /// Seconds `lade stop` waits before SIGKILL [default: 10]
    #[arg(long, value_name = "SECONDS")]
    pub stop_timeout: Option<u64>,
    /// Remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Set a label on the container (KEY=VALUE)
    #[arg(short = 'l', long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Pull the image: missing (when the store lacks it), always, never
    #[arg(long, default_value = "missing", value_name = "POLICY")]
    pub pull: String,
    /// Logging driver: json-file (the default) or none
    #[arg(long, value_name = "DRIVER")]
    pub log_driver: Option<String>,
    /// Log option: max-size=SIZE, max-file=N (rotation, as Docker's json-file),
    /// labels=KEY,... and env=NAME,... (shown by `logs --details`)
    #[arg(long = "log-opt", value_name = "KEY=VALUE")]
    pub log_opts: Vec<String>,
    /// Write the container's id to this file (which must not exist)
    #[arg(long, value_name = "FILE")]
    pub cidfile: Option<PathBuf>,
    /// A name for the container
    #[arg(long)]
    pub name: Option<String>,
    /// Set an environment variable (NAME=VALUE, or NAME to take it from lade's environment)
    #[arg(short = 'e', long = "env", value_name = "NAME[=VALUE]")]
    pub env: Vec<String>,
    /// Read environment variables from a file (NAME=VALUE lines)
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_files: Vec<PathBuf>,
    /// Working directory inside the container (an absolute path)
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// User to run as (NAME, UID, NAME:GROUP or UID:GID)
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// Replace the image's ENTRYPOINT (and its CMD)
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Keep standard input open
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Give the container a terminal
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Keys that detach from an interactive container (`run -it`), which runs on
    #[arg(long, value_name = "KEYS", default_value = DEFAULT_DETACH_KEYS)]
    pub detach_keys: String,
    /// Attach to these streams only (stdin, stdout, stderr; may be repeated) [default:
    /// stdout and stderr, and stdin with -i]
    #[arg(short = 'a', long = "attach", value_name = "STREAM")]
    pub attach: Vec<String>,
    /// Network: bridge (lade's default network, through netavark), NAME (a network made
    /// with `lade network create`), host, none (only loopback), container:NAME (another
    /// container's). Rootless networking (pasta) is not supported: lade runs as root
    #[arg(long, default_value = "bridge", value_name = "NETWORK")]
    pub network: String,
    /// Another name the container answers to on a user network
    #[arg(long = "network-alias", value_name = "ALIAS")]
    pub network_aliases: Vec<String>,
    /// The container's IPv4 address on its network
    #[arg(long, value_name = "ADDRESS")]
    pub ip: Option<String>,
    /// Publish a port: [IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp|sctp], ranges as
    /// 8000-8002:80-82; without HOST_PORT, a free one. Answers on the host's addresses
    /// and on 127.0.0.1
    #[arg(short = 'p', long = "publish", value_name = "SPEC")]
    pub publish: Vec<String>,
    /// Publish every exposed port (EXPOSE and --expose) to a free host port
    #[arg(short = 'P', long)]
    pub publish_all: bool,
    /// Expose a port (or range) without publishing it
    #[arg(long, value_name = "PORT[/PROTOCOL]")]
    pub expose: Vec<String>,
    /// A DNS server for the container's /etc/resolv.conf (on a user network, the one
    /// aardvark-dns forwards to)
    #[arg(long, value_name = "ADDRESS")]
    pub dns: Vec<String>,
    /// Add a line to the container's /etc/hosts (NAME:IP)
    #[arg(long = "add-host", value_name = "NAME:IP")]
    pub add_hosts: Vec<String>,
    /// Hostname [default: the start of the container id]
    #[arg(long)]
    pub hostname: Option<String>,
    /// Mount a named volume, a host path, or a new anonymous volume
    /// (NAME:TARGET[:ro], /HOST:TARGET[:ro], TARGET). A new volume mounted over a path
    /// the image has content at is filled with it, as Docker does
    #[arg(short = 'v', long = "volume", value_name = "[SOURCE:]TARGET[:ro]")]
    pub volumes: Vec<String>,
    /// Mount: type=volume|bind|tmpfs,source=,target=[,readonly][,tmpfs-size=]
    #[arg(long = "mount", value_name = "SPEC")]
    pub mounts: Vec<String>,
    /// Mount a tmpfs (PATH[:size=N])
    #[arg(long, value_name = "PATH[:size=N]")]
    pub tmpfs: Vec<String>,
    /// Mount the volumes and binds of another container (CONTAINER[:ro])
    #[arg(long = "volumes-from", value_name = "CONTAINER[:ro]")]
    pub volumes_from: Vec<String>,
    /// Mount the root file system read-only
    #[arg(long)]
    pub read_only: bool,
    /// Memory limit (e.g. 512m, 1g)
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// CPU limit in CPUs (e.g. 0.5)
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Process limit
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<u64>,
    /// Run a tiny init as PID 1 that reaps zombies and forwards signals
    #[arg(long)]
    pub init: bool,
    /// Command that checks the container's health, run with /bin/sh -c inside it (exit
    /// 0: healthy). Checks run while lade watches the container: under its monitor when
    /// detached, in `lade run` itself in the foreground
    #[arg(long, value_name = "COMMAND")]
    pub health_cmd: Option<String>,
    /// Time between health checks (ms|s|m|h) [default: 30s]
    #[arg(long, value_name = "DURATION")]
    pub health_interval: Option<String>,
    /// Longest a health check may run before it counts as failed [default: 30s]
    #[arg(long, value_name = "DURATION")]
    pub health_timeout: Option<String>,
    /// Failures in a row that make the container unhealthy [default: 3]
    #[arg(long, value_name = "N")]
    pub health_retries: Option<u64>,
    /// Time after the start during which failures do not count yet [default: 0s]
    #[arg(long, value_name = "DURATION")]
    pub health_start_period: Option<String>,
    /// Time between health checks during the start period [default: 5s]
    #[arg(long, value_name = "DURATION")]
    pub health_start_interval: Option<String>,
    /// Run no health check, not even the image's HEALTHCHECK
    #[arg(long)]
    pub no_healthcheck: bool,
    /// The image
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// The command and its arguments (replacing the image's CMD)
    #[arg(value_name = "COMMAND", allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// `lade run`: the exit code is the container's; 125 when lade itself fails, 126 when
/// the command cannot be run, 127 when it is not found (as Docker).
pub fn run(store_config: &StoreConfig, args: RunArgs) -> Result<ExitCode> {
    let result = (|| -> Result<i32> {
        let request = run_request(&args)?;
        let store = open_store(store_config)?;
        if args.create_only {
            let id = engine::create(&store, &request.container, &Tell).map_err(exit_with)?;
            println!("{id}");
            return Ok(0);
        }
        match engine::run(&store, &request, &Tell).map_err(exit_with)? {
            RunOutcome::Started(id) => {
                println!("{id}");
                Ok(0)
            }
            RunOutcome::Exited(code) => Ok(code),
        }
    })();
    Ok(container_exit(result))
}

/// `run`'s and `create`'s arguments as the engine's request, refused (in this order)
/// before anything is pulled or made.
fn run_request(args: &RunArgs) -> Result<RunRequest> {
    let memory = match &args.memory {
        None => None,
        Some(text) => Some(parse_size(text).filter(|b| *b > 0).ok_or_else(|| {
            anyhow::anyhow!("invalid --memory {text:?}: expected a size such as 512m or 1g")
        })?),
    };
    if let Some(cpus) = args.cpus {
        if !(cpus > 0.0 && cpus.is_finite()) {
            bail!("invalid --cpus {cpus}: expected a positive number");
        }
    }
    let restart = container::RestartPolicy::parse(&args.restart).ok_or_else(|| {
        anyhow::anyhow!(
            "invalid --restart {:?}: expected no, on-failure[:N], always or unless-stopped",
            args.restart
        )
    })?;
    if let Some(signal) = &args.stop_signal {
        if container::parse_signal(signal).is_none() {
            bail!("invalid --stop-signal {signal:?}: expected a signal name or number");
        }
    }
    if !args.detach && restart != container::RestartPolicy::No {
        bail!("--restart applies to detached containers: add -d");
    }
    let detach_keys = detach_keys(&args.detach_keys)?;
    let mut attach = Vec::new();
    let mut attach_stdin = args.attach.is_empty();
    for stream in &args.attach {
        match stream.to_ascii_lowercase().as_str() {
            "stdout" => attach.push(crate::exec::Stream::Stdout),
            "stderr" => attach.push(crate::exec::Stream::Stderr),
            "stdin" => attach_stdin = true,
            other => bail!("invalid -a {other:?}: stdin, stdout or stderr"),
        }
    }
    if args.detach && !args.attach.is_empty() {
        bail!("conflicting options: -a and -d");
    }
    let options = RunOptions {
        image: args.image.clone(),
        name: args.name.clone(),
        args: args.command.clone(),
        entrypoint: args.entrypoint.clone(),
        env: args.env.clone(),
        env_files: args.env_files.clone(),
        workdir: args.workdir.clone(),
        user: args.user.clone(),
        interactive: args.interactive,
        tty: args.tty,
        attach,
        attach_stdin,
        network: container::NetworkRequest {
            mode: container::NetworkMode::parse(&args.network),
            aliases: args.network_aliases.clone(),
            ip: args.ip.clone(),
            publish: args.publish.clone(),
            publish_all: args.publish_all,
            expose: args.expose.clone(),
            dns: args.dns.clone(),
            add_hosts: args.add_hosts.clone(),
        },
        hostname: args.hostname.clone(),
        volumes: args.volumes.clone(),
        mounts: args.mounts.clone(),
        tmpfs: args.tmpfs.clone(),
        volumes_from: args.volumes_from.clone(),
        read_only: args.read_only,
        limits: Limits {
            memory,
            cpus: args.cpus,
            pids: args.pids_limit,
        },
        init: args.init,
        remove: args.rm && !args.detach,
        detach: args.detach || args.create_only,
    };
    let settings = container::Settings {
        restart,
        stop_signal: args.stop_signal.clone(),
        stop_timeout: args.stop_timeout,
        auto_remove: args.rm,
        labels: container::validate::labels(&args.labels)?,
        anonymous_volumes: Vec::new(),
        network: Default::default(),
        interactive: args.interactive,
        log: container::LogConfig::parse(args.log_driver.as_deref(), &args.log_opts)?,
        healthcheck: health_flags(args)?.as_config(),
    };
    if let Some(cidfile) = &args.cidfile {
        if cidfile.exists() {
            bail!("the container id file {} already exists", cidfile.display());
        }
    }
    let pull: PullPolicy = args
        .pull
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid --pull {:?}: always, missing or never", args.pull))?;
    container::check_run_options(&options, &settings).map_err(exit_with)?;
    let mut container = ContainerRequest::new(ImageName::new(&args.image), options, settings);
    container.pull = pull;
    container.cidfile = args.cidfile.clone();
    Ok(RunRequest {
        container,
        detach: args.detach,
        detach_keys,
    })
}

/// The `--health-*` flags, refused as Docker refuses them.
fn health_flags(args: &RunArgs) -> Result<container::HealthFlags> {
    let duration = |flag: &str, text: &Option<String>| -> Result<Option<std::time::Duration>> {
        let Some(text) = text else { return Ok(None) };
        let nanos = crate::parser::parse_duration(text).ok_or_else(|| {
            anyhow::anyhow!(
                "invalid --{flag} {text:?}: expected a duration such as 500ms, 10s or 1m"
            )
        })?;
        if nanos != 0 && nanos < 1_000_000 {
            bail!("invalid --{flag} {text:?}: it cannot be less than 1ms");
        }
        Ok(Some(std::time::Duration::from_nanos(nanos)))
    };
    let flags = container::HealthFlags {
        cmd: args.health_cmd.clone().filter(|c| !c.is_empty()),
        interval: duration("health-interval", &args.health_interval)?,
        timeout: duration("health-timeout", &args.health_timeout)?,
        start_period: duration("health-start-period", &args.health_start_period)?,
        start_interval: duration("health-start-interval", &args.health_start_interval)?,
        retries: args.health_retries,
        disabled: false,
    };
    if args.no_healthcheck {
        if flags != container::HealthFlags::default() {
            bail!("--no-healthcheck conflicts with --health-* options");
        }
        return Ok(container::HealthFlags {
            disabled: true,
            ..flags
        });
    }
    Ok(flags)
}

/// What `run`, `create` and `start` tell the user as they go: on stderr, so that a
/// container's output stays its own (Docker's wording).
struct Tell;

impl engine::Reporter for Tell {
    fn warning(&self, text: &str) {
        warn(text);
    }

    fn image_not_found(&self, image: &str) {
        eprintln!("Unable to find image '{image}' locally");
    }

    fn after_exit(&self, error: &engine::EngineError) {
        eprintln!("lade: after the container exited: {error}");
    }
}

/// `lade create`: a container made as `lade run` makes it, not started.
pub fn create(store_config: &StoreConfig, mut args: RunArgs) -> Result<ExitCode> {
    args.create_only = true;
    run(store_config, args)
}

#[derive(Debug, Args)]
pub struct RenameArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(value_name = "NEW_NAME")]
    pub name: String,
}

pub fn rename(store_config: &StoreConfig, args: RenameArgs) -> Result<ExitCode> {
    let store = open_store(store_config)?;
    container::rename(&store, &args.container, &args.name)?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Accepted for Docker compatibility: lade never asks for confirmation
    #[arg(short, long)]
    pub force: bool,
}

/// `lade container prune`: removes every container that does not run.
pub fn prune(store_config: &StoreConfig, _args: PruneArgs) -> Result<ExitCode> {
    let store = open_store(store_config)?;
    let removed = container::prune(&store)?;
    if !removed.is_empty() {
        println!("Deleted Containers:");
        for id in &removed {
            println!("{id}");
        }
        println!();
    }
    println!("Total reclaimed containers: {}", removed.len());
    Ok(ExitCode::SUCCESS)
}

/// What a container lacks that it asked for (names that will not resolve), on stderr so
/// that its output stays its own.
pub(crate) fn warn(text: &str) {
    eprintln!("warning: {text}");
}

/// Docker's default detach keys.
const DEFAULT_DETACH_KEYS: &str = "ctrl-p,ctrl-q";

fn detach_keys(text: &str) -> Result<Vec<u8>> {
    container::parse_detach_keys(text).ok_or_else(|| {
        anyhow::anyhow!(
            "invalid --detach-keys {text:?}: expected keys such as ctrl-p,ctrl-q (ctrl-<letter>, or one character each)"
        )
    })
}

/// The exit code of `lade attach`: the container's, or 0 once detached from it.
fn attached_exit(attached: container::Result<container::Attached>) -> Result<i32> {
    match attached.map_err(exit_with)? {
        container::Attached::Exited(code) => Ok(code),
        container::Attached::Detached => Ok(0),
    }
}

/// An error tagged with the exit code it stands for (Docker's 125/126/127).
fn exit_with(e: impl Into<EngineError>) -> anyhow::Error {
    let e = e.into();
    let code = e.exit_code();
    anyhow::Error::new(e).context(ExitWith(code))
}

/// The exit code of `run` or `exec`: the process's, or the error's (125 when lade
/// itself failed), with the error reported.
fn container_exit(result: Result<i32>) -> ExitCode {
    let code = match result {
        Ok(code) => code,
        Err(err) => {
            let code = err.downcast_ref::<ExitWith>().map_or(125, |c| c.0);
            eprintln!("lade: {}", without_exit_code(&err, code));
            code
        }
    };
    ExitCode::from(code.clamp(0, 255) as u8)
}

/// The error and its causes (`describe`), without the exit code it was tagged with.
fn without_exit_code(err: &anyhow::Error, code: i32) -> String {
    let text = super::describe(err);
    text.strip_prefix(&format!("exit code {code}: "))
        .map(str::to_string)
        .unwrap_or(text)
}

/// The exit code an error stands for.
#[derive(Debug)]
struct ExitWith(i32);

impl std::fmt::Display for ExitWith {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit code {}", self.0)
    }
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (by default only running ones)
    #[arg(short, long)]
    pub all: bool,
    /// Only ids
    #[arg(short, long)]
    pub quiet: bool,
    /// The last N created containers, in any state
    #[arg(short = 'n', long = "last", value_name = "N")]
    pub last: Option<usize>,
    /// The latest created container, in any state
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Full ids
    #[arg(long)]
    pub no_trunc: bool,
    /// Show each container's size: its own changes, and with its image (virtual)
    #[arg(short, long)]
    pub size: bool,
    /// Only containers that match: status=, name=, label=KEY[=VALUE], ancestor=IMAGE,
    /// exited=CODE, id=, health=starting|healthy|unhealthy|none (several filters: all
    /// must match)
    #[arg(short, long, value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Output format: table, json, or a Go template (`{{.Names}} {{.Status}}`)
    #[arg(long, default_value = "table")]
    pub format: String,
}

pub fn ps(store_config: &StoreConfig, args: PsArgs) -> Result<ExitCode> {
    let store = super::open_store_read_only(store_config)?;
    // A container whose monitor was killed left its network: it goes now.
    if let Err(err) = container::reap_networks(&store) {
        eprintln!("lade: tearing down the network of a dead container: {err}");
    }
    let filters = args
        .filter
        .iter()
        .map(|f| PsFilter::parse(f))
        .collect::<Result<Vec<_>>>()?;
    let any_state = args.all || args.latest || args.last.is_some() || !filters.is_empty();
    let mut containers: Vec<_> = Container::all(&store)?
        .into_iter()
        .filter(|c| any_state || c.current_state().is_active())
        .filter(|c| filters.iter().all(|f| f.matches(&store, c)))
        .collect();
    // Newest first, as the store lists them.
    let keep = if args.latest { Some(1) } else { args.last };
    if let Some(n) = keep {
        containers.truncate(n);
    }
    let short = |id: &str| {
        if args.no_trunc {
            id.to_string()
        } else {
            id[..12].to_string()
        }
    };
    if args.quiet {
        for c in &containers {
            println!("{}", short(c.id()));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let format = super::ListFormat::parse(&args.format)?;
    if !matches!(format, super::ListFormat::Table) {
        let rows: Vec<_> = containers
            .iter()
            .map(|container| {
                let c = &container.record;
                // RFC 3339, as every time in lade's (and Docker's) JSON.
                let created = jiff::Timestamp::from_second(c.created)
                    .map(|t| t.to_string())
                    .unwrap_or_default();
                let pid = container.running_init().map(|init| init.pid);
                json!({ "ID": c.id, "Names": c.name, "Name": c.name, "Image": c.image_name, "ImageID": c.image.to_string(), "Command": command_of(container), "Created": created, "State": container.current_state().as_str(), "Status": docker_status(&store, container), "ExitCode": c.exit_code, "Pid": pid, "Labels": container.settings.labels, "Ports": docker_ports(&container::published_ports(&store, c)) })
            })
            .collect();
        format.print(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    // SIZE: the container's upper directory, and with its image's layers.
    let image_sizes: std::collections::HashMap<String, u64> = if args.size {
        store
            .list_images()?
            .into_iter()
            .map(|i| (i.id.to_string(), i.size))
            .collect()
    } else {
        Default::default()
    };
    let size_of = |c: &crate::store::ContainerRecord| {
        let own =
            crate::store::dir_size(&store.root().join("containers").join(&c.id).join("upper"));
        let image = image_sizes.get(&c.image.to_string()).copied().unwrap_or(0);
        format!(
            "{} (virtual {})",
            super::human_size(own),
            super::human_size(own + image)
        )
    };
    let rows: Vec<Vec<String>> = containers
        .iter()
        .map(|container| {
            let c = &container.record;
            let created = jiff::Timestamp::from_second(c.created)
                .map(|t| t.to_string())
                .ok();
            let status = docker_status(&store, container);
            let mut row = vec![
                short(&c.id),
                c.image_name.clone(),
                command_of(container),
                human_age(created.as_deref()),
                status,
                docker_ports(&container::published_ports(&store, c)),
                c.name.clone(),
            ];
            if args.size {
                row.push(size_of(c));
            }
            row
        })
        .collect();
    let mut header = vec![
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ];
    if args.size {
        header.push("SIZE");
    }
    print_table(&header, &rows);
    Ok(ExitCode::SUCCESS)
}

/// PORTS as `docker ps` shows them: `0.0.0.0:18080->80/tcp, ...`.
fn docker_ports(ports: &[crate::network::PortMapping]) -> String {
    ports
        .iter()
        .flat_map(|p| p.docker_lines())
        .map(|(container, host)| format!("{host}->{container}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Debug, Args)]
pub struct PortArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// Only this port: PORT[/PROTOCOL]
    #[arg(value_name = "PORT")]
    pub port: Option<String>,
}

/// `lade port`: a running container's published ports, as Docker prints them.
pub fn port(store_config: &StoreConfig, args: PortArgs) -> Result<ExitCode> {
    let store = super::open_store_read_only(store_config)?;
    let record = store.container(&args.container)?;
    let wanted = args.port.as_ref().map(|p| {
        if p.contains('/') {
            p.clone()
        } else {
            format!("{p}/tcp")
        }
    });
    let mut found = false;
    for mapping in container::published_ports(&store, &record) {
        for (container_port, host) in mapping.docker_lines() {
            match &wanted {
                Some(w) if *w == container_port => println!("{host}"),
                Some(_) => continue,
                None => println!("{container_port} -> {host}"),
            }
            found = true;
        }
    }
    if let (Some(w), false) = (&wanted, found) {
        bail!("no public port {w} published for container {}", record.name);
    }
    Ok(ExitCode::SUCCESS)
}

/// COMMAND as `docker ps` shows it: quoted, cut to 20 characters.
fn command_of(container: &Container) -> String {
    let args = container.spec.process.args.join(" ");
    let shown: String = if args.chars().count() > 20 {
        format!("{}…", args.chars().take(19).collect::<String>())
    } else {
        args
    };
    format!("\"{shown}\"")
}

/// A container's health, when it has a check.
fn health_of(
    store: &crate::store::Store,
    container: &Container,
) -> Option<container::HealthStatus> {
    container.settings.healthcheck.as_ref()?;
    Some(
        container::health(store, container.id())
            .map_or(container::HealthStatus::Starting, |h| h.status),
    )
}

/// One `ps --filter`.
enum PsFilter {
    /// `health=starting|healthy|unhealthy`, or `none` (no check) as `None`.
    Health(Option<container::HealthStatus>),
    Status(ContainerState),
    Name(String),
    Label(String, Option<String>),
    Ancestor(String),
    Exited(i64),
    Id(String),
}

impl PsFilter {
    fn parse(text: &str) -> Result<PsFilter> {
        let (key, value) = text
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("invalid --filter {text:?}: expected KEY=VALUE"))?;
        Ok(match key {
            "status" => match ContainerState::parse(value) {
                Some(state) => PsFilter::Status(state),
                None => bail!(
                    "invalid --filter {text:?}: status is one of {}",
                    ContainerState::ALL.map(ContainerState::as_str).join(", ")
                ),
            },
            "name" => PsFilter::Name(value.into()),
            "label" => match value.split_once('=') {
                Some((k, v)) => PsFilter::Label(k.into(), Some(v.into())),
                None => PsFilter::Label(value.into(), None),
            },
            "ancestor" => PsFilter::Ancestor(value.into()),
            "exited" => PsFilter::Exited(
                value
                    .parse()
                    .map_err(|_| anyhow::anyhow!("invalid --filter {text:?}: exited takes a number"))?,
            ),
            "id" => PsFilter::Id(value.into()),
            "health" => match (value, container::HealthStatus::parse(value)) {
                ("none", _) => PsFilter::Health(None),
                (_, Some(status)) => PsFilter::Health(Some(status)),
                _ => bail!(
                    "invalid --filter {text:?}: health is one of starting, healthy, unhealthy, none"
                ),
            },
            other => bail!(
                "invalid --filter {text:?}: lade knows status, name, label, ancestor, exited, id, health (not {other})"
            ),
        })
    }

    fn matches(&self, store: &crate::store::Store, container: &Container) -> bool {
        let c = &container.record;
        match self {
            PsFilter::Health(wanted) => health_of(store, container) == *wanted,
            PsFilter::Status(state) => container.current_state() == *state,
            PsFilter::Name(name) => c.name.contains(name.as_str()),
            PsFilter::Label(key, value) => {
                let labels = &container.settings.labels;
                match value {
                    Some(value) => labels.get(key) == Some(value),
                    None => labels.contains_key(key),
                }
            }
            PsFilter::Ancestor(image) => {
                let hex = image.strip_prefix("sha256:").unwrap_or(image);
                c.image_name == *image
                    || c.image_name == format!("{image}:latest")
                    || (hex.len() >= 4 && c.image.hex().starts_with(hex))
            }
            PsFilter::Exited(code) => {
                container.current_state() == ContainerState::Exited && c.exit_code == Some(*code)
            }
            PsFilter::Id(prefix) => c.id.starts_with(prefix.as_str()),
        }
    }
}

/// STATUS as `docker ps` says it: `Up 3 seconds`, `Up 5 seconds (Paused)`,
/// `Exited (137) 2 seconds ago`, `Restarting (1) 1 second ago`, `Created`, `Dead`.
fn docker_status(store: &crate::store::Store, container: &Container) -> String {
    let record = &container.record;
    let since = |time: &Option<String>| {
        let seconds = time
            .as_deref()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map_or(0, |t| jiff::Timestamp::now().as_second() - t.as_second());
        super::human_duration(seconds)
    };
    let code = record.exit_code.unwrap_or(0);
    match container.current_state() {
        ContainerState::Running => match health_of(store, container) {
            Some(health) => format!("Up {} ({})", since(&record.started_at), health.ps_text()),
            None => format!("Up {}", since(&record.started_at)),
        },
        ContainerState::Paused => format!("Up {} (Paused)", since(&record.started_at)),
        ContainerState::Exited => format!("Exited ({code}) {} ago", since(&record.finished_at)),
        ContainerState::Restarting => {
            format!("Restarting ({code}) {} ago", since(&record.finished_at))
        }
        ContainerState::Created => "Created".into(),
        ContainerState::Dead => "Dead".into(),
    }
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Kill and remove a running container
    #[arg(short, long)]
    pub force: bool,
    /// Remove the container's anonymous volumes too
    #[arg(short, long)]
    pub volumes: bool,
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

pub fn rm(store_config: &StoreConfig, args: RmArgs) -> Result<ExitCode> {
    let store = open_store(store_config)?;
    Ok(super::each_item(&args.containers, |reference| {
        let name = container::remove(&store, reference, args.force, args.volumes)?;
        println!("{name}");
        Ok::<_, container::ContainerError>(())
    }))
}

#[derive(Debug, Args)]
pub struct ContainersArgs {
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait for the stop signal before SIGKILL [default: the container's
    /// --stop-timeout, else 10]
    #[arg(short = 't', long = "time", value_name = "SECONDS")]
    pub time: Option<u64>,
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send (name or number)
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep printing what the container writes until it stops
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines ("all" for every line)
    #[arg(short = 'n', long, value_name = "N", default_value = "all")]
    pub tail: String,
    /// Only lines written since TIME (RFC 3339, or a duration such as 10m, 2h)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only lines written before TIME (RFC 3339, or a duration such as 10m, 2h)
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Prefix each line with its time
    #[arg(short, long)]
    pub timestamps: bool,
    /// Prefix each line with the attributes `--log-opt labels=,env=` asked for
    #[arg(long)]
    pub details: bool,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// Does `act` to each container named, printing each name as Docker does when it
/// worked; the exit code says whether any failed.
fn each_container<E: std::fmt::Display>(
    store_config: &StoreConfig,
    containers: &[String],
    mut act: impl FnMut(&crate::store::Store, &str) -> std::result::Result<(), E>,
) -> Result<ExitCode> {
    let store = open_store(store_config)?;
    Ok(super::each_item(containers, |reference| {
        act(&store, reference)?;
        println!("{reference}");
        Ok::<_, E>(())
    }))
}

/// `lade start`: each container runs again, detached, its files kept.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach to the container's output (and its input with -i) until it exits
    #[arg(short, long)]
    pub attach: bool,
    /// With -a: send our standard input to the container (made with -i)
    #[arg(short, long)]
    pub interactive: bool,
    /// Keys that detach from the container, which runs on
    #[arg(long, value_name = "KEYS", default_value = DEFAULT_DETACH_KEYS)]
    pub detach_keys: String,
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

/// `lade start`: detached, or with `-a` attached (the exit code is the container's).
pub fn start(store_config: &StoreConfig, args: StartArgs) -> Result<ExitCode> {
    if !args.attach && !args.interactive {
        return each_container(store_config, &args.containers, |store, reference| {
            engine::start_detached(store, reference, &Tell).map(drop)
        });
    }
    if args.containers.len() > 1 {
        bail!("lade start -a starts one container at a time");
    }
    let request = StartAttached {
        container: args.containers[0].clone(),
        stdin: args.interactive,
        detach_keys: detach_keys(&args.detach_keys)?,
    };
    let result = (|| -> Result<i32> {
        let store = open_store(store_config)?;
        engine::start_attached(&store, &request, &Tell).map_err(exit_with)
    })();
    Ok(container_exit(result))
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Do not send our standard input to the container
    #[arg(long)]
    pub no_stdin: bool,
    /// Send the signals lade receives (SIGINT, SIGTERM...) to the container, unless it
    /// has a terminal (its ctrl-c is a key then)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub sig_proxy: bool,
    /// Keys that detach from the container, which runs on
    #[arg(long, value_name = "KEYS", default_value = DEFAULT_DETACH_KEYS)]
    pub detach_keys: String,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// `lade attach`: the exit code is the container's (0 after the detach keys).
pub fn attach(store_config: &StoreConfig, args: AttachArgs) -> Result<ExitCode> {
    let detach_keys = detach_keys(&args.detach_keys)?;
    let result = (|| -> Result<i32> {
        let store = open_store(store_config)?;
        attached_exit(container::attach(
            &store,
            &args.container,
            &container::AttachOptions {
                stdin: !args.no_stdin,
                detach_keys,
                sig_proxy: args.sig_proxy,
            },
        ))
    })();
    Ok(container_exit(result))
}

/// `lade stop`: the stop signal, then SIGKILL after the timeout.
pub fn stop(store_config: &StoreConfig, args: StopArgs) -> Result<ExitCode> {
    each_container(store_config, &args.containers, |store, reference| {
        container::stop(store, reference, args.time).map(drop)
    })
}

/// `lade restart`: stop, then start.
pub fn restart(store_config: &StoreConfig, args: StopArgs) -> Result<ExitCode> {
    each_container(store_config, &args.containers, |store, reference| {
        container::stop(store, reference, args.time)?;
        container::start_detached(store, reference, &warn).map(drop)
    })
}

pub fn kill(store_config: &StoreConfig, args: KillArgs) -> Result<ExitCode> {
    let signal = container::parse_signal(&args.signal)
        .ok_or_else(|| anyhow::anyhow!("invalid signal {:?}", args.signal))?;
    each_container(store_config, &args.containers, |store, reference| {
        container::kill(store, reference, signal).map(drop)
    })
}

/// `lade wait`: prints each container's exit code once it stops.
pub fn wait(store_config: &StoreConfig, args: ContainersArgs) -> Result<ExitCode> {
    let store = open_store(store_config)?;
    Ok(super::each_item(&args.containers, |reference| {
        let code = container::wait(&store, reference)?;
        println!("{code}");
        Ok::<_, container::ContainerError>(())
    }))
}

pub fn pause(store_config: &StoreConfig, args: ContainersArgs, paused: bool) -> Result<ExitCode> {
    each_container(store_config, &args.containers, |store, reference| {
        container::pause(store, reference, paused).map(drop)
    })
}

pub fn logs(store_config: &StoreConfig, args: LogsArgs) -> Result<ExitCode> {
    let store = super::open_store_read_only(store_config)?;
    let tail = match args.tail.as_str() {
        "all" | "-1" => None,
        n => Some(
            n.parse::<usize>()
                .map_err(|_| anyhow::anyhow!("invalid --tail {n:?}: expected a number or all"))?,
        ),
    };
    let options = container::LogOptions {
        follow: args.follow,
        tail,
        since: args.since.as_deref().map(log_time).transpose()?,
        until: args.until.as_deref().map(log_time).transpose()?,
        timestamps: args.timestamps,
        details: args.details,
    };
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    container::logs(&store, &args.container, &options, &mut stdout, &mut stderr)?;
    Ok(ExitCode::SUCCESS)
}

/// A time for `--since`/`--until`: RFC 3339, Unix seconds, or a duration ago (`10m`).
fn log_time(text: &str) -> Result<jiff::Timestamp> {
    if let Ok(time) = text.parse::<jiff::Timestamp>() {
        return Ok(time);
    }
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(jiff::Timestamp::from_second(seconds)?);
    }
    let seconds = super::cache::parse_duration(text).ok_or_else(|| {
        anyhow::anyhow!(
            "invalid time {text:?}: expected RFC 3339, Unix seconds or a duration such as 10m"
        )
    })?;
    Ok(jiff::Timestamp::from_second(
        jiff::Timestamp::now().as_second() - seconds,
    )?)
}

#[derive(Debug, Args)]
#[command(trailing_var_arg = true)]
pub struct ExecArgs {
    /// Run the command in the background (its output is discarded, as Docker's is)
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Set an environment variable (NAME=VALUE, or NAME to take it from lade's environment)
    #[arg(short = 'e', long = "env", value_name = "NAME[=VALUE]")]
    pub env: Vec<String>,
    /// Read environment variables from a file (NAME=VALUE lines)
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_files: Vec<PathBuf>,
    /// Keep standard input open
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Give the process a terminal
    #[arg(short = 't', long)]
    pub tty: bool,
    /// User to run as (NAME, UID, NAME:GROUP or UID:GID) [default: the container's]
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Working directory (an absolute path) [default: the container's]
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// The command and its arguments
    #[arg(value_name = "COMMAND", required = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// `lade exec`: the exit code is the process's (125 when lade fails, 126 not
/// executable, 127 not found).
pub fn exec(store_config: &StoreConfig, args: ExecArgs) -> Result<ExitCode> {
    let result = (|| -> Result<i32> {
        let store = open_store(store_config)?;
        let options = container::ExecOptions {
            args: args.command.clone(),
            env: args.env.clone(),
            env_files: args.env_files.clone(),
            user: args.user.clone(),
            workdir: args.workdir.clone(),
            interactive: args.interactive,
            tty: args.tty,
        };
        if args.detach {
            container::exec_detached(&store, &args.container, &options).map_err(exit_with)?;
            return Ok(0);
        }
        container::exec_in(&store, &args.container, &options).map_err(exit_with)
    })();
    Ok(container_exit(result))
}

#[derive(Debug, clap::Subcommand)]
pub enum VolumeCommand {
    /// Create a named volume (a random name when none is given)
    Create(VolumeCreateArgs),
    /// List volumes
    Ls(VolumeLsArgs),
    /// Show volumes as JSON (or through a --format template)
    Inspect(VolumeInspectArgs),
    /// Remove volumes (refused while a container uses one)
    Rm(VolumeRmArgs),
    /// Remove unused anonymous volumes (every unused one with --all)
    Prune(VolumePruneArgs),
}

#[derive(Debug, Args)]
pub struct VolumeCreateArgs {
    /// Set a label (KEY=VALUE)
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct VolumeLsArgs {
    /// Only names
    #[arg(short, long)]
    pub quiet: bool,
    /// dangling=true: only volumes no container uses; name=SUBSTRING
    #[arg(short, long, value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Output format: table, json, or a Go template (`{{.Name}}`)
    #[arg(long, default_value = "table")]
    pub format: String,
}

#[derive(Debug, Args)]
pub struct VolumeInspectArgs {
    /// Format each volume with a Go template (`{{.Mountpoint}}`)
    #[arg(short, long, value_name = "TEMPLATE")]
    pub format: Option<String>,
    #[arg(value_name = "VOLUME", required = true)]
    pub volumes: Vec<String>,
}

#[derive(Debug, Args)]
pub struct VolumeRmArgs {
    /// Remove even when a stopped container still names it
    #[arg(short, long)]
    pub force: bool,
    #[arg(value_name = "VOLUME", required = true)]
    pub volumes: Vec<String>,
}

#[derive(Debug, Args)]
pub struct VolumePruneArgs {
    /// Every unused volume, named ones too
    #[arg(short, long)]
    pub all: bool,
    /// Accepted for Docker compatibility: lade never asks for confirmation
    #[arg(short, long)]
    pub force: bool,
}

pub fn volume(store_config: &StoreConfig, command: VolumeCommand) -> Result<ExitCode> {
    match command {
        VolumeCommand::Create(args) => {
            let labels = container::validate::labels(&args.labels)?;
            let store = open_store(store_config)?;
            println!(
                "{}",
                container::create_volume(&store, args.name.as_deref(), &labels)?
            );
            Ok(ExitCode::SUCCESS)
        }
        VolumeCommand::Ls(args) => {
            let store = super::open_store_read_only(store_config)?;
            let mut rows = Vec::new();
            for record in store.volumes()? {
                let mut keep = true;
                for filter in &args.filter {
                    keep &= match filter.split_once('=') {
                        Some(("dangling", value)) => {
                            let unused = container::volume_users(&store, &record.name)?.is_empty();
                            unused == matches!(value, "true" | "1")
                        }
                        Some(("name", part)) => record.name.contains(part),
                        _ => bail!("invalid --filter {filter:?}: lade knows dangling= and name="),
                    };
                }
                if keep {
                    rows.push(container::volume_json(&store, &record));
                }
            }
            if args.quiet {
                for row in &rows {
                    println!("{}", row["Name"].as_str().unwrap_or_default());
                }
                return Ok(ExitCode::SUCCESS);
            }
            let format = super::ListFormat::parse(&args.format)?;
            if !format.print(&rows)? {
                let table: Vec<Vec<String>> = rows
                    .iter()
                    .map(|r| {
                        vec![
                            "local".to_string(),
                            r["Name"].as_str().unwrap_or_default().to_string(),
                        ]
                    })
                    .collect();
                print_table(&["DRIVER", "VOLUME NAME"], &table);
            }
            Ok(ExitCode::SUCCESS)
        }
        VolumeCommand::Inspect(args) => {
            let store = super::open_store_read_only(store_config)?;
            let mut out = super::template::InspectOutput::new(args.format.as_deref())?;
            let code = super::each_item(&args.volumes, |name| {
                let record = store
                    .volume(name)?
                    .ok_or_else(|| anyhow::anyhow!("no such volume: {name}"))?;
                out.push(container::volume_json(&store, &record))
            });
            out.finish()?;
            Ok(code)
        }
        VolumeCommand::Rm(args) => {
            let store = open_store(store_config)?;
            Ok(super::each_item(&args.volumes, |name| {
                container::remove_volume(&store, name, args.force)?;
                println!("{name}");
                Ok::<_, container::ContainerError>(())
            }))
        }
        VolumeCommand::Prune(args) => {
            let store = open_store(store_config)?;
            let removed = container::prune_volumes(&store, args.all)?;
            if !removed.is_empty() {
                println!("Deleted Volumes:");
                for name in &removed {
                    println!("{name}");
                }
                println!();
            }
            println!("Total reclaimed volumes: {}", removed.len());
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[derive(Debug, Args)]
pub struct OneContainer {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// `lade diff`: A/C/D lines, as Docker prints them.
pub fn diff(store_config: &StoreConfig, args: OneContainer) -> Result<ExitCode> {
    let store = super::open_store_read_only(store_config)?;
    for (kind, path) in container::diff(&store, &args.container)? {
        println!("{kind} {}", super::printable(&path));
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to a file instead of standard output
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// `lade export`: the container's root file system as a tar.
pub fn export(store_config: &StoreConfig, args: ExportArgs) -> Result<ExitCode> {
    let store = open_store(store_config)?;
    match &args.output {
        Some(path) => {
            // Written beside, renamed into place: no half-written archive on failure.
            let tmp = path.with_extension("part");
            let mut file = std::io::BufWriter::new(
                std::fs::File::create(&tmp)
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", tmp.display()))?,
            );
            let written = container::export(&store, &args.container, &mut file)
                .map_err(anyhow::Error::new)
                .and_then(|()| file.flush().map_err(anyhow::Error::new));
            if let Err(e) = written {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
            std::fs::rename(&tmp, path)?;
        }
        None => {
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                bail!("refusing to write a tar to a terminal: use -o FILE or a redirection");
            }
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            container::export(&store, &args.container, &mut out)?;
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct CpArgs {
    /// Keep owners (uid and gid) as they are in the source
    #[arg(short, long)]
    pub archive: bool,
    /// Follow a symlink named as SRC
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// CONTAINER:SRC, a host path, or `-` for a tar stream on standard input
    #[arg(value_name = "SRC")]
    pub source: String,
    /// CONTAINER:DEST, a host path, or `-` for a tar stream on standard output
    #[arg(value_name = "DEST")]
    pub destination: String,
}

/// `lade cp`.
pub fn cp(store_config: &StoreConfig, args: CpArgs) -> Result<ExitCode> {
    let from = container::CopyEnd::parse(&args.source);
    let to = container::CopyEnd::parse(&args.destination);
    let in_container =
        |end: &container::CopyEnd| matches!(end, container::CopyEnd::Container { .. });
    if in_container(&from) == in_container(&to) {
        bail!("lade cp copies between a container and the host: name the container in SRC or DEST as CONTAINER:PATH");
    }
    if to == container::CopyEnd::Stream && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        bail!("refusing to write a tar to a terminal: give a path or a redirection");
    }
    let store = open_store(store_config)?;
    let options = container::CopyOptions {
        archive: args.archive,
        follow_link: args.follow_link,
    };
    let mut stdout = std::io::stdout().lock();
    container::copy(
        &store,
        &from,
        &to,
        options,
        &mut std::io::stdin().lock(),
        &mut stdout,
    )?;
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Commit message (the history comment)
    #[arg(short, long)]
    pub message: Option<String>,
    /// Author
    #[arg(short, long)]
    pub author: Option<String>,
    /// Apply a Dockerfile instruction to the new image's config (CMD, ENTRYPOINT, ENV,
    /// EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL)
    #[arg(short = 'c', long = "change", value_name = "INSTRUCTION")]
    pub changes: Vec<String>,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// The new image's name
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub tag: Option<String>,
}

/// `lade commit`: the container's changes as a new image; prints its id.
pub fn commit(store_config: &StoreConfig, args: CommitArgs) -> Result<ExitCode> {
    let store = open_store(store_config)?;
    let record = store.container(&args.container)?;
    let base = store.image(&record.image.to_string())?;
    let config = super::archive::config_with_changes(
        crate::graph::BaseImage {
            config: base.config.config.clone(),
            author: base.config.author.clone(),
        },
        &args.changes,
    )?;
    let tag = args
        .tag
        .as_deref()
        .map(|t| {
            t.parse::<crate::oci::ImageRef>()
                .map_err(|e| anyhow::anyhow!("invalid name {t:?}: {e}"))
        })
        .transpose()?;
    let image = container::commit(
        &store,
        &args.container,
        &container::CommitOptions {
            config,
            message: args.message.clone(),
            author: args.author.clone(),
            tag,
            source_date_epoch: super::source_date_epoch()?,
        },
    )?;
    println!("{}", image.id);
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
#[command(trailing_var_arg = true)]
pub struct TopArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// Options for ps [default: -ef]
    #[arg(value_name = "PS_OPTIONS", allow_hyphen_values = true)]
    pub ps_options: Vec<String>,
}

/// `lade top`: the host's `ps` over the container's processes, as Docker runs it.
pub fn top(store_config: &StoreConfig, args: TopArgs) -> Result<ExitCode> {
    let store = super::open_store_read_only(store_config)?;
    let pids = container::processes(&store, &args.container)?;
    let options = if args.ps_options.is_empty() {
        vec!["-ef".to_string()]
    } else {
        args.ps_options.clone()
    };
    let output = std::process::Command::new("ps")
        .args(&options)
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run ps: {e}"))?;
    if !output.status.success() {
        bail!(
            "ps {}: {}",
            options.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let pid_column = header
        .split_whitespace()
        .position(|c| c == "PID")
        .ok_or_else(|| anyhow::anyhow!("ps {} shows no PID column", options.join(" ")))?;
    println!("{header}");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(pid_column)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            println!("{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// One sample, then exit
    #[arg(long)]
    pub no_stream: bool,
    /// Output format: table, json, or a Go template (`{{.Name}} {{.CPUPerc}}`)
    #[arg(long, default_value = "table")]
    pub format: String,
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `lade stats`: CPU, memory and processes of running containers.
pub fn stats(store_config: &StoreConfig, args: StatsArgs) -> Result<ExitCode> {
    let store = super::open_store_read_only(store_config)?;
    let format = super::ListFormat::parse(&args.format)?;
    loop {
        let usage = container::usage(&store, &args.containers)?;
        let rows: Vec<serde_json::Value> = usage
            .iter()
            .map(|u| {
                let mem_percent = if u.memory_limit > 0 {
                    u.memory as f64 / u.memory_limit as f64 * 100.0
                } else {
                    0.0
                };
                json!({
                    "ID": &u.id[..12],
                    "Container": &u.id[..12],
                    "Name": u.name,
                    "CPUPerc": format!("{:.2}%", u.cpu_percent),
                    "MemUsage": format!("{} / {}", super::human_size(u.memory), super::human_size(u.memory_limit)),
                    "MemPerc": format!("{mem_percent:.2}%"),
                    "NetIO": "--",
                    "BlockIO": "--",
                    "PIDs": u.pids.to_string(),
                })
            })
            .collect();
        if !format.print(&rows)? {
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    [
                        "ID", "Name", "CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs",
                    ]
                    .iter()
                    .map(|k| r[k].as_str().unwrap_or_default().to_string())
                    .collect()
                })
                .collect();
            print_table(
                &[
                    "CONTAINER ID",
                    "NAME",
                    "CPU %",
                    "MEM USAGE / LIMIT",
                    "MEM %",
                    "NET I/O",
                    "BLOCK I/O",
                    "PIDS",
                ],
                &table,
            );
        }
        if args.no_stream {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(std::time::Duration::from_millis(800));
    }
}
