//! `registries.conf`, as podman reads it (v2 format): the registries marked
//! `insecure = true` are reached without checking TLS, or over plain HTTP. Read from
//! `$CONTAINERS_REGISTRIES_CONF`, else `/etc/containers/registries.conf` and the files
//! of `/etc/containers/registries.conf.d/`. A file that cannot be read is skipped; one
//! that does not parse is an error naming it.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{RegistryError, Result};

#[derive(Debug, Default, Deserialize)]
struct File {
    #[serde(default)]
    registry: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
struct Entry {
    #[serde(default)]
    location: Option<String>,
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    insecure: bool,
}

fn files() -> Vec<PathBuf> {
    if let Some(path) = std::env::var_os("CONTAINERS_REGISTRIES_CONF") {
        return vec![PathBuf::from(path)];
    }
    let mut files = vec![PathBuf::from("/etc/containers/registries.conf")];
    if let Ok(entries) = std::fs::read_dir("/etc/containers/registries.conf.d") {
        let mut extra: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "conf"))
            .collect();
        extra.sort();
        files.extend(extra);
    }
    files
}

fn parse(path: &Path, text: &str) -> Result<File> {
    toml::from_str(text).map_err(|e| RegistryError::Config {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Whether `registry` (`host[:port]`) is marked insecure.
pub(crate) fn is_insecure(registry: &str) -> Result<bool> {
    let mut insecure = false;
    for path in files() {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for entry in parse(&path, &text)?.registry {
            let location = entry.location.or(entry.prefix).unwrap_or_default();
            if location == registry {
                insecure = entry.insecure;
            }
        }
    }
    Ok(insecure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_registries_as_podman_writes_them() {
        let file = parse(
            Path::new("registries.conf"),
            "unqualified-search-registries = [\"docker.io\"]\n\n[[registry]]\nlocation = \"10.0.0.5:5000\"\ninsecure = true\n\n[[registry]]\nprefix = \"example.com\"\nlocation = \"mirror.example.com\"\n",
        )
        .unwrap();
        assert_eq!(file.registry.len(), 2);
        assert!(file.registry[0].insecure);
        assert!(!file.registry[1].insecure);
        let bad = parse(Path::new("registries.conf"), "[[registry]\n").unwrap_err();
        assert!(bad.to_string().contains("registries.conf"), "{bad}");
    }
}
