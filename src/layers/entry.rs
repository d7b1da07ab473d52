//! One entry of a layer, as the writer, the snapshot materializer, the walker and the
//! extractor all see it: its path, kind and metadata, the whiteout names, and the few
//! file-system calls that make an entry on disk (device nodes, times, extended
//! attributes).

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::sys::stat::{mknod, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;

use super::{LayerError, Result};

/// One entry of a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the layer root: no leading or trailing `/`, no `.` or `..`.
    pub path: Vec<u8>,
    pub kind: EntryKind,
    /// Permission bits, with setuid, setgid and sticky.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Seconds since the epoch.
    pub mtime: i64,
    /// Extended attributes (e.g. `security.capability`).
    pub xattrs: Vec<(String, Vec<u8>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Directory,
    File {
        size: u64,
    },
    Symlink {
        target: Vec<u8>,
    },
    /// A hard link to an earlier entry of the same layer.
    Hardlink {
        target: Vec<u8>,
    },
    CharDevice {
        major: u32,
        minor: u32,
    },
    BlockDevice {
        major: u32,
        minor: u32,
    },
    Fifo,
    /// `path` was deleted: `.wh.<name>` in the tar, a 0/0 character device on overlay.
    Whiteout,
    /// `path` is a directory that hides what lower layers had in it:
    /// `<path>/.wh..wh..opq` in the tar, the `trusted.overlay.opaque` attribute on overlay.
    Opaque,
}

pub(crate) const WHITEOUT_PREFIX: &[u8] = b".wh.";
pub(crate) const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
/// Overlay's mark of an opaque directory as root's overlay reads it.
const TRUSTED_OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// The same mark for an overlay mounted in a user namespace (`userxattr`): only root
/// of the initial namespace may write `trusted.*` attributes.
const USER_OPAQUE_XATTR: &str = "user.overlay.opaque";

/// The opaque mark this process's overlay mounts read: rootless lade's snapshots carry
/// the `user.` one (its stores never mix with root's).
pub(crate) fn overlay_opaque_xattr() -> &'static str {
    if crate::store::in_user_namespace() {
        USER_OPAQUE_XATTR
    } else {
        TRUSTED_OPAQUE_XATTR
    }
}

/// Whether `name` is an opaque mark of either kind.
pub(crate) fn is_opaque_xattr(name: &str) -> bool {
    name == TRUSTED_OPAQUE_XATTR || name == USER_OPAQUE_XATTR
}

impl Entry {
    /// An entry with the permission bits, owner and time of a file as `lstat` saw it.
    pub fn from_metadata(path: Vec<u8>, kind: EntryKind, meta: &std::fs::Metadata) -> Entry {
        use std::os::unix::fs::MetadataExt;
        Entry {
            path,
            kind,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            mtime: meta.mtime(),
            xattrs: Vec::new(),
        }
    }

    /// The entry's name in the tar stream; callers sort entries by it.
    pub fn tar_name(&self) -> Vec<u8> {
        match self.kind {
            EntryKind::Whiteout => {
                let (dir, name) = split_last(&self.path);
                let mut out = dir.to_vec();
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(WHITEOUT_PREFIX);
                out.extend_from_slice(name);
                out
            }
            EntryKind::Opaque => {
                let mut out = self.path.clone();
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(OPAQUE_MARKER);
                out
            }
            _ => self.path.clone(),
        }
    }

    pub(crate) fn display(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }
}

pub(crate) fn split_last(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[], path),
    }
}

pub(crate) fn make_node(path: &Path, kind: SFlag, major: u32, minor: u32) -> Result<()> {
    let dev = nix::sys::stat::makedev(u64::from(major), u64::from(minor));
    mknod(path, kind, Mode::from_bits_truncate(0o600), dev).map_err(|e| LayerError::Io {
        path: path.into(),
        source: e.into(),
    })
}

pub(crate) fn set_mtime(path: &Path, mtime: i64) -> Result<()> {
    let time = TimeSpec::new(mtime, 0);
    utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &time,
        &time,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|e| LayerError::Io {
        path: path.into(),
        source: e.into(),
    })
}

pub(crate) fn xattr_set(path: &Path, name: &str, value: &[u8]) -> Result<()> {
    let c_path =
        std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| LayerError::Malformed {
            entry: path.display().to_string(),
            reason: "a NUL byte in the path".into(),
        })?;
    let c_name = std::ffi::CString::new(name).map_err(|_| LayerError::Malformed {
        entry: path.display().to_string(),
        reason: format!("a NUL byte in the attribute name {name:?}"),
    })?;
    // SAFETY: both strings are NUL-terminated and outlive the call; the value pointer and
    // length describe a live slice.
    let rc = unsafe {
        libc::lsetxattr(
            c_path.as_ptr(),
            c_name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc != 0 {
        return Err(LayerError::Io {
            path: path.into(),
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}
