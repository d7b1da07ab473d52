//! `lade inspect`: a container or an image (containers first, as Docker has it), in
//! Docker's JSON shape.

use serde_json::{json, Value};

use super::{EngineError, Result};
use crate::oci::Platform;
use crate::store::{Image, Store, StoreError};

/// What `inspect` looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InspectKind {
    Container,
    Image,
}

/// `lade inspect` of one name: a container by that name or id first, then an image (or
/// only the `kind` asked), in Docker's JSON shape.
pub fn inspect(store: &Store, reference: &str, kind: Option<InspectKind>) -> Result<Value> {
    inspect_for(store, reference, kind, None)
}

/// `inspect`, and `image inspect --platform`: of a multi-platform image, the image for
/// `platform` (an error naming the platforms it has when it has none for it).
pub fn inspect_for(
    store: &Store,
    reference: &str,
    kind: Option<InspectKind>,
    platform: Option<&Platform>,
) -> Result<Value> {
    if kind != Some(InspectKind::Image) {
        match crate::container::inspect(store, reference) {
            Ok(found) => return Ok(found),
            Err(_) if kind.is_none() => {}
            Err(e) => return Err(e.into()),
        }
    }
    let found = match platform {
        Some(platform) => store.image_for_platform(reference, platform),
        None => store.image(reference),
    };
    let image = found.map_err(|e| match e {
        StoreError::NoSuchImage(_) if kind.is_none() => {
            EngineError::NoSuchObject(reference.to_string())
        }
        other => other.into(),
    })?;
    let digests: Vec<String> = store
        .repo_digests(&image.manifest_digest)?
        .into_iter()
        .map(|(repository, digest)| format!("{repository}@{digest}"))
        .collect();
    Ok(inspect_json(&image, &digests))
}

/// Docker's `image inspect` shape.
fn inspect_json(image: &Image, repo_digests: &[String]) -> Value {
    let config = &image.config;
    let mut value = json!({
        "Id": image.id.to_string(),
        "RepoTags": image.tags,
        "RepoDigests": repo_digests,
        "Parent": "",
        "Comment": config.history.last().and_then(|h| h.comment.clone()).unwrap_or_default(),
        "Created": config.created,
        "Author": config.author.clone().unwrap_or_default(),
        "Config": config.config,
        "Architecture": config.architecture,
        "Variant": config.variant,
        "Os": config.os,
        "Size": image.size(),
        "RootFS": {
            "Type": config.rootfs.kind,
            "Layers": config.rootfs.diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        },
        "Manifest": {
            "Digest": image.manifest_digest.to_string(),
            "Layers": image.layers.iter().map(|l| json!({
                "Digest": l.blob.to_string(),
                "MediaType": l.media_type,
                "Size": l.size,
            })).collect::<Vec<_>>(),
        },
        "Metadata": {},
    });
    // A build's `--annotation`s, where the manifest has any.
    if !image.annotations.is_empty() {
        value["Manifest"]["Annotations"] = json!(image.annotations);
    }
    value
}
