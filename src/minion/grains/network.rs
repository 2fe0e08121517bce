//! The network grains: interfaces and their addresses from rtnetlink (what `ip addr show`
//! prints, which Salt parses), default gateways from the main routing table (Salt reads
//! `ip route show`), the resolver's configuration, and the names the resolver gives the host.

use std::net::IpAddr;
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netlink_packet_route::address::{AddressAttribute, AddressHeaderFlags, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkLayerType, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::protocols::NETLINK_ROUTE;

use super::Grains;
use crate::beacons::netlink::dump;
use crate::config::canonical_name;
use crate::event::Value;

/// One interface as `ip addr show` lists it.
#[derive(Debug, Default)]
pub(super) struct Interface {
    index: u32,
    name: String,
    hwaddr: Option<String>,
    inet: Vec<IpAddr>,
    inet6: Vec<IpAddr>,
    /// Secondary IPv4 addresses, listed after the others.
    secondary: Vec<IpAddr>,
}

/// The interfaces of this network namespace, by index, with their addresses; none when
/// rtnetlink cannot be asked.
pub(super) fn interfaces() -> Vec<Interface> {
    let Some(socket) = socket() else {
        return Vec::new();
    };
    let mut found: Vec<Interface> = dump(
        &socket,
        RouteNetlinkMessage::GetLink(LinkMessage::default()),
    )
    .unwrap_or_default()
    .into_iter()
    .filter_map(|message| match message {
        RouteNetlinkMessage::NewLink(link) => Some(interface(link)),
        _ => None,
    })
    .collect();
    let addresses = dump(
        &socket,
        RouteNetlinkMessage::GetAddress(AddressMessage::default()),
    )
    .unwrap_or_default();
    for message in addresses {
        let RouteNetlinkMessage::NewAddress(address) = message else {
            continue;
        };
        let Some(interface) = found.iter_mut().find(|i| i.index == address.header.index) else {
            continue;
        };
        // `ip` prints the local address when there is one (a point-to-point link's peer is
        // IFA_ADDRESS).
        let ip = address
            .attributes
            .iter()
            .find_map(|a| match a {
                AddressAttribute::Local(ip) => Some(*ip),
                _ => None,
            })
            .or_else(|| {
                address.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Address(ip) => Some(*ip),
                    _ => None,
                })
            });
        let Some(ip) = ip else { continue };
        match ip {
            IpAddr::V4(_) if address.header.flags.contains(AddressHeaderFlags::Secondary) => {
                interface.secondary.push(ip);
            }
            IpAddr::V4(_) => interface.inet.push(ip),
            IpAddr::V6(_) => interface.inet6.push(ip),
        }
    }
    found
}

fn socket() -> Option<netlink_sys::Socket> {
    let socket = netlink_sys::Socket::new(NETLINK_ROUTE).ok()?;
    socket.connect(&netlink_sys::SocketAddr::new(0, 0)).ok()?;
    Some(socket)
}

fn interface(link: LinkMessage) -> Interface {
    let mut interface = Interface {
        index: link.header.index,
        ..Interface::default()
    };
    let kind = link.header.link_layer_type;
    for attribute in link.attributes {
        match attribute {
            LinkAttribute::IfName(name) => interface.name = name,
            LinkAttribute::Address(bytes) if !bytes.is_empty() => {
                interface.hwaddr = Some(link_address(kind, &bytes));
            }
            _ => {}
        }
    }
    interface
}

/// A link-layer address as `ip link` prints it: an IP address for IP tunnels, else
/// colon-separated hex.
fn link_address(kind: LinkLayerType, bytes: &[u8]) -> String {
    match (kind, bytes.len()) {
        (LinkLayerType::Tunnel | LinkLayerType::Sit | LinkLayerType::Ipgre, 4) => {
            std::net::Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).to_string()
        }
        (LinkLayerType::Tunnel6 | LinkLayerType::Ip6gre, 16) => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(bytes);
            std::net::Ipv6Addr::from(octets).to_string()
        }
        _ => bytes
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
    }
}

/// `ipv4`, `ipv6` (every address, loopback included, sorted as addresses), `ip_interfaces`,
/// `ip4_interfaces`, `ip6_interfaces`, `hwaddr_interfaces`.
pub(super) fn addresses(grains: &mut Grains, interfaces: &[Interface]) {
    let all = |v6: bool| {
        let mut ips: Vec<IpAddr> = interfaces
            .iter()
            .flat_map(|i| i.inet.iter().chain(&i.secondary).chain(&i.inet6))
            .filter(|ip| ip.is_ipv6() == v6)
            .copied()
            .collect();
        ips.sort();
        ips.dedup();
        Value::Array(ips.iter().map(|ip| ip.to_string().into()).collect())
    };
    grains.set("ipv4", all(false));
    grains.set("ipv6", all(true));
    let per_interface = |pick: &dyn Fn(&Interface) -> Vec<IpAddr>| {
        Value::Map(
            interfaces
                .iter()
                .map(|i| {
                    let ips = pick(i).iter().map(|ip| ip.to_string().into()).collect();
                    (Value::from(i.name.as_str()), Value::Array(ips))
                })
                .collect(),
        )
    };
    grains.set(
        "ip_interfaces",
        per_interface(&|i| [&i.inet[..], &i.inet6, &i.secondary].concat()),
    );
    grains.set(
        "ip4_interfaces",
        per_interface(&|i| [&i.inet[..], &i.secondary].concat()),
    );
    grains.set("ip6_interfaces", per_interface(&|i| i.inet6.clone()));
    grains.set(
        "hwaddr_interfaces",
        Value::Map(
            interfaces
                .iter()
                .filter_map(|i| {
                    let hwaddr = i.hwaddr.as_deref()?;
                    Some((Value::from(i.name.as_str()), Value::from(hwaddr)))
                })
                .collect(),
        ),
    );
}

/// `ip_gw`, `ip4_gw`, `ip6_gw`: the first default route of the main table of each family, its
/// gateway, or `true` for a default route without one.
pub(super) fn gateways(grains: &mut Grains) {
    let Some(socket) = socket() else {
        return;
    };
    let mut any = false;
    for (family, name) in [
        (AddressFamily::Inet, "ip4_gw"),
        (AddressFamily::Inet6, "ip6_gw"),
    ] {
        let mut request = RouteMessage::default();
        request.header.address_family = family;
        let routes = dump(&socket, RouteNetlinkMessage::GetRoute(request)).unwrap_or_default();
        let default = routes.into_iter().find_map(|message| match message {
            RouteNetlinkMessage::NewRoute(route)
                if route.header.destination_prefix_length == 0
                    && route.header.kind == RouteType::Unicast
                    && table(&route) == u32::from(RouteHeader::RT_TABLE_MAIN) =>
            {
                Some(route)
            }
            _ => None,
        });
        let value = match default {
            Some(route) => {
                any = true;
                route
                    .attributes
                    .iter()
                    .find_map(|a| match a {
                        RouteAttribute::Gateway(RouteAddress::Inet(ip)) => {
                            Some(Value::from(ip.to_string()))
                        }
                        RouteAttribute::Gateway(RouteAddress::Inet6(ip)) => {
                            Some(Value::from(ip.to_string()))
                        }
                        _ => None,
                    })
                    .unwrap_or(Value::Boolean(true))
            }
            None => Value::Boolean(false),
        };
        grains.set(name, value);
    }
    grains.set("ip_gw", any);
}

fn table(route: &RouteMessage) -> u32 {
    route
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(table) => Some(*table),
            _ => None,
        })
        .unwrap_or(u32::from(route.header.table))
}

/// `dns`: the resolver's configuration (systemd-resolved's upstream file when there is one),
/// read as Salt's `parse_resolv` reads it; none when it cannot be read.
pub(super) fn dns(grains: &mut Grains) {
    let path = if std::path::Path::new("/run/systemd/resolve/resolv.conf").exists() {
        "/run/systemd/resolve/resolv.conf"
    } else {
        "/etc/resolv.conf"
    };
    if let Ok(text) = std::fs::read_to_string(path) {
        grains.set("dns", parse_resolv(&text));
    }
}

fn parse_resolv(text: &str) -> Value {
    let (mut all, mut v4, mut v6) = (Vec::<String>::new(), Vec::new(), Vec::new());
    let (mut search, mut sortlist, mut options) = (Vec::new(), Vec::<String>::new(), Vec::new());
    let mut domain = String::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let Some(directive) = words.next() else {
            continue;
        };
        let args: Vec<&str> = words
            .take_while(|word| !word.starts_with(['#', ';']))
            .collect();
        let Some(first) = args.first() else { continue };
        match directive.to_lowercase().as_str() {
            "nameserver" => {
                let (ip, scope) = first
                    .split_once('%')
                    .map_or((*first, None), |(ip, scope)| (ip, Some(scope)));
                let Ok(parsed) = ip.parse::<IpAddr>() else {
                    continue;
                };
                let text = match scope {
                    Some(scope) => format!("{parsed}%{scope}"),
                    None => parsed.to_string(),
                };
                if !all.contains(&text) {
                    all.push(text.clone());
                }
                let family = if parsed.is_ipv4() { &mut v4 } else { &mut v6 };
                if !family.contains(&text) {
                    family.push(text);
                }
            }
            "domain" => domain = (*first).to_owned(),
            "search" => search = args.iter().map(|s| (*s).to_owned()).collect(),
            "sortlist" => {
                for entry in &args {
                    if let Some(network) = sort_network(entry)
                        && !sortlist.contains(&network)
                    {
                        sortlist.push(network);
                    }
                }
            }
            "options" if !options.iter().any(|o: &String| o == first) => {
                options.push((*first).to_owned());
            }
            _ => {}
        }
    }
    let list = |items: Vec<String>| Value::Array(items.into_iter().map(Value::from).collect());
    Value::Map(vec![
        ("nameservers".into(), list(all)),
        ("ip4_nameservers".into(), list(v4)),
        ("ip6_nameservers".into(), list(v6)),
        ("sortlist".into(), list(sortlist)),
        ("domain".into(), domain.into()),
        ("search".into(), list(search)),
        ("options".into(), list(options)),
    ])
}

/// An IPv4 sortlist entry as `network/netmask`; without a mask, its class's natural one.
/// Entries with host bits set are dropped, as Salt drops them.
fn sort_network(entry: &str) -> Option<String> {
    let (ip, mask) = match entry.split_once('/') {
        Some((ip, mask)) => (ip.parse::<std::net::Ipv4Addr>().ok()?, Some(mask)),
        None => (entry.parse::<std::net::Ipv4Addr>().ok()?, None),
    };
    let bits = match mask {
        Some(mask) => match mask.parse::<u32>() {
            Ok(prefix) if prefix <= 32 => u32::MAX.checked_shl(32 - prefix).unwrap_or(0),
            Ok(_) => return None,
            Err(_) => u32::from(mask.parse::<std::net::Ipv4Addr>().ok()?),
        },
        None => match ip.octets()[0] {
            0..=127 => 0xff00_0000,
            128..=191 => 0xffff_0000,
            _ => 0xffff_ff00,
        },
    };
    let network = u32::from(ip);
    if mask.is_some() && network & !bits != 0 {
        return None;
    }
    Some(format!(
        "{}/{}",
        std::net::Ipv4Addr::from(network & bits),
        std::net::Ipv4Addr::from(bits)
    ))
}

/// The host's fully qualified name: the canonical name the resolver gives its host name, else
/// the host name itself.
pub(super) fn fqdn(hostname: &str) -> String {
    canonical_name(hostname).unwrap_or_else(|| hostname.to_owned())
}

/// `fqdn_ip4` and `fqdn_ip6`: what `fqdn` resolves to in each family (sorted), empty for a
/// family the host has no address of.
pub(super) fn fqdn_addresses(grains: &mut Grains, fqdn: &str) {
    for (family, key, have) in [
        (libc::AF_INET, "fqdn_ip4", "ipv4"),
        (libc::AF_INET6, "fqdn_ip6", "ipv6"),
    ] {
        let has_addresses = grains
            .get(have)
            .and_then(Value::as_array)
            .is_some_and(|ips| !ips.is_empty());
        let mut found: Vec<String> = Vec::new();
        if has_addresses {
            let hints = dns_lookup::AddrInfoHints {
                flags: 0,
                address: family,
                socktype: libc::SOCK_STREAM,
                protocol: 0,
            };
            if let Ok(infos) = dns_lookup::getaddrinfo(Some(fqdn), None, Some(hints)) {
                found = infos
                    .flatten()
                    .map(|info| info.sockaddr.ip().to_string())
                    .collect();
            }
        }
        found.sort();
        found.dedup();
        grains.set(
            key,
            Value::Array(found.into_iter().map(Value::from).collect()),
        );
    }
}

/// How long `fqdns` waits for the resolver. A lost DNS packet costs glibc's resolver a 5 s
/// retry: with one in every few lookups lost, every `salt-call` stalled 5 s now and then, for a
/// grain that is almost never read. An address without an answer by then is left out.
const FQDNS_DEADLINE: Duration = Duration::from_secs(1);

/// At most this many reverse lookups run at once. Salt runs 8 and waits for them all; with a
/// deadline, 8 addresses that the resolver does not answer would keep the others from being
/// looked up at all.
const FQDNS_LOOKUPS_AT_ONCE: usize = 64;

/// `fqdns`: the names the resolver gives the host's addresses (loopback left out), sorted.
pub(super) fn fqdns(grains: &mut Grains, interfaces: &[Interface]) {
    let mut ips: Vec<IpAddr> = interfaces
        .iter()
        .flat_map(|i| i.inet.iter().chain(&i.secondary).chain(&i.inet6))
        .filter(|ip| !ip.is_loopback())
        .copied()
        .collect();
    ips.sort();
    ips.dedup();
    let mut names = reverse_names(ips, FQDNS_DEADLINE);
    names.sort();
    names.dedup();
    grains.set(
        "fqdns",
        Value::Array(names.into_iter().map(Value::from).collect()),
    );
}

/// The names of `ips` that the resolver gives within `deadline`. The lookups run on threads of
/// their own, which are left to finish alone after it: glibc's resolver cannot be cancelled.
fn reverse_names(ips: Vec<IpAddr>, deadline: Duration) -> Vec<String> {
    let until = Instant::now() + deadline;
    let total = ips.len();
    let queue = Arc::new(Mutex::new(ips));
    let (found, answers) = std::sync::mpsc::channel();
    for _ in 0..total.min(FQDNS_LOOKUPS_AT_ONCE) {
        let queue = Arc::clone(&queue);
        let found = found.clone();
        let spawned = std::thread::Builder::new()
            .name("fqdns".into())
            .spawn(move || {
                while let Some(ip) = queue.lock().ok().and_then(|mut ips| ips.pop()) {
                    let name = dns_lookup::lookup_addr(&ip).ok().map(python_fqdn);
                    if found.send(name).is_err() {
                        return;
                    }
                }
            });
        if let Err(err) = spawned {
            tracing::debug!("fqdns: cannot start a lookup thread: {err}");
        }
    }
    drop(found);
    let mut names = Vec::new();
    for _ in 0..total {
        match answers.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(Some(name)) => names.push(name),
            Ok(None) => {}
            Err(RecvTimeoutError::Timeout) => {
                tracing::debug!(
                    "fqdns: the resolver did not answer for every address within {deadline:?}"
                );
                break;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    names
}

/// Python's `getfqdn` on a name an address resolved to: a dotted name stands; else its
/// canonical name, if that is dotted.
fn python_fqdn(name: String) -> String {
    if name.contains('.') {
        return name;
    }
    canonical_name(&name)
        .filter(|c| c.contains('.'))
        .unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names_answer_within_the_deadline() {
        let started = Instant::now();
        assert!(reverse_names(Vec::new(), Duration::from_secs(5)).is_empty());
        let loopback = IpAddr::from([127, 0, 0, 1]);
        let names = reverse_names(vec![loopback; 20], Duration::from_secs(5));
        assert_eq!(names.len(), 20, "{names:?}");
        assert!(
            names
                .iter()
                .all(|name| name == &names[0] && !name.is_empty())
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn resolv_conf_is_read_as_salt_reads_it() {
        let parsed = parse_resolv(
            "# comment\nnameserver 10.0.0.1\nnameserver fe80:0::1%eth0 # x\nnameserver 10.0.0.1\nnameserver bogus\nsearch a.example b.example\noptions ndots:2 timeout:1\noptions ndots:2\nsortlist 130.155.160.0/255.255.240.0 130.155.0.0 10.1.2.3/8\n\ndomain\n",
        );
        assert_eq!(
            serde_json::to_string(&parsed).unwrap_or_default(),
            r#"{"nameservers":["10.0.0.1","fe80::1%eth0"],"ip4_nameservers":["10.0.0.1"],"ip6_nameservers":["fe80::1%eth0"],"sortlist":["130.155.160.0/255.255.240.0","130.155.0.0/255.255.0.0"],"domain":"","search":["a.example","b.example"],"options":["ndots:2"]}"#
        );
    }
}
