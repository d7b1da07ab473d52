//! `lade network`: bridge networks (create, ls, inspect, rm, prune, connect,
//! disconnect), in Docker's words and shapes.

use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};

use super::StoreConfig;
use super::{open_store, print_table};
use crate::container;

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a bridge network (a free private subnet unless --subnet says)
    Create(CreateArgs),
    /// List networks
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Show networks as JSON (or through a --format template)
    Inspect(InspectArgs),
    /// Remove networks (refused while a container is on one)
    #[command(alias = "remove")]
    Rm(NamesArgs),
    /// Remove the user networks no container is on
    Prune(PruneArgs),
    /// Put a container on a network (at once when it runs, else at its next start)
    Connect(ConnectArgs),
    /// Take a container off a network
    Disconnect(DisconnectArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Driver: bridge (the only one)
    #[arg(short, long, default_value = "bridge")]
    pub driver: String,
    /// Subnet in CIDR form (10.89.7.0/24)
    #[arg(long)]
    pub subnet: Option<String>,
    /// Gateway address in the subnet [default: its first address]
    #[arg(long)]
    pub gateway: Option<String>,
    /// No route out: containers reach only each other
    #[arg(long)]
    pub internal: bool,
    /// Do not answer container names (aardvark-dns)
    #[arg(long)]
    pub disable_dns: bool,
    /// Set a label (KEY=VALUE)
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    #[arg(value_name = "NAME")]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not cut ids to 12 digits
    #[arg(long)]
    pub no_trunc: bool,
    /// json, or a Go template ({{.Name}})
    #[arg(long, default_value = "table")]
    pub format: String,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A Go template ({{.IPAM.Config}}), or json
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(value_name = "NETWORK", required = true)]
    pub networks: Vec<String>,
}

#[derive(Debug, Args)]
pub struct NamesArgs {
    #[arg(value_name = "NETWORK", required = true)]
    pub networks: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Do not ask (lade never asks: accepted for Docker's command lines)
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Another name the container answers to on this network
    #[arg(long = "alias", value_name = "ALIAS")]
    pub aliases: Vec<String>,
    /// Its IPv4 address on this network
    #[arg(long)]
    pub ip: Option<String>,
    #[arg(value_name = "NETWORK")]
    pub network: String,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Debug, Args)]
pub struct DisconnectArgs {
    #[arg(value_name = "NETWORK")]
    pub network: String,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

pub fn run(store_config: &StoreConfig, command: NetworkCommand) -> Result<ExitCode> {
    match command {
        NetworkCommand::Create(args) => {
            if args.driver != "bridge" {
                bail!(
                    "network driver {:?} is not supported: lade makes bridge networks",
                    args.driver
                );
            }
            let labels = container::validate::labels(&args.labels)?;
            let store = open_store(store_config)?;
            let network = container::create_network(
                &store,
                &container::NetworkOptions {
                    name: args.name,
                    subnet: args.subnet,
                    gateway: args.gateway,
                    internal: args.internal,
                    labels,
                    dns: !args.disable_dns,
                },
            )?;
            println!("{}", network.id);
            Ok(ExitCode::SUCCESS)
        }
        NetworkCommand::Ls(args) => {
            let store = super::open_store_read_only(store_config)?;
            let mut rows = Vec::new();
            for record in store.networks()? {
                rows.push(container::network_json(&store, &record)?);
            }
            let id = |row: &serde_json::Value| {
                let id = row["Id"].as_str().unwrap_or_default();
                if args.no_trunc {
                    id.to_string()
                } else {
                    id.chars().take(12).collect()
                }
            };
            if args.quiet {
                for row in &rows {
                    println!("{}", id(row));
                }
                return Ok(ExitCode::SUCCESS);
            }
            let format = super::ListFormat::parse(&args.format)?;
            if !format.print(&rows)? {
                let table: Vec<Vec<String>> = rows
                    .iter()
                    .map(|row| {
                        vec![
                            id(row),
                            row["Name"].as_str().unwrap_or_default().to_string(),
                            "bridge".to_string(),
                            "local".to_string(),
                        ]
                    })
                    .collect();
                print_table(&["NETWORK ID", "NAME", "DRIVER", "SCOPE"], &table);
            }
            Ok(ExitCode::SUCCESS)
        }
        NetworkCommand::Inspect(args) => {
            let store = super::open_store_read_only(store_config)?;
            let mut out = super::template::InspectOutput::new(args.format.as_deref())?;
            let code = super::each_item(&args.networks, |name| {
                let record = store
                    .network(name)?
                    .ok_or_else(|| anyhow::anyhow!("no such network: {name}"))?;
                out.push(container::network_json(&store, &record)?)
            });
            out.finish()?;
            Ok(code)
        }
        NetworkCommand::Rm(args) => {
            let store = open_store(store_config)?;
            Ok(super::each_item(&args.networks, |name| {
                if name == "bridge" || name == container::DEFAULT_NETWORK {
                    return Err(anyhow::anyhow!(
                        "{name} is lade's default network: it cannot be removed"
                    ));
                }
                container::remove_network(&store, name)?;
                println!("{name}");
                Ok(())
            }))
        }
        NetworkCommand::Prune(_) => {
            let store = open_store(store_config)?;
            let mut removed = Vec::new();
            for record in store.networks()? {
                if record.name == container::DEFAULT_NETWORK
                    || !store.network_users(&record.name)?.is_empty()
                {
                    continue;
                }
                removed.push(container::remove_network(&store, &record.name)?);
            }
            if !removed.is_empty() {
                println!("Deleted Networks:");
                for name in &removed {
                    println!("{name}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        NetworkCommand::Connect(args) => {
            for alias in &args.aliases {
                container::validate::dns_name("--alias", alias)?;
            }
            let store = open_store(store_config)?;
            let dns_unavailable = container::connect(
                &store,
                &args.network,
                &args.container,
                &args.aliases,
                args.ip.as_deref(),
            )?;
            if let Some(warning) = dns_unavailable {
                super::containers::warn(&warning.to_string());
            }
            Ok(ExitCode::SUCCESS)
        }
        NetworkCommand::Disconnect(args) => {
            let store = open_store(store_config)?;
            container::disconnect(&store, &args.network, &args.container)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
