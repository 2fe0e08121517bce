//! Salt's state system: SLS files compiled to high data, then to ordered low chunks, run one
//! by one with their requisites by the state modules registered in [`STATES`].
//!
//! A state module is a function from a [`StateCall`] (the chunk: id, name, arguments, test
//! mode) and the [`StateContext`] (configuration, grains, pillar, the file cache, execution
//! functions) to a [`StateResult`]. States sit below the execution functions, so everything a
//! state needs from them (`cmd.run_all` for `cmd.run`, `event.fire_master` for `event.send`,
//! `salt['mod.fun']` in templates) goes through the [`Salt`] trait, which the functions layer
//! implements: Salt's `__salt__`, injected.

pub mod apply;
mod checks;
mod cmd;
mod event;
mod file;
mod group;
mod high;
mod pkg;
mod run;
mod service;
mod sls;
mod test;
#[cfg(test)]
mod tests;
mod user;

pub use run::{RunOptions, STATE_STACK};

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::config::Config;
use crate::event::Value;
use crate::fileserver::Cache;
use crate::py::value::py_str;
use crate::render::{Renderer, TemplateCalls, Vars};
use crate::salt_yaml::CliArgs;

/// What a state function returns, later.
pub type Applying<'a> = Pin<Box<dyn Future<Output = Result<StateResult, StateError>> + Send + 'a>>;

/// A state function's behaviour: the call and what it may use.
pub type StateFn = for<'a> fn(&'a StateCall, &'a StateContext) -> Applying<'a>;

/// One state function, such as `file.managed`.
#[derive(Debug)]
pub struct StateFunction {
    /// `module.function`.
    pub name: &'static str,
    /// Parameters without a default, other than `name`: a chunk missing one fails with Salt's
    /// "Missing parameter" comment before the function runs.
    pub required: &'static [&'static str],
    /// What it does.
    pub run: StateFn,
    /// What it does when a state it watches changed (`watch`), if the module has `mod_watch`;
    /// without one, a watching state runs as it would have anyway.
    pub mod_watch: Option<StateFn>,
}

/// Every state function halite has, sorted by name.
pub static STATES: &[StateFunction] = &[
    cmd::RUN,
    cmd::SCRIPT,
    cmd::WAIT,
    event::SEND,
    file::ABSENT,
    file::APPEND,
    file::DIRECTORY,
    file::LINE,
    file::MANAGED,
    file::RECURSE,
    file::SYMLINK,
    group::ABSENT,
    group::PRESENT,
    pkg::INSTALLED,
    pkg::LATEST,
    pkg::PURGED,
    pkg::REMOVED,
    service::DEAD,
    service::DISABLED,
    service::ENABLED,
    service::RUNNING,
    test::CONFIGURABLE_TEST_STATE,
    test::FAIL_WITH_CHANGES,
    test::FAIL_WITHOUT_CHANGES,
    test::NOP,
    test::SUCCEED_WITH_CHANGES,
    test::SUCCEED_WITHOUT_CHANGES,
    user::ABSENT,
    user::PRESENT,
];

/// The state function named `name` (`module.function`), if halite has it.
pub fn find(name: &str) -> Option<&'static StateFunction> {
    STATES.iter().find(|function| function.name == name)
}

/// What runs when a `module.fun` state watching another sees it change: the function's own
/// `mod_watch`, else its module's (Salt has one `mod_watch` per module). `None` when the
/// module has none, and `watch` is then a plain `require`.
pub fn mod_watch(module: &str, fun: &str) -> Option<StateFn> {
    let prefix = format!("{module}.");
    find(&format!("{module}.{fun}"))
        .and_then(|function| function.mod_watch)
        .or_else(|| {
            STATES
                .iter()
                .filter(|function| function.name.starts_with(&prefix))
                .find_map(|function| function.mod_watch)
        })
}

/// One chunk as its state function sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct StateCall {
    /// The state's ID (`__id__`).
    pub id: String,
    /// Its `name` (the ID unless given).
    pub name: String,
    /// `module.function`, as `cmd.run`.
    pub fun: String,
    /// The SLS it comes from (`__sls__`).
    pub sls: String,
    /// The environment it was rendered from (`__env__`).
    pub saltenv: String,
    /// The chunk's arguments other than `name` and Salt's own keys (requisites, `order`,
    /// `__id__`…), in the order they were declared.
    pub args: Vec<(String, Value)>,
    /// Test mode: report what would change, change nothing.
    pub test: bool,
    /// `module: id` of each watched state that changed, for `mod_watch` (Salt's
    /// "Requisites with changes").
    pub watch_changes: Vec<String>,
}

impl StateCall {
    /// The argument `key`, if declared.
    pub fn arg(&self, key: &str) -> Option<&Value> {
        self.args.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The argument `key` as text (Python's `str`), when declared and not null.
    pub fn arg_str(&self, key: &str) -> Option<String> {
        self.arg(key)
            .filter(|v| !v.is_nil())
            .map(|v| py_str(v).into_owned())
    }

    /// The argument `key`'s truthiness, `default` when not declared.
    pub fn arg_bool(&self, key: &str, default: bool) -> bool {
        self.arg(key).map_or(default, crate::py::value::truthy)
    }
}

/// What a state function returns: Salt's `{name, result, comment, changes}`.
#[derive(Debug, Clone, PartialEq)]
pub struct StateResult {
    /// The state's name.
    pub name: String,
    /// True: done or nothing to do; False: failed; None: would change (test mode).
    pub result: Option<bool>,
    /// What happened, for people.
    pub comment: String,
    /// What changed, a map (empty when nothing did).
    pub changes: Value,
    /// Salt's `warnings`, when there are some.
    pub warnings: Vec<String>,
}

impl StateResult {
    /// A result for `call` with nothing changed.
    pub fn new(call: &StateCall, result: Option<bool>, comment: impl Into<String>) -> Self {
        Self {
            name: call.name.clone(),
            result,
            comment: comment.into(),
            changes: Value::Map(Vec::new()),
            warnings: Vec::new(),
        }
    }

    /// The same result with `changes`.
    pub fn with_changes(mut self, changes: Value) -> Self {
        self.changes = changes;
        self
    }

    /// Whether anything changed (Salt tests `ret["changes"]` for truth).
    pub fn changed(&self) -> bool {
        crate::py::value::truthy(&self.changes)
    }
}

/// Why a state function could not produce a result: Salt turns the exception into a failed
/// state whose comment starts "An exception occurred in this state: ".
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StateError {
    /// An argument the function cannot use (Salt's `SaltInvocationError`).
    #[error("{0}")]
    Invalid(String),
    /// An execution function failed (Salt's `CommandExecutionError`).
    #[error(transparent)]
    Execution(#[from] ExecutionError),
    /// A template did not render.
    #[error(transparent)]
    Render(#[from] crate::render::RenderError),
    /// A `salt://` file could not be had.
    #[error(transparent)]
    File(#[from] crate::fileserver::FileError),
}

/// An execution function's failure: its message, as the job would have returned it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ExecutionError(pub String);

/// What an execution function returned.
#[derive(Debug, Clone, PartialEq)]
pub struct Executed {
    /// The return value.
    pub ret: Value,
    /// The return code (0 for success).
    pub retcode: i64,
}

/// What [`Salt::call`] returns, later.
pub type Calling<'a> = Pin<Box<dyn Future<Output = Result<Executed, ExecutionError>> + Send + 'a>>;

/// The execution functions, as states and templates call them (Salt's `__salt__`):
/// implemented by the functions layer, which sits above this one.
pub trait Salt: Send + Sync {
    /// Runs `fun` with `args`.
    fn call<'a>(&'a self, fun: &'a str, args: CliArgs) -> Calling<'a>;
}

/// What every state function of one run may use.
#[derive(Clone)]
pub struct StateContext {
    /// The minion's configuration (`opts`).
    pub config: Config,
    /// The minion's grains, a map.
    pub grains: Value,
    /// The minion's pillar, a map.
    pub pillar: Value,
    /// The minion's copies of the master's files; `None` where there is no file server.
    pub files: Option<Cache>,
    /// The execution functions.
    pub salt: Arc<dyn Salt>,
    /// The renderer for templates (`opts` are the minion's).
    pub renderer: Arc<Renderer>,
    /// The job id of the run.
    pub jid: String,
}

impl std::fmt::Debug for StateContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateContext")
            .field("jid", &self.jid)
            .finish_non_exhaustive()
    }
}

impl StateContext {
    /// Calls the execution function `fun` with positional `args` and keyword `kwargs`.
    pub async fn call(
        &self,
        fun: &str,
        args: Vec<Value>,
        kwargs: Vec<(String, Value)>,
    ) -> Result<Executed, ExecutionError> {
        self.salt.call(fun, CliArgs { args, kwargs }).await
    }

    /// The variables Salt gives a template rendered for a state of `sls` in `saltenv`:
    /// `salt`, `grains`, `pillar`, `saltenv`, `sls` (and `opts`, which the renderer adds), then
    /// `extra` on top. Called on the async runtime, whose handle drives the `salt[…]` calls.
    pub fn template_vars(&self, saltenv: &str, sls: &str, extra: Vec<(String, Value)>) -> Vars {
        let mut values = vec![
            ("grains".to_owned(), self.grains.clone()),
            ("pillar".to_owned(), self.pillar.clone()),
            ("saltenv".to_owned(), Value::from(saltenv)),
            ("sls".to_owned(), Value::from(sls)),
        ];
        for (key, value) in extra {
            match values.iter_mut().find(|(k, _)| *k == key) {
                Some((_, slot)) => *slot = value,
                None => values.push((key, value)),
            }
        }
        Vars {
            values,
            salt: Some(Arc::new(Bridge {
                salt: self.salt.clone(),
                handle: tokio::runtime::Handle::current(),
            })),
        }
    }

    /// Renders `source` (the template `name`) as text with `vars`, off the async runtime: a
    /// template may call execution functions, which are async, and Jinja is not.
    pub async fn render_text(
        &self,
        name: &str,
        source: String,
        vars: Vars,
    ) -> Result<String, StateError> {
        let renderer = self.renderer.clone();
        let name = name.to_owned();
        tokio::task::spawn_blocking(move || renderer.render_text(&name, &source, &vars))
            .await
            .map_err(|err| StateError::Invalid(format!("the template renderer stopped: {err}")))?
            .map_err(StateError::from)
    }
}

/// Execution functions for Jinja, which calls them synchronously from a blocking thread: each
/// call is driven on the runtime the run belongs to.
struct Bridge {
    salt: Arc<dyn Salt>,
    handle: tokio::runtime::Handle,
}

impl TemplateCalls for Bridge {
    fn call(
        &self,
        fun: &str,
        args: Vec<Value>,
        kwargs: Vec<(String, Value)>,
    ) -> Result<Value, String> {
        self.handle
            .block_on(self.salt.call(fun, CliArgs { args, kwargs }))
            .map(|executed| executed.ret)
            .map_err(|err| err.0)
    }
}
