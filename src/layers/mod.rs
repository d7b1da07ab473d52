//! Layers: deterministic tar writing, compression, safe extraction of untrusted
//! archives, whiteouts, and snapshots (layers unpacked once, read-only, used as overlay
//! lower directories).
//!
//! A layer lade makes is written in one pass: the tar stream is hashed (diff_id),
//! compressed and hashed again (blob digest) on its way into the store, while the same
//! files land in the layer's snapshot directory, so it never needs unpacking.

mod background;
mod compress;
mod entry;
mod extract;
mod fingerprint;
mod materialize;
mod root;
mod walk;
mod write;

use std::path::PathBuf;

pub use compress::{
    compression_of, decompressing_reader, is_tar_header, recompress, Compressed, Compression,
};
pub use entry::{Entry, EntryKind};
pub use extract::{check_room, extract, extract_in_root, ExtractLimits, ExtractStats};
pub use fingerprint::fingerprint;
pub use root::{open_in_root, InRoot, Owners};
pub use walk::{
    adopt_fuse_overlay_marks, copied_xattrs, dir_entries, has_only_copy_up_xattrs, WalkedEntry,
};
pub use write::{write_tree_tar, LayerWriter, SnapshotTarget};

use crate::oci::Digest;
use crate::store::{LayerInfo, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An archive entry that would escape the target or is otherwise unsafe.
    #[error("refusing archive entry {entry:?}: {reason}")]
    Unsafe { entry: String, reason: String },
    #[error("archive entry {entry:?}: {reason}")]
    Malformed { entry: String, reason: String },
    /// A file entry where the destination has a directory (extracting into a root,
    /// where replacing the directory would lose what it holds).
    #[error("cannot replace the directory {0} with a file")]
    DirectoryInTheWay(String),
    #[error(
        "layer {blob} does not match its diff_id: expected {expected}, it unpacks to {actual}"
    )]
    DiffIdMismatch {
        blob: Digest,
        expected: Digest,
        actual: Digest,
    },
    #[error("layer media type {0:?} is not one lade can read")]
    UnknownMediaType(String),
    /// Unpacking would leave the store's file system with less than its reserve free.
    #[error(
        "{entry:?}: writing it would leave less than the store's reserve of {} free on the file system of {} ({} available{}); free some space (lade rmi, lade cache prune) or lower the reserve with --storage-reserve",
        human_bytes(*reserve),
        path.display(),
        human_bytes(*available),
        if *needed > 0 { format!(", the entry needs {}", human_bytes(*needed)) } else { String::new() }
    )]
    NoSpace {
        entry: String,
        needed: u64,
        available: u64,
        reserve: u64,
        path: PathBuf,
    },
}

pub type Result<T, E = LayerError> = std::result::Result<T, E>;

/// Bytes in binary units, for messages about space (`1.0 GiB`).
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

pub(crate) trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| LayerError::Io {
            path: path.into(),
            source,
        })
    }
}

/// Makes a fully written staging directory the snapshot of `diff_id`, recording its
/// fingerprint so that `lade system check` can tell later whether it still holds what
/// it was made with.
pub fn commit_snapshot(store: &Store, dir: &std::path::Path, diff_id: &Digest) -> Result<PathBuf> {
    let print = fingerprint(dir)?;
    Ok(store.commit_snapshot(dir, diff_id, &print)?)
}

/// The snapshots of `layers` (bottom first, as in a manifest) as an overlay stacks
/// them: names under the store's snapshot directory, top first, each layer unpacked
/// if it is not yet. A build's RUN steps, its views and containers all mount these.
///
/// A layer an image holds twice (Docker writes such images, and `docker save` links the
/// second copy to the first) is stacked once, at its topmost place: overlay refuses the
/// same lower directory twice (ELOOP), and since that copy is applied last, whatever
/// the lower copy did below it is overridden anyway.
pub fn overlay_lowers(store: &Store, layers: &[LayerInfo]) -> Result<Vec<String>> {
    let mut lowers = Vec::with_capacity(layers.len());
    let mut stacked = std::collections::HashSet::new();
    for layer in layers.iter().rev() {
        if !stacked.insert(layer.diff_id) {
            continue;
        }
        ensure_snapshot(store, layer)?;
        lowers.push(crate::store::snapshot_name(&layer.diff_id));
    }
    Ok(lowers)
}

/// Unpacks a layer blob into its snapshot directory, once: the snapshot is shared by
/// every image and container that uses the layer. The unpacked tar must hash to the
/// layer's diff_id, or nothing is kept.
pub fn ensure_snapshot(store: &Store, layer: &LayerInfo) -> Result<PathBuf> {
    ensure_snapshot_telling(store, layer).map(|(dir, _)| dir)
}

/// [`ensure_snapshot`], with what the unpacking left out when it unpacked now (device
/// nodes, for rootless lade): `None` when the snapshot was there already.
pub fn ensure_snapshot_telling(
    store: &Store,
    layer: &LayerInfo,
) -> Result<(PathBuf, Option<ExtractStats>)> {
    let dir = store.snapshot_dir(&layer.diff_id);
    if dir.is_dir() {
        return Ok((dir, None));
    }
    let _guard = store.content_guard()?;
    let mut blob = store.open_blob(&layer.blob)?;
    let compression = Compression::from_media_type(&layer.media_type)
        .ok_or_else(|| LayerError::UnknownMediaType(layer.media_type.clone()))?;
    let reader = compression
        .reader(std::io::BufReader::with_capacity(1 << 20, &mut blob))
        .at(store.blob_path(&layer.blob))?;
    let staging = store.staging_dir("snapshot")?;
    let mut hashing = crate::oci::Sha256Writer::new(std::io::sink());
    let mut tee = TeeReader {
        inner: reader,
        copy: &mut hashing,
    };
    let stats = extract(&mut tee, staging.path(), &ExtractLimits::for_store(store))?;
    // The diff_id covers the whole stream, padding after the end-of-archive included.
    std::io::copy(&mut tee, &mut std::io::sink()).at(layer.blob.to_string())?;
    drop(tee);
    blob.finish()?;
    let (actual, _, _) = hashing.finish();
    if actual != layer.diff_id {
        return Err(LayerError::DiffIdMismatch {
            blob: layer.blob,
            expected: layer.diff_id,
            actual,
        });
    }
    let snapshot = commit_snapshot(store, staging.path(), &layer.diff_id)?;
    staging.keep();
    Ok((snapshot, Some(stats)))
}

/// What went wrong reading a tar header, in words. The tar crate quotes the header's raw
/// bytes in its messages (`numeric field did not have utf-8 text: <bytes> when getting
/// cksum for <bytes>`): for a file that is not a tar at all, that is only noise.
pub(crate) fn tar_error_text(error: &std::io::Error) -> String {
    let text = error.to_string();
    const NOT_TAR: &str = "not a tar archive, or a damaged one";
    if text.contains("archive header checksum mismatch") {
        return format!("{NOT_TAR}: a header's checksum does not match");
    }
    if text.starts_with("numeric field") {
        if let Some(field) = text
            .rsplit_once(" when getting ")
            .and_then(|(_, rest)| rest.split(' ').next())
        {
            return format!("{NOT_TAR}: a header's {field} field is not a number");
        }
    }
    text
}

/// Passes reads through while copying every byte read to `copy`.
pub(crate) struct TeeReader<'a, R> {
    pub(crate) inner: R,
    pub(crate) copy: &'a mut dyn std::io::Write,
}

impl<R: std::io::Read> std::io::Read for TeeReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
