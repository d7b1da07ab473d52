//! Privileges: Docker's default capability set, `no_new_privs`, and Docker's default
//! seccomp profile: an allow list with argument checks (`clone` without namespace flags,
//! `socket` without AF_VSOCK, the Linux personalities), EPERM for everything else, and
//! ENOSYS for `clone3`. io_uring is refused, as Docker 25 and containerd refuse it. A system call of a foreign ABI (32-bit x86 on x86_64) kills the
//! process: the filter checks the architecture first.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::syscall_tree;

use caps::{CapSet, Capability, CapsHashSet};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// Docker's 14 default capabilities.
pub(crate) const DEFAULT_CAPS: [Capability; 14] = [
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FSETID,
    Capability::CAP_FOWNER,
    Capability::CAP_MKNOD,
    Capability::CAP_NET_RAW,
    Capability::CAP_SETGID,
    Capability::CAP_SETUID,
    Capability::CAP_SETFCAP,
    Capability::CAP_SETPCAP,
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_SYS_CHROOT,
    Capability::CAP_KILL,
    Capability::CAP_AUDIT_WRITE,
];

/// What went wrong while dropping privileges or installing the seccomp filter (the init
/// reports it as its failure), or reading a seccomp profile.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error("{what}: {source}")]
    Capabilities {
        what: String,
        source: caps::errors::CapsError,
    },
    #[error("setting no_new_privs: {0}")]
    NoNewPrivs(std::io::Error),
    #[error("no seccomp filter for {0}")]
    Architecture(&'static str),
    #[error("building the seccomp filter: {0}")]
    Filter(#[from] seccompiler::BackendError),
    #[error("building the seccomp filter: system call number {0} is out of range")]
    SyscallNumber(i64),
    #[error("installing the seccomp filter: {0}")]
    Install(seccompiler::Error),
    /// A capability `--cap-add` names that lade itself does not hold, so cannot give.
    #[error("--cap-add {0}: lade itself does not hold this capability, so it cannot give it")]
    NotHeld(String),
    #[error("--security-opt seccomp={}: {reason}", path.display())]
    Profile { path: PathBuf, reason: String },
}

fn capabilities(what: impl Into<String>) -> impl FnOnce(caps::errors::CapsError) -> SecurityError {
    let what = what.into();
    move |source| SecurityError::Capabilities { what, source }
}

/// Limits the bounding set (what any later exec can get) to `keep`. Needs
/// `CAP_SETPCAP`, so this comes before changing user.
pub(crate) fn limit_bounding_set(keep: &CapsHashSet) -> Result<(), SecurityError> {
    for cap in caps::all() {
        if !keep.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap).map_err(capabilities(format!(
                "dropping {cap} from the bounding set"
            )))?;
        }
    }
    Ok(())
}

/// After the user change: root keeps `keep` as its permitted and effective set; others
/// keep nothing (the kernel cleared them when the uid changed). Nothing is inheritable.
pub(crate) fn set_process_caps(keep: &CapsHashSet, root: bool) -> Result<(), SecurityError> {
    let empty = CapsHashSet::new();
    caps::clear(None, CapSet::Ambient).map_err(capabilities("clearing ambient capabilities"))?;
    caps::set(None, CapSet::Inheritable, &empty)
        .map_err(capabilities("clearing inheritable capabilities"))?;
    let wanted = if root { keep } else { &empty };
    caps::set(None, CapSet::Effective, &empty).map_err(capabilities("setting capabilities"))?;
    caps::set(None, CapSet::Permitted, wanted)
        .map_err(capabilities("setting permitted capabilities"))?;
    caps::set(None, CapSet::Effective, wanted)
        .map_err(capabilities("setting effective capabilities"))?;
    Ok(())
}

/// `name` as the kernel's capability name (`net_admin`, `NET_ADMIN`, `CAP_NET_ADMIN`
/// all name `CAP_NET_ADMIN`), or `ALL`; `None` for a name the kernel does not have.
pub fn parse_capability(name: &str) -> Option<String> {
    let upper = name.trim().to_ascii_uppercase();
    if upper == "ALL" {
        return Some(upper);
    }
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    full.parse::<Capability>().ok().map(|c| c.to_string())
}

/// The capability set of a container's processes, as Docker computes it: every
/// capability when privileged; else Docker's 14, less `cap_drop`, plus `cap_add`, where
/// `ALL` in `cap_add` means every one but those dropped and `ALL` in `cap_drop` means
/// only those added. `held` is what lade has: `ALL` stops there (root here may lack
/// `CAP_SYS_RESOURCE`), and a capability named in `cap_add` beyond it is refused.
pub fn capabilities_for(
    privileges: &super::Privileges,
    held: &CapsHashSet,
) -> Result<CapsHashSet, SecurityError> {
    if privileges.privileged {
        return Ok(held.clone());
    }
    let parse = |names: &[String]| -> Vec<String> {
        names.iter().filter_map(|n| parse_capability(n)).collect()
    };
    let (add, drop) = (parse(&privileges.cap_add), parse(&privileges.cap_drop));
    let named =
        |names: &[String]| -> CapsHashSet { names.iter().filter_map(|n| n.parse().ok()).collect() };
    let all = |names: &[String]| names.iter().any(|n| n == "ALL");
    let dropped = named(&drop);
    let wanted: CapsHashSet = if all(&add) {
        return Ok(held.difference(&dropped).copied().collect());
    } else if all(&drop) {
        named(&add)
    } else {
        DEFAULT_CAPS
            .into_iter()
            .filter(|c| !dropped.contains(c))
            .chain(named(&add))
            .collect()
    };
    if let Some(missing) = named(&add).iter().find(|c| !held.contains(c)) {
        return Err(SecurityError::NotHeld(missing.to_string()));
    }
    Ok(wanted.intersection(held).copied().collect())
}

/// A seccomp profile in Docker's JSON format (`defaultAction`, `syscalls` with `names`,
/// `action`, `errnoRet`, `args`, `includes`/`excludes`), checked and kept in this form
/// until the init compiles it for the container's capabilities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeccompProfile {
    pub default_action: ProfileAction,
    pub rule_sets: Vec<SeccompRuleSet>,
}

/// One entry of a profile's `syscalls`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeccompRuleSet {
    pub names: Vec<String>,
    pub action: ProfileAction,
    /// All must hold for the rule to match.
    pub args: Vec<SeccompArg>,
    /// `includes`/`excludes`: the rule counts only with all of `caps` held and none of
    /// `excluded_caps`, on one of `arches` (when named) and none of `excluded_arches`,
    /// on a kernel at least `min_kernel`.
    pub caps: Vec<String>,
    pub excluded_caps: Vec<String>,
    pub arches: Vec<String>,
    pub excluded_arches: Vec<String>,
    pub min_kernel: Option<(u32, u32)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProfileAction {
    Allow,
    Errno(u32),
    KillThread,
    KillProcess,
    Trap,
    Trace(u32),
    Log,
}

/// A condition on one argument (libseccomp's: compared as 64-bit values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeccompArg {
    pub index: u8,
    pub op: ArgOp,
    pub value: u64,
    pub value_two: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ArgOp {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    MaskedEq,
}

/// System call number -> the rules any one of which matches it (`None`: whatever the
/// arguments).
type CallRules = BTreeMap<i64, Option<Vec<SeccompRule>>>;

/// Docker's profile as written.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawProfile {
    default_action: Option<String>,
    default_errno_ret: Option<u32>,
    #[serde(default)]
    syscalls: Vec<RawSyscall>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSyscall {
    #[serde(default)]
    names: Vec<String>,
    /// Docker's older profiles name one system call per entry.
    name: Option<String>,
    action: Option<String>,
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Vec<RawArg>,
    #[serde(default)]
    includes: RawFilter,
    #[serde(default)]
    excludes: RawFilter,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawArg {
    index: u32,
    #[serde(default)]
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawFilter {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
    min_kernel: Option<String>,
}

fn profile_action(
    name: &str,
    errno: Option<u32>,
    default_errno: u32,
) -> Result<ProfileAction, String> {
    Ok(match name {
        "SCMP_ACT_ALLOW" => ProfileAction::Allow,
        "SCMP_ACT_ERRNO" => ProfileAction::Errno(errno.unwrap_or(default_errno)),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => ProfileAction::KillThread,
        "SCMP_ACT_KILL_PROCESS" => ProfileAction::KillProcess,
        "SCMP_ACT_TRAP" => ProfileAction::Trap,
        "SCMP_ACT_TRACE" => ProfileAction::Trace(errno.unwrap_or(default_errno)),
        "SCMP_ACT_LOG" => ProfileAction::Log,
        "SCMP_ACT_NOTIFY" => {
            return Err("action SCMP_ACT_NOTIFY needs a seccomp agent, which lade has not".into())
        }
        other => {
            return Err(format!(
                "unknown action {other:?} (expected SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD, SCMP_ACT_TRAP, SCMP_ACT_TRACE or SCMP_ACT_LOG)"
            ))
        }
    })
}

fn kernel_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

impl SeccompProfile {
    /// Reads a profile in Docker's JSON format; errors name the file and what is wrong.
    pub fn from_file(path: &Path) -> Result<SeccompProfile, SecurityError> {
        let bad = |reason: String| SecurityError::Profile {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
        Self::parse(&text).map_err(bad)
    }

    fn parse(text: &[u8]) -> Result<SeccompProfile, String> {
        let raw: RawProfile =
            serde_json::from_slice(text).map_err(|e| format!("not a seccomp profile: {e}"))?;
        // libseccomp's (and Docker's) errno for an ERRNO action that names none.
        let default_errno = raw.default_errno_ret.unwrap_or(libc::EPERM as u32);
        let default_action = profile_action(
            raw.default_action
                .as_deref()
                .ok_or("it has no defaultAction")?,
            raw.default_errno_ret,
            default_errno,
        )
        .map_err(|e| format!("defaultAction: {e}"))?;
        let mut rule_sets = Vec::new();
        for (i, entry) in raw.syscalls.into_iter().enumerate() {
            let mut names = entry.names;
            names.extend(entry.name);
            let at = |what: String| format!("syscalls[{i}] ({}): {what}", names.join(", "));
            if names.is_empty() {
                return Err(format!("syscalls[{i}] names no system call"));
            }
            let action = profile_action(
                entry
                    .action
                    .as_deref()
                    .ok_or_else(|| at("it has no action".into()))?,
                entry.errno_ret,
                default_errno,
            )
            .map_err(at)?;
            let mut args = Vec::new();
            for arg in entry.args {
                let op = match arg.op.as_str() {
                    "SCMP_CMP_NE" => ArgOp::Ne,
                    "SCMP_CMP_LT" => ArgOp::Lt,
                    "SCMP_CMP_LE" => ArgOp::Le,
                    "SCMP_CMP_EQ" => ArgOp::Eq,
                    "SCMP_CMP_GE" => ArgOp::Ge,
                    "SCMP_CMP_GT" => ArgOp::Gt,
                    "SCMP_CMP_MASKED_EQ" => ArgOp::MaskedEq,
                    other => return Err(at(format!("unknown argument operator {other:?}"))),
                };
                let index = u8::try_from(arg.index)
                    .ok()
                    .filter(|i| *i < 6)
                    .ok_or_else(|| {
                        at(format!(
                            "argument index {} (system calls have 6: 0 to 5)",
                            arg.index
                        ))
                    })?;
                args.push(SeccompArg {
                    index,
                    op,
                    value: arg.value,
                    value_two: arg.value_two,
                });
            }
            let min_kernel = match &entry.includes.min_kernel {
                Some(text) => Some(
                    kernel_version(text)
                        .ok_or_else(|| at(format!("minKernel {text:?} is not a version")))?,
                ),
                None => None,
            };
            let caps = |names: Vec<String>| -> Result<Vec<String>, String> {
                names
                    .iter()
                    .map(|n| {
                        parse_capability(n)
                            .filter(|c| c != "ALL")
                            .ok_or_else(|| at(format!("unknown capability {n:?}")))
                    })
                    .collect()
            };
            rule_sets.push(SeccompRuleSet {
                caps: caps(entry.includes.caps)?,
                excluded_caps: caps(entry.excludes.caps)?,
                arches: entry.includes.arches,
                excluded_arches: entry.excludes.arches,
                names,
                action,
                args,
                min_kernel,
            });
        }
        Ok(SeccompProfile {
            default_action,
            rule_sets,
        })
    }

    /// The filters that together act as this profile for a process holding `caps`.
    /// seccompiler gives each filter one action on a match, so there is one filter per
    /// action; the kernel runs them all and the strongest answer wins, which equals the
    /// profile's first match unless one call matches rules with different actions.
    pub(crate) fn filters(&self, caps: &CapsHashSet) -> Result<Vec<BpfProgram>, SecurityError> {
        let arch = target_arch()?;
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .and_then(|release| kernel_version(release.trim()));
        let arch_names: &[&str] = match std::env::consts::ARCH {
            "x86_64" => &["amd64", "x86_64", "SCMP_ARCH_X86_64"],
            "aarch64" => &["arm64", "aarch64", "SCMP_ARCH_AARCH64"],
            "riscv64" => &["riscv64", "SCMP_ARCH_RISCV64"],
            _ => &[],
        };
        let ours = |arches: &[String]| arches.iter().any(|a| arch_names.contains(&a.as_str()));
        let has = |name: &String| name.parse().is_ok_and(|c: Capability| caps.contains(&c));
        // Action -> system call -> its rules (`None`: matches whatever the arguments).
        let mut by_action: Vec<(ProfileAction, CallRules)> = Vec::new();
        for set in &self.rule_sets {
            let applies = set.caps.iter().all(has)
                && !set.excluded_caps.iter().any(has)
                && (set.arches.is_empty() || ours(&set.arches))
                && !ours(&set.excluded_arches)
                && match (set.min_kernel, kernel) {
                    (Some(wanted), Some(have)) => have >= wanted,
                    _ => true,
                };
            if !applies || set.action == self.default_action {
                continue;
            }
            let rule = if set.args.is_empty() {
                None
            } else {
                let conditions = set
                    .args
                    .iter()
                    .map(|arg| {
                        let (op, value) = match arg.op {
                            ArgOp::Ne => (SeccompCmpOp::Ne, arg.value),
                            ArgOp::Lt => (SeccompCmpOp::Lt, arg.value),
                            ArgOp::Le => (SeccompCmpOp::Le, arg.value),
                            ArgOp::Eq => (SeccompCmpOp::Eq, arg.value),
                            ArgOp::Ge => (SeccompCmpOp::Ge, arg.value),
                            ArgOp::Gt => (SeccompCmpOp::Gt, arg.value),
                            ArgOp::MaskedEq => (SeccompCmpOp::MaskedEq(arg.value), arg.value_two),
                        };
                        condition(arg.index, SeccompCmpArgLen::Qword, op, value)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Some(rule(conditions)?)
            };
            let index = match by_action.iter().position(|(a, _)| *a == set.action) {
                Some(i) => i,
                None => {
                    by_action.push((set.action, BTreeMap::new()));
                    by_action.len() - 1
                }
            };
            let calls = &mut by_action[index].1;
            // Names this architecture lacks are skipped, as libseccomp skips them.
            for number in set.names.iter().filter_map(|n| syscall_number(n)) {
                let entry = calls.entry(number).or_insert_with(|| Some(Vec::new()));
                match (entry.as_mut(), &rule) {
                    (Some(rules), Some(rule)) => rules.push(rule.clone()),
                    _ => *entry = None,
                }
            }
        }
        let finish = |calls: &CallRules| {
            calls
                .iter()
                .map(|(n, rules)| (*n, rules.clone().unwrap_or_default()))
                .collect::<BTreeMap<_, _>>()
        };
        let action = |a: ProfileAction| match a {
            ProfileAction::Allow => SeccompAction::Allow,
            ProfileAction::Errno(e) => SeccompAction::Errno(e),
            ProfileAction::KillThread => SeccompAction::KillThread,
            ProfileAction::KillProcess => SeccompAction::KillProcess,
            ProfileAction::Trap => SeccompAction::Trap,
            ProfileAction::Trace(e) => SeccompAction::Trace(e),
            ProfileAction::Log => SeccompAction::Log,
        };
        let mut filters = Vec::new();
        if self.default_action != ProfileAction::Allow {
            // Whatever a rule names passes this one, to meet its own action below.
            let mut named: CallRules = BTreeMap::new();
            for (_, calls) in &by_action {
                for (number, rules) in calls {
                    let entry = named.entry(*number).or_insert_with(|| Some(Vec::new()));
                    match (entry.as_mut(), rules) {
                        (Some(all), Some(rules)) => all.extend(rules.iter().cloned()),
                        _ => *entry = None,
                    }
                }
            }
            filters.push(syscall_tree::compile(
                finish(&named),
                action(self.default_action),
                SeccompAction::Allow,
                arch,
            )?);
        }
        for (matched, calls) in &by_action {
            if *matched == ProfileAction::Allow || calls.is_empty() {
                continue;
            }
            filters.push(syscall_tree::compile(
                finish(calls),
                SeccompAction::Allow,
                action(*matched),
                arch,
            )?);
        }
        Ok(filters)
    }
}

/// Docker's `--ulimit` names and the resources they set.
const RLIMITS: [(&str, nix::sys::resource::Resource); 15] = {
    use nix::sys::resource::Resource::*;
    [
        ("core", RLIMIT_CORE),
        ("cpu", RLIMIT_CPU),
        ("data", RLIMIT_DATA),
        ("fsize", RLIMIT_FSIZE),
        ("locks", RLIMIT_LOCKS),
        ("memlock", RLIMIT_MEMLOCK),
        ("msgqueue", RLIMIT_MSGQUEUE),
        ("nice", RLIMIT_NICE),
        ("nofile", RLIMIT_NOFILE),
        ("nproc", RLIMIT_NPROC),
        ("rss", RLIMIT_RSS),
        ("rtprio", RLIMIT_RTPRIO),
        ("rttime", RLIMIT_RTTIME),
        ("sigpending", RLIMIT_SIGPENDING),
        ("stack", RLIMIT_STACK),
    ]
};

/// The `--ulimit` names lade knows (Docker's).
pub fn rlimit_names() -> Vec<&'static str> {
    RLIMITS.iter().map(|(name, _)| *name).collect()
}

/// Sets the process's resource limits. Raising a hard limit needs
/// `CAP_SYS_RESOURCE`, which the host's root may lack: the message says so.
pub(crate) fn set_rlimits(rlimits: &[super::Rlimit]) -> Result<(), String> {
    for limit in rlimits {
        let Some((_, resource)) = RLIMITS.iter().find(|(name, _)| *name == limit.name) else {
            return Err(format!("--ulimit {}: no such resource", limit.name));
        };
        let shown = |v: u64| {
            if v == u64::MAX {
                "unlimited".to_string()
            } else {
                v.to_string()
            }
        };
        let to_raw = |v: u64| {
            if v == u64::MAX {
                nix::sys::resource::RLIM_INFINITY
            } else {
                v
            }
        };
        nix::sys::resource::setrlimit(*resource, to_raw(limit.soft), to_raw(limit.hard)).map_err(
            |e| {
                let current = nix::sys::resource::getrlimit(*resource)
                    .map(|(_, hard)| format!(" (lade's hard limit is {})", shown(hard)))
                    .unwrap_or_default();
                format!(
                    "--ulimit {}={}:{}: {e}{current}; raising a hard limit needs CAP_SYS_RESOURCE",
                    limit.name,
                    shown(limit.soft),
                    shown(limit.hard)
                )
            },
        )?;
    }
    Ok(())
}

/// `no_new_privs`: no exec can gain privileges (setuid bits, file capabilities).
pub(crate) fn no_new_privs() -> Result<(), SecurityError> {
    nix::sys::prctl::set_no_new_privs()
        .map_err(|errno| SecurityError::NoNewPrivs(std::io::Error::from(errno)))
}

/// Docker's default seccomp profile for a container with Docker's default capabilities,
/// as data: an allow list (everything else gets EPERM), system calls allowed only with
/// some arguments, and `clone3` answered with ENOSYS so that C libraries fall back to
/// `clone`, whose flags the filter can see. Names unknown on this architecture (the
/// 32-bit variants on a 64-bit machine) are skipped, as libseccomp skips them.
const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_time64",
    "futex_waitv",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "chroot",
];

/// Allowed on one architecture only.
const ALLOWED_ON_ARCH: &[(&str, &[&str])] = &[
    ("x86_64", &["arch_prctl", "modify_ldt"]),
    (
        "aarch64",
        &[
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
            "breakpoint",
            "cacheflush",
            "set_tls",
        ],
    ),
    ("riscv64", &["riscv_flush_icache"]),
];

/// `clone` is allowed without any of these namespace flags (CLONE_NEWNS, NEWCGROUP,
/// NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET), as in Docker's profile.
const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

/// Personalities Docker allows: Linux, with or without its compatibility flags, and the
/// query value.
const PERSONALITIES: [u64; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// `socket` is allowed for every address family but AF_VSOCK.
const AF_VSOCK: u64 = 40;

fn target_arch() -> Result<TargetArch, SecurityError> {
    match std::env::consts::ARCH {
        "x86_64" => Ok(TargetArch::x86_64),
        "aarch64" => Ok(TargetArch::aarch64),
        "riscv64" => Ok(TargetArch::riscv64),
        other => Err(SecurityError::Architecture(other)),
    }
}

/// The number of a system call on this architecture, if it has it.
fn syscall_number(name: &str) -> Option<i64> {
    name.parse::<syscalls::Sysno>().ok().map(|s| s.id() as i64)
}

fn condition(
    arg: u8,
    len: SeccompCmpArgLen,
    op: SeccompCmpOp,
    value: u64,
) -> Result<SeccompCondition, SecurityError> {
    Ok(SeccompCondition::new(arg, len, op, value)?)
}

fn rule(conditions: Vec<SeccompCondition>) -> Result<SeccompRule, SecurityError> {
    Ok(SeccompRule::new(conditions)?)
}

/// The rules of the allow list: system call number -> the argument checks any one of
/// which allows it (none: always allowed).
pub(super) fn allow_rules() -> Result<BTreeMap<i64, Vec<SeccompRule>>, SecurityError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    let arch_specific = ALLOWED_ON_ARCH
        .iter()
        .filter(|(arch, _)| *arch == std::env::consts::ARCH)
        .flat_map(|(_, names)| names.iter());
    for name in ALLOWED.iter().chain(arch_specific) {
        if let Some(number) = syscall_number(name) {
            rules.insert(number, Vec::new());
        }
    }
    use SeccompCmpArgLen::{Dword, Qword};
    rules.insert(
        libc::SYS_clone,
        vec![rule(vec![condition(
            0,
            Qword,
            SeccompCmpOp::MaskedEq(CLONE_NAMESPACE_FLAGS),
            0,
        )?])?],
    );
    rules.insert(
        libc::SYS_socket,
        vec![rule(vec![condition(
            0,
            Dword,
            SeccompCmpOp::Ne,
            AF_VSOCK,
        )?])?],
    );
    rules.insert(
        libc::SYS_personality,
        PERSONALITIES
            .iter()
            .map(|&p| rule(vec![condition(0, Dword, SeccompCmpOp::Eq, p)?]))
            .collect::<Result<_, _>>()?,
    );
    Ok(rules)
}

/// The filters to install, in order: the allow list, then `clone3` -> ENOSYS (the last
/// installed filter's errno wins among filters that both refuse).
pub(crate) fn seccomp_filters() -> Result<Vec<BpfProgram>, SecurityError> {
    let arch = target_arch()?;
    let allow = syscall_tree::compile(
        allow_rules()?,
        SeccompAction::Errno(libc::EPERM as u32),
        SeccompAction::Allow,
        arch,
    )?;
    let no_clone3 = SeccompFilter::new(
        [(libc::SYS_clone3, Vec::new())].into_iter().collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )?;
    let no_clone3: BpfProgram = no_clone3.try_into().map_err(SecurityError::Filter)?;
    Ok(vec![allow, no_clone3])
}

pub(crate) fn apply(filters: &[BpfProgram]) -> Result<(), SecurityError> {
    for filter in filters {
        seccompiler::apply_filter(filter).map_err(SecurityError::Install)?;
    }
    Ok(())
}

/// Installs the filters without setting `no_new_privs` (seccompiler always sets it):
/// for `--security-opt no-new-privileges=false`, while this process still holds
/// `CAP_SYS_ADMIN`, which the kernel then asks for instead.
pub(crate) fn apply_keeping_new_privileges(filters: &[BpfProgram]) -> Result<(), SecurityError> {
    for filter in filters {
        let program = libc::sock_fprog {
            len: u16::try_from(filter.len()).map_err(|_| {
                SecurityError::Install(seccompiler::Error::Seccomp(std::io::Error::from(
                    std::io::ErrorKind::InvalidInput,
                )))
            })?,
            // seccompiler's sock_filter is the kernel's layout (code, jt, jf, k), as
            // libc's is.
            filter: filter.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: seccomp(2) reads `program` and the instructions it points to, which
        // outlive the call; it changes nothing in this process's memory.
        let done = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &program as *const libc::sock_fprog,
            )
        };
        if done != 0 {
            return Err(SecurityError::Install(seccompiler::Error::Seccomp(
                std::io::Error::last_os_error(),
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockers_profile_format_is_read_and_compiled() {
        let profile = SeccompProfile::parse(
            br#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
                "syscalls": [
                  {"names": ["read", "write", "no_such_call"], "action": "SCMP_ACT_ALLOW"},
                  {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                   "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                  {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
                  {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW",
                   "includes": {"caps": ["CAP_SYS_PTRACE"]}}
                ]}"#,
        )
        .unwrap();
        assert_eq!(profile.default_action, ProfileAction::Errno(1));
        assert_eq!(profile.rule_sets[2].action, ProfileAction::Errno(38));
        let caps: CapsHashSet = DEFAULT_CAPS.into_iter().collect();
        // The default's filter, and clone3's.
        assert_eq!(profile.filters(&caps).unwrap().len(), 2);

        let deny_mkdir = SeccompProfile::parse(
            br#"{"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}"#,
        )
        .unwrap();
        assert_eq!(deny_mkdir.rule_sets[0].action, ProfileAction::Errno(1));
        assert_eq!(deny_mkdir.filters(&caps).unwrap().len(), 1);

        for (text, wanted) in [
            (&br#"{"syscalls": []}"#[..], "no defaultAction"),
            (br#"{"defaultAction": "SCMP_ACT_NOPE"}"#, "unknown action"),
            (
                br#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 7, "op": "SCMP_CMP_EQ"}]}]}"#,
                "argument index 7",
            ),
            (
                br#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "op": "SCMP_CMP_LIKE"}]}]}"#,
                "unknown argument operator",
            ),
            (b"[1, 2]", "not a seccomp profile"),
        ] {
            let error = SeccompProfile::parse(text).unwrap_err();
            assert!(error.contains(wanted), "{error}");
        }
    }

    #[test]
    fn capabilities_as_docker_computes_them() {
        use crate::exec::Privileges;
        let held: CapsHashSet = caps::all();
        let with = |add: &[&str], drop: &[&str]| {
            capabilities_for(
                &Privileges {
                    cap_add: add.iter().map(|s| s.to_string()).collect(),
                    cap_drop: drop.iter().map(|s| s.to_string()).collect(),
                    ..Privileges::default()
                },
                &held,
            )
            .unwrap()
        };
        let defaults = with(&[], &[]);
        assert_eq!(defaults.len(), 14);
        let more = with(&["CAP_NET_ADMIN"], &["CAP_CHOWN"]);
        assert!(more.contains(&Capability::CAP_NET_ADMIN));
        assert!(!more.contains(&Capability::CAP_CHOWN));
        assert_eq!(with(&["CAP_KILL"], &["ALL"]).len(), 1);
        assert_eq!(with(&["ALL"], &["CAP_KILL"]).len(), held.len() - 1);
        let few: CapsHashSet = DEFAULT_CAPS.into_iter().collect();
        let refused = capabilities_for(
            &Privileges {
                cap_add: vec!["CAP_SYS_ADMIN".into()],
                ..Privileges::default()
            },
            &few,
        );
        assert!(matches!(refused, Err(SecurityError::NotHeld(_))));
    }

    #[test]
    fn filters_compile() {
        let filters = seccomp_filters().unwrap();
        assert_eq!(filters.len(), 2);
    }

    #[test]
    fn the_allow_list_is_dockers() {
        let rules = allow_rules().unwrap();
        for allowed in ["read", "execve", "clone", "socket", "chroot", "ptrace"] {
            assert!(
                rules.contains_key(&syscall_number(allowed).unwrap()),
                "{allowed}"
            );
        }
        // Docker 25 and containerd took io_uring out after a series of kernel escapes.
        for refused in [
            "io_uring_setup",
            "io_uring_enter",
            "io_uring_register",
            "mount",
            "umount2",
            "unshare",
            "setns",
            "keyctl",
            "add_key",
            "bpf",
            "userfaultfd",
            "kexec_load",
            "init_module",
            "open_by_handle_at",
            "pivot_root",
            "clone3",
            "reboot",
            "swapon",
            "settimeofday",
            "perf_event_open",
            "fsopen",
            "syslog",
        ] {
            assert!(
                !rules.contains_key(&syscall_number(refused).unwrap()),
                "{refused}"
            );
        }
        assert_eq!(rules[&libc::SYS_personality].len(), PERSONALITIES.len());
    }
}
