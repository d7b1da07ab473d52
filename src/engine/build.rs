//! `build`: a Dockerfile made into an image with its caches (local directories and
//! registries, imported before and exported after), its outputs (`build_output`), the
//! iidfile, the metadata file and `--push`; its
//! `--explain` (what the cache has for every step, registry caches included) and its
//! `--dry-run` (the plan, reading no image).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::build_output::{self, BuildExport};
use super::{push, EngineError, PushRequest, Result};
use crate::builder::{self, shared_cache, BuildOptions, ExplainedStep, Reporter};
use crate::graph::{self, BaseImage, ExpandedStage, Plan, PlanOptions};
use crate::oci::{Digest, ImageRef};
use crate::registry::{self, ClientOptions, PushOptions, RegistryError};
use crate::store::{Image, Staging, Store};

/// Where a build cache comes from (`--cache-from`) or goes (`--cache-to`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheSource {
    /// A directory holding an OCI layout.
    Local(PathBuf),
    /// A registry's image of lade's cache manifest.
    Registry(ImageRef),
}

/// What `lade build` is asked for. `options` leaves its cache directories empty: they
/// come from `cache_from` and `cache_to`, registries' through the store's staging area.
/// Its tags and image settings' `keep` are what `exports` make them.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    pub options: BuildOptions,
    pub cache_from: Vec<CacheSource>,
    pub cache_to: Option<CacheSource>,
    /// `--iidfile`: where the image id is written (empty when the build makes files
    /// only, as buildx leaves it).
    pub iidfile: Option<PathBuf>,
    /// `--metadata-file`: where buildx's JSON of the result is written.
    pub metadata_file: Option<PathBuf>,
    /// `--output` (and `--push`): none is the image in the store under the options'
    /// tags, Docker's default.
    pub exports: Vec<BuildExport>,
}

/// What a build kept in the store.
#[derive(Debug, Clone)]
pub struct Built {
    /// The image; of a build for several platforms, this machine's (else the first).
    pub image: Image,
    /// A build for several platforms: the index its tags name, and its size.
    pub index: Option<(Digest, u64)>,
}

impl Built {
    /// What `--iidfile` and `-q` give, as buildx has them: the image's config digest,
    /// or for several platforms (no one config) the index's digest.
    pub fn id(&self) -> String {
        match &self.index {
            Some((digest, _)) => digest.to_string(),
            None => self.image.id.to_string(),
        }
    }
}

/// What a build tells beyond its steps' events, in the order it happens.
#[derive(Debug)]
pub enum BuildNotice<'a> {
    /// A registry's cache could not be imported: the build goes on without it.
    NoCacheFrom {
        reference: &'a ImageRef,
        error: &'a RegistryError,
    },
    /// `--cache-to` wrote `count` records: to a directory, or pushed to a registry as
    /// the manifest `digest`.
    Exported {
        count: usize,
        to: &'a CacheSource,
        digest: Option<Digest>,
    },
    /// The image is made (and tagged).
    Built(&'a Image),
    /// A line of a push's progress.
    Pushing(&'a str),
    /// `--push`: a tag is pushed, as the manifest `digest`.
    Pushed { tag: &'a ImageRef, digest: Digest },
}

/// A build's reporter: its steps' events, and its notices.
pub trait BuildReporter: Reporter {
    fn notice(&self, notice: BuildNotice<'_>);
}

/// `lade build`: the image made, or `None` when the build's outputs are files only
/// (`--output type=local|tar`), which make no image.
pub fn build(
    store: &Store,
    request: &BuildRequest,
    reporter: &dyn BuildReporter,
) -> Result<Option<Built>> {
    let mut options = request.options.clone();
    let exports = match request.exports.as_slice() {
        [] => vec![BuildExport::Image {
            names: options.tags.clone(),
            push: false,
        }],
        given => given.to_vec(),
    };
    // The store keeps the image only when an output asks for it, under that output's
    // names: `-t` with `--output type=local` loads nothing, as with buildx.
    let mut kept_names: Vec<ImageRef> = Vec::new();
    for export in &exports {
        if let BuildExport::Image { names, .. } = export {
            for name in names {
                if !kept_names.contains(name) {
                    kept_names.push(name.clone());
                }
            }
        }
    }
    options.image.keep = exports
        .iter()
        .any(|e| matches!(e, BuildExport::Image { .. }));
    options.tags = kept_names;
    // Held until the outputs are written: an image the store does not keep has blobs
    // nothing names, which garbage collection must leave alone meanwhile.
    let _guard = store.content_guard()?;
    let mut staged = import_caches(store, &request.cache_from, &mut options, &|notice| {
        reporter.notice(notice)
    })?;
    match &request.cache_to {
        Some(CacheSource::Local(dir)) => options.cache_to = Some(dir.clone()),
        Some(CacheSource::Registry(_)) => {
            let dir = store.staging_dir("cache-to")?;
            options.cache_to = Some(dir.path().to_path_buf());
            staged.push(dir);
        }
        None => {}
    }
    let output = builder::build(store, &options, reporter)?;
    if let (Some(count), Some(dir), Some(to)) = (
        output.exported_records,
        &options.cache_to,
        &request.cache_to,
    ) {
        let digest = match to {
            CacheSource::Registry(reference) => Some(export_cache(dir, reference, &options)?),
            CacheSource::Local(_) => None,
        };
        reporter.notice(BuildNotice::Exported { count, to, digest });
    }
    drop(staged);
    let image = output.image;
    reporter.notice(BuildNotice::Built(&image));
    let mut stdout = std::io::stdout().lock();
    for export in &exports {
        build_output::write(store, &image, &output.platform_images, export, &mut stdout)?;
    }
    drop(stdout);
    for export in &exports {
        if let BuildExport::Image { names, push: true } = export {
            push_names(store, names, &options, reporter)?;
        }
    }
    let made = exports.iter().any(BuildExport::is_image).then_some(Built {
        image,
        index: output.index,
    });
    if let Some(iidfile) = &request.iidfile {
        let id = made.as_ref().map(Built::id).unwrap_or_default();
        std::fs::write(iidfile, id).map_err(|source| EngineError::File {
            what: format!("write {}", iidfile.display()),
            source,
        })?;
    }
    if let Some(path) = &request.metadata_file {
        let names: Vec<ImageRef> = exports
            .iter()
            .flat_map(|e| match e {
                BuildExport::Image { names, .. }
                | BuildExport::Oci { names, .. }
                | BuildExport::Docker { names, .. } => names.clone(),
                BuildExport::Local(_) | BuildExport::Tar(_) => Vec::new(),
            })
            .fold(Vec::new(), |mut all, name| {
                if !all.contains(&name) {
                    all.push(name);
                }
                all
            });
        build_output::write_json(path, &build_output::metadata(made.as_ref(), &names))?;
    }
    Ok(made)
}

/// Adds the caches of `sources` to `options`: directories first, in order, then the
/// registries' that could be pulled into staging directories (returned: they must
/// live as long as the build reads them).
fn import_caches(
    store: &Store,
    sources: &[CacheSource],
    options: &mut BuildOptions,
    notice: &dyn Fn(BuildNotice<'_>),
) -> Result<Vec<Staging>> {
    options
        .cache_from
        .extend(sources.iter().filter_map(|source| match source {
            CacheSource::Local(dir) => Some(dir.clone()),
            CacheSource::Registry(_) => None,
        }));
    let mut staged = Vec::new();
    for source in sources {
        let CacheSource::Registry(reference) = source else {
            continue;
        };
        let dir = store.staging_dir("cache-from")?;
        match registry::pull_layout(
            reference,
            dir.path(),
            shared_cache::CACHE_REF_NAME,
            &client_options(options),
        ) {
            Ok(()) => {
                options.cache_from.push(dir.path().to_path_buf());
                staged.push(dir);
            }
            Err(error) => notice(BuildNotice::NoCacheFrom {
                reference,
                error: &error,
            }),
        }
    }
    Ok(staged)
}

/// How the build reaches registries: with the credentials of its `--config`.
fn client_options(options: &BuildOptions) -> ClientOptions {
    ClientOptions {
        docker_config: options.docker_config.clone(),
        ..ClientOptions::default()
    }
}

fn export_cache(dir: &Path, reference: &ImageRef, options: &BuildOptions) -> Result<Digest> {
    registry::push_layout(
        dir,
        shared_cache::CACHE_REF_NAME,
        reference,
        &client_options(options),
    )
    .map_err(|source| EngineError::Remote {
        what: format!("push the build cache to {}", reference.familiar()),
        source: Box::new(source),
    })
}

/// Pushes the built image under each of `names` to its registry.
fn push_names(
    store: &Store,
    names: &[ImageRef],
    options: &BuildOptions,
    reporter: &dyn BuildReporter,
) -> Result<()> {
    if names.is_empty() {
        return Err(EngineError::PushWithoutTag);
    }
    for tag in names {
        let request = PushRequest {
            image: tag.normalized(),
            destination: tag.clone(),
            options: PushOptions {
                client: client_options(options),
                ..PushOptions::default()
            },
        };
        let digest = push(store, &request, &|line| {
            reporter.notice(BuildNotice::Pushing(line))
        })?;
        reporter.notice(BuildNotice::Pushed { tag, digest });
    }
    Ok(())
}

/// `lade build --explain`: for every step, whether the cache (the store's, and the
/// imported ones, registries' too) has it, and if not why. Builds nothing.
pub fn explain(
    store: &Store,
    request: &BuildRequest,
    notice: &dyn Fn(BuildNotice<'_>),
) -> Result<Vec<ExplainedStep>> {
    let mut options = request.options.clone();
    let _staged = import_caches(store, &request.cache_from, &mut options, notice)?;
    Ok(builder::explain(store, &options)?)
}

/// What `build -` found on standard input (Docker's `GetContextFromReader`).
pub enum StdinInput {
    /// A Dockerfile: the build's context is an empty directory, where COPY and ADD
    /// find nothing.
    Dockerfile {
        dockerfile: Vec<u8>,
        context: StagedContext,
    },
    /// An archive (tar, or tar compressed with gzip, bzip2, xz or zstd), unpacked: the
    /// context, with the Dockerfile in it.
    Context(StagedContext),
}

/// A context unpacked under the store's staging area, removed when dropped with the
/// stat cache a build kept of it (no later build sees that directory again).
pub struct StagedContext {
    staging: Staging,
    stat_cache: Option<PathBuf>,
}

impl StagedContext {
    fn new(store: &Store, staging: Staging) -> StagedContext {
        let stat_cache = std::fs::canonicalize(staging.path())
            .ok()
            .map(|root| store.stat_cache_path(&root.to_string_lossy()));
        StagedContext {
            staging,
            stat_cache,
        }
    }

    pub fn path(&self) -> &Path {
        self.staging.path()
    }
}

impl Drop for StagedContext {
    fn drop(&mut self) {
        if let Some(path) = &self.stat_cache {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// An archive's first block: what tells it from a Dockerfile.
const TAR_BLOCK: usize = 512;

/// `lade build -`: standard input as a Dockerfile or, when it is an archive, as the
/// context.
pub fn stdin_context(store: &Store, input: &mut dyn Read) -> Result<StdinInput> {
    let read_error = |source| EngineError::File {
        what: "read standard input".into(),
        source,
    };
    let mut head = Vec::with_capacity(TAR_BLOCK);
    (&mut *input)
        .take(TAR_BLOCK as u64)
        .read_to_end(&mut head)
        .map_err(read_error)?;
    let staging = store.staging_dir("stdin-context")?;
    if !is_archive(&head) {
        input.read_to_end(&mut head).map_err(read_error)?;
        return Ok(StdinInput::Dockerfile {
            dockerfile: head,
            context: StagedContext::new(store, staging),
        });
    }
    let mut tar = crate::layers::decompressing_reader(std::io::Cursor::new(head).chain(input))
        .map_err(read_error)?;
    crate::layers::extract(
        &mut tar,
        staging.path(),
        &crate::layers::ExtractLimits::for_store(store),
    )
    .map_err(EngineError::StdinContext)?;
    Ok(StdinInput::Context(StagedContext::new(store, staging)))
}

/// Compressed data (gzip, bzip2, xz, zstd), or a tar header.
fn is_archive(head: &[u8]) -> bool {
    crate::layers::compression_of(head).is_some() || crate::layers::is_tar_header(head)
}

/// The plan of a `--dry-run`, and each needed stage's steps after expansion.
#[derive(Debug, Clone)]
pub struct DryRun {
    pub plan: Plan,
    pub expanded: BTreeMap<usize, ExpandedStage>,
}

/// `lade build --dry-run`: the Dockerfile `name` (its bytes) planned. It reads no
/// image: stages built on an image start from an empty config.
pub fn dry_run(name: &str, dockerfile: Vec<u8>, options: &PlanOptions) -> Result<DryRun> {
    let plan = graph::plan_text(name, dockerfile, options)?;
    let expanded = graph::expand_all(&plan, |_, _| BaseImage::default())?;
    Ok(DryRun { plan, expanded })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dry_run_reads_no_image() {
        let run = dry_run(
            "Dockerfile",
            b"FROM busybox AS one\nENV A=1\nFROM one\nRUN true\n".to_vec(),
            &PlanOptions::default(),
        )
        .unwrap();
        assert_eq!(run.plan.stages.len(), 2);
        assert_eq!(run.expanded.len(), 2);
    }

    #[test]
    fn a_tar_is_told_from_a_dockerfile() {
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        header.set_path("Dockerfile").unwrap();
        header.set_size(12);
        header.set_cksum();
        tar.append(&header, &b"FROM scratch"[..]).unwrap();
        let tar = tar.into_inner().unwrap();
        assert!(is_archive(&tar[..TAR_BLOCK]));
        assert!(is_archive(&[0x1f, 0x8b, 8, 0]));
        let dockerfile = format!("FROM busybox\n{}", "# padding\n".repeat(100));
        assert!(!is_archive(&dockerfile.as_bytes()[..TAR_BLOCK]));
        assert!(!is_archive(b"FROM busybox\n"));
    }

    #[test]
    fn a_bad_dockerfile_is_an_error() {
        assert!(dry_run("Dockerfile", b"FROM\n".to_vec(), &PlanOptions::default()).is_err());
    }
}
