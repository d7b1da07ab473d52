//! A COPY's cache key from its sources alone: every entry the step selects with its
//! origin, kind, mode (after `--chmod`), link target, content hash and the extended
//! attributes the layer keeps (a changed capability is a changed image), then which of
//! them are names of one file (the layer keeps them hard-linked), folded into one
//! digest. Directory sources are walked through the context's stat and listing cache,
//! one top-level entry per thread, with one path buffer each. Owners are left out (they
//! are the step's `--chown`, which the key holds); nothing about the destination is
//! asked, no owner name is looked up and no archive is unpacked.

use std::collections::HashMap;
use std::fs::{self, Metadata};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::super::context::{join_relative, IgnoreMatcher};
use super::super::hash::{hash_bytes, ContextHasher, FileId, Hash, Stat, Xattrs};
use super::sources::{self, Selected};
use super::{at, walk_decision, CopyError, CopyRequest, Source, Walk};
use crate::layers;

/// What a key holds of the entries of a COPY's sources, in the order they are met.
enum KeyUnit {
    /// A file, link or directory named by a source.
    One(FileInput),
    /// What a directory source holds, in chunks walked in parallel, each with its digest.
    Tree(Vec<(Hash, Vec<FileInput>)>),
}

/// The files behind a COPY's cache key: their digest, and (when asked for) each entry.
///
/// With `detail` false only the digest is made: the list of entries (which explains a
/// miss and goes into its record) is asked for again, with `detail`, on a miss.
pub(crate) fn key_inputs(
    request: &CopyRequest<'_>,
    hasher: &ContextHasher,
    detail: bool,
) -> Result<FileInputs, CopyError> {
    let selection = sources::select(request)?;
    let ignore = match request.source {
        Source::Context(context) if !context.ignore.is_empty() => Some(&context.ignore),
        _ => None,
    };
    let chmod = request.step.chmod;
    let one = |origin: String, kind: u8, mode: u32, link: Vec<u8>, hash: Hash, xattrs| {
        KeyUnit::One(FileInput {
            origin,
            kind,
            mode: match chmod {
                Some(chmod) if kind != b'l' => chmod,
                _ => mode,
            },
            link: String::from_utf8_lossy(&link).into_owned(),
            hash,
            xattrs,
            linked_to: None,
        })
    };
    let mut units = Vec::new();
    let mut linked = Vec::new();
    for item in selection.items {
        match item {
            Selected::Text { name, content, .. } => units.push(one(
                format!("<<{name}"),
                b'f',
                0o644,
                Vec::new(),
                hash_bytes(content.as_bytes()),
                Vec::new(),
            )),
            Selected::Download { name, file, .. } => {
                let hash = hasher.hash_file(&file, None)?;
                units.push(one(name, b'f', 0o600, Vec::new(), hash, Vec::new()));
            }
            Selected::Entry {
                relative,
                path,
                meta,
                ..
            } => {
                let kind = kind_of(&meta);
                let hash = match kind {
                    b'f' => hasher.hash_file(&path, Some(Stat::of(&meta)))?,
                    _ => [0; 32],
                };
                let link = match kind {
                    b'l' => fs::read_link(&path)
                        .map_err(at(&path))?
                        .as_os_str()
                        .as_bytes()
                        .to_vec(),
                    _ => Vec::new(),
                };
                let xattrs = cached_xattrs_of(hasher, kind, &path, &meta)?;
                if kind == b'f' && meta.nlink() > 1 {
                    linked.push(Linked {
                        inode: (meta.dev(), meta.ino()),
                        origin: relative.clone(),
                    });
                }
                units.push(one(
                    relative,
                    kind,
                    meta.mode() & 0o7777,
                    link,
                    hash,
                    xattrs,
                ));
            }
            Selected::Directory {
                relative,
                path,
                target,
            } => {
                if target != "/" {
                    let meta = fs::symlink_metadata(&path).map_err(at(&path))?;
                    units.push(one(
                        relative.clone(),
                        b'd',
                        meta.mode() & 0o7777,
                        Vec::new(),
                        [0; 32],
                        cached_xattrs_of(hasher, b'd', &path, &meta)?,
                    ));
                }
                let Some(dir) = path.strip_prefix(hasher.root()).ok().and_then(Path::to_str) else {
                    return Err(CopyError::NotUtf8(path));
                };
                let walk = KeyWalk {
                    dir,
                    relative: &relative,
                    ignore,
                    excludes: &selection.excludes,
                    hasher,
                    chmod,
                    detail,
                };
                let mut chunks = Vec::new();
                for (digest, inputs, links) in walk.top()? {
                    chunks.push((digest, inputs));
                    linked.extend(links);
                }
                units.push(KeyUnit::Tree(chunks));
            }
        }
    }
    let groups = link_groups(linked);
    let mut digest = blake3::Hasher::new();
    for unit in &units {
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
    // Which names are one file, by name only: inode numbers change with every checkout.
    digest.update(b"h");
    digest.update(&(groups.len() as u64).to_le_bytes());
    for group in &groups {
        digest.update(&(group.len() as u64).to_le_bytes());
        for origin in group {
            digest.update(&(origin.len() as u64).to_le_bytes());
            digest.update(origin.as_bytes());
        }
    }
    if detail {
        mark_links(&mut units, &groups);
    }
    Ok(FileInputs {
        digest: *digest.finalize().as_bytes(),
        units,
    })
}

/// A selected file with other names, by its device and inode.
struct Linked {
    inode: FileId,
    origin: String,
}

/// The names of each file selected more than once, each group sorted, groups sorted.
fn link_groups(linked: Vec<Linked>) -> Vec<Vec<String>> {
    let mut by_inode: HashMap<FileId, Vec<String>> = HashMap::new();
    for one in linked {
        by_inode.entry(one.inode).or_default().push(one.origin);
    }
    let mut groups: Vec<Vec<String>> = by_inode
        .into_values()
        .filter(|group| group.len() > 1)
        .map(|mut group| {
            group.sort();
            group
        })
        .collect();
    groups.sort();
    groups
}

/// Marks each entry that is another name of an earlier one with that name, so that an
/// explanation names a change of links as a changed file.
fn mark_links(units: &mut [KeyUnit], groups: &[Vec<String>]) {
    let mut first_of: HashMap<&str, &str> = HashMap::new();
    for group in groups {
        for origin in &group[1..] {
            if *origin != group[0] {
                first_of.insert(origin, &group[0]);
            }
        }
    }
    if first_of.is_empty() {
        return;
    }
    let mark = |input: &mut FileInput| {
        if let Some(first) = first_of.get(input.origin.as_str()) {
            input.linked_to = Some((*first).to_string());
        }
    };
    for unit in units {
        match unit {
            KeyUnit::One(input) => mark(input),
            KeyUnit::Tree(chunks) => chunks
                .iter_mut()
                .flat_map(|(_, inputs)| inputs.iter_mut())
                .for_each(mark),
        }
    }
}

/// The extended attributes the layer will hold for an entry of `kind` at `path`: only
/// files and directories get them (as the layer writer reads them).
fn xattrs_of(kind: u8, path: &Path) -> Result<Xattrs, CopyError> {
    match kind {
        b'f' | b'd' => layers::copied_xattrs(path).map_err(|e| CopyError::Xattrs(Box::new(e))),
        _ => Ok(Vec::new()),
    }
}

/// [`xattrs_of`] through the context's stat cache, for an entry whose `lstat` is `meta`.
fn cached_xattrs_of(
    hasher: &ContextHasher,
    kind: u8,
    path: &Path,
    meta: &Metadata,
) -> Result<Xattrs, CopyError> {
    match kind {
        b'f' | b'd' => {
            hasher.copied_xattrs(path, kind == b'd', Stat::of(meta), || xattrs_of(kind, path))
        }
        _ => Ok(Vec::new()),
    }
}

/// An entry's kind as a key records it (a socket counts as a FIFO, as the layer has it).
fn kind_of(meta: &Metadata) -> u8 {
    let file_type = meta.file_type();
    if file_type.is_dir() {
        b'd'
    } else if file_type.is_file() {
        b'f'
    } else if file_type.is_symlink() {
        b'l'
    } else if file_type.is_char_device() {
        b'c'
    } else if file_type.is_block_device() {
        b'b'
    } else {
        b'p'
    }
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

/// A [`Chunk`] once walked: its digest, entries and files with other names.
type WalkedChunk = (Hash, Vec<FileInput>, Vec<Linked>);

/// What the walk of one top-level entry found: how many entries were taken, their
/// digest, the files among them with other names, and (with `detail`) the entries.
struct Chunk {
    count: usize,
    digest: blake3::Hasher,
    inputs: Vec<FileInput>,
    links: Vec<Linked>,
}

/// Where a walk is: relative to the context's root, to the walked directory, and as
/// the source names it.
struct WalkPosition {
    path: String,
    inner: String,
    origin: String,
}

impl KeyWalk<'_> {
    /// The walked directory's top-level entries, each with what it holds: only what is
    /// taken counts (a left-out entry adds no empty chunk).
    fn top(&self) -> Result<Vec<WalkedChunk>, CopyError> {
        let failed = |source| CopyError::Io {
            path: PathBuf::from(self.dir),
            source,
        };
        let (_, dir_stat, _) = self.hasher.lstat_at(self.dir).map_err(failed)?;
        let top = self
            .hasher
            .list_dir_at(self.dir, dir_stat)
            .map_err(failed)?;
        top.par_iter()
            .map(|(name, is_dir)| self.subtree(name, *is_dir))
            .filter(|chunk| !matches!(chunk, Ok(Chunk { count: 0, .. })))
            .map(|chunk| {
                chunk.map(|chunk| {
                    let digest = *chunk.digest.finalize().as_bytes();
                    (digest, chunk.inputs, chunk.links)
                })
            })
            .collect()
    }

    /// One top-level entry and everything below it.
    fn subtree(&self, name: &str, is_dir: bool) -> Result<Chunk, CopyError> {
        let mut at = WalkPosition {
            path: join_relative(self.dir, name),
            inner: name.to_string(),
            origin: join_relative(self.relative, name),
        };
        let mut chunk = Chunk {
            count: 0,
            digest: blake3::Hasher::new(),
            inputs: Vec::new(),
            links: Vec::new(),
        };
        self.visit(&mut at, is_dir, &mut chunk)?;
        Ok(chunk)
    }

    fn visit(
        &self,
        at: &mut WalkPosition,
        is_dir: bool,
        chunk: &mut Chunk,
    ) -> Result<(), CopyError> {
        let take = match walk_decision(self.ignore, self.excludes, &at.origin, &at.inner, is_dir) {
            Walk::SkipTree => return Ok(()),
            Walk::Skip if !is_dir => return Ok(()),
            Walk::Skip => false,
            Walk::Take => true,
        };
        let failed = |source| CopyError::Io {
            path: PathBuf::from(&at.path),
            source,
        };
        let (st_mode, stat, inode) = self.hasher.lstat_at(&at.path).map_err(failed)?;
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
            let xattrs = match kind {
                b'f' | b'd' => self.hasher.copied_xattrs_at(&at.path, is_dir, stat, || {
                    xattrs_of(kind, &self.hasher.root().join(&at.path))
                })?,
                _ => Vec::new(),
            };
            feed_leaf(
                &mut chunk.digest,
                at.origin.as_bytes(),
                kind,
                mode,
                link,
                &hash,
                &xattrs,
            );
            chunk.count += 1;
            if let Some(inode) = inode {
                chunk.links.push(Linked {
                    inode,
                    origin: at.origin.clone(),
                });
            }
            if self.detail {
                chunk.inputs.push(FileInput {
                    origin: at.origin.clone(),
                    kind,
                    mode,
                    link: String::from_utf8_lossy(link).into_owned(),
                    hash,
                    xattrs,
                    linked_to: None,
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
            let visited = self.visit(at, child_is_dir, chunk);
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
    xattrs: &[(String, Vec<u8>)],
) {
    digest.update(&(origin.len() as u64).to_le_bytes());
    digest.update(origin);
    digest.update(&[kind]);
    digest.update(&mode.to_le_bytes());
    digest.update(&(link.len() as u64).to_le_bytes());
    digest.update(link);
    digest.update(hash);
    feed_xattrs(digest, xattrs);
}

fn feed_xattrs(digest: &mut blake3::Hasher, xattrs: &[(String, Vec<u8>)]) {
    digest.update(&(xattrs.len() as u64).to_le_bytes());
    for (name, value) in xattrs {
        digest.update(&(name.len() as u64).to_le_bytes());
        digest.update(name.as_bytes());
        digest.update(&(value.len() as u64).to_le_bytes());
        digest.update(value);
    }
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
    xattrs: Xattrs,
    /// The first name of the file this entry is another name of (explanations only: the
    /// digest has the groups of names).
    linked_to: Option<String>,
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
            &self.xattrs,
        );
    }

    /// `f 644 1f2e3d4c5b6a7988`, with ` -> target` for links and ` xattrs <hash>` for
    /// extended attributes: what `lade cache inspect` shows and what explanations
    /// compare (so a changed capability is named as a changed file).
    pub(crate) fn summary(&self) -> String {
        let hex: String = self.hash[..8].iter().map(|b| format!("{b:02x}")).collect();
        let mut text = format!("{} {:o} {hex}", self.kind as char, self.mode);
        if !self.link.is_empty() {
            text.push_str(" -> ");
            text.push_str(&self.link);
        }
        if let Some(first) = &self.linked_to {
            text.push_str(" = ");
            text.push_str(first);
        }
        if !self.xattrs.is_empty() {
            let mut digest = blake3::Hasher::new();
            feed_xattrs(&mut digest, &self.xattrs);
            let hex: String = digest.finalize().as_bytes()[..4]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            text.push_str(" xattrs ");
            text.push_str(&hex);
        }
        text
    }
}
