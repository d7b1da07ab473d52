//! `kube play` and `kube down`: Pods and Deployments of a Kubernetes YAML file run
//! locally. A pod's containers share one network namespace, as a pod's do: the first
//! container has it (with every container's `hostPort` published) and the others join
//! it. PersistentVolumeClaims become named volumes; Services are accepted and left to
//! the shared namespace (a pod's containers reach each other on localhost). ConfigMaps
//! and Secrets of the same file become environment variables and files (a volume per
//! pod volume, filled with their keys, as podman makes one); a Deployment of N replicas
//! runs N pods. Every field lade does not honour is refused with its path.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::Value;

use super::up::NoReport;
use super::{ComposeError, Reporter, Result};
use crate::engine::{
    self, ContainerRequest, ImageName, Limits, NetworkMode, NetworkRequest, PsFilter, PsRequest,
    RemoveRequest, RunOptions, Settings, StopRequest, Store, VolumeCreateRequest, VolumeFilter,
    VolumeRemoveRequest,
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
            "envFrom",
        ],
    ),
    ("containers.#.env.#", &["name", "value", "valueFrom"]),
    (
        "containers.#.env.#.valueFrom",
        &["configMapKeyRef", "secretKeyRef"],
    ),
    (
        "containers.#.env.#.valueFrom.configMapKeyRef",
        &["name", "key", "optional"],
    ),
    (
        "containers.#.env.#.valueFrom.secretKeyRef",
        &["name", "key", "optional"],
    ),
    (
        "containers.#.envFrom.#",
        &["configMapRef", "secretRef", "prefix"],
    ),
    ("containers.#.envFrom.#.configMapRef", &["name", "optional"]),
    ("containers.#.envFrom.#.secretRef", &["name", "optional"]),
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
        &[
            "name",
            "persistentVolumeClaim",
            "hostPath",
            "emptyDir",
            "configMap",
            "secret",
        ],
    ),
    (
        "volumes.#.configMap",
        &["name", "items", "defaultMode", "optional"],
    ),
    ("volumes.#.configMap.items.#", &["key", "path", "mode"]),
    (
        "volumes.#.secret",
        &["secretName", "items", "defaultMode", "optional"],
    ),
    ("volumes.#.secret.items.#", &["key", "path", "mode"]),
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

/// A ConfigMap's or a Secret's keys and their bytes.
type Data = BTreeMap<String, Vec<u8>>;

/// What a file's documents give `play`.
#[derive(Default)]
struct Documents {
    pods: Vec<PodToRun>,
    claims: Vec<String>,
    config_maps: BTreeMap<String, Data>,
    secrets: BTreeMap<String, Data>,
}

fn refuse(file: &str, path: &str, reason: &str) -> ComposeError {
    ComposeError::Unsupported {
        file: file.to_string(),
        path: path.to_string(),
        reason: format!("{path}: {reason}"),
    }
}

/// The pods, claims, ConfigMaps and Secrets of a file's documents, every field checked.
fn read(yaml: &str, file: &str) -> Result<Documents> {
    let mut found = Documents::default();
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
            "Pod" => found.pods.push(PodToRun {
                name,
                spec: value["spec"].clone(),
            }),
            "Deployment" => {
                let replicas = value["spec"]["replicas"].as_u64().unwrap_or(1);
                let spec = value["spec"]["template"]["spec"].clone();
                if replicas > 1 {
                    refuse_shared_host_ports(&spec, replicas, file, &at)?;
                }
                // Podman's names: `NAME-pod`, or `NAME-pod-0`... for several replicas.
                for replica in 0..replicas {
                    found.pods.push(PodToRun {
                        name: if replicas == 1 {
                            format!("{name}-pod")
                        } else {
                            format!("{name}-pod-{replica}")
                        },
                        spec: spec.clone(),
                    });
                }
            }
            "PersistentVolumeClaim" => found.claims.push(name),
            "Service" => {}
            "ConfigMap" => {
                let data = data_of(&value, file, &at, &["binaryData"], &["data"])?;
                found.config_maps.insert(name, data);
            }
            "Secret" => {
                let data = data_of(&value, file, &at, &["data"], &["stringData"])?;
                found.secrets.insert(name, data);
            }
            other => {
                return Err(refuse(
                    file,
                    &at,
                    &format!("lade kube play runs Pods and Deployments (with PersistentVolumeClaims, ConfigMaps, Secrets and Services), not {other}"),
                ))
            }
        }
    }
    for pod in &found.pods {
        check(&pod.spec, &mut Vec::new(), &mut Vec::new(), file, &pod.name)?;
    }
    Ok(found)
}

/// Replicas of one pod on one host cannot each publish the same host port.
fn refuse_shared_host_ports(spec: &Value, replicas: u64, file: &str, at: &str) -> Result<()> {
    for (index, container) in spec["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        for (number, port) in container["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            if let Some(host) = port["hostPort"].as_u64() {
                return Err(refuse(
                    file,
                    &format!("{at}.spec.template.spec.containers.{index}.ports.{number}.hostPort"),
                    &format!("{replicas} replicas on one host cannot all publish host port {host}"),
                ));
            }
        }
    }
    Ok(())
}

/// The keys of a ConfigMap or a Secret: `encoded` fields hold base64, `plain` fields
/// text (which wins, as `stringData` wins over `data`).
fn data_of(value: &Value, file: &str, at: &str, encoded: &[&str], plain: &[&str]) -> Result<Data> {
    const COMMON: &[&str] = &["apiVersion", "kind", "metadata", "immutable", "type"];
    for key in value.as_object().into_iter().flatten().map(|(k, _)| k) {
        if !COMMON.contains(&key.as_str())
            && !encoded.contains(&key.as_str())
            && !plain.contains(&key.as_str())
        {
            return Err(refuse(
                file,
                &format!("{at}.{key}"),
                "lade kube play does not honour this field",
            ));
        }
    }
    let mut data = Data::new();
    for (field, is_encoded) in encoded
        .iter()
        .map(|f| (*f, true))
        .chain(plain.iter().map(|f| (*f, false)))
    {
        for (key, item) in value[field].as_object().into_iter().flatten() {
            let path = format!("{at}.{field}.{key}");
            let text = item
                .as_str()
                .ok_or_else(|| refuse(file, &path, "is not a string"))?;
            let bytes = if is_encoded {
                base64::engine::general_purpose::STANDARD
                    .decode(text.trim())
                    .map_err(|e| refuse(file, &path, &format!("is not base64: {e}")))?
            } else {
                text.as_bytes().to_vec()
            };
            data.insert(key.clone(), bytes);
        }
    }
    Ok(data)
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
    let documents = read(yaml, file)?;
    for claim in &documents.claims {
        if engine::inspect_volume(store, claim).is_err() {
            engine::create_volume(
                store,
                &VolumeCreateRequest {
                    name: Some(claim.clone()),
                    labels: BTreeMap::new(),
                    driver: "local".into(),
                    options: BTreeMap::new(),
                },
            )?;
            reporter.status("Volume", claim, "Created");
        }
    }
    let mut started = Vec::new();
    for pod in &documents.pods {
        started.extend(play_pod(store, pod, &documents, reporter)?);
    }
    Ok(started)
}

/// A ConfigMap or a Secret of the file, by name: `None` when it is missing and the
/// reference is optional.
fn lookup<'a>(
    documents: &'a Documents,
    kind: &str,
    name: &str,
    optional: bool,
) -> std::result::Result<Option<&'a Data>, String> {
    let found = match kind {
        "Secret" => documents.secrets.get(name),
        _ => documents.config_maps.get(name),
    };
    match found {
        Some(data) => Ok(Some(data)),
        None if optional => Ok(None),
        None => Err(format!("{kind} {name:?} is not in the file")),
    }
}

/// A container's environment: `envFrom` first, then `env` (which wins), as the
/// kubelet makes it.
fn environment(
    container: &Value,
    documents: &Documents,
) -> std::result::Result<Vec<String>, String> {
    let mut variables: Vec<(String, String)> = Vec::new();
    let mut set = |name: String, value: String| {
        variables.retain(|(n, _)| *n != name);
        variables.push((name, value));
    };
    let text = |bytes: &[u8], what: &str| {
        String::from_utf8(bytes.to_vec()).map_err(|_| format!("{what} is not UTF-8 text"))
    };
    for source in container["envFrom"].as_array().into_iter().flatten() {
        let prefix = source["prefix"].as_str().unwrap_or_default();
        for (field, kind) in [("configMapRef", "ConfigMap"), ("secretRef", "Secret")] {
            let reference = &source[field];
            let Some(name) = reference["name"].as_str() else {
                continue;
            };
            let optional = reference["optional"].as_bool() == Some(true);
            for (key, value) in lookup(documents, kind, name, optional)?
                .into_iter()
                .flatten()
            {
                set(
                    format!("{prefix}{key}"),
                    text(value, &format!("{kind} {name:?} key {key:?}"))?,
                );
            }
        }
    }
    for variable in container["env"].as_array().into_iter().flatten() {
        let Some(name) = variable["name"].as_str() else {
            continue;
        };
        let from = &variable["valueFrom"];
        let reference = [("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")]
            .into_iter()
            .find(|(field, _)| from[field].is_object());
        match reference {
            None => set(
                name.to_string(),
                variable["value"].as_str().unwrap_or_default().to_string(),
            ),
            Some((field, kind)) => {
                let source = &from[field];
                let source_name = source["name"].as_str().unwrap_or_default();
                let key = source["key"].as_str().unwrap_or_default();
                let optional = source["optional"].as_bool() == Some(true);
                let data = lookup(documents, kind, source_name, optional)?;
                match data.and_then(|d| d.get(key)) {
                    Some(value) => set(
                        name.to_string(),
                        text(value, &format!("{kind} {source_name:?} key {key:?}"))?,
                    ),
                    None if optional => {}
                    None => {
                        return Err(format!(
                            "env {name}: {kind} {source_name:?} has no key {key:?}"
                        ))
                    }
                }
            }
        }
    }
    Ok(variables
        .into_iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect())
}

/// A file mode of a ConfigMap or Secret volume (`defaultMode`, an item's `mode`).
///
/// YAML 1.1 (which Kubernetes reads) takes `0644` as octal; the YAML 1.2 reader here
/// leaves it a string of digits, read as octal too.
fn file_mode(value: &Value, default: u32) -> std::result::Result<u32, String> {
    let octal = value
        .as_str()
        .filter(|text| text.len() > 1 && text.starts_with('0'))
        .and_then(|text| u64::from_str_radix(text, 8).ok());
    match octal.or(value.as_u64()) {
        None if value.is_null() => Ok(default),
        Some(mode) if mode <= 0o777 => Ok(mode as u32),
        _ => Err(format!(
            "{value} is not a file mode (0 to 0777, in decimal 0 to 511)"
        )),
    }
}

/// The volume a ConfigMap or Secret volume of a pod becomes: its keys written as files
/// (all, or its `items` at their paths), with their modes.
fn fill_config_volume(
    store: &Store,
    volume_name: &str,
    source: &Value,
    data: Option<&Data>,
    pod: &str,
) -> std::result::Result<(), String> {
    if engine::inspect_volume(store, volume_name).is_err() {
        engine::create_volume(
            store,
            &VolumeCreateRequest {
                name: Some(volume_name.to_string()),
                labels: BTreeMap::from([(POD_LABEL.to_string(), pod.to_string())]),
                driver: "local".into(),
                options: BTreeMap::new(),
            },
        )
        .map_err(|e| e.to_string())?;
    }
    let found = engine::inspect_volume(store, volume_name).map_err(|e| e.to_string())?;
    let directory =
        std::path::PathBuf::from(found.details["Mountpoint"].as_str().unwrap_or_default());
    let write_error =
        |path: &std::path::Path, e: std::io::Error| format!("cannot write {}: {e}", path.display());
    // A new play shows the file's data, not what an earlier one left.
    for entry in std::fs::read_dir(&directory).map_err(|e| write_error(&directory, e))? {
        let path = entry.map_err(|e| write_error(&directory, e))?.path();
        let removed = if path.is_dir() && !path.is_symlink() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.map_err(|e| write_error(&path, e))?;
    }
    let empty = Data::new();
    let data = data.unwrap_or(&empty);
    let default_mode = file_mode(&source["defaultMode"], 0o644)?;
    let files: Vec<(String, String, u32)> = match source["items"].as_array() {
        None => data
            .keys()
            .map(|key| (key.clone(), key.clone(), default_mode))
            .collect(),
        Some(items) => items
            .iter()
            .map(|item| {
                Ok((
                    item["key"].as_str().unwrap_or_default().to_string(),
                    item["path"].as_str().unwrap_or_default().to_string(),
                    file_mode(&item["mode"], default_mode)?,
                ))
            })
            .collect::<std::result::Result<_, String>>()?,
    };
    for (key, path, mode) in files {
        let Some(bytes) = data.get(&key) else {
            if source["optional"].as_bool() == Some(true) {
                continue;
            }
            return Err(format!("volume {volume_name}: no key {key:?} to write"));
        };
        let relative = std::path::Path::new(&path);
        if path.is_empty()
            || !relative
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)))
        {
            return Err(format!("item path {path:?} must be relative, without '..'"));
        }
        let target = directory.join(relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| write_error(parent, e))?;
        }
        std::fs::write(&target, bytes).map_err(|e| write_error(&target, e))?;
        std::fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(mode))
            .map_err(|e| write_error(&target, e))?;
    }
    Ok(())
}

fn play_pod(
    store: &Store,
    pod: &PodToRun,
    documents: &Documents,
    reporter: &dyn Reporter,
) -> Result<Vec<String>> {
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
    // ConfigMaps and Secrets as files: a volume of the pod's (`POD-VOLUME`) each.
    let mut config_volumes: BTreeMap<String, String> = BTreeMap::new();
    for (volume_name, volume) in &volumes {
        let (source, kind, name) = if volume["configMap"].is_object() {
            let source = &volume["configMap"];
            (source, "ConfigMap", source["name"].as_str())
        } else if volume["secret"].is_object() {
            let source = &volume["secret"];
            (source, "Secret", source["secretName"].as_str())
        } else {
            continue;
        };
        let name = name.ok_or_else(|| bad(format!("volume {volume_name:?} names no {kind}")))?;
        let data = lookup(
            documents,
            kind,
            name,
            source["optional"].as_bool() == Some(true),
        )
        .map_err(|e| bad(format!("volume {volume_name:?}: {e}")))?;
        let made = format!("{}-{volume_name}", pod.name);
        fill_config_volume(store, &made, source, data, &pod.name).map_err(bad)?;
        config_volumes.insert(volume_name.clone(), made);
    }
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
            } else if let Some(made) = config_volumes.get(volume_name) {
                // As a kubelet mounts them: read-only.
                mounts.push(format!(
                    "type=volume,source={made},target={target},readonly"
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
        // `command` is a whole argv: its first word the entrypoint, the rest
        // arguments before `args` (an entrypoint set drops the image's CMD, as
        // `command` does in a pod).
        let mut command = strings(&container["command"]).into_iter();
        let entrypoint = command.next();
        let args: Vec<String> = command.chain(strings(&container["args"])).collect();
        let mut options = RunOptions {
            image: image.to_string(),
            name: Some(name.clone()),
            args,
            entrypoint,
            env: environment(container, documents)
                .map_err(|e| bad(format!("container {name}: {e}")))?,
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
    let documents = read(yaml, file)?;
    for pod in documents.pods {
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
        // The volumes its ConfigMaps and Secrets became (claims stay).
        let made = engine::list_volumes(
            store,
            &[VolumeFilter::Label {
                key: POD_LABEL.into(),
                value: Some(pod.name.clone()),
            }],
        )?;
        for volume in made {
            engine::remove_volume(
                store,
                &VolumeRemoveRequest {
                    name: volume.name.clone(),
                    force: true,
                },
            )?;
            reporter.status("Volume", &volume.name, "Removed");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_maps_and_secrets_are_read_and_replicas_named_as_podman_names_them() {
        let yaml = "kind: ConfigMap\nmetadata: {name: c}\ndata: {a: one}\nbinaryData: {b: dHdv}\n---\nkind: Secret\nmetadata: {name: s}\ndata: {p: c2VjcmV0}\nstringData: {q: plain}\n---\nkind: Deployment\nmetadata: {name: d}\nspec:\n  replicas: 3\n  template:\n    spec:\n      containers: [{name: x, image: busybox}]\n";
        let found = read(yaml, "f.yaml").unwrap();
        assert_eq!(found.config_maps["c"]["a"], b"one");
        assert_eq!(found.config_maps["c"]["b"], b"two");
        assert_eq!(found.secrets["s"]["p"], b"secret");
        assert_eq!(found.secrets["s"]["q"], b"plain");
        let names: Vec<&str> = found.pods.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["d-pod-0", "d-pod-1", "d-pod-2"]);
        let shared = "kind: Deployment\nmetadata: {name: d}\nspec:\n  replicas: 2\n  template:\n    spec:\n      containers: [{name: x, image: busybox, ports: [{containerPort: 80, hostPort: 8080}]}]\n";
        assert_eq!(
            read(shared, "f.yaml").err().unwrap().to_string(),
            "f.yaml: document 1 (Deployment d).spec.template.spec.containers.0.ports.0.hostPort: 2 replicas on one host cannot all publish host port 8080"
        );
    }

    #[test]
    fn environment_from_config_maps_and_secrets() {
        let yaml = "kind: ConfigMap\nmetadata: {name: c}\ndata: {A: from-map, B: b}\n---\nkind: Secret\nmetadata: {name: s}\nstringData: {P: pw}\n";
        let documents = read(yaml, "f.yaml").unwrap();
        let container: Value = serde_json::json!({
            "envFrom": [{"configMapRef": {"name": "c"}, "prefix": "CM_"}],
            "env": [
                {"name": "CM_B", "value": "overridden"},
                {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "s", "key": "P"}}},
                {"name": "GONE", "valueFrom": {"configMapKeyRef": {"name": "none", "key": "x", "optional": true}}},
            ],
        });
        assert_eq!(
            environment(&container, &documents).unwrap(),
            ["CM_A=from-map", "CM_B=overridden", "PASSWORD=pw"]
        );
        let missing = serde_json::json!({"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "s", "key": "nope"}}}]});
        assert_eq!(
            environment(&missing, &documents).unwrap_err(),
            "env X: Secret \"s\" has no key \"nope\""
        );
    }

    #[test]
    fn file_modes_in_octal_or_decimal() {
        let yaml = |text: &str| -> Value { serde_yaml_ng::from_str(text).unwrap() };
        assert_eq!(file_mode(&yaml("0400"), 0o644), Ok(0o400));
        assert_eq!(file_mode(&yaml("0o600"), 0o644), Ok(0o600));
        assert_eq!(file_mode(&yaml("256"), 0o644), Ok(0o400));
        assert_eq!(file_mode(&Value::Null, 0o644), Ok(0o644));
        assert!(file_mode(&yaml("0999"), 0o644).is_err());
        assert!(file_mode(&yaml("4096"), 0o644).is_err());
    }

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
        let config = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\nbinary: x\n";
        assert_eq!(
            read(config, "c.yaml").err().unwrap().to_string(),
            "c.yaml: document 1 (ConfigMap c).binary: lade kube play does not honour this field"
        );
        let job = "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\n";
        assert!(read(job, "j.yaml")
            .err()
            .unwrap()
            .to_string()
            .contains("not Job"));
    }
}
