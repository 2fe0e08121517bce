//! The domain model: an event is a tag plus a map of data, as Salt defines it.
//!
//! Event data uses msgpack's own value model ([`Value`], from `rmpv`): it is exactly the set of
//! shapes Salt can put on the bus (maps with non-string keys, bin, ext, big unsigned integers), so
//! events relay and round-trip without loss. How those values become bytes is [`crate::wire`]'s
//! business alone.

pub mod jid;
pub mod matching;
pub mod subject;
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

/// Salt's `traverse_dict_and_list`: the value `key` names in `data`, its parts separated by
/// `delimiter`. A map is stepped into by key (a key that reads as an integer also finds an
/// integer key); a list by index (negative from the end) or, for other parts, into the first
/// map element that has the key.
pub fn traverse<'a>(data: &'a Value, key: &str, delimiter: &str) -> Option<&'a Value> {
    let mut value = data;
    for part in key.split(delimiter) {
        let index = part.trim().parse::<i64>().ok();
        value = match value {
            Value::Array(items) => match index {
                None => items.iter().find_map(|item| map_get(item, part))?,
                Some(index) => match items.iter().find_map(|item| int_key(item, index)) {
                    Some(found) => found,
                    None => {
                        let len = i64::try_from(items.len()).ok()?;
                        let at = if index < 0 { len + index } else { index };
                        items.get(usize::try_from(at).ok()?)?
                    }
                },
            },
            map @ Value::Map(_) => {
                map_get(map, part).or_else(|| index.and_then(|index| int_key(map, index)))?
            }
            _ => return None,
        };
    }
    Some(value)
}

/// The value under the integer key `index` of a map.
fn int_key(map: &Value, index: i64) -> Option<&Value> {
    map.as_map()?
        .iter()
        .find(|(key, _)| key.as_i64() == Some(index))
        .map(|(_, value)| value)
}
