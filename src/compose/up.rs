//! `compose up`: the project's networks and volumes made, its images built or pulled,
//! and its services' containers made (again only where their configuration changed)
//! and started in dependency order, each after its dependencies are started, healthy
//! or completed as it asks; then, in the foreground, their logs followed until they
//! end or the user interrupts, when what was started is stopped.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::convert::{self, config_hash, container_name};
use super::model::Project;
use super::operations::{containers_of, ServiceContainer};
use super::{labels, order, ComposeError, Reporter, Result};
use crate::engine::{
    self, ConnectRequest, ContainerState, HealthStatus, InspectKind, NetworkOptions, PsFilter,
    PsRequest, RemoveRequest, StopRequest, Store, VolumeCreateRequest,
};

/// What `compose up` is asked for.
#[derive(Debug, Clone, Default)]
pub struct UpRequest {
    /// The services named (none: all), with what they depend on unless `no_deps`.
    pub services: Vec<String>,
    pub no_deps: bool,
    /// `--build`: build images even when the store has them.
    pub build: bool,
    /// `--force-recreate`: make containers again even when unchanged.
    pub force_recreate: bool,
    /// Docker's configuration directory, for pulls and builds.
    pub docker_config: Option<std::path::PathBuf>,
}

/// `compose up`: the containers of the services asked, started; returned in start order.
pub fn up(
    store: &Store,
    project: &Project,
    request: &UpRequest,
    reporter: &dyn Reporter,
    interrupted: &AtomicBool,
) -> Result<Vec<ServiceContainer>> {
    for name in &request.services {
        if !project.services.contains_key(name) {
            return Err(ComposeError::NoSuchService(name.clone()));
        }
    }
    let wanted: BTreeSet<String> = if request.services.is_empty() {
        project.services.keys().cloned().collect()
    } else {
        request.services.iter().cloned().collect()
    };
    let services = if request.no_deps {
        order::start_order(project, wanted.clone())?
            .into_iter()
            .filter(|s| wanted.contains(s))
            .collect()
    } else {
        order::start_order(project, wanted)?
    };
    make_networks(store, project, &services, reporter)?;
    make_volumes(store, project, &services, reporter)?;
    for name in &services {
        let service = &project.services[name];
        if service.build.is_some() {
            let image = convert::image_of(project, name, service);
            let present = engine::inspect(store, &image, Some(InspectKind::Image)).is_ok();
            if request.build || !present {
                super::operations::build_service(
                    store,
                    project,
                    name,
                    request.docker_config.clone(),
                    reporter,
                )?;
            }
        }
    }
    // Images pulled first, so that each container's hash has its image's id.
    for name in &services {
        let service = &project.services[name];
        if let (Some(image), None) = (&service.image, &service.build) {
            if engine::inspect(store, image, Some(InspectKind::Image)).is_err() {
                pull_image(store, name, image, request, reporter)?;
            }
        }
    }
    let mut started = Vec::new();
    for name in &services {
        if interrupted.load(Ordering::SeqCst) {
            return Err(ComposeError::Interrupted);
        }
        wait_for_dependencies(store, project, name, interrupted)?;
        started.extend(converge(store, project, name, request, reporter)?);
    }
    Ok(started)
}

fn pull_image(
    store: &Store,
    service: &str,
    image: &str,
    request: &UpRequest,
    reporter: &dyn Reporter,
) -> Result<()> {
    let reference: crate::oci::ImageRef = image.parse().map_err(|e| ComposeError::Service {
        service: service.to_string(),
        reason: format!("image {image:?}: {e}"),
    })?;
    reporter.status("Image", image, "Pulling");
    engine::pull(
        store,
        &engine::PullRequest {
            reference,
            all_tags: false,
            options: engine::PullOptions {
                platform: None,
                client: engine::ClientOptions {
                    insecure: false,
                    credentials: None,
                    docker_config: request.docker_config.clone(),
                },
            },
        },
        &NoPullProgress,
        &mut |_, _| {},
    )?;
    reporter.status("Image", image, "Pulled");
    Ok(())
}

/// A pull's per-layer progress, which `up` does not show.
struct NoPullProgress;

impl engine::PullProgress for NoPullProgress {
    fn layer(&self, _digest: &crate::oci::Digest, _size: u64, _fetched: bool) {}
}

pub(super) fn make_networks(
    store: &Store,
    project: &Project,
    services: &[String],
    reporter: &dyn Reporter,
) -> Result<()> {
    let used: BTreeSet<&String> = services
        .iter()
        .flat_map(|s| project.services[s].networks.keys())
        .collect();
    for key in used {
        let Some(network) = project.networks.get(key) else {
            continue;
        };
        let declared = Declared {
            kind: "Network",
            key,
            name: network.name.as_ref(),
            external: network.external,
        };
        declared.make(
            |name| engine::inspect_network(store, name).is_ok(),
            |name| {
                let mut network_labels = network.labels.clone();
                network_labels.insert(labels::PROJECT.into(), project.name.clone());
                network_labels.insert(labels::NETWORK.into(), key.clone());
                let ipam = network
                    .ipam
                    .as_ref()
                    .and_then(|i| i.config.first())
                    .cloned()
                    .unwrap_or_default();
                let options = NetworkOptions {
                    name: name.to_string(),
                    subnet: ipam.subnet,
                    gateway: ipam.gateway,
                    internal: network.internal,
                    labels: network_labels,
                    dns: true,
                };
                engine::create_network(store, &options).map(drop)
            },
            reporter,
        )?;
    }
    Ok(())
}

pub(super) fn make_volumes(
    store: &Store,
    project: &Project,
    services: &[String],
    reporter: &dyn Reporter,
) -> Result<()> {
    let used: BTreeSet<&String> = services
        .iter()
        .flat_map(|s| project.services[s].volumes.iter())
        .filter(|v| v.kind == "volume")
        .filter_map(|v| v.source.as_ref())
        .collect();
    for key in used {
        let Some(volume) = project.volumes.get(key) else {
            continue;
        };
        let declared = Declared {
            kind: "Volume",
            key,
            name: volume.name.as_ref(),
            external: volume.external,
        };
        declared.make(
            |name| engine::inspect_volume(store, name).is_ok(),
            |name| {
                let mut volume_labels = volume.labels.clone();
                volume_labels.insert(labels::PROJECT.into(), project.name.clone());
                volume_labels.insert(labels::VOLUME.into(), key.clone());
                engine::create_volume(
                    store,
                    &VolumeCreateRequest {
                        name: Some(name.to_string()),
                        labels: volume_labels,
                        driver: "local".into(),
                        options: volume.driver_opts.clone(),
                    },
                )
                .map(drop)
            },
            reporter,
        )?;
    }
    Ok(())
}

/// A network or volume of the project's top level, as its services' use of it needs it.
struct Declared<'a> {
    /// "Network" or "Volume", as compose reports them.
    kind: &'static str,
    key: &'a String,
    /// `name:`, when it differs from the key.
    name: Option<&'a String>,
    external: Option<bool>,
}

impl Declared<'_> {
    /// Makes it through `create` when it does not exist yet; one declared external must
    /// exist already, and is never made.
    fn make(
        &self,
        exists: impl Fn(&str) -> bool,
        create: impl FnOnce(&str) -> engine::Result<()>,
        reporter: &dyn Reporter,
    ) -> Result<()> {
        let name = self.name.unwrap_or(self.key);
        let present = exists(name);
        if self.external == Some(true) {
            if !present {
                return Err(ComposeError::Service {
                    service: self.key.clone(),
                    reason: format!(
                        "{} {name} declared as external, but could not be found",
                        self.kind.to_lowercase()
                    ),
                });
            }
            return Ok(());
        }
        if !present {
            create(name)?;
            reporter.status(self.kind, name, "Created");
        }
        Ok(())
    }
}

/// Waits until each dependency of `name` is as its `condition` asks.
fn wait_for_dependencies(
    store: &Store,
    project: &Project,
    name: &str,
    interrupted: &AtomicBool,
) -> Result<()> {
    let service = &project.services[name];
    for (dependency, wanted) in &service.depends_on {
        if !project.services.contains_key(dependency) {
            continue;
        }
        let containers = containers_of(store, &project.name, Some(dependency), true)?;
        for container in containers {
            match wanted.condition.as_str() {
                "service_healthy" => wait_healthy(store, dependency, &container.id, interrupted)?,
                "service_completed_successfully" => {
                    let code = engine::wait(store, &container.id)?;
                    if code != 0 {
                        return Err(ComposeError::NotCompleted {
                            service: dependency.clone(),
                            code,
                        });
                    }
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Waits for a container's health to become healthy; unhealthy (or stopped) is an
/// error with its last health check's output. Woken by each new result, by the
/// container's monitor going, and by SIGINT or SIGTERM (a self-pipe); the bound on each
/// wait is only a backstop for a change told nowhere.
fn wait_healthy(store: &Store, service: &str, id: &str, interrupted: &AtomicBool) -> Result<()> {
    let failed = |what: &str, e: std::io::Error| ComposeError::Service {
        service: service.to_string(),
        reason: format!("{what}: {e}"),
    };
    let watch =
        engine::HealthWatch::new(store, id).map_err(|e| failed("watching its health", e))?;
    let (wake_reader, wake_writer) =
        UnixStream::pair().map_err(|e| failed("a wake-up socket", e))?;
    let mut registered = Vec::new();
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let writer = wake_writer
            .try_clone()
            .map_err(|e| failed("a wake-up socket", e))?;
        registered.push(
            signal_hook::low_level::pipe::register(signal, writer)
                .map_err(|e| failed("a wake-up socket", e))?,
        );
    }
    let waited = wait_healthy_woken(store, service, id, interrupted, &watch, &wake_reader);
    for id in registered {
        signal_hook::low_level::unregister(id);
    }
    waited
}

fn wait_healthy_woken(
    store: &Store,
    service: &str,
    id: &str,
    interrupted: &AtomicBool,
    watch: &engine::HealthWatch,
    wake: &UnixStream,
) -> Result<()> {
    loop {
        if interrupted.load(Ordering::SeqCst) {
            return Err(ComposeError::Interrupted);
        }
        let rows = engine::ps(
            store,
            &PsRequest {
                all: true,
                filters: vec![PsFilter::Id(id.to_string())],
                ..PsRequest::default()
            },
            &NoReport,
        )?;
        let Some(row) = rows.first() else {
            return Err(ComposeError::NotRunning {
                service: service.to_string(),
            });
        };
        match row.health {
            Some(HealthStatus::Healthy) => return Ok(()),
            Some(HealthStatus::Unhealthy) => {
                return Err(ComposeError::Unhealthy {
                    service: service.to_string(),
                    last_log: last_health_log(store, id),
                })
            }
            None => {
                return Err(ComposeError::Service {
                    service: service.to_string(),
                    reason: "service_healthy is asked of it, but it has no healthcheck".into(),
                })
            }
            Some(_) if row.state != ContainerState::Running => {
                return Err(ComposeError::Unhealthy {
                    service: service.to_string(),
                    last_log: format!("it stopped ({})", row.state.as_str()),
                })
            }
            Some(_) => watch.wait(std::os::fd::AsFd::as_fd(wake), Duration::from_secs(5)),
        }
    }
}

fn last_health_log(store: &Store, id: &str) -> String {
    engine::inspect(store, id, Some(InspectKind::Container))
        .ok()
        .and_then(|v| {
            let log = v.pointer("/State/Health/Log")?.as_array()?.last()?.clone();
            log.get("Output")?.as_str().map(|s| s.trim().to_string())
        })
        .unwrap_or_default()
}

/// A reporter for the engine's listing calls, which report nothing worth showing here.
pub(super) struct NoReport;

impl engine::Reporter for NoReport {
    fn warning(&self, _text: &str) {}
    fn image_not_found(&self, _image: &str) {}
    fn after_exit(&self, _error: &engine::EngineError) {}
}

/// The containers of one service brought to what the project says: made (again when
/// their configuration hash changed, or when forced), started, extra replicas removed.
fn converge(
    store: &Store,
    project: &Project,
    name: &str,
    request: &UpRequest,
    reporter: &dyn Reporter,
) -> Result<Vec<ServiceContainer>> {
    let service = &project.services[name];
    let replicas = service
        .deploy
        .as_ref()
        .and_then(|d| d.replicas)
        .unwrap_or(1);
    if service.container_name.is_some() && replicas > 1 {
        return Err(ComposeError::Service {
            service: name.to_string(),
            reason: "container_name is set: it cannot have more than one replica".into(),
        });
    }
    let image_id = image_id(store, &convert::image_of(project, name, service));
    let hash = config_hash(project, service, &image_id);
    let existing: BTreeMap<u64, ServiceContainer> =
        containers_of(store, &project.name, Some(name), true)?
            .into_iter()
            .map(|c| (c.number, c))
            .collect();
    let mut out = Vec::new();
    for number in 1..=replicas {
        let container_name = container_name(project, name, service, number);
        if let Some(current) = existing.get(&number) {
            let same = current.labels.get(labels::CONFIG_HASH) == Some(&hash);
            if same && !request.force_recreate {
                if current.state != ContainerState::Running {
                    engine::start_detached(store, &current.id, reporter.engine())?;
                    reporter.status("Container", &current.name, "Started");
                } else {
                    reporter.status("Container", &current.name, "Running");
                }
                out.push(current.clone());
                continue;
            }
            remove_container(store, &current.id)?;
            reporter.status("Container", &current.name, "Recreated");
        }
        let id = create_container(store, project, name, number, request, &image_id)?;
        if !existing.contains_key(&number) {
            reporter.status("Container", &container_name, "Created");
        }
        engine::start_detached(store, &id, reporter.engine())?;
        reporter.status("Container", &container_name, "Started");
        out.push(ServiceContainer {
            id,
            name: container_name,
            service: name.to_string(),
            number,
            state: ContainerState::Running,
            labels: BTreeMap::new(),
        });
    }
    for (number, extra) in existing.range(replicas + 1..) {
        let _ = number;
        remove_container(store, &extra.id)?;
        reporter.status("Container", &extra.name, "Removed");
    }
    Ok(out)
}

/// The id of the image the store has by this name (empty when it lacks it: the first
/// `create` pulls it, and the next `up` sees its id and keeps the container only if it
/// is unchanged).
fn image_id(store: &Store, image: &str) -> String {
    engine::inspect(store, image, Some(InspectKind::Image))
        .ok()
        .and_then(|v| v.get("Id").and_then(|id| id.as_str()).map(str::to_string))
        .unwrap_or_default()
}

/// Makes replica `number` of a service (not started), joined to all its networks.
pub(super) fn create_container(
    store: &Store,
    project: &Project,
    name: &str,
    number: u64,
    request: &UpRequest,
    image_id: &str,
) -> Result<String> {
    let service = &project.services[name];
    make_bind_sources(name, service)?;
    let mut container = convert::container_request(project, name, service, number, None, image_id)?;
    container.docker_config = request.docker_config.clone();
    let id = engine::create(store, &container, &NoReport)?;
    connect_other_networks(store, project, name, &id)?;
    Ok(id)
}

/// Compose makes the missing host directories of binds (`bind.create_host_path`, true
/// in the short syntax), where `--mount` would refuse them.
pub(super) fn make_bind_sources(name: &str, service: &super::model::Service) -> Result<()> {
    for volume in &service.volumes {
        let create = volume.bind.as_ref().is_some_and(|b| b.create_host_path);
        if let (Some(source), "bind", true) = (&volume.source, volume.kind.as_str(), create) {
            if !std::path::Path::new(source).exists() {
                std::fs::create_dir_all(source).map_err(|e| ComposeError::Service {
                    service: name.to_string(),
                    reason: format!("cannot make the bind source {source}: {e}"),
                })?;
            }
        }
    }
    Ok(())
}

/// Joins a made container to the service's networks after its first.
pub(super) fn connect_other_networks(
    store: &Store,
    project: &Project,
    name: &str,
    id: &str,
) -> Result<()> {
    let service = &project.services[name];
    for (network, mut aliases, ip) in convert::networks_of(project, service).into_iter().skip(1) {
        aliases.insert(0, name.to_string());
        engine::connect_network(
            store,
            &ConnectRequest {
                network,
                container: id.to_string(),
                aliases,
                ip,
            },
        )?;
    }
    Ok(())
}

/// Stops and removes a container (its anonymous volumes kept, as compose keeps them
/// for the next one... but lade's are the container's own).
pub(super) fn remove_container(store: &Store, id: &str) -> Result<()> {
    let _ = engine::stop(
        store,
        &StopRequest {
            container: id.to_string(),
            timeout: None,
            signal: None,
        },
    );
    engine::remove(
        store,
        &RemoveRequest {
            container: id.to_string(),
            force: true,
            volumes: true,
        },
    )?;
    Ok(())
}

/// Follows the logs of `containers` to `out`, each line prefixed by its container
/// (`web-1  | `, padded to the longest, coloured when `colour`), until all have
/// stopped; when `interrupted` is set, stops them first (and says so).
pub fn attach(
    store: &Store,
    containers: &[ServiceContainer],
    colour: bool,
    interrupted: &AtomicBool,
    reporter: &dyn Reporter,
    out: &Mutex<Box<dyn Write + Send>>,
) -> Result<()> {
    let width = containers
        .iter()
        .map(|c| short_name(c).len())
        .max()
        .unwrap_or(0);
    let root = store.root().to_path_buf();
    let stopped = AtomicBool::new(false);
    // The self-pipe trick: SIGINT and SIGTERM (as the handler that sets `interrupted`
    // runs) and each follower as it ends write a byte, so this thread sleeps until one
    // of them has something to say, instead of polling.
    let wake_error = |e: std::io::Error| -> ComposeError {
        engine::EngineError::Io(std::io::Error::new(
            e.kind(),
            format!("a wake-up socket: {e}"),
        ))
        .into()
    };
    let (mut wake_reader, wake_writer) = UnixStream::pair().map_err(wake_error)?;
    let mut registered = Vec::new();
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let writer = wake_writer.try_clone().map_err(wake_error)?;
        registered
            .push(signal_hook::low_level::pipe::register(signal, writer).map_err(wake_error)?);
    }
    let ended = AtomicUsize::new(0);
    let result = std::thread::scope(|scope| -> Result<()> {
        let mut followers = Vec::new();
        for (index, container) in containers.iter().enumerate() {
            let prefix = prefix(&short_name(container), width, colour.then_some(index));
            let root = root.clone();
            let id = container.id.clone();
            let waker = wake_writer.try_clone().map_err(wake_error)?;
            let ended = &ended;
            followers.push(scope.spawn(move || -> Result<()> {
                // Counted before the byte is written: the byte that wakes the watcher
                // finds the count already up.
                let _wake = WakeOnDrop { ended, waker };
                let store = Store::open(&root).map_err(engine::EngineError::from)?;
                let mut writer = Prefixed::new(prefix.clone(), out);
                let mut errors = Prefixed::new(prefix, out);
                engine::logs(
                    &store,
                    &engine::LogsRequest {
                        container: id,
                        follow: true,
                        tail: None,
                        since: None,
                        until: None,
                        timestamps: false,
                        details: false,
                    },
                    &mut writer,
                    &mut errors,
                )?;
                writer.flush_rest();
                errors.flush_rest();
                Ok(())
            }));
        }
        // Watch for the interrupt while the followers run.
        let mut byte = [0u8; 1];
        while ended.load(Ordering::SeqCst) < followers.len() {
            if interrupted.load(Ordering::SeqCst) && !stopped.swap(true, Ordering::SeqCst) {
                reporter.warning("Gracefully stopping... (interrupted)");
                for container in containers.iter().rev() {
                    let _ = engine::stop(
                        store,
                        &StopRequest {
                            container: container.id.clone(),
                            timeout: None,
                            signal: None,
                        },
                    );
                    reporter.status("Container", &container.name, "Stopped");
                }
            }
            match wake_reader.read(&mut byte) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(wake_error(e)),
            }
        }
        for follower in followers {
            follower.join().expect("a log follower panicked")?;
        }
        Ok(())
    });
    for id in registered {
        signal_hook::low_level::unregister(id);
    }
    result?;
    if stopped.load(Ordering::SeqCst) {
        return Err(ComposeError::Interrupted);
    }
    Ok(())
}

/// Counts a log follower as ended and wakes the thread watching them, however the
/// follower ends.
struct WakeOnDrop<'a> {
    ended: &'a AtomicUsize,
    waker: UnixStream,
}

impl Drop for WakeOnDrop<'_> {
    fn drop(&mut self) {
        self.ended.fetch_add(1, Ordering::SeqCst);
        // A full socket already holds a wake-up: nothing is lost.
        let _ = self.waker.write(&[1]);
    }
}

/// A container as log prefixes name it: `SERVICE-N`.
pub(super) fn short_name(container: &ServiceContainer) -> String {
    format!("{}-{}", container.service, container.number)
}

/// `NAME  | ` padded to `width`, in the `index`th of compose's colours.
pub(super) fn prefix(name: &str, width: usize, colour: Option<usize>) -> String {
    let text = format!("{name:<width$}  | ");
    match colour {
        None => text,
        Some(index) => {
            const COLOURS: [u8; 6] = [36, 33, 32, 35, 34, 31];
            format!("\x1b[{}m{text}\x1b[0m", COLOURS[index % COLOURS.len()])
        }
    }
}

/// A writer that puts a prefix before each line it passes on, whole lines at a time.
pub(super) struct Prefixed<'a> {
    prefix: String,
    pending: Vec<u8>,
    out: &'a Mutex<Box<dyn Write + Send>>,
}

impl<'a> Prefixed<'a> {
    pub(super) fn new(prefix: String, out: &'a Mutex<Box<dyn Write + Send>>) -> Prefixed<'a> {
        Prefixed {
            prefix,
            pending: Vec::new(),
            out,
        }
    }

    /// Writes what is left without a line end.
    pub(super) fn flush_rest(&mut self) {
        if !self.pending.is_empty() {
            self.pending.push(b'\n');
            let _ = self.write_lines();
        }
    }

    fn write_lines(&mut self) -> std::io::Result<()> {
        let Some(last) = self.pending.iter().rposition(|b| *b == b'\n') else {
            return Ok(());
        };
        let lines: Vec<u8> = self.pending.drain(..=last).collect();
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        for line in lines.split_inclusive(|b| *b == b'\n') {
            out.write_all(self.prefix.as_bytes())?;
            out.write_all(line)?;
        }
        out.flush()
    }
}

impl Write for Prefixed<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        self.write_lines()?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
