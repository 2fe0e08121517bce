//! A minion's `_return` load: what a job returned, as Salt's minion and Salt's `salt-call` send
//! it to the master (each with its own fields, in its own order, which the master's
//! `salt/job/<jid>/ret/<id>` event keeps, as Salt's master fires a return as it arrived).

use super::entry;
use crate::event::{Event, Value, map_get, map_set};
use crate::py::value::py_str;

/// The functions whose failed returns Salt's master announces state by state (`SUB_EVENT`):
/// `state.apply` is not among them.
const SUB_EVENT: &[&str] = &["state.highstate", "state.sls"];

/// The events Salt's master fires after the return `load` of a `state.sls` or
/// `state.highstate` job with a non-zero return code (`fire_ret_load`): for each failed state,
/// `<module>.<function>` with the state's result and the return code, then
/// `salt/job/<jid>/sub/<id>/error/<fun>` with the same data (its `_stamp` included, where the
/// first event put it) and the job's fields.
pub fn failed_state_events(load: &Value) -> Vec<Event> {
    let field = |key| map_get(load, key);
    let retcode = field("retcode").filter(|code| code.as_i64().is_some_and(|c| c != 0));
    let fun = field("fun").and_then(Value::as_str).unwrap_or_default();
    let (Some(retcode), true) = (retcode, SUB_EVENT.contains(&fun)) else {
        return Vec::new();
    };
    let (jid, id) = (field("jid").cloned(), field("id").cloned());
    let mut events = Vec::new();
    for (tag, result) in field("return")
        .and_then(Value::as_map)
        .into_iter()
        .flatten()
    {
        let Value::Map(mut data) = result.clone() else {
            continue;
        };
        if map_get(result, "result") != Some(&Value::Boolean(false)) {
            continue;
        }
        map_set(&mut data, Value::from("retcode"), retcode.clone());
        let tag = py_str(tag);
        let parts: Vec<&str> = tag.split("_|-").collect();
        let short = format!("{}.{}", parts[0], parts[parts.len() - 1]);
        let Ok(mut first) = Event::new(short.as_str(), Value::Map(data)) else {
            continue;
        };
        first.stamp();
        let Value::Map(mut data) = first.data.clone() else {
            continue;
        };
        for (key, value) in [
            ("jid", jid.clone().unwrap_or(Value::Nil)),
            ("id", id.clone().unwrap_or(Value::Nil)),
            ("success", Value::Boolean(false)),
            ("return", Value::from(format!("Error: {short}"))),
            ("fun", Value::from(fun)),
        ] {
            map_set(&mut data, Value::from(key), value);
        }
        if let Some(user) = field("user") {
            map_set(&mut data, Value::from("user"), user.clone());
        }
        let sub = format!(
            "salt/job/{}/sub/{}/error/{fun}",
            jid.as_ref().map(py_str).unwrap_or_default(),
            id.as_ref().map(py_str).unwrap_or_default()
        );
        events.push(first);
        if let Ok(mut second) = Event::new(sub, Value::Map(data)) {
            second.stamp();
            events.push(second);
        }
    }
    events
}

/// What a job returned, for the master.
#[derive(Debug, Clone, PartialEq)]
pub struct ReturnLoad {
    /// The minion.
    pub id: String,
    /// The job's id; `req` from `salt-call`, for which the master allocates one.
    pub jid: String,
    /// What the function returned.
    pub ret: Value,
    /// The job's return code.
    pub retcode: i64,
    /// The function.
    pub fun: String,
    /// Its arguments as the job gave them.
    pub fun_args: Value,
    /// Who ran it, and what that adds.
    pub origin: Origin,
}

/// Who ran the function.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    /// A job the master published.
    Job {
        /// Whether it succeeded (`retcode == 0`).
        success: bool,
        /// Salt's outputter hint for an error return (`nested`).
        out: Option<&'static str>,
        /// The publisher, when the job named one.
        user: Option<String>,
        /// The outputter the function names (`highstate` for state runs), which Salt's minion
        /// appends last, after the job's fields; an error return's `out` stands instead.
        outputter: Option<&'static str>,
    },
    /// A job of the minion's own schedule: Salt's scheduler's return dict, with `cmd` first.
    Schedule {
        /// The scheduled job's name.
        schedule: String,
        /// The process that ran it.
        pid: u32,
        /// Whether the function returned rather than failed (its return code aside, as Salt's
        /// scheduler has it).
        success: bool,
        /// The returners' `ret_config` profile, when the job names returners.
        ret_config: Option<String>,
        /// The returners' `ret_kwargs`, when the job names returners.
        ret_kwargs: Option<Value>,
        /// The outputter the function names, which Salt's minion adds when it sends the return
        /// to the master.
        out: Option<&'static str>,
    },
    /// `salt-call` on the minion.
    Call {
        /// When it ran (Unix seconds).
        ts: i64,
        /// Its arguments in the publish load's form.
        arg: Value,
    },
}

impl ReturnLoad {
    /// The return dict as Salt's minion hands it to returners: the load's fields without
    /// `cmd`, the job's `ret_config` and `ret_kwargs` when it has them, and the minion's `id`
    /// last.
    pub fn for_returners(&self, ret_config: Option<&Value>, ret_kwargs: Option<&Value>) -> Value {
        let Value::Map(mut entries) = self.to_value() else {
            unreachable!("a return load is a map")
        };
        entries.retain(|(key, _)| !matches!(key.as_str(), Some("cmd" | "id")));
        for (key, value) in [("ret_config", ret_config), ("ret_kwargs", ret_kwargs)] {
            if let Some(value) = value {
                entries.push(entry(key, value.clone()));
            }
        }
        entries.push(entry("id", self.id.as_str()));
        Value::Map(entries)
    }

    /// The load, in Salt's field order for its origin.
    pub fn to_value(&self) -> Value {
        let mut entries = vec![entry("cmd", "_return"), entry("id", self.id.as_str())];
        match &self.origin {
            Origin::Job {
                success,
                out,
                user,
                outputter,
            } => {
                entries.push(entry("success", *success));
                entries.push(entry("return", self.ret.clone()));
                if let Some(out) = out {
                    entries.push(entry("out", *out));
                }
                entries.extend([
                    entry("retcode", self.retcode),
                    entry("jid", self.jid.as_str()),
                    entry("fun", self.fun.as_str()),
                    entry("fun_args", self.fun_args.clone()),
                ]);
                if let Some(user) = user {
                    entries.push(entry("user", user.as_str()));
                }
                if let Some(outputter) = outputter.filter(|_| out.is_none()) {
                    entries.push(entry("out", outputter));
                }
            }
            Origin::Schedule {
                schedule,
                pid,
                success,
                ret_config,
                ret_kwargs,
                out,
            } => {
                entries.extend([
                    entry("fun", self.fun.as_str()),
                    entry("fun_args", self.fun_args.clone()),
                    entry("schedule", schedule.as_str()),
                    entry("jid", self.jid.as_str()),
                    entry("pid", *pid),
                    entry("return", self.ret.clone()),
                ]);
                // Salt's scheduler sets the return code after `success` when the function
                // failed, before it otherwise.
                let (retcode, success) =
                    (entry("retcode", self.retcode), entry("success", *success));
                entries.extend(if matches!(success.1, Value::Boolean(true)) {
                    [retcode, success]
                } else {
                    [success, retcode]
                });
                if let Some(ret_config) = ret_config {
                    entries.push(entry("ret_config", ret_config.as_str()));
                }
                if let Some(ret_kwargs) = ret_kwargs {
                    entries.push(entry("ret_kwargs", ret_kwargs.clone()));
                }
                if let Some(out) = out {
                    entries.push(entry("out", *out));
                }
            }
            Origin::Call { ts, arg } => entries.extend([
                entry("jid", self.jid.as_str()),
                entry("return", self.ret.clone()),
                entry("retcode", self.retcode),
                entry("fun", self.fun.as_str()),
                entry("fun_args", self.fun_args.clone()),
                entry("ts", *ts),
                entry("arg", arg.clone()),
                entry("tgt_type", "glob"),
                entry("tgt", self.id.as_str()),
            ]),
        }
        Value::Map(entries)
    }

    /// The return dict a scheduled job's returners get and its `__schedule_return` event
    /// carries: the load without the outputter the master is told of (and, for returners,
    /// without `cmd`, as Salt's scheduler hands them its `ret`).
    pub fn scheduled(&self, with_cmd: bool) -> Value {
        let Value::Map(mut entries) = self.to_value() else {
            return Value::Nil;
        };
        if let Origin::Schedule { out: Some(_), .. } = self.origin {
            entries.pop();
        }
        if !with_cmd {
            entries.remove(0);
        }
        Value::Map(entries)
    }

    /// What Salt's scheduler records of a scheduled job while it runs (its proc file, which
    /// `saltutil.running` reads): `id, fun, fun_args, schedule, jid` (whoever shows it adds the
    /// pid).
    pub fn running(&self) -> Value {
        let Value::Map(mut entries) = self.scheduled(false) else {
            return Value::Nil;
        };
        if let Some(jid) = entries
            .iter()
            .position(|(key, _)| key.as_str() == Some("jid"))
        {
            entries.truncate(jid + 1);
        }
        Value::Map(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::golden;
    use super::*;

    /// Salt's master announces each failed state of a failed `state.sls` twice; `state.apply`
    /// and successful states not at all.
    #[test]
    fn failed_states_of_state_sls_are_announced_as_salt_announces_them() {
        let load = crate::salt_yaml::load(
            "{cmd: _return, id: m1, success: false, return: {'test_|-bad_|-bad_|-fail_without_changes': {name: bad, result: false, comment: Failure!}, 'test_|-ok_|-ok_|-nop': {name: ok, result: true}}, retcode: 2, jid: '20261203051145084494', fun: state.sls, fun_args: [x], user: root}",
        )
        .unwrap();
        let events = failed_state_events(&load);
        let tags: Vec<&str> = events.iter().map(|e| e.tag.as_str()).collect();
        assert_eq!(
            tags,
            [
                "test.fail_without_changes",
                "salt/job/20261203051145084494/sub/m1/error/state.sls"
            ]
        );
        let keys = |event: &Event| -> Vec<String> {
            event
                .data
                .as_map()
                .unwrap()
                .iter()
                .map(|(k, _)| py_str(k).into_owned())
                .collect()
        };
        assert_eq!(
            keys(&events[0]),
            ["name", "result", "comment", "retcode", "_stamp"]
        );
        assert_eq!(
            keys(&events[1]),
            [
                "name", "result", "comment", "retcode", "_stamp", "jid", "id", "success", "return",
                "fun", "user"
            ]
        );
        assert_eq!(
            map_get(&events[1].data, "return").and_then(Value::as_str),
            Some("Error: test.fail_without_changes")
        );
        let mut apply = load.clone();
        if let Value::Map(entries) = &mut apply {
            map_set(entries, Value::from("fun"), Value::from("state.apply"));
        }
        assert!(failed_state_events(&apply).is_empty());
    }

    /// Salt 3007.8's scheduler's `__schedule_return` data, as its `handle_func` fired it for a
    /// job with returners whose function returned, and for one whose function failed.
    #[test]
    fn scheduled_returns_keep_salts_field_order() {
        let scheduled = |ret: Value, retcode, success, ret_config: Option<&str>| ReturnLoad {
            id: "m1".into(),
            jid: "20261203000000000001".into(),
            ret,
            retcode,
            fun: "test.retcode".into(),
            fun_args: Value::Array(vec![Value::from(3)]),
            origin: Origin::Schedule {
                schedule: "job2".into(),
                pid: 27963,
                success,
                ret_config: ret_config.map(str::to_owned),
                ret_kwargs: None,
                out: None,
            },
        };
        let keys = |load: &ReturnLoad| -> Vec<String> {
            load.scheduled(true)
                .as_map()
                .unwrap()
                .iter()
                .map(|(k, _)| py_str(k).into_owned())
                .collect()
        };
        assert_eq!(
            keys(&scheduled(Value::Boolean(true), 3, true, Some("p"))),
            [
                "cmd",
                "id",
                "fun",
                "fun_args",
                "schedule",
                "jid",
                "pid",
                "return",
                "retcode",
                "success",
                "ret_config"
            ]
        );
        let failed = scheduled(Value::from("Unhandled exception"), 254, false, None);
        assert_eq!(
            keys(&failed),
            [
                "cmd", "id", "fun", "fun_args", "schedule", "jid", "pid", "return", "success",
                "retcode"
            ]
        );
        // Returners get the dict without `cmd`; the master also hears of the outputter.
        let mut highstate = failed.clone();
        if let Origin::Schedule { out, .. } = &mut highstate.origin {
            *out = Some("highstate");
        }
        assert_eq!(
            map_get(&highstate.to_value(), "out"),
            Some(&Value::from("highstate"))
        );
        assert_eq!(map_get(&highstate.scheduled(true), "out"), None);
        assert_eq!(map_get(&highstate.scheduled(false), "cmd"), None);
        assert_eq!(
            crate::py::value::repr(&highstate.running()),
            "{'id': 'm1', 'fun': 'test.retcode', 'fun_args': [3], 'schedule': 'job2', 'jid': '20261203000000000001'}"
        );
    }

    /// The returns real Salt's minion (jobs) and `salt-call` sent, as the master fired them: a
    /// job's return gets the time it arrived (`ts`) last, `salt-call`'s brings its own.
    #[test]
    fn returns_keep_salts_field_order_for_each_origin() {
        for captured in golden(|tag| tag.contains("/ret/")) {
            let field = |key| map_get(&captured, key).unwrap();
            let text = |key| field(key).as_str().unwrap().to_owned();
            let retcode = field("retcode").as_i64().unwrap();
            let from_job = map_get(&captured, "success").is_some();
            let load = ReturnLoad {
                id: text("id"),
                jid: text("jid"),
                ret: field("return").clone(),
                retcode,
                fun: text("fun"),
                fun_args: field("fun_args").clone(),
                origin: if from_job {
                    Origin::Job {
                        success: retcode == 0,
                        out: None,
                        user: Some(text("user")),
                        outputter: None,
                    }
                } else {
                    Origin::Call {
                        ts: field("ts").as_i64().unwrap(),
                        arg: field("arg").clone(),
                    }
                },
            };
            let Value::Map(mut sent) = load.to_value() else {
                panic!("a map")
            };
            if from_job {
                sent.push(entry("ts", field("ts").clone()));
            }
            assert_eq!(Value::Map(sent), captured);
        }
    }
}
