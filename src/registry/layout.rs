//! The OCI-layout transport: a build cache exported to a registry
//! (`--cache-to type=registry`) and imported from one (`--cache-from type=registry`),
//! between a registry and an OCI image layout directory rather than the store.

use std::io;
use std::path::Path;

use super::client::{Client, ClientOptions};
use super::push::{blob_exists, put_manifest, upload};
use super::{json_error, RegistryError, Result};
use crate::oci::{
    media, Descriptor, Digest, ImageIndex, ImageManifest, ImageRef, Layout, Sha256Writer,
    REF_NAME_ANNOTATION,
};

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
    let layout = Layout::new(dir);
    let index = layout.read_index()?;
    let manifest_digest = index.named(ref_name).map(|m| m.digest).ok_or_else(|| {
        json_error(
            &dir.display().to_string(),
            "index.json",
            format!("names no {ref_name}"),
        )
    })?;
    // The bytes as they are in the layout are pushed: its digest is the one named.
    let (manifest, parsed) = layout.read_manifest(&manifest_digest)?;
    let client = Client::new(destination.registry(), options)?;
    let repository = destination.repository();
    client.authenticate(repository, "pull,push")?;
    let blobs: Vec<Digest> = std::iter::once(&parsed.config)
        .chain(&parsed.layers)
        .map(|d| d.digest)
        .collect();
    for digest in &blobs {
        if blob_exists(&client, repository, digest)? {
            continue;
        }
        let path = layout.blob_path(digest);
        let mut file = layout.open_blob(digest)?;
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
    let client = Client::for_pull(reference, options)?;
    let repository = reference.repository();
    let (manifest, media_type, manifest_digest) = client.named_manifest(reference)?;
    let parsed = ImageManifest::from_slice(&manifest)
        .map_err(|e| json_error(&reference.familiar(), "its manifest", e))?;
    let layout = Layout::new(dir);
    layout.create_dirs()?;
    for Descriptor { digest, size, .. } in std::iter::once(&parsed.config).chain(&parsed.layers) {
        let target = layout.blob_path(digest);
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
    layout.write_blob(&manifest)?;
    let mut entry = Descriptor::new(
        if media_type.is_empty() {
            media::OCI_MANIFEST.to_string()
        } else {
            media_type
        },
        manifest_digest,
        manifest.len() as u64,
    );
    entry
        .annotations
        .insert(REF_NAME_ANNOTATION.to_string(), ref_name.to_string());
    layout.write_index(&ImageIndex::new(vec![entry]))?;
    Ok(())
}
