//! Tags, kept in the OCI layout's `index.json` as `org.opencontainers.image.ref.name`
//! annotations (Docker's short form: `app:1`, `busybox:latest`), so that
//! `skopeo inspect oci:<root>/oci:app:1` finds them. Changes are read-modify-write under
//! a file lock and replace the file atomically.

use std::collections::BTreeMap;
use std::fs::{self, File};

use super::{IoContext, Result, Store, StoreError};
use crate::oci::{media, Descriptor, Digest, ImageIndex, Layout, REF_NAME_ANNOTATION};

/// A tag and the manifest it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// Docker's short form, e.g. `busybox:latest`.
    pub name: String,
    /// The manifest it names, or the image index of a multi-platform image.
    pub manifest: Digest,
    pub manifest_size: u64,
    /// Whether `manifest` is an image index rather than one image's manifest.
    pub is_index: bool,
}

impl Store {
    pub(crate) fn index_init(&self) -> Result<()> {
        let path = self.layout().index_path();
        if !path.exists() {
            let _lock = self.index_lock()?;
            if !path.exists() {
                write_index(self, &[])?;
            }
        }
        Ok(())
    }

    fn index_lock(&self) -> Result<File> {
        let (file, path) = self.open_lock_file("index.lock")?;
        file.lock().at(&path)?;
        Ok(file)
    }

    /// All tags, in name order.
    pub fn tags(&self) -> Result<Vec<Tag>> {
        let path = self.layout().index_path();
        let bytes = match fs::read(&path) {
            // A store only being read may not have written its index yet.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.read_only => {
                return Ok(Vec::new())
            }
            other => other.at(&path)?,
        };
        parse_index(&bytes).map_err(|problem| StoreError::Invalid {
            what: path.display().to_string(),
            reason: problem.to_string(),
        })
    }

    /// Points `name` at a manifest (replacing what it named before).
    pub fn set_tag(&self, name: &str, manifest: &Digest, manifest_size: u64) -> Result<()> {
        self.point_tag(name, manifest, manifest_size, false)
    }

    /// Points `name` at an image index (a multi-platform image).
    pub fn set_index_tag(&self, name: &str, index: &Digest, index_size: u64) -> Result<()> {
        self.point_tag(name, index, index_size, true)
    }

    fn point_tag(&self, name: &str, digest: &Digest, size: u64, is_index: bool) -> Result<()> {
        self.update_tags(|tags| {
            tags.retain(|t| t.name != name);
            tags.push(Tag {
                name: name.to_string(),
                manifest: *digest,
                manifest_size: size,
                is_index,
            });
        })
    }

    /// Removes a tag; returns whether it existed.
    pub fn remove_tag(&self, name: &str) -> Result<bool> {
        let mut existed = false;
        self.update_tags(|tags| {
            let before = tags.len();
            tags.retain(|t| t.name != name);
            existed = tags.len() != before;
        })?;
        Ok(existed)
    }

    fn update_tags(&self, change: impl FnOnce(&mut Vec<Tag>)) -> Result<()> {
        let _lock = self.index_lock()?;
        let before = self.tags()?;
        let mut tags = before.clone();
        change(&mut tags);
        tags.sort_by(|a, b| a.name.cmp(&b.name));
        if tags == before {
            // A rebuild that names the same image again writes nothing.
            return Ok(());
        }
        write_index(self, &tags)
    }
}

impl Store {
    /// The store's OCI layout, staging its files in the store's `tmp/` (the one place a
    /// crash may leave garbage).
    pub(crate) fn layout(&self) -> Layout {
        Layout::new(self.layout_dir()).with_staging(self.root().join("tmp"))
    }
}

fn write_index(store: &Store, tags: &[Tag]) -> Result<()> {
    let manifests = tags
        .iter()
        .map(|t| {
            let media_type = if t.is_index {
                media::OCI_INDEX
            } else {
                media::OCI_MANIFEST
            };
            let mut entry = Descriptor::new(media_type, t.manifest, t.manifest_size);
            entry
                .annotations
                .insert(REF_NAME_ANNOTATION.to_string(), t.name.clone());
            entry
        })
        .collect();
    Ok(store.layout().write_index(&ImageIndex::new(manifests))?)
}

/// The tags of `index.json`, by name. Entries without a name (another tool's untagged
/// images) are not tags. A size is required by the spec; `index.json` is the store's
/// own, but another tool may have written it, so the entry is read whole.
fn parse_index(bytes: &[u8]) -> std::result::Result<Vec<Tag>, crate::oci::ManifestError> {
    let index = ImageIndex::from_slice(bytes)?;
    let mut tags: BTreeMap<String, Tag> = BTreeMap::new();
    for entry in &index.manifests {
        let Some(name) = entry.ref_name() else {
            continue;
        };
        tags.insert(
            name.to_string(),
            Tag {
                name: name.to_string(),
                manifest: entry.digest,
                manifest_size: entry.size,
                is_index: entry.is_index(),
            },
        );
    }
    Ok(tags.into_values().collect())
}
