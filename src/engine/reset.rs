//! `lade system reset` (podman's command): every container (killed first), image,
//! volume and network of the store, and its build cache, removed, with what the store
//! has on the host: its networks' bridges and firewall rules, its host-wide claims, and
//! its aardvark-dns.

use super::{PruneFilters, PruneRequest, Result};
use crate::container;
use crate::network::{self, Driver};
use crate::store::Store;

/// What `system reset` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResetReport {
    pub containers: usize,
    pub images: usize,
    pub volumes: usize,
    pub networks: usize,
}

/// `lade system reset`. Each step is tried even when an earlier one failed (what the
/// store made on the host goes even when an image cannot be removed); the first
/// failure is returned once all were tried.
pub fn reset(store: &Store) -> Result<ResetReport> {
    let mut report = ResetReport::default();
    let mut first_failure: Option<super::EngineError> = None;
    let mut failed = |error: super::EngineError| {
        first_failure.get_or_insert(error);
    };
    for record in store.containers()? {
        match container::remove(store, &record.id, true, true) {
            Ok(_) => report.containers += 1,
            Err(e) => failed(e.into()),
        }
    }
    // Every image, the build cache, and the user networks (none is in use now).
    let everything = PruneRequest {
        all: true,
        volumes: false,
        filters: PruneFilters::default(),
    };
    let images = std::cell::Cell::new(0);
    let networks = std::cell::Cell::new(0);
    let pruned = super::prune(store, everything, &|pruned| match pruned {
        super::Pruned::Images(n) => images.set(n),
        super::Pruned::Networks(n) => networks.set(n),
        _ => {}
    });
    if let Err(e) = pruned {
        failed(e);
    }
    report.images = images.get();
    match super::volume::prune_volumes(store, true, &PruneFilters::default()) {
        Ok(removed) => report.volumes = removed.len(),
        Err(e) => failed(e),
    }
    // The default network too, which no prune removes.
    match network::remove_all(store, crate::exec::mounts::host_mount_namespace) {
        Ok(removed) => report.networks = networks.get() + removed.len(),
        Err(e) => failed(e.into()),
    }
    Driver::for_store(store, crate::exec::mounts::host_mount_namespace).stop_dns();
    match first_failure {
        Some(error) => Err(error),
        None => Ok(report),
    }
}
