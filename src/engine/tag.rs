//! `lade tag` and `lade rmi`: an image named, and its names (or the image) removed.

use super::Result;
use crate::oci::{Digest, ImageRef};
use crate::store::Store;

/// `lade tag`: `target` (a name without a digest, checked by the caller) names the
/// image `source` names.
pub fn tag(store: &Store, source: &str, target: &ImageRef) -> Result<()> {
    let image = store.image(source)?;
    // A multi-platform image is named whole: the new tag names its index.
    if let Some((index, _)) = store.image_index(source)? {
        let size = store.read_blob(&index)?.len() as u64;
        store.set_index_tag(&target.familiar(), &index, size)?;
        crate::store::events::image_event(store, "tag", &index.to_string(), &target.familiar());
        return Ok(());
    }
    store.set_tag(
        &target.familiar(),
        &image.manifest_digest,
        image.manifest_size,
    )?;
    let id = image.id.to_string();
    crate::store::events::image_event(store, "tag", &id, &target.familiar());
    Ok(())
}

/// What `rmi` of one image did.
#[derive(Debug, Clone, Default)]
pub struct Removed {
    pub untagged: Vec<String>,
    pub deleted: Vec<Digest>,
}

/// `lade rmi` of one image; `force` removes it from under containers and other tags.
pub fn remove_image(store: &Store, reference: &str, force: bool) -> Result<Removed> {
    let (untagged, deleted) = store.remove_image(reference, force)?;
    Ok(Removed { untagged, deleted })
}
