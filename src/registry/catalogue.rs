//! What a registry holds and who may reach it: a repository's tags (`pull -a`),
//! `lade search` (Docker Hub's search API, another registry's catalogue), and
//! `lade login`/`logout` (credentials checked, then saved or removed).

use serde_json::Value;

use super::auth::{self, Credentials, SavedTo};
use super::client::{Client, ClientOptions};
use super::Result;
use crate::oci::ImageRef;

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

/// The manifest or index a reference names in its registry, as the registry serves it
/// (`manifest inspect` of a remote image), checked against its digest when pinned.
pub fn manifest(reference: &ImageRef, options: &ClientOptions) -> Result<Vec<u8>> {
    let client = Client::for_pull(reference, options)?;
    let (bytes, _, _) = client.named_manifest(reference)?;
    Ok(bytes)
}

/// `lade login`: checks the credentials against the registry, then saves them.
pub fn login(registry: &str, credentials: Credentials, options: &ClientOptions) -> Result<SavedTo> {
    let client = Client::new(
        registry,
        &ClientOptions {
            credentials: Some(credentials.clone()),
            ..options.clone()
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
    auth::save(registry, &credentials, options.docker_config.as_deref())
}

/// `lade logout`: where credentials for `registry` were removed from (none: there were
/// none).
pub fn logout(registry: &str, docker_config: Option<&std::path::Path>) -> Result<Vec<String>> {
    auth::remove(registry, docker_config)
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
