//! COPY and ADD: which files go where, with Docker's rules, then one layer written in a
//! single pass that also fills the layer's snapshot.
//!
//! Rules: a directory source copies its contents; a file goes to `dest` itself unless
//! `dest` ends in `/`, names an existing directory, or there are several sources; the
//! destination's parents are resolved inside the image (so `/bin/x` lands in `/usr/bin`
//! when `/bin` is a symlink) and keep the image's ownership and mode; files from the
//! context become root's unless `--chown`, files `--from` a stage or image keep theirs.
//! ADD also fetches URLs and unpacks local tar archives (any compression).

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, Metadata};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::context::{expand_sources, has_wildcards, join_relative, BuildContext, IgnoreMatcher};
use super::view::resolve_in_root;
use super::BuildError;
use crate::exec::users;
use crate::graph::{CopySource, CopyStep};
use crate::layers::{self, Compression, Entry, EntryKind, LayerWriter};
use crate::oci::Digest;
use crate::store::{LayerInfo, Store};

/// Where COPY reads its sources.
pub(crate) enum Source<'a> {
    Context(&'a BuildContext),
    /// A stage's or image's root filesystem view.
    Root(&'a Path),
}

pub(crate) struct CopyRequest<'a> {
    pub step: &'a CopyStep,
    pub source: Source<'a>,
    /// The stage's filesystem before this step, or `None` if it is still empty.
    pub dest_root: Option<&'a Path>,
    pub source_date_epoch: Option<i64>,
    /// The time given to directories the step creates.
    pub now: i64,
    /// Room for downloads and unpacked archives.
    pub scratch: &'a Path,
}

enum Content {
    None,
    File(PathBuf),
    Bytes(Vec<u8>),
}

struct Planned {
    entry: Entry,
    content: Content,
}

/// The entries of the layer a COPY or ADD makes, by path (which is tar order).
pub(crate) struct CopyPlan {
    entries: BTreeMap<Vec<u8>, Planned>,
}

impl CopyPlan {
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Who owns what the step writes.
#[derive(Clone, Copy)]
enum Owner {
    /// `--chown`, or root for files from the context.
    Fixed(u32, u32),
    /// As in the source (`--from` without `--chown`).
    Keep,
}

struct Planner<'a> {
    request: &'a CopyRequest<'a>,
    owner: Owner,
    excludes: IgnoreMatcher,
    entries: BTreeMap<Vec<u8>, Planned>,
    /// Image paths already resolved inside `dest_root`.
    resolved_dirs: HashMap<String, String>,
}

pub(crate) fn plan(request: &CopyRequest<'_>) -> Result<CopyPlan, String> {
    let step = request.step;
    let owner = match &step.chown {
        Some(spec) => {
            let (uid, gid) = resolve_chown(spec, request.dest_root)?;
            Owner::Fixed(uid, gid)
        }
        None => match request.source {
            Source::Context(_) => Owner::Fixed(0, 0),
            Source::Root(_) => Owner::Keep,
        },
    };
    let mut planner = Planner {
        request,
        owner,
        excludes: IgnoreMatcher::from_patterns(&step.excludes)?,
        entries: BTreeMap::new(),
        resolved_dirs: HashMap::new(),
    };
    planner.run()?;
    Ok(CopyPlan {
        entries: planner.entries,
    })
}

/// `--chown=user[:group]`: numbers as given (the group defaults to the user's number),
/// names looked up in the image's own `/etc/passwd` and `/etc/group`.
fn resolve_chown(spec: &str, root: Option<&Path>) -> Result<(u32, u32), String> {
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
    let root = root.ok_or_else(|| {
        format!("--chown={spec}: the image has no /etc/passwd to look names up in")
    })?;
    let identity = users::resolve_in(root, spec).map_err(|e| format!("--chown={spec}: {e}"))?;
    Ok((identity.uid, identity.gid))
}

/// One source after globbing.
enum Matched {
    /// A path under the source root (relative), and the name it was asked for.
    Path {
        relative: String,
    },
    Heredoc {
        name: String,
        content: String,
    },
    Download {
        file: PathBuf,
        name: String,
        mtime: i64,
    },
}

impl Planner<'_> {
    fn run(&mut self) -> Result<(), String> {
        let step = self.request.step;
        let mut matched = Vec::new();
        for source in &step.sources {
            match source {
                CopySource::Heredoc { name, content } => matched.push(Matched::Heredoc {
                    name: name.clone(),
                    content: content.clone(),
                }),
                CopySource::Url(url) => matched.push(self.download(url)?),
                CopySource::Path(pattern) => {
                    let root = self.source_root();
                    let found = expand_sources(&root, pattern)?;
                    let mut any = false;
                    for relative in found {
                        if let Source::Context(context) = self.request.source {
                            if !relative.is_empty() && context.ignore.excludes(&relative) {
                                continue;
                            }
                        }
                        let resolved = resolve_in_root(&root, &relative, true);
                        if fs::symlink_metadata(&resolved).is_err() {
                            if has_wildcards(pattern) {
                                continue;
                            }
                            return Err(self.not_found(pattern));
                        }
                        any = true;
                        matched.push(Matched::Path { relative });
                    }
                    if !any {
                        return Err(self.not_found(pattern));
                    }
                }
            }
        }
        let several = matched.len() > 1;
        if several && !step.dest.ends_with('/') {
            return Err(format!(
                "when using {} with more than one source file, the destination must be a directory and end with a /",
                if step.add { "ADD" } else { "COPY" }
            ));
        }
        let dest = step.dest.trim_end_matches('/').to_string();
        let dest = if dest.is_empty() {
            "/".to_string()
        } else {
            dest
        };
        for m in matched {
            match m {
                Matched::Heredoc { name, content } => {
                    let target = self.file_target(&dest, &name, several);
                    let entry = self.new_entry(
                        EntryKind::File {
                            size: content.len() as u64,
                        },
                        0o644,
                        None,
                    );
                    self.put(&target, entry, Content::Bytes(content.into_bytes()));
                }
                Matched::Download { file, name, mtime } => {
                    let size = fs::metadata(&file)
                        .map_err(|e| format!("{}: {e}", file.display()))?
                        .len();
                    let target = self.file_target(&dest, &name, several);
                    let mut entry = self.new_entry(EntryKind::File { size }, 0o600, None);
                    entry.mtime = mtime;
                    self.put(&target, entry, Content::File(file));
                }
                Matched::Path { relative } => self.copy_path(&relative, &dest, several)?,
            }
        }
        Ok(())
    }

    fn source_root(&self) -> PathBuf {
        match self.request.source {
            Source::Context(context) => context.root.clone(),
            Source::Root(root) => root.to_path_buf(),
        }
    }

    fn not_found(&self, pattern: &str) -> String {
        match self.request.source {
            Source::Context(_) => format!(
                "{pattern}: file not found in the build context or excluded by .dockerignore"
            ),
            Source::Root(_) => format!("{pattern}: not found in the source's filesystem"),
        }
    }

    /// Where a single file named `name` goes.
    fn file_target(&mut self, dest: &str, name: &str, several: bool) -> String {
        let into_dir =
            self.request.step.dest.ends_with('/') || several || self.is_dir_in_image(dest);
        if into_dir {
            format!("{}/{name}", dest.trim_end_matches('/'))
        } else {
            dest.to_string()
        }
    }

    fn is_dir_in_image(&self, path: &str) -> bool {
        self.request
            .dest_root
            .is_some_and(|root| resolve_in_root(root, path, true).is_dir())
    }

    fn copy_path(&mut self, relative: &str, dest: &str, several: bool) -> Result<(), String> {
        let root = self.source_root();
        let source = resolve_in_root(&root, relative, true);
        let meta = fs::symlink_metadata(&source).map_err(|e| format!("{relative}: {e}"))?;
        let step = self.request.step;
        let base_name = Path::new(relative)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !relative.is_empty() && self.excludes.excludes(&base_name) {
            return Ok(());
        }
        let parents_target = |dest: &str| -> String {
            let kept = match relative.split_once("/./") {
                Some((_, after)) => after.to_string(),
                None => relative.to_string(),
            };
            format!("{}/{kept}", dest.trim_end_matches('/'))
        };
        if meta.is_dir() {
            let target = if step.parents && !relative.is_empty() {
                parents_target(dest)
            } else {
                dest.to_string()
            };
            return self.copy_dir(&source, relative, &target);
        }
        if step.add && matches!(self.request.source, Source::Context(_)) && is_archive(&source) {
            let unpacked = self
                .request
                .scratch
                .join(format!("unpacked-{}", self.entries.len()));
            fs::create_dir_all(&unpacked).map_err(|e| format!("{}: {e}", unpacked.display()))?;
            let file = File::open(&source).map_err(|e| format!("{relative}: {e}"))?;
            let mut reader =
                layers::decompressing_reader(file).map_err(|e| format!("{relative}: {e}"))?;
            layers::extract(&mut reader, &unpacked, &layers::ExtractLimits::default())
                .map_err(|e| format!("ADD {relative}: {e}"))?;
            let saved = self.owner;
            if matches!(self.owner, Owner::Fixed(0, 0)) && step.chown.is_none() {
                self.owner = Owner::Keep;
            }
            let result = self.copy_dir(&unpacked, "", dest);
            self.owner = saved;
            return result;
        }
        let target = if step.parents {
            parents_target(dest)
        } else {
            self.file_target(dest, &base_name, several)
        };
        let entry = self.entry_from(&meta, &source)?;
        let content = match entry.kind {
            EntryKind::File { .. } => Content::File(source),
            _ => Content::None,
        };
        self.put(&target, entry, content);
        Ok(())
    }

    /// Copies what is in `dir` (not `dir` itself) to the image directory `target`.
    fn copy_dir(&mut self, dir: &Path, relative: &str, target: &str) -> Result<(), String> {
        let context_ignore = match self.request.source {
            Source::Context(context) if !context.ignore.is_empty() => Some(&context.ignore),
            _ => None,
        };
        let dir_meta = fs::symlink_metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if target != "/" && !self.is_dir_in_image(target) {
            let entry = self.entry_from(&dir_meta, dir)?;
            self.put(target, entry, Content::None);
        }
        let mut walker = walkdir::WalkDir::new(dir)
            .follow_links(false)
            .min_depth(1)
            .sort_by_file_name()
            .into_iter();
        while let Some(item) = walker.next() {
            let item = item.map_err(|e| format!("{}: {e}", dir.display()))?;
            let inner = item
                .path()
                .strip_prefix(dir)
                .map_err(|e| e.to_string())?
                .to_string_lossy()
                .into_owned();
            let is_dir = item.file_type().is_dir();
            if let Some(ignore) = context_ignore {
                if ignore.excludes(&join_relative(relative, &inner)) {
                    if is_dir && !ignore.has_exceptions() {
                        walker.skip_current_dir();
                    }
                    continue;
                }
            }
            if self.excludes.excludes(&inner) {
                if is_dir && !self.excludes.has_exceptions() {
                    walker.skip_current_dir();
                }
                continue;
            }
            if item.file_type().is_socket() {
                continue;
            }
            let meta = item
                .metadata()
                .map_err(|e| format!("{}: {e}", item.path().display()))?;
            let entry = self.entry_from(&meta, item.path())?;
            let content = match entry.kind {
                EntryKind::File { .. } => Content::File(item.path().to_path_buf()),
                _ => Content::None,
            };
            self.put(
                &format!("{}/{inner}", target.trim_end_matches('/')),
                entry,
                content,
            );
        }
        Ok(())
    }

    /// An entry describing a source file, with this step's owner and mode rules.
    fn entry_from(&self, meta: &Metadata, path: &Path) -> Result<Entry, String> {
        let file_type = meta.file_type();
        let kind = if file_type.is_dir() {
            EntryKind::Directory
        } else if file_type.is_file() {
            EntryKind::File { size: meta.len() }
        } else if file_type.is_symlink() {
            let target = fs::read_link(path).map_err(|e| format!("{}: {e}", path.display()))?;
            EntryKind::Symlink {
                target: target.as_os_str().as_bytes().to_vec(),
            }
        } else if file_type.is_char_device() || file_type.is_block_device() {
            let major = nix::sys::stat::major(meta.rdev()) as u32;
            let minor = nix::sys::stat::minor(meta.rdev()) as u32;
            if file_type.is_char_device() {
                EntryKind::CharDevice { major, minor }
            } else {
                EntryKind::BlockDevice { major, minor }
            }
        } else {
            EntryKind::Fifo
        };
        let mut entry = self.new_entry(kind, meta.mode() & 0o7777, Some((meta.uid(), meta.gid())));
        entry.mtime = meta.mtime();
        Ok(entry)
    }

    fn new_entry(&self, kind: EntryKind, mode: u32, source_owner: Option<(u32, u32)>) -> Entry {
        let (uid, gid) = match (self.owner, source_owner) {
            (Owner::Fixed(uid, gid), _) => (uid, gid),
            (Owner::Keep, Some(owner)) => owner,
            (Owner::Keep, None) => (0, 0),
        };
        let mode = match (self.request.step.chmod, &kind) {
            (Some(chmod), k) if !matches!(k, EntryKind::Symlink { .. }) => chmod,
            _ => mode,
        };
        Entry {
            path: Vec::new(),
            kind,
            mode,
            uid,
            gid,
            mtime: self.request.source_date_epoch.unwrap_or(self.request.now),
            xattrs: Vec::new(),
        }
    }

    /// Records an entry at the image path `target` (absolute), with its parents.
    fn put(&mut self, target: &str, mut entry: Entry, content: Content) {
        let (parent, name) = match target.trim_end_matches('/').rsplit_once('/') {
            Some((p, n)) => (p, n),
            None => ("", target),
        };
        let parent = self.resolve_dir(parent);
        let path = if parent.is_empty() {
            name.to_string()
        } else {
            format!("{parent}/{name}")
        };
        if path.is_empty() {
            return;
        }
        entry.path = path.clone().into_bytes();
        self.entries
            .insert(entry.path.clone(), Planned { entry, content });
    }

    /// The layer path of image directory `dir`, with symlinks resolved inside the image,
    /// and entries for it and its parents (the image's metadata where they exist).
    fn resolve_dir(&mut self, dir: &str) -> String {
        let dir = dir.trim_matches('/').to_string();
        if dir.is_empty() {
            return dir;
        }
        if let Some(done) = self.resolved_dirs.get(&dir) {
            return done.clone();
        }
        let (parent, name) = match dir.rsplit_once('/') {
            Some((p, n)) => (p.to_string(), n.to_string()),
            None => (String::new(), dir.clone()),
        };
        let parent_resolved = self.resolve_dir(&parent);
        let mut resolved = join_relative(&parent_resolved, &name);
        if let Some(root) = self.request.dest_root {
            let in_image = resolve_in_root(root, &resolved, true);
            if let Ok(relative) = in_image.strip_prefix(root) {
                if in_image.is_dir() {
                    resolved = relative.to_string_lossy().into_owned();
                }
            }
        }
        if !self.entries.contains_key(resolved.as_bytes()) {
            let existing = self
                .request
                .dest_root
                .and_then(|root| fs::symlink_metadata(root.join(&resolved)).ok())
                .filter(Metadata::is_dir);
            let entry = match existing {
                Some(meta) => Entry {
                    path: resolved.clone().into_bytes(),
                    kind: EntryKind::Directory,
                    mode: meta.mode() & 0o7777,
                    uid: meta.uid(),
                    gid: meta.gid(),
                    mtime: meta.mtime(),
                    xattrs: Vec::new(),
                },
                None => {
                    let mut entry = self.new_entry(EntryKind::Directory, 0o755, None);
                    entry.mode = 0o755;
                    if matches!(self.owner, Owner::Keep) {
                        (entry.uid, entry.gid) = (0, 0);
                    }
                    entry.path = resolved.clone().into_bytes();
                    entry
                }
            };
            self.entries.insert(
                entry.path.clone(),
                Planned {
                    entry,
                    content: Content::None,
                },
            );
        }
        self.resolved_dirs.insert(dir, resolved.clone());
        resolved
    }

    /// ADD of a URL: fetched into the scratch directory, checked against `--checksum`.
    fn download(&self, url: &str) -> Result<Matched, String> {
        let name = url
            .split(['?', '#'])
            .next()
            .and_then(|u| u.rsplit('/').next())
            .filter(|n| !n.is_empty())
            .unwrap_or("index.html")
            .to_string();
        let file = self
            .request
            .scratch
            .join(format!("download-{}", Digest::of(url.as_bytes()).short()));
        let response = ureq::get(url)
            .call()
            .map_err(|e| format!("ADD {url}: cannot download it: {e}"))?;
        let mtime = response
            .headers()
            .get("last-modified")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| jiff::fmt::rfc2822::parse(v).ok())
            .map(|z| z.timestamp().as_second())
            .unwrap_or(self.request.now);
        let mut body = response.into_body().into_reader();
        let mut out = File::create(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let mut hashing = crate::oci::Sha256Writer::new(&mut out);
        std::io::copy(&mut body, &mut hashing)
            .map_err(|e| format!("ADD {url}: download failed: {e}"))?;
        let (digest, _, _) = hashing.finish();
        out.flush()
            .map_err(|e| format!("{}: {e}", file.display()))?;
        if let Some(expected) = &self.request.step.checksum {
            if digest.to_string() != *expected {
                return Err(format!(
                    "ADD {url}: checksum mismatch: expected {expected}, got {digest}"
                ));
            }
        }
        Ok(Matched::Download { file, name, mtime })
    }
}

/// Whether a file is a tar archive, compressed or not (ADD unpacks those).
fn is_archive(path: &Path) -> bool {
    let Ok(file) = File::open(path) else {
        return false;
    };
    let Ok(mut reader) = layers::decompressing_reader(file) else {
        return false;
    };
    let mut header = [0u8; 512];
    if reader.read_exact(&mut header).is_err() {
        return false;
    }
    if &header[257..262] == b"ustar" {
        return true;
    }
    // An old-style header: its checksum field holds the sum of its bytes.
    let stored = std::str::from_utf8(&header[148..156])
        .ok()
        .map(|s| s.trim_matches(|c: char| c == '\0' || c == ' '))
        .and_then(|s| u32::from_str_radix(s, 8).ok());
    let sum: u32 = header
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum();
    header[0] != 0 && stored == Some(sum)
}

/// Writes the planned layer: the blob into the store and the snapshot next to it.
pub(crate) fn write_layer(
    store: &Store,
    plan: CopyPlan,
    compression: Compression,
    source_date_epoch: Option<i64>,
) -> Result<LayerInfo, BuildError> {
    let staging = store.staging_dir("layer")?;
    let mut writer = LayerWriter::new(store, compression, source_date_epoch, Some(staging.path()))?;
    for (_, planned) in plan.entries {
        match planned.content {
            Content::None => writer.add(&planned.entry, None)?,
            Content::Bytes(bytes) => writer.add(&planned.entry, Some(&mut bytes.as_slice()))?,
            Content::File(path) => {
                let mut file =
                    File::open(&path).map_err(|source| BuildError::Io { path, source })?;
                writer.add(&planned.entry, Some(&mut file))?;
            }
        }
    }
    let layer = writer.finish()?;
    let path = staging.keep();
    store.commit_snapshot(&path, &layer.diff_id)?;
    Ok(layer)
}

/// The layer of WORKDIR: `path` and any missing parents, owned by `request.step.chown`
/// (the USER in effect). Empty when the image already has the directory.
pub(crate) fn plan_directory(request: &CopyRequest<'_>, path: &str) -> Result<CopyPlan, String> {
    let (uid, gid) = match &request.step.chown {
        Some(spec) => resolve_chown(spec, request.dest_root)?,
        None => (0, 0),
    };
    let mut planner = Planner {
        request,
        owner: Owner::Fixed(uid, gid),
        excludes: IgnoreMatcher::default(),
        entries: BTreeMap::new(),
        resolved_dirs: HashMap::new(),
    };
    planner.resolve_dir(path);
    Ok(CopyPlan {
        entries: planner.entries,
    })
}
