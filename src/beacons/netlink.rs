//! The network interfaces of the minion's network namespace as rtnetlink tells them, each with
//! the settings Salt's `network_settings` beacon watches, named and shaped as pyroute2's IPDB
//! view (which Salt's module reads) shows them: `operstate` as `UP`, addresses as
//! `aa:bb:…`, `ipaddr` as `[address, prefix length]` pairs, `kind` None for a plain device.

use std::net::IpAddr;

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkInfo, LinkMessage, State};
use netlink_packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage};
use netlink_sys::protocols::NETLINK_ROUTE;

use crate::event::Value;

/// One interface: its name and its settings by pyroute2's names.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Link {
    pub name: String,
    pub settings: Vec<(&'static str, Value)>,
}

/// What to ask the kernel for besides the links themselves.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Needs {
    /// `ipaddr`: the addresses of each interface.
    pub addresses: bool,
    /// `neighbours`: the neighbour table.
    pub neighbours: bool,
}

/// Every interface of this network namespace, in the kernel's order (by index).
pub(super) fn links(needs: Needs) -> Result<Vec<Link>, String> {
    let socket = netlink_sys::Socket::new(NETLINK_ROUTE)
        .map_err(|err| format!("cannot open a netlink socket: {err}"))?;
    socket
        .connect(&netlink_sys::SocketAddr::new(0, 0))
        .map_err(|err| format!("cannot reach rtnetlink: {err}"))?;
    let mut links = Vec::new();
    let mut controllers = Vec::new();
    for message in dump(
        &socket,
        RouteNetlinkMessage::GetLink(LinkMessage::default()),
    )? {
        if let RouteNetlinkMessage::NewLink(link) = message {
            let (link, controller) = settings(link);
            controllers.push(controller);
            links.push(link);
        }
    }
    let mut addresses: Vec<(u32, Value)> = Vec::new();
    if needs.addresses {
        for message in dump(
            &socket,
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
        )? {
            if let RouteNetlinkMessage::NewAddress(address) = message
                && let Some(ip) = address_of(&address)
            {
                let pair = vec![ip.to_string().into(), address.header.prefix_len.into()];
                addresses.push((address.header.index, Value::Array(pair)));
            }
        }
    }
    let mut neighbours: Vec<(u32, Value)> = Vec::new();
    if needs.neighbours {
        let request = RouteNetlinkMessage::GetNeighbour(NeighbourMessage::default());
        for message in dump(&socket, request)? {
            if let RouteNetlinkMessage::NewNeighbour(neighbour) = message {
                let destination =
                    neighbour
                        .attributes
                        .iter()
                        .find_map(|attribute| match attribute {
                            NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => {
                                Some(ip.to_string())
                            }
                            NeighbourAttribute::Destination(NeighbourAddress::Inet6(ip)) => {
                                Some(ip.to_string())
                            }
                            _ => None,
                        });
                if let Some(destination) = destination {
                    neighbours.push((neighbour.header.ifindex, destination.into()));
                }
            }
        }
    }
    let indexes: Vec<u32> = links.iter().map(index_of).collect();
    for (link, index) in links.iter_mut().zip(&indexes) {
        let of = |pairs: &[(u32, Value)]| {
            Value::Array(
                pairs
                    .iter()
                    .filter(|(at, _)| at == index)
                    .map(|(_, value)| value.clone())
                    .collect(),
            )
        };
        let ports = indexes
            .iter()
            .zip(&controllers)
            .filter(|(_, controller)| **controller == Some(*index))
            .map(|(port, _)| Value::from(*port))
            .collect();
        link.settings.push(("ipaddr", of(&addresses)));
        link.settings.push(("neighbours", of(&neighbours)));
        link.settings.push(("ports", Value::Array(ports)));
    }
    Ok(links)
}

fn index_of(link: &Link) -> u32 {
    link.settings
        .iter()
        .find(|(name, _)| *name == "index")
        .and_then(|(_, index)| index.as_u64())
        .and_then(|index| u32::try_from(index).ok())
        .unwrap_or_default()
}

/// An address message's address: `IFA_ADDRESS`, or `IFA_LOCAL` without it.
fn address_of(message: &AddressMessage) -> Option<IpAddr> {
    let find = |local: bool| {
        message
            .attributes
            .iter()
            .find_map(|attribute| match attribute {
                AddressAttribute::Address(ip) if !local => Some(*ip),
                AddressAttribute::Local(ip) if local => Some(*ip),
                _ => None,
            })
    };
    find(false).or_else(|| find(true))
}

/// A link's settings, and the index of the interface it is a port of (`IFLA_MASTER`).
fn settings(message: LinkMessage) -> (Link, Option<u32>) {
    let header = &message.header;
    let mut name = String::new();
    let mut controller = None;
    let mut settings: Vec<(&'static str, Value)> = vec![
        ("family", u8::from(header.interface_family).into()),
        ("index", header.index.into()),
        ("flags", header.flags.bits().into()),
        ("ifi_type", u16::from(header.link_layer_type).into()),
        ("ipdb_scope", "system".into()),
        ("ipdb_priority", 0.into()),
        ("kind", Value::Nil),
        ("qdisc", Value::Nil),
        ("address", Value::Nil),
        ("broadcast", Value::Nil),
    ];
    for attribute in message.attributes {
        let setting: (&'static str, Value) = match attribute {
            LinkAttribute::IfName(ifname) => {
                name = ifname.clone();
                ("ifname", ifname.into())
            }
            LinkAttribute::Mtu(mtu) => ("mtu", mtu.into()),
            LinkAttribute::TxQueueLen(len) => ("txqlen", len.into()),
            LinkAttribute::OperState(state) => ("operstate", operstate(state)),
            LinkAttribute::Group(group) => ("group", group.into()),
            LinkAttribute::CarrierChanges(changes) => ("carrier_changes", changes.into()),
            LinkAttribute::Promiscuity(count) => ("promiscuity", count.into()),
            LinkAttribute::Mode(mode) => ("linkmode", u8::from(mode).into()),
            LinkAttribute::Broadcast(bytes) => ("broadcast", hardware(&bytes).into()),
            LinkAttribute::Address(bytes) => ("address", hardware(&bytes).into()),
            LinkAttribute::NumTxQueues(count) => ("num_tx_queues", count.into()),
            LinkAttribute::NumRxQueues(count) => ("num_rx_queues", count.into()),
            LinkAttribute::Qdisc(qdisc) => ("qdisc", qdisc.into()),
            LinkAttribute::Carrier(carrier) => ("carrier", carrier.into()),
            LinkAttribute::Controller(index) => {
                controller = Some(index);
                continue;
            }
            LinkAttribute::LinkInfo(infos) => match infos.iter().find_map(|info| match info {
                LinkInfo::Kind(kind) => Some(kind.to_string()),
                _ => None,
            }) {
                Some(kind) => ("kind", kind.into()),
                None => continue,
            },
            _ => continue,
        };
        match settings.iter_mut().find(|(name, _)| *name == setting.0) {
            Some(slot) => slot.1 = setting.1,
            None => settings.push(setting),
        }
    }
    (Link { name, settings }, controller)
}

/// `IF_OPER_*` as pyroute2 names it.
fn operstate(state: State) -> Value {
    match state {
        State::Unknown => "UNKNOWN".into(),
        State::NotPresent => "NOTPRESENT".into(),
        State::Down => "DOWN".into(),
        State::LowerLayerDown => "LOWERLAYERDOWN".into(),
        State::Testing => "TESTING".into(),
        State::Dormant => "DORMANT".into(),
        State::Up => "UP".into(),
        State::Other(other) => other.into(),
        _ => "UNKNOWN".into(),
    }
}

/// A hardware address as `aa:bb:cc:dd:ee:ff`.
fn hardware(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The messages of one rtnetlink dump.
pub(crate) fn dump(
    socket: &netlink_sys::Socket,
    request: RouteNetlinkMessage,
) -> Result<Vec<RouteNetlinkMessage>, String> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let mut message = NetlinkMessage::new(header, request.into());
    message.finalize();
    let mut bytes = vec![0; message.buffer_len()];
    message.serialize(&mut bytes);
    socket
        .send(&bytes, 0)
        .map_err(|err| format!("cannot ask rtnetlink: {err}"))?;
    let mut messages = Vec::new();
    loop {
        let (answer, _) = socket
            .recv_from_full()
            .map_err(|err| format!("cannot read rtnetlink's answer: {err}"))?;
        let mut at = 0;
        while at < answer.len() {
            let message = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&answer[at..])
                .map_err(|err| format!("an unreadable rtnetlink answer: {err}"))?;
            let length = message.header.length as usize;
            match message.payload {
                NetlinkPayload::Done(_) => return Ok(messages),
                NetlinkPayload::Error(err) => {
                    return Err(format!("rtnetlink refused a dump: {err}"));
                }
                NetlinkPayload::InnerMessage(inner) => messages.push(inner),
                _ => {}
            }
            if length == 0 {
                return Err("an rtnetlink answer of length 0".into());
            }
            at += length;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_read_with_pyroute2s_names_and_shapes() {
        let links = links(Needs {
            addresses: true,
            neighbours: true,
        })
        .expect("rtnetlink answers");
        let lo = links.iter().find(|link| link.name == "lo").expect("lo");
        let get = |name: &str| {
            lo.settings
                .iter()
                .find(|(setting, _)| *setting == name)
                .map(|(_, value)| value.clone())
                .unwrap_or_else(|| panic!("lo has no {name}: {:?}", lo.settings))
        };
        assert_eq!(get("ifname"), Value::from("lo"));
        assert_eq!(get("ifi_type"), Value::from(772));
        assert_eq!(get("address"), Value::from("00:00:00:00:00:00"));
        assert_eq!(get("kind"), Value::Nil);
        assert!(get("flags").as_u64().unwrap() & 1 == 1, "IFF_UP");
        assert_eq!(get("operstate"), Value::from("UNKNOWN"));
        let ipaddr = get("ipaddr");
        assert!(
            ipaddr
                .as_array()
                .unwrap()
                .contains(&Value::Array(vec!["127.0.0.1".into(), 8.into()])),
            "{ipaddr}"
        );
        for name in super::super::network_settings::ATTRS {
            get(name);
        }
    }

    #[test]
    fn hardware_addresses_are_lowercase_hex_pairs() {
        assert_eq!(hardware(&[0x02, 0xfc, 0, 0xab]), "02:fc:00:ab");
    }
}
