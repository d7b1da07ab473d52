//! `lade system check`: the store's integrity checked (and with `--repair` mended),
//! with the layers module's snapshot fingerprints and the snapshots containers use.

use super::Result;
use crate::store::{CheckOptions, CheckReport, FingerprintError, Store};

/// What `lade system check` is asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckRequest {
    /// References and sizes only: no blob re-hashed, no snapshot read.
    pub quick: bool,
    /// Remove what is broken (and what needed it).
    pub repair: bool,
}

/// `lade system check`.
pub fn check(store: &Store, request: CheckRequest) -> Result<CheckReport> {
    let fingerprint =
        |dir: &std::path::Path| crate::layers::fingerprint(dir).map_err(FingerprintError::from);
    let snapshot_users = || crate::container::snapshot_users(store);
    Ok(store.check(&CheckOptions {
        quick: request.quick,
        repair: request.repair,
        fingerprint: &fingerprint,
        snapshot_users: &snapshot_users,
    })?)
}
