//! High data to low chunks, as Salt 3007's `State.call_high` does before it runs anything:
//! `extend` reconciled into the states it names, the structure verified (Salt's messages),
//! the `_in` requisites turned into requisites on their targets, `exclude` applied, then one
//! chunk per state, name and function, sorted by `order`.
//!
//! High data keeps Salt's shape (`id: {module: [function, {arg: value}…], __sls__, __env__}`)
//! as ordered maps, because `state.show_highstate` returns it and Salt's algorithms are defined
//! on it; chunks are typed.

use indexmap::IndexMap;

use crate::event::{Value, map_get, map_set};
use crate::py::fnmatch::fnmatch;
use crate::py::value::py_str;

/// The requisites a state declares, which `extend` appends to rather than replaces.
pub(super) const REQUISITES: &[&str] = &[
    "onchanges",
    "onchanges_any",
    "onfail",
    "onfail_any",
    "onfail_all",
    "onfail_stop",
    "prereq",
    "prerequired",
    "watch",
    "watch_any",
    "require",
    "require_any",
    "listen",
];

/// Salt's own keys of a chunk, never passed to a state function (`STATE_INTERNAL_KEYWORDS`).
const INTERNAL: &[&str] = &[
    "onchanges_in",
    "onfail_in",
    "prereq_in",
    "watch_in",
    "require_in",
    "listen_in",
    "fun",
    "state",
    "check_cmd",
    "cmd_opts_exclude",
    "failhard",
    "onlyif",
    "unless",
    "creates",
    "retry",
    "order",
    "parallel",
    "reload_modules",
    "reload_grains",
    "reload_pillar",
    "runas_password",
    "fire_event",
    "saltenv",
    "umask",
    "use",
    "use_in",
    "name",
    "names",
    "sfun",
];

/// Whether `key` is one of Salt's own chunk keys rather than an argument of the function.
pub(super) fn internal(key: &str) -> bool {
    key.starts_with("__") || REQUISITES.contains(&key) || INTERNAL.contains(&key)
}

/// A state run's high data: the IDs (each a map of state declarations, `__sls__` and
/// `__env__`), the pending `extend` blocks and `exclude` entries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct High {
    /// ID → body, in the order the IDs were met.
    pub ids: IndexMap<String, Value>,
    /// `extend` blocks: ID → body, in order.
    pub extend: Vec<(String, Value)>,
    /// `exclude` entries (`sls` names, `{sls: x}` or `{id: x}`).
    pub exclude: Vec<Value>,
    /// IDs YAML read as something other than text, with the Python type they had (`int`,
    /// `bool`, …): Salt's `verify_high` refuses them.
    pub misquoted: Vec<(String, &'static str)>,
}

impl High {
    /// The high data as `state.show_highstate` returns it.
    pub fn to_value(&self) -> Value {
        let mut entries: Vec<(Value, Value)> = self
            .ids
            .iter()
            .map(|(id, body)| (Value::from(id.as_str()), body.clone()))
            .collect();
        if !self.extend.is_empty() {
            let extend = self
                .extend
                .iter()
                .map(|(id, body)| Value::Map(vec![(Value::from(id.as_str()), body.clone())]))
                .collect();
            entries.push((Value::from("__extend__"), Value::Array(extend)));
        }
        if !self.exclude.is_empty() {
            entries.push((
                Value::from("__exclude__"),
                Value::Array(self.exclude.clone()),
            ));
        }
        Value::Map(entries)
    }
}

/// One state to run: a function of a module on one name.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// The module (`cmd`).
    pub state: String,
    /// The name the function is applied to.
    pub name: String,
    /// The function (`run`).
    pub fun: String,
    /// The ID that declared it.
    pub id: String,
    /// The SLS that declared it.
    pub sls: String,
    /// The environment it was rendered from.
    pub env: String,
    /// SLS files that included the one declaring it.
    pub included_from: Vec<String>,
    /// Every other key in declaration order: arguments, requisites, `order`, `unless`…
    pub args: Vec<(String, Value)>,
    /// Where it runs; see [`order_chunks`].
    pub order: f64,
}

impl Chunk {
    /// Salt's tag for the chunk's result: `<module>_|-<id>_|-<name>_|-<function>`.
    pub fn tag(&self) -> String {
        format!(
            "{}_|-{}_|-{}_|-{}",
            self.state, self.id, self.name, self.fun
        )
    }

    /// The key `key`, when declared.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.args.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Sets `key` as a Python dict update does.
    pub fn set(&mut self, key: &str, value: Value) {
        match self.args.iter_mut().find(|(k, _)| k == key) {
            Some((_, slot)) => *slot = value,
            None => self.args.push((key.to_owned(), value)),
        }
    }

    /// The chunk as Salt's low data (`state.show_lowstate`, `state.show_low_sls`).
    pub fn to_value(&self) -> Value {
        let mut low = vec![
            (Value::from("state"), Value::from(self.state.as_str())),
            (Value::from("name"), Value::from(self.name.as_str())),
            (Value::from("__sls__"), Value::from(self.sls.as_str())),
            (Value::from("__env__"), Value::from(self.env.as_str())),
        ];
        if !self.included_from.is_empty() {
            low.push((
                Value::from("__sls_included_from__"),
                Value::Array(
                    self.included_from
                        .iter()
                        .map(|s| Value::from(s.as_str()))
                        .collect(),
                ),
            ));
        }
        low.push((Value::from("__id__"), Value::from(self.id.as_str())));
        for (key, value) in &self.args {
            let value = if key == "order" {
                order_value(self.order)
            } else {
                value.clone()
            };
            low.push((Value::from(key.as_str()), value));
        }
        if self.get("order").is_none() {
            low.push((Value::from("order"), order_value(self.order)));
        }
        low.push((Value::from("fun"), Value::from(self.fun.as_str())));
        Value::Map(low)
    }
}

/// An order as Salt holds it: an int when whole.
fn order_value(order: f64) -> Value {
    if order.fract() == 0.0 && order.abs() < 1e15 {
        Value::from(order as i64)
    } else {
        Value::F64(order)
    }
}

/// The key of a single-key map (a requisite, an argument), and its value.
pub(super) fn single(item: &Value) -> Option<(String, &Value)> {
    match item {
        Value::Map(entries) if !entries.is_empty() => {
            let (key, value) = &entries[0];
            Some((py_str(key).into_owned(), value))
        }
        _ => None,
    }
}

/// The state declarations of a body: its keys not starting with `__`.
fn declarations(body: &Value) -> Vec<String> {
    body.as_map()
        .map(|entries| {
            entries
                .iter()
                .map(|(k, _)| py_str(k).into_owned())
                .filter(|k| !k.starts_with("__"))
                .collect()
        })
        .unwrap_or_default()
}

fn get_mut<'a>(map: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    match map {
        Value::Map(entries) => entries
            .iter_mut()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v),
        _ => None,
    }
}

fn text(value: Option<&Value>) -> String {
    value.map(|v| py_str(v).into_owned()).unwrap_or_default()
}

/// IDs whose `state` declaration is `name`, or has a `name` argument equal to `name`, or (for
/// `state` `sls`) every ID of that SLS (Salt's `find_name`).
fn find_name(
    name: &str,
    state: &str,
    high: &IndexMap<String, Value>,
    strict: bool,
) -> Vec<(String, String)> {
    let declared = high
        .get(name)
        .is_some_and(|body| !strict || map_get(body, state).is_some());
    if declared {
        return vec![(name.to_owned(), state.to_owned())];
    }
    if state == "sls" {
        return high
            .iter()
            .filter(|(_, body)| text(map_get(body, "__sls__")) == name)
            .filter_map(|(id, body)| Some((id.clone(), declarations(body).into_iter().next()?)))
            .collect();
    }
    high.iter()
        .filter(|(_, body)| {
            map_get(body, state)
                .and_then(Value::as_array)
                .is_some_and(|args| {
                    args.iter().any(|arg| {
                        single(arg).is_some_and(|(_, value)| {
                            arg.as_map().is_some_and(|m| m.len() == 1) && py_str(value) == name
                        })
                    })
                })
        })
        .map(|(id, _)| (id.clone(), state.to_owned()))
        .collect()
}

/// Merges the `extend` blocks into the states they name (Salt's `reconcile_extend`): a
/// function replaces the function, a requisite list is appended to, any other argument
/// replaces the one of the same name or is added.
pub(super) fn reconcile_extend(high: &mut High, strict: bool) -> Vec<String> {
    let mut errors = Vec::new();
    let excluded_sls: Vec<String> = high
        .exclude
        .iter()
        .filter_map(|exclude| match exclude {
            Value::String(_) => Some(py_str(exclude).into_owned()),
            other => map_get(other, "sls").map(|sls| py_str(sls).into_owned()),
        })
        .collect();
    for (mut name, body) in std::mem::take(&mut high.extend) {
        let Some(state_type) = declarations(&body).into_iter().next() else {
            continue;
        };
        let declared = high
            .ids
            .get(&name)
            .is_some_and(|existing| map_get(existing, &state_type).is_some());
        if !declared {
            let ids = find_name(&name, &state_type, &high.ids, strict);
            if ids.len() != 1 {
                let env =
                    map_get(&body, "__env__").map_or("base".into(), |v| py_str(v).into_owned());
                let sls =
                    map_get(&body, "__sls__").map_or("base".into(), |v| py_str(v).into_owned());
                errors.push(format!(
                    "Cannot extend ID '{name}' in '{env}:{sls}'. It is not part of the high state.\nThis is likely due to a missing include statement or an incorrectly typed ID.\nEnsure that a state with an ID of '{name}' is available\nin environment '{env}' and to SLS '{sls}'"
                ));
                continue;
            }
            name = ids[0].0.clone();
        }
        if map_get(&body, "__sls__")
            .is_some_and(|sls| excluded_sls.contains(&py_str(sls).into_owned()))
        {
            continue;
        }
        let target = high.ids.get_mut(&name).expect("found above");
        for (state, run) in body.as_map().into_iter().flatten() {
            let state = py_str(state).into_owned();
            if state.starts_with("__") {
                continue;
            }
            let Some(Value::Array(existing)) = get_mut(target, &state) else {
                if let Value::Map(entries) = target {
                    map_set(entries, Value::from(state.as_str()), run.clone());
                }
                continue;
            };
            for arg in run.as_array().into_iter().flatten() {
                let mut update = false;
                for slot in existing.iter_mut() {
                    match (arg, &*slot) {
                        (Value::String(_), Value::String(_)) => {
                            *slot = arg.clone();
                            update = true;
                        }
                        (Value::Map(_), Value::Map(_)) => {
                            let (Some((argfirst, value)), Some((first, _))) =
                                (single(arg), single(slot))
                            else {
                                continue;
                            };
                            if argfirst == first {
                                if REQUISITES.contains(&argfirst.as_str()) {
                                    if let Some(Value::Array(list)) = get_mut(slot, &first) {
                                        list.extend(value.as_array().cloned().unwrap_or_default());
                                    }
                                } else {
                                    *slot = arg.clone();
                                }
                                update = true;
                            }
                            if argfirst == "name" && first == "names" {
                                *slot = arg.clone();
                            }
                        }
                        _ => {}
                    }
                }
                if !update {
                    existing.push(arg.clone());
                }
            }
        }
    }
    errors
}

/// Checks the structure of high data with Salt's messages (`verify_high`).
pub(super) fn verify_high(high: &High) -> Vec<String> {
    let mut errors = Vec::new();
    // ID → (its state, requisite target → requisite kind), for direct recursion.
    let mut reqs: IndexMap<String, (String, IndexMap<String, String>)> = IndexMap::new();
    for (name, body) in &high.ids {
        if name.starts_with("__") {
            continue;
        }
        if let Some((_, kind)) = high.misquoted.iter().find(|(id, _)| id == name) {
            errors.push(format!(
                "ID '{name}' in SLS '{}' is not formed as a string, but is a {kind}. It may need to be quoted.",
                text(map_get(body, "__sls__"))
            ));
        }
        let Some(entries) = body.as_map() else {
            errors.push(format!(
                "The type {name} in {} is not formatted as a dictionary",
                crate::py::value::repr(body)
            ));
            continue;
        };
        let sls = text(map_get(body, "__sls__"));
        for (state, decl) in entries {
            let state = py_str(state).into_owned();
            if state.starts_with("__") {
                continue;
            }
            if decl.is_nil() {
                errors.push(format!(
                    "ID '{name}' in SLS '{sls}' contains a short declaration ({state}) with a trailing colon. When not passing any arguments to a state, the colon must be omitted."
                ));
                continue;
            }
            let Some(args) = decl.as_array() else {
                errors.push(format!(
                    "State '{name}' in SLS '{sls}' is not formed as a list"
                ));
                continue;
            };
            let mut funs = usize::from(state.contains('.'));
            for arg in args {
                match arg {
                    Value::String(_) => {
                        funs += 1;
                        let fun = py_str(arg);
                        if fun.trim().contains(' ') {
                            errors.push(format!(
                                "The function \"{fun}\" in state \"{name}\" in SLS \"{sls}\" has whitespace, a function with whitespace is not supported, perhaps this is an argument that is missing a \":\""
                            ));
                        }
                    }
                    Value::Map(pairs) => {
                        let Some((argfirst, value)) = single(arg) else {
                            continue;
                        };
                        if argfirst == "names" && !value.is_array() {
                            errors.push(format!(
                                "The 'names' argument in state '{name}' in SLS '{sls}' needs to be formed as a list"
                            ));
                        }
                        if ["require", "watch", "prereq", "onchanges"].contains(&argfirst.as_str())
                        {
                            match value.as_array() {
                                None => errors.push(format!(
                                    "The {argfirst} statement in state '{name}' in SLS '{sls}' needs to be formed as a list"
                                )),
                                Some(list) => {
                                    let entry = reqs
                                        .entry(name.clone())
                                        .or_insert_with(|| (state.clone(), IndexMap::new()));
                                    entry.0 = state.clone();
                                    entry.1.clear();
                                    for req in list {
                                        let (req_key, req_val) = match (req, single(req)) {
                                            (Value::String(_), _) => ("id".to_owned(), req),
                                            (Value::Map(_), Some(pair)) => pair,
                                            (other, _) => {
                                                errors.push(format!(
                                                    "Requisite declaration {} in SLS {sls} is not formed as a single key dictionary",
                                                    py_str(other)
                                                ));
                                                continue;
                                            }
                                        };
                                        if let Some(dot) = req_key.find('.') {
                                            errors.push(format!(
                                                "Invalid requisite type '{req_key}' in state '{name}', in SLS '{sls}'. Requisite types must not contain dots, did you mean '{}'?",
                                                &req_key[..dot]
                                            ));
                                        }
                                        if req_val.is_map() || req_val.is_array() {
                                            errors.push(format!(
                                                "Illegal requisite \"{}\", please check your syntax.\n",
                                                py_str(req_val)
                                            ));
                                            continue;
                                        }
                                        let target = py_str(req_val).into_owned();
                                        reqs.get_mut(name).expect("inserted").1.insert(target.clone(), req_key.clone());
                                        let recursive = reqs.get(&target).is_some_and(|(their_state, theirs)| {
                                            theirs.get(name) == Some(&state)
                                                && Some(their_state) == reqs[name].1.get(&target)
                                        });
                                        if recursive {
                                            errors.push(format!(
                                                "A recursive requisite was found, SLS \"{sls}\" ID \"{name}\" ID \"{target}\""
                                            ));
                                        }
                                    }
                                }
                            }
                            if pairs.len() != 1 {
                                errors.push(format!(
                                    "Multiple dictionaries defined in argument of state '{name}' in SLS '{sls}'"
                                ));
                            }
                        }
                    }
                    _ => {}
                }
            }
            if funs == 0 {
                if state == "require" || state == "watch" {
                    continue;
                }
                errors.push(format!(
                    "No function declared in state '{name}' in SLS '{sls}'"
                ));
            } else if funs > 1 {
                let mut names: Vec<String> = state
                    .split_once('.')
                    .map(|(_, fun)| vec![fun.to_owned()])
                    .unwrap_or_default();
                names.extend(
                    args.iter()
                        .filter(|a| a.is_str())
                        .map(|a| py_str(a).into_owned()),
                );
                errors.push(format!(
                    "Too many functions declared in state '{name}' in SLS '{sls}'. Please choose one of the following: {}",
                    names.join(", ")
                ));
            }
        }
    }
    errors
}

/// Turns `require_in`, `watch_in`, `onchanges_in`, `onfail_in` and `prereq_in` (and `prereq`'s
/// hidden `prerequired`) into requisites on their targets, and `use`/`use_in` into copied
/// arguments, through `extend` (Salt's `requisite_in`).
pub(super) fn requisite_in(high: &mut High) -> Vec<String> {
    const IN: &[&str] = &[
        "require_in",
        "watch_in",
        "onfail_in",
        "onchanges_in",
        "use",
        "use_in",
        "prereq",
        "prereq_in",
    ];
    // What `use` never copies, besides `name`, `names` and what the state declares itself.
    const NOT_USED: &[&str] = &["require", "watch", "onfail", "onfail_stop", "onchanges"];
    // The single-key arguments of `from` (ID, state) that `use` copies into a state declaring
    // the arguments `own`.
    let usable = |from: &str, state: &str, own: &[String]| -> Vec<Value> {
        high.ids
            .get(from)
            .and_then(|body| map_get(body, state))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|arg| arg.as_map().is_some_and(|m| m.len() == 1))
            .filter(|arg| {
                single(arg).is_some_and(|(key, _)| {
                    !IN.contains(&key.as_str())
                        && !NOT_USED.contains(&key.as_str())
                        && !own.contains(&key)
                        && key != "name"
                        && key != "names"
                })
            })
            .cloned()
            .collect()
    };
    // The argument names a state declares (Salt's `state_args`).
    let declared = |id: &str, state: &str| -> Vec<String> {
        high.ids
            .get(id)
            .and_then(|body| map_get(body, state))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|arg| arg.as_map().is_some_and(|m| m.len() == 1))
            .filter_map(|arg| single(arg).map(|(key, _)| key))
            .collect()
    };
    let push =
        |extend: &mut IndexMap<String, Value>, target: &str, state: &str, args: Vec<Value>| {
            let body = extend
                .entry(target.to_owned())
                .or_insert_with(|| Value::Map(Vec::new()));
            if let Value::Map(entries) = body
                && !entries.iter().any(|(k, _)| k.as_str() == Some(state))
            {
                entries.push((Value::from(state), Value::Array(Vec::new())));
            }
            if let Some(Value::Array(list)) = get_mut(body, state) {
                list.extend(args);
            }
        };
    let mut errors = Vec::new();
    // Target ID → body of requisites to add, in order.
    let mut extend: IndexMap<String, Value> = IndexMap::new();
    let add = |extend: &mut IndexMap<String, Value>,
               target: &str,
               state: &str,
               rkey: &str,
               req: Value,
               origin: Option<&Value>| {
        let body = extend
            .entry(target.to_owned())
            .or_insert_with(|| Value::Map(Vec::new()));
        let Value::Map(entries) = body else { return };
        if !entries.iter().any(|(k, _)| k.as_str() == Some(state)) {
            entries.push((Value::from(state), Value::Array(Vec::new())));
        }
        if let Some(origin) = origin {
            for key in ["__env__", "__sls__"] {
                map_set(
                    entries,
                    Value::from(key),
                    map_get(origin, key).cloned().unwrap_or(Value::Nil),
                );
            }
        }
        let Some(Value::Array(list)) = get_mut(body, state) else {
            return;
        };
        for item in list.iter_mut() {
            if single(item).is_some_and(|(k, _)| k == rkey) {
                if let Some(Value::Array(reqs)) = get_mut(item, rkey) {
                    reqs.push(req);
                }
                return;
            }
        }
        list.push(Value::Map(vec![(
            Value::from(rkey),
            Value::Array(vec![req]),
        )]));
    };
    for (id, body) in &high.ids {
        let Some(entries) = body.as_map() else {
            continue;
        };
        for (state, run) in entries {
            let state = py_str(state).into_owned();
            if state.starts_with("__") {
                continue;
            }
            for arg in run.as_array().into_iter().flatten() {
                let Some((key, items)) = single(arg) else {
                    continue;
                };
                if !IN.contains(&key.as_str()) {
                    continue;
                }
                let rkey = key.split('_').next().unwrap_or_default().to_owned();
                let sls = text(map_get(body, "__sls__"));
                let me = || {
                    Value::Map(vec![(
                        Value::from(state.as_str()),
                        Value::from(id.as_str()),
                    )])
                };
                let dotted = |errors: &mut Vec<String>, pstate: &str, pname: &str| {
                    if let Some(dot) = pstate.find('.') {
                        errors.push(format!(
                            "Invalid requisite in {rkey}: {pstate} for {pname}, in SLS '{sls}'. Requisites must not contain dots, did you mean '{}'?",
                            &pstate[..dot]
                        ));
                    }
                };
                if let Value::Map(pairs) = items {
                    for (target_state, target) in pairs {
                        let target_state = py_str(target_state).into_owned();
                        let target = py_str(target).into_owned();
                        dotted(&mut errors, &target_state, &target);
                        let target_state = target_state.split('.').next().unwrap_or_default();
                        add(&mut extend, &target, target_state, &rkey, me(), Some(body));
                    }
                }
                let Some(list) = items.as_array() else {
                    continue;
                };
                let mut hinges: Vec<(String, String)> = Vec::new();
                for item in list {
                    let item = match item {
                        Value::Map(_) => item.clone(),
                        other => {
                            let wanted = py_str(other).into_owned();
                            if let Some(target) = high.ids.get(&wanted) {
                                let Some(first) = declarations(target).into_iter().next() else {
                                    continue;
                                };
                                Value::Map(vec![(Value::from(first), Value::from(wanted))])
                            } else {
                                let found = high.ids.iter().find_map(|(other_id, other_body)| {
                                    declarations(other_body)
                                        .into_iter()
                                        .find(|decl| {
                                            map_get(other_body, decl)
                                                .and_then(Value::as_array)
                                                .is_some_and(|args| {
                                                    args.iter().any(|a| {
                                                        map_get(a, "name")
                                                            .is_some_and(|n| py_str(n) == wanted)
                                                    })
                                                })
                                        })
                                        .map(|decl| (decl, other_id.clone()))
                                });
                                let Some((decl, other_id)) = found else {
                                    continue;
                                };
                                Value::Map(vec![(Value::from(decl), Value::from(other_id))])
                            }
                        }
                    };
                    let Some((pstate, pname)) = single(&item) else {
                        continue;
                    };
                    let pname = py_str(pname).into_owned();
                    if pstate == "sls" {
                        hinges = high
                            .ids
                            .iter()
                            .filter(|(_, b)| text(map_get(b, "__sls__")) == pname)
                            .flat_map(|(other_id, b)| {
                                declarations(b)
                                    .into_iter()
                                    .map(move |d| (other_id.clone(), d))
                            })
                            .collect();
                    } else {
                        hinges.push((pname.clone(), pstate.clone()));
                    }
                    dotted(&mut errors, &pstate, &pname);
                    for (name, target_state) in hinges.clone() {
                        let target_state = target_state
                            .split('.')
                            .next()
                            .unwrap_or_default()
                            .to_owned();
                        match key.as_str() {
                            "prereq_in" => {
                                let req = Value::Map(vec![(
                                    Value::from(target_state.as_str()),
                                    Value::from(name.as_str()),
                                )]);
                                add(&mut extend, id, &state, "prerequired", req, None);
                            }
                            "prereq" => {
                                for (ext_id, req_state) in
                                    find_name(&name, &target_state, &high.ids, true)
                                {
                                    add(
                                        &mut extend,
                                        &ext_id,
                                        &req_state,
                                        "prerequired",
                                        me(),
                                        None,
                                    );
                                }
                                continue;
                            }
                            "use_in" => {
                                for (ext_id, req_state) in
                                    find_name(&name, &target_state, &high.ids, true)
                                {
                                    let own = declared(&ext_id, &target_state);
                                    let args = usable(id, &state, &own);
                                    push(&mut extend, &ext_id, &req_state, args);
                                }
                                continue;
                            }
                            "use" => {
                                for (ext_id, req_state) in
                                    find_name(&name, &target_state, &high.ids, true)
                                {
                                    let own = declared(id, &state);
                                    let args = usable(&ext_id, &req_state, &own);
                                    push(&mut extend, id, &state, args);
                                }
                                continue;
                            }
                            _ => {}
                        }
                        add(&mut extend, &name, &target_state, &rkey, me(), Some(body));
                    }
                }
            }
        }
    }
    high.extend = extend.into_iter().collect();
    let mut in_errors = reconcile_extend(high, true);
    errors.append(&mut in_errors);
    errors
}

/// Removes the excluded SLS files' IDs and the excluded IDs (Salt's `apply_exclude`).
pub(super) fn apply_exclude(high: &mut High) {
    let mut sls = Vec::new();
    let mut ids = Vec::new();
    for exclude in std::mem::take(&mut high.exclude) {
        match &exclude {
            Value::String(_) => sls.push(py_str(&exclude).into_owned()),
            Value::Map(pairs) if pairs.len() == 1 => match single(&exclude) {
                Some((key, value)) if key == "sls" => sls.push(py_str(value).into_owned()),
                Some((key, value)) if key == "id" => ids.push(py_str(value).into_owned()),
                _ => {}
            },
            _ => {}
        }
    }
    high.ids.retain(|id, body| {
        let of = text(map_get(body, "__sls__"));
        !ids.contains(id) && (of.is_empty() || !sls.iter().any(|pattern| fnmatch(&of, pattern)))
    });
}

/// One chunk per state declaration, name (`names`) and function, sorted (Salt's
/// `compile_high_data`).
pub(super) fn compile(high: &High) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    for (id, body) in &high.ids {
        if id.starts_with("__") {
            continue;
        }
        for (state, run) in body.as_map().into_iter().flatten() {
            let state = py_str(state).into_owned();
            if state.starts_with("__") {
                continue;
            }
            let mut funs: Vec<String> = Vec::new();
            let mut names: Vec<Value> = Vec::new();
            let mut chunk = Chunk {
                state: state.clone(),
                name: id.clone(),
                fun: String::new(),
                id: id.clone(),
                sls: text(map_get(body, "__sls__")),
                env: text(map_get(body, "__env__")),
                included_from: map_get(body, "__sls_included_from__")
                    .and_then(Value::as_array)
                    .map(|from| from.iter().map(|s| py_str(s).into_owned()).collect())
                    .unwrap_or_default(),
                args: Vec::new(),
                order: 0.0,
            };
            for arg in run.as_array().into_iter().flatten() {
                match arg {
                    Value::String(_) => {
                        let fun = py_str(arg).into_owned();
                        if !funs.contains(&fun) {
                            funs.push(fun);
                        }
                    }
                    Value::Map(pairs) => {
                        for (key, value) in pairs {
                            let key = py_str(key).into_owned();
                            match key.as_str() {
                                "names" => {
                                    for name in value.as_array().into_iter().flatten() {
                                        if !names.contains(name) {
                                            names.push(name.clone());
                                        }
                                    }
                                }
                                "state" => {}
                                "name" => {
                                    chunk.name = match value {
                                        Value::String(_) => py_str(value).into_owned(),
                                        _ => id.clone(),
                                    }
                                }
                                _ => chunk.set(&key, value.clone()),
                            }
                        }
                    }
                    _ => {}
                }
            }
            if names.is_empty() {
                for fun in &funs {
                    chunks.push(Chunk {
                        fun: fun.clone(),
                        ..chunk.clone()
                    });
                }
                continue;
            }
            for (index, entry) in names.iter().enumerate() {
                let mut live = chunk.clone();
                match single(entry) {
                    Some((name, extra)) if entry.is_map() => {
                        live.name = name;
                        for item in extra.as_array().into_iter().flatten() {
                            for (key, value) in item.as_map().into_iter().flatten() {
                                live.set(&py_str(key), value.clone());
                            }
                        }
                    }
                    _ => live.name = py_str(entry).into_owned(),
                }
                live.set("name_order", Value::from(index + 1));
                for fun in &funs {
                    chunks.push(Chunk {
                        fun: fun.clone(),
                        ..live.clone()
                    });
                }
            }
        }
    }
    order_chunks(&mut chunks);
    chunks
}

/// Sorts chunks by `order` then module, name and function, as Salt's `order_chunks`: integer
/// orders as given, `first` before all, `last` and negative orders after all, no order after
/// every numbered one; `names` keep their order within a declaration.
pub(super) fn order_chunks(chunks: &mut [Chunk]) {
    let number = |value: &Value| value.as_i64().map(|i| i as f64).or_else(|| value.as_f64());
    let mut cap = 1.0_f64;
    for chunk in chunks.iter() {
        if let Some(order) = chunk.get("order").and_then(Value::as_i64) {
            let order = order as f64;
            if order > cap - 1.0 && order > 0.0 {
                cap = order + 100.0;
            }
        }
    }
    for chunk in chunks.iter_mut() {
        let mut order = match chunk.get("order") {
            None => cap,
            Some(value) => match number(value) {
                Some(order) => order,
                None if value.as_str() == Some("last") => cap + 1_000_000.0,
                None if value.as_str() == Some("first") => 0.0,
                None => cap,
            },
        };
        if let Some(index) = chunk.args.iter().position(|(k, _)| k == "name_order") {
            let (_, name_order) = chunk.args.remove(index);
            order += number(&name_order).unwrap_or_default() / 10000.0;
        }
        if order < 0.0 {
            order += cap + 1_000_000.0;
        }
        chunk.order = order;
    }
    chunks.sort_by(|a, b| {
        a.order.total_cmp(&b.order).then_with(|| {
            format!("{}{}{}", a.state, a.name, a.fun)
                .cmp(&format!("{}{}{}", b.state, b.name, b.fun))
        })
    });
}
