//! One stage of a build, step by step. A step that can change files (COPY, ADD, RUN,
//! WORKDIR) is looked up in the cache by its key and restored on a hit; on a miss the
//! build says why, runs it, and records its result at once, so a build stopped half-way
//! keeps what it finished. Config-only steps are computed from the Dockerfile and never
//! cached. In explain mode nothing runs: each step is only classified.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

use super::cache::{self, Inputs, State};
use super::copy::{self, CopyRequest, FileInputs, Source};
use super::hash::ContextHasher;
use super::run;
use super::schedule::Turn;
use super::shared_cache::ImportedCache;
use super::view::{self, RootView};
use super::{
    history_time, now_seconds, one_line, step_error, BuildError, BuildOptions, CacheStatus, Event,
    Prepared, Reporter, StepRef, Verdict,
};
use crate::graph::{self, Base, CopyFrom, CopySource, Mount, Step, StepKind};
use crate::layers::ExtractLimits;
use crate::oci::{ContainerConfig, History, Platform};
use crate::store::{CacheRecord, LayerInfo, Store};

/// What a build (or an explanation) of a stage has made so far.
#[derive(Debug, Clone)]
pub(crate) struct StageResult {
    pub layers: Vec<LayerInfo>,
    pub history: Vec<History>,
    pub config: ContainerConfig,
    pub author: Option<String>,
    pub architecture: String,
    pub os: String,
    pub variant: Option<String>,
    /// The filesystem's identity; `None` when explaining and an earlier step would run.
    pub state: Option<State>,
    /// The history time of config-only steps: that of the last layer, so that a rebuild
    /// from the cache gives the same image.
    pub last_time: String,
    /// The step behind each history entry this build made.
    pub steps: Vec<BuiltStep>,
    /// Explaining: why this stage's result will change.
    pub pending: Option<String>,
}

/// One step of a built image, for `lade cache inspect IMAGE`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct BuiltStep {
    pub stage: String,
    pub step: String,
    pub key: Option<String>,
}

/// A step's place in its stage's chain, to find what changed first.
enum Link {
    From {
        site: String,
        identity: String,
    },
    Step {
        number: usize,
        sites: [String; 2],
        key: String,
    },
}

/// Whether the build runs steps or only says what it would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Build,
    Explain,
}

/// What all the stages of one build share.
pub(crate) struct Session<'a> {
    pub store: &'a Store,
    pub options: &'a BuildOptions,
    pub prepared: &'a Prepared,
    pub reporter: &'a dyn Reporter,
    pub hasher: ContextHasher,
    pub imported: Vec<ImportedCache>,
    pub mode: Mode,
    pub done: Mutex<BTreeMap<usize, StageResult>>,
    /// Site -> key, written when the build ends.
    pub sites: Mutex<Vec<(String, String)>>,
    /// Every record this build used or made.
    pub used: Mutex<Vec<String>>,
    pub explained: Mutex<Vec<(StepRef, Verdict)>>,
    pub now: i64,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// How a step's key came out.
enum Keyed {
    /// The inputs (holding only the digest of a COPY's files: a hit needs no more).
    Known(Box<Inputs>),
    /// Explaining: the key depends on a stage that will be rebuilt.
    Pending(String),
}

impl Session<'_> {
    fn label(&self, index: usize) -> String {
        self.prepared.plan.stages[index].label()
    }

    /// The stage as progress shows it, as BuildKit does: its name, `stage-N` for an
    /// unnamed one, nothing in a build of one stage.
    fn progress_label(&self, index: usize) -> String {
        let stages = &self.prepared.plan.stages;
        match &stages[index].name {
            _ if stages.len() == 1 => String::new(),
            Some(name) => name.clone(),
            None => format!("stage-{index}"),
        }
    }

    /// The result of a stage this one depends on; the scheduler has finished it.
    fn stage_result(&self, index: usize) -> Result<StageResult, BuildError> {
        lock(&self.done)
            .get(&index)
            .cloned()
            .ok_or(BuildError::StageNotBuilt(index))
    }

    fn note(&self, step: &StepRef, verdict: Verdict) {
        if self.mode == Mode::Explain {
            lock(&self.explained).push((step.clone(), verdict));
        }
    }

    /// Builds (or explains) stage `index`; its result goes to `done`.
    pub(crate) fn run_stage(&self, index: usize, turn: &Turn<'_>) -> Result<(), BuildError> {
        let plan = &self.prepared.plan;
        let stage = &plan.stages[index];
        let label = stage.label();
        let expanded = &self.prepared.expanded[&index];
        let total = expanded.steps.len();
        let (mut result, identity) = self.start(index)?;
        let own_history = result.history.len();
        let own_steps = result.steps.len();

        let from_ref = StepRef {
            stage: index,
            stage_label: label.clone(),
            shown_stage: self.progress_label(index),
            number: 0,
            total,
            text: stage.from_text.clone(),
        };
        if self.mode == Mode::Build {
            self.reporter.report(Event::StepStarted(from_ref.clone()));
        }
        let from_site = cache::sites(&self.prepared.project, &label, "FROM", 0, 0)[0].clone();
        let previous = self.store.cache_site(&from_site)?;
        let base_change = match (&result.pending, previous) {
            (Some(pending), _) => Some(pending.clone()),
            (None, Some(previous)) if previous != identity => {
                Some(cache::base_change(&previous, &identity))
            }
            _ => None,
        };
        match &base_change {
            Some(change) => {
                self.note(&from_ref, Verdict::BaseChanged(change.clone()));
                if self.mode == Mode::Build {
                    self.reporter.report(Event::StepCache {
                        step: from_ref.clone(),
                        status: CacheStatus::Miss(change.clone()),
                    });
                }
            }
            None => self.note(&from_ref, Verdict::Unchanged),
        }
        if self.mode == Mode::Build {
            lock(&self.sites).push((from_site.clone(), identity.clone()));
            self.reporter.report(Event::StepDone {
                step: from_ref,
                elapsed: std::time::Duration::ZERO,
                layer_size: None,
                cached: true,
            });
        }

        let mut chain = vec![Link::From {
            site: from_site,
            identity,
        }];
        let mut first_ran: Option<usize> = None;
        let mut occurrences: BTreeMap<&str, usize> = BTreeMap::new();
        let forced = self.forced_miss(index);
        for step in &expanded.steps {
            if self.options.cancel.is_cancelled() {
                return Err(BuildError::Cancelled);
            }
            for needed in stages_needed(step) {
                if !turn.wait_for(needed) {
                    return Err(BuildError::Cancelled);
                }
            }
            let step_ref = StepRef {
                stage: index,
                stage_label: label.clone(),
                shown_stage: self.progress_label(index),
                number: step.number,
                total,
                text: shown_text(step),
            };
            let occurrence = occurrences.entry(step.text.as_str()).or_default();
            *occurrence += 1;
            let sites = cache::sites(
                &self.prepared.project,
                &label,
                &step.text,
                step.number,
                *occurrence,
            );
            if self.mode == Mode::Build {
                self.reporter.report(Event::StepStarted(step_ref.clone()));
            }
            let started = Instant::now();

            if matches!(step.kind, StepKind::Config) {
                self.note(&step_ref, Verdict::ConfigOnly);
                self.push_history(&mut result, &label, step, None, None, None);
                if self.mode == Mode::Build {
                    self.reporter.report(Event::StepDone {
                        step: step_ref,
                        elapsed: started.elapsed(),
                        layer_size: None,
                        cached: false,
                    });
                }
                continue;
            }
            if let (Mode::Explain, Some(pending)) = (self.mode, &result.pending) {
                self.note(&step_ref, Verdict::Runs(pending.clone()));
                continue;
            }
            let Some(state) = result.state else {
                return Err(step_error(step, "internal error: the stage has no state"));
            };
            let mut inputs = match self.inputs(step, state)? {
                Keyed::Known(inputs) => *inputs,
                Keyed::Pending(reason) => {
                    self.note(&step_ref, Verdict::Runs(reason));
                    result.pending =
                        Some(format!("an earlier step will run (step {})", step.number));
                    continue;
                }
            };
            let key = inputs.key();

            let hit = match &forced {
                Some(_) => None,
                None => self.lookup(&key)?,
            };
            if let Some(record) = hit {
                self.note(&step_ref, Verdict::Cached);
                if self.mode == Mode::Build {
                    self.reporter.report(Event::StepCache {
                        step: step_ref.clone(),
                        status: CacheStatus::Hit,
                    });
                    lock(&self.sites).push((sites[0].clone(), key.clone()));
                    lock(&self.sites).push((sites[1].clone(), key.clone()));
                    lock(&self.used).push(key.clone());
                }
                let layer_size = record.layer.as_ref().map(|l| l.size);
                self.push_history(
                    &mut result,
                    &label,
                    step,
                    Some(key.clone()),
                    record.layer,
                    Some(record.created),
                );
                chain.push(Link::Step {
                    number: step.number,
                    sites,
                    key,
                });
                if self.mode == Mode::Build {
                    self.reporter.report(Event::StepDone {
                        step: step_ref,
                        elapsed: started.elapsed(),
                        layer_size,
                        cached: true,
                    });
                }
                continue;
            }

            // A miss lists the files behind the digest: the explanation compares them,
            // and the record keeps them.
            if let StepKind::Copy(copy) = &step.kind {
                if copy.from == CopyFrom::Context {
                    inputs.set_files(&self.context_files(step, copy, true)?);
                }
            }
            let reason = match &forced {
                Some(reason) => reason.clone(),
                None => self.miss_reason(&sites, &key, &inputs, &chain, first_ran)?,
            };
            chain.push(Link::Step {
                number: step.number,
                sites: sites.clone(),
                key: key.clone(),
            });
            if self.mode == Mode::Explain {
                self.note(&step_ref, Verdict::Runs(reason));
                result.pending = Some(format!("an earlier step will run (step {})", step.number));
                continue;
            }
            self.reporter.report(Event::StepCache {
                step: step_ref.clone(),
                status: CacheStatus::Miss(reason),
            });
            first_ran.get_or_insert(step.number);
            let layer = match &step.kind {
                StepKind::Workdir { path, user } => self.workdir(&result, step, path, user)?,
                StepKind::Copy(copy) => {
                    let reuse = self.previous_snapshot(&sites)?;
                    Some(self.copy(&result, step, copy, reuse.as_deref())?)
                }
                StepKind::Run(run_step) => {
                    turn.limited(|| self.run_step(&result, step, run_step, &step_ref))?
                }
                StepKind::Config => None,
            };
            let created = history_time(self.options.source_date_epoch);
            self.store.put_cache_record(&CacheRecord {
                key: key.clone(),
                kind: step_kind_name(step).into(),
                step: one_line(&step.text),
                stage: self.record_stage(&label),
                layer: layer.clone(),
                created: created.clone(),
                created_at: self.now,
                last_used: self.now,
                inputs: serde_json::to_string(&inputs).map_err(|source| BuildError::Record {
                    what: "a cached step's inputs",
                    source,
                })?,
            })?;
            lock(&self.sites).push((sites[0].clone(), key.clone()));
            lock(&self.sites).push((sites[1].clone(), key.clone()));
            lock(&self.used).push(key.clone());
            let layer_size = layer.as_ref().map(|l| l.size);
            self.push_history(&mut result, &label, step, Some(key), layer, Some(created));
            self.reporter.report(Event::StepDone {
                step: step_ref,
                elapsed: started.elapsed(),
                layer_size,
                cached: false,
            });
        }
        date_config_steps(
            &mut result.history[own_history..],
            &result.steps[own_steps..],
        );
        result.config = expanded.config.clone();
        result.author = expanded.author.clone();
        if result.pending.is_some() {
            result.pending = Some(format!("stage {label} will be rebuilt"));
            result.state = None;
        }
        lock(&self.done).insert(index, result);
        Ok(())
    }

    /// The stage's starting point, and its identity as its FROM site records it.
    fn start(&self, index: usize) -> Result<(StageResult, String), BuildError> {
        let stage = &self.prepared.plan.stages[index];
        let epoch = history_time(Some(self.options.source_date_epoch.unwrap_or(0)));
        Ok(match &stage.base {
            Base::Scratch => {
                let host = Platform::host();
                (
                    StageResult {
                        layers: Vec::new(),
                        history: Vec::new(),
                        config: ContainerConfig::default(),
                        author: None,
                        architecture: host.architecture,
                        os: host.os,
                        variant: host.variant,
                        state: Some(State::base("scratch")),
                        last_time: epoch,
                        steps: Vec::new(),
                        pending: None,
                    },
                    "scratch".into(),
                )
            }
            Base::Image(_) => {
                let image = &self.prepared.bases[&index];
                // By content: the config digest (which holds the diff_ids), not the
                // manifest's, so the cache follows an image through save/load and
                // recompression, which give it a new manifest.
                let identity = format!("image {}", image.id);
                let last_time = image
                    .config
                    .history
                    .iter()
                    .rev()
                    .find_map(|h| h.created.clone())
                    .or_else(|| image.config.created.clone())
                    .unwrap_or(epoch);
                (
                    StageResult {
                        layers: image.layers.clone(),
                        history: image.config.history.clone(),
                        config: image.config.config.clone(),
                        author: image.config.author.clone(),
                        architecture: image.config.architecture.clone(),
                        os: image.config.os.clone(),
                        variant: image.config.variant.clone(),
                        state: Some(State::base(&identity)),
                        last_time,
                        steps: Vec::new(),
                        pending: None,
                    },
                    identity,
                )
            }
            Base::Stage(parent) => {
                let result = self.stage_result(*parent)?;
                let state = result
                    .state
                    .map_or_else(|| "pending".to_string(), |s| s.hex());
                let identity = format!("stage {} {state}", self.label(*parent));
                (result, identity)
            }
        })
    }

    /// Records a step's history entry and its layer.
    fn push_history(
        &self,
        result: &mut StageResult,
        label: &str,
        step: &Step,
        key: Option<String>,
        layer: Option<LayerInfo>,
        created: Option<String>,
    ) {
        let created = match (&layer, created) {
            (Some(_), Some(created)) => {
                result.last_time = created.clone();
                created
            }
            _ => result.last_time.clone(),
        };
        result.history.push(History {
            created: Some(created),
            created_by: Some(step.created_by.clone()),
            author: None,
            comment: Some("buildkit.dockerfile.v0".into()),
            empty_layer: layer.is_none().then_some(true),
        });
        if let Some(layer) = layer {
            result.state = result.state.map(|s| s.with_layer(&layer.diff_id));
            result.layers.push(layer);
        }
        result.steps.push(BuiltStep {
            stage: label.to_string(),
            step: one_line(&step.text),
            key,
        });
    }

    /// `--no-cache` or `--no-cache-filter` naming this stage.
    fn forced_miss(&self, index: usize) -> Option<String> {
        if self.options.no_cache {
            return Some("--no-cache".into());
        }
        let stage = &self.prepared.plan.stages[index];
        self.options
            .no_cache_filter
            .iter()
            .find(|f| {
                stage
                    .name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(f))
                    || **f == index.to_string()
            })
            .map(|f| format!("--no-cache-filter {f}"))
    }

    fn record_stage(&self, label: &str) -> String {
        let file = std::path::Path::new(&self.options.dockerfile_name)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.options.dockerfile_name.clone());
        format!("{file}:{label}")
    }

    /// What goes into the key of a step that can change files.
    fn inputs(&self, step: &Step, state: State) -> Result<Keyed, BuildError> {
        let mut inputs = Inputs {
            settings: self.prepared.settings.clone(),
            parent: state.hex(),
            step: cache::canonical_step(step),
            ..Inputs::default()
        };
        let add_source = |inputs: &mut Inputs, from: &CopyFrom| -> Result<(), String> {
            match from {
                CopyFrom::Context => {}
                CopyFrom::Stage(i) => {
                    let label = self.label(*i);
                    match self.stage_result(*i).ok().and_then(|r| r.state) {
                        Some(state) => {
                            inputs.sources.insert(format!("stage {label}"), state.hex());
                        }
                        None => return Err(format!("stage {label} will be rebuilt")),
                    }
                }
                CopyFrom::Image(reference) => {
                    let name = reference.familiar();
                    if let Some(image) = self.prepared.images.get(&name) {
                        inputs
                            .sources
                            .insert(format!("image {name}"), image.id.to_string());
                    }
                }
            }
            Ok(())
        };
        match &step.kind {
            StepKind::Copy(copy) => {
                if copy.from == CopyFrom::Context {
                    let files = self.context_files(step, copy, false)?;
                    inputs.files_digest = Some(cache::hex(&files.digest));
                } else if let Err(pending) = add_source(&mut inputs, &copy.from) {
                    return Ok(Keyed::Pending(pending));
                }
            }
            StepKind::Run(run_step) => {
                let (args, env) = cache::run_environment(run_step);
                inputs.args = args;
                inputs.env = env;
                for mount in &run_step.mounts {
                    let (from, source, target) = match mount {
                        Mount::Bind {
                            from,
                            source,
                            target,
                            ..
                        } => (from, source, target),
                        Mount::Cache {
                            from: Some(from),
                            source,
                            target,
                            ..
                        } => (from, source, target),
                        _ => continue,
                    };
                    if *from == CopyFrom::Context {
                        let files = self.context_tree(step, source)?;
                        inputs
                            .sources
                            .insert(format!("mount {target}"), cache::hex(&files.digest));
                    } else if let Err(pending) = add_source(&mut inputs, from) {
                        return Ok(Keyed::Pending(pending));
                    }
                }
            }
            StepKind::Workdir { .. } | StepKind::Config => {}
        }
        Ok(Keyed::Known(Box::new(inputs)))
    }

    /// The context files a COPY or ADD selects, hashed.
    fn context_files(
        &self,
        step: &Step,
        copy: &graph::CopyStep,
        detail: bool,
    ) -> Result<FileInputs, BuildError> {
        let scratch = self.store.staging_dir("key")?;
        let request = CopyRequest {
            step: copy,
            source: Source::Context(&self.prepared.context),
            dest_root: None,
            source_date_epoch: self.options.source_date_epoch,
            now: 0,
            scratch: scratch.path(),
            extract_limits: &ExtractLimits::for_store(self.store),
            for_key: true,
            hasher: Some(&self.hasher),
        };
        copy::key_inputs(&request, detail).map_err(|m| step_error(step, m))
    }

    /// The context files under `source`, as a bind mount shows them, hashed.
    fn context_tree(&self, step: &Step, source: &str) -> Result<FileInputs, BuildError> {
        let tree = plain_copy(vec![CopySource::Path(source.to_string())], "/", None);
        self.context_files(step, &tree, false)
    }

    /// A usable record for `key`: from the store, or from a `--cache-from` directory.
    fn lookup(&self, key: &str) -> Result<Option<CacheRecord>, BuildError> {
        if let Some(record) = self.store.cache_record(key)? {
            let intact = record
                .layer
                .as_ref()
                .is_none_or(|l| self.store.has_blob(&l.blob));
            if intact {
                return Ok(Some(record));
            }
            if self.mode == Mode::Build {
                self.store.delete_cache_records(&[key.to_string()])?;
            }
        }
        for imported in &self.imported {
            let found = match self.mode {
                Mode::Build => imported.take(self.store, key, self.now)?,
                Mode::Explain => imported.peek(key),
            };
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// Why a step whose key has no record missed.
    fn miss_reason(
        &self,
        sites: &[String; 2],
        key: &str,
        inputs: &Inputs,
        chain: &[Link],
        first_ran: Option<usize>,
    ) -> Result<String, BuildError> {
        let previous_key = match self.store.cache_site(&sites[0])? {
            Some(k) => Some(k),
            None => self.store.cache_site(&sites[1])?,
        };
        let Some(previous_key) = previous_key else {
            return Ok("not built before".into());
        };
        let previous = match self.store.cache_record_full(&previous_key)? {
            Some(record) => serde_json::from_str::<Inputs>(&record.inputs).ok(),
            None if previous_key == key => {
                return Ok("its cached result was removed (pruned)".into())
            }
            None => {
                return Ok(self.upstream_change(chain, first_ran)?.unwrap_or_else(|| {
                    "not in the cache (the record of its last build was pruned)".into()
                }))
            }
        };
        let upstream = match &previous {
            Some(p) if p.parent != inputs.parent => self
                .upstream_change(chain, first_ran)?
                .unwrap_or_else(|| "an earlier step changed".into()),
            _ => String::new(),
        };
        Ok(cache::explain_miss(previous.as_ref(), inputs, &upstream))
    }

    /// The first link of the chain that differs from the last build, or the first step
    /// that ran in this one.
    fn upstream_change(
        &self,
        chain: &[Link],
        first_ran: Option<usize>,
    ) -> Result<Option<String>, BuildError> {
        for link in chain {
            match link {
                Link::From { site, identity } => {
                    if let Some(previous) = self.store.cache_site(site)? {
                        if previous != *identity {
                            return Ok(Some(cache::base_change(&previous, identity)));
                        }
                    }
                }
                Link::Step { number, sites, key } => {
                    let previous = match self.store.cache_site(&sites[0])? {
                        Some(k) => Some(k),
                        None => self.store.cache_site(&sites[1])?,
                    };
                    if previous.is_some_and(|p| p != *key) {
                        return Ok(Some(format!("an earlier step changed (step {number})")));
                    }
                }
            }
        }
        Ok(first_ran.map(|number| format!("an earlier step changed (step {number})")))
    }

    /// The stage's filesystem so far, mounted, or `None` while it is empty.
    fn view(&self, layers: &[LayerInfo]) -> Result<Option<RootView>, BuildError> {
        if layers.is_empty() {
            return Ok(None);
        }
        RootView::open(self.store, layers).map(Some)
    }

    fn layers_of(&self, from: &CopyFrom) -> Result<Vec<LayerInfo>, BuildError> {
        Ok(match from {
            CopyFrom::Context => Vec::new(),
            CopyFrom::Stage(i) => self.stage_result(*i)?.layers,
            // `prepare` looked up every image a step takes files from.
            CopyFrom::Image(reference) => self
                .prepared
                .images
                .get(&reference.familiar())
                .map(|i| i.layers.clone())
                .unwrap_or_default(),
        })
    }

    /// The snapshot of what this step's site made last, if it is still there.
    fn previous_snapshot(&self, sites: &[String; 2]) -> Result<Option<PathBuf>, BuildError> {
        for site in sites {
            let Some(key) = self.store.cache_site(site)? else {
                continue;
            };
            let layer = self.store.cache_record(&key)?.and_then(|r| r.layer);
            return Ok(layer
                .map(|l| self.store.snapshot_dir(&l.diff_id))
                .filter(|dir| dir.is_dir()));
        }
        Ok(None)
    }

    fn copy(
        &self,
        result: &StageResult,
        step: &Step,
        copy: &graph::CopyStep,
        reuse: Option<&std::path::Path>,
    ) -> Result<LayerInfo, BuildError> {
        let dest_view = self.view(&result.layers)?;
        let from_view;
        let source = match &copy.from {
            CopyFrom::Context => Source::Context(&self.prepared.context),
            other => {
                from_view = self.view(&self.layers_of(other)?)?;
                match &from_view {
                    Some(view) => Source::Root(view.root()),
                    None => {
                        let what = match other {
                            CopyFrom::Stage(i) => format!("stage {}", self.label(*i)),
                            CopyFrom::Image(r) => format!("image {}", r.familiar()),
                            CopyFrom::Context => unreachable!(),
                        };
                        return Err(step_error(step, format!("{what} has no files to copy")));
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
            extract_limits: &ExtractLimits::for_store(self.store),
            for_key: false,
            hasher: Some(&self.hasher),
        };
        let plan = copy::plan(&request).map_err(|m| step_error(step, m))?;
        copy::write_layer(
            self.store,
            plan,
            self.options.compression,
            self.options.source_date_epoch,
            reuse,
        )
    }

    /// WORKDIR creates its directory (owned by the USER in effect) when the image lacks
    /// it; then it is a layer, otherwise only a config change.
    fn workdir(
        &self,
        result: &StageResult,
        step: &Step,
        path: &str,
        user: &str,
    ) -> Result<Option<LayerInfo>, BuildError> {
        let view = self.view(&result.layers)?;
        let root = view.as_ref().map(RootView::root);
        if root.is_some_and(|r| view::resolve_in_root(r, path, true).is_dir()) {
            return Ok(None);
        }
        let scratch = self.store.staging_dir("scratch")?;
        let mkdir = plain_copy(
            Vec::new(),
            &format!("{}/", path.trim_end_matches('/')),
            (!user.is_empty()).then(|| user.to_string()),
        );
        let request = CopyRequest {
            step: &mkdir,
            source: Source::Context(&self.prepared.context),
            dest_root: root,
            source_date_epoch: self.options.source_date_epoch,
            now: now_seconds(),
            scratch: scratch.path(),
            extract_limits: &ExtractLimits::for_store(self.store),
            for_key: false,
            hasher: Some(&self.hasher),
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
            None,
        )
        .map(Some)
    }

    fn run_step(
        &self,
        result: &StageResult,
        step: &Step,
        run_step: &graph::RunStep,
        step_ref: &StepRef,
    ) -> Result<Option<LayerInfo>, BuildError> {
        let mut open_view = |from: &CopyFrom| -> Result<Option<RootView>, String> {
            let layers = self.layers_of(from).map_err(|e| e.to_string())?;
            if layers.is_empty() {
                return Ok(None);
            }
            RootView::open(self.store, &layers)
                .map(Some)
                .map_err(|e| e.to_string())
        };
        run::run(
            run::RunContext {
                store: self.store,
                layers: &result.layers,
                context_root: &self.prepared.context.root,
                compression: self.options.compression,
                source_date_epoch: self.options.source_date_epoch,
                reporter: self.reporter,
                step_ref: step_ref.clone(),
                cancel: &self.options.cancel,
                open_view: &mut open_view,
            },
            step,
            run_step,
        )
    }
}

/// A COPY from the context with no options but `--chown`, for the builder's own use.
fn plain_copy(sources: Vec<CopySource>, dest: &str, chown: Option<String>) -> graph::CopyStep {
    graph::CopyStep {
        add: false,
        sources,
        dest: dest.to_string(),
        from: CopyFrom::Context,
        chown,
        chmod: None,
        link: false,
        parents: false,
        excludes: Vec::new(),
        checksum: None,
        keep_git_dir: false,
        workdir: "/".into(),
    }
}

/// The stages a step takes files from.
fn stages_needed(step: &Step) -> Vec<usize> {
    match &step.kind {
        StepKind::Copy(copy) => match copy.from {
            CopyFrom::Stage(i) => vec![i],
            _ => Vec::new(),
        },
        StepKind::Run(run) => run
            .mounts
            .iter()
            .filter_map(|m| match m {
                Mount::Bind {
                    from: CopyFrom::Stage(i),
                    ..
                }
                | Mount::Cache {
                    from: Some(CopyFrom::Stage(i)),
                    ..
                } => Some(*i),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn step_kind_name(step: &Step) -> &'static str {
    match &step.kind {
        StepKind::Run(_) => "RUN",
        StepKind::Copy(c) if c.add => "ADD",
        StepKind::Copy(_) => "COPY",
        StepKind::Workdir { .. } => "WORKDIR",
        StepKind::Config => "CONFIG",
    }
}

/// Config-only steps (ENV, LABEL, CMD...) are not cached, so their history time is
/// borrowed: from the stage's next step that is (a build made a minute ago shows as a
/// minute ago, not as old as its base image), else from the step before them. Cached
/// times make a rebuild from the cache give the same image id.
fn date_config_steps(history: &mut [History], steps: &[BuiltStep]) {
    let mut next_time: Option<String> = None;
    for (entry, step) in history.iter_mut().zip(steps).rev() {
        if step.key.is_some() {
            next_time = entry.created.clone();
        } else if let Some(time) = &next_time {
            entry.created = Some(time.clone());
        }
    }
}

/// A step as progress shows it: with its variables expanded (RUN as written: its
/// variables are the shell's to expand).
fn shown_text(step: &Step) -> String {
    match &step.kind {
        StepKind::Run(_) => step.text.clone(),
        _ => step
            .created_by
            .strip_suffix(" # buildkit")
            .unwrap_or(&step.created_by)
            .to_string(),
    }
}
