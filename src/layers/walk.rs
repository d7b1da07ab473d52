//! A directory tree as layer entries, sorted by tar name: the upper directory of a RUN
//! step (overlay's whiteouts and opaque directories become `.wh.` entries), or an
//! unpacked root filesystem.

use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::entry::{is_opaque_xattr, overlay_opaque_xattr, Entry, EntryKind};
use super::{IoContext, Result};

/// An entry, and for a regular file the path its bytes come from.
#[derive(Debug, Clone)]
pub struct WalkedEntry {
    pub entry: Entry,
    pub source: Option<PathBuf>,
}

/// All entries under `root` (not `root` itself), sorted by tar name. With `overlay`,
/// 0/0 character devices are whiteouts and directories marked opaque get an opaque
/// entry. Sockets are left out: a tar cannot hold them.
pub fn dir_entries(root: &Path, overlay: bool) -> Result<Vec<WalkedEntry>> {
    let mut entries = Vec::new();
    for item in walkdir::WalkDir::new(root).follow_links(false).min_depth(1) {
        let item = item.map_err(|e| super::LayerError::Io {
            path: e
                .path()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| root.to_path_buf()),
            source: e.into(),
        })?;
        let path = item.path();
        let relative = path
            .strip_prefix(root)
            .expect("walkdir yields paths under its root")
            .as_os_str()
            .as_bytes()
            .to_vec();
        let meta = fs::symlink_metadata(path).at(path)?;
        let file_type = meta.file_type();
        let mut entry = Entry::from_metadata(relative, EntryKind::Directory, &meta);
        let mut source = None;
        if file_type.is_dir() {
            entry.xattrs = xattrs(path)?;
            let opaque = overlay
                && entry
                    .xattrs
                    .iter()
                    // Only the mark this overlay reads: a step could set the other
                    // kind itself, and its layer would hide what the step saw.
                    .any(|(k, v)| k == overlay_opaque_xattr() && v == b"y");
            entry.xattrs.retain(|(k, _)| !is_internal_xattr(k));
            if opaque {
                entries.push(WalkedEntry {
                    entry: Entry {
                        kind: EntryKind::Opaque,
                        ..entry.clone()
                    },
                    source: None,
                });
            }
        } else if file_type.is_file() {
            entry.kind = EntryKind::File { size: meta.len() };
            entry.xattrs = xattrs(path)?;
            entry.xattrs.retain(|(k, _)| !is_internal_xattr(k));
            source = Some(path.to_path_buf());
        } else if file_type.is_symlink() {
            let target = fs::read_link(path).at(path)?;
            entry.kind = EntryKind::Symlink {
                target: target.as_os_str().as_bytes().to_vec(),
            };
        } else if file_type.is_char_device() {
            let (major, minor) = device_numbers(meta.rdev());
            entry.kind = if overlay && major == 0 && minor == 0 {
                EntryKind::Whiteout
            } else {
                EntryKind::CharDevice { major, minor }
            };
        } else if file_type.is_block_device() {
            let (major, minor) = device_numbers(meta.rdev());
            entry.kind = EntryKind::BlockDevice { major, minor };
        } else if file_type.is_fifo() {
            entry.kind = EntryKind::Fifo;
        } else {
            continue;
        }
        entries.push(WalkedEntry { entry, source });
    }
    entries.sort_by_cached_key(|e| e.entry.tar_name());

    // Files with several links: the first (in tar order) carries the data, the others
    // link to it.
    let mut first_paths: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
    for walked in &mut entries {
        let (EntryKind::File { .. }, Some(source)) = (&walked.entry.kind, &walked.source) else {
            continue;
        };
        let meta = fs::symlink_metadata(source).at(source)?;
        if meta.nlink() < 2 {
            continue;
        }
        match first_paths.get(&(meta.dev(), meta.ino())) {
            Some(first) => {
                walked.entry.kind = EntryKind::Hardlink {
                    target: first.clone(),
                };
                walked.entry.xattrs.clear();
                walked.source = None;
            }
            None => {
                first_paths.insert((meta.dev(), meta.ino()), walked.entry.path.clone());
            }
        }
    }
    Ok(entries)
}

fn device_numbers(rdev: u64) -> (u32, u32) {
    (
        nix::sys::stat::major(rdev) as u32,
        nix::sys::stat::minor(rdev) as u32,
    )
}

/// Whether an overlay upper directory's extended attributes are overlay's bookkeeping
/// alone (those of a copy-up), so removing the directory from the upper leaves the lower
/// one as it was. An opaque directory, or one given attributes of its own, is not.
pub fn has_only_copy_up_xattrs(path: &Path) -> bool {
    xattrs(path).is_ok_and(|found| {
        found
            .iter()
            .all(|(name, _)| !is_opaque_xattr(name) && is_internal_xattr(name))
    })
}

/// Attributes that describe the storage, not the file: overlay's own and SELinux labels.
fn is_internal_xattr(name: &str) -> bool {
    name.starts_with("trusted.overlay.")
        || name.starts_with("user.overlay.")
        || name.starts_with("user.fuseoverlayfs.")
        || name == "security.selinux"
}

/// fuse-overlayfs's marks of an opaque directory in its upper directory, beside overlay's
/// attribute: a `.wh..wh..opq` file, a `.wh..opq` 0/0 device and this attribute.
const FUSE_OPAQUE_XATTR: &str = "user.fuseoverlayfs.opaque";
const FUSE_OPAQUE_NODE: &str = ".wh..opq";

/// Turns what fuse-overlayfs wrote in the upper directory `root` into the kernel
/// overlay's form, which the rest of lade reads (and either driver mounts): an opaque
/// directory gets overlay's attribute in place of fuse-overlayfs's marks, and a
/// `.wh.NAME` file (its whiteout where it cannot make a 0/0 device) becomes one. A
/// whiteout the kernel does not let this user make stays as it is, which a layer's tar
/// says the same way. fuse-overlayfs reads both forms, so this may run under a live
/// mount.
pub fn adopt_fuse_overlay_marks(root: &Path) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let marker = std::ffi::OsStr::from_bytes(super::entry::OPAQUE_MARKER);
    for item in walkdir::WalkDir::new(root).follow_links(false) {
        let item = item.map_err(|e| super::LayerError::Io {
            path: e
                .path()
                .map_or_else(|| root.to_path_buf(), Path::to_path_buf),
            source: e.into(),
        })?;
        if !item.file_type().is_dir() {
            continue;
        }
        let dir = item.path();
        let attributes = xattrs(dir)?;
        let marked = attributes.iter().any(|(name, _)| name == FUSE_OPAQUE_XATTR);
        let marker_file = dir.join(marker);
        let node = dir.join(FUSE_OPAQUE_NODE);
        if marked || marker_file.symlink_metadata().is_ok_and(|m| m.is_file()) {
            super::entry::xattr_set(dir, overlay_opaque_xattr(), b"y")?;
            for path in [&marker_file, &node] {
                match fs::remove_file(path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(super::LayerError::Io {
                            path: path.clone(),
                            source: e,
                        })
                    }
                    _ => {}
                }
            }
            if marked {
                xattr_remove(dir, FUSE_OPAQUE_XATTR)?;
            }
        }
        for entry in fs::read_dir(dir).at(dir)? {
            let entry = entry.at(dir)?;
            let name = entry.file_name();
            let Some(hidden) = name.as_bytes().strip_prefix(super::entry::WHITEOUT_PREFIX) else {
                continue;
            };
            if hidden.is_empty() || hidden.starts_with(super::entry::WHITEOUT_PREFIX) {
                continue;
            }
            if !entry.file_type().at(entry.path())?.is_file() {
                continue;
            }
            let whiteout = dir.join(std::ffi::OsStr::from_bytes(hidden));
            if whiteout.symlink_metadata().is_ok() {
                continue;
            }
            if super::entry::make_node(&whiteout, nix::sys::stat::SFlag::S_IFCHR, 0, 0).is_ok() {
                fs::remove_file(entry.path()).at(entry.path())?;
            }
        }
    }
    Ok(())
}

fn xattr_remove(path: &Path, name: &str) -> Result<()> {
    let c_path =
        CString::new(path.as_os_str().as_bytes()).map_err(|_| super::LayerError::Malformed {
            entry: path.display().to_string(),
            reason: "a NUL byte in the path".into(),
        })?;
    let c_name = CString::new(name).expect("attribute names are constants");
    // SAFETY: both strings are NUL-terminated and outlive the call.
    let rc = unsafe { libc::lremovexattr(c_path.as_ptr(), c_name.as_ptr()) };
    if rc != 0 {
        let error = std::io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::ENODATA) {
            return Err(super::LayerError::Io {
                path: path.into(),
                source: error,
            });
        }
    }
    Ok(())
}

/// Whether COPY carries an extended attribute into the image: what podman keeps (the
/// user namespace and file capabilities). Others describe the host (SELinux labels,
/// ACLs naming host users, overlay's own) or need privileges the image cannot assume.
pub(crate) fn is_copied_xattr(name: &str) -> bool {
    name.starts_with("user.") && !name.starts_with("user.overlay.") || name == "security.capability"
}

/// The extended attributes COPY carries of the file at `path` (see
/// [`is_copied_xattr`]), sorted by name.
pub fn copied_xattrs(path: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let mut found = xattrs(path)?;
    found.retain(|(name, _)| is_copied_xattr(name));
    Ok(found)
}

/// The extended attributes of a file (not following symlinks).
pub(crate) fn xattrs(path: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let c_path =
        CString::new(path.as_os_str().as_bytes()).map_err(|_| super::LayerError::Malformed {
            entry: path.display().to_string(),
            reason: "a NUL byte in the path".into(),
        })?;
    let mut names = vec![0u8; 1024];
    let len = loop {
        // SAFETY: the path is NUL-terminated; the buffer pointer and length describe a live
        // allocation the kernel may fill.
        let n =
            unsafe { libc::llistxattr(c_path.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
        if n >= 0 {
            break n as usize;
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::ERANGE) => names.resize(names.len() * 4, 0),
            Some(libc::ENOTSUP) => return Ok(Vec::new()),
            _ => return Err(err).at(path),
        }
    };
    let mut out = Vec::new();
    for name in names[..len].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let Ok(c_name) = CString::new(name) else {
            continue;
        };
        let mut value = vec![0u8; 256];
        let size = loop {
            // SAFETY: as above; the name is NUL-terminated.
            let n = unsafe {
                libc::lgetxattr(
                    c_path.as_ptr(),
                    c_name.as_ptr(),
                    value.as_mut_ptr().cast(),
                    value.len(),
                )
            };
            if n >= 0 {
                break n as usize;
            }
            let err = std::io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::ERANGE) => value.resize(value.len() * 4, 0),
                Some(libc::ENODATA) => break usize::MAX,
                _ => return Err(err).at(path),
            }
        };
        if size == usize::MAX {
            continue;
        }
        value.truncate(size);
        out.push((
            OsStr::from_bytes(name).to_string_lossy().into_owned(),
            value,
        ));
    }
    out.sort();
    Ok(out)
}
