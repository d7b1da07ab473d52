//! Lowers parsed instructions into a build graph: stages with names and indexes, the
//! edges between them (`FROM <stage>`, `COPY --from`, `RUN --mount from=`), pruning to
//! the stages a `--target` needs, cycle checks, and Docker's ARG/ENV scoping and word
//! expansion, which turns each stage's instructions into typed steps.
//!
//! Pure: no I/O. Planning needs no base image; expanding a stage takes its base image's
//! config as an argument.

mod changes;
mod expand;
mod run_env;
mod scope;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::oci::{ImageRef, Platform, ReferenceError};
/// What [`PlanError`] holds when the Dockerfile does not parse.
pub use crate::parser::ParseError;
/// Where in the Dockerfile something is (the parser's), for errors that point there.
pub use crate::parser::SourceLocation;
/// Docker's (Go's) durations (`500ms`, `1m30s`) in nanoseconds, as HEALTHCHECK and the
/// `--health-*` flags write them.
pub use crate::parser::{csv_fields, go_duration, parse_duration};
use crate::parser::{expand::ExpandError, Command, Dockerfile, Instruction};

pub use changes::{config_with_changes, ChangeError, CHANGE_INSTRUCTIONS};
pub use expand::{
    expand_stage, BaseImage, CopyFrom, CopySource, CopyStep, ExpandedStage, Mount, MountSource,
    RunNetwork, RunStep, ScriptFile, Sharing, Step, StepKind,
};
pub use run_env::{EnvPair, RunEnv};
use scope::{automatic_args, ArgValues, Scope};

/// What the user asked of the build that changes the plan.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// `--build-arg NAME=VALUE` values.
    pub build_args: BTreeMap<String, String>,
    /// `--target`: the stage to build (by name or index); the last stage by default.
    pub target: Option<String>,
    /// `--platform`: the platform the image is for (`TARGETPLATFORM`); this machine's
    /// by default.
    pub platform: Option<Platform>,
}

/// Where a stage starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    Scratch,
    Image(ImageRef),
    /// An earlier stage, by index.
    Stage(usize),
}

/// One `FROM` section of the Dockerfile.
#[derive(Debug, Clone)]
pub struct Stage {
    /// Position among the Dockerfile's stages, from 0.
    pub index: usize,
    pub name: Option<String>,
    pub base: Base,
    /// `FROM --platform=...`, expanded.
    pub platform: Option<String>,
    /// The FROM instruction as written, expanded.
    pub from_text: String,
    pub location: SourceLocation,
    /// The instructions after FROM, unexpanded.
    pub instructions: Vec<Instruction>,
    /// Stages this one needs: its base stage and every `--from` stage.
    pub deps: BTreeSet<usize>,
}

impl Stage {
    /// `name` if it has one, else its index.
    pub fn label(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.index.to_string())
    }
}

/// The whole build: every stage, and which of them the target needs.
#[derive(Debug, Clone)]
pub struct Plan {
    pub stages: Vec<Stage>,
    /// Index of the stage whose result is the image.
    pub target: usize,
    /// Stages the target needs, in an order where every stage comes after its deps.
    pub order: Vec<usize>,
    /// Global ARGs (before the first FROM) and their values.
    pub global_args: Vec<(String, Option<String>)>,
    /// `--build-arg` names no ARG declares.
    pub unused_build_args: Vec<String>,
    pub escape: char,
    pub(crate) build_args: BTreeMap<String, String>,
    /// The platform the image is for (`TARGETPLATFORM`).
    pub platform: Platform,
}

impl Plan {
    /// The needed stages grouped by depth: all stages of a group can run at once, once
    /// the groups before it are done.
    pub fn parallel_groups(&self) -> Vec<Vec<usize>> {
        let mut depth: BTreeMap<usize, usize> = BTreeMap::new();
        for &i in &self.order {
            let d = self.stages[i]
                .deps
                .iter()
                .map(|dep| depth.get(dep).copied().unwrap_or(0) + 1)
                .max()
                .unwrap_or(0);
            depth.insert(i, d);
        }
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for (&stage, &d) in &depth {
            if groups.len() <= d {
                groups.resize(d + 1, Vec::new());
            }
            groups[d].push(stage);
        }
        groups
    }
}

/// What planning a Dockerfile's text can fail with: its syntax, or its meaning.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Parse(#[from] crate::parser::ParseError),
    #[error(transparent)]
    Graph(#[from] GraphError),
}

/// Parses a Dockerfile (`name` is how messages show it) and plans it: the one door from
/// Dockerfile text to a plan for the builder.
pub fn plan_text(name: &str, text: Vec<u8>, options: &PlanOptions) -> Result<Plan, PlanError> {
    let dockerfile = crate::parser::parse(name, text)?;
    Ok(plan(dockerfile, options)?)
}

/// A located graph error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphError {
    pub location: Option<Box<SourceLocation>>,
    pub kind: GraphErrorKind,
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(location) => location.render(f, &self.kind),
            None => write!(f, "{}", self.kind),
        }
    }
}

impl std::error::Error for GraphError {}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphErrorKind {
    #[error("{0}")]
    Expansion(#[from] ExpandError),
    #[error("{0}")]
    Reference(#[from] ReferenceError),
    #[error("{keyword} before the first FROM: only ARG may come before FROM")]
    BeforeFrom { keyword: String },
    #[error("the Dockerfile has no FROM instruction")]
    NoStages,
    #[error("duplicate stage name {name:?}: it was first used on line {first_line}")]
    DuplicateStage { name: String, first_line: usize },
    #[error("target stage {target:?} not found: expected one of {available}")]
    UnknownTarget { target: String, available: String },
    #[error("--from={value} refers to {problem}: expected an earlier stage's index, a stage name or an image")]
    StageIndex {
        value: String,
        problem: &'static str,
    },
    #[error("circular dependency between stages: {0}")]
    Cycle(String),
    #[error(transparent)]
    Expose(#[from] expand::ExposeError),
    #[error("{0}")]
    Invalid(String),
    /// BuildKit's git sources (`ADD https://host/repo.git`, `ADD git@host:repo`):
    /// refused by name rather than fetched as a web page or read as a path.
    #[error(
        "ADD {0}: git repositories as sources are not supported (lade does not clone them); clone the repository into the build context and COPY it, or ADD an archive of it"
    )]
    GitSource(String),
}

impl GraphError {
    fn at(location: &SourceLocation, kind: impl Into<GraphErrorKind>) -> GraphError {
        GraphError {
            location: Some(Box::new(location.clone())),
            kind: kind.into(),
        }
    }
}

/// Splits the Dockerfile into stages, resolves their bases and dependencies, and keeps
/// the stages the target needs. The stages take the Dockerfile's instructions as they
/// are: a plan of thousands of instructions copies none.
pub fn plan(dockerfile: Dockerfile, options: &PlanOptions) -> Result<Plan, GraphError> {
    let target_platform = options.platform.clone().unwrap_or_else(Platform::host);
    let automatic = automatic_args(&target_platform);
    let mut global = ArgValues::default();
    let mut stages: Vec<Stage> = Vec::new();
    let mut declared: BTreeSet<String> = BTreeSet::new();
    let escape = dockerfile.directives.escape;
    let lexer = scope::lexer(escape);
    // Each stage's list is made as long as it needs: a list that grows moves its
    // instructions (large values) again at each step.
    let mut stage_lengths = stage_lengths(&dockerfile.instructions).into_iter();

    for instruction in dockerfile.instructions {
        if !matches!(instruction.command, Command::From(_)) {
            if let Some(stage) = stages.last_mut() {
                stage.instructions.push(instruction);
                continue;
            }
        }
        let loc = &instruction.location;
        // Here: a FROM, or an instruction before the first FROM.
        match &instruction.command {
            Command::Arg(decls) => {
                for decl in decls {
                    declared.insert(decl.name.clone());
                    let value: Option<std::sync::Arc<str>> =
                        match options.build_args.get(&decl.name) {
                            Some(v) => Some(v.as_str().into()),
                            None => match &decl.default {
                                Some(default) => Some(
                                    lexer
                                        .process_word(default, &global.lookup_with(&automatic))
                                        .map_err(|e| GraphError::at(loc, e))?
                                        .into(),
                                ),
                                None => automatic.get(&decl.name).map(|v| v.as_str().into()),
                            },
                        };
                    global.set(&decl.name, value);
                }
            }
            Command::From(from) => {
                let index = stages.len();
                let env = global.lookup_with(&automatic);
                let image = lexer
                    .process_word(&from.image, &env)
                    .map_err(|e| GraphError::at(loc, e))?;
                let platform = from
                    .platform
                    .as_ref()
                    .map(|p| lexer.process_word(p, &env))
                    .transpose()
                    .map_err(|e| GraphError::at(loc, e))?;
                if let Some(name) = &from.stage_name {
                    if let Some(first) = stages
                        .iter()
                        .find(|s| s.name.as_deref() == Some(name.as_str()))
                    {
                        return Err(GraphError::at(
                            loc,
                            GraphErrorKind::DuplicateStage {
                                name: name.clone(),
                                first_line: first.location.line,
                            },
                        ));
                    }
                }
                let base = if image.eq_ignore_ascii_case("scratch") {
                    Base::Scratch
                } else if let Some(stage) = stages
                    .iter()
                    .find(|s| s.name.as_deref() == Some(image.to_ascii_lowercase().as_str()))
                {
                    Base::Stage(stage.index)
                } else {
                    Base::Image(
                        image
                            .parse()
                            .map_err(|e: ReferenceError| GraphError::at(loc, e))?,
                    )
                };
                let mut deps = BTreeSet::new();
                if let Base::Stage(i) = base {
                    deps.insert(i);
                }
                let mut from_text = String::from("FROM ");
                if let Some(p) = &platform {
                    from_text.push_str(&format!("--platform={p} "));
                }
                from_text.push_str(&image);
                if let Some(name) = &from.stage_name {
                    from_text.push_str(&format!(" AS {name}"));
                }
                stages.push(Stage {
                    index,
                    name: from.stage_name.clone(),
                    base,
                    platform,
                    from_text,
                    location: loc.clone(),
                    instructions: Vec::with_capacity(stage_lengths.next().unwrap_or_default()),
                    deps,
                });
            }
            _ => {
                return Err(GraphError::at(
                    loc,
                    GraphErrorKind::BeforeFrom {
                        keyword: instruction.keyword().to_string(),
                    },
                ))
            }
        }
    }
    if stages.is_empty() {
        return Err(GraphError {
            location: None,
            kind: GraphErrorKind::NoStages,
        });
    }

    // Edges from `--from`: their values may use the stage's ARGs and ENVs.
    let names: BTreeMap<String, usize> = stages
        .iter()
        .filter_map(|s| s.name.clone().map(|n| (n, s.index)))
        .collect();
    let global_args: Vec<(String, Option<String>)> = global.pairs();
    for stage in &mut stages {
        let index = stage.index;
        let mut scope = Scope::new(&global, &automatic, &options.build_args, Default::default());
        // Tracking ARG and ENV costs an expansion of each; only a `--from` value that
        // uses a variable needs it.
        let needs_scope = stage
            .instructions
            .iter()
            .any(|i| from_values(&i.command).iter().any(|v| v.contains('$')));
        let mut found = BTreeSet::new();
        for instruction in &stage.instructions {
            for decl in scope.declared_names(&instruction.command) {
                declared.insert(decl);
            }
            if needs_scope {
                scope
                    .apply_scope_only(instruction, escape)
                    .map_err(|e| GraphError::at(&instruction.location, e))?;
            }
            for value in from_values(&instruction.command) {
                let value = scope
                    .expand(value, escape)
                    .map_err(|e| GraphError::at(&instruction.location, e))?;
                if let Some(dep) = resolve_from(&value, index, &names)
                    .map_err(|kind| GraphError::at(&instruction.location, kind))?
                {
                    found.insert(dep);
                }
            }
        }
        stage.deps.extend(found);
    }

    let target = match &options.target {
        None => stages.len() - 1,
        Some(t) => {
            let lower = t.to_ascii_lowercase();
            match names.get(&lower) {
                Some(&i) => i,
                None => match t.parse::<usize>() {
                    Ok(i) if i < stages.len() => i,
                    _ => {
                        return Err(GraphError {
                            location: None,
                            kind: GraphErrorKind::UnknownTarget {
                                target: t.clone(),
                                available: stages
                                    .iter()
                                    .map(Stage::label)
                                    .collect::<Vec<_>>()
                                    .join(", "),
                            },
                        })
                    }
                },
            }
        }
    };
    let order = topological_order(&stages, target)?;
    let unused_build_args = options
        .build_args
        .keys()
        .filter(|k| !declared.contains(*k) && !scope::is_predefined(k))
        .cloned()
        .collect();
    Ok(Plan {
        stages,
        target,
        order,
        global_args,
        unused_build_args,
        escape,
        build_args: options.build_args.clone(),
        platform: target_platform,
    })
}

/// Expands every stage the target needs, in dependency order. `image_base` gives the
/// base of a stage built on an image; a stage built on a stage starts from that stage's
/// expanded config.
pub fn expand_all(
    plan: &Plan,
    mut image_base: impl FnMut(&Stage, &ImageRef) -> BaseImage,
) -> Result<BTreeMap<usize, ExpandedStage>, GraphError> {
    let mut expanded: BTreeMap<usize, ExpandedStage> = BTreeMap::new();
    for &index in &plan.order {
        let stage = &plan.stages[index];
        let base = match &stage.base {
            Base::Scratch => BaseImage::scratch(),
            Base::Image(image) => image_base(stage, image),
            Base::Stage(parent) => {
                let parent = &expanded[parent];
                BaseImage {
                    config: parent.config.clone(),
                    author: parent.author.clone(),
                }
            }
        };
        let stage_steps = expand_stage(plan, index, &base)?;
        expanded.insert(index, stage_steps);
    }
    Ok(expanded)
}

/// How many instructions follow each FROM, up to the next.
fn stage_lengths(instructions: &[Instruction]) -> Vec<usize> {
    let mut lengths = Vec::new();
    for instruction in instructions {
        match (&instruction.command, lengths.last_mut()) {
            (Command::From(_), _) => lengths.push(0),
            (_, Some(length)) => *length += 1,
            (_, None) => {}
        }
    }
    lengths
}

/// The raw `--from` values of an instruction (COPY --from, RUN --mount from=).
fn from_values(command: &Command) -> Vec<&str> {
    match command {
        Command::Copy(copy) => copy.from.iter().map(String::as_str).collect(),
        Command::Run(run) => run
            .mounts
            .iter()
            .flat_map(|m| m.options.iter())
            .filter(|(k, _)| k == "from")
            .filter_map(|(_, v)| v.as_deref())
            .collect(),
        _ => Vec::new(),
    }
}

/// A `--from` value names a stage (by name or earlier index) or else an image.
pub(crate) fn resolve_from(
    value: &str,
    current: usize,
    names: &BTreeMap<String, usize>,
) -> Result<Option<usize>, GraphErrorKind> {
    // Stage names are lower case; most values are already.
    let lower = if value.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(value.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(value)
    };
    if let Some(&i) = names.get(&*lower) {
        if i == current {
            return Err(GraphErrorKind::StageIndex {
                value: value.to_string(),
                problem: "the stage it is used in",
            });
        }
        return Ok(Some(i));
    }
    if let Ok(i) = value.parse::<usize>() {
        if i >= current {
            return Err(GraphErrorKind::StageIndex {
                value: value.to_string(),
                problem: "the current or a later stage",
            });
        }
        return Ok(Some(i));
    }
    Ok(None)
}

/// Depth-first order of the stages `target` needs; a cycle is an error naming it.
fn topological_order(stages: &[Stage], target: usize) -> Result<Vec<usize>, GraphError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut marks = vec![Mark::New; stages.len()];
    let mut order = Vec::new();
    // Iterative DFS: deep chains of stages must not overflow the stack.
    let mut stack: Vec<(usize, Vec<usize>)> =
        vec![(target, stages[target].deps.iter().copied().collect())];
    marks[target] = Mark::Open;
    while let Some((node, pending)) = stack.last_mut() {
        match pending.pop() {
            Some(dep) => match marks[dep] {
                Mark::Done => {}
                Mark::Open => {
                    let mut cycle: Vec<String> = stack
                        .iter()
                        .skip_while(|(n, _)| *n != dep)
                        .map(|(n, _)| stages[*n].label())
                        .collect();
                    cycle.push(stages[dep].label());
                    return Err(GraphError::at(
                        &stages[dep].location,
                        GraphErrorKind::Cycle(cycle.join(" -> ")),
                    ));
                }
                Mark::New => {
                    marks[dep] = Mark::Open;
                    let deps = stages[dep].deps.iter().copied().collect();
                    stack.push((dep, deps));
                }
            },
            None => {
                let node = *node;
                marks[node] = Mark::Done;
                order.push(node);
                stack.pop();
            }
        }
    }
    Ok(order)
}

#[cfg(test)]
mod tests;
