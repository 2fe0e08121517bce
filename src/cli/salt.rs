//! `salt`: publish a job to the minions a target matches and print their returns as they
//! arrive, with Salt's output and exit codes.

use std::io::Write;
use std::ops::ControlFlow;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use super::args::Printer;
use super::{CommonArgs, Exit, OutputArgs, Runtime, execute};
use crate::client::ClientError;
use crate::client::batch::{Batch, BatchSize, Progress};
use crate::client::local::{LocalClient, Outcome, Published};
use crate::config::Role;
use crate::event::Value;
use crate::functions::Call;
use crate::proto::PublishRequest;

/// Run an execution function on the minions a target matches, through the master on this host.
///
/// salt publishes a job (FUNCTION with ARGS) to every minion TARGET matches, by glob unless
/// -E, -L, -G, -P, -I, -J, -S, -C or -N says otherwise, and prints each minion's return as it
/// arrives with Salt's outputters. Minions that do not return in time are asked whether they still run the
/// job, then reported. `salt '*' sys.doc MODULE` shows what a function does and
/// `salt '*' sys.list_functions` which functions the minions have.
#[derive(Debug, Parser)]
#[command(name = "salt", version, disable_version_flag = true)]
#[command(
    after_help = "Examples:\n  salt '*' test.ping\n  salt -L web1,web2 cmd.run 'uptime'\n  salt -G os:Debian grains.item osrelease\n  salt -E 'web[0-9]+' test.echo hello --out=json\n  salt -C 'G@os:Debian and web*' test.ping\n  salt -N webservers test.ping\n  salt -b 25% '*' state.apply\n  salt --async '*' test.sleep 30"
)]
pub struct Args {
    #[command(flatten)]
    common: CommonArgs,

    #[command(flatten)]
    output: OutputArgs,

    #[command(flatten)]
    returns: super::args::ReturnArgs,

    #[command(flatten)]
    parsing: super::args::ParseArgs,

    /// The target is a regular expression matched from the start of the id
    #[arg(short = 'E', long = "pcre", group = "target_type")]
    pcre: bool,

    /// The target is a comma-separated list of ids
    #[arg(short = 'L', long = "list", group = "target_type")]
    list: bool,

    /// The target is grain:glob (nested keys joined with ':')
    #[arg(short = 'G', long = "grain", group = "target_type")]
    grain: bool,

    /// The target is grain:regex (nested keys joined with ':')
    #[arg(short = 'P', long = "grain-pcre", group = "target_type")]
    grain_pcre: bool,

    /// The target is a compound expression: globs, G@, P@, I@, J@, S@, L@, E@ and N@ words
    /// joined by and, or, not and parentheses
    #[arg(short = 'C', long = "compound", group = "target_type")]
    compound: bool,

    /// The target is pillar:glob (nested keys joined with ':')
    #[arg(short = 'I', long = "pillar", group = "target_type")]
    pillar: bool,

    /// The target is pillar:regex (nested keys joined with ':')
    #[arg(short = 'J', long = "pillar-pcre", group = "target_type")]
    pillar_pcre: bool,

    /// The target is an IP address or network (10.0.0.0/24) in the minions' ipv4/ipv6 grains
    #[arg(short = 'S', long = "ipcidr", group = "target_type")]
    ipcidr: bool,

    /// The target is a node group named in the master's nodegroups option
    #[arg(short = 'N', long = "nodegroup", group = "target_type")]
    nodegroup: bool,

    /// Run on this many minions at a time, or this percentage of them (10 or 10%); the
    /// minions are pinged first
    #[arg(short = 'b', long = "batch", alias = "batch-size", value_name = "SIZE")]
    batch: Option<crate::client::batch::BatchSize>,

    /// Seconds to wait after a minion returns before the next one takes its place in the batch
    #[arg(
        long = "batch-wait",
        value_name = "SECONDS",
        requires = "batch",
        default_value_t = 0.0
    )]
    batch_wait: f64,

    /// Stop the batch at the first minion that returns a non-zero retcode or fails to respond
    #[arg(long = "failhard", requires = "batch")]
    failhard: bool,

    /// Seconds to wait for returns before asking minions whether they still run the job
    /// [default: the master's timeout, 5]
    #[arg(short = 't', long = "timeout", value_name = "SECONDS")]
    timeout: Option<f64>,

    /// Publish and print the job id without waiting for returns
    #[arg(long = "async")]
    run_async: bool,

    /// Print the job id before the returns (with -b nothing changes, as in Salt: each return
    /// shows its job's jid)
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,

    /// Print `jid: <jid>` before the returns (with -b nothing changes, as in Salt: each return
    /// shows its job's jid)
    #[arg(long = "show-jid")]
    show_jid: bool,

    /// Leave minions that did not return out of the output
    #[arg(long = "hide-timeout")]
    hide_timeout: bool,

    /// Print the returns together at the end; as in Salt this runs one batch of every minion
    /// that answers a ping first, and leaves the others out
    #[arg(long = "static")]
    print_static: bool,

    /// The minions to run on (a glob unless -E, -L, -G, -P, -I, -J, -S, -C or -N)
    #[arg(value_name = "TARGET", required_unless_present_any = ["generate", "versions_report"])]
    target: Option<String>,

    /// The function, e.g. test.ping or cmd.run (salt '*' sys.list_functions lists them)
    #[arg(
        value_name = "FUNCTION",
        required_unless_present_any = ["generate", "versions_report"],
        value_parser = FUNCTION,
        hide_possible_values = true
    )]
    function: Option<String>,

    /// Arguments: values and key=value pairs, read as YAML as Salt reads them
    #[arg(value_name = "ARGS", allow_negative_numbers = true)]
    args: Vec<String>,
}

/// The functions a minion runs, offered by the shell completions.
const FUNCTION: super::args::FunctionName = super::args::FunctionName(|| {
    crate::functions::FUNCTIONS
        .iter()
        .map(|function| &function.signature)
        .collect()
});

/// Entry point of `salt`.
pub fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(exit) = args.common.preempt::<Args>() {
        return exit;
    }
    execute(Runtime::SingleThread, || run(args))
}

fn target(args: &Args) -> (Value, &'static str) {
    let text = args.target.clone().unwrap_or_default();
    if args.list {
        let ids = text
            .split([',', ' '])
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(Value::from)
            .collect();
        return (Value::Array(ids), "list");
    }
    let kind = if args.pcre {
        "pcre"
    } else if args.grain {
        "grain"
    } else if args.grain_pcre {
        "grain_pcre"
    } else if args.compound {
        "compound"
    } else if args.nodegroup {
        "nodegroup"
    } else if args.pillar {
        "pillar"
    } else if args.pillar_pcre {
        "pillar_pcre"
    } else if args.ipcidr {
        "ipcidr"
    } else {
        "glob"
    };
    (Value::from(text), kind)
}

const UNREACHABLE: &str =
    "the master is not reachable: start salt-master with this config, or check -c";

/// The text Salt shows for a minion that did not return.
fn no_return(reason: &str, jid: &str) -> Value {
    Value::from(format!(
        "Minion did not return. [{reason}]\nThe minions may not have all finished running and any remaining minions will return upon completion. To look up the return data for this job later, run the following command:\n\nsalt-run jobs.lookup_jid {jid}"
    ))
}

async fn run(args: Args) -> anyhow::Result<Exit> {
    let config = args.common.client_setup(Role::Master)?;
    let mut printer = args.output.printer(&config)?;
    let mut client = LocalClient::new(&config)?;
    if let Some(seconds) = args.timeout {
        let timeout = crate::config::seconds(&Value::F64(seconds)).with_context(|| {
            format!("-t/--timeout {seconds:?}: give a number of seconds, such as 5 or 0.5")
        })?;
        client = client.with_timeout(timeout);
    }
    let (tgt, tgt_type) = target(&args);
    let fun = args.function.clone().unwrap_or_default();
    let call = Call {
        fun: fun.clone(),
        args: args.parsing.parse(&args.args),
    };
    let user = crate::runners::salt_user();
    let request = PublishRequest {
        tgt,
        tgt_type: tgt_type.to_owned(),
        fun,
        arg: call.load_arg(),
        ret: args.returns.names()?.join(","),
        user: user.clone(),
        jid: None,
        ret_config: args.returns.profile(),
        ret_kwargs: args.returns.kwargs()?,
    };
    // --static runs Salt's batch code too, all minions at once: ping first, then one job.
    if args.batch.is_some() || args.print_static {
        let batch = Batch {
            size: args.batch.unwrap_or(BatchSize::Percent(100.0)),
            wait: crate::config::seconds(&Value::F64(args.batch_wait)).with_context(|| {
                format!(
                    "--batch-wait {}: give a number of seconds, such as 5",
                    args.batch_wait
                )
            })?,
            failhard: args.failhard,
        };
        return run_batch(&args, &client, &request, &batch, &mut printer).await;
    }
    let mut listener = client.listen().await.context(UNREACHABLE)?;
    let published: Published = match client.publish(&request).await {
        // A target the master or the node groups refuse is the command's mistake.
        Err(err @ (ClientError::Target(_) | ClientError::Refused(_))) => return Err(err.into()),
        other => other.context(UNREACHABLE)?,
    };
    let mut stdout = super::stdout();
    if published.jid.is_empty() {
        writeln!(
            stdout,
            "No minions matched the target. No command was sent, no jid was assigned."
        )?;
        stdout.flush()?;
        super::print_err("ERROR: No return received")?;
        return Ok(Exit::NoMinionMatched);
    }
    let jid = published.jid.clone();
    if args.run_async {
        writeln!(stdout, "Executed command with job ID: {jid}")?;
        return Ok(Exit::Success);
    }
    if args.verbose {
        let line = format!("Executing job with jid {jid}");
        writeln!(stdout, "{line}\n{}\n", "-".repeat(line.len()))?;
    }
    if args.show_jid {
        writeln!(stdout, "jid: {jid}")?;
    }
    stdout.flush()?;
    let mut failed = false;
    // Each return prints with the outputter it names (`out`, e.g. highstate for state runs)
    // unless --out says otherwise.
    drop(stdout);
    let mut print = |id: &str, value: Value, named: Option<&str>| -> std::io::Result<()> {
        let doc = Value::Map(vec![(Value::from(id), value)]);
        printer.print(printer.outputter(named), &doc)
    };
    let mut written: std::io::Result<()> = Ok(());
    // What was printed: with --hide-timeout, nothing at all is an error (Salt exits 0).
    let mut printed = false;
    client
        .gather(&mut listener, &published, &user, |outcome| {
            let (id, value, named) = match outcome {
                Outcome::Returned(ret) => {
                    failed |= ret.retcode() != 0;
                    let named = ret.outputter().map(str::to_owned);
                    (ret.id.clone(), ret.value(), named)
                }
                // Hidden minions leave the exit code alone, as in Salt.
                Outcome::NoResponse(_) | Outcome::NotConnected(_) if args.hide_timeout => return,
                Outcome::NoResponse(id) => {
                    failed = true;
                    (id, no_return("No response", &jid), None)
                }
                Outcome::NotConnected(id) => {
                    failed = true;
                    (id, no_return("Not connected", &jid), None)
                }
            };
            printed = true;
            if written.is_ok() {
                written = print(&id, value, named.as_deref());
            }
        })
        .await?;
    // Listed ids the master has no key for, after the rest, as Salt reports them (even with
    // --hide-timeout).
    for id in &published.missing {
        failed = true;
        printed = true;
        if written.is_ok() {
            written = print(id, no_return("No response", &jid), None);
        }
    }
    written?;
    if !printed {
        super::print_err("ERROR: No return received")?;
        return Ok(Exit::NoMinionMatched);
    }
    if failed {
        super::print_err("ERROR: Minions returned with non-zero exit code")?;
        return Ok(Exit::Failure);
    }
    Ok(Exit::Success)
}

/// `salt --batch`: Salt's batch output — which minions did not answer the ping, each batch as
/// it starts, then each return as `{minion: return, jid, retcode}` — or with `--static` every
/// return at the end (`--static` alone is a batch of 100%, as in Salt); the exit code is the
/// highest retcode, 1 at least when a minion failed to respond to its job, 2 when no minion
/// answered the ping. `-v` and `--show-jid` add nothing, as in Salt 3007.8, whose batch only
/// adds to each return the jid it already has.
async fn run_batch(
    args: &Args,
    client: &LocalClient,
    request: &PublishRequest,
    batch: &Batch,
    printer: &mut Printer,
) -> anyhow::Result<Exit> {
    // Returns go where --out-file says; what the batch is doing, to the terminal.
    let mut stdout = super::stdout();
    let mut retcode: i64 = 0;
    let mut unresponsive = false;
    // Whether any minion answered the ping and got the job.
    let mut ran = false;
    let mut gathered: Vec<(Value, Value)> = Vec::new();
    let mut written: std::io::Result<()> = Ok(());
    let mut show = |progress: Progress, out: &mut dyn Write| -> std::io::Result<()> {
        match progress {
            Progress::NotResponding(_) if args.print_static => {}
            Progress::Started(_) if args.print_static => ran = true,
            Progress::NotResponding(id) => {
                writeln!(out, "Minion {id} did not respond. No job will be sent.")?;
            }
            Progress::Started(minions) => {
                ran = true;
                let listed =
                    Value::Array(minions.iter().map(|id| Value::from(id.as_str())).collect());
                writeln!(
                    out,
                    "\nExecuting run on {}\n",
                    crate::py::value::repr(&listed)
                )?;
            }
            Progress::Finished { jid, outcome } => match outcome {
                Outcome::Returned(ret) => {
                    retcode = retcode.max(ret.retcode());
                    let named = ret.outputter().map(str::to_owned);
                    if args.print_static {
                        gathered.push((Value::from(ret.id.as_str()), ret.value()));
                    } else {
                        let doc = Value::Map(vec![
                            (Value::from("retcode"), Value::from(ret.retcode())),
                            (Value::from("jid"), Value::from(jid)),
                            (Value::from(ret.id.as_str()), ret.value()),
                        ]);
                        printer.print(printer.outputter(named.as_deref()), &doc)?;
                    }
                }
                Outcome::NoResponse(id) | Outcome::NotConnected(id) => {
                    unresponsive = true;
                    if !args.print_static && !args.hide_timeout {
                        writeln!(out, "Minion '{id}' failed to respond to job sent")?;
                    }
                }
            },
        }
        out.flush()
    };
    let matched = batch
        .run(client, request, |progress| {
            // Output that fails stops the batch: no job goes out that nobody would see.
            written = show(progress, &mut stdout);
            if written.is_ok() {
                ControlFlow::Continue(())
            } else {
                ControlFlow::Break(())
            }
        })
        .await;
    let matched = match matched {
        Err(err @ (ClientError::Target(_) | ClientError::Refused(_))) => return Err(err.into()),
        other => other.context(UNREACHABLE)?,
    };
    written?;
    if !matched {
        writeln!(
            stdout,
            "No minions matched the target. No command was sent, no jid was assigned."
        )?;
        // --static goes on to print the empty document, as Salt's does.
        if !args.print_static {
            writeln!(stdout, "No minions matched the target.")?;
            return Ok(Exit::NoMinionMatched);
        }
    }
    if args.print_static {
        gathered.sort_by(|a, b| a.0.as_str().cmp(&b.0.as_str()));
        let none = gathered.is_empty();
        // As Salt's: highstate for the state module's functions, else the default, whatever
        // the returns name.
        let state = request.fun.split('.').next() == Some("state");
        printer.print(
            printer.outputter(state.then_some("highstate")),
            &Value::Map(gathered),
        )?;
        // Salt prints the empty document too, then says so.
        if none {
            super::print_err("ERROR: No return received")?;
            return Ok(Exit::NoMinionMatched);
        }
    }
    // No minion answered the ping: Salt's batch prints nothing and exits 0.
    if !ran {
        super::print_err("ERROR: No return received")?;
        return Ok(Exit::NoMinionMatched);
    }
    Ok(match retcode {
        0 if unresponsive => Exit::Failure,
        0 => Exit::Success,
        code => Exit::Code(u8::try_from(code).unwrap_or(1)),
    })
}
