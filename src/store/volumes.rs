//! Volume records: named and anonymous volumes, whose data lives under
//! `volumes/<name>/_data`.

use std::collections::BTreeMap;

use rusqlite::{params, OptionalExtension};

use super::{IoContext, Result, Store, StoreError};

/// A volume as the store records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeRecord {
    pub name: String,
    /// RFC 3339.
    pub created: String,
    /// `--label`s, as JSON.
    pub labels: String,
    /// Made for one container (`-v /path`, an image's VOLUME): `rm -v` removes it.
    pub anonymous: bool,
}

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<VolumeRecord> {
    Ok(VolumeRecord {
        name: row.get(0)?,
        created: row.get(1)?,
        labels: row.get(2)?,
        anonymous: row.get(3)?,
    })
}

impl Store {
    /// The directory a volume's files live in.
    pub fn volume_data(&self, name: &str) -> std::path::PathBuf {
        self.root.join("volumes").join(name).join("_data")
    }

    /// Records a volume and makes its directory; an existing one is returned as it is.
    /// The bool says whether it is new.
    pub fn create_volume(&self, record: &VolumeRecord) -> Result<(VolumeRecord, bool)> {
        let data = self.volume_data(&record.name);
        std::fs::create_dir_all(&data).at(&data)?;
        let inserted = self.with_db(|conn| {
            conn.execute(
                "INSERT OR IGNORE INTO volumes (name, created, labels, anonymous) VALUES (?1, ?2, ?3, ?4)",
                params![record.name, record.created, record.labels, record.anonymous],
            )
        })?;
        let existing = self
            .volume(&record.name)?
            .ok_or_else(|| StoreError::Invalid {
                what: format!("volume {}", record.name),
                reason: "it vanished while it was made".into(),
            })?;
        Ok((existing, inserted > 0))
    }

    pub fn volume(&self, name: &str) -> Result<Option<VolumeRecord>> {
        self.with_db(|conn| {
            conn.query_row(
                "SELECT name, created, labels, anonymous FROM volumes WHERE name = ?1",
                params![name],
                from_row,
            )
            .optional()
        })
    }

    pub fn volumes(&self) -> Result<Vec<VolumeRecord>> {
        self.with_db(|conn| {
            let mut stmt =
                conn.prepare("SELECT name, created, labels, anonymous FROM volumes ORDER BY name")?;
            let rows = stmt.query_map([], from_row)?;
            rows.collect()
        })
    }

    /// A volume's driver options (`volume create -o`), kept beside its data as moby's
    /// local driver keeps them (`opts.json`); empty when it has none.
    pub fn volume_options(&self, name: &str) -> Result<BTreeMap<String, String>> {
        let path = self.root.join("volumes").join(name).join("opts.json");
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StoreError::Invalid {
                what: path.display().to_string(),
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(e).at(&path),
        }
    }

    /// Records a volume's driver options, written whole or not at all.
    pub fn set_volume_options(&self, name: &str, options: &BTreeMap<String, String>) -> Result<()> {
        let dir = self.root.join("volumes").join(name);
        let path = dir.join("opts.json");
        let staged = dir.join("opts.json.new");
        let text = serde_json::to_vec(options).map_err(|e| StoreError::Invalid {
            what: path.display().to_string(),
            reason: e.to_string(),
        })?;
        std::fs::write(&staged, text).at(&staged)?;
        std::fs::rename(&staged, &path).at(&path)?;
        Ok(())
    }

    /// Removes a volume's record and files.
    pub fn delete_volume(&self, name: &str) -> Result<()> {
        self.with_db(|conn| conn.execute("DELETE FROM volumes WHERE name = ?1", params![name]))?;
        super::remove_tree(&self.root.join("volumes").join(name));
        Ok(())
    }
}
