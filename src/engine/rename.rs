//! `rename`: a container answers to another name.

use super::Result;
use crate::container;
use crate::store::Store;

#[derive(Debug, Clone)]
pub struct RenameRequest {
    /// The container's name or id.
    pub container: String,
    /// Checked as `run --name` checks it.
    pub name: String,
}

/// `lade rename`.
pub fn rename(store: &Store, request: &RenameRequest) -> Result<()> {
    Ok(container::rename(store, &request.container, &request.name)?)
}
