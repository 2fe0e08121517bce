//! The function, runner and wheel registries: what the README lists, and the rules read from
//! them.

use std::path::Path;

use halite::runners::MasterFunction;

/// The names in the first column of the table under `heading` (up to the next heading).
fn readme_table(readme: &str, heading: &str) -> Vec<String> {
    let mut lines = readme.lines().skip_while(|line| *line != heading);
    assert!(
        lines.next().is_some(),
        "README.md has no {heading:?} section"
    );
    lines
        .take_while(|line| !line.starts_with('#'))
        .filter_map(|line| line.strip_prefix("| `")?.split_once('`'))
        .map(|(name, _)| name.to_owned())
        .collect()
}

fn names(registry: &[MasterFunction]) -> Vec<&'static str> {
    registry.iter().map(MasterFunction::name).collect()
}

#[test]
fn readme_lists_exactly_the_functions_runners_and_wheel_functions_of_the_registries() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let functions: Vec<&str> = halite::functions::FUNCTIONS
        .iter()
        .map(|function| function.name())
        .collect();
    for (heading, registry) in [
        ("### Execution functions", functions),
        ("### Runners", names(halite::runners::RUNNERS)),
        ("### Wheel functions", names(halite::wheel::WHEELS)),
    ] {
        assert_eq!(
            readme_table(&readme, heading),
            registry,
            "README.md's {heading:?} table"
        );
    }
}

#[test]
fn registries_are_sorted_without_duplicates() {
    let functions: Vec<&str> = halite::functions::FUNCTIONS
        .iter()
        .map(|function| function.name())
        .collect();
    for registry in [
        functions,
        names(halite::runners::RUNNERS),
        names(halite::wheel::WHEELS),
    ] {
        assert!(registry.is_sorted_by(|a, b| a < b), "{registry:?}");
    }
}

#[test]
fn legacy_reactions_pass_the_required_parameters_positionally() {
    let positional = |registry: &[MasterFunction]| -> Vec<(&str, Vec<&str>)> {
        registry
            .iter()
            .filter(|entry| !entry.positional().is_empty())
            .map(|entry| (entry.name(), entry.positional().to_vec()))
            .collect()
    };
    assert_eq!(
        positional(halite::runners::RUNNERS),
        [
            ("event.send", vec!["tag"]),
            ("http.query", vec!["url"]),
            ("jobs.list_job", vec!["jid"]),
            ("jobs.lookup_jid", vec!["jid"]),
            ("jobs.print_job", vec!["jid"]),
            ("ret.get_fun", vec!["returner", "fun"]),
            ("ret.get_jid", vec!["returner", "jid"]),
            ("ret.get_jids", vec!["returner"]),
            ("ret.get_minions", vec!["returner"]),
        ]
    );
    let wheel = positional(halite::wheel::WHEELS);
    let expected: Vec<(&str, Vec<&str>)> = names(halite::wheel::WHEELS)
        .into_iter()
        .filter(|name| *name != "key.list_all")
        .map(|name| (name, vec!["match"]))
        .collect();
    assert_eq!(wheel, expected);
}

#[test]
fn readme_lists_exactly_the_beacon_modules() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let mut listed = readme_table(&readme, "### Beacon modules");
    listed.sort_unstable();
    let modules: Vec<&str> = halite::beacons::MODULES.iter().map(|m| m.name).collect();
    assert_eq!(listed, modules, "README.md's \"### Beacon modules\" table");
}

#[test]
fn readme_lists_exactly_the_returners() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let listed = readme_table(&readme, "### Returners");
    assert_eq!(
        listed,
        halite::returners::names(),
        "README.md's \"### Returners\" table, in order"
    );
}
