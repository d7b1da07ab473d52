//! The sandbox: "run this spec" with namespaces, overlayfs, `pivot_root`, cgroups,
//! capabilities, seccomp, a pty and signal forwarding. It knows nothing of images:
//! callers give it directories and a process to run.
//!
//! This file's submodules so far: mount helpers the builder uses for read-only views
//! of layer stacks, and the passwd/group lookups of a root filesystem.

pub mod mounts;
pub mod users;
