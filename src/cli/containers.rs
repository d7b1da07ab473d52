//! `lade run`, `ps`, `rm`, and the commands on containers that live on: `start`,
//! `stop`, `restart`, `kill`, `wait`, `logs`, `pause`, `unpause`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use serde_json::json;

use super::{human_age, open_store, print_table, Format};
use crate::container::{self, RunOptions};
use crate::exec::{Limits, Network};
use crate::graph::parse_size;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NetworkArg {
    /// A network namespace of its own with only loopback (the default: lade has no
    /// bridge network)
    None,
    /// The host's network
    Host,
}

#[derive(Debug, Args)]
#[command(trailing_var_arg = true)]
pub struct RunArgs {
    /// Run in the background under a monitor of its own, and print the container's id
    #[arg(short = 'd', long)]
    pub detach: bool,
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
    /// Network
    #[arg(long, value_enum, default_value = "none")]
    pub network: NetworkArg,
    /// Hostname [default: the start of the container id]
    #[arg(long)]
    pub hostname: Option<String>,
    /// Mount a host path or a named volume (HOST:CONTAINER[:ro])
    #[arg(short = 'v', long = "volume", value_name = "SOURCE:TARGET[:ro]")]
    pub volumes: Vec<String>,
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
    /// The image
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// The command and its arguments (replacing the image's CMD)
    #[arg(value_name = "COMMAND", allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// `lade run`: the exit code is the container's; 125 when lade itself fails, 126 when
/// the command cannot be run, 127 when it is not found (as Docker).
pub fn run(root: Option<PathBuf>, args: RunArgs) -> Result<ExitCode> {
    let result = (|| -> Result<i32> {
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
        if args.detach && (args.interactive || args.tty) {
            bail!("-d with -i or -t needs `lade attach`, which is not supported yet");
        }
        // Mounts made for the container must not outlive it: a namespace of our own.
        crate::exec::mounts::private_mount_namespace()?;
        let store = open_store(root)?;
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
            network: match args.network {
                NetworkArg::None => Network::Isolated,
                NetworkArg::Host => Network::Host,
            },
            hostname: args.hostname.clone(),
            volumes: args.volumes.clone(),
            read_only: args.read_only,
            limits: Limits {
                memory,
                cpus: args.cpus,
                pids: args.pids_limit,
            },
            init: args.init,
            remove: args.rm && !args.detach,
        };
        let exit_with = |e: container::ContainerError| {
            let code = e.exit_code();
            anyhow::Error::new(e).context(ExitWith(code))
        };
        if args.detach {
            let settings = container::Settings {
                restart,
                stop_signal: args.stop_signal.clone(),
                stop_timeout: args.stop_timeout,
                auto_remove: args.rm,
            };
            let (id, _) =
                container::create_container(&store, &options, &settings).map_err(exit_with)?;
            let id = container::start_detached(&store, &id).map_err(exit_with)?;
            println!("{id}");
            return Ok(0);
        }
        container::run(&store, &options).map_err(|e| {
            let code = e.exit_code();
            anyhow::Error::new(e).context(ExitWith(code))
        })
    })();
    match result {
        Ok(code) => Ok(ExitCode::from(code.clamp(0, 255) as u8)),
        Err(err) => {
            let code = err.downcast_ref::<ExitWith>().map_or(125, |c| c.0);
            eprintln!("lade: {}", super::printable(&err.root_cause().to_string()));
            Ok(ExitCode::from(code.clamp(0, 255) as u8))
        }
    }
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
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

pub fn ps(root: Option<PathBuf>, args: PsArgs) -> Result<ExitCode> {
    let store = super::open_store_read_only(root)?;
    let containers: Vec<_> = store
        .containers()?
        .into_iter()
        .filter(|c| {
            args.all
                || matches!(
                    container::current_state(c),
                    "running" | "paused" | "restarting"
                )
        })
        .collect();
    if args.quiet {
        for c in &containers {
            println!("{}", &c.id[..12]);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.format == Format::Json {
        let rows: Vec<_> = containers
            .iter()
            .map(|c| {
                // RFC 3339, as every time in lade's (and Docker's) JSON.
                let created = jiff::Timestamp::from_second(c.created)
                    .map(|t| t.to_string())
                    .unwrap_or_default();
                let pid = container::running_init(c).map(|init| init.pid);
                json!({ "ID": c.id, "Name": c.name, "Image": c.image_name, "ImageID": c.image.to_string(), "Created": created, "State": container::current_state(c), "Status": docker_status(c), "ExitCode": c.exit_code, "Pid": pid })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = containers
        .iter()
        .map(|c| {
            let created = jiff::Timestamp::from_second(c.created)
                .map(|t| t.to_string())
                .ok();
            let status = docker_status(c);
            vec![
                c.id[..12].to_string(),
                c.image_name.clone(),
                human_age(created.as_deref()),
                status,
                c.name.clone(),
            ]
        })
        .collect();
    print_table(
        &["CONTAINER ID", "IMAGE", "CREATED", "STATUS", "NAMES"],
        &rows,
    );
    Ok(ExitCode::SUCCESS)
}

/// STATUS as `docker ps` says it: `Up 3 seconds`, `Up 5 seconds (Paused)`,
/// `Exited (137) 2 seconds ago`, `Restarting (1) 1 second ago`, `Created`, `Dead`.
fn docker_status(record: &crate::store::ContainerRecord) -> String {
    let since = |time: &Option<String>| {
        let seconds = time
            .as_deref()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map_or(0, |t| jiff::Timestamp::now().as_second() - t.as_second());
        super::human_duration(seconds)
    };
    let code = record.exit_code.unwrap_or(0);
    match container::current_state(record) {
        "running" => format!("Up {}", since(&record.started_at)),
        "paused" => format!("Up {} (Paused)", since(&record.started_at)),
        "exited" => format!("Exited ({code}) {} ago", since(&record.finished_at)),
        "restarting" => format!("Restarting ({code}) {} ago", since(&record.finished_at)),
        "created" => "Created".into(),
        "dead" => "Dead".into(),
        other => other.to_string(),
    }
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Kill and remove a running container
    #[arg(short, long)]
    pub force: bool,
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

pub fn rm(root: Option<PathBuf>, args: RmArgs) -> Result<ExitCode> {
    let store = open_store(root)?;
    Ok(super::each_item(&args.containers, |reference| {
        let name = container::remove(&store, reference, args.force)?;
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
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// `lade start`: each container runs again, detached, its files kept.
pub fn start(root: Option<PathBuf>, args: ContainersArgs) -> Result<ExitCode> {
    let store = open_store(root)?;
    Ok(super::each_item(&args.containers, |reference| {
        container::start_detached(&store, reference)?;
        println!("{reference}");
        Ok::<_, container::ContainerError>(())
    }))
}

/// `lade stop`: the stop signal, then SIGKILL after the timeout.
pub fn stop(root: Option<PathBuf>, args: StopArgs) -> Result<ExitCode> {
    let store = open_store(root)?;
    Ok(super::each_item(&args.containers, |reference| {
        container::stop(&store, reference, args.time)?;
        println!("{reference}");
        Ok::<_, container::ContainerError>(())
    }))
}

/// `lade restart`: stop, then start.
pub fn restart(root: Option<PathBuf>, args: StopArgs) -> Result<ExitCode> {
    let store = open_store(root)?;
    Ok(super::each_item(&args.containers, |reference| {
        container::stop(&store, reference, args.time)?;
        container::start_detached(&store, reference)?;
        println!("{reference}");
        Ok::<_, container::ContainerError>(())
    }))
}

pub fn kill(root: Option<PathBuf>, args: KillArgs) -> Result<ExitCode> {
    let signal = container::parse_signal(&args.signal)
        .ok_or_else(|| anyhow::anyhow!("invalid signal {:?}", args.signal))?;
    let store = open_store(root)?;
    Ok(super::each_item(&args.containers, |reference| {
        container::kill(&store, reference, signal)?;
        println!("{reference}");
        Ok::<_, container::ContainerError>(())
    }))
}

/// `lade wait`: prints each container's exit code once it stops.
pub fn wait(root: Option<PathBuf>, args: ContainersArgs) -> Result<ExitCode> {
    let store = open_store(root)?;
    Ok(super::each_item(&args.containers, |reference| {
        let code = container::wait(&store, reference)?;
        println!("{code}");
        Ok::<_, container::ContainerError>(())
    }))
}

pub fn pause(root: Option<PathBuf>, args: ContainersArgs, paused: bool) -> Result<ExitCode> {
    let store = open_store(root)?;
    Ok(super::each_item(&args.containers, |reference| {
        container::pause(&store, reference, paused)?;
        println!("{reference}");
        Ok::<_, container::ContainerError>(())
    }))
}

pub fn logs(root: Option<PathBuf>, args: LogsArgs) -> Result<ExitCode> {
    let store = super::open_store_read_only(root)?;
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
pub fn exec(root: Option<PathBuf>, args: ExecArgs) -> Result<ExitCode> {
    let result = (|| -> Result<i32> {
        let store = open_store(root)?;
        let options = container::ExecOptions {
            args: args.command.clone(),
            env: args.env.clone(),
            env_files: args.env_files.clone(),
            user: args.user.clone(),
            workdir: args.workdir.clone(),
            interactive: args.interactive,
            tty: args.tty,
        };
        container::exec_in(&store, &args.container, &options).map_err(|e| {
            let code = e.exit_code();
            anyhow::Error::new(e).context(ExitWith(code))
        })
    })();
    match result {
        Ok(code) => Ok(ExitCode::from(code.clamp(0, 255) as u8)),
        Err(err) => {
            let code = err.downcast_ref::<ExitWith>().map_or(125, |c| c.0);
            eprintln!("lade: {}", super::printable(&err.root_cause().to_string()));
            Ok(ExitCode::from(code.clamp(0, 255) as u8))
        }
    }
}
