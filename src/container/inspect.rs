//! `lade inspect` of a container, in Docker's JSON shape (Id, Name, State, Config,
//! HostConfig, Mounts, NetworkSettings...), built from its record and spec.

use serde_json::{json, Value};

use super::{Container, ContainerState, RestartPolicy, Result};
use crate::exec::Mount;
use crate::store::{ContainerRecord, Store};

/// Docker's `container inspect` shape of one container.
pub fn inspect(store: &Store, reference: &str) -> Result<Value> {
    Ok(shape(store, &Container::load(store, reference)?))
}

fn shape(store: &Store, container: &Container) -> Value {
    let Container {
        record,
        spec,
        settings,
        ..
    } = container;
    let state = container.current_state();
    let pid = container.running_init().map_or(0, |init| init.pid);
    let zero_time = "0001-01-01T00:00:00Z";
    let (restart_name, retries) = match settings.restart {
        RestartPolicy::No => ("no", 0),
        RestartPolicy::OnFailure(max) => ("on-failure", max.unwrap_or(0)),
        RestartPolicy::Always => ("always", 0),
        RestartPolicy::UnlessStopped => ("unless-stopped", 0),
    };
    let mounts: Vec<Value> = spec
        .mounts
        .iter()
        .filter_map(|mount| match mount {
            Mount::Bind {
                source,
                target,
                readonly,
            } => {
                let name = user_bind(store, mount)?;
                Some(json!({
                    "Type": if name.is_some() { "volume" } else { "bind" },
                    "Name": name,
                    "Source": source,
                    "Destination": target,
                    "RW": !readonly,
                }))
            }
            Mount::Filesystem {
                source,
                target,
                readonly,
                ..
            } => Some(json!({
                "Type": "volume",
                "Source": source,
                "Destination": target,
                "RW": !readonly,
            })),
            Mount::Tmpfs { target, .. } => Some(json!({
                "Type": "tmpfs",
                "Destination": target,
                "RW": true,
            })),
            _ => None,
        })
        .collect();
    let health = super::health(store, &record.id)
        .filter(|_| settings.healthcheck.is_some())
        .and_then(|health| serde_json::to_value(health).ok());
    let created = jiff::Timestamp::from_second(record.created)
        .map(|t| t.to_string())
        .unwrap_or_default();
    let mut shaped = json!({
        "Id": record.id,
        "Created": created,
        "Path": spec.process.args.first(),
        "Args": spec.process.args.iter().skip(1).collect::<Vec<_>>(),
        "State": {
            "Status": state.as_str(),
            "Running": state.is_up(),
            "Paused": state == ContainerState::Paused,
            "Restarting": state == ContainerState::Restarting,
            "OOMKilled": false,
            "Dead": state == ContainerState::Dead,
            "Pid": pid,
            "ExitCode": record.exit_code.unwrap_or(0),
            "Error": "",
            "StartedAt": record.started_at.as_deref().unwrap_or(zero_time),
            "FinishedAt": record.finished_at.as_deref().unwrap_or(zero_time),
        },
        "Image": record.image.to_string(),
        "Name": format!("/{}", record.name),
        "RestartCount": record.restarts,
        "LogPath": super::log_path(store, &record.id),
        "Config": {
            "Hostname": spec.hostname,
            "User": spec.process.user,
            "Tty": spec.process.terminal,
            "Env": spec.process.env,
            "Cmd": spec.process.args,
            "Image": record.image_name,
            "WorkingDir": spec.process.cwd,
            "Labels": settings.labels,
            "StopSignal": settings.stop_signal.as_deref().unwrap_or("SIGTERM"),
            "StopTimeout": settings.stop_timeout.unwrap_or(super::DEFAULT_STOP_TIMEOUT),
        },
        "HostConfig": {
            "NetworkMode": settings.network.mode.docker_name(),
            "PortBindings": port_bindings(settings.network.plan.as_ref().map(|p| p.ports.as_slice()).unwrap_or(&[])),
            "RestartPolicy": { "Name": restart_name, "MaximumRetryCount": retries },
            "LogConfig": settings.log.docker_shape(),
            "AutoRemove": settings.auto_remove,
            "ReadonlyRootfs": spec.rootfs.readonly,
            "Memory": spec.limits.memory.unwrap_or(0),
            "NanoCpus": spec.limits.cpus.map_or(0, |c| (c * 1e9) as u64),
            "PidsLimit": spec.limits.pids,
            "Init": spec.init,
        },
        "Mounts": mounts,
        "NetworkSettings": network_settings(store, record, &settings.network),
    });
    // Docker's `Config.MacAddress` is there only when `--mac-address` was given.
    if let Some(mac) = settings
        .network
        .plan
        .iter()
        .flat_map(|p| p.attachments.first())
        .find_map(|a| a.mac_address.clone())
    {
        shaped["Config"]["MacAddress"] = mac.into();
    }
    // Docker leaves both out for a container without a check.
    if let Some(health) = health {
        shaped["State"]["Health"] = health;
    }
    if let Some(check) = settings
        .healthcheck
        .as_ref()
        .and_then(|c| serde_json::to_value(c).ok())
    {
        shaped["Config"]["Healthcheck"] = check;
    }
    shaped
}

/// Docker's `{"80/tcp": [{"HostIp": "", "HostPort": "18080"}]}`.
/// A bind mount the user asked for (`-v`, `--mount`), not one lade makes itself (the
/// hosts and resolver files): `Some(Some(name))` for a volume, `Some(None)` for a
/// directory of the host.
fn user_bind(store: &Store, mount: &Mount) -> Option<Option<String>> {
    let Mount::Bind { source, target, .. } = mount else {
        return None;
    };
    if target.starts_with("/etc/host") || target == "/etc/resolv.conf" {
        return None;
    }
    let volumes = store.root().join("volumes");
    Some(
        source
            .strip_prefix(&volumes)
            .ok()
            .and_then(|rest| rest.iter().next())
            .map(|n| n.to_string_lossy().into_owned()),
    )
}

/// A container's volumes and bind mounts as `ps` names them: a volume by its name
/// (`local` is true), a bind mount by its source on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountName {
    pub name: String,
    pub local: bool,
}

/// The volumes and bind mounts of `container`, in the order they were asked for.
pub fn mount_names(store: &Store, container: &Container) -> Vec<MountName> {
    container
        .spec
        .mounts
        .iter()
        .filter_map(|mount| {
            let Mount::Bind { source, .. } = mount else {
                return None;
            };
            Some(match user_bind(store, mount)? {
                Some(name) => MountName { name, local: true },
                None => MountName {
                    name: source.to_string_lossy().into_owned(),
                    local: false,
                },
            })
        })
        .collect()
}

/// The networks `container` is on, by the names Docker gives them (`bridge` for the
/// default one, `host`, `none`; none for another container's network).
pub fn network_names(container: &Container) -> Vec<String> {
    let network = &container.settings.network;
    match (&network.mode, &network.plan) {
        (super::NetworkMode::None, _) => vec!["none".into()],
        (super::NetworkMode::Host, _) => vec!["host".into()],
        (super::NetworkMode::Pasta, _) => vec!["pasta".into()],
        (super::NetworkMode::Slirp4netns, _) => vec!["slirp4netns".into()],
        (super::NetworkMode::Container(_), _) => Vec::new(),
        (super::NetworkMode::Bridge(name), None) => vec![docker_network_name(name)],
        (super::NetworkMode::Bridge(_), Some(plan)) => plan
            .attachments
            .iter()
            .map(|a| docker_network_name(&a.network.name))
            .collect(),
    }
}

/// The default network is Docker's `bridge`.
fn docker_network_name(name: &str) -> String {
    if name == crate::network::DEFAULT_NETWORK {
        "bridge".to_string()
    } else {
        name.to_string()
    }
}

fn port_bindings(ports: &[crate::network::PortMapping]) -> Value {
    let mut bindings = serde_json::Map::new();
    for mapping in ports {
        for (container, host) in mapping.docker_lines() {
            let (ip, port) = host.rsplit_once(':').unwrap_or(("", &host));
            let entry = bindings
                .entry(container)
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(list) = entry {
                list.push(
                    json!({ "HostIp": if ip == "0.0.0.0" { "" } else { ip }, "HostPort": port }),
                );
            }
        }
    }
    Value::Object(bindings)
}

fn network_settings(
    store: &Store,
    record: &ContainerRecord,
    network: &super::NetworkSettings,
) -> Value {
    let mut networks = serde_json::Map::new();
    let mut first_ip = String::new();
    let mut first_gateway = String::new();
    let mut first_mac = String::new();
    for attachment in network.plan.iter().flat_map(|p| p.attachments.iter()) {
        let mac = attachment.mac_text();
        if first_ip.is_empty() {
            first_ip = attachment.ip.to_string();
            first_gateway = attachment.network.gateway.to_string();
            first_mac = mac.clone();
        }
        let name = docker_network_name(&attachment.network.name);
        networks.insert(
            name,
            json!({
                "NetworkID": attachment.network.id,
                "IPAddress": attachment.ip.to_string(),
                "IPPrefixLen": attachment.network.subnet.prefix(),
                "Gateway": attachment.network.gateway.to_string(),
                "Aliases": attachment.aliases,
                "MacAddress": mac,
            }),
        );
    }
    let published = super::published_ports(store, record);
    json!({
        "Networks": networks,
        "IPAddress": first_ip,
        "Gateway": first_gateway,
        "MacAddress": first_mac,
        "Ports": port_bindings(&published),
    })
}
