//! The listings: `lade ps`, `port`, `top` and `stats`, rendered as Docker renders them.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use serde_json::json;

use super::{
    human_age, human_duration, human_size, open_store_read_only, print_table, ListFormat,
    StoreConfig, Tell,
};
use crate::engine::{
    self, ContainerRow, ContainerState, PortMapping, PortRequest, PsFilter, PsRequest, TopRequest,
};

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (by default only running ones)
    #[arg(short, long)]
    pub all: bool,
    /// Only ids
    #[arg(short, long)]
    pub quiet: bool,
    /// The last N created containers, in any state
    #[arg(short = 'n', long = "last", value_name = "N")]
    pub last: Option<usize>,
    /// The latest created container, in any state
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Full ids
    #[arg(long)]
    pub no_trunc: bool,
    /// Show each container's size: its own changes, and with its image (virtual)
    #[arg(short, long)]
    pub size: bool,
    /// Only containers that match: status=, name=, label=KEY[=VALUE], ancestor=IMAGE,
    /// exited=CODE, id=, health=starting|healthy|unhealthy|none (several filters: all
    /// must match)
    #[arg(short, long, value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Output format: table, json, or a Go template (`{{.Names}} {{.Status}}`)
    #[arg(long, default_value = "table")]
    pub format: String,
}

pub fn ps(store_config: &StoreConfig, args: PsArgs) -> Result<ExitCode> {
    let filters = args
        .filter
        .iter()
        .map(|f| PsFilter::parse(f))
        .collect::<engine::Result<Vec<_>>>()?;
    let request = PsRequest {
        all: args.all,
        last: args.last,
        latest: args.latest,
        size: args.size && !args.quiet,
        filters,
    };
    let store = open_store_read_only(store_config)?;
    let containers = engine::ps(&store, &request, &Tell)?;
    let short = |id: &str| {
        if args.no_trunc {
            id.to_string()
        } else {
            id[..12].to_string()
        }
    };
    if args.quiet {
        for c in &containers {
            println!("{}", short(&c.id));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let format = ListFormat::parse(&args.format)?;
    if !matches!(format, ListFormat::Table) {
        let rows: Vec<_> = containers
            .iter()
            .map(|c| {
                json!({ "ID": c.id, "Names": c.name, "Name": c.name, "Image": c.image, "ImageID": c.image_id.to_string(), "Command": command_of(c), "Created": created(c).unwrap_or_default(), "State": c.state.as_str(), "Status": docker_status(c), "ExitCode": c.exit_code, "Pid": c.pid, "Labels": c.labels, "Ports": docker_ports(&c.ports) })
            })
            .collect();
        format.print(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = containers
        .iter()
        .map(|c| {
            let mut row = vec![
                short(&c.id),
                c.image.clone(),
                command_of(c),
                human_age(created(c).as_deref()),
                docker_status(c),
                docker_ports(&c.ports),
                c.name.clone(),
            ];
            // SIZE: the container's changes, and with its image's layers.
            if let Some(size) = c.size {
                row.push(format!(
                    "{} (virtual {})",
                    human_size(size.own),
                    human_size(size.own + size.image)
                ));
            }
            row
        })
        .collect();
    let mut header = vec![
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ];
    if args.size {
        header.push("SIZE");
    }
    print_table(&header, &rows);
    Ok(ExitCode::SUCCESS)
}

/// When it was made, in RFC 3339, as every time in lade's (and Docker's) JSON.
fn created(container: &ContainerRow) -> Option<String> {
    jiff::Timestamp::from_second(container.created)
        .map(|t| t.to_string())
        .ok()
}

/// PORTS as `docker ps` shows them: `0.0.0.0:18080->80/tcp, ...`.
fn docker_ports(ports: &[PortMapping]) -> String {
    ports
        .iter()
        .flat_map(|p| p.docker_lines())
        .map(|(container, host)| format!("{host}->{container}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// COMMAND as `docker ps` shows it: quoted, cut to 20 characters.
fn command_of(container: &ContainerRow) -> String {
    let args = &container.command;
    let shown: String = if args.chars().count() > 20 {
        format!("{}…", args.chars().take(19).collect::<String>())
    } else {
        args.clone()
    };
    format!("\"{shown}\"")
}

/// STATUS as `docker ps` says it: `Up 3 seconds`, `Up 5 seconds (Paused)`,
/// `Exited (137) 2 seconds ago`, `Restarting (1) 1 second ago`, `Created`, `Dead`.
fn docker_status(container: &ContainerRow) -> String {
    let since = |time: &Option<String>| {
        let seconds = time
            .as_deref()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map_or(0, |t| jiff::Timestamp::now().as_second() - t.as_second());
        human_duration(seconds)
    };
    let code = container.exit_code.unwrap_or(0);
    match container.state {
        ContainerState::Running => match container.health {
            Some(health) => format!("Up {} ({})", since(&container.started_at), health.ps_text()),
            None => format!("Up {}", since(&container.started_at)),
        },
        ContainerState::Paused => format!("Up {} (Paused)", since(&container.started_at)),
        ContainerState::Exited => {
            format!("Exited ({code}) {} ago", since(&container.finished_at))
        }
        ContainerState::Restarting => {
            format!("Restarting ({code}) {} ago", since(&container.finished_at))
        }
        ContainerState::Created => "Created".into(),
        ContainerState::Dead => "Dead".into(),
    }
}

#[derive(Debug, Args)]
pub struct PortArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// Only this port: PORT[/PROTOCOL]
    #[arg(value_name = "PORT")]
    pub port: Option<String>,
}

/// `lade port`: a running container's published ports, as Docker prints them.
pub fn port(store_config: &StoreConfig, args: PortArgs) -> Result<ExitCode> {
    let request = PortRequest::new(args.container, args.port);
    let store = open_store_read_only(store_config)?;
    for port in engine::port(&store, &request)? {
        if request.port.is_some() {
            println!("{}", port.host);
        } else {
            println!("{} -> {}", port.container_port, port.host);
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
#[command(trailing_var_arg = true)]
pub struct TopArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// Options for ps [default: -ef]
    #[arg(value_name = "PS_OPTIONS", allow_hyphen_values = true)]
    pub ps_options: Vec<String>,
}

/// `lade top`: the host's `ps` over the container's processes, as Docker runs it.
pub fn top(store_config: &StoreConfig, args: TopArgs) -> Result<ExitCode> {
    let request = TopRequest {
        container: args.container,
        ps_options: args.ps_options,
    };
    let store = open_store_read_only(store_config)?;
    let processes = engine::top(&store, &request)?;
    println!("{}", processes.header);
    for line in &processes.lines {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// One sample, then exit
    #[arg(long)]
    pub no_stream: bool,
    /// Output format: table, json, or a Go template (`{{.Name}} {{.CPUPerc}}`)
    #[arg(long, default_value = "table")]
    pub format: String,
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `lade stats`: CPU, memory and processes of running containers.
pub fn stats(store_config: &StoreConfig, args: StatsArgs) -> Result<ExitCode> {
    let store = open_store_read_only(store_config)?;
    let format = ListFormat::parse(&args.format)?;
    loop {
        let usage = engine::stats(&store, &args.containers)?;
        let rows: Vec<serde_json::Value> = usage
            .iter()
            .map(|u| {
                let mem_percent = if u.memory_limit > 0 {
                    u.memory as f64 / u.memory_limit as f64 * 100.0
                } else {
                    0.0
                };
                json!({
                    "ID": &u.id[..12],
                    "Container": &u.id[..12],
                    "Name": u.name,
                    "CPUPerc": format!("{:.2}%", u.cpu_percent),
                    "MemUsage": format!("{} / {}", human_size(u.memory), human_size(u.memory_limit)),
                    "MemPerc": format!("{mem_percent:.2}%"),
                    "NetIO": "--",
                    "BlockIO": "--",
                    "PIDs": u.pids.to_string(),
                })
            })
            .collect();
        if !format.print(&rows)? {
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    [
                        "ID", "Name", "CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs",
                    ]
                    .iter()
                    .map(|k| r[k].as_str().unwrap_or_default().to_string())
                    .collect()
                })
                .collect();
            print_table(
                &[
                    "CONTAINER ID",
                    "NAME",
                    "CPU %",
                    "MEM USAGE / LIMIT",
                    "MEM %",
                    "NET I/O",
                    "BLOCK I/O",
                    "PIDS",
                ],
                &table,
            );
        }
        if args.no_stream {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(std::time::Duration::from_millis(800));
    }
}
