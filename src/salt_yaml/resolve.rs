//! Which type an untagged plain scalar has: PyYAML's YAML 1.1 implicit resolvers.
//!
//! Salt's loader keeps these resolvers unchanged (it only changes how some tags are constructed),
//! so `yes`/`Off` are booleans, `0x1f` and `1:30` integers and `1e3` a string, unlike YAML 1.2.

use std::sync::LazyLock;

use regex::Regex;

/// The prefix that `!!` stands for.
pub(super) const CORE: &str = "tag:yaml.org,2002:";

/// Tags the resolvers give, by their suffix after [`CORE`].
pub(super) const STR: &str = "tag:yaml.org,2002:str";
pub(super) const SEQ: &str = "tag:yaml.org,2002:seq";
pub(super) const MAP: &str = "tag:yaml.org,2002:map";
pub(super) const MERGE: &str = "tag:yaml.org,2002:merge";
pub(super) const VALUE: &str = "tag:yaml.org,2002:value";

/// PyYAML's resolvers in registration order (the order it tries them in), with its exact
/// patterns; only ASCII digits count, as in Python's `[0-9]`.
static RESOLVERS: LazyLock<Vec<(&'static str, Regex)>> = LazyLock::new(|| {
    [
        (
            "tag:yaml.org,2002:bool",
            r"^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$",
        ),
        (
            "tag:yaml.org,2002:float",
            r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        ),
        (
            "tag:yaml.org,2002:int",
            r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$",
        ),
        (MERGE, r"^<<$"),
        ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$"),
        (
            "tag:yaml.org,2002:timestamp",
            r"^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$",
        ),
        (VALUE, r"^=$"),
    ]
    .into_iter()
    .map(|(tag, pattern)| (tag, Regex::new(pattern).expect("resolver patterns are valid")))
    .collect()
});

/// The tag of a plain (or `!`-tagged) scalar with this text.
pub(super) fn resolve_scalar(value: &str) -> &'static str {
    RESOLVERS
        .iter()
        .find(|(_, re)| re.is_match(value))
        .map_or(STR, |(tag, _)| tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_1_1_types() {
        let tag = |s| resolve_scalar(s).trim_start_matches(CORE);
        for (text, want) in [
            ("Off", "bool"),
            ("y", "str"),
            ("0o17", "str"),
            ("017", "int"),
            ("08", "str"),
            ("1_000", "int"),
            ("1:30", "int"),
            ("1e3", "str"),
            ("1.0e+3", "float"),
            ("-.5", "str"),
            (".5", "float"),
            ("-.inf", "float"),
            ("-.nan", "str"),
            ("", "null"),
            ("nULL", "str"),
            ("2026-01-01", "timestamp"),
            ("2026-1-1 1:00:00", "timestamp"),
            ("<<", "merge"),
            ("=", "value"),
        ] {
            assert_eq!(tag(text), want, "{text:?}");
        }
    }
}
