//! Rendering an SLS file as Salt does: Jinja (with `tag` and `data` for reactions, or any
//! variables for states and templates), then YAML with Salt's rules; shared by the reactor,
//! states and pillar. Errors say where: file, line, column and the text there.
//!
//! Two environments, one rule each. Reactions paste event data, which whoever fired the event
//! chose, so their `{{ … }}` may not change the YAML around it (see [`Renderer`]). SLS files of
//! states and pillar, and `file.managed` templates, are the administrator's own files and paste
//! the minion's own grains, its pillar and what execution functions return, as Salt does:
//! `{{ grains['id'] }}` and `{{ pillar['motd'] }}` are everywhere in real states, and the
//! minion that renders them is the one they describe, so no one gains by changing their
//! structure. Those are rendered with [`Renderer::render_sls`] and [`Renderer::render_text`],
//! which paste text as it is.

use std::path::Path;
use std::sync::Arc;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};

use crate::config::Config;
use crate::event::Value;

/// Instructions a template may run before its rendering is stopped (a few tenths of a second;
/// SLS files need thousands).
const RENDER_FUEL: u64 = 10_000_000;

/// Why a file did not render.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}, line {line}, column {column}: {message} (at `{expression}`)")]
pub struct RenderError {
    /// The SLS file.
    pub file: String,
    /// Line of the offending spot, from 1 (0 when the file could not be read).
    pub line: usize,
    /// Column, in characters, from 1.
    pub column: usize,
    /// The template or YAML text at that spot.
    pub expression: String,
    /// What is wrong.
    pub message: String,
}

/// A Jinja environment set up as Salt's for SLS files: undefined values are errors
/// (`StrictUndefined`), Python's string, list and dict methods work (`startswith`, `get`,
/// `items`, …), and Salt's `json`, `yaml_encode`, `yaml_dquote` and `yaml_squote` filters are
/// there.
///
/// Unlike Salt's, it pastes no value that could change the YAML around it: event data comes from
/// whoever fired the event, and a minion id holding a line break and a `local.cmd.run` block
/// would otherwise add a reaction. A `{{ … }}` whose text (or any text inside a list or map) holds
/// a control character, a quote, a backslash, a bracket, a comma, `: `, ` #` or a final `:`, or
/// starts with `- `, `? `, `: ` or one of ``!&*|>%@#` ``, is a render error; the template quotes
/// it with a filter (`|yaml_dquote`, `|yaml_encode`, `|json`) or, knowing it is safe, pastes it
/// with `|safe`.
///
/// [`Renderer::render_sls`] and [`Renderer::render_text`] paste as Salt does, Python's `str()`
/// of the value, unchecked: they render the administrator's own files (states, pillar,
/// templates) with the minion's own data, where Salt's templates paste `{{ grains['id'] }}` or a
/// list everywhere. The minion's grains can reshape only the minion's own states and pillar (and
/// a minion's id is authenticated), data it could forge anyway; what other minions get never
/// passes through them.
#[derive(Debug)]
pub struct Renderer {
    env: Environment<'static>,
    /// The environment for the administrator's own files: pastes text as it is.
    trusted: Environment<'static>,
    /// The daemon's configuration as templates see it (`opts`), converted once.
    opts: minijinja::Value,
}

/// Execution functions as a template calls them: `salt['mod.fun'](…)` or `salt.mod.fun(…)`.
/// Synchronous, as Jinja is: the caller renders off the async runtime.
pub trait TemplateCalls: Send + Sync {
    /// Runs `fun` with positional `args` and keyword `kwargs`; the error is its message.
    fn call(
        &self,
        fun: &str,
        args: Vec<Value>,
        kwargs: Vec<(String, Value)>,
    ) -> Result<Value, String>;
}

/// The variables of a state or template rendering, besides `opts`, which the renderer has.
#[derive(Clone, Default)]
pub struct Vars {
    /// Named values (`grains`, `pillar`, `sls`, `saltenv`, `tpldir`, …).
    pub values: Vec<(String, Value)>,
    /// What `salt` calls, when templates may call execution functions.
    pub salt: Option<Arc<dyn TemplateCalls>>,
}

impl std::fmt::Debug for Vars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vars")
            .field("values", &self.values)
            .field("salt", &self.salt.is_some())
            .finish()
    }
}

impl Renderer {
    /// A renderer for the daemon configured by `config` that refuses to paste text that
    /// would change the YAML around it (for event data).
    pub fn new(config: &Config) -> Self {
        let setup = |env: &mut Environment<'static>| {
            env.set_undefined_behavior(UndefinedBehavior::Strict);
            env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
            env.add_filter("json", json);
            env.add_filter("tojson", json);
            env.add_filter("yaml_encode", json);
            env.add_filter("yaml_dquote", yaml_dquote);
            env.add_filter("yaml_squote", yaml_squote);
            env.add_filter("safe", |text: String| Pasteable::value(text));
            env.set_fuel(Some(RENDER_FUEL));
        };
        let mut env = Environment::new();
        setup(&mut env);
        env.set_formatter(yaml_safe_formatter);
        let mut trusted = Environment::new();
        setup(&mut trusted);
        // Salt's Jinja escapes nothing, whatever the file is called (`index.html` included).
        trusted.set_auto_escape_callback(|_| AutoEscape::None);
        trusted.set_formatter(python_str_formatter);
        Self {
            env,
            trusted,
            opts: to_jinja(&config.as_value()),
        }
    }

    /// Renders the text of one of the administrator's files (`file.managed`'s templates) with
    /// `vars`, pasting values as they are.
    pub fn render_text(
        &self,
        name: &str,
        source: &str,
        vars: &Vars,
    ) -> Result<String, RenderError> {
        let mut context: indexmap::IndexMap<minijinja::Value, minijinja::Value> = vars
            .values
            .iter()
            .map(|(key, value)| (minijinja::Value::from(key.as_str()), to_jinja(value)))
            .collect();
        context
            .entry(minijinja::Value::from("opts"))
            .or_insert_with(|| self.opts.clone());
        if let Some(salt) = &vars.salt {
            context.insert(
                minijinja::Value::from("salt"),
                minijinja::Value::from_object(SaltObject {
                    calls: salt.clone(),
                    prefix: String::new(),
                }),
            );
        }
        self.trusted
            .render_named_str(name, source, minijinja::Value::from_object(context))
            .map_err(|err| jinja_error(name, source, &err))
    }

    /// Reads a state or pillar SLS file that asks for YAML alone (`#!yaml`): no Jinja.
    pub fn render_yaml(&self, name: &str, source: &str) -> Result<Value, RenderError> {
        load_yaml(name, source)
    }

    /// Renders a state or pillar SLS file: Jinja with `vars`, then YAML. The result is
    /// whatever the YAML holds (null for an empty file); the caller judges its shape.
    pub fn render_sls(&self, name: &str, source: &str, vars: &Vars) -> Result<Value, RenderError> {
        let text = self.render_text(name, source, vars)?;
        load_yaml(name, &text)
    }

    /// Renders `file` for an event, returning its high data: a map of reaction ids to their
    /// declarations (empty when the file renders to nothing, as when an `if` is false).
    pub fn render(&self, file: &Path, tag: &str, data: &Value) -> Result<Value, RenderError> {
        let name = file.to_string_lossy().into_owned();
        let source = std::fs::read_to_string(file).map_err(|err| RenderError {
            file: name.clone(),
            line: 0,
            column: 0,
            expression: String::new(),
            message: format!("cannot read it: {err}"),
        })?;
        self.render_source(&name, &source, tag, data)
    }

    /// Renders `source` as the file `name`.
    pub fn render_source(
        &self,
        name: &str,
        source: &str,
        tag: &str,
        data: &Value,
    ) -> Result<Value, RenderError> {
        let context = minijinja::context! {
            tag => tag,
            data => to_jinja(data),
            opts => self.opts.clone(),
            sls => name,
        };
        let text = self
            .env
            .render_named_str(name, source, context)
            .map_err(|err| jinja_error(name, source, &err))?;
        match load_yaml(name, &text)? {
            Value::Nil => Ok(Value::Map(Vec::new())),
            map @ Value::Map(_) => Ok(map),
            other => Err(RenderError {
                file: name.to_owned(),
                line: 1,
                column: 1,
                expression: shorten(&other.to_string()),
                message: "a reactor SLS must render to a map of reaction ids".to_owned(),
            }),
        }
    }
}

/// `text`, the output of Jinja, read as YAML with Salt's rules.
fn load_yaml(name: &str, text: &str) -> Result<Value, RenderError> {
    crate::salt_yaml::load(text).map_err(|err| RenderError {
        file: name.to_owned(),
        line: err.line,
        column: err.column,
        expression: text
            .lines()
            .nth(err.line.saturating_sub(1))
            .unwrap_or_default()
            .trim()
            .to_owned(),
        message: format!("invalid YAML after Jinja: {}", err.problem),
    })
}

/// Salt's `salt` in templates: `salt['mod.fun'](…)`, or `salt.mod.fun(…)` one attribute at a
/// time (`prefix` holds the module so far).
#[derive(Clone)]
struct SaltObject {
    calls: Arc<dyn TemplateCalls>,
    prefix: String,
}

impl std::fmt::Debug for SaltObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<salt {}>", self.prefix)
    }
}

impl minijinja::value::Object for SaltObject {
    fn get_value(self: &Arc<Self>, key: &minijinja::Value) -> Option<minijinja::Value> {
        let key = key.as_str()?;
        let prefix = if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.prefix)
        };
        Some(minijinja::Value::from_object(SaltObject {
            calls: self.calls.clone(),
            prefix,
        }))
    }

    fn call(
        self: &Arc<Self>,
        _state: &mut minijinja::State<'_, '_>,
        args: &[minijinja::Value],
    ) -> Result<minijinja::Value, minijinja::Error> {
        let (positional, kwargs): (&[minijinja::Value], Option<minijinja::value::Kwargs>) =
            minijinja::value::from_args(args)?;
        let mut keywords = Vec::new();
        if let Some(kwargs) = kwargs {
            for key in kwargs.args() {
                let value: minijinja::Value = kwargs.get(key)?;
                keywords.push((key.to_owned(), from_jinja(&value)));
            }
        }
        let positional = positional.iter().map(from_jinja).collect();
        self.calls
            .call(&self.prefix, positional, keywords)
            .map(|ret| to_jinja(&ret))
            .map_err(|message| {
                minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, message)
            })
    }
}

/// A Jinja value as msgpack-shaped data: the arguments of `salt[…]` calls, and what Python's
/// `str()` is taken of when pasted.
fn from_jinja(value: &minijinja::Value) -> Value {
    use minijinja::value::ValueKind;
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => Value::Nil,
        ValueKind::Bool => Value::Boolean(value.is_true()),
        ValueKind::Number => match value.as_i64() {
            Some(i) if value.to_string().parse::<i64>().is_ok() => Value::from(i),
            _ => f64::try_from(value.clone()).map_or(Value::Nil, Value::F64),
        },
        ValueKind::String => Value::from(value.as_str().unwrap_or_default()),
        ValueKind::Bytes => Value::Binary(value.as_bytes().unwrap_or_default().to_vec()),
        ValueKind::Seq | ValueKind::Iterable => Value::Array(
            value
                .try_iter()
                .map(|items| items.map(|item| from_jinja(&item)).collect())
                .unwrap_or_default(),
        ),
        ValueKind::Map => Value::Map(
            value
                .try_iter()
                .map(|keys| {
                    keys.map(|key| {
                        let item = value.get_item(&key).unwrap_or_default();
                        (from_jinja(&key), from_jinja(&item))
                    })
                    .collect()
                })
                .unwrap_or_default(),
        ),
        _ => Value::from(value.to_string()),
    }
}

/// Writes what a `{{ … }}` produces, refusing text that could change the YAML structure (see
/// [`Renderer`]).
fn yaml_safe_formatter(
    out: &mut minijinja::Output,
    state: &mut minijinja::State,
    value: &minijinja::Value,
) -> Result<(), minijinja::Error> {
    // Only what the quoting filters and `|safe` made is pasted unchecked: minijinja's own notion
    // of safe text (HTML escaping, `|e`) says nothing about YAML.
    if let Some(pasteable) = value.downcast_object_ref::<Pasteable>() {
        return out.write_str(&pasteable.0).map_err(|err| {
            minijinja::Error::new(minijinja::ErrorKind::WriteFailure, err.to_string())
        });
    }
    if let Some((text, why)) = structural_text(value) {
        return Err(minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!(
                "the value \"{}\" holds {why}, which would change the YAML around it; quote it with |yaml_dquote (or |json for lists and maps), or paste it with |safe if it is trusted",
                crate::event::tag::printable(&crate::output::clip(&text, 120))
            ),
        ));
    }
    minijinja::escape_formatter(out, state, value)
}

/// Writes what a `{{ … }}` produces as Salt's Jinja does: Python's `str()` of the value
/// (`True`, `None`, `['a', 'b']`, `{'k': 1}`), which YAML reads back as the same value.
fn python_str_formatter(
    out: &mut minijinja::Output,
    _state: &mut minijinja::State,
    value: &minijinja::Value,
) -> Result<(), minijinja::Error> {
    let text = match value.downcast_object_ref::<Pasteable>() {
        Some(pasteable) => pasteable.0.clone(),
        None => crate::py::value::py_str(&from_jinja(value)).into_owned(),
    };
    out.write_str(&text)
        .map_err(|err| minijinja::Error::new(minijinja::ErrorKind::WriteFailure, err.to_string()))
}

/// Text made to be pasted into YAML as it is: a quoted scalar, JSON, or what `|safe` vouches for.
/// Any other operation on it (`|lower`, `~`) gives plain text again, which is checked.
#[derive(Debug)]
struct Pasteable(String);

impl Pasteable {
    fn value(text: String) -> minijinja::Value {
        minijinja::Value::from_object(Pasteable(text))
    }
}

impl minijinja::value::Object for Pasteable {
    fn repr(self: &std::sync::Arc<Self>) -> minijinja::value::ObjectRepr {
        minijinja::value::ObjectRepr::Plain
    }

    fn render(self: &std::sync::Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Salt's `json` (and `yaml_encode`): the value as JSON, which YAML reads as one flow node.
fn json(
    value: &minijinja::Value,
    indent: Option<minijinja::Value>,
    args: minijinja::value::Kwargs,
) -> Result<minijinja::Value, minijinja::Error> {
    minijinja::filters::tojson(value, indent, args).map(|text| Pasteable::value(text.to_string()))
}

/// The first text in `value` (itself, or inside a list or map) that could change the YAML it is
/// pasted into, and why.
fn structural_text(value: &minijinja::Value) -> Option<(String, &'static str)> {
    use minijinja::value::ValueKind;
    match value.kind() {
        ValueKind::String => {
            let text = value.as_str().unwrap_or_default();
            yaml_hazard(text).map(|why| (text.to_owned(), why))
        }
        ValueKind::Bytes => {
            let text = String::from_utf8_lossy(value.as_bytes().unwrap_or_default()).into_owned();
            yaml_hazard(&text).map(|why| (text, why))
        }
        ValueKind::Seq | ValueKind::Iterable => value
            .try_iter()
            .ok()?
            .find_map(|item| structural_text(&item)),
        ValueKind::Map => value.try_iter().ok()?.find_map(|key| {
            structural_text(&key).or_else(|| structural_text(&value.get_item(&key).ok()?))
        }),
        _ => None,
    }
}

/// Why `text`, pasted into YAML plain, quoted or flow text, could end the scalar it stands in
/// or start a structure, if it could.
fn yaml_hazard(text: &str) -> Option<&'static str> {
    if text.chars().any(char::is_control) {
        return Some("a line break or another control character");
    }
    if text.contains(|c| "'\"\\{}[],".contains(c)) {
        return Some("a quote, a backslash, a bracket or a comma");
    }
    if text.contains(": ") || text.contains(" #") || text.ends_with(':') {
        return Some("': ', ' #' or a final ':'");
    }
    let start = text.trim_start();
    let spaced = |indicator: char| {
        start
            .strip_prefix(indicator)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
    };
    if spaced('-') || spaced('?') || spaced(':') || start.starts_with(|c| "!&*|>%@#`".contains(c)) {
        return Some("a YAML indicator at its start");
    }
    None
}

/// Salt's `yaml_dquote`: the value's text as one double-quoted YAML scalar (JSON's string
/// escapes are YAML's).
fn yaml_dquote(value: &minijinja::Value) -> Result<minijinja::Value, minijinja::Error> {
    let text = value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned);
    serde_json::to_string(&text)
        .map(Pasteable::value)
        .map_err(|err| {
            minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, err.to_string())
        })
}

/// Salt's `yaml_squote`: the value's text as one single-quoted YAML scalar, or double-quoted
/// when it holds control characters, which a single-quoted scalar on one line cannot.
fn yaml_squote(value: &minijinja::Value) -> Result<minijinja::Value, minijinja::Error> {
    let text = value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned);
    if text.chars().any(char::is_control) {
        return yaml_dquote(value);
    }
    Ok(Pasteable::value(format!("'{}'", text.replace('\'', "''"))))
}

fn jinja_error(name: &str, source: &str, err: &minijinja::Error) -> RenderError {
    let message = match err.detail() {
        Some(detail) => format!("{}: {detail}", err.kind()),
        None => err.kind().to_string(),
    };
    let line_text = |line: usize| {
        let text = source
            .lines()
            .nth(line.saturating_sub(1))
            .unwrap_or_default();
        shorten(text.trim())
    };
    let located = err
        .range()
        .and_then(|range| Some((source.get(..range.start)?, range)));
    let (line, column, expression) = match located {
        Some((before, range)) => {
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
            // Some errors (in the lexer, at the end of the input) span nothing usable: show
            // their line instead.
            let expression = source
                .get(range.start..range.end.min(source.len()))
                .map(shorten)
                .filter(|text| !text.trim().is_empty())
                .unwrap_or_else(|| line_text(line));
            (line, column, expression)
        }
        None => {
            let line = err.line().unwrap_or(1).max(1);
            (line, 1, line_text(line))
        }
    };
    RenderError {
        file: name.to_owned(),
        line,
        column,
        expression,
        message,
    }
}

/// The first line of `text`, at most 120 characters, for one-line messages.
fn shorten(text: &str) -> String {
    let first = text.lines().next().unwrap_or_default();
    if first.chars().count() > 120 {
        format!("{}…", first.chars().take(120).collect::<String>())
    } else {
        first.to_owned()
    }
}

/// Event data as Jinja sees it, as Salt's templates see the Python objects: maps keep their
/// order, bytes stay bytes.
fn to_jinja(value: &Value) -> minijinja::Value {
    use minijinja::Value as J;
    match value {
        Value::Nil => J::from(()),
        Value::Boolean(b) => J::from(*b),
        Value::Integer(i) => match (i.as_i64(), i.as_u64()) {
            (Some(i), _) => J::from(i),
            (None, Some(u)) => J::from(u),
            _ => J::from(()),
        },
        Value::F32(f) => J::from(f64::from(*f)),
        Value::F64(f) => J::from(*f),
        Value::String(s) => J::from(
            s.as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| String::from_utf8_lossy(s.as_bytes()).into_owned()),
        ),
        Value::Binary(b) => J::from_bytes(b.clone()),
        Value::Array(items) => J::from(items.iter().map(to_jinja).collect::<Vec<_>>()),
        Value::Map(entries) => J::from_object(
            entries
                .iter()
                .map(|(k, v)| (to_jinja(k), to_jinja(v)))
                .collect::<indexmap::IndexMap<J, J>>(),
        ),
        Value::Ext(..) => J::from(crate::py::value::py_str(value).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::load(
            crate::config::Role::Master,
            Some(Path::new("/nonexistent/halite")),
        )
        .unwrap()
    }

    fn render(source: &str, data: &str) -> Result<Value, RenderError> {
        let data = crate::salt_yaml::load(data).unwrap();
        Renderer::new(&config()).render_source("/srv/reactor/x.sls", source, "salt/auth", &data)
    }

    #[test]
    fn the_seed_key_accept_file_renders_with_data_and_python_methods() {
        let source = "{% if 'act' in data and data['act'] == 'pend' and data['id'].startswith('Min') %}\nkey_accept:\n  wheel.key.accept:\n    - match: {{ data['id'] }}\n{% endif %}\n";
        let high = render(source, "{act: pend, id: Minion7}").unwrap();
        assert_eq!(
            high.to_string(),
            r#"{"key_accept": {"wheel.key.accept": [{"match": "Minion7"}]}}"#
        );
        assert_eq!(
            render(source, "{act: accept, id: Minion7}").unwrap(),
            Value::Map(vec![])
        );
    }

    /// The README's accept.sls with the id a forged `salt/auth` carried in the security sweep:
    /// pasted as Salt pastes it, it adds a `local.cmd.run` on every minion.
    #[test]
    fn event_data_cannot_change_the_yaml_it_is_pasted_into() {
        let source = "accept:\n  wheel.key.accept:\n    - match: {{ data['id'] }}\n";
        let forged = [
            r#"{id: "web1\nrun:\n  local.cmd.run:\n    - tgt: '*'\n    - arg: [id]"}"#,
            r#"{id: "x, tgt: '*'"}"#,
            r#"{id: "'*'"}"#,
            r#"{id: "a: b"}"#,
            r#"{id: "*anchor"}"#,
            r#"{id: "|"}"#,
            r#"{id: "- x"}"#,
            r#"{id: "x #comment"}"#,
            r#"{id: "x\u001b[2J"}"#,
        ];
        for data in forged {
            let err = render(source, data).unwrap_err();
            assert!(
                err.message.contains("would change the YAML"),
                "{data}: {err}"
            );
            assert_eq!(err.line, 3, "{err}");
        }
        // minijinja's own safe text (HTML escaping) is no YAML quoting.
        for filters in ["|e", "|escape", "|escape|lower", "|e ~ 'x'"] {
            let escaped =
                format!("r:\n  runner.test.arg:\n    - v: {{{{ data['x']{filters} }}}}\n");
            let err = render(
                &escaped,
                r#"{x: "a\nr2:\n  runner.test.arg:\n    - pwned: 1"}"#,
            )
            .unwrap_err();
            assert!(
                err.message.contains("would change the YAML"),
                "{filters}: {err}"
            );
        }
        // |safe pastes what the template vouches for.
        let trusted = render(
            "r:\n  runner.test.arg:\n    - v: {{ data['x']|safe }}\n",
            "{x: '{a: b}'}",
        )
        .unwrap();
        assert_eq!(
            trusted.to_string(),
            r#"{"r": {"runner.test.arg": [{"v": {"a": "b"}}]}}"#
        );
        // Inside lists and maps too, in any quoting context.
        let quoted = "r:\n  runner.test.arg:\n    - a: '{{ data['data'] }}'\n";
        let err = render(quoted, r#"{data: {k: "it's"}}"#).unwrap_err();
        assert!(err.message.contains("would change the YAML"), "{err}");
        // Ordinary ids, URLs, times, e-mail addresses, paths and numbers paste as they are.
        for id in [
            "web1",
            "db-01.example.com",
            "http://h:8080/x?a=b%20c",
            "x:y",
            "a@b.c",
            "/srv/x y",
            "-x",
            "Hello!",
        ] {
            let high = render(
                source,
                &format!("{{id: {}}}", serde_json::to_string(id).unwrap()),
            )
            .unwrap();
            assert_eq!(
                high.to_string(),
                format!(
                    r#"{{"accept": {{"wheel.key.accept": [{{"match": {}}}]}}}}"#,
                    serde_json::to_string(id).unwrap()
                ),
            );
        }
    }

    #[test]
    fn quoting_filters_paste_any_value_as_one_scalar() {
        let data = r#"{id: "web1\nrun:\n  local.cmd.run: [x]", n: 5, m: {a: "it's, \"q\""}}"#;
        let source = "a:\n  runner.test.arg:\n    - d: {{ data['id']|yaml_dquote }}\n    - s: {{ data['id']|yaml_squote }}\n    - e: {{ data['m']|yaml_encode }}\n    - j: {{ data['m']|json }}\n    - n: {{ data['n'] }}\n";
        let high = render(source, data).unwrap();
        assert_eq!(
            high.to_string(),
            r#"{"a": {"runner.test.arg": [{"d": "web1\nrun:\n  local.cmd.run: [x]"}, {"s": "web1\nrun:\n  local.cmd.run: [x]"}, {"e": {"a": "it's, \"q\""}}, {"j": {"a": "it's, \"q\""}}, {"n": 5}]}}"#
        );
    }

    #[test]
    fn minion_events_reach_user_data_through_data_data() {
        let source = "r:\n  local.test.echo:\n    - tgt: {{ data.id }}\n    - arg: ['{{ data.get(\"data\", {}).get(\"foo\", \"none\") }} {{ tag }}']\n";
        let high = render(source, "{id: m1, data: {foo: bar}}").unwrap();
        assert!(
            high.to_string().contains(r#""arg": ["bar salt/auth"]"#),
            "{high}"
        );
    }

    #[test]
    fn jinja_errors_name_line_column_and_expression() {
        let source = "ok:\n  runner.test.arg:\n    - a: {{ data['nope']['deeper'] }}\n";
        let err = render(source, "{id: m1}").unwrap_err();
        assert_eq!(err.file, "/srv/reactor/x.sls");
        assert_eq!(err.line, 3, "{err}");
        assert!(err.column > 1, "{err}");
        assert!(err.expression.contains("nope"), "{err}");
        assert!(err.message.contains("undefined"), "{err}");
    }

    #[test]
    fn yaml_errors_name_the_rendered_line() {
        let err = render("a: [unclosed\nb: 1\n", "{}").unwrap_err();
        assert!(err.message.contains("invalid YAML"), "{err}");
        assert!(err.line >= 1, "{err}");
    }

    #[test]
    fn runaway_templates_run_out_of_fuel_and_lexer_errors_show_their_line() {
        let err = render(
            "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
            "{}",
        )
        .unwrap_err();
        assert!(err.message.contains("fuel"), "{err}");
        let err = render("ok: 1\nbad: {{ é }}\n", "{}").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
        assert!(err.expression.contains("é"), "{err}");
    }

    /// States and `file.managed` templates are the administrator's: values paste as they are,
    /// whatever they hold, and nothing is HTML-escaped, whatever the file is called.
    #[test]
    fn administrators_files_paste_values_as_they_are() {
        let renderer = Renderer::new(&config());
        let vars = Vars {
            values: vec![("motd".to_owned(), Value::from("a: b\n<c> & 'd'"))],
            salt: None,
        };
        assert_eq!(
            renderer
                .render_text("index.html", "{{ motd }}", &vars)
                .unwrap(),
            "a: b\n<c> & 'd'"
        );
        let high = renderer
            .render_sls(
                "x.sls",
                "{{ motd|yaml_dquote }}: {k: v}\nlist: {{ [1, 2] }}\n",
                &vars,
            )
            .unwrap();
        assert_eq!(
            high.to_string(),
            r#"{"a: b\n<c> & 'd'": {"k": "v"}, "list": [1, 2]}"#
        );
    }

    #[test]
    fn syntax_errors_point_at_the_tag() {
        let err = render("a:\n  b: {% if %}\n", "{}").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
        assert!(err.message.contains("syntax"), "{err}");
    }
}
