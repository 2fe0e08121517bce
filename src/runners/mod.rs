//! Runner functions: what `salt-run` runs on the master and what `runner.*` reactions call,
//! with Salt's names, arguments and returns, announced by Salt's `salt/run/<jid>/new` and
//! `…/ret` events.
//!
//! [`RUNNERS`] is the one list of them: each entry's name, summary, parameters and behaviour.
//! Dispatch ([`call`]), [`exists`], the parameters a legacy reaction passes positionally,
//! `salt-run`'s help and completions are read from it. [`announced`] is the one sequence of
//! events around a runner or wheel call, for `salt-run` and for reactions.
//!
//! `state.event`, `event.bench` and `reactor.dry_run` stream, measure or print rather than
//! return, so `salt-run` alone runs them and a reaction cannot call them: [`SALT_RUN_OWN`]
//! holds their signatures.

pub mod http;
pub mod jobs;
mod manage;
mod ret;
mod test;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::bus::BusHandle;
use crate::client::Publisher;
use crate::config::Config;
use crate::event::{Event, Value, jid, map_get, map_set};
use crate::py::value::py_str;
use crate::salt_yaml::CliArgs;
use crate::signature::{ArgumentsError, Signature, text};

/// `salt-run`'s own functions: listed with the runners (help, completions,
/// `sys.list_runners`) but run by `salt-run` alone.
pub const SALT_RUN_OWN: [&Signature; 3] = [&STATE_EVENT, &EVENT_BENCH, &DRY_RUN];

/// `state.event`'s parameters, Salt's plus `format` (`salt` lines or one `json` object per line),
/// `match` (`whole`, or Salt's own `salt` semantics for regex alternatives) and, on a master in
/// a cluster, `since` and `last` (the bus replayed from the cluster's stream).
pub const STATE_EVENT: Signature = Signature {
    name: "state.event",
    summary: "Prints a bus's events as they arrive, as Salt's state.event does",
    params: &[
        "tagmatch", "count", "quiet", "sock_dir", "pretty", "node", "format", "match", "since",
        "last",
    ],
    required: 0,
    kwargs: false,
    usage: "state.event [tagmatch='*'] [count=-1] [quiet=False] [sock_dir=DIR] [pretty=False] [node=master|minion] [format=salt|json] [match=whole|salt] [since=ID|TIME|10m] [last=N]",
};

/// `event.bench`'s parameters: halite's own runner, a load generator for any Salt bus.
pub const EVENT_BENCH: Signature = Signature {
    name: "event.bench",
    summary: "Load-tests a bus speaking Salt's protocol, or the reference relay",
    params: &[
        "publishers",
        "subscribers",
        "stalled",
        "size",
        "count",
        "rate",
        "idle",
        "relay",
        "sock_dir",
        "node",
    ],
    required: 0,
    kwargs: false,
    usage: "salt-run event.bench [publishers=1] [subscribers=1] [stalled=0] [size=100] [count=100000] [rate=EVENTS_PER_S] [idle=SECONDS] [relay=True] [sock_dir=DIR] [node=master|minion]",
};

/// `reactor.dry_run`'s parameters.
pub const DRY_RUN: Signature = Signature {
    name: "reactor.dry_run",
    summary: "What the reactor would do for an event, without doing it",
    params: &["tag", "data"],
    required: 1,
    kwargs: false,
    usage: "salt-run reactor.dry_run TAG [DATA] | reactor.dry_run 'TAG<TAB>{json}' | reactor.dry_run -   (lines of state.event from stdin)",
};

/// What a runner's or wheel function's behaviour returns: its return, later.
pub type Calling<'a> = Pin<Box<dyn Future<Output = Result<Value, RunnerError>> + Send + 'a>>;

/// What a runner or wheel function does: called with the master's configuration, the sink its
/// events go to, and its arguments.
pub type Behaviour = for<'a> fn(&'a Config, &'a mut EventSink, &'a CliArgs) -> Calling<'a>;

/// One runner or wheel function (the master's own functions): its signature (name, summary,
/// parameters) and what it does.
#[derive(Debug)]
pub struct MasterFunction {
    /// Its name, summary and parameters.
    pub signature: Signature,
    /// What it does.
    pub run: Behaviour,
}

impl MasterFunction {
    /// `module.function`.
    pub fn name(&self) -> &'static str {
        self.signature.name
    }

    /// The parameters a legacy reaction passes positionally: the required ones.
    pub fn positional(&self) -> &'static [&'static str] {
        self.signature.required_params()
    }
}

/// A behaviour that is done at once.
pub(crate) fn done<'a>(result: Result<Value, RunnerError>) -> Calling<'a> {
    Box::pin(std::future::ready(result))
}

/// Every runner halite has, sorted.
pub static RUNNERS: &[MasterFunction] = &[
    MasterFunction {
        signature: EVENT_SEND,
        run: |_, sink, args| Box::pin(event_send(sink, args)),
    },
    MasterFunction {
        signature: http::QUERY,
        run: |config, _, args| Box::pin(http::query(config, args)),
    },
    MasterFunction {
        signature: jobs::ACTIVE,
        run: |config, _, args| Box::pin(jobs::run_active(config, args)),
    },
    MasterFunction {
        signature: jobs::LIST_JOB,
        run: |config, _, args| Box::pin(jobs::run_list_job(config, args)),
    },
    MasterFunction {
        signature: jobs::LIST_JOBS,
        run: |config, _, args| Box::pin(jobs::run_list_jobs(config, args)),
    },
    MasterFunction {
        signature: jobs::LOOKUP_JID,
        run: |config, _, args| Box::pin(jobs::run_lookup_jid(config, args)),
    },
    MasterFunction {
        signature: jobs::PRINT_JOB,
        run: |config, _, args| Box::pin(jobs::run_print_job(config, args)),
    },
    MasterFunction {
        signature: manage::PRESENCE[0].0,
        run: |config, _, args| Box::pin(manage::present(config, args, 0)),
    },
    MasterFunction {
        signature: manage::PRESENCE[1].0,
        run: |config, _, args| Box::pin(manage::present(config, args, 1)),
    },
    MasterFunction {
        signature: manage::DOWN,
        run: |config, sink, args| Box::pin(manage::down(config, sink, args)),
    },
    MasterFunction {
        signature: manage::PRESENCE[2].0,
        run: |config, _, args| Box::pin(manage::present(config, args, 2)),
    },
    MasterFunction {
        signature: manage::PRESENCE[3].0,
        run: |config, _, args| Box::pin(manage::present(config, args, 3)),
    },
    MasterFunction {
        signature: manage::PRESENCE[4].0,
        run: |config, _, args| Box::pin(manage::present(config, args, 4)),
    },
    MasterFunction {
        signature: manage::PRESENCE[5].0,
        run: |config, _, args| Box::pin(manage::present(config, args, 5)),
    },
    MasterFunction {
        signature: manage::PRESENCE[6].0,
        run: |config, _, args| Box::pin(manage::present(config, args, 6)),
    },
    MasterFunction {
        signature: manage::PRESENCE[7].0,
        run: |config, _, args| Box::pin(manage::present(config, args, 7)),
    },
    MasterFunction {
        signature: manage::PRESENCE[8].0,
        run: |config, _, args| Box::pin(manage::present(config, args, 8)),
    },
    MasterFunction {
        signature: manage::PRESENCE[9].0,
        run: |config, _, args| Box::pin(manage::present(config, args, 9)),
    },
    MasterFunction {
        signature: manage::PRESENCE[10].0,
        run: |config, _, args| Box::pin(manage::present(config, args, 10)),
    },
    MasterFunction {
        signature: manage::PRESENCE[11].0,
        run: |config, _, args| Box::pin(manage::present(config, args, 11)),
    },
    MasterFunction {
        signature: manage::STATUS,
        run: |config, _, args| Box::pin(manage::status(config, args)),
    },
    MasterFunction {
        signature: manage::UP,
        run: |config, _, args| Box::pin(manage::up(config, args)),
    },
    MasterFunction {
        signature: manage::VERSIONS,
        run: |config, _, args| Box::pin(manage::versions(config, args)),
    },
    MasterFunction {
        signature: REACTOR_LIST,
        run: |config, _, args| Box::pin(reactor_list(config, args)),
    },
    MasterFunction {
        signature: ret::GET_FUN,
        run: |config, _, args| Box::pin(ret::get_fun(config, args)),
    },
    MasterFunction {
        signature: ret::GET_JID,
        run: |config, _, args| Box::pin(ret::get_jid(config, args)),
    },
    MasterFunction {
        signature: ret::GET_JIDS,
        run: |config, _, args| Box::pin(ret::get_jids(config, args)),
    },
    MasterFunction {
        signature: ret::GET_MINIONS,
        run: |config, _, args| Box::pin(ret::get_minions(config, args)),
    },
    MasterFunction {
        signature: ret::STATS,
        run: |config, _, args| Box::pin(ret::stats(config, args)),
    },
    MasterFunction {
        signature: test::ARG,
        run: |_, _, args| done(Ok(test::arg(args))),
    },
    MasterFunction {
        signature: test::SLEEP,
        run: |_, _, args| Box::pin(test::sleep(args)),
    },
];

/// The function named `function` in `registry` ([`RUNNERS`] or the wheel's).
pub fn find(
    registry: &'static [MasterFunction],
    function: &str,
) -> Option<&'static MasterFunction> {
    registry.iter().find(|entry| entry.name() == function)
}

/// A runner's failure to reach the master it asks.
pub(crate) fn unreachable(err: impl std::fmt::Display) -> RunnerError {
    RunnerError::Failed(format!(
        "the master is not reachable ({err}): start salt-master with this config, or check -c"
    ))
}

/// A runner's failure, in the words of what failed.
pub(crate) fn failed(err: &dyn std::fmt::Display) -> RunnerError {
    RunnerError::Failed(err.to_string())
}

/// The master's key store.
pub(crate) fn key_store(config: &Config) -> Result<crate::keys::KeyStore, RunnerError> {
    crate::keys::KeyStore::open(&config.pki_dir().map_err(|err| failed(&err))?)
        .map_err(|err| failed(&err))
}

/// Why a runner call failed.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// No such runner (or wheel function).
    #[error("'{function}' is not available; {kind} are {}", known.join(", "))]
    Unavailable {
        /// The name asked for.
        function: String,
        /// What the registry holds: `runners`, `wheel functions`.
        kind: &'static str,
        /// The names it holds.
        known: Vec<&'static str>,
    },
    /// The arguments do not fit the function.
    #[error("{0}")]
    Arguments(String),
    /// The runner ran and failed.
    #[error("{0}")]
    Failed(String),
    /// A reaction's call did not finish within `reactor_timeout`, and was stopped.
    #[error("timed out after {0:?} (reactor_timeout)")]
    TimedOut(Duration),
}

impl RunnerError {
    /// Salt's refusal of a function `registry` does not hold, naming the `kind` of functions it
    /// holds and all of them.
    pub fn unavailable(function: &str, kind: &'static str, registry: &[MasterFunction]) -> Self {
        RunnerError::Unavailable {
            function: function.to_owned(),
            kind,
            known: registry.iter().map(MasterFunction::name).collect(),
        }
    }
}

impl From<ArgumentsError> for RunnerError {
    fn from(err: ArgumentsError) -> Self {
        RunnerError::Arguments(err.to_string())
    }
}

/// Where a runner's events go: the master's bus from inside the master, or its pull socket
/// from a command.
#[derive(Debug)]
pub enum EventSink {
    /// The bus of the daemon the runner runs in, and its `max_event_size`.
    Bus(BusHandle, u64),
    /// A connection to a bus's pull socket.
    Publisher(Publisher),
    /// Nowhere: the bus is not running, and the runner works without it.
    Discard,
}

impl EventSink {
    /// Fires `event` (stamped on the way).
    pub async fn fire(&mut self, event: Event) -> Result<(), RunnerError> {
        match self {
            EventSink::Bus(bus, _) => {
                bus.fire(event);
                Ok(())
            }
            EventSink::Publisher(publisher) => {
                let tag = event.tag.clone();
                publisher
                    .fire(event)
                    .await
                    .map_err(|err| RunnerError::Failed(format!("cannot fire {tag}: {err}")))
            }
            EventSink::Discard => Ok(()),
        }
    }

    /// Fires a call's `…/ret` event; a return too big for `max_event_size` goes as
    /// `VALUE_TRIMMED`, as Salt trims it.
    pub async fn finish(
        &mut self,
        announcement: &Announcement,
        returned: &Value,
        success: bool,
    ) -> Result<(), RunnerError> {
        let event = announcement.finished(returned, success);
        let fits = match self {
            EventSink::Publisher(publisher) => match publisher.fire(event).await {
                Err(crate::client::ClientError::TooLarge { .. }) => false,
                other => {
                    return other.map_err(|err| {
                        RunnerError::Failed(format!("cannot fire the runner's return: {err}"))
                    });
                }
            },
            EventSink::Bus(bus, limit) => bus.fire_within(event, *limit).is_ok(),
            EventSink::Discard => true,
        };
        if fits {
            return Ok(());
        }
        self.fire(announcement.finished(&Value::from("VALUE_TRIMMED"), success))
            .await
    }
}

/// The `salt/run/<jid>/…` or `salt/wheel/<jid>/…` events around one runner or wheel call.
#[derive(Debug, Clone)]
pub struct Announcement {
    prefix: &'static str,
    jid: String,
    base: Vec<(Value, Value)>,
}

impl Announcement {
    /// A runner call's events: `fun` is `runner.<function>`.
    pub fn runner(function: &str, args: &CliArgs, user: &str) -> Self {
        Self::new("salt/run", format!("runner.{function}"), args, user)
    }

    /// A wheel call's events: `fun` is `wheel.<function>`.
    pub fn wheel(function: &str, args: &CliArgs, user: &str) -> Self {
        Self::new("salt/wheel", format!("wheel.{function}"), args, user)
    }

    fn new(prefix: &'static str, fun: String, args: &CliArgs, user: &str) -> Self {
        let jid = jid::gen_jid();
        let base = vec![
            (Value::from("fun"), Value::from(fun)),
            (Value::from("jid"), Value::from(jid.as_str())),
            (Value::from("user"), Value::from(user)),
            (Value::from("fun_args"), Value::Array(fun_args(args))),
        ];
        Self { prefix, jid, base }
    }

    /// `…/new`, fired before the call.
    pub fn started(&self) -> Event {
        self.event("new", Value::Map(self.base.clone()))
    }

    /// `…/ret`, fired after it with its return.
    pub fn finished(&self, returned: &Value, success: bool) -> Event {
        let mut data = self.base.clone();
        // Salt stamps the data it fired as `new` and adds to it, so `_stamp` comes before
        // `return` (the stamp itself is set when this event is fired).
        data.push((Value::from(crate::event::STAMP_KEY), Value::from("")));
        data.push((Value::from("return"), returned.clone()));
        data.push((Value::from("success"), Value::Boolean(success)));
        self.event("ret", Value::Map(data))
    }

    fn event(&self, what: &str, data: Value) -> Event {
        Event::new(format!("{}/{}/{what}", self.prefix, self.jid), data)
            .expect("runner tags are never empty")
    }
}

/// A call's arguments as Salt records them in `fun_args`: positionals, then one map of the
/// keyword arguments.
fn fun_args(args: &CliArgs) -> Vec<Value> {
    let mut fun_args = args.args.clone();
    if !args.kwargs.is_empty() {
        fun_args.push(Value::Map(crate::event::map_entries(&args.kwargs)));
    }
    fun_args
}

/// Who makes a runner or wheel call, which decides what its `…/ret` says of a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// A command (`salt-run`): a failed call is the command's error and fires no `…/ret`;
    /// whatever the call returns is a success.
    Command,
    /// A reaction, whose call is stopped after `limit`: a failed or stopped call, or a return
    /// with an `error` key (as `http.query`'s), fires `…/ret` with the message or return and
    /// `success: false`, and is the reaction's failure.
    Reaction {
        /// `reactor_timeout`.
        limit: Duration,
    },
}

/// One announced call: `…/new`, then `call` (its own events go to the same sink, so they come
/// between), then `…/ret` with the return (`VALUE_TRIMMED` when too big). The one sequence for
/// `salt-run` and for runner and wheel reactions.
pub async fn announced(
    sink: &mut EventSink,
    announcement: &Announcement,
    caller: Caller,
    call: impl AsyncFnOnce(&mut EventSink) -> Result<Value, RunnerError>,
) -> Result<Value, RunnerError> {
    sink.fire(announcement.started()).await?;
    let Caller::Reaction { limit } = caller else {
        let returned = call(sink).await?;
        sink.finish(announcement, &returned, true).await?;
        return Ok(returned);
    };
    let result = tokio::time::timeout(limit, call(sink))
        .await
        .unwrap_or(Err(RunnerError::TimedOut(limit)));
    let (returned, failure) = match result {
        Ok(value) => {
            let error =
                map_get(&value, "error").map(|e| RunnerError::Failed(py_str(e).into_owned()));
            (value, error)
        }
        Err(err) => (Value::from(err.to_string()), Some(err)),
    };
    sink.finish(announcement, &returned, failure.is_none())
        .await?;
    failure.map_or(Ok(returned), Err)
}

/// The user Salt records for a job (`get_specific_user`): the process's user, or `sudo_<name>`
/// when root runs it under sudo.
pub fn salt_user() -> String {
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::effective())
        .ok()
        .flatten()
        .map_or_else(|| "root".to_owned(), |user| user.name);
    match std::env::var("SUDO_USER") {
        Ok(sudo_user) if user == "root" => format!("sudo_{sudo_user}"),
        _ => user,
    }
}

/// Whether `function` is a runner halite has.
pub fn exists(function: &str) -> bool {
    find(RUNNERS, function).is_some()
}

/// Calls runner `function` with `args`, firing the events it fires into `sink` (the caller
/// announces the call itself, with [`announced`]).
pub async fn call(
    config: &Config,
    sink: &mut EventSink,
    function: &str,
    args: &CliArgs,
) -> Result<Value, RunnerError> {
    let runner = find(RUNNERS, function)
        .ok_or_else(|| RunnerError::unavailable(function, "runners", RUNNERS))?;
    (runner.run)(config, sink, args).await
}

/// `event.send`'s parameters; `key=value` pairs join the data (Salt's runner refuses them).
const EVENT_SEND: Signature = Signature {
    name: "event.send",
    summary: "Fires an event on the master's bus",
    params: &["tag", "data"],
    required: 1,
    kwargs: true,
    usage: "salt-run event.send TAG [DATA] [key=value ...]   (TAG - reads events from stdin)",
};

async fn event_send(sink: &mut EventSink, args: &CliArgs) -> Result<Value, RunnerError> {
    let bound = EVENT_SEND.bind(args)?;
    let tag = bound.get("tag").map(text).unwrap_or_default();
    let mut data = match bound.get("data") {
        None | Some(Value::Nil) => Value::Map(Vec::new()),
        Some(map @ Value::Map(_)) => map.clone(),
        Some(other) => {
            return Err(RunnerError::Arguments(format!(
                "event.send: data must be a dict (a YAML or JSON map such as '{{a: 1}}'), not {other}"
            )));
        }
    };
    if let Value::Map(entries) = &mut data {
        for (key, value) in &bound.extra {
            map_set(entries, Value::from(key.as_str()), value.clone());
        }
    }
    let event = Event::new(tag, data).map_err(|err| RunnerError::Arguments(err.to_string()))?;
    sink.fire(event).await?;
    Ok(Value::Boolean(true))
}

const REACTOR_LIST: Signature = Signature {
    name: "reactor.list",
    summary: "The running master's reactor configuration",
    params: &["saltenv", "test"],
    required: 0,
    kwargs: false,
    usage: "salt-run reactor.list",
};

/// `reactor.list`: asks the running master for its reactor's configuration over the local
/// request socket (Salt asks over the bus, where the root key it sends is read by everyone).
async fn reactor_list(config: &Config, args: &CliArgs) -> Result<Value, RunnerError> {
    REACTOR_LIST.bind(args)?;
    let client = crate::client::local::LocalClient::new(config).map_err(|err| failed(&err))?;
    let reply = client
        .request(&crate::proto::message("reactors", Vec::new()))
        .await
        .map_err(|err| failed(&err))?;
    Ok(map_get(&reply, "reactors")
        .cloned()
        .unwrap_or(Value::Array(Vec::new())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{Bus, BusOptions, BusSubscription, Node};
    use crate::ipc::{BusAddress, Endpoint};

    /// A bound bus (not serving sockets: in-process subscribers see what is fired) and a
    /// subscription to it.
    async fn bus(dir: &std::path::Path) -> (Bus, BusSubscription) {
        let address = BusAddress {
            publish: Endpoint::Unix(dir.join("pub.ipc")),
            pull: Endpoint::Unix(dir.join("pull.ipc")),
        };
        let bus = Bus::bind(BusOptions::new(address, Node::Master))
            .await
            .unwrap();
        let subscription = bus.handle().subscribe();
        (bus, subscription)
    }

    /// The tags fired so far, and the last event's data.
    fn fired(subscription: &mut BusSubscription) -> (Vec<String>, Value) {
        let mut tags = Vec::new();
        let mut last = Value::Nil;
        while let Some(body) = subscription.try_next_body() {
            let event = crate::wire::decode_body(&body).unwrap();
            // The jid differs per call: only the shape of the tag counts.
            tags.push(
                event
                    .tag
                    .split('/')
                    .filter(|p| !p.bytes().all(|b| b.is_ascii_digit()))
                    .collect::<Vec<_>>()
                    .join("/"),
            );
            last = event.data;
        }
        (tags, last)
    }

    fn announcement() -> Announcement {
        Announcement::runner("test.arg", &CliArgs::default(), "Reactor")
    }

    #[tokio::test]
    async fn a_call_fires_new_then_its_own_events_then_ret() {
        let dir = tempfile::tempdir().unwrap();
        let (bus, mut subscription) = bus(dir.path()).await;
        for caller in [
            Caller::Command,
            Caller::Reaction {
                limit: Duration::from_secs(5),
            },
        ] {
            let mut sink = EventSink::Bus(bus.handle(), u64::MAX);
            let returned = announced(&mut sink, &announcement(), caller, async |sink| {
                let event = Event::new("my/own", Value::Map(Vec::new())).unwrap();
                sink.fire(event).await?;
                Ok(Value::from(7))
            })
            .await
            .unwrap();
            assert_eq!(returned, Value::from(7));
            let (tags, ret) = fired(&mut subscription);
            assert_eq!(
                tags,
                ["salt/run/new", "my/own", "salt/run/ret"],
                "{caller:?}"
            );
            assert_eq!(map_get(&ret, "return"), Some(&Value::from(7)));
            assert_eq!(map_get(&ret, "success"), Some(&Value::Boolean(true)));
        }
    }

    #[tokio::test]
    async fn a_failed_command_fires_no_ret_and_a_failed_reaction_a_ret_without_success() {
        let dir = tempfile::tempdir().unwrap();
        let (bus, mut subscription) = bus(dir.path()).await;
        let fail = async |_: &mut EventSink| Err(RunnerError::Failed("broken".to_owned()));
        let mut sink = EventSink::Bus(bus.handle(), u64::MAX);
        let err = announced(&mut sink, &announcement(), Caller::Command, fail)
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "broken");
        assert_eq!(fired(&mut subscription).0, ["salt/run/new"]);

        let reaction = Caller::Reaction {
            limit: Duration::from_secs(5),
        };
        let err = announced(&mut sink, &announcement(), reaction, fail)
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "broken");
        let (tags, ret) = fired(&mut subscription);
        assert_eq!(tags, ["salt/run/new", "salt/run/ret"]);
        assert_eq!(map_get(&ret, "return"), Some(&Value::from("broken")));
        assert_eq!(map_get(&ret, "success"), Some(&Value::Boolean(false)));
    }

    #[tokio::test]
    async fn a_reaction_that_returns_an_error_or_runs_too_long_fails_with_its_ret() {
        let dir = tempfile::tempdir().unwrap();
        let (bus, mut subscription) = bus(dir.path()).await;
        let mut sink = EventSink::Bus(bus.handle(), u64::MAX);
        let error = Value::Map(vec![(Value::from("error"), Value::from("HTTP 500"))]);
        let reaction = Caller::Reaction {
            limit: Duration::from_millis(50),
        };
        let err = announced(&mut sink, &announcement(), reaction, async |_| {
            Ok(error.clone())
        })
        .await
        .unwrap_err();
        assert_eq!(err.to_string(), "HTTP 500");
        let (_, ret) = fired(&mut subscription);
        assert_eq!(map_get(&ret, "return"), Some(&error));
        assert_eq!(map_get(&ret, "success"), Some(&Value::Boolean(false)));

        let err = announced(&mut sink, &announcement(), reaction, async |_| {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(Value::Nil)
        })
        .await
        .unwrap_err();
        assert!(matches!(err, RunnerError::TimedOut(_)), "{err:?}");
        let (tags, ret) = fired(&mut subscription);
        assert_eq!(tags, ["salt/run/new", "salt/run/ret"]);
        assert_eq!(
            map_get(&ret, "return"),
            Some(&Value::from("timed out after 50ms (reactor_timeout)"))
        );
        assert_eq!(map_get(&ret, "success"), Some(&Value::Boolean(false)));
    }
}
