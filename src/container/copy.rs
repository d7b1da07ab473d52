//! `lade cp`: files between a container and the host, or to and from a tar stream.
//!
//! A copy is always a tar stream from a reader to a writer, as Docker's is. Paths inside
//! a container are resolved with `openat2(RESOLVE_IN_ROOT)` against the container's own
//! root (its init's `/proc/<pid>/root` while it runs, its overlay mounted in lade's
//! private mount namespace when it does not, with its volumes and binds on it as its
//! start would mount them), and everything below is opened relative
//! to its parent directory without following links. A symlink in the container, to `/`
//! or anywhere else, therefore resolves inside the container and can never make `cp`
//! read or write a host file (CVE-2018-15664). The host side goes through the same code
//! with `/` as its root.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode, SFlag};

use super::record::spec_of;
use super::{running_init, ContainerError, Result};
use crate::exec::{self, mounts::Mounted};
use crate::layers::{self, ExtractLimits, InRoot, LayerError, Owners};
use crate::store::{Staging, Store};

/// What went wrong in a copy; paths are shown as the user wrote them (`web:/etc`).
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("{0}: no such file or directory")]
    NotFound(String),
    /// `cp -a` into a container whose user cannot be found in it.
    #[error("cp -a: the user of container {container}: {reason}")]
    Owner { container: String, reason: String },
    /// Docker's words for a path missing in a container (a pattern such as `/tmp/*`
    /// too: paths are never expanded).
    #[error("Could not find the file {path} in container {container}")]
    NotInContainer { path: String, container: String },
    /// What Docker's client refuses to write a copy onto (a device, a pipe).
    #[error("invalid output path: {path:?} must be a directory or a regular file: got {kind}")]
    NotDirectoryOrFile { path: String, kind: &'static str },
    #[error("{0}: not a directory")]
    NotADirectory(String),
    #[error("cannot copy the directory {source_path} onto the file {destination}")]
    DirectoryOntoFile {
        source_path: String,
        destination: String,
    },
    #[error("the destination directory {0} does not exist")]
    NoDestinationDirectory(String),
    #[error("copying a tar stream needs an existing directory as destination, not {0}")]
    StreamNeedsDirectory(String),
    /// Unpacking the copy's tar stream at its destination failed.
    #[error(transparent)]
    Extract(#[from] LayerError),
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
}

/// One side of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyEnd {
    Host(PathBuf),
    Container {
        container: String,
        path: String,
    },
    /// `-`: a tar stream on standard input or output.
    Stream,
}

impl CopyEnd {
    /// Docker's argument syntax: `CONTAINER:PATH`, `-`, or a host path (one with a `/`
    /// before any `:` is a host path, so `./a:b` stays on the host).
    pub fn parse(argument: &str) -> CopyEnd {
        if argument == "-" {
            return CopyEnd::Stream;
        }
        match argument.split_once(':') {
            Some((container, path)) if !container.is_empty() && !container.contains('/') => {
                CopyEnd::Container {
                    container: container.to_string(),
                    path: if path.is_empty() {
                        "/".into()
                    } else {
                        path.into()
                    },
                }
            }
            _ => CopyEnd::Host(PathBuf::from(argument)),
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct CopyOptions {
    /// `-a`, as Docker's: into a container with a user (`--user`), what is written
    /// belongs to that user; to the host, the owners are kept. Without it, what is
    /// written into a container keeps its owners (the archive's, the host files'), and
    /// on the host belongs to the caller.
    pub archive: bool,
    /// `-L`: follow a symlink named as the source.
    pub follow_link: bool,
}

/// A directory that paths are resolved in, as if it were `/`.
struct Root {
    fd: OwnedFd,
    /// How paths in it are shown: `web:` or nothing for the host.
    label: String,
    /// A container's user (`user[:group]`, empty for root); None for the host.
    user: Option<String>,
    // Dropped after `fd`, in this order: the view is unmounted, then its mount point goes.
    _mounted: Option<Mounted>,
    _staging: Option<Staging>,
}

impl Root {
    fn host() -> Result<Root> {
        Ok(Root {
            fd: open_path(Path::new("/"), "/")?,
            label: String::new(),
            user: None,
            _mounted: None,
            _staging: None,
        })
    }

    /// A container's root: its init's while it runs, else its overlay mounted here (in
    /// lade's own mount namespace, which the caller has made).
    fn container(store: &Store, reference: &str) -> Result<Root> {
        let record = store.container(reference)?;
        let label = format!("{}:", record.name);
        let spec = spec_of(&record)?;
        let user = Some(spec.process.user.clone());
        if let Some(init) = running_init(&record) {
            let path = format!("/proc/{}/root", init.pid);
            let fd = open_path(Path::new(&path), &label)?;
            // The pid could have been reused between the check and the open.
            if init.is_alive() {
                return Ok(Root {
                    fd,
                    label,
                    user,
                    _mounted: None,
                    _staging: None,
                });
            }
        }
        let staging = store.staging_dir("cp")?;
        let mounted =
            exec::mounts::mount_container_root(&spec.rootfs, &spec.mounts, staging.path())
                .map_err(|source| ContainerError::Io {
                    path: staging.path().to_path_buf(),
                    source,
                })?;
        Ok(Root {
            fd: open_path(staging.path(), &label)?,
            label,
            user,
            _mounted: Some(mounted),
            _staging: Some(staging),
        })
    }

    fn show(&self, path: &Path) -> String {
        format!("{}{}", self.label, path.display())
    }

    /// Opens `path` inside this root; symlinks (absolute ones too) and `..` stay in it.
    fn open(&self, path: &Path, flags: OFlag, follow_last: bool) -> nix::Result<OwnedFd> {
        layers::open_in_root(self.fd.as_fd(), path, flags, follow_last)
    }

    /// Who owns what is copied into this root (Docker's daemon and client: a container
    /// keeps the archive's owners, or with `-a` takes its user's; the host gives them
    /// to the caller, or with `-a` keeps them).
    fn owners(&self, options: CopyOptions) -> std::result::Result<Owners, CopyError> {
        match &self.user {
            None if options.archive => Ok(Owners::Archive),
            None => Ok(Owners::Caller),
            Some(user) if options.archive && !user.is_empty() => {
                let read = |name: &str| self.read_small(Path::new(name));
                let id = exec::users::resolve(user, &read("/etc/passwd"), &read("/etc/group"))
                    .map_err(|e| CopyError::Owner {
                        container: self.label.trim_end_matches(':').to_string(),
                        reason: e.to_string(),
                    })?;
                Ok(Owners::Set {
                    uid: id.uid,
                    gid: id.gid,
                })
            }
            Some(_) => Ok(Owners::Archive),
        }
    }

    /// A small file of this root (a passwd file), or nothing when it cannot be read.
    fn read_small(&self, path: &Path) -> String {
        let Ok(fd) = self.open(path, OFlag::O_RDONLY, true) else {
            return String::new();
        };
        let mut text = String::new();
        let _ = File::from(fd).take(1 << 20).read_to_string(&mut text);
        text
    }

    /// `path` is not there: said as Docker says it for a container's path.
    fn not_found(&self, path: &Path) -> CopyError {
        match self.label.strip_suffix(':') {
            Some(container) if !container.is_empty() => CopyError::NotInContainer {
                path: path.display().to_string(),
                container: container.to_string(),
            },
            _ => CopyError::NotFound(self.show(path)),
        }
    }

    /// The destination a symlink named as `path` stands for, followed as Docker's
    /// client does (at most ten links): a copy onto a link writes where it points,
    /// inside this root, and never replaces the link.
    fn follow_links(&self, path: &Path) -> PathBuf {
        let mut path = path.to_path_buf();
        for _ in 0..10 {
            let Ok(fd) = self.open(&path, OFlag::O_PATH, false) else {
                break;
            };
            if !fstat(&fd).is_ok_and(|stat| kind(&stat) == SFlag::S_IFLNK) {
                break;
            }
            let Ok(target) = readlinkat(&fd, Path::new("")) else {
                break;
            };
            path = match path.parent() {
                Some(parent) => parent.join(target),
                None => PathBuf::from(target),
            };
        }
        path
    }

    fn io(&self, path: &Path, errno: Errno) -> CopyError {
        CopyError::Io {
            path: self.show(path),
            source: errno.into(),
        }
    }
}

fn open_path(path: &Path, label: &str) -> Result<OwnedFd> {
    nix::fcntl::open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| {
        CopyError::Io {
            path: format!("{label}{}", path.display()),
            source: e.into(),
        }
        .into()
    })
}

/// `lade cp`. The caller has made lade's private mount namespace (a stopped
/// container's root is mounted for the copy) before starting any thread.
pub fn copy(
    store: &Store,
    from: &CopyEnd,
    to: &CopyEnd,
    options: CopyOptions,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
) -> Result<()> {
    let (source_root, source_path) = match from {
        CopyEnd::Host(path) => (Root::host()?, host_path(path)?),
        CopyEnd::Container { container, path } => {
            (Root::container(store, container)?, PathBuf::from(path))
        }
        CopyEnd::Stream => {
            let CopyEnd::Container { container, path } = to else {
                return Err(ContainerError::StreamToStream);
            };
            let root = Root::container(store, container)?;
            let path = PathBuf::from(path);
            let stat = root
                .open(&path, OFlag::O_PATH, true)
                .and_then(fstat)
                .map_err(|e| match e {
                    Errno::ENOENT => root.not_found(&path),
                    e => root.io(&path, e),
                })?;
            if !is_dir(&stat) {
                return Err(CopyError::StreamNeedsDirectory(root.show(&path)).into());
            }
            // Docker takes the stream compressed too (gzip, bzip2, xz, zstd); the
            // extractor's bounds apply to what the stream decompresses to.
            let tar = layers::decompressing_reader(stdin).map_err(|source| CopyError::Io {
                path: "standard input".into(),
                source,
            })?;
            return Ok(extract(&root, &path, tar, options)?);
        }
    };
    let source_stat = source_root
        .open(&source_path, OFlag::O_PATH, options.follow_link)
        .and_then(fstat)
        .map_err(|e| match e {
            Errno::ENOENT => source_root.not_found(&source_path),
            e => source_root.io(&source_path, e),
        })?;
    let source_is_dir = is_dir(&source_stat);
    let text = source_path.as_os_str().as_bytes();
    if text.ends_with(b"/") && !source_is_dir {
        return Err(CopyError::NotADirectory(source_root.show(&source_path)).into());
    }
    let contents_only = source_is_dir && (text.ends_with(b"/.") || text == b".");
    let source_name = source_path
        .file_name()
        .map_or_else(|| OsString::from("."), OsStr::to_os_string);

    let (dest_root, dest_path) = match to {
        CopyEnd::Host(path) => {
            refuse_special_output(path)?;
            (Root::host()?, host_path(path)?)
        }
        CopyEnd::Container { container, path } => {
            (Root::container(store, container)?, PathBuf::from(path))
        }
        CopyEnd::Stream => {
            let CopyEnd::Container { .. } = from else {
                return Err(ContainerError::StreamToStream);
            };
            let mut builder = tar::Builder::new(stdout);
            archive_tree(
                &source_root,
                &source_path,
                Path::new(&source_name),
                options,
                &mut builder,
            )?;
            builder.into_inner().map_err(|source| CopyError::Io {
                path: "standard output".into(),
                source,
            })?;
            return Ok(());
        }
    };

    // Docker's rules for where the copy lands and under what name.
    let dest_path = if dest_path.as_os_str().as_bytes().ends_with(b"/") {
        dest_path
    } else {
        dest_root.follow_links(&dest_path)
    };
    let dest_text = dest_path.as_os_str().as_bytes();
    let dest_stat = dest_root
        .open(&dest_path, OFlag::O_PATH, true)
        .and_then(fstat);
    let (into, top) = match dest_stat {
        Ok(stat) if is_dir(&stat) => {
            let top = if contents_only {
                PathBuf::from(".")
            } else {
                PathBuf::from(&source_name)
            };
            (dest_path.clone(), top)
        }
        Ok(_) if source_is_dir => {
            return Err(CopyError::DirectoryOntoFile {
                source_path: source_root.show(&source_path),
                destination: dest_root.show(&dest_path),
            }
            .into())
        }
        Ok(_) if dest_text.ends_with(b"/") => {
            return Err(CopyError::NotADirectory(dest_root.show(&dest_path)).into())
        }
        Err(Errno::ENOENT) if dest_text.ends_with(b"/") && !source_is_dir => {
            return Err(CopyError::NoDestinationDirectory(dest_root.show(&dest_path)).into())
        }
        Ok(_) | Err(Errno::ENOENT) => {
            let parent = dest_path
                .parent()
                .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
            let name = dest_path
                .file_name()
                .ok_or_else(|| CopyError::NotADirectory(dest_root.show(&dest_path)))?;
            let parent_is_dir = dest_root
                .open(&parent, OFlag::O_PATH, true)
                .and_then(fstat)
                .is_ok_and(|s| is_dir(&s));
            if !parent_is_dir {
                return Err(CopyError::NoDestinationDirectory(dest_root.show(&parent)).into());
            }
            (parent, PathBuf::from(name))
        }
        Err(e) => return Err(dest_root.io(&dest_path, e).into()),
    };

    let (reader, writer) = io::pipe().map_err(|source| CopyError::Io {
        path: "a pipe".into(),
        source,
    })?;
    std::thread::scope(|scope| {
        let archiving = scope.spawn(|| {
            // When extraction fails (a read-only destination), it closes the pipe's far
            // end: this thread's next write must fail with EPIPE, which the error below
            // explains, not raise SIGPIPE, which ends lade without a word. SIGPIPE for a
            // write goes to the writing thread, so blocking it here is enough.
            SigSet::from(Signal::SIGPIPE)
                .thread_block()
                .map_err(|e| CopyError::Io {
                    path: "a pipe".into(),
                    source: e.into(),
                })?;
            let mut builder = tar::Builder::new(writer);
            archive_tree(&source_root, &source_path, &top, options, &mut builder)?;
            builder.finish().map_err(|source| CopyError::Io {
                path: "a pipe".into(),
                source,
            })
        });
        let extracted = extract(&dest_root, &into, reader, options);
        let archived = archiving
            .join()
            .unwrap_or_else(|_| Err(invalid_copy("the archiving thread panicked")));
        let closed_pipe = |error: &CopyError| matches!(error, CopyError::Io { source, .. } if source.kind() == io::ErrorKind::BrokenPipe);
        match (archived, extracted) {
            // The pipe was closed because extraction failed: its error is the one to tell.
            (Err(archived), Err(extracted)) if closed_pipe(&archived) => Err(extracted.into()),
            // Otherwise the writer's error explains the reader's (a stream cut short).
            (archived, extracted) => archived.and(extracted).map_err(ContainerError::from),
        }
    })
}

fn invalid_copy(message: &str) -> CopyError {
    CopyError::Io {
        path: String::new(),
        source: io::Error::other(message.to_string()),
    }
}

/// Docker's client writes a copy only onto a directory or a regular file of the host
/// (links followed): a device or a pipe (`/dev/stdout`, `/dev/null`) would be replaced
/// by a file, not written to. `-` is the way to standard output.
fn refuse_special_output(path: &Path) -> std::result::Result<(), CopyError> {
    let Ok(metadata) = std::fs::metadata(path) else {
        return Ok(());
    };
    use std::os::unix::fs::FileTypeExt;
    let file_type = metadata.file_type();
    let kind = if file_type.is_dir() || file_type.is_file() {
        return Ok(());
    } else if file_type.is_char_device() || file_type.is_block_device() {
        "a device"
    } else if file_type.is_fifo() {
        "a pipe"
    } else {
        "an irregular file"
    };
    Err(CopyError::NotDirectoryOrFile {
        path: path.display().to_string(),
        kind,
    })
}

/// A host path made absolute against the working directory (links are left to the
/// resolution, which follows them as the kernel would).
fn host_path(path: &Path) -> Result<PathBuf> {
    let text = path.as_os_str().as_bytes();
    let mut absolute = std::path::absolute(path).map_err(|source| CopyError::Io {
        path: path.display().to_string(),
        source,
    })?;
    // `absolute` drops a trailing `/` and `/.`, which choose Docker's behaviour.
    if text.ends_with(b"/.") {
        absolute.push(".");
    } else if text.ends_with(b"/") && !absolute.as_os_str().as_bytes().ends_with(b"/") {
        absolute.as_mut_os_string().push("/");
    }
    Ok(absolute)
}

fn is_dir(stat: &FileStat) -> bool {
    SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
}

fn kind(stat: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT
}

/// Writes `path` (and what is below it) to `builder`, its top entry named `top`.
fn archive_tree<W: Write>(
    root: &Root,
    path: &Path,
    top: &Path,
    options: CopyOptions,
    builder: &mut tar::Builder<W>,
) -> std::result::Result<(), CopyError> {
    let fd = root
        .open(path, OFlag::O_PATH, options.follow_link)
        .map_err(|e| root.io(path, e))?;
    let stat = fstat(&fd).map_err(|e| root.io(path, e))?;
    // Re-opened for reading through the same rooted resolution; the kind must not change.
    let entry = match kind(&stat) {
        SFlag::S_IFDIR | SFlag::S_IFREG => {
            let flags = if is_dir(&stat) {
                OFlag::O_RDONLY | OFlag::O_DIRECTORY
            } else {
                OFlag::O_RDONLY
            };
            let fd = root
                .open(path, flags, options.follow_link)
                .map_err(|e| root.io(path, e))?;
            Opened::Fd(fd)
        }
        SFlag::S_IFLNK => {
            Opened::Link(readlinkat(&fd, Path::new("")).map_err(|e| root.io(path, e))?)
        }
        _ => Opened::Special,
    };
    add_entry(root, path, top, &stat, entry, builder)
}

enum Opened {
    Fd(OwnedFd),
    Link(OsString),
    Special,
}

fn add_entry<W: Write>(
    root: &Root,
    shown: &Path,
    name: &Path,
    stat: &FileStat,
    opened: Opened,
    builder: &mut tar::Builder<W>,
) -> std::result::Result<(), CopyError> {
    let failed = |source: io::Error| CopyError::Io {
        path: root.show(shown),
        source,
    };
    let mut header = tar::Header::new_gnu();
    header.set_mode(stat.st_mode & 0o7777);
    header.set_uid(u64::from(stat.st_uid));
    header.set_gid(u64::from(stat.st_gid));
    header.set_mtime(u64::try_from(stat.st_mtime).unwrap_or(0));
    header.set_size(0);
    match (kind(stat), opened) {
        (SFlag::S_IFDIR, Opened::Fd(fd)) => {
            header.set_entry_type(tar::EntryType::Directory);
            builder
                .append_data(&mut header, name, io::empty())
                .map_err(failed)?;
            let mut dir = nix::dir::Dir::from_fd(fd).map_err(|e| root.io(shown, e))?;
            let mut names: Vec<OsString> = Vec::new();
            for entry in dir.iter() {
                let entry = entry.map_err(|e| root.io(shown, e))?;
                let child = entry.file_name().to_bytes();
                if child != b"." && child != b".." {
                    names.push(OsStr::from_bytes(child).to_os_string());
                }
            }
            names.sort();
            for child in names {
                let shown = shown.join(&child);
                let at = match root.io_at(&dir, &shown, &child) {
                    Ok(at) => at,
                    // Gone since the directory was read (or a /proc entry of a process
                    // not ours to see): skipped, as tar does.
                    Err(CopyError::Io { source, .. })
                        if source.kind() == io::ErrorKind::NotFound =>
                    {
                        continue
                    }
                    Err(e) => return Err(e),
                };
                add_entry(root, &shown, &name.join(&child), &at.0, at.1, builder)?;
            }
            Ok(())
        }
        (SFlag::S_IFREG, Opened::Fd(fd)) => {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(u64::try_from(stat.st_size).unwrap_or(0));
            let file = File::from(fd);
            // Exactly the size in the header, even if the file grows meanwhile.
            let reader = file.take(u64::try_from(stat.st_size).unwrap_or(0));
            builder
                .append_data(&mut header, name, reader)
                .map_err(failed)
        }
        (SFlag::S_IFLNK, Opened::Link(target)) => {
            header.set_entry_type(tar::EntryType::Symlink);
            // Short targets go as written (the tar crate's path form turns `/` into
            // `//`); long ones need its GNU long-link entry.
            if target.len() <= 100 {
                header
                    .set_link_name_literal(target.as_bytes())
                    .map_err(failed)?;
                builder
                    .append_data(&mut header, name, io::empty())
                    .map_err(failed)
            } else {
                builder
                    .append_link(&mut header, name, Path::new(&target))
                    .map_err(failed)
            }
        }
        (file_kind, _) => {
            let entry_type = match file_kind {
                SFlag::S_IFCHR => tar::EntryType::Char,
                SFlag::S_IFBLK => tar::EntryType::Block,
                SFlag::S_IFIFO => tar::EntryType::Fifo,
                _ => return Ok(()), // sockets are not copied, as Docker's tar leaves them
            };
            header.set_entry_type(entry_type);
            let device = stat.st_rdev;
            header
                .set_device_major(nix::sys::stat::major(device) as u32)
                .map_err(failed)?;
            header
                .set_device_minor(nix::sys::stat::minor(device) as u32)
                .map_err(failed)?;
            builder
                .append_data(&mut header, name, io::empty())
                .map_err(failed)
        }
    }
}

impl Root {
    /// Stats and opens `name` in the open directory `dir`, never following a link.
    fn io_at(
        &self,
        dir: &nix::dir::Dir,
        shown: &Path,
        name: &OsStr,
    ) -> std::result::Result<(FileStat, Opened), CopyError> {
        let stat =
            fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(|e| self.io(shown, e))?;
        let opened = match kind(&stat) {
            SFlag::S_IFDIR => Opened::Fd(
                openat(
                    dir,
                    name,
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| self.io(shown, e))?,
            ),
            SFlag::S_IFREG => Opened::Fd(
                openat(
                    dir,
                    name,
                    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| self.io(shown, e))?,
            ),
            SFlag::S_IFLNK => Opened::Link(readlinkat(dir, name).map_err(|e| self.io(shown, e))?),
            _ => Opened::Special,
        };
        Ok((stat, opened))
    }
}

/// Unpacks a tar stream into the directory `into` of `root`, with the one extractor
/// of untrusted archives: the stream may come from anyone (`lade cp - web:/dir`).
fn extract(
    root: &Root,
    into: &Path,
    mut input: impl Read,
    options: CopyOptions,
) -> std::result::Result<(), CopyError> {
    let destination = InRoot {
        root: root.fd.as_fd(),
        into,
        label: &root.label,
        owners: root.owners(options)?,
    };
    layers::extract_in_root(&mut input, &destination, &ExtractLimits::default())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_name_a_container_a_stream_or_a_host_path() {
        assert_eq!(
            CopyEnd::parse("web:/etc/hosts"),
            CopyEnd::Container {
                container: "web".into(),
                path: "/etc/hosts".into()
            }
        );
        assert_eq!(
            CopyEnd::parse("web:"),
            CopyEnd::Container {
                container: "web".into(),
                path: "/".into()
            }
        );
        assert_eq!(CopyEnd::parse("-"), CopyEnd::Stream);
        assert_eq!(CopyEnd::parse("./a:b"), CopyEnd::Host("./a:b".into()));
        assert_eq!(CopyEnd::parse("/tmp/x"), CopyEnd::Host("/tmp/x".into()));
    }

    /// A tar stream of `(path, contents)` files, the names written as given.
    fn stream(files: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (path, contents) in files {
            let mut header = tar::Header::new_gnu();
            header.as_gnu_mut().unwrap().name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_size(contents.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            header.set_cksum();
            out.extend_from_slice(header.as_bytes());
            out.extend_from_slice(contents.as_bytes());
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
        out.resize(out.len() + 1024, 0);
        out
    }

    #[test]
    fn entry_paths_stay_below_the_destination() {
        let dir = tempfile::tempdir().unwrap();
        let inside = dir.path().join("root");
        std::fs::create_dir_all(inside.join("dest")).unwrap();
        let root = Root {
            fd: open_path(&inside, "c:").unwrap(),
            label: "c:".into(),
            user: Some(String::new()),
            _mounted: None,
            _staging: None,
        };
        let options = CopyOptions::default();
        let files = stream(&[("./a/b", "b"), ("/c", "c")]);
        extract(&root, Path::new("/dest"), &files[..], options).unwrap();
        assert_eq!(
            std::fs::read_to_string(inside.join("dest/a/b")).unwrap(),
            "b"
        );
        assert_eq!(std::fs::read_to_string(inside.join("dest/c")).unwrap(), "c");
        let climbing = stream(&[("a/../../b", "out")]);
        let err = extract(&root, Path::new("/dest"), &climbing[..], options).unwrap_err();
        assert!(
            matches!(err, CopyError::Extract(LayerError::Unsafe { .. })),
            "{err}"
        );
        assert!(!inside.join("b").exists());
    }

    #[test]
    fn a_file_never_replaces_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let inside = dir.path().join("root");
        std::fs::create_dir_all(inside.join("dest/a")).unwrap();
        std::fs::write(inside.join("dest/a/kept"), "kept").unwrap();
        let root = Root {
            fd: open_path(&inside, "c:").unwrap(),
            label: "c:".into(),
            user: Some(String::new()),
            _mounted: None,
            _staging: None,
        };
        let files = stream(&[("a", "file")]);
        let err = extract(
            &root,
            Path::new("/dest"),
            &files[..],
            CopyOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(err, "cannot replace the directory c:/dest/a with a file");
        assert!(inside.join("dest/a/kept").exists());
    }

    #[test]
    fn the_roots_own_links_are_followed_inside_it() {
        let dir = tempfile::tempdir().unwrap();
        let inside = dir.path().join("root");
        std::fs::create_dir_all(inside.join("run")).unwrap();
        std::fs::create_dir_all(inside.join("var")).unwrap();
        std::os::unix::fs::symlink("/run", inside.join("var/run")).unwrap();
        std::os::unix::fs::symlink("/", inside.join("up")).unwrap();
        let root = Root {
            fd: open_path(&inside, "c:").unwrap(),
            label: "c:".into(),
            user: Some(String::new()),
            _mounted: None,
            _staging: None,
        };
        let files = stream(&[("var/run/pid", "1"), ("up/etc/x", "x")]);
        extract(&root, Path::new("/"), &files[..], CopyOptions::default()).unwrap();
        assert_eq!(
            std::fs::read_to_string(inside.join("run/pid")).unwrap(),
            "1"
        );
        assert_eq!(std::fs::read_to_string(inside.join("etc/x")).unwrap(), "x");
    }

    #[test]
    fn a_link_to_the_root_resolves_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let inside = dir.path().join("root");
        std::fs::create_dir_all(inside.join("etc")).unwrap();
        std::fs::write(inside.join("etc/secret"), "inside").unwrap();
        std::os::unix::fs::symlink("/", inside.join("up")).unwrap();
        std::os::unix::fs::symlink("../../../../..", inside.join("climb")).unwrap();
        let root = Root {
            fd: open_path(&inside, "c:").unwrap(),
            label: "c:".into(),
            user: Some(String::new()),
            _mounted: None,
            _staging: None,
        };
        for path in ["/up/etc/secret", "/climb/etc/secret", "/../etc/secret"] {
            let fd = root.open(Path::new(path), OFlag::O_RDONLY, true).unwrap();
            let mut text = String::new();
            File::from(fd).read_to_string(&mut text).unwrap();
            assert_eq!(text, "inside", "{path}");
        }
    }
}
