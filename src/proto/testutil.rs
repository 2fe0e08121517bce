//! Test helpers: the events of a master bus captured from real Salt, to hold halite's payloads
//! to Salt's fields and order.

use crate::event::{STAMP_KEY, Value};

/// The events `salt-run state.event` printed on a real Salt master (golden 03), each without its
/// `_stamp`, which no payload carries.
pub(crate) fn golden_events() -> Vec<(String, Value)> {
    include_str!("../output/testdata/03_state_event_master_plain.txt")
        .lines()
        .filter(|line| !line.starts_with(['#', '<']) && !line.is_empty())
        .map(|line| {
            let (tag, json) = line.split_once('\t').expect("tag TAB data");
            let Value::Map(mut entries) = crate::output::testutil::parse_json(json) else {
                panic!("event data is a map: {line}");
            };
            entries.retain(|(key, _)| key.as_str() != Some(STAMP_KEY));
            (tag.to_owned(), Value::Map(entries))
        })
        .collect()
}

/// The data of the captured events whose tag `matches`.
pub(crate) fn golden(matches: impl Fn(&str) -> bool) -> Vec<Value> {
    let found: Vec<Value> = golden_events()
        .into_iter()
        .filter(|(tag, _)| matches(tag))
        .map(|(_, data)| data)
        .collect();
    assert!(!found.is_empty(), "the capture holds such events");
    found
}
