//! Docker's command tree around lade's commands: the management forms (`container ls`,
//! `image rm`, `builder prune`) as the top-level commands they are, and the clap tree
//! the parser, help, completion and man pages are made from (refused Docker names
//! stood in, global options shown once).

use clap::{CommandFactory, Subcommand};

use super::*;

/// `lade container VERB`: each is the top-level command of that name (`container ls`
/// is `ps`), with the same options.
#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// Attach to a running container's output, and its input when it keeps it open
    Attach(containers::AttachArgs),
    /// Make an image of a container's changes
    Commit(containers::CommitArgs),
    /// Copy files between a container and the host (or a tar stream, `-`)
    Cp(containers::CpArgs),
    /// Create a container without starting it (as `run` would make it)
    Create(containers::RunArgs),
    /// Show what a container changed in its file system (A added, C changed, D deleted)
    Diff(containers::OneContainer),
    /// Run a command in a running container
    Exec(containers::ExecArgs),
    /// Write a container's root file system as a tar
    Export(containers::ExportArgs),
    /// Show containers as JSON (or through a --format template)
    Inspect(images::ObjectInspectArgs),
    /// Send a signal to running containers (default SIGKILL)
    Kill(containers::KillArgs),
    /// Show what a detached container wrote (stdout and stderr, each to its own)
    Logs(containers::LogsArgs),
    /// List containers
    #[command(visible_aliases = ["list", "ps"])]
    Ls(containers::PsArgs),
    /// Freeze the processes of running containers
    Pause(containers::ContainersArgs),
    /// Show a running container's published ports
    Port(containers::PortArgs),
    /// Remove every container that is not running
    Prune(containers::PruneArgs),
    /// Give a container another name
    Rename(containers::RenameArgs),
    /// Stop and start containers again
    Restart(containers::StopArgs),
    /// Remove containers
    #[command(visible_alias = "remove")]
    Rm(containers::RmArgs),
    /// Run a command in a new container
    Run(containers::RunArgs),
    /// Start stopped or created containers (detached, their files kept; -a attached)
    Start(containers::StartArgs),
    /// Show what running containers use (CPU, memory, processes)
    Stats(containers::StatsArgs),
    /// Stop running containers: their stop signal, then SIGKILL after a timeout
    Stop(containers::StopArgs),
    /// Show a running container's processes (the host's ps)
    Top(containers::TopArgs),
    /// Resume paused containers
    Unpause(containers::ContainersArgs),
    /// Change containers' limits (memory, CPUs, processes) and restart policy: kept for
    /// their next start, and applied at once to those that run
    Update(containers::UpdateArgs),
    /// Wait until containers stop; print their exit codes
    Wait(containers::ContainersArgs),
}

/// `lade image VERB`: each is the top-level command of that name (`image ls` is
/// `images`, `image rm` is `rmi`), with the same options.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Build an image from a Dockerfile
    Build(Box<build::BuildArgs>),
    /// Show the history of an image
    History(images::HistoryArgs),
    /// Make an image of a root filesystem tarball
    Import(archive::ImportArgs),
    /// Show images as JSON (or through a --format template)
    Inspect(images::ImageInspectArgs),
    /// Add the images of a tar archive (docker-archive or OCI, compressed or not)
    Load(archive::LoadArgs),
    /// List images
    #[command(visible_alias = "list")]
    Ls(images::ImagesArgs),
    /// Remove dangling images (untagged ones no container uses; --all: every unused one)
    Prune(images::ImagePruneArgs),
    /// Pull an image from a registry (docker.io unless the name says another)
    Pull(registry::PullArgs),
    /// Push an image to a registry (its layers as stored, the manifest last)
    Push(registry::PushArgs),
    /// Remove images
    #[command(visible_alias = "remove")]
    Rm(images::RmiArgs),
    /// Write images to a tar archive (docker-archive with an OCI layout, or OCI)
    Save(archive::SaveArgs),
    /// Give an image another name
    Tag(images::TagArgs),
}

/// `lade builder`: Docker's name for the build cache's commands.
#[derive(Debug, Subcommand)]
pub enum BuilderCommand {
    /// Build an image from a Dockerfile (`lade build`)
    Build(Box<build::BuildArgs>),
    /// Remove build cache (`lade cache prune`)
    Prune(cache::PruneArgs),
}

impl Command {
    /// The top-level command a management form stands for (`container ls` is `ps`), so
    /// that each has one handler and one set of rules (root, mounts). The prunes of
    /// `container` and `image` have no top-level form and stay as they are.
    pub(super) fn into_top_level(self) -> Command {
        use ContainerCommand as C;
        match self {
            Command::Container(command) => match command {
                C::Attach(args) => Command::Attach(args),
                C::Commit(args) => Command::Commit(args),
                C::Cp(args) => Command::Cp(args),
                C::Create(args) => Command::Create(args),
                C::Diff(args) => Command::Diff(args),
                C::Exec(args) => Command::Exec(args),
                C::Export(args) => Command::Export(args),
                C::Inspect(args) => Command::Inspect(args.of(images::InspectKind::Container)),
                C::Kill(args) => Command::Kill(args),
                C::Logs(args) => Command::Logs(args),
                C::Ls(args) => Command::Ps(args),
                C::Pause(args) => Command::Pause(args),
                C::Port(args) => Command::Port(args),
                C::Rename(args) => Command::Rename(args),
                C::Restart(args) => Command::Restart(args),
                C::Rm(args) => Command::Rm(args),
                C::Run(args) => Command::Run(args),
                C::Start(args) => Command::Start(args),
                C::Stats(args) => Command::Stats(args),
                C::Stop(args) => Command::Stop(args),
                C::Top(args) => Command::Top(args),
                C::Unpause(args) => Command::Unpause(args),
                C::Update(args) => Command::Update(args),
                C::Wait(args) => Command::Wait(args),
                prune @ C::Prune(_) => Command::Container(prune),
            },
            Command::Image(command) => match command {
                ImageCommand::Build(args) => Command::Build(*args),
                ImageCommand::History(args) => Command::History(args),
                ImageCommand::Import(args) => Command::Import(args),
                ImageCommand::Inspect(args) => Command::Inspect(args.of_images()),
                ImageCommand::Load(args) => Command::Load(args),
                ImageCommand::Ls(args) => Command::Images(args),
                ImageCommand::Pull(args) => Command::Pull(args),
                ImageCommand::Push(args) => Command::Push(args),
                ImageCommand::Rm(args) => Command::Rmi(args),
                ImageCommand::Save(args) => Command::Save(args),
                ImageCommand::Tag(args) => Command::Tag(args),
                prune @ ImageCommand::Prune(_) => Command::Image(prune),
            },
            Command::Builder(BuilderCommand::Build(args)) => Command::Build(*args),
            Command::Builder(BuilderCommand::Prune(args)) => {
                Command::Cache(cache::CacheCommand::Prune(args))
            }
            Command::System(system::SystemCommand::Info(args)) => Command::Info(args),
            Command::System(system::SystemCommand::Events(args)) => Command::Events(args),
            command => command,
        }
    }
}

/// lade's command line as clap sees it: the derived tree, the stand-ins for Docker's
/// names lade refuses, and the global options shown once, in `lade --help` (clap would
/// list an option made global in every subcommand's help as well).
pub(crate) fn command() -> clap::Command {
    with_hidden_globals(refusals::with_refusals(Cli::command(), None), None)
}

/// The command tree as [`command`] makes it for the commands on the path `args` invokes
/// (`lade container run ...`: the root, `container` and `container run`), the others
/// as derived: they cannot match, and making all of Docker's tree costs more than the
/// rest of a short command. When the path is not plain (`help`, an option lade lacks
/// before the command, words that are not UTF-8), the whole tree.
pub(crate) fn command_for(args: &[std::ffi::OsString]) -> clap::Command {
    let tree = Cli::command();
    let path = invoked_path(&tree, args);
    let only = path.as_deref();
    with_hidden_globals(refusals::with_refusals(tree, only), only)
}

/// The command tree without the refused Docker names: what completion offers (the
/// stand-ins are hidden, but completion scripts list hidden commands too).
pub(crate) fn command_without_refusals() -> clap::Command {
    with_hidden_globals(Cli::command(), None)
}

/// The canonical names of the subcommands `args` (the program's name first) goes
/// through in the derived tree, read as clap would: options before each subcommand
/// are the root's global ones or the command's own, with their values. `None` when
/// that cannot be told without clap's whole parse.
fn invoked_path(tree: &clap::Command, args: &[std::ffi::OsString]) -> Option<Vec<String>> {
    let mut path = Vec::new();
    let mut command = tree;
    let mut words = args.iter().skip(1);
    while let Some(word) = words.next() {
        let word = word.to_str()?;
        let option = if let Some(long) = word.strip_prefix("--") {
            if long.is_empty() {
                break;
            }
            let (name, value) = match long.split_once('=') {
                Some((name, _)) => (name, true),
                None => (long, false),
            };
            let arg = option_of(tree, command, |arg| {
                arg.get_long_and_visible_aliases()
                    .is_some_and(|names| names.contains(&name))
                    || arg
                        .get_all_aliases()
                        .is_some_and(|names| names.contains(&name))
            })?;
            Some((arg, value))
        } else if let Some(shorts) = word.strip_prefix('-').filter(|s| !s.is_empty()) {
            let mut chars = shorts.chars();
            let short = chars.next()?;
            let arg = option_of(tree, command, |arg| {
                arg.get_short_and_visible_aliases()
                    .is_some_and(|names| names.contains(&short))
                    || arg
                        .get_all_short_aliases()
                        .is_some_and(|names| names.contains(&short))
            })?;
            let rest = chars.as_str();
            if !rest.is_empty() && !takes_value(arg)? {
                // a cluster of flags: clap's to read
                return None;
            }
            Some((arg, !rest.is_empty()))
        } else {
            None
        };
        match option {
            Some((arg, value_given)) => {
                if takes_value(arg)? && !value_given {
                    words.next()?;
                }
            }
            None => {
                if word == "help" && command.has_subcommands() {
                    return None;
                }
                match command.find_subcommand(word) {
                    Some(sub) => {
                        path.push(sub.get_name().to_string());
                        command = sub;
                    }
                    None => break,
                }
            }
        }
    }
    Some(path)
}

/// Whether an option takes the next word as its value; `None` when that depends on
/// more than the option (an optional value, several values, `=` required).
fn takes_value(arg: &clap::Arg) -> Option<bool> {
    if !arg.get_action().takes_values() {
        return Some(false);
    }
    let one = arg
        .get_num_args()
        .is_none_or(|range| range.min_values() == 1 && range.max_values() == 1);
    (one && !arg.is_require_equals_set()).then_some(true)
}

/// The option of `command`, or a global one of the root, that `is` names.
fn option_of<'a>(
    root: &'a clap::Command,
    command: &'a clap::Command,
    is: impl Fn(&clap::Arg) -> bool,
) -> Option<&'a clap::Arg> {
    command.get_arguments().find(|arg| is(arg)).or_else(|| {
        root.get_arguments()
            .find(|arg| arg.is_global_set() && is(arg))
    })
}

/// `only`: the path of the commands to change (the others are left as derived); `None`
/// for all.
fn with_hidden_globals(tree: clap::Command, only: Option<&[String]>) -> clap::Command {
    let globals: Vec<clap::Arg> = tree
        .get_arguments()
        .filter(|arg| arg.is_global_set())
        .map(|arg| arg.clone().hide(true))
        .collect();
    hide_globals(tree, &globals, only)
}

/// Gives every subcommand (on `only`, when given) its own hidden copy of the global
/// options: clap then propagates nothing, and they show in `lade --help` alone.
fn hide_globals(
    mut command: clap::Command,
    globals: &[clap::Arg],
    only: Option<&[String]>,
) -> clap::Command {
    let names: Vec<String> = match only {
        Some([]) => Vec::new(),
        Some([first, ..]) => vec![first.clone()],
        None => command
            .get_subcommands()
            .map(|sub| sub.get_name().to_string())
            .collect(),
    };
    let rest = only.map(|path| &path[1.min(path.len())..]);
    for name in names {
        command = command.mut_subcommand(name, |mut sub| {
            for arg in globals {
                sub = sub.arg(arg.clone());
            }
            hide_globals(sub, globals, rest)
        });
    }
    // A single-value option given twice takes its last value, as Docker's flags do
    // (`--name a --name b` names it b); lists still gather every value.
    go_booleans(command).args_override_self(true)
}

/// Docker's boolean flags are Go's (pflag): `-d` alone, or with a value after `=`
/// (`-d=false`, `--rm=true`), never the next word. Every boolean flag of a command
/// becomes one here, once for the whole tree.
fn go_booleans(mut command: clap::Command) -> clap::Command {
    let flags: Vec<clap::Id> = command
        .get_arguments()
        .filter(|arg| matches!(arg.get_action(), clap::ArgAction::SetTrue))
        .map(|arg| arg.get_id().clone())
        .collect();
    for id in flags {
        command = command.mut_arg(id, |arg| {
            arg.action(clap::ArgAction::Set)
                .value_parser(go_bool)
                .num_args(0..=1)
                .require_equals(true)
                .default_missing_value("true")
                .default_value("false")
                .hide_default_value(true)
                .value_name("BOOL")
        });
    }
    command
}

/// A boolean as Go's `strconv.ParseBool` reads it, which is how Docker reads `--flag=VALUE`.
fn go_bool(text: &str) -> std::result::Result<bool, String> {
    crate::engine::validate::go_bool(text)
        .ok_or_else(|| format!("invalid boolean {text:?}: expected true or false (or 1, 0, t, f)"))
}

#[cfg(test)]
mod tests {
    use clap::FromArgMatches;

    use super::*;

    /// What a tree makes of a command line: the refusal, the parsed command, or clap's
    /// error as it would be shown.
    fn outcome(mut tree: clap::Command, args: &[String]) -> String {
        match tree.try_get_matches_from_mut(args) {
            Ok(matches) => match refusals::refusal(&tree, &matches) {
                Some(message) => message,
                None => format!(
                    "{:?}",
                    Cli::from_arg_matches(&matches).map_err(|error| error.to_string())
                ),
            },
            Err(error) => format!("{:?}: {}", error.kind(), error.render()),
        }
    }

    fn paths(command: &clap::Command, at: &[String], out: &mut Vec<Vec<String>>) {
        for sub in command.get_subcommands() {
            let mut path = at.to_vec();
            path.push(sub.get_name().to_string());
            paths(sub, &path, out);
            out.push(path);
        }
    }

    #[test]
    fn the_tree_made_for_a_command_line_reads_it_as_the_whole_tree_does() {
        let whole = command();
        let mut lines: Vec<Vec<String>> = [
            &["run", "--rm", "--network", "none", "busybox", "true"][..],
            &["--root", "/x", "run", "-d=false", "--rm=true", "busybox"],
            &["--root=/x", "container", "ls", "--all=false"],
            &["container", "run", "-it", "busybox", "sh"],
            &["-D", "ps", "-a"],
            &["--debug=false", "ps"],
            &["--log-level", "debug", "images"],
            &["-lwarn", "ps"],
            &["-l", "bogus", "ps"],
            &["-Dl", "warn", "ps"],
            &["--storage-reserve", "1G", "builder", "prune", "-f"],
            &["--config", "/c", "pull", "busybox"],
            &["-H", "unix:///x", "ps"],
            &["container", "create", "-c", "2", "busybox"],
            &["run", "--gpus", "all", "busybox"],
            &["run", "--privileged", "busybox"],
            &["run", "--name", "a", "--name", "b", "busybox"],
            &["swarm", "init"],
            &["manifest", "annotate", "x"],
            &["system", "dial-stdio"],
            &["image", "ls", "-q"],
            &["help", "run"],
            &["container", "help", "run"],
            &["--version"],
            &["-v"],
            &["--help"],
            &[],
            &["nosuch"],
            &["--", "run"],
            &["-", "run"],
        ]
        .iter()
        .map(|line| line.iter().map(|word| word.to_string()).collect())
        .collect();
        let mut all = Vec::new();
        paths(&whole, &[], &mut all);
        for path in all {
            for tail in [
                &[][..],
                &["--help"],
                &["--bogus"],
                &["-d=false", "x"],
                &["x", "y"],
            ] {
                let mut line = path.clone();
                line.extend(tail.iter().map(|word| word.to_string()));
                lines.push(line);
            }
        }
        for line in lines {
            let args: Vec<String> = std::iter::once("lade".to_string()).chain(line).collect();
            let os_args: Vec<std::ffi::OsString> = args.iter().map(Into::into).collect();
            assert_eq!(
                outcome(command_for(&os_args), &args),
                outcome(whole.clone(), &args),
                "{args:?}"
            );
        }
    }
}
