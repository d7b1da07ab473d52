//! The builder: turns a Dockerfile and its context into an image. It parses and plans
//! (graph), finds base images in the store, runs the needed stages (those that do not
//! depend on each other at the same time), and commits the target stage as an image
//! with its history. Each step that can change files is keyed and looked up in the build
//! cache first (see `cache`); COPY/ADD and WORKDIR make layers in one pass from files,
//! RUN runs in the sandbox and its upper directory becomes the layer; other steps only
//! change the config.
//!
//! It never prints: progress goes to a [`Reporter`] as [`Event`]s.

mod cache;
mod context;
mod copy;
mod emulation;
mod execute;
mod hash;
mod plan;
mod run;
mod schedule;
mod secrets;
pub mod shared_cache;
mod ssh;
mod stage;
mod view;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

pub use context::{BuildContext, ContextError, IgnoreMatcher};
pub use copy::CopyError;
pub use emulation::EmulationError;
pub use run::MountError;
pub use secrets::{SecretError, SecretFrom, SecretSource, MAX_SECRET_SIZE};
pub use ssh::{SshError, SshSource, DEFAULT_SSH_ID};

use crate::graph::SourceLocation;
use crate::graph::{
    self, Base, BaseImage, CopyFrom, ExpandedStage, Mount, Plan, PlanOptions, Step, StepKind,
};
use crate::layers::{Compression, LayerError};
use crate::oci::{Digest, ImageConfig, ImageRef, Platform, RootFs};
use crate::registry::PullPolicy;
use crate::store::{Image, NewImage, Store, StoreError};
use hash::ContextHasher;
use secrets::Secrets;
use shared_cache::ImportedCache;
use ssh::SshAgents;
use stage::{Mode, Session};

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub context: PathBuf,
    /// Shown in messages (`-f` as given).
    pub dockerfile_name: String,
    pub dockerfile: Vec<u8>,
    /// Where `<Dockerfile>.dockerignore` would be.
    pub dockerfile_path: Option<PathBuf>,
    pub tags: Vec<ImageRef>,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub no_cache: bool,
    /// When base images are pulled: `--pull` pulls them again even when the store has
    /// them (`Always`); by default only those the store lacks are.
    pub pull: PullPolicy,
    /// Docker's configuration directory (`--config`), whose saved credentials pull
    /// the base images [default: `$DOCKER_CONFIG`, else `~/.docker`].
    pub docker_config: Option<PathBuf>,
    /// Stages (names or indexes) whose steps are rebuilt whatever the cache holds.
    pub no_cache_filter: Vec<String>,
    /// How many RUN steps may run at once (stages always build side by side).
    pub jobs: usize,
    /// Cache directories (OCI layouts) to reuse steps from.
    pub cache_from: Vec<PathBuf>,
    /// Where to write the cache of this build's steps.
    pub cache_to: Option<PathBuf>,
    pub compression: Compression,
    /// `SOURCE_DATE_EPOCH`: clamps file times and sets every timestamp of the image.
    pub source_date_epoch: Option<i64>,
    /// What the build's steps may ask beyond the sandbox (`--allow`).
    pub entitlements: Entitlements,
    /// `--ulimit`: the RUN steps' resource limits. Like Docker's, they are not part of
    /// a step's cache key.
    pub ulimits: Vec<crate::exec::Rlimit>,
    /// What the RUN steps' sandboxes get from the build's flags.
    pub steps: StepSettings,
    /// What the image gets beyond its Dockerfile, and whether the store keeps it.
    pub image: ImageSettings,
    /// `--secret`: where the values of `RUN --mount=type=secret` come from. They are
    /// read when the build starts and are part of no key.
    pub secrets: Vec<SecretSource>,
    /// `--ssh`: the agents `RUN --mount=type=ssh` reaches.
    pub ssh: Vec<SshSource>,
    /// Stops the build: its owner cancels it on Ctrl-C, and the build itself when a
    /// stage fails (the other stages' sandboxes are killed).
    pub cancel: std::sync::Arc<crate::exec::Cancel>,
    /// `--platform`: the platforms to build for, one image each, under one image index
    /// when there are several; empty is this machine's. RUN steps of another platform
    /// run under qemu-user.
    pub platforms: Vec<Platform>,
}

/// The RUN steps' sandboxes as the build's flags set them. Like `--ulimit`, none of it
/// is part of a step's cache key but `--network none`, which changes the steps' own
/// network (as BuildKit keys it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepSettings {
    /// `--add-host NAME:IP`: lines added to the steps' `/etc/hosts`.
    pub extra_hosts: Vec<(String, std::net::IpAddr)>,
    /// `--shm-size`: the size of the steps' `/dev/shm`, in bytes.
    pub shm_size: Option<u64>,
    /// `--network none`: steps that do not name a network with `RUN --network` have
    /// none (but loopback).
    pub no_network: bool,
}

/// What the built image gets beyond its Dockerfile, and whether the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSettings {
    /// `--label`: set on the image's config, over the Dockerfile's `LABEL`s.
    pub labels: BTreeMap<String, String>,
    /// `--annotation`: set on the image's manifest.
    pub annotations: BTreeMap<String, String>,
    /// Whether the store records the image (and tags it): false for a build whose
    /// outputs are files or archives only, which leaves no image behind, as BuildKit
    /// leaves none. Its config and manifest blobs are written all the same, for the
    /// archives to take.
    pub keep: bool,
}

impl Default for ImageSettings {
    fn default() -> Self {
        ImageSettings {
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            keep: true,
        }
    }
}

/// BuildKit's entitlements: a step that asks to leave the sandbox's limits runs only
/// when whoever started the build allowed it. A Dockerfile is often someone else's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Entitlements {
    /// `security.insecure`: `RUN --security=insecure` (every capability, no seccomp).
    pub security_insecure: bool,
    /// `network.host`: `RUN --network=host`.
    pub network_host: bool,
}

impl Entitlements {
    /// The entitlement `run` needs that is not granted, by BuildKit's name.
    fn missing_for(&self, run: &graph::RunStep) -> Option<(&'static str, &'static str)> {
        if run.insecure && !self.security_insecure {
            return Some(("--security=insecure", "security.insecure"));
        }
        if run.network == graph::RunNetwork::Host && !self.network_host {
            return Some(("--network=host", "network.host"));
        }
        None
    }
}

/// The image a build made.
#[derive(Debug, Clone)]
pub struct BuildOutput {
    /// The image; of a build for several platforms, this machine's (else the first).
    pub image: Image,
    /// A build for several platforms: the index its tags name, and its size.
    pub index: Option<(Digest, u64)>,
    /// A build for several platforms: each platform's image, in the order asked (empty
    /// for a build of one).
    pub platform_images: Vec<(Platform, Image)>,
    pub warnings: Vec<String>,
    /// How many cache records `--cache-to` wrote.
    pub exported_records: Option<usize>,
}

/// A step being reported on.
#[derive(Debug, Clone)]
pub struct StepRef {
    pub stage: usize,
    /// The stage's name, or its index.
    pub stage_label: String,
    /// The stage as progress shows it (BuildKit's way): its name, `stage-N`, or empty in
    /// a build of one stage.
    pub shown_stage: String,
    /// 1-based position in the stage (0 for its FROM), and the stage's step count.
    pub number: usize,
    pub total: usize,
    /// The instruction as written.
    pub text: String,
}

/// What the builder tells its reporter.
#[derive(Debug, Clone)]
pub enum Event {
    Started {
        stages: usize,
        steps: usize,
    },
    StepStarted(StepRef),
    /// A step that can change files was found in the cache, or why it was not; for a
    /// FROM, why its base differs from the last build.
    StepCache {
        step: StepRef,
        status: CacheStatus,
    },
    StepDone {
        step: StepRef,
        elapsed: Duration,
        /// The layer's compressed size, when the step made one.
        layer_size: Option<u64>,
        /// Restored from the cache rather than run.
        cached: bool,
    },
    /// A line of a RUN step's output.
    StepOutput {
        step: StepRef,
        line: String,
    },
    Warning(String),
}

/// A step's cache lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheStatus {
    Hit,
    /// Why the step runs: `2 files changed (a, b)`, `ARG V changed 1 -> 2`, ...
    Miss(String),
}

/// What `lade build --explain` says of a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A FROM whose base is what the last build had.
    Unchanged,
    /// A FROM whose base differs from the last build's, and how.
    BaseChanged(String),
    /// The step would be restored from the cache.
    Cached,
    /// The step would run, and why.
    Runs(String),
    /// A step that only changes the config: computed, never cached.
    ConfigOnly,
}

/// One step of `lade build --explain`.
#[derive(Debug, Clone)]
pub struct ExplainedStep {
    pub step: StepRef,
    pub verdict: Verdict,
    /// The platform it is for, in a build for several.
    pub platform: Option<Platform>,
}

/// Receives build events; the CLI renders them.
pub trait Reporter: Send + Sync {
    fn report(&self, event: Event);
}

/// A reporter that drops everything.
pub struct Silent;

impl Reporter for Silent {
    fn report(&self, _event: Event) {}
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Plan(#[from] graph::PlanError),
    #[error("{0}")]
    Graph(#[from] graph::GraphError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A step failed: where it is and why.
    #[error("{}", render_step_error(location, step, &failure.to_string()))]
    Step {
        location: Box<SourceLocation>,
        step: String,
        #[source]
        failure: Box<StepFailure>,
    },
    #[error(transparent)]
    Context(#[from] ContextError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Ssh(#[from] SshError),
    #[error("--no-cache-filter {filter}: {dockerfile} has no stage of that name or index")]
    UnknownStage { filter: String, dockerfile: String },
    /// A `--cache-from` or `--cache-to` directory that is not a cache lade wrote.
    #[error("cache {}: {problem}", dir.display())]
    CacheLayout { dir: PathBuf, problem: String },
    /// What the store is to keep could not be written as JSON (never stored empty).
    #[error("cannot record {what}: {source}")]
    Record {
        what: &'static str,
        source: serde_json::Error,
    },
    #[error("the build stopped because another stage failed")]
    Cancelled,
    /// Ctrl-C or a termination signal: nothing of the running steps was kept, nothing
    /// was tagged.
    #[error("the build was interrupted by {}", signal_name(*signal))]
    Interrupted { signal: i32 },
    #[error("cannot start a thread to build a stage: {0}")]
    Thread(std::io::Error),
    /// The scheduler ran a step before a stage it needs: a bug in lade, reported
    /// rather than building from an empty filesystem.
    #[error("internal error: stage {0} was needed before it was built")]
    StageNotBuilt(usize),
}

fn signal_name(signal: i32) -> String {
    nix::sys::signal::Signal::try_from(signal)
        .map_or_else(|_| format!("signal {signal}"), |s| s.as_str().to_string())
}

impl BuildError {
    /// The exit code for this error: 128 + the signal for an interrupted build (130 for
    /// Ctrl-C, as BuildKit's client gives), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            BuildError::Interrupted { signal } => (128 + signal).clamp(0, 255) as u8,
            _ => 1,
        }
    }
}

fn render_step_error(location: &SourceLocation, step: &str, message: &str) -> String {
    struct Show<'a>(&'a SourceLocation, String);
    impl std::fmt::Display for Show<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            self.0.render(f, &self.1)
        }
    }
    Show(location, format!("{step}: {message}")).to_string()
}

/// Why a step failed. Each message is whole (it includes its cause's text).
#[derive(Debug, thiserror::Error)]
pub enum StepFailure {
    #[error(transparent)]
    Copy(#[from] copy::CopyError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Mount(#[from] run::MountError),
    /// The command ran and exited with `code`.
    #[error(
        "the command {} did not complete successfully: exit code {code}{}",
        run::shown_argv(argv),
        run::output_tail(output)
    )]
    CommandFailed {
        argv: Vec<String>,
        code: i32,
        /// Its last lines of output.
        output: Vec<String>,
    },
    /// The sandbox could not start the command (no such program, a bad working
    /// directory...).
    #[error("{message}{}", run::output_tail(output))]
    CommandNotStarted {
        message: String,
        output: Vec<String>,
    },
    #[error(transparent)]
    Exec(crate::exec::ExecError),
    #[error(
        "RUN {flag} needs the {entitlement} entitlement, which this build was not given: start it with --allow {entitlement} if you trust this Dockerfile"
    )]
    NotEntitled {
        flag: &'static str,
        entitlement: &'static str,
    },
    #[error("{what} has no files to copy")]
    NothingToCopy { what: String },
    #[error(transparent)]
    Emulation(#[from] emulation::EmulationError),
    /// A bug in lade, reported rather than building on an unknown filesystem.
    #[error("internal error: the stage has no state")]
    NoState,
}

/// Why an image a build starts from or takes files from cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("invalid --platform {0:?}: expected os/arch[/variant]")]
    BadPlatform(String),
}

fn step_failure(step: &Step, failure: impl Into<StepFailure>) -> BuildError {
    BuildError::Step {
        location: Box::new(step.location.clone()),
        step: one_line(&step.text),
        failure: Box::new(failure.into()),
    }
}

fn one_line(text: &str) -> String {
    let first = text.lines().next().unwrap_or_default();
    if first.chars().count() > 80 {
        format!("{}...", first.chars().take(77).collect::<String>())
    } else {
        first.to_string()
    }
}

/// What the build's secret and ssh mounts are made from: the secrets' values and the
/// agents' sockets (the agents the build started stop when this is dropped).
#[derive(Default)]
pub(crate) struct Providers {
    pub secrets: Secrets,
    pub agents: SshAgents,
}

/// What a build needs before any step runs: the plan, the stages expanded, the base
/// and `--from` images found, the context opened.
pub(crate) struct Prepared {
    plan: Plan,
    expanded: BTreeMap<usize, ExpandedStage>,
    /// Base image of each stage built on one.
    bases: BTreeMap<usize, Image>,
    /// Images `COPY --from` and `RUN --mount=from=` name, by familiar name.
    images: BTreeMap<String, Image>,
    context: BuildContext,
    warnings: Vec<String>,
    /// Identifies this context and Dockerfile among cache sites.
    project: String,
    /// What every key of this build shares: compression, SOURCE_DATE_EPOCH.
    settings: String,
    /// The platform of each stage: its `FROM --platform`, else the build's.
    platforms: BTreeMap<usize, Platform>,
    /// A build for several platforms: the one this build is for, shown in progress.
    shown_platform: Option<String>,
}

impl Prepared {
    /// What every key of stage `index` shares: its platform, compression and
    /// SOURCE_DATE_EPOCH.
    pub(crate) fn settings(&self, index: usize) -> String {
        let platform = self
            .platforms
            .get(&index)
            .cloned()
            .unwrap_or_else(Platform::host);
        format!("{platform} {}", self.settings)
    }

    /// The platform stage `index` is for.
    pub(crate) fn platform(&self, index: usize) -> Platform {
        self.platforms
            .get(&index)
            .cloned()
            .unwrap_or_else(|| self.plan.platform.clone())
    }
}

fn prepare(
    store: &Store,
    options: &BuildOptions,
    platform: &Platform,
) -> Result<Prepared, BuildError> {
    let plan = graph::plan_text(
        &options.dockerfile_name,
        options.dockerfile.clone(),
        &PlanOptions {
            build_args: options.build_args.clone(),
            target: options.target.clone(),
            platform: Some(platform.clone()),
        },
    )?;
    for filter in &options.no_cache_filter {
        let known = plan.stages.iter().any(|s| {
            s.name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(filter))
                || s.index.to_string() == *filter
        });
        if !known {
            return Err(BuildError::UnknownStage {
                filter: filter.clone(),
                dockerfile: options.dockerfile_name.clone(),
            });
        }
    }
    let context = BuildContext::open(&options.context, options.dockerfile_path.as_deref())?;
    let mut warnings: Vec<String> = Vec::new();
    if !plan.unused_build_args.is_empty() {
        warnings.push(format!(
            "build args not consumed by any ARG: {}",
            plan.unused_build_args.join(", ")
        ));
    }

    // Base images first: expansion needs their config (ENV, WORKDIR, ONBUILD...).
    // Stages often share a base: each image is looked up once.
    let mut bases: BTreeMap<usize, Image> = BTreeMap::new();
    let mut found: BTreeMap<(String, String), Image> = BTreeMap::new();
    let mut platforms: BTreeMap<usize, Platform> = BTreeMap::new();
    for &index in &plan.order {
        let stage = &plan.stages[index];
        let located = |failure: ImageError| BuildError::Step {
            location: Box::new(stage.location.clone()),
            step: stage.from_text.clone(),
            failure: Box::new(failure.into()),
        };
        let stage_platform = match &stage.platform {
            Some(text) => Platform::parse(text)
                .ok_or_else(|| located(ImageError::BadPlatform(text.clone())))?,
            None => platform.clone(),
        };
        if let Base::Image(reference) = &stage.base {
            let key = (reference.familiar(), stage_platform.to_string());
            let image = match found.get(&key) {
                Some(image) => image.clone(),
                None => {
                    let image =
                        find_image(store, reference, options, &stage_platform).map_err(located)?;
                    found.insert(key, image.clone());
                    image
                }
            };
            bases.insert(index, image);
        }
        platforms.insert(index, stage_platform);
    }
    let expanded = graph::expand_all(&plan, |stage, _| {
        let image = &bases[&stage.index];
        BaseImage {
            config: image.config.config.clone(),
            author: image.config.author.clone(),
        }
    })?;
    let mut expanded = expanded;
    if options.steps.no_network {
        for stage in expanded.values_mut() {
            for step in &mut stage.steps {
                if let StepKind::Run(run) = &mut step.kind {
                    if run.network == graph::RunNetwork::Default {
                        run.network = graph::RunNetwork::None;
                    }
                }
            }
        }
    }
    // Nothing runs before every step is known to be allowed.
    for stage in expanded.values() {
        for step in &stage.steps {
            if let StepKind::Run(run) = &step.kind {
                if let Some((flag, entitlement)) = options.entitlements.missing_for(run) {
                    return Err(step_failure(
                        step,
                        StepFailure::NotEntitled { flag, entitlement },
                    ));
                }
            }
        }
    }
    // Images steps take files from: their digests are part of those steps' keys.
    let mut images: BTreeMap<String, Image> = BTreeMap::new();
    for (index, stage) in &expanded {
        let stage_platform = &platforms[index];
        for step in &stage.steps {
            for reference in images_used(step) {
                if let std::collections::btree_map::Entry::Vacant(slot) =
                    images.entry(reference.familiar())
                {
                    slot.insert(
                        find_image(store, reference, options, stage_platform)
                            .map_err(|e| step_failure(step, e))?,
                    );
                }
            }
        }
    }
    let canonical = |path: &std::path::Path| {
        std::fs::canonicalize(path)
            .unwrap_or_else(|_| path.to_path_buf())
            .to_string_lossy()
            .into_owned()
    };
    let mut project = format!(
        "{}\0{}",
        canonical(&options.context),
        options
            .dockerfile_path
            .as_deref()
            .map(canonical)
            .unwrap_or_else(|| options.dockerfile_name.clone())
    );
    // Each platform's steps are recorded apart, so that a build for one does not
    // explain its misses by the other's.
    if !platform.is_native() {
        project.push_str(&format!("\0{platform}"));
    }
    let compression = match options.compression {
        Compression::Zstd => "zstd",
        Compression::Gzip => "gzip",
        Compression::None => "uncompressed",
    };
    let settings = match options.source_date_epoch {
        Some(epoch) => format!("{compression} SOURCE_DATE_EPOCH={epoch}"),
        None => compression.to_string(),
    };
    Ok(Prepared {
        plan,
        expanded,
        bases,
        images,
        context,
        warnings,
        project,
        settings,
        platforms,
        shown_platform: (options.platforms.len() > 1).then(|| platform.to_string()),
    })
}

/// The images a step reads files from.
fn images_used(step: &Step) -> Vec<&ImageRef> {
    let mut out = Vec::new();
    match &step.kind {
        StepKind::Copy(copy) => {
            if let CopyFrom::Image(reference) = &copy.from {
                out.push(reference);
            }
        }
        StepKind::Run(run) => {
            for mount in &run.mounts {
                match mount {
                    Mount::Bind {
                        from: CopyFrom::Image(reference),
                        ..
                    }
                    | Mount::Cache {
                        from: Some(CopyFrom::Image(reference)),
                        ..
                    } => out.push(reference),
                    _ => {}
                }
            }
        }
        _ => {}
    }
    out
}

fn session<'a>(
    store: &'a Store,
    options: &'a BuildOptions,
    prepared: &'a Prepared,
    reporter: &'a dyn Reporter,
    mode: Mode,
    providers: &'a Providers,
) -> Result<Session<'a>, BuildError> {
    let imported = options
        .cache_from
        .iter()
        .map(|dir| ImportedCache::open(dir))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Session {
        store,
        options,
        prepared,
        reporter,
        hasher: ContextHasher::load(store, &prepared.context.root),
        imported,
        mode,
        done: Mutex::new(BTreeMap::new()),
        sites: Mutex::new(Vec::new()),
        used: Mutex::new(Vec::new()),
        explained: Mutex::new(Vec::new()),
        now: now_seconds(),
        providers,
    })
}

/// Whether a signal stopped the build (whatever error the steps it killed gave).
fn interrupted(options: &BuildOptions) -> Result<(), BuildError> {
    match options.cancel.interrupted_by() {
        Some(signal) => Err(BuildError::Interrupted { signal }),
        None => Ok(()),
    }
}

/// Builds the image `options` describe: for each of its platforms, one after the other,
/// then an index of them under the tags when there are several.
pub fn build(
    store: &Store,
    options: &BuildOptions,
    reporter: &dyn Reporter,
) -> Result<BuildOutput, BuildError> {
    let platforms = match options.platforms.as_slice() {
        [] => vec![Platform::host()],
        some => some.to_vec(),
    };
    let several = platforms.len() > 1;
    // Read and started before anything runs: a secret file that cannot be read or a key
    // ssh-add refuses stops the build at once, naming the flag. One set serves every
    // platform.
    let providers = Providers {
        secrets: Secrets::load(&options.secrets)?,
        agents: SshAgents::start(store, &options.ssh)?,
    };
    let mut built: Vec<(Platform, Image)> = Vec::new();
    let mut warnings: Vec<String> = Vec::new();
    let mut used: Vec<String> = Vec::new();
    for platform in &platforms {
        let tags: &[ImageRef] = if several { &[] } else { &options.tags };
        let (image, used_here, warned) =
            build_for(store, options, platform, tags, reporter, &providers)?;
        used.extend(used_here);
        for warning in warned {
            if !warnings.contains(&warning) {
                warnings.push(warning);
            }
        }
        built.push((platform.clone(), image));
    }
    let index = if several {
        Some(store.commit_index(&built, &options.tags)?)
    } else {
        None
    };
    let host = Platform::host();
    let image = match built.iter().position(|(p, _)| p.serves(&host)) {
        Some(i) => built[i].1.clone(),
        None => built[0].1.clone(),
    };
    let platform_images = if several { built } else { Vec::new() };
    let image = match index {
        // Its tags are the index's.
        Some(_) => store.image_by_manifest(&image.manifest_digest)?,
        None => image,
    };
    let exported_records = match &options.cache_to {
        Some(dir) => Some(shared_cache::export(store, dir, &used)?),
        None => None,
    };
    Ok(BuildOutput {
        image,
        index,
        platform_images,
        warnings,
        exported_records,
    })
}

/// Builds the image for one platform, tagged `tags`; returns it, the cache records it
/// used or made, and its warnings.
fn build_for(
    store: &Store,
    options: &BuildOptions,
    platform: &Platform,
    tags: &[ImageRef],
    reporter: &dyn Reporter,
    providers: &Providers,
) -> Result<(Image, Vec<String>, Vec<String>), BuildError> {
    let prepared = prepare(store, options, platform)?;
    let _guard = store.content_guard()?;
    let plan = &prepared.plan;
    // Each stage's FROM counts, as the `[n/m]` labels and the `#n` lines count it.
    let total_steps: usize = prepared.expanded.values().map(|s| s.steps.len() + 1).sum();
    reporter.report(Event::Started {
        stages: plan.order.len(),
        steps: total_steps,
    });
    for warning in &prepared.warnings {
        reporter.report(Event::Warning(warning.clone()));
    }
    let session = session(store, options, &prepared, reporter, Mode::Build, providers)?;
    for absent in session.imported.iter().filter_map(|cache| cache.absence()) {
        reporter.report(Event::Warning(absent));
    }
    let base = |stage: usize| match plan.stages[stage].base {
        Base::Stage(parent) => Some(parent),
        _ => None,
    };
    let built = schedule::run_stages(
        &plan.order,
        &base,
        options.jobs,
        &|stage, turn| session.run_stage(stage, turn),
        &|error| matches!(error, BuildError::Cancelled),
        &|error| BuildError::Thread(error),
        &|| options.cancel.cancel(),
    );
    // What was learned is kept even when the build failed: the steps that finished are
    // reused next time, and their files need not be hashed again.
    session.hasher.save(store);
    let sites = std::mem::take(&mut *session.sites.lock().unwrap_or_else(|e| e.into_inner()));
    let used = std::mem::take(&mut *session.used.lock().unwrap_or_else(|e| e.into_inner()));
    store.finish_cache_use(&sites, &used, session.now)?;
    interrupted(options)?;
    built?;

    let done = session.done.lock().unwrap_or_else(|e| e.into_inner());
    let target = &done[&plan.target];
    let mut image_config = target.config.clone();
    if !options.image.labels.is_empty() {
        image_config
            .labels
            .get_or_insert_with(BTreeMap::new)
            .extend(options.image.labels.clone());
    }
    let config = ImageConfig {
        created: Some(
            target
                .history
                .last()
                .and_then(|h| h.created.clone())
                .unwrap_or_else(|| target.last_time.clone()),
        ),
        author: target.author.clone(),
        architecture: target.architecture.clone(),
        os: target.os.clone(),
        variant: target.variant.clone(),
        config: image_config,
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: target.layers.iter().map(|l| l.diff_id).collect(),
        },
        history: target.history.clone(),
        extra: BTreeMap::new(),
    };
    interrupted(options)?;
    let new_image = NewImage {
        config,
        config_bytes: None,
        layers: target.layers.clone(),
    };
    let image = if options.image.keep {
        let image = store.commit_annotated_image(&new_image, &options.image.annotations, tags)?;
        store.set_built_image(
            &image.id,
            &serde_json::to_string(&target.steps).map_err(|source| BuildError::Record {
                what: "the image's steps",
                source,
            })?,
        )?;
        image
    } else {
        store.unrecorded_image(&new_image, &options.image.annotations)?
    };
    Ok((image, used, prepared.warnings.clone()))
}

/// Says, for every step the build would take, whether the cache has it and if not why,
/// without running or writing anything (but the stat cache of the context's files). A
/// build for several platforms is explained for each, in order, each step labelled with
/// its platform as progress labels it.
pub fn explain(store: &Store, options: &BuildOptions) -> Result<Vec<ExplainedStep>, BuildError> {
    let platforms = match options.platforms.as_slice() {
        [] => vec![Platform::host()],
        some => some.to_vec(),
    };
    let several = platforms.len() > 1;
    let mut all = Vec::new();
    for platform in &platforms {
        let prepared = prepare(store, options, platform)?;
        // Nothing runs: no secret is read, no agent started.
        let providers = Providers::default();
        let session = session(
            store,
            options,
            &prepared,
            &Silent,
            Mode::Explain,
            &providers,
        )?;
        for &stage in &prepared.plan.order {
            session.run_stage(stage, &schedule::Turn::unscheduled())?;
        }
        session.hasher.save(store);
        let explained =
            std::mem::take(&mut *session.explained.lock().unwrap_or_else(|e| e.into_inner()));
        all.extend(explained.into_iter().map(|(step, verdict)| ExplainedStep {
            step,
            verdict,
            platform: several.then(|| platform.clone()),
        }));
    }
    Ok(all)
}

/// A base image for `platform`, from the store (the entry for it of a multi-platform
/// image) or pulled for it as the build's pull policy says.
fn find_image(
    store: &Store,
    reference: &ImageRef,
    options: &BuildOptions,
    platform: &Platform,
) -> Result<Image, ImageError> {
    let pull = crate::registry::PullOptions {
        client: crate::registry::ClientOptions {
            docker_config: options.docker_config.clone(),
            ..Default::default()
        },
        platform: Some(platform.clone()),
    };
    Ok(crate::registry::find_or_pull(
        store,
        &reference.familiar(),
        options.pull,
        &pull,
        &(),
    )?)
}

/// An RFC 3339 time: `SOURCE_DATE_EPOCH` if set, else now.
fn history_time(source_date_epoch: Option<i64>) -> String {
    match source_date_epoch.and_then(|s| jiff::Timestamp::from_second(s).ok()) {
        Some(t) => t.to_string(),
        None => jiff::Timestamp::now().to_string(),
    }
}

fn now_seconds() -> i64 {
    jiff::Timestamp::now().as_second()
}
