//! SLS files to high data, as Salt's `BaseHighState` does: each SLS found (`a.b` is `a/b.sls`
//! or `a/b/init.sls`) through the minion's file cache, rendered (Jinja, then YAML) with Salt's
//! template variables, its `include`s rendered first (relative `.x`, `env: x` forms), its
//! `extend` and `exclude` set aside, short declarations (`cmd.run:`, `id: pkg.installed`)
//! padded, each state given its definition order (`state_auto_order`); and the top file read
//! for the highstate.

use indexmap::IndexMap;

use super::StateContext;
use super::high::{High, single};
use crate::event::{Value, map_get};
use crate::fileserver::FileError;
use crate::py::fnmatch::fnmatch;
use crate::py::value::py_str;

/// Salt's first automatic order: explicit small `order`s come before every state.
const FIRST_AUTO_ORDER: i64 = 10000;

/// Renders SLS files for one run, numbering states across them.
pub(super) struct Compiler<'a> {
    ctx: &'a StateContext,
    /// The next automatic order.
    iorder: i64,
    /// `env:sls` already rendered.
    mods: Vec<String>,
    /// SLS names per environment, listed once when a glob needs them.
    avail: IndexMap<String, Vec<String>>,
}

/// An SLS as found: its URL path (`a/b/init.sls`) and the local copy.
struct Found {
    source: String,
    path: std::path::PathBuf,
}

impl<'a> Compiler<'a> {
    pub(super) fn new(ctx: &'a StateContext) -> Self {
        Self {
            ctx,
            iorder: FIRST_AUTO_ORDER,
            mods: Vec::new(),
            avail: IndexMap::new(),
        }
    }

    /// The SLS names of `saltenv` (Salt's `list_states`).
    async fn avail(&mut self, saltenv: &str) -> &[String] {
        if !self.avail.contains_key(saltenv) {
            let files = match &self.ctx.files {
                Some(files) => files.source().list_files(saltenv).await.unwrap_or_default(),
                None => Vec::new(),
            };
            let states = files
                .iter()
                .filter_map(|file| file.strip_suffix(".sls"))
                .map(|stem| match stem.strip_suffix("/init") {
                    Some(package) => package.replace('/', "."),
                    None => stem.replace('/', "."),
                })
                .collect();
            self.avail.insert(saltenv.to_owned(), states);
        }
        &self.avail[saltenv]
    }

    /// The top file of `saltenv` rendered, `None` when it has none (Salt's `get_tops`).
    pub(super) async fn render_top(
        &mut self,
        saltenv: &str,
        top: &str,
    ) -> Result<Option<Value>, String> {
        let path = top.strip_prefix("salt://").unwrap_or(top);
        let sls = path.strip_suffix(".sls").unwrap_or(path).replace('/', ".");
        let Some(found) = self
            .find(&sls, saltenv)
            .await
            .map_err(|err| err.to_string())?
        else {
            return Ok(None);
        };
        match self.render_file(&sls, saltenv, &found).await {
            Ok(Value::Nil) => Ok(None),
            Ok(top) => Ok(Some(top)),
            Err(message) => Err(format!("Unable to render top file: {message}")),
        }
    }

    /// The environments the file server has, `base` first.
    pub(super) async fn envs(&self) -> Vec<String> {
        match &self.ctx.files {
            Some(files) => files.source().envs().await.unwrap_or_default(),
            None => Vec::new(),
        }
    }

    /// The local copy of SLS `sls` (Salt's `get_state`).
    async fn find(&self, sls: &str, saltenv: &str) -> Result<Option<Found>, FileError> {
        let Some(files) = &self.ctx.files else {
            return Ok(None);
        };
        let base = sls.replace('.', "/");
        for source in [format!("{base}.sls"), format!("{base}/init.sls")] {
            match files.cache_file(&format!("salt://{source}"), saltenv).await {
                Ok(path) => return Ok(Some(Found { source, path })),
                Err(FileError::NotFound { .. } | FileError::UnknownEnv(_)) => {}
                Err(FileError::Traversal { .. }) => return Ok(None),
                Err(other) => return Err(other),
            }
        }
        Ok(None)
    }

    /// Renders the SLS files `matches` names (environment → SLS names or globs) into one high
    /// data, with Salt's errors (Salt's `render_highstate`).
    pub(super) async fn render_highstate(
        &mut self,
        matches: &IndexMap<String, Vec<String>>,
    ) -> (High, Vec<String>) {
        let mut high = High::default();
        let mut all_errors = Vec::new();
        let envs = self.envs().await;
        // Salt keeps the previous pattern's files for a pattern of an unknown environment.
        let mut statefiles: Vec<String> = Vec::new();
        for (saltenv, patterns) in matches {
            for pattern in patterns {
                if envs.contains(saltenv) {
                    statefiles = self
                        .avail(saltenv)
                        .await
                        .iter()
                        .filter(|sls| fnmatch(sls, pattern))
                        .cloned()
                        .collect();
                } else {
                    all_errors.push(format!(
                        "No matching salt environment for environment '{saltenv}' found"
                    ));
                }
                if statefiles.is_empty() {
                    statefiles.push(pattern.clone());
                }
                for sls in statefiles.clone() {
                    if self.mods.contains(&format!("{saltenv}:{sls}")) {
                        continue;
                    }
                    let (state, mut errors) =
                        Box::pin(self.render_state(&sls, saltenv, matches)).await;
                    merge_included(&mut high, state, &mut errors);
                    let missing = format!("SLS {pattern} in saltenv");
                    for error in &mut errors {
                        if error.contains("is not available") && error.contains(&missing) {
                            *error =
                                format!("No matching sls found for '{pattern}' in env '{saltenv}'");
                        }
                    }
                    all_errors.extend(errors);
                }
            }
        }
        // Salt drops `extend` blocks that were declared twice (an SLS included twice).
        let mut seen = Vec::new();
        high.extend.retain(|entry| {
            let fresh = !seen.contains(entry);
            if fresh {
                seen.push(entry.clone());
            }
            fresh
        });
        (high, all_errors)
    }

    /// Renders one SLS and what it includes (Salt's `render_state`).
    async fn render_state(
        &mut self,
        sls: &str,
        saltenv: &str,
        matches: &IndexMap<String, Vec<String>>,
    ) -> (High, Vec<String>) {
        let mut errors = Vec::new();
        let found = match self.find(sls, saltenv).await {
            Ok(found) => found,
            Err(err) => {
                errors.push(format!("Rendering SLS '{saltenv}:{sls}' failed: {err}"));
                return (High::default(), errors);
            }
        };
        let Some(found) = found else {
            errors.push(format!(
                "Specified SLS {sls} in saltenv {saltenv} is not available on the salt master or through a configured fileserver"
            ));
            return (High::default(), errors);
        };
        let rendered = self.render_file(sls, saltenv, &found).await;
        self.mods.push(format!("{saltenv}:{sls}"));
        let state = match rendered {
            Ok(state) => state,
            Err(message) => {
                errors.push(format!("Rendering SLS '{saltenv}:{sls}' failed: {message}"));
                return (High::default(), errors);
            }
        };
        let mut entries = match state {
            Value::Nil => return (High::default(), errors),
            Value::Map(entries) if entries.is_empty() => return (High::default(), errors),
            Value::Map(entries) => entries,
            _ => {
                errors.push(format!("SLS {sls} does not render to a dictionary"));
                return (High::default(), errors);
            }
        };
        let mut high = High::default();
        let mut include = Vec::new();
        if let Some(index) = entries
            .iter()
            .position(|(k, _)| k.as_str() == Some("include"))
        {
            match &entries[index].1 {
                Value::Array(list) => {
                    include = list.clone();
                    entries.remove(index);
                }
                _ => errors.push(format!(
                    "Include Declaration in SLS {sls} is not formed as a list"
                )),
            }
        }
        take_extend(&mut entries, &mut high, sls, saltenv, &mut errors);
        if let Some(index) = entries
            .iter()
            .position(|(k, _)| k.as_str() == Some("exclude"))
        {
            let (_, exclude) = entries.remove(index);
            match exclude {
                Value::Array(list) => high.exclude.extend(list),
                _ => errors.push(format!(
                    "Exclude Declaration in SLS {sls} is not formed as a list"
                )),
            }
        }
        state_decls(entries, &mut high, sls, saltenv, &mut errors);
        for entry in include {
            let (env_key, mut inc_sls) = match single(&entry) {
                Some((env, target)) if entry.is_map() => (env, py_str(target).into_owned()),
                _ => (saltenv.to_owned(), py_str(&entry).into_owned()),
            };
            if !self.envs().await.contains(&env_key) {
                errors.push(format!(
                    "Nonexistent saltenv '{env_key}' found in include of '{inc_sls}' within SLS '{saltenv}:{sls}'"
                ));
                continue;
            }
            if let Some(rest) = inc_sls.strip_prefix('.') {
                let levels = 1 + rest.len() - rest.trim_start_matches('.').len();
                let target = rest.trim_start_matches('.');
                let mut parts: Vec<&str> = sls.split('.').collect();
                if found.source.ends_with("/init.sls") {
                    parts.push("init");
                }
                if levels > parts.len() {
                    errors.push(format!(
                        "Attempted relative include of '{inc_sls}' within SLS '{saltenv}:{sls}' goes beyond top level package "
                    ));
                    continue;
                }
                parts.truncate(parts.len() - levels);
                parts.push(target);
                inc_sls = parts.join(".");
            }
            let resolved = matches.contains_key(&env_key)
                || self
                    .avail(&env_key)
                    .await
                    .iter()
                    .any(|s| fnmatch(s, &inc_sls));
            if !resolved {
                errors.push(format!(
                    "Unknown include: Specified SLS {env_key}: {inc_sls} is not available on the salt master in saltenv(s): {env_key} "
                ));
                continue;
            }
            let mut targets: Vec<String> = self
                .avail(saltenv)
                .await
                .iter()
                .filter(|s| fnmatch(s, &inc_sls))
                .cloned()
                .collect();
            if targets.is_empty() {
                targets.push(inc_sls.clone());
            }
            for target in targets {
                if self.mods.contains(&format!("{env_key}:{target}")) {
                    continue;
                }
                let (mut included, err) =
                    Box::pin(self.render_state(&target, &env_key, matches)).await;
                for body in included.ids.values_mut() {
                    if let Value::Map(pairs) = body {
                        let key = Value::from("__sls_included_from__");
                        match pairs.iter_mut().find(|(k, _)| *k == key) {
                            Some((_, Value::Array(from))) => from.push(Value::from(sls)),
                            _ => pairs.push((key, Value::Array(vec![Value::from(sls)]))),
                        }
                    }
                }
                merge_included(&mut high, included, &mut errors);
                errors.extend(err);
            }
        }
        self.auto_order(&mut high);
        (high, errors)
    }

    /// Gives each state declaration without an `order` the next automatic one (Salt's
    /// `_handle_iorder`); included states already have theirs.
    fn auto_order(&mut self, high: &mut High) {
        if !self
            .ctx
            .config
            .get_bool("state_auto_order", true)
            .unwrap_or(true)
        {
            return;
        }
        for body in high.ids.values_mut() {
            let Value::Map(pairs) = body else { continue };
            for (key, decl) in pairs.iter_mut() {
                if py_str(key).starts_with('_') {
                    continue;
                }
                let Value::Array(args) = decl else { continue };
                let ordered = args
                    .iter()
                    .any(|arg| single(arg).is_some_and(|(k, _)| k == "order"));
                if !ordered {
                    args.push(Value::Map(vec![(
                        Value::from("order"),
                        Value::from(self.iorder),
                    )]));
                    self.iorder += 1;
                }
            }
        }
    }

    /// Jinja then YAML over the SLS, with Salt's template variables.
    async fn render_file(&self, sls: &str, saltenv: &str, found: &Found) -> Result<Value, String> {
        let source = std::fs::read_to_string(&found.path).map_err(|err| err.to_string())?;
        let tpldir = match found.source.rsplit_once('/') {
            Some((dir, _)) => dir.to_owned(),
            None => ".".to_owned(),
        };
        let slspath = if tpldir == "." {
            String::new()
        } else {
            tpldir.clone()
        };
        let extra = vec![
            ("sls".to_owned(), Value::from(sls)),
            ("slspath".to_owned(), Value::from(slspath.as_str())),
            (
                "sls_path".to_owned(),
                Value::from(slspath.replace('/', "_")),
            ),
            (
                "slsdotpath".to_owned(),
                Value::from(slspath.replace('/', ".")),
            ),
            (
                "slscolonpath".to_owned(),
                Value::from(slspath.replace('/', ":")),
            ),
            (
                "tplpath".to_owned(),
                Value::from(found.path.to_string_lossy().as_ref()),
            ),
            ("tplfile".to_owned(), Value::from(found.source.as_str())),
            ("tpldir".to_owned(), Value::from(tpldir.as_str())),
            ("tpldot".to_owned(), Value::from(tpldir.replace('/', "."))),
            (
                "tplroot".to_owned(),
                Value::from(tpldir.split('/').next().unwrap_or_default()),
            ),
        ];
        // A first line `#!jinja|yaml` names the renderers; Jinja runs only when named there.
        let pipe: Vec<String> = source
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("#!"))
            .map(|pipe| pipe.split('|').map(|r| r.trim().to_owned()).collect())
            .unwrap_or_else(|| vec!["jinja".to_owned(), "yaml".to_owned()]);
        if let Some(unknown) = pipe
            .iter()
            .find(|r| !["jinja", "yaml", "json"].contains(&r.as_str()))
        {
            return Err(format!(
                "the {unknown} renderer is not available: halite renders SLS files with jinja, yaml and json"
            ));
        }
        let jinja = pipe.iter().any(|r| r == "jinja");
        let vars = self.ctx.template_vars(saltenv, sls, extra);
        let renderer = self.ctx.renderer.clone();
        let name = found.source.clone();
        let text = source.clone();
        tokio::task::spawn_blocking(move || {
            if jinja {
                renderer.render_sls(&name, &source, &vars)
            } else {
                renderer.render_yaml(&name, &source)
            }
        })
        .await
        .map_err(|err| err.to_string())?
        .map_err(|err| salt_render_error(&err, &text))
    }
}

/// A render error as Salt words it: an undefined variable as "Jinja variable 'x' is
/// undefined", then the line and the lines around it with a marker.
fn salt_render_error(err: &crate::render::RenderError, source: &str) -> String {
    if err.message.starts_with("invalid YAML") || err.line == 0 {
        return err.to_string();
    }
    let identifier = !err.expression.is_empty()
        && err
            .expression
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_');
    // Jinja2 calls an unknown function an undefined variable, as it is one.
    let unknown_function = err
        .message
        .strip_prefix("unknown function: ")
        .and_then(|detail| detail.strip_suffix(" is unknown"));
    let what = if let Some(function) = unknown_function {
        format!("Jinja variable '{function}' is undefined")
    } else if err.message.contains("undefined") && identifier {
        format!("Jinja variable '{}' is undefined", err.expression)
    } else if let Some(detail) = err.message.strip_prefix("syntax error: ") {
        let unclosed = detail
            .starts_with("unexpected end of input")
            .then(|| unclosed_block(source))
            .flatten();
        format!(
            "Jinja syntax error: {}",
            unclosed.as_deref().unwrap_or(detail)
        )
    } else {
        format!("Jinja error: {}", err.message)
    };
    let lines: Vec<&str> = source.lines().collect();
    let first = err.line.saturating_sub(3).max(1);
    let last = (err.line + 3).min(lines.len());
    let context: Vec<String> = (first..=last)
        .map(|number| {
            let line = lines.get(number - 1).copied().unwrap_or_default();
            if number == err.line {
                format!("{line}    <======================")
            } else {
                line.to_owned()
            }
        })
        .collect();
    format!(
        "{what}; line {}\n\n---\n{}\n---",
        err.line,
        context.join("\n")
    )
}

/// Jinja2's words for a template that ends inside a block: the tags it was looking for and
/// the innermost block left open, found by following the block tags of `source`.
fn unclosed_block(source: &str) -> Option<String> {
    let tags = regex::Regex::new(r"\{%[-+]?\s*(\w+)([^%]*)").ok()?;
    // Each open block with the tags that may end or continue it, as Jinja2's parser lists them.
    let mut open: Vec<(String, &[&str])> = Vec::new();
    for tag in tags.captures_iter(source) {
        let (name, rest) = (&tag[1], &tag[2]);
        let looking: &[&str] = match name {
            "if" => &["elif", "else", "endif"],
            "for" => &["endfor", "else"],
            "macro" => &["endmacro"],
            "call" => &["endcall"],
            "filter" => &["endfilter"],
            "set" if !rest.contains('=') => &["endset"],
            "with" => &["endwith"],
            "autoescape" => &["endautoescape"],
            "block" => &["endblock"],
            "else" => {
                if let Some((block, looking)) = open.last_mut() {
                    match block.as_str() {
                        "if" => *looking = &["endif"],
                        "for" => *looking = &["endfor"],
                        _ => {}
                    }
                }
                continue;
            }
            end if end.starts_with("end") => {
                open.pop();
                continue;
            }
            _ => continue,
        };
        open.push((name.to_owned(), looking));
    }
    let (block, looking) = open.last()?;
    let looking: Vec<String> = looking.iter().map(|tag| format!("'{tag}'")).collect();
    Some(format!(
        "Unexpected end of template. Jinja was looking for the following tags: {}. The innermost block that needs to be closed is '{block}'.",
        looking.join(" or ")
    ))
}

/// Takes `extend` out of a rendered SLS into `high.extend` (Salt's `_handle_extend`).
fn take_extend(
    entries: &mut Vec<(Value, Value)>,
    high: &mut High,
    sls: &str,
    saltenv: &str,
    errors: &mut Vec<String>,
) {
    let Some(index) = entries
        .iter()
        .position(|(k, _)| k.as_str() == Some("extend"))
    else {
        return;
    };
    let (_, extend) = entries.remove(index);
    let Value::Map(ids) = extend else {
        errors.push(format!(
            "Extension value in SLS '{sls}' is not a dictionary"
        ));
        return;
    };
    for (name, body) in ids {
        let name = py_str(&name).into_owned();
        let Value::Map(mut pairs) = body else {
            errors.push(format!(
                "Extension name '{name}' in SLS '{sls}' is not a dictionary"
            ));
            continue;
        };
        for (key, value) in [("__sls__", sls), ("__env__", saltenv)] {
            if !pairs.iter().any(|(k, _)| k.as_str() == Some(key)) {
                pairs.push((Value::from(key), Value::from(value)));
            }
        }
        split_dotted(&mut pairs);
        high.extend.push((name, Value::Map(pairs)));
    }
}

/// `module.function: [args]` → `module: [args, function]`.
fn split_dotted(pairs: &mut [(Value, Value)]) {
    for (key, value) in pairs.iter_mut() {
        let name = py_str(key).into_owned();
        if name.starts_with('_') || !value.is_array() {
            continue;
        }
        if let Some((module, fun)) = name.split_once('.') {
            let fun = fun.split('.').next().unwrap_or_default();
            if let Value::Array(args) = value {
                args.push(Value::from(fun));
            }
            *key = Value::from(module);
        }
    }
}

/// The name of the Python type a YAML key loads as.
fn python_type(value: &Value) -> &'static str {
    match value {
        Value::Nil => "NoneType",
        Value::Boolean(_) => "bool",
        Value::Integer(_) => "int",
        Value::F32(_) | Value::F64(_) => "float",
        Value::Binary(_) => "bytes",
        Value::Array(_) => "list",
        Value::Map(_) => "dict",
        _ => "str",
    }
}

/// Adds a rendered SLS's IDs to `high`, padding short forms and marking `__sls__`/`__env__`
/// (Salt's `_handle_state_decls`).
fn state_decls(
    entries: Vec<(Value, Value)>,
    high: &mut High,
    sls: &str,
    saltenv: &str,
    errors: &mut Vec<String>,
) {
    for (key, body) in entries {
        let name = py_str(&key).into_owned();
        if !key.is_str() {
            // `123:` or `true:` is almost always a missing quote; refused once rendered.
            high.misquoted.push((name.clone(), python_type(&key)));
        }
        let mut pairs = match body {
            Value::Map(pairs) => pairs,
            Value::String(ref short) if short.as_str().is_some_and(|s| s.contains('.')) => {
                let text = py_str(&body).into_owned();
                let mut parts = text.split('.');
                let module = parts.next().unwrap_or_default();
                let fun = parts.next().unwrap_or_default();
                high.ids.insert(
                    name,
                    Value::Map(vec![
                        (Value::from("__sls__"), Value::from(sls)),
                        (Value::from("__env__"), Value::from(saltenv)),
                        (Value::from(module), Value::Array(vec![Value::from(fun)])),
                    ]),
                );
                continue;
            }
            other => {
                errors.push(format!("ID {name} in SLS {sls} is not a dictionary"));
                high.ids.insert(name, other);
                continue;
            }
        };
        let mut modules: Vec<String> = Vec::new();
        let mut index = 0;
        while index < pairs.len() {
            let key = py_str(&pairs[index].0).into_owned();
            if key.starts_with('_') || !pairs[index].1.is_array() {
                index += 1;
                continue;
            }
            if let Some((module, fun)) = key.split_once('.') {
                let module = module.to_owned();
                if modules.contains(&module) {
                    errors.push(format!(
                        "ID '{name}' in SLS '{sls}' contains multiple state declarations of the same type"
                    ));
                    index += 1;
                    continue;
                }
                let fun = fun.split('.').next().unwrap_or_default().to_owned();
                let (_, mut args) = pairs.remove(index);
                if let Value::Array(list) = &mut args {
                    list.push(Value::from(fun));
                }
                pairs.push((Value::from(module.as_str()), args));
                modules.push(module);
                continue;
            }
            modules.push(key);
            index += 1;
        }
        for (key, value) in [("__sls__", sls), ("__env__", saltenv)] {
            if !pairs.iter().any(|(k, _)| k.as_str() == Some(key)) {
                pairs.push((Value::from(key), Value::from(value)));
            }
        }
        high.ids.insert(name, Value::Map(pairs));
    }
}

/// Merges an included SLS's high data into `high` (Salt's `merge_included_states`): IDs must
/// be globally unique.
fn merge_included(high: &mut High, state: High, errors: &mut Vec<String>) {
    high.extend.extend(state.extend);
    high.exclude.extend(state.exclude);
    high.misquoted.extend(state.misquoted);
    for (id, body) in state.ids {
        if let Some(existing) = high.ids.get(&id)
            && *existing != body
        {
            let field = |b: &Value, key| {
                map_get(b, key)
                    .map(|v| py_str(v).into_owned())
                    .unwrap_or_default()
            };
            errors.push(format!(
                "Detected conflicting IDs, SLS IDs need to be globally unique.\n    The conflicting ID is '{id}' and is found in SLS '{}:{}' and SLS '{}:{}'",
                field(existing, "__env__"),
                field(existing, "__sls__"),
                field(&body, "__env__"),
                field(&body, "__sls__"),
            ));
        }
        high.ids.insert(id, body);
    }
}
