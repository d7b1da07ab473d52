//! Writing a layer's entries out as its snapshot directory, on a thread of its own: the
//! layer writer streams the tar while this thread does the file system's part (creating
//! files, owners, modes, times), so the two use two cores. Messages keep entry order.
//!
//! Given the snapshot of an earlier version of the layer (the same COPY built before, with
//! one file changed), a file that is there with the same size, mode, owner and time is
//! compared with the incoming bytes as they arrive; if they are all equal it becomes a
//! hard link to that file instead of a new one. Creating an inode and writing its data
//! is most of the cost of a snapshot, and both snapshots are read-only.
//!
//! The snapshot's fingerprint is gathered on the way, from each entry as it landed on
//! disk and the bytes that went into it, so committing the snapshot need not read it
//! all back. A file whose content hash the caller can vouch for (a build-context file
//! its stat cache hashed, unchanged since) is not hashed again.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{fchown, symlink, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use nix::fcntl::AtFlags;
use nix::sys::stat::SFlag;
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, Gid, Uid};

use super::entry::{
    make_node, overlay_opaque_xattr, set_mtime, split_last, xattr_set, Entry, EntryKind,
};
use super::fingerprint::{Fingerprinter, Found, Stat};
use super::walk::xattrs;
use super::{IoContext, LayerError, Result};

/// File data goes over in chunks of this size.
const CHUNK: usize = 1 << 20;
/// Jobs go over in batches of about a chunk's worth (or this many jobs): one wake-up of
/// the writer thread per batch rather than three per small file.
const BATCH_JOBS: usize = 256;
/// At most this many batches wait: bounds memory to about 16 chunks.
const QUEUE: usize = 16;

enum Job {
    Entry {
        entry: Entry,
        mtime: i64,
        /// The content's blake3, when the caller knows it before the bytes come.
        content: Option<blake3::Hash>,
    },
    Data(Vec<u8>),
    /// `vouched`: the content hash given with the entry still holds (the source did not
    /// change while it was read).
    EndOfFile {
        vouched: bool,
    },
}

/// The snapshot writer thread and the way to talk to it.
pub(crate) struct Materializer {
    jobs: Option<SyncSender<Vec<Job>>>,
    worker: Option<JoinHandle<Result<Option<String>>>>,
    batch: Vec<Job>,
    batch_bytes: usize,
}

impl Materializer {
    pub(crate) fn start(root: PathBuf, reuse: Option<PathBuf>) -> Materializer {
        let (jobs, queue) = sync_channel(QUEUE);
        let worker = std::thread::spawn(move || work(&root, reuse.as_deref(), queue));
        Materializer {
            jobs: Some(jobs),
            worker: Some(worker),
            batch: Vec::with_capacity(BATCH_JOBS),
            batch_bytes: 0,
        }
    }

    fn send(&mut self, job: Job) -> Result<()> {
        if let Job::Data(data) = &job {
            self.batch_bytes += data.len();
        }
        self.batch.push(job);
        if self.batch_bytes >= CHUNK || self.batch.len() >= BATCH_JOBS {
            return self.flush();
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH_JOBS));
        self.batch_bytes = 0;
        let sent = self
            .jobs
            .as_ref()
            .map(|jobs| jobs.send(batch).is_ok())
            .unwrap_or(false);
        if sent {
            return Ok(());
        }
        // The worker stopped: its error says why.
        self.jobs = None;
        match self.worker.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) => Err(e),
            _ => Err(LayerError::Malformed {
                entry: String::new(),
                reason: "the snapshot writer stopped".into(),
            }),
        }
    }

    /// Announces an entry; a file's data follows through [`Materializer::data`].
    /// `content`: the file's blake3, when the caller can vouch for it (see
    /// [`Materializer::end_of_file`]); then the bytes are not hashed again.
    pub(crate) fn entry(
        &mut self,
        entry: &Entry,
        mtime: i64,
        content: Option<blake3::Hash>,
    ) -> Result<()> {
        self.send(Job::Entry {
            entry: entry.clone(),
            mtime,
            content,
        })
    }

    /// The next bytes of the file announced last.
    pub(crate) fn data(&mut self, chunk: Vec<u8>) -> Result<()> {
        self.send(Job::Data(chunk))
    }

    /// The file announced last is complete. `vouched`: the content hash given with its
    /// entry is still good; if not, the file is hashed from what was written.
    pub(crate) fn end_of_file(&mut self, vouched: bool) -> Result<()> {
        self.send(Job::EndOfFile { vouched })
    }

    /// Waits until everything is written. Returns the snapshot's fingerprint, or `None`
    /// when only a walk of the finished tree can tell it (see [`Prints`]).
    pub(crate) fn finish(mut self) -> Result<Option<String>> {
        self.flush()?;
        self.jobs = None;
        match self.worker.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            _ => Err(LayerError::Malformed {
                entry: String::new(),
                reason: "the snapshot writer panicked".into(),
            }),
        }
    }
}

impl Drop for Materializer {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// A regular file being written.
enum Target {
    /// Written out.
    New(File),
    /// So far equal to the earlier snapshot's file: `old` has been read up to `same` bytes.
    Same {
        old: File,
        old_path: PathBuf,
        same: u64,
    },
}

struct OpenFile {
    target: Target,
    entry: Entry,
    path: PathBuf,
    mtime: i64,
    /// The content's hash as the caller gave it; else `content` hashes the bytes.
    given: Option<blake3::Hash>,
    content: blake3::Hasher,
}

/// The fingerprint of the entries written so far.
struct Prints {
    /// `None` once an entry came that the entries alone cannot account for: a whiteout
    /// or an opaque marker (the walk sees them as the overlay stores them), an entry
    /// for the root itself, a hard link to a file not written here.
    fingerprinter: Option<Fingerprinter>,
    /// Whether new files get extended attributes nobody set (a security module's
    /// labels): then every entry's are read back. Decided at the first entry.
    labelled: Option<bool>,
    /// Content hashes of the files written, for hard links to them.
    contents: HashMap<Vec<u8>, blake3::Hash>,
}

impl Prints {
    fn give_up(&mut self) {
        self.fingerprinter = None;
    }

    fn record(
        &mut self,
        entry: &Entry,
        path: &Path,
        stat: Stat,
        content: Option<blake3::Hash>,
    ) -> Result<()> {
        if self.fingerprinter.is_none() {
            return Ok(());
        }
        if entry.path.is_empty() {
            self.give_up();
            return Ok(());
        }
        let content = match (&entry.kind, content) {
            (EntryKind::Hardlink { target }, _) => match self.contents.get(target) {
                Some(hash) => Some(*hash),
                None => {
                    self.give_up();
                    return Ok(());
                }
            },
            (_, content) => content,
        };
        let labelled = match self.labelled {
            Some(labelled) => labelled,
            None => {
                let mut set = entry.xattrs.clone();
                set.sort();
                let labelled = xattrs(path)? != set;
                self.labelled = Some(labelled);
                labelled
            }
        };
        let found_xattrs = if labelled || !entry.xattrs.is_empty() {
            xattrs(path)?
        } else {
            Vec::new()
        };
        let link = match &entry.kind {
            EntryKind::Symlink { target } => Some(target.as_slice()),
            _ => None,
        };
        if let (EntryKind::File { .. }, Some(hash)) = (&entry.kind, content) {
            self.contents.insert(entry.path.clone(), hash);
        }
        if let Some(fingerprinter) = &mut self.fingerprinter {
            fingerprinter.add(
                &entry.path,
                &Found {
                    stat,
                    content: content.as_ref(),
                    link,
                    xattrs: &found_xattrs,
                },
            );
        }
        Ok(())
    }
}

fn work(root: &Path, reuse: Option<&Path>, queue: Receiver<Vec<Job>>) -> Result<Option<String>> {
    let mut dir_times: Vec<(PathBuf, i64)> = Vec::new();
    let mut open: Option<OpenFile> = None;
    let mut compare = Vec::new();
    let mut prints = Prints {
        fingerprinter: Some(Fingerprinter::default()),
        labelled: None,
        contents: HashMap::new(),
    };
    for job in queue.into_iter().flatten() {
        match job {
            Job::Entry {
                entry,
                mtime,
                content,
            } => {
                let path = root.join(OsStr::from_bytes(&entry.path));
                if matches!(entry.kind, EntryKind::Whiteout | EntryKind::Opaque) {
                    prints.give_up();
                }
                if let EntryKind::File { .. } = entry.kind {
                    let target = match reuse.and_then(|dir| reusable(dir, &entry, mtime)) {
                        Some((old, old_path)) => Target::Same {
                            old,
                            old_path,
                            same: 0,
                        },
                        None => Target::New(create_file(&path, &entry)?),
                    };
                    open = Some(OpenFile {
                        target,
                        entry,
                        path,
                        mtime,
                        given: content,
                        content: blake3::Hasher::new(),
                    });
                } else {
                    create(root, &entry, &path, mtime, &mut dir_times)?;
                    if prints.fingerprinter.is_some() {
                        let meta = fs::symlink_metadata(&path).at(&path)?;
                        prints.record(&entry, &path, Stat::of(&meta), None)?;
                    }
                }
            }
            Job::Data(chunk) => {
                if let Some(file) = open.as_mut() {
                    file.write(&chunk, &mut compare)?;
                }
            }
            Job::EndOfFile { vouched } => {
                if let Some(file) = open.take() {
                    let stat = file.close()?;
                    let content = match file.given {
                        None => file.content.finalize(),
                        Some(hash) if vouched => hash,
                        // The source changed while it was read: what was written says.
                        Some(_) => {
                            let mut hasher = blake3::Hasher::new();
                            let mut written = File::open(&file.path).at(&file.path)?;
                            io::copy(&mut written, &mut hasher).at(&file.path)?;
                            hasher.finalize()
                        }
                    };
                    prints.record(&file.entry, &file.path, stat, Some(content))?;
                }
            }
        }
    }
    // Last: writing into a directory changes its mtime.
    for (path, mtime) in dir_times.iter().rev() {
        set_mtime(path, *mtime)?;
    }
    match prints.fingerprinter {
        Some(fingerprinter) => fingerprinter.finish(root),
        None => Ok(None),
    }
}

/// The earlier snapshot's file for `entry`, if its size, mode, owner and time match.
fn reusable(dir: &Path, entry: &Entry, mtime: i64) -> Option<(File, PathBuf)> {
    use std::os::unix::fs::MetadataExt;
    let EntryKind::File { size } = entry.kind else {
        return None;
    };
    let path = dir.join(OsStr::from_bytes(&entry.path));
    let meta = fs::symlink_metadata(&path).ok()?;
    let same = meta.is_file()
        && meta.len() == size
        && meta.mode() & 0o7777 == entry.mode & 0o7777
        && meta.uid() == entry.uid
        && meta.gid() == entry.gid
        && meta.mtime() == mtime
        && meta.mtime_nsec() == 0
        && entry.xattrs.is_empty();
    if !same {
        return None;
    }
    Some((File::open(&path).ok()?, path))
}

impl OpenFile {
    fn write(&mut self, chunk: &[u8], compare: &mut Vec<u8>) -> Result<()> {
        if self.given.is_none() {
            self.content.update(chunk);
        }
        if let Target::Same {
            old,
            old_path,
            same,
        } = &mut self.target
        {
            compare.resize(chunk.len(), 0);
            let equal = old.read_exact(compare).is_ok() && compare.as_slice() == chunk;
            if equal {
                *same += chunk.len() as u64;
                return Ok(());
            }
            // Different after all: the new file gets the equal part, then the rest.
            let mut file = File::create(&self.path).at(&self.path)?;
            let mut prefix = File::open(&*old_path).at(old_path.as_path())?.take(*same);
            io::copy(&mut prefix, &mut file).at(&self.path)?;
            self.target = Target::New(file);
        }
        if let Target::New(file) = &mut self.target {
            file.write_all(chunk).at(self.path.as_path())?;
        }
        Ok(())
    }

    /// Finishes the file (the descriptor is closed when `self` goes); returns what it is
    /// on disk.
    fn close(&self) -> Result<Stat> {
        match &self.target {
            Target::New(file) => finish_file(file, &self.entry, &self.path, self.mtime),
            Target::Same { old_path, .. } => match fs::hard_link(old_path, &self.path) {
                Ok(()) => Ok(Stat::of(&fs::symlink_metadata(&self.path).at(&self.path)?)),
                // Too many links, or another file system: a copy does as well.
                Err(_) => {
                    let mut file = create_file(&self.path, &self.entry)?;
                    io::copy(&mut File::open(old_path).at(old_path)?, &mut file).at(&self.path)?;
                    finish_file(&file, &self.entry, &self.path, self.mtime)
                }
            },
        }
    }
}

/// Creates a non-file entry.
fn create(
    root: &Path,
    entry: &Entry,
    path: &Path,
    mtime: i64,
    dir_times: &mut Vec<(PathBuf, i64)>,
) -> Result<()> {
    match &entry.kind {
        EntryKind::Directory => {
            match fs::create_dir(path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => {}
                Err(e) => {
                    return Err(LayerError::Io {
                        path: path.into(),
                        source: e,
                    })
                }
            }
            finish(entry, path, mtime)?;
            dir_times.push((path.to_path_buf(), mtime));
            return Ok(());
        }
        EntryKind::Symlink { target } => symlink(OsStr::from_bytes(target), path).at(path)?,
        EntryKind::Hardlink { target } => {
            fs::hard_link(root.join(OsStr::from_bytes(target)), path).at(path)?;
            return Ok(());
        }
        EntryKind::CharDevice { major, minor } => make_node(path, SFlag::S_IFCHR, *major, *minor)?,
        EntryKind::BlockDevice { major, minor } => make_node(path, SFlag::S_IFBLK, *major, *minor)?,
        EntryKind::Fifo => make_node(path, SFlag::S_IFIFO, 0, 0)?,
        EntryKind::Whiteout => {
            let (dir, name) = split_last(&entry.path);
            let whiteout = root
                .join(OsStr::from_bytes(dir))
                .join(OsStr::from_bytes(name));
            return make_node(&whiteout, SFlag::S_IFCHR, 0, 0);
        }
        EntryKind::Opaque => return xattr_set(path, overlay_opaque_xattr(), b"y"),
        EntryKind::File { .. } => {}
    }
    finish(entry, path, mtime)
}

/// Owner, mode, xattrs and mtime (mode after owner: chown clears setuid bits).
fn finish(entry: &Entry, path: &Path, mtime: i64) -> Result<()> {
    fchownat(
        nix::fcntl::AT_FDCWD,
        path,
        Some(Uid::from_raw(entry.uid)),
        Some(Gid::from_raw(entry.gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| LayerError::Io {
        path: path.into(),
        source: e.into(),
    })?;
    if !matches!(entry.kind, EntryKind::Symlink { .. }) {
        fs::set_permissions(path, fs::Permissions::from_mode(entry.mode & 0o7777)).at(path)?;
    }
    for (name, value) in &entry.xattrs {
        xattr_set(path, name, value)?;
    }
    if !matches!(entry.kind, EntryKind::Directory) {
        set_mtime(path, mtime)?;
    }
    Ok(())
}

/// A new regular file for `entry`, created with its permission bits (less the umask).
fn create_file(path: &Path, entry: &Entry) -> Result<File> {
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(entry.mode & 0o777)
        .open(path)
        .at(path)
}

/// Owner, mode, xattrs and mtime of a regular file written through `file`, by its open
/// descriptor (no path lookups). Owner and mode are set only where the new file does
/// not have them already (root's files created under the usual umask), which saves two
/// system calls on most files. Returns what the file is on disk.
fn finish_file(file: &File, entry: &Entry, path: &Path, mtime: i64) -> Result<Stat> {
    let mut stat = Stat::of(&file.metadata().at(path)?);
    let mode = entry.mode & 0o7777;
    let owned = stat.uid == entry.uid && stat.gid == entry.gid;
    if !owned {
        fchown(file, Some(entry.uid), Some(entry.gid)).at(path)?;
    }
    // After a chown, which clears setuid and setgid bits, the mode is set in any case.
    if !owned || stat.mode & 0o7777 != mode {
        file.set_permissions(fs::Permissions::from_mode(mode))
            .at(path)?;
    }
    for (name, value) in &entry.xattrs {
        xattr_set(path, name, value)?;
    }
    let time = TimeSpec::new(mtime, 0);
    nix::sys::stat::futimens(file, &time, &time).map_err(|e| LayerError::Io {
        path: path.into(),
        source: e.into(),
    })?;
    stat.uid = entry.uid;
    stat.gid = entry.gid;
    stat.mode = stat.mode & libc::S_IFMT | mode;
    stat.mtime = mtime;
    stat.mtime_nsec = 0;
    Ok(stat)
}
