//! The deterministic layer writer: entries in the order given (callers sort them by tar
//! name), PAX headers where ustar is too small, numeric owners and no user or group
//! names, no atime or ctime, mtimes clamped to `SOURCE_DATE_EPOCH` when set. The same
//! entries always give the same bytes, hence the same digests.
//!
//! Optionally the same entries are written out as a snapshot directory in the same
//! pass, so a layer made from files never has to be unpacked again.

use std::ffi::OsStr;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use super::background::Background;
use super::compress::{Compression, Compressor};
use super::entry::{Entry, EntryKind};
use super::fingerprint::{fingerprint_with, KnownContents};
use super::materialize::Materializer;
use super::{IoContext, LayerError, Result};
use crate::oci::{Digest, Sha256Writer};
use crate::store::{BlobWriter, LayerInfo, Store};

/// File bytes are read in chunks of at most this size.
const CHUNK: usize = 1 << 20;

type TarSink = BufWriter<DiffHasher<Compressor<Background<BlobWriter>>>>;

/// The tar stream's digest, the layer's diff_id, taken as the stream is written; except
/// for an uncompressed layer, whose blob is the tar stream itself: the blob writer hashes
/// it anyway (on its own thread), so hashing it here too would only cost time.
enum DiffHasher<W> {
    Hashing(Sha256Writer<W>),
    Counting { inner: W, count: u64 },
}

impl<W> DiffHasher<W> {
    /// The digest (`None` where the blob's digest is the diff_id), the size, and the
    /// inner writer.
    fn finish(self) -> (Option<Digest>, u64, W) {
        match self {
            DiffHasher::Hashing(writer) => {
                let (digest, size, inner) = writer.finish();
                (Some(digest), size, inner)
            }
            DiffHasher::Counting { inner, count } => (None, count, inner),
        }
    }
}

impl<W: Write> Write for DiffHasher<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            DiffHasher::Hashing(writer) => writer.write(buf),
            DiffHasher::Counting { inner, count } => {
                let n = inner.write(buf)?;
                *count += n as u64;
                Ok(n)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            DiffHasher::Hashing(writer) => writer.flush(),
            DiffHasher::Counting { inner, .. } => inner.flush(),
        }
    }
}

/// Where a layer's snapshot is written.
#[derive(Debug, Clone, Copy)]
pub struct SnapshotTarget<'a> {
    /// An empty directory to fill with the layer's entries.
    pub dir: &'a Path,
    /// The snapshot of an earlier version of the same layer: a file found there with the
    /// same content, mode, owner and time is hard-linked rather than written again (both
    /// snapshots are read-only, so they may share it).
    pub reuse: Option<&'a Path>,
}

/// Writes one layer blob into the store (and optionally its snapshot directory).
pub struct LayerWriter {
    tar: tar::Builder<TarSink>,
    /// Fills the snapshot directory on a thread of its own, in entry order.
    snapshot: Option<Materializer>,
    snapshot_dir: Option<PathBuf>,
    /// With [`LayerWriter::remembering_contents`]: each file's content hash, taken from
    /// the bytes as they go into the layer.
    contents: Option<KnownContents>,
    compression: Compression,
    epoch: Option<i64>,
}

impl LayerWriter {
    /// `snapshot`: an empty directory to fill with the same entries, or `None`.
    pub fn new(
        store: &Store,
        compression: Compression,
        source_date_epoch: Option<i64>,
        snapshot: Option<SnapshotTarget<'_>>,
    ) -> Result<LayerWriter> {
        let blob = Background::start(store.blob_writer()?).at(store.root())?;
        let compressor = compression.writer(blob).at(store.root())?;
        let hashing = match compression {
            Compression::None => DiffHasher::Counting {
                inner: compressor,
                count: 0,
            },
            _ => DiffHasher::Hashing(Sha256Writer::new(compressor)),
        };
        let sink = BufWriter::with_capacity(1 << 20, hashing);
        let mut tar = tar::Builder::new(sink);
        tar.follow_symlinks(false);
        Ok(LayerWriter {
            tar,
            snapshot: snapshot.map(|target| {
                Materializer::start(
                    target.dir.to_path_buf(),
                    target.reuse.map(Path::to_path_buf),
                )
            }),
            snapshot_dir: snapshot.map(|target| target.dir.to_path_buf()),
            contents: None,
            compression,
            epoch: source_date_epoch,
        })
    }

    /// Hashes file contents on the way, so that a tree the entries were walked from can
    /// become the layer's snapshot without being read again: see
    /// [`LayerWriter::finish_with_walked_snapshot`].
    pub fn remembering_contents(mut self) -> LayerWriter {
        self.contents = Some(KnownContents::new());
        self
    }

    fn clamp(&self, mtime: i64) -> i64 {
        let mtime = mtime.max(0);
        match self.epoch {
            Some(epoch) => mtime.min(epoch),
            None => mtime,
        }
    }

    /// Adds an entry; `content` gives a file's bytes (exactly `size` of them).
    pub fn add(&mut self, entry: &Entry, content: Option<&mut dyn Read>) -> Result<()> {
        self.add_entry(entry, content, None)
    }

    /// Adds a file entry whose content's blake3 the caller already knows (a build-context
    /// file its stat cache hashed), so the snapshot's fingerprint takes it instead of
    /// hashing the bytes again. `still_holds`, asked once the bytes were read, says
    /// whether the source stayed unchanged meanwhile; if not, the snapshot's file is
    /// hashed as written.
    pub fn add_vouched(
        &mut self,
        entry: &Entry,
        content: &mut dyn Read,
        hash: blake3::Hash,
        still_holds: &mut dyn FnMut() -> bool,
    ) -> Result<()> {
        self.add_entry(entry, Some(content), Some((hash, still_holds)))
    }

    fn add_entry(
        &mut self,
        entry: &Entry,
        content: Option<&mut dyn Read>,
        vouched: Option<(blake3::Hash, &mut dyn FnMut() -> bool)>,
    ) -> Result<()> {
        validate_path(entry)?;
        let mtime = self.clamp(entry.mtime);
        let (header, pax) = header_for(entry, mtime)?;
        if !pax.is_empty() {
            self.tar
                .append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                .at("layer stream")?;
        }
        // The hash is of no use where the layer remembers contents: it hashes them anyway.
        let (given, still_holds) = match vouched {
            Some((hash, still_holds)) if self.contents.is_none() => (Some(hash), Some(still_holds)),
            _ => (None, None),
        };
        if let Some(snapshot) = &mut self.snapshot {
            snapshot.entry(entry, mtime, given)?;
        }
        match (&entry.kind, content) {
            (EntryKind::File { size }, Some(content)) => {
                self.add_content(entry, &header, *size, content, still_holds)?
            }
            (EntryKind::File { .. }, None) => {
                return Err(LayerError::Malformed {
                    entry: entry.display(),
                    reason: "a file entry needs its content".into(),
                })
            }
            _ => self.tar.append(&header, io::empty()).at("layer stream")?,
        }
        if let (Some(contents), EntryKind::Hardlink { target }) = (&mut self.contents, &entry.kind)
        {
            if let Some(known) = contents.get(target).copied() {
                contents.insert(entry.path.clone(), known);
            }
        }
        Ok(())
    }

    /// A file's header and bytes. The bytes are read in chunks of up to [`CHUNK`] into
    /// buffers of their own, which the tar stream takes a look at and the snapshot's
    /// writer then takes over: one read of each byte and no copy between the two.
    fn add_content(
        &mut self,
        entry: &Entry,
        header: &Header,
        size: u64,
        content: &mut dyn Read,
        still_holds: Option<&mut dyn FnMut() -> bool>,
    ) -> Result<()> {
        let sink = self.tar.get_mut();
        sink.write_all(header.as_bytes()).at("layer stream")?;
        let mut hasher = self.contents.as_ref().map(|_| blake3::Hasher::new());
        let mut left = size;
        while left > 0 {
            let want = left.min(CHUNK as u64);
            let mut chunk = Vec::with_capacity(want as usize);
            let got = (&mut *content)
                .take(want)
                .read_to_end(&mut chunk)
                .map_err(|source| LayerError::Io {
                    path: entry.display().into(),
                    source,
                })?;
            if got as u64 != want {
                return Err(LayerError::Io {
                    path: entry.display().into(),
                    source: io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "the file shrank while it was being copied ({} bytes missing)",
                            left - got as u64
                        ),
                    ),
                });
            }
            left -= want;
            if let Some(hasher) = &mut hasher {
                hasher.update(&chunk);
            }
            let sink = self.tar.get_mut();
            sink.write_all(&chunk).at("layer stream")?;
            if let Some(snapshot) = &mut self.snapshot {
                snapshot.data(chunk)?;
            }
        }
        let padding = (512 - size % 512) % 512;
        self.tar
            .get_mut()
            .write_all(&[0u8; 512][..padding as usize])
            .at("layer stream")?;
        if let Some(snapshot) = &mut self.snapshot {
            snapshot.end_of_file(still_holds.is_none_or(|still_holds| still_holds()))?;
        }
        if let (Some(contents), Some(hasher)) = (&mut self.contents, hasher) {
            contents.insert(entry.path.clone(), (size, hasher.finalize()));
        }
        Ok(())
    }

    /// Adds an entry found by [`super::dir_entries`], reading a file's content from
    /// where it was found.
    pub fn add_walked(&mut self, walked: &super::WalkedEntry) -> Result<()> {
        match &walked.source {
            Some(path) => {
                let mut file = std::fs::File::open(path).at(path)?;
                self.add(&walked.entry, Some(&mut file))
            }
            None => self.add(&walked.entry, None),
        }
    }

    /// Ends the tar stream and stores the blob. Returns the layer's description.
    pub fn finish(self) -> Result<LayerInfo> {
        Ok(self.finish_layer()?.0)
    }

    /// Ends the layer as [`LayerWriter::finish`] does, then makes the snapshot directory
    /// given to [`LayerWriter::new`] the layer's snapshot in the store, with the
    /// fingerprint gathered while it was written (or, where that could not be, found by
    /// walking it).
    pub fn finish_with_snapshot(self, store: &Store) -> Result<LayerInfo> {
        let Some(dir) = self.snapshot_dir.clone() else {
            return Err(LayerError::Malformed {
                entry: String::new(),
                reason: "the layer was written without a snapshot directory".into(),
            });
        };
        let (layer, print) = self.finish_layer()?;
        match print {
            Some(print) => store.commit_snapshot(&dir, &layer.diff_id, &print)?,
            None => super::commit_snapshot(store, &dir, &layer.diff_id)?,
        };
        Ok(layer)
    }

    /// Ends the layer as [`LayerWriter::finish`] does, then makes `dir`, the tree its
    /// entries were walked from, the layer's snapshot in the store. Its fingerprint is
    /// found by a walk that reads only metadata where the writer was
    /// [`LayerWriter::remembering_contents`].
    pub fn finish_with_walked_snapshot(mut self, store: &Store, dir: &Path) -> Result<LayerInfo> {
        let contents = self.contents.take().unwrap_or_default();
        let (layer, _) = self.finish_layer()?;
        let print = fingerprint_with(dir, &contents)?;
        store.commit_snapshot(dir, &layer.diff_id, &print)?;
        Ok(layer)
    }

    /// The layer, and the snapshot's fingerprint when the snapshot's writer could tell.
    pub(crate) fn finish_layer(mut self) -> Result<(LayerInfo, Option<String>)> {
        let print = match self.snapshot.take() {
            Some(snapshot) => snapshot.finish()?,
            None => None,
        };
        self.tar.finish().at("layer stream")?;
        let sink = self.tar.into_inner().at("layer stream")?;
        let hashing = sink.into_inner().map_err(|e| LayerError::Io {
            path: "layer stream".into(),
            source: e.into_error(),
        })?;
        let (diff_id, tar_size, compressor) = hashing.finish();
        let blob = compressor.finish().at("layer stream")?;
        let blob = blob.finish().at("layer blob")?;
        let (digest, size) = blob.commit(None)?;
        let diff_id = diff_id.unwrap_or(digest);
        let layer = LayerInfo {
            blob: digest,
            diff_id,
            media_type: self.compression.media_type().to_string(),
            size,
            tar_size,
        };
        Ok((layer, print))
    }
}

/// Writes the tree at `root` as a plain tar to `out` (`lade export`): the same headers
/// as a layer's, no compression, nothing stored.
pub fn write_tree_tar(root: &Path, out: &mut dyn io::Write) -> Result<()> {
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    for walked in super::walk::dir_entries(root, false)? {
        let entry = &walked.entry;
        validate_path(entry)?;
        let (header, pax) = header_for(entry, entry.mtime.max(0))?;
        if !pax.is_empty() {
            tar.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                .at("export stream")?;
        }
        match (&entry.kind, &walked.source) {
            (EntryKind::File { size }, Some(path)) => {
                let file = std::fs::File::open(path).at(path)?;
                let exact = ExactReader {
                    inner: file.take(*size),
                    left: *size,
                    entry: entry.display(),
                };
                tar.append(&header, exact).at("export stream")?;
            }
            _ => tar.append(&header, io::empty()).at("export stream")?,
        }
    }
    tar.finish().at("export stream")
}

/// Reads exactly `left` bytes: a file that shrank while it was being copied is an
/// error, not a corrupt tar.
struct ExactReader<R> {
    inner: R,
    left: u64,
    entry: String,
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.left > 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{} changed while it was being copied ({} bytes missing)",
                    self.entry, self.left
                ),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn validate_path(entry: &Entry) -> Result<()> {
    let bad = entry.path.is_empty() && !matches!(entry.kind, EntryKind::Opaque)
        || entry.path.starts_with(b"/")
        || entry.path.ends_with(b"/")
        || entry
            .path
            .split(|&b| b == b'/')
            .any(|c| c.is_empty() || c == b"." || c == b"..");
    if bad {
        return Err(LayerError::Malformed {
            entry: entry.display(),
            reason: "layer paths are relative, without empty, `.` or `..` components".into(),
        });
    }
    Ok(())
}

/// Largest value of an 8-byte octal ustar field (uid, gid).
const USTAR_ID_MAX: u32 = 0o7_777_777;

/// PAX records: key and value.
type PaxRecords = Vec<(String, Vec<u8>)>;

/// The ustar header of an entry and the PAX records it needs.
fn header_for(entry: &Entry, mtime: i64) -> Result<(Header, PaxRecords)> {
    let mut header = Header::new_ustar();
    let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
    let mut name = entry.tar_name();
    let (entry_type, size, link): (EntryType, u64, Option<&[u8]>) = match &entry.kind {
        EntryKind::Directory => {
            name.push(b'/');
            (EntryType::Directory, 0, None)
        }
        EntryKind::File { size } => (EntryType::Regular, *size, None),
        EntryKind::Symlink { target } => (EntryType::Symlink, 0, Some(target)),
        EntryKind::Hardlink { target } => (EntryType::Link, 0, Some(target)),
        EntryKind::CharDevice { major, minor } => {
            header.set_device_major(*major).at("layer stream")?;
            header.set_device_minor(*minor).at("layer stream")?;
            (EntryType::Char, 0, None)
        }
        EntryKind::BlockDevice { major, minor } => {
            header.set_device_major(*major).at("layer stream")?;
            header.set_device_minor(*minor).at("layer stream")?;
            (EntryType::Block, 0, None)
        }
        EntryKind::Fifo => (EntryType::Fifo, 0, None),
        EntryKind::Whiteout | EntryKind::Opaque => (EntryType::Regular, 0, None),
    };
    header.set_entry_type(entry_type);
    header.set_size(size);
    let (mode, uid, gid) = match entry.kind {
        EntryKind::Whiteout | EntryKind::Opaque => (0, 0, 0),
        _ => (entry.mode & 0o7777, entry.uid, entry.gid),
    };
    header.set_mode(mode);
    header.set_mtime(mtime as u64);
    if uid > USTAR_ID_MAX {
        pax.push(("uid".into(), uid.to_string().into_bytes()));
    }
    if gid > USTAR_ID_MAX {
        pax.push(("gid".into(), gid.to_string().into_bytes()));
    }
    header.set_uid(u64::from(uid.min(USTAR_ID_MAX)));
    header.set_gid(u64::from(gid.min(USTAR_ID_MAX)));
    if header
        .set_path(Path::new(OsStr::from_bytes(&name)))
        .is_err()
    {
        pax.push(("path".into(), name.clone()));
        header
            .set_path(Path::new(OsStr::from_bytes(&truncated(&name, 99))))
            .map_err(|e| LayerError::Malformed {
                entry: entry.display(),
                reason: e.to_string(),
            })?;
    }
    if let Some(link) = link {
        if link.len() > 100
            || header
                .set_link_name(Path::new(OsStr::from_bytes(link)))
                .is_err()
        {
            pax.push(("linkpath".into(), link.to_vec()));
            header.set_link_name("").ok();
        }
    }
    if !matches!(entry.kind, EntryKind::Whiteout | EntryKind::Opaque) {
        let mut xattrs: Vec<&(String, Vec<u8>)> = entry.xattrs.iter().collect();
        xattrs.sort();
        for (key, value) in xattrs {
            pax.push((format!("SCHILY.xattr.{key}"), value.clone()));
        }
    }
    header.set_cksum();
    Ok((header, pax))
}

/// The first `max` bytes of a path, cut at a `/` or character boundary: the ustar name
/// field of an entry whose real name is in a PAX record.
fn truncated(name: &[u8], max: usize) -> Vec<u8> {
    let mut end = name.len().min(max);
    while end > 0 && std::str::from_utf8(&name[..end]).is_err() {
        end -= 1;
    }
    let cut = &name[..end];
    cut.iter()
        .copied()
        .skip_while(|&b| b == b'/')
        .collect::<Vec<u8>>()
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".." && *c != b".")
        .collect::<Vec<_>>()
        .join(&b'/')
}
