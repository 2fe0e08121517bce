//! The lines `salt-run state.event` / `salt-call state.event` print, and halite's JSON-lines mode.

use crate::event::Value;
use crate::py::json::{self as pyjson, Format};

/// Appends one `state.event` line: `tag`, a tab, the data as Python's
/// `json.dumps(data, ensure_ascii=False)` (with `pretty`: `indent=4, sort_keys=True`, so the
/// JSON spans several lines), and `\n`.
///
/// A tag with control characters is written with them escaped (`\n`, `\u{1b}`), so that it
/// can neither forge lines for a reader nor drive a terminal; Salt writes them raw. `color` (for
/// a terminal only) colours the JSON, never the tag; without it the bytes are exactly Salt's.
/// See [`pyjson`] for how values Salt cannot print (undecodable bytes, unsortable keys) are
/// rendered instead of crashing.
pub fn write_event_line(out: &mut Vec<u8>, tag: &str, data: &Value, pretty: bool, color: bool) {
    out.extend_from_slice(crate::event::tag::printable(tag).as_bytes());
    out.push(b'\t');
    pyjson::write_with(
        out,
        data,
        Format::pretty(pretty),
        pyjson::Undecodable::Lossy,
        color,
    );
    out.push(b'\n');
}

/// Appends one line of halite's jq-friendly mode: `{"tag": <tag>, "data": <data>}` and `\n`,
/// on one line with Python's separators (`", "`, `": "`), keys of `data` in wire order; with
/// `"id": <id>` last for an event replayed from a cluster's stream (its sequence number there).
///
/// `color` (for a terminal only) colours the whole object, tag included.
pub fn write_json_line(out: &mut Vec<u8>, tag: &str, data: &Value, id: Option<u64>, color: bool) {
    pyjson::write_envelope(out, tag, data, id, color);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::testutil::{parse_json, strip_ansi};
    use crate::py::json::into_string;

    #[test]
    fn event_line_plain_and_pretty() {
        let data = parse_json(
            r#"{"unicode": "héllo ✓", "nested": {"b": 2, "a": 1}, "f": 1.5, "none": null, "t": true, "_stamp": "2026-11-24T08:41:12.214673"}"#,
        );
        let mut out = Vec::new();
        write_event_line(&mut out, "count/x", &data, false, false);
        write_event_line(&mut out, "count/x", &data, true, false);
        // golden/09_state_event_count_quiet_out.txt, count5 and count6
        assert_eq!(
            into_string(out),
            "count/x\t{\"unicode\": \"héllo ✓\", \"nested\": {\"b\": 2, \"a\": 1}, \"f\": 1.5, \"none\": null, \"t\": true, \"_stamp\": \"2026-11-24T08:41:12.214673\"}\n\
             count/x\t{\n    \"_stamp\": \"2026-11-24T08:41:12.214673\",\n    \"f\": 1.5,\n    \"nested\": {\n        \"a\": 1,\n        \"b\": 2\n    },\n    \"none\": null,\n    \"t\": true,\n    \"unicode\": \"héllo ✓\"\n}\n"
        );
    }

    #[test]
    fn golden_edge_cases() {
        // golden/21_state_event_json_edge_cases.txt
        let mut out = Vec::new();
        let floats = Value::Map(vec![
            (Value::from("n"), Value::F64(f64::NAN)),
            (Value::from("i"), Value::F64(f64::INFINITY)),
            (Value::from("f"), Value::F64(0.1)),
            (
                Value::from("_stamp"),
                Value::from("2026-11-24T09:02:45.358459"),
            ),
        ]);
        write_event_line(&mut out, "mix/floats", &floats, false, false);
        let intkeys = Value::Map(vec![
            (Value::from(1), Value::from("a")),
            (Value::from(2), Value::from("b")),
            (
                Value::from("_stamp"),
                Value::from("2026-11-24T09:02:43.429242"),
            ),
        ]);
        write_event_line(&mut out, "mix/intkeys", &intkeys, false, false);
        write_event_line(
            &mut out,
            "nl/single\nnewline",
            &parse_json(r#"{"x": 2}"#),
            false,
            false,
        );
        let when = Value::Map(vec![(
            Value::from("when"),
            Value::Ext(78, b"20261124T08:00:00.000000".to_vec()),
        )]);
        write_event_line(&mut out, "mal/ext78", &when, false, false);
        // Salt writes the tag's newline raw (the golden file has it); halite escapes it.
        assert_eq!(
            into_string(out),
            "mix/floats\t{\"n\": NaN, \"i\": Infinity, \"f\": 0.1, \"_stamp\": \"2026-11-24T09:02:45.358459\"}\n\
             mix/intkeys\t{\"1\": \"a\", \"2\": \"b\", \"_stamp\": \"2026-11-24T09:02:43.429242\"}\n\
             nl/single\\nnewline\t{\"x\": 2}\n\
             mal/ext78\t{\"when\": \"2026-11-24T08:00:00\"}\n"
        );
    }

    #[test]
    fn json_line() {
        let mut out = Vec::new();
        write_json_line(
            &mut out,
            "a/\"b\"",
            &parse_json(r#"{"k": [1, 2.0], "é": null}"#),
            None,
            false,
        );
        write_json_line(&mut out, "empty", &Value::Map(vec![]), Some(42), false);
        assert_eq!(
            into_string(out),
            "{\"tag\": \"a/\\\"b\\\"\", \"data\": {\"k\": [1, 2.0], \"é\": null}}\n{\"tag\": \"empty\", \"data\": {}, \"id\": 42}\n"
        );
    }

    #[test]
    fn control_characters_in_tags_are_escaped() {
        let mut out = Vec::new();
        let data = Value::Map(vec![]);
        write_event_line(&mut out, "a\n\nsalt/key\u{1b}[2J", &data, false, false);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a\\n\\nsalt/key\\u{1b}[2J\t{}\n"
        );
    }

    #[test]
    fn color_leaves_the_tag_plain() {
        let data = parse_json(r#"{"k": "v", "n": 1, "b": false, "z": null}"#);
        let mut out = Vec::new();
        write_event_line(&mut out, "my/tag", &data, false, true);
        let line = into_string(out);
        assert!(line.starts_with("my/tag\t\u{1b}["), "{line:?}");
        assert_eq!(
            strip_ansi(&line),
            "my/tag\t{\"k\": \"v\", \"n\": 1, \"b\": false, \"z\": null}\n"
        );
        let mut out = Vec::new();
        write_json_line(&mut out, "my/tag", &data, None, true);
        let line = into_string(out);
        assert!(line.contains('\u{1b}'));
        assert_eq!(
            strip_ansi(&line),
            "{\"tag\": \"my/tag\", \"data\": {\"k\": \"v\", \"n\": 1, \"b\": false, \"z\": null}}\n"
        );
    }
}
