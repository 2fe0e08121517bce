//! The minion's side of the link: connect, authenticate, wait while the key is pending, carry
//! loads both ways, and reconnect with capped backoff when the master goes away.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::bus::BusHandle;
use crate::config::Config;
use crate::event::{Event, Value, map_get};
use crate::keys::{KeyPair, fingerprint};
use crate::link::tls::{MasterPin, TlsDialer};
use crate::link::{Connector, LinkError, Session, command, message};

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

/// Where the master is: `master` (default `salt`) and `master_port` (default 4506).
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
    /// The configured master.
    pub fn configured(config: &Config) -> Result<Self, crate::config::ConfigError> {
        let port = config.get_port("master_port", 4506)?;
        let (host, default) = match config.get("master") {
            None | Some(Value::Nil) => ("salt".to_owned(), true),
            Some(Value::Array(masters)) => {
                tracing::warn!("halite minions have one master; using the first of {masters:?}");
                let first = masters.first().and_then(Value::as_str).unwrap_or("salt");
                (first.to_owned(), false)
            }
            Some(_) => (
                config.get_str("master")?.unwrap_or("salt").to_owned(),
                false,
            ),
        };
        Ok(Self {
            host,
            port,
            default,
        })
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
    pub key: KeyPair,
    pub bus: Option<BusHandle>,
    pub grains: Value,
}

/// The master's answer to this minion's hello.
enum Welcome {
    Accepted(Session),
    Pending,
    Refused(String),
}

fn master_pub_path(config: &Config) -> Option<PathBuf> {
    config
        .pki_dir()
        .ok()
        .map(|dir| dir.join("minion_master.pub"))
}

fn pin(config: &Config) -> MasterPin {
    if let Some(saved) = master_pub_path(config).and_then(|p| std::fs::read_to_string(p).ok()) {
        return MasterPin::Key(saved);
    }
    match config.get_str("master_finger").ok().flatten() {
        Some(finger) if !finger.is_empty() => MasterPin::Finger {
            finger: finger.to_owned(),
            hash_type: config.hash_type().unwrap_or("sha256").to_owned(),
        },
        _ => MasterPin::FirstUse,
    }
}

fn seconds(config: &Config, key: &str, default: f64) -> Duration {
    config
        .get_seconds(key, default)
        .unwrap_or(Duration::from_secs_f64(default))
}

/// Runs the link until shutdown or a final refusal.
pub(super) async fn run(
    parts: LinkParts,
    mut queued: mpsc::Receiver<Value>,
    jobs: mpsc::Sender<Value>,
    shutdown: CancellationToken,
) -> LinkOutcome {
    let config = &parts.config;
    let mut address = match MasterAddress::configured(config) {
        Ok(address) => address,
        Err(err) => {
            tracing::error!("{err}");
            return LinkOutcome::Refused;
        }
    };
    let recon_default =
        Duration::from_millis(config.get_u64("recon_default", 1000).unwrap_or(1000));
    let recon_max = Duration::from_millis(config.get_u64("recon_max", 10_000).unwrap_or(10_000));
    let acceptance_wait = seconds(config, "acceptance_wait_time", 10.0);
    let acceptance_max = seconds(config, "acceptance_wait_time_max", 0.0).max(acceptance_wait);
    let keepalive = seconds(config, "link_keepalive", 10.0);
    let mut backoff = recon_default;
    let mut pending_wait = acceptance_wait;
    let mut started = false;
    let mut unsent: Option<Value> = None;
    let mut last_error = String::new();
    loop {
        if shutdown.is_cancelled() {
            return LinkOutcome::Stopped;
        }
        let pin = pin(config);
        let dialer = TlsDialer::new(address.socket_address(), &parts.key, pin.clone(), keepalive);
        let attempt = tokio::select! {
            _ = shutdown.cancelled() => return LinkOutcome::Stopped,
            attempt = authenticate(&dialer, &parts, "minion") => attempt,
        };
        let wait = match attempt {
            Ok(Welcome::Accepted(session)) => {
                last_error.clear();
                backoff = recon_default;
                pending_wait = acceptance_wait;
                if let (MasterPin::FirstUse, Some(path), Some(key)) =
                    (&pin, master_pub_path(config), dialer.presented_key())
                    && let Err(err) = std::fs::write(&path, &key)
                {
                    tracing::warn!("cannot save the master's key to {}: {err}", path.display());
                }
                fire(&parts.bus, "__master_connected", &address.host);
                tracing::info!("connected to the master at {}", address.socket_address());
                if !started {
                    started = true;
                    for tag in start_tags(&parts) {
                        let load = start_load(&parts.id, &tag);
                        if session.tx.send(load).await.is_err() {
                            break;
                        }
                    }
                }
                serve(session, &mut queued, &mut unsent, &jobs, &shutdown).await;
                fire(&parts.bus, "__master_disconnected", &address.host);
                if shutdown.is_cancelled() {
                    return LinkOutcome::Stopped;
                }
                tracing::warn!("lost the connection to the master; reconnecting");
                recon_default
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
            Ok(Welcome::Refused(act)) => {
                if config.get_bool("rejected_retry", false).unwrap_or(false) {
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
                let mismatch = matches!(err, LinkError::Handshake { .. })
                    && err.to_string().contains("not the pinned one");
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
                        if let (LinkError::Resolve { .. }, true) = (&err, address.default) {
                            tracing::info!(
                                "the default master name 'salt' does not resolve; trying this host (127.0.0.1); set master: in the minion config"
                            );
                            address.host = "127.0.0.1".to_owned();
                            address.default = false;
                            continue;
                        }
                        let message = err.to_string();
                        if message != last_error {
                            tracing::warn!("{message}; retrying");
                            last_error = message;
                        }
                    }
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

/// One session with the master for `salt-call`, which returns its result the way a minion
/// returns a job's: authenticated with the minion's key, not counted as a connected minion.
pub async fn call_session(config: &Config, id: &str) -> anyhow::Result<Session> {
    let key = KeyPair::load_or_create(&config.pki_dir()?, "minion")?;
    let address = MasterAddress::configured(config)?;
    let keepalive = seconds(config, "link_keepalive", 10.0);
    let pin = pin(config);
    let dialer = TlsDialer::new(address.socket_address(), &key, pin.clone(), keepalive);
    let parts = LinkParts {
        id: id.to_owned(),
        config: config.clone(),
        key,
        bus: None,
        grains: Value::Map(Vec::new()),
    };
    match authenticate(&dialer, &parts, "call").await? {
        Welcome::Accepted(session) => {
            if let (MasterPin::FirstUse, Some(path), Some(key)) =
                (&pin, master_pub_path(config), dialer.presented_key())
            {
                let _ = std::fs::write(path, key);
            }
            Ok(session)
        }
        Welcome::Pending | Welcome::Refused(_) => anyhow::bail!(
            "Minion failed to authenticate with the master, has the minion key been accepted? (salt-key -a {id} on the master, or use --local)"
        ),
    }
}

/// Connects, says hello and reads the master's answer.
async fn authenticate(
    dialer: &TlsDialer,
    parts: &LinkParts,
    role: &str,
) -> Result<Welcome, LinkError> {
    let mut session = dialer.connect().await?;
    let hello = message(
        "hello",
        vec![
            (Value::from("id"), Value::from(parts.id.as_str())),
            (Value::from("role"), Value::from(role)),
            (Value::from("grains"), parts.grains.clone()),
            (
                Value::from("version"),
                Value::from(env!("CARGO_PKG_VERSION")),
            ),
        ],
    );
    let timeout = crate::link::tls::HANDSHAKE_TIMEOUT;
    let peer = session.peer.clone();
    let closed = || LinkError::Closed {
        peer: peer.clone(),
        what: "before answering the hello",
    };
    if session.tx.send(hello).await.is_err() {
        return Err(closed());
    }
    let welcome = tokio::time::timeout(timeout, session.rx.recv())
        .await
        .map_err(|_| LinkError::Timeout {
            what: format!("the master's answer at {peer}"),
            after: timeout,
        })?
        .ok_or_else(closed)?;
    if command(&welcome) != Some("welcome") {
        return Err(closed());
    }
    Ok(match map_get(&welcome, "act").and_then(Value::as_str) {
        Some("accept") => Welcome::Accepted(session),
        Some("pend") => Welcome::Pending,
        Some("refused") => Welcome::Refused(format!(
            "refused: {}",
            map_get(&welcome, "reason")
                .and_then(Value::as_str)
                .unwrap_or("no reason given")
        )),
        other => Welcome::Refused(other.unwrap_or("refused").to_owned()),
    })
}

/// Carries loads to the master and jobs from it until the session ends.
async fn serve(
    mut session: Session,
    queued: &mut mpsc::Receiver<Value>,
    unsent: &mut Option<Value>,
    jobs: &mpsc::Sender<Value>,
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
                if let Err(err) = session.tx.send(load).await {
                    *unsent = Some(err.0);
                    return;
                }
            }
            message = session.rx.recv() => {
                let Some(message) = message else { return };
                match command(&message) {
                    Some("publish") => {
                        if let Some(load) = map_get(&message, "load")
                            && jobs.send(load.clone()).await.is_err()
                        {
                            return;
                        }
                    }
                    other => tracing::warn!("ignored a message from the master with cmd {other:?}"),
                }
            }
        }
    }
}

fn fire(bus: &Option<BusHandle>, tag: &str, master: &str) {
    if let Some(bus) = bus
        && let Ok(event) = Event::new(
            tag,
            Value::Map(vec![(Value::from("master"), Value::from(master))]),
        )
    {
        bus.fire(event);
    }
}

/// `minion_start` (unless `enable_legacy_startup_events` is off) and `salt/minion/<id>/start`.
fn start_tags(parts: &LinkParts) -> Vec<String> {
    let mut tags = Vec::new();
    if parts
        .config
        .get_bool("enable_legacy_startup_events", true)
        .unwrap_or(true)
    {
        tags.push("minion_start".to_owned());
    }
    tags.push(format!("salt/minion/{}/start", parts.id));
    tags
}

/// The `_minion_event` load Salt's minion sends when it starts.
fn start_load(id: &str, tag: &str) -> Value {
    let now = jiff::ZonedDateTime::now()
        .strftime("%a %b %e %H:%M:%S %Y")
        .to_string();
    Value::Map(vec![
        (Value::from("id"), Value::from(id)),
        (Value::from("cmd"), Value::from("_minion_event")),
        (Value::from("pretag"), Value::Nil),
        (
            Value::from("data"),
            Value::from(format!("Minion {id} started at {now}")),
        ),
        (Value::from("tag"), Value::from(tag)),
    ])
}
