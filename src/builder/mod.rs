//! The builder: turns a Dockerfile and its context into an image. It parses and plans
//! (graph), finds base images in the store, runs each needed stage's steps (COPY/ADD
//! and WORKDIR make layers in one pass from files; RUN runs in the sandbox and its
//! upper directory becomes the layer; other steps only change the config), and commits
//! the target stage as an image with its history.
//!
//! It never prints: progress goes to a [`Reporter`] as [`Event`]s.

mod context;
mod copy;
mod run;
mod view;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use context::{BuildContext, IgnoreMatcher};

use crate::graph::{
    self, Base, BaseImage, CopyFrom, ExpandedStage, Plan, PlanOptions, Step, StepKind,
};
use crate::layers::{Compression, LayerError};
use crate::oci::{ContainerConfig, History, ImageConfig, ImageRef, Platform, RootFs};
use crate::parser::{self, ParseError, SourceLocation};
use crate::store::{Image, LayerInfo, NewImage, Store, StoreError};
use copy::{CopyRequest, Source};
use view::RootView;

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
    pub compression: Compression,
    /// `SOURCE_DATE_EPOCH`: clamps file times and sets every timestamp of the image.
    pub source_date_epoch: Option<i64>,
}

/// The image a build made.
#[derive(Debug, Clone)]
pub struct BuildOutput {
    pub image: Image,
    pub warnings: Vec<String>,
}

/// A step being reported on.
#[derive(Debug, Clone)]
pub struct StepRef {
    pub stage: usize,
    /// The stage's name, or its index.
    pub stage_label: String,
    /// 1-based position in the stage, and the stage's step count.
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
    StepDone {
        step: StepRef,
        elapsed: Duration,
        /// The layer's compressed size, when the step made one.
        layer_size: Option<u64>,
    },
    /// A line of a RUN step's output.
    StepOutput {
        step: StepRef,
        line: String,
    },
    Warning(String),
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
    #[error("{0}")]
    Parse(#[from] ParseError),
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
    #[error("{}", render_step_error(location, step, message))]
    Step {
        location: Box<SourceLocation>,
        step: String,
        message: String,
    },
    #[error("{0}")]
    Context(String),
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

fn step_error(step: &Step, message: impl Into<String>) -> BuildError {
    BuildError::Step {
        location: Box::new(step.location.clone()),
        step: one_line(&step.text),
        message: message.into(),
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

/// A stage once built: its layers, history and config.
#[derive(Debug, Clone)]
struct BuiltStage {
    layers: Vec<LayerInfo>,
    history: Vec<History>,
    config: ContainerConfig,
    author: Option<String>,
    architecture: String,
    os: String,
    variant: Option<String>,
}

/// Builds the image `options` describe.
pub fn build(
    store: &Store,
    options: &BuildOptions,
    reporter: &dyn Reporter,
) -> Result<BuildOutput, BuildError> {
    let dockerfile = parser::parse(&options.dockerfile_name, options.dockerfile.clone())?;
    let plan = graph::plan(
        &dockerfile,
        &PlanOptions {
            build_args: options.build_args.clone(),
            target: options.target.clone(),
        },
    )?;
    let context = BuildContext::open(&options.context, options.dockerfile_path.as_deref())
        .map_err(BuildError::Context)?;
    let _guard = store.content_guard()?;
    let mut warnings: Vec<String> = Vec::new();
    if !plan.unused_build_args.is_empty() {
        warnings.push(format!(
            "build args not consumed by any ARG: {}",
            plan.unused_build_args.join(", ")
        ));
    }

    // Base images first: expansion needs their config (ENV, WORKDIR, ONBUILD...).
    let mut bases: BTreeMap<usize, Image> = BTreeMap::new();
    for &index in &plan.order {
        let stage = &plan.stages[index];
        if let Base::Image(reference) = &stage.base {
            let image = find_image(store, reference).map_err(|message| BuildError::Step {
                location: Box::new(stage.location.clone()),
                step: stage.from_text.clone(),
                message,
            })?;
            check_platform(&image, stage.platform.as_deref()).map_err(|message| {
                BuildError::Step {
                    location: Box::new(stage.location.clone()),
                    step: stage.from_text.clone(),
                    message,
                }
            })?;
            bases.insert(index, image);
        }
    }
    let expanded = graph::expand_all(&plan, |stage, _| {
        let image = &bases[&stage.index];
        BaseImage {
            config: image.config.config.clone(),
            author: image.config.author.clone(),
        }
    })?;
    let total_steps: usize = expanded.values().map(|s| s.steps.len()).sum();
    reporter.report(Event::Started {
        stages: plan.order.len(),
        steps: total_steps,
    });
    for warning in &warnings {
        reporter.report(Event::Warning(warning.clone()));
    }

    let mut built: BTreeMap<usize, BuiltStage> = BTreeMap::new();
    let mut images_by_ref: BTreeMap<String, Image> = BTreeMap::new();
    for &index in &plan.order {
        let stage = &plan.stages[index];
        let start = match &stage.base {
            Base::Scratch => {
                let host = Platform::host();
                BuiltStage {
                    layers: Vec::new(),
                    history: Vec::new(),
                    config: ContainerConfig::default(),
                    author: None,
                    architecture: host.architecture,
                    os: host.os,
                    variant: host.variant,
                }
            }
            Base::Image(_) => {
                let image = &bases[&index];
                BuiltStage {
                    layers: image.layers.clone(),
                    history: image.config.history.clone(),
                    config: image.config.config.clone(),
                    author: image.config.author.clone(),
                    architecture: image.config.architecture.clone(),
                    os: image.config.os.clone(),
                    variant: image.config.variant.clone(),
                }
            }
            Base::Stage(parent) => built[parent].clone(),
        };
        let stage_steps = &expanded[&index];
        let result = StageBuild {
            store,
            options,
            plan: &plan,
            context: &context,
            reporter,
            built: &built,
            images_by_ref: &mut images_by_ref,
        }
        .run(index, start, stage_steps)?;
        built.insert(index, result);
    }

    let target = &built[&plan.target];
    let created = history_time(options.source_date_epoch);
    let config = ImageConfig {
        created: Some(
            target
                .history
                .last()
                .and_then(|h| h.created.clone())
                .unwrap_or(created),
        ),
        author: target.author.clone(),
        architecture: target.architecture.clone(),
        os: target.os.clone(),
        variant: target.variant.clone(),
        config: target.config.clone(),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: target.layers.iter().map(|l| l.diff_id).collect(),
        },
        history: target.history.clone(),
        extra: BTreeMap::new(),
    };
    let image = store.commit_image(
        &NewImage {
            config,
            config_bytes: None,
            layers: target.layers.clone(),
        },
        &options.tags,
    )?;
    Ok(BuildOutput { image, warnings })
}

/// Finds a base image in the store (lade does not pull yet).
fn find_image(store: &Store, reference: &ImageRef) -> Result<Image, String> {
    store.image(&reference.familiar()).map_err(|e| match e {
        StoreError::NoSuchImage(_) => format!(
            "image {} is not in the store: `lade import` or `lade load` it first (lade cannot pull from registries yet)",
            reference.familiar()
        ),
        other => other.to_string(),
    })
}

/// lade runs what it builds on this machine: a base image for another platform is an
/// error, as is `--platform` naming one.
fn check_platform(image: &Image, requested: Option<&str>) -> Result<(), String> {
    let host = Platform::host();
    if let Some(requested) = requested {
        let wanted = Platform::parse(requested)
            .ok_or_else(|| format!("invalid --platform {requested:?}: expected os/arch"))?;
        if wanted.os != host.os || wanted.architecture != host.architecture {
            return Err(format!(
                "--platform={requested}: lade builds for {host} only (no emulation)"
            ));
        }
    }
    let arch = &image.config.architecture;
    if !arch.is_empty() && *arch != host.architecture {
        return Err(format!(
            "the image is for {}/{arch}, but this machine is {host}",
            image.config.os
        ));
    }
    Ok(())
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

/// The work of building one stage.
struct StageBuild<'a> {
    store: &'a Store,
    options: &'a BuildOptions,
    plan: &'a Plan,
    context: &'a BuildContext,
    reporter: &'a dyn Reporter,
    built: &'a BTreeMap<usize, BuiltStage>,
    images_by_ref: &'a mut BTreeMap<String, Image>,
}

impl StageBuild<'_> {
    fn run(
        &mut self,
        index: usize,
        mut state: BuiltStage,
        expanded: &ExpandedStage,
    ) -> Result<BuiltStage, BuildError> {
        let stage = &self.plan.stages[index];
        let total = expanded.steps.len();
        for step in &expanded.steps {
            let step_ref = StepRef {
                stage: index,
                stage_label: stage.label(),
                number: step.number,
                total,
                text: step.text.clone(),
            };
            self.reporter.report(Event::StepStarted(step_ref.clone()));
            let started = Instant::now();
            let layer = match &step.kind {
                StepKind::Config => None,
                StepKind::Workdir(path) => self.workdir(&state, step, path)?,
                StepKind::Copy(copy) => Some(self.copy(&state, step, copy)?),
                StepKind::Run(run_step) => self.run_step(&state, step, run_step, &step_ref)?,
            };
            let layer_size = layer.as_ref().map(|l| l.size);
            state.history.push(History {
                created: Some(history_time(self.options.source_date_epoch)),
                created_by: Some(step.created_by.clone()),
                author: None,
                comment: Some("buildkit.dockerfile.v0".into()),
                empty_layer: layer.is_none().then_some(true),
            });
            if let Some(layer) = layer {
                state.layers.push(layer);
            }
            self.reporter.report(Event::StepDone {
                step: step_ref,
                elapsed: started.elapsed(),
                layer_size,
            });
        }
        state.config = expanded.config.clone();
        state.author = expanded.author.clone();
        Ok(state)
    }

    fn run_step(
        &mut self,
        state: &BuiltStage,
        step: &Step,
        run_step: &graph::RunStep,
        step_ref: &StepRef,
    ) -> Result<Option<LayerInfo>, BuildError> {
        let store = self.store;
        let built = self.built;
        let images = &mut *self.images_by_ref;
        let mut open_view = |from: &CopyFrom| -> Result<Option<RootView>, String> {
            let layers = match from {
                CopyFrom::Context => return Ok(None),
                CopyFrom::Stage(i) => built[i].layers.clone(),
                CopyFrom::Image(reference) => {
                    let key = reference.familiar();
                    if !images.contains_key(&key) {
                        images.insert(key.clone(), find_image(store, reference)?);
                    }
                    images[&key].layers.clone()
                }
            };
            if layers.is_empty() {
                return Ok(None);
            }
            RootView::open(store, &layers)
                .map(Some)
                .map_err(|e| e.to_string())
        };
        run::run(
            run::RunContext {
                store,
                layers: &state.layers,
                context_root: &self.context.root,
                compression: self.options.compression,
                source_date_epoch: self.options.source_date_epoch,
                reporter: self.reporter,
                step_ref: step_ref.clone(),
                open_view: &mut open_view,
            },
            step,
            run_step,
        )
    }

    /// The stage's filesystem so far, mounted, or `None` while it is empty.
    fn view(&self, layers: &[LayerInfo]) -> Result<Option<RootView>, BuildError> {
        if layers.is_empty() {
            return Ok(None);
        }
        RootView::open(self.store, layers).map(Some)
    }

    fn copy(
        &mut self,
        state: &BuiltStage,
        step: &Step,
        copy: &graph::CopyStep,
    ) -> Result<LayerInfo, BuildError> {
        let dest_view = self.view(&state.layers)?;
        let from_view;
        let source = match &copy.from {
            CopyFrom::Context => Source::Context(self.context),
            CopyFrom::Stage(other) => {
                from_view = self.view(&self.built[other].layers)?;
                match &from_view {
                    Some(view) => Source::Root(view.root()),
                    None => {
                        return Err(step_error(
                            step,
                            format!("stage {other} has no files to copy"),
                        ))
                    }
                }
            }
            CopyFrom::Image(reference) => {
                let key = reference.familiar();
                if !self.images_by_ref.contains_key(&key) {
                    let image =
                        find_image(self.store, reference).map_err(|m| step_error(step, m))?;
                    self.images_by_ref.insert(key.clone(), image);
                }
                from_view = self.view(&self.images_by_ref[&key].layers)?;
                match &from_view {
                    Some(view) => Source::Root(view.root()),
                    None => {
                        return Err(step_error(
                            step,
                            format!("image {key} has no files to copy"),
                        ))
                    }
                }
            }
        };
        let scratch = self.store.staging_dir("scratch")?;
        let request = CopyRequest {
            step: copy,
            source,
            dest_root: dest_view.as_ref().map(RootView::root),
            source_date_epoch: self.options.source_date_epoch,
            now: now_seconds(),
            scratch: scratch.path(),
        };
        let plan = copy::plan(&request).map_err(|m| step_error(step, m))?;
        copy::write_layer(
            self.store,
            plan,
            self.options.compression,
            self.options.source_date_epoch,
        )
    }

    /// WORKDIR creates its directory (owned by the USER in effect) when the image lacks
    /// it; then it is a layer, otherwise only a config change.
    fn workdir(
        &mut self,
        state: &BuiltStage,
        step: &Step,
        path: &str,
    ) -> Result<Option<LayerInfo>, BuildError> {
        let view = self.view(&state.layers)?;
        let root = view.as_ref().map(RootView::root);
        if root.is_some_and(|r| view::resolve_in_root(r, path, true).is_dir()) {
            return Ok(None);
        }
        let scratch = self.store.staging_dir("scratch")?;
        let user = state.config.user.clone().filter(|u| !u.is_empty());
        let mkdir = graph::CopyStep {
            add: false,
            sources: Vec::new(),
            dest: format!("{}/", path.trim_end_matches('/')),
            from: CopyFrom::Context,
            chown: user,
            chmod: None,
            link: false,
            parents: false,
            excludes: Vec::new(),
            checksum: None,
            keep_git_dir: false,
            workdir: "/".into(),
        };
        let request = CopyRequest {
            step: &mkdir,
            source: Source::Context(self.context),
            dest_root: root,
            source_date_epoch: self.options.source_date_epoch,
            now: now_seconds(),
            scratch: scratch.path(),
        };
        let plan = copy::plan_directory(&request, path).map_err(|m| step_error(step, m))?;
        if plan.is_empty() {
            return Ok(None);
        }
        copy::write_layer(
            self.store,
            plan,
            self.options.compression,
            self.options.source_date_epoch,
        )
        .map(Some)
    }
}
