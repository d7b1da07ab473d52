//! The OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/<hex>`) on disk,
//! read and written in one place: the store's own layout, build cache directories
//! (`--cache-to`/`--cache-from`) and layouts fetched from a registry all go through it,
//! and an archive (`save --format oci`) uses its names and bytes, so that every layout
//! lade writes looks the same to skopeo and umoci and every one it reads is checked the
//! same way.
//!
//! Files are written next to their place (or in a staging directory the caller names)
//! and renamed there after an fsync, so a crash leaves the old file or the new one.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::manifest::{ImageIndex, ImageManifest, ManifestError};
use super::Digest;

/// The file that marks a directory as an OCI image layout.
pub const OCI_LAYOUT_FILE: &str = "oci-layout";
/// What lade writes in it (the spec's only version).
pub const OCI_LAYOUT_CONTENT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
/// The layout's index: its tags.
pub const INDEX_FILE: &str = "index.json";

/// Where a blob lives in a layout, relative to its root (also a member name in an OCI
/// archive).
pub fn blob_name(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

/// Why a layout cannot be read or written. Each names the file.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: {source}", path.display())]
    Document {
        path: PathBuf,
        source: ManifestError,
    },
    #[error("{}: hashes to {actual}, not {expected}", path.display())]
    DigestMismatch {
        path: PathBuf,
        expected: Digest,
        actual: Digest,
    },
    #[error("{}: {size} bytes, more than the {limit} lade reads of such a document", path.display())]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
}

impl LayoutError {
    /// Whether the file was not there (a layout not written yet).
    pub fn is_not_found(&self) -> bool {
        matches!(self, LayoutError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> LayoutError + '_ {
    move |source| LayoutError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The most lade reads of a document it holds in memory (an index, a manifest, a
/// config): a hostile layout's multi-gigabyte "manifest" must not exhaust memory.
pub const DOCUMENT_LIMIT: u64 = 16 << 20;

/// An OCI image layout directory.
#[derive(Debug, Clone)]
pub struct Layout {
    dir: PathBuf,
    /// Where files are written before their rename (the layout itself by default; the
    /// store keeps its staging in its own `tmp/`, the one place garbage may be left).
    staging: Option<PathBuf>,
}

impl Layout {
    pub fn new(dir: impl Into<PathBuf>) -> Layout {
        Layout {
            dir: dir.into(),
            staging: None,
        }
    }

    /// Files are staged in `staging` (on the same file system) before their rename.
    pub fn with_staging(mut self, staging: impl Into<PathBuf>) -> Layout {
        self.staging = Some(staging.into());
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn index_path(&self) -> PathBuf {
        self.dir.join(INDEX_FILE)
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(blob_name(digest))
    }

    pub fn has_index(&self) -> bool {
        self.index_path().exists()
    }

    /// Reads `index.json`.
    pub fn read_index(&self) -> Result<ImageIndex, LayoutError> {
        let path = self.index_path();
        let bytes = read_bounded(&path)?;
        ImageIndex::from_slice(&bytes).map_err(|source| LayoutError::Document { path, source })
    }

    /// Reads a small blob (a manifest, a config) and checks it against its digest.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, LayoutError> {
        let path = self.blob_path(digest);
        let bytes = read_bounded(&path)?;
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(LayoutError::DigestMismatch {
                path,
                expected: *digest,
                actual,
            });
        }
        Ok(bytes)
    }

    /// Reads and parses the manifest `digest`, returning its bytes as well (they are
    /// what is pushed or stored, never the parsed value written again).
    pub fn read_manifest(&self, digest: &Digest) -> Result<(Vec<u8>, ImageManifest), LayoutError> {
        let bytes = self.read_blob(digest)?;
        let manifest =
            ImageManifest::from_slice(&bytes).map_err(|source| LayoutError::Document {
                path: self.blob_path(digest),
                source,
            })?;
        Ok((bytes, manifest))
    }

    /// Opens a blob for streaming (a layer); the reader checks nothing.
    pub fn open_blob(&self, digest: &Digest) -> Result<File, LayoutError> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(io_at(&path))
    }

    /// Creates the blobs directory (and the layout's).
    pub fn create_dirs(&self) -> Result<(), LayoutError> {
        let blobs = self.dir.join("blobs/sha256");
        fs::create_dir_all(&blobs).map_err(io_at(&blobs))
    }

    /// Writes a blob whose bytes are in memory; returns its digest.
    pub fn write_blob(&self, bytes: &[u8]) -> Result<Digest, LayoutError> {
        let digest = Digest::of(bytes);
        self.write_file(&self.blob_path(&digest), |f| f.write_all(bytes))?;
        Ok(digest)
    }

    /// Writes the blob `digest` from `fill` (a stream the caller verifies).
    pub fn write_blob_with(
        &self,
        digest: &Digest,
        fill: impl FnOnce(&mut File) -> io::Result<()>,
    ) -> Result<(), LayoutError> {
        self.write_file(&self.blob_path(digest), fill)
    }

    /// Writes `oci-layout` when it is missing (an existing one is left as it is).
    pub fn write_marker(&self) -> Result<(), LayoutError> {
        let path = self.dir.join(OCI_LAYOUT_FILE);
        if path.exists() {
            return Ok(());
        }
        self.write_file(&path, |f| f.write_all(OCI_LAYOUT_CONTENT))
    }

    /// Replaces `index.json` with `index` (canonical JSON), and writes `oci-layout` if it
    /// is missing. Blobs must be written first: the index is what makes them visible.
    pub fn write_index(&self, index: &ImageIndex) -> Result<(), LayoutError> {
        self.write_marker()?;
        let bytes = index.to_canonical_json();
        self.write_file(&self.index_path(), |f| f.write_all(&bytes))
    }

    /// Writes a file in staging, syncs it and renames it to `target`.
    fn write_file(
        &self,
        target: &Path,
        fill: impl FnOnce(&mut File) -> io::Result<()>,
    ) -> Result<(), LayoutError> {
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = match &self.staging {
            Some(staging) => staging.join(format!("{}-{name}.tmp", std::process::id())),
            None => self.dir.join(format!(".tmp-{}-{name}", std::process::id())),
        };
        let result = (|| {
            if let Some(staging) = &self.staging {
                fs::create_dir_all(staging)?;
            }
            let mut file = File::create(&tmp)?;
            fill(&mut file)?;
            file.sync_all()?;
            drop(file);
            fs::rename(&tmp, target)
        })();
        result.map_err(|source| {
            let _ = fs::remove_file(&tmp);
            LayoutError::Io {
                path: target.to_path_buf(),
                source,
            }
        })
    }
}

/// Reads a whole file, refusing one larger than [`DOCUMENT_LIMIT`].
fn read_bounded(path: &Path) -> Result<Vec<u8>, LayoutError> {
    let file = File::open(path).map_err(io_at(path))?;
    let size = file.metadata().map_err(io_at(path))?.len();
    if size > DOCUMENT_LIMIT {
        return Err(LayoutError::TooLarge {
            path: path.to_path_buf(),
            size,
            limit: DOCUMENT_LIMIT,
        });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    io::Read::read_to_end(&mut io::Read::take(file, DOCUMENT_LIMIT + 1), &mut bytes)
        .map_err(io_at(path))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::{media, Descriptor};

    #[test]
    fn a_layout_written_reads_back_and_checks_its_blobs() {
        let dir = std::env::temp_dir().join(format!("lade-layout-test-{}", std::process::id()));
        let layout = Layout::new(&dir);
        layout.create_dirs().unwrap();
        let config = layout.write_blob(b"{}").unwrap();
        let manifest = ImageManifest::new(Descriptor::new(media::OCI_CONFIG, config, 2), vec![]);
        let bytes = manifest.to_canonical_json();
        let digest = layout.write_blob(&bytes).unwrap();
        let mut entry = Descriptor::new(media::OCI_MANIFEST, digest, bytes.len() as u64);
        entry
            .annotations
            .insert(crate::oci::REF_NAME_ANNOTATION.into(), "t".into());
        layout.write_index(&ImageIndex::new(vec![entry])).unwrap();
        assert_eq!(
            fs::read(dir.join(OCI_LAYOUT_FILE)).unwrap(),
            OCI_LAYOUT_CONTENT
        );
        let index = layout.read_index().unwrap();
        let (read, parsed) = layout
            .read_manifest(&index.named("t").unwrap().digest)
            .unwrap();
        assert_eq!((read, parsed), (bytes, manifest));
        fs::write(layout.blob_path(&config), b"{ }").unwrap();
        assert!(matches!(
            layout.read_blob(&config),
            Err(LayoutError::DigestMismatch { .. })
        ));
        assert!(Layout::new(dir.join("none"))
            .read_index()
            .unwrap_err()
            .is_not_found());
        let _ = fs::remove_dir_all(&dir);
    }
}
