//! The guard against CVE-2020-8558. A lade bridge has `route_localnet` on, so that ports
//! published on 127.0.0.1 can be forwarded to containers; the same switch lets a
//! container with CAP_NET_RAW hand its gateway a packet addressed to 127.0.0.0/8 and
//! reach the host's loopback-only services. As Kubernetes does, a rule in the filter
//! table's INPUT chain drops packets to 127.0.0.0/8 that arrive on a lade bridge unless
//! conntrack knows them as part of a connection the host made (the replies of a
//! forwarded 127.0.0.1 port) or as DNATed.
//!
//! One rule per bridge, first in INPUT, made with the network's other rules (see
//! `firewall`) before the bridge exists and removed after it is gone.

/// Marks the guard in `iptables-save`, and says why it is there.
const COMMENT: &str = "lade: containers may not reach the host's 127.0.0.0/8 (CVE-2020-8558)";

/// The guard of `bridge`, as `iptables-save` prints it (an `-A INPUT` line of the filter
/// table).
pub fn rule(bridge: &str) -> String {
    format!(
        "-A INPUT -d 127.0.0.0/8 -i {bridge} -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT \
         -m comment --comment \"{COMMENT}\" -j DROP"
    )
}

/// Whether `line` of `iptables-save` is a guard of `bridge` (whatever iptables made of
/// its text).
pub fn is_guard_of(line: &str, bridge: &str) -> bool {
    line.starts_with("-A INPUT ")
        && line.contains(COMMENT)
        && line
            .split_whitespace()
            .collect::<Vec<_>>()
            .windows(2)
            .any(|w| w == ["-i", bridge])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_drops_only_new_packets_to_loopback_from_the_bridge() {
        let rule = rule("lade3");
        assert!(
            rule.starts_with("-A INPUT -d 127.0.0.0/8 -i lade3 "),
            "{rule}"
        );
        // Replies of a forwarded 127.0.0.1 port come back on the bridge to 127.0.0.1:
        // conntrack knows them, and they pass.
        assert!(
            rule.contains("-m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT"),
            "{rule}"
        );
        assert!(rule.ends_with("-j DROP"), "{rule}");
        assert!(is_guard_of(&rule, "lade3"));
        assert!(!is_guard_of(&rule, "lade31"));
        assert!(!is_guard_of(
            &rule.replace("-A INPUT", "-A FORWARD"),
            "lade3"
        ));
    }
}
