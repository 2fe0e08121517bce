//! Behaviour pinned against Salt 3007.8 itself.
//!
//! The tables at the end were produced by running Salt's own `salt.utils.yaml.safe_load`,
//! `salt.utils.args.yamlify_arg` and `parse_input` on each input (libyaml loader, PyYAML 6.0)
//! and writing each result in a compact text form that [`canon`] reproduces from a [`Value`]:
//! `null`, `true`, integers in decimal, `f:` + the float's bits in hex, JSON strings, `b:` + hex
//! for binary, `[…]` and `{k: v, …}` in order; `ERR` where Salt's loader raised.

use super::args::{parse_cli_args_no_parse, yamlify_arg};
use super::*;

/// The compact text form of a value used by the fixture tables.
fn canon(v: &Value) -> String {
    match v {
        Value::Nil => "null".to_owned(),
        Value::Boolean(b) => b.to_string(),
        Value::Integer(i) => i.to_string(),
        Value::F64(f) => format!("f:{:016x}", f.to_bits()),
        Value::String(s) => json_string(s.as_str().expect("loader strings are UTF-8")),
        Value::Binary(b) => format!(
            "b:{}",
            b.iter().map(|x| format!("{x:02x}")).collect::<String>()
        ),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(canon).collect::<Vec<_>>().join(", ")
        ),
        Value::Map(pairs) => format!(
            "{{{}}}",
            pairs
                .iter()
                .map(|(k, v)| format!("{}: {}", canon(k), canon(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => panic!("the loader never makes {other:?}"),
    }
}

/// Python's `json.dumps(s, ensure_ascii=False)`.
fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn loaded(text: &str) -> String {
    load(text).map_or_else(|_| "ERR".to_owned(), |v| canon(&v))
}

fn map(pairs: &[(&str, Value)]) -> Value {
    Value::Map(
        pairs
            .iter()
            .map(|(k, v)| (Value::from(*k), v.clone()))
            .collect(),
    )
}

#[test]
fn load_and_yamlify_match_salt_on_every_fixture() {
    let mut wrong = Vec::new();
    for &(text, want_load, want_yamlify) in LOAD_AND_YAMLIFY {
        let (got_load, got_yamlify) = (loaded(text), canon(&yamlify_arg(text)));
        if got_load != want_load || got_yamlify != want_yamlify {
            wrong.push(format!(
                "{text:?}\n  load:    want {want_load}, got {got_load}\n  yamlify: want {want_yamlify}, got {got_yamlify}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} differ from Salt:\n{}",
        wrong.len(),
        LOAD_AND_YAMLIFY.len(),
        wrong.join("\n")
    );
}

#[test]
fn parse_cli_args_matches_salt_parse_input() {
    for &(argv, want) in PARSE_INPUT {
        let parsed = parse_cli_args(argv);
        let kwargs = Value::Map(
            parsed
                .kwargs
                .into_iter()
                .map(|(k, v)| (Value::from(k), v))
                .collect(),
        );
        let got = format!("{} {}", canon(&Value::Array(parsed.args)), canon(&kwargs));
        assert_eq!(got, want, "{argv:?}");
    }
}

#[test]
fn golden_salt_call_kwtypes_become_the_captured_event_data() {
    // golden/06_salt_call.txt, Part B: `event.send sc/kwtypes a=1 b=1.5 … m="quoted"`.
    let argv = [
        "sc/kwtypes",
        "a=1",
        "b=1.5",
        "c=true",
        "d=null",
        "e=[1,2]",
        "f={x: 1}",
        "g=not: a dict",
        "h=010",
        "i=1_000",
        "j=#x",
        "k=",
        "l=None",
        "m=\"quoted\"",
    ];
    let parsed = parse_cli_args(&argv);
    assert_eq!(parsed.args, vec![Value::from("sc/kwtypes")]);
    let want = [
        ("a", Value::from(1)),
        ("b", Value::F64(1.5)),
        ("c", Value::Boolean(true)),
        ("d", Value::Nil),
        ("e", Value::Array(vec![Value::from(1), Value::from(2)])),
        ("f", map(&[("x", Value::from(1))])),
        ("g", Value::from("not: a dict")),
        ("h", Value::from(10)),
        ("i", Value::from("1_000")),
        ("j", Value::from("#x")),
        ("k", Value::from("")),
        ("l", Value::Nil),
        ("m", Value::from("quoted")),
    ];
    let want: Vec<(String, Value)> = want.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    assert_eq!(parsed.kwargs, want);
}

#[test]
fn golden_salt_call_positional_yaml() {
    assert_eq!(
        yamlify_arg("{foo: Foo, bar: [1, 2]}"),
        map(&[
            ("foo", Value::from("Foo")),
            ("bar", Value::Array(vec![Value::from(1), Value::from(2)])),
        ])
    );
    assert_eq!(
        yamlify_arg("{foo: [unclosed"),
        Value::from("{foo: [unclosed")
    );
    assert_eq!(
        parse_cli_args(&["{a: 1}", "extra_positional"]).args,
        vec![
            map(&[("a", Value::from(1))]),
            Value::from("extra_positional")
        ]
    );
}

#[test]
fn repeated_kwarg_keeps_first_place_and_last_value() {
    let parsed = parse_cli_args(&["a=1", "pos", "b=2", "a=3"]);
    assert_eq!(parsed.args, vec![Value::from("pos")]);
    assert_eq!(
        parsed.kwargs,
        vec![
            ("a".to_owned(), Value::from(3)),
            ("b".to_owned(), Value::from(2))
        ]
    );
}

#[test]
fn no_parse_keeps_named_kwargs_as_text() {
    let parsed = parse_cli_args_no_parse(&["a=1", "b=[1]", "c=yes"], &["b", "c"]);
    assert_eq!(
        parsed.kwargs,
        vec![
            ("a".to_owned(), Value::from(1)),
            ("b".to_owned(), Value::from("[1]")),
            ("c".to_owned(), Value::from("yes")),
        ]
    );
}

#[test]
fn errors_name_line_column_and_problem() {
    let e = load("a: 1\nb: [1, 2\n").unwrap_err();
    assert_eq!(e.line, 3, "{e}");
    let e = load("a: 1\nb: 2\na: 3\n").unwrap_err();
    assert_eq!((e.line, e.column), (3, 1));
    assert_eq!(e.problem, "found conflicting ID 'a'");
    assert_eq!(e.to_string(), "line 3, column 1: found conflicting ID 'a'");
    let e = load("x: !something y").unwrap_err();
    assert_eq!((e.line, e.column), (1, 4));
    assert!(e.problem.contains("'!something'"), "{e}");
    let e = load("a\n---\nb").unwrap_err();
    assert_eq!(e.line, 2);
    assert!(e.problem.contains("single document"), "{e}");
    let e = load("k: [&a 1, &a 2]").unwrap_err();
    assert_eq!((e.line, e.column), (1, 11));
    assert!(e.problem.contains("duplicate anchor 'a'"), "{e}");
    let e = load("{a: 1,\n b: =}").unwrap_err();
    assert_eq!((e.line, e.column), (2, 5));
}

#[test]
fn empty_and_comment_only_documents_are_nil() {
    for text in ["", "   ", "\n\n", "# only a comment", "---", "--- \n...\n"] {
        assert_eq!(load(text), Ok(Value::Nil), "{text:?}");
    }
}

#[test]
fn timestamps_stay_text() {
    // Salt's loader constructs `!!timestamp` as the scalar text, so no datetime (and no
    // msgpack ext type 78) ever comes out of YAML.
    assert_eq!(load("2026-01-01"), Ok(Value::from("2026-01-01")));
    assert_eq!(
        load("!!timestamp 2026-01-01 10:00:00"),
        Ok(Value::from("2026-01-01 10:00:00"))
    );
}

#[test]
fn integers_beyond_msgpack_become_decimal_text() {
    assert_eq!(load("18446744073709551615"), Ok(Value::from(u64::MAX)));
    assert_eq!(
        load("18446744073709551616"),
        Ok(Value::from("18446744073709551616"))
    );
    assert_eq!(load("-0x8000000000000000"), Ok(Value::from(i64::MIN)));
    assert_eq!(
        load("-0x8000000000000001"),
        Ok(Value::from("-9223372036854775809"))
    );
    assert_eq!(
        load("0x1_0000_0000_0000_0000"),
        Ok(Value::from("18446744073709551616"))
    );
    // A 20-character integer looks like a job id to `condition_input` and is sent as text;
    // as a keyword value it stays an integer.
    let parsed = parse_cli_args(&["10000000000000000000", "k=10000000000000000000"]);
    assert_eq!(parsed.args, vec![Value::from("10000000000000000000")]);
    assert_eq!(
        parsed.kwargs[0].1,
        Value::from(10_000_000_000_000_000_000u64)
    );
}

#[test]
fn non_string_keys_keep_their_types_and_order() {
    let want = Value::Map(vec![
        (Value::from(2), Value::from("b")),
        (Value::Boolean(true), Value::from("t")),
        (Value::Nil, Value::from("n")),
        (Value::F64(1.5), Value::from("f")),
        (Value::from("2"), Value::from("s")),
    ]);
    assert_eq!(load("{2: b, yes: t, ~: n, 1.5: f, '2': s}"), Ok(want));
}

#[test]
fn aliases_share_their_anchor_and_self_reference_is_refused() {
    assert_eq!(
        load("a: &x {k: [1]}\nb: *x"),
        Ok(map(&[
            ("a", map(&[("k", Value::Array(vec![Value::from(1)]))])),
            ("b", map(&[("k", Value::Array(vec![Value::from(1)]))])),
        ]))
    );
    assert!(load("a: &x [1, *x]").is_err());
}

#[test]
fn alias_bombs_and_deep_nesting_are_refused() {
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..8 {
        let prev = format!("*a{}", i - 1);
        bomb.push_str(&format!("a{i}: &a{i} [{}]\n", vec![prev; 10].join(", ")));
    }
    let e = load(&bomb).unwrap_err();
    assert!(e.problem.contains("aliases"), "{e}");
    // Few nodes, long scalars: 200 KB of text repeated 4,096 times is 800 MB as a value.
    let mut long = format!("a0: &a0 {}\n", "x".repeat(200_000));
    for i in 1..=12 {
        long.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}]\n", p = i - 1));
    }
    let e = load(&long).unwrap_err();
    assert!(e.problem.contains("MiB once built"), "{e}");
    // Within a smaller limit, a few aliases are enough to refuse.
    let few = "a: &a [xxxxxxxx, xxxxxxxx]\nb: [*a, *a, *a, *a, *a, *a, *a, *a]\n";
    assert!(super::load_within(few, 4096).is_ok());
    let e = super::load_within(few, 600).unwrap_err();
    assert!(e.problem.contains("more than 600 bytes once built"), "{e}");
    // The same shape that stays small is fine.
    let small = long.replace(&"x".repeat(200_000), "x");
    assert!(load(&small).is_ok());

    // Nesting is bounded by MAX_DEPTH (saphyr-parser itself stops flow nesting at 255).
    let block = |n: usize| format!("{}x", "- ".repeat(n));
    assert!(load(&block(compose::MAX_DEPTH - 1)).is_ok());
    assert!(
        load(&block(compose::MAX_DEPTH))
            .unwrap_err()
            .problem
            .contains("nesting")
    );
    let flow = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    assert!(load(&flow(compose::MAX_DEPTH)).is_ok());
    assert!(load(&flow(compose::MAX_DEPTH + 1)).is_err());
    // Depth also counts through aliases.
    let half = compose::MAX_DEPTH / 2 + 10;
    let chained = format!("a: &a\n  {}\nb:\n  {}*a\n", block(half), "- ".repeat(half));
    assert!(load(&chained).unwrap_err().problem.contains("nesting"));
}

#[test]
fn spellings_saphyr_refuses_but_salt_reads() {
    // saphyr-parser is stricter here than libyaml; the loader rewrites and reads them as Salt.
    assert_eq!(
        load("key:\tvalue"),
        Ok(map(&[("key", Value::from("value"))]))
    );
    assert_eq!(
        load("a: |# comment\n  x\n"),
        Ok(map(&[("a", Value::from("x\n"))]))
    );
    assert_eq!(load("['a']#c"), Ok(Value::Array(vec![Value::from("a")])));
    assert_eq!(load("[-]"), Ok(Value::Array(vec![Value::from("-")])));
    assert_eq!(
        load("- ?"),
        Ok(Value::Array(vec![Value::Map(vec![(
            Value::Nil,
            Value::Nil
        )])]))
    );
}

#[test]
fn known_differences_from_salt_are_deliberate() {
    // libyaml refuses tabs in some block-context spots that saphyr-parser accepts; a config
    // Salt refuses here loads rather than failing (CLI arguments with tabs are never loaded).
    assert_eq!(load("- \ta"), Ok(Value::Array(vec![Value::from("a")])));
    // libyaml accepts a block scalar header in column 0 as a top-level key's value.
    assert!(load("a:\n|\n b\n").is_err());
    // `!!set` keeps document order; Python's set order is by hash.
    assert_eq!(
        load("!!set {b, a}"),
        Ok(Value::Array(vec![Value::from("b"), Value::from("a")]))
    );
}

// @generated by running Salt 3007.8's salt.utils.yaml.safe_load and salt.utils.args.yamlify_arg
const LOAD_AND_YAMLIFY: &[(&str, &str, &str)] = &[
    ("yes", "true", "true"),
    ("Off", "false", "false"),
    ("0x1f", "31", "31"),
    ("0o17", "\"0o17\"", "\"0o17\""),
    ("017", "17", "17"),
    ("-010", "-8", "-8"),
    ("+010", "8", "8"),
    ("08", "\"08\"", "\"08\""),
    ("1e3", "\"1e3\"", "\"1e3\""),
    ("1.0e+3", "f:408f400000000000", "f:408f400000000000"),
    ("1.0e3", "\"1.0e3\"", "\"1.0e3\""),
    (".5", "f:3fe0000000000000", "f:3fe0000000000000"),
    ("-.5", "\"-.5\"", "\"-.5\""),
    ("+.5", "\"+.5\"", "\"+.5\""),
    ("-.inf", "f:fff0000000000000", "f:fff0000000000000"),
    ("._", "\"._\"", "\"._\""),
    ("1._", "f:3ff0000000000000", "f:3ff0000000000000"),
    ("1.", "f:3ff0000000000000", "f:3ff0000000000000"),
    ("1:30", "90", "90"),
    ("1:30.5", "f:4056a00000000000", "f:4056a00000000000"),
    ("-1:30", "-90", "-90"),
    ("'quoted'", "\"quoted\"", "\"quoted\""),
    (
        "[1, \"a\", {b: c}]",
        "[1, \"a\", {\"b\": \"c\"}]",
        "[1, \"a\", {\"b\": \"c\"}]",
    ),
    ("{1: a}", "{1: \"a\"}", "{1: \"a\"}"),
    ("{1: a, true: b}", "ERR", "\"{1: a, true: b}\""),
    ("{1: a, 1.0: b}", "ERR", "\"{1: a, 1.0: b}\""),
    ("2026-01-01", "\"2026-01-01\"", "\"2026-01-01\""),
    (
        "2026-01-01 10:00:00",
        "\"2026-01-01 10:00:00\"",
        "\"2026-01-01 10:00:00\"",
    ),
    ("!!timestamp 2026-01-01", "\"2026-01-01\"", "\"2026-01-01\""),
    ("!something", "ERR", "\"!something\""),
    ("!something x", "ERR", "\"!something x\""),
    ("!", "\"\"", "\"!\""),
    ("|", "\"\"", "\"|\""),
    ("#comment", "null", "\"#comment\""),
    ("---", "null", "\"---\""),
    ("...", "ERR", "\"...\""),
    ("--- 1", "1", "1"),
    ("a: 1 #c", "{\"a\": 1}", "{\"a\": 1}"),
    ("\"#x\"", "\"#x\"", "\"\\\"#x\\\"\""),
    ("!!binary aGVsbG8=", "b:68656c6c6f", "\"!!binary aGVsbG8=\""),
    ("!!binary aGVsbG8= #c", "b:68656c6c6f", "b:68656c6c6f"),
    ("!!set {a}", "[\"a\"]", "\"!!set {a}\""),
    ("=", "ERR", "\"=\""),
    ("{=: 1}", "{\"=\": 1}", "{\"=\": 1}"),
    ("{a: =}", "ERR", "\"{a: =}\""),
    ("<<", "ERR", "\"<<\""),
    (
        "{<<: {a: 1}, b: 2}",
        "{\"a\": 1, \"b\": 2}",
        "{\"a\": 1, \"b\": 2}",
    ),
    (
        "123456789012345678901234567890",
        "\"123456789012345678901234567890\"",
        "\"123456789012345678901234567890\"",
    ),
    (
        "18446744073709551615",
        "18446744073709551615",
        "18446744073709551615",
    ),
    (
        "18446744073709551616",
        "\"18446744073709551616\"",
        "\"18446744073709551616\"",
    ),
    (
        "-9223372036854775808",
        "-9223372036854775808",
        "-9223372036854775808",
    ),
    (
        "-9223372036854775809",
        "\"-9223372036854775809\"",
        "\"-9223372036854775809\"",
    ),
    ("0b101", "5", "5"),
    ("0_10", "10", "\"0_10\""),
    ("00", "0", "0"),
    ("0x_1F", "31", "31"),
    ("0x", "\"0x\"", "\"0x\""),
    ("1__0", "10", "\"1__0\""),
    ("~", "null", "null"),
    ("null", "null", "null"),
    ("NULL", "null", "null"),
    ("Null", "null", "null"),
    ("nULL", "\"nULL\"", "\"nULL\""),
    ("TRUE", "true", "true"),
    ("tRUE", "\"tRUE\"", "\"tRUE\""),
    ("y", "\"y\"", "\"y\""),
    ("n", "\"n\"", "\"n\""),
    (".NaN", "f:fff8000000000000", "f:fff8000000000000"),
    (".nan", "f:fff8000000000000", "f:fff8000000000000"),
    (".Inf", "f:7ff0000000000000", "f:7ff0000000000000"),
    ("+.inf", "f:7ff0000000000000", "f:7ff0000000000000"),
    ("-.Inf", "f:fff0000000000000", "f:fff0000000000000"),
    ("1,000", "\"1,000\"", "\"1,000\""),
    ("a\\tb", "\"a\\\\tb\"", "\"a\\\\tb\""),
    ("! 1", "1", "1"),
    ("! yes", "true", "true"),
    ("[! 1, ! a]", "[1, \"a\"]", "[1, \"a\"]"),
    ("! [1]", "[1]", "\"! [1]\""),
    ("!!int 010", "10", "10"),
    ("!!int '0x1f'", "31", "31"),
    ("!!int abc", "ERR", "\"!!int abc\""),
    ("!!float 1", "f:3ff0000000000000", "f:3ff0000000000000"),
    ("!!float inf", "f:7ff0000000000000", "f:7ff0000000000000"),
    ("!!float 1e3", "f:408f400000000000", "f:408f400000000000"),
    ("!!bool YeS", "true", "true"),
    ("!!bool y", "ERR", "\"!!bool y\""),
    ("!!null x", "null", "null"),
    ("!!str 1", "\"1\"", "\"1\""),
    ("!!str [1]", "ERR", "\"!!str [1]\""),
    ("!!map [1]", "ERR", "\"!!map [1]\""),
    ("!!foo 1", "ERR", "\"!!foo 1\""),
    (
        "{<<: [{a: 1, x: 1}, {b: 2, x: 2}], c: 3}",
        "ERR",
        "\"{<<: [{a: 1, x: 1}, {b: 2, x: 2}], c: 3}\"",
    ),
    (
        "{<<: [{x: 1}, {x: 2}]}",
        "ERR",
        "\"{<<: [{x: 1}, {x: 2}]}\"",
    ),
    ("{<<: {x: 1}, x: 2}", "{\"x\": 2}", "{\"x\": 2}"),
    ("{\"1\": a, <<: {1: b}}", "{\"1\": \"a\"}", "{\"1\": \"a\"}"),
    ("{01: a, <<: {1: b}}", "ERR", "\"{01: a, <<: {1: b}}\""),
    ("&a [*a]", "ERR", "\"&a [*a]\""),
    ("[&a 1, *a]", "[1, 1]", "[1, 1]"),
    ("*b", "ERR", "\"*b\""),
    ("0_", "ERR", "\"0_\""),
    ("-0_", "0", "0"),
    ("0x_", "ERR", "\"0x_\""),
    ("-0x_", "ERR", "\"-0x_\""),
    ("0b_", "ERR", "\"0b_\""),
    ("+0", "0", "0"),
    ("-0", "0", "0"),
    ("007", "7", "7"),
    ("{[1]: a}", "ERR", "\"{[1]: a}\""),
    ("{{a: 1}: b}", "ERR", "\"{{a: 1}: b}\""),
    ("? [1]\n: a", "ERR", "\"? [1]\\n: a\""),
    ("!!set {a: 1}", "[\"a\"]", "\"!!set {a: 1}\""),
    (
        "!!omap [{a: 1}, {b: 2}]",
        "[[\"a\", 1], [\"b\", 2]]",
        "\"!!omap [{a: 1}, {b: 2}]\"",
    ),
    ("!!omap [a]", "ERR", "\"!!omap [a]\""),
    (
        "!!pairs [{a: 1}, {a: 2}]",
        "[[\"a\", 1], [\"a\", 2]]",
        "\"!!pairs [{a: 1}, {a: 2}]\"",
    ),
    ("[!!binary aGVsbG8=]", "[b:68656c6c6f]", "[b:68656c6c6f]"),
    (
        "!!binary 'aGVs bG8='",
        "b:68656c6c6f",
        "\"!!binary 'aGVs bG8='\"",
    ),
    ("!!binary aGVsbG8", "ERR", "\"!!binary aGVsbG8\""),
    ("!!binary aGVsbA=", "ERR", "\"!!binary aGVsbA=\""),
    ("!!binary aGVsbA==", "b:68656c6c", "\"!!binary aGVsbA==\""),
    ("!!binary aGVsbA==x", "b:68656c6c", "\"!!binary aGVsbA==x\""),
    ("!!binary é", "ERR", "\"!!binary é\""),
    ("a\n---\nb", "ERR", "\"a\\n---\\nb\""),
    ("", "null", "\"\""),
    ("   ", "null", "\"   \""),
    ("# only", "null", "\"# only\""),
    ("--- \n...", "null", "\"--- \\n...\""),
    ("%YAML 1.1\n--- 1", "1", "\"%YAML 1.1\\n--- 1\""),
    ("%YAML 1.2\n--- 1", "1", "\"%YAML 1.2\\n--- 1\""),
    ("%YAML 2.0\n--- 1", "ERR", "\"%YAML 2.0\\n--- 1\""),
    (
        "%TAG !e! tag:yaml.org,2002:\n--- !e!int 5",
        "5",
        "\"%TAG !e! tag:yaml.org,2002:\\n--- !e!int 5\"",
    ),
    ("!<tag:yaml.org,2002:int> 7", "7", "7"),
    ("{.nan: 1, .nan: 2}", "ERR", "\"{.nan: 1, .nan: 2}\""),
    ("{1: a, 2: b, 1: c}", "ERR", "\"{1: a, 2: b, 1: c}\""),
    ("a: 1\na: 2", "ERR", "\"a: 1\\na: 2\""),
    ("{null: 1, ~: 2}", "ERR", "\"{null: 1, ~: 2}\""),
    ("{a: 1, 'a': 2}", "ERR", "\"{a: 1, 'a': 2}\""),
    ("{true: 1, yes: 2}", "ERR", "\"{true: 1, yes: 2}\""),
    ("{0: a, false: b}", "ERR", "\"{0: a, false: b}\""),
    ("{0: a, 0.0: b}", "ERR", "\"{0: a, 0.0: b}\""),
    (
        "{1: a, 1:0: b}",
        "{1: \"a\", 60: \"b\"}",
        "{1: \"a\", 60: \"b\"}",
    ),
    ("{1: a, 01: b}", "ERR", "\"{1: a, 01: b}\""),
    (
        "{b: !!binary aGVsbG8=, c: !!binary aGVsbG8=}",
        "{\"b\": b:68656c6c6f, \"c\": b:68656c6c6f}",
        "{\"b\": b:68656c6c6f, \"c\": b:68656c6c6f}",
    ),
    (
        "{!!binary aGVsbG8=: 1, !!binary aGVsbG8=: 2}",
        "ERR",
        "\"{!!binary aGVsbG8=: 1, !!binary aGVsbG8=: 2}\"",
    ),
    ("[&a 1, &a 2, *a]", "ERR", "\"[&a 1, &a 2, *a]\""),
    ("! 'yes'", "true", "true"),
    ("! \"1\"", "1", "1"),
    (
        "{<<: [{a: 1}, {b: 2}], c: 3}",
        "{\"b\": 2, \"a\": 1, \"c\": 3}",
        "{\"b\": 2, \"a\": 1, \"c\": 3}",
    ),
    (
        "{c: 3, <<: {a: 1}}",
        "{\"a\": 1, \"c\": 3}",
        "{\"a\": 1, \"c\": 3}",
    ),
    ("{\"<<\": 1}", "{\"<<\": 1}", "{\"<<\": 1}"),
    ("{!!merge x: {a: 1}}", "{\"a\": 1}", "{\"a\": 1}"),
    ("{<<: 1}", "ERR", "\"{<<: 1}\""),
    ("!!omap [{<<: 1}]", "ERR", "\"!!omap [{<<: 1}]\""),
    (
        "a: &x 1\nb: *x",
        "{\"a\": 1, \"b\": 1}",
        "\"a: &x 1\\nb: *x\"",
    ),
    (
        "base: &b {x: 1}\nd:\n  <<: *b\n  y: 2",
        "{\"base\": {\"x\": 1}, \"d\": {\"x\": 1, \"y\": 2}}",
        "\"base: &b {x: 1}\\nd:\\n  <<: *b\\n  y: 2\"",
    ),
    ("!!python/unicode abc", "\"abc\"", "\"abc\""),
    ("!!seq {a: 1}", "ERR", "\"!!seq {a: 1}\""),
    ("!!timestamp [1]", "ERR", "\"!!timestamp [1]\""),
    ("? a", "{\"a\": null}", "\"? a\""),
    (
        "{a, b}",
        "{\"a\": null, \"b\": null}",
        "{\"a\": null, \"b\": null}",
    ),
    ("[a: 1]", "[{\"a\": 1}]", "[{\"a\": 1}]"),
    (
        "- a: 1\n  b: 2\n- c",
        "[{\"a\": 1, \"b\": 2}, \"c\"]",
        "\"- a: 1\\n  b: 2\\n- c\"",
    ),
    ("a:\tb", "{\"a\": \"b\"}", "\"a:\\tb\""),
    ("a: \tb", "{\"a\": \"b\"}", "\"a: \\tb\""),
    (
        "{a: 1,\tb: 2}",
        "{\"a\": 1, \"b\": 2}",
        "\"{a: 1,\\tb: 2}\"",
    ),
    ("'a\tb'", "\"a\\tb\"", "\"'a\\tb'\""),
    ("\"a\\tb\"", "\"a\\tb\"", "\"a\\tb\""),
    ("\"\\x41\\u00e9\\U0001F600\"", "\"Aé😀\"", "\"Aé😀\""),
    ("\"\\/\"", "\"/\"", "\"/\""),
    ("'it''s'", "\"it's\"", "\"it's\""),
    (
        "|\n  lit\n  two\n",
        "\"lit\\ntwo\\n\"",
        "\"|\\n  lit\\n  two\\n\"",
    ),
    (
        ">\n  fold\n  two\n",
        "\"fold two\\n\"",
        "\">\\n  fold\\n  two\\n\"",
    ),
    ("|-\n  x", "\"x\"", "\"|-\\n  x\""),
    (
        "key: |\n  a\n  b",
        "{\"key\": \"a\\nb\"}",
        "\"key: |\\n  a\\n  b\"",
    ),
    ("a\u{0}b", "ERR", "\"a\\u0000b\""),
    ("é", "\"é\"", "\"é\""),
    ("\u{feff}a", "\"a\"", "\"a\""),
    ("a\u{85}b", "\"a b\"", "\"a b\""),
    ("a\u{2028}b", "\"a\u{2028}b\"", "\"a\u{2028}b\""),
    ("- 1\n- 2", "[1, 2]", "\"- 1\\n- 2\""),
    ("foo bar", "\"foo bar\"", "\"foo bar\""),
    ("foo: bar: baz", "ERR", "\"foo: bar: baz\""),
    ("[1, 2", "ERR", "\"[1, 2\""),
    ("{a: 1", "ERR", "\"{a: 1\""),
    ("]", "ERR", "\"]\""),
    ("}", "ERR", "\"}\""),
    ("a: b\n c", "{\"a\": \"b c\"}", "\"a: b\\n c\""),
    ("@x", "ERR", "\"@x\""),
    ("`x", "ERR", "\"`x\""),
    ("%x", "ERR", "\"%x\""),
    ("a # b", "\"a\"", "\"a # b\""),
    ("a#b", "\"a#b\"", "\"a#b\""),
    ("'a' # b", "\"a\"", "\"'a' # b\""),
    ("[1,2,]", "[1, 2]", "[1, 2]"),
    ("{a: 1,}", "{\"a\": 1}", "{\"a\": 1}"),
    ("[,]", "ERR", "\"[,]\""),
    ("? ", "{null: null}", "\"? \""),
    (":", "ERR", "\":\""),
    ("- ", "[null]", "\"- \""),
    ("-", "[null]", "\"-\""),
    ("-1", "-1", "-1"),
    ("- -1", "[-1]", "\"- -1\""),
    ("a:", "{\"a\": null}", "\"a:\""),
    ("{a}", "{\"a\": null}", "{\"a\": null}"),
    ("{a: }", "{\"a\": null}", "{\"a\": null}"),
    ("[a:]", "ERR", "\"[a:]\""),
    ("{: a}", "ERR", "\"{: a}\""),
    ("*", "ERR", "\"*\""),
    ("&", "ERR", "\"&\""),
    ("&a", "null", "null"),
    ("&a a", "\"a\"", "\"a\""),
    ("!!str", "\"\"", "\"\""),
    ("!!str &a", "\"\"", "\"\""),
    ("&a !!str b", "\"b\"", "\"b\""),
    ("!!str &a b", "\"b\"", "\"b\""),
    ("1", "1", "1"),
    ("1.5", "f:3ff8000000000000", "f:3ff8000000000000"),
    ("true", "true", "true"),
    ("[1,2]", "[1, 2]", "[1, 2]"),
    ("{x: 1}", "{\"x\": 1}", "{\"x\": 1}"),
    ("not: a dict", "{\"not\": \"a dict\"}", "\"not: a dict\""),
    ("010", "10", "10"),
    ("1_000", "1000", "\"1_000\""),
    ("#x", "null", "\"#x\""),
    ("None", "\"None\"", "null"),
    ("\"quoted\"", "\"quoted\"", "\"quoted\""),
    ("{foo: [unclosed", "ERR", "\"{foo: [unclosed\""),
    (
        "{foo: Foo, bar: [1, 2]}",
        "{\"foo\": \"Foo\", \"bar\": [1, 2]}",
        "{\"foo\": \"Foo\", \"bar\": [1, 2]}",
    ),
    ("[1,2,3]", "[1, 2, 3]", "[1, 2, 3]"),
    (
        "{a: from_data}",
        "{\"a\": \"from_data\"}",
        "{\"a\": \"from_data\"}",
    ),
    ("from_kwarg", "\"from_kwarg\"", "\"from_kwarg\""),
    (
        "[HOME, NOPE_NOT_SET]",
        "[\"HOME\", \"NOPE_NOT_SET\"]",
        "[\"HOME\", \"NOPE_NOT_SET\"]",
    ),
    ("True", "true", "true"),
    (
        "{extra: 1, id: fake}",
        "{\"extra\": 1, \"id\": \"fake\"}",
        "{\"extra\": 1, \"id\": \"fake\"}",
    ),
    ("{\"x\": 1}", "{\"x\": 1}", "{\"x\": 1}"),
    ("notadict", "\"notadict\"", "\"notadict\""),
    ("|\n a", "\"a\"", "\"|\\n a\""),
    ("|+\n a", "\"a\"", "\"|+\\n a\""),
    ("|-\n a", "\"a\"", "\"|-\\n a\""),
    (">\n a", "\"a\"", "\">\\n a\""),
    ("|\n a\n", "\"a\\n\"", "\"|\\n a\\n\""),
    ("|+\n a\n\n", "\"a\\n\\n\"", "\"|+\\n a\\n\\n\""),
    ("|+\n a\n\n ", "\"a\\n\\n\"", "\"|+\\n a\\n\\n \""),
    (
        "k: |\n a\nj: 1",
        "{\"k\": \"a\\n\", \"j\": 1}",
        "\"k: |\\n a\\nj: 1\"",
    ),
    (
        "k: |+\n a\n\nj: 1",
        "{\"k\": \"a\\n\\n\", \"j\": 1}",
        "\"k: |+\\n a\\n\\nj: 1\"",
    ),
    (
        "k: >\n a\n b\n\n c",
        "{\"k\": \"a b\\nc\"}",
        "\"k: >\\n a\\n b\\n\\n c\"",
    ),
    ("[: a]", "ERR", "\"[: a]\""),
    ("[? : a]", "ERR", "\"[? : a]\""),
    ("{? : a}", "{null: \"a\"}", "{null: \"a\"}"),
    ("? : a", "ERR", "\"? : a\""),
    ("?\n: a", "{null: \"a\"}", "\"?\\n: a\""),
    (": a", "ERR", "\": a\""),
    ("a: 1\n: b", "ERR", "\"a: 1\\n: b\""),
    ("[\"a\":]", "[{\"a\": null}]", "[{\"a\": null}]"),
    ("[\"a\":b]", "[{\"a\": \"b\"}]", "[{\"a\": \"b\"}]"),
    ("{\"a\":b}", "{\"a\": \"b\"}", "{\"a\": \"b\"}"),
    ("{a:b}", "{\"a:b\": null}", "{\"a:b\": null}"),
    ("[a:b]", "[\"a:b\"]", "[\"a:b\"]"),
    ("{x:1}", "{\"x:1\": null}", "{\"x:1\": null}"),
    ("[a:b:]", "ERR", "\"[a:b:]\""),
    ("{a:,b}", "ERR", "\"{a:,b}\""),
    ("{a: b:}", "ERR", "\"{a: b:}\""),
    ("[a :]", "ERR", "\"[a :]\""),
    ("%YAML 1.0\n--- 1", "ERR", "\"%YAML 1.0\\n--- 1\""),
    ("%YAML 1.3\n--- 1", "ERR", "\"%YAML 1.3\\n--- 1\""),
    ("# c\n...\na", "ERR", "\"# c\\n...\\na\""),
    ("a\n...\n...", "\"a\"", "\"a\\n...\\n...\""),
    ("a\n...\n", "\"a\"", "\"a\\n...\\n\""),
    ("--- a\n...", "\"a\"", "\"--- a\\n...\""),
    ("a\u{2029}b", "\"a\u{2029}b\"", "\"a\u{2029}b\""),
    ("|\n a\u{85} b", "\"a\\nb\"", "\"|\\n a\u{85} b\""),
    ("a:\t1", "{\"a\": 1}", "\"a:\\t1\""),
    ("a: [1,\t2]", "{\"a\": [1, 2]}", "\"a: [1,\\t2]\""),
    ("?\ta", "ERR", "\"?\\ta\""),
    ("a\t: 1", "{\"a\": 1}", "\"a\\t: 1\""),
    ("a \t: 1", "{\"a\": 1}", "\"a \\t: 1\""),
    ("a: 1 \t# c", "{\"a\": 1}", "\"a: 1 \\t# c\""),
    ("'a'#b", "\"a\"", "\"'a'#b\""),
    ("[a]#c", "[\"a\"]", "[\"a\"]"),
    ("{a: 1}#c", "{\"a\": 1}", "{\"a\": 1}"),
    ("a #b", "\"a\"", "\"a #b\""),
    ("- ?", "[{null: null}]", "\"- ?\""),
    ("?\n", "{null: null}", "\"?\\n\""),
    ("a: [1,\n\t2]", "{\"a\": [1, 2]}", "\"a: [1,\\n\\t2]\""),
    (
        "a: \"x\n\ty\"",
        "{\"a\": \"x y\"}",
        "\"a: \\\"x\\n\\ty\\\"\"",
    ),
    ("a:\t\t1", "{\"a\": 1}", "\"a:\\t\\t1\""),
    ("a:\t-1", "{\"a\": -1}", "\"a:\\t-1\""),
    ("- a:\tb", "[{\"a\": \"b\"}]", "\"- a:\\tb\""),
    ("a\t#c", "\"a\"", "\"a\\t#c\""),
    (
        "key:\tvalue\nk2:\t[1,\t2]",
        "{\"key\": \"value\", \"k2\": [1, 2]}",
        "\"key:\\tvalue\\nk2:\\t[1,\\t2]\"",
    ),
    (
        "{!!float 1: 2001-1-1 1:02:03.5 +1, -.5: , 12345678901234567890123: !!bool on}",
        "{f:3ff0000000000000: \"2001-1-1 1:02:03.5 +1\", \"-.5\": null, \"12345678901234567890123\": true}",
        "{f:3ff0000000000000: \"2001-1-1 1:02:03.5 +1\", \"-.5\": null, \"12345678901234567890123\": true}",
    ),
    (
        "[0777, 1__0, -0xfffffffffffffffff, 0x_f]",
        "[777, 10, \"-295147905179352825855\", 15]",
        "[777, 10, \"-295147905179352825855\", 15]",
    ),
    (
        "{*c: ~, 0: ', 010: é:}",
        "ERR",
        "\"{*c: ~, 0: ', 010: é:}\"",
    ),
    (
        "{<<: [{a: 1}, {b: 2}], No: 1}",
        "{\"b\": 2, \"a\": 1, false: 1}",
        "{\"b\": 2, \"a\": 1, false: 1}",
    ),
    (
        "[&a 1, 1_0.0_1, !int 1, *b]",
        "ERR",
        "\"[&a 1, 1_0.0_1, !int 1, *b]\"",
    ),
    ("[*b, 0777, oN]", "ERR", "\"[*b, 0777, oN]\""),
    (
        "{1.5: &a 1, 010: yes}",
        "{f:3ff8000000000000: 1, 10: true}",
        "{f:3ff8000000000000: 1, 10: true}",
    ),
    (
        "[, 1.0E-5, 0xffffffffffffffffffff]",
        "ERR",
        "\"[, 1.0E-5, 0xffffffffffffffffffff]\"",
    ),
    (
        "{&c {k: v}: ', é:: No}",
        "ERR",
        "\"{&c {k: v}: ', é:: No}\"",
    ),
    (
        "{1__0: 1_0, 0b1_0: &b [1], <<: !!binary YWJj}",
        "ERR",
        "\"{1__0: 1_0, 0b1_0: &b [1], <<: !!binary YWJj}\"",
    ),
    (
        "[&c {k: v}, 60:0]",
        "[{\"k\": \"v\"}, 3600]",
        "[{\"k\": \"v\"}, 3600]",
    ),
    (
        "{0b1_0: é:, 1.5: -.inf}",
        "ERR",
        "\"{0b1_0: é:, 1.5: -.inf}\"",
    ),
    (
        "[1:2:3, 1:30.5, 1:30.5]",
        "[3723, f:4056a00000000000, f:4056a00000000000]",
        "[3723, f:4056a00000000000, f:4056a00000000000]",
    ),
    ("[!int 1, *a, 1_0]", "ERR", "\"[!int 1, *a, 1_0]\""),
    (
        "[+0, !!bool on, .NaN]",
        "[0, true, f:fff8000000000000]",
        "[0, true, f:fff8000000000000]",
    ),
    (
        "{-0: 1__0, *b: .NaN, 1.: !!int 0x10}",
        "ERR",
        "\"{-0: 1__0, *b: .NaN, 1.: !!int 0x10}\"",
    ),
    (
        "{-.inf: *c, +.Inf: 0o7}",
        "ERR",
        "\"{-.inf: *c, +.Inf: 0o7}\"",
    ),
    ("[*a, No, 1_0, *a]", "ERR", "\"[*a, No, 1_0, *a]\""),
    ("[1e5, yes, !int 1]", "ERR", "\"[1e5, yes, !int 1]\""),
    ("[+0]", "[0]", "[0]"),
    (
        "{1:2: &c {k: v}, oN: 1:2:3}",
        "{62: {\"k\": \"v\"}, \"oN\": 3723}",
        "{62: {\"k\": \"v\"}, \"oN\": 3723}",
    ),
    (
        "{-010: &a 1, 12345678901234567890123: 0, 0_: =}",
        "ERR",
        "\"{-010: &a 1, 12345678901234567890123: 0, 0_: =}\"",
    ),
    (
        "[&c {k: v}, null]",
        "[{\"k\": \"v\"}, null]",
        "[{\"k\": \"v\"}, null]",
    ),
    (
        "{1:60: 010, !!float 1: a b}",
        "{\"1:60\": 10, f:3ff0000000000000: \"a b\"}",
        "{\"1:60\": 10, f:3ff0000000000000: \"a b\"}",
    ),
    (
        "[-1:59, 1:60, 'x']",
        "[-119, \"1:60\", \"x\"]",
        "[-119, \"1:60\", \"x\"]",
    ),
    (
        "[1:60, .5, 1e5]",
        "[\"1:60\", f:3fe0000000000000, \"1e5\"]",
        "[\"1:60\", f:3fe0000000000000, \"1e5\"]",
    ),
    ("{<<: 1, 0x_f: 1}", "ERR", "\"{<<: 1, 0x_f: 1}\""),
    ("{<<: 1, &c {k: v}: 1}", "ERR", "\"{<<: 1, &c {k: v}: 1}\""),
    (
        "{1__0: 1_0.0_1}",
        "{10: f:4024051eb851eb85}",
        "{10: f:4024051eb851eb85}",
    ),
    ("[', 1.5, .5]", "ERR", "\"[', 1.5, .5]\""),
    (
        "{1_0: 12345678901234567890123}",
        "{10: \"12345678901234567890123\"}",
        "{10: \"12345678901234567890123\"}",
    ),
    (
        "{1e5: &c {k: v}, &c {k: v}: yes, _1: 0o7}",
        "ERR",
        "\"{1e5: &c {k: v}, &c {k: v}: yes, _1: 0o7}\"",
    ),
    (
        "{+.Inf: *b, 0777: ~, -.5: &c {k: v}}",
        "ERR",
        "\"{+.Inf: *b, 0777: ~, -.5: &c {k: v}}\"",
    ),
    ("[&b [1], !!null a]", "[[1], null]", "[[1], null]"),
    (
        "[1:30.5, ~, -0, 1_0.0_1]",
        "[f:4056a00000000000, null, 0, f:4024051eb851eb85]",
        "[f:4056a00000000000, null, 0, f:4024051eb851eb85]",
    ),
    ("[&a 1, ']", "ERR", "\"[&a 1, ']\""),
    (
        "{1:2:3: +.Inf, é:: !int 1}",
        "ERR",
        "\"{1:2:3: +.Inf, é:: !int 1}\"",
    ),
    (
        "[.NaN, oN, 9999999999999999999999999:59, 08]",
        "[f:fff8000000000000, \"oN\", \"599999999999999999999999999\", \"08\"]",
        "[f:fff8000000000000, \"oN\", \"599999999999999999999999999\", \"08\"]",
    ),
    ("[oN, 1:30.5, 0_, ]", "ERR", "\"[oN, 1:30.5, 0_, ]\""),
    (
        "{-.inf: -010, 9999999999999999999999999:59: 010}",
        "{f:fff0000000000000: -8, \"599999999999999999999999999\": 10}",
        "{f:fff0000000000000: -8, \"599999999999999999999999999\": 10}",
    ),
    ("[010, *b, &b [1], *c]", "ERR", "\"[010, *b, &b [1], *c]\""),
    (
        "{1.: , a b: 1.5, Null: 1.5}",
        "{f:3ff0000000000000: null, \"a b\": f:3ff8000000000000, null: f:3ff8000000000000}",
        "{f:3ff0000000000000: null, \"a b\": f:3ff8000000000000, null: f:3ff8000000000000}",
    ),
    (
        "[-0xfffffffffffffffff, -0xfffffffffffffffff]",
        "[\"-295147905179352825855\", \"-295147905179352825855\"]",
        "[\"-295147905179352825855\", \"-295147905179352825855\"]",
    ),
    (
        "{1_0.0_1: -1:59, 2001-1-1 1:02:03.5 +1: 1:30.5}",
        "{f:4024051eb851eb85: -119, \"2001-1-1 1:02:03.5 +1\": f:4056a00000000000}",
        "{f:4024051eb851eb85: -119, \"2001-1-1 1:02:03.5 +1\": f:4056a00000000000}",
    ),
    ("[é:, yes, oN]", "ERR", "\"[é:, yes, oN]\""),
    (
        "{1:30.5: -.5, &b [1]: &c {k: v}}",
        "ERR",
        "\"{1:30.5: -.5, &b [1]: &c {k: v}}\"",
    ),
    ("{Null: 00}", "{null: 0}", "{null: 0}"),
    (
        "[0x_f, !!str 5, *a, -0]",
        "ERR",
        "\"[0x_f, !!str 5, *a, -0]\"",
    ),
    (
        "[-.5, null, 1:30.5]",
        "[\"-.5\", null, f:4056a00000000000]",
        "[\"-.5\", null, f:4056a00000000000]",
    ),
    (
        "{1__0: 0b1111111111111111111111111111111111111111111111111111111111111111111111}",
        "{10: \"1180591620717411303423\"}",
        "{10: \"1180591620717411303423\"}",
    ),
    (
        "{1_0.0_1: 08, !!int 0x10: !!bool on, 0xffffffffffffffffffff: -.inf}",
        "{f:4024051eb851eb85: \"08\", 16: true, \"1208925819614629174706175\": f:fff0000000000000}",
        "{f:4024051eb851eb85: \"08\", 16: true, \"1208925819614629174706175\": f:fff0000000000000}",
    ),
    ("{<<: [*c], -010: 1}", "ERR", "\"{<<: [*c], -010: 1}\""),
    (
        "[0xffffffffffffffffffff, 1:2, .NaN]",
        "[\"1208925819614629174706175\", 62, f:fff8000000000000]",
        "[\"1208925819614629174706175\", 62, f:fff8000000000000]",
    ),
    ("{': +.Inf}", "ERR", "\"{': +.Inf}\""),
    ("[-, +]", "[\"-\", \"+\"]", "[\"-\", \"+\"]"),
    (
        "{12345678901234567890123: 1.}",
        "{\"12345678901234567890123\": f:3ff0000000000000}",
        "{\"12345678901234567890123\": f:3ff0000000000000}",
    ),
    (
        "{yes: !int 1, 09.5: 0xffffffffffffffffffff}",
        "ERR",
        "\"{yes: !int 1, 09.5: 0xffffffffffffffffffff}\"",
    ),
    ("[', oN]", "ERR", "\"[', oN]\""),
    (
        "{1:60: &c {k: v}, +.Inf: 0o7}",
        "{\"1:60\": {\"k\": \"v\"}, f:7ff0000000000000: \"0o7\"}",
        "{\"1:60\": {\"k\": \"v\"}, f:7ff0000000000000: \"0o7\"}",
    ),
    ("[', !!null a]", "ERR", "\"[', !!null a]\""),
    ("{<<: *c, 00: 1}", "ERR", "\"{<<: *c, 00: 1}\""),
    (
        "[12345678901234567890123, 0x_f, .NaN, 9999999999999999999999999:59]",
        "[\"12345678901234567890123\", 15, f:fff8000000000000, \"599999999999999999999999999\"]",
        "[\"12345678901234567890123\", 15, f:fff8000000000000, \"599999999999999999999999999\"]",
    ),
    ("{0_: Null, é: <<}", "ERR", "\"{0_: Null, é: <<}\""),
    ("{Null: \"\\x41\"}", "{null: \"A\"}", "{null: \"A\"}"),
    (
        "{1.0e+5: , !!timestamp 2001-01-01: 0b1111111111111111111111111111111111111111111111111111111111111111111111}",
        "{f:40f86a0000000000: null, \"2001-01-01\": \"1180591620717411303423\"}",
        "{f:40f86a0000000000: null, \"2001-01-01\": \"1180591620717411303423\"}",
    ),
    (
        "{-010: 12345678901234567890123, -010: yes, 1_0.0_1: .5}",
        "ERR",
        "\"{-010: 12345678901234567890123, -010: yes, 1_0.0_1: .5}\"",
    ),
    (
        "{!!binary YWJj: <<, 09.5: 1__0, 0o7: _1}",
        "ERR",
        "\"{!!binary YWJj: <<, 09.5: 1__0, 0o7: _1}\"",
    ),
    (
        "{010: !!str 5, 0b1111111111111111111111111111111111111111111111111111111111111111111111: -1:59}",
        "{10: \"5\", \"1180591620717411303423\": -119}",
        "{10: \"5\", \"1180591620717411303423\": -119}",
    ),
    (
        "{.5: 0b1_0, -.5: +.Inf, 0_: 010}",
        "ERR",
        "\"{.5: 0b1_0, -.5: +.Inf, 0_: 010}\"",
    ),
    (
        "{&b [1]: 010, 0x_f: -.5, 1e5: 0_}",
        "ERR",
        "\"{&b [1]: 010, 0x_f: -.5, 1e5: 0_}\"",
    ),
    (
        "[~, 1:60, 1.0e+5, +]",
        "[null, \"1:60\", f:40f86a0000000000, \"+\"]",
        "[null, \"1:60\", f:40f86a0000000000, \"+\"]",
    ),
    ("[60:0, 'x']", "[3600, \"x\"]", "[3600, \"x\"]"),
    ("[0o7, =]", "ERR", "\"[0o7, =]\""),
    (
        "{a b: 00, *a: 1., 1.0e+5: =}",
        "ERR",
        "\"{a b: 00, *a: 1., 1.0e+5: =}\"",
    ),
    (
        "[2001-01-01, é:, 1.0E-5, null]",
        "ERR",
        "\"[2001-01-01, é:, 1.0E-5, null]\"",
    ),
    ("[+.Inf, !int 1]", "ERR", "\"[+.Inf, !int 1]\""),
    (
        "{1_0: !!int 0x10, 010: -.inf}",
        "ERR",
        "\"{1_0: !!int 0x10, 010: -.inf}\"",
    ),
    ("[~, Null, 00]", "[null, null, 0]", "[null, null, 0]"),
    (
        "{1.0E-5: &b [1]}",
        "{f:3ee4f8b588e368f1: [1]}",
        "{f:3ee4f8b588e368f1: [1]}",
    ),
    (
        "{0_: 12345678901234567890123, !int 1: '}",
        "ERR",
        "\"{0_: 12345678901234567890123, !int 1: '}\"",
    ),
    (
        "{!!timestamp 2001-01-01: 1:2}",
        "{\"2001-01-01\": 62}",
        "{\"2001-01-01\": 62}",
    ),
    ("{é:: -0}", "{\"é:\": 0}", "{\"é:\": 0}"),
    (
        "{-: 1.5, 0777: yes}",
        "{\"-\": f:3ff8000000000000, 777: true}",
        "{\"-\": f:3ff8000000000000, 777: true}",
    ),
    (
        "[oN, -.inf]",
        "[\"oN\", f:fff0000000000000]",
        "[\"oN\", f:fff0000000000000]",
    ),
    (
        "{9999999999999999999999999:59: 1:2:3}",
        "{\"599999999999999999999999999\": 3723}",
        "{\"599999999999999999999999999\": 3723}",
    ),
    ("[*b, 1.0e+5]", "ERR", "\"[*b, 1.0e+5]\""),
    (
        "[-0xfffffffffffffffff, 0, !!timestamp 2001-01-01]",
        "[\"-295147905179352825855\", 0, \"2001-01-01\"]",
        "[\"-295147905179352825855\", 0, \"2001-01-01\"]",
    ),
    ("{0o7: No}", "{\"0o7\": false}", "{\"0o7\": false}"),
    ("[0_, _1, é:, -1:59]", "ERR", "\"[0_, _1, é:, -1:59]\""),
    (
        "{!!timestamp 2001-01-01: -1:59}",
        "{\"2001-01-01\": -119}",
        "{\"2001-01-01\": -119}",
    ),
    ("'*x0x1@", "ERR", "\"'*x0x1@\""),
    ("@0", "ERR", "\"@0\""),
    ("=null", "\"=null\"", "\"=null\""),
    ("!!str 0=?00? ", "\"0=?00?\"", "\"0=?00?\""),
    ("{\\ {- ", "ERR", "\"{\\\\ {- \""),
    ("\".", "ERR", "\"\\\".\""),
    ("]x~.", "ERR", "\"]x~.\""),
    ("a>0= ", "\"a>0=\"", "\"a>0=\""),
    ("1>?}!", "\"1>?}!\"", "\"1>?}!\""),
    ("||null1]0x1", "ERR", "\"||null1]0x1\""),
    (": !", "ERR", "\": !\""),
    ("byes!: \\", "{\"byes!\": \"\\\\\"}", "\"byes!: \\\\\""),
    ("@@]>1?", "ERR", "\"@@]>1?\""),
    ("a~&x @", "\"a~&x @\"", "\"a~&x @\""),
    ("? ? yes", "ERR", "\"? ? yes\""),
    ("!b@]}{x", "ERR", "\"!b@]}{x\""),
    ("#!?<<: null&x  ", "null", "\"#!?<<: null&x  \""),
    ("0- ", "\"0-\"", "\"0-\""),
    ("?? [?yes*x", "\"?? [?yes*x\"", "\"?? [?yes*x\""),
    ("}  [", "ERR", "\"}  [\""),
    ("{<<: =0x1[", "ERR", "\"{<<: =0x1[\""),
    ("!@x{!!str ? 1", "ERR", "\"!@x{!!str ? 1\""),
    ("!1ba'!", "ERR", "\"!1ba'!\""),
    ("~|", "\"~|\"", "\"~|\""),
    ("}*x!|>", "ERR", "\"}*x!|>\""),
    ("1#\"", "\"1#\\\"\"", "\"1#\\\"\""),
    ("yesa >0~", "\"yesa >0~\"", "\"yesa >0~\""),
    ("ayes'0x1b#0", "\"ayes'0x1b#0\"", "\"ayes'0x1b#0\""),
    ("|,'}>&x {", "ERR", "\"|,'}>&x {\""),
    ("? #} ", "{null: null}", "{null: null}"),
    ("0x1\"x- !.}", "\"0x1\\\"x- !.}\"", "\"0x1\\\"x- !.}\""),
    ("~\"?@", "\"~\\\"?@\"", "\"~\\\"?@\""),
    (":]yes0x1", "\":]yes0x1\"", "\":]yes0x1\""),
    ("{]<<: ", "ERR", "\"{]<<: \""),
    ("1|,~", "\"1|,~\"", "\"1|,~\""),
    (" \\>|}}", "\"\\\\>|}}\"", "\"\\\\>|}}\""),
    ("? yes[1.5", "{\"yes[1.5\": null}", "\"? yes[1.5\""),
    (": ,", "ERR", "\": ,\""),
    ("*x!!str >", "ERR", "\"*x!!str >\""),
    ("null[|{*x!,", "\"null[|{*x!,\"", "\"null[|{*x!,\""),
    ("%0:", "ERR", "\"%0:\""),
    ("@>%", "ERR", "\"@>%\""),
    ("!1*x\"", "ERR", "\"!1*x\\\"\""),
    ("- [", "ERR", "\"- [\""),
    ("0x1*x@0yes0x1 ", "\"0x1*x@0yes0x1\"", "\"0x1*x@0yes0x1\""),
    ("&x ", "null", "null"),
    (".&x a", "\".&x a\"", "\".&x a\""),
    ("<<: : b~{ 0x1", "ERR", "\"<<: : b~{ 0x1\""),
    ("<<: &x ? }%yes\"", "ERR", "\"<<: &x ? }%yes\\\"\""),
    ("b\\'<<: [", "ERR", "\"b\\\\'<<: [\""),
    ("#\"", "null", "\"#\\\"\""),
    (",*x~", "ERR", "\",*x~\""),
    (
        "\\: :}#yes",
        "{\"\\\\\": \":}#yes\"}",
        "{\"\\\\\": \":}#yes\"}",
    ),
    ("?:@", "\"?:@\"", "\"?:@\""),
    ("{#[1", "ERR", "\"{#[1\""),
    ("1.5=", "\"1.5=\"", "\"1.5=\""),
    ("'><<: ", "ERR", "\"'><<: \""),
    ("[*x", "ERR", "\"[*x\""),
    ("{&x ", "ERR", "\"{&x \""),
    ("1.5=a]|", "\"1.5=a]|\"", "\"1.5=a]|\""),
    ("@*x{}{%a", "ERR", "\"@*x{}{%a\""),
    ("={}", "\"={}\"", "\"={}\""),
    ("? '", "ERR", "\"? '\""),
    ("0!yes", "\"0!yes\"", "\"0!yes\""),
    ("*x0 1.5\\", "ERR", "\"*x0 1.5\\\\\""),
    ("#,x", "null", "\"#,x\""),
    (",null#: :!-", "ERR", "\",null#: :!-\""),
    ("*x0x1~&x 1", "ERR", "\"*x0x1~&x 1\""),
    ("0%null ", "\"0%null\"", "\"0%null\""),
    ("0*x? ~%", "\"0*x? ~%\"", "\"0*x? ~%\""),
    (" 1,'|-!!str ", "\"1,'|-!!str\"", "\"1,'|-!!str\""),
    ("b 1", "\"b 1\"", "\"b 1\""),
    ("}null'~yes\" ", "ERR", "\"}null'~yes\\\" \""),
    ("- %*x\\null&x ", "ERR", "\"- %*x\\\\null&x \""),
    ("1 <<: %\\0[", "ERR", "\"1 <<: %\\\\0[\""),
    ("1.5b-:*x][", "\"1.5b-:*x][\"", "\"1.5b-:*x][\""),
    (" \"\\0x1!!str =-", "ERR", "\" \\\"\\\\0x1!!str =-\""),
    ("*x\"!= ", "ERR", "\"*x\\\"!= \""),
    ("@10x1- 1 ", "ERR", "\"@10x1- 1 \""),
    ("yes\"<<: }[", "ERR", "\"yes\\\"<<: }[\""),
    (">=~: 0x1a", "ERR", "\">=~: 0x1a\""),
    ("~}1", "\"~}1\"", "\"~}1\""),
    ("|*x ", "ERR", "\"|*x \""),
    (":-*x}", "\":-*x}\"", "\":-*x}\""),
    ("&x }*x&x  !", "ERR", "\"&x }*x&x  !\""),
    ("nullx ", "\"nullx\"", "\"nullx\""),
    ("!? %\\", "ERR", "\"!? %\\\\\""),
    ("{b", "ERR", "\"{b\""),
    (
        "? null%#? ~null",
        "{\"null%#? ~null\": null}",
        "{\"null%#? ~null\": null}",
    ),
    ("?,null0", "\"?,null0\"", "\"?,null0\""),
    ("?.1\\1.5", "\"?.1\\\\1.5\"", "\"?.1\\\\1.5\""),
    ("?!", "\"?!\"", "\"?!\""),
    ("%?yesx~", "ERR", "\"%?yesx~\""),
    ("ax<<: ", "{\"ax<<\": null}", "\"ax<<: \""),
    ("?1.5: >0'", "ERR", "\"?1.5: >0'\""),
    ("\"!!str |#%", "ERR", "\"\\\"!!str |#%\""),
    ("- ?!!str 1.5", "[\"?!!str 1.5\"]", "\"- ?!!str 1.5\""),
    ("\".,", "ERR", "\"\\\".,\""),
    ("'\n- ='-", "ERR", "\"'\\n- ='-\""),
    (":a\n", "\":a\"", "\":a\\n\""),
    ("#?  null\\,", "null", "\"#?  null\\\\,\""),
    ("!!str b\n", "\"b\"", "\"!!str b\\n\""),
    (
        "0x1!!str \n- [- null",
        "\"0x1!!str - [- null\"",
        "\"0x1!!str \\n- [- null\"",
    ),
    ("\\{%'", "\"\\\\{%'\"", "\"\\\\{%'\""),
    (" \n  ", "null", "\" \\n  \""),
    ("!!str 1.5,#b]1", "\"1.5,#b]1\"", "\"!!str 1.5,#b]1\""),
    ("\n", "null", "\"\\n\""),
    ("[ ", "ERR", "\"[ \""),
    ("#\n  *x<<: ", "ERR", "\"#\\n  *x<<: \""),
    ("?@b,#'", "\"?@b,#'\"", "\"?@b,#'\""),
    ("!!str 0x1&x ", "\"0x1&x\"", "\"0x1&x\""),
    ("1\",", "\"1\\\",\"", "\"1\\\",\""),
    ("]>?- ", "ERR", "\"]>?- \""),
    ("\n- !'{\n- ~<<: ", "ERR", "\"\\n- !'{\\n- ~<<: \""),
    (" <<: \n  ~0x1", "ERR", "\" <<: \\n  ~0x1\""),
    ("'\n  !- ", "ERR", "\"'\\n  !- \""),
    ("]? @- - ", "ERR", "\"]? @- - \""),
    (
        "1.5- aa\\0x10",
        "\"1.5- aa\\\\0x10\"",
        "\"1.5- aa\\\\0x10\"",
    ),
    ("\"|", "ERR", "\"\\\"|\""),
    ("a=null}-", "\"a=null}-\"", "\"a=null}-\""),
    (",%", "ERR", "\",%\""),
    (
        "0x10x1yes~a0x1yes",
        "\"0x10x1yes~a0x1yes\"",
        "\"0x10x1yes~a0x1yes\"",
    ),
    ("1&x ", "\"1&x\"", "\"1&x\""),
    ("=1:\\- !", "\"=1:\\\\- !\"", "\"=1:\\\\- !\""),
    ("!? ,]null.b", "ERR", "\"!? ,]null.b\""),
    ("!&x }|~", "ERR", "\"!&x }|~\""),
    (">&x 1.5x ", "ERR", "\">&x 1.5x \""),
    ("= ", "ERR", "\"= \""),
    ("=yes? ", "\"=yes?\"", "\"=yes?\""),
    (">\n|#*x", "ERR", "\">\\n|#*x\""),
    (".0x1\n- ", "\".0x1 -\"", "\".0x1\\n- \""),
    (" |", "\"\"", "\"\""),
    ("\"? &x !- .", "ERR", "\"\\\"? &x !- .\""),
    ("!!str 1%", "\"1%\"", "\"1%\""),
    ("|1", "\"\"", "\"\""),
    ("0x1&x \n", "\"0x1&x\"", "\"0x1&x \\n\""),
    ("{} \\", "ERR", "\"{} \\\\\""),
    (",yes11.5\"!!str ", "ERR", "\",yes11.5\\\"!!str \""),
    ("=b", "\"=b\"", "\"=b\""),
    ("x=", "\"x=\"", "\"x=\""),
    ("#>\n- a<<: ", "[{\"a<<\": null}]", "\"#>\\n- a<<: \""),
    (
        "? ?'\"!!str a",
        "{\"?'\\\"!!str a\": null}",
        "\"? ?'\\\"!!str a\"",
    ),
    ("\n'\n- *x&x  !!str ", "ERR", "\"\\n'\\n- *x&x  !!str \""),
    ("&x x.?}- [", "\"x.?}- [\"", "\"x.?}- [\""),
    ("?*x'b=x|", "\"?*x'b=x|\"", "\"?*x'b=x|\""),
    ("1 %", "\"1 %\"", "\"1 %\""),
    ("\"\\1{|#", "ERR", "\"\\\"\\\\1{|#\""),
    ("[?a]", "[{\"a\": null}]", "[{\"a\": null}]"),
    ("{?a: 1}", "{\"a\": 1}", "{\"a\": 1}"),
    ("{ ?a}", "{\"a\": null}", "{\"a\": null}"),
    (
        "[a, ?b: c]",
        "[\"a\", {\"b\": \"c\"}]",
        "[\"a\", {\"b\": \"c\"}]",
    ),
    ("{a: ?b}", "ERR", "\"{a: ?b}\""),
    ("[?]", "ERR", "\"[?]\""),
    ("{?}", "{null: null}", "{null: null}"),
    ("[|a]", "ERR", "\"[|a]\""),
    ("[>a]", "ERR", "\"[>a]\""),
    ("[ |]", "ERR", "\"[ |]\""),
    ("[:a]", "ERR", "\"[:a]\""),
    ("[:\"d\",a]", "ERR", "\"[:\\\"d\\\",a]\""),
    ("{a: |}", "ERR", "\"{a: |}\""),
    ("[&x -]", "[\"-\"]", "[\"-\"]"),
    ("{!!str -}", "{\"-\": null}", "{\"-\": null}"),
    ("[a, -b]", "[\"a\", \"-b\"]", "[\"a\", \"-b\"]"),
    ("[--]", "[\"--\"]", "[\"--\"]"),
    ("[- ]", "ERR", "\"[- ]\""),
    ("[null: ]", "[{null: null}]", "[{null: null}]"),
    ("{!!binary YWJj: }", "{b:616263: null}", "{b:616263: null}"),
    ("[-]", "[\"-\"]", "[\"-\"]"),
    ("{-}", "{\"-\": null}", "{\"-\": null}"),
    ("{a: -}", "{\"a\": \"-\"}", "{\"a\": \"-\"}"),
    ("|#", "\"\"", "\"|#\""),
    ("!!str |#~[", "\"\"", "\"!!str |#~[\""),
    ("?", "{null: null}", "\"?\""),
    ("[:, >]", "ERR", "\"[:, >]\""),
    ("|\nfoo", "ERR", "\"|\\nfoo\""),
    (">\n,", "ERR", "\">\\n,\""),
    ("k: |\n a\n# c", "{\"k\": \"a\\n\"}", "\"k: |\\n a\\n# c\""),
    ("&a.b 1", "ERR", "\"&a.b 1\""),
    ("&a[1]", "ERR", "\"&a[1]\""),
    (
        "a: &x [1, 2]\nb: *x",
        "{\"a\": [1, 2], \"b\": [1, 2]}",
        "\"a: &x [1, 2]\\nb: *x\"",
    ),
    (
        "{!!binary aGVsbG8=: 1}",
        "{b:68656c6c6f: 1}",
        "{b:68656c6c6f: 1}",
    ),
    (
        "[!!binary 'aGVs\nbG8=']",
        "[b:68656c6c6f]",
        "\"[!!binary 'aGVs\\nbG8=']\"",
    ),
    (
        "!!binary |\n  aGVs\n  bG8=",
        "b:68656c6c6f",
        "\"!!binary |\\n  aGVs\\n  bG8=\"",
    ),
    (
        "{.nan: 1, !!float nan: 2}",
        "{f:fff8000000000000: 1, f:7ff8000000000000: 2}",
        "{f:fff8000000000000: 1, f:7ff8000000000000: 2}",
    ),
    ("{.nan: 1, .NaN: 2}", "ERR", "\"{.nan: 1, .NaN: 2}\""),
    (
        "{1: a, 1.5: b, -1: c, 0x10: d, ~: e, yes: f, 2001-01-01: g}",
        "ERR",
        "\"{1: a, 1.5: b, -1: c, 0x10: d, ~: e, yes: f, 2001-01-01: g}\"",
    ),
    (
        "{18446744073709551616: a, '18446744073709551616': b}",
        "{\"18446744073709551616\": \"a\", \"18446744073709551616\": \"b\"}",
        "{\"18446744073709551616\": \"a\", \"18446744073709551616\": \"b\"}",
    ),
    ("{1e3: a, '1e3': b}", "ERR", "\"{1e3: a, '1e3': b}\""),
    (
        "0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
        "\"1461501637330902918203684832716283019655932542975\"",
        "\"1461501637330902918203684832716283019655932542975\"",
    ),
    (
        "-0b1111111111111111111111111111111111111111111111111111111111111111",
        "\"-18446744073709551615\"",
        "\"-18446744073709551615\"",
    ),
    (
        "1000000000000000000000000000000:00",
        "\"60000000000000000000000000000000\"",
        "\"60000000000000000000000000000000\"",
    ),
    ("!!int -0o17", "-15", "-15"),
    ("!!int 1:-5", "55", "55"),
    ("!!int '--5'", "5", "5"),
    (
        "!!float ' 1.5 '",
        "f:3ff8000000000000",
        "f:3ff8000000000000",
    ),
    ("!!float 1:30.5", "f:4056a00000000000", "f:4056a00000000000"),
    ("!!float -.nan", "f:fff8000000000000", "f:fff8000000000000"),
    (
        "!!float infinity",
        "f:7ff0000000000000",
        "f:7ff0000000000000",
    ),
    ("!!bool 'TRUE'", "true", "true"),
    ("!!int ' 12 '", "12", "12"),
    (
        "a: 1\nb:\n  - x\n  - {y: [1, 2]}\nc: |\n  line1\n  line2\nd: >-\n  folded\n  text\ne: 'single'\nf: \"dq \\u00e9\"\n",
        "{\"a\": 1, \"b\": [\"x\", {\"y\": [1, 2]}], \"c\": \"line1\\nline2\\n\", \"d\": \"folded text\", \"e\": \"single\", \"f\": \"dq é\"}",
        "\"a: 1\\nb:\\n  - x\\n  - {y: [1, 2]}\\nc: |\\n  line1\\n  line2\\nd: >-\\n  folded\\n  text\\ne: 'single'\\nf: \\\"dq \\\\u00e9\\\"\\n\"",
    ),
    ("\u{feff}a: 1", "{\"a\": 1}", "\"\u{feff}a: 1\""),
    ("%YAML 1.1\n--- a", "\"a\"", "\"%YAML 1.1\\n--- a\""),
    ("%YAML 1.2\n--- a", "\"a\"", "\"%YAML 1.2\\n--- a\""),
    ("%YAML 1.0\n--- a", "ERR", "\"%YAML 1.0\\n--- a\""),
    ("--- |\n  a", "\"a\"", "\"--- |\\n  a\""),
    ("--- >\n  a\n", "\"a\\n\"", "\"--- >\\n  a\\n\""),
    ("---\n---\n", "ERR", "\"---\\n---\\n\""),
    (
        "- 1\n- 2\n- [3, 4]\n- {5: 6}",
        "[1, 2, [3, 4], {5: 6}]",
        "\"- 1\\n- 2\\n- [3, 4]\\n- {5: 6}\"",
    ),
    ("a:\n- 1\n- 2", "{\"a\": [1, 2]}", "\"a:\\n- 1\\n- 2\""),
    ("\"a\\\nb\"", "\"ab\"", "\"\\\"a\\\\\\nb\\\"\""),
    ("'a\n\n  b'", "\"a\\nb\"", "\"'a\\n\\n  b'\""),
    ("a\n\n b", "\"a\\nb\"", "\"a\\n\\n b\""),
    ("[a, b]: c", "ERR", "\"[a, b]: c\""),
    ("{[a]: b}", "ERR", "\"{[a]: b}\""),
    ("nuLL", "\"nuLL\"", "\"nuLL\""),
    ("tRue", "\"tRue\"", "\"tRue\""),
    ("On", "true", "true"),
    ("oN", "\"oN\"", "\"oN\""),
    ("Y", "\"Y\"", "\"Y\""),
    ("N", "\"N\"", "\"N\""),
    ("0.", "f:0000000000000000", "f:0000000000000000"),
    ("-0.0", "f:8000000000000000", "f:8000000000000000"),
    ("+1_000.5", "f:408f440000000000", "f:408f440000000000"),
    ("1_2:3_0", "\"1_2:3_0\"", "\"1_2:3_0\""),
    ("12:60", "\"12:60\"", "\"12:60\""),
    ("1:5:9", "3909", "3909"),
    ("0:30", "\"0:30\"", "\"0:30\""),
    ("190:20:30", "685230", "685230"),
    ("1.2.3", "\"1.2.3\"", "\"1.2.3\""),
    ("1,5", "\"1,5\"", "\"1,5\""),
    ("$1", "\"$1\"", "\"$1\""),
    ("0x1G", "\"0x1G\"", "\"0x1G\""),
    ("0b2", "\"0b2\"", "\"0b2\""),
    ("0888", "\"0888\"", "\"0888\""),
    ("0777", "777", "777"),
    ("0o777", "\"0o777\"", "\"0o777\""),
    ("1e+5", "\"1e+5\"", "\"1e+5\""),
    ("1.e+5", "f:40f86a0000000000", "f:40f86a0000000000"),
    (".e5", "\".e5\"", "\".e5\""),
    ("._1", "\"._1\"", "\"._1\""),
    ("-.5e-3", "\"-.5e-3\"", "\"-.5e-3\""),
    (".5e-3", "f:3f40624dd2f1a9fc", "f:3f40624dd2f1a9fc"),
    (
        "2001-12-14t21:59:43.10-05:00",
        "\"2001-12-14t21:59:43.10-05:00\"",
        "\"2001-12-14t21:59:43.10-05:00\"",
    ),
    (
        "2001-12-14 21:59:43.10 -5",
        "\"2001-12-14 21:59:43.10 -5\"",
        "\"2001-12-14 21:59:43.10 -5\"",
    ),
    ("2002-12-14", "\"2002-12-14\"", "\"2002-12-14\""),
    ("20021214", "20021214", "20021214"),
    ("a=1", "\"a=1\"", "\"a=1\""),
    ("'", "ERR", "\"'\""),
    ("''", "\"\"", "\"\""),
    ("\"\"", "\"\"", "\"\""),
    ("' '", "\" \"", "\" \""),
    ("\" \"", "\" \"", "\" \""),
    ("\\", "\"\\\\\"", "\"\\\\\""),
    ("\\n", "\"\\\\n\"", "\"\\\\n\""),
    ("%", "ERR", "\"%\""),
    ("@a", "ERR", "\"@a\""),
    ("`a", "ERR", "\"`a\""),
    ("a|b", "\"a|b\"", "\"a|b\""),
    ("a>b", "\"a>b\"", "\"a>b\""),
    ("a!b", "\"a!b\"", "\"a!b\""),
    ("a&b", "\"a&b\"", "\"a&b\""),
    ("a*b", "\"a*b\"", "\"a*b\""),
    ("a%b", "\"a%b\"", "\"a%b\""),
    ("a@b", "\"a@b\"", "\"a@b\""),
    ("- a", "[\"a\"]", "\"- a\""),
    ("-a", "\"-a\"", "\"-a\""),
    ("--a", "\"--a\"", "\"--a\""),
    ("---a", "\"---a\"", "\"---a\""),
    ("...a", "\"...a\"", "\"...a\""),
    ("?a", "\"?a\"", "\"?a\""),
    (":a", "\":a\"", "\":a\""),
    ("a: ", "{\"a\": null}", "\"a: \""),
    ("a:b", "\"a:b\"", "\"a:b\""),
    ("a :b", "\"a :b\"", "\"a :b\""),
    (
        "{a: b, c}",
        "{\"a\": \"b\", \"c\": null}",
        "{\"a\": \"b\", \"c\": null}",
    ),
    (
        "[a, [b, [c, [d]]]]",
        "[\"a\", [\"b\", [\"c\", [\"d\"]]]]",
        "[\"a\", [\"b\", [\"c\", [\"d\"]]]]",
    ),
    (
        "{a: {b: {c: {d: 1}}}}",
        "{\"a\": {\"b\": {\"c\": {\"d\": 1}}}}",
        "{\"a\": {\"b\": {\"c\": {\"d\": 1}}}}",
    ),
    ("[]", "[]", "[]"),
    ("{}", "{}", "{}"),
    ("[{}]", "[{}]", "[{}]"),
    ("{[]: 1}", "ERR", "\"{[]: 1}\""),
    (
        "{a: [], b: {}}",
        "{\"a\": [], \"b\": {}}",
        "{\"a\": [], \"b\": {}}",
    ),
];
// @generated by running Salt 3007.8's salt.utils.args.parse_input and condition_input
const PARSE_INPUT: &[(&[&str], &str)] = &[
    (
        &[
            "a=1",
            "b=1.5",
            "c=true",
            "d=null",
            "e=[1,2]",
            "f={x: 1}",
            "g=not: a dict",
            "h=010",
            "i=1_000",
            "j=#x",
            "k=",
            "l=None",
            "m=\"quoted\"",
        ],
        "[] {\"a\": 1, \"b\": f:3ff8000000000000, \"c\": true, \"d\": null, \"e\": [1, 2], \"f\": {\"x\": 1}, \"g\": \"not: a dict\", \"h\": 10, \"i\": \"1_000\", \"j\": \"#x\", \"k\": \"\", \"l\": null, \"m\": \"quoted\"}",
    ),
    (
        &["golden/send/kv", "foo=bar", "num=3"],
        "[\"golden/send/kv\"] {\"foo\": \"bar\", \"num\": 3}",
    ),
    (
        &["{foo: Foo, bar: [1, 2]}"],
        "[{\"foo\": \"Foo\", \"bar\": [1, 2]}] {}",
    ),
    (&["{foo: [unclosed"], "[\"{foo: [unclosed\"] {}"),
    (&["data=[1,2,3]"], "[] {\"data\": [1, 2, 3]}"),
    (
        &["{a: from_data}", "a=from_kwarg"],
        "[{\"a\": \"from_data\"}] {\"a\": \"from_kwarg\"}",
    ),
    (&["a==b"], "[\"a==b\"] {}"),
    (&["=a"], "[\"=a\"] {}"),
    (&["1a=1"], "[\"1a=1\"] {}"),
    (&["_a=1"], "[] {\"_a\": 1}"),
    (&["a.b-c=1"], "[] {\"a.b-c\": 1}"),
    (&["-a=1"], "[\"-a=1\"] {}"),
    (&["a b=1"], "[\"a b=1\"] {}"),
    (&["a=b\n"], "[] {\"a\": \"b\"}"),
    (&["a=b\nc"], "[\"a=b\\nc\"] {}"),
    (&["a=\n"], "[] {\"a\": \"\"}"),
    (&["a=b\n\n"], "[\"a=b\\n\\n\"] {}"),
    (&["a=b\r"], "[] {\"a\": \"b\\r\"}"),
    (&["é=1"], "[] {\"é\": 1}"),
    (&["ü_x=ß"], "[] {\"ü_x\": \"ß\"}"),
    (&["²=1"], "[] {\"²\": 1}"),
    (&["x²=1"], "[] {\"x²\": 1}"),
    (&["Ⅻ=1"], "[] {\"Ⅻ\": 1}"),
    (&["á=1"], "[\"á=1\"] {}"),
    (&["日本=語"], "[] {\"日本\": \"語\"}"),
    (&["٣=1"], "[\"٣=1\"] {}"),
    (&["a٣=1"], "[] {\"a٣\": 1}"),
    (&["a=1", "a=2", "b=3", "a=4"], "[] {\"a\": 4, \"b\": 3}"),
    (&["10000000000000000000"], "[\"10000000000000000000\"] {}"),
    (&["-1000000000000000000"], "[\"-1000000000000000000\"] {}"),
    (&["12345678901234567890"], "[\"12345678901234567890\"] {}"),
    (&["1234567890123456789"], "[1234567890123456789] {}"),
    (&["99999999999999999999"], "[\"99999999999999999999\"] {}"),
    (&["100000000000000000000"], "[\"100000000000000000000\"] {}"),
    (
        &["k=10000000000000000000"],
        "[] {\"k\": 10000000000000000000}",
    ),
    (&["True"], "[true] {}"),
    (&["yes"], "[true] {}"),
    (&["'x=1'"], "[\"x=1\"] {}"),
    (&["x=y=z"], "[] {\"x\": \"y=z\"}"),
    (&["x=='a'"], "[\"x=='a'\"] {}"),
    (&["a-=1"], "[] {\"a-\": 1}"),
    (&["a.=1"], "[] {\"a.\": 1}"),
    (&["a:=1"], "[\"a:=1\"] {}"),
    (
        &[
            "with_env=[HOME, NOPE_NOT_SET]",
            "with_grains=[id, os_family]",
            "with_env_opts=True",
        ],
        "[] {\"with_env\": [\"HOME\", \"NOPE_NOT_SET\"], \"with_grains\": [\"id\", \"os_family\"], \"with_env_opts\": true}",
    ),
    (
        &["preload={extra: 1, id: fake}"],
        "[] {\"preload\": {\"extra\": 1, \"id\": \"fake\"}}",
    ),
    (&["\u{3000}a=1"], "[\"\u{3000}a=1\"] {}"),
    (&["a\u{3000}=1"], "[\"a\u{3000}=1\"] {}"),
    (&["ª=1"], "[] {\"ª\": 1}"),
    (&["_=1"], "[] {\"_\": 1}"),
    (&["__kwarg__=True"], "[] {\"__kwarg__\": true}"),
];

#[test]
fn a_tagged_quoted_scalar_ending_in_a_newline_resolves_as_pythons_dollar_does() {
    // PyYAML: {'a': 1, 'b': None, 'c': 1.5, 'd': '\n'}
    assert_eq!(
        loaded("a: ! \"1\\n\"\nb: ! \"~\\n\"\nc: ! \"1.5\\n\"\nd: ! \"\\n\"\n"),
        loaded("a: 1\nb: null\nc: 1.5\nd: \"\\n\"\n")
    );
}
