//! A container's files: `lade cp`, `export`, `diff` and `commit`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;

use super::{
    open_store, open_store_read_only, printable, source_date_epoch, OneContainer, StoreConfig,
};
use crate::engine::{self, CommitRequest, CopyRequest, ExportRequest};
use crate::oci::ImageRef;

/// `lade diff`: A/C/D lines, as Docker prints them.
pub fn diff(store_config: &StoreConfig, args: OneContainer) -> Result<ExitCode> {
    let store = open_store_read_only(store_config)?;
    for change in engine::diff(&store, &args.container)? {
        println!("{} {}", change.kind, printable(&change.path));
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to a file instead of standard output
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// `lade export`: the container's root file system as a tar.
pub fn export(store_config: &StoreConfig, args: ExportArgs) -> Result<ExitCode> {
    if args.output.is_none() && std::io::stdout().is_terminal() {
        bail!("refusing to write a tar to a terminal: use -o FILE or a redirection");
    }
    let request = ExportRequest {
        container: args.container,
        output: args.output,
    };
    let store = open_store(store_config)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    engine::export(&store, &request, &mut out)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct CpArgs {
    /// Keep owners (uid and gid) as they are in the source
    #[arg(short, long)]
    pub archive: bool,
    /// Follow a symlink named as SRC
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// CONTAINER:SRC, a host path, or `-` for a tar stream on standard input
    #[arg(value_name = "SRC")]
    pub source: String,
    /// CONTAINER:DEST, a host path, or `-` for a tar stream on standard output
    #[arg(value_name = "DEST")]
    pub destination: String,
}

/// `lade cp`.
pub fn cp(store_config: &StoreConfig, args: CpArgs) -> Result<ExitCode> {
    let request = CopyRequest::new(
        &args.source,
        &args.destination,
        args.archive,
        args.follow_link,
    )?;
    if request.writes_stream() && std::io::stdout().is_terminal() {
        bail!("refusing to write a tar to a terminal: give a path or a redirection");
    }
    let store = open_store(store_config)?;
    let mut stdout = std::io::stdout().lock();
    engine::copy(&store, &request, &mut std::io::stdin().lock(), &mut stdout)?;
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Commit message (the history comment)
    #[arg(short, long)]
    pub message: Option<String>,
    /// Author
    #[arg(short, long)]
    pub author: Option<String>,
    /// Apply a Dockerfile instruction to the new image's config (CMD, ENTRYPOINT, ENV,
    /// EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL)
    #[arg(short = 'c', long = "change", value_name = "INSTRUCTION")]
    pub changes: Vec<String>,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// The new image's name
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub tag: Option<String>,
}

/// `lade commit`: the container's changes as a new image; prints its id.
pub fn commit(store_config: &StoreConfig, args: CommitArgs) -> Result<ExitCode> {
    let tag = args
        .tag
        .as_deref()
        .map(|t| {
            t.parse::<ImageRef>()
                .map_err(|e| anyhow::anyhow!("invalid name {t:?}: {e}"))
        })
        .transpose()?;
    let request = CommitRequest {
        container: args.container,
        changes: args.changes,
        message: args.message,
        author: args.author,
        tag,
        source_date_epoch: source_date_epoch()?,
    };
    let store = open_store(store_config)?;
    println!("{}", engine::commit(&store, &request)?);
    Ok(ExitCode::SUCCESS)
}
