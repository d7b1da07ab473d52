//! `lade system`: the store as a whole (`check`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::json;

use super::{open_store, Format};
use crate::store::CheckOptions;

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Check the store: re-hash every blob, follow every reference from the tags to
    /// manifests, configs and layers, and compare every snapshot with what it held when
    /// it was made. Each problem names its digest and the images it touches; the exit
    /// code is 1 when there is any (0 with --repair, which mends them all)
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// References and sizes only: no blob is re-hashed and no snapshot read
    #[arg(long)]
    pub quick: bool,
    /// Remove corrupt snapshots (remade from their layers when next needed), corrupt
    /// blobs, and the images and cached steps that needed them. A good blob is never
    /// removed
    #[arg(long)]
    pub repair: bool,
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

pub fn run(root: Option<PathBuf>, command: SystemCommand) -> Result<ExitCode> {
    match command {
        SystemCommand::Check(args) => check(root, args),
    }
}

fn check(root: Option<PathBuf>, args: CheckArgs) -> Result<ExitCode> {
    let store = open_store(root)?;
    let fingerprint =
        |dir: &std::path::Path| crate::layers::fingerprint(dir).map_err(|e| e.to_string());
    let report = store.check(&CheckOptions {
        quick: args.quick,
        repair: args.repair,
        fingerprint: &fingerprint,
    })?;
    let problems: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "Images": report.images,
                "BlobsHashed": report.blobs,
                "SnapshotsChecked": report.snapshots,
                "SnapshotsUnrecorded": report.unrecorded_snapshots,
                "Problems": problems,
                "Repairs": report.repairs,
            }))?
        ),
        Format::Text => {
            for problem in &problems {
                println!("{}", super::printable(problem));
            }
            for repair in &report.repairs {
                println!("repaired: {repair}");
            }
            let what = if args.quick {
                format!("{} image(s), references and sizes", report.images)
            } else {
                format!(
                    "{} image(s), {} blob(s) re-hashed, {} snapshot(s) compared",
                    report.images, report.blobs, report.snapshots
                )
            };
            let unrecorded = match report.unrecorded_snapshots {
                0 => String::new(),
                n => format!("; {n} snapshot(s) made by an older lade have no fingerprint"),
            };
            match problems.len() {
                0 => eprintln!(
                    "store {}: no problems ({what}{unrecorded})",
                    store.root().display()
                ),
                n => eprintln!(
                    "store {}: {n} problem(s) ({what}{unrecorded}){}",
                    store.root().display(),
                    if args.repair {
                        ""
                    } else {
                        "; --repair mends them"
                    }
                ),
            }
        }
    }
    // Every problem found is one --repair mends (by removing what is broken).
    Ok(if problems.is_empty() || args.repair {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
