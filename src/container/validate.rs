//! The names and host values a request carries, checked before anything is made.
//!
//! They do not stay in lade: a container's name and aliases become lines of
//! aardvark-dns's records (names separated by commas, fields by spaces), its hostname,
//! names and `--add-host` entries lines of `/etc/hosts`, volume names file names. A
//! newline, a space or a comma in one writes records of the caller's choosing
//! (a name that resolves to another address for every container on the network) or
//! lines the other program cannot read. So each value is held to Docker's rules
//! (names) or to the DNS's (host names) here, in one place, for every command that
//! takes one. (A network's name is the network module's to check: it makes networks.)

use std::net::{IpAddr, Ipv4Addr};

/// A boolean as Docker reads `--flag=VALUE` and the `--mount`-style options: Go's
/// `strconv.ParseBool`.
pub fn go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// What is wrong with a value: it names the flag and shows the value (control
/// characters escaped, so the message itself stays one line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidValue {
    /// Docker's own message.
    #[error("Invalid container name ({}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", shown(.0))]
    ContainerName(String),
    #[error("invalid {what} {}: {reason}", quoted(.value))]
    Value {
        what: &'static str,
        value: String,
        reason: String,
    },
}

pub type Result<T, E = InvalidValue> = std::result::Result<T, E>;

fn shown(value: &str) -> String {
    value.chars().flat_map(char::escape_default).collect()
}

fn quoted(value: &str) -> String {
    format!("{value:?}")
}

pub(crate) fn invalid(what: &'static str, value: &str, reason: impl Into<String>) -> InvalidValue {
    InvalidValue::Value {
        what,
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, with at least `min` characters.
fn docker_name(name: &str, min: usize) -> bool {
    let mut chars = name.chars();
    name.len() >= min
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// A container name (`--name`, `rename`): Docker's `/?[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
/// Returns it without the leading `/` Docker allows.
pub fn container_name(name: &str) -> Result<&str> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    if docker_name(bare, 2) {
        Ok(bare)
    } else {
        Err(InvalidValue::ContainerName(name.to_string()))
    }
}

/// A volume name: Docker's `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, short enough to be a
/// directory's name.
pub fn volume_name(name: &str) -> Result<()> {
    if !docker_name(name, 2) {
        return Err(invalid(
            "volume name",
            name,
            "only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, at least two characters",
        ));
    }
    if name.len() > 255 {
        return Err(invalid("volume name", name, "at most 255 characters"));
    }
    Ok(())
}

/// A DNS name (`--network-alias`, `--hostname`, the name of `--add-host`): labels of
/// letters, digits, `-` (not first or last) and `_`, 1 to 63 characters each, separated
/// by dots, 253 in all. `_` is not in RFC 1123 host names, but Docker users name
/// services `my_db` and resolve them: it is kept, as it cannot break a record.
pub fn dns_name(what: &'static str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(invalid(what, name, "a host name cannot be empty"));
    }
    if name.len() > 253 {
        return Err(invalid(
            what,
            name,
            "a host name has at most 253 characters",
        ));
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(invalid(
                what,
                name,
                "each dot-separated part of a host name has 1 to 63 characters",
            ));
        }
        if !label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(invalid(
                what,
                name,
                "a host name has only letters, digits, `-`, `_` and `.`",
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(invalid(
                what,
                name,
                "a part of a host name cannot start or end with `-`",
            ));
        }
    }
    Ok(())
}

/// `--hostname`: a DNS name the kernel takes (at most 64 characters).
pub fn hostname(name: &str) -> Result<()> {
    dns_name("--hostname", name)?;
    if name.len() > 64 {
        return Err(invalid(
            "--hostname",
            name,
            "a container's hostname has at most 64 characters",
        ));
    }
    Ok(())
}

/// `--add-host NAME:IP` (or `NAME=IP`): the name and the address. An IPv6 address may
/// be written in brackets.
pub fn extra_host(entry: &str) -> Result<(String, IpAddr)> {
    let (host, address) = entry
        .split_once('=')
        .or_else(|| entry.split_once(':'))
        .ok_or_else(|| invalid("--add-host", entry, "expected NAME:IP"))?;
    dns_name("--add-host", host)?;
    if address == "host-gateway" {
        return Err(invalid(
            "--add-host",
            entry,
            "lade does not support host-gateway: give the address",
        ));
    }
    let bare = address
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(address);
    let ip = bare.parse::<IpAddr>().map_err(|_| {
        invalid(
            "--add-host",
            entry,
            format!("{} is not an IP address", quoted(address)),
        )
    })?;
    Ok((host.to_string(), ip))
}

/// A DNS server (`--dns`): an IPv4 address.
pub fn dns_server(text: &str) -> Result<Ipv4Addr> {
    text.parse()
        .map_err(|_| invalid("--dns", text, "expected an IPv4 address"))
}

/// `--label KEY=VALUE`: the key and the value. The key is not empty and has no control
/// characters (the value may have them: it is kept as JSON).
pub fn label(text: &str) -> Result<(String, String)> {
    let (key, value) = text.split_once('=').unwrap_or((text, ""));
    if key.is_empty() {
        return Err(invalid("--label", text, "expected KEY=VALUE"));
    }
    label_key(key).map_err(|_| {
        invalid(
            "--label",
            text,
            "a label's key cannot have control characters (newlines, tabs)",
        )
    })?;
    Ok((key.to_string(), value.to_string()))
}

/// A label's key: not empty, no control characters.
pub fn label_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(invalid("--label", key, "a label's key cannot be empty"));
    }
    if key.chars().any(char::is_control) {
        return Err(invalid(
            "--label",
            key,
            "a label's key cannot have control characters (newlines, tabs)",
        ));
    }
    Ok(())
}

/// Labels as a map; a later key wins, as Docker's.
pub fn labels(texts: &[String]) -> Result<std::collections::BTreeMap<String, String>> {
    texts.iter().map(|t| label(t)).collect()
}

/// `--mac-address`: an Ethernet (EUI-48) address in one of the forms Go's
/// `net.ParseMAC` reads (`92:d0:c6:0a:29:33`, `92-d0-c6-0a-29-33`, `92d0.c60a.2933`),
/// as the lower-case, colon-separated form.
pub fn mac_address(text: &str) -> Result<String> {
    let bad = || {
        invalid(
            "--mac-address",
            text,
            "expected a MAC address such as 92:d0:c6:0a:29:33",
        )
    };
    let trimmed = text.trim();
    let hex_pairs = |parts: Vec<&str>, width: usize| -> Option<Vec<u8>> {
        let mut bytes = Vec::new();
        for part in parts {
            if part.len() != width || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            for pair in part.as_bytes().chunks(2) {
                bytes.push(u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?);
            }
        }
        Some(bytes)
    };
    let bytes = match (
        trimmed.len(),
        trimmed.as_bytes().get(2),
        trimmed.as_bytes().get(4),
    ) {
        (17, Some(b':'), _) => hex_pairs(trimmed.split(':').collect(), 2),
        (17, Some(b'-'), _) => hex_pairs(trimmed.split('-').collect(), 2),
        (14, _, Some(b'.')) => hex_pairs(trimmed.split('.').collect(), 4),
        _ => None,
    }
    .filter(|bytes| bytes.len() == 6)
    .ok_or_else(bad)?;
    Ok(bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_names_follow_docker() {
        for good in ["ab", "web-1", "a_b.c", "0x", "/web"] {
            assert!(container_name(good).is_ok(), "{good}");
        }
        assert_eq!(container_name("/web"), Ok("web"));
        for bad in [
            "",
            "a",
            "/",
            "x/bad",
            "-lead",
            "_lead",
            ".lead",
            "a b",
            "a,b",
            "a\ngithub.com 10.0.0.1",
            "a\tb",
            "é1",
            "a:b",
        ] {
            assert!(container_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            container_name("x/bad").unwrap_err().to_string(),
            "Invalid container name (x/bad), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        );
        assert_eq!(
            container_name("a\nb").unwrap_err().to_string(),
            "Invalid container name (a\\nb), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        );
    }

    #[test]
    fn volume_names() {
        for bad in ["", "a/b", "../x", "a\nb", "-n", "a b"] {
            assert!(volume_name(bad).is_err(), "{bad:?}");
        }
        assert!(volume_name("v").is_err());
        assert!(volume_name("data").is_ok());
        assert!(volume_name(&"v".repeat(256)).is_err());
    }

    #[test]
    fn dns_names() {
        for good in ["svc", "db-1", "my_db", "a.b.c", "x1", &"a".repeat(63)] {
            assert!(dns_name("--network-alias", good).is_ok(), "{good}");
        }
        let long = vec!["a".repeat(63); 4].join(".");
        assert_eq!(long.len(), 255);
        for bad in [
            "",
            ".",
            "a..b",
            "a.",
            "-a",
            "a-",
            "a.-b",
            "a b",
            "a,b",
            "a\nb",
            "a\tb",
            &"a".repeat(64),
            &long,
        ] {
            assert!(dns_name("--network-alias", bad).is_err(), "{bad:?}");
        }
        let message = dns_name("--network-alias", "a\nb").unwrap_err().to_string();
        assert!(
            message.starts_with("invalid --network-alias \"a\\nb\": ") && !message.contains('\n'),
            "{message}"
        );
        assert!(hostname(&"a".repeat(63)).is_ok());
        let long_hostname = format!("{}.{}", "a".repeat(40), "b".repeat(30));
        assert!(hostname(&long_hostname).is_err());
    }

    #[test]
    fn extra_hosts() {
        assert_eq!(
            extra_host("db:10.1.2.3").unwrap(),
            ("db".into(), "10.1.2.3".parse().unwrap())
        );
        assert_eq!(
            extra_host("db=10.1.2.3").unwrap(),
            ("db".into(), "10.1.2.3".parse().unwrap())
        );
        assert_eq!(
            extra_host("v6:::1").unwrap().1,
            "::1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            extra_host("v6:[fe80::1]").unwrap().1,
            "fe80::1".parse::<IpAddr>().unwrap()
        );
        for bad in [
            "db",
            ":10.1.2.3",
            "db:",
            "db:name",
            "github.com\n10.0.0.1:10.0.0.2",
            "a b:10.0.0.2",
            "db:host-gateway",
            "db:10.0.0.1\n",
        ] {
            assert!(extra_host(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn dns_servers_and_labels() {
        assert!(dns_server("9.9.9.9").is_ok());
        assert!(dns_server("9.9.9.9\nnameserver 1.2.3.4").is_err());
        assert!(dns_server("resolver").is_err());
        assert_eq!(label("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert_eq!(label("flag").unwrap(), ("flag".into(), String::new()));
        assert_eq!(label("k=line\nline").unwrap().1, "line\nline");
        for bad in ["", "=v", "a\nb=c", "a\u{7f}=c"] {
            assert!(label(bad).is_err(), "{bad:?}");
        }
        let map = labels(&["a=1".into(), "a=2".into()]).unwrap();
        assert_eq!(map["a"], "2");
    }

    #[test]
    fn mac_addresses_are_go_s_forms_of_48_bits() {
        assert_eq!(
            mac_address("92:D0:c6:0a:29:33").unwrap(),
            "92:d0:c6:0a:29:33"
        );
        assert_eq!(
            mac_address("92-d0-c6-0a-29-33").unwrap(),
            "92:d0:c6:0a:29:33"
        );
        assert_eq!(mac_address("92d0.c60a.2933").unwrap(), "92:d0:c6:0a:29:33");
        for bad in [
            "",
            "92:d0:c6:0a:29",
            "92:d0:c6:0a:29:3g",
            "92:d0-c6:0a:29:33",
            "+2:d0:c6:0a:29:33",
        ] {
            assert!(mac_address(bad).is_err(), "{bad}");
        }
    }
}
