//! `lade manifest`: multi-platform images made by hand (create, add, inspect, push,
//! rm), as podman's and Docker's `manifest` commands take them.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{ArgAction, Args, Subcommand};

use super::{open_store, StoreConfig};
use crate::engine::{self, ClientOptions, ManifestEntryOptions, PushCompression, PushOptions};
use crate::oci::ImageRef;

#[derive(Debug, Subcommand)]
pub enum ManifestCommand {
    /// Make a manifest list (an OCI image index: one image a platform) named LIST from
    /// images of the store (pulled when it lacks them)
    Create(CreateArgs),
    /// Add an image to a list, for the platform its config names (or the one
    /// --os/--arch/--variant give); it replaces the list's image of that platform
    Add(AddArgs),
    /// Change the platform of an image's entry in a list (what is not given stays)
    Annotate(AnnotateArgs),
    /// Show a list as JSON: the store's of that name, else the registry's
    Inspect(InspectArgs),
    /// Push a list and its images to a registry
    Push(PushArgs),
    /// Remove lists (and those of their images nothing else names)
    #[command(alias = "remove")]
    Rm(RmArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Add to LIST if it exists already
    #[arg(short, long)]
    pub amend: bool,
    /// For an image that is itself a list, add all its platforms (by default, this
    /// machine's only)
    #[arg(long)]
    pub all: bool,
    /// Reach registries over plain HTTP or unverified TLS (Docker's spelling)
    #[arg(long)]
    pub insecure: bool,
    /// Verify registries' TLS certificates (podman's spelling)
    #[arg(long, default_value_t = true, action = ArgAction::Set, value_name = "BOOL")]
    pub tls_verify: bool,
    /// The list's name (NAME[:TAG])
    #[arg(value_name = "LIST")]
    pub list: String,
    /// Images to put in it
    #[arg(value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The platform's operating system, instead of the image config's
    #[arg(long, value_name = "OS")]
    pub os: Option<String>,
    /// The platform's architecture, instead of the image config's
    #[arg(long = "arch", value_name = "ARCH")]
    pub architecture: Option<String>,
    /// The platform's variant (v7, v8...), instead of the image config's
    #[arg(long, value_name = "VARIANT")]
    pub variant: Option<String>,
    /// An annotation of the image's entry (KEY=VALUE); repeat it for more
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,
    /// For an image that is itself a list, add all its platforms
    #[arg(long)]
    pub all: bool,
    /// Verify registries' TLS certificates
    #[arg(long, default_value_t = true, action = ArgAction::Set, value_name = "BOOL")]
    pub tls_verify: bool,
    /// The list (made by `manifest create`)
    #[arg(value_name = "LIST")]
    pub list: String,
    /// The image to add: from the store, or pulled when it lacks it
    #[arg(value_name = "IMAGE")]
    pub image: String,
}

#[derive(Debug, Args)]
pub struct AnnotateArgs {
    /// The entry's operating system
    #[arg(long, value_name = "OS")]
    pub os: Option<String>,
    /// The entry's architecture
    #[arg(long = "arch", value_name = "ARCH")]
    pub architecture: Option<String>,
    /// The entry's variant (v7, v8...; empty removes it)
    #[arg(long, value_name = "VARIANT")]
    pub variant: Option<String>,
    /// The entry's os.version (empty removes it)
    #[arg(long, value_name = "VERSION")]
    pub os_version: Option<String>,
    /// The entry's os.features, comma-separated (empty removes them)
    #[arg(long, value_name = "FEATURES", value_delimiter = ',')]
    pub os_features: Option<Vec<String>>,
    /// The list (made by `manifest create`)
    #[arg(value_name = "LIST")]
    pub list: String,
    /// The image whose entry changes: its name or id in the store, or its digest
    #[arg(value_name = "IMAGE")]
    pub image: String,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Reach the registry over plain HTTP or unverified TLS (Docker's spelling)
    #[arg(long)]
    pub insecure: bool,
    /// Verify the registry's TLS certificate (podman's spelling)
    #[arg(long, default_value_t = true, action = ArgAction::Set, value_name = "BOOL")]
    pub tls_verify: bool,
    /// Each entry's reference, descriptor, raw manifest (base64) and the manifest
    /// itself, as Docker's `manifest inspect -v` shows them
    #[arg(short, long)]
    pub verbose: bool,
    /// The list (or a registry's image)
    #[arg(value_name = "LIST")]
    pub list: String,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Remove the list from the store once pushed
    #[arg(short, long, visible_alias = "rm")]
    pub purge: bool,
    /// Reach the registry over plain HTTP or unverified TLS (Docker's spelling)
    #[arg(long)]
    pub insecure: bool,
    /// Verify the registry's TLS certificate (podman's spelling)
    #[arg(long, default_value_t = true, action = ArgAction::Set, value_name = "BOOL")]
    pub tls_verify: bool,
    /// How layers go out: gzip or zstd, as `lade push --compression`
    #[arg(long, value_name = "gzip|zstd", default_value = "gzip")]
    pub compression: String,
    /// Only print the pushed list's digest
    #[arg(short, long)]
    pub quiet: bool,
    /// The list in the store
    #[arg(value_name = "LIST")]
    pub list: String,
    /// Where to push it [default: LIST itself]; podman's `docker://` prefix is taken
    #[arg(value_name = "DESTINATION")]
    pub destination: Option<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// The lists to remove
    #[arg(value_name = "LIST", required = true)]
    pub lists: Vec<String>,
}

pub fn run(store_config: &StoreConfig, command: ManifestCommand) -> Result<ExitCode> {
    let client = |verify: bool| ClientOptions {
        insecure: !verify,
        credentials: None,
        docker_config: store_config.docker_config.clone(),
    };
    let store = open_store(store_config)?;
    match command {
        ManifestCommand::Create(args) => {
            let digest = engine::manifest_create(
                &store,
                &list_name(&args.list)?,
                &args.images,
                args.amend,
                args.all,
                &client(args.tls_verify && !args.insecure),
            )?;
            println!("{digest}");
        }
        ManifestCommand::Add(args) => {
            let mut annotations = BTreeMap::new();
            for pair in &args.annotations {
                let Some((key, value)) = pair.split_once('=') else {
                    bail!("invalid --annotation {pair:?}: expected KEY=VALUE");
                };
                annotations.insert(key.to_string(), value.to_string());
            }
            let options = ManifestEntryOptions {
                os: args.os.clone(),
                architecture: args.architecture.clone(),
                variant: args.variant.clone(),
                annotations,
                all: args.all,
            };
            let digest = engine::manifest_add(
                &store,
                &list_name(&args.list)?,
                &args.image,
                &options,
                &client(args.tls_verify),
            )?;
            println!("{digest}");
        }
        ManifestCommand::Annotate(args) => {
            engine::manifest_annotate(
                &store,
                &list_name(&args.list)?,
                &args.image,
                &engine::PlatformAnnotation {
                    os: args.os,
                    architecture: args.architecture,
                    variant: args.variant,
                    os_version: args.os_version,
                    os_features: args.os_features,
                },
            )?;
        }
        ManifestCommand::Inspect(args) => {
            let inspect = if args.verbose {
                engine::manifest_inspect_verbose
            } else {
                engine::manifest_inspect
            };
            let text = inspect(
                &store,
                &args.list,
                &client(args.tls_verify && !args.insecure),
            )?;
            println!("{text}");
        }
        ManifestCommand::Push(args) => {
            let list = list_name(&args.list)?;
            let destination = match &args.destination {
                Some(text) => list_name(text.strip_prefix("docker://").unwrap_or(text))?,
                None => list.clone(),
            };
            let compression = match args.compression.as_str() {
                "gzip" => PushCompression::Gzip,
                "zstd" => PushCompression::Zstd,
                other => bail!("invalid --compression {other:?}: expected gzip or zstd"),
            };
            let options = PushOptions {
                client: client(args.tls_verify && !args.insecure),
                compression,
                force_compression: false,
            };
            let quiet = args.quiet;
            let digest = engine::manifest_push(
                &store,
                &list,
                &destination,
                &options,
                args.purge,
                &|line| {
                    if !quiet {
                        println!("{line}");
                    }
                },
            )?;
            println!("{digest}");
        }
        ManifestCommand::Rm(args) => {
            for list in &args.lists {
                engine::manifest_rm(&store, &list_name(list)?)?;
                println!("{list}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A list's name: a reference without a digest.
fn list_name(text: &str) -> Result<ImageRef> {
    let reference: ImageRef = text
        .parse()
        .with_context(|| format!("invalid list name {text:?}"))?;
    if reference.digest().is_some() {
        bail!("invalid list name {text:?}: a list is named by a tag, not a digest");
    }
    Ok(reference)
}
