//! `commit`: a container's changes become a new image on its own, with `--change`
//! instructions applied to its image's config.

use super::Result;
use crate::container::{self, CommitOptions};
use crate::graph::{self, BaseImage};
use crate::oci::{Digest, ImageRef};
use crate::store::Store;

/// What `lade commit` is asked for.
#[derive(Debug, Clone, Default)]
pub struct CommitRequest {
    /// The container's name or id.
    pub container: String,
    /// Dockerfile instructions that change only the config (`CMD`, `ENV`...).
    pub changes: Vec<String>,
    /// The history comment.
    pub message: Option<String>,
    pub author: Option<String>,
    /// The new image's name.
    pub tag: Option<ImageRef>,
    /// `SOURCE_DATE_EPOCH`: the image's times, for the same digest every time.
    pub source_date_epoch: Option<i64>,
}

/// `lade commit`: returns the new image's id.
pub fn commit(store: &Store, request: &CommitRequest) -> Result<Digest> {
    let record = store.container(&request.container)?;
    let base = store.image(&record.image.to_string())?;
    let config = graph::config_with_changes(
        BaseImage {
            config: base.config.config.clone(),
            author: base.config.author.clone(),
        },
        &request.changes,
    )?;
    let image = container::commit(
        store,
        &request.container,
        &CommitOptions {
            config,
            message: request.message.clone(),
            author: request.author.clone(),
            tag: request.tag.clone(),
            source_date_epoch: request.source_date_epoch,
        },
    )?;
    Ok(image.id)
}
