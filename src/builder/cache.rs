//! Build cache keys, and why a step could not be reused.
//!
//! A step's key is blake3 of [`CACHE_KEY_VERSION`], the build settings that change every
//! layer (platform, compression, `SOURCE_DATE_EPOCH`), the *state* the step starts from,
//! the step after expansion with only the fields that change its result, and its inputs:
//! the Merkle digest of the files a COPY selects, the environment of a RUN, the identity of
//! what `--from` or `--mount` brings in.
//!
//! A state names a filesystem by its content: a stage's base (scratch, an image's manifest
//! digest, or the final state of the stage it is built on) extended by the diff_id of
//! each layer made on top. Keying on the result of the previous step rather than on its
//! key means a step that reruns and makes the same layer leaves everything after it
//! cached, and `--no-cache-filter` reruns only what truly changes.
//!
//! Each record keeps its [`Inputs`]; a miss is explained by comparing them with those of
//! the last build of the same step (its *site*: the same context, Dockerfile, stage and
//! instruction).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::copy::FileInputs;
use crate::graph::{CopySource, CopyStep, RunStep, Step, StepKind};
use crate::oci::Digest;

/// Bumped whenever what goes into a key, or what a cached result means, changes.
/// 2: images are named by their config digest, not their manifest's.
/// 3: COPY keys hold each entry's kept extended attributes, and hard links.
pub(crate) const CACHE_KEY_VERSION: u32 = 3;

/// A filesystem's identity: a base, then the layers made on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct State([u8; 32]);

impl State {
    /// `scratch`, `image sha256:...`: what a stage starts from.
    pub(crate) fn base(identity: &str) -> State {
        let mut hasher = blake3::Hasher::new_derive_key("lade build state base");
        hasher.update(identity.as_bytes());
        State(*hasher.finalize().as_bytes())
    }

    /// The state after a layer is added.
    pub(crate) fn with_layer(self, diff_id: &Digest) -> State {
        let mut hasher = blake3::Hasher::new_derive_key("lade build state layer");
        hasher.update(&self.0);
        hasher.update(diff_id.as_bytes());
        State(*hasher.finalize().as_bytes())
    }

    pub(crate) fn hex(&self) -> String {
        hex(&self.0)
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Everything that went into a step's key, kept with its record.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct Inputs {
    /// Platform, compression and `SOURCE_DATE_EPOCH`.
    pub settings: String,
    /// The state the step starts from.
    pub parent: String,
    /// The step's canonical form.
    pub step: Value,
    /// Digest of `files` (only the digest is in the key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_digest: Option<String>,
    /// COPY/ADD from the context: source path -> `kind mode uid:gid hash [-> link]`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, String>,
    /// RUN: the build arguments it sees.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<String, String>,
    /// RUN: its environment, build arguments aside.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// What `--from` and `--mount` bring in: `stage NAME`, `image REF`, `mount TARGET`
    /// -> the state, image (config) digest or file digest.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sources: BTreeMap<String, String>,
}

impl Inputs {
    /// The key: blake3 of everything here but the per-file list (its digest stands in).
    pub(crate) fn key(&self) -> String {
        #[derive(Serialize)]
        struct Material<'a> {
            version: u32,
            settings: &'a str,
            parent: &'a str,
            step: &'a Value,
            files: &'a Option<String>,
            args: &'a BTreeMap<String, String>,
            env: &'a BTreeMap<String, String>,
            sources: &'a BTreeMap<String, String>,
        }
        let material = Material {
            version: CACHE_KEY_VERSION,
            settings: &self.settings,
            parent: &self.parent,
            step: &self.step,
            files: &self.files_digest,
            args: &self.args,
            env: &self.env,
            sources: &self.sources,
        };
        let bytes = crate::oci::canonical_json(&material);
        let mut hasher = blake3::Hasher::new_derive_key("lade build cache key");
        hasher.update(&bytes);
        hex(hasher.finalize().as_bytes())
    }

    /// Lists the files behind `files_digest`.
    pub(crate) fn set_files(&mut self, files: &FileInputs) {
        self.files_digest = Some(hex(&files.digest));
        self.files = files
            .entries()
            .map(|f| (f.origin.clone(), f.summary()))
            .collect();
    }
}

/// The build arguments a proxy setting travels in: never part of a key, as in BuildKit,
/// so a build behind a proxy shares its cache with one that is not.
fn is_proxy(name: &str) -> bool {
    matches!(
        name.to_ascii_uppercase().as_str(),
        "HTTP_PROXY" | "HTTPS_PROXY" | "FTP_PROXY" | "NO_PROXY" | "ALL_PROXY"
    )
}

/// The canonical form of a step that can change files: exactly what decides its result.
pub(crate) fn canonical_step(step: &Step) -> Value {
    match &step.kind {
        StepKind::Run(run) => canonical_run(run),
        StepKind::Copy(copy) => canonical_copy(copy),
        StepKind::Workdir { path, user } => json!({ "workdir": path, "user": user }),
        StepKind::Config => Value::Null,
    }
}

fn canonical_run(run: &RunStep) -> Value {
    json!({
        "run": run.argv,
        "workdir": run.workdir,
        "user": run.user,
        "network": run.network,
        "insecure": run.insecure,
        "mounts": run.mounts,
        "scripts": run.script_files,
    })
}

fn canonical_copy(copy: &CopyStep) -> Value {
    // Heredoc bodies and context files are in the file inputs; `--link` changes how the
    // layer may be reused, never what it holds.
    let sources: Vec<Value> = copy
        .sources
        .iter()
        .map(|s| match s {
            CopySource::Path(p) => json!({ "path": p }),
            CopySource::Url(u) => json!({ "url": u }),
            CopySource::Heredoc { name, .. } => json!({ "heredoc": name }),
        })
        .collect();
    json!({
        "copy": if copy.add { "ADD" } else { "COPY" },
        "sources": sources,
        "dest": copy.dest,
        "chown": copy.chown,
        "chmod": copy.chmod,
        "parents": copy.parents,
        "excludes": copy.excludes,
        "checksum": copy.checksum,
        "keep_git_dir": copy.keep_git_dir,
        "workdir": copy.workdir,
    })
}

/// A RUN step's environment for its key: build arguments apart (for explanations), the
/// rest of the environment, proxies left out of both.
pub(crate) fn run_environment(
    run: &RunStep,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let args: BTreeMap<String, String> = run
        .env
        .build_args()
        .iter()
        .filter(|(k, _)| !is_proxy(k))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let env: BTreeMap<String, String> = run
        .env
        .entries()
        .iter()
        .filter(|(k, v)| !is_proxy(k) && args.get(&**k).map(String::as_str) != Some(&**v))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    (args, env)
}

/// Why a step missed, given what its site last built (`None`: never built here) and
/// what changed earlier in its stage (`upstream`, when its parent state differs).
pub(crate) fn explain_miss(previous: Option<&Inputs>, current: &Inputs, upstream: &str) -> String {
    let Some(previous) = previous else {
        return "not built before".into();
    };
    if previous.parent != current.parent {
        return upstream.to_string();
    }
    let mut reasons: Vec<String> = Vec::new();
    if previous.step != current.step {
        reasons.push(step_change(&previous.step, &current.step));
    }
    if previous.files_digest != current.files_digest {
        reasons.push(file_changes(&previous.files, &current.files));
    }
    reasons.extend(map_changes("ARG", &previous.args, &current.args));
    reasons.extend(map_changes("ENV", &previous.env, &current.env));
    for (name, value) in &current.sources {
        match previous.sources.get(name) {
            Some(old) if old == value => {}
            Some(old) => reasons.push(source_change(name, old, value)),
            None => reasons.push(format!("{name} is new")),
        }
    }
    for name in previous.sources.keys() {
        if !current.sources.contains_key(name) {
            reasons.push(format!("{name} is no longer used"));
        }
    }
    if reasons.is_empty() && previous.settings != current.settings {
        reasons.push(format!(
            "build settings changed ({} -> {})",
            previous.settings, current.settings
        ));
    }
    if reasons.is_empty() {
        return "its cached result was removed (pruned)".into();
    }
    reasons.join("; ")
}

fn step_change(previous: &Value, current: &Value) -> String {
    if current.get("run").is_some() {
        if previous.get("run") != current.get("run") {
            return "the command changed".into();
        }
        let changed: Vec<&str> = [
            "workdir", "user", "network", "mounts", "scripts", "insecure",
        ]
        .into_iter()
        .filter(|field| previous.get(field) != current.get(field))
        .collect();
        return format!("its {} changed", changed.join(", "));
    }
    if let Some(object) = current.as_object() {
        let changed: Vec<&str> = object
            .keys()
            .filter(|k| previous.get(k.as_str()) != current.get(k.as_str()))
            .map(String::as_str)
            .collect();
        if !changed.is_empty() {
            return format!("its {} changed", changed.join(", "));
        }
    }
    "the instruction changed".into()
}

/// `2 files changed (a, b), 1 added (c), 1 removed (d)`.
pub(crate) fn file_changes(
    previous: &BTreeMap<String, String>,
    current: &BTreeMap<String, String>,
) -> String {
    let mut changed = Vec::new();
    let mut added = Vec::new();
    for (path, summary) in current {
        match previous.get(path) {
            Some(old) if old == summary => {}
            Some(_) => changed.push(path.as_str()),
            None => added.push(path.as_str()),
        }
    }
    let removed: Vec<&str> = previous
        .keys()
        .filter(|p| !current.contains_key(*p))
        .map(String::as_str)
        .collect();
    let mut parts = Vec::new();
    for (list, what, many) in [
        (&changed, "file changed", "files changed"),
        (&added, "added", "added"),
        (&removed, "removed", "removed"),
    ] {
        if list.is_empty() {
            continue;
        }
        let noun = if list.len() == 1 { what } else { many };
        parts.push(format!("{} {noun} ({})", list.len(), name_list(list)));
    }
    if parts.is_empty() {
        return "its source files changed".into();
    }
    parts.join(", ")
}

fn name_list(names: &[&str]) -> String {
    const SHOWN: usize = 3;
    let mut text = names
        .iter()
        .take(SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(", and {} more", names.len() - SHOWN));
    }
    text
}

/// `ARG VERSION changed 1.0 -> 1.1`, `ENV X added`, ...
fn map_changes(
    what: &str,
    previous: &BTreeMap<String, String>,
    current: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (name, value) in current {
        match previous.get(name) {
            Some(old) if old == value => {}
            Some(old) => out.push(format!("{what} {name} changed {old} -> {value}")),
            None => out.push(format!("{what} {name} set to {value}")),
        }
    }
    for name in previous.keys() {
        if !current.contains_key(name) {
            out.push(format!("{what} {name} no longer set"));
        }
    }
    out
}

fn source_change(name: &str, old: &str, new: &str) -> String {
    if let Some(image) = name.strip_prefix("image ") {
        return format!(
            "image {image} changed ({} -> {})",
            short_digest(old),
            short_digest(new)
        );
    }
    if let Some(target) = name.strip_prefix("mount ") {
        return format!("files mounted at {target} changed");
    }
    format!("{name} changed")
}

/// `sha256:ab12cd34ef56..`: enough to tell two digests apart.
pub(crate) fn short_digest(digest: &str) -> String {
    match digest.split_once(':') {
        Some((algorithm, hex)) if hex.len() > 12 => format!("{algorithm}:{}..", &hex[..12]),
        _ => digest.to_string(),
    }
}

/// A base's identity, as FROM sites record it: `scratch`, `image sha256:...`,
/// `stage NAME <state>`.
pub(crate) fn base_change(previous: &str, current: &str) -> String {
    match (
        previous.strip_prefix("image "),
        current.strip_prefix("image "),
    ) {
        (Some(old), Some(new)) => format!(
            "base image changed ({} -> {})",
            short_digest(old),
            short_digest(new)
        ),
        _ => match current.strip_prefix("stage ") {
            Some(rest) if previous.strip_prefix("stage ").is_some() => {
                let name = rest.rsplit_once(' ').map_or(rest, |(n, _)| n);
                format!("stage {name} changed")
            }
            _ => format!(
                "the base changed ({} -> {})",
                display_base(previous),
                display_base(current)
            ),
        },
    }
}

fn display_base(identity: &str) -> String {
    if let Some(digest) = identity.strip_prefix("image ") {
        return format!("image {}", short_digest(digest));
    }
    match identity.strip_prefix("stage ") {
        Some(rest) => format!("stage {}", rest.rsplit_once(' ').map_or(rest, |(n, _)| n)),
        None => identity.to_string(),
    }
}

/// Where a step sits in a project, so the next build of it can be compared with this
/// one: by its text (stable when other lines are added), and by its position.
pub(crate) fn sites(
    project: &str,
    stage: &str,
    step_text: &str,
    number: usize,
    occurrence: usize,
) -> [String; 2] {
    let hash = |parts: &[&str]| {
        let mut hasher = blake3::Hasher::new_derive_key("lade build cache site");
        for part in parts {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        hex(&hasher.finalize().as_bytes()[..16])
    };
    let occurrence = occurrence.to_string();
    let number = number.to_string();
    [
        hash(&[project, stage, "text", step_text, &occurrence]),
        hash(&[project, stage, "position", &number]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> Inputs {
        Inputs {
            settings: "linux/amd64 zstd".into(),
            parent: "p".into(),
            step: json!({"run": ["make"]}),
            ..Inputs::default()
        }
    }

    #[test]
    fn the_key_covers_every_input_but_the_file_list() {
        let base = inputs();
        let key = base.key();
        let mut with_files = base.clone();
        with_files.files.insert("a".into(), "f 644".into());
        assert_eq!(with_files.key(), key, "the digest stands for the list");
        for change in [
            |i: &mut Inputs| i.parent = "q".into(),
            |i: &mut Inputs| i.settings = "linux/amd64 gzip".into(),
            |i: &mut Inputs| i.step = json!({"run": ["make", "all"]}),
            |i: &mut Inputs| i.files_digest = Some("00".into()),
            |i: &mut Inputs| {
                i.args.insert("V".into(), "1".into());
            },
            |i: &mut Inputs| {
                i.env.insert("X".into(), "1".into());
            },
            |i: &mut Inputs| {
                i.sources.insert("stage a".into(), "s".into());
            },
        ] {
            let mut changed = base.clone();
            change(&mut changed);
            assert_ne!(changed.key(), key, "{changed:?}");
        }
    }

    #[test]
    fn misses_are_explained() {
        let old = inputs();
        assert_eq!(explain_miss(None, &old, "x"), "not built before");
        let mut new = old.clone();
        new.parent = "other".into();
        assert_eq!(
            explain_miss(Some(&old), &new, "an earlier step changed (step 2)"),
            "an earlier step changed (step 2)"
        );
        let mut old_args = old.clone();
        old_args.args.insert("VERSION".into(), "1.0".into());
        let mut new_args = old.clone();
        new_args.args.insert("VERSION".into(), "1.1".into());
        assert_eq!(
            explain_miss(Some(&old_args), &new_args, ""),
            "ARG VERSION changed 1.0 -> 1.1"
        );
        let mut new_cmd = old.clone();
        new_cmd.step = json!({"run": ["make", "all"]});
        assert_eq!(
            explain_miss(Some(&old), &new_cmd, ""),
            "the command changed"
        );
        assert_eq!(
            explain_miss(Some(&old), &old, ""),
            "its cached result was removed (pruned)"
        );
    }

    #[test]
    fn file_changes_name_the_files() {
        let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let old = map(&[("src/main.rs", "1"), ("Cargo.lock", "1"), ("gone", "1")]);
        let new = map(&[
            ("src/main.rs", "2"),
            ("Cargo.lock", "2"),
            ("src/new.rs", "1"),
        ]);
        assert_eq!(
            file_changes(&old, &new),
            "2 files changed (Cargo.lock, src/main.rs), 1 added (src/new.rs), 1 removed (gone)"
        );
        let many: BTreeMap<String, String> =
            (0..5).map(|i| (format!("f{i}"), "x".to_string())).collect();
        assert_eq!(
            file_changes(&BTreeMap::new(), &many),
            "5 added (f0, f1, f2, and 2 more)"
        );
    }

    #[test]
    fn base_changes_show_short_digests() {
        assert_eq!(
            base_change(
                "image sha256:abababababababababab",
                "image sha256:cdcdcdcdcdcdcdcdcdcd"
            ),
            "base image changed (sha256:abababababab.. -> sha256:cdcdcdcdcdcd..)"
        );
        assert_eq!(
            base_change("stage build 1", "stage build 2"),
            "stage build changed"
        );
    }

    /// Keys name the results in existing stores, and history texts go into image configs:
    /// what planning makes of a Dockerfile's steps, and the keys made of them, must stay
    /// as they are unless [`CACHE_KEY_VERSION`] changes. The lines are pinned by their
    /// digest; a failure prints them.
    #[test]
    fn keys_of_planned_steps_are_pinned() {
        use crate::graph::{self, BaseImage, PlanOptions};
        let text = concat!(
            "# escape=\\\n",
            "ARG BASE=busybox\n",
            "FROM ${BASE}:1.36 AS build\n",
            "ARG V=1 W\n",
            "ENV P=/opt X=\"$V y\" PATH=/usr/bin:$PATH\n",
            "WORKDIR app/../src/./x/\n",
            "RUN --mount=type=cache,target=/cache,id=c --mount=type=secret,id=s --network=none echo $V \\\n",
            "  && make ${X:-z}\n",
            "COPY --chown=1:1 --chmod=0644 --exclude=*.o a ${P}/b ./dst/\n",
            "ADD --checksum=sha256:0123456789012345678901234567890123456789012345678901234567890123 https://example.com/f /f\n",
            "USER 1000:1000\n",
            "RUN [\"/bin/sh\", \"-c\", \"true\"]\n",
            "RUN <<EOF\necho $V\nEOF\n",
            "LABEL a=b \"c d\"=e\n",
            "EXPOSE 80 53/udp\n",
            "VOLUME /data\n",
            "SHELL [\"/bin/bash\", \"-c\"]\n",
            "RUN echo in bash\n",
            "HEALTHCHECK --interval=5s CMD true\n",
            "ENTRYPOINT [\"/e\"]\n",
            "CMD run\n",
            "STOPSIGNAL SIGINT\n",
            "ONBUILD RUN x\n",
            "FROM scratch\n",
            "WORKDIR /\n",
            "COPY --from=build --link /src/x /y\n",
            "COPY <<A /a.txt\nbody $HOME\nA\n",
        );
        let options = PlanOptions {
            platform: crate::oci::Platform::parse("linux/amd64"),
            ..PlanOptions::default()
        };
        let plan = graph::plan_text("Dockerfile", text.as_bytes().to_vec(), &options).unwrap();
        let stages = graph::expand_all(&plan, |_, _| BaseImage::default()).unwrap();
        let mut lines = Vec::new();
        for (index, stage) in &stages {
            for step in &stage.steps {
                let mut inputs = Inputs {
                    settings: "linux/amd64 zstd".into(),
                    parent: "p".into(),
                    step: canonical_step(step),
                    ..Inputs::default()
                };
                if let StepKind::Run(run) = &step.kind {
                    (inputs.args, inputs.env) = run_environment(run);
                }
                lines.push(format!(
                    "{index} {} {:?} {:?} {:?} {}",
                    step.number,
                    step.text,
                    step.created_by,
                    (step.location.line, step.location.column),
                    inputs.key()
                ));
            }
            lines.push(format!(
                "{index} config {}",
                serde_json::to_string(&stage.config).unwrap()
            ));
        }
        let joined = lines.join("\n");
        let digest = hex(blake3::hash(joined.as_bytes()).as_bytes());
        assert_eq!(
            digest, "9e21057900370e6c4e90d052acc094dd99feb0f5944b37c8e33ed89a8478f6a5",
            "{joined}"
        );
    }

    #[test]
    fn proxies_stay_out_of_keys() {
        let run = RunStep {
            argv: vec!["true".into()],
            env: crate::graph::RunEnv::base(vec![("PATH".into(), "/bin".into())], Vec::new())
                .with_arg("V".into(), Some("1".into()))
                .with_arg("HTTP_PROXY".into(), Some("p".into())),
            workdir: "/".into(),
            user: String::new(),
            mounts: Vec::new(),
            network: crate::graph::RunNetwork::Default,
            insecure: false,
            script_files: Vec::new(),
        };
        let (args, env) = run_environment(&run);
        assert_eq!(args.keys().collect::<Vec<_>>(), ["V"]);
        assert_eq!(env.keys().collect::<Vec<_>>(), ["PATH"]);
    }
}
