//! The executor: runs a step the planning phase found missing from the cache and gives
//! its layer. COPY and ADD read their sources through mounted views of the stages or
//! images they name and write one layer (sharing unchanged files with the snapshot of
//! the site's last build); WORKDIR makes its directory when the image lacks it; RUN
//! runs in the sandbox (`run`).

use std::path::{Path, PathBuf};

use super::copy::{self, CopyRequest, Source};
use super::plan::plain_copy;
use super::run;
use super::schedule::Turn;
use super::stage::{Session, StageResult};
use super::view::{self, RootView};
use super::{now_seconds, step_failure, BuildError, StepFailure, StepRef};
use crate::graph::{self, CopyFrom, Step, StepKind};
use crate::layers::ExtractLimits;
use crate::store::LayerInfo;

impl Session<'_> {
    /// Runs `step`, which follows `result`; its layer, or `None` when it changed no
    /// file. `sites` are where its last build was recorded.
    pub(super) fn execute(
        &self,
        result: &StageResult,
        step: &Step,
        step_ref: &StepRef,
        sites: &[String; 2],
        turn: &Turn<'_>,
    ) -> Result<Option<LayerInfo>, BuildError> {
        match &step.kind {
            StepKind::Workdir { path, user } => self.workdir(result, step, path, user),
            StepKind::Copy(copy) => {
                let reuse = self.previous_snapshot(sites)?;
                self.copy(result, step, copy, reuse.as_deref()).map(Some)
            }
            StepKind::Run(run_step) => {
                turn.limited(|| self.run_step(result, step, run_step, step_ref))
            }
            StepKind::Config => Ok(None),
        }
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
        reuse: Option<&Path>,
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
                            CopyFrom::Context => "the build context".into(),
                        };
                        return Err(step_failure(step, StepFailure::NothingToCopy { what }));
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
            hasher: Some(&self.hasher),
        };
        let plan = copy::plan(&request).map_err(|e| step_failure(step, StepFailure::Copy(e)))?;
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
            hasher: Some(&self.hasher),
        };
        let plan = copy::plan_directory(&request, path)
            .map_err(|e| step_failure(step, StepFailure::Copy(e)))?;
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
        // A step of another platform runs under qemu-user: it must be registered.
        let platform = crate::oci::Platform {
            os: result.os.clone(),
            architecture: result.architecture.clone(),
            variant: result.variant.clone(),
        };
        super::emulation::check(&platform).map_err(|e| super::step_failure(step, e))?;
        let mut open_view = |from: &CopyFrom| -> Result<Option<RootView>, BuildError> {
            self.view(&self.layers_of(from)?)
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
                rlimits: &self.options.ulimits,
                settings: &self.options.steps,
                secrets: &self.providers.secrets,
                agents: &self.providers.agents,
                open_view: &mut open_view,
            },
            step,
            run_step,
        )
    }
}
