//! Salt's outputters (`--out=…`) for a command's return value, as `salt-call` and `salt-run`
//! print it.
//!
//! `salt-call` prints `{"local": <return>}`; `salt-run` prints the return itself. Either way
//! Salt renders the data with the outputter, strips trailing whitespace, and prints the result
//! with a newline, or prints nothing at all when nothing is left. [`Outputter::render`] returns
//! exactly those bytes. Colour only affects `nested` and `highstate`, the outputters here Salt
//! colours.
//!
//! | `--out` | `{"local": True}` |
//! |---|---|
//! | `nested` (default) | `local:\n    True\n` |
//! | `json` | `{\n    "local": true\n}\n` |
//! | `yaml` | `local: true\n` |
//! | `txt` | `local: True\n` |
//! | `raw` | `{'local': True}\n` |
//! | `quiet` | (nothing) |
//! | `highstate` | `local:\n    True\n` |
//!
//! `--out-indent` ([`Indent`]) changes how `json` and `yaml` indent; the others ignore it, as
//! Salt's do (its `nested` has an indent option of its own, `nested_indent`).
//!
//! A return may name the outputter its function wants (`out`, e.g. `highstate` for state
//! runs); [`Outputter::for_return`] makes Salt's choice between that and `--out`.

mod color;
mod highstate;
mod nested;
mod txt;
mod yaml;

pub use highstate::{HighstateOptions, StateOutputMode};

use std::fmt;
use std::str::FromStr;

use crate::event::Value;
use crate::py::json::{self as pyjson, Format, Undecodable};
use crate::py::value::{self as pyvalue, Py};

/// One of Salt's outputters, by its `--out` name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Outputter {
    /// `nested`: Salt's default, an indented tree (`salt/output/nested.py`).
    #[default]
    Nested,
    /// `json`: `json.dumps(data, default=repr, indent=4)`, keys in wire order; bytes that are
    /// not UTF-8 and Salt constants as the string of their Python `repr`. (Where Python's
    /// `json` refuses a key, e.g. a list, Salt prints `{}`; halite writes the key as a string,
    /// as [`pyjson`] does.)
    Json,
    /// `yaml`: a block-style YAML document.
    Yaml,
    /// `txt`: `key: value` lines for a map; the text itself for a string.
    Txt,
    /// `raw`: Python's `str()` of the data (`{'local': True}`).
    Raw,
    /// `quiet`: nothing.
    Quiet,
    /// `highstate`: state runs, state by state, then a summary; other data as `nested`.
    Highstate(HighstateOptions),
}

const ALL: [Outputter; 7] = [
    Outputter::Nested,
    Outputter::Json,
    Outputter::Yaml,
    Outputter::Txt,
    Outputter::Raw,
    Outputter::Quiet,
    Outputter::Highstate(HighstateOptions::DEFAULT),
];

/// Salt's `output_indent` (`--out-indent`, or the option in the config), which the `json` and
/// `yaml` outputters honour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Indent {
    /// Not given: json indents 4, yaml 2.
    #[default]
    Default,
    /// This many spaces per level. json with 0 breaks lines without indenting; yaml takes 2 to
    /// 9 and indents 2 for any other number, as libyaml does.
    Spaces(usize),
    /// A negative number: json on one line, yaml in flow style (`{local: {a: 1}}`).
    Flat,
    /// `pretty` (the config option only): json indented 4 with keys sorted; yaml as by default.
    Pretty,
}

/// The widest indent taken: wider ones only cost memory (Python fails on them with a
/// `MemoryError` once they do not fit).
pub const MAX_INDENT: i64 = 64;

/// An indent wider than [`MAX_INDENT`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an indent of {0} spaces is too wide: give at most 64, or a negative number for one line")]
pub struct TooWide(pub i64);

impl Indent {
    /// The indent a number asks for: negative ones turn indentation off, as in Salt.
    pub fn from_number(n: i64) -> Result<Self, TooWide> {
        if n > MAX_INDENT {
            return Err(TooWide(n));
        }
        Ok(usize::try_from(n).map_or(Indent::Flat, Indent::Spaces))
    }
}

/// A `--out` value that names no outputter halite has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown outputter {name:?}: expected one of nested, json, yaml, txt (or text), raw, quiet, \
     highstate"
)]
pub struct UnknownOutputter {
    /// The name that was given.
    pub name: String,
}

impl FromStr for Outputter {
    type Err = UnknownOutputter;

    /// Parses a `--out` value; `text` is accepted for `txt`, as Salt does. (Salt falls back to
    /// `nested` with a logged error for unknown names; halite refuses them.)
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "text" {
            return Ok(Outputter::Txt);
        }
        ALL.into_iter()
            .find(|out| out.name() == s)
            .ok_or_else(|| UnknownOutputter { name: s.to_owned() })
    }
}

impl fmt::Display for Outputter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Outputter {
    /// Every outputter's `--out` name (`text`, the other name of `txt`, left out).
    pub fn names() -> impl Iterator<Item = &'static str> {
        ALL.iter().map(Outputter::name)
    }

    /// The `--out` name.
    pub fn name(&self) -> &'static str {
        match self {
            Outputter::Nested => "nested",
            Outputter::Json => "json",
            Outputter::Yaml => "yaml",
            Outputter::Txt => "txt",
            Outputter::Raw => "raw",
            Outputter::Quiet => "quiet",
            Outputter::Highstate(_) => "highstate",
        }
    }

    /// This outputter with `options` for `highstate` (the others have none).
    pub fn with_highstate_options(self, options: HighstateOptions) -> Self {
        match self {
            Outputter::Highstate(_) => Outputter::Highstate(options),
            other => other,
        }
    }

    /// The outputter for a return, as Salt chooses it: `--out` when given, else the one the
    /// return names (`out`, e.g. `highstate` for state runs; names halite lacks fall back to
    /// `nested`, as unknown ones do in Salt), else `nested`. `--out=highstate` is the
    /// exception: Salt then uses the return's choice too, so a return that names none prints
    /// `nested`. `highstate` gets `options`.
    pub fn for_return(
        cli: Option<Outputter>,
        named: Option<&str>,
        options: HighstateOptions,
    ) -> Self {
        let chosen = match (cli, named) {
            (Some(out), _) if out.name() != "highstate" => out,
            (_, Some(name)) if !name.is_empty() => name.parse().unwrap_or_default(),
            _ => Outputter::Nested,
        };
        chosen.with_highstate_options(options)
    }

    /// What Salt prints for `value` with this outputter: the rendering with trailing
    /// whitespace stripped plus `\n`, or `""` when that leaves nothing. `color` (for a
    /// terminal) colours `nested` output as Salt does; the other outputters never colour.
    pub fn render(&self, value: &Value, color: bool) -> String {
        self.render_with(value, color, 0, Indent::Default)
    }

    /// [`Outputter::render`] for a command that ended with `retcode`: Salt draws `nested` map
    /// and list structure in red when it is not 0 (`salt-call` passes the function's retcode).
    pub fn render_with_retcode(&self, value: &Value, color: bool, retcode: i64) -> String {
        self.render_with(value, color, retcode, Indent::Default)
    }

    /// [`Outputter::render_with_retcode`] with `indent` for `json` and `yaml`.
    pub fn render_with(&self, value: &Value, color: bool, retcode: i64, indent: Indent) -> String {
        let text = match self {
            Outputter::Nested => nested::render(value, color, retcode, 0),
            Outputter::Highstate(options) => highstate::render(value, color, retcode, options),
            Outputter::Json => {
                let mut out = Vec::new();
                let format = Format {
                    indent: match indent {
                        Indent::Default | Indent::Pretty => Some(4),
                        Indent::Spaces(n) => Some(n),
                        Indent::Flat => None,
                    },
                    sort_keys: indent == Indent::Pretty,
                };
                pyjson::write_with(&mut out, value, format, Undecodable::Repr, false);
                pyjson::into_string(out)
            }
            Outputter::Yaml => yaml::render(
                value,
                match indent {
                    Indent::Default | Indent::Pretty => yaml::Layout::Block(2),
                    Indent::Spaces(n) => yaml::Layout::Block(n),
                    Indent::Flat => yaml::Layout::Flow,
                },
            ),
            Outputter::Txt => txt::render(value),
            Outputter::Raw => match pyvalue::view(value) {
                Py::Str(s) => s.into_owned(),
                _ => pyvalue::repr(value),
            },
            Outputter::Quiet => String::new(),
        };
        let kept = text.trim_end_matches(pyvalue::is_py_space);
        if kept.is_empty() {
            String::new()
        } else {
            format!("{kept}\n")
        }
    }
}

#[cfg(test)]
mod tests;
