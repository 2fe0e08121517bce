//! `--out=nested`, Salt's default outputter (`salt/output/nested.py`).
//!
//! The rules, per value:
//!
//! * None, booleans and numbers: one line, Python's `str`/`repr` (`None`, `True`, `1.5`), light
//!   yellow;
//! * text: one green line per line of `str.splitlines()` (so `""` prints no line at all), the
//!   list prefix `- ` on the first line only and spaces of the same width on the others, ESC
//!   characters replaced by `?` so data cannot drive the terminal;
//! * lists: items one after another at the same indent with the prefix `- `; an item that is
//!   itself a list or map gets a `|_` line and is shown 2 columns deeper (maps without prefix);
//! * maps: below the top level a cyan `----------` line first, then each key (Python's `str`,
//!   cyan) and `:` on its own line, its value 4 columns deeper; keys sorted when Python can
//!   sort them, otherwise converted with `str()` and sorted as text;
//! * undecodable bytes and Salt constants match none of Salt's cases and print nothing.
//!
//! With a non-zero return code, Salt draws map and list structure in red instead of cyan/green.

use super::color::{Palette, palette};
use crate::event::Value;
use crate::py::value::{self as pyvalue, Py};

struct Nested {
    colors: &'static Palette,
    failed: bool,
    lines: Vec<String>,
}

/// The nested text for `value` (lines joined by `\n`, no final newline), starting `indent`
/// columns in (Salt's `nested_indent`, which the highstate outputter sets for changes).
pub(crate) fn render(value: &Value, color: bool, retcode: i64, indent: usize) -> String {
    let mut n = Nested {
        colors: palette(color),
        failed: retcode != 0,
        lines: Vec::new(),
    };
    n.display(value, indent, "");
    n.lines.join("\n")
}

impl Nested {
    /// Salt's `ustring`: indent, colour, prefix, text, reset, suffix.
    fn line(&mut self, indent: usize, color: &str, msg: &str, prefix: &str, suffix: &str) {
        let mut s = String::with_capacity(indent + msg.len() + 24);
        s.extend(std::iter::repeat_n(' ', indent));
        s.push_str(color);
        s.push_str(prefix);
        s.push_str(msg);
        s.push_str(self.colors.endc);
        s.push_str(suffix);
        self.lines.push(s);
    }

    fn structure_color(&self, normal: &'static str) -> &'static str {
        if self.failed { self.colors.red } else { normal }
    }

    fn display(&mut self, value: &Value, indent: usize, prefix: &str) {
        let yellow = self.colors.light_yellow;
        match pyvalue::view(value) {
            Py::None => self.line(indent, yellow, "None", prefix, ""),
            Py::Bool(b) => self.line(indent, yellow, if b { "True" } else { "False" }, prefix, ""),
            Py::Int(i) => self.line(indent, yellow, &i.to_string(), prefix, ""),
            Py::Float(f) => self.line(indent, yellow, &pyvalue::float_repr(f), prefix, ""),
            Py::Str(s) => {
                let green = self.colors.green;
                let continuation = " ".repeat(prefix.chars().count());
                for (i, line) in pyvalue::splitlines(&s).into_iter().enumerate() {
                    let line = line.replace('\u{1b}', "?");
                    let p = if i == 0 {
                        prefix
                    } else {
                        continuation.as_str()
                    };
                    self.line(indent, green, &line, p, "");
                }
            }
            Py::Bytes(_) | Py::Constant(_) => {}
            Py::List(items) => {
                let color = self.structure_color(self.colors.green);
                for item in items {
                    match item {
                        Value::Array(_) => {
                            self.line(indent, color, "|_", "", "");
                            self.display(item, indent + 2, "- ");
                        }
                        Value::Map(_) => {
                            self.line(indent, color, "|_", "", "");
                            self.display(item, indent + 2, "");
                        }
                        _ => self.display(item, indent, "- "),
                    }
                }
            }
            Py::Dict(entries) => {
                let color = self.structure_color(self.colors.cyan);
                if indent > 0 {
                    self.line(indent, color, "----------", "", "");
                }
                for (key, val) in sorted_as_strings(entries) {
                    self.line(indent, color, &key, prefix, ":");
                    self.display(val, indent + 4, "");
                }
            }
        }
    }
}

/// `sorted(ret)`, or on `TypeError` `{str(k): v}` sorted: the keys as text in display order.
fn sorted_as_strings(entries: &[(Value, Value)]) -> Vec<(String, &Value)> {
    let mut sorted: Vec<&(Value, Value)> = entries.iter().collect();
    if pyvalue::python_sort(&mut sorted) {
        return sorted
            .into_iter()
            .map(|(k, v)| (pyvalue::py_str(k).into_owned(), v))
            .collect();
    }
    let mut by_text: Vec<(String, &Value)> = entries
        .iter()
        .map(|(k, v)| (pyvalue::py_str(k).into_owned(), v))
        .collect();
    by_text.sort_by(|a, b| a.0.cmp(&b.0));
    // The dict comprehension keeps one entry per text, with the last value.
    let mut deduped: Vec<(String, &Value)> = Vec::with_capacity(by_text.len());
    for (key, val) in by_text {
        match deduped.last_mut() {
            Some(last) if last.0 == key => last.1 = val,
            _ => deduped.push((key, val)),
        }
    }
    deduped
}
