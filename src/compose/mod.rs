//! Multi-container apps: compose files (the compose-spec: interpolation, several files
//! merged, profiles, `depends_on`, healthchecks) read into one normalised model, and
//! that model turned into the engine's requests: a network and volumes per project,
//! containers named and labelled as Docker Compose v2 names and labels them, started in
//! dependency order. Everything a project makes carries its name in
//! `com.docker.compose.project`, which is how `down`, `ps` and `ls` find it again: no
//! state is kept beside the store's own records.

mod convert;
mod interpolate;
mod kube;
mod kube_play;
mod kube_source;
mod load;
mod model;
mod operations;
mod order;
mod schema;
mod support;
mod up;

use std::path::PathBuf;

use crate::engine::EngineError;

pub use kube::{generate as kube_generate, kube_name, Generated, Grouping, KubeKind};
pub use kube_play::{down as kube_down, play as kube_play, POD_LABEL};
pub use kube_source::generate_from_containers as kube_generate_from_containers;
pub use load::{load, normalise_name, LoadOptions, Loaded};
pub use model::{Project, Service};
pub use operations::{
    build, down, exec, list_projects, logs, ps, pull, push, run_one_off, start, stop, DownRequest,
    ExecServiceRequest, LogsServiceRequest, ProjectRow, RemoveImages, RunServiceRequest,
    ServiceContainer,
};
pub use up::{attach, up, UpRequest};

/// The labels compose puts on what it makes.
pub mod labels {
    pub const PROJECT: &str = "com.docker.compose.project";
    pub const SERVICE: &str = "com.docker.compose.service";
    pub const NUMBER: &str = "com.docker.compose.container-number";
    pub const CONFIG_HASH: &str = "com.docker.compose.config-hash";
    pub const ONEOFF: &str = "com.docker.compose.oneoff";
    pub const NETWORK: &str = "com.docker.compose.network";
    pub const VOLUME: &str = "com.docker.compose.volume";
    pub const WORKING_DIR: &str = "com.docker.compose.project.working_dir";
    pub const CONFIG_FILES: &str = "com.docker.compose.project.config_files";
    pub const IMAGE: &str = "com.docker.compose.image";
}

/// What compose operations tell the user as they go; `cli` renders it.
pub trait Reporter: Sync {
    /// A resource's new state: `Container web-1 Started`.
    fn status(&self, kind: &str, name: &str, state: &str);
    fn warning(&self, text: &str);
    /// What the engine reports for a container it makes or starts.
    fn engine(&self) -> &dyn crate::engine::Reporter;
    /// What a build reports.
    fn builder(&self) -> &dyn crate::engine::BuildReporter;
}

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("no compose file in {}: looked for compose.yaml, compose.yml, docker-compose.yaml and docker-compose.yml (or name one with -f)", directory.display())]
    NoFile { directory: PathBuf },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: not YAML: {source}")]
    Yaml {
        file: String,
        source: serde_yaml_ng::Error,
    },
    #[error("{file}: {path}: {reason}")]
    Interpolation {
        file: String,
        path: String,
        reason: String,
    },
    /// The compose-spec's schema refuses the file: the path of the bad key and why.
    #[error("{file}: {}{reason}", if path.is_empty() { String::new() } else { format!("{path}: ") })]
    Invalid {
        file: String,
        path: String,
        reason: String,
    },
    /// A field the spec allows that lade does not honour (`reason` names its path).
    #[error("{file}: {reason}")]
    Unsupported {
        file: String,
        path: String,
        reason: String,
    },
    #[error("{file}: {reason}")]
    Model { file: String, reason: String },
    #[error("{}: {reason}", path.display())]
    EnvFile { path: PathBuf, reason: String },
    #[error("invalid project name {0:?}: it must be lowercase letters, digits, '_' and '-', starting with a letter or a digit")]
    ProjectName(String),
    #[error("service {0:?} has neither an image nor a build section")]
    NoImage(String),
    #[error("service {service:?} refers to undefined {kind} {name:?}")]
    Undefined {
        service: String,
        kind: &'static str,
        name: String,
    },
    #[error("service {service:?} depends on {}service {dependency:?}", if *disabled { "the disabled (by its profiles) " } else { "undefined " })]
    UnknownDependency {
        service: String,
        dependency: String,
        disabled: bool,
    },
    #[error("depends_on has a cycle: {0}")]
    Cycle(String),
    #[error("no such service: {0}")]
    NoSuchService(String),
    #[error("service {service:?}: {reason}")]
    Service { service: String, reason: String },
    #[error("dependency {service:?} is unhealthy{}", if last_log.is_empty() { String::new() } else { format!(": its last health check said: {last_log}") })]
    Unhealthy { service: String, last_log: String },
    #[error("dependency {service:?} did not complete successfully: exit code {code}")]
    NotCompleted { service: String, code: i64 },
    #[error("service {service:?} is not running")]
    NotRunning { service: String },
    /// Kubernetes YAML could not be written.
    #[error("cannot write Kubernetes YAML: {0}")]
    Kube(String),
    #[error("interrupted")]
    Interrupted,
    #[error(transparent)]
    Engine(#[from] EngineError),
}

pub type Result<T, E = ComposeError> = std::result::Result<T, E>;

/// The path of a key, for messages: `services.web.ports.0`.
fn path_text(parts: &[String]) -> String {
    parts.join(".")
}
