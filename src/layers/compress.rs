//! Layer compression (zstd, multi-threaded, by default; gzip on request) and reading any
//! compressed tar: gzip, bzip2, xz, zstd or none, told apart by their magic bytes.

use std::io::{self, BufRead, BufReader, Read, Write};

use super::{IoContext, LayerError, Result};
use crate::oci::{media, Digest};
use crate::store::{LayerInfo, Store};

/// How layer blobs are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Zstd,
    Gzip,
    None,
}

/// zstd level: fast, and within a few percent of the default's ratio on typical layers.
const ZSTD_LEVEL: i32 = 3;

impl Compression {
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::Zstd => media::OCI_LAYER_ZSTD,
            Compression::Gzip => media::OCI_LAYER_GZIP,
            Compression::None => media::OCI_LAYER_TAR,
        }
    }

    pub fn from_media_type(media_type: &str) -> Option<Compression> {
        match media_type {
            media::OCI_LAYER_ZSTD => Some(Compression::Zstd),
            media::OCI_LAYER_GZIP | media::DOCKER_LAYER_GZIP => Some(Compression::Gzip),
            media::OCI_LAYER_TAR | media::DOCKER_LAYER_TAR => Some(Compression::None),
            _ => None,
        }
    }

    /// Wraps `inner` so that what is written is compressed.
    pub(crate) fn writer<W: Write + Send + 'static>(self, inner: W) -> io::Result<Compressor<W>> {
        Ok(match self {
            Compression::Zstd => {
                let mut encoder = zstd::stream::write::Encoder::new(inner, ZSTD_LEVEL)?;
                // Any worker count >= 1 gives the same bytes; 0 would differ. So the digest
                // never depends on the machine's core count.
                let workers = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
                encoder.multithread(workers.max(1))?;
                encoder.include_checksum(false)?;
                Compressor::Zstd(encoder)
            }
            Compression::Gzip => Compressor::Gzip(flate2::write::GzEncoder::new(
                inner,
                flate2::Compression::new(6),
            )),
            Compression::None => Compressor::None(inner),
        })
    }

    /// Reads what this compression wrote.
    pub fn reader<'a, R: Read + 'a>(self, inner: R) -> io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(inner)?),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(inner)),
            Compression::None => Box::new(inner),
        })
    }
}

/// A writer that compresses into `W`.
pub(crate) enum Compressor<W: Write> {
    Zstd(zstd::stream::write::Encoder<'static, W>),
    Gzip(flate2::write::GzEncoder<W>),
    None(W),
}

impl<W: Write> Compressor<W> {
    /// Ends the compressed stream and returns the inner writer.
    pub(crate) fn finish(self) -> io::Result<W> {
        match self {
            Compressor::Zstd(e) => e.finish(),
            Compressor::Gzip(e) => e.finish(),
            Compressor::None(w) => Ok(w),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::Zstd(e) => e.write(buf),
            Compressor::Gzip(e) => e.write(buf),
            Compressor::None(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::Zstd(e) => e.flush(),
            Compressor::Gzip(e) => e.flush(),
            Compressor::None(w) => w.flush(),
        }
    }
}

/// A stored layer again as a blob in the store (the same tar), compressed `to`: its
/// digest and size. The source blob is checked against its digest as it is read; the
/// same layer always gives the same bytes, so a second push of it finds the registry
/// has it.
pub fn recompress(store: &Store, layer: &LayerInfo, to: Compression) -> Result<(Digest, u64)> {
    let from = Compression::from_media_type(&layer.media_type)
        .ok_or_else(|| LayerError::UnknownMediaType(layer.media_type.clone()))?;
    let source = store.blob_path(&layer.blob);
    let mut blob = store.open_blob(&layer.blob)?;
    let mut compressor = to.writer(store.blob_writer()?).at(&source)?;
    {
        let mut tar = from
            .reader(BufReader::with_capacity(1 << 20, &mut blob))
            .at(&source)?;
        io::copy(&mut tar, &mut compressor).at(&source)?;
    }
    blob.finish()?;
    let writer = compressor.finish().at(&source)?;
    Ok(writer.commit(None)?)
}

/// A compression recognised by a stream's first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compressed {
    Gzip,
    Zstd,
    Bzip2,
    Xz,
}

/// The compression `head` (a stream's first bytes, six are enough) starts with, if any.
pub fn compression_of(head: &[u8]) -> Option<Compressed> {
    if head.starts_with(&[0x1f, 0x8b]) {
        Some(Compressed::Gzip)
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some(Compressed::Zstd)
    } else if head.starts_with(b"BZh") {
        Some(Compressed::Bzip2)
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Some(Compressed::Xz)
    } else {
        None
    }
}

/// Whether `block` (a tar's first 512 bytes) is a tar header: a ustar one, or an old
/// one whose checksum field holds the sum of its bytes (that field counted as spaces).
pub fn is_tar_header(block: &[u8]) -> bool {
    let Some(block) = block.get(..512) else {
        return false;
    };
    if &block[257..262] == b"ustar" {
        return true;
    }
    let stored = std::str::from_utf8(&block[148..156])
        .ok()
        .map(|s| s.trim_matches(|c: char| c == '\0' || c == ' '))
        .and_then(|s| u32::from_str_radix(s, 8).ok());
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum();
    block[0] != 0 && stored == Some(sum)
}

/// A reader of the tar inside `inner`, whatever its compression (gzip, bzip2, xz, zstd
/// or none), recognised by its first bytes.
pub fn decompressing_reader<'a, R: Read + 'a>(inner: R) -> io::Result<Box<dyn Read + 'a>> {
    let mut buffered = BufReader::with_capacity(1 << 20, inner);
    let head = buffered.fill_buf()?;
    Ok(match compression_of(head) {
        Some(Compressed::Gzip) => Box::new(flate2::read::MultiGzDecoder::new(buffered)),
        Some(Compressed::Zstd) => Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?),
        Some(Compressed::Bzip2) => Box::new(bzip2::read::MultiBzDecoder::new(buffered)),
        Some(Compressed::Xz) => Box::new(liblzma::read::XzDecoder::new_multi_decoder(buffered)),
        None => Box::new(buffered),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(compression: Compression) {
        let data: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let mut writer = compression.writer(Vec::new()).unwrap();
        writer.write_all(&data).unwrap();
        let compressed = writer.finish().unwrap();
        let mut back = Vec::new();
        decompressing_reader(compressed.as_slice())
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn zstd_gzip_and_none_round_trip_and_are_detected() {
        round_trip(Compression::Zstd);
        round_trip(Compression::Gzip);
        round_trip(Compression::None);
    }

    #[test]
    fn a_recompressed_layer_holds_the_same_tar_and_is_the_same_each_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let tar: Vec<u8> = (0..200_000u32).map(|i| (i % 97) as u8).collect();
        let stored = store.put_blob(&tar).unwrap();
        let layer = LayerInfo {
            blob: stored,
            diff_id: stored,
            media_type: media::OCI_LAYER_TAR.to_string(),
            size: tar.len() as u64,
            tar_size: tar.len() as u64,
        };
        for to in [Compression::Zstd, Compression::Gzip] {
            let (digest, size) = recompress(&store, &layer, to).unwrap();
            assert_eq!(recompress(&store, &layer, to).unwrap(), (digest, size));
            let compressed = store.read_blob(&digest).unwrap();
            assert_eq!(compressed.len() as u64, size);
            let mut back = Vec::new();
            to.reader(compressed.as_slice())
                .unwrap()
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, tar, "{to:?}");
            // And back from the compressed form: zstd to gzip, as `--compression gzip`.
            let again = LayerInfo {
                blob: digest,
                media_type: to.media_type().to_string(),
                size,
                ..layer.clone()
            };
            let (gzip, _) = recompress(&store, &again, Compression::Gzip).unwrap();
            let mut back = Vec::new();
            decompressing_reader(store.read_blob(&gzip).unwrap().as_slice())
                .unwrap()
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, tar);
        }
    }

    #[test]
    fn recompressing_a_layer_of_an_unknown_media_type_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let blob = store.put_blob(b"not a layer").unwrap();
        let layer = LayerInfo {
            blob,
            diff_id: blob,
            media_type: "application/x-unknown".to_string(),
            size: 11,
            tar_size: 11,
        };
        let error = recompress(&store, &layer, Compression::Gzip).unwrap_err();
        assert!(
            matches!(error, LayerError::UnknownMediaType(ref t) if t == "application/x-unknown"),
            "{error}"
        );
    }

    #[test]
    fn zstd_output_does_not_depend_on_worker_count() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 13) as u8).collect();
        let encode = |workers: u32| {
            let mut e = zstd::stream::write::Encoder::new(Vec::new(), ZSTD_LEVEL).unwrap();
            e.multithread(workers).unwrap();
            e.include_checksum(false).unwrap();
            e.write_all(&data).unwrap();
            e.finish().unwrap()
        };
        assert_eq!(encode(1), encode(4));
    }
}
