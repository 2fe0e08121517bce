//! Reading a module's options into typed values, each refusal an [`Invalid`] that names the key
//! by its path (`services:nginx:delay`) and says what was given.

use std::time::Duration;

use super::config::describe;
use super::{Invalid, Options};
use crate::event::Value;
use crate::py::value::py_str;

/// The entries of the map at `key`; nothing (`key:` with no value) is an empty map.
pub(super) fn map<'a>(value: &'a Value, key: &str) -> Result<&'a [(Value, Value)], Invalid> {
    match value {
        Value::Map(entries) => Ok(entries),
        Value::Nil => Ok(&[]),
        other => Err(Invalid::new(key, format!("a map, not {}", describe(other)))),
    }
}

/// Refuses a key of `entries` that is not one of `known` (a misspelt option would otherwise
/// be ignored without a word).
pub(super) fn known(entries: &[(Value, Value)], path: &str, known: &[&str]) -> Result<(), Invalid> {
    for (key, _) in entries {
        let key = py_str(key);
        if !known.contains(&key.as_ref()) {
            return Err(Invalid::new(
                join(path, &key),
                format!("one of the options {}", known.join(", ")),
            ));
        }
    }
    Ok(())
}

/// Refuses a top-level option that is not one of `allowed`.
pub(super) fn only(options: &Options, allowed: &[&str]) -> Result<(), Invalid> {
    known(map(options.config, "configuration")?, "", allowed)
}

/// `path:key`, or `key` at the top.
pub(super) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}:{key}")
    }
}

/// True or False.
pub(super) fn flag(value: Option<&Value>, key: &str, default: bool) -> Result<bool, Invalid> {
    match value {
        None => Ok(default),
        Some(Value::Boolean(flag)) => Ok(*flag),
        Some(other) => Err(Invalid::new(
            key,
            format!("True or False, not {}", describe(other)),
        )),
    }
}

/// A non-empty string.
pub(super) fn text(value: &Value, key: &str, what: &str) -> Result<String, Invalid> {
    match value.as_str() {
        Some(text) if !text.is_empty() => Ok(text.to_owned()),
        _ => Err(Invalid::new(
            key,
            format!("{what}, not {}", describe(value)),
        )),
    }
}

/// A number of seconds, 0 or more.
pub(super) fn seconds(value: &Value, key: &str) -> Result<Duration, Invalid> {
    crate::config::seconds(value).ok_or_else(|| {
        Invalid::new(
            key,
            format!("a number of seconds, 0 or more, not {}", describe(value)),
        )
    })
}

/// An integer.
pub(super) fn integer(value: &Value, key: &str) -> Result<i64, Invalid> {
    value
        .as_i64()
        .ok_or_else(|| Invalid::new(key, format!("an integer, not {}", describe(value))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_named_with_their_path() {
        let entries = vec![("delya".into(), Value::from(3))];
        let err = known(&entries, "services:nginx", &["delay", "onchangeonly"]).unwrap_err();
        assert_eq!(err.key, "services:nginx:delya");
        assert_eq!(err.expected, "one of the options delay, onchangeonly");
        assert_eq!(join("", "file"), "file");
    }

    #[test]
    fn typed_values_refuse_what_they_cannot_read() {
        assert_eq!(flag(None, "onchangeonly", true), Ok(true));
        assert!(flag(Some(&"yes".into()), "onchangeonly", true).is_err());
        assert_eq!(
            seconds(&Value::from(2), "delay"),
            Ok(Duration::from_secs(2))
        );
        assert!(seconds(&Value::from(-1), "delay").is_err());
        assert!(text(&"".into(), "file", "a path").is_err());
        assert_eq!(map(&Value::Nil, "users"), Ok(&[][..]));
        assert!(map(&Value::from(1), "users").is_err());
        assert_eq!(integer(&Value::from(9), "ut_type:login"), Ok(9));
    }
}
