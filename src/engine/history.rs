//! `lade history`: an image's steps, newest first, with the size of each one's layer.

use super::Result;
use crate::oci::{Digest, Platform};
use crate::store::{Image, Store};

/// A row of `lade history`, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    /// The image's id on the newest row; the others have none (`<missing>`).
    pub id: Option<Digest>,
    pub created: Option<String>,
    pub created_by: String,
    /// The size of the step's layer, uncompressed (0 for a step without one).
    pub size: u64,
    pub comment: String,
}

/// `lade history`; with `platform` (`--platform`), of a multi-platform image the image
/// for that platform.
pub fn history(store: &Store, image: &str, platform: Option<&Platform>) -> Result<Vec<HistoryRow>> {
    let image = match platform {
        Some(platform) => store.image_for_platform(image, platform)?,
        None => store.image(image)?,
    };
    Ok(history_rows(&image))
}

fn history_rows(image: &Image) -> Vec<HistoryRow> {
    // History entries with a layer take the layers in order.
    let mut layers = image.layers.iter();
    let mut rows: Vec<HistoryRow> = image
        .config
        .history
        .iter()
        .map(|entry| HistoryRow {
            id: None,
            created: entry.created.clone(),
            created_by: entry.created_by.clone().unwrap_or_default(),
            size: if entry.is_empty_layer() {
                0
            } else {
                layers.next().map_or(0, |l| l.tar_size)
            },
            comment: entry.comment.clone().unwrap_or_default(),
        })
        .collect();
    rows.reverse();
    if let Some(first) = rows.first_mut() {
        first.id = Some(image.id);
    }
    rows
}
