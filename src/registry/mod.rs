//! The OCI distribution client: images between the store and a registry (`pull`,
//! `push`, `login`), over blocking HTTP (ureq; no async runtime). Every byte that comes
//! in is checked while it streams: manifests and blobs against their digests, layers
//! against the config's diff ids once unpacked; nothing unverified reaches the store,
//! and a failed pull leaves nothing half-written.
//!
//! No registry can hold a command forever: every request has connect, header and
//! stall limits, blob bodies a floor on their rate, and a pull retries what it can (see
//! [`timeouts`]).
//!
//! HTTPS is checked against the system's roots and the CAs of the registry's `certs.d`
//! directory, where a self-signed certificate is also trusted as the registry's own and
//! a `client.cert`/`client.key` pair is sent when asked (see [`tls`]); plain HTTP is used only for `localhost` and `127.0.0.0/8` registries that
//! do not speak TLS (as Docker allows without asking), or with `--tls-verify=false`.
//!
//! One file a concern: `client` (the agent, requests, retries, error answers), `auth`
//! (credentials and tokens), `helpers` (Docker's credential helpers), `resuming` (a blob's body, resumed and bounded), `pull`,
//! `push`, `layout` (the OCI-layout transport of build caches) and `catalogue` (tags,
//! search, login).

mod auth;
mod catalogue;
mod client;
mod config;
mod helpers;
mod layout;
mod policy;
mod pull;
mod push;
mod resuming;
mod timeouts;
mod tls;

use std::io;
use std::path::PathBuf;

pub use auth::{auth_file, credentials_for, Credentials, SavedTo};
pub use catalogue::{login, logout, manifest, search, tags, SearchResult};
pub use client::ClientOptions;
pub use helpers::HelperError;
pub use layout::{pull_layout, push_layout};
pub use policy::{find_or_pull, find_or_pull_parsed, PullPolicy};
pub use pull::{pull, PullOptions, PullProgress};
pub use push::{push, PushCompression, PushOptions, Recompress};
pub use timeouts::{Timeouts, TIMEOUT_VARIABLE};

use crate::oci::{Digest, ImageRef};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// An OCI layout directory (a build cache going to or coming from a registry).
    #[error(transparent)]
    Layout(#[from] crate::oci::LayoutError),
    #[error("{registry}: {reason}")]
    Registry { registry: String, reason: String },
    #[error("registry {registry} failed while {stage}: {source}")]
    Transport {
        registry: String,
        stage: String,
        source: Box<ureq::Error>,
    },
    /// The registry's TLS certificate was refused (or TLS failed): one sentence with
    /// the ways to trust it.
    #[error("registry {registry} {reason}: to trust it, put its CA in /etc/containers/certs.d/{registry}/ca.crt (or $LADE_CERTS_DIR/{registry}/ca.crt), or skip verification with --tls-verify=false or `insecure = true` for it in registries.conf")]
    Untrusted { registry: String, reason: String },
    /// The registry wants a TLS client certificate lade did not give (or refused it).
    #[error("registry {registry} {reason}: put the client certificate it accepts in /etc/containers/certs.d/{registry}/client.cert and its key in client.key")]
    ClientCertificate { registry: String, reason: String },
    /// A limit of [`Timeouts`] ran out: `reason` says which.
    #[error("registry {registry} {reason} while {stage}")]
    Timeout {
        registry: String,
        stage: String,
        reason: String,
    },
    #[error("{variable}={value:?}: {reason}")]
    Setting {
        variable: &'static str,
        value: String,
        reason: String,
    },
    #[error("{image}: {reason}")]
    Image { image: String, reason: String },
    #[error("{registry}: authentication required: lade login {registry}")]
    Unauthorized { registry: String },
    /// A Docker credential helper (`credHelpers`, `credsStore`) failed.
    #[error(transparent)]
    CredentialHelper(#[from] HelperError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Reference(#[from] crate::oci::ReferenceError),
    /// A pull that the pull policy asked for (`always`) failed.
    #[error("cannot pull {image}: {source}")]
    Pull {
        image: String,
        source: Box<RegistryError>,
    },
    /// The store lacks an image, and pulling it failed.
    #[error("image {image} is not in the store, and pulling it failed: {source}")]
    PullOfMissing {
        image: String,
        source: Box<RegistryError>,
    },
    /// The store has an image only for other platforms, and pulling it for the one
    /// asked for failed.
    #[error("image {image} is in the store for {has} only, and pulling it for {platform} failed: {source}")]
    PullForPlatform {
        image: String,
        platform: String,
        has: String,
        source: Box<RegistryError>,
    },
    /// The store lacks an image that the pull policy forbids pulling.
    #[error("image {0} is not in the store: `lade pull`, `lade import` or `lade load` it first")]
    NotInStore(String),
    #[error("unknown pull policy {0:?}: expected always, missing or never")]
    UnknownPullPolicy(String),
    #[error("{path}: {reason}")]
    Config { path: PathBuf, reason: String },
    /// The caller's compressor failed on a layer a push had to compress.
    #[error("layer {layer}: compressing it with {compression} failed: {source}")]
    Compress {
        layer: Digest,
        compression: &'static str,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

fn json_error(image: &str, what: &str, e: impl std::fmt::Display) -> RegistryError {
    RegistryError::Image {
        image: image.to_string(),
        reason: format!("{what}: {e}"),
    }
}

/// `registry/repository`, as repo digests name it (`docker.io/library/busybox`).
fn repository_name(reference: &ImageRef) -> String {
    format!("{}/{}", reference.registry(), reference.repository())
}
