//! A reaction: one declaration of a rendered reactor SLS (`<id>: {local.cmd.run: [...]}`),
//! checked, with its arguments sorted out as Salt's reactor does — and as it should: a bare
//! value in a new-style `args` list is a positional argument.

use crate::event::Value;
use crate::py::value::py_str;
use crate::salt_yaml::CliArgs;

/// Which client runs a reaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `local.<fun>` (alias `cmd.<fun>`): a job published to minions.
    Local,
    /// `runner.<fun>`: a runner on the master.
    Runner,
    /// `wheel.<fun>`: a wheel function on the master.
    Wheel,
    /// `caller.<fun>`: an execution function on the minion whose reactor this is.
    Caller,
}

impl Kind {
    /// The name in SLS files and messages.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Local => "local",
            Kind::Runner => "runner",
            Kind::Wheel => "wheel",
            Kind::Caller => "caller",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "local" | "cmd" => Kind::Local,
            "runner" => Kind::Runner,
            "wheel" => Kind::Wheel,
            "caller" => Kind::Caller,
            _ => return None,
        })
    }
}

/// One action to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Reaction {
    /// The declaration's id.
    pub id: String,
    /// The SLS file it came from.
    pub sls: String,
    /// Which client runs it.
    pub kind: Kind,
    /// The function, as `cmd.run`.
    pub fun: String,
    /// The declaration's parameters (`tgt`, `arg`, `args`, …), in order.
    pub params: Vec<(String, Value)>,
}

/// Keys that configure a reaction rather than pass an argument to a runner or wheel function
/// (Salt's `REACTOR_INTERNAL_KEYWORDS`, and the keys of a state declaration).
const RESERVED: &[&str] = &[
    "name", "order", "fun", "key", "state", "__id__", "__sls__", "__env__", "__user__",
];

impl Reaction {
    /// The reaction in the high data of `sls` under `id`, or why it is not one.
    pub fn compile(id: &str, body: &Value, sls: &str) -> Result<Self, String> {
        let (action, list) = match body {
            Value::String(_) => (py_str(body).into_owned(), Value::Array(Vec::new())),
            Value::Map(entries) => {
                let mut actions = entries
                    .iter()
                    .filter(|(key, _)| key.as_str().is_some_and(|k| !RESERVED.contains(&k)));
                let (Some((action, list)), None) = (actions.next(), actions.next()) else {
                    return Err(format!(
                        "reaction '{id}' must declare exactly one action such as local.cmd.run"
                    ));
                };
                (py_str(action).into_owned(), list.clone())
            }
            other => {
                return Err(format!(
                    "reaction '{id}' must be a map such as {{local.cmd.run: [{{tgt: ...}}]}}, not {other}"
                ));
            }
        };
        let items = match list {
            Value::Nil => Vec::new(),
            Value::Array(items) => items,
            other => {
                return Err(format!(
                    "reaction '{id}': the arguments of {action} must be a list of single-key maps, not {other}"
                ));
            }
        };
        let mut fun = None;
        let mut params = Vec::new();
        for item in items {
            match item {
                Value::Map(mut entries) if entries.len() == 1 => {
                    let (key, value) = entries.remove(0);
                    params.push((py_str(&key).into_owned(), value));
                }
                // As in a state declaration, a bare string names the function.
                Value::String(_) if fun.is_none() => fun = Some(py_str(&item).into_owned()),
                other => {
                    return Err(format!(
                        "reaction '{id}': {other} is not a single-key map such as {{tgt: web1}}"
                    ));
                }
            }
        }
        let (kind_name, fun) = match action.split_once('.') {
            Some((kind, rest)) => (kind.to_owned(), rest.to_owned()),
            None => match fun {
                Some(fun) => (action.clone(), fun),
                None => (action.clone(), String::new()),
            },
        };
        let kind = Kind::parse(&kind_name).ok_or_else(|| {
            format!(
                "reaction '{id}': '{action}' is not an action; use local.<function>, runner.<function>, wheel.<function> or caller.<function>"
            )
        })?;
        if fun.is_empty() || !fun.contains('.') {
            return Err(format!(
                "reaction '{id}': '{action}' names no function such as {}.test.ping",
                kind.name()
            ));
        }
        Ok(Self {
            id: id.to_owned(),
            sls: sls.to_owned(),
            kind,
            fun,
            params,
        })
    }

    /// The value of parameter `name`.
    pub fn param(&self, name: &str) -> Option<&Value> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// The call's arguments, and a warning when some were ignored.
    ///
    /// New style, `args`: a list whose single-key maps are keyword arguments and whose other
    /// items are positional arguments (Salt turns those into keywords with a null value and
    /// the call fails), or a map of keyword arguments; `arg` and `kwarg` are then ignored.
    /// Legacy: `arg` (a list, or one value) and `kwarg` (a map); for runners and wheel functions
    /// without them, the other parameters are keyword arguments, and those of `positional`
    /// (the function's required parameters) go first as positionals, as Salt's `format_call`
    /// passes them.
    pub fn arguments(&self, positional: &[&str]) -> (CliArgs, Option<String>) {
        let mut args = CliArgs::default();
        if let Some(new_style) = self.param("args") {
            match new_style {
                Value::Map(entries) => push_kwargs(&mut args, entries),
                Value::Array(items) => {
                    for item in items {
                        match item {
                            Value::Map(entries) if entries.len() == 1 => {
                                push_kwargs(&mut args, entries)
                            }
                            other => args.args.push(other.clone()),
                        }
                    }
                }
                other => args.args.push(other.clone()),
            }
            let ignored: Vec<&str> = ["arg", "kwarg"]
                .into_iter()
                .filter(|name| self.param(name).is_some())
                .collect();
            let warning = (!ignored.is_empty()).then(|| {
                format!(
                    "reaction '{}' ignores {} because it has args",
                    self.id,
                    ignored.join(" and ")
                )
            });
            return (args, warning);
        }
        match self.param("arg") {
            Some(Value::Array(items)) => args.args.extend(items.iter().cloned()),
            Some(Value::Nil) | None => {}
            Some(one) => args.args.push(one.clone()),
        }
        if let Some(Value::Map(entries)) = self.param("kwarg") {
            push_kwargs(&mut args, entries);
        }
        let legacy_keywords = matches!(self.kind, Kind::Runner | Kind::Wheel)
            && self.param("arg").is_none()
            && self.param("kwarg").is_none();
        if legacy_keywords {
            for name in positional {
                if let Some(value) = self.param(name) {
                    args.args.push(value.clone());
                } else {
                    break;
                }
            }
            let taken = args.args.len();
            for (key, value) in &self.params {
                if !positional[..taken.min(positional.len())].contains(&key.as_str())
                    && !RESERVED.contains(&key.as_str())
                {
                    args.set_kwarg(key.clone(), value.clone());
                }
            }
        }
        (args, None)
    }

    /// The target of a `local` reaction and its type (`tgt_type`, or the legacy `expr_form`;
    /// `glob` by default).
    pub fn target(&self) -> Result<(Value, String), String> {
        let tgt = self.param("tgt").cloned().ok_or_else(|| {
            format!(
                "reaction '{}': local.{} needs a target: add - tgt: <minion glob>",
                self.id, self.fun
            )
        })?;
        let tgt_type = self
            .param("tgt_type")
            .or_else(|| self.param("expr_form"))
            .map(|v| py_str(v).into_owned())
            .unwrap_or_else(|| "glob".to_owned());
        Ok((tgt, tgt_type))
    }

    /// A description for logs and events: the SLS-style `local.cmd.run`.
    pub fn action(&self) -> String {
        format!("{}.{}", self.kind.name(), self.fun)
    }

    /// The reaction as the dry run shows it.
    pub fn to_value(&self) -> Value {
        Value::Map(vec![
            (Value::from("id"), Value::from(self.id.as_str())),
            (Value::from("sls"), Value::from(self.sls.as_str())),
            (Value::from("action"), Value::from(self.action())),
            (
                Value::from("params"),
                Value::Map(crate::event::map_entries(&self.params)),
            ),
        ])
    }
}

/// Sorts an event's reactions as Salt orders state chunks: by `order` (an integer, `first` or
/// `last`; a negative counts from the end), the others after the highest integer, ties by
/// type, id and function.
pub fn order(reactions: &mut [Reaction]) {
    let number = |value: &Value| match value {
        Value::Boolean(b) => Some(f64::from(u8::from(*b))),
        other => other.as_f64().or_else(|| other.as_i64().map(|i| i as f64)),
    };
    let cap = reactions
        .iter()
        .filter_map(|r| r.param("order"))
        .filter(|order| matches!(order, Value::Integer(_)))
        .filter_map(number)
        .filter(|order| *order > 0.0)
        .map(|order| order + 100.0)
        .fold(1.0, f64::max);
    let rank = |reaction: &Reaction| match reaction.param("order") {
        Some(value) if value.as_str() == Some("first") => 0.0,
        Some(value) if value.as_str() == Some("last") => cap + 1_000_000.0,
        Some(value) => match number(value) {
            Some(order) if order < 0.0 => cap + 1_000_000.0 + order,
            Some(order) => order,
            None => cap,
        },
        None => cap,
    };
    // Ties go by type, name (the `name` parameter, else the id) and function, as in Salt.
    let tie = |r: &Reaction| {
        let name = r
            .param("name")
            .map(|n| py_str(n).into_owned())
            .unwrap_or_else(|| r.id.clone());
        format!("{}{name}{}", r.kind.name(), r.fun)
    };
    reactions.sort_by(|a, b| {
        rank(a)
            .total_cmp(&rank(b))
            .then_with(|| tie(a).cmp(&tie(b)))
    });
}

fn push_kwargs(args: &mut CliArgs, entries: &[(Value, Value)]) {
    for (key, value) in entries {
        args.set_kwarg(py_str(key).into_owned(), value.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reaction(yaml: &str) -> Reaction {
        let high = crate::salt_yaml::load(yaml).unwrap();
        let (id, body) = &high.as_map().unwrap()[0];
        Reaction::compile(id.as_str().unwrap(), body, "/r.sls").unwrap()
    }

    #[test]
    fn new_style_args_keep_positionals_positional() {
        let r = reaction(
            "x:\n  local.test.arg:\n    - tgt: m1\n    - args:\n      - 1\n      - foo: bar\n",
        );
        let (args, warning) = r.arguments(&[]);
        assert_eq!(args.args, [Value::from(1)]);
        assert_eq!(args.kwargs, [("foo".to_owned(), Value::from("bar"))]);
        assert_eq!(warning, None);
    }

    #[test]
    fn legacy_arg_kwarg_and_expr_form() {
        let r = reaction(
            "x:\n  cmd.cmd.run:\n    - tgt: 'os:Debian'\n    - expr_form: grain\n    - arg: echo hi\n    - kwarg: {python_shell: true}\n",
        );
        assert_eq!(r.kind, Kind::Local);
        assert_eq!(
            r.target().unwrap(),
            (Value::from("os:Debian"), "grain".to_owned())
        );
        let (args, _) = r.arguments(&[]);
        assert_eq!(args.args, [Value::from("echo hi")]);
        assert_eq!(
            args.kwargs,
            [("python_shell".to_owned(), Value::Boolean(true))]
        );
    }

    #[test]
    fn args_win_over_arg_with_a_warning() {
        let r =
            reaction("x:\n  local.test.arg:\n    - tgt: m\n    - arg: [a]\n    - args: [{k: v}]\n");
        let (args, warning) = r.arguments(&[]);
        assert!(args.args.is_empty());
        assert!(warning.unwrap().contains("ignores arg"));
    }

    #[test]
    fn legacy_runner_keywords_put_required_parameters_first() {
        let r = reaction("x:\n  runner.event.send:\n    - tag: a/b\n    - data: {k: 1}\n");
        let (args, _) = r.arguments(&["tag"]);
        assert_eq!(args.args, [Value::from("a/b")]);
        assert_eq!(args.kwargs.len(), 1);
        assert_eq!(args.kwargs[0].0, "data");
    }

    /// The ids of a rendered SLS's reactions in the order they run.
    fn ordered(yaml: &str) -> Vec<String> {
        let high = crate::salt_yaml::load(yaml).unwrap();
        let mut reactions: Vec<Reaction> = high
            .as_map()
            .unwrap()
            .iter()
            .map(|(id, body)| Reaction::compile(id.as_str().unwrap(), body, "/r.sls").unwrap())
            .collect();
        order(&mut reactions);
        reactions.into_iter().map(|r| r.id).collect()
    }

    #[test]
    fn reserved_keys_are_not_arguments_and_order_sorts_as_salt() {
        let r = reaction("x:\n  wheel.key.list_all:\n    - order: 2\n");
        assert!(r.arguments(&[]).0.kwargs.is_empty());
        let ids = ordered(
            "b: {runner.test.arg: []}\na: {runner.test.arg: []}\nz: {local.test.ping: [{tgt: m}]}\nlast: {runner.test.arg: [{order: last}]}\nfirst: {wheel.key.list_all: [{order: 1}]}\n",
        );
        assert_eq!(ids, ["first", "z", "a", "b", "last"]);
        let ids = ordered(
            "a: {runner.test.arg: [{order: 2.5}]}\nb: {runner.test.arg: [{order: 2}]}\nc: {runner.test.arg: [{name: '0'}]}\nd: {runner.test.arg: []}\n",
        );
        assert_eq!(
            ids,
            ["b", "a", "c", "d"],
            "floats sort as numbers, names break ties"
        );
    }

    #[test]
    fn short_forms_and_mistakes() {
        let high = crate::salt_yaml::load("x: runner.cache.clear_grains").unwrap();
        let (_, body) = &high.as_map().unwrap()[0];
        let r = Reaction::compile("x", body, "/r.sls").unwrap();
        assert_eq!(
            (r.kind, r.fun.as_str()),
            (Kind::Runner, "cache.clear_grains")
        );
        for bad in [
            "x: [1, 2]",
            "x: {state.apply: []}",
            "x: {local: [{tgt: m}]}",
            "x: {local.test.ping: [{tgt: m}, 3]}",
            "x: {local.test.ping: [], runner.test.arg: []}",
        ] {
            let high = crate::salt_yaml::load(bad).unwrap();
            let (_, body) = &high.as_map().unwrap()[0];
            assert!(Reaction::compile("x", body, "/r.sls").is_err(), "{bad}");
        }
    }
}
