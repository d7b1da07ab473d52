//! Shell completion scripts and man pages, generated from the same clap definitions as
//! the command line itself, so they never drift from it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell: bash, zsh, fish, elvish or powershell
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManPagesArgs {
    /// Where to write them (lade.1, lade-build.1, lade-cache-ls.1, ...)
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// `lade completion bash`: the script on stdout (source it, or install it where the
/// shell's completion loader looks, as `scripts/install.sh` does).
pub fn completion(args: CompletionArgs) -> Result<ExitCode> {
    let mut command = super::command_without_refusals();
    clap_complete::generate(args.shell, &mut command, "lade", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

/// `lade man-pages DIR`: one page per command and subcommand.
pub fn man_pages(args: ManPagesArgs) -> Result<ExitCode> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let mut command = super::command();
    command.build();
    write_pages(&command, "lade", &args.dir)?;
    Ok(ExitCode::SUCCESS)
}

fn write_pages(command: &clap::Command, name: &str, dir: &Path) -> Result<()> {
    let page = command.clone().name(name.to_string());
    let path = dir.join(format!("{name}.1"));
    let mut file =
        std::fs::File::create(&path).with_context(|| format!("cannot write {}", path.display()))?;
    clap_mangen::Man::new(page)
        .render(&mut file)
        .with_context(|| format!("cannot write {}", path.display()))?;
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        if sub.get_name() == "help" {
            continue;
        }
        write_pages(sub, &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(())
}
