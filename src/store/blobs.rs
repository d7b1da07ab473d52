//! Blobs: written to `tmp/` while their sha256 is computed, fsynced, checked, then
//! renamed into `blobs/sha256/`.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;

use super::{IoContext, Result, Store, StoreError};
use sha2::{Digest as _, Sha256};

use crate::oci::{Digest, Sha256Writer};

/// Writes a blob. Nothing is visible in the store until [`BlobWriter::commit`].
pub struct BlobWriter {
    inner: Option<Sha256Writer<BufWriter<EarlyWriteback>>>,
    tmp: PathBuf,
    blob_dir: PathBuf,
}

impl BlobWriter {
    /// Makes the written bytes a blob: fsync, verify against `expected` if given, rename.
    /// Returns the digest and size.
    pub fn commit(mut self, expected: Option<&Digest>) -> Result<(Digest, u64)> {
        let writer = self.inner.take().expect("a blob writer commits once");
        let (digest, size, buffered) = writer.finish();
        let file = buffered
            .into_inner()
            .map_err(|e| StoreError::Io {
                path: self.tmp.clone(),
                source: e.into_error(),
            })?
            .file;
        file.sync_all().at(&self.tmp)?;
        drop(file);
        if let Some(expected) = expected {
            if *expected != digest {
                let _ = fs::remove_file(&self.tmp);
                return Err(StoreError::DigestMismatch {
                    expected: *expected,
                    actual: digest,
                });
            }
        }
        let target = self.blob_dir.join(digest.hex());
        if target.exists() {
            let _ = fs::remove_file(&self.tmp);
        } else {
            fs::rename(&self.tmp, &target).at(&target)?;
        }
        Ok((digest, size))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner
            .as_mut()
            .ok_or_else(|| io::Error::other("blob already committed"))?
            .write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.inner.as_mut() {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.inner.is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

impl Store {
    /// Starts writing a blob.
    pub fn blob_writer(&self) -> Result<BlobWriter> {
        let tmp = self.tmp_path("blob");
        let file = File::create(&tmp).at(&tmp)?;
        let file = EarlyWriteback {
            file,
            written: 0,
            started: 0,
        };
        Ok(BlobWriter {
            inner: Some(Sha256Writer::new(BufWriter::with_capacity(1 << 20, file))),
            tmp,
            blob_dir: self.layout_dir().join("blobs/sha256"),
        })
    }

    /// Stores a small blob (a manifest or config) and returns its digest.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<Digest> {
        let digest = Digest::of(bytes);
        if !self.has_blob(&digest) {
            let mut writer = self.blob_writer()?;
            writer.write_all(bytes).at(&writer.tmp.clone())?;
            writer.commit(Some(&digest))?;
        }
        Ok(digest)
    }

    /// Reads a whole blob and checks that it matches its digest.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.blob_path(digest);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::MissingBlob { digest: *digest })
            }
            Err(e) => return Err(StoreError::Io { path, source: e }),
        };
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(StoreError::DigestMismatch {
                expected: *digest,
                actual,
            });
        }
        Ok(bytes)
    }

    /// Opens a blob for streaming; it is checked against its digest as it is read.
    pub fn open_blob(&self, digest: &Digest) -> Result<BlobReader> {
        let path = self.blob_path(digest);
        let file = File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::MissingBlob { digest: *digest },
            _ => StoreError::Io { path, source: e },
        })?;
        Ok(BlobReader {
            file,
            hasher: Sha256::new(),
            digest: *digest,
            checked: false,
        })
    }

    /// Reads a blob to its end, checking it against its digest.
    pub fn verify_blob(&self, digest: &Digest) -> Result<u64> {
        let mut reader = self.open_blob(digest)?;
        let size = io::copy(&mut reader, &mut io::sink()).map_err(|e| reader.error(e))?;
        Ok(size)
    }

    /// Copies a blob from a reader, checking it against `expected`.
    pub fn copy_blob(&self, reader: &mut dyn Read, expected: &Digest) -> Result<u64> {
        if self.has_blob(expected) {
            return Ok(fs::metadata(self.blob_path(expected))
                .map(|m| m.len())
                .unwrap_or(0));
        }
        let mut writer = self.blob_writer()?;
        let tmp = writer.tmp.clone();
        io::copy(reader, &mut writer).at(&tmp)?;
        Ok(writer.commit(Some(expected))?.1)
    }
}

/// A blob being read out of the store. Every byte is hashed on the way, and the end of
/// the blob checks the whole against its digest: a read that reaches the end of a blob
/// changed on disk fails, naming the digest, so no blob leaves the store (in an archive,
/// a cache export, a snapshot) unverified.
pub struct BlobReader {
    file: File,
    hasher: Sha256,
    digest: Digest,
    checked: bool,
}

impl BlobReader {
    /// Reads what is left and checks the digest: for callers that may stop reading
    /// before the end (a decompressor, a bounded copy).
    pub fn finish(mut self) -> Result<()> {
        io::copy(&mut self, &mut io::sink()).map_err(|e| self.error(e))?;
        Ok(())
    }

    /// A read error as a store error: a digest mismatch as itself.
    fn error(&self, error: io::Error) -> StoreError {
        match error.get_ref().and_then(|e| e.downcast_ref::<StoreError>()) {
            Some(StoreError::DigestMismatch { expected, actual }) => StoreError::DigestMismatch {
                expected: *expected,
                actual: *actual,
            },
            _ => StoreError::Io {
                path: PathBuf::from(format!("blob {}", self.digest)),
                source: error,
            },
        }
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        if n > 0 {
            self.hasher.update(&buf[..n]);
        } else if !buf.is_empty() && !self.checked {
            self.checked = true;
            let actual = Digest::from_bytes(self.hasher.finalize_reset().into());
            if actual != self.digest {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    StoreError::DigestMismatch {
                        expected: self.digest,
                        actual,
                    },
                ));
            }
        }
        Ok(n)
    }
}

/// A file that asks the kernel to start writing back every few megabytes, so that the
/// fsync at commit finds little left to do: disk writes overlap with the work that
/// produces the blob instead of following it.
struct EarlyWriteback {
    file: File,
    written: u64,
    /// Start of the range not yet handed to writeback.
    started: u64,
}

const WRITEBACK_CHUNK: u64 = 8 << 20;

impl Write for EarlyWriteback {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.written - self.started >= WRITEBACK_CHUNK {
            use std::os::fd::AsRawFd;
            // SAFETY: the descriptor is open for the life of `self.file`; the call only
            // schedules writeback of a byte range and touches no memory of ours.
            unsafe {
                libc::sync_file_range(
                    self.file.as_raw_fd(),
                    self.started as libc::off64_t,
                    (self.written - self.started) as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
            self.started = self.written;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}
