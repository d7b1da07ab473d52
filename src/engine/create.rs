//! `create`: a container made as `run` makes it (its image found or pulled as the pull
//! policy says), not started; and the making half of `run`.

use std::path::PathBuf;

use super::{pull, EngineError, ImageName, Reporter, Result};
use crate::container::{self, RunOptions, Settings};
use crate::registry::PullPolicy;
use crate::store::{Image, Store};

/// What `create` (and `run`) is asked to make. `cli` has refused what can be refused
/// without the store (`container::check_run_options`, the cidfile's absence) before it
/// makes one.
#[derive(Debug, Clone)]
pub struct ContainerRequest {
    image: ImageName,
    options: RunOptions,
    pub settings: Settings,
    pub pull: PullPolicy,
    /// `--cidfile`: where the new container's id is written.
    pub cidfile: Option<PathBuf>,
    /// Docker's configuration directory (`--config`), whose saved credentials pull
    /// the image when it must be pulled.
    pub docker_config: Option<PathBuf>,
}

impl ContainerRequest {
    /// The request for a container of `image`; `options.image` is set from it, so the
    /// name the container records is the one the image was found by.
    pub fn new(image: ImageName, options: RunOptions, settings: Settings) -> ContainerRequest {
        let options = RunOptions {
            image: image.as_str().to_string(),
            ..options
        };
        ContainerRequest {
            image,
            options,
            settings,
            pull: PullPolicy::default(),
            cidfile: None,
            docker_config: None,
        }
    }

    pub fn image(&self) -> &ImageName {
        &self.image
    }

    pub fn options(&self) -> &RunOptions {
        &self.options
    }
}

/// `lade create`: returns the new container's id.
pub fn create(
    store: &Store,
    request: &ContainerRequest,
    reporter: &dyn Reporter,
) -> Result<String> {
    let image = pull::image_for_container(store, request, reporter)?;
    make(store, image, request, &request.settings)
}

/// Makes the container of `request` from `image` (found already) with `settings`, and
/// writes its id to the cidfile.
pub(super) fn make(
    store: &Store,
    image: Image,
    request: &ContainerRequest,
    settings: &Settings,
) -> Result<String> {
    let (id, _) = container::create_from_image(store, image, &request.options, settings)?;
    if let Some(path) = &request.cidfile {
        std::fs::write(path, &id).map_err(|source| EngineError::Cidfile {
            path: path.clone(),
            source,
        })?;
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recorded_name_is_the_one_the_image_is_found_by() {
        let request = ContainerRequest::new(
            ImageName::new("busybox"),
            RunOptions {
                image: "something else".into(),
                ..RunOptions::default()
            },
            Settings::default(),
        );
        assert_eq!(request.options().image, "busybox");
        assert_eq!(request.image().shown(), "busybox:latest");
        assert_eq!(request.pull, PullPolicy::Missing);
        assert!(request.cidfile.is_none());
    }
}
