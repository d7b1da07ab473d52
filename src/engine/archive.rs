//! Archives in and out of the store: `import` (a root filesystem tarball becomes a
//! one-layer image), `save` (images to a docker-archive or OCI archive, never left
//! half-written) and `load` (the images of either archive, compressed or not).
//!
//! Each verb comes in two steps, so that what a progress bar needs (the bytes to come)
//! is known before the work starts: the input opened or the images found, then the
//! work itself.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::{EngineError, Result};
use crate::archive::{self, ImportOptions, Loaded, Progress, SaveFormat, SaveItem};
use crate::oci::ImageRef;
use crate::store::{Image, Staging, Store};

/// Where `import` reads its tarball.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportSource {
    Stdin,
    File(PathBuf),
}

/// The tarball of an `import`, opened.
pub struct ImportInput {
    source: ImportSource,
    file: Option<File>,
}

impl ImportInput {
    /// Opens `source`.
    pub fn open(source: ImportSource) -> Result<ImportInput> {
        let file = match &source {
            ImportSource::Stdin => None,
            ImportSource::File(path) => {
                Some(File::open(path).map_err(|source| EngineError::File {
                    what: format!("open {}", path.display()),
                    source,
                })?)
            }
        };
        Ok(ImportInput { source, file })
    }

    /// Its size, when it is a file.
    pub fn size(&self) -> Option<u64> {
        self.file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map(|m| m.len())
    }
}

/// What `lade import` makes of its tarball.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    /// The config (`--change`, through [`super::config_with_changes`]), the history
    /// comment, the layer's compression and the names.
    pub options: ImportOptions,
}

/// `lade import`: the new image.
pub fn import(
    store: &Store,
    request: &ImportRequest,
    input: ImportInput,
    progress: &dyn Progress,
) -> Result<Image> {
    let (what, mut reader): (String, Box<dyn Read>) = match (input.source, input.file) {
        (ImportSource::File(path), Some(file)) => {
            (format!("import {}", path.display()), Box::new(file))
        }
        _ => (
            "import standard input".to_string(),
            Box::new(std::io::stdin().lock()),
        ),
    };
    archive::import_rootfs(store, &mut reader, &request.options, progress).map_err(|source| {
        EngineError::ArchiveOf {
            what,
            source: Box::new(source),
        }
    })
}

/// The images a `save` writes, found in the store, each once with every name it was
/// asked by.
pub struct SaveSet {
    items: Vec<SaveItem>,
    format: SaveFormat,
}

impl SaveSet {
    /// One image, saved under `names` (a build's `--output type=oci|docker`).
    pub(super) fn of(image: Image, names: Vec<ImageRef>, format: SaveFormat) -> SaveSet {
        SaveSet {
            items: vec![SaveItem { image, names }],
            format,
        }
    }

    /// The bytes the archive's layers take, as it writes them.
    pub fn size(&self) -> u64 {
        self.items
            .iter()
            .flat_map(|i| i.image.layers.iter())
            .map(|l| {
                if self.format == SaveFormat::Docker {
                    l.tar_size
                } else {
                    l.size
                }
            })
            .sum()
    }
}

/// What `lade save` is asked for.
#[derive(Debug, Clone)]
pub struct SaveRequest {
    /// Names or ids.
    pub images: Vec<String>,
    pub format: SaveFormat,
    /// `--platform`: of a multi-platform image, only its image for this platform.
    pub platform: Option<crate::oci::Platform>,
}

/// The images `request` names: saved by name, under that name; by id, under no name,
/// as Docker does. With a platform, each name's image for it.
pub fn save_set(store: &Store, request: &SaveRequest) -> Result<SaveSet> {
    let mut items: Vec<SaveItem> = Vec::new();
    for reference in &request.images {
        let image = match &request.platform {
            Some(platform) => store.image_for_platform(reference, platform)?,
            None => store.image(reference)?,
        };
        let name = reference
            .parse::<ImageRef>()
            .ok()
            .filter(|r| image.tags.contains(&r.familiar()));
        match items
            .iter_mut()
            .find(|i| i.image.manifest_digest == image.manifest_digest)
        {
            Some(item) => item.names.extend(name),
            None => items.push(SaveItem {
                image,
                names: name.into_iter().collect(),
            }),
        }
    }
    Ok(SaveSet {
        items,
        format: request.format,
    })
}

/// Where `save` writes.
pub enum SaveDestination<'a> {
    /// A file, written beside its place and renamed there once whole.
    File(PathBuf),
    /// A stream (standard output), flushed at the end.
    Stream(&'a mut dyn Write),
}

/// `lade save`.
pub fn save(
    store: &Store,
    set: &SaveSet,
    destination: SaveDestination<'_>,
    progress: &dyn Progress,
) -> Result<()> {
    match destination {
        SaveDestination::File(path) => save_to_file(store, set, &path, progress),
        SaveDestination::Stream(out) => {
            let mut out = BufWriter::with_capacity(1 << 20, out);
            archive::save(store, &set.items, set.format, &mut out, progress)?;
            out.flush().map_err(EngineError::Io)
        }
    }
}

fn save_to_file(store: &Store, set: &SaveSet, path: &Path, progress: &dyn Progress) -> Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.lade-tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    let result = (|| -> Result<()> {
        let file = File::create(&tmp).map_err(|source| EngineError::File {
            what: format!("create {}", tmp.display()),
            source,
        })?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        archive::save(store, &set.items, set.format, &mut out, progress)?;
        let file = out
            .into_inner()
            .map_err(|e| EngineError::Io(e.into_error()))?;
        file.sync_all().map_err(EngineError::Io)?;
        std::fs::rename(&tmp, path).map_err(|source| EngineError::File {
            what: format!("write {}", path.display()),
            source,
        })
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The archive of a `load`, opened: a plain tar file in place, anything else
/// decompressed into the store's staging area (removed when this is dropped).
pub struct LoadInput {
    file: File,
    source: String,
    _staging: Option<Staging>,
}

impl LoadInput {
    /// Opens the archive at `path`, else standard input.
    pub fn open(store: &Store, path: Option<&Path>) -> Result<LoadInput> {
        let (file, staging) = archive::open_input(store, path)?;
        Ok(LoadInput {
            file,
            source: path.map_or_else(|| "standard input".to_string(), |p| p.display().to_string()),
            _staging: staging,
        })
    }

    /// The bytes to read.
    pub fn size(&self) -> Option<u64> {
        self.file.metadata().ok().map(|m| m.len())
    }
}

/// `lade load`: the images added, with their names.
pub fn load(store: &Store, input: &LoadInput, progress: &dyn Progress) -> Result<Vec<Loaded>> {
    archive::load(store, &input.file, progress).map_err(|source| EngineError::ArchiveOf {
        what: format!("load {}", input.source),
        source: Box::new(source),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tarball_is_named() {
        let Err(err) = ImportInput::open(ImportSource::File("/nonexistent/x.tar".into())) else {
            panic!("opened a missing file");
        };
        assert_eq!(
            err.to_string(),
            "cannot open /nonexistent/x.tar: No such file or directory (os error 2)"
        );
        assert_eq!(
            ImportInput::open(ImportSource::Stdin)
                .map(|i| i.size())
                .ok(),
            Some(None)
        );
    }
}
