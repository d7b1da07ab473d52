//! `lade login` and `logout`: a registry's credentials checked and kept (through the
//! credential helper Docker's config names for it, else where podman keeps them), or
//! forgotten wherever lade reads them.

use super::{EngineError, Result};
use std::path::Path;

use crate::registry::{self, ClientOptions, Credentials, SavedTo};

/// What `lade login` is asked for: the password read already (never empty).
#[derive(Debug, Clone)]
pub struct LoginRequest {
    /// `host[:port]`, as [`registry_name`] gives it.
    pub registry: String,
    pub credentials: Credentials,
    /// TLS, and where Docker's configuration is (`credentials` are ignored).
    pub client: ClientOptions,
}

/// `lade login`: says where the credentials were saved.
pub fn login(request: LoginRequest) -> Result<SavedTo> {
    let registry = request.registry;
    registry::login(&registry, request.credentials, &request.client).map_err(|source| {
        EngineError::Remote {
            what: format!("log in to {registry}"),
            source: Box::new(source),
        }
    })
}

/// `lade logout`: the places the credentials were removed from; none when lade held
/// no credentials for it (not an error, as with Docker). `docker_config` is Docker's
/// configuration directory when the command line names one.
pub fn logout(registry: &str, docker_config: Option<&Path>) -> Result<Vec<String>> {
    registry::logout(registry, docker_config).map_err(|source| EngineError::Remote {
        what: format!("log out of {registry}"),
        source: Box::new(source),
    })
}

/// `https://host:port/` as `host:port`.
pub fn registry_name(text: &str) -> String {
    text.trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registry_is_named_without_scheme_or_slash() {
        assert_eq!(registry_name("https://ghcr.io/"), "ghcr.io");
        assert_eq!(registry_name("http://localhost:5000"), "localhost:5000");
        assert_eq!(registry_name("quay.io"), "quay.io");
    }
}
