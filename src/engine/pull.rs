//! Pulling: `lade pull` (one tag, or every tag of a repository), and the pull policy
//! as `run` and `create` use it: the image found in the store once, or pulled into it
//! first, with Docker's notice when the store lacked it.

use super::{ContainerRequest, EngineError, ImageName, Reporter, Result};
use crate::oci::{Digest, ImageRef};
use crate::registry::{self, ClientOptions, PullOptions, RegistryError};
use crate::store::{Image, Store};

/// `image` as `policy` has it. This is the one lookup of the image a container is made
/// from: the caller hands what it returns on, rather than naming the image again.
pub(super) fn image_for_container(
    store: &Store,
    request: &ContainerRequest,
    reporter: &dyn Reporter,
) -> Result<Image> {
    let image = request.image();
    let told = Told { image, reporter };
    match registry::find_or_pull_parsed(
        store,
        image.as_str(),
        || image.reference().cloned().map_err(Clone::clone),
        request.pull,
        &PullOptions {
            platform: request.options().platform.clone(),
            client: ClientOptions {
                docker_config: request.docker_config.clone(),
                ..ClientOptions::default()
            },
        },
        &told,
    ) {
        Ok(found) => Ok(found),
        Err(RegistryError::PullOfMissing { image, source }) => {
            Err(EngineError::PullOfMissing { image, source })
        }
        Err(other) => Err(other.into()),
    }
}

/// The registry's pull events, told to the reporter with the name parsed already.
struct Told<'a> {
    image: &'a ImageName,
    reporter: &'a dyn Reporter,
}

impl registry::PullProgress for Told<'_> {
    fn layer(&self, digest: &Digest, size: u64, fetched: bool) {
        self.reporter.pull_layer(digest, size, fetched);
    }

    fn not_in_store(&self, _image: &str) {
        self.reporter.image_not_found(&self.image.shown());
    }
}

/// What `lade pull` is asked for.
#[derive(Debug, Clone)]
pub struct PullRequest {
    pub reference: ImageRef,
    /// `-a`: every tag of the repository (the reference has no digest).
    pub all_tags: bool,
    pub options: PullOptions,
}

/// `lade pull`: each image pulled, with the reference it was pulled by, in order.
/// `pulled` is told of each as it lands, so that its lines come before the next pull's.
pub fn pull(
    store: &Store,
    request: &PullRequest,
    progress: &dyn registry::PullProgress,
    pulled: &mut dyn FnMut(&ImageRef, &Image),
) -> Result<()> {
    let reference = &request.reference;
    let references = if request.all_tags {
        registry::tags(reference, &request.options.client)
            .map_err(|source| EngineError::Remote {
                what: format!("list the tags of {}", reference.familiar()),
                source: Box::new(source),
            })?
            .into_iter()
            .map(|tag| reference.with_tag(&tag))
            .collect()
    } else {
        vec![reference.clone()]
    };
    for reference in references {
        let image =
            registry::pull(store, &reference, &request.options, progress).map_err(|source| {
                EngineError::Remote {
                    what: format!("pull {}", reference.familiar()),
                    source: Box::new(source),
                }
            })?;
        if super::process::is_rootless() {
            unpack_noting_devices(store, &image, progress)?;
        }
        pulled(&reference, &image);
    }
    Ok(())
}

/// Rootless: the image's layers unpacked now, as podman's pull does, so that the device
/// nodes an ordinary user cannot make are told of at the pull (as `import` and `load`
/// tell of them), not found missing in a container later.
fn unpack_noting_devices(
    store: &Store,
    image: &Image,
    progress: &dyn registry::PullProgress,
) -> Result<()> {
    for layer in &image.layers {
        let (_, stats) =
            crate::layers::ensure_snapshot_telling(store, layer).map_err(|source| {
                EngineError::Unpack {
                    layer: layer.diff_id.to_string(),
                    source: Box::new(source),
                }
            })?;
        let skipped = stats.map(|s| s.skipped_devices).unwrap_or_default();
        if !skipped.is_empty() {
            progress.note(&format!(
                "left out {} device node(s) of layer {}, which rootless lade cannot make (a container could not open them either): {}",
                skipped.len(),
                layer.diff_id.short(),
                skipped.join(", ")
            ));
        }
    }
    Ok(())
}
