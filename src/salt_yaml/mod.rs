//! YAML as Salt reads it, for command-line arguments and config files.
//!
//! Salt loads YAML with PyYAML's YAML 1.1 rules plus its own `SaltYamlSafeLoader` changes, and
//! reads CLI arguments with `yamlify_arg`/`parse_input`; event data and config values must come
//! out the same here, or events sent by halite would differ from Salt's. The pieces:
//!
//! * `compose`: saphyr-parser events → node tree with tags resolved, plus the composer rules
//!   of libyaml that YAML 1.2 parsers do not have;
//! * `resolve`: YAML 1.1 implicit typing of plain scalars (`yes`, `0x1f`, `1:30`, `.inf`);
//! * `construct`: nodes → Python-like values with Salt's constructors (no octal from leading
//!   zeros, timestamps stay text, duplicate keys are errors), then → [`Value`];
//! * `int`: Python's unbounded integers, enough for YAML literals;
//! * `args`: `yamlify_arg` and the `key=value` split.
//!
//! How Python values map to [`Value`]: a mapping is a [`Value::Map`] in document order (keys
//! may be of any type), a sequence an array, text a string, `!!binary` data binary, `!!set` an
//! array of its members and `!!omap`/`!!pairs` an array of `[key, value]` arrays. Integers
//! outside -2⁶³..2⁶⁴-1 become their decimal text, as Salt's msgpack serializer sends them.
//!
//! Where this differs from Salt, on purpose or for want of a libyaml-exact scanner:
//!
//! * nesting deeper than 128 levels (aliases followed) and documents that expand through
//!   aliases to more than 4 million nodes are errors; an alias inside the node it names (a
//!   self-containing value Salt would build but cannot serialize) is an error;
//! * some tabs that libyaml refuses in block indentation (`- \ta`, a tab-indented line) are
//!   accepted, and a `|`/`>` header in column 0 as a key's value is refused; CLI arguments
//!   are unaffected, since `yamlify_arg` never loads text with tabs or line breaks;
//! * `!!set` members are in document order, not Python's hash order.

mod args;
mod compose;
mod construct;
mod int;
mod resolve;
#[cfg(test)]
mod tests;

pub use args::{CliArgs, parse_cli_args, parse_cli_args_no_parse, string_kwarg};

use crate::event::Value;

/// Why a text is not YAML that Salt's loader accepts, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {problem}")]
pub struct YamlError {
    /// Line of the offending spot, from 1.
    pub line: usize,
    /// Column of the offending spot in characters, from 1.
    pub column: usize,
    /// What is wrong there.
    pub problem: String,
}

/// Loads one YAML document with Salt's loader semantics.
///
/// Plain scalars are typed by YAML 1.1 (`yes`/`Off` booleans, `~` null, `0x1f` and `1:30`
/// integers, `1.0e+3` and `.inf` floats, but `1e3` and `0o17` strings); quoted and block
/// scalars are strings. As in Salt, `010` is 10 (not octal 8), `2026-01-01` stays a string,
/// a key repeated in a mapping is an error (`1`, `1.0` and `true` being the same key), `<<`
/// merges mappings, and a tag other than the standard `!!` ones is an error. An empty
/// document is [`Value::Nil`]; more than one document is an error.
pub fn load(text: &str) -> Result<Value, YamlError> {
    load_python(text).map(construct::Py::into_value)
}

/// [`load`], refusing a document past `max_bytes` once built (its text and 64 bytes a node,
/// aliases followed): for text from the network, where a few aliases in a small request
/// could otherwise build tens of megabytes.
pub fn load_within(text: &str, max_bytes: u64) -> Result<Value, YamlError> {
    compose_and_construct(text, max_bytes.min(compose::MAX_EXPANDED_BYTES))
        .map(construct::Py::into_value)
}

/// Loads a document to the value Python would hold, which `yamlify_arg` must inspect.
fn load_python(text: &str) -> Result<construct::Py, YamlError> {
    compose_and_construct(text, compose::MAX_EXPANDED_BYTES)
}

fn compose_and_construct(text: &str, max_expanded: u64) -> Result<construct::Py, YamlError> {
    match compose::compose(text, max_expanded)? {
        Some(root) => construct::construct(&root),
        None => Ok(construct::Py::None),
    }
}
