//! Privileges: Docker's default capability set, `no_new_privs`, and Docker's default
//! seccomp profile: an allow list with argument checks (`clone` without namespace flags,
//! `socket` without AF_VSOCK, the Linux personalities), EPERM for everything else, and
//! ENOSYS for `clone3`. io_uring is refused, as Docker 25 and containerd refuse it. A system call of a foreign ABI (32-bit x86 on x86_64) kills the
//! process: the filter checks the architecture first.

use std::collections::BTreeMap;

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

/// What went wrong while dropping privileges or installing the seccomp filter; the init
/// reports it as its failure.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SecurityError {
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
    #[error("installing the seccomp filter: {0}")]
    Install(seccompiler::Error),
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
fn allow_rules() -> Result<BTreeMap<i64, Vec<SeccompRule>>, SecurityError> {
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
    let allow = SeccompFilter::new(
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
    let allow: BpfProgram = allow.try_into().map_err(SecurityError::Filter)?;
    let no_clone3: BpfProgram = no_clone3.try_into().map_err(SecurityError::Filter)?;
    Ok(vec![allow, no_clone3])
}

pub(crate) fn apply(filters: &[BpfProgram]) -> Result<(), SecurityError> {
    for filter in filters {
        seccompiler::apply_filter(filter).map_err(SecurityError::Install)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
