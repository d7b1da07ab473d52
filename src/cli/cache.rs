//! `lade cache`: what the build cache holds (`ls`, `inspect`, `du`) and removing it
//! (`prune`).

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::StoreConfig;
use super::{human_age, human_size, open_store, print_table, Format};
use crate::engine::{self, CacheInspection, CachePruneRequest, CacheRecord, Store};
use crate::oci::parse_size;

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// List the cached steps, most recently used first
    Ls(LsArgs),
    /// Show what went into the key of a cached step (KEY or a prefix of it), or of
    /// every step of an image lade built (IMAGE)
    Inspect(InspectArgs),
    /// Show the space the build cache takes, by kind
    Du(DuArgs),
    /// Remove build cache. Without --all, only steps whose layers no image uses; tagged
    /// images and containers never lose anything they need
    Prune(PruneArgs),
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Full keys and step texts
    #[arg(long)]
    pub no_trunc: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A cache key (or a unique prefix of one), or an image
    #[arg(value_name = "KEY|IMAGE")]
    pub target: String,
}

#[derive(Debug, Args)]
pub struct DuArgs {
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove every cached step, used by an image or not, the cache mounts
    /// (RUN --mount=type=cache) and the stored hashes of context files
    #[arg(short, long)]
    pub all: bool,
    /// Only what was last used longer ago than DURATION (until=24h, until=30m, until=7d);
    /// last use is recorded to the minute
    #[arg(long, value_name = "until=DURATION")]
    pub filter: Vec<String>,
    /// Remove the least recently used steps until the cache takes no more than SIZE
    /// (e.g. 10GB, 500m)
    #[arg(long, value_name = "SIZE")]
    pub keep_storage: Option<String>,
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub force: bool,
}

pub fn run(store_config: &StoreConfig, command: CacheCommand) -> Result<ExitCode> {
    let store = match command {
        CacheCommand::Prune(_) => open_store(store_config)?,
        _ => super::open_store_read_only(store_config)?,
    };
    match command {
        CacheCommand::Ls(args) => ls(&store, args),
        CacheCommand::Inspect(args) => inspect(&store, args),
        CacheCommand::Du(args) => du(&store, args),
        CacheCommand::Prune(args) => prune(&store, args),
    }
}

fn time_of(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn ls(store: &Store, args: LsArgs) -> Result<ExitCode> {
    let records = engine::cache_records(store)?;
    if args.format == Format::Json {
        let rows: Vec<Value> = records.iter().map(record_json).collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            let key = if args.no_trunc {
                r.key.clone()
            } else {
                r.key[..12.min(r.key.len())].to_string()
            };
            let step = if args.no_trunc || r.step.chars().count() <= 50 {
                r.step.clone()
            } else {
                format!("{}...", r.step.chars().take(47).collect::<String>())
            };
            vec![
                key,
                step,
                r.stage.clone(),
                r.layer
                    .as_ref()
                    .map_or_else(|| "0B".to_string(), |l| human_size(l.size)),
                human_age(Some(&r.created)),
                human_age(Some(&time_of(r.last_used))),
            ]
        })
        .collect();
    print_table(
        &["KEY", "STEP", "STAGE", "SIZE", "CREATED", "LAST USED"],
        &rows,
    );
    Ok(ExitCode::SUCCESS)
}

fn record_json(r: &CacheRecord) -> Value {
    json!({
        "key": r.key,
        "kind": r.kind,
        "step": r.step,
        "stage": r.stage,
        "layer": r.layer.as_ref().map(|l| json!({
            "digest": l.blob.to_string(),
            "diff_id": l.diff_id.to_string(),
            "mediaType": l.media_type,
            "size": l.size,
            "uncompressed_size": l.tar_size,
        })),
        "size": r.layer.as_ref().map_or(0, |l| l.size),
        "created": r.created,
        "last_used": time_of(r.last_used),
    })
}

fn with_inputs(record: &CacheRecord) -> Value {
    let mut value = record_json(record);
    value["inputs"] = serde_json::from_str(&record.inputs).unwrap_or(Value::Null);
    value
}

fn inspect(store: &Store, args: InspectArgs) -> Result<ExitCode> {
    let shown = match engine::cache_inspect(store, &args.target)? {
        CacheInspection::Record(record) => with_inputs(&record),
        CacheInspection::Image { id, tags, steps } => {
            let steps: Vec<Value> = steps
                .iter()
                .map(|step| {
                    json!({
                        "stage": step.stage,
                        "step": step.step,
                        "key": step.key,
                        "cached": match (&step.key, &step.record) {
                            (None, _) => json!("config only: computed from the Dockerfile, never cached"),
                            (Some(_), Some(_)) => json!(true),
                            (Some(_), None) => json!("the record was pruned"),
                        },
                        "record": step.record.as_ref().map(with_inputs),
                    })
                })
                .collect();
            json!({
                "image": id,
                "tags": tags,
                "steps": steps,
            })
        }
    };
    println!("{}", serde_json::to_string_pretty(&shown)?);
    Ok(ExitCode::SUCCESS)
}

fn du(store: &Store, args: DuArgs) -> Result<ExitCode> {
    let usage = engine::cache_usage(store)?;
    if args.format == Format::Json {
        let pair = |(count, bytes): (u64, u64)| json!({ "count": count, "bytes": bytes });
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "records": usage.records,
                "layers": pair(usage.layers),
                "layers_shared_with_images": pair(usage.shared_layers),
                "snapshots": pair(usage.snapshots),
                "cache_mounts": pair(usage.cache_mounts),
                "context_hashes": pair(usage.context_hashes),
            }))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let row = |kind: &str, (count, bytes): (u64, u64), note: &str| {
        vec![
            kind.to_string(),
            count.to_string(),
            human_size(bytes),
            note.to_string(),
        ]
    };
    print_table(
        &["KIND", "COUNT", "SIZE", ""],
        &[
            row("layers", usage.layers, "only the cache keeps them"),
            row(
                "layers (shared)",
                usage.shared_layers,
                "images use them too: pruning frees nothing",
            ),
            row("snapshots", usage.snapshots, "unpacked cached layers"),
            row("cache mounts", usage.cache_mounts, "RUN --mount=type=cache"),
            row(
                "context hashes",
                usage.context_hashes,
                "stat cache of build contexts",
            ),
        ],
    );
    println!("{} cached step(s)", usage.records);
    Ok(ExitCode::SUCCESS)
}

fn prune(store: &Store, args: PruneArgs) -> Result<ExitCode> {
    let mut request = CachePruneRequest {
        all: args.all,
        ..CachePruneRequest::default()
    };
    for filter in &args.filter {
        match filter.split_once('=') {
            Some(("until", duration)) => {
                let seconds = parse_duration(duration).with_context(|| {
                    format!("invalid --filter {filter:?}: expected until=DURATION such as 24h")
                })?;
                request.unused_for = Some(seconds);
            }
            _ => bail!("invalid --filter {filter:?}: lade knows until=DURATION"),
        }
    }
    if let Some(size) = &args.keep_storage {
        request.keep_storage = Some(parse_size(size).with_context(|| {
            format!("invalid --keep-storage {size:?}: expected a size such as 10GB or 500m")
        })?);
    }
    let question = if args.all {
        "WARNING! This will remove all build cache. Are you sure you want to continue?"
    } else {
        "WARNING! This will remove all dangling build cache. Are you sure you want to continue?"
    };
    if !super::confirm::confirm(question, args.force)? {
        return Ok(ExitCode::SUCCESS);
    }
    let report = engine::prune_cache(store, &request)?;
    println!("removed {} cached step(s)", report.records);
    if args.all {
        if report.cache_mounts_busy {
            println!("cache mounts kept: a build is running");
        } else {
            println!("removed {} cache mount(s)", report.cache_mounts);
        }
    }
    match report.gc {
        Some(gc) => println!(
            "freed {} ({} blob(s), {} snapshot(s))",
            human_size(gc.bytes),
            gc.blobs,
            gc.snapshots
        ),
        None => println!(
            "another lade process is writing to the store: space is freed by the next prune"
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// `90s`, `30m`, `24h`, `7d`, `2w`, `1h30m`: Docker's durations, and days and weeks, in
/// whole seconds; never negative.
pub(super) fn parse_duration(text: &str) -> Option<i64> {
    let nanos = engine::go_duration(text.trim(), true)?;
    if nanos < 0 {
        return None;
    }
    i64::try_from(nanos / 1_000_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("24h"), Some(86_400));
        assert_eq!(parse_duration("1h30m"), Some(5_400));
        assert_eq!(parse_duration("7d"), Some(604_800));
        assert_eq!(parse_duration("0s"), Some(0));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("5y"), None);
        assert_eq!(parse_duration(""), None);
    }
}
