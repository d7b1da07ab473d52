//! The verbs on containers that exist: `start`, `attach`, `stop`, `restart`, `kill`,
//! `wait`, `pause`, `unpause`, `rm`, `rename` and `container prune`.

use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;

use super::{
    container_exit, detach_keys, each_container, each_item, exit_with, open_store, ContainersArgs,
    StoreConfig, Tell, DEFAULT_DETACH_KEYS,
};
use crate::engine::{
    self, AttachRequest, EngineError, KillRequest, PauseRequest, RemoveRequest, RenameRequest,
    StartAttached, StopRequest,
};

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
        // Docker starts them one after the other.
        let store = open_store(store_config)?;
        return Ok(each_item(&args.containers, |reference| {
            engine::start_detached(&store, reference, &Tell)?;
            println!("{reference}");
            Ok::<_, EngineError>(())
        }));
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
    let request = AttachRequest {
        container: args.container,
        stdin: !args.no_stdin,
        sig_proxy: args.sig_proxy,
        detach_keys: detach_keys(&args.detach_keys)?,
    };
    let result = (|| -> Result<i32> {
        let store = open_store(store_config)?;
        engine::attach(&store, &request).map_err(exit_with)
    })();
    Ok(container_exit(result))
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait for the stop signal before SIGKILL; -1 waits as long as it
    /// takes [default: the container's --stop-timeout, else 10]
    #[arg(
        short = 't',
        long = "timeout",
        visible_alias = "time",
        value_name = "SECONDS",
        allow_negative_numbers = true
    )]
    pub timeout: Option<i64>,
    /// Signal to send first [default: the container's --stop-signal, else the image's
    /// STOPSIGNAL, else SIGTERM]
    #[arg(short, long, value_name = "SIGNAL")]
    pub signal: Option<String>,
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

/// A signal as Docker reads it (a name, with or without SIG, or a number).
fn signal(text: &str) -> Result<engine::SignalNumber> {
    engine::parse_signal(text).ok_or_else(|| anyhow::anyhow!("invalid signal: {text}"))
}

/// `lade stop`: the stop signal, then SIGKILL after the timeout.
pub fn stop(store_config: &StoreConfig, args: StopArgs) -> Result<ExitCode> {
    let signal = args.signal.as_deref().map(signal).transpose()?;
    each_container(store_config, &args.containers, false, |store, reference| {
        let request = StopRequest {
            container: reference.to_string(),
            timeout: args.timeout,
            signal,
        };
        engine::stop(store, &request).map(drop)
    })
}

/// `lade restart`: stop, then start.
pub fn restart(store_config: &StoreConfig, args: StopArgs) -> Result<ExitCode> {
    let signal = args.signal.as_deref().map(signal).transpose()?;
    each_container(store_config, &args.containers, false, |store, reference| {
        let request = StopRequest {
            container: reference.to_string(),
            timeout: args.timeout,
            signal,
        };
        engine::restart(store, &request, &Tell).map(drop)
    })
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send: a name (KILL, SIGTERM, RTMIN+3) or a number
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

pub fn kill(store_config: &StoreConfig, args: KillArgs) -> Result<ExitCode> {
    let signal = signal(&args.signal)?;
    each_container(store_config, &args.containers, false, |store, reference| {
        let request = KillRequest {
            container: reference.to_string(),
            signal,
        };
        engine::kill(store, &request).map(drop)
    })
}

/// `lade wait`: prints each container's exit code once it stops.
pub fn wait(store_config: &StoreConfig, args: ContainersArgs) -> Result<ExitCode> {
    let store = open_store(store_config)?;
    Ok(each_item(&args.containers, |reference| {
        let code = engine::wait(&store, reference)?;
        println!("{code}");
        Ok::<_, EngineError>(())
    }))
}

pub fn pause(store_config: &StoreConfig, args: ContainersArgs, paused: bool) -> Result<ExitCode> {
    each_container(store_config, &args.containers, false, |store, reference| {
        let request = PauseRequest {
            container: reference.to_string(),
            paused,
        };
        engine::pause(store, &request).map(drop)
    })
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

/// `lade rm`: with `-f`, a container that does not exist is no error (Docker's
/// `rm -f` says nothing of it).
pub fn rm(store_config: &StoreConfig, args: RmArgs) -> Result<ExitCode> {
    each_container(
        store_config,
        &args.containers,
        args.force,
        |store, reference| {
            let request = RemoveRequest {
                container: reference.to_string(),
                force: args.force,
                volumes: args.volumes,
            };
            engine::remove(store, &request).map(drop)
        },
    )
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
    let request = RenameRequest {
        container: args.container,
        name: args.name,
    };
    engine::rename(&store, &request)?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Only containers made before a time (until=24h, until=2024-01-01T00:00:00Z) or
    /// with (label=KEY[=VALUE]) or without (label!=KEY[=VALUE]) a label
    #[arg(long, value_name = "FILTER")]
    pub filter: Vec<String>,
}

/// `lade container prune`: removes every container that does not run.
pub fn prune(store_config: &StoreConfig, args: PruneArgs) -> Result<ExitCode> {
    let filters = engine::PruneFilters::parse(&args.filter, &["until", "label"])?;
    if !crate::cli::confirm::confirm(
        "WARNING! This will remove all stopped containers.\nAre you sure you want to continue?",
        args.force,
    )? {
        return Ok(ExitCode::SUCCESS);
    }
    let store = open_store(store_config)?;
    let removed = engine::prune_containers(&store, &filters)?;
    crate::cli::render::print_pruned("Containers", "", &removed, Some("containers"));
    Ok(ExitCode::SUCCESS)
}
