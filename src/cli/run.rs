//! `salt-run`: runner functions on the master: `state.event`, `event.send`, `event.bench` and
//! the `jobs` runners.

use std::process::ExitCode;

use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;

use super::state_event::{self, empty_map};
use super::stdin_events::StdinEvents;
use super::{CommonArgs, Exit, OutputArgs, Runtime, execute, generate};
use crate::bench::{self as halite_bench, BenchOptions, relay::Relay};
use crate::client::Publisher;
use crate::config::{Config, Role};
use crate::event::{Event, Value, jid, map_set};
use crate::functions::signature::{Bound, Signature, text, truthy};
use crate::salt_yaml::{CliArgs, parse_cli_args};

/// Run a Salt runner function on the master: `state.event` to watch the master's event bus,
/// `event.send` to fire an event on it.
#[derive(Debug, Parser)]
#[command(name = "salt-run", version, about, long_about = None)]
#[command(
    after_help = "Examples:\n  salt-run state.event pretty=True\n  salt-run state.event 'salt/job/*' count=1 format=json\n  salt-run event.send myco/build/done '{id: 42, ok: true}'\n  salt-run state.event | grep -v noisy | salt-run event.send -"
)]
pub struct Args {
    #[command(flatten)]
    common: CommonArgs,

    #[command(flatten)]
    output: OutputArgs,

    /// The runner function: state.event, event.send, event.bench, jobs.lookup_jid,
    /// jobs.list_jobs or jobs.active
    #[arg(value_name = "FUNCTION", required_unless_present = "generate")]
    function: Option<String>,

    /// Arguments: values and key=value pairs, read as YAML as Salt reads them
    #[arg(value_name = "ARGS", allow_negative_numbers = true)]
    args: Vec<String>,
}

/// `event.send`'s parameters; `key=value` pairs join the data (Salt's runner refuses them).
const EVENT_SEND: Signature = Signature {
    name: "event.send",
    params: &["tag", "data"],
    required: 1,
    kwargs: true,
    usage: "salt-run event.send TAG [DATA] [key=value ...]   (TAG - reads events from stdin)",
};

/// `event.bench`'s parameters: halite's own runner, a load generator for any Salt bus.
const EVENT_BENCH: Signature = Signature {
    name: "event.bench",
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

/// Entry point of `salt-run`.
pub fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(what) = args.common.generate {
        return generate::<Args>(what);
    }
    // The load generator wants every core; everything else starts faster on one thread.
    let runtime = match args.function.as_deref() {
        Some("event.bench") => Runtime::MultiThread,
        _ => Runtime::SingleThread,
    };
    execute(runtime, || run(args))
}

async fn run(args: Args) -> anyhow::Result<Exit> {
    let config = args.common.client_setup(Role::Master)?;
    let outputter = args.output.outputter()?;
    let color = args.output.color();
    let function = args.function.unwrap_or_default();
    let cli_args = parse_cli_args(&args.args);
    let signature = match function.as_str() {
        "jobs.lookup_jid" | "jobs.list_jobs" | "jobs.active" => {
            return jobs(&config, &function, &cli_args, &outputter, color).await;
        }
        "state.event" => state_event::SIGNATURE,
        "event.send" => EVENT_SEND,
        "event.bench" => EVENT_BENCH,
        other => bail!(
            "'{other}' is not available; salt-run knows state.event, event.send, event.bench, jobs.lookup_jid, jobs.list_jobs and jobs.active"
        ),
    };
    let bound = signature.bind(&cli_args)?;
    if signature.name == EVENT_BENCH.name {
        // No runner events: the bus under test carries the load and nothing else.
        let report = bench(&config, &bound).await?;
        print!("{}", outputter.render(&report, color));
        return Ok(Exit::Success);
    }
    let bus = config.bus()?;
    let connected = Publisher::connect(&bus, config.framing()?).await;
    if signature.name == state_event::SIGNATURE.name {
        // The watcher works without a master (it waits for one), so its runner event is best
        // effort. Salt prints the runner's `None` return after the last event; that line only
        // gets in the way of pipelines, so nothing is printed.
        if let Ok(publisher) = connected {
            let _ = RunnerJob::start(publisher, &function, &cli_args).await;
        }
        return state_event::run(&config, Role::Master, &bound, color).await;
    }
    let publisher = connected?.with_max_event_size(config.max_event_size()?);
    // One connection carries the runner events and the payload, so they arrive in order.
    let mut job = RunnerJob::start(publisher, &function, &cli_args).await?;
    let returned = send(&mut job.publisher, &bound).await?;
    job.finish(&returned).await?;
    print!("{}", outputter.render(&returned, color));
    Ok(Exit::Success)
}

const LOOKUP_JID: Signature = Signature {
    name: "jobs.lookup_jid",
    params: &["jid"],
    required: 1,
    kwargs: false,
    usage: "salt-run jobs.lookup_jid JID",
};

const NO_ARGS: Signature = Signature {
    name: "jobs",
    params: &[],
    required: 0,
    kwargs: false,
    usage: "salt-run jobs.list_jobs | jobs.active",
};

/// The `jobs` runners, read from the master's job cache (and, for `jobs.active`, the minions).
async fn jobs(
    config: &Config,
    function: &str,
    cli_args: &CliArgs,
    outputter: &crate::output::outputter::Outputter,
    color: bool,
) -> anyhow::Result<Exit> {
    let cache = crate::master::job_cache::JobCache::configured(config)?;
    let returned = match function {
        "jobs.lookup_jid" => {
            let bound = LOOKUP_JID.bind(cli_args)?;
            let jid = bound.get("jid").map(text).unwrap_or_default();
            crate::master::runners::lookup_jid(&cache, &jid)
        }
        "jobs.list_jobs" => {
            NO_ARGS.bind(cli_args)?;
            crate::master::runners::list_jobs(&cache)
        }
        _ => {
            NO_ARGS.bind(cli_args)?;
            let client = crate::client::local::LocalClient::new(config)?;
            crate::master::runners::active(&client, &cache)
                .await
                .context(
                    "the master is not reachable: start salt-master with this config, or check -c",
                )?
        }
    };
    // The runner events are best effort: the job cache can be read without a master.
    if let Ok(publisher) = Publisher::connect(&config.bus()?, config.framing()?).await
        && let Ok(job) = RunnerJob::start(publisher, function, cli_args).await
    {
        let _ = job.finish(&returned).await;
    }
    // An empty result prints nothing, as Salt's nested outputter does for `{}`.
    if returned.as_map().is_some_and(|m| !m.is_empty()) || outputter.name() != "nested" {
        print!("{}", outputter.render(&returned, color));
    }
    Ok(Exit::Success)
}

async fn send(publisher: &mut Publisher, bound: &Bound) -> anyhow::Result<Value> {
    let tag = bound.get("tag").map(text).unwrap_or_default();
    if tag == "-" {
        let mut events = StdinEvents::new();
        while let Some(event) = events.next().await? {
            publisher.fire(event).await?;
        }
        return Ok(Value::Boolean(true));
    }
    let mut data = match bound.get("data") {
        None | Some(Value::Nil) => empty_map(),
        Some(map @ Value::Map(_)) => map.clone(),
        Some(other) => bail!(
            "event.send: data must be a dict (a YAML or JSON map such as '{{a: 1}}'), not {other}"
        ),
    };
    if let Value::Map(entries) = &mut data {
        for (key, value) in &bound.extra {
            map_set(entries, Value::from(key.as_str()), value.clone());
        }
    }
    publisher.fire(Event::new(tag, data)?).await?;
    Ok(Value::Boolean(true))
}

/// `event.bench`: runs the load against the configured bus, another `sock_dir`, or the reference
/// relay, and returns the report.
async fn bench(config: &Config, bound: &Bound) -> anyhow::Result<Value> {
    let number = |name: &str, default: u64| -> anyhow::Result<u64> {
        match bound.get(name) {
            None => Ok(default),
            Some(value) => value.as_u64().with_context(|| {
                format!("event.bench: {name} must be a non-negative integer, not {value}")
            }),
        }
    };
    let options = BenchOptions {
        publishers: number("publishers", 1)?.max(1) as usize,
        subscribers: number("subscribers", 1)? as usize,
        stalled: number("stalled", 0)? as usize,
        size: number("size", 100)? as usize,
        count: number("count", 100_000)?,
        rate: bound
            .get("rate")
            .and_then(Value::as_f64)
            .filter(|rate| *rate > 0.0),
        idle: Duration::from_secs_f64(bound.get("idle").and_then(Value::as_f64).unwrap_or(3.0)),
        framing: config.framing()?,
    };
    if bound.get("relay").is_some_and(truthy) {
        let dir = std::env::temp_dir().join(format!("halite-relay-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let relay = Relay::start(&dir)
            .await
            .context("cannot start the reference relay")?;
        let report = halite_bench::run(relay.address(), &options).await;
        relay.stop().await;
        let _ = std::fs::remove_dir_all(&dir);
        return Ok(report?.to_value());
    }
    let node = match bound.get("node").map(text).as_deref() {
        None | Some("master") => Role::Master,
        Some(_) => Role::Minion,
    };
    let address = state_event::bus_for_args(config, node, bound)?;
    Ok(halite_bench::run(&address, &options).await?.to_value())
}

/// The `salt/run/<jid>/new` and `…/ret` events Salt fires around every runner call, so that
/// reactors and watchers see runner activity as they do with Salt.
struct RunnerJob {
    publisher: Publisher,
    base: Vec<(Value, Value)>,
    jid: String,
}

impl RunnerJob {
    async fn start(publisher: Publisher, function: &str, args: &CliArgs) -> anyhow::Result<Self> {
        let jid = jid::gen_jid();
        let mut fun_args: Vec<Value> = args.args.clone();
        if !args.kwargs.is_empty() {
            fun_args.push(Value::Map(
                args.kwargs
                    .iter()
                    .map(|(k, v)| (Value::from(k.as_str()), v.clone()))
                    .collect(),
            ));
        }
        let base = vec![
            (
                Value::from("fun"),
                Value::from(format!("runner.{function}")),
            ),
            (Value::from("jid"), Value::from(jid.as_str())),
            (Value::from("user"), Value::from(salt_user())),
            (Value::from("fun_args"), Value::Array(fun_args)),
        ];
        let mut job = Self {
            publisher,
            base,
            jid,
        };
        let new = Event::new(
            format!("salt/run/{}/new", job.jid),
            Value::Map(job.base.clone()),
        )?;
        job.publisher.fire(new).await?;
        Ok(job)
    }

    async fn finish(mut self, returned: &Value) -> anyhow::Result<()> {
        let mut data = self.base;
        data.push((Value::from("return"), returned.clone()));
        data.push((Value::from("success"), Value::Boolean(true)));
        self.publisher
            .fire(Event::new(
                format!("salt/run/{}/ret", self.jid),
                Value::Map(data),
            )?)
            .await?;
        Ok(self.publisher.close().await?)
    }
}

/// The user Salt records for a job: `sudo_<name>` under sudo, else the process's user.
pub(crate) fn salt_user() -> String {
    if let Ok(sudo_user) = std::env::var("SUDO_USER") {
        return format!("sudo_{sudo_user}");
    }
    nix::unistd::User::from_uid(nix::unistd::Uid::effective())
        .ok()
        .flatten()
        .map(|user| user.name)
        .unwrap_or_else(|| "root".to_owned())
}
