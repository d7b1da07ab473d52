//! `kube play` and `kube down`: Pods and Deployments of a Kubernetes YAML file run
//! locally. A pod's containers share one network namespace, as a pod's do: the first
//! container has it (with every container's `hostPort` published) and the others join
//! it. PersistentVolumeClaims become named volumes; Services are accepted and left to
//! the shared namespace (a pod's containers reach each other on localhost). Every field
//! of a pod lade does not honour is refused with its path; ConfigMaps and Secrets are
//! refused.

use std::collections::BTreeMap;

use serde_json::Value;

use super::up::NoReport;
use super::{ComposeError, Reporter, Result};
use crate::engine::{
    self, ContainerRequest, ImageName, Limits, NetworkMode, NetworkRequest, PsFilter, PsRequest,
    RemoveRequest, RunOptions, Settings, StopRequest, Store, VolumeCreateRequest,
};
use crate::oci::Healthcheck;

/// The label that names the pod a container belongs to.
pub const POD_LABEL: &str = "io.lade.kube.pod";

/// The pod-spec fields `play` honours; `*` a name, `#` an item of a list.
const HONOURED: &[(&str, &[&str])] = &[
    (
        "",
        &["containers", "restartPolicy", "hostAliases", "volumes"],
    ),
    (
        "containers.#",
        &[
            "name",
            "image",
            "command",
            "args",
            "env",
            "ports",
            "volumeMounts",
            "livenessProbe",
            "resources",
            "workingDir",
            "tty",
            "stdin",
            "securityContext",
        ],
    ),
    ("containers.#.env.#", &["name", "value"]),
    (
        "containers.#.ports.#",
        &["containerPort", "hostPort", "hostIP", "protocol", "name"],
    ),
    (
        "containers.#.volumeMounts.#",
        &["name", "mountPath", "readOnly"],
    ),
    (
        "containers.#.livenessProbe",
        &[
            "exec",
            "periodSeconds",
            "timeoutSeconds",
            "initialDelaySeconds",
            "failureThreshold",
        ],
    ),
    ("containers.#.livenessProbe.exec", &["command"]),
    ("containers.#.resources", &["limits"]),
    ("containers.#.resources.limits", &["memory", "cpu"]),
    (
        "containers.#.securityContext",
        &["runAsUser", "privileged", "readOnlyRootFilesystem"],
    ),
    ("hostAliases.#", &["ip", "hostnames"]),
    (
        "volumes.#",
        &["name", "persistentVolumeClaim", "hostPath", "emptyDir"],
    ),
    (
        "volumes.#.persistentVolumeClaim",
        &["claimName", "readOnly"],
    ),
    ("volumes.#.hostPath", &["path"]),
    ("volumes.#.emptyDir", &["medium"]),
];

/// A pod to run: its name and spec.
struct PodToRun {
    name: String,
    spec: Value,
}

fn refuse(file: &str, path: &str, reason: &str) -> ComposeError {
    ComposeError::Unsupported {
        file: file.to_string(),
        path: path.to_string(),
        reason: format!("{path}: {reason}"),
    }
}

/// The pods and claims of a file's documents, every field checked.
fn read(yaml: &str, file: &str) -> Result<(Vec<PodToRun>, Vec<String>)> {
    let mut pods = Vec::new();
    let mut claims = Vec::new();
    for (index, document) in serde_yaml_ng::Deserializer::from_str(yaml).enumerate() {
        let value: Value =
            serde::Deserialize::deserialize(document).map_err(|source| ComposeError::Yaml {
                file: file.to_string(),
                source,
            })?;
        if value.is_null() {
            continue;
        }
        let kind = value["kind"].as_str().unwrap_or_default();
        let name = value["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let at = format!("document {} ({kind} {name})", index + 1);
        if name.is_empty() {
            return Err(refuse(file, &at, "has no metadata.name"));
        }
        match kind {
            "Pod" => pods.push(PodToRun {
                name,
                spec: value["spec"].clone(),
            }),
            "Deployment" => {
                let replicas = value["spec"]["replicas"].as_u64().unwrap_or(1);
                let spec = value["spec"]["template"]["spec"].clone();
                if replicas > 1 {
                    return Err(refuse(
                        file,
                        &format!("{at}.spec.replicas"),
                        "lade plays one replica of a Deployment",
                    ));
                }
                if replicas == 1 {
                    pods.push(PodToRun {
                        name: format!("{name}-pod"),
                        spec,
                    });
                }
            }
            "PersistentVolumeClaim" => claims.push(name),
            "Service" => {}
            other => {
                return Err(refuse(
                    file,
                    &at,
                    &format!("lade kube play runs Pods and Deployments (with PersistentVolumeClaims and Services), not {other}"),
                ))
            }
        }
    }
    for pod in &pods {
        check(&pod.spec, &mut Vec::new(), &mut Vec::new(), file, &pod.name)?;
    }
    Ok((pods, claims))
}

fn check(
    value: &Value,
    path: &mut Vec<String>,
    pattern: &mut Vec<String>,
    file: &str,
    pod: &str,
) -> Result<()> {
    let here = pattern.join(".");
    match value {
        Value::Object(map) => {
            let Some((_, fields)) = HONOURED.iter().find(|(p, _)| *p == here) else {
                return Ok(());
            };
            for (key, item) in map {
                path.push(key.clone());
                if !fields.contains(&key.as_str()) {
                    return Err(refuse(
                        file,
                        &format!("{pod}.spec.{}", path.join(".")),
                        "lade kube play does not honour this field",
                    ));
                }
                pattern.push(key.clone());
                check(item, path, pattern, file, pod)?;
                pattern.pop();
                path.pop();
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                path.push(index.to_string());
                pattern.push("#".into());
                check(item, path, pattern, file, pod)?;
                pattern.pop();
                path.pop();
            }
        }
        _ => {}
    }
    Ok(())
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `kube play`: each pod's containers made and started; their names.
pub fn play(store: &Store, yaml: &str, file: &str, reporter: &dyn Reporter) -> Result<Vec<String>> {
    let (pods, claims) = read(yaml, file)?;
    for claim in claims {
        if engine::inspect_volume(store, &claim).is_err() {
            engine::create_volume(
                store,
                &VolumeCreateRequest {
                    name: Some(claim.clone()),
                    labels: BTreeMap::new(),
                    driver: "local".into(),
                    options: BTreeMap::new(),
                },
            )?;
            reporter.status("Volume", &claim, "Created");
        }
    }
    let mut started = Vec::new();
    for pod in pods {
        started.extend(play_pod(store, &pod, reporter)?);
    }
    Ok(started)
}

fn play_pod(store: &Store, pod: &PodToRun, reporter: &dyn Reporter) -> Result<Vec<String>> {
    let spec = &pod.spec;
    let bad = |reason: String| ComposeError::Service {
        service: pod.name.clone(),
        reason,
    };
    let containers = spec["containers"].as_array().cloned().unwrap_or_default();
    if containers.is_empty() {
        return Err(bad("the pod has no containers".into()));
    }
    let volumes: BTreeMap<String, Value> = spec["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| Some((v["name"].as_str()?.to_string(), v.clone())))
        .collect();
    let add_hosts: Vec<String> = spec["hostAliases"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|alias| {
            let ip = alias["ip"].as_str().unwrap_or_default().to_string();
            strings(&alias["hostnames"])
                .into_iter()
                .map(move |host| format!("{host}:{ip}"))
        })
        .collect();
    // The pod's ports are its network's: all published by the first container.
    let publish: Vec<String> = containers
        .iter()
        .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| {
            let target = p["containerPort"].as_u64()?;
            let protocol = p["protocol"].as_str().unwrap_or("TCP").to_lowercase();
            let host = p["hostPort"].as_u64()?;
            let ip = p["hostIP"]
                .as_str()
                .map(|ip| format!("{ip}:"))
                .unwrap_or_default();
            Some(format!("{ip}{host}:{target}/{protocol}"))
        })
        .collect();
    let restart = match spec["restartPolicy"].as_str() {
        None | Some("Always") => "always",
        Some("OnFailure") => "on-failure",
        Some(_) => "no",
    };
    let mut names = Vec::new();
    let first_name = format!(
        "{}-{}",
        pod.name,
        containers[0]["name"].as_str().unwrap_or("c0")
    );
    for (index, container) in containers.iter().enumerate() {
        let name = format!(
            "{}-{}",
            pod.name,
            container["name"].as_str().unwrap_or_default()
        );
        let image = container["image"]
            .as_str()
            .ok_or_else(|| bad(format!("container {index} has no image")))?;
        let mut mounts = Vec::new();
        let mut anonymous = Vec::new();
        let mut tmpfs = Vec::new();
        for mount in container["volumeMounts"].as_array().into_iter().flatten() {
            let volume_name = mount["name"].as_str().unwrap_or_default();
            let target = mount["mountPath"].as_str().unwrap_or_default();
            let readonly = if mount["readOnly"].as_bool() == Some(true) {
                ",readonly"
            } else {
                ""
            };
            let volume = volumes.get(volume_name).ok_or_else(|| {
                bad(format!(
                    "volumeMount {volume_name:?} names no volume of the pod"
                ))
            })?;
            if let Some(claim) = volume["persistentVolumeClaim"]["claimName"].as_str() {
                mounts.push(format!(
                    "type=volume,source={claim},target={target}{readonly}"
                ));
            } else if let Some(path) = volume["hostPath"]["path"].as_str() {
                mounts.push(format!("type=bind,source={path},target={target}{readonly}"));
            } else if volume["emptyDir"]["medium"].as_str() == Some("Memory") {
                tmpfs.push(target.to_string());
            } else {
                anonymous.push(target.to_string());
            }
        }
        let limits = &container["resources"]["limits"];
        let memory = match limits["memory"].as_str() {
            None => None,
            Some(text) => Some(kube_quantity(text).ok_or_else(|| {
                bad(format!(
                    "memory limit {text:?} is not a quantity lade reads"
                ))
            })?),
        };
        let cpus = match limits["cpu"].as_str() {
            None => None,
            Some(text) => Some(
                match text.strip_suffix('m') {
                    Some(milli) => milli.parse::<f64>().map(|m| m / 1000.0),
                    None => text.parse::<f64>(),
                }
                .map_err(|_| bad(format!("cpu limit {text:?} is not a number of CPUs")))?,
            ),
        };
        let probe = &container["livenessProbe"];
        let healthcheck = probe["exec"]["command"].as_array().map(|_| {
            let seconds = |field: &str| probe[field].as_u64().unwrap_or(0) * 1_000_000_000;
            let mut test = vec!["CMD".to_string()];
            test.extend(strings(&probe["exec"]["command"]));
            Healthcheck {
                test,
                interval: seconds("periodSeconds"),
                timeout: seconds("timeoutSeconds"),
                start_period: seconds("initialDelaySeconds"),
                start_interval: 0,
                retries: probe["failureThreshold"].as_u64().unwrap_or(0),
            }
        });
        let security = &container["securityContext"];
        let entrypoint = strings(&container["command"]);
        let mut options = RunOptions {
            image: image.to_string(),
            name: Some(name.clone()),
            args: strings(&container["args"]),
            entrypoint: (!entrypoint.is_empty()).then(|| entrypoint.join(" ")),
            env: container["env"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| {
                    Some(format!(
                        "{}={}",
                        e["name"].as_str()?,
                        e["value"].as_str().unwrap_or_default()
                    ))
                })
                .collect(),
            workdir: container["workingDir"].as_str().map(str::to_string),
            user: security["runAsUser"].as_i64().map(|u| u.to_string()),
            tty: container["tty"].as_bool() == Some(true),
            interactive: container["stdin"].as_bool() == Some(true),
            network: NetworkRequest {
                mode: if index == 0 {
                    NetworkMode::parse("bridge")
                } else {
                    NetworkMode::parse(&format!("container:{first_name}"))
                },
                publish: if index == 0 {
                    publish.clone()
                } else {
                    Vec::new()
                },
                // Each container has its own /etc/hosts: the aliases go in all.
                add_hosts: add_hosts.clone(),
                ..NetworkRequest::default()
            },
            mounts,
            volumes: anonymous,
            tmpfs,
            read_only: security["readOnlyRootFilesystem"].as_bool() == Some(true),
            limits: Limits {
                memory,
                cpus,
                ..Limits::default()
            },
            detach: true,
            ..RunOptions::default()
        };
        options.sandbox.privileged = security["privileged"].as_bool() == Some(true);
        let settings = Settings {
            restart: engine::RestartPolicy::parse(restart).unwrap_or_default(),
            labels: BTreeMap::from([(POD_LABEL.to_string(), pod.name.clone())]),
            healthcheck,
            ..Settings::default()
        };
        engine::check_run_options(&options, &settings)
            .map_err(|e| ComposeError::Engine(e.into()))?;
        let request = ContainerRequest::new(ImageName::new(image), options, settings);
        let id = engine::create(store, &request, reporter.engine())?;
        engine::start_detached(store, &id, reporter.engine())?;
        reporter.status("Container", &name, "Started");
        names.push(name);
    }
    Ok(names)
}

/// A Kubernetes quantity of bytes (`64Mi`, `1G`, `67108864`).
fn kube_quantity(text: &str) -> Option<u64> {
    let units: [(&str, u64); 8] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
    ];
    for (suffix, factor) in units {
        if let Some(number) = text.strip_suffix(suffix) {
            return number.parse::<u64>().ok()?.checked_mul(factor);
        }
    }
    text.parse().ok()
}

/// `kube down`: the containers of the file's pods stopped and removed (claims' volumes
/// kept, as a cluster keeps them).
pub fn down(store: &Store, yaml: &str, file: &str, reporter: &dyn Reporter) -> Result<()> {
    let (pods, _) = read(yaml, file)?;
    for pod in pods {
        let rows = engine::ps(
            store,
            &PsRequest {
                all: true,
                filters: vec![PsFilter::Label(POD_LABEL.into(), Some(pod.name.clone()))],
                ..PsRequest::default()
            },
            &NoReport,
        )?;
        // The joiners before the container whose namespace they share.
        for row in rows.iter() {
            let _ = engine::stop(
                store,
                &StopRequest {
                    container: row.id.clone(),
                    timeout: None,
                    signal: None,
                },
            );
            engine::remove(
                store,
                &RemoveRequest {
                    container: row.id.clone(),
                    force: true,
                    volumes: true,
                },
            )?;
            reporter.status("Container", &row.name, "Removed");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_of_bytes() {
        assert_eq!(kube_quantity("64Mi"), Some(64 << 20));
        assert_eq!(kube_quantity("67108864"), Some(67108864));
        assert_eq!(kube_quantity("1G"), Some(1_000_000_000));
        assert_eq!(kube_quantity("x"), None);
    }

    #[test]
    fn fields_play_does_not_honour_are_refused_with_their_path() {
        let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: a\n    image: busybox\n    readinessProbe: {exec: {command: ['true']}}\n";
        let err = read(yaml, "pod.yaml").err().unwrap().to_string();
        assert_eq!(
            err,
            "pod.yaml: p.spec.containers.0.readinessProbe: lade kube play does not honour this field"
        );
        let config = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n";
        assert!(read(config, "c.yaml")
            .err()
            .unwrap()
            .to_string()
            .contains("not ConfigMap"));
    }
}
