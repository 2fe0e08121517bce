//! The state cases of `tests/states/` (see its README): SLS trees with what real Salt 3007.8
//! returned and printed for them, recorded by `tests/states/record.py`.
//!
//! Here they hold the highstate outputter to Salt's bytes: each recorded return, printed by
//! halite, must equal what Salt's own outputter printed for it, with Salt's defaults
//! (`salt.highstate`) and with every option set and colour of `salt.variants.json`.

use std::path::{Path, PathBuf};

use halite::event::Value;
use halite::output::outputter::{HighstateOptions, Outputter};

fn cases_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/states")
}

/// Every case directory, by name.
fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .expect("tests/states")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.join("case.yaml").is_file())
        .collect();
    cases.sort();
    cases
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A JSON document as a msgpack-shaped value, keys in the document's order.
fn value_of(json: &str) -> Value {
    serde_json::from_str(json).expect("recorded JSON")
}

/// The rules of `tests/states/normalise.json` that apply to a return: in every state of a
/// state run (a map with `__run_num__`), `state_fields` replaced where present, and the same
/// for `changes_fields` in its `changes`. (Its `dirs` and `tmp` map the run's temporary paths
/// back to their tokens, in every string, before this.)
fn normalise(ret: &mut serde_json::Value, rules: &serde_json::Value) {
    let Some(states) = ret.as_object_mut() else {
        return;
    };
    for state in states.values_mut() {
        let Some(state) = state
            .as_object_mut()
            .filter(|s| s.contains_key("__run_num__"))
        else {
            continue;
        };
        for (field, value) in rules["state_fields"].as_object().expect("state_fields") {
            if let Some(slot) = state.get_mut(field) {
                *slot = value.clone();
            }
        }
        if let Some(changes) = state.get_mut("changes").and_then(|c| c.as_object_mut()) {
            for (field, value) in rules["changes_fields"].as_object().expect("changes_fields") {
                if let Some(slot) = changes.get_mut(field) {
                    *slot = value.clone();
                }
            }
        }
    }
}

/// The options a variant names, as Salt's option names and `color`.
fn variant_options(options: &serde_json::Value) -> (HighstateOptions, bool) {
    let mut out = HighstateOptions::DEFAULT;
    let flag = |key: &str, default: bool| options[key].as_bool().unwrap_or(default);
    if let Some(state_output) = options["state_output"].as_str() {
        out.set_state_output(state_output);
    }
    out.verbose = flag("state_verbose", true);
    out.profile = flag("state_output_profile", true);
    (out, flag("color", false))
}

#[test]
fn the_corpus_covers_enough_cases_and_each_is_recorded_or_says_why_not() {
    let cases = cases();
    assert!(cases.len() >= 32, "only {} cases", cases.len());
    for case in cases {
        let recorded = case.join("salt.json").is_file();
        let needs = read(&case.join("case.yaml")).contains("needs:");
        assert!(
            recorded || needs,
            "{}: not recorded and no needs that say why (run tests/states/record.py)",
            case.display()
        );
    }
}

#[test]
fn recorded_returns_are_normalised() {
    let rules: serde_json::Value =
        serde_json::from_str(&read(&cases_dir().join("normalise.json"))).expect("rules");
    for case in cases().iter().filter(|c| c.join("salt.json").is_file()) {
        let recorded: serde_json::Value =
            serde_json::from_str(&read(&case.join("salt.json"))).expect("salt.json");
        let mut again = recorded.clone();
        normalise(&mut again["local"], &rules);
        assert_eq!(again, recorded, "{}", case.display());
        let text = read(&case.join("salt.json"));
        assert!(
            !text.contains("/tmp/hsrec-"),
            "{}: a temporary path",
            case.display()
        );
    }
}

#[test]
fn recorded_state_runs_print_as_salts_highstate_outputter_prints_them() {
    let mut checked = 0;
    let mut wrong = Vec::new();
    for case in cases().iter().filter(|c| c.join("salt.json").is_file()) {
        let name = case.file_name().unwrap_or_default().to_string_lossy();
        let doc = value_of(&read(&case.join("salt.json")));
        let rc: i64 = read(&case.join("salt.rc")).trim().parse().expect("salt.rc");
        let retcode = i64::from(rc != 0);
        let mut check = |options: HighstateOptions, color: bool, want: &str, label: String| {
            let printed = Outputter::Highstate(options).render_with_retcode(&doc, color, retcode);
            if printed != want {
                wrong.push(format!(
                    "{name} ({label}):\n{printed}\n---- Salt printed:\n{want}"
                ));
            }
            checked += 1;
        };
        let want = read(&case.join("salt.highstate"));
        check(
            HighstateOptions::DEFAULT,
            false,
            &want,
            "defaults".to_owned(),
        );
        let variants: serde_json::Value =
            serde_json::from_str(&read(&case.join("salt.variants.json"))).expect("variants");
        for variant in variants.as_array().expect("a list") {
            let (options, color) = variant_options(&variant["options"]);
            let want = variant["text"].as_str().expect("text");
            check(options, color, want, variant["options"].to_string());
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {checked} differ:\n{}",
        wrong.len(),
        wrong.join("\n\n")
    );
    assert!(checked > 400, "only {checked} renderings checked");
}
