//! Docker's names that lade does not have yet: a command line that uses one is answered
//! with "not supported yet" instead of clap's generic "unrecognized" and its nearest
//! match (which offered `--root` for any unknown option).

use clap::error::{ContextKind, ContextValue, ErrorKind};

/// Docker CLI commands lade lacks today.
const DOCKER_COMMANDS: &[&str] = &[
    "builder", "buildx", "compose", "config", "context", "manifest", "node", "plugin", "search",
    "secret", "service", "stack", "swarm", "trust", "update",
];

/// Long options of Docker's `build`, `run`, `ps`, `images`, `rmi`, `rm`, `save`,
/// `load`, `import`, `history` and `inspect` that lade lacks today. `quiet` and
/// `platform` stay for the commands that still lack them (`build`, `ps`, `images`);
/// a command that has one never reaches this list with it.
const DOCKER_OPTIONS: &[&str] = &[
    "filter",
    "last",
    "latest",
    "allow",
    "annotation",
    "attach",
    "attest",
    "blkio-weight",
    "blkio-weight-device",
    "build-context",
    "builder",
    "call",
    "cgroup-parent",
    "check",
    "compress",
    "cpu-period",
    "cpu-quota",
    "cpu-rt-period",
    "cpu-rt-runtime",
    "cpu-shares",
    "cpuset-cpus",
    "cpuset-mems",
    "device-read-bps",
    "device-read-iops",
    "device-write-bps",
    "device-write-iops",
    "digests",
    "disable-content-trust",
    "force-rm",
    "gpus",
    "human",
    "ip6",
    "isolation",
    "kernel-memory",
    "link",
    "link-local-ip",
    "load",
    "mac-address",
    "memory-reservation",
    "memory-swap",
    "memory-swappiness",
    "metadata-file",
    "no-prune",
    "output",
    "platform",
    "provenance",
    "pull",
    "push",
    "quiet",
    "runtime",
    "sbom",
    "secret",
    "sig-proxy",
    "squash",
    "ssh",
    "storage-opt",
    "type",
    "volume-driver",
    "volumes",
];

/// The message for a parse error that names something Docker has and lade does not
/// yet, if it is one.
pub(super) fn not_supported_yet(error: &clap::Error) -> Option<String> {
    let invalid = match error
        .get(ContextKind::InvalidSubcommand)
        .or_else(|| error.get(ContextKind::InvalidArg))
    {
        Some(ContextValue::String(value)) => value.clone(),
        _ => return None,
    };
    match error.kind() {
        ErrorKind::InvalidSubcommand if DOCKER_COMMANDS.contains(&invalid.as_str()) => Some(format!(
            "`{invalid}` is a Docker command that lade does not support yet (lade --help lists what it has)"
        )),
        ErrorKind::UnknownArgument => {
            let name = invalid.trim_start_matches('-');
            let name = name.split_once('=').map_or(name, |(n, _)| n);
            (invalid.starts_with("--") && DOCKER_OPTIONS.contains(&name)).then(|| {
                format!("--{name} is a Docker option that lade does not support yet (--help lists the options lade has)")
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn docker_names_lade_lacks_are_not_supported_yet() {
        let error = crate::cli::Cli::try_parse_from(["lade", "swarm", "init"]).unwrap_err();
        assert!(not_supported_yet(&error)
            .unwrap()
            .contains("`swarm` is a Docker command"));
        let error = crate::cli::Cli::try_parse_from(["lade", "run", "--gpus", "all", "busybox"])
            .unwrap_err();
        assert!(not_supported_yet(&error)
            .unwrap()
            .contains("--gpus is a Docker option"));
        let error = crate::cli::Cli::try_parse_from(["lade", "bild"]).unwrap_err();
        assert_eq!(
            not_supported_yet(&error),
            None,
            "a typo keeps clap's suggestion"
        );
    }
}
