//! `lade pull`: an image from a registry into the store. The manifest (through an
//! index, for this platform), then the config, then the layers a few at a time, each
//! checked against its digest and its diff id while it streams; the image is committed
//! and tagged only once every layer is in the store.

use std::io::{self, Read, Write};
use std::sync::Mutex;

use super::client::{Client, ClientOptions};
use super::{json_error, repository_name, Result};
use crate::oci::{
    media, Descriptor, Digest, ImageConfig, ImageIndex, ImageManifest, ImageRef, Kind, Platform,
    Sha256Writer,
};
use crate::store::{Image, LayerInfo, NewImage, Store, StoreError};

/// The most lade takes of an image config, whatever its descriptor claims: it is held
/// in memory and stored whole.
const CONFIG_LIMIT: u64 = 16 << 20;

/// What `lade pull` asks for.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    pub platform: Option<Platform>,
    pub client: ClientOptions,
}

/// What a pull reports as it goes.
pub trait PullProgress: Sync {
    /// A layer's download starts (`size` from the manifest).
    fn start(&self, _digest: &Digest, _size: u64) {}
    /// So many more bytes of it came.
    fn advance(&self, _digest: &Digest, _bytes: u64) {}
    /// It is in the store: downloaded (`fetched`) or there already.
    fn layer(&self, digest: &Digest, size: u64, fetched: bool);
    /// The store lacks `image`, which is therefore pulled (Docker says so first).
    fn not_in_store(&self, _image: &str) {}
    /// Something the user should know of what was pulled (device nodes rootless lade
    /// left out).
    fn note(&self, _text: &str) {}
}

/// Tells a [`PullProgress`] of the bytes read through it.
struct Counted<'a, R> {
    inner: R,
    digest: &'a Digest,
    progress: &'a dyn PullProgress,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(self.digest, n as u64);
        Ok(n)
    }
}

impl PullProgress for () {
    fn layer(&self, _: &Digest, _: u64, _: bool) {}
}

/// Pulls `reference` into the store and tags it; returns the image.
pub fn pull(
    store: &Store,
    reference: &ImageRef,
    options: &PullOptions,
    progress: &dyn PullProgress,
) -> Result<Image> {
    let image_name = reference.familiar();
    let client = Client::for_pull(reference, &options.client)?;
    let repository = reference.repository();
    let (mut bytes, mut media_type, mut digest) = client.named_manifest(reference)?;
    // What the tag points at (an index, for a multi-platform image): its repo digest.
    let repo_digest = digest;
    // An index (a multi-platform image): the manifest for this platform. The body, not
    // the Content-Type, decides, as registries are not all careful with the latter.
    if Kind::of(&bytes) == Some(Kind::Index) {
        let index =
            ImageIndex::from_slice(&bytes).map_err(|e| json_error(&image_name, "its index", e))?;
        let platform = options.platform.clone().unwrap_or_else(Platform::host);
        let chosen = index
            .for_platform(&platform, true)
            .map(|m| m.digest.to_string())
            .ok_or_else(|| {
                json_error(
                    &image_name,
                    "its index",
                    format!("has no manifest for {platform}"),
                )
            })?;
        (bytes, media_type, digest) = client.manifest(repository, &chosen)?;
        if digest.to_string() != chosen {
            return Err(json_error(
                &image_name,
                "a manifest",
                format!("has digest {digest}, not {chosen}"),
            ));
        }
    }
    let _ = (media_type, digest);
    let manifest = ImageManifest::from_slice(&bytes)
        .map_err(|e| json_error(&image_name, "its manifest", e))?;
    let config_bytes = fetch_config(
        store,
        &client,
        repository,
        &manifest.config.digest,
        manifest.config.size,
    )?;
    let config: ImageConfig = serde_json::from_slice(&config_bytes)
        .map_err(|e| json_error(&image_name, "its config", e))?;
    let layer_descriptors: &[Descriptor] = &manifest.layers;
    if layer_descriptors.len() != config.rootfs.diff_ids.len() {
        return Err(json_error(
            &image_name,
            "its config",
            format!(
                "lists {} layers, the manifest {}",
                config.rootfs.diff_ids.len(),
                layer_descriptors.len()
            ),
        ));
    }
    // A few layers at a time.
    let jobs: Vec<(usize, &Descriptor, &Digest)> = layer_descriptors
        .iter()
        .zip(&config.rootfs.diff_ids)
        .enumerate()
        .map(|(i, (d, diff))| (i, d, diff))
        .collect();
    let results: Mutex<Vec<Option<Result<LayerInfo>>>> =
        Mutex::new((0..jobs.len()).map(|_| None).collect());
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..3.min(jobs.len()) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some((index, layer, diff_id)) = jobs.get(i) else {
                    break;
                };
                let result = fetch_layer(
                    store,
                    &client,
                    repository,
                    &layer.digest,
                    layer.size,
                    &layer.media_type,
                    diff_id,
                    progress,
                );
                results.lock().unwrap_or_else(|e| e.into_inner())[*index] = Some(result);
            });
        }
    });
    let layers: Vec<LayerInfo> = results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(json_error(&image_name, "a layer", "was not fetched"))))
        .collect::<Result<_>>()?;
    let image = store.commit_image(
        &NewImage {
            config,
            config_bytes: Some(config_bytes),
            layers,
        },
        &[],
    )?;
    // The tag keeps what it named for other platforms (see `Store::tag_for_platform`).
    let image = if reference.digest().is_none() {
        store.tag_for_platform(reference, &image)?;
        store.image_by_manifest(&image.manifest_digest)?
    } else {
        image
    };
    store.record_repo_digest(
        &image.manifest_digest,
        &repository_name(reference),
        &repo_digest,
    )?;
    crate::store::events::image_event(store, "pull", &image_name, &image_name);
    Ok(image)
}

/// A config: from the store when it has it, else fetched (no more than `size`, its
/// descriptor's) and checked.
fn fetch_config(
    store: &Store,
    client: &Client,
    repository: &str,
    digest: &Digest,
    size: u64,
) -> Result<Vec<u8>> {
    if store.has_blob(digest) {
        return Ok(store.read_blob(digest)?);
    }
    if size > CONFIG_LIMIT {
        return Err(client.error(format!(
            "blob {digest}: its descriptor gives {size} bytes, more than the {CONFIG_LIMIT} lade takes of an image config"
        )));
    }
    let (_, bytes) = client.fetch_small(
        &client.blob_url(repository, digest),
        None,
        size,
        &format!("fetching blob {digest}"),
    )?;
    if Digest::of(&bytes) != *digest {
        return Err(client.error(format!(
            "blob {digest}: what came has digest {}",
            Digest::of(&bytes)
        )));
    }
    store.put_blob(&bytes)?;
    Ok(bytes)
}

/// Copies what is read into `copy` as well.
struct Tee<'a, R> {
    inner: R,
    copy: &'a mut dyn Write,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// The uncompressed digest and size of a layer's bytes (its media type says how they
/// are compressed).
fn unpacked_digest(reader: &mut dyn Read, media_type: &str) -> io::Result<(Digest, u64)> {
    let mut sink = Sha256Writer::new(io::sink());
    if media_type.contains("zstd") {
        let mut decoder = zstd::stream::read::Decoder::new(&mut *reader)?;
        io::copy(&mut decoder, &mut sink)?;
    } else if media_type.contains("gzip") || media_type.ends_with("diff.tar.gzip") {
        let mut decoder = flate2::read::MultiGzDecoder::new(&mut *reader);
        io::copy(&mut decoder, &mut sink)?;
    } else {
        io::copy(reader, &mut sink)?;
    }
    // What the decoder left (a gzip trailer's padding) still counts for the digest.
    io::copy(reader, &mut io::sink())?;
    let (digest, size, _) = sink.finish();
    Ok((digest, size))
}

/// Docker's layer media types as their OCI twins (the same bytes).
fn oci_media_type(media_type: &str) -> String {
    match media_type {
        media::DOCKER_LAYER_GZIP => media::OCI_LAYER_GZIP.to_string(),
        media::DOCKER_LAYER_TAR => media::OCI_LAYER_TAR.to_string(),
        "" => media::OCI_LAYER_GZIP.to_string(),
        other => other.to_string(),
    }
}

#[allow(clippy::too_many_arguments)]
fn fetch_layer(
    store: &Store,
    client: &Client,
    repository: &str,
    digest: &Digest,
    size: u64,
    media_type: &str,
    diff_id: &Digest,
    progress: &dyn PullProgress,
) -> Result<LayerInfo> {
    let check = |unpacked: Digest| {
        if unpacked != *diff_id {
            return Err(client.error(format!(
                "layer {digest} unpacks to {unpacked}, but the image config says {diff_id}"
            )));
        }
        Ok(())
    };
    let media_type = oci_media_type(media_type);
    if store.has_blob(digest) {
        let mut reader = store.open_blob(digest)?;
        let (unpacked, tar_size) = unpacked_digest(&mut reader, &media_type)
            .map_err(|e| client.error(format!("layer {digest}: {e}")))?;
        check(unpacked)?;
        progress.layer(digest, size, false);
        return Ok(LayerInfo {
            blob: *digest,
            diff_id: *diff_id,
            media_type,
            size,
            tar_size,
        });
    }
    let stage = format!("fetching layer {digest}");
    let body = client.open_blob(repository, digest, size, &stage)?;
    let mut blob = store.blob_writer()?;
    let (unpacked, tar_size) = {
        progress.start(digest, size);
        let body = Counted {
            inner: body,
            digest,
            progress,
        };
        let mut tee = Tee {
            inner: body,
            copy: &mut blob,
        };
        match unpacked_digest(&mut tee, &media_type) {
            Ok(unpacked) => unpacked,
            Err(e) => {
                return Err(match tee.inner.inner.failure.take() {
                    Some(failure) => failure,
                    None => client.body_error(e, &stage),
                })
            }
        }
    };
    check(unpacked)?;
    // Nothing is kept unless it hashes to the digest the manifest gave.
    let (_, stored) = blob.commit(Some(digest)).map_err(|e| match e {
        StoreError::DigestMismatch { actual, .. } => {
            client.error(format!("layer {digest}: what came has digest {actual}"))
        }
        other => other.into(),
    })?;
    progress.layer(digest, stored, true);
    Ok(LayerInfo {
        blob: *digest,
        diff_id: *diff_id,
        media_type,
        size: stored,
        tar_size,
    })
}
