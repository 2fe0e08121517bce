//! Python's `re`, on the `regex` crate's linear-time engine: patterns are parsed by a port of
//! CPython 3.11's `re._parser` ([`parse`]), so a pattern Python rejects is rejected here with
//! Python's message, and written out in the `regex` crate's syntax ([`emit`]), spelling out
//! every construct whose meaning differs between the two engines (`$`, `\Z`, `\s`, `\w`, `.`,
//! `{,n}`, literal `{`, the `a` flag, ...). Constructs `regex` cannot express (look-around,
//! backreferences, atomic groups, possessive quantifiers, conditionals, `\N{name}`) are
//! [`ReError::UnsupportedRegex`].
//!
//! # Where the result can still differ from Python
//!
//! * Unicode tables: Python 3.11 has Unicode 14, `regex` a newer one, so characters added since
//!   may be classed differently by `\w`, `\d` and `(?i)`. Otherwise `\w`, `\d`, `\s` and case
//!   folding are Python's own definitions, written out.
//! * `\b` and `\B` cannot be redefined: they use Rust's word characters, which also count
//!   combining marks and connector punctuation but not `No` numbers such as `²`. Between ASCII
//!   characters they agree with Python.
//! * A case-insensitive set that mixes characters with `\W`, `\S` or `\D` (`(?i:[\Wk])`) does not
//!   match U+0345, whose case partner is the letter iota.
//! * `$` without the `m` flag (Python: at the end, or before a final `\n`) is exact except for a
//!   match that passes that `$` before the final newline and then consumes the newline
//!   (`a\nb$\n`), in a tag that also has an earlier newline. (A tag with two newlines cannot
//!   normally reach the bus anyway; `\n\n` ends the tag on the wire.)
//! * Python accepts counted repeats up to 4294967294 (`a{100000}`); `regex` refuses to compile
//!   patterns over its size limit ([`ReError::RegexCompile`]).
//! * Python gives up on nesting deeper than about 450 groups (`RecursionError`); we stop at 100.

mod emit;
mod parse;

use emit::emit_top;
use parse::{ParseError, parse};

/// Why a Python regular expression cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReError {
    /// Python's `re` rejects the pattern; `message` is Python's (without its position).
    #[error("invalid regular expression {pattern:?}: {message}")]
    InvalidRegex {
        /// The pattern as the user wrote it.
        pattern: String,
        /// Python's `re.error` message.
        message: String,
    },
    /// Python accepts the pattern, but it needs a feature the `regex` crate does not have.
    #[error(
        "regular expression {pattern:?} uses {feature}, which Python supports but halite does not"
    )]
    UnsupportedRegex {
        /// The pattern as the user wrote it.
        pattern: String,
        /// The construct that cannot be translated.
        feature: &'static str,
    },
    /// The translated pattern exceeds the `regex` crate's limits (compiled size, nesting).
    #[error("regular expression {pattern:?} cannot be compiled")]
    RegexCompile {
        /// The pattern as the user wrote it.
        pattern: String,
        /// What the `regex` crate reported.
        #[source]
        source: regex::Error,
    },
}

/// Which Python call the compiled regex stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchoring {
    /// `re.match`: at the start.
    Match,
    /// `re.fullmatch`: the whole haystack.
    FullMatch,
}

/// A Python regex translated for the `regex` crate, built for one of Python's calls.
///
/// Python's `$` (without the `m` flag) matches at the end and also before a final `\n`, and
/// Python's `\B` never matches in an empty string. Rust has neither assertion, so the pattern is
/// written out once per haystack shape that needs a different spelling (see [`Haystack`]); the
/// variants exist only for patterns with such assertions.
#[derive(Debug, Clone)]
pub struct Regex {
    plain: regex::Regex,
    trailing_newline: Option<regex::Regex>,
    before_final_newline: Option<regex::Regex>,
    matches_empty: bool,
}

/// Deepest group nesting accepted. Python allows about 450 levels before `RecursionError`, but
/// `regex` refuses translations nested deeper than 250 (groups and repeats both count), and its
/// compiler recurses per level: 100 keeps both well inside their limits.
pub const NEST_LIMIT: usize = 100;

impl Regex {
    /// `source` is the Python pattern as Salt composes it; `pattern` is the user's part, for errors.
    pub fn new(source: &str, anchoring: Anchoring, pattern: &str) -> Result<Self, ReError> {
        let ast = parse(source).map_err(|err| match err {
            ParseError::Python(message) => ReError::InvalidRegex {
                pattern: pattern.to_owned(),
                message,
            },
            ParseError::TooDeep => ReError::UnsupportedRegex {
                pattern: pattern.to_owned(),
                feature: "groups nested deeper than 100 levels",
            },
        })?;
        let text = |hay| {
            let mut out = String::new();
            emit_top(&ast, anchoring, hay, &mut out)
                .map(|()| out)
                .map_err(|feature| ReError::UnsupportedRegex {
                    pattern: pattern.to_owned(),
                    feature,
                })
        };
        let build = |text: &str| {
            regex::Regex::new(text).map_err(|source| ReError::RegexCompile {
                pattern: pattern.to_owned(),
                source,
            })
        };
        let plain_text = text(Haystack::Plain)?;
        let plain = build(&plain_text)?;
        let variant = |hay| -> Result<Option<regex::Regex>, ReError> {
            let variant_text = text(hay)?;
            if variant_text == plain_text {
                Ok(None)
            } else {
                build(&variant_text).map(Some)
            }
        };
        let trailing_newline = variant(Haystack::TrailingNewline)?;
        // Only a `$` can make a match end before a final newline that `plain` misses; and a full
        // match must consume that newline anyway.
        let before_final_newline = match (&trailing_newline, anchoring) {
            (None, _) | (_, Anchoring::FullMatch) => None,
            (Some(_), Anchoring::Match) => {
                Some(variant(Haystack::BeforeFinalNewline)?.unwrap_or_else(|| plain.clone()))
            }
        };
        let matches_empty = variant(Haystack::Empty)?
            .as_ref()
            .unwrap_or(&plain)
            .is_match("");
        Ok(Regex {
            plain,
            trailing_newline,
            before_final_newline,
            matches_empty,
        })
    }

    /// Whether the regex matches `haystack` as the Python call it was built for would.
    pub fn is_match(&self, haystack: &str) -> bool {
        if haystack.is_empty() {
            return self.matches_empty;
        }
        let Some(body) = haystack.strip_suffix('\n') else {
            return self.plain.is_match(haystack);
        };
        if !body.contains('\n') {
            return self
                .trailing_newline
                .as_ref()
                .unwrap_or(&self.plain)
                .is_match(haystack);
        }
        // `$` can hold at the end (`plain`) or before the final newline: matches that stop
        // there are found by searching the body alone.
        self.plain.is_match(haystack)
            || (self.before_final_newline.as_ref()).is_some_and(|re| re.is_match(body))
    }
}

/// The haystack shapes for which Python assertions need a different Rust spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Haystack {
    /// Not ending with a newline: Python's `$` is Rust's `\z`.
    Plain,
    /// Ending with its only newline: Python's `$` is Rust's `(?m:$)`.
    TrailingNewline,
    /// The haystack minus its final newline, when it has another one: `$` is its end, and
    /// Python's `\Z` (the real end, one character further) cannot match.
    BeforeFinalNewline,
    /// Empty: Python's `\B` cannot match.
    Empty,
}

/// A parsed Python regex. Flags are resolved while parsing, so each node carries the ones that
/// change its meaning.
#[derive(Debug)]
enum Node {
    /// A code point; Python allows lone surrogates, which no Rust string contains.
    Literal {
        code: u32,
        fold: Fold,
    },
    Any {
        dotall: bool,
    },
    Class {
        negated: bool,
        items: Vec<ClassItem>,
        fold: Fold,
    },
    Anchor(Anchor),
    Group(Box<Node>),
    Repeat {
        body: Box<Node>,
        min: u32,
        max: Option<u32>,
        kind: RepeatKind,
    },
    Concat(Vec<Node>),
    Alternation(Vec<Node>),
    /// Valid Python that `regex` cannot express; names the feature.
    Unsupported(&'static str),
}

/// Case-insensitivity in force (the `i` flag; ASCII-only with the `a` flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fold {
    None,
    Ascii,
    Unicode,
}

#[derive(Debug, Clone, Copy)]
enum ClassItem {
    Range(u32, u32),
    /// `d`, `D`, `s`, `S`, `w` or `W`; ASCII-only with the `a` flag.
    Category {
        kind: char,
        ascii: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Anchor {
    /// `^`
    Start { multiline: bool },
    /// `$`
    End { multiline: bool },
    /// `\A`
    StartString,
    /// `\Z`
    EndString,
    /// `\b`
    Boundary { ascii: bool },
    /// `\B`
    NonBoundary { ascii: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RepeatKind {
    Greedy,
    Lazy,
    Possessive,
}

// What `Node::Unsupported` names: valid Python the `regex` crate cannot express.
const BACKREFERENCE: &str = "backreferences";
const LOOKAROUND: &str = "look-ahead/look-behind assertions";
const CONDITIONAL: &str = "conditional groups (?(id)yes|no)";
const ATOMIC: &str = "atomic groups (?>...)";
const POSSESSIVE: &str = "possessive quantifiers (*+, ++, ?+, {m,n}+)";
const NAMED_CHAR: &str = r"named characters (\N{...})";

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected values from Python 3.11's `re.match(pattern, text)`.
    #[test]
    fn global_flags_at_the_very_start_apply_to_the_whole_pattern() {
        let matches = |pattern: &str, text: &str| {
            Regex::new(pattern, Anchoring::Match, pattern)
                .unwrap()
                .is_match(text)
        };
        assert!(matches(r"(?i)WEB1\Z|db", "web1"));
        assert!(matches(r"(?i)WEB1\Z|db", "DB2"));
        assert!(!matches(r"(?i)WEB1\Z|db", "web10"));
        assert!(matches(r"(?i)(?s)a.b", "A\nB"));
        assert!(matches(r"(?x) w e b \d  # a comment", "web7"));
        for refused in [r"a(?i)b", r"(?i:a)(?i)b", r"(?au)x", r"(?u)(?a)x"] {
            assert!(
                matches!(
                    Regex::new(refused, Anchoring::Match, refused),
                    Err(ReError::InvalidRegex { .. })
                ),
                "{refused}"
            );
        }
    }
}
