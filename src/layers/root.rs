//! Where the one extractor lands entries inside a root that is not lade's own: a
//! directory of a container's `/` (`lade cp` into it, running or stopped). The root is
//! held as a descriptor and every path is resolved in it with
//! `openat2(RESOLVE_IN_ROOT)`: the container's own symlinks (`/var/run -> /run`, or one
//! to `/`) are followed as the container would follow them, yet never lead outside it
//! (CVE-2018-15664). Each entry is then made relative to its opened parent without
//! following a link. Whiteouts mean nothing here: `.wh.` names are ordinary files.

use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{
    fchmod, fstatat, futimens, mkdirat, mknodat, utimensat, FileStat, Mode, SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use tar::EntryType;

use super::extract::{components, ends_inside, unsupported, ArchiveEntry, Budget, Landing};
use super::{LayerError, Result};

/// A directory inside a root, as a destination for [`super::extract_in_root`].
#[derive(Debug, Clone, Copy)]
pub struct InRoot<'a> {
    /// The root: paths resolve inside it as if it were `/`.
    pub root: BorrowedFd<'a>,
    /// The directory of the root that the archive's entries land in.
    pub into: &'a Path,
    /// How paths in the root are shown in errors (`web:`, or nothing for the host).
    pub label: &'a str,
    /// Who owns what is made.
    pub owners: Owners,
}

/// Who owns the files an archive is unpacked into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owners {
    /// Whoever unpacks it (the caller).
    Caller,
    /// Whoever unpacks it, as plain files: no setuid or setgid bit and no device node
    /// (skipped). A build's `--output` lands an image someone else wrote on the host;
    /// it must not leave a root-owned setuid shell or a writable disk node there.
    CallerUnprivileged,
    /// The owners the archive's entries name.
    Archive,
    /// One user and group, whatever the archive says.
    Set { uid: u32, gid: u32 },
}

impl Owners {
    /// The owner an entry gets, when it is not the caller.
    fn of(&self, entry: &ArchiveEntry) -> Option<(Uid, Gid)> {
        match *self {
            Owners::Caller | Owners::CallerUnprivileged => None,
            Owners::Archive => Some((Uid::from_raw(entry.uid), Gid::from_raw(entry.gid))),
            Owners::Set { uid, gid } => Some((Uid::from_raw(uid), Gid::from_raw(gid))),
        }
    }
}

/// Opens `path` inside `root`; symlinks (absolute ones too) and `..` stay in it, and the
/// last component is followed only when `follow_last` says so.
pub fn open_in_root(
    root: BorrowedFd<'_>,
    path: &Path,
    flags: OFlag,
    follow_last: bool,
) -> nix::Result<OwnedFd> {
    let mut flags = flags | OFlag::O_CLOEXEC;
    if !follow_last {
        flags |= OFlag::O_NOFOLLOW;
    }
    let how = OpenHow::new()
        .flags(flags)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let path = if path.as_os_str().is_empty() {
        Path::new("/")
    } else {
        path
    };
    openat2(root, path, how)
}

pub(super) struct RootLanding<'a> {
    destination: InRoot<'a>,
    /// Directories made or met, with the times they get once every entry is in.
    directory_times: Vec<(PathBuf, i64)>,
}

impl<'a> RootLanding<'a> {
    pub(super) fn new(destination: &InRoot<'a>) -> RootLanding<'a> {
        RootLanding {
            destination: *destination,
            directory_times: Vec::new(),
        }
    }

    fn show(&self, path: &Path) -> PathBuf {
        PathBuf::from(format!("{}{}", self.destination.label, path.display()))
    }

    fn io(&self, path: &Path, errno: Errno) -> LayerError {
        LayerError::Io {
            path: self.show(path),
            source: errno.into(),
        }
    }

    fn open(&self, path: &Path, flags: OFlag, follow_last: bool) -> nix::Result<OwnedFd> {
        open_in_root(self.destination.root, path, flags, follow_last)
    }

    /// Opens the directory `path` of the root, making it and its parents as needed
    /// (`0755`).
    fn ensure_directory(&self, path: &Path) -> Result<OwnedFd> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
        match self.open(path, flags, true) {
            Ok(fd) => return Ok(fd),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(self.io(path, e)),
        }
        let Some(name) = path.file_name() else {
            return Err(self.io(path, Errno::ENOTDIR));
        };
        let parent = self.ensure_directory(path.parent().unwrap_or(Path::new("/")))?;
        match mkdirat(&parent, name, Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(self.io(path, e)),
        }
        self.open(path, flags, true).map_err(|e| self.io(path, e))
    }

    /// The mode (exactly, past the umask; after `chown`, which clears setuid bits) and,
    /// when owners are kept, the owner.
    fn settle(&self, fd: impl AsFd, entry: &ArchiveEntry) -> nix::Result<()> {
        if let Some((uid, gid)) = self.destination.owners.of(entry) {
            fchown(fd.as_fd(), Some(uid), Some(gid))?;
        }
        fchmod(fd.as_fd(), self.mode_of(entry))
    }

    /// The permission bits an entry gets: the archive's, without setuid and setgid for
    /// [`Owners::CallerUnprivileged`].
    fn mode_of(&self, entry: &ArchiveEntry) -> Mode {
        match self.destination.owners {
            Owners::CallerUnprivileged => Mode::from_bits_truncate(entry.mode & !0o6000),
            _ => Mode::from_bits_truncate(entry.mode),
        }
    }

    /// Makes a hard link to `link`, an earlier entry of the archive.
    fn hard_link(
        &self,
        entry: &ArchiveEntry,
        parent: &OwnedFd,
        name: &OsStr,
        shown: &Path,
    ) -> Result<()> {
        let link = entry.link.as_deref().ok_or_else(|| LayerError::Malformed {
            entry: entry.shown.clone(),
            reason: "a hard link without a target".into(),
        })?;
        let mut source = self.destination.into.to_path_buf();
        source.extend(
            components(link, &entry.shown)?
                .iter()
                .map(|p| OsStr::from_bytes(p)),
        );
        let Some(source_name) = source.file_name() else {
            return Err(LayerError::Unsafe {
                entry: entry.shown.clone(),
                reason: "a hard link to the destination directory".into(),
            });
        };
        let source_parent = self
            .open(
                source.parent().unwrap_or(Path::new("/")),
                OFlag::O_PATH | OFlag::O_DIRECTORY,
                true,
            )
            .map_err(|e| self.io(&source, e))?;
        linkat(&source_parent, source_name, parent, name, AtFlags::empty())
            .map_err(|e| self.io(shown, e))
    }
}

fn is_dir(stat: &FileStat) -> bool {
    SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
}

impl Landing for RootLanding<'_> {
    fn land(
        &mut self,
        entry: &ArchiveEntry,
        data: &mut dyn Read,
        budget: &mut Budget,
    ) -> Result<()> {
        let Some((name, parents)) = entry.parts.split_last() else {
            // The destination itself: it exists, and keeps its own mode.
            return Ok(());
        };
        let name = OsStr::from_bytes(name);
        let mut parent_path = self.destination.into.to_path_buf();
        parent_path.extend(parents.iter().map(|p| OsStr::from_bytes(p)));
        let target = parent_path.join(name);
        let shown = target.as_path();
        let parent = self.ensure_directory(&parent_path)?;
        let existing = fstatat(&parent, name, AtFlags::AT_SYMLINK_NOFOLLOW).ok();
        let mode = self.mode_of(entry);
        if entry.entry_type == EntryType::Directory {
            match existing {
                Some(stat) if is_dir(&stat) => {}
                Some(_) => unlinkat(&parent, name, UnlinkatFlags::NoRemoveDir)
                    .map_err(|e| self.io(shown, e))?,
                None => {}
            }
            match mkdirat(&parent, name, mode) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(self.io(shown, e)),
            }
            let dir = openat(
                &parent,
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| self.io(shown, e))?;
            self.settle(&dir, entry).map_err(|e| self.io(shown, e))?;
            self.directory_times.push((target.clone(), entry.mtime));
            budget.count_entry();
            return Ok(());
        }
        match existing {
            Some(stat) if is_dir(&stat) => {
                return Err(LayerError::DirectoryInTheWay(
                    self.show(shown).display().to_string(),
                ))
            }
            Some(_) => unlinkat(&parent, name, UnlinkatFlags::NoRemoveDir)
                .map_err(|e| self.io(shown, e))?,
            None => {}
        }
        let time = TimeSpec::new(entry.mtime, 0);
        match entry.entry_type {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let fd = openat(
                    &parent,
                    name,
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    mode,
                )
                .map_err(|e| self.io(shown, e))?;
                let mut file = File::from(fd);
                let written = budget.copy_data(data, &mut file, &entry.shown, &self.show(shown))?;
                if entry.entry_type != EntryType::GNUSparse && written < entry.size {
                    return Err(ends_inside(entry.shown.clone(), written, entry.size));
                }
                self.settle(&file, entry).map_err(|e| self.io(shown, e))?;
                futimens(&file, &time, &time).map_err(|e| self.io(shown, e))?;
            }
            EntryType::Symlink => {
                let link = entry.link.as_deref().ok_or_else(|| LayerError::Malformed {
                    entry: entry.shown.clone(),
                    reason: "a symlink without a target".into(),
                })?;
                symlinkat(OsStr::from_bytes(link), &parent, name).map_err(|e| self.io(shown, e))?;
                if let Some((uid, gid)) = self.destination.owners.of(entry) {
                    fchownat(
                        &parent,
                        name,
                        Some(uid),
                        Some(gid),
                        AtFlags::AT_SYMLINK_NOFOLLOW,
                    )
                    .map_err(|e| self.io(shown, e))?;
                }
                utimensat(&parent, name, &time, &time, UtimensatFlags::NoFollowSymlink)
                    .map_err(|e| self.io(shown, e))?;
            }
            EntryType::Link => self.hard_link(entry, &parent, name, shown)?,
            EntryType::Char | EntryType::Block
                if self.destination.owners == Owners::CallerUnprivileged => {}
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let kind = match entry.entry_type {
                    EntryType::Char => SFlag::S_IFCHR,
                    EntryType::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                let (major, minor) = entry.device;
                let device = nix::sys::stat::makedev(u64::from(major), u64::from(minor));
                mknodat(&parent, name, kind, mode, device).map_err(|e| self.io(shown, e))?;
            }
            other => return Err(unsupported(entry.shown.clone(), other)),
        }
        budget.count_entry();
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        for (path, mtime) in self.directory_times.iter().rev() {
            if let Ok(dir) = self.open(path, OFlag::O_RDONLY | OFlag::O_DIRECTORY, false) {
                let time = TimeSpec::new(*mtime, 0);
                // A directory's time is cosmetic: a failure leaves the copy complete.
                let _ = futimens(&dir, &time, &time);
            }
        }
        Ok(())
    }
}
