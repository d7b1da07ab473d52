//! One service's container as the engine's request: compose's fields written as the
//! `run` options they stand for (ports as `-p`, volumes as `--mount`, the first network
//! as `--network` with the service's name as an alias), and compose's labels.

use std::collections::BTreeMap;

use sha2::{Digest as _, Sha256};

use super::labels;
use super::model::{Project, Service, ServiceVolume};
use super::{ComposeError, Result};
use crate::engine::{
    self, ContainerRequest, ImageName, Limits, NetworkMode, NetworkRequest, RestartPolicy,
    RunOptions, Settings,
};
use crate::oci::Healthcheck;

/// The image a service runs: its `image`, else the one its build makes
/// (`PROJECT-SERVICE`, as compose names it).
pub fn image_of(project: &Project, name: &str, service: &Service) -> String {
    match &service.image {
        Some(image) => image.clone(),
        None => format!("{}-{name}", project.name),
    }
}

/// The hash of what a service's containers are made from (its configuration and the
/// id of the image it runs, so that a rebuilt or newly pulled image counts as a
/// change): a container whose label differs is made again by `up`.
pub fn config_hash(project: &Project, service: &Service, image_id: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(image_id.as_bytes());
    hasher.update(serde_json::to_vec(service).unwrap_or_default());
    // The names its networks and volumes get are part of what it is made with.
    for network in service.networks.keys() {
        if let Some(n) = project.networks.get(network) {
            hasher.update(serde_json::to_vec(n).unwrap_or_default());
        }
    }
    let digest = hasher.finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The name of replica `number` of a service.
pub fn container_name(project: &Project, name: &str, service: &Service, number: u64) -> String {
    match &service.container_name {
        Some(given) => given.clone(),
        None => format!("{}-{name}-{number}", project.name),
    }
}

/// The networks a service joins in the order it joins them, with their full names:
/// the first at creation, the others connected before its start.
pub fn networks_of(
    project: &Project,
    service: &Service,
) -> Vec<(String, Vec<String>, Option<String>)> {
    if service.network_mode.is_some() {
        return Vec::new();
    }
    service
        .networks
        .iter()
        .map(|(key, settings)| {
            let full = project
                .networks
                .get(key)
                .and_then(|n| n.name.clone())
                .unwrap_or_else(|| key.clone());
            let aliases = settings
                .as_ref()
                .map(|s| s.aliases.clone())
                .unwrap_or_default();
            let ip = settings.as_ref().and_then(|s| s.ipv4_address.clone());
            (full, aliases, ip)
        })
        .collect()
}

/// The request for replica `number` of service `name`; `one_off` for `run`.
pub fn container_request(
    project: &Project,
    name: &str,
    service: &Service,
    number: u64,
    one_off: Option<OneOff>,
    image_id: &str,
) -> Result<ContainerRequest> {
    let bad = |reason: String| ComposeError::Service {
        service: name.to_string(),
        reason,
    };
    let mut settings_labels: BTreeMap<String, String> = service.labels.clone();
    settings_labels.insert(labels::PROJECT.into(), project.name.clone());
    settings_labels.insert(labels::SERVICE.into(), name.into());
    settings_labels.insert(labels::NUMBER.into(), number.to_string());
    settings_labels.insert(
        labels::CONFIG_HASH.into(),
        config_hash(project, service, image_id),
    );
    settings_labels.insert(
        labels::ONEOFF.into(),
        if one_off.is_some() { "True" } else { "False" }.into(),
    );
    settings_labels.insert(
        labels::WORKING_DIR.into(),
        project.directory.display().to_string(),
    );
    settings_labels.insert(
        labels::CONFIG_FILES.into(),
        project
            .files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(","),
    );
    let networks = networks_of(project, service);
    let (network, mut aliases, ip) = match &service.network_mode {
        // `service:NAME` shares the namespace of that service's first container.
        Some(mode) => match mode.strip_prefix("service:") {
            Some(other) => (
                format!("container:{}-{other}-1", project.name),
                Vec::new(),
                None,
            ),
            None => (mode.clone(), Vec::new(), None),
        },
        None => networks
            .first()
            .cloned()
            .unwrap_or_else(|| ("none".into(), Vec::new(), None)),
    };
    let user_network = service.network_mode.is_none();
    if one_off.is_none() && user_network {
        aliases.insert(0, name.to_string());
    }
    let publish = match &one_off {
        // `run` publishes the service's ports only when asked (`--service-ports`).
        Some(one) if !one.service_ports => Vec::new(),
        _ => service.ports.iter().map(publish_spec).collect(),
    };
    let mut mounts = Vec::new();
    let mut anonymous = Vec::new();
    for volume in &service.volumes {
        match mount_spec(project, volume) {
            MountSpec::Mount(spec) => mounts.push(spec),
            MountSpec::Anonymous(target) => anonymous.push(target),
        }
    }
    for (references, defined, default_dir) in [
        (&service.secrets, &project.secrets, "/run/secrets/"),
        (&service.configs, &project.configs, "/"),
    ] {
        for reference in references {
            let object = &defined[&reference.source];
            let file = object.file.clone().ok_or_else(|| {
                bad(format!(
                    "{:?} has no file: lade supports secrets and configs made of files (a secret from environment serves build.secrets only)",
                    reference.source
                ))
            })?;
            let target = match &reference.target {
                Some(t) if t.starts_with('/') => t.clone(),
                Some(t) => format!("{default_dir}{t}"),
                None => format!("{default_dir}{}", reference.source),
            };
            mounts.push(format!("type=bind,source={file},target={target},readonly"));
        }
    }
    let limits = service
        .deploy
        .as_ref()
        .and_then(|d| d.resources.as_ref())
        .and_then(|r| r.limits.as_ref());
    let memory = match limits.and_then(|l| l.memory.as_deref()) {
        None => None,
        Some(text) => Some(crate::oci::parse_size(text).ok_or_else(|| {
            bad(format!(
                "deploy.resources.limits.memory {text:?} is not a size such as 64m"
            ))
        })?),
    };
    let stop_timeout = match &service.stop_grace_period {
        None => None,
        Some(text) => Some(
            duration(text)
                .map_err(|e| bad(format!("stop_grace_period: {e}")))?
                .as_secs(),
        ),
    };
    let restart = match &service.restart {
        None => RestartPolicy::No,
        Some(text) => RestartPolicy::parse(text).ok_or_else(|| {
            bad(format!(
                "restart {text:?}: expected no, always, on-failure[:N] or unless-stopped"
            ))
        })?,
    };
    let command = match &one_off {
        Some(one) if !one.command.is_empty() => one.command.clone(),
        _ => service.command.clone().unwrap_or_default(),
    };
    let entrypoint = service.entrypoint.as_ref().map(|words| words.join(" "));
    let mut env: Vec<String> = service
        .environment
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
        .collect();
    if let Some(one) = &one_off {
        env.extend(one.env.iter().cloned());
    }
    let image = image_of(project, name, service);
    let options = RunOptions {
        image: image.clone(),
        name: Some(match &one_off {
            Some(one) => one.name.clone(),
            None => container_name(project, name, service, number),
        }),
        args: command,
        entrypoint,
        env,
        workdir: service.working_dir.clone(),
        user: service.user.clone(),
        interactive: service.stdin_open || one_off.as_ref().is_some_and(|o| o.interactive),
        tty: service.tty || one_off.as_ref().is_some_and(|o| o.tty),
        attach_stdin: one_off.as_ref().is_some_and(|o| o.interactive),
        network: NetworkRequest {
            mode: NetworkMode::parse(&network),
            aliases,
            ip,
            mac_address: None,
            publish,
            publish_all: false,
            expose: service.expose.clone(),
            dns: service.dns.clone(),
            add_hosts: service.extra_hosts.clone(),
            dns_search: Vec::new(),
            dns_options: Vec::new(),
        },
        hostname: service.hostname.clone(),
        mounts,
        tmpfs: service.tmpfs.clone(),
        volumes: anonymous,
        read_only: service.read_only,
        limits: Limits {
            memory,
            cpus: limits.and_then(|l| l.cpus),
            pids: limits.and_then(|l| l.pids),
            ..Limits::default()
        },
        init: service.init.unwrap_or(false),
        remove: one_off.as_ref().is_some_and(|o| o.remove && !o.detach),
        detach: one_off.as_ref().is_none_or(|o| o.detach),
        ..RunOptions::default()
    };
    let mut options = options;
    options.sandbox.privileged = service.privileged;
    options.sandbox.cap_add = service.cap_add.clone();
    options.sandbox.cap_drop = service.cap_drop.clone();
    options.sandbox.sysctls = service
        .sysctls
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if let Some(platform) = &service.platform {
        options.platform =
            Some(crate::oci::Platform::parse(platform).ok_or_else(|| {
                bad(format!("platform {platform:?}: expected os/arch[/variant]"))
            })?);
    }
    let settings = Settings {
        restart: if one_off.is_some() {
            RestartPolicy::No
        } else {
            restart
        },
        stop_signal: service.stop_signal.clone(),
        stop_timeout,
        auto_remove: one_off.as_ref().is_some_and(|o| o.remove),
        labels: settings_labels,
        interactive: options.interactive,
        healthcheck: healthcheck(service).map_err(|e| bad(format!("healthcheck: {e}")))?,
        ..Settings::default()
    };
    engine::check_run_options(&options, &settings).map_err(|e| ComposeError::Engine(e.into()))?;
    Ok(ContainerRequest::new(
        ImageName::new(&image),
        options,
        settings,
    ))
}

/// What `compose run` changes of a service's container.
#[derive(Debug, Clone, Default)]
pub struct OneOff {
    pub name: String,
    pub command: Vec<String>,
    pub env: Vec<String>,
    pub remove: bool,
    pub detach: bool,
    pub interactive: bool,
    pub tty: bool,
    pub service_ports: bool,
}

/// A long-syntax port as `-p` writes it.
fn publish_spec(port: &super::model::Port) -> String {
    let mut spec = String::new();
    if let Some(ip) = &port.host_ip {
        if ip.contains(':') {
            spec.push_str(&format!("[{ip}]:"));
        } else {
            spec.push_str(&format!("{ip}:"));
        }
    }
    match &port.published {
        Some(published) => spec.push_str(&format!("{published}:")),
        None if port.host_ip.is_some() => spec.push(':'),
        None => {}
    }
    spec.push_str(&format!("{}/{}", port.target, port.protocol));
    spec
}

enum MountSpec {
    Mount(String),
    /// An anonymous volume (`-v TARGET`).
    Anonymous(String),
}

fn mount_spec(project: &Project, volume: &ServiceVolume) -> MountSpec {
    let mut spec = format!("type={}", volume.kind);
    match volume.kind.as_str() {
        "volume" => match &volume.source {
            None => return MountSpec::Anonymous(volume.target.clone()),
            Some(source) => {
                let name = project
                    .volumes
                    .get(source)
                    .and_then(|v| v.name.clone())
                    .unwrap_or_else(|| source.clone());
                spec.push_str(&format!(",source={name}"));
            }
        },
        "bind" => {
            if let Some(source) = &volume.source {
                spec.push_str(&format!(",source={source}"));
            }
        }
        _ => {}
    }
    spec.push_str(&format!(",target={}", volume.target));
    if volume.read_only {
        spec.push_str(",readonly");
    }
    if volume.volume.as_ref().is_some_and(|v| v.nocopy) {
        spec.push_str(",volume-nocopy");
    }
    if let Some(size) = volume.tmpfs.as_ref().and_then(|t| t.size.as_ref()) {
        spec.push_str(&format!(",tmpfs-size={size}"));
    }
    MountSpec::Mount(spec)
}

/// A compose duration (`1m30s`, `500ms`).
pub fn duration(text: &str) -> std::result::Result<std::time::Duration, String> {
    engine::parse_duration(text)
        .map(std::time::Duration::from_nanos)
        .ok_or_else(|| format!("{text:?} is not a duration such as 10s or 1m30s"))
}

/// The service's healthcheck as the image config's: `None` keeps the image's own.
fn healthcheck(service: &Service) -> std::result::Result<Option<Healthcheck>, String> {
    let Some(check) = &service.healthcheck else {
        return Ok(None);
    };
    if check.disable {
        return Ok(Some(Healthcheck {
            test: vec!["NONE".into()],
            ..Healthcheck::default()
        }));
    }
    let nanos = |field: &Option<String>| -> std::result::Result<u64, String> {
        match field {
            None => Ok(0),
            Some(text) => duration(text).map(|d| d.as_nanos() as u64),
        }
    };
    Ok(Some(Healthcheck {
        test: check.test.clone().unwrap_or_default(),
        interval: nanos(&check.interval)?,
        timeout: nanos(&check.timeout)?,
        start_period: nanos(&check.start_period)?,
        start_interval: nanos(&check.start_interval)?,
        retries: check.retries.unwrap_or(0),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::model::parse_port;

    #[test]
    fn ports_as_publish_flags() {
        let spec = |t| publish_spec(&parse_port(t).unwrap()[0]);
        assert_eq!(spec("80"), "80/tcp");
        assert_eq!(spec("8080:80"), "8080:80/tcp");
        assert_eq!(spec("127.0.0.1:8080:80/udp"), "127.0.0.1:8080:80/udp");
        assert_eq!(spec("127.0.0.1::80"), "127.0.0.1::80/tcp");
    }
}
