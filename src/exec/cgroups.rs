//! cgroup limits (memory, CPU, pids) written straight to the cgroup files, when a
//! container starts and when `update` changes them while it runs. Each
//! controller is used on the v2 unified hierarchy when it has it, else on its v1
//! hierarchy: this machine is hybrid (v1 controllers, an empty v2 tree). A container's
//! cgroups live under `lade/<name>` and are removed when it ends. Rootless, the v2 root
//! is the subtree systemd delegates to the user (see `delegation`), and v1 is not used.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{io_err, ExecError, Result};

/// Resource limits; `None` is unlimited.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    pub memory: Option<u64>,
    /// CPUs' worth of time, e.g. 0.5.
    pub cpus: Option<f64>,
    pub pids: Option<u64>,
    /// `--oom-kill-disable` (v1 memory controller).
    #[serde(default)]
    pub oom_kill_disable: bool,
    /// A devices cgroup (v1) allowing Docker's default devices and then these rules;
    /// `None` makes none, and device nodes are kept in check by `nodev` mounts alone.
    #[serde(default)]
    pub devices: Option<Vec<DeviceRule>>,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        self.memory.is_none()
            && self.cpus.is_none()
            && self.pids.is_none()
            && !self.oom_kill_disable
            && self.devices.is_none()
    }
}

/// A devices cgroup rule in the kernel's form: `TYPE MAJOR:MINOR ACCESS`, with `a`, `c`
/// or `b`, numbers or `*`, and some of `rwm`.
pub type DeviceRule = String;

/// What Docker allows every container: creating any node (opening is another matter),
/// and the standard devices, the console and pseudo-terminals.
const DEFAULT_DEVICE_RULES: [&str; 11] = [
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
];

/// Whether this machine has a v1 devices controller, where device rules are enforced.
pub fn devices_controller() -> bool {
    matches!(
        CgroupLayout::for_containers().place("devices"),
        Some(Placement::V1(_))
    )
}

const CONTROLLERS: [&str; 5] = ["memory", "cpu", "pids", "freezer", "devices"];

/// Where each controller can be used.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupLayout {
    /// The v2 mount and the controllers it offers.
    pub unified: Option<(PathBuf, Vec<String>)>,
    /// v1 mounts by controller.
    pub v1: BTreeMap<String, PathBuf>,
    /// Rootless: the unified root is a subtree delegated to the user, and this
    /// directory records under which one each container's cgroup was made (a command
    /// may run in another cgroup than the monitor that made it).
    pub delegated: Option<PathBuf>,
}

impl CgroupLayout {
    /// Reads the mounts of this machine from `/proc/self/mountinfo`.
    pub fn detect() -> CgroupLayout {
        let mut layout = CgroupLayout::default();
        let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
            return layout;
        };
        for line in info.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let mount_point = left.split(' ').nth(4).unwrap_or_default();
            let mut fields = right.split(' ');
            let fstype = fields.next().unwrap_or_default();
            let options = fields.nth(1).unwrap_or_default();
            match fstype {
                "cgroup2" => {
                    let root = PathBuf::from(mount_point);
                    let controllers = fs::read_to_string(root.join("cgroup.controllers"))
                        .unwrap_or_default()
                        .split_whitespace()
                        .map(str::to_string)
                        .collect();
                    layout.unified = Some((root, controllers));
                }
                "cgroup" => {
                    for option in options.split(',') {
                        if CONTROLLERS.contains(&option) {
                            layout
                                .v1
                                .insert(option.to_string(), PathBuf::from(mount_point));
                        }
                    }
                }
                _ => {}
            }
        }
        layout
    }

    /// Where this process makes containers' cgroups: the machine's hierarchies for
    /// root; rootless, the subtree delegated to the user, if any.
    pub fn for_containers() -> CgroupLayout {
        if !super::rootless::is_rootless() {
            return CgroupLayout::detect();
        }
        CgroupLayout::delegated_at(super::delegation::current().ok().map(|d| d.dir))
    }

    /// Where the cgroups of container `name` are: rootless, under the subtree recorded
    /// when they were made, else under this process's own delegated subtree.
    fn of_container(name: &str) -> CgroupLayout {
        if !super::rootless::is_rootless() {
            return CgroupLayout::detect();
        }
        let recorded = fs::read_to_string(records_dir().join(name))
            .ok()
            .map(|text| PathBuf::from(text.trim_end()))
            .filter(|dir| dir.is_dir());
        match recorded {
            Some(dir) => CgroupLayout::delegated_at(Some(dir)),
            None => CgroupLayout::for_containers(),
        }
    }

    /// A rootless layout: the delegated subtree `dir` (if any) as the v2 root, no v1.
    fn delegated_at(dir: Option<PathBuf>) -> CgroupLayout {
        let unified = dir.map(|dir| {
            let controllers = fs::read_to_string(dir.join("cgroup.controllers"))
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_string)
                .collect();
            (dir, controllers)
        });
        CgroupLayout {
            unified,
            v1: BTreeMap::new(),
            delegated: Some(records_dir()),
        }
    }

    /// The error for a controller this layout lacks, saying why where it is rootless.
    fn missing(&self, controller: &'static str, consequence: &'static str) -> ExecError {
        match (&self.delegated, &self.unified) {
            (None, _) => ExecError::NoController {
                controller,
                consequence,
            },
            (Some(_), Some((dir, _))) => ExecError::DelegatedLacks {
                controller,
                dir: dir.clone(),
                consequence,
            },
            (Some(_), None) => ExecError::NotDelegated {
                controller,
                consequence,
                reason: super::delegation::current()
                    .err()
                    .unwrap_or_else(|| "it had none when the container was made".into()),
            },
        }
    }

    /// The directory for controller `name`: v2 if the unified tree has it.
    fn place(&self, controller: &str) -> Option<Placement> {
        if let Some((root, controllers)) = &self.unified {
            if controllers.iter().any(|c| c == controller) {
                return Some(Placement::V2(root.clone()));
            }
        }
        self.v1
            .get(controller)
            .map(|root| Placement::V1(root.clone()))
    }
}

/// Rootless: the delegated subtree under which container `container`'s cgroups were
/// made (else this process's, as for a new container), or why there is none.
pub fn rootless_cgroup_subtree(
    container: Option<&str>,
) -> std::result::Result<super::delegation::Delegation, String> {
    let layout = match container {
        Some(name) => CgroupLayout::of_container(name),
        None => CgroupLayout::for_containers(),
    };
    match layout.unified {
        Some((dir, controllers)) if layout.delegated.is_some() => {
            Ok(super::delegation::Delegation { dir, controllers })
        }
        _ => super::delegation::current(),
    }
}

/// Rootless: records that container `name`'s cgroup is under the delegated subtree
/// `root`; returns the record's path.
fn record_subtree(layout: &CgroupLayout, name: &str, root: &Path) -> Result<Option<PathBuf>> {
    let Some(records) = &layout.delegated else {
        return Ok(None);
    };
    let record = records.join(name);
    fs::create_dir_all(records)
        .and_then(|()| fs::write(&record, root.as_os_str().as_encoded_bytes()))
        .map_err(io_err(format!("cannot record {}", record.display())))?;
    Ok(Some(record))
}

/// Where rootless lade records which delegated subtree holds each container's cgroup.
fn records_dir() -> PathBuf {
    super::rootless::runtime_dir().join("cgroups")
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Placement {
    V1(PathBuf),
    V2(PathBuf),
}

/// The cgroups of one container.
#[derive(Debug)]
pub(crate) struct Cgroup {
    /// Every directory made, one per hierarchy used.
    dirs: Vec<PathBuf>,
    /// Rootless: the file recording the delegated subtree it is under.
    record: Option<PathBuf>,
}

/// The CFS period lade uses, in microseconds (Docker's).
const CPU_PERIOD: u64 = 100_000;

/// The CFS quota per period for `cpus` CPUs' worth of time, at least the kernel's
/// minimum of 1 ms.
fn cpu_quota(cpus: f64) -> u64 {
    ((cpus * CPU_PERIOD as f64).round() as u64).max(1000)
}

/// Makes `lade` under the v2 `root` and enables the controllers `enable` (`+memory
/// +cpu`; none when empty) for its children; returns it. A delegated root's own
/// processes move to its leaf first: a cgroup that enables controllers for its
/// children may hold none.
fn enable_v2_controllers(root: &Path, enable: &str, delegated: bool) -> Result<PathBuf> {
    if delegated {
        super::delegation::vacate(root)?;
    }
    let parent = root.join("lade");
    fs::create_dir_all(&parent).map_err(io_err(format!("cannot create {}", parent.display())))?;
    if !enable.is_empty() {
        write(&root.join("cgroup.subtree_control"), enable)?;
        write(&parent.join("cgroup.subtree_control"), enable)?;
    }
    Ok(parent)
}

fn write(path: &Path, value: &str) -> Result<()> {
    fs::write(path, value).map_err(io_err(format!(
        "cannot write {value:?} to {}",
        path.display()
    )))
}

impl Cgroup {
    /// Creates `lade/<name>` where each limited controller lives and sets the limits.
    pub(crate) fn create(
        layout: &CgroupLayout,
        name: &str,
        limits: &Limits,
        freezer: bool,
    ) -> Result<Cgroup> {
        let mut wanted: Vec<(&str, Vec<(&str, String)>)> = Vec::new();
        let mut v2_wanted: Vec<(&str, String)> = Vec::new();
        let mut v2_controllers: Vec<&str> = Vec::new();
        let mut add = |controller: &'static str,
                       v1: Vec<(&'static str, String)>,
                       v2: Vec<(&'static str, String)>|
         -> Result<()> {
            match layout.place(controller) {
                Some(Placement::V2(_)) => {
                    v2_controllers.push(controller);
                    v2_wanted.extend(v2);
                }
                Some(Placement::V1(_)) => wanted.push((controller, v1)),
                None => return Err(layout.missing(controller, "the limit cannot be enforced")),
            }
            Ok(())
        };
        if let Some(bytes) = limits.memory {
            add(
                "memory",
                vec![("memory.limit_in_bytes", bytes.to_string())],
                vec![("memory.max", bytes.to_string())],
            )?;
        }
        if let Some(cpus) = limits.cpus {
            let quota = cpu_quota(cpus);
            add(
                "cpu",
                vec![
                    ("cpu.cfs_period_us", CPU_PERIOD.to_string()),
                    ("cpu.cfs_quota_us", quota.to_string()),
                ],
                vec![("cpu.max", format!("{quota} {CPU_PERIOD}"))],
            )?;
        }
        if let Some(pids) = limits.pids {
            add(
                "pids",
                vec![("pids.max", pids.to_string())],
                vec![("pids.max", pids.to_string())],
            )?;
        }
        if limits.oom_kill_disable {
            match layout.place("memory") {
                Some(Placement::V1(_)) => {
                    wanted.push(("memory", vec![("memory.oom_control", "1".into())]))
                }
                Some(Placement::V2(_)) => return Err(ExecError::OomKillDisableOnV2),
                None => {
                    return Err(layout.missing("memory", "--oom-kill-disable cannot be applied"))
                }
            }
        }
        if let Some(rules) = &limits.devices {
            let Some(Placement::V1(_)) = layout.place("devices") else {
                return Err(ExecError::NoController {
                    controller: "v1 devices",
                    consequence: "device rules cannot be enforced (lade loads no eBPF device filter for cgroup v2)",
                });
            };
            // Deny all first: the allow list is all there is afterwards.
            let mut files = vec![("devices.deny", "a".to_string())];
            files.extend(
                DEFAULT_DEVICE_RULES
                    .iter()
                    .map(|r| r.to_string())
                    .chain(rules.iter().cloned())
                    .map(|rule| ("devices.allow", rule)),
            );
            wanted.push(("devices", files));
        }
        // A container that can be paused gets a freezer (v1) even without limits; in a
        // v2 tree every cgroup can freeze.
        if !freezer {
        } else if let Some(Placement::V1(_)) = layout.place("freezer") {
            wanted.push(("freezer", Vec::new()));
        } else if v2_controllers.is_empty() && layout.unified.is_some() {
            v2_wanted.push(("cgroup.freeze", "0".into()));
            v2_controllers.push("");
        }
        let mut cgroup = Cgroup {
            dirs: Vec::new(),
            record: None,
        };
        for (controller, files) in wanted {
            let Some(Placement::V1(root)) = layout.place(controller) else {
                continue;
            };
            let dir = root.join("lade").join(name);
            if !cgroup.dirs.contains(&dir) {
                fs::create_dir_all(&dir).map_err(io_err(format!(
                    "cannot create the cgroup {}",
                    dir.display()
                )))?;
                cgroup.dirs.push(dir.clone());
            }
            for (file, value) in files {
                write(&dir.join(file), &value)?;
            }
        }
        if !v2_controllers.is_empty() {
            let Some((root, _)) = &layout.unified else {
                unreachable!("v2 placement implies a unified hierarchy")
            };
            let enable: String = v2_controllers
                .iter()
                .filter(|c| !c.is_empty())
                .map(|c| format!("+{c} "))
                .collect();
            let parent =
                enable_v2_controllers(root, enable.trim_end(), layout.delegated.is_some())?;
            let dir = parent.join(name);
            cgroup.record = record_subtree(layout, name, root)?;
            fs::create_dir_all(&dir).map_err(io_err(format!(
                "cannot create the cgroup {}",
                dir.display()
            )))?;
            cgroup.dirs.push(dir.clone());
            for (file, value) in v2_wanted {
                write(&dir.join(file), &value)?;
            }
        }
        Ok(cgroup)
    }

    /// Moves a process into every cgroup of this container.
    pub(crate) fn add(&self, pid: i32) -> Result<()> {
        for dir in &self.dirs {
            write(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// Moves a process entering the container (`exec`) into its cgroups. Rootless, a
    /// process started outside the delegated subtree cannot be moved into it (the
    /// kernel wants the user to own the cgroup both sides share, which is root's): it
    /// then stays in the caller's cgroup, as runc and crun leave a rootless exec.
    pub(crate) fn join(&self, pid: i32) -> Result<()> {
        match self.add(pid) {
            Err(ExecError::Sys { source, .. })
                if self.record.is_some()
                    && source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                Ok(())
            }
            other => other,
        }
    }

    /// Removes the cgroups once their processes are gone (retrying briefly: the kernel
    /// finishes tearing a dead process down asynchronously).
    pub(crate) fn remove(self) {
        for dir in &self.dirs {
            for _ in 0..50 {
                if fs::remove_dir(dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
        if let Some(record) = &self.record {
            if self.dirs.iter().all(|dir| !dir.exists()) {
                let _ = fs::remove_file(record);
            }
        }
    }
}

impl Cgroup {
    /// The cgroup `lade/<name>` as it exists now, in every hierarchy (to join it).
    pub(crate) fn existing(name: &str) -> Cgroup {
        let layout = CgroupLayout::of_container(name);
        let mut dirs: Vec<PathBuf> = layout
            .v1
            .values()
            .chain(layout.unified.iter().map(|(root, _)| root))
            .map(|root| root.join("lade").join(name))
            .filter(|dir| dir.exists())
            .collect();
        dirs.sort();
        dirs.dedup();
        Cgroup {
            dirs,
            record: layout.delegated.map(|records| records.join(name)),
        }
    }
}

/// A change of a container's limits, as `update` asks for it: `None` leaves a limit as
/// it is, `Some(None)` lifts it, `Some(Some(value))` sets it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LimitsUpdate {
    pub memory: Option<Option<u64>>,
    pub cpus: Option<Option<f64>>,
    pub pids: Option<Option<u64>>,
}

impl LimitsUpdate {
    /// Nothing changes.
    pub fn is_empty(&self) -> bool {
        self.memory.is_none() && self.cpus.is_none() && self.pids.is_none()
    }

    /// `limits` with this change made.
    pub fn applied_to(&self, limits: &Limits) -> Limits {
        Limits {
            memory: self.memory.unwrap_or(limits.memory),
            cpus: self.cpus.unwrap_or(limits.cpus),
            pids: self.pids.unwrap_or(limits.pids),
            ..limits.clone()
        }
    }

    /// Each changed limit: its controller, and its files with their values on v1 and
    /// on v2 (no limit: the value each hierarchy reads as unlimited), and whether it is
    /// a limit (not a lifting of one).
    fn files(&self) -> Vec<ControllerFiles> {
        let mut files = Vec::new();
        if let Some(memory) = self.memory {
            files.push(ControllerFiles {
                controller: "memory",
                v1: vec![(
                    "memory.limit_in_bytes",
                    memory.map_or("-1".into(), |b| b.to_string()),
                )],
                v2: vec![("memory.max", memory.map_or("max".into(), |b| b.to_string()))],
                limited: memory.is_some(),
            });
        }
        if let Some(cpus) = self.cpus {
            let quota = cpus.map(cpu_quota);
            files.push(ControllerFiles {
                controller: "cpu",
                v1: vec![
                    ("cpu.cfs_period_us", CPU_PERIOD.to_string()),
                    (
                        "cpu.cfs_quota_us",
                        quota.map_or("-1".into(), |q| q.to_string()),
                    ),
                ],
                v2: vec![(
                    "cpu.max",
                    format!(
                        "{} {CPU_PERIOD}",
                        quota.map_or("max".into(), |q| q.to_string())
                    ),
                )],
                limited: cpus.is_some(),
            });
        }
        if let Some(pids) = self.pids {
            let value = pids.map_or("max".into(), |n| n.to_string());
            files.push(ControllerFiles {
                controller: "pids",
                v1: vec![("pids.max", value.clone())],
                v2: vec![("pids.max", value)],
                limited: pids.is_some(),
            });
        }
        files
    }
}

/// What one changed limit writes.
struct ControllerFiles {
    controller: &'static str,
    v1: Vec<(&'static str, String)>,
    v2: Vec<(&'static str, String)>,
    limited: bool,
}

/// Writes a change of limits to the cgroup `lade/<name>` of a running container whose
/// init is `init`. A controller whose cgroup its start did not make (it had no limit
/// of that kind) gets one now, with the limit written before the container's
/// processes are moved into it; lifting a limit that was never set changes nothing.
/// The kernel's refusal (a memory limit below what the container uses: EBUSY) is the
/// error, as Docker reports it.
pub fn update_limits(name: &str, change: &LimitsUpdate, init: i32) -> Result<()> {
    update_limits_in(&CgroupLayout::of_container(name), name, change, init)
}

fn update_limits_in(
    layout: &CgroupLayout,
    name: &str,
    change: &LimitsUpdate,
    init: i32,
) -> Result<()> {
    for files in change.files() {
        let (dir, values, parent_v2) = match layout.place(files.controller) {
            Some(Placement::V1(root)) => (root.join("lade").join(name), files.v1, None),
            Some(Placement::V2(root)) => (root.join("lade").join(name), files.v2, Some(root)),
            None if files.limited => {
                return Err(layout.missing(files.controller, "the limit cannot be enforced"))
            }
            None => continue,
        };
        let made = !dir.exists();
        if made && !files.limited {
            continue;
        }
        if let Some(root) = &parent_v2 {
            enable_v2_controllers(
                root,
                &format!("+{}", files.controller),
                layout.delegated.is_some(),
            )?;
        }
        if made {
            if let Some(root) = &parent_v2 {
                record_subtree(layout, name, root)?;
            }
            fs::create_dir_all(&dir).map_err(io_err(format!(
                "cannot create the cgroup {}",
                dir.display()
            )))?;
        }
        let written = values
            .iter()
            .try_for_each(|(file, value)| write(&dir.join(file), value))
            .and_then(|()| {
                if made {
                    move_members(name, init, &dir)
                } else {
                    Ok(())
                }
            });
        if let Err(error) = written {
            if made {
                // No half-made cgroup left behind (one with processes stays for `rm`).
                let _ = fs::remove_dir(&dir);
            }
            return Err(error);
        }
    }
    Ok(())
}

/// Moves the processes of container `name` (those of its cgroups, and its init
/// `init` with every descendant, for a container its start gave no cgroup) into
/// `dir`, until none is left outside: a process forked while the others moved is
/// found on the next round. One that ended meanwhile is passed over.
fn move_members(name: &str, init: i32, dir: &Path) -> Result<()> {
    let procs = dir.join("cgroup.procs");
    for _ in 0..10 {
        let inside: Vec<i32> = fs::read_to_string(&procs)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        let mut members = cgroup_procs(name);
        members.push(init);
        members.extend(descendants(init));
        members.sort_unstable();
        members.dedup();
        let outside: Vec<i32> = members
            .into_iter()
            .filter(|pid| !inside.contains(pid))
            .collect();
        if outside.is_empty() {
            return Ok(());
        }
        for pid in outside {
            match fs::write(&procs, pid.to_string()) {
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                other => other.map_err(io_err(format!(
                    "cannot move process {pid} into {}",
                    procs.display()
                )))?,
            }
        }
    }
    Ok(())
}

/// Every descendant of process `pid` (the kernel's `children` lists of its threads).
fn descendants(pid: i32) -> Vec<i32> {
    let mut found = Vec::new();
    let mut next = vec![pid];
    while let Some(parent) = next.pop() {
        let Ok(tasks) = fs::read_dir(format!("/proc/{parent}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children = fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                if !found.contains(&child) {
                    found.push(child);
                    next.push(child);
                }
            }
        }
    }
    found
}

/// The processes in the cgroup `lade/<name>` (host pids), in order.
pub fn cgroup_procs(name: &str) -> Vec<i32> {
    let mut pids: Vec<i32> = Cgroup::existing(name)
        .dirs
        .iter()
        .filter_map(|dir| fs::read_to_string(dir.join("cgroup.procs")).ok())
        .flat_map(|text| {
            text.lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Freezes (pauses) or thaws the processes of the cgroup `lade/<name>`. A freeze returns
/// once every process is frozen: the kernel passes through FREEZING (v1) or reports
/// `frozen 1` in `cgroup.events` later (v2), and a process forked meanwhile can make a v1
/// freeze start over, so the request is repeated while it settles, as runc does.
pub fn freeze(name: &str, frozen: bool) -> Result<()> {
    let layout = CgroupLayout::of_container(name);
    let (request, value, settled): (PathBuf, &str, Box<dyn Fn() -> bool>) =
        match layout.place("freezer") {
            Some(Placement::V1(root)) => {
                let state = root.join("lade").join(name).join("freezer.state");
                let value = if frozen { "FROZEN" } else { "THAWED" };
                let check = state.clone();
                (
                    state,
                    value,
                    Box::new(move || fs::read_to_string(&check).is_ok_and(|s| s.trim() == value)),
                )
            }
            _ => match &layout.unified {
                Some((root, _)) => {
                    let dir = root.join("lade").join(name);
                    let events = dir.join("cgroup.events");
                    let wanted = if frozen { "frozen 1" } else { "frozen 0" };
                    (
                        dir.join("cgroup.freeze"),
                        if frozen { "1" } else { "0" },
                        Box::new(move || {
                            fs::read_to_string(&events)
                                .is_ok_and(|s| s.lines().any(|l| l.trim() == wanted))
                        }),
                    )
                }
                None => return Err(layout.missing("freezer", "containers cannot be paused")),
            },
        };
    write(&request, value)?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut tries = 0u32;
    while !settled() {
        if std::time::Instant::now() > deadline {
            // Never leave a half-frozen container behind a failed pause: its record
            // still says running, and nothing else would thaw it.
            if frozen {
                let _ = write(&request, if value == "1" { "0" } else { "THAWED" });
            }
            return Err(ExecError::Sys {
                what: format!("{} did not become {value} within 10s", request.display()),
                source: std::io::Error::from(std::io::ErrorKind::TimedOut),
            });
        }
        tries += 1;
        if tries.is_multiple_of(10) {
            write(&request, value)?;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    Ok(())
}

/// Removes `lade/<name>` from every hierarchy where it exists (its processes gone).
pub fn remove_cgroup(name: &str) {
    Cgroup::existing(name).remove();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_limits_are_written_to_a_unified_tree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        fs::write(root.join("cgroup.subtree_control"), "").unwrap();
        let layout = CgroupLayout {
            unified: Some((
                root.clone(),
                vec!["memory".into(), "cpu".into(), "pids".into()],
            )),
            v1: BTreeMap::new(),
            delegated: None,
        };
        let limits = Limits {
            memory: Some(32 << 20),
            cpus: Some(0.5),
            pids: Some(50),
            ..Limits::default()
        };
        let cgroup = Cgroup::create(&layout, "c1", &limits, true).unwrap();
        let read = |p: &str| fs::read_to_string(root.join(p)).unwrap();
        assert_eq!(read("lade/c1/memory.max"), "33554432");
        assert_eq!(read("lade/c1/cpu.max"), "50000 100000");
        assert_eq!(read("lade/c1/pids.max"), "50");
        assert_eq!(read("cgroup.subtree_control"), "+memory +cpu +pids");
        cgroup.add(1234).unwrap();
        assert_eq!(read("lade/c1/cgroup.procs"), "1234");
    }

    #[test]
    fn an_update_writes_what_changes_and_makes_a_missing_cgroup() {
        let dir = tempfile::tempdir().unwrap();
        let v2 = dir.path().join("unified");
        let pids = dir.path().join("pids");
        fs::create_dir_all(v2.join("lade/c4")).unwrap();
        fs::create_dir_all(&pids).unwrap();
        fs::write(v2.join("cgroup.subtree_control"), "").unwrap();
        let layout = CgroupLayout {
            unified: Some((v2.clone(), vec!["memory".into(), "cpu".into()])),
            v1: [("pids".to_string(), pids.clone())].into(),
            delegated: None,
        };
        let change = LimitsUpdate {
            memory: Some(Some(64 << 20)),
            cpus: Some(None),
            pids: Some(Some(50)),
        };
        // No such process: the made cgroup gets the init alone.
        let init = i32::MAX;
        update_limits_in(&layout, "c4", &change, init).unwrap();
        let read = |p: &Path| fs::read_to_string(p).unwrap();
        assert_eq!(read(&v2.join("lade/c4/memory.max")), "67108864");
        assert_eq!(read(&v2.join("lade/c4/cpu.max")), "max 100000");
        assert_eq!(read(&v2.join("lade/cgroup.subtree_control")), "+cpu");
        assert_eq!(read(&pids.join("lade/c4/pids.max")), "50");
        assert_eq!(read(&pids.join("lade/c4/cgroup.procs")), init.to_string());
        // Lifting a limit whose cgroup was never made makes none.
        let lift = LimitsUpdate {
            pids: Some(None),
            ..LimitsUpdate::default()
        };
        update_limits_in(&layout, "c5", &lift, init).unwrap();
        assert!(!pids.join("lade/c5").exists());
        let limits = Limits {
            memory: Some(1),
            cpus: Some(2.0),
            ..Limits::default()
        };
        assert_eq!(
            change.applied_to(&limits),
            Limits {
                memory: Some(64 << 20),
                cpus: None,
                pids: Some(50),
                ..Limits::default()
            }
        );
        assert!(LimitsUpdate::default().is_empty());
    }

    #[test]
    fn hybrid_uses_v1_for_what_v2_lacks() {
        let dir = tempfile::tempdir().unwrap();
        let v2 = dir.path().join("unified");
        let memory = dir.path().join("memory");
        let pids = dir.path().join("pids");
        let freezer = dir.path().join("freezer");
        for d in [&v2, &memory, &pids, &freezer] {
            fs::create_dir_all(d).unwrap();
        }
        fs::write(v2.join("cgroup.subtree_control"), "").unwrap();
        let layout = CgroupLayout {
            unified: Some((v2.clone(), vec!["hugetlb".into()])),
            v1: [
                ("memory".to_string(), memory.clone()),
                ("pids".to_string(), pids.clone()),
                ("freezer".to_string(), freezer.clone()),
            ]
            .into(),
            delegated: None,
        };
        let limits = Limits {
            memory: Some(1 << 20),
            cpus: None,
            pids: Some(7),
            ..Limits::default()
        };
        Cgroup::create(&layout, "c2", &limits, true).unwrap();
        assert!(
            freezer.join("lade/c2").is_dir(),
            "every container can be paused"
        );
        assert_eq!(
            fs::read_to_string(memory.join("lade/c2/memory.limit_in_bytes")).unwrap(),
            "1048576"
        );
        assert_eq!(
            fs::read_to_string(pids.join("lade/c2/pids.max")).unwrap(),
            "7"
        );
        assert!(
            !v2.join("lade").exists(),
            "nothing is made on v2 when v2 has no controller asked for"
        );
        let err = Cgroup::create(
            &layout,
            "c3",
            &Limits {
                cpus: Some(1.0),
                ..Limits::default()
            },
            true,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("no cpu cgroup controller"),
            "{err}"
        );
    }

    /// A delegated subtree in a tempdir: the kernel's files as plain ones.
    fn delegated_tree(controllers: &[&str]) -> (tempfile::TempDir, CgroupLayout) {
        let dir = tempfile::tempdir().unwrap();
        let subtree = dir.path().join("user@1001.service/app.slice/run-r1.scope");
        fs::create_dir_all(&subtree).unwrap();
        fs::write(subtree.join("cgroup.subtree_control"), "").unwrap();
        // The monitor (and whatever else started there) is in the subtree itself.
        fs::write(subtree.join("cgroup.procs"), "4321\n").unwrap();
        let layout = CgroupLayout {
            unified: Some((
                subtree.clone(),
                controllers.iter().map(|c| c.to_string()).collect(),
            )),
            v1: BTreeMap::new(),
            delegated: Some(dir.path().join("records")),
        };
        (dir, layout)
    }

    #[test]
    fn a_delegated_subtree_gets_the_containers_cgroup_after_its_processes_leave() {
        let (dir, layout) = delegated_tree(&["memory", "pids"]);
        let subtree = layout.unified.clone().unwrap().0;
        let limits = Limits {
            memory: Some(64 << 20),
            pids: Some(20),
            ..Limits::default()
        };
        let cgroup = Cgroup::create(&layout, "c6", &limits, true).unwrap();
        let read = |p: &Path| fs::read_to_string(p).unwrap();
        assert_eq!(read(&subtree.join("lade/c6/memory.max")), "67108864");
        assert_eq!(read(&subtree.join("lade/c6/pids.max")), "20");
        assert_eq!(
            read(&subtree.join("cgroup.subtree_control")),
            "+memory +pids"
        );
        assert_eq!(
            read(&subtree.join("lade/cgroup.subtree_control")),
            "+memory +pids"
        );
        assert_eq!(
            read(&subtree.join("lade-leaf/cgroup.procs")),
            "4321",
            "the subtree's own processes went to its leaf first"
        );
        assert_eq!(
            read(&dir.path().join("records/c6")),
            subtree.to_str().unwrap(),
            "the subtree is recorded for commands run elsewhere"
        );
        assert_eq!(cgroup.dirs, vec![subtree.join("lade/c6")]);
        // `update` writes through the same subtree.
        let change = LimitsUpdate {
            memory: Some(Some(32 << 20)),
            pids: Some(None),
            ..LimitsUpdate::default()
        };
        update_limits_in(&layout, "c6", &change, i32::MAX).unwrap();
        assert_eq!(read(&subtree.join("lade/c6/memory.max")), "33554432");
        assert_eq!(read(&subtree.join("lade/c6/pids.max")), "max");
        // A cgroup `update` makes (its start made none) is recorded too.
        update_limits_in(&layout, "c9", &change, i32::MAX).unwrap();
        assert_eq!(read(&subtree.join("lade/c9/memory.max")), "33554432");
        assert_eq!(
            read(&dir.path().join("records/c9")),
            subtree.to_str().unwrap()
        );
        assert!(
            !dir.path().join("lade").exists(),
            "nothing above the subtree is touched"
        );
    }

    #[test]
    fn a_delegated_subtree_without_the_controller_refuses_the_limit() {
        let (_dir, layout) = delegated_tree(&[]);
        let subtree = layout.unified.clone().unwrap().0;
        let limits = Limits {
            memory: Some(1 << 20),
            ..Limits::default()
        };
        let err = Cgroup::create(&layout, "c7", &limits, true).unwrap_err();
        assert!(
            err.to_string()
                .contains("delegated to the user has no memory controller")
                && err
                    .to_string()
                    .contains("Delegate=cpu cpuset io memory pids"),
            "{err}"
        );
        assert!(!subtree.join("lade/c7").exists());
        // Pausing needs no controller: cgroup.freeze is in every v2 cgroup.
        Cgroup::create(&layout, "c8", &Limits::default(), true).unwrap();
        assert_eq!(
            fs::read_to_string(subtree.join("lade/c8/cgroup.freeze")).unwrap(),
            "0"
        );
        assert_eq!(
            fs::read_to_string(subtree.join("cgroup.subtree_control")).unwrap(),
            "",
            "no controller enabled"
        );
    }
}
