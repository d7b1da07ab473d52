//! `lade images`, `tag`, `rmi`, `inspect` and `history`.

use std::collections::BTreeSet;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::{json, Value};

use super::StoreConfig;
use super::{human_age, human_size, open_store, print_table, Format};
use crate::oci::ImageRef;
use crate::store::{Image, StoreError};

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

/// REPOSITORY and TAG of a listed image; `<none>` for an image no tag names.
fn repository_and_tag(tag: Option<&str>) -> (String, String) {
    tag.map_or_else(|| ("<none>".into(), "<none>".into()), split_tag)
}

fn split_tag(name: &str) -> (String, String) {
    match name.parse::<ImageRef>() {
        Ok(r) => (
            r.familiar_repository(),
            r.tag().unwrap_or("<none>").to_string(),
        ),
        Err(_) => (name.to_string(), "<none>".into()),
    }
}

pub fn images(store_config: &StoreConfig, args: ImagesArgs) -> Result<ExitCode> {
    let store = super::open_store_read_only(store_config)?;
    let mut summaries = store.list_images()?;
    if let Some(filter) = &args.filter {
        let wanted = filter
            .parse::<ImageRef>()
            .with_context(|| format!("invalid name {filter:?}"))?;
        // A tag is given when the last path component has one: the colon of
        // `HOST:PORT/REPO` is a port's.
        let last = filter.rsplit('/').next().unwrap_or(filter);
        let with_tag = last.contains(':') && !last.ends_with(':');
        summaries.retain(|s| {
            s.tag
                .as_deref()
                .and_then(|t| t.parse::<ImageRef>().ok())
                .is_some_and(|r| {
                    r.familiar_repository() == wanted.familiar_repository()
                        && (!with_tag || r.tag() == wanted.tag())
                })
        });
    }
    if args.quiet {
        let mut seen = BTreeSet::new();
        for s in &summaries {
            if seen.insert(s.id) {
                println!(
                    "{}",
                    if args.no_trunc {
                        s.id.to_string()
                    } else {
                        s.id.short()
                    }
                );
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let format = super::ListFormat::parse(&args.format)?;
    if !matches!(format, super::ListFormat::Table) {
        let rows: Vec<Value> = summaries
            .iter()
            .map(|s| {
                let (repository, tag) = repository_and_tag(s.tag.as_deref());
                json!({
                    "Repository": repository,
                    "Tag": tag,
                    "ID": s.id.to_string(),
                    "Digest": s.manifest_digest.to_string(),
                    "Created": s.created,
                    "Size": s.size,
                })
            })
            .collect();
        format.print(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    // DIGEST: what the registry of this row's repository calls the image.
    let digest_of = |s: &crate::store::ImageSummary| -> String {
        let repository = s
            .tag
            .as_deref()
            .and_then(|t| t.parse::<ImageRef>().ok())
            .map(|r| format!("{}/{}", r.registry(), r.repository()));
        store
            .repo_digests(&s.manifest_digest)
            .ok()
            .and_then(|digests| {
                digests
                    .into_iter()
                    .find(|(r, _)| repository.as_deref().is_none_or(|want| want == r))
            })
            .map_or_else(|| "<none>".to_string(), |(_, d)| d.to_string())
    };
    let rows: Vec<Vec<String>> = summaries
        .iter()
        .map(|s| {
            let (repository, tag) = repository_and_tag(s.tag.as_deref());
            let mut row = vec![repository, tag];
            if args.digests {
                row.push(digest_of(s));
            }
            row.extend([
                if args.no_trunc {
                    s.id.to_string()
                } else {
                    s.id.short()
                },
                human_age(s.created.as_deref()),
                human_size(s.size),
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
    let image = store.image(&args.source)?;
    store.set_tag(
        &target.familiar(),
        &image.manifest_digest,
        image.manifest_size,
    )?;
    let id = image.id.to_string();
    crate::store::events::image_event(&store, "tag", &id, &target.familiar());
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
        let (untagged, deleted) = store.remove_image(reference, args.force)?;
        for name in untagged {
            println!("Untagged: {name}");
        }
        for id in deleted {
            println!("Deleted: {id}");
        }
        Ok::<_, StoreError>(())
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InspectKind {
    Container,
    Image,
}

/// Docker's `image inspect` shape.
fn inspect_json(image: &Image, repo_digests: &[String]) -> Value {
    let config = &image.config;
    json!({
        "Id": image.id.to_string(),
        "RepoTags": image.tags,
        "RepoDigests": repo_digests,
        "Parent": "",
        "Comment": config.history.last().and_then(|h| h.comment.clone()).unwrap_or_default(),
        "Created": config.created,
        "Author": config.author.clone().unwrap_or_default(),
        "Config": config.config,
        "Architecture": config.architecture,
        "Variant": config.variant,
        "Os": config.os,
        "Size": image.size(),
        "RootFS": {
            "Type": config.rootfs.kind,
            "Layers": config.rootfs.diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        },
        "Manifest": {
            "Digest": image.manifest_digest.to_string(),
            "Layers": image.layers.iter().map(|l| json!({
                "Digest": l.blob.to_string(),
                "MediaType": l.media_type,
                "Size": l.size,
            })).collect::<Vec<_>>(),
        },
        "Metadata": {},
    })
}

pub fn inspect(store_config: &StoreConfig, args: InspectArgs) -> Result<ExitCode> {
    let store = super::open_store_read_only(store_config)?;
    let mut out = super::template::InspectOutput::new(args.format.as_deref())?;
    let code = super::each_item(&args.images, |reference| {
        // As Docker: a container by that name or id first, then an image.
        let container = match args.kind {
            Some(InspectKind::Image) => None,
            _ => match crate::container::inspect(&store, reference) {
                Ok(found) => Some(found),
                Err(_) if args.kind.is_none() => None,
                Err(e) => return Err(anyhow::Error::new(e)),
            },
        };
        let item = match container {
            Some(found) => found,
            None => {
                let image = store.image(reference).map_err(|e| match e {
                    StoreError::NoSuchImage(_) if args.kind.is_none() => {
                        anyhow::anyhow!("no such object: {reference}")
                    }
                    other => anyhow::Error::new(other),
                })?;
                let digests: Vec<String> = store
                    .repo_digests(&image.manifest_digest)?
                    .into_iter()
                    .map(|(repository, digest)| format!("{repository}@{digest}"))
                    .collect();
                inspect_json(&image, &digests)
            }
        };
        out.push(item)
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
    let image = store.image(&args.image)?;
    // History entries with a layer take the layers in order.
    let mut layers = image.layers.iter();
    let mut rows: Vec<(String, Option<String>, String, u64, String)> = Vec::new();
    for entry in &image.config.history {
        let size = if entry.is_empty_layer() {
            0
        } else {
            layers.next().map_or(0, |l| l.tar_size)
        };
        rows.push((
            "<missing>".into(),
            entry.created.clone(),
            entry.created_by.clone().unwrap_or_default(),
            size,
            entry.comment.clone().unwrap_or_default(),
        ));
    }
    rows.reverse();
    if let Some(first) = rows.first_mut() {
        first.0 = if args.no_trunc {
            image.id.to_string()
        } else {
            image.id.short()
        };
    }
    if args.format == Format::Json {
        let json: Vec<Value> = rows
            .iter()
            .map(|(id, created, by, size, comment)| {
                json!({ "ID": id, "Created": created, "CreatedBy": by, "Size": size, "Comment": comment })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(ExitCode::SUCCESS);
    }
    let table: Vec<Vec<String>> = rows
        .into_iter()
        .map(|(id, created, by, size, comment)| {
            let by = by.replace('\n', " ");
            let by = if !args.no_trunc && by.chars().count() > 45 {
                format!("{}...", by.chars().take(42).collect::<String>())
            } else {
                by
            };
            vec![
                id,
                human_age(created.as_deref()),
                by,
                human_size(size),
                comment,
            ]
        })
        .collect();
    print_table(
        &["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
        &table,
    );
    Ok(ExitCode::SUCCESS)
}
