//! `lade push`: an image from the store to a registry. Blobs the registry lacks go up
//! (mounted from another repository of the same registry where one holds them, else
//! uploaded whole or in chunks), layers compressed on the way to what the push asks
//! (gzip unless told otherwise, as Docker, BuildKit and podman push), and the manifest
//! last.

use std::io::Read;

use super::client::{Client, ClientOptions};
use super::{repository_name, RegistryError, Result};
use crate::oci::{media, Descriptor, Digest, ImageManifest, ImageRef};
use crate::store::{LayerInfo, Store};

/// What `lade push` asks for.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    pub client: ClientOptions,
    pub compression: PushCompression,
    /// Layers already compressed otherwise are converted too (podman's
    /// `--force-compression`); without it only gzip converts them, since gzip is the one
    /// every client reads, and `zstd` leaves gzip layers as they are.
    pub force_compression: bool,
}

/// Pushes the store's image `source` as `destination`: blobs the registry lacks, then
/// the manifest, layers compressed with `recompress` where they must be. Returns the
/// manifest's digest. A multi-platform image goes as an index: each of its images the
/// store holds is pushed by digest first, then the index of them under the tag.
pub fn push(
    store: &Store,
    source: &str,
    destination: &ImageRef,
    options: &PushOptions,
    recompress: &Recompress,
    progress: &dyn Fn(&str),
) -> Result<Digest> {
    let client = Client::new(destination.registry(), &options.client)?;
    let repository = destination.repository();
    client.authenticate(repository, "pull,push")?;
    let tag = destination.tag().unwrap_or("latest");
    let digest = match store.image_index(source)? {
        Some((index_digest, index)) => {
            let mut entries = Vec::new();
            for entry in &index.manifests {
                // Entries the store lacks (the other platforms of an index pulled for
                // one) cannot go: the registry would refuse an index naming them.
                if !store.has_blob(&entry.digest) {
                    progress(&format!(
                        "{}: not in the store, left out of the index",
                        entry.digest.short()
                    ));
                    continue;
                }
                let image = store.image_by_manifest(&entry.digest)?;
                let (digest, size) = push_image(
                    store,
                    &client,
                    &image,
                    destination,
                    None,
                    options,
                    recompress,
                    progress,
                )?;
                let mut pushed = entry.clone();
                pushed.digest = digest;
                pushed.size = size;
                pushed.media_type = media::OCI_MANIFEST.to_string();
                entries.push(pushed);
            }
            let mut pushed_index = index.clone();
            pushed_index.manifests = entries;
            pushed_index.media_type = Some(media::OCI_INDEX.to_string());
            let bytes = pushed_index.to_canonical_json();
            put_manifest(&client, repository, tag, &bytes)?;
            let digest = Digest::of(&bytes);
            store.record_repo_digest(&index_digest, &repository_name(destination), &digest)?;
            digest
        }
        None => {
            let image = store.image(source)?;
            push_image(
                store,
                &client,
                &image,
                destination,
                Some(tag),
                options,
                recompress,
                progress,
            )?
            .0
        }
    };
    let name = destination.familiar();
    crate::store::events::image_event(store, "push", &name, &name);
    Ok(digest)
}

/// Pushes one image: blobs the registry lacks, then its manifest under `tag` (by its
/// digest without one). Returns the manifest's digest and size.
#[allow(clippy::too_many_arguments)]
fn push_image(
    store: &Store,
    client: &Client,
    image: &crate::store::Image,
    destination: &ImageRef,
    tag: Option<&str>,
    options: &PushOptions,
    recompress: &Recompress,
    progress: &dyn Fn(&str),
) -> Result<(Digest, u64)> {
    let repository = destination.repository();
    let converted: Vec<Option<PushCompression>> = image
        .layers
        .iter()
        .map(|layer| {
            push_compression(
                &layer.media_type,
                options.compression,
                options.force_compression,
            )
        })
        .collect();
    let (layers, manifest) = if converted.iter().any(Option::is_some) {
        let mut layers = Vec::new();
        for (layer, to) in image.layers.iter().zip(converted) {
            let Some(to) = to else {
                layers.push((layer.blob, layer.size, layer.media_type.clone()));
                continue;
            };
            progress(&format!(
                "{}: compressing with {}",
                layer.blob.short(),
                to.name()
            ));
            let (digest, size) =
                recompress(store, layer, to).map_err(|source| RegistryError::Compress {
                    layer: layer.blob,
                    compression: to.name(),
                    source,
                })?;
            layers.push((digest, size, to.media_type().to_string()));
        }
        let config_size = store.read_blob(&image.id)?.len() as u64;
        let mut manifest = ImageManifest::new(
            Descriptor::new(media::OCI_CONFIG, image.id, config_size),
            layers
                .iter()
                .map(|(digest, size, media_type)| {
                    Descriptor::new(media_type.as_str(), *digest, *size)
                })
                .collect(),
        );
        manifest.annotations = image.annotations.clone();
        (layers, manifest.to_canonical_json())
    } else {
        let layers = image
            .layers
            .iter()
            .map(|l| (l.blob, l.size, l.media_type.clone()))
            .collect();
        (layers, store.read_blob(&image.manifest_digest)?)
    };
    let mut blobs: Vec<Digest> = layers.iter().map(|(digest, _, _)| *digest).collect();
    blobs.push(image.id);
    // Other repositories of this registry known to hold this image: a blob can be
    // mounted from them instead of uploaded.
    let prefix = format!("{}/", destination.registry());
    let mount_sources: Vec<String> = store
        .repo_digests(&image.manifest_digest)?
        .into_iter()
        .filter_map(|(r, _)| r.strip_prefix(&prefix).map(str::to_string))
        .filter(|r| r != repository)
        .collect();
    for digest in &blobs {
        if blob_exists(client, repository, digest)? {
            progress(&format!("{}: already in the registry", digest.short()));
            continue;
        }
        if let Some(from) = mount_blob(client, repository, digest, &mount_sources)? {
            progress(&format!("{}: mounted from {from}", digest.short()));
            continue;
        }
        upload_blob(store, client, repository, digest)?;
        progress(&format!("{}: pushed", digest.short()));
    }
    let digest = Digest::of(&manifest);
    let reference = match tag {
        Some(tag) => tag.to_string(),
        None => digest.to_string(),
    };
    put_manifest(client, repository, &reference, &manifest)?;
    store.record_repo_digest(
        &image.manifest_digest,
        &repository_name(destination),
        &digest,
    )?;
    Ok((digest, manifest.len() as u64))
}

/// How pushed layers are compressed. gzip is the default: every client reads it, where
/// zstd needs a newer one (containerd 1.5, Docker 23, podman 3, skopeo 1.x); older
/// clients, BuildKit's `FROM` in Docker 20.10 among them, fail on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PushCompression {
    Zstd,
    #[default]
    Gzip,
}

impl PushCompression {
    pub fn name(self) -> &'static str {
        match self {
            PushCompression::Zstd => "zstd",
            PushCompression::Gzip => "gzip",
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            PushCompression::Zstd => media::OCI_LAYER_ZSTD,
            PushCompression::Gzip => media::OCI_LAYER_GZIP,
        }
    }
}

/// Writes a stored layer into the store again (the same tar) compressed as asked, and
/// gives the new blob's digest and size. The same layer must always give the same
/// bytes, so that a second push finds the registry has it.
///
/// The compressor is the `layers` module's, which `registry` may not use: the caller,
/// which may use both, hands it in, so that lade has one layer compressor.
pub type Recompress =
    dyn Fn(
        &Store,
        &LayerInfo,
        PushCompression,
    ) -> std::result::Result<(Digest, u64), Box<dyn std::error::Error + Send + Sync>>;

/// What a layer stored as `media_type` is converted to for a push, if anything: an
/// uncompressed layer (a build's) always goes as `to`, which a registry would otherwise
/// take whole; a layer compressed otherwise goes as `to` when `to` is gzip (so that
/// every client can read the image) or when forced, and as stored otherwise.
fn push_compression(media_type: &str, to: PushCompression, force: bool) -> Option<PushCompression> {
    let stored = if matches!(media_type, media::OCI_LAYER_TAR | media::DOCKER_LAYER_TAR) {
        None
    } else if media_type.contains("gzip") {
        Some(PushCompression::Gzip)
    } else if media_type.contains("zstd") {
        Some(PushCompression::Zstd)
    } else {
        // A media type lade does not know is pushed as it is.
        return None;
    };
    match stored {
        None => Some(to),
        Some(stored) if stored == to => None,
        Some(_) if to == PushCompression::Gzip || force => Some(to),
        Some(_) => None,
    }
}

/// Whether the registry has `digest` in `repository` already.
pub(super) fn blob_exists(client: &Client, repository: &str, digest: &Digest) -> Result<bool> {
    let response = client
        .authorize(client.agent.head(client.blob_url(repository, digest)))
        .call()
        .map_err(|e| client.transport_error(e, &format!("asking whether it has {digest}")))?;
    Ok(response.status() == 200)
}

/// PUTs a manifest under `tag`, after its blobs.
pub(super) fn put_manifest(
    client: &Client,
    repository: &str,
    tag: &str,
    manifest: &[u8],
) -> Result<()> {
    let media_type = crate::oci::declared_media_type(manifest)
        .unwrap_or_else(|| media::OCI_MANIFEST.to_string());
    let mut response = client
        .authorize(
            client
                .agent
                .put(format!("{}/v2/{repository}/manifests/{tag}", client.base)),
        )
        .header("Content-Type", media_type)
        .send(manifest)
        .map_err(|e| client.transport_error(e, &format!("pushing the manifest as {tag}")))?;
    if response.status() != 201 && response.status() != 200 {
        return Err(client.status_error("the manifest", &mut response));
    }
    Ok(())
}

/// A cross-repository mount: the registry links a blob it holds in `sources` into
/// `repository` without an upload. Returns the repository it came from.
fn mount_blob(
    client: &Client,
    repository: &str,
    digest: &Digest,
    sources: &[String],
) -> Result<Option<String>> {
    for from in sources {
        let response = client
            .authorize(client.agent.post(format!(
                "{}/v2/{repository}/blobs/uploads/?mount={digest}&from={from}",
                client.base
            )))
            .send_empty()
            .map_err(|e| client.transport_error(e, &format!("mounting {digest} from {from}")))?;
        if response.status() == 201 {
            return Ok(Some(from.clone()));
        }
        // 202: the registry started a plain upload instead; it is left to expire.
    }
    Ok(None)
}

fn upload_blob(store: &Store, client: &Client, repository: &str, digest: &Digest) -> Result<()> {
    let path = store.blob_path(digest);
    let size = std::fs::metadata(&path)
        .map_err(|source| RegistryError::Io {
            path: path.clone(),
            source,
        })?
        .len();
    // Read through the store's verifying reader; the registry checks the digest too.
    let mut reader = store.open_blob(digest)?;
    upload(client, repository, digest, size, &mut reader)
}

/// A monolithic upload: POST for a session, PUT of the whole blob with its digest.
pub(super) fn upload(
    client: &Client,
    repository: &str,
    digest: &Digest,
    size: u64,
    reader: &mut dyn Read,
) -> Result<()> {
    let mut started = client
        .authorize(
            client
                .agent
                .post(format!("{}/v2/{repository}/blobs/uploads/", client.base)),
        )
        .send_empty()
        .map_err(|e| client.transport_error(e, &format!("starting the upload of {digest}")))?;
    if started.status() != 202 {
        return Err(client.status_error(&format!("starting the upload of {digest}"), &mut started));
    }
    let location = started
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| client.error("an upload without a Location"))?
        .to_string();
    let mut location = absolute(client, &location);
    let chunk = upload_chunk_size();
    if size > chunk {
        // In chunks: a PATCH each (the registry says where the next one goes), then
        // the PUT that names the digest.
        let mut offset = 0u64;
        while offset < size {
            let length = chunk.min(size - offset);
            let mut part = (&mut *reader).take(length);
            let mut response = client
                .upload_request(client.agent.patch(&location))
                .header("Content-Type", "application/octet-stream")
                .header("Content-Range", format!("{offset}-{}", offset + length - 1))
                .header("Content-Length", length.to_string())
                .send(ureq::SendBody::from_reader(&mut part))
                .map_err(|e| {
                    client.transport_error(e, &format!("uploading {digest} at byte {offset}"))
                })?;
            if response.status() != 202 {
                return Err(client.status_error(
                    &format!("uploading {digest} at byte {offset}"),
                    &mut response,
                ));
            }
            if let Some(next) = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
            {
                location = absolute(client, next);
            }
            offset += length;
        }
        let separator = if location.contains('?') { '&' } else { '?' };
        let mut response = client
            .upload_request(
                client
                    .agent
                    .put(format!("{location}{separator}digest={digest}")),
            )
            .header("Content-Length", "0")
            .send_empty()
            .map_err(|e| client.transport_error(e, &format!("finishing the upload of {digest}")))?;
        if response.status() != 201 {
            return Err(
                client.status_error(&format!("finishing the upload of {digest}"), &mut response)
            );
        }
        return Ok(());
    }
    let separator = if location.contains('?') { '&' } else { '?' };
    let url = format!("{location}{separator}digest={digest}");
    let mut response = client
        .upload_request(client.agent.put(&url))
        .header("Content-Type", "application/octet-stream")
        .header("Content-Length", size.to_string())
        .send(ureq::SendBody::from_reader(reader))
        .map_err(|e| client.transport_error(e, &format!("uploading {digest}")))?;
    if response.status() != 201 {
        return Err(client.status_error(&format!("uploading {digest}"), &mut response));
    }
    Ok(())
}

/// Blobs larger than this go up in chunks of this size (`$LADE_UPLOAD_CHUNK_SIZE`
/// bytes; 64 MiB by default): some proxies in front of registries bound a request's body.
fn upload_chunk_size() -> u64 {
    std::env::var("LADE_UPLOAD_CHUNK_SIZE")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(64 << 20)
}

/// A Location header as a full URL.
fn absolute(client: &Client, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        location.to_string()
    } else {
        format!("{}{location}", client.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_go_gzip_unless_asked_and_zstd_converts_only_what_it_must() {
        use PushCompression::{Gzip, Zstd};
        let tar = media::OCI_LAYER_TAR;
        let docker_tar = media::DOCKER_LAYER_TAR;
        let gzip = media::OCI_LAYER_GZIP;
        let zstd = media::OCI_LAYER_ZSTD;
        // The default: everything ends gzip.
        assert_eq!(push_compression(tar, Gzip, false), Some(Gzip));
        assert_eq!(push_compression(docker_tar, Gzip, false), Some(Gzip));
        assert_eq!(push_compression(zstd, Gzip, false), Some(Gzip));
        assert_eq!(push_compression(gzip, Gzip, false), None);
        // zstd: a build's layers go zstd, gzip ones stay unless forced.
        assert_eq!(push_compression(tar, Zstd, false), Some(Zstd));
        assert_eq!(push_compression(gzip, Zstd, false), None);
        assert_eq!(push_compression(gzip, Zstd, true), Some(Zstd));
        assert_eq!(push_compression(zstd, Zstd, true), None);
        assert_eq!(push_compression("application/x-unknown", Zstd, true), None);
    }
}
