//! The privileged calls that build a container's file system, behind a small trait: the
//! real one makes the system calls, a recording fake lets unit tests check the sequence
//! (what is mounted where, in which order, before `pivot_root`).
//!
//! A mount target inside the container's root is opened by the kernel with the root as
//! its root (`openat2` with `RESOLVE_IN_ROOT`), and the mount goes onto that open file
//! through `/proc/self/fd/N`: an image's symlinks, or a path swapped under a shared
//! volume meanwhile, cannot send a mount (or a mask) anywhere but where the container
//! itself would see that path (runc's answer to CVE-2019-16884 and CVE-2019-19921).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{mknod, Mode, SFlag};

/// A path inside the root, opened: `handle` names exactly what was opened (mount onto
/// it), `resolved` is where that is, for checks and messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinned {
    pub handle: PathBuf,
    pub resolved: PathBuf,
    pub is_dir: bool,
}

pub trait Sys {
    fn mount(
        &mut self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> io::Result<()>;
    fn umount_detach(&mut self, target: &Path) -> io::Result<()>;
    fn mkdir_all(&mut self, path: &Path, mode: u32) -> io::Result<()>;
    /// Creates an empty file (a mount point for a file).
    fn touch(&mut self, path: &Path) -> io::Result<()>;
    fn mknod(
        &mut self,
        path: &Path,
        kind: SFlag,
        mode: u32,
        major: u64,
        minor: u64,
    ) -> io::Result<()>;
    fn symlink(&mut self, target: &str, path: &Path) -> io::Result<()>;
    /// Removes `path` and what it holds; a missing path is no error.
    fn remove_tree(&mut self, path: &Path) -> io::Result<()>;
    fn chdir(&mut self, path: &Path) -> io::Result<()>;
    fn pivot_root(&mut self, new_root: &Path, put_old: &Path) -> io::Result<()>;
    fn exists(&mut self, path: &Path) -> bool;
    fn is_dir(&mut self, path: &Path) -> bool;
    /// Opens `path` inside `root`, resolved as a process chrooted there would (symlinks
    /// cannot leave it); `None` when it does not exist. The handle stays valid as long
    /// as `self` does.
    fn open_in_root(&mut self, root: &Path, path: &str) -> io::Result<Option<Pinned>>;
    /// Creates `path` inside `root` (missing parents as directories; the last a file
    /// when `file`), every component resolved inside the root.
    fn create_in_root(&mut self, root: &Path, path: &str, file: bool) -> io::Result<()>;
}

/// The real system calls. Holds the descriptors of opened mount targets until dropped.
#[derive(Default)]
pub struct Linux {
    pinned: Vec<OwnedFd>,
}

/// The path's normal components; `..` is kept (the kernel resolves it inside the root).
fn relative_components(path: &str) -> Vec<&std::ffi::OsStr> {
    Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            Component::ParentDir => Some(std::ffi::OsStr::new("..")),
            _ => None,
        })
        .collect()
}

fn open_root(root: &Path) -> io::Result<OwnedFd> {
    nix::fcntl::open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(io::Error::from)
}

/// Opens `relative` under `root_fd` as if `root_fd` were `/`.
fn open_beneath(root_fd: &OwnedFd, relative: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    let relative = if relative.as_os_str().is_empty() {
        Path::new(".")
    } else {
        relative
    };
    nix::fcntl::openat2(
        root_fd,
        relative,
        OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS),
    )
}

impl Sys for Linux {
    fn open_in_root(&mut self, root: &Path, path: &str) -> io::Result<Option<Pinned>> {
        let root_fd = open_root(root)?;
        let relative: PathBuf = relative_components(path).into_iter().collect();
        let opened = match open_beneath(&root_fd, &relative, OFlag::O_PATH) {
            Ok(fd) => fd,
            Err(nix::Error::ENOENT) => return Ok(None),
            Err(e) => return Err(io::Error::from(e)),
        };
        let handle = PathBuf::from(format!("/proc/self/fd/{}", opened.as_raw_fd()));
        let resolved = std::fs::read_link(&handle)?;
        let is_dir = nix::sys::stat::fstat(&opened)
            .map(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR)
            .map_err(io::Error::from)?;
        self.pinned.push(opened);
        Ok(Some(Pinned {
            handle,
            resolved,
            is_dir,
        }))
    }

    fn create_in_root(&mut self, root: &Path, path: &str, file: bool) -> io::Result<()> {
        let root_fd = open_root(root)?;
        // Symlinks on the way are followed inside the root, so a dangling link (an
        // image's `/etc/resolv.conf -> ../run/systemd/resolve/stub-resolv.conf`) gets
        // its target made, as runc makes it. Each entry is then made by name in a parent
        // the kernel resolved inside the root: whatever changes meanwhile, nothing is
        // made outside it.
        let resolved = super::paths::resolve_in_root(root, path, true);
        let relative = resolved
            .strip_prefix(root)
            .unwrap_or(&resolved)
            .to_path_buf();
        let parts: Vec<&std::ffi::OsStr> = relative.iter().collect();
        let mut prefix = PathBuf::new();
        for (i, part) in parts.iter().enumerate() {
            let parent = prefix.clone();
            prefix.push(part);
            match open_beneath(&root_fd, &prefix, OFlag::O_PATH) {
                Ok(_) => continue,
                Err(nix::Error::ENOENT) => {}
                Err(e) => return Err(io::Error::from(e)),
            }
            let parent_fd = open_beneath(&root_fd, &parent, OFlag::O_DIRECTORY | OFlag::O_RDONLY)?;
            let last = i + 1 == parts.len();
            // O_EXCL: never open (and block on) a FIFO that appeared there meanwhile.
            let made = if last && file {
                nix::fcntl::openat(
                    &parent_fd,
                    *part,
                    OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_WRONLY
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o644),
                )
                .map(drop)
            } else {
                nix::sys::stat::mkdirat(&parent_fd, *part, Mode::from_bits_truncate(0o755))
            };
            match made {
                Ok(()) | Err(nix::Error::EEXIST) => {}
                Err(e) => return Err(io::Error::from(e)),
            }
        }
        Ok(())
    }

    fn mount(
        &mut self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> io::Result<()> {
        mount(source, target, fstype, flags, data).map_err(io::Error::from)
    }

    fn umount_detach(&mut self, target: &Path) -> io::Result<()> {
        umount2(target, MntFlags::MNT_DETACH).map_err(io::Error::from)
    }

    fn mkdir_all(&mut self, path: &Path, mode: u32) -> io::Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(path)
    }

    fn touch(&mut self, path: &Path) -> io::Result<()> {
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map(drop)
    }

    fn mknod(
        &mut self,
        path: &Path,
        kind: SFlag,
        mode: u32,
        major: u64,
        minor: u64,
    ) -> io::Result<()> {
        mknod(
            path,
            kind,
            Mode::from_bits_truncate(mode),
            nix::sys::stat::makedev(major, minor),
        )
        .map_err(io::Error::from)
    }

    fn symlink(&mut self, target: &str, path: &Path) -> io::Result<()> {
        std::os::unix::fs::symlink(target, path)
    }

    fn remove_tree(&mut self, path: &Path) -> io::Result<()> {
        match std::fs::remove_dir_all(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    fn chdir(&mut self, path: &Path) -> io::Result<()> {
        std::env::set_current_dir(path)
    }

    fn pivot_root(&mut self, new_root: &Path, put_old: &Path) -> io::Result<()> {
        nix::unistd::pivot_root(new_root, put_old).map_err(io::Error::from)
    }

    fn exists(&mut self, path: &Path) -> bool {
        std::fs::symlink_metadata(path).is_ok()
    }

    fn is_dir(&mut self, path: &Path) -> bool {
        std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
    }
}

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Mount {
        source: Option<PathBuf>,
        target: PathBuf,
        fstype: Option<String>,
        flags: MsFlags,
        data: Option<String>,
    },
    Umount(PathBuf),
    Mkdir(PathBuf),
    Touch(PathBuf),
    Mknod(PathBuf),
    Symlink(String, PathBuf),
    RemoveTree(PathBuf),
    Chdir(PathBuf),
    PivotRoot(PathBuf),
}

/// Records calls instead of making them; paths "exist" once created or listed.
#[derive(Debug, Default)]
pub struct Recorder {
    pub calls: Vec<Call>,
    pub existing: Vec<PathBuf>,
    pub dirs: Vec<PathBuf>,
    /// A mount option this kernel does not know: a mount that asks for it fails with
    /// EINVAL (after being recorded).
    pub refuse_option: Option<String>,
    /// Symlinks in the root: (the link's full path, its absolute target in the root).
    pub links: Vec<(PathBuf, String)>,
}

impl Sys for Recorder {
    fn mount(
        &mut self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> io::Result<()> {
        self.calls.push(Call::Mount {
            source: source.map(Path::to_path_buf),
            target: target.to_path_buf(),
            fstype: fstype.map(str::to_string),
            flags,
            data: data.map(str::to_string),
        });
        let refused = self
            .refuse_option
            .as_deref()
            .is_some_and(|option| data.is_some_and(|d| d.split(',').any(|o| o == option)));
        if refused {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        Ok(())
    }

    fn umount_detach(&mut self, target: &Path) -> io::Result<()> {
        self.calls.push(Call::Umount(target.to_path_buf()));
        Ok(())
    }

    fn mkdir_all(&mut self, path: &Path, _mode: u32) -> io::Result<()> {
        self.calls.push(Call::Mkdir(path.to_path_buf()));
        self.dirs.push(path.to_path_buf());
        self.existing.push(path.to_path_buf());
        Ok(())
    }

    fn touch(&mut self, path: &Path) -> io::Result<()> {
        self.calls.push(Call::Touch(path.to_path_buf()));
        self.existing.push(path.to_path_buf());
        Ok(())
    }

    fn mknod(
        &mut self,
        path: &Path,
        _kind: SFlag,
        _mode: u32,
        _major: u64,
        _minor: u64,
    ) -> io::Result<()> {
        self.calls.push(Call::Mknod(path.to_path_buf()));
        self.existing.push(path.to_path_buf());
        Ok(())
    }

    fn symlink(&mut self, target: &str, path: &Path) -> io::Result<()> {
        self.calls
            .push(Call::Symlink(target.to_string(), path.to_path_buf()));
        self.existing.push(path.to_path_buf());
        Ok(())
    }

    fn remove_tree(&mut self, path: &Path) -> io::Result<()> {
        self.calls.push(Call::RemoveTree(path.to_path_buf()));
        self.existing.retain(|p| !p.starts_with(path));
        self.dirs.retain(|p| !p.starts_with(path));
        Ok(())
    }

    fn chdir(&mut self, path: &Path) -> io::Result<()> {
        self.calls.push(Call::Chdir(path.to_path_buf()));
        Ok(())
    }

    fn pivot_root(&mut self, new_root: &Path, _put_old: &Path) -> io::Result<()> {
        self.calls.push(Call::PivotRoot(new_root.to_path_buf()));
        Ok(())
    }

    fn exists(&mut self, path: &Path) -> bool {
        self.existing.iter().any(|p| p == path)
    }

    fn is_dir(&mut self, path: &Path) -> bool {
        self.dirs.iter().any(|p| p == path)
    }

    /// Resolves with the symlinks of `links`, and names the result itself as the handle,
    /// so recorded mounts show where they go.
    fn open_in_root(&mut self, root: &Path, path: &str) -> io::Result<Option<Pinned>> {
        let mut resolved = root.join(path.trim_start_matches('/'));
        for (link, target) in &self.links {
            if let Ok(rest) = resolved.strip_prefix(link) {
                resolved = root.join(target.trim_start_matches('/')).join(rest);
            }
        }
        if !self.exists(&resolved) {
            return Ok(None);
        }
        let is_dir = self.is_dir(&resolved);
        Ok(Some(Pinned {
            handle: resolved.clone(),
            resolved,
            is_dir,
        }))
    }

    fn create_in_root(&mut self, root: &Path, path: &str, file: bool) -> io::Result<()> {
        let target = root.join(path.trim_start_matches('/'));
        if file {
            if let Some(parent) = target.parent() {
                self.mkdir_all(parent, 0o755)?;
            }
            self.touch(&target)
        } else {
            self.mkdir_all(&target, 0o755)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dangling_link_gets_its_target_made_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::os::unix::fs::symlink(
            "../run/systemd/resolve/stub-resolv.conf",
            root.join("etc/resolv.conf"),
        )
        .unwrap();
        // An absolute target is the root's, never the host's.
        let outside = dir.path().join("outside");
        std::os::unix::fs::symlink(&outside, root.join("escape")).unwrap();

        let mut sys = Linux::default();
        assert_eq!(sys.open_in_root(&root, "/etc/resolv.conf").unwrap(), None);
        sys.create_in_root(&root, "/etc/resolv.conf", true).unwrap();
        let made = root.join("run/systemd/resolve/stub-resolv.conf");
        assert!(made.is_file());
        let opened = sys
            .open_in_root(&root, "/etc/resolv.conf")
            .unwrap()
            .unwrap();
        assert_eq!(opened.resolved, made);
        assert!(!opened.is_dir);

        sys.create_in_root(&root, "/escape/data", false).unwrap();
        assert!(!outside.exists(), "made on the host");
        let inside = root.join(outside.strip_prefix("/").unwrap()).join("data");
        assert!(inside.is_dir(), "{}", inside.display());
        let opened = sys.open_in_root(&root, "/escape/data").unwrap().unwrap();
        assert_eq!(opened.resolved, inside);
        assert!(opened.is_dir);
        // Made twice: nothing changes, no error.
        sys.create_in_root(&root, "/etc/resolv.conf", true).unwrap();
    }
}
