//! Multi-platform images. A tag may name an OCI image index instead of one manifest
//! (a build for several platforms, `lade manifest create`, a pull for another platform
//! than the one the tag held): each entry is an image of the store, for the platform its
//! descriptor names. What reads "the image" of such a tag gets this machine's entry, or
//! the first one the store holds; a build or a pull for a platform picks that entry.
//!
//! lade's own indexes name only images the store holds (a pull stores the one image
//! it is for, not the registry's index); an index another tool wrote into the layout
//! may name manifests the store lacks: those entries are kept, never loaded, and left
//! out of a push.

use std::collections::BTreeSet;

use super::{Image, Result, Store, StoreError};
use crate::oci::{canonical_json, media, Descriptor, Digest, ImageIndex, ImageRef, Kind, Platform};

/// One entry of a multi-platform image, as `lade manifest inspect` and `lade images`
/// show it.
#[derive(Debug, Clone)]
pub struct PlatformEntry {
    pub platform: Platform,
    pub manifest: Digest,
    /// Whether the store holds this entry's image.
    pub present: bool,
}

impl Store {
    /// Reads the image index `digest`.
    pub fn read_index(&self, digest: &Digest) -> Result<ImageIndex> {
        ImageIndex::from_slice(&self.read_blob(digest)?).map_err(|e| StoreError::Invalid {
            what: format!("image index {digest}"),
            reason: e.to_string(),
        })
    }

    /// Whether blob `digest` is an image index.
    pub(crate) fn is_index_blob(&self, digest: &Digest) -> Result<bool> {
        Ok(Kind::of(&self.read_blob(digest)?) == Some(Kind::Index))
    }

    /// The index a tag (or `name@digest`) names, with its digest; `None` when the
    /// reference names one image, or nothing.
    pub fn image_index(&self, reference: &str) -> Result<Option<(Digest, ImageIndex)>> {
        let tags = self.tags()?;
        let digest = match reference.parse::<ImageRef>() {
            Ok(parsed) => match parsed.digest() {
                Some(digest) => digest.parse::<Digest>().ok(),
                None => {
                    let name = parsed.familiar();
                    tags.iter().find(|t| t.name == name).map(|t| t.manifest)
                }
            },
            Err(_) => None,
        };
        match digest {
            Some(digest) if self.has_blob(&digest) && self.is_index_blob(&digest)? => {
                Ok(Some((digest, self.read_index(&digest)?)))
            }
            _ => Ok(None),
        }
    }

    /// The entries of an index, each with its platform and whether the store holds it.
    /// Entries without a platform (attestations, nested indexes) are not images to run.
    pub fn platform_entries(&self, index: &ImageIndex) -> Vec<PlatformEntry> {
        index
            .manifests
            .iter()
            .filter(|d| !d.is_index())
            .filter_map(|d| {
                let spec = d.platform.as_ref()?;
                if spec.os == "unknown" {
                    return None;
                }
                Some(PlatformEntry {
                    platform: Platform::of_spec(spec),
                    manifest: d.digest,
                    present: self.has_blob(&d.digest),
                })
            })
            .collect()
    }

    /// The manifest an index stands for where one image is meant (`run`, `inspect`,
    /// `images`): this machine's platform, else the first entry the store holds.
    pub(crate) fn default_entry(&self, index: &ImageIndex) -> Option<Digest> {
        let entries = self.platform_entries(index);
        let host = Platform::host();
        entries
            .iter()
            .find(|e| e.present && e.platform.serves(&host))
            .or_else(|| entries.iter().find(|e| e.present))
            .map(|e| e.manifest)
    }

    /// The image `reference` names for `platform`: the index entry for it, or the one
    /// image the reference names when that image is for `platform`.
    pub fn image_for_platform(&self, reference: &str, platform: &Platform) -> Result<Image> {
        if let Some((_, index)) = self.image_index(reference)? {
            let entries = self.platform_entries(&index);
            let entry = entries
                .iter()
                .find(|e| e.present && e.platform.serves(platform))
                .ok_or_else(|| StoreError::OtherPlatform {
                    image: reference.to_string(),
                    wanted: platform.to_string(),
                    has: platforms_text(entries.iter().filter(|e| e.present)),
                })?;
            return self.image_by_manifest(&entry.manifest);
        }
        let image = self.image(reference)?;
        let has = Platform::of_config(&image.config);
        // An image whose config names no architecture (a hand-made one) serves any.
        if !image.config.architecture.is_empty() && !has.serves(platform) {
            return Err(StoreError::OtherPlatform {
                image: reference.to_string(),
                wanted: platform.to_string(),
                has: has.to_string(),
            });
        }
        Ok(image)
    }

    /// Writes an index of `entries` (each image for its platform) and points `tags` at
    /// it. Returns its digest and size.
    pub fn commit_index(
        &self,
        entries: &[(Platform, Image)],
        tags: &[ImageRef],
    ) -> Result<(Digest, u64)> {
        let index = ImageIndex::new(
            entries
                .iter()
                .map(|(platform, image)| entry_for(platform, image))
                .collect(),
        );
        self.commit_index_document(&index, tags)
    }

    /// Stores an index as it is and points `tags` at it.
    pub fn commit_index_document(
        &self,
        index: &ImageIndex,
        tags: &[ImageRef],
    ) -> Result<(Digest, u64)> {
        // Garbage collection must not take the blob before a tag names it.
        let _guard = self.content_guard()?;
        let bytes = canonical_json(index);
        let digest = self.put_blob(&bytes)?;
        for tag in tags {
            self.set_index_tag(&tag.familiar(), &digest, bytes.len() as u64)?;
        }
        Ok((digest, bytes.len() as u64))
    }

    /// Names `image` as `name` for its platform alongside what `name` holds for other
    /// platforms: the entry of its platform in the index `name` names is replaced; an
    /// image of another platform that `name` named becomes an index of both; otherwise
    /// `name` names `image` alone. A pull for another platform thus keeps the image of
    /// this one.
    pub fn tag_for_platform(&self, name: &ImageRef, image: &Image) -> Result<()> {
        let familiar = name.familiar();
        let platform = Platform::of_config(&image.config);
        let current = self.tags()?.into_iter().find(|t| t.name == familiar);
        let mut entries: Vec<Descriptor> = match &current {
            Some(tag) if tag.is_index => self.read_index(&tag.manifest)?.manifests,
            Some(tag) if tag.manifest != image.manifest_digest => {
                match self.image_by_manifest(&tag.manifest) {
                    Ok(old) if !old.config.architecture.is_empty() => {
                        vec![entry_for(&Platform::of_config(&old.config), &old)]
                    }
                    _ => Vec::new(),
                }
            }
            _ => Vec::new(),
        };
        entries.retain(|d| {
            d.platform
                .as_ref()
                .is_none_or(|p| !Platform::of_spec(p).serves(&platform))
        });
        if entries.is_empty() {
            return self.set_tag(&familiar, &image.manifest_digest, image.manifest_size);
        }
        entries.push(entry_for(&platform, image));
        self.commit_index_document(&ImageIndex::new(entries), std::slice::from_ref(name))?;
        Ok(())
    }

    /// Manifests that tagged indexes name and the store holds.
    pub(crate) fn indexed_manifests(&self) -> Result<BTreeSet<Digest>> {
        let mut out = BTreeSet::new();
        for tag in self.tags()?.iter().filter(|t| t.is_index) {
            if let Ok(index) = self.read_index(&tag.manifest) {
                out.extend(
                    self.platform_entries(&index)
                        .into_iter()
                        .filter(|e| e.present)
                        .map(|e| e.manifest),
                );
            }
        }
        Ok(out)
    }
}

/// An index entry for `image` on `platform`.
fn entry_for(platform: &Platform, image: &Image) -> Descriptor {
    let mut entry = Descriptor::new(
        media::OCI_MANIFEST,
        image.manifest_digest,
        image.manifest_size,
    );
    entry.platform = Some(platform.spec());
    entry
}

/// `linux/amd64, linux/arm64`, or `none` for no entry.
pub(crate) fn platforms_text<'a>(entries: impl Iterator<Item = &'a PlatformEntry>) -> String {
    let names: Vec<String> = entries.map(|e| e.platform.to_string()).collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::ImageConfig;
    use crate::store::NewImage;

    fn image_for(store: &Store, architecture: &str) -> Image {
        let config = ImageConfig {
            architecture: architecture.into(),
            os: "linux".into(),
            created: Some(format!("2026-01-01T00:00:00Z{architecture}")),
            ..ImageConfig::default()
        };
        store
            .commit_image(
                &NewImage {
                    config,
                    config_bytes: None,
                    layers: Vec::new(),
                },
                &[],
            )
            .unwrap()
    }

    #[test]
    fn a_tag_holds_one_image_a_platform_and_goes_with_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let host = Platform::host();
        let other = if host.architecture == "arm64" {
            "amd64"
        } else {
            "arm64"
        };
        let native = image_for(&store, &host.architecture);
        let foreign = image_for(&store, other);
        let name: ImageRef = "x:1".parse().unwrap();
        store.tag_for_platform(&name, &foreign).unwrap();
        assert!(!store.tags().unwrap()[0].is_index, "one image: a plain tag");
        store.tag_for_platform(&name, &native).unwrap();
        assert!(store.tags().unwrap()[0].is_index, "two platforms: an index");
        // Again for the same platform: replaced, not added.
        store.tag_for_platform(&name, &native).unwrap();
        let (_, index) = store.image_index("x:1").unwrap().unwrap();
        assert_eq!(index.manifests.len(), 2);

        let wanted = Platform::parse(&format!("linux/{other}")).unwrap();
        assert_eq!(
            store.image_for_platform("x:1", &wanted).unwrap().id,
            foreign.id
        );
        assert_eq!(store.image("x:1").unwrap().id, native.id, "this machine's");
        assert_eq!(store.image("x:1").unwrap().tags, ["x:1"]);
        let s390x = Platform::parse("linux/s390x").unwrap();
        let err = store.image_for_platform("x:1", &s390x).unwrap_err();
        assert!(
            matches!(&err, StoreError::OtherPlatform { has, .. } if has.contains(other)),
            "{err}"
        );
        let listed = store.list_images().unwrap();
        assert_eq!(listed.len(), 1, "the index's images are not dangling");
        assert_eq!(listed[0].index.as_ref().unwrap().1.len(), 2);

        let (untagged, deleted) = store.remove_image("x:1", false).unwrap();
        assert_eq!(untagged, ["x:1"]);
        assert_eq!(deleted.len(), 2);
        assert!(store.list_images().unwrap().is_empty());
    }
}
