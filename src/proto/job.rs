//! A job as the master publishes it: the load minions run (also fired as
//! `salt/job/<jid>/publish` and stored as the job cache's `.load.p`), and the events that
//! announce it: `<jid>` with the targeted minions, then `salt/job/<jid>/new`.

use super::events::SaltEvent;
use super::publish::PublishRequest;
use super::{Fields, ProtoError, entry, strings, tags};
use crate::event::{Event, Value};

/// The load of a job: what a minion runs, and for whom.
#[derive(Debug, Clone, PartialEq)]
pub struct JobLoad {
    /// The function.
    pub fun: String,
    /// Its arguments (a list, keyword arguments in a trailing `__kwarg__` map).
    pub arg: Value,
    /// The target expression (a string, or a list for `list`).
    pub tgt: Value,
    /// The job's id.
    pub jid: String,
    /// Returners (`""` for none); a `salt-call` job's record has none.
    pub ret: Option<String>,
    /// How `tgt` matches (`glob` when the load does not say).
    pub tgt_type: String,
    /// Who published it.
    pub user: Option<String>,
    /// The profile the returners read their options under (`--return_config`).
    pub ret_config: Option<Value>,
    /// Options over the returners' own (`--return_kwargs`).
    pub ret_kwargs: Option<Value>,
}

impl JobLoad {
    /// The load the master publishes for `request` as job `jid`.
    pub fn published(request: &PublishRequest, jid: String) -> Self {
        Self {
            fun: request.fun.clone(),
            arg: request.arg.clone(),
            tgt: request.tgt.clone(),
            jid,
            ret: Some(request.ret.clone()),
            tgt_type: request.tgt_type.clone(),
            user: Some(request.user.clone()),
            ret_config: request.ret_config.clone(),
            ret_kwargs: request.ret_kwargs.clone(),
        }
    }

    /// The load in Salt's field order: `fun, arg, tgt, jid, ret, tgt_type, user`.
    pub fn to_value(&self) -> Value {
        let mut entries = vec![
            entry("fun", self.fun.as_str()),
            entry("arg", self.arg.clone()),
            entry("tgt", self.tgt.clone()),
            entry("jid", self.jid.as_str()),
        ];
        if let Some(ret) = &self.ret {
            entries.push(entry("ret", ret.as_str()));
        }
        entries.push(entry("tgt_type", self.tgt_type.as_str()));
        if let Some(user) = &self.user {
            entries.push(entry("user", user.as_str()));
        }
        for (key, value) in [
            ("ret_config", &self.ret_config),
            ("ret_kwargs", &self.ret_kwargs),
        ] {
            if let Some(value) = value {
                entries.push(entry(key, value.clone()));
            }
        }
        Value::Map(entries)
    }

    /// Reads a load as Salt's minion does: `tgt`, `jid`, `fun` and `arg` are required.
    pub fn from_value(value: &Value) -> Result<Self, ProtoError> {
        let fields = Fields::of("job load", value)?;
        Ok(Self {
            fun: fields.str("fun")?.to_owned(),
            arg: fields.value("arg")?.clone(),
            tgt: fields.value("tgt")?.clone(),
            jid: fields.str("jid")?.to_owned(),
            ret: fields.opt_str("ret")?.map(str::to_owned),
            tgt_type: fields.opt_str("tgt_type")?.unwrap_or("glob").to_owned(),
            user: fields.opt_str("user")?.map(str::to_owned),
            ret_config: fields.get("ret_config").cloned(),
            ret_kwargs: fields.get("ret_kwargs").cloned(),
        })
    }

    /// `salt/job/<jid>/publish`: the load itself, fired as it is published.
    pub fn publish_event(&self) -> Event {
        Event {
            tag: tags::job_publish(&self.jid),
            data: self.to_value(),
        }
    }
}

/// `<jid>`: the minions a job targets, fired first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobMinions<'a> {
    /// The job.
    pub jid: &'a str,
    /// The minions it targets.
    pub minions: &'a [String],
}

impl SaltEvent for JobMinions<'_> {
    fn tag(&self) -> String {
        self.jid.to_owned()
    }

    fn to_value(&self) -> Value {
        Value::Map(vec![entry("minions", strings(self.minions))])
    }
}

/// `salt/job/<jid>/new`: a job was published.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NewJob<'a> {
    /// The job's load.
    pub load: &'a JobLoad,
    /// The minions it targets.
    pub minions: &'a [String],
    /// Listed targets without an accepted key.
    pub missing: &'a [String],
}

impl SaltEvent for NewJob<'_> {
    fn tag(&self) -> String {
        tags::job_new(&self.load.jid)
    }

    /// Salt's order: `jid, tgt_type, tgt, user, fun, arg, minions, missing`.
    fn to_value(&self) -> Value {
        let load = self.load;
        let mut entries = vec![
            entry("jid", load.jid.as_str()),
            entry("tgt_type", load.tgt_type.as_str()),
            entry("tgt", load.tgt.clone()),
        ];
        if let Some(user) = &load.user {
            entries.push(entry("user", user.as_str()));
        }
        entries.extend([
            entry("fun", load.fun.as_str()),
            entry("arg", load.arg.clone()),
            entry("minions", strings(self.minions)),
            entry("missing", strings(self.missing)),
        ]);
        Value::Map(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::golden;
    use super::*;
    use crate::event::map_get;

    fn ids(value: &Value, key: &str) -> Vec<String> {
        map_get(value, key)
            .and_then(Value::as_array)
            .expect("a list of ids")
            .iter()
            .map(|id| id.as_str().expect("an id").to_owned())
            .collect()
    }

    /// Each job real Salt published: its load, `<jid>` and `salt/job/<jid>/new`, field for field
    /// and in order.
    #[test]
    fn job_load_and_job_events_keep_salts_field_order() {
        let published = golden(|tag| tag.ends_with("/publish"));
        let announced = golden(|tag| tag.ends_with("/new") && tag.starts_with("salt/job/"));
        let targeted = golden(crate::event::jid::is_plain_jid);
        assert_eq!(published.len(), announced.len());
        for ((captured, new), minions) in published.iter().zip(&announced).zip(&targeted) {
            let load = JobLoad::from_value(captured).unwrap();
            assert_eq!(&load.to_value(), captured);
            assert_eq!(
                load.publish_event().tag,
                format!("salt/job/{}/publish", load.jid)
            );
            let request = PublishRequest {
                tgt: load.tgt.clone(),
                tgt_type: load.tgt_type.clone(),
                fun: load.fun.clone(),
                arg: load.arg.clone(),
                ret: String::new(),
                user: "root".into(),
                jid: None,
                ret_config: None,
                ret_kwargs: None,
            };
            assert_eq!(JobLoad::published(&request, load.jid.clone()), load);
            let (targets, missing) = (ids(new, "minions"), ids(new, "missing"));
            let event = NewJob {
                load: &load,
                minions: &targets,
                missing: &missing,
            };
            assert_eq!(event.tag(), format!("salt/job/{}/new", load.jid));
            assert_eq!(&event.to_value(), new);
            let first = JobMinions {
                jid: &load.jid,
                minions: &targets,
            }
            .to_event();
            assert_eq!(
                (first.tag.as_str(), &first.data),
                (load.jid.as_str(), minions)
            );
        }
    }

    #[test]
    fn a_load_without_tgt_type_ret_or_user_targets_by_glob() {
        let bare = Value::Map(vec![
            entry("fun", "test.ping"),
            entry("arg", Value::Array(Vec::new())),
            entry("tgt", "*"),
            entry("jid", "20261124090213841646"),
        ]);
        let load = JobLoad::from_value(&bare).unwrap();
        assert_eq!(
            (load.tgt_type.as_str(), &load.ret, &load.user),
            ("glob", &None, &None)
        );
        let mut glob = bare.as_map().unwrap().clone();
        glob.push(entry("tgt_type", "glob"));
        assert_eq!(load.to_value(), Value::Map(glob));
    }

    #[test]
    fn malformed_job_loads_are_refused_naming_the_field() {
        let good = JobLoad {
            fun: "test.ping".into(),
            arg: Value::Array(Vec::new()),
            tgt: Value::from("*"),
            jid: "20261124090213841646".into(),
            ret: Some(String::new()),
            tgt_type: "glob".into(),
            user: Some("root".into()),
            ret_config: None,
            ret_kwargs: None,
        }
        .to_value();
        let without = |key: &str| {
            let mut entries = good.as_map().unwrap().clone();
            entries.retain(|(k, _)| k.as_str() != Some(key));
            JobLoad::from_value(&Value::Map(entries))
                .unwrap_err()
                .to_string()
        };
        for key in ["fun", "arg", "tgt", "jid"] {
            assert_eq!(without(key), format!("job load has no {key}"));
        }
        let with = |key: &str, value: Value| {
            let mut entries = good.as_map().unwrap().clone();
            crate::event::map_set(&mut entries, Value::from(key), value);
            JobLoad::from_value(&Value::Map(entries))
                .unwrap_err()
                .to_string()
        };
        for key in ["fun", "jid", "ret", "tgt_type", "user"] {
            assert_eq!(
                with(key, Value::from(1)),
                format!("job load's {key} is not a string")
            );
        }
        assert_eq!(
            JobLoad::from_value(&Value::from("load")).unwrap_err(),
            ProtoError::NotAMap {
                payload: "job load"
            }
        );
    }
}
