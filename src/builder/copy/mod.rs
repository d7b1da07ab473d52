//! COPY and ADD, in four parts: which sources a step selects and where each goes, with
//! Docker's rules (`sources`); fetching ADD's URLs (`fetch`); the walk that gives a
//! step's files their cache key without writing anything (`key`); and the layer the
//! step makes, written in one pass that also fills the layer's snapshot (`layer`).
//!
//! Rules: a directory source copies its contents; a file goes to `dest` itself unless
//! `dest` ends in `/`, names an existing directory, or there are several sources; the
//! destination's parents are resolved inside the image (so `/bin/x` lands in `/usr/bin`
//! when `/bin` is a symlink) and keep the image's ownership and mode; files from the
//! context become root's unless `--chown`, files `--from` a stage or image keep theirs.
//! ADD also fetches URLs and unpacks local tar archives (any compression).

mod fetch;
mod key;
mod layer;
mod sources;

use std::path::{Path, PathBuf};

pub(crate) use key::{key_inputs, FileInputs};
pub(crate) use layer::{plan, plan_directory, write_layer};

use super::context::{BuildContext, ContextError, IgnoreMatcher};
use super::hash::{ContextHasher, UnreadableFile};
use crate::exec::users::{self, UserError};
use crate::graph::CopyStep;
use crate::layers::{self, LayerError};

/// Where COPY reads its sources.
pub(crate) enum Source<'a> {
    Context(&'a BuildContext),
    /// A stage's or image's root filesystem view.
    Root(&'a Path),
}

pub(crate) struct CopyRequest<'a> {
    pub step: &'a CopyStep,
    pub source: Source<'a>,
    /// The stage's filesystem before this step, or `None` if it is still empty (and
    /// when only a key is wanted: a key asks nothing of the destination).
    pub dest_root: Option<&'a Path>,
    pub source_date_epoch: Option<i64>,
    /// The time given to directories the step creates.
    pub now: i64,
    /// Room for downloads and unpacked archives.
    pub scratch: &'a Path,
    /// Bounds on unpacking an ADDed archive (the store's reserve of free space).
    pub extract_limits: &'a layers::ExtractLimits,
    /// The context's stat and listing cache, to walk its directories with.
    pub hasher: Option<&'a ContextHasher>,
}

/// Why a COPY or ADD cannot be done. Each message is whole: it names the source, the
/// path or the URL, and includes its cause.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("{pattern}: file not found in the build context or excluded by .dockerignore")]
    NotInContext { pattern: String },
    #[error("{pattern}: not found in the source's filesystem")]
    NotInSource { pattern: String },
    #[error("when using {instruction} with more than one source file, the destination must be a directory and end with a /")]
    SeveralSourcesNeedDirectory { instruction: &'static str },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Pattern(#[from] ContextError),
    #[error("--chown={spec}: the image has no /etc/passwd to look names up in")]
    ChownWithoutImage { spec: String },
    #[error("--chown={spec}: {source}")]
    Chown { spec: String, source: UserError },
    #[error("{}: not a UTF-8 path in the context", .0.display())]
    NotUtf8(PathBuf),
    /// The extended attributes a COPY keeps could not be read (see
    /// [`layers::copied_xattrs`]).
    #[error("cannot read extended attributes: {0}")]
    Xattrs(Box<LayerError>),
    #[error("ADD {origin}: {source}")]
    Unpack {
        origin: String,
        source: Box<LayerError>,
    },
    #[error("ADD {url}: cannot download it: {source}")]
    Download {
        url: String,
        source: Box<ureq::Error>,
    },
    #[error("ADD {url}: download failed: {source}")]
    DownloadCut { url: String, source: std::io::Error },
    #[error("ADD {url}: {source}")]
    NoRoom {
        url: String,
        source: Box<LayerError>,
    },
    #[error("ADD {url}: checksum mismatch: expected {expected}, got {actual}")]
    Checksum {
        url: String,
        expected: String,
        actual: String,
    },
}

impl From<UnreadableFile> for CopyError {
    fn from(error: UnreadableFile) -> CopyError {
        CopyError::Io {
            path: error.path,
            source: error.source,
        }
    }
}

/// An I/O error at `path`, for `map_err`.
fn at(path: &Path) -> impl FnOnce(std::io::Error) -> CopyError + '_ {
    move |source| CopyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What to do with an entry met in the walk of a directory source.
enum Walk {
    Take,
    Skip,
    /// Skip it and what it holds.
    SkipTree,
}

/// Whether the walk of a directory source takes an entry: `origin` is its path as the
/// source names it (what `.dockerignore` sees), `inner` its path under the directory
/// (what `--exclude` sees). A left-out directory is still walked when exceptions may
/// bring back some of what it holds.
fn walk_decision(
    ignore: Option<&IgnoreMatcher>,
    excludes: &IgnoreMatcher,
    origin: &str,
    inner: &str,
    is_dir: bool,
) -> Walk {
    let decide = |matcher: &IgnoreMatcher, path: &str| {
        if !matcher.excludes(path) {
            None
        } else if is_dir && !matcher.has_exceptions() {
            Some(Walk::SkipTree)
        } else {
            Some(Walk::Skip)
        }
    };
    ignore
        .and_then(|ignore| decide(ignore, origin))
        .or_else(|| {
            (!excludes.is_empty())
                .then(|| decide(excludes, inner))
                .flatten()
        })
        .unwrap_or(Walk::Take)
}

/// `--chown=user[:group]`: numbers as given (the group defaults to the user's number),
/// names looked up in the image's own `/etc/passwd` and `/etc/group`.
fn resolve_chown(spec: &str, root: Option<&Path>) -> Result<(u32, u32), CopyError> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if let (Ok(uid), None) = (user.parse::<u32>(), group) {
        return Ok((uid, uid));
    }
    if let (Ok(uid), Some(Ok(gid))) = (user.parse::<u32>(), group.map(str::parse::<u32>)) {
        return Ok((uid, gid));
    }
    let root = root.ok_or_else(|| CopyError::ChownWithoutImage { spec: spec.into() })?;
    let identity = users::resolve_in(root, spec).map_err(|source| CopyError::Chown {
        spec: spec.into(),
        source,
    })?;
    Ok((identity.uid, identity.gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chown_numbers_need_no_image_but_names_do() {
        assert_eq!(resolve_chown("1000", None).unwrap(), (1000, 1000));
        assert_eq!(resolve_chown("1000:50", None).unwrap(), (1000, 50));
        let error = resolve_chown("app", None).unwrap_err();
        assert_eq!(
            error.to_string(),
            "--chown=app: the image has no /etc/passwd to look names up in"
        );
        let image = tempfile::tempdir().unwrap();
        std::fs::create_dir(image.path().join("etc")).unwrap();
        std::fs::write(
            image.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1001:1002::/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(image.path().join("etc/group"), "root:x:0:\napp:x:1002:\n").unwrap();
        assert_eq!(
            resolve_chown("app", Some(image.path())).unwrap(),
            (1001, 1002)
        );
        assert!(resolve_chown("nobody-here", Some(image.path()))
            .unwrap_err()
            .to_string()
            .starts_with("--chown=nobody-here: "));
    }
}
