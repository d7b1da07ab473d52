//! The build cache's records: what each cached step produced and the inputs behind its
//! key; the last key built at each Dockerfile site (to explain a miss); the keys behind
//! each built image; the stat cache of context files (so an unchanged file is never read
//! twice); and pruning, which deletes records in one transaction and then lets garbage
//! collection free what nothing needs any more.
//!
//! The stat cache of a context is a file of its own under `contexts/`, not a row of the
//! database: it is read whole by every build (a megabyte for 10,000 files), which costs
//! milliseconds through SQLite's overflow pages and a fraction of one from a file. It is
//! only a cache: replaced by rename, never synced, and ignored when it does not parse.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use rusqlite::{params, OptionalExtension};

use super::db::parse_digest;
use super::{remove_tree, GcStats, IoContext, LayerInfo, Result, Store};
use crate::oci::Digest;

/// A cached step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheRecord {
    /// blake3 hex.
    pub key: String,
    /// `COPY`, `ADD`, `RUN` or `WORKDIR`.
    pub kind: String,
    /// The instruction as written.
    pub step: String,
    /// The stage and Dockerfile it was built for, for people.
    pub stage: String,
    /// The layer it made; `None` when it changed nothing.
    pub layer: Option<LayerInfo>,
    /// When its result was made (RFC 3339): the history time of the step.
    pub created: String,
    pub created_at: i64,
    pub last_used: i64,
    /// What went into the key, as JSON (file hashes, command, environment...).
    pub inputs: String,
}

/// How closely `last_used` follows use, in seconds. Rebuilding within this time of the
/// last use changes nothing in the database, so a no-op rebuild writes nothing and
/// flushes nothing to disk; `prune --filter until=` and `--keep-storage` work on
/// minutes and more.
pub const LAST_USED_PRECISION: i64 = 60;

const COLUMNS: &str = "key, kind, step, stage, blob, diff_id, media_type, size, tar_size, created, created_at, last_used, inputs";

fn record_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<CacheRecord> {
    let blob: Option<String> = row.get(4)?;
    let layer = match blob {
        Some(blob) => Some(LayerInfo {
            blob: parse_digest(blob)?,
            diff_id: parse_digest(row.get::<_, String>(5)?)?,
            media_type: row.get(6)?,
            size: row.get::<_, i64>(7)? as u64,
            tar_size: row.get::<_, i64>(8)? as u64,
        }),
        None => None,
    };
    Ok(CacheRecord {
        key: row.get(0)?,
        kind: row.get(1)?,
        step: row.get(2)?,
        stage: row.get(3)?,
        layer,
        created: row.get(9)?,
        created_at: row.get(10)?,
        last_used: row.get(11)?,
        inputs: row.get(12)?,
    })
}

impl Store {
    pub fn put_cache_record(&self, record: &CacheRecord) -> Result<()> {
        let layer = record.layer.as_ref();
        self.with_db(|conn| {
            conn.execute(
                &format!("INSERT OR REPLACE INTO cache_records ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"),
                params![
                    record.key,
                    record.kind,
                    record.step,
                    record.stage,
                    layer.map(|l| l.blob.to_string()),
                    layer.map(|l| l.diff_id.to_string()),
                    layer.map(|l| l.media_type.clone()),
                    layer.map(|l| l.size as i64),
                    layer.map(|l| l.tar_size as i64),
                    record.created,
                    record.created_at,
                    record.last_used,
                    record.inputs
                ],
            )
        })?;
        Ok(())
    }

    /// A record without its inputs (which can be large): what a cache hit needs.
    pub fn cache_record(&self, key: &str) -> Result<Option<CacheRecord>> {
        self.with_db(|conn| {
            conn.query_row(
                "SELECT key, kind, step, stage, blob, diff_id, media_type, size, tar_size, created, created_at, last_used, '' FROM cache_records WHERE key = ?1",
                params![key],
                record_from_row,
            )
            .optional()
        })
    }

    /// A record with its inputs.
    pub fn cache_record_full(&self, key: &str) -> Result<Option<CacheRecord>> {
        self.with_db(|conn| {
            conn.query_row(
                &format!("SELECT {COLUMNS} FROM cache_records WHERE key = ?1"),
                params![key],
                record_from_row,
            )
            .optional()
        })
    }

    /// Records whose key starts with `prefix`.
    pub fn cache_records_by_prefix(&self, prefix: &str) -> Result<Vec<CacheRecord>> {
        self.with_db(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {COLUMNS} FROM cache_records WHERE key LIKE ?1"
            ))?;
            let rows = stmt.query_map(params![format!("{prefix}%")], record_from_row)?;
            rows.collect()
        })
    }

    /// Every record, most recently used first, without inputs.
    pub fn cache_records(&self) -> Result<Vec<CacheRecord>> {
        self.with_db(|conn| {
            let mut stmt = conn.prepare(
                "SELECT key, kind, step, stage, blob, diff_id, media_type, size, tar_size, created, created_at, last_used, '' FROM cache_records ORDER BY last_used DESC",
            )?;
            let rows = stmt.query_map([], record_from_row)?;
            rows.collect()
        })
    }

    pub fn touch_cache_records(&self, keys: &[String], now: i64) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        self.with_db(|conn| {
            let tx = conn.transaction()?;
            {
                let mut stmt =
                    tx.prepare("UPDATE cache_records SET last_used = ?2 WHERE key = ?1")?;
                for key in keys {
                    stmt.execute(params![key, now])?;
                }
            }
            tx.commit()
        })
    }

    pub fn delete_cache_records(&self, keys: &[String]) -> Result<()> {
        self.with_db(|conn| {
            let tx = conn.transaction()?;
            {
                let mut stmt = tx.prepare("DELETE FROM cache_records WHERE key = ?1")?;
                for key in keys {
                    stmt.execute(params![key])?;
                }
            }
            tx.commit()
        })
    }

    /// The key last built at a site.
    pub fn cache_site(&self, site: &str) -> Result<Option<String>> {
        self.with_db(|conn| {
            conn.query_row(
                "SELECT key FROM cache_sites WHERE site = ?1",
                params![site],
                |row| row.get(0),
            )
            .optional()
        })
    }

    /// After a build: the key each site now has, and the records it used (their
    /// `last_used` becomes `now`, unless it is already within [`LAST_USED_PRECISION`]
    /// of it), in one transaction.
    pub fn finish_cache_use(
        &self,
        sites: &[(String, String)],
        used: &[String],
        now: i64,
    ) -> Result<()> {
        if sites.is_empty() && used.is_empty() {
            return Ok(());
        }
        self.with_db(|conn| {
            let tx = conn.transaction()?;
            {
                let mut stmt = tx.prepare(
                    "INSERT INTO cache_sites (site, key, updated) VALUES (?1, ?2, ?3)
                     ON CONFLICT(site) DO UPDATE SET key = excluded.key, updated = excluded.updated
                     WHERE key != excluded.key",
                )?;
                for (site, key) in sites {
                    stmt.execute(params![site, key, now])?;
                }
                let mut stmt = tx.prepare(
                    "UPDATE cache_records SET last_used = ?2 WHERE key = ?1 AND last_used < ?3",
                )?;
                for key in used {
                    stmt.execute(params![key, now, now - LAST_USED_PRECISION])?;
                }
            }
            tx.commit()
        })
    }

    /// Remembers which step (text and key) made each history entry of a built image,
    /// for `lade cache inspect IMAGE`.
    pub fn set_built_image(&self, image: &Digest, steps_json: &str) -> Result<()> {
        self.with_db(|conn| {
            conn.execute(
                "INSERT INTO built_images (image, steps) VALUES (?1, ?2)
                 ON CONFLICT(image) DO UPDATE SET steps = excluded.steps WHERE steps != excluded.steps",
                params![image.to_string(), steps_json],
            )
        })?;
        Ok(())
    }

    pub fn built_image(&self, image: &Digest) -> Result<Option<String>> {
        self.with_db(|conn| {
            conn.query_row(
                "SELECT steps FROM built_images WHERE image = ?1",
                params![image.to_string()],
                |row| row.get(0),
            )
            .optional()
        })
    }

    /// Where the stat caches of build contexts live.
    fn contexts_dir(&self) -> PathBuf {
        self.root().join("contexts")
    }

    /// The file of the stat cache of the context directory `root` (canonical).
    pub fn stat_cache_path(&self, root: &str) -> PathBuf {
        let name = Digest::of(root.as_bytes()).hex();
        self.contexts_dir().join(&name[..32])
    }

    /// The stat cache of one context directory, as stored.
    pub fn stat_cache(&self, root: &str) -> Result<Option<Vec<u8>>> {
        let path = self.stat_cache_path(root);
        match fs::read(&path) {
            Ok(data) => Ok(Some(data)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(super::StoreError::Io { path, source: e }),
        }
    }

    pub fn set_stat_cache(&self, root: &str, data: &[u8]) -> Result<()> {
        let dir = self.contexts_dir();
        fs::create_dir_all(&dir).at(&dir)?;
        let path = self.stat_cache_path(root);
        let tmp = self.tmp_path("stat-cache");
        // Not fsynced: after a crash the file may be empty or cut short, and then it fails
        // its own checks and the next build simply hashes again. Only speed is at stake.
        fs::write(&tmp, data).at(&tmp)?;
        fs::rename(&tmp, &path).at(&path)
    }
}

/// What `lade cache prune` removes.
#[derive(Debug, Clone, Default)]
pub struct PruneOptions {
    /// Every record, used by an image or not, and the cache mounts.
    pub all: bool,
    /// Only what was last used before this time (Unix seconds).
    pub unused_since: Option<i64>,
    /// Stop once the cache takes no more than this many bytes (oldest go first).
    pub keep_storage: Option<u64>,
}

/// What pruning did.
#[derive(Debug, Clone, Default)]
pub struct PruneReport {
    pub records: u64,
    pub cache_mounts: u64,
    /// `None` when another process was writing content, so nothing could be freed yet.
    pub gc: Option<GcStats>,
    pub cache_mounts_busy: bool,
}

/// Space the cache takes, by kind.
#[derive(Debug, Clone, Default)]
pub struct CacheUsage {
    pub records: u64,
    /// Layer blobs only cache records keep (count, bytes), and those images share.
    pub layers: (u64, u64),
    pub shared_layers: (u64, u64),
    /// Unpacked layers (count, bytes).
    pub snapshots: (u64, u64),
    /// `RUN --mount=type=cache` directories (count, bytes).
    pub cache_mounts: (u64, u64),
    /// Stored file hashes of build contexts (contexts, bytes).
    pub context_hashes: (u64, u64),
}

impl Store {
    /// Where `RUN --mount=type=cache` directories live.
    pub fn cache_mounts_dir(&self) -> PathBuf {
        self.root().join("cache-mounts")
    }

    /// Layer blobs of every image that is kept (tagged, or used by a container).
    fn image_layer_blobs(&self) -> Result<BTreeSet<Digest>> {
        let mut blobs = BTreeSet::new();
        for image in self.list_images()? {
            if let Ok(image) = self.image_by_manifest(&image.manifest_digest) {
                blobs.extend(image.layers.iter().map(|l| l.blob));
            }
        }
        Ok(blobs)
    }

    /// Deletes cache records as `options` says, then collects garbage.
    pub fn prune_cache(&self, options: &PruneOptions) -> Result<PruneReport> {
        let in_images = if options.all {
            BTreeSet::new()
        } else {
            self.image_layer_blobs()?
        };
        // Oldest first: `--keep-storage` removes from the front.
        let mut candidates: Vec<CacheRecord> = self.cache_records()?;
        candidates.reverse();
        let total: u64 = distinct_size(candidates.iter());
        candidates.retain(|r| {
            options.all
                || r.layer
                    .as_ref()
                    .is_none_or(|l| !in_images.contains(&l.blob))
        });
        if let Some(before) = options.unused_since {
            candidates.retain(|r| r.last_used < before);
        }
        if let Some(limit) = options.keep_storage {
            let mut remaining = total;
            let mut chosen = Vec::new();
            let mut counted: BTreeSet<Digest> = BTreeSet::new();
            for record in candidates {
                if remaining <= limit {
                    break;
                }
                if let Some(layer) = &record.layer {
                    if counted.insert(layer.blob) {
                        remaining = remaining.saturating_sub(layer.size);
                    }
                }
                chosen.push(record);
            }
            candidates = chosen;
        }
        let keys: Vec<String> = candidates.iter().map(|r| r.key.clone()).collect();
        self.delete_cache_records(&keys)?;
        let mut report = PruneReport {
            records: keys.len() as u64,
            ..PruneReport::default()
        };
        if options.all {
            match self.try_gc_lock()? {
                Some(_lock) => {
                    report.cache_mounts = self.remove_cache_mounts(options.unused_since)?;
                    // Sites stay: they are tiny, and let the next build say that its
                    // steps' results were pruned rather than never built.
                    let contexts = self.contexts_dir();
                    if contexts.exists() {
                        let trash = self.tmp_path("trash");
                        fs::rename(&contexts, &trash).at(&contexts)?;
                        remove_tree(&trash);
                    }
                }
                None => report.cache_mounts_busy = true,
            }
        }
        report.gc = self.collect_garbage()?;
        Ok(report)
    }

    /// Removes cache mount directories (those untouched since `before`, if given); a
    /// directory is renamed away before it is deleted, so a removal cut short leaves
    /// nothing a build would use half-emptied.
    fn remove_cache_mounts(&self, before: Option<i64>) -> Result<u64> {
        let dir = self.cache_mounts_dir();
        let mut removed = 0;
        let Ok(entries) = fs::read_dir(&dir) else {
            return Ok(0);
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            if let Some(before) = before {
                let modified = entry
                    .metadata()
                    .ok()
                    .and_then(|m| m.modified().ok())
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_secs() as i64);
                if modified >= before {
                    continue;
                }
            }
            let trash = self.tmp_path("trash");
            fs::rename(&path, &trash).at(&path)?;
            remove_tree(&trash);
            removed += 1;
        }
        Ok(removed)
    }

    /// How much space the build cache takes.
    pub fn cache_usage(&self) -> Result<CacheUsage> {
        let records = self.cache_records()?;
        let in_images = self.image_layer_blobs()?;
        let mut usage = CacheUsage {
            records: records.len() as u64,
            ..CacheUsage::default()
        };
        let mut seen: BTreeMap<Digest, u64> = BTreeMap::new();
        let mut snapshots: BTreeSet<Digest> = BTreeSet::new();
        for record in &records {
            if let Some(layer) = &record.layer {
                seen.insert(layer.blob, layer.size);
                snapshots.insert(layer.diff_id);
            }
        }
        for (blob, size) in &seen {
            let slot = if in_images.contains(blob) {
                &mut usage.shared_layers
            } else {
                &mut usage.layers
            };
            slot.0 += 1;
            slot.1 += size;
        }
        for diff_id in snapshots {
            let dir = self.snapshot_dir(&diff_id);
            if dir.exists() {
                usage.snapshots.0 += 1;
                usage.snapshots.1 += tree_size(&dir);
            }
        }
        if let Ok(entries) = fs::read_dir(self.cache_mounts_dir()) {
            for entry in entries.flatten().filter(|e| e.path().is_dir()) {
                usage.cache_mounts.0 += 1;
                usage.cache_mounts.1 += tree_size(&entry.path());
            }
        }
        if let Ok(entries) = fs::read_dir(self.contexts_dir()) {
            for entry in entries.flatten() {
                usage.context_hashes.0 += 1;
                usage.context_hashes.1 += entry.metadata().map_or(0, |m| m.len());
            }
        }
        Ok(usage)
    }
}

fn distinct_size<'a>(records: impl Iterator<Item = &'a CacheRecord>) -> u64 {
    let mut seen: BTreeMap<Digest, u64> = BTreeMap::new();
    for record in records {
        if let Some(layer) = &record.layer {
            seen.insert(layer.blob, layer.size);
        }
    }
    seen.values().sum()
}

/// Bytes of the regular files under `dir` (each inode once).
fn tree_size(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut inodes = BTreeSet::new();
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file() && inodes.insert(m.ino()))
        .map(|m| m.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str, last_used: i64) -> CacheRecord {
        CacheRecord {
            key: key.into(),
            kind: "RUN".into(),
            step: "RUN true".into(),
            stage: "0".into(),
            layer: None,
            created: "1970-01-01T00:00:00Z".into(),
            created_at: last_used,
            last_used,
            inputs: "{}".into(),
        }
    }

    #[test]
    fn last_used_follows_use_to_the_minute_without_writing_in_between() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.put_cache_record(&record("k", 1_000)).unwrap();
        let last_used = |store: &Store| store.cache_record("k").unwrap().unwrap().last_used;

        store
            .finish_cache_use(&[], &["k".into()], 1_000 + LAST_USED_PRECISION - 1)
            .unwrap();
        assert_eq!(
            last_used(&store),
            1_000,
            "used again within the minute: unchanged"
        );
        store
            .finish_cache_use(&[], &["k".into()], 1_000 + LAST_USED_PRECISION + 1)
            .unwrap();
        assert_eq!(last_used(&store), 1_000 + LAST_USED_PRECISION + 1);
    }
}
