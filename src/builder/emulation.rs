//! RUN steps of another platform run under an emulator: the kernel hands a program of
//! another architecture to the interpreter binfmt_misc registered for it (Debian's
//! `qemu-user-static`, registered by `binfmt-support`). Nothing of lade runs the
//! emulator itself; a step only checks, before it starts, that the registration is
//! there and usable inside the sandbox, and otherwise says how to make it so.
//!
//! Usable inside the sandbox means the `F` (fix binary) flag: the kernel opened the
//! interpreter when it was registered, so the sandbox's root, which has no
//! `/usr/libexec/qemu-binfmt`, does not need it. A qemu-user process makes this
//! machine's system calls, so the sandbox's seccomp filter applies to it as it is.

use std::path::{Path, PathBuf};

use crate::oci::Platform;

/// Where binfmt_misc lives; `LADE_BINFMT_DIR` replaces it (tests point it at a
/// directory without registrations).
const BINFMT_DIR: &str = "/proc/sys/fs/binfmt_misc";

/// Why a step of another platform cannot run here.
#[derive(Debug, thiserror::Error)]
pub enum EmulationError {
    #[error("this step is for {platform}, and lade has no emulator for it: lade runs steps of another platform under qemu-user, for architectures amd64, arm64, arm, 386, ppc64le, s390x and riscv64")]
    Unsupported { platform: Platform },
    #[error("this step is for {platform}, which runs here only under qemu-user, but {} is not registered (binfmt_misc{}): install qemu-user-static and binfmt-support (apt-get install qemu-user-static binfmt-support), then run `update-binfmts --enable {name}`{}", file.display(), if *mounted { "" } else { " is not mounted" }, if *mounted { "" } else { " after `mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc`" })]
    NotRegistered {
        platform: Platform,
        name: String,
        file: PathBuf,
        mounted: bool,
    },
    #[error("this step is for {platform}, which runs here under qemu-user, but {} is disabled: run `update-binfmts --enable {name}`", file.display())]
    Disabled {
        platform: Platform,
        name: String,
        file: PathBuf,
    },
    #[error("this step is for {platform}, which runs here under qemu-user, but {} lacks the F (fix binary) flag, so its interpreter cannot be found inside the build's sandbox: register it again with the flag (Debian's qemu-user-static does: `update-binfmts --disable {name} && update-binfmts --enable {name}`)", file.display())]
    NotFixed {
        platform: Platform,
        name: String,
        file: PathBuf,
    },
}

/// The binfmt_misc entry (as Debian's qemu-user-static names it) that runs programs
/// of `platform`; `None` for an architecture qemu-user does not emulate here.
fn binfmt_name(platform: &Platform) -> Option<&'static str> {
    Some(match platform.architecture.as_str() {
        "arm64" => "qemu-aarch64",
        "amd64" => "qemu-x86_64",
        "arm" => "qemu-arm",
        "386" => "qemu-i386",
        "ppc64le" => "qemu-ppc64le",
        "s390x" => "qemu-s390x",
        "riscv64" => "qemu-riscv64",
        _ => return None,
    })
}

/// Checks that a step for `platform` can run on this machine: natively, or under a
/// registered qemu-user. An image that names no architecture runs as this machine's.
pub(crate) fn check(platform: &Platform) -> Result<(), EmulationError> {
    if platform.architecture.is_empty() || platform.is_native() {
        return Ok(());
    }
    let dir = std::env::var_os("LADE_BINFMT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(BINFMT_DIR));
    check_in(&dir, platform)
}

fn check_in(dir: &Path, platform: &Platform) -> Result<(), EmulationError> {
    let name = binfmt_name(platform).ok_or_else(|| EmulationError::Unsupported {
        platform: platform.clone(),
    })?;
    let file = dir.join(name);
    let Ok(text) = std::fs::read_to_string(&file) else {
        return Err(EmulationError::NotRegistered {
            platform: platform.clone(),
            name: name.to_string(),
            mounted: dir.join("register").exists(),
            file,
        });
    };
    if text.lines().next().map(str::trim) != Some("enabled") {
        return Err(EmulationError::Disabled {
            platform: platform.clone(),
            name: name.to_string(),
            file,
        });
    }
    let fixed = text
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .is_some_and(|flags| flags.trim().contains('F'));
    if !fixed {
        return Err(EmulationError::NotFixed {
            platform: platform.clone(),
            name: name.to_string(),
            file,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arm64() -> Platform {
        Platform::parse("linux/arm64").unwrap()
    }

    #[test]
    fn registrations_are_read_as_binfmt_misc_writes_them() {
        let dir = tempfile::tempdir().unwrap();
        let err = check_in(dir.path(), &arm64()).unwrap_err().to_string();
        assert!(
            err.contains("update-binfmts --enable qemu-aarch64")
                && err.contains("mount -t binfmt_misc"),
            "{err}"
        );
        std::fs::write(dir.path().join("register"), "").unwrap();
        let entry = dir.path().join("qemu-aarch64");
        std::fs::write(&entry, "disabled\ninterpreter /x\nflags: PF\n").unwrap();
        assert!(matches!(
            check_in(dir.path(), &arm64()),
            Err(EmulationError::Disabled { .. })
        ));
        std::fs::write(&entry, "enabled\ninterpreter /x\nflags: P\n").unwrap();
        assert!(matches!(
            check_in(dir.path(), &arm64()),
            Err(EmulationError::NotFixed { .. })
        ));
        std::fs::write(&entry, "enabled\ninterpreter /x\nflags: PF\noffset 0\n").unwrap();
        check_in(dir.path(), &arm64()).unwrap();
        let mips = Platform::parse("linux/mips64").unwrap();
        assert!(matches!(
            check_in(dir.path(), &mips),
            Err(EmulationError::Unsupported { .. })
        ));
    }
}
