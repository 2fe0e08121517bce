//! Pillar: the data compiled for one minion from the SLS files under `pillar_roots`, as Salt's
//! master (or a masterless minion) compiles it.
//!
//! [`compile`] renders each environment's `top.sls`, matches it against the minion's id and
//! grains ([`crate::target::top`]), renders every matched SLS file with its `include`s and
//! merges them in order (`pillar_source_merging_strategy`, `pillar_merge_lists`). What goes
//! wrong is not an error of the call: Salt collects it, in its words, under the pillar's
//! `_errors` key, and so does [`Compiled::pillar`].
//!
//! Templates see `grains`, `opts`, `saltenv`, `sls`, `slspath` and `pillar`, which is the
//! minion's pillar from before (Salt's in-memory pillar: empty at the first compilation). They
//! paste values as Salt does (see [`crate::render::Renderer::render_sls`]). Files are found
//! through [`Roots`], so no SLS name leads out of the roots.
//!
//! On a minion, [`PillarSource`] holds the in-memory pillar: compiled here from the minion's own
//! `pillar_roots` (`salt-call --local`), or set by whoever fetched it from the master.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::dictupdate::{Strategy, merge};
use crate::config::{Config, ConfigError};
use crate::event::{Value, map_get};
use crate::fileserver::{FileError, Roots};
use crate::py::fnmatch::fnmatch;
use crate::py::value::{py_str, truthy};
use crate::render::Renderer;
use crate::target::top::{self, Purpose};

/// Salt's default `pillar_roots`.
const DEFAULT_ROOTS: &[(&str, &[&str])] = &[("base", &["/srv/pillar", "/srv/spm/pillar"])];

/// Why a pillar could not be compiled at all (what goes wrong in files is in
/// [`Compiled::errors`]).
#[derive(Debug, thiserror::Error)]
pub enum PillarError {
    /// An option pillar reads is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The master did not send the pillar.
    #[error("the master did not send the pillar: {0}")]
    Master(String),
}

/// What [`compile`] is asked for beyond the configuration.
#[derive(Debug, Clone)]
pub struct Request {
    /// The minion's id.
    pub minion_id: String,
    /// The minion's grains, a map.
    pub grains: Value,
    /// The minion's pillar from before, which templates see as `pillar`.
    pub current: Value,
    /// Only this environment (`pillarenv`), instead of the configured one or all.
    pub pillarenv: Option<String>,
    /// Data merged over the result (`pillar.items pillar={…}`).
    pub overrides: Option<Value>,
}

impl Request {
    /// A first compilation for `minion_id` with `grains`: no pillar from before, every
    /// environment, no overrides.
    pub fn new(minion_id: String, grains: Value) -> Self {
        Self {
            minion_id,
            grains,
            current: Value::Map(Vec::new()),
            pillarenv: None,
            overrides: None,
        }
    }
}

/// A compiled pillar and what went wrong on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Compiled {
    /// The pillar, a map, as Salt returns it: the errors, if any, under `_errors` (the
    /// overrides merged over them).
    pub pillar: Value,
    /// Salt's messages, in Salt's order.
    pub errors: Vec<String>,
}

/// The options of one compilation, read once.
struct Compiler<'a> {
    roots: Roots,
    renderer: Renderer,
    request: &'a Request,
    strategy: Strategy,
    merge_lists: bool,
    includes_override: bool,
    safe_render_error: bool,
    /// The SLS names of each environment (`list_states`), sorted.
    avail: HashMap<String, Vec<String>>,
    /// `ignore_missing` SLS names, per environment.
    ignore_missing: Vec<(String, String)>,
}

/// Compiles the pillar of `request.minion_id` from `config`'s `pillar_roots`.
pub fn compile(config: &Config, request: &Request) -> Result<Compiled, PillarError> {
    let roots = Roots::from_config(config, "pillar_roots", DEFAULT_ROOTS)?;
    let avail = roots
        .envs()
        .map(|env| (env.to_owned(), list_states(&roots, env)))
        .collect();
    let strategy_name = config
        .get_str("pillar_source_merging_strategy")?
        .unwrap_or("smart")
        .to_owned();
    let mut compiler = Compiler {
        renderer: Renderer::new(config),
        request,
        strategy: Strategy::named(&strategy_name),
        merge_lists: config.get_bool("pillar_merge_lists", false)?,
        includes_override: config.get_bool("pillar_includes_override_sls", false)?,
        safe_render_error: config.get_bool("pillar_safe_render_error", true)?,
        avail,
        ignore_missing: Vec::new(),
        roots,
    };
    let pillarenv = match &request.pillarenv {
        Some(env) => Some(env.clone()),
        None => config.get_str("pillarenv")?.map(str::to_owned),
    };
    // Which environments' top files are read: the pillarenv's (when configured), else all, or
    // only the minion's saltenv with the `none` strategy.
    let top_envs: Vec<String> = match &pillarenv {
        Some(env) => compiler
            .roots
            .envs()
            .filter(|known| known == env)
            .map(str::to_owned)
            .collect(),
        None if strategy_name == "none" => {
            vec![config.get_str("saltenv")?.unwrap_or("base").to_owned()]
        }
        None => compiler.roots.envs().map(str::to_owned).collect(),
    };
    let (top, mut top_errors) = compiler.top(&top_envs);
    compiler.ignore_missing = top.ignore_missing.clone();
    let matched = top::matches(
        &top,
        &request.minion_id,
        &request.grains,
        &Value::Map(Vec::new()),
        Purpose::Pillar,
        pillarenv.as_deref(),
        &[],
    );
    let (mut pillar, mut errors) = compiler.render_pillar(&matched);
    errors.append(&mut top_errors);
    if let (false, Value::Map(entries)) = (errors.is_empty(), &mut pillar) {
        entries.push((
            Value::from("_errors"),
            Value::Array(errors.iter().map(|e| Value::from(e.as_str())).collect()),
        ));
    }
    if let Some(overrides) = &request.overrides {
        pillar = merge(&pillar, overrides, compiler.strategy, compiler.merge_lists);
    }
    Ok(Compiled { pillar, errors })
}

impl Compiler<'_> {
    /// Salt's `get_tops` and `merge_tops`: the top files of `envs`, with the top files they
    /// `include`, merged; and the errors met.
    fn top(&self, envs: &[String]) -> (top::Top, Vec<String>) {
        let mut errors = Vec::new();
        let mut tops: Vec<(String, Value)> = Vec::new();
        for env in envs {
            let Ok(path) = self.roots.find(env, "top.sls") else {
                continue;
            };
            match self.render(&path, env, "", &[]) {
                Ok(rendered) => tops.push((env.clone(), rendered)),
                Err(err) => {
                    // Salt stops reading top files at the first that fails.
                    errors.push(format!(
                        "Rendering Primary Top file failed, render error:\n{err}"
                    ));
                    break;
                }
            }
        }
        // Top files named by `include:` in the top files, rendered once per environment.
        let mut done: Vec<(String, String)> = Vec::new();
        let mut index = 0;
        while index < tops.len() {
            let (env, ctop) = tops[index].clone();
            index += 1;
            let Some(Value::Array(includes)) = map_get(&ctop, "include") else {
                continue;
            };
            for sls in includes {
                let sls = py_str(sls).into_owned();
                if done.contains(&(env.clone(), sls.clone())) {
                    continue;
                }
                done.push((env.clone(), sls.clone()));
                let rendered = match self.find_sls(&env, &sls) {
                    Some((path, _)) => self.render(&path, &env, &sls, &[]),
                    None => Ok(Value::Map(Vec::new())),
                };
                match rendered {
                    Ok(rendered) => tops.push((env.clone(), rendered)),
                    Err(err) => errors.push(format!(
                        "Rendering Top file {sls} failed, render error:\n{err}"
                    )),
                }
            }
        }
        let rendered: Vec<Value> = tops.into_iter().map(|(_, top)| top).collect();
        match top::merge_pillar(&rendered) {
            Ok(top) => (top, errors),
            Err(err) => {
                errors.push(err.to_string());
                (top::Top::default(), errors)
            }
        }
    }

    /// Salt's `render_pillar`: the matched SLS names of each environment (globs expanded over
    /// its SLS files), rendered and merged in order.
    fn render_pillar(&self, matched: &[(String, Vec<String>)]) -> (Value, Vec<String>) {
        let mut pillar = Value::Map(Vec::new());
        let mut errors = Vec::new();
        for (env, names) in matched {
            let mut files = Vec::new();
            for name in names {
                let found: Vec<String> = match self.avail.get(env) {
                    Some(avail) => avail
                        .iter()
                        .filter(|sls| fnmatch(sls, name))
                        .cloned()
                        .collect(),
                    None => {
                        errors.push(format!(
                            "No matching pillar environment for environment '{env}' found"
                        ));
                        Vec::new()
                    }
                };
                if found.is_empty() {
                    files.push(name.clone());
                } else {
                    files.extend(found);
                }
            }
            let mut mods = HashMap::new();
            for sls in files {
                let (state, mut errs) = self.render_pstate(&sls, env, &mut mods, &[]);
                errors.append(&mut errs);
                if let Some(state @ Value::Map(_)) = state {
                    pillar = merge(&pillar, &state, self.strategy, self.merge_lists);
                }
            }
        }
        (pillar, errors)
    }

    /// Salt's `render_pstate`: one SLS file rendered, its `include`s rendered and merged
    /// under it (the file's own values win); `mods` remembers what was rendered, so an
    /// include cycle ends.
    fn render_pstate(
        &self,
        sls: &str,
        env: &str,
        mods: &mut HashMap<String, Option<Value>>,
        defaults: &[(String, Value)],
    ) -> (Option<Value>, Vec<String>) {
        let mut errors = Vec::new();
        let Some((path, is_init)) = self.find_sls(env, sls) else {
            let ignored = self
                .ignore_missing
                .iter()
                .any(|(e, name)| e == env && name == sls);
            let has_roots = self.roots.dirs(env).is_ok_and(|dirs| !dirs.is_empty());
            if !ignored && has_roots {
                let message = format!(
                    "Specified SLS '{sls}' in environment '{env}' is not available on the salt master"
                );
                tracing::error!("{message}");
                errors.push(message);
            }
            return (None, errors);
        };
        let vars: Vec<(&str, &Value)> = defaults.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let mut state = match self.render(&path, env, sls, &vars) {
            Ok(Value::Nil) => Some(Value::Map(Vec::new())),
            Ok(state) => Some(state),
            Err(err) => {
                tracing::error!("Rendering SLS '{sls}' failed, render error:\n{err}");
                errors.push(if self.safe_render_error {
                    format!("Rendering SLS '{sls}' failed. Please see master log for details.")
                } else {
                    format!("Rendering SLS '{sls}' failed, render error:\n{err}")
                });
                None
            }
        };
        let includes = match &mut state {
            Some(Value::Map(entries)) => match entries
                .iter()
                .position(|(key, _)| key.as_str() == Some("include"))
            {
                Some(at) if entries[at].1.is_array() => {
                    let (_, includes) = entries.remove(at);
                    includes.as_array().cloned()
                }
                Some(_) => {
                    let message =
                        format!("Include Declaration in SLS '{sls}' is not formed as a list");
                    tracing::error!("{message}");
                    errors.push(message);
                    None
                }
                None => None,
            },
            Some(other) if truthy(other) => {
                let message = format!("SLS '{sls}' does not render to a dictionary");
                tracing::error!("{message}");
                errors.push(message);
                None
            }
            _ => None,
        };
        mods.insert(sls.to_owned(), state.clone());
        let Some(includes) = includes else {
            return (state, errors);
        };
        let mut state = state.unwrap_or_else(|| Value::Map(Vec::new()));
        let mut included: Vec<Value> = Vec::new();
        // As in Salt, an include's defaults stay for the plain includes after it, and the errors
        // of the last include rendered are counted again for each include found rendered.
        let mut defaults = defaults.to_vec();
        let mut last_errors: Vec<String> = Vec::new();
        for include in includes {
            let (name, key) = match &include {
                Value::Map(entries) if !entries.is_empty() => {
                    let (name, options) = &entries[0];
                    if let Some(Value::Map(given)) = map_get(options, "defaults") {
                        defaults = given
                            .iter()
                            .map(|(k, v)| (py_str(k).into_owned(), v.clone()))
                            .collect();
                    } else {
                        defaults = Vec::new();
                    }
                    let key = map_get(options, "key").map(|k| py_str(k).into_owned());
                    (py_str(name).into_owned(), key)
                }
                other => (py_str(other).into_owned(), None),
            };
            for sub in self.include_names(env, sls, is_init, &name, &mut errors) {
                let nstate = match mods.get(&sub) {
                    Some(known) => known.clone(),
                    None => {
                        let (nstate, errs) = self.render_pstate(&sub, env, mods, &defaults);
                        last_errors = errs;
                        nstate
                    }
                };
                if let Some(mut nstate) = nstate.filter(|n| n.is_map() && truthy(n)) {
                    if let Some(key) = &key {
                        for fragment in key.rsplit(':') {
                            nstate = Value::Map(vec![(Value::from(fragment), nstate)]);
                        }
                    }
                    if self.includes_override {
                        state = merge(&state, &nstate, self.strategy, self.merge_lists);
                    } else {
                        included.push(nstate);
                    }
                }
                errors.extend(last_errors.iter().cloned());
            }
        }
        if !self.includes_override {
            included.push(state);
            let mut merged = included.remove(0);
            for next in &included {
                merged = merge(&merged, next, self.strategy, self.merge_lists);
            }
            state = merged;
        }
        (Some(state), errors)
    }

    /// The SLS names an `include` of `name` in `sls` stands for: the SLS files its glob
    /// matches (a relative `.name` resolved against `sls`'s package), or the name itself.
    fn include_names(
        &self,
        env: &str,
        sls: &str,
        is_init: bool,
        name: &str,
        errors: &mut Vec<String>,
    ) -> Vec<String> {
        let Some(avail) = self.avail.get(env) else {
            errors.push(format!(
                "No matching pillar environment for environment '{env}' found"
            ));
            return vec![name.to_owned()];
        };
        let filter = |pattern: &str| {
            avail
                .iter()
                .filter(|known| fnmatch(known, pattern))
                .cloned()
                .collect::<Vec<_>>()
        };
        // Salt matches the name without its leading dots first, then the resolved name.
        let mut found = filter(&name.trim_start_matches('.').replace('/', "."));
        let mut resolved = name.to_owned();
        if let Some(relative) = name.strip_prefix('.') {
            let mut parts: Vec<&str> = sls.split('.').collect();
            if !is_init {
                parts.pop();
            }
            parts.push(relative);
            resolved = parts.join(".");
        }
        found.extend(filter(&resolved));
        if found.is_empty() {
            found.push(resolved);
        }
        found
    }

    /// The file of SLS `sls` in `env` (`a.b` is `a/b.sls` or `a/b/init.sls`), and whether it is
    /// an `init.sls`.
    fn find_sls(&self, env: &str, sls: &str) -> Option<(PathBuf, bool)> {
        let path = sls.replace('.', "/");
        [
            (format!("{path}.sls"), false),
            (format!("{path}/init.sls"), true),
        ]
        .into_iter()
        .find_map(
            |(candidate, is_init)| match self.roots.find(env, &candidate) {
                Ok(found) => Some((found, is_init)),
                Err(FileError::Traversal { path }) => {
                    tracing::warn!("refused SLS {sls:?}: {path} leaves the pillar roots");
                    None
                }
                Err(_) => None,
            },
        )
    }

    /// Renders one file with the pillar template variables and `extra` ones.
    fn render(
        &self,
        path: &Path,
        env: &str,
        sls: &str,
        extra: &[(&str, &Value)],
    ) -> Result<Value, crate::render::RenderError> {
        let source = std::fs::read_to_string(path).map_err(|err| crate::render::RenderError {
            file: path.display().to_string(),
            line: 0,
            column: 0,
            expression: String::new(),
            message: format!("cannot read it: {err}"),
        })?;
        let (saltenv, sls_value) = (Value::from(env), Value::from(sls));
        let slspath = Value::from(match sls.rsplit_once('.') {
            Some((package, _)) => package.replace('.', "/"),
            None => String::new(),
        });
        let mut vars: Vec<(&str, &Value)> = vec![
            ("grains", &self.request.grains),
            ("pillar", &self.request.current),
            ("saltenv", &saltenv),
            ("sls", &sls_value),
            ("slspath", &slspath),
        ];
        vars.extend_from_slice(extra);
        let vars = crate::render::Vars {
            values: vars
                .into_iter()
                .map(|(key, value)| (key.to_owned(), value.clone()))
                .collect(),
            salt: None,
        };
        self.renderer
            .render_sls(&path.display().to_string(), &source, &vars)
    }
}

/// Salt's `list_states`: every SLS name of `env` (`a/b.sls` is `a.b`, `a/init.sls` is `a`),
/// sorted. Symlinked directories are not entered (a loop would never end).
fn list_states(roots: &Roots, env: &str) -> Vec<String> {
    let mut states = std::collections::BTreeSet::new();
    for root in roots.dirs(env).unwrap_or_default() {
        let mut pending = vec![root.clone()];
        while let Some(dir) = pending.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                match entry.file_type() {
                    Ok(kind) if kind.is_dir() => pending.push(path),
                    Ok(_) => {
                        let Ok(relative) = path.strip_prefix(root) else {
                            continue;
                        };
                        let relative = relative.to_string_lossy().replace('/', ".");
                        if let Some(init) = relative.strip_suffix(".init.sls") {
                            states.insert(init.to_owned());
                        } else if let Some(name) = relative.strip_suffix(".sls") {
                            states.insert(name.to_owned());
                        }
                    }
                    Err(_) => {}
                }
            }
        }
    }
    states.into_iter().collect()
}

/// What [`PillarFetch::fetch`] returns, later.
pub type Fetching<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Arc<Value>, String>> + Send + 'a>>;

/// Asks the master for this minion's pillar (the daemons implement it over the link).
pub trait PillarFetch: Send + Sync {
    /// The pillar the master compiled for this minion.
    fn fetch(&self) -> Fetching<'_>;
}

/// How long one fetch of the pillar from the master may take: a caller waits at most for the
/// fetch under way when it came, then (only if that one was given up) for its own.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(60);

/// A minion's in-memory pillar: compiled from the minion's own `pillar_roots` when first
/// needed (`salt-call --local`), or fetched from the master; a refresh forgets it, so it is
/// compiled (or fetched) again. Readers share it ([`PillarSource::get`] hands out the one
/// copy), and callers that fetch while a fetch is under way wait for that one's outcome.
#[derive(Clone)]
pub struct PillarSource {
    held: Arc<Mutex<Held>>,
    master: Option<Arc<Master>>,
}

impl std::fmt::Debug for PillarSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PillarSource")
            .field("held", &self.held)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Held {
    pillar: Option<Arc<Value>>,
    local: bool,
}

/// The master's side of a [`PillarSource`]: one fetch at a time, its outcome shared.
struct Master {
    fetch: Arc<dyn PillarFetch>,
    timeout: Duration,
    /// Held through the fetch under way; it keeps the outcome of the last one.
    flight: tokio::sync::Mutex<Result<(), String>>,
    /// Fetches finished, so that a caller that waited knows one finished meanwhile.
    finished: AtomicU64,
}

impl PillarSource {
    /// A pillar compiled here from the minion configuration's `pillar_roots`.
    pub fn local() -> Self {
        Self {
            held: Arc::new(Mutex::new(Held {
                pillar: None,
                local: true,
            })),
            master: None,
        }
    }

    /// A pillar the master compiles, asked for through `fetch`; empty until then.
    pub fn from_master(fetch: Arc<dyn PillarFetch>) -> Self {
        Self::from_master_within(fetch, FETCH_TIMEOUT)
    }

    /// As [`PillarSource::from_master`], a fetch given up after `timeout`.
    fn from_master_within(fetch: Arc<dyn PillarFetch>, timeout: Duration) -> Self {
        Self {
            held: Arc::new(Mutex::new(Held {
                pillar: None,
                local: false,
            })),
            master: Some(Arc::new(Master {
                fetch,
                timeout,
                flight: tokio::sync::Mutex::new(Ok(())),
                finished: AtomicU64::new(0),
            })),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().expect("not poisoned")
    }

    /// Asks the master for the pillar again, as Salt's minion does for every state run and
    /// `pillar.*` call; a local pillar is left to be compiled when used. A caller that comes
    /// while a fetch is under way takes that fetch's outcome instead of asking again. A failed
    /// fetch keeps the pillar there was.
    pub async fn fetch(&self) -> Result<(), PillarError> {
        let Some(master) = &self.master else {
            return Ok(());
        };
        let seen = master.finished.load(Ordering::Acquire);
        let mut last = master.flight.lock().await;
        if master.finished.load(Ordering::Acquire) != seen {
            return last.clone().map_err(PillarError::Master);
        }
        let outcome = match tokio::time::timeout(master.timeout, master.fetch.fetch()).await {
            Ok(Ok(pillar)) => {
                self.held().pillar = Some(pillar);
                Ok(())
            }
            Ok(Err(reason)) => Err(reason),
            Err(_) => Err(format!("no answer within {:?}", master.timeout)),
        };
        *last = outcome.clone();
        master.finished.fetch_add(1, Ordering::Release);
        outcome.map_err(PillarError::Master)
    }

    /// Whether the pillar is compiled here.
    pub fn is_local(&self) -> bool {
        self.held().local
    }

    /// Forgets the pillar, so the next use compiles (or the minion fetches) it again.
    pub fn refresh(&self) {
        self.held().pillar = None;
    }

    /// Whether there is no pillar now (never compiled or fetched, or refreshed since).
    pub fn is_stale(&self) -> bool {
        self.held().pillar.is_none()
    }

    /// The in-memory pillar (shared, not copied), compiled first when local and missing; empty
    /// when the master has not sent one.
    pub fn get(&self, config: &Config, grains: &Value) -> Result<Arc<Value>, PillarError> {
        let mut held = self.held();
        if let Some(pillar) = &held.pillar {
            return Ok(Arc::clone(pillar));
        }
        if !held.local {
            return Ok(Arc::new(Value::Map(Vec::new())));
        }
        let request = Request::new(config.id()?, grains.clone());
        let pillar = Arc::new(compile(config, &request)?.pillar);
        held.pillar = Some(Arc::clone(&pillar));
        Ok(pillar)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Role;

    /// A minion config in a temp dir whose `pillar_roots` hold `files` (path, text) in `base`
    /// (and `dev/…` paths in `dev`).
    fn setup(files: &[(&str, &str)], extra: &str) -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for (path, text) in files {
            let (env, path) = path.split_once('/').unwrap();
            let file = root.join(env).join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, text).unwrap();
        }
        std::fs::write(
            root.join("minion"),
            format!(
                "id: web1\npillar_roots:\n  base: [{0}/base]\n  dev: [{0}/dev]\n{extra}",
                root.display()
            ),
        )
        .unwrap();
        let config = Config::load(Role::Minion, Some(root)).unwrap();
        (dir, config)
    }

    fn grains() -> Value {
        crate::salt_yaml::load("{id: web1, os: Debian, roles: [web]}").unwrap()
    }

    fn pillar(files: &[(&str, &str)], extra: &str) -> Compiled {
        let (_dir, config) = setup(files, extra);
        compile(&config, &Request::new("web1".into(), grains())).unwrap()
    }

    #[test]
    fn includes_merge_under_the_file_and_templates_see_grains_and_saltenv() {
        let compiled = pillar(
            &[
                (
                    "base/top.sls",
                    "base:\n  '*': [app]\n  'G@os:Debian': [deb]\ndev:\n  '*': [d]\n",
                ),
                (
                    "base/app/init.sls",
                    "include:\n  - .common\n  - {other: {key: 'x:y', defaults: {n: 5}}}\napp: {a: 1, l: [1]}\nwho: {{ grains['id'] }} {{ saltenv }} {{ sls }}\n",
                ),
                ("base/app/common.sls", "app: {a: 0, b: 2, l: [2]}\n"),
                ("base/other.sls", "n: {{ n }}\n"),
                (
                    "base/deb.sls",
                    "app: {c: 3}\nflags: {{ grains['roles'] }}\n",
                ),
                ("dev/d.sls", "env: {{ saltenv }}\n"),
            ],
            "",
        );
        assert_eq!(compiled.errors, Vec::<String>::new());
        assert_eq!(
            compiled.pillar.to_string(),
            r#"{"app": {"a": 1, "b": 2, "l": [1], "c": 3}, "x": {"y": {"n": 5}}, "who": "web1 base app", "flags": ["web"], "env": "dev"}"#
        );
    }

    #[test]
    fn merge_lists_and_overwrite_follow_the_options() {
        let files = [
            ("base/top.sls", "base:\n  '*': [one, two]\n"),
            ("base/one.sls", "m: {l: [1, 2], k: {a: 1}}\n"),
            ("base/two.sls", "m: {l: [2, 3], k: {b: 2}}\n"),
        ];
        assert_eq!(
            pillar(&files, "pillar_merge_lists: True\n")
                .pillar
                .to_string(),
            r#"{"m": {"l": [1, 2, 3], "k": {"a": 1, "b": 2}}}"#
        );
        assert_eq!(
            pillar(&files, "pillar_source_merging_strategy: overwrite\n")
                .pillar
                .to_string(),
            r#"{"m": {"l": [2, 3], "k": {"b": 2}}}"#
        );
    }

    /// Salt 3007.8's messages, in its order, for the same tree.
    #[test]
    fn problems_are_collected_under_errors_in_salts_words() {
        let compiled = pillar(
            &[
                (
                    "base/top.sls",
                    "base:\n  '*': [missing, bad, notdict, listy, ok, '../../etc/passwd']\n  'web*': [quiet, {ignore_missing: true}]\nnosuchenv:\n  '*': [x]\n",
                ),
                ("base/bad.sls", "a: {{ nope.x }}\n"),
                ("base/notdict.sls", "- 1\n"),
                ("base/listy.sls", "include: notalist\nk: 1\n"),
                ("base/ok.sls", "ok: 1\n"),
            ],
            "",
        );
        assert_eq!(
            compiled.errors,
            [
                "Specified SLS 'missing' in environment 'base' is not available on the salt master",
                "Rendering SLS 'bad' failed. Please see master log for details.",
                "SLS 'notdict' does not render to a dictionary",
                "Include Declaration in SLS 'listy' is not formed as a list",
                "Specified SLS '../../etc/passwd' in environment 'base' is not available on the salt master",
                "No matching pillar environment for environment 'nosuchenv' found",
            ]
        );
        assert_eq!(
            crate::event::map_get(&compiled.pillar, "_errors")
                .and_then(Value::as_array)
                .map(Vec::len),
            Some(6)
        );
        assert_eq!(
            crate::event::map_get(&compiled.pillar, "include").and_then(Value::as_str),
            Some("notalist")
        );
    }

    #[test]
    fn a_top_file_that_fails_is_reported_and_nothing_matches() {
        let compiled = pillar(&[("base/top.sls", "base: {{ nope }}\n")], "");
        assert_eq!(compiled.errors.len(), 1);
        assert!(
            compiled.errors[0].starts_with("Rendering Primary Top file failed, render error:\n"),
            "{:?}",
            compiled.errors
        );
    }

    #[test]
    fn pillarenv_limits_tops_and_matches_to_one_environment() {
        let (_dir, config) = setup(
            &[
                ("base/top.sls", "base: {'*': [b]}\ndev: {'*': [d]}\n"),
                ("base/b.sls", "b: 1\n"),
                ("dev/top.sls", "dev: {'*': [d]}\n"),
                ("dev/d.sls", "d: {{ pillar['before'] }}\n"),
            ],
            "",
        );
        let mut request = Request::new("web1".into(), grains());
        request.pillarenv = Some("dev".into());
        request.current = crate::salt_yaml::load("{before: 7}").unwrap();
        request.overrides = Some(crate::salt_yaml::load("{o: 1}").unwrap());
        let compiled = compile(&config, &request).unwrap();
        assert_eq!(compiled.pillar.to_string(), r#"{"d": 7, "o": 1}"#);
    }

    #[test]
    fn a_local_source_compiles_once_until_refreshed() {
        let (dir, config) = setup(
            &[
                ("base/top.sls", "base: {'*': [a]}\n"),
                ("base/a.sls", "a: 1\n"),
            ],
            "",
        );
        let source = PillarSource::local();
        assert!(source.is_stale());
        assert_eq!(
            source.get(&config, &grains()).unwrap().to_string(),
            r#"{"a": 1}"#
        );
        std::fs::write(dir.path().join("base/a.sls"), "a: 2\n").unwrap();
        assert_eq!(
            source.get(&config, &grains()).unwrap().to_string(),
            r#"{"a": 1}"#
        );
        source.refresh();
        assert_eq!(
            source.get(&config, &grains()).unwrap().to_string(),
            r#"{"a": 2}"#
        );
        struct Master;
        impl PillarFetch for Master {
            fn fetch(&self) -> Fetching<'_> {
                Box::pin(async { Ok(Arc::new(Value::from("x"))) })
            }
        }
        let remote = PillarSource::from_master(Arc::new(Master));
        assert_eq!(*remote.get(&config, &grains()).unwrap(), Value::Map(vec![]));
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(remote.fetch())
            .unwrap();
        assert_eq!(*remote.get(&config, &grains()).unwrap(), Value::from("x"));
    }

    /// A master that answers each fetch when the test says, counting the fetches.
    struct Slow {
        asked: std::sync::atomic::AtomicUsize,
        answers: tokio::sync::Mutex<tokio::sync::mpsc::Receiver<Value>>,
    }

    impl PillarFetch for Slow {
        fn fetch(&self) -> Fetching<'_> {
            Box::pin(async {
                self.asked.fetch_add(1, Ordering::SeqCst);
                match self.answers.lock().await.recv().await {
                    Some(pillar) => Ok(Arc::new(pillar)),
                    // The test dropped its sender: this master never answers.
                    None => std::future::pending().await,
                }
            })
        }
    }

    fn slow() -> (Arc<Slow>, tokio::sync::mpsc::Sender<Value>) {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let slow = Arc::new(Slow {
            asked: Default::default(),
            answers: tokio::sync::Mutex::new(rx),
        });
        (slow, tx)
    }

    #[tokio::test]
    async fn fetches_that_overlap_share_one_request_and_its_pillar() {
        let (master, answer) = slow();
        let source = PillarSource::from_master(master.clone());
        let (first, second) = (source.clone(), source.clone());
        let first = tokio::spawn(async move { first.fetch().await });
        while master.asked.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let second = tokio::spawn(async move { second.fetch().await });
        tokio::task::yield_now().await;
        answer.send(Value::from("shared")).await.unwrap();
        first.await.unwrap().unwrap();
        second.await.unwrap().unwrap();
        assert_eq!(master.asked.load(Ordering::SeqCst), 1);
        let ((_dir, config), grains) = (setup(&[], ""), grains());
        let (one, two) = (
            source.get(&config, &grains).unwrap(),
            source.get(&config, &grains).unwrap(),
        );
        assert_eq!(*one, Value::from("shared"));
        assert!(Arc::ptr_eq(&one, &two), "the pillar is shared, not copied");
        // A fetch after that one asks again.
        answer.send(Value::from("newer")).await.unwrap();
        source.fetch().await.unwrap();
        assert_eq!(master.asked.load(Ordering::SeqCst), 2);
        assert_eq!(*source.get(&config, &grains).unwrap(), Value::from("newer"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_master_that_never_answers_fails_every_waiting_fetch_in_time() {
        let (master, answer) = slow();
        drop(answer);
        let source = PillarSource::from_master_within(master.clone(), Duration::from_secs(5));
        let started = tokio::time::Instant::now();
        let waiting: Vec<_> = (0..3)
            .map(|_| {
                let source = source.clone();
                tokio::spawn(async move { source.fetch().await })
            })
            .collect();
        for fetch in waiting {
            let err = fetch.await.unwrap().unwrap_err();
            assert_eq!(
                err.to_string(),
                "the master did not send the pillar: no answer within 5s"
            );
        }
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        assert_eq!(master.asked.load(Ordering::SeqCst), 1);
        assert!(source.is_stale());
    }
}
