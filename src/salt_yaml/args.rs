//! Salt's reading of command-line arguments (`salt/utils/args.py`): `key=value` splitting and
//! `yamlify_arg`, which keeps an argument as text unless YAML gives it a type Salt wants.

use std::sync::LazyLock;

use regex::Regex;

use crate::event::Value;

use super::construct::Py;
use super::load_python;

/// The arguments of one salt-call/salt-run invocation after the function name, split as
/// Salt's `parse_input` splits them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CliArgs {
    /// Positional arguments, each yamlified, in order.
    pub args: Vec<Value>,
    /// `key=value` arguments in order of first appearance; a repeated key keeps its first
    /// place and takes the last value, as a Python dict does.
    pub kwargs: Vec<(String, Value)>,
}

impl CliArgs {
    /// Sets keyword argument `key`: a key already given keeps its place and takes this value,
    /// as a Python dict's update does, so a later value always wins.
    pub fn set_kwarg(&mut self, key: String, value: Value) {
        match self.kwargs.iter_mut().find(|(known, _)| *known == key) {
            Some((_, slot)) => *slot = value,
            None => self.kwargs.push((key, value)),
        }
    }
}

/// Parses one CLI argument the way Salt's `yamlify_arg` does.
///
/// The text is loaded as YAML with Salt's loader (see [`load`](super::load)) and the result kept
/// only when Salt keeps it; otherwise the argument stays the string it was:
///
/// * blank text, `---`, `...`, digits with underscores (`1_000`), and anything holding a tab,
///   carriage return or newline are never loaded;
/// * `None` is null;
/// * with a `#` in it, the value is kept only if it is not a string or null (so `#x` and
///   `"#x"` stay as typed, quotes included, while `1 #c` is 1 and `a: 1 #c` a map);
/// * otherwise null, booleans, numbers and strings are kept (but `|` and `!` stay themselves),
///   a map only if the text starts with `{` (`not: a dict` stays a string), a list only if it
///   starts with `[`, and nothing else (`!!binary`, `!!set`), nor anything that fails to load
///   (`{foo: [unclosed`).
pub fn yamlify_arg(arg: &str) -> Value {
    let original = || Value::from(arg);
    let stripped = arg.trim_matches(is_python_space);
    if matches!(stripped, "" | "---" | "...")
        || (arg.contains('_') && stripped.chars().all(|c| c.is_ascii_digit() || c == '_'))
        || arg.contains(['\t', '\r', '\n'])
    {
        return original();
    }
    if arg.contains('#') {
        // `#` starts a comment, which would silently drop the rest of the text.
        return match load_python(arg) {
            Ok(Py::Str(_) | Py::None) | Err(_) => original(),
            Ok(value) => value.into_value(),
        };
    }
    if arg == "None" {
        return Value::Nil;
    }
    match load_python(arg) {
        Ok(value @ Py::Dict(_)) if arg.starts_with('{') => value.into_value(),
        Ok(value @ Py::List(_)) if arg.starts_with('[') => value.into_value(),
        Ok(Py::Str(s)) if s.is_empty() && matches!(arg, "|" | "!") => original(),
        Ok(value @ (Py::None | Py::Bool(_) | Py::Int(_) | Py::Float(_) | Py::Str(_))) => {
            value.into_value()
        }
        _ => original(),
    }
}

/// Splits and parses salt-call/salt-run arguments (those after the function name) as Salt's
/// `parse_input` does for those commands.
///
/// An argument is a keyword argument when it reads `key=value` with a key that starts with a
/// letter or `_` and goes on with letters, digits, `_`, `.` or `-` (Unicode letters and digits
/// count), a single `=`, and a value without a newline (a newline at the very end is allowed
/// and dropped). Every value and positional argument goes through [`yamlify_arg`]. A positional
/// integer whose decimal text is 20 characters long, like a job id, is turned back into that
/// text, as Salt's `condition_input` does.
pub fn parse_cli_args<S: AsRef<str>>(raw: &[S]) -> CliArgs {
    parse_cli_args_no_parse(raw, &[] as &[&str])
}

/// [`parse_cli_args`] with Salt's `--no-parse` list: the values of the keyword arguments named
/// in `no_parse` are kept as the text given.
pub fn parse_cli_args_no_parse<S: AsRef<str>, N: AsRef<str>>(raw: &[S], no_parse: &[N]) -> CliArgs {
    let mut parsed = CliArgs::default();
    for arg in raw {
        let arg = arg.as_ref();
        match split_kwarg(arg) {
            Some((key, text)) => {
                let value = if no_parse.iter().any(|n| n.as_ref() == key) {
                    Value::from(text)
                } else {
                    yamlify_arg(text)
                };
                parsed.set_kwarg(key.to_owned(), value);
            }
            None => parsed.args.push(condition(yamlify_arg(arg))),
        }
    }
    parsed
}

/// `condition_input`: integers that print as 20 characters look like job ids to Salt and are
/// sent as strings.
fn condition(arg: Value) -> Value {
    match &arg {
        Value::Integer(i) if i.to_string().len() == 20 => Value::from(i.to_string()),
        _ => arg,
    }
}

/// A string argument read as Salt's minion reads one in a job (`parse_input`): `key=value` is
/// that keyword with its value yamlified; anything else is no keyword.
pub fn string_kwarg(arg: &str) -> Option<(String, Value)> {
    split_kwarg(arg).map(|(key, text)| (key.to_owned(), yamlify_arg(text)))
}

/// Key of Salt's `KWARG_REGEX` (`^([^\d\W][\w.-]*)=`): Python's `\w` is a letter, a number of
/// any kind or `_`, and `\d` a decimal digit.
static KWARG_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[\p{L}\p{Nl}\p{No}_][\p{L}\p{N}_.\-]*$").expect("the key pattern is valid")
});

/// Whether `key` is a keyword by [`KWARG_KEY`]. An ASCII key, nearly every one, is checked by
/// hand: compiling the Unicode classes took a quarter of a short command's run.
fn is_kwarg_key(key: &str) -> bool {
    if !key.is_ascii() {
        return KWARG_KEY.is_match(key);
    }
    let mut bytes = key.bytes();
    bytes
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The rest of Salt's `KWARG_REGEX` (`=(?!=)(.*)$`): the key ends at the first `=`, which must
/// not be doubled; `.` stops at a newline and Python's `$` also matches before a final one.
fn split_kwarg(arg: &str) -> Option<(&str, &str)> {
    let (key, value) = arg.split_once('=')?;
    if value.starts_with('=') || !is_kwarg_key(key) {
        return None;
    }
    let value = value.strip_suffix('\n').unwrap_or(value);
    (!value.contains('\n')).then_some((key, value))
}

/// Python's `str.isspace`, which `str.strip` uses: Unicode white space plus the four
/// information separators U+001C to U+001F.
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ascii_keyword_check_agrees_with_salts_pattern() {
        let ascii: Vec<char> = (0u8..0x80).map(char::from).collect();
        let mut keys = vec![String::new()];
        for &a in &ascii {
            keys.push(a.to_string());
            for &b in &ascii {
                keys.push([a, b].iter().collect());
            }
        }
        keys.extend(["count", "_x.y-z", "9x", "a b", "x/y", "ünï", "x²", "ⅷ"].map(String::from));
        for key in keys {
            assert_eq!(is_kwarg_key(&key), KWARG_KEY.is_match(&key), "{key:?}");
        }
    }
}
