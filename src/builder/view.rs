//! Read-only views of an image's or a stage's root filesystem: its layers' snapshots
//! mounted as one overlay in lade's private mount namespace. COPY reads sources through
//! them (`--from`), and checks what the destination already holds.

use std::path::Path;

use crate::exec::mounts::{mount_readonly_view, Mounted};
pub(crate) use crate::exec::paths::resolve_in_root;
use crate::layers;
use crate::store::{LayerInfo, Staging, Store};

use super::BuildError;

/// A mounted view; unmounted and removed when dropped.
pub(crate) struct RootView {
    // Declared first: the mount goes before its mount point is removed.
    _mount: Option<Mounted>,
    dir: Staging,
}

impl RootView {
    /// Mounts `layers` (bottom first, as in a manifest), unpacking any layer not yet
    /// unpacked.
    pub(crate) fn open(store: &Store, layers: &[LayerInfo]) -> Result<RootView, BuildError> {
        let names = layers::overlay_lowers(store, layers)?;
        let dir = store.staging_dir("view")?;
        let mount =
            mount_readonly_view(&store.snapshots_dir(), &names, dir.path()).map_err(|source| {
                BuildError::Io {
                    path: dir.path().to_path_buf(),
                    source,
                }
            })?;
        Ok(RootView { _mount: mount, dir })
    }

    pub(crate) fn root(&self) -> &Path {
        self.dir.path()
    }
}
