//! A daemon's log sent to syslog, as Salt does when `log_file` is a URL:
//! `file:///dev/log`, `udp://host:514` or `tcp://host:514`, each with an optional last path
//! component naming the facility (`file:///dev/log/LOG_DAEMON`, `udp://host/LOG_LOCAL0`;
//! `LOG_USER` without one).
//!
//! Each line goes out as `<PRI>` and the log file's line: one datagram (unix or UDP), or a line
//! ended by a newline on TCP. A [`Sender`] runs on the thread of a log queue, so that a syslog
//! that is slow or away costs log lines, counted and told, never the daemon's threads.

use std::io::Write;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::bail;

// Facilities by name, as the syslog returner takes them.
use crate::returners::syslog::FACILITIES;

const LOG_USER: u8 = 1;

/// Syslog's standard port, the default of `udp://` and `tcp://`.
const SYSLOG_PORT: u16 = 514;

/// Where a daemon's log goes, settled at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LogTarget {
    File(PathBuf),
    Syslog(Syslog),
}

impl LogTarget {
    /// The target `raw`, the value of `option`: syslog for a URL, else the file `file()` makes of
    /// it (a relative path is under `root_dir`, a URL never is).
    pub(crate) fn parse(
        option: &str,
        raw: Option<&str>,
        file: impl FnOnce() -> anyhow::Result<PathBuf>,
    ) -> anyhow::Result<Self> {
        match raw.map(|raw| Syslog::parse(option, raw)).transpose()? {
            Some(Some(syslog)) => Ok(Self::Syslog(syslog)),
            _ => Ok(Self::File(file()?)),
        }
    }
}

/// A syslog to send a daemon's log to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Syslog {
    address: Address,
    facility: u8,
    /// The URL as configured, for messages.
    url: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Address {
    /// A unix socket: datagrams, or a stream when the socket is one.
    Unix(PathBuf),
    Udp(String, u16),
    Tcp(String, u16),
}

fn facility(option: &str, url: &str, name: &str) -> anyhow::Result<u8> {
    let upper = name.to_ascii_uppercase();
    match FACILITIES.iter().find(|(known, _)| *known == upper) {
        Some((_, value)) => Ok(u8::try_from(value >> 3).unwrap_or(LOG_USER)),
        None => {
            let names: Vec<&str> = FACILITIES.iter().map(|(name, _)| *name).collect();
            bail!(
                "{option} {url}: unknown syslog facility {name}; end the URL with one of {}, or with none for LOG_USER",
                names.join(", ")
            )
        }
    }
}

impl Syslog {
    /// `raw` as a syslog URL; `None` when it is a file path (it has no `scheme://`).
    fn parse(option: &str, raw: &str) -> anyhow::Result<Option<Self>> {
        let Some((scheme, rest)) = raw.split_once("://") else {
            return Ok(None);
        };
        let is_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
        if !is_scheme {
            return Ok(None);
        }
        let (address, facility) = match scheme.to_ascii_lowercase().as_str() {
            "file" => {
                let Some(path) = rest.strip_prefix('/') else {
                    bail!(
                        "{option} {raw}: a file:// URL names a socket by its absolute path; write file:///<path>, e.g. file:///dev/log"
                    );
                };
                let path = PathBuf::from(format!("/{path}"));
                // A last component LOG_… is the facility, under the socket's path.
                match path.file_name().and_then(|name| name.to_str()) {
                    Some(name) if name.to_ascii_uppercase().starts_with("LOG_") => {
                        let facility = facility(option, raw, name)?;
                        let socket = path.parent().unwrap_or(&path).to_owned();
                        (Address::Unix(socket), facility)
                    }
                    Some(_) => (Address::Unix(path), LOG_USER),
                    None => bail!(
                        "{option} {raw}: names no socket; write file:///<path>, e.g. file:///dev/log"
                    ),
                }
            }
            kind @ ("udp" | "tcp") => {
                let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
                let (host, port) = crate::config::parse_host_port(authority)
                    .map(|(host, port)| (host, port.unwrap_or(SYSLOG_PORT)))
                    .ok_or_else(|| {
                    anyhow::anyhow!(
                        "{option} {raw}: cannot read a host and port in {authority:?}; write {kind}://<host>[:<port>][/<facility>]"
                    )
                })?;
                let path = path.trim_end_matches('/');
                let facility = if path.is_empty() {
                    LOG_USER
                } else {
                    facility(option, raw, path)?
                };
                let address = if kind == "udp" {
                    Address::Udp(host, port)
                } else {
                    Address::Tcp(host, port)
                };
                (address, facility)
            }
            _ => bail!(
                "{option} {raw}: unsupported scheme {scheme}://; use tcp://, udp:// or file:// for syslog, or a file path"
            ),
        };
        Ok(Some(Self {
            address,
            facility,
            url: raw.to_owned(),
        }))
    }

    /// The URL as configured.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The `<PRI>` of a line at `level`: the facility and syslog's severity of the level
    /// (trace is debug's, syslog having nothing finer).
    pub(crate) fn priority(&self, level: &tracing::Level) -> u8 {
        let severity = match *level {
            tracing::Level::ERROR => 3,
            tracing::Level::WARN => 4,
            tracing::Level::INFO => 6,
            tracing::Level::DEBUG | tracing::Level::TRACE => 7,
        };
        self.facility * 8 + severity
    }
}

/// The longest datagram sent: a longer line is cut, rather than refused by the socket.
const MAX_DATAGRAM: usize = 60 * 1024;

/// How long a connect or a send may take before the line is given up.
const SEND_TIMEOUT: Duration = Duration::from_secs(1);

/// The first wait before connecting again after a failure; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

enum Connection {
    UnixDatagram(UnixDatagram),
    UnixStream(UnixStream),
    Udp(UdpSocket),
    Tcp(TcpStream),
}

/// Sends lines to a [`Syslog`], connecting when needed. While it cannot, lines are given up at
/// once and it tries again only after a wait that grows: an absent syslog costs no busy loop.
pub(crate) struct Sender {
    syslog: Syslog,
    connection: Option<Connection>,
    retry_at: Option<Instant>,
    backoff: Duration,
}

impl Sender {
    pub(crate) fn new(syslog: Syslog) -> Self {
        Self {
            syslog,
            connection: None,
            retry_at: None,
            backoff: FIRST_BACKOFF,
        }
    }

    /// Sends one line (`<PRI>` and the text, ending in a newline); false when it was given up.
    pub(crate) fn send(&mut self, line: &[u8]) -> bool {
        if self.connection.is_none() && self.retry_at.is_some_and(|at| Instant::now() < at) {
            return false;
        }
        // A syslog restarted since the last line left a stale connection: one more try on a
        // new one.
        let mut last_error = None;
        for _ in 0..2 {
            let sent = match self.connection.as_mut() {
                Some(connection) => send_on(connection, line),
                None => match self.connect() {
                    Ok(mut connection) => {
                        let sent = send_on(&mut connection, line);
                        self.connection = Some(connection);
                        sent
                    }
                    Err(err) => {
                        last_error = Some(err);
                        break;
                    }
                },
            };
            match sent {
                Ok(()) => {
                    if self.retry_at.take().is_some() {
                        tracing::info!("sending log lines to syslog at {} again", self.syslog.url);
                    }
                    self.backoff = FIRST_BACKOFF;
                    return true;
                }
                Err(err) => {
                    self.connection = None;
                    last_error = Some(err);
                }
            }
        }
        let first = self.retry_at.is_none();
        self.retry_at = Some(Instant::now() + self.backoff);
        if first && let Some(err) = last_error {
            tracing::warn!(
                "cannot send log lines to syslog at {}: {err}; dropping them until it takes them again",
                self.syslog.url
            );
        }
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        false
    }

    fn connect(&self) -> std::io::Result<Connection> {
        let connection = match &self.syslog.address {
            Address::Unix(path) => {
                let datagram = UnixDatagram::unbound()?;
                match datagram.connect(path) {
                    Ok(()) => {
                        datagram.set_write_timeout(Some(SEND_TIMEOUT))?;
                        Connection::UnixDatagram(datagram)
                    }
                    // A stream socket (rsyslog's can be), as Python's handler falls back to.
                    Err(err) if err.raw_os_error() == Some(libc::EPROTOTYPE) => {
                        let stream = UnixStream::connect(path)?;
                        stream.set_write_timeout(Some(SEND_TIMEOUT))?;
                        Connection::UnixStream(stream)
                    }
                    Err(err) => return Err(err),
                }
            }
            Address::Udp(host, port) => {
                let address = resolve(host, *port)?;
                let local: SocketAddr = if address.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let socket = UdpSocket::bind(local)?;
                socket.connect(address)?;
                socket.set_write_timeout(Some(SEND_TIMEOUT))?;
                Connection::Udp(socket)
            }
            Address::Tcp(host, port) => {
                let stream = TcpStream::connect_timeout(&resolve(host, *port)?, SEND_TIMEOUT)?;
                stream.set_write_timeout(Some(SEND_TIMEOUT))?;
                Connection::Tcp(stream)
            }
        };
        Ok(connection)
    }
}

fn resolve(host: &str, port: u16) -> std::io::Result<SocketAddr> {
    (host, port).to_socket_addrs()?.next().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{host} has no address"),
        )
    })
}

/// A datagram carries one line without its newline; a stream keeps the newline that ends it.
fn send_on(connection: &mut Connection, line: &[u8]) -> std::io::Result<()> {
    let datagram = line.strip_suffix(b"\n").unwrap_or(line);
    let datagram = &datagram[..datagram.len().min(MAX_DATAGRAM)];
    match connection {
        Connection::UnixDatagram(socket) => socket.send(datagram).map(drop),
        Connection::Udp(socket) => socket.send(datagram).map(drop),
        // A stream cut mid-line would run into the next one: the caller drops the connection
        // on any error.
        Connection::UnixStream(stream) => stream.write_all(line),
        Connection::Tcp(stream) => stream.write_all(line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(raw: &str) -> anyhow::Result<Option<(Address, u8)>> {
        Ok(Syslog::parse("log_file", raw)?.map(|syslog| (syslog.address, syslog.facility)))
    }

    #[test]
    fn urls_are_read_as_salt_reads_them() {
        let unix = |path: &str| Address::Unix(PathBuf::from(path));
        let udp = |host: &str, port| Address::Udp(host.into(), port);
        for (raw, expected) in [
            ("/var/log/salt/master", None),
            ("log/master", None),
            ("file:///dev/log", Some((unix("/dev/log"), 1))),
            ("file:///dev/log/LOG_DAEMON", Some((unix("/dev/log"), 3))),
            ("file:///dev/log/log_local7", Some((unix("/dev/log"), 23))),
            ("udp://localhost", Some((udp("localhost", 514), 1))),
            (
                "udp://10.0.0.1:5140/LOG_LOCAL0",
                Some((udp("10.0.0.1", 5140), 16)),
            ),
            ("udp://[::1]:5140/", Some((udp("::1", 5140), 1))),
            (
                "tcp://logs.example.com/LOG_USER",
                Some((Address::Tcp("logs.example.com".into(), 514), 1)),
            ),
        ] {
            assert_eq!(parsed(raw).unwrap(), expected, "{raw}");
        }
    }

    #[test]
    fn bad_urls_are_refused_naming_the_option_and_the_fix() {
        for (raw, message) in [
            (
                "udp://localhost/LOG_NOPE",
                "unknown syslog facility LOG_NOPE; end the URL with one of LOG_KERN, LOG_USER,",
            ),
            ("udp://localhost/daemon", "unknown syslog facility daemon;"),
            (
                "file:///dev/log/LOG_NOPE",
                "unknown syslog facility LOG_NOPE;",
            ),
            (
                "tcp://localhost:99999",
                "cannot read a host and port in \"localhost:99999\"; write tcp://<host>[:<port>][/<facility>]",
            ),
            ("udp://:514", "cannot read a host and port"),
            ("file://dev/log", "write file:///<path>"),
            (
                "http://logs/",
                "unsupported scheme http://; use tcp://, udp:// or file:// for syslog, or a file path",
            ),
        ] {
            let err = parsed(raw).unwrap_err().to_string();
            assert!(err.starts_with(&format!("log_file {raw}: ")), "{err}");
            assert!(err.contains(message), "{raw}: {err}");
        }
    }

    /// A stream keeps each line's newline; a unix socket that is a stream is written as one.
    #[test]
    fn streams_carry_lines_ended_by_a_newline() {
        use std::io::Read;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stream.sock");
        let unix = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        for (url, accept) in [
            (
                format!("file://{}", path.display()),
                Box::new(|| Box::new(unix.accept().unwrap().0) as Box<dyn Read>)
                    as Box<dyn Fn() -> Box<dyn Read>>,
            ),
            (
                format!("tcp://127.0.0.1:{port}/LOG_DAEMON"),
                Box::new(|| Box::new(tcp.accept().unwrap().0) as Box<dyn Read>),
            ),
        ] {
            let mut sender = Sender::new(Syslog::parse("log_file", &url).unwrap().unwrap());
            assert!(sender.send(b"<30>one\n"), "{url}");
            assert!(sender.send(b"<30>two\n"), "{url}");
            drop(sender);
            let mut received = String::new();
            accept().read_to_string(&mut received).unwrap();
            assert_eq!(received, "<30>one\n<30>two\n", "{url}");
        }
    }

    #[test]
    fn a_syslog_away_costs_one_try_per_wait_not_one_per_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.sock");
        let mut sender = Sender::new(
            Syslog::parse("log_file", &format!("file://{}", path.display()))
                .unwrap()
                .unwrap(),
        );
        assert!(!sender.send(b"<14>lost\n"));
        // Bound now, but the wait since the failure is not over: given up without a try.
        let socket = UnixDatagram::bind(&path).unwrap();
        assert!(!sender.send(b"<14>lost too\n"));
        sender.retry_at = Some(Instant::now());
        assert!(sender.send(b"<14>line\n"));
        let mut buf = [0; 64];
        let n = socket.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"<14>line");
    }
}
