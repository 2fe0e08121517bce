//! Salt's payloads as types, each converted to and from msgpack values in one place: what local
//! clients send the master, and the messages of the master–minion link.

pub mod publish;
pub mod request;
pub mod returns;

use crate::event::{Value, map_get};

pub use publish::PublishRequest;
pub use returns::{Origin, ReturnLoad};

/// The largest message a link or the request socket carries (a job return can be big).
pub const MAX_MESSAGE: usize = 64 * 1024 * 1024;

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
