//! `lade system`: the store as a whole (`check`, `df`, `prune`), and `lade info` and
//! `lade version`.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::json;

use super::StoreConfig;
use super::{open_store, Format};
use crate::container::ContainerState;
use crate::store::CheckOptions;

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
}

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
    /// Accepted for Docker compatibility: lade never asks for confirmation
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
    }
}

/// What one kind of thing takes.
struct Space {
    kind: &'static str,
    total: usize,
    active: usize,
    size: u64,
    reclaimable: u64,
}

fn df(store_config: &StoreConfig, args: DfArgs) -> Result<ExitCode> {
    let store = super::open_store_read_only(store_config)?;
    let containers = store.containers()?;
    let active = containers
        .iter()
        .map(|c| Ok(ContainerState::current(c)?.is_active()))
        .collect::<Result<Vec<bool>, crate::container::ContainerError>>()?;
    // Images, once per id.
    let mut images: std::collections::BTreeMap<String, (u64, bool)> = Default::default();
    for summary in store.list_images()? {
        let used = containers.iter().any(|c| c.image == summary.id);
        images.insert(summary.id.to_string(), (summary.size, used));
    }
    let image_space = Space {
        kind: "Images",
        total: images.len(),
        active: images.values().filter(|(_, used)| *used).count(),
        size: images.values().map(|(size, _)| size).sum(),
        reclaimable: images
            .values()
            .filter(|(_, used)| !used)
            .map(|(s, _)| s)
            .sum(),
    };
    let container_sizes: Vec<(String, u64, bool)> = containers
        .iter()
        .zip(&active)
        .map(|(c, active)| {
            let upper = store.root().join("containers").join(&c.id).join("upper");
            (c.name.clone(), crate::store::dir_size(&upper), *active)
        })
        .collect();
    let container_space = Space {
        kind: "Containers",
        total: containers.len(),
        active: active.iter().filter(|a| **a).count(),
        size: container_sizes.iter().map(|(_, s, _)| s).sum(),
        reclaimable: container_sizes
            .iter()
            .filter(|(_, _, r)| !r)
            .map(|(_, s, _)| s)
            .sum(),
    };
    let mut volume_sizes = Vec::new();
    for volume in store.volumes()? {
        let used = !crate::container::volume_users(&store, &volume.name)?.is_empty();
        volume_sizes.push((
            volume.name.clone(),
            crate::store::dir_size(&store.volume_data(&volume.name)),
            used,
        ));
    }
    let volume_space = Space {
        kind: "Local Volumes",
        total: volume_sizes.len(),
        active: volume_sizes.iter().filter(|(_, _, u)| *u).count(),
        size: volume_sizes.iter().map(|(_, s, _)| s).sum(),
        reclaimable: volume_sizes
            .iter()
            .filter(|(_, _, u)| !u)
            .map(|(_, s, _)| s)
            .sum(),
    };
    let cache = store.cache_usage()?;
    let cache_space = Space {
        kind: "Build Cache",
        total: cache.records as usize,
        active: 0,
        size: cache.layers.1 + cache.cache_mounts.1 + cache.context_hashes.1,
        reclaimable: cache.layers.1 + cache.cache_mounts.1 + cache.context_hashes.1,
    };
    let spaces = [image_space, container_space, volume_space, cache_space];
    let rows: Vec<serde_json::Value> = spaces
        .iter()
        .map(|s| {
            let percent = (s.reclaimable * 100).checked_div(s.size).unwrap_or(0);
            json!({
                "Type": s.kind,
                "TotalCount": s.total,
                "Active": s.active,
                "Size": super::human_size(s.size),
                "Reclaimable": format!("{} ({percent}%)", super::human_size(s.reclaimable)),
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
        super::print_table(&["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], &table);
        if args.verbose {
            println!("\nContainers space usage:\n");
            let rows: Vec<Vec<String>> = container_sizes
                .iter()
                .map(|(name, size, _)| vec![name.clone(), super::human_size(*size)])
                .collect();
            super::print_table(&["NAMES", "SIZE"], &rows);
            println!("\nLocal Volumes space usage:\n");
            let rows: Vec<Vec<String>> = volume_sizes
                .iter()
                .map(|(name, size, _)| vec![name.clone(), super::human_size(*size)])
                .collect();
            super::print_table(&["VOLUME NAME", "SIZE"], &rows);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn prune(store_config: &StoreConfig, args: SystemPruneArgs) -> Result<ExitCode> {
    let store = super::open_store(store_config)?;
    let containers = crate::container::prune(&store)?;
    println!("Deleted containers: {}", containers.len());
    let remaining = store.containers()?;
    let mut images = 0;
    for summary in store.list_images()? {
        let dangling = summary.tag.is_none();
        let used = remaining.iter().any(|c| c.image == summary.id);
        if (dangling || args.all) && !used {
            let reference = summary
                .tag
                .clone()
                .unwrap_or_else(|| summary.id.to_string());
            if store.remove_image(&reference, true).is_ok() {
                images += 1;
            }
        }
    }
    println!("Deleted images: {images}");
    if args.volumes {
        let volumes = crate::container::prune_volumes(&store, false)?;
        println!("Deleted volumes: {}", volumes.len());
    }
    let report = store.prune_cache(&crate::store::PruneOptions::default())?;
    println!("Deleted build cache records: {}", report.records);
    if let Some(gc) = report.gc {
        println!("Total reclaimed space: {}", super::human_size(gc.bytes));
    }
    Ok(ExitCode::SUCCESS)
}

/// `lade info`: the store, what it holds, and what this machine offers.
pub fn info(store_config: &StoreConfig, args: InfoArgs) -> Result<ExitCode> {
    let store = super::open_store_read_only(store_config)?;
    let containers = store.containers()?;
    let states = containers
        .iter()
        .map(ContainerState::current)
        .collect::<Result<Vec<_>, _>>()?;
    let count = |state: ContainerState| states.iter().filter(|s| **s == state).count();
    let images: std::collections::BTreeSet<_> =
        store.list_images()?.into_iter().map(|s| s.id).collect();
    let layout = crate::exec::CgroupLayout::detect();
    let cgroup_version = match &layout.unified {
        Some((_, controllers)) if !controllers.is_empty() && layout.v1.is_empty() => "2",
        Some(_) if !layout.v1.is_empty() => "1 (hybrid: v2 mounted, v1 controllers)",
        Some(_) => "2",
        None => "1",
    };
    let uname = nix::sys::utsname::uname()?;
    let (available, total) = crate::store::filesystem_space(store.root()).unwrap_or((0, 0));
    let info = json!({
        "ID": "lade",
        "ServerVersion": env!("CARGO_PKG_VERSION"),
        "Containers": containers.len(),
        "ContainersRunning": count(ContainerState::Running),
        "ContainersPaused": count(ContainerState::Paused),
        "ContainersStopped": states.iter().filter(|s| s.is_stopped()).count(),
        "Images": images.len(),
        "Driver": "overlay",
        "DockerRootDir": store.root(),
        "CgroupVersion": cgroup_version,
        "CgroupControllers": layout.v1.keys().collect::<Vec<_>>(),
        "KernelVersion": uname.release().to_string_lossy(),
        "OperatingSystem": uname.sysname().to_string_lossy(),
        "Architecture": uname.machine().to_string_lossy(),
        "NCPU": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "SecurityOptions": ["name=seccomp,profile=builtin", "name=no-new-privileges"],
        "StorageAvailable": available,
        "StorageTotal": total,
        "StorageReserve": store.reserve(),
        "Rootless": !nix::unistd::geteuid().is_root(),
    });
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
    let version = json!({
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": "none (no daemon)",
        "Os": std::env::consts::OS,
        "Arch": std::env::consts::ARCH,
    });
    match args.format.as_str() {
        "json" => println!("{}", serde_json::to_string_pretty(&version)?),
        "text" | "" => println!(
            "lade version {} ({}/{})",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::OS,
            std::env::consts::ARCH
        ),
        template => println!(
            "{}",
            super::template::Format::parse(template)?.render(&version)?
        ),
    }
    Ok(ExitCode::SUCCESS)
}

fn check(store_config: &StoreConfig, args: CheckArgs) -> Result<ExitCode> {
    let store = open_store(store_config)?;
    let fingerprint = |dir: &std::path::Path| {
        crate::layers::fingerprint(dir).map_err(crate::store::FingerprintError::from)
    };
    let snapshot_users = || crate::container::snapshot_users(&store);
    let report = store.check(&CheckOptions {
        quick: args.quick,
        repair: args.repair,
        fingerprint: &fingerprint,
        snapshot_users: &snapshot_users,
    })?;
    let problems: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "Images": report.images,
                "BlobsHashed": report.blobs,
                "SnapshotsChecked": report.snapshots,
                "SnapshotsUnrecorded": report.unrecorded_snapshots,
                "Problems": problems,
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
