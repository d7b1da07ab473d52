//! `lade system check`: the store's integrity checked (and with `--repair` mended),
//! with the layers module's snapshot fingerprints and the snapshots containers use;
//! and what deleted stores left on the host (their bridges), which no store can see.

use super::Result;
use crate::store::{CheckOptions, CheckReport, FingerprintError, Problem, Store};

/// What `lade system check` is asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckRequest {
    /// References and sizes only: no blob re-hashed, no snapshot read.
    pub quick: bool,
    /// Remove what is broken (and what needed it).
    pub repair: bool,
}

/// What `lade system check` found: the store's report, and what deleted stores left on
/// the host. Those are told, and removed by `--repair`, but are not this store's
/// problems: the check of a sound store passes beside them.
#[derive(Debug)]
pub struct CheckOutcome {
    pub report: CheckReport,
    pub host_leftovers: Vec<Problem>,
}

/// `lade system check`.
pub fn check(store: &Store, request: CheckRequest) -> Result<CheckOutcome> {
    let fingerprint =
        |dir: &std::path::Path| crate::layers::fingerprint(dir).map_err(FingerprintError::from);
    let snapshot_users = || crate::container::snapshot_users(store);
    let mut report = store.check(&CheckOptions {
        quick: request.quick,
        repair: request.repair,
        fingerprint: &fingerprint,
        snapshot_users: &snapshot_users,
    })?;
    let mut host_leftovers = Vec::new();
    for orphan in crate::network::orphan_bridges() {
        if request.repair {
            crate::network::remove_orphan_bridge(
                &orphan,
                crate::exec::mounts::host_mount_namespace,
            )?;
            report.repairs.push(format!(
                "removed bridge {} of the deleted store {}",
                orphan.bridge, orphan.owner
            ));
        }
        host_leftovers.push(Problem::OrphanBridge {
            bridge: orphan.bridge,
            owner: orphan.owner,
            present: orphan.present,
        });
    }
    Ok(CheckOutcome {
        report,
        host_leftovers,
    })
}
