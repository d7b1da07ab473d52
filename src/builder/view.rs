//! Read-only views of an image's or a stage's root filesystem: its layers' snapshots
//! mounted as one overlay in lade's private mount namespace. COPY reads sources through
//! them (`--from`), and checks what the destination already holds.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use crate::exec::mounts::{mount_readonly_view, Mounted};
use crate::layers;
use crate::store::{snapshot_name, LayerInfo, Staging, Store};

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
        for layer in layers {
            layers::ensure_snapshot(store, layer)?;
        }
        let names: Vec<String> = layers
            .iter()
            .rev()
            .map(|l| snapshot_name(&l.diff_id))
            .collect();
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

/// Resolves `path` (absolute or relative, inside `root`) the way a process chrooted in
/// `root` would: symlinks are followed (absolute ones from `root`), `..` stops at the
/// root. The last component is followed only with `follow_last`.
pub(crate) fn resolve_in_root(root: &Path, path: &str, follow_last: bool) -> PathBuf {
    let mut resolved: Vec<OsString> = Vec::new();
    let mut pending: VecDeque<OsString> = components(Path::new(path));
    let mut links = 0;
    while let Some(part) = pending.pop_front() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let mut candidate = root.to_path_buf();
        candidate.extend(&resolved);
        candidate.push(&part);
        let last = pending.is_empty();
        let is_link =
            std::fs::symlink_metadata(&candidate).is_ok_and(|m| m.file_type().is_symlink());
        if is_link && (!last || follow_last) && links < 40 {
            links += 1;
            if let Ok(target) = std::fs::read_link(&candidate) {
                if target.is_absolute() {
                    resolved.clear();
                }
                for (i, c) in components(&target).into_iter().enumerate() {
                    pending.insert(i, c);
                }
                continue;
            }
        }
        resolved.push(part);
    }
    let mut out = root.to_path_buf();
    out.extend(resolved);
    out
}

fn components(path: &Path) -> VecDeque<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_symlinks_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("usr/bin")).unwrap();
        std::os::unix::fs::symlink("usr/bin", root.join("bin")).unwrap();
        std::os::unix::fs::symlink("/etc/../../../outside", root.join("escape")).unwrap();
        std::os::unix::fs::symlink("../../usr", root.join("usr/bin/up")).unwrap();
        assert_eq!(
            resolve_in_root(root, "/bin/sh", true),
            root.join("usr/bin/sh")
        );
        assert_eq!(resolve_in_root(root, "escape", true), root.join("outside"));
        assert_eq!(
            resolve_in_root(root, "/bin/up/bin", true),
            root.join("usr/bin")
        );
        assert_eq!(resolve_in_root(root, "/bin", false), root.join("bin"));
        assert_eq!(resolve_in_root(root, "../../x", true), root.join("x"));
    }
}
