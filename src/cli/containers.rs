//! `lade run`, `ps` and `rm`.

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
            remove: args.rm,
        };
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
        .filter(|c| args.all || container::current_state(c) == "running")
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
                json!({ "ID": c.id, "Name": c.name, "Image": c.image_name, "ImageID": c.image.to_string(), "Created": created, "State": container::current_state(c), "ExitCode": c.exit_code })
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
            let status = match (container::current_state(c), c.exit_code) {
                ("exited", Some(code)) => format!("Exited ({code})"),
                (state, _) => state.to_string(),
            };
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
