//! Host and port in one option value, as Salt reads them.

/// Salt's `parse_host_port`, for the minion's `master` and syslog URLs: `host`, `host:port`,
/// `[v6]:port` or a bare IPv6 address (a scope may name its interface, `fe80::1%eth0`); a host that is not an
/// address must be a host name (letters, digits, `.`, `-`, `_`). The host comes back as an
/// address in its short form, an IPv6 scope as the interface's index (what a socket address
/// takes), and no port when none is given; `None` for anything else, a port of 0 included.
pub fn parse_host_port(text: &str) -> Option<(String, Option<u16>)> {
    let port = |given: &str| given.parse::<u16>().ok().filter(|port| *port > 0);
    let (host, port) = match text.strip_prefix('[') {
        Some(bracketed) => {
            let (host, after) = bracketed.rsplit_once(']')?;
            let port = match after {
                "" => None,
                after => Some(port(after.strip_prefix(':')?)?),
            };
            return Some((ipv6(host)?, port));
        }
        None if text.matches(':').count() == 1 => {
            let (host, given) = text.split_once(':')?;
            (host, Some(port(given)?))
        }
        None => (text, None),
    };
    if let Ok(address) = host.parse::<std::net::Ipv4Addr>() {
        return Some((address.to_string(), port));
    }
    if host.contains(':') {
        return Some((ipv6(host)?, port));
    }
    let name = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b".-_".contains(&byte));
    name.then(|| (host.to_owned(), port))
}

/// An IPv6 address, with its scope (`%eth0`, `%2`) as an interface index.
fn ipv6(text: &str) -> Option<String> {
    let (address, scope) = match text.split_once('%') {
        Some((address, scope)) => (address, Some(scope)),
        None => (text, None),
    };
    let address: std::net::Ipv6Addr = address.parse().ok()?;
    match scope {
        None => Some(address.to_string()),
        Some(scope) => {
            let index = match scope.parse::<u32>() {
                Ok(index) => index,
                Err(_) => nix::net::if_::if_nametoindex(scope).ok()?,
            };
            Some(format!("{address}%{index}"))
        }
    }
}
