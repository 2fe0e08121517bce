//! The request a local client sends to have a job published: Salt's clear `publish` load.

use crate::event::{Value, map_get};
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
}

impl PublishRequest {
    /// The request as sent over the request socket.
    pub fn to_value(&self) -> Value {
        let mut entries = vec![
            (Value::from("cmd"), Value::from("publish")),
            (Value::from("tgt"), self.tgt.clone()),
            (Value::from("fun"), Value::from(self.fun.as_str())),
            (Value::from("arg"), self.arg.clone()),
            (Value::from("tgt_type"), Value::from(self.tgt_type.as_str())),
            (Value::from("ret"), Value::from(self.ret.as_str())),
            (Value::from("user"), Value::from(self.user.as_str())),
        ];
        if let Some(jid) = &self.jid {
            entries.push((Value::from("jid"), Value::from(jid.as_str())));
        }
        Value::Map(entries)
    }

    /// Reads a request; `None` when a required field is missing.
    pub fn from_value(value: &Value) -> Option<Self> {
        let text = |key| map_get(value, key).map(|v| py_str(v).into_owned());
        Some(Self {
            tgt: map_get(value, "tgt")?.clone(),
            tgt_type: text("tgt_type").unwrap_or_else(|| "glob".to_owned()),
            fun: text("fun")?,
            arg: map_get(value, "arg")
                .cloned()
                .unwrap_or_else(|| Value::Array(Vec::new())),
            ret: text("ret").unwrap_or_default(),
            user: text("user").unwrap_or_else(|| "root".to_owned()),
            jid: text("jid").filter(|jid| !jid.is_empty()),
        })
    }
}
