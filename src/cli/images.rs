//! `lade images`, `tag`, `rmi`, `inspect`, `history` and `image prune`.

use std::collections::BTreeSet;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{ArgAction, Args};
use serde_json::{json, Value};

use super::StoreConfig;
use super::{human_age, human_size, open_store, print_table};
use crate::engine::{self, ImageFilter};
use crate::oci::ImageRef;

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Show all images (intermediate ones, untagged and built on by others, too)
    #[arg(short, long)]
    pub all: bool,
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
    /// dangling=true|false, label=KEY[=VALUE], before=IMAGE, since=IMAGE,
    /// reference=PATTERN
    #[arg(short, long, value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Only images of this repository (and tag)
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub repository: Option<String>,
}

pub fn images(store_config: &StoreConfig, args: ImagesArgs) -> Result<ExitCode> {
    let store = super::open_store_read_only(store_config)?;
    let repository = match &args.repository {
        Some(text) => {
            Some(ImageFilter::parse(text).with_context(|| format!("invalid name {text:?}"))?)
        }
        None => None,
    };
    let filters = args
        .filter
        .iter()
        .map(|f| engine::ImagesFilter::parse(f))
        .collect::<Result<Vec<_>, _>>()?;
    let format = super::ListFormat::parse_with_headers(&args.format, &[("ID", "IMAGE ID")])?;
    // Docker looks up digests only to show them: asked for, or named by the template.
    let digests = args.digests || args.format.contains(".Digest");
    let listed = engine::images(
        &store,
        &engine::ImagesRequest {
            repository,
            all: args.all,
            filters,
            digests,
        },
    )?;
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
    if !matches!(format, super::ListFormat::Table) {
        let rows: Vec<Value> = listed
            .iter()
            .map(|image| image_row(image, &id(image), digests))
            .collect();
        format.print(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = listed
        .iter()
        .map(|image| {
            let mut row = vec![image.repository.clone(), image.tag.clone()];
            if args.digests {
                row.push(shown_digest(image));
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

fn shown_digest(image: &engine::ListedImage) -> String {
    image
        .repo_digest
        .map_or_else(|| "<none>".to_string(), |d| d.to_string())
}

/// A row as Docker's image formatter gives its fields (`cli/command/formatter/image.go`);
/// the listing asks for no container counts or shared sizes, so those are `N/A` there too.
fn image_row(image: &engine::ListedImage, id: &str, digests: bool) -> Value {
    let created = image.created.as_deref();
    let size = human_size(image.size);
    json!({
        "Containers": "N/A",
        // Beside Docker's fields, the time itself, for scripts.
        "Created": created,
        "CreatedAt": created_at(created),
        "CreatedSince": human_age(created),
        "Digest": if digests { shown_digest(image) } else { "<none>".to_string() },
        "ID": id,
        // lade's own: the platforms of a multi-platform image (empty for one image).
        "Platforms": image.platforms.join(","),
        "Repository": image.repository,
        "SharedSize": "N/A",
        "Size": size,
        "Tag": image.tag,
        "UniqueSize": "N/A",
        "VirtualSize": size,
    })
}

/// Go's `time.Time.String()` in the local zone, as Docker prints `.CreatedAt`:
/// `2006-01-02 15:04:05 -0700 MST`.
pub(super) fn created_at(created: Option<&str>) -> String {
    let time = created
        .and_then(|c| c.parse::<jiff::Timestamp>().ok())
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let zoned = time.to_zoned(jiff::tz::TimeZone::system());
    zoned.strftime("%Y-%m-%d %H:%M:%S %z %Z").to_string()
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
    /// `image inspect --platform` (Docker's top-level inspect has none).
    #[arg(skip)]
    pub platform: Option<String>,
}

/// `image inspect`: `inspect` of images, with Docker's `--platform`.
#[derive(Debug, Args)]
pub struct ImageInspectArgs {
    /// Format each item with a Go template (`{{.State.Status}}`, `{{json .Config}}`)
    #[arg(short, long, value_name = "TEMPLATE")]
    pub format: Option<String>,
    /// Of a multi-platform image, its image for this platform (os/arch[/variant])
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    #[arg(value_name = "NAME", required = true)]
    pub names: Vec<String>,
}

impl ImageInspectArgs {
    /// The `inspect` these arguments stand for, of images only.
    pub fn of_images(self) -> InspectArgs {
        InspectArgs {
            format: self.format,
            kind: Some(InspectKind::Image),
            images: self.names,
            platform: self.platform,
        }
    }
}

/// `--platform` as os/arch[/variant], named in the error.
pub(super) fn platform_arg(text: Option<&str>) -> Result<Option<crate::oci::Platform>> {
    text.map(|text| {
        crate::oci::Platform::parse(text)
            .with_context(|| format!("invalid --platform {text:?}: expected os/arch[/variant]"))
    })
    .transpose()
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
            platform: None,
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
    let platform = platform_arg(args.platform.as_deref())?;
    let code = super::each_item(&args.images, |reference| {
        out.push(engine::inspect_for(
            &store,
            reference,
            kind,
            platform.as_ref(),
        )?)
    });
    out.finish()?;
    Ok(code)
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Sizes and dates in human units (`-H=false`: bytes, and RFC 3339 times)
    // True unless told: the tree's Go booleans (`cli::tree`) are the false-by-default ones.
    #[arg(short = 'H', long, default_value_t = true, action = ArgAction::Set, value_name = "BOOL",
          num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub human: bool,
    /// Do not shorten ids and CREATED BY
    #[arg(long)]
    pub no_trunc: bool,
    /// Only image ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Output format: table, json, or a Go template (`{{.ID}}\t{{.CreatedBy}}`)
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Of a multi-platform image, the history of its image for this platform
    /// (os/arch[/variant])
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    #[arg(value_name = "IMAGE")]
    pub image: String,
}

pub fn history(store_config: &StoreConfig, args: HistoryArgs) -> Result<ExitCode> {
    let store = super::open_store_read_only(store_config)?;
    let format = super::ListFormat::parse_with_headers(
        &args.format,
        &[
            ("ID", "IMAGE"),
            ("CreatedBy", "CREATED BY"),
            ("Comment", "COMMENT"),
        ],
    )?;
    let platform = platform_arg(args.platform.as_deref())?;
    let rows = engine::history(&store, &args.image, platform.as_ref())?;
    let rows: Vec<Value> = rows
        .iter()
        .map(|row| history_row(row, args.human, !args.no_trunc))
        .collect();
    let field = |row: &Value, name: &str| row[name].as_str().unwrap_or_default().to_string();
    if args.quiet {
        for row in &rows {
            println!("{}", field(row, "ID"));
        }
        return Ok(ExitCode::SUCCESS);
    }
    if format.print(&rows)? {
        return Ok(ExitCode::SUCCESS);
    }
    let created = if args.human {
        "CreatedSince"
    } else {
        "CreatedAt"
    };
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            vec![
                field(row, "ID"),
                field(row, created),
                // A heredoc's lines would break the table's.
                field(row, "CreatedBy").replace('\n', " "),
                field(row, "Size"),
                field(row, "Comment"),
            ]
        })
        .collect();
    let created_header = if args.human { "CREATED" } else { "CREATED AT" };
    print_table(
        &["IMAGE", created_header, "CREATED BY", "SIZE", "COMMENT"],
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
    super::render::print_pruned("Images", "deleted: ", &removed, Some("images"));
    Ok(ExitCode::SUCCESS)
}

/// A row as Docker's history formatter gives its fields (`formatter_history.go`).
fn history_row(row: &engine::HistoryRow, human: bool, trunc: bool) -> Value {
    let id = match row.id {
        Some(id) if trunc => id.short(),
        Some(id) => id.to_string(),
        None => "<missing>".to_string(),
    };
    let created_at = rfc3339_local(row.created.as_deref());
    let created_since = if !human {
        created_at.clone()
    } else {
        match row
            .created
            .as_deref()
            .and_then(|c| c.parse::<jiff::Timestamp>().ok())
        {
            // Docker's epoch for history: older dates are placeholders, not ages.
            Some(time) if time.as_second() > 946_684_800 => human_age(row.created.as_deref()),
            _ => "N/A".to_string(),
        }
    };
    let created_by = row.created_by.replace('\t', " ");
    let created_by = if trunc {
        ellipsis(&created_by, 45)
    } else {
        created_by
    };
    let size = if human {
        human_size(row.size)
    } else {
        row.size.to_string()
    };
    json!({
        "Comment": row.comment,
        "CreatedAt": created_at,
        "CreatedBy": created_by,
        "CreatedSince": created_since,
        "ID": id,
        "Size": size,
    })
}

/// Go's `time.RFC3339` of the time in the local zone (`Z` when that is UTC).
fn rfc3339_local(created: Option<&str>) -> String {
    let time = created
        .and_then(|c| c.parse::<jiff::Timestamp>().ok())
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let zoned = time.to_zoned(jiff::tz::TimeZone::system());
    if zoned.offset().seconds() == 0 {
        zoned.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        zoned.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }
}

/// Docker's `formatter.Ellipsis`: at most `width` characters, the last one `…` when cut.
pub(super) fn ellipsis(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}
