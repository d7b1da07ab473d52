//! `lade update` (`container update`): Docker's flags for the limits `run` sets and the
//! restart policy, checked, then applied to each container named.

use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;

use super::{each_item, open_store, StoreConfig};
use crate::engine::{self, LimitsUpdate, RestartPolicy, UpdateRequest};
use crate::oci::parse_size;

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Memory limit (e.g. 512m, 1g; 0 leaves it as it is). Below what a running
    /// container uses, the kernel refuses it
    #[arg(short = 'm', long, value_name = "BYTES")]
    pub memory: Option<String>,
    /// CPU limit in CPUs (e.g. 0.5; 0 leaves it as it is)
    #[arg(long, value_name = "CPUS")]
    pub cpus: Option<f64>,
    /// Process limit (-1 for unlimited)
    #[arg(long = "pids-limit", value_name = "N", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Restart policy: no, on-failure[:N], always, unless-stopped
    #[arg(long, value_name = "POLICY")]
    pub restart: Option<String>,
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

/// `lade update`: prints each container as it was named once it is updated; the exit
/// code says whether any failed.
pub fn update(store_config: &StoreConfig, args: UpdateArgs) -> Result<ExitCode> {
    let (limits, restart) = update_request(&args)?;
    let store = open_store(store_config)?;
    // One after the other, in the order given, as Docker's client does.
    Ok(each_item(&args.containers, |reference| {
        let request = UpdateRequest {
            container: reference.to_string(),
            limits: limits.clone(),
            restart,
        };
        engine::update(&store, &request)?;
        println!("{reference}");
        Ok::<_, engine::EngineError>(())
    }))
}

/// The change asked for, as Docker's client reads its flags: 0 leaves a memory or CPU
/// limit as it is, a negative process limit (or 0, which Docker's daemon reads alike)
/// lifts it.
fn update_request(args: &UpdateArgs) -> Result<(LimitsUpdate, Option<RestartPolicy>)> {
    if args.memory.is_none()
        && args.cpus.is_none()
        && args.pids_limit.is_none()
        && args.restart.is_none()
    {
        // Docker's words.
        bail!("you must provide one or more flags when using this command");
    }
    let memory = match &args.memory {
        None => None,
        Some(text) => Some(parse_size(text).ok_or_else(|| {
            anyhow::anyhow!("invalid --memory {text:?}: expected a size such as 512m or 1g")
        })?)
        .filter(|bytes| *bytes > 0),
    };
    if let Some(cpus) = args.cpus {
        if !(cpus >= 0.0 && cpus.is_finite()) {
            bail!("invalid --cpus {cpus}: expected a positive number");
        }
    }
    let restart = match &args.restart {
        None => None,
        Some(text) => Some(RestartPolicy::parse(text).ok_or_else(|| {
            anyhow::anyhow!(
                "invalid --restart {text:?}: expected no, on-failure[:N], always or unless-stopped"
            )
        })?),
    };
    let limits = LimitsUpdate {
        memory: memory.map(Some),
        cpus: args.cpus.filter(|cpus| *cpus > 0.0).map(Some),
        pids: args
            .pids_limit
            .map(|n| u64::try_from(n).ok().filter(|n| *n > 0)),
    };
    Ok((limits, restart))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(memory: Option<&str>, cpus: Option<f64>, pids: Option<i64>) -> UpdateArgs {
        UpdateArgs {
            memory: memory.map(str::to_string),
            cpus,
            pids_limit: pids,
            restart: None,
            containers: vec!["web".into()],
        }
    }

    #[test]
    fn flags_read_as_docker_reads_them() {
        let (limits, restart) = update_request(&args(Some("64m"), Some(0.5), Some(50))).unwrap();
        assert_eq!(
            limits,
            LimitsUpdate {
                memory: Some(Some(64 << 20)),
                cpus: Some(Some(0.5)),
                pids: Some(Some(50)),
            }
        );
        assert_eq!(restart, None);
        // 0 leaves memory and CPUs as they are; -1 and 0 lift the process limit.
        let (limits, _) = update_request(&args(Some("0"), Some(0.0), Some(-1))).unwrap();
        assert_eq!(
            limits,
            LimitsUpdate {
                pids: Some(None),
                ..LimitsUpdate::default()
            }
        );
        let (limits, _) = update_request(&args(None, None, Some(0))).unwrap();
        assert_eq!(limits.pids, Some(None));
        let err = update_request(&args(None, None, None)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "you must provide one or more flags when using this command"
        );
        assert!(update_request(&args(Some("lots"), None, None)).is_err());
        assert!(update_request(&args(None, Some(-1.0), None)).is_err());
        let mut restart = args(None, None, None);
        restart.restart = Some("on-failure:3".into());
        assert_eq!(
            update_request(&restart).unwrap().1,
            Some(RestartPolicy::OnFailure(Some(3)))
        );
        restart.restart = Some("sometimes".into());
        assert!(update_request(&restart).is_err());
    }
}
