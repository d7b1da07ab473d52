//! The application layer: one short file per user-level operation, between the command
//! line and the modules that do the work. Each operation takes a typed request (made and
//! validated by `cli` before anything is made), a [`Reporter`] for what the user must be
//! told while it runs, and returns what `cli` renders (an id, an exit code). So the
//! choices an operation makes (which image, pulled or not, how a container is started)
//! are made once, here, and never in the code that reads arguments or prints.
//!
//! Process set-up that whole commands need (the private mount namespace) lives in
//! [`process`], called once by the command-line entry.
//!
//! Moved so far: `run` (foreground, `-it`, detached, with `--rm`), `create`, `start`,
//! `events`.

mod create;
mod events;
mod image;
pub mod process;
mod pull;
mod run;
mod start;

use std::path::PathBuf;

use crate::container::ContainerError;
use crate::registry::RegistryError;
use crate::store::StoreError;

pub use create::{create, ContainerRequest};
pub use events::{events, EventFilters, EventsRequest, UnknownFilter};
pub use image::ImageName;
pub use run::{run, RunOutcome, RunRequest};
pub use start::{start_attached, start_detached, StartAttached};

/// What an operation must tell the user while it runs. `cli` renders it (on stderr, so
/// that a container's output stays its own); the engine never prints.
pub trait Reporter: Sync {
    /// What a container lacks that it asked for (names that will not resolve on its
    /// networks): it runs all the same.
    fn warning(&self, text: &str);
    /// The store lacks `image` (its familiar name), which is therefore pulled: Docker's
    /// "Unable to find image" notice.
    fn image_not_found(&self, image: &str);
    /// A layer of a pulled image is in the store: downloaded (`fetched`) or there
    /// already.
    fn pull_layer(&self, _digest: &crate::oci::Digest, _size: u64, _fetched: bool) {}
    /// A foreground container has exited, and what it left (its network) could not be
    /// undone; its exit code stands.
    fn after_exit(&self, error: &EngineError);
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store lacked the image and pulling it failed: Docker's notice has already
    /// said that it was missing, so the message only says what went wrong.
    #[error("cannot pull {image}: {source}")]
    PullOfMissing {
        image: String,
        source: Box<RegistryError>,
    },
    /// `--cidfile`: the container is made, its id cannot be written.
    #[error("cannot write {}: {source}", path.display())]
    Cidfile {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The process set-up (its private mount namespace) failed; the message says what.
    #[error(transparent)]
    Process(std::io::Error),
}

impl EngineError {
    /// The exit code `run`, `start -a` and the like give for this error, as Docker does:
    /// what the container's init reported (126 cannot run, 127 not found), else 125.
    pub fn exit_code(&self) -> i32 {
        match self {
            EngineError::Container(e) => e.exit_code(),
            _ => 125,
        }
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_dockers() {
        let setup = EngineError::Container(ContainerError::Exec(crate::exec::ExecError::Setup {
            code: 127,
            message: "not found".into(),
        }));
        assert_eq!(setup.exit_code(), 127);
        let cidfile = EngineError::Cidfile {
            path: "/x/id".into(),
            source: std::io::Error::from_raw_os_error(libc::ENOENT),
        };
        assert_eq!(cidfile.exit_code(), 125);
        assert_eq!(
            cidfile.to_string(),
            "cannot write /x/id: No such file or directory (os error 2)"
        );
    }
}
