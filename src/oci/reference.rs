//! Image references, normalised as Docker does (`busybox` is
//! `docker.io/library/busybox:latest`) and shown in Docker's short "familiar" form.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use oci_spec::distribution::Reference;
use regex::Regex;

/// distribution/reference's grammar, with its capture groups for name, tag and digest.
/// Go's `\w` is ASCII, so this is ASCII throughout: oci-spec's own parser reads `\w` as
/// Unicode, which both accepts tags Docker refuses and costs ~40 ms per process to
/// compile (a 128-fold repetition of Unicode's word class), a cost every command that
/// names an image would pay.
const REFERENCE_GRAMMAR: &str = r"(?-u)^((?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))+)?(?::[0-9]+)?/)?[a-z0-9]+(?:(?:(?:[._]|__|[-]*)[a-z0-9]+)+)?(?:(?:/[a-z0-9]+(?:(?:(?:[._]|__|[-]*)[a-z0-9]+)+)?)+)?)(?::([\w][\w.-]*))?(?:@([A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][[:xdigit:]]{32,}))?$";

/// The longest repository name distribution accepts.
const NAME_MAX: usize = 255;

/// The longest tag distribution accepts. The grammar leaves the bound to the code: a
/// bounded repetition (`{0,127}`) is compiled as 128 copies of its class, which made the
/// grammar's compilation the largest part of parsing a reference, paid by every command
/// that names an image.
const TAG_MAX: usize = 128;

fn grammar() -> &'static Regex {
    static GRAMMAR: OnceLock<Regex> = OnceLock::new();
    GRAMMAR.get_or_init(|| Regex::new(REFERENCE_GRAMMAR).expect("the reference grammar compiles"))
}

/// Docker's normalisation (distribution's `splitDomain`): a first component with a dot or
/// a colon, or `localhost`, is a registry; otherwise the registry is Docker Hub, whose
/// one-component names live under `library/`.
fn split_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
            (first.to_string(), rest.to_string())
        }
        _ => ("docker.io".to_string(), name.to_string()),
    };
    if domain == "index.docker.io" {
        domain = "docker.io".into();
    }
    if domain == "docker.io" && !remainder.contains('/') {
        remainder = format!("library/{remainder}");
    }
    (domain, remainder)
}

/// A validated, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    inner: Reference,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference {text:?}: {reason}")]
pub struct ReferenceError {
    pub text: String,
    pub reason: String,
}

impl ImageRef {
    pub fn registry(&self) -> &str {
        self.inner.registry()
    }

    pub fn repository(&self) -> &str {
        self.inner.repository()
    }

    pub fn tag(&self) -> Option<&str> {
        self.inner.tag()
    }

    pub fn digest(&self) -> Option<&str> {
        self.inner.digest()
    }

    /// The full form: `docker.io/library/busybox:latest`.
    pub fn normalized(&self) -> String {
        self.inner.whole()
    }

    /// The repository in Docker's short form: `busybox`, `user/app`, `localhost:5000/app`.
    pub fn familiar_repository(&self) -> String {
        let repository = self.inner.repository();
        if self.inner.registry() == "docker.io" {
            match repository.strip_prefix("library/") {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => repository.to_string(),
            }
        } else {
            format!("{}/{}", self.inner.registry(), repository)
        }
    }

    /// Docker's short form with tag and digest: `busybox:latest`.
    pub fn familiar(&self) -> String {
        let mut text = self.familiar_repository();
        if let Some(tag) = self.tag() {
            text.push(':');
            text.push_str(tag);
        }
        if let Some(digest) = self.digest() {
            text.push('@');
            text.push_str(digest);
        }
        text
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> ImageRef {
        ImageRef {
            inner: Reference::with_tag(
                self.inner.registry().to_string(),
                self.inner.repository().to_string(),
                tag.to_string(),
            ),
        }
    }
}

impl FromStr for ImageRef {
    type Err = ReferenceError;

    fn from_str(text: &str) -> Result<ImageRef, ReferenceError> {
        let err = |reason: &str| ReferenceError {
            text: text.to_string(),
            reason: reason.to_string(),
        };
        if text.is_empty() {
            return Err(err("the name is empty"));
        }
        let name = text.split(['@', ':']).next().unwrap_or_default();
        let path = name.split_once('/').map_or(name, |(first, rest)| {
            if first.contains(['.', ':']) || first == "localhost" {
                rest
            } else {
                name
            }
        });
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(err("repository names must be lower-case"));
        }
        let Some(captures) = grammar().captures(text) else {
            return Err(err(
                "expected [registry/]name[:tag][@sha256:digest], as in busybox:latest",
            ));
        };
        let (registry, repository) = split_domain(&captures[1]);
        if repository.len() > NAME_MAX {
            return Err(err("the repository name is longer than 255 characters"));
        }
        let tag = captures.get(2).map(|m| m.as_str().to_string());
        if tag.as_ref().is_some_and(|tag| tag.len() > TAG_MAX) {
            return Err(err(
                "expected [registry/]name[:tag][@sha256:digest], as in busybox:latest",
            ));
        }
        let digest = captures.get(3).map(|m| m.as_str().to_string());
        if let Some(digest) = &digest {
            let (algorithm, hex) = digest.split_once(':').unwrap_or_default();
            let expected = match algorithm {
                "sha256" => 64,
                "sha384" => 96,
                "sha512" => 128,
                _ => return Err(err(&format!("unsupported digest algorithm {algorithm:?}"))),
            };
            if hex.len() != expected {
                return Err(err(&format!(
                    "a {algorithm} digest has {expected} hex digits, not {}",
                    hex.len()
                )));
            }
        }
        let inner = match (tag, digest) {
            (Some(tag), Some(digest)) => {
                Reference::with_tag_and_digest(registry, repository, tag, digest)
            }
            (None, Some(digest)) => Reference::with_digest(registry, repository, digest),
            (Some(tag), None) => Reference::with_tag(registry, repository, tag),
            (None, None) => Reference::with_tag(registry, repository, "latest".into()),
        };
        Ok(ImageRef { inner })
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.familiar())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(text: &str) -> ImageRef {
        text.parse().unwrap()
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(
            r("busybox").normalized(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(r("busybox").familiar(), "busybox:latest");
        assert_eq!(r("user/app:1").familiar(), "user/app:1");
        assert_eq!(
            r("localhost:5000/app").familiar(),
            "localhost:5000/app:latest"
        );
        assert_eq!(r("docker.io/library/busybox:1").familiar(), "busybox:1");
        let digest = "sha256:".to_string() + &"a".repeat(64);
        assert_eq!(
            r(&format!("busybox@{digest}")).digest(),
            Some(digest.as_str())
        );
        assert_eq!(r(&format!("busybox@{digest}")).tag(), None);
    }

    #[test]
    fn agrees_with_oci_spec_on_ascii_references() {
        let digest = "sha256:".to_string() + &"0123456789abcdef".repeat(4);
        let cases = [
            "busybox".to_string(),
            "busybox:1.36".into(),
            "library/busybox:latest".into(),
            "index.docker.io/library/busybox".into(),
            "localhost/app".into(),
            "localhost:5000/team/app:v1.2_3-rc".into(),
            "registry.example.com/a/b/c".into(),
            "a__b/c-d.e:tag".into(),
            format!("busybox@{digest}"),
            format!("busybox:1@{digest}"),
            "quay.io/x:".into(),
            "x:-bad".into(),
            "x@sha256:1234".into(),
            "x@md5:0123456789abcdef0123456789abcdef".into(),
            "a/".into(),
            format!("x:{}", "t".repeat(128)),
            format!("x:{}", "t".repeat(129)),
            format!("x:{}@{digest}", "t".repeat(129)),
        ];
        for case in &cases {
            let ours = case.parse::<ImageRef>().map(|r| r.normalized());
            let theirs = Reference::from_str(case).map(|r| r.whole());
            assert_eq!(
                ours.is_ok(),
                theirs.is_ok(),
                "{case}: {ours:?} vs {theirs:?}"
            );
            if let (Ok(ours), Ok(theirs)) = (ours, theirs) {
                assert_eq!(ours, theirs, "{case}");
            }
        }
        // Go's \w is ASCII: a tag Docker refuses is refused.
        assert!("busybox:tag\u{e9}".parse::<ImageRef>().is_err());
    }

    #[test]
    fn refuses_malformed_references() {
        for bad in [
            "",
            "Busybox",
            "UPPER/x",
            "a:b:c",
            "a@sha256:12",
            "-x",
            "a//b",
            "a b",
        ] {
            assert!(bad.parse::<ImageRef>().is_err(), "{bad} must be refused");
        }
    }
}
