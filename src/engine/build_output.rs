//! A build's outputs (`lade build --output`), as BuildKit's exporters make them: the
//! final stage's files to a directory (`local`) or a tar (`tar`), the image as an OCI
//! layout or a docker-archive (`oci`, `docker`, through `save`'s code), or the image
//! into the store under its names and pushed (`image`). And `--metadata-file`, the
//! JSON buildx writes of what was made.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::archive::{save, SaveDestination, SaveSet};
use super::build::Built;
use super::{EngineError, Result};
use crate::archive::{NoProgress, SaveFormat};
use crate::exec::mounts::mount_readonly_view;
use crate::layers::{self, ExtractLimits, InRoot, LayerError, Owners};
use crate::oci::{media, ImageRef, Platform};
use crate::store::{Image, Store};

/// Where an output that is one file goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportTo {
    File(PathBuf),
    /// Standard output (`dest=-`).
    Stdout,
}

/// One `--output` of a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildExport {
    /// `type=image` (and `registry`, `docker` with no `dest`, the default): the image
    /// in the store under `names`, each pushed to its registry when `push`.
    Image { names: Vec<ImageRef>, push: bool },
    /// `type=local,dest=DIR`: the final stage's files, merged from its layers, written
    /// into `DIR` (made if missing; what it holds already stays unless overwritten),
    /// owned by whoever runs lade, as BuildKit's client writes them.
    Local(PathBuf),
    /// `type=tar`: the same files as one tar, with the owners the image gives them.
    Tar(ExportTo),
    /// `type=oci`: the image as an OCI layout in a tar (`save --format oci`).
    Oci { to: ExportTo, names: Vec<ImageRef> },
    /// `type=docker,dest=`: the image as `docker save` writes it.
    Docker { to: ExportTo, names: Vec<ImageRef> },
}

impl BuildExport {
    /// Whether the output is an image (not files): what `--iidfile` and `-q` name.
    pub fn is_image(&self) -> bool {
        !matches!(self, BuildExport::Local(_) | BuildExport::Tar(_))
    }

    /// Whether the output goes to standard output.
    pub fn to_stdout(&self) -> bool {
        matches!(
            self,
            BuildExport::Tar(ExportTo::Stdout)
                | BuildExport::Oci {
                    to: ExportTo::Stdout,
                    ..
                }
                | BuildExport::Docker {
                    to: ExportTo::Stdout,
                    ..
                }
        )
    }
}

fn output_error(what: String) -> impl FnOnce(LayerError) -> EngineError {
    move |source| EngineError::BuildOutput {
        what,
        source: Box::new(source),
    }
}

/// Writes the files and archives of `export` (an `Image` output is the store's and the
/// push's, done by the build itself). `stdout` is where `dest=-` writes. A build for
/// several platforms gives each platform's image in `platforms`: files then go into one
/// directory per platform (`linux_arm64/`), as BuildKit splits them, and an OCI layout
/// holds the index of them.
pub(super) fn write(
    store: &Store,
    image: &Image,
    platforms: &[(Platform, Image)],
    export: &BuildExport,
    stdout: &mut dyn Write,
) -> Result<()> {
    if !platforms.is_empty() {
        return write_split(store, platforms, export, stdout);
    }
    match export {
        BuildExport::Image { .. } => Ok(()),
        BuildExport::Local(dir) => with_root(store, image, |root| write_dir(root, dir)),
        BuildExport::Tar(to) => with_root(store, image, |root| {
            to_file_or_stream(to, stdout, &mut |out| {
                layers::write_tree_tar(root, out).map_err(output_error(shown(to)))
            })
        }),
        BuildExport::Oci { to, names } => {
            write_archive(store, image, names, SaveFormat::Oci, to, stdout)
        }
        BuildExport::Docker { to, names } => {
            write_archive(store, image, names, SaveFormat::Docker, to, stdout)
        }
    }
    .and_then(|()| {
        if export.to_stdout() {
            stdout.flush().map_err(EngineError::Io)
        } else {
            Ok(())
        }
    })
}

/// `write` for a build of several platforms. The checks of the command line refuse a
/// docker-archive of several platforms, as BuildKit's docker exporter does.
fn write_split(
    store: &Store,
    platforms: &[(Platform, Image)],
    export: &BuildExport,
    stdout: &mut dyn Write,
) -> Result<()> {
    match export {
        BuildExport::Image { .. } => Ok(()),
        BuildExport::Local(dir) => {
            with_platform_roots(store, platforms, |root| write_dir(root, dir))
        }
        BuildExport::Tar(to) => with_platform_roots(store, platforms, |root| {
            to_file_or_stream(to, stdout, &mut |out| {
                layers::write_tree_tar(root, out).map_err(output_error(shown(to)))
            })
        }),
        BuildExport::Oci { to, names } => to_file_or_stream(to, stdout, &mut |out| {
            Ok(crate::archive::save_index(
                store,
                platforms,
                names,
                out,
                &NoProgress,
            )?)
        }),
        BuildExport::Docker { .. } => Err(EngineError::DockerArchiveOfIndex),
    }
    .and_then(|()| {
        if export.to_stdout() {
            stdout.flush().map_err(EngineError::Io)
        } else {
            Ok(())
        }
    })
}

/// The directory a platform's files go to in a split output: BuildKit's name, the
/// platform with `_` for `/` (`linux_arm_v7`).
pub fn platform_dir(platform: &Platform) -> String {
    platform.to_string().replace('/', "_")
}

fn shown(to: &ExportTo) -> String {
    match to {
        ExportTo::File(path) => path.display().to_string(),
        ExportTo::Stdout => "standard output".into(),
    }
}

fn write_archive(
    store: &Store,
    image: &Image,
    names: &[ImageRef],
    format: SaveFormat,
    to: &ExportTo,
    stdout: &mut dyn Write,
) -> Result<()> {
    let set = SaveSet::of(image.clone(), names.to_vec(), format);
    let destination = match to {
        ExportTo::File(path) => SaveDestination::File(path.clone()),
        ExportTo::Stdout => SaveDestination::Stream(stdout),
    };
    save(store, &set, destination, &NoProgress)
}

/// Runs `f` on the image's root file system: its layers' snapshots mounted read-only
/// as one tree (whiteouts applied by overlay), in lade's private mount namespace.
fn with_root(store: &Store, image: &Image, f: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let lowers = layers::overlay_lowers(store, &image.layers)
        .map_err(output_error("the image's files".into()))?;
    let dir = store.staging_dir("output")?;
    let mounted =
        mount_readonly_view(&store.snapshots_dir(), &lowers, dir.path()).map_err(|source| {
            EngineError::File {
                what: format!("mount the image's files at {}", dir.path().display()),
                source,
            }
        })?;
    let result = f(dir.path());
    drop(mounted);
    result
}

/// Runs `f` on one tree holding each platform's image's root file system (mounted
/// read-only, as `with_root` mounts one) under the platform's directory.
fn with_platform_roots(
    store: &Store,
    platforms: &[(Platform, Image)],
    f: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    let dir = store.staging_dir("output")?;
    let mut mounted = Vec::new();
    for (platform, image) in platforms {
        let lowers = layers::overlay_lowers(store, &image.layers)
            .map_err(output_error(format!("the files of the {platform} image")))?;
        let at = dir.path().join(platform_dir(platform));
        let mount_error = |source| EngineError::File {
            what: format!("mount the image's files at {}", at.display()),
            source,
        };
        std::fs::create_dir(&at).map_err(mount_error)?;
        mounted
            .push(mount_readonly_view(&store.snapshots_dir(), &lowers, &at).map_err(mount_error)?);
    }
    let result = f(dir.path());
    // Unmounted (in reverse) before the staging directory goes.
    while let Some(view) = mounted.pop() {
        drop(view);
    }
    result
}

/// A file written beside its place and renamed there once whole, or the stream.
fn to_file_or_stream(
    to: &ExportTo,
    stdout: &mut dyn Write,
    write: &mut dyn FnMut(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    let path = match to {
        ExportTo::Stdout => return write(stdout),
        ExportTo::File(path) => path,
    };
    let failed = |source| EngineError::Output {
        path: path.clone(),
        source,
    };
    // A fresh name made exclusively (no link followed, no file of someone else's
    // reused), renamed over `path` once complete; removed when dropped unfinished.
    let parent = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let result = (|| -> Result<()> {
        // Made 0600, and 0644 once complete, as an archive is written for others to read.
        let tmp = tempfile::Builder::new()
            .prefix(".lade-output-")
            .tempfile_in(parent)
            .map_err(failed)?;
        let mut out = BufWriter::with_capacity(1 << 20, tmp);
        write(&mut out)?;
        let tmp = out.into_inner().map_err(|e| failed(e.into_error()))?;
        tmp.as_file().sync_all().map_err(failed)?;
        tmp.as_file()
            .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .map_err(failed)?;
        tmp.persist(path).map_err(|e| failed(e.error))?;
        Ok(())
    })();
    result
}

/// The tree at `root` written into `dir` through the one extractor, every path resolved
/// inside `dir`: a symlink the directory holds already never leads a file out of it.
fn write_dir(root: &Path, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| EngineError::Output {
        path: dir.to_path_buf(),
        source,
    })?;
    let target = File::open(dir).map_err(|source| EngineError::Output {
        path: dir.to_path_buf(),
        source,
    })?;
    let label = format!("{}/", dir.display().to_string().trim_end_matches('/'));
    let destination = InRoot {
        root: target.as_fd(),
        into: Path::new("/"),
        label: &label,
        owners: Owners::CallerUnprivileged,
    };
    let (mut reader, mut writer) = std::io::pipe().map_err(EngineError::Io)?;
    std::thread::scope(|scope| {
        let writing = scope.spawn(move || {
            let written = layers::write_tree_tar(root, &mut writer);
            drop(writer);
            written
        });
        let extracted =
            layers::extract_in_root(&mut reader, &destination, &ExtractLimits::default());
        // The reader goes first: a writer blocked on a full pipe then fails instead
        // of waiting for ever.
        drop(reader);
        let written = writing.join().unwrap_or_else(|_| {
            Err(LayerError::Io {
                path: root.to_path_buf(),
                source: std::io::Error::other("the tar writer panicked"),
            })
        });
        extracted.map_err(output_error(dir.display().to_string()))?;
        written.map_err(output_error(dir.display().to_string()))?;
        Ok(())
    })
}

/// `--metadata-file`: what buildx writes of the build's result. An image output gives
/// its manifest's digest and descriptor, its config's digest and the names it got; a
/// build for several platforms gives its index's digest and descriptor and no config
/// digest (there is one per platform), as BuildKit's image exporter does; a build of
/// files only gives nothing of an image.
pub(super) fn metadata(built: Option<&Built>, names: &[ImageRef]) -> Value {
    let mut out = Map::new();
    if let Some(built) = built {
        let image = &built.image;
        let descriptor = match &built.index {
            Some((digest, size)) => json!({
                "mediaType": media::OCI_INDEX,
                "digest": digest.to_string(),
                "size": size,
            }),
            None => {
                let mut annotations = Map::new();
                annotations.insert("config.digest".into(), json!(image.id.to_string()));
                if let Some(created) = &image.config.created {
                    annotations.insert("org.opencontainers.image.created".into(), json!(created));
                }
                out.insert(
                    "containerimage.config.digest".into(),
                    json!(image.id.to_string()),
                );
                json!({
                    "mediaType": media::OCI_MANIFEST,
                    "digest": image.manifest_digest.to_string(),
                    "size": image.manifest_size,
                    "annotations": annotations,
                })
            }
        };
        out.insert("containerimage.digest".into(), descriptor["digest"].clone());
        out.insert("containerimage.descriptor".into(), descriptor);
        if !names.is_empty() {
            let names: Vec<String> = names.iter().map(ImageRef::normalized).collect();
            out.insert("image.name".into(), json!(names.join(",")));
        }
    }
    Value::Object(out)
}

/// Writes `value` as indented JSON to `path`, whole or not at all.
pub(super) fn write_json(path: &Path, value: &Value) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).unwrap_or_default();
    bytes.push(b'\n');
    to_file_or_stream(
        &ExportTo::File(path.to_path_buf()),
        &mut std::io::sink(),
        &mut |out| out.write_all(&bytes).map_err(EngineError::Io),
    )
}
