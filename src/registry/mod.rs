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
//! directory; plain HTTP is used only for `localhost` and `127.0.0.0/8` registries that
//! do not speak TLS (as Docker allows without asking), or with `--tls-verify=false`.

mod auth;
mod config;
mod policy;
mod timeouts;
mod tls;

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

pub use auth::{auth_file, credentials_for, Credentials};
pub use policy::{find_or_pull, PullPolicy};
pub use timeouts::{Timeouts, TIMEOUT_VARIABLE};

use timeouts::{Paced, Trickled};

use crate::oci::{media, Digest, ImageConfig, ImageRef, Platform, Sha256Writer};
use crate::store::{Image, LayerInfo, NewImage, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{registry}: {reason}")]
    Registry { registry: String, reason: String },
    #[error("registry {registry} failed while {stage}: {source}")]
    Transport {
        registry: String,
        stage: String,
        source: Box<ureq::Error>,
    },
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
    /// The store lacks an image that the pull policy forbids pulling.
    #[error("image {0} is not in the store: `lade pull`, `lade import` or `lade load` it first")]
    NotInStore(String),
    #[error("unknown pull policy {0:?}: expected always, missing or never")]
    UnknownPullPolicy(String),
    #[error("{path}: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: io::Error,
    },
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// The media types lade accepts for a manifest, best first.
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// How a client talks to a registry.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// `--tls-verify=false`: plain HTTP (or unverified TLS) to any registry.
    pub insecure: bool,
    /// Credentials given on the command line (`login -u`), rather than saved ones.
    pub credentials: Option<Credentials>,
}

/// One registry, with the authorization it has earned.
pub struct Client {
    agent: ureq::Agent,
    /// As named in image references (`docker.io`, `127.0.0.1:5000`).
    registry: String,
    /// `https://registry-1.docker.io`, `http://127.0.0.1:5000`.
    base: String,
    credentials: Option<Credentials>,
    authorization: Mutex<Option<String>>,
    timeouts: Timeouts,
}

/// The stage of the first request to a registry, as errors name it.
const CHECKING: &str = "checking the registry (GET /v2/)";

/// Tries of a GET whose connection fails or times out, and of a small body's fetch.
const GET_ATTEMPTS: u32 = 3;

fn is_loopback(registry: &str) -> bool {
    let host = registry.rsplit_once(':').map_or(registry, |(h, _)| h);
    host == "localhost" || host.starts_with("127.") || host == "[::1]"
}

impl Client {
    /// A client for `registry`: HTTPS checked against the system's roots and the
    /// registry's `certs.d` CAs; plain HTTP only for a loopback registry that does not
    /// speak TLS, or with `insecure` (which also accepts any certificate).
    pub fn new(registry: &str, options: &ClientOptions) -> Result<Client> {
        let host = if registry == "docker.io" {
            "registry-1.docker.io"
        } else {
            registry
        };
        let insecure = options.insecure || config::is_insecure(registry)?;
        let tls = if insecure {
            ureq::tls::TlsConfig::builder()
                .disable_verification(true)
                .build()
        } else {
            tls::config(registry)
        };
        let timeouts = Timeouts::from_env()?;
        let mut client = Client {
            agent: timeouts.agent(tls),
            timeouts,
            registry: registry.to_string(),
            base: format!("https://{host}"),
            credentials: options
                .credentials
                .clone()
                .or_else(|| credentials_for(registry)),
            authorization: Mutex::new(None),
        };
        if insecure || is_loopback(registry) {
            // HTTPS if it speaks it; else plain HTTP, taken only from a registry's
            // answer to /v2/ (a TLS port answers plain HTTP with a 400).
            let probe = client
                .agent
                .get(format!("{}/v2/", client.base))
                .config()
                .timeout_global(Some(client.timeouts.probe()))
                .build()
                .call();
            if let Err(tls_error) = probe {
                let plain = format!("http://{host}");
                match client.agent.get(format!("{plain}/v2/")).call() {
                    Ok(answer) if matches!(answer.status().as_u16(), 200 | 401) => {}
                    // Neither spoke in time: say how long lade waited, and for what.
                    Err(timeout @ ureq::Error::Timeout(_)) => {
                        return Err(client.transport_error(timeout, CHECKING))
                    }
                    _ => return Err(client.transport_error(tls_error, CHECKING)),
                }
                client.base = plain;
            }
        }
        Ok(client)
    }

    /// A small answer kept in memory (a manifest, a config): its headers and body,
    /// refused past `limit` bytes. The whole fetch is tried again when the connection
    /// fails or times out, headers or body.
    fn fetch_small(
        &self,
        url: &str,
        accept: Option<&str>,
        limit: u64,
        stage: &str,
    ) -> Result<(ureq::http::HeaderMap, Vec<u8>)> {
        let mut attempt = 1;
        loop {
            let mut response = self.get(url, accept, stage)?;
            if response.status() != 200 {
                return Err(self.status_error(stage, &mut response));
            }
            match response.body_mut().with_config().limit(limit).read_to_vec() {
                Ok(bytes) => return Ok((response.headers().clone(), bytes)),
                Err(ureq::Error::BodyExceedsLimit(_)) => {
                    return Err(self.error(format!(
                        "{stage}: the answer is larger than the {limit} bytes lade takes"
                    )))
                }
                Err(e) if attempt < GET_ATTEMPTS => {
                    let _ = e;
                    attempt += 1;
                }
                Err(e) => return Err(self.transport_error(e, &tried(stage, attempt))),
            }
        }
    }

    fn error(&self, reason: impl Into<String>) -> RegistryError {
        RegistryError::Registry {
            registry: self.registry.clone(),
            reason: reason.into(),
        }
    }

    /// A request that failed during `stage`: a limit that ran out in words, anything
    /// else as ureq says it.
    fn transport_error(&self, error: ureq::Error, stage: &str) -> RegistryError {
        match error {
            ureq::Error::Timeout(timeout) => RegistryError::Timeout {
                registry: self.registry.clone(),
                stage: stage.to_string(),
                reason: self.timeouts.describe(timeout),
            },
            other => RegistryError::Transport {
                registry: self.registry.clone(),
                stage: stage.to_string(),
                source: Box::new(other),
            },
        }
    }

    /// A body read that failed during `stage`: a timeout (ureq's, or a trickle) in
    /// words, anything else as the reader says it.
    fn body_error(&self, error: io::Error, stage: &str) -> RegistryError {
        if error.get_ref().is_some_and(|e| e.is::<ureq::Error>()) {
            if let Some(Ok(ureq)) = error.into_inner().map(|e| e.downcast::<ureq::Error>()) {
                return self.transport_error(*ureq, stage);
            }
            return self.error(format!("{stage}: the download failed"));
        }
        if error.get_ref().is_some_and(|e| e.is::<Trickled>()) {
            return RegistryError::Timeout {
                registry: self.registry.clone(),
                stage: stage.to_string(),
                reason: error.to_string(),
            };
        }
        self.error(format!("{stage}: the download failed: {error}"))
    }

    /// A GET of a blob: no total limit on its body (see [`timeouts`]).
    fn blob_request(&self, url: &str) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        self.authorize(self.agent.get(url))
            .config()
            .timeout_recv_body(None)
            .build()
    }

    /// `digest`'s body from `repository`, checked against [`Paced`]'s floor and resumed
    /// where a failure cuts it (see [`Resuming`]); `size` as the manifest gives it.
    fn open_blob(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        stage: &str,
    ) -> Result<Resuming<'_>> {
        let url = self.blob_url(repository, digest);
        let mut response = self.get_with(&url, None, stage, true)?;
        if response.status() != 200 {
            return Err(self.status_error(stage, &mut response));
        }
        Ok(Resuming {
            client: self,
            reader: Box::new(Paced::new(
                response
                    .into_body()
                    .into_with_config()
                    .limit(u64::MAX)
                    .reader(),
                &self.timeouts,
            )),
            url,
            stage: stage.to_string(),
            offset: 0,
            size,
            resumptions: 0,
            failure: None,
        })
    }

    /// Earns the right to `actions` (`pull`, `pull,push`) on `repository`: the `/v2/`
    /// challenge, then Basic credentials or a bearer token from the token service.
    pub fn authenticate(&self, repository: &str, actions: &str) -> Result<()> {
        self.authenticate_scope(&format!("repository:{repository}:{actions}"))
    }

    /// The same, for any scope (`registry:catalog:*`).
    pub fn authenticate_scope(&self, scope: &str) -> Result<()> {
        let response = self
            .agent
            .get(format!("{}/v2/", self.base))
            .call()
            .map_err(|e| self.transport_error(e, CHECKING))?;
        if response.status() != 401 {
            return Ok(());
        }
        let challenge = response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .and_then(auth::parse_challenge)
            .ok_or_else(|| self.error("it asks for authentication without saying how"))?;
        let authorization = if challenge.scheme.eq_ignore_ascii_case("basic") {
            self.credentials
                .as_ref()
                .map(Credentials::basic)
                .ok_or_else(|| RegistryError::Unauthorized {
                    registry: self.registry.clone(),
                })?
        } else if challenge.scheme.eq_ignore_ascii_case("bearer") {
            format!("Bearer {}", self.token(&challenge, scope)?)
        } else {
            return Err(self.error(format!(
                "it asks for {} authentication, which lade does not speak",
                challenge.scheme
            )));
        };
        *self.authorization.lock().unwrap_or_else(|e| e.into_inner()) = Some(authorization);
        Ok(())
    }

    fn token(&self, challenge: &auth::Challenge, scope: &str) -> Result<String> {
        let realm = challenge
            .param("realm")
            .ok_or_else(|| self.error("its bearer challenge has no realm"))?;
        let mut request = self.agent.get(realm).query("scope", scope);
        if let Some(service) = challenge.param("service") {
            request = request.query("service", service);
        }
        if let Some(credentials) = &self.credentials {
            request = request.header("Authorization", credentials.basic());
        }
        let stage = format!("asking the token service {realm} for a token");
        let mut response = request
            .call()
            .map_err(|e| self.transport_error(e, &stage))?;
        match response.status().as_u16() {
            200 => {}
            401 | 403 => {
                return Err(RegistryError::Unauthorized {
                    registry: self.registry.clone(),
                })
            }
            status => return Err(self.error(format!("its token service answered {status}"))),
        }
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| self.transport_error(e, &stage))?;
        let body: Value = serde_json::from_str(&text)
            .map_err(|e| self.error(format!("its token service's answer: {e}")))?;
        body.get("token")
            .or_else(|| body.get("access_token"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| self.error("its token service gave no token"))
    }

    /// A request that sends a blob: the registry may answer only once it has stored
    /// it, so the wait for the answer is [`Timeouts::upload_answer`].
    fn upload_request<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        let answer = Some(self.timeouts.upload_answer());
        self.authorize(request)
            .config()
            .timeout_recv_response(answer)
            .timeout_per_read(answer)
            .build()
    }

    fn authorize<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &*self.authorization.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(value) => request.header("Authorization", value.as_str()),
            None => request,
        }
    }

    /// GET of a small answer (see [`Client::get_with`]).
    fn get(
        &self,
        url: &str,
        accept: Option<&str>,
        stage: &str,
    ) -> Result<ureq::http::Response<ureq::Body>> {
        self.get_with(url, accept, stage, false)
    }

    /// GET with retries: a failed or timed-out connection, 429 (after its Retry-After)
    /// and 5xx, three tries in all, backing off. A `blob`'s body has no total limit.
    fn get_with(
        &self,
        url: &str,
        accept: Option<&str>,
        stage: &str,
        blob: bool,
    ) -> Result<ureq::http::Response<ureq::Body>> {
        let mut delay = Duration::from_millis(200);
        for attempt in 1.. {
            let mut request = if blob {
                self.blob_request(url)
            } else {
                self.authorize(self.agent.get(url))
            };
            if let Some(accept) = accept {
                request = request.header("Accept", accept);
            }
            let response = match request.call() {
                Ok(response) => response,
                Err(e) if attempt < GET_ATTEMPTS => {
                    let _ = e;
                    std::thread::sleep(delay);
                    delay *= 2;
                    continue;
                }
                Err(e) => return Err(self.transport_error(e, &tried(stage, attempt))),
            };
            let status = response.status().as_u16();
            if (status == 429 || status >= 500) && attempt < GET_ATTEMPTS {
                let wait = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .map_or(delay, |s| Duration::from_secs(s.min(30)));
                std::thread::sleep(wait);
                delay *= 2;
                continue;
            }
            return Ok(response);
        }
        unreachable!("the loop returns")
    }

    fn status_error(
        &self,
        what: &str,
        response: &mut ureq::http::Response<ureq::Body>,
    ) -> RegistryError {
        let status = response.status().as_u16();
        // Registries explain in {"errors": [{"code", "message"}]}; read within bounds,
        // as this may be a blob request's answer, which has no total limit.
        let mut explanation = Vec::new();
        let explained = Paced::new(
            response.body_mut().with_config().limit(64 << 10).reader(),
            &self.timeouts,
        )
        .read_to_end(&mut explanation);
        let detail = explained
            .ok()
            .and_then(|_| serde_json::from_slice::<Value>(&explanation).ok())
            .and_then(|v| {
                v.get("errors")?.as_array()?.first().map(|e| {
                    format!(
                        "{} ({})",
                        e.get("message").and_then(Value::as_str).unwrap_or(""),
                        e.get("code").and_then(Value::as_str).unwrap_or("")
                    )
                })
            })
            .unwrap_or_default();
        match status {
            401 => RegistryError::Unauthorized {
                registry: self.registry.clone(),
            },
            _ => self.error(
                format!("{what}: it answered {status} {detail}")
                    .trim_end()
                    .to_string(),
            ),
        }
    }

    /// A 200 answer's JSON body; any other answer is `what`'s error.
    fn json(&self, what: &str, response: &mut ureq::http::Response<ureq::Body>) -> Result<Value> {
        if response.status() != 200 {
            return Err(self.status_error(what, response));
        }
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| self.transport_error(e, &format!("fetching {what}")))?;
        serde_json::from_str(&text).map_err(|e| self.error(format!("{what}: {e}")))
    }

    /// A manifest by tag or digest: its bytes, media type and digest. A
    /// `Docker-Content-Digest` header that names another digest than the bytes' is
    /// refused, as Docker does: what the registry says it sent is what came.
    fn manifest(&self, repository: &str, reference: &str) -> Result<(Vec<u8>, String, Digest)> {
        let separator = if reference.contains(':') { '@' } else { ':' };
        let name = format!("{}/{repository}{separator}{reference}", self.registry);
        let url = format!("{}/v2/{repository}/manifests/{reference}", self.base);
        let stage = format!("fetching the manifest of {name}");
        let (headers, bytes) = self.fetch_small(&url, Some(ACCEPT), 4 << 20, &stage)?;
        let media_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let digest = Digest::of(&bytes);
        if let Some(claimed) = headers.get("docker-content-digest") {
            let claimed = String::from_utf8_lossy(claimed.as_bytes());
            if !names_bytes(&claimed, &digest, &bytes) {
                return Err(RegistryError::Image {
                    image: name,
                    reason: format!(
                        "the registry's Docker-Content-Digest header says {claimed}, but the manifest it sent has digest {digest}"
                    ),
                });
            }
        }
        Ok((bytes, media_type, digest))
    }

    fn blob_url(&self, repository: &str, digest: &Digest) -> String {
        format!("{}/v2/{repository}/blobs/{digest}", self.base)
    }
}

/// `stage`, with how many times it was tried when more than once.
fn tried(stage: &str, attempts: u32) -> String {
    if attempts > 1 {
        format!("{stage} (tried {attempts} times)")
    } else {
        stage.to_string()
    }
}

/// Whether a `Docker-Content-Digest` value names `bytes` (whose sha256 is `digest`):
/// sha256 as lade's digests, sha512 as the distribution spec also allows.
fn names_bytes(claimed: &str, digest: &Digest, bytes: &[u8]) -> bool {
    use sha2::Digest as _;
    if let Ok(parsed) = claimed.parse::<Digest>() {
        return parsed == *digest;
    }
    match claimed.strip_prefix("sha512:") {
        Some(hex) => {
            let actual: String = sha2::Sha512::digest(bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            hex == actual
        }
        None => false,
    }
}

/// What `lade pull` asks for.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    pub platform: Option<Platform>,
    pub client: ClientOptions,
}

/// What a pull reports as it goes.
pub trait PullProgress: Sync {
    /// A layer's download starts (`size` from the manifest).
    fn start(&self, _digest: &Digest, _size: u64) {}
    /// So many more bytes of it came.
    fn advance(&self, _digest: &Digest, _bytes: u64) {}
    /// It is in the store: downloaded (`fetched`) or there already.
    fn layer(&self, digest: &Digest, size: u64, fetched: bool);
    /// The store lacks `image`, which is therefore pulled (Docker says so first).
    fn not_in_store(&self, _image: &str) {}
}

/// Tells a [`PullProgress`] of the bytes read through it.
struct Counted<'a, R> {
    inner: R,
    digest: &'a Digest,
    progress: &'a dyn PullProgress,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(self.digest, n as u64);
        Ok(n)
    }
}

impl PullProgress for () {
    fn layer(&self, _: &Digest, _: u64, _: bool) {}
}

fn json_error(image: &str, what: &str, e: impl std::fmt::Display) -> RegistryError {
    RegistryError::Image {
        image: image.to_string(),
        reason: format!("{what}: {e}"),
    }
}

/// Pulls `reference` into the store and tags it; returns the image.
pub fn pull(
    store: &Store,
    reference: &ImageRef,
    options: &PullOptions,
    progress: &dyn PullProgress,
) -> Result<Image> {
    let image_name = reference.familiar();
    let client = Client::new(reference.registry(), &options.client)?;
    let repository = reference.repository();
    client.authenticate(repository, "pull")?;
    let wanted = reference
        .digest()
        .map(str::to_string)
        .unwrap_or_else(|| reference.tag().unwrap_or("latest").to_string());
    let (mut bytes, mut media_type, mut digest) = client.manifest(repository, &wanted)?;
    // What the tag points at (an index, for a multi-platform image): its repo digest.
    let repo_digest = digest;
    if let Some(pinned) = reference.digest() {
        if digest.to_string() != pinned {
            return Err(json_error(
                &image_name,
                "its manifest",
                format!("has digest {digest}, not {pinned}"),
            ));
        }
    }
    let mut manifest: Value =
        serde_json::from_slice(&bytes).map_err(|e| json_error(&image_name, "its manifest", e))?;
    if manifest.get("schemaVersion").and_then(Value::as_i64) == Some(1) {
        return Err(json_error(
            &image_name,
            "its manifest",
            "it is Docker's schema 1, which lade does not pull (push the image again with a newer tool)",
        ));
    }
    // An index: the manifest for this platform.
    if manifest.get("manifests").is_some() {
        let platform = options.platform.clone().unwrap_or_else(Platform::host);
        let chosen = manifest["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| {
                let p = &m["platform"];
                p["os"] == platform.os.as_str()
                    && p["architecture"] == platform.architecture.as_str()
                    && platform
                        .variant
                        .as_deref()
                        .is_none_or(|v| p.get("variant").is_none_or(|pv| pv == v))
            })
            .and_then(|m| m["digest"].as_str())
            .ok_or_else(|| {
                json_error(
                    &image_name,
                    "its index",
                    format!("has no manifest for {platform}"),
                )
            })?
            .to_string();
        (bytes, media_type, digest) = client.manifest(repository, &chosen)?;
        if digest.to_string() != chosen {
            return Err(json_error(
                &image_name,
                "a manifest",
                format!("has digest {digest}, not {chosen}"),
            ));
        }
        manifest = serde_json::from_slice(&bytes)
            .map_err(|e| json_error(&image_name, "its manifest", e))?;
    }
    let _ = (media_type, digest);
    let descriptor = |value: &Value, what: &str| -> Result<(Digest, u64, String)> {
        let digest = value["digest"]
            .as_str()
            .and_then(|d| d.parse::<Digest>().ok())
            .ok_or_else(|| json_error(&image_name, what, "no valid digest"))?;
        Ok((
            digest,
            value["size"].as_u64().unwrap_or(0),
            value["mediaType"].as_str().unwrap_or_default().to_string(),
        ))
    };
    let (config_digest, _, _) = descriptor(&manifest["config"], "its config")?;
    let config_bytes = fetch_small_blob(store, &client, repository, &config_digest)?;
    let config: ImageConfig = serde_json::from_slice(&config_bytes)
        .map_err(|e| json_error(&image_name, "its config", e))?;
    let layer_descriptors: Vec<(Digest, u64, String)> = manifest["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| descriptor(l, "a layer"))
        .collect::<Result<_>>()?;
    if layer_descriptors.len() != config.rootfs.diff_ids.len() {
        return Err(json_error(
            &image_name,
            "its config",
            format!(
                "lists {} layers, the manifest {}",
                config.rootfs.diff_ids.len(),
                layer_descriptors.len()
            ),
        ));
    }
    // A few layers at a time.
    let jobs: Vec<(usize, &(Digest, u64, String), &Digest)> = layer_descriptors
        .iter()
        .zip(&config.rootfs.diff_ids)
        .enumerate()
        .map(|(i, (d, diff))| (i, d, diff))
        .collect();
    let results: Mutex<Vec<Option<Result<LayerInfo>>>> =
        Mutex::new((0..jobs.len()).map(|_| None).collect());
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..3.min(jobs.len()) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some((index, (digest, size, media_type), diff_id)) = jobs.get(i) else {
                    break;
                };
                let result = fetch_layer(
                    store, &client, repository, digest, *size, media_type, diff_id, progress,
                );
                results.lock().unwrap_or_else(|e| e.into_inner())[*index] = Some(result);
            });
        }
    });
    let layers: Vec<LayerInfo> = results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(json_error(&image_name, "a layer", "was not fetched"))))
        .collect::<Result<_>>()?;
    let tag = if reference.digest().is_some() {
        vec![]
    } else {
        vec![reference.clone()]
    };
    let image = store.commit_image(
        &NewImage {
            config,
            config_bytes: Some(config_bytes),
            layers,
        },
        &tag,
    )?;
    store.record_repo_digest(
        &image.manifest_digest,
        &repository_name(reference),
        &repo_digest,
    )?;
    Ok(image)
}

/// `registry/repository`, as repo digests name it (`docker.io/library/busybox`).
fn repository_name(reference: &ImageRef) -> String {
    format!("{}/{}", reference.registry(), reference.repository())
}

/// The tags of a repository (`pull -a`).
pub fn tags(reference: &ImageRef, options: &ClientOptions) -> Result<Vec<String>> {
    let client = Client::new(reference.registry(), options)?;
    let repository = reference.repository();
    client.authenticate(repository, "pull")?;
    let mut response = client.get(
        &format!("{}/v2/{repository}/tags/list?n=1000", client.base),
        None,
        &format!("listing the tags of {repository}"),
    )?;
    let body = client.json(&format!("the tags of {repository}"), &mut response)?;
    let mut tags: Vec<String> = body["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    tags.sort();
    Ok(tags)
}

/// A small blob (a config): from the store when it has it, else fetched and checked.
fn fetch_small_blob(
    store: &Store,
    client: &Client,
    repository: &str,
    digest: &Digest,
) -> Result<Vec<u8>> {
    if store.has_blob(digest) {
        return Ok(store.read_blob(digest)?);
    }
    let (_, bytes) = client.fetch_small(
        &client.blob_url(repository, digest),
        None,
        16 << 20,
        &format!("fetching blob {digest}"),
    )?;
    if Digest::of(&bytes) != *digest {
        return Err(client.error(format!(
            "blob {digest}: what came has digest {}",
            Digest::of(&bytes)
        )));
    }
    store.put_blob(&bytes)?;
    Ok(bytes)
}

/// A blob's body that picks up where a failure cut it (a reset, a stall, a trickle
/// under [`Paced`]'s floor, a body shorter than the manifest said): with a range
/// request, or, from a registry that ignores ranges, the whole blob again with the part
/// already read skipped. At most [`MAX_RESUMPTIONS`] times.
struct Resuming<'a> {
    client: &'a Client,
    url: String,
    /// What the fetch is, as errors name it.
    stage: String,
    reader: Box<dyn Read + Send + 'a>,
    offset: u64,
    /// The size the manifest gives (0 when it does not say).
    size: u64,
    resumptions: u32,
    /// Why it gave up, when it did: the error to report rather than the reader's.
    failure: Option<RegistryError>,
}

const MAX_RESUMPTIONS: u32 = 5;

/// Why a resumption did not give a body.
enum Reopening {
    /// A failure worth another try.
    Again(io::Error),
    /// An answer no retry changes (404, 401).
    Refused(RegistryError),
}

impl<'a> Resuming<'a> {
    fn resume(&mut self, mut why: io::Error) -> io::Result<()> {
        loop {
            if self.resumptions >= MAX_RESUMPTIONS {
                let message = why.to_string();
                let stage = format!("{} (resumed {} times)", self.stage, self.resumptions);
                self.failure = Some(self.client.body_error(why, &stage));
                return Err(io::Error::other(message));
            }
            self.resumptions += 1;
            match self.reopen() {
                Ok(reader) => {
                    self.reader = reader;
                    return Ok(());
                }
                Err(Reopening::Again(again)) => why = again,
                Err(Reopening::Refused(error)) => {
                    let message = error.to_string();
                    self.failure = Some(error);
                    return Err(io::Error::other(message));
                }
            }
        }
    }

    fn reopen(&self) -> std::result::Result<Box<dyn Read + Send + 'a>, Reopening> {
        let mut response = self
            .client
            .blob_request(&self.url)
            .header("Range", format!("bytes={}-", self.offset))
            .call()
            .map_err(|e| Reopening::Again(e.into_io()))?;
        let status = response.status().as_u16();
        if status != 200 && status != 206 {
            if status == 429 || status >= 500 {
                return Err(Reopening::Again(io::Error::other(format!(
                    "the registry answered {status} when asked again"
                ))));
            }
            let stage = format!("{} (resuming at byte {})", self.stage, self.offset);
            return Err(Reopening::Refused(
                self.client.status_error(&stage, &mut response),
            ));
        }
        let mut reader: Box<dyn Read + Send + 'a> = Box::new(Paced::new(
            response
                .into_body()
                .into_with_config()
                .limit(u64::MAX)
                .reader(),
            &self.client.timeouts,
        ));
        if status == 200 {
            let skipped = io::copy(&mut (&mut reader).take(self.offset), &mut io::sink())
                .map_err(Reopening::Again)?;
            if skipped < self.offset {
                return Err(Reopening::Again(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "sent again, the blob ended at byte {skipped} of the {} already read",
                        self.offset
                    ),
                )));
            }
        }
        Ok(reader)
    }
}

impl Read for Resuming<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.reader.read(buf) {
                Ok(0) if self.size > 0 && self.offset < self.size => {
                    let cut = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "the connection ended at byte {} of {}",
                            self.offset, self.size
                        ),
                    );
                    self.resume(cut)?;
                }
                Ok(n) => {
                    self.offset += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.resume(e)?,
            }
        }
    }
}

/// Copies what is read into `copy` as well.
struct Tee<'a, R> {
    inner: R,
    copy: &'a mut dyn Write,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// The uncompressed digest and size of a layer's bytes (its media type says how they
/// are compressed).
fn unpacked_digest(reader: &mut dyn Read, media_type: &str) -> io::Result<(Digest, u64)> {
    let mut sink = Sha256Writer::new(io::sink());
    if media_type.contains("zstd") {
        let mut decoder = zstd::stream::read::Decoder::new(&mut *reader)?;
        io::copy(&mut decoder, &mut sink)?;
    } else if media_type.contains("gzip") || media_type.ends_with("diff.tar.gzip") {
        let mut decoder = flate2::read::MultiGzDecoder::new(&mut *reader);
        io::copy(&mut decoder, &mut sink)?;
    } else {
        io::copy(reader, &mut sink)?;
    }
    // What the decoder left (a gzip trailer's padding) still counts for the digest.
    io::copy(reader, &mut io::sink())?;
    let (digest, size, _) = sink.finish();
    Ok((digest, size))
}

/// Docker's layer media types as their OCI twins (the same bytes).
fn oci_media_type(media_type: &str) -> String {
    match media_type {
        media::DOCKER_LAYER_GZIP => media::OCI_LAYER_GZIP.to_string(),
        media::DOCKER_LAYER_TAR => media::OCI_LAYER_TAR.to_string(),
        "" => media::OCI_LAYER_GZIP.to_string(),
        other => other.to_string(),
    }
}

#[allow(clippy::too_many_arguments)]
fn fetch_layer(
    store: &Store,
    client: &Client,
    repository: &str,
    digest: &Digest,
    size: u64,
    media_type: &str,
    diff_id: &Digest,
    progress: &dyn PullProgress,
) -> Result<LayerInfo> {
    let check = |unpacked: Digest| {
        if unpacked != *diff_id {
            return Err(client.error(format!(
                "layer {digest} unpacks to {unpacked}, but the image config says {diff_id}"
            )));
        }
        Ok(())
    };
    let media_type = oci_media_type(media_type);
    if store.has_blob(digest) {
        let mut reader = store.open_blob(digest)?;
        let (unpacked, tar_size) = unpacked_digest(&mut reader, &media_type)
            .map_err(|e| client.error(format!("layer {digest}: {e}")))?;
        check(unpacked)?;
        progress.layer(digest, size, false);
        return Ok(LayerInfo {
            blob: *digest,
            diff_id: *diff_id,
            media_type,
            size,
            tar_size,
        });
    }
    let stage = format!("fetching layer {digest}");
    let body = client.open_blob(repository, digest, size, &stage)?;
    let mut blob = store.blob_writer()?;
    let (unpacked, tar_size) = {
        progress.start(digest, size);
        let body = Counted {
            inner: body,
            digest,
            progress,
        };
        let mut tee = Tee {
            inner: body,
            copy: &mut blob,
        };
        match unpacked_digest(&mut tee, &media_type) {
            Ok(unpacked) => unpacked,
            Err(e) => {
                return Err(match tee.inner.inner.failure.take() {
                    Some(failure) => failure,
                    None => client.body_error(e, &stage),
                })
            }
        }
    };
    check(unpacked)?;
    // Nothing is kept unless it hashes to the digest the manifest gave.
    let (_, stored) = blob.commit(Some(digest)).map_err(|e| match e {
        StoreError::DigestMismatch { actual, .. } => {
            client.error(format!("layer {digest}: what came has digest {actual}"))
        }
        other => other.into(),
    })?;
    progress.layer(digest, stored, true);
    Ok(LayerInfo {
        blob: *digest,
        diff_id: *diff_id,
        media_type,
        size: stored,
        tar_size,
    })
}

/// What `lade push` asks for.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    pub client: ClientOptions,
    /// `--compression gzip`: layers stored otherwise (zstd, or uncompressed) are pushed
    /// gzip-compressed, for registries and clients that lack zstd (Docker 20.10).
    /// Without it, layers stored uncompressed (as builds leave them) are pushed
    /// zstd-compressed and the others as stored.
    pub gzip: bool,
}

/// Pushes the store's image `source` as `destination`: blobs the registry lacks, then
/// the manifest. Returns the manifest's digest.
pub fn push(
    store: &Store,
    source: &str,
    destination: &ImageRef,
    options: &PushOptions,
    progress: &dyn Fn(&str),
) -> Result<Digest> {
    let image = store.image(source)?;
    let client = Client::new(destination.registry(), &options.client)?;
    let repository = destination.repository();
    client.authenticate(repository, "pull,push")?;
    let converted: Vec<Option<Compressed>> = image
        .layers
        .iter()
        .map(|layer| push_compression(&layer.media_type, options.gzip))
        .collect();
    let (layers, manifest) = if converted.iter().any(Option::is_some) {
        let mut layers = Vec::new();
        for (layer, to) in image.layers.iter().zip(converted) {
            let Some(to) = to else {
                layers.push((layer.blob, layer.size, layer.media_type.clone()));
                continue;
            };
            progress(&format!(
                "{}: compressing with {}",
                layer.blob.short(),
                to.name()
            ));
            let (digest, size) = compress_layer(store, &layer.blob, &layer.media_type, to)?;
            layers.push((digest, size, to.media_type().to_string()));
        }
        let config_size = store.read_blob(&image.id)?.len() as u64;
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_MANIFEST,
            "config": { "mediaType": media::OCI_CONFIG, "digest": image.id.to_string(), "size": config_size },
            "layers": layers.iter().map(|(digest, size, media_type)| serde_json::json!({
                "mediaType": media_type, "digest": digest.to_string(), "size": size,
            })).collect::<Vec<_>>(),
        });
        (layers, crate::oci::canonical_json(&manifest))
    } else {
        let layers = image
            .layers
            .iter()
            .map(|l| (l.blob, l.size, l.media_type.clone()))
            .collect();
        (layers, store.read_blob(&image.manifest_digest)?)
    };
    let mut blobs: Vec<Digest> = layers.iter().map(|(digest, _, _)| *digest).collect();
    blobs.push(image.id);
    // Other repositories of this registry known to hold this image: a blob can be
    // mounted from them instead of uploaded.
    let prefix = format!("{}/", destination.registry());
    let mount_sources: Vec<String> = store
        .repo_digests(&image.manifest_digest)?
        .into_iter()
        .filter_map(|(r, _)| r.strip_prefix(&prefix).map(str::to_string))
        .filter(|r| r != repository)
        .collect();
    for digest in &blobs {
        if blob_exists(&client, repository, digest)? {
            progress(&format!("{}: already in the registry", digest.short()));
            continue;
        }
        if let Some(from) = mount_blob(&client, repository, digest, &mount_sources)? {
            progress(&format!("{}: mounted from {from}", digest.short()));
            continue;
        }
        upload_blob(store, &client, repository, digest)?;
        progress(&format!("{}: pushed", digest.short()));
    }
    put_manifest(
        &client,
        repository,
        destination.tag().unwrap_or("latest"),
        &manifest,
    )?;
    let digest = Digest::of(&manifest);
    store.record_repo_digest(
        &image.manifest_digest,
        &repository_name(destination),
        &digest,
    )?;
    Ok(digest)
}

/// How a layer is compressed on its way to a registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compressed {
    Zstd,
    Gzip,
}

impl Compressed {
    fn name(self) -> &'static str {
        match self {
            Compressed::Zstd => "zstd",
            Compressed::Gzip => "gzip",
        }
    }

    fn media_type(self) -> &'static str {
        match self {
            Compressed::Zstd => media::OCI_LAYER_ZSTD,
            Compressed::Gzip => media::OCI_LAYER_GZIP,
        }
    }
}

/// What a layer stored as `media_type` is converted to for a push, if anything: gzip
/// for all but gzip layers with `--compression gzip`; otherwise zstd for an
/// uncompressed layer (a build's), which a registry would otherwise take whole.
fn push_compression(media_type: &str, gzip: bool) -> Option<Compressed> {
    if gzip {
        return (!media_type.contains("gzip")).then_some(Compressed::Gzip);
    }
    matches!(media_type, media::OCI_LAYER_TAR | media::DOCKER_LAYER_TAR).then_some(Compressed::Zstd)
}

/// zstd level of pushed layers, as of the layers a build compresses.
const PUSH_ZSTD_LEVEL: i32 = 3;

/// A stored layer again as a blob in the store (the same tar), compressed `to`: its
/// digest and size. The same layer always gives the same bytes, so a second push of it
/// finds the registry has it.
fn compress_layer(
    store: &Store,
    blob: &Digest,
    media_type: &str,
    to: Compressed,
) -> Result<(Digest, u64)> {
    let failed = |e: io::Error| RegistryError::Io {
        path: store.root().join("blobs").join(blob.hex()),
        source: e,
    };
    let mut reader = store.open_blob(blob)?;
    let mut tar: Box<dyn Read> = if media_type.contains("zstd") {
        Box::new(zstd::stream::read::Decoder::new(&mut reader).map_err(failed)?)
    } else {
        Box::new(&mut reader)
    };
    let mut writer = store.blob_writer()?;
    match to {
        Compressed::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(&mut writer, flate2::Compression::fast());
            io::copy(&mut tar, &mut encoder).map_err(failed)?;
            encoder.finish().map_err(failed)?;
        }
        Compressed::Zstd => {
            let mut encoder =
                zstd::stream::write::Encoder::new(&mut writer, PUSH_ZSTD_LEVEL).map_err(failed)?;
            // Any worker count of one or more gives the same bytes.
            let workers = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
            encoder.multithread(workers.max(1)).map_err(failed)?;
            encoder.include_checksum(false).map_err(failed)?;
            io::copy(&mut tar, &mut encoder).map_err(failed)?;
            encoder.finish().map_err(failed)?;
        }
    }
    drop(tar);
    Ok(writer.commit(None)?)
}

/// Whether the registry has `digest` in `repository` already.
fn blob_exists(client: &Client, repository: &str, digest: &Digest) -> Result<bool> {
    let response = client
        .authorize(client.agent.head(client.blob_url(repository, digest)))
        .call()
        .map_err(|e| client.transport_error(e, &format!("asking whether it has {digest}")))?;
    Ok(response.status() == 200)
}

/// PUTs a manifest under `tag`, after its blobs.
fn put_manifest(client: &Client, repository: &str, tag: &str, manifest: &[u8]) -> Result<()> {
    let media_type = serde_json::from_slice::<Value>(manifest)
        .ok()
        .and_then(|v| v["mediaType"].as_str().map(str::to_string))
        .unwrap_or_else(|| media::OCI_MANIFEST.to_string());
    let mut response = client
        .authorize(
            client
                .agent
                .put(format!("{}/v2/{repository}/manifests/{tag}", client.base)),
        )
        .header("Content-Type", media_type)
        .send(manifest)
        .map_err(|e| client.transport_error(e, &format!("pushing the manifest as {tag}")))?;
    if response.status() != 201 && response.status() != 200 {
        return Err(client.status_error("the manifest", &mut response));
    }
    Ok(())
}

/// A cross-repository mount: the registry links a blob it holds in `sources` into
/// `repository` without an upload. Returns the repository it came from.
fn mount_blob(
    client: &Client,
    repository: &str,
    digest: &Digest,
    sources: &[String],
) -> Result<Option<String>> {
    for from in sources {
        let response = client
            .authorize(client.agent.post(format!(
                "{}/v2/{repository}/blobs/uploads/?mount={digest}&from={from}",
                client.base
            )))
            .send_empty()
            .map_err(|e| client.transport_error(e, &format!("mounting {digest} from {from}")))?;
        if response.status() == 201 {
            return Ok(Some(from.clone()));
        }
        // 202: the registry started a plain upload instead; it is left to expire.
    }
    Ok(None)
}

fn upload_blob(store: &Store, client: &Client, repository: &str, digest: &Digest) -> Result<()> {
    let path = store.blob_path(digest);
    let size = std::fs::metadata(&path)
        .map_err(|source| RegistryError::Io {
            path: path.clone(),
            source,
        })?
        .len();
    // Read through the store's verifying reader; the registry checks the digest too.
    let mut reader = store.open_blob(digest)?;
    upload(client, repository, digest, size, &mut reader)
}

/// A monolithic upload: POST for a session, PUT of the whole blob with its digest.
fn upload(
    client: &Client,
    repository: &str,
    digest: &Digest,
    size: u64,
    reader: &mut dyn Read,
) -> Result<()> {
    let mut started = client
        .authorize(
            client
                .agent
                .post(format!("{}/v2/{repository}/blobs/uploads/", client.base)),
        )
        .send_empty()
        .map_err(|e| client.transport_error(e, &format!("starting the upload of {digest}")))?;
    if started.status() != 202 {
        return Err(client.status_error(&format!("starting the upload of {digest}"), &mut started));
    }
    let location = started
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| client.error("an upload without a Location"))?
        .to_string();
    let mut location = absolute(client, &location);
    let chunk = upload_chunk_size();
    if size > chunk {
        // In chunks: a PATCH each (the registry says where the next one goes), then
        // the PUT that names the digest.
        let mut offset = 0u64;
        while offset < size {
            let length = chunk.min(size - offset);
            let mut part = (&mut *reader).take(length);
            let mut response = client
                .upload_request(client.agent.patch(&location))
                .header("Content-Type", "application/octet-stream")
                .header("Content-Range", format!("{offset}-{}", offset + length - 1))
                .header("Content-Length", length.to_string())
                .send(ureq::SendBody::from_reader(&mut part))
                .map_err(|e| {
                    client.transport_error(e, &format!("uploading {digest} at byte {offset}"))
                })?;
            if response.status() != 202 {
                return Err(client.status_error(
                    &format!("uploading {digest} at byte {offset}"),
                    &mut response,
                ));
            }
            if let Some(next) = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
            {
                location = absolute(client, next);
            }
            offset += length;
        }
        let separator = if location.contains('?') { '&' } else { '?' };
        let mut response = client
            .upload_request(
                client
                    .agent
                    .put(format!("{location}{separator}digest={digest}")),
            )
            .header("Content-Length", "0")
            .send_empty()
            .map_err(|e| client.transport_error(e, &format!("finishing the upload of {digest}")))?;
        if response.status() != 201 {
            return Err(
                client.status_error(&format!("finishing the upload of {digest}"), &mut response)
            );
        }
        return Ok(());
    }
    let separator = if location.contains('?') { '&' } else { '?' };
    let url = format!("{location}{separator}digest={digest}");
    let mut response = client
        .upload_request(client.agent.put(&url))
        .header("Content-Type", "application/octet-stream")
        .header("Content-Length", size.to_string())
        .send(ureq::SendBody::from_reader(reader))
        .map_err(|e| client.transport_error(e, &format!("uploading {digest}")))?;
    if response.status() != 201 {
        return Err(client.status_error(&format!("uploading {digest}"), &mut response));
    }
    Ok(())
}

/// Blobs larger than this go up in chunks of this size (`$LADE_UPLOAD_CHUNK_SIZE`
/// bytes; 64 MiB by default): some proxies in front of registries bound a request's body.
fn upload_chunk_size() -> u64 {
    std::env::var("LADE_UPLOAD_CHUNK_SIZE")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(64 << 20)
}

/// A Location header as a full URL.
fn absolute(client: &Client, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        location.to_string()
    } else {
        format!("{}{location}", client.base)
    }
}

fn layout_blob(dir: &Path, digest: &Digest) -> PathBuf {
    dir.join("blobs/sha256").join(digest.hex())
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> RegistryError + '_ {
    move |source| RegistryError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Pushes the manifest an OCI layout at `dir` names `ref_name` (in `index.json`), with
/// its config and layers, as `destination`: a build cache exported for a registry
/// (`--cache-to type=registry`). Returns the manifest's digest.
pub fn push_layout(
    dir: &Path,
    ref_name: &str,
    destination: &ImageRef,
    options: &ClientOptions,
) -> Result<Digest> {
    let index_path = dir.join("index.json");
    let index: Value =
        serde_json::from_slice(&std::fs::read(&index_path).map_err(io_at(&index_path))?)
            .map_err(|e| json_error(&index_path.display().to_string(), "index.json", e))?;
    let manifest_digest: Digest = index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["annotations"][crate::oci::REF_NAME_ANNOTATION] == ref_name)
        .and_then(|m| m["digest"].as_str())
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| {
            json_error(
                &dir.display().to_string(),
                "index.json",
                format!("names no {ref_name}"),
            )
        })?;
    let manifest_path = layout_blob(dir, &manifest_digest);
    let manifest = std::fs::read(&manifest_path).map_err(io_at(&manifest_path))?;
    if Digest::of(&manifest) != manifest_digest {
        return Err(json_error(
            &manifest_path.display().to_string(),
            "the manifest",
            "does not match its digest",
        ));
    }
    let parsed: Value = serde_json::from_slice(&manifest)
        .map_err(|e| json_error(&manifest_path.display().to_string(), "the manifest", e))?;
    let client = Client::new(destination.registry(), options)?;
    let repository = destination.repository();
    client.authenticate(repository, "pull,push")?;
    let blobs: Vec<Digest> = std::iter::once(&parsed["config"])
        .chain(parsed["layers"].as_array().into_iter().flatten())
        .filter_map(|d| d["digest"].as_str().and_then(|d| d.parse().ok()))
        .collect();
    for digest in &blobs {
        if blob_exists(&client, repository, digest)? {
            continue;
        }
        let path = layout_blob(dir, digest);
        let mut file = std::fs::File::open(&path).map_err(io_at(&path))?;
        let size = file.metadata().map_err(io_at(&path))?.len();
        upload(&client, repository, digest, size, &mut file)?;
    }
    put_manifest(
        &client,
        repository,
        destination.tag().unwrap_or("latest"),
        &manifest,
    )?;
    Ok(manifest_digest)
}

/// Fetches `reference`'s manifest, config and layers into an OCI layout at `dir` (each
/// checked against its digest), named `ref_name` in `index.json`: a build cache
/// imported from a registry (`--cache-from type=registry`).
pub fn pull_layout(
    reference: &ImageRef,
    dir: &Path,
    ref_name: &str,
    options: &ClientOptions,
) -> Result<()> {
    let client = Client::new(reference.registry(), options)?;
    let repository = reference.repository();
    client.authenticate(repository, "pull")?;
    let wanted = reference
        .digest()
        .map(str::to_string)
        .unwrap_or_else(|| reference.tag().unwrap_or("latest").to_string());
    let (manifest, media_type, manifest_digest) = client.manifest(repository, &wanted)?;
    let parsed: Value = serde_json::from_slice(&manifest)
        .map_err(|e| json_error(&reference.familiar(), "its manifest", e))?;
    let blobs_dir = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs_dir).map_err(io_at(&blobs_dir))?;
    let descriptors: Vec<(Digest, u64)> = std::iter::once(&parsed["config"])
        .chain(parsed["layers"].as_array().into_iter().flatten())
        .filter_map(|d| {
            let digest = d["digest"].as_str().and_then(|d| d.parse().ok())?;
            Some((digest, d["size"].as_u64().unwrap_or(0)))
        })
        .collect();
    for (digest, size) in &descriptors {
        let target = layout_blob(dir, digest);
        let partial = target.with_extension("part");
        let stage = format!("fetching blob {digest}");
        let mut body = client.open_blob(repository, digest, *size, &stage)?;
        let file = std::fs::File::create(&partial).map_err(io_at(&partial))?;
        let mut hashing = Sha256Writer::new(io::BufWriter::new(file));
        let copied = io::copy(&mut body, &mut hashing);
        let (actual, _, writer) = hashing.finish();
        let flushed = writer.into_inner().map_err(|e| e.into_error());
        if let Err(e) = copied {
            let _ = std::fs::remove_file(&partial);
            return Err(match body.failure.take() {
                Some(failure) => failure,
                None => client.body_error(e, &stage),
            });
        }
        if let Err(e) = flushed {
            let _ = std::fs::remove_file(&partial);
            return Err(RegistryError::Io {
                path: partial,
                source: e,
            });
        }
        if actual != *digest {
            let _ = std::fs::remove_file(&partial);
            return Err(client.error(format!("blob {digest}: what came has digest {actual}")));
        }
        std::fs::rename(&partial, &target).map_err(io_at(&target))?;
    }
    let manifest_path = layout_blob(dir, &manifest_digest);
    std::fs::write(&manifest_path, &manifest).map_err(io_at(&manifest_path))?;
    let index = crate::oci::canonical_json(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": [{
            "mediaType": if media_type.is_empty() { media::OCI_MANIFEST.to_string() } else { media_type },
            "digest": manifest_digest.to_string(),
            "size": manifest.len(),
            "annotations": { crate::oci::REF_NAME_ANNOTATION: ref_name },
        }],
    }));
    let index_path = dir.join("index.json");
    std::fs::write(&index_path, index).map_err(io_at(&index_path))?;
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
        .map_err(io_at(&dir.join("oci-layout")))?;
    Ok(())
}

/// `lade login`: checks the credentials against the registry, then saves them.
pub fn login(
    registry: &str,
    credentials: Credentials,
    insecure: bool,
) -> Result<std::path::PathBuf> {
    let client = Client::new(
        registry,
        &ClientOptions {
            insecure,
            credentials: Some(credentials.clone()),
        },
    )?;
    // Any repository scope will do for the check; the token service says whether
    // the credentials are good.
    client.authenticate("lade-login-check", "pull")?;
    let authorization = client
        .authorization
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let mut request = client.agent.get(format!("{}/v2/", client.base));
    if let Some(value) = &authorization {
        request = request.header("Authorization", value.as_str());
    }
    let response = request
        .call()
        .map_err(|e| client.transport_error(e, "checking the credentials"))?;
    if response.status() == 401 {
        return Err(client.error("the user name or password is wrong"));
    }
    auth::save(registry, &credentials)
}

/// `lade logout`: whether credentials were saved for `registry`.
pub fn logout(registry: &str) -> Result<bool> {
    auth::remove(registry)
}

/// One `lade search` result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchResult {
    pub name: String,
    pub description: String,
    pub stars: u64,
    pub official: bool,
}

/// `lade search`: Docker Hub's search API for `docker.io`, a registry's `/v2/_catalog`
/// (names containing the term) for any other. `term` is `[REGISTRY/]TEXT`.
pub fn search(term: &str, limit: usize, options: &ClientOptions) -> Result<Vec<SearchResult>> {
    let (registry, text) = match term.split_once('/') {
        Some((host, rest)) if host.contains('.') || host.contains(':') || host == "localhost" => {
            (host.to_string(), rest.to_string())
        }
        _ => ("docker.io".to_string(), term.to_string()),
    };
    let client = Client::new(&registry, options)?;
    if registry == "docker.io" {
        let mut response = client
            .agent
            .get("https://index.docker.io/v1/search")
            .query("q", &text)
            .query("n", limit.to_string())
            .call()
            .map_err(|e| client.transport_error(e, "searching Docker Hub"))?;
        let body = client.json("search", &mut response)?;
        return Ok(body["results"]
            .as_array()
            .into_iter()
            .flatten()
            .take(limit)
            .map(|r| SearchResult {
                name: r["name"].as_str().unwrap_or_default().to_string(),
                description: r["description"].as_str().unwrap_or_default().to_string(),
                stars: r["star_count"].as_u64().unwrap_or(0),
                official: r["is_official"].as_bool().unwrap_or(false),
            })
            .collect());
    }
    client.authenticate_scope("registry:catalog:*")?;
    let mut response = client.get(
        &format!("{}/v2/_catalog?n=1000", client.base),
        None,
        "listing its repositories",
    )?;
    let body = client.json("the catalog", &mut response)?;
    Ok(body["repositories"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|name| name.contains(&text))
        .take(limit)
        .map(|name| SearchResult {
            name: format!("{registry}/{name}"),
            description: String::new(),
            stars: 0,
            official: false,
        })
        .collect())
}
