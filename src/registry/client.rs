//! The HTTP side of a registry: the agent (TLS, timeouts, plain HTTP for loopback),
//! authorized requests, GETs retried on failures, 429 and 5xx, answers read within
//! bounds, and a registry's error answers turned into [`RegistryError`]s.

use std::io::{self, Read};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

use super::auth::{credentials_for, Credentials};
use super::timeouts::{Paced, Timeouts, Trickled};
use super::{config, tls, RegistryError, Result};
use crate::oci::{Digest, ImageRef};

/// The media types lade accepts for a manifest, best first.
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// How a client talks to a registry.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// `--tls-verify=false`: plain HTTP (or unverified TLS) to any registry.
    pub insecure: bool,
    /// Credentials given on the command line (`login -u`), rather than saved ones.
    pub credentials: Option<Credentials>,
    /// Docker's configuration directory (`--config`), where saved credentials are
    /// looked up [default: `$DOCKER_CONFIG`, else `~/.docker`].
    pub docker_config: Option<std::path::PathBuf>,
}

/// One registry, with the authorization it has earned.
pub(super) struct Client {
    pub(super) agent: ureq::Agent,
    /// As named in image references (`docker.io`, `127.0.0.1:5000`).
    pub(super) registry: String,
    /// `https://registry-1.docker.io`, `http://127.0.0.1:5000`.
    pub(super) base: String,
    pub(super) credentials: Option<Credentials>,
    pub(super) authorization: Mutex<Option<String>>,
    pub(super) timeouts: Timeouts,
}

/// The stage of the first request to a registry, as errors name it.
pub(super) const CHECKING: &str = "checking the registry (GET /v2/)";

/// Tries of a GET whose connection fails or times out, and of a small body's fetch.
const GET_ATTEMPTS: u32 = 3;

/// The most lade reads of an answer whose size nothing vouches for (a manifest, a
/// token, a tag list, the catalogue): a hostile registry's endless answer ends here,
/// not in memory.
pub(super) const SMALL_ANSWER_LIMIT: u64 = 4 << 20;

fn is_loopback(registry: &str) -> bool {
    let host = registry.rsplit_once(':').map_or(registry, |(h, _)| h);
    host == "localhost" || host.starts_with("127.") || host == "[::1]"
}

impl Client {
    /// A client for `registry`: HTTPS checked against the system's roots and the
    /// registry's `certs.d` CAs; plain HTTP only for a loopback registry that does not
    /// speak TLS, or with `insecure` (which also accepts any certificate).
    pub(super) fn new(registry: &str, options: &ClientOptions) -> Result<Client> {
        let host = if registry == "docker.io" {
            "registry-1.docker.io"
        } else {
            registry
        };
        let insecure = options.insecure || config::is_insecure(registry)?;
        let tls = tls::client_config(registry, insecure)?;
        let timeouts = Timeouts::from_env()?;
        let credentials = match &options.credentials {
            Some(given) => Some(given.clone()),
            None => credentials_for(registry, options.docker_config.as_deref())?,
        };
        let mut client = Client {
            agent: timeouts.agent(tls::connector(tls)),
            timeouts,
            registry: registry.to_string(),
            base: format!("https://{host}"),
            credentials,
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
    pub(super) fn fetch_small(
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

    pub(super) fn error(&self, reason: impl Into<String>) -> RegistryError {
        RegistryError::Registry {
            registry: self.registry.clone(),
            reason: reason.into(),
        }
    }

    /// A request that failed during `stage`: a limit that ran out or a TLS refusal in
    /// words, anything else as ureq says it.
    pub(super) fn transport_error(&self, error: ureq::Error, stage: &str) -> RegistryError {
        if let Some(refusal) = tls::refusal(&self.registry, &error) {
            return refusal;
        }
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
    pub(super) fn body_error(&self, error: io::Error, stage: &str) -> RegistryError {
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
    pub(super) fn blob_request(
        &self,
        url: &str,
    ) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        self.authorize(self.agent.get(url))
            .config()
            .timeout_recv_body(None)
            .build()
    }

    /// A request that sends a blob: the registry may answer only once it has stored
    /// it, so the wait for the answer is [`Timeouts::upload_answer`].
    pub(super) fn upload_request<B>(
        &self,
        request: ureq::RequestBuilder<B>,
    ) -> ureq::RequestBuilder<B> {
        let answer = Some(self.timeouts.upload_answer());
        self.authorize(request)
            .config()
            .timeout_recv_response(answer)
            .timeout_per_read(answer)
            .build()
    }

    pub(super) fn authorize<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &*self.authorization.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(value) => request.header("Authorization", value.as_str()),
            None => request,
        }
    }

    /// GET of a small answer (see [`Client::get_with`]).
    pub(super) fn get(
        &self,
        url: &str,
        accept: Option<&str>,
        stage: &str,
    ) -> Result<ureq::http::Response<ureq::Body>> {
        self.get_with(url, accept, stage, false)
    }

    /// GET with retries: a failed or timed-out connection, 429 (after its Retry-After)
    /// and 5xx, three tries in all, backing off. A `blob`'s body has no total limit.
    pub(super) fn get_with(
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

    pub(super) fn status_error(
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
    pub(super) fn json(
        &self,
        what: &str,
        response: &mut ureq::http::Response<ureq::Body>,
    ) -> Result<Value> {
        if response.status() != 200 {
            return Err(self.status_error(what, response));
        }
        let text = self.read_small(response, &format!("fetching {what}"))?;
        serde_json::from_slice(&text).map_err(|e| self.error(format!("{what}: {e}")))
    }

    /// The body of an answer whose size nothing vouches for, up to
    /// [`SMALL_ANSWER_LIMIT`].
    pub(super) fn read_small(
        &self,
        response: &mut ureq::http::Response<ureq::Body>,
        stage: &str,
    ) -> Result<Vec<u8>> {
        match response
            .body_mut()
            .with_config()
            .limit(SMALL_ANSWER_LIMIT)
            .read_to_vec()
        {
            Ok(bytes) => Ok(bytes),
            Err(ureq::Error::BodyExceedsLimit(_)) => Err(self.error(format!(
                "{stage}: the answer is larger than the {SMALL_ANSWER_LIMIT} bytes lade takes"
            ))),
            Err(e) => Err(self.transport_error(e, stage)),
        }
    }

    /// A client for `reference`'s registry, allowed to pull from its repository.
    pub(super) fn for_pull(reference: &ImageRef, options: &ClientOptions) -> Result<Client> {
        let client = Client::new(reference.registry(), options)?;
        client.authenticate(reference.repository(), "pull")?;
        Ok(client)
    }

    /// The manifest (or index) `reference` names, by its digest when pinned (the
    /// registry's answer checked against it), else by its tag (`latest` when it has
    /// none): its bytes, media type and digest.
    pub(super) fn named_manifest(&self, reference: &ImageRef) -> Result<(Vec<u8>, String, Digest)> {
        let wanted = match reference.digest() {
            Some(pinned) => pinned.to_string(),
            None => reference.tag().unwrap_or("latest").to_string(),
        };
        let answer = self.manifest(reference.repository(), &wanted)?;
        if let Some(pinned) = reference.digest() {
            if answer.2.to_string() != pinned {
                return Err(self.error(format!(
                    "the manifest of {} has digest {}, not {pinned}",
                    reference.familiar(),
                    answer.2
                )));
            }
        }
        Ok(answer)
    }

    /// A manifest by tag or digest: its bytes, media type and digest. A
    /// `Docker-Content-Digest` header that names another digest than the bytes' is
    /// refused, as Docker does: what the registry says it sent is what came.
    pub(super) fn manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<(Vec<u8>, String, Digest)> {
        let separator = if reference.contains(':') { '@' } else { ':' };
        let name = format!("{}/{repository}{separator}{reference}", self.registry);
        let url = format!("{}/v2/{repository}/manifests/{reference}", self.base);
        let stage = format!("fetching the manifest of {name}");
        let (headers, bytes) = self.fetch_small(&url, Some(ACCEPT), SMALL_ANSWER_LIMIT, &stage)?;
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

    pub(super) fn blob_url(&self, repository: &str, digest: &Digest) -> String {
        format!("{}/v2/{repository}/blobs/{digest}", self.base)
    }
}

/// `stage`, with how many times it was tried when more than once.
pub(super) fn tried(stage: &str, attempts: u32) -> String {
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
