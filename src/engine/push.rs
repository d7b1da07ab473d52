//! `lade push`: an image of the store sent to a registry, its layers compressed as the
//! push asks by the one layer compressor (`registry` may not use `layers`, so it reaches
//! the registry from here).

use super::{EngineError, Result};
use crate::layers::{self, Compression};
use crate::oci::{Digest, ImageRef, Platform};
use crate::registry::{self, PushCompression, PushOptions};
use crate::store::{LayerInfo, Store};

/// What `lade push` is asked for.
#[derive(Debug, Clone)]
pub struct PushRequest {
    /// The image in the store.
    pub image: String,
    pub destination: ImageRef,
    pub options: PushOptions,
}

/// `lade push`: returns the pushed manifest's digest. `progress` is told what is done
/// to each layer.
pub fn push(store: &Store, request: &PushRequest, progress: &dyn Fn(&str)) -> Result<Digest> {
    registry::push(
        store,
        &request.image,
        &request.destination,
        &request.options,
        &recompress,
        progress,
    )
    .map_err(|source| EngineError::Remote {
        what: format!("push {}", request.destination.familiar()),
        source: Box::new(source),
    })
}

/// `lade push --platform`: of a multi-platform image, only its image for `platform`,
/// pushed under the destination's tag as an image of one platform (Docker 29's
/// behaviour: the index and its other images stay behind). Returns the manifest's digest.
pub fn push_platform(
    store: &Store,
    request: &PushRequest,
    platform: &Platform,
    progress: &dyn Fn(&str),
) -> Result<Digest> {
    let image = store.image_for_platform(&request.image, platform)?;
    let one = PushRequest {
        image: image.id.to_string(),
        ..request.clone()
    };
    push(store, &one, progress)
}

/// The layers module's compressor, as a push takes it.
fn recompress(
    store: &Store,
    layer: &LayerInfo,
    to: PushCompression,
) -> std::result::Result<(Digest, u64), Box<dyn std::error::Error + Send + Sync>> {
    let to = match to {
        PushCompression::Zstd => Compression::Zstd,
        PushCompression::Gzip => Compression::Gzip,
    };
    Ok(layers::recompress(store, layer, to)?)
}
