//! The top file: which SLS files each minion gets, per environment, shared by pillar and the
//! state system's highstate.
//!
//! A rendered top file is `{saltenv: {target: [sls, …, {match: type}]}}`. Top files of several
//! environments are first merged into one [`Top`] (pillar has its own way, [`merge_pillar`];
//! states follow `top_file_merging_strategy`, [`merge_states`]), then [`matches`] walks it for
//! one minion as Salt's `top_matches` does: a target is compound unless a `match:` item says
//! otherwise, and the SLS names of every matching target are listed per environment, in order.

use super::{Facts, Target};
use crate::event::{Value, map_get};
use crate::py::value::py_str;

/// The top files merged: per environment, in order, its targets with their items.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Top {
    envs: Vec<(String, Vec<Entry>)>,
    /// SLS names whose absence is no error (`ignore_missing: True` in a pillar top).
    pub ignore_missing: Vec<(String, String)>,
}

/// One target of an environment.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    target: String,
    /// The items: SLS names, `{match: type}`, `{saltenv: sls}`, `{subfilter: …}`.
    items: Vec<Value>,
    /// Pillar's `order:` (targets are sorted by it, stably).
    order: i64,
}

/// Why top files could not be merged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TopError {
    /// A top file, or one of its environments, is not a map.
    #[error("Error encountered while rendering pillar top file.")]
    NotAMap,
}

impl Top {
    /// Sets `target` of `saltenv`, keeping its place when it was there (as a Python dict does).
    fn set(&mut self, saltenv: &str, target: String, items: Vec<Value>, order: i64) {
        let entries = match self.envs.iter().position(|(env, _)| env == saltenv) {
            Some(index) => &mut self.envs[index].1,
            None => {
                self.envs.push((saltenv.to_owned(), Vec::new()));
                &mut self.envs.last_mut().expect("just pushed").1
            }
        };
        let entry = Entry {
            target,
            items,
            order,
        };
        match entries.iter_mut().find(|e| e.target == entry.target) {
            Some(existing) => *existing = entry,
            None => entries.push(entry),
        }
    }
}

/// One environment's section of a top file: its name and its targets.
type Section<'a> = (String, &'a [(Value, Value)]);

/// The `{saltenv: targets}` sections of a rendered top file, `include` left out.
fn sections(top: &Value) -> Result<Vec<Section<'_>>, TopError> {
    let entries = match top {
        Value::Nil => return Ok(Vec::new()),
        Value::Map(entries) => entries,
        _ => return Err(TopError::NotAMap),
    };
    entries
        .iter()
        .filter(|(env, _)| env.as_str() != Some("include"))
        .map(|(env, targets)| match targets {
            Value::Map(targets) => Ok((py_str(env).into_owned(), targets.as_slice())),
            Value::Nil => Ok((py_str(env).into_owned(), &[][..])),
            _ => Err(TopError::NotAMap),
        })
        .collect()
}

/// A target's items as a list (a lone SLS name is a list of one).
fn as_items(data: &Value) -> Vec<Value> {
    match data {
        Value::Array(items) => items.clone(),
        Value::Nil => Vec::new(),
        other => vec![other.clone()],
    }
}

/// Pillar's merge: every top file of every environment, in order, each target keeping its
/// `match:` items and its SLS names (each once); a later top file's target replaces an
/// earlier one's; targets sorted by `order:`; `ignore_missing: True` noted.
pub(crate) fn merge_pillar(tops: &[Value]) -> Result<Top, TopError> {
    let mut top = Top::default();
    for ctop in tops {
        for (saltenv, targets) in sections(ctop)? {
            for (target, data) in targets {
                let mut kept: Vec<Value> = Vec::new();
                let mut names: Vec<Value> = Vec::new();
                let mut order = 0;
                let mut ignore_missing = false;
                for item in as_items(data) {
                    match &item {
                        Value::Map(_) => {
                            if let Some(value) = map_get(&item, "order") {
                                // Salt's `int()`, 0 when it fails.
                                order = value
                                    .as_i64()
                                    .or_else(|| value.as_str()?.trim().parse().ok())
                                    .unwrap_or(0);
                            }
                            if map_get(&item, "ignore_missing")
                                .is_some_and(crate::py::value::truthy)
                            {
                                ignore_missing = true;
                            }
                            if map_get(&item, "match").is_some() {
                                kept.push(item.clone());
                            }
                        }
                        Value::String(_) if !names.contains(&item) => names.push(item.clone()),
                        _ => {}
                    }
                }
                if ignore_missing {
                    top.ignore_missing.extend(
                        names
                            .iter()
                            .map(|name| (saltenv.clone(), py_str(name).into_owned())),
                    );
                }
                kept.extend(names);
                top.set(&saltenv, py_str(target).into_owned(), kept, order);
            }
        }
    }
    for (_, entries) in &mut top.envs {
        entries.sort_by_key(|entry| entry.order);
    }
    Ok(top)
}

/// `top_file_merging_strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strategy {
    /// Salt's default: `base`'s top file is authoritative; another environment's top file
    /// adds only its own section, and only when `base`'s did not have it.
    Merge,
    /// Each environment's section comes from its own top file (or `default_top`'s when it has
    /// none).
    Same,
    /// Every section of every top file; a target seen again gets the new match type and the
    /// SLS names of both.
    MergeAll,
}

impl Strategy {
    /// The strategy named in the configuration; Salt falls back to `merge` for others.
    pub(crate) fn named(name: &str) -> Self {
        match name {
            "same" => Strategy::Same,
            "merge_all" => Strategy::MergeAll,
            _ => Strategy::Merge,
        }
    }
}

/// The states' merge of the top files found per environment (in the order of `env_order`,
/// or `base` then the others; an environment without a top file has an empty list).
pub(crate) fn merge_states(
    tops: &[(String, Vec<Value>)],
    strategy: Strategy,
    default_top: &str,
) -> Result<Top, TopError> {
    let mut top = Top::default();
    let copy = |top: &mut Top, saltenv: &str, targets: &[(Value, Value)]| {
        for (target, data) in targets {
            top.set(saltenv, py_str(target).into_owned(), as_items(data), 0);
        }
    };
    let present = |ctops: &[Value]| {
        ctops
            .iter()
            .any(|ctop| ctop.as_map().is_some_and(|m| !m.is_empty()))
    };
    match strategy {
        Strategy::Merge => {
            let base = tops.iter().filter(|(env, _)| env == "base");
            for (_, ctops) in base {
                for ctop in ctops {
                    for (saltenv, targets) in sections(ctop)? {
                        copy(&mut top, &saltenv, targets);
                    }
                }
            }
            let defined: Vec<String> = top.envs.iter().map(|(env, _)| env.clone()).collect();
            for (cenv, ctops) in tops.iter().filter(|(env, _)| env != "base") {
                for ctop in ctops {
                    for (saltenv, targets) in sections(ctop)? {
                        if saltenv == *cenv && !defined.contains(&saltenv) {
                            copy(&mut top, &saltenv, targets);
                        }
                    }
                }
            }
        }
        Strategy::Same => {
            for (cenv, ctops) in tops {
                let source = if present(ctops) {
                    ctops.as_slice()
                } else {
                    tops.iter()
                        .find(|(env, _)| env == default_top)
                        .map(|(_, ctops)| ctops.as_slice())
                        .unwrap_or_default()
                };
                for ctop in source {
                    for (saltenv, targets) in sections(ctop)? {
                        if saltenv == *cenv {
                            copy(&mut top, &saltenv, targets);
                        }
                    }
                }
            }
        }
        Strategy::MergeAll => {
            for (_, ctops) in tops {
                for ctop in ctops {
                    for (saltenv, targets) in sections(ctop)? {
                        for (target, data) in targets {
                            let target = py_str(target).into_owned();
                            let before = top
                                .envs
                                .iter()
                                .find(|(env, _)| *env == saltenv)
                                .and_then(|(_, entries)| {
                                    entries.iter().find(|entry| entry.target == target)
                                })
                                .map(|entry| entry.items.clone());
                            let merged = match before {
                                None => as_items(data),
                                Some(before) => merge_all_items(&before, &as_items(data)),
                            };
                            top.set(&saltenv, target, merged, 0);
                        }
                    }
                }
            }
        }
    }
    Ok(top)
}

/// `merge_all` for a target seen twice: the later match type (else the earlier), the earlier
/// SLS names, then the later ones not yet there.
fn merge_all_items(before: &[Value], after: &[Value]) -> Vec<Value> {
    let match_type = |items: &[Value]| items.iter().rfind(|item| item.is_map()).cloned();
    let names = |items: &[Value]| {
        items
            .iter()
            .filter(|item| item.as_str().is_some())
            .cloned()
            .collect::<Vec<_>>()
    };
    let mut merged: Vec<Value> = match_type(after)
        .or_else(|| match_type(before))
        .into_iter()
        .collect();
    merged.extend(names(before));
    for name in names(after) {
        if !merged.contains(&name) {
            merged.push(name);
        }
    }
    merged
}

/// What the matched items are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// Pillar: SLS names only, each once per environment.
    Pillar,
    /// States: SLS names, `{saltenv: sls}` items for a known environment, `subfilter`s.
    States,
}

/// Whether `target` with its `items` (whose last `match:` names the matcher, compound by
/// default) targets the minion. A target halite cannot read matches nothing, as in Salt.
fn confirm(target: &str, items: &[Value], id: &str, facts: Facts<'_>) -> bool {
    let matcher = items
        .iter()
        .filter_map(|item| map_get(item, "match"))
        .next_back()
        .map_or_else(|| "compound".to_owned(), |m| py_str(m).into_owned());
    match Target::new(&Value::from(target), &matcher) {
        Ok(parsed) => parsed.matches(id, facts),
        Err(err) => {
            tracing::warn!("top file target {target:?} matches nothing: {err}");
            false
        }
    }
}

/// Salt's `top_matches`: per environment, in order, the SLS names of the targets that match
/// the minion `id` with `grains` and `pillar` (the state top file's pillar targets match the
/// minion's pillar; the pillar top file's, which decides the pillar, match nothing); only `only_env`'s when given (`pillarenv`, `saltenv`). For
/// states, `{saltenv: sls}` items count when `saltenv` is one of `known_envs`.
pub(crate) fn matches(
    top: &Top,
    id: &str,
    grains: &Value,
    pillar: &Value,
    purpose: Purpose,
    only_env: Option<&str>,
    known_envs: &[String],
) -> Vec<(String, Vec<String>)> {
    let facts = Facts {
        grains: Some(grains),
        pillar: Some(pillar),
    };
    let mut found: Vec<(String, Vec<String>)> = Vec::new();
    for (saltenv, entries) in &top.envs {
        if only_env.is_some_and(|only| only != saltenv) {
            continue;
        }
        for entry in entries {
            collect(
                &mut found,
                saltenv,
                &entry.target,
                &entry.items,
                (id, facts),
                purpose,
                known_envs,
            );
        }
    }
    found
}

/// Adds what one matching target lists to `found`.
fn collect(
    found: &mut Vec<(String, Vec<String>)>,
    saltenv: &str,
    target: &str,
    items: &[Value],
    minion: (&str, Facts<'_>),
    purpose: Purpose,
    known_envs: &[String],
) {
    if !confirm(target, items, minion.0, minion.1) {
        return;
    }
    let list = |found: &mut Vec<(String, Vec<String>)>, env: &str| -> usize {
        match found.iter().position(|(known, _)| known == env) {
            Some(index) => index,
            None => {
                found.push((env.to_owned(), Vec::new()));
                found.len() - 1
            }
        }
    };
    let here = list(found, saltenv);
    for item in items {
        match (item, purpose) {
            (Value::String(_), Purpose::Pillar) => {
                let name = py_str(item).into_owned();
                if !found[here].1.contains(&name) {
                    found[here].1.push(name);
                }
            }
            (Value::String(_), Purpose::States) => found[here].1.push(py_str(item).into_owned()),
            (Value::Map(entries), Purpose::States) => {
                if let Some(Value::Map(subfilter)) = map_get(item, "subfilter") {
                    for (target, data) in subfilter {
                        collect(
                            found,
                            saltenv,
                            &py_str(target),
                            &as_items(data),
                            minion,
                            purpose,
                            known_envs,
                        );
                    }
                    continue;
                }
                // Salt pops the item's last pair: `{dev: sls}`; `{match: glob}` names no
                // environment and is skipped.
                if let Some((env, sls)) = entries.last() {
                    let env = py_str(env).into_owned();
                    if known_envs.contains(&env) {
                        let index = list(found, &env);
                        found[index].1.push(py_str(sls).into_owned());
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        crate::salt_yaml::load(text).unwrap()
    }

    fn grains() -> Value {
        yaml("{id: web1, os: Debian, roles: [web, db], tier: prod, site: {name: par1, rack: 7}}")
    }

    fn pillar_matches(top: &str) -> Vec<(String, Vec<String>)> {
        web1_pillar(&merge_pillar(&[yaml(top)]).unwrap(), None)
    }

    /// What a pillar `top` gives web1 (no pillar yet), in `only_env` or all environments.
    fn web1_pillar(top: &Top, only_env: Option<&str>) -> Vec<(String, Vec<String>)> {
        matches(
            top,
            "web1",
            &grains(),
            &Value::Map(Vec::new()),
            Purpose::Pillar,
            only_env,
            &[],
        )
    }

    fn names(found: &[(String, Vec<String>)], env: &str) -> Vec<String> {
        found
            .iter()
            .find(|(e, _)| e == env)
            .map(|(_, names)| names.clone())
            .unwrap_or_default()
    }

    /// The same top file real Salt 3007.8 matched for `web1` with these grains: every match
    /// type, compound precedence and `not`, and the targets Python cannot evaluate.
    #[test]
    fn every_match_type_selects_as_salt_did() {
        let found = pillar_matches(
            r"
base:
  'web1': [a]
  'G@roles:web and not G@tier:dev': [b]
  'not web1 or G@tier:prod': [c]
  '( web* or db* ) and not ( G@tier:dev )': [d]
  'E@web\d': [e]
  'L@db1,web1': [f]
  'P@tier:pr.*': [g]
  'web.*': [{match: pcre}, h]
  'roles:we*': [{match: grain}, i]
  'site:rack:7': [{match: grain}, j]
  'tier:p.*': [{match: grain_pcre}, k]
  'web1 db1': [l]
  'web1 and': [m]
  'G@site:name': [n]
  'site:*': [{match: grain}, o]
  'users.*x': [p]
  'web1,db1': [{match: list}, q]
  'db*': [r]
  '*': [a, s]
",
        );
        assert_eq!(
            names(&found, "base"),
            [
                "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "n", "o", "q", "s"
            ]
        );
    }

    #[test]
    fn compound_precedence_is_pythons() {
        let m = |expr: &str| {
            Target::new(&Value::from(expr), "compound")
                .map(|t| t.matches("web1", Facts::grains(Some(&grains()))))
                .unwrap_or(false)
        };
        // not > and > or.
        assert!(m("db* and web* or web1"));
        assert!(!m("db* and ( web* or web1 )"));
        assert!(m("not db* and web1"));
        assert!(!m("not ( db* or web1 )"));
        // A `not` after a term reads `and not`.
        assert!(m("web1 not db*"));
        assert!(!m("web1 not web*"));
        // What Python would not evaluate matches nothing.
        for bad in [
            "",
            "and web1",
            "( or web1 )",
            "web1 db1",
            "web1 (",
            "not not web1",
            "web1 ( db1 )",
        ] {
            assert!(
                Target::new(&Value::from(bad), "compound").is_err(),
                "{bad:?} was accepted"
            );
        }
        assert!(m("not ( not web1 )"));
        assert!(m("G;@site;rack;7"));
    }

    #[test]
    fn pillar_merge_replaces_targets_sorts_by_order_and_dedups() {
        let first = yaml("base: {'*': [a, a, {order: 5}], 'web*': [b]}\ndev: {'*': [d]}");
        let second = yaml("base: {'web*': [c, {ignore_missing: true}]}");
        let top = merge_pillar(&[first, second]).unwrap();
        let found = web1_pillar(&top, None);
        assert_eq!(names(&found, "base"), ["c", "a"]);
        assert_eq!(names(&found, "dev"), ["d"]);
        assert_eq!(top.ignore_missing, [("base".to_owned(), "c".to_owned())]);
        let only = web1_pillar(&top, Some("dev"));
        assert_eq!(only.len(), 1);
        assert_eq!(merge_pillar(&[yaml("base: [a]")]), Err(TopError::NotAMap));
    }

    #[test]
    fn state_merge_keeps_base_authoritative() {
        let tops = vec![
            (
                "base".to_owned(),
                vec![yaml("base: {'*': [core]}\ndev: {'*': [from_base]}")],
            ),
            (
                "dev".to_owned(),
                vec![yaml("dev: {'*': [ignored]}\nqa: {'*': [ignored_too]}")],
            ),
            ("qa".to_owned(), vec![yaml("qa: {'*': [qa1]}")]),
        ];
        let envs: Vec<String> = ["base", "dev", "qa"].map(str::to_owned).to_vec();
        let run = |strategy| {
            let top = merge_states(&tops, strategy, "base").unwrap();
            matches(
                &top,
                "web1",
                &grains(),
                &Value::Map(Vec::new()),
                Purpose::States,
                None,
                &envs,
            )
        };
        let merged = run(Strategy::named("merge"));
        assert_eq!(names(&merged, "base"), ["core"]);
        assert_eq!(names(&merged, "dev"), ["from_base"]);
        assert_eq!(names(&merged, "qa"), ["qa1"]);
        let same = run(Strategy::named("same"));
        assert_eq!(names(&same, "dev"), ["ignored"]);
        assert_eq!(names(&same, "qa"), ["qa1"]);
        let all = run(Strategy::MergeAll);
        assert_eq!(names(&all, "dev"), ["from_base", "ignored"]);
        assert_eq!(names(&all, "qa"), ["ignored_too", "qa1"]);
    }

    #[test]
    fn a_state_top_matches_the_minions_pillar_and_addresses() {
        let top = merge_states(
            &[(
                "base".to_owned(),
                vec![yaml(
                    "base:\n  'I@role:web': [web]\n  'role:db': [{match: pillar}, db]\n  'S@10.0.0.0/8': [net]\n",
                )],
            )],
            Strategy::Merge,
            "base",
        )
        .unwrap();
        let envs = ["base".to_owned()];
        let grains = yaml("{ipv4: [10.1.2.3]}");
        let found = |pillar: &str| {
            let pillar = yaml(pillar);
            let found = matches(&top, "web1", &grains, &pillar, Purpose::States, None, &envs);
            names(&found, "base")
        };
        assert_eq!(found("{role: web}"), ["web", "net"]);
        assert_eq!(found("{role: db}"), ["db", "net"]);
        assert_eq!(found("{}"), ["net"]);
    }

    #[test]
    fn state_items_name_other_environments_and_subfilters() {
        let top = merge_states(
            &[(
                "base".to_owned(),
                vec![yaml(
                    "base:\n  '*':\n    - a\n    - {dev: b}\n    - {nowhere: c}\n    - subfilter: {'G@os:Debian': [d], 'G@os:RedHat': [e]}\n  'web1': x\n",
                )],
            )],
            Strategy::Merge,
            "base",
        )
        .unwrap();
        let envs = ["base".to_owned(), "dev".to_owned()];
        let found = matches(
            &top,
            "web1",
            &grains(),
            &Value::Map(Vec::new()),
            Purpose::States,
            None,
            &envs,
        );
        assert_eq!(names(&found, "base"), ["a", "d", "x"]);
        assert_eq!(names(&found, "dev"), ["b"]);
    }
}
