//! `salt-call`: run a function on this minion: the execution functions (returned to the master
//! unless `--local`), the `event` functions through the minion's bus, and `state.event`.
//!
//! Differences from Salt, on purpose: an event that cannot be delivered is an error (Salt prints
//! `False` and exits 0), and so is `data` that is not a map (Salt ignores it silently).

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Parser;

use super::args::FunctionName;
use super::state_event;
use super::stdin_events::StdinEvents;
use super::{CommonArgs, Exit, NotAvailable, OutputArgs, Runtime, execute};
use crate::client::Publisher;
use crate::config::{Config, Role};
use crate::event::{Event, Value};
use crate::functions::event::{self as event_functions, fire_master_request, send_data};
use crate::functions::{self, Call, FUNCTIONS, RunningJobs};
use crate::minion::grains::grains;
use crate::signature::{Bound, text};

/// Run an execution function on this minion, locally or returning to the master.
///
/// salt-call runs FUNCTION with ARGS on the minion it is run on and prints the return; the
/// return goes to the master as a job's would, unless --local runs without a master.
/// `salt-call sys.doc MODULE` shows what the functions do; `sys.argspec` their parameters.
#[derive(Debug, Parser)]
#[command(name = "salt-call", version, disable_version_flag = true)]
#[command(
    after_help = "Examples:\n  salt-call test.ping\n  salt-call --local cmd.run 'uname -a'\n  salt-call event.send myco/build/done id=42 ok=true\n  salt-call event.send myco/mytag '{foo: Foo, bar: [1, 2]}'\n  salt-call event.fire '{x: 1}' local/tag\n  salt-call state.event pretty=True"
)]
pub struct Args {
    #[command(flatten)]
    common: CommonArgs,

    /// Run without a master: event.send fires on the local minion bus instead
    #[arg(long)]
    local: bool,

    #[command(flatten)]
    output: OutputArgs,

    #[command(flatten)]
    returns: super::args::ReturnArgs,

    #[command(flatten)]
    parsing: super::args::ParseArgs,

    /// Exit with the function's own return code (accepted for compatibility)
    #[arg(long = "retcode-passthrough")]
    retcode_passthrough: bool,

    // The help lists the names, so the possible values (for completions) are not repeated.
    #[arg(
        value_name = "FUNCTION",
        required_unless_present_any = ["generate", "versions_report"],
        help = FUNCTION.help("The function"),
        value_parser = FUNCTION,
        hide_possible_values = true
    )]
    function: Option<String>,

    /// Arguments: values and key=value pairs, read as YAML as Salt reads them
    #[arg(value_name = "ARGS", allow_negative_numbers = true)]
    args: Vec<String>,
}

/// What `salt-call` runs: the execution functions (the `event` ones through the minion's bus),
/// and `state.event`.
const FUNCTION: FunctionName = FunctionName(|| {
    FUNCTIONS
        .iter()
        .map(|function| &function.signature)
        .chain([&crate::runners::STATE_EVENT])
        .collect()
});

/// Entry point of `salt-call`.
pub fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(exit) = args.common.preempt::<Args>() {
        return exit;
    }
    execute(Runtime::SingleThread, || run(args))
}

/// Where events for the master go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// Through the minion bus's `fire_master` relay to the master.
    Master,
    /// Onto the minion's own bus only.
    Local,
}

async fn run(args: Args) -> anyhow::Result<Exit> {
    let config = args.common.client_setup(Role::Minion)?;
    let mut printer = args.output.printer(&config)?;
    // The functions salt-call runs itself name no outputter: each prints with --out or nested.
    let outputter = printer.outputter(None);
    let local = args.local
        || (!config.get_bool("use_master_when_local", false)?
            && (config.get_str("file_client")? == Some("local")
                || config.get_str("master_type")? == Some("disable")));
    let function = args.function.unwrap_or_default();
    let cli_args = args.parsing.parse(&args.args);
    let returned = match function.as_str() {
        "state.event" => {
            let bound = crate::runners::STATE_EVENT.bind(&cli_args)?;
            // Salt prints `local: None` after the last event; nothing is printed instead.
            let color = args.output.color(&config)?;
            let opened = std::future::ready(());
            return state_event::run(&config, Role::Minion, &bound, color, opened).await;
        }
        "event.send" => {
            let bound = event_functions::SEND.bind(&cli_args)?;
            send(
                &config,
                &bound,
                if local { Route::Local } else { Route::Master },
            )
            .await?
        }
        "event.fire" => {
            let bound = event_functions::FIRE.bind(&cli_args)?;
            fire(&config, &bound, Route::Local, None).await?
        }
        "event.fire_master" => {
            let bound = event_functions::FIRE_MASTER_SIGNATURE.bind(&cli_args)?;
            let tag = bound.get("tag").map(text).unwrap_or_default();
            if local {
                tracing::warn!("Local mode detected. Event with tag {tag} will NOT be sent.");
                printer.print(outputter, &wrap(Value::Boolean(false)))?;
                return Ok(Exit::Failure);
            }
            let preload = bound.get("preload").cloned();
            fire(&config, &bound, Route::Master, preload).await?
        }
        other if functions::exists(other) => {
            return call_function(
                &config,
                other,
                cli_args,
                local,
                &mut printer,
                &args.returns,
                args.retcode_passthrough,
            )
            .await;
        }
        other => return Err(NotAvailable(other.to_owned()).into()),
    };
    printer.print(outputter, &wrap(returned))?;
    Ok(Exit::Success)
}

/// Runs an execution function here and, unless local, sends its return to the master as
/// Salt's salt-call does (jid `req`: the master gives it a jid and fires
/// `salt/job/<jid>/ret/<id>`).
async fn call_function(
    config: &Config,
    fun: &str,
    cli_args: crate::salt_yaml::CliArgs,
    local: bool,
    printer: &mut super::args::Printer,
    returns: &super::args::ReturnArgs,
    retcode_passthrough: bool,
) -> anyhow::Result<Exit> {
    let id = config.id()?;
    // Checked before the function runs: a typo must not cost the return.
    let mut returners = returns.names()?;
    let (profile, kwargs) = (returns.profile(), returns.kwargs()?);
    if let Some(configured) = config.get("return") {
        for name in crate::returners::listed(configured) {
            crate::returners::module(&name)
                .with_context(|| "the minion's return option names it")?;
            returners.push(name);
        }
    }
    returners.sort();
    returners.dedup();
    // Like Salt's, a salt-call that returns to the master authenticates before it runs, and
    // reads the master's files over the same session.
    let minion_grains = Value::Map(grains(config));
    let (session, files, pillar) = if local {
        // Compiled here from the minion's pillar_roots, as Salt's salt-call --local does.
        (
            None,
            local_files(config)?,
            crate::pillar::PillarSource::local(),
        )
    } else {
        let requests = std::sync::Arc::new(crate::link::requests::Requests::default());
        let session =
            requests.attach(crate::minion::call_session(config, &id, minion_grains.clone()).await?);
        let pillar = crate::pillar::PillarSource::from_master(std::sync::Arc::new(
            crate::minion::LinkPillar::new(requests.clone()),
        ));
        (
            Some(session),
            crate::minion::file_cache(requests, &config.cachedir()?),
            pillar,
        )
    };
    let raw_args: Vec<Value> = std::env::args()
        .skip_while(|arg| arg != fun)
        .skip(1)
        .map(Value::from)
        .collect();
    let call = Call {
        fun: fun.to_owned(),
        args: cli_args,
    };
    let context = functions::Context {
        config: config.clone(),
        grains: minion_grains,
        pillar,
        job: None,
        bus: None,
        to_master: None,
        running: RunningJobs::default(),
        files: Some(files),
    };
    let outcome = functions::run(&call, &context).await;
    if outcome.error {
        bail!("{}", text(&outcome.ret));
    }
    let retcode = outcome.job_retcode();
    printer.print(
        printer.outputter(outcome.outputter),
        &wrap(outcome.ret.clone()),
    )?;
    if !returners.is_empty() {
        // As Salt's salt-call, with a jid of its own; success says whether it succeeded (Salt's
        // says True whatever happened).
        let ret = crate::proto::ReturnLoad {
            id: id.clone(),
            jid: crate::event::jid::gen_jid(),
            ret: outcome.ret.clone(),
            retcode,
            fun: fun.to_owned(),
            fun_args: Value::Array(raw_args.clone()),
            origin: crate::proto::Origin::Job {
                success: retcode == 0,
                out: None,
                user: None,
                outputter: outcome.outputter,
            },
        }
        .for_returners(profile.as_ref(), kwargs.as_ref());
        let deliveries = crate::returners::Deliveries::appending(config)?;
        deliveries.job_return(&returners, &ret);
        // What the returners cannot store now stays in their spools for the minion to deliver.
        deliveries.close().await;
    }
    if let Some(session) = session {
        let load = crate::proto::ReturnLoad {
            id: id.clone(),
            jid: "req".to_owned(),
            ret: outcome.ret,
            retcode,
            fun: fun.to_owned(),
            fun_args: Value::Array(raw_args),
            origin: crate::proto::Origin::Call {
                ts: jiff::Timestamp::now().as_second(),
                arg: call.load_arg(),
            },
        }
        .to_value();
        // A return the master did not store is an error: the result would be lost silently.
        let jid = crate::minion::send_return(session, load).await?;
        tracing::debug!("the master stored the return as job {jid}");
    }
    Ok(match retcode {
        0 => Exit::Success,
        code if retcode_passthrough => Exit::Code(u8::try_from(code).unwrap_or(1)),
        _ => Exit::Failure,
    })
}

/// `salt-call --local`'s file server: the minion's own `file_roots`, cached as a master's are.
fn local_files(config: &Config) -> anyhow::Result<crate::fileserver::Cache> {
    let source = crate::fileserver::LocalFiles::new(
        crate::fileserver::Roots::file_roots(config)?,
        config.hash_type()?,
    );
    Ok(crate::fileserver::Cache::new(
        std::sync::Arc::new(source),
        &config.cachedir()?,
    ))
}

/// salt-call's return shape: `{"local": <return>}`.
fn wrap(returned: Value) -> Value {
    Value::Map(vec![(Value::from("local"), returned)])
}

/// Fires events on the minion bus: as they are (`Route::Local`) or wrapped in the `fire_master`
/// request the minion relays to its master.
struct Sender {
    publisher: Publisher,
    route: Route,
    preload: Option<Value>,
}

impl Sender {
    async fn connect(
        config: &Config,
        route: Route,
        preload: Option<Value>,
    ) -> anyhow::Result<Self> {
        let bus = config.bus()?;
        let publisher = Publisher::connect(&bus, config.framing()?)
            .await
            .context("the minion's event bus is not reachable: start salt-minion with this config, or check -c")?
            .with_max_event_size(config.max_event_size()?);
        Ok(Self {
            publisher,
            route,
            preload,
        })
    }

    async fn send(&mut self, event: Event) -> anyhow::Result<()> {
        let event = match self.route {
            Route::Local => event,
            Route::Master => fire_master_request(event, self.preload.as_ref())?,
        };
        Ok(self.publisher.fire(event).await?)
    }

    async fn close(self) -> anyhow::Result<()> {
        Ok(self.publisher.close().await?)
    }
}

/// `event.fire` and `event.fire_master`: the data as given, under the tag.
async fn fire(
    config: &Config,
    bound: &Bound,
    route: Route,
    preload: Option<Value>,
) -> anyhow::Result<Value> {
    let mut sender = Sender::connect(config, route, preload.filter(Value::is_map)).await?;
    let data = bound.get("data").cloned().unwrap_or(Value::Nil);
    if data.as_str() == Some("-") {
        return pipe(sender).await;
    }
    let tag = bound.get("tag").map(text).unwrap_or_default();
    if !data.is_map() {
        bail!("data must be a dict (a YAML or JSON map such as '{{x: 1}}'), not {data}");
    }
    sender.send(Event::new(tag, data)?).await?;
    sender.close().await?;
    Ok(Value::Boolean(true))
}

/// Fires every event read from standard input through `sender`.
async fn pipe(mut sender: Sender) -> anyhow::Result<Value> {
    let mut events = StdinEvents::new();
    while let Some(event) = events.next().await? {
        sender.send(event).await?;
    }
    sender.close().await?;
    Ok(Value::Boolean(true))
}

/// `event.send`: assembles the data as Salt's execution module does, then fires it.
async fn send(config: &Config, bound: &Bound, route: Route) -> anyhow::Result<Value> {
    let preload = bound.get("preload").cloned();
    if preload
        .as_ref()
        .is_some_and(|preload| !preload.is_nil() && !preload.is_map())
    {
        tracing::warn!("preload is not a dict and is ignored");
    }
    let tag = bound.get("tag").map(text).unwrap_or_default();
    let mut sender = Sender::connect(config, route, preload.filter(Value::is_map)).await?;
    if tag == "-" {
        return pipe(sender).await;
    }
    let data = send_data(
        config,
        || Value::Map(grains(config)),
        bound,
        functions::pub_kwargs(None, "event.send"),
    )?;
    sender.send(Event::new(tag, data)?).await?;
    sender.close().await?;
    Ok(Value::Boolean(true))
}
