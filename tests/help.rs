//! Help: the `sys` functions, `salt-run -d`, completions that name functions, runners,
//! outputters and minion ids, and man pages with their sections. The expected shapes were
//! captured from Salt 3007.8 (`salt-call --local --out=json`, `salt-run -d`).

use crate::support::{Lab, bin, stderr, stdout};

/// `salt-call --local --out=json` of `args` in a lab without daemons.
fn local_json(lab: &Lab, args: &[&str]) -> String {
    let mut all = vec!["--local", "--out=json"];
    all.extend_from_slice(args);
    let output = lab.run("salt-call", &all);
    assert!(output.status.success(), "{args:?}: {}", stderr(&output));
    stdout(&output)
}

#[test]
fn sys_functions_return_salts_shapes() {
    let lab = Lab::new();
    // Salt 3007.8, byte for byte.
    let cases: &[(&[&str], &str)] = &[
        (
            &["sys.argspec", "test.echo"],
            "{\n    \"local\": {\n        \"test.echo\": {\n            \"args\": [\n                \"text\"\n            ],\n            \"defaults\": null,\n            \"varargs\": null,\n            \"kwargs\": null\n        }\n    }\n}\n",
        ),
        (
            &["sys.argspec", "sys.doc"],
            "{\n    \"local\": {\n        \"sys.doc\": {\n            \"args\": null,\n            \"defaults\": null,\n            \"varargs\": true,\n            \"kwargs\": null\n        }\n    }\n}\n",
        ),
        (&["sys.argspec"], "{\n    \"local\": {}\n}\n"),
        (
            &["sys.list_modules", "sys"],
            "{\n    \"local\": [\n        \"sys\"\n    ]\n}\n",
        ),
        (
            &["sys.list_modules", "gr*"],
            "{\n    \"local\": [\n        \"grains\",\n        \"group\"\n    ]\n}\n",
        ),
        (
            &["sys.list_runners", "jobs", "test.s*"],
            "{\n    \"local\": [\n        \"jobs\",\n        \"test\"\n    ]\n}\n",
        ),
        (
            &["sys.argspec", "sys.list_runners"],
            "{\n    \"local\": {\n        \"sys.list_runners\": {\n            \"args\": null,\n            \"defaults\": null,\n            \"varargs\": true,\n            \"kwargs\": null\n        }\n    }\n}\n",
        ),
    ];
    for (args, expected) in cases {
        assert_eq!(local_json(&lab, args), *expected, "{args:?}");
    }
    // Globs and module names select as Salt's do; every name is one halite has.
    let listed = local_json(&lab, &["sys.list_functions", "test.*"]);
    assert!(listed.contains("\"test.echo\"") && listed.contains("\"test.ping\""));
    assert!(!listed.contains("\"sys."), "{listed}");
    // Every runner module salt-run has, once each.
    let runners = local_json(&lab, &["sys.list_runners"]);
    for module in ["jobs", "manage", "test"] {
        assert_eq!(
            runners.matches(&format!("\"{module}\"")).count(),
            1,
            "{runners}"
        );
    }
    let docs = local_json(&lab, &["sys.doc", "test.echo"]);
    assert!(docs.contains("\"test.echo\": \"The text back\\n\\nUsage: test.echo TEXT\""));
}

#[test]
fn salt_run_doc_prints_salts_layout_without_a_master() {
    let lab = Lab::new();
    let output = lab.run("salt-run", &["-d", "test.sleep"]);
    assert!(output.status.success(), "{}", stderr(&output));
    // Salt's layout: the name and a colon, a blank line, the docstring indented four, a line
    // of four spaces.
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "test.sleep:");
    assert_eq!(lines[1], "");
    assert!(lines[2].starts_with("    ") && !lines[2].starts_with("     "));
    assert_eq!(lines.last(), Some(&"    "));
    assert!(text.contains("    Usage: salt-run test.sleep"), "{text}");
    // A module lists its functions in order; an unknown name prints nothing, as in Salt.
    let output = lab.run("salt-run", &["--doc", "jobs"]);
    let names: Vec<String> = stdout(&output)
        .lines()
        .filter(|line| line.ends_with(':') && !line.starts_with(' '))
        .map(str::to_owned)
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert!(names.len() > 1 && names == sorted, "{names:?}");
    assert!(names.iter().all(|name| name.starts_with("jobs.")));
    let output = lab.run("salt-run", &["-d", "nosuch"]);
    assert!(output.status.success());
    assert_eq!(stdout(&output), "");
    let output = lab.run("salt-run", &["-d", "test.sleep", "--out=json"]);
    assert!(stdout(&output).starts_with("\"test.sleep:\"\n\n"));
}

fn generated(name: &str, kind: &str) -> String {
    let output = std::process::Command::new(bin(name))
        .args(["--generate", kind])
        .output()
        .unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn completions_offer_functions_runners_outputters_and_minion_ids() {
    for shell in ["bash", "zsh", "fish"] {
        let salt = generated("salt", shell);
        assert!(
            salt.contains("test.ping") && salt.contains("sys.list_functions"),
            "{shell}"
        );
        assert!(salt.contains("highstate"), "{shell}: --out values");
        assert!(
            generated("salt-call", shell).contains("sys.argspec"),
            "{shell}"
        );
        assert!(
            generated("salt-run", shell).contains("jobs.lookup_jid"),
            "{shell}"
        );
    }
    let fish = generated("salt", "fish");
    assert!(
        fish.contains("-n '__fish_is_nth_token 2' -f -a 'test.ping'"),
        "{fish}"
    );
    assert!(fish.contains("-n __fish_is_first_arg -f -a '(salt-key -l all"));
    assert!(generated("salt-key", "fish").contains("-s a -l accept -x -a '(salt-key -l all"));
}

#[test]
fn man_pages_say_what_each_binary_does_in_the_usual_sections() {
    let mut names = std::collections::HashSet::new();
    for (name, section) in [
        ("salt-master", "8"),
        ("salt-minion", "8"),
        ("salt-api", "8"),
        ("salt", "1"),
        ("salt-call", "1"),
        ("salt-run", "1"),
        ("salt-key", "1"),
    ] {
        let page = generated(name, "man");
        assert!(page.contains(&format!(".TH {name} {section} ")), "{name}");
        for heading in [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "OPTIONS",
            "\"EXIT STATUS\"",
            "FILES",
            "ENVIRONMENT",
        ] {
            assert!(
                page.contains(&format!("\n.SH {heading}\n")),
                "{name}: {heading}"
            );
        }
        if section == "1" {
            assert!(page.contains("\n.SH EXAMPLES\n"), "{name}");
        }
        let line = page
            .lines()
            .skip_while(|l| *l != ".SH NAME")
            .nth(1)
            .unwrap();
        assert!(
            names.insert(line.split_once(" \\- ").unwrap().1.to_owned()),
            "{line}"
        );
        let help = std::process::Command::new(bin(name))
            .arg("--help")
            .output()
            .unwrap();
        assert!(
            !String::from_utf8_lossy(&help.stdout).starts_with("Salt's event bus"),
            "{name}"
        );
    }
}
