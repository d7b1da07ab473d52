//! Container records: what the container module needs to keep across processes.

use rusqlite::{params, OptionalExtension};

use super::db::{self, ContainerRecord};
use super::{Result, Store, StoreError};

const COLUMNS: &str =
    "id, name, image, image_name, created, state, pid, exit_code, spec, pid_start, settings, started_at, finished_at, restarts";

impl Store {
    /// Records a new container; its name must be free.
    pub fn insert_container(&self, record: &ContainerRecord) -> Result<()> {
        let inserted = self.with_db(|conn| {
            conn.execute(
                "INSERT OR IGNORE INTO containers (id, name, image, image_name, created, state, pid, exit_code, spec, pid_start, settings, restarts)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 0)",
                params![
                    record.id,
                    record.name,
                    record.image.to_string(),
                    record.image_name,
                    record.created,
                    record.state,
                    record.pid,
                    record.exit_code,
                    record.spec,
                    record.pid_start,
                    record.settings
                ],
            )
        })?;
        if inserted == 0 {
            return Err(StoreError::InUse(format!(
                "the container name {:?} is already in use: remove that container or choose another name",
                record.name
            )));
        }
        Ok(())
    }

    /// Records the init of a running container: its pid and start time, and when it
    /// started, with `state`, the container module's name for running.
    pub fn set_container_running(
        &self,
        id: &str,
        state: &str,
        pid: i64,
        pid_start: i64,
        started_at: &str,
    ) -> Result<()> {
        self.with_db(|conn| {
            conn.execute(
                "UPDATE containers SET state = ?2, pid = ?3, pid_start = ?4, exit_code = NULL, started_at = ?5 WHERE id = ?1",
                params![id, state, pid, pid_start, started_at],
            )
        })?;
        Ok(())
    }

    /// Records that a container ended, with its exit code and when, and `state`, the
    /// container module's name for exited. False when the container is no longer
    /// recorded (it was removed meanwhile).
    pub fn set_container_exited(
        &self,
        id: &str,
        state: &str,
        exit_code: i64,
        finished_at: &str,
    ) -> Result<bool> {
        let changed = self.with_db(|conn| {
            conn.execute(
                "UPDATE containers SET state = ?2, pid = NULL, pid_start = NULL, exit_code = ?3, finished_at = ?4 WHERE id = ?1",
                params![id, state, exit_code, finished_at],
            )
        })?;
        Ok(changed > 0)
    }

    /// Sets a container's state alone (the container module gives its meaning).
    pub fn set_container_state(&self, id: &str, state: &str) -> Result<()> {
        self.with_db(|conn| {
            conn.execute(
                "UPDATE containers SET state = ?2 WHERE id = ?1",
                params![id, state],
            )
        })?;
        Ok(())
    }

    /// Replaces a container's sandbox spec and settings (JSON) at once. False when the
    /// container is no longer recorded (removed meanwhile).
    pub fn set_container_spec_and_settings(
        &self,
        id: &str,
        spec: &str,
        settings: &str,
    ) -> Result<bool> {
        let changed = self.with_db(|conn| {
            conn.execute(
                "UPDATE containers SET spec = ?2, settings = ?3 WHERE id = ?1",
                params![id, spec, settings],
            )
        })?;
        Ok(changed > 0)
    }

    /// Replaces a container's settings (JSON).
    pub fn set_container_settings(&self, id: &str, settings: &str) -> Result<()> {
        self.with_db(|conn| {
            conn.execute(
                "UPDATE containers SET settings = ?2 WHERE id = ?1",
                params![id, settings],
            )
        })?;
        Ok(())
    }

    /// Gives a container another name, which must be free.
    pub fn rename_container(&self, id: &str, name: &str) -> Result<()> {
        let changed = self.with_db(|conn| {
            conn.execute(
                "UPDATE OR IGNORE containers SET name = ?2 WHERE id = ?1",
                params![id, name],
            )
        })?;
        if changed == 0 {
            return Err(StoreError::InUse(format!(
                "the container name {name:?} is already in use"
            )));
        }
        Ok(())
    }

    /// Counts one restart made by the restart policy.
    pub fn count_container_restart(&self, id: &str) -> Result<()> {
        self.with_db(|conn| {
            conn.execute(
                "UPDATE containers SET restarts = COALESCE(restarts, 0) + 1 WHERE id = ?1",
                params![id],
            )
        })?;
        Ok(())
    }

    /// Forgets the restarts made so far (a start by hand).
    pub fn reset_container_restarts(&self, id: &str) -> Result<()> {
        self.with_db(|conn| {
            conn.execute(
                "UPDATE containers SET restarts = 0 WHERE id = ?1",
                params![id],
            )
        })?;
        Ok(())
    }

    pub fn delete_container(&self, id: &str) -> Result<()> {
        self.with_db(|conn| conn.execute("DELETE FROM containers WHERE id = ?1", params![id]))?;
        Ok(())
    }

    /// A container by name, full id or unique id prefix.
    pub fn container(&self, reference: &str) -> Result<ContainerRecord> {
        let by_name = self.with_db(|conn| {
            conn.query_row(
                &format!("SELECT {COLUMNS} FROM containers WHERE name = ?1"),
                params![reference],
                db::container_from_row,
            )
            .optional()
        })?;
        if let Some(record) = by_name {
            return Ok(record);
        }
        let matches = self.with_db(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {COLUMNS} FROM containers WHERE id LIKE ?1"
            ))?;
            let rows = stmt.query_map(params![format!("{reference}%")], db::container_from_row)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        match matches.len() {
            1 if !reference.is_empty() => Ok(matches.into_iter().next().expect("one match")),
            0 | 1 => Err(StoreError::NoSuchContainer(reference.to_string())),
            _ => Err(StoreError::AmbiguousContainer(reference.to_string())),
        }
    }

    pub fn containers(&self) -> Result<Vec<ContainerRecord>> {
        self.with_db(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {COLUMNS} FROM containers ORDER BY created DESC, rowid DESC"
            ))?;
            let rows = stmt.query_map([], db::container_from_row)?;
            rows.collect()
        })
    }
}
