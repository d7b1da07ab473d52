//! The image a container is made from, as the user named it, parsed once: the store
//! finds it by that name (which may be an image id rather than a reference), a pull
//! and the user's messages use the parsed reference.

use crate::oci::{ImageRef, ReferenceError};

/// An image name as given (`busybox`, `localhost:5000/app:1`, an image id), with the
/// outcome of parsing it as a reference. A name that is no reference is not refused
/// here: an image id is found in the store by its text, and the parse's error is said
/// only when the image must be pulled.
#[derive(Debug, Clone)]
pub struct ImageName {
    text: String,
    reference: Result<ImageRef, ReferenceError>,
}

impl ImageName {
    pub fn new(text: &str) -> ImageName {
        ImageName {
            text: text.to_string(),
            reference: text.parse(),
        }
    }

    /// The name as given: what the store looks up, and what `ps` shows.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The name as a reference, or why it is none.
    pub fn reference(&self) -> Result<&ImageRef, &ReferenceError> {
        self.reference.as_ref()
    }

    /// The name as Docker's messages show it: the reference's familiar form
    /// (`busybox:latest`), else the text as given.
    pub fn shown(&self) -> String {
        self.reference
            .as_ref()
            .map_or_else(|_| self.text.clone(), ImageRef::familiar)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_is_parsed_once_and_shown_familiar() {
        let name = ImageName::new("docker.io/library/busybox");
        assert_eq!(name.as_str(), "docker.io/library/busybox");
        assert_eq!(name.shown(), "busybox:latest");
        assert_eq!(
            name.reference().unwrap().normalized(),
            "docker.io/library/busybox:latest"
        );
    }

    #[test]
    fn an_id_that_is_no_reference_keeps_its_text() {
        let name = ImageName::new("ABCDEF012345");
        assert_eq!(name.as_str(), "ABCDEF012345");
        assert_eq!(name.shown(), "ABCDEF012345");
        assert!(name.reference().is_err());
    }
}
