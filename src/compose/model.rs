//! The compose application model, normalised: every short syntax (a port string, a
//! volume string, a list of `KEY=VALUE`, a `depends_on` list, a string `build`) read into
//! its long form, paths made absolute, names given. `config` prints it as YAML, the way
//! `docker compose config` prints its model; `up` turns it into engine requests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value as Json;

/// A whole project: its name and what it defines.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Project {
    pub name: String,
    #[serde(default)]
    pub services: BTreeMap<String, Service>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub networks: BTreeMap<String, Network>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub volumes: BTreeMap<String, Volume>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, FileObject>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub configs: BTreeMap<String, FileObject>,
    /// The directory relative paths are resolved from (the first file's).
    #[serde(skip)]
    pub directory: PathBuf,
    /// The compose files it was read from, in order.
    #[serde(skip)]
    pub files: Vec<PathBuf>,
    /// Services left out because none of their profiles is active.
    #[serde(skip)]
    pub disabled: BTreeMap<String, Service>,
}

/// One service, as compose's model has it (the fields lade supports; others are refused
/// before this is read).
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct Service {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "build"
    )]
    pub build: Option<Build>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "command"
    )]
    pub command: Option<Vec<String>>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "file_references"
    )]
    pub configs: Vec<FileReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "depends_on"
    )]
    pub depends_on: BTreeMap<String, Dependency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<Deploy>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "string_or_list"
    )]
    pub dns: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "command"
    )]
    pub entrypoint: Option<Vec<String>>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "env_files"
    )]
    pub env_file: Vec<EnvFile>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "key_values"
    )]
    pub environment: BTreeMap<String, Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "strings"
    )]
    pub expose: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "extra_hosts"
    )]
    pub extra_hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "labels"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "service_networks"
    )]
    pub networks: BTreeMap<String, Option<ServiceNetwork>>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "ports"
    )]
    pub ports: Vec<Port>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub privileged: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "file_references"
    )]
    pub secrets: Vec<FileReference>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stdin_open: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_grace_period: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "key_values_plain"
    )]
    pub sysctls: BTreeMap<String, String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "string_or_list"
    )]
    pub tmpfs: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tty: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "service_volumes"
    )]
    pub volumes: Vec<ServiceVolume>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct Build {
    #[serde(default = "dot")]
    pub context: String,
    #[serde(default = "dockerfile")]
    pub dockerfile: String,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "key_values"
    )]
    pub args: BTreeMap<String, Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "build_secrets"
    )]
    pub secrets: Vec<BuildSecret>,
}

/// A secret a build's `RUN --mount=type=secret` steps may read (`build.secrets`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BuildSecret {
    /// The top-level secret's name.
    pub source: String,
    /// The id the Dockerfile's mount names; the source's name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Kept as written: BuildKit's mount sets a secret's owner and mode, so compose
    /// ignores these (with a warning) and so does lade.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_string"
    )]
    pub uid: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_string"
    )]
    pub gid: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_string"
    )]
    pub mode: Option<String>,
}

impl BuildSecret {
    /// The id a `RUN --mount=type=secret,id=ID` step asks for, as compose gives it.
    pub fn id(&self) -> &str {
        self.target.as_deref().unwrap_or(&self.source)
    }
}

fn dot() -> String {
    ".".into()
}

fn dockerfile() -> String {
    "Dockerfile".into()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Dependency {
    #[serde(default = "service_started")]
    pub condition: String,
    #[serde(default = "yes")]
    pub required: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restart: bool,
}

fn service_started() -> String {
    "service_started".into()
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct Deploy {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_u64"
    )]
    pub replicas: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct Resources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct Limits {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_number"
    )]
    pub cpus: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_string"
    )]
    pub memory: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_u64"
    )]
    pub pids: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EnvFile {
    pub path: String,
    #[serde(default = "yes")]
    pub required: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct Healthcheck {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "health_test"
    )]
    pub test: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_u64"
    )]
    pub retries: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disable: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct ServiceNetwork {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4_address: Option<String>,
}

/// A port in compose's long syntax.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Port {
    #[serde(default = "ingress")]
    pub mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
    #[serde(deserialize_with = "u16_of")]
    pub target: u16,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_string"
    )]
    pub published: Option<String>,
    #[serde(default = "tcp")]
    pub protocol: String,
}

fn ingress() -> String {
    "ingress".into()
}

fn tcp() -> String {
    "tcp".into()
}

/// A service's volume in compose's long syntax.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ServiceVolume {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub target: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind: Option<BindOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<TmpfsOptions>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct BindOptions {
    #[serde(default = "yes")]
    pub create_host_path: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct VolumeOptions {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub nocopy: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct TmpfsOptions {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_string"
    )]
    pub size: Option<String>,
}

/// A secret or config a service uses (long syntax).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileReference {
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// A top-level secret or config: lade supports those made of a file, and secrets
/// taken from an environment variable for builds.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct FileObject {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The variable of lade's environment holding the value (`environment:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct Network {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "external"
    )]
    pub external: Option<bool>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub internal: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipam: Option<Ipam>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "labels"
    )]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct Ipam {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config: Vec<IpamConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct IpamConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct Volume {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "key_values_plain"
    )]
    pub driver_opts: BTreeMap<String, String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "external"
    )]
    pub external: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "labels"
    )]
    pub labels: BTreeMap<String, String>,
}

// What the compose-spec lets a field be, read into its long form. The schema has
// checked the shapes already: these only pick between them.

fn scalar_text(value: &Json) -> Option<String> {
    match value {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn bad<E: serde::de::Error>(what: &str, value: &Json) -> E {
    E::custom(format!("{what}, not {value}"))
}

fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value = Json::deserialize(d)?;
    match value {
        Json::Null => Ok(None),
        other => scalar_text(&other)
            .map(Some)
            .ok_or_else(|| bad("expected a string or a number", &other)),
    }
}

fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let value = Json::deserialize(d)?;
    match &value {
        Json::Null => Ok(None),
        Json::Number(n) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| bad("expected a whole number", &value)),
        Json::String(s) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| bad("expected a whole number", &value)),
        _ => Err(bad("expected a whole number", &value)),
    }
}

fn opt_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let value = Json::deserialize(d)?;
    match &value {
        Json::Null => Ok(None),
        Json::Number(n) => n
            .as_f64()
            .map(Some)
            .ok_or_else(|| bad("expected a number", &value)),
        Json::String(s) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| bad("expected a number", &value)),
        _ => Err(bad("expected a number", &value)),
    }
}

fn u16_of<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    let value = Json::deserialize(d)?;
    scalar_text(&value)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("expected a port number", &value))
}

fn external<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    let value = Json::deserialize(d)?;
    Ok(match value {
        Json::Bool(b) => Some(b),
        Json::String(s) => Some(s == "true"),
        // The old `external: {name: x}` form.
        Json::Object(_) => Some(true),
        _ => None,
    })
}

fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let value = Json::deserialize(d)?;
    match &value {
        Json::Array(items) => items
            .iter()
            .map(|i| scalar_text(i).ok_or_else(|| bad("expected strings", i)))
            .collect(),
        Json::Null => Ok(Vec::new()),
        _ => Err(bad("expected a list", &value)),
    }
}

fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let value = Json::deserialize(d)?;
    match &value {
        Json::String(s) => Ok(vec![s.clone()]),
        Json::Array(items) => items
            .iter()
            .map(|i| scalar_text(i).ok_or_else(|| bad("expected strings", i)))
            .collect(),
        Json::Null => Ok(Vec::new()),
        _ => Err(bad("expected a string or a list", &value)),
    }
}

/// `command`, `entrypoint`, `healthcheck.test`: a list as given, a string split as a
/// shell splits words (compose's own rule).
fn command<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    let value = Json::deserialize(d)?;
    match &value {
        Json::Null => Ok(None),
        Json::String(s) => split_words(s).map(Some).map_err(serde::de::Error::custom),
        Json::Array(_) => strings_of(&value).map(Some),
        _ => Err(bad("expected a string or a list", &value)),
    }
}

/// `healthcheck.test`: a string is run by the container's shell (`CMD-SHELL`).
fn health_test<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    let value = Json::deserialize(d)?;
    match &value {
        Json::Null => Ok(None),
        Json::String(s) => Ok(Some(vec!["CMD-SHELL".into(), s.clone()])),
        Json::Array(_) => strings_of(&value).map(Some),
        _ => Err(bad("expected a string or a list", &value)),
    }
}

fn strings_of<E: serde::de::Error>(value: &Json) -> Result<Vec<String>, E> {
    match value {
        Json::Array(items) => items
            .iter()
            .map(|i| scalar_text(i).ok_or_else(|| bad("expected strings", i)))
            .collect(),
        _ => Err(bad("expected a list", value)),
    }
}

/// Words as a POSIX shell splits them: blanks separate, single quotes keep all, double
/// quotes keep all but `\"` and `\\`, a backslash outside quotes keeps the next char.
pub fn split_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(format!("unclosed single quote in {text:?}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err(format!("unclosed double quote in {text:?}")),
                        },
                        Some(c) => word.push(c),
                        None => return Err(format!("unclosed double quote in {text:?}")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    word.push(c);
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// `environment`, `build.args`: a list of `KEY[=VALUE]` or a mapping (values may be
/// numbers, booleans, or null for "from the environment").
fn key_values<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Option<String>>, D::Error> {
    let value = Json::deserialize(d)?;
    match &value {
        Json::Null => Ok(BTreeMap::new()),
        Json::Array(items) => items
            .iter()
            .map(|item| {
                let text = scalar_text(item).ok_or_else(|| bad("expected KEY=VALUE", item))?;
                Ok(match text.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (text, None),
                })
            })
            .collect(),
        Json::Object(map) => map
            .iter()
            .map(|(k, v)| Ok((k.clone(), if v.is_null() { None } else { scalar_text(v) })))
            .collect(),
        _ => Err(bad("expected a list or a mapping", &value)),
    }
}

fn key_values_plain<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(key_values(d)?
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
}

fn labels<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    key_values_plain(d)
}

fn extra_hosts<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let value = Json::deserialize(d)?;
    match &value {
        Json::Null => Ok(Vec::new()),
        Json::Array(_) => Ok(strings_of::<D::Error>(&value)?
            .into_iter()
            // `host=ip` is compose's newer form of `host:ip`.
            .map(|h| match h.split_once('=') {
                Some((host, ip)) => format!("{host}:{ip}"),
                None => h,
            })
            .collect()),
        Json::Object(map) => {
            let mut hosts = Vec::new();
            for (host, ips) in map {
                match ips {
                    Json::Array(_) => {
                        for ip in strings_of::<D::Error>(ips)? {
                            hosts.push(format!("{host}:{ip}"));
                        }
                    }
                    other => {
                        hosts.push(format!("{host}:{}", scalar_text(other).unwrap_or_default()))
                    }
                }
            }
            Ok(hosts)
        }
        _ => Err(bad("expected a list or a mapping", &value)),
    }
}

fn env_files<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<EnvFile>, D::Error> {
    let value = Json::deserialize(d)?;
    let one = |item: &Json| -> Result<EnvFile, D::Error> {
        match item {
            Json::String(path) => Ok(EnvFile {
                path: path.clone(),
                required: true,
            }),
            Json::Object(_) => {
                serde_json::from_value(item.clone()).map_err(serde::de::Error::custom)
            }
            other => Err(bad("expected a path", other)),
        }
    };
    match &value {
        Json::Null => Ok(Vec::new()),
        Json::Array(items) => items.iter().map(one).collect(),
        other => Ok(vec![one(other)?]),
    }
}

/// A service's `secrets`/`configs`: names, or `{source, target}`.
fn file_references<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<FileReference>, D::Error> {
    let value = Json::deserialize(d)?;
    let Json::Array(items) = &value else {
        return Ok(Vec::new());
    };
    items
        .iter()
        .map(|item| match item {
            Json::String(source) => Ok(FileReference {
                source: source.clone(),
                target: None,
            }),
            Json::Object(_) => {
                serde_json::from_value(item.clone()).map_err(serde::de::Error::custom)
            }
            other => Err(bad("expected a name or a mapping", other)),
        })
        .collect()
}

/// `build.secrets`: names, or the long syntax.
fn build_secrets<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<BuildSecret>, D::Error> {
    let value = Json::deserialize(d)?;
    let Json::Array(items) = &value else {
        return Ok(Vec::new());
    };
    items
        .iter()
        .map(|item| match item {
            Json::String(source) => Ok(BuildSecret {
                source: source.clone(),
                target: None,
                uid: None,
                gid: None,
                mode: None,
            }),
            Json::Object(_) => {
                serde_json::from_value(item.clone()).map_err(serde::de::Error::custom)
            }
            other => Err(bad("expected a name or a mapping", other)),
        })
        .collect()
}

fn build<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Build>, D::Error> {
    let value = Json::deserialize(d)?;
    match &value {
        Json::Null => Ok(None),
        Json::String(context) => Ok(Some(Build {
            context: context.clone(),
            dockerfile: dockerfile(),
            ..Build::default()
        })),
        Json::Object(_) => serde_json::from_value(value)
            .map(Some)
            .map_err(serde::de::Error::custom),
        _ => Err(bad("expected a path or a mapping", &value)),
    }
}

fn depends_on<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Dependency>, D::Error> {
    let value = Json::deserialize(d)?;
    match &value {
        Json::Null => Ok(BTreeMap::new()),
        Json::Array(_) => Ok(strings_of::<D::Error>(&value)?
            .into_iter()
            .map(|name| {
                (
                    name,
                    Dependency {
                        condition: service_started(),
                        required: true,
                        restart: false,
                    },
                )
            })
            .collect()),
        Json::Object(_) => serde_json::from_value(value).map_err(serde::de::Error::custom),
        _ => Err(bad("expected a list or a mapping", &value)),
    }
}

fn service_networks<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Option<ServiceNetwork>>, D::Error> {
    let value = Json::deserialize(d)?;
    match &value {
        Json::Null => Ok(BTreeMap::new()),
        Json::Array(_) => Ok(strings_of::<D::Error>(&value)?
            .into_iter()
            .map(|name| (name, None))
            .collect()),
        Json::Object(_) => serde_json::from_value(value).map_err(serde::de::Error::custom),
        _ => Err(bad("expected a list or a mapping", &value)),
    }
}

fn ports<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Port>, D::Error> {
    let value = Json::deserialize(d)?;
    let Json::Array(items) = &value else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for item in items {
        match item {
            Json::Object(_) => {
                out.push(serde_json::from_value(item.clone()).map_err(serde::de::Error::custom)?)
            }
            other => {
                let text = scalar_text(other).ok_or_else(|| bad("expected a port", other))?;
                out.extend(parse_port(&text).map_err(serde::de::Error::custom)?);
            }
        }
    }
    Ok(out)
}

/// A port's short syntax, `[[IP:]PUBLISHED:]TARGET[/PROTOCOL]` with ranges, as the long
/// entries it stands for (one per port of a range).
pub fn parse_port(text: &str) -> Result<Vec<Port>, String> {
    let (spec, protocol) = match text.rsplit_once('/') {
        Some((spec, protocol)) => (spec, protocol.to_string()),
        None => (text, tcp()),
    };
    // An IPv6 host address is written in brackets.
    let (host_ip, rest) = if let Some(bracketed) = spec.strip_prefix('[') {
        let (ip, rest) = bracketed
            .split_once("]:")
            .ok_or_else(|| format!("invalid port {text:?}"))?;
        (Some(ip.to_string()), rest)
    } else {
        let parts: Vec<&str> = spec.split(':').collect();
        match parts.len() {
            1 | 2 => (None, spec),
            3 => (Some(parts[0].to_string()), &spec[parts[0].len() + 1..]),
            _ => return Err(format!("invalid port {text:?}")),
        }
    };
    let (published, target) = match rest.split_once(':') {
        Some((published, target)) => (Some(published), target),
        None => (None, rest),
    };
    let range = |part: &str| -> Result<(u16, u16), String> {
        let bad = || format!("invalid port {text:?}: {part:?} is not a port or a range");
        match part.split_once('-') {
            Some((a, b)) => Ok((a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?)),
            None => {
                let p = part.parse().map_err(|_| bad())?;
                Ok((p, p))
            }
        }
    };
    let (first, last) = range(target)?;
    let published = match published.filter(|p| !p.is_empty()) {
        Some(p) => Some(range(p)?),
        None => None,
    };
    let count = last
        .checked_sub(first)
        .ok_or_else(|| format!("invalid port range {text:?}"))?;
    let mut ports = Vec::new();
    for offset in 0..=count {
        let published = match published {
            None => None,
            Some((a, b)) if a == b && count == 0 => Some(a.to_string()),
            // A host range for one container port: any free port of it.
            Some((a, b)) if count == 0 => Some(format!("{a}-{b}")),
            Some((a, b)) if b - a == count => Some((a + offset).to_string()),
            Some(_) => return Err(format!("invalid port {text:?}: the ranges differ in size")),
        };
        ports.push(Port {
            mode: ingress(),
            host_ip: host_ip.clone(),
            target: first + offset,
            published,
            protocol: protocol.clone(),
        });
    }
    Ok(ports)
}

fn service_volumes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ServiceVolume>, D::Error> {
    let value = Json::deserialize(d)?;
    let Json::Array(items) = &value else {
        return Ok(Vec::new());
    };
    items
        .iter()
        .map(|item| match item {
            Json::String(text) => parse_volume(text).map_err(serde::de::Error::custom),
            Json::Object(_) => {
                serde_json::from_value(item.clone()).map_err(serde::de::Error::custom)
            }
            other => Err(bad("expected a volume", other)),
        })
        .collect()
}

/// A volume's short syntax, `[SOURCE:]TARGET[:MODE]`: a source that is a path
/// (`/`, `.`, `~`) is a bind, another a named volume; none, an anonymous volume.
pub fn parse_volume(text: &str) -> Result<ServiceVolume, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [target] => (None, *target, None),
        [source, target] => (Some(*source), *target, None),
        [source, target, mode] => (Some(*source), *target, Some(*mode)),
        _ => return Err(format!("invalid volume {text:?}")),
    };
    if target.is_empty() {
        return Err(format!("invalid volume {text:?}: no target"));
    }
    let modes: Vec<&str> = mode.map(|m| m.split(',').collect()).unwrap_or_default();
    let read_only = modes.contains(&"ro");
    let kind = match source {
        None => "volume",
        Some(s) if s.starts_with(['/', '.', '~']) => "bind",
        Some(_) => "volume",
    };
    Ok(ServiceVolume {
        kind: kind.into(),
        source: source.map(str::to_string),
        target: target.to_string(),
        read_only,
        bind: (kind == "bind").then_some(BindOptions {
            create_host_path: true,
        }),
        volume: (kind == "volume" && source.is_some()).then(|| VolumeOptions {
            nocopy: modes.contains(&"nocopy"),
        }),
        tmpfs: None,
    })
}

/// `~/x` and relative paths made absolute against the project's directory.
pub fn absolute(path: &str, directory: &Path) -> String {
    if let Some(rest) = path.strip_prefix("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return Path::new(&home).join(rest).display().to_string();
        }
    }
    let joined = directory.join(path);
    // `./a/../b` as compose shows it: without `.` and `..`.
    let mut clean = PathBuf::new();
    for part in joined.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                clean.pop();
            }
            other => clean.push(other),
        }
    }
    clean.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ports_become_long_ones() {
        let one = |t| parse_port(t).unwrap();
        assert_eq!(one("80")[0].target, 80);
        assert_eq!(one("80")[0].published, None);
        let p = &one("127.0.0.1:8080:80/udp")[0];
        assert_eq!(
            (
                p.host_ip.as_deref(),
                p.published.as_deref(),
                p.target,
                p.protocol.as_str()
            ),
            (Some("127.0.0.1"), Some("8080"), 80, "udp")
        );
        let range = one("9000-9001:90-91");
        assert_eq!(range.len(), 2);
        assert_eq!(
            (range[1].published.as_deref(), range[1].target),
            (Some("9001"), 91)
        );
        assert!(parse_port("a:b:c:d").is_err());
        assert!(parse_port("1-3:5-6").is_err());
    }

    #[test]
    fn short_volumes_become_long_ones() {
        let v = parse_volume("data:/data:ro").unwrap();
        assert_eq!(
            (v.kind.as_str(), v.source.as_deref(), v.read_only),
            ("volume", Some("data"), true)
        );
        assert_eq!(parse_volume("./here:/x").unwrap().kind, "bind");
        let anonymous = parse_volume("/cache").unwrap();
        assert_eq!(
            (anonymous.kind.as_str(), anonymous.source),
            ("volume", None)
        );
    }

    #[test]
    fn commands_split_as_a_shell_splits() {
        assert_eq!(
            split_words(r#"sh -c 'echo "a b"' "x\"y" z\ w"#).unwrap(),
            ["sh", "-c", "echo \"a b\"", "x\"y", "z w"]
        );
        assert!(split_words("'open").is_err());
    }
}
