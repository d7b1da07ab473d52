//! `lade inspect` of a container, in Docker's JSON shape (Id, Name, State, Config,
//! HostConfig, Mounts, NetworkSettings...), built from its record and spec.

use serde_json::{json, Value};

use super::{current_state, running_init, settings, ContainerError, RestartPolicy, Result};
use crate::exec::{Mount, Network, Spec};
use crate::store::{ContainerRecord, Store};

/// Docker's `container inspect` shape of one container.
pub fn inspect(store: &Store, reference: &str) -> Result<Value> {
    let record = store.container(reference)?;
    let spec: Spec = serde_json::from_str(&record.spec).map_err(|e| {
        ContainerError::Invalid(format!("container {}: its spec: {e}", record.name))
    })?;
    Ok(shape(store, &record, &spec))
}

fn shape(store: &Store, record: &ContainerRecord, spec: &Spec) -> Value {
    let settings = settings(record);
    let state = current_state(record);
    let pid = running_init(record).map_or(0, |init| init.pid);
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
            } if !target.starts_with("/etc/host") && target != "/etc/resolv.conf" => {
                let volumes = store.root().join("volumes");
                let name = source
                    .strip_prefix(&volumes)
                    .ok()
                    .and_then(|rest| rest.iter().next())
                    .map(|n| n.to_string_lossy().into_owned());
                Some(json!({
                    "Type": if name.is_some() { "volume" } else { "bind" },
                    "Name": name,
                    "Source": source,
                    "Destination": target,
                    "RW": !readonly,
                }))
            }
            Mount::Tmpfs { target, .. } => Some(json!({
                "Type": "tmpfs",
                "Destination": target,
                "RW": true,
            })),
            _ => None,
        })
        .collect();
    let created = jiff::Timestamp::from_second(record.created)
        .map(|t| t.to_string())
        .unwrap_or_default();
    json!({
        "Id": record.id,
        "Created": created,
        "Path": spec.process.args.first(),
        "Args": spec.process.args.iter().skip(1).collect::<Vec<_>>(),
        "State": {
            "Status": state,
            "Running": matches!(state, "running" | "paused"),
            "Paused": state == "paused",
            "Restarting": state == "restarting",
            "OOMKilled": false,
            "Dead": state == "dead",
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
            "NetworkMode": match spec.network { Network::Host => "host", Network::Isolated => "none" },
            "RestartPolicy": { "Name": restart_name, "MaximumRetryCount": retries },
            "AutoRemove": settings.auto_remove,
            "ReadonlyRootfs": spec.rootfs.readonly,
            "Memory": spec.limits.memory.unwrap_or(0),
            "NanoCpus": spec.limits.cpus.map_or(0, |c| (c * 1e9) as u64),
            "PidsLimit": spec.limits.pids,
            "Init": spec.init,
        },
        "Mounts": mounts,
        "NetworkSettings": { "Networks": {} },
    })
}
