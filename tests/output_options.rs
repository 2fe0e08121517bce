//! The output options every returning command shares, against real daemons: `--out-file`,
//! `--out-file-append`, `--out-indent`, `--no-parse` and `-V`, with Salt 3007.8's bytes.

use std::path::Path;
use std::process::Output;

use crate::support::{Cluster, Lab, stderr, stdout};

/// The data the indent goldens echo: lists, maps, empty ones, a nested list.
const DATA: &str = "{a: [1, {b: c}], d: {}, e: x y, f: [], g: [[1, 2]]}";

/// `salt-call test.echo DATA --out=json --out-indent=N` from Salt 3007.8.
const GOLDEN_JSON: [(&str, &str); 4] = [
    (
        "-1",
        "{\"local\": {\"a\": [1, {\"b\": \"c\"}], \"d\": {}, \"e\": \"x y\", \"f\": [], \"g\": [[1, 2]]}}\n",
    ),
    (
        "0",
        "{\n\"local\": {\n\"a\": [\n1,\n{\n\"b\": \"c\"\n}\n],\n\"d\": {},\n\"e\": \"x y\",\n\"f\": [],\n\"g\": [\n[\n1,\n2\n]\n]\n}\n}\n",
    ),
    (
        "2",
        "{\n  \"local\": {\n    \"a\": [\n      1,\n      {\n        \"b\": \"c\"\n      }\n    ],\n    \"d\": {},\n    \"e\": \"x y\",\n    \"f\": [],\n    \"g\": [\n      [\n        1,\n        2\n      ]\n    ]\n  }\n}\n",
    ),
    (
        "7",
        "{\n       \"local\": {\n              \"a\": [\n                     1,\n                     {\n                            \"b\": \"c\"\n                     }\n              ],\n              \"d\": {},\n              \"e\": \"x y\",\n              \"f\": [],\n              \"g\": [\n                     [\n                            1,\n                            2\n                     ]\n              ]\n       }\n}\n",
    ),
];

/// `salt-call test.echo DATA --out=yaml --out-indent=N` from Salt 3007.8: libyaml takes 2 to
/// 9 and indents 2 otherwise; a negative N is flow style.
const GOLDEN_YAML: [(&str, &str); 5] = [
    (
        "-1",
        "{local: {a: [1, {b: c}], d: {}, e: x y, f: [], g: [[1, 2]]}}\n",
    ),
    (
        "0",
        "local:\n  a:\n  - 1\n  - b: c\n  d: {}\n  e: x y\n  f: []\n  g:\n  - - 1\n    - 2\n",
    ),
    (
        "3",
        "local:\n   a:\n   - 1\n   -  b: c\n   d: {}\n   e: x y\n   f: []\n   g:\n   -  - 1\n      - 2\n",
    ),
    (
        "4",
        "local:\n    a:\n    - 1\n    -   b: c\n    d: {}\n    e: x y\n    f: []\n    g:\n    -   - 1\n        - 2\n",
    ),
    (
        "10",
        "local:\n  a:\n  - 1\n  - b: c\n  d: {}\n  e: x y\n  f: []\n  g:\n  - - 1\n    - 2\n",
    ),
];

/// `--out=nested --out-indent=7` from Salt 3007.8: nested has no use for the option.
const GOLDEN_NESTED: &str = "local:\n    ----------\n    a:\n        - 1\n        |_\n          ----------\n          b:\n              c\n    d:\n        ----------\n    e:\n        x y\n    f:\n    g:\n        |_\n          - 1\n          - 2\n";

/// Flow-style yaml folds past column 80 and quotes what flow style cannot hold plain, from
/// Salt 3007.8 with `--out=yaml --out-indent=-1`.
const FLOW_DATA: &str = "{k: 'a, b', long: 'word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word end', t: 'true', c: 'x: y', h: 'x#y', e: '', q: '[x]', lst: [aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa, bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb, ccccccccccccccccccccccccc, ddddddddddddddd]}";
const GOLDEN_FLOW: &str = "{local: {c: 'x: y', e: '', h: x#y, k: 'a, b', long: word word word word word word\n      word word word word word word word word word word word word word word word word\n      word word word word word word word word end, lst: [aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa,\n      bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb, ccccccccccccccccccccccccc, ddddddddddddddd],\n    q: '[x]', t: 'true'}}\n";

/// A lab whose minion is connected to its master, so that salt-call returns to it.
fn connected_lab(minion_extra: &str) -> Lab {
    let mut lab = Lab::with_config("", minion_extra);
    lab.start_master();
    lab.start_minion();
    lab
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|err| panic!("{err}: {text}"))
}

#[test]
fn out_indent_shapes_json_and_yaml_as_salt_does_and_nested_ignores_it() {
    let lab = connected_lab("");
    let call = |args: &[&str]| -> String {
        let output = lab.run("salt-call", args);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        stdout(&output)
    };
    for (n, golden) in GOLDEN_JSON {
        let indent = format!("--out-indent={n}");
        assert_eq!(
            call(&["test.echo", DATA, "--out=json", &indent]),
            golden,
            "json {n}"
        );
    }
    for (n, golden) in GOLDEN_YAML {
        let indent = format!("--output-indent={n}");
        assert_eq!(
            call(&["test.echo", DATA, "--out=yaml", &indent]),
            golden,
            "yaml {n}"
        );
    }
    assert_eq!(
        call(&["test.echo", DATA, "--out-indent", "7"]),
        GOLDEN_NESTED
    );
    assert_eq!(
        call(&["test.echo", FLOW_DATA, "--out=yaml", "--out-indent", "-1"]),
        GOLDEN_FLOW
    );
    let output = lab.run("salt-call", &["test.ping", "--out-indent=two"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
}

/// Replaces the minion config's `output_indent`.
fn set_output_indent(lab: &Lab, value: &str) {
    let path = lab.etc().join("minion");
    let text = read(&path);
    let kept: Vec<&str> = text
        .lines()
        .filter(|line| !line.starts_with("output_indent:"))
        .collect();
    std::fs::write(
        &path,
        format!("{}\noutput_indent: {value}\n", kept.join("\n")),
    )
    .unwrap();
}

/// The config's `output_indent` is the default, as in Salt; `pretty` sorts json's keys.
#[test]
fn the_output_indent_option_sets_the_default_indent() {
    let lab = connected_lab("output_indent: 1\n");
    let output = lab.run("salt-call", &["test.echo", "{b: 1, a: 2}", "--out=json"]);
    assert_eq!(
        stdout(&output),
        "{\n \"local\": {\n  \"b\": 1,\n  \"a\": 2\n }\n}\n"
    );
    let output = lab.run(
        "salt-call",
        &["test.echo", "{b: 1, a: 2}", "--out=json", "--out-indent=-1"],
    );
    assert_eq!(
        stdout(&output),
        "{\"local\": {\"b\": 1, \"a\": 2}}\n",
        "the flag wins"
    );
    set_output_indent(&lab, "pretty");
    let output = lab.run("salt-call", &["test.echo", "{b: 1, a: 2}", "--out=json"]);
    assert_eq!(
        stdout(&output),
        "{\n    \"local\": {\n        \"a\": 2,\n        \"b\": 1\n    }\n}\n"
    );
    // A width that would only eat memory is refused, from the option and from the flag.
    let wide = lab.run(
        "salt-call",
        &["test.ping", "--out=json", "--out-indent=100000000000"],
    );
    assert_eq!(wide.status.code(), Some(1));
    assert!(
        stderr(&wide)
            .contains("--out-indent 100000000000: an indent of 100000000000 spaces is too wide"),
        "{}",
        stderr(&wide)
    );
    set_output_indent(&lab, "wide");
    let output = lab.run("salt-call", &["test.ping"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(
            r#"option output_indent: expected a number of spaces up to 64, or pretty, got "wide""#
        ),
        "{}",
        stderr(&output)
    );
}

/// `--out-file` empties the file and takes the returns; `--out-file-append` adds to it. The
/// file holds exactly what stdout would have, uncoloured unless forced.
#[test]
fn salt_call_out_file_truncates_or_appends_and_leaves_stdout_empty() {
    let lab = connected_lab("");
    let file = lab.path().join("out.txt");
    std::fs::write(&file, "old contents\n").unwrap();
    let path = file.to_str().unwrap();
    let output = lab.run("salt-call", &["test.ping", "--out-file", path]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "");
    assert_eq!(read(&file), "local:\n    True\n");
    let output = lab.run(
        "salt-call",
        &[
            "test.ping",
            "--output-file",
            path,
            "--output-file-append",
            "--out=json",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(read(&file), "local:\n    True\n{\n    \"local\": true\n}\n");
    let output = lab.run(
        "salt-call",
        &["test.ping", "--out-file", path, "--force-color"],
    );
    assert!(output.status.success());
    assert!(
        read(&file).contains('\u{1b}'),
        "forced colour reaches the file"
    );
    // A function that fails still writes its return there, and exits as it did.
    let output = lab.run("salt-call", &["test.retcode", "3", "--out-file", path]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(read(&file), "local:\n    True\n");
}

/// A file that cannot be written is one line naming it and the fix, before any work, on
/// every command; `--out-file-append` alone is refused.
#[test]
fn an_out_file_that_cannot_be_written_is_a_one_line_error() {
    let lab = connected_lab("");
    let missing = lab.path().join("no/such/dir/out.txt");
    let missing = missing.to_str().unwrap();
    for (command, args) in [
        ("salt-call", vec!["test.ping"]),
        ("salt-run", vec!["test.arg"]),
        ("salt", vec!["*", "test.ping"]),
        ("salt-key", vec!["-L"]),
    ] {
        let output = lab.run(command, &[args, vec!["--out-file", missing]].concat());
        assert_eq!(
            output.status.code(),
            Some(1),
            "{command}: {}",
            stderr(&output)
        );
        let err = stderr(&output);
        let last = err.lines().last().unwrap_or_default();
        assert!(
            last.starts_with(&format!("error: cannot write the output to {missing}: "))
                && last.ends_with("create its directory or give another path"),
            "{command}: {err}"
        );
        assert_eq!(stdout(&output), "", "{command}");
    }
    let dir = lab.path().to_str().unwrap();
    let output = lab.run("salt-call", &["test.ping", "--out-file", dir]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("give a file's path, not a directory's"),
        "{}",
        stderr(&output)
    );
    let output = lab.run("salt-call", &["test.ping", "--out-file-append"]);
    assert_eq!(output.status.code(), Some(2), "clap's usage error");
    assert!(
        stderr(&output).contains("--out-file <FILE>"),
        "{}",
        stderr(&output)
    );
}

/// Output that cannot be written once opened (a full disk, here /dev/full) is one line naming
/// the file, the --out-file or where standard output goes, and the fix.
#[test]
fn output_that_fills_the_disk_is_a_one_line_error_naming_the_file() {
    if !Path::new("/dev/full").exists() {
        return eprintln!("SKIPPED: no /dev/full");
    }
    let lab = Lab::new();
    let fix = "No space left on device (os error 28); free space there, or write the output to another file system";
    for (command, args) in [
        ("salt-key", vec!["-L"]),
        ("salt-call", vec!["--local", "test.ping"]),
        ("salt-run", vec!["-d", "test.sleep"]),
    ] {
        let output = lab.run(
            command,
            &[args.clone(), vec!["--out-file", "/dev/full"]].concat(),
        );
        assert_eq!(output.status.code(), Some(1), "{command}");
        assert_eq!(
            stderr(&output),
            format!("error: cannot write the output to /dev/full: {fix}\n"),
            "{command}"
        );
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let output = lab.cmd(command).args(&args).stdout(full).output().unwrap();
        assert_eq!(output.status.code(), Some(1), "{command}");
        assert_eq!(
            stderr(&output),
            format!("error: cannot write the output to standard output (/dev/full): {fix}\n"),
            "{command}"
        );
    }
}

fn minion_returns(text: &str) -> Vec<(String, String)> {
    let mut returns = Vec::new();
    for block in text.split_inclusive("    True\n") {
        let (id, rest) = block.split_once(":\n").expect("an id line");
        returns.push((id.to_owned(), rest.to_owned()));
    }
    returns.sort();
    returns
}

/// `salt` with three minions: every return goes to the file (streamed or `--static`), the
/// job id lines stay on the terminal; `--out-indent` and `--no-parse` reach every minion.
#[test]
fn salt_out_file_indent_and_no_parse_with_three_minions() {
    let ids = ["m1", "m2", "m3"];
    let cluster = Cluster::with_minions("auto_accept: True\n", &ids);
    let file = cluster.path().join("returns.txt");
    std::fs::write(&file, "stale\n").unwrap();
    let path = file.to_str().unwrap();
    let output = cluster.run("salt", &["*", "test.ping", "-v", "--out-file", path]);
    assert!(output.status.success(), "{}", stderr(&output));
    let terminal = stdout(&output);
    assert!(
        terminal.starts_with("Executing job with jid "),
        "{terminal}"
    );
    assert!(!terminal.contains("True"), "{terminal}");
    let expected: Vec<(String, String)> = ids
        .iter()
        .map(|id| (id.to_string(), "    True\n".to_owned()))
        .collect();
    assert_eq!(minion_returns(&read(&file)), expected);

    let output = cluster.run(
        "salt",
        &[
            "*",
            "test.echo",
            DATA,
            "--static",
            "--out=json",
            "--out-indent=-1",
            "--out-file",
            path,
            "--out-file-append",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "");
    let text = read(&file);
    let last = text.lines().last().unwrap();
    assert_eq!(
        text.lines().count(),
        7,
        "three pings of two lines, one json line: {text}"
    );
    let doc = json(last);
    for id in ids {
        assert_eq!(
            doc[id],
            json(r#"{"a": [1, {"b": "c"}], "d": {}, "e": "x y", "f": [], "g": [[1, 2]]}"#),
            "{last}"
        );
    }

    let output = cluster.run(
        "salt",
        &[
            "*",
            "test.arg",
            "a=01",
            "b=01",
            "c={x: 1}",
            "01",
            "--no-parse=b, c",
            "--static",
            "--out=json",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let doc = json(&stdout(&output));
    for id in ids {
        let ret = &doc[id];
        assert_eq!(ret["args"], json("[1]"), "positionals are parsed: {ret}");
        assert_eq!(ret["kwargs"]["a"], json("1"));
        assert_eq!(ret["kwargs"]["b"], json(r#""01""#));
        assert_eq!(ret["kwargs"]["c"], json(r#""{x: 1}""#));
    }

    let output = cluster.run(
        "salt",
        &["m2", "test.echo", "{k: v}", "--out=yaml", "--out-indent=4"],
    );
    assert_eq!(stdout(&output), "m2:\n    k: v\n");
}

/// `salt-run` writes its return to the file and reads `--no-parse`, also from SALT_NO_PARSE.
#[test]
fn salt_run_out_file_and_no_parse() {
    let lab = connected_lab("");
    let file = lab.path().join("run.txt");
    let path = file.to_str().unwrap();
    let output = lab.run(
        "salt-run",
        &[
            "test.arg",
            "x=08",
            "y=true",
            "--no-parse",
            "x",
            "--out=json",
            "--out-indent=-1",
            "--out-file",
            path,
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "");
    let doc = json(&read(&file));
    assert_eq!(doc["kwargs"]["x"], json(r#""08""#), "{doc}");
    assert_eq!(doc["kwargs"]["y"], json("true"), "{doc}");
    let output = lab
        .cmd("salt-run")
        .args(["test.arg", "y=true", "--out=json"])
        .env("SALT_NO_PARSE", "y")
        .output()
        .unwrap();
    let doc = json(&stdout(&output));
    assert_eq!(doc["kwargs"]["y"], json(r#""true""#), "{doc}");
}

/// `salt-call --no-parse` against Salt 3007.8's `test.arg`: named values stay text,
/// positionals are parsed whatever the list says.
#[test]
fn salt_call_no_parse_keeps_named_values_as_text() {
    let lab = connected_lab("");
    let output = lab.run(
        "salt-call",
        &[
            "test.arg",
            "a=01",
            "b=01",
            "01",
            "c={x: 1}",
            "--no-parse=b,c,01",
            "--out=json",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let doc = json(&stdout(&output));
    assert_eq!(doc["local"]["args"], json("[1]"));
    assert_eq!(doc["local"]["kwargs"]["a"], json("1"));
    assert_eq!(doc["local"]["kwargs"]["b"], json(r#""01""#));
    assert_eq!(doc["local"]["kwargs"]["c"], json(r#""{x: 1}""#));
}

/// `salt-key`: listings go to the file, prompts and results stay on the terminal.
#[test]
fn salt_key_listings_go_to_the_out_file() {
    let mut lab = Lab::with_config("auto_accept: False\n", "");
    lab.start_master();
    // A minion's key waiting for acceptance, as one that asked would leave it.
    let pending = lab.path().join("pki/master/minions_pre");
    std::fs::create_dir_all(&pending).unwrap();
    std::fs::write(
        pending.join("minion1"),
        "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAwaMhgN4K\n-----END PUBLIC KEY-----\n",
    )
    .unwrap();
    let file = lab.path().join("keys.txt");
    let path = file.to_str().unwrap();
    let output = lab.run(
        "salt-key",
        &["-L", "--out=json", "--out-indent=-1", "--out-file", path],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "");
    assert_eq!(
        read(&file),
        "{\"minions\": [], \"minions_pre\": [\"minion1\"], \"minions_rejected\": [], \"minions_denied\": []}\n"
    );
    let output = lab.run("salt-key", &["-a", "minion1", "-y", "--out-file", path]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "The following keys are going to be accepted:\nKey for minion minion1 accepted.\n"
    );
    assert_eq!(read(&file), "Unaccepted Keys:\nminion1\n");
}

/// Salt 3007.8's `salt-call --versions-report` on a Debian host, versions replaced: every
/// entry right-aligned to one column, a line of one space after each section.
const SALT_REPORT_LAYOUT: &str = "Salt Version:
          Salt: V
 
Python Version:
        Python: V
 
Dependency Versions:
          cffi: V
  cryptography: V
 
System Versions:
          dist: V
        locale: V
       machine: V
       release: V
        system: V
       version: V
 
";

/// Each line with the text after `name: ` replaced, keeping the layout.
fn layout(report: &str) -> Vec<String> {
    report
        .lines()
        .map(|line| match line.split_once(": ") {
            Some((name, _)) if line.starts_with(' ') => format!("{name}: V"),
            _ => line.to_owned(),
        })
        .collect()
}

/// The `System Versions` section of a report.
fn system_section(report: &str) -> String {
    report
        .split_once("System Versions:\n")
        .map(|(_, rest)| rest.to_owned())
        .unwrap_or_default()
}

/// `-V` on every binary: Salt's layout, halite's version, the host's system versions (the
/// same lines Salt 3007.8 prints on this host when it is installed); `--version` unchanged.
#[test]
fn versions_report_has_salts_layout_on_every_binary() {
    let salt = layout(SALT_REPORT_LAYOUT);
    let binaries = [
        "salt",
        "salt-call",
        "salt-run",
        "salt-key",
        "salt-master",
        "salt-minion",
        "salt-api",
    ];
    let mut reports = Vec::new();
    for name in binaries {
        for flag in ["-V", "--versions-report"] {
            let output: Output = std::process::Command::new(crate::support::bin(name))
                .arg(flag)
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "{name} {flag}: {}",
                stderr(&output)
            );
            reports.push(stdout(&output));
        }
        let output = std::process::Command::new(crate::support::bin(name))
            .arg("--version")
            .output()
            .unwrap();
        assert_eq!(
            stdout(&output),
            format!("{name} {}\n", env!("CARGO_PKG_VERSION"))
        );
    }
    let ours = &reports[0];
    assert!(reports.iter().all(|report| report == ours), "{reports:?}");
    assert!(
        ours.starts_with(&format!(
            "Salt Version:\n        halite: {}\n \n",
            env!("CARGO_PKG_VERSION")
        )),
        "{ours}"
    );
    let ours_layout = layout(ours);
    let salt_system = &salt[salt.iter().position(|l| l == "System Versions:").unwrap()..];
    assert!(ours_layout.ends_with(salt_system), "{ours}");
    let column = |lines: &[String]| -> Vec<usize> {
        lines
            .iter()
            .filter(|l| l.starts_with(' '))
            .filter_map(|l| l.find(": "))
            .collect()
    };
    assert!(column(&ours_layout).iter().all(|c| *c == 14), "{ours}");
    assert!(column(&salt).iter().all(|c| *c == 14));
    assert!(ours.ends_with("\n \n"));
    let uname = nix::sys::utsname::uname().unwrap();
    assert!(
        ours.contains(&format!(
            "       release: {}\n",
            uname.release().to_string_lossy()
        )),
        "{ours}"
    );
    let real = std::path::PathBuf::from(std::env::var_os("HOME").unwrap())
        .join(".cache/halite/salt-envs/3007.8/bin/salt-call");
    if !real.exists() {
        eprintln!(
            "SKIPPED the comparison with Salt: {} is not installed",
            real.display()
        );
        return;
    }
    let output = std::process::Command::new(real)
        .arg("--versions-report")
        .output()
        .unwrap();
    assert_eq!(system_section(ours), system_section(&stdout(&output)));
}
