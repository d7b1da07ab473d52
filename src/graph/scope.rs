//! Docker's variable scoping: global ARGs usable in FROM lines, ARGs redeclared inside a
//! stage, `--build-arg` overriding defaults, the automatic platform ARGs, and ENV winning
//! over an ARG of the same name.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::run_env::RunEnv;
use crate::oci::Platform;
use crate::parser::expand::{ExpandError, Lexer, Lookup};
use crate::parser::{ArgDecl, Command, Instruction};

pub(crate) fn lexer(escape: char) -> Lexer {
    Lexer::new(escape)
}

/// ARGs Docker defines for every build, without a declaration in FROM lines and with
/// `ARG NAME` inside a stage: `TARGET*` for the platform the image is for, `BUILD*` for
/// this machine's (where the build runs, for stages `FROM --platform=$BUILDPLATFORM`).
pub(crate) fn automatic_args(target: &Platform) -> BTreeMap<String, String> {
    let mut args = BTreeMap::new();
    for (prefix, platform) in [("TARGET", target.clone()), ("BUILD", Platform::host())] {
        let variant = platform.variant.clone().unwrap_or_default();
        args.insert(format!("{prefix}PLATFORM"), platform.to_string());
        args.insert(format!("{prefix}OS"), platform.os.clone());
        args.insert(format!("{prefix}ARCH"), platform.architecture.clone());
        args.insert(format!("{prefix}VARIANT"), variant);
    }
    args
}

/// Build args that RUN steps see without an ARG declaration, and that Docker keeps out
/// of the image history.
pub(crate) fn is_predefined(name: &str) -> bool {
    matches!(
        name.to_ascii_uppercase().as_str(),
        "HTTP_PROXY" | "HTTPS_PROXY" | "FTP_PROXY" | "NO_PROXY" | "ALL_PROXY"
    )
}

/// Variables in declaration order with O(1) lookup; setting one again keeps its place.
#[derive(Debug, Clone)]
pub(crate) struct Vars<V> {
    entries: Vec<(Arc<str>, V)>,
    /// Names are short and chosen by the Dockerfile's author, whom the build trusts: a
    /// fast hash is enough.
    index: HashMap<Arc<str>, usize, foldhash::fast::RandomState>,
}

impl<V> Default for Vars<V> {
    fn default() -> Self {
        Vars {
            entries: Vec::new(),
            index: HashMap::default(),
        }
    }
}

impl<V: Clone> Vars<V> {
    /// Sets `name`, returning the name as stored (shared).
    pub(crate) fn set(&mut self, name: &str, value: V) -> &Arc<str> {
        let i = match self.index.get(name) {
            Some(&i) => {
                self.entries[i].1 = value;
                i
            }
            None => self.push(Arc::from(name), value),
        };
        &self.entries[i].0
    }

    /// Sets `name`, sharing the caller's copy of the name when it is new.
    pub(crate) fn set_shared(&mut self, name: &Arc<str>, value: V) {
        match self.index.get(&**name) {
            Some(&i) => self.entries[i].1 = value,
            None => {
                self.push(name.clone(), value);
            }
        }
    }

    fn push(&mut self, name: Arc<str>, value: V) -> usize {
        let i = self.entries.len();
        self.index.insert(name.clone(), i);
        self.entries.push((name, value));
        i
    }

    pub(crate) fn get(&self, name: &str) -> Option<&V> {
        self.index.get(name).map(|&i| &self.entries[i].1)
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &(Arc<str>, V)> {
        self.entries.iter()
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// ARG values in declaration order; `None` is declared but unset. Values are shared:
/// every RUN step's environment holds them.
pub(crate) type ArgValues = Vars<Option<Arc<str>>>;

impl ArgValues {
    pub(crate) fn pairs(&self) -> Vec<(String, Option<String>)> {
        self.entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_deref().map(str::to_string)))
            .collect()
    }

    /// The ARGs that have a value.
    pub(crate) fn set_pairs(&self) -> Vec<(Arc<str>, Arc<str>)> {
        let mut pairs = Vec::with_capacity(self.entries.len());
        pairs.extend(
            self.entries
                .iter()
                .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone()))),
        );
        pairs
    }

    /// Looks up these values, then the automatic ARGs.
    pub(crate) fn lookup_with<'a>(
        &'a self,
        automatic: &'a BTreeMap<String, String>,
    ) -> GlobalLookup<'a> {
        GlobalLookup {
            args: self,
            automatic,
        }
    }
}

pub(crate) struct GlobalLookup<'a> {
    args: &'a ArgValues,
    automatic: &'a BTreeMap<String, String>,
}

impl Lookup for GlobalLookup<'_> {
    fn lookup(&self, name: &str) -> Option<&str> {
        match self.args.get(name) {
            Some(value) => value.as_deref(),
            None => self.automatic.get(name).map(String::as_str),
        }
    }
}

/// What a RUN step sees of the scope.
pub(crate) struct RunContext<'s> {
    pub(crate) env: RunEnv,
    /// The ARGs with a value as the history shows them, `K=V ` each, and how many.
    pub(crate) history_args: &'s str,
    pub(crate) history_count: usize,
}

/// The variables in effect inside one stage.
pub(crate) struct Scope<'a> {
    global: &'a ArgValues,
    automatic: &'a BTreeMap<String, String>,
    build_args: &'a BTreeMap<String, String>,
    /// ARGs declared in this stage.
    pub(crate) args: ArgValues,
    /// The config's environment (the base image's, then ENV instructions).
    pub(crate) env: Vars<Arc<str>>,
    /// What RUN steps see: follows every ARG and ENV change.
    run_env: RunEnv,
    /// The ARGs with a value as the history shows them, `K=V ` each, and how many:
    /// appended to as new ARGs are declared, remade only after one declared before
    /// changes (`history_stale`).
    history_args: String,
    history_count: usize,
    history_stale: bool,
}

impl Lookup for Scope<'_> {
    fn lookup(&self, name: &str) -> Option<&str> {
        match self.env.get(name) {
            Some(v) => Some(v),
            None => self.args.get(name).and_then(|v| v.as_deref()),
        }
    }
}

impl<'a> Scope<'a> {
    pub(crate) fn new(
        global: &'a ArgValues,
        automatic: &'a BTreeMap<String, String>,
        build_args: &'a BTreeMap<String, String>,
        env: Vec<(String, String)>,
    ) -> Scope<'a> {
        let mut vars = Vars::default();
        let mut base = Vec::with_capacity(env.len());
        for (k, v) in env {
            let value: Arc<str> = Arc::from(v);
            let name = vars.set(&k, value.clone()).clone();
            base.push((name, value));
        }
        let proxies = build_args
            .iter()
            .filter(|(k, _)| is_predefined(k))
            .map(|(k, v)| (Arc::from(k.as_str()), Arc::from(v.as_str())))
            .collect();
        Scope {
            global,
            automatic,
            build_args,
            args: ArgValues::default(),
            env: vars,
            run_env: RunEnv::base(base, proxies),
            history_args: String::new(),
            history_count: 0,
            history_stale: false,
        }
    }

    pub(crate) fn expand(&self, text: &str, escape: char) -> Result<String, ExpandError> {
        lexer(escape).process_word(text, self)
    }

    /// As [`Scope::expand`], borrowing `text` when nothing in it expands.
    pub(crate) fn expand_word<'t>(
        &self,
        text: &'t str,
        escape: char,
    ) -> Result<Cow<'t, str>, ExpandError> {
        lexer(escape).expand_word(text, self)
    }

    /// Declares an ARG inside the stage: `--build-arg` first, then the ARG's own default,
    /// then the global ARG of that name, then the automatic platform ARGs.
    pub(crate) fn declare(&mut self, decl: &ArgDecl, escape: char) -> Result<(), ExpandError> {
        let value: Option<Arc<str>> = match self.build_args.get(&decl.name) {
            Some(v) => Some(Arc::from(v.as_str())),
            None => match &decl.default {
                Some(default) => Some(Arc::from(&*self.expand_word(default, escape)?)),
                None => match self.global.get(&decl.name) {
                    Some(global) => global.clone(),
                    None => self
                        .automatic
                        .get(&decl.name)
                        .map(|v| Arc::from(v.as_str())),
                },
            },
        };
        if self.args.contains(&decl.name) {
            self.history_stale = true;
        } else if let Some(value) = &value {
            self.history_args
                .extend([decl.name.as_str(), "=", value, " "]);
            self.history_count += 1;
        }
        let name = self.args.set(&decl.name, value.clone()).clone();
        self.run_env = self.run_env.with_arg(name, value);
        Ok(())
    }

    pub(crate) fn arg_value(&self, name: &str) -> Option<&str> {
        self.args.get(name).and_then(|v| v.as_deref())
    }

    pub(crate) fn set_env(&mut self, name: &str, value: &str) {
        let value: Arc<str> = Arc::from(value);
        let name = self.env.set(name, value.clone()).clone();
        self.run_env = self.run_env.with_env(name, value);
    }

    /// The environment as `NAME=VALUE` entries, in order.
    pub(crate) fn env_entries(&self) -> Vec<String> {
        self.env.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    /// Names declared by an ARG instruction.
    pub(crate) fn declared_names(&self, command: &Command) -> Vec<String> {
        match command {
            Command::Arg(decls) => decls.iter().map(|d| d.name.clone()).collect(),
            _ => Vec::new(),
        }
    }

    /// Tracks ARG and ENV without building anything: enough to expand `--from` values
    /// while planning, before base images are known.
    pub(crate) fn apply_scope_only(
        &mut self,
        instruction: &Instruction,
        escape: char,
    ) -> Result<(), ExpandError> {
        match &instruction.command {
            Command::Arg(decls) => {
                for decl in decls {
                    self.declare(decl, escape)?;
                }
            }
            Command::Env(pairs) => {
                let mut updates = Vec::with_capacity(pairs.len());
                for kv in pairs {
                    updates.push((
                        self.expand_word(&kv.key, escape)?,
                        self.expand_word(&kv.value, escape)?,
                    ));
                }
                for (k, v) in updates {
                    self.set_env(&k, &v);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// What a RUN step sees: ARGs with a value and the predefined proxy build args, under
    /// the config env, which wins over an ARG of the same name.
    pub(crate) fn run_context(&mut self) -> RunContext<'_> {
        if self.history_stale {
            self.history_args.clear();
            self.history_count = 0;
            for (k, v) in self.args.iter() {
                if let Some(v) = v {
                    self.history_args.extend([&**k, "=", &**v, " "]);
                    self.history_count += 1;
                }
            }
            self.history_stale = false;
        }
        RunContext {
            env: self.run_env.clone(),
            history_args: &self.history_args,
            history_count: self.history_count,
        }
    }
}
