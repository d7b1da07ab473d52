//! What lade does with a compose file: the fields it turns into containers, networks
//! and volumes. A field the compose-spec allows but lade does not honour is refused
//! with its path, never silently left out (`x-` extensions excepted, as compose
//! ignores them too).

use serde_json::Value;

use super::ComposeError;

/// The keys lade supports at each level; `*` stands for a name the user chose.
const SUPPORTED: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "version", "name", "include", "services", "networks", "volumes", "secrets", "configs",
        ],
    ),
    ("include.#", &["path", "project_directory", "env_file"]),
    (
        "services.*",
        &[
            "build",
            "cap_add",
            "cap_drop",
            "command",
            "configs",
            "container_name",
            "depends_on",
            "deploy",
            "dns",
            "entrypoint",
            "env_file",
            "environment",
            "expose",
            "extends",
            "extra_hosts",
            "healthcheck",
            "hostname",
            "image",
            "init",
            "labels",
            "network_mode",
            "networks",
            "platform",
            "ports",
            "privileged",
            "profiles",
            "read_only",
            "restart",
            "secrets",
            "stdin_open",
            "stop_grace_period",
            "stop_signal",
            "sysctls",
            "tmpfs",
            "tty",
            "user",
            "volumes",
            "working_dir",
        ],
    ),
    (
        "services.*.build",
        &["context", "dockerfile", "args", "target", "secrets"],
    ),
    (
        "services.*.build.secrets.#",
        &["source", "target", "uid", "gid", "mode"],
    ),
    ("services.*.deploy", &["replicas", "resources"]),
    ("services.*.extends", &["file", "service"]),
    ("services.*.deploy.resources", &["limits"]),
    (
        "services.*.deploy.resources.limits",
        &["cpus", "memory", "pids"],
    ),
    (
        "services.*.healthcheck",
        &[
            "test",
            "interval",
            "timeout",
            "retries",
            "start_period",
            "start_interval",
            "disable",
        ],
    ),
    ("services.*.networks.*", &["aliases", "ipv4_address"]),
    (
        "services.*.depends_on.*",
        &["condition", "required", "restart"],
    ),
    ("services.*.env_file.#", &["path", "required"]),
    (
        "services.*.ports.#",
        &["mode", "host_ip", "target", "published", "protocol"],
    ),
    (
        "services.*.volumes.#",
        &[
            "type",
            "source",
            "target",
            "read_only",
            "bind",
            "volume",
            "tmpfs",
        ],
    ),
    ("services.*.volumes.#.bind", &["create_host_path"]),
    ("services.*.volumes.#.volume", &["nocopy"]),
    ("services.*.volumes.#.tmpfs", &["size"]),
    ("services.*.secrets.#", &["source", "target"]),
    ("services.*.configs.#", &["source", "target"]),
    (
        "networks.*",
        &["name", "driver", "external", "internal", "ipam", "labels"],
    ),
    ("networks.*.ipam", &["config"]),
    ("networks.*.ipam.config.#", &["subnet", "gateway"]),
    (
        "volumes.*",
        &["name", "driver", "driver_opts", "external", "labels"],
    ),
    ("secrets.*", &["name", "file", "environment"]),
    ("configs.*", &["name", "file"]),
];

/// The values lade supports of some fields, where the spec allows more.
fn value_refused(path: &[String], value: &Value) -> Option<String> {
    let at = path.join(".");
    let text = value.as_str();
    if path.len() == 3 && path[0] == "networks" && path[2] == "driver" && text != Some("bridge") {
        return Some(format!(
            "{at}: lade makes bridge networks only, not {value}"
        ));
    }
    if path.len() == 3 && path[0] == "volumes" && path[2] == "driver" && text != Some("local") {
        return Some(format!(
            "{at}: lade has the local volume driver only, not {value}"
        ));
    }
    if path.len() == 5
        && path[0] == "services"
        && path[2] == "volumes"
        && path[4] == "type"
        && !matches!(text, Some("volume" | "bind" | "tmpfs"))
    {
        return Some(format!(
            "{at}: lade mounts volume, bind and tmpfs, not {value}"
        ));
    }
    if path.len() == 5
        && path[0] == "services"
        && path[2] == "depends_on"
        && path[4] == "restart"
        && value.as_bool() == Some(true)
    {
        return Some(format!(
            "{at}: lade does not restart a service when its dependency restarts"
        ));
    }
    if path.len() == 5
        && path[0] == "services"
        && path[2] == "ports"
        && path[4] == "mode"
        && !matches!(text, Some("ingress" | "host"))
    {
        return Some(format!("{at}: unknown port mode {value}"));
    }
    None
}

/// Refuses `document` when it has fields lade does not support, naming every one.
pub fn check(document: &Value, file: &str) -> Result<(), ComposeError> {
    let mut refused = Vec::new();
    walk(document, &mut Vec::new(), &mut Vec::new(), &mut refused);
    match refused.first() {
        None => Ok(()),
        Some((path, _)) => Err(ComposeError::Unsupported {
            file: file.to_string(),
            path: path.clone(),
            reason: refused
                .iter()
                .map(|(_, reason)| reason.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        }),
    }
}

/// Adds each unsupported field under `value` to `refused`: its path and why.
fn walk(
    value: &Value,
    path: &mut Vec<String>,
    pattern: &mut Vec<String>,
    refused: &mut Vec<(String, String)>,
) {
    if let Some(reason) = value_refused(path, value) {
        refused.push((path.join("."), reason));
        return;
    }
    let here = pattern.join(".");
    match value {
        Value::Object(map) => {
            // A level of names (services, networks...) or a level of fields.
            let fields = SUPPORTED.iter().find(|(p, _)| *p == here).map(|(_, f)| *f);
            let names = SUPPORTED.iter().any(|(p, _)| {
                p.starts_with(&format!(
                    "{here}{}*",
                    if here.is_empty() { "" } else { "." }
                ))
            });
            for (key, item) in map {
                if key.starts_with("x-") {
                    continue;
                }
                let step = match fields {
                    Some(fields) if fields.contains(&key.as_str()) => key.clone(),
                    Some(_) => {
                        path.push(key.clone());
                        let at = path.join(".");
                        refused.push((
                            at.clone(),
                            format!("{at}: lade does not support this field"),
                        ));
                        path.pop();
                        continue;
                    }
                    None if names => "*".to_string(),
                    // Free-form content (labels, environment, args...).
                    None => continue,
                };
                path.push(key.clone());
                pattern.push(step);
                walk(item, path, pattern, refused);
                pattern.pop();
                path.pop();
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                path.push(index.to_string());
                pattern.push("#".into());
                walk(item, path, pattern, refused);
                pattern.pop();
                path.pop();
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_fields_are_named() {
        let ok = serde_json::json!({
            "x-common": {"anything": 1},
            "services": {"web": {"image": "a", "labels": {"any.key": "v"}, "x-note": 1,
                "ports": [{"target": 80}], "networks": {"front": {"aliases": ["w"]}},
                "deploy": {"resources": {"limits": {"memory": "64m"}}}}},
            "networks": {"front": {"driver": "bridge"}}
        });
        check(&ok, "c.yaml").unwrap();
        let bad = serde_json::json!({"services": {"web": {"image": "a", "ports": [{"target": 80, "app_protocol": "http"}]}}});
        assert_eq!(
            check(&bad, "c.yaml").unwrap_err().to_string(),
            "c.yaml: services.web.ports.0.app_protocol: lade does not support this field"
        );
        let bad = serde_json::json!({"services": {"web": {"image": "a", "cpu_shares": 5}}});
        assert!(check(&bad, "c.yaml")
            .unwrap_err()
            .to_string()
            .contains("services.web.cpu_shares"));
        let several = serde_json::json!({"services": {"a": {"image": "a", "gpus": "all"}, "b": {"image": "b", "pull_policy": "always"}}});
        assert_eq!(
            check(&several, "c.yaml").unwrap_err().to_string(),
            "c.yaml: services.a.gpus: lade does not support this field; services.b.pull_policy: lade does not support this field"
        );
        let bad = serde_json::json!({"networks": {"n": {"driver": "overlay"}}});
        assert!(check(&bad, "c.yaml")
            .unwrap_err()
            .to_string()
            .contains("bridge networks only"));
    }
}
