//! The store's images as the user sees them: listed (`images`), named (`tag`), removed
//! (`rmi`), described (`inspect`, containers first as Docker has it) and their steps
//! (`history`).

use serde_json::{json, Value};

use super::{EngineError, Result};
use crate::oci::{Digest, ImageRef, ReferenceError};
use crate::store::{Image, ImageSummary, Store, StoreError};

/// `images REPOSITORY[:TAG]`: the images of a repository, of one tag when one is given.
#[derive(Debug, Clone)]
pub struct ImageFilter {
    reference: ImageRef,
    with_tag: bool,
}

impl ImageFilter {
    pub fn parse(text: &str) -> std::result::Result<ImageFilter, ReferenceError> {
        let reference = text.parse::<ImageRef>()?;
        // A tag is given when the last path component has one: the colon of
        // `HOST:PORT/REPO` is a port's.
        let last = text.rsplit('/').next().unwrap_or(text);
        let with_tag = last.contains(':') && !last.ends_with(':');
        Ok(ImageFilter {
            reference,
            with_tag,
        })
    }

    fn admits(&self, tag: Option<&str>) -> bool {
        tag.and_then(|t| t.parse::<ImageRef>().ok())
            .is_some_and(|r| {
                r.familiar_repository() == self.reference.familiar_repository()
                    && (!self.with_tag || r.tag() == self.reference.tag())
            })
    }
}

/// A row of `lade images`: one per tag, and one per untagged image.
#[derive(Debug, Clone)]
pub struct ListedImage {
    pub id: Digest,
    /// REPOSITORY and TAG, `<none>` for an image no tag names.
    pub repository: String,
    pub tag: String,
    pub manifest_digest: Digest,
    /// What the registry of this row's repository calls the image, when asked for.
    pub repo_digest: Option<Digest>,
    pub created: Option<String>,
    pub size: u64,
}

/// `lade images`: with `digests`, each row's registry digest too.
pub fn images(
    store: &Store,
    filter: Option<&ImageFilter>,
    digests: bool,
) -> Result<Vec<ListedImage>> {
    let mut summaries = store.list_images()?;
    if let Some(filter) = filter {
        summaries.retain(|s| filter.admits(s.tag.as_deref()));
    }
    Ok(summaries
        .into_iter()
        .map(|s| {
            let repo_digest = digests.then(|| repo_digest(store, &s)).flatten();
            let (repository, tag) = repository_and_tag(s.tag.as_deref());
            ListedImage {
                id: s.id,
                repository,
                tag,
                manifest_digest: s.manifest_digest,
                repo_digest,
                created: s.created,
                size: s.size,
            }
        })
        .collect())
}

/// The digest the registry of the row's repository gave its image, if any did.
fn repo_digest(store: &Store, summary: &ImageSummary) -> Option<Digest> {
    let repository = summary
        .tag
        .as_deref()
        .and_then(|t| t.parse::<ImageRef>().ok())
        .map(|r| format!("{}/{}", r.registry(), r.repository()));
    store
        .repo_digests(&summary.manifest_digest)
        .ok()?
        .into_iter()
        .find(|(r, _)| repository.as_deref().is_none_or(|want| want == r))
        .map(|(_, d)| d)
}

fn repository_and_tag(tag: Option<&str>) -> (String, String) {
    let Some(name) = tag else {
        return ("<none>".into(), "<none>".into());
    };
    match name.parse::<ImageRef>() {
        Ok(r) => (
            r.familiar_repository(),
            r.tag().unwrap_or("<none>").to_string(),
        ),
        Err(_) => (name.to_string(), "<none>".into()),
    }
}

/// `lade tag`: `target` (a name without a digest, checked by the caller) names the
/// image `source` names.
pub fn tag(store: &Store, source: &str, target: &ImageRef) -> Result<()> {
    let image = store.image(source)?;
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

/// What `inspect` looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InspectKind {
    Container,
    Image,
}

/// `lade inspect` of one name: a container by that name or id first, then an image (or
/// only the `kind` asked), in Docker's JSON shape.
pub fn inspect(store: &Store, reference: &str, kind: Option<InspectKind>) -> Result<Value> {
    if kind != Some(InspectKind::Image) {
        match crate::container::inspect(store, reference) {
            Ok(found) => return Ok(found),
            Err(_) if kind.is_none() => {}
            Err(e) => return Err(e.into()),
        }
    }
    let image = store.image(reference).map_err(|e| match e {
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
    json!({
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
    })
}

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

/// `lade history`.
pub fn history(store: &Store, image: &str) -> Result<Vec<HistoryRow>> {
    let image = store.image(image)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_has_a_tag_only_when_its_last_component_does() {
        let repo = ImageFilter::parse("localhost:5000/app").unwrap();
        assert!(repo.admits(Some("localhost:5000/app:1")));
        assert!(repo.admits(Some("localhost:5000/app:2")));
        assert!(!repo.admits(None));
        let one = ImageFilter::parse("busybox:1").unwrap();
        assert!(one.admits(Some("docker.io/library/busybox:1")));
        assert!(!one.admits(Some("busybox:2")));
    }

    #[test]
    fn untagged_images_show_none() {
        assert_eq!(
            repository_and_tag(None),
            ("<none>".to_string(), "<none>".to_string())
        );
        assert_eq!(
            repository_and_tag(Some("docker.io/library/busybox:1")),
            ("busybox".to_string(), "1".to_string())
        );
    }
}
