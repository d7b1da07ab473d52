//! `lade import`, `save` and `load`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};

use super::progress::{ByteProgress, Mode};
use super::StoreConfig;
use super::{is_dash, open_store, CompressionArg, Progress};
use crate::engine::{
    self, BaseImage, ImportInput, ImportOptions, ImportRequest, ImportSource, LoadInput,
    SaveDestination, SaveFormat, SaveRequest,
};
use crate::oci::ImageRef;

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
    /// The platform the files are for (os/arch[/variant]), as the image's config says
    /// [default: this machine's]
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// The tarball (any compression), or - for standard input
    #[arg(value_name = "FILE|-")]
    pub file: PathBuf,
    /// A name for the image
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub name: Option<String>,
}

pub fn import(store_config: &StoreConfig, args: ImportArgs) -> Result<ExitCode> {
    let config = engine::config_with_changes(BaseImage::default(), &args.changes)
        .map_err(engine::EngineError::from)?;
    let tags = match &args.name {
        Some(name) => vec![name
            .parse::<ImageRef>()
            .with_context(|| format!("invalid name {name:?}"))?],
        None => Vec::new(),
    };
    let store = open_store(store_config)?;
    let request = ImportRequest {
        options: ImportOptions {
            config,
            message: args.message.clone(),
            source_date_epoch: super::source_date_epoch()?,
            compression: args.compression.into(),
            tags,
            platform: args
                .platform
                .as_deref()
                .map(|text| {
                    crate::oci::Platform::parse(text).with_context(|| {
                        format!("invalid --platform {text:?}: expected os/arch[/variant]")
                    })
                })
                .transpose()?,
        },
    };
    let input = ImportInput::open(if is_dash(&args.file) {
        ImportSource::Stdin
    } else {
        ImportSource::File(args.file.clone())
    })?;
    let progress = ByteProgress::new(Mode::from(args.progress), "importing", input.size());
    let image = engine::import(&store, &request, input, &progress)?;
    progress.finish();
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
    /// Of a multi-platform image, save only its image for this platform
    /// (os/arch[/variant])
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
}

pub fn save(store_config: &StoreConfig, args: SaveArgs) -> Result<ExitCode> {
    let store = super::open_store_read_only(store_config)?;
    let request = SaveRequest {
        images: args.images.clone(),
        format: match args.format {
            SaveFormatArg::Docker => SaveFormat::Docker,
            SaveFormatArg::Oci => SaveFormat::Oci,
        },
        platform: super::images::platform_arg(args.platform.as_deref())?,
    };
    let set = engine::save_set(&store, &request)?;
    let progress = ByteProgress::new(Mode::from(args.progress), "saving", Some(set.size()));
    match &args.output {
        Some(path) if !is_dash(path) => {
            engine::save(&store, &set, SaveDestination::File(path.clone()), &progress)?;
        }
        _ => {
            let stdout = std::io::stdout();
            if stdout.is_terminal() {
                bail!("refusing to write an archive to a terminal: use -o FILE or redirect the output");
            }
            let mut out = stdout.lock();
            engine::save(&store, &set, SaveDestination::Stream(&mut out), &progress)?;
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
    let archive = LoadInput::open(&store, input)?;
    let mode = if args.quiet {
        Mode::Quiet
    } else {
        Mode::from(args.progress)
    };
    let progress = ByteProgress::new(mode, "loading", archive.size());
    let loaded = engine::load(&store, &archive, &progress)?;
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
