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
            let request = VolumeCreateRequest {
                labels: engine::parse_labels(&args.labels)?,
                name: args.name,
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
            let format = ListFormat::parse(&args.format)?;
            let rows: Vec<serde_json::Value> = volumes.iter().map(|v| v.details.clone()).collect();
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
            let store = open_store(store_config)?;
            let removed = engine::prune_volumes(&store, args.all)?;
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
