//! `--change` instructions (`import`, `commit`): a config described by Dockerfile
//! instructions, read through the same parser and expansion rules as a Dockerfile by
//! writing them under a synthetic `FROM scratch`.

use super::{expand_stage, plan, BaseImage, PlanError, PlanOptions, StepKind};
use crate::oci::ContainerConfig;

/// The instructions `--change` may give: those that change only the config.
const ALLOWED: [&str; 10] = [
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "LABEL",
    "ONBUILD",
    "USER",
    "VOLUME",
    "WORKDIR",
    "STOPSIGNAL",
];

#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("--change {change:?}: only {} are allowed", ALLOWED.join(", "))]
    NotAllowed { change: String },
    #[error(transparent)]
    Plan(#[from] PlanError),
}

/// `base`'s config with `changes` applied.
pub fn config_with_changes(
    base: &BaseImage,
    changes: &[String],
) -> Result<ContainerConfig, ChangeError> {
    if changes.is_empty() {
        return Ok(base.config.clone());
    }
    let mut text = String::from("FROM scratch\n");
    for change in changes {
        let keyword = change
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        if !ALLOWED.contains(&keyword.as_str()) {
            return Err(ChangeError::NotAllowed {
                change: change.clone(),
            });
        }
        text.push_str(change);
        text.push('\n');
    }
    let dockerfile =
        crate::parser::parse("--change", text.into_bytes()).map_err(PlanError::from)?;
    let plan = plan(&dockerfile, &PlanOptions::default()).map_err(PlanError::from)?;
    let stage = expand_stage(&plan, 0, base).map_err(PlanError::from)?;
    debug_assert!(stage
        .steps
        .iter()
        .all(|s| matches!(s.kind, StepKind::Config | StepKind::Workdir { .. })));
    Ok(stage.config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_set_the_config_and_others_are_refused() {
        let config = config_with_changes(
            &BaseImage::default(),
            &["ENV A=1".into(), "cmd [\"sh\"]".into()],
        )
        .unwrap();
        assert_eq!(config.cmd, Some(vec!["sh".to_string()]));
        let refused = config_with_changes(&BaseImage::default(), &["RUN true".into()]);
        assert!(matches!(refused, Err(ChangeError::NotAllowed { .. })));
    }
}
