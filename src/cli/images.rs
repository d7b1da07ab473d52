//! `lade images`, `tag`, `rmi`, `inspect`, `history` and `image prune`.

use std::collections::BTreeSet;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::{json, Value};

use super::StoreConfig;
use super::{human_age, human_size, open_store, print_table, Format};
use crate::engine::{self, ImageFilter};
use crate::oci::ImageRef;

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Only image ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Output format: table, json, or a Go template (`{{.Repository}}:{{.Tag}}`)
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Full image ids
    #[arg(long)]
    pub no_trunc: bool,
    /// Show the digest a registry gave each image (pulled or pushed)
    #[arg(long)]
    pub digests: bool,
    /// Only images of this repository (and tag)
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub filter: Option<String>,
}

pub fn images(store_config: &StoreConfig, args: ImagesArgs) -> Result<ExitCode> {
    let store = super::open_store_read_only(store_config)?;
    let filter = match &args.filter {
        Some(text) => {
            Some(ImageFilter::parse(text).with_context(|| format!("invalid name {text:?}"))?)
        }
        None => None,
    };
    let listed = engine::images(&store, filter.as_ref(), args.digests)?;
    let id = |image: &engine::ListedImage| {
        if args.no_trunc {
            image.id.to_string()
        } else {
            image.id.short()
        }
    };
    if args.quiet {
        let mut seen = BTreeSet::new();
        for image in &listed {
            if seen.insert(image.id) {
                println!("{}", id(image));
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let format = super::ListFormat::parse(&args.format)?;
    if !matches!(format, super::ListFormat::Table) {
        let rows: Vec<Value> = listed
            .iter()
            .map(|image| {
                json!({
                    "Repository": image.repository,
                    "Tag": image.tag,
                    "ID": image.id.to_string(),
                    "Digest": image.manifest_digest.to_string(),
                    "Created": image.created,
                    "Size": image.size,
                })
            })
            .collect();
        format.print(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = listed
        .iter()
        .map(|image| {
            let mut row = vec![image.repository.clone(), image.tag.clone()];
            if args.digests {
                row.push(
                    image
                        .repo_digest
                        .map_or_else(|| "<none>".to_string(), |d| d.to_string()),
                );
            }
            row.extend([
                id(image),
                human_age(image.created.as_deref()),
                human_size(image.size),
            ]);
            row
        })
        .collect();
    let mut header = vec!["REPOSITORY", "TAG"];
    if args.digests {
        header.push("DIGEST");
    }
    header.extend(["IMAGE ID", "CREATED", "SIZE"]);
    print_table(&header, &rows);
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct TagArgs {
    /// The image: a name, or an id
    #[arg(value_name = "SOURCE")]
    pub source: String,
    /// The new name
    #[arg(value_name = "TARGET[:TAG]")]
    pub target: String,
}

pub fn tag(store_config: &StoreConfig, args: TagArgs) -> Result<ExitCode> {
    let store = open_store(store_config)?;
    let target = args
        .target
        .parse::<ImageRef>()
        .with_context(|| format!("invalid name {:?}", args.target))?;
    if target.digest().is_some() {
        bail!("a tag cannot contain a digest: {}", args.target);
    }
    engine::tag(&store, &args.source, &target)?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Remove images used by containers, or named by several tags
    #[arg(short, long)]
    pub force: bool,
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
}

pub fn rmi(store_config: &StoreConfig, args: RmiArgs) -> Result<ExitCode> {
    let store = open_store(store_config)?;
    Ok(super::each_item(&args.images, |reference| {
        let removed = engine::remove_image(&store, reference, args.force)?;
        for name in removed.untagged {
            println!("Untagged: {name}");
        }
        for id in removed.deleted {
            println!("Deleted: {id}");
        }
        Ok::<_, engine::EngineError>(())
    }))
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format each item with a Go template (`{{.State.Status}}`, `{{json .Config}}`)
    #[arg(short, long, value_name = "TEMPLATE")]
    pub format: Option<String>,
    /// Only this kind of object
    #[arg(long = "type", value_enum)]
    pub kind: Option<InspectKind>,
    #[arg(value_name = "CONTAINER|IMAGE", required = true)]
    pub images: Vec<String>,
}

/// `container inspect` and `image inspect`: `inspect` for one kind of object.
#[derive(Debug, Args)]
pub struct ObjectInspectArgs {
    /// Format each item with a Go template (`{{.State.Status}}`, `{{json .Config}}`)
    #[arg(short, long, value_name = "TEMPLATE")]
    pub format: Option<String>,
    #[arg(value_name = "NAME", required = true)]
    pub names: Vec<String>,
}

impl ObjectInspectArgs {
    /// The `inspect` these arguments stand for, limited to `kind`.
    pub fn of(self, kind: InspectKind) -> InspectArgs {
        InspectArgs {
            format: self.format,
            kind: Some(kind),
            images: self.names,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InspectKind {
    Container,
    Image,
}

pub fn inspect(store_config: &StoreConfig, args: InspectArgs) -> Result<ExitCode> {
    let store = super::open_store_read_only(store_config)?;
    let mut out = super::template::InspectOutput::new(args.format.as_deref())?;
    let kind = args.kind.map(|kind| match kind {
        InspectKind::Container => engine::InspectKind::Container,
        InspectKind::Image => engine::InspectKind::Image,
    });
    let code = super::each_item(&args.images, |reference| {
        out.push(engine::inspect(&store, reference, kind)?)
    });
    out.finish()?;
    Ok(code)
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Do not shorten CREATED BY
    #[arg(long)]
    pub no_trunc: bool,
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    #[arg(value_name = "IMAGE")]
    pub image: String,
}

pub fn history(store_config: &StoreConfig, args: HistoryArgs) -> Result<ExitCode> {
    let store = super::open_store_read_only(store_config)?;
    let rows = engine::history(&store, &args.image)?;
    let id = |row: &engine::HistoryRow| match row.id {
        Some(id) if args.no_trunc => id.to_string(),
        Some(id) => id.short(),
        None => "<missing>".to_string(),
    };
    if args.format == Format::Json {
        let json: Vec<Value> = rows
            .iter()
            .map(|row| {
                json!({
                    "ID": id(row),
                    "Created": row.created,
                    "CreatedBy": row.created_by,
                    "Size": row.size,
                    "Comment": row.comment,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(ExitCode::SUCCESS);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let by = row.created_by.replace('\n', " ");
            let by = if !args.no_trunc && by.chars().count() > 45 {
                format!("{}...", by.chars().take(42).collect::<String>())
            } else {
                by
            };
            vec![
                id(row),
                human_age(row.created.as_deref()),
                by,
                human_size(row.size),
                row.comment.clone(),
            ]
        })
        .collect();
    print_table(
        &["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
        &table,
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct ImagePruneArgs {
    /// Every image no container uses, not only untagged ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Only images made before a time (until=24h) or with (label=KEY[=VALUE]) or
    /// without (label!=KEY[=VALUE]) a label
    #[arg(long, value_name = "FILTER")]
    pub filter: Vec<String>,
}

/// `lade image prune`: removes the images no container uses (untagged ones only,
/// unless --all), after Docker's question.
pub fn prune(store_config: &StoreConfig, args: ImagePruneArgs) -> Result<ExitCode> {
    let filters = engine::PruneFilters::parse(&args.filter, &["until", "label"])?;
    let question = if args.all {
        "WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue?"
    } else {
        "WARNING! This will remove all dangling images.\nAre you sure you want to continue?"
    };
    if !super::confirm::confirm(question, args.force)? {
        return Ok(ExitCode::SUCCESS);
    }
    let store = open_store(store_config)?;
    let removed = engine::prune_images(&store, args.all, &filters)?;
    if !removed.is_empty() {
        println!("Deleted Images:");
        for reference in &removed {
            println!("deleted: {reference}");
        }
        println!();
    }
    println!("Total reclaimed images: {}", removed.len());
    Ok(ExitCode::SUCCESS)
}
