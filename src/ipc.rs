//! The sockets a bus lives on: Unix sockets in `sock_dir`, or loopback TCP ports when
//! `ipc_mode: tcp`, behind one stream and one listener type.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use std::os::fd::AsRawFd as _;

use nix::sys::socket::{AddressFamily, Backlog, SockFlag, SockType, UnixAddr};
use nix::sys::stat::Mode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

/// The longest path a Unix socket can be bound or reached at: `sun_path` holds 108 bytes, the
/// terminating NUL among them.
pub const MAX_SOCKET_PATH: usize = 107;

/// Where one socket of a bus is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// A Unix socket file.
    Unix(PathBuf),
    /// A TCP port on 127.0.0.1, where Salt always binds its `ipc_mode: tcp` sockets.
    Tcp(u16),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "{}", path.display()),
            Endpoint::Tcp(port) => write!(f, "tcp://127.0.0.1:{port}"),
        }
    }
}

/// The two sockets of one bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusAddress {
    /// Where subscribers read events.
    pub publish: Endpoint,
    /// Where senders write events.
    pub pull: Endpoint,
}

/// A connected bus socket.
#[derive(Debug)]
pub enum Stream {
    /// A Unix socket connection.
    Unix(UnixStream),
    /// A loopback TCP connection.
    Tcp(TcpStream),
}

impl Endpoint {
    /// Connects, giving up after `timeout` (Salt's clients use one second).
    pub async fn connect(&self, timeout: Duration) -> io::Result<Stream> {
        let attempt = async {
            match self {
                Endpoint::Unix(path) => UnixStream::connect(path).await.map(Stream::Unix),
                Endpoint::Tcp(port) => {
                    let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, *port)).await?;
                    // Asked once connected, so that the listener checked is the one reached.
                    if !may_use_tcp_port(*port) {
                        return Err(io::ErrorKind::PermissionDenied.into());
                    }
                    stream.set_nodelay(true)?;
                    Ok(Stream::Tcp(stream))
                }
            }
        };
        tokio::time::timeout(timeout, attempt)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))?
    }

    /// Binds a listening socket. A Unix socket file left behind by a daemon that is gone is
    /// replaced; one that still answers is left alone and binding fails, so two daemons never
    /// steal each other's bus. `mode` is applied before the socket becomes reachable.
    pub async fn bind(&self, mode: u32) -> io::Result<Listener> {
        match self {
            Endpoint::Unix(path) => {
                if path.exists() || std::fs::symlink_metadata(path).is_ok() {
                    if self.connect(Duration::from_millis(500)).await.is_ok() {
                        return Err(io::Error::new(
                            io::ErrorKind::AddrInUse,
                            format!("{} is in use by a running daemon", path.display()),
                        ));
                    }
                    std::fs::remove_file(path)?;
                }
                let mode = Mode::from_bits_truncate(mode as libc::mode_t);
                let socket = nix::sys::socket::socket(
                    AddressFamily::Unix,
                    SockType::Stream,
                    SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
                    None,
                )?;
                // On Linux the socket file takes the mode of the socket it is bound from, so it
                // is never reachable with the umask's wider mode in between.
                nix::sys::stat::fchmod(&socket, mode)?;
                nix::sys::socket::bind(socket.as_raw_fd(), &UnixAddr::new(path.as_path())?)?;
                let file = SocketFile(path.clone());
                // The mode given at bind time is narrowed by the umask; set it exactly, as Salt
                // does, without following a link someone may have put in the socket's place.
                nix::sys::stat::fchmodat(
                    nix::fcntl::AT_FDCWD,
                    path.as_path(),
                    mode,
                    nix::sys::stat::FchmodatFlags::NoFollowSymlink,
                )?;
                nix::sys::socket::listen(&socket, Backlog::MAXCONN)?;
                let listener = UnixListener::from_std(socket.into())?;
                Ok(Listener::Unix(listener, file))
            }
            Endpoint::Tcp(port) => {
                let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, *port)).await?;
                Ok(Listener::Tcp(listener))
            }
        }
    }

    /// The socket file, for Unix endpoints.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Endpoint::Unix(path) => Some(path),
            Endpoint::Tcp(_) => None,
        }
    }
}

/// A listening bus socket. A Unix socket file is removed when the listener is dropped.
#[derive(Debug)]
pub enum Listener {
    /// A Unix socket and its file.
    Unix(UnixListener, SocketFile),
    /// A loopback TCP listener.
    Tcp(TcpListener),
}

/// A socket file this process bound, removed when dropped (also when binding fails half-way).
#[derive(Debug)]
pub struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Who is on the other end of an accepted connection, for log lines.
#[derive(Debug, Clone)]
pub struct Peer(String);

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Listener {
    /// Accepts the next connection.
    pub async fn accept(&self) -> io::Result<(Stream, Peer)> {
        match self {
            Listener::Unix(listener, _) => {
                let (stream, _) = listener.accept().await?;
                let peer = match stream.peer_cred().ok().and_then(|creds| creds.pid()) {
                    Some(pid) => format!("pid {pid}"),
                    None => "unknown process".to_owned(),
                };
                Ok((Stream::Unix(stream), Peer(peer)))
            }
            Listener::Tcp(listener) => loop {
                let (stream, addr): (TcpStream, SocketAddr) = listener.accept().await?;
                let local = stream.local_addr()?;
                // A loopback port is open to every local user, where a Unix socket has a mode:
                // only root and the daemon's own user may use it, as with the socket files.
                let owner = tokio::task::spawn_blocking(move || tcp_peer_uid(addr, local))
                    .await
                    .ok()
                    .flatten();
                match owner {
                    Some(uid) if uid == 0 || uid == nix::unistd::geteuid().as_raw() => {
                        stream.set_nodelay(true)?;
                        return Ok((Stream::Tcp(stream), Peer(format!("{addr} (uid {uid})"))));
                    }
                    owner => REFUSALS.note(|refused| {
                        let who = owner.map_or("an unknown user".to_owned(), |uid| format!("uid {uid}"));
                        tracing::warn!(
                            "refused a connection to tcp://{local} from {addr} ({who}), {refused} in all: with ipc_mode: tcp only root and the daemon's user may use its sockets"
                        );
                    }),
                }
            },
        }
    }
}

/// Refused connections, logged at most once a second so that a local user cannot flood the log.
static REFUSALS: Refusals = Refusals {
    count: std::sync::atomic::AtomicU64::new(0),
    last_logged: std::sync::Mutex::new(None),
};

struct Refusals {
    count: std::sync::atomic::AtomicU64,
    last_logged: std::sync::Mutex<Option<std::time::Instant>>,
}

impl Refusals {
    /// Counts a refusal and calls `log` with the count so far, unless it logged within a second.
    fn note(&self, log: impl FnOnce(u64)) {
        let refused = self
            .count
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let mut last = self.last_logged.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
            *last = Some(std::time::Instant::now());
            log(refused);
        }
    }
}

/// The user a daemon of this configuration runs as (`user:`), whose loopback ports clients may
/// trust besides root's and their own; set once by the command from its configuration.
static DAEMON_USER: std::sync::OnceLock<u32> = std::sync::OnceLock::new();

/// Tells the tcp-mode client side which user the daemons run as (the `user` option).
pub fn trust_daemon_user(uid: u32) {
    let _ = DAEMON_USER.set(uid);
}

/// Whether this process may use a daemon's loopback port: one opened by root, by this user or by
/// the configured daemon user. Any other local user could have taken the port while the daemon
/// was down, to collect what clients send (a root client sends the master's root key). Asked
/// once connected: a listener the kernel does not report (gone again, or hidden), or a kernel
/// that cannot be asked, means the port is not used.
fn may_use_tcp_port(port: u16) -> bool {
    let me = nix::unistd::geteuid().as_raw();
    let listening = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port);
    match socket_owner(listening, None) {
        Ok(None) => {
            tracing::warn!("no listener on tcp://{listening} is known to the kernel; not using it");
            false
        }
        Ok(Some((owner, _))) => owner == 0 || owner == me || DAEMON_USER.get() == Some(&owner),
        Err(err) => {
            tracing::warn!("cannot tell who owns tcp://{listening}: {err}; not using it");
            false
        }
    }
}

/// The user owning the other end of a loopback TCP connection: the socket whose address is our
/// peer's and whose remote address is ours. Only a socket a process still holds counts: the
/// kernel reports one its owner has closed as root's, so a sender that closes before it is
/// looked up cannot be told and is refused.
fn tcp_peer_uid(peer: SocketAddr, local: SocketAddr) -> Option<u32> {
    socket_owner(peer, Some(local))
        .ok()
        .flatten()
        .filter(|(_, inode)| *inode != 0)
        .map(|(uid, _)| uid)
}

/// The owner and inode of the TCP socket at `address` connected to `remote` (or listening, when
/// `remote` is `None`), asked of the kernel by its exact addresses (`sock_diag`), as IPv4 and
/// then as IPv4-mapped IPv6.
fn socket_owner(address: SocketAddr, remote: Option<SocketAddr>) -> io::Result<Option<(u32, u32)>> {
    use netlink_packet_core::{NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload};
    use netlink_packet_sock_diag::SockDiagMessage;
    use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
    use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
    use netlink_sys::protocols::NETLINK_SOCK_DIAG;

    let remote = remote.unwrap_or_else(|| SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0));
    let mapped = |addr: SocketAddr| match addr.ip() {
        std::net::IpAddr::V4(v4) => SocketAddr::new(v4.to_ipv6_mapped().into(), addr.port()),
        std::net::IpAddr::V6(_) => addr,
    };
    let socket = netlink_sys::Socket::new(NETLINK_SOCK_DIAG)?;
    socket.connect(&netlink_sys::SocketAddr::new(0, 0))?;
    let shapes = [
        (AF_INET, canonical(address), canonical(remote)),
        (
            AF_INET6,
            mapped(canonical(address)),
            mapped(canonical(remote)),
        ),
    ];
    // A socket bound to a device (`SO_BINDTODEVICE`) is found only by that device's index.
    let loopback = nix::net::if_::if_nametoindex("lo").unwrap_or(0);
    let lookups = shapes
        .into_iter()
        .flat_map(|shape| [(shape, 0), (shape, loopback)]);
    for ((family, address, remote), interface_id) in lookups {
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST;
        let mut request = NetlinkMessage::new(
            header,
            SockDiagMessage::InetRequest(InetRequest {
                family,
                protocol: IPPROTO_TCP,
                extensions: ExtensionFlags::empty(),
                states: StateFlags::all(),
                socket_id: SocketId {
                    source_port: address.port(),
                    destination_port: remote.port(),
                    source_address: address.ip(),
                    destination_address: remote.ip(),
                    interface_id,
                    cookie: [0xff; 8],
                },
            })
            .into(),
        );
        request.finalize();
        let mut bytes = vec![0; request.buffer_len()];
        request.serialize(&mut bytes);
        socket.send(&bytes, 0)?;
        let mut answer = Vec::with_capacity(4096);
        socket.recv(&mut answer, 0)?;
        let answer = NetlinkMessage::<SockDiagMessage>::deserialize(&answer)
            .map_err(|err| io::Error::other(format!("an unreadable sock_diag answer: {err}")))?;
        // The kernel answers a socket it does not know with an error message.
        if let NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(response)) =
            answer.payload
        {
            return Ok(Some((response.header.uid, response.header.inode)));
        }
    }
    Ok(None)
}

/// An address with IPv4-mapped IPv6 addresses as IPv4.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

impl Stream {
    /// Reads what has already arrived, without waiting: `WouldBlock` when nothing has.
    pub fn try_read_buf(&self, buf: &mut bytes::BytesMut) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.try_read_buf(buf),
            Stream::Tcp(s) => s.try_read_buf(buf),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
