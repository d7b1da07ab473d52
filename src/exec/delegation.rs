//! The cgroup v2 subtree an ordinary user may write: systemd's `Delegate=yes` hands a
//! unit's cgroup to its user by making its directory, `cgroup.procs` and
//! `cgroup.subtree_control` theirs. Rootless lade finds the one its process is in (the
//! nearest such ancestor of its own cgroup), makes containers' cgroups under it, and
//! first moves the subtree's own processes to a leaf (cgroup v2 lets no cgroup that
//! hands controllers to its children hold processes), as podman and crun do. Where the
//! process is in no such subtree (a login session's `session-N.scope` is root's), a
//! monitor can be started in a delegated scope of the user's systemd manager.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{io_err, Result};

/// The leaf lade moves a delegated cgroup's own processes into. A process found in it
/// belongs to the delegated cgroup above.
pub const LEAF: &str = "lade-leaf";

/// A subtree delegated to the user, and the controllers it offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delegation {
    pub dir: PathBuf,
    pub controllers: Vec<String>,
}

impl Delegation {
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }

    /// The controllers in words, for messages.
    pub fn controllers_text(&self) -> String {
        if self.controllers.is_empty() {
            "none".into()
        } else {
            self.controllers.join(" ")
        }
    }
}

/// What drop-in makes systemd delegate controllers to every user's manager (whose
/// subtree lade then finds), in words for messages.
pub const DELEGATE_FIX: &str = "as root: mkdir -p /etc/systemd/system/user@.service.d && printf '[Service]\\nDelegate=cpu cpuset io memory pids\\n' > /etc/systemd/system/user@.service.d/delegate.conf && systemctl daemon-reload, then log in again";

/// The cgroup v2 mount point from `/proc/self/mountinfo` text (`/sys/fs/cgroup` on a
/// pure v2 host, `/sys/fs/cgroup/unified` on a hybrid one).
pub fn unified_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let mount_point = left.split(' ').nth(4)?;
        (right.split(' ').next()? == "cgroup2").then(|| PathBuf::from(mount_point))
    })
}

/// The process's v2 cgroup (`0::/path` of `/proc/self/cgroup`), relative to the mount.
pub fn own_cgroup(proc_cgroup: &str) -> Option<String> {
    proc_cgroup
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .map(|path| path.trim_start_matches('/').to_string())
}

/// Whether `owner` owns what systemd's `Delegate=yes` hands over: the directory, its
/// `cgroup.procs` and `cgroup.subtree_control`.
fn delegated_to(dir: &Path, owner: u32) -> bool {
    ["", "cgroup.procs", "cgroup.subtree_control"]
        .iter()
        .all(|file| fs::metadata(dir.join(file)).is_ok_and(|m| m.uid() == owner))
}

/// The nearest cgroup at or above `own` (relative to `mount`) delegated to `owner`,
/// with its controllers; lade's own leaf counts as the cgroup above it.
pub fn find(mount: &Path, own: &str, owner: u32) -> Option<Delegation> {
    let mut dir = mount.join(own);
    if dir.file_name().is_some_and(|name| name == LEAF) {
        dir.pop();
    }
    loop {
        if delegated_to(&dir, owner) {
            let controllers = fs::read_to_string(dir.join("cgroup.controllers"))
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_string)
                .collect();
            return Some(Delegation { dir, controllers });
        }
        if dir == mount || !dir.pop() || !dir.starts_with(mount) {
            return None;
        }
    }
}

/// The subtree delegated to this process's user, or why there is none (a sentence).
pub fn current() -> std::result::Result<Delegation, String> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let Some(mount) = unified_mount(&mountinfo) else {
        return Err(
            "this machine has no cgroup v2 hierarchy, and v1 hierarchies only root may write"
                .into(),
        );
    };
    let Some(own) = own_cgroup(&fs::read_to_string("/proc/self/cgroup").unwrap_or_default()) else {
        return Err(
            "this process is in no cgroup v2 cgroup (/proc/self/cgroup has no 0:: line)".into(),
        );
    };
    // Inside lade's user namespace the user's own files are owned by 0; before it, by
    // the user's uid: the effective uid names them either way.
    let owner = nix::unistd::geteuid().as_raw();
    if let Some(found) = find(&mount, &own, owner) {
        return Ok(found);
    }
    let hybrid = fs::read_to_string(mount.join("cgroup.controllers"))
        .is_ok_and(|c| c.trim().is_empty())
        && mountinfo.contains(" - cgroup cgroup ");
    let machine = if hybrid {
        "this machine's controllers are cgroup v1 (hybrid layout), whose hierarchies only root may write, and "
    } else {
        ""
    };
    let manager = if user_manager().is_some() {
        " (a systemd user manager is reachable: `run -d` starts its monitor in a scope it delegates)"
    } else {
        ""
    };
    Err(format!(
        "{machine}this process's cgroup v2 {} is in no subtree delegated to the user (systemd's Delegate=yes){manager}; start lade in one (`systemd-run --user --scope -p Delegate=yes lade ...`, with `loginctl enable-linger USER` for a user manager without a login)",
        mount.join(&own).components().as_path().display()
    ))
}

/// The user's systemd manager, when its socket is reachable: `systemd-run --user` can
/// then make a delegated scope.
pub fn user_manager() -> Option<PathBuf> {
    let runtime = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty());
    if let Some(private) = runtime
        .map(|dir| Path::new(&dir).join("systemd/private"))
        .filter(|socket| socket.exists())
    {
        return Some(private);
    }
    std::env::var_os("DBUS_SESSION_BUS_ADDRESS")
        .filter(|address| !address.is_empty())
        .map(PathBuf::from)
}

/// Whether a detached container's monitor can be started in a scope the user's
/// systemd manager delegates (this process being in no delegated subtree, on a
/// machine with cgroup v2 and `systemd-run`).
pub fn scope_possible() -> bool {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    unified_mount(&mountinfo).is_some() && user_manager().is_some() && systemd_run().is_some()
}

/// `systemd-run` on `PATH`.
pub fn systemd_run() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("systemd-run"))
        .find(|candidate| candidate.is_file())
}

/// The command that starts `program` in a new scope of the user's systemd manager with
/// `Delegate=yes` (as podman asks systemd for a scope over D-Bus), when this process is
/// in no delegated subtree and a scope can be had; `None` otherwise.
pub fn scope_command(program: &Path) -> Option<std::process::Command> {
    if current().is_ok() || !scope_possible() {
        return None;
    }
    let mut command = std::process::Command::new(systemd_run()?);
    command
        .args([
            "--user",
            "--scope",
            "--quiet",
            "--collect",
            "-p",
            "Delegate=yes",
            "--",
        ])
        .arg(program);
    Some(command)
}

/// Moves every process of the delegated cgroup `dir` into its leaf (made when
/// missing), so that `dir` may hand controllers to its children. Rounds repeat while
/// a process forked meanwhile is left; one that ended is passed over.
pub fn vacate(dir: &Path) -> Result<()> {
    let procs = dir.join("cgroup.procs");
    let leaf = dir.join(LEAF);
    for _ in 0..10 {
        let pids: Vec<String> = fs::read_to_string(&procs)
            .map_err(io_err(format!("cannot read {}", procs.display())))?
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if pids.is_empty() {
            return Ok(());
        }
        fs::create_dir_all(&leaf).map_err(io_err(format!(
            "cannot create the cgroup {}",
            leaf.display()
        )))?;
        let target = leaf.join("cgroup.procs");
        for pid in pids {
            match fs::write(&target, &pid) {
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                other => other.map_err(io_err(format!(
                    "cannot move process {pid} into {}",
                    target.display()
                )))?,
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cgroup directory with the files delegation is judged by, owned by `uid`.
    fn cgroup(dir: &Path, uid: u32, controllers: &str) {
        fs::create_dir_all(dir).unwrap();
        for file in ["cgroup.procs", "cgroup.subtree_control", "cgroup.threads"] {
            fs::write(dir.join(file), "").unwrap();
            std::os::unix::fs::chown(dir.join(file), Some(uid), None).unwrap();
        }
        fs::write(dir.join("cgroup.controllers"), controllers).unwrap();
        std::os::unix::fs::chown(dir, Some(uid), None).unwrap();
    }

    #[test]
    fn the_cgroup_mount_and_own_cgroup_are_read() {
        let mountinfo = "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n\
                         35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                         41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            unified_mount(mountinfo),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(unified_mount("1 2 0:1 / / rw - ext4 /dev/vda rw\n"), None);
        let cgroup = "4:memory:/x\n0::/user.slice/user-1000.slice/user@1000.service/app.slice\n";
        assert_eq!(
            own_cgroup(cgroup).as_deref(),
            Some("user.slice/user-1000.slice/user@1000.service/app.slice")
        );
        assert_eq!(own_cgroup("0::/\n").as_deref(), Some(""));
        assert_eq!(own_cgroup("4:memory:/x\n"), None);
    }

    #[test]
    fn the_nearest_delegated_ancestor_cgroup_is_found() {
        let root = tempfile::tempdir().unwrap();
        let mount = root.path();
        let (user, other) = (4242, 0);
        cgroup(mount, other, "cpu memory pids");
        let slice = mount.join("user.slice/user-4242.slice");
        cgroup(&slice, other, "cpu memory pids");
        let service = slice.join("user@4242.service");
        cgroup(&service, user, "memory pids");
        let scope = service.join("app.slice/run-r1.scope");
        cgroup(&service.join("app.slice"), user, "memory pids");
        cgroup(&scope, user, "pids");
        // The scope itself is delegated: it is the nearest.
        let own = "user.slice/user-4242.slice/user@4242.service/app.slice/run-r1.scope";
        let found = find(mount, own, user).unwrap();
        assert_eq!(found.dir, scope);
        assert_eq!(found.controllers, vec!["pids".to_string()]);
        assert!(found.has("pids") && !found.has("memory"));
        // lade's leaf is the scope's.
        cgroup(&scope.join(LEAF), user, "pids");
        assert_eq!(
            find(mount, &format!("{own}/{LEAF}"), user).unwrap().dir,
            scope
        );
        // A session scope is root's, and so is everything above it.
        let session = slice.join("session-3.scope");
        cgroup(&session, other, "cpu memory pids");
        assert_eq!(
            find(mount, "user.slice/user-4242.slice/session-3.scope", user),
            None
        );
        // A directory that is the user's but whose files are not is not delegated.
        let half = service.join("half");
        cgroup(&half, other, "");
        std::os::unix::fs::chown(&half, Some(user), None).unwrap();
        assert_eq!(
            find(
                mount,
                "user.slice/user-4242.slice/user@4242.service/half",
                user
            )
            .unwrap()
            .dir,
            service
        );
        // The root cgroup.
        assert_eq!(find(mount, "", user), None);
    }

    #[test]
    fn vacating_moves_a_cgroups_processes_to_the_leaf() {
        // Plain files stand for the kernel's: a written pid is kept, not moved, so
        // the test reads the leaf's file; the real move is tested on a live tree.
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("delegated");
        cgroup(&dir, 0, "");
        vacate(&dir).unwrap();
        assert!(!dir.join(LEAF).exists(), "nothing to move, no leaf made");
        fs::write(dir.join("cgroup.procs"), "77\n").unwrap();
        vacate(&dir).unwrap();
        assert_eq!(
            fs::read_to_string(dir.join(LEAF).join("cgroup.procs")).unwrap(),
            "77"
        );
    }
}
