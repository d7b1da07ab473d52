//! A snapshot's fingerprint: blake3 over everything a process in a container could see
//! of its files (paths, types, modes with setuid bits, owners, sizes, file times,
//! contents, link targets, device numbers, extended attributes). It is recorded when a
//! snapshot is made and checked by `lade system check`, so a file changed in a snapshot,
//! which would silently change every container and RUN step using it, is found.
//!
//! Directory times are left out: they are storage, not content (overlay and the
//! snapshot's own making touch them).

use std::fs::{self, File};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rayon::prelude::*;

use super::walk::xattrs;
use super::{IoContext, Result};

/// The fingerprint of the tree at `dir`, as 64 hex digits.
pub fn fingerprint(dir: &Path) -> Result<String> {
    let entries: Vec<walkdir::DirEntry> = walkdir::WalkDir::new(dir)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| {
            let path = e.path().unwrap_or(dir).to_path_buf();
            super::LayerError::Io {
                path,
                source: e.into(),
            }
        })?;
    let hashes: Vec<blake3::Hash> = entries
        .par_iter()
        .map(|entry| entry_hash(dir, entry.path()))
        .collect::<Result<_>>()?;
    let mut all = blake3::Hasher::new();
    all.update(b"lade snapshot fingerprint 1\0");
    for hash in hashes {
        all.update(hash.as_bytes());
    }
    Ok(all.finalize().to_hex().to_string())
}

fn entry_hash(root: &Path, path: &Path) -> Result<blake3::Hash> {
    let meta = fs::symlink_metadata(path).at(path)?;
    let relative = path.strip_prefix(root).unwrap_or(path);
    let mut hasher = blake3::Hasher::new();
    hasher.update(relative.as_os_str().as_bytes());
    hasher.update(&[0]);
    for number in [meta.mode(), meta.uid(), meta.gid()] {
        hasher.update(&number.to_le_bytes());
    }
    let kind = meta.file_type();
    if !kind.is_dir() {
        hasher.update(&meta.mtime().to_le_bytes());
        hasher.update(&meta.mtime_nsec().to_le_bytes());
    }
    if kind.is_file() {
        hasher.update(&meta.size().to_le_bytes());
        let mut content = blake3::Hasher::new();
        if meta.size() > 1 << 20 {
            content.update_mmap(path).at(path)?;
        } else {
            let file = File::open(path).at(path)?;
            content.update_reader(file).at(path)?;
        }
        hasher.update(content.finalize().as_bytes());
    } else if kind.is_symlink() {
        hasher.update(fs::read_link(path).at(path)?.as_os_str().as_bytes());
    } else if !kind.is_dir() {
        hasher.update(&meta.rdev().to_le_bytes());
    }
    for (name, value) in xattrs(path)? {
        hasher.update(name.as_bytes());
        hasher.update(&[0]);
        hasher.update(&(value.len() as u64).to_le_bytes());
        hasher.update(&value);
    }
    Ok(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_change_a_container_could_see_changes_the_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir(root.join("bin")).unwrap();
        fs::write(root.join("bin/tool"), b"#!/bin/sh\n").unwrap();
        std::os::unix::fs::symlink("bin/tool", root.join("link")).unwrap();
        let first = fingerprint(root).unwrap();
        assert_eq!(first, fingerprint(root).unwrap(), "stable");

        fs::write(root.join("bin/tool"), b"#!/bin/sh\nx").unwrap();
        let changed = fingerprint(root).unwrap();
        assert_ne!(first, changed, "content");

        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(root.join("bin/tool"), fs::Permissions::from_mode(0o4755)).unwrap();
        let setuid = fingerprint(root).unwrap();
        assert_ne!(changed, setuid, "mode");

        fs::write(root.join("new"), b"").unwrap();
        assert_ne!(setuid, fingerprint(root).unwrap(), "an added file");
    }
}
