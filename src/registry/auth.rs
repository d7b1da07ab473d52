//! Credentials, where podman and Docker keep them: read from
//! `$XDG_RUNTIME_DIR/containers/auth.json` (for root without it,
//! `/run/containers/0/auth.json`, as podman) and then `~/.docker/config.json`; written
//! (by `lade login`) where podman writes them, mode 0600. A secret is never printed.
//!
//! And what a client does with them: the `/v2/` challenge answered with Basic
//! credentials or a bearer token from the registry's token service.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use base64::Engine as _;
use serde_json::{json, Value};

use super::client::{Client, CHECKING};
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

impl Credentials {
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

fn docker_config() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker/config.json"))
}

/// The keys a registry may be filed under (`docker.io` is Docker Hub's index too).
fn keys(registry: &str) -> Vec<String> {
    let mut keys = vec![
        registry.to_string(),
        format!("https://{registry}"),
        format!("http://{registry}"),
    ];
    if registry == "docker.io" || registry == "registry-1.docker.io" {
        keys.push("https://index.docker.io/v1/".into());
        keys.push("index.docker.io".into());
        keys.push("docker.io".into());
    }
    keys
}

fn from_file(path: &PathBuf, registry: &str) -> Option<Credentials> {
    let text = fs::read_to_string(path).ok()?;
    let file: Value = serde_json::from_str(&text).ok()?;
    let auths = file.get("auths")?;
    for key in keys(registry) {
        let Some(entry) = auths.get(&key) else {
            continue;
        };
        let encoded = entry.get("auth").and_then(Value::as_str)?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (username, password) = decoded.split_once(':')?;
        return Some(Credentials {
            username: username.to_string(),
            password: password.to_string(),
        });
    }
    None
}

/// The credentials saved for `registry`, if any.
pub fn credentials_for(registry: &str) -> Option<Credentials> {
    from_file(&auth_file(), registry)
        .or_else(|| docker_config().and_then(|p| from_file(&p, registry)))
}

/// Saves credentials for `registry` in [`auth_file`] (mode 0600).
pub fn save(registry: &str, credentials: &Credentials) -> Result<PathBuf> {
    let path = auth_file();
    let mut file: Value = fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| json!({ "auths": {} }));
    let encoded = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", credentials.username, credentials.password));
    if !file.get("auths").is_some_and(Value::is_object) {
        file["auths"] = json!({});
    }
    file["auths"][registry] = json!({ "auth": encoded });
    write(&path, &file)?;
    Ok(path)
}

/// Forgets the credentials of `registry`; whether there were any.
pub fn remove(registry: &str) -> Result<bool> {
    let path = auth_file();
    let Some(mut file) = fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
    else {
        return Ok(false);
    };
    let removed = file
        .get_mut("auths")
        .and_then(Value::as_object_mut)
        .is_some_and(|auths| keys(registry).iter().any(|k| auths.remove(k).is_some()));
    if removed {
        write(&path, &file)?;
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
    fn secrets_are_not_shown() {
        let c = Credentials {
            username: "me".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(c.basic(), "Basic bWU6aHVudGVyMg==");
    }
}
