//! Help: the `sys` functions, `salt-run -d`, completions that name functions, runners,
//! outputters and minion ids, and man pages with their sections. The expected shapes were
//! captured from Salt 3007.8 (`salt-call --local --out=json`, `salt-run -d`).

use crate::support::{COMMANDS, Lab, bin, stderr, stdout};

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
    // Every runner module salt-run has, once each, its own state.event among them.
    let runners = local_json(&lab, &["sys.list_runners"]);
    for module in ["jobs", "manage", "state", "test"] {
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

/// `salt-run -d manage.alived` showed manage.present's usage line, and `sys.doc cmd.retcode`
/// cmd.run's: functions that share another's parameters shared its usage line, name and all.
#[test]
fn every_usage_line_names_its_own_function() {
    let lab = Lab::new();
    let output = lab.run("salt-run", &["-d"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let mut runner = String::new();
    let mut checked = 0;
    for line in stdout(&output).lines() {
        if let Some(name) = line.strip_suffix(':').filter(|_| !line.starts_with(' ')) {
            runner = name.to_owned();
        } else if let Some(usage) = line.trim_start().strip_prefix("Usage: salt-run ") {
            assert!(
                usage.starts_with(&format!("{runner} ")) || usage == runner,
                "{runner}: {line}"
            );
            checked += 1;
        }
    }
    assert!(checked > 20, "{checked} runners");
    let docs = local_json(&lab, &["sys.doc"]);
    let docs: serde_json::Value = serde_json::from_str(&docs).unwrap();
    let docs = docs["local"].as_object().unwrap();
    assert!(docs.len() > 50);
    for (name, doc) in docs {
        let usage = doc
            .as_str()
            .unwrap()
            .split("Usage: ")
            .nth(1)
            .unwrap_or_default();
        assert!(
            usage.starts_with(&format!("{name} ")) || usage == name.as_str(),
            "{name}: {usage}"
        );
    }
}

/// `halite --help` said only how to link it, as an error: it says what it is and names the
/// seven commands with what each does.
#[test]
fn halite_help_says_what_it_is_and_names_its_seven_commands() {
    let halite = env!("CARGO_BIN_EXE_halite");
    let output = std::process::Command::new(halite)
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.starts_with(&format!("halite {}: ", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    let listed: Vec<&str> = text
        .lines()
        .skip_while(|line| *line != "Commands:")
        .skip(1)
        .take_while(|line| !line.is_empty())
        .map(|line| line.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(listed, COMMANDS);
    assert!(
        text.contains("  salt-run     Run a runner function on the master\n"),
        "{text}"
    );
    let output = std::process::Command::new(halite).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("halite --help"),
        "{}",
        stderr(&output)
    );
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
    assert!(fish.contains("-n __fish_is_first_arg -f -a '(salt-key -l acc"));
    assert!(generated("salt-key", "fish").contains("-s a -l accept -x -a '(salt-key -l all"));
}

/// A pending id that would run a command if a completion script expanded it.
const HOSTILE_ID: &str = "x$(>pwned)";

/// A lab whose key store holds accepted web1, web2 and db1 and pending new1 and
/// [`HOSTILE_ID`], and whose second config dir `etc2` names a key store of accepted other1 alone,
/// with the `PATH` under which a completion script's `salt-key` is ours.
fn key_store_lab() -> (Lab, std::ffi::OsString) {
    let lab = Lab::new();
    let other = lab.path().join("pki2/master/minions");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("other1"), "key").unwrap();
    std::fs::create_dir_all(lab.path().join("etc2")).unwrap();
    std::fs::write(
        lab.path().join("etc2/master"),
        format!("pki_dir: {}\n", lab.path().join("pki2/master").display()),
    )
    .unwrap();
    let pki = lab.path().join("pki/master");
    for (state, ids) in [
        ("minions", &["web1", "web2", "db1"][..]),
        ("minions_pre", &["new1", HOSTILE_ID][..]),
    ] {
        std::fs::create_dir_all(pki.join(state)).unwrap();
        for id in ids {
            std::fs::write(pki.join(state).join(id), "key").unwrap();
        }
    }
    let bin_dir = bin("salt-key").parent().unwrap().to_owned();
    let path = std::env::join_paths(
        std::iter::once(bin_dir).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    (lab, path)
}

/// What `command` (a shell running a driver script) prints for `cases`, the command lines
/// it completes, given on its stdin one a line; `salt-key` reads the lab's key store.
fn complete_lines(lab: &Lab, path: &std::ffi::OsStr, command: &[&str], cases: &[&str]) -> String {
    let mut child = std::process::Command::new(command[0])
        .args(&command[1..])
        .current_dir(lab.path())
        .env("PATH", path)
        .env("SALT_CONFIG_DIR", lab.etc())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    for case in cases {
        std::io::Write::write_all(&mut input, format!("{case}\n").as_bytes()).unwrap();
    }
    drop(input);
    let output = crate::support::wait_output(child, std::time::Duration::from_secs(60));
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        !lab.path().join("pwned").exists(),
        "a minion id was run as a command"
    );
    stdout(&output)
}

/// Bash loads the generated scripts and calls the function each registers with `complete`,
/// as bash does on Tab, with COMP_WORDS and COMP_CWORD set; it prints COMPREPLY.
const BASH_DRIVER: &str = r#"
source "$1"
source "$2"
while IFS= read -r line; do
    read -ra COMP_WORDS <<< "$line"
    [[ $line == *" " ]] && COMP_WORDS+=("")
    COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
    function=$(complete -p "${COMP_WORDS[0]}")
    function=${function##*-F }
    function=${function%% *}
    COMPREPLY=()
    "$function" "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
    echo "${COMPREPLY[*]}"
done
"#;

#[test]
fn bash_completion_offers_the_key_stores_minion_ids() {
    let (lab, path) = key_store_lab();
    let mut scripts = Vec::new();
    for name in ["salt", "salt-key"] {
        let script = lab.path().join(format!("{name}.bash"));
        std::fs::write(&script, generated(name, "bash")).unwrap();
        scripts.push(script.display().to_string());
    }
    let driver = lab.path().join("driver.bash");
    std::fs::write(&driver, BASH_DRIVER).unwrap();
    let driver = driver.display().to_string();
    let cases = [
        "salt ",
        "salt we",
        "salt -t 5 --out = json -L ",
        "salt web1 ",
        "salt --tim",
        "salt-key -a ",
        "salt-key --delete n",
        "salt-key -y -f x",
        "salt --out ",
        "salt -t 5 ",
        "salt-key -l ",
        "salt -c etc2 ",
        "salt --config-dir = etc2 -t 5 ",
    ];
    let text = complete_lines(
        &lab,
        &path,
        &[
            "bash",
            "--norc",
            "--noprofile",
            &driver,
            &scripts[0],
            &scripts[1],
        ],
        &cases,
    );
    let offered: Vec<&str> = text.lines().collect();
    assert_eq!(offered.len(), cases.len(), "{text}");
    // A target is an accepted minion; salt-key's actions take keys in any state.
    assert_eq!(offered[0], "db1 web1 web2");
    assert_eq!(offered[1], "web1 web2");
    assert_eq!(
        offered[2], "db1 web1 web2",
        "options and their values skipped"
    );
    assert!(offered[3].contains("test.ping") && !offered[3].contains("web2"));
    assert_eq!(offered[4], "--timeout");
    assert_eq!(offered[5], format!("db1 web1 web2 new1 {HOSTILE_ID}"));
    assert_eq!(offered[6], "new1");
    assert_eq!(offered[7], HOSTILE_ID);
    // An option's value is the option's: outputters, key states; ids only after it.
    assert_eq!(offered[8], "nested json yaml txt raw quiet highstate");
    assert_eq!(offered[9], "db1 web1 web2");
    assert_eq!(
        offered[10],
        "acc accepted pre un unaccepted rej rejected den denied all"
    );
    // The key store of the config dir the line names.
    assert_eq!(offered[11], "other1");
    assert_eq!(offered[12], "other1");
}

/// Zsh drives an interactive zsh in a pseudo-terminal, its completion loaded from the
/// directory $1: types each line of stdin and a Tab, and prints what was offered (every
/// compadd's matches) on one line, once the completion system is done.
const ZSH_DRIVER: &str = r#"
zmodload zsh/zpty
offered=$PWD/offered
while IFS= read -r line; do
    rm -f $offered
    zpty shell zsh -f -i
    zpty -w shell "fpath=($1 \$fpath); autoload -Uz compinit; compinit -u -D"
    zpty -w shell "compadd() { local -a found; builtin compadd -O found "\$@"; print -rl -- \$found >> $offered; builtin compadd "\$@"; }"
    zpty -w shell "finished() { print -r -- '-- done' >> $offered; }; comppostfuncs=(finished)"
    zpty -w -n shell "$line"$'	'
    for i in {1..300}; do
        [[ -f $offered ]] && grep -qx -- '-- done' $offered && break
        sleep 0.1
    done
    zpty -d shell
    print -r -- ${(j: :)${(f)"$(grep -vx -- '-- done' $offered)"}}
done
"#;

#[test]
fn zsh_completion_offers_the_key_stores_minion_ids() {
    if std::process::Command::new("zsh")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: no zsh (tests/system-packages.sh installs Debian's)");
        return;
    }
    let (lab, path) = key_store_lab();
    let functions = lab.path().join("zsh");
    std::fs::create_dir_all(&functions).unwrap();
    for name in ["salt", "salt-key"] {
        std::fs::write(functions.join(format!("_{name}")), generated(name, "zsh")).unwrap();
    }
    let driver = lab.path().join("driver.zsh");
    std::fs::write(&driver, ZSH_DRIVER).unwrap();
    let (driver, functions) = (
        driver.display().to_string(),
        functions.display().to_string(),
    );
    let cases = [
        "salt ",
        "salt -t 5 we",
        "salt-key -a ",
        "salt-key --delete=n",
        "salt -c etc2 ",
    ];
    let text = complete_lines(&lab, &path, &["zsh", "-f", &driver, &functions], &cases);
    let offered: Vec<Vec<&str>> = text.lines().map(|line| line.split(' ').collect()).collect();
    assert_eq!(offered.len(), cases.len(), "{text}");
    let has = |case: usize, id: &str| offered[case].contains(&id);
    // zsh offers a target's ids with the function that follows it, clap's optional TARGET.
    assert!(
        ["db1", "web1", "web2"].iter().all(|id| has(0, id)),
        "{text}"
    );
    assert!(!has(0, "new1"), "{text}");
    assert!(has(1, "web1") && has(1, "web2") && !has(1, "db1"), "{text}");
    for id in ["db1", "web1", "web2", "new1", HOSTILE_ID] {
        assert!(has(2, id), "{id}: {text}");
    }
    assert_eq!(offered[3], ["new1"], "{text}");
    assert!(has(4, "other1") && !has(4, "web1"), "{text}");
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
