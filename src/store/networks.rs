//! Network records (each network's definition, as JSON) and the addresses given to
//! containers on them. An address is taken in a transaction, so two containers made at
//! once never get the same one.

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::{Result, Store};

/// A network as the store records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRecord {
    pub name: String,
    pub id: String,
    /// The network's definition (the network module's), as JSON.
    pub definition: String,
}

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<NetworkRecord> {
    Ok(NetworkRecord {
        name: row.get(0)?,
        id: row.get(1)?,
        definition: row.get(2)?,
    })
}

impl Store {
    /// Records a network; false when one of that name exists.
    pub fn insert_network(&self, record: &NetworkRecord) -> Result<bool> {
        let inserted = self.with_db(|conn| {
            conn.execute(
                "INSERT OR IGNORE INTO networks (name, id, definition) VALUES (?1, ?2, ?3)",
                params![record.name, record.id, record.definition],
            )
        })?;
        Ok(inserted > 0)
    }

    /// A network by name, full id or unique id prefix.
    pub fn network(&self, reference: &str) -> Result<Option<NetworkRecord>> {
        self.with_db(|conn| {
            if let Some(found) = conn
                .query_row(
                    "SELECT name, id, definition FROM networks WHERE name = ?1",
                    params![reference],
                    from_row,
                )
                .optional()?
            {
                return Ok(Some(found));
            }
            let mut stmt = conn.prepare(
                "SELECT name, id, definition FROM networks WHERE substr(id, 1, length(?1)) = ?1",
            )?;
            let found: Vec<NetworkRecord> = stmt
                .query_map(params![reference], from_row)?
                .collect::<rusqlite::Result<_>>()?;
            Ok((found.len() == 1 && !reference.is_empty()).then(|| found[0].clone()))
        })
    }

    pub fn networks(&self) -> Result<Vec<NetworkRecord>> {
        self.with_db(|conn| {
            let mut stmt =
                conn.prepare("SELECT name, id, definition FROM networks ORDER BY name")?;
            let rows = stmt.query_map([], from_row)?;
            rows.collect()
        })
    }

    pub fn delete_network(&self, name: &str) -> Result<()> {
        self.with_db(|conn| {
            conn.execute(
                "DELETE FROM network_addresses WHERE network = ?1",
                params![name],
            )?;
            conn.execute("DELETE FROM networks WHERE name = ?1", params![name])
        })?;
        Ok(())
    }

    /// Gives `container` an address on `network`: `choose` is shown the addresses taken
    /// and returns the one to take (`None`: none left).
    pub fn allocate_address(
        &self,
        network: &str,
        container: &str,
        choose: impl FnOnce(&[String]) -> Option<String>,
    ) -> Result<Option<String>> {
        self.with_db(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let taken: Vec<String> = {
                let mut stmt =
                    tx.prepare("SELECT address FROM network_addresses WHERE network = ?1")?;
                let rows = stmt.query_map(params![network], |row| row.get(0))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            let Some(address) = choose(&taken) else {
                return Ok(None);
            };
            tx.execute(
                "INSERT INTO network_addresses (network, address, container) VALUES (?1, ?2, ?3)",
                params![network, address, container],
            )?;
            tx.commit()?;
            Ok(Some(address))
        })
    }

    /// The containers with an address on `network`.
    pub fn network_users(&self, network: &str) -> Result<Vec<String>> {
        self.with_db(|conn| {
            let mut stmt = conn.prepare(
                "SELECT DISTINCT container FROM network_addresses WHERE network = ?1 ORDER BY container",
            )?;
            let rows = stmt.query_map(params![network], |row| row.get(0))?;
            rows.collect()
        })
    }

    /// The addresses taken on `network`, as `(container, address)`, by container.
    pub fn network_addresses(&self, network: &str) -> Result<Vec<(String, String)>> {
        self.with_db(|conn| {
            let mut stmt = conn.prepare(
                "SELECT container, address FROM network_addresses WHERE network = ?1 ORDER BY container, address",
            )?;
            let rows = stmt.query_map(params![network], |row| Ok((row.get(0)?, row.get(1)?)))?;
            rows.collect()
        })
    }

    /// Gives back a container's addresses (on one network, or on all).
    pub fn release_addresses(&self, container: &str, network: Option<&str>) -> Result<()> {
        self.with_db(|conn| match network {
            Some(network) => conn.execute(
                "DELETE FROM network_addresses WHERE container = ?1 AND network = ?2",
                params![container, network],
            ),
            None => conn.execute(
                "DELETE FROM network_addresses WHERE container = ?1",
                params![container],
            ),
        })?;
        Ok(())
    }
}
