//! The compose commands other than `up`: each finds the project's containers by their
//! labels and asks the engine to do to each what the command says.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::Mutex;

use super::convert::{self, OneOff};
use super::model::Project;
use super::up::{self, NoReport, Prefixed};
use super::{labels, ComposeError, Reporter, Result};
use crate::engine::{
    self, BuildOptions, BuildRequest, ContainerRow, ContainerState, ExecOptions, ExecRequest,
    InspectKind, LogsRequest, NetworkFilter, PsFilter, PsRequest, PullOptions, PullRequest,
    PushOptions, PushRequest, RunOutcome, RunRequest, SecretFrom, SecretSource, StopRequest, Store,
    VolumeFilter, VolumeRemoveRequest,
};
use crate::oci::ImageRef;

/// A container of a project's service.
#[derive(Debug, Clone)]
pub struct ServiceContainer {
    pub id: String,
    pub name: String,
    pub service: String,
    pub number: u64,
    pub state: ContainerState,
    pub labels: BTreeMap<String, String>,
}

fn rows_of(
    store: &Store,
    project: &str,
    service: Option<&str>,
    all: bool,
) -> Result<Vec<ContainerRow>> {
    let mut filters = vec![PsFilter::Label(
        labels::PROJECT.into(),
        Some(project.into()),
    )];
    if let Some(service) = service {
        filters.push(PsFilter::Label(
            labels::SERVICE.into(),
            Some(service.into()),
        ));
    }
    Ok(engine::ps(
        store,
        &PsRequest {
            all,
            filters,
            ..PsRequest::default()
        },
        &NoReport,
    )?)
}

/// The containers of a project (of one service), one-off ones (`run`) left out, by
/// service and number.
pub fn containers_of(
    store: &Store,
    project: &str,
    service: Option<&str>,
    all: bool,
) -> Result<Vec<ServiceContainer>> {
    let mut out: Vec<ServiceContainer> = rows_of(store, project, service, all)?
        .into_iter()
        .filter(|row| row.labels.get(labels::ONEOFF).map(String::as_str) != Some("True"))
        .map(|row| ServiceContainer {
            service: row.labels.get(labels::SERVICE).cloned().unwrap_or_default(),
            number: row
                .labels
                .get(labels::NUMBER)
                .and_then(|n| n.parse().ok())
                .unwrap_or(1),
            id: row.id,
            name: row.name,
            state: row.state,
            labels: row.labels,
        })
        .collect();
    out.sort_by(|a, b| (&a.service, a.number).cmp(&(&b.service, b.number)));
    Ok(out)
}

/// The containers of the services named (none: all of the project's).
fn selected(
    store: &Store,
    project: &Project,
    services: &[String],
    all: bool,
) -> Result<Vec<ServiceContainer>> {
    for name in services {
        if !project.services.contains_key(name) {
            return Err(ComposeError::NoSuchService(name.clone()));
        }
    }
    Ok(containers_of(store, &project.name, None, all)?
        .into_iter()
        .filter(|c| services.is_empty() || services.contains(&c.service))
        .collect())
}

/// Which images `down --rmi` removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoveImages {
    /// Those the project built (services without an `image`).
    Local,
    /// Every image the project's services use.
    All,
}

/// What `compose down` is asked for.
#[derive(Debug, Clone, Default)]
pub struct DownRequest {
    /// `-v`: the project's named volumes too (and anonymous ones).
    pub volumes: bool,
    pub images: Option<RemoveImages>,
}

/// `compose down`: the project's containers stopped and removed (one-off ones too),
/// then its networks, with `-v` its volumes and with `--rmi` its images. A project that
/// has nothing is no error.
pub fn down(
    store: &Store,
    project: &Project,
    request: &DownRequest,
    reporter: &dyn Reporter,
) -> Result<()> {
    let rows = rows_of(store, &project.name, None, true)?;
    for row in rows.iter().rev() {
        up::remove_container(store, &row.id)?;
        reporter.status("Container", &row.name, "Removed");
    }
    let networks = engine::list_networks(
        store,
        &[NetworkFilter::Label {
            key: labels::PROJECT.into(),
            value: Some(project.name.clone()),
        }],
    )?;
    for network in networks {
        engine::remove_network(store, &network.name)?;
        reporter.status("Network", &network.name, "Removed");
    }
    if request.volumes {
        let volumes = engine::list_volumes(
            store,
            &[VolumeFilter::Label {
                key: labels::PROJECT.into(),
                value: Some(project.name.clone()),
            }],
        )?;
        for volume in volumes {
            engine::remove_volume(
                store,
                &VolumeRemoveRequest {
                    name: volume.name.clone(),
                    force: false,
                },
            )?;
            reporter.status("Volume", &volume.name, "Removed");
        }
    }
    if let Some(which) = request.images {
        let mut images = BTreeSet::new();
        for (name, service) in &project.services {
            if which == RemoveImages::All || service.image.is_none() {
                images.insert(convert::image_of(project, name, service));
            }
        }
        for image in images {
            if engine::inspect(store, &image, Some(InspectKind::Image)).is_ok() {
                engine::remove_image(store, &image, false)?;
                reporter.status("Image", &image, "Removed");
            }
        }
    }
    Ok(())
}

/// `compose ps`: the rows of the project's containers (running ones unless `all`).
pub fn ps(
    store: &Store,
    project: &Project,
    services: &[String],
    all: bool,
) -> Result<Vec<ContainerRow>> {
    let wanted: BTreeSet<String> = selected(store, project, services, all)?
        .into_iter()
        .map(|c| c.id)
        .collect();
    Ok(rows_of(store, &project.name, None, all)?
        .into_iter()
        .filter(|r| wanted.contains(&r.id))
        .collect())
}

/// What `compose logs` is asked for.
#[derive(Debug, Clone, Default)]
pub struct LogsServiceRequest {
    pub services: Vec<String>,
    pub follow: bool,
    pub tail: Option<usize>,
    pub timestamps: bool,
    /// Prefixes coloured (on a terminal).
    pub colour: bool,
    /// No prefixes at all.
    pub no_prefix: bool,
}

/// `compose logs`: every container's lines, prefixed `SERVICE-N  | `; followed (each
/// container in a thread of its own) with `follow`.
pub fn logs(
    store: &Store,
    project: &Project,
    request: &LogsServiceRequest,
    out: &Mutex<Box<dyn Write + Send>>,
) -> Result<()> {
    let containers = selected(store, project, &request.services, true)?;
    let width = containers
        .iter()
        .map(|c| up::short_name(c).len())
        .max()
        .unwrap_or(0);
    let root = store.root().to_path_buf();
    std::thread::scope(|scope| -> Result<()> {
        let mut followers = Vec::new();
        for (index, container) in containers.iter().enumerate() {
            let prefix = if request.no_prefix {
                String::new()
            } else {
                up::prefix(
                    &up::short_name(container),
                    width,
                    request.colour.then_some(index),
                )
            };
            let logs_request = LogsRequest {
                container: container.id.clone(),
                follow: request.follow,
                tail: request.tail,
                since: None,
                until: None,
                timestamps: request.timestamps,
                details: false,
            };
            let root = root.clone();
            let work = move || -> Result<()> {
                let store = Store::open(&root).map_err(engine::EngineError::from)?;
                let mut writer = Prefixed::new(prefix.clone(), out);
                let mut errors = Prefixed::new(prefix, out);
                engine::logs(&store, &logs_request, &mut writer, &mut errors)?;
                writer.flush_rest();
                errors.flush_rest();
                Ok(())
            };
            if request.follow {
                followers.push(scope.spawn(work));
            } else {
                work()?;
            }
        }
        for follower in followers {
            follower.join().expect("a log follower panicked")?;
        }
        Ok(())
    })
}

/// A service's `build.secrets` as the builder takes them: the id is the `target` or
/// else the secret's name, the value its file or its variable, as docker compose maps
/// them. The values are read by the build itself, never here.
fn build_secrets(
    project: &Project,
    service: &str,
    build: &super::model::Build,
    reporter: &dyn Reporter,
) -> Result<Vec<SecretSource>> {
    build
        .secrets
        .iter()
        .map(|secret| {
            if secret.uid.is_some() || secret.gid.is_some() || secret.mode.is_some() {
                reporter.warning(&format!(
                    "service {service:?}: build.secrets {:?}: uid, gid and mode are ignored: a build sets them on its RUN --mount=type=secret",
                    secret.source
                ));
            }
            let defined = project.secrets.get(&secret.source);
            let from = match defined.map(|d| (&d.file, &d.environment)) {
                Some((Some(file), _)) => SecretFrom::File(file.into()),
                Some((None, Some(variable))) => SecretFrom::Env(variable.clone()),
                _ => {
                    return Err(ComposeError::Service {
                        service: service.to_string(),
                        reason: format!(
                            "build.secrets: secret {:?} is not a top-level secret made of a file or an environment variable",
                            secret.source
                        ),
                    })
                }
            };
            Ok(SecretSource {
                id: secret.id().to_string(),
                from,
            })
        })
        .collect()
}

/// Builds one service's image, tagged as the service runs it.
pub(super) fn build_service(
    store: &Store,
    project: &Project,
    name: &str,
    docker_config: Option<std::path::PathBuf>,
    reporter: &dyn Reporter,
) -> Result<()> {
    let service = &project.services[name];
    let Some(build) = &service.build else {
        return Ok(());
    };
    let bad = |reason: String| ComposeError::Service {
        service: name.to_string(),
        reason,
    };
    let image = convert::image_of(project, name, service);
    let tag: ImageRef = image
        .parse()
        .map_err(|e| bad(format!("image {image:?}: {e}")))?;
    let context = std::path::PathBuf::from(&build.context);
    let dockerfile_path = context.join(&build.dockerfile);
    let dockerfile = std::fs::read(&dockerfile_path).map_err(|source| ComposeError::Read {
        path: dockerfile_path.clone(),
        source,
    })?;
    let secrets = build_secrets(project, name, build, reporter)?;
    let options = BuildOptions {
        context,
        dockerfile_name: build.dockerfile.clone(),
        dockerfile,
        dockerfile_path: Some(dockerfile_path),
        tags: vec![tag],
        build_args: build
            .args
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
            .collect(),
        target: build.target.clone(),
        no_cache: false,
        pull: Default::default(),
        docker_config,
        no_cache_filter: Vec::new(),
        jobs: 1,
        cache_from: Vec::new(),
        cache_to: None,
        compression: engine::Compression::None,
        source_date_epoch: None,
        entitlements: Default::default(),
        ulimits: Vec::new(),
        steps: Default::default(),
        image: Default::default(),
        secrets,
        ssh: Vec::new(),
        cancel: Default::default(),
        platforms: Vec::new(),
    };
    reporter.status("Image", &image, "Building");
    engine::build(
        store,
        &BuildRequest {
            options,
            cache_from: Vec::new(),
            cache_to: None,
            iidfile: None,
            metadata_file: None,
            exports: Vec::new(),
        },
        reporter.builder(),
    )?;
    reporter.status("Image", &image, "Built");
    Ok(())
}

/// `compose build`: the images of the services that have a `build` section.
pub fn build(
    store: &Store,
    project: &Project,
    services: &[String],
    docker_config: Option<std::path::PathBuf>,
    reporter: &dyn Reporter,
) -> Result<()> {
    for name in names(project, services)? {
        build_service(store, project, &name, docker_config.clone(), reporter)?;
    }
    Ok(())
}

fn names(project: &Project, services: &[String]) -> Result<Vec<String>> {
    if services.is_empty() {
        return Ok(project.services.keys().cloned().collect());
    }
    for name in services {
        if !project.services.contains_key(name) {
            return Err(ComposeError::NoSuchService(name.clone()));
        }
    }
    Ok(services.to_vec())
}

/// `compose pull`: the images of the services that name one (those only built are
/// left to `build`).
pub fn pull(
    store: &Store,
    project: &Project,
    services: &[String],
    options: &PullOptions,
    progress: &dyn engine::PullProgress,
    reporter: &dyn Reporter,
) -> Result<()> {
    for name in names(project, services)? {
        let service = &project.services[&name];
        let Some(image) = &service.image else {
            continue;
        };
        let reference: ImageRef = image.parse().map_err(|e| ComposeError::Service {
            service: name.clone(),
            reason: format!("image {image:?}: {e}"),
        })?;
        match engine::pull(
            store,
            &PullRequest {
                reference,
                all_tags: false,
                options: options.clone(),
            },
            progress,
            &mut |_, _| {},
        ) {
            Ok(()) => reporter.status("Image", image, "Pulled"),
            // A service that is also built may name an image no registry has yet.
            Err(_) if service.build.is_some() => reporter.status("Image", image, "Skipped (built)"),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// `compose push`: the images of the services that build one and name it.
pub fn push(
    store: &Store,
    project: &Project,
    services: &[String],
    options: &PushOptions,
    progress: &dyn Fn(&str),
    reporter: &dyn Reporter,
) -> Result<()> {
    for name in names(project, services)? {
        let service = &project.services[&name];
        let (Some(image), Some(_)) = (&service.image, &service.build) else {
            continue;
        };
        let destination: ImageRef = image.parse().map_err(|e| ComposeError::Service {
            service: name.clone(),
            reason: format!("image {image:?}: {e}"),
        })?;
        engine::push(
            store,
            &PushRequest {
                image: image.clone(),
                destination,
                options: options.clone(),
            },
            progress,
        )?;
        reporter.status("Image", image, "Pushed");
    }
    Ok(())
}

/// What `compose exec` is asked for.
#[derive(Debug, Clone)]
pub struct ExecServiceRequest {
    pub service: String,
    /// `--index`: which replica (from 1).
    pub index: u64,
    pub options: ExecOptions,
    pub detach: bool,
}

/// `compose exec`: a command in a running container of the service; its exit code.
pub fn exec(store: &Store, project: &Project, request: &ExecServiceRequest) -> Result<i32> {
    let container = selected(
        store,
        project,
        std::slice::from_ref(&request.service),
        false,
    )?
    .into_iter()
    .find(|c| c.number == request.index && c.state == ContainerState::Running)
    .ok_or_else(|| ComposeError::NotRunning {
        service: format!("{}-{}", request.service, request.index),
    })?;
    Ok(engine::exec(
        store,
        &ExecRequest {
            container: container.id,
            options: request.options.clone(),
            detach: request.detach,
            // Docker's default: `docker compose exec` has no flag for it.
            detach_keys: engine::parse_detach_keys("ctrl-p,ctrl-q").unwrap_or_default(),
        },
    )?)
}

/// What `compose run` is asked for.
#[derive(Debug, Clone, Default)]
pub struct RunServiceRequest {
    pub service: String,
    pub command: Vec<String>,
    pub env: Vec<String>,
    pub remove: bool,
    pub detach: bool,
    pub no_deps: bool,
    pub interactive: bool,
    pub tty: bool,
    pub service_ports: bool,
    pub name: Option<String>,
    pub docker_config: Option<std::path::PathBuf>,
}

/// `compose run`: a one-off container of a service (its dependencies brought up
/// first unless `no_deps`); its exit code, or its id when detached.
pub fn run_one_off(
    store: &Store,
    project: &Project,
    request: &RunServiceRequest,
    reporter: &dyn Reporter,
    interrupted: &std::sync::atomic::AtomicBool,
) -> Result<RunOutcome> {
    let service = project
        .services
        .get(&request.service)
        .ok_or_else(|| ComposeError::NoSuchService(request.service.clone()))?;
    if !request.no_deps && !service.depends_on.is_empty() {
        let dependencies: Vec<String> = service
            .depends_on
            .keys()
            .filter(|d| project.services.contains_key(*d))
            .cloned()
            .collect();
        up::up(
            store,
            project,
            &up::UpRequest {
                services: dependencies,
                docker_config: request.docker_config.clone(),
                ..up::UpRequest::default()
            },
            reporter,
            interrupted,
        )?;
    }
    let this = [request.service.clone()];
    up::make_networks(store, project, &this, reporter)?;
    up::make_volumes(store, project, &this, reporter)?;
    if service.build.is_some() {
        let image = convert::image_of(project, &request.service, service);
        if engine::inspect(store, &image, Some(InspectKind::Image)).is_err() {
            build_service(
                store,
                project,
                &request.service,
                request.docker_config.clone(),
                reporter,
            )?;
        }
    }
    let suffix: String = {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        format!(
            "{:012x}",
            (nanos ^ u128::from(std::process::id())) & 0xffff_ffff_ffff
        )
    };
    let one_off = OneOff {
        name: request
            .name
            .clone()
            .unwrap_or_else(|| format!("{}-{}-run-{suffix}", project.name, request.service)),
        command: request.command.clone(),
        env: request.env.clone(),
        remove: request.remove,
        detach: request.detach,
        interactive: request.interactive,
        tty: request.tty,
        service_ports: request.service_ports,
    };
    up::make_bind_sources(&request.service, service)?;
    let mut container =
        convert::container_request(project, &request.service, service, 1, Some(one_off), "")?;
    container.docker_config = request.docker_config.clone();
    Ok(engine::run(
        store,
        &RunRequest {
            container,
            detach: request.detach,
            detach_keys: engine::parse_detach_keys("ctrl-p,ctrl-q").unwrap_or_default(),
        },
        reporter.engine(),
    )?)
}

/// `compose start`: the services' stopped containers started, in dependency order.
pub fn start(
    store: &Store,
    project: &Project,
    services: &[String],
    reporter: &dyn Reporter,
) -> Result<()> {
    let order =
        super::order::start_order(project, names(project, services)?.into_iter().collect())?;
    let containers = selected(store, project, &[], true)?;
    for name in order {
        for container in containers.iter().filter(|c| c.service == name) {
            if container.state != ContainerState::Running {
                engine::start_detached(store, &container.id, reporter.engine())?;
            }
            reporter.status("Container", &container.name, "Started");
        }
    }
    Ok(())
}

/// `compose stop`: the services' running containers stopped, dependents first.
pub fn stop(
    store: &Store,
    project: &Project,
    services: &[String],
    timeout: Option<i64>,
    reporter: &dyn Reporter,
) -> Result<()> {
    let mut order =
        super::order::start_order(project, names(project, services)?.into_iter().collect())?;
    order.reverse();
    let containers = selected(store, project, &[], false)?;
    for name in order {
        if !services.is_empty() && !services.contains(&name) {
            continue;
        }
        for container in containers.iter().filter(|c| c.service == name) {
            engine::stop(
                store,
                &StopRequest {
                    container: container.id.clone(),
                    timeout,
                    signal: None,
                },
            )?;
            reporter.status("Container", &container.name, "Stopped");
        }
    }
    Ok(())
}

/// One project as `compose ls` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRow {
    pub name: String,
    /// `running(2), exited(1)`.
    pub status: String,
    pub config_files: String,
    /// Whether any of its containers runs (`ls` shows only those unless `-a`).
    pub running: bool,
}

/// `compose ls`: the projects that have containers in the store.
pub fn list_projects(store: &Store) -> Result<Vec<ProjectRow>> {
    let rows = engine::ps(
        store,
        &PsRequest {
            all: true,
            filters: vec![PsFilter::Label(labels::PROJECT.into(), None)],
            ..PsRequest::default()
        },
        &NoReport,
    )?;
    let mut projects: BTreeMap<String, (BTreeMap<&'static str, usize>, String)> = BTreeMap::new();
    for row in &rows {
        let name = row.labels[labels::PROJECT].clone();
        let entry = projects.entry(name).or_default();
        *entry.0.entry(row.state.as_str()).or_default() += 1;
        if let Some(files) = row.labels.get(labels::CONFIG_FILES) {
            entry.1 = files.clone();
        }
    }
    Ok(projects
        .into_iter()
        .map(|(name, (states, config_files))| ProjectRow {
            running: states.contains_key("running"),
            status: states
                .iter()
                .map(|(state, count)| format!("{state}({count})"))
                .collect::<Vec<_>>()
                .join(", "),
            name,
            config_files,
        })
        .collect())
}
