//! The command line: clap types, turning arguments into the engine's typed requests
//! (the library's option structs for the commands not moved to the engine yet),
//! rendering tables, progress and JSON, and exit codes. Library code never sees a clap
//! type, and everything that prints lives here.

mod archive;
mod build;
mod cache;
#[cfg(test)]
mod compat;
mod compose;
mod confirm;
mod containers;
mod docs;
mod events;
mod images;
mod manifest;
mod networks;
mod plan;
mod progress;
mod refusals;
mod registry;
mod render;
mod system;
mod template;
mod tree;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::engine::{Compression, Store, StoreOptions};

pub(crate) use render::{human_age, human_duration, human_size, print_table};
pub(crate) use tree::{command, command_without_refusals};
pub use tree::{BuilderCommand, ContainerCommand, ImageCommand};

/// A daemonless, Docker-compatible container tool.
#[derive(Debug, Parser)]
#[command(
    name = "lade",
    version = concat!("version ", env!("CARGO_PKG_VERSION")),
    disable_version_flag = true,
    about,
    long_about = None
)]
pub struct Cli {
    /// Print version information and quit (as `docker -v`: "lade version X")
    #[arg(short = 'v', long = "version", action = clap::ArgAction::Version, help_heading = GLOBAL_OPTIONS)]
    pub version: (),

    /// Store directory [default: $LADE_ROOT, else /var/lib/lade as root, else $XDG_DATA_HOME/lade]
    #[arg(long, global = true, value_name = "DIR", help_heading = GLOBAL_OPTIONS)]
    pub root: Option<PathBuf>,

    /// Free space that unpacking archives (import, load, ADD) leaves on the store's file
    /// system: it stops with an error before going below [default: 1GiB, or 5% of the
    /// file system when smaller]
    #[arg(
        long,
        global = true,
        value_name = "SIZE",
        env = "LADE_STORAGE_RESERVE",
        help_heading = GLOBAL_OPTIONS
    )]
    pub storage_reserve: Option<String>,
    /// The storage driver of rootless lade: `overlay` (the kernel's, where it lets a
    /// user namespace mount it: Linux 5.11 and later) or `fuse-overlayfs`. Probed
    /// once when not given; root always uses the kernel's overlay
    #[arg(
        long,
        global = true,
        value_name = "DRIVER",
        env = "LADE_STORAGE_DRIVER",
        help_heading = GLOBAL_OPTIONS
    )]
    pub storage_driver: Option<String>,

    /// Docker's configuration directory, where registry credentials are read and saved
    /// (config.json and the credential helpers it names) [default: $DOCKER_CONFIG, else
    /// ~/.docker]
    #[arg(long, value_name = "DIR", help_heading = GLOBAL_OPTIONS)]
    pub config: Option<PathBuf>,

    /// Errors with every cause underneath them
    #[arg(short = 'D', long, help_heading = GLOBAL_OPTIONS)]
    pub debug: bool,

    /// Docker's logging level: lade prints only warnings and errors, and `debug` is --debug
    #[arg(short = 'l', long, value_enum, value_name = "LEVEL", help_heading = GLOBAL_OPTIONS)]
    pub log_level: Option<LogLevel>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build an image from a Dockerfile
    Build(build::BuildArgs),
    /// Show and prune the build cache
    #[command(subcommand)]
    Cache(cache::CacheCommand),
    /// Make an image of a root filesystem tarball (like `docker import`)
    Import(archive::ImportArgs),
    /// List images
    Images(images::ImagesArgs),
    /// Give an image another name
    Tag(images::TagArgs),
    /// Remove images
    Rmi(images::RmiArgs),
    /// Show containers and images as JSON (or through a --format template)
    Inspect(images::InspectArgs),
    /// Show the history of an image
    ///
    /// CREATED BY is each step as written, its variables expanded. Steps that only
    /// change the config (ENV, LABEL, CMD...) are not cached, so they show the time of
    /// their stage's next cached step (else the step before them): a rebuild from the
    /// cache gives the same image id.
    History(images::HistoryArgs),
    /// Write images to a tar archive (docker-archive with an OCI layout, or OCI)
    Save(archive::SaveArgs),
    /// Add the images of a tar archive (docker-archive or OCI, compressed or not)
    Load(archive::LoadArgs),
    /// Run a command in a new container
    Run(containers::RunArgs),
    /// List containers
    Ps(containers::PsArgs),
    /// Show what happens to containers, images, networks and volumes: past events
    /// (--since), then new ones as they happen, until interrupted or --until
    Events(events::EventsArgs),
    /// Remove containers
    Rm(containers::RmArgs),
    /// Create a container without starting it (as `run` would make it)
    Create(containers::RunArgs),
    /// Run a command in a running container
    Exec(containers::ExecArgs),
    /// Give a container another name
    Rename(containers::RenameArgs),
    /// Show what a container changed in its file system (A added, C changed, D deleted)
    Diff(containers::OneContainer),
    /// Write a container's root file system as a tar
    Export(containers::ExportArgs),
    /// Copy files between a container and the host (or a tar stream, `-`)
    ///
    /// `lade cp CONTAINER:SRC DEST`, `lade cp SRC CONTAINER:DEST`, with Docker's rules:
    /// a directory lands inside an existing directory under its own name, or becomes the
    /// destination when that does not exist; `SRC/.` copies a directory's contents. The
    /// container may be running or stopped (a stopped container's volumes are not in
    /// its view). Paths in the container resolve inside its root, symlinks included.
    /// Copied files belong to root unless `-a` keeps their owners.
    Cp(containers::CpArgs),
    /// Make an image of a container's changes
    Commit(containers::CommitArgs),
    /// Show a running container's processes (the host's ps)
    Top(containers::TopArgs),
    /// Pull an image from a registry (docker.io unless the name says another)
    Pull(registry::PullArgs),
    /// Push an image to a registry (its layers as stored, the manifest last)
    Push(registry::PushArgs),
    /// Log in to a registry (saved by the Docker credential helper configured for it,
    /// else in podman's auth.json, mode 0600)
    Login(registry::LoginArgs),
    /// Forget the credentials of a registry (lade's, Docker's config and its helper)
    Logout(registry::LogoutArgs),
    /// Search Docker Hub, or another registry's catalog (REGISTRY/TERM)
    Search(registry::SearchArgs),
    /// Show a running container's published ports
    Port(containers::PortArgs),
    /// Manage networks (create, ls, inspect, rm, prune, connect, disconnect)
    ///
    /// Bridge networks of lade's own, with podman's aardvark-dns for names: containers on
    /// a user network find each other by name and alias. A network's bridge and rules
    /// stay until the network is removed (`network rm`, `system reset`). lade's default network (`bridge`
    /// to Docker's commands) is made the first time a container needs it. Rootless
    /// networking (pasta) is not supported.
    #[command(subcommand)]
    Network(networks::NetworkCommand),
    /// Manage manifest lists: multi-platform images made by hand (create, add, inspect,
    /// push, rm)
    ///
    /// A list is an OCI image index named by a tag of the store, one image a platform,
    /// as a build for several platforms (`build --platform linux/amd64,linux/arm64`)
    /// makes one. `run`, `inspect` and `images` take this machine's image of it (else its
    /// first); `build --platform` and `pull --platform` take the one for that platform;
    /// `push` pushes the index with its images.
    #[command(subcommand)]
    Manifest(manifest::ManifestCommand),
    /// Show what running containers use (CPU, memory, processes)
    Stats(containers::StatsArgs),
    /// Manage volumes (create, ls, inspect, rm, prune)
    #[command(subcommand)]
    Volume(containers::VolumeCommand),
    /// Manage containers (Docker's `container` forms of the container commands, and
    /// `prune`)
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Manage images (Docker's `image` forms of the image commands, and `prune`)
    #[command(subcommand)]
    Image(ImageCommand),
    /// Manage the build cache (`builder prune` is `cache prune`)
    #[command(subcommand)]
    Builder(BuilderCommand),
    /// Start stopped or created containers (detached, their files kept; -a attached)
    Start(containers::StartArgs),
    /// Attach to a running container's output, and its input when it keeps it open
    ///
    /// The exit code is the container's. The detach keys (ctrl-p ctrl-q) leave it
    /// running; without a terminal, the signals lade receives go to the container
    /// (--sig-proxy).
    Attach(containers::AttachArgs),
    /// Stop running containers: their stop signal, then SIGKILL after a timeout
    Stop(containers::StopArgs),
    /// Stop and start containers again
    Restart(containers::StopArgs),
    /// Send a signal to running containers (default SIGKILL)
    Kill(containers::KillArgs),
    /// Wait until containers stop; print their exit codes
    Wait(containers::ContainersArgs),
    /// Show what a detached container wrote (stdout and stderr, each to its own)
    Logs(containers::LogsArgs),
    /// Freeze the processes of running containers
    Pause(containers::ContainersArgs),
    /// Resume paused containers
    Unpause(containers::ContainersArgs),
    /// Change containers' limits (memory, CPUs, processes) and restart policy: kept for
    /// their next start, and applied at once to those that run
    Update(containers::UpdateArgs),
    /// The store as a whole: check, df, prune, info, events
    #[command(subcommand)]
    System(system::SystemCommand),
    /// Show the store, what it holds and what this machine offers
    Info(system::InfoArgs),
    /// Show lade's version
    Version(system::InfoArgs),
    /// Run multi-container apps from compose files (the compose-spec, as `docker compose`)
    Compose(compose::ComposeArgs),
    /// Kubernetes YAML: written from compose projects (generate), run locally (play), removed
    /// (down)
    #[command(subcommand)]
    Kube(compose::KubeCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completion(docs::CompletionArgs),
    /// Write man pages for lade and each of its commands to a directory
    ManPages(docs::ManPagesArgs),
}

/// The heading of the options that come before any command (and `--root` and
/// `--storage-reserve` anywhere).
const GLOBAL_OPTIONS: &str = "Global options";

/// Docker's logging levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Progress {
    /// Bars on a terminal, plain lines otherwise
    Auto,
    /// One line per event, for logs and CI
    Plain,
    /// Bars, even when not on a terminal
    Tty,
    /// Only errors
    Quiet,
}

/// Output for people or for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

pub(crate) use template::ListFormat;

/// Layer compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompressionArg {
    /// zstd on all cores
    Zstd,
    /// gzip, for older clients
    Gzip,
    /// plain tar: a layer's digest is its diff_id; compressed when pushed
    Uncompressed,
}

impl From<CompressionArg> for Compression {
    fn from(value: CompressionArg) -> Self {
        match value {
            CompressionArg::Zstd => Compression::Zstd,
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::Uncompressed => Compression::None,
        }
    }
}

/// Parses the command line, answering Docker names lade refuses with one line that says
/// why (exit code 125, as Docker's CLI gives for its own usage errors).
pub fn parse() -> std::result::Result<Cli, ExitCode> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let mut tree = tree::command_for(&args);
    let matches = match tree.try_get_matches_from_mut(args) {
        Ok(matches) => matches,
        Err(error) => return Err(usage_error(error)),
    };
    if let Some(message) = refusals::refusal(&tree, &matches) {
        eprintln!("lade: {message}");
        return Err(ExitCode::from(125));
    }
    Ok(Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.format(&mut tree).exit()))
}

/// Prints a command line clap could not read and gives Docker's exit code for it: help
/// and version as asked (0); a bad option, option value or missing value 125, as Docker's
/// flag errors; a missing or extra argument or an unknown command 1, as Docker's argument
/// checks (`requires at least 1 argument`, `unknown command`); a logging level Docker's
/// own line and 1, as Docker exits before anything else.
fn usage_error(error: clap::Error) -> ExitCode {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let invalid = match error.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) => arg.clone(),
        _ => String::new(),
    };
    if invalid.starts_with("--log-level") || invalid.starts_with("-l ") {
        if let Some(ContextValue::String(value)) = error.get(ContextKind::InvalidValue) {
            eprintln!("Unable to parse logging level: {value}");
            return ExitCode::FAILURE;
        }
    }
    let code = match error.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => error.exit(),
        ErrorKind::UnknownArgument if !invalid.starts_with('-') => 1,
        ErrorKind::MissingRequiredArgument if !invalid.starts_with('-') => 1,
        ErrorKind::InvalidSubcommand | ErrorKind::MissingSubcommand => 1,
        _ => 125,
    };
    // printing to a closed stderr cannot be reported anywhere
    let _ = error.print();
    ExitCode::from(code)
}

/// Commands that need no store and no namespace: an ordinary user runs them as
/// they are, outside lade's rootless user namespace.
fn needs_no_namespace(command: &Command) -> bool {
    matches!(
        command,
        Command::Version(_) | Command::Completion(_) | Command::ManPages(_)
    ) || matches!(command, Command::Build(args) if args.dry_run)
}

/// The commands that mount (a container's root, an image's view) and so run in a mount
/// namespace of their own, with the exit code they give when it cannot be made: the
/// container commands' 125, as for any failure of lade's own there.
fn needs_private_mounts(command: &Command) -> Option<ExitCode> {
    match command {
        Command::Run(_) | Command::Create(_) => Some(ExitCode::from(125)),
        Command::Start(args) if args.attach || args.interactive => Some(ExitCode::from(125)),
        Command::Build(args) if !args.dry_run && !args.explain => Some(ExitCode::FAILURE),
        Command::Cp(_) | Command::Export(_) => Some(ExitCode::FAILURE),
        Command::Compose(args) if args.makes_containers() => Some(ExitCode::FAILURE),
        Command::Kube(command) if command.makes_containers() => Some(ExitCode::FAILURE),
        _ => None,
    }
}

/// Runs a parsed command line; the exit code is the command's.
pub fn run(mut cli: Cli) -> ExitCode {
    cli.command = cli.command.into_top_level();
    if !matches!(cli.command, Command::Run(_)) {
        quiet_on_closed_pipe();
    }
    // The store's place is decided by who runs lade, before its namespace makes an
    // ordinary user root.
    let root = store_root(cli.root.clone());
    // First of all, before any thread starts: an ordinary user's lade joins its user
    // namespace (where it is root over its own files and subordinate ids).
    if !nix::unistd::geteuid().is_root() && !needs_no_namespace(&cli.command) {
        if let Err(err) = crate::engine::check_location(&root) {
            eprintln!(
                "lade: cannot use the store at {}: {}",
                root.display(),
                describe(&anyhow::Error::new(err))
            );
            return ExitCode::FAILURE;
        }
        match crate::engine::process::enter_rootless() {
            Ok(crate::engine::process::Entered::Created { single_id: true }) => eprintln!(
                "lade: note: no subordinate ids for this user in /etc/subuid and /etc/subgid: only your own id is mapped (as root inside), so image files owned by other users cannot be made; add a range with `sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 $USER`"
            ),
            Ok(_) => {}
            Err(err) => {
                eprintln!("lade: {}", describe(&anyhow::Error::new(err)));
                return ExitCode::from(125);
            }
        }
    }
    // Also before any thread starts: the private mount namespace.
    if let Some(code) = needs_private_mounts(&cli.command) {
        if let Err(err) = crate::engine::process::private_mount_namespace() {
            eprintln!("lade: {}", describe(&anyhow::Error::new(err)));
            return code;
        }
    }
    if let Some(driver) = cli.storage_driver.clone().filter(|d| !d.is_empty()) {
        crate::engine::process::force_storage_driver(driver);
    }
    let reserve = match cli.storage_reserve.as_deref() {
        Some(text) => match crate::oci::parse_size(text) {
            Some(bytes) => Some(bytes),
            None => {
                eprintln!("lade: invalid --storage-reserve {text:?}: expected a size such as 512MB or 2GiB");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let store_config = StoreConfig {
        root,
        options: StoreOptions { reserve },
        docker_config: cli.config.clone(),
    };
    let debug = cli.debug || cli.log_level == Some(LogLevel::Debug);
    let result = match cli.command {
        Command::Build(args) => build::run(&store_config, args),
        Command::Cache(command) => cache::run(&store_config, command),
        Command::Import(args) => archive::import(&store_config, args),
        Command::Images(args) => images::images(&store_config, args),
        Command::Tag(args) => images::tag(&store_config, args),
        Command::Rmi(args) => images::rmi(&store_config, args),
        Command::Inspect(args) => images::inspect(&store_config, args),
        Command::History(args) => images::history(&store_config, args),
        Command::Save(args) => archive::save(&store_config, args),
        Command::Load(args) => archive::load(&store_config, args),
        Command::Run(args) => containers::run(&store_config, args),
        Command::Ps(args) => containers::ps(&store_config, args),
        Command::Events(args) => events::events(&store_config, args),
        Command::Rm(args) => containers::rm(&store_config, args),
        Command::Exec(args) => containers::exec(&store_config, args),
        Command::Create(args) => containers::create(&store_config, args),
        Command::Rename(args) => containers::rename(&store_config, args),
        Command::Diff(args) => containers::diff(&store_config, args),
        Command::Export(args) => containers::export(&store_config, args),
        Command::Cp(args) => containers::cp(&store_config, args),
        Command::Commit(args) => containers::commit(&store_config, args),
        Command::Top(args) => containers::top(&store_config, args),
        Command::Port(args) => containers::port(&store_config, args),
        Command::Pull(args) => registry::pull(&store_config, args),
        Command::Push(args) => registry::push(&store_config, args),
        Command::Login(args) => registry::login(&store_config, args),
        Command::Logout(args) => registry::logout(&store_config, args),
        Command::Search(args) => registry::search(&store_config, args),
        Command::Network(command) => networks::run(&store_config, command),
        Command::Manifest(command) => manifest::run(&store_config, command),
        Command::Stats(args) => containers::stats(&store_config, args),
        Command::Volume(command) => containers::volume(&store_config, command),
        Command::Container(ContainerCommand::Prune(args)) => containers::prune(&store_config, args),
        Command::Image(ImageCommand::Prune(args)) => images::prune(&store_config, args),
        Command::Container(_) | Command::Image(_) | Command::Builder(_) => {
            unreachable!("management forms are turned into top-level commands first")
        }
        Command::Start(args) => containers::start(&store_config, args),
        Command::Attach(args) => containers::attach(&store_config, args),
        Command::Stop(args) => containers::stop(&store_config, args),
        Command::Restart(args) => containers::restart(&store_config, args),
        Command::Kill(args) => containers::kill(&store_config, args),
        Command::Wait(args) => containers::wait(&store_config, args),
        Command::Logs(args) => containers::logs(&store_config, args),
        Command::Pause(args) => containers::pause(&store_config, args, true),
        Command::Unpause(args) => containers::pause(&store_config, args, false),
        Command::Update(args) => containers::update(&store_config, args),
        Command::System(command) => system::run(&store_config, command),
        Command::Info(args) => system::info(&store_config, args),
        Command::Version(args) => system::version(args),
        Command::Compose(args) => compose::run(&store_config, args),
        Command::Kube(command) => compose::kube(&store_config, command),
        Command::Completion(args) => docs::completion(args),
        Command::ManPages(args) => docs::man_pages(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            if is_out_of_space(&err, &store_config.root) {
                eprintln!(
                    "lade: no space left on the store's file system ({}): {}",
                    store_config.root.display(),
                    describe(&err)
                );
            } else if debug {
                eprintln!("lade: {}", describe_all(&err));
            } else {
                eprintln!("lade: {}", describe(&err));
            }
            ExitCode::FAILURE
        }
    }
}

/// Whether the error comes from a full file system (any error of its chain).
fn is_out_of_space(err: &anyhow::Error, root: &Path) -> bool {
    err.chain()
        .any(|cause| crate::engine::is_out_of_space(cause, root))
}

/// `lade images | head -1`: when the reader goes away, end quietly as other command-line
/// tools do (killed by SIGPIPE), rather than fail on every later write. `run` keeps
/// SIGPIPE ignored: its container writes to our stdout itself and gets the signal there,
/// while lade must live on to clean up after it.
fn quiet_on_closed_pipe() {
    use nix::sys::signal::{signal, SigHandler, Signal};
    // SAFETY: restoring the default disposition installs no handler of ours, and no
    // other thread exists yet to race with.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}

/// Does `act` for each item a command names (`rmi a b c`): a failure is reported and the
/// next item is done all the same; the exit code says whether any failed.
fn each_item<E: std::fmt::Display>(
    items: &[String],
    mut act: impl FnMut(&str) -> std::result::Result<(), E>,
) -> ExitCode {
    let mut failed = false;
    for item in items {
        if let Err(err) = act(item) {
            report_item_error(item, &err);
            failed = true;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Reports the failure of one of several items a command works on, naming the item
/// unless the message already does.
fn report_item_error(item: &str, err: &dyn std::fmt::Display) {
    let message = err.to_string();
    if message.contains(item) {
        eprintln!("lade: {}", printable(&message));
    } else {
        eprintln!("lade: {}", printable(&format!("{item}: {message}")));
    }
}

/// The contexts a command added and the error under them, `: `-separated. lade's own
/// errors are whole (each message already includes its cause's text), so the chain is
/// followed down to the first of them and no further: what is below would only repeat
/// it.
fn describe(err: &anyhow::Error) -> String {
    let mut parts = Vec::new();
    for cause in err.chain() {
        parts.push(cause.to_string());
        if crate::engine::is_lades_own(cause) {
            break;
        }
    }
    printable(&parts.join(": "))
}

/// Every cause of an error, one a line (`--debug`): what [`describe`] leaves out as
/// repeated is shown too.
fn describe_all(err: &anyhow::Error) -> String {
    let mut text = err.to_string();
    for cause in err.chain().skip(1) {
        text.push_str(&format!("\n  caused by: {cause}"));
    }
    printable(&text)
}

/// Messages quote what they were given, and that can be anything (a hostile archive's
/// header bytes, say): control characters are escaped so that they cannot drive the
/// terminal, and a run of undecodable bytes shows as one replacement character. Line
/// breaks stay (located errors show the line and a caret under it).
fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\t' => out.push(c),
            '\u{FFFD}' if out.ends_with('\u{FFFD}') => {}
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

/// The store's directory: `--root`, `$LADE_ROOT`, or the default place.
fn store_root(root: Option<PathBuf>) -> PathBuf {
    root.or_else(|| {
        std::env::var_os("LADE_ROOT")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
    .unwrap_or_else(crate::engine::default_root)
}

/// Where the store is and how to open it, and where Docker's configuration is, from
/// the global options; every command receives it rather than reading process-wide
/// settings.
#[derive(Debug, Clone)]
pub(crate) struct StoreConfig {
    root: PathBuf,
    options: StoreOptions,
    docker_config: Option<PathBuf>,
}

/// The store, for a command that may change it.
fn open_store(store_config: &StoreConfig) -> Result<Store> {
    let root = &store_config.root;
    Store::open_with(root, &store_config.options)
        .with_context(|| format!("cannot open the store at {}", root.display()))
}

/// The store, for a command that only reads it (it works on a full disk).
fn open_store_read_only(store_config: &StoreConfig) -> Result<Store> {
    let root = &store_config.root;
    Store::open_read_only_with(root, &store_config.options)
        .with_context(|| format!("cannot open the store at {}", root.display()))
}

/// `SOURCE_DATE_EPOCH` from the environment, when set and valid.
fn source_date_epoch() -> Result<Option<i64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(value) if !value.is_empty() => value
            .parse::<i64>()
            .map(Some)
            .with_context(|| format!("SOURCE_DATE_EPOCH={value:?} is not a number of seconds")),
        _ => Ok(None),
    }
}

/// Whether `path` names standard input/output.
fn is_dash(path: &Path) -> bool {
    path.as_os_str() == "-"
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_repeated_option_takes_its_last_value_and_lists_keep_all() {
        use clap::FromArgMatches;
        let matches = command()
            .try_get_matches_from([
                "lade", "run", "--name", "first", "--name", "second", "-e", "A=1", "-e", "B=2",
                "busybox",
            ])
            .unwrap();
        let Cli {
            command: Command::Run(args),
            ..
        } = Cli::from_arg_matches(&matches).unwrap()
        else {
            panic!("not a run");
        };
        assert_eq!(args.name.as_deref(), Some("second"));
        assert_eq!(args.env, ["A=1", "B=2"]);
    }

    #[test]
    fn options_end_at_the_image() {
        use clap::FromArgMatches;
        // `-c` is a refused Docker option of `run` and `-l` is lade's --label: after the
        // image both are the command's, as with Docker.
        let matches = command()
            .try_get_matches_from([
                "lade",
                "run",
                "--entrypoint",
                "sh",
                "busybox",
                "-c",
                "ls -l",
                "-l",
                "x",
            ])
            .unwrap();
        let Cli {
            command: Command::Run(args),
            ..
        } = Cli::from_arg_matches(&matches).unwrap()
        else {
            panic!("not a run");
        };
        assert_eq!(args.image(), "busybox");
        assert_eq!(args.command(), ["-c", "ls -l", "-l", "x"]);
        assert!(args.labels.is_empty());
    }

    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(4_261_000), "4.26MB");
        assert_eq!(human_size(12_345_678), "12.3MB");
        assert_eq!(human_size(283_000_000), "283MB");
        assert_eq!(human_size(1_000), "1kB");
    }

    #[test]
    fn control_characters_in_errors_are_escaped() {
        assert_eq!(
            printable("bad \u{1b}[2J\u{7}name \u{FFFD}\u{FFFD}\u{FFFD} end\n 1 | x"),
            "bad \\u{1b}[2J\\u{7}name \u{FFFD} end\n 1 | x"
        );
    }

    #[test]
    fn an_error_shows_each_cause_once() {
        let io = || std::io::Error::from_raw_os_error(libc::ENOENT);
        let err = anyhow::Error::new(crate::engine::StoreError::Io {
            path: "/x.tar".into(),
            source: io(),
        })
        .context("loading");
        assert_eq!(
            describe(&err),
            "loading: /x.tar: No such file or directory (os error 2)"
        );
        // Contexts over an error of another library: each layer once.
        let err = anyhow::Error::new(io()).context("reading the Dockerfile");
        assert_eq!(
            describe(&err),
            "reading the Dockerfile: No such file or directory (os error 2)"
        );
    }
}
