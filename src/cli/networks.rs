//! `lade network`: its arguments (create, ls, inspect, rm, prune, connect, disconnect)
//! turned into the engine's requests, and what the engine returns shown in Docker's
//! words and shapes (ids, tables, JSON, templates).

use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};

use super::StoreConfig;
use super::{open_store, print_table};
use crate::engine::{self, validate, ConnectRequest, DisconnectRequest, NetworkOptions};

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
    /// name=REGEX, id=PREFIX, label=KEY[=VALUE], driver=bridge, type=custom|builtin
    #[arg(short, long, value_name = "FILTER")]
    pub filter: Vec<String>,
    /// json, or a Go template with Docker's fields ({{.ID}}, .Name, .Driver, .Scope,
    /// .IPv6, .Internal, .Labels, .CreatedAt)
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
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Only networks made before a time (until=24h) or with (label=KEY[=VALUE]) or
    /// without (label!=KEY[=VALUE]) a label
    #[arg(long, value_name = "FILTER")]
    pub filter: Vec<String>,
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

/// The store, opened only to read, with the default network in it (Docker always has
/// its `bridge`): once made, on the first listing or the first container, it is only
/// read. Still read-only where it cannot be written, without it then.
fn default_network_store(store_config: &StoreConfig) -> Result<engine::Store> {
    if let Ok(store) = super::open_store_read_only(store_config) {
        if engine::has_default_network(&store)? {
            return Ok(store);
        }
    }
    if let Ok(store) = open_store(store_config) {
        if engine::ensure_default_network(&store).is_ok() {
            return Ok(store);
        }
    }
    super::open_store_read_only(store_config)
}

/// A network as a row of `network ls --format`: Docker's fields, as strings.
fn list_row(network: &engine::NetworkInspect, id: &str) -> serde_json::Value {
    let labels = network
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    serde_json::json!({
        "CreatedAt": go_time(&network.created),
        "Driver": network.driver,
        "ID": id,
        "IPv4": "true",
        "IPv6": network.enable_ipv6.to_string(),
        "Internal": network.internal.to_string(),
        "Labels": labels,
        "Name": network.name,
        "Scope": network.scope,
        // For `{{.Label "k"}}`.
        super::template::LABELS: network.labels,
    })
}

/// An RFC 3339 time as Go's `time.Time.String()` writes it, as Docker shows a network's
/// `CreatedAt` (`2024-01-01 10:00:00.123456789 +0000 UTC`).
fn go_time(rfc3339: &str) -> String {
    match rfc3339.parse::<jiff::Timestamp>() {
        Ok(time) => {
            let fraction = time.subsec_nanosecond();
            let mut text = time.strftime("%Y-%m-%d %H:%M:%S").to_string();
            if fraction != 0 {
                let digits = format!("{fraction:09}");
                text.push('.');
                text.push_str(digits.trim_end_matches('0'));
            }
            text.push_str(" +0000 UTC");
            text
        }
        Err(_) => rfc3339.to_string(),
    }
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
            let labels = validate::labels(&args.labels)?;
            let store = open_store(store_config)?;
            let network = engine::create_network(
                &store,
                &NetworkOptions {
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
            let filters = args
                .filter
                .iter()
                .map(|f| engine::NetworkFilter::parse(f))
                .collect::<engine::Result<Vec<_>>>()?;
            let store = default_network_store(store_config)?;
            let networks = engine::list_networks(&store, &filters)?;
            let id = |id: &str| {
                if args.no_trunc {
                    id.to_string()
                } else {
                    id.chars().take(12).collect()
                }
            };
            if args.quiet {
                for network in &networks {
                    println!("{}", id(&network.id));
                }
                return Ok(ExitCode::SUCCESS);
            }
            let format =
                super::ListFormat::parse_with_headers(&args.format, &[("ID", "NETWORK ID")])?;
            let rows: Vec<serde_json::Value> = networks
                .iter()
                .map(|network| list_row(network, &id(&network.id)))
                .collect();
            if !format.print(&rows)? {
                let table: Vec<Vec<String>> = networks
                    .iter()
                    .map(|network| {
                        vec![
                            id(&network.id),
                            network.name.clone(),
                            network.driver.to_string(),
                            network.scope.to_string(),
                        ]
                    })
                    .collect();
                print_table(&["NETWORK ID", "NAME", "DRIVER", "SCOPE"], &table);
            }
            Ok(ExitCode::SUCCESS)
        }
        NetworkCommand::Inspect(args) => {
            let store = default_network_store(store_config)?;
            let mut out = super::template::InspectOutput::new(args.format.as_deref())?;
            let code = super::each_item(&args.networks, |name| {
                let network = engine::inspect_network(&store, name)?;
                out.push(serde_json::to_value(network)?)
            });
            out.finish()?;
            Ok(code)
        }
        NetworkCommand::Rm(args) => {
            let store = open_store(store_config)?;
            Ok(super::each_item(&args.networks, |name| {
                engine::remove_network(&store, name)?;
                println!("{name}");
                anyhow::Ok(())
            }))
        }
        NetworkCommand::Prune(args) => {
            let filters = engine::PruneFilters::parse(&args.filter, &["until", "label"])?;
            if !super::confirm::confirm(
                "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue?",
                args.force,
            )? {
                return Ok(ExitCode::SUCCESS);
            }
            let store = open_store(store_config)?;
            let removed = engine::prune_networks(&store, &filters)?;
            super::render::print_pruned("Networks", "", &removed, None);
            Ok(ExitCode::SUCCESS)
        }
        NetworkCommand::Connect(args) => {
            for alias in &args.aliases {
                validate::dns_name("--alias", alias)?;
            }
            let store = open_store(store_config)?;
            let request = ConnectRequest {
                network: args.network,
                container: args.container,
                aliases: args.aliases,
                ip: args.ip,
            };
            if let Some(warning) = engine::connect_network(&store, &request)? {
                super::containers::warn(&warning.to_string());
            }
            Ok(ExitCode::SUCCESS)
        }
        NetworkCommand::Disconnect(args) => {
            let store = open_store(store_config)?;
            let request = DisconnectRequest {
                network: args.network,
                container: args.container,
            };
            engine::disconnect_network(&store, &request)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
