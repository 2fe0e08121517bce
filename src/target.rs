//! Which minions a job is for: Salt's `glob` (default), `pcre`, `list` and `grain` targets.
//!
//! The master matches targets against accepted ids (and the grains minions reported) to know
//! whom to expect; every minion matches again against itself before running a job, as Salt's do.

use crate::event::Value;
use crate::py::fnmatch::fnmatch;
use crate::py::re::{Anchoring, Regex};
use crate::py::value::py_str;

/// A job's target.
#[derive(Debug, Clone)]
pub enum Target {
    /// A shell glob on the id.
    Glob(String),
    /// A Python regular expression matched at the start of the id (`re.match`).
    Pcre(Regex),
    /// Exact ids.
    List(Vec<String>),
    /// `key:glob` on the grains; nested keys are separated by `:`.
    Grain(String),
}

/// A target that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The `tgt_type` is not one halite has.
    #[error("unknown target type {0}: use glob, pcre, list or grain")]
    UnknownType(String),
    /// A `pcre` target that is not a valid regular expression.
    #[error("invalid regular expression {pattern}: {reason}")]
    BadRegex {
        /// The expression.
        pattern: String,
        /// The parser's complaint.
        reason: String,
    },
    /// A `grain` target without `key:value`.
    #[error("grain target {0} must be key:value")]
    BadGrain(String),
}

impl Target {
    /// Parses `tgt` for `tgt_type` (Salt's names; `-E`/`-L`/`-G` map to pcre/list/grain).
    pub fn new(tgt: &Value, tgt_type: &str) -> Result<Self, TargetError> {
        let text = || py_str(tgt).into_owned();
        match tgt_type {
            "glob" => Ok(Target::Glob(text())),
            "pcre" => {
                let pattern = text();
                Regex::new(&pattern, Anchoring::Match, &pattern)
                    .map(Target::Pcre)
                    .map_err(|err| TargetError::BadRegex {
                        pattern,
                        reason: err.to_string(),
                    })
            }
            "list" => Ok(Target::List(match tgt {
                Value::Array(items) => items.iter().map(|i| py_str(i).into_owned()).collect(),
                other => py_str(other)
                    .split(',')
                    .map(str::trim)
                    .filter(|id| !id.is_empty())
                    .map(str::to_owned)
                    .collect(),
            })),
            "grain" => {
                let expr = text();
                if expr.contains(':') {
                    Ok(Target::Grain(expr))
                } else {
                    Err(TargetError::BadGrain(expr))
                }
            }
            other => Err(TargetError::UnknownType(other.to_owned())),
        }
    }

    /// Whether matching needs the minions' grains.
    pub fn needs_grains(&self) -> bool {
        matches!(self, Target::Grain(_))
    }

    /// Whether the minion `id` with `grains` is targeted. Without grains (`None`, a minion the
    /// master never heard from) a grain target matches, so the minion decides, as Salt's
    /// greedy matching does.
    pub fn matches(&self, id: &str, grains: Option<&Value>) -> bool {
        match self {
            Target::Glob(glob) => fnmatch(id, glob),
            Target::Pcre(regex) => regex.is_match(id),
            Target::List(ids) => ids.iter().any(|listed| listed == id),
            Target::Grain(expr) => grains.is_none_or(|grains| grain_match(grains, expr)),
        }
    }
}

/// Salt's grain match: every split of `expr` at a `:` into a key path and a glob is tried; a
/// list value matches when one element does, a map when one of its keys does. Case-insensitive.
fn grain_match(grains: &Value, expr: &str) -> bool {
    let parts: Vec<&str> = expr.split(':').collect();
    (1..parts.len()).any(|split| {
        let pattern = parts[split..].join(":").to_lowercase();
        let mut value = Some(grains);
        for key in &parts[..split] {
            value = value.and_then(|v| crate::event::map_get(v, key));
        }
        value.is_some_and(|value| value_matches(value, &pattern))
    })
}

fn value_matches(value: &Value, pattern: &str) -> bool {
    match value {
        Value::Array(items) => items.iter().any(|item| value_matches(item, pattern)),
        Value::Map(entries) => entries
            .iter()
            .any(|(key, _)| fnmatch(&py_str(key).to_lowercase(), pattern)),
        other => fnmatch(&py_str(other).to_lowercase(), pattern),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grains() -> Value {
        crate::salt_yaml::load(
            "{os: Debian, roles: [web, db], num_cpus: 2, ip: {eth0: [10.0.0.1]}}",
        )
        .unwrap()
    }

    #[test]
    fn targets_match_as_salts_do() {
        let id = "web1.example.com";
        let t = |tgt: &str, kind: &str| Target::new(&Value::from(tgt), kind).unwrap();
        assert!(t("web*", "glob").matches(id, None));
        assert!(!t("db*", "glob").matches(id, None));
        assert!(t("web\\d", "pcre").matches(id, None));
        assert!(!t("\\d", "pcre").matches(id, None));
        assert!(t("db1,web1.example.com", "list").matches(id, None));
        assert!(!t("web1", "list").matches(id, None));
        let g = grains();
        assert!(t("os:debian", "grain").matches(id, Some(&g)));
        assert!(t("roles:we*", "grain").matches(id, Some(&g)));
        assert!(t("num_cpus:2", "grain").matches(id, Some(&g)));
        assert!(t("ip:eth0:10.0.*", "grain").matches(id, Some(&g)));
        assert!(!t("os:RedHat", "grain").matches(id, Some(&g)));
        assert!(t("os:RedHat", "grain").matches(id, None));
        assert!(Target::new(&Value::from("os"), "grain").is_err());
        assert!(Target::new(&Value::from("x"), "compound").is_err());
        let listed = Value::Array(vec![Value::from("web1.example.com")]);
        assert!(Target::new(&listed, "list").unwrap().matches(id, None));
    }
}
