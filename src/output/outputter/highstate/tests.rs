//! The highstate outputter against Salt 3007.8's own bytes: golden 13 (a `salt` run of three
//! test states, printed by Salt's CLI) here; the recorded state cases in `tests/states/` in the
//! integration tests.

use super::*;
use crate::output::outputter::Outputter;
use crate::output::testutil::parse_json;

const GOLDEN: &str = include_str!("../../testdata/13_state_events_prog.txt");

/// The return of the `salt/job/<jid>/ret/minion2` event of the capture, and the text Salt's
/// CLI printed for it (from `minion2:` up to its error line).
fn golden() -> (Value, String) {
    let ret_line = GOLDEN
        .lines()
        .find(|l| l.contains("/ret/minion2\t"))
        .expect("the return event");
    let data = parse_json(ret_line.split_once('\t').expect("tag TAB data").1);
    let ret = map_get(&data, "return").expect("return").clone();
    let start = GOLDEN.find("minion2:\n").expect("printed block");
    let end = GOLDEN
        .find("ERROR: Minions returned")
        .expect("end of block");
    let doc = Value::Map(vec![(Value::from("minion2"), ret)]);
    (doc, GOLDEN[start..end].to_owned())
}

fn highstate(options: HighstateOptions) -> Outputter {
    Outputter::Highstate(options)
}

#[test]
fn highstate_matches_salts_printed_state_run() {
    let (doc, printed) = golden();
    assert_eq!(
        highstate(HighstateOptions::DEFAULT).render(&doc, false),
        printed
    );
}

/// Salt 3007.8's bytes for other shapes a host's data takes: text (`saltmod.function`), a
/// number, compile errors (ESC made harmless), and no return at all.
#[test]
fn text_numbers_and_compile_errors_print_as_salt_prints_them() {
    let out = highstate(HighstateOptions::DEFAULT);
    let host = |data: Value| Value::Map(vec![(Value::from("m"), data)]);
    assert_eq!(
        out.render(&host(Value::from("one\ntwo")), true),
        "\x1b[0;36mm:\x1b[0;0m\n\x1b[0;32m    one\x1b[0;0m\n\x1b[0;32m    two\x1b[0;0m\n"
    );
    assert_eq!(out.render(&host(Value::from(7)), false), "m:\n    7\n");
    let errors = Value::Array(vec![Value::from("bad \x1b[31m"), Value::from("worse")]);
    assert_eq!(
        out.render(&host(errors), true),
        "\x1b[0;1;31mm:\x1b[0;0m\n    \x1b[0;1;31mData failed to compile:\x1b[0;0m\n\
         \x1b[0;1;31m----------\n    bad ?[31m\x1b[0;0m\n\
         \x1b[0;1;31m----------\n    worse\x1b[0;0m\n"
    );
    assert_eq!(out.render(&host(Value::Nil), false), "m:\n");
    assert_eq!(out.render(&Value::Nil, false), "None\n");
    // A list is not a highstate return: Salt falls back to nested.
    assert_eq!(
        out.render(&Value::Array(vec![Value::from(1)]), false),
        "- 1\n"
    );
}
