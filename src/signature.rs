//! A Salt function's signature (its name, a one-line summary, its parameters), and binding
//! command-line arguments to it the way Python binds them, with Python's wording when they do
//! not fit. Every entry of the function, runner and wheel registries has one.

use crate::event::Value;
use crate::salt_yaml::CliArgs;

/// Arguments that do not fit a function, in Salt's words.
#[derive(Debug, Clone, thiserror::Error)]
#[error("Passed invalid arguments: {problem}.\nUsage: {usage}")]
pub struct ArgumentsError {
    /// What is wrong, as Python says it (`f() missing 1 required positional argument: 'x'`).
    pub problem: String,
    /// How the function is called.
    pub usage: &'static str,
}

/// A function's name, what it does in a line, and its parameters in order; the first
/// `required` have no default. A function that takes any positional arguments (Python's
/// `*args`) has no named ones and reads its call itself.
#[derive(Debug, Clone, Copy)]
pub struct Signature {
    /// The function's name, as in `event.send`.
    pub name: &'static str,
    /// What it does, in one line (help, completions).
    pub summary: &'static str,
    /// Parameter names in order.
    pub params: &'static [&'static str],
    /// How many leading parameters are required.
    pub required: usize,
    /// Whether unknown `key=value` arguments are collected (`**kwargs`) rather than refused.
    pub kwargs: bool,
    /// One line of usage for error messages.
    pub usage: &'static str,
}

/// Arguments bound to a signature.
#[derive(Debug, Clone)]
pub(crate) struct Bound {
    values: Vec<Option<Value>>,
    /// `key=value` arguments that matched no parameter, in order.
    pub extra: Vec<(String, Value)>,
    params: &'static [&'static str],
}

impl Bound {
    /// The value given for `param`, if any.
    pub fn get(&self, param: &str) -> Option<&Value> {
        let index = self.params.iter().position(|p| *p == param)?;
        self.values[index].as_ref()
    }
}

impl Signature {
    /// The short name Python reports in its messages (`send()` for `event.send`).
    fn short(&self) -> &'static str {
        self.name.rsplit('.').next().unwrap_or(self.name)
    }

    /// The function's documentation (`sys.doc`, `salt-run -d`): its summary and usage.
    pub fn doc(&self) -> String {
        format!("{}\n\nUsage: {}", self.summary, self.usage)
    }

    /// Whether the function takes any number of positional arguments (Python's `*args`):
    /// its usage repeats a positional (`ARG ...`, `[MODULE|GLOB ...]`).
    pub fn varargs(&self) -> bool {
        let words: Vec<&str> = self.usage.split_whitespace().collect();
        words.windows(2).any(|pair| {
            pair[1].starts_with("...")
                && pair[0]
                    .trim_start_matches('[')
                    .starts_with(|c: char| c.is_ascii_uppercase())
        })
    }

    /// Salt's `sys.argspec` entry: `args` (the parameter names), `defaults` (one per optional
    /// parameter; halite's signatures carry no default values, so each is `None`), `varargs`
    /// and `kwargs`, in Salt's order, each `None` when absent as in Salt.
    pub fn argspec(&self) -> Value {
        let or_none = |present: bool, value: Value| if present { value } else { Value::Nil };
        let names = self
            .params
            .iter()
            .map(|param| Value::from(*param))
            .collect();
        let defaults = vec![Value::Nil; self.params.len() - self.required];
        Value::Map(vec![
            (
                Value::from("args"),
                or_none(!self.params.is_empty(), Value::Array(names)),
            ),
            (
                Value::from("defaults"),
                or_none(!defaults.is_empty(), Value::Array(defaults)),
            ),
            (
                Value::from("varargs"),
                or_none(self.varargs(), Value::Boolean(true)),
            ),
            (
                Value::from("kwargs"),
                or_none(self.kwargs, Value::Boolean(true)),
            ),
        ])
    }

    /// The required parameters, which a legacy reaction passes positionally.
    pub fn required_params(&self) -> &'static [&'static str] {
        &self.params[..self.required]
    }

    /// Binds `args`, or explains in Python's words why they do not fit.
    pub(crate) fn bind(&self, args: &CliArgs) -> Result<Bound, ArgumentsError> {
        let fail = |problem: String| ArgumentsError {
            problem,
            usage: self.usage,
        };
        if args.args.len() > self.params.len() {
            // Python's wording, singular and plural included.
            let expected = match (self.required == self.params.len(), self.params.len()) {
                (true, 1) => "1 positional argument".to_owned(),
                (true, count) => format!("{count} positional arguments"),
                (false, count) => format!("from {} to {count} positional arguments", self.required),
            };
            let given = match args.args.len() {
                1 => "1 was".to_owned(),
                count => format!("{count} were"),
            };
            return Err(fail(format!(
                "{}() takes {expected} but {given} given",
                self.short()
            )));
        }
        let mut values: Vec<Option<Value>> = vec![None; self.params.len()];
        for (slot, value) in values.iter_mut().zip(&args.args) {
            *slot = Some(value.clone());
        }
        let mut extra = Vec::new();
        for (key, value) in &args.kwargs {
            match self.params.iter().position(|param| param == key) {
                Some(index) if values[index].is_some() => {
                    return Err(fail(format!(
                        "{}() got multiple values for argument '{key}'",
                        self.short()
                    )));
                }
                Some(index) => values[index] = Some(value.clone()),
                None if self.kwargs => extra.push((key.clone(), value.clone())),
                None => {
                    return Err(fail(format!(
                        "{}() got an unexpected keyword argument '{key}'",
                        self.short()
                    )));
                }
            }
        }
        let missing: Vec<String> = self.params[..self.required]
            .iter()
            .zip(&values)
            .filter(|(_, value)| value.is_none())
            .map(|(param, _)| format!("'{param}'"))
            .collect();
        if !missing.is_empty() {
            let plural = if missing.len() == 1 {
                "argument"
            } else {
                "arguments"
            };
            return Err(fail(format!(
                "{}() missing {} required positional {plural}: {}",
                self.short(),
                missing.len(),
                missing.join(" and ")
            )));
        }
        Ok(Bound {
            values,
            extra,
            params: self.params,
        })
    }
}

/// A value as Python's `str()` would show it in a place that wants text (a tag, a pattern).
pub(crate) fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| String::from_utf8_lossy(s.as_bytes()).into_owned()),
        Value::Nil => "None".to_owned(),
        Value::Boolean(true) => "True".to_owned(),
        Value::Boolean(false) => "False".to_owned(),
        other => other.to_string(),
    }
}

/// Whether `pattern` selects the function `fun` for its documentation, as Salt's `sys.doc`
/// and `salt-run -d` select: a pattern with `*` is a glob; otherwise the function itself or
/// every function of the module (`sys`, `sys.`); an empty one, every function.
pub fn documents(fun: &str, pattern: &str) -> bool {
    if pattern.is_empty() {
        true
    } else if pattern.contains('*') {
        crate::py::fnmatch::fnmatch(fun, pattern)
    } else {
        let module = pattern.strip_suffix('.').unwrap_or(pattern);
        fun == pattern || fun.starts_with(&format!("{module}."))
    }
}

/// Python truthiness of an argument value.
pub(crate) fn truthy(value: &Value) -> bool {
    match value {
        Value::Nil => false,
        Value::Boolean(b) => *b,
        Value::Integer(i) => i.as_i64() != Some(0),
        Value::F32(f) => *f != 0.0,
        Value::F64(f) => *f != 0.0,
        Value::String(s) => !s.as_bytes().is_empty(),
        Value::Binary(b) => !b.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Map(m) => !m.is_empty(),
        Value::Ext(..) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Python's own messages for `def f()`, `def g(a)` and `def h(a=1)` called with too many
    /// positionals: "argument" and "was" in the singular where Python has them.
    #[test]
    fn too_many_positionals_are_worded_as_python_words_them() {
        let signature = |params, required| Signature {
            name: "m.f",
            summary: "",
            params,
            required,
            kwargs: false,
            usage: "",
        };
        let problem = |signature: Signature, count: usize| {
            let args = CliArgs {
                args: vec![Value::from(1); count],
                ..CliArgs::default()
            };
            signature.bind(&args).unwrap_err().problem
        };
        assert_eq!(
            problem(signature(&[], 0), 1),
            "f() takes 0 positional arguments but 1 was given"
        );
        assert_eq!(
            problem(signature(&["a"], 1), 2),
            "f() takes 1 positional argument but 2 were given"
        );
        assert_eq!(
            problem(signature(&["a"], 0), 2),
            "f() takes from 0 to 1 positional arguments but 2 were given"
        );
    }
}
