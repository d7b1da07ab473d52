//! From compose files to the project: each file read, interpolated, checked against the
//! compose-spec's JSON schema and against what lade supports, then the files merged as
//! compose merges them, profiles applied, the project named, and the model normalised.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

use super::interpolate::{self, key_text, Unset, Variables};
use super::model::{self, Network, Project, Service, Volume};
use super::ComposeError;

/// The files compose looks for when none is named, in its order.
const DEFAULT_FILES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];
const OVERRIDE_FILES: [&str; 4] = [
    "compose.override.yaml",
    "compose.override.yml",
    "docker-compose.override.yaml",
    "docker-compose.override.yml",
];

/// What a project is loaded from.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `-f`, in order; none: compose.yaml (and its override) in the working directory.
    pub files: Vec<PathBuf>,
    /// `-p`.
    pub project_name: Option<String>,
    /// `--profile`, with `COMPOSE_PROFILES`.
    pub profiles: Vec<String>,
    /// `--env-file`: instead of `.env` in the project's directory.
    pub env_file: Option<PathBuf>,
    /// The process environment (passed in, so tests and callers choose).
    pub environment: BTreeMap<String, String>,
    /// The working directory, where compose files are looked for.
    pub working_dir: PathBuf,
}

/// A project and what loading it found worth a warning.
#[derive(Debug)]
pub struct Loaded {
    pub project: Project,
    pub warnings: Vec<String>,
}

/// Reads, checks and merges the files of `options` into the project.
pub fn load(options: &LoadOptions) -> Result<Loaded, ComposeError> {
    let files = compose_files(options)?;
    let directory = files[0]
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| options.working_dir.clone());
    let mut variables = dot_env(options, &directory)?;
    // The process environment wins over `.env`.
    variables.extend(options.environment.clone());
    // The project's name is there for interpolation, as the spec says, before the
    // files are interpolated.
    if !variables.contains_key("COMPOSE_PROJECT_NAME") {
        let top_name = files.iter().rev().find_map(|file| {
            let text = std::fs::read_to_string(file).ok()?;
            let value: Value = serde_yaml_ng::from_str(&text).ok()?;
            let name = value.get("name")?.as_str()?.to_string();
            interpolate::interpolate(&name, &variables, &mut Unset::default()).ok()
        });
        if let Ok(name) = project_name(options, top_name.as_deref(), &directory) {
            variables.insert("COMPOSE_PROJECT_NAME".into(), name);
        }
    }
    let mut warnings = Vec::new();
    let mut merged = Value::Mapping(Mapping::new());
    for file in &files {
        let value = read_file(file, &variables, &mut warnings, &mut Vec::new())?;
        merge(&mut merged, value, &mut Vec::new());
    }
    let mut json = untagged_json(&merged).map_err(|reason| ComposeError::Invalid {
        file: files[0].display().to_string(),
        path: String::new(),
        reason,
    })?;
    let top_name = json
        .get("name")
        .and_then(|n| n.as_str())
        .map(str::to_string);
    let name = project_name(options, top_name.as_deref(), &directory)?;
    if let Some(object) = json.as_object_mut() {
        object.insert("name".into(), serde_json::Value::String(name));
        object.remove("version");
        object.retain(|k, _| !k.starts_with("x-"));
        if let Some(services) = object.get_mut("services").and_then(|s| s.as_object_mut()) {
            for service in services.values_mut() {
                if let Some(service) = service.as_object_mut() {
                    service.retain(|k, _| !k.starts_with("x-"));
                }
            }
        }
    }
    let shown_files = files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if let Some(object) = json.as_object_mut() {
        // `volumes: {data:}`: a definition with every default.
        for section in ["networks", "volumes", "secrets", "configs"] {
            if let Some(entries) = object.get_mut(section).and_then(|s| s.as_object_mut()) {
                for entry in entries.values_mut() {
                    if entry.is_null() {
                        *entry = serde_json::Value::Object(Default::default());
                    }
                }
            }
        }
    }
    // Each service on its own first, so that an error names it.
    let services = json
        .as_object_mut()
        .and_then(|o| o.remove("services"))
        .unwrap_or_default();
    let mut project: Project =
        serde_json::from_value(json).map_err(|source| ComposeError::Model {
            file: shown_files.clone(),
            reason: source.to_string(),
        })?;
    if let serde_json::Value::Object(services) = services {
        for (name, service) in services {
            let service =
                serde_json::from_value(service).map_err(|source| ComposeError::Model {
                    file: shown_files.clone(),
                    reason: format!("services.{name}: {source}"),
                })?;
            project.services.insert(name, service);
        }
    }
    project.directory = directory;
    project.files = files.clone();
    apply_profiles(&mut project, options);
    normalise(&mut project, &variables)?;
    super::order::check(&project)?;
    Ok(Loaded { project, warnings })
}

/// One compose file read, interpolated, checked against the schema and what lade
/// supports, with its `include`s and its services' `extends` resolved: the value to
/// merge. `including` holds the files that include it (an include cycle is refused).
fn read_file(
    file: &Path,
    variables: &Variables,
    warnings: &mut Vec<String>,
    including: &mut Vec<PathBuf>,
) -> Result<Value, ComposeError> {
    let mut value = read_checked(file, variables, warnings)?;
    let directory = file.parent().unwrap_or(Path::new("/")).to_path_buf();
    apply_extends(&mut value, file, variables, warnings)?;
    let includes = match &mut value {
        Value::Mapping(map) => map.remove("include"),
        _ => None,
    };
    let Some(Value::Sequence(includes)) = includes else {
        return Ok(value);
    };
    including.push(file.to_path_buf());
    for (index, entry) in includes.into_iter().enumerate() {
        let at = format!("include.{index}");
        let (paths, project_directory, env_files) = match &entry {
            Value::String(path) => (vec![path.clone()], None, Vec::new()),
            Value::Mapping(map) => {
                let strings = |key: &str| match map.get(key) {
                    Some(Value::String(one)) => vec![one.clone()],
                    Some(Value::Sequence(items)) => items.iter().map(key_text).collect(),
                    _ => Vec::new(),
                };
                (
                    strings("path"),
                    map.get("project_directory").map(key_text),
                    strings("env_file"),
                )
            }
            _ => (Vec::new(), None, Vec::new()),
        };
        let paths: Vec<PathBuf> = paths
            .iter()
            .map(|p| absolute_path(Path::new(p), &directory))
            .collect();
        let Some(first) = paths.first() else {
            continue;
        };
        // Relative paths of the included files are their project directory's: by
        // default the first included file's.
        let base = match &project_directory {
            Some(dir) => absolute_path(Path::new(dir), &directory),
            None => first.parent().unwrap_or(Path::new("/")).to_path_buf(),
        };
        // Its variables: the environment's over its own env files (or `.env` there).
        let mut own = Variables::new();
        let env_files: Vec<(PathBuf, bool)> = if env_files.is_empty() {
            vec![(base.join(".env"), false)]
        } else {
            env_files
                .iter()
                .map(|f| (absolute_path(Path::new(f), &directory), true))
                .collect()
        };
        for (path, required) in env_files {
            match std::fs::read_to_string(&path) {
                Ok(text) => own.extend(
                    interpolate::parse_env_file(&text, variables)
                        .map_err(|reason| ComposeError::EnvFile { path, reason })?,
                ),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {}
                Err(source) => return Err(ComposeError::Read { path, source }),
            }
        }
        own.extend(variables.iter().map(|(k, v)| (k.clone(), v.clone())));
        let mut included = Value::Mapping(Mapping::new());
        for path in &paths {
            if including.contains(path) {
                return Err(ComposeError::Model {
                    file: file.display().to_string(),
                    reason: format!("{at}: {} includes itself", path.display()),
                });
            }
            let mut one = read_file(path, &own, warnings, including)?;
            absolutise_paths(&mut one, &base);
            merge(&mut included, one, &mut Vec::new());
        }
        // What is included may not be defined again by the including file.
        if let (Value::Mapping(target), Value::Mapping(source)) = (&mut value, included) {
            for (section, entries) in source {
                let section_name = key_text(&section);
                let Value::Mapping(entries) = entries else {
                    if !target.contains_key(&section) {
                        target.insert(section, entries);
                    }
                    continue;
                };
                let slot = target
                    .entry(section.clone())
                    .or_insert_with(|| Value::Mapping(Mapping::new()));
                if slot.is_null() {
                    *slot = Value::Mapping(Mapping::new());
                }
                let Value::Mapping(existing) = slot else {
                    continue;
                };
                for (name, definition) in entries {
                    if existing.contains_key(&name) {
                        return Err(ComposeError::Model {
                            file: file.display().to_string(),
                            reason: format!(
                                "{section_name}.{}: defined here and in the file {at} includes ({})",
                                key_text(&name),
                                first.display()
                            ),
                        });
                    }
                    existing.insert(name, definition);
                }
            }
        }
    }
    including.pop();
    Ok(value)
}

/// A file read, interpolated and checked, as it is written (no include, no extends).
fn read_checked(
    file: &Path,
    variables: &Variables,
    warnings: &mut Vec<String>,
) -> Result<Value, ComposeError> {
    let shown = file.display().to_string();
    let text = std::fs::read_to_string(file).map_err(|source| ComposeError::Read {
        path: file.to_path_buf(),
        source,
    })?;
    let mut value: Value = serde_yaml_ng::from_str(&text).map_err(|source| ComposeError::Yaml {
        file: shown.clone(),
        source,
    })?;
    if value.is_null() {
        value = Value::Mapping(Mapping::new());
    }
    // YAML's `<<` merge keys (the spec's fragments and extensions use them).
    value.apply_merge().map_err(|source| ComposeError::Yaml {
        file: shown.clone(),
        source,
    })?;
    let mut unset = Unset::default();
    interpolate::interpolate_value(&mut value, variables, &shown, &mut unset)?;
    for name in unset.0 {
        let warning =
            format!("{shown}: the {name:?} variable is not set: defaulting to a blank string");
        if !warnings.contains(&warning) {
            warnings.push(warning);
        }
    }
    let plain = untagged_json(&value).map_err(|reason| ComposeError::Invalid {
        file: shown.clone(),
        path: String::new(),
        reason,
    })?;
    super::schema::validate(&plain, &shown)?;
    super::support::check(&plain, &shown)?;
    Ok(value)
}

/// Each service of a file with `extends` made its base service (of this file or
/// another, itself extended first) merged with what it sets, by the merge rules of
/// several files.
fn apply_extends(
    value: &mut Value,
    file: &Path,
    variables: &Variables,
    warnings: &mut Vec<String>,
) -> Result<(), ComposeError> {
    let Some(Value::Mapping(services)) = value.get("services").cloned() else {
        return Ok(());
    };
    let mut resolved = Mapping::new();
    for (name, _) in &services {
        let service = extended(
            &services,
            file,
            &key_text(name),
            variables,
            warnings,
            &mut Vec::new(),
        )?;
        resolved.insert(name.clone(), service);
    }
    if let Value::Mapping(map) = value {
        map.insert("services".into(), Value::Mapping(resolved));
    }
    Ok(())
}

/// A service of `services` (read from `file`) with its `extends` resolved; `chain`
/// holds the services being resolved, so that a cycle is named.
fn extended(
    services: &Mapping,
    file: &Path,
    name: &str,
    variables: &Variables,
    warnings: &mut Vec<String>,
    chain: &mut Vec<String>,
) -> Result<Value, ComposeError> {
    let shown = file.display().to_string();
    let link = format!("{shown}:{name}");
    if chain.contains(&link) {
        chain.push(link);
        return Err(ComposeError::Model {
            file: shown,
            reason: format!("extends has a cycle: {}", chain.join(" -> ")),
        });
    }
    let Some(mut service) = services.get(name).cloned() else {
        return Err(ComposeError::Model {
            file: shown,
            reason: format!("extends names service {name:?}, which this file does not define"),
        });
    };
    let extends = match &mut service {
        Value::Mapping(map) => map.remove("extends"),
        _ => None,
    };
    let Some(extends) = extends else {
        return Ok(service);
    };
    let (other_file, base_name) = match &extends {
        Value::String(base) => (None, base.clone()),
        Value::Mapping(map) => (
            map.get("file").map(key_text),
            map.get("service").map(key_text).unwrap_or_default(),
        ),
        _ => (None, String::new()),
    };
    chain.push(link);
    let mut base = match other_file {
        None => extended(services, file, &base_name, variables, warnings, chain)?,
        Some(other) => {
            let directory = file.parent().unwrap_or(Path::new("/"));
            let other = absolute_path(Path::new(&other), directory);
            let document = read_checked(&other, variables, warnings)?;
            let Some(Value::Mapping(other_services)) = document.get("services").cloned() else {
                return Err(ComposeError::Model {
                    file: other.display().to_string(),
                    reason: format!("services.{name}.extends: the file has no services"),
                });
            };
            let mut base = extended(
                &other_services,
                &other,
                &base_name,
                variables,
                warnings,
                chain,
            )?;
            // Its relative paths are its own file's.
            let mut wrapper = Mapping::new();
            let mut one = Mapping::new();
            one.insert(base_name.clone().into(), base);
            wrapper.insert("services".into(), Value::Mapping(one));
            let mut wrapper = Value::Mapping(wrapper);
            absolutise_paths(&mut wrapper, other.parent().unwrap_or(Path::new("/")));
            base = wrapper["services"][base_name.as_str()].clone();
            base
        }
    };
    chain.pop();
    merge(
        &mut base,
        service,
        &mut vec!["services".to_string(), name.to_string()],
    );
    Ok(base)
}

/// The relative paths of a file's definitions (build contexts, env files, bind
/// sources, secret and config files, extends files) made absolute from `base`, before
/// the file is merged where another directory is the project's.
fn absolutise_paths(value: &mut Value, base: &Path) {
    let relative =
        |text: &str| !text.starts_with('/') && !text.starts_with("~/") && !text.contains("://");
    let fix = |value: &mut Value| {
        if let Value::String(text) = value {
            if relative(text) {
                *text = model::absolute(text, base);
            }
        }
    };
    if let Some(Value::Mapping(services)) = value.get_mut("services") {
        for (_, service) in services.iter_mut() {
            let Value::Mapping(service) = service else {
                continue;
            };
            match service.get_mut("build") {
                Some(Value::Mapping(build)) => {
                    if let Some(context) = build.get_mut("context") {
                        fix(context);
                    }
                }
                Some(context) => fix(context),
                None => {}
            }
            match service.get_mut("env_file") {
                Some(Value::Sequence(items)) => {
                    for item in items {
                        match item {
                            Value::Mapping(long) => {
                                if let Some(path) = long.get_mut("path") {
                                    fix(path);
                                }
                            }
                            other => fix(other),
                        }
                    }
                }
                Some(one) => fix(one),
                None => {}
            }
            if let Some(Value::Mapping(extends)) = service.get_mut("extends") {
                if let Some(file) = extends.get_mut("file") {
                    fix(file);
                }
            }
            if let Some(Value::Sequence(volumes)) = service.get_mut("volumes") {
                for volume in volumes {
                    match volume {
                        Value::String(short) => {
                            let (source, rest) = short.split_once(':').unwrap_or((short, ""));
                            if (source.starts_with('.') || source == "~") && !rest.is_empty() {
                                *short = format!("{}:{rest}", model::absolute(source, base));
                            }
                        }
                        Value::Mapping(long)
                            if long.get("type").map(key_text).as_deref() == Some("bind") =>
                        {
                            if let Some(source) = long.get_mut("source") {
                                fix(source);
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    for section in ["secrets", "configs"] {
        if let Some(Value::Mapping(entries)) = value.get_mut(section) {
            for (_, entry) in entries.iter_mut() {
                if let Some(file) = entry.get_mut("file") {
                    fix(file);
                }
            }
        }
    }
}

/// The files named, or those compose finds in the working directory.
fn compose_files(options: &LoadOptions) -> Result<Vec<PathBuf>, ComposeError> {
    if !options.files.is_empty() {
        return Ok(options
            .files
            .iter()
            .map(|f| absolute_path(f, &options.working_dir))
            .collect());
    }
    let found = |names: &[&str]| {
        names
            .iter()
            .map(|n| options.working_dir.join(n))
            .find(|p| p.is_file())
    };
    let main = found(&DEFAULT_FILES).ok_or_else(|| ComposeError::NoFile {
        directory: options.working_dir.clone(),
    })?;
    let mut files = vec![main];
    files.extend(found(&OVERRIDE_FILES));
    Ok(files)
}

fn absolute_path(path: &Path, base: &Path) -> PathBuf {
    PathBuf::from(model::absolute(&path.display().to_string(), base))
}

/// The variables of `.env` beside the first file (or `--env-file`), none when it is
/// absent.
fn dot_env(options: &LoadOptions, directory: &Path) -> Result<Variables, ComposeError> {
    let (path, required) = match &options.env_file {
        Some(path) => (absolute_path(path, &options.working_dir), true),
        None => (directory.join(".env"), false),
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
            return Ok(Variables::new())
        }
        Err(source) => return Err(ComposeError::Read { path, source }),
    };
    let pairs = interpolate::parse_env_file(&text, &options.environment)
        .map_err(|reason| ComposeError::EnvFile { path, reason })?;
    Ok(pairs.into_iter().collect())
}

/// `-p`, `COMPOSE_PROJECT_NAME`, the top-level `name:`, or the directory's name, made a
/// name as compose makes it (lowercase; letters, digits, `_` and `-`; starting with a
/// letter or digit).
fn project_name(
    options: &LoadOptions,
    top_name: Option<&str>,
    directory: &Path,
) -> Result<String, ComposeError> {
    let given = options
        .project_name
        .clone()
        .or_else(|| options.environment.get("COMPOSE_PROJECT_NAME").cloned())
        .filter(|n| !n.is_empty());
    if let Some(name) = given.or(top_name.map(str::to_string)) {
        if normalise_name(&name) != name || name.is_empty() {
            return Err(ComposeError::ProjectName(name));
        }
        return Ok(name);
    }
    let base = directory
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let name = normalise_name(&base);
    if name.is_empty() {
        return Err(ComposeError::ProjectName(base));
    }
    Ok(name)
}

/// A directory's name as compose makes a project name of it.
pub fn normalise_name(text: &str) -> String {
    let lower: String = text
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'))
        .collect();
    lower.trim_start_matches(['_', '-']).to_string()
}

/// A YAML value as JSON for the schema and the typed model: tags (`!reset`,
/// `!override`) dropped, keys made strings.
fn untagged_json(value: &Value) -> Result<serde_json::Value, String> {
    Ok(match value {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into()
            } else if let Some(u) = n.as_u64() {
                u.into()
            } else {
                serde_json::Number::from_f64(n.as_f64().unwrap_or(0.0))
                    .map(serde_json::Value::Number)
                    .ok_or_else(|| format!("{n} is not a number JSON can hold"))?
            }
        }
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Sequence(items) => {
            serde_json::Value::Array(items.iter().map(untagged_json).collect::<Result<_, _>>()?)
        }
        Value::Mapping(map) => {
            let mut object = serde_json::Map::new();
            for (key, item) in map {
                // `<<` merge keys were applied when the file was read.
                object.insert(key_text(key), untagged_json(item)?);
            }
            serde_json::Value::Object(object)
        }
        Value::Tagged(tagged) => untagged_json(&tagged.value)?,
    })
}

/// The tag of a value, when it has one of compose's (`reset`, `override`).
fn tag_of(value: &Value) -> Option<String> {
    match value {
        Value::Tagged(tagged) => Some(tagged.tag.to_string().trim_start_matches('!').to_string()),
        _ => None,
    }
}

/// Merges `over` into `base` by the compose-spec's rules (its "Merge and override"
/// chapter): mappings merged key by key, sequences appended, but `command`,
/// `entrypoint` and `healthcheck.test` replaced, `ports`, `volumes`, `secrets` and
/// `configs` merged by their unique key, the lists that are mappings in disguise
/// (`environment`, `labels`, `depends_on`...) merged as mappings; `!reset` removes and
/// `!override` replaces.
fn merge(base: &mut Value, over: Value, path: &mut Vec<String>) {
    match tag_of(&over).as_deref() {
        Some("override") => {
            if let Value::Tagged(tagged) = over {
                *base = tagged.value;
            }
            return;
        }
        Some(_) => {
            if let Value::Tagged(tagged) = over {
                return merge(base, tagged.value, path);
            }
        }
        None => {}
    }
    let field = path.last().map(String::as_str).unwrap_or("");
    let in_service = path.len() >= 3 && path[0] == "services";
    if in_service && path.len() == 3 && matches!(field, "command" | "entrypoint") {
        *base = over;
        return;
    }
    if in_service && path.len() == 4 && path[2] == "healthcheck" && field == "test" {
        *base = over;
        return;
    }
    let as_mapping = in_service
        && ((path.len() == 3
            && matches!(
                field,
                "environment" | "labels" | "depends_on" | "networks" | "extra_hosts" | "sysctls"
            ))
            || (path.len() == 4 && path[2] == "build" && field == "args"));
    if as_mapping {
        if let Some(over_map) = list_as_mapping(&over) {
            let mut base_map = list_as_mapping(base).unwrap_or_default();
            for (key, value) in over_map {
                if tag_of(&value).as_deref() == Some("reset") {
                    base_map.remove(&key);
                } else {
                    base_map.insert(key, untag(value));
                }
            }
            *base = Value::Mapping(base_map);
            return;
        }
    }
    if in_service && path.len() == 3 && field == "build" {
        if let Value::String(context) = base.clone() {
            let mut map = Mapping::new();
            map.insert("context".into(), Value::String(context));
            *base = Value::Mapping(map);
        }
        if let Value::String(context) = over {
            let mut map = Mapping::new();
            map.insert("context".into(), Value::String(context));
            return merge(base, Value::Mapping(map), path);
        }
    }
    match (base, over) {
        (Value::Mapping(base_map), Value::Mapping(over_map)) => {
            for (key, value) in over_map {
                if tag_of(&value).as_deref() == Some("reset") {
                    base_map.remove(&key);
                    continue;
                }
                path.push(key_text(&key));
                match base_map.get_mut(&key) {
                    Some(existing) => merge(existing, value, path),
                    None => {
                        base_map.insert(key, untag(value));
                    }
                }
                path.pop();
            }
        }
        (Value::Sequence(base_items), Value::Sequence(over_items)) => {
            let unique = in_service && path.len() == 3;
            let key_of: Option<fn(&Value) -> Option<String>> = match field {
                "ports" if unique => Some(port_key),
                "volumes" if unique => Some(volume_key),
                "secrets" | "configs" if unique => Some(file_key),
                _ => None,
            };
            for item in over_items {
                let item = untag(item);
                let existing = key_of.and_then(|key| {
                    let wanted = key(&item)?;
                    base_items
                        .iter()
                        .position(|b| key(b).as_ref() == Some(&wanted))
                });
                match existing {
                    Some(at) => base_items[at] = item,
                    None => base_items.push(item),
                }
            }
        }
        (base, over) => *base = untag(over),
    }
}

fn untag(value: Value) -> Value {
    match value {
        Value::Tagged(tagged) => untag(tagged.value),
        other => other,
    }
}

/// `[A=1, B]` or `{A: 1}` as a mapping (`B` to null); `None` for other values.
fn list_as_mapping(value: &Value) -> Option<Mapping> {
    match value {
        Value::Mapping(map) => Some(map.clone()),
        Value::Sequence(items) => {
            let mut map = Mapping::new();
            for item in items {
                let text = key_text(item);
                match text.split_once('=') {
                    Some((k, v)) => map.insert(k.into(), Value::String(v.into())),
                    None => map.insert(text.into(), Value::Null),
                };
            }
            Some(map)
        }
        _ => None,
    }
}

fn port_key(value: &Value) -> Option<String> {
    let ports = match value {
        Value::Mapping(_) => {
            let json = untagged_json(value).ok()?;
            vec![serde_json::from_value::<model::Port>(json).ok()?]
        }
        other => model::parse_port(&key_text(other)).ok()?,
    };
    let p = ports.first()?;
    Some(format!(
        "{:?}/{}/{:?}/{}",
        p.host_ip, p.target, p.published, p.protocol
    ))
}

fn volume_key(value: &Value) -> Option<String> {
    match value {
        Value::Mapping(map) => map.get("target").map(key_text),
        other => model::parse_volume(&key_text(other)).ok().map(|v| v.target),
    }
}

fn file_key(value: &Value) -> Option<String> {
    match value {
        Value::Mapping(map) => map
            .get("target")
            .or_else(|| map.get("source"))
            .map(key_text),
        other => Some(key_text(other)),
    }
}

/// Services whose profiles are none of the active ones are set aside.
fn apply_profiles(project: &mut Project, options: &LoadOptions) {
    let mut active: BTreeSet<String> = options.profiles.iter().cloned().collect();
    if let Some(listed) = options.environment.get("COMPOSE_PROFILES") {
        active.extend(
            listed
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_string),
        );
    }
    let names: Vec<String> = project.services.keys().cloned().collect();
    for name in names {
        let service = &project.services[&name];
        let enabled = service.profiles.is_empty()
            || active.contains("*")
            || service.profiles.iter().any(|p| active.contains(p));
        if !enabled {
            let service = project.services.remove(&name).expect("listed");
            project.disabled.insert(name, service);
        }
    }
}

/// Paths made absolute, env files read into the environment, names given to networks
/// and volumes, the default network added where services use it, references checked.
fn normalise(project: &mut Project, variables: &Variables) -> Result<(), ComposeError> {
    let directory = project.directory.clone();
    let name = project.name.clone();
    let mut uses_default = false;
    for (service_name, service) in project.services.iter_mut() {
        normalise_service(service_name, service, &directory, variables)?;
        if service.network_mode.is_some() && !service.networks.is_empty() {
            return Err(ComposeError::Service {
                service: service_name.clone(),
                reason: "network_mode and networks cannot be combined".into(),
            });
        }
        if service.networks.is_empty() && service.network_mode.is_none() {
            service.networks.insert("default".into(), None);
        }
        uses_default |= service.networks.contains_key("default");
        for network in service.networks.keys() {
            if network != "default" && !project.networks.contains_key(network) {
                return Err(ComposeError::Undefined {
                    service: service_name.clone(),
                    kind: "network",
                    name: network.clone(),
                });
            }
        }
        for volume in &service.volumes {
            if let (Some(source), "volume") = (&volume.source, volume.kind.as_str()) {
                if !project.volumes.contains_key(source) {
                    return Err(ComposeError::Undefined {
                        service: service_name.clone(),
                        kind: "volume",
                        name: source.clone(),
                    });
                }
            }
        }
        for secret in service.build.iter().flat_map(|build| &build.secrets) {
            let Some(defined) = project.secrets.get(&secret.source) else {
                return Err(ComposeError::Undefined {
                    service: service_name.clone(),
                    kind: "secret",
                    name: secret.source.clone(),
                });
            };
            if defined.file.is_none() && defined.environment.is_none() {
                return Err(ComposeError::Service {
                    service: service_name.clone(),
                    reason: format!(
                        "build.secrets: secret {:?} has neither file nor environment: a build takes its secrets from a file or a variable",
                        secret.source
                    ),
                });
            }
        }
        for (kind, references, defined) in [
            ("secret", &service.secrets, &project.secrets),
            ("config", &service.configs, &project.configs),
        ] {
            for reference in references {
                if !defined.contains_key(&reference.source) {
                    return Err(ComposeError::Undefined {
                        service: service_name.clone(),
                        kind,
                        name: reference.source.clone(),
                    });
                }
            }
        }
    }
    if uses_default && !project.networks.contains_key("default") {
        project
            .networks
            .insert("default".into(), Network::default());
    }
    for (key, network) in project.networks.iter_mut() {
        if network.name.is_none() {
            network.name = Some(if network.external == Some(true) {
                key.clone()
            } else {
                format!("{name}_{key}")
            });
        }
    }
    for (key, volume) in project.volumes.iter_mut() {
        normalise_volume(&name, key, volume);
    }
    for objects in [&mut project.secrets, &mut project.configs] {
        for (key, object) in objects.iter_mut() {
            if object.name.is_none() {
                object.name = Some(format!("{name}_{key}"));
            }
            if let Some(file) = &object.file {
                object.file = Some(model::absolute(file, &directory));
            }
        }
    }
    Ok(())
}

fn normalise_volume(project: &str, key: &str, volume: &mut Volume) {
    if volume.name.is_none() {
        volume.name = Some(if volume.external == Some(true) {
            key.to_string()
        } else {
            format!("{project}_{key}")
        });
    }
}

fn normalise_service(
    name: &str,
    service: &mut Service,
    directory: &Path,
    variables: &Variables,
) -> Result<(), ComposeError> {
    if service.image.is_none() && service.build.is_none() {
        return Err(ComposeError::NoImage(name.to_string()));
    }
    if let Some(build) = &mut service.build {
        build.context = model::absolute(&build.context, directory);
        for (key, value) in build.args.iter_mut() {
            if value.is_none() {
                // An argument without a value takes the environment's, as compose does.
                *value = variables.get(key).cloned();
            }
        }
    }
    // The env files first, `environment` over them; a name without a value takes the
    // environment's (and is left out when that lacks it, as compose leaves it).
    let mut environment = BTreeMap::new();
    for file in &mut service.env_file {
        file.path = model::absolute(&file.path, directory);
        let text = match std::fs::read_to_string(&file.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !file.required => continue,
            Err(source) => {
                return Err(ComposeError::Read {
                    path: file.path.clone().into(),
                    source,
                })
            }
        };
        let pairs = interpolate::parse_env_file(&text, variables).map_err(|reason| {
            ComposeError::EnvFile {
                path: file.path.clone().into(),
                reason,
            }
        })?;
        environment.extend(pairs.into_iter().map(|(k, v)| (k, Some(v))));
    }
    for (key, value) in std::mem::take(&mut service.environment) {
        let value = value.or_else(|| variables.get(&key).cloned());
        environment.insert(key, value);
    }
    service.environment = environment;
    for volume in &mut service.volumes {
        if volume.kind == "bind" {
            if let Some(source) = &volume.source {
                volume.source = Some(model::absolute(source, directory));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        serde_yaml_ng::from_str(text).unwrap()
    }

    fn merged(a: &str, b: &str) -> serde_json::Value {
        let mut base = yaml(a);
        merge(&mut base, yaml(b), &mut Vec::new());
        untagged_json(&base).unwrap()
    }

    #[test]
    fn files_merge_as_the_spec_says() {
        let m = merged(
            "services: {foo: {image: a, command: [echo, foo], dns: [1.1.1.1], ports: ['8080:80', '9090:90'], volumes: ['foo:/work'], environment: [A=1, B=2]}}",
            "services: {foo: {command: [echo, bar], dns: [8.8.8.8], ports: [{target: 80, published: '8080'}, '7070:70'], volumes: ['bar:/work'], environment: {B: '3', C: '4'}}}",
        );
        let foo = &m["services"]["foo"];
        assert_eq!(foo["image"], "a");
        assert_eq!(foo["command"], serde_json::json!(["echo", "bar"]));
        assert_eq!(foo["dns"], serde_json::json!(["1.1.1.1", "8.8.8.8"]));
        assert_eq!(
            foo["ports"],
            serde_json::json!([{"target": 80, "published": "8080"}, "9090:90", "7070:70"])
        );
        assert_eq!(foo["volumes"], serde_json::json!(["bar:/work"]));
        assert_eq!(
            foo["environment"],
            serde_json::json!({"A": "1", "B": "3", "C": "4"})
        );
    }

    #[test]
    fn reset_and_override_tags() {
        let m = merged(
            "services: {app: {image: a, ports: ['8080:80'], environment: {FOO: BAR, KEEP: x}}}",
            "services: {app: {ports: !reset [], environment: {FOO: !reset null}}}",
        );
        assert_eq!(m["services"]["app"].get("ports"), None);
        assert_eq!(
            m["services"]["app"]["environment"],
            serde_json::json!({"KEEP": "x"})
        );
        let m = merged(
            "services: {app: {ports: ['8080:80']}}",
            "services: {app: {ports: !override ['8443:443']}}",
        );
        assert_eq!(
            m["services"]["app"]["ports"],
            serde_json::json!(["8443:443"])
        );
    }

    #[test]
    fn project_names_as_compose_makes_them() {
        assert_eq!(normalise_name("My App.v2"), "myappv2");
        assert_eq!(normalise_name("_-x_y-Z"), "x_y-z");
        assert_eq!(normalise_name("ÜBER"), "ber");
    }
}
