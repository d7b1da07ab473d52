//! `run`'s flags for the sandbox around the process (`--privileged`, `--cap-add`,
//! `--security-opt`, `--device`, `--ulimit`, `--pid`, `--ipc`, `--sysctl`, ...), read
//! with Docker's rules into what `exec` is given, and refused, naming the flag, before
//! anything is made.

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use crate::exec::{self, Device, Privileges, Rlimit, SandboxOptions, Seccomp, Share};
use crate::store::Store;

use super::validate::invalid;
use super::{running_init, ContainerError, NetworkMode, Result};

/// The sandbox flags of `run` and `create`, as written.
#[derive(Debug, Clone, Default)]
pub struct SandboxRequest {
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub security_opts: Vec<String>,
    /// `HOST[:CONTAINER[:PERMS]]`.
    pub devices: Vec<String>,
    pub device_cgroup_rules: Vec<String>,
    /// `NAME=SOFT[:HARD]`.
    pub ulimits: Vec<String>,
    pub pid: Option<String>,
    pub ipc: Option<String>,
    pub uts: Option<String>,
    pub userns: Option<String>,
    pub cgroupns: Option<String>,
    pub group_add: Vec<String>,
    pub oom_score_adj: Option<i64>,
    pub oom_kill_disable: bool,
    /// `NAME=VALUE`.
    pub sysctls: Vec<String>,
    /// Bytes; 0 is Docker's default (64 MiB).
    pub shm_size: Option<u64>,
    pub domainname: Option<String>,
}

/// What the request becomes: the spec's parts, the device rules for its cgroup, and
/// the containers whose namespaces it joins at each start.
#[derive(Debug, Clone, Default)]
pub(crate) struct SandboxPlan {
    pub privileges: Privileges,
    pub sandbox: SandboxOptions,
    pub device_rules: Option<Vec<exec::DeviceRule>>,
    pub oom_kill_disable: bool,
    pub shared: Shared,
}

/// The namespaces a container takes from another at each start (`container:NAME`),
/// and whether it lets others take its IPC namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shared {
    #[serde(default)]
    pub pid_from: Option<String>,
    #[serde(default)]
    pub ipc_from: Option<String>,
    /// `--ipc shareable`.
    #[serde(default)]
    pub ipc_shareable: bool,
}

/// Docker's namespaced kernel parameters (`docker/cli` `opts.ValidateSysctl`): those of
/// the IPC namespace by name, and the network's and message queues' by prefix.
const IPC_SYSCTLS: [&str; 8] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

fn bad(flag: &'static str, value: &str, reason: impl Into<String>) -> ContainerError {
    ContainerError::Invalid(invalid(flag, value, reason))
}

/// `container:NAME`'s name, for `--pid` and `--ipc`.
fn container_of<'a>(flag: &'static str, text: &'a str) -> Result<Option<&'a str>> {
    match text.strip_prefix("container:") {
        Some("") => Err(bad(flag, text, "container: needs a container's name or id")),
        Some(name) => Ok(Some(name)),
        None => Ok(None),
    }
}

/// Reads the request with Docker's rules; `network` is the container's network mode
/// (`--sysctl net.*` has no namespace of its own to land in with the host's).
pub(crate) fn plan(request: &SandboxRequest, network: &NetworkMode) -> Result<SandboxPlan> {
    let mut plan = SandboxPlan::default();
    let privileges = &mut plan.privileges;
    let sandbox = &mut plan.sandbox;
    privileges.privileged = request.privileged;
    sandbox.privileged = request.privileged;
    for (flag, names, into) in [
        ("--cap-add", &request.cap_add, &mut privileges.cap_add),
        ("--cap-drop", &request.cap_drop, &mut privileges.cap_drop),
    ] {
        for name in names {
            let cap = exec::parse_capability(name).ok_or_else(|| {
                bad(
                    flag,
                    name,
                    "no such capability (names as in capabilities(7), with or without CAP_, or ALL)",
                )
            })?;
            into.push(cap);
        }
    }
    for opt in &request.security_opts {
        security_opt(opt, privileges)?;
    }
    for text in &request.ulimits {
        privileges.rlimits.push(ulimit(text)?);
    }
    if let Some(score) = request.oom_score_adj {
        if !(-1000..=1000).contains(&score) {
            return Err(bad(
                "--oom-score-adj",
                &score.to_string(),
                "the range is -1000 to 1000",
            ));
        }
        privileges.oom_score_adj = Some(score as i32);
    }
    for group in &request.group_add {
        if group.is_empty() || group.contains([':', '\n', ',']) {
            return Err(bad("--group-add", group, "expected a group name or number"));
        }
        privileges.groups.push(group.clone());
    }

    match request.pid.as_deref().unwrap_or("") {
        "" => {}
        "host" => sandbox.pid = Share::Host,
        text => match container_of("--pid", text)? {
            Some(name) => plan.shared.pid_from = Some(name.to_string()),
            None => return Err(bad("--pid", text, "expected host or container:NAME")),
        },
    }
    match request.ipc.as_deref().unwrap_or("") {
        "" | "private" => {}
        // Any running container's namespace can be joined through /proc; this one
        // records that it agreed to it, which is what Docker checks.
        "shareable" => plan.shared.ipc_shareable = true,
        "none" => sandbox.no_shm = true,
        "host" => {
            sandbox.ipc = Share::Host;
            sandbox.shm_from = Some(PathBuf::from("/dev/shm"));
        }
        text => match container_of("--ipc", text)? {
            Some(name) => plan.shared.ipc_from = Some(name.to_string()),
            None => {
                return Err(bad(
                    "--ipc",
                    text,
                    "expected private, shareable, none, host or container:NAME",
                ))
            }
        },
    }
    match request.uts.as_deref().unwrap_or("") {
        "" => {}
        "host" => sandbox.uts_host = true,
        text => return Err(bad("--uts", text, "expected host (or nothing)")),
    }
    match request.userns.as_deref().unwrap_or("") {
        "" | "host" => {}
        text => {
            return Err(bad(
                "--userns",
                text,
                "lade has no user namespace remapping: only host (the default) is supported",
            ))
        }
    }
    match request.cgroupns.as_deref().unwrap_or("") {
        "" | "private" => {}
        "host" => sandbox.cgroupns_host = true,
        text => return Err(bad("--cgroupns", text, "expected host or private")),
    }
    if let Some(domain) = &request.domainname {
        if sandbox.uts_host {
            return Err(ContainerError::Conflicting(
                "--domainname and --uts host: the host's UTS namespace is not the container's to name",
            ));
        }
        super::validate::dns_name("--domainname", domain)?;
        if domain.len() > 64 {
            return Err(bad(
                "--domainname",
                domain,
                "the kernel takes at most 64 characters",
            ));
        }
        sandbox.domainname = Some(domain.clone());
    }
    if let Some(size) = request.shm_size.filter(|s| *s > 0) {
        sandbox.shm_size = Some(size);
    }

    let shared_ipc = sandbox.ipc != Share::Private || plan.shared.ipc_from.is_some();
    for entry in &request.sysctls {
        let (name, value) = entry
            .split_once('=')
            .filter(|(n, _)| !n.is_empty())
            .ok_or_else(|| bad("--sysctl", entry, "expected NAME=VALUE"))?;
        let net = name.starts_with("net.");
        let ipc = IPC_SYSCTLS.contains(&name) || name.starts_with("fs.mqueue.");
        if !net && !ipc {
            return Err(bad(
                "--sysctl",
                entry,
                "not a namespaced kernel parameter: only net.*, fs.mqueue.*, kernel.msg*, kernel.sem and kernel.shm* are, as Docker allows",
            ));
        }
        if net && *network == NetworkMode::Host {
            return Err(bad(
                "--sysctl",
                entry,
                "with --network host it would change the host's network namespace",
            ));
        }
        if ipc && shared_ipc {
            return Err(bad(
                "--sysctl",
                entry,
                "the container shares an IPC namespace (--ipc host or container:NAME), which it would change",
            ));
        }
        if name.contains(['/', '\0']) || name.split('.').any(|p| p.is_empty() || p == "..") {
            return Err(bad("--sysctl", entry, "not a kernel parameter's name"));
        }
        sandbox.sysctls.insert(name.to_string(), value.to_string());
    }

    let mut rules = Vec::new();
    for text in &request.devices {
        for (device, rule) in device(text)? {
            sandbox.devices.push(device);
            rules.push(rule);
        }
    }
    for rule in &request.device_cgroup_rules {
        rules.push(device_cgroup_rule(rule)?);
    }
    // --privileged gives every device: no devices cgroup, as Docker makes none.
    if !request.privileged && !rules.is_empty() {
        if exec::devices_controller() {
            plan.device_rules = Some(rules);
        } else if let Some(rule) = request.device_cgroup_rules.first() {
            return Err(bad(
                "--device-cgroup-rule",
                rule,
                "this machine has no cgroup v1 devices controller to enforce it",
            ));
        }
    }
    plan.oom_kill_disable = request.oom_kill_disable;
    Ok(plan)
}

/// `--security-opt`, as Docker reads it (`KEY=VALUE`, or the older `KEY:VALUE`).
fn security_opt(opt: &str, privileges: &mut Privileges) -> Result<()> {
    let (key, value) = match opt.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => match opt.split_once(':') {
            Some((k, v)) => (k, Some(v)),
            None => (opt, None),
        },
    };
    match (key, value) {
        ("no-new-privileges", None | Some("true")) => privileges.new_privileges = false,
        ("no-new-privileges", Some("false")) => privileges.new_privileges = true,
        ("no-new-privileges", Some(_)) => {
            return Err(bad(
                "--security-opt",
                opt,
                "no-new-privileges takes true or false",
            ))
        }
        ("seccomp", Some("unconfined")) => privileges.seccomp = Seccomp::Unconfined,
        ("seccomp", Some("builtin")) => privileges.seccomp = Seccomp::Default,
        ("seccomp", Some(file)) if !file.is_empty() => {
            let profile = exec::SeccompProfile::from_file(Path::new(file))?;
            privileges.seccomp = Seccomp::Profile(profile);
        }
        // Neither is on this machine; Docker accepts and ignores them when they are off.
        ("apparmor", Some(_)) => {}
        ("label", Some(value))
            if value == "disable"
                || value == "nested"
                || ["user:", "role:", "type:", "level:", "filetype:"]
                    .iter()
                    .any(|p| value.starts_with(p)) => {}
        _ => {
            return Err(bad(
                "--security-opt",
                opt,
                "expected no-new-privileges[=true|false], seccomp=unconfined|builtin|FILE, apparmor=PROFILE or label=disable|user:|role:|type:|level:",
            ))
        }
    }
    Ok(())
}

/// `--ulimit NAME=SOFT[:HARD]` (-1 is unlimited; a lone value is both), as `run` and
/// `build` take it.
pub fn ulimit(text: &str) -> Result<Rlimit> {
    let (name, values) = text
        .split_once('=')
        .ok_or_else(|| bad("--ulimit", text, "expected NAME=SOFT[:HARD]"))?;
    let names = exec::rlimit_names();
    if !names.contains(&name) {
        return Err(bad(
            "--ulimit",
            text,
            format!("no such resource {name:?} (one of {})", names.join(", ")),
        ));
    }
    let number = |v: &str| -> Result<u64> {
        match v.parse::<i64>() {
            Ok(-1) => Ok(u64::MAX),
            Ok(n) if n >= 0 => Ok(n as u64),
            _ => Err(bad(
                "--ulimit",
                text,
                "a limit is a number (-1 for unlimited)",
            )),
        }
    };
    let (soft, hard) = match values.split_once(':') {
        Some((s, h)) => (number(s)?, number(h)?),
        None => {
            let v = number(values)?;
            (v, v)
        }
    };
    if soft > hard {
        return Err(bad(
            "--ulimit",
            text,
            "the soft limit must be less than or equal to the hard limit",
        ));
    }
    Ok(Rlimit {
        name: name.to_string(),
        soft,
        hard,
    })
}

/// `--device HOST[:CONTAINER[:PERMS]]` (Docker's `ParseDevice`): each device node (a
/// directory gives all those under it) with the devices cgroup rule allowing it.
fn device(text: &str) -> Result<Vec<(Device, exec::DeviceRule)>> {
    let perms_like =
        |s: &str| !s.is_empty() && s.len() <= 3 && s.chars().all(|c| "rwm".contains(c));
    let parts: Vec<&str> = text.split(':').collect();
    let (host, target, perms) = match parts.as_slice() {
        [host] => (*host, *host, "rwm"),
        [host, perms] if perms_like(perms) => (*host, *host, *perms),
        [host, target] => (*host, *target, "rwm"),
        [host, target, perms] => (*host, *target, *perms),
        _ => return Err(bad("--device", text, "expected HOST[:CONTAINER[:PERMS]]")),
    };
    if !perms_like(perms) {
        return Err(bad("--device", text, "PERMS is some of r, w and m"));
    }
    if !target.starts_with('/') || !host.starts_with('/') {
        return Err(bad("--device", text, "both paths must be absolute"));
    }
    let found = |path: &Path| -> Result<Option<(char, u64, u64)>> {
        let meta = std::fs::metadata(path)
            .map_err(|e| bad("--device", text, format!("{}: {e}", path.display())))?;
        use std::os::unix::fs::MetadataExt;
        let kind = meta.file_type();
        let letter = if kind.is_char_device() {
            'c'
        } else if kind.is_block_device() {
            'b'
        } else {
            return Ok(None);
        };
        let rdev = meta.rdev();
        Ok(Some((
            letter,
            nix::sys::stat::major(rdev),
            nix::sys::stat::minor(rdev),
        )))
    };
    let host_path = PathBuf::from(host);
    let mut nodes: Vec<(PathBuf, String)> = Vec::new();
    if host_path.is_dir() {
        for entry in walkdir::WalkDir::new(&host_path)
            .follow_links(false)
            .into_iter()
            .flatten()
        {
            let kind = entry.file_type();
            if kind.is_char_device() || kind.is_block_device() {
                let relative = entry
                    .path()
                    .strip_prefix(&host_path)
                    .unwrap_or(entry.path());
                let inside = Path::new(target).join(relative);
                nodes.push((entry.path().to_path_buf(), inside.display().to_string()));
            }
        }
        if nodes.is_empty() {
            return Err(bad(
                "--device",
                text,
                format!("{host} holds no device nodes"),
            ));
        }
    } else {
        nodes.push((host_path, target.to_string()));
    }
    let mut devices = Vec::new();
    for (source, target) in nodes {
        let Some((kind, major, minor)) = found(&source)? else {
            return Err(bad(
                "--device",
                text,
                format!("{} is not a device node", source.display()),
            ));
        };
        devices.push((
            Device { source, target },
            format!("{kind} {major}:{minor} {perms}"),
        ));
    }
    Ok(devices)
}

/// `--device-cgroup-rule 'TYPE MAJOR:MINOR ACCESS'`, as the kernel reads it.
fn device_cgroup_rule(text: &str) -> Result<exec::DeviceRule> {
    let wrong = || {
        bad(
            "--device-cgroup-rule",
            text,
            "expected 'TYPE MAJOR:MINOR ACCESS': TYPE a, b or c; MAJOR and MINOR numbers or *; ACCESS some of r, w and m",
        )
    };
    let fields: Vec<&str> = text.split_whitespace().collect();
    let [kind, numbers, access] = fields.as_slice() else {
        return Err(wrong());
    };
    let number = |n: &str| n == "*" || (!n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
    let (major, minor) = numbers.split_once(':').ok_or_else(wrong)?;
    let valid = ["a", "b", "c"].contains(kind)
        && number(major)
        && number(minor)
        && !access.is_empty()
        && access.len() <= 3
        && access.chars().all(|c| "rwm".contains(c));
    if !valid {
        return Err(wrong());
    }
    Ok(format!("{kind} {major}:{minor} {access}"))
}

/// Points the spec at the namespaces of the containers it shares them with, as they
/// run now: called at each start.
pub(crate) fn join_shared(store: &Store, shared: &Shared, spec: &mut exec::Spec) -> Result<()> {
    for (flag, from, namespace) in [
        ("--pid", &shared.pid_from, "pid"),
        ("--ipc", &shared.ipc_from, "ipc"),
    ] {
        let Some(name) = from else { continue };
        let other = store.container(name)?;
        if namespace == "ipc" {
            let settings = super::Container::read(other.clone())?.settings;
            if !settings.shared.ipc_shareable {
                return Err(ContainerError::NotShareable(other.name.clone()));
            }
        }
        let init = running_init(&other).ok_or_else(|| ContainerError::SharedStopped {
            flag,
            name: other.name.clone(),
        })?;
        let path = PathBuf::from(format!("/proc/{}/ns/{namespace}", init.pid));
        match namespace {
            "pid" => spec.sandbox.pid = Share::Join(path),
            // Its /dev/shm stays its own: that tmpfs is a mount of the other container's
            // mount namespace, which the kernel will not bind into this one.
            _ => spec.sandbox.ipc = Share::Join(path),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(request: SandboxRequest) -> Result<SandboxPlan> {
        plan(&request, &NetworkMode::None)
    }

    #[test]
    fn capabilities_by_any_spelling() {
        let plan = planned(SandboxRequest {
            cap_add: vec!["net_admin".into(), "CAP_SYS_TIME".into(), "all".into()],
            cap_drop: vec!["Chown".into()],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            plan.privileges.cap_add,
            ["CAP_NET_ADMIN", "CAP_SYS_TIME", "ALL"]
        );
        assert_eq!(plan.privileges.cap_drop, ["CAP_CHOWN"]);
        let error = planned(SandboxRequest {
            cap_add: vec!["FLY".into()],
            ..Default::default()
        })
        .unwrap_err();
        assert!(error.to_string().contains("--cap-add"), "{error}");
    }

    #[test]
    fn ulimits_sysctls_and_rules_follow_docker() {
        let rlimit = ulimit("nofile=100:200").unwrap();
        assert_eq!((rlimit.soft, rlimit.hard), (100, 200));
        assert_eq!(ulimit("core=-1").unwrap().hard, u64::MAX);
        assert!(ulimit("nofile=300:200").is_err());
        assert!(ulimit("files=1").is_err());
        let sysctl = |s: &str, network: NetworkMode| {
            plan(
                &SandboxRequest {
                    sysctls: vec![s.into()],
                    ..Default::default()
                },
                &network,
            )
        };
        assert!(sysctl("net.ipv4.ip_forward=1", NetworkMode::None).is_ok());
        assert!(sysctl("kernel.shmmax=1000", NetworkMode::None).is_ok());
        assert!(sysctl("kernel.hostname=x", NetworkMode::None).is_err());
        assert!(sysctl("net.ipv4.ip_forward=1", NetworkMode::Host).is_err());
        assert!(sysctl("net..x=1", NetworkMode::None).is_err());
        assert_eq!(device_cgroup_rule("c 1:3 rw").unwrap(), "c 1:3 rw");
        assert_eq!(device_cgroup_rule("b *:* m").unwrap(), "b *:* m");
        assert!(device_cgroup_rule("x 1:3 rw").is_err());
        assert!(device_cgroup_rule("c 1:3 rwx").is_err());
        let (null, rule) = device("/dev/null:/dev/mynull:r").unwrap().remove(0);
        assert_eq!(null.target, "/dev/mynull");
        assert_eq!(rule, "c 1:3 r");
        assert_eq!(device("/dev/null:rw").unwrap()[0].0.target, "/dev/null");
        assert!(device("/etc/passwd").is_err());
    }

    #[test]
    fn security_options() {
        let mut privileges = Privileges::default();
        security_opt("no-new-privileges:false", &mut privileges).unwrap();
        assert!(privileges.new_privileges);
        security_opt("no-new-privileges", &mut privileges).unwrap();
        assert!(!privileges.new_privileges);
        security_opt("seccomp=unconfined", &mut privileges).unwrap();
        assert_eq!(privileges.seccomp, Seccomp::Unconfined);
        security_opt("apparmor=docker-default", &mut privileges).unwrap();
        security_opt("label=disable", &mut privileges).unwrap();
        assert!(security_opt("label=bogus", &mut privileges).is_err());
        assert!(security_opt("nonsense", &mut privileges).is_err());
        let error = security_opt("seccomp=/no/such/profile.json", &mut privileges).unwrap_err();
        assert!(
            error.to_string().contains("/no/such/profile.json"),
            "{error}"
        );
    }
}
