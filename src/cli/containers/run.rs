//! `lade run` and `lade create`: their arguments, checked and made into the engine's
//! request before anything is pulled or made.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;

use super::{
    container_exit, detach_keys, exit_with, open_store, StoreConfig, Tell, DEFAULT_DETACH_KEYS,
};
use crate::engine::{
    self, ContainerRequest, HealthFlags, ImageName, Limits, LogConfig, NetworkMode, NetworkRequest,
    PullPolicy, RestartPolicy, RunOptions, RunOutcome, RunRequest, Settings, Stream,
};
use crate::oci::parse_size;

#[derive(Debug, Args)]
// `-h` is Docker's --hostname here, so help is --help alone.
#[command(trailing_var_arg = true, disable_help_flag = true)]
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
    #[arg(
        long,
        visible_alias = "net",
        default_value = "bridge",
        value_name = "NETWORK"
    )]
    pub network: String,
    /// Another name the container answers to on a user network
    #[arg(
        long = "network-alias",
        visible_alias = "net-alias",
        value_name = "ALIAS"
    )]
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
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
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
    let restart = RestartPolicy::parse(&args.restart).ok_or_else(|| {
        anyhow::anyhow!(
            "invalid --restart {:?}: expected no, on-failure[:N], always or unless-stopped",
            args.restart
        )
    })?;
    if let Some(signal) = &args.stop_signal {
        if engine::parse_signal(signal).is_none() {
            bail!("invalid --stop-signal {signal:?}: expected a signal name or number");
        }
    }
    if !args.detach && restart != RestartPolicy::No {
        bail!("--restart applies to detached containers: add -d");
    }
    let detach_keys = detach_keys(&args.detach_keys)?;
    let mut attach = Vec::new();
    let mut attach_stdin = args.attach.is_empty();
    for stream in &args.attach {
        match stream.to_ascii_lowercase().as_str() {
            "stdout" => attach.push(Stream::Stdout),
            "stderr" => attach.push(Stream::Stderr),
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
        network: NetworkRequest {
            mode: NetworkMode::parse(&args.network),
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
    let settings = Settings {
        restart,
        stop_signal: args.stop_signal.clone(),
        stop_timeout: args.stop_timeout,
        auto_remove: args.rm,
        labels: engine::parse_labels(&args.labels)?,
        anonymous_volumes: Vec::new(),
        network: Default::default(),
        interactive: args.interactive,
        log: LogConfig::parse(args.log_driver.as_deref(), &args.log_opts)?,
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
    engine::check_run_options(&options, &settings).map_err(exit_with)?;
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
fn health_flags(args: &RunArgs) -> Result<HealthFlags> {
    let duration = |flag: &str, text: &Option<String>| -> Result<Option<std::time::Duration>> {
        let Some(text) = text else { return Ok(None) };
        let nanos = engine::parse_duration(text).ok_or_else(|| {
            anyhow::anyhow!(
                "invalid --{flag} {text:?}: expected a duration such as 500ms, 10s or 1m"
            )
        })?;
        if nanos != 0 && nanos < 1_000_000 {
            bail!("invalid --{flag} {text:?}: it cannot be less than 1ms");
        }
        Ok(Some(std::time::Duration::from_nanos(nanos)))
    };
    let flags = HealthFlags {
        cmd: args.health_cmd.clone().filter(|c| !c.is_empty()),
        interval: duration("health-interval", &args.health_interval)?,
        timeout: duration("health-timeout", &args.health_timeout)?,
        start_period: duration("health-start-period", &args.health_start_period)?,
        start_interval: duration("health-start-interval", &args.health_start_interval)?,
        retries: args.health_retries,
        disabled: false,
    };
    if args.no_healthcheck {
        if flags != HealthFlags::default() {
            bail!("--no-healthcheck conflicts with --health-* options");
        }
        return Ok(HealthFlags {
            disabled: true,
            ..flags
        });
    }
    Ok(flags)
}

/// `lade create`: a container made as `lade run` makes it, not started.
pub fn create(store_config: &StoreConfig, mut args: RunArgs) -> Result<ExitCode> {
    args.create_only = true;
    run(store_config, args)
}
