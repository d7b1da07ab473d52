//! Hashing build-context files for cache keys: blake3 of each file's content, computed in
//! parallel, with a stat cache kept in the store so an unchanged file is never read
//! again. A file is trusted unchanged only if its size, mtime, ctime and inode all match;
//! a file modified in the last two seconds is never cached, so a change within the
//! file system's timestamp granularity cannot hide.
//!
//! The same cache keeps each directory's listing, trusted while the directory's own
//! size, times and inode are unchanged (adding, removing or renaming an entry changes
//! them), as git's untracked cache does: walking an unchanged tree then costs one `lstat`
//! per entry and no directory reads.
//!
//! Each file's and directory's extended attributes (those COPY carries) are kept beside
//! its hash or listing under the same `lstat`: setting or removing an attribute changes
//! the ctime, so an unchanged entry needs no `llistxattr` either.

use std::collections::HashMap;
use std::fs::{self, File};
use std::hash::BuildHasher;

/// Paths and their hashes are looked up once per context entry on every build: a fast
/// hasher (seeded per process) rather than SipHash.
type FastState = foldhash::fast::RandomState;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::store::Store;

/// A blake3 hash.
pub(crate) type Hash = [u8; 32];

/// A file of the context that could not be read to hash it.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub(crate) struct UnreadableFile {
    pub path: PathBuf,
    pub source: std::io::Error,
}

impl UnreadableFile {
    fn at(path: &Path) -> impl FnOnce(std::io::Error) -> UnreadableFile + '_ {
        move |source| UnreadableFile {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A file's device and inode: which names are one file.
pub(crate) type FileId = (u64, u64);

/// What decides whether a file or directory may have changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    inode: u64,
}

impl Stat {
    pub(crate) fn of(meta: &fs::Metadata) -> Stat {
        Stat {
            size: meta.len(),
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            ctime_ns: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
            inode: meta.ino(),
        }
    }
}

/// Files larger than this are hashed with memory maps and several threads.
const MMAP_ABOVE: u64 = 4 << 20;
/// Modified this recently: not trusted by the next build.
const RACY_NS: i64 = 2_000_000_000;
const MAGIC: &[u8; 4] = b"LSC3";

/// A directory's entries, by name, with whether each is a directory.
pub(crate) type Listing = Vec<(String, bool)>;

/// Extended attributes by name, sorted.
pub(crate) type Xattrs = Vec<(String, Vec<u8>)>;

/// In an encoded record: the entry's extended attributes were never read.
const XATTRS_UNKNOWN: u32 = u32::MAX;

/// What this build learned, by path relative to the context.
#[derive(Debug, Default)]
struct Learned {
    files: HashMap<Vec<u8>, (Stat, Hash)>,
    dirs: HashMap<Vec<u8>, (Stat, Listing)>,
    /// Of files and directories both: a path names one or the other.
    xattrs: HashMap<Vec<u8>, (Stat, Xattrs)>,
}

/// The stored cache, read in place: only the offsets of its records are indexed (by a
/// hash of their path), so loading costs one pass and no allocation per entry.
#[derive(Debug, Default)]
struct Known {
    data: Vec<u8>,
    /// Offsets of the file records, and of the directory records, by path hash. Two
    /// paths with one hash leave one of them out: it is then hashed again, no more.
    files: HashMap<u64, usize, FastState>,
    dirs: HashMap<u64, usize, FastState>,
    paths: FastState,
}

impl Known {
    fn path_at(&self, offset: usize) -> &[u8] {
        let mut reader = Reader(&self.data[offset..]);
        reader.bytes().unwrap_or_default()
    }

    /// Where the fields after `path`'s record header start.
    fn find(&self, index: &HashMap<u64, usize, FastState>, path: &[u8]) -> Option<usize> {
        let offset = *index.get(&self.paths.hash_one(path))?;
        (self.path_at(offset) == path).then_some(offset + 4 + path.len())
    }

    fn stat_at(&self, at: usize) -> Option<Stat> {
        Reader(&self.data[at..]).stat()
    }

    fn file(&self, path: &[u8]) -> Option<(Stat, Hash)> {
        let at = self.find(&self.files, path)?;
        let hash: Hash = self.data.get(at + 32..at + 64)?.try_into().ok()?;
        Some((self.stat_at(at)?, hash))
    }

    /// The extended attributes recorded with the file or directory at `path`, if they
    /// were read, with the stat they go with.
    fn xattrs(&self, path: &[u8], is_dir: bool) -> Option<(Stat, Xattrs)> {
        let (at, fields) = if is_dir {
            let at = self.find(&self.dirs, path)?;
            (at, at + 32)
        } else {
            let at = self.find(&self.files, path)?;
            (at, at + 64)
        };
        let xattrs = Reader(self.data.get(fields..)?).xattrs()??;
        Some((self.stat_at(at)?, xattrs))
    }

    fn dir(&self, path: &[u8]) -> Option<(Stat, Listing)> {
        let at = self.find(&self.dirs, path)?;
        let stat = self.stat_at(at)?;
        let mut reader = Reader(self.data.get(at + 32..)?);
        reader.xattrs()?;
        let count = reader.u32()?;
        let mut listing = Vec::with_capacity(count.min(1 << 16));
        for _ in 0..count {
            let name = String::from_utf8(reader.bytes()?.to_vec()).ok()?;
            let is_dir = reader.take(1)?[0] != 0;
            listing.push((name, is_dir));
        }
        Some((stat, listing))
    }

    /// Every record, decoded (to write the cache back).
    fn all(&self) -> Learned {
        let mut all = Learned::default();
        for &offset in self.files.values() {
            let path = self.path_at(offset);
            if let Some(value) = self.file(path) {
                all.files.insert(path.to_vec(), value);
            }
            if let Some(value) = self.xattrs(path, false) {
                all.xattrs.insert(path.to_vec(), value);
            }
        }
        for &offset in self.dirs.values() {
            let path = self.path_at(offset);
            if let Some(value) = self.dir(path) {
                all.dirs.insert(path.to_vec(), value);
            }
            if let Some(value) = self.xattrs(path, true) {
                all.xattrs.insert(path.to_vec(), value);
            }
        }
        all
    }
}

/// Hashes context files and lists context directories, remembering what it learns.
pub(crate) struct ContextHasher {
    root: PathBuf,
    /// The context's root, open: entries are looked up relative to it, a shorter walk
    /// through the kernel's path lookup than from `/` each time.
    root_fd: Option<OwnedFd>,
    key: String,
    known: Known,
    learned: Mutex<Learned>,
    /// Files whose content was read.
    read: AtomicUsize,
    racy_ns: i64,
}

impl ContextHasher {
    /// Loads the stat cache of the context at `root` (files are named under `root` as
    /// given; the cache is stored under its canonical path).
    pub(crate) fn load(store: &Store, root: &Path) -> ContextHasher {
        let key = fs::canonicalize(root)
            .unwrap_or_else(|_| root.to_path_buf())
            .to_string_lossy()
            .into_owned();
        let known = store
            .stat_cache(&key)
            .ok()
            .flatten()
            .and_then(decode)
            .unwrap_or_default();
        let root_fd = nix::fcntl::open(
            root,
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .ok();
        ContextHasher {
            root: root.to_path_buf(),
            root_fd,
            key,
            known,
            learned: Mutex::new(Learned::default()),
            read: AtomicUsize::new(0),
            racy_ns: RACY_NS,
        }
    }

    /// How many files this hasher has read.
    #[cfg(test)]
    pub(crate) fn files_read(&self) -> usize {
        self.read.load(Ordering::Relaxed)
    }

    fn relative<'a>(&self, path: &'a Path) -> Option<&'a [u8]> {
        path.strip_prefix(&self.root)
            .ok()
            .map(|p| p.as_os_str().as_bytes())
    }

    fn learn(&self) -> std::sync::MutexGuard<'_, Learned> {
        self.learned.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `lstat` of the context entry at `relative` (`""` for the root): its type and mode
    /// bits (`st_mode`), what tells whether it changed, and for a regular file with
    /// several names its device and inode (which of a COPY's files are hard links).
    pub(crate) fn lstat_at(&self, relative: &str) -> std::io::Result<(u32, Stat, Option<FileId>)> {
        let name = if relative.is_empty() { "." } else { relative };
        let stat = match &self.root_fd {
            Some(fd) => {
                nix::sys::stat::fstatat(fd.as_fd(), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
                    .map_err(std::io::Error::from)?
            }
            None => nix::sys::stat::lstat(&self.root.join(name)).map_err(std::io::Error::from)?,
        };
        Ok((
            stat.st_mode,
            Stat {
                size: stat.st_size as u64,
                mtime_ns: stat.st_mtime * 1_000_000_000 + stat.st_mtime_nsec,
                ctime_ns: stat.st_ctime * 1_000_000_000 + stat.st_ctime_nsec,
                inode: stat.st_ino,
            },
            (stat.st_mode & libc::S_IFMT == libc::S_IFREG && stat.st_nlink > 1)
                .then_some((stat.st_dev, stat.st_ino)),
        ))
    }

    /// The target of the symbolic link at `relative`.
    pub(crate) fn read_link_at(&self, relative: &str) -> std::io::Result<Vec<u8>> {
        Ok(fs::read_link(self.root.join(relative))?
            .into_os_string()
            .into_vec())
    }

    /// [`ContextHasher::hash_file`] for a file named relative to the context.
    pub(crate) fn hash_file_at(&self, relative: &str, stat: Stat) -> Result<Hash, UnreadableFile> {
        if let Some(hash) = self.cached_hash(relative.as_bytes(), stat) {
            return Ok(hash);
        }
        let path = self.root.join(relative);
        let hash = hash_contents(&path, stat.size).map_err(UnreadableFile::at(&path))?;
        self.read.fetch_add(1, Ordering::Relaxed);
        self.learn()
            .files
            .insert(relative.as_bytes().to_vec(), (stat, hash));
        Ok(hash)
    }

    /// [`ContextHasher::list_dir`] for a directory named relative to the context.
    pub(crate) fn list_dir_at(&self, relative: &str, stat: Stat) -> std::io::Result<Listing> {
        if let Some(listing) = self.cached_listing(relative.as_bytes(), stat) {
            return Ok(listing);
        }
        let listing = read_listing(&self.root.join(relative))?;
        self.learn()
            .dirs
            .insert(relative.as_bytes().to_vec(), (stat, listing.clone()));
        Ok(listing)
    }

    /// Whether an entry with `stat` has not changed for longer than a timestamp could
    /// hide: only then does its stat vouch for what was read under it.
    fn settled(&self, stat: &Stat) -> bool {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        now - stat.mtime_ns > self.racy_ns && now - stat.ctime_ns > self.racy_ns
    }

    /// The hash of the file at `relative` under `stat`, from the stored cache or from
    /// what this build learned (another step's key, or the look-ahead of a stage, may
    /// have hashed it already; trusted only for a settled file, as the stored cache).
    fn cached_hash(&self, relative: &[u8], stat: Stat) -> Option<Hash> {
        if let Some((known, hash)) = self.known.file(relative) {
            if known == stat {
                return Some(hash);
            }
        }
        if !self.settled(&stat) {
            return None;
        }
        let learned = self.learn();
        let (learned_stat, hash) = learned.files.get(relative)?;
        (*learned_stat == stat).then_some(*hash)
    }

    /// As [`ContextHasher::cached_hash`], for a directory's listing.
    fn cached_listing(&self, relative: &[u8], stat: Stat) -> Option<Listing> {
        if let Some((known, listing)) = self.known.dir(relative) {
            if known == stat {
                return Some(listing);
            }
        }
        if !self.settled(&stat) {
            return None;
        }
        let learned = self.learn();
        let (learned_stat, listing) = learned.dirs.get(relative)?;
        (*learned_stat == stat).then(|| listing.clone())
    }

    /// The extended attributes COPY carries of the file or directory at `relative`
    /// (whose `lstat` is `stat`): from the cache when the entry is unchanged, else
    /// from `read`.
    pub(crate) fn copied_xattrs_at<E>(
        &self,
        relative: &str,
        is_dir: bool,
        stat: Stat,
        read: impl FnOnce() -> Result<Xattrs, E>,
    ) -> Result<Xattrs, E> {
        self.cached_xattrs(Some(relative.as_bytes()), is_dir, stat, read)
    }

    /// [`ContextHasher::copied_xattrs_at`] for an entry named by its path.
    pub(crate) fn copied_xattrs<E>(
        &self,
        path: &Path,
        is_dir: bool,
        stat: Stat,
        read: impl FnOnce() -> Result<Xattrs, E>,
    ) -> Result<Xattrs, E> {
        self.cached_xattrs(self.relative(path), is_dir, stat, read)
    }

    fn cached_xattrs<E>(
        &self,
        relative: Option<&[u8]>,
        is_dir: bool,
        stat: Stat,
        read: impl FnOnce() -> Result<Xattrs, E>,
    ) -> Result<Xattrs, E> {
        let Some(relative) = relative else {
            return read();
        };
        if let Some((known, xattrs)) = self.known.xattrs(relative, is_dir) {
            if known == stat {
                return Ok(xattrs);
            }
        }
        if self.settled(&stat) {
            if let Some((learned, xattrs)) = self.learn().xattrs.get(relative) {
                if *learned == stat {
                    return Ok(xattrs.clone());
                }
            }
        }
        let xattrs = read()?;
        self.learn()
            .xattrs
            .insert(relative.to_vec(), (stat, xattrs.clone()));
        Ok(xattrs)
    }

    /// The content hash of the file at `path` while its `lstat` is `stat`: known only
    /// when the cache or this build hashed it under that very stat, and the file has
    /// not changed for longer than a timestamp could hide (as the cache trusts files).
    pub(crate) fn vouched_hash(&self, path: &Path, stat: Stat) -> Option<Hash> {
        let relative = self.relative(path)?;
        if !self.settled(&stat) {
            return None;
        }
        self.cached_hash(relative, stat)
    }

    /// The root of the context as the hasher names files under it.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// The content hash of a file, read only when the cache cannot vouch for it. The
    /// caller passes the file's `lstat` when it has it.
    pub(crate) fn hash_file(
        &self,
        path: &Path,
        stat: Option<Stat>,
    ) -> Result<Hash, UnreadableFile> {
        let stat = match stat {
            Some(stat) => stat,
            None => Stat::of(&fs::metadata(path).map_err(UnreadableFile::at(path))?),
        };
        let relative = self.relative(path);
        if let Some(hash) = relative.and_then(|r| self.cached_hash(r, stat)) {
            return Ok(hash);
        }
        let hash = hash_contents(path, stat.size).map_err(UnreadableFile::at(path))?;
        self.read.fetch_add(1, Ordering::Relaxed);
        if let Some(relative) = relative {
            self.learn().files.insert(relative.to_vec(), (stat, hash));
        }
        Ok(hash)
    }

    /// The entries of directory `path` (whose `lstat` is `meta`), sorted by name: from
    /// the cache when the directory is unchanged, else read.
    pub(crate) fn list_dir(&self, path: &Path, meta: &fs::Metadata) -> std::io::Result<Listing> {
        let stat = Stat::of(meta);
        let relative = self.relative(path);
        if let Some(listing) = relative.and_then(|r| self.cached_listing(r, stat)) {
            return Ok(listing);
        }
        let listing = read_listing(path)?;
        if let Some(relative) = relative {
            self.learn()
                .dirs
                .insert(relative.to_vec(), (stat, listing.clone()));
        }
        Ok(listing)
    }

    /// Writes the cache back when this build learned something.
    pub(crate) fn save(&self, store: &Store) {
        let learned = self.learn();
        if learned.files.is_empty() && learned.dirs.is_empty() && learned.xattrs.is_empty() {
            return;
        }
        let settled = |stat: &Stat| self.settled(stat);
        let mut all = self.known.all();
        all.files
            .extend(learned.files.iter().map(|(k, v)| (k.clone(), *v)));
        all.dirs
            .extend(learned.dirs.iter().map(|(k, v)| (k.clone(), v.clone())));
        all.xattrs
            .extend(learned.xattrs.iter().map(|(k, v)| (k.clone(), v.clone())));
        let mut files: Vec<(&[u8], &(Stat, Hash))> = all
            .files
            .iter()
            .filter(|(_, (stat, _))| settled(stat))
            .map(|(k, v)| (k.as_slice(), v))
            .collect();
        files.sort_by(|a, b| a.0.cmp(b.0));
        let mut dirs: Vec<(&[u8], &(Stat, Listing))> = all
            .dirs
            .iter()
            .filter(|(_, (stat, _))| settled(stat))
            .map(|(k, v)| (k.as_slice(), v))
            .collect();
        dirs.sort_by(|a, b| a.0.cmp(b.0));
        let _ = store.set_stat_cache(&self.key, &encode(&files, &dirs, &all.xattrs));
    }
}

/// A directory's entries sorted by name (bytes), as walkdir's `sort_by_file_name` gives.
pub(crate) fn read_listing(path: &Path) -> std::io::Result<Listing> {
    let mut listing: Listing = fs::read_dir(path)?
        .map(|entry| {
            let entry = entry?;
            let is_dir = entry.file_type()?.is_dir();
            Ok((entry.file_name().to_string_lossy().into_owned(), is_dir))
        })
        .collect::<std::io::Result<_>>()?;
    listing.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    Ok(listing)
}

fn hash_contents(path: &Path, size: u64) -> std::io::Result<Hash> {
    let mut hasher = blake3::Hasher::new();
    if size > MMAP_ABOVE {
        hasher.update_mmap_rayon(path)?;
    } else {
        // The `size` bytes the stat describes, which are what a layer takes of the file
        // (it copies exactly the size it was planned with), in one read: through
        // `take`, as `File::read_to_end` would first ask the file its size and
        // position, then read once more to find the end.
        let file = File::open(path)?;
        let mut buf = Vec::with_capacity(size as usize);
        file.take(size).read_to_end(&mut buf)?;
        hasher.update(&buf);
    }
    Ok(*hasher.finalize().as_bytes())
}

pub(crate) fn hash_bytes(bytes: &[u8]) -> Hash {
    *blake3::hash(bytes).as_bytes()
}

fn put_stat(out: &mut Vec<u8>, stat: &Stat) {
    out.extend_from_slice(&stat.size.to_le_bytes());
    out.extend_from_slice(&stat.mtime_ns.to_le_bytes());
    out.extend_from_slice(&stat.ctime_ns.to_le_bytes());
    out.extend_from_slice(&stat.inode.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// An entry's extended attributes, if they were read under `stat`: their count, then
/// each name and value; [`XATTRS_UNKNOWN`] where they were not.
fn put_xattrs(out: &mut Vec<u8>, stat: &Stat, xattrs: Option<&(Stat, Xattrs)>) {
    match xattrs.filter(|(read_under, _)| read_under == stat) {
        Some((_, xattrs)) => {
            out.extend_from_slice(&(xattrs.len() as u32).to_le_bytes());
            for (name, value) in xattrs {
                put_bytes(out, name.as_bytes());
                put_bytes(out, value);
            }
        }
        None => out.extend_from_slice(&XATTRS_UNKNOWN.to_le_bytes()),
    }
}

/// `LSC3`, the files (path, stat, hash, xattrs), then the directories (path, stat,
/// xattrs, entries).
fn encode(
    files: &[(&[u8], &(Stat, Hash))],
    dirs: &[(&[u8], &(Stat, Listing))],
    xattrs: &HashMap<Vec<u8>, (Stat, Xattrs)>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + files.len() * 100 + dirs.len() * 100);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(files.len() as u32).to_le_bytes());
    for (path, (stat, hash)) in files {
        put_bytes(&mut out, path);
        put_stat(&mut out, stat);
        out.extend_from_slice(hash);
        put_xattrs(&mut out, stat, xattrs.get(*path));
    }
    out.extend_from_slice(&(dirs.len() as u32).to_le_bytes());
    for (path, (stat, listing)) in dirs {
        put_bytes(&mut out, path);
        put_stat(&mut out, stat);
        put_xattrs(&mut out, stat, xattrs.get(*path));
        out.extend_from_slice(&(listing.len() as u32).to_le_bytes());
        for (name, is_dir) in listing {
            put_bytes(&mut out, name.as_bytes());
            out.push(u8::from(*is_dir));
        }
    }
    out
}

/// Reads the fields of an encoded cache.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.0.split_at_checked(n)?;
        self.0 = tail;
        Some(head)
    }

    fn u32(&mut self) -> Option<usize> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize)
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = self.u32()?;
        self.take(len)
    }

    /// An encoded entry's extended attributes: `Some(None)` where they were not read.
    fn xattrs(&mut self) -> Option<Option<Xattrs>> {
        let count = u32::from_le_bytes(self.take(4)?.try_into().ok()?);
        if count == XATTRS_UNKNOWN {
            return Some(None);
        }
        let mut xattrs = Vec::new();
        for _ in 0..count {
            let name = std::str::from_utf8(self.bytes()?).ok()?.to_string();
            xattrs.push((name, self.bytes()?.to_vec()));
        }
        Some(Some(xattrs))
    }

    fn stat(&mut self) -> Option<Stat> {
        Some(Stat {
            size: self.u64()?,
            mtime_ns: self.u64()? as i64,
            ctime_ns: self.u64()? as i64,
            inode: self.u64()?,
        })
    }
}

/// Indexes what [`encode`] wrote, checking that every record is whole and in order;
/// `None` for anything else (an old or damaged cache is simply not used).
fn decode(data: Vec<u8>) -> Option<Known> {
    let body = data.strip_prefix(MAGIC)?;
    let mut reader = Reader(body);
    let offset = |reader: &Reader<'_>| MAGIC.len() + body.len() - reader.0.len();
    let paths = FastState::default();
    let index = |reader: &mut Reader<'_>, rest: &dyn Fn(&mut Reader<'_>) -> Option<()>| {
        let count = reader.u32()?;
        let mut records =
            HashMap::with_capacity_and_hasher(count.min(1 << 20), FastState::default());
        let mut previous: Option<&[u8]> = None;
        for _ in 0..count {
            let at = offset(reader);
            let path = reader.bytes()?;
            if previous.is_some_and(|p| p >= path) {
                return None;
            }
            previous = Some(path);
            records.insert(paths.hash_one(path), at);
            rest(reader)?;
        }
        Some(records)
    };
    let files = index(&mut reader, &|r| {
        r.take(32 + 32)?;
        r.xattrs().map(drop)
    })?;
    let dirs = index(&mut reader, &|r| {
        r.take(32)?;
        r.xattrs()?;
        for _ in 0..r.u32()? {
            std::str::from_utf8(r.bytes()?).ok()?;
            r.take(1)?;
        }
        Some(())
    })?;
    if !reader.0.is_empty() {
        return None;
    }
    Some(Known {
        data,
        files,
        dirs,
        paths,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits until the clock file timestamps come from has moved past `path`'s ctime, so
    /// that the next change to it gets another one (that clock is coarse: a change made
    /// at once could carry the same time). Watched on a probe file elsewhere, so that
    /// `path`'s directory is left as it is.
    fn past_the_ctime_of(path: &Path) {
        let ctime = |m: &fs::Metadata| (m.ctime(), m.ctime_nsec());
        let before = ctime(&fs::metadata(path).unwrap());
        let probe_dir = tempfile::tempdir().unwrap();
        let probe = probe_dir.path().join("probe");
        for _ in 0..1_000_000 {
            fs::write(&probe, "").unwrap();
            if ctime(&fs::metadata(&probe).unwrap()) > before {
                return;
            }
        }
        panic!("the file-system clock did not move past {before:?}");
    }

    #[test]
    fn stat_cache_round_trips_and_rejects_garbage() {
        let stat = Stat {
            size: 5,
            mtime_ns: 1,
            ctime_ns: 2,
            inode: 3,
        };
        let entry = (stat, [7u8; 32]);
        let listing = (
            stat,
            vec![("b.txt".to_string(), false), ("c".to_string(), true)],
        );
        let other = (stat, [8u8; 32]);
        let xattrs: HashMap<Vec<u8>, (Stat, Xattrs)> = [
            (
                b"a/b.txt".to_vec(),
                (stat, vec![("user.x".to_string(), b"1".to_vec())]),
            ),
            (b"a".to_vec(), (stat, Vec::new())),
            // Read under another stat: not kept.
            (b"a/c.txt".to_vec(), (Stat { size: 6, ..stat }, Vec::new())),
        ]
        .into_iter()
        .collect();
        let decoded = decode(encode(
            &[(&b"a/b.txt"[..], &entry), (&b"a/c.txt"[..], &other)],
            &[(&b"a"[..], &listing)],
            &xattrs,
        ))
        .unwrap();
        assert_eq!(decoded.file(b"a/b.txt"), Some(entry));
        assert_eq!(decoded.file(b"a/c.txt"), Some(other));
        assert_eq!(decoded.file(b"a/d.txt"), None);
        assert_eq!(decoded.dir(b"a"), Some(listing.clone()));
        assert_eq!(decoded.dir(b"b"), None);
        assert_eq!(
            decoded.xattrs(b"a/b.txt", false),
            Some((stat, vec![("user.x".to_string(), b"1".to_vec())]))
        );
        assert_eq!(decoded.xattrs(b"a/c.txt", false), None);
        assert_eq!(decoded.xattrs(b"a", true), Some((stat, Vec::new())));
        assert_eq!(decoded.xattrs(b"a", false), None, "no file a");
        let unsorted = encode(
            &[(&b"b"[..], &entry), (&b"a"[..], &other)],
            &[],
            &HashMap::new(),
        );
        assert!(decode(unsorted).is_none(), "records out of order");
        assert!(decode(b"LSC3\xff\xff\xff\xff".to_vec()).is_none());
        assert!(
            decode(b"LSC3\x00\x00\x00\x00".to_vec()).is_none(),
            "the directory count is missing"
        );
        assert!(
            decode(b"LSC2\x00\x00\x00\x00\x00\x00\x00\x00".to_vec()).is_none(),
            "an older format"
        );
        assert!(decode(b"nope".to_vec()).is_none());
    }

    /// A hasher that trusts even files changed just now (the test cannot wait).
    fn hasher(store: &Store, root: &Path) -> ContextHasher {
        let mut hasher = ContextHasher::load(store, root);
        hasher.racy_ns = -1_000_000_000_000;
        hasher
    }

    fn set_times(path: &Path, like: &fs::Metadata) {
        let times = fs::FileTimes::new()
            .set_modified(like.modified().unwrap())
            .set_accessed(like.accessed().unwrap());
        File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_times(times)
            .unwrap();
    }

    #[test]
    fn unchanged_files_are_not_read_again_but_a_new_ctime_or_inode_is() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let root = dir.path().join("context");
        fs::create_dir(&root).unwrap();
        let file = root.join("a.txt");
        fs::write(&file, "aaaa").unwrap();
        let first = hasher(&store, &root);
        let original = first.hash_file(&file, None).unwrap();
        assert_eq!(first.files_read(), 1);
        first.save(&store);

        let second = hasher(&store, &root);
        assert_eq!(second.hash_file(&file, None).unwrap(), original);
        assert_eq!(second.files_read(), 0, "an unchanged file is not read");

        // Same size, same mtime, new content: only the ctime tells.
        let before = fs::metadata(&file).unwrap();
        past_the_ctime_of(&file);
        fs::write(&file, "bbbb").unwrap();
        set_times(&file, &before);
        let after = fs::metadata(&file).unwrap();
        assert_eq!(after.mtime_nsec(), before.mtime_nsec());
        let third = hasher(&store, &root);
        let changed = third.hash_file(&file, None).unwrap();
        assert_eq!(third.files_read(), 1, "a new ctime means a re-read");
        assert_ne!(changed, original);
        third.save(&store);

        // Replaced by another file (new inode) with the same size and times.
        let other = root.join("other");
        fs::write(&other, "cccc").unwrap();
        set_times(&other, &after);
        fs::rename(&other, &file).unwrap();
        let fourth = hasher(&store, &root);
        let replaced = fourth.hash_file(&file, None).unwrap();
        assert_eq!(fourth.files_read(), 1, "a new inode means a re-read");
        assert_eq!(replaced, hash_bytes(b"cccc"));
    }

    #[test]
    fn extended_attributes_are_read_again_only_when_the_entry_changed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let root = dir.path().join("context");
        fs::create_dir_all(root.join("sub")).unwrap();
        let file = root.join("sub/a.txt");
        fs::write(&file, "aaaa").unwrap();
        let reads = AtomicUsize::new(0);
        let found = vec![("user.note".to_string(), b"x".to_vec())];
        let read = || -> Result<Xattrs, std::io::Error> {
            reads.fetch_add(1, Ordering::Relaxed);
            Ok(found.clone())
        };
        let stat_of = |path: &Path| Stat::of(&fs::symlink_metadata(path).unwrap());
        let first = hasher(&store, &root);
        first.hash_file(&file, None).unwrap();
        let sub = root.join("sub");
        first
            .list_dir(&sub, &fs::symlink_metadata(&sub).unwrap())
            .unwrap();
        assert_eq!(
            first
                .copied_xattrs(&file, false, stat_of(&file), read)
                .unwrap(),
            found
        );
        assert_eq!(
            first
                .copied_xattrs_at("sub", true, stat_of(&sub), read)
                .unwrap(),
            found
        );
        assert_eq!(reads.load(Ordering::Relaxed), 2);
        first.save(&store);

        let second = hasher(&store, &root);
        assert_eq!(
            second
                .copied_xattrs(&file, false, stat_of(&file), read)
                .unwrap(),
            found
        );
        assert_eq!(
            second
                .copied_xattrs_at("sub", true, stat_of(&sub), read)
                .unwrap(),
            found
        );
        assert_eq!(reads.load(Ordering::Relaxed), 2, "both came from the cache");

        // Setting an attribute changes the ctime, as a chmod does.
        past_the_ctime_of(&file);
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
        let third = hasher(&store, &root);
        third
            .copied_xattrs(&file, false, stat_of(&file), read)
            .unwrap();
        assert_eq!(
            reads.load(Ordering::Relaxed),
            3,
            "a new ctime means a re-read"
        );
    }

    #[test]
    fn listings_are_reused_only_while_the_directory_is_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let root = dir.path().join("context");
        fs::create_dir_all(root.join("sub/inner")).unwrap();
        fs::write(root.join("sub/b"), "").unwrap();
        fs::write(root.join("sub/a"), "").unwrap();
        let sub = root.join("sub");
        let listing = |hasher: &ContextHasher| {
            hasher
                .list_dir(&sub, &fs::symlink_metadata(&sub).unwrap())
                .unwrap()
        };
        let first = hasher(&store, &root);
        let expected = vec![
            ("a".to_string(), false),
            ("b".to_string(), false),
            ("inner".to_string(), true),
        ];
        assert_eq!(listing(&first), expected);
        first.save(&store);
        let second = hasher(&store, &root);
        assert_eq!(listing(&second), expected);
        assert!(
            second.learn().dirs.is_empty(),
            "the listing came from the cache"
        );

        past_the_ctime_of(&sub);
        fs::write(sub.join("c"), "").unwrap();
        let third = hasher(&store, &root);
        assert_eq!(
            listing(&third).len(),
            4,
            "a new entry changes the directory"
        );
    }
}
