//! What of Docker's command line lade does not do, and why: one table of commands and
//! one of options, each with a short reason. A command line that uses one is answered
//! with a single line saying so (exit code 125, as Docker's CLI gives for its own usage
//! errors), never with clap's "unexpected argument" and its nearest match, and never by
//! ignoring it. The tables are checked against Docker's reference
//! (`docs/docker-cli.tsv`) by the `docker_compat` test, which also writes
//! `docs/docker-compat.md` from them.

use clap::{Arg, ArgAction, ArgMatches, Command};

/// Docker's reference: every command and option of its CLI, with their other names.
pub(super) const DOCKER_CLI: &str = include_str!("../../docs/docker-cli.tsv");

const NO_DAEMON: &str = "lade has no daemon";
const SWARM: &str = "swarm mode: lade has no daemon";
const NOT_YET: &str = "not supported yet";

/// Docker's commands lade does not have (with their subcommands): the command as
/// Docker names it, and why.
pub(super) const COMMANDS: &[(&str, &str)] = &[
    (
        "buildx",
        "lade build is lade's builder; there are no buildx builders",
    ),
    ("checkpoint", "no checkpoint and restore (CRIU)"),
    ("config", SWARM),
    ("context", "lade has no daemon to choose"),
    ("node", SWARM),
    ("plugin", "no plugins: lade has no daemon"),
    ("secret", SWARM),
    ("service", SWARM),
    ("stack", SWARM),
    ("swarm", SWARM),
    ("system dial-stdio", NO_DAEMON),
    ("trust", "no content trust (Notary)"),
    ("volume update", "cluster volumes: swarm mode"),
];

const NO_IPV6: &str = "no IPv6 networking";
const LINKS: &str = "legacy links: on a user network containers find each other by name";
const NO_PRIVILEGED: &str =
    "containers keep Docker's default capabilities, seccomp filter and no_new_privs";
const WINDOWS: &str = "Windows only";
const ONE_PLATFORM: &str =
    "not supported yet: rm takes a multi-platform image whole (inspect, history, save and push take --platform)";
const CLUSTER_VOLUMES: &str = "cluster volumes: swarm mode";
const CRIU: &str = "no checkpoint and restore (CRIU)";

const NO_BLKIO: &str = "no block I/O limits";
const CPUS_ONLY: &str = "CPU is limited by --cpus only";
const MEMORY_ONLY: &str = "memory is limited by --memory only";

/// What `run` and `create` lack alike.
#[rustfmt::skip]
const RUN_OPTIONS: &[(&[&str], &str)] = &[
    (&["annotation", "link-local-ip"], NOT_YET),
    (&["blkio-weight", "blkio-weight-device", "device-read-bps", "device-read-iops",
       "device-write-bps", "device-write-iops"], NO_BLKIO),
    (&["cpu-count", "cpu-percent", "io-maxbandwidth", "io-maxiops", "isolation"], WINDOWS),
    (&["cgroup-parent"], "each container has a cgroup of lade's making"),
    (&["cpu-period", "cpu-quota", "cpu-shares", "cpuset-cpus", "cpuset-mems",
       "cpu-rt-period", "cpu-rt-runtime"], CPUS_ONLY),
    (&["memory-reservation", "memory-swap", "memory-swappiness"], MEMORY_ONLY),
    (&["gpus"], "no GPU support"),
    (&["ip6"], NO_IPV6),
    (&["link"], LINKS),
    (&["runtime"], "lade is its own runtime"),
    (&["storage-opt"], "no storage driver options"),
    (&["use-api-socket"], NO_DAEMON),
    (&["volume-driver"], "only local volumes"),
];

/// Options of Docker's commands that lade does not have: the command as Docker names
/// it (`docker` for the options before any command), its long options, and why.
/// `container run` and `container create` have [`RUN_OPTIONS`] too.
#[rustfmt::skip]
pub(super) const OPTIONS: &[(&str, &[&str], &str)] = &[
    ("docker", &["host", "context", "tls", "tlscacert", "tlscert", "tlskey", "tlsverify"],
     NO_DAEMON),
    ("container run", &["sig-proxy"], NOT_YET),
    ("container commit", &["no-pause"], NOT_YET),
    ("container cp", &["quiet"], NOT_YET),
    ("container inspect", &["size"], NOT_YET),
    ("inspect", &["size"], NOT_YET),
    ("container rm", &["link"], LINKS),
    ("container start", &["checkpoint", "checkpoint-dir"], CRIU),
    ("container update", &["blkio-weight"], NO_BLKIO),
    ("container update", &["cpu-period", "cpu-quota", "cpu-rt-period", "cpu-rt-runtime",
                           "cpu-shares", "cpuset-cpus", "cpuset-mems"], CPUS_ONLY),
    ("container update", &["memory-reservation", "memory-swap"], MEMORY_ONLY),
    ("container stats", &["all", "no-trunc"], NOT_YET),
    ("image build", &["cgroup-parent", "cpu-period", "cpu-quota", "cpu-shares", "cpuset-cpus",
                      "cpuset-mems", "memory", "memory-swap"], "build steps run without limits"),
    ("image build", &["compress"], "the context is read where it is, never sent"),
    ("image build", &["force-rm", "rm"], "a build leaves no containers behind"),
    ("image build", &["isolation"], WINDOWS),
    ("image build", &["security-opt"], NO_PRIVILEGED),
    ("image build", &["squash"], "not supported (experimental in Docker)"),
    ("image load", &["platform"], "not supported yet: load adds every image of the archive"),
    ("image push", &["all-tags"], NOT_YET),
    ("image rm", &["platform"], ONE_PLATFORM),
    ("image rm", &["no-prune"], NOT_YET),
    ("image ls", &["tree"], NOT_YET),
    ("network connect", &["driver-opt", "gw-priority", "link-local-ip"], NOT_YET),
    ("network connect", &["ip6"], NO_IPV6),
    ("network connect", &["link"], LINKS),
    ("network create", &["attachable", "config-from", "config-only", "ingress", "scope"], SWARM),
    ("network create", &["aux-address", "ip-range", "ipam-driver", "ipam-opt", "ipv4", "opt"],
     NOT_YET),
    ("network create", &["ipv6"], NO_IPV6),
    ("network disconnect", &["force"], NOT_YET),
    ("network inspect", &["verbose"], SWARM),
    ("network rm", &["force"], NOT_YET),
    ("volume create", &["availability", "group", "limit-bytes", "required-bytes", "scope",
                        "secret", "sharing", "topology-preferred", "topology-required", "type"],
     CLUSTER_VOLUMES),
    ("volume ls", &["cluster"], CLUSTER_VOLUMES),
];

/// Docker's hidden other names of options lade refuses, refused alike.
const HIDDEN_NAMES: &[(&str, &str)] = &[("dns-option", "dns-opt")];

/// Every refused option: the command as Docker names it, the long option, and why.
pub(super) fn refused_options() -> impl Iterator<Item = (&'static str, &'static str, &'static str)>
{
    let run = ["container run", "container create"]
        .into_iter()
        .flat_map(|command| {
            RUN_OPTIONS
                .iter()
                .flat_map(move |(longs, why)| longs.iter().map(move |long| (command, *long, *why)))
        });
    OPTIONS
        .iter()
        .flat_map(|(command, longs, why)| longs.iter().map(move |long| (*command, *long, *why)))
        .chain(run)
}

/// The id of the argument that marks a refused command's stand-in.
const REFUSED_COMMAND: &str = "docker-refused-command";
/// The prefix of the ids of refused options' stand-ins.
const REFUSED_OPTION: &str = "docker-refused:";

/// One command of Docker's reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DockerCommand {
    /// As Docker's reference names it (`container ls`; `docker` for the global options).
    pub name: String,
    /// Its other names (`ps`, `container list`).
    pub aliases: Vec<String>,
    pub options: Vec<DockerOption>,
}

impl DockerCommand {
    /// Its name first, then its other names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.name.as_str()).chain(self.aliases.iter().map(String::as_str))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DockerOption {
    pub long: String,
    pub short: Option<char>,
    /// Docker's type for its value (`bool` for a flag that takes none).
    pub kind: String,
}

/// The commands of Docker's reference, in its order.
pub(super) fn docker_commands() -> Vec<DockerCommand> {
    let mut commands: Vec<DockerCommand> = Vec::new();
    for line in DOCKER_CLI.lines().filter(|l| !l.starts_with('#')) {
        let cells: Vec<&str> = line.split('\t').collect();
        let [name, aliases, long, short, kind] = cells[..] else {
            continue;
        };
        if commands.last().is_none_or(|c| c.name != name) {
            commands.push(DockerCommand {
                name: name.to_string(),
                aliases: aliases
                    .split(',')
                    .filter(|a| !a.is_empty())
                    .map(str::to_string)
                    .collect(),
                options: Vec::new(),
            });
        }
        if !long.is_empty() {
            let command = commands.last_mut().expect("pushed above");
            command.options.push(DockerOption {
                long: long.to_string(),
                short: short.chars().next(),
                kind: kind.to_string(),
            });
        }
    }
    commands
}

/// The words of a Docker command name under lade's root (`docker` is the root).
pub(super) fn words(name: &str) -> Vec<&str> {
    if name == "docker" {
        Vec::new()
    } else {
        name.split(' ').collect()
    }
}

/// The canonical names of the subcommand at `words`, if lade has it.
fn resolve(command: &Command, words: &[&str]) -> Option<Vec<String>> {
    let mut names = Vec::new();
    let mut at = command;
    for word in words {
        at = at.find_subcommand(word)?;
        names.push(at.get_name().to_string());
    }
    Some(names)
}

fn subcommand_at<'a>(command: &'a mut Command, path: &[String]) -> &'a mut Command {
    path.iter().fold(command, |command, name| {
        command
            .find_subcommand_mut(name)
            .expect("the path was resolved in this tree")
    })
}

/// The paths (canonical names) under which lade has a command of Docker's, under any
/// of its names, each once.
pub(super) fn lade_paths(tree: &Command, command: &DockerCommand) -> Vec<Vec<String>> {
    let mut paths: Vec<Vec<String>> = Vec::new();
    for name in command.names() {
        if let Some(path) = resolve(tree, &words(name)) {
            if !paths.contains(&path) {
                paths.push(path);
            }
        }
    }
    paths
}

/// lade's command tree with stand-ins for what it refuses: hidden commands and options
/// that parse as Docker's would (a refused option's value is taken, so the words after
/// it are not mistaken for an image or a command), for [`refusal`] to answer. `only`:
/// the path of the commands to give them to (the stand-ins of commands under these,
/// the options of these); `None` for all.
pub(super) fn with_refusals(mut tree: Command, only: Option<&[String]>) -> Command {
    let on_path = |path: &[String]| only.is_none_or(|only| only.starts_with(path));
    let commands = docker_commands();
    for (name, why) in COMMANDS {
        let names: Vec<String> = commands
            .iter()
            .find(|c| c.name == *name)
            .map(|c| c.names().map(str::to_string).collect())
            .unwrap_or_else(|| vec![name.to_string()]);
        for name in names {
            let words = words(&name);
            let (last, parent) = words.split_last().expect("a command has a name");
            let Some(parent) = resolve(&tree, parent).filter(|parent| on_path(parent)) else {
                continue;
            };
            let parent = subcommand_at(&mut tree, &parent);
            if parent.find_subcommand(last).is_some() {
                continue;
            }
            let stand_in = Command::new(last.to_string())
                .about(*why)
                .hide(true)
                .disable_help_flag(true)
                .disable_version_flag(true)
                .arg(
                    Arg::new(REFUSED_COMMAND)
                        .num_args(0..)
                        .trailing_var_arg(true)
                        .allow_hyphen_values(true),
                );
            *parent = std::mem::take(parent).subcommand(stand_in);
        }
    }
    for (name, long, why) in refused_options() {
        let Some(command) = commands.iter().find(|c| c.name == name) else {
            continue;
        };
        let Some(option) = command.options.iter().find(|o| o.long == long) else {
            continue;
        };
        for path in lade_paths(&tree, command) {
            if !on_path(&path) {
                continue;
            }
            let at = subcommand_at(&mut tree, &path);
            let mut arg = Arg::new(format!("{REFUSED_OPTION}{long}"))
                .long(long)
                .help(why)
                .hide(true)
                .action(ArgAction::Append);
            if let Some(short) = option.short {
                arg = arg.short(short);
            }
            for (_, hidden) in HIDDEN_NAMES.iter().filter(|(l, _)| *l == long) {
                arg = arg.alias(*hidden);
            }
            arg = if option.kind == "bool" {
                // `--privileged` alone, or `--privileged=false`: never the next word.
                arg.num_args(0..=1)
                    .require_equals(true)
                    .default_missing_value("true")
            } else {
                arg.num_args(1).allow_hyphen_values(true)
            };
            *at = std::mem::take(at).arg(arg);
        }
    }
    tree
}

/// The one-line answer to a command line that uses something lade refuses.
pub(super) fn refusal(tree: &Command, matches: &ArgMatches) -> Option<String> {
    let mut path: Vec<&str> = Vec::new();
    let mut command = tree;
    let mut matches = matches;
    loop {
        for id in matches.ids() {
            let Some(long) = id.as_str().strip_prefix(REFUSED_OPTION) else {
                continue;
            };
            if matches.value_source(id.as_str()) != Some(clap::parser::ValueSource::CommandLine) {
                continue;
            }
            let why = command
                .get_arguments()
                .find(|a| a.get_id() == id)
                .and_then(Arg::get_help)
                .map(ToString::to_string)
                .unwrap_or_default();
            return Some(if path.is_empty() {
                format!("{why}: --{long} is not supported")
            } else {
                format!(
                    "--{long} is not supported by lade {}: {why}",
                    path.join(" ")
                )
            });
        }
        let (name, sub_matches) = matches.subcommand()?;
        command = command.find_subcommand(name)?;
        path.push(command.get_name());
        if command
            .get_arguments()
            .any(|a| a.get_id() == REFUSED_COMMAND)
        {
            let why = command
                .get_about()
                .map(ToString::to_string)
                .unwrap_or_default();
            return Some(format!("lade {} is not supported: {why}", path.join(" ")));
        }
        matches = sub_matches;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(args: &[&str]) -> Option<String> {
        let mut tree = crate::cli::command();
        let matches = tree
            .try_get_matches_from_mut(args)
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        refusal(&tree, &matches)
    }

    #[test]
    fn the_stand_ins_fit_the_tree() {
        // Panics on a stand-in whose name or short form lade already uses.
        crate::cli::command().debug_assert();
    }

    #[test]
    fn long_and_short_forms_are_refused_alike() {
        let gpus = Some("--gpus is not supported by lade run: no GPU support".to_string());
        assert_eq!(
            refused(&["lade", "run", "--gpus", "all", "busybox", "true"]),
            gpus
        );
        assert_eq!(refused(&["lade", "run", "--gpus=all", "busybox"]), gpus);
        let shares = Some(
            "--cpu-shares is not supported by lade container create: CPU is limited by --cpus only"
                .to_string(),
        );
        assert_eq!(
            refused(&["lade", "container", "create", "-c", "2", "busybox"]),
            shares
        );
        // A refused flag takes no value of the next word: the image is still the image.
        assert!(
            refused(&["lade", "run", "--link-local-ip", "busybox", "true"])
                .unwrap()
                .starts_with("--link-local-ip is not supported by lade run")
        );
        assert_eq!(
            refused(&["lade", "run", "--dns-opt", "ndots:1", "busybox"]),
            None
        );
        assert!(refused(&["lade", "images", "--tree"])
            .unwrap()
            .starts_with("--tree is not supported by lade images"));
        assert_eq!(
            refused(&["lade", "run", "-h", "box", "busybox", "hostname"]),
            None
        );
    }

    #[test]
    fn docker_names_lade_lacks_are_refused_with_why() {
        assert_eq!(
            refused(&["lade", "swarm", "init", "--advertise-addr", "x"]).as_deref(),
            Some("lade swarm is not supported: swarm mode: lade has no daemon")
        );
        assert_eq!(
            refused(&["lade", "-H", "tcp://x", "ps"]).as_deref(),
            Some("lade has no daemon: --host is not supported")
        );
        assert_eq!(refused(&["lade", "ps", "-a"]), None);
        assert_eq!(refused(&["lade", "update", "--memory", "1g", "x"]), None);
        assert_eq!(
            refused(&["lade", "update", "--cpu-shares", "512", "x"]).as_deref(),
            Some("--cpu-shares is not supported by lade update: CPU is limited by --cpus only")
        );
        assert_eq!(
            refused(&["lade", "container", "update", "-c", "2", "x"]).as_deref(),
            Some(
                "--cpu-shares is not supported by lade container update: CPU is limited by --cpus only"
            )
        );
        assert!(refused(&["lade", "update", "--memory-swap", "1g", "x"])
            .unwrap()
            .ends_with("memory is limited by --memory only"));
        assert_eq!(refused(&["lade", "compose", "up", "-d"]), None);
        let error = crate::cli::command()
            .try_get_matches_from(["lade", "bild"])
            .unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::InvalidSubcommand);
    }
}
