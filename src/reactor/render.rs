//! Rendering a reactor SLS file as Salt does: Jinja (with `tag` and `data`), then YAML with
//! Salt's rules. Errors say where: file, line, column and the text there.

use std::path::Path;

use minijinja::{Environment, UndefinedBehavior};

use crate::config::Config;
use crate::event::Value;

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
/// `items`, …), and Salt's `json` filter is there.
#[derive(Debug)]
pub struct Renderer {
    env: Environment<'static>,
    /// The daemon's configuration as templates see it (`opts`), converted once.
    opts: minijinja::Value,
}

impl Renderer {
    /// A renderer for the daemon configured by `config`.
    pub fn new(config: &Config) -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_filter("json", minijinja::filters::tojson);
        env.set_fuel(Some(super::RENDER_FUEL));
        Self {
            env,
            opts: to_jinja(&config.as_value()),
        }
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
        let high = crate::salt_yaml::load(&text).map_err(|err| RenderError {
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
        })?;
        match high {
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
        Value::Ext(..) => J::from(crate::output::pyvalue::py_str(value).into_owned()),
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

    #[test]
    fn syntax_errors_point_at_the_tag() {
        let err = render("a:\n  b: {% if %}\n", "{}").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
        assert!(err.message.contains("syntax"), "{err}");
    }
}
