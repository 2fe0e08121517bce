//! Running compiled chunks as Salt 3007's `State.call_chunks` does: in order, each after its
//! requisites (`require`, `watch` with `mod_watch`, `onchanges`, `onfail`, `prereq` and their
//! `_any`/`_all` forms), `unless`/`onlyif`/`creates` checked first, results keyed by Salt's
//! tags and numbered by `__run_num__`, an event per state when asked.
//!
//! Results are kept as Salt's return maps, in Salt's key order, because they are the job's
//! return as they are.

use std::collections::HashSet;

use indexmap::IndexMap;

use super::high::{Chunk, internal, single};
use super::{StateCall, StateContext, StateError, StateResult};
use crate::event::{Value, map_get, map_set};
use crate::py::fnmatch::fnmatch;
use crate::py::value::{py_str, truthy};

/// How a run goes.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Test mode: nothing changes.
    pub test: bool,
    /// Fire `salt/job/<jid>/prog/<id>/<n>` after each state (`state_events`).
    pub state_events: bool,
    /// A run without a master (`salt-call --local`): no events at all.
    pub local: bool,
    /// Stop at the first failure (`failhard` in the minion configuration).
    pub failhard: bool,
}

/// Where a chunk's requisites leave it (Salt's `check_requisite` statuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Met,
    Unmet,
    Fail,
    Change,
    Pre,
    OnFail,
    OnChanges,
}

/// The requisite kinds a chunk may wait on, in Salt's order.
const KINDS: &[&str] = &[
    "require",
    "require_any",
    "watch",
    "watch_any",
    "prereq",
    "onfail",
    "onfail_any",
    "onfail_all",
    "onchanges",
    "onchanges_any",
];

/// The requisites found for a chunk: kind → chunk indexes.
type Reqs = IndexMap<&'static str, Vec<usize>>;

/// How many requisites may run inside one another (a chain `a` requires `b` requires `c` …):
/// each is a nested call on the runtime's stack, which a few thousand would overflow.
const MAX_NESTING: usize = 200;

/// The stack a thread running states needs for [`MAX_NESTING`] nested requisites, with room to
/// spare (an unoptimised build takes about 25 KiB a level); the daemons' workers get it.
pub const STATE_STACK: usize = 8 << 20;
/// One run over a list of chunks.
pub(super) struct Runner<'a> {
    ctx: &'a StateContext,
    options: RunOptions,
    chunks: Vec<Chunk>,
    /// Chunks currently being run under `prereq` (Salt's `__prereq__`).
    prereq: HashSet<usize>,
    /// Chunks reached as the target of a `prerequired` (Salt's `__prerequired__`).
    prerequired: HashSet<usize>,
    running: IndexMap<String, Value>,
    /// Test-mode results of `prereq` runs.
    pre: IndexMap<String, Value>,
    active: HashSet<String>,
    run_num: u64,
    failhard: bool,
    /// Requisites being run inside one another now (each one a nested call).
    nesting: usize,
}

impl<'a> Runner<'a> {
    pub(super) fn new(ctx: &'a StateContext, options: RunOptions, chunks: Vec<Chunk>) -> Self {
        Self {
            ctx,
            options,
            chunks,
            prereq: HashSet::new(),
            prerequired: HashSet::new(),
            running: IndexMap::new(),
            pre: IndexMap::new(),
            active: HashSet::new(),
            run_num: 0,
            failhard: false,
            nesting: 0,
        }
    }

    /// Runs every chunk; the results by tag (Salt's `call_chunks`).
    pub(super) async fn run(mut self) -> IndexMap<String, Value> {
        self.call_chunks().await;
        self.call_listen().await;
        self.running
    }

    /// Runs every chunk not run yet, in order (Salt's `call_chunks`).
    async fn call_chunks(&mut self) {
        for index in 0..self.chunks.len() {
            if self.failhard {
                break;
            }
            let tag = self.chunks[index].tag();
            if !self.running.contains_key(&tag) {
                Box::pin(self.call_chunk(index, 0)).await;
                if self.check_failhard(index) {
                    break;
                }
            }
            self.active.clear();
        }
    }

    /// After the run, the `mod_watch` of each state that `listen`s to (or is the target of a
    /// `listen_in` from) a state that changed, under the ID `listener_<id>`; a listen naming no
    /// state is a failed `Listen_Error` result (Salt's `call_listen`).
    async fn call_listen(&mut self) {
        // (module, ID, name or "lookup") of a listener → the states it listens to.
        let mut listeners: Vec<((String, String, String), Vec<Value>)> = Vec::new();
        for chunk in &self.chunks {
            if let Some(Value::Array(listen)) = chunk.get("listen") {
                let key = (chunk.state.clone(), chunk.id.clone(), chunk.name.clone());
                listeners.push((key, listen.clone()));
            }
            for entry in chunk
                .get("listen_in")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                for (module, id) in entry.as_map().into_iter().flatten() {
                    let key = (
                        py_str(module).into_owned(),
                        py_str(id).into_owned(),
                        "lookup".to_owned(),
                    );
                    let me = Value::Map(vec![(
                        Value::from(chunk.state.as_str()),
                        Value::from(chunk.id.as_str()),
                    )]);
                    listeners.push((key, vec![me]));
                }
            }
        }
        // Salt's `lval in cref`: the value is the chunk's ID or name (or module).
        let refers = |chunk: &Chunk, module: &str, value: &str| {
            chunk.state == module
                && (chunk.state == value || chunk.id == value || chunk.name == value)
        };
        let mut watchers: Vec<Chunk> = Vec::new();
        let mut errors: IndexMap<String, Value> = IndexMap::new();
        let error = |errors: &mut IndexMap<String, Value>, module: &str, id: &str| {
            errors.insert(
                format!("Listen_Error_|-listen_{id}_|-listen_{module}_|-Listen_Error"),
                Value::Map(vec![
                    (
                        Value::from("comment"),
                        Value::from(format!("Referenced state {module}: {id} does not exist")),
                    ),
                    (
                        Value::from("name"),
                        Value::from(format!("listen_{module}:{id}")),
                    ),
                    (Value::from("result"), Value::Boolean(false)),
                    (Value::from("changes"), Value::Map(Vec::new())),
                ]),
            );
        };
        for ((module, id, _), listened) in &listeners {
            for listen_to in listened {
                let listen_to = match listen_to {
                    Value::Map(_) => listen_to.clone(),
                    other => {
                        let wanted = py_str(other);
                        let Some(chunk) = self
                            .chunks
                            .iter()
                            .rev()
                            .find(|c| c.id == wanted || c.name == wanted)
                        else {
                            continue;
                        };
                        Value::Map(vec![(
                            Value::from(chunk.state.as_str()),
                            Value::from(chunk.id.as_str()),
                        )])
                    }
                };
                for (lkey, lval) in listen_to.as_map().into_iter().flatten() {
                    let (lkey, lval) = (py_str(lkey).into_owned(), py_str(lval).into_owned());
                    if !self.chunks.iter().any(|c| refers(c, &lkey, &lval)) {
                        error(&mut errors, &lkey, &lval);
                        continue;
                    }
                    let changed = self
                        .chunks
                        .iter()
                        .filter(|c| refers(c, &lkey, &lval))
                        .any(|c| {
                            self.running
                                .get(&c.tag())
                                .and_then(|ret| map_get(ret, "changes"))
                                .is_some_and(truthy)
                        });
                    if !changed {
                        continue;
                    }
                    if !self.chunks.iter().any(|c| refers(c, module, id)) {
                        error(&mut errors, module, id);
                        continue;
                    }
                    for chunk in self.chunks.iter().filter(|c| refers(c, module, id)) {
                        let mut low = chunk.clone();
                        low.set("sfun", Value::from(chunk.fun.as_str()));
                        low.fun = "mod_watch".to_owned();
                        low.id = format!("listener_{}", chunk.id);
                        low.args
                            .retain(|(key, _)| !super::high::REQUISITES.contains(&key.as_str()));
                        watchers.push(low);
                    }
                }
            }
        }
        let mut listening = Runner::new(self.ctx, self.options.clone(), watchers);
        listening.run_num = self.run_num;
        listening.call_chunks().await;
        self.run_num = listening.run_num;
        self.running.extend(listening.running);
        for (tag, mut ret) in errors {
            if let Value::Map(entries) = &mut ret {
                entries.push((Value::from("__run_num__"), Value::from(self.run_num)));
            }
            self.run_num += 1;
            self.running.insert(tag, ret);
        }
    }

    /// Runs chunk `index` with its requisites only (`state.sls_id`); the results by tag.
    pub(super) async fn run_one(mut self, index: usize) -> IndexMap<String, Value> {
        Box::pin(self.call_chunk(index, 0)).await;
        self.running
    }

    /// Runs the first chunk alone, without requisites (`state.single`).
    pub(super) async fn call_alone(mut self) -> Value {
        self.call(0, None).await
    }

    fn check_failhard(&self, index: usize) -> bool {
        if self.options.test {
            return false;
        }
        let low = &self.chunks[index];
        let failhard = low.get("failhard").map_or(self.options.failhard, truthy);
        match self.running.get(&low.tag()) {
            Some(ret) if failhard => map_get(ret, "result") == Some(&Value::Boolean(false)),
            _ => false,
        }
    }

    /// The requisite entries of `kind` declared by chunk `index`, as `(module or id or sls,
    /// target)`.
    fn declared(&self, index: usize, kind: &str) -> Vec<(String, Value)> {
        let Some(Value::Array(list)) = self.chunks[index].get(kind) else {
            return Vec::new();
        };
        list.iter()
            .filter_map(|req| match req {
                Value::Map(_) => single(req).map(|(key, value)| {
                    // Salt trims a function off the module (`cmd.run: x` is `cmd: x`).
                    let key = key.split('.').next().unwrap_or_default().to_owned();
                    (key, value.clone())
                }),
                other => Some(("id".to_owned(), other.clone())),
            })
            .collect()
    }

    /// The chunks a requisite `(key, target)` names.
    fn matching(&self, key: &str, target: &Value) -> Vec<usize> {
        let target = py_str(target).into_owned();
        self.chunks
            .iter()
            .enumerate()
            .filter(|(_, chunk)| {
                if key == "sls" {
                    fnmatch(&chunk.sls, &target) || chunk.included_from.contains(&target)
                } else {
                    (fnmatch(&chunk.name, &target) || fnmatch(&chunk.id, &target))
                        && (key == "id" || chunk.state == key)
                }
            })
            .map(|(index, _)| index)
            .collect()
    }

    /// Salt's `check_requisite`.
    fn check_requisite(&mut self, index: usize, pre: bool) -> (Status, Reqs) {
        if super::mod_watch(&self.chunks[index].state, &self.chunks[index].fun).is_none() {
            let low = &mut self.chunks[index];
            for (watch, require) in [("watch", "require"), ("watch_any", "require_any")] {
                let Some(position) = low.args.iter().position(|(k, _)| k == watch) else {
                    continue;
                };
                let (_, watched) = low.args.remove(position);
                let watched = watched.as_array().cloned().unwrap_or_default();
                match low.args.iter_mut().find(|(k, _)| k == require) {
                    Some((_, Value::Array(list))) => list.extend(watched),
                    _ => low.set(require, Value::Array(watched)),
                }
            }
        }
        let present = KINDS
            .iter()
            .chain(&["prerequired"])
            .any(|kind| self.chunks[index].get(kind).is_some());
        if !present {
            return (Status::Met, Reqs::new());
        }
        let mut reqs: Reqs = KINDS.iter().map(|kind| (*kind, Vec::new())).collect();
        if pre {
            reqs.insert("prerequired", Vec::new());
        }
        let kinds: Vec<&'static str> = reqs.keys().copied().collect();
        for kind in kinds {
            for (key, target) in self.declared(index, kind) {
                if target.is_nil() {
                    continue;
                }
                let found = self.matching(&key, &target);
                if found.is_empty() {
                    return (Status::Unmet, Reqs::new());
                }
                reqs.get_mut(kind).expect("listed").extend(found);
            }
        }
        let mut stats: HashSet<&str> = HashSet::new();
        for (kind, found) in &reqs {
            let run_dict = if kind.starts_with("prereq") && !kind.starts_with("prerequired") {
                &self.pre
            } else {
                &self.running
            };
            let mut req_stats: HashSet<&str> = HashSet::new();
            for &req in found {
                let Some(ret) = run_dict.get(&self.chunks[req].tag()) else {
                    req_stats.insert("unmet");
                    continue;
                };
                let result = map_get(ret, "result");
                let changed = map_get(ret, "changes").is_some_and(truthy);
                if kind.starts_with("onfail") {
                    if result == Some(&Value::Boolean(true)) {
                        req_stats.insert("onfail");
                        continue;
                    }
                } else if result == Some(&Value::Boolean(false)) {
                    req_stats.insert("fail");
                    continue;
                }
                if kind.starts_with("onchanges") {
                    req_stats.insert(if changed { "onchangesmet" } else { "onchanges" });
                    continue;
                }
                if kind.starts_with("watch") && changed {
                    req_stats.insert("change");
                    continue;
                }
                let is_none = result.is_none_or(Value::is_nil);
                if kind.starts_with("prereq") && !kind.starts_with("prerequired") {
                    req_stats.insert(if is_none { "premet" } else { "pre" });
                } else if kind.starts_with("prereq") && !is_none {
                    // A `prerequired` whose state ran: nothing to say.
                } else if map_get(ret, "__state_ran__").is_none_or(truthy) {
                    req_stats.insert("met");
                }
            }
            if kind.ends_with("_any") || *kind == "onfail" {
                if req_stats.contains("met") || req_stats.contains("change") {
                    req_stats.remove("fail");
                }
                if req_stats.contains("onchangesmet") {
                    req_stats.remove("onchanges");
                    req_stats.remove("fail");
                }
                if req_stats.contains("onfail") && req_stats.contains("met") {
                    req_stats.remove("onfail");
                }
            }
            if kind.ends_with("_all") && req_stats.contains("onfail") {
                req_stats.remove("met");
            }
            stats.extend(req_stats);
        }
        let status = if stats.contains("unmet") {
            Status::Unmet
        } else if stats.contains("fail") {
            Status::Fail
        } else if stats.contains("pre") {
            if stats.contains("premet") {
                Status::Met
            } else {
                Status::Pre
            }
        } else if stats.contains("onfail") && !stats.contains("onchangesmet") {
            Status::OnFail
        } else if stats.contains("onchanges") && !stats.contains("onchangesmet") {
            Status::OnChanges
        } else if stats.contains("change") {
            Status::Change
        } else if stats.contains("onfail") {
            Status::OnFail
        } else {
            Status::Met
        };
        (status, reqs)
    }

    /// A result for a chunk that did not run: Salt's fake timing, then the chunk's keys.
    fn not_run(&mut self, index: usize, result: bool, comment: String, ran: Option<bool>) -> Value {
        let (start_time, duration) = fake_duration();
        let mut ret = vec![
            (Value::from("changes"), Value::Map(Vec::new())),
            (Value::from("result"), Value::Boolean(result)),
            (Value::from("duration"), duration),
            (Value::from("start_time"), start_time),
            (Value::from("comment"), Value::from(comment)),
        ];
        if let Some(ran) = ran {
            ret.push((Value::from("__state_ran__"), Value::Boolean(ran)));
        }
        ret.push((Value::from("__run_num__"), Value::from(self.run_num)));
        self.chunk_keys(index, &mut ret);
        Value::Map(ret)
    }

    fn chunk_keys(&self, index: usize, ret: &mut Vec<(Value, Value)>) {
        let low = &self.chunks[index];
        map_set(ret, Value::from("__sls__"), Value::from(low.sls.as_str()));
        map_set(ret, Value::from("__id__"), Value::from(low.id.as_str()));
        map_set(ret, Value::from("name"), Value::from(low.name.as_str()));
    }

    /// The failure of chunk `index`, whose requisites go deeper than [`MAX_NESTING`].
    fn too_deep(&mut self, index: usize, under_prereq: bool) {
        let comment = format!(
            "The requisites of this state go {MAX_NESTING} states deep, more than halite follows; split the chain or drop requisites that other requisites already imply"
        );
        let ret = self.not_run(index, false, comment, None);
        let tag = self.chunks[index].tag();
        if under_prereq {
            self.pre.insert(tag, ret);
        } else {
            self.running.insert(tag, ret);
        }
        self.run_num += 1;
    }

    /// "Recursive requisite found" for chunk `index`.
    fn recursive(&mut self, index: usize) {
        let mut ret = vec![
            (Value::from("changes"), Value::Map(Vec::new())),
            (Value::from("result"), Value::Boolean(false)),
            (
                Value::from("comment"),
                Value::from("Recursive requisite found"),
            ),
            (Value::from("__run_num__"), Value::from(self.run_num)),
        ];
        self.chunk_keys(index, &mut ret);
        self.running
            .insert(self.chunks[index].tag(), Value::Map(ret));
    }

    /// Salt's `call_chunk`: the requisites of chunk `index` first, then the chunk.
    async fn call_chunk(&mut self, index: usize, depth: u32) {
        let tag = self.chunks[index].tag();
        if self.chunks[index].get("prerequired").is_none() {
            self.active.insert(tag.clone());
        }
        let under_prereq = self.prereq.contains(&index);
        let (status, reqs) = self.check_requisite(index, !under_prereq);
        match status {
            Status::Unmet => {
                if Box::pin(self.run_unmet(index, depth, under_prereq)).await {
                    return;
                }
            }
            Status::Met => self.store(index, under_prereq).await,
            Status::Fail => self.requisite_failed(index, &tag, &reqs),
            Status::Change if !under_prereq => {
                let ret = self.call(index, None).await;
                let watch = !map_get(&ret, "changes").is_some_and(truthy)
                    && !map_get(&ret, "skip_watch").is_some_and(truthy);
                let ret = if watch {
                    self.call(index, Some(&reqs)).await
                } else {
                    ret
                };
                self.running.insert(tag.clone(), ret);
            }
            Status::Pre => {
                let ret = self.not_run(index, true, "No changes detected".to_owned(), None);
                self.running.insert(tag.clone(), ret.clone());
                self.pre.insert(tag.clone(), ret);
                self.run_num += 1;
            }
            Status::OnFail | Status::OnChanges => {
                let comment = if status == Status::OnFail {
                    "State was not run because onfail req did not change"
                } else {
                    "State was not run because none of the onchanges reqs changed"
                };
                let ret = self.not_run(index, true, comment.to_owned(), Some(false));
                self.running.insert(tag.clone(), ret);
                self.run_num += 1;
            }
            Status::Change => self.store(index, under_prereq).await,
        }
        if let Some(ret) = self.running.get(&tag).cloned() {
            self.event(&ret, self.chunks[index].get("fire_event").cloned())
                .await;
        }
    }

    /// Runs chunk `index` and keeps its result (in `pre` under `prereq`).
    async fn store(&mut self, index: usize, under_prereq: bool) {
        let ret = self.call(index, None).await;
        let tag = self.chunks[index].tag();
        if under_prereq {
            self.pre.insert(tag, ret);
        } else {
            self.running.insert(tag, ret);
        }
    }

    /// The "unmet" branch of Salt's `call_chunk`: report requisites that name nothing, else
    /// run the requisites, then the chunk again. True when the caller has nothing left to do.
    async fn run_unmet(&mut self, index: usize, depth: u32, under_prereq: bool) -> bool {
        let tag = self.chunks[index].tag();
        if self.nesting >= MAX_NESTING {
            // Each requisite runs inside the one that needs it: a longer chain would overflow
            // the stack and take the minion down. Checked before any requisite is marked, so
            // the ones below still run in their turn.
            self.too_deep(index, under_prereq);
            return true;
        }
        let mut kinds: Vec<&str> = KINDS.to_vec();
        if !under_prereq {
            kinds.push("prerequired");
        }
        let mut lost: IndexMap<&str, Vec<(String, Value)>> = IndexMap::new();
        let mut reqs = Vec::new();
        for kind in kinds {
            let entry = lost.entry(kind).or_default();
            for (key, target) in self.declared(index, kind) {
                if target.is_nil() {
                    entry.push((key, target));
                    continue;
                }
                let found = self.matching(&key, &target);
                for &req in &found {
                    if kind == "prereq" {
                        self.prereq.insert(req);
                    } else if kind == "prerequired" {
                        self.prerequired.insert(req);
                    }
                }
                if found.is_empty() {
                    entry.push((key, target));
                }
                reqs.extend(found);
            }
        }
        if lost.values().any(|l| !l.is_empty()) {
            let mut comment = "The following requisites were not found:\n".to_owned();
            for (kind, missing) in &lost {
                if missing.is_empty() {
                    continue;
                }
                comment.push_str(&format!("{}{kind}:\n", " ".repeat(19)));
                for (key, target) in missing {
                    comment.push_str(&format!("{}{key}: {}\n", " ".repeat(23), py_str(target)));
                }
            }
            let ret = self.not_run(index, false, comment, None);
            if under_prereq {
                self.pre.insert(tag.clone(), ret.clone());
            } else {
                self.running.insert(tag.clone(), ret.clone());
            }
            self.run_num += 1;
            self.event(&ret, self.chunks[index].get("fire_event").cloned())
                .await;
            return true;
        }
        let mut last = None;
        for req in reqs {
            last = Some(req);
            let ctag = self.chunks[req].tag();
            if self.running.contains_key(&ctag) {
                continue;
            }
            if self.active.contains(&ctag) {
                if self.prerequired.contains(&req) {
                    // A prereq loop: run this chunk in test mode under its prereq.
                    if !self.pre.contains_key(&tag) {
                        self.prereq.insert(index);
                        let ret = self.call(index, None).await;
                        self.pre.insert(ctag, ret);
                    }
                    return true;
                }
                self.recursive(index);
                self.run_num += 1;
                if let Some(ret) = self.running.get(&tag).cloned() {
                    self.event(&ret, self.chunks[index].get("fire_event").cloned())
                        .await;
                }
                return true;
            }
            self.nesting += 1;
            Box::pin(self.call_chunk(req, 0)).await;
            self.nesting -= 1;
            if self.check_failhard(req) {
                self.failhard = true;
                return true;
            }
        }
        if self.prereq.contains(&index) {
            let (status, _) = self.check_requisite(index, false);
            let mut ret = self.call(index, None).await;
            if !map_get(&ret, "changes").is_some_and(truthy)
                && status == Status::Change
                && let Value::Map(entries) = &mut ret
            {
                map_set(
                    entries,
                    Value::from("changes"),
                    Value::Map(vec![(Value::from("watch"), Value::from("watch"))]),
                );
                map_set(entries, Value::from("result"), Value::Nil);
            }
            self.pre.insert(tag.clone(), ret);
        } else if depth + 1 >= 20 {
            self.recursive(index);
        } else {
            Box::pin(self.call_chunk(index, depth + 1)).await;
        }
        if last.is_some_and(|req| self.check_failhard(req)) {
            self.failhard = true;
        }
        true
    }

    /// The "fail" branch of Salt's `call_chunk`.
    fn requisite_failed(&mut self, index: usize, tag: &str, reqs: &Reqs) {
        if let Some(mut ret) = self.pre.get(tag).cloned() {
            // The test-mode run under a prereq: its changes never happened.
            if let Value::Map(entries) = &mut ret {
                if map_get(&Value::Map(entries.clone()), "changes").is_some_and(truthy) {
                    map_set(entries, Value::from("changes"), Value::Map(Vec::new()));
                }
                map_set(
                    entries,
                    Value::from("__run_num__"),
                    Value::from(self.run_num),
                );
                let mut keys = std::mem::take(entries);
                self.chunk_keys(index, &mut keys);
                *entries = keys;
            }
            self.running.insert(tag.to_owned(), ret);
        } else {
            let mut failed: Vec<String> = Vec::new();
            for found in reqs.values() {
                for &req in found {
                    let rtag = self.chunks[req].tag();
                    let ret = self.pre.get(&rtag).or_else(|| self.running.get(&rtag));
                    if ret.is_some_and(|r| map_get(r, "result") == Some(&Value::Boolean(false))) {
                        let key = format!("{}.{}", self.chunks[req].sls, self.chunks[req].id);
                        if !failed.contains(&key) {
                            failed.push(key);
                        }
                    }
                }
            }
            let comment = format!("One or more requisite failed: {}", failed.join(", "));
            let ret = self.not_run(index, false, comment, None);
            self.running.insert(tag.to_owned(), ret.clone());
            self.pre.insert(tag.to_owned(), ret);
        }
        self.run_num += 1;
    }

    /// Salt's `State.call`: [`Runner::call_once`], again while a `retry` asks for it.
    async fn call(&mut self, index: usize, watch_reqs: Option<&Reqs>) -> Value {
        let under_prereq = self.prereq.contains(&index);
        let mut ret = self.call_once(index, watch_reqs).await;
        let low = &self.chunks[index];
        let Some(retry) = low.get("retry").filter(|_| low.get("parallel").is_none()) else {
            return ret;
        };
        if under_prereq {
            return ret;
        }
        let retry = Retry::from(retry);
        if self.options.test {
            if let Value::Map(entries) = &mut ret {
                let comment = map_get(&Value::Map(entries.clone()), "comment")
                    .filter(|c| truthy(c))
                    .map(|c| py_str(c).into_owned())
                    .unwrap_or_default();
                let note = format!(
                    "The state would be retried every {} seconds (with a splay of up to {} seconds) a maximum of {} times or until a result of {} is returned",
                    retry.interval,
                    retry.splay,
                    retry.attempts,
                    if retry.until { "True" } else { "False" }
                );
                map_set(
                    entries,
                    Value::from("comment"),
                    Value::from(format!("{comment}  {note}")),
                );
            }
            return ret;
        }
        // Every attempt's result, then Salt's nesting of them folded from the last.
        let mut attempts = vec![ret];
        let mut pauses = Vec::new();
        while map_get(&attempts[attempts.len() - 1], "result") != Some(&Value::Boolean(retry.until))
            && retry.attempts > attempts.len() as i64
        {
            let pause = retry.interval + retry.splay_now();
            tokio::time::sleep(std::time::Duration::from_secs(pause.max(0).unsigned_abs())).await;
            pauses.push(pause);
            attempts.push(self.call_once(index, watch_reqs).await);
        }
        let mut ret = attempts.pop().expect("one attempt at least");
        while let Some(previous) = attempts.pop() {
            let pause = pauses.pop().unwrap_or_default();
            let field = |r: &Value, key| map_get(r, key).cloned().unwrap_or(Value::Nil);
            let result = match field(&previous, "result") {
                Value::Boolean(true) => "True",
                Value::Boolean(false) => "False",
                _ => "None",
            };
            let comment = |r: &Value| {
                let c = field(r, "comment");
                if truthy(&c) {
                    py_str(&c).into_owned()
                } else {
                    String::new()
                }
            };
            let duration = |r: &Value| field(r, "duration").as_f64().unwrap_or_default();
            let total = duration(&ret) + duration(&previous) + (pause * 1000) as f64;
            let line = format!(
                "Attempt {}: Returned a result of \"{result}\", with the following comment: \"{}\"",
                attempts.len() + 1,
                comment(&previous)
            );
            if let Value::Map(entries) = &mut ret {
                map_set(
                    entries,
                    Value::from("comment"),
                    Value::from(format!("{line}\n{}", comment(&Value::Map(entries.clone())))),
                );
                map_set(entries, Value::from("duration"), Value::F64(total));
                if attempts.is_empty() {
                    map_set(
                        entries,
                        Value::from("start_time"),
                        field(&previous, "start_time"),
                    );
                }
            }
        }
        ret
    }

    /// One call of the state: checks, then the state function (or its `mod_watch` when
    /// `watch_reqs` is given), timed and numbered.
    async fn call_once(&mut self, index: usize, watch_reqs: Option<&Reqs>) -> Value {
        let started = jiff::ZonedDateTime::now();
        let clock = std::time::Instant::now();
        let low = self.chunks[index].clone();
        let under_prereq = self.prereq.contains(&index);
        let full = format!("{}.{}", low.state, low.fun);
        let Some((fun, behaviour, required)) = resolve(&low, watch_reqs.is_some()) else {
            let comment = format!(
                "State '{full}' was not found in SLS '{}'\nReason: '{full}' is not available.\n",
                low.sls
            );
            let ret = Value::Map(vec![
                (Value::from("result"), Value::Boolean(false)),
                (Value::from("name"), Value::from(low.name.as_str())),
                (Value::from("changes"), Value::Map(Vec::new())),
                (Value::from("comment"), Value::from(comment)),
                (Value::from("__run_num__"), Value::from(self.run_num)),
            ]);
            self.run_num += 1;
            return ret;
        };
        let missing: Vec<String> = required
            .iter()
            .filter(|param| low.get(param).is_none())
            .map(|param| format!("Missing parameter {param} for state {full}\n"))
            .collect();
        if !missing.is_empty() {
            let ret = Value::Map(vec![
                (Value::from("result"), Value::Boolean(false)),
                (Value::from("name"), Value::from(low.name.as_str())),
                (Value::from("changes"), Value::Map(Vec::new())),
                (Value::from("comment"), Value::from(missing.concat())),
                (Value::from("__run_num__"), Value::from(self.run_num)),
            ]);
            self.run_num += 1;
            return ret;
        }
        let test = self.options.test || under_prereq;
        let mut ret: Vec<(Value, Value)> = vec![
            (Value::from("result"), Value::Boolean(false)),
            (Value::from("name"), Value::from(low.name.as_str())),
            (Value::from("changes"), Value::Map(Vec::new())),
        ];
        let mut skip = false;
        if ["unless", "onlyif", "creates"]
            .iter()
            .any(|k| low.get(k).is_some())
        {
            let check = super::checks::run_check(self.ctx, &low).await;
            skip = check.result;
            map_set(
                &mut ret,
                Value::from("result"),
                Value::Boolean(check.result),
            );
            map_set(&mut ret, Value::from("comment"), Value::from(check.comment));
            self.chunk_keys(index, &mut ret);
            if let Some(skip_watch) = check.skip_watch {
                map_set(
                    &mut ret,
                    Value::from("skip_watch"),
                    Value::Boolean(skip_watch),
                );
            }
        }
        if !skip {
            let call = StateCall {
                id: low.id.clone(),
                name: low.name.clone(),
                fun,
                sls: low.sls.clone(),
                saltenv: low
                    .get("saltenv")
                    .map(|env| py_str(env).into_owned())
                    .unwrap_or_else(|| {
                        if low.env.is_empty() {
                            "base".to_owned()
                        } else {
                            low.env.clone()
                        }
                    }),
                args: low
                    .args
                    .iter()
                    .filter(|(key, _)| !internal(key))
                    .cloned()
                    .collect(),
                test,
                watch_changes: watch_reqs
                    .map(|reqs| self.watch_changes(reqs))
                    .unwrap_or_default(),
            };
            let result = behaviour(&call, self.ctx).await;
            ret = result_map(&call, result);
        }
        if let Some(commands) = low.get("check_cmd") {
            let (result, comment) = super::checks::check_cmd(self.ctx, commands).await;
            map_set(&mut ret, Value::from("result"), Value::Boolean(result));
            self.chunk_keys(index, &mut ret);
            if let Some(comment) = comment {
                map_set(&mut ret, Value::from("comment"), Value::from(comment));
            }
        }
        if under_prereq {
            self.prereq.remove(&index);
            return Value::Map(ret);
        }
        map_set(&mut ret, Value::from("__sls__"), sls_value(&low));
        map_set(
            &mut ret,
            Value::from("__run_num__"),
            Value::from(self.run_num),
        );
        self.run_num += 1;
        map_set(
            &mut ret,
            Value::from("start_time"),
            Value::from(time_of_day(&started)),
        );
        map_set(
            &mut ret,
            Value::from("duration"),
            milliseconds(clock.elapsed()),
        );
        map_set(
            &mut ret,
            Value::from("__id__"),
            Value::from(low.id.as_str()),
        );
        Value::Map(ret)
    }

    /// `module: id` of each watched state that changed.
    fn watch_changes(&self, reqs: &Reqs) -> Vec<String> {
        reqs.get("watch")
            .into_iter()
            .flatten()
            .filter(|&&req| {
                self.running
                    .get(&self.chunks[req].tag())
                    .and_then(|ret| map_get(ret, "changes"))
                    .is_some_and(truthy)
            })
            .map(|&req| format!("{}: {}", self.chunks[req].state, self.chunks[req].id))
            .collect()
    }

    /// Fires the state's events (Salt's `State.event`): `salt/job/<jid>/prog/<id>/<n>` with
    /// `state_events`, `salt/state_result/<jid>/<id>/<name or custom>` with `fire_event`.
    async fn event(&self, ret: &Value, fire_event: Option<Value>) {
        let fire_event = fire_event.filter(truthy);
        if self.options.local || !(self.options.state_events || fire_event.is_some()) {
            return;
        }
        let id = self.ctx.config.id().unwrap_or_default();
        let jid = &self.ctx.jid;
        let mut data = vec![(Value::from("ret"), ret.clone())];
        let tag = match fire_event {
            Some(Value::Boolean(true)) => format!(
                "salt/state_result/{jid}/{id}/{}",
                map_get(ret, "name")
                    .map(|n| py_str(n).into_owned())
                    .unwrap_or_default()
            ),
            Some(custom) => format!("salt/state_result/{jid}/{id}/{}", py_str(&custom)),
            None => {
                data.push((Value::from("len"), Value::from(self.chunks.len())));
                format!(
                    "salt/job/{jid}/prog/{id}/{}",
                    map_get(ret, "__run_num__")
                        .map(|n| py_str(n).into_owned())
                        .unwrap_or_default()
                )
            }
        };
        let preload = Value::Map(vec![(Value::from("jid"), Value::from(jid.as_str()))]);
        if let Err(err) = self
            .ctx
            .call(
                "event.fire_master",
                vec![Value::Map(data), Value::from(tag.as_str())],
                vec![("preload".to_owned(), preload)],
            )
            .await
        {
            tracing::warn!("the state event {tag} was not fired: {err}");
        }
    }
}

/// A state's `retry`, with Salt's defaults for what is missing or of the wrong type.
struct Retry {
    until: bool,
    attempts: i64,
    interval: i64,
    splay: i64,
}

impl Retry {
    fn from(value: &Value) -> Self {
        let defaults = Self {
            until: true,
            attempts: 2,
            interval: 30,
            splay: 0,
        };
        match value {
            Value::Map(_) => {
                let int = |key, default| match map_get(value, key) {
                    Some(Value::Integer(i)) => i.as_i64().unwrap_or(default),
                    _ => default,
                };
                Self {
                    until: match map_get(value, "until") {
                        Some(Value::Boolean(b)) => *b,
                        _ => true,
                    },
                    attempts: int("attempts", 2),
                    interval: int("interval", 30),
                    splay: int("splay", 0),
                }
            }
            Value::Boolean(false) => Self {
                attempts: 0,
                ..defaults
            },
            _ => defaults,
        }
    }

    /// A random extra pause of up to `splay` seconds.
    fn splay_now(&self) -> i64 {
        if self.splay <= 0 {
            return 0;
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        i64::from(nanos) % (self.splay + 1)
    }
}

/// What runs for a chunk: its function's name as the state sees it, the behaviour and the
/// parameters it requires. A watching chunk runs its module's `mod_watch`; a listener's chunk
/// (function `mod_watch`) the `mod_watch` for the function it declared (`sfun`).
fn resolve(
    low: &Chunk,
    watching: bool,
) -> Option<(String, super::StateFn, &'static [&'static str])> {
    if low.fun == "mod_watch" {
        let sfun = low
            .get("sfun")
            .map(|f| py_str(f).into_owned())
            .unwrap_or_default();
        let mod_watch = super::mod_watch(&low.state, &sfun)?;
        return Some((format!("{}.{sfun}", low.state), mod_watch, &[]));
    }
    let function = super::find(&format!("{}.{}", low.state, low.fun))?;
    let behaviour = watching
        .then(|| super::mod_watch(&low.state, &low.fun))
        .flatten()
        .unwrap_or(function.run);
    Some((function.name.to_owned(), behaviour, function.required))
}

/// A chunk's `__sls__` in its result: none for `state.single`'s, which no SLS declared.
fn sls_value(low: &Chunk) -> Value {
    if low.sls.is_empty() {
        Value::Nil
    } else {
        Value::from(low.sls.as_str())
    }
}

/// A state function's outcome as Salt's return map; an error is Salt's failed state with the
/// exception's text.
fn result_map(call: &StateCall, result: Result<StateResult, StateError>) -> Vec<(Value, Value)> {
    let result = result.unwrap_or_else(|err| StateResult {
        name: call.name.clone(),
        result: Some(false),
        comment: format!("An exception occurred in this state: {err}"),
        changes: Value::Map(Vec::new()),
        warnings: Vec::new(),
    });
    let mut ret = vec![
        (Value::from("name"), Value::from(result.name)),
        (Value::from("changes"), result.changes),
        (
            Value::from("result"),
            result.result.map_or(Value::Nil, Value::Boolean),
        ),
        (Value::from("comment"), Value::from(result.comment)),
    ];
    if !result.warnings.is_empty() {
        ret.push((
            Value::from("warnings"),
            Value::Array(result.warnings.into_iter().map(Value::from).collect()),
        ));
    }
    ret
}

/// Local time of day as Python's `time.isoformat()`: microseconds only when not zero.
fn time_of_day(now: &jiff::ZonedDateTime) -> String {
    let micros = now.subsec_nanosecond() / 1000;
    if micros == 0 {
        now.strftime("%H:%M:%S").to_string()
    } else {
        format!("{}.{micros:06}", now.strftime("%H:%M:%S"))
    }
}

/// A duration in milliseconds with microsecond precision, as Salt reports it.
fn milliseconds(elapsed: std::time::Duration) -> Value {
    Value::F64(elapsed.as_micros() as f64 / 1000.0)
}

/// Salt's timing for a state that did not run: now, and next to nothing.
fn fake_duration() -> (Value, Value) {
    let clock = std::time::Instant::now();
    let start = jiff::ZonedDateTime::now();
    (
        Value::from(time_of_day(&start)),
        milliseconds(clock.elapsed()),
    )
}
