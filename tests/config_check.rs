//! Configuration hygiene: unknown options warned once with the nearest known one, values of the
//! wrong kind refused at start with the option and its file (values Salt takes for the type
//! converted, as Salt takes them), `include` and `default_include` read as Salt reads them, each
//! error printed once, and `--check-config` checking what a start checks.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use halite::config::{Config, Role};
use halite::event::Value;

use crate::support::{Lab, python_script, running_as_root, stderr, stdout, wait_output};

/// Writes the top-level options of `lines` into the config `file`: in place of the lab's line
/// for the same option (a key given twice is a YAML error), else at the end.
fn set_options(file: &Path, lines: &str) {
    let mut text = std::fs::read_to_string(file).unwrap();
    let mut added = String::new();
    for line in lines.split_inclusive('\n') {
        let key = line
            .split_once(':')
            .map(|(key, _)| key)
            .filter(|key| !key.starts_with(' '));
        let existing = key.and_then(|key| {
            text.split_inclusive('\n')
                .find(|old| old.starts_with(&format!("{key}:")))
                .map(str::to_owned)
        });
        match existing {
            Some(old) => text = text.replace(&old, line),
            None => added.push_str(line),
        }
    }
    std::fs::write(file, text + &added).unwrap();
}

/// Runs `daemon` on the lab's config until it exits by itself (or 10 s).
fn run_daemon(lab: &Lab, daemon: &str, args: &[&str]) -> Output {
    wait_output(
        lab.cmd(daemon)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        Duration::from_secs(10),
    )
}

#[test]
fn a_misspelt_option_is_warned_once_at_start_with_the_nearest_option() {
    // worker_threads is Salt's (halite does not use it) and mysql.host configures a module:
    // neither is a typo.
    let mut lab = Lab::with_config("reactr: []\nworker_threads: 4\nmysql.host: db\n", "");
    lab.start_master();
    let (_, err) = lab.take_daemon().stop();
    let warning = format!(
        "unknown option reactr in {}: did you mean reactor?",
        lab.etc().join("master").display()
    );
    assert_eq!(err.matches(&warning).count(), 1, "{err}");
    assert_eq!(lab.log("master").matches(&warning).count(), 1);
    assert!(
        !err.contains("worker_threads") && !err.contains("mysql"),
        "{err}"
    );
    // Commands stay quiet about it.
    let output = lab.run("salt-run", &["test.arg", "1"]);
    assert!(!stderr(&output).contains("reactr"), "{}", stderr(&output));
}

#[test]
fn a_value_of_the_wrong_kind_stops_master_and_minion_at_start_naming_option_and_file() {
    let lab = Lab::with_config("timeout: soon\n", "");
    let output = run_daemon(&lab, "salt-master", &[]);
    assert_eq!(output.status.code(), Some(1));
    let expected = format!(
        "error: option timeout in {}: expected a number of seconds, got \"soon\"\n",
        lab.etc().join("master").display()
    );
    assert_eq!(stderr(&output), expected);

    // An included file is named as the one that sets it.
    let lab = Lab::new();
    std::fs::create_dir(lab.etc().join("minion.d")).unwrap();
    let conf = lab.etc().join("minion.d/tuning.conf");
    std::fs::write(&conf, "recon_max: many\n").unwrap();
    let output = run_daemon(&lab, "salt-minion", &[]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        format!(
            "error: option recon_max in {}: expected a number of milliseconds, got \"many\"\n",
            conf.display()
        )
    );
}

#[test]
fn a_yaml_error_is_printed_once_by_daemons_and_commands() {
    let lab = Lab::new();
    for role in ["master", "minion"] {
        std::fs::write(lab.etc().join(role), "timeout: [\nid: x: y\n").unwrap();
    }
    for (command, args) in [
        ("salt-master", &[][..]),
        ("salt-minion", &[]),
        ("salt-api", &[]),
        ("salt-master", &["--check-config"]),
        ("salt-run", &["test.arg"]),
        ("salt-call", &["--local", "test.ping"]),
        ("salt", &["*", "test.ping"]),
    ] {
        let output = run_daemon(&lab, command, args);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{command}: {err}");
        assert_eq!(err.matches("invalid YAML").count(), 1, "{command}: {err}");
        assert_eq!(err.lines().count(), 1, "{command}: {err}");
    }
}

#[test]
fn check_config_reports_every_problem_and_starts_nothing() {
    let lab = Lab::new();
    for daemon in ["salt-master", "salt-minion", "salt-api"] {
        let output = run_daemon(&lab, daemon, &["--check-config"]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{daemon}: {}",
            stderr(&output)
        );
        let role = if daemon == "salt-minion" {
            "minion"
        } else {
            "master"
        };
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            format!("configuration OK: {}\n", lab.etc().join(role).display())
        );
    }
    assert!(!lab.master_sock_dir().exists(), "nothing was started");

    let lab = Lab::with_config(
        "file_root: {}\nloop_interval: often\nreactor:\n  - 'app/*': [/nonexistent/react.sls]\n",
        "",
    );
    let output = run_daemon(&lab, "salt-master", &["--check-config"]);
    assert_eq!(output.status.code(), Some(1));
    let file = lab.etc().join("master").display().to_string();
    assert_eq!(
        stderr(&output),
        format!(
            "error: option loop_interval in {file}: expected a number of seconds, got \"often\"\n\
             error: unknown option file_root in {file}: did you mean file_roots?\n\
             error: reactor: /nonexistent/react.sls (for app/*) names no file\n"
        )
    );
    assert!(output.stdout.is_empty());
    assert!(!lab.master_sock_dir().exists(), "nothing was started");

    // Names Salt takes that are not among its defaults: options its code reads and the
    // settings of its modules, under their names.
    let lab = Lab::with_config(
        "peer_run: {}\nrest_tornado: {port: 8000}\nmysql: {host: db}\nsyslog: {level: LOG_INFO}\n",
        "mine_functions: {}\nappend_domain: example.com\nlog_dir: /tmp\npgjsonb: {host: db}\n",
    );
    for daemon in ["salt-master", "salt-minion"] {
        let output = run_daemon(&lab, daemon, &["--check-config"]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{daemon}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn included_files_are_read_and_their_options_checked_naming_their_file() {
    let mut lab = Lab::with_config("include: [extra/*.conf, missing.conf]\n", "");
    std::fs::create_dir(lab.etc().join("extra")).unwrap();
    let extra = lab.etc().join("extra/a.conf");
    std::fs::write(&extra, "reactr: []\ninclude: nested.conf\n").unwrap();
    let nested = lab.etc().join("extra/nested.conf");
    std::fs::write(&nested, "presence_events: True\n").unwrap();
    let main = lab.etc().join("master");
    let unmatched = format!(
        "include {} in {} matches no files",
        lab.etc().join("missing.conf").display(),
        main.display()
    );
    let unknown = format!(
        "unknown option reactr in {}: did you mean reactor?",
        extra.display()
    );
    lab.start_master();
    let (_, err) = lab.take_daemon().stop();
    for warning in [&unmatched, &unknown] {
        assert_eq!(err.matches(warning.as_str()).count(), 1, "{err}");
    }
    assert!(!err.contains("option include"), "{err}");

    let output = run_daemon(&lab, "salt-master", &["--check-config"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        format!("error: {unmatched}\nerror: {unknown}\n")
    );

    // A wrong value two includes down is refused naming the file it is in.
    std::fs::write(&nested, "presence_events: maybe\n").unwrap();
    let output = run_daemon(&lab, "salt-master", &[]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        format!(
            "error: option presence_events in {}: expected True or False, got \"maybe\"\n",
            nested.display()
        )
    );
}

/// `--check-config` ran a copy of the start's checks that left out log levels, the `user`
/// option and salt-api's TLS files, and said OK where the daemon then refused to start.
#[test]
fn check_config_refuses_what_a_start_refuses_with_the_same_message() {
    let no_user = "user: halite-no-such-user\n";
    // Each case: daemon, master and minion options, arguments, and how the error names its
    // cause.
    let mut cases = vec![
        (
            "salt-master",
            "log_level: loud\n",
            "",
            &[][..],
            "option log_level in",
        ),
        (
            "salt-master",
            "",
            "",
            &["--log-file-level", "5"],
            "--log-file-level 5: ",
        ),
        ("salt-master", "", "", &["-l", "loud"], "-l loud: "),
        ("salt-master", no_user, "", &[], "halite-no-such-user"),
        ("salt-minion", "", "id: 'web*'\n", &[], "web*"),
        (
            "salt-master",
            "interface: localhost\n",
            "",
            &[],
            "option interface in",
        ),
        (
            "salt-api",
            "api_logfile: udp://localhost/LOG_NOPE\n",
            "",
            &[],
            "LOG_NOPE",
        ),
        (
            "salt-api",
            "rest_cherrypy:\n  port: 8123\n  ssl_crt: /nonexistent/api.crt\n  ssl_key: /nonexistent/api.key\n",
            "",
            &[],
            "/nonexistent/api.crt",
        ),
    ];
    if !running_as_root() {
        cases.push(("salt-master", "user: root\n", "", &[], "user"));
    }
    for (daemon, master, minion, args, named) in cases {
        let lab = Lab::new();
        set_options(&lab.etc().join("master"), master);
        set_options(&lab.etc().join("minion"), minion);
        let checked = run_daemon(&lab, daemon, &[args, &["--check-config"]].concat());
        let started = run_daemon(&lab, daemon, args);
        let context = format!("{daemon} {args:?} with {master}{minion}");
        assert_eq!(checked.status.code(), Some(1), "{context}");
        assert_eq!(started.status.code(), Some(1), "{context}");
        assert!(checked.stdout.is_empty(), "{context}");
        let error = stderr(&checked);
        assert_eq!(error.lines().count(), 1, "{context}: {error}");
        assert!(error.contains(named), "{context}: {error}");
        assert!(
            stderr(&started).ends_with(&error),
            "{context}: start said {}, check said {error}",
            stderr(&started)
        );
        assert!(
            !lab.master_sock_dir().exists(),
            "{context}: nothing was bound"
        );
    }
}

/// Replaces `old` by `new` in the lab's `role` config.
fn replace_in_config(lab: &Lab, role: &str, old: &str, new: &str) {
    let file = lab.etc().join(role);
    let config = std::fs::read_to_string(&file).unwrap();
    assert!(config.contains(old), "{config}");
    std::fs::write(file, config.replace(old, new)).unwrap();
}

/// Beyond the options, `--check-config` finds what a start on this host would trip over, each
/// in one line naming the option or file and the fix, and creates or changes nothing: a file
/// where a directory goes (which the start names too, rather than "File exists"), a directory
/// the daemon's user cannot write, an `interface` not of this host, a key file it cannot load.
#[test]
fn check_config_reports_what_this_host_would_trip_over_changing_nothing() {
    type Case = (&'static str, fn(&Lab) -> String);
    let cases: [Case; 6] = [
        ("salt-master", |lab| {
            std::fs::write(lab.path().join("pki"), "").unwrap();
            let root = lab.path().display();
            format!(
                "pki_dir {root}/pki/master: {root}/pki is a file, not a directory; move the file away or set pki_dir to another path"
            )
        }),
        ("salt-master", |lab| {
            let dir = lab.path().join("piddir");
            std::fs::create_dir(&dir).unwrap();
            let pidfile = format!("pidfile: {}/master.pid\n", dir.display());
            let user = if running_as_root() {
                // Root becomes `user`, who cannot write root's 0755 directory.
                lab.append_config("master", &format!("user: nobody\n{pidfile}"));
                "nobody".to_owned()
            } else {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
                lab.append_config("master", &pidfile);
                let uid = nix::unistd::Uid::effective();
                nix::unistd::User::from_uid(uid).unwrap().unwrap().name
            };
            format!(
                "pidfile {} is not writable by user {user}, whom the daemon runs as; make it writable by {user} or set pidfile to another path",
                dir.display()
            )
        }),
        ("salt-master", |lab| {
            // TEST-NET-1: an address no host of a test run has.
            replace_in_config(
                lab,
                "master",
                "interface: 127.0.0.1\n",
                "interface: 192.0.2.1\n",
            );
            "interface 192.0.2.1 is not an address of this host (Cannot assign requested address (os error 99)); set interface to an address of this host, or 0.0.0.0 for all".to_owned()
        }),
        ("salt-api", |lab| {
            lab.append_config(
                "master",
                "rest_cherrypy:\n  host: 192.0.2.1\n  port: 8123\n  disable_ssl: True\n",
            );
            "rest_cherrypy.host 192.0.2.1 is not an address of this host (Cannot assign requested address (os error 99)); set rest_cherrypy.host to an address of this host, or 0.0.0.0 for all".to_owned()
        }),
        ("salt-master", |lab| corrupt_key(lab, "master")),
        ("salt-minion", |lab| corrupt_key(lab, "minion")),
    ];
    fn corrupt_key(lab: &Lab, role: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let dir = lab.path().join("pki").join(role);
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join(format!("{role}.pem"));
        std::fs::write(&key, "not a key\n").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o400)).unwrap();
        format!(
            "{} is not a valid key file (no PEM block); move it away to have a new key created",
            key.display()
        )
    }
    for (daemon, prepare) in cases {
        let lab = Lab::new();
        let expected = prepare(&lab);
        let listed = || walkdir(lab.path());
        let before = listed();
        let output = run_daemon(&lab, daemon, &["--check-config"]);
        assert_eq!(output.status.code(), Some(1), "{daemon}: {expected}");
        assert!(output.stdout.is_empty(), "{expected}");
        assert_eq!(stderr(&output), format!("error: {expected}\n"));
        assert_eq!(listed(), before, "{expected}: nothing created");
    }

    // A directory the start would create where this user cannot: as nobody, the lab root's.
    if running_as_root() {
        use std::os::unix::fs::PermissionsExt;
        let lab = Lab::new();
        std::fs::set_permissions(lab.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let output = crate::support::as_nobody(crate::support::bin("salt-master"))
            .args(["-c", &lab.etc().display().to_string(), "--check-config"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
        let root = lab.path().display();
        assert!(
            stderr(&output).contains(&format!(
                "error: cachedir {root}/cache/master cannot be created: {root} is not writable by user nobody; create it or set cachedir to another path\n"
            )),
            "{}",
            stderr(&output)
        );
    }

    // The start names the file in the way, not "File exists".
    let lab = Lab::new();
    std::fs::write(lab.path().join("pki"), "").unwrap();
    let output = run_daemon(&lab, "salt-master", &[]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains(&format!(
            "{}/pki is a file, not a directory; move that file away, or set pki_dir to a directory",
            lab.path().display()
        )),
        "{err}"
    );
}

/// Every path under `dir`, sorted.
fn walkdir(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut paths = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() && !path.is_symlink() {
                pending.push(path.clone());
            }
            paths.push(path);
        }
    }
    paths.sort();
    paths
}

/// As Salt's daemons do, halite's start on the defaults when the config file is missing, and
/// `--check-config` says that is what it checked.
#[test]
fn check_config_without_a_config_file_checks_the_defaults_and_says_so() {
    let etc = tempfile::tempdir().unwrap();
    let output = Command::new(crate::support::bin("salt-master"))
        .arg("-c")
        .arg(etc.path())
        .arg("--check-config")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        format!(
            "configuration OK: {} does not exist, so the defaults were checked\n",
            etc.path().join("master").display()
        )
    );
}

/// What halite makes of a value, against what Salt 3007.8 does.
#[derive(Debug, Clone)]
enum Verdict {
    /// Both take it; halite converts it to this.
    Accepts(Value),
    /// Both refuse it (Salt's type check warns, or its loading fails).
    Refuses,
    /// Salt takes it for the type, halite refuses it out of range.
    OutOfRange,
}

/// Salt's `_validate_opts` tries each option type's constructor: `int("2048")` passes, so a quoted
/// number is a number, and `str(5)` passes, so a number is a string; halite converts such values
/// once on loading, and refuses what Salt's check (or its loading) refuses. Salt's verdicts come
/// from running it, when Salt 3007.8 is installed.
#[test]
fn option_values_are_taken_and_converted_as_salt_takes_them() {
    use Verdict::{Accepts, OutOfRange, Refuses};
    let string = |text: &str| Accepts(Value::from(text));
    let int = |n: i64| Accepts(Value::from(n));
    let float = |f: f64| Accepts(Value::F64(f));
    let cases: Vec<(Role, &str, &str, Verdict)> = vec![
        (Role::Minion, "id", "5", string("5")),
        (Role::Minion, "id", "5.5", string("5.5")),
        (Role::Minion, "id", "true", string("True")),
        (Role::Minion, "master_finger", "5", string("5")),
        (Role::Minion, "backup_mode", "5", string("5")),
        (Role::Minion, "backup_mode", "[minion]", Refuses),
        (Role::Master, "user", "[a]", Refuses),
        (Role::Master, "user", "~", Accepts(Value::Nil)),
        (Role::Master, "log_level_logfile", "~", Accepts(Value::Nil)),
        // Salt fails on a number where it joins paths or lowercases a name.
        (Role::Master, "sock_dir", "7", Refuses),
        (Role::Master, "hash_type", "5", Refuses),
        (
            Role::Master,
            "failhard",
            "yes",
            Accepts(Value::Boolean(true)),
        ),
        (Role::Master, "failhard", "'yes'", Refuses),
        (Role::Master, "failhard", "1", Refuses),
        (Role::Master, "failhard", "~", Refuses),
        (Role::Master, "max_event_size", "'2048'", int(2048)),
        (Role::Master, "max_event_size", "' 2_048 '", int(2048)),
        (Role::Master, "max_event_size", "2048.0", Refuses),
        (Role::Master, "max_event_size", "'2048.0'", Refuses),
        (Role::Master, "max_event_size", "'0x10'", Refuses),
        (Role::Master, "max_event_size", "true", Refuses),
        (Role::Master, "max_event_size", "~", Refuses),
        (Role::Master, "max_event_size", "lots", Refuses),
        (Role::Master, "keep_jobs", "'-5'", OutOfRange),
        (Role::Minion, "acceptance_wait_time", "'10'", float(10.0)),
        (Role::Minion, "acceptance_wait_time", "'2.5'", float(2.5)),
        (Role::Minion, "acceptance_wait_time", "'1e1'", float(10.0)),
        (
            Role::Minion,
            "acceptance_wait_time",
            "' 1_0.5 '",
            float(10.5),
        ),
        (Role::Minion, "acceptance_wait_time", "10", int(10)),
        (Role::Minion, "acceptance_wait_time", "true", Refuses),
        (Role::Minion, "acceptance_wait_time", "soon", Refuses),
        (Role::Minion, "acceptance_wait_time", "-1", OutOfRange),
        (Role::Minion, "acceptance_wait_time", "'inf'", OutOfRange),
        (Role::Master, "loop_interval", "[1]", Refuses),
        (Role::Master, "loop_interval", "~", Refuses),
        (Role::Master, "gather_job_timeout", "'5'", int(5)),
        (Role::Master, "gather_job_timeout", "2.5", Refuses),
        (Role::Master, "http_request_timeout", "'30'", float(30.0)),
        (Role::Minion, "recon_default", "1500.5", float(1500.5)),
        (Role::Minion, "recon_default", "'1000'", float(1000.0)),
        (Role::Minion, "process_count_max", "'-1'", int(-1)),
        (Role::Minion, "process_count_max", "2.5", Refuses),
        (Role::Master, "ret_port", "'4506'", int(4506)),
        (Role::Master, "ret_port", "4506.0", Refuses),
        (Role::Minion, "master_port", "'4506'", int(4506)),
        (Role::Minion, "master_port", "4506.5", OutOfRange),
    ];
    let dirs: Vec<tempfile::TempDir> = cases
        .iter()
        .map(|(role, option, value, _)| {
            let dir = tempfile::tempdir().unwrap();
            // A minion without an id would look its host's name up, in Salt.
            let id = if *role == Role::Minion && *option != "id" {
                "id: m\n"
            } else {
                ""
            };
            std::fs::write(
                dir.path().join(role.name()),
                format!("{id}{option}: {value}\n"),
            )
            .unwrap();
            dir
        })
        .collect();
    for ((role, option, value, verdict), dir) in cases.iter().zip(&dirs) {
        let case = format!("{}: {option}: {value}", role.name());
        let config = Config::load(*role, Some(dir.path())).unwrap();
        let checked = config.validate();
        match verdict {
            Accepts(converted) => {
                assert!(checked.is_ok(), "{case}: {}", checked.unwrap_err());
                assert_eq!(config.get(option), Some(converted), "{case}");
            }
            Refuses | OutOfRange => {
                let err = checked.expect_err(&case).to_string();
                let file = dir.path().join(role.name());
                let place = format!("option {option} in {}: expected ", file.display());
                assert!(err.starts_with(&place), "{case}: {err}");
            }
        }
    }
    let salt = match salt_verdicts(&cases, &dirs) {
        Ok(verdicts) => verdicts,
        Err(missing) => {
            eprintln!("SKIPPED the comparison with Salt: {missing}");
            return;
        }
    };
    for ((role, option, value, verdict), salt) in cases.iter().zip(salt) {
        let expected = match verdict {
            Accepts(_) | OutOfRange => "accepts",
            Refuses => "refuses",
        };
        assert_eq!(salt, expected, "Salt on {}: {option}: {value}", role.name());
    }
}

/// Salt 3007.8's verdict on each case, or why it cannot be asked.
fn salt_verdicts(
    cases: &[(Role, &str, &str, Verdict)],
    dirs: &[tempfile::TempDir],
) -> Result<Vec<String>, String> {
    let python = crate::conformance::installed("3007.8")?.join("bin/python");
    let input: Vec<serde_json::Value> = cases
        .iter()
        .zip(dirs)
        .map(|((role, option, _, _), dir)| serde_json::json!([role.name(), dir.path(), option]))
        .collect();
    let input = serde_json::to_vec(&input).unwrap();
    let output = python_script(&python, "config_salt.py", &input);
    Ok(serde_json::from_slice(&output.stdout).unwrap())
}

/// A saved schedule a minion cannot read is set aside as Salt's minion sets it aside, and the
/// minion starts without it; `--check-config` reports it and changes nothing.
#[test]
fn a_saved_schedule_that_is_not_yaml_is_set_aside_and_the_minion_starts() {
    let mut lab = Lab::new();
    let dir = lab.etc().join("minion.d");
    std::fs::create_dir_all(&dir).unwrap();
    let saved = dir.join("_schedule.conf");
    std::fs::write(
        &saved,
        "schedule:\n  job1: {function: test.ping, seconds: [\n",
    )
    .unwrap();
    let checked = run_daemon(&lab, "salt-minion", &["--check-config"]);
    assert_eq!(checked.status.code(), Some(1));
    let error = stderr(&checked);
    assert!(
        error.contains("invalid YAML in the saved schedule") && error.contains("YAMLError"),
        "{error}"
    );
    assert!(saved.exists(), "--check-config renamed it");
    lab.start_master();
    lab.start_minion();
    assert!(!saved.exists());
    assert!(dir.join("_schedule.confYAMLError").exists());
}
