//! `kube generate CONTAINER|POD...`: existing containers read back into the compose
//! model (one service per container), so that the one converter in `kube` writes them
//! as it writes a compose project. Only what a container sets beyond its image is
//! carried over (environment, command, user, working directory), as podman does: the
//! image still supplies the rest once a cluster runs it.
//!
//! lade has no pod objects of its own: a "pod" is the containers `kube play` made for
//! one, which carry its name in the [`POD_LABEL`] label.

use std::collections::BTreeMap;

use serde_json::Value;

use super::kube::{generate, Generated, Grouping, KubeKind};
use super::kube_play::POD_LABEL;
use super::model::{
    Deploy, Healthcheck, Limits, Port, Project, Resources, Service, ServiceVolume, Volume,
};
use super::up::NoReport;
use super::{ComposeError, Result};
use crate::engine::{self, EngineError, InspectKind, PsFilter, PsRequest, Store};

/// Kubernetes YAML for these containers or pods, all in one pod (they are meant to
/// share a network, as the containers of a played pod do).
pub fn generate_from_containers(
    store: &Store,
    names: &[String],
    kind: KubeKind,
) -> Result<Generated> {
    let mut project = Project::default();
    for (index, name) in names.iter().enumerate() {
        let (pod_name, members) = members(store, name)?;
        if index == 0 {
            // Podman names the pod of a lone container after it, `NAME-pod`.
            project.name = pod_name.unwrap_or_else(|| format!("{name}-pod"));
        }
        for (service_name, details) in members {
            let service = service_of(store, &details, &mut project.volumes)?;
            if project
                .services
                .insert(service_name.clone(), service)
                .is_some()
            {
                return Err(ComposeError::Kube(format!(
                    "two containers would both be named {service_name:?} in the pod"
                )));
            }
        }
    }
    generate(&project, kind, Grouping::OnePod)
}

/// The containers a name stands for, with the names they get in the pod: a container,
/// or the containers of a pod `kube play` ran (then the pod's name too).
/// Containers by the names they get in a pod, with their `inspect` details.
type Members = Vec<(String, Value)>;

fn members(store: &Store, name: &str) -> Result<(Option<String>, Members)> {
    match engine::inspect(store, name, Some(InspectKind::Container)) {
        Ok(details) => {
            let own = container_name(&details);
            // A container of a played pod keeps its name in that pod.
            let in_pod = details["Config"]["Labels"][POD_LABEL]
                .as_str()
                .and_then(|pod| own.strip_prefix(&format!("{pod}-")))
                .map(str::to_string);
            return Ok((None, vec![(in_pod.unwrap_or(own), details)]));
        }
        Err(e) if e.is_no_such_container() || matches!(e, EngineError::NoSuchObject(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let rows = engine::ps(
        store,
        &PsRequest {
            all: true,
            filters: vec![PsFilter::Label(POD_LABEL.into(), Some(name.to_string()))],
            ..PsRequest::default()
        },
        &NoReport,
    )?;
    if rows.is_empty() {
        return Err(ComposeError::Kube(format!(
            "no such container or pod: {name}"
        )));
    }
    let mut found = Vec::new();
    // Oldest first: the pod's first container holds its network.
    let mut rows = rows;
    rows.sort_by_key(|r| r.created);
    for row in rows {
        let details = engine::inspect(store, &row.id, Some(InspectKind::Container))?;
        let own = container_name(&details);
        let short = own
            .strip_prefix(&format!("{name}-"))
            .unwrap_or(&own)
            .to_string();
        found.push((short, details));
    }
    Ok((Some(name.to_string()), found))
}

fn container_name(details: &Value) -> String {
    details["Name"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches('/')
        .to_string()
}

fn strings(value: &Value) -> Option<Vec<String>> {
    value.as_array().map(|items| {
        items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect()
    })
}

/// A non-empty string field.
fn text(value: &Value) -> Option<String> {
    value.as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

/// One container as a compose service; the named volumes it uses added to `volumes`.
fn service_of(
    store: &Store,
    details: &Value,
    volumes: &mut BTreeMap<String, Volume>,
) -> Result<Service> {
    let config = &details["Config"];
    let host = &details["HostConfig"];
    let image_name = config["Image"].as_str().unwrap_or_default().to_string();
    // The image's own configuration: what the container merely inherits is left out.
    let image = engine::inspect(store, &image_name, Some(InspectKind::Image))
        .or_else(|_| {
            engine::inspect(
                store,
                details["Image"].as_str().unwrap_or_default(),
                Some(InspectKind::Image),
            )
        })
        .map(|found| found["Config"].clone())
        .unwrap_or(Value::Null);
    let image_env: Vec<String> = strings(&image["Env"]).unwrap_or_default();
    let environment = strings(&config["Env"])
        .unwrap_or_default()
        .into_iter()
        .filter(|entry| !image_env.contains(entry))
        .map(|entry| match entry.split_once('=') {
            Some((key, value)) => (key.to_string(), Some(value.to_string())),
            None => (entry, None),
        })
        .collect();
    let entrypoint = strings(&config["Entrypoint"]).unwrap_or_default();
    let cmd = strings(&config["Cmd"]).unwrap_or_default();
    let image_entrypoint = strings(&image["Entrypoint"]).unwrap_or_default();
    let image_cmd = strings(&image["Cmd"]).unwrap_or_default();
    // As in Kubernetes, a new entrypoint drops the image's command: both are written.
    let (entrypoint, command) = if entrypoint != image_entrypoint {
        (Some(entrypoint), (!cmd.is_empty()).then_some(cmd))
    } else if cmd != image_cmd {
        (None, Some(cmd))
    } else {
        (None, None)
    };
    let differs = |field: &str, default: &str| {
        let own = config[field].as_str().unwrap_or(default);
        let inherited = image[field].as_str().unwrap_or(default);
        (own != inherited && !own.is_empty()).then(|| own.to_string())
    };
    let mut ports = Vec::new();
    if let Some(bindings) = host["PortBindings"].as_object() {
        for (port, hosts) in bindings {
            let (target, protocol) = port.split_once('/').unwrap_or((port, "tcp"));
            let Ok(target) = target.parse::<u16>() else {
                continue;
            };
            for binding in hosts.as_array().into_iter().flatten() {
                ports.push(Port {
                    mode: "ingress".into(),
                    host_ip: text(&binding["HostIp"]).filter(|ip| ip != "0.0.0.0"),
                    target,
                    published: text(&binding["HostPort"]),
                    protocol: protocol.to_string(),
                });
            }
        }
    }
    let mut service_volumes = Vec::new();
    for mount in details["Mounts"].as_array().into_iter().flatten() {
        let target = mount["Destination"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let read_only = mount["RW"].as_bool() == Some(false);
        let (kind, source) = match mount["Type"].as_str().unwrap_or_default() {
            "volume" => match text(&mount["Name"]) {
                Some(name) => {
                    volumes.insert(
                        name.clone(),
                        Volume {
                            name: Some(name.clone()),
                            ..Volume::default()
                        },
                    );
                    ("volume", Some(name))
                }
                None => ("volume", None),
            },
            "bind" => ("bind", text(&mount["Source"])),
            "tmpfs" => ("tmpfs", None),
            _ => continue,
        };
        service_volumes.push(ServiceVolume {
            kind: kind.into(),
            source,
            target,
            read_only,
            bind: None,
            volume: None,
            tmpfs: None,
        });
    }
    let check = &config["Healthcheck"];
    let healthcheck = strings(&check["Test"])
        .filter(|test| test.first().is_some_and(|t| t != "NONE"))
        .map(|test| {
            let millis = |field: &str| {
                check[field]
                    .as_u64()
                    .filter(|n| *n > 0)
                    .map(|n| format!("{}ms", n / 1_000_000))
            };
            Healthcheck {
                test: Some(test),
                interval: millis("Interval"),
                timeout: millis("Timeout"),
                retries: check["Retries"].as_u64().filter(|n| *n > 0),
                start_period: millis("StartPeriod"),
                ..Healthcheck::default()
            }
        });
    let limits = Limits {
        cpus: host["NanoCpus"]
            .as_u64()
            .filter(|n| *n > 0)
            .map(|n| n as f64 / 1e9),
        memory: host["Memory"]
            .as_u64()
            .filter(|n| *n > 0)
            .map(|n| n.to_string()),
        pids: host["PidsLimit"].as_u64().filter(|n| *n > 0),
    };
    let has_limits = limits.cpus.is_some() || limits.memory.is_some() || limits.pids.is_some();
    let restart = host["RestartPolicy"]["Name"]
        .as_str()
        .filter(|r| !r.is_empty() && *r != "no")
        .map(str::to_string);
    Ok(Service {
        image: Some(image_name),
        entrypoint,
        command,
        environment,
        ports,
        volumes: service_volumes,
        healthcheck,
        deploy: has_limits.then_some(Deploy {
            replicas: None,
            resources: Some(Resources {
                limits: Some(limits),
            }),
        }),
        restart,
        user: differs("User", ""),
        working_dir: differs("WorkingDir", "/"),
        tty: config["Tty"].as_bool() == Some(true),
        stdin_open: config["OpenStdin"].as_bool() == Some(true),
        read_only: host["ReadonlyRootfs"].as_bool() == Some(true),
        privileged: host["Privileged"].as_bool() == Some(true),
        ..Service::default()
    })
}
