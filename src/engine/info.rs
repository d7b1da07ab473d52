//! `lade info`: the store, what it holds, and what this machine offers (cgroups, kernel,
//! CPUs, free space).

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::{EngineError, Result};
use crate::container::{ContainerError, ContainerState};
use crate::exec::overlay::OverlayDriver;
use crate::exec::CgroupLayout;
use crate::store::Store;

/// What `lade info` shows.
#[derive(Debug, Clone)]
pub struct Info {
    pub containers: usize,
    pub running: usize,
    pub paused: usize,
    pub stopped: usize,
    /// Distinct image ids.
    pub images: usize,
    pub root: PathBuf,
    /// `2`, `1`, or the hybrid of this machine's kind, in words.
    pub cgroup_version: &'static str,
    /// The cgroup v1 controllers mounted.
    pub cgroup_controllers: Vec<String>,
    pub kernel: String,
    pub os: String,
    pub architecture: String,
    pub cpus: usize,
    /// Bytes free to lade, and in all, on the store's file system (0 when unknown).
    pub storage_available: u64,
    pub storage_total: u64,
    pub storage_reserve: u64,
    pub rootless: bool,
    /// Rootless: the user namespace's uid and gid maps, `(inside, outside, count)`.
    pub uid_map: Vec<(u32, u32, u32)>,
    pub gid_map: Vec<(u32, u32, u32)>,
    /// The storage driver's name (`overlay`, `fuse-overlayfs`), or why there is none.
    pub driver: String,
    /// The overlay mount's kind: native overlay, with `userxattr` in a user namespace,
    /// or fuse-overlayfs.
    pub overlay: String,
    /// Rootless: the program that connects containers to the network.
    pub network_tool: Option<String>,
    /// Rootless: the cgroup containers' limits go to, or why there is none.
    pub rootless_cgroup: Option<RootlessCgroup>,
}

/// Where a rootless user's containers get their cgroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootlessCgroup {
    /// A cgroup v2 subtree delegated to the user, with the controllers it offers.
    Delegated {
        dir: PathBuf,
        controllers: Vec<String>,
    },
    /// None here: limits and `pause` are refused for this reason. `scope` says whether
    /// a detached container's monitor gets a delegated scope from the user's systemd.
    Off { reason: String, scope: bool },
}

/// `lade info`.
pub fn info(store: &Store) -> Result<Info> {
    let records = store.containers()?;
    let states = records
        .iter()
        .map(ContainerState::current)
        .collect::<Result<Vec<_>, ContainerError>>()?;
    let count = |state: ContainerState| states.iter().filter(|s| **s == state).count();
    let images: BTreeSet<_> = store.list_images()?.into_iter().map(|s| s.id).collect();
    let layout = CgroupLayout::detect();
    let cgroup_version = match &layout.unified {
        Some((_, controllers)) if !controllers.is_empty() && layout.v1.is_empty() => "2",
        Some(_) if !layout.v1.is_empty() => "1 (hybrid: v2 mounted, v1 controllers)",
        Some(_) => "2",
        None => "1",
    };
    let rootless = crate::exec::rootless::is_rootless();
    let (uid_map, gid_map) = if rootless {
        crate::exec::rootless::current_mapping()
    } else {
        (Vec::new(), Vec::new())
    };
    let driver = crate::exec::overlay::choose();
    let rootless_cgroup = rootless.then(|| match crate::exec::rootless_cgroup_subtree(None) {
        Ok(delegation) => RootlessCgroup::Delegated {
            dir: delegation.dir,
            controllers: delegation.controllers,
        },
        Err(reason) => RootlessCgroup::Off {
            reason,
            scope: crate::exec::delegation::scope_possible(),
        },
    });
    let uname = nix::sys::utsname::uname().map_err(|e| EngineError::Io(e.into()))?;
    let (storage_available, storage_total) =
        crate::store::filesystem_space(store.root()).unwrap_or((0, 0));
    Ok(Info {
        containers: records.len(),
        running: count(ContainerState::Running),
        paused: count(ContainerState::Paused),
        stopped: states.iter().filter(|s| s.is_stopped()).count(),
        images: images.len(),
        root: store.root().to_path_buf(),
        cgroup_version,
        cgroup_controllers: layout.v1.keys().cloned().collect(),
        kernel: uname.release().to_string_lossy().into_owned(),
        os: uname.sysname().to_string_lossy().into_owned(),
        architecture: uname.machine().to_string_lossy().into_owned(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        storage_available,
        storage_total,
        storage_reserve: store.reserve(),
        rootless,
        uid_map,
        gid_map,
        driver: match &driver {
            Ok(driver) => driver.name().to_string(),
            Err(_) => "none".to_string(),
        },
        overlay: match (&driver, rootless) {
            (Err(e), _) => e.to_string(),
            (Ok(OverlayDriver::Fuse), _) => {
                "fuse-overlayfs in the user namespace (a process per mount)".to_string()
            }
            (Ok(OverlayDriver::Kernel), true) => {
                "native overlay in the user namespace (userxattr)".to_string()
            }
            (Ok(OverlayDriver::Kernel), false) => "native overlay".to_string(),
        },
        rootless_cgroup,
        network_tool: rootless.then(|| {
            match (
                crate::network::pasta::pasta_binary(),
                crate::network::pasta::slirp4netns_binary(),
            ) {
                (Some(pasta), _) => format!("pasta ({})", pasta.display()),
                (None, Some(slirp)) => format!("slirp4netns ({})", slirp.display()),
                (None, None) => "none: install pasta (apt-get install passt) or slirp4netns".into(),
            }
        }),
    })
}
