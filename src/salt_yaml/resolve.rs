//! Which type an untagged plain scalar has: PyYAML's YAML 1.1 implicit resolvers.
//!
//! Salt's loader keeps these resolvers unchanged (it only changes how some tags are constructed),
//! so `yes`/`Off` are booleans, `0x1f` and `1:30` integers and `1e3` a string, unlike YAML 1.2.

use std::sync::OnceLock;

use regex::Regex;

/// The prefix that `!!` stands for.
pub(super) const CORE: &str = "tag:yaml.org,2002:";

/// Tags the resolvers give, by their suffix after [`CORE`].
pub(super) const STR: &str = "tag:yaml.org,2002:str";
pub(super) const SEQ: &str = "tag:yaml.org,2002:seq";
pub(super) const MAP: &str = "tag:yaml.org,2002:map";
pub(super) const MERGE: &str = "tag:yaml.org,2002:merge";
pub(super) const VALUE: &str = "tag:yaml.org,2002:value";

/// One implicit resolver: the tag it gives, the first characters PyYAML files it under, and its
/// pattern, compiled the first time a scalar starting with one of them is resolved.
struct Resolver {
    tag: &'static str,
    /// PyYAML only tries a resolver on scalars starting with one of these (the empty scalar is
    /// filed under null alone). Checking them first also means that a configuration of paths
    /// and names compiles none of the large number and date patterns: compiling them all was
    /// an eighth of a short command's run.
    first: &'static str,
    pattern: &'static str,
    /// A character every match contains, if there is one: without it the pattern is not
    /// compiled. So `1` or `x-y` compiles no float pattern.
    needs: Option<char>,
    /// A quick test that, when true, means the pattern matches: so plain decimals, the usual
    /// numbers in arguments, compile no int pattern.
    surely: Option<fn(&str) -> bool>,
    regex: OnceLock<Regex>,
}

impl Resolver {
    const fn new(tag: &'static str, first: &'static str, pattern: &'static str) -> Resolver {
        Resolver::with_checks(tag, first, pattern, None, None)
    }

    const fn with_checks(
        tag: &'static str,
        first: &'static str,
        pattern: &'static str,
        needs: Option<char>,
        surely: Option<fn(&str) -> bool>,
    ) -> Resolver {
        Resolver {
            tag,
            first,
            pattern,
            needs,
            surely,
            regex: OnceLock::new(),
        }
    }

    fn matches(&self, value: &str) -> bool {
        let filed = match value.chars().next() {
            Some(first) => self.first.contains(first),
            None => self.tag == NULL,
        };
        // Python's `$` also matches before a final newline, which a `!`-tagged quoted scalar
        // can end with.
        let matched = value.strip_suffix('\n').unwrap_or(value);
        if !filed || self.needs.is_some_and(|needs| !matched.contains(needs)) {
            return false;
        }
        self.surely.is_some_and(|surely| surely(matched))
            || self
                .regex
                .get_or_init(|| Regex::new(self.pattern).expect("resolver patterns are valid"))
                .is_match(matched)
    }
}

/// A decimal without sign, underscores or leading zero: one alternative of the int pattern.
fn is_plain_decimal(value: &str) -> bool {
    value == "0"
        || value
            .strip_prefix(['1', '2', '3', '4', '5', '6', '7', '8', '9'])
            .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_digit()))
}

const NULL: &str = "tag:yaml.org,2002:null";

/// PyYAML's resolvers in registration order (the order it tries them in), with its exact
/// patterns and first characters; only ASCII digits count, as in Python's `[0-9]`.
static RESOLVERS: [Resolver; 7] = [
    Resolver::new(
        "tag:yaml.org,2002:bool",
        "yYnNtTfFoO",
        r"^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$",
    ),
    Resolver::with_checks(
        "tag:yaml.org,2002:float",
        "-+0123456789.",
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        Some('.'),
        None,
    ),
    Resolver::with_checks(
        "tag:yaml.org,2002:int",
        "-+0123456789",
        r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$",
        None,
        Some(is_plain_decimal),
    ),
    Resolver::new(MERGE, "<", r"^<<$"),
    Resolver::new(NULL, "~nN", r"^(?:~|null|Null|NULL|)$"),
    Resolver::with_checks(
        "tag:yaml.org,2002:timestamp",
        "0123456789",
        r"^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$",
        Some('-'),
        None,
    ),
    Resolver::new(VALUE, "=", r"^=$"),
];

/// The tag of a plain (or `!`-tagged) scalar with this text.
pub(super) fn resolve_scalar(value: &str) -> &'static str {
    RESOLVERS
        .iter()
        .find(|resolver| resolver.matches(value))
        .map_or(STR, |resolver| resolver.tag)
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
            ("1\n", "int"),
            ("~\n", "null"),
            ("\n", "str"),
            ("1\n\n", "str"),
            ("0", "int"),
            ("10", "int"),
            ("1-2", "str"),
        ] {
            assert_eq!(tag(text), want, "{text:?}");
        }
    }

    #[test]
    fn the_quick_checks_agree_with_the_patterns() {
        let alphabet = [
            '0', '1', '7', '9', '.', '-', '+', '_', ':', 'e', 'x', 'T', ' ', '\n',
        ];
        let mut texts = vec![String::new()];
        for _ in 0..4 {
            let longer: Vec<String> = texts
                .iter()
                .flat_map(|text| alphabet.iter().map(move |c| format!("{text}{c}")))
                .collect();
            texts.extend(longer);
        }
        texts.extend(["2026-01-01", "2026-1-1 1:00:00", "123456789", "1.5e+3"].map(String::from));
        for resolver in &RESOLVERS {
            let full = Regex::new(resolver.pattern).unwrap();
            for text in &texts {
                let filed = match text.chars().next() {
                    Some(first) => resolver.first.contains(first),
                    None => resolver.tag == NULL,
                };
                let want = filed && full.is_match(text.strip_suffix('\n').unwrap_or(text));
                assert_eq!(resolver.matches(text), want, "{} {text:?}", resolver.tag);
            }
        }
    }
}
