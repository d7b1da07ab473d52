//! `lade compose`: its arguments read into a project (loaded by `compose`) and the
//! compose operations' requests, and what they return rendered as Docker Compose v2
//! renders it.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};

use super::containers::{docker_command_and_created, docker_ports, docker_status};
use super::progress::{BuildProgress, Mode};
use super::{open_store, open_store_read_only, print_table, StoreConfig};
use crate::compose::{self, LoadOptions, Project};
use crate::engine::{
    self, ClientOptions, ExecOptions, PullOptions, PushCompression, PushOptions, RunOutcome,
};

#[derive(Debug, Args)]
pub struct ComposeArgs {
    /// Compose file (may be repeated: later files are merged over earlier ones)
    /// [default: compose.yaml, and compose.override.yaml beside it]
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Project name [default: $COMPOSE_PROJECT_NAME, else the file's `name:`, else the
    /// directory's name]
    #[arg(short = 'p', long = "project-name", value_name = "NAME")]
    pub project_name: Option<String>,
    /// Enable the services of a profile (may be repeated; also $COMPOSE_PROFILES)
    #[arg(long = "profile", value_name = "PROFILE")]
    pub profiles: Vec<String>,
    /// Variables for interpolation from this file instead of .env beside the compose file
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: ComposeCommand,
}

impl ComposeArgs {
    /// Whether the command makes or starts containers or builds (and so needs root
    /// and a private mount namespace).
    pub fn makes_containers(&self) -> bool {
        !matches!(
            self.command,
            ComposeCommand::Config(_)
                | ComposeCommand::Ls(_)
                | ComposeCommand::Ps(_)
                | ComposeCommand::Logs(_)
        )
    }
}

#[derive(Debug, Subcommand)]
pub enum ComposeCommand {
    /// Make and start the services' containers (with their networks and volumes)
    Up(UpArgs),
    /// Stop and remove the project's containers and networks (-v: volumes too)
    Down(DownArgs),
    /// List the project's containers
    Ps(PsArgs),
    /// Show the services' output, each line prefixed by its container
    Logs(LogsArgs),
    /// Build the images of services that have a build section
    Build(ServicesArgs),
    /// Pull the services' images
    Pull(ServicesArgs),
    /// Push the images of services that build one and name it
    Push(ServicesArgs),
    /// Run a command in a running container of a service
    Exec(ExecArgs),
    /// Run a one-off command in a new container of a service
    Run(RunArgs),
    /// Start the services' stopped containers
    Start(ServicesArgs),
    /// Stop the services' containers
    Stop(StopArgs),
    /// Stop and start the services' containers
    Restart(StopArgs),
    /// Print the normalised compose model (YAML), as `docker compose config`
    Config(ConfigArgs),
    /// List the projects that have containers
    Ls(LsArgs),
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Start in the background (otherwise follow their logs until they stop or Ctrl-C)
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Build images before starting, even when the store has them
    #[arg(long)]
    pub build: bool,
    /// Make containers again even when their configuration is unchanged
    #[arg(long)]
    pub force_recreate: bool,
    /// Do not start the services the named ones depend on
    #[arg(long)]
    pub no_deps: bool,
    pub services: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Rmi {
    /// The images the project built (services without an `image` name)
    Local,
    /// Every image the services use
    All,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// Remove the project's named volumes too
    #[arg(short = 'v', long)]
    pub volumes: bool,
    /// Remove images: local or all
    #[arg(long, value_enum, value_name = "TYPE")]
    pub rmi: Option<Rmi>,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Stopped containers too
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only the ids
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Only the service names
    #[arg(long)]
    pub services: bool,
    #[arg(value_name = "SERVICE")]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep following new output
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only the last N lines of each container (or `all`)
    #[arg(short = 'n', long, value_name = "N", default_value = "all")]
    pub tail: String,
    /// Each line with its time
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// No `SERVICE-N  | ` prefixes
    #[arg(long)]
    pub no_log_prefix: bool,
    /// No colours (they are used on a terminal only)
    #[arg(long)]
    pub no_color: bool,
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ServicesArgs {
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait before SIGKILL
    #[arg(short = 't', long, value_name = "SECONDS")]
    pub timeout: Option<i64>,
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
#[command(trailing_var_arg = true)]
pub struct ExecArgs {
    /// Leave the command running in the background
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// No terminal (compose gives one by default when stdin is one)
    #[arg(short = 'T', long = "no-TTY")]
    pub no_tty: bool,
    /// Set an environment variable
    #[arg(short = 'e', long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// Run as this user
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Working directory
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// Which replica of the service
    #[arg(long, default_value_t = 1)]
    pub index: u64,
    /// The service, then the command and its arguments
    #[arg(value_name = "SERVICE COMMAND", required = true, num_args = 2..)]
    pub service_and_command: Vec<String>,
}

#[derive(Debug, Args)]
#[command(trailing_var_arg = true)]
pub struct RunArgs {
    /// Run in the background and print the container's name
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Do not start the services it depends on
    #[arg(long)]
    pub no_deps: bool,
    /// Publish the service's ports
    #[arg(long)]
    pub service_ports: bool,
    /// No terminal
    #[arg(short = 'T', long = "no-TTY")]
    pub no_tty: bool,
    /// Set an environment variable
    #[arg(short = 'e', long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// A name for the container
    #[arg(long)]
    pub name: Option<String>,
    /// The service, then the command (default: the service's)
    #[arg(value_name = "SERVICE [COMMAND]", required = true, num_args = 1..)]
    pub service_and_command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Only the service names, one a line
    #[arg(long)]
    pub services: bool,
    /// Only the volume names
    #[arg(long)]
    pub volumes: bool,
    /// Only check the files: print nothing
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Projects with no running container too
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only the names
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// What compose operations report, on stderr as Docker Compose does.
struct Status {
    build: BuildProgress,
    engine: EngineTell,
}

/// What the engine tells while containers are made: Docker's wording, on stderr.
struct EngineTell;

impl engine::Reporter for EngineTell {
    fn warning(&self, text: &str) {
        eprintln!("warning: {text}");
    }

    fn image_not_found(&self, image: &str) {
        eprintln!("Unable to find image '{image}' locally");
    }

    fn after_exit(&self, error: &engine::EngineError) {
        eprintln!("lade: after the container exited: {error}");
    }
}

impl compose::Reporter for Status {
    fn status(&self, kind: &str, name: &str, state: &str) {
        eprintln!(" {kind} {name}  {state}");
    }

    fn warning(&self, text: &str) {
        eprintln!("warning: {text}");
    }

    fn engine(&self) -> &dyn engine::Reporter {
        &self.engine
    }

    fn builder(&self) -> &dyn engine::BuildReporter {
        &self.build
    }
}

/// `lade compose ...`.
pub fn run(store_config: &StoreConfig, args: ComposeArgs) -> Result<ExitCode> {
    let options = LoadOptions {
        files: args.files.clone(),
        project_name: args.project_name.clone(),
        profiles: args.profiles.clone(),
        env_file: args.env_file.clone(),
        environment: std::env::vars().collect(),
        working_dir: std::env::current_dir().context("cannot read the working directory")?,
    };
    let loaded = compose::load(&options)?;
    for warning in &loaded.warnings {
        eprintln!("warning: {warning}");
    }
    let project = loaded.project;
    let reporter = Status {
        build: BuildProgress::new(Mode::Plain),
        engine: EngineTell,
    };
    let docker_config = store_config.docker_config.clone();
    match args.command {
        ComposeCommand::Config(args) => config(&project, &args),
        ComposeCommand::Up(args) => up(store_config, &project, args, &reporter),
        ComposeCommand::Down(args) => {
            let store = open_store(store_config)?;
            let request = compose::DownRequest {
                volumes: args.volumes,
                images: args.rmi.map(|r| match r {
                    Rmi::Local => compose::RemoveImages::Local,
                    Rmi::All => compose::RemoveImages::All,
                }),
            };
            compose::down(&store, &project, &request, &reporter)?;
            Ok(ExitCode::SUCCESS)
        }
        ComposeCommand::Ps(args) => ps(store_config, &project, &args),
        ComposeCommand::Logs(args) => {
            let store = open_store_read_only(store_config)?;
            let request = compose::LogsServiceRequest {
                services: args.services,
                follow: args.follow,
                tail: engine::parse_tail(&args.tail)?,
                timestamps: args.timestamps,
                colour: !args.no_color && std::io::stdout().is_terminal(),
                no_prefix: args.no_log_prefix,
            };
            let out: Mutex<Box<dyn Write + Send>> = Mutex::new(Box::new(std::io::stdout()));
            compose::logs(&store, &project, &request, &out)?;
            Ok(ExitCode::SUCCESS)
        }
        ComposeCommand::Build(args) => {
            let store = open_store(store_config)?;
            compose::build(&store, &project, &args.services, docker_config, &reporter)?;
            Ok(ExitCode::SUCCESS)
        }
        ComposeCommand::Pull(args) => {
            let store = open_store(store_config)?;
            let options = PullOptions {
                platform: None,
                client: client(store_config),
            };
            compose::pull(
                &store,
                &project,
                &args.services,
                &options,
                &NoPullProgress,
                &reporter,
            )?;
            Ok(ExitCode::SUCCESS)
        }
        ComposeCommand::Push(args) => {
            let store = open_store(store_config)?;
            let options = PushOptions {
                client: client(store_config),
                compression: PushCompression::Gzip,
                force_compression: false,
            };
            compose::push(
                &store,
                &project,
                &args.services,
                &options,
                &|line| eprintln!("{line}"),
                &reporter,
            )?;
            Ok(ExitCode::SUCCESS)
        }
        ComposeCommand::Exec(args) => {
            let store = open_store(store_config)?;
            let tty = !args.no_tty && std::io::stdin().is_terminal() && !args.detach;
            let request = compose::ExecServiceRequest {
                service: args.service_and_command[0].clone(),
                index: args.index,
                options: ExecOptions {
                    args: args.service_and_command[1..].to_vec(),
                    env: args.env,
                    user: args.user,
                    workdir: args.workdir,
                    interactive: !args.detach,
                    tty,
                    ..ExecOptions::default()
                },
                detach: args.detach,
            };
            let code = compose::exec(&store, &project, &request)?;
            Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
        }
        ComposeCommand::Run(args) => run_one_off(store_config, &project, args, &reporter),
        ComposeCommand::Start(args) => {
            let store = open_store(store_config)?;
            compose::start(&store, &project, &args.services, &reporter)?;
            Ok(ExitCode::SUCCESS)
        }
        ComposeCommand::Stop(args) => {
            let store = open_store(store_config)?;
            compose::stop(&store, &project, &args.services, args.timeout, &reporter)?;
            Ok(ExitCode::SUCCESS)
        }
        ComposeCommand::Restart(args) => {
            let store = open_store(store_config)?;
            compose::stop(&store, &project, &args.services, args.timeout, &reporter)?;
            compose::start(&store, &project, &args.services, &reporter)?;
            Ok(ExitCode::SUCCESS)
        }
        ComposeCommand::Ls(args) => ls(store_config, &args),
    }
}

fn client(store_config: &StoreConfig) -> ClientOptions {
    ClientOptions {
        insecure: false,
        credentials: None,
        docker_config: store_config.docker_config.clone(),
    }
}

struct NoPullProgress;

impl engine::PullProgress for NoPullProgress {
    fn layer(&self, _digest: &crate::oci::Digest, _size: u64, _fetched: bool) {}
}

fn config(project: &Project, args: &ConfigArgs) -> Result<ExitCode> {
    if args.quiet {
        return Ok(ExitCode::SUCCESS);
    }
    if args.services {
        for name in project.services.keys() {
            println!("{name}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.volumes {
        for name in project.volumes.keys() {
            println!("{name}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    print!(
        "{}",
        serde_yaml_ng::to_string(project).context("cannot write the model as YAML")?
    );
    Ok(ExitCode::SUCCESS)
}

/// A flag set by SIGINT/SIGTERM (a second one ends lade at once, as compose does).
fn interrupt_flag() -> Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 130, flag.clone())
            .context("cannot listen for Ctrl-C")?;
        signal_hook::flag::register(signal, flag.clone()).context("cannot listen for Ctrl-C")?;
    }
    Ok(flag)
}

fn up(
    store_config: &StoreConfig,
    project: &Project,
    args: UpArgs,
    reporter: &Status,
) -> Result<ExitCode> {
    let store = open_store(store_config)?;
    let interrupted = interrupt_flag()?;
    let request = compose::UpRequest {
        services: args.services,
        no_deps: args.no_deps,
        build: args.build,
        force_recreate: args.force_recreate,
        docker_config: store_config.docker_config.clone(),
    };
    let started = match compose::up(&store, project, &request, reporter, &interrupted) {
        Ok(started) => started,
        Err(compose::ComposeError::Interrupted) => {
            stop_project(&store, project, reporter);
            return Ok(ExitCode::from(130));
        }
        Err(err) => return Err(err.into()),
    };
    if args.detach {
        return Ok(ExitCode::SUCCESS);
    }
    let out: Mutex<Box<dyn Write + Send>> = Mutex::new(Box::new(std::io::stdout()));
    let colour = std::io::stdout().is_terminal();
    match compose::attach(&store, &started, colour, &interrupted, reporter, &out) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(compose::ComposeError::Interrupted) => Ok(ExitCode::from(130)),
        Err(err) => Err(err.into()),
    }
}

/// After an interrupted `up`: what it started is stopped, and said so.
fn stop_project(store: &engine::Store, project: &Project, reporter: &Status) {
    eprintln!("Gracefully stopping... (interrupted)");
    if let Err(err) = compose::stop(store, project, &[], None, reporter) {
        eprintln!("lade: stopping the project: {err}");
    }
}

fn ps(store_config: &StoreConfig, project: &Project, args: &PsArgs) -> Result<ExitCode> {
    let store = open_store_read_only(store_config)?;
    let rows = compose::ps(&store, project, &args.names, args.all)?;
    if args.quiet {
        for row in &rows {
            println!("{}", row.id);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.services {
        let services: std::collections::BTreeSet<&String> = rows
            .iter()
            .filter_map(|r| r.labels.get(compose::labels::SERVICE))
            .collect();
        for service in services {
            println!("{service}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let status = docker_status(row);
            let (command, created) = docker_command_and_created(row);
            vec![
                row.name.clone(),
                row.image.clone(),
                command,
                row.labels
                    .get(compose::labels::SERVICE)
                    .cloned()
                    .unwrap_or_default(),
                created,
                status,
                docker_ports(&row.ports),
            ]
        })
        .collect();
    // docker compose's columns.
    print_table(
        &[
            "NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS",
        ],
        &table,
    );
    Ok(ExitCode::SUCCESS)
}

fn run_one_off(
    store_config: &StoreConfig,
    project: &Project,
    args: RunArgs,
    reporter: &Status,
) -> Result<ExitCode> {
    let store = open_store(store_config)?;
    let interrupted = interrupt_flag()?;
    let interactive = !args.detach && std::io::stdin().is_terminal();
    let request = compose::RunServiceRequest {
        service: args.service_and_command[0].clone(),
        command: args.service_and_command[1..].to_vec(),
        env: args.env,
        remove: args.rm,
        detach: args.detach,
        no_deps: args.no_deps,
        interactive,
        tty: interactive && !args.no_tty,
        service_ports: args.service_ports,
        name: args.name,
        docker_config: store_config.docker_config.clone(),
    };
    match compose::run_one_off(&store, project, &request, reporter, &interrupted)? {
        RunOutcome::Started(id) => {
            println!("{id}");
            Ok(ExitCode::SUCCESS)
        }
        RunOutcome::Exited(code) => Ok(ExitCode::from(u8::try_from(code).unwrap_or(1))),
    }
}

fn ls(store_config: &StoreConfig, args: &LsArgs) -> Result<ExitCode> {
    let store = open_store_read_only(store_config)?;
    let rows: Vec<_> = compose::list_projects(&store)?
        .into_iter()
        .filter(|p| args.all || p.running)
        .collect();
    if args.quiet {
        for row in &rows {
            println!("{}", row.name);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|p| vec![p.name.clone(), p.status.clone(), p.config_files.clone()])
        .collect();
    print_table(&["NAME", "STATUS", "CONFIG FILES"], &table);
    let _ = Ordering::SeqCst;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Subcommand)]
pub enum KubeCommand {
    /// Write Kubernetes YAML for containers, pods `kube play` ran, or a compose project: a
    /// Pod (of the containers, or of all the project's services), or with --type
    /// deployment a Deployment and a Service for its ports (per service for a compose
    /// project); named volumes become PersistentVolumeClaims. What has no Kubernetes field
    /// is named on stderr
    Generate(KubeGenerateArgs),
    /// Run the Pods and Deployments of a Kubernetes YAML file: each pod's containers share
    /// one network namespace (hostPorts published), a Deployment runs its replicas,
    /// PersistentVolumeClaims become named volumes, ConfigMaps and Secrets files and
    /// environment; fields and kinds lade does not honour are refused by their path
    Play(KubeFileArgs),
    /// Stop and remove the pods of a Kubernetes YAML file that `kube play` ran (and the
    /// volumes its ConfigMaps and Secrets became)
    Down(KubeFileArgs),
}

#[derive(Debug, Args)]
pub struct KubeFileArgs {
    /// The Kubernetes YAML file (`-` for standard input)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

impl KubeCommand {
    /// Whether it makes or starts containers.
    pub fn makes_containers(&self) -> bool {
        matches!(self, KubeCommand::Play(_))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KubeType {
    Pod,
    Deployment,
}

#[derive(Debug, Args)]
pub struct KubeGenerateArgs {
    /// Containers, or pods that `kube play` ran (their containers carry the pod's name)
    #[arg(
        value_name = "CONTAINER|POD",
        required_unless_present = "compose",
        conflicts_with = "compose"
    )]
    pub names: Vec<String>,
    /// The compose file (may be repeated, merged as `compose -f` merges them)
    #[arg(long = "compose", value_name = "FILE")]
    pub compose: Vec<PathBuf>,
    /// Project name (as `compose -p`)
    #[arg(short = 'p', long = "project-name", value_name = "NAME")]
    pub project_name: Option<String>,
    /// What to write
    #[arg(long = "type", value_enum, default_value = "pod")]
    pub kind: KubeType,
    /// Write to this file instead of standard output
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `lade kube ...`.
pub fn kube(store_config: &StoreConfig, command: KubeCommand) -> Result<ExitCode> {
    let args = match command {
        KubeCommand::Generate(args) => args,
        KubeCommand::Play(args) => return kube_file(store_config, &args, true),
        KubeCommand::Down(args) => return kube_file(store_config, &args, false),
    };
    let kind = match args.kind {
        KubeType::Pod => compose::KubeKind::Pod,
        KubeType::Deployment => compose::KubeKind::Deployment,
    };
    let generated = if args.compose.is_empty() {
        if args.project_name.is_some() {
            bail!("-p names a compose project: it goes with --compose");
        }
        let store = open_store_read_only(store_config)?;
        compose::kube_generate_from_containers(&store, &args.names, kind)?
    } else {
        let options = LoadOptions {
            files: args.compose,
            project_name: args.project_name,
            environment: std::env::vars().collect(),
            working_dir: std::env::current_dir().context("cannot read the working directory")?,
            ..LoadOptions::default()
        };
        let loaded = compose::load(&options)?;
        for warning in &loaded.warnings {
            eprintln!("warning: {warning}");
        }
        compose::kube_generate(&loaded.project, kind, compose::Grouping::PerService)?
    };
    for warning in &generated.warnings {
        eprintln!("warning: {warning}");
    }
    match &args.output {
        Some(path) => std::fs::write(path, &generated.yaml)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{}", generated.yaml),
    }
    Ok(ExitCode::SUCCESS)
}

/// `kube play FILE` (`play`) and `kube down FILE`.
fn kube_file(store_config: &StoreConfig, args: &KubeFileArgs, play: bool) -> Result<ExitCode> {
    let (yaml, shown) = if args.file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .context("cannot read standard input")?;
        (text, "standard input".to_string())
    } else {
        let text = std::fs::read_to_string(&args.file)
            .with_context(|| format!("cannot read {}", args.file.display()))?;
        (text, args.file.display().to_string())
    };
    let store = open_store(store_config)?;
    let reporter = Status {
        build: BuildProgress::new(Mode::Plain),
        engine: EngineTell,
    };
    if play {
        compose::kube_play(&store, &yaml, &shown, &reporter)?;
    } else {
        compose::kube_down(&store, &yaml, &shown, &reporter)?;
    }
    Ok(ExitCode::SUCCESS)
}
