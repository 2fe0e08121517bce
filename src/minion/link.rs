//! The minion's side of the link: connect, authenticate, wait while the key is pending, carry
//! loads both ways, and reconnect with capped backoff when the master goes away.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::bus::BusHandle;
use crate::config::{Config, Role};
use crate::event::Value;
use crate::keys::{KeyPair, fingerprint};
use crate::link::tls::{MasterPin, TlsDialer};
use crate::link::{Connector, LinkError, Outgoing, Session};
use crate::proto::events::MasterConnection;
use crate::proto::link::{
    Hello, LinkVersion, Mismatch, Role as SessionRole, Verdict, Welcome as MasterWelcome,
};
use crate::proto::minion_event::Fired;
use crate::proto::{Message, MinionEventLoad, ProtoError, SaltEvent, tags};

/// How the link ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkOutcome {
    /// Shut down on request.
    Stopped,
    /// The master rejected or denied this minion's key (Salt exits 77).
    Refused,
    /// The master's key does not have the configured `master_finger` (Salt exits 42).
    WrongMaster,
}

/// Why `salt-call` could not hand its return to the master.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The id cannot name a key file on the master, or reads as a pattern.
    #[error("invalid minion id {id:?}: {reason}; set id: in the minion config")]
    InvalidId {
        /// The id.
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The minion configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The minion's key pair is unusable.
    #[error(transparent)]
    Keys(#[from] crate::keys::KeyError),
    /// No session with the master.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// `master:` is unset, `salt` does not resolve, and this host has no master to fall back to.
    #[error(
        "{error}; set master: in {} to the master's address (this host is tried only when its own master's key is in the master config's pki_dir)",
        config_file.display()
    )]
    UnresolvedDefault {
        /// The resolution failure, part of the message rather than its cause so that the
        /// advice comes last.
        error: LinkError,
        /// The minion config file to set `master:` in.
        config_file: PathBuf,
    },
    /// `max_pending_keys` keys already wait on the master.
    #[error(
        "the master has too many keys waiting for acceptance (max_pending_keys); ask its operator to accept or delete pending keys"
    )]
    TooManyPending,
    /// The master and this minion do not accept each other's link protocol.
    #[error("no session with the master: {0}")]
    Mismatch(Mismatch),
    /// The master has not accepted this minion's key, or refused it.
    #[error(
        "Minion failed to authenticate with the master, has the minion key been accepted? (salt-key -a {id} on the master, or use --local)"
    )]
    NotAccepted {
        /// The minion's id.
        id: String,
    },
    /// The return is larger than the link carries.
    #[error(
        "the return is {size} bytes, over the {max} bytes the link to the master carries; it was not sent"
    )]
    ReturnTooLarge {
        /// Its packed size.
        size: usize,
        /// What the link carries.
        max: usize,
    },
    /// The session ended before the return went out.
    #[error("lost the connection to the master at {peer} before the return was sent")]
    LostBeforeSending {
        /// The master's address.
        peer: String,
    },
    /// The master answered that it did not store the return.
    #[error("the master refused the return: {reason}")]
    ReturnRefused {
        /// The master's reason.
        reason: String,
    },
    /// The session ended before the master confirmed the return.
    #[error(
        "the master at {peer} closed the connection without storing the return; its log says why"
    )]
    ClosedBeforeStoring {
        /// The master's address.
        peer: String,
    },
    /// The master answered the return with a message halite cannot read.
    #[error("the master's answer to the return is malformed: {0}")]
    BadAnswer(crate::proto::ProtoError),
    /// The master did not confirm the return in time.
    #[error("the master did not confirm the return within {after:?}; it may not have stored it")]
    Unconfirmed {
        /// How long it was waited for.
        after: Duration,
    },
}

/// Where a master is: `master` (default `salt`) and `master_port` (default 4506).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterAddress {
    /// The host name or address.
    pub host: String,
    /// The port.
    pub port: u16,
    /// Whether `master` was left to its default.
    pub default: bool,
}

impl MasterAddress {
    /// The configured masters, in the order they are tried: `master` is one, or a list that
    /// the minion fails over along (one master at a time, as Salt's `master_type: failover`).
    pub fn configured(config: &Config) -> Result<Vec<Self>, crate::config::ConfigError> {
        let port = config.get_port("master_port", 4506)?;
        let invalid = |value: &Value| {
            config.locate(
                "master",
                crate::config::bad_value(
                    "master",
                    value,
                    "expected a host name or address, or a list of them",
                ),
            )
        };
        let named: Vec<&str> = match config.get("master") {
            None | Some(Value::Nil) => {
                return Ok(vec![Self {
                    host: "salt".to_owned(),
                    port,
                    default: true,
                }]);
            }
            Some(Value::Array(masters)) if !masters.is_empty() => masters
                .iter()
                .map(|master| master.as_str().ok_or_else(|| invalid(master)))
                .collect::<Result<_, _>>()?,
            Some(Value::String(name)) => vec![name.as_str().unwrap_or_default()],
            Some(other) => return Err(invalid(other)),
        };
        named
            .into_iter()
            .map(|name| {
                let (host, given) = crate::config::parse_host_port(name)
                    .filter(|_| !name.is_empty())
                    .ok_or_else(|| invalid(&Value::from(name)))?;
                Ok(Self {
                    host,
                    port: given.unwrap_or(port),
                    default: false,
                })
            })
            .collect()
    }

    /// `host:port`, with IPv6 addresses in brackets.
    pub fn socket_address(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// What the link needs from the minion.
pub(super) struct LinkParts {
    pub id: String,
    pub config: Config,
    pub options: LinkOptions,
    pub key: KeyPair,
    pub bus: Option<BusHandle>,
    pub grains: Value,
    /// The minion's requests to the master, carried by each session in turn.
    pub requests: std::sync::Arc<crate::link::requests::Requests>,
}

/// The link's options, read once when the minion starts: an invalid value stops it with the
/// option's name instead of becoming a default.
#[derive(Debug, Clone, Copy)]
pub(super) struct LinkOptions {
    recon_default: Duration,
    recon_max: Duration,
    acceptance_wait: Duration,
    acceptance_max: Duration,
    keepalive: Duration,
    rejected_retry: bool,
    legacy_start: bool,
    /// `recon_randomize`: the first wait after losing the master is drawn once per minion, so
    /// that a fleet that lost its master does not come back at the same instant.
    recon_randomize: bool,
}

impl LinkOptions {
    /// `recon_default` and `recon_max` (milliseconds), `acceptance_wait_time`,
    /// `acceptance_wait_time_max` and `link_keepalive` (seconds), `rejected_retry` and
    /// `enable_legacy_startup_events`.
    pub(super) fn from_config(config: &Config) -> Result<Self, crate::config::ConfigError> {
        let acceptance_wait = config.get_seconds("acceptance_wait_time", 10.0)?;
        Ok(Self {
            recon_default: config.get_millis("recon_default", 1000)?,
            recon_max: config.get_millis("recon_max", 10_000)?,
            recon_randomize: config.get_bool("recon_randomize", true)?,
            acceptance_wait,
            acceptance_max: config
                .get_seconds("acceptance_wait_time_max", 0.0)?
                .max(acceptance_wait),
            keepalive: crate::link::keepalive(config)?,
            rejected_retry: config.get_bool("rejected_retry", false)?,
            legacy_start: config.get_bool("enable_legacy_startup_events", true)?,
        })
    }
}

/// A number in [0, 1) from the system's random source (0 if it fails: no jitter then).
fn random_fraction() -> f64 {
    let mut bytes = [0u8; 8];
    match getrandom::fill(&mut bytes) {
        Ok(()) => (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 0.0,
    }
}

/// The master's answer to this minion's hello.
enum Welcome {
    Accepted(Session),
    Pending,
    /// `max_pending_keys` keys already wait on the master: try again later, as Salt's `full`.
    Full,
    Refused(String),
    /// The master, or this minion, does not accept the other's link protocol.
    Mismatch(Mismatch),
}

/// The first wait after a link protocol mismatch, whatever `acceptance_wait_time` says: the
/// waits double from there, and must not start at nothing.
const MISMATCH_WAIT_MIN: Duration = Duration::from_millis(100);

/// The longest wait between attempts while the link protocols do not match (unless
/// `acceptance_wait_time_max` is longer): the other side is being upgraded, which takes minutes.
const MISMATCH_WAIT_MAX: Duration = Duration::from_secs(300);

fn master_pub_path(config: &Config) -> Option<PathBuf> {
    config
        .pki_dir()
        .ok()
        .map(|dir| dir.join("minion_master.pub"))
}

/// What the minion trusts as its master: the key saved from the first connection, else
/// `master_finger`, else `local` (this host's master key, when falling back to this host), else
/// the first key it sees.
fn pin(config: &Config, local: Option<&str>) -> MasterPin {
    if let Some(saved) = master_pub_path(config).and_then(|p| std::fs::read_to_string(p).ok()) {
        return MasterPin::Key(saved);
    }
    match config.get_str("master_finger").ok().flatten() {
        Some(finger) if !finger.is_empty() => MasterPin::Finger {
            finger: finger.to_owned(),
            hash_type: config.hash_type().unwrap_or("sha256").to_owned(),
        },
        _ => match local {
            Some(key) => MasterPin::Key(key.to_owned()),
            None => MasterPin::FirstUse,
        },
    }
}

/// Saves the master's key after the first accepted session, unless one is pinned already.
fn save_master_key(config: &Config, dialer: &TlsDialer) {
    let Some(path) = master_pub_path(config) else {
        return;
    };
    if path.exists() {
        return;
    }
    if let Some(key) = dialer.presented_key()
        && let Err(err) = crate::keys::save_public_once(&path, &key)
    {
        tracing::warn!("cannot pin the master's key in {}: {err}", path.display());
    }
}

/// This host's master key (`master.pub` in the `pki_dir` of the master config beside this
/// minion's), if a master of this host's administrator is set up here: the only master a minion
/// without `master:` may fall back to, pinned to that key, so that whoever else listens on this
/// host's port gets nothing.
fn local_master_key(config: &Config) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let path = config
        .sibling(Role::Master)
        .ok()?
        .pki_dir()
        .ok()?
        .join("master.pub");
    let metadata = std::fs::metadata(&path).ok()?;
    let owner_trusted = metadata.uid() == 0 || metadata.uid() == nix::unistd::geteuid().as_raw();
    if !owner_trusted || metadata.mode() & 0o022 != 0 {
        tracing::warn!(
            "ignored {}: owned by another user or writable by others",
            path.display()
        );
        return None;
    }
    let key = std::fs::read_to_string(&path).ok()?;
    crate::keys::public_der(&key).is_some().then_some(key)
}

/// The error for a minion without `master:` whose default name does not resolve.
fn unresolved_default(config: &Config, error: LinkError) -> CallError {
    CallError::UnresolvedDefault {
        error,
        config_file: config.config_dir().join("minion"),
    }
}

/// Runs the link until shutdown or a final refusal.
pub(super) async fn run(
    parts: LinkParts,
    mut queued: mpsc::Receiver<Value>,
    jobs: mpsc::Sender<crate::proto::JobLoad>,
    shutdown: CancellationToken,
) -> LinkOutcome {
    let config = &parts.config;
    let masters = match MasterAddress::configured(config) {
        Ok(masters) => masters,
        Err(err) => {
            tracing::error!("{err}");
            return LinkOutcome::Refused;
        }
    };
    // The master tried now, and how many in a row could not be reached: the next one is tried
    // at once, and the backoff waited only once all were.
    let mut current = 0;
    let mut address = masters[current].clone();
    let mut unreachable = 0;
    let LinkOptions {
        recon_default,
        recon_max,
        acceptance_wait,
        acceptance_max,
        keepalive,
        rejected_retry,
        recon_randomize,
        ..
    } = parts.options;
    // As Salt's: between recon_default and recon_default + recon_max, drawn here so that each
    // minion of a swarm draws its own.
    let recon_first = if recon_randomize {
        recon_default + recon_max.mul_f64(random_fraction())
    } else {
        recon_default
    };
    let mut backoff = recon_default;
    let mut pending_wait = acceptance_wait;
    let mismatch_first = acceptance_wait.max(MISMATCH_WAIT_MIN);
    let mut mismatch_wait = mismatch_first;
    let mut started = false;
    let mut unsent: Option<Outgoing> = None;
    let mut last_error = String::new();
    let source = source_address(config);
    // This host's master key, once the default name did not resolve and the minion fell back.
    let mut local_key: Option<String> = None;
    loop {
        if shutdown.is_cancelled() {
            return LinkOutcome::Stopped;
        }
        let pin = pin(config, local_key.as_deref());
        let dialer = TlsDialer::new(address.socket_address(), &parts.key, pin.clone(), keepalive)
            .with_source(source);
        let attempt = tokio::select! {
            _ = shutdown.cancelled() => return LinkOutcome::Stopped,
            attempt = authenticate(&dialer, &parts, SessionRole::Minion) => attempt,
        };
        let wait = match attempt {
            Ok(Welcome::Accepted(session)) => {
                let session = parts.requests.attach(session);
                unreachable = 0;
                last_error.clear();
                backoff = recon_default;
                pending_wait = acceptance_wait;
                mismatch_wait = mismatch_first;
                if matches!(pin, MasterPin::FirstUse) || local_key.is_some() {
                    save_master_key(config, &dialer);
                }
                fire(&parts.bus, true, &address.host);
                tracing::info!("connected to the master at {}", address.socket_address());
                if !started {
                    started = true;
                    for tag in start_tags(&parts) {
                        let load = start_load(&parts.id, &tag);
                        if session.tx.send(load.into()).await.is_err() {
                            break;
                        }
                    }
                }
                serve(session, &mut queued, &mut unsent, &jobs, &shutdown).await;
                fire(&parts.bus, false, &address.host);
                if shutdown.is_cancelled() {
                    return LinkOutcome::Stopped;
                }
                if let Some(next) = next_master(&masters, &mut current) {
                    address = next;
                }
                tracing::warn!(
                    "lost the connection to the master; reconnecting to {} in {:.1} seconds",
                    address.socket_address(),
                    recon_first.as_secs_f64()
                );
                recon_first
            }
            Ok(Welcome::Pending) => {
                tracing::error!(
                    "The Salt Master has cached the public key for this node, this salt minion will wait for {} seconds before attempting to re-authenticate",
                    pending_wait.as_secs_f64()
                );
                let wait = pending_wait;
                if pending_wait < acceptance_max {
                    pending_wait = (pending_wait * 2).min(acceptance_max);
                }
                wait
            }
            Ok(Welcome::Mismatch(mismatch)) => {
                // Not an exit: in a rolling upgrade the other side is on its way, and another
                // master of the list may be on this minion's version already.
                let wait = mismatch_wait;
                let refused = address.socket_address();
                let then = match next_master(&masters, &mut current) {
                    Some(next) => {
                        address = next;
                        format!("trying the master at {}", address.socket_address())
                    }
                    None => "trying again".to_owned(),
                };
                tracing::error!(
                    "no session with the master at {refused}: {mismatch}; {then} in {} seconds",
                    wait.as_secs_f64()
                );
                mismatch_wait = (mismatch_wait * 2).min(MISMATCH_WAIT_MAX.max(acceptance_max));
                wait
            }
            Ok(Welcome::Full) => {
                tracing::error!(
                    "The Salt Master has too many keys waiting for acceptance (max_pending_keys); this minion will try again in {} seconds",
                    acceptance_wait.as_secs_f64()
                );
                acceptance_wait
            }
            Ok(Welcome::Refused(act)) => {
                if rejected_retry {
                    tracing::error!(
                        "The Salt Master has rejected this minion's public key ({act}). To repair this issue, delete the public key for this minion on the Salt Master. The minion will attempt to re-authenticate."
                    );
                    acceptance_wait
                } else {
                    tracing::error!(
                        "The Salt Master has rejected this minion's public key ({act})! To repair this issue, delete the public key for this minion on the Salt Master (salt-key -d {}) and restart this minion. The minion will now exit.",
                        parts.id
                    );
                    return LinkOutcome::Refused;
                }
            }
            Err(err) => {
                let mismatch = matches!(err, LinkError::UnpinnedMaster { .. });
                match (&pin, mismatch) {
                    (MasterPin::Finger { finger, hash_type }, true) => {
                        let actual = dialer
                            .presented_key()
                            .and_then(|key| fingerprint(&key, hash_type))
                            .unwrap_or_default();
                        tracing::error!(
                            "The specified fingerprint in the master configuration file: {finger} Does not match the authenticating master's key: {actual} Verify that the configured fingerprint matches the fingerprint of the correct master and that this minion is not subject to a man-in-the-middle attack."
                        );
                        return LinkOutcome::WrongMaster;
                    }
                    (MasterPin::Key(_), true) => {
                        let message = format!(
                            "The master key has changed, the salt master could have been subverted, verify salt master's public key (pinned in {})",
                            master_pub_path(config).unwrap_or_default().display()
                        );
                        if message != last_error {
                            tracing::error!("{message}");
                            last_error = message;
                        }
                    }
                    _ => {
                        let unresolved =
                            matches!(err, LinkError::Resolve { .. }) && address.default;
                        if unresolved && let Some(key) = local_master_key(config) {
                            tracing::info!(
                                "the default master name 'salt' does not resolve; trying this host's master (127.0.0.1), pinned to its key; set master: in the minion config"
                            );
                            address.host = "127.0.0.1".to_owned();
                            address.default = false;
                            local_key = Some(key);
                            continue;
                        }
                        let message = if unresolved {
                            unresolved_default(config, err).to_string()
                        } else {
                            err.to_string()
                        };
                        if message != last_error {
                            tracing::warn!("{message}; retrying");
                            last_error = message;
                        }
                    }
                }
                if let Some(next) = next_master(&masters, &mut current) {
                    address = next;
                    unreachable += 1;
                    if unreachable < masters.len() {
                        continue;
                    }
                    unreachable = 0;
                }
                let wait = backoff;
                backoff = (backoff * 2).min(recon_max);
                wait
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return LinkOutcome::Stopped,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// The master after `current` in the `master` list, when it lists more than one.
fn next_master(masters: &[MasterAddress], current: &mut usize) -> Option<MasterAddress> {
    if masters.len() < 2 {
        return None;
    }
    *current = (*current + 1) % masters.len();
    Some(masters[*current].clone())
}

/// `source_address`: the local address to connect from (unset: the system's choice).
fn source_address(config: &Config) -> Option<std::net::IpAddr> {
    let text = config.get_str("source_address").ok().flatten()?;
    match text.parse() {
        Ok(address) => Some(address),
        Err(_) => {
            tracing::warn!("ignored source_address {text:?}: not an IP address");
            None
        }
    }
}

/// One session with the master for `salt-call`, which returns its result the way a minion
/// returns a job's: authenticated with the minion's key, not counted as a connected minion.
/// Its hello carries `grains`, which the master compiles the pillar with.
pub async fn call_session(config: &Config, id: &str, grains: Value) -> Result<Session, CallError> {
    if let Some(reason) = crate::keys::id_problem(id) {
        return Err(CallError::InvalidId {
            id: id.to_owned(),
            reason,
        });
    }
    let key = KeyPair::load_or_create(&config.pki_dir()?, "minion")?;
    let masters = MasterAddress::configured(config)?;
    let mut address = masters[0].clone();
    let mut next = 1;
    let options = LinkOptions::from_config(config)?;
    let keepalive = options.keepalive;
    let parts = LinkParts {
        id: id.to_owned(),
        config: config.clone(),
        options,
        key,
        bus: None,
        grains,
        requests: Default::default(),
    };
    let mut local_key = None;
    let (dialer, pin, welcome) = loop {
        let pin = pin(config, local_key.as_deref());
        let dialer = TlsDialer::new(address.socket_address(), &parts.key, pin.clone(), keepalive)
            .with_source(source_address(config));
        match authenticate(&dialer, &parts, SessionRole::Call).await {
            Ok(welcome) => break (dialer, pin, welcome),
            Err(err @ LinkError::Resolve { .. }) if address.default => {
                match local_master_key(config) {
                    Some(key) => {
                        address.host = "127.0.0.1".to_owned();
                        address.default = false;
                        local_key = Some(key);
                    }
                    None => return Err(unresolved_default(config, err)),
                }
            }
            // The next master of the list, if any is left.
            Err(err) => match masters.get(next) {
                Some(other) => {
                    tracing::warn!("{err}; trying the master at {}", other.socket_address());
                    address = other.clone();
                    next += 1;
                }
                None => return Err(err.into()),
            },
        }
    };
    match welcome {
        Welcome::Accepted(session) => {
            if matches!(pin, MasterPin::FirstUse) || local_key.is_some() {
                save_master_key(config, &dialer);
            }
            Ok(session)
        }
        Welcome::Full => Err(CallError::TooManyPending),
        Welcome::Mismatch(mismatch) => Err(CallError::Mismatch(mismatch)),
        Welcome::Pending | Welcome::Refused(_) => Err(CallError::NotAccepted { id: id.to_owned() }),
    }
}

/// Sends `salt-call`'s return on `session` and waits for the master to store it: the jid it got,
/// or why the master refused it.
pub async fn send_return(session: Session, load: Value) -> Result<String, CallError> {
    let size = crate::link::packed_size(&load);
    if size > crate::proto::MAX_MESSAGE {
        return Err(CallError::ReturnTooLarge {
            size,
            max: crate::proto::MAX_MESSAGE,
        });
    }
    let Session {
        tx, mut rx, peer, ..
    } = session;
    if tx.send(load.into()).await.is_err() {
        return Err(CallError::LostBeforeSending { peer });
    }
    let answered = tokio::time::timeout(RETURN_CONFIRMATION, async {
        while let Some(reply) = rx.recv().await {
            // An answer to the return that cannot be read fails at once rather than after the
            // whole wait; other messages (a job published meanwhile) are not for salt-call.
            let answer = matches!(
                crate::proto::command(&reply),
                Some("_return_ok" | "_return_refused")
            );
            match Message::from_value(reply) {
                Ok(Message::ReturnOk { jid }) => return Ok(jid),
                Ok(Message::ReturnRefused { reason }) => {
                    return Err(CallError::ReturnRefused { reason });
                }
                Err(err) if answer => return Err(CallError::BadAnswer(err)),
                _ => {}
            }
        }
        Err(CallError::ClosedBeforeStoring { peer })
    });
    answered.await.unwrap_or(Err(CallError::Unconfirmed {
        after: RETURN_CONFIRMATION,
    }))
}

/// How long `salt-call` waits for the master to say it stored a return.
const RETURN_CONFIRMATION: Duration = Duration::from_secs(60);

/// Connects, says hello and reads the master's answer.
async fn authenticate(
    dialer: &TlsDialer,
    parts: &LinkParts,
    role: SessionRole,
) -> Result<Welcome, LinkError> {
    let mut session = dialer.connect().await?;
    let hello = Message::Hello(Hello {
        id: parts.id.clone(),
        role,
        grains: parts.grains.clone(),
        link: LinkVersion::minion(),
    });
    let timeout = crate::link::tls::HANDSHAKE_TIMEOUT;
    let peer = session.peer.clone();
    let closed = || LinkError::Closed {
        peer: peer.clone(),
        what: "before answering the hello",
    };
    if session.tx.send(hello.to_value().into()).await.is_err() {
        return Err(closed());
    }
    let welcome = tokio::time::timeout(timeout, session.rx.recv())
        .await
        .map_err(|_| LinkError::Timeout {
            what: format!("the master's answer at {peer}"),
            after: timeout,
        })?
        .ok_or_else(closed)?;
    // The protocol first, as the master checks it: a welcome of another protocol may not read
    // as this one's.
    if crate::proto::command(&welcome) == Some("welcome")
        && let Ok(link) = LinkVersion::of(&welcome)
        && let Err(mismatch) = crate::proto::link::check(&LinkVersion::minion(), &link)
    {
        return Ok(Welcome::Mismatch(mismatch));
    }
    let welcome = match Message::from_value(welcome) {
        Ok(Message::Welcome(welcome)) => welcome,
        Ok(_) | Err(ProtoError::UnknownCommand(_)) => return Err(closed()),
        // A welcome this minion cannot read refuses it as much as one that says so.
        Err(err) => return Ok(Welcome::Refused(err.to_string())),
    };
    Ok(match welcome {
        MasterWelcome::Verdict { act, .. } => match act {
            Verdict::Accept => Welcome::Accepted(session),
            Verdict::Pend => Welcome::Pending,
            Verdict::Full => Welcome::Full,
            Verdict::Reject | Verdict::Denied | Verdict::DenyAutosigned => {
                Welcome::Refused(act.act().to_owned())
            }
        },
        MasterWelcome::Refused { reason, .. } => Welcome::Refused(format!("refused: {reason}")),
    })
}

/// Carries loads to the master and jobs from it until the session ends.
async fn serve(
    mut session: Session,
    queued: &mut mpsc::Receiver<Value>,
    unsent: &mut Option<Outgoing>,
    jobs: &mpsc::Sender<crate::proto::JobLoad>,
    shutdown: &CancellationToken,
) {
    if let Some(load) = unsent.take()
        && let Err(err) = session.tx.send(load).await
    {
        *unsent = Some(err.0);
        return;
    }
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            load = queued.recv() => {
                let Some(load) = load else { return };
                if let Err(err) = session.tx.send(load.into()).await {
                    *unsent = Some(err.0);
                    return;
                }
            }
            message = session.rx.recv() => {
                let Some(message) = message else { return };
                match Message::from_value(message) {
                    Ok(Message::Publish(load)) => {
                        if jobs.send(load).await.is_err() {
                            return;
                        }
                    }
                    Ok(Message::ReturnRefused { reason }) => {
                        tracing::error!("the master refused a return: {reason}");
                    }
                    Ok(other) => tracing::warn!(
                        "ignored a message from the master with cmd {:?}",
                        Some(other.cmd())
                    ),
                    Err(err) => tracing::warn!("ignored a message from the master: {err}"),
                }
            }
        }
    }
}

/// `__master_connected` or `__master_disconnected` on the minion's bus.
fn fire(bus: &Option<BusHandle>, connected: bool, master: &str) {
    if let Some(bus) = bus {
        bus.fire(MasterConnection { connected, master }.to_event());
    }
}

/// `minion_start` (unless `enable_legacy_startup_events` is off) and `salt/minion/<id>/start`.
fn start_tags(parts: &LinkParts) -> Vec<String> {
    let mut start = Vec::new();
    if parts.options.legacy_start {
        start.push(tags::LEGACY_MINION_START.to_owned());
    }
    start.push(tags::minion_start(&parts.id));
    start
}

/// The `_minion_event` load Salt's minion sends when it starts.
fn start_load(id: &str, tag: &str) -> Value {
    let now = jiff::ZonedDateTime::now()
        .strftime("%a %b %e %H:%M:%S %Y")
        .to_string();
    MinionEventLoad {
        id: id.to_owned(),
        pretag: None,
        fired: Fired::One {
            data: Value::from(format!("Minion {id} started at {now}")),
            tag: tag.to_owned(),
        },
        preload: Vec::new(),
    }
    .to_value()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::Trust;

    #[test]
    fn the_master_option_is_read_as_salt_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let address = |master: Option<Value>| {
            let mut config = Config::load(crate::config::Role::Minion, Some(dir.path())).unwrap();
            if let Some(master) = master {
                config.set("master", master);
            }
            MasterAddress::configured(&config).map(|masters| {
                let shown: Vec<String> =
                    masters.iter().map(MasterAddress::socket_address).collect();
                shown.join(",")
            })
        };
        let text = |text: &str| Some(Value::from(text));
        assert_eq!(address(None).unwrap(), "salt:4506");
        assert_eq!(address(text("db1")).unwrap(), "db1:4506");
        assert_eq!(address(text("10.0.0.1:4510")).unwrap(), "10.0.0.1:4510");
        assert_eq!(address(text("db1:4510")).unwrap(), "db1:4510");
        assert_eq!(address(text("[::1]:4510")).unwrap(), "[::1]:4510");
        assert_eq!(address(text("::1")).unwrap(), "[::1]:4506");
        assert_eq!(address(text("[::1]")).unwrap(), "[::1]:4506");
        assert_eq!(address(text("fe80::1%lo")).unwrap(), "[fe80::1%1]:4506");
        assert_eq!(
            address(text("[fe80::1%lo]:4510")).unwrap(),
            "[fe80::1%1]:4510"
        );
        assert_eq!(
            address(text("db-1.example_x")).unwrap(),
            "db-1.example_x:4506"
        );
        let list = Value::Array(vec![Value::from("a"), Value::from("b")]);
        assert_eq!(address(Some(list)).unwrap(), "a:4506,b:4506");
        let ports = Value::Array(vec![Value::from("a:1"), Value::from("[::1]:2")]);
        assert_eq!(address(Some(ports)).unwrap(), "a:1,[::1]:2");
        for bad in [
            Value::from(5),
            Value::Array(Vec::new()),
            Value::Array(vec![Value::from(5), Value::from("b")]),
            Value::Array(vec![Value::from("a"), Value::from("")]),
            Value::from(""),
            Value::from("db1:port"),
            Value::from("[::1]:45790x"),
            Value::from("[::1]x"),
            Value::from("host:4510:1"),
            Value::from("a b"),
            Value::from("db1:0"),
            Value::from("10.0.0.1:0"),
            Value::from("[10.0.0.1]:4510"),
            Value::from("fe80::1%nosuchif"),
        ] {
            let err = address(Some(bad.clone())).unwrap_err().to_string();
            assert!(
                err.contains("option master from the command line: expected a host name"),
                "{bad:?}: {err}"
            );
        }
    }

    /// A `_return_ok` without its jid made salt-call wait the whole confirmation time.
    #[tokio::test]
    async fn an_unreadable_answer_to_a_return_fails_at_once() {
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let keepalive = Duration::from_secs(10);
        let minion = Session::over(
            ours,
            "master".into(),
            String::new(),
            keepalive,
            Trust::Trusted,
        );
        let mut master = Session::over(
            theirs,
            "minion".into(),
            String::new(),
            keepalive,
            Trust::Trusted,
        );
        let answering = tokio::spawn(async move {
            master.rx.recv().await.expect("the return");
            let answer = crate::proto::message("_return_ok", Vec::new());
            master.tx.send(answer.into()).await.expect("sent");
            master
        });
        let load = crate::proto::message("_return", Vec::new());
        let result = tokio::time::timeout(Duration::from_secs(5), send_return(minion, load))
            .await
            .expect("answered at once, not after the confirmation time");
        assert!(matches!(result, Err(CallError::BadAnswer(_))), "{result:?}");
        drop(answering.await);
    }
}
