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
