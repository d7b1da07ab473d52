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
        pulled(&reference, &image);
    }
    Ok(())
}
