//! The OCI-layout transport: a build cache exported to a registry
//! (`--cache-to type=registry`) and imported from one (`--cache-from type=registry`),
//! between a registry and an OCI image layout directory rather than the store.

use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::client::{Client, ClientOptions};
use super::pull::descriptor;
use super::push::{blob_exists, put_manifest, upload};
use super::{json_error, RegistryError, Result};
use crate::oci::{media, Digest, ImageRef, Sha256Writer};

fn layout_blob(dir: &Path, digest: &Digest) -> PathBuf {
    dir.join("blobs/sha256").join(digest.hex())
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> RegistryError + '_ {
    move |source| RegistryError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Pushes the manifest an OCI layout at `dir` names `ref_name` (in `index.json`), with
/// its config and layers, as `destination`: a build cache exported for a registry
/// (`--cache-to type=registry`). Returns the manifest's digest.
pub fn push_layout(
    dir: &Path,
    ref_name: &str,
    destination: &ImageRef,
    options: &ClientOptions,
) -> Result<Digest> {
    let index_path = dir.join("index.json");
    let index: Value =
        serde_json::from_slice(&std::fs::read(&index_path).map_err(io_at(&index_path))?)
            .map_err(|e| json_error(&index_path.display().to_string(), "index.json", e))?;
    let manifest_digest: Digest = index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["annotations"][crate::oci::REF_NAME_ANNOTATION] == ref_name)
        .and_then(|m| m["digest"].as_str())
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| {
            json_error(
                &dir.display().to_string(),
                "index.json",
                format!("names no {ref_name}"),
            )
        })?;
    let manifest_path = layout_blob(dir, &manifest_digest);
    let manifest = std::fs::read(&manifest_path).map_err(io_at(&manifest_path))?;
    if Digest::of(&manifest) != manifest_digest {
        return Err(json_error(
            &manifest_path.display().to_string(),
            "the manifest",
            "does not match its digest",
        ));
    }
    let parsed: Value = serde_json::from_slice(&manifest)
        .map_err(|e| json_error(&manifest_path.display().to_string(), "the manifest", e))?;
    let client = Client::new(destination.registry(), options)?;
    let repository = destination.repository();
    client.authenticate(repository, "pull,push")?;
    let blobs: Vec<Digest> = std::iter::once(&parsed["config"])
        .chain(parsed["layers"].as_array().into_iter().flatten())
        .filter_map(|d| d["digest"].as_str().and_then(|d| d.parse().ok()))
        .collect();
    for digest in &blobs {
        if blob_exists(&client, repository, digest)? {
            continue;
        }
        let path = layout_blob(dir, digest);
        let mut file = std::fs::File::open(&path).map_err(io_at(&path))?;
        let size = file.metadata().map_err(io_at(&path))?.len();
        upload(&client, repository, digest, size, &mut file)?;
    }
    put_manifest(
        &client,
        repository,
        destination.tag().unwrap_or("latest"),
        &manifest,
    )?;
    Ok(manifest_digest)
}

/// Fetches `reference`'s manifest, config and layers into an OCI layout at `dir` (each
/// checked against its digest), named `ref_name` in `index.json`: a build cache
/// imported from a registry (`--cache-from type=registry`).
pub fn pull_layout(
    reference: &ImageRef,
    dir: &Path,
    ref_name: &str,
    options: &ClientOptions,
) -> Result<()> {
    let client = Client::new(reference.registry(), options)?;
    let repository = reference.repository();
    client.authenticate(repository, "pull")?;
    let wanted = reference
        .digest()
        .map(str::to_string)
        .unwrap_or_else(|| reference.tag().unwrap_or("latest").to_string());
    let (manifest, media_type, manifest_digest) = client.manifest(repository, &wanted)?;
    let parsed: Value = serde_json::from_slice(&manifest)
        .map_err(|e| json_error(&reference.familiar(), "its manifest", e))?;
    let blobs_dir = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs_dir).map_err(io_at(&blobs_dir))?;
    let image = reference.familiar();
    let descriptors: Vec<(Digest, u64, String)> = std::iter::once(&parsed["config"])
        .chain(parsed["layers"].as_array().into_iter().flatten())
        .map(|d| descriptor(&image, d, "a blob"))
        .collect::<Result<_>>()?;
    for (digest, size, _) in &descriptors {
        let target = layout_blob(dir, digest);
        let partial = target.with_extension("part");
        let stage = format!("fetching blob {digest}");
        let mut body = client.open_blob(repository, digest, *size, &stage)?;
        let file = std::fs::File::create(&partial).map_err(io_at(&partial))?;
        let mut hashing = Sha256Writer::new(io::BufWriter::new(file));
        let copied = io::copy(&mut body, &mut hashing);
        let (actual, _, writer) = hashing.finish();
        let flushed = writer.into_inner().map_err(|e| e.into_error());
        if let Err(e) = copied {
            let _ = std::fs::remove_file(&partial);
            return Err(match body.failure.take() {
                Some(failure) => failure,
                None => client.body_error(e, &stage),
            });
        }
        if let Err(e) = flushed {
            let _ = std::fs::remove_file(&partial);
            return Err(RegistryError::Io {
                path: partial,
                source: e,
            });
        }
        if actual != *digest {
            let _ = std::fs::remove_file(&partial);
            return Err(client.error(format!("blob {digest}: what came has digest {actual}")));
        }
        std::fs::rename(&partial, &target).map_err(io_at(&target))?;
    }
    let manifest_path = layout_blob(dir, &manifest_digest);
    std::fs::write(&manifest_path, &manifest).map_err(io_at(&manifest_path))?;
    let index = crate::oci::canonical_json(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": [{
            "mediaType": if media_type.is_empty() { media::OCI_MANIFEST.to_string() } else { media_type },
            "digest": manifest_digest.to_string(),
            "size": manifest.len(),
            "annotations": { crate::oci::REF_NAME_ANNOTATION: ref_name },
        }],
    }));
    let index_path = dir.join("index.json");
    std::fs::write(&index_path, index).map_err(io_at(&index_path))?;
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
        .map_err(io_at(&dir.join("oci-layout")))?;
    Ok(())
}
