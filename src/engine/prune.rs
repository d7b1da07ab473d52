//! `lade system prune` and `image prune`: stopped containers, dangling images (every unused one with
//! `--all`), optionally unused anonymous volumes, and the build cache, removed.

use super::Result;
use crate::container;
use crate::store::{PruneOptions, PruneReport, Store};

/// What `lade system prune` is asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneRequest {
    /// Every image no container uses, not only untagged ones.
    pub all: bool,
    /// Unused anonymous volumes too.
    pub volumes: bool,
}

/// `lade image prune`: removes the images no container uses, untagged ones only
/// unless `all`; the names (or ids) removed.
pub fn prune_images(store: &Store, all: bool) -> Result<Vec<String>> {
    let containers = store.containers()?;
    let mut removed = Vec::new();
    for summary in store.list_images()? {
        let dangling = summary.tag.is_none();
        let used = containers.iter().any(|c| c.image == summary.id);
        if (dangling || all) && !used {
            let reference = summary
                .tag
                .clone()
                .unwrap_or_else(|| summary.id.to_string());
            if store.remove_image(&reference, true).is_ok() {
                removed.push(reference);
            }
        }
    }
    Ok(removed)
}

/// How many of a kind a prune removed, told as soon as that kind is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pruned {
    Containers(usize),
    Images(usize),
    Volumes(usize),
}

/// `lade system prune`: each kind is told to `pruned` when done; the build cache's
/// report is returned.
pub fn prune(store: &Store, request: PruneRequest, pruned: &dyn Fn(Pruned)) -> Result<PruneReport> {
    pruned(Pruned::Containers(container::prune(store)?.len()));
    pruned(Pruned::Images(prune_images(store, request.all)?.len()));
    if request.volumes {
        pruned(Pruned::Volumes(
            container::prune_volumes(store, false)?.len(),
        ));
    }
    Ok(store.prune_cache(&PruneOptions::default())?)
}
