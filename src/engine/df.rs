//! `lade system df`: the space images, containers, volumes and the build cache take,
//! and what removing the unused ones would reclaim.

use std::collections::BTreeMap;

use super::Result;
use crate::container::{self, ContainerError, ContainerState};
use crate::oci::Digest;
use crate::store::Store;

/// What one kind of thing takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Space {
    /// Docker's name of the kind (`Images`, `Local Volumes`).
    pub kind: &'static str,
    pub total: usize,
    pub active: usize,
    pub size: u64,
    pub reclaimable: u64,
}

/// One container's or volume's size, and whether it is in use (running, or mounted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    pub name: String,
    pub size: u64,
    pub used: bool,
}

/// What `df` found: one [`Space`] per kind (images, containers, volumes, build cache),
/// and each container's and volume's size for `--verbose`.
#[derive(Debug, Clone)]
pub struct DiskUsage {
    pub spaces: [Space; 4],
    pub containers: Vec<Usage>,
    pub volumes: Vec<Usage>,
}

/// `lade system df`.
pub fn df(store: &Store) -> Result<DiskUsage> {
    let records = store.containers()?;
    let active = records
        .iter()
        .map(|c| Ok(ContainerState::current(c)?.is_active()))
        .collect::<Result<Vec<bool>, ContainerError>>()?;
    // Images once per id, and their layers once each: a layer several images share
    // takes its space once, and is reclaimable only when no image in use has it.
    let mut images: BTreeMap<Digest, bool> = BTreeMap::new();
    let mut layers: BTreeMap<Digest, (u64, bool)> = BTreeMap::new();
    for summary in store.list_images()? {
        if images.contains_key(&summary.id) {
            continue;
        }
        let used = records.iter().any(|c| c.image == summary.id);
        images.insert(summary.id, used);
        for layer in store.image_by_manifest(&summary.manifest_digest)?.layers {
            let entry = layers
                .entry(layer.diff_id)
                .or_insert((layer.tar_size, false));
            entry.1 |= used;
        }
    }
    let image_space = Space {
        kind: "Images",
        total: images.len(),
        active: images.values().filter(|used| **used).count(),
        size: layers.values().map(|(size, _)| size).sum(),
        reclaimable: layers
            .values()
            .filter(|(_, used)| !used)
            .map(|(size, _)| size)
            .sum(),
    };
    let containers: Vec<Usage> = records
        .iter()
        .zip(&active)
        .map(|(c, active)| Usage {
            name: c.name.clone(),
            size: store.container_changes_size(&c.id),
            used: *active,
        })
        .collect();
    let mut volumes = Vec::new();
    for volume in store.volumes()? {
        let used = !container::volume_users(store, &volume.name)?.is_empty();
        volumes.push(Usage {
            size: store.volume_size(&volume.name),
            name: volume.name,
            used,
        });
    }
    let cache = store.cache_usage()?;
    let cache_bytes = cache.layers.1 + cache.cache_mounts.1 + cache.context_hashes.1;
    let cache_space = Space {
        kind: "Build Cache",
        total: cache.records as usize,
        active: 0,
        size: cache_bytes,
        reclaimable: cache_bytes,
    };
    Ok(DiskUsage {
        spaces: [
            image_space,
            space("Containers", &containers),
            space("Local Volumes", &volumes),
            cache_space,
        ],
        containers,
        volumes,
    })
}

fn space(kind: &'static str, usages: &[Usage]) -> Space {
    Space {
        kind,
        total: usages.len(),
        active: usages.iter().filter(|u| u.used).count(),
        size: usages.iter().map(|u| u.size).sum(),
        reclaimable: usages.iter().filter(|u| !u.used).map(|u| u.size).sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_unused_is_reclaimable() {
        let usages = [
            Usage {
                name: "a".into(),
                size: 10,
                used: true,
            },
            Usage {
                name: "b".into(),
                size: 5,
                used: false,
            },
        ];
        let s = space("Containers", &usages);
        assert_eq!((s.total, s.active, s.size, s.reclaimable), (2, 1, 15, 5));
    }

    #[test]
    fn an_empty_store_takes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let usage = df(&store).unwrap();
        assert!(usage.spaces.iter().all(|s| s.total == 0 && s.size == 0));
    }
}
