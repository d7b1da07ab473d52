//! `--cache-to` and `--cache-from` with a local directory: the build cache carried to
//! another machine as a plain OCI image layout. Its one manifest (named
//! `lade-build-cache` in `index.json`) has the cache records as its config and their
//! layers as its layers, so any OCI tool can copy it (to a registry, later) as it is.
//!
//! Importing is lazy: records are read up front, a layer is copied into the store (and
//! its digest checked) only when a step hits on it.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::BuildError;
use crate::oci::{canonical_json, media, Digest, REF_NAME_ANNOTATION};
use crate::store::{CacheRecord, LayerInfo, Store};

/// The config media type of a cache manifest.
pub const CACHE_CONFIG_MEDIA_TYPE: &str = "application/vnd.lade.build-cache.v1+json";
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
        let index_path = dir.join("index.json");
        if !index_path.exists() {
            return Ok(cache);
        }
        cache.found = true;
        let index: serde_json::Value = serde_json::from_slice(
            &fs::read(&index_path).map_err(|e| layout_error(dir, format!("index.json: {e}")))?,
        )
        .map_err(|e| layout_error(dir, format!("index.json: {e}")))?;
        let manifests = index["manifests"].as_array().cloned().unwrap_or_default();
        let Some(entry) = manifests
            .iter()
            .find(|m| m["annotations"][REF_NAME_ANNOTATION] == CACHE_REF_NAME)
        else {
            return Err(layout_error(
                dir,
                format!("index.json names no {CACHE_REF_NAME:?} manifest: not a lade build cache"),
            ));
        };
        let manifest_digest = parse_digest(dir, &entry["digest"])?;
        let manifest: serde_json::Value =
            serde_json::from_slice(&read_verified(dir, &manifest_digest)?)
                .map_err(|e| layout_error(dir, format!("manifest: {e}")))?;
        if manifest["config"]["mediaType"] != CACHE_CONFIG_MEDIA_TYPE {
            return Err(layout_error(
                dir,
                format!("the manifest's config is not {CACHE_CONFIG_MEDIA_TYPE}"),
            ));
        }
        let config_digest = parse_digest(dir, &manifest["config"]["digest"])?;
        let config: CacheConfig = serde_json::from_slice(&read_verified(dir, &config_digest)?)
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

    /// The record for `key`, as it would be imported (nothing is copied).
    pub(crate) fn peek(&self, key: &str) -> Option<CacheRecord> {
        let record = self.records.get(key)?;
        Some(CacheRecord {
            key: record.key.clone(),
            kind: record.kind.clone(),
            step: record.step.clone(),
            stage: record.stage.clone(),
            layer: None,
            created: record.created.clone(),
            created_at: record.created_at,
            last_used: record.created_at,
            inputs: String::new(),
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
                let path = blob_path(&self.dir, &layer.digest);
                let mut file = File::open(&path).map_err(|source| BuildError::Io {
                    path: path.clone(),
                    source,
                })?;
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

fn parse_digest(dir: &Path, value: &serde_json::Value) -> Result<Digest, BuildError> {
    value
        .as_str()
        .unwrap_or_default()
        .parse()
        .map_err(|e| layout_error(dir, format!("bad digest {value}: {e}")))
}

fn blob_path(dir: &Path, digest: &Digest) -> PathBuf {
    dir.join("blobs/sha256").join(digest.hex())
}

fn read_verified(dir: &Path, digest: &Digest) -> Result<Vec<u8>, BuildError> {
    let path = blob_path(dir, digest);
    let bytes =
        fs::read(&path).map_err(|e| layout_error(dir, format!("{}: {e}", path.display())))?;
    if Digest::of(&bytes) != *digest {
        return Err(layout_error(
            dir,
            format!("{} does not match its digest", path.display()),
        ));
    }
    Ok(bytes)
}

/// Writes the records `keys` name, with their layers, as the cache at `dir`, replacing
/// what it held: blobs first, then `index.json` by an atomic rename, then blobs no longer
/// named are removed. A crash leaves either the old cache or the new one.
pub(crate) fn export(store: &Store, dir: &Path, keys: &[String]) -> Result<usize, BuildError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BuildError::Io { path, source }
    };
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).map_err(io(&blobs))?;
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
        let target = blob_path(dir, digest);
        if target.exists() {
            continue;
        }
        let mut source = store.open_blob(digest)?;
        write_file(dir, &target, |file| {
            std::io::copy(&mut source, file).map(|_| ())
        })?;
    }
    let count = records.len();
    let config = canonical_json(&CacheConfig {
        version: 1,
        records,
    });
    let config_digest = Digest::of(&config);
    write_file(dir, &blob_path(dir, &config_digest), |f| {
        f.write_all(&config)
    })?;
    let layer_descriptors: Vec<serde_json::Value> = layers
        .values()
        .map(|l| json!({ "mediaType": l.media_type, "digest": l.digest.to_string(), "size": l.size }))
        .collect();
    let manifest = canonical_json(&json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "artifactType": CACHE_CONFIG_MEDIA_TYPE,
        "config": {
            "mediaType": CACHE_CONFIG_MEDIA_TYPE,
            "digest": config_digest.to_string(),
            "size": config.len(),
        },
        "layers": layer_descriptors,
    }));
    let manifest_digest = Digest::of(&manifest);
    write_file(dir, &blob_path(dir, &manifest_digest), |f| {
        f.write_all(&manifest)
    })?;
    write_file(dir, &dir.join("oci-layout"), |f| {
        f.write_all(br#"{"imageLayoutVersion":"1.0.0"}"#)
    })?;
    let index = canonical_json(&json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": [{
            "mediaType": media::OCI_MANIFEST,
            "artifactType": CACHE_CONFIG_MEDIA_TYPE,
            "digest": manifest_digest.to_string(),
            "size": manifest.len(),
            "annotations": { REF_NAME_ANNOTATION: CACHE_REF_NAME },
        }],
    }));
    write_file(dir, &dir.join("index.json"), |f| f.write_all(&index))?;
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

/// Writes a file next to its final place, syncs it and renames it there.
fn write_file(
    dir: &Path,
    target: &Path,
    fill: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<(), BuildError> {
    let tmp = dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    let result = (|| {
        let mut file = File::create(&tmp)?;
        fill(&mut file)?;
        file.sync_all()?;
        fs::rename(&tmp, target)
    })();
    result.map_err(|source| {
        let _ = fs::remove_file(&tmp);
        BuildError::Io {
            path: target.to_path_buf(),
            source,
        }
    })
}
