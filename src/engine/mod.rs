//! The application layer: one short file per user-level operation, between the command
//! line and the modules that do the work. Each operation takes a typed request (made and
//! validated by `cli` before anything is made), a [`Reporter`] for what the user must be
//! told while it runs, and returns what `cli` renders (an id, an exit code). So the
//! choices an operation makes (which image, pulled or not, how a container is started)
//! are made once, here, and never in the code that reads arguments or prints.
//!
//! Process set-up that whole commands need (the private mount namespace) lives in
//! [`process`], called once by the command-line entry.
//!
//! Every verb has its operation here: the container verbs (`run`, `create`, `start`,
//! `attach`, `ps`, `port`, `top`, `stats`, `rm`, `container prune`, `rename`, `stop`,
//! `restart`, `kill`, `pause`, `wait`, `update`, `logs`, `exec`, `cp`, `export`,
//! `diff`, `commit`), `volume`, `network` and `events`; the image verbs (`images`, `tag`, `rmi`,
//! `inspect`, `history`), the registry's (`pull`, `push`, `login`, `logout`, `search`),
//! the archives' (`import`, `save`, `load`), `build` with its caches, `cache`, and the
//! store's (`df`, `prune`, `reset`, `check`, `info`).
//!
//! The types of lower modules that requests are made of (run options, settings,
//! signals and the like) reach `cli` through this module's re-exports, so that the
//! command line depends on the engine alone.

mod archive;
mod build;
mod build_output;
mod cache;
mod check;
mod commit;
mod copy;
mod create;
mod df;
mod events;
mod exec;
mod history;
mod image;
mod images;
mod info;
mod inspect;
mod lifecycle;
mod login;
mod logs;
mod manifest;
mod migrate;
mod network;
mod port;
pub mod process;
mod processes;
mod prune;
mod ps;
mod pull;
mod push;
mod remove;
mod rename;
mod reset;
mod run;
mod search;
mod start;
mod tag;
mod update;
mod volume;

use std::path::PathBuf;

use crate::archive::ArchiveError;
use crate::builder::BuildError;
use crate::container::ContainerError;
use crate::graph::{ChangeError, GraphError, PlanError};
use crate::network::NetworkError;
use crate::registry::RegistryError;
pub use crate::store::StoreError;

pub use crate::container::ExecOptions;
/// One entry of the store's event log (`lade events`).
pub use crate::store::events::Event as LoggedEvent;
pub use archive::{
    import, load, save, save_set, ImportInput, ImportRequest, ImportSource, LoadInput,
    SaveDestination, SaveRequest, SaveSet,
};
pub use build::{
    build, dry_run, explain, stdin_context, BuildNotice, BuildReporter, BuildRequest, Built,
    CacheSource, DryRun, StagedContext, StdinInput,
};
pub use build_output::{BuildExport, ExportTo};
pub use cache::{
    cache_inspect, cache_records, cache_usage, prune_cache, CacheInspection, CachePruneRequest,
    CachedStep,
};
pub use check::{check, CheckOutcome, CheckRequest};
pub use commit::{commit, CommitRequest};
pub use copy::{copy, diff, export, Change, CopyRequest, ExportRequest};
pub use create::{create, ContainerRequest};
pub use df::{df, DiskUsage, Space, Usage};
pub use events::{events, EventFilters, EventsRequest, UnknownFilter};
pub use exec::{exec, ExecRequest};
pub use history::{history, HistoryRow};
pub use image::ImageName;
pub use images::{images, ImageFilter, ImagesFilter, ImagesRequest, ListedImage};
pub use info::{info, Info, RootlessCgroup};
pub use inspect::{inspect, inspect_for, InspectKind};
pub use lifecycle::{
    each_container, kill, pause, restart, stop, wait, KillRequest, PauseRequest, StopRequest,
};
pub use login::{login, logout, registry_name, LoginRequest};
pub use logs::{logs, parse_log_time, parse_tail, LogsRequest};
pub use manifest::{
    manifest_add, manifest_annotate, manifest_create, manifest_inspect, manifest_inspect_verbose,
    manifest_push, manifest_rm, ManifestEntryOptions, PlatformAnnotation,
};
pub use migrate::migrate;
pub use network::{
    connect_network, create_network, disconnect_network, ensure_default_network,
    has_default_network, inspect_network, list_networks, prune_networks, remove_network,
    ConnectRequest, DisconnectRequest, NetworkFilter,
};
pub use port::{port, PortRequest, PublishedPort};
pub use processes::{stats, top, Processes, TopRequest};
pub use prune::{prune, prune_images, LabelFilter, PruneFilters, PruneRequest, Pruned};
pub use ps::{ps, ContainerRow, ContainerSize, PsFilter, PsRequest};
pub use pull::{pull, PullRequest};
pub use push::{push, push_platform, PushRequest};
pub use remove::{prune_containers, remove, RemoveRequest};
pub use rename::{rename, RenameRequest};
pub use reset::{reset, ResetReport};
pub use run::{run, RunOutcome, RunRequest};
pub use search::{search, SearchFilter, SearchRequest};
pub use start::{attach, start_attached, start_detached, AttachRequest, StartAttached};
pub use tag::{remove_image, tag, Removed};
pub use update::{update, UpdateRequest};
pub use volume::{
    create_volume, inspect_volume, list_volumes, prune_volumes, remove_volume, Volume,
    VolumeCreateRequest, VolumeFilter, VolumeRemoveRequest,
};

// What requests are made of, and what results carry, from the modules below.
pub use crate::container::validate::labels as parse_labels;
pub use crate::container::{
    check_run_options, parse_detach_keys, parse_signal, parse_ulimit, ContainerState, LogConfig,
    MountName, NetworkMode, NetworkRequest, RestartPolicy, RunOptions, SandboxRequest, Settings,
};
pub use crate::exec::{Limits, LimitsUpdate, SignalNumber, Stream};
pub use crate::network::PortMapping;

pub use crate::container::validate;
pub use crate::container::{HealthFlags, HealthStatus, HealthWatch};
/// Docker's durations (`500ms`, `1m30s`), in nanoseconds.
pub use crate::graph::{csv_fields, go_duration, parse_duration};
pub use crate::network::{NetworkInspect, NetworkOptions};

// The lower modules' plain data and progress traits, as `cli` names them: it reaches
// them through here only.
pub use crate::archive::{ImportOptions, Loaded, Progress as TransferProgress, SaveFormat};
pub use crate::builder::{
    BuildOptions, CacheStatus, Entitlements, Event, ExplainedStep, ImageSettings,
    Reporter as StepReporter, SecretError, SecretFrom, SecretSource, SshSource, StepRef,
    StepSettings, Verdict,
};
pub use crate::exec::Cancel;
pub use crate::graph::{config_with_changes, Base, BaseImage, ExpandedStage, Plan, PlanOptions};
pub use crate::layers::Compression;
pub use crate::registry::{
    ClientOptions, Credentials, PullOptions, PullPolicy, PullProgress, PushCompression,
    PushOptions, SavedTo, SearchResult,
};
pub use crate::store::{
    check_location, default_root, is_out_of_space, CacheRecord, CacheUsage, CheckReport, Image,
    PruneReport, Store, StoreOptions,
};

/// What an operation must tell the user while it runs. `cli` renders it (on stderr, so
/// that a container's output stays its own); the engine never prints.
pub trait Reporter: Sync {
    /// What a container lacks that it asked for (names that will not resolve on its
    /// networks): it runs all the same.
    fn warning(&self, text: &str);
    /// The store lacks `image` (its familiar name), which is therefore pulled: Docker's
    /// "Unable to find image" notice.
    fn image_not_found(&self, image: &str);
    /// A layer of a pulled image is in the store: downloaded (`fetched`) or there
    /// already.
    fn pull_layer(&self, _digest: &crate::oci::Digest, _size: u64, _fetched: bool) {}
    /// A container run in the foreground with neither its stdout nor its stderr attached
    /// (`-a stdin`) has been made: Docker prints its id then, as for `-d`, since nothing
    /// else of it would show.
    fn unattached(&self, _id: &str) {}
    /// A foreground container has exited, and what it left (its network) could not be
    /// undone; its exit code stands.
    fn after_exit(&self, error: &EngineError);
    /// The network of a container whose monitor died could not be torn down; what was
    /// asked (a listing) goes on.
    fn network_teardown_failed(&self, error: &EngineError) {
        self.warning(&format!(
            "tearing down the network of a dead container: {error}"
        ));
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Network(#[from] NetworkError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// A Dockerfile that cannot be planned (`--dry-run`).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// `--change` instructions that are no Dockerfile's, or not allowed there.
    #[error(transparent)]
    Change(#[from] ChangeError),
    /// `lade manifest`: a list that is not there, or is there already.
    #[error("{0}")]
    Manifest(String),
    /// A registry failed at what the verb asked of it: `what` says what that was
    /// (`pull busybox:latest`, `log in to ghcr.io`).
    #[error("cannot {what}: {source}")]
    Remote {
        what: String,
        source: Box<RegistryError>,
    },
    /// A file the verb reads or writes (an archive, the iidfile): `what` says which
    /// and what was done to it (`open x.tar`, `write id.txt`).
    #[error("cannot {what}: {source}")]
    File {
        what: String,
        source: std::io::Error,
    },
    /// `build -`: the archive on standard input could not be unpacked as the context.
    #[error("cannot unpack the build context from standard input: {0}")]
    StdinContext(#[source] crate::layers::LayerError),
    /// An archive could not be read or written: `what` says which (`import x.tar`,
    /// `load standard input`).
    #[error("cannot {what}: {source}")]
    ArchiveOf {
        what: String,
        source: Box<ArchiveError>,
    },
    /// `inspect` of a name that is neither a container nor an image.
    #[error("no such object: {0}")]
    NoSuchObject(String),
    /// `cache inspect` of a key prefix that several keys start with.
    #[error("{prefix:?} is the start of {count} cache keys: give more of it")]
    AmbiguousKey { prefix: String, count: usize },
    /// `cache inspect` of what is neither a key nor an image.
    #[error("{target:?} is neither a cache key nor an image in the store: {source}")]
    NotKeyNorImage { target: String, source: StoreError },
    /// `cache inspect` of an image this store has no build record of (its short id).
    #[error(
        "{0} was not built by lade in this store (or was built before lade kept cache records)"
    )]
    NotBuiltHere(String),
    /// The step list a build recorded cannot be read back.
    #[error("the stored step list: {0}")]
    StepList(serde_json::Error),
    /// `build --push` with no `-t` to say where.
    #[error("--push (or --output type=image,push=true) needs a name: give -t NAME or name=NAME")]
    PushWithoutTag,
    /// The store lacked the image and pulling it failed: Docker's notice has already
    /// said that it was missing, so the message only says what went wrong.
    #[error("cannot pull {image}: {source}")]
    PullOfMissing {
        image: String,
        source: Box<RegistryError>,
    },
    /// `--cidfile`: the container is made, its id cannot be written.
    #[error("cannot write {}: {source}", path.display())]
    Cidfile {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A write or a flush of what the verb makes failed (the file system's words).
    #[error("{0}")]
    Io(#[source] std::io::Error),
    /// The process set-up (its private mount namespace) failed; the message says what.
    #[error(transparent)]
    Process(std::io::Error),
    /// The rootless user namespace could not be made or joined; the message says how to
    /// fix it.
    #[error(transparent)]
    Rootless(#[from] crate::exec::rootless::RootlessError),
    /// `system migrate` while containers run in the namespace it would end.
    #[error("lade system migrate: containers still run in the rootless namespace: {}; stop them first (lade stop {})", .0.join(", "), .0.join(" "))]
    MigrateWhileRunning(Vec<String>),
    /// A request's value that is not what it should be (`--filter`, `--tail`...).
    #[error("invalid {what} {value:?}: {expected}")]
    BadValue {
        what: &'static str,
        value: String,
        expected: String,
    },
    /// A time out of range (`logs --since`).
    #[error(transparent)]
    Time(#[from] jiff::Error),
    #[error("no public port {port} published for container {container}")]
    NoPublicPort { port: String, container: String },
    #[error("cannot run ps: {0}")]
    PsNotRun(std::io::Error),
    #[error("ps {options}: {stderr}")]
    PsFailed { options: String, stderr: String },
    #[error("ps {0} shows no PID column")]
    PsNoPid(String),
    /// A file the user asked for (`export -o`) cannot be written.
    #[error("cannot write {}: {source}", path.display())]
    Output {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("lade cp copies between a container and the host: name the container in SRC or DEST as CONTAINER:PATH")]
    CopyNeedsContainer,
    /// A build's `--output` could not be written: `what` says where it was going.
    #[error("cannot write the build's output to {what}: {source}")]
    BuildOutput {
        what: String,
        source: Box<crate::layers::LayerError>,
    },
    /// A pulled layer could not be unpacked (rootless `pull` unpacks at once).
    #[error("cannot unpack layer {layer} of the pulled image: {source}")]
    Unpack {
        layer: String,
        source: Box<crate::layers::LayerError>,
    },
    /// BuildKit's docker exporter writes one image, never an index.
    #[error("--output type=docker: a docker-archive holds one platform's image, not an index of several (use type=oci, or one --platform)")]
    DockerArchiveOfIndex,
}

impl EngineError {
    /// The exit code `run`, `start -a` and the like give for this error, as Docker does:
    /// what the container's init reported (126 cannot run, 127 not found), else 125.
    pub fn exit_code(&self) -> i32 {
        match self {
            EngineError::Container(e) => e.exit_code(),
            _ => 125,
        }
    }

    /// The container named does not exist: `rm -f` passes over it, as Docker's does.
    pub fn is_no_such_container(&self) -> bool {
        matches!(
            self,
            EngineError::Store(StoreError::NoSuchContainer(_))
                | EngineError::Container(ContainerError::Store(StoreError::NoSuchContainer(_)))
        )
    }
}

impl From<GraphError> for EngineError {
    fn from(error: GraphError) -> Self {
        EngineError::Plan(error.into())
    }
}

impl EngineError {
    /// The exit code of a build a signal stopped (128 + the signal), as a shell gives.
    pub fn interrupted_build(&self) -> Option<u8> {
        match self {
            EngineError::Build(e @ BuildError::Interrupted { .. }) => Some(e.exit_code()),
            _ => None,
        }
    }
}

/// Whether an error is one of those lade's modules return, each of which says all of
/// its cause (the others reach the command line inside one of these): a message made
/// of an error's chain stops at the first of them.
pub fn is_lades_own(error: &(dyn std::error::Error + 'static)) -> bool {
    macro_rules! one_of {
        ($($kind:ty),+) => { false $(|| error.is::<$kind>())+ };
    }
    use crate::{archive, builder, exec, graph, layers, network, oci};
    one_of!(
        EngineError,
        builder::BuildError,
        StoreError,
        ContainerError,
        RegistryError,
        layers::LayerError,
        archive::ArchiveError,
        network::NetworkError,
        exec::ExecError,
        graph::PlanError,
        graph::GraphError,
        graph::ChangeError,
        graph::ParseError,
        oci::ReferenceError,
        oci::DigestError
    )
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_dockers() {
        let setup = EngineError::Container(ContainerError::Exec(crate::exec::ExecError::Setup {
            code: 127,
            message: "not found".into(),
        }));
        assert_eq!(setup.exit_code(), 127);
        let cidfile = EngineError::Cidfile {
            path: "/x/id".into(),
            source: std::io::Error::from_raw_os_error(libc::ENOENT),
        };
        assert_eq!(cidfile.exit_code(), 125);
        assert_eq!(
            cidfile.to_string(),
            "cannot write /x/id: No such file or directory (os error 2)"
        );
    }
}
