//! The one extractor of untrusted tar streams. Reading is shared by every destination:
//! extension headers, entry counts, path lengths and sizes are bounded, `..` components
//! are refused and leading `/` dropped, and errors name the entry.
//!
//! Where entries land is the one thing that differs:
//! - a layer ([`extract`]): an empty directory; no entry is created through a symlink,
//!   hard links only point at earlier entries inside, the root itself cannot be
//!   replaced, and whiteouts become overlay's (`.wh.<name>` a 0/0 character device,
//!   `.wh..wh..opq` the `trusted.overlay.opaque` attribute);
//! - a directory inside a root ([`extract_in_root`], `lade cp` into a container): every
//!   path is resolved with `openat2(RESOLVE_IN_ROOT)` against the root's descriptor, so
//!   the root's own symlinks are followed as the container would follow them but never
//!   lead out of it, and entries are made relative to their opened parent without
//!   following links (the `root` module).

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::AtFlags;
use nix::sys::stat::SFlag;
use nix::unistd::{fchownat, Gid, Uid};
use tar::EntryType;

use super::entry::{
    make_node, overlay_opaque_xattr, set_mtime, xattr_set, OPAQUE_MARKER, WHITEOUT_PREFIX,
};
use super::root::{InRoot, RootLanding};
use super::{IoContext, LayerError, Result};

/// Bounds on what one archive may make lade do.
#[derive(Debug, Clone)]
pub struct ExtractLimits {
    pub max_entries: u64,
    /// Largest PAX or GNU long-name header kept in memory.
    pub max_header_bytes: u64,
    pub max_path_bytes: usize,
    pub max_total_bytes: u64,
    /// Free space to leave on the target's file system: unpacking stops before it would
    /// eat into it (a decompression bomb fills no disk).
    pub reserve: Option<u64>,
}

impl ExtractLimits {
    /// The limits for unpacking into `store`, with its reserve of free space.
    pub fn for_store(store: &crate::store::Store) -> ExtractLimits {
        ExtractLimits {
            reserve: Some(store.reserve()),
            ..ExtractLimits::default()
        }
    }
}

/// How often (in bytes written, and in entries) free space is looked at again.
const SPACE_CHECK_BYTES: u64 = 64 << 20;
const SPACE_CHECK_ENTRIES: u64 = 4096;

impl Default for ExtractLimits {
    fn default() -> Self {
        ExtractLimits {
            max_entries: 5_000_000,
            max_header_bytes: 1 << 20,
            max_path_bytes: 4096,
            max_total_bytes: 1 << 40,
            reserve: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtractStats {
    pub entries: u64,
    pub bytes: u64,
    /// Device nodes left out: rootless lade cannot make them (only the initial user
    /// namespace's root may), and a container could not open them anyway (its root is
    /// mounted `nodev`).
    pub skipped_devices: Vec<String>,
}

/// What PAX and GNU extension headers say about the next entry.
#[derive(Default)]
struct Pending {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    uid: Option<u64>,
    gid: Option<u64>,
    mtime: Option<i64>,
    size: Option<u64>,
    xattrs: Vec<(String, Vec<u8>)>,
}

/// Extracts the tar read from `reader` into `target`, an empty directory that becomes a
/// layer's snapshot.
pub fn extract(
    reader: &mut dyn Read,
    target: &Path,
    limits: &ExtractLimits,
) -> Result<ExtractStats> {
    let mut landing = LayerLanding {
        target: target.to_path_buf(),
        known_dirs: HashSet::new(),
        dir_times: Vec::new(),
    };
    let budget = Budget {
        limits: limits.clone(),
        space_at: Some(target.to_path_buf()),
        stats: ExtractStats::default(),
    };
    read_entries(reader, &mut landing, budget, target)
}

/// Extracts the tar read from `reader` into a directory inside a root (`lade cp` into a
/// container): see [`InRoot`] for how entries land there.
pub fn extract_in_root(
    reader: &mut dyn Read,
    destination: &InRoot<'_>,
    limits: &ExtractLimits,
) -> Result<ExtractStats> {
    let mut landing = RootLanding::new(destination);
    let budget = Budget {
        limits: limits.clone(),
        // The destination is reached through a descriptor only: nothing to measure.
        space_at: None,
        stats: ExtractStats::default(),
    };
    read_entries(reader, &mut landing, budget, destination.into)
}

/// An entry as the archive describes it, its path checked and split.
pub(super) struct ArchiveEntry {
    /// The path's components, without `.`, `..` or empty ones.
    pub parts: Vec<Vec<u8>>,
    /// The path as errors show it.
    pub shown: String,
    pub entry_type: EntryType,
    pub uid: u32,
    pub gid: u32,
    /// Permission bits, setuid, setgid and sticky included.
    pub mode: u32,
    pub mtime: i64,
    /// A link's target, for symlinks and hard links.
    pub link: Option<Vec<u8>>,
    pub device: (u32, u32),
    /// The size the header gives.
    pub size: u64,
    /// Extended attributes from PAX records.
    pub xattrs: Vec<(String, Vec<u8>)>,
}

/// Where entries land: the part of extraction that differs between destinations.
pub(super) trait Landing {
    /// Makes one entry; `data` is its content, for a regular file.
    fn land(
        &mut self,
        entry: &ArchiveEntry,
        data: &mut dyn Read,
        budget: &mut Budget,
    ) -> Result<()>;

    /// Runs once the archive is read (directory times go last: entries change them).
    fn finish(&mut self) -> Result<()>;
}

/// The archive's bounds and what has been written against them.
pub(super) struct Budget {
    limits: ExtractLimits,
    /// Where free space is measured for the reserve.
    space_at: Option<PathBuf>,
    stats: ExtractStats,
}

fn read_entries(
    reader: &mut dyn Read,
    landing: &mut dyn Landing,
    mut budget: Budget,
    target: &Path,
) -> Result<ExtractStats> {
    let limits = budget.limits.clone();
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().at(target)?.raw(true);
    let mut pending = Pending::default();
    let mut count: u64 = 0;
    let mut last_name = String::new();
    for raw in entries {
        let mut entry = raw.map_err(|e| LayerError::Malformed {
            entry: if last_name.is_empty() {
                format!("#{}", count + 1)
            } else {
                format!("#{} (after {last_name})", count + 1)
            },
            reason: super::tar_error_text(&e),
        })?;
        count += 1;
        if count > limits.max_entries {
            return Err(LayerError::Unsafe {
                entry: format!("#{count}"),
                reason: format!("more than {} entries", limits.max_entries),
            });
        }
        let header_name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let entry_type = entry.header().entry_type();
        if matches!(
            entry_type,
            EntryType::GNULongName
                | EntryType::GNULongLink
                | EntryType::XHeader
                | EntryType::XGlobalHeader
        ) {
            let data = read_bounded(&mut entry, limits.max_header_bytes, &header_name)?;
            match entry_type {
                EntryType::GNULongName => pending.path = Some(trim_nul(data)),
                EntryType::GNULongLink => pending.link = Some(trim_nul(data)),
                EntryType::XHeader => apply_pax(&mut pending, &data, &header_name)?,
                _ => {}
            }
            continue;
        }
        let fields = std::mem::take(&mut pending);
        last_name = String::from_utf8_lossy(fields.path.as_deref().unwrap_or(&entry.path_bytes()))
            .into_owned();
        if count.is_multiple_of(SPACE_CHECK_ENTRIES) {
            budget.check_space(0, &last_name)?;
        }
        let described = describe(&mut entry, fields, &limits, target)?;
        landing.land(&described, &mut entry, &mut budget)?;
    }
    landing.finish()?;
    Ok(budget.stats)
}

/// Checks an entry's path against the limits and gathers what its headers say.
fn describe(
    entry: &mut tar::Entry<'_, &mut dyn Read>,
    fields: Pending,
    limits: &ExtractLimits,
    target: &Path,
) -> Result<ArchiveEntry> {
    let header = entry.header().clone();
    let raw_path = fields
        .path
        .clone()
        .unwrap_or_else(|| entry.path_bytes().into_owned());
    // The path must also fit the kernel's limit once under the target.
    let room = (libc::PATH_MAX as usize).saturating_sub(target.as_os_str().len() + 2);
    let max_path = limits.max_path_bytes.min(room);
    if raw_path.len() > max_path {
        let mut shown = String::from_utf8_lossy(&raw_path[..raw_path.len().min(80)]).into_owned();
        shown.push_str("...");
        return Err(LayerError::Unsafe {
            entry: shown,
            reason: format!("a path longer than {max_path} bytes"),
        });
    }
    let shown = String::from_utf8_lossy(&raw_path).into_owned();
    if let Some(size) = fields.size {
        if header.size().ok() != Some(size) {
            return Err(LayerError::Malformed {
                entry: shown,
                reason: "a PAX size that differs from the header's is not supported".into(),
            });
        }
    }
    let parts = components(&raw_path, &shown)?;
    Ok(ArchiveEntry {
        parts,
        shown,
        entry_type: header.entry_type(),
        uid: fields.uid.or_else(|| header.uid().ok()).unwrap_or(0) as u32,
        gid: fields.gid.or_else(|| header.gid().ok()).unwrap_or(0) as u32,
        mode: header.mode().unwrap_or(0o644) & 0o7777,
        mtime: fields
            .mtime
            .or_else(|| header.mtime().ok().map(|m| m as i64))
            .unwrap_or(0),
        link: fields
            .link
            .or_else(|| entry.link_name_bytes().map(|l| l.into_owned())),
        device: (
            header.device_major().ok().flatten().unwrap_or(0),
            header.device_minor().ok().flatten().unwrap_or(0),
        ),
        size: header.size().unwrap_or(0),
        xattrs: fields.xattrs,
    })
}

/// Refuses to go on when writing `more` bytes into `dir` would leave less than
/// `reserve` free on its file system; `what` names what is being written.
pub fn check_room(dir: &Path, more: u64, reserve: u64, what: &str) -> Result<()> {
    let (available, _) = crate::store::filesystem_space(dir).at(dir)?;
    if available.saturating_sub(more) < reserve {
        return Err(LayerError::NoSpace {
            entry: what.to_string(),
            needed: more,
            available,
            reserve,
            path: dir.to_path_buf(),
        });
    }
    Ok(())
}

fn trim_nul(mut data: Vec<u8>) -> Vec<u8> {
    while data.last() == Some(&0) {
        data.pop();
    }
    data
}

fn read_bounded(reader: &mut dyn Read, max: u64, name: &str) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    reader
        .take(max + 1)
        .read_to_end(&mut data)
        .map_err(|e| LayerError::Malformed {
            entry: name.to_string(),
            reason: e.to_string(),
        })?;
    if data.len() as u64 > max {
        return Err(LayerError::Unsafe {
            entry: name.to_string(),
            reason: format!("an extension header larger than {max} bytes"),
        });
    }
    Ok(data)
}

fn apply_pax(pending: &mut Pending, data: &[u8], name: &str) -> Result<()> {
    for extension in tar::PaxExtensions::new(data) {
        let extension = extension.map_err(|e| LayerError::Malformed {
            entry: name.to_string(),
            reason: format!("bad PAX record: {e}"),
        })?;
        let Ok(key) = extension.key() else { continue };
        let value = extension.value_bytes();
        let number = || {
            std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.split('.').next()?.parse::<i64>().ok())
        };
        match key {
            "path" => pending.path = Some(value.to_vec()),
            "linkpath" => pending.link = Some(value.to_vec()),
            "uid" => pending.uid = number().and_then(|n| u64::try_from(n).ok()),
            "gid" => pending.gid = number().and_then(|n| u64::try_from(n).ok()),
            "mtime" => pending.mtime = number(),
            "size" => pending.size = number().and_then(|n| u64::try_from(n).ok()),
            _ => {
                if let Some(attr) = key.strip_prefix("SCHILY.xattr.") {
                    pending.xattrs.push((attr.to_string(), value.to_vec()));
                }
            }
        }
    }
    Ok(())
}

/// A layer's snapshot directory, empty to begin with.
struct LayerLanding {
    target: PathBuf,
    /// Directories under the target known to be real directories (not symlinks).
    known_dirs: HashSet<PathBuf>,
    dir_times: Vec<(PathBuf, i64)>,
}

/// Splits an archive path into components: leading `/` and `.` components dropped, `..`
/// refused.
pub(super) fn components(raw: &[u8], shown: &str) -> Result<Vec<Vec<u8>>> {
    let mut parts = Vec::new();
    for part in raw.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                return Err(LayerError::Unsafe {
                    entry: shown.to_string(),
                    reason: "a `..` component would leave the target".into(),
                })
            }
            p => parts.push(p.to_vec()),
        }
    }
    Ok(parts)
}

impl Landing for LayerLanding {
    fn land(
        &mut self,
        archived: &ArchiveEntry,
        data: &mut dyn Read,
        budget: &mut Budget,
    ) -> Result<()> {
        let shown = archived.shown.clone();
        let entry_type = archived.entry_type;
        let Some((name, parents)) = archived.parts.split_last() else {
            // The root itself: its metadata is the image's business, its kind is not.
            if entry_type != EntryType::Directory {
                return Err(LayerError::Unsafe {
                    entry: shown,
                    reason: "it would replace the root of the layer".into(),
                });
            }
            return Ok(());
        };

        // Whiteouts.
        if name.as_slice() == OPAQUE_MARKER {
            let dir = self.ensure_parents(parents, &shown)?;
            xattr_set(&dir, overlay_opaque_xattr(), b"y")?;
            return Ok(());
        }
        if name.starts_with(b".wh..wh.") {
            return Ok(()); // aufs bookkeeping, meaningless here
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            if hidden.is_empty() || hidden == b"." || hidden == b".." {
                return Err(LayerError::Unsafe {
                    entry: shown,
                    reason: "a whiteout must name a file: `.wh.` alone names nothing".into(),
                });
            }
            let dir = self.ensure_parents(parents, &shown)?;
            let path = dir.join(OsStr::from_bytes(hidden));
            self.clear(&path)?;
            make_node(&path, SFlag::S_IFCHR, 0, 0)?;
            return Ok(());
        }

        let dir = self.ensure_parents(parents, &shown)?;
        let path = dir.join(OsStr::from_bytes(name));
        let existing_dir = fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
        if !(entry_type == EntryType::Directory && existing_dir) {
            self.clear(&path)?;
        }
        let (uid, gid, mode, mtime) = (archived.uid, archived.gid, archived.mode, archived.mtime);
        let link = archived.link.clone();

        match entry_type {
            EntryType::Directory => {
                if !existing_dir {
                    fs::create_dir(&path).at(&path)?;
                }
                self.known_dirs.insert(path.clone());
                self.dir_times.push((path.clone(), mtime));
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                // A sparse entry stores less than it unpacks to; the tar reader fills
                // its holes, and the copy counts what it really writes.
                let size = archived.size;
                budget.check_space(size, &shown)?;
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&path)
                    .at(&path)?;
                let written = budget.copy_data(data, &mut file, &shown, &path)?;
                if entry_type != EntryType::GNUSparse && written < size {
                    return Err(ends_inside(shown, written, size));
                }
            }
            EntryType::Symlink => {
                let target = link.ok_or_else(|| LayerError::Malformed {
                    entry: shown.clone(),
                    reason: "a symlink without a target".into(),
                })?;
                symlink(OsStr::from_bytes(&target), &path).at(&path)?;
            }
            EntryType::Link => {
                let target = link.ok_or_else(|| LayerError::Malformed {
                    entry: shown.clone(),
                    reason: "a hard link without a target".into(),
                })?;
                let source = self.hardlink_source(&target, &shown)?;
                fs::hard_link(&source, &path).at(&path)?;
                budget.count_entry();
                return Ok(());
            }
            EntryType::Char | EntryType::Block => {
                let (major, minor) = archived.device;
                let kind = if entry_type == EntryType::Char {
                    SFlag::S_IFCHR
                } else {
                    SFlag::S_IFBLK
                };
                match make_node(&path, kind, major, minor) {
                    Err(LayerError::Io { source, .. })
                        if source.raw_os_error() == Some(libc::EPERM)
                            && crate::store::in_user_namespace() =>
                    {
                        budget.stats.skipped_devices.push(shown);
                        return Ok(());
                    }
                    other => other?,
                }
            }
            EntryType::Fifo => make_node(&path, SFlag::S_IFIFO, 0, 0)?,
            other => return Err(unsupported(shown, other)),
        }

        fchownat(
            nix::fcntl::AT_FDCWD,
            &path,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| LayerError::Io {
            path: path.clone(),
            source: e.into(),
        })?;
        if entry_type != EntryType::Symlink {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).at(&path)?;
        }
        for (key, value) in &archived.xattrs {
            // Overlay's own attributes would change what the mount shows: never from a layer.
            if key.starts_with("trusted.overlay.") || key.starts_with("user.overlay.") {
                continue;
            }
            xattr_set(&path, key, value)?;
        }
        if entry_type != EntryType::Directory {
            set_mtime(&path, mtime)?;
        }
        budget.count_entry();
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        for (path, mtime) in self.dir_times.iter().rev() {
            if fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
                set_mtime(path, *mtime)?;
            }
        }
        Ok(())
    }
}

/// A regular file's entry that holds fewer bytes than its header promised.
pub(super) fn ends_inside(shown: String, written: u64, size: u64) -> LayerError {
    LayerError::Malformed {
        entry: shown,
        reason: format!("the archive ends inside it ({written} of its {size} bytes)"),
    }
}

pub(super) fn unsupported(shown: String, entry_type: EntryType) -> LayerError {
    LayerError::Malformed {
        entry: shown,
        reason: format!("unsupported entry type {entry_type:?}"),
    }
}

impl Budget {
    /// Copies an entry's data, bounded by the total size limit and the reserve of free
    /// space. Returns the bytes written.
    pub(super) fn copy_data(
        &mut self,
        data: &mut dyn Read,
        file: &mut fs::File,
        shown: &str,
        path: &Path,
    ) -> Result<u64> {
        use std::io::Write;
        let mut buffer = vec![0u8; 1 << 16];
        let mut written: u64 = 0;
        let mut since_check: u64 = 0;
        loop {
            let n = match data.read(&mut buffer) {
                Ok(0) => return Ok(written),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(LayerError::Malformed {
                        entry: shown.to_string(),
                        reason: super::tar_error_text(&e),
                    })
                }
            };
            written += n as u64;
            self.stats.bytes += n as u64;
            if self.stats.bytes > self.limits.max_total_bytes {
                return Err(LayerError::Unsafe {
                    entry: shown.to_string(),
                    reason: format!("more than {} bytes in all", self.limits.max_total_bytes),
                });
            }
            since_check += n as u64;
            if since_check >= SPACE_CHECK_BYTES {
                since_check = 0;
                self.check_space(0, shown)?;
            }
            file.write_all(&buffer[..n]).at(path)?;
        }
    }

    /// Refuses to go on when writing `more` bytes would leave less than the reserve
    /// free on the target's file system.
    pub(super) fn check_space(&self, more: u64, shown: &str) -> Result<()> {
        match (self.limits.reserve, &self.space_at) {
            (Some(reserve), Some(dir)) => check_room(dir, more, reserve, shown),
            _ => Ok(()),
        }
    }

    /// Counts one more entry made.
    pub(super) fn count_entry(&mut self) {
        self.stats.entries += 1;
    }
}

impl LayerLanding {
    /// Makes sure every parent of an entry is a real directory under the target,
    /// creating missing ones; a symlink on the way is refused. Returns the parent.
    fn ensure_parents(&mut self, parents: &[Vec<u8>], shown: &str) -> Result<PathBuf> {
        let mut dir = self.target.clone();
        // Usually the whole parent is already known: one lookup instead of one per
        // component (deeply nested archives would otherwise cost the square of depth).
        let mut whole = self.target.clone();
        whole.extend(parents.iter().map(|p| OsStr::from_bytes(p)));
        if parents.is_empty() || self.known_dirs.contains(&whole) {
            return Ok(whole);
        }
        for part in parents {
            dir.push(OsStr::from_bytes(part));
            if self.known_dirs.contains(&dir) {
                continue;
            }
            match fs::symlink_metadata(&dir) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(LayerError::Unsafe {
                        entry: shown.to_string(),
                        reason: format!(
                            "it goes through the symlink {}",
                            dir.strip_prefix(&self.target).unwrap_or(&dir).display()
                        ),
                    })
                }
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    return Err(LayerError::Malformed {
                        entry: shown.to_string(),
                        reason: format!(
                            "its parent {} is not a directory",
                            dir.strip_prefix(&self.target).unwrap_or(&dir).display()
                        ),
                    })
                }
                Err(_) => {
                    fs::create_dir(&dir).at(&dir)?;
                    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).at(&dir)?;
                }
            }
            self.known_dirs.insert(dir.clone());
        }
        Ok(dir)
    }

    /// A hard link's target must be an earlier, non-directory entry under the target,
    /// reached without symlinks.
    fn hardlink_source(&mut self, target: &[u8], shown: &str) -> Result<PathBuf> {
        let target_shown = String::from_utf8_lossy(target).into_owned();
        let parts = components(target, shown).map_err(|_| LayerError::Unsafe {
            entry: shown.to_string(),
            reason: format!("its hard link target {target_shown:?} is outside the target"),
        })?;
        let Some((name, parents)) = parts.split_last() else {
            return Err(LayerError::Unsafe {
                entry: shown.to_string(),
                reason: "a hard link to the root".into(),
            });
        };
        let mut dir = self.target.clone();
        for part in parents {
            dir.push(OsStr::from_bytes(part));
            match fs::symlink_metadata(&dir) {
                Ok(meta) if meta.is_dir() => {}
                _ => {
                    return Err(LayerError::Unsafe {
                        entry: shown.to_string(),
                        reason: format!(
                            "its hard link target {target_shown:?} is not an earlier entry"
                        ),
                    })
                }
            }
        }
        let source = dir.join(OsStr::from_bytes(name));
        match fs::symlink_metadata(&source) {
            Ok(meta) if !meta.is_dir() => Ok(source),
            Ok(_) => Err(LayerError::Unsafe {
                entry: shown.to_string(),
                reason: format!("a hard link to the directory {target_shown:?}"),
            }),
            Err(_) => Err(LayerError::Unsafe {
                entry: shown.to_string(),
                reason: format!("its hard link target {target_shown:?} is not an earlier entry"),
            }),
        }
    }

    /// Removes whatever is at `path` (a later entry replaces an earlier one).
    fn clear(&mut self, path: &Path) -> Result<()> {
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.is_dir() => {
                fs::remove_dir_all(path).at(path)?;
                self.known_dirs.retain(|d| !d.starts_with(path));
            }
            Ok(_) => fs::remove_file(path).at(path)?,
            Err(_) => {}
        }
        Ok(())
    }
}
