//! `kube generate`: a compose project written as Kubernetes YAML, typed with the
//! k8s-openapi crate so that it is what a cluster's API accepts. The one converter of
//! both sources: existing containers reach it as a project too (`kube_source`). A Pod
//! holds every service's container (sharing one network namespace, as a pod does, so
//! service names are made to resolve to 127.0.0.1 through `hostAliases`); with the
//! deployment type, each service of a compose project becomes a Deployment and, when it
//! has ports, a Service of its name (the cluster's DNS then resolves it), while
//! containers that share a pod stay one Deployment. Named volumes become PersistentVolumeClaims, binds
//! hostPath volumes, tmpfs in-memory emptyDirs; healthchecks liveness probes; limits
//! resource limits. What has no Kubernetes field is named in the warnings.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EmptyDirVolumeSource, EnvVar, ExecAction, HostAlias,
    HostPathVolumeSource, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimVolumeSource, Pod, PodSpec, PodTemplateSpec, Probe, ResourceRequirements,
    SecurityContext, Service as KubeService, ServicePort, ServiceSpec, Volume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::convert::{self, duration};
use super::model::{Project, Service};
use super::{ComposeError, Result};

/// What `kube generate` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KubeKind {
    Pod,
    Deployment,
}

/// The YAML documents and what could not be carried over.
#[derive(Debug)]
pub struct Generated {
    pub yaml: String,
    pub warnings: Vec<String>,
}

/// A name as Kubernetes takes it (RFC 1123 label: lowercase letters, digits, `-`).
pub fn kube_name(text: &str) -> String {
    let name: String = text
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    name.trim_matches('-').to_string()
}

/// How a project's services make pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    /// A compose project: with the pod type one pod of every service; with the
    /// deployment type a Deployment (and a Service) per service, as each service is
    /// scaled on its own.
    PerService,
    /// Containers that share a network (a pod `kube play` ran, or containers named
    /// together): always one pod, whichever the type.
    OnePod,
}

/// The project as Kubernetes YAML (documents separated by `---`).
pub fn generate(project: &Project, kind: KubeKind, grouping: Grouping) -> Result<Generated> {
    let mut warnings = Vec::new();
    let mut documents = Vec::new();
    for (key, volume) in &project.volumes {
        let used = project.services.values().any(|s| {
            s.volumes
                .iter()
                .any(|v| v.source.as_deref() == Some(key) && v.kind == "volume")
        });
        if !used {
            continue;
        }
        let claim = PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some(kube_name(volume.name.as_deref().unwrap_or(key))),
                ..ObjectMeta::default()
            },
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec!["ReadWriteOnce".into()]),
                resources: Some(VolumeResourceRequirements {
                    requests: Some(BTreeMap::from([("storage".into(), Quantity("1Gi".into()))])),
                    ..VolumeResourceRequirements::default()
                }),
                ..PersistentVolumeClaimSpec::default()
            }),
            ..PersistentVolumeClaim::default()
        };
        documents.push(to_yaml(&claim)?);
    }
    let all: Vec<&String> = project.services.keys().collect();
    let groups: Vec<(String, Vec<&String>)> = match (kind, grouping) {
        (KubeKind::Deployment, Grouping::PerService) => project
            .services
            .keys()
            .map(|name| (kube_name(name), vec![name]))
            .collect(),
        (KubeKind::Deployment, Grouping::OnePod) => {
            vec![(format!("{}-deployment", kube_name(&project.name)), all)]
        }
        (KubeKind::Pod, _) => vec![(kube_name(&project.name), all)],
    };
    for (group_name, members) in groups {
        let mut containers = Vec::new();
        let mut volumes = BTreeMap::new();
        let mut restart = "Never";
        for name in &members {
            let service = &project.services[*name];
            containers.push(container(
                project,
                name,
                service,
                &mut volumes,
                &mut warnings,
            )?);
            restart = match service.restart.as_deref() {
                Some("always" | "unless-stopped") => "Always",
                Some(r) if r.starts_with("on-failure") && restart != "Always" => "OnFailure",
                _ => restart,
            };
            let replicas = service
                .deploy
                .as_ref()
                .and_then(|d| d.replicas)
                .unwrap_or(1);
            if kind == KubeKind::Pod && replicas != 1 {
                warnings.push(format!("services.{name}.deploy.replicas: a Pod runs one of each container (use --type deployment)"));
            }
            if kind == KubeKind::Deployment
                && service
                    .restart
                    .as_deref()
                    .is_some_and(|r| r != "always" && r != "unless-stopped")
            {
                warnings.push(format!(
                    "services.{name}.restart: a Deployment always restarts its pods"
                ));
            }
        }
        // The containers share the pod's network: each service's name is this pod.
        let host_aliases = (kind == KubeKind::Pod || members.len() > 1).then(|| {
            vec![HostAlias {
                ip: "127.0.0.1".into(),
                hostnames: Some(members.iter().map(|n| kube_name(n)).collect()),
            }]
        });
        let volumes = (!volumes.is_empty()).then(|| volumes.into_values().collect());
        if kind == KubeKind::Pod {
            let pod = Pod {
                metadata: ObjectMeta {
                    name: Some(group_name.clone()),
                    labels: Some(BTreeMap::from([("app".into(), group_name)])),
                    ..ObjectMeta::default()
                },
                spec: Some(PodSpec {
                    containers,
                    restart_policy: Some(restart.into()),
                    host_aliases,
                    volumes,
                    ..PodSpec::default()
                }),
                ..Pod::default()
            };
            documents.push(to_yaml(&pod)?);
            continue;
        }
        let labels = BTreeMap::from([
            ("app".to_string(), group_name.clone()),
            ("project".to_string(), kube_name(&project.name)),
        ]);
        let ports: Vec<ServicePort> = containers
            .iter()
            .flat_map(|c| c.ports.iter().flatten())
            .map(|p| ServicePort {
                name: Some(format!(
                    "{}-{}",
                    p.protocol.as_deref().unwrap_or("TCP").to_lowercase(),
                    p.container_port
                )),
                port: p.container_port,
                protocol: p.protocol.clone(),
                target_port: Some(IntOrString::Int(p.container_port)),
                ..ServicePort::default()
            })
            .collect();
        // A pod of several services scales as one: the most any of them asks for.
        let replicas = members
            .iter()
            .map(|name| {
                project.services[*name]
                    .deploy
                    .as_ref()
                    .and_then(|d| d.replicas)
                    .unwrap_or(1)
            })
            .max()
            .unwrap_or(1);
        let deployment = Deployment {
            metadata: ObjectMeta {
                name: Some(group_name.clone()),
                labels: Some(labels.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(i32::try_from(replicas).unwrap_or(i32::MAX)),
                selector: LabelSelector {
                    match_labels: Some(labels.clone()),
                    ..LabelSelector::default()
                },
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(labels.clone()),
                        ..ObjectMeta::default()
                    }),
                    spec: Some(PodSpec {
                        containers,
                        host_aliases,
                        volumes,
                        ..PodSpec::default()
                    }),
                },
                ..DeploymentSpec::default()
            }),
            ..Deployment::default()
        };
        documents.push(to_yaml(&deployment)?);
        if !ports.is_empty() {
            let kube_service = KubeService {
                metadata: ObjectMeta {
                    name: Some(group_name),
                    labels: Some(labels.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(ServiceSpec {
                    selector: Some(labels),
                    ports: Some(ports),
                    ..ServiceSpec::default()
                }),
                ..KubeService::default()
            };
            documents.push(to_yaml(&kube_service)?);
        }
    }
    Ok(Generated {
        yaml: documents.join("---\n"),
        warnings,
    })
}

fn to_yaml<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_yaml_ng::to_string(value).map_err(|e| ComposeError::Kube(e.to_string()))
}

/// One service's container; its volumes added to `volumes` by name.
fn container(
    project: &Project,
    name: &str,
    service: &Service,
    volumes: &mut BTreeMap<String, Volume>,
    warnings: &mut Vec<String>,
) -> Result<Container> {
    let bad = |reason: String| ComposeError::Service {
        service: name.to_string(),
        reason,
    };
    let ports: Vec<ContainerPort> = service
        .ports
        .iter()
        .map(|p| ContainerPort {
            container_port: i32::from(p.target),
            host_port: p.published.as_deref().and_then(|h| h.parse().ok()),
            host_ip: p.host_ip.clone(),
            protocol: Some(p.protocol.to_uppercase()),
            ..ContainerPort::default()
        })
        .chain(service.expose.iter().filter_map(|e| {
            let (port, protocol) = e.split_once('/').unwrap_or((e, "tcp"));
            Some(ContainerPort {
                container_port: port.parse().ok()?,
                protocol: Some(protocol.to_uppercase()),
                ..ContainerPort::default()
            })
        }))
        .collect();
    let mut mounts = Vec::new();
    for (index, volume) in service.volumes.iter().enumerate() {
        let (volume_name, source) = match (volume.kind.as_str(), &volume.source) {
            ("volume", Some(source)) => {
                let claim = kube_name(
                    project
                        .volumes
                        .get(source)
                        .and_then(|v| v.name.as_deref())
                        .unwrap_or(source),
                );
                (
                    claim.clone(),
                    Volume {
                        name: claim.clone(),
                        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                            claim_name: claim,
                            read_only: None,
                        }),
                        ..Volume::default()
                    },
                )
            }
            ("bind", Some(source)) => {
                let volume_name = format!("{}-host-{index}", kube_name(name));
                (
                    volume_name.clone(),
                    Volume {
                        name: volume_name,
                        host_path: Some(HostPathVolumeSource {
                            path: source.clone(),
                            type_: None,
                        }),
                        ..Volume::default()
                    },
                )
            }
            _ => {
                let volume_name = format!("{}-tmp-{index}", kube_name(name));
                let medium = (volume.kind == "tmpfs").then(|| "Memory".to_string());
                (
                    volume_name.clone(),
                    Volume {
                        name: volume_name,
                        empty_dir: Some(EmptyDirVolumeSource {
                            medium,
                            size_limit: None,
                        }),
                        ..Volume::default()
                    },
                )
            }
        };
        volumes.insert(volume_name.clone(), source);
        mounts.push(VolumeMount {
            name: volume_name,
            mount_path: volume.target.clone(),
            read_only: volume.read_only.then_some(true),
            ..VolumeMount::default()
        });
    }
    let probe = match &service.healthcheck {
        Some(check) if !check.disable => {
            let test = check.test.clone().unwrap_or_default();
            let command = match test.first().map(String::as_str) {
                Some("CMD-SHELL") => vec!["/bin/sh".into(), "-c".into(), test[1..].join(" ")],
                Some("CMD") => test[1..].to_vec(),
                _ => Vec::new(),
            };
            let seconds = |field: &Option<String>| -> Result<Option<i32>> {
                match field {
                    None => Ok(None),
                    Some(text) => Ok(Some(
                        i32::try_from(
                            duration(text)
                                .map_err(|e| bad(format!("healthcheck: {e}")))?
                                .as_secs()
                                .max(1),
                        )
                        .unwrap_or(i32::MAX),
                    )),
                }
            };
            (!command.is_empty())
                .then(|| -> Result<Probe> {
                    Ok(Probe {
                        exec: Some(ExecAction {
                            command: Some(command),
                        }),
                        period_seconds: seconds(&check.interval)?,
                        timeout_seconds: seconds(&check.timeout)?,
                        initial_delay_seconds: seconds(&check.start_period)?,
                        failure_threshold: check.retries.and_then(|r| i32::try_from(r).ok()),
                        ..Probe::default()
                    })
                })
                .transpose()?
        }
        _ => None,
    };
    let mut limits = BTreeMap::new();
    if let Some(l) = service
        .deploy
        .as_ref()
        .and_then(|d| d.resources.as_ref())
        .and_then(|r| r.limits.as_ref())
    {
        if let Some(memory) = &l.memory {
            let bytes = crate::oci::parse_size(memory)
                .ok_or_else(|| bad(format!("memory limit {memory:?} is not a size")))?;
            limits.insert("memory".to_string(), Quantity(bytes.to_string()));
        }
        if let Some(cpus) = l.cpus {
            limits.insert(
                "cpu".to_string(),
                Quantity(format!("{}m", (cpus * 1000.0).round() as u64)),
            );
        }
        if l.pids.is_some() {
            warnings.push(format!(
                "services.{name}.deploy.resources.limits.pids: Kubernetes sets pid limits per node, not per container"
            ));
        }
    }
    let run_as_user = match &service.user {
        None => None,
        Some(user) => match user.split(':').next().and_then(|u| u.parse::<i64>().ok()) {
            Some(uid) => Some(uid),
            None => {
                warnings.push(format!(
                    "services.{name}.user: Kubernetes takes a numeric user, not {user:?}"
                ));
                None
            }
        },
    };
    for (field, set) in [
        ("depends_on", !service.depends_on.is_empty()),
        ("extra_hosts", !service.extra_hosts.is_empty()),
        ("stop_signal", service.stop_signal.is_some()),
        ("networks", service.networks.keys().any(|n| n != "default")),
    ] {
        if set {
            warnings.push(format!(
                "services.{name}.{field}: not carried over to Kubernetes"
            ));
        }
    }
    Ok(Container {
        name: kube_name(name),
        image: Some(convert::image_of(project, name, service)),
        command: service.entrypoint.clone(),
        args: service.command.clone(),
        env: (!service.environment.is_empty()).then(|| {
            service
                .environment
                .iter()
                .map(|(k, v)| EnvVar {
                    name: k.clone(),
                    value: v.clone(),
                    value_from: None,
                })
                .collect()
        }),
        ports: (!ports.is_empty()).then_some(ports),
        volume_mounts: (!mounts.is_empty()).then_some(mounts),
        liveness_probe: probe,
        resources: (!limits.is_empty()).then(|| ResourceRequirements {
            limits: Some(limits),
            ..ResourceRequirements::default()
        }),
        working_dir: service.working_dir.clone(),
        tty: service.tty.then_some(true),
        stdin: service.stdin_open.then_some(true),
        security_context: (run_as_user.is_some() || service.privileged || service.read_only).then(
            || SecurityContext {
                run_as_user,
                privileged: service.privileged.then_some(true),
                read_only_root_filesystem: service.read_only.then_some(true),
                ..SecurityContext::default()
            },
        ),
        ..Container::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_kubernetes_takes_them() {
        assert_eq!(kube_name("My_App.v2"), "my-app-v2");
        assert_eq!(kube_name("-x-"), "x");
    }
}
