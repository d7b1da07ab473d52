//! `lade manifest`: multi-platform images (OCI image indexes) made by hand, as podman's
//! and Docker's `manifest` commands make them: `create` a list under a name from
//! images, `add` an image to it (for the platform its config names, or one given),
//! `annotate` an entry's platform, `inspect` it (or a registry's; `-v` with each
//! entry's manifest), `push` it with its images, `rm` it. A list is a tag
//! of the store naming an index, so `build`, `run`, `push` and `pull` read it as they
//! read any multi-platform image.

use std::collections::BTreeMap;

use base64::Engine as _;

use super::{push, EngineError, PushRequest, Result};
use crate::oci::{media, Descriptor, Digest, ImageIndex, ImageRef, Platform};
use crate::registry::{self, ClientOptions, PullOptions, PullPolicy, PushOptions};
use crate::store::{Image, Store, StoreError};

/// What an image added to a list is for, where its config does not say it, or says
/// it otherwise (`--os`, `--arch`, `--variant`), and its entry's annotations.
#[derive(Debug, Clone, Default)]
pub struct ManifestEntryOptions {
    pub os: Option<String>,
    pub architecture: Option<String>,
    pub variant: Option<String>,
    pub annotations: BTreeMap<String, String>,
    /// An image that is itself a multi-platform image adds all its platforms (podman's
    /// `--all`); without it, only this machine's (else its first).
    pub all: bool,
}

/// `lade manifest create`: a list named `list` of `images` (each from the store, or
/// pulled when it lacks them). With `amend`, an existing list is added to; without it,
/// an existing name is an error.
pub fn manifest_create(
    store: &Store,
    list: &ImageRef,
    images: &[String],
    amend: bool,
    all: bool,
    client: &ClientOptions,
) -> Result<Digest> {
    let mut index = match existing_list(store, list)? {
        Some(index) if amend => index,
        Some(_) => {
            return Err(manifest_error(format!(
                "{} already exists: add to it with `lade manifest add`, or create it again with --amend",
                list.familiar()
            )))
        }
        None if store.image(&list.familiar()).is_ok() && !amend => {
            return Err(manifest_error(format!(
                "{} names an image already: choose another name for the list",
                list.familiar()
            )))
        }
        None => ImageIndex::new(Vec::new()),
    };
    let options = ManifestEntryOptions {
        all,
        ..Default::default()
    };
    for image in images {
        add_to(store, &mut index, image, &options, client)?;
    }
    Ok(store
        .commit_index_document(&index, std::slice::from_ref(list))?
        .0)
}

/// `lade manifest add`: `image` added to the list `list`, its entry replacing one of
/// the same platform, or of the same image (listed again for another platform, as
/// podman's instances are).
pub fn manifest_add(
    store: &Store,
    list: &ImageRef,
    image: &str,
    options: &ManifestEntryOptions,
    client: &ClientOptions,
) -> Result<Digest> {
    let mut index = existing_list(store, list)?.ok_or_else(|| not_a_list(list))?;
    add_to(store, &mut index, image, options, client)?;
    Ok(store
        .commit_index_document(&index, std::slice::from_ref(list))?
        .0)
}

/// What `manifest annotate` changes of an entry's platform (Docker's `--os`, `--arch`,
/// `--variant`, `--os-version`, `--os-features`); what is not given stays as it is.
#[derive(Debug, Clone, Default)]
pub struct PlatformAnnotation {
    pub os: Option<String>,
    pub architecture: Option<String>,
    pub variant: Option<String>,
    pub os_version: Option<String>,
    pub os_features: Option<Vec<String>>,
}

/// `lade manifest annotate`: the platform of `image`'s entry in the list `list` changed
/// as `annotation` says (an empty variant, version or feature list removes it).
/// `image` is the image's name or id in the store, or its manifest's digest.
pub fn manifest_annotate(
    store: &Store,
    list: &ImageRef,
    image: &str,
    annotation: &PlatformAnnotation,
) -> Result<Digest> {
    let mut index = existing_list(store, list)?.ok_or_else(|| not_a_list(list))?;
    let digest = match image.parse::<Digest>() {
        Ok(digest) if index.manifests.iter().any(|d| d.digest == digest) => digest,
        _ => store.image(image)?.manifest_digest,
    };
    let entry = index
        .manifests
        .iter_mut()
        .find(|d| d.digest == digest)
        .ok_or_else(|| {
            manifest_error(format!(
                "{image} is not in {}: add it with `lade manifest add`",
                list.familiar()
            ))
        })?;
    let spec = entry.platform.get_or_insert_with(|| {
        Platform {
            os: String::new(),
            architecture: String::new(),
            variant: None,
        }
        .spec()
    });
    if let Some(os) = &annotation.os {
        spec.os = os.clone();
    }
    if let Some(architecture) = &annotation.architecture {
        spec.architecture = architecture.clone();
    }
    if let Some(variant) = &annotation.variant {
        spec.variant = Some(variant.clone()).filter(|v| !v.is_empty());
    }
    if let Some(version) = &annotation.os_version {
        match version.as_str() {
            "" => spec.extra.remove("os.version"),
            _ => spec
                .extra
                .insert("os.version".into(), version.clone().into()),
        };
    }
    if let Some(features) = &annotation.os_features {
        let features: Vec<serde_json::Value> = features
            .iter()
            .filter(|f| !f.is_empty())
            .map(|f| f.clone().into())
            .collect();
        match features.is_empty() {
            true => spec.extra.remove("os.features"),
            false => spec.extra.insert("os.features".into(), features.into()),
        };
    }
    if spec.os.is_empty() || spec.architecture.is_empty() {
        return Err(manifest_error(format!(
            "the entry of {image} in {} says no platform: give --os and --arch",
            list.familiar()
        )));
    }
    Ok(store
        .commit_index_document(&index, std::slice::from_ref(list))?
        .0)
}

/// `lade manifest inspect`: the list as JSON (indented, as Docker and podman show it):
/// the store's list of that name, else what the registry has for it.
pub fn manifest_inspect(store: &Store, name: &str, client: &ClientOptions) -> Result<String> {
    if let Some((digest, _)) = store.image_index(name)? {
        return pretty(&store.read_blob(&digest)?);
    }
    let reference: ImageRef = name.parse().map_err(crate::registry::RegistryError::from)?;
    let bytes = registry::manifest(&reference, client).map_err(|source| EngineError::Remote {
        what: format!("inspect the manifest of {}", reference.familiar()),
        source: Box::new(source),
    })?;
    pretty(&bytes)
}

/// `lade manifest inspect -v`, as Docker shows it: for a list, each entry's reference
/// (`NAME@DIGEST`), descriptor, raw manifest (base64) and that manifest parsed (under
/// `OCIManifest`, or `SchemaV2Manifest` for Docker's type); for one image, that object
/// alone. Manifests come from the store, else the registry.
pub fn manifest_inspect_verbose(
    store: &Store,
    name: &str,
    client: &ClientOptions,
) -> Result<String> {
    let reference: ImageRef = name.parse().map_err(crate::registry::RegistryError::from)?;
    let fetch = |digest: Option<&Digest>| -> Result<Vec<u8>> {
        if let Some(digest) = digest.filter(|d| store.has_blob(d)) {
            return Ok(store.read_blob(digest)?);
        }
        let wanted = match digest {
            Some(digest) => format!(
                "{}/{}@{digest}",
                reference.registry(),
                reference.repository()
            )
            .parse()
            .map_err(crate::registry::RegistryError::from)?,
            None => reference.clone(),
        };
        registry::manifest(&wanted, client).map_err(|source| EngineError::Remote {
            what: format!("inspect the manifest of {}", wanted.familiar()),
            source: Box::new(source),
        })
    };
    let (top, top_digest) = match store.image_index(name)? {
        Some((digest, _)) => (store.read_blob(&digest)?, Some(digest)),
        None => {
            let bytes = fetch(None)?;
            let digest = Digest::of(&bytes);
            (bytes, Some(digest))
        }
    };
    let parsed = parse_json(&top)?;
    let media_type = parsed["mediaType"].as_str().unwrap_or_default().to_string();
    let verbose = |descriptor: serde_json::Value, bytes: &[u8]| -> Result<serde_json::Value> {
        let manifest = parse_json(bytes)?;
        let key = match manifest["mediaType"].as_str() {
            Some(media::DOCKER_MANIFEST) => "SchemaV2Manifest",
            _ => "OCIManifest",
        };
        let digest = descriptor["digest"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        Ok(serde_json::json!({
            "Ref": format!("{}@{digest}", reference.normalized()),
            "Descriptor": descriptor,
            "Raw": base64::engine::general_purpose::STANDARD.encode(bytes),
            key: manifest,
        }))
    };
    let shown = if media_type == media::OCI_INDEX || media_type == media::DOCKER_MANIFEST_LIST {
        let mut entries = Vec::new();
        for descriptor in parsed["manifests"].as_array().cloned().unwrap_or_default() {
            let digest: Digest = descriptor["digest"]
                .as_str()
                .unwrap_or_default()
                .parse()
                .map_err(|_| {
                    manifest_error(format!("{name}: an entry of the list has no valid digest"))
                })?;
            entries.push(verbose(descriptor, &fetch(Some(&digest))?)?);
        }
        serde_json::Value::Array(entries)
    } else {
        let descriptor = serde_json::json!({
            "mediaType": media_type,
            "digest": top_digest.map(|d| d.to_string()),
            "size": top.len(),
        });
        verbose(descriptor, &top)?
    };
    Ok(serde_json::to_string_pretty(&shown).unwrap_or_default())
}

fn parse_json(bytes: &[u8]) -> Result<serde_json::Value> {
    serde_json::from_slice(bytes).map_err(|e| {
        EngineError::Store(StoreError::Invalid {
            what: "the manifest".into(),
            reason: e.to_string(),
        })
    })
}

/// `lade manifest push`: the list and its images to `destination` (the list's own
/// name by default); with `purge`, the list is removed from the store once pushed.
pub fn manifest_push(
    store: &Store,
    list: &ImageRef,
    destination: &ImageRef,
    options: &PushOptions,
    purge: bool,
    progress: &dyn Fn(&str),
) -> Result<Digest> {
    existing_list(store, list)?.ok_or_else(|| not_a_list(list))?;
    let digest = push(
        store,
        &PushRequest {
            image: list.familiar(),
            destination: destination.clone(),
            options: options.clone(),
        },
        progress,
    )?;
    if purge {
        store.remove_image(&list.familiar(), false)?;
    }
    Ok(digest)
}

/// `lade manifest rm`: the list goes, and those of its images nothing else names.
pub fn manifest_rm(store: &Store, list: &ImageRef) -> Result<()> {
    existing_list(store, list)?.ok_or_else(|| not_a_list(list))?;
    store.remove_image(&list.familiar(), false)?;
    Ok(())
}

/// The index a list's name names, if it names one.
fn existing_list(store: &Store, list: &ImageRef) -> Result<Option<ImageIndex>> {
    Ok(store.image_index(&list.familiar())?.map(|(_, index)| index))
}

fn not_a_list(list: &ImageRef) -> EngineError {
    manifest_error(format!(
        "{} is not a manifest list in the store: make one with `lade manifest create`",
        list.familiar()
    ))
}

fn manifest_error(reason: String) -> EngineError {
    EngineError::Manifest(reason)
}

/// Adds `image`'s entries to `index`, each replacing one of the same platform.
fn add_to(
    store: &Store,
    index: &mut ImageIndex,
    image: &str,
    options: &ManifestEntryOptions,
    client: &ClientOptions,
) -> Result<()> {
    let mut images: Vec<Image> = Vec::new();
    match store.image_index(image)? {
        Some((_, inner)) if options.all => {
            for entry in store
                .platform_entries(&inner)
                .into_iter()
                .filter(|e| e.present)
            {
                images.push(store.image_by_manifest(&entry.manifest)?);
            }
        }
        _ => {
            let pull = PullOptions {
                client: client.clone(),
                platform: None,
            };
            images.push(registry::find_or_pull(
                store,
                image,
                PullPolicy::Missing,
                &pull,
                &(),
            )?);
        }
    }
    for found in images {
        let mut platform = Platform::of_config(&found.config);
        if let Some(os) = &options.os {
            platform.os = os.clone();
        }
        if let Some(architecture) = &options.architecture {
            platform.architecture = architecture.clone();
        }
        if let Some(variant) = &options.variant {
            platform.variant = Some(variant.clone()).filter(|v| !v.is_empty());
        }
        if platform.os.is_empty() || platform.architecture.is_empty() {
            return Err(manifest_error(format!(
                "image {image} does not say which platform it is for: give it with --os and --arch"
            )));
        }
        index.manifests.retain(|d| {
            d.digest != found.manifest_digest
                && d.platform
                    .as_ref()
                    .is_none_or(|p| Platform::of_spec(p).to_string() != platform.to_string())
        });
        let mut entry = Descriptor::new(
            media::OCI_MANIFEST,
            found.manifest_digest,
            found.manifest_size,
        );
        entry.platform = Some(platform.spec());
        entry.annotations = options.annotations.clone();
        index.manifests.push(entry);
    }
    Ok(())
}

fn pretty(bytes: &[u8]) -> Result<String> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        EngineError::Store(StoreError::Invalid {
            what: "the manifest".into(),
            reason: e.to_string(),
        })
    })?;
    Ok(serde_json::to_string_pretty(&value).unwrap_or_default())
}
