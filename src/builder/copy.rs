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

use rayon::prelude::*;

use super::context::{expand_sources, has_wildcards, join_relative, BuildContext, IgnoreMatcher};
use super::hash::{hash_bytes, read_listing, ContextHasher, Hash, Listing, Stat};
use super::view::resolve_in_root;
use super::BuildError;
use crate::exec::users;
use crate::graph::{CopySource, CopyStep};
use crate::layers::{self, Compression, Entry, EntryKind, LayerWriter, SnapshotTarget};
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
    /// Bounds on unpacking an ADDed archive (the store's reserve of free space).
    pub extract_limits: &'a layers::ExtractLimits,
    /// Planning only to compute a cache key: no owner names looked up, no archives
    /// unpacked, nothing about the destination asked.
    pub for_key: bool,
    /// The context's stat and listing cache, to walk its directories with.
    pub hasher: Option<&'a ContextHasher>,
}

enum Content {
    None,
    /// A file, with what `stat` said of it when it was planned (for the hash cache).
    File(PathBuf, Option<Stat>),
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
    /// Planning for a key: what the sources hold, in the order they are met.
    keyed: Vec<KeyUnit>,
    /// Planning for a key: list every entry, not only their digest.
    detail: bool,
    /// Image paths already resolved inside `dest_root`.
    resolved_dirs: HashMap<String, String>,
}

pub(crate) fn plan(request: &CopyRequest<'_>) -> Result<CopyPlan, String> {
    let step = request.step;
    let owner = match &step.chown {
        Some(_) if request.for_key => Owner::Fixed(0, 0),
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
        keyed: Vec::new(),
        detail: false,
        resolved_dirs: HashMap::new(),
    };
    planner.run()?;
    Ok(CopyPlan {
        entries: planner.entries,
    })
}

/// What a COPY or ADD takes from its source (the build context), for its cache key:
/// every entry it selects with its origin, kind, mode (after `--chmod`), link target and
/// content hash, and a digest of them all. Owners are left out: they are the step's
/// `--chown` (root without it), which the key holds. Nothing about the destination is
/// asked, no owner name is looked up and no archive is unpacked.
///
/// With `detail` false only the digest is made: the list of entries (which explains a
/// miss and goes into its record) is asked for again, with `detail`, on a miss.
pub(crate) fn key_inputs(request: &CopyRequest<'_>, detail: bool) -> Result<FileInputs, String> {
    debug_assert!(request.for_key && request.hasher.is_some());
    let mut planner = Planner {
        request,
        owner: Owner::Fixed(0, 0),
        excludes: IgnoreMatcher::from_patterns(&request.step.excludes)?,
        entries: BTreeMap::new(),
        keyed: Vec::new(),
        detail,
        resolved_dirs: HashMap::new(),
    };
    planner.run()?;
    let mut digest = blake3::Hasher::new();
    for unit in &planner.keyed {
        match unit {
            KeyUnit::One(input) => {
                digest.update(b"1");
                input.feed(&mut digest);
            }
            KeyUnit::Tree(chunks) => {
                digest.update(b"t");
                digest.update(&(chunks.len() as u64).to_le_bytes());
                for (chunk, _) in chunks {
                    digest.update(chunk);
                }
            }
        }
    }
    Ok(FileInputs {
        digest: *digest.finalize().as_bytes(),
        units: planner.keyed,
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
                    let origin = format!("<<{name}");
                    self.put(
                        &target,
                        entry,
                        Content::Bytes(content.into_bytes()),
                        Some(origin),
                    )?;
                }
                Matched::Download { file, name, mtime } => {
                    let size = fs::metadata(&file)
                        .map_err(|e| format!("{}: {e}", file.display()))?
                        .len();
                    let target = self.file_target(&dest, &name, several);
                    let mut entry = self.new_entry(EntryKind::File { size }, 0o600, None);
                    entry.mtime = mtime;
                    self.put(&target, entry, Content::File(file, None), Some(name))?;
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
        let unpack =
            step.add && !self.request.for_key && matches!(self.request.source, Source::Context(_));
        if unpack && is_archive(&source) {
            let unpacked = self
                .request
                .scratch
                .join(format!("unpacked-{}", self.entries.len()));
            fs::create_dir_all(&unpacked).map_err(|e| format!("{}: {e}", unpacked.display()))?;
            let file = File::open(&source).map_err(|e| format!("{relative}: {e}"))?;
            let mut reader =
                layers::decompressing_reader(file).map_err(|e| format!("{relative}: {e}"))?;
            layers::extract(&mut reader, &unpacked, self.request.extract_limits)
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
        let link = read_link_if_symlink(&meta, &source)?;
        let entry = self.entry_from(&meta, link);
        let content = match entry.kind {
            EntryKind::File { .. } => Content::File(source, Some(Stat::of(&meta))),
            _ => Content::None,
        };
        self.put(&target, entry, content, Some(relative.to_string()))
    }

    /// Copies what is in `dir` (not `dir` itself) to the image directory `target`.
    fn copy_dir(&mut self, dir: &Path, relative: &str, target: &str) -> Result<(), String> {
        let dir_meta = fs::symlink_metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if target != "/" && !self.is_dir_in_image(target) {
            let entry = self.entry_from(&dir_meta, None);
            self.put(target, entry, Content::None, Some(relative.to_string()))?;
        }
        let context_ignore = match self.request.source {
            Source::Context(context) if !context.ignore.is_empty() => Some(&context.ignore),
            _ => None,
        };
        let hasher = match self.request.source {
            Source::Context(_) => self.request.hasher,
            Source::Root(_) => None,
        };
        let list = |path: &Path, meta: &Metadata| match hasher {
            Some(hasher) => hasher.list_dir(path, meta),
            None => read_listing(path),
        };
        if self.request.for_key {
            let Some(hasher) = hasher else {
                return Err("internal error: no hasher to key files with".into());
            };
            let Some(dir_relative) = dir
                .strip_prefix(hasher.root())
                .ok()
                .and_then(|d| d.to_str())
            else {
                return Err(format!(
                    "{}: not a UTF-8 path in the context",
                    dir.display()
                ));
            };
            let walk = KeyWalk {
                dir: dir_relative,
                relative,
                ignore: context_ignore,
                excludes: &self.excludes,
                hasher,
                chmod: self.request.step.chmod,
                detail: self.detail,
            };
            let failed = |e: std::io::Error| format!("{}: {e}", dir.display());
            let (_, dir_stat) = hasher.lstat_at(dir_relative).map_err(failed)?;
            let top = hasher.list_dir_at(dir_relative, dir_stat).map_err(failed)?;
            // Only what is taken counts: a left-out entry adds no (empty) chunk.
            let keyed = top
                .par_iter()
                .map(|(name, is_dir)| walk.subtree(name, *is_dir))
                .filter(|chunk| !matches!(chunk, Ok((0, _, _))))
                .map(|chunk| chunk.map(|(_, digest, inputs)| (digest, inputs)))
                .collect::<Result<Vec<_>, String>>()?;
            self.keyed.push(KeyUnit::Tree(keyed));
            return Ok(());
        }
        let chunks = walk_tree(dir, relative, context_ignore, &self.excludes, &list)?;
        let target = target.trim_end_matches('/');
        for found in chunks.into_iter().flatten() {
            let entry = self.entry_from(&found.meta, found.link);
            let content = match entry.kind {
                EntryKind::File { .. } => {
                    Content::File(dir.join(&found.inner), Some(Stat::of(&found.meta)))
                }
                _ => Content::None,
            };
            self.put(
                &format!("{target}/{}", found.inner),
                entry,
                content,
                Some(join_relative(relative, &found.inner)),
            )?;
        }
        Ok(())
    }

    fn entry_from(&self, meta: &Metadata, link: Option<Vec<u8>>) -> Entry {
        let file_type = meta.file_type();
        let kind = if file_type.is_dir() {
            EntryKind::Directory
        } else if file_type.is_file() {
            EntryKind::File { size: meta.len() }
        } else if let Some(target) = link {
            EntryKind::Symlink { target }
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
        entry
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

    /// Records an entry at the image path `target` (absolute), with its parents; when
    /// planning for a key, only what it is and where it comes from.
    fn put(
        &mut self,
        target: &str,
        mut entry: Entry,
        content: Content,
        origin: Option<String>,
    ) -> Result<(), String> {
        if self.request.for_key {
            if let Some(origin) = origin {
                let input = self.key_input(origin, &entry, content)?;
                self.keyed.push(KeyUnit::One(input));
            }
            return Ok(());
        }
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
            return Ok(());
        }
        entry.path = path.clone().into_bytes();
        self.entries
            .insert(entry.path.clone(), Planned { entry, content });
        Ok(())
    }

    /// An entry as a key sees it.
    fn key_input(
        &self,
        origin: String,
        entry: &Entry,
        content: Content,
    ) -> Result<FileInput, String> {
        let hash = match content {
            Content::None => [0; 32],
            Content::Bytes(bytes) => hash_bytes(&bytes),
            Content::File(path, stat) => match self.request.hasher {
                Some(hasher) => hasher.hash_file(&path, stat)?,
                None => return Err("internal error: no hasher to key files with".into()),
            },
        };
        let (kind, link) = kind_and_link(&entry.kind);
        Ok(FileInput {
            origin,
            kind,
            mode: entry.mode,
            link: String::from_utf8_lossy(link).into_owned(),
            hash,
        })
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
                    let target = relative.to_string_lossy().into_owned();
                    if target != resolved {
                        // A symlink in the image led elsewhere (`/app` -> `/opt/app`):
                        // the layer needs the directories on the way to where it leads.
                        if let Some((target_parent, _)) = target.rsplit_once('/') {
                            self.resolve_dir(target_parent);
                        }
                        resolved = target;
                    }
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
                Some(meta) => {
                    Entry::from_metadata(resolved.clone().into_bytes(), EntryKind::Directory, &meta)
                }
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
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_connect(Some(DOWNLOAD_CONNECT_TIMEOUT))
            .timeout_recv_response(Some(DOWNLOAD_RESPONSE_TIMEOUT))
            .timeout_recv_body(Some(DOWNLOAD_BODY_TIMEOUT))
            .build()
            .into();
        let response = agent
            .get(url)
            .call()
            .map_err(|e| format!("ADD {url}: cannot download it: {e}"))?;
        let reserve = self.request.extract_limits.reserve.unwrap_or(0);
        let declared = response
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        layers::check_room(self.request.scratch, declared, reserve, url)
            .map_err(|e| format!("ADD {url}: {e}"))?;
        let mtime = response
            .headers()
            .get("last-modified")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| jiff::fmt::rfc2822::parse(v).ok())
            .map(|z| z.timestamp().as_second())
            .unwrap_or(self.request.now);
        let mut body = response
            .into_body()
            .into_with_config()
            .limit(u64::MAX)
            .reader();
        let mut out = File::create(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let mut hashing = crate::oci::Sha256Writer::new(&mut out);
        // The body is bounded by the store's reserve of free space, looked at again
        // every few megabytes, whatever the server declared.
        let mut chunk = vec![0u8; 1 << 16];
        let mut since_check: u64 = 0;
        loop {
            let n = body
                .read(&mut chunk)
                .map_err(|e| format!("ADD {url}: download failed: {e}"))?;
            if n == 0 {
                break;
            }
            since_check += n as u64;
            if since_check >= 64 << 20 {
                since_check = 0;
                layers::check_room(self.request.scratch, 0, reserve, url)
                    .map_err(|e| format!("ADD {url}: {e}"))?;
            }
            hashing
                .write_all(&chunk[..n])
                .map_err(|e| format!("{}: {e}", file.display()))?;
        }
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

/// How long ADD of a URL waits to connect, for the response headers, and for the
/// whole body.
const DOWNLOAD_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
const DOWNLOAD_RESPONSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
const DOWNLOAD_BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3600);

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

/// An entry found under a copied directory.
struct Walked {
    /// Its path under the directory.
    inner: String,
    meta: Metadata,
    link: Option<Vec<u8>>,
}

fn read_link_if_symlink(meta: &Metadata, path: &Path) -> Result<Option<Vec<u8>>, String> {
    if !meta.file_type().is_symlink() {
        return Ok(None);
    }
    let target = fs::read_link(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Some(target.as_os_str().as_bytes().to_vec()))
}

/// What to do with an entry met in a walk.
enum Walk {
    Take,
    Skip,
    SkipTree,
}

/// Everything under `dir` (whose path in the source is `relative`) that the context's
/// `.dockerignore` and `--exclude` let through, in walk order (each directory's entries
/// by name, a directory before what it holds). Directory listings come from `list`
/// (the context's listing cache); the subtrees of `dir` are walked in parallel: a walk
/// is mostly `lstat` calls, and a COPY of a big tree spends most of its cache-key time
/// here.
fn walk_tree(
    dir: &Path,
    relative: &str,
    ignore: Option<&IgnoreMatcher>,
    excludes: &IgnoreMatcher,
    list: &(dyn Fn(&Path, &Metadata) -> std::io::Result<Listing> + Sync),
) -> Result<Vec<Vec<Walked>>, String> {
    let left_out = |matcher: &IgnoreMatcher, is_dir: bool| {
        if is_dir && !matcher.has_exceptions() {
            Walk::SkipTree
        } else {
            Walk::Skip
        }
    };
    let decide = |inner: &str, is_dir: bool| -> Walk {
        if let Some(ignore) = ignore {
            if ignore.excludes(&join_relative(relative, inner)) {
                return left_out(ignore, is_dir);
            }
        }
        if !excludes.is_empty() && excludes.excludes(inner) {
            return left_out(excludes, is_dir);
        }
        Walk::Take
    };
    let listing = |path: &Path, meta: &Metadata| -> Result<Listing, String> {
        list(path, meta).map_err(|e| format!("{}: {e}", path.display()))
    };
    // One subtree, depth first, in order: each directory's entries go on the stack in
    // reverse so that they come off it by name.
    let subtree = |name: &str, is_dir: bool| -> Result<Vec<Walked>, String> {
        let mut out = Vec::new();
        let mut stack: Vec<(String, bool)> = vec![(name.to_string(), is_dir)];
        while let Some((inner, is_dir)) = stack.pop() {
            // Left out, a directory is still walked when exceptions may bring back some
            // of what it holds (as walkdir would go on into it).
            let take = match decide(&inner, is_dir) {
                Walk::SkipTree => continue,
                Walk::Skip if !is_dir => continue,
                Walk::Skip => false,
                Walk::Take => true,
            };
            let path = dir.join(&inner);
            let meta =
                fs::symlink_metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            if meta.file_type().is_dir() {
                for (child, child_is_dir) in listing(&path, &meta)?.into_iter().rev() {
                    stack.push((format!("{inner}/{child}"), child_is_dir));
                }
                if take {
                    out.push(Walked {
                        inner,
                        meta,
                        link: None,
                    });
                }
                continue;
            }
            if !take || meta.file_type().is_socket() {
                continue;
            }
            let link = read_link_if_symlink(&meta, &path)?;
            out.push(Walked { inner, meta, link });
        }
        Ok(out)
    };
    let dir_meta = fs::symlink_metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let top = listing(dir, &dir_meta)?;
    top.par_iter()
        .map(|(name, is_dir)| subtree(name, *is_dir))
        .collect()
}

/// A walk of a directory source for its key: digests of what it holds, made in one pass
/// per top-level entry with one path buffer, and the entries themselves on request.
struct KeyWalk<'a> {
    /// The directory, relative to the context's root.
    dir: &'a str,
    relative: &'a str,
    ignore: Option<&'a IgnoreMatcher>,
    excludes: &'a IgnoreMatcher,
    hasher: &'a ContextHasher,
    chmod: Option<u32>,
    detail: bool,
}

/// Where a walk is: relative to the context's root, to the walked directory, and as
/// the source names it.
struct WalkPosition {
    path: String,
    inner: String,
    origin: String,
}

impl KeyWalk<'_> {
    /// One top-level entry and everything below it: how many entries were taken, their
    /// digest, and (with `detail`) the entries.
    fn subtree(&self, name: &str, is_dir: bool) -> Result<(usize, Hash, Vec<FileInput>), String> {
        let mut at = WalkPosition {
            path: join_relative(self.dir, name),
            inner: name.to_string(),
            origin: join_relative(self.relative, name),
        };
        let mut digest = blake3::Hasher::new();
        let mut inputs = Vec::new();
        let mut count = 0;
        self.visit(&mut at, is_dir, &mut digest, &mut inputs, &mut count)?;
        Ok((count, *digest.finalize().as_bytes(), inputs))
    }

    fn left_out(&self, at: &WalkPosition, is_dir: bool) -> Walk {
        let decide = |matcher: &IgnoreMatcher, path: &str| {
            if !matcher.excludes(path) {
                None
            } else if is_dir && !matcher.has_exceptions() {
                Some(Walk::SkipTree)
            } else {
                Some(Walk::Skip)
            }
        };
        self.ignore
            .and_then(|ignore| decide(ignore, &at.origin))
            .or_else(|| {
                (!self.excludes.is_empty())
                    .then(|| decide(self.excludes, &at.inner))
                    .flatten()
            })
            .unwrap_or(Walk::Take)
    }

    fn visit(
        &self,
        at: &mut WalkPosition,
        is_dir: bool,
        digest: &mut blake3::Hasher,
        inputs: &mut Vec<FileInput>,
        count: &mut usize,
    ) -> Result<(), String> {
        let take = match self.left_out(at, is_dir) {
            Walk::SkipTree => return Ok(()),
            Walk::Skip if !is_dir => return Ok(()),
            Walk::Skip => false,
            Walk::Take => true,
        };
        let failed = |e: std::io::Error| format!("{}: {e}", at.path);
        let (st_mode, stat) = self.hasher.lstat_at(&at.path).map_err(failed)?;
        let is_dir = st_mode & libc::S_IFMT == libc::S_IFDIR;
        if !is_dir && (!take || st_mode & libc::S_IFMT == libc::S_IFSOCK) {
            return Ok(());
        }
        let (kind, hash, link) = match st_mode & libc::S_IFMT {
            libc::S_IFDIR => (b'd', [0; 32], None),
            libc::S_IFREG => (b'f', self.hasher.hash_file_at(&at.path, stat)?, None),
            libc::S_IFLNK => (
                b'l',
                [0; 32],
                Some(self.hasher.read_link_at(&at.path).map_err(failed)?),
            ),
            libc::S_IFCHR => (b'c', [0; 32], None),
            libc::S_IFBLK => (b'b', [0; 32], None),
            _ => (b'p', [0; 32], None),
        };
        if take {
            let mode = match self.chmod {
                Some(chmod) if kind != b'l' => chmod,
                _ => st_mode & 0o7777,
            };
            let link = link.as_deref().unwrap_or_default();
            feed_leaf(digest, at.origin.as_bytes(), kind, mode, link, &hash);
            *count += 1;
            if self.detail {
                inputs.push(FileInput {
                    origin: at.origin.clone(),
                    kind,
                    mode,
                    link: String::from_utf8_lossy(link).into_owned(),
                    hash,
                });
            }
        }
        if !is_dir {
            return Ok(());
        }
        let listing = self.hasher.list_dir_at(&at.path, stat).map_err(failed)?;
        let (path_len, inner_len, origin_len) = (at.path.len(), at.inner.len(), at.origin.len());
        for (child, child_is_dir) in listing {
            if !at.path.is_empty() {
                at.path.push('/');
            }
            at.path.push_str(&child);
            at.inner.push('/');
            at.inner.push_str(&child);
            at.origin.push('/');
            at.origin.push_str(&child);
            let visited = self.visit(at, child_is_dir, digest, inputs, count);
            at.path.truncate(path_len);
            at.inner.truncate(inner_len);
            at.origin.truncate(origin_len);
            visited?;
        }
        Ok(())
    }
}

fn feed_leaf(
    digest: &mut blake3::Hasher,
    origin: &[u8],
    kind: u8,
    mode: u32,
    link: &[u8],
    hash: &Hash,
) {
    digest.update(&(origin.len() as u64).to_le_bytes());
    digest.update(origin);
    digest.update(&[kind]);
    digest.update(&mode.to_le_bytes());
    digest.update(&(link.len() as u64).to_le_bytes());
    digest.update(link);
    digest.update(hash);
}

/// What a key holds of the entries of a COPY's sources, in the order they are met.
pub(crate) enum KeyUnit {
    /// A file, link or directory named by a source.
    One(FileInput),
    /// What a directory source holds, in chunks walked in parallel, each with its digest.
    Tree(Vec<(Hash, Vec<FileInput>)>),
}

/// The files behind a COPY's cache key.
pub(crate) struct FileInputs {
    pub digest: Hash,
    units: Vec<KeyUnit>,
}

impl FileInputs {
    /// Every entry, in order.
    pub(crate) fn entries(&self) -> impl Iterator<Item = &FileInput> {
        self.units
            .iter()
            .flat_map(|unit| -> Box<dyn Iterator<Item = &FileInput>> {
                match unit {
                    KeyUnit::One(input) => Box::new(std::iter::once(input)),
                    KeyUnit::Tree(chunks) => Box::new(chunks.iter().flat_map(|(_, c)| c.iter())),
                }
            })
    }
}

/// One source entry of a COPY, as its cache key sees it.
pub(crate) struct FileInput {
    pub origin: String,
    kind: u8,
    mode: u32,
    link: String,
    hash: Hash,
}

impl FileInput {
    fn feed(&self, digest: &mut blake3::Hasher) {
        feed_leaf(
            digest,
            self.origin.as_bytes(),
            self.kind,
            self.mode,
            self.link.as_bytes(),
            &self.hash,
        );
    }

    /// `f 644 1f2e3d4c5b6a7988`, with ` -> target` for links: what `lade cache inspect`
    /// shows and what explanations compare.
    pub(crate) fn summary(&self) -> String {
        let hex: String = self.hash[..8].iter().map(|b| format!("{b:02x}")).collect();
        let mut text = format!("{} {:o} {hex}", self.kind as char, self.mode);
        if !self.link.is_empty() {
            text.push_str(" -> ");
            text.push_str(&self.link);
        }
        text
    }
}

fn kind_and_link(kind: &EntryKind) -> (u8, &[u8]) {
    match kind {
        EntryKind::Directory => (b'd', b""),
        EntryKind::File { .. } => (b'f', b""),
        EntryKind::Symlink { target } => (b'l', target),
        EntryKind::Hardlink { target } => (b'h', target),
        EntryKind::CharDevice { .. } => (b'c', b""),
        EntryKind::BlockDevice { .. } => (b'b', b""),
        EntryKind::Fifo => (b'p', b""),
        EntryKind::Whiteout | EntryKind::Opaque => (b'w', b""),
    }
}

/// Writes the planned layer: the blob into the store and the snapshot next to it.
/// `reuse`: the snapshot of an earlier version of this layer, whose unchanged files the
/// new snapshot can share.
pub(crate) fn write_layer(
    store: &Store,
    plan: CopyPlan,
    compression: Compression,
    source_date_epoch: Option<i64>,
    reuse: Option<&Path>,
) -> Result<LayerInfo, BuildError> {
    let staging = store.staging_dir("layer")?;
    let snapshot = SnapshotTarget {
        dir: staging.path(),
        reuse,
    };
    let mut writer = LayerWriter::new(store, compression, source_date_epoch, Some(snapshot))?;
    for (_, planned) in plan.entries {
        match planned.content {
            Content::None => writer.add(&planned.entry, None)?,
            Content::Bytes(bytes) => writer.add(&planned.entry, Some(&mut bytes.as_slice()))?,
            Content::File(path, _) => {
                let mut file =
                    File::open(&path).map_err(|source| BuildError::Io { path, source })?;
                writer.add(&planned.entry, Some(&mut file))?;
            }
        }
    }
    let layer = writer.finish()?;
    layers::commit_snapshot(store, staging.path(), &layer.diff_id)?;
    staging.keep();
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
        keyed: Vec::new(),
        detail: false,
        resolved_dirs: HashMap::new(),
    };
    planner.resolve_dir(path);
    Ok(CopyPlan {
        entries: planner.entries,
    })
}
