//! `lade import`, `save` and `load`.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};

use super::progress::{ByteProgress, Mode};
use super::StoreConfig;
use super::{is_dash, open_store, CompressionArg, Progress};
use crate::archive::{self, ImportOptions, SaveFormat, SaveItem};
use crate::graph::{self, BaseImage, PlanOptions, StepKind};
use crate::oci::{ContainerConfig, ImageRef};
use crate::parser;

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Apply a Dockerfile instruction to the image's config (CMD, ENTRYPOINT, ENV,
    /// EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR or STOPSIGNAL)
    #[arg(short, long = "change", value_name = "INSTRUCTION")]
    pub changes: Vec<String>,
    /// A comment for the image's history
    #[arg(short, long)]
    pub message: Option<String>,
    /// Layer compression: gzip (the default) is what every client reads when the image
    /// is pushed as it is; zstd is smaller, but older clients fail on it
    #[arg(long, value_enum, default_value = "gzip")]
    pub compression: CompressionArg,
    /// How to show progress
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: Progress,
    /// The tarball (any compression), or - for standard input
    #[arg(value_name = "FILE|-")]
    pub file: PathBuf,
    /// A name for the image
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub name: Option<String>,
}

/// The config that `--change` instructions describe, through the same parser and
/// expansion rules as a Dockerfile.
fn config_from_changes(changes: &[String]) -> Result<ContainerConfig> {
    config_with_changes(BaseImage::default(), changes)
}

/// `base`'s config with `--change` instructions applied (`import`, `commit`).
pub(super) fn config_with_changes(base: BaseImage, changes: &[String]) -> Result<ContainerConfig> {
    if changes.is_empty() {
        return Ok(base.config);
    }
    const ALLOWED: [&str; 10] = [
        "CMD",
        "ENTRYPOINT",
        "ENV",
        "EXPOSE",
        "LABEL",
        "ONBUILD",
        "USER",
        "VOLUME",
        "WORKDIR",
        "STOPSIGNAL",
    ];
    let mut text = String::from("FROM scratch\n");
    for change in changes {
        let keyword = change
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        if !ALLOWED.contains(&keyword.as_str()) {
            bail!(
                "--change {change:?}: only {} are allowed",
                ALLOWED.join(", ")
            );
        }
        text.push_str(change);
        text.push('\n');
    }
    let dockerfile = parser::parse("--change", text.into_bytes())?;
    let plan = graph::plan(&dockerfile, &PlanOptions::default())?;
    let stage = graph::expand_stage(&plan, 0, &base)?;
    debug_assert!(stage
        .steps
        .iter()
        .all(|s| matches!(s.kind, StepKind::Config | StepKind::Workdir { .. })));
    Ok(stage.config)
}

pub fn import(store_config: &StoreConfig, args: ImportArgs) -> Result<ExitCode> {
    let config = config_from_changes(&args.changes)?;
    let tags = match &args.name {
        Some(name) => vec![name
            .parse::<ImageRef>()
            .with_context(|| format!("invalid name {name:?}"))?],
        None => Vec::new(),
    };
    let store = open_store(store_config)?;
    let options = ImportOptions {
        config,
        message: args.message.clone(),
        source_date_epoch: super::source_date_epoch()?,
        compression: args.compression.into(),
        tags,
    };
    let mode = super::progress::Mode::from(args.progress);
    let image = if is_dash(&args.file) {
        let progress = ByteProgress::new(mode, "importing", None);
        let image =
            archive::import_rootfs(&store, &mut std::io::stdin().lock(), &options, &progress)
                .context("cannot import standard input")?;
        progress.finish();
        image
    } else {
        let mut file = File::open(&args.file)
            .with_context(|| format!("cannot open {}", args.file.display()))?;
        let total = file.metadata().ok().map(|m| m.len());
        let progress = ByteProgress::new(mode, "importing", total);
        let image = archive::import_rootfs(&store, &mut file, &options, &progress)
            .with_context(|| format!("cannot import {}", args.file.display()))?;
        progress.finish();
        image
    };
    println!("{}", image.id);
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SaveFormatArg {
    /// docker-archive (manifest.json) with an OCI layout alongside, as Docker 25+ writes
    /// it: the default, which every Docker and podman loads
    #[value(alias = "docker-archive")]
    Docker,
    /// OCI image layout only (no manifest.json): Docker before 25 cannot load it
    #[value(alias = "oci-archive")]
    Oci,
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Write to this file instead of standard output
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Archive format: docker (docker-archive, the default) or oci (an OCI layout, which
    /// `docker load` before Docker 25 cannot read); podman's names docker-archive and
    /// oci-archive work too
    #[arg(long, value_enum, default_value = "docker")]
    pub format: SaveFormatArg,
    /// How to show progress
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: Progress,
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
}

pub fn save(store_config: &StoreConfig, args: SaveArgs) -> Result<ExitCode> {
    let store = super::open_store_read_only(store_config)?;
    let mut items: Vec<SaveItem> = Vec::new();
    for reference in &args.images {
        let image = store.image(reference)?;
        // Saved by name: under that name; by id: under no name, as Docker does.
        let name = reference
            .parse::<ImageRef>()
            .ok()
            .filter(|r| image.tags.contains(&r.familiar()));
        match items
            .iter_mut()
            .find(|i| i.image.manifest_digest == image.manifest_digest)
        {
            Some(item) => item.names.extend(name),
            None => items.push(SaveItem {
                image,
                names: name.into_iter().collect(),
            }),
        }
    }
    let format = match args.format {
        SaveFormatArg::Docker => SaveFormat::Docker,
        SaveFormatArg::Oci => SaveFormat::Oci,
    };
    let total: u64 = items
        .iter()
        .flat_map(|i| i.image.layers.iter())
        .map(|l| {
            if format == SaveFormat::Docker {
                l.tar_size
            } else {
                l.size
            }
        })
        .sum();
    let progress = ByteProgress::new(Mode::from(args.progress), "saving", Some(total));
    match &args.output {
        Some(path) if !is_dash(path) => {
            // Written beside the target and renamed: never a half-written archive.
            let tmp = path.with_file_name(format!(
                ".{}.lade-tmp",
                path.file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default()
            ));
            let result = (|| -> Result<()> {
                let file = File::create(&tmp)
                    .with_context(|| format!("cannot create {}", tmp.display()))?;
                let mut out = BufWriter::with_capacity(1 << 20, file);
                archive::save(&store, &items, format, &mut out, &progress)?;
                let file = out.into_inner().map_err(|e| e.into_error())?;
                file.sync_all()?;
                std::fs::rename(&tmp, path)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                Ok(())
            })();
            if result.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            result?;
        }
        _ => {
            let stdout = std::io::stdout();
            if stdout.is_terminal() {
                bail!("refusing to write an archive to a terminal: use -o FILE or redirect the output");
            }
            let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
            archive::save(&store, &items, format, &mut out, &progress)?;
            out.flush()?;
        }
    }
    progress.finish();
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from this file instead of standard input
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Print nothing but errors
    #[arg(short, long)]
    pub quiet: bool,
    /// How to show progress
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: Progress,
}

pub fn load(store_config: &StoreConfig, args: LoadArgs) -> Result<ExitCode> {
    let store = open_store(store_config)?;
    let input = args.input.as_deref().filter(|p| !is_dash(p));
    if input.is_none() && std::io::stdin().is_terminal() {
        bail!("no archive to load: use -i FILE or redirect standard input");
    }
    let (file, _staging) = archive::open_input(&store, input)?;
    let total = file.metadata().ok().map(|m| m.len());
    let mode = if args.quiet {
        Mode::Quiet
    } else {
        Mode::from(args.progress)
    };
    let progress = ByteProgress::new(mode, "loading", total);
    let source = input.map_or_else(|| "standard input".to_string(), |p| p.display().to_string());
    let loaded =
        archive::load(&store, &file, &progress).with_context(|| format!("cannot load {source}"))?;
    progress.finish();
    if !args.quiet {
        for image in loaded {
            if image.names.is_empty() {
                println!("Loaded image ID: {}", image.image.id);
            }
            for name in image.names {
                println!("Loaded image: {name}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
