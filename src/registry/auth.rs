//! Credentials, where podman and Docker keep them: read from
//! `$XDG_RUNTIME_DIR/containers/auth.json` (for root without it,
//! `/run/containers/0/auth.json`, as podman) and then Docker's config
//! (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`): the credential helper
//! it names for the registry (`credHelpers`, else `credsStore`; see [`super::helpers`]),
//! then its `auths`. Written (by `lade login`) through that helper when there is one,
//! else where podman writes them, mode 0600; `lade logout` removes them from all of
//! these. A secret is never printed.
//!
//! And what a client does with them: the `/v2/` challenge answered with Basic
//! credentials or a bearer token from the registry's token service.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{json, Value};

use super::client::{Client, CHECKING};
use super::helpers::Helper;
use super::{RegistryError, Result};

/// A user name and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <secret>)", self.username)
    }
}

/// The user name that marks the secret as an identity token (an OAuth2 refresh token),
/// as Docker's credential helpers and config file mark it.
pub(crate) const IDENTITY_TOKEN_USER: &str = "<token>";

impl Credentials {
    /// The identity token these credentials are, if they are one.
    pub(crate) fn identity_token(&self) -> Option<&str> {
        (self.username == IDENTITY_TOKEN_USER).then_some(self.password.as_str())
    }

    /// `Basic <base64(user:password)>`.
    pub(crate) fn basic(&self) -> String {
        let pair = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }
}

/// Where `lade login` writes: `$LADE_AUTH_FILE`, else podman's file.
pub fn auth_file() -> PathBuf {
    if let Some(path) =
        std::env::var_os("LADE_AUTH_FILE").or_else(|| std::env::var_os("REGISTRY_AUTH_FILE"))
    {
        return PathBuf::from(path);
    }
    let runtime = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(format!(
                "/run/containers/{}",
                nix::unistd::getuid().as_raw()
            ))
        });
    if std::env::var_os("XDG_RUNTIME_DIR").is_some() {
        runtime.join("containers/auth.json")
    } else {
        runtime.join("auth.json")
    }
}

/// Docker's `config.json`: in `dir` (`--config`), else `$DOCKER_CONFIG`, else
/// `~/.docker`, as Docker looks.
fn docker_config(dir: Option<&Path>) -> Option<PathBuf> {
    if let Some(dir) = dir {
        return Some(dir.join("config.json"));
    }
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker/config.json"))
}

/// Whether `registry` is Docker Hub, whatever it is called.
fn is_docker_hub(registry: &str) -> bool {
    matches!(
        registry,
        "docker.io" | "registry-1.docker.io" | "index.docker.io"
    )
}

/// The keys a registry may be filed under (`docker.io` is Docker Hub's index too).
fn keys(registry: &str) -> Vec<String> {
    let mut keys = vec![
        registry.to_string(),
        format!("https://{registry}"),
        format!("http://{registry}"),
    ];
    if is_docker_hub(registry) {
        keys.push(DOCKER_HUB_KEY.into());
        keys.push("index.docker.io".into());
        keys.push("docker.io".into());
    }
    keys
}

/// Docker's name for Docker Hub, in its files and to its credential helpers.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// The server URL a credential helper is asked about: the key Docker files `registry`
/// under, so that a helper shares its logins with Docker.
fn server_url(registry: &str) -> String {
    if is_docker_hub(registry) {
        DOCKER_HUB_KEY.to_string()
    } else {
        registry.to_string()
    }
}

/// A credentials file, parsed; `None` when it is missing or not JSON (as Docker and
/// podman, lade reads on without it).
fn load(path: &Path) -> Option<Value> {
    let text = fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// The credentials an `auths` entry holds for `registry`: `auth` (base64 of
/// `user:password`), or an `identitytoken`.
fn from_auths(file: &Value, registry: &str) -> Option<Credentials> {
    let auths = file.get("auths")?;
    let entry = keys(registry).iter().find_map(|key| auths.get(key))?;
    if let Some(token) = entry
        .get("identitytoken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        return Some(Credentials {
            username: IDENTITY_TOKEN_USER.into(),
            password: token.to_string(),
        });
    }
    let encoded = entry.get("auth").and_then(Value::as_str)?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (username, password) = decoded.split_once(':')?;
    Some(Credentials {
        username: username.to_string(),
        password: password.to_string(),
    })
}

/// The helper Docker's config names for `registry`: its `credHelpers` entry, which
/// wins, else `credsStore`.
fn helper_for(config: &Value, path: &Path, registry: &str) -> Option<Helper> {
    let named = |value: Option<&Value>| {
        value
            .and_then(Value::as_str)
            .filter(|name| !name.is_empty())
            .map(|name| Helper {
                name: name.to_string(),
                config: path.to_path_buf(),
            })
    };
    let helpers = config.get("credHelpers");
    keys(registry)
        .iter()
        .find_map(|key| named(helpers.and_then(|h| h.get(key))))
        .or_else(|| named(config.get("credsStore")))
}

/// The credentials saved for `registry`, if any: lade's (podman's) file, then
/// Docker's config, where a credential helper it names for the registry is asked
/// first. A helper that fails is an error: guessing on without the user's credentials
/// would end in a puzzling "authentication required". `docker_config` is Docker's
/// configuration directory when the command line names one.
pub fn credentials_for(
    registry: &str,
    docker_config: Option<&Path>,
) -> Result<Option<Credentials>> {
    if let Some(found) = load(&auth_file()).and_then(|file| from_auths(&file, registry)) {
        return Ok(Some(found));
    }
    let Some(path) = self::docker_config(docker_config) else {
        return Ok(None);
    };
    let Some(config) = load(&path) else {
        return Ok(None);
    };
    if let Some(helper) = helper_for(&config, &path, registry) {
        if let Some(found) = helper.get(&server_url(registry))? {
            return Ok(Some(found));
        }
    }
    Ok(from_auths(&config, registry))
}

/// Where `lade login` saved credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SavedTo {
    File(PathBuf),
    /// The credential helper `docker-credential-NAME`.
    Helper(String),
}

impl std::fmt::Display for SavedTo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SavedTo::File(path) => write!(f, "saved in {}", path.display()),
            SavedTo::Helper(program) => write!(f, "saved by {program}"),
        }
    }
}

/// Saves credentials for `registry`: through the credential helper Docker's config
/// names for it (as docker and podman do), else in [`auth_file`] (mode 0600).
pub fn save(
    registry: &str,
    credentials: &Credentials,
    docker_config: Option<&Path>,
) -> Result<SavedTo> {
    if let Some(path) = self::docker_config(docker_config) {
        if let Some(helper) = load(&path).and_then(|config| helper_for(&config, &path, registry)) {
            helper.store(&server_url(registry), credentials)?;
            // lade's file is read first: an older login there would hide this one.
            remove_from_file(&auth_file(), registry)?;
            return Ok(SavedTo::Helper(helper.program()));
        }
    }
    let path = auth_file();
    let mut file: Value = load(&path).unwrap_or_else(|| json!({ "auths": {} }));
    let encoded = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", credentials.username, credentials.password));
    if !file.get("auths").is_some_and(Value::is_object) {
        file["auths"] = json!({});
    }
    file["auths"][registry] = json!({ "auth": encoded });
    write(&path, &file)?;
    Ok(SavedTo::File(path))
}

/// Forgets the credentials of `registry` everywhere lade reads them: its own file,
/// Docker's config and the credential helper that config names. Where they were (none:
/// there were none).
pub fn remove(registry: &str, docker_config: Option<&Path>) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    let own = auth_file();
    if remove_from_file(&own, registry)? {
        removed.push(own.display().to_string());
    }
    let Some(path) = self::docker_config(docker_config) else {
        return Ok(removed);
    };
    let helper = load(&path).and_then(|config| helper_for(&config, &path, registry));
    if remove_from_file(&path, registry)? {
        removed.push(path.display().to_string());
    }
    if let Some(helper) = helper {
        // Docker's logout erases the scheme-prefixed keys too: a login may have filed
        // the registry under any of them.
        let mut urls = vec![server_url(registry)];
        if !is_docker_hub(registry) {
            urls.push(format!("https://{registry}"));
            urls.push(format!("http://{registry}"));
        }
        let mut erased = false;
        for url in urls {
            erased |= helper.erase(&url)?;
        }
        if erased {
            removed.push(helper.program());
        }
    }
    Ok(removed)
}

/// Drops `registry`'s `auths` entries from the file at `path`; whether it had any.
/// Everything else in the file (Docker's other settings) is kept.
fn remove_from_file(path: &Path, registry: &str) -> Result<bool> {
    let Some(mut file) = load(path) else {
        return Ok(false);
    };
    let removed = file
        .get_mut("auths")
        .and_then(Value::as_object_mut)
        .is_some_and(|auths| {
            // Every key, not the first found: one login may be filed under several.
            keys(registry)
                .iter()
                .filter(|k| auths.remove(k.as_str()).is_some())
                .count()
                > 0
        });
    if removed {
        // The file a symlinked config points at is rewritten, not the link replaced
        // (as Docker does).
        let target = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        write(&target, &file)?;
    }
    Ok(removed)
}

fn write(path: &PathBuf, value: &Value) -> Result<()> {
    let failed = |source| RegistryError::Io {
        path: path.clone(),
        source,
    };
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(failed)?;
    }
    let tmp = path.with_extension("json.tmp");
    let mut out = fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(failed)?;
    let text = serde_json::to_vec_pretty(value).map_err(|e| RegistryError::Io {
        path: path.clone(),
        source: std::io::Error::other(e),
    })?;
    out.write_all(&text)
        .and_then(|()| out.sync_all())
        .map_err(failed)?;
    fs::rename(&tmp, path).map_err(failed)
}

/// A `WWW-Authenticate` challenge: its scheme and parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl Challenge {
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parses `Bearer realm="https://auth",service="registry",scope="repository:a:pull"`.
pub(crate) fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params = Vec::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let key = key.trim().trim_start_matches(',').trim().to_string();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (quoted[..end].to_string(), &quoted[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        params.push((key, value));
        rest = remaining.trim_start_matches([',', ' ']);
    }
    Some(Challenge {
        scheme: scheme.to_string(),
        params,
    })
}

impl Client {
    /// Earns the right to `actions` (`pull`, `pull,push`) on `repository`: the `/v2/`
    /// challenge, then Basic credentials or a bearer token from the token service.
    pub(super) fn authenticate(&self, repository: &str, actions: &str) -> Result<()> {
        self.authenticate_scope(&format!("repository:{repository}:{actions}"))
    }

    /// The same, for any scope (`registry:catalog:*`).
    pub(super) fn authenticate_scope(&self, scope: &str) -> Result<()> {
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
            .and_then(parse_challenge)
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

    fn token(&self, challenge: &Challenge, scope: &str) -> Result<String> {
        let realm = challenge
            .param("realm")
            .ok_or_else(|| self.error("its bearer challenge has no realm"))?;
        let stage = format!("asking the token service {realm} for a token");
        let identity_token = self
            .credentials
            .as_ref()
            .and_then(Credentials::identity_token);
        let answer = if let Some(refresh_token) = identity_token {
            // An identity token is no password: it is traded for an access token by
            // OAuth2's refresh-token grant, as Docker trades it.
            let mut form = vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("client_id", "lade"),
                ("scope", scope),
            ];
            if let Some(service) = challenge.param("service") {
                form.push(("service", service));
            }
            self.agent.post(realm).send_form(form)
        } else {
            let mut request = self.agent.get(realm).query("scope", scope);
            if let Some(service) = challenge.param("service") {
                request = request.query("service", service);
            }
            if let Some(credentials) = &self.credentials {
                request = request.header("Authorization", credentials.basic());
            }
            request.call()
        };
        let mut response = answer.map_err(|e| self.transport_error(e, &stage))?;
        match response.status().as_u16() {
            200 => {}
            401 | 403 => {
                return Err(RegistryError::Unauthorized {
                    registry: self.registry.clone(),
                })
            }
            status => return Err(self.error(format!("its token service answered {status}"))),
        }
        let text = self.read_small(&mut response, &stage)?;
        let body: Value = serde_json::from_slice(&text)
            .map_err(|e| self.error(format!("its token service's answer: {e}")))?;
        body.get("token")
            .or_else(|| body.get("access_token"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| self.error("its token service gave no token"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_as_registries_send_them() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "Bearer");
        assert_eq!(c.param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c.param("scope"), Some("repository:library/busybox:pull"));
        let basic = parse_challenge(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(basic.scheme, "Basic");
        assert_eq!(basic.param("realm"), Some("Registry Realm"));
    }

    #[test]
    fn cred_helpers_win_over_the_creds_store() {
        let path = Path::new("/c/config.json");
        let config = json!({
            "credHelpers": { "ecr.example:5000": "ecr-login", "index.docker.io": "hub" },
            "credsStore": "desktop",
        });
        let name = |registry| helper_for(&config, path, registry).map(|h| h.name);
        assert_eq!(name("ecr.example:5000").as_deref(), Some("ecr-login"));
        assert_eq!(name("docker.io").as_deref(), Some("hub"));
        assert_eq!(name("other.example").as_deref(), Some("desktop"));
        assert_eq!(
            helper_for(&json!({ "credsStore": "" }), path, "a.example"),
            None
        );
        assert_eq!(server_url("docker.io"), "https://index.docker.io/v1/");
        assert_eq!(server_url("127.0.0.1:5000"), "127.0.0.1:5000");
    }

    #[test]
    fn auths_entries_and_identity_tokens() {
        let file = json!({ "auths": {
            "https://index.docker.io/v1/": { "auth": "bWU6aHVudGVyMg==" },
            "acr.example": { "auth": "", "identitytoken": "refresh-me" },
        }});
        let hub = from_auths(&file, "docker.io").unwrap();
        assert_eq!((hub.username.as_str(), hub.identity_token()), ("me", None));
        let acr = from_auths(&file, "acr.example").unwrap();
        assert_eq!(acr.identity_token(), Some("refresh-me"));
        assert_eq!(from_auths(&file, "none.example"), None);
    }

    #[test]
    fn secrets_are_not_shown() {
        let c = Credentials {
            username: "me".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(c.basic(), "Basic bWU6aHVudGVyMg==");
    }
}
