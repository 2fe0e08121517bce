//! The `inotify` beacon on real files: each scenario runs its shell steps under our beacon and
//! under Salt 3007.8's (pyinotify in the test venv), and compares the events of each step with
//! what each should report; where halite does better than Salt, the test says what Salt
//! reports. Then the wake-up latency, and the seed's tutorial on real daemons.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use halite::beacons::{Beacon, Host, run};
use halite::event::{Value, map_get};
use halite::wire::Framing;

use crate::support::{Lab, MINION_ID, RawSender, RawSubscriber, map, wait_until};

/// One event as the beacon returns it: tag suffix, path, change.
type Ev = (String, String, String);

/// How long a step's changes are left to reach the kernel's queue before a check (both sides).
const SETTLE: Duration = Duration::from_millis(200);

struct Scenario<'a> {
    /// Salt's list form, JSON, `{d}` standing for the scenario's directory.
    config: &'static str,
    /// What halite is given instead, when the scenario shows another form.
    ours_config: Option<&'static str>,
    /// Shell lines making the scenario's directory before the beacon starts.
    setup: &'static str,
    steps: &'a [Step],
}

struct Step {
    run: &'static str,
    /// (tag suffix, path, change), `{d}` for the directory.
    ours: &'static [(&'static str, &'static str, &'static str)],
    /// What Salt reports where it differs.
    salt: Option<&'static [(&'static str, &'static str, &'static str)]>,
}

const fn same(
    run: &'static str,
    ours: &'static [(&'static str, &'static str, &'static str)],
) -> Step {
    Step {
        run,
        ours,
        salt: None,
    }
}

fn fill(text: &str, dir: &Path) -> String {
    text.replace("{d}", &dir.display().to_string())
}

fn expected(events: &[(&str, &str, &str)], dir: &Path) -> Vec<Ev> {
    events
        .iter()
        .map(|(tag, path, change)| (fill(tag, dir), fill(path, dir), (*change).to_owned()))
        .collect()
}

fn json_value(text: &str) -> Value {
    rmpv::ext::to_value(serde_json::from_str::<serde_json::Value>(text).expect("JSON"))
        .expect("value")
}

fn events(found: Vec<Value>) -> Vec<Ev> {
    found
        .iter()
        .map(|event| {
            let field = |key| {
                map_get(event, key)
                    .and_then(Value::as_str)
                    .unwrap_or_else(|| panic!("no {key} in {event}"))
                    .to_owned()
            };
            (field("tag"), field("path"), field("change"))
        })
        .collect()
}

fn shell(line: &str) {
    let status = Command::new("sh").arg("-c").arg(line).status().unwrap();
    assert!(status.success(), "{line}: {status}");
}

/// Our beacon, checked from the test as the minion's blocking pool would.
struct Driven {
    beacon: Box<dyn Beacon>,
    runtime: tokio::runtime::Runtime,
}

impl Driven {
    fn start(config: &Value) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let beacon = run::start("inotify", config, &Host::real()).expect("valid configuration");
        Self { beacon, runtime }
    }

    fn check(&mut self) -> Result<Vec<Ev>, String> {
        let _entered = self.runtime.enter();
        self.beacon.check().map(events)
    }
}

fn scenario_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("hino")
        .tempdir_in("/tmp")
        .unwrap()
}

fn reset(dir: &Path, setup: &str) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() && !path.is_symlink() {
            std::fs::remove_dir_all(&path).unwrap();
        } else {
            std::fs::remove_file(&path).unwrap();
        }
    }
    shell(&fill(setup, dir));
}

fn run_ours(scenario: &Scenario<'_>, dir: &Path) -> Vec<Vec<Ev>> {
    reset(dir, scenario.setup);
    let config = json_value(&fill(scenario.ours_config.unwrap_or(scenario.config), dir));
    let mut driven = Driven::start(&config);
    assert_eq!(driven.check(), Ok(Vec::new()), "the first check");
    scenario
        .steps
        .iter()
        .map(|step| {
            shell(&fill(step.run, dir));
            std::thread::sleep(SETTLE);
            driven
                .check()
                .unwrap_or_else(|err| panic!("{}: {err}", step.run))
        })
        .collect()
}

/// The 3007.8 venv's python, or why Salt's beacon cannot run.
fn salt_python() -> Result<PathBuf, String> {
    let root = std::env::var_os("HALITE_SALT_ENVS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/halite/salt-envs")
        });
    let venv = root.join("3007.8");
    if !venv.join(".halite-ok").exists() {
        return Err(format!(
            "Salt 3007.8 is not installed in {} (tests/salt-env.sh)",
            venv.display()
        ));
    }
    let python = venv.join("bin/python");
    let probe = Command::new(&python)
        .args(["-c", "import pyinotify"])
        .output()
        .map_err(|err| format!("{}: {err}", python.display()))?;
    if !probe.status.success() {
        return Err(
            "pyinotify is not installed in the 3007.8 venv (tests/salt-env.sh adds it)".into(),
        );
    }
    Ok(python)
}

/// Salt's beacon module run as its minion runs it: validated, called once to set its watches,
/// then once after each step.
const SALT_HARNESS: &str = r#"
import json, subprocess, sys, time
import salt.beacons.inotify as inotify
inotify.__context__ = {}
config, steps, settle = json.loads(sys.argv[1]), json.loads(sys.argv[2]), float(sys.argv[3])
valid, comment = inotify.validate(config)
assert valid, comment
assert inotify.beacon(config) == []
found = []
for step in steps:
    subprocess.run(step, shell=True, check=True)
    time.sleep(settle)
    found.append([[e["tag"], e["path"], e["change"]] for e in inotify.beacon(config)])
print(json.dumps(found))
"#;

fn run_salt(python: &Path, scenario: &Scenario<'_>, dir: &Path) -> Vec<Vec<Ev>> {
    reset(dir, scenario.setup);
    let steps: Vec<String> = scenario.steps.iter().map(|s| fill(s.run, dir)).collect();
    let output = Command::new(python)
        .args(["-c", SALT_HARNESS])
        .arg(fill(scenario.config, dir))
        .arg(serde_json::to_string(&steps).unwrap())
        .arg(SETTLE.as_secs_f64().to_string())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "Salt's beacon failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("Salt's events as JSON")
}

fn check_scenario(scenario: &Scenario<'_>) {
    let dir = scenario_dir();
    let dir = dir.path();
    let ours = run_ours(scenario, dir);
    for (step, found) in scenario.steps.iter().zip(&ours) {
        assert_eq!(
            found,
            &expected(step.ours, dir),
            "ours, after `{}`",
            step.run
        );
    }
    let python = match salt_python() {
        Ok(python) => python,
        Err(why) => return eprintln!("SKIPPED the comparison with Salt's beacon: {why}"),
    };
    let salt = run_salt(&python, scenario, dir);
    for (step, found) in scenario.steps.iter().zip(&salt) {
        let want = expected(step.salt.unwrap_or(step.ours), dir);
        assert_eq!(found, &want, "Salt's, after `{}`", step.run);
    }
}

#[test]
fn changes_in_a_directory_are_reported_as_salts() {
    check_scenario(&Scenario {
        config: r#"[{"files": {"{d}/d": {"mask": ["create", "delete", "modify", "moved_from", "moved_to", "close_write"]}}}]"#,
        ours_config: None,
        setup: "mkdir {d}/d && echo a > {d}/d/f",
        steps: &[
            same(
                "echo x > {d}/d/f",
                &[
                    ("{d}/d", "{d}/d/f", "IN_MODIFY"),
                    ("{d}/d", "{d}/d/f", "IN_CLOSE_WRITE"),
                ],
            ),
            same(
                "touch {d}/d/g",
                &[
                    ("{d}/d", "{d}/d/g", "IN_CREATE"),
                    ("{d}/d", "{d}/d/g", "IN_CLOSE_WRITE"),
                ],
            ),
            same(
                "mv {d}/d/g {d}/d/h",
                &[
                    ("{d}/d", "{d}/d/g", "IN_MOVED_FROM"),
                    ("{d}/d", "{d}/d/h", "IN_MOVED_TO"),
                ],
            ),
            same(
                "mkdir {d}/d/sub",
                &[("{d}/d", "{d}/d/sub", "IN_CREATE|IN_ISDIR")],
            ),
            same("rm {d}/d/h", &[("{d}/d", "{d}/d/h", "IN_DELETE")]),
        ],
    });
}

#[test]
fn the_tutorial_file_survives_save_by_rename_sed_and_deletion() {
    check_scenario(&Scenario {
        config: r#"[{"files": {"{d}/importantfile": {"mask": ["modify"]}}}]"#,
        // The tutorial's form: the path as the beacon's key.
        ours_config: Some(r#"{"{d}/importantfile": {"mask": ["modify"]}}"#),
        setup: "echo a > {d}/importantfile",
        steps: &[
            same(
                "echo 'some content' > {d}/importantfile",
                &[("{d}/importantfile", "{d}/importantfile", "IN_MODIFY")],
            ),
            Step {
                run: "echo b > {d}/importantfile.new && mv {d}/importantfile.new {d}/importantfile",
                ours: &[("{d}/importantfile", "{d}/importantfile", "IN_MODIFY")],
                salt: Some(&[("{d}/importantfile", "{d}/importantfile", "IN_IGNORED")]),
            },
            Step {
                run: "sed -i s/b/c/ {d}/importantfile",
                ours: &[("{d}/importantfile", "{d}/importantfile", "IN_MODIFY")],
                salt: Some(&[("{d}/importantfile", "{d}/importantfile", "IN_IGNORED")]),
            },
            // vim's way: the old file kept aside as a backup, the new one written in its place.
            Step {
                run: "mv {d}/importantfile {d}/importantfile~ && echo c > {d}/importantfile && rm {d}/importantfile~",
                ours: &[("{d}/importantfile", "{d}/importantfile", "IN_MODIFY")],
                salt: Some(&[("{d}/importantfile", "{d}/importantfile", "IN_IGNORED")]),
            },
            same(
                "echo d >> {d}/importantfile",
                &[("{d}/importantfile", "{d}/importantfile", "IN_MODIFY")],
            ),
            same(
                "rm {d}/importantfile",
                &[("{d}/importantfile", "{d}/importantfile", "IN_IGNORED")],
            ),
            Step {
                run: "echo e > {d}/importantfile",
                ours: &[("{d}/importantfile", "{d}/importantfile", "IN_MODIFY")],
                salt: Some(&[]),
            },
            same(
                "echo f >> {d}/importantfile",
                &[("{d}/importantfile", "{d}/importantfile", "IN_MODIFY")],
            ),
        ],
    });
}

#[test]
fn a_file_that_does_not_exist_yet_is_reported_created_and_followed_by_name() {
    check_scenario(&Scenario {
        config: r#"[{"files": {"{d}/later": {"mask": ["create", "delete", "modify"]}}}]"#,
        // The default mask, and the tutorial's form.
        ours_config: Some(r#"{"{d}/later": null}"#),
        setup: "true",
        steps: &[
            Step {
                run: "echo x > {d}/later",
                ours: &[("{d}/later", "{d}/later", "IN_CREATE")],
                salt: Some(&[]),
            },
            same(
                "echo y >> {d}/later",
                &[("{d}/later", "{d}/later", "IN_MODIFY")],
            ),
            // Moved away: Salt's watch goes with the file and reports it under the old name.
            Step {
                run: "mv {d}/later {d}/away",
                ours: &[("{d}/later", "{d}/later", "IN_IGNORED")],
                salt: Some(&[]),
            },
            Step {
                run: "echo z >> {d}/away",
                ours: &[],
                salt: Some(&[("{d}/later", "{d}/later", "IN_MODIFY")]),
            },
        ],
    });
}

#[test]
fn deleted_and_moved_files_report_their_self_events_then_ignored() {
    check_scenario(&Scenario {
        config: r#"[{"files": {"{d}/f": {"mask": ["delete_self", "move_self", "modify"]}}}]"#,
        ours_config: None,
        setup: "echo a > {d}/f",
        steps: &[
            Step {
                run: "mv {d}/f {d}/g",
                ours: &[
                    ("{d}/f", "{d}/f", "IN_MOVE_SELF"),
                    ("{d}/f", "{d}/f", "IN_IGNORED"),
                ],
                salt: Some(&[("{d}/f-unknown-path", "{d}/f-unknown-path", "IN_MOVE_SELF")]),
            },
            Step {
                run: "echo b > {d}/f",
                ours: &[("{d}/f", "{d}/f", "IN_MODIFY")],
                salt: Some(&[]),
            },
            same(
                "rm {d}/f",
                &[
                    ("{d}/f", "{d}/f", "IN_DELETE_SELF"),
                    ("{d}/f", "{d}/f", "IN_IGNORED"),
                ],
            ),
        ],
    });
}

#[test]
fn recursive_watches_add_new_directories_and_follow_renames() {
    check_scenario(&Scenario {
        config: r#"[{"files": {"{d}/d": {"mask": ["create", "delete", "modify", "close_write", "moved_from", "moved_to", "delete_self"], "recurse": true, "auto_add": true}}}]"#,
        ours_config: None,
        setup: "mkdir -p {d}/d/sub && echo a > {d}/d/f",
        steps: &[
            same(
                "echo y > {d}/d/sub/g",
                &[
                    ("{d}/d/sub", "{d}/d/sub/g", "IN_CREATE"),
                    ("{d}/d/sub", "{d}/d/sub/g", "IN_MODIFY"),
                    ("{d}/d/sub", "{d}/d/sub/g", "IN_CLOSE_WRITE"),
                ],
            ),
            // The new directories are watched as they are found, what they hold reported.
            same(
                "mkdir -p {d}/d/n1/n2 && echo q > {d}/d/n1/n2/h",
                &[
                    ("{d}/d", "{d}/d/n1", "IN_CREATE|IN_ISDIR"),
                    ("{d}/d/n1", "{d}/d/n1/n2", "IN_CREATE|IN_ISDIR"),
                    ("{d}/d/n1/n2", "{d}/d/n1/n2/h", "IN_CREATE"),
                ],
            ),
            same(
                "echo r > {d}/d/n1/n2/h",
                &[
                    ("{d}/d/n1/n2", "{d}/d/n1/n2/h", "IN_MODIFY"),
                    ("{d}/d/n1/n2", "{d}/d/n1/n2/h", "IN_CLOSE_WRITE"),
                ],
            ),
            same(
                "mv {d}/d/sub {d}/d/sub2",
                &[
                    ("{d}/d", "{d}/d/sub", "IN_MOVED_FROM|IN_ISDIR"),
                    ("{d}/d", "{d}/d/sub2", "IN_MOVED_TO|IN_ISDIR"),
                ],
            ),
            // Salt's watch keeps the old name unless the mask has move_self.
            Step {
                run: "echo s > {d}/d/sub2/g",
                ours: &[
                    ("{d}/d/sub2", "{d}/d/sub2/g", "IN_MODIFY"),
                    ("{d}/d/sub2", "{d}/d/sub2/g", "IN_CLOSE_WRITE"),
                ],
                salt: Some(&[
                    ("{d}/d/sub", "{d}/d/sub/g", "IN_MODIFY"),
                    ("{d}/d/sub", "{d}/d/sub/g", "IN_CLOSE_WRITE"),
                ]),
            },
            same(
                "rm -r {d}/d/n1",
                &[
                    ("{d}/d/n1/n2", "{d}/d/n1/n2/h", "IN_DELETE"),
                    ("{d}/d/n1/n2", "{d}/d/n1/n2", "IN_DELETE_SELF"),
                    ("{d}/d/n1/n2", "{d}/d/n1/n2", "IN_IGNORED"),
                    ("{d}/d/n1", "{d}/d/n1/n2", "IN_DELETE|IN_ISDIR"),
                    ("{d}/d/n1", "{d}/d/n1", "IN_DELETE_SELF"),
                    ("{d}/d/n1", "{d}/d/n1", "IN_IGNORED"),
                    ("{d}/d", "{d}/d/n1", "IN_DELETE|IN_ISDIR"),
                ],
            ),
            Step {
                run: "rm {d}/d/sub2/g && rmdir {d}/d/sub2 && rm {d}/d/f && rmdir {d}/d",
                ours: &[
                    ("{d}/d/sub2", "{d}/d/sub2/g", "IN_DELETE"),
                    ("{d}/d/sub2", "{d}/d/sub2", "IN_DELETE_SELF"),
                    ("{d}/d/sub2", "{d}/d/sub2", "IN_IGNORED"),
                    ("{d}/d", "{d}/d/sub2", "IN_DELETE|IN_ISDIR"),
                    ("{d}/d", "{d}/d/f", "IN_DELETE"),
                    ("{d}/d", "{d}/d", "IN_DELETE_SELF"),
                    ("{d}/d", "{d}/d", "IN_IGNORED"),
                ],
                salt: Some(&[
                    ("{d}/d/sub", "{d}/d/sub/g", "IN_DELETE"),
                    ("{d}/d/sub", "{d}/d/sub", "IN_DELETE_SELF"),
                    ("{d}/d/sub", "{d}/d/sub", "IN_IGNORED"),
                    ("{d}/d", "{d}/d/sub2", "IN_DELETE|IN_ISDIR"),
                    ("{d}/d", "{d}/d/f", "IN_DELETE"),
                    ("{d}/d", "{d}/d", "IN_DELETE_SELF"),
                    ("{d}/d", "{d}/d", "IN_IGNORED"),
                ]),
            },
        ],
    });
}

#[test]
fn a_watched_directory_removed_and_made_again_is_watched_again() {
    check_scenario(&Scenario {
        config: r#"[{"files": {"{d}/d": {"mask": ["create", "delete"], "recurse": true}}}]"#,
        ours_config: None,
        setup: "mkdir -p {d}/d/s",
        steps: &[
            same(
                "rm -r {d}/d",
                &[
                    ("{d}/d/s", "{d}/d/s", "IN_IGNORED"),
                    ("{d}/d", "{d}/d/s", "IN_DELETE|IN_ISDIR"),
                    ("{d}/d", "{d}/d", "IN_IGNORED"),
                ],
            ),
            Step {
                run: "mkdir -p {d}/d/t",
                ours: &[("{d}/d", "{d}/d", "IN_CREATE|IN_ISDIR")],
                salt: Some(&[]),
            },
            same("touch {d}/d/t/x", &[("{d}/d/t", "{d}/d/t/x", "IN_CREATE")]),
        ],
    });
}

#[test]
fn excluded_paths_globs_and_regexes_report_nothing() {
    check_scenario(&Scenario {
        config: r#"[{"files": {"{d}/d": {"mask": ["create"], "recurse": true, "exclude": ["{d}/d/skip", "{d}/d/*.log", {"{d}/d/x[0-9]+$": {"regex": true}}]}}}]"#,
        ours_config: None,
        setup: "mkdir -p {d}/d/skip {d}/d/keep",
        steps: &[Step {
            run: "cd {d}/d && touch a.log x12 x1a keep/b keep/c.log skip/c skipper",
            ours: &[
                ("{d}/d", "{d}/d/x1a", "IN_CREATE"),
                ("{d}/d/keep", "{d}/d/keep/b", "IN_CREATE"),
                ("{d}/d", "{d}/d/skipper", "IN_CREATE"),
            ],
            // Salt's plain excluded path is a prefix of strings: skipper is excluded too.
            salt: Some(&[
                ("{d}/d", "{d}/d/x1a", "IN_CREATE"),
                ("{d}/d/keep", "{d}/d/keep/b", "IN_CREATE"),
            ]),
        }],
    });
}

const APPENDS: &str = "for i in 1 2 3; do echo $i >> {d}/d/f; done";

#[test]
fn coalesce_keeps_one_of_each_event() {
    check_scenario(&Scenario {
        config: r#"[{"files": {"{d}/d": {"mask": ["modify", "close_write"]}}}, {"coalesce": true}]"#,
        ours_config: None,
        setup: "mkdir {d}/d && touch {d}/d/f",
        steps: &[same(
            APPENDS,
            &[
                ("{d}/d", "{d}/d/f", "IN_MODIFY"),
                ("{d}/d", "{d}/d/f", "IN_CLOSE_WRITE"),
            ],
        )],
    });
    check_scenario(&Scenario {
        config: r#"[{"files": {"{d}/d": {"mask": ["modify", "close_write"]}}}]"#,
        ours_config: None,
        setup: "mkdir {d}/d && touch {d}/d/f",
        steps: &[same(
            APPENDS,
            &[
                ("{d}/d", "{d}/d/f", "IN_MODIFY"),
                ("{d}/d", "{d}/d/f", "IN_CLOSE_WRITE"),
                ("{d}/d", "{d}/d/f", "IN_MODIFY"),
                ("{d}/d", "{d}/d/f", "IN_CLOSE_WRITE"),
                ("{d}/d", "{d}/d/f", "IN_MODIFY"),
                ("{d}/d", "{d}/d/f", "IN_CLOSE_WRITE"),
            ],
        )],
    });
}

#[test]
fn a_missing_directory_is_said_once_and_looked_for_at_every_check() {
    let dir = scenario_dir();
    let d = dir.path();
    let file = d.join("nodir/f");
    let config = json_value(&fill(
        r#"{"{d}/nodir/f": {"mask": ["create", "modify"]}, "{d}/other": {"mask": ["modify"]}}"#,
        d,
    ));
    std::fs::write(d.join("other"), "a").unwrap();
    let mut driven = Driven::start(&config);
    let said = driven.check().unwrap_err();
    assert!(
        said.contains(&format!(
            "{}: its directory {} does not exist",
            file.display(),
            d.join("nodir").display()
        )),
        "{said}"
    );
    assert_eq!(driven.check(), Ok(Vec::new()), "said once");
    // The other path is watched meanwhile.
    shell(&fill("echo b >> {d}/other", d));
    std::thread::sleep(SETTLE);
    let other = (
        fill("{d}/other", d),
        fill("{d}/other", d),
        "IN_MODIFY".to_owned(),
    );
    assert_eq!(driven.check(), Ok(vec![other]));
    shell(&fill("mkdir {d}/nodir", d));
    assert_eq!(driven.check(), Ok(Vec::new()));
    shell(&fill("echo x > {d}/nodir/f", d));
    std::thread::sleep(SETTLE);
    let f = fill("{d}/nodir/f", d);
    assert_eq!(
        driven.check(),
        Ok(vec![(f.clone(), f.clone(), "IN_CREATE".into())])
    );
    // Gone with its directory: said again, the events that came with it following.
    shell(&fill("rm -r {d}/nodir", d));
    std::thread::sleep(SETTLE);
    assert!(driven.check().unwrap_err().contains("does not exist"));
    assert_eq!(
        driven.check(),
        Ok(vec![(f.clone(), f, "IN_IGNORED".into())])
    );
}

#[test]
fn oneshot_reports_one_event_per_check_and_onlydir_refuses_a_file() {
    let dir = scenario_dir();
    let d = dir.path();
    std::fs::create_dir(d.join("d")).unwrap();
    std::fs::write(d.join("f"), "a").unwrap();
    let config = json_value(&fill(
        r#"{"{d}/d": {"mask": ["create", "oneshot"]}, "{d}/f": {"mask": ["modify", "onlydir"]}}"#,
        d,
    ));
    let mut driven = Driven::start(&config);
    let said = driven.check().unwrap_err();
    assert!(
        said.contains("not a directory, and its mask has onlydir"),
        "{said}"
    );
    shell(&fill("touch {d}/d/a {d}/d/b {d}/d/c", d));
    std::thread::sleep(SETTLE);
    let dir_tag = fill("{d}/d", d);
    assert_eq!(
        driven.check(),
        Ok(vec![(
            dir_tag.clone(),
            fill("{d}/d/a", d),
            "IN_CREATE".into()
        )])
    );
    shell(&fill("touch {d}/d/e", d));
    std::thread::sleep(SETTLE);
    assert_eq!(
        driven.check(),
        Ok(vec![(dir_tag, fill("{d}/d/e", d), "IN_CREATE".into())])
    );
}

#[test]
fn a_bad_mask_name_is_refused_naming_the_key() {
    let problem = run::start(
        "inotify",
        &json_value(r#"{"/etc/hosts": {"mask": ["modify", "writes"]}}"#),
        &Host::real(),
    )
    .err()
    .expect("refused");
    assert_eq!(problem.invalid.key, "/etc/hosts:mask");
    assert!(problem.to_string().contains("not 'writes'"), "{problem}");
}

#[test]
fn a_change_wakes_the_beacon_within_milliseconds() {
    let dir = scenario_dir();
    let file = dir.path().join("f");
    std::fs::write(&file, "a").unwrap();
    let config = json_value(&fill(r#"{"{d}/f": {"mask": ["modify"]}}"#, dir.path()));
    let driven = Driven::start(&config);
    let Driven {
        mut beacon,
        runtime,
    } = driven;
    runtime.block_on(async move {
        for round in 0..3 {
            let (checked, result) = tokio::task::spawn_blocking(move || {
                let result = beacon.check();
                (beacon, result)
            })
            .await
            .unwrap();
            beacon = checked;
            let found = events(result.unwrap());
            if round > 0 {
                assert_eq!(found.len(), 1, "{found:?}");
                assert_eq!(found[0].2, "IN_MODIFY");
            }
            let writer = {
                let file = file.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(100));
                    let at = Instant::now();
                    std::fs::write(&file, format!("round {round}")).unwrap();
                    at
                })
            };
            let woken = beacon.wake().expect("inotify wakes its beacon");
            tokio::time::timeout(Duration::from_secs(5), woken)
                .await
                .expect("woken by the change");
            let delay = writer.join().unwrap().elapsed();
            assert!(delay < Duration::from_millis(500), "woken after {delay:?}");
        }
    });
}

/// Writes `file` as the tutorial does until the master's bus has its beacon event (the minion
/// watches once its beacon has started), and returns the event's data.
fn echo_until_the_master_hears(bus: &mut RawSubscriber, file: &Path) -> Value {
    let tag = format!("salt/beacon/{MINION_ID}/inotify/{}", file.display());
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        shell(&format!("echo 'some content' > {}", file.display()));
        let heard = Instant::now() + Duration::from_secs(1);
        while let Some(left) = heard.checked_duration_since(Instant::now()) {
            match bus.next_event(left) {
                Some(event) if event.tag == tag => return event.data,
                Some(_) => {}
                None => break,
            }
        }
    }
    panic!("no {tag} on the master's bus");
}

fn tutorial_lab(file: &Path) -> Lab {
    std::fs::write(file, "initial\n").unwrap();
    Lab::with_config(
        "",
        &format!(
            "beacons:\n  inotify:\n    {}:\n      mask:\n        - modify\n",
            file.display()
        ),
    )
}

#[test]
fn the_seeds_tutorial_puts_the_modify_event_on_the_masters_bus() {
    let dir = scenario_dir();
    let file = dir.path().join("importantfile");
    let mut lab = tutorial_lab(&file);
    lab.start_master();
    let mut bus = RawSubscriber::connect(&lab.master_pub());
    lab.start_minion();
    let data = echo_until_the_master_hears(&mut bus, &file);
    let field = |key| map_get(&data, key).and_then(Value::as_str);
    assert_eq!(field("change"), Some("IN_MODIFY"), "{data}");
    assert_eq!(field("id"), Some(MINION_ID), "{data}");
    assert_eq!(field("path"), Some(file.to_str().unwrap()), "{data}");
    let mut keys = crate::support::keys(&data);
    keys.retain(|key| key != "_stamp");
    keys.sort();
    assert_eq!(keys, ["change", "id", "path"]);
    // Saved by rename, as `sed -i` does: still the path's modification, and still watched.
    let tag = format!("salt/beacon/{MINION_ID}/inotify/{}", file.display());
    for edit in ["s/some/other/", "s/other/more/"] {
        shell(&format!("sed -i {edit} {}", file.display()));
        let event = bus.expect_tag(&tag);
        assert_eq!(
            map_get(&event.data, "change").and_then(Value::as_str),
            Some("IN_MODIFY"),
            "{}",
            event.data
        );
    }
}

/// The descriptors of process `pid`, and how many of them are inotify instances.
fn descriptors(pid: u32) -> (usize, usize) {
    let mut all = 0;
    let mut inotify = 0;
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        all += 1;
        if std::fs::read_link(entry.path())
            .is_ok_and(|target| target == Path::new("anon_inode:inotify"))
        {
            inotify += 1;
        }
    }
    (all, inotify)
}

#[test]
fn a_hundred_beacons_refreshes_leak_no_descriptor() {
    let dir = scenario_dir();
    let file = dir.path().join("importantfile");
    let mut lab = tutorial_lab(&file);
    lab.start_master();
    let mut bus = RawSubscriber::connect(&lab.master_pub());
    let pid = lab.start_minion().pid();
    echo_until_the_master_hears(&mut bus, &file);
    let mut minion_bus = RawSubscriber::connect(&lab.minion_pub());
    let mut sender = RawSender::connect(&lab.minion_pull());
    let list = map(&[("func", "list".into())]);
    // Answered: both connections are the minion's now.
    sender.fire("manage_beacons", &list, Framing::Bare);
    minion_bus.expect_tag("/salt/minion/minion_beacons_list_complete");
    let before = descriptors(pid);
    assert_eq!(before.1, 1, "one inotify instance for the one beacon");
    for _ in 0..100 {
        sender.fire("beacons_refresh", &map(&[]), Framing::Bare);
        // Time for the new beacon's first check, which opens its inotify instance.
        std::thread::sleep(Duration::from_millis(20));
    }
    // Requests are handled in order: once this is answered, every refresh has been.
    sender.fire(
        "manage_beacons",
        &map(&[("func", "list".into())]),
        Framing::Bare,
    );
    minion_bus.expect_tag("/salt/minion/minion_beacons_list_complete");
    let settled = wait_until(Duration::from_secs(10), || {
        let now = descriptors(pid);
        now.1 == 1 && now.0 <= before.0
    });
    assert!(
        settled,
        "descriptors (all, inotify) before {before:?}, after {:?}",
        descriptors(pid)
    );
    // And the beacon rebuilt last still watches.
    echo_until_the_master_hears(&mut bus, &file);
}

#[test]
fn links_in_an_auto_added_directory_are_reported_not_walked() {
    let dir = scenario_dir();
    let d = dir.path();
    let config = json_value(&fill(
        r#"{"{d}/w": {"mask": ["create"], "auto_add": true}}"#,
        d,
    ));
    std::fs::create_dir(d.join("w")).unwrap();
    let mut driven = Driven::start(&config);
    assert_eq!(driven.check(), Ok(Vec::new()));
    // Links back up the tree: followed, they would be walked without end.
    shell(&fill(
        "mkdir {d}/w/m && ln -s . {d}/w/m/l1 && ln -s . {d}/w/m/l2",
        d,
    ));
    std::thread::sleep(SETTLE);
    let (sender, checked) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(driven.check());
    });
    let found = checked
        .recv_timeout(Duration::from_secs(10))
        .expect("the check returns")
        .expect("no problem");
    let m = fill("{d}/w/m", d);
    let w = fill("{d}/w", d);
    assert!(
        found.contains(&(w, m.clone(), "IN_CREATE|IN_ISDIR".into())),
        "{found:?}"
    );
    assert!(found.len() <= 3, "{found:?}");
    assert!(
        found
            .iter()
            .all(|(_, path, _)| path.matches("/l1").count() + path.matches("/l2").count() <= 1),
        "{found:?}"
    );
}
