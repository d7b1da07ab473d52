//! A container as the container module understands it: the store keeps its state as a
//! string and its sandbox spec and settings as JSON; this file alone turns them into a
//! [`ContainerState`] and a [`Container`], says which state may follow which, and
//! writes states back.

use std::collections::BTreeMap;
use std::fmt;

use super::lifecycle::Settings;
use super::{running_init, ContainerError, Result};
use crate::exec::{ProcessId, Spec};
use crate::store::{ContainerRecord, Store};

/// Where a container is in its life, as Docker names it. Users move it with
/// [`ContainerState::start`], [`ContainerState::pause`] and [`ContainerState::unpause`];
/// whoever watches its init records the rest: running once the init runs, exited when it
/// ends, restarting when the restart policy starts it again. Nothing returns to created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContainerState {
    /// Made, never started.
    Created,
    Running,
    /// Running, its processes frozen.
    Paused,
    /// Exited, and its restart policy starts it again shortly.
    Restarting,
    Exited,
    /// Recorded as running, but its init is gone with whoever watched it (a `lade run`
    /// or a monitor killed): its exit code is unknown. Never stored: seen.
    Dead,
}

impl ContainerState {
    pub const ALL: [ContainerState; 6] = [
        ContainerState::Created,
        ContainerState::Running,
        ContainerState::Paused,
        ContainerState::Restarting,
        ContainerState::Exited,
        ContainerState::Dead,
    ];

    /// The name Docker shows, which is also what the store keeps.
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerState::Created => "created",
            ContainerState::Running => "running",
            ContainerState::Paused => "paused",
            ContainerState::Restarting => "restarting",
            ContainerState::Exited => "exited",
            ContainerState::Dead => "dead",
        }
    }

    /// A state by its name (`ps --filter status=`, the store's column).
    pub fn parse(text: &str) -> Option<ContainerState> {
        ContainerState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
    }

    /// The recorded state of `record`; a state lade never writes is an error that
    /// names the container.
    pub fn of(record: &ContainerRecord) -> Result<ContainerState> {
        ContainerState::parse(&record.state).ok_or_else(|| ContainerError::UnknownState {
            name: record.name.clone(),
            state: record.state.clone(),
        })
    }

    /// What `record` is doing now: its recorded state, checked against its init.
    pub fn current(record: &ContainerRecord) -> Result<ContainerState> {
        Ok(ContainerState::of(record)?.seen(running_init(record)))
    }

    /// This recorded state, given the init found alive (if any): a container recorded
    /// as running or paused whose init is gone is dead.
    fn seen(self, init: Option<ProcessId>) -> ContainerState {
        match self {
            ContainerState::Running | ContainerState::Paused if init.is_none() => {
                ContainerState::Dead
            }
            state => state,
        }
    }

    /// Its processes exist (running or frozen).
    pub fn is_up(self) -> bool {
        matches!(self, ContainerState::Running | ContainerState::Paused)
    }

    /// Up or about to be again: what `ps` lists without `-a`.
    pub fn is_active(self) -> bool {
        self.is_up() || self == ContainerState::Restarting
    }

    /// Nothing runs and nothing will start it by itself: `container prune` removes it.
    pub fn is_stopped(self) -> bool {
        matches!(
            self,
            ContainerState::Created | ContainerState::Exited | ContainerState::Dead
        )
    }

    /// `start`: the state it goes to, or why it cannot. Anything not up starts; a
    /// paused container is resumed by `unpause`, not started.
    pub fn start(self) -> std::result::Result<ContainerState, Refused> {
        if self.is_up() {
            return Err(Refused::AlreadyRunning);
        }
        Ok(ContainerState::Running)
    }

    /// `pause`: only a running container freezes.
    pub fn pause(self) -> std::result::Result<ContainerState, Refused> {
        match self {
            ContainerState::Running => Ok(ContainerState::Paused),
            ContainerState::Paused => Err(Refused::AlreadyPaused),
            _ => Err(Refused::NotRunning),
        }
    }

    /// `unpause`: only a paused container thaws.
    pub fn unpause(self) -> std::result::Result<ContainerState, Refused> {
        match self {
            ContainerState::Paused => Ok(ContainerState::Running),
            ContainerState::Running => Err(Refused::NotPaused),
            _ => Err(Refused::NotRunning),
        }
    }

    /// Records this state of container `id`.
    pub(crate) fn write(self, store: &Store, id: &str) -> Result<()> {
        store.set_container_state(id, self.as_str())?;
        Ok(())
    }
}

impl fmt::Display for ContainerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a container's state does not allow what was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    NotRunning,
    AlreadyRunning,
    AlreadyPaused,
    NotPaused,
}

impl Refused {
    /// The error for container `name`.
    pub fn error(self, name: &str) -> ContainerError {
        let name = name.to_string();
        match self {
            Refused::NotRunning => ContainerError::NotRunning(name),
            Refused::AlreadyRunning => ContainerError::AlreadyRunning(name),
            Refused::AlreadyPaused => ContainerError::AlreadyPaused(name),
            Refused::NotPaused => ContainerError::NotPaused(name),
        }
    }
}

/// Records that container `id` runs with `init`, started at `at` (RFC 3339). Its
/// `settings` and `spec` are the caller's, for the events (labels, volume mounts).
pub(crate) fn write_started(
    store: &Store,
    id: &str,
    settings: &Settings,
    spec: &Spec,
    init: ProcessId,
    at: &str,
) -> Result<()> {
    store.set_container_running(
        id,
        ContainerState::Running.as_str(),
        i64::from(init.pid),
        init.start as i64,
        at,
    )?;
    if let Ok(record) = store.container(id) {
        super::events::volume_mounts(store, &record, spec);
        super::events::container_event(
            store,
            &record,
            &settings.labels,
            "start",
            Default::default(),
        );
    }
    Ok(())
}

/// Records that container `id` ended with `code` at `at`; false when it is no longer
/// recorded (removed meanwhile). Its `labels` are for the event.
pub(crate) fn write_exited(
    store: &Store,
    id: &str,
    labels: &BTreeMap<String, String>,
    code: i32,
    at: &str,
) -> Result<bool> {
    let recorded =
        store.set_container_exited(id, ContainerState::Exited.as_str(), i64::from(code), at)?;
    if recorded {
        let code = super::events::attribute("exitCode", code);
        super::events::container_event_by_id(store, id, labels, "die", code);
    }
    Ok(recorded)
}

/// Records a start that failed before the container's process ran (its init reported
/// 126 or 127): as Docker keeps it, the container stays `created`, the code and time
/// recorded for `inspect` and `wait`. Returns false when the container is gone.
pub(crate) fn write_start_failed(store: &Store, id: &str, code: i32, at: &str) -> Result<bool> {
    Ok(store.set_container_exited(id, ContainerState::Created.as_str(), i64::from(code), at)?)
}

/// A container with its record read: its spec, its settings and its recorded state.
#[derive(Debug, Clone)]
pub struct Container {
    pub record: ContainerRecord,
    pub spec: Spec,
    pub settings: Settings,
    /// As recorded; [`Container::current_state`] checks it against the init.
    pub state: ContainerState,
}

/// Held while a container's settings are read, changed and written back.
pub struct ChangeLock {
    _lock: nix::fcntl::Flock<std::fs::File>,
}

impl Container {
    /// A container by name, full id or unique id prefix.
    pub fn load(store: &Store, reference: &str) -> Result<Container> {
        Container::read(store.container(reference)?)
    }

    /// A container to change (`update`, `network connect`/`disconnect`), read under a
    /// lock of its own that the change holds until it is written: two changes at once
    /// would each write the settings they read, and the first one's would be lost.
    pub fn load_for_change(store: &Store, reference: &str) -> Result<(Container, ChangeLock)> {
        let id = store.container(reference)?.id;
        let path = store
            .root()
            .join("containers")
            .join(&id)
            .join("change.lock");
        let failed = |source: std::io::Error| ContainerError::Io {
            path: path.clone(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(failed)?;
        let lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| failed(e.into()))?;
        // Read again under the lock: what an earlier change wrote is seen.
        let container = Container::load(store, &id)?;
        Ok((container, ChangeLock { _lock: lock }))
    }

    /// Every container, newest first.
    pub fn all(store: &Store) -> Result<Vec<Container>> {
        store
            .containers()?
            .into_iter()
            .map(Container::read)
            .collect()
    }

    /// Reads what `record` keeps; what cannot be read is an error naming the container.
    pub fn read(record: ContainerRecord) -> Result<Container> {
        let state = ContainerState::of(&record)?;
        let spec = spec_of(&record)?;
        let settings = settings_of(&record)?;
        Ok(Container {
            record,
            spec,
            settings,
            state,
        })
    }

    pub fn id(&self) -> &str {
        &self.record.id
    }

    pub fn name(&self) -> &str {
        &self.record.name
    }

    /// What it is doing now (see [`ContainerState::current`]).
    pub fn current_state(&self) -> ContainerState {
        self.state.seen(self.running_init())
    }

    /// What it is doing now, its init being `init` as [`Container::running_init`] found
    /// it: for a caller that needs both, at the cost of one look at the process.
    pub fn state_seen(&self, init: Option<ProcessId>) -> ContainerState {
        self.state.seen(init)
    }

    /// Its init, if it still runs.
    pub fn running_init(&self) -> Option<ProcessId> {
        running_init(&self.record)
    }
}

/// The sandbox spec `record` keeps.
pub(crate) fn spec_of(record: &ContainerRecord) -> Result<Spec> {
    serde_json::from_str(&record.spec).map_err(|source| ContainerError::Json {
        what: format!("container {}: its spec", record.name),
        source,
    })
}

/// The settings `record` keeps; a record made before lade kept settings has the
/// defaults.
pub(crate) fn settings_of(record: &ContainerRecord) -> Result<Settings> {
    match record.settings.as_deref() {
        None => Ok(Settings::default()),
        Some(json) => serde_json::from_str(json).map_err(|source| ContainerError::Json {
            what: format!("container {}: its settings", record.name),
            source,
        }),
    }
}

/// `settings` as the store keeps them.
pub(crate) fn settings_json(name: &str, settings: &Settings) -> Result<String> {
    serde_json::to_string(settings).map_err(|source| ContainerError::Json {
        what: format!("container {name}: its settings"),
        source,
    })
}

/// Writes `settings` for container `record`.
pub(crate) fn write_settings(
    store: &Store,
    record: &ContainerRecord,
    settings: &Settings,
) -> Result<()> {
    store.set_container_settings(&record.id, &settings_json(&record.name, settings)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(state: &str, settings: Option<&str>, spec: &str) -> ContainerRecord {
        ContainerRecord {
            id: "ab".repeat(32),
            name: "web".into(),
            image: format!("sha256:{}", "0".repeat(64))
                .parse()
                .expect("a digest"),
            image_name: "busybox".into(),
            created: 0,
            state: state.into(),
            pid: None,
            pid_start: None,
            exit_code: None,
            spec: spec.into(),
            settings: settings.map(str::to_string),
            started_at: None,
            finished_at: None,
            restarts: 0,
        }
    }

    fn spec_json() -> String {
        serde_json::to_string(&Spec {
            rootfs: crate::exec::Rootfs {
                layers_dir: "/store/snapshots".into(),
                lowers: vec!["a1".into()],
                upper: None,
                work: None,
                target: "/store/containers/ab/rootfs".into(),
                readonly: false,
                volatile: false,
                driver: Default::default(),
            },
            process: crate::exec::Process {
                args: vec!["sh".into()],
                env: Vec::new(),
                cwd: "/".into(),
                user: String::new(),
                terminal: false,
            },
            hostname: "web".into(),
            mounts: Vec::new(),
            network: crate::exec::Network::Isolated,
            limits: crate::exec::Limits::default(),
            cgroup: None,
            insecure: false,
            init: false,
            pausable: false,
            privileges: Default::default(),
            sandbox: Default::default(),
        })
        .expect("a spec serializes")
    }

    #[test]
    fn states_round_trip_through_their_names() {
        for state in ContainerState::ALL {
            assert_eq!(ContainerState::parse(state.as_str()), Some(state));
            assert_eq!(state.to_string(), state.as_str());
        }
        assert_eq!(ContainerState::parse("Running"), None);
        assert_eq!(ContainerState::parse(""), None);
    }

    #[test]
    fn an_unknown_stored_state_names_the_container() {
        let err = ContainerState::of(&record("sleeping", None, "{}")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "container web has an unknown state \"sleeping\" in the store"
        );
    }

    #[test]
    fn up_without_an_init_is_dead() {
        let gone = None;
        assert_eq!(ContainerState::Running.seen(gone), ContainerState::Dead);
        assert_eq!(ContainerState::Paused.seen(gone), ContainerState::Dead);
        assert_eq!(ContainerState::Exited.seen(gone), ContainerState::Exited);
        assert_eq!(ContainerState::Created.seen(gone), ContainerState::Created);
        let record = record("running", None, "{}");
        assert_eq!(
            ContainerState::current(&record).ok(),
            Some(ContainerState::Dead)
        );
    }

    #[test]
    fn groups_of_states() {
        use ContainerState::*;
        let up: Vec<_> = ContainerState::ALL
            .into_iter()
            .filter(|s| s.is_up())
            .collect();
        assert_eq!(up, [Running, Paused]);
        let active: Vec<_> = ContainerState::ALL
            .into_iter()
            .filter(|s| s.is_active())
            .collect();
        assert_eq!(active, [Running, Paused, Restarting]);
        let stopped: Vec<_> = ContainerState::ALL
            .into_iter()
            .filter(|s| s.is_stopped())
            .collect();
        assert_eq!(stopped, [Created, Exited, Dead]);
    }

    #[test]
    fn transitions() {
        use ContainerState::*;
        for from in [Created, Exited, Dead, Restarting] {
            assert_eq!(from.start(), Ok(Running), "{from}");
            assert_eq!(from.pause(), Err(Refused::NotRunning), "{from}");
            assert_eq!(from.unpause(), Err(Refused::NotRunning), "{from}");
        }
        assert_eq!(Running.start(), Err(Refused::AlreadyRunning));
        assert_eq!(Paused.start(), Err(Refused::AlreadyRunning));
        assert_eq!(Running.pause(), Ok(Paused));
        assert_eq!(Paused.pause(), Err(Refused::AlreadyPaused));
        assert_eq!(Paused.unpause(), Ok(Running));
        assert_eq!(Running.unpause(), Err(Refused::NotPaused));
        // Nothing a user asks for leads back to created, or to dead, which is only seen.
        for from in ContainerState::ALL {
            for next in [from.start(), from.pause(), from.unpause()]
                .into_iter()
                .flatten()
            {
                assert!(next != Created && next != Dead, "{from} -> {next}");
            }
        }
    }

    #[test]
    fn refusals_say_what_docker_says() {
        assert_eq!(
            Refused::AlreadyPaused.error("web").to_string(),
            "container web is already paused"
        );
        assert_eq!(
            Refused::NotRunning.error("web").to_string(),
            "container web is not running"
        );
    }

    #[test]
    fn a_container_reads_its_spec_and_settings_once() {
        let settings = Settings {
            auto_remove: true,
            ..Settings::default()
        };
        let json = settings_json("web", &settings).expect("settings serialize");
        let container =
            Container::read(record("exited", Some(&json), &spec_json())).expect("it reads");
        assert_eq!(container.settings, settings);
        assert_eq!(container.state, ContainerState::Exited);
        assert_eq!(container.current_state(), ContainerState::Exited);
        assert_eq!(container.name(), "web");
    }

    #[test]
    fn a_record_without_settings_has_the_defaults() {
        let container = Container::read(record("created", None, &spec_json())).expect("it reads");
        assert_eq!(container.settings, Settings::default());
    }

    #[test]
    fn bad_json_is_an_error_naming_the_container() {
        let err = Container::read(record("created", Some("{not json"), &spec_json()))
            .expect_err("bad settings are refused");
        assert!(
            err.to_string().starts_with("container web: its settings:"),
            "{err}"
        );
        let err = Container::read(record("created", None, "[]")).expect_err("a bad spec");
        assert!(
            err.to_string().starts_with("container web: its spec:"),
            "{err}"
        );
    }
}
