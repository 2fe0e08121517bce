//! Salt's `external_auth` access lists, with the semantics of Salt's own checks
//! (`salt/utils/minions.py`, `salt/netapi/__init__.py`):
//!
//! * the list a user gets ([`auth_list`], Salt's `fill_auth_list`): the entries of the user's own
//!   key, of every `group%` key naming one of the user's groups, and those of `*` only when the
//!   user has no key of its own (both with `permissive_acl`). Salt compares a key with the name
//!   through `expr_match(key, name)`, the NAME being the pattern: so keys are in effect exact
//!   names, except that a user called `.*` or `*` would collect every key's entries. Here a key
//!   is the exact name, without that hole;
//! * the `perms` `/login` shows ([`login_perms`], Salt's `sum_permissions` + `sorted_permissions`):
//!   the user's own key, `*` and the groups', strings sorted then the rest by `repr`, duplicates
//!   dropped;
//! * a function entry is a Python regex matched at the START of the name only (`re.match`):
//!   `test.*` allows `test.ping`, and so does `test`; a regex Python refuses matches nothing;
//! * `{target: [functions]}` allows the functions on a job whose minions are all among those the
//!   target (a compound expression) matches ([`local_allowed`]); a function entry may itself be
//!   `{function: {args: [...], kwargs: {...}}}`, each argument a regex on `str(arg)`, `null` any;
//! * runner and wheel functions (and `/jobs`, the `jobs` runner) need `@runner`/`@wheel`, or
//!   `@<module>`, or `{"@runner": [functions]}` / `{"@<module>": [functions]}`
//!   ([`special_allowed`]).

use crate::event::{Value, map_get};
use crate::py::re::{Anchoring, Regex};
use crate::py::value::{py_str, repr};
use crate::salt_yaml::CliArgs;

/// Salt's `fill_auth_list`: the entries of `eauth` (one backend's block of `external_auth`) that
/// apply to user `name` in `groups`.
pub(crate) fn auth_list(
    eauth: &Value,
    name: &str,
    groups: &[String],
    permissive: bool,
) -> Vec<Value> {
    let mut list = Vec::new();
    let mut name_matched = false;
    for (key, entries) in eauth.as_map().into_iter().flatten() {
        let Some(key) = key.as_str() else { continue };
        if key == "*" && !permissive {
            continue;
        }
        if let Some(group) = key.strip_suffix('%') {
            if groups.iter().any(|g| g == group.trim_end_matches('%')) {
                list.extend(entries_of(entries));
            }
        } else if key == name {
            name_matched = true;
            list.extend(entries_of(entries));
        }
    }
    if !permissive
        && !name_matched
        && let Some(star) = map_get(eauth, "*")
    {
        list.extend(entries_of(star));
    }
    list
}

/// The `perms` of Salt's `/login` answer: `sum_permissions` (the user's exact key, `*`, the
/// groups' keys) put through `sorted_permissions`; an empty list is `{}`, as Salt answers.
pub(crate) fn login_perms(eauth: &Value, name: &str, groups: &[String]) -> Value {
    let mut all: Vec<Value> = Vec::new();
    all.extend(map_get(eauth, name).map(entries_of).into_iter().flatten());
    all.extend(map_get(eauth, "*").map(entries_of).into_iter().flatten());
    for (key, _) in eauth.as_map().into_iter().flatten() {
        let Some(group) = key.as_str().and_then(|key| key.strip_suffix('%')) else {
            continue;
        };
        let group = group.trim_end_matches('%');
        if groups.iter().any(|g| g == group) {
            // Salt looks the group up again as `group%`: a `group%%` key is not found, and the
            // error leaves `perms` empty.
            let Some(entries) = map_get(eauth, &format!("{group}%")) else {
                return Value::Map(Vec::new());
            };
            all.extend(entries_of(entries));
        }
    }
    let mut strings: Vec<String> = Vec::new();
    let mut others: Vec<Value> = Vec::new();
    for entry in all {
        match entry.as_str() {
            Some(text) if !strings.iter().any(|s| s == text) => strings.push(text.to_owned()),
            Some(_) => {}
            None if !others.contains(&entry) => others.push(entry),
            None => {}
        }
    }
    if strings.is_empty() && others.is_empty() {
        return Value::Map(Vec::new());
    }
    strings.sort();
    others.sort_by_cached_key(repr);
    Value::Array(strings.into_iter().map(Value::from).chain(others).collect())
}

/// A key's entries: a list, or a lone value Salt would iterate as one entry.
fn entries_of(entries: &Value) -> Vec<Value> {
    match entries {
        Value::Array(items) => items.clone(),
        Value::Nil => Vec::new(),
        other => vec![other.clone()],
    }
}

/// Salt's `match_check`: `re.match(regex, fun)`; an entry that is not a string, or a regex
/// Python refuses, matches nothing.
fn match_check(regex: &Value, fun: &str) -> bool {
    regex.as_str().is_some_and(|pattern| {
        Regex::new(pattern, Anchoring::Match, pattern).is_ok_and(|re| re.is_match(fun))
    })
}

/// A function's arguments as the checks see them: as the function will get them, keyword
/// arguments given twice merged (the last value wins), so that what is checked is what runs.
pub(crate) type Args<'a> = &'a CliArgs;

/// Salt's `auth_check` for an execution function: a string entry matching `fun` allows it on
/// any target; a `{target: functions}` entry allows it when `target_allows(target)` (every
/// minion the job targets is one `target` matches, Salt's `validate_tgt`).
pub(crate) fn local_allowed(
    list: &[Value],
    fun: &str,
    args: Args<'_>,
    mut target_allows: impl FnMut(&str) -> bool,
) -> bool {
    list.iter().any(|entry| match entry {
        Value::Map(pairs) => match pairs.as_slice() {
            [(valid, functions)] => valid
                .as_str()
                .is_some_and(|valid| target_allows(valid) && fun_check(functions, fun, args)),
            _ => false,
        },
        other => match_check(other, fun),
    })
}

/// Salt's `spec_check` for `form` (`runner` or `wheel`): `fun` is `module.function`; a name
/// without exactly one dot is refused (Salt answers it with a syntax error).
pub(crate) fn special_allowed(list: &[Value], form: &str, fun: &str, args: Args<'_>) -> bool {
    let Some((module, name)) = fun.split_once('.').filter(|(_, name)| !name.contains('.')) else {
        return false;
    };
    let plural = format!("{form}s");
    let names_form = |key: &str| key == form || key == plural;
    list.iter().any(|entry| match entry {
        Value::Map(pairs) => match pairs.as_slice() {
            [(valid, functions)] => match valid.as_str().and_then(|v| v.strip_prefix('@')) {
                Some(key) => {
                    (key == module && fun_check(functions, name, args))
                        || (names_form(key) && fun_check(functions, fun, args))
                }
                None => false,
            },
            _ => false,
        },
        other => other
            .as_str()
            .and_then(|entry| entry.strip_prefix('@'))
            .is_some_and(|key| key == module || names_form(key)),
    })
}

/// Salt's `__fun_check`: a function regex, or `{regex: argument conditions}`.
fn fun_check(functions: &Value, fun: &str, args: Args<'_>) -> bool {
    entries_of(functions).iter().any(|cond| match cond {
        Value::Map(pairs) => match pairs.as_slice() {
            [(name, conditions)] => match_check(name, fun) && args_check(conditions, args),
            _ => false,
        },
        other => match_check(other, fun),
    })
}

/// Salt's `__args_check`: one of the conditions (`{args: [...], kwargs: {...}}`) holds when
/// each listed positional argument exists and matches (as `str`), and so does each keyword.
fn args_check(conditions: &Value, args: Args<'_>) -> bool {
    entries_of(conditions).iter().any(|cond| {
        if cond.as_map().is_none() {
            return false;
        }
        let positional = map_get(cond, "args").map(entries_of).unwrap_or_default();
        let positional_ok = positional.iter().enumerate().all(|(at, want)| {
            args.args
                .get(at)
                .is_some_and(|got| want.is_nil() || match_check(want, &py_str(got)))
        });
        let keywords = map_get(cond, "kwargs").and_then(Value::as_map);
        let keywords_ok = keywords.into_iter().flatten().all(|(key, want)| {
            let got = args
                .kwargs
                .iter()
                .find(|(name, _)| key.as_str() == Some(name.as_str()))
                .map(|(_, value)| value);
            got.is_some_and(|got| want.is_nil() || match_check(want, &py_str(got)))
        });
        positional_ok && keywords_ok
    })
}

#[cfg(test)]
mod tests;
