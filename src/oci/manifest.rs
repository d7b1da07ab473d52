//! Typed image manifests, image indexes and the descriptors they hold, read from the
//! bytes a store, an archive, a layout or a registry hands over (any of which may be
//! hostile), so that every reader checks the same fields the same way and says which
//! document is wrong and why, instead of each indexing untyped JSON.
//!
//! A manifest's bytes are hashed: these types are for reading, and for writing the
//! documents lade makes itself (through [`crate::oci::canonical_json`]). A document read
//! from elsewhere is stored or pushed as the bytes that came, never re-serialized; the
//! fields these types do not name are still kept (`extra`) so a value read and written
//! again loses nothing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{media, Digest};

/// Why a manifest or an index cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not JSON, or not of the document's shape (a field missing or of the wrong type,
    /// a digest that is not sha256).
    #[error("not a valid {document}: {source}")]
    Json {
        document: &'static str,
        source: serde_json::Error,
    },
    /// Docker's schema 1, which lade does not read.
    #[error("it is Docker's schema 1, which lade does not pull (push the image again with a newer tool)")]
    Schema1,
}

/// A descriptor: what a manifest or an index points at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Required by the spec; a missing one reads as empty (old Docker indexes omit it),
    /// and it is always written, as oci-spec's writer did, so digests stay the same.
    #[serde(default)]
    pub media_type: String,
    pub digest: Digest,
    /// Required: it bounds the body of the blob when it is fetched.
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<PlatformSpec>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Fields this type does not name (`urls`, `data`, ...), kept as they came.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Descriptor {
    /// A descriptor of `size` bytes with digest `digest`, nothing else.
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest,
            size,
            artifact_type: None,
            platform: None,
            annotations: BTreeMap::new(),
            extra: Map::new(),
        }
    }

    /// The tag an OCI layout's `index.json` gives this entry, if any.
    pub fn ref_name(&self) -> Option<&str> {
        self.annotation(super::REF_NAME_ANNOTATION)
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key).map(String::as_str)
    }

    /// Whether it points at an index (a multi-platform image) rather than a manifest.
    pub fn is_index(&self) -> bool {
        self.media_type == media::OCI_INDEX || self.media_type == media::DOCKER_MANIFEST_LIST
    }
}

/// The platform an index entry is for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlatformSpec {
    /// Both are required by the spec; a missing one reads as empty, which matches no
    /// platform, rather than refusing the whole index for one odd entry.
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl PlatformSpec {
    /// Whether this entry serves `platform`: the same os and architecture, and the same
    /// variant when both name one.
    pub fn matches(&self, platform: &super::Platform, check_variant: bool) -> bool {
        self.os == platform.os
            && self.architecture == platform.architecture
            && (!check_variant
                || match (&platform.variant, &self.variant) {
                    (Some(wanted), Some(have)) => wanted == have,
                    _ => true,
                })
    }
}

fn schema_version_2() -> u32 {
    2
}

/// An image manifest (OCI's, or Docker's v2 schema 2: the same shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    #[serde(default = "schema_version_2")]
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    /// Required by the spec, but an artifact may leave it out: read as none.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ImageManifest {
    /// An OCI manifest of `config` and `layers`, as lade writes one.
    pub fn new(config: Descriptor, layers: Vec<Descriptor>) -> ImageManifest {
        ImageManifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.to_string()),
            artifact_type: None,
            config,
            layers,
            subject: None,
            annotations: BTreeMap::new(),
            extra: Map::new(),
        }
    }

    /// Reads a manifest. Docker's schema 1 is refused by name.
    pub fn from_slice(bytes: &[u8]) -> Result<ImageManifest, ManifestError> {
        if Kind::of(bytes) == Some(Kind::Schema1) {
            return Err(ManifestError::Schema1);
        }
        serde_json::from_slice(bytes).map_err(|source| ManifestError::Json {
            document: "image manifest",
            source,
        })
    }

    /// The canonical bytes of a manifest lade makes (sorted keys, no whitespace).
    pub fn to_canonical_json(&self) -> Vec<u8> {
        super::canonical_json(self)
    }
}

/// An image index: an OCI layout's `index.json`, or a multi-platform image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    #[serde(default = "schema_version_2")]
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Required by the spec; an index without it has nothing in it.
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ImageIndex {
    /// An OCI index of `manifests`, as lade writes one.
    pub fn new(manifests: Vec<Descriptor>) -> ImageIndex {
        ImageIndex {
            schema_version: 2,
            media_type: Some(media::OCI_INDEX.to_string()),
            manifests,
            annotations: BTreeMap::new(),
            extra: Map::new(),
        }
    }

    pub fn from_slice(bytes: &[u8]) -> Result<ImageIndex, ManifestError> {
        serde_json::from_slice(bytes).map_err(|source| ManifestError::Json {
            document: "image index",
            source,
        })
    }

    pub fn to_canonical_json(&self) -> Vec<u8> {
        super::canonical_json(self)
    }

    /// The entry tagged `ref_name` (the last one, should several be).
    pub fn named(&self, ref_name: &str) -> Option<&Descriptor> {
        self.manifests
            .iter()
            .rev()
            .find(|m| m.ref_name() == Some(ref_name))
    }

    /// The first entry for `platform` (its variant checked when `check_variant`).
    pub fn for_platform(
        &self,
        platform: &super::Platform,
        check_variant: bool,
    ) -> Option<&Descriptor> {
        self.manifests.iter().find(|m| {
            m.platform
                .as_ref()
                .is_some_and(|p| p.matches(platform, check_variant))
        })
    }
}

/// What a manifest document is, from the fields it has (a registry's Content-Type may
/// be missing or wrong, so the body decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Manifest,
    Index,
    /// Docker's schema 1, which lade refuses.
    Schema1,
}

impl Kind {
    /// The kind of `bytes`, or `None` when they are not a JSON object.
    pub fn of(bytes: &[u8]) -> Option<Kind> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Probe {
            schema_version: Option<Value>,
            manifests: Option<serde::de::IgnoredAny>,
        }
        let probe: Probe = serde_json::from_slice(bytes).ok()?;
        Some(
            if probe.schema_version.and_then(|v| v.as_i64()) == Some(1) {
                Kind::Schema1
            } else if probe.manifests.is_some() {
                Kind::Index
            } else {
                Kind::Manifest
            },
        )
    }
}

/// The `mediaType` a manifest or index names itself by, if it names one (what a push
/// sends as its Content-Type).
pub fn declared_media_type(bytes: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    serde_json::from_slice::<Probe>(bytes).ok()?.media_type
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[test]
    fn a_manifest_reads_and_writes_the_bytes_oci_spec_wrote() {
        let digest: Digest = format!("sha256:{HEX}").parse().unwrap();
        let manifest = ImageManifest::new(
            Descriptor::new(media::OCI_CONFIG, digest, 2),
            vec![Descriptor::new("", digest, 3)],
        );
        let bytes = manifest.to_canonical_json();
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            format!(
                r#"{{"config":{{"digest":"sha256:{HEX}","mediaType":"application/vnd.oci.image.config.v1+json","size":2}},"layers":[{{"digest":"sha256:{HEX}","mediaType":"","size":3}}],"mediaType":"application/vnd.oci.image.manifest.v1+json","schemaVersion":2}}"#
            )
        );
        assert_eq!(ImageManifest::from_slice(&bytes).unwrap(), manifest);
    }

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let text = format!(
            r#"{{"config":{{"digest":"sha256:{HEX}","mediaType":"x","size":2,"urls":["u"]}},"layers":[],"schemaVersion":2,"zz":{{"a":1}}}}"#
        );
        let manifest = ImageManifest::from_slice(text.as_bytes()).unwrap();
        assert_eq!(
            String::from_utf8(manifest.to_canonical_json()).unwrap(),
            text
        );
    }

    #[test]
    fn bad_documents_are_refused_with_what_is_wrong() {
        let no_size = format!(r#"{{"config":{{"digest":"sha256:{HEX}"}}}}"#);
        let e = ImageManifest::from_slice(no_size.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("image manifest") && e.to_string().contains("size"));
        let md5 = br#"{"manifests":[{"digest":"md5:abc"}]}"#;
        assert!(ImageIndex::from_slice(md5)
            .unwrap_err()
            .to_string()
            .contains("md5"));
        let huge = format!(r#"{{"manifests":[{{"digest":"sha256:{HEX}","size":-1}}]}}"#);
        assert!(ImageIndex::from_slice(huge.as_bytes()).is_err());
        assert!(matches!(
            ImageManifest::from_slice(br#"{"schemaVersion":1,"fsLayers":[]}"#),
            Err(ManifestError::Schema1)
        ));
        assert!(ImageIndex::from_slice(b"[").is_err());
    }

    #[test]
    fn indexes_find_tags_and_platforms() {
        let index = ImageIndex::from_slice(
            format!(
                r#"{{"manifests":[
                {{"digest":"sha256:{HEX}","size":1,"platform":{{"os":"linux","architecture":"arm64","variant":"v7"}}}},
                {{"digest":"sha256:{HEX}","size":2,"platform":{{"os":"linux","architecture":"arm64"}},
                  "annotations":{{"org.opencontainers.image.ref.name":"a:1"}}}}]}}"#
            )
            .as_bytes(),
        )
        .unwrap();
        let arm = super::super::Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!(index.for_platform(&arm, true).unwrap().size, 2);
        assert_eq!(index.for_platform(&arm, false).unwrap().size, 1);
        assert_eq!(index.named("a:1").unwrap().size, 2);
        assert!(index.named("b").is_none());
        assert_eq!(Kind::of(br#"{"manifests":[]}"#), Some(Kind::Index));
    }
}
