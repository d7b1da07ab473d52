//! Images: committing one (config and manifest blobs, its record, its tags), finding
//! one by tag, id or digest as Docker does, listing, removing, and collecting garbage.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use rusqlite::params;

use super::db::{self, parse_digest, LayerRecord};
use super::{remove_tree, snapshot_name, IoContext, Result, Store, StoreError, Tag};
use crate::oci::{
    canonical_json, media, Descriptor, Digest, ImageConfig, ImageIndex, ImageManifest, ImageRef,
    Kind,
};

/// One layer of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    pub blob: Digest,
    pub diff_id: Digest,
    pub media_type: String,
    /// Compressed size.
    pub size: u64,
    /// Uncompressed size.
    pub tar_size: u64,
}

/// An image to commit: its config (with `rootfs.diff_ids` matching `layers`) and layers.
#[derive(Debug, Clone)]
pub struct NewImage {
    pub config: ImageConfig,
    /// The config exactly as another tool wrote it (its digest is the image id, so a
    /// loaded image keeps its id); `None` writes `config` as canonical JSON.
    pub config_bytes: Option<Vec<u8>>,
    pub layers: Vec<LayerInfo>,
}

/// An image in the store.
#[derive(Debug, Clone)]
pub struct Image {
    /// The config digest: Docker's image id.
    pub id: Digest,
    pub manifest_digest: Digest,
    pub manifest_size: u64,
    pub config: ImageConfig,
    pub layers: Vec<LayerInfo>,
    /// Its manifest's annotations (a build's `--annotation`).
    pub annotations: BTreeMap<String, String>,
    /// Tags naming this image's manifest.
    pub tags: Vec<String>,
}

impl Image {
    /// Total uncompressed size of the layers, as `docker images` shows it.
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.tar_size).sum()
    }
}

/// A row of `lade images`: one per tag, and one per untagged image.
#[derive(Debug, Clone)]
pub struct ImageSummary {
    pub tag: Option<String>,
    pub id: Digest,
    pub manifest_digest: Digest,
    pub created: Option<String>,
    pub size: u64,
    /// For a tag naming a multi-platform image: its index, and the platforms the store
    /// holds of it (the row shows the image of this machine's platform, else the first).
    pub index: Option<(Digest, Vec<String>)>,
}

impl Store {
    /// Writes the config and manifest blobs, records the image and points `tags` at it.
    /// The layer blobs must be in the store already.
    pub fn commit_image(&self, image: &NewImage, tags: &[ImageRef]) -> Result<Image> {
        self.commit_annotated_image(image, &BTreeMap::new(), tags)
    }

    /// [`Store::commit_image`] with `annotations` on the image's manifest (a build's
    /// `--annotation`).
    pub fn commit_annotated_image(
        &self,
        image: &NewImage,
        annotations: &BTreeMap<String, String>,
        tags: &[ImageRef],
    ) -> Result<Image> {
        let (config_digest, manifest_digest, manifest_len) =
            self.put_image_blobs(image, annotations)?;
        let size: u64 = image.layers.iter().map(|l| l.tar_size).sum();
        self.with_db(|conn| {
            let tx = conn.transaction()?;
            for layer in &image.layers {
                db::put_layer(
                    &tx,
                    &LayerRecord {
                        blob: layer.blob,
                        diff_id: layer.diff_id,
                        media_type: layer.media_type.clone(),
                        size: layer.size,
                        tar_size: layer.tar_size,
                    },
                )?;
            }
            db::put_image(
                &tx,
                &manifest_digest,
                &config_digest,
                manifest_len,
                image.config.created.as_deref(),
                size,
                now_seconds(),
            )?;
            tx.commit()
        })?;
        for tag in tags {
            self.set_tag(&tag.familiar(), &manifest_digest, manifest_len as u64)?;
        }
        self.image_by_manifest(&manifest_digest)
    }

    /// The config and manifest blobs of `image`, written but not recorded: an image a
    /// build exports (to an archive) without keeping it. Nothing names it, so the next
    /// garbage collection takes its blobs unless something else needs them.
    pub fn unrecorded_image(
        &self,
        image: &NewImage,
        annotations: &BTreeMap<String, String>,
    ) -> Result<Image> {
        let (id, manifest_digest, manifest_len) = self.put_image_blobs(image, annotations)?;
        let config = match &image.config_bytes {
            Some(bytes) => serde_json::from_slice(bytes).map_err(|e| StoreError::Invalid {
                what: format!("image config {id}"),
                reason: e.to_string(),
            })?,
            None => image.config.clone(),
        };
        Ok(Image {
            id,
            manifest_digest,
            manifest_size: manifest_len as u64,
            config,
            layers: image.layers.clone(),
            annotations: annotations.clone(),
            tags: Vec::new(),
        })
    }

    /// Writes `image`'s config and manifest: their digests and the manifest's length.
    fn put_image_blobs(
        &self,
        image: &NewImage,
        annotations: &BTreeMap<String, String>,
    ) -> Result<(Digest, Digest, usize)> {
        let config_bytes = match &image.config_bytes {
            Some(bytes) => bytes.clone(),
            None => canonical_json(&image.config),
        };
        let config_digest = self.put_blob(&config_bytes)?;
        // The bytes oci-spec's builder wrote before, key for key, so digests stay.
        let mut manifest = ImageManifest::new(
            Descriptor::new(media::OCI_CONFIG, config_digest, config_bytes.len() as u64),
            image
                .layers
                .iter()
                .map(|l| Descriptor::new(l.media_type.as_str(), l.blob, l.size))
                .collect(),
        );
        manifest.annotations = annotations.clone();
        let manifest_bytes = canonical_json(&manifest);
        let manifest_digest = self.put_blob(&manifest_bytes)?;
        Ok((config_digest, manifest_digest, manifest_bytes.len()))
    }

    /// Finds an image by tag (`busybox`, `app:1`), manifest digest (`name@sha256:...`),
    /// or id (`sha256:...` or a prefix of its hex digits), as Docker does.
    pub fn image(&self, reference: &str) -> Result<Image> {
        // An exact tag needs no reference parsing (whose regex costs milliseconds to
        // build); anything else goes through the full parser.
        let tags = self.tags()?;
        if let Some(name) = quick_tag_name(reference) {
            if let Some(tag) = tags.iter().find(|t| t.name == name) {
                return self.load_image(&tag.manifest, &tags);
            }
        }
        if let Ok(image_ref) = reference.parse::<ImageRef>() {
            if let Some(digest) = image_ref.digest() {
                let digest: Digest = digest
                    .parse()
                    .map_err(|_| StoreError::NoSuchImage(reference.into()))?;
                if self.has_manifest(&digest, &tags)? {
                    return self.load_image(&digest, &tags);
                }
            } else {
                let name = image_ref.familiar();
                if let Some(tag) = tags.iter().find(|t| t.name == name) {
                    return self.load_image(&tag.manifest, &tags);
                }
            }
        }
        let hex = reference.strip_prefix("sha256:").unwrap_or(reference);
        if !hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let pattern = format!("sha256:{}%", hex.to_ascii_lowercase());
            let matches: Vec<(String, String)> = self.with_db(|conn| {
                let mut stmt = conn.prepare(
                    "SELECT DISTINCT config_digest, manifest_digest FROM images WHERE config_digest LIKE ?1 ORDER BY added",
                )?;
                let rows = stmt.query_map(params![pattern], |row| Ok((row.get(0)?, row.get(1)?)))?;
                rows.collect()
            })?;
            let ids: BTreeSet<&String> = matches.iter().map(|(id, _)| id).collect();
            match ids.len() {
                0 => {}
                1 => {
                    // Prefer a tagged manifest of that config.
                    let manifest = matches
                        .iter()
                        .map(|(_, m)| m)
                        .find(|m| tags.iter().any(|t| t.manifest.to_string() == **m))
                        .unwrap_or(&matches[0].1);
                    return self.load_image(
                        &manifest
                            .parse()
                            .map_err(|_| StoreError::NoSuchImage(reference.into()))?,
                        &tags,
                    );
                }
                _ => return Err(StoreError::Ambiguous(reference.into())),
            }
        }
        Err(StoreError::NoSuchImage(reference.into()))
    }

    fn has_manifest(&self, digest: &Digest, tags: &[Tag]) -> Result<bool> {
        Ok(self.has_blob(digest)
            && (self.with_db(|conn| db::has_image(conn, digest))?
                || tags.iter().any(|t| t.manifest == *digest)))
    }

    /// Loads an image by its manifest digest, recording it if the store did not know it
    /// (a tag written by another tool).
    pub fn image_by_manifest(&self, manifest_digest: &Digest) -> Result<Image> {
        self.load_image(manifest_digest, &self.tags()?)
    }

    /// [`Store::image_by_manifest`] with the tags already read. An index stands for
    /// its default entry (see `platforms`), and its tags name that image too.
    fn load_image(&self, manifest_digest: &Digest, tags: &[Tag]) -> Result<Image> {
        let manifest_bytes = self.read_blob(manifest_digest)?;
        if Kind::of(&manifest_bytes) == Some(Kind::Index) {
            let index =
                ImageIndex::from_slice(&manifest_bytes).map_err(|e| StoreError::Invalid {
                    what: format!("image index {manifest_digest}"),
                    reason: e.to_string(),
                })?;
            let chosen = self
                .default_entry(&index)
                .ok_or_else(|| StoreError::Invalid {
                    what: format!("image index {manifest_digest}"),
                    reason: "the store holds none of its images".into(),
                })?;
            let chosen_bytes = self.read_blob(&chosen)?;
            if Kind::of(&chosen_bytes) == Some(Kind::Index) {
                return Err(StoreError::Invalid {
                    what: format!("image index {manifest_digest}"),
                    reason: format!("its entry {chosen} is an index, not an image"),
                });
            }
            return self.load_manifest(&chosen, chosen_bytes, tags);
        }
        self.load_manifest(manifest_digest, manifest_bytes, tags)
    }

    fn load_manifest(
        &self,
        manifest_digest: &Digest,
        manifest_bytes: Vec<u8>,
        tags: &[Tag],
    ) -> Result<Image> {
        let manifest =
            ImageManifest::from_slice(&manifest_bytes).map_err(|e| StoreError::Invalid {
                what: format!("manifest {manifest_digest}"),
                reason: e.to_string(),
            })?;
        let config_digest = manifest.config.digest;
        let config: ImageConfig = serde_json::from_slice(&self.read_blob(&config_digest)?)
            .map_err(|e| StoreError::Invalid {
                what: format!("image config {config_digest}"),
                reason: e.to_string(),
            })?;
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(StoreError::Invalid {
                what: format!("image {config_digest}"),
                reason: format!(
                    "its config lists {} layers but its manifest {}",
                    config.rootfs.diff_ids.len(),
                    manifest.layers.len()
                ),
            });
        }
        let mut layers = Vec::new();
        for (descriptor, diff_id) in manifest.layers.iter().zip(&config.rootfs.diff_ids) {
            let blob = descriptor.digest;
            let tar_size = self
                .with_db(|conn| db::layer(conn, &blob))?
                .map_or(descriptor.size, |l| l.tar_size);
            layers.push(LayerInfo {
                blob,
                diff_id: *diff_id,
                media_type: descriptor.media_type.clone(),
                size: descriptor.size,
                tar_size,
            });
        }
        let size: u64 = layers.iter().map(|l| l.tar_size).sum();
        // Recorded only when unknown (a tag another tool wrote): every build and every
        // `run` loads images, and a read should not take the database's write lock.
        self.with_db(|conn| {
            if self.read_only || db::has_image(conn, manifest_digest)? {
                return Ok(());
            }
            db::put_image(
                conn,
                manifest_digest,
                &config_digest,
                manifest_bytes.len(),
                config.created.as_deref(),
                size,
                now_seconds(),
            )
        })?;
        let mut names: Vec<String> = Vec::new();
        for tag in tags {
            let names_it = if tag.is_index {
                self.read_index(&tag.manifest)
                    .is_ok_and(|i| i.manifests.iter().any(|d| d.digest == *manifest_digest))
            } else {
                tag.manifest == *manifest_digest
            };
            if names_it {
                names.push(tag.name.clone());
            }
        }
        let tags = names;
        Ok(Image {
            id: config_digest,
            manifest_digest: *manifest_digest,
            manifest_size: manifest_bytes.len() as u64,
            config,
            layers,
            annotations: manifest.annotations,
            tags,
        })
    }

    /// Records that `repository` (`registry/name`) serves this image's manifest as
    /// `digest` (the registry's manifest or index, which may not be the store's own).
    /// Every such digest is kept, as Docker keeps them: two tags pushed or pulled as
    /// different manifests (another compression, another index) are both served.
    pub fn record_repo_digest(
        &self,
        manifest: &Digest,
        repository: &str,
        digest: &Digest,
    ) -> Result<()> {
        self.with_db(|conn| {
            conn.execute(
                "INSERT OR IGNORE INTO repository_digests (manifest, repository, digest) VALUES (?1, ?2, ?3)",
                rusqlite::params![manifest.to_string(), repository, digest.to_string()],
            )
        })?;
        Ok(())
    }

    /// An image's repository digests: `(repository, digest)`.
    pub fn repo_digests(&self, manifest: &Digest) -> Result<Vec<(String, Digest)>> {
        let rows: Vec<(String, String)> = self.with_db(|conn| {
            // A store an older lade made, opened only to read, is not migrated: its
            // table keeps one digest a repository.
            let table: bool = conn.query_row(
                "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'repository_digests'",
                [],
                |row| row.get(0),
            )?;
            let table = if table {
                "repository_digests"
            } else {
                "repo_digests"
            };
            let mut stmt = conn.prepare(&format!(
                "SELECT repository, digest FROM {table} WHERE manifest = ?1 ORDER BY repository, rowid"
            ))?;
            let rows = stmt.query_map(rusqlite::params![manifest.to_string()], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })?;
            rows.collect()
        })?;
        Ok(rows
            .into_iter()
            .filter_map(|(repository, digest)| Some((repository, digest.parse().ok()?)))
            .collect())
    }

    /// Every tag, then every image no tag names.
    pub fn list_images(&self) -> Result<Vec<ImageSummary>> {
        let tags = self.tags()?;
        let mut known: BTreeMap<String, (String, Option<String>, i64)> = self.with_db(|conn| {
            let mut stmt =
                conn.prepare("SELECT manifest_digest, config_digest, created, size FROM images")?;
            let rows = stmt.query_map([], |row| {
                Ok((row.get(0)?, (row.get(1)?, row.get(2)?, row.get(3)?)))
            })?;
            rows.collect()
        })?;
        let mut summaries = Vec::new();
        for tag in &tags {
            let mut manifest = tag.manifest;
            let mut index = None;
            if tag.is_index {
                let document = self.read_index(&tag.manifest)?;
                let Some(chosen) = self.default_entry(&document) else {
                    continue;
                };
                manifest = chosen;
                let platforms = self
                    .platform_entries(&document)
                    .into_iter()
                    .filter(|e| e.present)
                    .map(|e| e.platform.to_string())
                    .collect();
                index = Some((tag.manifest, platforms));
            }
            let key = manifest.to_string();
            if !known.contains_key(&key) {
                let image = self.image_by_manifest(&manifest)?;
                known.insert(
                    key.clone(),
                    (
                        image.id.to_string(),
                        image.config.created.clone(),
                        image.size() as i64,
                    ),
                );
            }
            let (id, created, size) = &known[&key];
            summaries.push(ImageSummary {
                tag: Some(tag.name.clone()),
                id: parse_digest(id.clone()).map_err(|e| self.db_error(e))?,
                manifest_digest: manifest,
                created: created.clone(),
                size: *size as u64,
                index,
            });
        }
        // The images of a tagged multi-platform image are not dangling.
        let mut tagged: BTreeSet<String> = tags.iter().map(|t| t.manifest.to_string()).collect();
        tagged.extend(self.indexed_manifests()?.iter().map(Digest::to_string));
        for (manifest, (id, created, size)) in known {
            if !tagged.contains(&manifest) {
                summaries.push(ImageSummary {
                    tag: None,
                    id: parse_digest(id).map_err(|e| self.db_error(e))?,
                    manifest_digest: parse_digest(manifest).map_err(|e| self.db_error(e))?,
                    created,
                    size: size as u64,
                    index: None,
                });
            }
        }
        Ok(summaries)
    }

    pub(super) fn db_error(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Db {
            path: self.root().join("lade.db"),
            source,
        }
    }

    /// Containers (by name) that use the image with config digest `id`.
    pub fn containers_using(&self, id: &Digest) -> Result<Vec<String>> {
        self.with_db(|conn| {
            let mut stmt =
                conn.prepare("SELECT name FROM containers WHERE image = ?1 ORDER BY name")?;
            let rows = stmt.query_map(params![id.to_string()], |row| row.get(0))?;
            rows.collect()
        })
    }

    /// Docker's `rmi`: a tag is untagged, and the image deleted once nothing names it.
    /// By id, an image with several tags, or one a container uses, needs `force`; one a
    /// container uses is only untagged then.
    /// Returns what was untagged and the ids deleted.
    pub fn remove_image(&self, reference: &str, force: bool) -> Result<(Vec<String>, Vec<Digest>)> {
        if let Some(removed) = self.remove_index_tag(reference)? {
            return Ok(removed);
        }
        let image = self.image(reference)?;
        let by_tag = image.tags.iter().any(|t| {
            reference
                .parse::<ImageRef>()
                .is_ok_and(|r| r.familiar() == *t)
        });
        let users = self.containers_using(&image.id)?;
        let mut untagged = Vec::new();
        if by_tag && image.tags.len() > 1 {
            let name = reference
                .parse::<ImageRef>()
                .map(|r| r.familiar())
                .unwrap_or_default();
            self.remove_tag(&name)?;
            super::events::image_event(self, "untag", &image.id.to_string(), &name);
            return Ok((vec![name], Vec::new()));
        }
        if !by_tag && image.tags.len() > 1 && !force {
            return Err(StoreError::InUse(format!(
                "image {} is referenced by several tags ({}): remove them by name, or use -f",
                image.id.short(),
                image.tags.join(", ")
            )));
        }
        if !users.is_empty() && !force {
            return Err(StoreError::InUse(format!(
                "image {} is used by container(s) {}: remove them first, or use -f",
                image.id.short(),
                users.join(", ")
            )));
        }
        let id = image.id.to_string();
        for tag in &image.tags {
            self.remove_tag(tag)?;
            super::events::image_event(self, "untag", &id, tag);
            untagged.push(tag.clone());
        }
        // Forced, while a container uses it: untagged only, as Docker leaves an image a
        // container runs from; its layers stay for that container (and `images` lists
        // it as <none>).
        if !users.is_empty() {
            return Ok((untagged, Vec::new()));
        }
        self.with_db(|conn| {
            conn.execute(
                "DELETE FROM images WHERE manifest_digest = ?1",
                params![image.manifest_digest.to_string()],
            )
        })?;
        super::events::image_event(self, "delete", &id, &id);
        self.collect_garbage()?;
        Ok((untagged, vec![image.id]))
    }

    /// `rmi` of a tag naming a multi-platform image: the tag goes, and each of its
    /// images that nothing else names or runs is deleted. `None` when `reference` is not
    /// such a tag.
    fn remove_index_tag(&self, reference: &str) -> Result<Option<(Vec<String>, Vec<Digest>)>> {
        let Ok(parsed) = reference.parse::<ImageRef>() else {
            return Ok(None);
        };
        if parsed.digest().is_some() {
            return Ok(None);
        }
        let name = parsed.familiar();
        let Some(tag) = self
            .tags()?
            .into_iter()
            .find(|t| t.name == name && t.is_index)
        else {
            return Ok(None);
        };
        let index = self.read_index(&tag.manifest)?;
        self.remove_tag(&name)?;
        let index_id = tag.manifest.to_string();
        super::events::image_event(self, "untag", &index_id, &name);
        let still_named: BTreeSet<Digest> = self
            .tags()?
            .into_iter()
            .map(|t| t.manifest)
            .chain(self.indexed_manifests()?)
            .collect();
        let mut deleted = Vec::new();
        for entry in self.platform_entries(&index) {
            if !entry.present || still_named.contains(&entry.manifest) {
                continue;
            }
            let Ok(image) = self.image_by_manifest(&entry.manifest) else {
                continue;
            };
            if !self.containers_using(&image.id)?.is_empty() {
                continue;
            }
            self.with_db(|conn| {
                conn.execute(
                    "DELETE FROM images WHERE manifest_digest = ?1",
                    params![entry.manifest.to_string()],
                )
            })?;
            super::events::image_event(
                self,
                "delete",
                &image.id.to_string(),
                &image.id.to_string(),
            );
            deleted.push(image.id);
        }
        self.collect_garbage()?;
        Ok(Some((vec![name], deleted)))
    }

    /// Deletes blobs and snapshots that no image, container or cache record needs.
    /// Does nothing (and returns `None`) while another process is writing content.
    pub fn collect_garbage(&self) -> Result<Option<GcStats>> {
        let Some(_lock) = self.try_gc_lock()? else {
            return Ok(None);
        };
        let mut blobs: BTreeSet<Digest> = BTreeSet::new();
        let mut snapshots: BTreeSet<String> = BTreeSet::new();
        let mut manifests: BTreeSet<Digest> = BTreeSet::new();
        for tag in self.tags()? {
            if tag.is_index {
                // The index itself, and every entry of it the store holds.
                blobs.insert(tag.manifest);
                if let Ok(index) = self.read_index(&tag.manifest) {
                    manifests.extend(index.manifests.iter().map(|d| d.digest));
                }
            } else {
                manifests.insert(tag.manifest);
            }
        }
        let recorded: Vec<String> = self.with_db(|conn| {
            let mut stmt = conn.prepare(
                "SELECT manifest_digest FROM images
                 UNION SELECT manifest_digest FROM images WHERE config_digest IN (SELECT image FROM containers)",
            )?;
            let rows = stmt.query_map([], |row| row.get(0))?;
            rows.collect()
        })?;
        for m in recorded {
            manifests.insert(parse_digest(m).map_err(|e| self.db_error(e))?);
        }
        for extra in self.gc_roots()? {
            match extra {
                GcRoot::Blob(d) => {
                    blobs.insert(d);
                }
                GcRoot::Snapshot(d) => {
                    snapshots.insert(snapshot_name(&d));
                }
            }
        }
        for manifest in &manifests {
            let Ok(image) = self.image_by_manifest(manifest) else {
                continue;
            };
            blobs.insert(*manifest);
            blobs.insert(image.id);
            for layer in &image.layers {
                blobs.insert(layer.blob);
                snapshots.insert(snapshot_name(&layer.diff_id));
            }
        }
        let mut stats = GcStats::default();
        let blob_dir = self.layout_dir().join("blobs/sha256");
        for entry in fs::read_dir(&blob_dir).at(&blob_dir)?.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let keep = Digest::from_hex(&name).is_ok_and(|d| blobs.contains(&d));
            if !keep {
                stats.bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
                stats.blobs += 1;
                let _ = fs::remove_file(entry.path());
            }
        }
        let snapshot_dir = self.snapshots_dir();
        for entry in fs::read_dir(&snapshot_dir).at(&snapshot_dir)?.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if !snapshots.contains(&name) {
                stats.snapshots += 1;
                // Renamed away first: a removal cut short never leaves a partial snapshot
                // under a name a later build would trust.
                let trash = self.tmp_path("trash");
                if fs::rename(entry.path(), &trash).is_ok() {
                    remove_tree(&trash);
                }
            }
        }
        self.with_db(|conn| {
            let mut stmt = conn.prepare("SELECT blob_digest FROM layers")?;
            let all: Vec<String> = stmt
                .query_map([], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            for blob in all {
                if parse_digest(blob.clone()).is_ok_and(|d| !blobs.contains(&d)) {
                    conn.execute("DELETE FROM layers WHERE blob_digest = ?1", params![blob])?;
                }
            }
            let mut stmt = conn.prepare("SELECT name FROM snapshots")?;
            let recorded: Vec<String> = stmt
                .query_map([], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            for name in recorded.iter().filter(|n| !snapshots.contains(*n)) {
                conn.execute("DELETE FROM snapshots WHERE name = ?1", params![name])?;
            }
            Ok(())
        })?;
        Ok(Some(stats))
    }

    /// Blobs and snapshots kept alive by something other than images (the build cache).
    fn gc_roots(&self) -> Result<Vec<GcRoot>> {
        self.with_db(|conn| {
            let mut stmt =
                conn.prepare("SELECT blob, diff_id FROM cache_records WHERE blob IS NOT NULL")?;
            let rows = stmt.query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })?;
            let mut roots = Vec::new();
            for row in rows {
                let (blob, diff_id) = row?;
                roots.push(GcRoot::Blob(parse_digest(blob)?));
                roots.push(GcRoot::Snapshot(parse_digest(diff_id)?));
            }
            Ok(roots)
        })
    }
}

enum GcRoot {
    Blob(Digest),
    Snapshot(Digest),
}

/// What garbage collection removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcStats {
    pub blobs: u64,
    pub bytes: u64,
    pub snapshots: u64,
}

/// Docker's short form of a plain name (no digest): `docker.io/library/x` is `x`, and a
/// name without a tag is `:latest`. Only used to look a tag up, never to validate.
fn quick_tag_name(reference: &str) -> Option<String> {
    if reference.contains('@') || reference.is_empty() {
        return None;
    }
    let name = reference
        .strip_prefix("docker.io/library/")
        .or_else(|| reference.strip_prefix("docker.io/"))
        .unwrap_or(reference);
    let tagged = name
        .rsplit('/')
        .next()
        .is_some_and(|last| last.contains(':'));
    Some(if tagged {
        name.to_string()
    } else {
        format!("{name}:latest")
    })
}

pub(crate) fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The media type lade writes for a layer compressed with `compression`.
pub fn layer_media_type(compression: &str) -> &'static str {
    match compression {
        "gzip" => media::OCI_LAYER_GZIP,
        "none" => media::OCI_LAYER_TAR,
        _ => media::OCI_LAYER_ZSTD,
    }
}
