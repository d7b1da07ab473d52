//! Paths inside a root filesystem, resolved as a process chrooted there would: symlinks
//! are followed (absolute ones from the root) and `..` stops at the root. Mount targets
//! inside a container go through this, so an image's symlinks cannot point a mount at
//! the host.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// Resolves `path` inside `root`. The last component is followed only with
/// `follow_last`. The result is always under `root`.
pub fn resolve_in_root(root: &Path, path: &str, follow_last: bool) -> PathBuf {
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
