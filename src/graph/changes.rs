//! `--change` instructions (`commit`, `import`): Dockerfile lines that only change an
//! image's config, read by the same parser and expansion rules as a build, so that
//! `--change 'ENV A=$B'` means what it means in a Dockerfile.

use super::expand::expand_changes;
use super::{plan_text, BaseImage, PlanError, PlanOptions, StepKind};
use crate::oci::ContainerConfig;

/// The instructions a `--change` may give: those that change only the config.
pub const CHANGE_INSTRUCTIONS: [&str; 10] = [
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
    #[error("--change {change:?}: only {} are allowed", CHANGE_INSTRUCTIONS.join(", "))]
    NotAllowed { change: String },
    #[error(transparent)]
    Plan(#[from] PlanError),
}

/// `base`'s config with `changes` applied, in order.
pub fn config_with_changes(
    base: BaseImage,
    changes: &[String],
) -> Result<ContainerConfig, ChangeError> {
    if changes.is_empty() {
        return Ok(base.config);
    }
    let mut text = String::from("FROM scratch\n");
    for change in changes {
        let keyword = change
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        if !CHANGE_INSTRUCTIONS.contains(&keyword.as_str()) {
            return Err(ChangeError::NotAllowed {
                change: change.clone(),
            });
        }
        text.push_str(change);
        text.push('\n');
    }
    let plan = plan_text("--change", text.into_bytes(), &PlanOptions::default())?;
    let stage = expand_changes(&plan, &base).map_err(PlanError::from)?;
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
    fn changes_apply_to_the_base_config() {
        let config = config_with_changes(
            BaseImage::default(),
            &["ENV A=1".into(), "workdir /app".into()],
        )
        .unwrap();
        assert_eq!(config.working_dir.as_deref(), Some("/app"));
        assert!(config.env_pairs().iter().any(|(k, v)| k == "A" && v == "1"));
    }

    #[test]
    fn only_config_instructions_are_allowed() {
        let err = config_with_changes(BaseImage::default(), &["RUN true".into()]).unwrap_err();
        assert!(matches!(err, ChangeError::NotAllowed { .. }));
        assert!(err
            .to_string()
            .starts_with("--change \"RUN true\": only CMD, "));
    }

    #[test]
    fn no_changes_keep_the_config() {
        let base = BaseImage::scratch();
        let config = config_with_changes(base.clone(), &[]).unwrap();
        assert_eq!(config, base.config);
    }
}
