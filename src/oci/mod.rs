//! The image format's types: sha256 digests, media types, the image config (Docker's,
//! a superset of the OCI one), image references, and canonical JSON so that the same
//! content always gives the same digest.
//!
//! Manifests, indexes, descriptors and the config are our own small serde types rather
//! than oci-spec's: Docker's config carries fields that oci-spec's drops (Healthcheck,
//! OnBuild, Shell), a manifest or index read must keep the fields no type names, and a
//! bad document must be refused with what is wrong in it. The OCI image layout on disk
//! is read and written by [`layout`] (std::fs only: `oci` uses no other module).

mod config;
mod digest;
pub mod layout;
mod manifest;
mod reference;

pub use config::{ContainerConfig, Healthcheck, History, ImageConfig, RootFs};
pub use digest::{Digest, DigestError, Sha256Writer};
pub use layout::{Layout, LayoutError};
pub use manifest::{
    declared_media_type, Descriptor, ImageIndex, ImageManifest, Kind, ManifestError, PlatformSpec,
};
pub use reference::{ImageRef, ReferenceError};

/// Media types lade writes or reads, named here once.
pub mod media {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
    /// The config (and artifact type) of a lade build cache's manifest.
    pub const LADE_BUILD_CACHE: &str = "application/vnd.lade.build-cache.v1+json";
}

/// The annotation that names a tag in an OCI layout's `index.json`.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// The platform of this machine, in OCI terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: (architecture == "arm64").then(|| "v8".to_string()),
        }
    }

    /// Parses `os/arch[/variant]`.
    pub fn parse(text: &str) -> Option<Platform> {
        let mut parts = text.split('/');
        let os = parts.next().filter(|s| !s.is_empty())?;
        let architecture = parts.next().filter(|s| !s.is_empty())?;
        let variant = parts.next().map(str::to_string);
        if parts.next().is_some() {
            return None;
        }
        Some(Platform {
            os: os.into(),
            architecture: architecture.into(),
            variant,
        })
    }
}

impl Platform {
    /// Parses a comma-separated list (`linux/amd64,linux/arm64`), as `--platform` takes
    /// it; the error is the first entry that is not `os/arch[/variant]`.
    pub fn parse_list(text: &str) -> Result<Vec<Platform>, String> {
        let mut platforms: Vec<Platform> = Vec::new();
        for part in text.split(',').map(str::trim) {
            let platform = Platform::parse(part).ok_or_else(|| part.to_string())?;
            if !platforms.contains(&platform) {
                platforms.push(platform);
            }
        }
        Ok(platforms)
    }

    /// The platform an image config says it is for.
    pub fn of_config(config: &ImageConfig) -> Platform {
        Platform {
            os: config.os.clone(),
            architecture: config.architecture.clone(),
            variant: config.variant.clone().filter(|v| !v.is_empty()),
        }
    }

    /// Whether an image for `self` serves a request for `wanted`: the same os and
    /// architecture, and the same variant when both name one (`linux/arm64` and
    /// `linux/arm64/v8` are the same machine).
    pub fn serves(&self, wanted: &Platform) -> bool {
        self.os == wanted.os
            && self.architecture == wanted.architecture
            && match (&self.variant, &wanted.variant) {
                (Some(have), Some(want)) => have == want,
                _ => true,
            }
    }

    /// Whether this machine runs programs for `self` natively (no emulator).
    pub fn is_native(&self) -> bool {
        let host = Platform::host();
        self.os == host.os && self.architecture == host.architecture
    }

    /// The entry of an image index for this platform.
    pub fn spec(&self) -> PlatformSpec {
        PlatformSpec {
            architecture: self.architecture.clone(),
            os: self.os.clone(),
            variant: self.variant.clone(),
            extra: Default::default(),
        }
    }

    /// The platform an index entry names.
    pub fn of_spec(spec: &PlatformSpec) -> Platform {
        Platform {
            os: spec.os.clone(),
            architecture: spec.architecture.clone(),
            variant: spec.variant.clone().filter(|v| !v.is_empty()),
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// Serializes a value as canonical JSON: object keys sorted, no insignificant
/// whitespace. The same value always gives the same bytes, hence the same digest.
pub fn canonical_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    let value = serde_json::to_value(value).expect("lade's types always serialize to JSON");
    let mut out = Vec::with_capacity(512);
    write_canonical(&value, &mut out);
    out
}

fn write_canonical(value: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(&serde_json::to_vec(key).unwrap_or_default());
                out.push(b':');
                write_canonical(value, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => out.extend_from_slice(&serde_json::to_vec(scalar).unwrap_or_default()),
    }
}

/// `64m`, `1g`, `512k`, `100` (bytes); binary units as Docker's `RAMInBytes`.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim().to_ascii_lowercase();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let number: f64 = text[..split].parse().ok()?;
    let unit = text[split..].trim_end_matches("ib").trim_end_matches('b');
    let scale: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0f64.powi(4),
        _ => return None,
    };
    let bytes = number * scale;
    (bytes.is_finite() && bytes >= 0.0).then_some(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let value = serde_json::json!({"b": 1, "a": {"d": [1, {"z": 0, "y": "x"}], "c": null}});
        assert_eq!(
            String::from_utf8(canonical_json(&value)).unwrap(),
            r#"{"a":{"c":null,"d":[1,{"y":"x","z":0}]},"b":1}"#
        );
    }

    #[test]
    fn platforms() {
        assert_eq!(
            Platform::parse("linux/arm64/v8").unwrap().to_string(),
            "linux/arm64/v8"
        );
        assert!(Platform::parse("linux").is_none());
        assert_eq!(Platform::host().os, "linux");
    }
}
