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

/// `lade system reset`.
pub fn reset(store: &Store) -> Result<ResetReport> {
    let mut report = ResetReport::default();
    for record in store.containers()? {
        container::remove(store, &record.id, true, true)?;
        report.containers += 1;
    }
    // Every image, the build cache, and the user networks (none is in use now).
    let everything = PruneRequest {
        all: true,
        volumes: false,
        filters: PruneFilters::default(),
    };
    let images = std::cell::Cell::new(0);
    let networks = std::cell::Cell::new(0);
    super::prune(store, everything, &|pruned| match pruned {
        super::Pruned::Images(n) => images.set(n),
        super::Pruned::Networks(n) => networks.set(n),
        _ => {}
    })?;
    report.images = images.get();
    report.volumes = super::volume::prune_volumes(store, true, &PruneFilters::default())?.len();
    // The default network too, which no prune removes.
    report.networks = networks.get() + network::remove_all(store)?.len();
    Driver::for_store(store).stop_dns();
    Ok(report)
}
