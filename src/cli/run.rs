//! `salt-run`: runner functions on the master (see [`crate::runners`]), plus the commands that
//! stream or measure rather than return: `state.event`, `event.bench` and `reactor.dry_run`.

use std::process::ExitCode;

use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;

use super::args::FunctionName;
use super::state_event::{self};
use super::stdin_events::StdinEvents;
use super::{CommonArgs, Exit, OutputArgs, Runtime, execute};
use crate::bench::{self as halite_bench, BenchOptions, relay::Relay};
use crate::client::Publisher;
use crate::config::{Config, Role};
use crate::event::{Event, Value, map_get};
use crate::runners::{
    Announcement, Caller, DRY_RUN, EVENT_BENCH, EventSink, RUNNERS, RunnerError, SALT_RUN_OWN,
    STATE_EVENT, announced, salt_user,
};
use crate::salt_yaml::CliArgs;
use crate::signature::{Bound, text, truthy};

/// Run a runner function on the master.
///
/// salt-run runs FUNCTION with ARGS on the master and prints its return, announcing the run on
/// the master's event bus as Salt does. It also watches the bus (state.event), fires events on
/// it (event.send) and load-tests it (event.bench). `salt-run -d MODULE` prints what the
/// runners do.
#[derive(Debug, Parser)]
#[command(name = "salt-run", version, disable_version_flag = true)]
#[command(
    after_help = "Examples:\n  salt-run state.event pretty=True\n  salt-run state.event 'salt/job/*' count=1 format=json\n  salt-run event.send myco/build/done '{id: 42, ok: true}'\n  salt-run state.event | grep -v noisy | salt-run event.send -"
)]
pub struct Args {
    #[command(flatten)]
    common: CommonArgs,

    #[command(flatten)]
    output: OutputArgs,

    #[command(flatten)]
    parsing: super::args::ParseArgs,

    /// Print the documentation of the runner functions FUNCTION names (a module, a function or
    /// a glob; all without it) and exit
    #[arg(short = 'd', long = "doc", visible_alias = "documentation")]
    doc: bool,

    // The help lists the names, so the possible values (for completions) are not repeated.
    #[arg(
        value_name = "FUNCTION",
        required_unless_present_any = ["generate", "versions_report", "doc"],
        help = FUNCTION.help("The runner function"),
        value_parser = FUNCTION,
        hide_possible_values = true
    )]
    function: Option<String>,

    /// Arguments: values and key=value pairs, read as YAML as Salt reads them
    #[arg(value_name = "ARGS", allow_negative_numbers = true)]
    args: Vec<String>,
}

/// What `salt-run` runs: its own commands, which stream or measure rather than return, then
/// the runners.
const FUNCTION: FunctionName = FunctionName(|| {
    SALT_RUN_OWN
        .into_iter()
        .chain(RUNNERS.iter().map(|runner| &runner.signature))
        .collect()
});

/// `salt-run -d`: as Salt prints runner docs, each function `pattern` selects in name order,
/// its name and a colon through the outputter (`txt` unless `--out` says otherwise), then its
/// documentation indented as a docstring is.
fn print_docs(pattern: &str, printer: &mut super::args::Printer) -> anyhow::Result<()> {
    let mut signatures = (FUNCTION.0)();
    signatures.retain(|signature| crate::signature::documents(signature.name, pattern));
    signatures.sort_by_key(|signature| signature.name);
    let outputter = printer.outputter(Some("txt"));
    for signature in signatures {
        printer.print(outputter, &Value::from(format!("{}:", signature.name)))?;
        let body: Vec<String> = signature
            .doc()
            .lines()
            .map(|line| {
                if line.is_empty() {
                    String::new()
                } else {
                    format!("    {line}")
                }
            })
            .collect();
        super::print(format!("\n{}\n    \n", body.join("\n")))?;
    }
    Ok(())
}

/// Entry point of `salt-run`.
pub fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(exit) = args.common.preempt::<Args>() {
        return exit;
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
    let mut printer = args.output.printer(&config)?;
    let outputter = printer.outputter(None);
    let function = args.function.unwrap_or_default();
    if args.doc {
        print_docs(&function, &mut printer)?;
        return Ok(Exit::Success);
    }
    let cli_args = args.parsing.parse(&args.args);
    match function.as_str() {
        "event.bench" => {
            // No runner events: the bus under test carries the load and nothing else.
            let bound = EVENT_BENCH.bind(&cli_args)?;
            let report = bench(&config, &bound).await?;
            printer.print(outputter, &report)?;
            return Ok(Exit::Success);
        }
        "reactor.dry_run" => return dry_run(&config, &cli_args, &mut printer).await,
        "state.event" => {
            let bound = STATE_EVENT.bind(&cli_args)?;
            // The watcher works without a master (it waits for one), so its runner event is
            // best effort. Salt prints the runner's `None` return after the last event; that
            // line only gets in the way of pipelines, so nothing is printed.
            let (bus, framing) = (config.bus()?, config.framing()?);
            let announced = async {
                if let Ok(mut publisher) = Publisher::connect(&bus, framing).await {
                    let announcement = Announcement::runner(&function, &cli_args, &salt_user());
                    let _ = publisher.fire(announcement.started()).await;
                    let _ = publisher.close().await;
                }
            };
            let color = args.output.color(&config)?;
            return state_event::run(&config, Role::Master, &bound, color, announced).await;
        }
        known if crate::runners::exists(known) => {}
        other => bail!(
            "'{other}' is not available; salt-run knows {}",
            FUNCTION.names().join(", ")
        ),
    }
    // event.send and reactor.list need the master's bus; the others announce themselves on it
    // when it is there.
    let needs_bus = matches!(function.as_str(), "event.send" | "reactor.list");
    let mut sink = match Publisher::connect(&config.bus()?, config.framing()?).await {
        Ok(publisher) => {
            EventSink::Publisher(publisher.with_max_event_size(config.max_event_size()?))
        }
        Err(err) if needs_bus => return Err(err.into()),
        Err(_) => EventSink::Discard,
    };
    let announcement = Announcement::runner(&function, &cli_args, &salt_user());
    // One connection carries the runner events and the payload, so they arrive in order.
    let returned = announced(&mut sink, &announcement, Caller::Command, async |sink| {
        if function == "event.send" && first_is_dash(&cli_args) {
            send_stdin(sink).await
        } else {
            crate::runners::call(&config, sink, &function, &cli_args).await
        }
    })
    .await?;
    if let EventSink::Publisher(publisher) = sink {
        publisher.close().await?;
    }
    // A return naming its outputter prints its data with it unless --out says otherwise, as
    // Salt's runner client prints it.
    let (outputter, returned) = match crate::runners::jobs::named_outputter(&returned) {
        Some((named, data)) => (printer.outputter(Some(named)), data),
        None => (outputter, &returned),
    };
    // An empty result prints nothing, as Salt's nested outputter does for `{}`.
    if returned.as_map().is_none_or(|m| !m.is_empty()) || outputter.name() != "nested" {
        printer.print(outputter, returned)?;
    }
    Ok(Exit::Success)
}

fn first_is_dash(args: &CliArgs) -> bool {
    args.args.first().map(text).as_deref() == Some("-")
        || args
            .kwargs
            .iter()
            .any(|(k, v)| k == "tag" && text(v) == "-")
}

/// `event.send -`: every line of standard input is an event.
async fn send_stdin(sink: &mut EventSink) -> Result<Value, RunnerError> {
    let mut events = StdinEvents::new();
    while let Some(event) = events
        .next()
        .await
        .map_err(|err| RunnerError::Failed(format!("{err:#}")))?
    {
        sink.fire(event).await?;
    }
    Ok(Value::Boolean(true))
}

/// `reactor.dry_run`: what the reactor would do for an event, without doing it. The event is
/// a tag and data, a line recorded from `state.event`, or every such line of standard input.
async fn dry_run(
    config: &Config,
    cli_args: &CliArgs,
    printer: &mut super::args::Printer,
) -> anyhow::Result<Exit> {
    let outputter = printer.outputter(None);
    let bound = DRY_RUN.bind(cli_args)?;
    let tag = bound.get("tag").map(text).unwrap_or_default();
    // Exits 1 when any report names a problem, so that CI can use a dry run as a check.
    let mut troubled = false;
    let mut show = |event: &Event| {
        let report = crate::reactor::dry_run(config, event);
        troubled |= matches!(map_get(&report, "problems"), Some(Value::Array(problems)) if !problems.is_empty());
        printer.print(outputter, &report)
    };
    let exit = |troubled| {
        if troubled {
            Exit::Failure
        } else {
            Exit::Success
        }
    };
    if tag == "-" {
        let mut events = StdinEvents::new();
        while let Some(event) = events.next().await? {
            show(&event)?;
        }
        return Ok(exit(troubled));
    }
    let event = match (tag.split_once('\t'), bound.get("data")) {
        // A recorded `state.event` line: the tag, a tab, the data as JSON.
        (Some((tag, json)), None) => Event::new(
            tag,
            serde_json::from_str::<Value>(json).with_context(|| {
                format!("reactor.dry_run: the data after the tab is not JSON: {json}")
            })?,
        )?,
        (_, None | Some(Value::Nil)) => Event::new(tag, Value::Map(Vec::new()))?,
        (_, Some(data @ Value::Map(_))) => Event::new(tag, data.clone())?,
        (_, Some(other)) => bail!(
            "reactor.dry_run: data must be a dict (a YAML or JSON map such as '{{id: web1}}'), not {other}"
        ),
    };
    show(&event)?;
    Ok(exit(troubled))
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
    let count = number("count", 100_000)?;
    let options = BenchOptions {
        publishers: number("publishers", 1)?.max(1) as usize,
        subscribers: number("subscribers", 1)? as usize,
        stalled: number("stalled", 0)? as usize,
        size: number("size", 100)? as usize,
        count,
        rate: match bound.get("rate") {
            // The paced run must last a time the clock can hold.
            Some(rate) => Some(
                rate.as_f64()
                    .filter(|rate| *rate > 0.0)
                    .filter(|rate| {
                        crate::config::seconds(&Value::F64(count as f64 / rate)).is_some()
                    })
                    .with_context(|| {
                        format!(
                            "event.bench: rate={rate} is not a positive number of events per second"
                        )
                    })?,
            ),
            None => None,
        },
        idle: match bound.get("idle") {
            Some(idle) => crate::config::seconds(idle).with_context(|| {
                format!("event.bench: idle={idle} is not a number of seconds, such as 3 or 0.5")
            })?,
            None => Duration::from_secs(3),
        },
        framing: config.framing()?,
    };
    if bound.get("relay").is_some_and(truthy) {
        if options.stalled > 0 {
            bail!(
                "event.bench: the reference relay makes senders wait for every subscriber, so stalled={} would stop it; measure stalled subscribers without relay=True",
                options.stalled
            );
        }
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
