//! Container networks through the real CLI, lade's bridge driver and aardvark-dns:
//! published ports answering on the host's address and on 127.0.0.1 (TCP and UDP), `-P`,
//! a taken port refused, user networks resolving names and aliases (and only their own),
//! an internal network without a route out, the host's links, firewall rules and
//! listening ports as they were with the networks in place after `rm -f` and after a
//! monitor killed with -9, and as they were before the networks after `network rm` and
//! `system reset`, and a network's rules made again after a firewall flush. Names
//! resolve on a host where `/run/systemd/system` exists without systemd, `run` warns
//! when they cannot, and a container cannot reach the host's 127.0.0.1 services through
//! its gateway (CVE-2020-8558).
//!
//! The tests here change the host's network, so they run one at a time.

use crate::common;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use common::{wait_until, Context, Lade};

static SERIAL: Mutex<()> = Mutex::new(());

pub(crate) fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the networks need (iptables and aardvark-dns) and what the tests look with.
pub(crate) fn require_network_tools() {
    assert!(
        Path::new("/usr/lib/podman/aardvark-dns").is_file(),
        "aardvark-dns is not installed: apt-get install aardvark-dns (scripts/test.sh does)"
    );
    common::require_tool("iptables-save");
    common::require_tool("iptables-restore");
    common::require_tool("ss");
}

/// A container on `network` reaches each of `names` by name.
fn pings_on(lade: &Lade, network: &str, names: &[&str]) {
    let script = names
        .iter()
        .map(|name| format!("ping -c1 -W5 {name}"))
        .collect::<Vec<_>>()
        .join(" && ");
    lade.ok(&[
        "run",
        "--rm",
        "--network",
        network,
        "busybox",
        "sh",
        "-c",
        &script,
    ]);
}

fn http_get(address: &str) -> Option<String> {
    let mut stream =
        TcpStream::connect_timeout(&address.parse().ok()?, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

fn udp_ask(address: &str, message: &str) -> Option<String> {
    let socket = UdpSocket::bind("127.0.0.1:0").ok()?;
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .ok()?;
    socket.send_to(message.as_bytes(), address).ok()?;
    let mut buffer = [0u8; 256];
    let (n, _) = socket.recv_from(&mut buffer).ok()?;
    Some(String::from_utf8_lossy(&buffer[..n]).into_owned())
}

/// The host's first global IPv4 address.
fn host_address() -> String {
    let out = common::run("ip", &["-4", "-o", "addr", "show", "scope", "global"]);
    out.split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .expect("the host has a global IPv4 address")
        .to_string()
}

/// What the host's network looks like: its links, its firewall rules (without
/// counters) and its listening sockets.
fn host_state() -> String {
    let links = common::run("ip", &["-o", "link", "show"]);
    let mut links: Vec<String> = links
        .lines()
        .filter_map(|l| {
            let name = l.split(':').nth(1)?.trim();
            let mut words = l.split_whitespace();
            Some(match words.find(|w| *w == "master").and(words.next()) {
                Some(bridge) => format!("{name} master {bridge}"),
                None => name.to_string(),
            })
        })
        .collect();
    links.sort();
    let rules = common::run("iptables-save", &[]);
    let mut rules: Vec<String> = rules
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            if l.starts_with(':') {
                l.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
            } else {
                l.to_string()
            }
        })
        .collect();
    rules.sort();
    // Only what root's lade could have left listening: other tests of the suite run
    // servers meanwhile (registries, pages for containers to fetch, rootless lade's
    // forwarders and pasta, as another user), which come and go as they please.
    let sockets = common::run("ss", &["-lntupeH"]);
    let lades = |line: &str| {
        let not_root = line.split_whitespace().any(|f| f.starts_with("uid:"));
        let named = line
            .split("((\"")
            .skip(1)
            .chain(line.split("),(\"").skip(1));
        let names: Vec<&str> = named.filter_map(|rest| rest.split('"').next()).collect();
        !not_root
            && (names.is_empty() || names.iter().any(|n| *n == "lade" || *n == "aardvark-dns"))
    };
    let mut sockets: Vec<String> = sockets
        .lines()
        .filter(|l| lades(l))
        .map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            format!("{} {}", fields[0], fields.get(4).unwrap_or(&""))
        })
        .collect();
    sockets.sort();
    format!(
        "links:\n{}\nrules:\n{}\nsockets:\n{}\n",
        links.join("\n"),
        rules.join("\n"),
        sockets.join("\n")
    )
}

fn web_image(lade: &Lade) {
    let context = Context::new(
        "FROM busybox\nCOPY udp-echo /udp-echo\n\
         RUN mkdir /www && echo page-from-lade > /www/index.html\nEXPOSE 80 7/udp\n",
    );
    common::compile_fixture("udp-echo", &context.path().join("udp-echo"));
    lade.build(context.path(), &["-t", "web:1"]);
}

/// The web image's servers; each makes its file in `/shared` once its port is bound
/// (busybox httpd binds before it goes to the background), the test's handshake.
const SERVE: &str = "/udp-echo 7 /shared/udp-ready & httpd -p 80 -h /www && touch /shared/http-ready; exec sleep 3600";

/// Waits (bounded) for the servers of a container started with [`SERVE`].
fn wait_for_servers(shared: &Path) {
    wait_until("the servers to bind", || {
        shared.join("udp-ready").exists() && shared.join("http-ready").exists()
    });
}

#[test]
fn published_ports_answer_on_the_host_and_on_loopback_and_a_taken_port_is_refused() {
    require_network_tools();
    let _serial = serial();
    let lade = Lade::new();
    lade.busybox();
    web_image(&lade);
    let shared = tempfile::tempdir().unwrap();
    let volume = format!("{}:/shared", shared.path().display());
    lade.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-v",
        &volume,
        "-p",
        "18080:80",
        "-p",
        "18081:7/udp",
        "web:1",
        "sh",
        "-c",
        SERVE,
    ]);
    wait_for_servers(shared.path());
    let on_loopback = http_get("127.0.0.1:18080").unwrap_or_default();
    assert!(on_loopback.contains("page-from-lade"), "{on_loopback}");
    let on_host = http_get(&format!("{}:18080", host_address())).unwrap_or_default();
    assert!(on_host.contains("page-from-lade"), "{on_host}");
    let ports = lade.ok(&["port", "web"]);
    assert!(
        ports.lines().any(|l| l == "80/tcp -> 0.0.0.0:18080"),
        "{ports}"
    );
    assert!(
        ports.lines().any(|l| l == "7/udp -> 0.0.0.0:18081"),
        "{ports}"
    );
    assert_eq!(lade.ok(&["port", "web", "80"]).trim(), "0.0.0.0:18080");
    let ps = lade.ok(&["ps"]);
    assert!(ps.contains("0.0.0.0:18080->80/tcp"), "{ps}");
    // --network container:web shares its namespace: its loopback is web's.
    let shared = lade.ok(&[
        "run",
        "--rm",
        "--network",
        "container:web",
        "busybox",
        "wget",
        "-q",
        "-O",
        "-",
        "http://127.0.0.1:80/",
    ]);
    assert_eq!(shared, "page-from-lade\n");
    assert_eq!(
        udp_ask("127.0.0.1:18081", "ping").as_deref(),
        Some("echo:ping")
    );

    // The same host port again: refused, naming it; the container does not start.
    let taken = lade.output(&["run", "-d", "--name", "web2", "-p", "18080:80", "web:1"]);
    assert_eq!(taken.status.code(), Some(125));
    let stderr = String::from_utf8_lossy(&taken.stderr);
    assert!(
        stderr.contains("0.0.0.0:18080/tcp") && stderr.contains("already in use"),
        "{stderr}"
    );
    let web2 = lade.ok(&[
        "ps",
        "-a",
        "--filter",
        "name=web2",
        "--format",
        "{{.State}}",
    ]);
    assert_eq!(web2.trim(), "created");

    // -P: every EXPOSE port to a free host port.
    let shared_p = tempfile::tempdir().unwrap();
    let volume_p = format!("{}:/shared", shared_p.path().display());
    lade.ok(&[
        "run", "-d", "--name", "webp", "-v", &volume_p, "-P", "web:1", "sh", "-c", SERVE,
    ]);
    let published = lade.ok(&["port", "webp", "80/tcp"]);
    let port = published.trim().rsplit(':').next().unwrap().to_string();
    assert!(port.parse::<u16>().is_ok_and(|p| p > 0), "{published}");
    wait_for_servers(shared_p.path());
    let page = http_get(&format!("127.0.0.1:{port}")).unwrap_or_default();
    assert!(page.contains("page-from-lade"), "{page}");
    assert!(lade.ok(&["port", "webp"]).contains("7/udp -> 0.0.0.0:"));
    lade.ok(&["rm", "-f", "web", "web2", "webp"]);
    assert!(
        http_get("127.0.0.1:18080").is_none(),
        "the port still answers"
    );
}

#[test]
fn user_networks_resolve_names_and_aliases_and_keep_apart() {
    require_network_tools();
    let _serial = serial();
    let lade = Lade::new();
    lade.busybox();
    lade.ok(&["network", "create", "front"]);
    lade.ok(&["network", "create", "back"]);
    lade.ok(&["network", "create", "--internal", "sealed"]);
    let listed = lade.ok(&["network", "ls", "--format", "{{.Name}}"]);
    for name in ["front", "back", "sealed"] {
        assert!(listed.lines().any(|l| l == name), "{listed}");
    }
    lade.ok(&[
        "run",
        "-d",
        "--name",
        "api",
        "--network",
        "front",
        "--network-alias",
        "svc",
        "busybox",
        "sleep",
        "300",
    ]);
    pings_on(&lade, "front", &["api", "svc"]);
    let api_ip = lade.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "api"]);
    let api_ip = api_ip.trim();
    assert!(api_ip.starts_with("10."), "{api_ip}");
    // Its MAC, as Docker makes it from the address, is the one inspect shows.
    let mac = lade.ok(&["inspect", "-f", "{{.NetworkSettings.MacAddress}}", "api"]);
    let inside = lade.ok(&["exec", "api", "cat", "/sys/class/net/eth0/address"]);
    assert_eq!(mac.trim(), inside.trim());
    assert!(mac.starts_with("02:42:0a:"), "{mac}");
    // Another network does not know its names (nor the default network, as Docker's).
    for network in ["back", "bridge"] {
        let by_name = lade.output(&[
            "run",
            "--rm",
            "--network",
            network,
            "busybox",
            "ping",
            "-c1",
            "-W2",
            "api",
        ]);
        assert!(!by_name.status.success(), "{network} resolved api");
    }
    // Nor can it reach another network's containers by address: Docker keeps bridge
    // networks apart.
    let across = lade.output(&[
        "run",
        "--rm",
        "--network",
        "back",
        "busybox",
        "ping",
        "-c1",
        "-W2",
        api_ip,
    ]);
    assert!(
        !across.status.success(),
        "a container on back reached api at {api_ip} on front"
    );
    // An internal network has no route out.
    let routes = lade.ok(&[
        "run",
        "--rm",
        "--network",
        "sealed",
        "busybox",
        "ip",
        "route",
    ]);
    assert!(!routes.contains("default"), "{routes}");
    let out = lade.output(&[
        "run",
        "--rm",
        "--network",
        "sealed",
        "busybox",
        "ping",
        "-c1",
        "-W2",
        &host_address(),
    ]);
    assert!(
        !out.status.success(),
        "an internal network reached the host"
    );
    // /etc/hosts and /etc/resolv.conf as Docker writes them.
    let files = lade.ok(&[
        "run",
        "--rm",
        "--network",
        "front",
        "--hostname",
        "myhost",
        "--add-host",
        "db:10.1.2.3",
        "busybox",
        "sh",
        "-c",
        "cat /etc/hosts /etc/resolv.conf; hostname",
    ]);
    assert!(files.contains("10.1.2.3\tdb"), "{files}");
    assert!(files.contains("myhost"), "{files}");
    assert!(files.contains("search dns.podman"), "{files}");
    let resolv = lade.ok(&[
        "run",
        "--rm",
        "--dns",
        "9.9.9.9",
        "busybox",
        "cat",
        "/etc/resolv.conf",
    ]);
    assert_eq!(resolv, "nameserver 9.9.9.9\n");
    let inspect = lade.ok(&["network", "inspect", "-f", "{{.Internal}}", "sealed"]);
    assert_eq!(inspect.trim(), "true");

    // connect and disconnect while it runs.
    lade.ok(&[
        "run",
        "-d",
        "--name",
        "late",
        "--network",
        "back",
        "busybox",
        "sleep",
        "300",
    ]);
    lade.ok(&["network", "connect", "--alias", "lateral", "front", "late"]);
    pings_on(&lade, "front", &["late", "lateral"]);
    let inspect: serde_json::Value =
        serde_json::from_str(&lade.ok(&["network", "inspect", "front"])).unwrap();
    assert_eq!(inspect[0]["Containers"].as_object().unwrap().len(), 2);
    lade.ok(&["network", "disconnect", "front", "late"]);
    let gone = lade.output(&[
        "run",
        "--rm",
        "--network",
        "front",
        "busybox",
        "ping",
        "-c1",
        "-W2",
        "late",
    ]);
    assert!(!gone.status.success(), "late still answers on front");
    lade.ok(&["rm", "-f", "late"]);

    let in_use = lade.fails(&["network", "rm", "front"]);
    assert!(
        in_use.contains("in use") && in_use.contains("api"),
        "{in_use}"
    );
    lade.ok(&["rm", "-f", "api"]);
    lade.ok(&["network", "rm", "front", "back"]);
    lade.ok(&["network", "prune", "-f"]);
    let left = lade.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(
        !left.contains("front") && !left.contains("sealed"),
        "{left}"
    );
}

/// The host's chains of lade's firewall are made once and stay, shared by every store:
/// made before the host is looked at, by a store that leaves nothing else.
fn make_the_hosts_chains() {
    let first = Lade::new();
    first.busybox();
    first.ok(&["run", "--rm", "busybox", "true"]);
    first.ok(&["system", "reset", "-f"]);
}

/// Waits (bounded) until the host's state, as `ours` sees it, is `expected`: the
/// kernel removes a container's veth as it frees its namespace, a moment after the
/// namespace's last user is gone.
fn settles_to(ours: &Ours, expected: &str, when: &str) {
    let settled = (0..250).any(|_| {
        if ours.only(&host_state()) == expected {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
        false
    });
    if !settled {
        similar_asserts(expected, &ours.only(&host_state()), when);
    }
}

#[test]
fn teardown_leaves_the_hosts_links_rules_and_ports_as_they_were() {
    require_network_tools();
    let _serial = serial();
    make_the_hosts_chains();
    let lade = Lade::new();
    lade.busybox();
    let before_networks = host_state();
    lade.ok(&["network", "create", "mynet"]);
    // A network's bridge and rules are made when a container first needs them, and
    // stay until the network is removed.
    lade.ok(&["run", "--rm", "busybox", "true"]);
    lade.ok(&["run", "--rm", "--network", "mynet", "busybox", "true"]);
    // Their veth pairs go with their namespaces, which the kernel dismantles a moment
    // after the containers end.
    let networks_now = Ours::of(&lade);
    common::wait_until("the ended containers' veth pairs to go", || {
        !networks_now
            .only(&host_state())
            .lines()
            .any(|line| line.starts_with("veth"))
    });
    let with_networks = host_state();
    lade.ok(&[
        "run", "-d", "--name", "t1", "-p", "18091:80", "busybox", "sleep", "300",
    ]);
    lade.ok(&[
        "run",
        "-d",
        "--name",
        "t2",
        "--network",
        "mynet",
        "-p",
        "18092:80/udp",
        "busybox",
        "sleep",
        "300",
    ]);
    // Connected to another network while it runs: torn down with it.
    lade.ok(&["network", "connect", "mynet", "t1"]);
    let during = host_state();
    let ours = Ours::of(&lade);
    let with_networks = ours.only(&with_networks);
    assert_ne!(
        with_networks,
        ours.only(&during),
        "running containers changed nothing that is looked at"
    );
    assert_ne!(
        ours.only(&before_networks),
        with_networks,
        "the networks changed nothing that is looked at"
    );
    lade.ok(&["rm", "-f", "t1", "t2"]);
    settles_to(&ours, &with_networks, "after rm -f");

    // A monitor killed with -9: its container dies with it, and the next `ps` tears
    // its network down.
    lade.ok(&[
        "run", "-d", "--name", "t3", "-p", "18093:80", "busybox", "sleep", "300",
    ]);
    let init: i32 = lade
        .ok(&["inspect", "-f", "{{.State.Pid}}", "t3"])
        .trim()
        .parse()
        .unwrap();
    common::kill_monitor_of(init);
    lade.ok(&["ps", "-a"]);
    settles_to(
        &ours,
        &with_networks,
        "after a monitor was killed and ps ran",
    );
    lade.ok(&["rm", "t3"]);
    // `network rm` takes the network's bridge and rules; `system reset` the default
    // network's too.
    lade.ok(&["network", "rm", "mynet"]);
    let without_mynet = ours.only(&host_state());
    assert!(
        !without_mynet.contains(&ours.bridges_of("mynet")),
        "{without_mynet}"
    );
    lade.ok(&["system", "reset", "-f"]);
    similar_asserts(
        &ours.only(&before_networks),
        &ours.only(&host_state()),
        "after network rm and system reset",
    );
}

/// A flush of lade's chains takes the networks' rules: the next run makes them again,
/// and a port published on 127.0.0.1 answers (which needs the network's masquerade).
#[test]
fn a_networks_rules_come_back_after_a_firewall_flush() {
    require_network_tools();
    let _serial = serial();
    let lade = Lade::new();
    lade.busybox();
    web_image(&lade);
    lade.ok(&["run", "--rm", "busybox", "true"]);
    let network: serde_json::Value =
        serde_json::from_str(&lade.ok(&["network", "inspect", "bridge"])).unwrap();
    let made = traces_of(&network[0]);
    let rules = |traces: &[String]| -> Vec<String> {
        traces
            .iter()
            .filter(|l| l.starts_with("-A "))
            .cloned()
            .collect()
    };
    assert!(rules(&made).len() >= 5, "{made:#?}");
    common::run("iptables", &["-w", "-F", "LADE-FORWARD"]);
    common::run("iptables", &["-w", "-t", "nat", "-F", "LADE-POSTROUTING"]);
    assert_ne!(
        rules(&traces_of(&network[0])),
        rules(&made),
        "nothing was flushed"
    );
    let shared = tempfile::tempdir().unwrap();
    let volume = format!("{}:/shared", shared.path().display());
    lade.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-v",
        &volume,
        "-p",
        "127.0.0.1:18098:80",
        "web:1",
        "sh",
        "-c",
        SERVE,
    ]);
    let mut again = rules(&traces_of(&network[0]));
    let mut expected = rules(&made);
    again.sort();
    expected.sort();
    assert_eq!(again, expected, "the network's rules were not made again");
    wait_for_servers(shared.path());
    let page = http_get("127.0.0.1:18098").unwrap_or_default();
    assert!(page.contains("page-from-lade"), "{page}");
    lade.ok(&["rm", "-f", "web"]);
}

/// `system reset` removes every container, image and network of the store, and their
/// bridges and rules from the host.
#[test]
fn system_reset_removes_the_stores_bridges_and_rules() {
    require_network_tools();
    let _serial = serial();
    let lade = Lade::new();
    lade.busybox();
    lade.ok(&["network", "create", "front"]);
    lade.ok(&[
        "run",
        "-d",
        "--name",
        "api",
        "--network",
        "front",
        "busybox",
        "sleep",
        "300",
    ]);
    lade.ok(&["run", "--rm", "-p", "18099:80", "busybox", "true"]);
    let networks: serde_json::Value =
        serde_json::from_str(&lade.ok(&["network", "inspect", "front", "bridge"])).unwrap();
    for network in networks.as_array().unwrap() {
        assert!(!traces_of(network).is_empty(), "{network}");
    }
    // Without -f it asks, and an empty answer is no.
    let asked = lade.ok(&["system", "reset"]);
    assert!(asked.contains("[y/N]"), "{asked}");
    assert_eq!(lade.ok(&["ps", "-aq"]).lines().count(), 1);
    let said = lade.ok(&["system", "reset", "-f"]);
    assert!(said.contains("Deleted containers: 1"), "{said}");
    for network in networks.as_array().unwrap() {
        assert_eq!(traces_of(network), Vec::<String>::new(), "{network}");
    }
    assert_eq!(lade.ok(&["ps", "-aq"]), "");
    assert_eq!(lade.ok(&["images", "-q"]), "");
    let pid_file = lade.root().join("networks/aardvark-dns/aardvark.pid");
    assert!(!pid_file.exists(), "aardvark-dns still runs");
}

/// A store's networks, as far as the host's state shows them.
struct Ours {
    /// By network name.
    bridges: Vec<(String, String)>,
    subnets: Vec<String>,
}

impl Ours {
    /// `lade`'s networks now.
    fn of(lade: &Lade) -> Ours {
        let ids = lade.ok(&["network", "ls", "-q"]);
        let mut args = vec!["network", "inspect"];
        args.extend(ids.lines());
        let networks: serde_json::Value = serde_json::from_str(&lade.ok(&args)).unwrap();
        let mut ours = Ours {
            bridges: Vec::new(),
            subnets: Vec::new(),
        };
        for network in networks.as_array().unwrap() {
            let bridge = network["Options"]["com.docker.network.bridge.name"]
                .as_str()
                .unwrap();
            let subnet = network["IPAM"]["Config"][0]["Subnet"].as_str().unwrap();
            let name = network["Name"].as_str().unwrap();
            ours.bridges.push((name.to_string(), bridge.to_string()));
            ours.subnets.push(subnet.to_string());
        }
        ours
    }

    /// The bridge of the network `name`.
    fn bridges_of(&self, name: &str) -> String {
        self.bridges
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.clone())
            .unwrap()
    }

    /// `state` without what belongs to other stores' networks, which other tests on
    /// this host make and remove meanwhile: lines naming a lade bridge, a 10.0.0.0/8
    /// subnet or a per-network netavark chain (an older lade's, or podman's) that is
    /// none of ours.
    fn only(&self, state: &str) -> String {
        let foreign = |word: &str| {
            let bridge = word
                .strip_prefix("lade")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                && !self.bridges.iter().any(|(_, b)| b == word);
            let chain = word
                .strip_prefix("NETAVARK-DN-")
                .or_else(|| word.strip_prefix("NETAVARK-"))
                .is_some_and(|h| h.len() == 13 && h.bytes().all(|b| b.is_ascii_hexdigit()));
            let subnet = word.starts_with("10.")
                && word.contains('/')
                && !self.subnets.iter().any(|s| s == word);
            bridge || chain || subnet
        };
        state
            .lines()
            .filter(|line| {
                !line
                    .split(|c: char| c.is_whitespace() || "@:\"".contains(c))
                    .any(foreign)
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn similar_asserts(before: &str, after: &str, when: &str) {
    if before != after {
        let gone: Vec<&str> = before.lines().filter(|l| !after.contains(l)).collect();
        let new: Vec<&str> = after.lines().filter(|l| !before.contains(l)).collect();
        panic!("{when}: the host changed.\nnow missing: {gone:#?}\nleft behind: {new:#?}");
    }
}

/// A host where `/run/systemd/system` exists but systemd is not PID 1 (a container, WSL,
/// a CI image, or a package that made the directory), made without changing the real
/// host: a mount namespace of the test's own with a tmpfs on `/run/systemd` holding an
/// empty `system`. lade runs in it through nsenter; whatever lade made in it is removed
/// there before the namespace's holder goes, even when the test fails.
struct SystemdLessHost<'a> {
    lade: &'a Lade,
    holder: common::Killed,
    /// `/run/systemd` was made for the test (an empty directory in a tmpfs).
    made_run_systemd: bool,
}

impl<'a> SystemdLessHost<'a> {
    fn new(lade: &'a Lade) -> SystemdLessHost<'a> {
        common::require_tool("unshare");
        common::require_tool("nsenter");
        let made_run_systemd = !Path::new("/run/systemd").exists();
        if made_run_systemd {
            std::fs::create_dir("/run/systemd").unwrap();
        }
        let mut holder = common::Killed(
            std::process::Command::new("unshare")
                .args(["-m", "--propagation", "private", "sh", "-c"])
                .arg(
                    "mount -t tmpfs -o mode=0755 tmpfs /run/systemd && mkdir /run/systemd/system \
                     && echo ready && exec sleep 3600",
                )
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("unshare runs"),
        );
        let mut ready = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(holder.0.stdout.take().unwrap()),
            &mut ready,
        )
        .unwrap();
        assert_eq!(ready, "ready\n", "the simulated host could not be made");
        SystemdLessHost {
            lade,
            holder,
            made_run_systemd,
        }
    }

    fn output(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new("nsenter")
            .arg("-t")
            .arg(self.holder.0.id().to_string())
            .args(["-m", "--"])
            .arg(assert_cmd::cargo::cargo_bin("lade"))
            .args(args)
            .env("LADE_ROOT", self.lade.root())
            .env_remove("SOURCE_DATE_EPOCH")
            .output()
            .expect("nsenter runs")
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.output(args);
        assert!(
            output.status.success(),
            "lade {args:?} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for SystemdLessHost<'_> {
    fn drop(&mut self) {
        let ids = self.output(&["ps", "-aq", "--no-trunc"]);
        let ids: Vec<String> = String::from_utf8_lossy(&ids.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids.iter().map(String::as_str));
            let _ = self.output(&args);
        }
        let _ = self.output(&["network", "prune", "-f"]);
        if self.made_run_systemd {
            let _ = std::fs::remove_dir("/run/systemd");
        }
    }
}

/// A start of aardvark-dns through `systemd-run --scope` whenever `/run/systemd/system`
/// exists (netavark 1.4's) fails when systemd is not PID 1: names must resolve there all
/// the same, and runs must end without a teardown error.
#[test]
fn names_resolve_where_run_systemd_system_exists_but_systemd_does_not_run() {
    require_network_tools();
    let _serial = serial();
    let lade = Lade::new();
    lade.busybox();
    let host = SystemdLessHost::new(&lade);
    host.ok(&["network", "create", "front"]);
    let front: serde_json::Value =
        serde_json::from_str(&host.ok(&["network", "inspect", "front"])).unwrap();
    for name in ["api", "web"] {
        host.ok(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "front",
            "busybox",
            "sleep",
            "300",
        ]);
    }
    host.ok(&["exec", "api", "ping", "-c1", "-W5", "web"]);
    host.ok(&["exec", "web", "ping", "-c1", "-W5", "api"]);
    let run = host.output(&[
        "run",
        "--rm",
        "--network",
        "front",
        "busybox",
        "ping",
        "-c1",
        "-W5",
        "api",
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "a --rm run did not resolve api:\n{stderr}"
    );
    assert!(stderr.is_empty(), "a --rm run said:\n{stderr}");
    let pid_file = lade.root().join("networks/aardvark-dns/aardvark.pid");
    assert!(pid_file.exists(), "no aardvark-dns ran");
    assert!(
        !traces_of(&front[0]).is_empty(),
        "the network left no trace to look for"
    );
    host.ok(&["rm", "-f", "api", "web"]);
    host.ok(&["network", "rm", "front"]);
    // Nothing of it is left: no aardvark-dns (it had no names left to answer), no
    // bridge, no rule, no socket.
    assert!(!pid_file.exists(), "aardvark-dns still runs");
    assert_eq!(traces_of(&front[0]), Vec::<String>::new());
}

/// What of the host's links, firewall rules and listening sockets belongs to a network
/// (its bridge, subnet or gateway, from `network inspect`): unlike [`host_state`], blind
/// to what other stores' networks on this host do meanwhile.
fn traces_of(network: &serde_json::Value) -> Vec<String> {
    let bridge = network["Options"]["com.docker.network.bridge.name"]
        .as_str()
        .unwrap();
    let subnet = network["IPAM"]["Config"][0]["Subnet"].as_str().unwrap();
    let gateway = format!(
        "{}:",
        network["IPAM"]["Config"][0]["Gateway"].as_str().unwrap()
    );
    let links = common::run("ip", &["-o", "link", "show"]);
    let rules = common::run("iptables-save", &[]);
    let sockets = common::run("ss", &["-lntuH"]);
    let bridge_word = |line: &str| {
        line.split(|c: char| !c.is_ascii_alphanumeric())
            .any(|word| word == bridge)
    };
    links
        .lines()
        .chain(rules.lines())
        .filter(|line| bridge_word(line) || line.contains(subnet))
        .chain(sockets.lines().filter(|line| line.contains(&gateway)))
        .map(str::to_string)
        .collect()
}

/// CVE-2020-8558: the bridge routes 127.0.0.0/8 (route_localnet, for ports published on
/// 127.0.0.1), so a container with CAP_NET_RAW that hands the gateway's MAC a frame
/// addressed to 127.0.0.1 reaches the host's loopback-only services, unless a firewall
/// rule drops such packets. Ports published on 127.0.0.1 still answer there.
#[test]
fn a_container_cannot_reach_the_hosts_loopback_services_through_its_gateway() {
    require_network_tools();
    let _serial = serial();
    let lade = Lade::new();
    lade.busybox();
    let context = Context::new(
        "FROM busybox\nCOPY localnet-attack /localnet-attack\n\
         RUN mkdir /www && echo page-from-lade > /www/index.html\n",
    );
    common::compile_fixture("localnet-attack", &context.path().join("localnet-attack"));
    lade.build(context.path(), &["-t", "attack:1"]);
    lade.ok(&["network", "create", "probed"]);
    let inspect: serde_json::Value =
        serde_json::from_str(&lade.ok(&["network", "inspect", "probed"])).unwrap();
    let gateway = inspect[0]["IPAM"]["Config"][0]["Gateway"]
        .as_str()
        .unwrap()
        .to_string();
    // A service only the host itself should reach, and one the container may reach.
    let loopback = UdpSocket::bind("127.0.0.1:0").unwrap();
    let open = UdpSocket::bind("0.0.0.0:0").unwrap();
    open.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let script = format!(
        "ping -c1 -W5 {gateway} >/dev/null && /localnet-attack {gateway} {} {}",
        loopback.local_addr().unwrap().port(),
        open.local_addr().unwrap().port()
    );
    let sent = lade.ok(&[
        "run",
        "--rm",
        "--network",
        "probed",
        "attack:1",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(sent, "sent\n");
    let mut buffer = [0u8; 64];
    let (n, _) = open
        .recv_from(&mut buffer)
        .expect("the frame to the gateway's address arrived");
    assert_eq!(&buffer[..n], b"after-attack");
    loopback.set_nonblocking(true).unwrap();
    match loopback.recv_from(&mut buffer) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!(
            "a container reached a service bound to the host's 127.0.0.1: {:?}",
            other.map(|(n, from)| (String::from_utf8_lossy(&buffer[..n]).into_owned(), from))
        ),
    }

    // What route_localnet is there for still works: a port published on 127.0.0.1.
    let shared = tempfile::tempdir().unwrap();
    let volume = format!("{}:/shared", shared.path().display());
    lade.ok(&[
        "run",
        "-d",
        "--name",
        "local-web",
        "--network",
        "probed",
        "-v",
        &volume,
        "-p",
        "127.0.0.1:18096:80",
        "attack:1",
        "sh",
        "-c",
        "httpd -p 80 -h /www && touch /shared/http-ready; exec sleep 3600",
    ]);
    wait_until("the server to bind", || {
        shared.path().join("http-ready").exists()
    });
    let page = http_get("127.0.0.1:18096").unwrap_or_default();
    assert!(page.contains("page-from-lade"), "{page}");
    lade.ok(&["rm", "-f", "local-web"]);
    lade.ok(&["network", "rm", "probed"]);
}

/// When aardvark-dns cannot be started, `run` says so (naming the network and the
/// cause), foreground and detached, and the runs still end without a teardown error.
#[test]
fn a_run_says_when_names_will_not_resolve_and_ends_without_a_teardown_error() {
    require_network_tools();
    let _serial = serial();
    let lade = Lade::new();
    lade.busybox();
    lade.ok(&["network", "create", "front"]);
    let broken = [("LADE_AARDVARK_DNS", "/bin/false")];
    let expected = "warning: container names will not resolve on network front: /bin/false failed (exit status: 1)";
    let run = lade
        .cmd()
        .envs(broken)
        .args(["run", "--rm", "--network", "front", "busybox", "true"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(stderr.starts_with(expected), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let detached = lade
        .cmd()
        .envs(broken)
        .args([
            "run",
            "-d",
            "--name",
            "quiet",
            "--network",
            "front",
            "busybox",
            "sleep",
            "300",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&detached.stderr);
    assert!(detached.status.success(), "{stderr}");
    assert!(stderr.starts_with(expected), "{stderr}");
    let id = String::from_utf8_lossy(&detached.stdout).trim().to_string();
    // The monitor tears the network down before the exit that `stop` waits for is
    // recorded, and writes what failed in its log.
    lade.ok(&["stop", "-t", "0", "quiet"]);
    let monitor_log = lade.root().join("containers").join(&id).join("monitor.log");
    let said = std::fs::read_to_string(&monitor_log).unwrap_or_default();
    assert!(said.is_empty(), "{}: {said}", monitor_log.display());
    lade.ok(&["rm", "quiet"]);
    lade.ok(&["network", "rm", "front"]);
}

/// A store deleted by hand (not `system reset`) leaves its bridge and rules on the host,
/// where no store sees them: any store's `system check` tells of them without failing,
/// and `--repair` removes them.
#[test]
fn system_check_finds_and_repairs_the_bridge_of_a_deleted_store() {
    require_network_tools();
    let _serial = serial();
    let gone = Lade::new();
    gone.busybox();
    gone.ok(&["network", "create", "left"]);
    gone.ok(&["run", "--rm", "--network", "left", "busybox", "true"]);
    let networks: serde_json::Value =
        serde_json::from_str(&gone.ok(&["network", "inspect", "left"])).unwrap();
    let network = &networks[0];
    let bridge = network["Options"]["com.docker.network.bridge.name"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!traces_of(network).is_empty(), "{network}");
    std::fs::remove_dir_all(gone.root()).unwrap();

    let checker = Lade::new();
    let out = checker.cmd().args(["system", "check"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "not this store's problem: {stderr}");
    let warning = stderr
        .lines()
        .find(|line| line.contains(&format!("bridge {bridge} ")))
        .unwrap_or_else(|| panic!("no word of {bridge}: {stderr}"));
    assert!(
        warning.starts_with("warning: ")
            && warning.contains(&gone.root().display().to_string())
            && warning.contains("--repair"),
        "{warning}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&checker.ok(&["system", "check", "--format", "json"])).unwrap();
    assert!(
        json["HostLeftovers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().contains(&format!("bridge {bridge} "))),
        "{json}"
    );

    let repaired = checker.ok(&["system", "check", "--repair"]);
    assert!(
        repaired.contains(&format!(
            "repaired: removed bridge {bridge} of the deleted store"
        )),
        "{repaired}"
    );
    assert_eq!(traces_of(network), Vec::<String>::new(), "{network}");
    let again = checker.cmd().args(["system", "check"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(!stderr.contains(&format!("bridge {bridge} ")), "{stderr}");
}
