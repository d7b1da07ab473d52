//! The environment a RUN step sees, kept as the chain of ARG and ENV changes that made
//! it: every change links to the environment before it, so the RUN steps of a stage
//! share all that is common to them instead of each holding a copy of every variable.
//! The flat list is made once per distinct environment, when something reads it.

use std::fmt;
use std::sync::{Arc, OnceLock};

use serde::ser::SerializeStruct;
use serde::Serialize;

use super::scope::{ArgValues, Vars};

/// A variable as RUN steps see it: name and value, both shared.
pub type EnvPair = (Arc<str>, Arc<str>);

/// A RUN step's environment: the config env plus the ARG values in scope (not stored in
/// the image), and those ARG values apart, as history and cache explanations show them.
#[derive(Clone)]
pub struct RunEnv(Arc<Node>);

struct Node {
    parent: Option<RunEnv>,
    change: Change,
    flat: OnceLock<Flat>,
}

enum Change {
    /// Where a stage starts: its base image's env and the predefined proxy build args,
    /// which RUN steps see without an ARG declaration.
    Base {
        env: Vec<EnvPair>,
        proxies: Vec<EnvPair>,
    },
    Env(EnvPair),
    /// An ARG declaration; `None` is declared without a value.
    Arg(Arc<str>, Option<Arc<str>>),
}

struct Flat {
    env: Vec<EnvPair>,
    build_args: Vec<EnvPair>,
}

impl RunEnv {
    /// A stage's starting environment.
    pub fn base(env: Vec<EnvPair>, proxies: Vec<EnvPair>) -> RunEnv {
        RunEnv::node(None, Change::Base { env, proxies })
    }

    /// This environment after `ENV name=value`.
    pub fn with_env(&self, name: Arc<str>, value: Arc<str>) -> RunEnv {
        RunEnv::node(Some(self.clone()), Change::Env((name, value)))
    }

    /// This environment after `ARG name[=value]`.
    pub fn with_arg(&self, name: Arc<str>, value: Option<Arc<str>>) -> RunEnv {
        RunEnv::node(Some(self.clone()), Change::Arg(name, value))
    }

    fn node(parent: Option<RunEnv>, change: Change) -> RunEnv {
        RunEnv(Arc::new(Node {
            parent,
            change,
            flat: OnceLock::new(),
        }))
    }

    /// The process environment, in order: the config env, which wins over an ARG of the
    /// same name, then the ARGs with a value, then the proxy build args.
    pub fn entries(&self) -> &[EnvPair] {
        &self.flat().env
    }

    /// The ARGs with a value, in declaration order.
    pub fn build_args(&self) -> &[EnvPair] {
        &self.flat().build_args
    }

    fn flat(&self) -> &Flat {
        self.0.flat.get_or_init(|| self.flatten())
    }

    fn flatten(&self) -> Flat {
        let mut changes = Vec::new();
        let mut next = Some(self);
        while let Some(env) = next {
            changes.push(&env.0.change);
            next = env.0.parent.as_ref();
        }
        let mut env: Vars<Arc<str>> = Vars::default();
        let mut args = ArgValues::default();
        let mut proxies: &[EnvPair] = &[];
        for change in changes.into_iter().rev() {
            match change {
                Change::Base {
                    env: base,
                    proxies: predefined,
                } => {
                    for (k, v) in base {
                        env.set_shared(k, v.clone());
                    }
                    proxies = predefined;
                }
                Change::Env((k, v)) => env.set_shared(k, v.clone()),
                Change::Arg(k, v) => args.set_shared(k, v.clone()),
            }
        }
        let build_args = args.set_pairs();
        let mut entries: Vec<EnvPair> = Vec::with_capacity(env.len() + build_args.len());
        entries.extend(env.iter().cloned());
        for (k, v) in build_args.iter().chain(proxies) {
            if !env.contains(k) {
                entries.push((k.clone(), v.clone()));
            }
        }
        Flat {
            env: entries,
            build_args,
        }
    }
}

impl Drop for Node {
    /// One link at a time: a long chain would otherwise be dropped by recursion as deep.
    fn drop(&mut self) {
        let mut parent = self.parent.take();
        while let Some(RunEnv(node)) = parent {
            parent = match Arc::into_inner(node) {
                Some(mut node) => node.parent.take(),
                None => None,
            };
        }
    }
}

impl PartialEq for RunEnv {
    fn eq(&self, other: &RunEnv) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.entries() == other.entries() && self.build_args() == other.build_args())
    }
}

impl Eq for RunEnv {}

impl fmt::Debug for RunEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunEnv")
            .field("env", &self.entries())
            .field("build_args", &self.build_args())
            .finish()
    }
}

/// As the two lists `env` and `build_args`.
impl Serialize for RunEnv {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("RunEnv", 2)?;
        s.serialize_field("env", self.entries())?;
        s.serialize_field("build_args", self.build_args())?;
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(k: &str, v: &str) -> EnvPair {
        (k.into(), v.into())
    }

    #[test]
    fn env_wins_over_args_and_places_are_kept() {
        let base = RunEnv::base(
            vec![pair("PATH", "/bin"), pair("HOME", "/root")],
            vec![pair("HTTP_PROXY", "p")],
        );
        let env = base
            .with_arg("A".into(), Some("1".into()))
            .with_arg("U".into(), None)
            .with_env("PATH".into(), "/usr/bin".into())
            .with_arg("HOME".into(), Some("/arg".into()))
            .with_arg("A".into(), Some("2".into()))
            .with_env("E".into(), "e".into());
        assert_eq!(
            env.entries(),
            [
                pair("PATH", "/usr/bin"),
                pair("HOME", "/root"),
                pair("E", "e"),
                pair("A", "2"),
                pair("HTTP_PROXY", "p"),
            ]
        );
        assert_eq!(env.build_args(), [pair("A", "2"), pair("HOME", "/arg")]);
        assert_eq!(
            base.entries(),
            [
                pair("PATH", "/bin"),
                pair("HOME", "/root"),
                pair("HTTP_PROXY", "p")
            ]
        );
        assert!(base.build_args().is_empty());
    }

    #[test]
    fn a_long_chain_drops_without_deep_recursion() {
        let mut env = RunEnv::base(Vec::new(), Vec::new());
        for i in 0..1_000_000 {
            env = env.with_env("V".into(), i.to_string().into());
        }
        assert_eq!(env.entries(), [pair("V", "999999")]);
        drop(env);
    }
}
