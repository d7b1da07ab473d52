//! The privileged calls that build a container's file system, behind a small trait: the
//! real one makes the system calls, a recording fake lets unit tests check the sequence
//! (what is mounted where, in which order, before `pivot_root`).

use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{mknod, Mode, SFlag};

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
    fn chdir(&mut self, path: &Path) -> io::Result<()>;
    fn pivot_root(&mut self, new_root: &Path, put_old: &Path) -> io::Result<()>;
    fn exists(&mut self, path: &Path) -> bool;
    fn is_dir(&mut self, path: &Path) -> bool;
}

/// The real system calls.
pub struct Linux;

impl Sys for Linux {
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
}
