//! The on-disk content-addressed store: an OCI image layout (blobs and `index.json`
//! tags) that skopeo and umoci read as it is, unpacked layer snapshots, the SQLite
//! metadata database, staging space, and the locks that let several lade processes share
//! one store.
//!
//! Nothing becomes visible except by an atomic rename after fsync: a `kill -9` at any
//! moment leaves, at worst, garbage in `tmp/`, removed the next time a store is opened.

mod blobs;
mod cache;
mod check;
mod containers;
mod db;
pub mod events;
mod images;
mod index;
mod networks;
mod orphans;
mod platforms;
mod volumes;

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub use blobs::{BlobReader, BlobWriter};
pub use cache::{CacheRecord, CacheUsage, PruneOptions, PruneReport};
pub use check::{CheckOptions, CheckReport, FingerprintError, Problem, SnapshotUsers};
pub use db::{ContainerRecord, LayerRecord};
pub use images::{layer_media_type, GcStats, Image, ImageSummary, LayerInfo, NewImage};
pub use index::Tag;
pub use networks::NetworkRecord;
pub use platforms::PlatformEntry;
pub use volumes::VolumeRecord;

use crate::oci::Digest;

/// Store errors carry the path or name they are about.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("store database {path}: {source}")]
    Db {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("{what} is not valid: {reason}")]
    Invalid { what: String, reason: String },
    #[error("no such image: {0}")]
    NoSuchImage(String),
    #[error("image reference {0:?} is ambiguous: it matches several image ids")]
    Ambiguous(String),
    /// The store has the image, but not for the platform asked for.
    #[error("image {image} is not in the store for {wanted} (it has {has}): pull it with --platform {wanted}")]
    OtherPlatform {
        image: String,
        wanted: String,
        has: String,
    },
    #[error("no such container: {0}")]
    NoSuchContainer(String),
    #[error("container reference {0:?} is ambiguous: it matches several container ids")]
    AmbiguousContainer(String),
    #[error("blob {digest} is missing from the store")]
    MissingBlob { digest: Digest },
    #[error("blob {expected} does not match its content (it hashes to {actual})")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("{0}")]
    InUse(String),
    /// The store belongs to another user: its files are closed to everyone else.
    #[error(
        "the store at {} belongs to {owner}, not to this user: lade uses only a store of its own user, since whoever owns it decides what lade mounts and runs. Run lade as that user, use a store of your own with --root DIR, or, if you trust its files, chown -R the store to this user", path.display()
    )]
    NotOwner { path: PathBuf, owner: String },
    /// A file or directory of the store that lade will not trust.
    #[error(
        "{} {problem}: lade will not use a store another user could change or put in its place; fix that, or use another store with --root DIR",
        path.display()
    )]
    Unsafe { path: PathBuf, problem: String },
    /// The store's OCI layout (`index.json`, `oci-layout`) cannot be read or written.
    #[error(transparent)]
    Layout(#[from] crate::oci::LayoutError),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Attaches a path to an I/O error.
pub(crate) trait IoContext<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// The default store: `/var/lib/lade` for root, `$XDG_DATA_HOME/lade` (or
/// `~/.local/share/lade`) otherwise.
pub fn default_root() -> PathBuf {
    // Root inside lade's rootless namespace is still the user.
    if nix::unistd::geteuid().is_root() && unmapped_owner().is_none() {
        return PathBuf::from("/var/lib/lade");
    }
    match std::env::var_os("XDG_DATA_HOME") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("lade"),
        _ => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(".local/share/lade"),
            None => PathBuf::from("/var/lib/lade"),
        },
    }
}

/// The store's root exists, belongs to this user and is closed to every other one
/// (mode 0700): snapshots keep image files as they are, setuid bits and device nodes
/// included, so a way into the store for another user would be a way to root. An
/// existing store with a wider mode is tightened.
fn make_private_root(root: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).at(parent)?;
    }
    match fs::DirBuilder::new().mode(0o700).create(root) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            return Err(not_owner(root).unwrap_or(StoreError::Io {
                path: root.to_path_buf(),
                source: e,
            }))
        }
        Err(e) => {
            return Err(StoreError::Io {
                path: root.to_path_buf(),
                source: e,
            })
        }
    }
    check_ancestors(root)?;
    let meta = fs::metadata(root).at(root)?;
    let me = nix::unistd::geteuid();
    // Root too: the store's database and directories decide what lade mounts and runs,
    // so a store another user can write is a way for that user to root (`sudo lade
    // --root ~/store`). As git refuses a repository of dubious ownership.
    if meta.uid() != me.as_raw() {
        return Err(not_owner(root).unwrap_or_else(|| StoreError::NotOwner {
            path: root.to_path_buf(),
            owner: format!("uid {}", meta.uid()),
        }));
    }
    if meta.mode() & 0o077 != 0 {
        fs::set_permissions(root, fs::Permissions::from_mode(0o700)).at(root)?;
    }
    check_store_entries(root)
}

/// The store's own files and directories (the root's entries, and each container's and
/// volume's directory) belong to this user and are no symlinks: one made by another
/// user, while the store was open to them, could send lade's writes anywhere.
fn check_store_entries(root: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let me = nix::unistd::geteuid().as_raw();
    let mut dirs = vec![root.to_path_buf()];
    for nested in ["containers", "volumes"] {
        dirs.push(root.join(nested));
    }
    for dir in dirs {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(StoreError::Io {
                    path: dir,
                    source: e,
                })
            }
        };
        for entry in entries {
            let entry = entry.at(&dir)?;
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).at(&path)?;
            if meta.file_type().is_symlink() {
                return Err(StoreError::Unsafe {
                    path,
                    problem: "is a symlink".into(),
                });
            }
            if meta.uid() != me {
                return Err(StoreError::Unsafe {
                    path,
                    problem: format!("belongs to {}", user_name(meta.uid())),
                });
            }
        }
    }
    Ok(())
}

/// Every directory above the store, as written and as it really is (symlinks
/// followed), belongs to root or this user and is not open to others' writes (unless
/// sticky, as /tmp: others may not rename what they do not own there): otherwise
/// another user could put a store of their own in its place while lade uses it.
fn check_ancestors(root: &Path) -> Result<()> {
    check_directories_above(root, false)
}

/// [`check_ancestors`] of `path`, which must exist; `path` itself too when `inclusive`
/// (the nearest existing directory above a store not made yet).
fn check_directories_above(path: &Path, inclusive: bool) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let root = path;
    let skip = usize::from(!inclusive);
    let me = nix::unistd::geteuid().as_raw();
    let unmapped = unmapped_owner();
    let canonical = fs::canonicalize(root).at(root)?;
    for dir in root
        .ancestors()
        .skip(skip)
        .chain(canonical.ancestors().skip(skip))
    {
        if dir.as_os_str().is_empty() {
            continue;
        }
        let meta = fs::metadata(dir).at(dir)?;
        if meta.uid() != 0 && meta.uid() != me && Some(meta.uid()) != unmapped {
            return Err(StoreError::Unsafe {
                path: dir.to_path_buf(),
                problem: format!(
                    "belongs to {}, who could put another store in this one's place",
                    user_name(meta.uid())
                ),
            });
        }
        let mode = meta.permissions().mode();
        if mode & 0o022 != 0 && mode & 0o1000 == 0 {
            return Err(StoreError::Unsafe {
                path: dir.to_path_buf(),
                problem: format!(
                    "is writable by other users (mode {:o}), who could put another store in this one's place",
                    mode & 0o7777
                ),
            });
        }
    }
    Ok(())
}

/// Checks, before lade enters its rootless user namespace, that no other user could
/// put another store in the place of the one at `root` (every directory above it
/// belongs to root or this user and is closed to others' writes). Inside the namespace
/// the owners outside it are out of sight (root's directories show as the overflow id),
/// so the command checks them here first.
pub fn check_location(root: &Path) -> Result<()> {
    let mut existing = root;
    while !existing.exists() {
        match existing.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => existing = parent,
            _ => return Ok(()),
        }
    }
    check_directories_above(existing, existing != root)?;
    match not_owner(root) {
        Some(err) if existing == root => Err(err),
        _ => Ok(()),
    }
}

/// The id a user namespace shows for owners it does not map, when this process runs in
/// one that maps only some ids (lade's rootless namespace): there, root's directories
/// above the store show as this id, and [`check_location`] checked their real owners
/// before the command entered.
fn unmapped_owner() -> Option<u32> {
    let map = fs::read_to_string("/proc/self/uid_map").ok()?;
    let whole = map
        .split_whitespace()
        .map(|field| field.parse::<u64>().ok())
        .collect::<Vec<_>>()
        == [Some(0), Some(0), Some(u64::from(u32::MAX))];
    if whole {
        return None;
    }
    fs::read_to_string("/proc/sys/kernel/overflowuid")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Whether this process runs in a user namespace that maps only some ids (rootless
/// lade's): its overlay mounts use `user.overlay.*` attributes, and files it cannot map
/// show as the overflow id.
pub fn in_user_namespace() -> bool {
    unmapped_owner().is_some()
}

/// `name (uid N)`, or `uid N` for a uid with no name.
fn user_name(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map_or_else(
            || format!("uid {uid}"),
            |u| format!("{} (uid {uid})", u.name),
        )
}

/// The error for a store owned by someone else, naming the owner.
fn not_owner(root: &Path) -> Option<StoreError> {
    use std::os::unix::fs::MetadataExt;
    let owner = fs::metadata(root).ok()?.uid();
    if owner == nix::unistd::geteuid().as_raw() {
        return None;
    }
    Some(StoreError::NotOwner {
        path: root.to_path_buf(),
        owner: user_name(owner),
    })
}

/// An open store.
pub struct Store {
    root: PathBuf,
    db: Mutex<rusqlite::Connection>,
    /// Free space on the store's file system that unpacking never eats into.
    reserve: u64,
    /// Opened by a command that only reads: nothing is created or recorded.
    read_only: bool,
}

/// How a store is opened for changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreOptions {
    /// Free space to keep on the store's file system: unpacking an archive (import,
    /// load, ADD, a layer's snapshot) stops before going below it. `None` takes the
    /// default, 1 GiB or 5% of the file system when that is smaller.
    pub reserve: Option<u64>,
}

/// The reserve `options` ask for, else the default one for `root`'s file system.
fn reserve_for(root: &Path, options: &StoreOptions) -> u64 {
    options.reserve.unwrap_or_else(|| {
        let probe = if root.exists() {
            root
        } else {
            root.parent().unwrap_or(root)
        };
        let total = filesystem_space(probe).map_or(0, |(_, total)| total);
        DEFAULT_RESERVE.min(total / 20)
    })
}

/// The default reserve: 1 GiB, or 5% of the file system when that is smaller.
const DEFAULT_RESERVE: u64 = 1 << 30;

/// Space on the file system holding `path`: (available to us, total), in bytes.
pub fn filesystem_space(path: &Path) -> io::Result<(u64, u64)> {
    let stat = nix::sys::statvfs::statvfs(path).map_err(io::Error::from)?;
    let block = stat.fragment_size();
    Ok((
        stat.blocks_available().saturating_mul(block),
        stat.blocks().saturating_mul(block),
    ))
}

/// Whether `cause` (one error of a chain) comes from a full file system: a write's
/// ENOSPC, SQLite's "disk full", or an SQLite I/O error (it cannot map its shared memory
/// file) while the file system holding the store at `root` has next to nothing free.
pub fn is_out_of_space(cause: &(dyn std::error::Error + 'static), root: &Path) -> bool {
    if let Some(io) = cause.downcast_ref::<io::Error>() {
        return io.raw_os_error() == Some(libc::ENOSPC);
    }
    let nearly_full = || {
        let probe = if root.exists() {
            root
        } else {
            root.parent().unwrap_or(root)
        };
        filesystem_space(probe).is_ok_and(|(available, _)| available < 1 << 20)
    };
    if let Some(rusqlite::Error::SqliteFailure(e, _)) = cause.downcast_ref::<rusqlite::Error>() {
        return e.code == rusqlite::ErrorCode::DiskFull
            || (e.code == rusqlite::ErrorCode::SystemIoFailure && nearly_full());
    }
    false
}

impl Store {
    /// The space a container's own changes take (its upper directory), for `df`.
    pub fn container_changes_size(&self, id: &str) -> u64 {
        dir_size(&self.root().join("containers").join(id).join("upper"))
    }

    /// The space a volume's files take, for `df`.
    pub fn volume_size(&self, name: &str) -> u64 {
        dir_size(&self.volume_data(name))
    }
}

/// Where things are under the root.
const OCI: &str = "oci";
const SNAPSHOTS: &str = "snapshots";
const TMP: &str = "tmp";

impl Store {
    /// Opens (creating if needed) the store at `root` with the default options.
    pub fn open(root: &Path) -> Result<Store> {
        Store::open_with(root, &StoreOptions::default())
    }

    /// Opens (creating if needed) the store at `root`, and removes staging files left by
    /// processes that died.
    pub fn open_with(root: &Path, options: &StoreOptions) -> Result<Store> {
        make_private_root(root)?;
        for dir in [
            root.join(OCI).join("blobs/sha256"),
            root.join(SNAPSHOTS),
            root.join(TMP),
            root.join("containers"),
            root.join("volumes"),
            root.join("cache-mounts"),
        ] {
            fs::create_dir_all(&dir).at(&dir)?;
        }
        crate::oci::Layout::new(root.join(OCI))
            .with_staging(root.join(TMP))
            .write_marker()?;
        let store = Store {
            root: root.to_path_buf(),
            db: Mutex::new(db::open(&root.join("lade.db"))?),
            reserve: reserve_for(root, options),
            read_only: false,
        };
        store.index_init()?;
        store.clean_tmp();
        Ok(store)
    }

    /// Opens a store for a command that only reads (`images`, `inspect`, `ps`...):
    /// nothing is created, written or cleaned, so it works on a full disk, and a path
    /// that holds no store reads as an empty store and is left alone.
    pub fn open_read_only(root: &Path) -> Result<Store> {
        Store::open_read_only_with(root, &StoreOptions::default())
    }

    /// [`Store::open_read_only`], with the options the command line gives (so that
    /// `info` shows the reserve a writing command would keep).
    pub fn open_read_only_with(root: &Path, options: &StoreOptions) -> Result<Store> {
        match fs::metadata(root) {
            Ok(_) => make_private_root(root)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(StoreError::Io {
                    path: root.to_path_buf(),
                    source: e,
                })
            }
        }
        Ok(Store {
            root: root.to_path_buf(),
            db: Mutex::new(db::open_read_only(&root.join("lade.db"))?),
            reserve: reserve_for(root, options),
            read_only: true,
        })
    }

    /// Whether this store was opened only to read.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The free space unpacking leaves on the store's file system (see
    /// [`StoreOptions::reserve`]).
    pub fn reserve(&self) -> u64 {
        self.reserve
    }

    /// The OCI image layout directory.
    pub fn layout_dir(&self) -> PathBuf {
        self.root.join(OCI)
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join(OCI).join("blobs/sha256").join(digest.hex())
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).exists()
    }

    /// The directory of a layer's unpacked snapshot, keyed by its diff_id. The name is
    /// short because overlay's mount options must fit in one page.
    pub fn snapshot_dir(&self, diff_id: &Digest) -> PathBuf {
        self.root.join(SNAPSHOTS).join(snapshot_name(diff_id))
    }

    pub fn snapshots_dir(&self) -> PathBuf {
        self.root.join(SNAPSHOTS)
    }

    pub fn has_snapshot(&self, diff_id: &Digest) -> bool {
        self.snapshot_dir(diff_id).is_dir()
    }

    /// Makes a fully written staging directory the snapshot of `diff_id`. If another
    /// process made it first, that one is kept and the staging copy removed.
    /// `fingerprint` is what `lade system check` will compare the snapshot with.
    pub fn commit_snapshot(
        &self,
        staging: &Path,
        diff_id: &Digest,
        fingerprint: &str,
    ) -> Result<PathBuf> {
        let target = self.snapshot_dir(diff_id);
        match fs::rename(staging, &target) {
            Ok(()) => {
                let name = snapshot_name(diff_id);
                self.with_db(|conn| db::put_snapshot(conn, &name, diff_id, fingerprint))?;
                Ok(target)
            }
            Err(_) if target.is_dir() => {
                remove_tree(staging);
                Ok(target)
            }
            Err(e) => Err(StoreError::Io {
                path: target,
                source: e,
            }),
        }
    }

    /// A new, empty staging directory that is removed when dropped unless kept.
    pub fn staging_dir(&self, purpose: &str) -> Result<Staging> {
        let path = self.tmp_path(purpose);
        fs::create_dir(&path).at(&path)?;
        Ok(Staging { path: Some(path) })
    }

    /// A unique path under `tmp/` named after this process, so a later `open` can tell
    /// whether its owner is gone.
    pub fn tmp_path(&self, purpose: &str) -> PathBuf {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        self.root
            .join(TMP)
            .join(format!("{}-{n}-{nanos:x}-{purpose}", std::process::id()))
    }

    /// Removes `tmp/` entries whose owning process is gone.
    fn clean_tmp(&self) {
        let tmp = self.root.join(TMP);
        let Ok(entries) = fs::read_dir(&tmp) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let owner = name
                .to_str()
                .and_then(|n| n.split('-').next())
                .and_then(|pid| pid.parse::<i32>().ok());
            let alive = owner.is_some_and(|pid| {
                pid == std::process::id() as i32
                    || nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
            });
            if !alive {
                remove_tree(&entry.path());
            }
        }
    }

    /// Runs `f` with the database.
    pub(crate) fn with_db<T>(
        &self,
        f: impl FnOnce(&mut rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let mut db = self.db.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut db).map_err(|source| StoreError::Db {
            path: self.root.join("lade.db"),
            source,
        })
    }

    fn lock_file(&self) -> Result<(File, PathBuf)> {
        self.open_lock_file("content.lock")
    }

    /// Opens (creating it if needed) a lock file under the root, not yet locked.
    pub(crate) fn open_lock_file(&self, name: &str) -> Result<(File, PathBuf)> {
        let path = self.root.join(name);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .at(&path)?;
        Ok((file, path))
    }

    /// Held while this process writes content that nothing references yet (a build, a
    /// load, an import): garbage collection leaves the store alone meanwhile.
    pub fn content_guard(&self) -> Result<ContentGuard> {
        let (file, path) = self.lock_file()?;
        file.lock_shared().at(&path)?;
        Ok(ContentGuard { _file: file })
    }

    /// The exclusive lock garbage collection needs, if no other process is writing
    /// content right now. It never waits.
    pub(crate) fn try_gc_lock(&self) -> Result<Option<File>> {
        let (file, path) = self.lock_file()?;
        match file.try_lock() {
            Ok(()) => Ok(Some(file)),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Io { path, source: e }),
        }
    }
}

/// See [`Store::content_guard`].
pub struct ContentGuard {
    _file: File,
}

/// The first 16 hex digits of a diff_id.
pub fn snapshot_name(diff_id: &Digest) -> String {
    diff_id.hex()[..16].to_string()
}

/// A staging directory under `tmp/`, removed on drop unless `keep` took it.
pub struct Staging {
    path: Option<PathBuf>,
}

impl Staging {
    pub fn path(&self) -> &Path {
        self.path
            .as_deref()
            .expect("staging path is present until kept")
    }

    /// Stops the directory from being removed, e.g. once it was renamed away.
    pub fn keep(mut self) -> PathBuf {
        self.path
            .take()
            .expect("staging path is present until kept")
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            remove_tree(path);
        }
    }
}

/// The bytes the files under `path` take (apparent sizes; links counted once per path).
pub fn dir_size(path: &Path) -> u64 {
    walkdir::WalkDir::new(path)
        .follow_links(false)
        .into_iter()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// [`remove_tree`], each entry of the directory `path` removed on a thread of its own,
/// then `path`: where freeing a block waits for the disk (ext4 without a journal,
/// mounted `discard`, discards each freed block before the call returns), the waits
/// overlap. For a container's directory, which `run --rm` removes before it returns:
/// about half the time of one thread here. A symlink is removed, never followed.
pub fn remove_tree_in_parallel(path: &Path) {
    let is_dir = fs::symlink_metadata(path).is_ok_and(|meta| meta.is_dir());
    let entries: Vec<PathBuf> = match fs::read_dir(path) {
        Ok(entries) if is_dir => entries.flatten().map(|entry| entry.path()).collect(),
        _ => Vec::new(),
    };
    std::thread::scope(|scope| {
        for entry in &entries {
            let spawned = std::thread::Builder::new().spawn_scoped(scope, || remove_tree(entry));
            if spawned.is_err() {
                remove_tree(entry);
            }
        }
    });
    remove_tree(path);
}

/// Removes a file or a tree, making read-only directories writable on the way; errors
/// are ignored (this is clean-up).
pub fn remove_tree(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => {
            if fs::remove_dir_all(path).is_err() {
                for entry in walkdir::WalkDir::new(path).into_iter().flatten() {
                    if entry.file_type().is_dir() {
                        let _ =
                            fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o700));
                    }
                }
                let _ = fs::remove_dir_all(path);
            }
        }
        Ok(_) => {
            let _ = fs::remove_file(path);
        }
        Err(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_removed_in_parallel_goes_whole_and_its_links_are_not_followed() {
        let scratch = tempfile::tempdir().unwrap();
        let outside = scratch.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("kept"), "x").unwrap();
        let tree = scratch.path().join("container");
        fs::create_dir_all(tree.join("work/work/incompat")).unwrap();
        fs::create_dir_all(tree.join("etc")).unwrap();
        fs::write(tree.join("etc/hosts"), "x").unwrap();
        fs::write(tree.join("log"), "x").unwrap();
        std::os::unix::fs::symlink(&outside, tree.join("link")).unwrap();
        remove_tree_in_parallel(&tree);
        assert!(!tree.exists());
        assert!(outside.join("kept").exists(), "the link's target is kept");

        // A link given as the tree itself is removed, its target kept.
        let link = scratch.path().join("link");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        remove_tree_in_parallel(&link);
        assert!(fs::symlink_metadata(&link).is_err());
        assert!(outside.join("kept").exists());
    }
}
