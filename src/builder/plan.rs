//! The planning phase of a stage: for each step, what goes into its key (the parent
//! state, the step as written, its arguments and environment, the files it reads), the
//! key looked up in the store and in `--cache-from` caches, and a verdict: restored
//! from the cache, runs (and why: the first thing that differs from the site's last
//! build), or pending behind an earlier step that runs. Nothing here writes a layer or
//! runs a command: `--explain` prints these verdicts as they are, and the executor
//! (`execute`) runs only the misses.

use std::collections::BTreeMap;

use super::cache::{self, Inputs, State};
use super::copy::{self, CopyRequest, FileInputs, Source};
use super::stage::{Mode, Session, StageResult};
use super::{step_failure, BuildError, StepFailure};
use crate::graph::{self, CopyFrom, CopySource, Mount, Step, StepKind};
use crate::layers::ExtractLimits;
use crate::store::CacheRecord;

/// What the planning phase decides for one step.
pub(super) enum StepPlan {
    /// ENV, LABEL, CMD...: computed from the Dockerfile, never cached.
    ConfigOnly,
    /// The key has a usable record: the step is restored from it.
    Hit {
        key: String,
        record: Box<CacheRecord>,
    },
    /// The step runs, for `reason`. `inputs` list the files behind the key, for the
    /// record and for the next build's explanation.
    Miss {
        key: String,
        inputs: Box<Inputs>,
        reason: String,
    },
    /// Explaining only: the key depends on something an earlier step or stage will
    /// make, so it cannot be known yet; the step will run, for `reason`.
    Pending { reason: String },
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

/// How a step's key came out.
enum Keyed {
    /// The inputs (holding only the digest of a COPY's files: a hit needs no more).
    Known(Box<Inputs>),
    /// Explaining: the key depends on a stage that will be rebuilt.
    Pending(String),
}

/// One stage's walk through its steps: what the planning phase has met so far.
pub(super) struct StagePlanner<'s, 'a> {
    session: &'s Session<'a>,
    /// The stage's index.
    stage: usize,
    label: String,
    chain: Vec<Link>,
    /// The first step of this stage that ran in this build.
    first_ran: Option<usize>,
    /// How often each step text was met, for the sites of repeated steps.
    occurrences: BTreeMap<&'a str, usize>,
    /// `--no-cache` or `--no-cache-filter` naming this stage.
    forced: Option<String>,
}

impl<'s, 'a> StagePlanner<'s, 'a> {
    /// Starts stage `index`, whose FROM is recorded at `from_site` with `identity`.
    pub(super) fn new(
        session: &'s Session<'a>,
        index: usize,
        from_site: String,
        identity: String,
    ) -> StagePlanner<'s, 'a> {
        StagePlanner {
            session,
            stage: index,
            label: session.label(index),
            chain: vec![Link::From {
                site: from_site,
                identity,
            }],
            first_ran: None,
            occurrences: BTreeMap::new(),
            forced: forced_miss(session, index),
        }
    }

    /// Where `step`'s key is recorded for the next build to compare with: by its text
    /// and occurrence, and by its position.
    pub(super) fn sites(&mut self, step: &'a Step) -> [String; 2] {
        let occurrence = self.occurrences.entry(&*step.text).or_default();
        *occurrence += 1;
        cache::sites(
            &self.session.prepared.project,
            &self.label,
            &step.text,
            step.number,
            *occurrence,
        )
    }

    /// The verdict on `step`, which follows `result`.
    pub(super) fn plan(
        &mut self,
        step: &Step,
        sites: &[String; 2],
        result: &StageResult,
    ) -> Result<StepPlan, BuildError> {
        if matches!(step.kind, StepKind::Config) {
            return Ok(StepPlan::ConfigOnly);
        }
        if let Some(pending) = &result.pending {
            return Ok(StepPlan::Pending {
                reason: pending.clone(),
            });
        }
        let Some(state) = result.state else {
            return Err(step_failure(step, StepFailure::NoState));
        };
        // The key recorded at this step's sites by the last build, looked up at most once.
        let mut previous = None;
        let listed = self.likely_miss(step, sites, &mut previous)?;
        let mut inputs = match self.inputs(step, state, listed)? {
            Keyed::Known(inputs) => inputs,
            Keyed::Pending(reason) => return Ok(StepPlan::Pending { reason }),
        };
        let key = inputs.key();
        let hit = match &self.forced {
            Some(_) => None,
            None => self.lookup(&key)?,
        };
        if let Some(record) = hit {
            self.chain.push(Link::Step {
                number: step.number,
                sites: sites.clone(),
                key: key.clone(),
            });
            return Ok(StepPlan::Hit {
                key,
                record: Box::new(record),
            });
        }
        // A miss lists the files behind the digest: the explanation compares them, and
        // the record keeps them.
        if let StepKind::Copy(copy) = &step.kind {
            if copy.from == CopyFrom::Context && !listed {
                inputs.set_files(&self.context_files(step, copy, true)?);
            }
        }
        let reason = match &self.forced {
            Some(reason) => reason.clone(),
            None => {
                let previous = match previous {
                    Some(previous) => previous,
                    None => self.previous_key(sites)?,
                };
                self.miss_reason(previous, &key, &inputs)?
            }
        };
        self.chain.push(Link::Step {
            number: step.number,
            sites: sites.clone(),
            key: key.clone(),
        });
        Ok(StepPlan::Miss {
            key,
            inputs,
            reason,
        })
    }

    /// The executor ran step `number`: later misses of the stage may be its doing.
    pub(super) fn ran(&mut self, number: usize) {
        self.first_ran.get_or_insert(number);
    }

    /// Whether a COPY from the context will likely miss: then its key's walk lists the
    /// files too, which a miss needs, rather than walking the sources a second time. A
    /// hit costs nothing but that list; the no-op rebuild, where every step hits, walks
    /// once without it.
    /// `previous` keeps the sites' last key if it was looked up.
    fn likely_miss(
        &self,
        step: &Step,
        sites: &[String; 2],
        previous: &mut Option<Option<String>>,
    ) -> Result<bool, BuildError> {
        let StepKind::Copy(copy) = &step.kind else {
            return Ok(false);
        };
        if copy.from != CopyFrom::Context {
            return Ok(false);
        }
        if self.forced.is_some() || self.first_ran.is_some() {
            return Ok(true);
        }
        let key = self.previous_key(sites)?;
        let never_built = key.is_none();
        *previous = Some(key);
        Ok(never_built)
    }

    /// The key the last build recorded at `sites` (by text, else by position).
    fn previous_key(&self, sites: &[String; 2]) -> Result<Option<String>, BuildError> {
        let store = self.session.store;
        Ok(match store.cache_site(&sites[0])? {
            Some(key) => Some(key),
            None => store.cache_site(&sites[1])?,
        })
    }

    /// What goes into the key of a step that can change files; with `listed`, a COPY
    /// from the context lists its files as well as their digest.
    fn inputs(&self, step: &Step, state: State, listed: bool) -> Result<Keyed, BuildError> {
        let session = self.session;
        let mut inputs = Inputs {
            settings: session.prepared.settings(self.stage),
            parent: state.hex(),
            step: cache::canonical_step(step),
            ..Inputs::default()
        };
        // The identity of a stage or image files come from; when explaining and that
        // stage will be rebuilt, why the step's key is not known yet.
        let add_source = |inputs: &mut Inputs, from: &CopyFrom| -> Option<String> {
            match from {
                CopyFrom::Context => {}
                CopyFrom::Stage(i) => {
                    let label = session.label(*i);
                    match session.stage_result(*i).ok().and_then(|r| r.state) {
                        Some(state) => {
                            inputs.sources.insert(format!("stage {label}"), state.hex());
                        }
                        None => return Some(format!("stage {label} will be rebuilt")),
                    }
                }
                CopyFrom::Image(reference) => {
                    let name = reference.familiar();
                    if let Some(image) = session.prepared.images.get(&name) {
                        inputs
                            .sources
                            .insert(format!("image {name}"), image.id.to_string());
                    }
                }
            }
            None
        };
        match &step.kind {
            StepKind::Copy(copy) => {
                if copy.from == CopyFrom::Context {
                    let files = self.context_files(step, copy, listed)?;
                    if listed {
                        inputs.set_files(&files);
                    } else {
                        inputs.files_digest = Some(cache::hex(&files.digest));
                    }
                } else if let Some(pending) = add_source(&mut inputs, &copy.from) {
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
                    } else if let Some(pending) = add_source(&mut inputs, from) {
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
        context_inputs(self.session, copy, detail)?
            .map_err(|e| step_failure(step, StepFailure::Copy(e)))
    }

    /// The context files under `source`, as a bind mount shows them, hashed.
    fn context_tree(&self, step: &Step, source: &str) -> Result<FileInputs, BuildError> {
        let tree = plain_copy(vec![CopySource::Path(source.to_string())], "/", None);
        self.context_files(step, &tree, false)
    }

    /// A usable record for `key`: from the store, or from a `--cache-from` directory.
    /// A build drops a record whose layer is gone, and imports one it found elsewhere.
    fn lookup(&self, key: &str) -> Result<Option<CacheRecord>, BuildError> {
        let session = self.session;
        let store = session.store;
        if let Some(record) = store.cache_record(key)? {
            let intact = record
                .layer
                .as_ref()
                .is_none_or(|l| store.has_blob(&l.blob));
            if intact {
                return Ok(Some(record));
            }
            if session.mode == Mode::Build {
                store.delete_cache_records(&[key.to_string()])?;
            }
        }
        for imported in &session.imported {
            let found = match session.mode {
                Mode::Build => imported.take(store, key, session.now)?,
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
        previous_key: Option<String>,
        key: &str,
        inputs: &Inputs,
    ) -> Result<String, BuildError> {
        let store = self.session.store;
        let Some(previous_key) = previous_key else {
            return Ok("not built before".into());
        };
        let previous = match store.cache_record_full(&previous_key)? {
            Some(record) => serde_json::from_str::<Inputs>(&record.inputs).ok(),
            None if previous_key == key => {
                return Ok("its cached result was removed (pruned)".into())
            }
            None => {
                return Ok(self.upstream_change()?.unwrap_or_else(|| {
                    "not in the cache (the record of its last build was pruned)".into()
                }))
            }
        };
        let upstream = match &previous {
            Some(p) if p.parent != inputs.parent => self
                .upstream_change()?
                .unwrap_or_else(|| "an earlier step changed".into()),
            _ => String::new(),
        };
        Ok(cache::explain_miss(previous.as_ref(), inputs, &upstream))
    }

    /// The first link of the chain that differs from the last build, or the first step
    /// that ran in this one.
    fn upstream_change(&self) -> Result<Option<String>, BuildError> {
        let store = self.session.store;
        for link in &self.chain {
            match link {
                Link::From { site, identity } => {
                    if let Some(previous) = store.cache_site(site)? {
                        if previous != *identity {
                            return Ok(Some(cache::base_change(&previous, identity)));
                        }
                    }
                }
                Link::Step { number, sites, key } => {
                    let previous = match store.cache_site(&sites[0])? {
                        Some(k) => Some(k),
                        None => store.cache_site(&sites[1])?,
                    };
                    if previous.is_some_and(|p| p != *key) {
                        return Ok(Some(earlier_step_changed(*number)));
                    }
                }
            }
        }
        Ok(self.first_ran.map(earlier_step_changed))
    }
}

/// Steps are named as progress labels them (`[2/3]`), where the stage's FROM is the
/// first: `number`, 1-based after the FROM, is one less.
pub(super) fn shown_step_number(number: usize) -> usize {
    number + 1
}

fn earlier_step_changed(number: usize) -> String {
    format!(
        "an earlier step changed (step {})",
        shown_step_number(number)
    )
}

/// `--no-cache` or `--no-cache-filter` naming stage `index`.
fn forced_miss(session: &Session<'_>, index: usize) -> Option<String> {
    let options = session.options;
    if options.no_cache {
        return Some("--no-cache".into());
    }
    let stage = &session.prepared.plan.stages[index];
    options
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

/// A COPY from the context with no options but `--chown`, for the builder's own use.
pub(super) fn plain_copy(
    sources: Vec<CopySource>,
    dest: &str,
    chown: Option<String>,
) -> graph::CopyStep {
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

/// The context files a COPY or ADD selects, hashed: what goes into its key. The outer
/// error is the store's (no room to stage in), the inner one the step's.
fn context_inputs(
    session: &Session<'_>,
    copy: &graph::CopyStep,
    detail: bool,
) -> Result<Result<FileInputs, copy::CopyError>, BuildError> {
    let scratch = session.store.staging_dir("key")?;
    let request = CopyRequest {
        step: copy,
        source: Source::Context(&session.prepared.context),
        dest_root: None,
        source_date_epoch: session.options.source_date_epoch,
        now: 0,
        scratch: scratch.path(),
        extract_limits: &ExtractLimits::for_store(session.store),
        hasher: Some(&session.hasher),
    };
    Ok(copy::key_inputs(&request, &session.hasher, detail))
}

/// Hashes what a later COPY will need, ahead of its turn (see `Session::hash_ahead`):
/// the results stay in the session's context hasher; errors are the step's to report
/// when its turn comes.
pub(super) fn hash_context_ahead(session: &Session<'_>, copy: &graph::CopyStep) {
    let _ = context_inputs(session, copy, false);
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    use super::super::{prepare, session, BuildOptions, Prepared, Silent};
    use super::*;
    use crate::layers::Compression;
    use crate::store::Store;

    const DOCKERFILE: &str = "FROM scratch\nCOPY app.txt /app.txt\nENV MODE=test\nWORKDIR /srv\n";

    fn build_options(context: &Path, no_cache: bool) -> BuildOptions {
        BuildOptions {
            context: context.to_path_buf(),
            dockerfile_name: "Dockerfile".into(),
            dockerfile: DOCKERFILE.as_bytes().to_vec(),
            dockerfile_path: None,
            tags: Vec::new(),
            build_args: Default::default(),
            target: None,
            no_cache,
            pull: crate::registry::PullPolicy::Missing,
            docker_config: None,
            no_cache_filter: Vec::new(),
            jobs: 1,
            cache_from: Vec::new(),
            cache_to: None,
            compression: Compression::Zstd,
            source_date_epoch: None,
            entitlements: Default::default(),
            ulimits: Vec::new(),
            steps: Default::default(),
            image: Default::default(),
            secrets: Vec::new(),
            ssh: Vec::new(),
            cancel: Default::default(),
            platforms: Vec::new(),
        }
    }

    /// The verdict on each step of the one stage, as `kind: reason`.
    fn verdicts(store: &Store, prepared: &Prepared, options: &BuildOptions) -> Vec<String> {
        let providers = Default::default();
        let session = session(store, options, prepared, &Silent, Mode::Build, &providers).unwrap();
        let mut planner = StagePlanner::new(&session, 0, "from-site".into(), "scratch".into());
        let mut result = StageResult::scratch(String::new(), crate::oci::Platform::host());
        let mut shown = Vec::new();
        let mut sites_seen = Vec::new();
        for step in &prepared.expanded[&0].steps {
            let sites = planner.sites(step);
            // The layer a step made is told by its key here.
            let made = |result: &mut StageResult, key: &str| {
                result.state = result
                    .state
                    .map(|s| s.with_layer(&crate::oci::Digest::of(key.as_bytes())));
            };
            shown.push(match planner.plan(step, &sites, &result).unwrap() {
                StepPlan::ConfigOnly => "config".to_string(),
                StepPlan::Hit { key, .. } => {
                    made(&mut result, &key);
                    sites_seen.push((sites, key));
                    "hit".to_string()
                }
                StepPlan::Miss {
                    key,
                    inputs,
                    reason,
                } => {
                    // As the executor would: the step ran and made no layer.
                    planner.ran(step.number);
                    store
                        .put_cache_record(&CacheRecord {
                            key: key.clone(),
                            kind: "COPY".into(),
                            step: step.text.to_string(),
                            stage: "Dockerfile:0".into(),
                            layer: None,
                            created: "2026-01-01T00:00:00Z".into(),
                            created_at: 0,
                            last_used: 0,
                            inputs: serde_json::to_string(&inputs).unwrap(),
                        })
                        .unwrap();
                    made(&mut result, &key);
                    sites_seen.push((sites, key));
                    format!("miss: {reason}")
                }
                StepPlan::Pending { reason } => format!("pending: {reason}"),
            });
        }
        let sites: Vec<(String, String)> = sites_seen
            .into_iter()
            .flat_map(|(sites, key)| sites.map(|site| (site, key.clone())))
            .collect();
        store.finish_cache_use(&sites, &[], 0).unwrap();
        shown
    }

    /// A store and a context holding `app.txt`, in a temporary directory.
    fn store_and_context() -> (tempfile::TempDir, Store, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let context = dir.path().join("context");
        fs::create_dir(&context).unwrap();
        fs::write(context.join("app.txt"), "one").unwrap();
        (dir, store, context)
    }

    #[test]
    fn steps_miss_then_hit_and_a_changed_file_is_named() {
        let (_dir, store, context) = store_and_context();
        let options = build_options(&context, false);

        let prepared = prepare(&store, &options, &crate::oci::Platform::host()).unwrap();
        assert_eq!(
            verdicts(&store, &prepared, &options),
            ["miss: not built before", "config", "miss: not built before"]
        );
        assert_eq!(
            verdicts(&store, &prepared, &options),
            ["hit", "config", "hit"]
        );

        fs::write(context.join("app.txt"), "two!").unwrap();
        let prepared = prepare(&store, &options, &crate::oci::Platform::host()).unwrap();
        // WORKDIR's key holds the state before it, which the changed COPY moved.
        assert_eq!(
            verdicts(&store, &prepared, &options),
            [
                "miss: 1 file changed (app.txt)",
                "config",
                "miss: an earlier step changed (step 2)"
            ]
        );

        let forced = build_options(&context, true);
        let prepared = prepare(&store, &forced, &crate::oci::Platform::host()).unwrap();
        assert_eq!(
            verdicts(&store, &prepared, &forced),
            ["miss: --no-cache", "config", "miss: --no-cache"]
        );
    }

    #[test]
    fn a_step_after_a_pending_one_is_pending_too() {
        let (_dir, store, context) = store_and_context();
        let options = build_options(&context, false);
        let prepared = prepare(&store, &options, &crate::oci::Platform::host()).unwrap();
        let providers = Default::default();
        let session = session(
            &store,
            &options,
            &prepared,
            &Silent,
            Mode::Explain,
            &providers,
        )
        .unwrap();
        let mut planner = StagePlanner::new(&session, 0, "from-site".into(), "scratch".into());
        let mut result = StageResult::scratch(String::new(), crate::oci::Platform::host());
        result.pending = Some("an earlier step will run (step 1)".into());
        let step = &prepared.expanded[&0].steps[2];
        let sites = planner.sites(step);
        assert!(matches!(
            planner.plan(step, &sites, &result).unwrap(),
            StepPlan::Pending { reason } if reason == "an earlier step will run (step 1)"
        ));
    }
}
