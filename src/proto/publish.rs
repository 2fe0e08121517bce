//! The request a local client sends to have a job published (Salt's clear `publish` load), and
//! the master's reply.

use super::{Fields, ProtoError, entry, strings};
use crate::event::Value;
use crate::py::value::py_str;

/// What a client asks the master to publish: Salt's clear `publish` load.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishRequest {
    /// The target expression (a string, or a list for `list`).
    pub tgt: Value,
    /// `glob`, `pcre`, `list` or `grain`.
    pub tgt_type: String,
    /// The function.
    pub fun: String,
    /// Its arguments, keyword arguments in a trailing `__kwarg__` map.
    pub arg: Value,
    /// Returners (`""` for none).
    pub ret: String,
    /// Who publishes.
    pub user: String,
    /// A jid chosen by the caller, else the master allocates one.
    pub jid: Option<String>,
    /// The profile the returners read their options under (`--return_config`).
    pub ret_config: Option<Value>,
    /// Options over the returners' own (`--return_kwargs`).
    pub ret_kwargs: Option<Value>,
}

impl PublishRequest {
    /// The request as sent over the request socket.
    pub fn to_value(&self) -> Value {
        let mut entries = vec![
            entry("cmd", "publish"),
            entry("tgt", self.tgt.clone()),
            entry("fun", self.fun.as_str()),
            entry("arg", self.arg.clone()),
            entry("tgt_type", self.tgt_type.as_str()),
            entry("ret", self.ret.as_str()),
            entry("user", self.user.as_str()),
        ];
        if let Some(jid) = &self.jid {
            entries.push(entry("jid", jid.as_str()));
        }
        // Salt's client sends these among the `kwargs` of the publish.
        let kwargs: Vec<(Value, Value)> = [
            ("ret_config", &self.ret_config),
            ("ret_kwargs", &self.ret_kwargs),
        ]
        .into_iter()
        .filter_map(|(key, value)| value.clone().map(|value| entry(key, value)))
        .collect();
        if !kwargs.is_empty() {
            entries.push(entry("kwargs", Value::Map(kwargs)));
        }
        Value::Map(entries)
    }

    /// Reads a request: `tgt` and `fun` are required; text fields take any value as Python's
    /// `str()` shows it.
    pub fn from_value(value: &Value) -> Result<Self, ProtoError> {
        let fields = Fields::of("publish request", value)?;
        let text = |key| fields.get(key).map(|v| py_str(v).into_owned());
        let kwarg = |key| {
            fields
                .get("kwargs")
                .and_then(|kwargs| crate::event::map_get(kwargs, key))
                .cloned()
        };
        Ok(Self {
            tgt: fields.value("tgt")?.clone(),
            tgt_type: text("tgt_type").unwrap_or_else(|| "glob".to_owned()),
            fun: py_str(fields.value("fun")?).into_owned(),
            arg: fields
                .get("arg")
                .cloned()
                .unwrap_or_else(|| Value::Array(Vec::new())),
            ret: text("ret").unwrap_or_default(),
            user: text("user").unwrap_or_else(|| "root".to_owned()),
            jid: text("jid").filter(|jid| !jid.is_empty()),
            ret_config: kwarg("ret_config"),
            ret_kwargs: kwarg("ret_kwargs"),
        })
    }
}

/// The master's reply to a publish request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishReply<'a> {
    /// The job's id; empty when no minion matched (and nothing was published).
    pub jid: &'a str,
    /// The minions targeted.
    pub minions: &'a [String],
    /// Listed targets without an accepted key.
    pub missing: &'a [String],
    /// The targeted minions connected now, which were sent the job.
    pub connected: &'a [String],
}

impl PublishReply<'_> {
    /// The reply: `{"jid", "minions", "missing", "connected"}`.
    pub fn to_value(&self) -> Value {
        Value::Map(vec![
            entry("jid", self.jid),
            entry("minions", strings(self.minions)),
            entry("missing", strings(self.missing)),
            entry("connected", strings(self.connected)),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_requests_round_trip_and_need_tgt_and_fun() {
        let request = PublishRequest {
            tgt: Value::Array(vec![Value::from("m1")]),
            tgt_type: "list".into(),
            fun: "test.ping".into(),
            arg: Value::Array(Vec::new()),
            ret: String::new(),
            user: "root".into(),
            jid: Some("20261124090213841646".into()),
            ret_config: Some(Value::from("alt")),
            ret_kwargs: Some(Value::Map(vec![entry("db", "jobs")])),
        };
        assert_eq!(PublishRequest::from_value(&request.to_value()), Ok(request));
        let bare = Value::Map(vec![entry("tgt", "*"), entry("fun", "test.ping")]);
        let read = PublishRequest::from_value(&bare).unwrap();
        assert_eq!(
            (read.tgt_type.as_str(), read.user.as_str(), &read.jid),
            ("glob", "root", &None)
        );
        for field in ["tgt", "fun"] {
            let mut entries = bare.as_map().unwrap().clone();
            entries.retain(|(key, _)| key.as_str() != Some(field));
            assert_eq!(
                PublishRequest::from_value(&Value::Map(entries))
                    .unwrap_err()
                    .to_string(),
                format!("publish request has no {field}")
            );
        }
    }
}
