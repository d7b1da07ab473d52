//! `run`: a container made (`create`) and started in the mode its request asks for:
//! detached under a monitor, attached through one (`-it`, so the detach keys can leave
//! it running), or in the foreground of this process, removed afterwards with `--rm`.

use super::create::{self, ContainerRequest};
use super::start::{self, StartAttached};
use super::{pull, Reporter, Result};
use crate::container::{self, RestartPolicy};
use crate::store::Store;

/// What `lade run` is asked for.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub container: ContainerRequest,
    /// `-d`: started under a monitor, the id returned at once.
    pub detach: bool,
    /// The keys that detach from an `-it` container, which runs on.
    pub detach_keys: Vec<u8>,
}

/// How a run ended, for `cli` to render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// Detached: the container runs on; its id.
    Started(String),
    /// The container's exit code (0 once detached from an `-it` container).
    Exited(i32),
}

/// `lade run`.
pub fn run(store: &Store, request: &RunRequest, reporter: &dyn Reporter) -> Result<RunOutcome> {
    let wanted = &request.container;
    let image = pull::image_for_container(store, wanted, reporter)?;
    let options = wanted.options();
    if request.detach {
        let id = create::make(store, image, wanted, &wanted.settings)?;
        return start::start_detached(store, &id, reporter).map(RunOutcome::Started);
    }
    // With a terminal, or a restart policy: through a monitor, as a detached container
    // with this client attached (which also keeps the terminal's output in its log) (the detach keys leave it running; the
    // monitor restarts it as its policy says, while this client reports the first
    // exit, as Docker's does).
    let restarts = wanted.settings.restart != RestartPolicy::No;
    let unattached = options
        .attach
        .as_ref()
        .is_some_and(|streams| streams.is_empty());
    if options.tty || restarts {
        let id = create::make(store, image, wanted, &wanted.settings)?;
        if unattached {
            reporter.unattached(&id);
        }
        let attached = StartAttached {
            container: id,
            stdin: options.interactive,
            detach_keys: request.detach_keys.clone(),
        };
        return start::start_attached(store, &attached, reporter).map(RunOutcome::Exited);
    }
    // Otherwise in this process: the container lives exactly as long as it, with every
    // setting it asked for (its health is checked here, its log written here).
    let settings = wanted.settings.clone();
    let id = create::make(store, image, wanted, &settings)?;
    if unattached {
        reporter.unattached(&id);
    }
    let ran = container::run_created(store, &id, options, &|text| reporter.warning(text))?;
    if let Some(err) = ran.teardown {
        reporter.after_exit(&err.into());
    }
    Ok(RunOutcome::Exited(ran.code))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::{RunOptions, Settings};
    use crate::engine::ImageName;

    #[test]
    fn a_run_request_carries_its_mode() {
        let request = RunRequest {
            container: ContainerRequest::new(
                ImageName::new("alpine:3"),
                RunOptions::default(),
                Settings::default(),
            ),
            detach: true,
            detach_keys: crate::container::parse_detach_keys("ctrl-p,ctrl-q").unwrap(),
        };
        assert_eq!(request.detach_keys, vec![16, 17]);
        assert_eq!(request.container.options().image, "alpine:3");
        assert_ne!(RunOutcome::Started("x".into()), RunOutcome::Exited(0));
    }
}
