//! Volumes: what `-v`, `--mount`, `--tmpfs`, `--volumes-from` and an image's VOLUMEs
//! ask for, as sandbox mounts; named volumes (`lade volume ...`) and anonymous ones
//! (one per container, removed with `rm -v`); and Docker's copy-up, which fills a new
//! volume mounted over a path the image has content at with that content, its owner
//! and mode (so a `USER nobody` image can write its own volume).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::record::spec_of;
use super::{io, new_id, now_rfc3339, ContainerError, Result};
use crate::exec::{self, Mount};
use crate::store::{Store, VolumeRecord};

/// One mount a container asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Request {
    /// A named volume, or an anonymous one (`None`).
    Volume {
        name: Option<String>,
        target: String,
        readonly: bool,
        /// Fill a new, empty volume from the image (Docker's copy-up; off with
        /// `volume-nocopy`).
        copy_up: bool,
    },
    Bind {
        source: PathBuf,
        target: String,
        readonly: bool,
    },
    Tmpfs {
        target: String,
        size: Option<u64>,
    },
}

impl Request {
    fn target(&self) -> &str {
        match self {
            Request::Volume { target, .. }
            | Request::Bind { target, .. }
            | Request::Tmpfs { target, .. } => target,
        }
    }
}

fn invalid(spec: &str, reason: impl std::fmt::Display) -> ContainerError {
    ContainerError::BadMount {
        spec: spec.to_string(),
        reason: reason.to_string(),
    }
}

/// A container path: absolute, without `..`, not `/` or under `/proc` (the sandbox's).
fn check_target(spec: &str, target: &str) -> Result<String> {
    if !target.starts_with('/') {
        return Err(invalid(spec, "the container path must be absolute"));
    }
    let parts: Vec<&str> = target
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if parts.contains(&"..") {
        return Err(invalid(spec, "the container path may not contain `..`"));
    }
    if parts.is_empty() || parts[0] == "proc" {
        return Err(invalid(
            spec,
            format!(
                "mounting over {} is not allowed (the sandbox owns it)",
                if parts.is_empty() { "/" } else { "/proc" }
            ),
        ));
    }
    Ok(format!("/{}", parts.join("/")))
}

/// A volume name as Docker allows it.
pub fn check_volume_name(name: &str) -> Result<()> {
    Ok(super::validate::volume_name(name)?)
}

/// `-v`, `--mount` and `--tmpfs` as written: refused here, before anything is made.
/// Two of them on one container path are refused, as Docker refuses them.
pub(super) fn check_flags(volumes: &[String], mounts: &[String], tmpfs: &[String]) -> Result<()> {
    let mut requests = Vec::new();
    for spec in volumes {
        requests.push(parse_volume_flag(spec)?);
    }
    for spec in mounts {
        requests.push(parse_mount_flag(spec)?);
    }
    for spec in tmpfs {
        requests.push(parse_tmpfs_flag(spec)?);
    }
    let mut targets = std::collections::BTreeSet::new();
    for request in &requests {
        if !targets.insert(request.target()) {
            return Err(ContainerError::DuplicateMount(request.target().to_string()));
        }
    }
    Ok(())
}

/// `-v NAME:/path[:MODES]`, `-v /host:/path[:MODES]`, `-v ./dir:/path` (relative to
/// where lade runs, as Docker 23+), `-v /path` (anonymous). MODES, comma-separated as
/// Docker takes them: `ro`/`rw`; `z`/`Z` (SELinux relabelling: accepted and ignored, as
/// Docker does where SELinux is off, and lade has no SELinux support); `nocopy` (a new
/// volume is not filled from the image); a propagation (`private`/`rprivate`, what lade's
/// binds are; the shared and slave kinds are refused); a consistency (`consistent`,
/// `cached`, `delegated`: Docker Desktop's, ignored by Docker on Linux too).
fn parse_volume_flag(spec: &str) -> Result<Request> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, modes) = match parts.as_slice() {
        [t] => (None, *t, ""),
        [s, t] => (Some(*s), *t, ""),
        [s, t, m] => (Some(*s), *t, *m),
        _ => return Err(invalid(spec, "expected [SOURCE:]TARGET[:MODES]")),
    };
    let mut readonly = None;
    let mut copy_up = true;
    for mode in modes.split(',').filter(|m| !m.is_empty()) {
        match mode {
            "ro" | "rw" if readonly.is_some() => {
                return Err(invalid(spec, "ro and rw are given twice"))
            }
            "ro" => readonly = Some(true),
            "rw" => readonly = Some(false),
            "z" | "Z" | "consistent" | "cached" | "delegated" | "private" | "rprivate" => {}
            "nocopy" => copy_up = false,
            "shared" | "rshared" | "slave" | "rslave" => {
                return Err(invalid(
                    spec,
                    format!("propagation {mode:?} is not supported: lade's binds are rprivate"),
                ))
            }
            "U" => {
                return Err(invalid(
                    spec,
                    "U (podman's chown of the source to the container's user) is not supported",
                ))
            }
            other => {
                return Err(invalid(
                    spec,
                    format!("mode {other:?}: expected ro, rw, z, Z, nocopy or a propagation"),
                ))
            }
        }
    }
    let readonly = readonly.unwrap_or(false);
    let target = check_target(spec, target)?;
    Ok(match source {
        None => Request::Volume {
            name: None,
            target,
            readonly,
            copy_up,
        },
        Some(s) if s.contains('/') || s == "." || s == ".." => {
            let relative = s == "." || s == ".." || s.starts_with("./") || s.starts_with("../");
            let path = if relative {
                std::env::current_dir()
                    .map_err(|e| invalid(spec, format!("cannot resolve {s}: {e}")))?
                    .join(s)
            } else {
                PathBuf::from(s)
            };
            if !path.is_absolute() {
                return Err(invalid(
                    spec,
                    "the host path must be absolute, or relative starting with ./ or ../",
                ));
            }
            if !copy_up {
                return Err(invalid(spec, "nocopy is for volumes, not host paths"));
            }
            Request::Bind {
                source: normalize(&path),
                target,
                readonly,
            }
        }
        Some(name) => {
            check_volume_name(name)?;
            Request::Volume {
                name: Some(name.to_string()),
                target,
                readonly,
                copy_up,
            }
        }
    })
}

/// `path` without `.` and `..` components (lexically, as Go's `filepath.Clean`): a
/// relative `-v ./dir` is shown and stored as the directory it names.
fn normalize(path: &std::path::Path) -> PathBuf {
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                clean.pop();
            }
            other => clean.push(other),
        }
    }
    clean
}

/// `--mount type=volume|bind|tmpfs,source=,target=,readonly[,tmpfs-size=]`. A key
/// lade does not act on is refused, never passed over: a mount silently other than the
/// one asked for (writable, or the whole volume for a subpath) is a hole.
fn parse_mount_flag(spec: &str) -> Result<Request> {
    let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
    for field in spec.split(',') {
        let (key, value) = field.split_once('=').unwrap_or((field, "true"));
        let key = match key {
            "src" | "source" => "source",
            "dst" | "destination" | "target" => "target",
            "ro" | "readonly" => "readonly",
            // Docker ignores it on Linux too.
            "consistency" => continue,
            // lade's mounts are always private (Docker's default): only that is taken.
            "bind-propagation" if matches!(value, "private" | "rprivate") => continue,
            "bind-propagation" => {
                return Err(invalid(
                    spec,
                    format!("bind-propagation={value} is not supported: lade's mounts are private (rprivate)"),
                ))
            }
            "type" | "tmpfs-size" | "volume-nocopy" => key,
            "volume-subpath" => {
                return Err(invalid(
                    spec,
                    "volume-subpath= is not supported yet: mount the whole volume",
                ))
            }
            other => {
                return Err(invalid(
                    spec,
                    format!(
                        "{other:?} is not supported: lade takes type, source, target, \
                         readonly, volume-nocopy, bind-propagation=rprivate and tmpfs-size"
                    ),
                ))
            }
        };
        fields.insert(key, value);
    }
    let readonly = match fields.get("readonly") {
        None => false,
        Some(value) => super::validate::go_bool(value).ok_or_else(|| {
            invalid(
                spec,
                format!("readonly={value}: expected true or false (or 1 or 0)"),
            )
        })?,
    };
    let nocopy = match fields.get("volume-nocopy") {
        None => false,
        Some(value) => super::validate::go_bool(value).ok_or_else(|| {
            invalid(
                spec,
                format!("volume-nocopy={value}: expected true or false"),
            )
        })?,
    };
    let target = check_target(
        spec,
        fields
            .get("target")
            .ok_or_else(|| invalid(spec, "target= is required"))?,
    )?;
    Ok(match fields.get("type").copied().unwrap_or("volume") {
        "volume" => {
            let name = fields.get("source").map(|s| s.to_string());
            if let Some(name) = &name {
                check_volume_name(name)?;
            }
            Request::Volume {
                name,
                target,
                readonly,
                copy_up: !nocopy,
            }
        }
        "bind" => {
            let source = PathBuf::from(
                fields
                    .get("source")
                    .ok_or_else(|| invalid(spec, "a bind mount needs source="))?,
            );
            if !source.is_absolute() {
                return Err(invalid(spec, "the host path must be absolute"));
            }
            if !source.exists() {
                return Err(invalid(spec, "the host path does not exist"));
            }
            Request::Bind {
                source,
                target,
                readonly,
            }
        }
        "tmpfs" if readonly => return Err(invalid(spec, "a read-only tmpfs is not supported yet")),
        "tmpfs" => Request::Tmpfs {
            target,
            size: match fields.get("tmpfs-size") {
                Some(size) => Some(
                    crate::oci::parse_size(size)
                        .ok_or_else(|| invalid(spec, format!("tmpfs-size={size}")))?,
                ),
                None => None,
            },
        },
        other => {
            return Err(invalid(
                spec,
                format!("type={other}: expected volume, bind or tmpfs"),
            ))
        }
    })
}

/// `--tmpfs /path[:size=64m]`.
fn parse_tmpfs_flag(spec: &str) -> Result<Request> {
    let (target, options) = spec.split_once(':').unwrap_or((spec, ""));
    let size = options
        .split(',')
        .find_map(|o| o.strip_prefix("size="))
        .map(|s| crate::oci::parse_size(s).ok_or_else(|| invalid(spec, format!("size={s}"))))
        .transpose()?;
    Ok(Request::Tmpfs {
        target: check_target(spec, target)?,
        size,
    })
}

/// The mounts of another container (`--volumes-from C[:ro]`): its volumes and binds.
fn mounts_of(store: &Store, spec: &str) -> Result<Vec<Request>> {
    let (reference, mode) = spec.split_once(':').unwrap_or((spec, "rw"));
    let force_ro = match mode {
        "ro" => true,
        "rw" => false,
        other => return Err(invalid(spec, format!("mode {other:?}: expected ro or rw"))),
    };
    let other = super::Container::load(store, reference)?.spec;
    let volumes_dir = store.root().join("volumes");
    Ok(other
        .mounts
        .into_iter()
        .filter_map(|mount| match mount {
            Mount::Bind {
                source,
                target,
                readonly,
            } if !target.starts_with("/etc/host") && target != "/etc/resolv.conf" => {
                let readonly = readonly || force_ro;
                Some(match volume_of(&volumes_dir, &source) {
                    Some(name) => Request::Volume {
                        name: Some(name),
                        target,
                        readonly,
                        copy_up: true,
                    },
                    None => Request::Bind {
                        source,
                        target,
                        readonly,
                    },
                })
            }
            _ => None,
        })
        .collect())
}

/// The volume a bind source is the data of, if it is one.
fn volume_of(volumes_dir: &Path, source: &Path) -> Option<String> {
    let rest = source.strip_prefix(volumes_dir).ok()?;
    let mut parts = rest.iter();
    let name = parts.next()?.to_string_lossy().into_owned();
    (parts.next()? == "_data").then_some(name)
}

/// What a container's mounts come from.
pub struct MountFlags<'a> {
    pub volumes: &'a [String],
    pub mounts: &'a [String],
    pub tmpfs: &'a [String],
    pub volumes_from: &'a [String],
    /// The image's VOLUME paths.
    pub image_volumes: Vec<String>,
}

/// What a new container's mounts are to be, one per path, from its flags and the
/// other containers `--volumes-from` names. Nothing is made yet.
pub(super) fn requests(store: &Store, flags: &MountFlags<'_>) -> Result<Vec<Request>> {
    check_flags(flags.volumes, flags.mounts, flags.tmpfs)?;
    let mut requests: Vec<Request> = Vec::new();
    for spec in flags.volumes_from {
        requests.extend(mounts_of(store, spec)?);
    }
    for spec in flags.volumes {
        requests.push(parse_volume_flag(spec)?);
    }
    for spec in flags.mounts {
        requests.push(parse_mount_flag(spec)?);
    }
    for spec in flags.tmpfs {
        requests.push(parse_tmpfs_flag(spec)?);
    }
    // A later request for the same path replaces an earlier one.
    let mut by_target: BTreeMap<String, Request> = BTreeMap::new();
    for request in requests {
        by_target.insert(request.target().to_string(), request);
    }
    for path in &flags.image_volumes {
        let target = check_target(path, path)?;
        by_target.entry(target.clone()).or_insert(Request::Volume {
            name: None,
            target,
            readonly: false,
            copy_up: true,
        });
    }
    // Shorter paths first, so that a mount inside another lands on top of it.
    Ok(by_target.into_values().collect())
}

/// The sandbox mounts for a new container, with its volumes made (and new ones filled
/// from the image, whose layers are `lowers` under `layers_dir`). Returns the mounts
/// and the anonymous volumes made for it; each volume it makes is added to `made` as
/// soon as it exists, so that a failure later on can remove it.
pub(super) fn apply(
    store: &Store,
    requests: Vec<Request>,
    layers_dir: &Path,
    lowers: &[String],
    made: &mut Vec<String>,
) -> Result<(Vec<Mount>, Vec<String>, Vec<String>)> {
    // Dropped in this order on every way out: unmounted before its directory goes.
    let mut view: Option<(Option<exec::mounts::Mounted>, crate::store::Staging)> = None;
    let mut anonymous = Vec::new();
    let mut mounted = Vec::new();
    let mut mounts = Vec::new();
    for request in requests {
        mounts.push(match request {
            Request::Bind {
                source,
                target,
                readonly,
            } => {
                if !source.exists() {
                    io(&source, std::fs::create_dir_all(&source))?;
                }
                Mount::Bind {
                    source,
                    target,
                    readonly,
                }
            }
            Request::Tmpfs { target, size } => Mount::Tmpfs { target, size },
            Request::Volume {
                name,
                target,
                readonly,
                copy_up: fill,
            } => {
                let is_anonymous = name.is_none();
                let name = match name {
                    Some(name) => name,
                    None => new_id()?,
                };
                let (_, new) = store.create_volume(&VolumeRecord {
                    name: name.clone(),
                    created: now_rfc3339(),
                    labels: "{}".into(),
                    anonymous: is_anonymous,
                })?;
                if new {
                    made.push(name.clone());
                    super::events::volume_event(store, &name, "create", Default::default());
                }
                if is_anonymous {
                    anonymous.push(name.clone());
                }
                if !is_anonymous {
                    let options = store.volume_options(&name)?;
                    if !options.is_empty() {
                        mounted.push(name.clone());
                        mounts.push(options_mount(&name, &options, target, readonly)?);
                        continue;
                    }
                }
                let data = store.volume_data(&name);
                // An empty volume takes what the image has there (Docker's copy-up).
                let empty = std::fs::read_dir(&data).is_ok_and(|mut d| d.next().is_none());
                if fill && empty && !lowers.is_empty() {
                    if view.is_none() {
                        let dir = store.staging_dir("volume-view")?;
                        let mounted =
                            exec::mounts::mount_readonly_view(layers_dir, lowers, dir.path())
                                .map_err(|source| ContainerError::Io {
                                    path: dir.path().to_path_buf(),
                                    source,
                                })?;
                        view = Some((mounted, dir));
                    }
                    if let Some((_, dir)) = &view {
                        copy_up(dir.path(), &target, &data)?;
                    }
                }
                Mount::Bind {
                    source: data,
                    target,
                    readonly,
                }
            }
        });
    }
    drop(view);
    Ok((mounts, anonymous, mounted))
}

/// The mount a volume with driver options makes, as moby's local driver makes it:
/// `type=none,o=bind,device=/dir` (or any type with `bind` in `o`) binds the device,
/// anything else mounts `device` as a file system of `type` with `o`.
fn options_mount(
    name: &str,
    options: &BTreeMap<String, String>,
    target: String,
    readonly: bool,
) -> Result<Mount> {
    let get = |key: &str| options.get(key).map(String::as_str).unwrap_or("");
    let (fstype, device, mount_options) = (get("type"), get("device"), get("o"));
    let words: Vec<&str> = mount_options.split(',').collect();
    if words.iter().any(|w| matches!(*w, "bind" | "rbind")) {
        let source = PathBuf::from(device);
        if !source.is_absolute() || !source.exists() {
            return Err(ContainerError::VolumeOptions(format!(
                "error while mounting volume '{name}': failed to mount local volume: mount {device}: no such file or directory"
            )));
        }
        return Ok(Mount::Bind {
            source,
            target,
            readonly: readonly || words.contains(&"ro"),
        });
    }
    Ok(Mount::Filesystem {
        source: device.to_string(),
        fstype: fstype.to_string(),
        options: mount_options.to_string(),
        target,
        readonly,
    })
}

/// moby's local driver's checks of `volume create -o`: only `type`, `o`, `device`
/// (and `size`, a quota lade has no support for), each with those it needs.
fn check_volume_options(options: &BTreeMap<String, String>) -> Result<()> {
    let refuse = |text: String| Err(ContainerError::VolumeOptions(text));
    for key in options.keys() {
        if !matches!(key.as_str(), "type" | "o" | "device" | "size") {
            return refuse(format!("invalid option: {key:?}"));
        }
    }
    if options.contains_key("size") {
        return refuse("quota size requested but no quota support".into());
    }
    const NEEDS: [(&str, &[&str]); 3] = [
        ("device", &["type"]),
        ("o", &["device", "type"]),
        ("type", &["device"]),
    ];
    for (key, needed) in NEEDS {
        if options.contains_key(key) {
            if let Some(missing) = needed.iter().find(|n| !options.contains_key(**n)) {
                return refuse(format!("missing required option: {missing:?}"));
            }
        }
    }
    Ok(())
}

/// Docker's copy-up: the image's content at `target` (resolved inside the image) fills
/// a new volume, which takes the directory's owner and mode.
fn copy_up(image_root: &Path, target: &str, data: &Path) -> Result<()> {
    let source = exec::paths::resolve_in_root(image_root, target, true);
    let Ok(meta) = std::fs::metadata(&source) else {
        return Ok(());
    };
    if !meta.is_dir() {
        return Ok(());
    }
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(source.join("."))
        .arg(data)
        .status()
        .map_err(|source| ContainerError::Io {
            path: "cp".into(),
            source,
        })?;
    if !status.success() {
        return Err(ContainerError::VolumeSeed(target.to_string()));
    }
    io(
        data,
        std::os::unix::fs::chown(data, Some(meta.uid()), Some(meta.gid())),
    )?;
    io(
        data,
        std::fs::set_permissions(data, std::fs::Permissions::from_mode(meta.mode() & 0o7777)),
    )?;
    Ok(())
}

/// Containers whose mounts use the volume.
pub fn volume_users(store: &Store, name: &str) -> Result<Vec<String>> {
    let data = store.volume_data(name);
    let mut users = Vec::new();
    for record in store.containers()? {
        let uses = spec_of(&record)?
            .mounts
            .iter()
            .any(|m| matches!(m, Mount::Bind { source, .. } if *source == data))
            || super::record::settings_of(&record)?
                .mounted_volumes
                .iter()
                .any(|v| v == name);
        if uses {
            users.push(record.name);
        }
    }
    Ok(users)
}

/// `lade volume create`.
pub fn create_volume(
    store: &Store,
    name: Option<&str>,
    labels: &BTreeMap<String, String>,
    options: &BTreeMap<String, String>,
) -> Result<String> {
    check_volume_options(options)?;
    let name = match name {
        Some(name) => {
            check_volume_name(name)?;
            name.to_string()
        }
        None => new_id()?,
    };
    for key in labels.keys() {
        super::validate::label_key(key)?;
    }
    let (_, new) = store.create_volume(&VolumeRecord {
        name: name.clone(),
        created: now_rfc3339(),
        labels: serde_json::to_string(labels).map_err(|e| ContainerError::Json {
            what: format!("volume {name}: its labels"),
            source: e,
        })?,
        anonymous: false,
    })?;
    // An existing volume keeps its options, as Docker's does.
    if new && !options.is_empty() {
        store.set_volume_options(&name, options)?;
    }
    super::events::volume_event(store, &name, "create", Default::default());
    Ok(name)
}

/// Docker's `volume inspect` shape.
pub fn volume_json(store: &Store, record: &VolumeRecord) -> Value {
    let labels: Value = serde_json::from_str(&record.labels).unwrap_or(json!({}));
    let options = store.volume_options(&record.name).unwrap_or_default();
    json!({
        "CreatedAt": record.created,
        "Driver": "local",
        "Labels": labels,
        "Mountpoint": store.volume_data(&record.name),
        "Name": record.name,
        "Options": options,
        "Scope": "local",
        "Anonymous": record.anonymous,
    })
}

/// `lade volume rm`: a volume a container uses is refused, unless `force` (which
/// still refuses one a running container uses).
pub fn remove_volume(store: &Store, name: &str, force: bool) -> Result<()> {
    if store.volume(name)?.is_none() {
        return Err(ContainerError::NoSuchVolume(name.to_string()));
    }
    let users = volume_users(store, name)?;
    if !users.is_empty() && !force {
        return Err(ContainerError::VolumeInUse {
            name: name.to_string(),
            users,
        });
    }
    store.delete_volume(name)?;
    super::events::volume_event(store, name, "destroy", Default::default());
    Ok(())
}

/// `lade volume prune`: unused anonymous volumes (every unused one with `all`) whose
/// labels `pass` takes.
pub fn prune_volumes(
    store: &Store,
    all: bool,
    pass: &dyn Fn(&BTreeMap<String, String>) -> bool,
) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for record in store.volumes()? {
        let labels: BTreeMap<String, String> =
            serde_json::from_str(&record.labels).unwrap_or_default();
        if (record.anonymous || all)
            && pass(&labels)
            && volume_users(store, &record.name)?.is_empty()
        {
            store.delete_volume(&record.name)?;
            super::events::volume_event(store, &record.name, "destroy", Default::default());
            removed.push(record.name);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(spec: &str) -> String {
        match parse_mount_flag(spec) {
            Ok(request) => panic!("{spec} was taken as {request:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn mount_booleans_are_docker_s_or_refused() {
        let readonly = |spec: &str| match parse_mount_flag(spec).unwrap() {
            Request::Volume { readonly, .. } | Request::Bind { readonly, .. } => readonly,
            Request::Tmpfs { .. } => panic!("{spec}: not a tmpfs"),
        };
        for spec in ["readonly", "ro", "readonly=true", "ro=1", "readonly=True"] {
            assert!(
                readonly(&format!("type=volume,source=data,target=/m,{spec}")),
                "{spec}"
            );
        }
        for spec in ["readonly=false", "ro=0", "readonly=FALSE"] {
            assert!(
                !readonly(&format!("type=volume,source=data,target=/m,{spec}")),
                "{spec}"
            );
        }
        assert!(!readonly("type=volume,source=data,target=/m"));
        for value in ["maybe", "", "yes", "2"] {
            let error = refusal(&format!(
                "type=volume,source=data,target=/m,readonly={value}"
            ));
            assert!(error.contains(&format!("readonly={value}")), "{error}");
        }
    }

    #[test]
    fn mount_keys_lade_does_not_act_on_are_refused() {
        let error = refusal("type=volume,source=data,target=/m,volume-subpath=a/b");
        assert!(error.contains("volume-subpath"), "{error}");
        let error = refusal("type=bind,source=/tmp,target=/m,bind-propagation=rshared");
        assert!(error.contains("bind-propagation=rshared"), "{error}");
        assert!(parse_mount_flag("type=bind,src=/tmp,dst=/m,bind-propagation=rprivate").is_ok());
        let nocopy = parse_mount_flag("type=volume,src=data,dst=/m,volume-nocopy").unwrap();
        assert!(
            matches!(nocopy, Request::Volume { copy_up: false, .. }),
            "{nocopy:?}"
        );
        assert!(refusal("type=tmpfs,target=/t,readonly").contains("read-only tmpfs"));
        assert!(parse_mount_flag("type=volume,src=data,dst=/m,consistency=cached").is_ok());
    }

    #[test]
    fn volume_modes_are_dockers() {
        let parsed = |spec: &str| parse_volume_flag(spec).unwrap();
        assert!(matches!(
            parsed("data:/m:z"),
            Request::Volume {
                readonly: false,
                copy_up: true,
                ..
            }
        ));
        assert!(matches!(
            parsed("data:/m:Z,ro"),
            Request::Volume { readonly: true, .. }
        ));
        assert!(matches!(
            parsed("data:/m:nocopy"),
            Request::Volume { copy_up: false, .. }
        ));
        assert!(matches!(
            parsed("/tmp:/m:ro,rprivate"),
            Request::Bind { readonly: true, .. }
        ));
        let here = std::env::current_dir().unwrap();
        match parsed("./sub/../dir:/m") {
            Request::Bind { source, .. } => assert_eq!(source, here.join("dir")),
            other => panic!("{other:?}"),
        }
        match parsed(".:/m") {
            Request::Bind { source, .. } => assert_eq!(source, here),
            other => panic!("{other:?}"),
        }
        let error = |spec: &str| parse_volume_flag(spec).unwrap_err().to_string();
        assert!(error("data:/m:U").contains("podman's chown"));
        assert!(error("/tmp:/m:rshared").contains("rshared"));
        assert!(error("/tmp:/m:nocopy").contains("nocopy is for volumes"));
        assert!(error("data:/m:ro,rw").contains("twice"));
        assert!(error("a/b:/m").contains("relative starting with ./"));
        assert!(error("data:/m:bogus").contains("bogus"));
    }
}
