//! The link over TCP and TLS 1.3 with raw public keys (RFC 7250), using rustls.
//!
//! There are no certificates and no authorities: each side presents its public key and proves it
//! holds the private key in the handshake. The master lets any key finish the handshake (what a
//! key may do is decided by the key store, on the id and key the session reports); the minion
//! checks the master's key against the one it pinned (`minion_master.pub`, or `master_finger`
//! before the first connection).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::gate::Gate;
use super::{Acceptor, Connector, LinkError, Session, Trust};
use crate::keys::{KeyPair, fingerprint, public_pem};

/// How long a minion waits for the master to connect and complete the handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the master lets a peer take to complete the handshake: a few round trips, so a
/// silent peer does not hold its place at the gate for long.
const ACCEPT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Sessions handed over by the listener and not yet taken by the master.
const READY_QUEUE: usize = 64;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn algorithms() -> WebPkiSupportedAlgorithms {
    rustls::crypto::ring::default_provider().signature_verification_algorithms
}

fn check_key(cert: &CertificateDer<'_>) -> Result<(), rustls::Error> {
    // The handshake signature check that follows proves the key; an empty one cannot.
    if cert.as_ref().is_empty() {
        return Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::BadEncoding,
        ));
    }
    Ok(())
}

fn verify_signature(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    rustls::crypto::verify_tls13_signature_with_raw_key(
        message,
        &SubjectPublicKeyInfoDer::from(cert.as_ref()),
        dss,
        &algorithms(),
    )
}

fn tls12_refused() -> Result<HandshakeSignatureValid, rustls::Error> {
    Err(rustls::Error::PeerIncompatible(
        rustls::PeerIncompatible::Tls13RequiredForQuic,
    ))
}

/// The master's check of a minion's key: any key that proves itself.
#[derive(Debug)]
struct AnyMinionKey;

impl ClientCertVerifier for AnyMinionKey {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        check_key(end_entity).map(|()| ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        tls12_refused()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        algorithms().supported_schemes()
    }

    fn requires_raw_public_keys(&self) -> bool {
        true
    }
}

/// What a minion trusts as its master's key.
#[derive(Debug, Clone)]
pub enum MasterPin {
    /// The key saved from an earlier connection (PEM).
    Key(String),
    /// `master_finger`: the fingerprint the key must have, with the `hash_type` it is in.
    Finger {
        /// The expected fingerprint.
        finger: String,
        /// Its hash.
        hash_type: String,
    },
    /// No pin yet: trust on first use.
    FirstUse,
}

#[derive(Debug)]
struct PinnedMaster {
    pin: MasterPin,
    /// The key the master presented in the last handshake.
    seen: Mutex<Option<String>>,
    /// Whether the last handshake failed because that key was not the pinned one.
    mismatched: std::sync::atomic::AtomicBool,
}

impl ServerCertVerifier for PinnedMaster {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        check_key(end_entity)?;
        let presented = public_pem(end_entity.as_ref());
        let trusted = match &self.pin {
            MasterPin::Key(pinned) => {
                crate::keys::public_der(pinned).as_deref() == Some(end_entity.as_ref())
            }
            MasterPin::Finger { finger, hash_type } => {
                fingerprint(&presented, hash_type).is_some_and(|seen| seen == *finger)
            }
            MasterPin::FirstUse => true,
        };
        *self.seen.lock().expect("not poisoned") = Some(presented);
        self.mismatched
            .store(!trusted, std::sync::atomic::Ordering::Relaxed);
        if trusted {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the master's public key is not the pinned one".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        tls12_refused()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        algorithms().supported_schemes()
    }

    fn requires_raw_public_keys(&self) -> bool {
        true
    }
}

fn peer_key(certificates: Option<&[CertificateDer<'static>]>) -> String {
    certificates
        .and_then(|certs| certs.first())
        .map(|cert| public_pem(cert.as_ref()))
        .unwrap_or_default()
}

/// The master's TLS listener.
#[derive(Debug)]
pub struct TlsListener {
    sessions: mpsc::Receiver<Session>,
}

impl TlsListener {
    /// Accepts on `listener`, completing handshakes in the background; a peer that fails its
    /// handshake is logged and dropped. Until the master trusts a session, it holds a place at
    /// `gate`, which bounds how many wait.
    pub fn new(listener: TcpListener, key: &KeyPair, keepalive: Duration, gate: Arc<Gate>) -> Self {
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("ring supports TLS 1.3")
            .with_client_cert_verifier(Arc::new(AnyMinionKey))
            .with_cert_resolver(Arc::new(
                rustls::server::AlwaysResolvesServerRawPublicKeys::new(key.certified()),
            ));
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let (ready, sessions) = mpsc::channel(READY_QUEUE);
        tokio::spawn(async move {
            loop {
                let (tcp, address) = tokio::select! {
                    _ = ready.closed() => return,
                    accepted = listener.accept() => match accepted {
                        Ok(accepted) => accepted,
                        Err(err) => {
                            tracing::warn!("cannot accept a minion connection: {err}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    },
                };
                // Closed at once: this address already has its share waiting.
                let Some(ticket) = gate.enter(address.ip()) else {
                    continue;
                };
                tokio::spawn(handshake(
                    acceptor.clone(),
                    tcp,
                    address,
                    ticket,
                    ready.clone(),
                    keepalive,
                ));
            }
        });
        Self { sessions }
    }
}

/// Completes one peer's handshake and hands its session over, unless the peer is too slow or the
/// gate evicts it first.
async fn handshake(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    address: SocketAddr,
    ticket: super::Ticket,
    ready: mpsc::Sender<Session>,
    keepalive: Duration,
) {
    let _ = tcp.set_nodelay(true);
    let peer = address.to_string();
    let evicted = ticket.evicted();
    let handshake = tokio::select! {
        _ = evicted.cancelled() => {
            tracing::debug!("closed a connection from {peer}: evicted before its handshake");
            return;
        }
        handshake = tokio::time::timeout(ACCEPT_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)) => handshake,
    };
    match handshake {
        Ok(Ok(stream)) => {
            ticket.handshake_done();
            let key = peer_key(stream.get_ref().1.peer_certificates());
            let session = Session::over(stream, peer, key, keepalive, Trust::Untrusted(ticket));
            let _ = ready.send(session).await;
        }
        // Per peer and cheap to cause: the gate reports floods, these are details.
        Ok(Err(err)) => {
            tracing::debug!("refused a connection from {peer}: handshake failed: {err}")
        }
        Err(_) => tracing::debug!(
            "refused a connection from {peer}: no handshake within {ACCEPT_HANDSHAKE_TIMEOUT:?}"
        ),
    }
}

impl Acceptor for TlsListener {
    async fn accept(&mut self) -> std::io::Result<Session> {
        self.sessions
            .recv()
            .await
            .ok_or_else(|| std::io::Error::other("the link listener stopped"))
    }
}

/// A minion's way to its master over TLS.
pub struct TlsDialer {
    address: String,
    connector: TlsConnector,
    verifier: Arc<PinnedMaster>,
    keepalive: Duration,
    source: Option<std::net::IpAddr>,
}

impl std::fmt::Debug for TlsDialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsDialer")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl TlsDialer {
    /// A connector to `host:port` with this minion's key, trusting the master as `pin` says.
    pub fn new(address: String, key: &KeyPair, pin: MasterPin, keepalive: Duration) -> Self {
        let verifier = Arc::new(PinnedMaster {
            pin,
            seen: Mutex::new(None),
            mismatched: std::sync::atomic::AtomicBool::new(false),
        });
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("ring supports TLS 1.3")
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_client_cert_resolver(Arc::new(
                rustls::client::AlwaysResolvesClientRawPublicKeys::new(key.certified()),
            ));
        Self {
            address,
            connector: TlsConnector::from(Arc::new(config)),
            verifier,
            keepalive,
            source: None,
        }
    }

    /// Connects from `source` (Salt's `source_address`) instead of the address the system picks.
    pub fn with_source(mut self, source: Option<std::net::IpAddr>) -> Self {
        self.source = source;
        self
    }

    async fn connect_tcp(&self, addresses: &[SocketAddr]) -> std::io::Result<TcpStream> {
        let Some(source) = self.source else {
            return TcpStream::connect(addresses).await;
        };
        let mut last = std::io::Error::new(
            std::io::ErrorKind::AddrNotAvailable,
            format!("no address of the master's family as source_address {source}"),
        );
        for address in addresses.iter().filter(|a| a.is_ipv4() == source.is_ipv4()) {
            let socket = if source.is_ipv4() {
                tokio::net::TcpSocket::new_v4()?
            } else {
                tokio::net::TcpSocket::new_v6()?
            };
            socket.bind(SocketAddr::new(source, 0))?;
            match socket.connect(*address).await {
                Ok(tcp) => return Ok(tcp),
                Err(err) => last = err,
            }
        }
        Err(last)
    }

    /// The key the master presented in the last handshake, trusted or not.
    pub fn presented_key(&self) -> Option<String> {
        self.verifier.seen.lock().expect("not poisoned").clone()
    }

    async fn resolve(&self) -> Result<Vec<SocketAddr>, LinkError> {
        let resolved = tokio::net::lookup_host(&self.address)
            .await
            .map_err(|source| LinkError::Resolve {
                address: self.address.clone(),
                source,
            })?;
        Ok(resolved.collect())
    }
}

impl Connector for TlsDialer {
    async fn connect(&self) -> Result<Session, LinkError> {
        let addresses = self.resolve().await?;
        let connect_err = |source| LinkError::Connect {
            address: self.address.clone(),
            source,
        };
        let tcp = match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.connect_tcp(&addresses)).await
        {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(err)) => return Err(connect_err(err)),
            Err(_) => {
                return Err(LinkError::Timeout {
                    what: format!("connecting to the master at {}", self.address),
                    after: HANDSHAKE_TIMEOUT,
                });
            }
        };
        let _ = tcp.set_nodelay(true);
        let peer = tcp
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| self.address.clone());
        let name = ServerName::try_from("salt").expect("a valid DNS name");
        let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, self.connector.connect(name, tcp))
            .await
            .map_err(|_| LinkError::Timeout {
                what: format!("the handshake with the master at {peer}"),
                after: HANDSHAKE_TIMEOUT,
            })?
            .map_err(|source| {
                if self
                    .verifier
                    .mismatched
                    .swap(false, std::sync::atomic::Ordering::Relaxed)
                {
                    LinkError::UnpinnedMaster { peer: peer.clone() }
                } else {
                    LinkError::Handshake {
                        peer: peer.clone(),
                        source,
                    }
                }
            })?;
        let key = peer_key(stream.get_ref().1.peer_certificates());
        // The master's key is pinned: what it sends is trusted.
        Ok(Session::over(
            stream,
            peer,
            key,
            self.keepalive,
            Trust::Trusted,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{command, message};

    async fn pair() -> (tempfile::TempDir, KeyPair, KeyPair, TcpListener) {
        let dir = tempfile::tempdir().unwrap();
        let master = KeyPair::load_or_create(&dir.path().join("m"), "master").unwrap();
        let minion = KeyPair::load_or_create(&dir.path().join("n"), "minion").unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        (dir, master, minion, listener)
    }

    #[tokio::test]
    async fn sessions_carry_messages_and_each_side_sees_the_others_key() {
        let (_dir, master, minion, listener) = pair().await;
        let address = listener.local_addr().unwrap().to_string();
        let mut listener =
            TlsListener::new(listener, &master, Duration::from_secs(5), Gate::new(8, 8));
        let dialer = TlsDialer::new(
            address,
            &minion,
            MasterPin::Key(master.public_pem().to_owned()),
            Duration::from_secs(5),
        );
        let mut client = dialer.connect().await.unwrap();
        let mut server = listener.accept().await.unwrap();
        assert_eq!(server.peer_key, minion.public_pem());
        assert_eq!(client.peer_key, master.public_pem());
        client
            .tx
            .send(message("hello", vec![("id".into(), "web1".into())]).into())
            .await
            .unwrap();
        let received = server.rx.recv().await.unwrap();
        assert_eq!(command(&received), Some("hello"));
        drop(server);
        assert!(client.rx.recv().await.is_none());
    }

    #[tokio::test]
    async fn a_master_with_another_key_is_refused() {
        let (dir, master, minion, listener) = pair().await;
        let other = KeyPair::load_or_create(&dir.path().join("o"), "master").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let _listener =
            TlsListener::new(listener, &master, Duration::from_secs(5), Gate::new(8, 8));
        let pinned = TlsDialer::new(
            address.clone(),
            &minion,
            MasterPin::Key(other.public_pem().to_owned()),
            Duration::from_secs(5),
        );
        let err = pinned.connect().await.unwrap_err();
        assert!(err.to_string().contains("not the pinned one"), "{err}");
        assert_eq!(pinned.presented_key().as_deref(), Some(master.public_pem()));
        let finger = TlsDialer::new(
            address,
            &minion,
            MasterPin::Finger {
                finger: fingerprint(master.public_pem(), "sha256").unwrap(),
                hash_type: "sha256".into(),
            },
            Duration::from_secs(5),
        );
        finger.connect().await.unwrap();
    }
}
