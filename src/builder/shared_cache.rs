//! `--cache-to` and `--cache-from` with a local directory: the build cache carried to
//! another machine as a plain OCI image layout. Its one manifest (named
//! `lade-build-cache` in `index.json`) has the cache records as its config and their
//! layers as its layers, so any OCI tool can copy it (to a registry, later) as it is.
//!
//! Importing is lazy: records are read up front, a layer is copied into the store (and
//! its digest checked) only when a step hits on it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::BuildError;
use crate::oci::{
    canonical_json, media, Descriptor, Digest, ImageIndex, ImageManifest, Layout, LayoutError,
    REF_NAME_ANNOTATION,
};
use crate::store::{CacheRecord, LayerInfo, Store};

/// The config media type of a cache manifest.
pub const CACHE_CONFIG_MEDIA_TYPE: &str = media::LADE_BUILD_CACHE;
/// The name of the cache manifest in `index.json`.
pub const CACHE_REF_NAME: &str = "lade-build-cache";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ExportedLayer {
    digest: Digest,
    diff_id: Digest,
    media_type: String,
    size: u64,
    tar_size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ExportedRecord {
    key: String,
    kind: String,
    step: String,
    stage: String,
    layer: Option<ExportedLayer>,
    created: String,
    created_at: i64,
    /// The inputs as stored (JSON text).
    inputs: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CacheConfig {
    version: u32,
    records: Vec<ExportedRecord>,
}

/// A layout error as the cache's: it names the file, this names the cache directory.
fn layout_failure(dir: &Path) -> impl FnOnce(LayoutError) -> BuildError + '_ {
    move |e| layout_error(dir, e)
}

fn layout_error(dir: &Path, message: impl std::fmt::Display) -> BuildError {
    BuildError::CacheLayout {
        dir: dir.to_path_buf(),
        problem: message.to_string(),
    }
}

/// A cache directory to import from.
pub(crate) struct ImportedCache {
    dir: PathBuf,
    records: BTreeMap<String, ExportedRecord>,
    /// The directory held a cache (it may still have no records).
    found: bool,
}

impl ImportedCache {
    /// Why this cache brings nothing, if it is because there was none to read.
    pub(crate) fn absence(&self) -> Option<String> {
        (!self.found).then(|| {
            format!(
                "--cache-from {}: no cache there (yet); building without it",
                self.dir.display()
            )
        })
    }

    /// Reads the records of the cache at `dir`. A directory that does not exist yet is an
    /// empty cache (the first build of a CI pipeline has nothing to import).
    pub(crate) fn open(dir: &Path) -> Result<ImportedCache, BuildError> {
        let mut cache = ImportedCache {
            dir: dir.to_path_buf(),
            records: BTreeMap::new(),
            found: false,
        };
        let layout = Layout::new(dir);
        if !layout.has_index() {
            return Ok(cache);
        }
        cache.found = true;
        let index = layout.read_index().map_err(layout_failure(dir))?;
        let Some(entry) = index.named(CACHE_REF_NAME) else {
            return Err(layout_error(
                dir,
                format!("index.json names no {CACHE_REF_NAME:?} manifest: not a lade build cache"),
            ));
        };
        let (_, manifest) = layout
            .read_manifest(&entry.digest)
            .map_err(layout_failure(dir))?;
        if manifest.config.media_type != CACHE_CONFIG_MEDIA_TYPE {
            return Err(layout_error(
                dir,
                format!("the manifest's config is not {CACHE_CONFIG_MEDIA_TYPE}"),
            ));
        }
        let config_digest = manifest.config.digest;
        let config_bytes = layout
            .read_blob(&config_digest)
            .map_err(layout_failure(dir))?;
        let config: CacheConfig = serde_json::from_slice(&config_bytes)
            .map_err(|e| layout_error(dir, format!("cache records: {e}")))?;
        if config.version != 1 {
            return Err(layout_error(
                dir,
                format!("cache format version {} is not supported", config.version),
            ));
        }
        cache.records = config
            .records
            .into_iter()
            .map(|r| (r.key.clone(), r))
            .collect();
        Ok(cache)
    }

    /// The record for `key`, as it would be imported (nothing is copied). Its layer is
    /// described, so that the steps after it get the keys a build would give them.
    pub(crate) fn peek(&self, key: &str) -> Option<CacheRecord> {
        let record = self.records.get(key)?;
        Some(CacheRecord {
            key: record.key.clone(),
            kind: record.kind.clone(),
            step: record.step.clone(),
            stage: record.stage.clone(),
            layer: record.layer.as_ref().map(|layer| LayerInfo {
                blob: layer.digest,
                diff_id: layer.diff_id,
                media_type: layer.media_type.clone(),
                size: layer.size,
                tar_size: layer.tar_size,
            }),
            created: record.created.clone(),
            created_at: record.created_at,
            last_used: record.created_at,
            inputs: record.inputs.clone(),
        })
    }

    /// The record for `key`, copied with its layer into the store, if this cache has it.
    pub(crate) fn take(
        &self,
        store: &Store,
        key: &str,
        now: i64,
    ) -> Result<Option<CacheRecord>, BuildError> {
        let Some(record) = self.records.get(key) else {
            return Ok(None);
        };
        let layer = match &record.layer {
            Some(layer) => {
                let mut file = Layout::new(&self.dir)
                    .open_blob(&layer.digest)
                    .map_err(layout_failure(&self.dir))?;
                store.copy_blob(&mut file, &layer.digest)?;
                Some(LayerInfo {
                    blob: layer.digest,
                    diff_id: layer.diff_id,
                    media_type: layer.media_type.clone(),
                    size: layer.size,
                    tar_size: layer.tar_size,
                })
            }
            None => None,
        };
        let imported = CacheRecord {
            key: record.key.clone(),
            kind: record.kind.clone(),
            step: record.step.clone(),
            stage: record.stage.clone(),
            layer,
            created: record.created.clone(),
            created_at: record.created_at,
            last_used: now,
            inputs: record.inputs.clone(),
        };
        store.put_cache_record(&imported)?;
        Ok(Some(imported))
    }
}

/// Writes the records `keys` name, with their layers, as the cache at `dir`, replacing
/// what it held: blobs first, then `index.json` by an atomic rename, then blobs no longer
/// named are removed. A crash leaves either the old cache or the new one.
pub(crate) fn export(store: &Store, dir: &Path, keys: &[String]) -> Result<usize, BuildError> {
    let layout = Layout::new(dir);
    layout.create_dirs().map_err(layout_failure(dir))?;
    let blobs = dir.join("blobs/sha256");
    let mut records = Vec::new();
    let mut layers: BTreeMap<Digest, ExportedLayer> = BTreeMap::new();
    let mut seen = std::collections::BTreeSet::new();
    for key in keys {
        if !seen.insert(key) {
            continue;
        }
        let Some(record) = store.cache_record_full(key)? else {
            continue;
        };
        let layer = record.layer.as_ref().map(|l| ExportedLayer {
            digest: l.blob,
            diff_id: l.diff_id,
            media_type: l.media_type.clone(),
            size: l.size,
            tar_size: l.tar_size,
        });
        if let Some(layer) = &layer {
            layers.insert(layer.digest, layer.clone());
        }
        records.push(ExportedRecord {
            key: record.key,
            kind: record.kind,
            step: record.step,
            stage: record.stage,
            layer,
            created: record.created,
            created_at: record.created_at,
            inputs: record.inputs,
        });
    }
    records.sort_by(|a, b| a.key.cmp(&b.key));
    for digest in layers.keys() {
        if layout.blob_path(digest).exists() {
            continue;
        }
        // The store's reader checks the digest as it streams.
        let mut source = store.open_blob(digest)?;
        layout
            .write_blob_with(digest, |file| std::io::copy(&mut source, file).map(|_| ()))
            .map_err(layout_failure(dir))?;
    }
    let count = records.len();
    let config = canonical_json(&CacheConfig {
        version: 1,
        records,
    });
    let config_digest = layout.write_blob(&config).map_err(layout_failure(dir))?;
    let mut manifest = ImageManifest::new(
        Descriptor::new(CACHE_CONFIG_MEDIA_TYPE, config_digest, config.len() as u64),
        layers
            .values()
            .map(|l| Descriptor::new(l.media_type.as_str(), l.digest, l.size))
            .collect(),
    );
    manifest.artifact_type = Some(CACHE_CONFIG_MEDIA_TYPE.to_string());
    let manifest = manifest.to_canonical_json();
    let manifest_digest = layout.write_blob(&manifest).map_err(layout_failure(dir))?;
    let mut entry = Descriptor::new(media::OCI_MANIFEST, manifest_digest, manifest.len() as u64);
    entry.artifact_type = Some(CACHE_CONFIG_MEDIA_TYPE.to_string());
    entry
        .annotations
        .insert(REF_NAME_ANNOTATION.to_string(), CACHE_REF_NAME.to_string());
    layout
        .write_index(&ImageIndex::new(vec![entry]))
        .map_err(layout_failure(dir))?;
    let mut keep: std::collections::BTreeSet<String> = layers.keys().map(|d| d.hex()).collect();
    keep.insert(config_digest.hex());
    keep.insert(manifest_digest.hex());
    if let Ok(entries) = fs::read_dir(&blobs) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !keep.contains(&name) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
    Ok(count)
}
