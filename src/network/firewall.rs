//! lade's iptables rules, made and removed in `iptables-restore --noflush` transactions
//! (iptables-nft on Debian: Docker, on the same host, sets the FORWARD policy to DROP in
//! iptables, which a table of our own could not get past).
//!
//! Three kinds of rules, each owned by what lives as long as they must:
//! - the host's: chains `LADE-FORWARD` (filter), `LADE-POSTROUTING` and `LADE-DNAT`
//!   (nat) and the jumps into them from FORWARD, POSTROUTING, and PREROUTING and OUTPUT
//!   for local destinations; made once, shared by every store, and left in place;
//! - a network's: forwarding out of its subnet and back in (replies, and published
//!   ports' DNATed connections), masquerading out of it (not for an internal network),
//!   masquerading of forwarded 127.0.0.1 and hairpin connections, and the loopback
//!   guard (`localnet`); made when a container first needs the network and removed
//!   with it, each marked with a comment naming its bridge;
//! - a container's: one DNAT rule per published host port, made at its start and
//!   removed at its end, marked with its short id.
//!
//! Whether a network's rules are all there is seen in one `iptables-save` (as cheap as
//! one `iptables -C` here), so that a flushed firewall is mended at the next run.
//! Callers hold the host's network lock.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::{localnet, NetworkDefinition, PortMapping};

/// Why the firewall could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error("cannot run {}: {source} (apt-get install iptables)", tool.display())]
    CannotRun {
        tool: PathBuf,
        source: std::io::Error,
    },
    #[error("{} failed ({status}): {said}", tool.display())]
    Failed {
        tool: PathBuf,
        status: std::process::ExitStatus,
        said: String,
    },
}

pub type Result<T, E = FirewallError> = std::result::Result<T, E>;

const FORWARD: &str = "LADE-FORWARD";
const POSTROUTING: &str = "LADE-POSTROUTING";
const DNAT: &str = "LADE-DNAT";

/// One rule as `iptables-save` prints it: its table and its `-A CHAIN ...` line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    table: &'static str,
    line: String,
    /// Made first in its chain (`-I CHAIN 1`) rather than appended.
    first: bool,
}

impl Rule {
    fn append(table: &'static str, line: String) -> Rule {
        Rule {
            table,
            line,
            first: false,
        }
    }

    /// The restore line that makes it.
    fn make(&self) -> String {
        match (self.first, self.line.strip_prefix("-A ")) {
            (true, Some(rest)) => match rest.split_once(' ') {
                Some((chain, spec)) => format!("-I {chain} 1 {spec}"),
                None => self.line.clone(),
            },
            _ => self.line.clone(),
        }
    }
}

/// The restore line that removes a saved `-A` line.
fn unmake(line: &str) -> String {
    match line.strip_prefix("-A ") {
        Some(rest) => format!("-D {rest}"),
        None => line.to_string(),
    }
}

/// The host's chains, by table.
const HOST_CHAINS: [(&str, &str); 3] = [("filter", FORWARD), ("nat", POSTROUTING), ("nat", DNAT)];

/// The jumps into the host's chains.
fn host_jumps() -> Vec<Rule> {
    vec![
        Rule {
            table: "filter",
            line: format!("-A FORWARD -j {FORWARD}"),
            // Before the host's own rules, which may drop what is not theirs.
            first: true,
        },
        Rule::append("nat", format!("-A POSTROUTING -j {POSTROUTING}")),
        Rule::append(
            "nat",
            format!("-A PREROUTING -m addrtype --dst-type LOCAL -j {DNAT}"),
        ),
        Rule::append(
            "nat",
            format!("-A OUTPUT -m addrtype --dst-type LOCAL -j {DNAT}"),
        ),
    ]
}

/// The comment that marks a network's rules.
fn network_mark(bridge: &str) -> String {
    format!("--comment \"lade network {bridge}\"")
}

/// A network's rules.
fn network_rules(network: &NetworkDefinition) -> Vec<Rule> {
    let bridge = &network.bridge;
    let subnet = network.subnet;
    let mark = format!("-m comment {}", network_mark(bridge));
    let mut rules = vec![Rule {
        table: "filter",
        line: localnet::rule(bridge),
        // Before the host's own ACCEPT rules, which would let the packets past it.
        first: true,
    }];
    if network.internal {
        // Only between its own containers (seen here when br_netfilter is loaded).
        rules.push(Rule::append(
            "filter",
            format!("-A {FORWARD} -i {bridge} -o {bridge} {mark} -j ACCEPT"),
        ));
        return rules;
    }
    rules.extend([
        // Between its own containers (seen here when br_netfilter is loaded), then, as
        // Docker keeps bridge networks apart, no new connection to another lade bridge
        // (replies, and published ports reached through the host, still pass).
        Rule::append(
            "filter",
            format!("-A {FORWARD} -i {bridge} -o {bridge} {mark} -j ACCEPT"),
        ),
        Rule::append(
            "filter",
            format!(
                "-A {FORWARD} -i {bridge} -o lade+ -m conntrack --ctstate NEW -m conntrack ! --ctstate DNAT {mark} -j DROP"
            ),
        ),
        Rule::append(
            "filter",
            format!(
                "-A {FORWARD} -d {subnet} -o {bridge} -m conntrack --ctstate RELATED,ESTABLISHED,DNAT {mark} -j ACCEPT"
            ),
        ),
        Rule::append(
            "filter",
            format!("-A {FORWARD} -s {subnet} -i {bridge} {mark} -j ACCEPT"),
        ),
        Rule::append(
            "nat",
            format!("-A {POSTROUTING} -s {subnet} ! -d {subnet} {mark} -j MASQUERADE"),
        ),
        // A published port reached from the host's 127.0.0.1: the container could not
        // answer that address.
        Rule::append(
            "nat",
            format!("-A {POSTROUTING} -s 127.0.0.0/8 -o {bridge} {mark} -j MASQUERADE"),
        ),
        // A published port reached from a container of the same bridge (hairpin): its
        // answer must come back through the host, which undoes the DNAT.
        Rule::append(
            "nat",
            format!(
                "-A {POSTROUTING} -s {subnet} -o {bridge} -m conntrack --ctstate DNAT {mark} -j MASQUERADE"
            ),
        ),
    ]);
    rules
}

/// Whether a saved line is one of the network's rules.
fn is_networks(line: &str, bridge: &str) -> bool {
    line.contains(&network_mark(bridge)) || localnet::is_guard_of(line, bridge)
}

/// The comment that marks a container's rules.
fn container_mark(container_id: &str) -> String {
    let short = container_id.get(..12).unwrap_or(container_id);
    format!("--comment \"lade container {short}\"")
}

/// A container's DNAT rules: one per host port, to its address `ip`.
fn port_rules(container_id: &str, ip: Ipv4Addr, ports: &[PortMapping]) -> Vec<Rule> {
    let mark = container_mark(container_id);
    let mut rules = Vec::new();
    for mapping in ports {
        let destination = if mapping.host_ip.is_empty() {
            String::new()
        } else {
            format!("-d {}/32 ", mapping.host_ip)
        };
        let protocol = &mapping.protocol;
        for offset in 0..mapping.range {
            rules.push(Rule::append(
                "nat",
                format!(
                    "-A {DNAT} {destination}-p {protocol} -m {protocol} --dport {} -m comment {mark} -j DNAT --to-destination {ip}:{}",
                    mapping.host_port + offset,
                    mapping.container_port + offset
                ),
            ));
        }
    }
    rules
}

/// The firewall as `iptables-save` prints it: each table's chains and rules.
#[derive(Debug, Default)]
struct Saved {
    /// (table, line) for each `:CHAIN` and `-A` line.
    lines: Vec<(String, String)>,
}

impl Saved {
    fn parse(text: &str) -> Saved {
        let mut table = String::new();
        let mut lines = Vec::new();
        for line in text.lines() {
            if let Some(name) = line.strip_prefix('*') {
                table = name.trim().to_string();
            } else if line.starts_with(':') || line.starts_with("-A ") {
                // iptables-save escapes a quote inside a quoted comment, which
                // iptables-restore takes unescaped.
                let line = line.trim_end().replace("\\'", "'");
                lines.push((table.clone(), line));
            }
        }
        Saved { lines }
    }

    fn read() -> Result<Saved> {
        let tool = sbin("iptables-save");
        let output = Command::new(&tool)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| FirewallError::CannotRun {
                tool: tool.clone(),
                source,
            })?;
        if !output.status.success() {
            return Err(FirewallError::Failed {
                tool,
                status: output.status,
                said: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        Ok(Saved::parse(&String::from_utf8_lossy(&output.stdout)))
    }

    fn has_chain(&self, table: &str, chain: &str) -> bool {
        let declared = format!(":{chain} ");
        self.lines
            .iter()
            .any(|(t, l)| t == table && l.starts_with(&declared))
    }

    fn has(&self, rule: &Rule) -> bool {
        self.lines
            .iter()
            .any(|(t, l)| t == rule.table && *l == rule.line)
    }

    /// The saved `-A` lines `owned` takes, by table.
    fn rules_where(&self, owned: impl Fn(&str) -> bool) -> Vec<(&str, &str)> {
        self.lines
            .iter()
            .filter(|(_, l)| l.starts_with("-A ") && owned(l))
            .map(|(t, l)| (t.as_str(), l.as_str()))
            .collect()
    }
}

/// An `iptables-restore` transaction, table by table.
#[derive(Debug, Default)]
struct Transaction {
    filter: Vec<String>,
    nat: Vec<String>,
}

impl Transaction {
    fn push(&mut self, table: &str, line: String) {
        match table {
            "filter" => self.filter.push(line),
            _ => self.nat.push(line),
        }
    }

    fn is_empty(&self) -> bool {
        self.filter.is_empty() && self.nat.is_empty()
    }

    fn text(&self) -> String {
        let mut text = String::new();
        for (table, lines) in [("filter", &self.filter), ("nat", &self.nat)] {
            if lines.is_empty() {
                continue;
            }
            text.push_str(&format!("*{table}\n"));
            for line in lines {
                text.push_str(line);
                text.push('\n');
            }
            text.push_str("COMMIT\n");
        }
        text
    }

    fn commit(&self) -> Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        let tool = sbin("iptables-restore");
        let cannot_run = |source| FirewallError::CannotRun {
            tool: tool.clone(),
            source,
        };
        let mut child = Command::new(&tool)
            .args(["--noflush", "-w"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(cannot_run)?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(self.text().as_bytes())
                .map_err(cannot_run)?;
        }
        let output = child.wait_with_output().map_err(cannot_run)?;
        if output.status.success() {
            return Ok(());
        }
        Err(FirewallError::Failed {
            tool,
            status: output.status,
            said: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }
}

/// What makes the host's chains and jumps and `network`'s rules complete in `saved`:
/// the missing host parts, and the network's rules made anew (those left removed first).
fn mend(saved: &Saved, network: &NetworkDefinition) -> Transaction {
    let mut transaction = Transaction::default();
    let rules = network_rules(network);
    let host_missing: Vec<Rule> = host_jumps().into_iter().filter(|j| !saved.has(j)).collect();
    let chains_missing: Vec<(&str, &str)> = HOST_CHAINS
        .into_iter()
        .filter(|(table, chain)| !saved.has_chain(table, chain))
        .collect();
    if host_missing.is_empty() && chains_missing.is_empty() && rules.iter().all(|r| saved.has(r)) {
        return transaction;
    }
    // A chain is declared only when missing: declaring one that exists flushes it,
    // with every other network's rules in it.
    for (table, chain) in chains_missing {
        transaction.push(table, format!(":{chain} - [0:0]"));
    }
    for jump in host_missing {
        transaction.push(jump.table, jump.make());
    }
    for (table, line) in saved.rules_where(|l| is_networks(l, &network.bridge)) {
        transaction.push(table, unmake(line));
    }
    for rule in &rules {
        transaction.push(rule.table, rule.make());
    }
    transaction
}

/// Makes sure the host's chains and `network`'s rules are all there (made for a new
/// network, mended after a flush).
pub fn ensure_network(network: &NetworkDefinition) -> Result<()> {
    mend(&Saved::read()?, network).commit()
}

/// Removes `network`'s rules (the host's chains stay, for other networks).
pub fn remove_network(bridge: &str) -> Result<()> {
    let saved = Saved::read()?;
    let mut transaction = Transaction::default();
    for (table, line) in saved.rules_where(|l| is_networks(l, bridge)) {
        transaction.push(table, unmake(line));
    }
    transaction.commit()
}

/// Makes a container's published ports' rules.
pub fn add_ports(container_id: &str, ip: Ipv4Addr, ports: &[PortMapping]) -> Result<()> {
    let mut transaction = Transaction::default();
    for rule in port_rules(container_id, ip, ports) {
        transaction.push(rule.table, rule.make());
    }
    transaction.commit()
}

/// Removes a container's published ports' rules: those it was given, or, when some are
/// gone (a flushed firewall), whatever of its rules is left.
pub fn remove_ports(container_id: &str, ip: Ipv4Addr, ports: &[PortMapping]) -> Result<()> {
    let mut transaction = Transaction::default();
    for rule in port_rules(container_id, ip, ports) {
        transaction.push(rule.table, unmake(&rule.line));
    }
    if transaction.commit().is_ok() {
        return Ok(());
    }
    let mark = container_mark(container_id);
    let saved = Saved::read()?;
    let mut transaction = Transaction::default();
    for (table, line) in saved.rules_where(|l| l.contains(&mark)) {
        transaction.push(table, unmake(line));
    }
    transaction.commit()
}

/// An iptables tool: the one on `$PATH`, else where Debian puts it (a root shell without
/// the sbin directories on its `$PATH` still has it there).
fn sbin(name: &str) -> PathBuf {
    let path_dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    path_dirs
        .into_iter()
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn network(internal: bool) -> NetworkDefinition {
        NetworkDefinition {
            name: "front".into(),
            id: "ab".repeat(32),
            bridge: "lade4".into(),
            subnet: "10.89.4.0/24".parse().unwrap(),
            gateway: Ipv4Addr::new(10, 89, 4, 1),
            internal,
            dns_enabled: true,
            labels: Default::default(),
            created: String::new(),
        }
    }

    #[test]
    fn a_networks_rules_are_forwarding_masquerade_and_the_guard() {
        let lines: Vec<String> = network_rules(&network(false))
            .iter()
            .map(|r| format!("{} {}", r.table, r.make()))
            .collect();
        let mark = "-m comment --comment \"lade network lade4\"";
        assert_eq!(
            lines[1..],
            [
                format!("filter -A LADE-FORWARD -i lade4 -o lade4 {mark} -j ACCEPT"),
                format!("filter -A LADE-FORWARD -i lade4 -o lade+ -m conntrack --ctstate NEW -m conntrack ! --ctstate DNAT {mark} -j DROP"),
                format!("filter -A LADE-FORWARD -d 10.89.4.0/24 -o lade4 -m conntrack --ctstate RELATED,ESTABLISHED,DNAT {mark} -j ACCEPT"),
                format!("filter -A LADE-FORWARD -s 10.89.4.0/24 -i lade4 {mark} -j ACCEPT"),
                format!("nat -A LADE-POSTROUTING -s 10.89.4.0/24 ! -d 10.89.4.0/24 {mark} -j MASQUERADE"),
                format!("nat -A LADE-POSTROUTING -s 127.0.0.0/8 -o lade4 {mark} -j MASQUERADE"),
                format!("nat -A LADE-POSTROUTING -s 10.89.4.0/24 -o lade4 -m conntrack --ctstate DNAT {mark} -j MASQUERADE"),
            ]
        );
        // The guard goes first in INPUT.
        assert!(lines[0].starts_with("filter -I INPUT 1 -d 127.0.0.0/8 -i lade4 "));
        // An internal network: no way out, no masquerade.
        let internal: Vec<String> = network_rules(&network(true))
            .iter()
            .map(|r| r.make())
            .collect();
        assert_eq!(internal.len(), 2);
        assert!(internal.iter().all(|l| !l.contains("MASQUERADE")));
    }

    #[test]
    fn ports_are_one_dnat_rule_per_host_port() {
        let mut mapping =
            crate::network::parse_publish("127.0.0.1:9000-9001:7000-7001/udp").unwrap();
        let mut tcp = crate::network::parse_publish("8080:80").unwrap();
        tcp.host_ip.clear();
        mapping.protocol = "udp".into();
        let rules: Vec<String> = port_rules(
            &"c".repeat(64),
            Ipv4Addr::new(10, 89, 4, 2),
            &[mapping, tcp],
        )
        .iter()
        .map(|r| r.make())
        .collect();
        let mark = "-m comment --comment \"lade container cccccccccccc\"";
        assert_eq!(
            rules,
            [
                format!("-A LADE-DNAT -d 127.0.0.1/32 -p udp -m udp --dport 9000 {mark} -j DNAT --to-destination 10.89.4.2:7000"),
                format!("-A LADE-DNAT -d 127.0.0.1/32 -p udp -m udp --dport 9001 {mark} -j DNAT --to-destination 10.89.4.2:7001"),
                format!("-A LADE-DNAT -p tcp -m tcp --dport 8080 {mark} -j DNAT --to-destination 10.89.4.2:80"),
            ]
        );
        assert_eq!(
            unmake(&rules[2]),
            format!("-D LADE-DNAT -p tcp -m tcp --dport 8080 {mark} -j DNAT --to-destination 10.89.4.2:80")
        );
    }

    #[test]
    fn mending_makes_only_what_is_missing_and_never_declares_an_existing_chain() {
        let net = network(false);
        // Nothing there: chains, jumps and rules are made.
        let made = mend(&Saved::default(), &net).text();
        assert!(made.contains(":LADE-FORWARD - [0:0]"), "{made}");
        assert!(made.contains("-I FORWARD 1 -j LADE-FORWARD"), "{made}");
        assert!(made.contains("-A PREROUTING -m addrtype --dst-type LOCAL -j LADE-DNAT"));
        // Everything there: nothing to do.
        let mut saved = String::from("*filter\n:INPUT ACCEPT [0:0]\n:LADE-FORWARD - [0:0]\n");
        let rules = network_rules(&net);
        for rule in host_jumps()
            .iter()
            .chain(&rules)
            .filter(|r| r.table == "filter")
        {
            saved.push_str(&format!("{}\n", rule.line));
        }
        saved.push_str("COMMIT\n*nat\n:LADE-POSTROUTING - [0:0]\n:LADE-DNAT - [0:0]\n");
        for rule in host_jumps()
            .iter()
            .chain(&rules)
            .filter(|r| r.table == "nat")
        {
            saved.push_str(&format!("{}\n", rule.line));
        }
        saved.push_str("COMMIT\n");
        assert!(mend(&Saved::parse(&saved), &net).is_empty());
        // As iptables-save prints the guard's comment.
        let escaped = saved.replace("host's", "host\\'s");
        assert_ne!(escaped, saved);
        assert!(mend(&Saved::parse(&escaped), &net).is_empty());
        // One rule flushed: the network's rules left are removed and all made again;
        // the chains that exist are not declared.
        let flushed = saved.replace(&format!("{}\n", rules[1].line), "");
        let mended = mend(&Saved::parse(&flushed), &net).text();
        assert!(!mended.contains(":LADE-"), "{mended}");
        assert!(mended.contains(&unmake(&rules[2].line)), "{mended}");
        assert!(mended.contains(&rules[1].line), "{mended}");
        assert!(
            mended.contains("-D INPUT -d 127.0.0.0/8 -i lade4"),
            "{mended}"
        );
        assert!(
            mended.contains("-I INPUT 1 -d 127.0.0.0/8 -i lade4"),
            "{mended}"
        );
    }
}
