//! The metadata database (SQLite in WAL mode): what is derived from content and costly
//! to recompute (image sizes, layer diff_ids), containers, and the build cache. Tags are
//! not here: `index.json` is their one source of truth, so the two can never disagree.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use super::{Result, StoreError};
use crate::oci::Digest;

const SCHEMA_VERSION: i64 = 7;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS images (
    manifest_digest TEXT PRIMARY KEY,
    config_digest   TEXT NOT NULL,
    manifest_size   INTEGER NOT NULL,
    created         TEXT,
    size            INTEGER NOT NULL,
    added           INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS images_by_config ON images(config_digest);
CREATE TABLE IF NOT EXISTS layers (
    blob_digest TEXT PRIMARY KEY,
    diff_id     TEXT NOT NULL,
    media_type  TEXT NOT NULL,
    size        INTEGER NOT NULL,
    tar_size    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS layers_by_diff_id ON layers(diff_id);
CREATE TABLE IF NOT EXISTS containers (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    image      TEXT NOT NULL,
    image_name TEXT NOT NULL,
    created    INTEGER NOT NULL,
    state      TEXT NOT NULL,
    pid        INTEGER,
    exit_code  INTEGER,
    spec       TEXT NOT NULL,
    pid_start  INTEGER,
    settings    TEXT,
    started_at  TEXT,
    finished_at TEXT,
    restarts    INTEGER
);
CREATE TABLE IF NOT EXISTS volumes (
    name      TEXT PRIMARY KEY,
    created   TEXT NOT NULL,
    labels    TEXT NOT NULL,
    anonymous INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshots (
    name        TEXT PRIMARY KEY,
    diff_id     TEXT NOT NULL,
    fingerprint TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS networks (
    name       TEXT PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    definition TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS repository_digests (
    manifest   TEXT NOT NULL,
    repository TEXT NOT NULL,
    digest     TEXT NOT NULL,
    PRIMARY KEY (manifest, repository, digest)
);
CREATE TABLE IF NOT EXISTS network_addresses (
    network   TEXT NOT NULL,
    address   TEXT NOT NULL,
    container TEXT NOT NULL,
    PRIMARY KEY (network, address)
);
-- The build cache: its records, the sites that point at them, built images' steps.
CREATE TABLE IF NOT EXISTS cache_records (
    key        TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    step       TEXT NOT NULL,
    stage      TEXT NOT NULL,
    blob       TEXT,
    diff_id    TEXT,
    media_type TEXT,
    size       INTEGER,
    tar_size   INTEGER,
    created    TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used  INTEGER NOT NULL,
    inputs     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS cache_records_last_used ON cache_records (last_used);
CREATE TABLE IF NOT EXISTS cache_sites (
    site    TEXT PRIMARY KEY,
    key     TEXT NOT NULL,
    updated INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS built_images (
    image TEXT PRIMARY KEY,
    steps TEXT NOT NULL
);
";

/// Opens the database for reading only, creating nothing: for commands that only read,
/// which must work on a full disk and on a store they may not write. SQLite's WAL mode
/// wants a shared-memory file beside the database; where it cannot be made (no space),
/// the database is read as an immutable file. A store without a database yet reads as
/// an empty one.
pub(crate) fn open_read_only(path: &Path) -> Result<Connection> {
    use rusqlite::OpenFlags;
    let err = |source| StoreError::Db {
        path: path.to_path_buf(),
        source,
    };
    if !path.exists() {
        let conn = Connection::open_in_memory().map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        return Ok(conn);
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let shared = Connection::open_with_flags(path, flags).and_then(|conn| {
        conn.busy_timeout(std::time::Duration::from_secs(60))?;
        conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |_| Ok(()))?;
        Ok(conn)
    });
    match shared {
        Ok(conn) => Ok(conn),
        Err(_) => {
            let uri = format!("file:{}?immutable=1", uri_path(path));
            Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI).map_err(err)
        }
    }
}

/// A path as the path part of an SQLite URI: every byte but unreserved ones and `/`
/// percent-encoded.
fn uri_path(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for &byte in path.as_os_str().as_bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

pub(crate) fn open(path: &Path) -> Result<Connection> {
    let err = |source| StoreError::Db {
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open(path).map_err(err)?;
    conn.busy_timeout(std::time::Duration::from_secs(60))
        .map_err(err)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(err)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(err)?;
    // The WAL and its index stay when the connection closes: the last connection to
    // close would otherwise checkpoint (two fsyncs), delete both files and have the
    // next command make them again (a synced WAL header and a synced directory), which
    // made up most of the store's share of a short command such as `run --rm`. The WAL
    // is checkpointed as it grows instead, and kept short: the first connection of
    // each command reads all of it to rebuild its index, so at SQLite's default of
    // 1000 pages (4 MB) that read would cost more than the checkpoints saved. 64 pages
    // is about eight `run --rm`s between checkpoints.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )
    .map_err(err)?;
    conn.pragma_update(None, "wal_autocheckpoint", 64)
        .map_err(err)?;
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(err)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Invalid {
            what: format!("store database {}", path.display()),
            reason: format!(
                "it has schema version {version}, newer than this lade's {SCHEMA_VERSION}"
            ),
        });
    }
    if version < SCHEMA_VERSION {
        conn.execute_batch("BEGIN IMMEDIATE;").map_err(err)?;
        let migrated = conn
            .execute_batch(SCHEMA)
            .and_then(|()| add_missing_columns(&conn))
            .and_then(|()| keep_every_repository_digest(&conn))
            .and_then(|()| conn.pragma_update(None, "user_version", SCHEMA_VERSION));
        match migrated {
            Ok(()) => conn.execute_batch("COMMIT;").map_err(err)?,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK;");
                return Err(err(e));
            }
        }
    }
    Ok(conn)
}

/// A store made before lade kept every digest a repository serves an image as (one a
/// repository, the last pushed or pulled): its digests move to the table that keeps
/// them all, as Docker's RepoDigests do.
fn keep_every_repository_digest(conn: &Connection) -> rusqlite::Result<()> {
    let old: bool = conn.query_row(
        "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'repo_digests'",
        [],
        |row| row.get(0),
    )?;
    if old {
        conn.execute_batch(
            "INSERT OR IGNORE INTO repository_digests (manifest, repository, digest)
                 SELECT manifest, repository, digest FROM repo_digests;
             DROP TABLE repo_digests;",
        )?;
    }
    Ok(())
}

/// Columns added since a table was first made, for stores made by an older lade.
fn add_missing_columns(conn: &Connection) -> rusqlite::Result<()> {
    const ADDED: [(&str, &str, &str); 5] = [
        ("containers", "pid_start", "INTEGER"),
        ("containers", "settings", "TEXT"),
        ("containers", "started_at", "TEXT"),
        ("containers", "finished_at", "TEXT"),
        ("containers", "restarts", "INTEGER"),
    ];
    for (table, column, kind) in ADDED {
        let present: bool = conn.query_row(
            &format!("SELECT COUNT(*) > 0 FROM pragma_table_info('{table}') WHERE name = ?1"),
            params![column],
            |row| row.get(0),
        )?;
        if !present {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind};"))?;
        }
    }
    Ok(())
}

/// What the store knows of one layer blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRecord {
    pub blob: Digest,
    pub diff_id: Digest,
    pub media_type: String,
    /// Compressed size.
    pub size: u64,
    /// Size of the uncompressed tar.
    pub tar_size: u64,
}

/// A container as the store records it; the container module owns its meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRecord {
    pub id: String,
    pub name: String,
    /// The image's config digest.
    pub image: Digest,
    pub image_name: String,
    pub created: i64,
    pub state: String,
    /// The init's pid and start time (clock ticks since boot) while it runs: together
    /// they name the process even after its pid is given to another.
    pub pid: Option<i64>,
    pub pid_start: Option<i64>,
    pub exit_code: Option<i64>,
    /// The sandbox's spec, as JSON.
    pub spec: String,
    /// What the container module keeps beyond the spec (restart policy, stop signal...),
    /// as JSON.
    pub settings: Option<String>,
    /// When it last started and last ended (RFC 3339).
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// How many times the restart policy restarted it.
    pub restarts: i64,
}

pub(crate) fn parse_digest(text: String) -> rusqlite::Result<Digest> {
    text.parse().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

pub(crate) fn put_layer(conn: &Connection, layer: &LayerRecord) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR IGNORE INTO layers (blob_digest, diff_id, media_type, size, tar_size) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            layer.blob.to_string(),
            layer.diff_id.to_string(),
            layer.media_type,
            layer.size as i64,
            layer.tar_size as i64
        ],
    )?;
    Ok(())
}

/// Records what a snapshot held when it was made.
pub(crate) fn put_snapshot(
    conn: &Connection,
    name: &str,
    diff_id: &Digest,
    fingerprint: &str,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO snapshots (name, diff_id, fingerprint) VALUES (?1, ?2, ?3)",
        params![name, diff_id.to_string(), fingerprint],
    )?;
    Ok(())
}

/// Records an image (once: a known one keeps its `added` time).
pub(crate) fn put_image(
    conn: &Connection,
    manifest_digest: &Digest,
    config_digest: &Digest,
    manifest_size: usize,
    created: Option<&str>,
    size: u64,
    added: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR IGNORE INTO images (manifest_digest, config_digest, manifest_size, created, size, added)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            manifest_digest.to_string(),
            config_digest.to_string(),
            manifest_size as i64,
            created,
            size as i64,
            added
        ],
    )?;
    Ok(())
}

pub(crate) fn has_image(conn: &Connection, manifest_digest: &Digest) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT 1 FROM images WHERE manifest_digest = ?1",
        params![manifest_digest.to_string()],
        |_| Ok(()),
    )
    .optional()
    .map(|found| found.is_some())
}

pub(crate) fn layer(conn: &Connection, blob: &Digest) -> rusqlite::Result<Option<LayerRecord>> {
    conn.query_row(
        "SELECT blob_digest, diff_id, media_type, size, tar_size FROM layers WHERE blob_digest = ?1",
        params![blob.to_string()],
        layer_from_row,
    )
    .optional()
}

fn layer_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<LayerRecord> {
    Ok(LayerRecord {
        blob: parse_digest(row.get(0)?)?,
        diff_id: parse_digest(row.get(1)?)?,
        media_type: row.get(2)?,
        size: row.get::<_, i64>(3)? as u64,
        tar_size: row.get::<_, i64>(4)? as u64,
    })
}

pub(crate) fn container_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ContainerRecord> {
    Ok(ContainerRecord {
        id: row.get(0)?,
        name: row.get(1)?,
        image: parse_digest(row.get(2)?)?,
        image_name: row.get(3)?,
        created: row.get(4)?,
        state: row.get(5)?,
        pid: row.get(6)?,
        exit_code: row.get(7)?,
        spec: row.get(8)?,
        pid_start: row.get(9)?,
        settings: row.get(10)?,
        started_at: row.get(11)?,
        finished_at: row.get(12)?,
        restarts: row.get::<_, Option<i64>>(13)?.unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_of_the_last_schema_keeps_its_repository_digests() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lade.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE repo_digests (
                     manifest TEXT NOT NULL, repository TEXT NOT NULL, digest TEXT NOT NULL,
                     PRIMARY KEY (manifest, repository));
                 INSERT INTO repo_digests VALUES ('sha256:m', 'r.example/app', 'sha256:d');
                 PRAGMA user_version = 6;",
            )
            .unwrap();
        }
        let conn = open(&path).unwrap();
        let kept: Vec<(String, String, String)> = conn
            .prepare("SELECT manifest, repository, digest FROM repository_digests")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(
            kept,
            [("sha256:m".into(), "r.example/app".into(), "sha256:d".into())]
        );
        let old: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'repo_digests'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(old, 0);
    }
}
