//! The compose-spec's JSON schema (vendored beside this file, see
//! `compose-spec.NOTICE.md`), and each file checked against it: an error names the file,
//! the path of the bad key and the schema's reason.

use std::sync::OnceLock;

use super::ComposeError;

const SCHEMA: &str = include_str!("compose-spec.json");

fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let schema: serde_json::Value =
            serde_json::from_str(SCHEMA).expect("the vendored compose-spec schema is JSON");
        jsonschema::validator_for(&schema).expect("the vendored compose-spec schema compiles")
    })
}

/// Checks one file's content (interpolated) against the schema.
pub fn validate(document: &serde_json::Value, file: &str) -> Result<(), ComposeError> {
    let Some(error) = validator().iter_errors(document).next() else {
        return Ok(());
    };
    let pointer = error.instance_path().to_string();
    let path = pointer
        .trim_start_matches('/')
        .split('/')
        .filter(|p| !p.is_empty())
        .map(|p| p.replace("~1", "/").replace("~0", "~"))
        .collect::<Vec<_>>()
        .join(".");
    Err(ComposeError::Invalid {
        file: file.to_string(),
        path,
        reason: error.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_refuses_with_the_path_of_the_bad_key() {
        let ok = serde_json::json!({"services": {"web": {"image": "busybox", "ports": ["80:80"]}}});
        validate(&ok, "compose.yaml").unwrap();
        let bad = serde_json::json!({"services": {"web": {"image": "busybox", "ports": [{"target": [1]}]}}});
        let err = validate(&bad, "compose.yaml").unwrap_err().to_string();
        assert!(
            err.starts_with("compose.yaml: services.web.ports.0"),
            "{err}"
        );
        let unknown = serde_json::json!({"services": {"web": {"image": "busybox", "imagee": "x"}}});
        let err = validate(&unknown, "c.yml").unwrap_err().to_string();
        assert!(
            err.contains("services.web") && err.contains("imagee"),
            "{err}"
        );
    }
}
