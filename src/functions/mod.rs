//! Execution functions: what a minion runs for a job and `salt-call` runs locally, with Salt's
//! names, arguments, returns and return codes.
//!
//! [`FUNCTIONS`] is the one list of them: each entry's name, summary, parameters and behaviour.
//! Dispatch ([`run`]), [`exists`], `sys.list_functions`, `salt-call`'s help and completions are
//! read from it.

mod beacons;
pub mod cmd;
pub mod cp;
pub mod event;
mod file;
pub mod grains;
mod jobs;
mod manage;
mod pillar;
mod pkg;
mod schedule;
mod service;
mod state;
mod test;
mod user;

use std::future::Future;
use std::pin::Pin;

use crate::bus::BusHandle;
use crate::config::{Config, ConfigError};
use crate::event::{EventError, Value, map_get};
use crate::salt_yaml::CliArgs;
use crate::signature::{self, Bound, Signature, text};

pub use jobs::{RunningGuard, RunningJobs};

/// What a function's behaviour returns: its outcome, later.
type Running<'a> = Pin<Box<dyn Future<Output = Result<Outcome, FunctionError>> + Send + 'a>>;

/// One execution function: its signature (name, summary, parameters) and what it does.
#[derive(Debug)]
pub struct Function {
    /// Its name, summary and parameters.
    pub signature: Signature,
    run: for<'a> fn(&'a Call, &'a Context) -> Running<'a>,
}

impl Function {
    /// `module.function`.
    pub fn name(&self) -> &'static str {
        self.signature.name
    }
}

/// A behaviour that is done at once.
fn done<'a>(result: Result<Outcome, FunctionError>) -> Running<'a> {
    Box::pin(std::future::ready(result))
}

/// Every function halite has, sorted, as `sys.list_functions` reports them.
pub static FUNCTIONS: &[Function] = &[
    Function {
        signature: beacons::ADD,
        run: |call, ctx| Box::pin(beacons::add(call, ctx, false)),
    },
    Function {
        signature: beacons::DELETE,
        run: |call, ctx| Box::pin(beacons::delete(call, ctx)),
    },
    Function {
        signature: beacons::DISABLE,
        run: |call, ctx| Box::pin(beacons::switch_all(call, ctx, false)),
    },
    Function {
        signature: beacons::DISABLE_BEACON,
        run: |call, ctx| Box::pin(beacons::switch_one(call, ctx, false)),
    },
    Function {
        signature: beacons::ENABLE,
        run: |call, ctx| Box::pin(beacons::switch_all(call, ctx, true)),
    },
    Function {
        signature: beacons::ENABLE_BEACON,
        run: |call, ctx| Box::pin(beacons::switch_one(call, ctx, true)),
    },
    Function {
        signature: beacons::LIST,
        run: |call, ctx| Box::pin(beacons::list(call, ctx)),
    },
    Function {
        signature: beacons::LIST_AVAILABLE,
        run: |call, ctx| Box::pin(beacons::list_available(call, ctx)),
    },
    Function {
        signature: beacons::MODIFY,
        run: |call, ctx| Box::pin(beacons::add(call, ctx, true)),
    },
    Function {
        signature: beacons::RESET,
        run: |call, ctx| Box::pin(beacons::reset(call, ctx)),
    },
    Function {
        signature: beacons::SAVE,
        run: |call, ctx| Box::pin(beacons::save(call, ctx)),
    },
    Function {
        signature: cmd::RETCODE,
        run: |call, ctx| Box::pin(cmd::run(call, ctx, cmd::Shape::Retcode)),
    },
    Function {
        signature: cmd::RUN,
        run: |call, ctx| Box::pin(cmd::run(call, ctx, cmd::Shape::Output)),
    },
    Function {
        signature: cmd::RUN_ALL,
        run: |call, ctx| Box::pin(cmd::run(call, ctx, cmd::Shape::All)),
    },
    Function {
        signature: cp::CACHE_FILE,
        run: |call, ctx| Box::pin(cp::cache_file(call, ctx)),
    },
    Function {
        signature: cp::CACHE_FILES,
        run: |call, ctx| Box::pin(cp::cache_files(call, ctx)),
    },
    Function {
        signature: cp::ENVS,
        run: |call, ctx| Box::pin(cp::envs(call, ctx)),
    },
    Function {
        signature: cp::GET_DIR,
        run: |call, ctx| Box::pin(cp::get_dir(call, ctx)),
    },
    Function {
        signature: cp::GET_FILE,
        run: |call, ctx| Box::pin(cp::get_file(call, ctx)),
    },
    Function {
        signature: cp::GET_FILE_STR,
        run: |call, ctx| Box::pin(cp::get_file_str(call, ctx)),
    },
    Function {
        signature: cp::HASH_FILE,
        run: |call, ctx| Box::pin(cp::hash_file(call, ctx)),
    },
    Function {
        signature: cp::LIST_MASTER,
        run: |call, ctx| Box::pin(cp::list_master(call, ctx)),
    },
    Function {
        signature: cp::LIST_MASTER_DIRS,
        run: |call, ctx| Box::pin(cp::list_master_dirs(call, ctx)),
    },
    Function {
        signature: event::FIRE,
        run: |call, ctx| done(event::fire(call, ctx)),
    },
    Function {
        signature: event::FIRE_MASTER_SIGNATURE,
        run: |call, ctx| Box::pin(event::fire_master(call, ctx)),
    },
    Function {
        signature: event::SEND,
        run: |call, ctx| Box::pin(event::send(call, ctx)),
    },
    Function {
        signature: file::DIRECTORY_EXISTS,
        run: |call, _| done(file::directory_exists(call)),
    },
    Function {
        signature: file::FILE_EXISTS,
        run: |call, _| done(file::file_exists(call)),
    },
    Function {
        signature: file::GET_HASH,
        run: |call, _| done(file::get_hash(call)),
    },
    Function {
        signature: file::READ,
        run: |call, _| done(file::read(call)),
    },
    Function {
        signature: file::REMOVE,
        run: |call, _| done(file::remove(call)),
    },
    Function {
        signature: file::WRITE,
        run: |call, _| done(file::write(call)),
    },
    Function {
        signature: grains::GET,
        run: |call, ctx| done(grains::get(call, ctx)),
    },
    Function {
        signature: grains::ITEM,
        run: |call, ctx| done(Ok(grains::item(call, ctx))),
    },
    Function {
        signature: grains::ITEMS,
        run: |_, ctx| done(Ok(Outcome::ok(ctx.grains.clone()))),
    },
    Function {
        signature: user::GROUP_ADD,
        run: |call, _| Box::pin(user::run(call, user::Kind::GroupAdd)),
    },
    Function {
        signature: user::GROUP_ADDUSER,
        run: |call, _| Box::pin(user::run(call, user::Kind::GroupAdduser)),
    },
    Function {
        signature: user::GROUP_CHGID,
        run: |call, _| Box::pin(user::run(call, user::Kind::GroupChgid)),
    },
    Function {
        signature: user::GROUP_DELETE,
        run: |call, _| Box::pin(user::run(call, user::Kind::GroupDelete)),
    },
    Function {
        signature: user::GROUP_DELUSER,
        run: |call, _| Box::pin(user::run(call, user::Kind::GroupDeluser)),
    },
    Function {
        signature: user::GROUP_INFO,
        run: |call, _| Box::pin(user::run(call, user::Kind::GroupInfo)),
    },
    Function {
        signature: user::GROUP_MEMBERS,
        run: |call, _| Box::pin(user::run(call, user::Kind::GroupMembers)),
    },
    Function {
        signature: pillar::GET,
        run: |call, ctx| done(pillar::get(call, ctx)),
    },
    Function {
        signature: pillar::ITEM,
        run: |call, ctx| done(pillar::item(call, ctx)),
    },
    Function {
        signature: pillar::ITEMS,
        run: |call, ctx| done(pillar::items(call, ctx)),
    },
    Function {
        signature: pillar::KEYS,
        run: |call, ctx| done(pillar::keys(call, ctx)),
    },
    Function {
        signature: pillar::LS,
        run: |call, ctx| done(pillar::ls(call, ctx)),
    },
    Function {
        signature: pillar::RAW,
        run: |call, ctx| done(pillar::raw(call, ctx)),
    },
    Function {
        signature: pkg::INSTALL,
        run: |call, ctx| Box::pin(pkg::install(call, ctx)),
    },
    Function {
        signature: pkg::LATEST_VERSION,
        run: |call, _| Box::pin(pkg::latest_version(call)),
    },
    Function {
        signature: pkg::LIST_PKGS,
        run: |call, _| Box::pin(pkg::list_pkgs(call)),
    },
    Function {
        signature: pkg::PURGE,
        run: |call, _| Box::pin(pkg::remove(call, true)),
    },
    Function {
        signature: pkg::REFRESH_DB,
        run: |call, _| Box::pin(pkg::refresh_db(call)),
    },
    Function {
        signature: pkg::REMOVE,
        run: |call, _| Box::pin(pkg::remove(call, false)),
    },
    Function {
        signature: pkg::VERSION,
        run: |call, _| Box::pin(pkg::version(call)),
    },
    Function {
        signature: jobs::FIND_JOB,
        run: |call, ctx| done(jobs::find_job(call, ctx)),
    },
    Function {
        signature: jobs::KILL_JOB,
        run: |call, ctx| {
            Box::pin(jobs::send_fixed(
                call,
                ctx,
                &jobs::KILL_JOB,
                nix::sys::signal::Signal::SIGKILL,
            ))
        },
    },
    Function {
        signature: pillar::REFRESH_PILLAR,
        run: |call, ctx| Box::pin(pillar::refresh_pillar(call, ctx)),
    },
    Function {
        signature: jobs::RUNNING,
        run: |_, ctx| done(Ok(jobs::running(ctx))),
    },
    Function {
        signature: jobs::SIGNAL_JOB,
        run: |call, ctx| Box::pin(jobs::signal_job(call, ctx)),
    },
    Function {
        signature: jobs::TERM_JOB,
        run: |call, ctx| {
            Box::pin(jobs::send_fixed(
                call,
                ctx,
                &jobs::TERM_JOB,
                nix::sys::signal::Signal::SIGTERM,
            ))
        },
    },
    Function {
        signature: schedule::ADD,
        run: |call, ctx| Box::pin(schedule::add(call, ctx)),
    },
    Function {
        signature: schedule::DELETE,
        run: |call, ctx| Box::pin(schedule::delete(call, ctx)),
    },
    Function {
        signature: schedule::DISABLE,
        run: |call, ctx| Box::pin(schedule::switch_all(call, ctx, false)),
    },
    Function {
        signature: schedule::DISABLE_JOB,
        run: |call, ctx| Box::pin(schedule::switch_one(call, ctx, false)),
    },
    Function {
        signature: schedule::ENABLE,
        run: |call, ctx| Box::pin(schedule::switch_all(call, ctx, true)),
    },
    Function {
        signature: schedule::ENABLE_JOB,
        run: |call, ctx| Box::pin(schedule::switch_one(call, ctx, true)),
    },
    Function {
        signature: schedule::LIST,
        run: |call, ctx| Box::pin(schedule::list(call, ctx)),
    },
    Function {
        signature: schedule::MODIFY,
        run: |call, ctx| Box::pin(schedule::modify(call, ctx)),
    },
    Function {
        signature: schedule::RUN_JOB,
        run: |call, ctx| Box::pin(schedule::run_job(call, ctx)),
    },
    Function {
        signature: schedule::SAVE,
        run: |call, ctx| Box::pin(schedule::save(call, ctx)),
    },
    Function {
        signature: schedule::SHOW_NEXT_FIRE_TIME,
        run: |call, ctx| Box::pin(schedule::show_next_fire_time(call, ctx)),
    },
    Function {
        signature: service::AVAILABLE,
        run: |call, ctx| Box::pin(service::run(call, ctx, service::Action::Available)),
    },
    Function {
        signature: service::DISABLE,
        run: |call, ctx| Box::pin(service::run(call, ctx, service::Action::Disable)),
    },
    Function {
        signature: service::DISABLED,
        run: |call, ctx| Box::pin(service::run(call, ctx, service::Action::Disabled)),
    },
    Function {
        signature: service::ENABLE,
        run: |call, ctx| Box::pin(service::run(call, ctx, service::Action::Enable)),
    },
    Function {
        signature: service::ENABLED,
        run: |call, ctx| Box::pin(service::run(call, ctx, service::Action::Enabled)),
    },
    Function {
        signature: service::RELOAD,
        run: |call, ctx| Box::pin(service::run(call, ctx, service::Action::Reload)),
    },
    Function {
        signature: service::RESTART,
        run: |call, ctx| Box::pin(service::run(call, ctx, service::Action::Restart)),
    },
    Function {
        signature: service::START,
        run: |call, ctx| Box::pin(service::run(call, ctx, service::Action::Start)),
    },
    Function {
        signature: service::STATUS,
        run: |call, ctx| Box::pin(service::run(call, ctx, service::Action::Status)),
    },
    Function {
        signature: service::STOP,
        run: |call, ctx| Box::pin(service::run(call, ctx, service::Action::Stop)),
    },
    Function {
        signature: state::APPLY,
        run: |call, ctx| Box::pin(state::run(call, ctx, state::Kind::Apply)),
    },
    Function {
        signature: state::HIGHSTATE_SIGNATURE,
        run: |call, ctx| Box::pin(state::run(call, ctx, state::Kind::Highstate)),
    },
    Function {
        signature: state::RUNNING,
        run: |call, ctx| done(state::running(call, ctx)),
    },
    Function {
        signature: state::SHOW_HIGHSTATE,
        run: |call, ctx| Box::pin(state::run(call, ctx, state::Kind::ShowHighstate)),
    },
    Function {
        signature: state::SHOW_LOW_SLS,
        run: |call, ctx| Box::pin(state::run(call, ctx, state::Kind::ShowLowSls)),
    },
    Function {
        signature: state::SHOW_SLS,
        run: |call, ctx| Box::pin(state::run(call, ctx, state::Kind::ShowSls)),
    },
    Function {
        signature: state::SHOW_TOP,
        run: |call, ctx| Box::pin(state::run(call, ctx, state::Kind::ShowTop)),
    },
    Function {
        signature: state::SINGLE,
        run: |call, ctx| Box::pin(state::run(call, ctx, state::Kind::Single)),
    },
    Function {
        signature: state::SLS,
        run: |call, ctx| Box::pin(state::run(call, ctx, state::Kind::Sls)),
    },
    Function {
        signature: state::SLS_ID,
        run: |call, ctx| Box::pin(state::run(call, ctx, state::Kind::SlsId)),
    },
    Function {
        signature: state::TOP,
        run: |call, ctx| Box::pin(state::run(call, ctx, state::Kind::Top)),
    },
    Function {
        signature: ARGSPEC,
        run: |call, _| done(argspec(call)),
    },
    Function {
        signature: DOC,
        run: |call, _| done(Ok(doc(call))),
    },
    Function {
        signature: LIST_FUNCTIONS,
        run: |call, _| done(Ok(list_functions(call))),
    },
    Function {
        signature: LIST_MODULES,
        run: |call, _| done(Ok(list_modules(call))),
    },
    Function {
        signature: LIST_RUNNERS,
        run: |call, _| done(Ok(list_runners(call))),
    },
    Function {
        signature: test::ARG,
        run: |call, ctx| done(Ok(test::arg(call, ctx))),
    },
    Function {
        signature: test::ECHO,
        run: |call, _| done(test::echo(call)),
    },
    Function {
        signature: test::FALSE,
        run: |call, _| done(no_arguments(call, &test::FALSE, false)),
    },
    Function {
        signature: test::PING,
        run: |call, _| done(no_arguments(call, &test::PING, true)),
    },
    Function {
        signature: test::RETCODE,
        run: |call, _| done(test::retcode(call)),
    },
    Function {
        signature: test::SLEEP,
        run: |call, _| Box::pin(test::sleep(call)),
    },
    Function {
        signature: test::TRUE,
        run: |call, _| done(no_arguments(call, &test::TRUE, true)),
    },
    Function {
        signature: test::VERSION,
        run: |call, _| {
            done(no_arguments(
                call,
                &test::VERSION,
                env!("CARGO_PKG_VERSION"),
            ))
        },
    },
    Function {
        signature: user::USER_ADD,
        run: |call, _| Box::pin(user::run(call, user::Kind::UserAdd)),
    },
    Function {
        signature: user::USER_CHFULLNAME,
        run: |call, _| Box::pin(user::run(call, user::Kind::UserChfullname)),
    },
    Function {
        signature: user::USER_CHGID,
        run: |call, _| Box::pin(user::run(call, user::Kind::UserChgid)),
    },
    Function {
        signature: user::USER_CHGROUPS,
        run: |call, _| Box::pin(user::run(call, user::Kind::UserChgroups)),
    },
    Function {
        signature: user::USER_CHHOME,
        run: |call, _| Box::pin(user::run(call, user::Kind::UserChhome)),
    },
    Function {
        signature: user::USER_CHSHELL,
        run: |call, _| Box::pin(user::run(call, user::Kind::UserChshell)),
    },
    Function {
        signature: user::USER_CHUID,
        run: |call, _| Box::pin(user::run(call, user::Kind::UserChuid)),
    },
    Function {
        signature: user::USER_DELETE,
        run: |call, _| Box::pin(user::run(call, user::Kind::UserDelete)),
    },
    Function {
        signature: user::USER_INFO,
        run: |call, _| Box::pin(user::run(call, user::Kind::UserInfo)),
    },
];

/// Why a function failed; the message is the job's return.
#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    /// The arguments do not fit the function.
    #[error("Passed invalid arguments to {fun}: {problem}")]
    Arguments {
        /// The function called.
        fun: String,
        /// What is wrong, as Python says it.
        problem: String,
    },
    /// An argument has a value the function cannot use.
    #[error("{0}")]
    Invalid(String),
    /// The command of a `cmd` function could not run.
    #[error("ERROR: Unable to run command '{argv}', reason: {reason}")]
    CannotRun {
        /// The command's words, as Python's `repr` of a list.
        argv: String,
        /// Why.
        reason: cmd::CommandError,
    },
    /// An `event` function outside the minion daemon.
    #[error("{0} needs the minion daemon's bus")]
    NoBus(String),
    /// A configuration option the function reads is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The event to fire is not one.
    #[error(transparent)]
    Event(#[from] EventError),
    /// The pillar could not be compiled.
    #[error(transparent)]
    Pillar(#[from] crate::pillar::PillarError),
    /// The file server refused or could not serve a file.
    #[error(transparent)]
    Files(#[from] crate::fileserver::FileError),
}

/// The return code Salt gives a job whose function is missing or got bad arguments.
pub const EX_GENERIC: i64 = 1;

/// One function call: the name and its arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// `module.function`.
    pub fun: String,
    /// Positional and keyword arguments.
    pub args: CliArgs,
}

impl Call {
    /// A call from a job's `arg` list as Salt's minion reads one: a map with `__kwarg__: True`
    /// holds keyword arguments, and so does a string `key=value` (its value yamlified); a
    /// keyword given twice takes its last value.
    pub fn from_load(fun: &str, arg: &Value) -> Self {
        let mut args = CliArgs::default();
        for item in arg.as_array().map(Vec::as_slice).unwrap_or_default() {
            match item {
                Value::Map(entries)
                    if map_get(item, "__kwarg__").and_then(Value::as_bool) == Some(true) =>
                {
                    for (key, value) in entries {
                        let key = crate::py::value::py_str(key).into_owned();
                        if key != "__kwarg__" {
                            args.set_kwarg(key, value.clone());
                        }
                    }
                }
                Value::String(text) => {
                    match text.as_str().and_then(crate::salt_yaml::string_kwarg) {
                        Some((key, value)) => args.set_kwarg(key, value),
                        None => args.args.push(item.clone()),
                    }
                }
                other => args.args.push(other.clone()),
            }
        }
        Self {
            fun: fun.to_owned(),
            args,
        }
    }

    /// The `arg` list a job carries for this call: positionals, then one `__kwarg__` map.
    pub fn load_arg(&self) -> Value {
        let mut arg = self.args.args.clone();
        if !self.args.kwargs.is_empty() {
            let mut kwargs = vec![(Value::from("__kwarg__"), Value::Boolean(true))];
            kwargs.extend(crate::event::map_entries(&self.args.kwargs));
            arg.push(Value::Map(kwargs));
        }
        Value::Array(arg)
    }
}

/// The job a call runs for, when it came from the master.
#[derive(Debug, Clone)]
pub struct Job {
    /// The job id.
    pub jid: String,
    /// The publish load (`fun`, `arg`, `tgt`, `tgt_type`, `user`, `ret`, …).
    pub load: Value,
}

/// What a function can see: the minion's configuration, grains and pillar, the job, the
/// minion's bus.
#[derive(Debug, Clone)]
pub struct Context {
    /// The minion configuration.
    pub config: Config,
    /// The minion's grains, a map.
    pub grains: Value,
    /// The minion's in-memory pillar (shared by every call of the minion).
    pub pillar: crate::pillar::PillarSource,
    /// The job being run, absent for `salt-call`.
    pub job: Option<Job>,
    /// The minion daemon's own bus, for the `event` functions.
    pub bus: Option<BusHandle>,
    /// The minion daemon's queue of loads for its master, which the link sends in order (job
    /// returns among them): an event with a `preload` goes straight on it, as Salt sends one on
    /// its own request channel and waits, so a state's events reach the master before the
    /// run's return.
    pub to_master: Option<tokio::sync::mpsc::Sender<Value>>,
    /// The jobs running on this minion.
    pub running: RunningJobs,
    /// The minion's copies of the master's files (`salt://`); `None` where there is no file
    /// server to ask.
    pub files: Option<crate::fileserver::Cache>,
}

/// What a call produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The return value.
    pub ret: Value,
    /// The return code: 0 for success.
    pub retcode: i64,
    /// The call failed (unknown function, bad arguments, an error): Salt marks such returns
    /// with `out: nested`.
    pub error: bool,
    /// The outputter the function names for its returns (`highstate` for state runs), which
    /// the minion passes on in the job's return as Salt's does.
    pub outputter: Option<&'static str>,
}

impl Outcome {
    fn ok(ret: impl Into<Value>) -> Self {
        Self {
            ret: ret.into(),
            retcode: 0,
            error: false,
            outputter: None,
        }
    }

    fn with_retcode(ret: impl Into<Value>, retcode: i64) -> Self {
        Self {
            ret: ret.into(),
            retcode,
            error: false,
            outputter: None,
        }
    }

    /// A failed call with Salt's error shape: the message as the return, return code 1.
    pub fn failed(message: String) -> Self {
        Self {
            ret: Value::from(message),
            retcode: EX_GENERIC,
            error: true,
            outputter: None,
        }
    }

    /// The job's return code as Salt's minion computes it: the function's, else 1 when the
    /// return is a map whose `result` or `success` is false.
    pub fn job_retcode(&self) -> i64 {
        if self.retcode != 0 {
            return self.retcode;
        }
        let falsy = |key| map_get(&self.ret, key).is_some_and(|v| !crate::py::value::truthy(v));
        if self.ret.is_map() && (falsy("result") || falsy("success")) {
            EX_GENERIC
        } else {
            0
        }
    }
}

/// The `__pub_*` keyword arguments Salt's loader gives functions with `**kwargs`: the job's
/// fields for a job; `fun`, `pid`, `jid` and `tgt: salt-call` for `salt-call`.
pub fn pub_kwargs(job: Option<&Job>, fun: &str) -> Vec<(Value, Value)> {
    let key = |name: &str| Value::from(format!("__pub_{name}"));
    let Some(job) = job else {
        return vec![
            (key("fun"), Value::from(fun)),
            (key("pid"), Value::from(std::process::id())),
            (key("jid"), Value::from(crate::event::jid::gen_jid())),
            (key("tgt"), Value::from("salt-call")),
        ];
    };
    ["fun", "arg", "tgt", "jid", "ret", "tgt_type", "user"]
        .into_iter()
        .filter_map(|name| {
            let value = match name {
                "jid" => Some(Value::from(job.jid.as_str())),
                _ => crate::event::map_get(&job.load, name).cloned(),
            };
            value.map(|value| (key(name), value))
        })
        .collect()
}

/// The message for a function halite does not have.
pub fn not_available(fun: &str) -> String {
    format!("'{fun}' is not available.")
}

/// The function named `fun`, if halite has it.
pub fn find(fun: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|function| function.name() == fun)
}

/// Whether halite has `fun`.
pub fn exists(fun: &str) -> bool {
    find(fun).is_some()
}

/// Runs `call`. Unknown functions and bad arguments come back as Salt's messages with a non-zero
/// return code, never as a panic or an error.
pub async fn run(call: &Call, ctx: &Context) -> Outcome {
    let Some(function) = find(&call.fun) else {
        return Outcome::failed(not_available(&call.fun));
    };
    // Salt's minion asks its master for the pillar afresh for every state run and pillar
    // call, so what was changed on the master is seen without a refresh.
    if (call.fun.starts_with("state.") || call.fun.starts_with("pillar."))
        && let Err(err) = ctx.pillar.fetch().await
    {
        return Outcome::failed(err.to_string());
    }
    (function.run)(call, ctx)
        .await
        .unwrap_or_else(|err| Outcome::failed(err.to_string()))
}

/// Binds a call's arguments, with Salt's wording when they do not fit.
fn bind(call: &Call, signature: &Signature) -> Result<Bound, FunctionError> {
    signature
        .bind(&call.args)
        .map_err(|err| FunctionError::Arguments {
            fun: call.fun.clone(),
            problem: err.problem,
        })
}

const LIST_FUNCTIONS: Signature = Signature {
    name: "sys.list_functions",
    summary: "The functions this minion has, all or those of the modules or globs given",
    params: &[],
    required: 0,
    kwargs: false,
    usage: "sys.list_functions [MODULE|GLOB ...]",
};

fn list_functions(call: &Call) -> Outcome {
    // A pattern with `*` or `.` is a glob on the name; anything else names a module.
    let listed = selected(call, |fun, pattern| {
        if pattern.contains(['*', '.']) {
            crate::py::fnmatch::fnmatch(fun, pattern)
        } else {
            fun.starts_with(&format!("{pattern}."))
        }
    })
    .map(|function| Value::from(function.name()))
    .collect();
    Outcome::ok(Value::Array(listed))
}

/// The registry's functions that some argument of `call` picks by `picks(name, argument)`; all
/// of them when there is no argument.
fn selected<'a>(
    call: &'a Call,
    picks: impl Fn(&str, &str) -> bool + 'a,
) -> impl Iterator<Item = &'static Function> + 'a {
    let patterns = patterns(call);
    FUNCTIONS.iter().filter(move |function| {
        patterns.is_empty()
            || patterns
                .iter()
                .any(|pattern| picks(function.name(), pattern))
    })
}

/// The arguments of a `sys.list_*` or `sys.doc` call, each a name or a glob.
fn patterns(call: &Call) -> Vec<String> {
    call.args
        .args
        .iter()
        .map(|arg| crate::py::value::py_str(arg).into_owned())
        .collect()
}

/// A function without parameters (`def ping():`): any argument is refused as Python refuses it.
fn no_arguments(
    call: &Call,
    signature: &Signature,
    ret: impl Into<Value>,
) -> Result<Outcome, FunctionError> {
    bind(call, signature)?;
    Ok(Outcome::ok(ret))
}

const DOC: Signature = Signature {
    name: "sys.doc",
    summary: "Each function's summary and usage, all or those of the modules or globs given",
    params: &[],
    required: 0,
    kwargs: false,
    usage: "sys.doc [MODULE|FUNCTION|GLOB ...]",
};

/// `sys.doc`: Salt's selection (a pattern with `*` is a glob; otherwise the function itself or
/// every function of the module), each function's summary and usage as its documentation.
fn doc(call: &Call) -> Outcome {
    let docs = selected(call, signature::documents)
        .map(|function| {
            (
                Value::from(function.name()),
                Value::from(function.signature.doc()),
            )
        })
        .collect();
    Outcome::ok(Value::Map(docs))
}

/// A function's module: `sys` for `sys.doc`.
fn module_of(fun: &str) -> &str {
    fun.split('.').next().unwrap_or(fun)
}

const LIST_MODULES: Signature = Signature {
    name: "sys.list_modules",
    summary: "The modules this minion has, all or those named or matching the globs given",
    params: &[],
    required: 0,
    kwargs: false,
    usage: "sys.list_modules [MODULE|GLOB ...]",
};

/// `sys.list_modules`: the modules of the functions [`picked_modules`] selects.
fn list_modules(call: &Call) -> Outcome {
    picked_modules(call, FUNCTIONS.iter().map(Function::name))
}

const LIST_RUNNERS: Signature = Signature {
    name: "sys.list_runners",
    summary: "The runner modules salt-run has, all or those named or matching the globs given",
    params: &[],
    required: 0,
    kwargs: false,
    usage: "sys.list_runners [MODULE|GLOB ...]",
};

/// `sys.list_runners`: the modules of the runners [`picked_modules`] selects.
fn list_runners(call: &Call) -> Outcome {
    let runners = crate::runners::RUNNERS
        .iter()
        .map(|runner| &runner.signature)
        .chain(crate::runners::SALT_RUN_OWN);
    picked_modules(call, runners.map(|signature| signature.name))
}

/// Salt's module selection for `sys.list_modules` and `sys.list_runners`: a pattern with `*`
/// is a glob on function names, any other names a module exactly; the modules sorted, once each.
fn picked_modules(call: &Call, functions: impl Iterator<Item = &'static str>) -> Outcome {
    let patterns = patterns(call);
    let mut modules: Vec<&str> = functions
        .filter(|fun| {
            patterns.is_empty()
                || patterns.iter().any(|pattern| {
                    if pattern.contains('*') {
                        crate::py::fnmatch::fnmatch(fun, pattern)
                    } else {
                        module_of(fun) == pattern
                    }
                })
        })
        .map(module_of)
        .collect();
    modules.sort_unstable();
    modules.dedup();
    Outcome::ok(Value::Array(modules.into_iter().map(Value::from).collect()))
}

const ARGSPEC: Signature = Signature {
    name: "sys.argspec",
    summary: "The parameters of the functions of a module, or of those a name or glob matches",
    params: &["module"],
    required: 0,
    kwargs: false,
    usage: "sys.argspec [MODULE|FUNCTION|GLOB]",
};

/// `sys.argspec`: Salt's selection (a pattern with `*` or `.` is a glob, anything else names
/// a module, and nothing selects nothing), each function's parameters as Salt reports them.
fn argspec(call: &Call) -> Result<Outcome, FunctionError> {
    let bound = bind(call, &ARGSPEC)?;
    let pattern = bound.get("module").map(text).unwrap_or_default();
    let specs = FUNCTIONS
        .iter()
        .filter(|function| {
            if pattern.contains(['*', '.']) {
                crate::py::fnmatch::fnmatch(function.name(), &pattern)
            } else {
                function.name().starts_with(&format!("{pattern}."))
            }
        })
        .map(|function| (Value::from(function.name()), function.signature.argspec()))
        .collect();
    Ok(Outcome::ok(Value::Map(specs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kwargs_travel_in_a_kwarg_map() {
        let call = Call::from_load(
            "cmd.run",
            &crate::salt_yaml::load("[ls, {cwd: /tmp, __kwarg__: true}, {plain: map}]").unwrap(),
        );
        assert_eq!(call.args.args.len(), 2);
        assert_eq!(call.args.kwargs, [("cwd".to_owned(), Value::from("/tmp"))]);
        let again = Call::from_load("cmd.run", &call.load_arg());
        assert_eq!(again, call);
    }

    /// Salt's `sys.doc` selection: a module name matches its functions only (`sys`, `sys.`), a
    /// full name itself, a pattern with `*` as a glob; each entry holds the summary and usage.
    #[test]
    fn sys_doc_selects_as_salt_and_documents_from_the_registry() {
        let names = |args: &[&str]| {
            let call = Call {
                fun: "sys.doc".into(),
                args: CliArgs {
                    args: args.iter().map(|arg| Value::from(*arg)).collect(),
                    ..CliArgs::default()
                },
            };
            let Value::Map(docs) = doc(&call).ret else {
                panic!("a map")
            };
            docs.into_iter()
                .map(|(name, _)| name.as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(&["sys"]),
            [
                "sys.argspec",
                "sys.doc",
                "sys.list_functions",
                "sys.list_modules",
                "sys.list_runners"
            ]
        );
        assert_eq!(names(&["sys."]), names(&["sys"]));
        assert_eq!(names(&["test.ping"]), ["test.ping"]);
        assert_eq!(
            names(&["test.p*", "grains.items"]),
            ["grains.items", "test.ping"]
        );
        assert!(names(&["sy"]).is_empty(), "a module name is not a prefix");
        assert_eq!(
            names(&[""]).len(),
            FUNCTIONS.len(),
            "an empty name selects all"
        );
        assert_eq!(names(&[]).len(), FUNCTIONS.len());
        let call = Call {
            fun: "sys.doc".into(),
            args: CliArgs {
                args: vec![Value::from("test.ping")],
                ..CliArgs::default()
            },
        };
        assert_eq!(
            map_get(&doc(&call).ret, "test.ping").and_then(Value::as_str),
            Some("True: the minion is there and runs jobs\n\nUsage: test.ping")
        );
    }

    /// `test.ping 1` answered True; Salt's `def ping():` refuses any argument.
    #[test]
    fn functions_without_parameters_refuse_arguments() {
        let call = |args: CliArgs| Call {
            fun: "test.ping".into(),
            args,
        };
        let refused = no_arguments(
            &call(CliArgs {
                args: vec![Value::from(1)],
                ..CliArgs::default()
            }),
            &test::PING,
            true,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            refused,
            "Passed invalid arguments to test.ping: ping() takes 0 positional arguments but 1 was given"
        );
        let ok = no_arguments(&call(CliArgs::default()), &test::PING, true).unwrap();
        assert_eq!(ok.ret, Value::Boolean(true));
    }
}
