//! Image references, normalised as Docker does (`busybox` is
//! `docker.io/library/busybox:latest`) and shown in Docker's short "familiar" form.

use std::fmt;
use std::str::FromStr;

use oci_spec::distribution::Reference;

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
        match Reference::from_str(text) {
            Ok(inner) => Ok(ImageRef { inner }),
            Err(e) => Err(err(&format!(
                "{e}; expected [registry/]name[:tag][@sha256:digest], as in busybox:latest"
            ))),
        }
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
    fn refuses_malformed_references() {
        for bad in ["", "Busybox", "a:b:c", "a@sha256:12", "-x", "a//b", "a b"] {
            assert!(bad.parse::<ImageRef>().is_err(), "{bad} must be refused");
        }
    }
}
