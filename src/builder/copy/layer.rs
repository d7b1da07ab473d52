//! The layer a COPY or ADD makes: each selected source as entries at their image paths
//! (parents resolved inside the image, owners and modes as the step asks), ADDed
//! archives unpacked, then written in one pass that also fills the layer's snapshot.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, Metadata};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::super::context::{join_relative, IgnoreMatcher};
use super::super::hash::{read_listing, Hash, Listing, Stat};
use super::super::view::resolve_in_root;
use super::super::BuildError;
use super::sources::{self, Selected};
use super::{at, fetch, resolve_chown, walk_decision, CopyError, CopyRequest, Source, Walk};
use crate::layers::{self, Compression, Entry, EntryKind, LayerWriter, SnapshotTarget};
use crate::store::{LayerInfo, Store};

enum Content {
    None,
    File(std::path::PathBuf),
    /// A build-context file with the content hash its stat cache vouches for while the
    /// file keeps this stat.
    ContextFile {
        path: std::path::PathBuf,
        stat: Stat,
        hash: Hash,
    },
    Bytes(Vec<u8>),
}

struct Planned {
    entry: Entry,
    content: Content,
    /// The source file's device and inode when it has other names: the names a step
    /// copies of one file stay one file, as in Docker.
    inode: Option<(u64, u64)>,
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

/// The layer `request` makes.
pub(crate) fn plan(request: &CopyRequest<'_>) -> Result<CopyPlan, CopyError> {
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
    let selection = sources::select(request)?;
    let mut planner = Planner {
        request,
        owner,
        excludes: selection.excludes,
        entries: BTreeMap::new(),
        resolved_dirs: HashMap::new(),
    };
    for item in selection.items {
        planner.add(item)?;
    }
    link_shared_inodes(&mut planner.entries);
    Ok(CopyPlan {
        entries: planner.entries,
    })
}

/// Files copied from one inode under several names: the first name in tar order keeps
/// the data, the others become hard links to it (in the tar, a link entry; in the
/// snapshot, a hard link), so the copies stay one file and the layer does not hold the
/// bytes twice. Tar order makes which name is first depend on the names alone.
fn link_shared_inodes(entries: &mut BTreeMap<Vec<u8>, Planned>) {
    let mut first: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
    for planned in entries.values_mut() {
        let Some(inode) = planned.inode else {
            continue;
        };
        match first.get(&inode) {
            Some(target) => {
                planned.entry.kind = EntryKind::Hardlink {
                    target: target.clone(),
                };
                // The link shares the first name's inode, attributes and all.
                planned.entry.xattrs.clear();
                planned.content = Content::None;
            }
            None => {
                first.insert(inode, planned.entry.path.clone());
            }
        }
    }
}

/// The layer of WORKDIR: `path` and any missing parents, owned by `request.step.chown`
/// (the USER in effect). Empty when the image already has the directory.
pub(crate) fn plan_directory(request: &CopyRequest<'_>, path: &str) -> Result<CopyPlan, CopyError> {
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

impl Planner<'_> {
    fn add(&mut self, item: Selected) -> Result<(), CopyError> {
        match item {
            Selected::Text {
                content, target, ..
            } => {
                let size = content.len() as u64;
                let entry = self.new_entry(EntryKind::File { size }, 0o644, None);
                self.put(&target, entry, Content::Bytes(content.into_bytes()), None);
            }
            Selected::Download {
                file,
                mtime,
                target,
                ..
            } => {
                let size = fs::metadata(&file).map_err(at(&file))?.len();
                let mut entry = self.new_entry(EntryKind::File { size }, 0o600, None);
                entry.mtime = mtime;
                self.put(&target, entry, Content::File(file), None);
            }
            Selected::Directory {
                relative,
                path,
                target,
            } => self.copy_dir(&path, &relative, &target)?,
            Selected::Entry {
                relative,
                path,
                meta,
                target,
                dest,
            } => {
                let unpack = self.request.step.add
                    && matches!(self.request.source, Source::Context(_))
                    && fetch::is_archive(&path);
                if unpack {
                    return self.unpack(&path, &relative, &dest);
                }
                let link = read_link_if_symlink(&meta, &path)?;
                let entry = self.entry_from(&path, &meta, link)?;
                let content = self.content_of(&entry, path, &meta);
                let inode = shared_inode(&meta);
                self.put(&target, entry, content, inode);
            }
        }
        Ok(())
    }

    /// ADD of a local archive: its contents into `dest`, with the owners the archive
    /// gives them unless `--chown`.
    fn unpack(&mut self, archive: &Path, relative: &str, dest: &str) -> Result<(), CopyError> {
        let unpacked = self
            .request
            .scratch
            .join(format!("unpacked-{}", self.entries.len()));
        fs::create_dir_all(&unpacked).map_err(at(&unpacked))?;
        let file = File::open(archive).map_err(at(archive))?;
        let mut reader = layers::decompressing_reader(file).map_err(at(archive))?;
        layers::extract(&mut reader, &unpacked, self.request.extract_limits).map_err(|source| {
            CopyError::Unpack {
                origin: relative.to_string(),
                source: Box::new(source),
            }
        })?;
        let saved = self.owner;
        if matches!(self.owner, Owner::Fixed(0, 0)) && self.request.step.chown.is_none() {
            self.owner = Owner::Keep;
        }
        let result = self.copy_dir(&unpacked, "", dest);
        self.owner = saved;
        result
    }

    /// Copies what is in `dir` (not `dir` itself) to the image directory `target`.
    fn copy_dir(&mut self, dir: &Path, relative: &str, target: &str) -> Result<(), CopyError> {
        let dir_meta = fs::symlink_metadata(dir).map_err(at(dir))?;
        if target != "/" && !sources::is_dir_in_image(self.request, target) {
            let entry = self.entry_from(dir, &dir_meta, None)?;
            self.put(target, entry, Content::None, None);
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
        let chunks = walk_tree(dir, relative, context_ignore, &self.excludes, &list)?;
        let target = target.trim_end_matches('/');
        for found in chunks.into_iter().flatten() {
            let path = dir.join(&found.inner);
            let entry = self.entry_from(&path, &found.meta, found.link)?;
            let content = self.content_of(&entry, path, &found.meta);
            let inode = shared_inode(&found.meta);
            self.put(&format!("{target}/{}", found.inner), entry, content, inode);
        }
        Ok(())
    }

    /// Where the bytes of `entry`, found at `path` with `meta`, come from.
    fn content_of(&self, entry: &Entry, path: PathBuf, meta: &Metadata) -> Content {
        if !matches!(entry.kind, EntryKind::File { .. }) {
            return Content::None;
        }
        let stat = Stat::of(meta);
        let vouched = match (&self.request.source, self.request.hasher) {
            (Source::Context(_), Some(hasher)) => hasher.vouched_hash(&path, stat),
            _ => None,
        };
        match vouched {
            Some(hash) => Content::ContextFile { path, stat, hash },
            None => Content::File(path),
        }
    }

    /// The entry for the source at `path`, with the extended attributes COPY keeps.
    fn entry_from(
        &self,
        path: &Path,
        meta: &Metadata,
        link: Option<Vec<u8>>,
    ) -> Result<Entry, CopyError> {
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
        // Only files and directories: a symlink cannot hold `user.*` attributes, nor a
        // device or FIFO a capability, and skipping them saves a system call each.
        if matches!(entry.kind, EntryKind::File { .. } | EntryKind::Directory) {
            let read = || layers::copied_xattrs(path).map_err(|e| CopyError::Xattrs(Box::new(e)));
            // The key's walk of the context has just read them, or the cache had them.
            entry.xattrs = match (&self.request.source, self.request.hasher) {
                (Source::Context(_), Some(hasher)) => {
                    let is_dir = matches!(entry.kind, EntryKind::Directory);
                    hasher.copied_xattrs(path, is_dir, Stat::of(meta), read)?
                }
                _ => read()?,
            };
        }
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
    fn put(&mut self, target: &str, mut entry: Entry, content: Content, inode: Option<(u64, u64)>) {
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
        entry.path = path.into_bytes();
        self.entries.insert(
            entry.path.clone(),
            Planned {
                entry,
                content,
                inode,
            },
        );
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
                    inode: None,
                },
            );
        }
        self.resolved_dirs.insert(dir, resolved.clone());
        resolved
    }
}

/// An entry found under a copied directory.
struct Walked {
    /// Its path under the directory.
    inner: String,
    meta: Metadata,
    link: Option<Vec<u8>>,
}

/// A regular file's device and inode when it has several names.
fn shared_inode(meta: &Metadata) -> Option<(u64, u64)> {
    (meta.file_type().is_file() && meta.nlink() > 1).then(|| (meta.dev(), meta.ino()))
}

fn read_link_if_symlink(meta: &Metadata, path: &Path) -> Result<Option<Vec<u8>>, CopyError> {
    if !meta.file_type().is_symlink() {
        return Ok(None);
    }
    let target = fs::read_link(path).map_err(at(path))?;
    Ok(Some(target.as_os_str().as_bytes().to_vec()))
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
) -> Result<Vec<Vec<Walked>>, CopyError> {
    let decide = |inner: &str, is_dir: bool| {
        walk_decision(
            ignore,
            excludes,
            &join_relative(relative, inner),
            inner,
            is_dir,
        )
    };
    let listing = |path: &Path, meta: &Metadata| -> Result<Listing, CopyError> {
        list(path, meta).map_err(at(path))
    };
    // One subtree, depth first, in order: each directory's entries go on the stack in
    // reverse so that they come off it by name.
    let subtree = |name: &str, is_dir: bool| -> Result<Vec<Walked>, CopyError> {
        let mut out = Vec::new();
        let mut stack: Vec<(String, bool)> = vec![(name.to_string(), is_dir)];
        while let Some((inner, is_dir)) = stack.pop() {
            let take = match decide(&inner, is_dir) {
                Walk::SkipTree => continue,
                Walk::Skip if !is_dir => continue,
                Walk::Skip => false,
                Walk::Take => true,
            };
            let path = dir.join(&inner);
            let meta = fs::symlink_metadata(&path).map_err(at(&path))?;
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
    let dir_meta = fs::symlink_metadata(dir).map_err(at(dir))?;
    let top = listing(dir, &dir_meta)?;
    top.par_iter()
        .map(|(name, is_dir)| subtree(name, *is_dir))
        .collect()
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
            Content::File(path) => {
                let mut file =
                    File::open(&path).map_err(|source| BuildError::Io { path, source })?;
                writer.add(&planned.entry, Some(&mut file))?;
            }
            Content::ContextFile { path, stat, hash } => {
                let file = File::open(&path).map_err(|source| BuildError::Io { path, source })?;
                let unchanged = || file.metadata().is_ok_and(|meta| Stat::of(&meta) == stat);
                if unchanged() {
                    let mut still_holds = unchanged;
                    writer.add_vouched(
                        &planned.entry,
                        &mut &file,
                        blake3::Hash::from_bytes(hash),
                        &mut still_holds,
                    )?;
                } else {
                    writer.add(&planned.entry, Some(&mut &file))?;
                }
            }
        }
    }
    let layer = writer.finish_with_snapshot(store)?;
    staging.keep();
    Ok(layer)
}
