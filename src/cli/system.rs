//! `lade system`: the store as a whole (`check`, `df`, `prune`, `reset`), and `lade info` and
//! `lade version`.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::json;

use super::StoreConfig;
use super::{human_size, open_store, print_table, Format};
use crate::engine::{self, CheckRequest, PruneRequest, Pruned};

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Check the store: re-hash every blob, follow every reference from the tags to
    /// manifests, configs and layers, and compare every snapshot with what it held when
    /// it was made, and find what containers left without a record (directories,
    /// reserved addresses). Each problem names its digest and the images it touches;
    /// the exit code is 1 when there is any (0 with --repair, which mends them all)
    Check(CheckArgs),
    /// Show the space images, containers, volumes and the build cache take, and what
    /// could be reclaimed
    Df(DfArgs),
    /// Remove stopped containers, dangling images (every unused one with --all), the
    /// build cache, and with --volumes unused anonymous volumes
    Prune(SystemPruneArgs),
    /// Remove everything the store holds: every container (running ones killed), image,
    /// volume and network, the build cache, and what the store made on the host (its
    /// networks' bridges and firewall rules, its aardvark-dns). podman's command; Docker
    /// has none
    Reset(ResetArgs),
    /// Rootless: stop the pause process that holds the user's namespace, so that the
    /// next command makes a new one (after a change to /etc/subuid, say); refused while
    /// containers run. podman's command; Docker has none
    Migrate(MigrateArgs),
    /// Show the store, what it holds and what this machine offers (`lade info`)
    Info(InfoArgs),
    /// Show what happens to containers, images, networks and volumes (`lade events`)
    Events(super::events::EventsArgs),
}

#[derive(Debug, Args)]
pub struct MigrateArgs {}

#[derive(Debug, Args)]
pub struct DfArgs {
    /// One line per image, container and volume too
    #[arg(short, long)]
    pub verbose: bool,
    /// Output format: table, json, or a Go template (`{{.Type}} {{.Size}}`)
    #[arg(long, default_value = "table")]
    pub format: String,
}

#[derive(Debug, Args)]
pub struct SystemPruneArgs {
    /// Every image no container uses, not only untagged ones
    #[arg(short, long)]
    pub all: bool,
    /// Unused anonymous volumes too
    #[arg(long)]
    pub volumes: bool,
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Only what was made before a time (until=24h) or has (label=KEY[=VALUE]) or lacks
    /// (label!=KEY[=VALUE]) a label
    #[arg(long, value_name = "FILTER")]
    pub filter: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ResetArgs {
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Output format: text, json, or a Go template (`{{.Containers}}`)
    #[arg(short, long, default_value = "text")]
    pub format: String,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// References and sizes only: no blob is re-hashed and no snapshot read
    #[arg(long)]
    pub quick: bool,
    /// Remove corrupt snapshots (remade from their layers when next needed), corrupt
    /// blobs, and the images and cached steps that needed them; remove container
    /// directories and release addresses that have no container. A good blob is never
    /// removed
    #[arg(long)]
    pub repair: bool,
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

pub fn run(store_config: &StoreConfig, command: SystemCommand) -> Result<ExitCode> {
    match command {
        SystemCommand::Check(args) => check(store_config, args),
        SystemCommand::Df(args) => df(store_config, args),
        SystemCommand::Prune(args) => prune(store_config, args),
        SystemCommand::Reset(args) => reset(store_config, args),
        SystemCommand::Migrate(_) => migrate(store_config),
        SystemCommand::Info(_) | SystemCommand::Events(_) => {
            unreachable!(
                "`system info` and `system events` are turned into `info` and `events` first"
            )
        }
    }
}

fn df(store_config: &StoreConfig, args: DfArgs) -> Result<ExitCode> {
    let store = super::open_store_read_only(store_config)?;
    let usage = engine::df(&store)?;
    let rows: Vec<serde_json::Value> = usage
        .spaces
        .iter()
        .map(|s| {
            let percent = (s.reclaimable * 100).checked_div(s.size).unwrap_or(0);
            json!({
                "Type": s.kind,
                "TotalCount": s.total,
                "Active": s.active,
                "Size": human_size(s.size),
                "Reclaimable": format!("{} ({percent}%)", human_size(s.reclaimable)),
            })
        })
        .collect();
    let format = super::ListFormat::parse(&args.format)?;
    if !format.print(&rows)? {
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r["Type"].as_str().unwrap_or_default().to_string(),
                    r["TotalCount"].to_string(),
                    r["Active"].to_string(),
                    r["Size"].as_str().unwrap_or_default().to_string(),
                    r["Reclaimable"].as_str().unwrap_or_default().to_string(),
                ]
            })
            .collect();
        print_table(&["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], &table);
        if args.verbose {
            let sizes = |usages: &[engine::Usage]| -> Vec<Vec<String>> {
                usages
                    .iter()
                    .map(|u| vec![u.name.clone(), human_size(u.size)])
                    .collect()
            };
            println!("\nContainers space usage:\n");
            print_table(&["NAMES", "SIZE"], &sizes(&usage.containers));
            println!("\nLocal Volumes space usage:\n");
            print_table(&["VOLUME NAME", "SIZE"], &sizes(&usage.volumes));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn prune(store_config: &StoreConfig, args: SystemPruneArgs) -> Result<ExitCode> {
    let filters = engine::PruneFilters::parse(&args.filter, &["until", "label"])?;
    if args.volumes && filters.until.is_some() {
        anyhow::bail!("ERROR: The \"until\" filter is not supported with \"--volumes\"");
    }
    if !super::confirm::confirm(&system_prune_warning(&args), args.force)? {
        return Ok(ExitCode::SUCCESS);
    }
    let store = super::open_store(store_config)?;
    let request = PruneRequest {
        all: args.all,
        volumes: args.volumes,
        filters,
    };
    let report = engine::prune(&store, request, &|pruned| match pruned {
        Pruned::Containers(n) => println!("Deleted containers: {n}"),
        Pruned::Images(n) => println!("Deleted images: {n}"),
        Pruned::Networks(n) => println!("Deleted networks: {n}"),
        Pruned::Volumes(n) => println!("Deleted volumes: {n}"),
    })?;
    println!("Deleted build cache records: {}", report.records);
    if let Some(gc) = report.gc {
        println!("Total reclaimed space: {}", human_size(gc.bytes));
    }
    Ok(ExitCode::SUCCESS)
}

fn reset(store_config: &StoreConfig, args: ResetArgs) -> Result<ExitCode> {
    let question = "WARNING! This will remove all containers, images, volumes, networks and the \
                    build cache of this store, with its networks' bridges and firewall rules.\n\
                    Are you sure you want to continue?";
    if !super::confirm::confirm(question, args.force)? {
        return Ok(ExitCode::SUCCESS);
    }
    let store = super::open_store(store_config)?;
    let report = engine::reset(&store)?;
    println!("Deleted containers: {}", report.containers);
    println!("Deleted images: {}", report.images);
    println!("Deleted volumes: {}", report.volumes);
    println!("Deleted networks: {}", report.networks);
    Ok(ExitCode::SUCCESS)
}

fn migrate(store_config: &StoreConfig) -> Result<ExitCode> {
    let store = super::open_store(store_config)?;
    if let Some(pid) = engine::migrate(&store)? {
        eprintln!("stopped the pause process {pid}: the next command makes a new namespace");
    }
    Ok(ExitCode::SUCCESS)
}

/// Docker's question before `system prune`: what it will remove, and the filters.
fn system_prune_warning(args: &SystemPruneArgs) -> String {
    let mut items = vec![
        "all stopped containers",
        "all networks not used by at least one container",
    ];
    if args.volumes {
        items.push("all anonymous volumes not used by at least one container");
    }
    items.push(if args.all {
        "all images without at least one container associated to them"
    } else {
        "all dangling images"
    });
    items.push(if args.all {
        "all build cache"
    } else {
        "unused build cache"
    });
    let mut text = String::from("WARNING! This will remove:");
    for item in items {
        text.push_str(&format!("\n  - {item}"));
    }
    text.push('\n');
    if !args.filter.is_empty() {
        text.push_str("\n  Items to be pruned will be filtered with:");
        for filter in &args.filter {
            text.push_str(&format!("\n  - {filter}"));
        }
        text.push('\n');
    }
    text.push_str("\nAre you sure you want to continue?");
    text
}

/// `lade info`: the store, what it holds, and what this machine offers.
pub fn info(store_config: &StoreConfig, args: InfoArgs) -> Result<ExitCode> {
    let store = super::open_store_read_only(store_config)?;
    let found = engine::info(&store)?;
    let mut info = json!({
        "ID": "lade",
        "ServerVersion": env!("CARGO_PKG_VERSION"),
        "Containers": found.containers,
        "ContainersRunning": found.running,
        "ContainersPaused": found.paused,
        "ContainersStopped": found.stopped,
        "Images": found.images,
        "Driver": found.driver,
        "DockerRootDir": found.root,
        "CgroupVersion": found.cgroup_version,
        "CgroupControllers": found.cgroup_controllers,
        "KernelVersion": found.kernel,
        "OperatingSystem": found.os,
        "Architecture": found.architecture,
        "NCPU": found.cpus,
        "SecurityOptions": ["name=seccomp,profile=builtin", "name=no-new-privileges"],
        "StorageAvailable": found.storage_available,
        "StorageTotal": found.storage_total,
        "StorageReserve": found.storage_reserve,
        "Rootless": found.rootless,
    });
    if found.rootless {
        let map = |entries: &[(u32, u32, u32)]| {
            entries
                .iter()
                .map(|(inside, outside, size)| {
                    json!({ "ContainerID": inside, "HostID": outside, "Size": size })
                })
                .collect::<Vec<_>>()
        };
        if let Some(fields) = info.as_object_mut() {
            fields.insert(
                "RootlessIDMappings".into(),
                json!({ "UIDMap": map(&found.uid_map), "GIDMap": map(&found.gid_map) }),
            );
            fields.insert("DriverStatus".into(), json!(found.overlay));
            fields.insert(
                "RootlessNetworkTool".into(),
                json!(found.network_tool.clone().unwrap_or_default()),
            );
            let cgroup = match &found.rootless_cgroup {
                Some(engine::RootlessCgroup::Delegated { dir, controllers }) => json!({
                    "Version": "2",
                    "Delegated": dir,
                    "Controllers": controllers,
                    "Limits": if controllers.is_empty() {
                        "none (the subtree has no controllers); pause works"
                    } else {
                        "those of its controllers; pause works"
                    },
                }),
                Some(engine::RootlessCgroup::Off { reason, scope }) => json!({
                    "Limits": if *scope {
                        "run -d: in a scope the user's systemd delegates; others: off"
                    } else {
                        "off"
                    },
                    "Reason": reason,
                }),
                None => json!(null),
            };
            fields.insert("RootlessCgroup".into(), cgroup);
        }
    }
    match args.format.as_str() {
        "json" => println!("{}", serde_json::to_string_pretty(&info)?),
        "text" | "" => {
            for (key, value) in info.as_object().into_iter().flatten() {
                let shown = match value {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                println!("{key}: {shown}");
            }
        }
        template => println!(
            "{}",
            super::template::Format::parse(template)?.render(&info)?
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// `lade version`.
pub fn version(args: InfoArgs) -> Result<ExitCode> {
    let (os, arch) = (std::env::consts::OS, std::env::consts::ARCH);
    let version = env!("CARGO_PKG_VERSION");
    // Docker's shape, so that `-f '{{.Client.Version}}'` and `{{.Server.Version}}` work
    // in scripts. With no daemon, the "server" is this same binary, as with podman.
    let client = json!({
        "Platform": { "Name": "lade" },
        "Version": version,
        "ApiVersion": "none (no daemon)",
        "Os": os,
        "Arch": arch,
        "Context": "default",
    });
    let server = json!({
        "Platform": { "Name": "lade (no daemon: each command does its own work)" },
        "Version": version,
        "Components": [{ "Name": "Engine", "Version": version }],
        "Os": os,
        "Arch": arch,
    });
    let shown = json!({ "Client": client, "Server": server });
    match args.format.as_str() {
        "json" => println!("{}", serde_json::to_string(&shown)?),
        "text" | "" => {
            println!("Client: lade");
            println!(" Version:      {version}");
            println!(" API version:  none (no daemon)");
            println!(" OS/Arch:      {os}/{arch}");
            println!(" Context:      default");
            println!();
            println!("Server: lade (no daemon: each command does its own work)");
            println!(" Engine:");
            println!("  Version:     {version}");
            println!("  OS/Arch:     {os}/{arch}");
        }
        template => println!(
            "{}",
            super::template::Format::parse(template)?.render(&shown)?
        ),
    }
    Ok(ExitCode::SUCCESS)
}

fn check(store_config: &StoreConfig, args: CheckArgs) -> Result<ExitCode> {
    let store = open_store(store_config)?;
    let engine::CheckOutcome {
        report,
        host_leftovers,
    } = engine::check(
        &store,
        CheckRequest {
            quick: args.quick,
            repair: args.repair,
        },
    )?;
    let problems: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
    let leftovers: Vec<String> = host_leftovers.iter().map(|p| p.to_string()).collect();
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "Images": report.images,
                "BlobsHashed": report.blobs,
                "SnapshotsChecked": report.snapshots,
                "SnapshotsUnrecorded": report.unrecorded_snapshots,
                "Problems": problems,
                "HostLeftovers": leftovers,
                "Repairs": report.repairs,
            }))?
        ),
        Format::Text => {
            for problem in &problems {
                println!("{}", super::printable(problem));
            }
            for repair in &report.repairs {
                println!("repaired: {repair}");
            }
            if !args.repair {
                for leftover in &leftovers {
                    eprintln!(
                        "warning: {} (`lade system check --repair` removes it)",
                        super::printable(leftover)
                    );
                }
            }
            let what = if args.quick {
                format!("{} image(s), references and sizes", report.images)
            } else {
                format!(
                    "{} image(s), {} blob(s) re-hashed, {} snapshot(s) compared",
                    report.images, report.blobs, report.snapshots
                )
            };
            let unrecorded = match report.unrecorded_snapshots {
                0 => String::new(),
                n => format!("; {n} snapshot(s) made by an older lade have no fingerprint"),
            };
            match problems.len() {
                0 => eprintln!(
                    "store {}: no problems ({what}{unrecorded})",
                    store.root().display()
                ),
                n => eprintln!(
                    "store {}: {n} problem(s) ({what}{unrecorded}){}",
                    store.root().display(),
                    if args.repair {
                        ""
                    } else {
                        "; --repair mends them"
                    }
                ),
            }
        }
    }
    // Every problem found is one --repair mends (by removing what is broken).
    Ok(if problems.is_empty() || args.repair {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
