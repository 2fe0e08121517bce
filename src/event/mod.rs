//! The domain model: an event is a tag plus a map of data, as Salt defines it.
//!
//! Event data uses msgpack's own value model ([`Value`], from `rmpv`): it is exactly the set of
//! shapes Salt can put on the bus (maps with non-string keys, bin, ext, big unsigned integers), so
//! events relay and round-trip without loss. How those values become bytes is [`crate::wire`]'s
//! business alone.

pub mod jid;
pub mod matching;
pub mod tag;

pub use rmpv::Value;

/// The key Salt adds to every event's data: when it was fired, in UTC.
pub const STAMP_KEY: &str = "_stamp";

/// One event: a tag and its data.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Where the event belongs, e.g. `salt/job/<jid>/ret/<id>`.
    pub tag: String,
    /// The payload: a map for every event Salt itself fires.
    pub data: Value,
}

/// Why an event cannot be fired.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// Salt refuses empty tags.
    #[error("empty tag: give the event a tag such as my/custom/tag")]
    EmptyTag,
    /// Salt only fires maps.
    #[error("event data must be a map (dict), not {0}")]
    NotAMap(String),
}

impl Event {
    /// An event ready to fire: the tag must be non-empty and the data a map, as Salt's
    /// `fire_event` demands.
    pub fn new(tag: impl Into<String>, data: Value) -> Result<Self, EventError> {
        let tag = tag.into();
        if tag.is_empty() {
            return Err(EventError::EmptyTag);
        }
        if !data.is_map() {
            return Err(EventError::NotAMap(data.to_string()));
        }
        Ok(Self { tag, data })
    }

    /// Sets `_stamp` to now, as Salt does on every fire: an existing `_stamp` keeps its place,
    /// a new one goes last.
    pub fn stamp(&mut self) {
        if let Value::Map(entries) = &mut self.data {
            map_set(
                entries,
                Value::from(STAMP_KEY),
                Value::from(jid::stamp_now()),
            );
        }
    }

    /// A string-keyed entry of the data, if the data is a map.
    pub fn get(&self, key: &str) -> Option<&Value> {
        map_get(&self.data, key)
    }
}

/// Sets `key` in a map's entries as a Python dict update does: an existing key keeps its place
/// and takes the new value, a new key goes last.
pub fn map_set(entries: &mut Vec<(Value, Value)>, key: Value, value: Value) {
    match entries.iter_mut().find(|(k, _)| *k == key) {
        Some((_, slot)) => *slot = value,
        None => entries.push((key, value)),
    }
}

/// Map entries from string-keyed pairs (keyword arguments, parameters), in order.
pub fn map_entries(pairs: &[(String, Value)]) -> Vec<(Value, Value)> {
    pairs
        .iter()
        .map(|(k, v)| (Value::from(k.as_str()), v.clone()))
        .collect()
}

/// Looks up a string key in a map value.
pub fn map_get<'a>(map: &'a Value, key: &str) -> Option<&'a Value> {
    map.as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

/// Salt's `traverse_dict_and_list`: `key`'s parts, split on `delimiter`, step into maps by key
/// and into lists by index (or into the first map element that has the key).
pub fn traverse<'a>(value: &'a Value, key: &str, delimiter: &str) -> Option<&'a Value> {
    let mut value = value;
    for part in key.split(delimiter) {
        value = match value {
            Value::Array(items) => match part.parse::<usize>() {
                Ok(index) => items.get(index)?,
                Err(_) => items.iter().find_map(|item| map_get(item, part))?,
            },
            other => map_get(other, part)?,
        };
    }
    Some(value)
}
