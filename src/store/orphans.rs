//! What a container leaves when its record never came (a create cut short by a crash,
//! or the refused runs of an older lade): a `containers/<id>` directory, or an address
//! reserved on a network for it. Nothing else looks at them, and a network never gives
//! such an address again, so enough of them exhaust it. `system check` reports them and
//! `--repair` removes them; it holds the content lock alone meanwhile, and a create
//! holds it shared until its record is in, so nothing on its way to a record is taken
//! for an orphan.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::MetadataExt;

use rusqlite::params;

use super::check::Problem;
use super::{remove_tree, IoContext, Result, Store};

/// A container id: 64 lowercase hex digits (other names in `containers/` are not ours
/// to judge).
fn is_container_id(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Store {
    /// Directories and addresses of containers the store has no record of.
    pub(super) fn container_orphans(&self) -> Result<Vec<Problem>> {
        let ids: BTreeSet<String> = self.with_db(|conn| {
            let mut stmt = conn.prepare("SELECT id FROM containers")?;
            let rows = stmt.query_map([], |row| row.get(0))?;
            rows.collect()
        })?;
        let mut problems = Vec::new();
        let dir = self.root().join("containers");
        let mut names: Vec<String> = match fs::read_dir(&dir) {
            Ok(entries) => entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e).at(&dir),
        };
        names.sort();
        for id in names {
            if is_container_id(&id) && !ids.contains(&id) {
                problems.push(Problem::OrphanContainerDir { id });
            }
        }
        let addresses: Vec<(String, String, String)> = self.with_db(|conn| {
            let mut stmt = conn.prepare(
                "SELECT network, address, container FROM network_addresses
                 WHERE container NOT IN (SELECT id FROM containers)
                 ORDER BY network, address",
            )?;
            let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
            rows.collect()
        })?;
        for (network, address, container) in addresses {
            problems.push(Problem::OrphanAddress {
                network,
                address,
                container,
            });
        }
        Ok(problems)
    }

    /// Removes one orphan `container_orphans` found; says what was done.
    pub(super) fn remove_orphan(&self, problem: &Problem) -> Result<Option<String>> {
        match problem {
            Problem::OrphanContainerDir { id } => {
                let dir = self.root().join("containers").join(id);
                // A root still mounted would be emptied through its mount (its image's
                // files hidden by whiteouts, a bind's host files removed): left alone.
                let rootfs = dir.join("rootfs");
                let mounted = match (fs::metadata(&dir), fs::metadata(&rootfs)) {
                    (Ok(d), Ok(r)) => d.dev() != r.dev(),
                    _ => false,
                };
                if mounted {
                    return Ok(Some(format!(
                        "kept containers/{id}: {} is mounted (unmount it, then repair again)",
                        rootfs.display()
                    )));
                }
                // Renamed away first: a removal cut short leaves nothing under the
                // containers directory.
                let trash = self.tmp_path("trash");
                fs::rename(&dir, &trash).at(&trash)?;
                remove_tree(&trash);
                Ok(Some(format!(
                    "removed the container directory containers/{id}"
                )))
            }
            Problem::OrphanAddress {
                network,
                address,
                container,
            } => {
                self.with_db(|conn| {
                    conn.execute(
                        "DELETE FROM network_addresses
                         WHERE network = ?1 AND address = ?2 AND container = ?3
                         AND container NOT IN (SELECT id FROM containers)",
                        params![network, address, container],
                    )
                })?;
                Ok(Some(format!(
                    "released address {address} on network {network}"
                )))
            }
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ids_count_as_container_directories() {
        assert!(is_container_id(&"0a".repeat(32)));
        assert!(!is_container_id(&"0A".repeat(32)));
        assert!(!is_container_id("lost+found"));
        assert!(!is_container_id(&"0".repeat(63)));
    }
}
