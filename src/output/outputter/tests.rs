//! Expected strings were printed by Salt 3007.8's own outputter modules (on PyYAML's libyaml
//! dumper) for the same msgpack data, through Salt's rstrip-and-print step
//! (`testdata/gen_outputters.py`).

use super::*;
use crate::output::testutil::msgpack_from_hex;

fn local(value: Value) -> Value {
    Value::Map(vec![(Value::from("local"), value)])
}

#[test]
fn salt_call_golden_renderings() {
    // golden/06_salt_call.txt and 09_state_event_count_quiet_out.txt
    let t = local(Value::Boolean(true));
    assert_eq!(Outputter::Nested.render(&t, false), "local:\n    True\n");
    assert_eq!(
        Outputter::Json.render(&t, false),
        "{\n    \"local\": true\n}\n"
    );
    assert_eq!(Outputter::Yaml.render(&t, false), "local: true\n");
    assert_eq!(Outputter::Txt.render(&t, false), "local: True\n");
    assert_eq!(Outputter::Raw.render(&t, false), "{'local': True}\n");
    assert_eq!(Outputter::Quiet.render(&t, false), "");
    assert_eq!(
        Outputter::Nested.render(&local(Value::Nil), false),
        "local:\n    None\n"
    );
    assert_eq!(
        Outputter::Json.render(&local(Value::Nil), false),
        "{\n    \"local\": null\n}\n"
    );
    assert_eq!(Outputter::Nested.render(&Value::Nil, false), "None\n");
    assert_eq!(Outputter::Json.render(&Value::Nil, false), "null\n");
    assert_eq!(
        Outputter::Nested.render(&Value::Boolean(true), false),
        "True\n"
    );
}

#[test]
fn nested_colors_match_salt() {
    let t = local(Value::Boolean(true));
    assert_eq!(
        Outputter::Nested.render(&t, true),
        "\x1b[0;36mlocal\x1b[0;0m:\n    \x1b[0;1;33mTrue\x1b[0;0m\n"
    );
}

#[test]
fn salt_outputter_fixtures() {
    let cases = include_str!("../testdata/outputter_cases.jsonl");
    let mut checked = 0;
    for line in cases.lines() {
        let case: serde_json::Value = serde_json::from_str(line).expect("fixture line");
        let name = case["name"].as_str().unwrap_or_default();
        let value = msgpack_from_hex(case["msgpack"].as_str().unwrap_or_default());
        for (wrap, data) in [("call", local(value.clone())), ("run", value.clone())] {
            let expected = &case[wrap];
            let checks: [(&str, Outputter, bool, i64); 8] = [
                ("nested", Outputter::Nested, false, 0),
                ("nested_color", Outputter::Nested, true, 0),
                ("nested_color_failed", Outputter::Nested, true, 1),
                ("json", Outputter::Json, false, 0),
                ("yaml", Outputter::Yaml, false, 0),
                ("txt", Outputter::Txt, false, 0),
                ("raw", Outputter::Raw, false, 0),
                ("quiet", Outputter::Quiet, false, 0),
            ];
            for (key, out, color, retcode) in checks {
                let want = expected[key].as_str().expect("expected text");
                assert_eq!(
                    out.render_with_retcode(&data, color, retcode),
                    want,
                    "case {name:?} ({wrap}, {key})"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 200, "only {checked} renderings checked");
}

#[test]
fn names_parse_and_display() {
    for name in ["nested", "json", "yaml", "txt", "raw", "quiet", "highstate"] {
        let out: Outputter = name.parse().expect("known outputter");
        assert_eq!(out.to_string(), name);
    }
    assert_eq!("text".parse::<Outputter>(), Ok(Outputter::Txt));
    let err = "pprint"
        .parse::<Outputter>()
        .expect_err("unknown outputter");
    assert_eq!(
        err.to_string(),
        "unknown outputter \"pprint\": expected one of nested, json, yaml, txt (or text), raw, \
         quiet, highstate"
    );
    assert_eq!(Outputter::default(), Outputter::Nested);
}

/// Salt 3007.8: `salt-call --out=highstate test.ping` prints nested (the function names no
/// outputter), `state.apply` with `--out=json` prints JSON, and a return naming an outputter
/// Salt lacks prints nested.
#[test]
fn a_returns_outputter_yields_to_out_except_out_highstate() {
    let options = HighstateOptions {
        verbose: false,
        ..HighstateOptions::DEFAULT
    };
    let highstate = Outputter::Highstate(options);
    let pick = |cli, named| Outputter::for_return(cli, named, options);
    assert_eq!(pick(None, None), Outputter::Nested);
    assert_eq!(pick(None, Some("highstate")), highstate);
    assert_eq!(pick(None, Some("")), Outputter::Nested);
    assert_eq!(pick(None, Some("no_such")), Outputter::Nested);
    assert_eq!(
        pick(Some(Outputter::Json), Some("highstate")),
        Outputter::Json
    );
    assert_eq!(pick(Some(highstate), None), Outputter::Nested);
    assert_eq!(pick(Some(highstate), Some("highstate")), highstate);
    assert_eq!(pick(Some(highstate), Some("yaml")), Outputter::Yaml);
}

#[test]
fn constants_and_undecodable_bytes() {
    // Salt 3007.8: {"local": {"c": _Constant("X", [1]), "b": b"\xff"}}
    let mut payload = Vec::new();
    rmpv::encode::write_value(
        &mut payload,
        &Value::Array(vec![Value::from("X"), Value::from(vec![Value::from(1)])]),
    )
    .expect("encode");
    let v = local(Value::Map(vec![
        (Value::from("c"), Value::Ext(79, payload)),
        (Value::from("b"), Value::Binary(vec![0xff])),
    ]));
    assert_eq!(
        Outputter::Yaml.render(&v, false),
        "local:\n  b: !!binary |\n    /w==\n  c: NULL\n"
    );
    assert_eq!(
        Outputter::Nested.render(&v, false),
        "local:\n    ----------\n    b:\n    c:\n"
    );
    assert_eq!(
        Outputter::Txt.render(&v, false),
        "local: {'c': <Constant.X value=[1]>, 'b': b'\\xff'}\n"
    );
    assert_eq!(
        Outputter::Raw.render(&v, false),
        "{'local': {'c': <Constant.X value=[1]>, 'b': b'\\xff'}}\n"
    );
    assert_eq!(
        Outputter::Json.render(&v, false),
        "{\n    \"local\": {\n        \"c\": \"<Constant.X value=[1]>\",\n        \"b\": \"b'\\\\xff'\"\n    }\n}\n"
    );
}
