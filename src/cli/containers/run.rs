//! `lade run` and `lade create`: their arguments, checked and made into the engine's
//! request before anything is pulled or made.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;

use super::{
    check_tty, container_exit, detach_keys, exit_with, open_store, StoreConfig, Tell,
    DEFAULT_DETACH_KEYS,
};
use crate::engine::{
    self, ContainerRequest, HealthFlags, ImageName, Limits, LogConfig, NetworkMode, NetworkRequest,
    PullPolicy, RestartPolicy, RunOptions, RunOutcome, RunRequest, SandboxRequest, Settings,
    Stream,
};
use crate::oci::parse_size;

#[derive(Debug, Args)]
// `-h` is Docker's --hostname here, so help is --help alone.
#[command(trailing_var_arg = true, disable_help_flag = true)]
pub struct RunArgs {
    /// Run in the background under a monitor of its own, and print the container's id
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Set by `lade create`: make the container, do not start it
    #[arg(skip)]
    pub create_only: bool,
    /// Restart policy of a detached container: no, on-failure[:N], always, unless-stopped
    #[arg(long, value_name = "POLICY", default_value = "no")]
    pub restart: String,
    /// Signal that `lade stop` sends first [default: the image's STOPSIGNAL, else SIGTERM]
    #[arg(long, value_name = "SIGNAL")]
    pub stop_signal: Option<String>,
    /// Seconds `lade stop` waits before SIGKILL [default: 10]
    #[arg(long, value_name = "SECONDS")]
    pub stop_timeout: Option<u64>,
    /// Remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Set a label on the container (KEY=VALUE)
    #[arg(short = 'l', long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Pull the image: missing (when the store lacks it), always, never
    #[arg(long, default_value = "missing", value_name = "POLICY")]
    pub pull: String,
    /// Logging driver: json-file (the default) or none
    #[arg(long, value_name = "DRIVER")]
    pub log_driver: Option<String>,
    /// Log option: max-size=SIZE, max-file=N (rotation, as Docker's json-file),
    /// labels=KEY,... and env=NAME,... (shown by `logs --details`)
    #[arg(long = "log-opt", value_name = "KEY=VALUE")]
    pub log_opts: Vec<String>,
    /// Write the container's id to this file (which must not exist)
    #[arg(long, value_name = "FILE")]
    pub cidfile: Option<PathBuf>,
    /// A name for the container
    #[arg(long)]
    pub name: Option<String>,
    /// Set an environment variable (NAME=VALUE, or NAME to take it from lade's environment)
    #[arg(short = 'e', long = "env", value_name = "NAME[=VALUE]")]
    pub env: Vec<String>,
    /// Read environment variables from a file (NAME=VALUE lines)
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_files: Vec<PathBuf>,
    /// Working directory inside the container (an absolute path)
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// User to run as (NAME, UID, NAME:GROUP or UID:GID)
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// Replace the image's ENTRYPOINT (and its CMD)
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Keep standard input open
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Give the container a terminal
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Keys that detach from an interactive container (`run -it`), which runs on
    #[arg(long, value_name = "KEYS", default_value = DEFAULT_DETACH_KEYS)]
    pub detach_keys: String,
    /// Attach to these streams only (stdin, stdout, stderr; may be repeated) [default:
    /// stdout and stderr, and stdin with -i]
    #[arg(short = 'a', long = "attach", value_name = "STREAM")]
    pub attach: Vec<String>,
    /// Network: bridge (lade's default network), NAME (a network made
    /// with `lade network create`), host, none (only loopback), container:NAME (another
    /// container's). Rootless networking (pasta) is not supported: lade runs as root
    #[arg(
        long,
        visible_alias = "net",
        default_value = "bridge",
        value_name = "NETWORK"
    )]
    pub network: String,
    /// Another name the container answers to on a user network
    #[arg(
        long = "network-alias",
        visible_alias = "net-alias",
        value_name = "ALIAS"
    )]
    pub network_aliases: Vec<String>,
    /// The container's IPv4 address on its network
    #[arg(long, value_name = "ADDRESS")]
    pub ip: Option<String>,
    /// The container's MAC address on its network (92:d0:c6:0a:29:33)
    #[arg(long, value_name = "ADDRESS")]
    pub mac_address: Option<String>,
    /// Publish a port: [IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp|sctp], ranges as
    /// 8000-8002:80-82; without HOST_PORT, a free one. Answers on the host's addresses
    /// and on 127.0.0.1
    #[arg(short = 'p', long = "publish", value_name = "SPEC")]
    pub publish: Vec<String>,
    /// Publish every exposed port (EXPOSE and --expose) to a free host port
    #[arg(short = 'P', long)]
    pub publish_all: bool,
    /// Expose a port (or range) without publishing it
    #[arg(long, value_name = "PORT[/PROTOCOL]")]
    pub expose: Vec<String>,
    /// A DNS server for the container's /etc/resolv.conf (on a user network, the one
    /// aardvark-dns forwards to)
    #[arg(long, value_name = "ADDRESS")]
    pub dns: Vec<String>,
    /// Add a line to the container's /etc/hosts (NAME:IP)
    #[arg(long = "add-host", value_name = "NAME:IP")]
    pub add_hosts: Vec<String>,
    /// Hostname [default: the start of the container id]
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Mount a named volume, a host path, or a new anonymous volume (NAME:TARGET,
    /// /HOST:TARGET, ./HOST:TARGET relative to here, TARGET), with Docker's modes after
    /// a colon, comma-separated: ro, rw, nocopy, z and Z (accepted and ignored: no
    /// SELinux), private/rprivate. A new volume mounted over a path the image has
    /// content at is filled with it unless nocopy, as Docker does
    #[arg(short = 'v', long = "volume", value_name = "[SOURCE:]TARGET[:MODES]")]
    pub volumes: Vec<String>,
    /// Mount: type=volume|bind|tmpfs,source=,target=[,readonly][,tmpfs-size=]
    #[arg(long = "mount", value_name = "SPEC")]
    pub mounts: Vec<String>,
    /// Mount a tmpfs (PATH[:size=N])
    #[arg(long, value_name = "PATH[:size=N]")]
    pub tmpfs: Vec<String>,
    /// Mount the volumes and binds of another container (CONTAINER[:ro])
    #[arg(long = "volumes-from", value_name = "CONTAINER[:ro]")]
    pub volumes_from: Vec<String>,
    /// Mount the root file system read-only
    #[arg(long)]
    pub read_only: bool,
    /// Memory limit (e.g. 512m, 1g)
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// CPU limit in CPUs (e.g. 0.5)
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Process limit (-1 or 0: unlimited, as Docker reads them)
    #[arg(long = "pids-limit", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Run a tiny init as PID 1 that reaps zombies and forwards signals
    #[arg(long)]
    pub init: bool,
    /// Give the container every capability lade holds, no seccomp filter, /proc and /sys
    /// unmasked and writable, and every device of the host in /dev (bound from the
    /// host's nodes, where Docker makes new ones; no devices cgroup)
    #[arg(long)]
    pub privileged: bool,
    /// Add a Linux capability (NET_ADMIN, cap_net_admin, ...; ALL for every one lade holds)
    #[arg(long = "cap-add", value_name = "CAPABILITY")]
    pub cap_add: Vec<String>,
    /// Drop a Linux capability (ALL drops all but those added)
    #[arg(long = "cap-drop", value_name = "CAPABILITY")]
    pub cap_drop: Vec<String>,
    /// no-new-privileges[=true|false] (lade sets no_new_privs unless given false; Docker
    /// leaves it off), seccomp=unconfined|builtin|FILE (a profile in Docker's JSON
    /// format). apparmor=PROFILE and label=... are accepted and ignored, as Docker does
    /// where AppArmor and SELinux are off: lade applies neither
    #[arg(long = "security-opt", value_name = "OPTION")]
    pub security_opts: Vec<String>,
    /// Add a host device (HOST[:CONTAINER[:PERMS]], PERMS some of rwm; a directory adds
    /// the devices under it): bound in the container, allowed by its devices cgroup (v1)
    #[arg(long = "device", value_name = "HOST[:CONTAINER[:PERMS]]")]
    pub devices: Vec<String>,
    /// Add a rule to the devices cgroup's allow list ('c|b|a MAJOR:MINOR rwm'; cgroup v1)
    #[arg(long = "device-cgroup-rule", value_name = "RULE")]
    pub device_cgroup_rules: Vec<String>,
    /// Set a resource limit (NAME=SOFT[:HARD]: nofile, nproc, core, memlock, stack, ...;
    /// -1 is unlimited). Raising a hard limit needs CAP_SYS_RESOURCE, which root may lack
    #[arg(long = "ulimit", value_name = "NAME=SOFT[:HARD]")]
    pub ulimits: Vec<String>,
    /// PID namespace: host, or container:NAME (another running container's)
    #[arg(long, value_name = "MODE")]
    pub pid: Option<String>,
    /// IPC namespace: private (the default), shareable (others may join it), none (no
    /// /dev/shm), host (with the host's /dev/shm), or container:NAME (a shareable one;
    /// unlike Docker, its /dev/shm is not shared, only the namespace)
    #[arg(long, value_name = "MODE")]
    pub ipc: Option<String>,
    /// UTS namespace: host (the host's hostname and domain name)
    #[arg(long, value_name = "MODE")]
    pub uts: Option<String>,
    /// User namespace: host only (lade has no user namespace remapping for root)
    #[arg(long, value_name = "MODE")]
    pub userns: Option<String>,
    /// Cgroup namespace: private (the default, on cgroup v1 as well) or host
    #[arg(long, value_name = "MODE")]
    pub cgroupns: Option<String>,
    /// Add a supplementary group (a name in the container's /etc/group, or a number)
    #[arg(long = "group-add", value_name = "GROUP")]
    pub group_add: Vec<String>,
    /// The container process's OOM score adjustment, -1000 to 1000 (lowering it needs
    /// CAP_SYS_RESOURCE)
    #[arg(
        long = "oom-score-adj",
        value_name = "SCORE",
        allow_negative_numbers = true
    )]
    pub oom_score_adj: Option<i64>,
    /// Disable the OOM killer for the container's memory cgroup (cgroup v1)
    #[arg(long = "oom-kill-disable")]
    pub oom_kill_disable: bool,
    /// Set a namespaced kernel parameter (net.*, fs.mqueue.*, kernel.msg*, kernel.sem,
    /// kernel.shm*; not net.* with --network host)
    #[arg(long = "sysctl", value_name = "NAME=VALUE")]
    pub sysctls: Vec<String>,
    /// Size of /dev/shm (e.g. 128m) [default: 64m]
    #[arg(long = "shm-size", value_name = "SIZE")]
    pub shm_size: Option<String>,
    /// A resolv.conf option (ndots:2, edns0, ...)
    #[arg(long = "dns-option", visible_alias = "dns-opt", value_name = "OPTION")]
    pub dns_options: Vec<String>,
    /// A DNS search domain for resolv.conf (`.` for none)
    #[arg(long = "dns-search", value_name = "DOMAIN")]
    pub dns_search: Vec<String>,
    /// The container's NIS domain name
    #[arg(long, value_name = "NAME")]
    pub domainname: Option<String>,
    /// Read labels from a file (KEY=VALUE lines; -l wins over it)
    #[arg(long = "label-file", value_name = "FILE")]
    pub label_files: Vec<PathBuf>,
    /// The image's platform (os/arch[/variant]): pulled for it, refused if the image is
    /// for another. lade runs no emulator: only the host's platform runs
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// Do not tell about pulling the image
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Command that checks the container's health, run with /bin/sh -c inside it (exit
    /// 0: healthy). Checks run while lade watches the container: under its monitor when
    /// detached, in `lade run` itself in the foreground
    #[arg(long, value_name = "COMMAND")]
    pub health_cmd: Option<String>,
    /// Time between health checks (ms|s|m|h) [default: 30s]
    #[arg(long, value_name = "DURATION")]
    pub health_interval: Option<String>,
    /// Longest a health check may run before it counts as failed [default: 30s]
    #[arg(long, value_name = "DURATION")]
    pub health_timeout: Option<String>,
    /// Failures in a row that make the container unhealthy [default: 3]
    #[arg(long, value_name = "N")]
    pub health_retries: Option<u64>,
    /// Time after the start during which failures do not count yet [default: 0s]
    #[arg(long, value_name = "DURATION")]
    pub health_start_period: Option<String>,
    /// Time between health checks during the start period [default: 5s]
    #[arg(long, value_name = "DURATION")]
    pub health_start_interval: Option<String>,
    /// Run no health check, not even the image's HEALTHCHECK
    #[arg(long)]
    pub no_healthcheck: bool,
    /// The image, then the command and its arguments (replacing the image's CMD).
    /// Options end at the image, as Docker's do: what follows is the command's, even
    /// when it looks like one of lade's options (`sh -c`, `ls -l`)
    #[arg(
        value_name = "IMAGE [COMMAND]",
        required = true,
        num_args = 1..,
        trailing_var_arg = true
    )]
    pub image_and_command: Vec<String>,
}

impl RunArgs {
    /// The image named.
    pub fn image(&self) -> &str {
        self.image_and_command.first().map_or("", String::as_str)
    }

    /// The command given after the image (empty: the image's own).
    pub fn command(&self) -> &[String] {
        self.image_and_command.get(1..).unwrap_or_default()
    }
}

/// `lade run`: the exit code is the container's; 125 when lade itself fails, 126 when
/// the command cannot be run, 127 when it is not found (as Docker).
pub fn run(store_config: &StoreConfig, args: RunArgs) -> Result<ExitCode> {
    let result = (|| -> Result<i32> {
        if !args.detach && !args.create_only {
            let named_stdin = args.attach.iter().any(|s| s.eq_ignore_ascii_case("stdin"));
            check_tty(
                named_stdin || (args.interactive && args.attach.is_empty()),
                args.tty,
            )?;
        }
        let mut request = run_request(&args)?;
        request.container.docker_config = store_config.docker_config.clone();
        let store = open_store(store_config)?;
        let reporter: &dyn engine::Reporter = if args.quiet { &Quiet } else { &Tell };
        if args.create_only {
            let id = engine::create(&store, &request.container, reporter).map_err(exit_with)?;
            println!("{id}");
            return Ok(0);
        }
        match engine::run(&store, &request, reporter).map_err(exit_with)? {
            RunOutcome::Started(id) => {
                println!("{id}");
                Ok(0)
            }
            RunOutcome::Exited(code) => Ok(code),
        }
    })();
    Ok(container_exit(result))
}

/// `run -q`/`create -q`: what [`Tell`] tells, but for the pull's notice.
struct Quiet;

impl engine::Reporter for Quiet {
    fn warning(&self, text: &str) {
        Tell.warning(text);
    }

    fn image_not_found(&self, _image: &str) {}

    fn unattached(&self, id: &str) {
        Tell.unattached(id);
    }

    fn after_exit(&self, error: &engine::EngineError) {
        Tell.after_exit(error);
    }

    fn network_teardown_failed(&self, error: &engine::EngineError) {
        Tell.network_teardown_failed(error);
    }
}

/// `run`'s and `create`'s arguments as the engine's request, refused (in this order)
/// before anything is pulled or made.
fn run_request(args: &RunArgs) -> Result<RunRequest> {
    let memory = match &args.memory {
        None => None,
        // 0 is no limit, as in Docker.
        Some(text) => Some(parse_size(text).ok_or_else(|| {
            anyhow::anyhow!("invalid --memory {text:?}: expected a size such as 512m or 1g")
        })?)
        .filter(|b| *b > 0),
    };
    let shm_size = match &args.shm_size {
        None => None,
        Some(text) => Some(parse_size(text).ok_or_else(|| {
            anyhow::anyhow!("invalid --shm-size {text:?}: expected a size such as 64m or 1g")
        })?),
    };
    let platform = match &args.platform {
        None => None,
        Some(text) => Some(crate::oci::Platform::parse(text).ok_or_else(|| {
            anyhow::anyhow!("invalid --platform {text:?}: expected os/arch[/variant]")
        })?),
    };
    // The files first, then -l: later ones win, as in Docker.
    let mut labels = Vec::new();
    for file in &args.label_files {
        let text = std::fs::read_to_string(file)
            .map_err(|e| anyhow::anyhow!("cannot read --label-file {}: {e}", file.display()))?;
        labels.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        );
    }
    labels.extend(args.labels.iter().cloned());
    if let Some(cpus) = args.cpus {
        if !(cpus > 0.0 && cpus.is_finite()) {
            bail!("invalid --cpus {cpus}: expected a positive number");
        }
    }
    let restart = RestartPolicy::parse(&args.restart).ok_or_else(|| {
        anyhow::anyhow!(
            "invalid --restart {:?}: expected no, on-failure[:N], always or unless-stopped",
            args.restart
        )
    })?;
    if let Some(signal) = &args.stop_signal {
        if engine::parse_signal(signal).is_none() {
            bail!("invalid --stop-signal {signal:?}: expected a signal name or number");
        }
    }
    // Docker's rule: a container removed when it exits is never restarted.
    if args.rm && restart != RestartPolicy::No {
        bail!("conflicting options: --restart and --rm");
    }
    let detach_keys = detach_keys(&args.detach_keys)?;
    let mut attach = Vec::new();
    let mut attach_stdin = args.attach.is_empty();
    for stream in &args.attach {
        match stream.to_ascii_lowercase().as_str() {
            "stdout" => attach.push(Stream::Stdout),
            "stderr" => attach.push(Stream::Stderr),
            "stdin" => attach_stdin = true,
            other => bail!("invalid -a {other:?}: stdin, stdout or stderr"),
        }
    }
    if args.detach && !args.attach.is_empty() {
        bail!("conflicting options: -a and -d");
    }
    let mode = NetworkMode::parse(&args.network);
    // Docker's client drops them with a warning: the host's own ports are the
    // container's, so there is nothing to publish.
    let host_network = matches!(mode, NetworkMode::Host);
    if host_network && (!args.publish.is_empty() || args.publish_all) {
        eprintln!("WARNING: Published ports are discarded when using host network mode");
    }
    let options = RunOptions {
        image: args.image().to_string(),
        name: args.name.clone(),
        args: args.command().to_vec(),
        entrypoint: args.entrypoint.clone(),
        env: args.env.clone(),
        env_files: args.env_files.clone(),
        workdir: args.workdir.clone(),
        user: args.user.clone(),
        interactive: args.interactive,
        tty: args.tty,
        attach: (!args.attach.is_empty()).then_some(attach),
        attach_stdin,
        network: NetworkRequest {
            mode,
            aliases: args.network_aliases.clone(),
            ip: args.ip.clone(),
            mac_address: args.mac_address.clone(),
            publish: if host_network {
                Vec::new()
            } else {
                args.publish.clone()
            },
            publish_all: args.publish_all && !host_network,
            expose: args.expose.clone(),
            dns: args.dns.clone(),
            add_hosts: args.add_hosts.clone(),
            dns_search: args.dns_search.clone(),
            dns_options: args.dns_options.clone(),
        },
        hostname: args.hostname.clone(),
        volumes: args.volumes.clone(),
        mounts: args.mounts.clone(),
        tmpfs: args.tmpfs.clone(),
        volumes_from: args.volumes_from.clone(),
        read_only: args.read_only,
        limits: Limits {
            memory,
            cpus: args.cpus,
            pids: args
                .pids_limit
                .and_then(|n| u64::try_from(n).ok())
                .filter(|n| *n > 0),
            ..Limits::default()
        },
        init: args.init,
        remove: args.rm && !args.detach,
        detach: args.detach || args.create_only,
        sandbox: SandboxRequest {
            privileged: args.privileged,
            cap_add: args.cap_add.clone(),
            cap_drop: args.cap_drop.clone(),
            security_opts: args.security_opts.clone(),
            devices: args.devices.clone(),
            device_cgroup_rules: args.device_cgroup_rules.clone(),
            ulimits: args.ulimits.clone(),
            pid: args.pid.clone(),
            ipc: args.ipc.clone(),
            uts: args.uts.clone(),
            userns: args.userns.clone(),
            cgroupns: args.cgroupns.clone(),
            group_add: args.group_add.clone(),
            oom_score_adj: args.oom_score_adj,
            oom_kill_disable: args.oom_kill_disable,
            sysctls: args.sysctls.clone(),
            shm_size,
            domainname: args.domainname.clone(),
        },
        platform,
    };
    let settings = Settings {
        restart,
        stop_signal: args.stop_signal.clone(),
        stop_timeout: args.stop_timeout,
        auto_remove: args.rm,
        labels: engine::parse_labels(&labels)?,
        anonymous_volumes: Vec::new(),
        network: Default::default(),
        interactive: args.interactive,
        log: LogConfig::parse(args.log_driver.as_deref(), &args.log_opts)?,
        healthcheck: health_flags(args)?.as_config(),
        ..Settings::default()
    };
    if let Some(cidfile) = &args.cidfile {
        if cidfile.exists() {
            bail!("the container id file {} already exists", cidfile.display());
        }
    }
    let pull: PullPolicy = args
        .pull
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid --pull {:?}: always, missing or never", args.pull))?;
    engine::check_run_options(&options, &settings).map_err(exit_with)?;
    let mut container = ContainerRequest::new(ImageName::new(args.image()), options, settings);
    container.pull = pull;
    container.cidfile = args.cidfile.clone();
    Ok(RunRequest {
        container,
        detach: args.detach,
        detach_keys,
    })
}

/// The `--health-*` flags, refused as Docker refuses them.
fn health_flags(args: &RunArgs) -> Result<HealthFlags> {
    let duration = |flag: &str, text: &Option<String>| -> Result<Option<std::time::Duration>> {
        let Some(text) = text else { return Ok(None) };
        let nanos = engine::parse_duration(text).ok_or_else(|| {
            anyhow::anyhow!(
                "invalid --{flag} {text:?}: expected a duration such as 500ms, 10s or 1m"
            )
        })?;
        if nanos != 0 && nanos < 1_000_000 {
            bail!("invalid --{flag} {text:?}: it cannot be less than 1ms");
        }
        Ok(Some(std::time::Duration::from_nanos(nanos)))
    };
    let flags = HealthFlags {
        cmd: args.health_cmd.clone().filter(|c| !c.is_empty()),
        interval: duration("health-interval", &args.health_interval)?,
        timeout: duration("health-timeout", &args.health_timeout)?,
        start_period: duration("health-start-period", &args.health_start_period)?,
        start_interval: duration("health-start-interval", &args.health_start_interval)?,
        retries: args.health_retries,
        disabled: false,
    };
    if args.no_healthcheck {
        if flags != HealthFlags::default() {
            bail!("--no-healthcheck conflicts with --health-* options");
        }
        return Ok(HealthFlags {
            disabled: true,
            ..flags
        });
    }
    Ok(flags)
}

/// `lade create`: a container made as `lade run` makes it, not started.
pub fn create(store_config: &StoreConfig, mut args: RunArgs) -> Result<ExitCode> {
    args.create_only = true;
    run(store_config, args)
}
