//! Expands one stage's instructions into steps, tracking the image config as Docker
//! does: ENV and ARG scoping, WORKDIR-relative paths, SHELL, ENTRYPOINT resetting an
//! inherited CMD, ONBUILD triggers of the base image run first.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Serialize;

use super::run_env::RunEnv;
use super::scope::{automatic_args, lexer, ArgValues, Scope};
use super::{resolve_from, GraphError, GraphErrorKind, Plan};
use crate::oci::{ContainerConfig, Healthcheck, ImageRef, ReferenceError};
use crate::parser::{
    self, expand::Lexer, Command, CommandLine, CopyCmd, HealthcheckCmd, Instruction, MountFlag,
    MountKind, SourceLocation, SourceSpec,
};

const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const HISTORY_SUFFIX: &str = " # buildkit";

/// What a stage starts from: its base image's config and author.
#[derive(Debug, Clone, Default)]
pub struct BaseImage {
    pub config: ContainerConfig,
    pub author: Option<String>,
}

impl BaseImage {
    /// The empty image `FROM scratch` starts from; like BuildKit, it has a default PATH.
    pub fn scratch() -> BaseImage {
        let mut config = ContainerConfig::default();
        config.set_env("PATH", DEFAULT_PATH);
        BaseImage {
            config,
            author: None,
        }
    }
}

/// A stage after expansion: its steps and the config of the image it makes.
#[derive(Debug, Clone)]
pub struct ExpandedStage {
    pub steps: Vec<Step>,
    pub config: ContainerConfig,
    pub author: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Step {
    /// 1-based position in the stage.
    pub number: usize,
    /// The instruction as written (shared with the parsed instruction).
    pub text: std::sync::Arc<str>,
    /// The image history's `created_by`.
    pub created_by: String,
    pub location: SourceLocation,
    pub kind: StepKind,
    /// The step came from the base image's ONBUILD triggers.
    pub from_onbuild: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum StepKind {
    Run(RunStep),
    Copy(CopyStep),
    /// Creates the directory (a layer if it was missing), owned by the USER in effect;
    /// the config has changed already.
    Workdir {
        path: String,
        user: String,
    },
    /// Changes only the config.
    Config,
}

impl StepKind {
    /// Whether the step can change the filesystem.
    pub fn makes_layer(&self) -> bool {
        !matches!(self, StepKind::Config)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RunNetwork {
    Default,
    None,
    Host,
}

/// A process to run in the sandbox on the stage's filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunStep {
    pub argv: Vec<String>,
    /// The process environment (`env.entries()`): config env plus ARG values, not stored
    /// in the image; and the ARGs with a value in scope (`env.build_args()`).
    #[serde(flatten)]
    pub env: RunEnv,
    pub workdir: String,
    pub user: String,
    pub mounts: Vec<Mount>,
    pub network: RunNetwork,
    pub insecure: bool,
    /// Files made available to the process (a heredoc script run by its shebang).
    pub script_files: Vec<ScriptFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScriptFile {
    pub path: String,
    pub content: String,
    pub mode: u32,
}

/// Where COPY --from and RUN --mount from= take files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum CopyFrom {
    Context,
    Stage(usize),
    Image(#[serde(serialize_with = "serialize_ref")] ImageRef),
}

fn serialize_ref<S: serde::Serializer>(r: &ImageRef, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&r.normalized())
}

/// Alias kept for readability where mounts are concerned.
pub type MountSource = CopyFrom;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Sharing {
    Shared,
    Private,
    Locked,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Mount {
    Bind {
        target: String,
        from: MountSource,
        source: String,
        readwrite: bool,
    },
    Cache {
        target: String,
        id: String,
        sharing: Sharing,
        from: Option<MountSource>,
        source: String,
        readonly: bool,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Tmpfs {
        target: String,
        size: Option<u64>,
    },
    /// A build secret (`--secret`): a file at `target`, an environment variable `env`,
    /// or both. Only these options are part of the step; the value never is.
    Secret {
        /// `None` when the secret is only an environment variable.
        target: Option<String>,
        id: String,
        required: bool,
        env: Option<String>,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// An SSH agent (`--ssh`) reached through a socket at `target`.
    Ssh {
        target: String,
        id: String,
        required: bool,
        mode: u32,
        uid: u32,
        gid: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum CopySource {
    /// A path or glob in the context, stage or image.
    Path(String),
    /// ADD of a remote file.
    Url(String),
    /// A heredoc body becomes a file of that name.
    Heredoc { name: String, content: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopyStep {
    pub add: bool,
    pub sources: Vec<CopySource>,
    /// Absolute; ends in `/` when the destination is a directory by its spelling.
    pub dest: String,
    pub from: CopyFrom,
    pub chown: Option<String>,
    pub chmod: Option<u32>,
    pub link: bool,
    pub parents: bool,
    pub excludes: Vec<String>,
    pub checksum: Option<String>,
    pub keep_git_dir: bool,
    /// The working directory, for `--parents` and relative sources.
    pub workdir: String,
}

/// Expands stage `index` of `plan` on top of `base`.
pub fn expand_stage(
    plan: &Plan,
    index: usize,
    base: &BaseImage,
) -> Result<ExpandedStage, GraphError> {
    expand(plan, index, base, true)
}

/// As [`expand_stage`], for `--change` lines: Docker applies them to the config as it
/// is, without the PATH a build's stage gets.
pub(super) fn expand_changes(plan: &Plan, base: &BaseImage) -> Result<ExpandedStage, GraphError> {
    expand(plan, 0, base, false)
}

fn expand(
    plan: &Plan,
    index: usize,
    base: &BaseImage,
    default_path: bool,
) -> Result<ExpandedStage, GraphError> {
    let stage = &plan.stages[index];
    let automatic = automatic_args(&plan.platform);
    let mut global = ArgValues::default();
    for (name, value) in &plan.global_args {
        global.set(name, value.as_deref().map(std::sync::Arc::from));
    }
    let mut config = base.config.clone();
    // BuildKit gives every stage a PATH when its base has none (an `import`ed image, a
    // hand-made config), so `ENV PATH=$PATH:/opt/bin` and RUN find their programs; the
    // built image keeps it.
    if default_path && !config.env_pairs().iter().any(|(name, _)| name == "PATH") {
        config.set_env("PATH", DEFAULT_PATH);
    }
    let triggers = config.on_build.take().unwrap_or_default();
    let env = config.env_pairs();
    let names: BTreeMap<String, usize> = plan
        .stages
        .iter()
        .filter_map(|s| s.name.clone().map(|n| (n, s.index)))
        .collect();
    let mut state = State {
        escape: plan.escape,
        lexer: lexer(plan.escape),
        scope: Scope::new(&global, &automatic, &plan.build_args, env),
        config,
        author: base.author.clone(),
        cmd_set: false,
        env_changed: false,
        steps: Vec::with_capacity(triggers.len() + stage.instructions.len()),
        stage_index: index,
        names: &names,
    };

    for trigger in &triggers {
        let instruction =
            parser::parse_instruction("ONBUILD trigger", trigger, '\\').map_err(|e| {
                GraphError::at(
                    &stage.location,
                    GraphErrorKind::Invalid(format!(
                        "the base image's ONBUILD trigger {trigger:?} is invalid: {}",
                        e.kind
                    )),
                )
            })?;
        let instruction = Instruction {
            location: stage.location.clone(),
            ..instruction
        };
        state.apply(&instruction, true)?;
    }
    for instruction in &stage.instructions {
        state.apply(instruction, false)?;
    }
    let mut config = state.config;
    if state.env_changed {
        config.env = Some(state.scope.env_entries());
    }
    Ok(ExpandedStage {
        steps: state.steps,
        config,
        author: state.author,
    })
}

struct State<'a> {
    escape: char,
    lexer: Lexer,
    scope: Scope<'a>,
    config: ContainerConfig,
    author: Option<String>,
    /// CMD was set in this stage, so a later ENTRYPOINT keeps it.
    cmd_set: bool,
    /// ENV ran: the config's environment is the scope's.
    env_changed: bool,
    steps: Vec<Step>,
    stage_index: usize,
    names: &'a BTreeMap<String, usize>,
}

impl State<'_> {
    fn word(&self, text: &str) -> Result<String, GraphErrorKind> {
        Ok(self.lexer.process_word(text, &self.scope)?)
    }

    /// As [`State::word`], borrowing `text` when nothing in it expands: for words that
    /// are read and not kept.
    fn word_cow<'t>(&self, text: &'t str) -> Result<Cow<'t, str>, GraphErrorKind> {
        Ok(self.lexer.expand_word(text, &self.scope)?)
    }

    /// The shell in effect, then `command`: a shell-form command's argv.
    fn shell_argv(&self, command: &str) -> Vec<String> {
        let shell: &[String] = self.config.shell.as_deref().unwrap_or_default();
        let mut argv = Vec::with_capacity(shell.len().max(DEFAULT_SHELL.len()) + 1);
        match &self.config.shell {
            Some(shell) => argv.extend(shell.iter().cloned()),
            None => argv.extend(DEFAULT_SHELL.iter().map(|s| s.to_string())),
        }
        argv.push(command.to_string());
        argv
    }

    fn workdir(&self) -> &str {
        match self.config.working_dir.as_deref() {
            Some(dir) if !dir.is_empty() => dir,
            _ => "/",
        }
    }

    fn command_argv(&self, line: &CommandLine) -> Vec<String> {
        match line {
            CommandLine::Exec(args) => args.clone(),
            CommandLine::Shell(text) => self.shell_argv(text),
        }
    }

    fn resolve_from(&self, value: &str) -> Result<CopyFrom, GraphErrorKind> {
        Ok(match resolve_from(value, self.stage_index, self.names)? {
            Some(stage) => CopyFrom::Stage(stage),
            None => CopyFrom::Image(value.parse().map_err(|e: ReferenceError| e)?),
        })
    }

    fn apply(&mut self, instruction: &Instruction, from_onbuild: bool) -> Result<(), GraphError> {
        let at = |kind: GraphErrorKind| GraphError::at(&instruction.location, kind);
        let (kind, created_by) = self.lower(instruction).map_err(at)?;
        self.steps.push(Step {
            number: self.steps.len() + 1,
            text: instruction.original.clone(),
            created_by,
            location: instruction.location.clone(),
            kind,
            from_onbuild,
        });
        Ok(())
    }

    /// The step and history text for one instruction; updates the config and scope.
    fn lower(&mut self, instruction: &Instruction) -> Result<(StepKind, String), GraphErrorKind> {
        let config_only = |text: String| Ok((StepKind::Config, text));
        match &instruction.command {
            Command::From(_) => Err(GraphErrorKind::Invalid("FROM inside a stage".into())),
            Command::Arg(decls) => {
                let mut shown = History::new("ARG");
                for decl in decls {
                    self.scope.declare(decl, self.escape)?;
                    match &decl.default {
                        Some(_) => shown.word(&[
                            &decl.name,
                            "=",
                            self.scope.arg_value(&decl.name).unwrap_or_default(),
                        ]),
                        None => shown.word(&[&decl.name]),
                    }
                }
                config_only(shown.text)
            }
            Command::Env(pairs) => {
                // Every value sees the variables as they were before this instruction.
                let mut updates = Vec::with_capacity(pairs.len());
                for kv in pairs {
                    updates.push((self.word_cow(&kv.key)?, self.word_cow(&kv.value)?));
                }
                let mut shown = History::with_room("ENV", History::pairs_room(&updates));
                for (k, v) in &updates {
                    shown.word(&[k, "=", v]);
                }
                for (k, v) in updates {
                    self.scope.set_env(&k, &v);
                }
                self.env_changed = true;
                config_only(shown.text)
            }
            Command::Label(pairs) => {
                let mut updates = Vec::with_capacity(pairs.len());
                for kv in pairs {
                    updates.push((self.word(&kv.key)?, self.word(&kv.value)?));
                }
                let mut shown = History::with_room("LABEL", History::pairs_room(&updates));
                for (k, v) in &updates {
                    shown.word(&[k, "=", v]);
                }
                self.config
                    .labels
                    .get_or_insert_with(BTreeMap::new)
                    .extend(updates);
                config_only(shown.text)
            }
            Command::Maintainer(name) => {
                self.author = Some(name.clone());
                config_only(format!("MAINTAINER {name}"))
            }
            Command::Expose(specs) => {
                let mut ports = Vec::new();
                for spec in specs {
                    ports.extend(parse_ports(&self.word_cow(spec)?)?);
                }
                let mut shown = History::new("EXPOSE");
                let exposed = self.config.exposed_ports.get_or_insert_with(BTreeMap::new);
                for port in ports {
                    shown.word(&[&port]);
                    exposed.insert(port, serde_json::json!({}));
                }
                config_only(shown.text)
            }
            Command::Workdir(path) => {
                let path = self.word_cow(path)?;
                let resolved = resolve_path(self.workdir(), &path);
                self.config.working_dir = Some(resolved.clone());
                let mut shown = History::new("WORKDIR");
                shown.word(&[&resolved]);
                let text = shown.text;
                if resolved == "/" {
                    config_only(text)
                } else {
                    let user = self.config.user.clone().unwrap_or_default();
                    Ok((
                        StepKind::Workdir {
                            path: resolved,
                            user,
                        },
                        text,
                    ))
                }
            }
            Command::User(user) => {
                let user = self.word(user)?;
                let mut shown = History::new("USER");
                shown.word(&[&user]);
                self.config.user = Some(user);
                config_only(shown.text)
            }
            Command::Volume(paths) => {
                let mut expanded = Vec::new();
                for p in paths {
                    expanded.push(self.word(p)?);
                }
                let volumes = self.config.volumes.get_or_insert_with(BTreeMap::new);
                for p in &expanded {
                    volumes.insert(p.clone(), serde_json::json!({}));
                }
                config_only(format!("VOLUME [{}]", expanded.join(" ")))
            }
            Command::StopSignal(signal) => {
                let signal = self.word(signal)?;
                if !is_valid_signal(&signal) {
                    return Err(GraphErrorKind::Invalid(format!(
                        "invalid STOPSIGNAL {signal:?}: expected a signal name such as SIGTERM or a number from 1 to 64"
                    )));
                }
                self.config.stop_signal = Some(signal.clone());
                config_only(format!("STOPSIGNAL {signal}"))
            }
            Command::Cmd(line) => {
                let argv = self.command_argv(line);
                let shown = serde_json::to_string(&argv).unwrap_or_default();
                self.config.cmd = Some(argv);
                self.cmd_set = true;
                config_only(format!("CMD {shown}"))
            }
            Command::Entrypoint(line) => {
                let argv = self.command_argv(line);
                let shown = serde_json::to_string(&argv).unwrap_or_default();
                self.config.entrypoint = Some(argv);
                if !self.cmd_set {
                    self.config.cmd = None;
                }
                config_only(format!("ENTRYPOINT {shown}"))
            }
            Command::Shell(shell) => {
                self.config.shell = Some(shell.clone());
                config_only(format!("SHELL [{}]", shell.join(" ")))
            }
            Command::Healthcheck(check) => {
                let health = match check {
                    HealthcheckCmd::None => Healthcheck {
                        test: vec!["NONE".into()],
                        ..Healthcheck::default()
                    },
                    HealthcheckCmd::Check {
                        test,
                        interval,
                        timeout,
                        start_period,
                        start_interval,
                        retries,
                    } => Healthcheck {
                        test: test.clone(),
                        interval: *interval,
                        timeout: *timeout,
                        start_period: *start_period,
                        start_interval: *start_interval,
                        retries: *retries,
                    },
                };
                let shown = serde_json::to_string(&health.test).unwrap_or_default();
                self.config.healthcheck = Some(health);
                config_only(format!("HEALTHCHECK {shown}"))
            }
            Command::Onbuild { expression, .. } => {
                self.config
                    .on_build
                    .get_or_insert_with(Vec::new)
                    .push(expression.clone());
                config_only(format!("ONBUILD {expression}"))
            }
            Command::Run(run) => {
                let (argv, script_files) = match &run.command {
                    CommandLine::Exec(args) => (args.clone(), Vec::new()),
                    CommandLine::Shell(text) => self.shell_run(text, &run.heredocs),
                };
                let mut ssh_mounts = 0;
                let mounts = run
                    .mounts
                    .iter()
                    .map(|m| {
                        let mount = self.mount(m, ssh_mounts);
                        if m.kind == MountKind::Ssh {
                            ssh_mounts += 1;
                        }
                        mount
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let network = match run.network.as_deref() {
                    Some("none") => RunNetwork::None,
                    Some("host") => RunNetwork::Host,
                    _ => RunNetwork::Default,
                };
                let context = self.scope.run_context();
                let created_by = run_history(context.history_count, context.history_args, &argv);
                let step = RunStep {
                    argv,
                    env: context.env,
                    workdir: self.workdir().to_string(),
                    user: self.config.user.clone().unwrap_or_default(),
                    mounts,
                    network,
                    insecure: run.security.as_deref() == Some("insecure"),
                    script_files,
                };
                Ok((StepKind::Run(step), created_by))
            }
            Command::Copy(copy) => self.copy(copy, false),
            Command::Add(copy) => self.copy(copy, true),
        }
    }

    /// A shell-form RUN. With heredocs, the shell gets the line followed by the bodies,
    /// so it handles them itself; a RUN that is only a heredoc runs the body as the
    /// script (by its shebang when it has one), as BuildKit does.
    fn shell_run(
        &self,
        text: &str,
        heredocs: &[parser::Heredoc],
    ) -> (Vec<String>, Vec<ScriptFile>) {
        if heredocs.is_empty() {
            return (self.shell_argv(text), Vec::new());
        }
        let sole = parser::heredoc_marker(text.trim());
        if let (Some(marker), [doc]) = (sole, heredocs) {
            if marker.name == doc.name {
                if doc.content.starts_with("#!") {
                    let path = format!("/dev/pipes/{}", doc.name);
                    let file = ScriptFile {
                        path: path.clone(),
                        content: doc.content.clone(),
                        mode: 0o755,
                    };
                    return (vec![path], vec![file]);
                }
                return (self.shell_argv(&doc.content), Vec::new());
            }
        }
        let mut script = text.to_string();
        script.push('\n');
        for doc in heredocs {
            script.push_str(&doc.content);
            if !doc.content.is_empty() && !doc.content.ends_with('\n') {
                script.push('\n');
            }
            script.push_str(&doc.name);
            script.push('\n');
        }
        (self.shell_argv(&script), Vec::new())
    }

    /// One `--mount`; `ssh_index` counts the ssh mounts of the RUN before it (an ssh
    /// socket's default target is numbered, as BuildKit numbers it).
    fn mount(&self, flag: &MountFlag, ssh_index: usize) -> Result<Mount, GraphErrorKind> {
        // The options by name, values expanded; the last of a name wins. A mount has a
        // few: a list is searched faster than a map is built.
        let mut values: Vec<(&str, Option<Cow<'_, str>>)> = Vec::with_capacity(flag.options.len());
        for (key, value) in &flag.options {
            let key = match key.as_str() {
                "dst" | "destination" => "target",
                "src" => "source",
                "readonly" => "ro",
                "readwrite" => "rw",
                other => other,
            };
            let value = value.as_ref().map(|v| self.word_cow(v)).transpose()?;
            match values.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => values.push((key, value)),
            }
        }
        let get = |key: &str| values.iter().find(|(k, _)| *k == key).map(|(_, v)| v);
        let value = |key: &str| get(key).and_then(|v| v.as_deref());
        let text = |key: &str| value(key).map(str::to_string);
        let flag_bool = |key: &str| match get(key) {
            None => Ok(None),
            Some(None) => Ok(Some(true)),
            Some(Some(v)) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" => Ok(Some(true)),
                "false" | "0" => Ok(Some(false)),
                _ => Err(GraphErrorKind::Invalid(format!(
                    "invalid value {v:?} for mount option {key}: expected true or false"
                ))),
            },
        };
        let number = |key: &str, default: u32, radix: u32| -> Result<u32, GraphErrorKind> {
            match value(key) {
                None => Ok(default),
                Some(v) => u32::from_str_radix(v, radix).map_err(|_| {
                    GraphErrorKind::Invalid(format!(
                        "invalid value {v:?} for mount option {key}: expected a number"
                    ))
                }),
            }
        };
        let target = value("target").map(|t| resolve_path(self.workdir(), t));
        let from = value("from").map(|f| self.resolve_from(f)).transpose()?;
        let source = text("source").unwrap_or_else(|| "/".into());
        Ok(match flag.kind {
            MountKind::Bind => Mount::Bind {
                target: target.unwrap_or_default(),
                from: from.unwrap_or(CopyFrom::Context),
                source,
                readwrite: flag_bool("rw")?.unwrap_or(false) || flag_bool("ro")? == Some(false),
            },
            MountKind::Cache => {
                let target = target.unwrap_or_default();
                Mount::Cache {
                    id: text("id").unwrap_or_else(|| target.clone()),
                    target,
                    sharing: match value("sharing") {
                        None | Some("shared") => Sharing::Shared,
                        Some("private") => Sharing::Private,
                        Some("locked") => Sharing::Locked,
                        Some(other) => {
                            return Err(GraphErrorKind::Invalid(format!(
                                "invalid sharing {other:?}: expected shared, private or locked"
                            )))
                        }
                    },
                    from,
                    source,
                    readonly: flag_bool("ro")?.unwrap_or(false),
                    mode: number("mode", 0o755, 8)?,
                    uid: number("uid", 0, 10)?,
                    gid: number("gid", 0, 10)?,
                }
            }
            MountKind::Tmpfs => Mount::Tmpfs {
                target: target.unwrap_or_default(),
                size: text("size")
                    .map(|s| {
                        crate::oci::parse_size(&s).ok_or_else(|| {
                            GraphErrorKind::Invalid(format!(
                                "invalid tmpfs size {s:?}: expected bytes such as 64m"
                            ))
                        })
                    })
                    .transpose()?,
            },
            MountKind::Secret => {
                // As BuildKit: the id is `id`, else `source`, else the target's name.
                let id = match (text("id"), text("source")) {
                    (Some(_), Some(_)) => {
                        return Err(GraphErrorKind::Invalid(
                            "a secret mount takes id or source, not both".into(),
                        ))
                    }
                    (Some(id), None) | (None, Some(id)) => id,
                    (None, None) => match &target {
                        Some(t) => base_name(t).to_string(),
                        None => {
                            return Err(GraphErrorKind::Invalid(
                                "a secret mount needs an id (or a target), as in id=NAME".into(),
                            ))
                        }
                    },
                };
                if id.is_empty() {
                    return Err(GraphErrorKind::Invalid(
                        "a secret mount needs a non-empty id".into(),
                    ));
                }
                let env = text("env");
                // Only an environment variable when `env` is given without a target.
                let target = match (target, &env) {
                    (Some(target), _) => Some(target),
                    (None, Some(_)) => None,
                    (None, None) => Some(format!("/run/secrets/{}", base_name(&id))),
                };
                Mount::Secret {
                    target,
                    id,
                    required: flag_bool("required")?.unwrap_or(false),
                    env,
                    mode: number("mode", 0o400, 8)?,
                    uid: number("uid", 0, 10)?,
                    gid: number("gid", 0, 10)?,
                }
            }
            MountKind::Ssh => Mount::Ssh {
                target: target.unwrap_or_else(|| format!("/run/buildkit/ssh_agent.{ssh_index}")),
                id: text("id")
                    .filter(|id| !id.is_empty())
                    .unwrap_or_else(|| "default".into()),
                required: flag_bool("required")?.unwrap_or(false),
                mode: number("mode", 0o600, 8)?,
                uid: number("uid", 0, 10)?,
                gid: number("gid", 0, 10)?,
            },
        })
    }

    fn copy(&self, copy: &CopyCmd, add: bool) -> Result<(StepKind, String), GraphErrorKind> {
        let keyword = if add { "ADD" } else { "COPY" };
        let mut sources = Vec::new();
        for source in &copy.sources {
            sources.push(match source {
                SourceSpec::Heredoc(doc) => {
                    let content = if doc.expand {
                        let mut heredoc_lexer = self.lexer;
                        heredoc_lexer.skip_process_quotes = true;
                        heredoc_lexer.process_word(&doc.content, &self.scope)?
                    } else {
                        doc.content.clone()
                    };
                    CopySource::Heredoc {
                        name: doc.name.clone(),
                        content,
                    }
                }
                SourceSpec::Path(path) => {
                    let path = self.word(path)?;
                    if add && is_git_source(&path) {
                        return Err(GraphErrorKind::GitSource(path));
                    }
                    if add && (path.starts_with("http://") || path.starts_with("https://")) {
                        CopySource::Url(path)
                    } else {
                        CopySource::Path(path)
                    }
                }
            });
        }
        let dest_word = self.word_cow(&copy.dest)?;
        let mut dest = resolve_path(self.workdir(), &dest_word);
        let is_dir = dest_word.is_empty()
            || dest_word == "."
            || dest_word.ends_with('/')
            || dest_word.ends_with("/.");
        if is_dir && !dest.ends_with('/') {
            dest.push('/');
        }
        let from_word = copy.from.as_ref().map(|f| self.word_cow(f)).transpose()?;
        let from = match &from_word {
            None => CopyFrom::Context,
            Some(f) => self.resolve_from(f)?,
        };
        let chmod_word = copy.chmod.as_ref().map(|c| self.word_cow(c)).transpose()?;
        let chmod = match &chmod_word {
            None => None,
            Some(text) => match u32::from_str_radix(text, 8) {
                Ok(mode) if mode <= 0o7777 => Some(mode),
                _ => {
                    return Err(GraphErrorKind::Invalid(format!(
                        "invalid --chmod={text}: expected an octal mode such as 0755"
                    )))
                }
            },
        };
        let checksum = copy.checksum.as_ref().map(|c| self.word(c)).transpose()?;
        if let Some(sum) = &checksum {
            if sum.parse::<crate::oci::Digest>().is_err() {
                return Err(GraphErrorKind::Invalid(format!(
                    "invalid --checksum={sum}: expected sha256: followed by 64 hex digits"
                )));
            }
        }
        let step = CopyStep {
            add,
            sources,
            dest,
            from,
            chown: copy.chown.as_ref().map(|c| self.word(c)).transpose()?,
            chmod,
            link: copy.link,
            parents: copy.parents,
            excludes: copy
                .excludes
                .iter()
                .map(|e| self.word(e))
                .collect::<Result<Vec<_>, _>>()?,
            checksum,
            keep_git_dir: copy.keep_git_dir,
            workdir: self.workdir().to_string(),
        };
        // The step as written, its variables expanded: what `lade history` shows.
        let mut shown = History::new(keyword);
        if let Some(from) = &from_word {
            shown.word(&["--from=", from]);
        }
        if let Some(chown) = &step.chown {
            shown.word(&["--chown=", chown]);
        }
        if let Some(chmod) = &chmod_word {
            shown.word(&["--chmod=", chmod]);
        }
        if let Some(checksum) = &step.checksum {
            shown.word(&["--checksum=", checksum]);
        }
        if step.keep_git_dir {
            shown.word(&["--keep-git-dir"]);
        }
        if step.link {
            shown.word(&["--link"]);
        }
        if step.parents {
            shown.word(&["--parents"]);
        }
        for exclude in &step.excludes {
            shown.word(&["--exclude=", exclude]);
        }
        for source in &step.sources {
            match source {
                CopySource::Path(p) | CopySource::Url(p) => shown.word(&[p]),
                CopySource::Heredoc { name, .. } => shown.word(&["<<", name]),
            }
        }
        shown.word(&[&dest_word]);
        shown.text.push_str(HISTORY_SUFFIX);
        Ok((StepKind::Copy(step), shown.text))
    }
}

/// A step's history text, built in one string: the keyword, then words separated by
/// spaces, each written from its parts.
struct History {
    text: String,
    words: usize,
}

impl History {
    fn new(keyword: &str) -> History {
        History::with_room(keyword, 64)
    }

    /// A history text that `room` bytes of words will fit in.
    fn with_room(keyword: &str, room: usize) -> History {
        let mut text = String::with_capacity(keyword.len() + 1 + room);
        text.push_str(keyword);
        text.push(' ');
        History { text, words: 0 }
    }

    /// The room `KEY=VALUE` words take.
    fn pairs_room<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> usize {
        pairs
            .iter()
            .map(|(k, v)| k.as_ref().len() + v.as_ref().len() + 2)
            .sum()
    }

    fn word(&mut self, parts: &[&str]) {
        if self.words > 0 {
            self.text.push(' ');
        }
        for part in parts {
            self.text.push_str(part);
        }
        self.words += 1;
    }
}

/// A RUN's history text, as BuildKit writes it: `RUN |N K=V ... ` when build arguments
/// are in scope (`count` of them, `K=V ` each in `args`), then the argv joined by spaces.
fn run_history(count: usize, args: &str, argv: &[String]) -> String {
    use std::fmt::Write;
    // `|`, the count's digits and a space.
    const COUNT_ROOM: usize = 22;
    let len = "RUN ".len()
        + COUNT_ROOM
        + args.len()
        + argv.iter().map(|a| a.len() + 1).sum::<usize>()
        + HISTORY_SUFFIX.len();
    let mut text = String::with_capacity(len);
    text.push_str("RUN ");
    if count > 0 {
        // Writing to a String cannot fail.
        let _ = write!(text, "|{count} ");
    }
    text.push_str(args);
    for (i, arg) in argv.iter().enumerate() {
        if i > 0 {
            text.push(' ');
        }
        text.push_str(arg);
    }
    text.push_str(HISTORY_SUFFIX);
    text
}

/// The last name of a slash-separated path, as Go's `path.Base` (`a/b/` gives `b`).
fn base_name(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rsplit('/').next() {
        Some(name) if !name.is_empty() => name,
        _ => path,
    }
}

/// `path` made absolute against `base` (unless it is absolute) and cleaned, without a
/// joined string in between.
pub(crate) fn resolve_path(base: &str, path: &str) -> String {
    if path.starts_with('/') {
        return clean_path(path);
    }
    clean_parts(
        base.split('/').chain(path.split('/')),
        base.len() + path.len() + 2,
    )
}

/// Lexical clean of an absolute path, as Go's `path.Clean`: no `.`, `..` or `//`.
pub(crate) fn clean_path(path: &str) -> String {
    clean_parts(path.split('/'), path.len() + 1)
}

/// The clean path of slash-separated parts; `room` is what the result may need.
fn clean_parts<'p>(parts: impl Iterator<Item = &'p str>, room: usize) -> String {
    let mut clean = String::with_capacity(room);
    for part in parts {
        match part {
            "" | "." => {}
            ".." => {
                let parent = clean.rfind('/').unwrap_or(0);
                clean.truncate(parent);
            }
            name => {
                clean.push('/');
                clean.push_str(name);
            }
        }
    }
    if clean.is_empty() {
        clean.push('/');
    }
    clean
}

/// EXPOSE values: `80`, `80/tcp`, `53/udp`, `8000-8010[/proto]`, as `port/proto` keys.
fn parse_ports(spec: &str) -> Result<Vec<String>, ExposeError> {
    let (ports, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
    let Some(proto) = ["tcp", "udp", "sctp"]
        .into_iter()
        .find(|known| known.eq_ignore_ascii_case(proto))
    else {
        return Err(ExposeError::Protocol(spec.to_string()));
    };
    let port = |text: &str| -> Result<u16, ExposeError> {
        text.parse::<u16>()
            .map_err(|_| ExposeError::Port(spec.to_string()))
    };
    let (start, end) = match ports.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => {
            let p = port(ports)?;
            (p, p)
        }
    };
    if start > end {
        return Err(ExposeError::Range(spec.to_string()));
    }
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

/// A bad EXPOSE value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExposeError {
    #[error("invalid protocol in EXPOSE {0:?}: expected tcp, udp or sctp")]
    Protocol(String),
    #[error("invalid port in EXPOSE {0:?}: expected a number from 0 to 65535")]
    Port(String),
    #[error("invalid port range in EXPOSE {0:?}: the start is after the end")]
    Range(String),
}

const SIGNALS: [&str; 31] = [
    "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "IOT", "BUS", "FPE", "KILL", "USR1", "SEGV",
    "USR2", "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU",
    "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "SYS",
];

fn is_valid_signal(text: &str) -> bool {
    if let Ok(n) = text.parse::<u32>() {
        return (1..=64).contains(&n);
    }
    let name = text.to_ascii_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name);
    if SIGNALS.contains(&name) {
        return true;
    }
    ["RTMIN+", "RTMAX-"].iter().any(|p| {
        name.strip_prefix(p)
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| n <= 30)
    }) || name == "RTMIN"
        || name == "RTMAX"
}

/// Whether an ADD source is a git repository as BuildKit tells one (its `ParseGitRef`):
/// a `git://` or `ssh://` URL, an `http(s)://` URL whose path ends in `.git`, or
/// scp's `user@host:path`.
fn is_git_source(source: &str) -> bool {
    let lower = source.to_ascii_lowercase();
    if lower.starts_with("git://") || lower.starts_with("ssh://") {
        return true;
    }
    if lower.starts_with("http://") || lower.starts_with("https://") {
        let path = source.split(['?', '#']).next().unwrap_or_default();
        let after_host = path.splitn(4, '/').nth(3).unwrap_or_default();
        return after_host.ends_with(".git");
    }
    let Some((user, rest)) = source.split_once('@') else {
        return false;
    };
    let Some((host, _)) = rest.split_once(':') else {
        return false;
    };
    let word = |text: &str, extra: &[char]| {
        !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || extra.contains(&c))
    };
    word(user, &['_']) && word(host, &['.'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(clean_path("/a/./b//../c/"), "/a/c");
        assert_eq!(clean_path("/../.."), "/");
        for (base, path, resolved) in [
            ("/app", "x", "/app/x"),
            ("/app/", "/x", "/x"),
            ("/", "a/../../b/", "/b"),
            ("/a/b/", "./c//d/..", "/a/b/c"),
            ("/a", "", "/a"),
            ("/a", ".", "/a"),
            ("/a/b", "../..", "/"),
        ] {
            assert_eq!(resolve_path(base, path), resolved, "{base} {path}");
        }
    }

    #[test]
    fn ports() {
        assert_eq!(parse_ports("80").unwrap(), vec!["80/tcp"]);
        assert_eq!(parse_ports("53/UDP").unwrap(), vec!["53/udp"]);
        assert_eq!(
            parse_ports("8000-8002").unwrap(),
            vec!["8000/tcp", "8001/tcp", "8002/tcp"]
        );
        assert!(parse_ports("http").is_err());
        assert!(parse_ports("80/icmp").is_err());
        assert!(parse_ports("9-8").is_err());
        assert!(parse_ports("70000").is_err());
    }

    #[test]
    fn signals_and_sizes() {
        assert!(is_valid_signal("SIGTERM") && is_valid_signal("kill") && is_valid_signal("9"));
        assert!(is_valid_signal("SIGRTMIN+3"));
        assert!(!is_valid_signal("SIGFOO") && !is_valid_signal("0") && !is_valid_signal("65"));
        use crate::oci::parse_size;
        assert_eq!(parse_size("64m"), Some(64 << 20));
        assert_eq!(parse_size("1GiB"), Some(1 << 30));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("x"), None);
    }

    #[test]
    fn git_sources_are_told_as_buildkit_tells_them() {
        for git in [
            "https://github.com/moby/buildkit.git",
            "https://example.com/a/b.git#v1:sub",
            "git://127.0.0.1/repo",
            "ssh://git@example.com/repo",
            "git@github.com:moby/buildkit.git",
        ] {
            assert!(is_git_source(git), "{git}");
        }
        for other in [
            "https://example.com/archive.tar.gz",
            "https://example.com.git/file",
            "app.git",
            "./git@host:x",
            "dir/file",
        ] {
            assert!(!is_git_source(other), "{other}");
        }
    }
}
