//! `lade volume`: create, ls, inspect, rm, prune.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use super::{
    each_item, open_store, open_store_read_only, print_table, template, ListFormat, StoreConfig,
};
use crate::engine::{self, EngineError, VolumeCreateRequest, VolumeFilter, VolumeRemoveRequest};

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
    /// Volume driver: local (the only one)
    #[arg(short, long, default_value = "local")]
    pub driver: String,
    /// The local driver's options: type=tmpfs|none|nfs|..., o=MOUNT-OPTIONS,
    /// device=SOURCE; the file system is mounted when a container uses the volume
    #[arg(short, long = "opt", value_name = "KEY=VALUE")]
    pub opt: Vec<String>,
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
    /// dangling=true|false (whether a container uses it), name=REGEX,
    /// label=KEY[=VALUE], driver=local
    #[arg(short, long, value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Output format: table, json, or a Go template with Docker's fields (`{{.Name}}`,
    /// `.Driver`, `.Scope`, `.Mountpoint`, `.Labels`, `.Links`, `.Size`)
    #[arg(long, default_value = "table")]
    pub format: String,
}

/// A volume as a row of `volume ls --format`: Docker's fields, all strings (`Labels`
/// as `k=v,...`; what lade does not count is `N/A`, as Docker shows it unless asked for
/// sizes).
fn list_row(volume: &engine::Volume) -> serde_json::Value {
    let details = &volume.details;
    let text = |key: &str| details[key].as_str().unwrap_or_default().to_string();
    let labels = details["Labels"]
        .as_object()
        .map(|labels| {
            labels
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    serde_json::json!({
        "Availability": "N/A",
        "Driver": text("Driver"),
        "Group": "N/A",
        "Labels": labels,
        "Links": "N/A",
        "Mountpoint": details["Mountpoint"].as_str().map(str::to_string).unwrap_or_else(|| details["Mountpoint"].to_string()),
        "Name": volume.name,
        "Scope": text("Scope"),
        "Size": "N/A",
        "Status": "N/A",
        // For `{{.Label "k"}}`.
        crate::cli::template::LABELS: details["Labels"],
    })
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
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Only volumes with (label=KEY[=VALUE]) or without (label!=KEY[=VALUE]) a label
    #[arg(long, value_name = "FILTER")]
    pub filter: Vec<String>,
}

pub fn volume(store_config: &StoreConfig, command: VolumeCommand) -> Result<ExitCode> {
    match command {
        VolumeCommand::Create(args) => {
            let mut options = std::collections::BTreeMap::new();
            for opt in &args.opt {
                let Some((key, value)) = opt.split_once('=') else {
                    anyhow::bail!("invalid option {opt:?}: expected KEY=VALUE");
                };
                options.insert(key.to_string(), value.to_string());
            }
            let request = VolumeCreateRequest {
                labels: engine::parse_labels(&args.labels)?,
                name: args.name,
                driver: args.driver,
                options,
            };
            let store = open_store(store_config)?;
            println!("{}", engine::create_volume(&store, &request)?);
            Ok(ExitCode::SUCCESS)
        }
        VolumeCommand::Ls(args) => {
            let filters = args
                .filter
                .iter()
                .map(|f| VolumeFilter::parse(f))
                .collect::<engine::Result<Vec<_>>>()?;
            let store = open_store_read_only(store_config)?;
            let volumes = engine::list_volumes(&store, &filters)?;
            if args.quiet {
                for volume in &volumes {
                    println!("{}", volume.name);
                }
                return Ok(ExitCode::SUCCESS);
            }
            let format = ListFormat::parse_with_headers(&args.format, &[("Name", "VOLUME NAME")])?;
            let rows: Vec<serde_json::Value> = volumes.iter().map(list_row).collect();
            if !format.print(&rows)? {
                let table: Vec<Vec<String>> = volumes
                    .iter()
                    .map(|v| vec!["local".to_string(), v.name.clone()])
                    .collect();
                print_table(&["DRIVER", "VOLUME NAME"], &table);
            }
            Ok(ExitCode::SUCCESS)
        }
        VolumeCommand::Inspect(args) => {
            let store = open_store_read_only(store_config)?;
            let mut out = template::InspectOutput::new(args.format.as_deref())?;
            let code = each_item(&args.volumes, |name| {
                out.push(engine::inspect_volume(&store, name)?.details)
            });
            out.finish()?;
            Ok(code)
        }
        VolumeCommand::Rm(args) => {
            let store = open_store(store_config)?;
            Ok(each_item(&args.volumes, |name| {
                let request = VolumeRemoveRequest {
                    name: name.to_string(),
                    force: args.force,
                };
                engine::remove_volume(&store, &request)?;
                println!("{name}");
                Ok::<_, EngineError>(())
            }))
        }
        VolumeCommand::Prune(args) => {
            let filters = engine::PruneFilters::parse(&args.filter, &["label"])?;
            let question = if args.all {
                "WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue?"
            } else {
                "WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue?"
            };
            if !super::super::confirm::confirm(question, args.force)? {
                return Ok(ExitCode::SUCCESS);
            }
            let store = open_store(store_config)?;
            let removed = engine::prune_volumes(&store, args.all, &filters)?;
            crate::cli::render::print_pruned("Volumes", "", &removed, Some("volumes"));
            Ok(ExitCode::SUCCESS)
        }
    }
}
