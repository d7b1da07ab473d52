//! A snapshot's fingerprint: blake3 over everything a process in a container could see
//! of its files (paths, types, modes with setuid bits, owners, sizes, file times,
//! contents, link targets, device numbers, extended attributes). It is recorded when a
//! snapshot is made and checked by `lade system check`, so a file changed in a snapshot,
//! which would silently change every container and RUN step using it, is found.
//!
//! Directory times are left out: they are storage, not content (overlay and the
//! snapshot's own making touch them).

use std::collections::HashMap;
use std::fs::{self, File};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rayon::prelude::*;

use super::walk::xattrs;
use super::{IoContext, Result};

/// The fingerprint of the tree at `dir`, as 64 hex digits.
pub fn fingerprint(dir: &Path) -> Result<String> {
    fingerprint_with(dir, &KnownContents::default())
}

/// Content hashes of files whose bytes were hashed as they went by (into a layer made
/// from the tree), by path relative to the tree's root, with their size.
pub(crate) type KnownContents = HashMap<Vec<u8>, (u64, blake3::Hash)>;

/// [`fingerprint`], taking a file's content hash from `known` when its size there is
/// the size found: the walk then reads only metadata.
pub(crate) fn fingerprint_with(dir: &Path, known: &KnownContents) -> Result<String> {
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
        .map(|entry| entry_hash(dir, entry.path(), known))
        .collect::<Result<_>>()?;
    Ok(combine(hashes))
}

/// The per-entry hashes in walk order (the root, then each directory's entries sorted
/// by name, depth first) make the fingerprint.
fn combine(hashes: impl IntoIterator<Item = blake3::Hash>) -> String {
    let mut all = blake3::Hasher::new();
    all.update(b"lade snapshot fingerprint 1\0");
    for hash in hashes {
        all.update(hash.as_bytes());
    }
    all.finalize().to_hex().to_string()
}

fn entry_hash(root: &Path, path: &Path, known: &KnownContents) -> Result<blake3::Hash> {
    let meta = fs::symlink_metadata(path).at(path)?;
    let relative = path.strip_prefix(root).unwrap_or(path);
    let kind = meta.file_type();
    let known = known
        .get(relative.as_os_str().as_bytes())
        .filter(|(size, _)| kind.is_file() && *size == meta.size());
    let content = if let Some((_, hash)) = known {
        Some(*hash)
    } else if kind.is_file() {
        let mut content = blake3::Hasher::new();
        if meta.size() > 1 << 20 {
            content.update_mmap(path).at(path)?;
        } else {
            let file = File::open(path).at(path)?;
            content.update_reader(file).at(path)?;
        }
        Some(content.finalize())
    } else {
        None
    };
    let link = if kind.is_symlink() {
        Some(fs::read_link(path).at(path)?)
    } else {
        None
    };
    let found = Found {
        stat: Stat::of(&meta),
        content: content.as_ref(),
        link: link.as_deref().map(|l| l.as_os_str().as_bytes()),
        xattrs: &xattrs(path)?,
    };
    Ok(found.hash(relative.as_os_str().as_bytes()))
}

/// What the fingerprint covers of an entry's inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    /// Type and permission bits, as `st_mode`.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub mtime_nsec: i64,
    pub size: u64,
    pub rdev: u64,
}

impl Stat {
    pub(crate) fn of(meta: &fs::Metadata) -> Stat {
        Stat {
            mode: meta.mode(),
            uid: meta.uid(),
            gid: meta.gid(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
            size: meta.size(),
            rdev: meta.rdev(),
        }
    }

    fn kind(&self) -> u32 {
        self.mode & libc::S_IFMT
    }
}

/// What the fingerprint covers of one entry, as it is on disk.
pub(crate) struct Found<'a> {
    pub stat: Stat,
    /// A regular file's content hash.
    pub content: Option<&'a blake3::Hash>,
    /// A symlink's target.
    pub link: Option<&'a [u8]>,
    /// All extended attributes, sorted by name.
    pub xattrs: &'a [(String, Vec<u8>)],
}

impl Found<'_> {
    fn hash(&self, relative: &[u8]) -> blake3::Hash {
        let stat = &self.stat;
        let mut hasher = blake3::Hasher::new();
        hasher.update(relative);
        hasher.update(&[0]);
        for number in [stat.mode, stat.uid, stat.gid] {
            hasher.update(&number.to_le_bytes());
        }
        let kind = stat.kind();
        if kind != libc::S_IFDIR {
            hasher.update(&stat.mtime.to_le_bytes());
            hasher.update(&stat.mtime_nsec.to_le_bytes());
        }
        if kind == libc::S_IFREG {
            hasher.update(&stat.size.to_le_bytes());
            if let Some(content) = self.content {
                hasher.update(content.as_bytes());
            }
        } else if kind == libc::S_IFLNK {
            hasher.update(self.link.unwrap_or_default());
        } else if kind != libc::S_IFDIR {
            hasher.update(&stat.rdev.to_le_bytes());
        }
        for (name, value) in self.xattrs {
            hasher.update(name.as_bytes());
            hasher.update(&[0]);
            hasher.update(&(value.len() as u64).to_le_bytes());
            hasher.update(value);
        }
        hasher.finalize()
    }
}

/// A snapshot's fingerprint gathered while the snapshot is written, entry by entry,
/// from what each entry became on disk and the bytes that went into it: the same
/// value [`fingerprint`] finds by walking the finished tree, without reading it again.
#[derive(Default)]
pub(crate) struct Fingerprinter {
    /// Entry hashes by path relative to the root.
    hashes: HashMap<Vec<u8>, blake3::Hash>,
    /// The same path given twice: what is on disk is the last of them, so only a walk
    /// can tell.
    repeated: bool,
}

impl Fingerprinter {
    pub(crate) fn add(&mut self, relative: &[u8], found: &Found<'_>) {
        let hash = found.hash(relative);
        if self.hashes.insert(relative.to_vec(), hash).is_some() {
            self.repeated = true;
        }
    }

    /// The fingerprint of the tree at `root` made of the entries added (the root's own
    /// entry is read here). `None` when the entries cannot stand for the tree.
    pub(crate) fn finish(self, root: &Path) -> Result<Option<String>> {
        if self.repeated {
            return Ok(None);
        }
        let mut hashes: Vec<(Vec<&[u8]>, blake3::Hash)> = self
            .hashes
            .iter()
            .map(|(path, hash)| (path.split(|&b| b == b'/').collect(), *hash))
            .collect();
        // Component by component is walkdir's order: `a`, `a/b`, then `a-c`.
        hashes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let root_hash = entry_hash(root, root, &KnownContents::default())?;
        Ok(Some(combine(
            std::iter::once(root_hash).chain(hashes.into_iter().map(|(_, hash)| hash)),
        )))
    }
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
