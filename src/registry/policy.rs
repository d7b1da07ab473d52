//! The pull policy (`--pull missing|always|never`) and the one function that applies
//! it, so that `run`, `create` and a build's base images decide alike whether an image
//! comes from the store or from its registry.

use std::fmt;
use std::str::FromStr;

use super::{pull, PullOptions, PullProgress, RegistryError, Result};
use crate::oci::ImageRef;
use crate::store::{Image, Store, StoreError};

/// When an image is pulled rather than taken from the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PullPolicy {
    /// Only when the store lacks it (Docker's default).
    #[default]
    Missing,
    /// Every time, for a fresh copy of the tag.
    Always,
    /// Never: an image the store lacks is an error.
    Never,
}

impl FromStr for PullPolicy {
    type Err = RegistryError;

    fn from_str(text: &str) -> Result<PullPolicy> {
        match text {
            "missing" => Ok(PullPolicy::Missing),
            "always" => Ok(PullPolicy::Always),
            "never" => Ok(PullPolicy::Never),
            other => Err(RegistryError::UnknownPullPolicy(other.to_string())),
        }
    }
}

impl fmt::Display for PullPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PullPolicy::Missing => "missing",
            PullPolicy::Always => "always",
            PullPolicy::Never => "never",
        })
    }
}

/// The image `name` (a reference or an image id) as `policy` has it: from the store, or
/// pulled into it first. `progress` hears of a pull, and before it whether the store
/// lacked the image.
pub fn find_or_pull(
    store: &Store,
    name: &str,
    policy: PullPolicy,
    options: &PullOptions,
    progress: &dyn PullProgress,
) -> Result<Image> {
    find_or_pull_parsed(store, name, || name.parse(), policy, options, progress)
}

/// [`find_or_pull`] for a caller that has parsed `name` already: `reference` gives that
/// parse's outcome, asked for only when a pull is needed (an image id, which is no
/// reference, is found in the store by `name` alone).
pub fn find_or_pull_parsed(
    store: &Store,
    name: &str,
    reference: impl FnOnce() -> std::result::Result<ImageRef, crate::oci::ReferenceError>,
    policy: PullPolicy,
    options: &PullOptions,
    progress: &dyn PullProgress,
) -> Result<Image> {
    // With a platform, an image the store has only for others counts as missing.
    let mut other_platform = None;
    let found = match &options.platform {
        Some(platform) => store.image_for_platform(name, platform),
        None => store.image(name),
    };
    let stored = match found {
        Ok(image) => Some(image),
        Err(StoreError::NoSuchImage(_)) => None,
        Err(StoreError::OtherPlatform { has, .. }) if policy != PullPolicy::Never => {
            other_platform = Some(has);
            None
        }
        Err(other) => return Err(other.into()),
    };
    let missing = match (policy, stored) {
        (PullPolicy::Never, None) => return Err(RegistryError::NotInStore(name.to_string())),
        (PullPolicy::Missing | PullPolicy::Never, Some(image)) => return Ok(image),
        (PullPolicy::Always, Some(_)) => false,
        (PullPolicy::Missing | PullPolicy::Always, None) => {
            progress.not_in_store(name);
            true
        }
    };
    let reference = reference()?;
    pull(store, &reference, options, progress).map_err(|source| {
        let (image, source) = (reference.familiar(), Box::new(source));
        if let (Some(has), Some(platform)) = (other_platform, &options.platform) {
            RegistryError::PullForPlatform {
                image,
                platform: platform.to_string(),
                has,
                source,
            }
        } else if missing {
            RegistryError::PullOfMissing { image, source }
        } else {
            RegistryError::Pull { image, source }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_read_as_docker_spells_them() {
        for policy in [PullPolicy::Missing, PullPolicy::Always, PullPolicy::Never] {
            assert_eq!(policy.to_string().parse::<PullPolicy>().unwrap(), policy);
        }
        assert_eq!(PullPolicy::default(), PullPolicy::Missing);
        let err = "sometimes".parse::<PullPolicy>().unwrap_err().to_string();
        assert!(err.contains("\"sometimes\"") && err.contains("always, missing or never"));
    }

    #[test]
    fn never_pulling_leaves_a_missing_image_missing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let err = find_or_pull(
            &store,
            "nosuch:1",
            PullPolicy::Never,
            &PullOptions::default(),
            &(),
        )
        .unwrap_err();
        assert!(
            matches!(err, RegistryError::NotInStore(ref n) if n == "nosuch:1"),
            "{err}"
        );
    }

    /// What the store lacked, as a pull's reporter heard it.
    struct Heard(std::sync::Mutex<Vec<String>>);

    impl PullProgress for Heard {
        fn layer(&self, _: &crate::oci::Digest, _: u64, _: bool) {}
        fn not_in_store(&self, image: &str) {
            self.0.lock().unwrap().push(image.to_string());
        }
    }

    #[test]
    fn a_missing_image_is_announced_before_its_pull() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let heard = Heard(Default::default());
        // A name that is no reference: the pull fails before reaching any registry.
        let err = find_or_pull(
            &store,
            "Not A Reference",
            PullPolicy::Missing,
            &PullOptions::default(),
            &heard,
        )
        .unwrap_err();
        assert!(matches!(err, RegistryError::Reference(_)), "{err}");
        assert_eq!(*heard.0.lock().unwrap(), ["Not A Reference"]);
    }
}
