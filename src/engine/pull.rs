//! The pull policy as `run` and `create` use it: the image found in the store once, or
//! pulled into it first, with Docker's notice when the store lacked it.

use super::{EngineError, ImageName, Reporter, Result};
use crate::oci::Digest;
use crate::registry::{self, PullOptions, PullPolicy, RegistryError};
use crate::store::{Image, Store};

/// `image` as `policy` has it. This is the one lookup of the image a container is made
/// from: the caller hands what it returns on, rather than naming the image again.
pub(super) fn image_for_container(
    store: &Store,
    image: &ImageName,
    policy: PullPolicy,
    reporter: &dyn Reporter,
) -> Result<Image> {
    let told = Told { image, reporter };
    match registry::find_or_pull_parsed(
        store,
        image.as_str(),
        || image.reference().cloned().map_err(Clone::clone),
        policy,
        &PullOptions::default(),
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
