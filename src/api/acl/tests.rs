//! The checks replayed against Salt 3007.8's own answers (`testdata/salt_acl_cases.py` wrote
//! `testdata/salt_acl_cases.json` by calling Salt's functions).

use super::*;

fn cases() -> Value {
    serde_json::from_str(include_str!("testdata/salt_acl_cases.json")).unwrap()
}

/// The targets the Python side declared allowed (its stand-in for `validate_tgt`).
fn target_allows(valid: &str) -> bool {
    matches!(valid, "web*" | "G@os:Debian")
}

/// A publish's `arg` as the check reads it: a map with `__kwarg__` holds keywords.
fn split(arg: &Value) -> CliArgs {
    crate::functions::Call::from_load("", arg).args
}

#[test]
fn function_checks_answer_as_salts() {
    let data = cases();
    let lists = map_get(&data, "lists").unwrap();
    let mut checked = 0;
    for case in map_get(&data, "cases").unwrap().as_array().unwrap() {
        let [kind, list, fun, arg, want] = case.as_array().unwrap().as_slice() else {
            panic!("bad case {case}");
        };
        let (kind, fun) = (kind.as_str().unwrap(), fun.as_str().unwrap());
        let list = map_get(lists, list.as_str().unwrap())
            .unwrap()
            .as_array()
            .unwrap();
        let got = match kind {
            "local" => local_allowed(list, fun, &split(arg), target_allows),
            "spec-runner" => special_allowed(list, "runner", fun, &CliArgs::default()),
            "spec-wheel" => special_allowed(list, "wheel", fun, &CliArgs::default()),
            other => panic!("unknown kind {other}"),
        };
        assert_eq!(got, want.as_bool().unwrap(), "{case}");
        checked += 1;
    }
    assert!(checked > 300, "{checked}");
}

#[test]
fn lists_and_login_perms_answer_as_salts() {
    let data = cases();
    let eauth = map_get(&data, "eauth").unwrap();
    for (key, want) in map_get(&data, "fill").unwrap().as_map().unwrap() {
        let (user, groups) = key.as_str().unwrap().split_once('/').unwrap();
        let groups: Vec<String> = groups
            .split(',')
            .filter(|g| !g.is_empty())
            .map(str::to_owned)
            .collect();
        let list = Value::Array(auth_list(eauth, user, &groups, false));
        assert_eq!(&list, map_get(want, "auth_list").unwrap(), "{key}");
        let permissive = Value::Array(auth_list(eauth, user, &groups, true));
        assert_eq!(&permissive, map_get(want, "permissive").unwrap(), "{key}");
        let perms = login_perms(eauth, user, &groups);
        assert_eq!(&perms, map_get(want, "perms").unwrap(), "{key}");
    }
}

#[test]
fn golden_login_perms_are_salts() {
    // golden/16: `saltdev: ['.*', '@runner', '@wheel']` under `auto`.
    let eauth: Value =
        serde_json::from_str(r#"{"saltdev": ["@wheel", ".*", "@runner", ".*"]}"#).unwrap();
    assert_eq!(
        login_perms(&eauth, "saltdev", &[]).to_string(),
        r#"[".*", "@runner", "@wheel"]"#
    );
    assert_eq!(login_perms(&eauth, "nobody", &[]).to_string(), "{}");
}
