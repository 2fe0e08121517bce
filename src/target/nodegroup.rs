//! Salt's node groups: named targets in the master's `nodegroups` option, used with `-N NAME`
//! (`tgt_type: nodegroup`) or as `N@NAME` words in a compound target.
//!
//! As Salt's clients do, a node group is written out into a compound target before the job
//! is published, so minions never need the master's groups. A group is a compound string
//! (`web* or G@os:Debian`) or a list of words; a list of bare ids becomes `L@a,b` and bare
//! words with regex characters `E@…`, as in Salt. Unlike Salt, a group written into a larger
//! compound is always parenthesized, so `N@web and not db1` keeps the group's own precedence,
//! and an unknown or self-including group is an error rather than a target matching nothing.

use super::{Target, TargetError};
use crate::config::Config;
use crate::event::Value;
use crate::proto::PublishRequest;
use crate::py::value::py_str;

const OPERATORS: [&str; 5] = ["and", "or", "not", "(", ")"];

/// The longest compound target a group may be written out into: every minion parses it.
const MAX_WRITTEN_OUT: usize = 64 * 1024;

/// The master's `nodegroups` option, and the file it is read from (for errors).
#[derive(Debug, Clone, Default)]
pub struct NodeGroups {
    groups: Option<Value>,
    file: String,
}

impl NodeGroups {
    /// The groups `config` (a master configuration) defines.
    pub fn configured(config: &Config) -> Self {
        Self {
            groups: config.get("nodegroups").cloned(),
            file: config.file().display().to_string(),
        }
    }

    /// Writes out the groups `request` targets, turning it into a compound target; other
    /// requests are left as they are.
    pub fn write_out(&self, request: &mut PublishRequest) -> Result<(), TargetError> {
        if let Some(compound) = expand(
            &request.tgt,
            &request.tgt_type,
            self.groups.as_ref(),
            &self.file,
        )? {
            request.tgt = Value::from(compound);
            request.tgt_type = "compound".to_owned();
        }
        Ok(())
    }

    /// The target `tgt` of `tgt_type` is, its groups written out as [`Self::write_out`] does.
    pub fn target(&self, tgt: &Value, tgt_type: &str) -> Result<Target, TargetError> {
        match expand(tgt, tgt_type, self.groups.as_ref(), &self.file)? {
            Some(compound) => Target::new(&Value::from(compound), "compound"),
            None => Target::new(tgt, tgt_type),
        }
    }
}

/// The compound target `tgt` stands for when `tgt_type` is `nodegroup` or a compound with
/// `N@` words; `None` when there is nothing to write out. `groups` is the `nodegroups` option
/// and `source` names where it comes from, for errors.
fn expand(
    tgt: &Value,
    tgt_type: &str,
    groups: Option<&Value>,
    source: &str,
) -> Result<Option<String>, TargetError> {
    let groups = Groups { groups, source };
    match tgt_type {
        "nodegroup" => groups.written_out(&py_str(tgt), &mut Vec::new()).map(Some),
        "compound" => {
            let text = py_str(tgt);
            if !text
                .split_whitespace()
                .any(|word| group_name(word).is_some())
            {
                return Ok(None);
            }
            let mut words = Vec::new();
            // The groups a target names, however often, add at most MAX_WRITTEN_OUT to it.
            let mut added = 0;
            for word in text.split_whitespace() {
                match group_name(word) {
                    Some(name) => {
                        let group = groups.parenthesized(name, &mut Vec::new())?;
                        added += group.len();
                        if added > MAX_WRITTEN_OUT {
                            return Err(TargetError::BadCompound {
                                target: format!("{:.80}…", text),
                                reason: format!(
                                    "its node groups written out are over {MAX_WRITTEN_OUT} bytes; name each group once"
                                ),
                            });
                        }
                        words.push(group);
                    }
                    None => words.push(word.to_owned()),
                }
            }
            Ok(Some(words.join(" ")))
        }
        _ => Ok(None),
    }
}

/// The group an `N@name` word names.
fn group_name(word: &str) -> Option<&str> {
    word.strip_prefix("N@").filter(|name| !name.is_empty())
}

struct Groups<'a> {
    groups: Option<&'a Value>,
    source: &'a str,
}

impl Groups<'_> {
    /// Group `name` as a compound expression; `within` holds the groups being written out,
    /// outermost first, to refuse a group that includes itself.
    fn written_out(&self, name: &str, within: &mut Vec<String>) -> Result<String, TargetError> {
        let unknown = || match within.last() {
            Some(outer) => TargetError::BadNodegroup {
                name: outer.clone(),
                reason: format!("it names N@{name}, which is not in nodegroups"),
                file: self.source.to_owned(),
            },
            None => TargetError::UnknownNodegroup {
                name: name.to_owned(),
                file: self.source.to_owned(),
            },
        };
        let definition = match self.groups {
            Some(Value::Map(entries)) => entries
                .iter()
                .find(|(key, _)| py_str(key) == name)
                .map(|(_, value)| value),
            _ => None,
        }
        .ok_or_else(unknown)?;
        if within.iter().any(|outer| outer == name) {
            return Err(TargetError::BadNodegroup {
                name: within[0].clone(),
                reason: format!("N@{name} includes itself"),
                file: self.source.to_owned(),
            });
        }
        let words: Vec<String> = match definition {
            Value::String(_) => py_str(definition)
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            Value::Array(items) => items.iter().map(|item| py_str(item).into_owned()).collect(),
            _ => {
                return Err(TargetError::BadNodegroup {
                    name: name.to_owned(),
                    reason: "it is neither a target string nor a list".to_owned(),
                    file: self.source.to_owned(),
                });
            }
        };
        if words.is_empty() {
            return Err(TargetError::BadNodegroup {
                name: name.to_owned(),
                reason: "it is empty".to_owned(),
                file: self.source.to_owned(),
            });
        }
        if let Some(joined) = bare_words(&words) {
            return Ok(joined);
        }
        within.push(name.to_owned());
        let mut expanded = Vec::with_capacity(words.len());
        for word in &words {
            match group_name(word) {
                Some(inner) => expanded.push(self.parenthesized(inner, within)?),
                None => expanded.push(word.clone()),
            }
        }
        within.pop();
        let written = expanded.join(" ");
        if written.len() > MAX_WRITTEN_OUT {
            return Err(TargetError::BadNodegroup {
                name: within.first().map_or(name, String::as_str).to_owned(),
                reason: format!(
                    "written out it is over {MAX_WRITTEN_OUT} bytes (groups naming the same group more than once double it each time); name each group once"
                ),
                file: self.source.to_owned(),
            });
        }
        Ok(written)
    }

    fn parenthesized(&self, name: &str, within: &mut Vec<String>) -> Result<String, TargetError> {
        Ok(format!("( {} )", self.written_out(name, within)?))
    }
}

/// Salt's reading of a group of bare words (no operator, glob or engine prefix): a list of
/// ids (`L@a,b`), or of regular expressions (`E@…`) when one holds a regex character.
fn bare_words(words: &[String]) -> Option<String> {
    let bare = words.iter().all(|word| {
        !OPERATORS.contains(&word.as_str()) && !word.contains('*') && !engine_prefixed(word)
    });
    if !bare {
        return None;
    }
    let regex = words
        .iter()
        .any(|word| word.contains(['(', '[', '{', '\\', '?', '}', ']', ')']));
    Some(format!(
        "{}@{}",
        if regex { 'E' } else { 'L' },
        words.join(",")
    ))
}

/// `X@…` with an uppercase engine letter.
fn engine_prefixed(word: &str) -> bool {
    let bytes = word.as_bytes();
    bytes.len() >= 2 && bytes[0].is_ascii_uppercase() && bytes[1] == b'@'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups() -> Value {
        crate::salt_yaml::load(
            "{web: 'minion1 or minion2', pair: [minion2, minion3], nested: 'N@web and not minion1', \
             globbed: 'web*', regexes: ['web\\d+', db1], loop: 'N@loop or x', dangling: 'N@nosuch', \
             number: 5, empty: []}",
        )
        .unwrap()
    }

    fn expanded(tgt: &str, tgt_type: &str) -> Result<Option<String>, TargetError> {
        expand(
            &Value::from(tgt),
            tgt_type,
            Some(&groups()),
            "/etc/salt/master",
        )
    }

    #[test]
    fn groups_are_written_out_as_salts_clients_do() {
        let ok = |tgt, kind| expanded(tgt, kind).unwrap().unwrap();
        assert_eq!(ok("web", "nodegroup"), "minion1 or minion2");
        assert_eq!(ok("pair", "nodegroup"), "L@minion2,minion3");
        assert_eq!(ok("globbed", "nodegroup"), "web*");
        assert_eq!(ok("regexes", "nodegroup"), "E@web\\d+,db1");
        assert_eq!(
            ok("nested", "nodegroup"),
            "( minion1 or minion2 ) and not minion1"
        );
        // Parenthesized inside a larger compound, where Salt's would not be.
        assert_eq!(
            ok("N@web and not minion1", "compound"),
            "( minion1 or minion2 ) and not minion1"
        );
        assert_eq!(expanded("web* and G@os:x", "compound").unwrap(), None);
        assert_eq!(expanded("web", "glob").unwrap(), None);
    }

    #[test]
    fn unknown_and_self_including_groups_are_refused_with_the_reason() {
        let err = |tgt, kind| expanded(tgt, kind).unwrap_err().to_string();
        assert_eq!(
            err("nosuch", "nodegroup"),
            "Node group nosuch unavailable in /etc/salt/master: define it under nodegroups"
        );
        assert!(err("dangling", "nodegroup").contains("nodegroup dangling in /etc/salt/master"));
        assert!(err("dangling", "nodegroup").contains("N@nosuch, which is not in nodegroups"));
        assert!(err("loop", "nodegroup").contains("N@loop includes itself"));
        assert!(err("number", "nodegroup").contains("neither a target string nor a list"));
        assert!(err("empty", "nodegroup").contains("it is empty"));
        assert!(err("N@nosuch or x", "compound").contains("Node group nosuch unavailable"));
        let doubling: String = (0..40)
            .map(|n| format!("g{n}: 'N@g{} or N@g{}', ", n + 1, n + 1))
            .collect();
        let doubling = crate::salt_yaml::load(&format!("{{{doubling} g40: m1}}")).unwrap();
        let err = expand(&Value::from("g0"), "nodegroup", Some(&doubling), "/m").unwrap_err();
        assert!(err.to_string().contains("nodegroup g0 in /m"), "{err}");
        assert!(err.to_string().contains("over 65536 bytes"), "{err}");
        // One group named over and over in the target itself adds no more than one group may.
        let big = crate::salt_yaml::load(&format!("{{big: [{}]}}", vec!["m"; 10_000].join(", ")))
            .unwrap();
        let repeated = format!("{}m1", "N@big or ".repeat(2));
        assert!(expand(&Value::from(repeated), "compound", Some(&big), "/m").is_ok());
        let repeated = format!("{}m1", "N@big or ".repeat(2_000));
        let err = expand(&Value::from(repeated), "compound", Some(&big), "/m").unwrap_err();
        assert!(
            err.to_string().contains("written out are over 65536"),
            "{err}"
        );
        let none = expand(&Value::from("web"), "nodegroup", None, "/etc/salt/master");
        assert!(none.unwrap_err().to_string().contains("unavailable"));
    }
}
