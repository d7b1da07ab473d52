//! The listings: `lade ps`, `port`, `top` and `stats`, rendered as Docker renders them.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use serde_json::json;

use super::{
    human_age, human_duration, human_size, open_store_read_only, print_table, template, ListFormat,
    StoreConfig, Tell,
};
use crate::engine::{
    self, ContainerRow, ContainerState, PortMapping, PortRequest, PsFilter, PsRequest, TopRequest,
};
use crate::oci::ImageRef;

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
    let trunc = !args.no_trunc;
    if args.quiet {
        for c in &containers {
            println!("{}", short_id(&c.id, trunc));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let format = ListFormat::parse_with_headers(&args.format, &[("ID", "CONTAINER ID")])?;
    if !matches!(format, ListFormat::Table) {
        let rows: Vec<_> = containers.iter().map(|c| ps_row(c, trunc)).collect();
        format.print(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = containers
        .iter()
        .map(|c| {
            let mut row = vec![
                short_id(&c.id, trunc),
                image_shown(c, trunc),
                command_of(c, trunc),
                human_age(created(c).as_deref()),
                docker_status(c),
                docker_ports(&c.ports),
                c.name.clone(),
            ];
            if c.size.is_some() {
                row.push(size_of(c));
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

/// A row as Docker's `ps` formatter (docker/cli `formatter.ContainerContext`) has its
/// fields, for `--format json` and templates, with lade's own besides (`Created` in
/// RFC 3339, `ExitCode`, `Pid`, `ImageID`, `Name`). `trunc` is Docker's: ids, commands
/// and mounts are cut unless `--no-trunc`.
fn ps_row(c: &ContainerRow, trunc: bool) -> serde_json::Value {
    let labels = c
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let mounts = c
        .mounts
        .iter()
        .map(|m| {
            if trunc {
                ellipsis(&m.name, 15)
            } else {
                m.name.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    let local_volumes = c.mounts.iter().filter(|m| m.local).count();
    json!({
        "ID": short_id(&c.id, trunc),
        "Names": c.name,
        "Image": image_shown(c, trunc),
        "Command": command_of(c, trunc),
        "CreatedAt": created_at(c.created),
        "RunningFor": human_age(created(c).as_deref()),
        "Ports": docker_ports(&c.ports),
        "State": c.state.as_str(),
        "Status": docker_status(c),
        "Size": size_of(c),
        "Labels": labels,
        "Mounts": mounts,
        "LocalVolumes": local_volumes.to_string(),
        "Networks": c.networks.join(","),
        "HealthStatus": c.health.map(|h| h.as_str()).unwrap_or_default(),
        "Platform": null,
        "Created": created(c).unwrap_or_default(),
        "Name": c.name,
        "ImageID": c.image_id.to_string(),
        "ExitCode": c.exit_code,
        "Pid": c.pid,
        template::LABELS: c.labels,
    })
}

/// IMAGE as Docker's `ps` shows it (`formatter.ContainerContext.Image`): the name the
/// container was made from, but, unless `--no-trunc`, an id as its 12 hex digits and a
/// name with a digest without the digest (its tag kept), in Docker's short form.
fn image_shown(c: &ContainerRow, trunc: bool) -> String {
    let image = c.image.as_str();
    if image.is_empty() {
        return "<no image>".into();
    }
    if !trunc {
        return image.to_string();
    }
    let short = |id: &str| -> String {
        id.strip_prefix("sha256:")
            .unwrap_or(id)
            .chars()
            .take(12)
            .collect()
    };
    let id = short(&c.image_id.to_string());
    if short(image) == id {
        return id;
    }
    let Ok(reference) = image.parse::<ImageRef>() else {
        return image.to_string();
    };
    // The tag as written: the parser gives a name without tag or digest `latest`.
    let last_part = image.rsplit('/').next().unwrap_or(image);
    let tagged = last_part
        .split('@')
        .next()
        .is_some_and(|name| name.contains(':'));
    match reference.tag().filter(|_| tagged) {
        Some(tag) => format!("{}:{tag}", reference.familiar_repository()),
        None => reference.familiar_repository(),
    }
}

/// When it was made, in RFC 3339, as every time in lade's (and Docker's) JSON.
fn created(container: &ContainerRow) -> Option<String> {
    jiff::Timestamp::from_second(container.created)
        .map(|t| t.to_string())
        .ok()
}

/// An id as Docker shows it: its first 12 characters unless `--no-trunc`.
fn short_id(id: &str, trunc: bool) -> String {
    if trunc {
        id.chars().take(12).collect()
    } else {
        id.to_string()
    }
}

/// SIZE as Docker shows it: the container's changes, and with its image's layers.
fn size_of(c: &ContainerRow) -> String {
    match c.size {
        Some(size) if size.image > 0 => format!(
            "{} (virtual {})",
            human_size(size.own),
            human_size(size.own + size.image)
        ),
        Some(size) => human_size(size.own),
        None => human_size(0),
    }
}

/// `.CreatedAt` as Go's `time.Time.String` writes it, in local time:
/// `2026-01-02 15:04:05 +0100 CET`.
fn created_at(created: i64) -> String {
    let Ok(time) = jiff::Timestamp::from_second(created) else {
        return String::new();
    };
    time.to_zoned(jiff::tz::TimeZone::system())
        .strftime("%Y-%m-%d %H:%M:%S %z %Z")
        .to_string()
}

/// PORTS as `docker ps` shows them: `0.0.0.0:18080->80/tcp, ...`.
pub(crate) fn docker_ports(ports: &[PortMapping]) -> String {
    ports
        .iter()
        .flat_map(|p| p.docker_lines())
        .map(|(container, host)| format!("{host}->{container}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// COMMAND as `docker ps` shows it: quoted as Go's `strconv.Quote` quotes, cut to 20
/// characters unless `--no-trunc`.
fn command_of(container: &ContainerRow, trunc: bool) -> String {
    let shown = if trunc {
        ellipsis(&container.command, 20)
    } else {
        container.command.clone()
    };
    go_quote(&shown)
}

/// COMMAND and CREATED as `docker ps` (and `docker compose ps`) show them.
pub(crate) fn docker_command_and_created(container: &ContainerRow) -> (String, String) {
    (
        command_of(container, true),
        human_age(created(container).as_deref()),
    )
}

/// docker/cli `formatter.Ellipsis`: at most `width` characters, the last one `…` when
/// cut.
fn ellipsis(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Go's `strconv.Quote`: in double quotes, with quotes, backslashes and what cannot be
/// printed escaped.
fn go_quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\u{7}' => quoted.push_str("\\a"),
            '\u{8}' => quoted.push_str("\\b"),
            '\u{c}' => quoted.push_str("\\f"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            '\u{b}' => quoted.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                quoted.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => quoted.push_str(&format!("\\u{:04x}", c as u32)),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// STATUS as `docker ps` says it: `Up 3 seconds`, `Up 5 seconds (Paused)`,
/// `Exited (137) 2 seconds ago`, `Restarting (1) 1 second ago`, `Created`, `Dead`.
pub(crate) fn docker_status(container: &ContainerRow) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_quoted_and_cut_as_dockers() {
        assert_eq!(go_quote(r#"sh -c "echo \hi""#), r#""sh -c \"echo \\hi\"""#);
        assert_eq!(go_quote("a\tb\u{1b}c\u{85}"), r#""a\tb\x1bc\u0085""#);
        assert_eq!(go_quote("köln"), "\"köln\"");
        assert_eq!(ellipsis("sleep 100", 20), "sleep 100");
        assert_eq!(
            ellipsis("abcdefghijklmnopqrstuvwxyz", 20),
            "abcdefghijklmnopqrs…"
        );
        assert_eq!(ellipsis("/var/lib/lade/volumes", 15), "/var/lib/lade/…");
    }
}
