//! What the master caches about a minion, in Salt's `<cachedir>/minions/<id>/data.p`: the grains
//! it reported, for targeting by grain after a restart.

use super::{Fields, ProtoError, entry};
use crate::event::Value;
use std::path::{Path, PathBuf};

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

    /// Where the master caches the data of minion `id` (an id already checked to be valid: it
    /// names a directory).
    pub fn path(cachedir: &Path, id: &str) -> PathBuf {
        cachedir.join("minions").join(id).join("data.p")
    }

    /// The data cached at `path`; `None` when there is none or it cannot be read.
    pub fn read(path: &Path) -> Option<Self> {
        let bytes = std::fs::read(path).ok()?;
        let value = rmpv::decode::read_value(&mut bytes.as_slice()).ok()?;
        Self::from_value(&value).ok()
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
