//! Runner functions: what `salt-run` runs on the master and what `runner.*` reactions call,
//! with Salt's names, arguments and returns, announced by Salt's `salt/run/<jid>/new` and
//! `…/ret` events.
//!
//! `state.event` and `event.bench` stream or measure rather than return, so they live in
//! `salt-run` alone and are not runners a reaction can call.

pub mod http;
pub mod jobs;
mod test;

use crate::bus::BusHandle;
use crate::client::Publisher;
use crate::config::Config;
use crate::event::{Event, Value, jid, map_get, map_set};
use crate::functions::signature::{Signature, text};
use crate::salt_yaml::CliArgs;

/// Every runner halite has, sorted.
pub const RUNNERS: &[&str] = &[
    "event.send",
    "http.query",
    "jobs.active",
    "jobs.list_jobs",
    "jobs.lookup_jid",
    "reactor.list",
    "test.arg",
    "test.sleep",
];

/// Why a runner call failed.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// No such runner.
    #[error("'{0}' is not available; runners are {list}", list = RUNNERS.join(", "))]
    Unavailable(String),
    /// The arguments do not fit the function.
    #[error("{0}")]
    Arguments(String),
    /// The runner ran and failed.
    #[error("{0}")]
    Failed(String),
}

impl From<crate::functions::signature::ArgumentsError> for RunnerError {
    fn from(err: crate::functions::signature::ArgumentsError) -> Self {
        RunnerError::Arguments(err.to_string())
    }
}

impl From<anyhow::Error> for RunnerError {
    fn from(err: anyhow::Error) -> Self {
        RunnerError::Arguments(format!("{err:#}"))
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

/// The required parameters of a runner, which a legacy reaction passes positionally.
pub fn positional(function: &str) -> &'static [&'static str] {
    match function {
        "event.send" => &["tag"],
        "http.query" => &["url"],
        "jobs.lookup_jid" => &["jid"],
        _ => &[],
    }
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
    RUNNERS.contains(&function)
}

/// Calls runner `function` with `args`, firing the events it fires into `sink` (the caller
/// announces the call itself with an [`Announcement`]).
pub async fn call(
    config: &Config,
    sink: &mut EventSink,
    function: &str,
    args: &CliArgs,
) -> Result<Value, RunnerError> {
    match function {
        "event.send" => event_send(sink, args).await,
        "http.query" => http::query(config, args).await,
        "jobs.lookup_jid" | "jobs.list_jobs" | "jobs.active" => {
            jobs::call(config, function, args).await
        }
        "reactor.list" => reactor_list(config, args).await,
        "test.arg" => Ok(test::arg(args)),
        "test.sleep" => test::sleep(args).await,
        other => Err(RunnerError::Unavailable(other.to_owned())),
    }
}

/// `event.send`'s parameters; `key=value` pairs join the data (Salt's runner refuses them).
pub(crate) const EVENT_SEND: Signature = Signature {
    name: "event.send",
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

const NO_ARGS: Signature = Signature {
    name: "reactor.list",
    params: &["saltenv", "test"],
    required: 0,
    kwargs: false,
    usage: "salt-run reactor.list",
};

/// `reactor.list`: asks the running master for its reactor's configuration over the local
/// request socket (Salt asks over the bus, where the root key it sends is read by everyone).
async fn reactor_list(config: &Config, args: &CliArgs) -> Result<Value, RunnerError> {
    NO_ARGS.bind(args)?;
    let failed = |err: &dyn std::fmt::Display| RunnerError::Failed(err.to_string());
    let client = crate::client::local::LocalClient::new(config).map_err(|err| failed(&err))?;
    let reply = client
        .request(&crate::proto::message("reactors", Vec::new()))
        .await
        .map_err(|err| failed(&err))?;
    Ok(map_get(&reply, "reactors")
        .cloned()
        .unwrap_or(Value::Array(Vec::new())))
}
