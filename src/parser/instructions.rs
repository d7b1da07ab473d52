//! Typed instructions: each syntax node becomes a command whose flags are checked
//! against what that instruction takes, with Docker's argument rules. Values are kept as
//! written; expansion of `$VARS` happens in the graph, where ARG/ENV scope is known.

use std::sync::Arc;

use super::error::{ErrorKind, ParseError, Source, SourceLocation};
use super::go::{csv_fields, parse_duration};
use super::syntax::{parse_heredoc_marker, Args, Flag, Heredoc, Node};

/// An instruction keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Keyword {
    From,
    Run,
    Cmd,
    Label,
    Maintainer,
    Expose,
    Env,
    Add,
    Copy,
    Entrypoint,
    Volume,
    User,
    Workdir,
    Arg,
    Onbuild,
    Stopsignal,
    Healthcheck,
    Shell,
}

const KEYWORDS: [(Keyword, &str); 18] = [
    (Keyword::From, "FROM"),
    (Keyword::Run, "RUN"),
    (Keyword::Cmd, "CMD"),
    (Keyword::Label, "LABEL"),
    (Keyword::Maintainer, "MAINTAINER"),
    (Keyword::Expose, "EXPOSE"),
    (Keyword::Env, "ENV"),
    (Keyword::Add, "ADD"),
    (Keyword::Copy, "COPY"),
    (Keyword::Entrypoint, "ENTRYPOINT"),
    (Keyword::Volume, "VOLUME"),
    (Keyword::User, "USER"),
    (Keyword::Workdir, "WORKDIR"),
    (Keyword::Arg, "ARG"),
    (Keyword::Onbuild, "ONBUILD"),
    (Keyword::Stopsignal, "STOPSIGNAL"),
    (Keyword::Healthcheck, "HEALTHCHECK"),
    (Keyword::Shell, "SHELL"),
];

impl Keyword {
    pub fn parse(word: &str) -> Option<Keyword> {
        KEYWORDS
            .iter()
            .find(|(_, name)| name.eq_ignore_ascii_case(word))
            .map(|(k, _)| *k)
    }

    pub fn as_str(self) -> &'static str {
        KEYWORDS
            .iter()
            .find(|(k, _)| *k == self)
            .map(|(_, name)| *name)
            .unwrap_or("?")
    }

    /// The closest keyword to a misspelt one, if any is close.
    fn suggest(word: &str) -> Option<&'static str> {
        let upper = word.to_ascii_uppercase();
        KEYWORDS
            .iter()
            .map(|(_, name)| (strsim::damerau_levenshtein(&upper, name), *name))
            .filter(|(distance, name)| *distance <= 2 && *distance < name.len() / 2 + 1)
            .min()
            .map(|(_, name)| name)
    }

    fn flag_specs(self) -> &'static [(&'static str, FlagKind)] {
        use FlagKind::*;
        match self {
            Keyword::From => &[("platform", Value)],
            Keyword::Run => &[("mount", Many), ("network", Value), ("security", Value)],
            Keyword::Add => &[
                ("chown", Value),
                ("chmod", Value),
                ("checksum", Value),
                ("keep-git-dir", Bool),
                ("link", Bool),
                ("exclude", Many),
            ],
            Keyword::Copy => &[
                ("from", Value),
                ("chown", Value),
                ("chmod", Value),
                ("link", Bool),
                ("parents", Bool),
                ("exclude", Many),
            ],
            Keyword::Healthcheck => &[
                ("interval", Value),
                ("timeout", Value),
                ("start-period", Value),
                ("start-interval", Value),
                ("retries", Value),
            ],
            _ => &[],
        }
    }
}

impl std::fmt::Display for Keyword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlagKind {
    /// `--name=value`, once.
    Value,
    /// `--name` or `--name=true|false`, once.
    Bool,
    /// `--name=value`, any number of times.
    Many,
}

/// A validated instruction with its location.
#[derive(Debug, Clone, PartialEq)]
pub struct Instruction {
    pub command: Command,
    /// The joined logical line as written (keyword included); the steps made from the
    /// instruction share it.
    pub original: Arc<str>,
    pub location: SourceLocation,
    pub start_line: usize,
    pub end_line: usize,
}

impl Instruction {
    pub fn keyword(&self) -> Keyword {
        self.command.keyword()
    }
}

/// Shell form or exec (JSON) form of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    Shell(String),
    Exec(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    pub name: String,
    pub default: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromCmd {
    pub image: String,
    /// The `AS` name, lower-cased (stage names are case-insensitive).
    pub stage_name: Option<String>,
    pub platform: Option<String>,
}

/// One `--mount=...` of a RUN, as `key[=value]` pairs; values are expanded later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountFlag {
    pub kind: MountKind,
    pub options: Vec<(String, Option<String>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MountKind {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

impl MountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MountKind::Bind => "bind",
            MountKind::Cache => "cache",
            MountKind::Tmpfs => "tmpfs",
            MountKind::Secret => "secret",
            MountKind::Ssh => "ssh",
        }
    }

    fn keys(self) -> &'static [&'static str] {
        match self {
            MountKind::Bind => &[
                "type",
                "target",
                "dst",
                "destination",
                "source",
                "src",
                "from",
                "ro",
                "readonly",
                "rw",
                "readwrite",
            ],
            MountKind::Cache => &[
                "type",
                "target",
                "dst",
                "destination",
                "source",
                "src",
                "from",
                "ro",
                "readonly",
                "rw",
                "readwrite",
                "id",
                "sharing",
                "mode",
                "uid",
                "gid",
            ],
            MountKind::Tmpfs => &["type", "target", "dst", "destination", "size"],
            MountKind::Secret => &[
                "type",
                "target",
                "dst",
                "destination",
                "source",
                "src",
                "id",
                "required",
                "mode",
                "uid",
                "gid",
                "env",
            ],
            MountKind::Ssh => &[
                "type",
                "target",
                "dst",
                "destination",
                "id",
                "required",
                "mode",
                "uid",
                "gid",
            ],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunCmd {
    pub command: CommandLine,
    pub heredocs: Vec<Heredoc>,
    pub mounts: Vec<MountFlag>,
    /// `default`, `none` or `host`.
    pub network: Option<String>,
    /// `sandbox` or `insecure`.
    pub security: Option<String>,
}

/// A source of COPY or ADD: a path (or glob, or URL for ADD) or a heredoc body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    Path(String),
    Heredoc(Heredoc),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CopyCmd {
    pub sources: Vec<SourceSpec>,
    pub dest: String,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    pub excludes: Vec<String>,
    /// ADD only.
    pub checksum: Option<String>,
    /// ADD only.
    pub keep_git_dir: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthcheckCmd {
    /// `HEALTHCHECK NONE`: disable an inherited check.
    None,
    /// `HEALTHCHECK [options] CMD ...`; times in nanoseconds, 0 when not set.
    Check {
        test: Vec<String>,
        interval: u64,
        timeout: u64,
        start_period: u64,
        start_interval: u64,
        retries: u64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    From(FromCmd),
    Run(RunCmd),
    Cmd(CommandLine),
    Entrypoint(CommandLine),
    Shell(Vec<String>),
    Env(Vec<KeyValue>),
    Label(Vec<KeyValue>),
    Maintainer(String),
    Expose(Vec<String>),
    Add(CopyCmd),
    Copy(CopyCmd),
    Volume(Vec<String>),
    User(String),
    Workdir(String),
    Arg(Vec<ArgDecl>),
    /// The trigger as written (e.g. `RUN make`), and the parsed instruction.
    Onbuild {
        expression: String,
        inner: Box<Instruction>,
    },
    StopSignal(String),
    Healthcheck(HealthcheckCmd),
}

impl Command {
    pub fn keyword(&self) -> Keyword {
        match self {
            Command::From(_) => Keyword::From,
            Command::Run(_) => Keyword::Run,
            Command::Cmd(_) => Keyword::Cmd,
            Command::Entrypoint(_) => Keyword::Entrypoint,
            Command::Shell(_) => Keyword::Shell,
            Command::Env(_) => Keyword::Env,
            Command::Label(_) => Keyword::Label,
            Command::Maintainer(_) => Keyword::Maintainer,
            Command::Expose(_) => Keyword::Expose,
            Command::Add(_) => Keyword::Add,
            Command::Copy(_) => Keyword::Copy,
            Command::Volume(_) => Keyword::Volume,
            Command::User(_) => Keyword::User,
            Command::Workdir(_) => Keyword::Workdir,
            Command::Arg(_) => Keyword::Arg,
            Command::Onbuild { .. } => Keyword::Onbuild,
            Command::StopSignal(_) => Keyword::Stopsignal,
            Command::Healthcheck(_) => Keyword::Healthcheck,
        }
    }
}

/// Flags given to one instruction, by name, in the order given. Each value is its flag's
/// own string with the `name=` taken off, so taking one copies nothing. An instruction has
/// a few flags: a list is searched faster than a map is built.
struct Flags {
    values: Vec<FlagValue>,
}

struct FlagValue {
    name: &'static str,
    /// `None` for a bare `--name`; taken (`None`) once read.
    value: Option<String>,
    /// Where the flag is in the node's `original`.
    offset: usize,
}

impl Flags {
    fn value(&mut self, name: &str) -> Option<String> {
        self.values
            .iter_mut()
            .rev()
            .find(|f| f.name == name)
            .and_then(|f| f.value.take())
    }

    fn bool(&self, name: &str) -> bool {
        self.values
            .iter()
            .rev()
            .find(|f| f.name == name)
            .is_some_and(|f| {
                f.value
                    .as_deref()
                    .is_none_or(|value| value.eq_ignore_ascii_case("true"))
            })
    }

    fn many(&mut self, name: &str) -> Vec<String> {
        self.values
            .iter_mut()
            .filter(|f| f.name == name)
            .filter_map(|f| f.value.take())
            .collect()
    }

    /// Where the first flag of that name is, for errors about its value.
    fn offset(&self, name: &str) -> usize {
        self.values
            .iter()
            .find(|f| f.name == name)
            .map_or(0, |f| f.offset)
    }
}

/// Turns syntax nodes into typed instructions.
pub(crate) struct Builder<'a> {
    pub source: &'a Source,
}

impl Builder<'_> {
    fn error(&self, node: &Node, offset_in_original: usize, kind: ErrorKind) -> ParseError {
        self.source
            .error_at(node.source_offset(offset_in_original), kind)
    }

    /// Takes the node: its strings move into the instruction, none is copied.
    pub(crate) fn instruction(&self, mut node: Node) -> Result<Instruction, ParseError> {
        let args = std::mem::replace(&mut node.args, Args::Empty);
        let heredocs = std::mem::take(&mut node.heredocs);
        let node_flags = std::mem::take(&mut node.flags);
        let node = &node;
        let at_start = |kind| self.error(node, 0, kind);
        let keyword = Keyword::parse(node.keyword()).ok_or_else(|| {
            at_start(ErrorKind::UnknownInstruction {
                name: node.keyword().to_string(),
                suggestion: Keyword::suggest(node.keyword()),
            })
        })?;
        let mut flags = self.flags(node, node_flags, keyword)?;
        let missing = |expected: &'static str| {
            at_start(ErrorKind::MissingArguments {
                instruction: keyword.as_str().to_string(),
                expected,
            })
        };
        let command = match keyword {
            Keyword::From => {
                let Args::List(words) = &args else {
                    return Err(missing("requires either one or three arguments: FROM image [AS name]"));
                };
                let stage_name = match words.as_slice() {
                    [_] => None,
                    [_, as_word, name] if as_word.eq_ignore_ascii_case("as") => {
                        let name = name.to_ascii_lowercase();
                        let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
                            && name
                                .chars()
                                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
                        if !valid {
                            return Err(at_start(ErrorKind::Invalid(format!(
                                "invalid stage name {name:?}: expected a letter, then letters, digits, '-', '_' or '.'"
                            ))));
                        }
                        Some(name)
                    }
                    _ => return Err(missing("requires either one or three arguments: FROM image [AS name]")),
                };
                Command::From(FromCmd {
                    image: words[0].clone(),
                    stage_name,
                    platform: flags.value("platform"),
                })
            }
            Keyword::Run => {
                let command = command_line(args).ok_or_else(|| missing("requires a command"))?;
                let mounts = self.mounts(node, flags.offset("mount"), flags.many("mount"))?;
                let network = flags.value("network");
                if let Some(n) = &network {
                    if !matches!(n.as_str(), "default" | "none" | "host") {
                        let offset = flags.offset("network");
                        return Err(self.flag_value_error(node, offset, "network", n, "expected default, none or host"));
                    }
                }
                let security = flags.value("security");
                if let Some(s) = &security {
                    if !matches!(s.as_str(), "sandbox" | "insecure") {
                        let offset = flags.offset("security");
                        return Err(self.flag_value_error(node, offset, "security", s, "expected sandbox or insecure"));
                    }
                }
                Command::Run(RunCmd {
                    command,
                    heredocs,
                    mounts,
                    network,
                    security,
                })
            }
            Keyword::Cmd => Command::Cmd(command_line(args).unwrap_or(CommandLine::Shell(String::new()))),
            Keyword::Entrypoint => {
                Command::Entrypoint(command_line(args).unwrap_or(CommandLine::Shell(String::new())))
            }
            Keyword::Shell => match args {
                Args::Json(items) if !items.is_empty() => Command::Shell(items),
                Args::Json(_) | Args::Empty => return Err(missing("requires at least one argument, in JSON form")),
                _ => {
                    return Err(at_start(ErrorKind::Invalid(
                        "SHELL requires the arguments to be in JSON form, as in SHELL [\"/bin/sh\", \"-c\"]".into(),
                    )))
                }
            },
            Keyword::Env | Keyword::Label => {
                let Args::KeyValues { pairs, .. } = args else {
                    return Err(missing("requires at least one argument, as in NAME=VALUE"));
                };
                let pairs: Vec<KeyValue> = pairs
                    .into_iter()
                    .map(|(key, value)| KeyValue { key, value })
                    .collect();
                if pairs.iter().any(|kv| kv.key.is_empty()) {
                    return Err(at_start(ErrorKind::Invalid(format!(
                        "{keyword} names can not be blank: expected NAME=VALUE"
                    ))));
                }
                if keyword == Keyword::Env {
                    Command::Env(pairs)
                } else {
                    Command::Label(pairs)
                }
            }
            Keyword::Maintainer => Command::Maintainer(text(args).ok_or_else(|| missing("requires a name"))?),
            Keyword::User => Command::User(text(args).ok_or_else(|| missing("requires exactly one argument"))?),
            Keyword::Workdir => {
                Command::Workdir(text(args).ok_or_else(|| missing("requires exactly one argument"))?)
            }
            Keyword::Stopsignal => {
                Command::StopSignal(text(args).ok_or_else(|| missing("requires exactly one argument"))?)
            }
            Keyword::Expose => match args {
                Args::List(ports) => Command::Expose(ports),
                _ => return Err(missing("requires at least one argument, as in EXPOSE 80/tcp")),
            },
            Keyword::Volume => {
                let items = list(args);
                if items.is_empty() {
                    return Err(missing("requires at least one argument"));
                }
                if items.iter().any(|v| v.trim().is_empty()) {
                    return Err(at_start(ErrorKind::Invalid(
                        "VOLUME specified can not be an empty string".into(),
                    )));
                }
                Command::Volume(items)
            }
            Keyword::Arg => {
                let Args::Words(words) = args else {
                    return Err(missing("requires at least one argument"));
                };
                if words.is_empty() {
                    return Err(missing("requires at least one argument"));
                }
                let decls = words
                    .into_iter()
                    .map(|mut word| match word.find('=') {
                        // The name keeps the word's string; the default is copied out.
                        Some(eq) => {
                            let default = word[eq + 1..].to_string();
                            word.truncate(eq);
                            (word, Some(default))
                        }
                        None => (word, None),
                    })
                    .map(|(name, default)| {
                        if name.is_empty() {
                            Err(at_start(ErrorKind::Invalid("ARG names can not be blank".into())))
                        } else {
                            Ok(ArgDecl { name, default })
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Command::Arg(decls)
            }
            Keyword::Add | Keyword::Copy => {
                let is_json = matches!(args, Args::Json(_));
                let mut words = list(args);
                if words.len() < 2 {
                    return Err(missing(
                        "requires at least two arguments: one or more sources, then the destination",
                    ));
                }
                let dest = words.pop().unwrap_or_default();
                let mut heredocs = heredocs.into_iter();
                let sources = words
                    .into_iter()
                    .map(|word| {
                        let is_heredoc =
                            !is_json && parse_heredoc_marker(&word).ok().flatten().is_some();
                        match heredocs.next().filter(|_| is_heredoc) {
                            Some(doc) => SourceSpec::Heredoc(doc),
                            None => SourceSpec::Path(word),
                        }
                    })
                    .collect();
                let mut copy = CopyCmd {
                    sources,
                    dest,
                    chown: flags.value("chown"),
                    chmod: flags.value("chmod"),
                    link: flags.bool("link"),
                    excludes: flags.many("exclude"),
                    ..CopyCmd::default()
                };
                if keyword == Keyword::Copy {
                    copy.from = flags.value("from");
                    copy.parents = flags.bool("parents");
                    Command::Copy(copy)
                } else {
                    copy.checksum = flags.value("checksum");
                    copy.keep_git_dir = flags.bool("keep-git-dir");
                    Command::Add(copy)
                }
            }
            Keyword::Onbuild => {
                let Args::OnBuild(inner_node) = args else {
                    return Err(missing("requires an instruction to run later, as in ONBUILD RUN make"));
                };
                if let Some(k @ (Keyword::Onbuild | Keyword::From | Keyword::Maintainer)) =
                    Keyword::parse(inner_node.keyword())
                {
                    return Err(at_start(ErrorKind::Invalid(format!(
                        "{k} isn't allowed as an ONBUILD trigger"
                    ))));
                }
                let expression = inner_node.original.to_string();
                let inner = self.instruction(*inner_node)?;
                Command::Onbuild {
                    expression,
                    inner: Box::new(inner),
                }
            }
            Keyword::Healthcheck => Command::Healthcheck(self.healthcheck(node, &args, &mut flags)?),
        };
        Ok(Instruction {
            command,
            original: node.original.clone(),
            location: self.source.location(node.source_offset(0)),
            start_line: node.start_line,
            end_line: node.end_line,
        })
    }

    /// An error about the value of the flag `name`, which is at `offset` in the node.
    fn flag_value_error(
        &self,
        node: &Node,
        offset: usize,
        name: &str,
        value: &str,
        expected: &str,
    ) -> ParseError {
        self.error(
            node,
            offset,
            ErrorKind::InvalidFlagValue {
                flag: name.to_string(),
                value: value.to_string(),
                expected: expected.to_string(),
            },
        )
    }

    /// Checks the node's flags against what `keyword` takes.
    fn flags(
        &self,
        node: &Node,
        node_flags: Vec<Flag>,
        keyword: Keyword,
    ) -> Result<Flags, ParseError> {
        let specs = keyword.flag_specs();
        let mut values: Vec<FlagValue> = Vec::with_capacity(node_flags.len());
        for Flag { mut text, offset } in node_flags {
            let (name, value) = match text.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (text.as_str(), None),
            };
            let err = |kind| self.error(node, offset, kind);
            let Some(&(spec_name, kind)) = specs.iter().find(|(n, _)| *n == name) else {
                return Err(err(ErrorKind::UnknownFlag {
                    flag: name.to_string(),
                    instruction: keyword.as_str().to_string(),
                    valid: specs
                        .iter()
                        .map(|(n, _)| format!("--{n}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                }));
            };
            if kind != FlagKind::Many && values.iter().any(|f| f.name == spec_name) {
                return Err(err(ErrorKind::DuplicateFlag(name.to_string())));
            }
            match (kind, &value) {
                (FlagKind::Value | FlagKind::Many, None) => {
                    return Err(err(ErrorKind::FlagNeedsValue(name.to_string())))
                }
                (FlagKind::Bool, Some(v))
                    if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") =>
                {
                    return Err(err(ErrorKind::InvalidFlagValue {
                        flag: name.to_string(),
                        value: v.to_string(),
                        expected: "expected true or false".into(),
                    }))
                }
                _ => {}
            }
            let value = match value {
                Some(_) => {
                    // The value is the rest of the flag's own string.
                    text.drain(..=spec_name.len());
                    Some(text)
                }
                None => None,
            };
            values.push(FlagValue {
                name: spec_name,
                value,
                offset,
            });
        }
        Ok(Flags { values })
    }

    fn mounts(
        &self,
        node: &Node,
        offset: usize,
        specs: Vec<String>,
    ) -> Result<Vec<MountFlag>, ParseError> {
        specs
            .into_iter()
            .map(|spec| {
                let invalid =
                    |message: String| self.flag_value_error(node, offset, "mount", &spec, &message);
                let options: Vec<(String, Option<String>)> = csv_fields(&spec)
                    .into_iter()
                    .map(|mut field| match field.find('=') {
                        // The value keeps the field's own string.
                        Some(eq) => {
                            let key = field[..eq].trim().to_ascii_lowercase();
                            field.drain(..=eq);
                            (key, Some(field))
                        }
                        None => (field.trim().to_ascii_lowercase(), None),
                    })
                    .collect();
                let kind = match options.iter().find(|(k, _)| k == "type") {
                    None => MountKind::Bind,
                    Some((_, value)) => match value.as_deref() {
                        Some("bind") => MountKind::Bind,
                        Some("cache") => MountKind::Cache,
                        Some("tmpfs") => MountKind::Tmpfs,
                        Some("secret") => MountKind::Secret,
                        Some("ssh") => MountKind::Ssh,
                        other => {
                            return Err(invalid(format!(
                            "unknown mount type {:?}: expected bind, cache, tmpfs, secret or ssh",
                            other.unwrap_or_default()
                        )))
                        }
                    },
                };
                for (key, _) in &options {
                    if !kind.keys().contains(&key.as_str()) {
                        return Err(invalid(format!(
                            "unexpected key {key:?} for a {} mount: expected one of {}",
                            kind.as_str(),
                            kind.keys().join(", ")
                        )));
                    }
                }
                let has_target = options
                    .iter()
                    .any(|(k, _)| matches!(k.as_str(), "target" | "dst" | "destination"));
                if !has_target
                    && matches!(kind, MountKind::Bind | MountKind::Cache | MountKind::Tmpfs)
                {
                    return Err(invalid("a target is required, as in target=/path".into()));
                }
                Ok(MountFlag { kind, options })
            })
            .collect()
    }

    fn healthcheck(
        &self,
        node: &Node,
        args: &Args,
        flags: &mut Flags,
    ) -> Result<HealthcheckCmd, ParseError> {
        let at_start = |kind| self.error(node, 0, kind);
        let Args::Healthcheck { kind, command } = args else {
            return Err(at_start(ErrorKind::MissingArguments {
                instruction: "HEALTHCHECK".into(),
                expected: "requires CMD or NONE",
            }));
        };
        match kind.to_ascii_uppercase().as_str() {
            "NONE" => {
                if **command != Args::Empty {
                    return Err(at_start(ErrorKind::Invalid(
                        "HEALTHCHECK NONE takes no arguments".into(),
                    )));
                }
                Ok(HealthcheckCmd::None)
            }
            "CMD" => {
                let test = match command_line((**command).clone()) {
                    Some(CommandLine::Exec(args)) if !args.is_empty() => {
                        let mut test = vec!["CMD".to_string()];
                        test.extend(args);
                        test
                    }
                    Some(CommandLine::Shell(text)) => vec!["CMD-SHELL".to_string(), text],
                    _ => {
                        return Err(at_start(ErrorKind::Invalid(
                            "missing command after HEALTHCHECK CMD".into(),
                        )))
                    }
                };
                let mut duration = |name: &str| -> Result<u64, ParseError> {
                    let Some(value) = flags.value(name) else {
                        return Ok(0);
                    };
                    let offset = flags.offset(name);
                    let nanos = parse_duration(&value).ok_or_else(|| {
                        self.flag_value_error(
                            node,
                            offset,
                            name,
                            &value,
                            "expected a duration such as 30s or 1m30s",
                        )
                    })?;
                    if nanos != 0 && nanos < 1_000_000 {
                        return Err(self.flag_value_error(
                            node,
                            offset,
                            name,
                            &value,
                            "cannot be less than 1ms",
                        ));
                    }
                    Ok(nanos)
                };
                let interval = duration("interval")?;
                let timeout = duration("timeout")?;
                let start_period = duration("start-period")?;
                let start_interval = duration("start-interval")?;
                let retries = match flags.value("retries") {
                    None => 0,
                    Some(v) => v.parse::<u64>().map_err(|_| {
                        let offset = flags.offset("retries");
                        self.flag_value_error(
                            node,
                            offset,
                            "retries",
                            &v,
                            "expected a whole number",
                        )
                    })?,
                };
                Ok(HealthcheckCmd::Check {
                    test,
                    interval,
                    timeout,
                    start_period,
                    start_interval,
                    retries,
                })
            }
            other => Err(at_start(ErrorKind::Invalid(format!(
                "unknown type {other:?} in HEALTHCHECK: expected CMD or NONE"
            )))),
        }
    }
}

fn command_line(args: Args) -> Option<CommandLine> {
    match args {
        Args::Json(items) => Some(CommandLine::Exec(items)),
        Args::Text(text) => Some(CommandLine::Shell(text)),
        _ => None,
    }
}

fn text(args: Args) -> Option<String> {
    match args {
        Args::Text(text) => Some(text),
        _ => None,
    }
}

fn list(args: Args) -> Vec<String> {
    match args {
        Args::Json(items) | Args::List(items) => items,
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(Keyword::suggest("FORM"), Some("FROM"));
        assert_eq!(Keyword::suggest("cpoy"), Some("COPY"));
        assert_eq!(Keyword::suggest("ENTRYPIONT"), Some("ENTRYPOINT"));
        assert_eq!(Keyword::suggest("XYZZY"), None);
    }
}
