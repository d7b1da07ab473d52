//! What a container changed, and what can be made of it: `lade diff` (A/C/D lines from
//! its upper directory), `lade export` (its whole root file system as a tar) and
//! `lade commit` (its changes as a new layer on its image, deterministic like a build's).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::{ContainerError, Result};
use crate::exec::{self, Mount, Spec};
use crate::layers::{self, Compression, LayerWriter, SnapshotTarget};
use crate::oci::{ContainerConfig, History, ImageConfig, ImageRef, RootFs};
use crate::store::{ContainerRecord, Image, NewImage, Store};

/// Paths the sandbox makes to mount on: not the container's own changes when they are
/// empty and the image did not have them.
const MOUNT_POINTS: [&str; 6] = [
    "proc",
    "dev",
    "sys",
    "etc/hosts",
    "etc/resolv.conf",
    "etc/hostname",
];

/// A container's root file system as layers: its upper directory over the image's.
struct Layered {
    record: ContainerRecord,
    spec: Spec,
    upper: PathBuf,
    lowers: Vec<PathBuf>,
}

fn open(store: &Store, reference: &str) -> Result<Layered> {
    let super::Container { record, spec, .. } = super::Container::load(store, reference)?;
    if spec.rootfs.driver == exec::overlay::OverlayDriver::Fuse {
        if let Some(upper) = &spec.rootfs.upper {
            layers::adopt_fuse_overlay_marks(upper)?;
        }
    }
    let upper = spec
        .rootfs
        .upper
        .clone()
        .ok_or_else(|| ContainerError::ReadOnlyRoot(record.name.clone()))?;
    let lowers = spec
        .rootfs
        .lowers
        .iter()
        .map(|l| spec.rootfs.layers_dir.join(l))
        .collect();
    Ok(Layered {
        record,
        spec,
        upper,
        lowers,
    })
}

/// Whether `relative` is in the image (the merged lowers), not whited out.
fn in_image(lowers: &[PathBuf], relative: &Path) -> bool {
    for lower in lowers {
        if let Ok(meta) = fs::symlink_metadata(lower.join(relative)) {
            return !(meta.file_type().is_char_device() && meta.rdev() == 0);
        }
    }
    false
}

impl Layered {
    /// Mount points the sandbox made (system ones and the container's mounts), when
    /// they are empty and not in the image.
    fn is_mount_point(&self, relative: &Path) -> bool {
        let text = relative.to_string_lossy();
        let is_point = MOUNT_POINTS.contains(&text.as_ref())
            || self.spec.mounts.iter().any(|m| match m {
                Mount::Bind { target, .. }
                | Mount::Tmpfs { target, .. }
                | Mount::Filesystem { target, .. }
                | Mount::Overlay { target, .. } => target.trim_start_matches('/') == text,
            });
        if !is_point || in_image(&self.lowers, relative) {
            return false;
        }
        let path = self.upper.join(relative);
        fs::read_dir(&path).is_ok_and(|mut d| d.next().is_none())
            || fs::metadata(&path).is_ok_and(|m| m.is_file() && m.len() == 0)
    }
}

/// `lade diff`: `A` added, `C` changed, `D` deleted, by path, as Docker prints them.
pub fn diff(store: &Store, reference: &str) -> Result<Vec<(char, String)>> {
    let container = open(store, reference)?;
    let mut changes = BTreeMap::new();
    for entry in walkdir::WalkDir::new(&container.upper).min_depth(1) {
        let entry = entry.map_err(|e| ContainerError::Io {
            path: container.upper.clone(),
            source: e.into(),
        })?;
        let relative = entry
            .path()
            .strip_prefix(&container.upper)
            .unwrap_or(entry.path())
            .to_path_buf();
        if container.is_mount_point(&relative) {
            continue;
        }
        let meta = entry.metadata().map_err(|e| ContainerError::Io {
            path: entry.path().to_path_buf(),
            source: e.into(),
        })?;
        let kind = if meta.file_type().is_char_device() && meta.rdev() == 0 {
            'D'
        } else if in_image(&container.lowers, &relative) {
            'C'
        } else {
            'A'
        };
        changes.insert(format!("/{}", relative.display()), kind);
    }
    Ok(changes
        .into_iter()
        .map(|(path, kind)| (kind, path))
        .collect())
}

/// `lade export`: the container's root file system (image and changes) as a tar.
/// Needs a mount namespace of lade's own (the view is mounted in it).
pub fn export(store: &Store, reference: &str, out: &mut dyn Write) -> Result<()> {
    let container = open(store, reference)?;
    let dir = store.staging_dir("export")?;
    // The upper directory on top of the image's layers: overlay reads its whiteouts.
    let mut names: Vec<String> = vec![container.upper.to_string_lossy().into_owned()];
    names.extend(container.spec.rootfs.lowers.iter().cloned());
    let _mounted =
        exec::mounts::mount_readonly_view(&container.spec.rootfs.layers_dir, &names, dir.path())
            .map_err(|source| ContainerError::Io {
                path: dir.path().to_path_buf(),
                source,
            })?;
    layers::write_tree_tar(dir.path(), out)?;
    Ok(())
}

/// What `lade commit` makes.
pub struct CommitOptions {
    /// The new image's config (the container image's, with `--change`s applied).
    pub config: ContainerConfig,
    pub message: Option<String>,
    pub author: Option<String>,
    pub tag: Option<ImageRef>,
    pub source_date_epoch: Option<i64>,
}

/// `lade commit`: the container's changes become a layer on its image.
pub fn commit(store: &Store, reference: &str, options: &CommitOptions) -> Result<Image> {
    let container = open(store, reference)?;
    let base = store.image(&container.record.image.to_string())?;
    let _guard = store.content_guard()?;
    let staging = store.staging_dir("commit")?;
    let mut writer = LayerWriter::new(
        store,
        Compression::Zstd,
        options.source_date_epoch,
        Some(SnapshotTarget {
            dir: staging.path(),
            reuse: None,
        }),
    )?;
    for walked in layers::dir_entries(&container.upper, true)? {
        use std::os::unix::ffi::OsStrExt;
        let relative = Path::new(std::ffi::OsStr::from_bytes(&walked.entry.path)).to_path_buf();
        if container.is_mount_point(&relative) {
            continue;
        }
        writer.add_walked(&walked)?;
    }
    let layer = writer.finish_with_snapshot(store)?;
    staging.keep();
    let created = match options
        .source_date_epoch
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
    {
        Some(t) => t.to_string(),
        None => jiff::Timestamp::now().to_string(),
    };
    let mut history = base.config.history.clone();
    history.push(History {
        created: Some(created.clone()),
        created_by: Some(container.spec.process.args.join(" ")),
        author: options.author.clone(),
        comment: options.message.clone(),
        empty_layer: None,
    });
    let mut layers_all = base.layers.clone();
    layers_all.push(layer);
    let config = ImageConfig {
        created: Some(created),
        author: options.author.clone().or(base.config.author.clone()),
        config: options.config.clone(),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: layers_all.iter().map(|l| l.diff_id).collect(),
        },
        history,
        ..base.config.clone()
    };
    let tags: Vec<ImageRef> = options.tag.iter().cloned().collect();
    Ok(store.commit_image(
        &NewImage {
            config,
            config_bytes: None,
            layers: layers_all,
        },
        &tags,
    )?)
}
