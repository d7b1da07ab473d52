//! Tags, kept in the OCI layout's `index.json` as `org.opencontainers.image.ref.name`
//! annotations (Docker's short form: `app:1`, `busybox:latest`), so that
//! `skopeo inspect oci:<root>/oci:app:1` finds them. Changes are read-modify-write under
//! a file lock and replace the file atomically.

use std::collections::BTreeMap;
use std::fs::{self, File};

use serde_json::{json, Value};

use super::{blobs::write_atomically, IoContext, Result, Store, StoreError};
use crate::oci::{media, Digest, REF_NAME_ANNOTATION};

/// A tag and the manifest it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// Docker's short form, e.g. `busybox:latest`.
    pub name: String,
    pub manifest: Digest,
    pub manifest_size: u64,
}

impl Store {
    pub(crate) fn index_init(&self) -> Result<()> {
        let path = self.layout_dir().join("index.json");
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
        let path = self.layout_dir().join("index.json");
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
        self.update_tags(|tags| {
            tags.retain(|t| t.name != name);
            tags.push(Tag {
                name: name.to_string(),
                manifest: *manifest,
                manifest_size,
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

fn write_index(store: &Store, tags: &[Tag]) -> Result<()> {
    let manifests: Vec<Value> = tags
        .iter()
        .map(|t| {
            json!({
                "mediaType": media::OCI_MANIFEST,
                "digest": t.manifest.to_string(),
                "size": t.manifest_size,
                "annotations": { REF_NAME_ANNOTATION: t.name },
            })
        })
        .collect();
    let index = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": manifests,
    });
    let path = store.layout_dir().join("index.json");
    write_atomically(store.root(), &path, &crate::oci::canonical_json(&index))
}

/// Why `index.json` cannot be read as the store's tags.
#[derive(Debug, thiserror::Error)]
enum IndexProblem {
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Digest(#[from] crate::oci::DigestError),
}

fn parse_index(bytes: &[u8]) -> std::result::Result<Vec<Tag>, IndexProblem> {
    let index: Value = serde_json::from_slice(bytes)?;
    let mut tags: BTreeMap<String, Tag> = BTreeMap::new();
    for entry in index["manifests"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let Some(name) = entry["annotations"][REF_NAME_ANNOTATION].as_str() else {
            continue;
        };
        let manifest: Digest = entry["digest"].as_str().unwrap_or_default().parse()?;
        let manifest_size = entry["size"].as_u64().unwrap_or(0);
        tags.insert(
            name.to_string(),
            Tag {
                name: name.to_string(),
                manifest,
                manifest_size,
            },
        );
    }
    Ok(tags.into_values().collect())
}
