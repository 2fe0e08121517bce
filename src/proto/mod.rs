//! Salt's payloads as types, each converted to and from msgpack values in one place: what local
//! clients send the master, the job load the master publishes, the messages of the
//! master–minion link, what minions send back, and the events halite fires under Salt's tags.
//!
//! Each type emits its fields in Salt's order: Salt's consumers (and the conformance tests)
//! compare events byte for byte. A payload that is read back has a `from_value` whose
//! [`ProtoError`] names the payload and the field at fault.

pub mod events;
pub mod job;
pub mod link;
pub mod manage;
pub mod minion_data;
pub mod minion_event;
pub mod publish;
pub mod request;
pub mod returns;
pub mod tags;

use crate::event::{Value, map_get};

pub use events::SaltEvent;
pub use job::JobLoad;
pub use link::Message;
pub use minion_event::MinionEventLoad;
pub use publish::PublishRequest;
pub use returns::{Origin, ReturnLoad, failed_state_events};

/// The largest message a link or the request socket carries (a job return can be big).
pub const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// Why a payload cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    /// The payload is not a map.
    #[error("{payload} is not a map")]
    NotAMap {
        /// Which payload.
        payload: &'static str,
    },
    /// A required field is absent.
    #[error("{payload} has no {field}")]
    Missing {
        /// Which payload.
        payload: &'static str,
        /// The field.
        field: &'static str,
    },
    /// A field holds the wrong kind of value.
    #[error("{payload}'s {field} is not {expected}")]
    Mistyped {
        /// Which payload.
        payload: &'static str,
        /// The field.
        field: &'static str,
        /// What it should be.
        expected: &'static str,
    },
    /// A link message whose `cmd` is none that halite knows (clipped to 64 characters).
    #[error("a message with cmd {0:?}")]
    UnknownCommand(Option<String>),
}

/// The `cmd` of a message.
pub fn command(message: &Value) -> Option<&str> {
    map_get(message, "cmd").and_then(Value::as_str)
}

/// A message `{"cmd": cmd, ...fields}`.
pub fn message(cmd: &str, fields: Vec<(Value, Value)>) -> Value {
    let mut entries = vec![(Value::from("cmd"), Value::from(cmd))];
    entries.extend(fields);
    Value::Map(entries)
}

/// One entry of a map being built.
fn entry(key: &str, value: impl Into<Value>) -> (Value, Value) {
    (Value::from(key), value.into())
}

/// A list of ids (minions, missing, present) as Salt sends it.
fn strings(ids: &[String]) -> Value {
    Value::Array(ids.iter().map(|id| Value::from(id.as_str())).collect())
}

/// The fields of a payload being read, which name the payload in every error.
struct Fields<'a> {
    payload: &'static str,
    entries: &'a [(Value, Value)],
}

impl<'a> Fields<'a> {
    /// The fields of `value`, which must be a map.
    fn of(payload: &'static str, value: &'a Value) -> Result<Self, ProtoError> {
        match value {
            Value::Map(entries) => Ok(Self { payload, entries }),
            _ => Err(ProtoError::NotAMap { payload }),
        }
    }

    /// A field, `nil` included, as Salt's `key in load` sees it.
    fn get(&self, field: &str) -> Option<&'a Value> {
        self.entries
            .iter()
            .find(|(key, _)| key.as_str() == Some(field))
            .map(|(_, value)| value)
    }

    /// A field that must be there, whatever it holds.
    fn value(&self, field: &'static str) -> Result<&'a Value, ProtoError> {
        self.get(field).ok_or(ProtoError::Missing {
            payload: self.payload,
            field,
        })
    }

    /// A field that may be absent or `nil`, as Salt's `load.get(key)` reads it.
    fn optional(&self, field: &str) -> Option<&'a Value> {
        self.get(field).filter(|value| !value.is_nil())
    }

    /// A string field that must be there.
    fn str(&self, field: &'static str) -> Result<&'a str, ProtoError> {
        self.value(field)?
            .as_str()
            .ok_or_else(|| self.mistyped(field, "a string"))
    }

    /// A string field that may be absent or `nil`.
    fn opt_str(&self, field: &'static str) -> Result<Option<&'a str>, ProtoError> {
        self.optional(field)
            .map(|value| {
                value
                    .as_str()
                    .ok_or_else(|| self.mistyped(field, "a string"))
            })
            .transpose()
    }

    /// A non-negative integer field that must be there.
    fn u64(&self, field: &'static str) -> Result<u64, ProtoError> {
        self.value(field)?
            .as_u64()
            .ok_or_else(|| self.mistyped(field, "a non-negative integer"))
    }

    /// A bytes field that must be there (msgpack bin, or str as Salt's older peers send it).
    fn bytes(&self, field: &'static str) -> Result<&'a [u8], ProtoError> {
        match self.value(field)? {
            Value::Binary(bytes) => Ok(bytes),
            Value::String(text) => Ok(text.as_bytes()),
            _ => Err(self.mistyped(field, "bytes")),
        }
    }

    /// A list of strings that must be there.
    fn strings(&self, field: &'static str) -> Result<Vec<String>, ProtoError> {
        let items = self
            .value(field)?
            .as_array()
            .ok_or_else(|| self.mistyped(field, "a list of strings"))?;
        items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| self.mistyped(field, "a list of strings"))
            })
            .collect()
    }

    fn mistyped(&self, field: &'static str, expected: &'static str) -> ProtoError {
        ProtoError::Mistyped {
            payload: self.payload,
            field,
            expected,
        }
    }
}

#[cfg(test)]
mod testutil;
