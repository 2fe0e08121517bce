//! Minions' sessions on the master: admission by key, the minions connected now, presence, and
//! what minions send (events and job returns).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::minion_event::{RefusalLog, Refused, events_from_load};
use crate::bus::TagFilter;
use crate::event::{Event, Value, jid, map_get, map_set};
use crate::fileserver::FileError;
use crate::keys::{Admission, AdmissionPolicy, KeyState, id_problem, read_autosign, valid_id};
use crate::link::requests::IN_FLIGHT;
use crate::link::{Acceptor, Outgoing, Session};
use crate::proto::events::{
    Auth, KeyEvent, LinkMismatch, PresenceChange, PresencePresent, PresentedKey,
};
use crate::proto::link::{
    Answer, Failure, Hello, LinkVersion, Mismatch, Request, Role, Verdict, Welcome, request_id,
};
use crate::proto::minion_data::MinionData;
use crate::proto::{JobLoad, Message, ProtoError, SaltEvent, tags};

/// How often a session's key file is checked again while messages arrive.
const KEY_RECHECK: Duration = Duration::from_secs(1);

/// How long a new session may take to say who it is: a minion says hello as soon as its
/// handshake is done, and until then the session holds a place at the link's gate.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// `max_pending_keys`: how many keys may wait for an operator before new ones are turned away.
const DEFAULT_MAX_PENDING_KEYS: u64 = 1000;

/// How often the same refusal (same reason, id and address) is logged, and a link protocol
/// mismatch announced: each session is refused, but a minion that retries (or a peer that
/// reconnects in a loop) is reported once in this long, and the rest are counted.
const REFUSAL_REPORT_EVERY: Duration = Duration::from_secs(60);

/// How many refusals' last report is remembered, and how many addresses' beyond those. While
/// that many were reported within [`REFUSAL_REPORT_EVERY`] (a peer inventing ids), the others
/// are reported once in that time per address, then (many addresses) all together.
const REFUSAL_REPORTS: usize = 1024;

/// The minions connected now, and the grains they reported.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    connected: BTreeMap<String, Connected>,
    grains: HashMap<String, Arc<Value>>,
    /// The pillar each minion was last sent, for pillar targets (kept while it is connected).
    pillars: HashMap<String, Sent>,
    serial: u64,
    refusals: RefusalReports,
}

/// Why a session was refused, for [`RefusalReports`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Refusal {
    /// Not a usable hello (bad message, invalid id).
    Bad,
    /// A link protocol the master does not serve; apart for a peer presenting the id's
    /// accepted key, so that others claiming its id cannot silence the minion.
    Mismatch { own_key: bool },
    /// A new key while `max_pending_keys` keys wait.
    Full,
    /// A key waiting for an operator (not an error, but a minion retries until accepted).
    Pending,
    /// A rejected key.
    Rejected,
    /// Another key than the accepted one.
    Denied,
}

/// When refusals were last reported, to log each (reason, id, address) once in
/// [`REFUSAL_REPORT_EVERY`] in bounded memory, counting those left out.
#[derive(Debug, Default)]
struct RefusalReports {
    /// By reason, id (empty if it gave none usable) and address (host, not port).
    last: HashMap<(Refusal, String, String), Instant>,
    /// By address, for refusals not remembered in `last` (it being full of recent ones).
    hosts: HashMap<String, Instant>,
    /// The last report of one remembered in neither.
    others: Option<Instant>,
    /// Refusals not logged since [`RefusalReports::take_suppressed`].
    suppressed: u64,
}

impl RefusalReports {
    /// Whether the refusal of `id` from `host` for `why` is to be reported at `now`, counting
    /// it as reported if so, or as suppressed if not.
    fn due(&mut self, why: Refusal, id: &str, host: &str, now: Instant) -> bool {
        let due = self.check(why, id, host, now);
        if !due {
            self.suppressed += 1;
        }
        due
    }

    fn check(&mut self, why: Refusal, id: &str, host: &str, now: Instant) -> bool {
        let recent = |at: &Instant| now.saturating_duration_since(*at) < REFUSAL_REPORT_EVERY;
        let key = (why, id.to_owned(), host.to_owned());
        if let Some(at) = self.last.get_mut(&key) {
            if recent(at) {
                return false;
            }
            *at = now;
            return true;
        }
        if self.last.len() >= REFUSAL_REPORTS {
            self.last.retain(|_, at| recent(at));
        }
        if self.last.len() < REFUSAL_REPORTS {
            self.last.insert(key, now);
            return true;
        }
        // A peer filling the table shares one report per minute, and does not silence others.
        if let Some(at) = self.hosts.get_mut(host) {
            if recent(at) {
                return false;
            }
            *at = now;
            return true;
        }
        if self.hosts.len() >= REFUSAL_REPORTS {
            self.hosts.retain(|_, at| recent(at));
        }
        if self.hosts.len() < REFUSAL_REPORTS {
            self.hosts.insert(host.to_owned(), now);
            return true;
        }
        if self.others.as_ref().is_some_and(recent) {
            return false;
        }
        self.others = Some(now);
        true
    }

    /// How many refusals were not logged since the last call.
    fn take_suppressed(&mut self) -> u64 {
        std::mem::take(&mut self.suppressed)
    }
}

/// A pillar sent to a minion, and which of its requests it answered.
#[derive(Debug)]
struct Sent {
    /// The session's serial.
    serial: u64,
    /// The request's place among the session's whole-pillar requests.
    asked: u64,
    pillar: Arc<Value>,
}

#[derive(Debug)]
struct Connected {
    tx: mpsc::Sender<Outgoing>,
    serial: u64,
    close: CancellationToken,
    key: String,
    /// The address the minion connects from (Salt's `show_ip`).
    address: String,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("sessions lock")
    }

    /// Whether the refusal of a session from `peer` claiming `id` for `why` is to be logged
    /// (and announced) now: once in [`REFUSAL_REPORT_EVERY`] per reason, id and address.
    fn refusal_due(&self, why: Refusal, id: &str, peer: &str) -> bool {
        // By the address alone: a peer connects from a new port each time; and for global IPv6
        // (not IPv4 mapped into it) by its /64, which one host commonly holds whole.
        let host =
            peer.parse::<std::net::SocketAddr>()
                .map(|peer| match peer.ip().to_canonical() {
                    // Every link-local peer is in fe80::/64: those are told apart by address.
                    std::net::IpAddr::V6(address) if !address.is_unicast_link_local() => {
                        let network = u128::from(address) >> 64 << 64;
                        format!("{}/64", std::net::Ipv6Addr::from(network))
                    }
                    address => address.to_string(),
                });
        let host = host.as_deref().unwrap_or(peer);
        self.lock().refusals.due(why, id, host, Instant::now())
    }

    /// Logs how many refusals went unlogged since the last call, if any.
    fn report_suppressed(&self) {
        let suppressed = self.lock().refusals.take_suppressed();
        if suppressed > 0 {
            tracing::warn!(
                "… and {suppressed} more refusals suppressed in the last minute (each reason, id and address is logged once a minute)"
            );
        }
    }

    /// The ids of the minions connected now, sorted.
    pub fn connected(&self) -> Vec<String> {
        self.lock().connected.keys().cloned().collect()
    }

    /// Those of `ids` connected now, in their order.
    pub fn connected_among(&self, ids: &[String]) -> Vec<String> {
        let inner = self.lock();
        ids.iter()
            .filter(|id| inner.connected.contains_key(*id))
            .cloned()
            .collect()
    }

    /// The minions connected now with the address each connects from, sorted by id.
    pub fn connected_from(&self) -> Vec<(String, String)> {
        self.lock()
            .connected
            .iter()
            .map(|(id, connected)| (id.clone(), connected.address.clone()))
            .collect()
    }

    /// The grains `id` reported when it last connected (from the cache after a restart).
    /// It may read the cache file: call it off the async runtime.
    pub fn grains(&self, shared: &Shared, id: &str) -> Option<Arc<Value>> {
        if let Some(grains) = self.lock().grains.get(id) {
            return Some(Arc::clone(grains));
        }
        let grains = Arc::new(MinionData::read(&grains_path(shared, id)?)?.grains);
        self.lock()
            .grains
            .insert(id.to_owned(), Arc::clone(&grains));
        Some(grains)
    }

    /// Remembers the grains `id` reported to another master of the cluster, unless it is
    /// connected here (its session's are the latest then).
    pub fn learn_grains(&self, id: String, grains: Value) {
        let mut inner = self.lock();
        if !inner.connected.contains_key(&id) {
            inner.grains.insert(id, Arc::new(grains));
        }
    }

    /// The pillar `id` was last sent while connected, if any.
    pub fn pillar(&self, id: &str) -> Option<Arc<Value>> {
        self.lock()
            .pillars
            .get(id)
            .map(|sent| Arc::clone(&sent.pillar))
    }

    /// Remembers `pillar` as what `id` holds, sent on its session `serial` for its `asked`th
    /// whole-pillar request; an answer to an earlier request, or of a session that was
    /// replaced, does not undo a later one.
    fn remember_pillar(&self, id: &str, serial: u64, asked: u64, pillar: Arc<Value>) {
        let mut inner = self.lock();
        if inner
            .connected
            .get(id)
            .is_none_or(|connected| connected.serial != serial)
        {
            return;
        }
        let later = inner
            .pillars
            .get(id)
            .is_some_and(|sent| sent.serial == serial && sent.asked > asked);
        if !later {
            inner.pillars.insert(
                id.to_owned(),
                Sent {
                    serial,
                    asked,
                    pillar,
                },
            );
        }
    }

    /// Queues `message` for `id`; false when it is not connected or its queue is full.
    pub fn send(&self, id: &str, message: Outgoing) -> bool {
        let inner = self.lock();
        match inner.connected.get(id) {
            Some(connected) => match connected.tx.try_send(message) {
                Ok(()) => true,
                Err(err) => {
                    tracing::warn!("cannot send a job to minion {id}: {err}");
                    false
                }
            },
            None => false,
        }
    }

    /// Ends `id`'s session unless it authenticated with `accepted` (PEM), the key on file now.
    pub fn close_unless_key(&self, id: &str, accepted: Option<&str>) {
        if let Some(connected) = self.lock().connected.get(id) {
            let same = accepted.is_some_and(|accepted| {
                crate::keys::public_der(accepted) == crate::keys::public_der(&connected.key)
            });
            if !same {
                tracing::info!("minion {id}'s key is no longer accepted; closing its session");
                connected.close.cancel();
            }
        }
    }

    fn register(
        &self,
        shared: &Shared,
        id: &str,
        session: &Session,
        grains: Value,
    ) -> (u64, CancellationToken) {
        // The peer is `ip:port`; Salt shows the address alone.
        let address = session.peer.parse::<std::net::SocketAddr>().map_or_else(
            |_| session.peer.clone(),
            |peer| peer.ip().to_canonical().to_string(),
        );
        let close = CancellationToken::new();
        if let Some(cluster) = &shared.cluster_grains {
            cluster.share(id, &grains);
        }
        let shared_grains = Arc::new(grains.clone());
        let (serial, replaced) = {
            let mut inner = self.lock();
            inner.serial += 1;
            let serial = inner.serial;
            inner.grains.insert(id.to_owned(), shared_grains);
            // A new session may be a new minion process, which holds no pillar yet: until it
            // is sent one, it decides pillar targets for itself.
            inner.pillars.remove(id);
            let replaced = inner.connected.insert(
                id.to_owned(),
                Connected {
                    tx: session.tx.clone(),
                    serial,
                    close: close.clone(),
                    key: session.peer_key.clone(),
                    address,
                },
            );
            (serial, replaced)
        };
        match replaced {
            Some(old) => {
                tracing::warn!("minion {id} connected again; its previous session is closed");
                old.close.cancel();
            }
            None => self.changed(shared, vec![id.to_owned()], Vec::new()),
        }
        if let Some(path) = grains_path(shared, id) {
            let data = MinionData { grains }.to_value();
            let mut bytes = Vec::new();
            if rmpv::encode::write_value(&mut bytes, &data).is_ok()
                && let Some(dir) = path.parent()
                && std::fs::create_dir_all(dir).is_ok()
                && let Err(err) = std::fs::write(&path, bytes)
            {
                tracing::warn!(
                    "cannot cache the grains of {id} in {}: {err}",
                    path.display()
                );
            }
        }
        (serial, close)
    }

    fn unregister(&self, shared: &Shared, id: &str, serial: u64) {
        let removed = {
            let mut inner = self.lock();
            match inner.connected.get(id) {
                Some(connected) if connected.serial == serial => {
                    inner.connected.remove(id);
                    inner.pillars.remove(id);
                    true
                }
                _ => false,
            }
        };
        if removed {
            self.changed(shared, Vec::new(), vec![id.to_owned()]);
        }
    }

    /// With `presence_events`, a minion arriving or leaving is told at once.
    fn changed(&self, shared: &Shared, new: Vec<String>, lost: Vec<String>) {
        if !presence_events(shared) {
            return;
        }
        shared.bus.fire(
            PresenceChange {
                new: &new,
                lost: &lost,
            }
            .to_event(),
        );
        self.present(shared);
    }

    /// `salt/presence/present` with the ids connected now, when `presence_events` is set.
    pub fn present(&self, shared: &Shared) {
        if !presence_events(shared) {
            return;
        }
        let present = self.connected();
        shared
            .bus
            .fire(PresencePresent { present: &present }.to_event());
    }
}

fn presence_events(shared: &Shared) -> bool {
    shared
        .config
        .get_bool("presence_events", false)
        .unwrap_or(false)
}

/// Where a minion's grains are cached: `<cachedir>/minions/<id>/data.p`, as Salt's.
fn grains_path(shared: &Shared, id: &str) -> Option<PathBuf> {
    if !valid_id(id) {
        return None;
    }
    let cachedir = shared.config.cachedir().ok()?;
    Some(MinionData::path(&cachedir, id))
}

/// Accepts sessions until `stop`.
pub(super) async fn serve(shared: Arc<Shared>, mut link: impl Acceptor, stop: CancellationToken) {
    let mut summary = tokio::time::interval_at(
        tokio::time::Instant::now() + REFUSAL_REPORT_EVERY,
        REFUSAL_REPORT_EVERY,
    );
    loop {
        let session = tokio::select! {
            _ = stop.cancelled() => return,
            _ = summary.tick() => {
                shared.sessions.report_suppressed();
                continue;
            }
            accepted = link.accept() => match accepted {
                Ok(session) => session,
                Err(err) => {
                    tracing::error!("the minion link stopped: {err}");
                    return;
                }
            },
        };
        tokio::spawn(handle(shared.clone(), session, stop.clone()));
    }
}

/// Closes the sessions of minions whose keys an operator deletes, rejects or replaces
/// (`salt/key`).
pub(super) async fn watch_keys(shared: Arc<Shared>, stop: CancellationToken) {
    let mut subscription = shared
        .bus
        .subscribe_filtered(TagFilter::Exact(tags::KEY.into()));
    loop {
        let body = tokio::select! {
            _ = stop.cancelled() => return,
            body = subscription.next_body() => match body {
                Some(body) => body,
                None => return,
            },
        };
        let Ok(event) = crate::wire::decode_body(&body) else {
            continue;
        };
        let Ok(KeyEvent { id, .. }) = KeyEvent::from_value(&event.data) else {
            continue;
        };
        shared.keys_changed.notify_one();
        // Whatever changed (the minion's key deleted, rejected or replaced, or only an
        // impostor's denied key), the session ends unless its key is still the accepted one.
        let filed = shared.keys.key(KeyState::Accepted, &id);
        shared.sessions.close_unless_key(&id, filed.as_deref());
    }
}

/// Why a session was not admitted before its key was looked at.
enum NoHello {
    /// Silent, hung up, or evicted from the link's gate: anyone can cause it, so it is not worth
    /// a line per peer (the gate reports floods).
    Silent(String),
    /// Said something that is not a usable hello.
    Bad(String),
    /// Speaks a link protocol this master does not serve, or accepts none this master speaks.
    Mismatch {
        /// The id it gave, printable and clipped.
        id: String,
        /// Both sides' link versions.
        mismatch: Mismatch,
    },
}

async fn hello(session: &mut Session) -> Result<Hello, NoHello> {
    let first = tokio::time::timeout(HELLO_TIMEOUT, session.rx.recv())
        .await
        .map_err(|_| NoHello::Silent(format!("no hello within {HELLO_TIMEOUT:?}")))?
        .ok_or_else(|| NoHello::Silent("closed before saying hello".to_owned()))?;
    // The protocol first: a hello of another protocol may not read as this one's.
    if crate::proto::command(&first) == Some("hello")
        && let Ok(link) = LinkVersion::of(&first)
        && let Err(mismatch) = crate::proto::link::check(&link, &LinkVersion::master())
    {
        let id = map_get(&first, "id").and_then(Value::as_str).unwrap_or("");
        return Err(NoHello::Mismatch {
            id: crate::event::tag::printable(&crate::output::clip(id, 64)).into_owned(),
            mismatch,
        });
    }
    let hello = match Message::from_value(first) {
        Ok(Message::Hello(hello)) => hello,
        Ok(other) => {
            return Err(NoHello::Bad(format!(
                "sent {:?} before hello",
                Some(other.cmd())
            )));
        }
        Err(ProtoError::UnknownCommand(cmd)) => {
            return Err(NoHello::Bad(format!("sent {cmd:?} before hello")));
        }
        Err(err) => return Err(NoHello::Bad(err.to_string())),
    };
    if let Some(problem) = id_problem(&hello.id) {
        return Err(NoHello::Bad(format!(
            "invalid minion id \"{}\": {problem}",
            crate::event::tag::printable(&crate::output::clip(&hello.id, 64))
        )));
    }
    Ok(hello)
}

/// The master's verdict on a key, as the minion and `salt/auth` hear it.
fn verdict(admission: Admission) -> Verdict {
    match admission {
        Admission::Accept => Verdict::Accept,
        Admission::Pend => Verdict::Pend,
        Admission::Reject => Verdict::Reject,
        Admission::Deny => Verdict::Denied,
        Admission::DenyAutosigned => Verdict::DenyAutosigned,
        Admission::Full => Verdict::Full,
    }
}

fn admission_policy(shared: &Shared) -> AdmissionPolicy {
    let config = &shared.config;
    let autosign = match config.get_str("autosign_file") {
        Ok(Some(_)) => config
            .path("autosign_file", "")
            .map(|path| read_autosign(&path))
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    let max_pending = config
        .get_u64("max_pending_keys", DEFAULT_MAX_PENDING_KEYS)
        .unwrap_or(DEFAULT_MAX_PENDING_KEYS);
    AdmissionPolicy {
        auto_accept: config.get_bool("auto_accept", false).unwrap_or(false),
        autosign,
        max_pending: usize::try_from(max_pending).unwrap_or(usize::MAX),
    }
}

async fn handle(shared: Arc<Shared>, mut session: Session, stop: CancellationToken) {
    let peer = session.peer.clone();
    let Hello {
        id, role, grains, ..
    } = match hello(&mut session).await {
        Ok(hello) => hello,
        Err(NoHello::Silent(reason)) => {
            tracing::debug!("dropped a session from {peer}: {reason}");
            return;
        }
        Err(NoHello::Bad(reason)) => {
            if shared.sessions.refusal_due(Refusal::Bad, "", &peer) {
                tracing::warn!("refused a session from {peer}: {reason}");
            }
            let refusal = Message::Welcome(Welcome::Refused {
                reason,
                link: LinkVersion::master(),
            });
            let _ = session.tx.send(refusal.to_value().into()).await;
            return;
        }
        Err(NoHello::Mismatch { id, mismatch }) => {
            let key = presented_key(&shared, &id, &session.peer_key);
            let why = Refusal::Mismatch {
                own_key: key == PresentedKey::Accepted,
            };
            if shared.sessions.refusal_due(why, &id, &peer) {
                let named = if id.is_empty() { "without an id" } else { &id };
                tracing::warn!("refused minion {named} ({peer}): {mismatch}");
                let hash_type = shared.config.hash_type().unwrap_or("sha256");
                let fingerprint =
                    crate::keys::fingerprint(&session.peer_key, hash_type).unwrap_or_default();
                shared.bus.fire(
                    LinkMismatch {
                        id: &id,
                        peer: &peer,
                        fingerprint: &fingerprint,
                        key,
                        mismatch: &mismatch,
                    }
                    .to_event(),
                );
            }
            let refusal = Message::Welcome(Welcome::Refused {
                reason: mismatch.to_string(),
                link: mismatch.master,
            });
            let _ = session.tx.send(refusal.to_value().into()).await;
            return;
        }
    };
    let policy = admission_policy(&shared);
    let autosigns = policy.auto_accept || !policy.autosign.is_empty();
    let admission = {
        let keys = shared.keys.clone();
        let (id, key) = (id.clone(), session.peer_key.clone());
        tokio::task::spawn_blocking(move || keys.admit(&id, &key, &policy)).await
    };
    let admission = match admission {
        Ok(Ok(admission)) => {
            // A key filed or moved: the cluster gets it (an accepted key that was accepted
            // already, the common case, changes nothing).
            if admission != Admission::Accept || autosigns {
                shared.keys_changed.notify_one();
            }
            admission
        }
        Ok(Err(err)) => {
            tracing::error!("cannot file the key of minion {id}: {err}");
            return;
        }
        Err(_) => return,
    };
    if shared.config.get_bool("auth_events", true).unwrap_or(true) {
        let auth = Auth {
            id: &id,
            public_key: &session.peer_key,
            verdict: verdict(admission),
        };
        shared.bus.fire(auth.to_event());
    }
    if admission == Admission::Accept {
        // Before the welcome: what the minion sends once welcomed may be bigger than a hello.
        session.trust();
    }
    let welcome = Message::Welcome(Welcome::Verdict {
        act: verdict(admission),
        master: shared.id.clone(),
        link: LinkVersion::master(),
    });
    if session.tx.send(welcome.to_value().into()).await.is_err() {
        return;
    }
    let due = |why| shared.sessions.refusal_due(why, &id, &peer);
    match admission {
        Admission::Accept => {}
        Admission::Full => {
            if due(Refusal::Full) {
                tracing::warn!(
                    "refused minion {id} ({peer}): max_pending_keys keys already wait for an operator; its key is not filed"
                );
            }
            return;
        }
        Admission::Pend => {
            if due(Refusal::Pending) {
                tracing::info!("minion {id} ({peer}) is waiting for its key to be accepted");
            }
            return;
        }
        Admission::Reject => {
            if due(Refusal::Rejected) {
                tracing::warn!("refused minion {id} ({peer}): its key is rejected");
            }
            return;
        }
        Admission::Deny | Admission::DenyAutosigned => {
            if !due(Refusal::Denied) {
                return;
            }
            // A damaged accepted key file differs from every key; say which file it is.
            let damaged = shared
                .keys
                .key(KeyState::Accepted, &id)
                .is_some_and(|filed| crate::keys::public_der(&filed).is_none());
            if damaged {
                tracing::warn!(
                    "refused minion {id} ({peer}): its accepted key file {} holds no valid public key; delete it (salt-key -d {id} -y) and accept the key the minion presents next (salt-key -a {id})",
                    shared.keys.path(KeyState::Accepted, &id).display()
                );
            } else {
                tracing::warn!(
                    "refused minion {id} ({peer}): it presented a key that differs from the one on file; the new key is in minions_denied"
                );
            }
            return;
        }
    }
    // What the session's pillar requests are compiled with.
    let hello_grains = grains.clone();
    let registered =
        (role == Role::Minion).then(|| shared.sessions.register(&shared, &id, &session, grains));
    let close = registered
        .as_ref()
        .map(|(_, close)| close.clone())
        .unwrap_or_default();
    let serial = registered.as_ref().map(|(serial, _)| *serial);
    // The session's whole-pillar requests so far, in the order they came.
    let mut pillars_asked = 0u64;
    tracing::info!("minion {id} connected from {peer} ({})", role.as_str());
    let mut checked = std::time::Instant::now();
    let mut accepted = true;
    let mut refusals = RefusalLog::default();
    // Requests being answered; they end with the session.
    let mut answering = tokio::task::JoinSet::new();
    loop {
        let message = tokio::select! {
            _ = stop.cancelled() => break,
            _ = close.cancelled() => break,
            Some(_) = answering.join_next(), if !answering.is_empty() => continue,
            message = session.rx.recv() => match message {
                Some(message) => message,
                None => break,
            },
        };
        // The key file is read again at most once a second: `salt-key` changes end the
        // session at once through `salt/key`; this catches a key file removed by hand.
        if checked.elapsed() >= KEY_RECHECK {
            checked = std::time::Instant::now();
            accepted = still_accepted(&shared, &id, &session.peer_key);
        }
        if !accepted {
            tracing::warn!(
                "refused a message from minion {id} ({peer}): its key is no longer accepted; closing the session"
            );
            break;
        }
        if map_get(&message, "id")
            .and_then(Value::as_str)
            .is_some_and(|claimed| claimed != id)
        {
            tracing::warn!("refused a message from minion {id} ({peer}) claiming another id");
            continue;
        }
        let rid = request_id(&message);
        match Message::from_value(message) {
            Ok(Message::Request { rid, request }) => {
                if matches!(request, Request::Pillar { pillarenv: None }) {
                    pillars_asked += 1;
                }
                let asked = pillars_asked;
                let reply = if answering.len() >= IN_FLIGHT {
                    Some(Err(Failure::Busy {
                        limit: IN_FLIGHT as u64,
                    }))
                } else {
                    let (shared, tx, id, peer, grains) = (
                        shared.clone(),
                        session.tx.clone(),
                        id.clone(),
                        peer.clone(),
                        hello_grains.clone(),
                    );
                    answering.spawn(async move {
                        let reply = match request {
                            Request::Pillar { pillarenv } => {
                                let whole = pillarenv.is_none();
                                let reply =
                                    super::pillar::answer(&shared.config, &id, &grains, pillarenv)
                                        .await;
                                // Pillar targets are matched against what the minion daemon
                                // holds: the whole pillar it was sent last (every fetch, at
                                // connection, on a refresh and for every state and pillar
                                // call, comes through here).
                                if whole
                                    && let Some(serial) = serial
                                    && let Ok(Answer::Pillar(pillar)) = &reply
                                {
                                    shared.sessions.remember_pillar(
                                        &id,
                                        serial,
                                        asked,
                                        Arc::clone(pillar),
                                    );
                                }
                                reply
                            }
                            request => super::files::answer(&shared.files, request).await,
                        };
                        if let Err(Failure::File(FileError::Traversal { path })) = &reply {
                            tracing::warn!(
                                "refused minion {id} ({peer}) the file {path:?}: it leaves the file roots"
                            );
                        }
                        let _ = tx.send(Message::Reply { rid, reply }.to_value().into()).await;
                    });
                    None
                };
                if let Some(reply) = reply {
                    let _ = session
                        .tx
                        .try_send(Message::Reply { rid, reply }.to_value().into());
                }
            }
            Err(err) if rid.is_some() => {
                let reply = Err(Failure::Malformed {
                    reason: err.to_string(),
                });
                let rid = rid.unwrap_or_default();
                let _ = session
                    .tx
                    .try_send(Message::Reply { rid, reply }.to_value().into());
            }
            Ok(Message::MinionEvent(load)) => {
                let limit = shared.config.max_event_size().unwrap_or(u64::MAX);
                let (events, mut refused) = events_from_load(with_ts(load), &id);
                for event in events {
                    if let Err((event, size)) = shared.bus.fire_within(event, limit) {
                        refused.note(format!(
                            "{}: {size} bytes, over max_event_size ({limit})",
                            crate::output::clip(&event.tag, 200)
                        ));
                    }
                }
                refusals.add(&id, refused);
            }
            Ok(Message::Return(load)) => {
                let outcome = job_return(&shared, &id, load).await;
                if let Err(reason) = &outcome {
                    let mut refused = Refused::default();
                    refused.note(format!("a return: {reason}"));
                    refusals.add(&id, refused);
                }
                if let Some(reply) = return_reply(outcome, role)
                    && session.tx.try_send(reply.into()).is_err()
                {
                    tracing::warn!("cannot tell minion {id} ({peer}) what became of its return");
                }
            }
            other => {
                let mut refused = Refused::default();
                refused.note(match other {
                    Ok(message) => format!("a message with cmd {:?}", Some(message.cmd())),
                    Err(err) => err.to_string(),
                });
                refusals.add(&id, refused);
            }
        }
    }
    if let Some((serial, _)) = registered {
        shared.sessions.unregister(&shared, &id, serial);
    }
    tracing::info!("minion {id} ({peer}) disconnected");
}

fn still_accepted(shared: &Shared, id: &str, key: &str) -> bool {
    shared.keys.holds(KeyState::Accepted, id, key) == Some(true)
}

/// How `key`, presented by a peer claiming `id`, stands for that id.
fn presented_key(shared: &Shared, id: &str, key: &str) -> PresentedKey {
    let holds = |state| shared.keys.holds(state, id, key);
    match holds(KeyState::Accepted) {
        Some(true) => PresentedKey::Accepted,
        Some(false) => PresentedKey::Differs,
        None if holds(KeyState::Rejected) == Some(true) => PresentedKey::Rejected,
        None if holds(KeyState::Pending) == Some(true) => PresentedKey::Pending,
        None => PresentedKey::Unknown,
    }
}

/// The request channel stamps every load with the time it arrived, in whole seconds.
fn with_ts(load: Value) -> Value {
    match load {
        Value::Map(mut entries) => {
            if !entries.iter().any(|(k, _)| k.as_str() == Some("ts")) {
                entries.push((
                    Value::from("ts"),
                    Value::from(jiff::Timestamp::now().as_second()),
                ));
            }
            Value::Map(entries)
        }
        other => other,
    }
}

/// What the master tells the sender of a return: `salt-call` waits for `_return_ok` (with the
/// jid it got) or `_return_refused`; a minion daemon hears only of refusals, which it logs.
fn return_reply(outcome: Result<String, String>, role: Role) -> Option<Value> {
    let reply = match outcome {
        Ok(jid) if role == Role::Call => Message::ReturnOk { jid },
        Ok(_) => return None,
        Err(reason) => Message::ReturnRefused { reason },
    };
    Some(reply.to_value())
}

/// A job return: `salt/job/<jid>/ret/<id>` on the bus and the return in the job cache, within
/// the job cache's quotas. A return with jid `req` (from `salt-call`, or a scheduled job without
/// returners) gets a new jid first, as Salt's master gives it. A return of the minion's own
/// schedule (it has `schedule`) keeps a jid no published job has, as Salt's master keeps it, or
/// with jid `nocache` is announced and not kept. Returns the jid, or why the return was refused
/// (logged).
async fn job_return(shared: &Arc<Shared>, id: &str, load: Value) -> Result<String, String> {
    // Logged by the caller, at most once a second per minion.
    let refuse = |reason: String| Err(reason);
    let Value::Map(mut entries) = load else {
        return refuse("the return is not a map".to_owned());
    };
    let field = |entries: &[(Value, Value)], key: &str| {
        entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v.clone())
    };
    let mut jid = field(&entries, "jid")
        .and_then(|jid| jid.as_str().map(str::to_owned))
        .unwrap_or_default();
    let scheduled = field(&entries, "schedule").is_some();
    if scheduled && jid == "nocache" {
        fire_return(shared, id, &jid, entries)?;
        return Ok(jid);
    }
    let unpublished = jid == "req";
    if unpublished {
        jid = jid::gen_jid();
        map_set(&mut entries, Value::from("jid"), Value::from(jid.as_str()));
        // As Salt's master completes a return it has no job for (salt-call's has `arg`). The
        // target is the minion itself whatever its load says, so that no minion can say its
        // job ran on others.
        if field(&entries, "arg").is_none() {
            let fun_args = field(&entries, "fun_args").unwrap_or(Value::Array(Vec::new()));
            entries.push((Value::from("arg"), fun_args));
        }
        map_set(&mut entries, Value::from("tgt_type"), Value::from("glob"));
        map_set(&mut entries, Value::from("tgt"), Value::from(id));
    }
    if !jid::is_plain_jid(&jid) {
        return refuse(format!(
            "\"{}\" is not a jid",
            crate::event::tag::printable(&crate::output::clip(&jid, 64))
        ));
    }
    let mut own_job = unpublished;
    if !unpublished {
        // Only a job published to this minion takes its return; a scheduled job of its own
        // comes with a jid of its own, which no published job may have.
        let published_to_it = match shared.recent.of(&jid) {
            Some(targets) => Some(targets.contains(id)),
            None => {
                let (jobs, owned_jid) = (shared.jobs.clone(), jid.clone());
                tokio::task::spawn_blocking(move || jobs.job(&owned_jid))
                    .await
                    .ok()
                    .flatten()
                    .map(|job| job.minions.iter().any(|minion| minion == id))
            }
        };
        match published_to_it {
            Some(true) => {}
            None if scheduled => own_job = true,
            _ => return refuse(format!("job {jid} was not published to it")),
        }
    }
    let (stored, out) = crate::returners::local_cache::kept(&Value::Map(entries.clone()));
    // As Salt's master does for `req` returns, a job the minion started gets a load of its
    // own; it is charged with the return.
    let own_load = own_job.then(|| {
        let text = |key: &str| field(&entries, key).and_then(|v| v.as_str().map(str::to_owned));
        JobLoad {
            fun: text("fun").unwrap_or_default(),
            arg: field(&entries, "arg")
                .or_else(|| field(&entries, "fun_args"))
                .unwrap_or(Value::Nil),
            tgt: Value::from(id),
            jid: jid.clone(),
            ret: None,
            tgt_type: "glob".to_owned(),
            user: Some("root".to_owned()),
            ret_config: None,
            ret_kwargs: None,
        }
        .to_value()
    });
    let size =
        crate::link::packed_size(&stored) + own_load.as_ref().map_or(0, crate::link::packed_size);
    if let Err(err) = shared.jobs.charge(id, size as u64) {
        return refuse(err.to_string());
    }
    if let Some(load) = own_load {
        let (jobs, jid, minions) = (shared.jobs.clone(), jid.clone(), vec![id.to_owned()]);
        let (record, recorded_jid, targeted) = (load.clone(), jid.clone(), minions.clone());
        let saved =
            tokio::task::spawn_blocking(move || jobs.save_load(&jid, &load, &minions)).await;
        if let Ok(Err(err)) = saved {
            return refuse(format!("cannot store the job in the job cache: {err}"));
        }
        // The job store keeps the job too, as Salt's master saves a salt-call job's load.
        super::returns::job(shared, &recorded_jid, &record, &targeted);
    }
    super::returns::job_return(shared, &entries);
    fire_return(shared, id, &jid, entries)?;
    let (jobs, owned_id, owned_jid) = (shared.jobs.clone(), id.to_owned(), jid.clone());
    let saved = tokio::task::spawn_blocking(move || {
        jobs.save_return(&owned_jid, &owned_id, &stored, out.as_ref())
    })
    .await;
    match saved {
        Ok(Ok(())) => Ok(jid),
        Ok(Err(err)) => refuse(format!("cannot store the return in the job cache: {err}")),
        Err(err) => refuse(format!("cannot store the return in the job cache: {err}")),
    }
}

/// `salt/job/<jid>/ret/<id>` on the bus, stamped as Salt's master stamps it, and the failed
/// states of a state run after it.
fn fire_return(
    shared: &Arc<Shared>,
    id: &str,
    jid: &str,
    entries: Vec<(Value, Value)>,
) -> Result<(), String> {
    let refuse = |reason: String| Err(reason);
    let mut event = match Event::new(tags::job_return(jid, id), Value::Map(entries)) {
        Ok(event) => event,
        Err(err) => return refuse(err.to_string()),
    };
    // Salt's master stamps the return before it adds the arrival time.
    event.stamp();
    let event = Event {
        data: with_ts(event.data),
        ..event
    };
    // Over max_event_size the return is trimmed on the bus, as Salt trims it (the job cache
    // keeps it whole).
    let limit = shared.config.max_event_size().unwrap_or(u64::MAX);
    let failed_states = crate::proto::failed_state_events(&event.data);
    if let Err((mut event, size)) = shared.bus.fire_within(event, limit) {
        tracing::warn!(
            "the return of minion {id} for job {jid} is {size} bytes, over max_event_size; trimmed on the bus"
        );
        if let Value::Map(entries) = &mut event.data {
            map_set(entries, Value::from("return"), Value::from("VALUE_TRIMMED"));
        }
        shared.bus.fire(event);
    }
    for event in failed_states {
        shared.bus.fire(event);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_reported_once_a_minute_per_reason_id_and_host_in_bounded_memory() {
        let mut reports = RefusalReports::default();
        let start = Instant::now();
        let at = |secs| start + Duration::from_secs(secs);
        let mismatch = |reports: &mut RefusalReports, id: &str, host: &str, secs| {
            reports.due(Refusal::Mismatch { own_key: true }, id, host, at(secs))
        };
        assert!(mismatch(&mut reports, "web1", "10.0.0.1", 0));
        assert!(!mismatch(&mut reports, "web1", "10.0.0.1", 1));
        assert!(!mismatch(&mut reports, "web1", "10.0.0.1", 59));
        assert!(
            mismatch(&mut reports, "web2", "10.0.0.2", 59),
            "another minion"
        );
        assert!(
            mismatch(&mut reports, "web1", "10.0.0.9", 59),
            "a peer claiming the id elsewhere does not silence the minion"
        );
        assert!(reports.due(Refusal::Rejected, "web1", "10.0.0.1", at(59)));
        let forged = Refusal::Mismatch { own_key: false };
        assert!(
            reports.due(forged, "web1", "10.0.0.1", at(59)),
            "apart from the minion"
        );
        assert!(!reports.due(forged, "web1", "10.0.0.1", at(59)));
        assert!(mismatch(&mut reports, "web1", "10.0.0.1", 60));
        assert!(!mismatch(&mut reports, "web1", "10.0.0.1", 61));
        assert_eq!(reports.take_suppressed(), 4);
        assert_eq!(reports.take_suppressed(), 0);
        // A peer inventing ids: remembered up to the bound, then one report a minute for that
        // peer, while another host is still reported.
        let held = reports.last.len();
        for n in 0..2 * REFUSAL_REPORTS {
            let reported = mismatch(&mut reports, &format!("fake{n}"), "10.6.6.6", 62);
            assert_eq!(reported, n <= REFUSAL_REPORTS - held, "{n}");
        }
        assert_eq!(reports.last.len(), REFUSAL_REPORTS);
        assert_eq!(
            reports.take_suppressed(),
            (2 * REFUSAL_REPORTS - (REFUSAL_REPORTS - held + 1)) as u64
        );
        assert!(
            mismatch(&mut reports, "web3", "10.0.0.3", 100),
            "another host"
        );
        assert!(!mismatch(&mut reports, "web3", "10.0.0.3", 101));
        assert!(
            !mismatch(&mut reports, "web4", "10.0.0.3", 101),
            "one per host"
        );
        // Hosts beyond the bound share one report.
        for n in 0..REFUSAL_REPORTS - reports.hosts.len() {
            assert!(mismatch(&mut reports, "x", &format!("h{n}"), 102));
        }
        assert_eq!(reports.hosts.len(), REFUSAL_REPORTS);
        assert!(mismatch(&mut reports, "x", "elsewhere", 103));
        assert!(!mismatch(&mut reports, "y", "again", 104));
        // Those reported a minute ago are forgotten to make room.
        assert!(mismatch(&mut reports, "web3", "10.0.0.3", 165));
        assert_eq!(reports.last.len(), 1);
        assert!(!mismatch(&mut reports, "web3", "10.0.0.3", 166));
    }

    fn connect(sessions: &Sessions, id: &str, serial: u64) {
        let (tx, _rx) = mpsc::channel(1);
        sessions.lock().connected.insert(
            id.to_owned(),
            Connected {
                tx,
                serial,
                close: CancellationToken::new(),
                key: String::new(),
                address: String::new(),
            },
        );
    }

    #[test]
    fn the_pillar_remembered_is_the_latest_sent_on_the_minions_session() {
        let sessions = Sessions::default();
        let pillar = |text: &str| Arc::new(Value::from(text));
        let remembered = || sessions.pillar("m").map(|pillar| pillar.to_string());
        sessions.remember_pillar("m", 1, 1, pillar("not connected"));
        assert_eq!(remembered(), None);
        connect(&sessions, "m", 2);
        sessions.remember_pillar("m", 2, 2, pillar("second"));
        // Answers may be sent in another order than their requests came.
        sessions.remember_pillar("m", 2, 1, pillar("first"));
        assert_eq!(remembered().as_deref(), Some("\"second\""));
        sessions.remember_pillar("m", 1, 3, pillar("a replaced session's"));
        assert_eq!(remembered().as_deref(), Some("\"second\""));
        sessions.remember_pillar("m", 2, 3, pillar("third"));
        assert_eq!(remembered().as_deref(), Some("\"third\""));
        let shared = pillar("shared");
        sessions.remember_pillar("m", 2, 4, Arc::clone(&shared));
        assert!(Arc::ptr_eq(&sessions.pillar("m").unwrap(), &shared));
    }
}
