//! The state cases of `tests/states/` (see its README): SLS trees with what real Salt 3007.8
//! returned and printed for them, recorded by `tests/states/record.py`.
//!
//! Here they hold the highstate outputter to Salt's bytes: each recorded return, printed by
//! halite, must equal what Salt's own outputter printed for it, with Salt's defaults
//! (`salt.highstate`) and with every option set and colour of `salt.variants.json`. And they
//! hold the state engine to Salt's behaviour: each case run with halite's `salt-call --local`
//! in a fresh tree must return what Salt returned, exit as it did, leave the same files and
//! print the same highstate text.

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

/// A case's `case.yaml`: what to run and what the machine must offer.
struct Case {
    name: String,
    dir: PathBuf,
    fun: String,
    args: Vec<String>,
    kwargs: Vec<(String, String)>,
    needs: Vec<String>,
}

impl Case {
    fn load(dir: &Path) -> Self {
        let doc = yaml(&read(&dir.join("case.yaml")));
        let texts = |key: &str| -> Vec<String> {
            doc[key]
                .as_array()
                .map(|items| items.iter().map(python_str).collect())
                .unwrap_or_default()
        };
        Case {
            name: dir
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
            dir: dir.to_owned(),
            fun: doc["fun"].as_str().expect("fun").to_owned(),
            args: texts("args"),
            kwargs: doc["kwargs"]
                .as_object()
                .map(|map| {
                    map.iter()
                        .map(|(k, v)| (k.clone(), python_str(v)))
                        .collect()
                })
                .unwrap_or_default(),
            needs: texts("needs"),
        }
    }

    /// Why this machine cannot run the case, as the recorder decides it.
    fn unmet(&self) -> Option<&'static str> {
        self.needs.iter().find_map(|need| match need.as_str() {
            "root" if !nix::unistd::Uid::effective().is_root() => Some("needs root"),
            "systemd" if !Path::new("/run/systemd/system").is_dir() => {
                Some("needs a running systemd")
            }
            "system" if std::env::var("HALITE_TEST_SYSTEM").as_deref() != Ok("1") => {
                Some("changes the host system (set HALITE_TEST_SYSTEM=1 to run)")
            }
            _ => None,
        })
    }
}

/// The small YAML of `case.yaml` (flow and block collections, plain `true`/`false`, strings)
/// as JSON.
fn yaml(text: &str) -> serde_json::Value {
    use saphyr_parser::{Event, Parser, ScalarStyle};
    let parser = Parser::new_from_str(text);
    let mut stack: Vec<serde_json::Value> = Vec::new();
    let mut keys: Vec<Option<String>> = Vec::new();
    let mut root = serde_json::Value::Null;
    for event in parser {
        let value = match event.expect("case.yaml").0 {
            Event::MappingStart(..) => {
                stack.push(serde_json::Value::Object(serde_json::Map::new()));
                keys.push(None);
                continue;
            }
            Event::SequenceStart(..) => {
                stack.push(serde_json::Value::Array(Vec::new()));
                keys.push(None);
                continue;
            }
            Event::MappingEnd | Event::SequenceEnd => {
                keys.pop();
                stack.pop().expect("a collection")
            }
            Event::Scalar(text, ScalarStyle::Plain, ..) if text == "true" || text == "false" => {
                serde_json::Value::Bool(text == "true")
            }
            Event::Scalar(text, ..) => serde_json::Value::String(text.into_owned()),
            _ => continue,
        };
        match stack.last_mut() {
            None => root = value,
            Some(serde_json::Value::Array(items)) => items.push(value),
            Some(serde_json::Value::Object(map)) => {
                let key = keys.last_mut().expect("a key slot");
                match key.take() {
                    Some(key) => {
                        map.insert(key, value);
                    }
                    None => *key = Some(value.as_str().expect("a text key").to_owned()),
                }
            }
            Some(_) => unreachable!(),
        }
    }
    root
}

/// A YAML value as the recorder passes it on the command line (Python's `str`).
fn python_str(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Bool(true) => "True".to_owned(),
        serde_json::Value::Bool(false) => "False".to_owned(),
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// One run's temporary tree, laid out as the recorder lays it out, and the tokens of its
/// paths (`normalise.json`'s `dirs` and `tmp`).
struct Tree {
    _dir: tempfile::TempDir,
    root: PathBuf,
    /// (token, path), longest path first: the order rule 1 replaces them in.
    tokens: Vec<(String, String)>,
    tmp_token: String,
}

impl Tree {
    fn new(case: &Case, rules: &serde_json::Value) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("hscase-")
            .tempdir()
            .expect("a temporary tree");
        let root = dir.path().to_owned();
        let mut tokens: Vec<(String, String)> = rules["dirs"]
            .as_object()
            .expect("dirs")
            .iter()
            .map(|(name, token)| {
                let path = root.join(name).to_string_lossy().into_owned();
                (token.as_str().expect("a token").to_owned(), path)
            })
            .collect();
        tokens.sort_by_key(|(_, path)| std::cmp::Reverse(path.len()));
        let tree = Tree {
            _dir: dir,
            root,
            tokens,
            tmp_token: rules["tmp"].as_str().expect("tmp").to_owned(),
        };
        std::fs::create_dir_all(tree.root.join("root")).expect("root");
        std::fs::create_dir_all(tree.root.join("conf")).expect("conf");
        for (from, to) in [
            ("files", "files"),
            ("pillar", "pillar"),
            ("before", "target"),
        ] {
            let src = case.dir.join(from);
            let dst = tree.root.join(to);
            if src.is_dir() {
                tree.copy(&src, &dst);
            } else {
                std::fs::create_dir_all(&dst).expect("a directory");
            }
        }
        let path = |name: &str| tree.root.join(name).to_string_lossy().into_owned();
        let config = format!(
            "id: {}\nroot_dir: {}\nfile_client: local\nfile_roots:\n  base:\n  - {}\npillar_roots:\n  base:\n  - {}\n",
            rules["minion_id"].as_str().expect("minion_id"),
            path("root"),
            path("files"),
            path("pillar"),
        );
        std::fs::write(tree.root.join("conf/minion"), config).expect("minion config");
        tree
    }

    /// Copies a case directory, tokens replaced by their paths in every file, links as links.
    fn copy(&self, src: &Path, dst: &Path) {
        std::fs::create_dir_all(dst).expect("a directory");
        let meta = std::fs::metadata(src).expect("a case directory");
        std::fs::set_permissions(dst, meta.permissions()).expect("mode");
        for entry in std::fs::read_dir(src).expect("a case directory") {
            let entry = entry.expect("an entry");
            let (from, to) = (entry.path(), dst.join(entry.file_name()));
            let kind = entry.file_type().expect("a file type");
            if kind.is_symlink() {
                let target = std::fs::read_link(&from).expect("a link");
                std::os::unix::fs::symlink(target, &to).expect("a link");
            } else if kind.is_dir() {
                self.copy(&from, &to);
            } else {
                let data = std::fs::read(&from).expect("a case file");
                let data = match String::from_utf8(data) {
                    Ok(text) => self.paths(&text).into_bytes(),
                    Err(binary) => binary.into_bytes(),
                };
                std::fs::write(&to, data).expect("a file");
                let mode = std::fs::metadata(&from).expect("a case file").permissions();
                std::fs::set_permissions(&to, mode).expect("mode");
            }
        }
    }

    /// Tokens replaced by this tree's paths.
    fn paths(&self, text: &str) -> String {
        self.tokens
            .iter()
            .fold(text.to_owned(), |text, (token, path)| {
                text.replace(token, path)
            })
    }

    /// Rule 1: this tree's paths replaced by their tokens.
    fn unpath(&self, text: &str) -> String {
        let text = self
            .tokens
            .iter()
            .fold(text.to_owned(), |text, (token, path)| {
                text.replace(path, token)
            });
        text.replace(&*self.root.to_string_lossy(), &self.tmp_token)
    }

    /// `salt-call --local` on the case in this tree, with `extra` options.
    fn salt_call(&self, case: &Case, extra: &[&str]) -> std::process::Output {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_salt-call"));
        command
            .args(["--local", "-c"])
            .arg(self.root.join("conf"))
            .arg("--retcode-passthrough")
            .args(extra)
            .arg(&case.fun)
            .args(case.args.iter().map(|arg| self.paths(arg)))
            .args(
                case.kwargs
                    .iter()
                    .map(|(key, value)| format!("{key}={}", self.paths(value))),
            )
            .current_dir(&self.root)
            .env("HOME", &self.root)
            .env("LC_ALL", "C.UTF-8");
        command.output().expect("salt-call runs")
    }

    /// `disk.txt` for what the run left in `target/`.
    fn listing(&self) -> String {
        use sha2::Digest;
        use std::os::unix::fs::PermissionsExt;
        fn walk(dir: &Path, base: &Path, lines: &mut Vec<(String, String)>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in entries {
                let path = entry.expect("an entry").path();
                let rel = path
                    .strip_prefix(base)
                    .expect("below")
                    .to_string_lossy()
                    .into_owned();
                let meta = std::fs::symlink_metadata(&path).expect("metadata");
                let mode = format!("{:04o}", meta.permissions().mode() & 0o7777);
                let line = if meta.file_type().is_symlink() {
                    let target = std::fs::read_link(&path).expect("a link");
                    format!("l {mode} -> {} {rel}", target.to_string_lossy())
                } else if meta.is_dir() {
                    walk(&path, base, lines);
                    format!("d {mode} - {rel}")
                } else {
                    let digest = sha2::Sha256::digest(std::fs::read(&path).expect("a file"));
                    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
                    format!("f {mode} {hex} {rel}")
                };
                lines.push((rel, line));
            }
        }
        let target = self.root.join("target");
        let mut lines = Vec::new();
        walk(&target, &target, &mut lines);
        lines.sort();
        lines
            .into_iter()
            .map(|(_, line)| self.unpath(&line) + "\n")
            .collect()
    }
}

/// Printed highstate text with times and pids as the normalised return has them (rules 2 and
/// 3 on the text): `Started`, `Duration`, the total run time and `pid` lines.
fn normalise_text(text: &str) -> String {
    let started = regex::Regex::new(r"(Started: )\d\d:\d\d:\d\d\.\d+").expect("regex");
    let duration = regex::Regex::new(r"(Duration: )[0-9.e+-]+ ms").expect("regex");
    let total = regex::Regex::new(r"(Total run time: )( *[0-9.]+) m?s").expect("regex");
    let pid = regex::Regex::new(r"(pid:\n +)\d+").expect("regex");
    let text = started.replace_all(text, "${1}00:00:00.000000");
    let text = duration.replace_all(&text, "${1}0 ms");
    let text = total.replace_all(&text, |caps: &regex::Captures<'_>| {
        format!("{}{:>width$} ms", &caps[1], "0.000", width = caps[2].len())
    });
    pid.replace_all(&text, "${1}0").into_owned()
}

/// Where two JSON values differ: up to a few paths, each with Salt's value and halite's.
fn json_diff(path: &str, want: &serde_json::Value, got: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value as J;
    if out.len() >= 12 {
        return;
    }
    match (want, got) {
        (J::Object(w), J::Object(g)) => {
            for (key, value) in w {
                match g.get(key) {
                    Some(other) => json_diff(&format!("{path}/{key}"), value, other, out),
                    None => out.push(format!("{path}/{key}: missing (Salt: {value})")),
                }
            }
            for key in g.keys().filter(|key| !w.contains_key(*key)) {
                out.push(format!("{path}/{key}: extra (halite: {})", g[key]));
            }
        }
        (J::Array(w), J::Array(g)) if w.len() == g.len() => {
            for (i, (w, g)) in w.iter().zip(g).enumerate() {
                json_diff(&format!("{path}/{i}"), w, g, out);
            }
        }
        _ if want != got => out.push(format!(
            "{path}:\n      Salt:   {want}\n      halite: {got}"
        )),
        _ => {}
    }
}

/// The lines where two texts part: what lies between their common head and tail.
fn text_diff(want: &str, got: &str) -> String {
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    let head = w.iter().zip(&g).take_while(|(a, b)| a == b).count();
    let tail = w[head..]
        .iter()
        .rev()
        .zip(g[head..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let show = |lines: &[&str], sign: char| -> String {
        let mut shown: Vec<String> = lines
            .iter()
            .take(25)
            .map(|l| format!("    {sign} {l}\n"))
            .collect();
        if lines.len() > 25 {
            shown.push(format!("    {sign} … {} more\n", lines.len() - 25));
        }
        shown.concat()
    };
    if head == w.len() && head == g.len() && want != got {
        return "    (they differ in line endings only)\n".to_owned();
    }
    format!(
        "    at line {}:\n{}{}",
        head + 1,
        show(&w[head..w.len() - tail], '-'),
        show(&g[head..g.len() - tail], '+')
    )
}

/// The functions whose returns name the `highstate` outputter, as Salt's do.
const HIGHSTATE_FUNCTIONS: &[&str] = &[
    "state.apply",
    "state.highstate",
    "state.sls",
    "state.sls_id",
    "state.single",
    "state.top",
];

/// Cases halite does not pass yet, with why: each still runs, and the test fails once one of
/// them passes, so that it leaves this list.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[(
    "yaml_error",
    "YAML parser errors are not worded as PyYAML's (context and problem marks)",
)];

/// Runs one case as the README says; what differs from Salt's recordings, if anything.
fn check_case(case: &Case, rules: &serde_json::Value) -> Vec<String> {
    let mut wrong = Vec::new();
    let tree = Tree::new(case, rules);
    let run = tree.salt_call(case, &["--out", "json"]);
    let stdout = tree.unpath(&String::from_utf8_lossy(&run.stdout));
    let stderr = String::from_utf8_lossy(&run.stderr);
    match serde_json::from_str::<serde_json::Value>(&stdout) {
        Ok(mut got) => {
            normalise(&mut got["local"], rules);
            let want: serde_json::Value =
                serde_json::from_str(&read(&case.dir.join("salt.json"))).expect("salt.json");
            let mut diffs = Vec::new();
            json_diff("", &want, &got, &mut diffs);
            if !diffs.is_empty() {
                wrong.push(format!("return differs:\n  {}", diffs.join("\n  ")));
            }
        }
        Err(e) => wrong.push(format!(
            "return is not JSON ({e}):\n{stdout}\nstderr:\n{stderr}"
        )),
    }
    let rc = read(&case.dir.join("salt.rc")).trim().to_owned();
    let code = run
        .status
        .code()
        .map_or("a signal".to_owned(), |c| c.to_string());
    if code != rc {
        wrong.push(format!(
            "exit status {code}, Salt's {rc}; stderr:\n{stderr}"
        ));
    }
    let disk = tree.listing();
    let want_disk = read(&case.dir.join("disk.txt"));
    if disk != want_disk {
        wrong.push(format!(
            "target/ differs from disk.txt:\n{}",
            text_diff(&want_disk, &disk)
        ));
    }
    // State runs print with the highstate outputter by default, as Salt's do. The other
    // functions (`state.show_sls`) print with nested even under `--out highstate`, as Salt's
    // salt-call does: their `salt.highstate` is held by the outputter test above only.
    if HIGHSTATE_FUNCTIONS.contains(&case.fun.as_str()) {
        let tree = Tree::new(case, rules);
        let shown = tree.salt_call(case, &["--no-color"]);
        let shown = normalise_text(&tree.unpath(&String::from_utf8_lossy(&shown.stdout)));
        let want = read(&case.dir.join("salt.highstate"));
        if shown != want {
            wrong.push(format!(
                "highstate text differs:\n{}",
                text_diff(&want, &shown)
            ));
        }
    }
    wrong
}

#[test]
fn recorded_cases_run_with_halite_as_they_ran_with_salt() {
    let rules: serde_json::Value =
        serde_json::from_str(&read(&cases_dir().join("normalise.json"))).expect("rules");
    let cases: Vec<Case> = cases().iter().map(|dir| Case::load(dir)).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                while let Some(case) =
                    cases.get(next.fetch_add(1, std::sync::atomic::Ordering::SeqCst))
                {
                    let outcome = match case.unmet() {
                        Some(why) => Err(why.to_owned()),
                        None if !case.dir.join("salt.json").is_file() => {
                            Err("not recorded".to_owned())
                        }
                        None => Ok(check_case(case, &rules)),
                    };
                    results
                        .lock()
                        .expect("results")
                        .push((case.name.clone(), outcome));
                }
            });
        }
    });
    let mut results = results.into_inner().expect("results");
    results.sort_by(|a, b| a.0.cmp(&b.0));
    let mut failed = Vec::new();
    for (name, outcome) in &results {
        let known = KNOWN_DIFFERENCES.iter().find(|(case, _)| case == name);
        match (outcome, known) {
            (Err(why), _) => eprintln!("{name}: SKIPPED ({why})"),
            (Ok(wrong), Some((_, why))) if !wrong.is_empty() => {
                eprintln!("{name}: KNOWN DIFFERENCE ({why})");
            }
            (Ok(_), Some(_)) => failed.push(format!(
                "{name}: passes now; take it out of KNOWN_DIFFERENCES"
            )),
            (Ok(wrong), None) if wrong.is_empty() => eprintln!("{name}: ok"),
            (Ok(wrong), None) => {
                eprintln!("{name}: FAILED");
                failed.push(format!("{name}: {}", wrong.join(&format!("\n{name}: "))));
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} cases differ from Salt's recordings:\n\n{}",
        failed.len(),
        results.len(),
        failed.join("\n\n")
    );
}

/// The recordings are real Salt's, now: Salt 3007.8 runs every case again and must produce
/// what is recorded (maps compared as data, since Salt builds some from Python sets).
#[test]
fn the_recordings_are_what_salt_3007_8_does_now() {
    let python = crate::conformance::venv("3007.8").join("bin/python");
    let output = std::process::Command::new(python)
        .arg(cases_dir().join("record.py"))
        .arg("--check")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run record.py");
    assert!(
        output.status.success(),
        "Salt 3007.8 no longer does what tests/states/ records:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
