//! What the master caches about a minion, in Salt's `<cachedir>/minions/<id>/data.p`: the grains
//! it reported, for targeting by grain after a restart.

use super::{Fields, ProtoError, entry};
use crate::event::Value;

/// A minion's cached data.
#[derive(Debug, Clone, PartialEq)]
pub struct MinionData {
    /// Its grains.
    pub grains: Value,
}

impl MinionData {
    /// The data as cached: `{"grains": ...}`.
    pub fn to_value(&self) -> Value {
        Value::Map(vec![entry("grains", self.grains.clone())])
    }

    /// Reads the cached data; `grains` is required.
    pub fn from_value(value: &Value) -> Result<Self, ProtoError> {
        Ok(Self {
            grains: Fields::of("minion data", value)?.value("grains")?.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minion_data_round_trips_and_needs_grains() {
        let data = MinionData {
            grains: Value::Map(vec![entry("os", "Linux")]),
        };
        assert_eq!(MinionData::from_value(&data.to_value()), Ok(data));
        assert_eq!(
            MinionData::from_value(&Value::Map(Vec::new()))
                .unwrap_err()
                .to_string(),
            "minion data has no grains"
        );
    }
}
