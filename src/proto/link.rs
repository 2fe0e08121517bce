//! The messages of the master–minion link: msgpack maps, each with a `cmd`.
//!
//! The link's transport answers and drops its own [`Keepalive`]s; everything else is a
//! [`Message`]. The loads minions send (`_minion_event`, `_return`) travel as the sender built
//! them ([`super::MinionEventLoad`], [`super::ReturnLoad`]): Salt's master fires a load under its
//! tag as it arrived, so the master reads from it only what it checks.
//!
//! A minion asks the master things with a [`Message::Request`] and hears back a
//! [`Message::Reply`] carrying the same request id (`rid`): today the file server's questions
//! ([`Request`]). The reply holds an [`Answer`] or a [`Failure`]; a new kind of question is one
//! more variant of each.
//!
//! The hello and every welcome carry the sender's [`LinkVersion`]: the link protocol it speaks
//! and the peers' protocols it accepts. Both sides run the same [`check`] on the pair, so they
//! agree on a mismatch and on which side to upgrade. A peer from before link versions sends none
//! and is taken as protocol 1 accepting any peer ([`LinkVersion::of`]), which it is: the
//! messages of protocol 1 are those it spoke.

use super::job::JobLoad;
use super::{Fields, ProtoError, entry, message};
use crate::event::Value;
use crate::fileserver::{Chunk, FileError, FileHash};

/// A message between a master and a minion.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// Minion → master, first on every session: who it is.
    Hello(Hello),
    /// Master → minion: the answer to the hello.
    Welcome(Welcome),
    /// Master → minion: a job to run.
    Publish(JobLoad),
    /// Minion → master: events for the master's bus, the load as sent.
    MinionEvent(Value),
    /// Minion → master: a job's return, the load as sent.
    Return(Value),
    /// Master → `salt-call`: its return is stored, under this jid.
    ReturnOk {
        /// The jid the master gave the return.
        jid: String,
    },
    /// Master → minion: a return was not taken.
    ReturnRefused {
        /// Why.
        reason: String,
    },
    /// Minion → master: a question, answered by a [`Message::Reply`] with the same `rid`.
    Request {
        /// The request id, unique among the sender's requests waiting on this session.
        rid: u64,
        /// The question.
        request: Request,
    },
    /// Master → minion: the answer to request `rid`.
    Reply {
        /// The request answered.
        rid: u64,
        /// The answer, or why there is none.
        reply: Result<Answer, Failure>,
    },
}

/// What a minion asks its master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `len` bytes of a file from `offset` (the master serves at most
    /// [`crate::fileserver::CHUNK`] per reply).
    FileRead {
        /// The environment.
        saltenv: String,
        /// The path under its roots.
        path: String,
        /// Where to start.
        offset: u64,
        /// How many bytes at most.
        len: u64,
    },
    /// A file's hash.
    FileHash {
        /// The environment.
        saltenv: String,
        /// The path under its roots.
        path: String,
    },
    /// Every file of an environment.
    FileList {
        /// The environment.
        saltenv: String,
    },
    /// The asking minion's pillar, compiled by the master (for the session's own minion id,
    /// never one the request names).
    Pillar {
        /// Only this environment (`pillarenv`), instead of every one.
        pillarenv: Option<String>,
    },
    /// Every directory of an environment.
    DirList {
        /// The environment.
        saltenv: String,
    },
    /// The environments.
    Envs,
}

/// What the master answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// A piece of a file.
    Chunk(Chunk),
    /// A file's hash.
    Hash(FileHash),
    /// Names: files, directories or environments.
    Names(Vec<String>),
    /// A compiled pillar (its `_errors` included), shared with whoever keeps it (the master
    /// remembers what it sent for pillar targets, the minion holds it in memory).
    Pillar(std::sync::Arc<Value>),
}

/// Why the master gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The file server refused or could not serve the request.
    #[error(transparent)]
    File(#[from] FileError),
    /// The session has as many requests in progress as the master takes.
    #[error(
        "the master is answering {limit} requests of this minion already; ask again when one is answered"
    )]
    Busy {
        /// Requests in progress a session may have.
        limit: u64,
    },
    /// The master could not read the request.
    #[error("the master could not read the request: {reason}")]
    Malformed {
        /// Why.
        reason: String,
    },
    /// The master could not compile the pillar at all.
    #[error("the master could not compile the pillar: {reason}")]
    Pillar {
        /// Why.
        reason: String,
    },
}

/// Who a session says it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Hello {
    /// The minion's id.
    pub id: String,
    /// What the session is for.
    pub role: Role,
    /// The minion's grains (`{}` when it sends none).
    pub grains: Value,
    /// The minion's link protocol and halite version.
    pub link: LinkVersion,
}

/// The link protocol this build speaks: the messages of this module as they are. Raise it when a
/// message changes so that a peer of the old protocol would misread it.
pub const PROTOCOL: u64 = 1;

/// The oldest minion protocol this build's master still serves; raise it when the master drops
/// what older minions need.
const OLDEST_MINION: u64 = 1;

/// What a peer that carries no link version is taken to speak: such a peer predates versions,
/// and spoke the messages of protocol 1.
const UNVERSIONED: u64 = 1;

/// What one side of the link speaks and which peers it accepts, as its hello or welcome says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkVersion {
    /// The link protocol it speaks.
    pub protocol: u64,
    /// The peers' protocols it accepts.
    pub accepts: Accepts,
    /// Its halite version, for people (`None` from a peer that predates link versions).
    pub halite: Option<String>,
}

/// The range of peer protocols a side accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepts {
    /// The oldest.
    pub oldest: u64,
    /// The newest, or `None` for any newer one.
    pub newest: Option<u64>,
}

impl Accepts {
    fn contains(self, protocol: u64) -> bool {
        protocol >= self.oldest && self.newest.is_none_or(|newest| protocol <= newest)
    }
}

impl std::fmt::Display for Accepts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.newest {
            Some(newest) => write!(f, "{} to {newest}", self.oldest),
            None => write!(f, "{} and later", self.oldest),
        }
    }
}

impl LinkVersion {
    /// This build's master: it serves minions from [`OLDEST_MINION`] up to its own protocol,
    /// never newer ones (masters are upgraded first, as with Salt).
    pub fn master() -> Self {
        Self::this_build(Accepts {
            oldest: OLDEST_MINION,
            newest: Some(PROTOCOL),
        })
    }

    /// This build's minion: it works with a master of its own protocol or newer, since a newer
    /// master knows which older minions it still serves.
    pub fn minion() -> Self {
        Self::this_build(Accepts {
            oldest: PROTOCOL,
            newest: None,
        })
    }

    fn this_build(accepts: Accepts) -> Self {
        Self {
            protocol: PROTOCOL,
            accepts,
            halite: Some(env!("CARGO_PKG_VERSION").to_owned()),
        }
    }

    /// The link version a hello or welcome carries, read before anything else in it so that
    /// a mismatch is told as one even when the rest is unreadable to this build. A message
    /// without one is from a peer that predates link versions: protocol 1, accepting any peer.
    pub fn of(message: &Value) -> Result<Self, ProtoError> {
        let payload = match super::command(message) {
            Some(WELCOME) => WELCOME,
            _ => HELLO,
        };
        let fields = Fields::of(payload, message)?;
        let protocol = match fields.optional("protocol") {
            None => UNVERSIONED,
            Some(_) => fields.u64("protocol")?,
        };
        let accepts = match fields.optional("accepts") {
            None => Accepts {
                oldest: UNVERSIONED,
                newest: None,
            },
            Some(range) => {
                let bad = || fields.mistyped("accepts", "[oldest, newest or nil]");
                match range.as_array().map(Vec::as_slice) {
                    Some([oldest, newest]) => Accepts {
                        oldest: oldest.as_u64().ok_or_else(bad)?,
                        newest: match newest {
                            Value::Nil => None,
                            newest => Some(newest.as_u64().ok_or_else(bad)?),
                        },
                    },
                    _ => return Err(bad()),
                }
            }
        };
        Ok(Self {
            protocol,
            accepts,
            // Printed in logs: a peer's text is clipped and kept on one line.
            halite: fields.opt_str("version")?.map(|halite| {
                let clipped: String = halite.chars().take(64).collect();
                crate::event::tag::printable(&clipped).into_owned()
            }),
        })
    }

    fn fields(&self) -> Vec<(Value, Value)> {
        let mut fields = vec![
            entry("protocol", self.protocol),
            entry(
                "accepts",
                Value::Array(vec![
                    Value::from(self.accepts.oldest),
                    self.accepts.newest.map_or(Value::Nil, Value::from),
                ]),
            ),
        ];
        if let Some(halite) = &self.halite {
            fields.push(entry("version", halite.as_str()));
        }
        fields
    }

    /// The link version as an event carries it: `protocol`, `accepts` and `version`.
    pub fn to_value(&self) -> Value {
        Value::Map(self.fields())
    }

    fn describe(
        &self,
        f: &mut std::fmt::Formatter<'_>,
        role: &str,
        peers: &str,
    ) -> std::fmt::Result {
        write!(f, "the {role} speaks link protocol {} (", self.protocol)?;
        match &self.halite {
            Some(halite) => write!(f, "halite {halite}")?,
            None => f.write_str("a halite from before link versions")?,
        }
        write!(f, ") and accepts {peers} of protocol {}", self.accepts)
    }
}

/// Which side a mismatch is fixed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upgrade {
    /// The master is older than the minion.
    Master,
    /// The minion is older than the master serves.
    Minion,
}

impl Upgrade {
    /// `master` or `minion`.
    pub fn as_str(self) -> &'static str {
        match self {
            Upgrade::Master => "master",
            Upgrade::Minion => "minion",
        }
    }
}

/// A minion and a master that cannot talk: one does not accept the other's link protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// What the minion speaks and accepts.
    pub minion: LinkVersion,
    /// What the master speaks and accepts.
    pub master: LinkVersion,
}

impl Mismatch {
    /// The side to upgrade: the older one (the master when both speak the same protocol, since
    /// masters go first).
    pub fn upgrade(&self) -> Upgrade {
        if self.minion.protocol < self.master.protocol {
            Upgrade::Minion
        } else {
            Upgrade::Master
        }
    }
}

impl std::error::Error for Mismatch {}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("link protocol mismatch: ")?;
        self.minion.describe(f, "minion", "masters")?;
        f.write_str("; ")?;
        self.master.describe(f, "master", "minions")?;
        match self.upgrade() {
            Upgrade::Master => f.write_str(
                "; upgrade the master to a halite that serves this minion (masters first, then minions)",
            ),
            Upgrade::Minion => f.write_str("; upgrade the minion to the master's halite"),
        }
    }
}

/// Whether a minion and a master can talk: each accepts the other's protocol.
pub fn check(minion: &LinkVersion, master: &LinkVersion) -> Result<(), Mismatch> {
    if master.accepts.contains(minion.protocol) && minion.accepts.contains(master.protocol) {
        Ok(())
    } else {
        Err(Mismatch {
            minion: minion.clone(),
            master: master.clone(),
        })
    }
}

/// What a session is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A minion daemon, which receives jobs (the default).
    Minion,
    /// `salt-call`, which only returns.
    Call,
}

impl Role {
    /// The role as the hello names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Minion => "minion",
            Role::Call => "call",
        }
    }
}

/// The master's answer to a hello.
#[derive(Debug, Clone, PartialEq)]
pub enum Welcome {
    /// The master judged the minion's key.
    Verdict {
        /// Its verdict.
        act: Verdict,
        /// The master's id.
        master: String,
        /// The master's link protocol and halite version.
        link: LinkVersion,
    },
    /// The hello was unusable, or its link protocol is not one the master accepts; no key was
    /// looked at.
    Refused {
        /// Why.
        reason: String,
        /// The master's link protocol and halite version.
        link: LinkVersion,
    },
}

impl Welcome {
    /// The master's link protocol and halite version.
    pub fn link(&self) -> &LinkVersion {
        match self {
            Welcome::Verdict { link, .. } | Welcome::Refused { link, .. } => link,
        }
    }
}

/// What the master decided about the key a minion presented, as the welcome and `salt/auth`
/// tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted: the session goes on.
    Accept,
    /// Waits for an operator.
    Pend,
    /// Rejected by an operator.
    Reject,
    /// Another key is on file for the id; this one is filed as denied.
    Denied,
    /// Another key arrived for a pending id that autosigning would have accepted; filed as
    /// denied (the minion hears `denied`; `salt/auth` has no `act`).
    DenyAutosigned,
    /// `max_pending_keys` keys already wait; the key is not filed.
    Full,
}

impl Verdict {
    /// The verdict's `act`, as the welcome and `salt/auth` spell it.
    pub fn act(self) -> &'static str {
        match self {
            Verdict::Accept => "accept",
            Verdict::Pend => "pend",
            Verdict::Reject => "reject",
            Verdict::Denied | Verdict::DenyAutosigned => "denied",
            Verdict::Full => "full",
        }
    }
}

/// The transport's liveness messages, which never reach the master's or minion's logic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keepalive {
    /// Sent on an idle session.
    Ping,
    /// The answer to a ping.
    Pong,
}

impl Keepalive {
    /// The keepalive `message` is, if it is one.
    pub fn of(message: &Value) -> Option<Self> {
        match super::command(message)? {
            "ping" => Some(Keepalive::Ping),
            "pong" => Some(Keepalive::Pong),
            _ => None,
        }
    }

    /// The message.
    pub fn to_value(self) -> Value {
        message(
            match self {
                Keepalive::Ping => "ping",
                Keepalive::Pong => "pong",
            },
            Vec::new(),
        )
    }
}

const HELLO: &str = "hello";
const WELCOME: &str = "welcome";
const PUBLISH: &str = "publish";
const MINION_EVENT: &str = "_minion_event";
const RETURN: &str = "_return";
const RETURN_OK: &str = "_return_ok";
const RETURN_REFUSED: &str = "_return_refused";
const REQUEST: &str = "_request";
const REPLY: &str = "_reply";

/// The request id of a `_request` or `_reply`, readable even when the rest is not, so that a
/// malformed request can still be answered.
pub fn request_id(message: &Value) -> Option<u64> {
    matches!(super::command(message), Some(REQUEST | REPLY))
        .then(|| crate::event::map_get(message, "rid")?.as_u64())
        .flatten()
}

impl Request {
    fn fields(&self) -> Vec<(Value, Value)> {
        let place = |kind: &str, saltenv: &str, path: &str| {
            vec![
                entry("kind", kind),
                entry("saltenv", saltenv),
                entry("path", path),
            ]
        };
        match self {
            Request::FileRead {
                saltenv,
                path,
                offset,
                len,
            } => {
                let mut fields = place("file_read", saltenv, path);
                fields.extend([entry("offset", *offset), entry("len", *len)]);
                fields
            }
            Request::FileHash { saltenv, path } => place("file_hash", saltenv, path),
            Request::FileList { saltenv } => {
                vec![
                    entry("kind", "file_list"),
                    entry("saltenv", saltenv.as_str()),
                ]
            }
            Request::DirList { saltenv } => {
                vec![
                    entry("kind", "dir_list"),
                    entry("saltenv", saltenv.as_str()),
                ]
            }
            Request::Envs => vec![entry("kind", "envs")],
            Request::Pillar { pillarenv } => vec![
                entry("kind", "pillar"),
                entry(
                    "pillarenv",
                    pillarenv.as_deref().map_or(Value::Nil, Value::from),
                ),
            ],
        }
    }

    fn from_fields(fields: &Fields<'_>) -> Result<Self, ProtoError> {
        let text = |field| fields.str(field).map(str::to_owned);
        Ok(match fields.str("kind")? {
            "file_read" => Request::FileRead {
                saltenv: text("saltenv")?,
                path: text("path")?,
                offset: fields.u64("offset")?,
                len: fields.u64("len")?,
            },
            "file_hash" => Request::FileHash {
                saltenv: text("saltenv")?,
                path: text("path")?,
            },
            "file_list" => Request::FileList {
                saltenv: text("saltenv")?,
            },
            "dir_list" => Request::DirList {
                saltenv: text("saltenv")?,
            },
            "envs" => Request::Envs,
            "pillar" => Request::Pillar {
                pillarenv: fields.opt_str("pillarenv")?.map(str::to_owned),
            },
            _ => {
                return Err(fields.mistyped(
                    "kind",
                    "file_read, file_hash, file_list, dir_list, envs or pillar",
                ));
            }
        })
    }
}

fn reply_fields(reply: &Result<Answer, Failure>) -> Vec<(Value, Value)> {
    let hash = |hash: &FileHash| {
        [
            entry("hsum", hash.hsum.as_str()),
            entry("hash_type", hash.hash_type.as_str()),
        ]
    };
    let mut fields = Vec::new();
    match reply {
        Ok(Answer::Chunk(chunk)) => {
            fields.extend([
                entry("kind", "chunk"),
                entry("data", Value::Binary(chunk.data.clone())),
            ]);
            fields.extend(hash(&chunk.hash));
            fields.push(entry("mode", chunk.mode));
        }
        Ok(Answer::Hash(found)) => {
            fields.push(entry("kind", "hash"));
            fields.extend(hash(found));
        }
        Ok(Answer::Names(names)) => {
            fields.extend([
                entry("kind", "names"),
                entry("names", super::strings(names)),
            ]);
        }
        Ok(Answer::Pillar(pillar)) => {
            fields.extend([
                entry("kind", "pillar"),
                entry("pillar", Value::clone(pillar)),
            ]);
        }
        Err(failure) => {
            fields.push(entry("kind", "error"));
            let text = |key: &str, value: &str| entry(key, value);
            fields.extend(match failure {
                Failure::File(FileError::Traversal { path }) => {
                    vec![text("error", "traversal"), text("path", path)]
                }
                Failure::File(FileError::NotFound { path, saltenv }) => vec![
                    text("error", "not_found"),
                    text("path", path),
                    text("saltenv", saltenv),
                ],
                Failure::File(FileError::UnknownEnv(saltenv)) => {
                    vec![text("error", "unknown_env"), text("saltenv", saltenv)]
                }
                Failure::File(FileError::BadUrl { url }) => {
                    vec![text("error", "bad_url"), text("url", url)]
                }
                Failure::File(FileError::Io { path, reason }) => vec![
                    text("error", "io"),
                    text("path", path),
                    text("reason", reason),
                ],
                Failure::File(FileError::Unreachable { what, reason }) => vec![
                    text("error", "unreachable"),
                    text("what", what),
                    text("reason", reason),
                ],
                Failure::Busy { limit } => vec![text("error", "busy"), entry("limit", *limit)],
                Failure::Malformed { reason } => {
                    vec![text("error", "malformed"), text("reason", reason)]
                }
                Failure::Pillar { reason } => {
                    vec![text("error", "pillar"), text("reason", reason)]
                }
            });
        }
    }
    fields
}

fn reply_from_fields(fields: &Fields<'_>) -> Result<Result<Answer, Failure>, ProtoError> {
    let text = |field| fields.str(field).map(str::to_owned);
    let hash = || -> Result<FileHash, ProtoError> {
        Ok(FileHash {
            hsum: text("hsum")?,
            hash_type: text("hash_type")?,
        })
    };
    Ok(match fields.str("kind")? {
        "chunk" => Ok(Answer::Chunk(Chunk {
            data: fields.bytes("data")?.to_vec(),
            hash: hash()?,
            mode: u32::try_from(fields.u64("mode")?)
                .map_err(|_| fields.mistyped("mode", "a file mode"))?,
        })),
        "hash" => Ok(Answer::Hash(hash()?)),
        "names" => Ok(Answer::Names(fields.strings("names")?)),
        "error" => Err(match fields.str("error")? {
            "traversal" => FileError::Traversal {
                path: text("path")?,
            }
            .into(),
            "not_found" => FileError::NotFound {
                path: text("path")?,
                saltenv: text("saltenv")?,
            }
            .into(),
            "unknown_env" => FileError::UnknownEnv(text("saltenv")?).into(),
            "bad_url" => FileError::BadUrl { url: text("url")? }.into(),
            "io" => FileError::Io {
                path: text("path")?,
                reason: text("reason")?,
            }
            .into(),
            "unreachable" => FileError::Unreachable {
                what: text("what")?,
                reason: text("reason")?,
            }
            .into(),
            "busy" => Failure::Busy {
                limit: fields.u64("limit")?,
            },
            "malformed" => Failure::Malformed {
                reason: text("reason")?,
            },
            "pillar" => Failure::Pillar {
                reason: text("reason")?,
            },
            _ => {
                return Err(fields.mistyped(
                    "error",
                    "traversal, not_found, unknown_env, bad_url, io, unreachable, busy, malformed or pillar",
                ));
            }
        }),
        "pillar" => Ok(Answer::Pillar(std::sync::Arc::new(
            fields.value("pillar")?.clone(),
        ))),
        _ => return Err(fields.mistyped("kind", "chunk, hash, names, pillar or error")),
    })
}

impl Message {
    /// The message's `cmd`.
    pub fn cmd(&self) -> &'static str {
        match self {
            Message::Hello(_) => HELLO,
            Message::Welcome(_) => WELCOME,
            Message::Publish(_) => PUBLISH,
            Message::MinionEvent(_) => MINION_EVENT,
            Message::Return(_) => RETURN,
            Message::ReturnOk { .. } => RETURN_OK,
            Message::ReturnRefused { .. } => RETURN_REFUSED,
            Message::Request { .. } => REQUEST,
            Message::Reply { .. } => REPLY,
        }
    }

    /// The message as the link carries it.
    pub fn to_value(&self) -> Value {
        let fields = match self {
            Message::Hello(hello) => {
                let mut fields = vec![
                    entry("id", hello.id.as_str()),
                    entry("role", hello.role.as_str()),
                    entry("grains", hello.grains.clone()),
                ];
                fields.extend(hello.link.fields());
                fields
            }
            Message::Welcome(Welcome::Verdict { act, master, link }) => {
                let mut fields = vec![entry("act", act.act()), entry("master", master.as_str())];
                fields.extend(link.fields());
                fields
            }
            Message::Welcome(Welcome::Refused { reason, link }) => {
                let mut fields = vec![entry("act", "refused"), entry("reason", reason.as_str())];
                fields.extend(link.fields());
                fields
            }
            Message::Publish(load) => vec![entry("load", load.to_value())],
            Message::MinionEvent(load) | Message::Return(load) => return load.clone(),
            Message::ReturnOk { jid } => vec![entry("jid", jid.as_str())],
            Message::ReturnRefused { reason } => vec![entry("reason", reason.as_str())],
            Message::Request { rid, request } => {
                let mut fields = vec![entry("rid", *rid)];
                fields.extend(request.fields());
                fields
            }
            Message::Reply { rid, reply } => {
                let mut fields = vec![entry("rid", *rid)];
                fields.extend(reply_fields(reply));
                fields
            }
        };
        message(self.cmd(), fields)
    }

    /// Reads a message; the loads minions send are taken whole, without a copy.
    pub fn from_value(value: Value) -> Result<Self, ProtoError> {
        let cmd = super::command(&value);
        match cmd {
            Some(MINION_EVENT) => return Ok(Message::MinionEvent(value)),
            Some(RETURN) => return Ok(Message::Return(value)),
            _ => {}
        }
        Ok(match cmd {
            Some(HELLO) => {
                let fields = Fields::of(HELLO, &value)?;
                Message::Hello(Hello {
                    id: fields.str("id")?.to_owned(),
                    role: match fields.opt_str("role")? {
                        None | Some("minion") => Role::Minion,
                        Some("call") => Role::Call,
                        Some(_) => return Err(fields.mistyped("role", "minion or call")),
                    },
                    grains: fields
                        .optional("grains")
                        .cloned()
                        .unwrap_or_else(|| Value::Map(Vec::new())),
                    link: LinkVersion::of(&value)?,
                })
            }
            Some(WELCOME) => {
                let fields = Fields::of(WELCOME, &value)?;
                let link = LinkVersion::of(&value)?;
                let act = match fields.str("act")? {
                    "refused" => {
                        return Ok(Message::Welcome(Welcome::Refused {
                            reason: fields.str("reason")?.to_owned(),
                            link,
                        }));
                    }
                    "accept" => Verdict::Accept,
                    "pend" => Verdict::Pend,
                    "reject" => Verdict::Reject,
                    "denied" => Verdict::Denied,
                    "full" => Verdict::Full,
                    _ => {
                        return Err(
                            fields.mistyped("act", "accept, pend, reject, denied, full or refused")
                        );
                    }
                };
                Message::Welcome(Welcome::Verdict {
                    act,
                    master: fields.str("master")?.to_owned(),
                    link,
                })
            }
            Some(PUBLISH) => Message::Publish(JobLoad::from_value(
                Fields::of(PUBLISH, &value)?.value("load")?,
            )?),
            Some(RETURN_OK) => Message::ReturnOk {
                jid: Fields::of(RETURN_OK, &value)?.str("jid")?.to_owned(),
            },
            Some(RETURN_REFUSED) => Message::ReturnRefused {
                reason: Fields::of(RETURN_REFUSED, &value)?
                    .str("reason")?
                    .to_owned(),
            },
            Some(REQUEST) => {
                let fields = Fields::of(REQUEST, &value)?;
                Message::Request {
                    rid: fields.u64("rid")?,
                    request: Request::from_fields(&fields)?,
                }
            }
            Some(REPLY) => {
                let fields = Fields::of(REPLY, &value)?;
                Message::Reply {
                    rid: fields.u64("rid")?,
                    reply: reply_from_fields(&fields)?,
                }
            }
            other => {
                return Err(ProtoError::UnknownCommand(
                    other.map(|cmd| cmd.chars().take(64).collect()),
                ));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load() -> JobLoad {
        JobLoad {
            fun: "test.ping".into(),
            arg: Value::Array(Vec::new()),
            tgt: Value::from("*"),
            jid: "20261124090213841646".into(),
            ret: Some(String::new()),
            tgt_type: "glob".into(),
            user: Some("root".into()),
            ret_config: None,
            ret_kwargs: None,
        }
    }

    #[test]
    fn every_message_round_trips_with_its_fields_in_order() {
        let hello = Message::Hello(Hello {
            id: "m1".into(),
            role: Role::Call,
            grains: Value::Map(vec![entry("os", "Linux")]),
            link: link(2, 2, None, Some("0.1.0")),
        });
        assert_eq!(
            hello.to_value().to_string(),
            r#"{"cmd": "hello", "id": "m1", "role": "call", "grains": {"os": "Linux"}, "protocol": 2, "accepts": [2, nil], "version": "0.1.0"}"#
        );
        let welcome = Message::Welcome(Welcome::Verdict {
            act: Verdict::Pend,
            master: "salt".into(),
            link: link(3, 1, Some(3), Some("0.2.0")),
        });
        assert_eq!(
            welcome.to_value().to_string(),
            r#"{"cmd": "welcome", "act": "pend", "master": "salt", "protocol": 3, "accepts": [1, 3], "version": "0.2.0"}"#
        );
        let refused = Message::Welcome(Welcome::Refused {
            reason: "no".into(),
            link: LinkVersion::master(),
        });
        assert_eq!(
            refused.to_value().to_string(),
            format!(
                r#"{{"cmd": "welcome", "act": "refused", "reason": "no", "protocol": {PROTOCOL}, "accepts": [1, {PROTOCOL}], "version": "{}"}}"#,
                env!("CARGO_PKG_VERSION")
            )
        );
        let event = Message::MinionEvent(message("_minion_event", vec![entry("tag", "t")]));
        let ret = Message::Return(message("_return", vec![entry("jid", "req")]));
        for message in [
            hello,
            welcome,
            refused,
            Message::Publish(load()),
            event,
            ret,
            Message::ReturnOk { jid: "1".into() },
            Message::ReturnRefused {
                reason: "quota".into(),
            },
        ] {
            assert_eq!(Message::from_value(message.to_value()), Ok(message));
        }
        for act in [
            Verdict::Accept,
            Verdict::Pend,
            Verdict::Reject,
            Verdict::Denied,
            Verdict::Full,
        ] {
            let welcome = Message::Welcome(Welcome::Verdict {
                act,
                master: "salt".into(),
                link: LinkVersion::master(),
            });
            assert_eq!(Message::from_value(welcome.to_value()), Ok(welcome));
        }
    }

    fn link(protocol: u64, oldest: u64, newest: Option<u64>, halite: Option<&str>) -> LinkVersion {
        LinkVersion {
            protocol,
            accepts: Accepts { oldest, newest },
            halite: halite.map(str::to_owned),
        }
    }

    #[test]
    fn a_bare_hello_is_a_minion_without_grains_of_protocol_1_accepting_any_master() {
        let hello = Message::from_value(message("hello", vec![entry("id", "m1")]));
        assert_eq!(
            hello,
            Ok(Message::Hello(Hello {
                id: "m1".into(),
                role: Role::Minion,
                grains: Value::Map(Vec::new()),
                link: link(1, 1, None, None),
            }))
        );
        let welcome = message(
            "welcome",
            vec![entry("act", "accept"), entry("master", "m")],
        );
        assert_eq!(LinkVersion::of(&welcome), Ok(link(1, 1, None, None)));
    }

    #[test]
    fn both_sides_accept_each_others_protocol_or_name_the_side_to_upgrade() {
        let master = link(3, 2, Some(3), Some("0.3.0"));
        for (minion, upgrade) in [
            (link(2, 2, None, None), None),
            (link(3, 3, None, None), None),
            (link(1, 1, None, None), Some(Upgrade::Minion)),
            (link(4, 4, None, Some("0.4.0")), Some(Upgrade::Master)),
            // Accepted by the master, but it does not accept a master this old.
            (link(3, 4, None, None), Some(Upgrade::Master)),
        ] {
            let checked = check(&minion, &master);
            assert_eq!(
                checked.as_ref().err().map(Mismatch::upgrade),
                upgrade,
                "{minion:?}"
            );
        }
        let mismatch = check(&link(4, 4, None, Some("0.4.0")), &master).unwrap_err();
        assert_eq!(
            mismatch.to_string(),
            "link protocol mismatch: the minion speaks link protocol 4 (halite 0.4.0) and accepts masters of protocol 4 and later; the master speaks link protocol 3 (halite 0.3.0) and accepts minions of protocol 2 to 3; upgrade the master to a halite that serves this minion (masters first, then minions)"
        );
        let old = check(&link(1, 1, None, None), &master).unwrap_err();
        assert!(
            old.to_string()
                .contains("speaks link protocol 1 (a halite from before link versions)")
                && old
                    .to_string()
                    .ends_with("; upgrade the minion to the master's halite"),
            "{old}"
        );
        // This build talks to itself and to peers from before link versions.
        assert_eq!(
            check(&LinkVersion::minion(), &LinkVersion::master()),
            Ok(())
        );
        assert_eq!(
            check(&link(1, 1, None, None), &LinkVersion::master()),
            Ok(())
        );
        assert_eq!(
            check(&LinkVersion::minion(), &link(1, 1, None, None)),
            Ok(())
        );
    }

    #[test]
    fn malformed_messages_are_refused_naming_the_field() {
        let refused = |cmd: &str, fields: Vec<(Value, Value)>| {
            Message::from_value(message(cmd, fields))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(refused("hello", vec![]), "hello has no id");
        assert_eq!(
            refused("hello", vec![entry("id", 7)]),
            "hello's id is not a string"
        );
        assert_eq!(
            refused("hello", vec![entry("id", "m1"), entry("role", "boss")]),
            "hello's role is not minion or call"
        );
        assert_eq!(
            refused("welcome", vec![entry("act", "maybe")]),
            "welcome's act is not accept, pend, reject, denied, full or refused"
        );
        assert_eq!(
            refused("welcome", vec![entry("act", "refused")]),
            "welcome has no reason"
        );
        assert_eq!(
            refused("hello", vec![entry("id", "m1"), entry("protocol", "2")]),
            "hello's protocol is not a non-negative integer"
        );
        assert_eq!(
            refused("welcome", vec![entry("act", "accept"), entry("accepts", 1)]),
            "welcome's accepts is not [oldest, newest or nil]"
        );
        assert_eq!(
            refused("welcome", vec![entry("act", "accept")]),
            "welcome has no master"
        );
        assert_eq!(refused("publish", vec![]), "publish has no load");
        assert_eq!(
            refused("publish", vec![entry("load", Value::Map(Vec::new()))]),
            "job load has no fun"
        );
        assert_eq!(
            refused("_return_ok", vec![entry("jid", Value::Nil)]),
            "_return_ok's jid is not a string"
        );
        assert_eq!(
            refused("_return_refused", vec![]),
            "_return_refused has no reason"
        );
        assert_eq!(
            refused("shout", vec![]),
            r#"a message with cmd Some("shout")"#
        );
        assert_eq!(
            Message::from_value(Value::from(1)),
            Err(ProtoError::UnknownCommand(None))
        );
    }

    fn file_messages() -> Vec<Message> {
        let place = || ("base".to_owned(), "dir/f.conf".to_owned());
        let (saltenv, path) = place();
        let hash = FileHash {
            hsum: "ab12".into(),
            hash_type: "sha256".into(),
        };
        let mut messages = vec![
            Message::Request {
                rid: 1,
                request: Request::FileRead {
                    saltenv: saltenv.clone(),
                    path: path.clone(),
                    offset: 262_144,
                    len: 262_144,
                },
            },
            Message::Request {
                rid: 2,
                request: Request::FileHash {
                    saltenv: saltenv.clone(),
                    path: path.clone(),
                },
            },
            Message::Request {
                rid: 3,
                request: Request::FileList {
                    saltenv: saltenv.clone(),
                },
            },
            Message::Request {
                rid: 4,
                request: Request::DirList {
                    saltenv: saltenv.clone(),
                },
            },
            Message::Request {
                rid: u64::MAX,
                request: Request::Envs,
            },
            Message::Request {
                rid: 5,
                request: Request::Pillar { pillarenv: None },
            },
            Message::Request {
                rid: 6,
                request: Request::Pillar {
                    pillarenv: Some("dev".into()),
                },
            },
            Message::Reply {
                rid: 1,
                reply: Ok(Answer::Chunk(Chunk {
                    data: vec![0, 159, 255],
                    hash: hash.clone(),
                    mode: 0o640,
                })),
            },
            Message::Reply {
                rid: 2,
                reply: Ok(Answer::Hash(hash)),
            },
            Message::Reply {
                rid: 3,
                reply: Ok(Answer::Names(vec!["a".into(), "b/c".into()])),
            },
            Message::Reply {
                rid: 5,
                reply: Ok(Answer::Pillar(std::sync::Arc::new(Value::Map(vec![(
                    Value::from("k"),
                    Value::from("v"),
                )])))),
            },
        ];
        let failures = [
            Failure::File(FileError::Traversal {
                path: "../x".into(),
            }),
            Failure::File(FileError::NotFound {
                path: path.clone(),
                saltenv: saltenv.clone(),
            }),
            Failure::File(FileError::UnknownEnv("dev".into())),
            Failure::File(FileError::BadUrl { url: "x".into() }),
            Failure::File(FileError::Io {
                path: path.clone(),
                reason: "denied".into(),
            }),
            Failure::File(FileError::Unreachable {
                what: path,
                reason: "gone".into(),
            }),
            Failure::Busy { limit: 16 },
            Failure::Malformed {
                reason: "odd".into(),
            },
            Failure::Pillar {
                reason: "bad pillar_roots".into(),
            },
        ];
        messages.extend(failures.into_iter().map(|failure| Message::Reply {
            rid: 9,
            reply: Err(failure),
        }));
        messages
    }

    #[test]
    fn requests_and_replies_round_trip_with_their_ids() {
        for message in file_messages() {
            let value = message.to_value();
            assert_eq!(
                request_id(&value),
                Some(match &message {
                    Message::Request { rid, .. } | Message::Reply { rid, .. } => *rid,
                    _ => unreachable!(),
                })
            );
            assert_eq!(Message::from_value(value), Ok(message));
        }
        assert_eq!(
            file_messages()[0].to_value().to_string(),
            r#"{"cmd": "_request", "rid": 1, "kind": "file_read", "saltenv": "base", "path": "dir/f.conf", "offset": 262144, "len": 262144}"#
        );
        let traversal = file_messages()
            .into_iter()
            .find(|message| matches!(message, Message::Reply { rid: 9, .. }))
            .unwrap();
        assert_eq!(
            traversal.to_value().to_string(),
            r#"{"cmd": "_reply", "rid": 9, "kind": "error", "error": "traversal", "path": "../x"}"#
        );
        assert_eq!(
            request_id(&Message::ReturnOk { jid: "1".into() }.to_value()),
            None
        );
    }

    #[test]
    fn malformed_requests_and_replies_are_refused_naming_the_field() {
        let refused = |cmd: &str, fields: Vec<(Value, Value)>| {
            Message::from_value(message(cmd, fields))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(refused("_request", vec![]), "_request has no rid");
        assert_eq!(
            refused("_request", vec![entry("rid", -1)]),
            "_request's rid is not a non-negative integer"
        );
        assert_eq!(
            refused("_request", vec![entry("rid", 1), entry("kind", "cake")]),
            "_request's kind is not file_read, file_hash, file_list, dir_list, envs or pillar"
        );
        assert_eq!(
            refused(
                "_request",
                vec![
                    entry("rid", 1),
                    entry("kind", "file_read"),
                    entry("saltenv", "base"),
                    entry("path", "x"),
                    entry("offset", "0")
                ]
            ),
            "_request's offset is not a non-negative integer"
        );
        assert_eq!(
            refused(
                "_request",
                vec![
                    entry("rid", 1),
                    entry("kind", "file_hash"),
                    entry("saltenv", "base")
                ]
            ),
            "_request has no path"
        );
        assert_eq!(
            refused(
                "_reply",
                vec![
                    entry("rid", 1),
                    entry("kind", "names"),
                    entry("names", Value::Array(vec![Value::from(1)]))
                ]
            ),
            "_reply's names is not a list of strings"
        );
        assert_eq!(
            refused(
                "_reply",
                vec![entry("rid", 1), entry("kind", "chunk"), entry("data", 5)]
            ),
            "_reply's data is not bytes"
        );
        assert_eq!(
            refused(
                "_reply",
                vec![
                    entry("rid", 1),
                    entry("kind", "error"),
                    entry("error", "oops")
                ]
            ),
            "_reply's error is not traversal, not_found, unknown_env, bad_url, io, unreachable, busy, malformed or pillar"
        );
        // The id of a request that cannot be read is still found, to answer it.
        assert_eq!(
            request_id(&message(
                "_request",
                vec![entry("rid", 7), entry("kind", 1)]
            )),
            Some(7)
        );
    }

    #[test]
    fn keepalives_are_told_apart_from_messages() {
        for keepalive in [Keepalive::Ping, Keepalive::Pong] {
            assert_eq!(Keepalive::of(&keepalive.to_value()), Some(keepalive));
        }
        assert_eq!(Keepalive::of(&Message::Publish(load()).to_value()), None);
    }
}
