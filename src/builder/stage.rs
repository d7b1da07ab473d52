//! One stage of a build, step by step. Each step is planned (`plan`: its key, looked
//! up, and a verdict); a hit is restored, a miss is reported with its reason, run by the
//! executor (`execute`) and recorded at once, so a build stopped half-way keeps what it
//! finished. Config-only steps are computed from the Dockerfile and never cached. In
//! explain mode nothing runs: the verdicts are noted as they are.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

use super::cache::{self, Inputs, State};
use super::hash::ContextHasher;
use super::plan::{StagePlanner, StepPlan};
use super::schedule::Turn;
use super::shared_cache::ImportedCache;
use super::{
    history_time, one_line, step_failure, BuildError, BuildOptions, CacheStatus, Event, Prepared,
    Reporter, StepFailure, StepRef, Verdict,
};
use crate::graph::{Base, CopyFrom, CopySource, Mount, Step, StepKind};
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

impl StageResult {
    /// A stage `FROM scratch`: nothing yet, for the stage's platform.
    pub(super) fn scratch(time: String, platform: Platform) -> StageResult {
        StageResult {
            layers: Vec::new(),
            history: Vec::new(),
            config: ContainerConfig::default(),
            author: None,
            architecture: platform.architecture,
            os: platform.os,
            variant: platform.variant,
            state: Some(State::base("scratch")),
            last_time: time,
            steps: Vec::new(),
            pending: None,
        }
    }
}

/// One step of a built image, for `lade cache inspect IMAGE`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct BuiltStep {
    pub stage: String,
    pub step: String,
    pub key: Option<String>,
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
    /// The secrets and ssh agents RUN steps mount.
    pub providers: &'a super::Providers,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Session<'_> {
    pub(super) fn label(&self, index: usize) -> String {
        self.prepared.plan.stages[index].label()
    }

    /// The stage as progress shows it, as BuildKit does: its name, `stage-N` for an
    /// unnamed one, nothing in a build of one stage.
    fn progress_label(&self, index: usize) -> String {
        let stages = &self.prepared.plan.stages;
        let label = match &stages[index].name {
            _ if stages.len() == 1 => String::new(),
            Some(name) => name.clone(),
            None => format!("stage-{index}"),
        };
        // A build for several platforms says which one a step is for, as BuildKit does.
        match &self.prepared.shown_platform {
            Some(platform) if label.is_empty() => platform.clone(),
            Some(platform) => format!("{platform} {label}"),
            None => label,
        }
    }

    /// The result of a stage this one depends on; the scheduler has finished it.
    pub(super) fn stage_result(&self, index: usize) -> Result<StageResult, BuildError> {
        lock(&self.done)
            .get(&index)
            .cloned()
            .ok_or(BuildError::StageNotBuilt(index))
    }

    /// Builds (or explains) stage `index`; its result goes to `done`. Each step is
    /// planned (`plan`); explaining notes the verdict, building restores a hit and has
    /// the executor run a miss, whose result is recorded at once.
    pub(crate) fn run_stage(&self, index: usize, turn: &Turn<'_>) -> Result<(), BuildError> {
        let plan = &self.prepared.plan;
        let stage = &plan.stages[index];
        let label = stage.label();
        let expanded = &self.prepared.expanded[&index];
        let total = expanded.steps.len();
        let (mut result, identity) = self.start(index)?;
        let own_history = result.history.len();
        let own_steps = result.steps.len();
        let step_ref = |number: usize, text: String| StepRef {
            stage: index,
            stage_label: label.clone(),
            shown_stage: self.progress_label(index),
            number,
            total,
            text,
        };

        let from_ref = step_ref(0, stage.from_text.clone());
        let from_site = cache::sites(&self.prepared.project, &label, "FROM", 0, 0)[0].clone();
        self.plan_from(&from_ref, &from_site, &identity, result.pending.as_deref())?;
        let mut planner = StagePlanner::new(self, index, from_site, identity);
        let stop_look_ahead = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let built = self.run_steps(
                &expanded.steps,
                &mut planner,
                &mut result,
                turn,
                &step_ref,
                &label,
                &|from| {
                    let (later, stop) = (&expanded.steps[from..], &stop_look_ahead);
                    scope.spawn(move || self.hash_ahead(later, stop));
                },
            );
            stop_look_ahead.store(true, Ordering::Relaxed);
            built
        })?;
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

    /// The steps of a stage, each planned, then restored or run. At the first RUN or COPY
    /// that runs, `look_ahead` is given the position of the steps after it: every one of
    /// them misses too (a key includes its parent's), so their context files are hashed
    /// while it runs.
    #[allow(clippy::too_many_arguments)]
    fn run_steps<'p>(
        &self,
        steps: &'p [Step],
        planner: &mut StagePlanner<'_, 'p>,
        result: &mut StageResult,
        turn: &Turn<'_>,
        step_ref: &dyn Fn(usize, String) -> StepRef,
        label: &str,
        look_ahead: &dyn Fn(usize),
    ) -> Result<(), BuildError> {
        let mut looking_ahead = false;
        for (position, step) in steps.iter().enumerate() {
            if self.options.cancel.is_cancelled() {
                return Err(BuildError::Cancelled);
            }
            for needed in stages_needed(step) {
                if !turn.wait_for(needed) {
                    return Err(BuildError::Cancelled);
                }
            }
            let step_ref = step_ref(step.number, shown_text(step));
            let sites = planner.sites(step);
            let started = Instant::now();
            if self.mode == Mode::Build {
                self.reporter.report(Event::StepStarted(step_ref.clone()));
            }
            let verdict = planner.plan(step, &sites, result)?;
            if self.mode == Mode::Explain {
                self.explain_step(result, label, step, &step_ref, verdict);
                continue;
            }
            let (key, layer, created, cached) = match verdict {
                StepPlan::ConfigOnly => (None, None, None, false),
                StepPlan::Hit { key, record } => {
                    self.reporter.report(Event::StepCache {
                        step: step_ref.clone(),
                        status: CacheStatus::Hit,
                    });
                    self.used(&sites, &key);
                    (Some(key), record.layer, Some(record.created), true)
                }
                StepPlan::Miss {
                    key,
                    inputs,
                    reason,
                } => {
                    self.reporter.report(Event::StepCache {
                        step: step_ref.clone(),
                        status: CacheStatus::Miss(reason),
                    });
                    planner.ran(step.number);
                    // From the first step that takes time to run (not a WORKDIR, after
                    // which the next step is planned at once and would be hashed twice).
                    let slow = matches!(step.kind, StepKind::Run(_) | StepKind::Copy(_));
                    if slow && !looking_ahead {
                        looking_ahead = true;
                        look_ahead(position + 1);
                    }
                    let layer = self.execute(result, step, &step_ref, &sites, turn)?;
                    let created = self.record(label, step, &key, &inputs, layer.clone())?;
                    self.used(&sites, &key);
                    (Some(key), layer, Some(created), false)
                }
                StepPlan::Pending { .. } => {
                    return Err(step_failure(step, StepFailure::NoState));
                }
            };
            let layer_size = layer.as_ref().map(|l| l.size);
            self.push_history(result, label, step, key, layer, created);
            self.reporter.report(Event::StepDone {
                step: step_ref,
                elapsed: started.elapsed(),
                layer_size,
                cached,
            });
        }
        Ok(())
    }

    /// Hashes the build-context files of `steps`' COPY instructions (into the session's
    /// context hasher, where their keys then find them) while an earlier step runs.
    /// Errors are left for the step's own planning to report; `stop` ends the work
    /// between steps once the stage is over.
    fn hash_ahead(&self, steps: &[Step], stop: &AtomicBool) {
        for step in steps {
            if stop.load(Ordering::Relaxed) || self.options.cancel.is_cancelled() {
                return;
            }
            let StepKind::Copy(copy) = &step.kind else {
                continue;
            };
            // ADD may download: only plain context paths are looked at ahead.
            let local = copy
                .sources
                .iter()
                .all(|source| matches!(source, CopySource::Path(_)));
            if copy.from != CopyFrom::Context || copy.add || !local {
                continue;
            }
            super::plan::hash_context_ahead(self, copy);
        }
    }

    /// A stage's FROM: its base compared with the last build's, reported (building) or
    /// noted (explaining); a build records it.
    fn plan_from(
        &self,
        from_ref: &StepRef,
        from_site: &str,
        identity: &str,
        pending: Option<&str>,
    ) -> Result<(), BuildError> {
        if self.mode == Mode::Build {
            self.reporter.report(Event::StepStarted(from_ref.clone()));
        }
        let previous = self.store.cache_site(from_site)?;
        let base_change = match (pending, previous) {
            (Some(pending), _) => Some(pending.to_string()),
            (None, Some(previous)) if previous != identity => {
                Some(cache::base_change(&previous, identity))
            }
            _ => None,
        };
        if self.mode == Mode::Explain {
            let verdict = match base_change {
                Some(change) => Verdict::BaseChanged(change),
                None => Verdict::Unchanged,
            };
            lock(&self.explained).push((from_ref.clone(), verdict));
            return Ok(());
        }
        if let Some(change) = base_change {
            self.reporter.report(Event::StepCache {
                step: from_ref.clone(),
                status: CacheStatus::Miss(change),
            });
        }
        lock(&self.sites).push((from_site.to_string(), identity.to_string()));
        self.reporter.report(Event::StepDone {
            step: from_ref.clone(),
            elapsed: std::time::Duration::ZERO,
            layer_size: None,
            cached: true,
        });
        Ok(())
    }

    /// `--explain`: the verdict noted as it is; what the step would give is added to
    /// the stage only when it is known (config, or restored from the cache).
    fn explain_step(
        &self,
        result: &mut StageResult,
        label: &str,
        step: &Step,
        step_ref: &StepRef,
        verdict: StepPlan,
    ) {
        let noted = match verdict {
            StepPlan::ConfigOnly => {
                self.push_history(result, label, step, None, None, None);
                Verdict::ConfigOnly
            }
            StepPlan::Hit { key, record } => {
                let created = Some(record.created);
                self.push_history(result, label, step, Some(key), record.layer, created);
                Verdict::Cached
            }
            StepPlan::Miss { reason, .. } | StepPlan::Pending { reason } => {
                result.pending.get_or_insert_with(|| {
                    format!(
                        "an earlier step will run (step {})",
                        super::plan::shown_step_number(step.number)
                    )
                });
                Verdict::Runs(reason)
            }
        };
        lock(&self.explained).push((step_ref.clone(), noted));
    }

    /// A step's key is this build's answer for its sites, and its record was used.
    fn used(&self, sites: &[String; 2], key: &str) {
        let mut recorded = lock(&self.sites);
        recorded.push((sites[0].clone(), key.to_string()));
        recorded.push((sites[1].clone(), key.to_string()));
        lock(&self.used).push(key.to_string());
    }

    /// Records what a step that ran made, at once (a build stopped later keeps it); its
    /// history time.
    fn record(
        &self,
        label: &str,
        step: &Step,
        key: &str,
        inputs: &Inputs,
        layer: Option<LayerInfo>,
    ) -> Result<String, BuildError> {
        let created = history_time(self.options.source_date_epoch);
        self.store.put_cache_record(&CacheRecord {
            key: key.to_string(),
            kind: step_kind_name(step).into(),
            step: one_line(&step.text),
            stage: self.record_stage(label),
            layer,
            created: created.clone(),
            created_at: self.now,
            last_used: self.now,
            inputs: serde_json::to_string(inputs).map_err(|source| BuildError::Record {
                what: "a cached step's inputs",
                source,
            })?,
        })?;
        Ok(created)
    }

    /// The stage's starting point, and its identity as its FROM site records it.
    fn start(&self, index: usize) -> Result<(StageResult, String), BuildError> {
        let stage = &self.prepared.plan.stages[index];
        let epoch = history_time(Some(self.options.source_date_epoch.unwrap_or(0)));
        Ok(match &stage.base {
            Base::Scratch => (
                StageResult::scratch(epoch, self.prepared.platform(index)),
                "scratch".into(),
            ),
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
                // An image whose config names no platform is taken as the stage's.
                let platform = if image.config.architecture.is_empty() {
                    self.prepared.platform(index)
                } else {
                    Platform::of_config(&image.config)
                };
                (
                    StageResult {
                        layers: image.layers.clone(),
                        history: image.config.history.clone(),
                        config: image.config.config.clone(),
                        author: image.config.author.clone(),
                        architecture: platform.architecture,
                        os: platform.os,
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

    fn record_stage(&self, label: &str) -> String {
        let file = std::path::Path::new(&self.options.dockerfile_name)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.options.dockerfile_name.clone());
        format!("{file}:{label}")
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
        StepKind::Run(_) => step.text.to_string(),
        _ => step
            .created_by
            .strip_suffix(" # buildkit")
            .unwrap_or(&step.created_by)
            .to_string(),
    }
}
