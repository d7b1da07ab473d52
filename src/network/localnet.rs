//! The guard against CVE-2020-8558. netavark turns `route_localnet` on for its bridges,
//! so that ports published on 127.0.0.1 can be forwarded to containers; the same switch
//! lets a container with CAP_NET_RAW hand its gateway a packet addressed to
//! 127.0.0.0/8 and reach the host's loopback-only services. As Kubernetes does, a rule
//! in the filter table's INPUT chain drops packets to 127.0.0.0/8 that arrive on a lade
//! bridge unless conntrack knows them as part of a connection the host made (the
//! replies of a forwarded 127.0.0.1 port) or as DNATed.
//!
//! One rule per bridge, made before netavark connects a container to it and removed
//! once netavark has removed the bridge, so that the host's tables end as they were.
//! Callers hold the host's network lock.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Why a bridge's guard could not be made or removed.
#[derive(Debug, thiserror::Error)]
#[error("the firewall rule that keeps containers on bridge {bridge} from the host's 127.0.0.0/8 services: {message}")]
pub struct GuardError {
    pub bridge: String,
    pub message: String,
}

/// Marks lade's rules in `iptables-save`, and says why they are there.
const COMMENT: &str = "lade: containers may not reach the host's 127.0.0.0/8 (CVE-2020-8558)";

/// The rule for `bridge`, as iptables takes it after `-C`, `-I INPUT 1` or `-D`.
fn rule(bridge: &str) -> Vec<&str> {
    vec![
        "-i",
        bridge,
        "-d",
        "127.0.0.0/8",
        "-m",
        "conntrack",
        "!",
        "--ctstate",
        "RELATED,ESTABLISHED,DNAT",
        "-m",
        "comment",
        "--comment",
        COMMENT,
        "-j",
        "DROP",
    ]
}

/// The `iptables` netavark uses: the one on `$PATH`, else where Debian puts it (a root
/// shell without the sbin directories on its `$PATH` still has it there).
fn iptables() -> PathBuf {
    let path_dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    path_dirs
        .into_iter()
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join("iptables"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| PathBuf::from("iptables"))
}

/// Runs iptables on the filter table's INPUT chain; `Ok(false)` when it ran and said no
/// (a `-C` that found no such rule).
fn input_chain(bridge: &str, action: &[&str]) -> Result<bool, GuardError> {
    let binary = iptables();
    let output = Command::new(&binary)
        .args(["-w", "-t", "filter"])
        .args(action)
        .args(rule(bridge))
        .output()
        .map_err(|e| GuardError {
            bridge: bridge.to_string(),
            message: format!("cannot run {}: {e}", binary.display()),
        })?;
    if output.status.success() {
        return Ok(true);
    }
    // `-C` exits 1 when the rule is absent; anything else (2, 4) is a failure.
    if action[0] == "-C" && output.status.code() == Some(1) {
        return Ok(false);
    }
    Err(GuardError {
        bridge: bridge.to_string(),
        message: format!(
            "{} {} failed ({}): {}",
            binary.display(),
            action.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ),
    })
}

/// Makes the guard of `bridge` unless it is there already.
pub fn guard(bridge: &str) -> Result<(), GuardError> {
    if input_chain(bridge, &["-C", "INPUT"])? {
        return Ok(());
    }
    // First in the chain: a host's own ACCEPT rules must not let the packets past it.
    input_chain(bridge, &["-I", "INPUT", "1"]).map(drop)
}

/// Removes the guard of `bridge` once netavark has removed the bridge (a bridge still
/// there still has containers on it, and keeps its guard).
pub fn unguard_if_gone(bridge: &str) -> Result<(), GuardError> {
    if bridge_exists(bridge) {
        return Ok(());
    }
    // A rule made twice (two lade commands racing before the host lock, or an older
    // copy) goes too; the bound keeps a failing iptables from looping.
    for _ in 0..8 {
        if !input_chain(bridge, &["-C", "INPUT"])? {
            return Ok(());
        }
        input_chain(bridge, &["-D", "INPUT"])?;
    }
    Ok(())
}

fn bridge_exists(bridge: &str) -> bool {
    !bridge.is_empty() && !bridge.contains('/') && Path::new("/sys/class/net").join(bridge).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_drops_only_new_packets_to_loopback_from_the_bridge() {
        let rule = rule("lade3").join(" ");
        assert!(rule.starts_with("-i lade3 -d 127.0.0.0/8 "), "{rule}");
        // Replies of a forwarded 127.0.0.1 port come back on the bridge to 127.0.0.1:
        // conntrack knows them, and they pass.
        assert!(
            rule.contains("-m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT"),
            "{rule}"
        );
        assert!(rule.ends_with("-j DROP"), "{rule}");
    }

    #[test]
    fn a_name_that_is_no_interface_is_never_taken_for_an_existing_bridge() {
        assert!(!bridge_exists(""));
        assert!(!bridge_exists("../lo"));
        assert!(!bridge_exists("lade-no-such-bridge"));
    }
}
